//! The aggregators that combine independent answers without further calls: `single`,
//! `concatenate` and `majority_vote`.

use async_trait::async_trait;

use crate::call::survivors;
use crate::prompts::forward::{self as prompts, Answer};
use crate::trace::CallKind;
use crate::{Aggregator, AggregatorName, GraphError, LayerContext};

/// `single`: the first agent alone.
pub struct Single;
#[async_trait]
impl Aggregator for Single {
    fn name(&self) -> AggregatorName {
        AggregatorName::Single
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        ctx.agent_call(0, CallKind::Agent, 0, None).await?.ok_or_else(|| ctx.layer_failed())
    }
}

/// `concatenate`: every surviving answer, labelled by agent and role.
pub struct Concatenate;
#[async_trait]
impl Aggregator for Concatenate {
    fn name(&self) -> AggregatorName {
        AggregatorName::Concatenate
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
        Ok(prompts::concatenate(&answers))
    }
}

/// `majority_vote`: the winning agent's full answer.
pub struct MajorityVote;
#[async_trait]
impl Aggregator for MajorityVote {
    fn name(&self) -> AggregatorName {
        AggregatorName::MajorityVote
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        Ok(ctx.vote(&live).to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_test_support::ScriptedModel;

    use crate::testing::*;
    use crate::trace::CallKind;
    use ann_llm::LlmError;

    use crate::{AggregatorName, GraphError};

    #[tokio::test]
    async fn single_uses_the_first_agent_and_fails_with_it() {
        let model = Arc::new(ScriptedModel::default().on(reply_of("a1", "\\boxed{4}")));
        let r = run_layer(&model, 1, AggregatorName::Single, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(shape(&r), [(CallKind::Agent, Some("a1"), 0)]);

        let model = Arc::new(ScriptedModel::default().on(fails("a1")));
        let e = run_layer(&model, 1, AggregatorName::Single, None).await.unwrap_err();
        assert!(
            matches!(&e, GraphError::LayerFailed { layer, source: LlmError::ContextOverflow { .. }, .. } if layer == "solve"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn concatenate_labels_and_skips_failures() {
        let model =
            Arc::new(ScriptedModel::default().on(reply_of("a1", "one")).on(fails("a2")).on(reply_of("a3", "three")));
        let r = run_layer(&model, 3, AggregatorName::Concatenate, None).await.unwrap();
        assert_eq!(r.output, "Agent `a1` (Solver number 1.):\none\n\nAgent `a3` (Solver number 3.):\nthree");
        assert_eq!(notes(&r), ["agent `a2` failed in round 0 and is left out"]);
        let failed: Vec<_> = r.trace.layers[0].failures().map(|c| c.agent.as_deref()).collect();
        assert_eq!(failed, [Some("a2")]);
        assert!(r.trace.layers[0].calls[1].error.as_deref().unwrap().contains("exceeds the context window"));
    }

    #[tokio::test]
    async fn majority_vote_returns_the_winners_full_answer() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(reply_of("a1", "I think \\boxed{5}"))
                .on(reply_of("a2", "so \\boxed{4}"))
                .on(reply_of("a3", "clearly \\boxed{4}")),
        );
        let r = run_layer(&model, 3, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "so \\boxed{4}");
        assert_eq!(shape(&r).len(), 3);
        // With a3 down: one vote each, the tie goes to a1.
        let model = Arc::new(
            ScriptedModel::default()
                .on(reply_of("a1", "I think \\boxed{5}"))
                .on(reply_of("a2", "so \\boxed{4}"))
                .on(fails("a3")),
        );
        let r = run_layer(&model, 3, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap();
        assert_eq!(r.output, "I think \\boxed{5}");
        assert_eq!(
            notes(&r),
            [
                "agent `a3` failed in round 0 and is left out",
                "vote: `5` <- a1; `4` <- a2; winner `a1` (1 of 2)",
                "tie between `5`, `4` (1 votes each), broken by the lowest agent index: `a1`",
            ]
        );
        let model = Arc::new(ScriptedModel::default().fallback(|_| Err(down())));
        let e = run_layer(&model, 2, AggregatorName::MajorityVote, Some(EXTRACT)).await.unwrap_err();
        assert!(matches!(e, GraphError::LayerFailed { .. }), "{e}");
    }
}
