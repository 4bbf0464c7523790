//! Team construction in the workflow, against the fake OpenAI-compatible server: a run with
//! `network = "construct"` starts from the model's network (first answer, or after a retry that
//! shows the errors) or falls back to the benchmark's, records it in `construction.json`, and a
//! resumed run constructs nothing again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_experiment::{BackendSource, ExperimentConfig, RunOptions, StartNetwork};
use ann_graph::Network;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use serde_json::Value;

mod mmlu_fixture;
use mmlu_fixture::fixture_benchmark;

const CONSTRUCTED: &str = r#"{"version": 1, "task_description": "ignored", "layers": [{"id": "answer",
 "subtask": "Pick the right choice.", "agents": [{"id": "a1", "role": "A constructed expert.",
 "prompt": "{task}\n\n{input}\n\nEnd with a last line 'Answer: X'.", "temperature": 0.0}],
 "aggregators": ["single"], "default_aggregator": "single", "routing_hint": "",
 "output_spec": "A last line 'Answer: X'."}]}"#;

fn constructed() -> String {
    CONSTRUCTED.to_string()
}

/// The constructed network with its prompt lacking `{input}`: refused by the format gate.
fn invalid() -> String {
    CONSTRUCTED.replace("{input}", "the question")
}

/// How the scripted server answers the decomposition call and its retries.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Script {
    Valid,
    InvalidThenValid,
    AlwaysInvalid,
}

fn messages(body: &Value) -> Vec<String> {
    body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap_or_default().to_string()).collect()
}

fn is_construction(body: &Value) -> bool {
    messages(body).first().is_some_and(|m| m.starts_with("You design multi-agent LLM systems"))
}

async fn server(script: Script) -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(move |body| {
        if !is_construction(body) {
            return "Reasoning.\nAnswer: A".into();
        }
        let retry = messages(body).last().is_some_and(|m| m.starts_with("That network is invalid"));
        match (script, retry) {
            (Script::Valid, _) | (Script::InvalidThenValid, true) => format!("Here it is:\n{}", constructed()),
            (Script::InvalidThenValid, false) | (Script::AlwaysInvalid, _) => invalid(),
        }
    }))
    .await
    .unwrap()
}

const SMALL: &str = r#"
name = "built"
[benchmark]
name = "mmlu-ml"
network = "construct"
[model]
max_tokens = 32
optimizer_max_tokens = 64
[cache]
path = "responses.sqlite"
[train]
epochs = 1
batch_size = 2
patience = 0
[construct]
examples = 2
max_attempts = 3
[report]
bootstrap_resamples = 200
"#;

fn options(dir: &Path, server: &FakeServer) -> RunOptions {
    let model = OpenAiModel::new(OpenAiConfig::new(server.url(), "fake-model"), None).unwrap();
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(Arc::new(model)),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(fixture_benchmark()),
        interrupt: None,
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Run the small experiment against a server answering construction as `script`: the run
/// directory, the construction requests the server saw, and the record.
async fn run(dir: &Path, script: Script) -> (PathBuf, Vec<Value>, Value) {
    let server = server(script).await;
    let config = ExperimentConfig::from_toml(SMALL, "built.toml").unwrap();
    assert_eq!(config.benchmark.network, Some(StartNetwork::Construct));
    let outcome = ann_experiment::start(&config, &options(dir, &server)).await.unwrap();
    let construction: Vec<Value> = server.requests().into_iter().map(|r| r.body).filter(is_construction).collect();
    let record = read_json(&outcome.run_dir.join("construction.json"));
    server.shutdown().await;
    (outcome.run_dir, construction, record)
}

fn expected_network() -> Network {
    let mut net = Network::from_json(CONSTRUCTED).unwrap();
    net.task_description = fixture_benchmark().task_description().to_string();
    net
}

#[tokio::test]
async fn a_valid_first_answer_is_the_starting_network() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, calls, record) = run(dir.path(), Script::Valid).await;
    assert_eq!(calls.len(), 1);
    // The decomposition shows the task and the first k = 2 training inputs, and asks for the schema.
    let prompt = &messages(&calls[0])[1];
    let train = fixture_benchmark().examples(ann_eval::Split::Train).to_vec();
    assert!(prompt.contains(fixture_benchmark().task_description()), "{prompt}");
    assert!(prompt.contains(&train[0].input) && prompt.contains(&train[1].input), "{prompt}");
    assert_eq!(calls[0]["response_format"]["type"], "json_schema");
    assert_eq!((record["attempts"].as_u64(), record["fallback_used"].as_bool()), (Some(1), Some(false)));
    assert_eq!(record["examples"], serde_json::json!([train[0].id, train[1].id]));
    assert_eq!(Network::load(&run_dir.join("network-initial.json")).unwrap(), expected_network());
    assert_eq!(serde_json::from_value::<Network>(record["network"].clone()).unwrap(), expected_network());
    assert!(run_dir.join("report.json").is_file());
}

#[tokio::test]
async fn an_invalid_answer_is_retried_with_its_errors_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, calls, record) = run(dir.path(), Script::InvalidThenValid).await;
    assert_eq!(calls.len(), 2);
    let retry = messages(&calls[1]);
    assert_eq!(retry.len(), 4, "system, task, the rejected answer, its errors");
    assert!(retry[3].contains("agent `a1` in layer `answer`: the prompt lacks `{input}`"), "{}", retry[3]);
    assert_eq!((record["attempts"].as_u64(), record["fallback_used"].as_bool()), (Some(2), Some(false)));
    assert_eq!(record["errors"][0][0], "[placeholder] agent `a1` in layer `answer`: the prompt lacks `{input}`");
    assert_eq!(record["errors"][1], serde_json::json!([]));
    assert_eq!(Network::load(&run_dir.join("network-initial.json")).unwrap(), expected_network());
}

#[tokio::test]
async fn always_invalid_falls_back_to_the_benchmarks_network_and_resume_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, calls, record) = run(dir.path(), Script::AlwaysInvalid).await;
    assert_eq!(calls.len(), 3, "max_attempts bounds the calls");
    assert_eq!((record["attempts"].as_u64(), record["fallback_used"].as_bool()), (Some(3), Some(true)));
    assert_eq!(record["errors"].as_array().unwrap().len(), 3);
    let fallback = Network::from_json(fixture_benchmark().starting_network()).unwrap();
    assert_eq!(Network::load(&run_dir.join("network-initial.json")).unwrap(), fallback);

    // A resumed run reads its network from construction.json: no decomposition call, even with a
    // server that would now answer validly.
    std::fs::remove_file(run_dir.join("report.json")).unwrap();
    let server = server(Script::Valid).await;
    ann_experiment::resume(&run_dir, &options(dir.path(), &server)).await.unwrap();
    assert!(!server.requests().iter().any(|r| is_construction(&r.body)));
    assert_eq!(Network::load(&run_dir.join("network-initial.json")).unwrap(), fallback);
    server.shutdown().await;
}

/// A budget that runs out during construction stops the run with the `ann resume` hint and its
/// spend in `budget.json`; a resume under the same budget pays for nothing; raised, it finishes,
/// each call paid once (the first answer comes from the response cache).
#[tokio::test]
async fn a_budget_stop_during_construction_resumes_paying_no_call_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(Script::InvalidThenValid).await;
    let mut config = ExperimentConfig::from_toml(SMALL, "built.toml").unwrap();
    config.budget.max_calls = Some(1);
    let err = format!("{:#}", ann_experiment::start(&config, &options(dir.path(), &server)).await.unwrap_err());
    assert!(err.contains("team construction stopped") && err.contains("ann resume"), "{err}");
    assert_eq!(server.request_count(), 1);
    let run_dir = dir.path().join("runs/built-20270115T080000Z");
    let ledger: Value = read_json(&run_dir.join("budget.json"));
    assert_eq!(ledger["spent"]["calls"], 1, "{ledger}");
    assert!(!run_dir.join("construction.json").exists());

    assert!(ann_experiment::resume(&run_dir, &options(dir.path(), &server)).await.is_err());
    assert_eq!(server.request_count(), 1, "the run's budget holds across processes");

    config.budget.max_calls = None;
    std::fs::write(run_dir.join("config.toml"), config.to_toml().unwrap()).unwrap();
    ann_experiment::resume(&run_dir, &options(dir.path(), &server)).await.unwrap();
    let construction = server.requests().into_iter().filter(|r| is_construction(&r.body)).count();
    assert_eq!(construction, 2, "the rejected first answer came from the cache, the retry was paid once");
    let record = read_json(&run_dir.join("construction.json"));
    assert_eq!((record["attempts"].as_u64(), record["fallback_used"].as_bool()), (Some(2), Some(false)));
    server.shutdown().await;
}

#[test]
fn construct_settings_are_checked() {
    let bad = SMALL.replace("max_attempts = 3", "max_attempts = 0");
    let err = format!("{:#}", ExperimentConfig::from_toml(&bad, "bad.toml").unwrap_err());
    assert!(err.contains("construct.max_attempts"), "{err}");
    let unknown = SMALL.replace("examples = 2", "example = 2");
    let err = format!("{:#}", ExperimentConfig::from_toml(&unknown, "bad.toml").unwrap_err());
    assert!(err.contains("unknown field `example`"), "{err}");
    // The choice survives the run directory's config.toml.
    let config = ExperimentConfig::from_toml(SMALL, "built.toml").unwrap();
    assert!(config.to_toml().unwrap().contains("network = \"construct\""));
}
