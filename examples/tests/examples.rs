//! Each example runs to its end as a user runs it (the built example binary, a real process) against
//! an OpenAI-compatible endpoint: the fake server on 127.0.0.1, answering like a model that knows
//! capitals and arithmetic and, as the optimiser, proposes the uppercase instruction the
//! evaluator's feedback asks for.

use std::path::PathBuf;
use std::process::Command;

use ann_test_support::server::{FakeServer, FakeServerConfig};

#[path = "../../xtask/src/scrub.rs"]
mod scrub;

/// The example's executable, as `cargo build --examples` reports it (`--all-targets` test runs do
/// not copy examples to `target/<profile>/examples/<name>`, so the path is asked of cargo).
fn example(name: &str) -> PathBuf {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    scrub::scrub_package_env(&mut command);
    let out = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "examples", "--examples", "--message-format=json-render-diagnostics"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo build --examples: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name && m["profile"]["test"] == false)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for example `{name}`"))
}

fn text(message: &serde_json::Value) -> &str {
    message["content"].as_str().unwrap_or("")
}

fn capital(user: &str) -> &'static str {
    [
        ("France", "paris"),
        ("Italy", "rome"),
        ("Spain", "madrid"),
        ("Japan", "tokyo"),
        ("Germany", "berlin"),
        ("Egypt", "cairo"),
        ("Peru", "lima"),
    ]
    .iter()
    .find(|(country, _)| user.contains(country))
    .map(|(_, city)| *city)
    .unwrap_or("unknown")
}

/// The endpoint's answer to one request.
fn reply(body: &serde_json::Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages.first().map(text).unwrap_or("").to_string();
    let user = messages.last().map(text).unwrap_or("").to_string();
    let agent = |id: &str| system.contains(&format!("You are agent `{id}`"));
    if system.contains("You route one layer") {
        let choice = if user.contains("- shortest (") { "shortest" } else { "majority_vote" };
        return format!(r#"{{"aggregator": "{choice}", "reason": "the answers are short"}}"#);
    }
    if agent("planner") {
        return "Multiplication.".into();
    }
    if agent("quick") || agent("checker") {
        return "12 * 7 = 84\nAnswer: 84".into();
    }
    if agent("terse") {
        return "Paris".into();
    }
    if agent("chatty") {
        return "The capital of France is Paris, a city on the Seine.".into();
    }
    if agent("geographer") {
        let city = capital(&user);
        return if user.contains("UPPERCASE") { city.to_uppercase() } else { city.to_string() };
    }
    if system.contains("loss function") {
        return "<critique>Right city, wrong case.</critique>\n<requirement>The capital in uppercase.</requirement>"
            .into();
    }
    if system.contains("critic of a multi-layer") {
        return r#"{"diagnosis": "the answers are lowercase", "layers": [{"layer": "answer", "blame": 1.0, "issue": "letter case", "direction": "ask for uppercase"}], "structural": [{"kind": "none", "why": ""}]}"#.into();
    }
    if system.contains("optimiser of one layer") {
        return r#"<gradient>The prompt must ask for uppercase letters.</gradient>
<requirement_for_previous>The question.</requirement_for_previous>
<patch>[{"op": "set_prompt", "layer": "answer", "agent": "geographer", "value": "{task}\n{input}\nReply with the capital only, in UPPERCASE letters."}]</patch>"#
            .into();
    }
    "I do not know.".into()
}

async fn run(name: &'static str) -> String {
    let server = FakeServer::start(FakeServerConfig::default().with_reply(reply)).await.unwrap();
    let url = server.url();
    let path = tokio::task::spawn_blocking(move || example(name)).await.unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&path)
            .env("ANN_OPENAI_BASE_URL", url)
            .env("ANN_OPENAI_MODEL", "example-model")
            .env("ANN_OPENAI_API_KEY", "sk-example")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
    .await
    .unwrap();
    assert!(server.request_count() > 0, "{name} called the endpoint");
    server.shutdown().await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name}:\n{stdout}\n{stderr}");
    assert!(stderr.contains("model: example-model at the endpoint"), "{stderr}");
    stdout.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_built_in_code_runs_forward() {
    let out = run("network_in_code").await;
    assert!(out.contains("layer `plan`: single (SingleCandidate), 1 calls"), "{out}");
    assert!(out.contains("layer `solve`: majority_vote (Model), 3 calls"), "{out}");
    assert!(out.contains("output: 12 * 7 = 84\nAnswer: 84"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_aggregator_is_offered_by_routing_and_runs() {
    let out = run("custom_aggregator").await;
    assert!(out.contains("routing chose `shortest` (Model: the answers are short)"), "{out}");
    assert!(out.contains("notes: shortest answer: `terse`"), "{out}");
    assert!(out.contains("output: Paris"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_on_a_custom_benchmark_accepts_the_fix_its_feedback_asks_for() {
    let out = run("custom_benchmark").await;
    assert!(out.contains("validation 0.000 -> 1.000"), "{out}");
    assert!(out.contains("step 1: Accepted"), "{out}");
    assert!(out.contains("in UPPERCASE letters."), "{out}");
}
