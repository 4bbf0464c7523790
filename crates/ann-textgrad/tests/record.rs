//! Every forward of training leaves its trace (the initial validation, each batch, the gate's
//! pre-checks and validations), and routing learns from the record those traces make when the
//! routing statistics are on.

mod common;

use std::path::Path;
use std::sync::Arc;

use ann_graph::AggregatorName;
use ann_llm::{Budget, BudgetLimits, BudgetedModel, ChatRequest, PriceTable, SharedModel};
use ann_test_support::ScriptedModel;
use ann_textgrad::{JournalEvent, RunFiles, StopReason, TrainConfig, TrainOutcome, Trainer};
use common::{data, network, objective, read, scripted};

fn config() -> TrainConfig {
    TrainConfig { epochs: 2, batch_size: 2, seed: 7, ..TrainConfig::default() }
}

async fn train(worker: SharedModel, config: TrainConfig, dir: &Path) -> TrainOutcome {
    Trainer::new(worker, Arc::new(scripted("optimizer")), objective(), config)
        .train(&network(), &data(), dir)
        .await
        .expect("training runs")
}

/// The `example` lines of a trace file: (id, score).
fn examples(path: &Path) -> Vec<(String, f64)> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "example")
        .map(|v| (v["id"].as_str().unwrap().to_string(), v["score"].as_f64().unwrap()))
        .collect()
}

/// The aggregator each `layer` line of a trace file ran on layer `answer`.
fn answer_routes(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "layer" && v["layer"] == "answer")
        .map(|v| v["routing"]["aggregator"].as_str().unwrap().to_string())
        .collect()
}

fn mean(scores: &[(String, f64)]) -> f64 {
    scores.iter().map(|s| s.1).sum::<f64>() / scores.len() as f64
}

#[tokio::test]
async fn every_forward_of_training_leaves_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    train(Arc::new(scripted("worker")), config(), dir.path()).await;
    let files = RunFiles::new(dir.path()).unwrap();
    let validation: Vec<String> = data().validation.iter().map(|e| e.id.clone()).collect();

    let start = examples(&files.named_traces_path("start-validation"));
    assert_eq!(start.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), validation);
    let mut gated = 0;
    for event in files.read_journal().unwrap() {
        match event {
            JournalEvent::Start { val_initial, .. } => assert_eq!(mean(&start), val_initial),
            JournalEvent::Step(s) => {
                let batch = format!("e{}-b{}", s.epoch, s.batch);
                let scores: Vec<_> = s.examples.iter().map(|e| (e.id.clone(), e.score)).collect();
                assert_eq!(examples(&files.named_traces_path(&batch)), scores);
                let (current, candidate) = s.pre_check.expect("the merged gate pre-checks every candidate");
                let pre = examples(&files.named_traces_path(&format!("{batch}-s{}-precheck", s.step)));
                assert_eq!(mean(&pre), candidate, "the pre-check's candidate score is its trace's mean");
                assert!(pre.len() <= s.examples.len());
                if let Some(val) = s.val_candidate {
                    assert!(candidate > current, "validation runs only after a passed pre-check");
                    let path = files.named_traces_path(&format!("{batch}-s{}-validation", s.step));
                    let runs = examples(&path);
                    assert_eq!(runs.len(), validation.len());
                    assert_eq!(mean(&runs), val, "the gate's validation score is its trace's mean");
                    gated += 1;
                }
            }
            _ => {}
        }
    }
    assert!(gated >= 2, "the environment's steps reach the validation gate: {gated}");

    // Sampled: the first example of each set of forwards; off: no trace at all.
    let sampled = tempfile::tempdir().unwrap();
    train(Arc::new(scripted("worker")), TrainConfig { trace_examples: 1, ..config() }, sampled.path()).await;
    let files = RunFiles::new(sampled.path()).unwrap();
    assert_eq!(examples(&files.named_traces_path("start-validation")).len(), 1);
    assert_eq!(examples(&files.traces_path(0, 0)).len(), 1);
    let off = tempfile::tempdir().unwrap();
    train(Arc::new(scripted("worker")), TrainConfig { write_traces: false, ..config() }, off.path()).await;
    assert!(!off.path().join("traces").exists());
}

/// The environment's worker with a router that reads the record: without statistics it picks
/// `concatenate`; with statistics, the candidate of highest mean score, one without a record
/// counting 0.5 (try what was never tried), ties to the first candidate.
fn routed_worker() -> ScriptedModel {
    scripted("worker").on(|r: &ChatRequest| {
        let prompt = &r.messages.last()?.content;
        if !r.messages[0].content.contains("You route one layer") || !prompt.contains("Layer `answer`") {
            return None;
        }
        let mean = |name: &str| {
            let line = prompt.lines().find(|l| l.starts_with(&format!("- {name}: ")))?;
            line.split_whitespace().nth(2)?.parse::<f64>().ok()
        };
        let blind = !prompt.contains("Past results");
        let record_favours_single = mean("single").unwrap_or(0.5) >= mean("concatenate").unwrap_or(0.5);
        let choice = if !blind && record_favours_single { "single" } else { "concatenate" };
        Some(Ok(format!(r#"{{"aggregator": "{choice}", "reason": "the record"}}"#)))
    })
}

fn with_statistics(on: bool) -> TrainConfig {
    let mut c = config();
    c.forward.routing_statistics = on;
    c
}

#[tokio::test]
async fn routing_statistics_change_the_choice() {
    // Off: the router always takes `concatenate`, whose wrapped answer never matches exactly.
    let off = tempfile::tempdir().unwrap();
    let blind = train(Arc::new(routed_worker()), with_statistics(false), off.path()).await;
    assert_eq!(blind.val_best, 0.0);
    assert!(answer_routes(&off.path().join("traces/e0-b0.jsonl")).iter().all(|a| a == "concatenate"));

    // On: the initial validation routes blind and records `concatenate` at 0; every later forward
    // sees that record and tries `single`, which scores once the answer is in uppercase.
    let on = tempfile::tempdir().unwrap();
    let worker = Arc::new(routed_worker());
    let seeing = train(worker.clone(), with_statistics(true), on.path()).await;
    assert!(answer_routes(&on.path().join("traces/start-validation.jsonl")).iter().all(|a| a == "concatenate"));
    let batch = answer_routes(&on.path().join("traces/e0-b0.jsonl"));
    assert!(!batch.is_empty() && batch.iter().all(|a| a == "single"), "{batch:?}");
    assert!(seeing.val_best > blind.val_best, "{} vs {}", seeing.val_best, blind.val_best);

    let routing_prompts: Vec<String> = worker
        .requests()
        .iter()
        .filter(|r| r.messages[0].content.contains("You route one layer"))
        .map(|r| r.messages[1].content.clone())
        .collect();
    assert!(!routing_prompts[0].contains("Past results"), "the first forward has no record");
    let shown = routing_prompts.iter().find(|p| p.contains("Past results")).expect("a later forward sees the record");
    assert!(shown.contains("- concatenate: 0.00 over 4 uses"), "{shown}");

    // The record is the run's: in the outcome and the checkpoint, counted from every forward.
    let concatenate = seeing.routing.tally("answer", AggregatorName::Concatenate).unwrap();
    assert_eq!((concatenate.uses, concatenate.score_sum), (4, 0.0));
    let single = seeing.routing.tally("answer", AggregatorName::Single).unwrap();
    assert!(single.uses > 4 && single.score_sum > 0.0, "{single:?}");
    let checkpoint = RunFiles::new(on.path()).unwrap().load_checkpoint().unwrap().unwrap();
    assert_eq!(checkpoint.routing, seeing.routing);
}

#[tokio::test]
async fn a_resumed_run_routes_with_the_record_it_checkpointed() {
    let whole = tempfile::tempdir().unwrap();
    let reference = train(Arc::new(routed_worker()), with_statistics(true), whole.path()).await;

    let dir = tempfile::tempdir().unwrap();
    let budget = Budget::new(BudgetLimits { max_calls: Some(40), ..BudgetLimits::default() }, PriceTable::empty());
    let limited: SharedModel = Arc::new(BudgetedModel::new(Arc::new(routed_worker()), budget));
    let stopped = train(limited, with_statistics(true), dir.path()).await;
    assert!(matches!(stopped.stop, StopReason::BudgetExhausted { .. }), "{:?}", stopped.stop);
    assert!(!stopped.routing.is_empty(), "stopped after a checkpoint with a record");

    let resumed = train(Arc::new(routed_worker()), with_statistics(true), dir.path()).await;
    assert_eq!(resumed, reference);
    assert_eq!(read(&dir.path().join("journal.jsonl")), read(&whole.path().join("journal.jsonl")));
}
