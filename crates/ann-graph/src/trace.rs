//! The forward trace `tau`: every call, every routing decision and every layer output of one input.

use ann_llm::{Message, Usage};
use serde::{Deserialize, Serialize};

use crate::AggregatorName;

/// What a traced call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// DynamicRoutingSelect.
    Routing,
    /// An agent answering (or revising, in a debate round or a refinement chain).
    Agent,
    /// The `llm_synthesis` merge (also `debate` without an extractor).
    Synthesis,
    /// The `select_best` judge.
    Judge,
    /// A `critic_revise` critique.
    Critique,
    /// The `critic_revise` revision.
    Revise,
}

/// One model call of the forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub layer: String,
    pub kind: CallKind,
    /// The layer's aggregator (absent for the routing call, made before it is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<AggregatorName>,
    /// The agent whose persona made the call (absent for routing, and for the built-in judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// 0 for first answers; debate rounds count from 1; critic_revise: 0 draft, 1 critiques, 2 revision.
    pub round: u32,
    pub messages: Vec<Message>,
    /// The reply text, when the call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The error after the model's own retries, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub usage: Usage,
    /// Backend wall time as the response reports it.
    pub latency_ms: u64,
    /// The model that answered (or was asked, on failure).
    pub model: String,
    /// The model profile the agent named (absent: the worker answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
}

/// How a layer's aggregator was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingSource {
    /// Routing is switched off: the default.
    Fixed,
    /// Only one candidate: no call made.
    SingleCandidate,
    /// The routing call chose a valid candidate.
    Model,
    /// The routing call failed or answered invalidly: the default.
    Fallback,
}

/// The chosen aggregator of one layer and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub aggregator: AggregatorName,
    /// The model's one-sentence reason, or why no call was made.
    pub reason: String,
    pub source: RoutingSource,
    /// Why the model's answer was rejected (only with [`RoutingSource::Fallback`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One layer of one forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTrace {
    pub layer: String,
    /// `I_l`.
    pub input: String,
    pub routing: RoutingDecision,
    /// Every call of the layer (routing first), in a deterministic order.
    pub calls: Vec<CallRecord>,
    /// What the aggregator recorded: ties and how they were broken, failures it worked around.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why the layer produced no output (a layer failure or a budget stop). Only the last layer
    /// of a failed forward pass's trace can have it; its `output` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `O_l`.
    pub output: String,
}

impl LayerTrace {
    /// Each agent's latest successful answer (its final debate round), in team order of first answer.
    pub fn agent_outputs(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for call in self.calls.iter().filter(|c| c.kind == CallKind::Agent) {
            let (Some(agent), Some(text)) = (&call.agent, &call.output) else { continue };
            match out.iter_mut().find(|(a, _)| *a == agent.as_str()) {
                Some(slot) => slot.1 = text,
                None => out.push((agent, text)),
            }
        }
        out
    }

    /// Calls that failed (after the model's retries).
    pub fn failures(&self) -> impl Iterator<Item = &CallRecord> {
        self.calls.iter().filter(|c| c.error.is_some())
    }
}

/// The trace of one input through the network. A failed forward pass keeps its partial trace
/// (see [`GraphError::trace`](crate::GraphError::trace)): `output` is empty and the failed layer,
/// when it made any call, is the last layer, with its error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The rendered task `I` every call saw.
    pub task: String,
    /// The example input `x` (= `I_1`).
    pub input: String,
    pub layers: Vec<LayerTrace>,
    /// The last layer's output (empty when the pass failed).
    pub output: String,
}

/// One JSONL line of a trace.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event<'a> {
    Forward {
        task: &'a str,
        input: &'a str,
    },
    Call(&'a CallRecord),
    Layer {
        layer: &'a str,
        input: &'a str,
        routing: &'a RoutingDecision,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        notes: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
        output: &'a str,
    },
    Output {
        output: &'a str,
        calls: usize,
        usage: Usage,
    },
}

impl Trace {
    /// Every call of the pass, in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.layers.iter().flat_map(|l| l.calls.iter())
    }

    /// Summed usage of every call.
    pub fn usage(&self) -> Usage {
        self.calls().fold(Usage::default(), |mut acc, c| {
            acc += c.usage;
            acc
        })
    }

    /// JSON Lines for inspection: a `forward` line, then per layer its `call` lines and a `layer`
    /// line (routing, notes, the error of a failed layer, output), then an `output` line with the
    /// call count and total usage.
    pub fn to_jsonl(&self) -> String {
        let mut lines = vec![Event::Forward { task: &self.task, input: &self.input }];
        for layer in &self.layers {
            lines.extend(layer.calls.iter().map(Event::Call));
            lines.push(Event::Layer {
                layer: &layer.layer,
                input: &layer.input,
                routing: &layer.routing,
                notes: &layer.notes,
                error: layer.error.as_deref(),
                output: &layer.output,
            });
        }
        lines.push(Event::Output { output: &self.output, calls: self.calls().count(), usage: self.usage() });
        let mut out = String::new();
        for line in lines {
            out.push_str(&serde_json::to_string(&line).expect("trace events always serialize"));
            out.push('\n');
        }
        out
    }
}
