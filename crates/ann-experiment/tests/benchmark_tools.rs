//! `[benchmark] tools`: the starting networks with tools of HumanEval, MATH and DABench, chosen
//! by the config, refused for a benchmark without one, taken away with `false`; the run's tool
//! registry follows the chosen network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_eval::{Benchmark, Split};
use ann_experiment::{BackendSource, Baseline, ExperimentConfig, RunOptions, check_network};
use ann_graph::Network;
use ann_llm::SharedModel;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::ScriptedModel;
use ann_test_support::server::{FakeServer, FakeServerConfig};

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets")
}

fn math() -> Arc<dyn Benchmark> {
    let pool = ann_bench_math::load_math_train(&datasets().join("math/math-train-sample.jsonl")).unwrap();
    let test = ann_bench_math::load_math500(&datasets().join("math/math500-sample.jsonl")).unwrap();
    let config =
        ann_bench_math::MathConfig { train_size: 2, validation_size: 1, test_size: Some(1), ..Default::default() };
    Arc::new(ann_bench_math::MathBenchmark::from_problems(&pool, &test, &config).unwrap())
}

fn mmlu() -> Arc<dyn Benchmark> {
    let rows = ann_bench_mmlu_ml::load_rows(&datasets().join("mmlu-ml/mmlu-ml-sample.jsonl")).unwrap();
    let examples: Vec<_> = rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect();
    Arc::new(ann_bench_mmlu_ml::MmluMl::from_examples(&examples, &[2, 1, 1], 7).unwrap())
}

fn dabench() -> Arc<dyn Benchmark> {
    let examples = ann_bench_creative_writing::dabench::load_dir(&datasets().join("dabench")).unwrap();
    Arc::new(ann_bench_creative_writing::dabench::DaBench::from_examples(&examples, &[1, 1, 3], 3).unwrap())
}

fn options(dir: &Path, benchmark: Arc<dyn Benchmark>) -> RunOptions {
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(Arc::new(ScriptedModel::new("scripted"))),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark: Some(benchmark),
        interrupt: None,
    }
}

fn config(benchmark: &str, tools: Option<bool>) -> ExperimentConfig {
    let tools = tools.map(|t| format!("tools = {t}\n")).unwrap_or_default();
    let text = format!("name = \"tools\"\n[benchmark]\nname = \"{benchmark}\"\n{tools}[cache]\nmode = \"off\"\n");
    ExperimentConfig::from_toml(&text, "tools.toml").unwrap()
}

/// The tools every agent of `net` lists, by layer and agent.
fn tools_of(net: &Network) -> Vec<(String, String, Vec<String>)> {
    net.layers
        .iter()
        .flat_map(|l| l.agents.iter().map(|a| (l.id.clone(), a.id.clone(), a.tools.clone())))
        .filter(|(_, _, tools)| !tools.is_empty())
        .collect()
}

#[test]
fn the_networks_with_tools_keep_the_shape_of_the_plain_ones_and_validate() {
    let humaneval_plain = Network::from_json(ann_bench_humaneval::STARTING_NETWORK).unwrap();
    let humaneval_tools = Network::from_json(ann_bench_humaneval::STARTING_NETWORK_WITH_TOOLS).unwrap();
    let math_plain = Network::from_json(ann_bench_math::STARTING_NETWORK).unwrap();
    let math_tools = Network::from_json(ann_bench_math::STARTING_NETWORK_WITH_TOOLS).unwrap();
    for (plain, tools) in [(&humaneval_plain, &humaneval_tools), (&math_plain, &math_tools)] {
        assert_eq!(tools.task_description, plain.task_description);
        assert_eq!(tools.layers.len(), plain.layers.len());
        for (p, t) in plain.layers.iter().zip(&tools.layers) {
            assert_eq!((&p.id, &p.aggregators, p.default_aggregator), (&t.id, &t.aggregators, t.default_aggregator));
            let ids = |l: &ann_graph::Layer| l.agents.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(p), ids(t));
        }
        assert!(tools_of(plain).is_empty());
    }
    let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(tools_of(&humaneval_tools), [("verify".into(), "a1".into(), s(&["python"]))]);
    assert!(humaneval_tools.layers[2].agents[0].prompt.contains("doctest"));
    let calculator = s(&["calculator"]);
    assert_eq!(
        tools_of(&math_tools),
        [
            ("solve".into(), "a1".into(), calculator.clone()),
            ("solve".into(), "a3".into(), calculator.clone()),
            ("verify".into(), "a1".into(), calculator)
        ]
    );
    let dabench = dabench();
    let dabench_net = Network::from_json(dabench.starting_network()).unwrap();
    assert_eq!(tools_of(&dabench_net), [("analyse".into(), "a1".into(), s(&["python"]))]);
    assert_eq!(dabench.starting_network_with_tools(), Some(dabench.starting_network()));
    check_network(&dabench_net, dabench.as_ref()).unwrap();
    check_network(&math_tools, math().as_ref()).unwrap();
    assert_eq!(math().starting_network_with_tools(), Some(ann_bench_math::STARTING_NETWORK_WITH_TOOLS));
    assert_eq!(mmlu().starting_network_with_tools(), None);
}

#[tokio::test]
async fn benchmark_tools_chooses_the_starting_network_and_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    // Absent: the benchmark's own network, agents only talk, no registry.
    let plain = ann_experiment::prepare(&config("math", None), &options(dir.path(), math())).await.unwrap();
    assert!(tools_of(&plain.start).is_empty());
    assert!(plain.train_config.forward.tools.is_none());
    // `true`: the network with tools, and the registry holding them (the calculator: no sandbox).
    let with = ann_experiment::prepare(&config("math", Some(true)), &options(dir.path(), math())).await.unwrap();
    assert_eq!(with.start, Network::from_json(ann_bench_math::STARTING_NETWORK_WITH_TOOLS).unwrap());
    assert_eq!(with.train_config.forward.tools.as_ref().map(|t| t.names()), Some(vec!["calculator".to_string()]));
    assert_eq!(with.train_config.rules.tools, Some(vec!["calculator".to_string()]));
    // `false` on DABench: its analyst loses the python tool; nothing needs the sandbox.
    let without =
        ann_experiment::prepare(&config("dabench", Some(false)), &options(dir.path(), dabench())).await.unwrap();
    assert!(tools_of(&without.start).is_empty());
    assert_eq!(without.start.layers[0].agents[0].max_tool_steps, None);
    assert!(without.train_config.forward.tools.is_none());
    // `true` on a benchmark without such a network: the key and the benchmark are named.
    let err =
        ann_experiment::prepare(&config("mmlu-ml", Some(true)), &options(dir.path(), mmlu())).await.err().unwrap();
    let err = format!("{err:#}");
    assert!(err.contains("`benchmark.tools = true`") && err.contains("mmlu-ml"), "{err}");
    assert!(!dir.path().join("runs").exists());
}

/// HumanEval's fixture (5 problems: 1 / 1 / 3), its programs in a real sandbox.
async fn humaneval() -> Arc<dyn Benchmark> {
    let problems = ann_bench_humaneval::load_problems(&datasets().join("humaneval/humaneval-sample.jsonl")).unwrap();
    let config = ann_bench_humaneval::HumanEvalConfig { split_sizes: [1, 1, 3], ..Default::default() };
    let sandbox = ann_bench_humaneval::Sandbox::new(config.sandbox.clone()).await.unwrap();
    Arc::new(ann_bench_humaneval::HumanEval::from_problems(&problems, &config, Arc::new(sandbox)).unwrap())
}

#[tokio::test]
async fn humaneval_with_tools_runs_the_prompt_in_the_python_tool_before_verifying() {
    // Every text answer is a solution of the fixture's first problem; tool-offering requests get
    // the fake server's deterministic call: the first fenced block of the last user message as the
    // python program (here a piece of the task's text, which Python refuses: an error result).
    let server = FakeServer::start(
        FakeServerConfig::default()
            .keeping_requests()
            .with_reply(|_| "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```".into()),
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
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), humaneval().await);
    opts.backend = BackendSource::Model(model);
    let mut config = config("humaneval", Some(true));
    config.forward.routing = ann_graph::RoutingMode::Fixed;
    let outcome = ann_experiment::evaluate_baseline(&config, Baseline::Start, Split::Test, &opts).await.unwrap();
    assert_eq!(outcome.summary.as_ref().map(|s| s.n), Some(3));
    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body).collect();
    let offered: Vec<_> = bodies.iter().filter(|b| b["tools"].is_array()).collect();
    assert!(!offered.is_empty(), "the verifier was offered python");
    assert!(offered.iter().all(|b| b["tools"][0]["function"]["name"] == "python"));
    let results: Vec<&str> = bodies
        .iter()
        .flat_map(|b| b["messages"].as_array().unwrap().iter())
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str())
        .collect();
    // Each program ran in the sandbox and its status came back to the model.
    assert!(!results.is_empty(), "tool results went back to the model");
    assert!(results.iter().all(|r| r.starts_with("error from tool python: exit status 1\nstderr:")), "{results:?}");
    server.shutdown().await;
}

#[test]
fn benchmark_tools_and_a_network_file_are_exclusive() {
    let text = "name = \"x\"\n[benchmark]\nname = \"math\"\ntools = true\nnetwork = \"net.json\"\n";
    let err = format!("{:#}", ExperimentConfig::from_toml(text, "x.toml").unwrap_err());
    assert!(err.contains("benchmark.tools") && err.contains("benchmark.network") && err.contains("net.json"), "{err}");
    let typo = "name = \"x\"\n[benchmark]\nname = \"math\"\ntools = \"yes\"\n";
    let err = format!("{:#}", ExperimentConfig::from_toml(typo, "x.toml").unwrap_err());
    assert!(err.contains("tools"), "{err}");
}
