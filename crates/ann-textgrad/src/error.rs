//! The crate's error type: bad start networks, run-directory trouble, failed evaluations.

use std::path::PathBuf;

use ann_graph::{GraphError, Violation};

/// Why training could not go on. Model output is never an error: an unparsable gradient falls
/// back, a malformed patch is a rejected step with its reason.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The starting network breaks invariants of the format gate.
    #[error("the starting network is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidNetwork(Vec<Violation>),
    /// Reading or writing the run directory failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint or journal is unreadable or inconsistent.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The run directory belongs to a run with other data or another seed.
    #[error("cannot resume: {0}")]
    ResumeMismatch(String),
    /// The objective's infrastructure failed.
    #[error("{0}")]
    Objective(String),
    /// The forward pass failed for the whole batch (not one example).
    #[error(transparent)]
    Graph(GraphError),
    /// The hard budget ran out. [`crate::Trainer::train`] turns it into a stopped outcome; other
    /// functions return it.
    #[error("budget exhausted: {0}")]
    BudgetExhausted(String),
}
