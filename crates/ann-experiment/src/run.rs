//! Running an experiment: run directory, training, initial vs trained evaluation, report; resume.
//!
//! A run directory `runs/<name>-<UTC time>/` holds `config.toml` (the effective config, names of
//! environment variables only, never a secret), `network-initial.json`, `budget.json` (what the
//! run has spent under its budget), the trainer's `checkpoint.json`, `journal.jsonl` and `traces/`,
//! then `network-trained.json`, per-example `evaluations/<split>-<initial|trained>.jsonl`, the
//! configured baselines' networks `baselines/<name>.json` and their test evaluations
//! `evaluations/test-baseline-<name>.jsonl`, `report.json`, `report.md`, `report.html`,
//! `manifest.json` and `metrics.json`; after a stop, paid answers the response cache could not
//! store in `unsaved-responses.jsonl` ([`crate::unsaved`]).
//!
//! The budget is the run's, not a process's: its ledger is appended to `budget.jsonl` by the
//! budget's writer thread before every backend call is sent (its worst case reserved; the call
//! waits for it) and after it settles, `budget.json` holds it when the run stops, and a resumed
//! run starts its budget from it, so the limits hold for the start and all resumes together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ann_eval::stats::bootstrap_ci;
use ann_eval::{Benchmark, BenchmarkEvaluator, Evaluator, Example, Split};
use ann_graph::{Network, RoutingRecord, ValidationRules};
use ann_llm::{Budget, BudgetSpent, LedgerFile, PriceTable};
use ann_textgrad::{Cost, ExampleRun, RunFiles, StopReason, TrainConfig, TrainData, TrainError, TrainOutcome, Trainer};
use anyhow::{Context, bail};
use serde::Serialize;

use crate::baselines::Baseline;
use crate::benchmarks::{Subset, load_benchmark};
use crate::config::{ExperimentConfig, resolve};
use crate::evaluation::{Record, train_error};
use crate::models::RunModels;
use crate::report::{BaselineScores, Report, RunCosts, SplitScores, paired_present, present};
use crate::stack::{BackendSource, ModelStack, StackParts};
use crate::unsaved;

/// The effective config kept in a run directory.
pub const CONFIG_FILE: &str = "config.toml";
pub const REPORT_JSON: &str = "report.json";
pub const REPORT_MD: &str = "report.md";
/// What the run has spent (and holds reserved for calls in flight) when it last stopped, as a
/// [`ann_llm::BudgetLedger`]; while it runs, the ledger is appended to [`BUDGET_LOG`]
/// ([`LedgerFile`]).
pub const BUDGET_FILE: &str = LedgerFile::SNAPSHOT;
/// The run's append-only ledger: one [`ann_llm::BudgetLedger`] per line, the last one current.
pub const BUDGET_LOG: &str = LedgerFile::LOG;

/// The run's ledger as recorded in `run_dir` (its log's last line, else `budget.json`).
pub fn read_ledger(run_dir: &Path) -> anyhow::Result<Option<ann_llm::BudgetLedger>> {
    LedgerFile::read(run_dir).with_context(|| format!("reading the ledger of {}", run_dir.display()))
}

/// The caller's clock (libraries read no ambient time).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;
/// Receives what a run reports while it works: a closure `|line: &str|` for the lines, or a
/// [`RunObserver`](crate::progress::RunObserver) for phases, scores and the meter too.
pub type Progress = Arc<dyn crate::progress::RunObserver>;

/// What a run needs from its caller.
#[derive(Clone)]
pub struct RunOptions {
    /// Relative paths of the config (data, cache, model, network) resolve against this folder.
    pub base_dir: PathBuf,
    /// Where new run directories go (usually `<base>/runs`).
    pub runs_dir: PathBuf,
    pub backend: BackendSource,
    pub clock: Clock,
    pub progress: Option<Progress>,
    /// A ready benchmark used instead of loading `benchmark.name` from the data folder (tests,
    /// embedding applications); its splits are still cut to the config's sizes.
    pub benchmark: Option<Arc<dyn Benchmark>>,
    /// Set when the user interrupts the run (Ctrl-C): no new model call starts, calls in flight
    /// finish, and the run stops as at a budget limit, resumable from its last checkpoint.
    pub interrupt: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl RunOptions {
    pub(crate) fn say(&self, line: &str) {
        tracing::info!("{line}");
        if let Some(p) = &self.progress {
            p.line(line);
        }
    }

    pub(crate) fn phase(&self, phase: crate::progress::Phase) {
        if let Some(p) = &self.progress {
            p.phase(&phase);
        }
    }
}

/// Why a run stopped before its report, typed so that a caller tells a budget stop from the
/// user's interrupt (and both from a failure) without reading the message.
#[derive(Debug)]
pub struct RunStopped {
    pub reason: StopReason,
    /// What to tell the user (what stopped, and `ann resume`).
    pub message: String,
}

impl std::fmt::Display for RunStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunStopped {}

/// A network the format gate refused (a starting network, a baseline's, a network file to
/// evaluate): bad input, typed so that a caller can tell it from a failure.
#[derive(Debug)]
pub struct NetworkRejected {
    pub benchmark: String,
    pub violations: Vec<String>,
}

impl std::fmt::Display for NetworkRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the network does not validate for benchmark {}:\n  {}", self.benchmark, self.violations.join("\n  "))
    }
}

impl std::error::Error for NetworkRejected {}

/// The result of a finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub report: Report,
}

/// UTC time as a compact RFC 3339 stamp for folder names: `20261124T205700Z`.
pub fn folder_stamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string().replace(['-', ':'], "")
}

/// Start a new run of `config` in a fresh `runs/<name>-<UTC time>/` (created once the backend,
/// the benchmark and the starting network are ready, so a setup error leaves no empty run).
pub async fn start(config: &ExperimentConfig, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    config.check()?;
    let prepared = prepare(config, options).await?;
    let started = (options.clock)();
    let stem = format!("{}-{}", config.name, folder_stamp(started));
    std::fs::create_dir_all(&options.runs_dir).with_context(|| format!("creating {}", options.runs_dir.display()))?;
    // Two runs of one config started in the same second (two processes) get `-2`, `-3`, ...
    let mut run_dir = options.runs_dir.join(&stem);
    for n in 2.. {
        match std::fs::create_dir(&run_dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                run_dir = options.runs_dir.join(format!("{stem}-{n}"));
            }
            made => {
                made.with_context(|| format!("creating the run directory {}", run_dir.display()))?;
                break;
            }
        }
    }
    std::fs::write(run_dir.join(CONFIG_FILE), config.to_toml()?)
        .with_context(|| format!("writing {}", run_dir.join(CONFIG_FILE).display()))?;
    options.say(&format!("run directory {}", run_dir.display()));
    execute(config, prepared, &run_dir, options, started).await
}

/// Resume the run in `run_dir` (its `config.toml`, and its checkpoint and `budget.json` when it
/// has them) and finish its evaluation. A run stopped before its first checkpoint (during the
/// initial validation) begins its training anew; the calls it made come from the response cache.
pub async fn resume(run_dir: &Path, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    let path = run_dir.join(CONFIG_FILE);
    if !path.is_file() {
        bail!("{} is not a run directory: it has no {CONFIG_FILE}", run_dir.display());
    }
    let config = ExperimentConfig::load(&path)?;
    let started = (options.clock)();
    options.say(&format!("resuming {}", run_dir.display()));
    let prepared = prepare(&config, options).await?;
    execute(&config, prepared, run_dir, options, started).await
}

/// The parts of an experiment shared by training and plain evaluation.
pub struct Prepared {
    pub benchmark: Arc<dyn Benchmark>,
    /// The worker's stack (`models.worker`).
    pub stack: ModelStack,
    /// Every model of the run: worker, optimiser, profiles.
    pub models: RunModels,
    /// The benchmark as the evaluator training and testing score with.
    pub evaluator: Arc<dyn Evaluator>,
    pub train_config: TrainConfig,
    pub trainer: Trainer,
    pub start: Network,
    /// The configured baselines and their networks (validated; `start` is the starting network).
    pub baselines: Vec<(Baseline, Network)>,
    pub prices: PriceTable,
}

impl Prepared {
    /// Forward `net` on `examples` with the run's model stack and score it with the benchmark
    /// ([`ann_textgrad::evaluate`]): with the experiment's forward settings, or with those of
    /// `baseline` ([`Baseline::forward_config`]); routing sees `routing`'s statistics when
    /// `forward.routing_statistics` is on.
    pub async fn evaluate(
        &self,
        net: &Network,
        examples: &[Example],
        baseline: Option<Baseline>,
        routing: &RoutingRecord,
    ) -> Result<Vec<ExampleRun>, ann_textgrad::TrainError> {
        let refs: Vec<&Example> = examples.iter().collect();
        let config = self.forward_config(baseline, routing);
        ann_textgrad::evaluate(&self.stack.model, &self.evaluator, net, &refs, &config).await
    }

    /// The forward settings of an evaluation: the experiment's, or `baseline`'s; routing sees
    /// `routing`'s statistics when `forward.routing_statistics` is on.
    pub(crate) fn forward_config(
        &self,
        baseline: Option<Baseline>,
        routing: &RoutingRecord,
    ) -> ann_graph::ForwardConfig {
        let mut config = self.train_config.clone();
        if let Some(baseline) = baseline {
            config.forward = baseline.forward_config(&config.forward);
        }
        config.forward_with(routing)
    }
}

/// Open the backend, stack the model, load the benchmark and the starting network (validated with
/// the benchmark's answer format), build the configured baselines' networks (validated the same
/// way, before any call is made) and the trainer.
pub async fn prepare(config: &ExperimentConfig, options: &RunOptions) -> anyhow::Result<Prepared> {
    let base = &options.base_dir;
    let kind = match config.model.backend {
        crate::Backend::Local => "embedded (local)",
        crate::Backend::Openai => "OpenAI-compatible",
    };
    options.say(&format!("opening the {kind} backend"));
    let prices = config.prices();
    let parts = StackParts::open(config, base, prices.clone())?;
    let models = RunModels::open(config, &options.backend, base, &parts)?;
    let stack = models.worker.clone();
    if let Some(flag) = &options.interrupt {
        parts.budget.clone().interrupt_when(flag.clone());
    }
    if let Some(observer) = &options.progress {
        observer.meter(&parts.meter);
    }
    let data_dir = resolve(base, &config.benchmark.data_dir);
    options.say(&format!("loading benchmark {}", config.benchmark.name));
    let benchmark = match &options.benchmark {
        Some(given) => {
            let b = &config.benchmark;
            Arc::new(Subset::new(given.clone(), [b.train, b.validation, b.test]).with_tools(b.tools)?)
                as Arc<dyn Benchmark>
        }
        None => {
            let section = config.benchmark.resolved(base);
            load_benchmark(&section, &data_dir, stack.model.clone(), &config.model.name).await?
        }
    };
    let rules = config.validation_rules(benchmark.answer_format());
    // A network to construct starts as the benchmark's own (its fallback) until `settle_start`.
    let start = match &config.benchmark.network {
        Some(crate::construct::StartNetwork::File(path)) => {
            let path = resolve(base, path);
            let net =
                Network::load(&path).with_context(|| format!("loading the starting network {}", path.display()))?;
            check_network_with(&net, benchmark.as_ref(), &rules)
                .with_context(|| format!("the starting network {}", path.display()))?;
            net
        }
        Some(crate::construct::StartNetwork::Construct) | None => {
            let net = Network::from_json(benchmark.starting_network())
                .with_context(|| format!("the starting network of benchmark {}", benchmark.name()))?;
            check_network_with(&net, benchmark.as_ref(), &rules)?;
            net
        }
    };
    let mut baselines = Vec::with_capacity(config.baselines.len());
    for &baseline in &config.baselines {
        let net = match baseline {
            Baseline::Start => start.clone(),
            other => other.network(benchmark.as_ref())?,
        };
        check_network_with(&net, benchmark.as_ref(), &rules).with_context(|| format!("baseline `{baseline}`"))?;
        baselines.push((baseline, net));
    }
    let mut evaluator: Arc<dyn Evaluator> = Arc::new(BenchmarkEvaluator(benchmark.clone()));
    if let Some(observer) = &options.progress {
        evaluator = Arc::new(crate::progress::ObservedEvaluator { inner: evaluator, observer: observer.clone() });
    }
    let mut train_config = config.train_config(benchmark.answer_format(), prices.clone());
    train_config.forward.models = models.profiles(config);
    let networks = std::iter::once(&start).chain(baselines.iter().map(|(_, net)| net));
    train_config.forward.tools = crate::tools::registry_for(networks).await?;
    // A patch may not give an agent a tool this run has not started.
    train_config.rules.tools = Some(train_config.forward.tools.as_ref().map(|t| t.names()).unwrap_or_default());
    let optimizer = models.optimizer().model.clone();
    let trainer = Trainer::new(stack.model.clone(), optimizer, evaluator.clone(), train_config.clone());
    Ok(Prepared { benchmark, stack, models, evaluator, train_config, trainer, start, baselines, prices })
}

/// Validate `network` against the default limits and `benchmark`'s answer-format rule.
pub fn check_network(network: &Network, benchmark: &dyn Benchmark) -> anyhow::Result<()> {
    check_network_with(network, benchmark, &ValidationRules::with_answer_format(benchmark.answer_format()))
}

/// Validate `network` against `rules` (an experiment's: [`ExperimentConfig::validation_rules`]).
pub fn check_network_with(network: &Network, benchmark: &dyn Benchmark, rules: &ValidationRules) -> anyhow::Result<()> {
    // A run's networks may name the built-in tools (unless the rules name their own).
    let rules =
        ValidationRules { tools: rules.tools.clone().or_else(|| Some(crate::tools::builtin_names())), ..rules.clone() };
    network.validate(&rules).map_err(|violations| {
        let violations = violations.iter().map(ToString::to_string).collect();
        anyhow::Error::new(NetworkRejected { benchmark: benchmark.name().to_string(), violations })
    })
}

/// The examples of `split`. Only training examples reach the backward phase's prompts (the
/// language loss shows their reference); validation and test examples are only scored.
pub fn split_examples(benchmark: &dyn Benchmark, split: Split) -> Vec<Example> {
    benchmark.examples(split).to_vec()
}

/// Evaluate `net` on `examples` (with `baseline`'s forward settings, if one, and the routing
/// statistics of `routing`) in bounded memory ([`crate::evaluation`]): the per-example lines go to
/// `evaluations/<name>.jsonl` and (when the run writes traces) the traces to
/// `traces/<name>.jsonl` as the examples finish; return the scores (`None`: excluded, an infrastructure failure under
/// `exclude`) and what the forwards cost.
async fn evaluate(
    prepared: &Prepared,
    (baseline, routing): (Option<Baseline>, &RoutingRecord),
    net: &Network,
    examples: &[Example],
    (run_dir, name): (&Path, &str),
    options: &RunOptions,
) -> anyhow::Result<(Vec<Option<f64>>, Cost)> {
    options.phase(crate::progress::Phase::Evaluation { name: name.to_string(), examples: examples.len() as u64 });
    let record = Some(Record { run_dir, name });
    let evaluated =
        prepared.evaluate_streaming(net, examples, baseline, routing, record).await.map_err(
            |e| match train_error(&e).and_then(|t| resume_hint(t, run_dir)) {
                Some(hint) => e.context(format!("evaluating {name} stopped: {hint}")),
                None => e.context(format!(
                    "evaluating {name} (an exhausted budget can be raised in config.toml, then `ann resume`)"
                )),
            },
        )?;
    Ok((evaluated.scores(), evaluated.cost))
}

/// What to tell the user when `e` is an infrastructure failure (never scored): the failure, and
/// that `ann resume` finishes the run once the infrastructure works again.
fn resume_hint(e: &TrainError, run_dir: &Path) -> Option<String> {
    let TrainError::InfrastructureFailure { source, .. } = e else { return None };
    Some(format!(
        "a model call failed for a reason outside the network ({source}); nothing was scored for it. The run \
         directory {dir} keeps what it has done (its last checkpoint; every answer received is in the response \
         cache or, when the cache could not store it, in {unsaved}): once the endpoint (or the cache) works again, run `ann resume {dir}` (or set \
         forward.on_infrastructure_failure = \"exclude\" to leave such examples out of the scores)",
        dir = run_dir.display(),
        unsaved = unsaved::UNSAVED_FILE
    ))
}

/// Run (or resume) in `run_dir`: paid answers an earlier stop kept in the run directory are
/// imported into the cache first; at any stop, answers the cache could not store are written there.
async fn execute(
    config: &ExperimentConfig,
    mut prepared: Prepared,
    run_dir: &Path,
    options: &RunOptions,
    started: SystemTime,
) -> anyhow::Result<RunOutcome> {
    if let Some(note) = unsaved::import(prepared.stack.cache.as_ref(), run_dir)? {
        tracing::warn!("{note}");
        options.say(&note);
    }
    let result = train_and_report(config, &mut prepared, run_dir, options, started).await;
    // Whatever happened, the ledger's last state is synced and written to budget.json.
    if let Err(why) = prepared.stack.budget.flush_ledger().await {
        tracing::warn!("the run's budget ledger could not be flushed: {why}");
    }
    let Some(cache) = &prepared.stack.cache else { return result };
    let (result, note) = unsaved::keep(cache, run_dir, result);
    if let Some(note) = note {
        tracing::warn!("{note}");
        options.say(&note);
    }
    result
}

async fn train_and_report(
    config: &ExperimentConfig,
    prepared: &mut Prepared,
    run_dir: &Path,
    options: &RunOptions,
    started: SystemTime,
) -> anyhow::Result<RunOutcome> {
    if let Some(note) = carry_budget(&prepared.stack.budget, run_dir)? {
        tracing::warn!("{note}");
        options.say(&note);
    }
    // Team construction (`network = "construct"`) spends under the run's budget, once.
    crate::construct::settle_start(config, prepared, run_dir, options).await?;
    let prepared = &*prepared;
    let Prepared { benchmark, stack, trainer, start, .. } = prepared;
    start.save(&run_dir.join("network-initial.json")).context("saving the starting network")?;
    let data = TrainData {
        train: split_examples(benchmark.as_ref(), Split::Train),
        validation: split_examples(benchmark.as_ref(), Split::Validation),
    };
    let test = split_examples(benchmark.as_ref(), Split::Test);
    options.say(&format!(
        "training on {} examples, validating on {} ({} epochs, batch {})",
        data.train.len(),
        data.validation.len(),
        config.train.epochs,
        config.train.batch_size
    ));
    let batches = data.train.len().div_ceil(config.train.batch_size.max(1)) * config.train.epochs;
    options.phase(crate::progress::Phase::Training { batches: batches as u64, run_dir: run_dir.to_path_buf() });
    let outcome: TrainOutcome =
        trainer.train(start, &data, run_dir).await.map_err(|e| match resume_hint(&e, run_dir) {
            Some(hint) => anyhow::Error::new(e).context(format!("training stopped: {hint}")),
            None => anyhow::Error::new(e).context("training"),
        })?;
    if outcome.stop == StopReason::Interrupted {
        let message = format!(
            "training interrupted: the calls in flight finished, nothing was scored for the batch under way; run \
             `ann resume {}` to continue from the last checkpoint",
            run_dir.display()
        );
        return Err(RunStopped { reason: outcome.stop.clone(), message }.into());
    }
    if let StopReason::BudgetExhausted { detail } = &outcome.stop {
        let message = format!(
            "the budget ran out during training ({detail}); the run directory {} keeps what it has done and \
             spent: raise [budget] in its config.toml and run `ann resume {}`",
            run_dir.display(),
            run_dir.display()
        );
        return Err(RunStopped { reason: outcome.stop.clone(), message }.into());
    }
    outcome.best.save(&run_dir.join("network-trained.json")).context("saving the trained network")?;
    options.say(&format!(
        "training stopped ({} steps, {} accepted); evaluating initial and trained networks",
        outcome.optimizer.steps, outcome.optimizer.accepted
    ));
    let p = prepared;
    // The trained network routes with the record of its training; every other network without.
    let (none, trained) = ((None, &RoutingRecord::default()), (None, &outcome.routing));
    let (val_initial, cost_val_initial) =
        evaluate(p, none, start, &data.validation, (run_dir, "validation-initial"), options).await?;
    let (val_trained, cost_val_trained) =
        evaluate(p, trained, &outcome.best, &data.validation, (run_dir, "validation-trained"), options).await?;
    options.say(&format!("testing on {} examples", test.len()));
    let (test_initial, cost_initial) = evaluate(p, none, start, &test, (run_dir, "test-initial"), options).await?;
    let (test_trained, cost_trained) =
        evaluate(p, trained, &outcome.best, &test, (run_dir, "test-trained"), options).await?;

    let bootstrap = config.report.bootstrap();
    let mut baselines = Vec::with_capacity(prepared.baselines.len());
    if !prepared.baselines.is_empty() {
        let dir = run_dir.join("baselines");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (baseline, net) in &prepared.baselines {
        net.save(&run_dir.join("baselines").join(format!("{baseline}.json")))
            .with_context(|| format!("saving the network of baseline `{baseline}`"))?;
        let (scores, cost) = if *baseline == Baseline::Start {
            // The same network on the same examples: the initial network's test evaluation.
            (test_initial.clone(), cost_initial)
        } else {
            options.say(&format!("baseline {baseline} ({}) on {} test examples", baseline.description(), test.len()));
            let how = (Some(*baseline), &RoutingRecord::default());
            evaluate(p, how, net, &test, (run_dir, &format!("test-baseline-{baseline}")), options).await?
        };
        let (present_scores, excluded) = present(&scores);
        baselines.push(BaselineScores {
            baseline: *baseline,
            test: bootstrap_ci(&present_scores, &bootstrap).ok(),
            trained_vs_baseline: paired_present(&scores, &test_trained, &bootstrap),
            cost,
            excluded,
        });
    }
    let meter = stack.meter.report();
    let report = Report {
        name: config.name.clone(),
        benchmark: benchmark.name().to_string(),
        backend: stack.identity.clone(),
        model: config.model.name.clone(),
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        finished_at: humantime::format_rfc3339_seconds((options.clock)()).to_string(),
        examples: [("train", data.train.len()), ("validation", data.validation.len()), ("test", test.len())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        stop: outcome.stop.clone(),
        steps: outcome.optimizer,
        network_changed: outcome.best != *start,
        validation: SplitScores::of_present(&val_initial, &val_trained, &bootstrap),
        test: SplitScores::of_present(&test_initial, &test_trained, &bootstrap),
        baselines,
        costs: RunCosts {
            training: outcome.cost,
            training_parts: outcome.costs,
            validation: cost_val_initial.plus(&cost_val_trained),
            test_initial: cost_initial,
            test_trained: cost_trained,
        },
        cost: meter.total,
        cost_by_tag: meter.by_tag,
        models: prepared.models.costs(config),
        cost_by_model: meter.by_model,
        budget_spent: stack.budget.spent(),
    };
    let json = serde_json::to_string_pretty(&report)? + "\n";
    std::fs::write(run_dir.join(REPORT_JSON), json).context("writing report.json")?;
    crate::report::write_markdown(run_dir, &report)?;
    crate::report::artifacts::write(
        config,
        prepared,
        options,
        run_dir,
        &report,
        [&data.train, &data.validation, &test],
    )?;
    let html = crate::report::write_html(run_dir)?;
    options.say(&format!("report written to {} and {}", run_dir.join(REPORT_MD).display(), html.display()));
    Ok(RunOutcome { run_dir: run_dir.to_path_buf(), report })
}

/// Count what earlier processes of the run spent (its ledger in `run_dir`, if any) in `budget`,
/// and record its ledger there from now on ([`LedgerFile`]: `budget.jsonl` holds each
/// reservation before its call is sent and each settlement after, `budget.json` the ledger at
/// the run's end).
///
/// A run with a checkpoint but no ledger (deleted, or lost with a disk) does not start from
/// zero: its spend is rebuilt from the checkpoint's cost, which counts every call of training
/// (cache hits too, so it errs high), and the returned note says so.
fn carry_budget(budget: &Arc<Budget>, run_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = run_dir.join(BUDGET_FILE);
    let mut note = None;
    match LedgerFile::read(run_dir).with_context(|| format!("reading the run's ledger {}", path.display()))? {
        Some(earlier) => {
            // Calls that were in flight when an earlier process stopped may have been billed.
            budget.clone().with_spent(earlier.committed().plus(budget.spent()));
        }
        None => {
            let files = RunFiles::new(run_dir).context("opening the run's files")?;
            if let Some(checkpoint) = files.load_checkpoint().context("reading the run's checkpoint")? {
                let c = checkpoint.cost;
                let spent = BudgetSpent {
                    tokens: c.prompt_tokens.saturating_add(c.completion_tokens),
                    dollars: c.dollars,
                    calls: c.calls.saturating_add(c.errors),
                };
                budget.clone().with_spent(spent.plus(budget.spent()));
                note = Some(format!(
                    "{} is missing: the run's spend so far is rebuilt from its checkpoint ({} calls, {} tokens, \
                     ${:.4}; what the final evaluation spent after it is not known)",
                    path.display(),
                    spent.calls,
                    spent.tokens,
                    spent.dollars
                ));
            }
        }
    }
    let log = run_dir.join(LedgerFile::LOG);
    let file = LedgerFile::open(run_dir).with_context(|| format!("opening {}", log.display()))?;
    budget.record_to(file).map_err(anyhow::Error::msg).with_context(|| format!("writing {}", log.display()))?;
    Ok(note)
}

/// Scores of one network on one split (for `ann eval`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalOutcome {
    pub benchmark: String,
    /// The baseline evaluated, when it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    pub split: Split,
    pub summary: Option<ann_eval::stats::Summary>,
    pub passed: usize,
    /// Examples left out of `summary`: their forward hit an infrastructure failure under the
    /// `exclude` policy (never scored 0).
    pub excluded: usize,
    /// What the network's forwards cost, as the responses report it ([`ann_textgrad::forward_cost`]).
    pub forward_cost: Cost,
    /// Every call of this process as the meter saw it (evaluator calls and cache hits included).
    pub cost: ann_llm::Totals,
    /// The same, per model of the run (`worker`, `optimizer`, each model profile).
    pub models: std::collections::BTreeMap<String, crate::ModelCost>,
}

/// Evaluate `network` on `split` of the configured benchmark (no training, no run directory).
pub async fn evaluate_network(
    config: &ExperimentConfig,
    network: &Network,
    split: Split,
    options: &RunOptions,
) -> anyhow::Result<EvalOutcome> {
    let mut prepared = prepare(config, options).await?;
    let rules = config.validation_rules(prepared.benchmark.answer_format());
    check_network_with(network, prepared.benchmark.as_ref(), &rules)?;
    if !crate::tools::listed_tools([network]).is_empty() {
        prepared.train_config.forward.tools = crate::tools::registry_for([network]).await?;
    }
    evaluate_split(config, &prepared, network, None, split, options).await
}

/// Evaluate the baseline `baseline` on `split` of the configured benchmark (no run directory).
pub async fn evaluate_baseline(
    config: &ExperimentConfig,
    baseline: Baseline,
    split: Split,
    options: &RunOptions,
) -> anyhow::Result<EvalOutcome> {
    let config = ExperimentConfig { baselines: vec![baseline], ..config.clone() };
    let prepared = prepare(&config, options).await?;
    let (_, network) = &prepared.baselines[0];
    evaluate_split(&config, &prepared, network, Some(baseline), split, options).await
}

async fn evaluate_split(
    config: &ExperimentConfig,
    prepared: &Prepared,
    network: &Network,
    baseline: Option<Baseline>,
    split: Split,
    options: &RunOptions,
) -> anyhow::Result<EvalOutcome> {
    let examples = prepared.benchmark.examples(split);
    let name = format!("{split:?}").to_lowercase();
    options.say(&format!("evaluating on {} {name} examples", examples.len()));
    options.phase(crate::progress::Phase::Evaluation { name, examples: examples.len() as u64 });
    let evaluated = prepared
        .evaluate_streaming(network, examples, baseline, &RoutingRecord::default(), None)
        .await
        .map_err(|e| {
            let hint = train_error(&e).is_some_and(TrainError::is_infrastructure_failure).then_some(
                " stopped: a model call failed for a reason outside the network; nothing was scored for it (every \
                 answer received is in the response cache): run again once the endpoint works, or set \
                 forward.on_infrastructure_failure = \"exclude\" to leave such examples out",
            );
            e.context(format!("evaluating{}", hint.unwrap_or_default()))
        })?;
    let (scores, excluded) = present(&evaluated.scores());
    Ok(EvalOutcome {
        benchmark: prepared.benchmark.name().to_string(),
        baseline,
        split,
        summary: bootstrap_ci(&scores, &config.report.bootstrap()).ok(),
        passed: evaluated.passed(),
        excluded,
        forward_cost: evaluated.cost,
        cost: prepared.stack.meter.report().total,
        models: prepared.models.costs(config),
    })
}
