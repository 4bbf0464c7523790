//! Agents, layers, aggregators, the network definition, the forward pass and its trace.
//!
//! A [`Network`] (design 7.1) is data: layers of agents, each layer with candidate aggregators.
//! [`forward`] runs one input through it layer by layer (`I_{l+1} = O_l`, the task always visible):
//! per layer, DynamicRoutingSelect picks an aggregator (one traced call), then the [`Aggregator`]
//! runs the team. Every call lands in the [`Trace`], which the backward phase reads.
//! [`construct_team`] asks a model for a network for a new task. The graph does not know
//! benchmarks: the answer extractor and the answer-format rule come from the caller.

mod aggregate;
mod error;
mod export;
mod forward;
mod network;
pub mod prompts;
mod routing;
mod team;
mod trace;

#[cfg(test)]
mod testing;

pub use aggregate::{Aggregator, CallSpec, Extractor, LayerContext, aggregator, majority_vote};
pub use error::GraphError;
pub use forward::{ForwardConfig, ForwardResult, forward, forward_batch};
pub use network::{
    Agent, AggregatorName, Layer, Network, REQUIRED_PLACEHOLDERS, SCHEMA_VERSION, ValidationRules, Violation, is_slug,
};
pub use prompts::RoutingStat;
pub use routing::{RoutingMode, parse_routing, routing_format};
pub use team::{TeamAttempt, TeamConfig, TeamOutcome, TeamSource, construct_team, network_schema, parse_network_reply};
/// An example network in the schema: the default starting network of design 7.10 for a maths task
/// (understand -> solve with three agents -> verify). Used in docs and tests.
pub const EXAMPLE_NETWORK: &str = include_str!("example-network.json");

/// [`EXAMPLE_NETWORK`], parsed.
pub fn example_network() -> Network {
    Network::from_json(EXAMPLE_NETWORK).expect("the example network is valid")
}

pub use trace::{CallKind, CallRecord, LayerTrace, RoutingDecision, RoutingSource, Trace};
