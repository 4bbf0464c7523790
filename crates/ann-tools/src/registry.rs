//! The registry: tools by name, the definitions a request offers, and one call turned into the
//! result message the model reads (unknown tools, malformed arguments, failures and panics included).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ann_llm::{Message, ToolCall, ToolDefinition};
use futures::FutureExt as _;
use serde_json::{Map, Value};

use crate::prompts;
use crate::tool::{Tool, ToolContext, ToolError};

/// Characters of a result kept for the model (the rest is cut, and the cut is said).
pub const DEFAULT_MAX_RESULT_CHARS: usize = 8000;

/// What one call gave: the text the model reads and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The call it answers.
    pub call: ToolCall,
    /// The text the model reads.
    pub content: String,
    /// Whether the call failed (unknown tool, bad arguments, a failure or panic of the tool).
    pub is_error: bool,
}

impl ToolOutcome {
    /// The tool result message that answers the call.
    pub fn message(&self) -> Message {
        Message::tool_result(&self.call.id, &self.content)
    }
}

/// Why a tool cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("a tool named {0:?} is already registered")]
    Duplicate(String),
    #[error("tool name {0:?} is not 1 to 64 characters of [a-zA-Z0-9_-]")]
    BadName(String),
}

/// Tools by name (a `BTreeMap`: definitions come out in name order).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    max_result_chars: usize,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry").field("tools", &self.names()).finish()
    }
}

/// Two registries are equal when they hold the same tool names and cap results alike.
impl PartialEq for ToolRegistry {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names() && self.max_result_chars == other.max_result_chars
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self { tools: BTreeMap::new(), max_result_chars: DEFAULT_MAX_RESULT_CHARS }
    }

    /// Keep at most `chars` characters of each result.
    pub fn with_max_result_chars(mut self, chars: usize) -> Self {
        self.max_result_chars = chars;
        self
    }

    /// Add `tool` under its definition's name.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        let name = tool.definition().name;
        let valid =
            (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(RegistryError::BadName(name));
        }
        if self.tools.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        self.tools.insert(name, tool);
        Ok(())
    }

    /// The registered names, in order.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// The definitions of `names` (all tools for `None`) to offer in a request; an unknown name is
    /// returned as the error.
    pub fn definitions(&self, names: Option<&[String]>) -> Result<Vec<ToolDefinition>, String> {
        match names {
            None => Ok(self.tools.values().map(|t| t.definition()).collect()),
            Some(names) => {
                names.iter().map(|n| self.tools.get(n).map(|t| t.definition()).ok_or_else(|| n.clone())).collect()
            }
        }
    }

    /// Run one call the model asked for. Never fails: whatever goes wrong is the outcome's text.
    pub async fn call(&self, call: &ToolCall, context: &ToolContext) -> ToolOutcome {
        let result = self.run(call, context).await;
        let (content, is_error) = match result {
            Ok(text) => (text, false),
            Err(e) => (prompts::tool_error(&call.name, &e), true),
        };
        ToolOutcome { call: call.clone(), content: prompts::capped(&content, self.max_result_chars), is_error }
    }

    async fn run(&self, call: &ToolCall, context: &ToolContext) -> Result<String, ToolError> {
        let Some(tool) = self.tools.get(&call.name) else {
            return Err(ToolError::BadArguments(prompts::unknown_tool(&call.name, &self.names())));
        };
        let arguments = call.parsed_arguments().map_err(ToolError::BadArguments)?;
        check_arguments(&tool.definition().parameters, &arguments)?;
        match AssertUnwindSafe(tool.call(&arguments, context)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(ToolError::Failed(format!("the tool crashed: {why}")))
            }
        }
    }
}

/// The schema's required properties are present and the simple types (`string`, `integer`,
/// `number`, `boolean`, `array`, `object`) of the given ones match; other keywords are the tool's
/// to check.
fn check_arguments(schema: &Value, arguments: &Map<String, Value>) -> Result<(), ToolError> {
    if let Some(required) = schema["required"].as_array() {
        for name in required.iter().filter_map(Value::as_str) {
            if !arguments.contains_key(name) {
                return Err(ToolError::BadArguments(format!("missing the required argument {name:?}")));
            }
        }
    }
    let Some(properties) = schema["properties"].as_object() else { return Ok(()) };
    for (name, value) in arguments {
        let Some(kind) = properties.get(name).and_then(|p| p["type"].as_str()) else { continue };
        let fits = match kind {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            return Err(ToolError::BadArguments(format!("argument {name:?} must be of type {kind}, got {value}")));
        }
    }
    Ok(())
}
