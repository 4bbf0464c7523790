//! Applying a patch: limits and scope, compilation to RFC 6902 with id guards, atomic application
//! to the network's JSON and validation of the result.

use ann_graph::{Network, ValidationRules};
use serde_json::{Value, json};

use super::{AppliedPatch, PatchLimits, PatchOp, PatchScope, Rejection};

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

/// An agent's id and tools.
type AgentShape = (String, Vec<String>);

/// The ids of the network (and each agent's tools), kept up to date while compiling.
struct Shape {
    layers: Vec<(String, Vec<AgentShape>)>,
}

fn agents_of(agents: &[ann_graph::Agent]) -> Vec<AgentShape> {
    agents.iter().map(|a| (a.id.clone(), a.tools.clone())).collect()
}

impl Shape {
    fn of(net: &Network) -> Self {
        Self { layers: net.layers.iter().map(|l| (l.id.clone(), agents_of(&l.agents))).collect() }
    }

    fn layer(&self, id: &str) -> Result<usize, Rejection> {
        self.layers.iter().position(|(l, _)| l == id).ok_or_else(|| Rejection::unknown_id(format!("layer `{id}`")))
    }

    fn agent(&self, layer: &str, agent: &str) -> Result<(usize, usize), Rejection> {
        let li = self.layer(layer)?;
        let ai = self.layers[li]
            .1
            .iter()
            .position(|(a, _)| a == agent)
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
            work.layers[li].1.push((agent.id.clone(), agent.tools.clone()));
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
        PatchOp::GrantTool { layer, agent, tool } | PatchOp::RevokeTool { layer, agent, tool } => {
            let (li, ai) = work.agent(layer, agent)?;
            let tools = &mut work.layers[li].1[ai].1;
            let held = tools.iter().position(|t| t == tool);
            match (op, held) {
                (PatchOp::GrantTool { .. }, None) => tools.push(tool.clone()),
                (PatchOp::GrantTool { .. }, Some(_)) => {
                    return Err(Rejection::invariant(
                        "tools",
                        format!("agent `{agent}` in layer `{layer}` already has the tool `{tool}`"),
                    ));
                }
                (_, Some(i)) => {
                    tools.remove(i);
                }
                (_, None) => {
                    let has = if tools.is_empty() { "none".to_string() } else { tools.join(", ") };
                    return Err(Rejection::unknown_id(format!(
                        "tool `{tool}` of agent `{agent}` in layer `{layer}` (its tools: {has})"
                    )));
                }
            }
            out.push(test_layer(li, layer));
            out.push(test_agent(li, ai, agent));
            // `add` sets the member whether or not the file had it (an agent without tools omits it).
            out.push(json!({"op": "add", "path": format!("/layers/{li}/agents/{ai}/tools"), "value": tools}));
        }
        PatchOp::SetToolSteps { layer, agent, value } => {
            let (li, ai) = work.agent(layer, agent)?;
            out.push(test_layer(li, layer));
            out.push(test_agent(li, ai, agent));
            out.push(json!({"op": "add", "path": format!("/layers/{li}/agents/{ai}/max_tool_steps"), "value": value}));
        }
        PatchOp::AddLayer { after, layer } => {
            let at = work.after(after.as_deref())?;
            out.push(json!({"op": "add", "path": format!("/layers/{at}"), "value": layer}));
            work.layers.insert(at, (layer.id.clone(), agents_of(&layer.agents)));
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
