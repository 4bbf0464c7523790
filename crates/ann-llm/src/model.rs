//! The `ChatModel` trait: one object-safe async method that every backend and decorator implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ChatRequest, ChatResponse, LlmError};

/// Anything that answers chat requests: an HTTP backend, the embedded model, or a decorator around one.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Answer one request.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;

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
    fn identity(&self) -> String {
        (**self).identity()
    }
}
