//! The models of a run over real HTTP: a separate optimiser model (`[optimizer]`) and model
//! profiles agents name (`[models.NAME]`), each answered by its own fake OpenAI-compatible server
//! on 127.0.0.1, under one budget, with the cost of each model in the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_eval::Split;
use ann_experiment::reexports::OpenAiConfig;
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions};
use ann_test_support::server::{FakeServer, FakeServerConfig, RecordedRequest};
use serde_json::Value;

mod mmlu_fixture;
use mmlu_fixture::fixture_benchmark;

/// Worker and optimiser on two endpoints named by different variables.
const TWO_MODELS: &str = r#"
name = "two-models"
[benchmark]
name = "mmlu-ml"
[model]
backend = "openai"
name = "worker-m"
max_tokens = 32
[optimizer]
name = "optimizer-m"
base_url_env = "ANN_TEST_OPTIMIZER_URL"
model_env = "ANN_TEST_OPTIMIZER_MODEL"
api_key_env = "ANN_TEST_OPTIMIZER_KEY"
temperature = 0.2
max_tokens = 99
[train]
epochs = 1
batch_size = 2
patience = 0
[report]
bootstrap_resamples = 200
"#;

/// The system message of a recorded request.
fn system(r: &RecordedRequest) -> String {
    r.body["messages"][0]["content"].as_str().unwrap_or("").to_string()
}

/// What a request was for: `forward` (agents, routing, judges) or `backward` (loss, gradients, patches).
fn phase(r: &RecordedRequest) -> &'static str {
    let s = system(r);
    if s.contains("loss function") || s.contains("critic of a multi-layer") || s.contains("optimiser of one layer") {
        "backward"
    } else {
        "forward"
    }
}

/// The worker's server: an answer the evaluator cannot read, so every example fails (and the
/// backward phase runs).
async fn worker_server() -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|_| "I am not sure.".into()))
        .await
        .unwrap()
}

/// The optimiser's server: a language loss, a global gradient blaming `solve`, a local gradient
/// with an empty patch; anything else is a forward request, which this server must never see.
async fn optimizer_server() -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|body: &Value| {
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        if system.contains("loss function") {
            "<critique>No answer line.</critique>\n<requirement>End with `Answer: X`.</requirement>".into()
        } else if system.contains("critic of a multi-layer") {
            r#"{"diagnosis": "no answer line", "layers": [{"layer": "solve", "blame": 0.9, "issue": "no answer line", "direction": "ask for it"}], "structural": [{"kind": "none", "why": ""}]}"#.into()
        } else if system.contains("optimiser of one layer") {
            "<gradient>Ask for the answer line.</gradient>\n<requirement_for_previous>The question.</requirement_for_previous>\n<patch>[]</patch>".into()
        } else {
            "a forward request reached the optimiser".into()
        }
    }))
    .await
    .unwrap()
}

/// An endpoint of a fake server asking for `model` (no key variable set).
fn endpoint(server: &FakeServer, model: &str) -> OpenAiConfig {
    let mut openai = OpenAiConfig::new(server.url(), model);
    openai.api_key_env = "ANN_TEST_NO_SUCH_KEY".into();
    openai.retry.max_attempts = 1;
    openai
}

/// The worker on `worker`, and each named model of the run on its own server.
fn options(dir: &Path, worker: &FakeServer, named: &[(&str, &FakeServer, &str)]) -> RunOptions {
    let open = |server: &FakeServer, model: &str| BackendSource::Open {
        local_model: PathBuf::new(),
        openai: Some(endpoint(server, model)),
    };
    let named: BTreeMap<String, BackendSource> =
        named.iter().map(|(name, server, model)| (name.to_string(), open(server, model))).collect();
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

#[tokio::test]
async fn the_optimiser_answers_the_backward_calls_on_its_own_model_and_the_report_costs_each_model() {
    let dir = tempfile::tempdir().unwrap();
    let (worker, optimizer) = (worker_server().await, optimizer_server().await);
    let config = ExperimentConfig::from_toml(TWO_MODELS, "two-models.toml").unwrap();
    let options = options(dir.path(), &worker, &[("optimizer", &optimizer, "optimizer-m")]);
    let report = ann_experiment::start(&config, &options).await.unwrap().report;

    let forward = worker.requests();
    let backward = optimizer.requests();
    assert!(!forward.is_empty() && forward.iter().all(|r| phase(r) == "forward"), "worker saw a backward call");
    assert!(forward.iter().all(|r| r.body["model"] == "worker-m" && r.body["max_tokens"] == 32));
    assert!(backward.iter().all(|r| phase(r) == "backward"), "the optimiser saw a forward call");
    let systems: Vec<String> = backward.iter().map(system).collect();
    for kind in ["loss function", "critic of a multi-layer", "optimiser of one layer"] {
        assert!(systems.iter().any(|s| s.contains(kind)), "no `{kind}` call reached the optimiser");
    }
    assert!(backward.iter().all(|r| r.body["model"] == "optimizer-m" && r.body["max_tokens"] == 99));
    assert!(backward.iter().all(|r| (r.body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6));

    // The report costs each model; the budget counted both.
    let names: Vec<&str> = report.models.keys().map(String::as_str).collect();
    assert_eq!(names, ["optimizer", "worker"]);
    for (name, server, model) in [("worker", &worker, "worker-m"), ("optimizer", &optimizer, "optimizer-m")] {
        let m = &report.models[name];
        assert_eq!(m.model, model);
        assert!(m.backend.contains(&server.url()), "{}", m.backend);
        assert_eq!(m.cost.calls - m.cost.cache_hits, server.request_count(), "{name}: one paid call per request");
    }
    assert_eq!(report.budget_spent.calls, worker.request_count() + optimizer.request_count());
    let md = std::fs::read_to_string(dir.path().join("runs/two-models-20270115T080000Z/report.md")).unwrap();
    assert!(md.contains("| optimizer | `optimizer-m` |") && md.contains("| worker | `worker-m` |"), "{md}");
}

#[tokio::test]
async fn one_budget_limits_the_worker_and_the_optimiser_together() {
    // The whole run's calls, then the same run with one call fewer allowed in all.
    let dir = tempfile::tempdir().unwrap();
    let (worker, optimizer) = (worker_server().await, optimizer_server().await);
    let config = ExperimentConfig::from_toml(TWO_MODELS, "two-models.toml").unwrap();
    let full = options(dir.path(), &worker, &[("optimizer", &optimizer, "optimizer-m")]);
    ann_experiment::start(&config, &full).await.unwrap();
    let (w, o) = (worker.request_count(), optimizer.request_count());
    assert!(w >= 2 && o >= 2, "both models work: {w} + {o}");

    let dir = tempfile::tempdir().unwrap();
    let (worker, optimizer) = (worker_server().await, optimizer_server().await);
    let mut tight = config.clone();
    tight.budget.max_calls = Some(w + o - 1);
    let options = options(dir.path(), &worker, &[("optimizer", &optimizer, "optimizer-m")]);
    let err = format!("{:#}", ann_experiment::start(&tight, &options).await.unwrap_err());
    assert!(err.contains(&format!("limit {}", w + o - 1)), "{err}");
    let spent = worker.request_count() + optimizer.request_count();
    let limit = w + o - 1;
    assert!(spent <= limit, "one budget for both models: {spent}");
    assert!(optimizer.request_count() >= 1, "the optimiser spent from the same budget");
}

/// One layer of two agents: `a1` on the worker, `a2` on the profile `big`.
const TEAM: &str = r#"{
  "task_description": "Answer the multiple-choice question. End with a last line 'Answer: X'.",
  "layers": [{
    "id": "solve",
    "subtask": "choose the answer",
    "agents": [
      {"id": "a1", "role": "A careful student.", "prompt": "{input}", "temperature": 0.0},
      {"id": "a2", "role": "A bigger model.", "prompt": "{input}", "temperature": 0.0, "model": {"profile": "big", "max_tokens": 48}}
    ],
    "aggregators": ["concatenate"],
    "default_aggregator": "concatenate",
    "output_spec": "the reasoning, then a last line 'Answer: X'"
  }]
}"#;

fn team_config(dir: &Path, network: &str) -> ExperimentConfig {
    std::fs::write(dir.join("team.json"), network).unwrap();
    let text = r#"
name = "team"
[benchmark]
name = "mmlu-ml"
network = "team.json"
[model]
backend = "openai"
name = "worker-m"
max_tokens = 32
[models.big]
name = "big-m"
base_url_env = "ANN_TEST_BIG_URL"
model_env = "ANN_TEST_BIG_MODEL"
[cache]
mode = "off"
"#;
    ExperimentConfig::from_toml(text, "team.toml").unwrap()
}

#[tokio::test]
async fn one_layer_whose_agents_use_two_backends() {
    let dir = tempfile::tempdir().unwrap();
    let small = FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|_| "Answer: A".into()))
        .await
        .unwrap();
    let big = FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|_| "Answer: B".into()))
        .await
        .unwrap();
    let config = team_config(dir.path(), TEAM);
    let options = options(dir.path(), &small, &[("big", &big, "big-m")]);
    let prepared = ann_experiment::prepare(&config, &options).await.unwrap();
    let examples = ann_experiment::split_examples(prepared.benchmark.as_ref(), Split::Validation);
    let runs = prepared.evaluate(&prepared.start, &examples, None, &Default::default()).await.unwrap();

    let agent_of = |r: &RecordedRequest| {
        let s = system(r);
        ["a1", "a2"].into_iter().find(|a| s.contains(&format!("You are agent `{a}`"))).unwrap_or("none")
    };
    let n = examples.len() as u64;
    assert_eq!((small.request_count(), big.request_count()), (n, n));
    assert!(small.requests().iter().all(|r| agent_of(r) == "a1" && r.body["model"] == "worker-m"));
    assert!(big.requests().iter().all(|r| agent_of(r) == "a2" && r.body["model"] == "big-m"));
    assert!(big.requests().iter().all(|r| r.body["max_tokens"] == 48), "the agent's own token limit");
    for run in &runs {
        let calls = &run.trace.as_ref().unwrap().layers[0].calls;
        let seen: Vec<_> = calls.iter().map(|c| (c.agent.as_deref(), c.model.as_str(), c.profile.as_deref())).collect();
        assert_eq!(seen, [(Some("a1"), "worker-m", None), (Some("a2"), "big-m", Some("big"))]);
        assert!(run.output.contains("Answer: A") && run.output.contains("Answer: B"), "{}", run.output);
    }
    let costs = prepared.models.costs(&config);
    assert_eq!((costs["worker"].cost.calls, costs["big"].cost.calls), (n, n));
    assert_eq!(costs["big"].model, "big-m");
}

#[tokio::test]
async fn a_network_naming_an_unknown_profile_is_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
    let config = team_config(dir.path(), &TEAM.replace("\"profile\": \"big\"", "\"profile\": \"huge\""));
    let options = options(dir.path(), &server, &[("big", &server, "big-m")]);
    let err = format!("{:#}", ann_experiment::prepare(&config, &options).await.err().unwrap());
    for needle in ["team.json", "layer `solve`", "agent `a2`", "model profile `huge`", "known: big"] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn optimizer_and_model_profile_keys_parse_resolve_and_are_checked() {
    let config = ExperimentConfig::from_toml(TWO_MODELS, "two-models.toml").unwrap();
    let o = config.optimizer_model();
    assert_eq!((o.section.name.as_str(), o.section.base_url_env.as_str()), ("optimizer-m", "ANN_TEST_OPTIMIZER_URL"));
    assert_eq!(
        (o.temperature, o.section.max_tokens, o.endpoint_model.as_deref()),
        (0.2, Some(99), Some("optimizer-m"))
    );
    let train = config.train_config("Answer: X", config.prices());
    assert_eq!((train.optimizer.model.as_str(), train.optimizer.max_tokens), ("optimizer-m", Some(99)));
    assert_eq!(ExperimentConfig::from_toml(&config.to_toml().unwrap(), "copy").unwrap(), config, "round trip");

    // Without [optimizer] the optimiser is the worker, with `[model]`'s optimiser settings.
    let plain = ExperimentConfig::from_toml("name = \"p\"\n[benchmark]\nname = \"mmlu-ml\"\n", "p.toml").unwrap();
    assert!(!plain.to_toml().unwrap().contains("optimizer]") && !plain.to_toml().unwrap().contains("[models"));
    let o = plain.optimizer_model();
    assert_eq!((o.section.name, o.section.max_tokens), (plain.model.name.clone(), plain.model.optimizer_max_tokens));

    let profiles = format!("{TWO_MODELS}\n[models.fast]\nbackend = \"embedded\"\nname = \"smol\"\nmax_tokens = 7\n");
    let config = ExperimentConfig::from_toml(&profiles, "p.toml").unwrap();
    let fast = config.profile_model("fast").unwrap().section;
    assert_eq!((fast.backend, fast.name.as_str(), fast.max_tokens), (ann_experiment::Backend::Local, "smol", Some(7)));
    assert!(config.validation_rules("Answer: X").profiles.contains("fast"));
    // The patches of training are held to the same profiles (the format gate of every step).
    let rules = config.train_config("Answer: X", config.prices()).rules;
    assert_eq!(rules.profiles.iter().map(String::as_str).collect::<Vec<_>>(), ["fast"]);

    let check = |text: String, needles: &[&str]| {
        let err = format!("{:#}", ExperimentConfig::from_toml(&text, "bad.toml").unwrap_err());
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
    };
    check(format!("{TWO_MODELS}\n[models.fast]\ncolour = 1\n"), &["bad.toml", "unknown field `colour`"]);
    check(TWO_MODELS.replace("temperature = 0.2", "temprature = 0.2"), &["unknown field `temprature`"]);
    check(format!("{TWO_MODELS}\n[models.worker]\nmax_tokens = 1\n"), &["`models.worker`", "slug"]);
    check(format!("{TWO_MODELS}\n[models.fast]\ntemperature = 0.5\n"), &["`models.fast.temperature`"]);
    check(format!("{TWO_MODELS}\n[models.fast]\nbackend = \"local\"\n"), &["`models.fast`", "needs `name`"]);
    check(TWO_MODELS.replace("temperature = 0.2", "temperature = 3.0"), &["`optimizer.temperature`"]);
}
