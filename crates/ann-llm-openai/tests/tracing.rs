//! Tracing output of the OpenAI-compatible backend: GenAI span attributes, and no API key in logs.
//!
//! One global subscriber for this test binary writes into a per-thread buffer: each
//! `#[tokio::test]` runs client and fake server on its own thread, so a test reads exactly its
//! own logs. (Per-test scoped subscribers race on tracing's global callsite-interest cache.)

use std::cell::RefCell;
use std::sync::{Arc, Once};

use ann_llm::{ChatModel, ChatRequest, LlmError, Message};
use ann_llm_openai::{ApiKey, ManualClock, OpenAiConfig, OpenAiModel, RetryPolicy};
use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};

thread_local! {
    static LOGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.with(|logs| logs.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the subscriber (once) and clear this thread's buffer.
fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadBuffer)
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    LOGS.with(|logs| logs.borrow_mut().clear());
}

fn logs() -> String {
    LOGS.with(|logs| String::from_utf8_lossy(&logs.borrow()).into_owned())
}

fn config(url: String, max_attempts: u32) -> OpenAiConfig {
    OpenAiConfig {
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        retry: RetryPolicy { max_attempts, base_backoff_ms: 100, seed: 7, ..RetryPolicy::default() },
        ..OpenAiConfig::new(url, "fake-model")
    }
}

#[tokio::test]
async fn every_call_emits_a_span_with_genai_attributes() {
    capture_logs();
    let srv = FakeServer::start(FakeServerConfig::default().keeping_requests().with_script([Fault::Status(503)]))
        .await
        .unwrap();
    let model = OpenAiModel::new(config(srv.url(), 4), None).unwrap().with_clock(Arc::new(ManualClock::default()));
    let request = ChatRequest::new("m", vec![Message::user("three word prompt")])
        .with_temperature(0.7)
        .with_tag("phase", "forward");
    model.complete(&request).await.unwrap();
    let text = logs();
    let close = text.lines().find(|l| l.contains("close") && l.contains("chat{")).unwrap_or_else(|| panic!("{text}"));
    for field in [
        "gen_ai.operation.name=\"chat\"",
        "gen_ai.system=\"openai\"",
        "gen_ai.request.model=fake-model",
        "gen_ai.request.temperature=0.7",
        "gen_ai.response.model=\"fake-model\"",
        "gen_ai.response.finish_reasons=\"stop\"",
        "gen_ai.usage.input_tokens=3",
        "gen_ai.usage.output_tokens=",
        "usage.cached_tokens=0",
        "retries=1",
        "cache_hit=false",
        "latency_ms=",
        "phase",
    ] {
        assert!(close.contains(field), "{field} missing from {close}");
    }
}

#[tokio::test]
async fn a_canary_api_key_never_appears_in_errors_debug_output_or_logs() {
    const CANARY: &str = "sk-canary-4f1d2b8e9c";
    capture_logs();
    let script = [Fault::Unauthorized, Fault::Status(500), Fault::Status(500)];
    let srv = FakeServer::start(FakeServerConfig::default().keeping_requests().with_script(script)).await.unwrap();
    let model = OpenAiModel::new(config(srv.url(), 2), Some(ApiKey::new(CANARY)))
        .unwrap()
        .with_clock(Arc::new(ManualClock::default()));

    let unauthorized = model.complete(&ChatRequest::new("m", vec![Message::user("hello")])).await.unwrap_err();
    let exhausted = model.complete(&ChatRequest::new("m", vec![Message::user("hello")])).await.unwrap_err();
    // The key was really sent, and the server really quoted it back.
    let seen = srv.requests();
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {CANARY}"));
    assert!(matches!(&unauthorized, LlmError::Http { status: 401, body, .. } if body.contains("[REDACTED]")));
    assert!(matches!(&exhausted, LlmError::RetriesExhausted { attempts: 2, .. }), "{exhausted:?}");

    let logs = logs();
    for text in [
        unauthorized.to_string(),
        format!("{unauthorized:?}"),
        exhausted.to_string(),
        format!("{exhausted:?}"),
        format!("{model:?}"),
        format!("{:?}", ApiKey::new(CANARY)),
        logs.clone(),
    ] {
        assert!(!text.contains(CANARY), "the key leaked into: {text}");
    }
    assert!(logs.contains("gen_ai.system") && logs.contains("HTTP 401"), "the logs were captured: {logs}");
}
