//! Shared fixtures of the unit tests: the contract's default starting network.

use ann_graph::Network;

/// The default starting network of the contract (7.10): understand -> solve (3 agents) -> verify.
pub(crate) const SAMPLE_NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Solve the maths problem. Give the final answer in \\boxed{}.",
  "layers": [
    {
      "id": "understand",
      "subtask": "restate the problem and list what is given and asked",
      "agents": [
        {"id": "a1", "role": "A careful reader.", "prompt": "Task: {task}\nRestate this problem: {input}", "temperature": 0.0}
      ],
      "aggregators": ["single"],
      "default_aggregator": "single",
      "routing_hint": "",
      "output_spec": "a restatement with givens and the question"
    },
    {
      "id": "solve",
      "subtask": "solve the problem step by step",
      "agents": [
        {"id": "a1", "role": "A rigorous mathematician.", "prompt": "{task}\nSolve: {input}", "temperature": 0.0},
        {"id": "a2", "role": "A quick estimator.", "prompt": "{task}\nSolve quickly: {input}\n{peer_outputs}", "temperature": 0.7},
        {"id": "a3", "role": "A checker of cases.", "prompt": "{task}\nSolve by cases: {input}", "temperature": 0.7}
      ],
      "aggregators": ["majority_vote", "debate", "llm_synthesis", "select_best"],
      "default_aggregator": "majority_vote",
      "routing_hint": "use debate when the problem has several cases",
      "output_spec": "a full solution ending in \\boxed{answer}"
    },
    {
      "id": "verify",
      "subtask": "check the solution and format the final answer",
      "agents": [
        {"id": "a1", "role": "A verifier.", "prompt": "{task}\nCheck and finalise: {input}", "temperature": 0.0}
      ],
      "aggregators": ["single", "critic_revise"],
      "default_aggregator": "single",
      "routing_hint": "",
      "output_spec": "the verified solution, final answer in \\boxed{}"
    }
  ]
}"#;

pub(crate) fn sample_network() -> Network {
    Network::from_json(SAMPLE_NETWORK).expect("the sample network parses")
}

/// Messages as readable text for snapshots.
pub(crate) fn check_messages(messages: &[ann_llm::Message]) -> String {
    messages.iter().map(|m| format!("--- {:?} ---\n{}", m.role, m.content)).collect::<Vec<_>>().join("\n")
}

fn agent_call(layer: &str, agent: &str, output: &str) -> ann_graph::CallRecord {
    ann_graph::CallRecord {
        layer: layer.into(),
        kind: ann_graph::CallKind::Agent,
        aggregator: None,
        agent: Some(agent.into()),
        round: 0,
        messages: Vec::new(),
        output: Some(output.into()),
        error: None,
        usage: ann_llm::Usage::default(),
        latency_ms: 0,
        model: "m".into(),
        cache_hit: false,
    }
}

/// A small trace of the sample network: one line per layer, two agents in `solve`.
pub(crate) fn sample_traces() -> Vec<ann_graph::LayerTrace> {
    use ann_graph::{AggregatorName, LayerTrace, RoutingDecision, RoutingSource};
    let layer = |id: &str, input: &str, aggregator, calls, output: &str| LayerTrace {
        layer: id.into(),
        input: input.into(),
        routing: RoutingDecision {
            aggregator,
            reason: "one candidate".into(),
            source: RoutingSource::SingleCandidate,
            fallback: None,
        },
        calls,
        notes: Vec::new(),
        output: output.into(),
    };
    vec![
        layer(
            "understand",
            "What is 2+3?",
            AggregatorName::Single,
            vec![agent_call("understand", "a1", "Add 2 and 3.")],
            "Add 2 and 3.",
        ),
        layer(
            "solve",
            "Add 2 and 3.",
            AggregatorName::MajorityVote,
            vec![agent_call("solve", "a1", "2+3=6"), agent_call("solve", "a2", "2+3=5")],
            "2+3=6",
        ),
        layer(
            "verify",
            "2+3=6",
            AggregatorName::Single,
            vec![agent_call("verify", "a1", "The answer is 6.")],
            "The answer is 6.",
        ),
    ]
}
