//! The `ann` binary as a subprocess: clear errors for a missing model, a bad config, a non-run folder.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::{ann_at, mmlu_experiment, stderr, synthetic_mmlu};

fn ann(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ann"))
        .args(["--home", home.to_str().unwrap()])
        .args(args)
        .env("ANN_CACHE_DIR", home.join("empty-cache"))
        .env_remove("ANN_OPENAI_BASE_URL")
        .env_remove("ANN_LOCAL_MODEL")
        .output()
        .unwrap()
}

#[test]
fn demo_without_the_model_says_how_to_fetch_it() {
    let home = tempfile::tempdir().unwrap();
    let out = ann(home.path(), &["demo"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cargo xtask fetch-model"), "{err}");
    assert!(err.contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{err}");
    assert!(!home.path().join("runs").exists(), "a setup error leaves no run directory");
}

#[test]
fn a_bad_config_key_is_named() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("bad.toml");
    std::fs::write(&config, "name = \"x\"\n[benchmark]\nname = \"mmlu-ml\"\n[train]\nepoch = 3\n").unwrap();
    let out = ann(home.path(), &["train", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown field `epoch`") && err.contains("bad.toml"), "{err}");
}

#[test]
fn resume_of_a_folder_that_is_no_run_fails_clearly() {
    let home = tempfile::tempdir().unwrap();
    let out = ann(home.path(), &["resume", home.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("config.toml"), "{err}");
}

/// `ann train --openai` against a fake OpenAI-compatible server on 127.0.0.1: the full path from
/// the environment to a finished run directory, without the key in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_on_an_openai_compatible_endpoint_writes_a_report() {
    use ann_test_support::server::{FakeServer, FakeServerConfig};

    let server =
        FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = mmlu_experiment(home.path(), "fake", (2, 2, 4), 1, "");
    let secret = "sk-cli-test-secret-42";
    let out = ann_at(home.path(), &server.url(), &["train", "--openai", "--config", config.to_str().unwrap()])
        .env("ANN_OPENAI_API_KEY", secret)
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Logs to a pipe or a file are plain text: progress lines were logged, without colour codes.
    assert!(stderr(&out).contains("INFO") && !stderr(&out).contains('\x1b'), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# Run `fake`: mmlu-ml") && stdout.contains("| test |"), "{stdout}");
    assert!(server.request_count() > 0);

    let runs: Vec<_> = std::fs::read_dir(home.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("report.json")).unwrap()).unwrap();
    assert_eq!(report["model"], "fake-model");
    assert_eq!(report["test"]["initial"]["n"], 4);
    // The effective config names the backend and the variables, never the key.
    let kept = std::fs::read_to_string(runs[0].join("config.toml")).unwrap();
    assert!(kept.contains("backend = \"openai\"") && kept.contains("ANN_OPENAI_API_KEY"), "{kept}");
    for entry in std::fs::read_dir(&runs[0]).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert!(!std::fs::read_to_string(&path).unwrap_or_default().contains(secret), "{}", path.display());
        }
    }
    server.shutdown().await;
}

/// `ann eval --baseline` against a fake OpenAI-compatible server: the baseline's network runs with
/// the config's data, cache and budget, and its forward cost is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_of_a_baseline_on_an_openai_compatible_endpoint() {
    use ann_test_support::server::{FakeServer, FakeServerConfig};

    let server =
        FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("data")).unwrap();
    std::fs::write(home.path().join("data/mmlu-ml.jsonl"), synthetic_mmlu(112)).unwrap();
    let config = home.path().join("exp.toml");
    std::fs::write(
        &config,
        "name = \"eval\"\n[benchmark]\ndata_dir = \"data\"\n[cache]\npath = \"responses.sqlite\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let args = ["eval", "--benchmark", "mmlu-ml", "--baseline", "self_consistency", "--limit", "3", "--config", config];
    let out = ann_at(home.path(), &server.url(), &args)
        .env("ANN_OPENAI_MODEL", "gpt-4o-mini")
        .env_remove("ANN_CACHE_DIR")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["baseline"], "self_consistency");
    assert_eq!((outcome["summary"]["n"].as_u64(), outcome["summary"]["mean"].as_f64()), (Some(3), Some(1.0)));
    assert_eq!(outcome["forward_cost"]["calls"], 15, "5 samples per question");
    assert!(outcome["forward_cost"]["dollars"].as_f64().unwrap() > 0.0, "gpt-4o-mini is priced");
    assert_eq!(server.request_count(), 15, "distinct sample indices: no sample answered from another's cache entry");
    server.shutdown().await;

    let bad = ann(home.path(), &["eval", "--benchmark", "mmlu-ml", "--baseline", "tot"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown baseline `tot`") && stderr(&bad).contains("self_consistency"));
    let both = ann(home.path(), &["eval", "--benchmark", "mmlu-ml", "--baseline", "cot", "--network", "n.json"]);
    assert!(!both.status.success() && stderr(&both).contains("cannot be used with"), "{}", stderr(&both));
    let neither = ann(home.path(), &["eval", "--benchmark", "mmlu-ml"]);
    assert!(!neither.status.success() && stderr(&neither).contains("--network"), "{}", stderr(&neither));
}

/// `ann eval` under `on_infrastructure_failure = "exclude"`: an example whose call the endpoint
/// refuses (HTTP 400, not retried) is left out with a visible count, never scored 0; under the
/// default the same failure is an error (exit non-zero), never a report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_excludes_an_example_whose_call_failed_and_counts_it() {
    use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("data")).unwrap();
    std::fs::write(home.path().join("data/mmlu-ml.jsonl"), synthetic_mmlu(112)).unwrap();
    let eval = |policy: &'static str, url: String| {
        let config = home.path().join(format!("{policy}.toml"));
        std::fs::write(
            &config,
            format!(
                "name = \"eval\"\n[benchmark]\ndata_dir = \"data\"\n[cache]\npath = \"{policy}.sqlite\"\n\
                 [forward]\non_infrastructure_failure = \"{policy}\"\n"
            ),
        )
        .unwrap();
        let config = config.to_str().unwrap();
        let args = ["eval", "--benchmark", "mmlu-ml", "--baseline", "direct", "--limit", "3", "--config", config];
        ann_at(home.path(), &url, &args).env("ANN_OPENAI_MODEL", "gpt-4o-mini").env_remove("ANN_CACHE_DIR").output()
    };
    let faulty =
        || FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into()).with_script([Fault::Status(400)]);

    let server = FakeServer::start(faulty()).await.unwrap();
    let out = eval("exclude", server.url()).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["excluded"], 1, "{outcome}");
    assert_eq!((outcome["summary"]["n"].as_u64(), outcome["summary"]["mean"].as_f64()), (Some(2), Some(1.0)));
    server.shutdown().await;

    let server = FakeServer::start(faulty()).await.unwrap();
    let out = eval("stop", server.url()).await.unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr(&out).contains("HTTP 400 from"), "{}", stderr(&out));
    server.shutdown().await;
}

/// `ann train` against a closed port stops at the first infrastructure failure with a message
/// naming the endpoint and the failure and the `ann resume` hint, exit non-zero and no report of
/// zeros; once an endpoint answers on that port, `ann resume` finishes the run, paying as many
/// calls as an uninterrupted run does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_against_a_closed_port_stops_early_and_resume_finishes_the_run() {
    use ann_test_support::server::{FakeServer, FakeServerConfig};

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let write_config = |home: &std::path::Path| mmlu_experiment(home, "closed", (2, 2, 2), 1, "");
    let ann = |home: &std::path::Path, url: &str, args: &[&str]| ann_at(home, url, args).output();
    let reply = |_: &serde_json::Value| "Reasoning.\nAnswer: B".to_string();

    let home = tempfile::tempdir().unwrap();
    let config = write_config(home.path());
    let started = std::time::Instant::now();
    let out = ann(home.path(), &url, &["train", "--openai", "--config", config.to_str().unwrap()]).await.unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "stopped early: {:?}", started.elapsed());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "the endpoint is named: {err}");
    assert!(err.to_lowercase().contains("connection refused"), "the failure is named: {err}");
    assert!(err.contains("ann resume"), "{err}");
    let runs: Vec<_> = std::fs::read_dir(home.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].join("report.json").exists(), "no report of zeros");
    assert!(!runs[0].join("evaluations").exists(), "no evaluation of zeros");

    // The uninterrupted run, for its call count.
    let whole_server = FakeServer::start(FakeServerConfig::default().with_reply(reply)).await.unwrap();
    let whole = tempfile::tempdir().unwrap();
    let whole_config = write_config(whole.path());
    let out =
        ann(whole.path(), &whole_server.url(), &["train", "--openai", "--config", whole_config.to_str().unwrap()])
            .await
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // The endpoint is back on the port: the run resumes and finishes.
    let server =
        FakeServer::start(FakeServerConfig { port, ..FakeServerConfig::default().with_reply(reply) }).await.unwrap();
    let out = ann(home.path(), &url, &["resume", runs[0].to_str().unwrap()]).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(runs[0].join("report.json").is_file());
    assert_eq!(server.request_count(), whole_server.request_count(), "no call paid twice");
    server.shutdown().await;
    whole_server.shutdown().await;
}

/// Ctrl-C (SIGINT) during training: the calls in flight finish, no new one starts, `ann` exits with
/// 130 and the `ann resume` hint, and the resumed run pays for no call twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_at_the_last_checkpoint_and_resume_pays_no_call_twice() {
    use ann_test_support::server::{FakeServer, FakeServerConfig};

    let write_config = |home: &std::path::Path| mmlu_experiment(home, "sigint", (6, 2, 2), 3, "");
    let ann = ann_at;
    // Each answer takes a while, so that the interrupt lands while calls are in flight.
    let server_config = || {
        FakeServerConfig::default()
            .with_reply(|_| "Reasoning.\nAnswer: C".into())
            .with_latency(Duration::from_millis(150))
    };

    let whole_server = FakeServer::start(server_config()).await.unwrap();
    let whole = tempfile::tempdir().unwrap();
    let config = write_config(whole.path());
    let out = ann(whole.path(), &whole_server.url(), &["train", "--openai", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let server = FakeServer::start(server_config()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = write_config(home.path());
    let child =
        ann(home.path(), &server.url(), &["train", "--openai", "--config", config.to_str().unwrap()]).spawn().unwrap();
    // Interrupt once training has a checkpoint.
    let started = std::time::Instant::now();
    let run_dir = loop {
        let found = std::fs::read_dir(home.path().join("runs"))
            .ok()
            .and_then(|mut runs| runs.next())
            .map(|e| e.unwrap().path())
            .filter(|dir| dir.join("checkpoint.json").is_file());
        if let Some(dir) = found {
            break dir;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().await.unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted") && err.contains("ann resume"), "{err}");
    assert!(!run_dir.join("report.json").exists());
    // The checkpoint stays readable, and `ann runs` shows the run as interrupted.
    let checkpoint = run_dir.join("checkpoint.json");
    let out =
        ann(home.path(), &server.url(), &["inspect", "--json", checkpoint.to_str().unwrap()]).output().await.unwrap();
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["kind"], "checkpoint", "{inspected}");
    let status = |out: &Output| {
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows["runs"][0]["status"].as_str().unwrap().to_string()
    };
    let out = ann(home.path(), &server.url(), &["runs", "--json"]).output().await.unwrap();
    assert_eq!(status(&out), "interrupted");

    let out = ann(home.path(), &server.url(), &["resume", run_dir.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run_dir.join("report.json").is_file());
    let out = ann(home.path(), &server.url(), &["runs", "--json"]).output().await.unwrap();
    assert_eq!(status(&out), "finished");
    assert_eq!(server.request_count(), whole_server.request_count(), "no call paid twice");
    server.shutdown().await;
    whole_server.shutdown().await;
}
