//! HTTP tests of the OpenAI-compatible backend against the fake server on 127.0.0.1 (no network, no key).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_llm::{ChatModel, ChatRequest, FinishReason, LlmError, Message, ResponseFormat};
use ann_llm_openai::{ApiKey, ManualClock, OpenAiConfig, OpenAiModel, RateLimits, RetryPolicy};
use ann_test_support::server::{FakeServer, FakeServerConfig, Fault, RetryAfter};
use futures::future::join_all;

const MODEL: &str = "fake-model";

fn config(urls: &[String]) -> OpenAiConfig {
    OpenAiConfig {
        base_urls: urls.to_vec(),
        model: MODEL.to_string(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".to_string(),
        connect_timeout_ms: 10_000,
        timeout_ms: 30_000,
        retry: RetryPolicy {
            max_attempts: 4,
            base_backoff_ms: 100,
            max_backoff_ms: 1_000,
            jitter: 0.5,
            seed: 7,
            max_total_ms: 60_000,
        },
        ..OpenAiConfig::default()
    }
}

fn client(config: OpenAiConfig) -> (OpenAiModel, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let model = OpenAiModel::new(config, None).expect("valid config").with_clock(clock.clone());
    (model, clock)
}

async fn server(config: FakeServerConfig) -> FakeServer {
    FakeServer::start(config.keeping_requests()).await.expect("bind 127.0.0.1")
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new("ignored-model", vec![Message::user(text)])
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn sends_the_exact_openai_body_and_parses_the_reply() {
    let srv = server(FakeServerConfig::default()).await;
    let model = OpenAiModel::new(config(&[srv.url()]), Some(ApiKey::new("sk-test-key"))).unwrap();
    let request = ChatRequest::new("ignored-model", vec![Message::system("You are terse."), Message::user("What is 2 + 2?")])
        .with_temperature(0.7)
        .with_max_tokens(64)
        .with_seed(42)
        .with_stop("\n\n")
        .with_sample_index(3)
        .with_tag("phase", "forward")
        .with_response_format(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: serde_json::json!({"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}),
            strict: true,
        });
    let request = ChatRequest { top_p: Some(0.9), ..request };
    let response = model.complete(&request).await.unwrap();

    let seen = srv.requests();
    assert_eq!(seen.len(), 1);
    insta::assert_snapshot!("request_body", seen[0].raw_body);
    assert_eq!(seen[0].headers.get("authorization").map(String::as_str), Some("Bearer sk-test-key"));
    assert_eq!(seen[0].headers.get("content-type").map(String::as_str), Some("application/json"));

    assert!(response.text.starts_with("echo: ") && response.text.ends_with("What is 2 + 2?"), "{}", response.text);
    assert_eq!(response.model, MODEL);
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.usage.prompt_tokens, 3 + 5, "whitespace words of both messages");
    assert_eq!(response.usage.completion_tokens, 7);
    assert_eq!(response.usage.cached_tokens, 0);
    assert_eq!(model.identity(), format!("openai-compatible:{MODEL}@{}", srv.url()));
}

#[tokio::test]
async fn plain_requests_send_only_what_is_set_and_no_key_means_no_authorization() {
    let srv = server(FakeServerConfig::default()).await;
    let (model, _) = client(OpenAiConfig { model: String::new(), ..config(&[srv.url()]) });
    model.complete(&ChatRequest::new("per-request-model", vec![Message::user("hi")])).await.unwrap();
    model.complete(&ask("json please").with_response_format(ResponseFormat::JsonObject)).await.unwrap();
    let seen = srv.requests();
    insta::assert_snapshot!(seen[0].raw_body, @r#"{"model":"per-request-model","messages":[{"role":"user","content":"hi"}]}"#);
    insta::assert_snapshot!(seen[1].raw_body, @r#"{"model":"ignored-model","messages":[{"role":"user","content":"json please"}],"response_format":{"type":"json_object"}}"#);
    assert!(!seen[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn rate_limited_waits_as_retry_after_says_then_succeeds() {
    let srv = server(FakeServerConfig::default().with_script([Fault::RateLimited(Some(RetryAfter::Seconds(7)))])).await;
    let (model, clock) = client(config(&[srv.url()]));
    let response = model.complete(&ask("hello")).await.unwrap();
    assert!(response.text.ends_with("hello"));
    assert_eq!(srv.request_count(), 2);
    assert_eq!(clock.sleeps(), vec![secs(7)]);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let epoch = SystemTime::UNIX_EPOCH + secs(1_767_225_600);
    let at = Fault::RateLimited(Some(RetryAfter::Date(epoch + secs(11))));
    let srv = server(FakeServerConfig::default().with_script([at])).await;
    let clock = Arc::new(ManualClock::new(epoch));
    let model = OpenAiModel::new(config(&[srv.url()]), None).unwrap().with_clock(clock.clone());
    model.complete(&ask("hello")).await.unwrap();
    assert_eq!(srv.request_count(), 2);
    assert_eq!(clock.sleeps(), vec![secs(11)]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_total_time_bound_gives_up_at_once() {
    let srv =
        server(FakeServerConfig::default().with_script([Fault::RateLimited(Some(RetryAfter::Seconds(120)))])).await;
    let (model, clock) = client(config(&[srv.url()]));
    let err = model.complete(&ask("hello")).await.unwrap_err();
    assert!(matches!(err, LlmError::RateLimited { retry_after: Some(d), .. } if d == secs(120)), "{err:?}");
    assert_eq!(srv.request_count(), 1);
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn repeated_5xx_ends_in_a_clear_error_after_the_bounded_retries() {
    let script = [Fault::Status(500), Fault::Status(503), Fault::Status(500), Fault::Status(503), Fault::Status(500)];
    let srv = server(FakeServerConfig::default().with_script(script)).await;
    let (model, clock) = client(config(&[srv.url()]));
    let err = model.complete(&ask("hello")).await.unwrap_err();
    assert_eq!(srv.request_count(), 4, "max_attempts = 4");
    match &err {
        LlmError::RetriesExhausted { attempts: 4, last } => {
            assert!(matches!(**last, LlmError::Http { status: 503, .. }), "{last:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("gave up after 4 attempts") && message.contains("HTTP 503"), "{message}");
    assert!(message.contains(&srv.url()) && message.contains("injected fault"), "{message}");

    // Exponential backoff with jitter: base 100 ms doubling, each cut by at most half.
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    for (i, sleep) in sleeps.iter().enumerate() {
        let full = 100u64 << i;
        let ms = sleep.as_millis() as u64;
        assert!(full / 2 <= ms && ms <= full, "retry {i}: {ms} ms");
    }
    // The jitter is seeded: the same seed waits the same.
    let again = server(FakeServerConfig::default().with_script(script)).await;
    let (model2, clock2) = client(config(&[again.url()]));
    model2.complete(&ask("hello")).await.unwrap_err();
    assert_eq!(clock2.sleeps(), sleeps);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let srv = server(FakeServerConfig::default().with_script([Fault::Status(400)])).await;
    let (model, clock) = client(config(&[srv.url()]));
    let err = model.complete(&ask("hello")).await.unwrap_err();
    assert!(matches!(err, LlmError::Http { status: 400, .. }), "{err:?}");
    assert_eq!(srv.request_count(), 1);
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn malformed_json_is_retried_then_reported() {
    let srv = server(FakeServerConfig::default().with_script([Fault::MalformedJson])).await;
    let (model, _) = client(config(&[srv.url()]));
    model.complete(&ask("hello")).await.unwrap();
    assert_eq!(srv.request_count(), 2);

    srv.push_faults([Fault::MalformedJson]);
    let once = OpenAiConfig { retry: RetryPolicy { max_attempts: 1, ..config(&[]).retry }, ..config(&[srv.url()]) };
    let (model, _) = client(once);
    let err = model.complete(&ask("hello")).await.unwrap_err();
    assert!(matches!(&err, LlmError::InvalidResponse(m) if m.contains("not a chat completion")), "{err:?}");
    assert_eq!(srv.request_count(), 3);
}

#[tokio::test]
async fn a_hanging_server_times_out_and_the_retry_succeeds() {
    let srv = server(FakeServerConfig::default().with_script([Fault::Hang])).await;
    let short = |attempts| OpenAiConfig {
        timeout_ms: 1_000,
        retry: RetryPolicy { max_attempts: attempts, ..config(&[]).retry },
        ..config(&[srv.url()])
    };
    let (model, _) = client(short(2));
    model.complete(&ask("hello")).await.unwrap();
    assert_eq!(srv.request_count(), 2);

    srv.push_faults([Fault::Hang]);
    let (model, _) = client(short(1));
    let err = model.complete(&ask("hello")).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(d) if d == secs(1)), "{err:?}");
}

#[tokio::test]
async fn a_cut_off_body_is_a_connection_error_and_is_retried() {
    let srv = server(FakeServerConfig::default().with_script([Fault::CutOffBody])).await;
    let (model, _) = client(config(&[srv.url()]));
    model.complete(&ask("hello")).await.unwrap();
    assert_eq!(srv.request_count(), 2);

    srv.push_faults([Fault::CutOffBody]);
    let once = OpenAiConfig { retry: RetryPolicy { max_attempts: 1, ..config(&[]).retry }, ..config(&[srv.url()]) };
    let (model, _) = client(once);
    let err = model.complete(&ask("hello")).await.unwrap_err();
    // The head arrived and the body stopped short of its declared length.
    assert!(matches!(&err, LlmError::Connection(m) if m.contains("end of file before message length")), "{err:?}");
}

#[tokio::test]
async fn missing_usage_is_tolerated_and_cached_tokens_are_read() {
    let bare = server(FakeServerConfig::default().without_usage()).await;
    let (model, _) = client(config(&[bare.url()]));
    let response = model.complete(&ask("hello there")).await.unwrap();
    assert_eq!(response.usage, ann_llm::Usage::default());
    assert!(response.text.ends_with("hello there"));

    let srv = server(FakeServerConfig::default()).await;
    let (model, _) = client(config(&[srv.url()]));
    let first = model.complete(&ask("the same prompt twice")).await.unwrap();
    let second = model.complete(&ask("the same prompt twice")).await.unwrap();
    assert_eq!((first.usage.prompt_tokens, first.usage.cached_tokens), (4, 0));
    assert_eq!((second.usage.prompt_tokens, second.usage.cached_tokens), (4, 4));
}

#[tokio::test]
async fn finish_reason_length_is_mapped() {
    let srv = server(FakeServerConfig::default()).await;
    let (model, _) = client(config(&[srv.url()]));
    let response = model.complete(&ask("a long question here").with_max_tokens(2)).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(response.usage.completion_tokens, 2);
}

#[tokio::test]
async fn the_concurrency_cap_bounds_requests_in_flight() {
    let latency = Duration::from_millis(200);
    let capped_srv = server(FakeServerConfig::default().with_latency(latency)).await;
    let (capped, _) = client(OpenAiConfig { max_concurrency: 2, ..config(&[capped_srv.url()]) });
    let requests: Vec<ChatRequest> = (0..8).map(|i| ask(&format!("question {i}"))).collect();
    let results = join_all(requests.iter().map(|r| capped.complete(r))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(capped_srv.request_count(), 8);
    assert!(capped_srv.max_in_flight() <= 2, "{} in flight", capped_srv.max_in_flight());

    // The same load without the cap does overlap (so the measure above can see a breach).
    let open_srv = server(FakeServerConfig::default().with_latency(latency)).await;
    let (open, _) = client(OpenAiConfig { max_concurrency: 8, ..config(&[open_srv.url()]) });
    join_all(requests.iter().map(|r| open.complete(r))).await;
    assert!(open_srv.max_in_flight() > 2, "{} in flight", open_srv.max_in_flight());
}

#[tokio::test]
async fn the_requests_per_minute_limit_spaces_requests_on_the_clock() {
    let srv = server(FakeServerConfig::default()).await;
    let limits = RateLimits { requests_per_minute: Some(60), ..RateLimits::default() };
    let (model, clock) = client(OpenAiConfig { rate_limits: limits, ..config(&[srv.url()]) });
    let requests: Vec<ChatRequest> = (0..10).map(|i| ask(&format!("question {i}"))).collect();
    let results = join_all(requests.iter().map(|r| model.complete(r))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(srv.request_count(), 10);
    // 60 a minute with one second of burst: the first goes at once, the other nine one second apart.
    assert_eq!(clock.sleeps().len(), 9);
    assert_eq!(ann_llm_openai::Clock::now(&*clock), secs(9));
}

#[tokio::test]
async fn the_tokens_per_minute_limit_delays_large_requests() {
    let srv = server(FakeServerConfig::default()).await;
    // 600 tokens a minute = 10 a second; each request reserves about 4 + 100 tokens.
    let limits = RateLimits { tokens_per_minute: Some(600), ..RateLimits::default() };
    let (model, clock) = client(OpenAiConfig { rate_limits: limits, ..config(&[srv.url()]) });
    for i in 0..3 {
        model.complete(&ask(&format!("q{i}")).with_max_tokens(100)).await.unwrap();
    }
    assert_eq!(srv.request_count(), 3);
    // The first waits for its own 104 - 10 tokens (9.4 s); the reported usage (a few tokens)
    // is then refunded, so later requests wait about as long, not longer.
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    assert_eq!(sleeps[0], Duration::from_millis(9_400));
    assert!(sleeps.iter().all(|s| *s <= Duration::from_millis(10_400)), "{sleeps:?}");
}

#[tokio::test]
async fn replicas_are_balanced_by_least_in_flight() {
    let a = server(FakeServerConfig::default()).await;
    let b = server(FakeServerConfig::default()).await;
    let (model, _) = client(config(&[a.url(), b.url()]));
    for i in 0..6 {
        model.complete(&ask(&format!("q{i}"))).await.unwrap();
    }
    assert_eq!((a.request_count(), b.request_count()), (3, 3));

    let slow_a = server(FakeServerConfig::default().with_latency(Duration::from_millis(100))).await;
    let slow_b = server(FakeServerConfig::default().with_latency(Duration::from_millis(100))).await;
    let (model, _) = client(config(&[slow_a.url(), slow_b.url()]));
    let requests: Vec<ChatRequest> = (0..4).map(|i| ask(&format!("q{i}"))).collect();
    join_all(requests.iter().map(|r| model.complete(r))).await;
    assert_eq!((slow_a.request_count(), slow_b.request_count()), (2, 2));
    assert!(slow_a.max_in_flight() <= 2 && slow_b.max_in_flight() <= 2);
}

#[tokio::test]
async fn a_dead_replica_is_retried_on_the_other_and_then_avoided() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", listener.local_addr().unwrap())
    }; // the listener is dropped: connections are refused
    let live = server(FakeServerConfig::default()).await;
    let (model, clock) = client(config(&[dead.clone(), live.url()]));
    for i in 0..4 {
        model.complete(&ask(&format!("q{i}"))).await.unwrap();
    }
    assert_eq!(live.request_count(), 4);
    let stats = model.replica_stats();
    assert_eq!((stats[0].base_url.as_str(), stats[0].attempts, stats[0].failures), (dead.as_str(), 1, 1));
    assert_eq!((stats[1].attempts, stats[1].failures), (4, 0));
    assert!(clock.sleeps().is_empty(), "failover to another replica does not back off");
}

#[tokio::test]
async fn config_serde_is_strict_and_validated() {
    let config: OpenAiConfig =
        serde_json::from_str(r#"{"base_urls": ["http://127.0.0.1:1/v1"], "model": "m", "retry": {"max_attempts": 2}}"#)
            .unwrap();
    assert_eq!(config.retry.max_attempts, 2);
    assert_eq!(config.retry.base_backoff_ms, RetryPolicy::default().base_backoff_ms);
    assert!(serde_json::from_str::<OpenAiConfig>(r#"{"api_key": "sk-oops"}"#).is_err());
    let bad = |c: OpenAiConfig| matches!(OpenAiModel::new(c, None), Err(LlmError::Config(_)));
    assert!(bad(OpenAiConfig { base_urls: vec![], ..config.clone() }));
    assert!(bad(OpenAiConfig { base_urls: vec!["ftp://x".into()], ..config.clone() }));
    assert!(bad(OpenAiConfig { max_concurrency: 0, ..config.clone() }));
    assert!(bad(OpenAiConfig { retry: RetryPolicy { max_attempts: 0, ..RetryPolicy::default() }, ..config.clone() }));
}

/// A reply past `max_response_bytes` is refused, read no further and not retried; one under the
/// limit is answered as usual.
#[tokio::test]
async fn a_response_past_the_size_limit_is_refused_and_not_retried() {
    let server = server(FakeServerConfig::default().with_reply(|body| {
        let asked = body["messages"][0]["content"].as_str().unwrap_or("").to_string();
        if asked == "huge" { "x".repeat(3 << 20) } else { "small".into() }
    }))
    .await;
    let mut config = config(&[server.url()]);
    config.max_response_bytes = 1 << 20;
    let (model, _clock) = client(config);
    assert_eq!(model.complete(&ask("small please")).await.unwrap().text, "small");
    let err = model.complete(&ask("huge")).await.unwrap_err();
    assert!(matches!(err, LlmError::ResponseTooLarge { limit: 1_048_576, .. }), "{err:?}");
    assert!(!err.is_retryable() && err.is_infrastructure());
    assert_eq!(server.request_count(), 2, "the large reply was asked for once");
}
