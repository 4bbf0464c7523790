//! End-to-end tests of experiments: config parsing, the benchmark adapter, runs, resume, networks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ann_eval::{Benchmark, BenchmarkEvaluator, Evaluator, Split};
use ann_experiment::{BackendSource, Baseline, ExperimentConfig, Report, RunOptions, check_network};
use ann_graph::Network;
use ann_llm::{BudgetLedger, SharedModel};
use ann_test_support::ScriptedModel;

mod mmlu_fixture;
use mmlu_fixture::{fixture_benchmark, workspace};

const SMALL: &str = r#"
name = "small"
[benchmark]
name = "mmlu-ml"
[model]
max_tokens = 32
optimizer_max_tokens = 64
[train]
epochs = 1
batch_size = 2
patience = 0
[report]
bootstrap_resamples = 200
"#;

fn fixed_clock() -> ann_experiment::Clock {
    Arc::new(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

fn options(dir: &Path, model: SharedModel) -> RunOptions {
    RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Model(model),
        clock: fixed_clock(),
        progress: None,
        benchmark: Some(fixture_benchmark()),
        interrupt: None,
    }
}

/// A model that answers every call "Answer: A" (routing, gradients and patches unparsable: data).
fn always_a() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new("scripted").fallback(|_| Ok("Reasoning.\nAnswer: A".into())))
}

fn read_report(run_dir: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap()
}

/// What the run in `run_dir` has spent under its budget: `budget.json`, written when the run
/// stopped, which is also the last line of its log `budget.jsonl`.
fn budget_file(run_dir: &Path) -> BudgetLedger {
    let snapshot = serde_json::from_str(&std::fs::read_to_string(run_dir.join("budget.json")).unwrap()).unwrap();
    assert_eq!(ann_experiment::read_ledger(run_dir).unwrap(), Some(snapshot), "budget.jsonl ends with budget.json");
    snapshot
}

/// What a run stopped by its budget did in each part: backend calls made by the start, by a resume
/// with the same config and by a resume with the limit lifted, and the final report.
struct Interrupted {
    run_dir: PathBuf,
    /// The error that stopped the start, and whether the trainer had written a checkpoint by then.
    stopped_by: String,
    checkpointed: bool,
    upstream: [usize; 3],
    report: Report,
}

/// Start the small run with at most `max_calls` backend calls, resume it with the same config (it
/// must stop again at once, paying for nothing), then lift the limit and resume it to the end.
async fn stop_resume_raise(dir: &Path, max_calls: u64) -> Interrupted {
    let config = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    let mut tight = config.clone();
    tight.budget.max_calls = Some(max_calls);
    let first = always_a();
    let stopped_by = format!("{:#}", ann_experiment::start(&tight, &options(dir, first.clone())).await.unwrap_err());
    assert!(stopped_by.contains("ann resume") && stopped_by.contains(&format!("limit {max_calls}")), "{stopped_by}");
    let run_dir = dir.join("runs/small-20270115T080000Z");
    let checkpointed = run_dir.join("checkpoint.json").is_file();
    let stopped = budget_file(&run_dir);
    assert_eq!(stopped.committed().calls, first.calls() as u64, "every backend call is counted");
    assert!(stopped.committed().calls <= max_calls, "{stopped:?}");

    // The same budget again: the calls so far come from the cache for free, the next one is refused.
    let again = always_a();
    let err = ann_experiment::resume(&run_dir, &options(dir, again.clone())).await.unwrap_err();
    assert!(format!("{err:#}").contains(&format!("limit {max_calls}")), "{err:#}");
    assert_eq!(again.calls(), 0, "a resumed run spends only what is left of the run's budget");
    assert!(first.calls() + again.calls() <= max_calls as usize);
    assert_eq!(budget_file(&run_dir), stopped);
    assert!(!run_dir.join("report.json").exists());

    // Lift the limit in the run's config and finish.
    std::fs::write(run_dir.join("config.toml"), config.to_toml().unwrap()).unwrap();
    let last = always_a();
    let outcome = ann_experiment::resume(&run_dir, &options(dir, last.clone())).await.unwrap();
    assert_eq!(outcome.report, read_report(&run_dir));
    Interrupted {
        run_dir,
        stopped_by,
        checkpointed,
        upstream: [first.calls(), again.calls(), last.calls()],
        report: outcome.report,
    }
}

/// The uninterrupted small run: its report and how many calls reached the backend.
async fn uninterrupted() -> (Report, usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    let model = always_a();
    let report = ann_experiment::start(&config, &options(dir.path(), model.clone())).await.unwrap().report;
    (report, model.calls())
}

/// The resumed run ends as the uninterrupted one did, each backend call paid once, the whole run's
/// spend in its report and `budget.json`.
fn assert_same_run(run: &Interrupted, reference: &Report, reference_calls: usize) {
    let r = &run.report;
    assert_eq!(
        (&r.validation, &r.test, &r.steps, &r.stop, r.network_changed),
        (&reference.validation, &reference.test, &reference.steps, &reference.stop, reference.network_changed)
    );
    assert_eq!(run.upstream.iter().sum::<usize>(), reference_calls, "no call paid twice: {:?}", run.upstream);
    assert_eq!(r.budget_spent, reference.budget_spent, "the report counts the whole run");
    assert_eq!(budget_file(&run.run_dir), BudgetLedger { spent: r.budget_spent, ..BudgetLedger::default() });
}

#[test]
fn demo_config_parses_and_maps_onto_the_training_config() {
    // The demo: the built-in answer-format benchmark, trained in the append local form.
    let config = ExperimentConfig::load(&workspace().join("experiments/demo.toml")).unwrap();
    assert_eq!((config.name.as_str(), config.benchmark.name.as_str()), ("demo", "answer-format"));
    let train = config.train_config(ann_experiment::answer_format::FORMAT, config.prices());
    assert_eq!((train.epochs, train.batch_size, train.local_form), (1, 4, ann_textgrad::LocalForm::Append));
    assert_eq!(train.forward.max_tokens, Some(12));
    let again = ExperimentConfig::from_toml(&config.to_toml().unwrap(), "copy").unwrap();
    assert_eq!(again, config);

    // The defaults of `ann eval`/`construct`/`adapt`: a small MMLU-ML experiment.
    let config = ExperimentConfig::load(&workspace().join("experiments/mmlu-ml-small.toml")).unwrap();
    assert_eq!(config.name, "mmlu-ml-small");
    assert_eq!(
        (config.benchmark.train, config.benchmark.validation, config.benchmark.test),
        (Some(2), Some(3), Some(6))
    );
    let train = config.train_config("Answer: X", config.prices());
    assert_eq!((train.epochs, train.batch_size), (1, 2));
    assert_eq!(train.rules.answer_format.as_deref(), Some("Answer: X"));
    assert_eq!(train.forward.max_tokens, Some(32));
    // Its compact network keeps the benchmark's answer format.
    let Some(ann_experiment::StartNetwork::File(network)) = &config.benchmark.network else { panic!("a file") };
    let net = Network::load(&workspace().join(network)).unwrap();
    net.validate(&train.rules).unwrap();
    // The config survives its own serialization (what a run directory keeps).
    let again = ExperimentConfig::from_toml(&config.to_toml().unwrap(), "copy").unwrap();
    assert_eq!(again, config);
}

#[test]
fn config_errors_name_the_bad_key() {
    let check = |text: &str, needles: &[&str]| {
        let err = format!("{:#}", ExperimentConfig::from_toml(text, "bad.toml").unwrap_err());
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
    };
    check(&format!("{SMALL}\n[budget]\nmax_tokenz = 5\n"), &["bad.toml", "unknown field `max_tokenz`", "max_tokens"]);
    check(&SMALL.replace("epochs = 1", "epochs = 1\nepohcs = 2"), &["unknown field `epohcs`"]);
    check(&SMALL.replace("max_tokens = 32", "max_tokens = 32\ncolour = 1"), &["unknown field `colour`"]);
    check(&format!("{SMALL}\n[train.ablations]\nno_gates = true\n"), &["unknown field `no_gates`"]);
    check(&format!("{SMALL}\nsecret = 1\n"), &["unknown field `secret`"]);
    check(
        &SMALL.replace("mmlu-ml\"\n[model]", "mmlu-ml\"\n[model]\nbackend = \"gpu\""),
        &["backend", "unknown variant `gpu`"],
    );
    check(&SMALL.replace("name = \"small\"", "name = \"Small Run\""), &["`name` must be a slug"]);
    check(&SMALL.replace("batch_size = 2", "batch_size = 0"), &["batch_size"]);
}

#[tokio::test]
async fn a_benchmark_is_an_evaluator_of_its_own_examples() {
    let benchmark = fixture_benchmark();
    let evaluator = BenchmarkEvaluator(benchmark.clone());
    let test = &benchmark.examples(Split::Test)[0];
    let gold = test.reference.clone().unwrap();
    let right = evaluator.evaluate(test, &format!("Because.\nAnswer: {gold}")).await.unwrap();
    assert_eq!((right.score, right.passed), (1.0, true));
    let wrong_letter = if gold == "A" { "B" } else { "A" };
    let wrong = evaluator.evaluate(test, &format!("Answer: {wrong_letter}")).await.unwrap();
    assert_eq!((wrong.score, wrong.passed), (0.0, false));
    assert!(wrong.feedback.contains(&format!("correct is {gold}")), "{}", wrong.feedback);
    assert_eq!(evaluator.extract_answer("Answer: C"), Some("C".to_string()));
    // The split the trainer gets is the benchmark's, metadata and all.
    assert_eq!(ann_experiment::split_examples(benchmark.as_ref(), Split::Test), benchmark.examples(Split::Test));
}

#[test]
fn every_benchmark_starting_network_validates_with_its_answer_format() {
    let formats: [(&str, &str); 8] = [
        ("ann-bench-mmlu-ml/network.json", ann_bench_mmlu_ml::ANSWER_FORMAT),
        ("ann-bench-math/network.json", ann_bench_math::ANSWER_FORMAT),
        ("ann-bench-math/network-tools.json", ann_bench_math::ANSWER_FORMAT),
        ("ann-bench-humaneval/network.json", ann_bench_humaneval::prompts::ANSWER_FORMAT),
        ("ann-bench-humaneval/network-tools.json", ann_bench_humaneval::prompts::ANSWER_FORMAT),
        ("ann-bench-creative-writing/network.json", ann_bench_creative_writing::ANSWER_FORMAT),
        ("ann-bench-creative-writing/network-trivia.json", ann_bench_creative_writing::trivia::ANSWER_FORMAT),
        ("ann-bench-creative-writing/network-dabench.json", ann_bench_creative_writing::dabench::ANSWER_FORMAT),
    ];
    let crates = workspace().join("crates");
    let mut found: Vec<String> = std::fs::read_dir(&crates)
        .unwrap()
        .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("network") && name.ends_with(".json")
        })
        .map(|p| p.strip_prefix(&crates).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|p| p.starts_with("ann-bench-"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = formats.iter().map(|(p, _)| p.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "a benchmark network without an answer format in this test");
    for (path, format) in formats {
        let net = Network::load(&crates.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        net.validate(&ann_graph::ValidationRules::with_answer_format(format))
            .unwrap_or_else(|v| panic!("{path}: {v:?}"));
    }
    // And through the benchmark itself, as a run checks it.
    let benchmark = fixture_benchmark();
    let net = Network::from_json(benchmark.starting_network()).unwrap();
    check_network(&net, benchmark.as_ref()).unwrap();
    let mut broken = net.clone();
    broken.layers.last_mut().unwrap().output_spec = "anything".into();
    let err = check_network(&broken, benchmark.as_ref()).unwrap_err().to_string();
    assert!(err.contains("mmlu-ml"), "{err}");
}

#[tokio::test]
async fn a_run_writes_its_directory_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = always_a();
    let config = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    let outcome = ann_experiment::start(&config, &options(dir.path(), model.clone())).await.unwrap();

    assert_eq!(outcome.run_dir, dir.path().join("runs/small-20270115T080000Z"));
    for file in [
        "config.toml",
        "budget.json",
        "budget.jsonl",
        "checkpoint.json",
        "journal.jsonl",
        "network-initial.json",
        "network-trained.json",
        "evaluations/test-initial.jsonl",
        "evaluations/test-trained.jsonl",
        "evaluations/validation-initial.jsonl",
        "report.json",
        "report.md",
    ] {
        assert!(outcome.run_dir.join(file).is_file(), "{file} missing");
    }
    // Every forward leaves its trace: the trainer's and each evaluation's, one example line per
    // evaluated example.
    assert!(outcome.run_dir.join("traces/start-validation.jsonl").is_file());
    for name in ["validation-initial", "validation-trained", "test-initial", "test-trained"] {
        let text = |dir: &str| std::fs::read_to_string(outcome.run_dir.join(format!("{dir}/{name}.jsonl"))).unwrap();
        let traced = text("traces").lines().filter(|l| l.starts_with(r#"{"event":"example""#)).count();
        assert_eq!(traced, text("evaluations").lines().count(), "{name}");
    }
    assert_eq!(ExperimentConfig::load(&outcome.run_dir.join("config.toml")).unwrap(), config);

    let report = read_report(&outcome.run_dir);
    assert_eq!(report, outcome.report);
    let benchmark = fixture_benchmark();
    let expected = |split| {
        let examples = benchmark.examples(split);
        examples.iter().filter(|e| e.reference.as_deref() == Some("A")).count() as f64 / examples.len() as f64
    };
    assert_eq!(
        (report.name.as_str(), report.benchmark.as_str(), report.backend.as_str()),
        ("small", "mmlu-ml", "scripted:scripted")
    );
    assert_eq!(report.started_at, "2027-01-15T08:00:00Z");
    assert_eq!(report.examples.values().copied().collect::<Vec<_>>(), vec![1, 2, 1]);
    let test = report.test.initial.as_ref().unwrap();
    assert_eq!((test.n, test.mean), (1, expected(Split::Test)));
    assert_eq!(report.test.trained.as_ref().unwrap().mean, expected(Split::Test));
    assert_eq!(report.validation.initial.as_ref().unwrap().mean, expected(Split::Validation));
    assert_eq!(report.test.paired.as_ref().unwrap().difference, 0.0);
    // Unparsable gradients and patches are rejected steps, never errors; nothing changes.
    assert_eq!(report.steps.accepted, 0);
    assert_eq!(report.steps.steps, report.steps.rejected + report.steps.skipped + report.steps.accepted);
    assert!(!report.network_changed);
    // The meter saw every call, the re-evaluations came from the cache, the budget only backend calls.
    assert_eq!(report.budget_spent.calls, model.calls() as u64);
    assert_eq!(budget_file(&outcome.run_dir), BudgetLedger { spent: report.budget_spent, ..BudgetLedger::default() });
    assert!(report.cost.cache_hits > 0 && report.cost.calls > report.budget_spent.calls, "{:?}", report.cost);
    let md = std::fs::read_to_string(outcome.run_dir.join("report.md")).unwrap();
    assert!(md.contains("# Run `small`: mmlu-ml"), "{md}");
    assert!(md.contains("| test |"), "{md}");
    assert!(md.contains("Paired bootstrap"), "{md}");
}

#[tokio::test]
async fn an_interrupted_run_resumes_to_the_same_report() {
    // Uninterrupted reference.
    let reference_dir = tempfile::tempdir().unwrap();
    let config = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    let reference = ann_experiment::start(&config, &options(reference_dir.path(), always_a())).await.unwrap().report;

    // The same run with a budget that stops it after the initial validation.
    let dir = tempfile::tempdir().unwrap();
    let mut tight = config.clone();
    tight.budget.max_calls = Some(8);
    let err = ann_experiment::start(&tight, &options(dir.path(), always_a())).await.unwrap_err();
    assert!(format!("{err:#}").contains("ann resume"), "{err:#}");
    let run_dir = dir.path().join("runs/small-20270115T080000Z");
    assert!(run_dir.join("checkpoint.json").is_file());
    assert!(!run_dir.join("report.json").exists());

    // Raise the budget in the run's config and resume.
    std::fs::write(run_dir.join("config.toml"), config.to_toml().unwrap()).unwrap();
    let model = always_a();
    let resumed = ann_experiment::resume(&run_dir, &options(dir.path(), model.clone())).await.unwrap();
    assert_eq!(resumed.run_dir, run_dir);
    let report = read_report(&run_dir);
    assert_eq!(
        (&report.validation, &report.test, &report.steps, &report.stop, report.network_changed),
        (&reference.validation, &reference.test, &reference.steps, &reference.stop, reference.network_changed)
    );
    // The answers of the interrupted part came from the cache.
    assert!(report.cost.cache_hits > 0);

    let missing = ann_experiment::resume(dir.path(), &options(dir.path(), always_a())).await.unwrap_err();
    assert!(missing.to_string().contains("not a run directory"), "{missing}");
}

#[tokio::test]
async fn a_run_stopped_by_its_budget_stays_within_it_across_resumes_until_it_is_raised() {
    let (reference, reference_calls) = uninterrupted().await;
    // Eight calls: the initial validation is done and checkpointed, training is not.
    let dir = tempfile::tempdir().unwrap();
    let run = stop_resume_raise(dir.path(), 8).await;
    assert!(run.checkpointed && run.stopped_by.contains("the budget ran out during training"), "{}", run.stopped_by);
    assert!(run.upstream[0] > 0 && run.upstream[2] > 0, "{:?}", run.upstream);
    assert_same_run(&run, &reference, reference_calls);

    // One call short: training is over, the final evaluation on the test split stops.
    let dir = tempfile::tempdir().unwrap();
    let run = stop_resume_raise(dir.path(), reference_calls as u64 - 1).await;
    assert!(run.checkpointed && run.stopped_by.contains("evaluating test-initial"), "{}", run.stopped_by);
    assert_eq!(run.upstream[1..], [0, 1]);
    assert_same_run(&run, &reference, reference_calls);
}

/// Deleting the ledger (`budget.json` and `budget.jsonl`) does not give a run its budget back: the spend is rebuilt from the
/// checkpoint, so only what the checkpoint does not record (calls after it) can be spent again.
#[tokio::test]
async fn a_deleted_budget_file_does_not_reset_the_runs_spend() {
    let dir = tempfile::tempdir().unwrap();
    let mut tight = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    tight.budget.max_calls = Some(8);
    let first = always_a();
    ann_experiment::start(&tight, &options(dir.path(), first.clone())).await.unwrap_err();
    let run_dir = dir.path().join("runs/small-20270115T080000Z");
    assert!(run_dir.join("checkpoint.json").is_file());
    std::fs::remove_file(run_dir.join("budget.json")).unwrap();
    // The log alone still holds the ledger; without it too, the spend is rebuilt.
    assert!(ann_experiment::read_ledger(&run_dir).unwrap().is_some());
    std::fs::remove_file(run_dir.join("budget.jsonl")).unwrap();

    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("checkpoint.json")).unwrap()).unwrap();
    let checkpointed = checkpoint["cost"]["calls"].as_u64().unwrap();
    assert!(checkpointed > 0);

    let again = always_a();
    let err = ann_experiment::resume(&run_dir, &options(dir.path(), again.clone())).await.unwrap_err();
    assert!(format!("{err:#}").contains("limit 8"), "{err:#}");
    assert!(
        again.calls() as u64 <= 8 - checkpointed,
        "the rebuilt spend counts the checkpointed calls: {} new calls, {checkpointed} checkpointed",
        again.calls()
    );
    assert!(budget_file(&run_dir).committed().calls <= 8);
}

#[tokio::test]
async fn a_budget_stop_during_the_initial_validation_resumes_paying_no_call_twice() {
    let (reference, reference_calls) = uninterrupted().await;
    // One call: the run stops inside the initial validation, before the trainer's first checkpoint;
    // resuming begins the training anew and the call made comes from the cache.
    let dir = tempfile::tempdir().unwrap();
    let run = stop_resume_raise(dir.path(), 1).await;
    assert!(!run.checkpointed, "stopped before the first checkpoint");
    assert_eq!(run.upstream[..2], [1, 0]);
    assert!(run.run_dir.join("checkpoint.json").is_file());
    assert_same_run(&run, &reference, reference_calls);
}

#[tokio::test]
async fn the_api_key_never_reaches_the_run_directory_or_the_cache() {
    use ann_llm_openai::{ApiKey, OpenAiConfig, OpenAiModel};
    use ann_test_support::server::{FakeServer, FakeServerConfig};

    const SECRET: &str = "sk-test-secret-0123456789";
    let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
    let model = OpenAiModel::new(OpenAiConfig::new(server.url(), "fake-model"), Some(ApiKey::new(SECRET))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ExperimentConfig::from_toml(SMALL, "small.toml").unwrap();
    let outcome = ann_experiment::start(&config, &options(dir.path(), Arc::new(model))).await.unwrap();
    assert!(server.request_count() > 0);
    assert!(outcome.report.backend.contains("fake-model"), "{}", outcome.report.backend);

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { files(&path, out) } else { out.push(path) }
        }
    }
    let mut all = Vec::new();
    files(dir.path(), &mut all);
    assert!(
        all.iter().any(|f| f.ends_with("report.json")) && all.iter().any(|f| f.to_string_lossy().contains("sqlite"))
    );
    for file in all {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the key is in {}", file.display());
    }
    server.shutdown().await;
}

/// A benchmark with one benchmark crate's task description, answer format and starting network,
/// and no examples: what building and validating a network needs, without data or a sandbox.
struct Facade {
    name: &'static str,
    task: String,
    format: &'static str,
    network: &'static str,
}

#[async_trait::async_trait]
impl Benchmark for Facade {
    fn name(&self) -> &str {
        self.name
    }
    fn task_description(&self) -> &str {
        &self.task
    }
    fn answer_format(&self) -> &str {
        self.format
    }
    fn examples(&self, _split: Split) -> &[ann_eval::Example] {
        &[]
    }
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
    fn starting_network(&self) -> &str {
        self.network
    }
    async fn evaluate(
        &self,
        _example: &ann_eval::Example,
        _output: &str,
    ) -> Result<ann_eval::Evaluation, ann_eval::EvalError> {
        Ok(ann_eval::Evaluation::fail("a facade has no examples"))
    }
}

/// The four benchmarks of `ann_experiment::BENCHMARKS`, as facades.
fn facades() -> Vec<Facade> {
    vec![
        Facade {
            name: "mmlu-ml",
            task: ann_bench_mmlu_ml::prompts::task_description().into(),
            format: ann_bench_mmlu_ml::ANSWER_FORMAT,
            network: include_str!("../../ann-bench-mmlu-ml/network.json"),
        },
        Facade {
            name: "math",
            task: ann_bench_math::prompts::task_description().into(),
            format: ann_bench_math::ANSWER_FORMAT,
            network: ann_bench_math::STARTING_NETWORK,
        },
        Facade {
            name: "humaneval",
            task: ann_bench_humaneval::prompts::task_description(),
            format: ann_bench_humaneval::prompts::ANSWER_FORMAT,
            network: ann_bench_humaneval::STARTING_NETWORK,
        },
        Facade {
            name: "creative-writing",
            task: ann_bench_creative_writing::prompts::task_description().into(),
            format: ann_bench_creative_writing::ANSWER_FORMAT,
            network: include_str!("../../ann-bench-creative-writing/network.json"),
        },
        Facade {
            name: "answer-format",
            task: ann_experiment::answer_format::AnswerFormat::new().task_description().into(),
            format: ann_experiment::answer_format::FORMAT,
            network: include_str!("../src/answer_format_network.json"),
        },
    ]
}

#[test]
fn every_baseline_network_validates_for_every_benchmark() {
    let benchmarks = facades();
    let names: Vec<&str> = benchmarks.iter().map(|b| b.name).collect();
    let known: Vec<&str> =
        ann_experiment::BENCHMARKS.iter().chain(&ann_experiment::BUILTIN_BENCHMARKS).copied().collect();
    assert_eq!(names, known);
    for benchmark in &benchmarks {
        for baseline in Baseline::ALL {
            let net = baseline.network(benchmark).unwrap();
            check_network(&net, benchmark).unwrap_or_else(|e| panic!("{baseline} on {}: {e:#}", benchmark.name));
            if baseline == Baseline::Start {
                assert_eq!(net, Network::from_json(benchmark.network).unwrap());
            } else {
                assert_eq!(net.task_description, benchmark.task, "{baseline} states the benchmark's task");
                let last = net.layers.last().unwrap();
                assert_eq!(last.aggregators.len(), 1, "{baseline}: fixed, so no routing call");
            }
        }
    }
}

fn with_baselines(list: &str) -> String {
    SMALL.replace("name = \"small\"\n", &format!("name = \"small\"\nbaselines = {list}\n"))
}

#[tokio::test]
async fn a_run_with_baselines_writes_their_rows_to_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = always_a();
    let config = ExperimentConfig::from_toml(
        &with_baselines(r#"["direct", "cot", "self_consistency", "debate", "start"]"#),
        "baselines.toml",
    )
    .unwrap();
    let outcome = ann_experiment::start(&config, &options(dir.path(), model.clone())).await.unwrap();
    let report = read_report(&outcome.run_dir);
    assert_eq!(report, outcome.report);
    let order: Vec<Baseline> = report.baselines.iter().map(|b| b.baseline).collect();
    assert_eq!(order, config.baselines, "the config's order");

    // Every network answers "Answer: A": the same score as the trained network, no difference.
    let trained = report.test.trained.as_ref().unwrap();
    for b in &report.baselines {
        let test = b.test.as_ref().unwrap();
        assert_eq!((test.n, test.mean), (trained.n, trained.mean), "{}", b.baseline);
        let paired = b.trained_vs_baseline.as_ref().unwrap();
        assert_eq!((paired.mean_b, paired.difference), (trained.mean, 0.0), "{}", b.baseline);
    }
    // Calls per test example (one test example): 1, 1, 5 samples, 3 agents x (1 + 2 rounds).
    let calls: Vec<u64> = report.baselines.iter().map(|b| b.cost.calls).collect();
    assert_eq!(calls[..4], [1, 1, 5, 9]);
    assert_eq!(report.baselines[4].cost, report.costs.test_initial, "start is the initial network's test run");
    assert!(report.costs.test_initial.calls > 0 && report.costs.training.calls > 0, "{:?}", report.costs);

    // Self-consistency: five distinct samples of one prompt; debate: two rounds whatever the config.
    let requests = model.requests();
    let of = |prefix: char| -> Vec<&ann_llm::ChatRequest> {
        requests
            .iter()
            .filter(|r| r.tags.get("layer").map(String::as_str) == Some("answer"))
            .filter(|r| r.tags.get("agent").is_some_and(|a| a.starts_with(prefix)))
            .collect()
    };
    let samples = of('s');
    let mut indices: Vec<u32> = samples.iter().map(|r| r.sample_index).collect();
    indices.sort();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    assert!(samples.iter().all(|r| r.temperature == Some(0.7)), "{samples:?}");
    // Nine debate calls (cost above); rounds 1 and 2 show the same peer answers (the scripted model
    // always says the same), so round 2 repeats round 1's requests and the cache answers it.
    assert_eq!(of('d').len(), 6);

    for file in ["direct", "cot", "self_consistency", "debate", "start"] {
        assert!(outcome.run_dir.join(format!("baselines/{file}.json")).is_file(), "{file}");
    }
    for file in ["direct", "cot", "self_consistency", "debate"] {
        assert!(outcome.run_dir.join(format!("evaluations/test-baseline-{file}.jsonl")).is_file(), "{file}");
    }
    let md = std::fs::read_to_string(outcome.run_dir.join("report.md")).unwrap();
    assert!(md.contains("Baselines on test"), "{md}");
    for row in ["| direct |", "| cot |", "| self_consistency |", "| debate |", "| start |"] {
        assert!(md.contains(row), "{row} not in {md}");
    }

    // Replayed from the cache (no backend call), the run reports the same scores and costs.
    let replay = always_a();
    let mut again = options(dir.path(), replay.clone());
    again.runs_dir = dir.path().join("replay");
    let replayed = ann_experiment::start(&config, &again).await.unwrap().report;
    assert_eq!(replay.calls(), 0);
    assert_eq!(
        (&replayed.baselines, &replayed.costs, &replayed.test),
        (&report.baselines, &report.costs, &report.test)
    );
}

#[test]
fn baseline_config_errors_name_the_key() {
    let check = |text: &str, needles: &[&str]| {
        let err = format!("{:#}", ExperimentConfig::from_toml(text, "bad.toml").unwrap_err());
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
    };
    check(
        &with_baselines(r#"["direct", "tot"]"#),
        &["bad.toml", "baselines", "unknown variant `tot`", "self_consistency"],
    );
    check(&with_baselines(r#"["cot", "cot"]"#), &["`baselines` lists `cot` more than once"]);
    // An empty list is the default and is not written back.
    let config = ExperimentConfig::from_toml(&with_baselines("[]"), "ok.toml").unwrap();
    assert!(config.baselines.is_empty() && !config.to_toml().unwrap().contains("baselines"));
}

#[test]
fn overrides_and_limits_apply_before_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.toml");
    std::fs::write(&path, SMALL).unwrap();
    let set = |overrides: &[&str]| {
        let owned: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        ExperimentConfig::load_with_overrides(&path, &owned)
    };
    let config = set(&[
        "train.epochs=7",
        r#"baselines=["cot", "start"]"#,
        "model.name=gpt-4o",
        "benchmark.test = 3",
        "budget.max_dollars=2.5",
    ])
    .unwrap();
    assert_eq!(config.train.epochs, 7);
    assert_eq!(config.baselines, [Baseline::Cot, Baseline::Start]);
    assert_eq!((config.model.name.as_str(), config.benchmark.test), ("gpt-4o", Some(3)));
    assert_eq!(config.budget.max_dollars, Some(2.5));
    assert_eq!(set(&[]).unwrap(), ExperimentConfig::load(&path).unwrap());

    let err = |overrides: &[&str]| format!("{:#}", set(overrides).unwrap_err());
    let e = err(&["train.epohcs=1"]);
    assert!(e.contains("unknown field `epohcs`") && e.contains("small.toml"), "{e}");
    assert!(err(&["train.epochs"]).contains("KEY=VALUE"));
    assert!(err(&["name.part=1"]).contains("`name` is not a table"));
    assert!(err(&["train.batch_size=0"]).contains("batch_size"));

    let mut limited = config.clone();
    limited.limit(2);
    assert_eq!(
        (limited.benchmark.train, limited.benchmark.validation, limited.benchmark.test),
        (Some(2), Some(2), Some(2))
    );
    limited.benchmark.test = Some(1);
    limited.limit(5);
    assert_eq!(limited.benchmark.test, Some(1), "a limit never raises a size");
}

/// Every TOML file under `experiments/` (recursively), but the ablation files (which name an
/// experiment and switches: `cargo xtask reproduce --ablations` runs them, xtask's tests check them).
fn experiment_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.ends_with("paper/ablations") {
            continue;
        }
        if path.is_dir() {
            experiment_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_experiment_file_parses_and_the_paper_experiments_cover_the_four_benchmarks() {
    let root = workspace().join("experiments");
    let mut files = Vec::new();
    experiment_files(&root, &mut files);
    files.sort();
    let reference = root.join("paper/reference.toml");
    assert!(files.contains(&reference), "experiments/paper/reference.toml is missing");
    let benchmarks = facades();
    let mut paper = Vec::new();
    for file in files.iter().filter(|f| **f != reference) {
        let config = ExperimentConfig::load(file).unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        if file.parent() != Some(root.join("paper").as_path()) {
            continue;
        }
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        // One file per benchmark, named after it; `<benchmark>-tools` is its variant with tools.
        let base = match stem.strip_suffix("-tools") {
            Some(base) => {
                assert_eq!(config.benchmark.tools, Some(true), "{stem}: a tools variant sets benchmark.tools");
                base.to_string()
            }
            None => stem.clone(),
        };
        assert_eq!(config.benchmark.name, base, "{}: one file per benchmark, named after it", file.display());
        assert_eq!(config.name, format!("paper-{stem}"));
        assert_eq!(config.model.backend, ann_experiment::Backend::Openai, "{stem}");
        assert_eq!(config.model.name, "gpt-4o-mini", "{stem}: the paper's model");
        assert!(config.prices().price(&config.model.name).is_some(), "{stem}: the price table knows the model");
        assert_eq!(config.train.epochs, 20, "{stem}: the paper reportedly trained about 20 epochs");
        let b = &config.budget;
        assert!(b.max_dollars.is_some() && b.max_calls.is_some() && b.max_tokens.is_some(), "{stem}: {b:?}");
        assert!(config.baselines.contains(&Baseline::Start), "{stem}");
        // DABench reads the user's data: it has no facade here (its network is checked above).
        if let Some(benchmark) = benchmarks.iter().find(|f| f.name == base) {
            for &baseline in &config.baselines {
                check_network(&baseline.network(benchmark).unwrap(), benchmark).unwrap();
            }
        }
        paper.push(stem);
    }
    paper.sort();
    let mut expected: Vec<String> = ann_experiment::BENCHMARKS.map(String::from).to_vec();
    expected.extend(["dabench", "humaneval-tools", "math-tools"].map(String::from));
    expected.sort();
    assert_eq!(paper, expected);

    // The reference numbers: valid TOML, with their provenance and an entry per benchmark
    // (xtask's tests read it with the types `cargo xtask reproduce` uses).
    let text = std::fs::read_to_string(&reference).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert!(table["paper"]["provenance"].as_str().unwrap().contains("public summaries"));
    for name in expected.iter().filter(|name| !name.ends_with("-tools")) {
        assert!(table["benchmarks"].get(name).is_some(), "reference.toml has no [benchmarks.{name}]");
    }
}
