//! Training learns *when* to use a tool: the worker cannot multiply large numbers by talking, the
//! optimiser's prompt (from the trainer, which ties the format gate to the forward pass's tools)
//! offers the tool ops, a patch granting `calculator` is applied, gated and kept, and the agent then
//! computes exactly through the tool loop. A patch granting a tool the run lacks is rejected with a
//! reason the optimiser reads and fixes. All over HTTP to the fake OpenAI-compatible server (whose
//! tool calls put the input's fenced expression into the calculator's arguments).

use std::sync::Arc;

use ann_graph::{ForwardConfig, Network, RoutingMode};
use ann_llm::SharedModel;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_textgrad::{
    Decision, EvalError, Evaluation, Evaluator, Example, JournalEvent, PatchOp, RunFiles, TrainConfig, TrainData,
    Trainer,
};
use async_trait::async_trait;
use serde_json::Value;

const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Multiply the two numbers exactly. Reply with the product only.",
  "layers": [{
    "id": "compute",
    "subtask": "multiply the numbers",
    "agents": [{"id": "a1", "role": "A calculator user.", "prompt": "Multiply: {input}", "temperature": 0.0}],
    "aggregators": ["single"],
    "default_aggregator": "single",
    "routing_hint": "",
    "output_spec": "the exact product"
  }]
}"#;

fn example(a: u64, b: u64) -> Example {
    Example::new(format!("p-{a}"), format!("```\n{a} * {b}\n```")).with_reference((a as u128 * b as u128).to_string())
}

fn data() -> TrainData {
    TrainData {
        train: vec![example(123_456_789, 987_654_321), example(31_415_926, 27_182_818)],
        validation: vec![example(99_999_989, 88_888_883), example(76_543_217, 12_345_679)],
    }
}

struct Exact;

#[async_trait]
impl Evaluator for Exact {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let reference = example.reference.as_deref().unwrap_or("");
        Ok(if output.trim() == reference {
            Evaluation::pass("correct")
        } else {
            Evaluation::fail(format!("got `{}`: not the exact product", output.trim()))
        })
    }
}

fn content(message: &Value) -> &str {
    message["content"].as_str().unwrap_or("")
}

/// Every model of the environment. `shell_first`: the optimiser first grants a tool the run lacks.
fn reply(body: &Value, shell_first: bool) -> String {
    let messages = body["messages"].as_array().unwrap();
    let (system, last) = (content(&messages[0]), messages.last().unwrap());
    if system.contains("of the team `compute`") {
        // After the calculator's result: the result is the answer. Without a tool: a guess.
        return if last["role"] == "tool" { content(last).to_string() } else { "a very big number".into() };
    }
    if system.contains("loss function") {
        return "<critique>The product is guessed, not computed.</critique>\n<requirement>The exact product.</requirement>"
            .into();
    }
    if system.contains("critic of a multi-layer") {
        return r#"{"diagnosis": "the agent guesses products", "layers": [{"layer": "compute", "blame": 0.9, "issue": "inexact arithmetic", "direction": "compute exactly"}], "structural": [{"kind": "none", "why": ""}]}"#.into();
    }
    if system.contains("optimiser of one layer") {
        let user = content(last);
        if user.contains("That patch was rejected (invariant:tools)") && user.contains("(known: calculator)") {
            return r#"<patch>[{"op":"grant_tool","layer":"compute","agent":"a1","tool":"calculator"},{"op":"set_tool_steps","layer":"compute","agent":"a1","value":2}]</patch>"#.into();
        }
        if !user.contains(r#"{"op":"grant_tool""#) || user.contains("\"tools\"") {
            return "<gradient>Nothing to change.</gradient><requirement_for_previous>-</requirement_for_previous><patch>[]</patch>".into();
        }
        let tool = if shell_first { "shell" } else { "calculator" };
        return format!(
            "<gradient>Products must be computed, not guessed: give the agent a tool.</gradient>\n<requirement_for_previous>-</requirement_for_previous>\n<patch>[{{\"op\":\"grant_tool\",\"layer\":\"compute\",\"agent\":\"a1\",\"tool\":\"{tool}\"}},{{\"op\":\"set_tool_steps\",\"layer\":\"compute\",\"agent\":\"a1\",\"value\":2}}]</patch>"
        );
    }
    format!("unexpected request: {system}")
}

async fn train(shell_first: bool, dir: &std::path::Path) -> (FakeServer, ann_textgrad::TrainOutcome) {
    let server = FakeServer::start(
        FakeServerConfig::default().keeping_requests().with_reply(move |body| reply(body, shell_first)),
    )
    .await
    .unwrap();
    let model: SharedModel = Arc::new(
        OpenAiModel::new(
            OpenAiConfig {
                base_urls: vec![server.url()],
                model: "fake-model".into(),
                api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
                ..OpenAiConfig::default()
            },
            None,
        )
        .unwrap(),
    );
    let config = TrainConfig {
        epochs: 1,
        batch_size: 2,
        forward: ForwardConfig {
            routing: RoutingMode::Fixed,
            tools: Some(Arc::new(ann_tools::builtin_registry(None))),
            ..ForwardConfig::default()
        },
        ..TrainConfig::default()
    };
    let start = Network::from_json(NETWORK).unwrap();
    let trainer = Trainer::new(model.clone(), model, Arc::new(Exact), config);
    assert_eq!(trainer.config().rules.tools.as_deref(), Some(&["calculator".to_string()][..]));
    let out = trainer.train(&start, &data(), dir).await.expect("training runs");
    (server, out)
}

fn accepted_ops(dir: &std::path::Path) -> Vec<PatchOp> {
    let events = RunFiles::new(dir).unwrap().read_journal().unwrap();
    events
        .iter()
        .filter_map(|e| if let JournalEvent::Step(s) = e { Some(s) } else { None })
        .filter(|s| s.decision == Decision::Accepted)
        .flat_map(|s| s.components.iter().flat_map(|c| c.ops.clone()))
        .collect()
}

#[tokio::test]
async fn a_patch_granting_the_calculator_is_applied_gated_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (server, out) = train(false, dir.path()).await;
    assert_eq!((out.val_initial, out.val_best), (0.0, 1.0));
    let agent = &out.best.layers[0].agents[0];
    assert_eq!((agent.tools.as_slice(), agent.max_tool_steps), (&["calculator".to_string()][..], Some(2)));
    let ops: Vec<String> = accepted_ops(dir.path()).iter().map(PatchOp::summary).collect();
    assert_eq!(ops, ["grant_tool compute/a1 calculator", "set_tool_steps compute/a1=2"]);
    // After the grant the worker's requests offer the calculator and it is called.
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.body["tools"][0]["function"]["name"] == "calculator"));
    assert!(requests.iter().any(|r| {
        r.body["messages"].as_array().unwrap().iter().any(|m| m["role"] == "tool" && content(m) == "121932631112635269")
    }));
}

#[tokio::test]
async fn granting_a_tool_the_run_lacks_is_rejected_and_the_optimiser_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, out) = train(true, dir.path()).await;
    assert_eq!(out.val_best, 1.0);
    assert_eq!(out.best.layers[0].agents[0].tools, ["calculator"]);
    let fix = server
        .requests()
        .into_iter()
        .find_map(|r| {
            let last = r.body["messages"].as_array().unwrap().last().unwrap().clone();
            content(&last).starts_with("That patch was rejected").then(|| content(&last).to_string())
        })
        .expect("the rejection went back to the optimiser");
    assert!(
        fix.contains("(invariant:tools)") && fix.contains("tool `shell` is not registered (known: calculator)"),
        "{fix}"
    );
}
