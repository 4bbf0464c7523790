//! The adapter from an `ann_eval::Benchmark` to the training loop's `ann_textgrad::Objective`.
//!
//! `ann-textgrad` and `ann-eval` never know each other; this is where they meet. Training examples
//! keep their reference (the language loss sees it); validation and test examples lose it, so no
//! answer leaks into the backward prompts. The evaluator still finds the full benchmark example
//! by id.

use std::collections::BTreeMap;
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Split};
use ann_textgrad::{Example, Objective, ObjectiveError, Score};
use async_trait::async_trait;

/// Convert a benchmark example; `with_reference` keeps the reference answer (training only).
pub fn to_train_example(example: &ann_eval::Example, with_reference: bool) -> Example {
    Example {
        id: example.id.clone(),
        input: example.input.clone(),
        reference: if with_reference { example.reference.clone() } else { None },
    }
}

/// Scores outputs with a benchmark's evaluator, looking the full example (metadata, reference) up
/// by id among the examples it was built with.
pub struct BenchmarkObjective {
    benchmark: Arc<dyn Benchmark>,
    examples: BTreeMap<String, ann_eval::Example>,
}

impl BenchmarkObjective {
    /// An objective over the examples of every split of `benchmark`.
    pub fn new(benchmark: Arc<dyn Benchmark>) -> Self {
        let examples = [Split::Train, Split::Validation, Split::Test]
            .into_iter()
            .flat_map(|split| benchmark.examples(split).iter().cloned())
            .map(|e| (e.id.clone(), e))
            .collect();
        Self { benchmark, examples }
    }

    /// The benchmark it scores with.
    pub fn benchmark(&self) -> &Arc<dyn Benchmark> {
        &self.benchmark
    }
}

fn objective_error(e: EvalError) -> ObjectiveError {
    match e {
        EvalError::Judge(llm) => ObjectiveError::Llm(llm),
        other => ObjectiveError::Other(other.to_string()),
    }
}

#[async_trait]
impl Objective for BenchmarkObjective {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Score, ObjectiveError> {
        let full = self.examples.get(&example.id).ok_or_else(|| {
            ObjectiveError::Other(format!("example {} is not part of benchmark {}", example.id, self.benchmark.name()))
        })?;
        let e = self.benchmark.evaluate(full, output).await.map_err(objective_error)?;
        Ok(Score { score: e.score, passed: e.passed, feedback: e.feedback })
    }

    fn extract_answer(&self, output: &str) -> Option<String> {
        self.benchmark.extract_answer(output)
    }
}
