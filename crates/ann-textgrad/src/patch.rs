//! Patches (design 7.7): typed operations on a network, validated, compiled to RFC 6902, applied atomically.
//!
//! A patch is a JSON array of [`PatchOp`]s addressed by stable ids. [`parse_patch`] reads one out of
//! model text (the content of `<patch>`, else the first JSON array); [`apply_patch`] checks the
//! limits, resolves every id against the network as it stands after the earlier ops, compiles the
//! ops to an RFC 6902 patch (with `test` ops guarding the ids it addresses), applies it to the
//! network's JSON all-or-nothing and validates the result. Every failure is a [`Rejection`] whose
//! [`Rejection::reason`] is one of `unparsable`, `unknown_op`, `unknown_id`, `invariant:<which>`,
//! `empty`. Model output is data: nothing here panics on it.

use std::fmt;

use ann_graph::{Agent, AggregatorName, Layer, Network, ValidationRules};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::decision::Reason;

/// One typed operation on the network (serialized with its name in `op`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PatchOp {
    SetPrompt {
        layer: String,
        agent: String,
        value: String,
    },
    SetRole {
        layer: String,
        agent: String,
        value: String,
    },
    AddAgent {
        layer: String,
        agent: Agent,
    },
    RemoveAgent {
        layer: String,
        agent: String,
    },
    SetAggregators {
        layer: String,
        value: Vec<AggregatorName>,
    },
    SetDefaultAggregator {
        layer: String,
        value: AggregatorName,
    },
    SetRoutingHint {
        layer: String,
        value: String,
    },
    SetLayerSubtask {
        layer: String,
        value: String,
    },
    /// Structural: insert a layer after `after` (at the front when absent).
    AddLayer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        layer: Layer,
    },
    /// Structural.
    RemoveLayer {
        layer: String,
    },
    /// Structural: move a layer after `after` (to the front when absent).
    MoveLayer {
        layer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
}

/// The name of every operation, as in the `op` field.
pub const OP_NAMES: [&str; 11] = [
    "set_prompt",
    "set_role",
    "add_agent",
    "remove_agent",
    "set_aggregators",
    "set_default_aggregator",
    "set_routing_hint",
    "set_layer_subtask",
    "add_layer",
    "remove_layer",
    "move_layer",
];

/// Operations that change the network's structure (at most one per step).
pub const STRUCTURAL_OPS: [&str; 3] = ["add_layer", "remove_layer", "move_layer"];

impl PatchOp {
    /// The `op` name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SetPrompt { .. } => "set_prompt",
            Self::SetRole { .. } => "set_role",
            Self::AddAgent { .. } => "add_agent",
            Self::RemoveAgent { .. } => "remove_agent",
            Self::SetAggregators { .. } => "set_aggregators",
            Self::SetDefaultAggregator { .. } => "set_default_aggregator",
            Self::SetRoutingHint { .. } => "set_routing_hint",
            Self::SetLayerSubtask { .. } => "set_layer_subtask",
            Self::AddLayer { .. } => "add_layer",
            Self::RemoveLayer { .. } => "remove_layer",
            Self::MoveLayer { .. } => "move_layer",
        }
    }

    /// Whether the op adds, removes or moves a layer.
    pub fn is_structural(&self) -> bool {
        matches!(self, Self::AddLayer { .. } | Self::RemoveLayer { .. } | Self::MoveLayer { .. })
    }

    /// The layer the op addresses (for `add_layer`, the new layer's id).
    pub fn layer(&self) -> &str {
        match self {
            Self::SetPrompt { layer, .. }
            | Self::SetRole { layer, .. }
            | Self::AddAgent { layer, .. }
            | Self::RemoveAgent { layer, .. }
            | Self::SetAggregators { layer, .. }
            | Self::SetDefaultAggregator { layer, .. }
            | Self::SetRoutingHint { layer, .. }
            | Self::SetLayerSubtask { layer, .. }
            | Self::RemoveLayer { layer }
            | Self::MoveLayer { layer, .. } => layer,
            Self::AddLayer { layer, .. } => &layer.id,
        }
    }

    /// A short description: kind and ids (`set_prompt solve/a2`), as momentum and journals show it.
    pub fn summary(&self) -> String {
        match self {
            Self::SetPrompt { layer, agent, .. }
            | Self::SetRole { layer, agent, .. }
            | Self::RemoveAgent { layer, agent } => format!("{} {layer}/{agent}", self.name()),
            Self::AddAgent { layer, agent } => format!("add_agent {layer}/{}", agent.id),
            Self::SetAggregators { layer, value } => {
                let names: Vec<_> = value.iter().map(|a| a.as_str()).collect();
                format!("set_aggregators {layer}=[{}]", names.join(","))
            }
            Self::SetDefaultAggregator { layer, value } => format!("set_default_aggregator {layer}={value}"),
            Self::SetRoutingHint { layer, .. } | Self::SetLayerSubtask { layer, .. } | Self::RemoveLayer { layer } => {
                format!("{} {layer}", self.name())
            }
            Self::AddLayer { after, layer } => {
                format!("add_layer {} after {}", layer.id, after.as_deref().unwrap_or("(start)"))
            }
            Self::MoveLayer { layer, after } => {
                format!("move_layer {layer} after {}", after.as_deref().unwrap_or("(start)"))
            }
        }
    }
}

/// Summaries of several ops joined by `; ` (`(none)` for an empty list).
pub fn summarize_ops(ops: &[PatchOp]) -> String {
    if ops.is_empty() {
        return "(none)".into();
    }
    ops.iter().map(PatchOp::summary).collect::<Vec<_>>().join("; ")
}

/// Why a patch was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// No JSON array could be read, or an op lacks a field or has a wrong type.
    #[error("unparsable: {detail}")]
    Unparsable { detail: String },
    /// An op name outside [`OP_NAMES`].
    #[error("unknown_op: {op}")]
    UnknownOp { op: String },
    /// A layer or agent id the network does not have (at the point where the op applies).
    #[error("unknown_id: {detail}")]
    UnknownId { detail: String },
    /// A limit or an invariant of the network is broken; `rule` names it.
    #[error("invariant:{rule}: {detail}")]
    Invariant { rule: String, detail: String },
    /// The patch has no op.
    #[error("empty: the patch changes nothing")]
    Empty,
}

impl Rejection {
    /// The recorded reason: `unparsable`, `unknown_op`, `unknown_id`, `invariant:<which>`, `empty`.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unparsable { .. } => Reason::Unparsable,
            Self::UnknownOp { .. } => Reason::UnknownOp,
            Self::UnknownId { .. } => Reason::UnknownId,
            Self::Invariant { rule, .. } => Reason::Invariant(rule.clone()),
            Self::Empty => Reason::Empty,
        }
    }

    fn invariant(rule: &str, detail: impl Into<String>) -> Self {
        Self::Invariant { rule: rule.into(), detail: detail.into() }
    }

    fn unknown_id(detail: impl Into<String>) -> Self {
        Self::UnknownId { detail: detail.into() }
    }
}

/// Limits of one patch (design 7.7).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatchLimits {
    /// At most this many ops.
    pub max_ops: usize,
    /// At most this many structural ops.
    pub max_structural: usize,
}

impl Default for PatchLimits {
    fn default() -> Self {
        Self { max_ops: 6, max_structural: 1 }
    }
}

/// Which ops a patch may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchScope<'a> {
    /// Any op (the structure call).
    Network,
    /// Only non-structural ops on this layer (a local gradient's patch).
    Layer(&'a str),
}

/// A patch that passed the format gate.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedPatch {
    /// The patched network (valid under the rules).
    pub network: Network,
    /// The RFC 6902 form that was applied to the network's JSON (what the journal stores).
    pub rfc6902: json_patch::Patch,
}

/// Read the typed ops out of model text: the content of the first `<patch>` element, else the
/// first JSON array of the text. A lone op object is taken as a one-op patch.
pub fn parse_patch(text: &str) -> Result<Vec<PatchOp>, Rejection> {
    let body = ann_llm::answer::extract_tag(text, "patch").unwrap_or(text);
    let value = first_op_array(body).or_else(|| ann_llm::answer::first_json_value(body, &['['])).or_else(|| {
        // A single op written without the array brackets.
        ann_llm::answer::first_json_value(body, &['{']).filter(|v| v.get("op").is_some())
    });
    let Some(value) = value else {
        return Err(Rejection::Unparsable { detail: "no JSON array found".into() });
    };
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items.into_iter().enumerate().map(|(i, item)| parse_op(i, item)).collect()
}

/// The first JSON array whose items are all objects with an `op` field (or that is empty), so
/// that an array quoted in the prose before the patch is not taken for it.
fn first_op_array(text: &str) -> Option<Value> {
    ann_llm::answer::json_values(text, &['['])
        .find(|value| value.as_array().is_some_and(|items| items.iter().all(|item| item.get("op").is_some())))
}

fn parse_op(index: usize, item: Value) -> Result<PatchOp, Rejection> {
    let at = |detail: String| Rejection::Unparsable { detail: format!("op {}: {detail}", index + 1) };
    let Some(op) = item.get("op").and_then(Value::as_str) else {
        return Err(at("not an object with a string field `op`".into()));
    };
    if !OP_NAMES.contains(&op) {
        return Err(Rejection::UnknownOp { op: op.to_string() });
    }
    // Aggregator names outside the registry break an invariant of the network, not the syntax.
    let names: Vec<&Value> = match op {
        "set_aggregators" => {
            item.get("value").and_then(Value::as_array).map(|v| v.iter().collect()).unwrap_or_default()
        }
        "set_default_aggregator" => item.get("value").into_iter().collect(),
        _ => Vec::new(),
    };
    for name in names {
        if let Some(s) = name.as_str()
            && let Err(e) = s.parse::<AggregatorName>()
        {
            return Err(Rejection::invariant("aggregators", e));
        }
    }
    serde_json::from_value(item).map_err(|e| at(e.to_string()))
}

/// Check `ops` against the limits and scope, compile them to RFC 6902 against `net`, apply them
/// atomically to the network's JSON and validate the result. `net` itself is never modified.
pub fn apply_patch(
    net: &Network,
    ops: &[PatchOp],
    scope: PatchScope<'_>,
    limits: &PatchLimits,
    rules: &ValidationRules,
) -> Result<AppliedPatch, Rejection> {
    if ops.is_empty() {
        return Err(Rejection::Empty);
    }
    if ops.len() > limits.max_ops {
        return Err(Rejection::invariant("max_ops", format!("{} ops, at most {} per step", ops.len(), limits.max_ops)));
    }
    let structural = ops.iter().filter(|op| op.is_structural()).count();
    if structural > limits.max_structural {
        return Err(Rejection::invariant(
            "max_structural",
            format!("{structural} structural ops, at most {} per step", limits.max_structural),
        ));
    }
    if let PatchScope::Layer(id) = scope
        && let Some(op) = ops.iter().find(|op| op.is_structural() || op.layer() != id)
    {
        if !op.is_structural() && net.layer(op.layer()).is_none() {
            return Err(Rejection::unknown_id(format!("layer `{}`", op.layer())));
        }
        return Err(Rejection::invariant(
            "scope",
            format!("`{}` is outside this layer's patch (only non-structural ops on layer `{id}`)", op.summary()),
        ));
    }
    let rfc6902 = compile(net, ops)?;
    let mut doc = serde_json::to_value(net).expect("a Network always serializes");
    json_patch::patch(&mut doc, &rfc6902).map_err(|e| Rejection::Unparsable { detail: format!("RFC 6902: {e}") })?;
    let network: Network = serde_json::from_value(doc).map_err(|e| Rejection::invariant("schema", e.to_string()))?;
    if let Err(violations) = network.validate(rules) {
        let detail = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Err(Rejection::invariant(violations[0].rule(), detail));
    }
    Ok(AppliedPatch { network, rfc6902 })
}

/// Compile typed ops to RFC 6902, resolving ids against the network as the earlier ops leave it.
pub fn compile(net: &Network, ops: &[PatchOp]) -> Result<json_patch::Patch, Rejection> {
    let mut work = Shape::of(net);
    let mut out: Vec<Value> = Vec::new();
    for op in ops {
        compile_op(&mut work, op, &mut out)?;
    }
    serde_json::from_value(Value::Array(out)).map_err(|e| Rejection::Unparsable { detail: format!("RFC 6902: {e}") })
}

/// The ids of the network, kept up to date while compiling.
struct Shape {
    layers: Vec<(String, Vec<String>)>,
}

impl Shape {
    fn of(net: &Network) -> Self {
        Self {
            layers: net
                .layers
                .iter()
                .map(|l| (l.id.clone(), l.agents.iter().map(|a| a.id.clone()).collect()))
                .collect(),
        }
    }

    fn layer(&self, id: &str) -> Result<usize, Rejection> {
        self.layers.iter().position(|(l, _)| l == id).ok_or_else(|| Rejection::unknown_id(format!("layer `{id}`")))
    }

    fn agent(&self, layer: &str, agent: &str) -> Result<(usize, usize), Rejection> {
        let li = self.layer(layer)?;
        let ai = self.layers[li]
            .1
            .iter()
            .position(|a| a == agent)
            .ok_or_else(|| Rejection::unknown_id(format!("agent `{agent}` in layer `{layer}`")))?;
        Ok((li, ai))
    }

    /// Insertion index after `after` (0 when absent).
    fn after(&self, after: Option<&str>) -> Result<usize, Rejection> {
        match after {
            None => Ok(0),
            Some(id) => Ok(self.layer(id)? + 1),
        }
    }
}

fn test_layer(li: usize, id: &str) -> Value {
    json!({"op": "test", "path": format!("/layers/{li}/id"), "value": id})
}

fn test_agent(li: usize, ai: usize, id: &str) -> Value {
    json!({"op": "test", "path": format!("/layers/{li}/agents/{ai}/id"), "value": id})
}

fn compile_op(work: &mut Shape, op: &PatchOp, out: &mut Vec<Value>) -> Result<(), Rejection> {
    match op {
        PatchOp::SetPrompt { layer, agent, value } | PatchOp::SetRole { layer, agent, value } => {
            let (li, ai) = work.agent(layer, agent)?;
            let field = if matches!(op, PatchOp::SetPrompt { .. }) { "prompt" } else { "role" };
            out.push(test_layer(li, layer));
            out.push(test_agent(li, ai, agent));
            out.push(json!({"op": "replace", "path": format!("/layers/{li}/agents/{ai}/{field}"), "value": value}));
        }
        PatchOp::AddAgent { layer, agent } => {
            let li = work.layer(layer)?;
            out.push(test_layer(li, layer));
            out.push(json!({"op": "add", "path": format!("/layers/{li}/agents/-"), "value": agent}));
            work.layers[li].1.push(agent.id.clone());
        }
        PatchOp::RemoveAgent { layer, agent } => {
            let (li, ai) = work.agent(layer, agent)?;
            out.push(test_layer(li, layer));
            out.push(test_agent(li, ai, agent));
            out.push(json!({"op": "remove", "path": format!("/layers/{li}/agents/{ai}")}));
            work.layers[li].1.remove(ai);
        }
        PatchOp::SetAggregators { layer, value } => set_field(work, layer, "aggregators", json!(value), out)?,
        PatchOp::SetDefaultAggregator { layer, value } => {
            set_field(work, layer, "default_aggregator", json!(value), out)?
        }
        PatchOp::SetRoutingHint { layer, value } => set_field(work, layer, "routing_hint", json!(value), out)?,
        PatchOp::SetLayerSubtask { layer, value } => set_field(work, layer, "subtask", json!(value), out)?,
        PatchOp::AddLayer { after, layer } => {
            let at = work.after(after.as_deref())?;
            out.push(json!({"op": "add", "path": format!("/layers/{at}"), "value": layer}));
            work.layers.insert(at, (layer.id.clone(), layer.agents.iter().map(|a| a.id.clone()).collect()));
        }
        PatchOp::RemoveLayer { layer } => {
            let li = work.layer(layer)?;
            out.push(test_layer(li, layer));
            out.push(json!({"op": "remove", "path": format!("/layers/{li}")}));
            work.layers.remove(li);
        }
        PatchOp::MoveLayer { layer, after } => {
            if after.as_deref() == Some(layer.as_str()) {
                return Err(Rejection::invariant("move_layer", format!("layer `{layer}` cannot move after itself")));
            }
            let li = work.layer(layer)?;
            out.push(test_layer(li, layer));
            let moved = work.layers.remove(li);
            let at = work.after(after.as_deref())?;
            // RFC 6902 `move` removes first, then adds at `path` in the shortened array.
            out.push(json!({"op": "move", "from": format!("/layers/{li}"), "path": format!("/layers/{at}")}));
            work.layers.insert(at, moved);
        }
    }
    Ok(())
}

fn set_field(work: &Shape, layer: &str, field: &str, value: Value, out: &mut Vec<Value>) -> Result<(), Rejection> {
    let li = work.layer(layer)?;
    out.push(test_layer(li, layer));
    out.push(json!({"op": "replace", "path": format!("/layers/{li}/{field}"), "value": value}));
    Ok(())
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_network;

    fn rules() -> ValidationRules {
        ValidationRules::with_answer_format("\\boxed{}")
    }

    /// Parse and apply; the rejection reason or the patched network's JSON.
    fn check(text: &str, scope: PatchScope<'_>) -> Result<AppliedPatch, String> {
        let ops = parse_patch(text).map_err(|r| r.reason().to_string())?;
        apply_patch(&sample_network(), &ops, scope, &PatchLimits::default(), &rules())
            .map_err(|r| r.reason().to_string())
    }

    #[test]
    fn parses_tag_array_and_lone_object() {
        let ops = parse_patch(
            "<gradient>x</gradient>\n<patch>\n```json\n[{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v\"}]\n```\n</patch>",
        )
        .unwrap();
        assert_eq!(ops, vec![PatchOp::SetRoutingHint { layer: "solve".into(), value: "v".into() }]);
        let ops = parse_patch("Here: [1, oops] then [{\"op\":\"remove_layer\",\"layer\":\"verify\"}]").unwrap();
        assert_eq!(ops, vec![PatchOp::RemoveLayer { layer: "verify".into() }]);
        let ops =
            parse_patch("Keep [\"single\"] as is; patch: [{\"op\":\"remove_layer\",\"layer\":\"verify\"}]").unwrap();
        assert_eq!(ops, vec![PatchOp::RemoveLayer { layer: "verify".into() }]);
        let ops = parse_patch("{\"op\":\"remove_layer\",\"layer\":\"verify\"}").unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(parse_patch("<patch>[]</patch>").unwrap(), vec![]);
    }

    #[test]
    fn rejection_reasons() {
        let cases: &[(&str, PatchScope<'_>, &str)] = &[
            ("no json here", PatchScope::Network, "unparsable"),
            ("[{\"op\": \"set_prompt\", \"layer\": \"solve\"}]", PatchScope::Network, "unparsable"),
            ("[{\"op\": \"rewrite_everything\"}]", PatchScope::Network, "unknown_op"),
            ("[]", PatchScope::Network, "empty"),
            (
                "[{\"op\":\"set_prompt\",\"layer\":\"nope\",\"agent\":\"a1\",\"value\":\"{input}\"}]",
                PatchScope::Network,
                "unknown_id",
            ),
            (
                "[{\"op\":\"set_prompt\",\"layer\":\"solve\",\"agent\":\"a9\",\"value\":\"{input}\"}]",
                PatchScope::Network,
                "unknown_id",
            ),
            (
                "[{\"op\":\"set_prompt\",\"layer\":\"solve\",\"agent\":\"a1\",\"value\":\"no placeholder\"}]",
                PatchScope::Network,
                "invariant:placeholder",
            ),
            (
                "[{\"op\":\"set_aggregators\",\"layer\":\"solve\",\"value\":[\"telepathy\"]}]",
                PatchScope::Network,
                "invariant:aggregators",
            ),
            (
                "[{\"op\":\"set_default_aggregator\",\"layer\":\"solve\",\"value\":\"single\"}]",
                PatchScope::Network,
                "invariant:default_aggregator",
            ),
            (
                "[{\"op\":\"set_aggregators\",\"layer\":\"understand\",\"value\":[\"single\",\"debate\"]}]",
                PatchScope::Network,
                "invariant:min_agents",
            ),
            (
                "[{\"op\":\"remove_layer\",\"layer\":\"solve\"},{\"op\":\"remove_layer\",\"layer\":\"verify\"}]",
                PatchScope::Network,
                "invariant:max_structural",
            ),
            (
                "[{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v\"}]",
                PatchScope::Layer("verify"),
                "invariant:scope",
            ),
            ("[{\"op\":\"remove_layer\",\"layer\":\"solve\"}]", PatchScope::Layer("solve"), "invariant:scope"),
            ("[{\"op\":\"remove_layer\",\"layer\":\"verify\"}]", PatchScope::Network, "invariant:answer_format"),
            (
                "[{\"op\":\"add_agent\",\"layer\":\"solve\",\"agent\":{\"id\":\"a1\",\"role\":\"r\",\"prompt\":\"{input}\"}}]",
                PatchScope::Network,
                "invariant:unique_id",
            ),
            (
                "[{\"op\":\"move_layer\",\"layer\":\"solve\",\"after\":\"solve\"}]",
                PatchScope::Network,
                "invariant:move_layer",
            ),
        ];
        for (text, scope, want) in cases {
            assert_eq!(check(text, *scope).err().as_deref(), Some(*want), "{text}");
        }
        let seven: Vec<String> =
            (0..7).map(|i| format!("{{\"op\":\"set_routing_hint\",\"layer\":\"solve\",\"value\":\"v{i}\"}}")).collect();
        assert_eq!(
            check(&format!("[{}]", seven.join(",")), PatchScope::Network).err().as_deref(),
            Some("invariant:max_ops")
        );
    }

    #[test]
    fn compiles_to_rfc6902_with_id_guards() {
        let applied = check(
            r#"[{"op":"set_prompt","layer":"solve","agent":"a2","value":"Think twice. {input}"},
                {"op":"remove_agent","layer":"solve","agent":"a1"},
                {"op":"set_role","layer":"solve","agent":"a3","value":"A skeptic."},
                {"op":"add_agent","layer":"solve","agent":{"id":"a4","role":"New.","prompt":"{task} {input}","temperature":0.2}}]"#,
            PatchScope::Layer("solve"),
        )
        .unwrap();
        insta::assert_json_snapshot!(applied.rfc6902);
        let solve = applied.network.layer("solve").unwrap();
        let ids: Vec<_> = solve.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a2", "a3", "a4"]);
        assert_eq!(solve.agents[0].prompt, "Think twice. {input}");
        assert_eq!(solve.agents[1].role, "A skeptic.");
    }

    #[test]
    fn structural_ops_keep_ids_straight() {
        // Move `understand` after `solve`, then edit it: the second op must address its new index.
        let applied = check(
            r#"[{"op":"move_layer","layer":"understand","after":"solve"},
                {"op":"set_layer_subtask","layer":"understand","value":"restate after solving"}]"#,
            PatchScope::Network,
        )
        .unwrap();
        let order: Vec<_> = applied.network.layers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(order, ["solve", "understand", "verify"]);
        assert_eq!(applied.network.layers[1].subtask, "restate after solving");
        insta::assert_json_snapshot!(applied.rfc6902);

        let mut new_layer = sample_network().layers[0].clone();
        new_layer.id = "plan".into();
        let op = PatchOp::AddLayer { after: Some("understand".into()), layer: new_layer };
        let applied =
            apply_patch(&sample_network(), &[op], PatchScope::Network, &PatchLimits::default(), &rules()).unwrap();
        let order: Vec<_> = applied.network.layers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(order, ["understand", "plan", "solve", "verify"]);
        let applied = check(r#"[{"op":"remove_layer","layer":"understand"}]"#, PatchScope::Network).unwrap();
        assert_eq!(applied.network.layers.len(), 2);
    }

    #[test]
    fn application_is_all_or_nothing_and_never_touches_the_input() {
        let net = sample_network();
        let before = net.clone();
        let ops = parse_patch(
            r#"[{"op":"set_routing_hint","layer":"solve","value":"changed"},
                {"op":"set_prompt","layer":"solve","agent":"ghost","value":"{input}"}]"#,
        )
        .unwrap();
        let err = apply_patch(&net, &ops, PatchScope::Network, &PatchLimits::default(), &rules()).unwrap_err();
        assert_eq!(err.reason(), Reason::UnknownId);
        assert_eq!(net, before);
        // A guard that fails at application (a stale patch) leaves the document unchanged too.
        let mut doc = serde_json::to_value(&net).unwrap();
        let original = doc.clone();
        let stale: json_patch::Patch = serde_json::from_value(json!([
            {"op": "replace", "path": "/layers/1/routing_hint", "value": "x"},
            {"op": "test", "path": "/layers/1/id", "value": "not-solve"}
        ]))
        .unwrap();
        assert!(json_patch::patch(&mut doc, &stale).is_err());
        assert_eq!(doc, original);
    }

    #[test]
    fn ops_roundtrip_through_serde() {
        for text in [
            r#"{"op":"set_prompt","layer":"solve","agent":"a2","value":"..."}"#,
            r#"{"op":"set_aggregators","layer":"solve","value":["majority_vote","debate"]}"#,
            r#"{"op":"move_layer","layer":"verify","after":"plan"}"#,
        ] {
            let op: PatchOp = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_value(&op).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        }
        assert!(serde_json::from_str::<PatchOp>(r#"{"op":"remove_layer","layer":"x","extra":1}"#).is_err());
    }
}
