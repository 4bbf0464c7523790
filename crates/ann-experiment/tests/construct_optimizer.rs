//! Team construction is the optimiser's work: with an `[optimizer]` of its own model, the
//! decomposition calls of `network = "construct"` and of `ann construct` go to the optimiser's
//! endpoint under its model name (never to the worker's), and the constructed network is checked
//! with the experiment's validation rules, so an agent may name a configured model profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_experiment::reexports::OpenAiConfig;
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions};
use ann_graph::Network;
use ann_test_support::server::{FakeServer, FakeServerConfig, RecordedRequest};
use serde_json::Value;

mod mmlu_fixture;
use mmlu_fixture::fixture_benchmark;

/// Worker, optimiser and a profile `big`, each on its own endpoint; no training epoch.
const CONFIG: &str = r#"
name = "constructed"
[benchmark]
name = "mmlu-ml"
network = "construct"
[model]
backend = "openai"
name = "worker-m"
max_tokens = 32
seed = 5
[optimizer]
name = "optimizer-m"
base_url_env = "ANN_TEST_OPTIMIZER_URL"
model_env = "ANN_TEST_OPTIMIZER_MODEL"
seed = 9
[models.big]
name = "big-m"
base_url_env = "ANN_TEST_BIG_URL"
model_env = "ANN_TEST_BIG_MODEL"
[cache]
mode = "off"
[train]
epochs = 0
[construct]
examples = 2
max_attempts = 1
[report]
bootstrap_resamples = 100
"#;

/// A constructed network whose second agent runs on the profile `big`.
const CONSTRUCTED: &str = r#"{"version": 1, "task_description": "ignored", "layers": [{"id": "answer",
 "subtask": "Pick the right choice.", "agents": [
   {"id": "a1", "role": "A constructed expert.", "prompt": "{input}\n\nEnd with a last line 'Answer: X'.", "temperature": 0.0},
   {"id": "a2", "role": "A second opinion.", "prompt": "{input}\n\nEnd with a last line 'Answer: X'.", "temperature": 0.0,
    "model": {"profile": "big"}}],
 "aggregators": ["concatenate"], "default_aggregator": "concatenate", "routing_hint": "",
 "output_spec": "The reasoning, then a last line 'Answer: X'."}]}"#;

fn is_construction(r: &RecordedRequest) -> bool {
    r.body["messages"][0]["content"].as_str().is_some_and(|m| m.starts_with("You design multi-agent LLM systems"))
}

async fn server(reply: &'static str) -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(move |body: &Value| {
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        if system.starts_with("You design multi-agent LLM systems") { CONSTRUCTED.into() } else { reply.into() }
    }))
    .await
    .unwrap()
}

fn options(dir: &Path, worker: &FakeServer, optimizer: &FakeServer, big: &FakeServer) -> RunOptions {
    let open = |server: &FakeServer, model: &str| {
        let mut openai = OpenAiConfig::new(server.url(), model);
        openai.api_key_env = "ANN_TEST_NO_SUCH_KEY".into();
        openai.retry.max_attempts = 1;
        BackendSource::Open { local_model: PathBuf::new(), openai: Some(openai) }
    };
    let named: BTreeMap<String, BackendSource> =
        [("optimizer".to_string(), open(optimizer, "optimizer-m")), ("big".to_string(), open(big, "big-m"))].into();
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Named { worker: Box::new(open(worker, "worker-m")), named },
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(fixture_benchmark()),
        interrupt: None,
    }
}

fn expected_network() -> Network {
    let mut net = Network::from_json(CONSTRUCTED).unwrap();
    net.task_description = fixture_benchmark().task_description().to_string();
    net
}

#[tokio::test]
async fn construction_asks_the_optimiser_model_and_accepts_a_configured_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (worker, optimizer, big) = (server("Answer: A").await, server("Answer: B").await, server("Answer: B").await);
    let config = ExperimentConfig::from_toml(CONFIG, "constructed.toml").unwrap();
    let outcome = ann_experiment::start(&config, &options(dir.path(), &worker, &optimizer, &big)).await.unwrap();

    // One decomposition call, on the optimiser's endpoint with its model name and seed.
    let asked: Vec<RecordedRequest> = optimizer.requests().into_iter().filter(is_construction).collect();
    assert_eq!(asked.len(), 1, "{:?}", optimizer.requests().iter().map(|r| &r.body).collect::<Vec<_>>());
    assert_eq!((&asked[0].body["model"], &asked[0].body["seed"]), (&Value::from("optimizer-m"), &Value::from(9)));
    assert!(!worker.requests().iter().any(is_construction), "construction never asks the worker");
    assert!(!big.requests().iter().any(is_construction));

    // Validated with the experiment's rules: the agent on `big` is allowed, so no fallback.
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(outcome.run_dir.join("construction.json")).unwrap()).unwrap();
    assert_eq!(record["fallback_used"], false, "{}", record["errors"]);
    assert_eq!(Network::load(&outcome.run_dir.join("network-initial.json")).unwrap(), expected_network());
    // And the run uses it: the agent on `big` answered on big's endpoint.
    assert!(big.request_count() >= 1);

    // `ann construct` (a network to a file) does the same.
    let out = dir.path().join("built.json");
    let before = (worker.request_count(), optimizer.request_count());
    let record = ann_experiment::construct_to_file(&config, &[], &out, &options(dir.path(), &worker, &optimizer, &big))
        .await
        .unwrap();
    assert!(!record.fallback_used, "{:?}", record.errors);
    assert_eq!(Network::load(&out).unwrap(), expected_network());
    assert_eq!((worker.request_count(), optimizer.request_count()), (before.0, before.1 + 1));
    for s in [worker, optimizer, big] {
        s.shutdown().await;
    }
}
