//! An infrastructure failure is never a score: under the default `stop` policy a training run
//! whose endpoint goes down stops with the checkpoint of its last finished batch and, resumed once
//! the endpoint is back, ends as an uninterrupted run would, paying no call twice; under
//! `exclude` an example whose forward hit such a failure is left out of the scores, never a 0.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ann_eval::Example;
use ann_graph::InfrastructurePolicy;
use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, SharedModel};
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_textgrad::{RunFiles, StopReason, TrainConfig, TrainError, TrainOutcome, Trainer, evaluate, mean_score};
use async_trait::async_trait;
use common::{data, network, objective, read, scripted, server};

/// The endpoint goes down after `healthy` calls: every later call is refused without reaching the
/// server, as a closed port refuses it (below the response cache, as the backend is).
struct GoesDown {
    inner: SharedModel,
    healthy: u64,
    calls: AtomicU64,
}

#[async_trait]
impl ChatModel for GoesDown {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.healthy {
            let last = LlmError::Connection("http://127.0.0.1:9/v1: connection refused".into());
            return Err(LlmError::RetriesExhausted { attempts: 5, last: Box::new(last) });
        }
        self.inner.complete(request).await
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}

/// Train against the server at `url` with the cache and the run files in `dir`; the endpoint
/// goes down after `healthy` calls when given.
async fn train(url: &str, dir: &Path, healthy: Option<u64>) -> Result<TrainOutcome, TrainError> {
    let config = OpenAiConfig {
        base_urls: vec![url.to_string()],
        model: "fake".into(),
        api_key_env: String::new(),
        ..OpenAiConfig::default()
    };
    let mut backend: SharedModel = Arc::new(OpenAiModel::new(config, None).expect("client"));
    if let Some(healthy) = healthy {
        backend = Arc::new(GoesDown { inner: backend, healthy, calls: AtomicU64::new(0) });
    }
    let cache = ResponseCache::open(&dir.join("responses.sqlite")).expect("cache");
    let model: SharedModel = Arc::new(CachedModel::new(backend, cache));
    let mut cfg = TrainConfig { epochs: 3, batch_size: 2, seed: 11, ..TrainConfig::default() };
    cfg.forward.model = "fake".into();
    cfg.optimizer.model = "fake".into();
    Trainer::new(model.clone(), model, objective(), cfg).train(&network(), &data(), &dir.join("run")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_going_down_stops_training_at_its_last_checkpoint_and_resume_pays_no_call_twice() {
    let whole_server = server().await;
    let whole = tempfile::tempdir().unwrap();
    let out = train(&whole_server.url(), whole.path(), None).await.expect("the uninterrupted run");
    assert_eq!(out.stop, StopReason::Completed);
    let whole_calls = whole_server.request_count();
    let whole_journal = read(&whole.path().join("run/journal.jsonl"));
    let whole_checkpoint = RunFiles::new(&whole.path().join("run")).unwrap().load_checkpoint().unwrap().unwrap();

    // The endpoint goes down halfway through the run: an error, not a result of zeros.
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let e = train(&server.url(), dir.path(), Some(whole_calls / 2)).await.unwrap_err();
    assert!(e.is_infrastructure_failure(), "{e}");
    assert!(e.to_string().contains("connection refused"), "{e}");
    let calls_at_stop = server.request_count();
    assert!(calls_at_stop > 0 && calls_at_stop < whole_calls, "{calls_at_stop} of {whole_calls}");
    // The checkpoint is the last finished batch's; no line scores the batch the failure hit.
    let run = dir.path().join("run");
    let partial = read(&run.join("journal.jsonl"));
    assert!(whole_journal.starts_with(&partial), "the journal so far is the uninterrupted run's");
    assert!(partial.len() < whole_journal.len());
    let checkpoint = RunFiles::new(&run).unwrap().load_checkpoint().unwrap().expect("a checkpoint");
    assert_eq!((checkpoint.journal_bytes as usize, checkpoint.stopped), (partial.len(), None));

    // The endpoint is back: the run resumes and ends as the uninterrupted one, no call paid twice.
    let resumed = train(&server.url(), dir.path(), None).await.expect("the resumed run");
    assert_eq!(resumed.stop, StopReason::Completed);
    assert_eq!(read(&run.join("journal.jsonl")), whole_journal);
    assert_eq!(RunFiles::new(&run).unwrap().load_checkpoint().unwrap().unwrap(), whole_checkpoint);
    assert_eq!(server.request_count(), whole_calls, "no call was paid twice");
}

#[tokio::test]
async fn under_exclude_an_example_whose_calls_fail_is_left_out_never_scored_zero() {
    // The worker's calls for Spain fail: the endpoint drops them (retries exhausted).
    let worker: SharedModel = Arc::new(scripted("worker").on(|r| {
        r.messages.iter().any(|m| m.content.contains("spain")).then(|| Err(LlmError::Connection("reset".into())))
    }));
    let net = network();
    let data = data();
    let refs: Vec<&Example> = data.train[..3].iter().collect();
    let mut forward = ann_graph::ForwardConfig::default();

    // Default (stop): an error, no scores at all.
    let e = evaluate(&worker, &objective(), &net, &refs, &forward).await.unwrap_err();
    assert!(e.is_infrastructure_failure(), "{e}");

    forward.on_infrastructure_failure = InfrastructurePolicy::Exclude;
    let runs = evaluate(&worker, &objective(), &net, &refs, &forward).await.unwrap();
    let excluded: Vec<(&str, bool)> = runs.iter().map(|r| (r.id.as_str(), r.excluded)).collect();
    assert_eq!(excluded, [("q-france", false), ("q-italy", false), ("q-spain", true)]);
    let spain = &runs[2];
    assert_eq!(spain.score(), None, "no score, not 0");
    assert!(spain.evaluation.feedback.starts_with("excluded from the scores: infrastructure failure"));
    assert!(spain.trace.as_ref().is_some_and(|t| t.calls().any(|c| c.error.is_some())), "the failed trace is kept");
    // The mean is the other two examples'; q-spain is not among them, nor among the examples the
    // backward phase learns from.
    let scored: Vec<f64> = runs.iter().filter_map(|r| r.score()).collect();
    assert_eq!(scored.len(), 2);
    assert_eq!(mean_score(&runs), scored.iter().sum::<f64>() / 2.0);
    assert!(ann_textgrad::select_examples(&runs, &Default::default()).iter().all(|&i| i != 2));
}
