//! The run report: initial vs trained scores with bootstrap intervals, baselines, cost, steps (JSON and Markdown).
//!
//! Beside it, in `report/`: `report.html` rendered from a run directory's files (`view`, `html`,
//! `plots`, `diagram`, `changes`), `manifest.json` and `metrics.json` (`artifacts`), and prompt
//! lineage for `ann blame` / `ann diff` (`lineage`).

pub mod artifacts;
pub mod changes;
pub mod costs;
pub mod diagram;
pub mod html;
pub mod lineage;
pub mod plots;
pub mod steps;
pub mod view;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ann_eval::stats::{BootstrapConfig, PairedComparison, Summary, bootstrap_ci, paired_bootstrap};
use ann_llm::{BudgetSpent, Totals};
use ann_textgrad::{Cost, OptimizerState, StopReason, TrainCosts};
use serde::{Deserialize, Serialize};

use crate::baselines::Baseline;
use crate::models::ModelCost;

/// Scores of the starting and the trained network on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    /// Mean with its bootstrap interval (`None` for an empty split).
    pub initial: Option<Summary>,
    pub trained: Option<Summary>,
    /// Paired bootstrap of trained (b) against initial (a) on the same examples.
    pub paired: Option<PairedComparison>,
    /// Examples left out of `initial` / `trained`: their forward hit an infrastructure failure
    /// under the `exclude` policy (never scored 0). Written only when any was.
    #[serde(default, skip_serializing_if = "Excluded::is_none")]
    pub excluded: Excluded,
}

/// How many examples each network's evaluation left out (an infrastructure failure is never a score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Excluded {
    pub initial: usize,
    pub trained: usize,
}

impl Excluded {
    fn is_none(&self) -> bool {
        self.initial == 0 && self.trained == 0
    }
}

/// The scores present, and how many were left out (`None`: excluded).
pub fn present(scores: &[Option<f64>]) -> (Vec<f64>, usize) {
    let kept: Vec<f64> = scores.iter().flatten().copied().collect();
    let excluded = scores.len() - kept.len();
    (kept, excluded)
}

/// The paired bootstrap of `b` against `a` over the examples scored in both.
pub fn paired_present(a: &[Option<f64>], b: &[Option<f64>], config: &BootstrapConfig) -> Option<PairedComparison> {
    let (a, b): (Vec<f64>, Vec<f64>) = a.iter().zip(b).filter_map(|(a, b)| Some(((*a)?, (*b)?))).unzip();
    paired_bootstrap(&a, &b, config).ok()
}

impl SplitScores {
    /// Bootstrap the per-example scores of both networks (same examples, same order).
    pub fn of(initial: &[f64], trained: &[f64], config: &BootstrapConfig) -> Self {
        Self {
            initial: bootstrap_ci(initial, config).ok(),
            trained: bootstrap_ci(trained, config).ok(),
            paired: paired_bootstrap(initial, trained, config).ok(),
            excluded: Excluded::default(),
        }
    }

    /// [`SplitScores::of`] with excluded examples (`None`) left out and counted; the paired
    /// bootstrap uses the examples both networks were scored on.
    pub fn of_present(initial: &[Option<f64>], trained: &[Option<f64>], config: &BootstrapConfig) -> Self {
        let ((i, excluded_initial), (t, excluded_trained)) = (present(initial), present(trained));
        Self {
            initial: bootstrap_ci(&i, config).ok(),
            trained: bootstrap_ci(&t, config).ok(),
            paired: paired_present(initial, trained, config),
            excluded: Excluded { initial: excluded_initial, trained: excluded_trained },
        }
    }
}

/// One baseline's scores on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    pub baseline: Baseline,
    /// Mean with its bootstrap interval (`None` for an empty split).
    pub test: Option<Summary>,
    /// Paired bootstrap of the trained network (b) against this baseline (a) on the same examples.
    pub trained_vs_baseline: Option<PairedComparison>,
    /// What answering the test split cost this baseline (responses as reported; see [`RunCosts`]).
    pub cost: Cost,
    /// Test examples left out (an infrastructure failure under the `exclude` policy); written only when any.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What each part of a run cost, counted from the responses (a cache hit counts like the fresh
/// call it replays, so a run replayed from the cache reports the same costs). Evaluator calls
/// (the creative-writing judge) are not part of a method's cost; [`Report::cost`] has them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunCosts {
    /// Training: the initial validation, forwards, backward calls and validation gates.
    pub training: Cost,
    /// Parts of `training` (zero in reports written before they were kept).
    #[serde(default)]
    pub training_parts: TrainCosts,
    /// The starting and the trained network's forwards on the validation split, for the report.
    #[serde(default)]
    pub validation: Cost,
    /// The starting network's forwards on the test split.
    pub test_initial: Cost,
    /// The trained network's forwards on the test split.
    pub test_trained: Cost,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub name: String,
    pub benchmark: String,
    /// The backend's identity (kind, file or endpoint, model); never a secret.
    pub backend: String,
    pub model: String,
    /// UTC times (RFC 3339) given by the caller's clock.
    pub started_at: String,
    pub finished_at: String,
    /// Examples per split (`train`, `validation`, `test`).
    pub examples: BTreeMap<String, usize>,
    pub stop: StopReason,
    /// Steps taken, accepted, rejected and skipped.
    pub steps: OptimizerState,
    /// Whether training changed the network that is tested.
    pub network_changed: bool,
    pub validation: SplitScores,
    pub test: SplitScores,
    /// The configured baselines on the test split, in the config's order.
    #[serde(default)]
    pub baselines: Vec<BaselineScores>,
    /// Cost of training and of each network's test forwards, as the responses report it.
    #[serde(default)]
    pub costs: RunCosts,
    /// Every call (cache hits included) as the meter saw it, in this process.
    pub cost: Totals,
    /// Per tag (phase, layer, agent) totals of this process.
    pub cost_by_tag: BTreeMap<String, Totals>,
    /// Per model of the run (`worker`, `optimizer` when it has its own model, each model profile):
    /// its model id, backend and what its calls cost in this process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelCost>,
    /// Per model totals of this process.
    #[serde(default)]
    pub cost_by_model: BTreeMap<String, Totals>,
    /// What the hard budget counted (backend calls only) over the whole run, earlier interrupted
    /// parts included (the run's `budget.json`).
    pub budget_spent: BudgetSpent,
}

fn summary(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!("{:.3} [{:.3}, {:.3}] (n={})", s.mean, s.ci_low, s.ci_high, s.n),
        None => "n/a (no examples)".into(),
    }
}

fn paired(p: &Option<PairedComparison>) -> String {
    match p {
        Some(p) => format!(
            "{:+.3} [{:+.3}, {:+.3}], p = {:.3}, trained better in {:.0}% of resamples",
            p.difference,
            p.ci_low,
            p.ci_high,
            p.p_value,
            100.0 * p.fraction_b_better
        ),
        None => "n/a".into(),
    }
}

impl Report {
    /// The human-readable report.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let confidence = self.test.initial.as_ref().or(self.validation.initial.as_ref()).map(|s| s.confidence);
        let level = confidence.map(|c| format!("{:.0}%", 100.0 * c)).unwrap_or_else(|| "95%".into());
        let _ = writeln!(md, "# Run `{}`: {}\n", self.name, self.benchmark);
        let _ = writeln!(md, "- backend: `{}` (model `{}`)", self.backend, self.model);
        let _ = writeln!(md, "- started {}, finished {}", self.started_at, self.finished_at);
        let counts: Vec<String> = self.examples.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(md, "- examples: {}", counts.join(", "));
        let stop = serde_json::to_value(&self.stop).ok().and_then(|v| v["stop"].as_str().map(String::from));
        let _ = writeln!(
            md,
            "- training: {} steps, {} accepted, {} rejected, {} skipped; stopped: {}; network changed: {}\n",
            self.steps.steps,
            self.steps.accepted,
            self.steps.rejected,
            self.steps.skipped,
            stop.unwrap_or_default(),
            if self.network_changed { "yes" } else { "no" }
        );
        let _ = writeln!(md, "| split | initial (mean [{level} CI]) | trained (mean [{level} CI]) |");
        let _ = writeln!(md, "|---|---|---|");
        for (name, s) in [("validation", &self.validation), ("test", &self.test)] {
            let _ = writeln!(md, "| {name} | {} | {} |", summary(&s.initial), summary(&s.trained));
        }
        for (name, s) in [("validation", &self.validation), ("test", &self.test)] {
            if !s.excluded.is_none() {
                let _ = writeln!(
                    md,
                    "\n{name}: excluded (infrastructure failures, not scored) {} initial, {} trained",
                    s.excluded.initial, s.excluded.trained
                );
            }
        }
        let _ = writeln!(md, "\nPaired bootstrap, trained - initial on test: {}\n", paired(&self.test.paired));
        if !self.baselines.is_empty() {
            let _ = writeln!(md, "Baselines on test (fixed networks, same model, cache, budget and evaluator):\n");
            let _ = writeln!(md, "| baseline | test (mean [{level} CI]) | trained - baseline (paired) |");
            let _ = writeln!(md, "|---|---|---|");
            for b in &self.baselines {
                let _ = writeln!(md, "| {} | {} | {} |", b.baseline, summary(&b.test), paired(&b.trained_vs_baseline));
                if b.excluded > 0 {
                    let _ = writeln!(md, "| ({} excluded: infrastructure failures, not scored) | | |", b.excluded);
                }
            }
            let _ = writeln!(md);
        }
        md.push_str(&costs::markdown(self));
        if !self.models.is_empty() {
            let _ = writeln!(md, "\nPer model (metered in this process; one budget for all):\n");
            let _ = writeln!(md, "| model | id | backend | calls | cache hits | tokens | cost |");
            let _ = writeln!(md, "|---|---|---|---|---|---|---|");
            for (name, m) in &self.models {
                let c = &m.cost;
                let _ = writeln!(
                    md,
                    "| {name} | `{}` | `{}` | {} | {} | {} | ${:.4} |",
                    m.model,
                    m.backend,
                    c.calls,
                    c.cache_hits,
                    c.prompt_tokens.saturating_add(c.completion_tokens),
                    c.dollars
                );
            }
        }
        md
    }
}

/// One row of the cost table: a phase (`phase forward`) or a model (`model <name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub label: String,
    pub totals: Totals,
}

/// The metered totals by phase, then by model.
pub fn cost_rows(report: &Report) -> Vec<CostRow> {
    let phases = report
        .cost_by_tag
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("phase=").map(|p| CostRow { label: format!("phase {p}"), totals: *t }));
    let models = report.cost_by_model.iter().map(|(m, t)| CostRow { label: format!("model {m}"), totals: *t });
    phases.chain(models).collect()
}

/// The report with its training steps explained (`report.md`): [`Report::to_markdown`], then
/// each step's gradient, patch, changes and decision read back from the run's journal.
pub fn markdown(run_dir: &std::path::Path, report: &Report) -> anyhow::Result<String> {
    let view = view::RunView::load(run_dir)?;
    Ok(format!(
        "{}
{}",
        report.to_markdown(),
        steps::markdown(&view)
    ))
}

/// Write [`markdown`] to the run directory's `report.md`; returns its path.
pub fn write_markdown(run_dir: &std::path::Path, report: &Report) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let path = run_dir.join(crate::run::REPORT_MD);
    let text = markdown(run_dir, report)?;
    ann_llm::write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// File name of the HTML report in a run directory.
pub const REPORT_HTML: &str = "report.html";

/// Render `report.html` from the files of `run_dir` (diagrams by Graphviz when installed) and
/// write it there; returns its path.
pub fn write_html(run_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let view = view::RunView::load(run_dir)?;
    let page = html::render(&view, &|net| diagram::render(net).0);
    let path = run_dir.join(REPORT_HTML);
    ann_llm::write_atomic(&path, page.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
