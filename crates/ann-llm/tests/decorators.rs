//! Metering and budget decorators over a small in-test model.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ann_llm::{
    Budget, BudgetLedger, BudgetLimits, BudgetSpent, BudgetedModel, ChatModel, ChatRequest, ChatResponse, LlmError,
    Message, Meter, MeteredModel, Price, PriceTable, Usage,
};
use async_trait::async_trait;

/// Answers with fixed usage after a short sleep, counting calls that reached it.
struct Fixed {
    usage: Usage,
    calls: AtomicU64,
}

#[async_trait]
impl ChatModel for Fixed {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(ChatResponse { usage: self.usage, ..ChatResponse::text(&request.model, "ok") })
    }
    fn identity(&self) -> String {
        "fixed".into()
    }
}

fn fixed(prompt: u64, completion: u64) -> Arc<Fixed> {
    Arc::new(Fixed {
        usage: Usage { prompt_tokens: prompt, completion_tokens: completion, cached_tokens: 0 },
        calls: AtomicU64::new(0),
    })
}

#[tokio::test]
async fn meter_accumulates_per_model_and_tag() {
    let mut prices = PriceTable::empty();
    prices.0.insert("m".into(), Price { input_per_mtok: 1.0, output_per_mtok: 2.0, cached_input_per_mtok: None });
    let meter = Meter::new(prices);
    let model = MeteredModel::new(fixed(100, 10), meter.clone());
    for layer in ["a", "a", "b"] {
        let req = ChatRequest::new("m", vec![Message::user("x")]).with_tag("layer", layer).with_tag("phase", "forward");
        model.complete(&req).await.unwrap();
    }
    let report = meter.report();
    assert_eq!(report.total.calls, 3);
    assert_eq!(report.total.prompt_tokens, 300);
    assert!((report.total.dollars - 3.0 * (100.0 + 20.0) / 1e6).abs() < 1e-12);
    assert_eq!(report.by_tag["layer=a"].calls, 2);
    assert_eq!(report.by_tag["layer=b"].completion_tokens, 10);
    assert_eq!(report.by_tag["phase=forward"].calls, 3);
    assert_eq!(report.by_model["m"].calls, 3);
}

#[tokio::test]
async fn budget_is_never_exceeded_under_concurrency() {
    let inner = fixed(20, 30);
    let limits = BudgetLimits { max_tokens: Some(1_000), ..Default::default() };
    let budget = Budget::new(limits, PriceTable::empty());
    let model = Arc::new(BudgetedModel::new(inner.clone(), budget.clone()));
    // Each call's worst case: prompt bound (1 + 8 + 8 = 17) + max_tokens 50 = 67 tokens.
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let model = model.clone();
            tokio::spawn(async move {
                let req = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(50);
                model.complete(&req).await
            })
        })
        .collect();
    let mut ok = 0;
    let mut exhausted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LlmError::BudgetExhausted(_)) => exhausted += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(exhausted > 0, "the budget must refuse some calls");
    assert_eq!(ok, inner.calls.load(Ordering::SeqCst) as usize, "refused calls never reach the backend");
    assert!(budget.spent().tokens <= 1_000, "spent {:?}", budget.spent());
    // In-flight reservations are released: with 50 actual tokens per call, 14 fit (14 * 67 = 938).
    assert!(ok >= 14, "ok = {ok}");
}

/// A hostile or buggy provider's usage (2^64-1 tokens) neither panics nor wraps a total back under
/// the limit: the spend saturates and the next call is refused.
#[tokio::test]
async fn absurd_usage_saturates_and_stops_the_budget() {
    let budget = Budget::new(BudgetLimits { max_tokens: Some(100_000), ..Default::default() }, PriceTable::empty());
    let meter = Meter::new(PriceTable::empty());
    let model = MeteredModel::new(BudgetedModel::new(fixed(u64::MAX, u64::MAX), budget.clone()), meter.clone());
    let req = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(10);
    model.complete(&req).await.unwrap();
    assert_eq!(budget.spent().tokens, u64::MAX);
    let err = model.complete(&req).await.unwrap_err();
    assert!(matches!(err, LlmError::BudgetExhausted(ref why) if why.starts_with("tokens")), "{err}");
    assert_eq!(meter.report().total.prompt_tokens, u64::MAX);
}

#[tokio::test]
async fn call_and_dollar_limits() {
    let budget = Budget::new(BudgetLimits { max_calls: Some(2), ..Default::default() }, PriceTable::empty());
    let model = BudgetedModel::new(fixed(1, 1), budget);
    let req = ChatRequest::new("m", vec![Message::user("x")]);
    model.complete(&req).await.unwrap();
    model.complete(&req).await.unwrap();
    let err = model.complete(&req).await.unwrap_err();
    assert!(matches!(err, LlmError::BudgetExhausted(ref why) if why.starts_with("calls")), "{err}");

    let mut prices = PriceTable::empty();
    prices.0.insert("m".into(), Price { input_per_mtok: 1e6, output_per_mtok: 1e6, cached_input_per_mtok: None });
    let budget = Budget::new(BudgetLimits { max_dollars: Some(100.0), ..Default::default() }, prices);
    let model = BudgetedModel::new(fixed(1, 1), budget.clone());
    // Worst case 17 + 10 tokens at $1 each = $27; each call really costs $2. Calls go on while
    // 2k + 27 <= 100, so the 37th is the last one admitted and spend never passes the limit.
    let req = req.with_max_tokens(10);
    let mut admitted = 0;
    while model.complete(&req).await.is_ok() {
        admitted += 1;
    }
    assert_eq!(admitted, 37);
    assert!((budget.spent().dollars - 74.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_ledger_is_recorded_before_each_call_is_sent_and_after_it_settles() {
    let inner = fixed(3, 2);
    let earlier = BudgetSpent { tokens: 10, dollars: 0.0, calls: 1 };
    let limits = BudgetLimits { max_calls: Some(3), ..Default::default() };
    let budget = Budget::new(limits, PriceTable::empty()).with_spent(earlier);
    let seen: Arc<Mutex<Vec<(BudgetLedger, u64)>>> = Arc::default();
    let (log, backend) = (seen.clone(), inner.clone());
    budget
        .record_with(move |ledger| {
            log.lock().unwrap().push((*ledger, backend.calls.load(Ordering::SeqCst)));
            Ok(())
        })
        .unwrap();
    let model = BudgetedModel::new(inner.clone(), budget.clone());
    let req = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(10);
    model.complete(&req).await.unwrap();
    // The settlement is recorded without the call waiting for it: a flush waits for it.
    budget.flush_ledger().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    // Installed, reserved (before the backend saw the call), settled.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], (BudgetLedger { spent: earlier, ..Default::default() }, 0));
    let (reserved, backend_calls) = seen[1];
    assert_eq!((reserved.spent, reserved.in_flight.calls, backend_calls), (earlier, 1, 0));
    // One call left under the limit: less than a tenth of a call to set aside for later calls.
    assert_eq!((reserved.committed().calls, reserved.ahead.calls), (2, 0));
    let settled = BudgetSpent { tokens: 15, dollars: 0.0, calls: 2 };
    // The flush gives back what was set aside: the flushed record is exact.
    assert_eq!(seen[2], (BudgetLedger { spent: settled, ..Default::default() }, 1));
    assert_eq!(budget.ledger().committed(), settled);
    // The limit counts the earlier spend: one more call fits, the next is refused.
    model.complete(&req).await.unwrap();
    assert!(matches!(model.complete(&req).await, Err(LlmError::BudgetExhausted(_))));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
}

/// A settlement nobody waits for is held back only briefly (`ann_llm::LINGER`): without a flush
/// and without a later call, it still reaches the record.
#[tokio::test]
async fn a_settlement_alone_reaches_the_record_without_a_flush() {
    let inner = fixed(3, 2);
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty());
    let seen: Arc<Mutex<Vec<BudgetLedger>>> = Arc::default();
    let log = seen.clone();
    budget
        .record_with(move |ledger| {
            log.lock().unwrap().push(*ledger);
            Ok(())
        })
        .unwrap();
    let model = BudgetedModel::new(inner, budget.clone());
    model.complete(&ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(10)).await.unwrap();
    let settled = (BudgetSpent { tokens: 5, dollars: 0.0, calls: 1 }, BudgetSpent::default());
    let last = |seen: &[BudgetLedger]| seen.last().map(|l| (l.spent, l.in_flight));
    // Liveness, not timing: the bound is generous (the writer holds it back `LINGER`, 100 ms).
    for _ in 0..2000 {
        if last(&seen.lock().unwrap()) == Some(settled) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(last(&seen), Some(settled), "{seen:?}");
    // Installed, reserved, settled: one line each.
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[tokio::test]
async fn a_call_whose_spend_cannot_be_recorded_is_not_sent() {
    let inner = fixed(1, 1);
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty());
    budget.record_with(|ledger| if ledger.in_flight.calls > 0 { Err("disk full".into()) } else { Ok(()) }).unwrap();
    let model = BudgetedModel::new(inner.clone(), budget.clone());
    let err = model.complete(&ChatRequest::new("m", vec![Message::user("x")])).await.unwrap_err();
    assert!(matches!(&err, LlmError::BudgetExhausted(why) if why.contains("disk full")), "{err}");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 0);
    assert_eq!(budget.ledger(), BudgetLedger::default(), "the reservation is withdrawn");
    // A recorder that fails at once is not installed.
    let other = Budget::new(BudgetLimits::default(), PriceTable::empty());
    assert_eq!(other.record_with(|_| Err("read-only".into())), Err("read-only".to_string()));
}

/// Record `budget`'s ledger into the returned list, each recording passing the returned gate
/// first: holding the gate's lock keeps the ledger's writer stuck in a recording.
fn gated_recorder(budget: &Budget) -> (Arc<Mutex<()>>, Arc<Mutex<Vec<BudgetLedger>>>) {
    let gate = Arc::new(Mutex::new(()));
    let seen: Arc<Mutex<Vec<BudgetLedger>>> = Arc::default();
    let (g, log) = (gate.clone(), seen.clone());
    budget
        .record_with(move |ledger| {
            drop(g.lock().unwrap());
            log.lock().unwrap().push(*ledger);
            Ok(())
        })
        .unwrap();
    (gate, seen)
}

/// The ledger's writer runs without the budget's lock: while it is stuck recording one call's
/// reservation, other calls reserve theirs (none is sent before it is on record), and the next
/// recording holds all of them at once (group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The held lock stops the ledger's writer thread (no task ever waits for it): that is the test.
#[allow(clippy::await_holding_lock)]
async fn calls_reserve_while_the_ledger_is_written_and_one_recording_holds_them_all() {
    let inner = fixed(1, 1);
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty());
    let (gate, seen) = gated_recorder(&budget);
    let closed = gate.lock().unwrap();
    let model = Arc::new(BudgetedModel::new(inner.clone(), budget.clone()));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let model = model.clone();
            tokio::spawn(async move { model.complete(&ChatRequest::new("m", vec![Message::user("x")])).await })
        })
        .collect();
    // Every call reserves (the budget's lock is free while the writer is stuck), none is sent.
    while budget.ledger().in_flight.calls < 8 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 0, "no call is sent before its reservation is on record");
    drop(closed);
    for call in calls {
        call.await.unwrap().unwrap();
    }
    budget.flush_ledger().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    // The first reservation's recording holds the others' reservations or what it set aside for
    // them: seven calls waited for that one recording instead of one each.
    assert!(seen.iter().skip(1).all(|l| l.committed().calls >= 8), "the record always covers all eight: {seen:?}");
    // Installed, the first reservation, then at most one per later change, and the flush.
    assert!(seen.len() <= 3 + 15, "{} recordings for 16 changes", seen.len());
    assert_eq!(seen.last().unwrap().spent.calls, 8);
    assert_eq!(seen.last().unwrap().in_flight, BudgetSpent::default());
}

/// What a reservation sets aside (`BudgetLedger::ahead`) lets the calls after it go without a
/// recording each: with the ledger's writer stuck, covered calls are still sent, and the last
/// record (what a crash would leave) covers every call made. Under a limit at most a tenth of
/// what is left is set aside, and a flush gives it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn calls_the_set_aside_covers_go_without_a_recording_each() {
    let inner = fixed(1, 1);
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty());
    let (gate, seen) = gated_recorder(&budget);
    let model = BudgetedModel::new(inner.clone(), budget.clone());
    let req = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(1);
    model.complete(&req).await.unwrap();
    let closed = gate.lock().unwrap();
    for _ in 0..10 {
        model.complete(&req).await.unwrap();
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 11, "ten calls went while the writer was stuck");
    let on_record = *seen.lock().unwrap().last().unwrap();
    assert!(on_record.committed().calls >= 11, "a crash now would count every call made: {on_record:?}");
    assert_eq!(budget.ledger().ahead.calls, ann_llm::AHEAD_CALLS - 10, "the ten took theirs from the set-aside");
    drop(closed);
    budget.flush_ledger().await.unwrap();
    let flushed = *seen.lock().unwrap().last().unwrap();
    assert_eq!((flushed.spent.calls, flushed.in_flight.calls, flushed.ahead), (11, 0, BudgetSpent::default()));

    // Under a limit of 21 calls, after one call: a tenth of the 20 left.
    let limited = Budget::new(BudgetLimits { max_calls: Some(21), ..Default::default() }, PriceTable::empty());
    limited.record_with(|_| Ok(())).unwrap();
    BudgetedModel::new(inner.clone(), limited.clone()).complete(&req).await.unwrap();
    let ledger = limited.ledger();
    assert_eq!((ledger.spent.calls, ledger.ahead.calls), (1, 2), "{ledger:?}");
}

/// A run's ledger file: a reservation is in the log before the call is sent; the budget's drop
/// flushes the settled ledger into `budget.json`; a second process appends to the same log.
#[tokio::test]
async fn the_ledger_file_holds_each_reservation_before_the_call_and_the_settled_spend_after() {
    let dir = std::env::temp_dir().join(format!("ann-llm-ledger-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    /// Reads the log when the call arrives.
    struct Peek(std::path::PathBuf, Mutex<Option<BudgetLedger>>);
    #[async_trait]
    impl ChatModel for Peek {
        async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
            *self.1.lock().unwrap() = ann_llm::LedgerFile::read(&self.0).unwrap();
            Ok(ChatResponse {
                usage: Usage { prompt_tokens: 2, completion_tokens: 3, cached_tokens: 0 },
                ..ChatResponse::text(&request.model, "ok")
            })
        }
        fn identity(&self) -> String {
            "peek".into()
        }
    }
    let peek = Arc::new(Peek(dir.clone(), Mutex::new(None)));
    for process in 1..=2u64 {
        let earlier = ann_llm::LedgerFile::read(&dir).unwrap().map(|l| l.committed()).unwrap_or_default();
        let budget = Budget::new(BudgetLimits::default(), PriceTable::empty()).with_spent(earlier);
        budget.record_to(ann_llm::LedgerFile::open(&dir).unwrap()).unwrap();
        let model = BudgetedModel::new(peek.clone(), budget.clone());
        model.complete(&ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(7)).await.unwrap();
        let at_call = peek.1.lock().unwrap().unwrap();
        assert_eq!((at_call.spent.calls, at_call.in_flight.calls), (process - 1, 1));
        drop(model);
        drop(budget);
        let snapshot: BudgetLedger =
            serde_json::from_str(&std::fs::read_to_string(dir.join("budget.json")).unwrap()).unwrap();
        let settled = BudgetSpent { tokens: 5 * process, dollars: 0.0, calls: process };
        assert_eq!(snapshot, BudgetLedger { spent: settled, ..Default::default() });
        assert_eq!(ann_llm::LedgerFile::read(&dir).unwrap(), Some(snapshot));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C closes the budget: calls before it go through, every call after it is a budget stop.
#[tokio::test]
async fn an_interrupt_closes_the_budget() {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty()).interrupt_when(flag.clone());
    let inner = fixed(1, 1);
    let model = BudgetedModel::new(inner.clone(), budget);
    let req = ChatRequest::new("m", vec![Message::user("x")]);
    model.complete(&req).await.unwrap();
    flag.store(true, Ordering::SeqCst);
    let err = model.complete(&req).await.unwrap_err();
    assert_eq!(err.budget_exhausted(), Some(ann_llm::INTERRUPTED));
    assert!(matches!(err, LlmError::Interrupted) && err.is_interrupted(), "{err:?}");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1, "the refused call never reached the backend");
}

/// Asks for one tool call per offered tool, then answers in text once a tool result is in.
struct ToolCaller;

#[async_trait]
impl ChatModel for ToolCaller {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let answered = request.messages.last().is_some_and(|m| m.role == ann_llm::Role::Tool);
        let mut response = ChatResponse::text(&request.model, if answered { "done" } else { "" });
        if !answered {
            response.tool_calls = request
                .tools
                .iter()
                .enumerate()
                .map(|(i, t)| ann_llm::ToolCall::new(format!("call_{i}"), &t.name, "{}"))
                .collect();
            response.finish_reason = ann_llm::FinishReason::ToolCalls;
        }
        response.usage = Usage { prompt_tokens: 10, completion_tokens: 5, cached_tokens: 0 };
        Ok(response)
    }
    fn identity(&self) -> String {
        "tool-caller".into()
    }
}

#[tokio::test]
async fn tool_call_turns_are_metered_and_budgeted() {
    let meter = Meter::new(PriceTable::empty());
    let budget = Budget::new(BudgetLimits { max_tokens: Some(400), ..Default::default() }, PriceTable::empty());
    let model = MeteredModel::new(BudgetedModel::new(ToolCaller, budget.clone()), meter.clone());
    let tools = vec![
        ann_llm::ToolDefinition::new("a", "A.", serde_json::json!({"type": "object"})),
        ann_llm::ToolDefinition::new("b", "B.", serde_json::json!({"type": "object"})),
    ];
    let first = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(20).with_tools(tools.clone());
    let asked = model.complete(&first.clone().with_tag("agent", "x")).await.unwrap();
    assert_eq!(asked.tool_calls.len(), 2);
    let mut second = first.clone();
    second.messages.push(asked.message());
    for call in &asked.tool_calls {
        second.messages.push(Message::tool_result(&call.id, "42"));
    }
    let answer = model.complete(&second.with_tag("agent", "x")).await.unwrap();
    assert_eq!((answer.text.as_str(), answer.tool_calls.len()), ("done", 0));
    let report = meter.report();
    assert_eq!((report.total.calls, report.total.tool_turns, report.total.tool_calls), (2, 1, 2));
    assert_eq!(report.by_tag["agent=x"].tool_turns, 1);
    assert_eq!(budget.spent().calls, 2, "every turn of the loop is a call of the budget");
    // The worst case covers the offered tools' definitions: a large schema breaks a limit that the
    // same request without tools fits in.
    let big = ann_llm::ToolDefinition::new("big", "x".repeat(500), serde_json::json!({"type": "object"}));
    let plain = ChatRequest::new("m", vec![Message::user("x")]).with_max_tokens(20);
    assert!(model.complete(&plain).await.is_ok());
    let err = model.complete(&plain.with_tools(vec![big])).await.unwrap_err();
    assert!(matches!(err, LlmError::BudgetExhausted(_)), "{err}");
}
