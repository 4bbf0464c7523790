//! Test support: scripted ChatModel and a fake OpenAI-compatible HTTP server.

mod scripted;
pub mod server;
pub mod tool_calls;

pub use scripted::{Reply, ScriptedModel};
