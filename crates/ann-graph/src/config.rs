//! Settings of the forward phase: the worker model's call settings, dynamic routing, the parallelism
//! bounds, the aggregators the pass knows and the model profiles its agents may name.

use std::collections::BTreeMap;

use ann_llm::CallSettings;
use serde::{Deserialize, Serialize};

use crate::prompts::RoutingStat;
use crate::{AggregatorRegistry, ModelProfiles};

/// Whether routing asks the model or always takes the layer's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// One routing call per layer with two or more candidates.
    #[default]
    Dynamic,
    /// Always the layer's default aggregator (ablation).
    Fixed,
}

/// What the forward phase does when a model call fails for a reason outside the network (an
/// infrastructure failure, [`ann_llm::LlmError::is_infrastructure`]: the endpoint unreachable,
/// retries exhausted, the response cache unable to store an answer). Never a score: such a
/// failure says nothing about the network, so no agent is left out of a vote for it and no
/// example is scored 0 for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfrastructurePolicy {
    /// The first infrastructure failure stops the pass (or batch) as an exhausted budget does: no
    /// further call starts, the calls in flight finish (their answers reach the response cache),
    /// then [`GraphError::InfrastructureFailure`](crate::GraphError::InfrastructureFailure) is
    /// returned with the partial trace; the training run stops with its last checkpoint.
    #[default]
    Stop,
    /// The input whose forward pass hit the failure ends with that error (its partial trace
    /// kept); the other inputs go on, and an evaluation leaves the example out of its scores
    /// with a visible count.
    Exclude,
}

/// Settings of the forward phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardConfig {
    /// Worker model name put in every request.
    pub model: String,
    /// `max_tokens` of every call (None: the backend's default).
    pub max_tokens: Option<u32>,
    /// `seed` of every call.
    pub seed: Option<u64>,
    /// Dynamic routing, or always the default aggregator.
    pub routing: RoutingMode,
    /// The layer input shown to the routing call is cut to this many characters.
    pub routing_input_chars: usize,
    /// Show routing the record of past choices (default off): the trainer then fills
    /// `routing_stats` from the traces of the run's training and validation forwards.
    pub routing_statistics: bool,
    /// Routing statistics per layer id, shown to the routing call (nothing shown when empty).
    pub routing_stats: BTreeMap<String, Vec<RoutingStat>>,
    /// Revision rounds of `debate` after the independent answers.
    pub debate_rounds: u32,
    /// At most this many model calls in flight at once (over a whole batch).
    pub max_parallel_calls: usize,
    /// At most this many inputs of a batch in progress at once.
    pub max_parallel_inputs: usize,
    /// The aggregators the pass can run (default: the eight built-ins); a network naming any other
    /// is refused before any call.
    pub aggregators: AggregatorRegistry,
    /// What an infrastructure failure of a call does (default: stop the pass or batch).
    pub on_infrastructure_failure: InfrastructurePolicy,
    /// The model profiles agents may name (heterogeneous teams); empty: every call on the worker.
    pub models: ModelProfiles,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            model: "default".into(),
            max_tokens: None,
            seed: None,
            routing: RoutingMode::Dynamic,
            routing_input_chars: 1500,
            routing_statistics: false,
            routing_stats: BTreeMap::new(),
            debate_rounds: 2,
            max_parallel_calls: 8,
            max_parallel_inputs: 4,
            aggregators: AggregatorRegistry::default(),
            on_infrastructure_failure: InfrastructurePolicy::Stop,
            models: ModelProfiles::default(),
        }
    }
}

impl ForwardConfig {
    /// The call settings every call of the pass shares (each call sets its own temperature).
    pub fn call_settings(&self) -> CallSettings {
        CallSettings { model: self.model.clone(), temperature: 0.0, max_tokens: self.max_tokens, seed: self.seed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_modes_have_the_experiment_files_names() {
        for (mode, name) in [(RoutingMode::Dynamic, "\"dynamic\""), (RoutingMode::Fixed, "\"fixed\"")] {
            assert_eq!(serde_json::to_string(&mode).unwrap(), name);
            assert_eq!(serde_json::from_str::<RoutingMode>(name).unwrap(), mode);
        }
    }

    #[test]
    fn infrastructure_policies_have_the_experiment_files_names() {
        for (policy, name) in [(InfrastructurePolicy::Stop, "\"stop\""), (InfrastructurePolicy::Exclude, "\"exclude\"")]
        {
            assert_eq!(serde_json::to_string(&policy).unwrap(), name);
            assert_eq!(serde_json::from_str::<InfrastructurePolicy>(name).unwrap(), policy);
        }
        assert_eq!(ForwardConfig::default().on_infrastructure_failure, InfrastructurePolicy::Stop);
    }

    #[test]
    fn call_settings_carry_the_worker_model() {
        let config =
            ForwardConfig { model: "worker".into(), max_tokens: Some(64), seed: Some(7), ..Default::default() };
        let settings = config.call_settings();
        assert_eq!((settings.model.as_str(), settings.max_tokens, settings.seed), ("worker", Some(64), Some(7)));
        assert_eq!(format!("{:?}", config.aggregators).matches(',').count(), 7, "the eight built-ins");
    }
}
