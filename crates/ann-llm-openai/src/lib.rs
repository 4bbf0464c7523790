//! OpenAI-compatible HTTP chat backend: timeouts, retries, rate limits, replicas.
