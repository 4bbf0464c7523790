//! `cargo xtask reproduce`: run the paper experiments (`experiments/paper/*.toml`) and tabulate
//! our test scores, with intervals and costs, beside the paper's numbers.
//!
//! Each experiment is an ordinary run of the `ann` binary (`ann train --config FILE --openai`, in
//! release unless `--ann` names a binary), whose run directory goes into
//! `runs/reproduce-<UTC time>/`; the table is then built from the runs' `report.json` and written
//! there as `table.md` and `table.json`. An experiment that fails (an exhausted budget, say) keeps
//! its run directory for `ann resume`; the others still run, and the table lists what finished.
//!
//! `--ablations` adds the files of `ablations/` (the method with one part switched off, on the
//! experiment each names) as rows `ANN (<ablation>)` of the same table.
//!
//! It costs money: it refuses to start without an OpenAI-compatible endpoint in the environment
//! (`--local` runs the embedded model instead, as a smoke check), and `--dry-run` shows what each
//! experiment would run and the most its budget allows it to spend.

mod cassette;
mod dry_run;
mod plan;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::{fetch_data, fetch_model, workspace_root};
use cassette::{Mode, Recorded};
use plan::{Experiment, REFERENCE_FILE, Reference};
use table::{Meta, Outcome};

/// The environment variables of the endpoint (the `ann` binary reads them).
const BASE_URL_ENV: &str = "ANN_OPENAI_BASE_URL";
const MODEL_ENV: &str = "ANN_OPENAI_MODEL";

/// What `--local` sets unless the command line says otherwise: a short smoke check on a CPU. One
/// baseline that calls (`direct`) and the free `start` keep the table's baseline rows exercised;
/// the other three multiply the calls (self-consistency samples, debate rounds) for no new path.
const LOCAL_LIMIT: usize = 2;
/// The one experiment `--local` runs unless `--only` names others: the benchmark with the shortest
/// answers (a letter), so the smoke check takes minutes, not the better part of an hour.
const LOCAL_ONLY: &str = "mmlu-ml";
const LOCAL_OVERRIDES: [&str; 4] =
    ["train.epochs=1", "model.max_tokens=64", "model.optimizer_max_tokens=128", "baselines=[\"direct\",\"start\"]"];

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Only this experiment (file stem, experiment name or benchmark, e.g. `mmlu-ml`); repeatable.
    /// Default: every experiment.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    /// Cap the train, validation and test splits of every experiment at N examples: a quick check
    /// of the whole path, whose numbers are not comparable to the paper's.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print what would run and the budget each experiment allows; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run on the embedded offline model instead of an endpoint: a smoke check of the machinery
    /// whose scores mean nothing. Implies `--only mmlu-ml`, `--limit 2`, one epoch, short answers
    /// and the baselines `direct` and `start` only, unless set.
    #[arg(long)]
    pub local: bool,
    /// Override a value of every experiment's config, as `ann train --set` (repeatable), e.g.
    /// `--set train.epochs=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Use this `ann` binary instead of building it in release first.
    #[arg(long, value_name = "PATH")]
    pub ann: Option<PathBuf>,
    /// Use the data already in the cache as it is, without `fetch-data` (which needs the network
    /// the first time).
    #[arg(long)]
    pub no_fetch: bool,
    /// Where `reproduce-<UTC time>/` goes (default: `runs/` of the workspace).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// The folder of experiment files and `reference.toml` (default: `experiments/paper/`).
    #[arg(long, value_name = "DIR")]
    pub experiments: Option<PathBuf>,
    /// Also run the ablations in `ablations/` of the experiments folder (each the method with one
    /// part switched off, on the experiment it names; `--only` selects them by that experiment's
    /// benchmark too), each a row `ANN (<ablation>)` of the same table.
    #[arg(long)]
    pub ablations: bool,
    /// `live` calls the endpoint; `record` also keeps every call in a cassette (`--cassette`, default
    /// `cassette.jsonl.gz` in the reproduction's folder); `replay` answers every call from
    /// `--cassette` and calls nothing (give the selection, `--limit` and `--set` of the recording).
    #[arg(long, value_enum, default_value_t)]
    pub mode: Mode,
    /// The cassette `record` writes or `replay` reads (JSONL, gzip when it ends in `.gz`).
    #[arg(long, value_name = "FILE")]
    pub cassette: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let root = workspace_root();
    let dir = args.experiments.clone().unwrap_or_else(|| root.join("experiments/paper"));
    let replay = match (args.mode, &args.cassette) {
        (Mode::Replay, None) => bail!("--mode replay needs --cassette FILE (a cassette `--mode record` wrote)"),
        (Mode::Replay, Some(c)) => Some(cassette::recorded_backend(c)?),
        _ => None,
    };
    // A cassette recorded on the embedded model replays as `--local` did.
    let local = args.local || replay == Some(Recorded::Local);
    let mut overrides: Vec<String> = Vec::new();
    if local {
        overrides.extend(LOCAL_OVERRIDES.iter().map(|s| s.to_string()));
    }
    // Given later, the command line's overrides win.
    overrides.extend(args.overrides.iter().cloned());
    let limit = args.limit.or(local.then_some(LOCAL_LIMIT));
    let mut all = plan::load_experiments(&dir, &overrides)?;
    if args.ablations {
        all.extend(plan::load_ablations(&dir, &overrides)?);
    }
    // The smoke check runs one benchmark unless the command line names others.
    let only = if local && args.only.is_empty() { vec![LOCAL_ONLY.to_string()] } else { args.only.clone() };
    let experiments = plan::select(&all, &only)?;
    let reference = Reference::load(&dir.join(REFERENCE_FILE))?;
    let backend_flag = if local { "--local" } else { "--openai" };
    let started = SystemTime::now();
    let runs_dir = args.runs_dir.clone().unwrap_or_else(|| root.join("runs"));
    let out = runs_dir.join(format!("reproduce-{}", folder_stamp(started)));

    if args.dry_run {
        dry_run::print_plan(&experiments, &reference, &dir, limit, &overrides, backend_flag, &out);
        return Ok(());
    }
    // An experiment on the user's own data (DABench) runs only when it is given: asked for by
    // name, its absence stops everything; otherwise the experiment is skipped and the table says why.
    let missing: Vec<String> = experiments.iter().filter_map(Experiment::missing_user_data).collect();
    if !args.only.is_empty() && !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    for why in &missing {
        eprintln!("reproduce: skipping {why}");
    }
    if !local && replay.is_none() {
        check_endpoint(&reference)?;
    }
    if !args.no_fetch {
        fetch(&experiments, local)?;
    }
    let ann = match &args.ann {
        Some(path) => path.clone(),
        None => build_ann()?,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    eprintln!("reproduce: {} experiment(s), results in {}", experiments.len(), out.display());
    // Record and replay use a cache of the reproduction's own; its settings win over every other.
    let cache = out.join("responses.sqlite");
    let cassette_file = args.cassette.clone().unwrap_or_else(|| cassette::default_cassette(&out));
    let cache_sets = match args.mode {
        Mode::Live => Vec::new(),
        Mode::Record => cassette::cache_sets(&cache, Mode::Record),
        Mode::Replay => {
            cassette::ann_cache(&ann, &[&cassette_file, &cache], "import")?;
            cassette::cache_sets(&cache, Mode::Replay)
        }
    };

    let mut outcomes = Vec::with_capacity(experiments.len());
    for e in &experiments {
        if let Some(why) = e.missing_user_data() {
            outcomes.push(Outcome { experiment: e.clone(), run_dir: None, failure: None, skipped: Some(why) });
            continue;
        }
        eprintln!("\n== {} ({}, {})", e.name, e.benchmark, e.file.display());
        let mut command = Command::new(&ann);
        command.arg("--home").arg(&root).arg("train").arg("--config").arg(&e.file).arg(backend_flag);
        if let Some(n) = limit {
            command.arg("--limit").arg(n.to_string());
        }
        for o in e.sets().iter().chain(&overrides).chain(&cache_sets) {
            command.arg("--set").arg(o);
        }
        if let Some(Recorded::Endpoint { model, base_url }) = &replay {
            command.env(BASE_URL_ENV, base_url).env(MODEL_ENV, model);
        }
        command.arg("--runs-dir").arg(&out).stdin(Stdio::null());
        let failure = match command.status() {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("`ann train` failed ({status})")),
            Err(e) => Some(format!("could not run {}: {e}", ann.display())),
        };
        let run_dir = find_run_dir(&out, &e.name)?;
        let failure = match (&failure, &run_dir) {
            (None, None) => Some("`ann train` left no run directory".to_string()),
            _ => failure,
        };
        outcomes.push(Outcome { experiment: e.clone(), run_dir, failure, skipped: None });
    }

    if args.mode == Mode::Record {
        cassette::ann_cache(&ann, &[&cache, &cassette_file], "export")?;
    }
    let meta = Meta {
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        backend: if local { "local" } else { "openai" }.into(),
        mode: format!("{:?}", args.mode).to_lowercase(),
        cassette: (args.mode != Mode::Live).then_some(cassette_file),
        limit,
        overrides,
        experiments_dir: dir,
    };
    let table = table::build(&outcomes, &reference, &meta)?;
    let md = table::markdown(&table);
    let json = serde_json::to_string_pretty(&table)? + "\n";
    std::fs::write(out.join("table.json"), json).context("writing table.json")?;
    std::fs::write(out.join("table.md"), &md).context("writing table.md")?;
    std::fs::write(out.join("table.html"), table::html(&table)).context("writing table.html")?;
    println!("{md}");
    println!(
        "Table written to {} (and table.json, table.html); run directories beside it.",
        out.join("table.md").display()
    );
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    if failed > 0 {
        bail!("{failed} of {} experiment(s) did not finish (see the table's notes)", outcomes.len());
    }
    Ok(())
}

/// UTC time as a compact RFC 3339 stamp for folder names: `20261124T205700Z` (as `ann` names runs).
fn folder_stamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string().replace(['-', ':'], "")
}

fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Refuse to run (and spend) without an endpoint; note a model other than the paper's.
fn check_endpoint(reference: &Reference) -> Result<()> {
    let paper_model = &reference.paper.model;
    let Some(url) = env_set(BASE_URL_ENV) else {
        bail!(
            "reproduce runs the paper experiments on an OpenAI-compatible endpoint, which bills for them, and \
             {BASE_URL_ENV} is not set. Point it at one, for instance:\n\n    \
             export {BASE_URL_ENV}=https://api.openai.com/v1   # or a vLLM, llama.cpp, Ollama, OpenRouter URL\n    \
             export {MODEL_ENV}={paper_model}                  # the paper's model\n    \
             export ANN_OPENAI_API_KEY=sk-...                   # or OPENAI_API_KEY\n\n\
             then see what each experiment may spend with `cargo xtask reproduce --dry-run`. To check the machinery \
             offline instead, `cargo xtask reproduce --local` runs a short smoke check on the embedded model \
             (its scores mean nothing)."
        );
    };
    let Some(model) = env_set(MODEL_ENV) else {
        bail!("{BASE_URL_ENV} is set ({url}) but {MODEL_ENV} is not: name the model, e.g. {MODEL_ENV}={paper_model}");
    };
    if model != *paper_model && !model.starts_with(&format!("{paper_model}-")) {
        eprintln!(
            "note: the paper's numbers are for {paper_model}; this endpoint's model is {model}, so the comparison \
             is across models"
        );
    }
    Ok(())
}

/// The data files of each benchmark, by the names `fetch-data --only` takes.
fn datasets(benchmark: &str) -> &'static [&'static str] {
    match benchmark {
        "mmlu-ml" => &["mmlu-ml"],
        "math" => &["math-train", "math500"],
        "humaneval" => &["humaneval"],
        "creative-writing" => &["creative-writing"],
        _ => &[],
    }
}

/// Fetch the data of the selected experiments (and the embedded model for `--local`).
fn fetch(experiments: &[Experiment], local: bool) -> Result<()> {
    let mut only: Vec<String> = Vec::new();
    for e in experiments {
        for d in datasets(&e.benchmark) {
            if !only.iter().any(|o| o == d) {
                only.push(d.to_string());
            }
        }
    }
    if !only.is_empty() {
        fetch_data::run(&fetch_data::Args { offline: false, only }).context("fetching the datasets")?;
    }
    if local {
        fetch_model::run(&fetch_model::Args::default()).context("fetching the embedded model")?;
    }
    Ok(())
}

/// Build the `ann` binary in release and return its path (from cargo's JSON messages).
fn build_ann() -> Result<PathBuf> {
    eprintln!("building the `ann` binary (release; the first build takes a few minutes)");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    crate::scrub_package_env(&mut command);
    let output = command
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "ann-cli", "--bin", "ann", "--message-format=json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("building the `ann` binary failed ({})", output.status);
    }
    executable(&String::from_utf8_lossy(&output.stdout), "ann").context("cargo build reported no `ann` executable")
}

/// The executable named `name` among cargo's JSON messages.
pub fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name && m["profile"]["test"] != true)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// The run directory `ann` made for experiment `name` in `out` (`<name>-<UTC time>`), if any.
fn find_run_dir(out: &Path, name: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{name}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix(&prefix)).is_some_and(|stamp| {
                stamp.len() == "20261124T205700Z".len() && stamp.ends_with('Z') && stamp.starts_with(char::is_numeric)
            })
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ann_executable_is_read_from_cargo_messages() {
        let messages = concat!(
            "{\"reason\":\"compiler-artifact\",\"target\":{\"name\":\"ann_experiment\"},\"executable\":null}\n",
            "not json\n",
            "{\"reason\":\"compiler-artifact\",\"target\":{\"name\":\"ann\"},\"profile\":{\"test\":false},\"executable\":\"/t/release/ann\"}\n",
            "{\"reason\":\"compiler-artifact\",\"target\":{\"name\":\"ann\"},\"profile\":{\"test\":true},\"executable\":\"/t/deps/ann-1\"}\n",
            "{\"reason\":\"build-finished\",\"success\":true}\n"
        );
        assert_eq!(executable(messages, "ann"), Some(PathBuf::from("/t/release/ann")));
        assert_eq!(executable(messages, "xtask"), None);
    }

    #[test]
    fn run_directories_are_found_by_experiment_name() {
        let out = tempfile::tempdir().unwrap();
        for d in ["paper-math-20270101T000000Z", "paper-math-extra-20270101T000000Z", "paper-mmlu-ml-20270101T000001Z"]
        {
            std::fs::create_dir(out.path().join(d)).unwrap();
        }
        let found = |name| find_run_dir(out.path(), name).unwrap().map(|p| p.file_name().unwrap().to_owned());
        assert_eq!(found("paper-math"), Some("paper-math-20270101T000000Z".into()));
        assert_eq!(found("paper-mmlu-ml"), Some("paper-mmlu-ml-20270101T000001Z".into()));
        assert_eq!(found("paper-humaneval"), None);
    }

    #[test]
    fn every_paper_experiment_has_reference_numbers_or_says_why_not() {
        let dir = workspace_root().join("experiments/paper");
        let reference = Reference::load(&dir.join(REFERENCE_FILE)).unwrap();
        assert!(reference.paper.provenance.contains("public summaries"), "{}", reference.paper.provenance);
        assert_eq!(reference.paper.model, "gpt-4o-mini");
        let experiments = plan::load_experiments(&dir, &[]).unwrap();
        let stems: Vec<&str> = experiments.iter().map(|e| e.stem.as_str()).collect();
        assert_eq!(
            stems,
            ["creative-writing", "dabench", "humaneval-tools", "humaneval", "math-tools", "math", "mmlu-ml"]
        );
        for e in &experiments {
            let r =
                reference.benchmarks.get(&e.benchmark).unwrap_or_else(|| panic!("no reference for {}", e.benchmark));
            let data = !datasets(&e.benchmark).is_empty() || plan::user_data(&e.benchmark).is_some();
            assert!(data, "{}: which data to fetch, or which variable names the user's", e.benchmark);
            match e.benchmark.as_str() {
                "humaneval" => assert_eq!(r.ann_for("gpt-4o-mini"), Some(("gpt-4o-mini", 93.9))),
                "math" => assert_eq!(r.ann_for("gpt-4o-mini"), Some(("gpt-4o-mini", 82.5))),
                "dabench" => assert_eq!(r.ann_for("gpt-4o-mini"), Some(("gpt-4o-mini", 95.0))),
                other => assert!(r.ann.is_empty() && r.mapping.contains("no paper number"), "{other}: {}", r.mapping),
            }
            // The variants with tools differ from their benchmark's experiment by `benchmark.tools` only.
            if let Some(base) = e.stem.strip_suffix("-tools") {
                assert_eq!(e.tools(), Some(true), "{}", e.stem);
                assert_eq!(e.method_suffix(), " + tools");
                let plain = experiments.iter().find(|p| p.stem == base).unwrap();
                let mut table = e.table.clone();
                table["benchmark"].as_table_mut().unwrap().remove("tools");
                table.insert("name".into(), plain.table["name"].clone());
                table.insert("baselines".into(), plain.table["baselines"].clone());
                assert_eq!(table, plain.table, "{} is {} with tools", e.stem, base);
            }
        }
        let dabench = experiments.iter().find(|e| e.benchmark == "dabench").unwrap();
        assert!(dabench.table["benchmark"].get("data_path").is_none(), "the user's path comes from the environment");
        if std::env::var_os("ANN_DABENCH_DIR").is_none() {
            let why = dabench.missing_user_data().expect("no DABench data here");
            assert!(why.contains("ANN_DABENCH_DIR=") && why.contains("da-dev-questions.jsonl"), "{why}");
        }
        let given = Experiment::load(&dabench.file, &["benchmark.data_path=\"/data/dabench\"".into()]).unwrap();
        assert_eq!(given.missing_user_data(), None);
        // Selection by stem, name or benchmark; unknown names are errors listing the known ones.
        assert_eq!(plan::select(&experiments, &["mmlu-ml".into()]).unwrap().len(), 1);
        assert_eq!(plan::select(&experiments, &["paper-math".into()]).unwrap()[0].benchmark, "math");
        let err = plan::select(&experiments, &["gsm8k".into()]).unwrap_err().to_string();
        assert!(err.contains("gsm8k") && err.contains("creative-writing"), "{err}");
        // `--only humaneval` (the benchmark) selects the experiment and its variant with tools.
        assert_eq!(plan::select(&experiments, &["humaneval".into()]).unwrap().len(), 2);
    }

    #[test]
    fn the_ablations_switch_off_each_part_of_the_method_on_mmlu_ml() {
        let dir = workspace_root().join("experiments/paper");
        let ablations = plan::load_ablations(&dir, &["train.epochs=2".into()]).unwrap();
        let mut switched: Vec<String> = Vec::new();
        for e in &ablations {
            let a = e.ablation.as_ref().unwrap();
            assert_eq!((e.benchmark.as_str(), e.file.file_name().unwrap()), ("mmlu-ml", "mmlu-ml.toml".as_ref()));
            assert_eq!(e.name, format!("paper-mmlu-ml-{}", a.label.replace(' ', "-")));
            assert!(e.baselines().is_empty(), "{}: the full method's run has the baselines", e.name);
            assert_eq!(e.epochs_and_batch().0, Some(2), "the command line's overrides apply too");
            let [switch] = a.switches.as_slice() else { panic!("{}: one switch", e.name) };
            let key = switch.strip_suffix("=true").unwrap().strip_prefix("train.ablations.").unwrap();
            assert_eq!(e.table["train"]["ablations"][key].as_bool(), Some(true), "{}", e.name);
            assert_eq!(e.sets().last(), Some(switch));
            switched.push(key.to_string());
        }
        switched.sort();
        assert_eq!(switched, ["fixed_routing", "no_backward", "no_gate", "no_global_gradient", "no_momentum"]);
        let all: Vec<_> = plan::load_experiments(&dir, &[]).unwrap().into_iter().chain(ablations).collect();
        assert_eq!(plan::select(&all, &["mmlu-ml".into()]).unwrap().len(), 6, "the experiment and its ablations");
    }
}
