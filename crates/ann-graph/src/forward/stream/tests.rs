//! Tests of the forward stream: the order results are handed over in, inputs starting past a
//! slow one, closing.

use std::sync::Arc;
use std::time::Duration;

use ann_llm::SharedModel;

use super::*;
use crate::testing::one_layer;
use crate::{AggregatorName, ForwardConfig};

/// Answers after 50 ms when the prompt holds "slow", at once otherwise.
struct SlowOnSome;

#[async_trait::async_trait]
impl ann_llm::ChatModel for SlowOnSome {
    async fn complete(&self, request: &ann_llm::ChatRequest) -> Result<ann_llm::ChatResponse, ann_llm::LlmError> {
        if request.messages.iter().any(|m| m.content.contains("slow")) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(ann_llm::ChatResponse::text(&request.model, "ok"))
    }
    fn identity(&self) -> String {
        "slow-on-some".into()
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_hands_over_results_as_they_finish_or_in_input_order() {
    let net = one_layer(1, &[AggregatorName::Single]);
    let inputs: Vec<String> = ["slow 0", "fast 1", "fast 2", "fast 3"].map(String::from).to_vec();
    let model: SharedModel = Arc::new(SlowOnSome);
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, max_parallel_inputs: 2, ..Default::default() };
    let order = |order| {
        let (model, net, inputs, config) = (&model, &net, &inputs, &config);
        async move {
            let mut stream = ForwardStream::new(model, net, inputs, None, config, order).unwrap();
            let mut seen = Vec::new();
            while let Some((index, result)) = stream.next().await {
                assert_eq!(result.unwrap().trace.input, inputs[index]);
                seen.push(index);
            }
            assert!(stream.stopped().is_none());
            seen
        }
    };
    // Two at once: the fast inputs pass the slow one, which finishes last.
    assert_eq!(order(BatchOrder::Finished).await, [1, 2, 3, 0]);
    assert_eq!(order(BatchOrder::Input).await, [0, 1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_closed_stream_starts_no_input_and_hands_over_those_in_flight() {
    let net = one_layer(1, &[AggregatorName::Single]);
    let inputs: Vec<String> = (0..6).map(|i| format!("fast {i}")).collect();
    let model: SharedModel = Arc::new(SlowOnSome);
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, max_parallel_inputs: 2, ..Default::default() };
    let mut stream = ForwardStream::new(&model, &net, &inputs, None, &config, BatchOrder::Input).unwrap();
    let (first, _) = stream.next().await.unwrap();
    stream.close();
    let mut rest = Vec::new();
    while let Some((index, result)) = stream.next().await {
        assert!(result.is_ok());
        rest.push(index);
    }
    // Two were started together; the second is still handed over, no third starts.
    assert_eq!((first, rest), (0, vec![1]));
    assert!(stream.into_stopped().is_none(), "closing is no stop");
}

/// Answers a "slow" prompt only once `others` calls without it have been answered (an error after
/// a minute of paused time if they never come); counts those.
struct WaitsForOthers {
    others: usize,
    seen: std::sync::atomic::AtomicUsize,
    more: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl ann_llm::ChatModel for WaitsForOthers {
    async fn complete(&self, request: &ann_llm::ChatRequest) -> Result<ann_llm::ChatResponse, ann_llm::LlmError> {
        use std::sync::atomic::Ordering;
        if request.messages.iter().any(|m| m.content.contains("slow")) {
            let enough = async {
                loop {
                    let more = self.more.notified();
                    if self.seen.load(Ordering::SeqCst) >= self.others {
                        return;
                    }
                    more.await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(60), enough).await.is_err() {
                return Err(ann_llm::LlmError::Backend("the other inputs never started".into()));
            }
        } else {
            self.seen.fetch_add(1, Ordering::SeqCst);
            self.more.notify_waiters();
        }
        Ok(ann_llm::ChatResponse::text(&request.model, "ok"))
    }
    fn identity(&self) -> String {
        "waits-for-others".into()
    }
}

/// In input order, a slow input holds back the results after it, not the inputs: others start in
/// its place (up to twice `max_parallel_inputs` after it), and the results still come in order.
#[tokio::test(start_paused = true)]
async fn in_input_order_inputs_start_past_a_slow_one_and_results_keep_their_order() {
    let net = one_layer(1, &[AggregatorName::Single]);
    let inputs: Vec<String> = ["slow 0", "fast 1", "fast 2", "fast 3", "fast 4", "fast 5"].map(String::from).to_vec();
    // Two in flight: the slow input is answered once three later ones were.
    let waits = Arc::new(WaitsForOthers { others: 3, seen: Default::default(), more: Default::default() });
    let model: SharedModel = waits.clone();
    let config = ForwardConfig { routing: crate::RoutingMode::Fixed, max_parallel_inputs: 2, ..Default::default() };
    let mut stream = ForwardStream::new(&model, &net, &inputs, None, &config, BatchOrder::Input).unwrap();
    let mut seen = Vec::new();
    while let Some((index, result)) = stream.next().await {
        assert_eq!(result.unwrap().trace.input, inputs[index]);
        seen.push(index);
    }
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    assert!(stream.stopped().is_none());
}
