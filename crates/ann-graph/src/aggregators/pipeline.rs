//! The `tool_pipeline` aggregator: plan → tool call → answer. The first agent plans and writes a
//! Python program (it may call its own tools on the way); the layer runs the program with the
//! registry's `python` tool, the call and its result recorded on the plan's trace entry; the last
//! agent (the first again in a team of one) gives the answer from the plan and what the program
//! printed. A failing program is data the answering agent reads; no program, or no `python` tool,
//! is noted and the answering agent sees the plan alone.

use async_trait::async_trait;

use crate::prompts::forward::{self as prompts, PipelineRun};
use crate::trace::CallKind;
use crate::{Aggregator, AggregatorName, GraphError, LayerContext};

/// The tool the pipeline runs the plan's program with.
pub const PIPELINE_TOOL: &str = "python";

/// `tool_pipeline`: plan with a program, the program run by the `python` tool, an answer.
pub struct ToolPipeline;
#[async_trait]
impl Aggregator for ToolPipeline {
    fn name(&self) -> AggregatorName {
        AggregatorName::ToolPipeline
    }
    async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
        let Some(plan) = ctx.agent_call(0, CallKind::Agent, 0, Some(prompts::pipeline_plan_peers())).await? else {
            return Err(ctx.layer_failed());
        };
        let program = prompts::python_program(&plan);
        let outcome = match program {
            Some(code) => ctx.run_plan_program(0, PIPELINE_TOOL, code).await,
            None => None,
        };
        let run = match (&outcome, program) {
            (Some(outcome), _) => PipelineRun::Ran { result: &outcome.content, is_error: outcome.is_error },
            (None, None) => {
                ctx.note("the plan holds no ```python program; nothing was run");
                PipelineRun::NoProgram
            }
            (None, Some(_)) => {
                ctx.note(format!("no `{PIPELINE_TOOL}` tool is registered; the plan's program was not run"));
                PipelineRun::NoTool
            }
        };
        let answerer = ctx.layer().agents.len() - 1;
        let peers = prompts::pipeline_answer_peers(&ctx.answer(0, &plan), run);
        match ctx.agent_call(answerer, CallKind::Agent, 1, Some(&peers)).await? {
            Some(text) => Ok(text),
            None => {
                ctx.note("the answering agent failed; the plan is the output");
                Ok(plan)
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
    async fn a_lone_agent_plans_runs_and_answers() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (has(r, "Running the program gave:\nexit status 0\nstdout:\n4")).then(|| Ok("\\boxed{4}".into()))
                })
                .on_contains("Plan how to solve this", "Add.\n```python\nprint(2 + 2)\n```"),
        );
        let r = run_layer(&model, 1, AggregatorName::ToolPipeline, None).await.unwrap();
        assert_eq!(r.output, "\\boxed{4}");
        assert_eq!(shape(&r), [(CallKind::Agent, Some("a1"), 0), (CallKind::Agent, Some("a1"), 1)]);
        let plan = &r.trace.layers[0].calls[0];
        assert_eq!(plan.tool_results[0].content, "exit status 0\nstdout:\n4");
        assert!(notes(&r).is_empty(), "{:?}", notes(&r));
    }

    #[tokio::test]
    async fn a_plan_without_a_program_and_a_failed_answer_are_noted() {
        let model = Arc::new(
            ScriptedModel::default()
                .on(|r| {
                    (is_agent(r, "solve", "a2") && has(r, "the plan holds no ```python block")).then(|| Err(down()))
                })
                .on_contains("Plan how to solve this", "I would just think about it."),
        );
        let r = run_layer(&model, 2, AggregatorName::ToolPipeline, None).await.unwrap();
        assert_eq!(r.output, "I would just think about it.");
        assert_eq!(
            notes(&r),
            [
                "the plan holds no ```python program; nothing was run",
                "the answering agent failed; the plan is the output"
            ]
        );
        assert!(r.trace.layers[0].calls.iter().all(|c| c.tool_calls.is_empty()));
    }
}
