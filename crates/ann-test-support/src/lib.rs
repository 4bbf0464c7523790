//! Test support: scripted ChatModel and a fake OpenAI-compatible HTTP server.
