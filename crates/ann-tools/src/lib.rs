//! Tools agents may call: the [`Tool`] trait, the [`ToolRegistry`], and built-in tools.
//!
//! - [`tool`]: what a tool is: a [`ann_llm::ToolDefinition`] (name, description, JSON Schema of
//!   its arguments) and an async `call` over parsed arguments and a [`ToolContext`] (the example's
//!   files). Implement it to add a tool from Rust, then [`ToolRegistry::register`] it.
//! - [`registry`]: tools by name; [`ToolRegistry::call`] runs one [`ann_llm::ToolCall`] of a model
//!   and always returns a [`ToolOutcome`]: an unknown tool, arguments that are not a JSON object or
//!   miss a required property, a failure and even a panic of the tool are an error result the model
//!   reads, never a crash.
//! - [`PythonTool`] (`python`): a program in the sandbox (`ann-sandbox`: bubblewrap, no network,
//!   time, memory and output limits), the example's files read-only in its working directory;
//!   exit status, stdout and stderr go back to the model.
//! - [`Calculator`] (`calculator`): exact rational arithmetic ([`exact`]).
//! - [`prompts`]: every text the model reads from this crate.

pub mod calculator;
pub mod exact;
pub mod prompts;
pub mod python;
pub mod registry;
pub mod tool;

pub use calculator::Calculator;
pub use python::{PythonTool, PythonToolConfig, PythonToolError};
pub use registry::{DEFAULT_MAX_RESULT_CHARS, RegistryError, ToolOutcome, ToolRegistry};
pub use tool::{Tool, ToolContext, ToolError};

/// The names of the built-in tools.
pub const BUILTIN_TOOLS: [&str; 2] = ["calculator", "python"];

/// A registry holding the built-in tools: `calculator`, and `python` when `python` is given.
pub fn builtin_registry(python: Option<PythonTool>) -> ToolRegistry {
    let mut registry = ToolRegistry::new();
    registry.register(std::sync::Arc::new(Calculator)).expect("a fresh registry has no calculator");
    if let Some(python) = python {
        registry.register(std::sync::Arc::new(python)).expect("a fresh registry has no python");
    }
    registry
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
