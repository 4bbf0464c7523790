//! Tool-call vocabulary: the tools a request offers, which one the model must use, the calls a
//! response makes, and the result messages that answer them (OpenAI's chat-completions shapes).
//!
//! These are the canonical forms the response cache hashes; `ann-llm-openai` translates them to and
//! from the wire (`{"type": "function", "function": {...}}`).

use serde::{Deserialize, Serialize};

/// A tool offered to the model: its name, what it does and the JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// `[a-zA-Z0-9_-]`, at most 64 characters (OpenAI's rule).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

impl ToolDefinition {
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: serde_json::Value) -> Self {
        Self { name: name.into(), description: description.into(), parameters }
    }
}

/// Whether and which tool the model must call (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides whether to call tools (the default when tools are offered).
    #[default]
    Auto,
    /// The model must answer in text.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

impl ToolChoice {
    pub(crate) fn is_auto(&self) -> bool {
        matches!(self, ToolChoice::Auto)
    }
}

/// One call the model asks for. `arguments` is the JSON text the model wrote, as OpenAI sends it:
/// it may be malformed, which the caller reads as data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id a tool result message answers (`tool_call_id`).
    pub id: String,
    /// The tool's name (possibly one that was not offered).
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
}

impl ToolCall {
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into(), arguments: arguments.into() }
    }

    /// The arguments parsed as a JSON object, or why they are not one.
    pub fn parsed_arguments(&self) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        match serde_json::from_str::<serde_json::Value>(&self.arguments) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(other) => Err(format!("the arguments of {} are not a JSON object: {other}", self.name)),
            Err(e) => Err(format!("the arguments of {} are not valid JSON ({e}): {}", self.name, self.arguments)),
        }
    }
}

/// Bytes of the tool definitions as the model will see them (for the budget's prompt bound).
pub(crate) fn definitions_bytes(tools: &[ToolDefinition]) -> u64 {
    tools
        .iter()
        .map(|t| t.name.len() as u64 + t.description.len() as u64 + t.parameters.to_string().len() as u64 + 16)
        .sum()
}
