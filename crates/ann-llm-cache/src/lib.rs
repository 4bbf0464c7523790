//! Persistent content-addressed LLM response cache in SQLite, with JSONL cassettes.
