//! A user's own aggregator, through the public API only: implemented, registered, named by a
//! network loaded from JSON, offered by dynamic routing, run by `forward` and recorded in the trace.

use std::sync::Arc;

use ann_graph::{
    Aggregator, AggregatorName, AggregatorRegistry, CallKind, ForwardConfig, GraphError, LayerContext, Network,
    RoutingSource, ValidationRules, async_trait, forward, survivors,
};
use ann_llm::SharedModel;
use ann_test_support::ScriptedModel;

/// Every agent answers; the longest answer is the layer output.
struct Longest;

#[async_trait]
impl Aggregator for Longest {
    fn name(&self) -> AggregatorName {
        AggregatorName::custom("longest").expect("a slug that is not a built-in's")
    }
    fn description(&self) -> &str {
        "all agents answer in parallel; the longest answer wins"
    }
    fn min_agents(&self) -> usize {
        2
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        let (index, text) =
            live.iter().max_by_key(|(_, text)| text.len()).copied().ok_or_else(|| ctx.layer_failed())?;
        ctx.note(format!("longest answer: `{}`", ctx.layer().agents[index].id));
        Ok(text.to_string())
    }
}

const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Answer the question.",
  "layers": [
    {
      "id": "solve",
      "subtask": "answer the question",
      "agents": [
        {"id": "a1", "role": "Terse solver.", "prompt": "Answer: {input}", "temperature": 0.0},
        {"id": "a2", "role": "Thorough solver.", "prompt": "Answer with reasons: {input}", "temperature": 0.0}
      ],
      "aggregators": ["longest", "single"],
      "default_aggregator": "longest",
      "output_spec": "the answer"
    }
  ]
}"#;

fn is_agent(request: &ann_llm::ChatRequest, agent: &str) -> bool {
    request.messages.first().is_some_and(|m| m.content.contains(&format!("You are agent `{agent}`")))
}

fn scripted() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::default()
            .on(|r| {
                r.messages
                    .iter()
                    .any(|m| m.content.contains("You route one layer"))
                    .then(|| Ok(r#"{"aggregator": "longest", "reason": "the question needs reasons"}"#.to_string()))
            })
            .on(|r| is_agent(r, "a1").then(|| Ok("4".to_string())))
            .on(|r| is_agent(r, "a2").then(|| Ok("4, since 2 + 2 = 4".to_string()))),
    )
}

#[tokio::test]
async fn a_registered_custom_aggregator_runs_in_a_network_loaded_from_json() {
    let registry = AggregatorRegistry::default().with(Longest);
    let longest = Longest.name();
    assert!(!longest.is_built_in() && registry.contains(longest));

    // The network file names it; the format gate with the registry accepts it.
    let net = Network::from_json(NETWORK).unwrap();
    assert_eq!(net.layers[0].aggregators, [longest, AggregatorName::Single]);
    assert_eq!(net.layers[0].default_aggregator, longest);
    let rules = ValidationRules { aggregators: registry.clone(), ..ValidationRules::default() };
    assert_eq!(net.validate(&rules), Ok(()));
    assert_eq!(Network::from_json(&net.to_json()).unwrap(), net, "the custom name round-trips");
    assert!(net.to_json().contains(r#""default_aggregator": "longest""#));
    assert_eq!(Network::from_yaml(&net.to_yaml()).unwrap(), net, "and through YAML");

    // Forward: routing offers it with its own description, chooses it, and it runs the team.
    let model = scripted();
    let shared: SharedModel = model.clone();
    let config = ForwardConfig { model: "worker".into(), aggregators: registry, ..ForwardConfig::default() };
    let result = forward(&shared, &net, "What is 2+2?", None, &config).await.unwrap();
    assert_eq!(result.output, "4, since 2 + 2 = 4");

    let layer = &result.trace.layers[0];
    assert_eq!((layer.routing.aggregator, layer.routing.source), (longest, RoutingSource::Model));
    assert_eq!(layer.routing.reason, "the question needs reasons");
    let calls: Vec<_> = layer.calls.iter().map(|c| (c.kind, c.aggregator, c.agent.as_deref())).collect();
    assert_eq!(
        calls,
        [
            (CallKind::Routing, None, None),
            (CallKind::Agent, Some(longest), Some("a1")),
            (CallKind::Agent, Some(longest), Some("a2"))
        ]
    );
    assert_eq!(layer.notes, ["longest answer: `a2`"]);
    let routing_prompt = &model.requests()[0].messages[1].content;
    assert!(
        routing_prompt.contains("- longest (2 calls): all agents answer in parallel; the longest answer wins"),
        "{routing_prompt}"
    );
    // The trace names it as files do.
    assert!(result.trace.to_jsonl().contains(r#""aggregator":"longest""#));
    let json = serde_json::to_string(&result.trace).unwrap();
    assert_eq!(serde_json::from_str::<ann_graph::Trace>(&json).unwrap(), result.trace, "a trace reads back");
}

#[tokio::test]
async fn names_outside_the_registry_are_refused_with_a_clear_message() {
    // A name nobody declared is refused where the document says it.
    let undeclared = NETWORK.replace("\"longest\", \"single\"", "\"nobody_declared\", \"single\"");
    let e = Network::from_json(&undeclared).unwrap_err().to_string();
    assert!(e.contains("layers[0].aggregators[0]") && e.contains("unknown variant `nobody_declared`"), "{e}");

    // A declared name the registry in use does not hold: the format gate and `forward` refuse it.
    Longest.name();
    let net = Network::from_json(NETWORK).unwrap();
    let violations = net.validate(&ValidationRules::default()).unwrap_err();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!((violations[0].rule(), violations[0].layer()), ("aggregators", Some("solve")));
    assert!(
        violations[0].to_string().starts_with(
            "[aggregators] layer `solve`: aggregator `longest` is not registered (known: single, concatenate, majority_vote,"
        ),
        "{}",
        violations[0]
    );
    let model = scripted();
    let shared: SharedModel = model.clone();
    let e = forward(&shared, &net, "x", None, &ForwardConfig::default()).await.unwrap_err();
    assert!(matches!(&e, GraphError::Invalid(v) if v[0].rule() == "aggregators"), "{e}");
    assert_eq!(model.calls(), 0);

    // The registered aggregator's own team-size rule applies.
    let registry = AggregatorRegistry::default().with(Longest);
    let mut lone = net.clone();
    lone.layers[0].agents.truncate(1);
    let rules = ValidationRules { aggregators: registry, ..ValidationRules::default() };
    let violations = lone.validate(&rules).unwrap_err();
    assert_eq!(violations.iter().map(|v| v.rule()).collect::<Vec<_>>(), ["min_agents"]);
    assert!(
        violations[0].to_string().contains("`longest` needs at least 2 agents, the team has 1"),
        "{}",
        violations[0]
    );
}
