//! The spans of real model calls reach an OTLP/HTTP collector: a receiver on 127.0.0.1 decodes
//! the protobuf requests the exporter posts, and the test reads span names, kinds and GenAI
//! attributes from them, and checks that the API key is in none of the bytes sent.
//!
//! One test per binary: the subscriber is global (per-test scoped subscribers race on tracing's
//! callsite-interest cache).

use std::sync::{Arc, Mutex};

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_openai::{ApiKey, OpenAiConfig, OpenAiModel, RetryPolicy};
use ann_telemetry::Settings;
use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message as _;

const CANARY: &str = "sk-canary-otlp-7d3e91a0b2";

/// What the receiver got: each request's raw body and its decoded form.
#[derive(Default)]
struct Received {
    bodies: Vec<Vec<u8>>,
    requests: Vec<ExportTraceServiceRequest>,
    content_types: Vec<String>,
}

type Shared = Arc<Mutex<Received>>;

async fn traces(State(received): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    let decoded = match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(decoded) => decoded,
        Err(_) => return (StatusCode::BAD_REQUEST, Vec::new()),
    };
    let mut r = received.lock().unwrap();
    r.bodies.push(body.to_vec());
    r.requests.push(decoded);
    r.content_types
        .push(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string());
    (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
}

/// An OTLP/HTTP receiver on 127.0.0.1; returns its base URL.
async fn start_receiver(received: Shared) -> String {
    let app = axum::Router::new().route("/v1/traces", post(traces)).with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_call_spans_reach_an_otlp_collector_with_genai_attributes_and_no_key() {
    let received = Shared::default();
    let base = start_receiver(received.clone()).await;
    let settings =
        Settings { otlp_endpoint: Some(base.clone()), log_filter: "off".into(), ..Settings::new("ann-otlp-test") };
    assert_eq!(settings.traces_url(), Some(format!("{base}/v1/traces")));
    let (subscriber, guard) = ann_telemetry::subscriber(&settings).unwrap();
    assert!(guard.exporting());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // A real call through the HTTP backend, then one the server refuses quoting the key back.
    let srv = FakeServer::start(
        FakeServerConfig::default().keeping_requests().with_script([Fault::None, Fault::Unauthorized]),
    )
    .await
    .unwrap();
    let config = OpenAiConfig {
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
        ..OpenAiConfig::new(srv.url(), "fake-model")
    };
    let model = OpenAiModel::new(config, Some(ApiKey::new(CANARY))).unwrap();
    let request = ChatRequest::new("m", vec![Message::user("three word prompt")])
        .with_temperature(0.5)
        .with_tag("phase", "forward");
    model.complete(&request).await.unwrap();
    model.complete(&request).await.unwrap_err();
    assert_eq!(srv.requests()[1].headers["authorization"], format!("Bearer {CANARY}"), "the key was really sent");

    // Flushing blocks until the receiver answered: off the runtime's threads.
    let guard = tokio::task::spawn_blocking(move || {
        guard.flush();
        guard
    })
    .await
    .unwrap();

    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(!received.requests.is_empty(), "the exporter posted nothing");
    assert!(received.content_types.iter().all(|c| c == "application/x-protobuf"), "{:?}", received.content_types);
    let resource_names: Vec<String> = received
        .requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter_map(|rs| rs.resource.as_ref())
        .filter_map(|res| res.attributes.iter().find(|kv| kv.key == "service.name").map(|kv| text(&kv.value)))
        .collect();
    assert!(resource_names.iter().all(|n| n == "ann-otlp-test") && !resource_names.is_empty(), "{resource_names:?}");
    let spans: Vec<&Span> = received
        .requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let chats: Vec<&&Span> = spans.iter().filter(|s| s.name == "chat fake-model").collect();
    assert_eq!(chats.len(), 2, "two chat spans: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    for span in &chats {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(attribute(span, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attribute(span, "gen_ai.system").as_deref(), Some("openai"));
        assert_eq!(attribute(span, "gen_ai.request.model").as_deref(), Some("fake-model"));
        assert_eq!(attribute(span, "gen_ai.request.temperature").as_deref(), Some("0.5"));
        assert!(attribute(span, "tags").is_some_and(|t| t.contains("forward")), "{span:?}");
    }
    let ok = chats.iter().find(|s| attribute(s, "error.type").is_none()).expect("the answered call");
    assert_eq!(attribute(ok, "gen_ai.response.model").as_deref(), Some("fake-model"));
    assert_eq!(attribute(ok, "gen_ai.response.finish_reasons").as_deref(), Some("stop"));
    assert_eq!(attribute(ok, "gen_ai.usage.input_tokens").as_deref(), Some("3"));
    assert!(attribute(ok, "gen_ai.usage.output_tokens").is_some_and(|n| n.parse::<u64>().is_ok()));
    let failed = chats.iter().find(|s| attribute(s, "error.type").is_some()).expect("the refused call");
    // The refusal's message (the server quoted the key; the backend redacted it) is a span event.
    let events: Vec<String> = failed.events.iter().map(|e| format!("{} {:?}", e.name, e.attributes)).collect();
    assert!(events.iter().any(|e| e.contains("401")), "{events:?}");

    for body in &received.bodies {
        let found = body.windows(CANARY.len()).any(|w| w == CANARY.as_bytes());
        assert!(!found, "the API key reached the collector");
    }
    assert!(!format!("{:?}", received.requests).contains(CANARY));
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();
}
