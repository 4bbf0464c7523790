//! Loading a benchmark by name, and cutting its splits to the sizes an experiment asks for.
//!
//! The four benchmarks of [`BENCHMARKS`] read `cargo xtask fetch-data`'s files from the data folder;
//! those of [`USER_DATA_BENCHMARKS`] read the user's own copy, named by `[benchmark] data_path`
//! (the `ann` binary fills it from the environment variable of [`user_data_env`] when unset).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_llm::SharedModel;
use anyhow::{Context, bail};
use async_trait::async_trait;

use crate::config::{BenchmarkSection, resolve};

/// The benchmarks whose data `cargo xtask fetch-data` fetches (the paper reproduction's).
pub const BENCHMARKS: [&str; 4] = ["mmlu-ml", "math", "humaneval", "creative-writing"];

/// The benchmarks built into the project (no data to fetch): `answer-format`, its own 16 yes/no
/// questions.
pub const BUILTIN_BENCHMARKS: [&str; 1] = ["answer-format"];

/// The benchmarks read from the user's own files: Trivia Creative Writing (a JSONL file) and
/// InfiAgent-DABench (a folder: questions, labels, tables).
pub const USER_DATA_BENCHMARKS: [&str; 2] = ["trivia-cw", "dabench"];

/// The environment variable the `ann` binary reads a user-data benchmark's `data_path` from
/// when the config sets none: `ANN_TRIVIA_CW_PATH` (the file), `ANN_DABENCH_DIR` (the folder).
pub fn user_data_env(benchmark: &str) -> Option<&'static str> {
    match benchmark {
        "trivia-cw" => Some("ANN_TRIVIA_CW_PATH"),
        "dabench" => Some("ANN_DABENCH_DIR"),
        _ => None,
    }
}

impl BenchmarkSection {
    /// The section with `data_path` resolved against `base`.
    pub fn resolved(&self, base: &Path) -> Self {
        Self { data_path: self.data_path.as_deref().map(|p| resolve(base, p)), ..self.clone() }
    }

    /// The user's data of a user-data benchmark, or an error naming the key and the variable.
    fn user_data(&self) -> anyhow::Result<&PathBuf> {
        self.data_path.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "benchmark {} reads the user's own data: set `benchmark.data_path` in the config or the \
                 environment variable {} ({})",
                self.name,
                user_data_env(&self.name).unwrap_or("-"),
                match self.name.as_str() {
                    "trivia-cw" => "the Trivia Creative Writing JSONL file, e.g. trivia_creative_writing_100_n_5.jsonl",
                    _ => "the DABench folder with da-dev-questions.jsonl, da-dev-labels.jsonl and da-dev-tables/",
                }
            )
        })
    }

    /// Split sizes for a file of `n` examples: the section's, else 20% train, 10% validation,
    /// the rest test; each cut to what the file has left (as [`Subset`] cuts).
    fn sizes_for(&self, n: usize) -> [usize; 3] {
        let train = self.train.unwrap_or(n / 5).min(n);
        let validation = self.validation.unwrap_or(n / 10).min(n - train);
        let rest = n - train - validation;
        [train, validation, self.test.unwrap_or(rest).min(rest)]
    }
}

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
        "trivia-cw" => {
            let path = section.user_data()?;
            let rows = ann_bench_creative_writing::trivia::load_rows(path).with_context(hint)?;
            let examples: Vec<_> =
                rows.iter().enumerate().map(|(i, r)| ann_bench_creative_writing::trivia::to_example(i, r)).collect();
            let seed = section.seed.unwrap_or(ann_bench_creative_writing::SPLIT_SEED);
            let sizes = section.sizes_for(examples.len());
            Arc::new(
                ann_bench_creative_writing::trivia::TriviaCreativeWriting::from_examples(&examples, &sizes, seed)
                    .with_context(|| format!("splitting {}", path.display()))?,
            )
        }
        "dabench" => {
            let dir = section.user_data()?;
            let examples = ann_bench_creative_writing::dabench::load_dir(dir).with_context(hint)?;
            let seed = section.seed.unwrap_or(ann_bench_creative_writing::SPLIT_SEED);
            let sizes = section.sizes_for(examples.len());
            Arc::new(
                ann_bench_creative_writing::dabench::DaBench::from_examples(&examples, &sizes, seed)
                    .with_context(|| format!("splitting {}", dir.display()))?,
            )
        }
        other => {
            bail!(
                "unknown benchmark {other:?}; known: {}, {}, {}",
                BENCHMARKS.join(", "),
                BUILTIN_BENCHMARKS.join(", "),
                USER_DATA_BENCHMARKS.join(", ")
            )
        }
    };
    Ok(Arc::new(Subset::new(full, [section.train, section.validation, section.test]).with_tools(section.tools)?))
}

fn fetch_hint(e: EvalError) -> anyhow::Error {
    match e {
        EvalError::MissingData { .. } => anyhow::Error::new(e).context(
            "run `cargo xtask fetch-data` in the agentic-nn checkout first, or set ANN_CACHE_DIR to the folder holding \
             `data/` (a checkout's `.cache`)",
        ),
        other => other.into(),
    }
}

/// A benchmark with each split cut to its first `n` examples (`None`: all), and its starting
/// network chosen by `[benchmark] tools` ([`Subset::with_tools`]).
pub struct Subset {
    inner: Arc<dyn Benchmark>,
    /// How many of each split's examples are kept (the first ones): the examples are not copied.
    splits: [usize; 3],
    /// The starting network when `tools` chose another than the benchmark's own.
    network: Option<String>,
}

impl Subset {
    pub fn new(inner: Arc<dyn Benchmark>, sizes: [Option<usize>; 3]) -> Self {
        let cut = |split: Split, n: Option<usize>| {
            let all = inner.examples(split).len();
            n.unwrap_or(all).min(all)
        };
        let splits = [cut(Split::Train, sizes[0]), cut(Split::Validation, sizes[1]), cut(Split::Test, sizes[2])];
        Self { inner, splits, network: None }
    }

    /// Choose the starting network by `[benchmark] tools`: `None` keeps the benchmark's own,
    /// `Some(true)` takes its network with tools (an error naming the key when it has none),
    /// `Some(false)` its own with every agent's tools taken away.
    pub fn with_tools(mut self, tools: Option<bool>) -> anyhow::Result<Self> {
        let name = self.inner.name().to_string();
        self.network = match tools {
            None => None,
            Some(true) => Some(
                self.inner
                    .starting_network_with_tools()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "`benchmark.tools = true`: benchmark {name} has no starting network with tools \
                             (humaneval, math and dabench have one)"
                        )
                    })?
                    .to_string(),
            ),
            Some(false) => {
                let mut net = ann_graph::Network::from_json(self.inner.starting_network())
                    .with_context(|| format!("the starting network of benchmark {name}"))?;
                for agent in net.layers.iter_mut().flat_map(|l| l.agents.iter_mut()) {
                    agent.tools.clear();
                    agent.max_tool_steps = None;
                }
                Some(net.to_json())
            }
        };
        Ok(self)
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
            Split::Train => &self.inner.examples(split)[..self.splits[0]],
            Split::Validation => &self.inner.examples(split)[..self.splits[1]],
            Split::Test => &self.inner.examples(split)[..self.splits[2]],
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        self.inner.extract_answer(output)
    }
    fn starting_network(&self) -> &str {
        self.network.as_deref().unwrap_or_else(|| self.inner.starting_network())
    }
    fn starting_network_with_tools(&self) -> Option<&str> {
        self.inner.starting_network_with_tools()
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        self.inner.evaluate(example, output).await
    }
}
