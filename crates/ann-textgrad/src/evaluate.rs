//! Evaluation: run a network forward on examples and score each final output with an evaluator.
//!
//! The first move of every training step (the batch), of the gate (the step's failing examples and
//! the validation set) and of testing. A forward that failed for the network's own reason is a
//! zero score with the error as feedback and keeps its partial trace. An infrastructure failure is
//! never a score: under the default `stop` policy it is an error (as an exhausted budget is);
//! under `exclude` the example is left out of every mean ([`ExampleRun::excluded`]), its trace kept.
//!
//! ```no_run
//! # async fn demo(worker: ann_llm::SharedModel, evaluator: std::sync::Arc<dyn ann_eval::Evaluator>,
//! #     net: ann_graph::Network, test: Vec<ann_eval::Example>) -> Result<(), ann_textgrad::TrainError> {
//! use ann_textgrad::{evaluate, forward_cost, mean_score};
//!
//! let examples: Vec<&ann_eval::Example> = test.iter().collect();
//! let runs = evaluate(&worker, &evaluator, &net, &examples, &ann_graph::ForwardConfig::default()).await?;
//! let cost = forward_cost(&runs, &ann_llm::PriceTable::default());
//! println!("test score {:.2} for ${:.4}", mean_score(&runs), cost.dollars);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use ann_eval::{Evaluation, Evaluator, Example};
use ann_graph::InfrastructurePolicy::Exclude;
use ann_graph::{ForwardConfig, ForwardInput, Network, Trace, forward_inputs};
use ann_llm::{PriceTable, SharedModel};
use futures::StreamExt;

use crate::TrainError;
use crate::meter::Cost;

/// One example run through a network and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleRun {
    pub id: String,
    /// The final output (empty when the forward failed).
    pub output: String,
    /// The evaluator's verdict (score clamped to 0..=1).
    pub evaluation: Evaluation,
    /// The forward trace; when the forward failed, its partial trace (the layers before the
    /// failed one, then the failed layer's calls and error: [`ann_graph::GraphError::trace`]).
    pub trace: Option<Trace>,
    /// Left out of the scores: the forward hit an infrastructure failure under
    /// [`ann_graph::InfrastructurePolicy::Exclude`] (the feedback says which). Its `evaluation`
    /// is no verdict on the network: [`mean_score`], the example selection of the backward phase
    /// and the reports skip it, and count it.
    pub excluded: bool,
}

impl ExampleRun {
    /// The score, unless the example is [excluded](ExampleRun::excluded).
    pub fn score(&self) -> Option<f64> {
        (!self.excluded).then_some(self.evaluation.score)
    }
}

/// Forward every example through `net` with `worker` and score it with `evaluator` (in input
/// order); an example's [files](Example::files) are its agents' tool context. A forward that
/// failed for the network's own reason is a zero score with the error as feedback, and keeps its
/// partial trace (the calls it made are seen by the backward phase); an
/// exhausted budget is an error, and so is an infrastructure failure under the `stop` policy
/// (under `exclude`, the example is [excluded](ExampleRun::excluded), never scored 0).
pub async fn evaluate(
    worker: &SharedModel,
    evaluator: &Arc<dyn Evaluator>,
    net: &Network,
    examples: &[&Example],
    forward: &ForwardConfig,
) -> Result<Vec<ExampleRun>, TrainError> {
    // Each example's files (DABench's table) go to its agents' tools.
    let files: Vec<Vec<std::path::PathBuf>> = examples.iter().map(|e| e.files()).collect();
    let inputs: Vec<ForwardInput<'_>> =
        examples.iter().zip(&files).map(|(e, files)| ForwardInput { text: &e.input, files }).collect();
    let for_votes = evaluator.clone();
    let extractor = move |s: &str| for_votes.extract_answer(s);
    let results = forward_inputs(worker, net, &inputs, Some(&extractor), forward).await?;
    let parallel = forward.max_parallel_inputs.max(1);
    let scored = futures::stream::iter(examples.iter().zip(results))
        .map(|(example, result)| async move {
            match result {
                Ok(fr) => {
                    let mut evaluation = evaluator.evaluate(example, &fr.output).await?;
                    // Scores outside 0..=1 (or NaN) would break the gate's comparisons.
                    evaluation.score =
                        if evaluation.score.is_finite() { evaluation.score.clamp(0.0, 1.0) } else { 0.0 };
                    let trace = Some(fr.trace);
                    Ok(ExampleRun { id: example.id.clone(), output: fr.output, evaluation, trace, excluded: false })
                }
                Err(e) if e.is_infrastructure_failure() && forward.on_infrastructure_failure == Exclude => {
                    let evaluation = Evaluation::fail(format!("excluded from the scores: {e}"));
                    let (id, trace) = (example.id.clone(), e.into_trace());
                    Ok(ExampleRun { id, output: String::new(), evaluation, trace, excluded: true })
                }
                Err(e) if e.is_budget_exhausted() || e.is_infrastructure_failure() => Err(TrainError::from(e)),
                Err(e) => {
                    let evaluation = Evaluation::fail(format!("the network produced no output: {e}"));
                    let (id, trace) = (example.id.clone(), e.into_trace());
                    Ok(ExampleRun { id, output: String::new(), evaluation, trace, excluded: false })
                }
            }
        })
        .buffered(parallel)
        .collect::<Vec<_>>()
        .await;
    scored.into_iter().collect()
}

/// Mean score of `net` on `examples` ([`evaluate`], then [`mean_score`]).
pub async fn score(
    worker: &SharedModel,
    evaluator: &Arc<dyn Evaluator>,
    net: &Network,
    examples: &[Example],
    forward: &ForwardConfig,
) -> Result<f64, TrainError> {
    let refs: Vec<&Example> = examples.iter().collect();
    Ok(mean_score(&evaluate(worker, evaluator, net, &refs, forward).await?))
}

/// Mean score of runs, the [excluded](ExampleRun::excluded) ones left out (0 for none).
pub fn mean_score(runs: &[ExampleRun]) -> f64 {
    let scores: Vec<f64> = runs.iter().filter_map(ExampleRun::score).collect();
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().sum::<f64>() / scores.len() as f64
}

/// What the forward passes of `runs` cost, from their traces: every call with a response counts
/// (a cache hit like the fresh call it replays), priced by the model that answered.
pub fn forward_cost(runs: &[ExampleRun], prices: &PriceTable) -> Cost {
    let mut cost = Cost::default();
    for call in runs.iter().filter_map(|r| r.trace.as_ref()).flat_map(|t| t.calls()) {
        if call.output.is_some() {
            cost.add_call(&call.model, &call.usage, prices);
        } else if call.error.is_some() {
            cost.errors += 1;
        }
    }
    cost
}
