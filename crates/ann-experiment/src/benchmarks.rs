//! Loading a benchmark by name, and cutting its splits to the sizes an experiment asks for.

use std::path::Path;
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_llm::SharedModel;
use anyhow::{Context, bail};
use async_trait::async_trait;

use crate::config::BenchmarkSection;

/// The benchmark names [`load_benchmark`] knows.
pub const BENCHMARKS: [&str; 5] = ["mmlu-ml", "math", "humaneval", "creative-writing", "answer-format"];

/// Load the benchmark `section.name` from `data_dir` (already resolved). `judge` is the model of
/// LLM-judged benchmarks (creative writing), asked for `judge_model` (the name that prices and
/// budgets its calls). The splits are cut to the section's sizes.
pub async fn load_benchmark(
    section: &BenchmarkSection,
    data_dir: &Path,
    judge: SharedModel,
    judge_model: &str,
) -> anyhow::Result<Arc<dyn Benchmark>> {
    let hint = || format!("loading benchmark {} from {}", section.name, data_dir.display());
    let full: Arc<dyn Benchmark> = match section.name.as_str() {
        "mmlu-ml" => {
            let seed = section.seed.unwrap_or(ann_bench_mmlu_ml::SPLIT_SEED);
            let path = data_dir.join(ann_bench_mmlu_ml::DATA_FILE);
            Arc::new(ann_bench_mmlu_ml::MmluMl::from_file(&path, seed).map_err(fetch_hint).with_context(hint)?)
        }
        "math" => {
            let defaults = ann_bench_math::MathConfig::default();
            let config = ann_bench_math::MathConfig {
                train_size: section.train.unwrap_or(defaults.train_size),
                validation_size: section.validation.unwrap_or(defaults.validation_size),
                test_size: section.test,
                seed: section.seed.unwrap_or(defaults.seed),
                ..defaults
            };
            Arc::new(ann_bench_math::MathBenchmark::load(data_dir, &config).map_err(fetch_hint).with_context(hint)?)
        }
        "humaneval" => {
            let config = ann_bench_humaneval::HumanEvalConfig {
                seed: section.seed.unwrap_or(ann_bench_humaneval::SPLIT_SEED),
                ..Default::default()
            };
            let path = data_dir.join("humaneval.jsonl");
            Arc::new(ann_bench_humaneval::HumanEval::load(&path, &config).await.map_err(fetch_hint).with_context(hint)?)
        }
        "creative-writing" => {
            let mut config = ann_bench_creative_writing::CreativeWritingConfig::default();
            config.judge.model = judge_model.to_string();
            Arc::new(
                ann_bench_creative_writing::CreativeWriting::load(data_dir, judge, &config)
                    .map_err(fetch_hint)
                    .with_context(hint)?,
            )
        }
        // The project's own tiny task, built in (no data to fetch).
        "answer-format" => Arc::new(crate::answer_format::AnswerFormat::new()),
        other => bail!("unknown benchmark {other:?}; known: {}", BENCHMARKS.join(", ")),
    };
    Ok(Arc::new(Subset::new(full, [section.train, section.validation, section.test])))
}

fn fetch_hint(e: EvalError) -> anyhow::Error {
    match e {
        EvalError::MissingData { .. } => anyhow::Error::new(e).context("run `cargo xtask fetch-data` first"),
        other => other.into(),
    }
}

/// A benchmark with each split cut to its first `n` examples (`None`: all).
pub struct Subset {
    inner: Arc<dyn Benchmark>,
    splits: [Vec<Example>; 3],
}

impl Subset {
    pub fn new(inner: Arc<dyn Benchmark>, sizes: [Option<usize>; 3]) -> Self {
        let cut = |split: Split, n: Option<usize>| {
            let all = inner.examples(split);
            all[..n.unwrap_or(all.len()).min(all.len())].to_vec()
        };
        let splits = [cut(Split::Train, sizes[0]), cut(Split::Validation, sizes[1]), cut(Split::Test, sizes[2])];
        Self { inner, splits }
    }
}

#[async_trait]
impl Benchmark for Subset {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn task_description(&self) -> &str {
        self.inner.task_description()
    }
    fn answer_format(&self) -> &str {
        self.inner.answer_format()
    }
    fn examples(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.splits[0],
            Split::Validation => &self.splits[1],
            Split::Test => &self.splits[2],
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        self.inner.extract_answer(output)
    }
    fn starting_network(&self) -> &str {
        self.inner.starting_network()
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        self.inner.evaluate(example, output).await
    }
}
