//! A fake OpenAI-compatible chat completions server on 127.0.0.1: deterministic replies, usage
//! figures, a record of every request, configurable latency and fault injection.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ann_test_support::server::{Fault, FakeServer, FakeServerConfig};
//!
//! let server = FakeServer::start(FakeServerConfig::default().with_script([Fault::Status(503)])).await?;
//! let base_url = server.url(); // "http://127.0.0.1:PORT/v1": POST {base_url}/chat/completions
//! // ... point a client at base_url: its first request gets a 503, the next ones a reply ...
//! assert_eq!(server.request_count(), 0);
//! # Ok(()) }
//! ```
//!
//! The default reply is `echo: <hash> <excerpt>`, where `<hash>` is the first 8 hex digits of the
//! sha256 of the request body (so a changed temperature or seed changes the reply) and `<excerpt>`
//! the first 80 characters of the last user message. Usage: prompt tokens are the whitespace
//! separated words of all messages, completion tokens the words of the reply (cut to `max_tokens`,
//! then the finish reason is `length`), and `prompt_tokens_details.cached_tokens` equals the
//! prompt tokens when the same messages were seen before, as a provider's prefix cache would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// Computes the reply text from the request body (the parsed JSON the client sent).
pub type ReplyFn = Arc<dyn Fn(&Value) -> String + Send + Sync>;

/// Rewrites a whole 200 reply: given the request body, the request's index and the reply the
/// server would send, says what to send instead (the hostile mode, `crate::hostile`).
pub type ReshapeFn = Arc<dyn Fn(&Value, u64, Value) -> Reshaped + Send + Sync>;

/// What a [`ReshapeFn`] sends with status 200.
#[derive(Debug, Clone, PartialEq)]
pub enum Reshaped {
    /// This JSON body.
    Json(Value),
    /// These bytes as they are (not necessarily JSON).
    Raw(String),
}

/// What a 429 answer says in its `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// An HTTP date this many seconds after the server's wall clock at the time of the answer.
    DateIn(u64),
    /// This exact HTTP date (for clients that run on a virtual clock).
    Date(SystemTime),
}

/// How the server answers one request.
///
/// Text form (for `--script` files and the CLI): `ok`, `429`, `429:SECS`, `429:date+SECS`,
/// `429:date=UNIX_SECS`, any other status code such as `500` or `503`, `401` (echoes the request's
/// `Authorization` header in the error body, as some providers do), `hang`, `malformed`, `cutoff`,
/// `nochoices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A normal reply.
    None,
    /// 429 Too Many Requests, with or without `Retry-After`.
    RateLimited(Option<RetryAfter>),
    /// 401 whose error body quotes the API key the client sent.
    Unauthorized,
    /// Any other error status with an OpenAI-style error body (500, 503, 400, ...).
    Status(u16),
    /// Never answer: the request hangs until the client gives up or the server shuts down.
    Hang,
    /// 200 with a body that is not valid JSON.
    MalformedJson,
    /// 200 that declares a `Content-Length` larger than what is sent, then drops the connection.
    CutOffBody,
    /// 200 with the usage of a normal reply but an empty `choices` list: billed, yet no answer.
    NoChoices,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || {
            format!(
                "unknown fault {s:?} (ok, 429, 429:SECS, 429:date+SECS, 500, 503, hang, malformed, cutoff, nochoices)"
            )
        };
        Ok(match s {
            "ok" | "none" => Fault::None,
            "hang" => Fault::Hang,
            "malformed" => Fault::MalformedJson,
            "cutoff" => Fault::CutOffBody,
            "nochoices" => Fault::NoChoices,
            "401" => Fault::Unauthorized,
            "429" => Fault::RateLimited(None),
            _ => {
                if let Some(arg) = s.strip_prefix("429:") {
                    let after = if let Some(secs) = arg.strip_prefix("date+") {
                        RetryAfter::DateIn(secs.parse().map_err(|_| bad())?)
                    } else if let Some(unix) = arg.strip_prefix("date=") {
                        RetryAfter::Date(SystemTime::UNIX_EPOCH + Duration::from_secs(unix.parse().map_err(|_| bad())?))
                    } else {
                        RetryAfter::Seconds(arg.parse().map_err(|_| bad())?)
                    };
                    Fault::RateLimited(Some(after))
                } else {
                    let code: u16 = s.parse().map_err(|_| bad())?;
                    if !(400..=599).contains(&code) {
                        return Err(bad());
                    }
                    Fault::Status(code)
                }
            }
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => write!(f, "ok"),
            Fault::RateLimited(None) => write!(f, "429"),
            Fault::RateLimited(Some(RetryAfter::Seconds(s))) => write!(f, "429:{s}"),
            Fault::RateLimited(Some(RetryAfter::DateIn(s))) => write!(f, "429:date+{s}"),
            Fault::RateLimited(Some(RetryAfter::Date(t))) => {
                let unix = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
                write!(f, "429:date={unix}")
            }
            Fault::Unauthorized => write!(f, "401"),
            Fault::Status(code) => write!(f, "{code}"),
            Fault::Hang => write!(f, "hang"),
            Fault::MalformedJson => write!(f, "malformed"),
            Fault::CutOffBody => write!(f, "cutoff"),
            Fault::NoChoices => write!(f, "nochoices"),
        }
    }
}

/// Faults drawn by `fault_rate` when [`FakeServerConfig::rate_faults`] is empty (no `hang`, which
/// would make a load test wait for the client's timeout).
pub const DEFAULT_RATE_FAULTS: [Fault; 5] = [
    Fault::RateLimited(Some(RetryAfter::Seconds(1))),
    Fault::Status(500),
    Fault::Status(503),
    Fault::MalformedJson,
    Fault::CutOffBody,
];

/// How the fake server behaves. `Default` is a well-behaved server on a free port.
#[derive(Clone, Default)]
pub struct FakeServerConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Delay before every answer (tokio time).
    pub latency: Duration,
    /// Probability in `0..=1` that a request not covered by the script gets a fault.
    pub fault_rate: f64,
    /// The faults `fault_rate` draws from, uniformly; empty means [`DEFAULT_RATE_FAULTS`].
    pub rate_faults: Vec<Fault>,
    /// Seed of the fault draws, so a fault-injection run is reproducible for a given request order.
    pub seed: u64,
    /// How to answer the next requests, in order (before any rate-drawn fault); `Fault::None` is a
    /// normal reply.
    pub script: Vec<Fault>,
    /// Computes the reply text; `None` gives the default echo reply.
    pub reply: Option<ReplyFn>,
    /// Leave `usage` out of replies (some servers do).
    pub omit_usage: bool,
    /// The model name replies report; `None` echoes the request's model.
    pub model: Option<String>,
    /// Rewrites every normal 200 reply (`None`: sent as built).
    pub reshape: Option<ReshapeFn>,
}

impl fmt::Debug for FakeServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServerConfig")
            .field("port", &self.port)
            .field("latency", &self.latency)
            .field("fault_rate", &self.fault_rate)
            .field("rate_faults", &self.rate_faults)
            .field("seed", &self.seed)
            .field("script", &self.script)
            .field("reply", &self.reply.as_ref().map(|_| "<fn>"))
            .field("omit_usage", &self.omit_usage)
            .field("model", &self.model)
            .field("reshape", &self.reshape.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl FakeServerConfig {
    /// Answer the next requests with these faults, in order.
    pub fn with_script(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.script.extend(faults);
        self
    }

    /// Wait this long before every answer.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Inject a fault into this fraction of requests, drawn with `seed`.
    pub fn with_fault_rate(mut self, rate: f64, seed: u64) -> Self {
        self.fault_rate = rate;
        self.seed = seed;
        self
    }

    /// Compute replies with `reply` instead of the default echo.
    pub fn with_reply(mut self, reply: impl Fn(&Value) -> String + Send + Sync + 'static) -> Self {
        self.reply = Some(Arc::new(reply));
        self
    }

    /// Leave `usage` out of replies.
    pub fn without_usage(mut self) -> Self {
        self.omit_usage = true;
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 0.
    pub index: u64,
    /// The body exactly as sent.
    pub raw_body: String,
    /// The body parsed as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
    /// Request headers (lower-case names; a repeated header keeps its last value).
    pub headers: BTreeMap<String, String>,
    /// How the server answered it.
    pub fault: Fault,
}

struct Shared {
    config: FakeServerConfig,
    script: Mutex<VecDeque<Fault>>,
    rng: Mutex<ChaCha8Rng>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen_prompts: Mutex<BTreeSet<String>>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn next_fault(&self) -> Fault {
        if let Some(f) = self.script.lock().expect("script lock").pop_front() {
            return f;
        }
        if self.config.fault_rate <= 0.0 {
            return Fault::None;
        }
        let mut rng = self.rng.lock().expect("rng lock");
        if rng.random::<f64>() >= self.config.fault_rate {
            return Fault::None;
        }
        let kinds: &[Fault] =
            if self.config.rate_faults.is_empty() { &DEFAULT_RATE_FAULTS } else { &self.config.rate_faults };
        kinds[rng.random_range(0..kinds.len())]
    }

    async fn until_shutdown(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Counts a request as in flight until dropped (also when the client disconnects).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Bind 127.0.0.1 (on `config.port`, or a free port for 0) and serve on the current tokio runtime.
    pub async fn start(config: FakeServerConfig) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(config.script.iter().copied().collect()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
            config,
            requests: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            seen_prompts: Mutex::new(BTreeSet::new()),
            shutdown: shutdown.clone(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let mut stop_rx = shutdown;
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake server stopped");
            }
        });
        Ok(FakeServer { addr, shared, stop, task: Some(task) })
    }

    /// The base URL clients take, `http://127.0.0.1:PORT/v1` (they POST to `{url}/chat/completions`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many chat completion requests arrived (faulty answers included).
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Queue more scripted answers, after those still pending.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.script.lock().expect("script lock").extend(faults);
    }

    /// Stop accepting, release hanging requests and wait for the server task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn word_count(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn excerpt(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The default reply: `echo: <8 hex of sha256(body)> <first 80 chars of the last user message>`.
pub fn echo_reply(body: &Value) -> String {
    let digest = hex::encode(Sha256::digest(body.to_string().as_bytes()));
    let last_user = body["messages"]
        .as_array()
        .and_then(|ms| ms.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    format!("echo: {} {}", &digest[..8], excerpt(last_user, 80))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": null}})
}

async fn chat_completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let index = shared.count.fetch_add(1, Ordering::SeqCst);
    let fault = shared.next_fault();
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let authorization = headers.get("authorization").cloned().unwrap_or_default();
    shared.requests.lock().expect("requests lock").push(RecordedRequest {
        index,
        raw_body,
        body: parsed.clone().unwrap_or(Value::Null),
        headers,
        fault,
    });

    if !shared.config.latency.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.latency) => {}
            _ = shared.until_shutdown() => {}
        }
    }

    match fault {
        Fault::None | Fault::NoChoices => {}
        Fault::Hang => {
            shared.until_shutdown().await;
            return json_response(StatusCode::SERVICE_UNAVAILABLE, &error_body("server shutting down", "server_error"));
        }
        Fault::RateLimited(after) => {
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &error_body("Rate limit reached (injected fault)", "rate_limit_exceeded"),
            );
            let value = after.map(|a| match a {
                RetryAfter::Seconds(s) => s.to_string(),
                RetryAfter::DateIn(s) => httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(s)),
                RetryAfter::Date(t) => httpdate::fmt_http_date(t),
            });
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Fault::Unauthorized => {
            let key = authorization.strip_prefix("Bearer ").unwrap_or(&authorization);
            let msg = format!("Incorrect API key provided: {key}. You can find your API key in your account settings.");
            return json_response(StatusCode::UNAUTHORIZED, &error_body(&msg, "invalid_request_error"));
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if code >= 500 { "server_error" } else { "invalid_request_error" };
            return json_response(status, &error_body(&format!("injected fault: HTTP {code}"), kind));
        }
        Fault::MalformedJson => {
            let mut resp = Response::new(Body::from(r#"{"id": "chatcmpl-fake", "choices": [{"message": {"#));
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return resp;
        }
        Fault::CutOffBody => {
            let partial = Bytes::from_static(br#"{"id": "chatcmpl-fake", "object": "chat.completion", "choi"#);
            // Yield between the partial body and the error, so that hyper flushes the head and the
            // partial body to the socket before it drops the connection.
            let stream = futures::stream::unfold(0u8, move |step| {
                let partial = partial.clone();
                async move {
                    match step {
                        0 => Some((Ok::<Bytes, std::io::Error>(partial), 1)),
                        1 => {
                            for _ in 0..4 {
                                tokio::task::yield_now().await;
                            }
                            let cut =
                                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected fault: cut off");
                            Some((Err(cut), 2))
                        }
                        _ => None,
                    }
                }
            });
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
            return resp;
        }
    }

    let Some(body) = parsed else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &error_body("request body is not valid JSON", "invalid_request_error"),
        );
    };
    let Some(messages) = body["messages"].as_array() else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &error_body("'messages' is a required property", "invalid_request_error"),
        );
    };
    let text = match &shared.config.reply {
        Some(reply) => reply(&body),
        None => echo_reply(&body),
    };
    let max_tokens = body["max_tokens"].as_u64().or_else(|| body["max_completion_tokens"].as_u64());
    let words: Vec<&str> = text.split_whitespace().collect();
    let (text, finish_reason) = match max_tokens {
        Some(max) if words.len() as u64 > max => (words[..max as usize].join(" "), "length"),
        _ => (text, "stop"),
    };
    let prompt_tokens: u64 = messages.iter().filter_map(|m| m["content"].as_str()).map(word_count).sum();
    let completion_tokens = word_count(&text);
    let first_time =
        shared.seen_prompts.lock().expect("prompts lock").insert(Value::Array(messages.clone()).to_string());
    let cached_tokens = if first_time { 0 } else { prompt_tokens };
    let model = shared.config.model.clone().unwrap_or_else(|| body["model"].as_str().unwrap_or("fake").to_string());
    let mut reply = json!({
        "id": format!("chatcmpl-fake-{index}"),
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
        }],
    });
    if !shared.config.omit_usage {
        reply["usage"] = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        });
    }
    if fault == Fault::NoChoices {
        reply["choices"] = json!([]);
    }
    match &shared.config.reshape {
        None => json_response(StatusCode::OK, &reply),
        Some(reshape) => match reshape(&body, index, reply) {
            Reshaped::Json(value) => json_response(StatusCode::OK, &value),
            Reshaped::Raw(text) => {
                let mut resp = Response::new(Body::from(text));
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_text() {
        for text in [
            "ok",
            "429",
            "429:3",
            "429:date+5",
            "429:date=1767225600",
            "401",
            "500",
            "503",
            "hang",
            "malformed",
            "cutoff",
            "nochoices",
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
        }
        assert!("teapot".parse::<Fault>().is_err());
        assert!("200".parse::<Fault>().is_err());
    }

    #[test]
    fn echo_reply_depends_on_the_whole_body() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]});
        let b = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}], "temperature": 0.5});
        assert!(echo_reply(&a).starts_with("echo: ") && echo_reply(&a).ends_with(" hello there"));
        assert_ne!(echo_reply(&a), echo_reply(&b));
        assert_eq!(echo_reply(&a), echo_reply(&a.clone()));
    }
}
