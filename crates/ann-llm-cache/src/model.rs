//! `CachedModel`: the `ChatModel` decorator that answers from the cache and records what it forwards.

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cache::{Join, Outcome};
use crate::claims::ClaimGuard;
use crate::store::OnConflict;
use crate::writer::Claim;
use crate::{CacheError, CacheStats, ResponseCache};

/// How a [`CachedModel`] uses its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Answer from the cache; on a miss call the backend and store its answer.
    #[default]
    ReadWrite,
    /// Answer from the cache only; a miss is [`LlmError::CacheMiss`] and the backend is never called.
    ReplayOnly,
    /// Always call the backend and overwrite the stored answer.
    Refresh,
    /// Do not touch the cache at all.
    Off,
}

/// A [`ChatModel`] that answers from a [`ResponseCache`] and forwards misses to `inner`.
///
/// The key is [`ChatRequest::fingerprint`] of the request with the inner model's identity: every
/// sampling field, the response format and the sample index count, tags do not. Answers served from
/// the cache (or shared with an identical call in flight) have `cache_hit = true` and keep their
/// recorded usage, so metering counts the tokens saved. Errors are never stored. Identical requests
/// in flight at once reach `inner` once, in one process and across processes sharing the file.
pub struct CachedModel<M> {
    inner: M,
    cache: ResponseCache,
    mode: CacheMode,
}

impl<M: ChatModel> CachedModel<M> {
    /// Wrap `inner` in read-write mode.
    pub fn new(inner: M, cache: ResponseCache) -> Self {
        Self { inner, cache, mode: CacheMode::ReadWrite }
    }

    /// The same wrapper with another mode.
    pub fn with_mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The counters of the underlying cache (shared with every model on the same [`ResponseCache`]).
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The leader's part for a key: the stored answer (`true`: from the database), or the backend's
    /// answer once stored. Across processes, a key another process is fetching is waited for.
    async fn lead(&self, key: &str, backend: &str, request: &ChatRequest) -> Result<(ChatResponse, bool), LlmError> {
        if self.mode == CacheMode::Refresh {
            return Ok((self.call_and_store(key, backend, request, None).await?, false));
        }
        let mut pause = CLAIM_POLL_FIRST;
        loop {
            match self.cache.claim_and_lookup(key).await? {
                Claim::Hit(hit) => return Ok((hit, true)),
                Claim::Claimed(claim) => {
                    return Ok((self.call_and_store(key, backend, request, Some(claim)).await?, false));
                }
                Claim::Held => {
                    tracing::debug!(key, "response cache: another process is fetching this request; waiting");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.cache.claim_poll_max());
                }
            }
        }
    }

    /// Call the backend and store a successful answer; `claim` (the key's claim across processes)
    /// is released once the answer is stored, or at once if the call fails or is dropped. A failed
    /// store keeps the paid answer in the cache's memory and fails with [`CacheError::Unsaved`]: an
    /// infrastructure failure, not the model's.
    async fn call_and_store(
        &self,
        key: &str,
        backend: &str,
        request: &ChatRequest,
        claim: Option<ClaimGuard>,
    ) -> Outcome {
        self.cache.record_miss();
        let response = self.inner.complete(request).await?;
        let on_conflict = if self.mode == CacheMode::Refresh { OnConflict::Replace } else { OnConflict::Keep };
        if let Err(e) = self.cache.store(key, backend, request, &response, on_conflict, claim).await {
            tracing::error!(key, error = %e, "response cache: a paid answer could not be stored");
            self.cache.keep_unsaved(backend, request, &response);
            return Err(CacheError::Unsaved { key: key.to_owned(), source: Box::new(e) }.into());
        }
        tracing::debug!(key, backend, "response cache: stored");
        Ok(ChatResponse { cache_hit: false, ..response })
    }
}

/// The first pause between two looks at a key another process is fetching (then doubling up to
/// [`ResponseCache::claim_poll_max`]).
const CLAIM_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(5);

#[async_trait]
impl<M: ChatModel> ChatModel for CachedModel<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        if self.mode == CacheMode::Off {
            return self.inner.complete(request).await;
        }
        let backend = self.inner.identity();
        let key = request.fingerprint(&backend);
        if self.mode != CacheMode::Refresh {
            if let Some(hit) = self.cache.recent(&key) {
                return Ok(self.cache.served(hit, false));
            }
            if self.mode == CacheMode::ReplayOnly {
                if let Some(hit) = self.cache.get(&key).await? {
                    tracing::debug!(key, "response cache: hit");
                    self.cache.remember(&key, &hit);
                    return Ok(self.cache.served(hit, false));
                }
                self.cache.record_miss();
                return Err(LlmError::CacheMiss { key, summary: summarize(&backend, request) });
            }
        }
        loop {
            match self.cache.join(&key) {
                Join::Follower(mut outcome) => {
                    let shared = outcome.wait_for(Option::is_some).await.map(|o| o.clone());
                    match shared {
                        Ok(Some(Ok(response))) => return Ok(self.cache.served(response, true)),
                        Ok(Some(Err(e))) => return Err(e),
                        // The leader was cancelled before it finished: try again (perhaps as the leader).
                        Ok(None) | Err(_) => continue,
                    }
                }
                Join::Leader(leader) => {
                    let outcome = self.lead(&key, &backend, request).await;
                    leader.finish(outcome.clone().map(|(response, _)| response));
                    return match outcome {
                        Ok((hit, true)) => Ok(self.cache.served(hit, false)),
                        Ok((response, false)) => Ok(response),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    fn concurrency_limit(&self) -> Option<usize> {
        self.inner.concurrency_limit()
    }
}

/// A short description of a request for error messages: model, backend, non-default sampling and
/// the start of the last message.
pub(crate) fn summarize(backend: &str, request: &ChatRequest) -> String {
    const PREVIEW_CHARS: usize = 60;
    let mut s = format!("model {} on {backend}", request.model);
    if let Some(t) = request.temperature {
        s.push_str(&format!(", temperature {t}"));
    }
    if request.sample_index != 0 {
        s.push_str(&format!(", sample {}", request.sample_index));
    }
    if let Some(last) = request.messages.last() {
        let flat = last.content.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut preview: String = flat.chars().take(PREVIEW_CHARS).collect();
        if flat.chars().count() > PREVIEW_CHARS {
            preview.push('…');
        }
        let role = format!("{:?}", last.role).to_lowercase();
        s.push_str(&format!(", last {role} message \"{preview}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use ann_llm::Message;

    use super::*;

    fn check(request: ChatRequest, expected: &str) {
        assert_eq!(summarize("scripted:s", &request), expected);
    }

    #[test]
    fn summaries_name_model_sampling_and_message_start() {
        check(
            ChatRequest::new("m", vec![Message::user("What is\n the capital of France?")]),
            "model m on scripted:s, last user message \"What is the capital of France?\"",
        );
        check(
            ChatRequest::new("m", vec![Message::system("x".repeat(100))]).with_temperature(0.5).with_sample_index(2),
            &format!("model m on scripted:s, temperature 0.5, sample 2, last system message \"{}…\"", "x".repeat(60)),
        );
        check(ChatRequest::new("m", vec![]), "model m on scripted:s");
        check(
            ChatRequest::new("m", vec![Message::user("é".repeat(61))]),
            &format!("model m on scripted:s, last user message \"{}…\"", "é".repeat(60)),
        );
    }
}
