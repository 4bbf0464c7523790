//! The `Tool` trait: what a tool says about itself, what it gets when called, what it returns.

use std::path::PathBuf;

use ann_llm::ToolDefinition;
use async_trait::async_trait;
use serde_json::{Map, Value};

/// What a call may use besides its arguments: the example's files (the `python` tool puts them,
/// read-only, in the program's working directory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolContext {
    /// Files of the example being worked on.
    pub files: Vec<PathBuf>,
}

impl ToolContext {
    pub fn with_files(files: impl IntoIterator<Item = PathBuf>) -> Self {
        Self { files: files.into_iter().collect() }
    }
}

/// Why a call did not produce a result. The registry hands it to the model as the call's result
/// (marked as an error): a tool error is data, never a crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool (missing, wrong type, unusable value).
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// The tool ran and failed (division by zero, a program that timed out, ...).
    #[error("{0}")]
    Failed(String),
    /// The tool could not run at all (its sandbox could not start, ...).
    #[error("the tool is unavailable: {0}")]
    Unavailable(String),
}

/// A tool an agent may call. Implement it to add one (`ToolRegistry::register`).
///
/// `call` gets the arguments already parsed as a JSON object and checked against the required
/// properties and simple types of [`ToolDefinition::parameters`]; it returns the text the model
/// reads. It should not panic, but if it does, the registry reports the panic to the model as an
/// error result.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and the JSON Schema of the arguments, as offered to the model.
    fn definition(&self) -> ToolDefinition;

    /// Run one call.
    async fn call(&self, arguments: &Map<String, Value>, context: &ToolContext) -> Result<String, ToolError>;
}
