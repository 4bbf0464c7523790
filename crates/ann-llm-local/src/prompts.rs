//! The embedded model's own prompt text: how offered tools are described to it.

use ann_llm::{ToolChoice, ToolDefinition};

/// The system text that lists the offered tools and the JSON the model answers with.
pub(crate) fn tool_instructions(tools: &[ToolDefinition], choice: &ToolChoice) -> String {
    let mut text = String::from("You can call these tools:\n");
    for tool in tools {
        text.push_str(&format!("- {}: {} Arguments (JSON Schema): {}\n", tool.name, tool.description, tool.parameters));
    }
    let rule = match choice {
        ToolChoice::Auto => {
            "Answer with JSON: {\"tool_calls\": [{\"name\": ..., \"arguments\": {...}}]} to call tools, or \
             {\"answer\": ...} to answer without them."
                .to_string()
        }
        ToolChoice::Required => {
            "Answer with JSON: {\"tool_calls\": [{\"name\": ..., \"arguments\": {...}}]}.".to_string()
        }
        ToolChoice::Tool(name) => {
            format!(
                "Call the tool {name}: answer with JSON {{\"tool_calls\": [{{\"name\": \"{name}\", \"arguments\": {{...}}}}]}}."
            )
        }
        ToolChoice::None => "Do not call tools; answer with JSON {\"answer\": ...}.".to_string(),
    };
    text.push_str(&rule);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_instructions_snapshot() {
        let tools = [ToolDefinition::new(
            "calculator",
            "Exact arithmetic.",
            serde_json::json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
        )];
        insta::assert_snapshot!(tool_instructions(&tools, &ToolChoice::Auto));
        insta::assert_snapshot!(tool_instructions(&tools, &ToolChoice::Tool("calculator".into())));
    }
}
