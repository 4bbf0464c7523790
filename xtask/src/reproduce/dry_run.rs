//! `cargo xtask reproduce --dry-run`: what each experiment would run, on which data, and the most
//! its budget lets it spend.

use std::path::Path;

use super::plan::{self, Experiment, Reference};
use super::{BASE_URL_ENV, MODEL_ENV, env_set};
use crate::{cache_dir, workspace_root};

fn size(s: Option<i64>) -> String {
    s.map(|n| n.to_string()).unwrap_or_else(|| "all".into())
}

pub(super) fn print_plan(
    experiments: &[Experiment],
    reference: &Reference,
    dir: &Path,
    limit: Option<usize>,
    overrides: &[String],
    backend_flag: &str,
    out: &Path,
) {
    let backend = if backend_flag == "--local" {
        "the embedded offline model (smoke check)".to_string()
    } else {
        let model = env_set(MODEL_ENV).unwrap_or_else(|| format!("<{MODEL_ENV}, unset>"));
        let url = env_set(BASE_URL_ENV).unwrap_or_else(|| format!("<{BASE_URL_ENV}, unset>"));
        format!("the OpenAI-compatible endpoint {url}, model {model}")
    };
    println!("Dry run: nothing is run. Experiments in {} on {backend}", dir.display());
    if let Some(n) = limit {
        println!("Every split capped at {n} examples (the numbers are then not comparable to the paper's).");
    }
    if !overrides.is_empty() {
        println!("Overrides: {}", overrides.join(" "));
    }
    let mut total_dollars = 0.0;
    let mut unbounded = false;
    for e in experiments {
        let [train, validation, test] = e.sizes(limit);
        let (epochs, batch) = e.epochs_and_batch();
        let budget = e.budget();
        println!("\n{} ({}): benchmark {}", e.name, e.file.display(), e.benchmark);
        if let Some(a) = &e.ablation {
            println!("  ablation: {} ({})", a.label, a.switches.join(", "));
        }
        println!(
            "  splits: {} train / {} validation / {} test; up to {} epochs, batch {}",
            size(train),
            size(validation),
            size(test),
            epochs.map(|n| n.to_string()).unwrap_or_else(|| "3 (default)".into()),
            batch.map(|n| n.to_string()).unwrap_or_else(|| "4 (default)".into())
        );
        let baselines = e.baselines();
        println!("  baselines: {}", if baselines.is_empty() { "none".into() } else { baselines.join(", ") });
        let paper = reference.benchmarks.get(&e.benchmark).and_then(|r| r.ann_for(&reference.paper.model));
        match paper {
            Some((model, value)) => println!("  paper: ANN {value:.1}% with {model}"),
            None => println!("  paper: no number"),
        }
        let dollars = budget.max_dollars.map(|d| format!("${d:.2}")).unwrap_or_else(|| "no dollar cap".into());
        let calls = budget.max_calls.map(|n| format!("{n} calls")).unwrap_or_else(|| "no call cap".into());
        let tokens = budget.max_tokens.map(|n| format!("{n} tokens")).unwrap_or_else(|| "no token cap".into());
        println!("  budget (hard caps of the whole run): at most {dollars}, {calls}, {tokens}");
        match budget.max_dollars {
            Some(d) => total_dollars += d,
            None => unbounded = true,
        }
        if let Some(model) = e.model() {
            println!("  config model: {model} (with --openai the endpoint's model is used and priced)");
        }
        if let Some(tools) = e.tools() {
            println!("  tools: {}", if tools { "the benchmark's starting network with tools" } else { "none" });
        }
        if let Some((var, what)) = plan::user_data(&e.benchmark) {
            match e.missing_user_data() {
                Some(why) => println!("  data: NOT GIVEN, the experiment will be skipped: {why}"),
                None => println!("  data: the user's copy of {what}, from {var} or benchmark.data_path"),
            }
        }
        let mut command =
            format!("ann --home {} train --config {} {backend_flag}", workspace_root().display(), e.file.display());
        if let Some(n) = limit {
            command.push_str(&format!(" --limit {n}"));
        }
        for o in e.sets().iter().chain(overrides) {
            command.push_str(&format!(" --set '{o}'"));
        }
        command.push_str(&format!(" --runs-dir {}", out.display()));
        println!("  would run: {command}");
    }
    let cap = if unbounded { " (and one without a dollar cap)".to_string() } else { String::new() };
    println!(
        "\nAt most ${total_dollars:.2} in all{cap}; the dollar caps count only models the price table knows, the call \
         and token caps count every call. Data from {}.",
        cache_dir().join("data").display()
    );
}
