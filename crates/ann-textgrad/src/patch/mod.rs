//! Patches: typed operations on a network, validated, compiled to RFC 6902, applied atomically.
//!
//! A patch is a JSON array of [`PatchOp`]s addressed by stable ids. [`parse_patch`] reads one out of
//! model text (the content of `<patch>`, else the first JSON array); [`apply_patch`] checks the
//! limits, resolves every id against the network as it stands after the earlier ops, compiles the
//! ops to an RFC 6902 patch (with `test` ops guarding the ids it addresses), applies it to the
//! network's JSON all-or-nothing and validates the result. Every failure is a [`Rejection`] whose
//! [`Rejection::reason`] is one of `unparsable`, `unknown_op`, `unknown_id`, `invariant:<which>`,
//! `empty`. Model output is data: nothing here panics on it.
//!
//! `parse.rs` reads ops out of model text; `apply.rs` compiles and applies them; `schema.rs` is the
//! JSON schema a local update's reply is decoded under.

mod apply;
mod parse;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;

use std::fmt;

use ann_graph::{Agent, AggregatorName, Layer, Network};
use serde::{Deserialize, Serialize};

use crate::decision::{ComponentScope, Reason};

pub use apply::{apply_patch, compile};
pub use parse::parse_patch;
pub use schema::{append_instruction_format, append_reply_to_patch, layer_patch_format};

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
    /// Let an agent call `tool` (a name in the run's tool registry).
    GrantTool {
        layer: String,
        agent: String,
        tool: String,
    },
    /// Take `tool` away from an agent.
    RevokeTool {
        layer: String,
        agent: String,
        tool: String,
    },
    /// Set an agent's `max_tool_steps` (its tool-calling turns before it must answer).
    SetToolSteps {
        layer: String,
        agent: String,
        value: u32,
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
pub const OP_NAMES: [&str; 14] = [
    "set_prompt",
    "set_role",
    "add_agent",
    "remove_agent",
    "set_aggregators",
    "set_default_aggregator",
    "set_routing_hint",
    "set_layer_subtask",
    "grant_tool",
    "revoke_tool",
    "set_tool_steps",
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
            Self::GrantTool { .. } => "grant_tool",
            Self::RevokeTool { .. } => "revoke_tool",
            Self::SetToolSteps { .. } => "set_tool_steps",
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
            | Self::GrantTool { layer, .. }
            | Self::RevokeTool { layer, .. }
            | Self::SetToolSteps { layer, .. }
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
            Self::GrantTool { layer, agent, tool } | Self::RevokeTool { layer, agent, tool } => {
                format!("{} {layer}/{agent} {tool}", self.name())
            }
            Self::SetToolSteps { layer, agent, value } => format!("set_tool_steps {layer}/{agent}={value}"),
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

    pub(crate) fn invariant(rule: &str, detail: impl Into<String>) -> Self {
        Self::Invariant { rule: rule.into(), detail: detail.into() }
    }

    pub(crate) fn unknown_id(detail: impl Into<String>) -> Self {
        Self::UnknownId { detail: detail.into() }
    }
}

/// Limits of one patch (and of a step's merged patch).
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

impl<'a> From<&'a ComponentScope> for PatchScope<'a> {
    /// The ops a component's patch may contain: any op for the structure call, only its own
    /// layer's non-structural ops for a local gradient.
    fn from(scope: &'a ComponentScope) -> Self {
        match scope {
            ComponentScope::Layer(id) => PatchScope::Layer(id),
            ComponentScope::Structure => PatchScope::Network,
        }
    }
}

/// A patch that passed the format gate.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedPatch {
    /// The patched network (valid under the rules).
    pub network: Network,
    /// The RFC 6902 form that was applied to the network's JSON (what the journal stores).
    pub rfc6902: json_patch::Patch,
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}
