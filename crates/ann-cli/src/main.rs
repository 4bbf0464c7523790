//! The `ann` binary: run, resume and evaluate experiments and baselines, construct and adapt
//! networks (`ann demo`, `run`/`train`, `resume`, `eval`, `construct`, `adapt`), look at networks,
//! traces and past runs (`inspect`, `runs`), and keep a run's calls as a cassette (`ann cache`).
//! Exit codes are in `exit.rs`; `--json` prints each command's result as JSON.

mod cassette;
mod exit;
mod inspect;
mod paths;
mod progress;

mod report_cmds;
mod runs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use ann_experiment::reexports::{MODEL_ENV, Network, OpenAiConfig, Split, pinned_model_path};
use ann_experiment::{
    Backend, BackendSource, Baseline, ExperimentConfig, ModelOverride, Report, RunOptions, StartNetwork,
};
use anyhow::{Context, Result};
use clap::{ArgGroup, Parser, Subcommand, ValueEnum};

/// The demo experiment, embedded so that `ann demo` works from any folder.
const DEMO_CONFIG: &str = include_str!("../../../experiments/demo.toml");
/// The model, cache and budget settings of `eval`, `construct` and `adapt` without `--config`.
const DEFAULT_CONFIG: &str = include_str!("../../../experiments/mmlu-ml-small.toml");

#[derive(Parser)]
#[command(
    name = "ann",
    version,
    about = "Agentic Neural Networks: train multi-agent LLM systems by textual backpropagation"
)]
struct Cli {
    /// Folder that relative paths of a config (data, cache, model) resolve against, and where
    /// `runs/` goes; default: the current folder.
    #[arg(long, global = true, env = "ANN_HOME")]
    home: Option<PathBuf>,
    /// Print the command's result as JSON on stdout (shapes in the README); progress and errors
    /// stay on stderr, and a failure also prints `{"error", "status", "exit_code"}`.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The main job: a one-agent network learns the answer's form (yes/no questions whose replies
    /// must start with Yes or No) on the embedded offline model (or on the OpenAI-compatible
    /// endpoint when ANN_OPENAI_BASE_URL is set), then is tested against its start.
    Demo {
        /// Another config instead of `experiments/demo.toml`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Train, then test (the starting and trained networks, and the config's baselines), the
    /// experiment of a TOML config in a new run directory (`ann train` is the same command).
    #[command(name = "run", visible_alias = "train")]
    #[command(group(ArgGroup::new("experiment").required(true).args(["config", "config_file"])))]
    Train {
        /// The experiment config (TOML); or give it with `--config`.
        #[arg(value_name = "CONFIG")]
        config_file: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Use the OpenAI-compatible endpoint of the environment whatever the config says (its
        /// model becomes the request model).
        #[arg(long, conflicts_with = "local")]
        openai: bool,
        /// Use the embedded offline model whatever the config says (a smoke check of a config).
        #[arg(long)]
        local: bool,
        /// Cap the train, validation and test splits at N examples each (a quick check).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Override a config value: KEY=VALUE with a dotted key and a TOML value, e.g.
        /// `--set train.epochs=3 --set 'baselines=["direct","cot"]'` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Where the run directory goes (default: `runs/` in the home folder).
        #[arg(long, value_name = "DIR")]
        runs_dir: Option<PathBuf>,
        /// Start from this network file (JSON or YAML, e.g. one written by `ann construct` or
        /// `ann adapt`) instead of the config's `benchmark.network`.
        #[arg(long, value_name = "FILE")]
        network: Option<PathBuf>,
    },
    /// Construct a network for a benchmark by team construction (task description and training
    /// inputs, optionally trained networks as a library) and write it to a file.
    Construct {
        /// mmlu-ml, math, humaneval, creative-writing, trivia-cw or dabench.
        #[arg(long)]
        benchmark: String,
        /// Finished run directories whose trained networks (and validation scores) the
        /// construction prompt sees as a library (repeatable).
        #[arg(long = "from", value_name = "RUN_DIR")]
        from: Vec<PathBuf>,
        /// The network file to write (JSON, or YAML for .yaml/.yml); the record of the
        /// construction goes beside it as `<name>.construction.json`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Model, cache, budget and `[construct]` settings from this config (default:
        /// `experiments/mmlu-ml-small.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config value: KEY=VALUE (repeatable), as for `ann train`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Build a network for a new task from trained networks: team construction whose prompt sees
    /// the runs' trained networks and validation scores as a library; writes the network and
    /// `<name>.provenance.json` (which runs, which layers were reused).
    #[command(group(ArgGroup::new("target").required(true).args(["benchmark", "task"])))]
    Adapt {
        /// Finished run directories whose trained networks form the library (repeatable).
        #[arg(long = "from", value_name = "RUN_DIR", required = true)]
        from: Vec<PathBuf>,
        /// The new task is this benchmark (its training inputs, answer format, and starting
        /// network as the fallback); the result trains further with `ann train --network`.
        #[arg(long)]
        benchmark: Option<String>,
        /// The new task is described by this TOML file: `task_description`, `answer_format`,
        /// `examples = [...]` (inputs).
        #[arg(long, value_name = "FILE")]
        task: Option<PathBuf>,
        /// Specialise within the benchmark instead: one network per value of this metadata field of
        /// its examples (e.g. MATH's `subject` or `level`), a router in front, evaluated on the
        /// test split against the first run's trained network; `--out` is then a folder.
        #[arg(long, value_name = "FIELD", requires = "benchmark", conflicts_with = "task")]
        specialise_by: Option<String>,
        /// The network file to write (the folder, with `--specialise-by`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Model, cache, budget and `[construct]` settings from this config (default:
        /// `experiments/mmlu-ml-small.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config value: KEY=VALUE (repeatable), as for `ann train`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Resume an interrupted run directory and finish its report.
    Resume { run_dir: PathBuf },
    /// Evaluate a network file or a baseline on a benchmark split (no training).
    #[command(group(ArgGroup::new("what").required(true).args(["network", "baseline"])))]
    Eval {
        /// mmlu-ml, math, humaneval, creative-writing; or with the user's data (`benchmark.data_path`,
        /// or ANN_TRIVIA_CW_PATH / ANN_DABENCH_DIR): trivia-cw, dabench.
        #[arg(long)]
        benchmark: String,
        /// The network (JSON or YAML), e.g. a run's `network-trained.json`.
        #[arg(long)]
        network: Option<PathBuf>,
        /// A baseline instead of a network file: direct, cot, self_consistency, debate or start.
        #[arg(long, value_parser = parse_baseline)]
        baseline: Option<Baseline>,
        #[arg(long, value_enum, default_value = "test")]
        split: SplitArg,
        /// Only the first N examples of the split.
        #[arg(long)]
        limit: Option<usize>,
        /// Model, cache and budget settings from this config (its benchmark section is overridden;
        /// default: `experiments/mmlu-ml-small.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rebuild a run directory's report.html from its files and print its path.
    Report { run_dir: PathBuf },
    /// Print each line of the trained prompts with the step that introduced it, its gradient
    /// summary and the validation change.
    Blame(report_cmds::BlameArgs),
    /// Compare two networks, checkpoints or run directories (prompts, roles, aggregators, layers).
    Diff(report_cmds::DiffArgs),
    /// Export a response cache to a cassette, or import one (to replay a run with no call).
    #[command(subcommand)]
    Cache(cassette::CacheCmd),
    /// Show a network, checkpoint or run directory as a tree, or walk a trace file example by example.
    Inspect(inspect::InspectArgs),
    /// List the runs under a folder (default: `runs/`) with benchmark, status, scores, cost and date.
    Runs(runs::RunsArgs),
    /// Print a shell completion script: `ann completions bash > /etc/bash_completion.d/ann`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Validation,
    Test,
}

fn main() -> ExitCode {
    // Log lines on stderr (`RUST_LOG`; colour only on a terminal and never with NO_COLOR), and every
    // span over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; dropped last, the guard sends the
    // spans still buffered once the runtime is gone.
    let _telemetry = ann_telemetry::init(&ann_telemetry::Settings::from_env("ann"))
        .map_err(|e| eprintln!("warning: {e}; continuing without telemetry"))
        .ok();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print to stdout and succeed; a bad command line is a usage error.
            let exit = if e.use_stderr() { exit::Exit::Usage } else { exit::Exit::Ok };
            let _ = e.print();
            return exit.into();
        }
    };
    let json = cli.json;
    // Ctrl-C is watched on a thread of its own, so a second one quits at once even while the
    // run's thread is busy.
    let _ = std::thread::Builder::new().name("ctrl-c".into()).spawn(|| {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(watch_ctrl_c());
        }
    });
    // One thread drives the run: its model calls are I/O (or the embedded model's own worker
    // thread, or SQLite on the blocking pool), so a multi-threaded scheduler would only hand every
    // call from thread to thread (see ARCHITECTURE.md, "The async runtime").
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let exit = exit::classify(&e, INTERRUPT.load(Ordering::SeqCst));
            // The chain of causes, one per line (no backtrace: these are user-facing errors).
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if json {
                let error =
                    serde_json::json!({ "error": format!("{e:#}"), "status": exit.name(), "exit_code": exit.code() });
                println!("{error}");
            }
            exit.into()
        }
    }
}

/// The config's default `.cache/...` paths move to the cache folder `ann` found (`paths`):
/// `ANN_CACHE_DIR`, the checkout's, or the user's.
fn relocate_cache(config: &mut ExperimentConfig) {
    let cache = paths::cache_dir();
    for path in [&mut config.benchmark.data_dir, &mut config.cache.path] {
        if let Ok(rest) = path.strip_prefix(".cache") {
            *path = cache.join(rest);
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let home = match cli.home {
        Some(h) => h,
        None => std::env::current_dir().context("reading the current folder")?,
    };
    let json = cli.json;
    paths::resolve(&home);
    match cli.command {
        Cmd::Demo { config } => {
            let mut config = match config {
                Some(path) => ExperimentConfig::load(&path).map_err(exit::bad_input)?,
                None => ExperimentConfig::from_toml(DEMO_CONFIG, "experiments/demo.toml")?,
            };
            relocate_cache(&mut config);
            let openai = OpenAiConfig::from_env().context("reading ANN_OPENAI_* from the environment")?;
            if let Some(openai) = &openai {
                use_openai(&mut config, openai);
            }
            train(&config, with_models(&config, options(&home, openai))?, json).await
        }
        Cmd::Train { config_file, config, openai: force, local, limit, overrides, runs_dir, network } => {
            let config = config.or(config_file).expect("clap requires a config");
            let mut config = ExperimentConfig::load_with_overrides(&config, &overrides).map_err(exit::bad_input)?;
            if let Some(file) = network {
                config.benchmark.network = Some(StartNetwork::File(absolute(&file)?));
            }
            user_data(&mut config);
            relocate_cache(&mut config);
            if let Some(n) = limit {
                config.limit(n);
            }
            if local {
                config.model.backend = Backend::Local;
                config.model.name = ExperimentConfig::default().model.name;
                // The optimiser and the model profiles keep their own stacks, on the embedded model.
                for m in config.optimizer.iter_mut().chain(config.models.values_mut()) {
                    *m = ModelOverride { backend: None, name: None, local_path: None, ..m.clone() };
                    (m.base_url_env, m.model_env, m.api_key_env) = (None, None, None);
                }
            }
            let openai = if local { None } else { endpoint(&config, force)? };
            if let (true, Some(o)) = (force, &openai) {
                use_openai(&mut config, o);
            }
            let mut options = with_models(&config, options(&home, openai))?;
            if let Some(dir) = runs_dir {
                options.runs_dir = if dir.is_absolute() { dir } else { home.join(dir) };
            }
            train(&config, options, json).await
        }
        Cmd::Construct { benchmark, from, out, config, overrides } => {
            let (config, options) = construction_setup(&home, config, &overrides, Some(benchmark))?;
            let spinner = spinner(&options);
            let from: Vec<PathBuf> = from.iter().map(|d| absolute(d)).collect::<Result<_>>()?;
            let record = ann_experiment::construct_to_file(&config, &from, &absolute(&out)?, &spinner.0).await;
            spinner.1.finish_and_clear();
            let record = record?;
            let record_path = ann_experiment::construct::record_path(&out);
            if json {
                let shown = serde_json::json!({ "summary": record.summary(), "network": out, "record": record_path });
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            println!("{}", record.summary());
            println!("Network: {}", out.display());
            println!("Record: {}", record_path.display());
            Ok(())
        }
        Cmd::Adapt { from, benchmark, task: _, specialise_by: Some(field), out, config, overrides } => {
            let (config, options) = construction_setup(&home, config, &overrides, benchmark)?;
            let spinner = spinner(&options);
            let from: Vec<PathBuf> = from.iter().map(|d| absolute(d)).collect::<Result<_>>()?;
            let out = absolute(&out)?;
            let report = ann_experiment::specialise::specialise_to_dir(&config, &from, &field, &out, &spinner.0).await;
            spinner.1.finish_and_clear();
            let report = report?;
            if json {
                let shown = serde_json::json!({ "report": out.join("specialise.json"), "specialise": &report });
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            let mean = |s: &Option<ann_experiment::reexports::Summary>| s.as_ref().map_or(f64::NAN, |s| s.mean);
            println!(
                "{} networks by {field} ({}); router: {} routed, {} to the single network",
                report.slices.len(),
                report.slices.iter().map(|s| s.value.as_str()).collect::<Vec<_>>().join(", "),
                report.router.routed,
                report.router.unrouted
            );
            println!("test: single {:.3}, specialised {:.3}", mean(&report.single), mean(&report.specialised));
            println!("Report: {}", out.join("specialise.json").display());
            Ok(())
        }
        Cmd::Adapt { from, benchmark, task, specialise_by: None, out, config, overrides } => {
            let (config, options) = construction_setup(&home, config, &overrides, benchmark)?;
            let target = match task {
                Some(file) => ann_experiment::AdaptTarget::Task(absolute(&file)?),
                None => ann_experiment::AdaptTarget::Benchmark,
            };
            let spinner = spinner(&options);
            let from: Vec<PathBuf> = from.iter().map(|d| absolute(d)).collect::<Result<_>>()?;
            let provenance = ann_experiment::adapt_to_file(&config, &from, &target, &absolute(&out)?, &spinner.0).await;
            spinner.1.finish_and_clear();
            let summary = provenance?.summary();
            let provenance_path = ann_experiment::adapt::provenance_path(&out);
            if json {
                let shown = serde_json::json!({ "summary": summary, "network": out, "provenance": provenance_path });
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            println!("{summary}");
            println!("Network: {}", out.display());
            println!("Provenance: {}", provenance_path.display());
            Ok(())
        }
        Cmd::Resume { run_dir } => {
            let config =
                ExperimentConfig::load(&run_dir.join(ann_experiment::run::CONFIG_FILE)).map_err(exit::bad_input)?;
            let openai = endpoint(&config, false)?;
            let options = with_models(&config, options(&home, openai))?;
            let spinner = spinner(&options);
            let outcome = ann_experiment::resume(&run_dir, &spinner.0).await;
            spinner.1.finish_and_clear();
            let outcome = outcome.map_err(|e| stopped(Some(run_dir.as_path()), e))?;
            print_report(&outcome.run_dir, &outcome.report, json)
        }
        Cmd::Report { run_dir } => report_cmds::report(&run_dir, json),
        Cmd::Blame(args) => report_cmds::blame(&args, json),
        Cmd::Diff(args) => report_cmds::diff(&args, json),
        Cmd::Inspect(args) => inspect::run(&args, json),
        Cmd::Runs(args) => runs::run(&args, &home, json),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ann", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Eval { benchmark, network, baseline, split, limit, config } => {
            let mut config = match config {
                Some(path) => ExperimentConfig::load(&path).map_err(exit::bad_input)?,
                None => ExperimentConfig::from_toml(DEFAULT_CONFIG, "experiments/mmlu-ml-small.toml")?,
            };
            relocate_cache(&mut config);
            config.benchmark.name = benchmark;
            config.benchmark.network = None;
            user_data(&mut config);
            let (train, validation, test) = match split {
                SplitArg::Train => (limit, Some(0), Some(0)),
                SplitArg::Validation => (Some(0), limit, Some(0)),
                SplitArg::Test => (Some(0), Some(0), limit),
            };
            config.benchmark.train = train;
            config.benchmark.validation = validation;
            config.benchmark.test = test;
            let openai = OpenAiConfig::from_env().context("reading ANN_OPENAI_* from the environment")?;
            if let Some(o) = &openai {
                use_openai(&mut config, o);
            }
            let split = match split {
                SplitArg::Train => Split::Train,
                SplitArg::Validation => Split::Validation,
                SplitArg::Test => Split::Test,
            };
            let options = with_models(&config, options(&home, openai))?;
            let spinner = spinner(&options);
            let outcome = match (network, baseline) {
                (_, Some(baseline)) => ann_experiment::evaluate_baseline(&config, baseline, split, &spinner.0).await,
                (Some(network), None) => {
                    let net = Network::load(&network)
                        .with_context(|| format!("loading {}", network.display()))
                        .map_err(exit::bad_input)?;
                    ann_experiment::evaluate_network(&config, &net, split, &spinner.0).await
                }
                (None, None) => unreachable!("clap requires --network or --baseline"),
            };
            spinner.1.finish_and_clear();
            // The outcome is printed as JSON with or without `--json` (scripts have read it so).
            println!("{}", serde_json::to_string_pretty(&outcome?)?);
            Ok(())
        }
        Cmd::Cache(cmd) => cassette::run(cmd, json).await,
    }
}

/// The config and run options of `ann construct` / `ann adapt`: the given config (default:
/// `experiments/mmlu-ml-small.toml`) for `benchmark`, and the environment's endpoint when one is
/// set (as `ann eval`).
fn construction_setup(
    home: &Path,
    config: Option<PathBuf>,
    overrides: &[String],
    benchmark: Option<String>,
) -> Result<(ExperimentConfig, RunOptions)> {
    let mut config = match config {
        Some(path) => ExperimentConfig::load_with_overrides(&path, overrides).map_err(exit::bad_input)?,
        None if !overrides.is_empty() => anyhow::bail!("--set applies to a config file: give it with --config FILE"),
        None => ExperimentConfig::from_toml(DEFAULT_CONFIG, "experiments/mmlu-ml-small.toml")?,
    };
    relocate_cache(&mut config);
    if let Some(name) = benchmark {
        config.benchmark.name = name;
    }
    user_data(&mut config);
    let openai = OpenAiConfig::from_env().context("reading ANN_OPENAI_* from the environment")?;
    if let Some(o) = &openai {
        use_openai(&mut config, o);
    }
    Ok((config, options(home, openai)))
}

/// A user-data benchmark's `data_path` from its environment variable when the config sets none.
fn user_data(config: &mut ExperimentConfig) {
    if config.benchmark.data_path.is_some() {
        return;
    }
    let Some(var) = ann_experiment::user_data_env(&config.benchmark.name) else { return };
    if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        config.benchmark.data_path =
            Some(if path.is_absolute() { path } else { std::env::current_dir().unwrap_or_default().join(path) });
    }
}

/// `path` made absolute against the current folder (a config's relative paths resolve against
/// the home folder instead).
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir().context("reading the current folder")?.join(path))
}

fn parse_baseline(name: &str) -> Result<Baseline, String> {
    name.parse()
}

/// Point the config at the environment's endpoint (its model name becomes the request model).
fn use_openai(config: &mut ExperimentConfig, openai: &OpenAiConfig) {
    config.model.backend = Backend::Openai;
    config.model.name = openai.model.clone();
}

/// The endpoint named by the config's environment variables (the standard `ANN_OPENAI_*` names also
/// accept `OPENAI_API_KEY`); an error when the config (or `--openai`) needs one and there is none.
fn endpoint(config: &ExperimentConfig, force: bool) -> Result<Option<OpenAiConfig>> {
    let m = &config.model;
    let openai = read_endpoint(m)?;
    if (force || m.backend == Backend::Openai) && openai.is_none() {
        anyhow::bail!(
            "this run uses an OpenAI-compatible endpoint: set {} and {} (and {})",
            m.base_url_env,
            m.model_env,
            m.api_key_env
        );
    }
    Ok(openai)
}

/// `options` with the endpoint of each model of the config (`[optimizer]`, `[models.NAME]`) that
/// uses an OpenAI-compatible endpoint named by variables other than the worker's.
fn with_models(config: &ExperimentConfig, mut options: RunOptions) -> Result<RunOptions> {
    let mut others = Vec::new();
    if config.optimizer.is_some() {
        others.push(("optimizer".to_string(), "[optimizer]".to_string(), config.optimizer_model().section));
    }
    for name in config.models.keys() {
        let section = config.profile_model(name).expect("a configured profile").section;
        others.push((name.clone(), format!("[models.{name}]"), section));
    }
    let vars =
        |m: &ann_experiment::config::ModelSection| (m.base_url_env.clone(), m.model_env.clone(), m.api_key_env.clone());
    let mut named = std::collections::BTreeMap::new();
    for (name, table, section) in others {
        if section.backend != Backend::Openai || vars(&section) == vars(&config.model) {
            continue;
        }
        let Some(openai) = read_endpoint(&section)? else {
            anyhow::bail!(
                "{table} uses an OpenAI-compatible endpoint: set {} and {} (and {})",
                section.base_url_env,
                section.model_env,
                section.api_key_env
            );
        };
        let BackendSource::Open { local_model, .. } = &options.backend else { continue };
        named.insert(name, BackendSource::Open { local_model: local_model.clone(), openai: Some(openai) });
    }
    if !named.is_empty() {
        options.backend = BackendSource::Named { worker: Box::new(options.backend), named };
    }
    Ok(options)
}

/// The endpoint named by the environment variables of `m` (the standard `ANN_OPENAI_*` names also
/// accept `OPENAI_API_KEY`), if its base URL variable is set.
fn read_endpoint(m: &ann_experiment::config::ModelSection) -> Result<Option<OpenAiConfig>> {
    let standard = ExperimentConfig::default().model;
    let openai = if (&m.base_url_env, &m.model_env, &m.api_key_env)
        == (&standard.base_url_env, &standard.model_env, &standard.api_key_env)
    {
        OpenAiConfig::from_env().context("reading ANN_OPENAI_* from the environment")?
    } else {
        match std::env::var(&m.base_url_env).ok().filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(urls) => {
                let model = std::env::var(&m.model_env)
                    .with_context(|| format!("{} is set but {} is not", m.base_url_env, m.model_env))?;
                let mut openai = OpenAiConfig::new("", model);
                openai.base_urls = urls.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
                openai.api_key_env = m.api_key_env.clone();
                openai.validate().context("the OpenAI-compatible endpoint of the environment")?;
                Some(openai)
            }
        }
    };
    Ok(openai)
}

fn options(home: &Path, openai: Option<OpenAiConfig>) -> RunOptions {
    let cache = paths::cache_dir();
    let local_model = std::env::var_os(MODEL_ENV).map(PathBuf::from).unwrap_or_else(|| pinned_model_path(&cache));
    RunOptions {
        base_dir: home.to_path_buf(),
        runs_dir: home.join("runs"),
        backend: BackendSource::Open { local_model, openai },
        clock: Arc::new(SystemTime::now),
        progress: None,
        benchmark: None,
        interrupt: Some(INTERRUPT.clone()),
    }
}

/// Set by the first Ctrl-C: the run's budget closes, so no new call starts and the run stops at
/// its last checkpoint (see [`watch_ctrl_c`]).
static INTERRUPT: std::sync::LazyLock<Arc<AtomicBool>> = std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The first Ctrl-C stops the run gracefully: calls in flight finish (their answers reach the
/// cache, so `ann resume` does not pay for them again), no new call starts, the last checkpoint
/// stays. A second Ctrl-C quits at once.
async fn watch_ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    INTERRUPT.store(true, Ordering::SeqCst);
    eprintln!("interrupted: finishing the calls in flight, then stopping (Ctrl-C again to quit at once)");
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(exit::Exit::Interrupted.code().into());
    }
}

/// The progress display of a command (bars per long phase on a terminal, lines elsewhere),
/// wired into the options as the run's observer.
fn spinner(options: &RunOptions) -> (RunOptions, Arc<progress::Bars>) {
    let bars = progress::Bars::new();
    let mut options = options.clone();
    options.progress = Some(bars.clone());
    (options, bars)
}

/// Record why a run stopped in its directory (`status.json`, shown by `ann runs`), then pass the error on.
fn stopped(run_dir: Option<&Path>, e: anyhow::Error) -> anyhow::Error {
    if let Some(dir) = run_dir {
        let exit = exit::classify(&e, INTERRUPT.load(Ordering::SeqCst));
        if let Err(why) = runs::record_stop(dir, exit, &e) {
            tracing::warn!("{why:#}");
        }
    }
    e
}

async fn train(config: &ExperimentConfig, options: RunOptions, json: bool) -> Result<()> {
    let spinner = spinner(&options);
    let outcome = ann_experiment::start(config, &spinner.0).await;
    spinner.1.finish_and_clear();
    let outcome = outcome.map_err(|e| stopped(spinner.1.run_dir().as_deref(), e))?;
    print_report(&outcome.run_dir, &outcome.report, json)
}

/// A finished run's report; with `json`, `{"run_dir", "report_html", "report"}` (`report`: the
/// run's `report.json`).
fn print_report(run_dir: &Path, report: &Report, json: bool) -> Result<()> {
    runs::clear_stop(run_dir)?;
    let html = run_dir.join(ann_experiment::report::REPORT_HTML);
    if json {
        let shown = serde_json::json!({ "run_dir": run_dir, "report_html": html, "report": report });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    // report.md also explains each training step (read back from the journal).
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap_or_else(|_| report.to_markdown());
    println!("{md}");
    println!("Run directory: {}", run_dir.display());
    println!("Report: {}", html.display());
    Ok(())
}
