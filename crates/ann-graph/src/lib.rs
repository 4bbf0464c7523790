//! Agents, layers, aggregators, the network definition, the forward pass and its trace.
//!
//! A [`Network`] is data: layers of agents, each layer with candidate aggregators.
//! [`forward`] runs one input through it layer by layer (`I_{l+1} = O_l`, the task always visible):
//! per layer, dynamic routing (DynamicRoutingSelect) picks an aggregator (one traced call), then the
//! [`Aggregator`] registered under that name runs the team through a [`LayerContext`]. Every call
//! lands in the [`Trace`], which the backward phase reads. The aggregators are open: a user
//! implements [`Aggregator`] under a custom name and adds it to an [`AggregatorRegistry`].
//! [`construct_team`] asks a model for a network for a new task. The graph does not know
//! benchmarks: the answer extractor and the answer-format rule come from the caller.
//!
//! Module map: `network.rs` (the types and their files), `name.rs` (aggregator names),
//! `validate.rs` (the format gate), `violation.rs` (its violations), `call.rs` (the traced, budget-stopped call machinery),
//! `vote.rs` (answer extraction and voting), `aggregator.rs` (the open trait), `registry.rs` (the
//! registry of built-in and custom aggregators),
//! `aggregators/` (the nine built-ins by family), `config.rs` (forward settings), `models.rs`
//! (agents' model profiles and their resolver), `routing.rs` (dynamic routing), `routing_record.rs`
//! (past choices and their scores, from traces), `forward.rs` (the forward phase), `trace.rs`, `team.rs` (team
//! construction), `prompts.rs`, `export.rs` (diagrams), `tools.rs` (an agent's bounded model ↔ tool loop,
//! when it lists tools and [`ForwardConfig::tools`] holds them).

mod aggregator;
mod aggregators;
mod call;
mod config;
mod error;
mod export;
mod forward;
mod models;
mod name;
mod network;
pub mod prompts;
mod registry;
mod routing;
mod routing_record;
mod team;
mod tools;
mod trace;
mod validate;
mod violation;
mod vote;

#[cfg(test)]
mod testing;

pub use aggregator::Aggregator;
pub use aggregators::PIPELINE_TOOL;
/// The attribute a custom [`Aggregator`] implementation needs (re-exported from `async-trait`).
pub use async_trait::async_trait;
pub use call::{CallSpec, LayerContext, survivors};
pub use config::{ForwardConfig, InfrastructurePolicy, RoutingMode};
pub use error::GraphError;
pub use forward::{BatchOrder, ForwardInput, ForwardResult, ForwardStream, forward, forward_batch, forward_inputs};
pub use models::{AgentModel, ModelProfile, ModelProfiles};
pub use name::{AggregatorName, CustomName, is_slug};
pub use network::{Agent, Layer, Network, SCHEMA_VERSION};
pub use prompts::RoutingStat;
pub use registry::{AggregatorRegistry, aggregator};
pub use routing::{parse_routing, routing_format};
pub use routing_record::{RoutingRecord, Tally};
pub use team::{
    LibraryNetwork, TeamAttempt, TeamBrief, TeamConfig, TeamOutcome, TeamSource, construct_team, network_schema,
    parse_network_reply,
};
pub use validate::{REQUIRED_PLACEHOLDERS, ValidationRules};
pub use violation::Violation;
pub use vote::{Extractor, majority_vote};

/// An example network in the schema: the default starting network for a maths task
/// (understand -> solve with three agents -> verify). Used in docs and tests.
pub const EXAMPLE_NETWORK: &str = include_str!("example-network.json");

/// [`EXAMPLE_NETWORK`], parsed.
pub fn example_network() -> Network {
    Network::from_json(EXAMPLE_NETWORK).expect("the example network is valid")
}

pub use tools::{DEFAULT_TOOL_STEPS, MAX_TOOL_STEPS};
pub use trace::{CallKind, CallRecord, LayerTrace, RoutingDecision, RoutingSource, ToolResult, Trace};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
