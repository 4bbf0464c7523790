//! Experiments: typed config, model-stack wiring, train/validate/test runs, run directories, reports.
//!
//! The only crate that joins the agent graph and training (`ann-graph`, `ann-textgrad`) with the
//! benchmarks (`ann-eval`, `ann-bench-*`). A run:
//! 1. parses an [`ExperimentConfig`] (TOML, unknown keys rejected by name);
//! 2. stacks the model Metered(Cached(Budgeted(backend))) ([`build_stack`]);
//! 3. loads the benchmark, cuts its splits, validates its starting network against its answer format;
//! 4. trains with [`ann_textgrad::Trainer`] in `runs/<name>-<UTC time>/` (checkpoint, journal, traces);
//! 5. evaluates the starting and the trained network on validation and test, then the configured
//!    [`Baseline`]s on test, and writes `report.json` and `report.md` with seeded bootstrap
//!    intervals, the paired comparisons and what each part cost.
//!
//! [`resume`] finishes an interrupted run from its directory. The caller passes the clock and the
//! backend source ([`RunOptions`]); nothing here reads the environment or downloads anything.

pub mod answer_format;
pub mod baselines;
pub mod benchmarks;
pub mod config;
pub mod overrides;
pub mod prompts;
pub mod report;
pub mod run;
pub mod stack;

/// What the forwards of evaluated examples cost (re-exported from `ann-textgrad`).
pub use ann_textgrad::forward_cost;
pub use baselines::Baseline;
pub use benchmarks::{BENCHMARKS, Subset, load_benchmark};
pub use config::{Backend, ExperimentConfig};
pub use report::{BaselineScores, Report, RunCosts, SplitScores};
pub use run::{
    Clock, EvalOutcome, Progress, RunOptions, RunOutcome, check_network, evaluate_baseline, evaluate_network,
    folder_stamp, prepare, resume, split_examples, start,
};
pub use stack::{BackendSource, ModelStack, build_stack, open_backend};

/// What the `ann` binary needs from the layers below, so that it depends on this crate alone.
pub mod reexports {
    pub use ann_eval::Split;
    pub use ann_graph::Network;
    pub use ann_llm_local::{MODEL_ENV, pinned_model_path};
    pub use ann_llm_openai::OpenAiConfig;
}
