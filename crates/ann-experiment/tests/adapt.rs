//! New teams after training, against the fake OpenAI-compatible server: a run trained on MMLU-ML
//! is the library of `adapt_to_file` for Trivia CW (a benchmark) and for a task file; the prompt
//! shows the trained network and its validation score, the provenance names the reused layers, and
//! the adapted network trains further as a starting network file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_bench_mmlu_ml::MmluMl;
use ann_eval::Benchmark;
use ann_experiment::adapt::{Reuse, provenance_path};
use ann_experiment::{AdaptTarget, BackendSource, ExperimentConfig, RunOptions, StartNetwork};
use ann_graph::{Layer, Network};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mmlu_fixture() -> Arc<dyn Benchmark> {
    let rows = ann_bench_mmlu_ml::load_rows(&workspace().join("datasets/mmlu-ml/mmlu-ml-sample.jsonl")).unwrap();
    let examples: Vec<_> = rows.iter().enumerate().map(|(i, r)| ann_bench_mmlu_ml::to_example(i, r)).collect();
    Arc::new(MmluMl::from_examples(&examples, &[2, 1, 1], 7).unwrap())
}

fn mmlu_network() -> Network {
    Network::from_json(mmlu_fixture().starting_network()).unwrap()
}

fn messages(body: &Value) -> Vec<String> {
    body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap_or_default().to_string()).collect()
}

fn is_construction(body: &Value) -> bool {
    messages(body).first().is_some_and(|m| m.starts_with("You design multi-agent LLM systems"))
}

/// The adapted network a model answers: MMLU's `understand` layer copied whole, its `solve` layer
/// rewritten for stories (same id), and a new `polish` layer with Trivia CW's answer format.
fn adapted_reply() -> String {
    let mmlu = mmlu_network();
    let mut solve: Layer = mmlu.layer("solve").unwrap().clone();
    solve.agents.truncate(1);
    solve.agents[0].prompt = "{task}\n\n{input}\n\nWrite the story.".into();
    solve.aggregators = vec![ann_graph::AggregatorName::Single];
    solve.default_aggregator = ann_graph::AggregatorName::Single;
    solve.output_spec = "A draft story.".into();
    let mut polish = solve.clone();
    polish.id = "polish".into();
    polish.agents[0].prompt = "{task}\n\n{input}\n\nPolish the story; name every answer.".into();
    polish.output_spec = ann_bench_creative_writing::trivia::ANSWER_FORMAT.into();
    let net = Network {
        version: 1,
        task_description: "t".into(),
        layers: vec![mmlu.layer("understand").unwrap().clone(), solve, polish],
    };
    serde_json::to_string(&net).unwrap()
}

async fn server(construction: impl Fn() -> String + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(FakeServerConfig::default().with_reply(move |body| {
        if is_construction(body) {
            construction()
        } else {
            "Reasoning.\nAnswer: A. William Shakespeare sailed the Pacific to Mars.".into()
        }
    }))
    .await
    .unwrap()
}

fn options(dir: &Path, server: &FakeServer, benchmark: Option<Arc<dyn Benchmark>>) -> RunOptions {
    let model = OpenAiModel::new(OpenAiConfig::new(server.url(), "fake-model"), None).unwrap();
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(Arc::new(model)),
        clock: Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        progress: None,
        benchmark,
        interrupt: None,
    }
}

fn config(benchmark: &str, data_path: Option<&Path>) -> ExperimentConfig {
    let path = data_path.map(|p| format!("data_path = {:?}\n", p.to_str().unwrap())).unwrap_or_default();
    ExperimentConfig::from_toml(
        &format!(
            "name = \"lib\"\n[benchmark]\nname = \"{benchmark}\"\n{path}train = 2\nvalidation = 1\ntest = 1\n\
             [cache]\nmode = \"off\"\n[train]\nepochs = 1\nbatch_size = 2\npatience = 0\n[construct]\nexamples = 1\n\
             [report]\nbootstrap_resamples = 100\n"
        ),
        "lib.toml",
    )
    .unwrap()
}

/// A finished MMLU-ML run (its trained network is MMLU's starting network: the server's replies
/// hold no usable patch).
async fn trained_run(dir: &Path, server: &FakeServer) -> PathBuf {
    let outcome =
        ann_experiment::start(&config("mmlu-ml", None), &options(dir, server, Some(mmlu_fixture()))).await.unwrap();
    assert_eq!(Network::load(&outcome.run_dir.join("network-trained.json")).unwrap(), mmlu_network());
    outcome.run_dir
}

#[tokio::test]
async fn adapt_to_a_benchmark_shows_the_library_and_records_the_reused_layers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(adapted_reply).await;
    let run = trained_run(dir.path(), &server).await;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let validation = report["validation"]["trained"]["mean"].as_f64().unwrap();

    let trivia = workspace().join("datasets/trivia-cw/trivia-cw-sample.jsonl");
    let target = config("trivia-cw", Some(&trivia));
    let out = dir.path().join("adapted.json");
    let provenance = ann_experiment::adapt_to_file(
        &target,
        std::slice::from_ref(&run),
        &AdaptTarget::Benchmark,
        &out,
        &options(dir.path(), &server, None),
    )
    .await
    .unwrap();

    // The construction prompt saw the trained network (its prompts) and its validation score.
    let calls: Vec<Value> = server.requests().into_iter().map(|r| r.body).filter(is_construction).collect();
    assert_eq!(calls.len(), 1);
    let prompt = &messages(&calls[0])[1];
    let name = run.file_name().unwrap().to_string_lossy().to_string();
    assert!(prompt.contains(&format!("Library network 1 `{name}` (validation score {validation:.3})")), "{prompt}");
    let understand_prompt = serde_json::to_string(&mmlu_network().layers[0].agents[0].prompt).unwrap();
    assert!(prompt.contains(&understand_prompt), "the library shows the trained prompts");
    assert!(prompt.contains(ann_bench_creative_writing::prompts::trivia_task_description()));

    // Provenance: which run, which layers were reused and how.
    let reuse: Vec<(String, Reuse, Option<String>)> =
        provenance.layers.iter().map(|l| (l.layer.clone(), l.reuse, l.from_layer.clone())).collect();
    assert_eq!(
        reuse,
        [
            ("understand".into(), Reuse::Identical, Some("understand".into())),
            ("solve".into(), Reuse::Adapted, Some("solve".into())),
            ("polish".into(), Reuse::New, None)
        ]
    );
    assert!(!provenance.construction.fallback_used);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(provenance_path(&out)).unwrap()).unwrap();
    assert_eq!(written["from"][0]["validation"].as_f64(), Some(validation));
    assert_eq!(written["from"][0]["run_dir"].as_str(), run.to_str());
    assert_eq!(written["layers"][0]["from_network"].as_str(), Some(name.as_str()));
    assert_eq!(written["target"], "trivia-cw");

    // The adapted network trains further on its benchmark as a starting network file.
    let adapted = Network::load(&out).unwrap();
    assert_eq!(adapted.task_description, ann_bench_creative_writing::prompts::trivia_task_description());
    let mut further = config("trivia-cw", Some(&trivia));
    further.name = "further".into();
    further.benchmark.network = Some(StartNetwork::File(out.clone()));
    let outcome = ann_experiment::start(&further, &options(dir.path(), &server, None)).await.unwrap();
    assert_eq!(Network::load(&outcome.run_dir.join("network-initial.json")).unwrap(), adapted);
    server.shutdown().await;
}

#[tokio::test]
async fn adapt_to_a_task_file_falls_back_to_the_direct_network_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(|| "no network here".to_string()).await;
    let run = trained_run(dir.path(), &server).await;
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        "task_description = \"Name the capital of the given country. End with FINAL: <city>.\"\n\
         answer_format = \"FINAL: <city>\"\nexamples = [\"France\", \"Japan\"]\n",
    )
    .unwrap();
    let out = dir.path().join("capitals.yaml");
    let provenance = ann_experiment::adapt_to_file(
        &config("mmlu-ml", None),
        std::slice::from_ref(&run),
        &AdaptTarget::Task(task.clone()),
        &out,
        &options(dir.path(), &server, None),
    )
    .await
    .unwrap();
    assert!(provenance.construction.fallback_used);
    assert_eq!(provenance.construction.attempts, 3);
    assert_eq!(provenance.construction.examples, ["task/0"], "[construct] examples = 1");
    let net = Network::load(&out).unwrap();
    assert_eq!(net.layers.len(), 1, "the direct baseline's one agent");
    assert!(net.layers[0].output_spec.contains("FINAL: <city>"));
    assert!(provenance.layers.iter().all(|l| l.reuse == Reuse::New));
    assert!(provenance_path(&out).ends_with("capitals.provenance.json") && provenance_path(&out).is_file());

    std::fs::write(&task, "task_description = \"x\"\nanswer_fmt = \"y\"\n").unwrap();
    let err = ann_experiment::adapt_to_file(
        &config("mmlu-ml", None),
        std::slice::from_ref(&run),
        &AdaptTarget::Task(task.clone()),
        &out,
        &options(dir.path(), &server, None),
    )
    .await
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("task.toml") && err.contains("answer_fmt"), "{err}");
    let err = ann_experiment::adapt_to_file(
        &config("mmlu-ml", None),
        &[dir.path().to_path_buf()],
        &AdaptTarget::Benchmark,
        &out,
        &options(dir.path(), &server, Some(mmlu_fixture())),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("network-trained.json"), "{err:#}");
    server.shutdown().await;
}
