//! Configuration of the OpenAI-compatible backend: endpoints, model, key variable, timeouts, retries, limits.

use std::time::Duration;

use ann_llm::LlmError;
use serde::{Deserialize, Serialize};

/// Where and how to call an OpenAI-compatible chat completions endpoint.
///
/// It names the environment variable holding the API key, never the key itself, so a config can
/// be logged, serialized and committed safely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// Base URLs such as `https://api.openai.com/v1` or `http://gpu-3:8000/v1`; requests go to
    /// `{base}/chat/completions`. Several URLs are replicas of one model, balanced by least-in-flight.
    pub base_urls: Vec<String>,
    /// The model to ask for. When empty, each request's own `model` is sent instead.
    pub model: String,
    /// Name of the environment variable holding the API key (read by [`crate::OpenAiModel::from_env`]);
    /// an unset or empty variable means no `Authorization` header (local servers need none).
    pub api_key_env: String,
    /// Time allowed to establish a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed for one attempt, from connecting to the end of the body, in milliseconds.
    pub timeout_ms: u64,
    /// Retries of failed attempts (429, 5xx, timeouts, dropped connections, cut-off or malformed bodies).
    pub retry: RetryPolicy,
    /// Client-side rate limits.
    pub rate_limits: RateLimits,
    /// At most this many requests in flight at once, over all replicas.
    pub max_concurrency: usize,
    /// A replica whose connection failed is avoided for this long (milliseconds) while another is up.
    pub replica_cooldown_ms: u64,
    /// Largest response body accepted, in bytes; a larger one is [`LlmError::ResponseTooLarge`],
    /// read no further, stored nowhere and not retried.
    pub max_response_bytes: usize,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_urls: vec!["https://api.openai.com/v1".to_string()],
            model: "gpt-4o-mini".to_string(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            connect_timeout_ms: 10_000,
            timeout_ms: 120_000,
            retry: RetryPolicy::default(),
            rate_limits: RateLimits::default(),
            max_concurrency: 16,
            replica_cooldown_ms: 30_000,
            max_response_bytes: 1 << 20,
        }
    }
}

/// Exponential backoff with jitter, bounded by attempts and by total time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled for each further retry.
    pub base_backoff_ms: u64,
    /// Longest backoff between two attempts, in milliseconds (a server's `Retry-After` may ask for more).
    pub max_backoff_ms: u64,
    /// Fraction of each backoff taken off at random (0 = none, 1 = anything down to zero).
    pub jitter: f64,
    /// Seed of the jitter draws.
    pub seed: u64,
    /// Give up instead of waiting when the call would then have lasted longer than this, in milliseconds.
    pub max_total_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_backoff_ms: 500,
            max_backoff_ms: 30_000,
            jitter: 0.5,
            seed: 0,
            max_total_ms: 600_000,
        }
    }
}

/// Client-side limits, so that parallel work stays under a provider's quota instead of collecting 429s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Requests (attempts) per minute; `None` = unlimited.
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute, counted as OpenAI does: prompt estimate plus `max_tokens`, corrected by
    /// the reported usage once known; `None` = unlimited.
    pub tokens_per_minute: Option<u64>,
    /// How many seconds' worth of quota may go out at once after an idle spell.
    pub burst_seconds: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { requests_per_minute: None, tokens_per_minute: None, burst_seconds: 1.0 }
    }
}

impl OpenAiConfig {
    /// A config for one endpoint and model, everything else at its default.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self { base_urls: vec![base_url.into()], model: model.into(), ..Self::default() }
    }

    /// **For binaries only** (libraries take a config): the real endpoint named by the environment,
    /// or `Ok(None)` when `ANN_OPENAI_BASE_URL` is unset or empty.
    ///
    /// - `ANN_OPENAI_BASE_URL`: base URL, or several comma-separated replicas of one model.
    /// - `ANN_OPENAI_MODEL`: the model name (required when a base URL is set).
    /// - `ANN_OPENAI_API_KEY`, else `OPENAI_API_KEY`: the key; only the variable's *name* is kept
    ///   in the config, [`crate::OpenAiModel::from_env`] reads the value.
    pub fn from_env() -> Result<Option<Self>, LlmError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(urls) = var("ANN_OPENAI_BASE_URL") else { return Ok(None) };
        let base_urls: Vec<String> = urls.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
        let model = var("ANN_OPENAI_MODEL")
            .ok_or_else(|| LlmError::Config("ANN_OPENAI_BASE_URL is set but ANN_OPENAI_MODEL is not".into()))?;
        let api_key_env =
            if var("ANN_OPENAI_API_KEY").is_some() { "ANN_OPENAI_API_KEY" } else { "OPENAI_API_KEY" }.to_string();
        let config = Self { base_urls, model, api_key_env, ..Self::default() };
        config.validate()?;
        Ok(Some(config))
    }

    /// Check that the config can work; says what is wrong.
    pub fn validate(&self) -> Result<(), LlmError> {
        let fail = |msg: String| Err(LlmError::Config(msg));
        if self.base_urls.is_empty() {
            return fail("openai: no base URL".into());
        }
        if self.max_response_bytes == 0 {
            return fail("openai: max_response_bytes must be above 0".into());
        }
        for url in &self.base_urls {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return fail(format!("openai: base URL {url:?} is not an http(s) URL")),
            }
        }
        if self.retry.max_attempts == 0 {
            return fail("openai: retry.max_attempts must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return fail("openai: retry.jitter must be within 0..=1".into());
        }
        if self.max_concurrency == 0 {
            return fail("openai: max_concurrency must be at least 1".into());
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return fail("openai: timeouts must be positive".into());
        }
        if self.rate_limits.requests_per_minute == Some(0) || self.rate_limits.tokens_per_minute == Some(0) {
            return fail("openai: a rate limit of 0 would never admit a request".into());
        }
        if self.rate_limits.burst_seconds.is_nan() || self.rate_limits.burst_seconds <= 0.0 {
            return fail("openai: rate_limits.burst_seconds must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
