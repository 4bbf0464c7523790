//! The fake server's tool calls: deterministic calls when a request offers tools, and scripted
//! malformed ones.
//!
//! When a request offers `tools` (and `tool_choice` is not `"none"`):
//! - if its last message is a tool result, the reply is text: `after tools: <first 200 characters
//!   of that result>` (or the configured reply function's text);
//! - otherwise the reply calls one tool: the one `tool_choice` names, else the first offered, with
//!   id `call_<request index>` and arguments built from the tool's parameter schema: every property
//!   gets a value of its type, a string property the last user message (so a test puts the code or
//!   expression it wants run in that message), a number 1, a boolean `true`, an array `[]`, an
//!   object `{}`; when that message holds a fenced block (three backticks), a string gets the
//!   block's body instead. `finish_reason` is `tool_calls`, `content` is null.
//!
//! [`FakeServerConfig::with_tool_script`] answers the next tool-offering requests differently, in
//! order ([`ToolReply`]): malformed arguments, a tool that was not offered, arguments that are not
//! an object, or plain text.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::server::FakeServerConfig;

/// How the server answers one request that offers tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolReply {
    /// A well-formed call of the chosen tool (the default).
    Call,
    /// Plain text, no call.
    Text,
    /// Arguments that are not valid JSON (`{"code": `).
    BadArguments,
    /// Arguments that are JSON but not an object (`[1, 2]`).
    NotAnObject,
    /// A call of `no_such_tool`, which was not offered.
    UnknownTool,
}

impl FromStr for ToolReply {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "call" => ToolReply::Call,
            "text" => ToolReply::Text,
            "bad-arguments" => ToolReply::BadArguments,
            "not-an-object" => ToolReply::NotAnObject,
            "unknown-tool" => ToolReply::UnknownTool,
            other => {
                return Err(format!(
                    "unknown tool reply {other:?} (call, text, bad-arguments, not-an-object, unknown-tool)"
                ));
            }
        })
    }
}

impl FakeServerConfig {
    /// Answer the next requests that offer tools with these replies, in order (then [`ToolReply::Call`]).
    pub fn with_tool_script(mut self, replies: impl IntoIterator<Item = ToolReply>) -> Self {
        self.tool_script.extend(replies);
        self
    }
}

/// The server's tool-call state: what is left of the script.
#[derive(Debug, Default)]
pub(crate) struct ToolCalls {
    script: Mutex<VecDeque<ToolReply>>,
}

/// What the server answers a request that offers tools.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolAnswer {
    /// These `tool_calls` (OpenAI's wire shape), with null content.
    Calls(Value),
    /// Text after tool results (used when no reply function is configured).
    AfterResults(String),
    /// Text as any request without tools gets.
    Text,
}

impl ToolCalls {
    pub(crate) fn new(script: &[ToolReply]) -> Self {
        Self { script: Mutex::new(script.iter().copied().collect()) }
    }

    /// The answer to `body` (request number `index`), or `None` when it offers no tools.
    pub(crate) fn answer(&self, body: &Value, index: u64) -> Option<ToolAnswer> {
        let tools = body["tools"].as_array().filter(|t| !t.is_empty())?;
        if body["tool_choice"] == "none" {
            return None;
        }
        let messages = body["messages"].as_array()?;
        if let Some(last) = messages.last().filter(|m| m["role"] == "tool") {
            let result: String = last["content"].as_str().unwrap_or("").chars().take(200).collect();
            return Some(ToolAnswer::AfterResults(format!("after tools: {result}")));
        }
        let reply = self.script.lock().expect("tool script lock").pop_front().unwrap_or(ToolReply::Call);
        let forced = body["tool_choice"]["function"]["name"].as_str();
        let tool = forced.and_then(|name| tools.iter().find(|t| t["function"]["name"] == name)).unwrap_or(&tools[0]);
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .map(|text| fenced_block(text).unwrap_or(text));
        let (name, arguments) = match reply {
            ToolReply::Text => return Some(ToolAnswer::Text),
            ToolReply::Call => {
                let arguments = arguments_for(&tool["function"]["parameters"], last_user.unwrap_or(""));
                (tool["function"]["name"].as_str().unwrap_or("").to_string(), arguments.to_string())
            }
            ToolReply::BadArguments => {
                (tool["function"]["name"].as_str().unwrap_or("").to_string(), "{\"code\": ".into())
            }
            ToolReply::NotAnObject => (tool["function"]["name"].as_str().unwrap_or("").to_string(), "[1, 2]".into()),
            ToolReply::UnknownTool => ("no_such_tool".to_string(), "{}".into()),
        };
        Some(ToolAnswer::Calls(json!([{
            "id": format!("call_{index}"),
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }])))
    }
}

impl ToolAnswer {
    /// Put the calls into a chat completion reply (null content, `finish_reason: tool_calls`).
    pub(crate) fn patch(&self, reply: &mut Value) {
        if let ToolAnswer::Calls(calls) = self {
            let choice = &mut reply["choices"][0];
            choice["message"]["content"] = Value::Null;
            choice["message"]["tool_calls"] = calls.clone();
            choice["finish_reason"] = json!("tool_calls");
        }
    }
}

/// The body of the first block fenced by three backticks (after the fence line's language tag).
fn fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body = &after[after.find('\n')? + 1..];
    Some(&body[..body.find("```")?])
}

/// Arguments that fit `schema`'s properties (in the schema's order): strings get `text`.
fn arguments_for(schema: &Value, text: &str) -> Value {
    let mut arguments = serde_json::Map::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let value = match property["type"].as_str() {
                Some("integer") | Some("number") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!(text),
            };
            arguments.insert(name.clone(), value);
        }
    }
    Value::Object(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: Value) -> Value {
        let mut body = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "print(6 * 7)"}],
            "tools": [
                {"type": "function", "function": {"name": "python", "description": "Runs code.",
                  "parameters": {"type": "object", "properties": {"code": {"type": "string"}, "lines": {"type": "integer"}}}}},
                {"type": "function", "function": {"name": "calculator", "description": "Computes.",
                  "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}}}},
            ],
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    }

    #[test]
    fn calls_are_deterministic_and_follow_the_schema_and_the_choice() {
        let state = ToolCalls::new(&[]);
        let call = state.answer(&request(json!({})), 3).unwrap();
        assert_eq!(
            call,
            ToolAnswer::Calls(json!([{"id": "call_3", "type": "function",
                "function": {"name": "python", "arguments": "{\"code\":\"print(6 * 7)\",\"lines\":1}"}}]))
        );
        assert_eq!(state.answer(&request(json!({})), 3), Some(call));
        let forced = json!({"tool_choice": {"type": "function", "function": {"name": "calculator"}}});
        let Some(ToolAnswer::Calls(calls)) = state.answer(&request(forced), 4) else { panic!() };
        assert_eq!(calls[0]["function"]["name"], "calculator");
        assert_eq!(state.answer(&request(json!({"tool_choice": "none"})), 5), None);
        assert_eq!(state.answer(&json!({"messages": []}), 6), None);
        let fenced =
            json!({"messages": [{"role": "user", "content": "Task: add.\n```python\nprint(1 + 1)\n```\nThanks"}]});
        let Some(ToolAnswer::Calls(calls)) = state.answer(&request(fenced), 7) else { panic!() };
        assert_eq!(calls[0]["function"]["arguments"], "{\"code\":\"print(1 + 1)\\n\",\"lines\":1}");
    }

    #[test]
    fn tool_results_get_text_and_scripts_give_malformed_calls() {
        let state = ToolCalls::new(&[ToolReply::BadArguments, ToolReply::UnknownTool, ToolReply::NotAnObject]);
        let after = request(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_0", "content": "42\n"},
        ]}));
        assert_eq!(state.answer(&after, 0), Some(ToolAnswer::AfterResults("after tools: 42\n".into())));
        let arguments = |a: Option<ToolAnswer>| match a {
            Some(ToolAnswer::Calls(c)) => (c[0]["function"]["name"].clone(), c[0]["function"]["arguments"].clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(arguments(state.answer(&request(json!({})), 1)), (json!("python"), json!("{\"code\": ")));
        assert_eq!(arguments(state.answer(&request(json!({})), 2)), (json!("no_such_tool"), json!("{}")));
        assert_eq!(arguments(state.answer(&request(json!({})), 3)), (json!("python"), json!("[1, 2]")));
        assert_eq!(arguments(state.answer(&request(json!({})), 4)).0, json!("python"));
        assert_eq!("bad-arguments".parse::<ToolReply>(), Ok(ToolReply::BadArguments));
        assert!("teapot".parse::<ToolReply>().is_err());
    }
}
