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
use std::future::Future;

use ann_graph::InfrastructurePolicy::Exclude;
use ann_graph::{
    BatchOrder, ForwardConfig, ForwardInput, ForwardResult, ForwardStream, GraphError, InfrastructurePolicy, Network,
    Trace, forward_inputs,
};
use ann_llm::{PriceTable, SharedModel};
use futures::StreamExt;
use futures::future::Either;
use futures::stream::FuturesOrdered;

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
        .map(|(example, result)| score_one(evaluator, example, result, forward.on_infrastructure_failure))
        .buffered(parallel)
        .collect::<Vec<_>>()
        .await;
    scored.into_iter().collect()
}

/// Score one forward's result: a verdict of `evaluator` (clamped to 0..=1), a zero with the error
/// as feedback for a forward that failed for the network's own reason, an excluded example for
/// an infrastructure failure under `Exclude`, an error for a stop.
async fn score_one(
    evaluator: &Arc<dyn Evaluator>,
    example: &Example,
    result: Result<ForwardResult, GraphError>,
    policy: InfrastructurePolicy,
) -> Result<ExampleRun, TrainError> {
    match result {
        Ok(fr) => {
            let mut evaluation = evaluator.evaluate(example, &fr.output).await?;
            // Scores outside 0..=1 (or NaN) would break the gate's comparisons.
            evaluation.score = if evaluation.score.is_finite() { evaluation.score.clamp(0.0, 1.0) } else { 0.0 };
            let trace = Some(fr.trace);
            Ok(ExampleRun { id: example.id.clone(), output: fr.output, evaluation, trace, excluded: false })
        }
        Err(e) if e.is_infrastructure_failure() && policy == Exclude => {
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
}

/// [`evaluate`] as a stream: each example's run is handed to `each` (with its index, in input
/// order) as soon as it is scored, and dropped unless `each` keeps it, so memory holds only the
/// examples in flight (at most `max_parallel_inputs` forwards, and as many scorings), not the
/// whole set. For large evaluations whose traces go to a file ([`crate::journal::example_jsonl`]).
///
/// The stopping rules are [`evaluate`]'s: an exhausted budget (or an infrastructure failure under
/// `stop`) starts no further example, the examples in flight finish and are handed over, then the
/// stop is the error. When `each` or the evaluator fails, no further example starts, those in
/// flight finish (their calls are not dropped, their runs are not handed over) and the first
/// failure is the error (a forward's stop comes first).
pub async fn evaluate_each<E, F, Fut>(
    worker: &SharedModel,
    evaluator: &Arc<dyn Evaluator>,
    net: &Network,
    examples: &[&Example],
    forward: &ForwardConfig,
    mut each: F,
) -> Result<(), E>
where
    E: From<TrainError>,
    F: FnMut(usize, ExampleRun) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    enum Event {
        Forward(Option<(usize, Result<ForwardResult, GraphError>)>),
        Scored((usize, Result<ExampleRun, TrainError>)),
    }
    let files: Vec<Vec<std::path::PathBuf>> = examples.iter().map(|e| e.files()).collect();
    let inputs: Vec<ForwardInput<'_>> =
        examples.iter().zip(&files).map(|(e, files)| ForwardInput { text: &e.input, files }).collect();
    let for_votes = evaluator.clone();
    let extractor = move |s: &str| for_votes.extract_answer(s);
    let mut stream = ForwardStream::of_inputs(worker, net, inputs, Some(&extractor), forward, BatchOrder::Input)
        .map_err(|e| E::from(TrainError::from(e)))?;
    let parallel = forward.max_parallel_inputs.max(1);
    let policy = forward.on_infrastructure_failure;
    let mut scoring = FuturesOrdered::new();
    // Results waiting for a scoring slot: while any waits, no input starts, so at most the
    // inputs in flight wait (the stream is still polled: a scoring may wait on a forward's call).
    let mut waiting = std::collections::VecDeque::new();
    let (mut forwards_open, mut failed) = (true, None::<E>);
    while forwards_open || !scoring.is_empty() || !waiting.is_empty() {
        while scoring.len() < parallel
            && let Some((index, result)) = waiting.pop_front()
        {
            let example = examples[index];
            scoring.push_back(async move { (index, score_one(evaluator, example, result, policy).await) });
        }
        let held = !waiting.is_empty() || scoring.len() >= parallel;
        stream.hold(held);
        // Held, the stream is driven only for what it has in flight (then scoring is full).
        let drive = forwards_open && (!held || stream.in_flight() > 0);
        let event = if drive && !scoring.is_empty() {
            // Both `next`s may be dropped unfinished: neither loses an item.
            match futures::future::select(std::pin::pin!(stream.next()), scoring.next()).await {
                Either::Left((forward, _)) => Event::Forward(forward),
                Either::Right((scored, _)) => Event::Scored(scored.expect("scorings under way")),
            }
        } else if drive {
            Event::Forward(stream.next().await)
        } else {
            Event::Scored(scoring.next().await.expect("scorings under way"))
        };
        match event {
            Event::Forward(None) => forwards_open = false,
            Event::Forward(Some(result)) => waiting.push_back(result),
            Event::Scored(_) if failed.is_some() => {}
            Event::Scored((index, scored)) => {
                let handed = match scored {
                    Ok(run) => each(index, run).await,
                    Err(e) => Err(E::from(e)),
                };
                if let Err(e) = handed {
                    failed = Some(e);
                    stream.close();
                }
            }
        }
    }
    if let Some(stop) = stream.into_stopped() {
        return Err(E::from(TrainError::from(stop)));
    }
    failed.map_or(Ok(()), Err)
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
    for run in runs {
        cost.add_forward(run, prices);
    }
    cost
}

impl Cost {
    /// Count the calls of `run`'s forward trace as [`forward_cost`] does (for a caller that sums
    /// runs one by one, as [`evaluate_each`] hands them over).
    pub fn add_forward(&mut self, run: &ExampleRun, prices: &PriceTable) {
        for call in run.trace.iter().flat_map(|t| t.calls()) {
            if call.output.is_some() {
                self.add_call(&call.model, &call.usage, prices);
            } else if call.error.is_some() {
                self.errors += 1;
            }
        }
    }
}
