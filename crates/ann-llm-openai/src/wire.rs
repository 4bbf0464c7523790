//! OpenAI's wire format: the request body we send, the response we parse, `Retry-After`, redaction.

use std::time::{Duration, SystemTime};

use ann_llm::{
    ChatRequest, ChatResponse, FinishReason, LlmError, Message, ResponseFormat, Role, ToolCall, ToolChoice,
    ToolDefinition, Usage,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireOutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireFormat<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
}

/// A message as sent: `{"role", "content"}` for plain messages (byte for byte what a [`Message`]
/// without tool calls serializes to), plus `tool_calls` or `tool_call_id` when there are some.
#[derive(Serialize)]
struct WireOutMessage<'a> {
    role: Role,
    /// `null` for an assistant turn that only called tools.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireFunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: &'a ToolDefinition,
}

fn wire_message(m: &Message) -> WireOutMessage<'_> {
    let content = if m.content.is_empty() && !m.tool_calls.is_empty() { None } else { Some(m.content.as_str()) };
    WireOutMessage {
        role: m.role,
        content,
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| WireFunctionCall {
                id: &c.id,
                kind: "function",
                function: WireFunction { name: &c.name, arguments: &c.arguments },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

fn wire_tool_choice(request: &ChatRequest) -> Option<serde_json::Value> {
    if request.tools.is_empty() {
        return None;
    }
    Some(match &request.tool_choice {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Tool(name) => serde_json::json!({"type": "function", "function": {"name": name}}),
    })
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: WireSchema<'a> },
}

#[derive(Serialize)]
struct WireSchema<'a> {
    name: &'a str,
    schema: &'a serde_json::Value,
    strict: bool,
}

/// The JSON body of a chat completions call. `sample_index` and `tags` are ours and not sent.
pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Vec<u8> {
    let response_format = match &request.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(WireFormat::JsonObject),
        ResponseFormat::JsonSchema { name, schema, strict } => {
            Some(WireFormat::JsonSchema { json_schema: WireSchema { name, schema, strict: *strict } })
        }
    };
    let body = WireRequest {
        model,
        messages: request.messages.iter().map(wire_message).collect(),
        temperature: request.temperature,
        top_p: request.top_p,
        max_tokens: request.max_tokens,
        stop: &request.stop,
        seed: request.seed,
        response_format,
        tools: request.tools.iter().map(|function| WireTool { kind: "function", function }).collect(),
        tool_choice: wire_tool_choice(request),
    };
    serde_json::to_vec(&body).expect("a chat request always serializes")
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireInCall>,
}

#[derive(Deserialize)]
struct WireInCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireInFunction>,
}

#[derive(Deserialize)]
struct WireInFunction {
    #[serde(default)]
    name: Option<String>,
    /// A JSON string as OpenAI sends it; some servers send the object itself.
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

/// The tool calls of a reply. A missing id gets `call_<index>`, a missing name or arguments an
/// empty one: what the model wrote is data for the caller to judge, never an error here.
fn tool_calls(calls: Vec<WireInCall>) -> Vec<ToolCall> {
    calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let function = c.function.unwrap_or(WireInFunction { name: None, arguments: None });
            let arguments = match function.arguments {
                Some(serde_json::Value::String(text)) => text,
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: function.name.unwrap_or_default(),
                arguments,
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<WireDetails>,
}

#[derive(Deserialize)]
struct WireDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

pub(crate) fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("stop") | Some("eos") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

impl WireUsage {
    fn usage(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.unwrap_or(0),
            completion_tokens: self.completion_tokens.unwrap_or(0),
            cached_tokens: self.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
        }
    }
}

/// Parse a 2xx body. A missing `usage` gives zero usage; a null `content` (a refusal) is data.
pub(crate) fn parse_response(body: &[u8], requested_model: &str) -> Result<ChatResponse, LlmError> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|e| {
        LlmError::InvalidResponse(format!("not a chat completion ({e}): {}", excerpt(&String::from_utf8_lossy(body))))
    })?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(LlmError::InvalidResponse("chat completion without choices".into()));
    };
    let (text, calls) = match choice.message {
        Some(m) => (m.content.or(m.refusal).unwrap_or_default(), tool_calls(m.tool_calls)),
        None => (String::new(), Vec::new()),
    };
    let usage = wire.usage.map(WireUsage::usage).unwrap_or_default();
    Ok(ChatResponse {
        text,
        finish_reason: finish_reason(choice.finish_reason.as_deref()),
        usage,
        model: wire.model.unwrap_or_else(|| requested_model.to_string()),
        latency_ms: 0,
        cache_hit: false,
        tool_calls: calls,
    })
}

/// The usage a 2xx body reports even when it is no usable chat completion (no choices, a choice
/// of the wrong shape): the provider bills it. `None` when the body is not a JSON object with a
/// readable `usage`.
pub(crate) fn reported_usage(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct UsageOnly {
        usage: Option<WireUsage>,
    }
    serde_json::from_slice::<UsageOnly>(body).ok()?.usage.map(WireUsage::usage)
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// At most 2000 characters of a body, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 2000;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}... [truncated]")
    }
}

/// Replace every occurrence of `secret` in `text`.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "[REDACTED]"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let check = |v: &str, want: Option<u64>| {
            assert_eq!(parse_retry_after(v, now), want.map(Duration::from_secs), "{v}");
        };
        check("7", Some(7));
        check(" 0 ", Some(0));
        check("Thu, 01 Jan 2026 00:00:30 GMT", Some(30));
        check("Wed, 31 Dec 2025 23:00:00 GMT", Some(0));
        check("soon", None);
        check("-3", None);
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(finish_reason(Some("stop")), FinishReason::Stop);
        assert_eq!(finish_reason(None), FinishReason::Stop);
        assert_eq!(finish_reason(Some("length")), FinishReason::Length);
        assert_eq!(finish_reason(Some("content_filter")), FinishReason::ContentFilter);
        assert_eq!(finish_reason(Some("tool_calls")), FinishReason::ToolCalls);
        assert_eq!(finish_reason(Some("eh")), FinishReason::Other("eh".into()));
    }

    #[test]
    fn responses_parse_with_and_without_usage() {
        let full =
            br#"{"model":"m-2024","choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let r = parse_response(full, "m").unwrap();
        assert_eq!((r.text.as_str(), r.model.as_str(), r.finish_reason), ("hi", "m-2024", FinishReason::Length));
        assert_eq!(r.usage, Usage { prompt_tokens: 5, completion_tokens: 1, cached_tokens: 4 });
        let bare = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#;
        let r = parse_response(bare, "m").unwrap();
        assert_eq!((r.text.as_str(), r.model.as_str(), r.usage), ("no", "m", Usage::default()));
        assert!(matches!(parse_response(br#"{"choices":[]}"#, "m"), Err(LlmError::InvalidResponse(_))));
        assert!(matches!(parse_response(b"{\"choices\": [", "m"), Err(LlmError::InvalidResponse(_))));
    }

    #[test]
    fn tool_requests_and_replies_use_openai_shapes() {
        let plain = ChatRequest::new("m", vec![Message::user("hi")]);
        assert_eq!(
            String::from_utf8(request_body("m", &plain)).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        );
        let tool = ToolDefinition::new("add", "Adds.", serde_json::json!({"type": "object"}));
        let mut req = plain.with_tools(vec![tool]).with_tool_choice(ToolChoice::Tool("add".into()));
        req.messages.push(Message::assistant_tool_calls("", vec![ToolCall::new("c1", "add", r#"{"a":1}"#)]));
        req.messages.push(Message::tool_result("c1", "1"));
        insta::assert_snapshot!(String::from_utf8(request_body("m", &req)).unwrap(), @r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"add","arguments":"{\"a\":1}"}}]},{"role":"tool","content":"1","tool_call_id":"c1"}],"tools":[{"type":"function","function":{"name":"add","description":"Adds.","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"add"}}}"#);
        let reply = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"c9","type":"function","function":{"name":"add","arguments":"{\"a\": 2}"}},
            {"type":"function","function":{"name":"add","arguments":{"a":3}}},
            {"id":"c8","type":"function","function":{"name":"add","arguments":"{\"a\": "}}]},
            "finish_reason":"tool_calls"}]}"#;
        let r = parse_response(reply, "m").unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            r.tool_calls,
            vec![
                ToolCall::new("c9", "add", r#"{"a": 2}"#),
                ToolCall::new("call_1", "add", r#"{"a":3}"#),
                ToolCall::new("c8", "add", r#"{"a": "#),
            ]
        );
        assert!(r.tool_calls[2].parsed_arguments().is_err(), "malformed arguments are data for the caller");
    }

    #[test]
    fn usage_is_read_from_bodies_that_are_no_chat_completion() {
        let no_choices = br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        assert_eq!(
            reported_usage(no_choices),
            Some(Usage { prompt_tokens: 7, completion_tokens: 2, cached_tokens: 0 })
        );
        let odd_choice = br#"{"choices":[{"message":7}],"usage":{"prompt_tokens":3}}"#;
        assert!(parse_response(odd_choice, "m").is_err());
        assert_eq!(reported_usage(odd_choice).map(|u| u.total()), Some(3));
        assert_eq!(reported_usage(b"{\"choices\": ["), None);
        assert_eq!(reported_usage(br#"{"choices":[]}"#), None);
    }

    #[test]
    fn redaction_and_excerpts() {
        assert_eq!(redact("key sk-123 here sk-123", Some("sk-123")), "key [REDACTED] here [REDACTED]");
        assert_eq!(redact("x", Some("")), "x");
        assert!(excerpt(&"a".repeat(3000)).ends_with("[truncated]"));
    }
}
