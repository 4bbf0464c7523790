//! Chat messages, requests, responses and token usage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: content.into() }
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
}

/// An upper bound on the prompt's token count for byte-level BPE tokenizers (a token is at least
/// one byte), plus a per-message allowance for the chat template.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.content.len() as u64 + 8).sum::<u64>() + 8
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
        }
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
    fn json_schema_format_serializes_as_openai_does() {
        let f = ResponseFormat::JsonSchema {
            name: "route".into(),
            schema: serde_json::json!({"type": "object"}),
            strict: true,
        };
        insta::assert_snapshot!(serde_json::to_string(&f).unwrap(), @r#"{"type":"json_schema","name":"route","schema":{"type":"object"},"strict":true}"#);
    }
}
