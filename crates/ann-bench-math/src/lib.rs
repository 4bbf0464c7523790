//! MATH benchmark: loader, boxed-answer extraction and equivalence checking.
//!
//! - [`data`]: the three MATH files (train 7,500, test 5,000, MATH-500) as [`MathProblem`]s;
//! - [`mod@extract`]: the final answer of a text (last `\boxed{}`, then documented fallbacks);
//! - [`normalize`], [`expr`], [`value`], [`answer`]: cleaning (Hendrycks rules and more), exact
//!   evaluation and structural equivalence ([`is_equiv`]);
//! - [`limits`]: the bounds on an answer's size, nesting and work (past them: unparsable);
//! - [`MathBenchmark`]: the default splits (train drawn from the MATH train set, a validation
//!   set of 50 drawn from the same pool, test = MATH-500) and the [`Benchmark`] implementation.

pub mod answer;
pub mod data;
pub mod expr;
pub mod extract;
pub mod limits;
pub mod normalize;
pub mod prompts;
pub mod value;

use std::collections::BTreeMap;
use std::path::Path;

use ann_eval::data::seeded_split;
use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split, Splits};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use answer::{Answer, Normalized, is_equiv, normalize as normalize_answer};
pub use data::{MathProblem, load_math_test, load_math_train, load_math500};
pub use extract::{AnswerSource, Extracted, extract, last_boxed};

/// The starting network, in the network JSON.
pub const STARTING_NETWORK: &str = include_str!("../network.json");

/// The starting network with tools (`[benchmark] tools = true`): the same, but two solvers and the
/// verifier compute exactly with the `calculator` tool.
pub const STARTING_NETWORK_WITH_TOOLS: &str = include_str!("../network-tools.json");

/// The answer-format rule the last layer must keep.
pub const ANSWER_FORMAT: &str = "\\boxed{}";

/// How the MATH benchmark is split and scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MathConfig {
    /// Training examples drawn (seeded) from the MATH train set.
    pub train_size: usize,
    /// Validation examples drawn from the MATH train set, disjoint from the training ones.
    pub validation_size: usize,
    /// `None`: all 500 MATH-500 problems; `Some(n)`: a seeded subset of `n`, in file order.
    pub test_size: Option<usize>,
    /// Seed of the splits.
    pub seed: u64,
    /// When true (the default: "last `\boxed{}` on both sides") only a `\boxed{}` answer
    /// counts; when false the fallbacks of [`extract()`] ("the answer is X", a short last line) count too.
    pub require_boxed: bool,
}

impl Default for MathConfig {
    fn default() -> Self {
        Self { train_size: 100, validation_size: 50, test_size: None, seed: 0, require_boxed: true }
    }
}

/// The MATH benchmark with its three splits.
#[derive(Debug, Clone)]
pub struct MathBenchmark {
    config: MathConfig,
    splits: Splits,
}

impl MathBenchmark {
    /// Load `math-train.jsonl` and `math500.jsonl` from `data_dir` and split them.
    pub fn load(data_dir: &Path, config: &MathConfig) -> Result<Self, EvalError> {
        let pool = load_math_train(&data_dir.join(data::TRAIN_FILE))?;
        let test = load_math500(&data_dir.join(data::MATH500_FILE))?;
        Self::from_problems(&pool, &test, config)
    }

    /// Split already loaded problems: train and validation drawn from `pool`, test from `test`.
    pub fn from_problems(pool: &[MathProblem], test: &[MathProblem], config: &MathConfig) -> Result<Self, EvalError> {
        let mut parts = seeded_split(pool, &[config.train_size, config.validation_size], config.seed)?;
        let validation = parts.pop().unwrap_or_default();
        let train = parts.pop().unwrap_or_default();
        let test: Vec<MathProblem> = match config.test_size {
            None => test.to_vec(),
            Some(n) => {
                let indices: Vec<usize> = (0..test.len()).collect();
                let mut chosen = seeded_split(&indices, &[n], config.seed)?.concat();
                chosen.sort_unstable();
                chosen.into_iter().map(|i| test[i].clone()).collect()
            }
        };
        Ok(Self {
            config: config.clone(),
            splits: Splits {
                train: train.iter().map(to_example).collect(),
                validation: validation.iter().map(to_example).collect(),
                test: test.iter().map(to_example).collect(),
            },
        })
    }

    /// The configuration the benchmark was split with.
    pub fn config(&self) -> &MathConfig {
        &self.config
    }

    /// Score `output` against a reference answer (raw LaTeX).
    pub fn evaluate_answer(&self, reference: &str, output: &str) -> Evaluation {
        evaluate_answer(reference, output, self.config.require_boxed)
    }
}

/// One problem as an [`Example`]: input = the rendered problem, reference = the raw answer,
/// metadata = `subject` and `level`.
pub fn to_example(p: &MathProblem) -> Example {
    let mut metadata = BTreeMap::new();
    metadata.insert("subject".to_string(), serde_json::Value::from(p.subject.clone()));
    if let Some(level) = p.level {
        metadata.insert("level".to_string(), serde_json::Value::from(level));
    }
    Example {
        id: p.id.clone(),
        input: prompts::render_problem(&p.problem),
        reference: Some(p.answer.clone()),
        metadata,
    }
}

/// Longest answer quoted in feedback.
const MAX_QUOTED: usize = 200;

fn quoted(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX_QUOTED).collect::<String>())
    }
}

/// Score `output` against `reference` (the evaluator's score and feedback, the raw material of the language loss): full marks when the extracted answer is
/// equivalent, with feedback "extracted `X`, expected `Y` after normalisation" otherwise.
pub fn evaluate_answer(reference: &str, output: &str, require_boxed: bool) -> Evaluation {
    let expected = answer::normalize(reference);
    let found = extract::extract(output).filter(|e| !require_boxed || e.source == AnswerSource::Boxed);
    let Some(found) = found else {
        return Evaluation::fail("no \\boxed{} answer found");
    };
    let got = answer::normalize(&found.answer);
    let note = match found.source {
        AnswerSource::Boxed => "",
        AnswerSource::AnswerPhrase => " (no \\boxed{} answer; taken from an 'answer is' phrase)",
        AnswerSource::FinalLine => " (no \\boxed{} answer; taken from the last line)",
    };
    if matches!(got.answer, Answer::Unparsable) {
        return Evaluation::fail(format!(
            "extracted `{}`: too long, too deeply nested or too costly to compare{note}",
            quoted(&got.cleaned)
        ));
    }
    if got.equivalent(&expected) {
        Evaluation::pass(format!("correct: extracted `{}`{note}", quoted(&got.cleaned)))
    } else {
        Evaluation::fail(format!(
            "extracted `{}`, expected `{}` after normalisation{note}",
            quoted(&got.cleaned),
            quoted(&expected.cleaned)
        ))
    }
}

#[async_trait]
impl Benchmark for MathBenchmark {
    fn name(&self) -> &str {
        "math"
    }

    fn task_description(&self) -> &str {
        prompts::task_description()
    }

    fn answer_format(&self) -> &str {
        ANSWER_FORMAT
    }

    fn examples(&self, split: Split) -> &[Example] {
        self.splits.get(split)
    }

    fn extract_answer(&self, output: &str) -> Option<String> {
        extract::extract(output)
            .filter(|e| !self.config.require_boxed || e.source == AnswerSource::Boxed)
            .map(|e| answer::normalize(&e.answer))
            // An unparsable answer is no vote: it is equivalent to nothing.
            .filter(|n| !matches!(n.answer, Answer::Unparsable))
            .map(|n| n.key())
    }

    fn starting_network(&self) -> &str {
        STARTING_NETWORK
    }
    fn starting_network_with_tools(&self) -> Option<&str> {
        Some(STARTING_NETWORK_WITH_TOOLS)
    }

    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let reference = example
            .reference
            .as_deref()
            .ok_or_else(|| EvalError::Config(format!("MATH example {} has no reference answer", example.id)))?;
        Ok(self.evaluate_answer(reference, output))
    }
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
