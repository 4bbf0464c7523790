//! Shared fixtures of the unit tests: the default starting network and message rendering.

use ann_llm::Message;

use crate::Network;

pub(crate) use crate::{EXAMPLE_NETWORK as SAMPLE_NETWORK, example_network as sample_network};

/// Messages as readable text for snapshots.
pub(crate) fn check_messages(messages: &[Message]) -> String {
    messages.iter().map(|m| format!("--- {:?} ---\n{}", m.role, m.content)).collect::<Vec<_>>().join("\n")
}

/// A one-layer network with `agents` agents (`a1`, `a2`, ...) and the given candidates.
pub(crate) fn one_layer(agents: usize, aggregators: &[crate::AggregatorName]) -> Network {
    let agents = (1..=agents)
        .map(|i| crate::Agent {
            id: format!("a{i}"),
            role: format!("Solver number {i}."),
            prompt: "Solve: {input}".into(),
            temperature: 0.0,
            model: Default::default(),
        })
        .collect();
    Network {
        version: 1,
        task_description: "Answer in \\boxed{}.".into(),
        layers: vec![crate::Layer {
            id: "solve".into(),
            subtask: "solve it".into(),
            agents,
            aggregators: aggregators.to_vec(),
            default_aggregator: aggregators[0],
            routing_hint: String::new(),
            output_spec: "an answer in \\boxed{}".into(),
        }],
    }
}

/// The content of the last `\boxed{...}` (no nesting), as the test extractor.
pub(crate) fn boxed(s: &str) -> Option<String> {
    let start = s.rfind("\\boxed{")? + "\\boxed{".len();
    let end = s[start..].find('}')? + start;
    Some(s[start..end].trim().to_string())
}

/// Whether any message of `req` contains `needle`.
pub(crate) fn has(req: &ann_llm::ChatRequest, needle: &str) -> bool {
    req.messages.iter().any(|m| m.content.contains(needle))
}

/// Whether `req` is a call of agent `agent` of layer `layer` (its system message names both).
pub(crate) fn is_agent(req: &ann_llm::ChatRequest, layer: &str, agent: &str) -> bool {
    req.messages.first().is_some_and(|m| m.content.contains(&format!("You are agent `{agent}` of the team `{layer}`")))
}

/// Whether `req` is a routing call.
pub(crate) fn is_routing(req: &ann_llm::ChatRequest) -> bool {
    has(req, "You route one layer")
}

/// Run a one-layer network of `agents` agents with routing fixed to `aggregator`.
pub(crate) async fn run_layer(
    model: &std::sync::Arc<ann_test_support::ScriptedModel>,
    agents: usize,
    aggregator: crate::AggregatorName,
    extractor: Option<&crate::Extractor>,
) -> Result<crate::ForwardResult, crate::GraphError> {
    let net = one_layer(agents, &[aggregator]);
    let shared: ann_llm::SharedModel = model.clone();
    let config = crate::ForwardConfig { routing: crate::RoutingMode::Fixed, ..Default::default() };
    crate::forward(&shared, &net, "What is 2+2?", extractor, &config).await
}

/// Reply `text` to agent `agent` of the one-layer network (first answers and revisions alike).
pub(crate) fn reply_of(
    agent: &'static str,
    text: &'static str,
) -> impl Fn(&ann_llm::ChatRequest) -> Option<ann_test_support::Reply> + Send + Sync + 'static {
    move |req| is_agent(req, "solve", agent).then(|| Ok(text.to_string()))
}

/// [`boxed`] as the caller's extractor.
pub(crate) const EXTRACT: &crate::Extractor = &boxed;

/// An agent call that failed for a reason of the network's own (its prompt past the context
/// window): data, so the aggregator does without the agent. An infrastructure failure never is
/// (see `forward/tests.rs`).
pub(crate) fn down() -> ann_llm::LlmError {
    ann_llm::LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 }
}

/// Agent `agent` of the one-layer network fails ([`down`]).
pub(crate) fn fails(
    agent: &'static str,
) -> impl Fn(&ann_llm::ChatRequest) -> Option<ann_test_support::Reply> + Send + Sync + 'static {
    move |req| is_agent(req, "solve", agent).then(|| Err(down()))
}

/// (kind, agent, round) of every call of the only layer.
pub(crate) fn shape(result: &crate::ForwardResult) -> Vec<(crate::CallKind, Option<&str>, u32)> {
    result.trace.layers[0].calls.iter().map(|c| (c.kind, c.agent.as_deref(), c.round)).collect()
}

/// The notes of the only layer.
pub(crate) fn notes(result: &crate::ForwardResult) -> &[String] {
    &result.trace.layers[0].notes
}
