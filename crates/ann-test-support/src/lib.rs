//! Test support: scripted ChatModel and a fake OpenAI-compatible HTTP server (with `learn` and
//! `hostile` reply modes).

pub mod fuzz;
pub mod hostile;
pub mod learning;
mod scripted;
pub mod server;
pub mod tool_calls;

pub use scripted::{Reply, ScriptedModel};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
