//! Dynamic routing (DynamicRoutingSelect): one traced call per layer and input that picks the
//! layer's aggregator among its candidates, or the layer's default when routing is fixed, there is
//! one candidate, or the model's answer is unusable.

use ann_llm::ResponseFormat;
use ann_llm::answer::first_json_object;

use crate::call::{CallSpec, LayerContext};
use crate::prompts::{self, RoutingCandidate};
use crate::trace::{CallKind, RoutingDecision, RoutingSource};
use crate::{AggregatorName, ForwardConfig, GraphError, Layer, RoutingMode};

/// The JSON schema of the routing answer, with the layer's candidates as an enum.
pub fn routing_format(layer: &Layer) -> ResponseFormat {
    let names: Vec<&str> = layer.aggregators.iter().map(|a| a.as_str()).collect();
    ResponseFormat::JsonSchema {
        name: "route".into(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "aggregator": {"type": "string", "enum": names},
                "reason": {"type": "string"}
            },
            "required": ["aggregator", "reason"],
            "additionalProperties": false
        }),
        strict: true,
    }
}

/// Parse a routing reply: the first JSON object's `aggregator` must name one of `candidates`.
/// Returns the choice and its reason, or why the reply is unusable.
pub fn parse_routing(reply: &str, candidates: &[AggregatorName]) -> Result<(AggregatorName, String), String> {
    let object = first_json_object(reply).ok_or("no JSON object in the reply")?;
    let name = object.get("aggregator").and_then(|v| v.as_str()).ok_or("no string field `aggregator`")?;
    let choice: AggregatorName = name.parse()?;
    if !candidates.contains(&choice) {
        return Err(format!("`{choice}` is not a candidate of this layer"));
    }
    let reason = object.get("reason").and_then(|v| v.as_str()).unwrap_or("").trim().to_string();
    Ok((choice, reason))
}

/// Choose the layer's aggregator. Never fails on model output: an invalid answer or a call that
/// failed for the network's own reason (a prompt past the context window) gives the default with
/// [`RoutingSource::Fallback`]; an exhausted budget and an infrastructure failure are errors.
pub(crate) async fn select(ctx: &LayerContext<'_>, config: &ForwardConfig) -> Result<RoutingDecision, GraphError> {
    let layer = ctx.layer();
    let default = layer.default_aggregator;
    let fixed =
        |source, reason: &str| RoutingDecision { aggregator: default, reason: reason.into(), source, fallback: None };
    if config.routing == RoutingMode::Fixed {
        return Ok(fixed(RoutingSource::Fixed, "routing is fixed: the layer's default"));
    }
    if layer.aggregators.len() <= 1 {
        return Ok(fixed(RoutingSource::SingleCandidate, "one candidate: no routing call"));
    }
    let input = prompts::truncate_chars(ctx.input(), config.routing_input_chars);
    // Only the layer's present candidates: a patch may have removed one that has a record.
    let stats: Vec<_> = config
        .routing_stats
        .get(&layer.id)
        .into_iter()
        .flatten()
        .filter(|s| layer.aggregators.contains(&s.aggregator))
        .copied()
        .collect();
    // The forward pass checked that every candidate is registered.
    let candidates: Vec<RoutingCandidate<'_>> = layer
        .aggregators
        .iter()
        .filter_map(|&name| config.aggregators.get(name).map(|a| (name, a)))
        .map(|(name, a)| RoutingCandidate {
            name,
            calls: a.calls(layer.agents.len(), config.debate_rounds),
            description: a.description(),
        })
        .collect();
    let messages = prompts::routing_among(ctx.task(), layer, &input, &candidates, &stats);
    let spec = CallSpec {
        kind: CallKind::Routing,
        agent: None,
        round: 0,
        messages,
        temperature: 0.0,
        response_format: routing_format(layer),
    };
    let fallback = |why: String| RoutingDecision {
        aggregator: default,
        reason: "fallback to the layer's default".into(),
        source: RoutingSource::Fallback,
        fallback: Some(why),
    };
    Ok(match ctx.call(spec).await? {
        None => fallback("the routing call failed".into()),
        Some(reply) => match parse_routing(&reply, &layer.aggregators) {
            Ok((aggregator, reason)) => {
                RoutingDecision { aggregator, reason, source: RoutingSource::Model, fallback: None }
            }
            Err(why) => fallback(why),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_llm::{LlmError, SharedModel};
    use ann_test_support::ScriptedModel;

    use super::*;
    use crate::RoutingStat;
    use crate::testing::{is_routing, one_layer};
    use crate::{ForwardConfig, forward};

    use AggregatorName::{Concatenate, Debate, MajorityVote, SelectBest};

    #[test]
    fn parse_routing_takes_the_first_json_object() {
        let c = [MajorityVote, Debate];
        let check = |reply: &str, expected: Result<(AggregatorName, &str), &str>| {
            let got = parse_routing(reply, &c);
            let got = got.as_ref().map(|(a, r)| (*a, r.as_str())).map_err(|e| e.as_str());
            assert_eq!(got, expected, "{reply}");
        };
        check(r#"{"aggregator": "debate", "reason": "hard"}"#, Ok((Debate, "hard")));
        check(
            "Sure! {not json} then {\"aggregator\":\"majority_vote\"} {\"aggregator\":\"debate\"}",
            Ok((MajorityVote, "")),
        );
        check("debate", Err("no JSON object in the reply"));
        check(r#"{"choice": "debate"}"#, Err("no string field `aggregator`"));
        check(r#"{"aggregator": "select_best"}"#, Err("`select_best` is not a candidate of this layer"));
        let unknown = parse_routing(r#"{"aggregator": "vote"}"#, &c).unwrap_err();
        assert!(unknown.starts_with("unknown aggregator `vote`"), "{unknown}");
    }

    async fn route(
        reply: Result<&'static str, LlmError>,
        config: &ForwardConfig,
    ) -> (RoutingDecision, Arc<ScriptedModel>) {
        let reply = std::sync::Mutex::new(Some(reply));
        let model = Arc::new(
            ScriptedModel::default()
                .on(move |r| is_routing(r).then(|| reply.lock().unwrap().take().unwrap().map(String::from)))
                .fallback(|_| Ok("answer".into())),
        );
        let mut net = one_layer(3, &[MajorityVote, Debate, Concatenate]);
        net.layers[0].default_aggregator = Concatenate;
        let shared: SharedModel = model.clone();
        let r = forward(&shared, &net, "x", None, config).await.unwrap();
        (r.trace.layers[0].routing.clone(), model)
    }

    #[tokio::test]
    async fn routing_chooses_or_falls_back_to_the_default() {
        let cfg = ForwardConfig::default();
        let (d, model) = route(Ok(r#"{"aggregator": "majority_vote", "reason": "easy"}"#), &cfg).await;
        assert_eq!(
            d,
            RoutingDecision {
                aggregator: MajorityVote,
                reason: "easy".into(),
                source: RoutingSource::Model,
                fallback: None
            }
        );
        let request = &model.requests()[0];
        assert_eq!((request.temperature, request.tags.get("phase").map(String::as_str)), (Some(0.0), Some("forward")));
        let ResponseFormat::JsonSchema { schema, .. } = &request.response_format else { panic!("json schema") };
        assert_eq!(
            schema["properties"]["aggregator"]["enum"],
            serde_json::json!(["majority_vote", "debate", "concatenate"])
        );
        assert_eq!(model.calls(), 1 + 3);

        for (reply, why) in [
            (Ok("I'd use select_best"), "no JSON object in the reply"),
            (Ok(r#"{"aggregator": "select_best"}"#), "`select_best` is not a candidate of this layer"),
            (Err(LlmError::ContextOverflow { prompt_tokens: 9000, context: 8192 }), "the routing call failed"),
        ] {
            let (d, _) = route(reply, &cfg).await;
            assert_eq!(
                (d.aggregator, d.source, d.fallback.as_deref()),
                (Concatenate, RoutingSource::Fallback, Some(why))
            );
        }

        let fixed = ForwardConfig { routing: RoutingMode::Fixed, ..Default::default() };
        let (d, model) = route(Ok("unused"), &fixed).await;
        assert_eq!((d.aggregator, d.source), (Concatenate, RoutingSource::Fixed));
        assert!(!model.requests().iter().any(is_routing));
    }

    #[tokio::test]
    async fn routing_chooses_per_input_and_shows_only_present_candidates_records() {
        // The router answers from what its prompt shows: the input, and the record when there is one.
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    is_routing(r).then(|| {
                        let prompt = &r.messages[1].content;
                        let choice = if prompt.contains("- debate: 0.90") {
                            "debate"
                        } else if prompt.contains("a tricky one") {
                            "concatenate"
                        } else {
                            "majority_vote"
                        };
                        Ok(format!(r#"{{"aggregator": "{choice}", "reason": "r"}}"#))
                    })
                })
                .fallback(|_| Ok("answer".into())),
        );
        let shared: SharedModel = model.clone();
        let net = one_layer(3, &[MajorityVote, Debate, Concatenate]);
        let mut config = ForwardConfig::default();
        let mut chosen = Vec::new();
        for input in ["an easy one", "a tricky one"] {
            let r = forward(&shared, &net, input, None, &config).await.unwrap();
            chosen.push(r.trace.layers[0].routing.aggregator);
        }
        assert_eq!(chosen, [MajorityVote, Concatenate]);

        let layer = net.layers[0].id.clone();
        let stat = |aggregator, mean_score| RoutingStat { aggregator, mean_score, uses: 5 };
        config.routing_stats.insert(layer, vec![stat(SelectBest, 1.0), stat(Debate, 0.9)]);
        let r = forward(&shared, &net, "an easy one", None, &config).await.unwrap();
        assert_eq!(r.trace.layers[0].routing.aggregator, Debate, "the record changes the choice");
        let requests = model.requests();
        let prompt = &requests.iter().rev().find(|r| is_routing(r)).unwrap().messages[1].content;
        assert!(prompt.contains("- debate: 0.90 over 5 uses"), "{prompt}");
        assert!(!prompt.contains("select_best:"), "a removed candidate's record is not shown: {prompt}");
    }

    #[tokio::test]
    async fn one_candidate_needs_no_call_and_budget_stops_routing() {
        let model = Arc::new(ScriptedModel::default().fallback(|_| Ok("a".into())));
        let shared: SharedModel = model.clone();
        let r = forward(&shared, &one_layer(2, &[SelectBest]), "x", None, &ForwardConfig::default()).await.unwrap();
        assert_eq!(r.trace.layers[0].routing.source, RoutingSource::SingleCandidate);
        assert!(!model.requests().iter().any(is_routing));

        let model = Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::BudgetExhausted("cap".into()))));
        let shared: SharedModel = model.clone();
        let e = forward(&shared, &one_layer(2, &[SelectBest, Debate]), "x", None, &ForwardConfig::default())
            .await
            .unwrap_err();
        assert!(e.is_budget_exhausted());
        assert_eq!(model.calls(), 1);
        // The refused routing call is kept in the partial trace; no aggregator was chosen.
        let layer = &e.trace().unwrap().layers[0];
        assert_eq!((layer.calls.len(), layer.calls[0].kind), (1, CallKind::Routing));
        assert_eq!(
            (layer.routing.source, layer.routing.fallback.as_deref()),
            (RoutingSource::Fallback, Some("the routing call failed"))
        );
        assert_eq!(layer.error.as_deref(), Some("budget exhausted during layer `solve`: budget exhausted: cap"));

        // An unreachable endpoint is no reason to fall back to the default aggregator.
        let model = Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::Connection("refused".into()))));
        let shared: SharedModel = model.clone();
        let e = forward(&shared, &one_layer(2, &[SelectBest, Debate]), "x", None, &ForwardConfig::default())
            .await
            .unwrap_err();
        assert!(e.is_infrastructure_failure(), "{e}");
        assert_eq!(model.calls(), 1);
    }
}
