//! Test support: scripted ChatModel and a fake OpenAI-compatible HTTP server.

mod scripted;
pub mod server;

pub use scripted::{Reply, ScriptedModel};
