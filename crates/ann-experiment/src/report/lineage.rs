//! Prompt lineage: which accepted step introduced each line of a trained prompt (`ann blame`),
//! and what differs between two networks (`ann diff`).

use ann_graph::Network;
use ann_textgrad::StepRecord;
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::changes::{Change, network_changes, replay, word_diff_text};
use super::view::RunView;

/// The accepted step that introduced a line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    pub step: u64,
    pub epoch: usize,
    pub batch: usize,
    /// The first line of the layer's local gradient (or of the global diagnosis).
    pub gradient: String,
    pub val_before: f64,
    pub val_after: Option<f64>,
}

/// One line of a prompt and where it came from (`None`: the starting network).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlameLine {
    pub text: String,
    pub origin: Option<Origin>,
}

/// The blamed prompt of one agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentBlame {
    pub layer: String,
    pub agent: String,
    pub lines: Vec<BlameLine>,
}

fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

fn origin(step: &StepRecord, layer: &str) -> Origin {
    let local = step.components.iter().find(|c| c.scope.layer() == Some(layer)).and_then(|c| c.text.as_ref());
    let gradient = local
        .map(|t| first_line(&t.gradient))
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| first_line(&step.global.diagnosis));
    Origin {
        step: step.step,
        epoch: step.epoch,
        batch: step.batch,
        gradient,
        val_before: step.val_before,
        val_after: step.val_candidate,
    }
}

/// Carry `old` lines' origins into `new` text: unchanged lines keep theirs, inserted ones get `made`.
fn carry(old: &[BlameLine], new: &str, made: &Origin) -> Vec<BlameLine> {
    let old_text: Vec<&str> = old.iter().map(|l| l.text.as_str()).collect();
    let new_text: Vec<&str> = new.lines().collect();
    let diff = TextDiff::from_slices(&old_text, &new_text);
    let mut out = Vec::new();
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            match change.tag() {
                ChangeTag::Equal => {
                    let i = change.old_index().expect("an equal line has an old index");
                    out.push(old[i].clone());
                }
                ChangeTag::Insert => {
                    out.push(BlameLine { text: change.value().to_string(), origin: Some(made.clone()) })
                }
                ChangeTag::Delete => {}
            }
        }
    }
    out
}

fn initial_lines(prompt: &str) -> Vec<BlameLine> {
    prompt.lines().map(|l| BlameLine { text: l.to_string(), origin: None }).collect()
}

/// Blame every agent prompt of the network the journal's accepted steps lead to (optionally one
/// layer, one agent). An error when the run has no starting network or nothing matches.
pub fn blame(view: &RunView, layer: Option<&str>, agent: Option<&str>) -> anyhow::Result<Vec<AgentBlame>> {
    let Some(initial) = &view.initial else { anyhow::bail!("the run directory has no network-initial.json") };
    let mut state: Vec<AgentBlame> = Vec::new();
    let seed = |net: &Network| -> Vec<AgentBlame> {
        net.layers
            .iter()
            .flat_map(|l| {
                l.agents.iter().map(|a| AgentBlame {
                    layer: l.id.clone(),
                    agent: a.id.clone(),
                    lines: initial_lines(&a.prompt),
                })
            })
            .collect()
    };
    state.extend(seed(initial));
    for step in replay(initial, view.steps()) {
        let (true, Some(Ok(after))) = (step.record.decision.is_accepted(), &step.candidate) else { continue };
        let mut next = Vec::new();
        for l in &after.layers {
            let made = origin(step.record, &l.id);
            for a in &l.agents {
                let old = state
                    .iter()
                    .find(|b| b.layer == l.id && b.agent == a.id)
                    .map(|b| b.lines.as_slice())
                    .unwrap_or(&[]);
                next.push(AgentBlame { layer: l.id.clone(), agent: a.id.clone(), lines: carry(old, &a.prompt, &made) });
            }
        }
        state = next;
    }
    let chosen: Vec<AgentBlame> = state
        .into_iter()
        .filter(|b| layer.is_none_or(|l| b.layer == l) && agent.is_none_or(|a| b.agent == a))
        .collect();
    if chosen.is_empty() {
        let what = format!("layer {} agent {}", layer.unwrap_or("*"), agent.unwrap_or("*"));
        anyhow::bail!("the trained network has no {what}");
    }
    Ok(chosen)
}

/// `ann blame`'s text: per agent a heading, then per run of lines from one origin the origin
/// (`initial`, or `step N (epoch, batch; validation a → b): gradient`) and its lines as `    | line`.
pub fn blame_text(blames: &[AgentBlame]) -> String {
    let mut out = String::new();
    for b in blames {
        out.push_str(&format!("== layer {}, agent {} ==\n", b.layer, b.agent));
        let mut last: Option<Option<&Origin>> = None;
        for line in &b.lines {
            if last != Some(line.origin.as_ref()) {
                let who = match &line.origin {
                    None => "initial".to_string(),
                    Some(o) => {
                        let after = o.val_after.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
                        format!(
                            "step {} (epoch {}, batch {}; validation {:.3} → {after}): {}",
                            o.step, o.epoch, o.batch, o.val_before, o.gradient
                        )
                    }
                };
                out.push_str(&format!("{who}\n"));
                last = Some(line.origin.as_ref());
            }
            out.push_str(&format!("    | {}\n", line.text));
        }
    }
    out
}

/// `ann diff`'s text: one paragraph per change, text fields as word diffs.
pub fn diff_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "the networks are the same\n".into();
    }
    let mut out = String::new();
    for c in changes {
        match (&c.before, &c.after) {
            (Some(a), Some(b)) => {
                out.push_str(&format!("~ {}\n  {}\n", c.place(), word_diff_text(a, b).replace('\n', "\n  ")))
            }
            (None, Some(b)) => out.push_str(&format!("+ {}\n  {}\n", c.place(), b.replace('\n', "\n  "))),
            (Some(a), None) => out.push_str(&format!("- {}\n  {}\n", c.place(), a.replace('\n', "\n  "))),
            (None, None) => {}
        }
    }
    out
}

/// The network a path names: a network file (JSON or YAML), a checkpoint (its current network),
/// or a run directory (its trained network, else its checkpoint's, else its starting one).
pub fn load_network(path: &std::path::Path) -> anyhow::Result<Network> {
    use anyhow::Context;
    if path.is_dir() {
        for file in [super::view::NETWORK_TRAINED, ann_textgrad::journal::CHECKPOINT_FILE, super::view::NETWORK_INITIAL]
        {
            if path.join(file).is_file() {
                return load_network(&path.join(file));
            }
        }
        anyhow::bail!(
            "{} holds no network (network-trained.json, checkpoint.json or network-initial.json)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.file_name().is_some_and(|n| n == ann_textgrad::journal::CHECKPOINT_FILE) {
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let network = value.get("network").with_context(|| format!("{}: no `network` key", path.display()))?;
        return Network::from_json(&network.to_string()).with_context(|| format!("{}: key `network`", path.display()));
    }
    Network::load(path).with_context(|| format!("reading {}", path.display()))
}

/// What differs from the network at `a` to the one at `b`.
pub fn diff(a: &std::path::Path, b: &std::path::Path) -> anyhow::Result<Vec<Change>> {
    Ok(network_changes(&load_network(a)?, &load_network(b)?))
}
