//! Criterion benchmark: what the run's budget ledger costs per call, recorded as `ann` records it
//! (`LedgerFile`: one writer thread, group commit, the call waits for its reservation's line,
//! syncs in the background) against the former way (the whole `budget.json` rewritten and synced
//! atomically under the budget's lock before and after every call, on the caller's thread).
//!
//! Run: `cargo bench -p benches --bench ledger -- --warm-up-time 1 --measurement-time 3`.
//! The files live in a temporary folder on the disk the system puts temporary files on.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ann_llm::{
    Budget, BudgetLedger, BudgetLimits, BudgetedModel, ChatModel, ChatRequest, ChatResponse, LedgerFile, LlmError,
    Message, PriceTable, Usage,
};
use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};

/// Answers at once: the figure is the ledger's cost alone.
struct InstantModel;

#[async_trait]
impl ChatModel for InstantModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let usage = Usage { prompt_tokens: 20, completion_tokens: 1, cached_tokens: 0 };
        Ok(ChatResponse { usage, ..ChatResponse::text(&request.model, "4") })
    }

    fn identity(&self) -> String {
        "instant".to_string()
    }
}

/// The former recorder: the ledger rewritten atomically (temporary file, sync, rename, directory
/// sync) under one lock before the call is sent and after it settles.
struct RewriteUnderLock<M> {
    inner: M,
    path: PathBuf,
    ledger: Mutex<BudgetLedger>,
}

impl<M> RewriteUnderLock<M> {
    fn record(&self, change: impl FnOnce(&mut BudgetLedger)) {
        let mut ledger = self.ledger.lock().expect("lock");
        change(&mut ledger);
        let text = serde_json::to_string_pretty(&*ledger).expect("json") + "\n";
        ann_llm::write_atomic(&self.path, text.as_bytes()).expect("write");
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for RewriteUnderLock<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.record(|l| l.in_flight.calls += 1);
        let answer = self.inner.complete(request).await;
        self.record(|l| {
            l.in_flight.calls -= 1;
            l.spent.calls += 1;
        });
        answer
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}

fn request() -> ChatRequest {
    ChatRequest::new("m", vec![Message::user("What is 2 + 2?")]).with_max_tokens(256)
}

fn sixteen_at_once(
    rt: &tokio::runtime::Runtime,
    model: Arc<dyn ChatModel>,
) -> impl FnMut(&mut criterion::Bencher<'_>) + '_ {
    move |b| {
        b.to_async(rt).iter(|| {
            let calls: Vec<_> = (0..16)
                .map(|_| {
                    let model = model.clone();
                    tokio::spawn(async move { model.complete(&request()).await.expect("call") })
                })
                .collect();
            async move {
                for call in calls {
                    call.await.expect("task");
                }
            }
        })
    }
}

fn ledger(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("ledger");
    let request = request();

    let unrecorded =
        Arc::new(BudgetedModel::new(InstantModel, Budget::new(BudgetLimits::default(), PriceTable::empty())));
    group.bench_function("budgeted_unrecorded", |b| b.to_async(&rt).iter(|| unrecorded.complete(&request)));

    let budget = Budget::new(BudgetLimits::default(), PriceTable::empty());
    budget.record_to(LedgerFile::open(dir.path()).expect("ledger")).expect("record");
    let recorded: Arc<dyn ChatModel> = Arc::new(BudgetedModel::new(InstantModel, budget.clone()));
    group.bench_function("budgeted_ledger_file", |b| b.to_async(&rt).iter(|| recorded.complete(&request)));
    group.bench_function("budgeted_ledger_file_16_at_once", sixteen_at_once(&mt, recorded.clone()));

    let old_dir = dir.path().join("old");
    std::fs::create_dir_all(&old_dir).expect("dir");
    let rewritten: Arc<dyn ChatModel> = Arc::new(RewriteUnderLock {
        inner: BudgetedModel::new(InstantModel, Budget::new(BudgetLimits::default(), PriceTable::empty())),
        path: old_dir.join("budget.json"),
        ledger: Mutex::new(BudgetLedger::default()),
    });
    group.bench_function("budgeted_rewrite_under_lock", |b| b.to_async(&rt).iter(|| rewritten.complete(&request)));
    group.bench_function("budgeted_rewrite_under_lock_16_at_once", sixteen_at_once(&mt, rewritten.clone()));
    group.finish();
    drop(recorded);
    drop(budget);
}

criterion_group!(benches, ledger);
criterion_main!(benches);
