//! Benchmark and Evaluator traits, examples, evaluations with feedback, statistics.
//!
//! An evaluation is `{score in 0..=1, passed, feedback}`; the feedback is the raw material of the
//! textual loss. Model output is data: an unparsable answer is a scored evaluation, never an error.
//! `EvalError` is only for the infrastructure (missing data, a sandbox that cannot start, a judge
//! whose budget ran out).

pub mod data;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One benchmark item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Stable id, unique within the benchmark (e.g. `HumanEval/12`, `math500/algebra/1`).
    pub id: String,
    /// The example's own input `x`, as shown to the first layer.
    pub input: String,
    /// The reference answer where the benchmark has one (shown to the optimiser on training examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Benchmark-specific fields the evaluator needs (tests, entry point, choices, ...), ordered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Example {
    /// An example with no reference and no metadata.
    pub fn new(id: impl Into<String>, input: impl Into<String>) -> Self {
        Self { id: id.into(), input: input.into(), reference: None, metadata: BTreeMap::new() }
    }

    /// The same example with `reference` as its reference answer.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// The same example with `files` as its files ([`Example::files`]).
    pub fn with_files(mut self, files: impl IntoIterator<Item = PathBuf>) -> Self {
        let paths: Vec<String> = files.into_iter().map(|f| f.display().to_string()).collect();
        self.metadata.insert(FILES_KEY.into(), serde_json::json!(paths));
        self
    }

    /// The files an agent's tools may read while working on this example (DABench's CSV table):
    /// the paths listed under the metadata key [`FILES_KEY`] (none when absent or not a list of
    /// strings). The `python` tool puts them, read-only, in its program's working directory.
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(list) = self.metadata.get(FILES_KEY).and_then(serde_json::Value::as_array) else {
            return Vec::new();
        };
        list.iter().filter_map(serde_json::Value::as_str).map(PathBuf::from).collect()
    }
}

/// The metadata key listing an example's files ([`Example::files`]).
pub const FILES_KEY: &str = "files";

/// The evaluator's verdict on one final output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// In `0.0..=1.0`.
    pub score: f64,
    /// Whether the example counts as solved.
    pub passed: bool,
    /// Short, factual: what was wrong (expected vs. got, failing test, judge's reason).
    pub feedback: String,
}

impl Evaluation {
    /// A full-marks evaluation.
    pub fn pass(feedback: impl Into<String>) -> Self {
        Self { score: 1.0, passed: true, feedback: feedback.into() }
    }

    /// A zero-score evaluation.
    pub fn fail(feedback: impl Into<String>) -> Self {
        Self { score: 0.0, passed: false, feedback: feedback.into() }
    }
}

/// Which part of a benchmark's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// A benchmark's examples by split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Splits {
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
    pub test: Vec<Example>,
}

impl Splits {
    /// `examples` shuffled with `seed` and cut into train, validation and test of the given sizes.
    pub fn seeded(examples: &[Example], sizes: &[usize; 3], seed: u64) -> Result<Self, EvalError> {
        let mut parts = data::seeded_split(examples, sizes, seed)?.into_iter();
        let mut next = || parts.next().unwrap_or_default();
        Ok(Self { train: next(), validation: next(), test: next() })
    }

    /// The examples of one split.
    pub fn get(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }
}

/// Infrastructure failures (never model output).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A data file is missing; says what to run to fetch it.
    #[error("data file {path} is missing: {hint}")]
    MissingData { path: PathBuf, hint: String },
    /// A row of a data file is malformed; names file and 1-based line.
    #[error("{path}:{line}: {message}")]
    BadRow { path: PathBuf, line: usize, message: String },
    /// Reading a data file failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The code sandbox could not be started.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// A judge model call failed (budget exhausted, backend down after retries).
    #[error("judge call failed: {0}")]
    Judge(#[from] ann_llm::LlmError),
    /// A bad split or configuration.
    #[error("configuration: {0}")]
    Config(String),
}

/// Scores a final output of the network against one example.
#[async_trait]
pub trait Evaluator: Send + Sync {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError>;

    /// The key majority voting compares (the extracted, normalised answer); `None`: no extractor,
    /// or no answer found.
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
}

/// A benchmark as an [`Evaluator`]: its `evaluate` and its `extract_answer`.
#[derive(Clone)]
pub struct BenchmarkEvaluator(pub Arc<dyn Benchmark>);

#[async_trait]
impl Evaluator for BenchmarkEvaluator {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        self.0.evaluate(example, output).await
    }

    fn extract_answer(&self, output: &str) -> Option<String> {
        self.0.extract_answer(output)
    }
}

/// A benchmark: its data, its task description, its answer format and its evaluator.
#[async_trait]
pub trait Benchmark: Send + Sync {
    /// Short name, e.g. `math`, `humaneval`, `mmlu-ml`, `creative-writing`.
    fn name(&self) -> &str;
    /// The task description `I` shared by all examples (what is asked, the answer format).
    fn task_description(&self) -> &str;
    /// The answer-format rule the last layer's output spec must keep (e.g. `\boxed{}`).
    fn answer_format(&self) -> &str;
    /// The examples of one split (seeded, deterministic).
    fn examples(&self, split: Split) -> &[Example];
    /// The key majority voting compares (the extracted, normalised answer), if one can be found.
    fn extract_answer(&self, output: &str) -> Option<String>;
    /// The benchmark's hand-written starting network (JSON of the network schema).
    fn starting_network(&self) -> &str;
    /// A starting network whose agents call tools (`[benchmark] tools = true` of an experiment),
    /// when the benchmark has one; `None` (the default): none.
    fn starting_network_with_tools(&self) -> Option<&str> {
        None
    }
    /// Score a final output.
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError>;
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_examples_files_round_trip_through_its_metadata() {
        let plain = Example::new("x/1", "input");
        assert!(plain.files().is_empty());
        let with = plain.with_files([PathBuf::from("/data/sales.csv"), PathBuf::from("tables/people.csv")]);
        assert_eq!(with.metadata[FILES_KEY], serde_json::json!(["/data/sales.csv", "tables/people.csv"]));
        assert_eq!(with.files(), [PathBuf::from("/data/sales.csv"), PathBuf::from("tables/people.csv")]);
        let back: Example = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back.files(), with.files());
        // Metadata that is not a list of strings holds no files (nothing else is taken for a path).
        let mut odd = Example::new("x/2", "input");
        odd.metadata.insert(FILES_KEY.into(), serde_json::json!("sales.csv"));
        assert!(odd.files().is_empty());
    }
}
