//! DABench end to end: `ann train` and `ann eval` on the project's DABench-format fixture
//! (`datasets/dabench`) against the fake OpenAI-compatible server, whose deterministic tool calls
//! run the example's loading program with the real `python` tool (bubblewrap, the CSV read-only in
//! its working directory); the traces hold the calls and the tables' contents, and the closed-form
//! answers are scored with partial credit.

mod support;

use std::path::Path;

use ann_test_support::server::{FakeServer, FakeServerConfig};
use serde_json::Value;
use support::{stderr, workspace};

/// Every fixture answer right but `customers` (3 in the table): question 1 scores 1/2.
const ANSWERS: &str = "@mean_price[4.38] @top_city[Lyon] @customers[2] @total_quantity[3] @mean_age[33.67] \
                       @youngest[Eva] @cities[3]";

/// After a tool result, the reply repeats it (so the analysis carries the program's output);
/// every other text reply is the closed-form answers.
async fn fake_server() -> FakeServer {
    FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(|body| {
        let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
        if last["role"] == "tool" {
            format!("The program printed: {}", last["content"].as_str().unwrap_or_default())
        } else {
            ANSWERS.to_string()
        }
    }))
    .await
    .unwrap()
}

/// `ann` against `url`, DABench read from the project's fixture.
fn ann(home: &Path, url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = support::ann_at(home, url, args);
    command.env("ANN_DABENCH_DIR", workspace().join("datasets/dabench"));
    command
}

/// The calls of a trace file (`traces/<name>.jsonl`: one event a line) that asked for tools.
fn tool_calls(trace_file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(trace_file).unwrap_or_else(|e| panic!("{}: {e}", trace_file.display()));
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["tool_calls"].as_array().is_some_and(|c| !c.is_empty()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dabench_trains_and_evaluates_with_the_python_tool_reading_the_tables() {
    let server = fake_server().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("exp.toml"),
        "name = \"dabench-fixture\"\nbaselines = [\"direct\"]\n[benchmark]\nname = \"dabench\"\ntrain = 1\n\
         validation = 1\ntest = 3\n[cache]\nmode = \"off\"\n[train]\nepochs = 1\nbatch_size = 1\nwrite_traces = true\n\
         [report]\nbootstrap_resamples = 100\n",
    )
    .unwrap();
    let out = ann(home.path(), &server.url(), &["train", "--openai", "--config", "exp.toml"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<_> = std::fs::read_dir(home.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    let run = &runs[0];

    // The test split's traces: the analyst called python, which read the whole table.
    let calls = tool_calls(&run.join("traces/test-initial.jsonl"));
    assert!(!calls.is_empty(), "no tool call in the test traces");
    for call in &calls {
        assert_eq!(call["layer"], "analyse");
        assert_eq!(call["tool_calls"][0]["name"], "python");
        let result = &call["tool_results"][0];
        let content = result["content"].as_str().unwrap();
        assert_ne!(result["is_error"], true, "{content}");
        assert!(
            content.contains("rows; columns: ['product', 'price', 'quantity']")
                || content.contains("rows; columns: ['name', 'city', 'age']"),
            "{content}"
        );
    }
    // 5 rows of people.csv or 3 of sales.csv: the whole file, not the preview's first lines.
    let printed: Vec<&str> = calls.iter().filter_map(|c| c["tool_results"][0]["content"].as_str()).collect();
    assert!(printed.iter().all(|c| c.contains("stdout:\n5 rows") || c.contains("stdout:\n3 rows")), "{printed:?}");

    // Scores: partial credit per question; the report has the test scores.
    let lines = std::fs::read_to_string(run.join("evaluations/test-initial.jsonl")).unwrap();
    let scored: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(scored.len(), 3);
    for line in &scored {
        let (id, score) = (line["id"].as_str().unwrap(), line["score"].as_f64().unwrap());
        let want = if id == "dabench/1" { 0.5 } else { 1.0 };
        assert_eq!(score, want, "{line}");
        if id == "dabench/1" {
            assert_eq!(line["feedback"], "@customers: expected 3, got 2");
        }
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["benchmark"], "dabench");

    // `ann eval` of the trained network: the tool results reach the model over HTTP.
    let before = server.requests().len();
    let trained = run.join("network-trained.json");
    let args = ["eval", "--benchmark", "dabench", "--network", trained.to_str().unwrap(), "--config", "exp.toml"];
    let out = ann(home.path(), &server.url(), &args).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["benchmark"], "dabench");
    let requests = server.requests();
    let tool_messages: Vec<String> = requests[before..]
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !tool_messages.is_empty() && tool_messages.iter().all(|m| m.starts_with("exit status 0")),
        "{tool_messages:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_tools_is_checked_against_the_benchmark() {
    let server = fake_server().await;
    let home = tempfile::tempdir().unwrap();
    let config = |benchmark: &str, tools: bool| {
        let text =
            format!("name = \"t\"\n[benchmark]\nname = \"{benchmark}\"\ntools = {tools}\n[cache]\nmode = \"off\"\n");
        std::fs::write(home.path().join("tools.toml"), text).unwrap();
    };
    // Trivia CW has no starting network with tools: the key and the benchmark are named.
    config("trivia-cw", true);
    let args = ["eval", "--benchmark", "trivia-cw", "--baseline", "start", "--config", "tools.toml"];
    let out = ann(home.path(), &server.url(), &args)
        .env("ANN_TRIVIA_CW_PATH", workspace().join("datasets/trivia-cw/trivia-cw-sample.jsonl"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`benchmark.tools = true`") && stderr(&out).contains("trivia-cw"),
        "{}",
        stderr(&out)
    );
    assert!(server.requests().is_empty(), "nothing is called before the check");
    // `tools = false` takes DABench's python away: its starting network then offers no tool.
    config("dabench", false);
    let args = ["eval", "--benchmark", "dabench", "--baseline", "start", "--config", "tools.toml"];
    let out = ann(home.path(), &server.url(), &args).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = server.requests();
    assert!(!requests.is_empty() && requests.iter().all(|r| r.body.get("tools").is_none()), "no request offered tools");
    server.shutdown().await;
}
