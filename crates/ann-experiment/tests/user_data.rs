//! Trivia Creative Writing and DABench reached from an experiment config with the user's data
//! path (the project's own small fixtures under `datasets/`), and the error without one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_eval::Split;
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions, check_network};
use ann_graph::Network;
use ann_llm::SharedModel;
use ann_test_support::ScriptedModel;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn options(dir: &Path, model: SharedModel) -> RunOptions {
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(model),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: None,
        interrupt: None,
    }
}

/// A config of `benchmark` reading `data_path` (relative to the workspace), cache off.
fn config(benchmark: &str, data_path: Option<&str>, sizes: [usize; 3]) -> ExperimentConfig {
    let path = data_path.map(|p| format!("data_path = {:?}\n", p)).unwrap_or_default();
    let text = format!(
        "name = \"user\"\nbaselines = [\"direct\", \"start\"]\n[benchmark]\nname = \"{benchmark}\"\n{path}\
         train = {}\nvalidation = {}\ntest = {}\n[cache]\nmode = \"off\"\n[train]\nepochs = 1\nbatch_size = 1\n\
         patience = 0\n[report]\nbootstrap_resamples = 100\n",
        sizes[0], sizes[1], sizes[2]
    );
    ExperimentConfig::from_toml(&text, "user.toml").unwrap()
}

/// A model whose every answer is a story naming the fixture's answers, or DABench closed forms.
fn storyteller() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new("scripted").fallback(|_| {
        Ok("At the lighthouse, William Shakespeare read about Mars and the Pacific. @mean_price[4.38]".into())
    }))
}

#[tokio::test]
async fn trivia_cw_runs_from_a_config_with_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    // Relative data paths resolve against the base folder (here the workspace).
    let config = config("trivia-cw", Some("datasets/trivia-cw/trivia-cw-sample.jsonl"), [2, 1, 1]);
    let mut opts = options(dir.path(), storyteller());
    opts.base_dir = workspace();
    opts.runs_dir = dir.path().join("runs");
    let prepared = ann_experiment::prepare(&config, &opts).await.unwrap();
    assert_eq!(prepared.benchmark.name(), "trivia-cw");
    let sizes = [Split::Train, Split::Validation, Split::Test].map(|s| prepared.benchmark.examples(s).len());
    assert_eq!(sizes, [2, 1, 1]);
    check_network(&prepared.start, prepared.benchmark.as_ref()).unwrap();
    let outcome = ann_experiment::start(&config, &opts).await.unwrap();
    assert_eq!(outcome.report.benchmark, "trivia-cw");
    assert_eq!(outcome.report.baselines.len(), 2);
    let lines = std::fs::read_to_string(outcome.run_dir.join("evaluations/test-initial.jsonl")).unwrap();
    assert!(lines.contains("\"id\":\"trivia-cw/"), "{lines}");
}

#[tokio::test]
async fn dabench_loads_the_users_folder_and_scores_closed_forms() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace().join("datasets/dabench");
    let config = config("dabench", Some(data.to_str().unwrap()), [1, 0, 1]);
    let opts = options(dir.path(), storyteller());
    let prepared = ann_experiment::prepare(&config, &opts).await.unwrap();
    assert_eq!(prepared.benchmark.name(), "dabench");
    check_network(&prepared.start, prepared.benchmark.as_ref()).unwrap();
    let test = &prepared.benchmark.examples(Split::Test)[0];
    assert!(test.id.starts_with("dabench/") && test.input.contains("(first lines)"), "{test:?}");
    let all = [prepared.benchmark.examples(Split::Train), prepared.benchmark.examples(Split::Test)].concat();
    let mean_price = all.iter().find(|e| e.id == "dabench/0").unwrap();
    let right = prepared.benchmark.evaluate(mean_price, "So @mean_price[4.380].").await.unwrap();
    assert!(right.passed, "{right:?}");
    assert_eq!(prepared.benchmark.extract_answer("x @mean_price[4.38]").as_deref(), Some("@mean_price[4.38]"));
}

#[tokio::test]
async fn a_missing_data_path_names_the_key_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (name, var) in [("trivia-cw", "ANN_TRIVIA_CW_PATH"), ("dabench", "ANN_DABENCH_DIR")] {
        let config = config(name, None, [1, 0, 1]);
        let err = ann_experiment::prepare(&config, &options(dir.path(), storyteller())).await.err().unwrap();
        let err = format!("{err:#}");
        assert!(err.contains("benchmark.data_path") && err.contains(var), "{err}");
        assert_eq!(ann_experiment::user_data_env(name), Some(var));
    }
    // A path that is not there names the file.
    let config = config("trivia-cw", Some("no/such/file.jsonl"), [1, 0, 1]);
    let err =
        format!("{:#}", ann_experiment::prepare(&config, &options(dir.path(), storyteller())).await.err().unwrap());
    assert!(err.contains("no/such/file.jsonl"), "{err}");
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn the_user_data_configs_parse_and_their_networks_validate() {
    for name in ann_experiment::USER_DATA_BENCHMARKS {
        let path = workspace().join(format!("experiments/user-data/{name}.toml"));
        let config = ExperimentConfig::load(&path).unwrap();
        assert_eq!(config.benchmark.name, name);
    }
    let dabench = std::fs::read_to_string(workspace().join("experiments/user-data/dabench.toml")).unwrap();
    assert!(dabench.contains("Issue 12"), "the DABench config says which issue makes it runnable");
    for (file, format) in [
        ("network-trivia.json", ann_bench_creative_writing::trivia::ANSWER_FORMAT),
        ("network-dabench.json", ann_bench_creative_writing::dabench::ANSWER_FORMAT),
    ] {
        let net = Network::load(&workspace().join("crates/ann-bench-creative-writing").join(file)).unwrap();
        net.validate(&ann_graph::ValidationRules::with_answer_format(format)).unwrap();
    }
}
