//! Chat messages, requests, responses and token usage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tools::{self, ToolCall, ToolChoice, ToolDefinition};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call (answers an assistant message's [`ToolCall`] by its id).
    Tool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tool calls of an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a [`Role::Tool`] message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn plain(role: Role, content: String) -> Self {
        Self { role, content, tool_calls: Vec::new(), tool_call_id: None }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content.into())
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content.into())
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content.into())
    }
    /// The assistant's turn that asked for `calls` (with whatever text came with them).
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::plain(Role::Assistant, content.into()) }
    }
    /// The result of the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(call_id.into()), ..Self::plain(Role::Tool, content.into()) }
    }

    /// Bytes the model reads of this message (content, tool calls, the answered call's id).
    fn bytes(&self) -> u64 {
        let calls: u64 =
            self.tool_calls.iter().map(|c| (c.id.len() + c.name.len() + c.arguments.len()) as u64 + 16).sum();
        self.content.len() as u64 + calls + self.tool_call_id.as_ref().map_or(0, |id| id.len() as u64)
    }
}

/// What shape the answer must have (OpenAI's `response_format`, also accepted by vLLM and llama.cpp).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that fits a schema (structured outputs).
    JsonSchema {
        /// Schema name (OpenAI requires one; `[a-zA-Z0-9_-]`).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Whether the backend must follow the schema exactly.
        #[serde(default)]
        strict: bool,
    },
}

impl ResponseFormat {
    fn is_text(&self) -> bool {
        matches!(self, ResponseFormat::Text)
    }
}

/// One chat completion request.
///
/// Serialization is canonical (fields in declaration order, defaults omitted) and is what the
/// response cache hashes: every sampling field, the response format and the sample index count.
/// `tags` are for metering and tracing only and are never serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "ResponseFormat::is_text")]
    pub response_format: ResponseFormat,
    /// Which of n samples of the same prompt this is: n samples are n distinct cache entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample_index: u32,
    /// Tools the model may call (none: a plain chat request, serialized exactly as before tools existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Whether and which tool the model must call (only meaningful with `tools`).
    #[serde(default, skip_serializing_if = "ToolChoice::is_auto")]
    pub tool_choice: ToolChoice,
    /// Metering and tracing labels (`phase`, `layer`, `agent`, ...); not part of the request's identity.
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ChatRequest {
    /// A request with the given model and messages and every other field at its default.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            seed: None,
            response_format: ResponseFormat::Text,
            sample_index: 0,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            tags: BTreeMap::new(),
        }
    }

    pub fn with_temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }
    pub fn with_max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    pub fn with_stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }
    pub fn with_response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = format;
        self
    }
    pub fn with_sample_index(mut self, index: u32) -> Self {
        self.sample_index = index;
        self
    }
    /// Offer `tools` to the model.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Canonical JSON of the whole request (tags excluded): stable across runs and processes.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("a ChatRequest always serializes")
    }

    /// Hex sha256 of the canonical JSON together with a backend identity: the cache key.
    pub fn fingerprint(&self, backend: &str) -> String {
        let mut h = Sha256::new();
        h.update(backend.as_bytes());
        h.update([0u8]);
        h.update(self.canonical_json().as_bytes());
        hex::encode(h.finalize())
    }

    /// An upper bound on the prompt's token count: the messages (with their tool calls and
    /// results, see [`estimate_prompt_tokens`]) and the offered tools' definitions.
    pub fn prompt_upper_bound(&self) -> u64 {
        estimate_prompt_tokens(&self.messages).saturating_add(tools::definitions_bytes(&self.tools))
    }
}

/// An upper bound on the prompt's token count for byte-level BPE tokenizers (a token is at least
/// one byte), plus a per-message allowance for the chat template.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.bytes() + 8).sum::<u64>() + 8
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End of turn or a stop string.
    #[default]
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The backend filtered the content.
    ContentFilter,
    /// The model asked for tool calls ([`ChatResponse::tool_calls`]).
    ToolCalls,
    /// Anything else the backend said.
    Other(String),
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens the backend served from its own prefix cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Sums of token counts (saturating: a hostile count cannot wrap a total).
impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(other.completion_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
    }
}

/// One chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    #[serde(default)]
    pub finish_reason: FinishReason,
    #[serde(default)]
    pub usage: Usage,
    /// The model that answered, as the backend names it.
    pub model: String,
    /// Wall time of the backend call, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Whether this came from the response cache (then no tokens were paid for).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
    /// The tools the model asked to call, in order (none for a text answer; absent from the JSON
    /// then, so responses without tool calls serialize as they always did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl ChatResponse {
    /// A plain response with no usage, for tests and simple backends.
    pub fn text(model: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
            model: model.into(),
            latency_ms: 0,
            cache_hit: false,
            tool_calls: Vec::new(),
        }
    }

    /// The assistant message this response adds to a conversation (its text and tool calls).
    pub fn message(&self) -> Message {
        Message::assistant_tool_calls(self.text.clone(), self.tool_calls.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_omits_defaults_and_tags() {
        let req = ChatRequest::new("m", vec![Message::user("hi")]).with_tag("phase", "forward");
        insta::assert_snapshot!(req.canonical_json(), @r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    }

    #[test]
    fn every_sampling_field_changes_the_fingerprint() {
        let base = ChatRequest::new("m", vec![Message::user("hi")]);
        let variants = [
            base.clone().with_temperature(0.7),
            base.clone().with_max_tokens(5),
            base.clone().with_seed(1),
            base.clone().with_stop("\n"),
            base.clone().with_sample_index(1),
            base.clone().with_response_format(ResponseFormat::JsonObject),
            ChatRequest { top_p: Some(0.9), ..base.clone() },
        ];
        let f0 = base.fingerprint("b");
        assert_ne!(f0, base.fingerprint("other-backend"));
        assert_eq!(f0, base.clone().with_tag("layer", "x").fingerprint("b"));
        for v in &variants {
            assert_ne!(v.fingerprint("b"), f0, "{v:?}");
        }
    }

    #[test]
    fn tool_definitions_choice_and_results_are_part_of_the_identity() {
        let base = ChatRequest::new("m", vec![Message::user("hi")]);
        let add = ToolDefinition::new("add", "Adds.", serde_json::json!({"type": "object"}));
        let with_tools = base.clone().with_tools(vec![add.clone()]);
        let other_schema = base.clone().with_tools(vec![ToolDefinition {
            parameters: serde_json::json!({"type": "object", "required": ["a"]}),
            ..add.clone()
        }]);
        let required = with_tools.clone().with_tool_choice(ToolChoice::Required);
        let named = with_tools.clone().with_tool_choice(ToolChoice::Tool("add".into()));
        let call = ToolCall::new("call_0", "add", r#"{"a":1}"#);
        let mut answered = with_tools.clone();
        answered.messages.push(Message::assistant_tool_calls("", vec![call]));
        answered.messages.push(Message::tool_result("call_0", "1"));
        let prints: Vec<String> = [&base, &with_tools, &other_schema, &required, &named, &answered]
            .iter()
            .map(|r| r.fingerprint("b"))
            .collect();
        let distinct: std::collections::BTreeSet<&String> = prints.iter().collect();
        assert_eq!(distinct.len(), prints.len(), "{prints:?}");
        insta::assert_snapshot!(answered.canonical_json(), @r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"","tool_calls":[{"id":"call_0","name":"add","arguments":"{\"a\":1}"}]},{"role":"tool","content":"1","tool_call_id":"call_0"}],"tools":[{"name":"add","description":"Adds.","parameters":{"type":"object"}}]}"#);
        // The budget's prompt bound reads the tools and the calls too.
        assert!(with_tools.prompt_upper_bound() > base.prompt_upper_bound());
        assert!(answered.prompt_upper_bound() > with_tools.prompt_upper_bound() + 8);
        assert_eq!(base.prompt_upper_bound(), estimate_prompt_tokens(&base.messages));
    }

    #[test]
    fn responses_without_tool_calls_serialize_as_before() {
        let plain = ChatResponse::text("m", "ok");
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"text":"ok","finish_reason":"stop","usage":{"prompt_tokens":0,"completion_tokens":0,"cached_tokens":0},"model":"m","latency_ms":0}"#
        );
        let asked = ChatResponse {
            tool_calls: vec![ToolCall::new("c", "add", "{}")],
            finish_reason: FinishReason::ToolCalls,
            ..plain
        };
        let back: ChatResponse = serde_json::from_str(&serde_json::to_string(&asked).unwrap()).unwrap();
        assert_eq!(back, asked);
        assert_eq!(back.message().tool_calls, asked.tool_calls);
    }

    #[test]
    fn json_schema_format_serializes_as_openai_does() {
        let f = ResponseFormat::JsonSchema {
            name: "route".into(),
            schema: serde_json::json!({"type": "object"}),
            strict: true,
        };
        insta::assert_snapshot!(serde_json::to_string(&f).unwrap(), @r#"{"type":"json_schema","name":"route","schema":{"type":"object"},"strict":true}"#);
    }
}
