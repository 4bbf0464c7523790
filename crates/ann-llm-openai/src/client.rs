//! `OpenAiModel`: the `ChatModel` over HTTP, with the one retry loop, rate limits, concurrency cap and replicas.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ann_llm::{Attempts, ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, Usage};
use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tokio::sync::Semaphore;
use tracing::{Instrument, Span, field};

use crate::clock::{Clock, TokioClock};
use crate::config::OpenAiConfig;
use crate::limiter::TokenBucket;
use crate::wire;

/// An API key. It is never printed: `Debug` shows `ApiKey(<redacted>)`, and error bodies that
/// quote it have it replaced by `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key in the environment variable `var`, if set and not blank.
    pub fn from_env_var(var: &str) -> Option<Self> {
        std::env::var(var).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).map(Self)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// What one replica has seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStats {
    pub base_url: String,
    /// Attempts in flight right now.
    pub in_flight: usize,
    /// Attempts sent to it.
    pub attempts: u64,
    /// Attempts that failed (any error).
    pub failures: u64,
}

struct Replica {
    base_url: String,
    /// `<base_url>/chat/completions`, parsed once.
    url: reqwest::Url,
    in_flight: AtomicUsize,
    attempts: AtomicU64,
    failures: AtomicU64,
    /// Clock milliseconds until which the replica counts as down (after a connection failure).
    down_until_ms: AtomicU64,
}

struct InFlightGuard<'a>(&'a AtomicUsize);

impl<'a> InFlightGuard<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An OpenAI-compatible chat completions backend (OpenAI, vLLM, llama.cpp server, Ollama, OpenRouter).
///
/// Retries happen here and only here: with exponential backoff and seeded jitter on 429, 5xx,
/// timeouts, dropped connections and cut-off or malformed bodies, honouring `Retry-After`, bounded
/// by [`crate::RetryPolicy::max_attempts`] and [`crate::RetryPolicy::max_total_ms`]. Stack no other
/// retrying layer on top. Every call runs in a `chat` tracing span with OpenTelemetry GenAI
/// attribute names (`gen_ai.system`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...).
pub struct OpenAiModel {
    config: OpenAiConfig,
    api_key: Option<ApiKey>,
    authorization: Option<HeaderValue>,
    http: reqwest::Client,
    replicas: Vec<Replica>,
    next_replica: AtomicUsize,
    concurrency: Semaphore,
    requests_per_minute: Option<TokenBucket>,
    tokens_per_minute: Option<TokenBucket>,
    clock: Arc<dyn Clock>,
    jitter: Mutex<ChaCha8Rng>,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("config", &self.config)
            .field("api_key", &self.api_key)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl OpenAiModel {
    /// A backend for `config` with an explicit key (`None`: send no `Authorization` header).
    pub fn new(config: OpenAiConfig, api_key: Option<ApiKey>) -> Result<Self, LlmError> {
        config.validate()?;
        let authorization = match &api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.0))
                    .map_err(|_| LlmError::Config("openai: the API key is not a valid HTTP header value".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(config.timeout())
            .user_agent(concat!("agentic-nn/", env!("CARGO_PKG_VERSION")))
            // Retries happen in `call` only: reqwest's own layer would copy every request in case
            // it retries one.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(|e| LlmError::Config(format!("openai: cannot build the HTTP client: {e}")))?;
        let replicas = config
            .base_urls
            .iter()
            .map(|base| {
                let endpoint = format!("{}/chat/completions", base.trim_end_matches('/'));
                Ok(Replica {
                    base_url: base.clone(),
                    url: reqwest::Url::parse(&endpoint)
                        .map_err(|e| LlmError::Config(format!("openai: the endpoint {endpoint} is not a URL: {e}")))?,
                    in_flight: AtomicUsize::new(0),
                    attempts: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    down_until_ms: AtomicU64::new(0),
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let limits = &config.rate_limits;
        Ok(Self {
            requests_per_minute: limits.requests_per_minute.map(|n| TokenBucket::new(n as f64, limits.burst_seconds)),
            tokens_per_minute: limits.tokens_per_minute.map(|n| TokenBucket::new(n as f64, limits.burst_seconds)),
            concurrency: Semaphore::new(config.max_concurrency),
            jitter: Mutex::new(ChaCha8Rng::seed_from_u64(config.retry.seed)),
            clock: Arc::new(TokioClock::default()),
            next_replica: AtomicUsize::new(0),
            replicas,
            http,
            authorization,
            api_key,
            config,
        })
    }

    /// A backend for `config` whose key is read from the environment variable `config.api_key_env`
    /// (unset or blank: no key). The only place this crate reads the environment for a key.
    pub fn from_env(config: OpenAiConfig) -> Result<Self, LlmError> {
        let key = ApiKey::from_env_var(&config.api_key_env);
        Self::new(config, key)
    }

    /// Wait (backoff, `Retry-After`, rate limits) on this clock instead of tokio time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Per-replica counters, in the order of `config.base_urls`.
    pub fn replica_stats(&self) -> Vec<ReplicaStats> {
        self.replicas
            .iter()
            .map(|r| ReplicaStats {
                base_url: r.base_url.clone(),
                in_flight: r.in_flight.load(Ordering::SeqCst),
                attempts: r.attempts.load(Ordering::SeqCst),
                failures: r.failures.load(Ordering::SeqCst),
            })
            .collect()
    }

    fn wire_model<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        if self.config.model.is_empty() { &request.model } else { &self.config.model }
    }

    fn secret(&self) -> Option<&str> {
        self.api_key.as_ref().map(|k| k.0.as_str())
    }

    /// Least in flight among replicas not yet tried by this call and not down; ties in round-robin order.
    fn pick_replica(&self, tried: &[bool]) -> usize {
        let n = self.replicas.len();
        let now_ms = self.clock.now().as_millis() as u64;
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| {
                let r = &self.replicas[i];
                (tried[i], r.down_until_ms.load(Ordering::SeqCst) > now_ms, r.in_flight.load(Ordering::SeqCst))
            })
            .expect("at least one replica")
    }

    /// Wait until the rate limits admit one request of about `tokens` tokens.
    async fn admit(&self, tokens: f64) {
        let now = self.clock.now();
        let mut go = now;
        if let Some(bucket) = &self.requests_per_minute {
            go = go.max(bucket.reserve(now, 1.0));
        }
        if let Some(bucket) = &self.tokens_per_minute {
            go = go.max(bucket.reserve(now, tokens));
        }
        if go > now {
            tracing::debug!(wait_ms = (go - now).as_millis() as u64, "client-side rate limit");
            self.clock.sleep_until(go).await;
        }
    }

    /// The backoff before retry number `retry` (1 = the first retry), with seeded jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let p = &self.config.retry;
        let exp = p.base_backoff_ms.saturating_mul(1u64 << (retry - 1).min(32)).min(p.max_backoff_ms);
        let u: f64 = self.jitter.lock().expect("jitter lock").random();
        Duration::from_millis((exp as f64 * (1.0 - p.jitter * u)).round() as u64)
    }

    fn transport_error(&self, e: reqwest::Error, replica: &Replica) -> LlmError {
        if e.is_timeout() {
            let limit = if e.is_connect() { self.config.connect_timeout_ms } else { self.config.timeout_ms };
            return LlmError::Timeout(Duration::from_millis(limit));
        }
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        LlmError::Connection(wire::redact(&format!("{}: {message}", replica.base_url), self.secret()))
    }

    /// One HTTP exchange with one replica, and the usage its answer reported (also when the rest
    /// of a 2xx body was unusable).
    async fn attempt(&self, index: usize, body: &[u8], model: &str) -> (Result<ChatResponse, LlmError>, Option<Usage>) {
        let replica = &self.replicas[index];
        let _in_flight = InFlightGuard::enter(&replica.in_flight);
        replica.attempts.fetch_add(1, Ordering::SeqCst);
        let (result, usage) = self.exchange(replica, body, model).await;
        match &result {
            Ok(_) => replica.down_until_ms.store(0, Ordering::SeqCst),
            Err(e) => {
                replica.failures.fetch_add(1, Ordering::SeqCst);
                if matches!(e, LlmError::Connection(_)) {
                    let until = self.clock.now().as_millis() as u64 + self.config.replica_cooldown_ms;
                    replica.down_until_ms.store(until, Ordering::SeqCst);
                }
            }
        }
        (result, usage)
    }

    /// The response body, read chunk by chunk and refused past `max_response_bytes`.
    async fn read_body(&self, mut response: reqwest::Response, replica: &Replica) -> Result<Vec<u8>, LlmError> {
        let limit = self.config.max_response_bytes;
        let too_large = || LlmError::ResponseTooLarge { endpoint: replica.base_url.clone(), limit };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(e, replica))? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn exchange(
        &self,
        replica: &Replica,
        body: &[u8],
        model: &str,
    ) -> (Result<ChatResponse, LlmError>, Option<Usage>) {
        match self.fetch(replica, body).await {
            Err(error) => (Err(error), None),
            Ok(bytes) => match wire::parse_response(&bytes, model) {
                Ok(response) => {
                    let usage = response.usage;
                    (Ok(response), Some(usage))
                }
                Err(LlmError::InvalidResponse(msg)) => {
                    let error =
                        LlmError::InvalidResponse(wire::redact(&format!("{}: {msg}", replica.base_url), self.secret()));
                    (Err(error), wire::reported_usage(&bytes))
                }
                Err(other) => (Err(other), wire::reported_usage(&bytes)),
            },
        }
    }

    /// Send one request to `replica`: the body of a 2xx answer, or the error.
    async fn fetch(&self, replica: &Replica, body: &[u8]) -> Result<Vec<u8>, LlmError> {
        let mut request = self
            .http
            .post(replica.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.to_vec());
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request.send().await.map_err(|e| self.transport_error(e, replica))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| wire::parse_retry_after(v, self.clock.system_time()));
        let bytes = self.read_body(response, replica).await?;
        if status.as_u16() == 429 {
            return Err(LlmError::RateLimited { endpoint: replica.base_url.clone(), retry_after });
        }
        if !status.is_success() {
            let text = wire::excerpt(&String::from_utf8_lossy(&bytes));
            return Err(LlmError::Http {
                status: status.as_u16(),
                endpoint: replica.base_url.clone(),
                body: wire::redact(&text, self.secret()),
            });
        }
        Ok(bytes)
    }

    /// The retry loop: the one place where this crate retries. Every attempt is announced to
    /// `attempts` before it is sent (a refusal, a budget stop, ends the call) and settled with the
    /// usage its answer reported.
    async fn call(
        &self,
        request: &ChatRequest,
        model: &str,
        span: &Span,
        attempts: &dyn Attempts,
    ) -> Result<ChatResponse, LlmError> {
        let body = wire::request_body(model, request);
        let estimate = estimate_tokens(request);
        let policy = &self.config.retry;
        let max_total = Duration::from_millis(policy.max_total_ms);
        let started = self.clock.now();
        let mut tried = vec![false; self.replicas.len()];
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.admit(estimate).await;
            let permit = self.concurrency.acquire().await.expect("the semaphore is never closed");
            let index = self.pick_replica(&tried);
            tried[index] = true;
            span.record("server.address", self.replicas[index].base_url.as_str());
            span.record("retries", attempt - 1);
            attempts.sending().await?;
            let (outcome, usage) = self.attempt(index, &body, model).await;
            attempts.answered(usage);
            drop(permit);
            let error = match outcome {
                Ok(mut response) => {
                    if let Some(bucket) = &self.tokens_per_minute {
                        bucket.adjust(self.clock.now(), estimate - response.usage.total() as f64);
                    }
                    response.latency_ms = self.clock.now().saturating_sub(started).as_millis() as u64;
                    return Ok(response);
                }
                Err(error) => error,
            };
            if let Some(bucket) = &self.tokens_per_minute {
                bucket.adjust(self.clock.now(), estimate);
            }
            if !error.is_retryable() {
                return Err(error);
            }
            let give_up = |error: LlmError| {
                if attempt == 1 {
                    error
                } else {
                    LlmError::RetriesExhausted { attempts: attempt, last: Box::new(error) }
                }
            };
            if attempt >= policy.max_attempts {
                return Err(give_up(error));
            }
            let untried_replica = tried.iter().any(|t| !t);
            let wait = match &error {
                LlmError::RateLimited { retry_after: Some(after), .. } => *after,
                // A dead replica: go straight to another one.
                LlmError::Connection(_) if untried_replica => Duration::ZERO,
                _ => self.backoff(attempt),
            };
            if self.clock.now().saturating_sub(started) + wait > max_total {
                return Err(give_up(error));
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %error, "chat attempt failed, retrying");
            if !wait.is_zero() {
                self.clock.sleep(wait).await;
            }
            if !untried_replica {
                tried.iter_mut().for_each(|t| *t = false);
            }
        }
    }
}

/// Tokens a request may use, as OpenAI's rate limiter counts them (about 4 bytes a token, plus
/// `max_tokens`); corrected with the reported usage after the call.
fn estimate_tokens(request: &ChatRequest) -> f64 {
    let prompt: usize = request.messages.iter().map(|m| m.content.len() / 4 + 4).sum();
    (prompt + request.max_tokens.unwrap_or(0) as usize) as f64
}

/// `0.7f32` as `0.7f64` (not `0.699999988...`), for span fields.
fn f32_as_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

fn finish_reason_name(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Other(other) => other,
    }
}

fn error_type(error: &LlmError) -> &'static str {
    match error {
        LlmError::Http { .. } => "http",
        LlmError::RateLimited { .. } => "rate_limited",
        LlmError::Timeout(_) => "timeout",
        LlmError::Connection(_) => "connection",
        LlmError::InvalidResponse(_) => "invalid_response",
        LlmError::ResponseTooLarge { .. } => "response_too_large",
        LlmError::RetriesExhausted { .. } => "retries_exhausted",
        LlmError::BudgetExhausted(_) => "budget_exhausted",
        LlmError::Interrupted => "interrupted",
        LlmError::CacheMiss { .. } => "cache_miss",
        LlmError::ContextOverflow { .. } => "context_overflow",
        LlmError::Config(_) => "config",
        LlmError::Storage { .. } => "storage",
        LlmError::Backend(_) => "backend",
    }
}

/// Counts nothing: for a call made without a budget.
struct Uncounted;

#[async_trait]
impl Attempts for Uncounted {
    async fn sending(&self) -> Result<(), LlmError> {
        Ok(())
    }
    fn answered(&self, _usage: Option<Usage>) {}
}

#[async_trait]
impl ChatModel for OpenAiModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.complete_counted(request, &Uncounted).await
    }

    /// Every HTTP attempt (retries included) is announced to `attempts`, with the usage it reported.
    async fn complete_counted(&self, request: &ChatRequest, attempts: &dyn Attempts) -> Result<ChatResponse, LlmError> {
        let model = self.wire_model(request);
        let span = tracing::info_span!(
            "chat",
            otel.name = %format_args!("chat {model}"),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = "openai",
            gen_ai.request.model = %model,
            gen_ai.request.temperature = field::Empty,
            gen_ai.request.top_p = field::Empty,
            gen_ai.request.max_tokens = field::Empty,
            gen_ai.request.seed = field::Empty,
            gen_ai.response.model = field::Empty,
            gen_ai.response.finish_reasons = field::Empty,
            gen_ai.usage.input_tokens = field::Empty,
            gen_ai.usage.output_tokens = field::Empty,
            usage.cached_tokens = field::Empty,
            server.address = field::Empty,
            error.type = field::Empty,
            latency_ms = field::Empty,
            retries = field::Empty,
            cache_hit = false,
            tags = field::Empty,
        );
        // A span no subscriber wants records nothing: its fields are not even computed.
        let traced = !span.is_disabled();
        if traced {
            if let Some(t) = request.temperature {
                span.record("gen_ai.request.temperature", f32_as_f64(t));
            }
            if let Some(p) = request.top_p {
                span.record("gen_ai.request.top_p", f32_as_f64(p));
            }
            if let Some(n) = request.max_tokens {
                span.record("gen_ai.request.max_tokens", n);
            }
            if let Some(seed) = request.seed {
                span.record("gen_ai.request.seed", seed);
            }
            if !request.tags.is_empty() {
                span.record("tags", field::debug(&request.tags));
            }
        }
        let result = self.call(request, model, &span, attempts).instrument(span.clone()).await;
        match &result {
            Ok(_) if !traced => {}
            Ok(response) => {
                span.record("gen_ai.response.model", response.model.as_str());
                span.record("gen_ai.response.finish_reasons", finish_reason_name(&response.finish_reason));
                span.record("gen_ai.usage.input_tokens", response.usage.prompt_tokens);
                span.record("gen_ai.usage.output_tokens", response.usage.completion_tokens);
                span.record("usage.cached_tokens", response.usage.cached_tokens);
                span.record("latency_ms", response.latency_ms);
                span.in_scope(|| tracing::debug!("chat completed"));
            }
            Err(error) => {
                span.record("error.type", error_type(error));
                span.in_scope(|| tracing::warn!(error = %error, "chat failed"));
            }
        }
        result
    }

    /// `openai-compatible:<model>@<first base url>`; never the key.
    fn identity(&self) -> String {
        format!("openai-compatible:{}@{}", self.config.model, self.config.base_urls[0])
    }

    /// `max_concurrency`: requests beyond it wait for a free slot.
    fn concurrency_limit(&self) -> Option<usize> {
        Some(self.config.max_concurrency)
    }
}
