//! The `calculator` tool: exact rational arithmetic on one expression.

use ann_llm::ToolDefinition;
use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::exact;
use crate::prompts;
use crate::tool::{Tool, ToolContext, ToolError};

/// Evaluates `+ - * / ^` over integers and decimals exactly (fractions stay fractions).
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

#[async_trait]
impl Tool for Calculator {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition::new(
            "calculator",
            prompts::CALCULATOR_DESCRIPTION,
            json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "for example (1/3 + 2^-2) * 6"}},
                "required": ["expression"],
                "additionalProperties": false
            }),
        )
    }

    async fn call(&self, arguments: &Map<String, Value>, _context: &ToolContext) -> Result<String, ToolError> {
        let expression = arguments["expression"].as_str().unwrap_or_default();
        exact::evaluate(expression).map(|v| v.to_string()).map_err(ToolError::Failed)
    }
}
