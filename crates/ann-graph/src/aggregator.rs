//! The open aggregator trait: an aggregation function turns a layer's team into the layer output by
//! running the agents through the layer's [`LayerContext`]. The nine built-ins implement it, and so
//! may a user (see [`crate::AggregatorRegistry`] for an example).

use async_trait::async_trait;

use crate::{AggregatorName, GraphError, LayerContext};

/// An aggregation function: combines a layer's agents into the layer output `O_l`.
///
/// Implement it for a custom aggregator (under a name from [`AggregatorName::custom`]) and register
/// it in an [`crate::AggregatorRegistry`]. The metadata methods default to what the name alone says.
#[async_trait]
pub trait Aggregator: Send + Sync {
    /// The name this implements (files, routing answers and traces say it).
    fn name(&self) -> AggregatorName;

    /// One-line semantics, as shown to the routing call.
    fn description(&self) -> &str {
        self.name().description()
    }

    /// The least team size this aggregator makes sense with (checked by the format gate).
    fn min_agents(&self) -> usize {
        self.name().min_agents()
    }

    /// LLM calls one layer execution costs with `agents` agents (routing excluded, no failures),
    /// as shown to the routing call.
    fn calls(&self, agents: usize, debate_rounds: u32) -> usize {
        self.name().calls(agents, debate_rounds)
    }

    /// Run the layer on `ctx.input()` and return `O_l`.
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError>;
}
