//! The language loss: which examples of a batch the backward phase uses, and one loss call per
//! example (a critique of the final output and the requirement it must meet).
//!
//! ```no_run
//! # async fn demo(optimizer: ann_textgrad::Optimizer, net: ann_graph::Network,
//! #     batch: Vec<&ann_eval::Example>, runs: Vec<ann_textgrad::ExampleRun>) -> Result<(), ann_textgrad::TrainError> {
//! use ann_textgrad::select_examples;
//!
//! let selected = select_examples(&runs, &optimizer.config().selection);
//! let losses = optimizer.loss(&net, &batch, &runs, &selected).await?;
//! for loss in &losses {
//!     println!("{}: {} / {}", loss.example, loss.critique, loss.requirement);
//! }
//! # Ok(()) }
//! ```

use ann_eval::Example;
use ann_graph::Network;

use crate::TrainError;
use crate::config::Selection;
use crate::evaluate::ExampleRun;
use crate::gradient::{LanguageLoss, parse_language_loss};
use crate::optimizer::Optimizer;
use crate::prompts::{self, LossInput};

/// The examples a backward step uses: failures with a trace (a failed forward's partial trace
/// counts; an excluded example never), lowest score first (ties in batch order), at most `max_failures`, then at most
/// `max_successes` successes. Indices into `runs`.
pub fn select_examples(runs: &[ExampleRun], selection: &Selection) -> Vec<usize> {
    // An excluded example (an infrastructure failure) says nothing about the network.
    let traced = |i: &usize| runs[*i].trace.is_some() && !runs[*i].excluded;
    let score = |i: usize| runs[i].evaluation.score;
    let mut failures: Vec<usize> = (0..runs.len()).filter(|&i| score(i) < 1.0).filter(traced).collect();
    failures.sort_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
    failures.truncate(selection.max_failures);
    let successes = (0..runs.len()).filter(|&i| score(i) >= 1.0).filter(traced).take(selection.max_successes);
    failures.into_iter().chain(successes).collect()
}

impl Optimizer {
    /// The language loss of each selected example (`selected` indexes `examples` and `runs`, the
    /// batch in order), in the order of `selected`. A failed call falls back to the evaluator's
    /// feedback as the critique; only an exhausted budget is an error.
    pub async fn loss(
        &self,
        net: &Network,
        examples: &[&Example],
        runs: &[ExampleRun],
        selected: &[usize],
    ) -> Result<Vec<LanguageLoss>, TrainError> {
        let limits = &self.config().prompt_limits;
        let calls = selected.iter().map(|&i| {
            let r = &runs[i];
            let input = LossInput {
                input: &examples[i].input,
                output: &r.output,
                score: r.evaluation.score,
                passed: r.evaluation.passed,
                feedback: &r.evaluation.feedback,
                reference: examples[i].reference.as_deref(),
            };
            let request = self.request(prompts::language_loss(&net.task_description, &input, limits), "loss");
            async move {
                Ok(match self.call(&request).await? {
                    Ok(reply) => parse_language_loss(&r.id, &reply),
                    Err(why) => LanguageLoss {
                        example: r.id.clone(),
                        critique: r.evaluation.feedback.clone(),
                        requirement: String::new(),
                        fallback: Some(format!("call failed: {why}")),
                    },
                })
            }
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ann_eval::Evaluation;
    use ann_graph::Trace;

    fn run(id: &str, score: f64, traced: bool) -> ExampleRun {
        let trace = Trace { task: String::new(), input: String::new(), layers: Vec::new(), output: String::new() };
        ExampleRun {
            id: id.into(),
            output: String::new(),
            evaluation: Evaluation { score, passed: score >= 1.0, feedback: String::new() },
            trace: traced.then_some(trace),
            excluded: false,
        }
    }

    #[test]
    fn selection_failures_first_lowest_first_capped_plus_one_success() {
        let runs = vec![
            run("ok1", 1.0, true),
            run("f05", 0.5, true),
            run("f00", 0.0, true),
            run("ok2", 1.0, true),
            run("f02", 0.2, true),
            run("f00b", 0.0, true),
            run("f09", 0.9, true),
            run("untraced", 0.0, false),
        ];
        let ids = |sel: Vec<usize>| sel.into_iter().map(|i| runs[i].id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(select_examples(&runs, &Selection::default())), ["f00", "f00b", "f02", "f05", "ok1"]);
        let none = Selection { max_failures: 1, max_successes: 0 };
        assert_eq!(ids(select_examples(&runs, &none)), ["f00"]);
        let perfect = vec![run("a", 1.0, true), run("b", 1.0, true)];
        assert!(select_examples(&perfect, &Selection::default()).iter().all(|&i| perfect[i].evaluation.score >= 1.0));
    }
}
