//! The format gate: the invariants every network must keep (limits, slugs, unique ids, registered
//! aggregators with enough agents, placeholders, temperatures, known model profiles, the answer
//! format), checked all at once, each violation naming its layer, agent and rule.

use std::collections::BTreeSet;

use crate::{AggregatorName, AggregatorRegistry, Network, SCHEMA_VERSION, Violation, is_slug};

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
    /// The model profiles an agent may name (default: none, so an agent naming one is refused).
    pub profiles: BTreeSet<String>,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            max_layers: 6,
            max_agents: 5,
            max_prompt_chars: 4000,
            answer_format: None,
            aggregators: AggregatorRegistry::default(),
            profiles: BTreeSet::new(),
        }
    }
}

impl ValidationRules {
    /// The default limits with an answer-format rule for the last layer.
    pub fn with_answer_format(answer_format: impl Into<String>) -> Self {
        Self { answer_format: Some(answer_format.into()), ..Self::default() }
    }

    /// These rules, with `profiles` as the model profiles an agent may name.
    pub fn with_profiles(self, profiles: impl IntoIterator<Item = String>) -> Self {
        Self { profiles: profiles.into_iter().collect(), ..self }
    }
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
                if let Some(profile) = &agent.model.profile
                    && !rules.profiles.contains(profile)
                {
                    let known: Vec<&str> = rules.profiles.iter().map(String::as_str).collect();
                    out.push(Violation::UnknownProfile {
                        layer: lid.clone(),
                        agent: agent.id.clone(),
                        profile: profile.clone(),
                        known: if known.is_empty() { "none".into() } else { known.join(", ") },
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
