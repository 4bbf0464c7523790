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

/// The fake endpoint's one answer (a fixed letter) for every call.
fn fake_server_config() -> FakeServerConfig {
    FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())
}

/// A reproduction's folder (the one `reproduce-*` in `runs`) and its `table.json`.
fn reproduction_in(runs: &Path) -> (PathBuf, serde_json::Value) {
    let dir = only_entry(runs, "reproduce-");
    let table = serde_json::from_str(&std::fs::read_to_string(dir.join("table.json")).unwrap()).unwrap();
    (dir, table)
}

/// A temporary home for a reproduction: the synthetic MMLU-ML file in its cache folder.
struct Home {
    tmp: tempfile::TempDir,
    ann: PathBuf,
}

impl Home {
    async fn new() -> Self {
        let ann = tokio::task::spawn_blocking(ann_binary).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("cache/data")).unwrap();
        std::fs::write(tmp.path().join("cache/data/mmlu-ml.jsonl"), synthetic_mmlu()).unwrap();
        Self { tmp, ann }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `cargo xtask reproduce ARGS --limit 2 --no-fetch` into `runs` (under this home), with the
    /// endpoint variables of `endpoint` (none: unset).
    async fn reproduce(&self, args: &[&str], runs: &str, endpoint: Option<(&str, &str)>) -> Output {
        let mut all: Vec<String> = ["reproduce"].iter().chain(args).map(|s| s.to_string()).collect();
        let runs = self.path(runs);
        for a in
            ["--limit", "2", "--no-fetch", "--ann", self.ann.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]
        {
            all.push(a.to_string());
        }
        let mut env = vec![("ANN_CACHE_DIR".to_string(), self.path("cache").to_str().unwrap().to_string())];
        if let Some((url, secret)) = endpoint {
            env.push(("ANN_OPENAI_BASE_URL".into(), url.into()));
            env.push(("ANN_OPENAI_MODEL".into(), "gpt-4o-mini".into()));
            env.push(("ANN_OPENAI_API_KEY".into(), secret.into()));
        }
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            xtask(&args, &env, &["ANN_LOCAL_MODEL"])
        })
        .await
        .unwrap()
    }
}

fn check(out: &Output) {
    assert!(out.status.success(), "stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
}

/// The whole path on the fake endpoint: `ann train` runs the MMLU-ML paper experiment and one of its
/// ablations (capped at two examples per split), recording every call; the table has a row per
/// method and for the ablation, with intervals, n and cost. Replayed from its cassette with the
/// endpoint gone, the reproduction gives the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reproduce_runs_an_experiment_on_a_fake_endpoint_and_writes_the_table() {
    let home = Home::new().await;
    let server = FakeServer::start(fake_server_config()).await.unwrap();
    let url = server.url();
    let secret = "sk-reproduce-test-secret";
    let cassette = home.path("calls.jsonl.gz");
    let selection = ["--only", "paper-mmlu-ml", "--only", "mmlu-ml-no-momentum", "--ablations"];
    let record: Vec<&str> =
        selection.iter().copied().chain(["--mode", "record", "--cassette", cassette.to_str().unwrap()]).collect();
    let out = home.reproduce(&record, "runs", Some((&url, secret))).await;
    check(&out);
    let requests = server.request_count();
    assert!(requests > 0);
    server.shutdown().await;

    let (reproduction, table) = reproduction_in(&home.path("runs"));
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
    let recorded = std::fs::read(&cassette).unwrap();
    assert!(!String::from_utf8_lossy(&recorded).contains(secret));

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
    let html = std::fs::read_to_string(reproduction.join("table.html")).unwrap();
    assert!(html.contains("<td>ANN (no momentum)</td>"), "{html}");

    // Replayed: no endpoint variable, the recorded endpoint closed, the same rows.
    let replay: Vec<&str> =
        selection.iter().copied().chain(["--mode", "replay", "--cassette", cassette.to_str().unwrap()]).collect();
    let out = home.reproduce(&replay, "replayed", None).await;
    check(&out);
    let (_, again) = reproduction_in(&home.path("replayed"));
    assert_eq!(again["rows"], table["rows"]);
    assert_eq!(again["mode"], "replay");
    assert!(text(&out.stdout).contains("no call was made"), "{}", text(&out.stdout));
}

/// The committed cassette (`xtask/tests/data/`, recorded on the fake server) replays to the
/// committed table rows with no endpoint at all. A change of the prompts or of the requests'
/// shape changes the calls: re-record both files with
/// `ANN_RECORD_FIXTURE=1 cargo test -p xtask --test reproduce committed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_cassette_replays_to_the_committed_table() {
    let data = root().join("xtask/tests/data");
    let (cassette, rows) = (data.join("paper-mmlu-ml.jsonl.gz"), data.join("paper-mmlu-ml.rows.json"));
    let home = Home::new().await;
    let selection = ["--only", "paper-mmlu-ml"];
    if std::env::var_os("ANN_RECORD_FIXTURE").is_some() {
        let server = FakeServer::start(fake_server_config()).await.unwrap();
        let record: Vec<&str> =
            selection.iter().copied().chain(["--mode", "record", "--cassette", cassette.to_str().unwrap()]).collect();
        check(&home.reproduce(&record, "recorded", Some((&server.url(), "sk-fixture"))).await);
        server.shutdown().await;
        let (_, table) = reproduction_in(&home.path("recorded"));
        std::fs::write(&rows, serde_json::to_string_pretty(&table["rows"]).unwrap() + "\n").unwrap();
    }
    let replay: Vec<&str> =
        selection.iter().copied().chain(["--mode", "replay", "--cassette", cassette.to_str().unwrap()]).collect();
    let out = home.reproduce(&replay, "replayed", None).await;
    check(&out);
    let (_, table) = reproduction_in(&home.path("replayed"));
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rows).unwrap()).unwrap();
    assert_eq!(table["rows"], expected, "the replayed table differs from the committed one");
}
