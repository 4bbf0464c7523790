//! The aggregators where one more call merges or judges the team's answers: `llm_synthesis` (a
//! synthesiser merges them) and `select_best` (a judge picks one verbatim).

use ann_llm::ResponseFormat;
use async_trait::async_trait;

use crate::call::survivors;
use crate::prompts::forward::{self as prompts, Answer};
use crate::trace::CallKind;
use crate::{Aggregator, AggregatorName, CallSpec, GraphError, LayerContext};

/// The layer's last agent merges the surviving answers `live` (recorded as round `round`); when
/// the call fails, the first surviving answer is the output.
pub(super) async fn synthesise(
    ctx: &LayerContext<'_>,
    live: &[(usize, &str)],
    round: u32,
) -> Result<String, GraphError> {
    let last = ctx.layer().agents.len() - 1;
    let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
    let messages = prompts::synthesis(ctx.task(), ctx.layer(), ctx.input(), &ctx.layer().agents[last].role, &answers);
    let spec = CallSpec {
        kind: CallKind::Synthesis,
        agent: Some(last),
        round,
        messages,
        temperature: 0.0,
        response_format: ResponseFormat::Text,
    };
    match ctx.call(spec).await? {
        Some(text) => Ok(text),
        None => {
            ctx.note(format!("synthesis failed; the answer of `{}` is used", ctx.layer().agents[live[0].0].id));
            Ok(live[0].1.to_string())
        }
    }
}

/// `llm_synthesis`: the layer's last agent merges all answers.
pub struct LlmSynthesis;
#[async_trait]
impl Aggregator for LlmSynthesis {
    fn name(&self) -> AggregatorName {
        AggregatorName::LlmSynthesis
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        synthesise(ctx, &live, 0).await
    }
}

/// The JSON schema of the judge's verdict.
fn judge_format(candidates: usize) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "select_best".into(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "best": {"type": "integer", "minimum": 1, "maximum": candidates},
                "reason": {"type": "string"}
            },
            "required": ["best", "reason"],
            "additionalProperties": false
        }),
        strict: true,
    }
}

/// `select_best`: a built-in judge picks one answer, which is the output verbatim.
pub struct SelectBest;
#[async_trait]
impl Aggregator for SelectBest {
    fn name(&self) -> AggregatorName {
        AggregatorName::SelectBest
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let outputs = ctx.first_round().await?;
        let live = survivors(&outputs);
        if let [(only, text)] = live[..] {
            ctx.note(format!("only `{}` answered; no judge call", ctx.layer().agents[only].id));
            return Ok(text.to_string());
        }
        let answers: Vec<Answer<'_>> = live.iter().map(|&(i, t)| ctx.answer(i, t)).collect();
        let spec = CallSpec {
            kind: CallKind::Judge,
            agent: None,
            round: 0,
            messages: prompts::judge(ctx.task(), ctx.layer(), ctx.input(), &answers),
            temperature: 0.0,
            response_format: judge_format(live.len()),
        };
        let verdict = ctx.call(spec).await?;
        let parsed = verdict.as_deref().and_then(ann_llm::answer::first_json_object).and_then(|v| {
            let best = v.get("best")?.as_u64()? as usize;
            let reason = v.get("reason").and_then(|r| r.as_str()).unwrap_or("").to_string();
            (1..=live.len()).contains(&best).then_some((best - 1, reason))
        });
        match parsed {
            Some((pick, reason)) => {
                ctx.note(format!("judge chose `{}`: {reason}", answers[pick].agent));
                Ok(live[pick].1.to_string())
            }
            None => {
                let why = if verdict.is_some() { "invalid verdict" } else { "judge call failed" };
                ctx.note(format!("judge fallback ({why}); the answer of `{}` is used", answers[0].agent));
                Ok(live[0].1.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_test_support::ScriptedModel;

    use crate::testing::*;
    use crate::trace::CallKind;
    use ann_llm::ResponseFormat;

    use crate::AggregatorName;

    #[tokio::test]
    async fn llm_synthesis_merges_with_the_last_agent_and_falls_back() {
        let model = Arc::new(
            ScriptedModel::default()
                .on_contains("You synthesise", "merged \\boxed{4}")
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{5}")),
        );
        let r = run_layer(&model, 2, AggregatorName::LlmSynthesis, None).await.unwrap();
        assert_eq!(r.output, "merged \\boxed{4}");
        assert_eq!(
            shape(&r),
            [(CallKind::Agent, Some("a1"), 0), (CallKind::Agent, Some("a2"), 0), (CallKind::Synthesis, Some("a2"), 0)]
        );
        let synthesis = &r.trace.layers[0].calls[2].messages;
        assert!(synthesis[0].content.starts_with("Solver number 2.") && synthesis[1].content.contains("\\boxed{5}"));

        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| has(r, "You synthesise").then(|| Err(down())))
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "\\boxed{5}")),
        );
        let r = run_layer(&model, 2, AggregatorName::LlmSynthesis, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(notes(&r), ["synthesis failed; the answer of `a1` is used"]);
    }

    #[tokio::test]
    async fn select_best_takes_the_judged_answer_verbatim() {
        let model = Arc::new(
            ScriptedModel::default()
                .on_contains("strict judge", "```json\n{\"best\": 2, \"reason\": \"it checks its work\"}\n```")
                .on(reply_of("a1", "\\boxed{4}"))
                .on(reply_of("a2", "checked: \\boxed{4}")),
        );
        let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
        assert_eq!(r.output, "checked: \\boxed{4}");
        assert_eq!(notes(&r), ["judge chose `a2`: it checks its work"]);
        let judge = model.requests().into_iter().find(|r| has(r, "strict judge")).unwrap();
        assert!(matches!(judge.response_format, ResponseFormat::JsonSchema { .. }));
        assert_eq!(judge.temperature, Some(0.0));

        for verdict in ["{\"best\": 3}", "the second one"] {
            let model = Arc::new(
                ScriptedModel::default()
                    .on_contains("strict judge", verdict)
                    .on(reply_of("a1", "\\boxed{4}"))
                    .on(reply_of("a2", "checked: \\boxed{4}")),
            );
            let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
            assert_eq!(r.output, "\\boxed{4}", "{verdict}");
            assert_eq!(notes(&r), ["judge fallback (invalid verdict); the answer of `a1` is used"]);
        }
        // One survivor: no judge call.
        let model = Arc::new(ScriptedModel::default().on(fails("a1")).on(reply_of("a2", "\\boxed{4}")));
        let r = run_layer(&model, 2, AggregatorName::SelectBest, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(model.calls(), 2);
    }
}
