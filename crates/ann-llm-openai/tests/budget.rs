//! The budget over the HTTP backend counts billable requests: every attempt (retries included)
//! against `max_calls`, and the usage of every answered attempt (a 200 with a broken body too).

use std::sync::Arc;

use ann_llm::{Budget, BudgetLimits, BudgetedModel, ChatModel, ChatRequest, LlmError, Message, PriceTable};
use ann_llm_openai::{OpenAiConfig, OpenAiModel, RetryPolicy};
use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};
use futures::future::join_all;

fn config(url: String, max_concurrency: usize) -> OpenAiConfig {
    OpenAiConfig {
        base_urls: vec![url],
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        retry: RetryPolicy { max_attempts: 5, base_backoff_ms: 1, max_backoff_ms: 5, ..RetryPolicy::default() },
        max_concurrency,
        ..OpenAiConfig::default()
    }
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new("m", vec![Message::user(text)]).with_max_tokens(16)
}

fn budgeted(
    server: &FakeServer,
    limits: BudgetLimits,
    concurrency: usize,
) -> (BudgetedModel<OpenAiModel>, Arc<Budget>) {
    let budget = Budget::new(limits, PriceTable::empty());
    let backend = OpenAiModel::new(config(server.url(), concurrency), None).unwrap();
    (BudgetedModel::new(backend, budget.clone()), budget)
}

/// 100 calls, 16 at a time, against a server that faults 40% of its answers (error statuses,
/// malformed, cut-off and choice-less bodies): `max_calls = 37` lets at most 37 HTTP requests reach
/// the server, retries included, and the ledger counts 37 attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_bounds_http_requests_retries_included_under_16_way_concurrency() {
    let faults =
        vec![Fault::Status(500), Fault::Status(503), Fault::MalformedJson, Fault::CutOffBody, Fault::NoChoices];
    let server = FakeServer::start(
        FakeServerConfig { rate_faults: faults, ..FakeServerConfig::default() }.with_fault_rate(0.4, 3),
    )
    .await
    .unwrap();
    let limits = BudgetLimits { max_calls: Some(37), ..BudgetLimits::default() };
    let (model, budget) = budgeted(&server, limits, 16);
    let requests: Vec<ChatRequest> = (0..100).map(|i| ask(&format!("question {i}"))).collect();
    let results = join_all(requests.iter().map(|r| model.complete(r))).await;

    let answered = results.iter().filter(|r| r.is_ok()).count() as u64;
    let faulted = server.requests().iter().filter(|r| r.fault != Fault::None).count();
    assert!(faulted > 0, "faults were injected");
    assert!(answered < 37, "some requests were retries: {answered} answered");
    // Every attempt reserved a call before it was sent; the server sees each at most once (a
    // pooled connection the client finds closed before sending may spare one).
    let sent = server.request_count();
    assert!((30..=37).contains(&sent), "every HTTP attempt counts against max_calls: {sent} sent");
    let ledger = budget.ledger();
    assert_eq!(ledger.spent.calls, 37, "{ledger:?}");
    assert_eq!(ledger.in_flight, Default::default(), "nothing stays reserved");
    let stops: Vec<&LlmError> =
        results.iter().filter_map(|r| r.as_ref().err()).filter(|e| e.budget_exhausted().is_some()).collect();
    assert!(!stops.is_empty());
    for stop in stops {
        let why = stop.budget_exhausted().unwrap();
        assert!(why.starts_with("calls: ") && why.contains("in flight") && why.contains("limit 37"), "{why}");
    }
    server.shutdown().await;
}

/// 200 replies that report usage but carry no choice are billed: each is ledgered as a call with
/// its tokens, then the good answer's.
#[tokio::test]
async fn choice_less_200_replies_are_ledgered_with_their_tokens() {
    let server =
        FakeServer::start(FakeServerConfig::default().with_script([Fault::NoChoices, Fault::NoChoices])).await.unwrap();
    let (model, budget) = budgeted(&server, BudgetLimits::default(), 4);
    let response = model.complete(&ask("how many tokens")).await.unwrap();
    assert_eq!(server.request_count(), 3);
    let per_reply = response.usage.total();
    assert!(per_reply > 0);
    let spent = budget.spent();
    assert_eq!((spent.calls, spent.tokens), (3, 3 * per_reply), "{spent:?}");
}

/// A retry that would pass the calls limit is not sent: the call ends as a budget stop.
#[tokio::test]
async fn a_retry_past_the_calls_limit_is_not_sent() {
    let server = FakeServer::start(FakeServerConfig::default().with_script([Fault::Status(503); 4])).await.unwrap();
    let limits = BudgetLimits { max_calls: Some(2), ..BudgetLimits::default() };
    let (model, budget) = budgeted(&server, limits, 4);
    let err = model.complete(&ask("q")).await.unwrap_err();
    assert!(err.budget_exhausted().is_some_and(|why| why.starts_with("calls: 2 spent, 0 in flight")), "{err}");
    assert!(!err.is_infrastructure(), "a budget stop, not an infrastructure failure");
    assert_eq!(server.request_count(), 2);
    assert_eq!(budget.ledger().spent.calls, 2);
}
