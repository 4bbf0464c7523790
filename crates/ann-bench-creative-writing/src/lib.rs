//! Creative-writing benchmarks: Tree-of-Thoughts passages, Trivia CW and DABench loaders.
//!
//! The Tree-of-Thoughts task: given four sentences, write a coherent passage of four short
//! paragraphs whose paragraphs end with those sentences, in order. Data: `creative-writing.jsonl`
//! (100 items converted by `cargo xtask fetch-data` from `tot/data/text/data_100_random_text.txt` of
//! `tree-of-thoughts-llm==0.1.0`), split 20 train / 10 validation / 70 test with [`SPLIT_SEED`].
//!
//! Scoring: the structural check of [`structure`] first (a failure scores 0 with its reason, and the
//! judge is not called); then the LLM coherence judge of [`judge`] (mean of n samples of a 1-10
//! score); score = mean / 10, passed when the mean reaches [`CreativeWritingConfig::pass_threshold`].
//! Trivia Creative Writing ([`trivia`]) and DABench ([`dabench`]) read files the user gives.

pub mod dabench;
pub mod judge;
pub mod prompts;
pub mod structure;
pub mod trivia;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ann_eval::data::read_jsonl;
use ann_eval::{Benchmark, EvalError, Evaluation, Evaluator, Example, Split, Splits};
use ann_llm::ChatModel;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use judge::{CoherenceJudge, JudgeConfig, Verdict, parse_reply};
pub use prompts::ANSWER_FORMAT;
pub use structure::check_structure;

/// File name of the fetched data in the data folder.
pub const DATA_FILE: &str = "creative-writing.jsonl";
/// Seed of the split (the date the data was pinned); also the default seed for Trivia CW.
pub const SPLIT_SEED: u64 = 20_261_124;
/// Train / validation / test sizes of the 100 items.
pub const SPLIT_SIZES: [usize; 3] = [20, 10, 70];

/// One row of `creative-writing.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageItem {
    /// 0-based line of the ToT text file.
    pub id: usize,
    /// The four end sentences, in order.
    pub sentences: [String; 4],
}

/// Read a `creative-writing.jsonl` file (errors name file and line).
pub fn load_items(path: &Path) -> Result<Vec<PassageItem>, EvalError> {
    read_jsonl(path)
}

/// The example of one item: id `creative-writing/<id>`, metadata `sentences`.
pub fn to_example(item: &PassageItem) -> Example {
    let mut metadata = BTreeMap::new();
    metadata.insert("sentences".into(), serde_json::json!(item.sentences));
    Example {
        id: format!("creative-writing/{}", item.id),
        input: prompts::render_sentences(&item.sentences),
        reference: None,
        metadata,
    }
}

/// Scoring settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreativeWritingConfig {
    pub judge: JudgeConfig,
    /// Mean judge score (1-10) from which an example counts as passed (default 7).
    pub pass_threshold: f64,
}

impl Default for CreativeWritingConfig {
    fn default() -> Self {
        Self { judge: JudgeConfig::default(), pass_threshold: 7.0 }
    }
}

/// Structural check plus coherence judge for one passage.
#[derive(Clone)]
pub struct PassageEvaluator {
    judge: CoherenceJudge,
    pass_threshold: f64,
}

impl PassageEvaluator {
    pub fn new(judge_model: Arc<dyn ChatModel>, config: &CreativeWritingConfig) -> Self {
        Self { judge: CoherenceJudge::new(judge_model, config.judge.clone()), pass_threshold: config.pass_threshold }
    }

    /// Score `passage` against its four end sentences.
    pub async fn score(&self, passage: &str, sentences: &[String]) -> Result<Evaluation, EvalError> {
        if let Err(problem) = check_structure(passage, sentences) {
            return Ok(Evaluation::fail(format!("structure: {problem}")));
        }
        let verdict = self.judge.judge(passage).await?;
        let mut feedback = format!("coherence {:.1}/10", verdict.mean);
        if let Some(reason) = &verdict.reason {
            feedback.push_str(&format!(" (judge: {reason})"));
        }
        let garbled = verdict.scores.iter().filter(|s| s.is_none()).count();
        if garbled > 0 {
            feedback.push_str(&format!(
                "; {garbled} of {} judge samples had no parsable score and count as 0",
                verdict.scores.len()
            ));
        }
        Ok(Evaluation {
            score: (verdict.mean / 10.0).clamp(0.0, 1.0),
            passed: verdict.mean >= self.pass_threshold,
            feedback,
        })
    }
}

#[async_trait]
impl Evaluator for PassageEvaluator {
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let sentences: Vec<String> = example
            .metadata
            .get("sentences")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| EvalError::Config(format!("example {} has no `sentences` metadata", example.id)))?;
        self.score(output, &sentences).await
    }
}

/// The Tree-of-Thoughts creative-writing benchmark.
#[derive(Clone)]
pub struct CreativeWriting {
    evaluator: PassageEvaluator,
    splits: Splits,
}

impl CreativeWriting {
    /// Load `creative-writing.jsonl` from the data folder and split it 20/10/70 with [`SPLIT_SEED`].
    pub fn load(
        data_dir: &Path,
        judge_model: Arc<dyn ChatModel>,
        config: &CreativeWritingConfig,
    ) -> Result<Self, EvalError> {
        let items = load_items(&data_dir.join(DATA_FILE))?;
        let examples: Vec<Example> = items.iter().map(to_example).collect();
        Self::from_examples(&examples, &SPLIT_SIZES, SPLIT_SEED, judge_model, config)
    }

    /// Split ready-made examples with `seed` into the given sizes.
    pub fn from_examples(
        examples: &[Example],
        sizes: &[usize; 3],
        seed: u64,
        judge_model: Arc<dyn ChatModel>,
        config: &CreativeWritingConfig,
    ) -> Result<Self, EvalError> {
        Ok(Self {
            evaluator: PassageEvaluator::new(judge_model, config),
            splits: Splits::seeded(examples, sizes, seed)?,
        })
    }
}

#[async_trait]
impl Benchmark for CreativeWriting {
    fn name(&self) -> &str {
        "creative-writing"
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
    /// Passages have no short answer to vote on: aggregators fall back to synthesis.
    fn extract_answer(&self, _output: &str) -> Option<String> {
        None
    }
    fn starting_network(&self) -> &str {
        include_str!("../network.json")
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        self.evaluator.evaluate(example, output).await
    }
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
