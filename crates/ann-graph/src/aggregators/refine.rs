//! The aggregators that improve a draft: `sequential_refine` (each agent improves the previous
//! draft) and `critic_revise` (the first agent drafts, the others critique, the first revises).

use ann_llm::ResponseFormat;
use async_trait::async_trait;
use futures::future::join_all;

use crate::prompts::forward::{self as prompts, Answer};
use crate::trace::CallKind;
use crate::{Aggregator, AggregatorName, CallSpec, GraphError, LayerContext};

/// `sequential_refine`: each agent improves the previous draft; the last draft is the output.
pub struct SequentialRefine;
#[async_trait]
impl Aggregator for SequentialRefine {
    fn name(&self) -> AggregatorName {
        AggregatorName::SequentialRefine
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let mut draft: Option<(usize, String)> = None;
        for i in 0..ctx.layer().agents.len() {
            let peers = draft.as_ref().map(|(j, text)| prompts::refine_peers(&ctx.answer(*j, text)));
            match ctx.agent_call(i, CallKind::Agent, 0, peers.as_deref()).await? {
                Some(text) => draft = Some((i, text)),
                None => ctx.note(format!("agent `{}` failed; the previous draft is kept", ctx.layer().agents[i].id)),
            }
        }
        draft.map(|(_, text)| text).ok_or_else(|| ctx.layer_failed())
    }
}

/// `critic_revise`: the first agent drafts, the others critique (a lone agent critiques itself),
/// the first agent revises once with every critique.
pub struct CriticRevise;
#[async_trait]
impl Aggregator for CriticRevise {
    fn name(&self) -> AggregatorName {
        AggregatorName::CriticRevise
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let Some(draft) = ctx.agent_call(0, CallKind::Agent, 0, None).await? else {
            return Err(ctx.layer_failed());
        };
        let n = ctx.layer().agents.len();
        let critics: Vec<usize> = if n == 1 { vec![0] } else { (1..n).collect() };
        let draft_answer = ctx.answer(0, &draft);
        let calls = critics.iter().map(|&c| {
            let critic = &ctx.layer().agents[c];
            ctx.call(CallSpec {
                kind: CallKind::Critique,
                agent: Some(c),
                round: 1,
                messages: prompts::critique(ctx.task(), ctx.layer(), ctx.input(), critic, &draft_answer),
                temperature: critic.temperature,
                response_format: ResponseFormat::Text,
            })
        });
        let critiques: Vec<Option<String>> = join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
        let given: Vec<Answer<'_>> = critics
            .iter()
            .zip(&critiques)
            .filter_map(|(&c, text)| match text {
                Some(t) => Some(ctx.answer(c, t)),
                None => {
                    ctx.note(format!("critic `{}` failed and is left out", ctx.layer().agents[c].id));
                    None
                }
            })
            .collect();
        if given.is_empty() {
            ctx.note("no critique was given; the draft is the output");
            return Ok(draft);
        }
        let peers = prompts::revise_peers(&draft, &given);
        match ctx.agent_call(0, CallKind::Revise, 2, Some(&peers)).await? {
            Some(text) => Ok(text),
            None => {
                ctx.note("revision failed; the draft is the output");
                Ok(draft)
            }
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
    async fn sequential_refine_chains_drafts_past_failures() {
        let model = Arc::new(ScriptedModel::default().on(reply_of("a1", "draft one")).on(fails("a2")).on(|r| {
            (is_agent(r, "solve", "a3") && has(r, "Draft from the previous agent `a1`")).then(|| Ok("final".into()))
        }));
        let r = run_layer(&model, 3, AggregatorName::SequentialRefine, None).await.unwrap();
        assert_eq!(r.output, "final");
        assert_eq!(notes(&r), ["agent `a2` failed; the previous draft is kept"]);
        let a2 = &model.requests()[1];
        assert!(a2.messages[1].content.contains("draft one"), "a2 saw a1's draft");
    }

    #[tokio::test]
    async fn critic_revise_drafts_critiques_and_revises() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (has(r, "Critiques of your draft") && has(r, "forgot units") && !has(r, "ok"))
                        .then(|| Ok("revised".into()))
                })
                .on(|r| {
                    (has(r, "You review a draft") && r.messages[0].content.starts_with("Solver number 2."))
                        .then(|| Ok("forgot units".into()))
                })
                .on(|r| has(r, "You review a draft").then(|| Err(down())))
                .on(reply_of("a1", "draft")),
        );
        let r = run_layer(&model, 3, AggregatorName::CriticRevise, None).await.unwrap();
        assert_eq!(r.output, "revised");
        assert_eq!(
            shape(&r),
            [
                (CallKind::Agent, Some("a1"), 0),
                (CallKind::Critique, Some("a2"), 1),
                (CallKind::Critique, Some("a3"), 1),
                (CallKind::Revise, Some("a1"), 2)
            ]
        );
        assert_eq!(notes(&r), ["critic `a3` failed and is left out"]);

        // A lone agent critiques itself; a failed revision leaves the draft.
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| has(r, "Critiques of your draft").then(|| Err(down())))
                .on_contains("You review a draft", "looks fine")
                .on(reply_of("a1", "draft")),
        );
        let r = run_layer(&model, 1, AggregatorName::CriticRevise, None).await.unwrap();
        assert_eq!(r.output, "draft");
        assert_eq!(shape(&r).iter().map(|s| s.1).collect::<Vec<_>>(), [Some("a1"); 3]);
        assert_eq!(notes(&r), ["revision failed; the draft is the output"]);
    }
}
