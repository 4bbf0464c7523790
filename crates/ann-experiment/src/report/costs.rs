//! One cost table with named rows: which part of a run made which calls, and how the three ways
//! of counting (responses per part, this process's meter, the hard budget) relate.
//!
//! The part rows count responses (a cache hit counts like the call it replays, so a replayed run
//! shows the same rows) and add up to the total row. The meter row counts every call this process
//! made, cache hits included, judges too; the budget row counts the backend requests the run paid
//! for, retries included, over every process of the run (a resume adds to it).

use std::fmt::Write as _;

use ann_textgrad::Cost;

use super::Report;
use crate::baselines::Baseline;

/// One row of the cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    /// What the calls were for (`training: optimiser (loss, gradients, patches)`, `test: trained network`, ...).
    pub label: String,
    pub calls: u64,
    pub tokens: u64,
    pub dollars: f64,
    /// How the row is counted, when it is not one of the parts.
    pub note: String,
}

impl CostLine {
    fn of(label: impl Into<String>, c: &Cost) -> Self {
        Self {
            label: label.into(),
            calls: c.calls,
            tokens: c.prompt_tokens.saturating_add(c.completion_tokens),
            dollars: c.dollars,
            note: String::new(),
        }
    }
}

/// The parts of the run in the order they ran, each baseline included; the last row is their total.
pub fn part_lines(r: &Report) -> Vec<CostLine> {
    let c = &r.costs;
    let parts = &c.training_parts;
    let mut lines = Vec::new();
    if *parts == Default::default() {
        // A report written before training was counted in parts.
        lines.push(CostLine::of("training (all of it)", &c.training));
    } else {
        lines.push(CostLine::of("training: starting network on the validation split", &parts.initial_validation));
        lines.push(CostLine::of("training: forward passes of the training batches", &parts.forwards(&c.training)));
        lines.push(CostLine::of("training: optimiser (losses, gradients, patches)", &parts.optimizer));
        lines.push(CostLine::of("training: validation gate (candidate networks)", &parts.gate));
    }
    lines.push(CostLine::of("report: starting and trained network on the validation split", &c.validation));
    lines.push(CostLine::of("test: starting network", &c.test_initial));
    lines.push(CostLine::of("test: trained network", &c.test_trained));
    let mut total = c.training.plus(&c.validation).plus(&c.test_initial).plus(&c.test_trained);
    for b in &r.baselines {
        if b.baseline == Baseline::Start {
            // The starting network's test evaluation, reused: no call of its own.
            let mut line = CostLine::of(format!("baseline {}", b.baseline), &Cost::default());
            line.note = "the same calls as `test: starting network`, not counted again".into();
            lines.push(line);
        } else {
            lines.push(CostLine::of(format!("baseline {}", b.baseline), &b.cost));
            total = total.plus(&b.cost);
        }
    }
    let mut line = CostLine::of("total of the rows above", &total);
    line.note = "as the responses report them; a cache hit counts like the call it replays".into();
    lines.push(line);
    lines
}

/// The two other counts: this process's meter and the hard budget.
pub fn other_lines(r: &Report) -> Vec<CostLine> {
    let m = &r.cost;
    let b = &r.budget_spent;
    vec![
        CostLine {
            label: "metered in this process".into(),
            calls: m.calls,
            tokens: m.prompt_tokens.saturating_add(m.completion_tokens),
            dollars: m.dollars,
            note: format!(
                "every call of the process that finished the run, evaluator calls too; {} answered by the response \
                 cache (no token, no dollar)",
                m.cache_hits
            ),
        },
        CostLine {
            label: "budget: paid backend requests".into(),
            calls: b.calls,
            tokens: b.tokens,
            dollars: b.dollars,
            note: "what the hard budget counted over the whole run (every process, retries included; no cache hit)"
                .into(),
        },
    ]
}

/// The table as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut md = String::from(
        "## Cost\n\n| part of the run | calls | tokens | dollars | how counted |\n|---|---|---|---|---|\n",
    );
    for line in part_lines(r).iter().chain(&other_lines(r)) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | ${:.4} | {} |",
            line.label, line.calls, line.tokens, line.dollars, line.note
        );
    }
    md
}
