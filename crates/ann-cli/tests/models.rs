//! `ann train` with the example config of a separate optimiser and two model profiles
//! (`experiments/teams.toml`), each model's endpoint read from its own environment variables.

mod support;

use std::path::PathBuf;

use ann_test_support::server::{FakeServer, FakeServerConfig, RecordedRequest};
use serde_json::Value;
use support::workspace;

/// The system message of a request.
fn system(r: &RecordedRequest) -> &str {
    r.body["messages"][0]["content"].as_str().unwrap_or("")
}

fn is_backward(r: &RecordedRequest) -> bool {
    let s = system(r);
    s.contains("loss function") || s.contains("critic of a multi-layer") || s.contains("optimiser of one layer")
}

/// Replies for every model: forward calls end with an answer line, backward calls are data.
fn reply(body: &Value) -> String {
    match body["model"].as_str() {
        Some("gpt-4o") => "<critique>Wrong choice.</critique>\n<requirement>The right choice.</requirement>".into(),
        _ => "Because.\nAnswer: B".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_with_an_optimizer_and_two_model_profiles_on_their_endpoints() {
    let cache = std::env::var_os("ANN_CACHE_DIR").map(PathBuf::from).unwrap_or(workspace().join(".cache"));
    assert!(cache.join("data/mmlu-ml.jsonl").is_file(), "run `cargo xtask fetch-data` first");
    // The standard endpoint serves the worker (here), the optimiser and profile `mini`; `b` its own.
    let standard = FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(reply)).await.unwrap();
    let b = FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(reply)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = workspace().join("experiments/teams.toml");
    let network = workspace().join("experiments/teams-network.json");
    let network_set = format!("benchmark.network={:?}", network.to_str().unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ann"))
        .args(["--home", home.path().to_str().unwrap(), "train", "--config", config.to_str().unwrap()])
        .args(["--limit", "2", "--set", "model.backend=\"openai\"", "--set", "model.name=\"worker-m\""])
        .args(["--set", &network_set])
        .env("ANN_CACHE_DIR", &cache)
        .env("ANN_OPENAI_BASE_URL", standard.url())
        .env("ANN_OPENAI_MODEL", "worker-m")
        .env("ANN_OPENAI_API_KEY", "sk-test-standard")
        .env("ANN_MODEL_B_BASE_URL", b.url())
        .env("ANN_MODEL_B_MODEL", "model-b")
        .env("ANN_MODEL_B_API_KEY", "sk-test-b")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // Each model's calls reached its endpoint under its own model id, and only those calls.
    let by_model = |server: &FakeServer, model: &str| -> Vec<RecordedRequest> {
        server.requests().into_iter().filter(|r| r.body["model"] == model).collect()
    };
    let worker = by_model(&standard, "worker-m");
    let optimizer = by_model(&standard, "gpt-4o");
    let mini = by_model(&standard, "gpt-4o-mini");
    assert_eq!(worker.len() + optimizer.len() + mini.len(), standard.requests().len());
    assert!(!worker.is_empty() && worker.iter().all(|r| !is_backward(r) && !system(r).contains("agent `a2`")));
    assert!(!optimizer.is_empty() && optimizer.iter().all(is_backward));
    assert!(!mini.is_empty() && mini.iter().all(|r| system(r).contains("You are agent `a2` of the team `solve`")));
    let b_calls = b.requests();
    assert!(!b_calls.is_empty() && b_calls.iter().all(|r| r.body["model"] == "model-b"));
    assert!(b_calls.iter().all(|r| system(r).contains("You are agent `a3` of the team `solve`")));
    assert!(b_calls.iter().all(|r| r.body["max_tokens"] == 128), "a3's own token limit");
    assert!(b_calls.iter().all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer sk-test-b")));

    // The report costs each model; one budget counted them all.
    let runs: Vec<_> = std::fs::read_dir(home.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(runs[0].join("report.json")).unwrap()).unwrap();
    let models = report["models"].as_object().unwrap();
    let names: Vec<&str> = models.keys().map(String::as_str).collect();
    assert_eq!(names, ["b", "mini", "optimizer", "worker"]);
    assert_eq!(models["b"]["model"], "model-b");
    let paid = |name: &str| {
        let c = &models[name]["cost"];
        c["calls"].as_u64().unwrap() - c["cache_hits"].as_u64().unwrap()
    };
    assert_eq!((paid("worker"), paid("optimizer")), (worker.len() as u64, optimizer.len() as u64));
    assert_eq!((paid("mini"), paid("b")), (mini.len() as u64, b_calls.len() as u64));
    assert_eq!(report["budget_spent"]["calls"].as_u64().unwrap(), (standard.requests().len() + b_calls.len()) as u64);
    // The run keeps the names of the variables, never a key.
    let kept = std::fs::read_to_string(runs[0].join("config.toml")).unwrap();
    assert!(kept.contains("[optimizer]") && kept.contains("[models.b]") && kept.contains("ANN_MODEL_B_API_KEY"));
    assert!(!kept.contains("sk-test"), "{kept}");
}
