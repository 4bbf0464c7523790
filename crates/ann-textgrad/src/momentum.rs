//! Momentum in text: per scope, the last W steps, rendered as a PAST ITERATIONS block.
//!
//! Scopes are the global gradient and each layer id. Each entry keeps a bounded gradient summary,
//! the patch summary (op kinds and ids), the outcome with its reason and the validation scores
//! before and after, so the context a prompt carries never grows with the run. A rejected entry
//! stays (it is what momentum needs); a removed layer's buffer is dropped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use ann_graph::Network;
use serde::{Deserialize, Serialize};

use crate::decision::Decision;

/// Longest gradient summary kept, in characters.
pub const GRADIENT_SUMMARY_CHARS: usize = 300;
/// Longest patch summary kept, in characters.
pub const PATCH_SUMMARY_CHARS: usize = 300;

/// The three standing rules every momentum block ends with.
pub const STANDING_RULES: [&str; 3] = [
    "Feedback that repeats across steps means the earlier edits were too weak: make a larger or different change.",
    "Do not re-propose an edit that was rejected unless the evidence changed.",
    "Keep and extend directions that were accepted and raised the validation score.",
];

/// One past step of one scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MomentumEntry {
    pub step: u64,
    /// At most [`GRADIENT_SUMMARY_CHARS`] characters.
    pub gradient_summary: String,
    /// Op kinds and ids, at most [`PATCH_SUMMARY_CHARS`] characters.
    pub patch_summary: String,
    /// What the gate decided on the step's edit (stored as `{"outcome": "accepted"}` or
    /// `{"outcome": "rejected", "reason": ...}`).
    #[serde(with = "crate::decision::as_outcome")]
    pub outcome: Decision,
    /// The current network's validation score when the step began.
    pub val_before: Option<f64>,
    /// The candidate's validation score, when it was measured.
    pub val_after: Option<f64>,
}

impl MomentumEntry {
    /// An entry with its texts cut to the bounds.
    pub fn new(
        step: u64,
        gradient_summary: &str,
        patch_summary: &str,
        outcome: Decision,
        val_before: Option<f64>,
        val_after: Option<f64>,
    ) -> Self {
        Self {
            step,
            gradient_summary: clip(gradient_summary, GRADIENT_SUMMARY_CHARS),
            patch_summary: clip(patch_summary, PATCH_SUMMARY_CHARS),
            outcome,
            val_before,
            val_after,
        }
    }
}

/// One line, at most `max` characters (an ellipsis marks a cut).
fn clip(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if flat.chars().count() > max => format!("{}…", &flat[..cut]),
        _ => flat,
    }
}

/// Which momentum buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Global,
    Layer(&'a str),
}

/// The ring buffers of every scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Momentum {
    /// W: entries kept per scope.
    pub window: usize,
    pub global: VecDeque<MomentumEntry>,
    pub layers: BTreeMap<String, VecDeque<MomentumEntry>>,
}

impl Default for Momentum {
    fn default() -> Self {
        Self::new(3)
    }
}

impl Momentum {
    /// Empty buffers of `window` entries each.
    pub fn new(window: usize) -> Self {
        Self { window, global: VecDeque::new(), layers: BTreeMap::new() }
    }

    fn buffer(&self, scope: Scope<'_>) -> Option<&VecDeque<MomentumEntry>> {
        match scope {
            Scope::Global => Some(&self.global),
            Scope::Layer(id) => self.layers.get(id),
        }
    }

    /// The entries of a scope, oldest first.
    pub fn entries(&self, scope: Scope<'_>) -> Vec<&MomentumEntry> {
        self.buffer(scope).map(|b| b.iter().collect()).unwrap_or_default()
    }

    /// Append an entry, dropping the oldest beyond the window.
    pub fn record(&mut self, scope: Scope<'_>, entry: MomentumEntry) {
        if self.window == 0 {
            return;
        }
        let buffer = match scope {
            Scope::Global => &mut self.global,
            Scope::Layer(id) => self.layers.entry(id.to_string()).or_default(),
        };
        buffer.push_back(entry);
        while buffer.len() > self.window {
            buffer.pop_front();
        }
    }

    /// Drop the buffers of layers the network no longer has.
    pub fn retain_layers(&mut self, net: &Network) {
        self.layers.retain(|id, _| net.layer(id).is_some());
    }

    /// The PAST ITERATIONS block of a scope (oldest first, the newest marked), or `None` when empty.
    pub fn render(&self, scope: Scope<'_>) -> Option<String> {
        let entries = self.entries(scope);
        if entries.is_empty() {
            return None;
        }
        let mut s = String::from("PAST ITERATIONS (oldest first):\n");
        let last = entries.len() - 1;
        for (i, e) in entries.iter().enumerate() {
            let newest = if i == last { " [MOST RECENT]" } else { "" };
            let outcome = match &e.outcome {
                Decision::Accepted => "accepted".to_string(),
                Decision::Rejected { reason } => format!("rejected ({reason})"),
            };
            let val = match (e.val_before, e.val_after) {
                (Some(b), Some(a)) => format!("validation {b:.3} -> {a:.3}"),
                (Some(b), None) => format!("validation {b:.3}, candidate not validated"),
                _ => "validation not measured".to_string(),
            };
            let _ = writeln!(
                s,
                "- step {}{newest}: gradient: {} | edit: {} | outcome: {outcome} | {val}",
                e.step, e.gradient_summary, e.patch_summary
            );
        }
        s.push_str("Standing rules:\n");
        for (i, rule) in STANDING_RULES.iter().enumerate() {
            let _ = writeln!(s, "{}. {rule}", i + 1);
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use crate::testing::sample_network;

    fn entry(step: u64, outcome: Decision) -> MomentumEntry {
        MomentumEntry::new(step, "the answer lacks units", "set_prompt solve/a1", outcome, Some(0.5), Some(0.25))
    }

    #[test]
    fn ring_buffer_keeps_the_last_window() {
        let mut m = Momentum::new(3);
        for step in 1..=5 {
            m.record(Scope::Layer("solve"), entry(step, Decision::Accepted));
        }
        let steps: Vec<u64> = m.entries(Scope::Layer("solve")).iter().map(|e| e.step).collect();
        assert_eq!(steps, [3, 4, 5]);
        assert!(m.entries(Scope::Global).is_empty());
        assert_eq!(m.render(Scope::Global), None);
        let mut off = Momentum::new(0);
        off.record(Scope::Global, entry(1, Decision::Accepted));
        assert_eq!(off.render(Scope::Global), None);
    }

    #[test]
    fn entries_are_bounded() {
        let long = "word ".repeat(500);
        let e = MomentumEntry::new(1, &long, &long, Decision::rejected(Reason::Empty), None, None);
        assert_eq!(e.gradient_summary.chars().count(), GRADIENT_SUMMARY_CHARS);
        assert_eq!(e.patch_summary.chars().count(), PATCH_SUMMARY_CHARS);
        let mut m = Momentum::new(3);
        for step in 0..100 {
            m.record(Scope::Global, MomentumEntry::new(step, &long, &long, Decision::Accepted, None, None));
        }
        assert!(m.render(Scope::Global).unwrap().len() < 3 * 800 + 600);
    }

    #[test]
    fn removed_layers_lose_their_buffer() {
        let mut m = Momentum::new(3);
        m.record(Scope::Layer("solve"), entry(1, Decision::Accepted));
        m.record(Scope::Layer("gone"), entry(1, Decision::Accepted));
        m.retain_layers(&sample_network());
        assert_eq!(m.layers.keys().collect::<Vec<_>>(), ["solve"]);
    }

    #[test]
    fn render_snapshot() {
        let mut m = Momentum::new(3);
        m.record(Scope::Global, entry(1, Decision::rejected(Reason::NoBatchGain)));
        m.record(Scope::Global, entry(2, Decision::rejected(Reason::UnknownId)));
        m.record(
            Scope::Global,
            MomentumEntry::new(
                3,
                "answers lack a final line",
                "set_prompt verify/a1",
                Decision::Accepted,
                Some(0.5),
                Some(0.75),
            ),
        );
        insta::assert_snapshot!(m.render(Scope::Global).unwrap());
    }
}
