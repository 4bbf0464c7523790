//! Slugs and aggregator names: the nine built-in aggregation functions and the custom names a user declares.
//!
//! An [`AggregatorName`] is what a network file, a trace, a routing answer and a patch say; it is
//! `Copy` and compares by name. The nine built-ins keep their snake_case names. A custom name is
//! declared once with [`AggregatorName::custom`] (usually from the custom aggregator's
//! [`crate::Aggregator::name`]), which interns it for the rest of the process: from then on it
//! parses from text and files like a built-in. A name nobody declared is refused at parse time, with
//! the place in the document, as before custom aggregators existed.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use serde::de::{self, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether `id` is a non-empty slug of `[a-z0-9_-]`.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The name of an aggregation function: one of the nine built-ins, or a declared custom name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AggregatorName {
    /// `single`: the first agent alone answers.
    Single,
    /// `concatenate`: every answer, labelled by agent and role.
    Concatenate,
    /// `majority_vote`: the most common final answer wins.
    MajorityVote,
    /// `llm_synthesis`: the last agent merges all answers.
    LlmSynthesis,
    /// `select_best`: a judge picks one answer verbatim.
    SelectBest,
    /// `sequential_refine`: each agent improves the previous draft.
    SequentialRefine,
    /// `debate`: rounds of revision after seeing the others, then a vote.
    Debate,
    /// `critic_revise`: a draft, critiques, one revision.
    CriticRevise,
    /// `tool_pipeline`: a plan with a program, the program run by the `python` tool, an answer
    /// from its results.
    ToolPipeline,
    /// A user's aggregator, declared with [`AggregatorName::custom`].
    Custom(CustomName),
}

/// A declared custom aggregator name (interned: `Copy`, compared by its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomName(&'static str);

impl CustomName {
    /// The name as written in files and prompts.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// The snake_case names of the built-ins, in registry order (serde's variant list).
const BUILT_IN_NAMES: &[&str] = &[
    "single",
    "concatenate",
    "majority_vote",
    "llm_synthesis",
    "select_best",
    "sequential_refine",
    "debate",
    "critic_revise",
    "tool_pipeline",
];

/// Every custom name declared in this process, interned.
fn declared() -> &'static Mutex<BTreeSet<&'static str>> {
    static DECLARED: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    DECLARED.get_or_init(Default::default)
}

impl AggregatorName {
    /// Every built-in aggregator, in registry order.
    pub const ALL: [AggregatorName; 9] = [
        Self::Single,
        Self::Concatenate,
        Self::MajorityVote,
        Self::LlmSynthesis,
        Self::SelectBest,
        Self::SequentialRefine,
        Self::Debate,
        Self::CriticRevise,
        Self::ToolPipeline,
    ];

    /// Declare (or look up) the custom aggregator name `name`: a slug (`[a-z0-9_-]+`) that is not
    /// a built-in's. Once declared, the name parses from text, network files and traces.
    ///
    /// ```
    /// use ann_graph::AggregatorName;
    /// let shout = AggregatorName::custom("shout").unwrap();
    /// assert_eq!((shout.as_str(), shout.is_built_in()), ("shout", false));
    /// assert_eq!("shout".parse::<AggregatorName>(), Ok(shout));
    /// assert!(AggregatorName::custom("debate").is_err());
    /// ```
    pub fn custom(name: &str) -> Result<Self, String> {
        if BUILT_IN_NAMES.contains(&name) {
            return Err(format!("`{name}` is the name of a built-in aggregator"));
        }
        if !is_slug(name) {
            return Err(format!("custom aggregator name `{name}` is not a slug ([a-z0-9_-]+)"));
        }
        let mut set = declared().lock().expect("aggregator names lock");
        let interned = match set.get(name) {
            Some(&existing) => existing,
            None => {
                let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                set.insert(leaked);
                leaked
            }
        };
        Ok(Self::Custom(CustomName(interned)))
    }

    /// Whether this is one of the nine built-ins ([`Self::ALL`]).
    pub fn is_built_in(self) -> bool {
        !matches!(self, Self::Custom(_))
    }

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
            Self::ToolPipeline => "tool_pipeline",
            Self::Custom(name) => name.as_str(),
        }
    }

    /// One-line semantics, as shown to the routing call and in docs. A custom aggregator describes
    /// itself ([`crate::Aggregator::description`]); its name alone gives a neutral line.
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
            Self::ToolPipeline => {
                "the first agent plans and writes a Python program, the sandbox runs it, the last agent answers from its output"
            }
            Self::Custom(_) => "a custom aggregator",
        }
    }

    /// The least team size this aggregator makes sense with (a custom name alone: 1; its
    /// aggregator says better, [`crate::Aggregator::min_agents`]).
    pub fn min_agents(self) -> usize {
        match self {
            Self::MajorityVote | Self::LlmSynthesis | Self::SelectBest | Self::Debate => 2,
            _ => 1,
        }
    }

    /// LLM calls one layer execution costs with `agents` agents (routing excluded, no failures).
    /// A custom name alone is assumed to cost one call per agent ([`crate::Aggregator::calls`]).
    pub fn calls(self, agents: usize, debate_rounds: u32) -> usize {
        match self {
            Self::Single => 1,
            Self::ToolPipeline => 2,
            Self::Concatenate | Self::MajorityVote | Self::SequentialRefine | Self::Custom(_) => agents,
            Self::LlmSynthesis | Self::SelectBest => agents + 1,
            Self::Debate => agents * (debate_rounds as usize + 1),
            Self::CriticRevise => 2 + agents.saturating_sub(1).max(1),
        }
    }

    /// The built-in or declared name `s`, if there is one.
    fn lookup(s: &str) -> Option<Self> {
        if let Some(built_in) = Self::ALL.into_iter().find(|a| a.as_str() == s) {
            return Some(built_in);
        }
        declared().lock().expect("aggregator names lock").get(s).map(|&name| Self::Custom(CustomName(name)))
    }
}

impl fmt::Display for AggregatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AggregatorName {
    type Err = String;

    /// Parses a built-in or declared name; the error lists the known names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::lookup(s).ok_or_else(|| {
            let mut names: Vec<&str> = BUILT_IN_NAMES.to_vec();
            names.extend(declared().lock().expect("aggregator names lock").iter());
            format!("unknown aggregator `{s}` (known: {})", names.join(", "))
        })
    }
}

/// Built-ins serialize as the unit variants they always were (so every format writes the same
/// bytes); a custom name as its text.
impl Serialize for AggregatorName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Custom(name) => serializer.serialize_str(name.as_str()),
            built_in => {
                let index = Self::ALL.iter().position(|a| a == built_in).expect("a built-in") as u32;
                serializer.serialize_unit_variant("AggregatorName", index, built_in.as_str())
            }
        }
    }
}

/// Read like the unit-variant enum it was, with declared custom names as further variants; an
/// unknown name is serde's `unknown variant` error listing the built-ins.
impl<'de> Deserialize<'de> for AggregatorName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = AggregatorName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("enum AggregatorName")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                AggregatorName::lookup(s).ok_or_else(|| E::unknown_variant(s, BUILT_IN_NAMES))
            }

            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
                let (name, variant): (String, _) = data.variant()?;
                variant.unit_variant()?;
                self.visit_str(&name)
            }
        }

        deserializer.deserialize_enum("AggregatorName", BUILT_IN_NAMES, NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names_are_declared_slugs_apart_from_the_built_ins() {
        assert_eq!(AggregatorName::custom("debate").unwrap_err(), "`debate` is the name of a built-in aggregator");
        assert!(AggregatorName::custom("Not A Slug").unwrap_err().contains("not a slug"));
        assert!("name_test_late".parse::<AggregatorName>().is_err(), "undeclared");
        let late = AggregatorName::custom("name_test_late").unwrap();
        assert_eq!(AggregatorName::custom("name_test_late"), Ok(late), "declaring twice is a lookup");
        assert_eq!("name_test_late".parse::<AggregatorName>(), Ok(late));
        assert!(late > AggregatorName::CriticRevise && !late.is_built_in());
        assert_eq!((late.min_agents(), late.calls(3, 2)), (1, 3));
    }

    #[test]
    fn built_ins_serialize_as_the_unit_variants_they_were_and_customs_as_text() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Before {
            MajorityVote,
        }
        let custom = AggregatorName::custom("name_test_serde").unwrap();
        assert_eq!(
            serde_yaml_ng::to_string(&AggregatorName::MajorityVote).unwrap(),
            serde_yaml_ng::to_string(&Before::MajorityVote).unwrap()
        );
        for name in AggregatorName::ALL.into_iter().chain([custom]) {
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<AggregatorName>(&json).unwrap(), name);
            let value = serde_json::to_value(name).unwrap();
            assert_eq!(serde_json::from_value::<AggregatorName>(value).unwrap(), name);
            let yaml = serde_yaml_ng::to_string(&name).unwrap();
            assert_eq!(yaml, format!("{name}\n"));
            assert_eq!(serde_yaml_ng::from_str::<AggregatorName>(&yaml).unwrap(), name);
        }
        let e = serde_json::from_str::<AggregatorName>("\"name_test_never\"").unwrap_err().to_string();
        assert!(e.starts_with("unknown variant `name_test_never`, expected one of `single`, `concatenate`"), "{e}");
        for input in ["3", "{\"majority_vote\": 1}", "{\"majority_vote\": null}", "null"] {
            let ours = serde_json::from_str::<AggregatorName>(input)
                .map(|name| name.to_string())
                .map_err(|e| e.to_string().replace("AggregatorName", "Before"));
            let derived =
                serde_json::from_str::<Before>(input).map(|_| "majority_vote".to_string()).map_err(|e| e.to_string());
            assert_eq!(ours, derived, "{input}");
        }
    }
}
