//! End-to-end: a tiny experiment on the REAL embedded model (needs `cargo xtask fetch-model`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_bench_mmlu_ml::MmluMl;
use ann_eval::Benchmark;
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Forward passes only (no epoch): the backward prompts are long, and prompt processing on a CPU is
/// what makes a real run slow; the demo exercises the backward phase on the real model.
const TINY: &str = r#"
name = "tiny"
[benchmark]
name = "mmlu-ml"
train = 1
validation = 1
test = 1
network = "one-agent.json"
[model]
backend = "local"
max_tokens = 6
[train]
epochs = 0
[report]
bootstrap_resamples = 100
"#;

/// A one-layer, one-agent network with a short prompt, keeping the MMLU answer format.
const ONE_AGENT: &str = r#"{
  "version": 1,
  "task_description": "Answer the multiple-choice question with a last line 'Answer: X'.",
  "layers": [{
    "id": "solve",
    "subtask": "Answer.",
    "agents": [{"id": "a1", "role": "A student.", "prompt": "{input}\nAnswer: ", "temperature": 0.0}],
    "aggregators": ["single"],
    "default_aggregator": "single",
    "routing_hint": "",
    "output_spec": "A last line 'Answer: X'."
  }]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_experiment_runs_on_the_embedded_model() {
    // The pinned model where `cargo xtask fetch-model` puts it (ANN_CACHE_DIR moves the cache).
    let cache = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join(".cache"));
    let model = ann_llm_local::pinned_model_path(&cache);
    assert!(model.is_file(), "{} is missing: run `cargo xtask fetch-model`", model.display());

    let rows = ann_bench_mmlu_ml::load_rows(&workspace().join("datasets/mmlu-ml/mmlu-ml-sample.jsonl")).unwrap();
    let examples: Vec<_> = rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect();
    let benchmark: Arc<dyn Benchmark> = Arc::new(MmluMl::from_examples(&examples, &[2, 1, 1], 3).unwrap());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one-agent.json"), ONE_AGENT).unwrap();
    let options = RunOptions {
        base_dir: dir.path().to_path_buf(),
        runs_dir: dir.path().join("runs"),
        backend: BackendSource::Open { local_model: model, openai: None },
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(benchmark),
        interrupt: None,
    };
    let config = ExperimentConfig::from_toml(TINY, "tiny.toml").unwrap();
    let outcome = ann_experiment::start(&config, &options).await.unwrap();
    let report = outcome.report;
    assert!(report.backend.starts_with("local:SmolLM2-135M-Instruct.Q4_1.gguf:"), "{}", report.backend);
    assert_eq!(report.test.initial.as_ref().unwrap().n, 1);
    assert_eq!((report.steps.steps, report.network_changed), (0, false));
    // One backend call per example (validation and test); the re-evaluations came from the cache.
    assert_eq!(report.budget_spent.calls, 2, "{:?}", report.budget_spent);
    assert!(report.cost.cache_hits >= 2, "{:?}", report.cost);
    assert!(report.cost.completion_tokens > 0 && report.cost.completion_tokens <= 4 * 6, "{:?}", report.cost);
    let lines = std::fs::read_to_string(outcome.run_dir.join("evaluations/test-initial.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1);
    assert!(outcome.run_dir.join("report.md").is_file());
}

/// `experiments/answer-format.toml` with its test split cut to 2 questions (its cache file goes to
/// the test's folder, the base of relative paths).
fn answer_format_config() -> String {
    let text = std::fs::read_to_string(workspace().join("experiments/answer-format.toml")).unwrap();
    let cut = text.replace("name = \"answer-format\"   # built in", "test = 2\nname = \"answer-format\"   # built in");
    assert_ne!(cut, text, "the config's benchmark line moved");
    cut
}

/// One step of textual backpropagation on the real embedded model, optimiser included: the patch
/// is decoded under the layer's schema, so it always parses and names the layer's own ids, and the
/// validation gate's decision follows the scores it measured. (Which edit the 135M optimiser writes
/// is its own: on the project's machines seeds 0 and 2 of this config get an accepted role edit,
/// see the README; that is not asserted here, as the model's numerics may differ between CPUs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backward_step_on_the_embedded_model_proposes_a_schema_patch_and_the_gate_decides_on_it() {
    let cache = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join(".cache"));
    let model = ann_llm_local::pinned_model_path(&cache);
    assert!(model.is_file(), "{} is missing: run `cargo xtask fetch-model`", model.display());
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        base_dir: dir.path().to_path_buf(),
        runs_dir: dir.path().join("runs"),
        backend: BackendSource::Open { local_model: model, openai: None },
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: None,
        interrupt: None,
    };
    let config = ExperimentConfig::from_toml(&answer_format_config(), "answer-format.toml").unwrap();
    let outcome = ann_experiment::start(&config, &options).await.unwrap();
    let report = outcome.report;
    assert_eq!(report.benchmark, "answer-format");
    assert_eq!(report.steps.steps, 1, "{:?}", report.steps);

    let journal = std::fs::read_to_string(outcome.run_dir.join("journal.jsonl")).unwrap();
    let step: serde_json::Value = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "step")
        .expect("a step event");
    let component = &step["components"][0];
    assert_eq!(component["scope"], "answer", "{component}");
    let ops = component["ops"].as_array().expect("the patch parsed");
    assert!(!ops.is_empty(), "{component}");
    for op in ops {
        assert_eq!(op["layer"], "answer", "{op}");
        if let Some(agent) = op["agent"].as_str() {
            assert_eq!(agent, "a1", "{op}");
        }
    }
    let status = component["status"].as_str().unwrap();
    assert!(!status.contains("unparsable") && !status.contains("unknown"), "{component}");
    // The gate: accepted exactly when the candidate's validation score beat the current one.
    let decision = step["decision"]["decision"].as_str().unwrap();
    if let (Some(before), Some(candidate)) = (step["val_before"].as_f64(), step["val_candidate"].as_f64()) {
        assert_eq!(decision == "accepted", candidate > before, "{step}");
    } else {
        assert_eq!(decision, "rejected", "{step}");
    }
    let trained = report.validation.trained.as_ref().unwrap().mean;
    let initial = report.validation.initial.as_ref().unwrap().mean;
    assert_eq!(report.network_changed, decision == "accepted");
    assert!(if decision == "accepted" { trained > initial } else { trained == initial }, "{initial} -> {trained}");
}
