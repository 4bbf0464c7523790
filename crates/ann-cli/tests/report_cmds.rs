//! `ann report`, `ann blame` and `ann diff` as subprocesses, on a run `ann train` made against the
//! fake OpenAI-compatible server; its `manifest.json` hashes the data file it read.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{stderr, stdout};

fn ann(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ann")).args(args).env_remove("ANN_OPENAI_BASE_URL").output().unwrap()
}

/// Train the demo network on two MMLU-ML examples per split against the fake server.
async fn train(home: &Path) -> PathBuf {
    use ann_test_support::server::{FakeServer, FakeServerConfig};
    let data = support::fetched_data();
    let server =
        FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())).await.unwrap();
    let config = support::mmlu_experiment(home, "cli", (2, 2, 2), 1, "");
    let out = support::ann_at(home, &server.url(), &["train", "--openai", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    server.shutdown().await;
    let runs: Vec<_> = std::fs::read_dir(home.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(stdout(&out).contains(&format!("Report: {}", runs[0].join("report.html").display())), "{}", stdout(&out));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("manifest.json")).unwrap()).unwrap();
    let sum = Command::new("sha256sum").arg(data.join("mmlu-ml.jsonl")).output().unwrap();
    let hashed = manifest["data_files"][0]["sha256"].as_str().unwrap();
    assert!(stdout(&sum).starts_with(hashed), "the manifest hashes the data file read: {hashed} vs {}", stdout(&sum));
    assert_eq!(manifest["models"][0]["name"], "fake-model");
    runs[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_blame_and_diff_read_a_run_directory() {
    let home = tempfile::tempdir().unwrap();
    let run_dir = train(home.path()).await;
    let dir = run_dir.to_str().unwrap();

    // `ann report` rebuilds the page (here after it was deleted) and prints its path.
    std::fs::remove_file(run_dir.join("report.html")).unwrap();
    let out = ann(&["report", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), run_dir.join("report.html").to_str().unwrap());
    let page = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(page.contains("Validation score per step") && page.matches("<svg").count() >= 6);

    // `ann blame`: every prompt line of the (unchanged) network comes from the starting network.
    let out = ann(&["blame", dir, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let blames: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let agents = blames.as_array().unwrap();
    assert!(!agents.is_empty());
    assert!(agents.iter().flat_map(|a| a["lines"].as_array().unwrap()).all(|l| l["origin"].is_null()));
    let layer = agents[0]["layer"].as_str().unwrap();
    let out = ann(&["blame", dir, "--layer", layer]);
    assert!(out.status.success() && stdout(&out).starts_with(&format!("== layer {layer}, agent")), "{}", stdout(&out));
    let out = ann(&["blame", dir, "--layer", "no-such-layer"]);
    assert!(!out.status.success() && stderr(&out).contains("no layer no-such-layer"), "{}", stderr(&out));

    // `ann diff`: a run directory against its own starting network, then against an edited copy.
    let initial = run_dir.join("network-initial.json");
    let out = ann(&["diff", initial.to_str().unwrap(), dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "the networks are the same\n");
    let mut edited: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&initial).unwrap()).unwrap();
    let prompt = edited["layers"][0]["agents"][0]["prompt"].as_str().unwrap().to_string();
    edited["layers"][0]["agents"][0]["prompt"] = format!("{prompt}\nCheck every choice.").into();
    let copy = home.path().join("edited.json");
    std::fs::write(&copy, edited.to_string()).unwrap();
    let out = ann(&["diff", dir, copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("prompt") && stdout(&out).contains("Check every choice.+}"), "{}", stdout(&out));
    let out = ann(&["diff", dir, copy.to_str().unwrap(), "--json"]);
    let changes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(changes[0]["field"], "prompt");
    let out = ann(&["diff", dir, home.path().join("absent.json").to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("absent.json"), "{}", stderr(&out));
}
