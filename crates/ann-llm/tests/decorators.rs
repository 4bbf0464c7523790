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
    let seen = seen.lock().unwrap().clone();
    // Installed, reserved (before the backend saw the call), settled.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], (BudgetLedger { spent: earlier, in_flight: BudgetSpent::default() }, 0));
    let (reserved, backend_calls) = seen[1];
    assert_eq!((reserved.spent, reserved.in_flight.calls, backend_calls), (earlier, 1, 0));
    assert_eq!(reserved.committed().calls, 2);
    let settled = BudgetSpent { tokens: 15, dollars: 0.0, calls: 2 };
    assert_eq!(seen[2], (BudgetLedger { spent: settled, in_flight: BudgetSpent::default() }, 1));
    assert_eq!(budget.ledger().committed(), settled);
    // The limit counts the earlier spend: one more call fits, the next is refused.
    model.complete(&req).await.unwrap();
    assert!(matches!(model.complete(&req).await, Err(LlmError::BudgetExhausted(_))));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
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
