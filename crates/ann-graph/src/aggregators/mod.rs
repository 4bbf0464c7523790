//! The nine built-in aggregation functions, one file per family: how a layer's team turns its
//! input into the layer output.
//!
//! - [`basic`]: `single`, `concatenate`, `majority_vote` (independent answers, no further call);
//! - [`synthesis`]: `llm_synthesis`, `select_best` (one more call merges or judges the answers);
//! - [`refine`]: `sequential_refine`, `critic_revise` (a draft improved in order or after critique);
//! - [`debate`]: `debate` (rounds of revision after seeing each other, then a vote);
//! - [`pipeline`]: `tool_pipeline` (a plan with a program, the program run by the `python` tool, an
//!   answer from its output).
//!
//! Each runs its layer's agents through a [`crate::LayerContext`] and is registered by default in
//! [`crate::AggregatorRegistry`].

mod basic;
mod debate;
mod pipeline;
mod refine;
mod synthesis;

pub(crate) use basic::{Concatenate, MajorityVote, Single};
pub(crate) use debate::Debate;
pub use pipeline::PIPELINE_TOOL;
pub(crate) use pipeline::ToolPipeline;
pub(crate) use refine::{CriticRevise, SequentialRefine};
pub(crate) use synthesis::{LlmSynthesis, SelectBest};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ann_llm::LlmError;
    use ann_test_support::ScriptedModel;

    use crate::AggregatorName;
    use crate::testing::{EXTRACT, run_layer};

    #[tokio::test]
    async fn budget_exhaustion_is_never_swallowed() {
        for name in AggregatorName::ALL {
            let model =
                Arc::new(ScriptedModel::default().fallback(|_| Err(LlmError::BudgetExhausted("$1 spent".into()))));
            let agents = name.min_agents().max(2);
            let e = run_layer(&model, agents, name, Some(EXTRACT)).await.unwrap_err();
            assert!(e.is_budget_exhausted(), "{name}: {e}");
            assert_eq!(e.to_string(), "budget exhausted during layer `solve`: budget exhausted: $1 spent");
        }
    }
}
