//! Experiments: typed config, model-stack wiring, train/validate/test runs, run directories, reports.
//!
//! The only crate that joins the agent graph and training (`ann-graph`, `ann-textgrad`) with the
//! benchmarks (`ann-eval`, `ann-bench-*`). A run:
//! 1. parses an [`ExperimentConfig`] (TOML, unknown keys rejected by name);
//! 2. stacks each of its models (the worker, an `[optimizer]`, the `[models.NAME]` profiles)
//!    Metered(Cached(Budgeted(backend))) over one budget and cache ([`RunModels`]);
//! 3. loads the benchmark, cuts its splits, validates its starting network against its answer format;
//! 4. trains with [`ann_textgrad::Trainer`] in `runs/<name>-<UTC time>/` (checkpoint, journal, traces);
//! 5. evaluates the starting and the trained network on validation and test, then the configured
//!    [`Baseline`]s on test, and writes `report.json` and `report.md` with seeded bootstrap
//!    intervals, the paired comparisons and what each part cost.
//!
//! With `network = "construct"` the starting network comes from team construction instead
//! ([`construct`], recorded in the run's `construction.json`). After training, [`adapt`] builds
//! networks for new tasks with trained networks as a library (and [`specialise`] one network per
//! slice of a benchmark, with a router in front).
//!
//! [`resume`] finishes an interrupted run from its directory. The caller passes the clock and the
//! backend source ([`RunOptions`]); nothing here reads the environment or downloads anything.

pub mod adapt;
pub mod answer_format;
pub mod baselines;
pub mod benchmarks;
pub mod config;
pub mod construct;
pub mod evaluation;
pub mod library;
pub mod models;
pub mod overrides;
pub mod profiles;
pub mod progress;
pub mod prompts;
pub mod report;
pub mod run;
pub mod specialise;
pub mod stack;
pub mod tools;
pub mod unsaved;

pub use adapt::{AdaptTarget, Provenance, adapt_to_file};
/// What the forwards of evaluated examples cost (re-exported from `ann-textgrad`).
pub use ann_textgrad::forward_cost;
pub use baselines::Baseline;
pub use benchmarks::{BENCHMARKS, BUILTIN_BENCHMARKS, Subset, USER_DATA_BENCHMARKS, load_benchmark, user_data_env};
pub use config::{Backend, ExperimentConfig, ModelOverride};
pub use construct::{ConstructSection, ConstructionRecord, StartNetwork, construct_to_file};
pub use evaluation::{Evaluated, Record};
pub use models::{ModelCost, RunModels};
pub use progress::{Phase, RunObserver};
pub use report::{BaselineScores, Report, RunCosts, SplitScores};
pub use run::{
    Clock, EvalOutcome, NetworkRejected, Progress, RunOptions, RunOutcome, RunStopped, check_network,
    evaluate_baseline, evaluate_network, folder_stamp, prepare, read_ledger, resume, split_examples, start,
};
pub use stack::{BackendSource, ModelStack, StackParts, build_stack, open_backend, open_model};

/// What the `ann` binary needs from the layers below, so that it depends on this crate alone.
pub mod reexports {
    pub use ann_eval::stats::Summary;
    pub use ann_eval::{EvalError, Split};
    pub use ann_graph::Network;
    pub use ann_graph::{GraphError, Trace};
    pub use ann_llm::{LlmError, Meter, Totals};
    pub use ann_llm_cache::{CassetteEntry, ResponseCache};
    pub use ann_llm_local::{MODEL_ENV, pinned_model_path};
    pub use ann_llm_openai::OpenAiConfig;
    pub use ann_textgrad::{Checkpoint, JournalEvent, StopReason, TrainError};
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
