//! Criterion benchmark: the cost per call of the LLM decorator stack (metering, budget) and of a
//! response-cache hit and miss, over an instant in-process model.
//!
//! Run: `cargo bench -p benches --bench llm_stack -- --warm-up-time 1 --measurement-time 3`.
//!
//! The base model is a local `InstantModel` rather than `ann_test_support::ScriptedModel`, because
//! the scripted model records every request it is asked (a clone each), which would both count in
//! the figure and grow memory by millions of requests over a measurement.

use std::sync::Arc;

use ann_llm::{
    Budget, BudgetLimits, BudgetedModel, ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, Message, Meter,
    MeteredModel, PriceTable, Usage,
};
use ann_llm_cache::{CachedModel, ResponseCache};
use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};

/// Answers at once with a fixed response and usage: the cost measured is the decorators' alone.
struct InstantModel;

#[async_trait]
impl ChatModel for InstantModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        Ok(ChatResponse {
            text: "4".to_string(),
            finish_reason: FinishReason::Stop,
            usage: Usage { prompt_tokens: 20, completion_tokens: 1, cached_tokens: 0 },
            model: request.model.clone(),
            latency_ms: 0,
            cache_hit: false,
            tool_calls: Vec::new(),
        })
    }

    fn identity(&self) -> String {
        "instant".to_string()
    }
}

fn request() -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![Message::system("You are a careful agent in layer 2 of the network."), Message::user("What is 2 + 2?")],
    )
    .with_temperature(0.7)
    .with_max_tokens(256)
    .with_tag("phase", "forward")
    .with_tag("layer", "2")
    .with_tag("agent", "solver")
}

fn budget() -> Arc<Budget> {
    // Limits far above what a benchmark can spend, so every call is checked and none refused.
    let limits = BudgetLimits {
        max_tokens: Some(u64::MAX / 2),
        max_dollars: Some(1e15),
        max_calls: Some(u64::MAX / 2),
        ..BudgetLimits::default()
    };
    Budget::new(limits, PriceTable::default())
}

fn llm_stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let request = request();
    let mut group = c.benchmark_group("llm_stack");

    let bare = InstantModel;
    group.bench_function("instant_model", |b| b.to_async(&rt).iter(|| bare.complete(&request)));

    let metered = MeteredModel::new(InstantModel, Meter::new(PriceTable::default()));
    group.bench_function("metered", |b| b.to_async(&rt).iter(|| metered.complete(&request)));

    let budgeted = BudgetedModel::new(InstantModel, budget());
    group.bench_function("budgeted", |b| b.to_async(&rt).iter(|| budgeted.complete(&request)));

    let stack = MeteredModel::new(BudgetedModel::new(InstantModel, budget()), Meter::new(PriceTable::default()));
    group.bench_function("metered_budgeted", |b| b.to_async(&rt).iter(|| stack.complete(&request)));

    // A cache hit through the full stack: metering above the cache, the budget below it.
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = ResponseCache::open(&dir.path().join("bench.sqlite")).expect("open cache");
    let cached = MeteredModel::new(
        CachedModel::new(BudgetedModel::new(InstantModel, budget()), cache),
        Meter::new(PriceTable::default()),
    );
    let warm = rt.block_on(cached.complete(&request)).expect("warm the cache");
    assert!(!warm.cache_hit);
    assert!(rt.block_on(cached.complete(&request)).expect("hit").cache_hit, "the second call must be a hit");
    group.bench_function("metered_cache_hit", |b| b.to_async(&rt).iter(|| cached.complete(&request)));

    // A hit read from the database (the in-memory front turned off): what a resumed run's first
    // calls, or answers another process stored, cost.
    let no_front = ann_llm_cache::CacheConfig { memory_entries: 0, ..Default::default() };
    let from_disk = MeteredModel::new(
        CachedModel::new(
            BudgetedModel::new(InstantModel, budget()),
            ResponseCache::open_with(&dir.path().join("bench.sqlite"), &no_front).expect("open cache"),
        ),
        Meter::new(PriceTable::default()),
    );
    assert!(rt.block_on(from_disk.complete(&request)).expect("hit").cache_hit, "stored by the first cache");
    group.bench_function("metered_cache_hit_from_database", |b| b.to_async(&rt).iter(|| from_disk.complete(&request)));

    // A cache miss through the full stack: a fresh sample index each iteration, so every call looks
    // the key up, reaches the instant model and stores its answer.
    let missed = MeteredModel::new(
        CachedModel::new(
            BudgetedModel::new(InstantModel, budget()),
            ResponseCache::open(&dir.path().join("miss.sqlite")).expect("open cache"),
        ),
        Meter::new(PriceTable::default()),
    );
    let next = std::cell::Cell::new(0u32);
    group.bench_function("metered_cache_miss", |b| {
        b.to_async(&rt).iter(|| {
            let fresh = request.clone().with_sample_index(next.replace(next.get().wrapping_add(1)));
            let missed = &missed;
            async move {
                let answer = missed.complete(&fresh).await.expect("miss");
                debug_assert!(!answer.cache_hit);
                answer
            }
        })
    });

    // 16 distinct misses at once on a two-worker runtime (16 questions in flight): the figure is
    // for all 16 together.
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let concurrent = Arc::new(MeteredModel::new(
        CachedModel::new(
            BudgetedModel::new(InstantModel, budget()),
            ResponseCache::open(&dir.path().join("miss16.sqlite")).expect("open cache"),
        ),
        Meter::new(PriceTable::default()),
    ));
    let next16 = std::sync::atomic::AtomicU32::new(0);
    group.bench_function("metered_cache_miss_16_concurrent", |b| {
        b.to_async(&mt).iter(|| {
            let first = next16.fetch_add(16, std::sync::atomic::Ordering::Relaxed);
            let calls: Vec<_> = (0..16)
                .map(|i| {
                    let model = concurrent.clone();
                    let fresh = request.clone().with_sample_index(first.wrapping_add(i));
                    tokio::spawn(async move { model.complete(&fresh).await.expect("miss") })
                })
                .collect();
            async move {
                for call in calls {
                    call.await.expect("task");
                }
            }
        })
    });

    group.finish();
}

criterion_group!(benches, llm_stack);
criterion_main!(benches);
