//! Tests of the forward phase: traces, request settings, concurrency bounds, failures and budget stops.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use ann_llm::{Budget, BudgetLimits, BudgetedModel, LlmError};
use ann_test_support::ScriptedModel;

use super::*;
use crate::testing::{boxed, has, is_agent, is_routing, one_layer, sample_network};
use crate::{AggregatorName, RoutingSource};

/// The scripted run of the sample network: routing picks majority_vote for `solve` and answers
/// `verify` with prose (fallback to single); a2 disagrees and loses the vote.
fn scripted() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::default()
            .with_latency(Duration::from_millis(25))
            .on(|r| {
                (is_routing(r) && has(r, "Layer `solve`"))
                    .then(|| Ok(r#"{"aggregator": "majority_vote", "reason": "a one-step sum"}"#.into()))
            })
            .on(|r| (is_routing(r) && has(r, "Layer `verify`")).then(|| Ok("critic_revise, I think".into())))
            .on(|r| is_agent(r, "understand", "a1").then(|| Ok("Given 2 and 2; asked for their sum.".into())))
            .on(|r| is_agent(r, "solve", "a1").then(|| Ok("2+2 = 4, so \\boxed{4}".into())))
            .on(|r| is_agent(r, "solve", "a2").then(|| Ok("about \\boxed{5}".into())))
            .on(|r| is_agent(r, "solve", "a3").then(|| Ok("by cases: \\boxed{4}".into())))
            .on(|r| is_agent(r, "verify", "a1").then(|| Ok("Checked. The answer is \\boxed{4}".into()))),
    )
}

#[tokio::test(start_paused = true)]
async fn three_layer_trace() {
    let model = scripted();
    let shared: SharedModel = model.clone();
    let config = ForwardConfig { model: "worker".into(), seed: Some(7), ..Default::default() };
    let r = forward(&shared, &sample_network(), "What is 2+2?", Some(&boxed), &config).await.unwrap();
    assert_eq!(r.output, "Checked. The answer is \\boxed{4}");
    let t = &r.trace;
    let routing: Vec<_> = t.layers.iter().map(|l| (l.routing.aggregator, l.routing.source)).collect();
    assert_eq!(
        routing,
        [
            (AggregatorName::Single, RoutingSource::SingleCandidate),
            (AggregatorName::MajorityVote, RoutingSource::Model),
            (AggregatorName::Single, RoutingSource::Fallback),
        ]
    );
    assert_eq!(t.layers[1].input, t.layers[0].output, "I_2 = O_1");
    assert_eq!(t.layers[2].input, "2+2 = 4, so \\boxed{4}", "I_3 = O_2, the vote winner");
    assert!(
        t.calls().all(|c| c.messages.iter().any(|m| m.content.contains("What is 2+2?"))),
        "the task is always visible"
    );
    assert_eq!(t.calls().count(), model.calls());
    assert_eq!(t.calls().count(), 1 + (1 + 3) + (1 + 1));
    let jsonl = t.to_jsonl();
    assert_eq!(jsonl.lines().count(), 1 + 7 + 3 + 1);
    assert!(
        jsonl
            .lines()
            .last()
            .unwrap()
            .starts_with(r#"{"event":"output","output":"Checked. The answer is \\boxed{4}","calls":7,"usage":{"#)
    );
    insta::assert_json_snapshot!(t);
}

#[tokio::test]
async fn requests_carry_model_settings_and_tags() {
    let model = scripted();
    let shared: SharedModel = model.clone();
    let config = ForwardConfig { model: "worker".into(), seed: Some(7), max_tokens: Some(512), ..Default::default() };
    forward(&shared, &sample_network(), "What is 2+2?", Some(&boxed), &config).await.unwrap();
    let summary: Vec<String> = model
        .requests()
        .iter()
        .map(|r| {
            let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} t={:?} seed={:?} max={:?} sample={} [{}]",
                r.model,
                r.temperature,
                r.seed,
                r.max_tokens,
                r.sample_index,
                tags.join(" ")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "worker t=Some(0.0) seed=Some(7) max=Some(512) sample=0 [agent=a1 layer=understand phase=forward]",
            "worker t=Some(0.0) seed=Some(7) max=Some(512) sample=0 [layer=solve phase=forward]",
            "worker t=Some(0.0) seed=Some(7) max=Some(512) sample=0 [agent=a1 layer=solve phase=forward]",
            "worker t=Some(0.7) seed=Some(7) max=Some(512) sample=1 [agent=a2 layer=solve phase=forward]",
            "worker t=Some(0.7) seed=Some(7) max=Some(512) sample=2 [agent=a3 layer=solve phase=forward]",
            "worker t=Some(0.0) seed=Some(7) max=Some(512) sample=0 [layer=verify phase=forward]",
            "worker t=Some(0.0) seed=Some(7) max=Some(512) sample=0 [agent=a1 layer=verify phase=forward]",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn agents_and_inputs_run_concurrently_within_the_bounds() {
    let net = one_layer(3, &[AggregatorName::Concatenate]);
    let inputs: Vec<String> = (0..6).map(|i| format!("input {i}")).collect();
    let check = |calls: usize, inputs_at_once: usize, expected: usize| {
        let net = net.clone();
        let inputs = inputs.clone();
        async move {
            let model = Arc::new(
                ScriptedModel::default().with_latency(Duration::from_millis(10)).fallback(|_| Ok("ok".into())),
            );
            let shared: SharedModel = model.clone();
            let config = ForwardConfig {
                max_parallel_calls: calls,
                max_parallel_inputs: inputs_at_once,
                routing: crate::RoutingMode::Fixed,
                ..Default::default()
            };
            let results = forward_batch(&shared, &net, &inputs, None, &config).await.unwrap();
            assert_eq!(results.len(), 6);
            for (r, input) in results.iter().zip(&inputs) {
                assert_eq!(&r.as_ref().unwrap().trace.input, input, "results keep input order");
            }
            assert_eq!(model.calls(), 18);
            assert_eq!(model.max_in_flight(), expected, "calls={calls} inputs={inputs_at_once}");
        }
    };
    check(100, 1, 3).await; // the three agents of one layer at once
    check(100, 2, 6).await; // two inputs at once
    check(4, 6, 4).await; // the call bound holds across inputs
    check(1, 6, 1).await;
}

/// A failure of the network's own: the prompt does not fit the context window (data, not infrastructure).
fn overflow() -> LlmError {
    LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 }
}

#[tokio::test]
async fn batch_keeps_failures_in_place_and_stops_on_budget() {
    let net = one_layer(1, &[AggregatorName::Single]);
    let model =
        Arc::new(ScriptedModel::default().on(|r| has(r, "bad").then(|| Err(overflow()))).fallback(|_| Ok("ok".into())));
    let shared: SharedModel = model.clone();
    let inputs = vec!["good".to_string(), "bad".into(), "good again".into()];
    let results = forward_batch(&shared, &net, &inputs, None, &ForwardConfig::default()).await.unwrap();
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true]);
    assert!(matches!(results[1], Err(GraphError::LayerFailed { .. })));

    let model = Arc::new(
        ScriptedModel::default()
            .on(|r| has(r, "bad").then(|| Err(LlmError::BudgetExhausted("cap".into()))))
            .fallback(|_| Ok("ok".into())),
    );
    let shared: SharedModel = model.clone();
    let e = forward_batch(&shared, &net, &inputs, None, &ForwardConfig::default()).await.unwrap_err();
    assert!(e.is_budget_exhausted(), "{e}");
}

/// A model decorator that counts the calls it received and the calls that came back, taking
/// `delay(request)` of tokio time before passing each call on.
struct Probe {
    inner: SharedModel,
    delay: fn(&ann_llm::ChatRequest) -> Duration,
    started: AtomicUsize,
    finished: AtomicUsize,
}

impl Probe {
    fn new(inner: SharedModel, delay: fn(&ann_llm::ChatRequest) -> Duration) -> Arc<Self> {
        Arc::new(Self { inner, delay, started: AtomicUsize::new(0), finished: AtomicUsize::new(0) })
    }
    /// (calls received, calls that came back).
    fn counts(&self) -> (usize, usize) {
        (self.started.load(SeqCst), self.finished.load(SeqCst))
    }
}

#[async_trait::async_trait]
impl ann_llm::ChatModel for Probe {
    async fn complete(&self, request: &ann_llm::ChatRequest) -> Result<ann_llm::ChatResponse, LlmError> {
        self.started.fetch_add(1, SeqCst);
        tokio::time::sleep((self.delay)(request)).await;
        let result = self.inner.complete(request).await;
        self.finished.fetch_add(1, SeqCst);
        result
    }
    fn identity(&self) -> String {
        self.inner.identity()
    }
}

/// `attempts` (every call the forward pass sends) over a budget of `max_calls` calls over
/// `backend` (which answers "ok" after `delay`).
fn budgeted(max_calls: u64, delay: fn(&ann_llm::ChatRequest) -> Duration) -> (Arc<Probe>, Arc<Budget>, Arc<Probe>) {
    let backend = Probe::new(Arc::new(ScriptedModel::default().fallback(|_| Ok("ok".into()))), delay);
    let budget = Budget::new(BudgetLimits { max_calls: Some(max_calls), ..Default::default() }, Default::default());
    let attempts = Probe::new(Arc::new(BudgetedModel::new(backend.clone(), budget.clone())), |_| Duration::ZERO);
    (attempts, budget, backend)
}

#[tokio::test(start_paused = true)]
async fn a_budget_stop_lets_calls_in_flight_finish_and_starts_no_more() {
    // Two single-agent layers; the "slow" input's calls take 100 ms, the other's 10 ms.
    let mut net = one_layer(1, &[AggregatorName::Single]);
    let mut check = net.layers[0].clone();
    check.id = "check".into();
    net.layers.push(check);
    let (attempts, budget, backend) = budgeted(2, |r| Duration::from_millis(if has(r, "slow") { 100 } else { 10 }));
    let shared: SharedModel = attempts.clone();
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, ..Default::default() };
    let inputs = vec!["fast".to_string(), "slow".into()];
    // Both first-layer calls start; at 10 ms the fast input's second call finds the budget
    // spent while the slow input's first call is still in flight.
    let e = forward_batch(&shared, &net, &inputs, None, &config).await.unwrap_err();
    assert!(e.is_budget_exhausted(), "{e}");
    assert_eq!(backend.counts(), (2, 2), "every call sent to the backend came back");
    assert_eq!(budget.ledger().in_flight, Default::default(), "no call was left unsettled");
    assert_eq!(budget.ledger().spent.calls, 2);
    assert_eq!(attempts.counts().0, 3, "the slow input's second call was never sent");
    // The error keeps the fast input's calls: its first layer, then the refused call.
    let trace = e.trace().expect("a budget stop in a forward pass carries its trace");
    assert_eq!(trace.input, "fast");
    let layers: Vec<_> = trace.layers.iter().map(|l| (l.layer.as_str(), l.calls.len(), l.error.is_some())).collect();
    assert_eq!(layers, [("solve", 1, false), ("check", 1, true)]);
    assert!(trace.layers[1].calls[0].error.as_deref().unwrap().starts_with("budget exhausted: calls"));
    assert_eq!(trace.output, "");
}

#[tokio::test(start_paused = true)]
async fn a_budget_stop_in_a_layer_sends_no_queued_call() {
    // Four agents, two calls at a time, one call allowed: a1 is sent, a2 is refused by the
    // budget; a3 and a4 (waiting for a slot) are never sent; a1 still finishes.
    let net = one_layer(4, &[AggregatorName::Concatenate]);
    let (attempts, budget, backend) = budgeted(1, |_| Duration::from_millis(10));
    let shared: SharedModel = attempts.clone();
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, max_parallel_calls: 2, ..Default::default() };
    let e = forward(&shared, &net, "x", None, &config).await.unwrap_err();
    assert!(e.is_budget_exhausted(), "{e}");
    assert_eq!(attempts.counts(), (2, 2));
    assert_eq!(backend.counts(), (1, 1));
    assert_eq!(budget.ledger().in_flight, Default::default());
    let trace = e.into_trace().unwrap();
    let calls: Vec<_> = trace.layers[0]
        .calls
        .iter()
        .map(|c| (c.agent.as_deref().unwrap(), c.output.as_deref(), c.error.is_some()))
        .collect();
    assert_eq!(calls, [("a1", Some("ok"), false), ("a2", None, true)]);
}

#[tokio::test]
async fn a_failed_layer_keeps_the_calls_made_before_it() {
    // `solve` routes to majority_vote, then every agent's call fails (its prompt does not fit).
    let model = Arc::new(
        ScriptedModel::default()
            .on(|r| {
                (is_routing(r) && has(r, "Layer `solve`"))
                    .then(|| Ok(r#"{"aggregator": "majority_vote", "reason": "vote"}"#.into()))
            })
            .on(|r| is_agent(r, "understand", "a1").then(|| Ok("Given 2 and 2.".into())))
            .on(|r| has(r, "of the team `solve`").then(|| Err(overflow()))),
    );
    let shared: SharedModel = model.clone();
    let e =
        forward(&shared, &sample_network(), "What is 2+2?", Some(&boxed), &ForwardConfig::default()).await.unwrap_err();
    let GraphError::LayerFailed { layer, trace, .. } = &e else { panic!("{e}") };
    assert_eq!(layer, "solve");
    assert_eq!(trace.calls().count(), model.calls(), "every call made is in the trace");
    assert_eq!((trace.task.contains("What is 2+2?"), trace.input.as_str()), (true, "What is 2+2?"));
    let understand = &trace.layers[0];
    assert_eq!((understand.output.as_str(), understand.error.as_deref()), ("Given 2 and 2.", None));
    let solve = &trace.layers[1];
    assert_eq!(solve.input, "Given 2 and 2.");
    assert_eq!((solve.routing.aggregator, solve.routing.source), (AggregatorName::MajorityVote, RoutingSource::Model));
    let kinds: Vec<_> = solve.calls.iter().map(|c| (c.kind, c.agent.as_deref(), c.error.is_some())).collect();
    assert_eq!(
        kinds,
        [
            (crate::CallKind::Routing, None, false),
            (crate::CallKind::Agent, Some("a1"), true),
            (crate::CallKind::Agent, Some("a2"), true),
            (crate::CallKind::Agent, Some("a3"), true),
        ]
    );
    assert_eq!(solve.error.as_deref(), Some(e.to_string().as_str()));
    assert_eq!((solve.output.as_str(), trace.output.as_str(), trace.layers.len()), ("", "", 2));
    let jsonl = trace.to_jsonl();
    let layer_line = jsonl.lines().find(|l| l.contains(r#""layer":"solve","input""#)).unwrap();
    assert!(layer_line.contains(r#""error":"layer `solve` produced no output: "#), "{layer_line}");
    // In a batch the failure stays in place, with its trace.
    let inputs = vec!["What is 2+2?".to_string()];
    let results =
        forward_batch(&shared, &sample_network(), &inputs, Some(&boxed), &ForwardConfig::default()).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap_err().trace(), Some(&**trace));
}

#[test]
fn forward_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let model: SharedModel = Arc::new(ScriptedModel::default());
    let (net, config) = (sample_network(), ForwardConfig::default());
    let inputs = vec!["x".to_string()];
    assert_send(&forward(&model, &net, "x", Some(&boxed), &config));
    assert_send(&forward_batch(&model, &net, &inputs, Some(&boxed), &config));
    let fallback = sample_network();
    let rules = ValidationRules::default();
    let brief = crate::TeamBrief::default();
    assert_send(&crate::construct_team(&model, &brief, &rules, &fallback, &Default::default()));
}

#[tokio::test]
async fn invalid_networks_are_refused_before_any_call() {
    let mut net = one_layer(1, &[AggregatorName::Single]);
    net.layers[0].agents.clear();
    let model = Arc::new(ScriptedModel::default());
    let shared: SharedModel = model.clone();
    let e = forward(&shared, &net, "x", None, &ForwardConfig::default()).await.unwrap_err();
    assert!(matches!(&e, GraphError::Invalid(v) if v[0].rule() == "agent_count"), "{e}");
    assert_eq!(model.calls(), 0);
}

/// The endpoint is down: every attempt refused, retries exhausted (an infrastructure failure).
fn refused() -> LlmError {
    let last = LlmError::Connection(
        "error sending request for url (http://127.0.0.1:9/v1/chat/completions): connection refused".into(),
    );
    LlmError::RetriesExhausted { attempts: 5, last: Box::new(last) }
}

#[tokio::test]
async fn an_infrastructure_failure_under_stop_stops_the_layer_with_no_vote_missing_an_agent() {
    // Three voters, one call at a time: a1 answers, a2's endpoint is down; a3 is never sent and
    // no vote of a1 alone (or a1 and a3) is taken.
    let net = one_layer(3, &[AggregatorName::MajorityVote]);
    let model = Arc::new(
        ScriptedModel::default()
            .on(|r| is_agent(r, "solve", "a2").then(|| Err(refused())))
            .fallback(|_| Ok("\\boxed{4}".into())),
    );
    let shared: SharedModel = model.clone();
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, max_parallel_calls: 1, ..Default::default() };
    assert_eq!(config.on_infrastructure_failure, InfrastructurePolicy::Stop, "the default");
    let e = forward(&shared, &net, "x", Some(&boxed), &config).await.unwrap_err();
    let GraphError::InfrastructureFailure { stage, source, .. } = &e else { panic!("{e}") };
    assert_eq!((stage.as_str(), source.is_infrastructure()), ("layer `solve`", true));
    assert!(e.to_string().contains("connection refused"), "{e}");
    assert_eq!(model.calls(), 2, "no call starts after the failure");
    let calls: Vec<_> =
        e.trace().unwrap().layers[0].calls.iter().map(|c| (c.agent.clone(), c.error.is_some())).collect();
    assert_eq!(calls, [(Some("a1".into()), false), (Some("a2".into()), true)], "the failed call is traced");

    // In a batch the failure stops every input: the outer error, no per-input score.
    let inputs = vec!["x".to_string(), "y".into()];
    let e = forward_batch(&shared, &net, &inputs, Some(&boxed), &config).await.unwrap_err();
    assert!(e.is_infrastructure_failure(), "{e}");
}

#[tokio::test]
async fn an_infrastructure_failure_under_exclude_ends_only_its_input() {
    let net = one_layer(3, &[AggregatorName::MajorityVote]);
    let model = Arc::new(
        ScriptedModel::default()
            .on(|r| (has(r, "bad") && is_agent(r, "solve", "a2")).then(|| Err(refused())))
            .fallback(|_| Ok("\\boxed{4}".into())),
    );
    let shared: SharedModel = model.clone();
    let config = ForwardConfig {
        routing: crate::RoutingMode::Fixed,
        on_infrastructure_failure: InfrastructurePolicy::Exclude,
        ..Default::default()
    };
    let inputs = vec!["good".to_string(), "bad".into(), "good again".into()];
    let results = forward_batch(&shared, &net, &inputs, Some(&boxed), &config).await.unwrap();
    assert_eq!(results.iter().map(Result::is_ok).collect::<Vec<_>>(), [true, false, true]);
    let e = results[1].as_ref().unwrap_err();
    assert!(e.is_infrastructure_failure(), "{e}");
    let trace = e.trace().expect("the failed input keeps its trace");
    assert_eq!((trace.input.as_str(), trace.layers[0].calls.len()), ("bad", 3));
    assert_eq!(results[0].as_ref().unwrap().output, "\\boxed{4}");
}
