//! What a run tells its caller while it works (for a progress display): a line per phase, each
//! long phase's size, every example scored, and the run's meter (calls, cost, cache hits, live).
//!
//! A caller that only wants the lines passes a closure `|line: &str| ...` as the
//! [`RunOptions::progress`](crate::RunOptions::progress); one that draws progress bars implements
//! [`RunObserver`]. Observing never changes what a run does, and nothing here blocks.

use std::path::PathBuf;
use std::sync::Arc;

use ann_eval::{EvalError, Evaluation, Evaluator, Example};
use ann_llm::Meter;
use async_trait::async_trait;

/// A long phase of a run, announced when it begins (it ends when the next one begins, or the run does).
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Training: `batches` batches in all (epochs × batches per epoch; patience may end it
    /// sooner). Each finished batch is one line of the run's `journal.jsonl` (after its `start`
    /// line), so a display counts them there.
    Training { batches: u64, run_dir: PathBuf },
    /// One evaluation of a network on `examples` examples: `name` is its `evaluations/` name
    /// (`validation-initial`, `test-trained`, `test-baseline-cot`, ...) or the split of `ann eval`.
    Evaluation { name: String, examples: u64 },
}

/// Receives what a run reports while it works. Only [`RunObserver::line`] is required.
pub trait RunObserver: Send + Sync {
    /// One line per step of the run (also logged at `info`).
    fn line(&self, line: &str);
    /// A long phase begins.
    fn phase(&self, _phase: &Phase) {}
    /// An example was scored (in any phase: training batches and the gate's forwards too).
    fn scored(&self, _score: f64) {}
    /// The run's meter, every model's calls, cost and cache hits, given once its models are open.
    fn meter(&self, _meter: &Arc<Meter>) {}
}

impl<F: Fn(&str) + Send + Sync> RunObserver for F {
    fn line(&self, line: &str) {
        self(line)
    }
}

/// An evaluator that tells `observer` every score it gives (the run's evaluator is wrapped in it).
pub(crate) struct ObservedEvaluator {
    pub inner: Arc<dyn Evaluator>,
    pub observer: Arc<dyn RunObserver>,
}

#[async_trait]
impl Evaluator for ObservedEvaluator {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let evaluation = self.inner.evaluate(example, output).await?;
        self.observer.scored(evaluation.score.clamp(0.0, 1.0));
        Ok(evaluation)
    }

    fn extract_answer(&self, output: &str) -> Option<String> {
        self.inner.extract_answer(output)
    }
}
