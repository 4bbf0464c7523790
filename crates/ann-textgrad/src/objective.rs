//! What training optimises: examples and the evaluation abstraction the training loop scores with.
//!
//! `ann-textgrad` does not know benchmarks; the experiment crate adapts a benchmark's evaluator
//! to [`Objective`].

use ann_llm::LlmError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One training or validation item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Stable id, unique in its split.
    pub id: String,
    /// The input `x` shown to the first layer.
    pub input: String,
    /// The reference answer, shown to the language loss (training examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Example {
    pub fn new(id: impl Into<String>, input: impl Into<String>) -> Self {
        Self { id: id.into(), input: input.into(), reference: None }
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }
}

/// The evaluation of one final output: `{score in 0..=1, passed, feedback}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f64,
    pub passed: bool,
    /// Short and factual: what was wrong. The raw material of the language loss.
    pub feedback: String,
}

impl Score {
    pub fn pass(feedback: impl Into<String>) -> Self {
        Self { score: 1.0, passed: true, feedback: feedback.into() }
    }

    pub fn fail(feedback: impl Into<String>) -> Self {
        Self { score: 0.0, passed: false, feedback: feedback.into() }
    }
}

/// Why an evaluation could not be made (never the model's output, which is a [`Score`]).
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// A judge model call failed; an exhausted budget stops the run with a checkpoint.
    #[error("evaluation call failed: {0}")]
    Llm(#[from] LlmError),
    /// The evaluator's infrastructure failed (a sandbox that cannot start, missing data).
    #[error("evaluation failed: {0}")]
    Other(String),
}

/// Scores a final output of the network for one example.
#[async_trait]
pub trait Objective: Send + Sync {
    /// Score `output` (the last layer's output) for `example`.
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Score, ObjectiveError>;

    /// The key majority voting compares (the extracted answer); `None`: no extractor.
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
}

/// The data of a training run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainData {
    pub train: Vec<Example>,
    /// The fixed validation set V of the gate.
    pub validation: Vec<Example>,
}
