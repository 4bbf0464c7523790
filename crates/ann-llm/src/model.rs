//! The `ChatModel` trait: one object-safe async method that every backend and decorator implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ChatRequest, ChatResponse, LlmError, Usage};

/// Told about every billable request a backend sends for one call (each HTTP attempt, retries
/// included): [`Attempts::sending`] before it is sent, [`Attempts::answered`] once it is over. The
/// budget implements it, so that it counts requests a provider bills, not logical calls.
pub trait Attempts: Send + Sync {
    /// An attempt is about to be sent. An error (a budget stop) means: do not send it, and end the
    /// call with this error.
    fn sending(&self) -> Result<(), LlmError>;
    /// The attempt announced last is over; `usage` is what its answer reported (also a 200 whose
    /// body was otherwise unusable), `None` when it reported nothing (an error status, a timeout).
    fn answered(&self, usage: Option<Usage>);
}

/// Anything that answers chat requests: an HTTP backend, the embedded model, or a decorator around one.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Answer one request.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;

    /// Answer one request, announcing every billable request sent for it to `attempts`. The
    /// default counts the call as one attempt (right for a backend that never retries); a backend
    /// that retries (`OpenAiModel`) announces each attempt, and a decorator placed between a
    /// [`crate::BudgetedModel`] and its backend must forward this method.
    async fn complete_counted(&self, request: &ChatRequest, attempts: &dyn Attempts) -> Result<ChatResponse, LlmError> {
        attempts.sending()?;
        let result = self.complete(request).await;
        attempts.answered(result.as_ref().ok().filter(|r| !r.cache_hit).map(|r| r.usage));
        result
    }

    /// A stable identity of the backend (kind, endpoint or file, model), part of the cache key so
    /// that two backends never share answers. Decorators return their inner model's identity.
    fn identity(&self) -> String;
}

/// The shared handle every layer above takes.
pub type SharedModel = Arc<dyn ChatModel>;

#[async_trait]
impl<T: ChatModel + ?Sized> ChatModel for Arc<T> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        (**self).complete(request).await
    }
    async fn complete_counted(&self, request: &ChatRequest, attempts: &dyn Attempts) -> Result<ChatResponse, LlmError> {
        (**self).complete_counted(request, attempts).await
    }
    fn identity(&self) -> String {
        (**self).identity()
    }
}
