//! A broken invariant of the format gate: its rule, and the layer and agent it is about.

use crate::AggregatorName;

/// One broken invariant; [`Violation::rule`] names the rule, and the message names layer and agent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Violation {
    #[error("[version] schema version {found} is not supported (expected {expected})")]
    Version { found: u32, expected: u32 },
    #[error("[layer_count] the network has {count} layers; allowed 1..={max}")]
    LayerCount { count: usize, max: usize },
    #[error("[agent_count] layer `{layer}` has {count} agents; allowed 1..={max}")]
    AgentCount { layer: String, count: usize, max: usize },
    #[error("[slug] layer id `{layer}` is not a slug ([a-z0-9_-]+)")]
    LayerSlug { layer: String },
    #[error("[slug] agent id `{agent}` in layer `{layer}` is not a slug ([a-z0-9_-]+)")]
    AgentSlug { layer: String, agent: String },
    #[error("[unique_id] layer id `{layer}` is used more than once")]
    DuplicateLayer { layer: String },
    #[error("[unique_id] agent id `{agent}` is used more than once in layer `{layer}`")]
    DuplicateAgent { layer: String, agent: String },
    #[error("[aggregators] layer `{layer}` has no candidate aggregator")]
    NoAggregator { layer: String },
    #[error("[aggregators] layer `{layer}` lists aggregator `{aggregator}` more than once")]
    DuplicateAggregator { layer: String, aggregator: AggregatorName },
    /// A candidate the validation rules' registry does not hold (`known` lists the registry).
    #[error("[aggregators] layer `{layer}`: aggregator `{aggregator}` is not registered (known: {known})")]
    UnknownAggregator { layer: String, aggregator: AggregatorName, known: String },
    #[error("[default_aggregator] layer `{layer}`: default `{aggregator}` is not among its aggregators")]
    DefaultNotCandidate { layer: String, aggregator: AggregatorName },
    #[error("[min_agents] layer `{layer}`: `{aggregator}` needs at least {min} agents, the team has {agents}")]
    TooFewAgents { layer: String, aggregator: AggregatorName, agents: usize, min: usize },
    #[error("[placeholder] agent `{agent}` in layer `{layer}`: the prompt lacks `{placeholder}`")]
    MissingPlaceholder { layer: String, agent: String, placeholder: String },
    #[error("[prompt_length] agent `{agent}` in layer `{layer}`: prompt of {chars} chars exceeds {max}")]
    PromptTooLong { layer: String, agent: String, chars: usize, max: usize },
    #[error("[temperature] agent `{agent}` in layer `{layer}`: temperature {temperature} is outside 0..=2")]
    Temperature { layer: String, agent: String, temperature: f32 },
    /// An agent names a model profile the rules do not know (`known` lists them).
    #[error(
        "[model_profile] agent `{agent}` in layer `{layer}`: model profile `{profile}` is not configured (known: {known})"
    )]
    UnknownProfile { layer: String, agent: String, profile: String, known: String },
    #[error("[answer_format] last layer `{layer}`: output_spec must contain the answer format `{answer_format}`")]
    AnswerFormat { layer: String, answer_format: String },
}

impl Violation {
    /// The rule's short name (`invariant:<rule>` in the optimiser's rejection reasons).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Version { .. } => "version",
            Self::LayerCount { .. } => "layer_count",
            Self::AgentCount { .. } => "agent_count",
            Self::LayerSlug { .. } | Self::AgentSlug { .. } => "slug",
            Self::DuplicateLayer { .. } | Self::DuplicateAgent { .. } => "unique_id",
            Self::NoAggregator { .. } | Self::DuplicateAggregator { .. } | Self::UnknownAggregator { .. } => {
                "aggregators"
            }
            Self::DefaultNotCandidate { .. } => "default_aggregator",
            Self::TooFewAgents { .. } => "min_agents",
            Self::MissingPlaceholder { .. } => "placeholder",
            Self::PromptTooLong { .. } => "prompt_length",
            Self::Temperature { .. } => "temperature",
            Self::UnknownProfile { .. } => "model_profile",
            Self::AnswerFormat { .. } => "answer_format",
        }
    }

    /// The layer the violation is about, if any.
    pub fn layer(&self) -> Option<&str> {
        match self {
            Self::Version { .. } | Self::LayerCount { .. } => None,
            Self::AgentCount { layer, .. }
            | Self::LayerSlug { layer }
            | Self::AgentSlug { layer, .. }
            | Self::DuplicateLayer { layer }
            | Self::DuplicateAgent { layer, .. }
            | Self::NoAggregator { layer }
            | Self::DuplicateAggregator { layer, .. }
            | Self::UnknownAggregator { layer, .. }
            | Self::DefaultNotCandidate { layer, .. }
            | Self::TooFewAgents { layer, .. }
            | Self::MissingPlaceholder { layer, .. }
            | Self::PromptTooLong { layer, .. }
            | Self::Temperature { layer, .. }
            | Self::UnknownProfile { layer, .. }
            | Self::AnswerFormat { layer, .. } => Some(layer),
        }
    }

    /// The agent the violation is about, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Self::AgentSlug { agent, .. }
            | Self::DuplicateAgent { agent, .. }
            | Self::MissingPlaceholder { agent, .. }
            | Self::PromptTooLong { agent, .. }
            | Self::Temperature { agent, .. }
            | Self::UnknownProfile { agent, .. } => Some(agent),
            _ => None,
        }
    }
}
