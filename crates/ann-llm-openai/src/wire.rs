//! OpenAI's wire format: the request body we send, the response we parse, `Retry-After`, redaction.

use std::time::{Duration, SystemTime};

use ann_llm::{ChatRequest, ChatResponse, FinishReason, LlmError, Message, ResponseFormat, Usage};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
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
        messages: &request.messages,
        temperature: request.temperature,
        top_p: request.top_p,
        max_tokens: request.max_tokens,
        stop: &request.stop,
        seed: request.seed,
        response_format,
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
    let text = choice.message.and_then(|m| m.content.or(m.refusal)).unwrap_or_default();
    let usage = wire.usage.map(WireUsage::usage).unwrap_or_default();
    Ok(ChatResponse {
        text,
        finish_reason: finish_reason(choice.finish_reason.as_deref()),
        usage,
        model: wire.model.unwrap_or_else(|| requested_model.to_string()),
        latency_ms: 0,
        cache_hit: false,
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
        assert_eq!(finish_reason(Some("tool_calls")), FinishReason::Other("tool_calls".into()));
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
