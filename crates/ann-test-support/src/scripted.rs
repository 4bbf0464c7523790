//! A scripted `ChatModel`: canned replies by rule or queue, computed replies, and a record of calls.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ann_llm::{ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, Usage};
use async_trait::async_trait;

/// What the model answers to one request.
pub type Reply = Result<String, LlmError>;

type Handler = Box<dyn Fn(&ChatRequest) -> Option<Reply> + Send + Sync>;

/// A deterministic in-process model for tests.
///
/// A request is answered by, in order: the first rule whose needle occurs in any message (rules
/// added with [`ScriptedModel::on_contains`] or [`ScriptedModel::on`]); else the next queued reply
/// ([`ScriptedModel::push_reply`]); else the fallback (default: an error naming the request).
/// Usage counts whitespace-separated words. Every request is recorded.
pub struct ScriptedModel {
    name: String,
    rules: Vec<Handler>,
    queue: Mutex<std::collections::VecDeque<Reply>>,
    fallback: Option<Handler>,
    latency: Duration,
    requests: Mutex<Vec<ChatRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Default for ScriptedModel {
    fn default() -> Self {
        Self::new("scripted")
    }
}

impl ScriptedModel {
    /// An empty script; `name` is the model name in responses and the identity.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rules: Vec::new(),
            queue: Mutex::new(Default::default()),
            fallback: None,
            latency: Duration::ZERO,
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Answer `reply` to any request with `needle` in one of its messages.
    pub fn on_contains(self, needle: impl Into<String>, reply: impl Into<String>) -> Self {
        let needle = needle.into();
        let reply = reply.into();
        self.on(move |req| req.messages.iter().any(|m| m.content.contains(&needle)).then(|| Ok(reply.clone())))
    }

    /// A rule: answer with what `rule` returns, or pass to the next rule on `None`.
    pub fn on(mut self, rule: impl Fn(&ChatRequest) -> Option<Reply> + Send + Sync + 'static) -> Self {
        self.rules.push(Box::new(rule));
        self
    }

    /// What to answer when no rule matches and the queue is empty.
    pub fn fallback(mut self, f: impl Fn(&ChatRequest) -> Reply + Send + Sync + 'static) -> Self {
        self.fallback = Some(Box::new(move |req| Some(f(req))));
        self
    }

    /// Sleep this long in each call (tokio time: works with a paused clock).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Queue one reply for a later request that no rule answers.
    pub fn push_reply(&self, reply: impl Into<String>) {
        self.queue.lock().expect("queue lock").push_back(Ok(reply.into()));
    }

    /// Queue one error for a later request that no rule answers.
    pub fn push_error(&self, error: LlmError) {
        self.queue.lock().expect("queue lock").push_back(Err(error));
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// How many requests were received.
    pub fn calls(&self) -> usize {
        self.requests.lock().expect("requests lock").len()
    }

    /// The largest number of calls that were in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn answer(&self, request: &ChatRequest) -> Reply {
        if let Some(reply) = self.rules.iter().find_map(|rule| rule(request)) {
            return reply;
        }
        if let Some(reply) = self.queue.lock().expect("queue lock").pop_front() {
            return reply;
        }
        match &self.fallback {
            Some(f) => f(request).expect("fallback always answers"),
            None => Err(LlmError::Backend(format!(
                "scripted model has no reply for: {}",
                request.messages.last().map(|m| m.content.as_str()).unwrap_or("")
            ))),
        }
    }
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.requests.lock().expect("requests lock").push(request.clone());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let reply = self.answer(request);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let text = reply?;
        let usage = Usage {
            prompt_tokens: request.messages.iter().map(|m| words(&m.content)).sum(),
            completion_tokens: words(&text),
            cached_tokens: 0,
        };
        Ok(ChatResponse {
            text,
            finish_reason: FinishReason::Stop,
            usage,
            model: self.name.clone(),
            latency_ms: self.latency.as_millis() as u64,
            cache_hit: false,
            tool_calls: Vec::new(),
        })
    }

    fn identity(&self) -> String {
        format!("scripted:{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ann_llm::Message;

    fn req(text: &str) -> ChatRequest {
        ChatRequest::new("m", vec![Message::user(text)])
    }

    #[tokio::test]
    async fn rules_then_queue_then_fallback() {
        let model = ScriptedModel::default()
            .on_contains("capital", "Paris")
            .fallback(|r| Ok(format!("echo {}", r.messages[0].content)));
        model.push_reply("queued");
        assert_eq!(model.complete(&req("the capital?")).await.unwrap().text, "Paris");
        assert_eq!(model.complete(&req("other")).await.unwrap().text, "queued");
        let last = model.complete(&req("again")).await.unwrap();
        assert_eq!(last.text, "echo again");
        assert_eq!(last.usage, Usage { prompt_tokens: 1, completion_tokens: 2, cached_tokens: 0 });
        assert_eq!(model.calls(), 3);
        assert_eq!(model.requests()[1].messages[0].content, "other");
    }

    #[tokio::test]
    async fn no_reply_is_an_error_and_errors_can_be_queued() {
        let model = ScriptedModel::default();
        model.push_error(LlmError::Timeout(Duration::from_secs(1)));
        assert!(matches!(model.complete(&req("x")).await, Err(LlmError::Timeout(_))));
        assert!(matches!(model.complete(&req("x")).await, Err(LlmError::Backend(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn counts_max_in_flight() {
        let model = std::sync::Arc::new(
            ScriptedModel::default().with_latency(Duration::from_millis(10)).fallback(|_| Ok("ok".into())),
        );
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let m = model.clone();
                tokio::spawn(async move { m.complete(&req("x")).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(model.max_in_flight(), 5);
    }
}
