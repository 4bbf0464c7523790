//! Call settings: the model, sampling temperature, token limit and seed a component of the method
//! (forward pass, team construction, optimiser) puts in its requests, and the one place that turns
//! them into a [`ChatRequest`].

use serde::{Deserialize, Serialize};

use crate::{ChatRequest, Message};

/// How one kind of call is made.
///
/// ```
/// use ann_llm::{CallSettings, Message};
/// let settings = CallSettings { model: "gpt-4o-mini".into(), temperature: 0.3, max_tokens: Some(512), seed: Some(7) };
/// let request = settings.request(vec![Message::user("hello")]).with_tag("phase", "backward");
/// assert_eq!((request.temperature, request.max_tokens, request.seed), (Some(0.3), Some(512), Some(7)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSettings {
    /// Model name put in every request.
    pub model: String,
    /// Sampling temperature.
    pub temperature: f32,
    /// `max_tokens` of every call (None: the backend's default).
    pub max_tokens: Option<u32>,
    /// `seed` of every call.
    pub seed: Option<u64>,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self { model: "default".into(), temperature: 0.0, max_tokens: None, seed: None }
    }
}

impl CallSettings {
    /// A request for `messages` with these settings (no tags, text response format).
    pub fn request(&self, messages: Vec<Message>) -> ChatRequest {
        let mut request = ChatRequest::new(self.model.clone(), messages).with_temperature(self.temperature);
        request.max_tokens = self.max_tokens;
        request.seed = self.seed;
        request
    }
}
