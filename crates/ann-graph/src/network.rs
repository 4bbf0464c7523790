//! The network definition: the learnable parameter store of the method and its files.
//!
//! A [`Network`] is plain data: ordered layers of agents plus the task description, serialized as
//! JSON or YAML with a schema version. Every layer and agent has a stable slug id (patches address
//! them by id, never by index). Its invariants (the format gate) are in `validate.rs`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{AgentModel, AggregatorName, GraphError};

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
    #[serde(default, serialize_with = "decimal_f32", deserialize_with = "finite_f32")]
    pub temperature: f32,
    /// This agent's own model settings (a model profile, a token limit); absent: the network's
    /// default, the worker (not written when unset, so files without it keep their bytes).
    #[serde(default, skip_serializing_if = "AgentModel::is_default")]
    pub model: AgentModel,
}

/// Serialize an `f32` as the `f64` of its shortest decimal form, so JSON values built from a
/// network (patches, prompts) show `0.7`, not `0.699999988079071`.
fn decimal_f32<S: serde::Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    let decimal: f64 = value.to_string().parse().unwrap_or(f64::from(*value));
    serializer.serialize_f64(decimal)
}

/// Read an `f32` that is finite: `1e308` would become infinity, which JSON writes as `null`, so
/// the network could not be read back (found by the `network_json` property test).
fn finite_f32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
    let value = <f32 as Deserialize>::deserialize(deserializer)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!("a finite number is expected, not {value}")))
    }
}

impl Network {
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
    use crate::{ValidationRules, Violation, is_slug};

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
        let big = |n: &mut Network| n.layers[1].agents[0].model.profile = Some("big".into());
        check(big, &r, "model_profile", Some("solve"), Some("a1"));
        let mut net = sample_network();
        big(&mut net);
        assert_eq!(net.validate(&rules().with_profiles(["big".to_string()])), Ok(()));
    }

    #[test]
    fn an_agents_model_settings_round_trip_and_are_absent_when_unset() {
        let mut net = sample_network();
        net.layers[1].agents[0].model = crate::AgentModel { profile: Some("big".into()), max_tokens: Some(256) };
        let json = net.to_json();
        assert!(
            json.contains("\"model\": {\n            \"profile\": \"big\",\n            \"max_tokens\": 256"),
            "{json}"
        );
        assert_eq!(Network::from_json(&json).unwrap(), net);
        assert_eq!(Network::from_yaml(&net.to_yaml()).unwrap(), net);
        assert!(!sample_network().to_json().contains("\"model\""), "unset: not written");
        let typo = json.replace("\"max_tokens\": 256", "\"max_token\": 256");
        let e = Network::from_json(&typo).unwrap_err().to_string();
        assert!(e.contains("layers[1].agents[0].model") && e.contains("unknown field `max_token`"), "{e}");
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
