//! Networks whose agents list tools, run by the experiment layer over HTTP to the fake server: the
//! run builds the tool registry from the network, the model calls a tool, the result goes back.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_bench_mmlu_ml::MmluMl;
use ann_eval::{Benchmark, Split};
use ann_experiment::{BackendSource, ExperimentConfig, RunOptions, evaluate_network};
use ann_graph::Network;
use ann_llm::SharedModel;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};

fn benchmark() -> Arc<dyn Benchmark> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rows = ann_bench_mmlu_ml::load_rows(&root.join("datasets/mmlu-ml/mmlu-ml-sample.jsonl")).unwrap();
    let examples: Vec<_> = rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect();
    Arc::new(MmluMl::from_examples(&examples, &[2, 1, 1], 7).unwrap())
}

fn options(dir: &Path, model: SharedModel) -> RunOptions {
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(model),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(benchmark()),
        interrupt: None,
    }
}

/// The benchmark's starting network with `tools` given to every agent of the first layer.
fn network_with(tools: &[&str]) -> Network {
    let mut network = Network::from_json(benchmark().starting_network()).unwrap();
    for agent in &mut network.layers[0].agents {
        agent.tools = tools.iter().map(|t| t.to_string()).collect();
        agent.max_tool_steps = Some(1);
    }
    network
}

const CONFIG: &str = r#"
name = "tools"
[benchmark]
name = "mmlu-ml"
[forward]
routing = "fixed"
"#;

#[tokio::test]
async fn an_evaluated_network_calls_its_tools_and_unknown_tools_are_refused_first() {
    let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let config = ExperimentConfig::from_toml(CONFIG, "tools.toml").unwrap();
    let outcome =
        evaluate_network(&config, &network_with(&["calculator"]), Split::Test, &options(dir.path(), model.clone()))
            .await
            .unwrap();
    assert_eq!(outcome.summary.as_ref().map(|s| s.n), Some(1));
    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body).collect();
    let offered = bodies.iter().find(|b| b["tools"].is_array()).expect("a request offered the calculator");
    assert_eq!(offered["tools"][0]["function"]["name"], "calculator");
    let answered = bodies
        .iter()
        .find(|b| b["messages"].as_array().unwrap().iter().any(|m| m["role"] == "tool"))
        .expect("a tool result went back to the model");
    let result = answered["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").unwrap();
    assert!(result["content"].as_str().unwrap().starts_with("error from tool calculator:"), "{result}");

    let before = server.request_count();
    let err = evaluate_network(&config, &network_with(&["shell"]), Split::Test, &options(dir.path(), model))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("tool `shell` is not registered (known: calculator, python)"), "{err:#}");
    assert_eq!(server.request_count(), before, "refused before any call");
}
