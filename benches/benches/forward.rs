//! The framework's own cost per LLM call in a forward pass, over an instant in-process model.
//!
//! A 3-layer network, 3 agents per layer, dynamic routing between `majority_vote` (chosen) and
//! `llm_synthesis`: 4 calls per layer (routing + 3 agents), 12 per forward pass. The model answers
//! at once, so the time measured is prompt rendering, request building, the concurrency limiter,
//! tracing and aggregation. Divide the time per pass by 12 for the cost per call (the throughput
//! line reports calls per second).

use std::hint::black_box;
use std::sync::Arc;

use ann_graph::{Agent, AggregatorName, ForwardConfig, Layer, Network, forward, forward_batch};
use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, SharedModel, Usage};
use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Answers routing calls with a valid choice and every other call with a boxed answer, at once.
struct InstantModel;

#[async_trait]
impl ChatModel for InstantModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let routing = request.messages[0].content.starts_with("You route");
        let text = if routing {
            r#"{"aggregator": "majority_vote", "reason": "a short computation"}"#
        } else {
            "The sum is 4, so the answer is \\boxed{4}."
        };
        let mut response = ChatResponse::text("instant", text);
        response.usage = Usage { prompt_tokens: 200, completion_tokens: 12, cached_tokens: 0 };
        Ok(response)
    }
    fn identity(&self) -> String {
        "instant".into()
    }
}

fn network() -> Network {
    let layer = |id: &str| Layer {
        id: id.into(),
        subtask: format!("the {id} step of the solution"),
        agents: (1..=3)
            .map(|i| Agent {
                id: format!("a{i}"),
                role: format!("Agent number {i}, a careful mathematician."),
                prompt: "{task}\n\nWork on this step: {input}\nEnd with \\boxed{}.".into(),
                temperature: if i == 1 { 0.0 } else { 0.7 },
                model: Default::default(),
            })
            .collect(),
        aggregators: vec![AggregatorName::MajorityVote, AggregatorName::LlmSynthesis],
        default_aggregator: AggregatorName::MajorityVote,
        routing_hint: "vote on short answers".into(),
        output_spec: "a solution ending in \\boxed{answer}".into(),
    };
    Network {
        version: 1,
        task_description: "Solve the competition mathematics problem. Give the final answer in \\boxed{}.".into(),
        layers: vec![layer("understand"), layer("solve"), layer("verify")],
    }
}

fn boxed(s: &str) -> Option<String> {
    let start = s.rfind("\\boxed{")? + 7;
    let end = s[start..].find('}')? + start;
    Some(s[start..end].to_string())
}

fn bench_forward(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let model: SharedModel = Arc::new(InstantModel);
    let net = network();
    let config = ForwardConfig::default();
    let input = "Let x be the positive real with x^2 = 16. What is x + x/2?";
    let calls_per_pass = 12;
    let check = rt.block_on(forward(&model, &net, input, Some(&boxed), &config)).expect("forward");
    assert_eq!(check.trace.calls().count(), calls_per_pass);

    let mut group = c.benchmark_group("forward");
    group.throughput(Throughput::Elements(calls_per_pass as u64));
    group.bench_function("3_layers_3_agents", |b| {
        b.to_async(&rt).iter(|| async { black_box(forward(&model, &net, input, Some(&boxed), &config).await.unwrap()) })
    });
    let inputs: Vec<String> = (0..8).map(|i| format!("{input} (variant {i})")).collect();
    group.throughput(Throughput::Elements((calls_per_pass * inputs.len()) as u64));
    group.bench_function("batch_of_8", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(forward_batch(&model, &net, &inputs, Some(&boxed), &config).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);
