//! The `debate` aggregator: independent answers, rounds of revision after seeing the others'
//! answers, then a majority vote (or a synthesis when there is nothing to vote on).

use async_trait::async_trait;
use futures::future::join_all;

use super::synthesis::synthesise;
use crate::call::survivors;
use crate::prompts::forward::{self as prompts, Answer};
use crate::trace::CallKind;
use crate::{Aggregator, AggregatorName, GraphError, LayerContext};

/// `debate`: independent answers, then `debate_rounds` rounds of revision after seeing the others'
/// latest answers; majority vote of the final answers (synthesis without an extractor).
pub struct Debate;
#[async_trait]
impl Aggregator for Debate {
    fn name(&self) -> AggregatorName {
        AggregatorName::Debate
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let mut latest = ctx.answer_all().await?;
        ctx.note_failures(&latest, 0);
        for round in 1..=ctx.debate_rounds() {
            let live = survivors(&latest);
            if live.len() < 2 {
                ctx.note(format!("debate stopped before round {round}: fewer than two agents answered"));
                break;
            }
            let peer_texts: Vec<(usize, String)> = live
                .iter()
                .map(|&(i, _)| {
                    let others: Vec<Answer<'_>> =
                        live.iter().filter(|(j, _)| *j != i).map(|&(j, t)| ctx.answer(j, t)).collect();
                    (i, prompts::debate_peers(&others))
                })
                .collect();
            let calls = peer_texts.iter().map(|(i, peers)| ctx.agent_call(*i, CallKind::Agent, round, Some(peers)));
            let revised: Vec<Option<String>> = join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
            for ((i, _), new) in peer_texts.iter().zip(revised) {
                match new {
                    Some(text) => latest[*i] = Some(text),
                    None => ctx.note(format!(
                        "agent `{}` failed in round {round}; its previous answer stands",
                        ctx.layer().agents[*i].id
                    )),
                }
            }
        }
        let live = survivors(&latest);
        if live.is_empty() {
            return Err(ctx.layer_failed());
        }
        // Synthesis when there is nothing to vote on: no extractor, or none of the final answers
        // yields one (a passage of creative writing has no short answer).
        let votable = ctx.extractor().is_some_and(|f| live.iter().any(|(_, text)| f(text).is_some()));
        if votable || live.len() == 1 {
            Ok(ctx.vote(&live).to_string())
        } else {
            synthesise(ctx, &live, ctx.debate_rounds() + 1).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_test_support::ScriptedModel;

    use crate::AggregatorName;
    use crate::testing::*;
    use crate::trace::CallKind;

    #[tokio::test]
    async fn debate_runs_rounds_then_votes() {
        // a3 starts alone with 5 and is persuaded in round 1; a2's round-2 call fails (its answer stands).
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (is_agent(r, "solve", "a2") && has(r, "previous round") && has(r, "now 4")).then(|| Err(down()))
                })
                .on(|r| {
                    (is_agent(r, "solve", "a3") && has(r, "previous round")).then(|| Ok("now 4: \\boxed{4}".into()))
                })
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{4} too"))
                .on(reply_of("a3", "\\boxed{5}")),
        );
        let r = run_layer(&model, 3, AggregatorName::Debate, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        let rounds: Vec<_> = shape(&r).iter().map(|(_, a, round)| format!("{}@{round}", a.unwrap())).collect();
        assert_eq!(rounds, ["a1@0", "a2@0", "a3@0", "a1@1", "a2@1", "a3@1", "a1@2", "a2@2", "a3@2"]);
        assert_eq!(
            notes(&r),
            [
                "agent `a2` failed in round 2; its previous answer stands",
                "vote: `4` <- a1, a2, a3; winner `a1` (3 of 3)"
            ]
        );
        let a1_round1 = &r.trace.layers[0].calls[3].messages[1].content;
        assert!(
            a1_round1.contains("Agent `a2`") && a1_round1.contains("Agent `a3`") && !a1_round1.contains("Agent `a1`")
        );

        // Without an extractor the final round is synthesised.
        let model =
            Arc::new(ScriptedModel::default().on_contains("You synthesise", "merged").fallback(|_| Ok("x".into())));
        let r = run_layer(&model, 2, AggregatorName::Debate, None).await.unwrap();
        assert_eq!(r.output, "merged");
        assert_eq!(shape(&r).last(), Some(&(CallKind::Synthesis, Some("a2"), 3)));
        assert_eq!(model.calls(), 2 * 3 + 1);

        // So it is when the extractor finds no answer in any final output (nothing to vote on).
        let model =
            Arc::new(ScriptedModel::default().on_contains("You synthesise", "merged").fallback(|_| Ok("x".into())));
        let r = run_layer(&model, 2, AggregatorName::Debate, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "merged");
        assert_eq!(model.calls(), 2 * 3 + 1);
    }
}
