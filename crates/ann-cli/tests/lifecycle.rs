//! The lifecycle commands as a user runs them, as subprocesses against the fake OpenAI-compatible
//! server: `ann run` then `ann runs`, `ann inspect` (network, checkpoint, trace), `--json` output
//! parsed, the documented exit codes, completions, and progress output without colour codes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use ann_test_support::server::{FakeServer, FakeServerConfig};
use support::{stderr, stdout, synthetic_mmlu, workspace};

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

/// An experiment on synthetic data in `home` (the demo's network, a cache in the home, one epoch
/// of batches of 2), with `extra` TOML appended; returns the config's path.
fn experiment(home: &Path, name: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::write(home.join("data/mmlu-ml.jsonl"), synthetic_mmlu(112)).unwrap();
    let config = home.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\n[benchmark]\nname = \"mmlu-ml\"\ntrain = 2\nvalidation = 2\ntest = 3\n\
             data_dir = \"data\"\nnetwork = {:?}\n[cache]\npath = \"responses.sqlite\"\n[train]\nepochs = 1\n\
             batch_size = 2\n{extra}",
            workspace().join("experiments/demo-network.json").to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

/// `ann --home HOME ARGS` against the endpoint at `url`, as `gpt-4o-mini` (priced) with a key.
fn ann(home: &Path, url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = support::ann_at(home, url, args);
    command
        .env("ANN_OPENAI_MODEL", "gpt-4o-mini")
        .env("ANN_OPENAI_API_KEY", "sk-lifecycle-test")
        .env_remove("ANN_CACHE_DIR")
        .env_remove("NO_COLOR");
    command
}

async fn answer_b() -> FakeServer {
    FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: B".into())).await.unwrap()
}

/// `ann run CONFIG --json`, then `ann runs`, `ann inspect` of the run directory, its checkpoint
/// and a trace, and `ann eval --json`: every JSON output parses into its documented shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_then_runs_and_inspect_with_json() {
    // Every answer is wrong, so that training takes a step (and the gate rejects it).
    let server =
        FakeServer::start(FakeServerConfig::default().with_reply(|_| "Reasoning.\nAnswer: C".into())).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = experiment(home.path(), "life", "");
    let out = ann(home.path(), &server.url(), &["run", config.to_str().unwrap(), "--openai", "--json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = json(&out);
    let run_dir = PathBuf::from(run["run_dir"].as_str().unwrap());
    assert_eq!(run["report"]["test"]["trained"]["n"], 3, "{run}");
    assert_eq!(run["report"]["test"]["trained"]["mean"], 0.0);
    assert!(Path::new(run["report_html"].as_str().unwrap()).is_file());
    // Off a terminal: one summary line per phase, no colour or cursor codes.
    let err = stderr(&out);
    assert!(err.contains("training: 1/1 batches, validation 0.000, 0 accepted, 1 rejected, "), "{err}");
    assert!(err.contains("test-trained: 3/3 examples, score 0.000, ") && err.contains("cache hits"), "{err}");
    // Each phase's line follows the phase, before the next step's line.
    let (training, tested) = (err.find("training: 1/1").unwrap(), err.find("training stopped").unwrap());
    assert!(training < tested, "{err}");
    assert!(!err.contains('\x1b'), "{err}");

    let home_str = home.path().to_str().unwrap();
    let listed = ann(home.path(), &server.url(), &["runs", "--json"]).output().await.unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows = json(&listed);
    let row = &rows["runs"][0];
    assert_eq!(rows["runs"].as_array().unwrap().len(), 1, "{rows}");
    assert_eq!((row["status"].as_str(), row["benchmark"].as_str()), (Some("finished"), Some("mmlu-ml")), "{row}");
    assert_eq!((row["test_initial"].as_f64(), row["test_trained"].as_f64()), (Some(0.0), Some(0.0)));
    assert_eq!(row["calls"].as_u64(), Some(server.request_count() as u64), "paid calls: {row}");
    assert!(row["started_at"].as_str().unwrap().ends_with('Z'));
    let table = ann(home.path(), &server.url(), &["runs", &format!("{home_str}/runs")]).output().await.unwrap();
    let text = stdout(&table);
    assert!(text.starts_with("RUN") && text.contains(run_dir.file_name().unwrap().to_str().unwrap()), "{text}");
    assert!(text.contains("finished") && text.contains("0.000"), "{text}");

    let dir = run_dir.to_str().unwrap();
    let tree = ann(home.path(), &server.url(), &["inspect", dir]).output().await.unwrap();
    assert!(tree.status.success(), "{}", stderr(&tree));
    let tree = stdout(&tree);
    assert!(tree.starts_with("network: ") && tree.contains("aggregators (routing candidates): "), "{tree}");
    assert!(tree.contains("(default)") && tree.contains("agent ") && tree.contains("prompt: "), "{tree}");
    let net = json(&ann(home.path(), &server.url(), &["inspect", dir, "--json"]).output().await.unwrap());
    assert_eq!(net["kind"], "network");
    assert!(!net["network"]["layers"].as_array().unwrap().is_empty());
    let checkpoint = run_dir.join("checkpoint.json");
    let cp = json(
        &ann(home.path(), &server.url(), &["inspect", checkpoint.to_str().unwrap(), "--json"]).output().await.unwrap(),
    );
    assert_eq!((cp["kind"].as_str(), cp["checkpoint"]["epoch"].as_u64()), (Some("checkpoint"), Some(1)), "{cp}");
    assert!(cp["checkpoint"]["stopped"].is_string(), "a finished training says why it stopped: {cp}");

    let trace = run_dir.join("traces/test-trained.jsonl");
    let walked =
        json(&ann(home.path(), &server.url(), &["inspect", trace.to_str().unwrap(), "--json"]).output().await.unwrap());
    let examples = walked["examples"].as_array().unwrap();
    assert_eq!((walked["kind"].as_str(), examples.len()), (Some("trace"), 3), "{walked}");
    let first = &examples[0];
    assert_eq!((first["score"].as_f64(), first["set"].as_str()), (Some(0.0), Some("test-trained")));
    assert!(first["input"].as_str().unwrap().contains("Synthetic question"), "{first}");
    let layer = &first["layers"][0];
    assert!(!layer["aggregator"].as_str().unwrap().is_empty() && layer["source"].is_string(), "{layer}");
    assert!(layer["agents"][0]["output"].as_str().unwrap().contains("Answer: C"), "{layer}");
    let id = first["id"].as_str().unwrap();
    let text =
        ann(home.path(), &server.url(), &["inspect", trace.to_str().unwrap(), "--example", id]).output().await.unwrap();
    let text = stdout(&text);
    assert!(text.starts_with(&format!("example {id} (test-trained): score 0.000, failed")), "{text}");
    assert!(text.contains("  input: ") && text.contains("  layer ") && text.contains("final answer: "), "{text}");
    assert!(text.contains("feedback: ") && text.matches("example ").count() == 1, "{text}");
    let missing = ann(home.path(), &server.url(), &["inspect", trace.to_str().unwrap(), "--example", "nope"])
        .output()
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));

    let eval = ann(home.path(), &server.url(), &["eval", "--benchmark", "mmlu-ml", "--baseline", "direct"])
        .args(["--limit", "2", "--config", config.to_str().unwrap(), "--json"])
        .output()
        .await
        .unwrap();
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert_eq!((json(&eval)["summary"]["n"].as_u64(), json(&eval)["summary"]["mean"].as_f64()), (Some(2), Some(0.0)));
    server.shutdown().await;
}

/// The documented exit codes: 2 a bad command line, 3 bad input (config, data set, network file),
/// 4 a budget stop (recorded for `ann runs`); `--json` adds the error as JSON on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_bad_input_from_a_budget_stop() {
    let server = answer_b().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ann(home.path(), &server.url(), args).output();

    let usage = run(&["run", "--no-such-flag"]).await.unwrap();
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[train]\nepoch = 3\n").unwrap();
    let out = run(&["run", bad.to_str().unwrap(), "--json"]).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let error = json(&out);
    assert_eq!((error["status"].as_str(), error["exit_code"].as_u64()), (Some("bad_input"), Some(3)), "{error}");
    assert!(error["error"].as_str().unwrap().contains("unknown field `epoch`"), "{error}");

    let no_data = experiment(home.path(), "nodata", "");
    let text = std::fs::read_to_string(&no_data).unwrap().replace("data_dir = \"data\"", "data_dir = \"absent\"");
    std::fs::write(&no_data, text).unwrap();
    let out = run(&["run", "--openai", no_data.to_str().unwrap()]).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "a missing data set: {}", stderr(&out));

    let config = experiment(home.path(), "budget", "[budget]\nmax_calls = 3\n");
    let garbled = home.path().join("garbled.json");
    std::fs::write(&garbled, "{\"task_description\": 1}").unwrap();
    let out =
        run(&["run", "--openai", config.to_str().unwrap(), "--network", garbled.to_str().unwrap()]).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "a network file that does not parse: {}", stderr(&out));
    let out = run(&["eval", "--benchmark", "mmlu-ml", "--network", garbled.to_str().unwrap()]).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    let out = run(&["run", "--openai", config.to_str().unwrap()]).await.unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("ann resume"), "{}", stderr(&out));
    let rows = json(&run(&["runs", "--json"]).await.unwrap());
    let row = rows["runs"].as_array().unwrap().iter().find(|r| r["run"].as_str().unwrap().starts_with("budget-"));
    assert_eq!(row.unwrap()["status"], "budget", "{rows}");
    server.shutdown().await;
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ann")).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["inspect", "runs", "resume", "completions", "json"] {
            assert!(script.contains(word), "{shell} completions name `{word}`");
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ann")).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// On a terminal (a pseudo-terminal made by `script`) the phases draw as bars, coloured unless
/// `NO_COLOR` is set; with it, no colour code (SGR) reaches the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_on_a_terminal_honour_no_color() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to give `ann` a terminal");
    }
    let server = FakeServer::start(
        FakeServerConfig::default()
            .with_reply(|_| "Reasoning.\nAnswer: B".into())
            .with_latency(std::time::Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let sgr = regex_free_sgr;
    for no_color in [false, true] {
        // A home per run: two runs started in the same second would want the same run folder.
        let home = tempfile::tempdir().unwrap();
        let config = experiment(home.path(), "tty", "");
        let log = home.path().join(format!("tty-{no_color}.log"));
        let command =
            format!("{} --home {} run --openai {}", env!("CARGO_BIN_EXE_ann"), home.path().display(), config.display());
        let mut script = tokio::process::Command::new("script");
        script.args(["-q", "-e", "-c", &command, log.to_str().unwrap()]);
        script
            .env("ANN_OPENAI_BASE_URL", server.url())
            .env("ANN_OPENAI_MODEL", "gpt-4o-mini")
            .env("TERM", "xterm-256color")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("ANN_CACHE_DIR")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        let status = script.status().await.unwrap();
        let seen = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{seen}");
        assert!(seen.contains("test-trained") && seen.contains("/3"), "a bar per phase: {seen}");
        assert_eq!(sgr(&seen), !no_color, "colour codes with NO_COLOR={no_color}: {seen:?}");
    }
    server.shutdown().await;
}

/// Whether `text` holds an SGR (colour or weight) escape: ESC [ digits/semicolons m.
fn regex_free_sgr(text: &str) -> bool {
    text.match_indices("\x1b[").any(|(i, _)| {
        let rest = &text[i + 2..];
        let params: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ';').collect();
        rest[params.len()..].starts_with('m')
    })
}
