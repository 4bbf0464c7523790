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

/// `experiments/demo.toml` (the answer-format job) on the pinned embedded model with `seed` as the training and
/// model seed and its train and test splits cut to `train` and `test` questions (its cache file
/// goes to `dir`, the base of relative paths).
async fn learn(dir: &Path, seed: u64, train: usize, test: usize) -> ann_experiment::RunOutcome {
    let cache = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join(".cache"));
    let model = ann_llm_local::pinned_model_path(&cache);
    assert!(model.is_file(), "{} is missing: run `cargo xtask fetch-model`", model.display());
    let options = RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Open { local_model: model, openai: None },
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: None,
        interrupt: None,
    };
    let text = std::fs::read_to_string(workspace().join("experiments/demo.toml")).unwrap();
    let mut config = ExperimentConfig::from_toml(&text, "demo.toml").unwrap();
    (config.train.seed, config.model.seed) = (seed, Some(seed));
    (config.benchmark.train, config.benchmark.test) = (Some(train), Some(test));
    ann_experiment::start(&config, &options).await.unwrap()
}

/// The step events of a run's journal.
fn steps(run_dir: &Path) -> Vec<serde_json::Value> {
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "step")
        .collect()
}

/// What a step proposed for the agent's prompt (the appended line), if it proposed a `set_prompt`.
fn appended(step: &serde_json::Value, start: &str) -> Option<String> {
    let ops = step["components"][0]["ops"].as_array()?;
    let value = ops.iter().find(|o| o["op"] == "set_prompt")?["value"].as_str()?;
    Some(value.strip_prefix(start).unwrap_or(value).trim().to_string())
}

/// One step of the learning job on the real embedded model, optimiser included (4 training
/// questions, one batch): the local update is an instruction appended to the agent's prompt,
/// decoded under its schema, so it always parses as a `set_prompt` on the layer's own agent, and
/// the validation gate's decision follows the scores it measured. Whether the 135M optimiser's
/// instruction is accepted is its own (the README gives the 5-seed tally); that is not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backward_step_on_the_embedded_model_appends_a_schema_instruction_and_the_gate_decides_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = learn(dir.path(), 0, 4, 2).await;
    let report = outcome.report;
    assert_eq!(report.benchmark, "answer-format");
    let steps = steps(&outcome.run_dir);
    assert_eq!(steps.len(), 1, "{:?}", report.steps);
    let step = &steps[0];
    let ops = step["components"][0]["ops"].as_array().expect("the patch parsed");
    assert_eq!(ops.len(), 1, "{step}");
    let op = &ops[0];
    assert_eq!(
        (op["op"].as_str(), op["layer"].as_str(), op["agent"].as_str()),
        (Some("set_prompt"), Some("answer"), Some("a1")),
        "{op}"
    );
    let line = appended(step, "{input}").unwrap();
    assert!(op["value"].as_str().unwrap().starts_with("{input}\n") && !line.contains('\n'), "{op}");
    // The gate: accepted exactly when the candidate's validation score beat the current one.
    let accepted = step["decision"]["decision"] == "accepted";
    match (step["val_before"].as_f64(), step["val_candidate"].as_f64()) {
        (Some(before), Some(candidate)) => assert_eq!(accepted, candidate > before, "{step}"),
        _ => assert!(!accepted, "{step}"),
    }
    let (initial, trained) =
        (report.validation.initial.as_ref().unwrap().mean, report.validation.trained.as_ref().unwrap().mean);
    assert_eq!(report.network_changed, accepted);
    assert!(if accepted { trained > initial } else { trained == initial }, "{initial} -> {trained}");
}

/// The 5-seed tally the README reports, run only when asked (minutes per seed on 2 cores):
/// `ANN_LEARN_SEEDS=0,1,2,3,4 cargo test -p ann-experiment --test local_model tally -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tally() {
    let Ok(seeds) = std::env::var("ANN_LEARN_SEEDS") else {
        eprintln!("tally: set ANN_LEARN_SEEDS (e.g. 0,1,2,3,4) to run the seeds");
        return;
    };
    for seed in seeds.split(',').map(|s| s.trim().parse::<u64>().unwrap()) {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let outcome = learn(dir.path(), seed, 8, 16).await;
        let r = &outcome.report;
        println!(
            "seed {seed}: validation {:.3} -> {:.3}, test {:.3} -> {:.3}, {:?}, {} s",
            r.validation.initial.as_ref().unwrap().mean,
            r.validation.trained.as_ref().unwrap().mean,
            r.test.initial.as_ref().unwrap().mean,
            r.test.trained.as_ref().map(|t| t.mean).unwrap_or(f64::NAN),
            r.steps,
            started.elapsed().as_secs()
        );
        for step in steps(&outcome.run_dir) {
            println!(
                "  step: {} {:?} -> {:?} appended {:?} status {}",
                step["decision"]["decision"],
                step["val_before"].as_f64(),
                step["val_candidate"].as_f64(),
                appended(&step, "{input}"),
                step["components"][0]["status"]
            );
        }
    }
}
