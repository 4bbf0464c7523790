//! What changed between two networks (prompts, roles, aggregators, layers), and the journal's
//! accepted patches replayed step by step, with word diffs for people to read.

use ann_graph::{Agent, Layer, Network};
use ann_textgrad::StepRecord;
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::html::escape;

/// Which part of a network a [`Change`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    TaskDescription,
    /// The order of the layers both networks have.
    LayerOrder,
    /// A whole layer (added or removed).
    Layer,
    Subtask,
    Aggregators,
    DefaultAggregator,
    RoutingHint,
    OutputSpec,
    /// A whole agent (added or removed).
    Agent,
    Role,
    Prompt,
    Temperature,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskDescription => "task description",
            Self::LayerOrder => "layer order",
            Self::Layer => "layer",
            Self::Subtask => "subtask",
            Self::Aggregators => "aggregators",
            Self::DefaultAggregator => "default aggregator",
            Self::RoutingHint => "routing hint",
            Self::OutputSpec => "output spec",
            Self::Agent => "agent",
            Self::Role => "role",
            Self::Prompt => "prompt",
            Self::Temperature => "temperature",
        }
    }

    /// A change of the network's shape (layers, agents, aggregators) rather than of its text.
    pub fn is_structural(self) -> bool {
        matches!(self, Self::LayerOrder | Self::Layer | Self::Agent | Self::Aggregators | Self::DefaultAggregator)
    }
}

/// One difference between two networks: `before` absent for an addition, `after` for a removal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: Field,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    /// Where the change is: `layer answer, agent a1: prompt`.
    pub fn place(&self) -> String {
        let mut out = String::new();
        if let Some(layer) = &self.layer {
            out.push_str(&format!("layer {layer}"));
        }
        if let Some(agent) = &self.agent {
            out.push_str(&format!(", agent {agent}"));
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(self.field.as_str());
        out
    }
}

fn agent_text(a: &Agent) -> String {
    format!("{} ({})\n{}", a.id, a.role, a.prompt)
}

fn layer_text(l: &Layer) -> String {
    let agents: Vec<&str> = l.agents.iter().map(|a| a.id.as_str()).collect();
    format!("{}: {} [agents {}; aggregators {}]", l.id, l.subtask, agents.join(", "), aggregators(l))
}

fn aggregators(l: &Layer) -> String {
    l.aggregators.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Every difference from `a` to `b`, in `b`'s order (removed parts first where they were).
pub fn network_changes(a: &Network, b: &Network) -> Vec<Change> {
    let mut out = Vec::new();
    let change = |field, layer: Option<&str>, agent: Option<&str>, before: Option<String>, after: Option<String>| {
        Change { field, layer: layer.map(String::from), agent: agent.map(String::from), before, after }
    };
    if a.task_description != b.task_description {
        out.push(change(
            Field::TaskDescription,
            None,
            None,
            Some(a.task_description.clone()),
            Some(b.task_description.clone()),
        ));
    }
    let common = |x: &Network, y: &Network| -> Vec<String> {
        x.layers.iter().filter(|l| y.layer(&l.id).is_some()).map(|l| l.id.clone()).collect()
    };
    let (order_a, order_b) = (common(a, b), common(b, a));
    if order_a != order_b {
        out.push(change(Field::LayerOrder, None, None, Some(order_a.join(" → ")), Some(order_b.join(" → "))));
    }
    for l in a.layers.iter().filter(|l| b.layer(&l.id).is_none()) {
        out.push(change(Field::Layer, Some(&l.id), None, Some(layer_text(l)), None));
    }
    for lb in &b.layers {
        let Some(la) = a.layer(&lb.id) else {
            out.push(change(Field::Layer, Some(&lb.id), None, None, Some(layer_text(lb))));
            continue;
        };
        let id = Some(lb.id.as_str());
        let text_fields = [
            (Field::Subtask, &la.subtask, &lb.subtask),
            (Field::RoutingHint, &la.routing_hint, &lb.routing_hint),
            (Field::OutputSpec, &la.output_spec, &lb.output_spec),
        ];
        for (field, x, y) in text_fields {
            if x != y {
                out.push(change(field, id, None, Some(x.clone()), Some(y.clone())));
            }
        }
        if la.aggregators != lb.aggregators {
            out.push(change(Field::Aggregators, id, None, Some(aggregators(la)), Some(aggregators(lb))));
        }
        if la.default_aggregator != lb.default_aggregator {
            let (x, y) = (la.default_aggregator.to_string(), lb.default_aggregator.to_string());
            out.push(change(Field::DefaultAggregator, id, None, Some(x), Some(y)));
        }
        for ag in la.agents.iter().filter(|ag| !lb.agents.iter().any(|x| x.id == ag.id)) {
            out.push(change(Field::Agent, id, Some(&ag.id), Some(agent_text(ag)), None));
        }
        for gb in &lb.agents {
            let Some(ga) = la.agents.iter().find(|x| x.id == gb.id) else {
                out.push(change(Field::Agent, id, Some(&gb.id), None, Some(agent_text(gb))));
                continue;
            };
            let agent = Some(gb.id.as_str());
            if ga.role != gb.role {
                out.push(change(Field::Role, id, agent, Some(ga.role.clone()), Some(gb.role.clone())));
            }
            if ga.prompt != gb.prompt {
                out.push(change(Field::Prompt, id, agent, Some(ga.prompt.clone()), Some(gb.prompt.clone())));
            }
            if ga.temperature != gb.temperature {
                let (x, y) = (ga.temperature.to_string(), gb.temperature.to_string());
                out.push(change(Field::Temperature, id, agent, Some(x), Some(y)));
            }
        }
    }
    out
}

/// `network` with an RFC 6902 patch applied (as the journal records a step's merged patch).
pub fn apply_patch(network: &Network, patch: &json_patch::Patch) -> Result<Network, String> {
    let mut value = serde_json::to_value(network).map_err(|e| e.to_string())?;
    json_patch::patch(&mut value, patch).map_err(|e| e.to_string())?;
    Network::from_json(&value.to_string()).map_err(|e| e.to_string())
}

/// One journal step with the networks around it.
#[derive(Debug, Clone)]
pub struct StepView<'a> {
    pub record: &'a StepRecord,
    /// The current network when the step began.
    pub before: Network,
    /// The candidate (the merged patch applied); `Err` when the patch does not apply, `None`
    /// when nothing was merged.
    pub candidate: Option<Result<Network, String>>,
}

impl StepView<'_> {
    /// The candidate's changes against the current network (empty without a candidate).
    pub fn changes(&self) -> Vec<Change> {
        match &self.candidate {
            Some(Ok(candidate)) => network_changes(&self.before, candidate),
            _ => vec![],
        }
    }
}

/// Replay `steps` from `initial`: an accepted step's candidate becomes the current network.
pub fn replay<'a>(initial: &Network, steps: impl IntoIterator<Item = &'a StepRecord>) -> Vec<StepView<'a>> {
    let mut current = initial.clone();
    let mut out = Vec::new();
    for record in steps {
        let candidate = record.patch.as_ref().map(|p| apply_patch(&current, p));
        let before = current.clone();
        if let (true, Some(Ok(next))) = (record.decision.is_accepted(), &candidate) {
            current = next.clone();
        }
        out.push(StepView { record, before, candidate });
    }
    out
}

/// The word diff of `before` and `after` as runs of equal, removed and added text (consecutive
/// words of one kind joined).
pub fn word_runs(before: &str, after: &str) -> Vec<(ChangeTag, String)> {
    let diff = TextDiff::from_words(before, after);
    let mut runs: Vec<(ChangeTag, String)> = Vec::new();
    for change in diff.iter_all_changes() {
        match runs.last_mut() {
            Some((tag, text)) if *tag == change.tag() => text.push_str(change.value()),
            _ => runs.push((change.tag(), change.value().to_string())),
        }
    }
    runs
}

/// A word diff as HTML: removed words in `<del>`, added words in `<ins>`, all text escaped.
pub fn word_diff_html(before: &str, after: &str) -> String {
    let mut out = String::new();
    for (tag, text) in word_runs(before, after) {
        let text = escape(&text);
        match tag {
            ChangeTag::Equal => out.push_str(&text),
            ChangeTag::Delete => out.push_str(&format!("<del>{text}</del>")),
            ChangeTag::Insert => out.push_str(&format!("<ins>{text}</ins>")),
        }
    }
    out
}

/// A word diff for a terminal: `[-removed-]{+added+}` (as `git diff --word-diff` writes it).
pub fn word_diff_text(before: &str, after: &str) -> String {
    let mut out = String::new();
    for (tag, text) in word_runs(before, after) {
        match tag {
            ChangeTag::Equal => out.push_str(&text),
            ChangeTag::Delete => out.push_str(&format!("[-{text}-]")),
            ChangeTag::Insert => out.push_str(&format!("{{+{text}+}}")),
        }
    }
    out
}
