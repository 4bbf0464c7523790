//! `cargo xtask reproduce` end to end, without the network: the fake OpenAI-compatible server on
//! 127.0.0.1 stands in for the endpoint, a synthetic MMLU-ML file for the fetched data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ann_test_support::server::{FakeServer, FakeServerConfig};

#[path = "../src/scrub.rs"]
mod scrub;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The debug `ann` binary of this workspace build. `cargo build --workspace --tests` selects the
/// packages and dev-dependencies `cargo test --workspace` (and `cargo xtask test`) does, so its
/// features match and, run from inside such a test run, it finds everything fresh (under `cargo
/// test -p xtask` alone it builds what is missing, once). The variables cargo sets for this test's
/// package are left out, as `cargo xtask` leaves them out of its cargo commands: a build script
/// watching one (ring watches `CARGO_MANIFEST_DIR`) would rebuild half the workspace.
fn ann_binary() -> PathBuf {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    scrub::scrub_package_env(&mut command);
    let out = command
        .current_dir(root())
        .args(["build", "--quiet", "--workspace", "--tests", "--message-format=json-render-diagnostics"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo build --workspace --tests: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "ann" && m["profile"]["test"] == false)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the ann executable")
}

/// 112 synthetic questions in the format of `mmlu-ml.jsonl` (the fetched file has 112), answers
/// cycling through A-D.
fn synthetic_mmlu() -> String {
    (0..112)
        .map(|i| {
            let row = serde_json::json!({
                "question": format!("Synthetic question {i}: which choice is right?"),
                "type": "machine_learning",
                "choices": ["one", "two", "three", "four"],
                "answer": i % 4,
            });
            format!("{row}\n")
        })
        .collect()
}

fn xtask(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(args).current_dir(root());
    for name in ["ANN_OPENAI_BASE_URL", "ANN_OPENAI_MODEL", "ANN_OPENAI_API_KEY", "OPENAI_API_KEY", "ANN_HOME"] {
        command.env_remove(name);
    }
    for name in remove {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn only_entry(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "one {prefix}* in {}: {found:?}", dir.display());
    found[0].clone()
}

#[test]
fn without_an_endpoint_it_refuses_and_says_how_to_point_it_at_one() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = xtask(&["reproduce", "--only", "mmlu-ml", "--no-fetch", "--runs-dir", runs.to_str().unwrap()], &[], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for needle in ["ANN_OPENAI_BASE_URL", "ANN_OPENAI_MODEL=gpt-4o-mini", "--dry-run", "--local"] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert!(!runs.exists(), "nothing runs without an endpoint");
}

#[test]
fn a_dry_run_shows_each_experiment_and_its_budget() {
    let out = xtask(&["reproduce", "--dry-run", "--limit", "3", "--set", "train.epochs=2"], &[], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for needle in [
        "paper-creative-writing",
        "paper-humaneval",
        "paper-math",
        "paper-mmlu-ml",
        "3 train / 3 validation / 3 test; up to 2 epochs",
        "at most $40.00, 120000 calls",
        "paper: ANN 82.5% with gpt-4o-mini",
        "--limit 3 --set 'train.epochs=2'",
        "At most $90.00 in all",
    ] {
        assert!(plan.contains(needle), "{needle:?} not in:\n{plan}");
    }
    let err = text(&xtask(&["reproduce", "--dry-run", "--only", "gsm8k"], &[], &[]).stderr);
    assert!(err.contains("no experiment `gsm8k`") && err.contains("mmlu-ml"), "{err}");
}

/// The whole path on the fake endpoint: `ann train` runs the MMLU-ML paper experiment and one of its
/// ablations (capped at two examples per split), and the table has a row per method and for the
/// ablation, with intervals, n and cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reproduce_runs_an_experiment_on_a_fake_endpoint_and_writes_the_table() {
    let ann = tokio::task::spawn_blocking(ann_binary).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("data")).unwrap();
    std::fs::write(cache.join("data/mmlu-ml.jsonl"), synthetic_mmlu()).unwrap();
    let runs = tmp.path().join("runs");
    let server =
        FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())).await.unwrap();
    let url = server.url();
    let (runs_arg, ann_arg, cache_env) =
        (runs.to_str().unwrap().to_string(), ann.to_str().unwrap().to_string(), cache.to_str().unwrap().to_string());
    let secret = "sk-reproduce-test-secret";
    let out = tokio::task::spawn_blocking(move || {
        xtask(
            &[
                "reproduce",
                "--only",
                "paper-mmlu-ml",
                "--only",
                "mmlu-ml-no-momentum",
                "--ablations",
                "--limit",
                "2",
                "--no-fetch",
                "--ann",
                &ann_arg,
                "--runs-dir",
                &runs_arg,
            ],
            &[
                ("ANN_OPENAI_BASE_URL", url.as_str()),
                ("ANN_OPENAI_MODEL", "gpt-4o-mini"),
                ("ANN_OPENAI_API_KEY", secret),
                ("ANN_CACHE_DIR", cache_env.as_str()),
            ],
            &["ANN_LOCAL_MODEL"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    assert!(server.request_count() > 0);
    server.shutdown().await;

    let reproduction = only_entry(&runs, "reproduce-");
    let run_dir = only_entry(&reproduction, "paper-mmlu-ml-2");
    let ablated = only_entry(&reproduction, "paper-mmlu-ml-no-momentum-2");
    let kept = std::fs::read_to_string(ablated.join("config.toml")).unwrap();
    assert!(kept.contains("no_momentum = true") && !kept.contains("baselines"), "{kept}");
    for file in ["config.toml", "report.json", "report.md", "network-trained.json", "baselines/debate.json"] {
        assert!(run_dir.join(file).is_file(), "{file} missing in {}", run_dir.display());
    }
    let kept = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(kept.contains("test = 2") && kept.contains("backend = \"openai\""), "{kept}");
    assert!(!kept.contains(secret));

    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reproduction.join("table.json")).unwrap()).unwrap();
    assert_eq!((table["backend"].as_str(), table["limit"].as_u64()), (Some("openai"), Some(2)));
    let rows = table["rows"].as_array().unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["direct", "cot", "self_consistency", "debate", "start", "ANN (trained)", "ANN (no momentum)"]);
    for row in rows {
        assert_eq!((row["benchmark"].as_str(), row["model"].as_str()), (Some("mmlu-ml"), Some("gpt-4o-mini")));
        assert_eq!(row["test"]["n"], 2, "{row}");
        assert!(row["test"]["ci_low"].as_f64() <= row["test"]["mean"].as_f64(), "{row}");
        assert!(row["cost"]["calls"].as_u64().unwrap() > 0 && row["cost"]["dollars"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["paper"].is_null(), "MMLU-ML has no paper number: {row}");
    }
    assert_eq!(rows[2]["cost"]["calls"], 10, "self-consistency: 5 samples x 2 questions");
    assert!(rows[5]["training_cost"]["calls"].as_u64().unwrap() > 0);
    assert!(table["experiments"].as_array().unwrap().iter().all(|e| e["status"] == "finished"), "{table}");

    let md = std::fs::read_to_string(reproduction.join("table.md")).unwrap();
    assert!(md.contains("| benchmark | method | test score % [95% CI] | n |"), "{md}");
    assert!(md.contains("| mmlu-ml | self_consistency |") && md.contains("| mmlu-ml | ANN (trained) |"), "{md}");
    assert!(md.contains("| mmlu-ml | ANN (no momentum) |"), "{md}");
    assert!(md.contains("recovered from public summaries") && md.contains("no paper number"), "{md}");
    assert!(text(&out.stdout).contains("| mmlu-ml | debate |"), "the table is printed too");
}
