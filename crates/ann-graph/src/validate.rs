//! The format gate: the invariants every network must keep (limits, slugs, unique ids, registered
//! aggregators with enough agents, placeholders, temperatures, the answer format), checked all at
//! once, each violation naming its layer, agent and rule.

use crate::{AggregatorName, AggregatorRegistry, Network, SCHEMA_VERSION};

/// Limits, the known aggregators and the caller's answer-format rule the format gate checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRules {
    /// At most this many layers (at least one).
    pub max_layers: usize,
    /// At most this many agents per layer (at least one).
    pub max_agents: usize,
    /// At most this many characters per agent prompt.
    pub max_prompt_chars: usize,
    /// Text the last layer's `output_spec` must contain (the benchmark's answer-format rule, e.g.
    /// `\boxed{}`); `None` checks nothing. The graph does not know benchmarks: the caller passes it.
    pub answer_format: Option<String>,
    /// The aggregators a layer may name (default: the eight built-ins); their `min_agents` apply.
    pub aggregators: AggregatorRegistry,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            max_layers: 6,
            max_agents: 5,
            max_prompt_chars: 4000,
            answer_format: None,
            aggregators: AggregatorRegistry::default(),
        }
    }
}

impl ValidationRules {
    /// The default limits with an answer-format rule for the last layer.
    pub fn with_answer_format(answer_format: impl Into<String>) -> Self {
        Self { answer_format: Some(answer_format.into()), ..Self::default() }
    }
}

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
            | Self::Temperature { agent, .. } => Some(agent),
            _ => None,
        }
    }
}

/// Whether `id` is a non-empty slug of `[a-z0-9_-]`.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Placeholders an agent prompt must keep.
pub const REQUIRED_PLACEHOLDERS: [&str; 1] = ["{input}"];

impl Network {
    /// Every broken invariant of the format gate, in network order; `Ok` when there is none.
    pub fn validate(&self, rules: &ValidationRules) -> Result<(), Vec<Violation>> {
        let mut out = Vec::new();
        if self.version != SCHEMA_VERSION {
            out.push(Violation::Version { found: self.version, expected: SCHEMA_VERSION });
        }
        if self.layers.is_empty() || self.layers.len() > rules.max_layers {
            out.push(Violation::LayerCount { count: self.layers.len(), max: rules.max_layers });
        }
        let mut layer_ids = std::collections::BTreeSet::new();
        for layer in &self.layers {
            let lid = &layer.id;
            if !is_slug(lid) {
                out.push(Violation::LayerSlug { layer: lid.clone() });
            }
            if !layer_ids.insert(lid.as_str()) {
                out.push(Violation::DuplicateLayer { layer: lid.clone() });
            }
            let n = layer.agents.len();
            if n == 0 || n > rules.max_agents {
                out.push(Violation::AgentCount { layer: lid.clone(), count: n, max: rules.max_agents });
            }
            let mut agent_ids = std::collections::BTreeSet::new();
            for agent in &layer.agents {
                let at = |f: fn(String, String) -> Violation| f(lid.clone(), agent.id.clone());
                if !is_slug(&agent.id) {
                    out.push(at(|layer, agent| Violation::AgentSlug { layer, agent }));
                }
                if !agent_ids.insert(agent.id.as_str()) {
                    out.push(at(|layer, agent| Violation::DuplicateAgent { layer, agent }));
                }
                for placeholder in REQUIRED_PLACEHOLDERS {
                    if !agent.prompt.contains(placeholder) {
                        out.push(Violation::MissingPlaceholder {
                            layer: lid.clone(),
                            agent: agent.id.clone(),
                            placeholder: placeholder.to_string(),
                        });
                    }
                }
                let chars = agent.prompt.chars().count();
                if chars > rules.max_prompt_chars {
                    out.push(Violation::PromptTooLong {
                        layer: lid.clone(),
                        agent: agent.id.clone(),
                        chars,
                        max: rules.max_prompt_chars,
                    });
                }
                if !(0.0..=2.0).contains(&agent.temperature) {
                    out.push(Violation::Temperature {
                        layer: lid.clone(),
                        agent: agent.id.clone(),
                        temperature: agent.temperature,
                    });
                }
            }
            if layer.aggregators.is_empty() {
                out.push(Violation::NoAggregator { layer: lid.clone() });
            }
            for (i, &aggregator) in layer.aggregators.iter().enumerate() {
                if layer.aggregators[..i].contains(&aggregator) {
                    out.push(Violation::DuplicateAggregator { layer: lid.clone(), aggregator });
                    continue;
                }
                let Some(registered) = rules.aggregators.get(aggregator) else {
                    let known: Vec<&str> = rules.aggregators.names().map(AggregatorName::as_str).collect();
                    out.push(Violation::UnknownAggregator { layer: lid.clone(), aggregator, known: known.join(", ") });
                    continue;
                };
                let min = registered.min_agents();
                if n > 0 && n < min {
                    out.push(Violation::TooFewAgents { layer: lid.clone(), aggregator, agents: n, min });
                }
            }
            if !layer.aggregators.is_empty() && !layer.aggregators.contains(&layer.default_aggregator) {
                out.push(Violation::DefaultNotCandidate { layer: lid.clone(), aggregator: layer.default_aggregator });
            }
        }
        if let (Some(format), Some(last)) = (&rules.answer_format, self.layers.last())
            && !last.output_spec.contains(format.as_str())
        {
            out.push(Violation::AnswerFormat { layer: last.id.clone(), answer_format: format.clone() });
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }
}
