//! Baselines the trained network is compared with (direct, chain of thought, self-consistency,
//! debate, the untrained start): fixed networks built from a benchmark, run like any other network.
//!
//! A baseline is a network of the ordinary schema, built from the benchmark's task description
//! and answer-format rule, and validated as a starting network is ([`crate::check_network`]). It
//! runs with the experiment's client, response cache, budget and evaluator; its layers have one
//! candidate aggregator each, so no routing call is made and training never touches it.
//!
//! | name | network | calls per example |
//! |---|---|---|
//! | `direct` | one agent gives the final answer, no reasoning | 1 |
//! | `cot` | one agent reasons step by step, then answers | 1 |
//! | `self_consistency` | 5 samples of one chain-of-thought prompt (temperature 0.7, distinct sample indices), majority vote on the extracted answer | 5 |
//! | `debate` | 3 chain-of-thought agents (temperature 0.7), 2 rounds of revision after seeing each other's answers, then majority vote | 9 |
//! | `start` | the experiment's untrained starting network | as the network |
//!
//! Voting needs an answer the benchmark can extract: on creative writing (no short answer)
//! `self_consistency` keeps the first agent's output, `debate` ends with a synthesis of the final
//! round (one call more), and a `cot` answer's reasoning counts against the passage's required
//! structure.

use std::fmt;
use std::str::FromStr;

use ann_eval::Benchmark;
use ann_graph::{Agent, AggregatorName, ForwardConfig, Layer, Network, SCHEMA_VERSION};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::prompts;

/// Samples of the `self_consistency` baseline (Wang et al.: majority over sampled chains of thought).
pub const SELF_CONSISTENCY_SAMPLES: usize = 5;
/// Agents of the `debate` baseline (Du et al.).
pub const DEBATE_AGENTS: usize = 3;
/// Revision rounds of the `debate` baseline, whatever the experiment's `forward.debate_rounds`.
pub const DEBATE_ROUNDS: u32 = 2;
/// Temperature of the sampled agents (`self_consistency`, `debate`); the starting networks' 0.7 for
/// vote and debate agents. Each agent's calls carry its index as the sample index, so the samples
/// are distinct requests (and distinct cache entries).
pub const SAMPLE_TEMPERATURE: f32 = 0.7;
// The graph gives a call its agent's index as sample index only above temperature 0.
const _: () = assert!(SAMPLE_TEMPERATURE > 0.0, "sampled agents need a temperature above 0");

/// A baseline method, by its snake_case name in configs, reports and `ann eval --baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// One agent answers directly.
    Direct,
    /// One agent reasons step by step, then answers.
    Cot,
    /// Five samples of one chain-of-thought prompt, majority vote.
    SelfConsistency,
    /// Three agents, two rounds of debate, majority vote.
    Debate,
    /// The untrained starting network.
    Start,
}

impl Baseline {
    /// Every baseline, in the order reports list them.
    pub const ALL: [Baseline; 5] = [Self::Direct, Self::Cot, Self::SelfConsistency, Self::Debate, Self::Start];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Cot => "cot",
            Self::SelfConsistency => "self_consistency",
            Self::Debate => "debate",
            Self::Start => "start",
        }
    }

    /// One line saying what the baseline is.
    pub fn description(self) -> &'static str {
        match self {
            Self::Direct => "one agent answers directly",
            Self::Cot => "one agent reasons step by step, then answers",
            Self::SelfConsistency => "5 sampled chains of thought (temperature 0.7), majority vote",
            Self::Debate => "3 agents, 2 rounds of debate, majority vote",
            Self::Start => "the untrained starting network",
        }
    }

    /// Model calls per example (`None` for `start`, which depends on its network and routing).
    pub fn calls_per_example(self) -> Option<usize> {
        match self {
            Self::Direct | Self::Cot => Some(1),
            Self::SelfConsistency => Some(SELF_CONSISTENCY_SAMPLES),
            Self::Debate => Some(DEBATE_AGENTS * (DEBATE_ROUNDS as usize + 1)),
            Self::Start => None,
        }
    }

    /// The fixed network of this baseline for a task and its answer-format rule; `None` for
    /// `start`, whose network is the benchmark's (or the experiment's) starting network.
    pub fn fixed_network(self, task_description: &str, answer_format: &str) -> Option<Network> {
        let cot = || prompts::chain_of_thought_prompt(answer_format);
        let cot_spec = || prompts::chain_of_thought_output_spec(answer_format);
        let layer = match self {
            Self::Direct => one_layer(
                prompts::DIRECT_SUBTASK,
                vec![agent("a1", prompts::DIRECT_ROLE, prompts::direct_prompt(answer_format), 0.0)],
                AggregatorName::Single,
                prompts::direct_output_spec(answer_format),
            ),
            Self::Cot => one_layer(
                prompts::COT_SUBTASK,
                vec![agent("a1", prompts::REASONER_ROLE, cot(), 0.0)],
                AggregatorName::Single,
                cot_spec(),
            ),
            Self::SelfConsistency => one_layer(
                prompts::SELF_CONSISTENCY_SUBTASK,
                (1..=SELF_CONSISTENCY_SAMPLES)
                    .map(|i| agent(&format!("s{i}"), prompts::REASONER_ROLE, cot(), SAMPLE_TEMPERATURE))
                    .collect(),
                AggregatorName::MajorityVote,
                cot_spec(),
            ),
            Self::Debate => one_layer(
                prompts::DEBATE_SUBTASK,
                (1..=DEBATE_AGENTS)
                    .map(|i| agent(&format!("d{i}"), prompts::REASONER_ROLE, cot(), SAMPLE_TEMPERATURE))
                    .collect(),
                AggregatorName::Debate,
                cot_spec(),
            ),
            Self::Start => return None,
        };
        Some(Network { version: SCHEMA_VERSION, task_description: task_description.to_string(), layers: vec![layer] })
    }

    /// The network of this baseline for `benchmark` (for `start`, the benchmark's own starting
    /// network; a run uses the experiment's starting network instead, which a config may replace).
    pub fn network(self, benchmark: &dyn Benchmark) -> anyhow::Result<Network> {
        match self.fixed_network(benchmark.task_description(), benchmark.answer_format()) {
            Some(net) => Ok(net),
            None => Network::from_json(benchmark.starting_network())
                .with_context(|| format!("the starting network of benchmark {}", benchmark.name())),
        }
    }

    /// The forward settings this baseline runs with: the experiment's, except that `debate`
    /// always has [`DEBATE_ROUNDS`] rounds.
    pub fn forward_config(self, experiment: &ForwardConfig) -> ForwardConfig {
        let mut config = experiment.clone();
        if self == Self::Debate {
            config.debate_rounds = DEBATE_ROUNDS;
        }
        config
    }
}

fn agent(id: &str, role: &str, prompt: String, temperature: f32) -> Agent {
    Agent { id: id.to_string(), role: role.to_string(), prompt, temperature, model: Default::default() }
}

fn one_layer(subtask: &str, agents: Vec<Agent>, aggregator: AggregatorName, output_spec: String) -> Layer {
    Layer {
        id: "answer".into(),
        subtask: subtask.to_string(),
        agents,
        aggregators: vec![aggregator],
        default_aggregator: aggregator,
        routing_hint: String::new(),
        output_spec,
    }
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Baseline {
    type Err = String;

    /// Parses a snake_case name; the error lists the known ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|b| b.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|b| b.as_str()).collect();
            format!("unknown baseline `{s}` (known: {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use ann_graph::ValidationRules;

    use super::*;

    const TASK: &str = "Answer a multiple-choice question. End with a last line 'Answer: X'.";
    const FORMAT: &str = "Answer: X";

    #[test]
    fn fixed_networks_snapshot() {
        for baseline in Baseline::ALL {
            let Some(net) = baseline.fixed_network(TASK, FORMAT) else {
                assert_eq!(baseline, Baseline::Start);
                continue;
            };
            net.validate(&ValidationRules::with_answer_format(FORMAT)).unwrap_or_else(|v| panic!("{baseline}: {v:?}"));
            insta::assert_snapshot!(baseline.as_str(), net.to_json());
        }
    }

    #[test]
    fn shapes_match_the_method() {
        let net = |b: Baseline| b.fixed_network(TASK, FORMAT).unwrap();
        let shape = |b: Baseline| {
            let n = net(b);
            let layer = &n.layers[0];
            (n.layers.len(), layer.agents.len(), layer.default_aggregator)
        };
        assert_eq!(shape(Baseline::Direct), (1, 1, AggregatorName::Single));
        assert_eq!(shape(Baseline::Cot), (1, 1, AggregatorName::Single));
        assert_eq!(shape(Baseline::SelfConsistency), (1, SELF_CONSISTENCY_SAMPLES, AggregatorName::MajorityVote));
        assert_eq!(shape(Baseline::Debate), (1, DEBATE_AGENTS, AggregatorName::Debate));
        // Self-consistency: one prompt, sampled; the chain of thought is the `cot` prompt.
        let sc = net(Baseline::SelfConsistency);
        let cot = net(Baseline::Cot);
        for a in &sc.layers[0].agents {
            assert_eq!(
                (a.prompt.as_str(), a.temperature),
                (cot.layers[0].agents[0].prompt.as_str(), SAMPLE_TEMPERATURE)
            );
        }
        assert_eq!(Baseline::Debate.calls_per_example(), Some(9));
        let mut forward = ForwardConfig { debate_rounds: 1, ..ForwardConfig::default() };
        assert_eq!(Baseline::Debate.forward_config(&forward).debate_rounds, DEBATE_ROUNDS);
        forward.debate_rounds = 4;
        assert_eq!(Baseline::Cot.forward_config(&forward), forward);
    }

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for b in Baseline::ALL {
            assert_eq!(serde_json::to_value(b).unwrap(), serde_json::Value::String(b.as_str().into()));
            assert_eq!(b.as_str().parse::<Baseline>(), Ok(b));
            assert_eq!(b.to_string(), b.as_str());
        }
        let err = "tot".parse::<Baseline>().unwrap_err();
        assert!(err.contains("unknown baseline `tot`") && err.contains("self_consistency"), "{err}");
    }
}
