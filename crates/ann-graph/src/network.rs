//! The network definition (design 7.1): the learnable parameter store, its invariants and its files.
//!
//! A [`Network`] is plain data: ordered layers of agents plus the task description, serialized as
//! JSON or YAML with a schema version. Every layer and agent has a stable slug id (patches address
//! them by id, never by index). [`Network::validate`] checks every invariant of the format gate and
//! returns all violations at once, each naming its layer, agent and rule.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::GraphError;

/// The schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// A network: the task description and its ordered layers (teams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Schema version ([`SCHEMA_VERSION`]); defaults to it when absent.
    #[serde(default = "schema_version")]
    pub version: u32,
    /// The benchmark-level task description `I` (what is asked, the answer format).
    pub task_description: String,
    /// The layers, first to last.
    pub layers: Vec<Layer>,
}

/// A layer: a team of agents working on one subtask, with its candidate aggregators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Stable slug id (`[a-z0-9_-]+`), unique in the network.
    pub id: String,
    /// What this layer must produce.
    pub subtask: String,
    /// The team, in order (the first agent leads `single`, `critic_revise`; ties go to the lowest index).
    pub agents: Vec<Agent>,
    /// The candidate set `F_l` that routing chooses from.
    pub aggregators: Vec<AggregatorName>,
    /// The aggregator used when routing is fixed, skipped or answers invalidly.
    pub default_aggregator: AggregatorName,
    /// Learnable text shown to DynamicRoutingSelect.
    #[serde(default)]
    pub routing_hint: String,
    /// What the next layer (or the final extractor) expects from this layer's output.
    pub output_spec: String,
}

/// An agent: a node of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Stable slug id (`[a-z0-9_-]+`), unique in its layer.
    pub id: String,
    /// Persona, one sentence.
    pub role: String,
    /// Instruction template with `{task}`, `{input}` (required) and optionally `{peer_outputs}`.
    pub prompt: String,
    /// Sampling temperature of this agent's calls (the request's own type; written as the
    /// shortest decimal, so `0.7` stays `0.7` in files, prompts and patches).
    #[serde(default, serialize_with = "decimal_f32")]
    pub temperature: f32,
}

/// Serialize an `f32` as the `f64` of its shortest decimal form, so JSON values built from a
/// network (patches, prompts) show `0.7`, not `0.699999988079071`.
fn decimal_f32<S: serde::Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    let decimal: f64 = value.to_string().parse().unwrap_or(f64::from(*value));
    serializer.serialize_f64(decimal)
}

/// The registry `F` of aggregation functions (design 7.2), by their snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregatorName {
    Single,
    Concatenate,
    MajorityVote,
    LlmSynthesis,
    SelectBest,
    SequentialRefine,
    Debate,
    CriticRevise,
}

impl AggregatorName {
    /// Every aggregator of the registry, in registry order.
    pub const ALL: [AggregatorName; 8] = [
        Self::Single,
        Self::Concatenate,
        Self::MajorityVote,
        Self::LlmSynthesis,
        Self::SelectBest,
        Self::SequentialRefine,
        Self::Debate,
        Self::CriticRevise,
    ];

    /// The snake_case name used in files and prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Concatenate => "concatenate",
            Self::MajorityVote => "majority_vote",
            Self::LlmSynthesis => "llm_synthesis",
            Self::SelectBest => "select_best",
            Self::SequentialRefine => "sequential_refine",
            Self::Debate => "debate",
            Self::CriticRevise => "critic_revise",
        }
    }

    /// One-line semantics, as shown to the routing call and in docs.
    pub fn description(self) -> &'static str {
        match self {
            Self::Single => "the first agent alone answers; its answer is the layer output",
            Self::Concatenate => "all agents answer in parallel; their answers are joined, labelled by role",
            Self::MajorityVote => {
                "all agents answer in parallel; the most common final answer wins (ties: the earliest agent)"
            }
            Self::LlmSynthesis => "all agents answer in parallel; a synthesiser merges their answers into one",
            Self::SelectBest => "all agents answer in parallel; a judge picks the best answer verbatim",
            Self::SequentialRefine => "agents work in order, each improving the previous agent's draft",
            Self::Debate => {
                "agents answer, then revise over several rounds after seeing each other's answers; majority vote at the end"
            }
            Self::CriticRevise => "the first agent drafts, the others critique, the first agent revises once",
        }
    }

    /// The least team size this aggregator makes sense with.
    pub fn min_agents(self) -> usize {
        match self {
            Self::MajorityVote | Self::LlmSynthesis | Self::SelectBest | Self::Debate => 2,
            _ => 1,
        }
    }

    /// LLM calls one layer execution costs with `agents` agents (routing excluded, no failures).
    pub fn calls(self, agents: usize, debate_rounds: u32) -> usize {
        match self {
            Self::Single => 1,
            Self::Concatenate | Self::MajorityVote | Self::SequentialRefine => agents,
            Self::LlmSynthesis | Self::SelectBest => agents + 1,
            Self::Debate => agents * (debate_rounds as usize + 1),
            Self::CriticRevise => 2 + agents.saturating_sub(1).max(1),
        }
    }
}

impl fmt::Display for AggregatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AggregatorName {
    type Err = String;

    /// Parses a registry name; the error lists the registry.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
            format!("unknown aggregator `{s}` (known: {})", names.join(", "))
        })
    }
}

/// Limits and the caller's answer-format rule the format gate checks (design 7.1).
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
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self { max_layers: 6, max_agents: 5, max_prompt_chars: 4000, answer_format: None }
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
            Self::NoAggregator { .. } | Self::DuplicateAggregator { .. } => "aggregators",
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
    /// Every broken invariant of design 7.1, in network order; `Ok` when there is none.
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
                if n > 0 && n < aggregator.min_agents() {
                    out.push(Violation::TooFewAgents {
                        layer: lid.clone(),
                        aggregator,
                        agents: n,
                        min: aggregator.min_agents(),
                    });
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

    /// The layer with this id.
    pub fn layer(&self, id: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id == id)
    }

    /// The layer with this id, mutably.
    pub fn layer_mut(&mut self, id: &str) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    /// Parse JSON; errors name the path inside the document (e.g. `layers[1].aggregators[0]`).
    pub fn from_json(text: &str) -> Result<Self, GraphError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| GraphError::Parse {
            format: "JSON",
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })
    }

    /// Parse YAML; errors name the path inside the document.
    pub fn from_yaml(text: &str) -> Result<Self, GraphError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| GraphError::Parse {
            format: "YAML",
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })
    }

    /// Pretty JSON (fields in declaration order, two-space indent, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a Network always serializes");
        s.push('\n');
        s
    }

    /// YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a Network always serializes")
    }

    /// Read a `.yaml`/`.yml` file as YAML, anything else as JSON. Does not validate.
    pub fn load(path: &Path) -> Result<Self, GraphError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| GraphError::Io { path: path.to_path_buf(), source })?;
        let parsed = if is_yaml(path) { Self::from_yaml(&text) } else { Self::from_json(&text) };
        parsed.map_err(|e| match e {
            GraphError::Parse { format, path: at, message } => {
                GraphError::Parse { format, path: at, message: format!("{}: {message}", path.display()) }
            }
            other => other,
        })
    }

    /// Write as YAML for `.yaml`/`.yml`, else as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), GraphError> {
        let text = if is_yaml(path) { self.to_yaml() } else { self.to_json() };
        std::fs::write(path, text).map_err(|source| GraphError::Io { path: path.to_path_buf(), source })
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{SAMPLE_NETWORK, sample_network};

    /// Apply `edit` to the sample network and expect exactly one violation with this rule, layer, agent.
    fn check(
        edit: impl FnOnce(&mut Network),
        rules: &ValidationRules,
        rule: &str,
        layer: Option<&str>,
        agent: Option<&str>,
    ) {
        let mut net = sample_network();
        edit(&mut net);
        let violations = net.validate(rules).expect_err("the edit breaks an invariant");
        assert_eq!(violations.len(), 1, "{violations:?}");
        let v = &violations[0];
        assert_eq!((v.rule(), v.layer(), v.agent()), (rule, layer, agent), "{v}");
        assert!(v.to_string().starts_with(&format!("[{rule}]")), "{v}");
    }

    fn rules() -> ValidationRules {
        ValidationRules::with_answer_format("\\boxed{}")
    }

    #[test]
    fn sample_network_is_valid_and_round_trips() {
        let net = sample_network();
        assert_eq!(net.validate(&rules()), Ok(()));
        assert_eq!(Network::from_json(&net.to_json()).unwrap(), net);
        assert_eq!(Network::from_yaml(&net.to_yaml()).unwrap(), net);
        let value: serde_json::Value = serde_json::from_str(SAMPLE_NETWORK).unwrap();
        assert_eq!(serde_json::to_value(&net).unwrap(), value, "serialization keeps the contract's shape");
    }

    #[test]
    fn load_and_save_json_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let net = sample_network();
        for name in ["net.json", "net.yaml", "net.yml"] {
            let path = dir.path().join(name);
            net.save(&path).unwrap();
            assert_eq!(Network::load(&path).unwrap(), net, "{name}");
        }
        let yaml = std::fs::read_to_string(dir.path().join("net.yaml")).unwrap();
        assert!(yaml.starts_with("version: 1\ntask_description:"), "{yaml}");
        let missing = Network::load(&dir.path().join("absent.json")).unwrap_err();
        assert!(matches!(missing, GraphError::Io { .. }), "{missing}");
    }

    #[test]
    fn parse_errors_name_the_place() {
        let unknown_agg = SAMPLE_NETWORK.replace("\"debate\"", "\"vote\"");
        let e = Network::from_json(&unknown_agg).unwrap_err().to_string();
        assert!(e.contains("layers[1].aggregators[1]") && e.contains("unknown variant `vote`"), "{e}");
        let unknown_field = SAMPLE_NETWORK.replace("\"routing_hint\": \"\",", "\"routing_hint\": \"\", \"colour\": 1,");
        let e = Network::from_json(&unknown_field).unwrap_err().to_string();
        assert!(e.contains("layers[0]") && e.contains("unknown field `colour`"), "{e}");
        let e = Network::from_yaml("version: 1\nlayers: []\n").unwrap_err().to_string();
        assert!(e.starts_with("YAML parse error") && e.contains("task_description"), "{e}");
        let no_version = SAMPLE_NETWORK.replace("\"version\": 1,", "");
        assert_eq!(Network::from_json(&no_version).unwrap().version, SCHEMA_VERSION);
    }

    #[test]
    fn every_rule_is_checked() {
        let r = rules();
        check(|n| n.version = 2, &r, "version", None, None);
        check(|n| n.layers.clear(), &r, "layer_count", None, None);
        check(
            |n| {
                n.layers = vec![n.layers[0].clone(); 7]
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut l)| {
                        l.id = format!("l{i}");
                        l.output_spec = "\\boxed{}".into();
                        l
                    })
                    .collect()
            },
            &r,
            "layer_count",
            None,
            None,
        );
        check(|n| n.layers[0].agents.clear(), &r, "agent_count", Some("understand"), None);
        check(
            |n| {
                let a = n.layers[1].agents[0].clone();
                n.layers[1].agents.extend((4..=6).map(|i| crate::Agent { id: format!("a{i}"), ..a.clone() }));
            },
            &r,
            "agent_count",
            Some("solve"),
            None,
        );
        check(|n| n.layers[1].id = "Solve".into(), &r, "slug", Some("Solve"), None);
        check(|n| n.layers[1].agents[2].id = "a 3".into(), &r, "slug", Some("solve"), Some("a 3"));
        check(|n| n.layers[1].id = "understand".into(), &r, "unique_id", Some("understand"), None);
        check(|n| n.layers[1].agents[2].id = "a1".into(), &r, "unique_id", Some("solve"), Some("a1"));
        check(|n| n.layers[0].aggregators.clear(), &r, "aggregators", Some("understand"), None);
        check(|n| n.layers[2].aggregators.push(AggregatorName::Single), &r, "aggregators", Some("verify"), None);
        check(
            |n| n.layers[1].default_aggregator = AggregatorName::Concatenate,
            &r,
            "default_aggregator",
            Some("solve"),
            None,
        );
        check(|n| n.layers[2].aggregators.push(AggregatorName::Debate), &r, "min_agents", Some("verify"), None);
        check(|n| n.layers[1].agents[1].prompt = "Solve {task}".into(), &r, "placeholder", Some("solve"), Some("a2"));
        check(
            |n| n.layers[1].agents[0].prompt = format!("{{input}}{}", "x".repeat(4000)),
            &r,
            "prompt_length",
            Some("solve"),
            Some("a1"),
        );
        check(|n| n.layers[1].agents[0].temperature = 2.5, &r, "temperature", Some("solve"), Some("a1"));
        check(|n| n.layers[2].output_spec = "the final answer".into(), &r, "answer_format", Some("verify"), None);
    }

    #[test]
    fn all_violations_are_reported_and_limits_are_configurable() {
        let mut net = sample_network();
        net.layers[1].agents[0].prompt = "no placeholder".into();
        net.layers[1].default_aggregator = AggregatorName::Single;
        let v = net.validate(&ValidationRules::default()).unwrap_err();
        let rules: Vec<_> = v.iter().map(Violation::rule).collect();
        assert_eq!(rules, ["placeholder", "default_aggregator"]);
        let strict = ValidationRules { max_agents: 2, max_layers: 2, ..ValidationRules::default() };
        let v = sample_network().validate(&strict).unwrap_err();
        let rules: Vec<_> = v.iter().map(Violation::rule).collect();
        assert_eq!(rules, ["layer_count", "agent_count"]);
        assert!(GraphError::Invalid(v).to_string().starts_with("invalid network: [layer_count]"));
    }

    #[test]
    fn aggregator_names() {
        for a in AggregatorName::ALL {
            assert_eq!(a.as_str().parse::<AggregatorName>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        assert!("vote".parse::<AggregatorName>().unwrap_err().contains("majority_vote"));
        assert_eq!(AggregatorName::Debate.calls(3, 2), 9);
        assert_eq!(AggregatorName::CriticRevise.calls(1, 2), 3);
        assert_eq!(AggregatorName::CriticRevise.calls(3, 2), 4);
        assert!(is_slug("a-1_b") && !is_slug("") && !is_slug("A") && !is_slug("a.b"));
    }

    #[test]
    fn diagrams() {
        let net = sample_network();
        insta::assert_snapshot!("dot", net.to_dot());
        insta::assert_snapshot!("mermaid", net.to_mermaid());
    }
}
