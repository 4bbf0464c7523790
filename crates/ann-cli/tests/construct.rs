//! `ann construct`, `ann train --network` and the user-data benchmarks (`trivia-cw`, `dabench`)
//! as subprocesses against the fake OpenAI-compatible server, on the project's own fixtures.

use std::path::Path;

mod support;

use ann_experiment::reexports::Network;
use ann_test_support::server::{FakeServer, FakeServerConfig};
use serde_json::Value;
use support::{stderr, workspace};

/// A valid network for Trivia CW, as a model would answer the decomposition call.
const TRIVIA_NETWORK: &str = r#"{"version": 1, "task_description": "t", "layers": [{"id": "recall",
 "subtask": "Answer each question.", "agents": [{"id": "a1", "role": "A quiz champion.",
 "prompt": "{task}\n\n{input}\n\nAnswer every question by name.", "temperature": 0.0}],
 "aggregators": ["single"], "default_aggregator": "single", "routing_hint": "", "output_spec": "The answers."},
 {"id": "story", "subtask": "Write the story.", "agents": [{"id": "a1", "role": "A storyteller.",
 "prompt": "{task}\n\n{input}\n\nWrite the story.", "temperature": 0.0}], "aggregators": ["single"],
 "default_aggregator": "single", "routing_hint": "",
 "output_spec": "one short coherent story that names the answer to every question"}]}"#;

fn is_construction(body: &Value) -> bool {
    body["messages"][0]["content"].as_str().is_some_and(|m| m.starts_with("You design multi-agent"))
}

async fn fake_server() -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|body| {
        if is_construction(body) {
            TRIVIA_NETWORK.to_string()
        } else {
            "William Shakespeare sailed the Pacific to Mars. @mean_price[4.38]".to_string()
        }
    }))
    .await
    .unwrap()
}

/// `ann` against `url`, without the user-data folders of the developer's environment.
fn ann(home: &Path, url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = support::ann_at(home, url, args);
    command.env_remove("ANN_TRIVIA_CW_PATH").env_remove("ANN_DABENCH_DIR");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn construct_writes_a_network_that_train_starts_from() {
    let server = fake_server().await;
    let home = tempfile::tempdir().unwrap();
    let trivia = workspace().join("datasets/trivia-cw/trivia-cw-sample.jsonl");

    // Without the data: the error names the variable and the key.
    let out = ann(home.path(), &server.url(), &["construct", "--benchmark", "trivia-cw", "--out", "net.json"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ANN_TRIVIA_CW_PATH") && stderr(&out).contains("benchmark.data_path"));

    let out = ann(home.path(), &server.url(), &["construct", "--benchmark", "trivia-cw", "--out", "net.json"])
        .env("ANN_TRIVIA_CW_PATH", &trivia)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2-layer network for trivia-cw"), "{stdout}");
    let net: Value = serde_json::from_str(&std::fs::read_to_string(home.path().join("net.json")).unwrap()).unwrap();
    assert_eq!(net["layers"][1]["id"], "story");
    assert_eq!(net["task_description"], ann_bench_creative_writing_task());
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("net.construction.json")).unwrap()).unwrap();
    assert_eq!((record["attempts"].as_u64(), record["fallback_used"].as_bool()), (Some(1), Some(false)));
    let calls = server.requests().into_iter().filter(|r| is_construction(&r.body)).count();
    assert_eq!(calls, 1);

    // `ann train --network` starts from the written file.
    let config = home.path().join("exp.toml");
    std::fs::write(
        &config,
        "name = \"built\"\n[benchmark]\nname = \"trivia-cw\"\ntrain = 2\nvalidation = 1\ntest = 1\n\
         [cache]\nmode = \"off\"\n[train]\nepochs = 1\nbatch_size = 2\n[report]\nbootstrap_resamples = 100\n",
    )
    .unwrap();
    let out = ann(home.path(), &server.url(), &["train", "--openai", "--config", "exp.toml", "--network", "net.json"])
        .env("ANN_TRIVIA_CW_PATH", &trivia)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<_> = std::fs::read_dir(home.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    let initial: Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("network-initial.json")).unwrap()).unwrap();
    assert_eq!(initial, net);
    // The user's data path went into the run's config, so `ann resume` finds it without the variable.
    let kept = std::fs::read_to_string(runs[0].join("config.toml")).unwrap();
    assert!(kept.contains("trivia-cw-sample.jsonl"), "{kept}");

    // `ann adapt` with that run as the library: the provenance says which layers were reused.
    let run = runs[0].to_str().unwrap();
    let args = ["adapt", "--from", run, "--benchmark", "trivia-cw", "--out", "adapted.json"];
    let out = ann(home.path(), &server.url(), &args).env("ANN_TRIVIA_CW_PATH", &trivia).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The server's replies hold no usable patch, so the trained network is the constructed one.
    let trained = Network::load(&runs[0].join("network-trained.json")).unwrap();
    assert_eq!(trained, Network::from_json(&initial.to_string()).unwrap());
    assert!(stdout.contains("layer recall: identical from") && stdout.contains("layer story: identical"), "{stdout}");
    let provenance: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("adapted.provenance.json")).unwrap()).unwrap();
    assert_eq!(provenance["from"][0]["run_dir"].as_str(), Some(run));
    let construction = server.requests().into_iter().rfind(|r| is_construction(&r.body)).unwrap();
    assert!(construction.body["messages"][1]["content"].as_str().unwrap().contains("Library network 1"));

    // Specialisation by a metadata field: one network per topic of the training split, a router
    // in front (the server's replies name no topic: the single network answers), a report.
    let args = ["adapt", "--from", run, "--benchmark", "trivia-cw", "--specialise-by", "topic"];
    let out = ann(home.path(), &server.url(), &args)
        .args(["--out", "special", "--config", "exp.toml"])
        .env("ANN_TRIVIA_CW_PATH", &trivia)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 networks by topic") && stdout.contains("0 routed, 1 to the single network"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("special/specialise.json")).unwrap()).unwrap();
    assert_eq!(report["field"], "topic");
    assert!(home.path().join("special/router.json").is_file());
    let out = ann(home.path(), &server.url(), &["adapt", "--from", run, "--specialise-by", "x", "--out", "y"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success() && stderr(&out).contains("--benchmark"), "{}", stderr(&out));

    // A target is required, and only one.
    let out = ann(home.path(), &server.url(), &["adapt", "--from", run, "--out", "x.json"]).output().await.unwrap();
    assert!(!out.status.success() && stderr(&out).contains("--benchmark"), "{}", stderr(&out));
    server.shutdown().await;
}

/// The Trivia CW task description, as the constructed network must state it.
fn ann_bench_creative_writing_task() -> &'static str {
    "Write a short and coherent story about the given topic that incorporates the answers to all of the given \
     trivia questions. Do not list the answers separately: weave each one into the story by name."
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_reaches_dabench_with_the_users_folder() {
    let server = fake_server().await;
    let home = tempfile::tempdir().unwrap();
    let args = ["eval", "--benchmark", "dabench", "--baseline", "direct"];
    let out = ann(home.path(), &server.url(), &args).output().await.unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ANN_DABENCH_DIR"), "{}", stderr(&out));

    let out = ann(home.path(), &server.url(), &args)
        .env("ANN_DABENCH_DIR", workspace().join("datasets/dabench"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["benchmark"], "dabench");
    assert_eq!(outcome["summary"]["n"], 5, "all five fixture questions fall in the test split");
    server.shutdown().await;
}
