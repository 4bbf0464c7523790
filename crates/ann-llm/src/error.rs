//! The error type every backend and decorator returns.

use std::time::Duration;

/// Why a chat call failed. Model output is never an error: a garbled answer is data.
///
/// Every variant is an *infrastructure failure* ([`LlmError::is_infrastructure`]: the call did
/// not produce the model's answer for a reason outside the network), except two: an exhausted
/// budget (its own stop, [`LlmError::budget_exhausted`]) and [`LlmError::ContextOverflow`], which is
/// deterministic and caused by the network's own prompt, so it is data about the network (that
/// call failed; an aggregator does without it, as with any answer it cannot use).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The backend answered with an HTTP error status (body kept for diagnosis, secrets redacted).
    #[error("HTTP {status} from {endpoint}: {body}")]
    Http { status: u16, endpoint: String, body: String },
    /// 429: too many requests; `retry_after` as the server asked.
    #[error("rate limited by {endpoint} (retry after {retry_after:?})")]
    RateLimited { endpoint: String, retry_after: Option<Duration> },
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset or cut off mid-body.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The backend's answer was not a valid chat completion (malformed JSON, no choices).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// Retries ran out; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
    /// A hard budget would be exceeded by this call's worst case (or its spend could not be
    /// recorded for a resumed run); nothing was sent.
    #[error("budget exhausted: {0}")]
    BudgetExhausted(String),
    /// The user interrupted the run (Ctrl-C closed its budget, see `Budget::interrupt_when`):
    /// a budget stop of its own kind, so that callers tell it apart without reading text.
    #[error("budget exhausted: {}", crate::INTERRUPTED)]
    Interrupted,
    /// Replay-only cache mode and no recorded answer for this request.
    #[error("no cached response for request {key} (replay-only mode): {summary}")]
    CacheMiss { key: String, summary: String },
    /// The backend's answer was larger than the configured limit: not stored, not retried (a
    /// provider that sends megabytes would send them again, and bill them).
    #[error("the response from {endpoint} is larger than the limit of {limit} bytes")]
    ResponseTooLarge { endpoint: String, limit: usize },
    /// The prompt does not fit the model's context window.
    #[error("prompt of {prompt_tokens} tokens exceeds the context window of {context} tokens")]
    ContextOverflow { prompt_tokens: usize, context: usize },
    /// Misconfiguration (missing key, bad URL, unknown model file); names what is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The response cache could not read or store an answer (a full disk, a lock past its busy
    /// timeout, a read-only file): an answer received and possibly paid for could not be kept.
    #[error("response cache {path}: {detail}")]
    Storage { path: String, detail: String },
    /// Anything else a backend reports (cache database, model runtime).
    #[error("{0}")]
    Backend(String),
}

impl LlmError {
    /// Whether trying the same call again may succeed (429, 5xx, timeouts, dropped connections).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 409,
            LlmError::RateLimited { .. } | LlmError::Timeout(_) | LlmError::Connection(_) => true,
            LlmError::InvalidResponse(_) => true,
            _ => false,
        }
    }

    /// Whether this failure is the infrastructure's, not the model's or the network's: a transport
    /// failure, an error status, an exhausted retry, a timeout, a cache or disk error, a
    /// misconfiguration, a replay-only cache miss. Such a failure is never scored: the forward
    /// phase stops (or, by configuration, leaves the example out with a visible count).
    ///
    /// Not infrastructure: an exhausted budget (a stop of its own, checked with
    /// [`LlmError::budget_exhausted`]) and [`LlmError::ContextOverflow`] (the network's own prompt
    /// does not fit: deterministic, so retrying later cannot help; the call failed, and that is
    /// data about the network).
    pub fn is_infrastructure(&self) -> bool {
        match self {
            LlmError::BudgetExhausted(_) | LlmError::Interrupted | LlmError::ContextOverflow { .. } => false,
            LlmError::RetriesExhausted { last, .. } => last.is_infrastructure(),
            _ => true,
        }
    }

    /// The budget's reason when this error is a budget stop (also behind exhausted retries): the
    /// one check every caller uses to tell "stop the run" from "this call failed".
    pub fn budget_exhausted(&self) -> Option<&str> {
        match self {
            LlmError::BudgetExhausted(why) => Some(why),
            LlmError::Interrupted => Some(crate::INTERRUPTED),
            LlmError::RetriesExhausted { last, .. } => last.budget_exhausted(),
            _ => None,
        }
    }

    /// Whether this budget stop is the user's interrupt (also behind exhausted retries).
    pub fn is_interrupted(&self) -> bool {
        match self {
            LlmError::Interrupted => true,
            LlmError::RetriesExhausted { last, .. } => last.is_interrupted(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let http = |status| LlmError::Http { status, endpoint: "e".into(), body: String::new() };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(401).is_retryable());
        assert!(LlmError::RateLimited { endpoint: "e".into(), retry_after: None }.is_retryable());
        assert!(LlmError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(!LlmError::BudgetExhausted("x".into()).is_retryable());
        assert!(!LlmError::Config("x".into()).is_retryable());
        assert!(!LlmError::Storage { path: "p".into(), detail: "disk full".into() }.is_retryable());
    }

    #[test]
    fn infrastructure_classification() {
        let refused = LlmError::Connection("connection refused".into());
        let gave_up = LlmError::RetriesExhausted { attempts: 5, last: Box::new(refused.clone()) };
        let storage = LlmError::Storage { path: "cache.sqlite".into(), detail: "disk full".into() };
        for infra in
            [refused, gave_up, storage, LlmError::Timeout(Duration::from_secs(1)), LlmError::Backend("x".into())]
        {
            assert!(infra.is_infrastructure(), "{infra}");
        }
        let budget = LlmError::BudgetExhausted("cap".into());
        let overflow = LlmError::ContextOverflow { prompt_tokens: 10, context: 5 };
        let budget_behind_retries = LlmError::RetriesExhausted { attempts: 2, last: Box::new(budget.clone()) };
        let interrupted = LlmError::RetriesExhausted { attempts: 2, last: Box::new(LlmError::Interrupted) };
        assert!(interrupted.is_interrupted() && !budget.is_interrupted());
        assert_eq!(interrupted.budget_exhausted(), Some(crate::INTERRUPTED));
        for data in [budget, overflow, budget_behind_retries, interrupted] {
            assert!(!data.is_infrastructure(), "{data}");
        }
    }
}
