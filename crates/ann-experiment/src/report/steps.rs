//! The training steps in words, for `report.md` and the terminal: per step the batch's scores,
//! the global gradient's summary, the patch and what it changes, and the gate's decision with
//! its reason explained (a rejected step says why).

use std::fmt::Write as _;

use ann_textgrad::{ComponentStatus, Decision, JournalEvent, Reason};

use super::changes::{Change, replay, word_diff_text};
use super::view::RunView;

/// Longest gradient or changed text quoted per item (the full text is in `report.html`).
const QUOTE_CHARS: usize = 240;

/// What a rejection reason means, in a sentence.
pub fn explain(reason: &Reason) -> String {
    match reason {
        Reason::NoBatchGain => {
            "the candidate network did not score better than the current one on the batch's failing examples \
             (the pre-check), so validation was not run"
                .into()
        }
        Reason::NoValidationGain => {
            "the candidate network's validation score did not beat the current network's (the validation gate)".into()
        }
        Reason::CallFailed => "the optimiser call that should have written the patch failed".into(),
        Reason::Empty => "the optimiser proposed no change (an empty patch)".into(),
        Reason::Unparsable => "no patch could be read from the optimiser's answer".into(),
        Reason::UnknownOp => "the patch used an operation the patch language does not have".into(),
        Reason::UnknownId => "the patch named a layer or agent the network does not have".into(),
        Reason::Invariant(rule) => {
            format!("the patched network would break the format gate's rule `{rule}`")
        }
    }
}

/// `text` on one line, cut to [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn change_line(change: &Change) -> String {
    match (&change.before, &change.after) {
        (Some(a), Some(b)) => format!("{}: {}", change.place(), quote(&word_diff_text(a, b))),
        (None, Some(b)) => format!("{} added: {}", change.place(), quote(b)),
        (Some(a), None) => format!("{} removed: {}", change.place(), quote(a)),
        (None, None) => change.place(),
    }
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "not run".into(), |v| format!("{v:.3}"))
}

/// The `## Training steps` section of `report.md`.
pub fn markdown(view: &RunView) -> String {
    let mut md = String::from("## Training steps\n\n");
    if let Some(v) = view.val_initial() {
        let _ = writeln!(md, "The starting network scored {v:.3} on the validation split.\n");
    }
    let Some(initial) = &view.initial else {
        md.push_str("(no starting network in the run directory)\n");
        return md;
    };
    let steps = replay(initial, view.steps());
    let mut steps = steps.iter();
    let mut any = false;
    for event in &view.journal {
        match event {
            JournalEvent::Skip { epoch, batch, examples, .. } => {
                any = true;
                let _ = writeln!(
                    md,
                    "- Epoch {epoch}, batch {batch}: all {} examples scored 1, so no backward step.\n",
                    examples.len()
                );
            }
            JournalEvent::Step(_) => {
                let Some(step) = steps.next() else { continue };
                any = true;
                let s = step.record;
                let failing = s.examples.iter().filter(|e| e.score < 1.0 && !e.excluded).count();
                let verdict = match &s.decision {
                    Decision::Accepted => {
                        format!("**accepted**: validation {:.3} → {}", s.val_before, score(s.val_candidate))
                    }
                    Decision::Rejected { reason } => format!(
                        "**rejected** (`{reason}`): {}; validation stays {:.3} (candidate: {})",
                        explain(reason),
                        s.val_before,
                        score(s.val_candidate)
                    ),
                };
                let _ = writeln!(md, "### Step {} (epoch {}, batch {}): {verdict}\n", s.step, s.epoch, s.batch);
                let _ = writeln!(md, "- batch: {failing} of {} examples failed", s.examples.len());
                if let Some((current, candidate)) = s.pre_check {
                    let _ = writeln!(
                        md,
                        "- pre-check on the failing examples: current {current:.3}, candidate {candidate:.3}"
                    );
                }
                let _ = writeln!(md, "- global gradient: {}", quote(&s.global.diagnosis));
                for l in s.global.layers.iter().filter(|l| l.blame > 0.0) {
                    let _ = writeln!(md, "  - layer `{}` (blame {:.2}): {}", l.layer, l.blame, quote(&l.direction));
                }
                for c in &s.components {
                    let ops: Vec<String> = c.ops.iter().map(|o| o.summary()).collect();
                    let status = match &c.status {
                        ComponentStatus::Merged => "merged".to_string(),
                        ComponentStatus::Rejected(reason) => format!("dropped: {}", explain(reason)),
                    };
                    let ops = if ops.is_empty() { "no op".to_string() } else { ops.join(", ") };
                    let _ = writeln!(md, "- patch for `{}`: {ops} ({status})", c.scope);
                }
                match &step.candidate {
                    None => md.push_str("- change: nothing was merged\n"),
                    Some(Err(e)) => {
                        let _ = writeln!(md, "- change: the journal's patch does not apply ({e})");
                    }
                    Some(Ok(_)) => {
                        for change in step.changes() {
                            let _ = writeln!(md, "- change: {}", change_line(&change));
                        }
                    }
                }
                md.push('\n');
            }
            JournalEvent::Start { .. } | JournalEvent::End { .. } => {}
        }
    }
    if !any {
        md.push_str("No training batch ran.\n");
    }
    md
}
