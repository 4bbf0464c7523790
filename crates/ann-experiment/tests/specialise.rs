//! Specialisation within one benchmark (`ann adapt --specialise-by`), against the fake
//! OpenAI-compatible server: one network per slice of a small benchmark of the test's own, a
//! router in front that chooses per input, and the comparison with the single network.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split, Splits};
use ann_experiment::adapt::Reuse;
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions};
use ann_graph::Network;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use async_trait::async_trait;
use serde_json::Value;

const TASK: &str = "Compute the expression. End with a line ANSWER: <number>.";

const NETWORK: &str = r#"{"version": 1, "task_description": "Compute the expression. End with a line ANSWER: <number>.",
 "layers": [{"id": "solve", "subtask": "Compute.", "agents": [{"id": "a1", "role": "A calculator.",
 "prompt": "{task}\n\n{input}", "temperature": 0.0}], "aggregators": ["single"], "default_aggregator": "single",
 "routing_hint": "", "output_spec": "A last line ANSWER: <number>."}]}"#;

/// Arithmetic with an `op` field: a network answers "right" only when it is the specialist of
/// the input's operation (the fake server decides, below).
struct Arith {
    splits: Splits,
}

fn example(id: &str, input: &str, op: Option<&str>) -> Example {
    let mut metadata = BTreeMap::new();
    if let Some(op) = op {
        metadata.insert("op".to_string(), Value::from(op));
    }
    Example { id: id.into(), input: input.into(), reference: None, metadata }
}

impl Arith {
    fn new() -> Self {
        let train = vec![
            example("t1", "2 + 2", Some("add")),
            example("t2", "7 + 1", Some("add")),
            example("t3", "2 * 3", Some("mul")),
            example("t4", "4 * 5", Some("mul")),
            example("t5", "10 - 3", None),
        ];
        let validation = vec![example("v1", "1 + 1", Some("add")), example("v2", "2 * 2", Some("mul"))];
        let test = vec![
            example("x1", "1 + 2", Some("add")),
            example("x2", "5 + 6", Some("add")),
            example("x3", "3 * 4", Some("mul")),
            example("x4", "9 * 9", Some("mul")),
        ];
        Self { splits: Splits { train, validation, test } }
    }
}

#[async_trait]
impl Benchmark for Arith {
    fn name(&self) -> &str {
        "arith"
    }
    fn task_description(&self) -> &str {
        TASK
    }
    fn answer_format(&self) -> &str {
        "ANSWER:"
    }
    fn examples(&self, split: Split) -> &[Example] {
        self.splits.get(split)
    }
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
    fn starting_network(&self) -> &str {
        NETWORK
    }
    async fn evaluate(&self, _example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        Ok(if output.contains("ANSWER: right") {
            Evaluation { score: 1.0, passed: true, feedback: "right".into() }
        } else {
            Evaluation::fail("wrong")
        })
    }
}

fn messages(body: &Value) -> Vec<String> {
    body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap_or_default().to_string()).collect()
}

fn specialist(op: &str) -> String {
    NETWORK.replace("{task}\\n\\n{input}", &format!("{}-SPECIALIST {{task}}\\n\\n{{input}}", op.to_uppercase()))
}

/// Construction: the specialist of the slice named in the task. Routing: by the input's operator,
/// except `9 * 9`, which gets an unusable answer. Agents: right only as the input's specialist.
fn reply(body: &Value) -> String {
    let m = messages(body);
    let (system, user) = (m[0].as_str(), m.last().unwrap().as_str());
    if system.starts_with("You design multi-agent") {
        return if user.contains("whose op is add") { specialist("add") } else { specialist("mul") };
    }
    if system.starts_with("You route") {
        let input = user.split("Input:\n").nth(1).unwrap().lines().next().unwrap();
        return match input {
            "9 * 9" => "no idea".into(),
            i if i.contains('+') => r#"{"specialist": "add"}"#.into(),
            _ => r#"{"specialist": "mul"}"#.into(),
        };
    }
    let right = (user.contains("ADD-SPECIALIST") && user.contains(" + "))
        || (user.contains("MUL-SPECIALIST") && user.contains(" * "));
    if right { "ANSWER: right".into() } else { "ANSWER: wrong".into() }
}

fn options(dir: &Path, server: &FakeServer) -> RunOptions {
    let model = OpenAiModel::new(OpenAiConfig::new(server.url(), "fake-model"), None).unwrap();
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(Arc::new(model)),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(Arc::new(Arith::new())),
        interrupt: None,
    }
}

const CONFIG: &str = r#"
name = "arith"
[benchmark]
name = "arith"
[cache]
mode = "off"
[train]
epochs = 1
batch_size = 2
patience = 0
[construct]
examples = 2
[report]
bootstrap_resamples = 200
"#;

#[tokio::test]
async fn one_network_per_slice_with_a_router_against_the_single_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(FakeServerConfig::default().with_reply(reply)).await.unwrap();
    let config = ExperimentConfig::from_toml(CONFIG, "arith.toml").unwrap();
    let run = ann_experiment::start(&config, &options(dir.path(), &server)).await.unwrap().run_dir;
    let out = dir.path().join("special");
    let report = ann_experiment::specialise::specialise_to_dir(
        &config,
        std::slice::from_ref(&run),
        "op",
        &out,
        &options(dir.path(), &server),
    )
    .await
    .unwrap();

    // One constructed network per slice, each shown its own slice's training inputs.
    let values: Vec<&str> = report.slices.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(values, ["add", "mul"]);
    assert_eq!(report.train_without_field, 1);
    for (slice, op) in report.slices.iter().zip(["ADD", "MUL"]) {
        assert_eq!((slice.train_examples, slice.fallback_used), (2, false));
        let net = Network::load(&out.join(&slice.file)).unwrap();
        assert!(net.layers[0].agents[0].prompt.starts_with(&format!("{op}-SPECIALIST")));
        assert!(net.task_description.contains(&format!("whose op is {}", slice.value)));
        assert_eq!(slice.layers[0].reuse, Reuse::Adapted, "the trained layer's id, a new prompt");
        assert!(out.join(slice.file.replace(".json", ".provenance.json")).is_file());
    }
    let construction: Vec<String> = server
        .requests()
        .iter()
        .map(|r| messages(&r.body))
        .filter(|m| m[0].starts_with("You design multi-agent"))
        .map(|m| m[1].clone())
        .collect();
    assert_eq!(construction.len(), 2);
    assert!(construction[0].contains("2 + 2") && !construction[0].contains("2 * 3"), "{}", construction[0]);
    assert!(construction[0].contains("Library network 1"), "the trained network is the library");

    // The router chose per input (one unusable answer: the single network took that input).
    assert_eq!((report.router.routed, report.router.unrouted, report.router.accuracy), (3, 1, Some(0.75)));
    assert_eq!((report.slices[0].routed, report.slices[1].routed), (2, 1));
    // Specialised beats single: 3 of 4 right against 0 of 4, paired on the same examples.
    assert_eq!(report.single.as_ref().unwrap().mean, 0.0);
    assert_eq!(report.specialised.as_ref().unwrap().mean, 0.75);
    assert_eq!(report.paired.as_ref().unwrap().difference, 0.75);
    let add = &report.by_slice["add"];
    assert_eq!((add.n, add.single, add.specialised), (2, 0.0, 1.0));
    assert_eq!(report.by_slice["mul"].specialised, 0.5);
    let router: Value = serde_json::from_str(&std::fs::read_to_string(out.join("router.json")).unwrap()).unwrap();
    assert_eq!(router["slices"][1]["network"], "mul.json");
    assert!(out.join("single.json").is_file() && out.join("specialise.json").is_file());

    // A field no example has is named, with the fields there are.
    let err = ann_experiment::specialise::specialise_to_dir(
        &config,
        std::slice::from_ref(&run),
        "subject",
        &out,
        &options(dir.path(), &server),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("`subject` (fields: op)"), "{err:#}");
    server.shutdown().await;
}
