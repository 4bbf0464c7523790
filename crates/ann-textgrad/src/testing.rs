//! Shared fixtures of the unit tests: the contract's default starting network.

pub(crate) use ann_graph::example_network as sample_network;

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
        profile: None,
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
        error: None,
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
