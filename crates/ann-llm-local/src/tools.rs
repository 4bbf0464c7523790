//! Tool calls of the embedded model: the offered tools go into the prompt, a JSON Schema over their
//! names and parameter schemas constrains decoding (llguidance), and the JSON answer becomes
//! [`ToolCall`]s.
//!
//! The constrained answer is `{"tool_calls": [{"name": <an offered name>, "arguments": <that tool's
//! parameters>}, ...]}` (one to [`MAX_CALLS`] calls), or, when the choice lets the model answer
//! (`auto`, or `none`, or after the tools' results with `auto`), `{"answer": ...}` whose value
//! follows the request's response format (a string for text). Earlier turns are rendered the same
//! way, so the model sees its own calls in the shape it writes them; tool results keep the `tool` role.

use ann_llm::{ChatRequest, Message, ResponseFormat, Role, ToolCall, ToolChoice, ToolDefinition};
use serde_json::{Value, json};

use crate::prompts;

/// Most calls one answer may make.
pub(crate) const MAX_CALLS: usize = 4;

/// Whether the request puts the model in tool mode (tools offered).
pub(crate) fn active(request: &ChatRequest) -> bool {
    !request.tools.is_empty()
}

/// The conversation the model reads: the tool instructions as (or after) the system message, and
/// earlier tool calls written as the JSON the model answers with.
pub(crate) fn prompt_messages(request: &ChatRequest) -> Vec<Message> {
    let instructions = prompts::tool_instructions(&request.tools, &request.tool_choice);
    let mut messages: Vec<Message> = request.messages.iter().map(rendered).collect();
    match messages.first_mut() {
        Some(first) if first.role == Role::System => {
            first.content = format!("{}\n\n{instructions}", first.content);
        }
        _ => messages.insert(0, Message::system(instructions)),
    }
    messages
}

fn rendered(message: &Message) -> Message {
    if message.tool_calls.is_empty() {
        return Message { tool_call_id: None, ..message.clone() };
    }
    let calls: Vec<Value> = message
        .tool_calls
        .iter()
        .map(|c| {
            let arguments = serde_json::from_str::<Value>(&c.arguments).unwrap_or(Value::String(c.arguments.clone()));
            json!({"name": c.name, "arguments": arguments})
        })
        .collect();
    Message::assistant(json!({"tool_calls": calls}).to_string())
}

/// The schema of the answer: calls of the tools the choice allows, and/or a direct answer.
pub(crate) fn answer_schema(request: &ChatRequest) -> Value {
    let allowed: Vec<&ToolDefinition> = match &request.tool_choice {
        ToolChoice::Tool(name) => request.tools.iter().filter(|t| &t.name == name).collect(),
        ToolChoice::None => Vec::new(),
        _ => request.tools.iter().collect(),
    };
    let calls = json!({
        "type": "object",
        "properties": {"tool_calls": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CALLS,
            "items": {"anyOf": allowed.iter().map(|t| json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": parameters(t)},
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })).collect::<Vec<_>>()},
        }},
        "required": ["tool_calls"],
        "additionalProperties": false,
    });
    let answer_value = match &request.response_format {
        ResponseFormat::Text => json!({"type": "string"}),
        ResponseFormat::JsonObject => json!({"type": "object"}),
        ResponseFormat::JsonSchema { schema, .. } => schema.clone(),
    };
    let answer = json!({
        "type": "object",
        "properties": {"answer": answer_value},
        "required": ["answer"],
        "additionalProperties": false,
    });
    let after_results = request.messages.last().is_some_and(|m| m.role == Role::Tool);
    match &request.tool_choice {
        _ if allowed.is_empty() => answer,
        ToolChoice::Auto if after_results => json!({"anyOf": [answer, calls]}),
        ToolChoice::Auto => json!({"anyOf": [calls, answer]}),
        _ => calls,
    }
}

/// A tool's parameter schema as a constraint (an empty or missing schema admits any object).
fn parameters(tool: &ToolDefinition) -> Value {
    match &tool.parameters {
        Value::Object(map) if !map.is_empty() => tool.parameters.clone(),
        _ => json!({"type": "object"}),
    }
}

/// The text and calls of a constrained answer. Calls get ids `call_<turn>_<i>`, where `turn`
/// counts the assistant turns with calls before this one, so ids are unique in a conversation.
/// An answer cut short (by `max_tokens`) is returned as text, with no calls.
pub(crate) fn read_answer(request: &ChatRequest, text: String) -> (String, Vec<ToolCall>) {
    let Ok(value) = serde_json::from_str::<Value>(&text) else { return (text, Vec::new()) };
    if let Some(calls) = value["tool_calls"].as_array() {
        let turn = request.messages.iter().filter(|m| !m.tool_calls.is_empty()).count();
        let calls = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                ToolCall::new(format!("call_{turn}_{i}"), c["name"].as_str().unwrap_or(""), c["arguments"].to_string())
            })
            .collect();
        return (String::new(), calls);
    }
    match value.get("answer") {
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(other) => (other.to_string(), Vec::new()),
        None => (text, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(choice: ToolChoice) -> ChatRequest {
        let tool =
            ToolDefinition::new("add", "Adds.", json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
        ChatRequest::new("m", vec![Message::system("Be brief."), Message::user("1+1?")])
            .with_tools(vec![tool, ToolDefinition::new("noop", "Nothing.", json!({}))])
            .with_tool_choice(choice)
    }

    #[test]
    fn the_schema_follows_the_choice() {
        let auto = answer_schema(&request(ToolChoice::Auto));
        assert_eq!(auto["anyOf"][0]["properties"]["tool_calls"]["items"]["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(auto["anyOf"][1]["required"], json!(["answer"]));
        let named = answer_schema(&request(ToolChoice::Tool("add".into())));
        let items = named["properties"]["tool_calls"]["items"]["anyOf"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["properties"]["name"], json!({"const": "add"}));
        assert_eq!(answer_schema(&request(ToolChoice::None))["required"], json!(["answer"]));
        assert_eq!(
            answer_schema(&request(ToolChoice::Required))["properties"]["tool_calls"]["items"]["anyOf"][1]["properties"]
                ["arguments"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn answers_become_calls_or_text_and_earlier_calls_are_rendered() {
        let mut req = request(ToolChoice::Auto);
        let (text, calls) = read_answer(&req, r#"{"tool_calls": [{"name": "add", "arguments": {"a": 1}}]}"#.into());
        assert_eq!((text.as_str(), calls.clone()), ("", vec![ToolCall::new("call_0_0", "add", r#"{"a":1}"#)]));
        req.messages.push(Message::assistant_tool_calls("", calls));
        req.messages.push(Message::tool_result("call_0_0", "2"));
        let (_, again) = read_answer(&req, r#"{"tool_calls": [{"name": "add", "arguments": {"a": 2}}]}"#.into());
        assert_eq!(again[0].id, "call_1_0");
        assert_eq!(read_answer(&req, r#"{"answer": "2"}"#.into()), ("2".to_string(), Vec::new()));
        assert_eq!(read_answer(&req, r#"{"tool_calls": [{"na"#.into()).1, Vec::new());
        let shown = prompt_messages(&req);
        assert!(shown[0].content.starts_with("Be brief.\n\nYou can call these tools:"));
        assert_eq!(shown[2].content, r#"{"tool_calls":[{"name":"add","arguments":{"a":1}}]}"#);
        assert_eq!((shown[3].role, shown[3].content.as_str()), (Role::Tool, "2"));
        assert!(
            answer_schema(&req)["anyOf"][0]["required"] == json!(["answer"]),
            "after results, answering comes first"
        );
    }
}
