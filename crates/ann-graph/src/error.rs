//! The crate's error type: bad files, invalid networks, exhausted budgets, layers with no output.

use std::path::PathBuf;

use ann_llm::LlmError;

use crate::Violation;

/// Why a graph operation failed. Model output is never an error: an unparsable routing answer or
/// judge verdict falls back to a default and is recorded in the trace.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A network file or text could not be parsed; `path` is the location inside the document.
    #[error("{format} parse error at `{path}`: {message}")]
    Parse { format: &'static str, path: String, message: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The network breaks invariants of the format gate (all of them are listed).
    #[error("invalid network: {}", join_violations(.0))]
    Invalid(Vec<Violation>),
    /// The budget ran out: the run must stop (with a checkpoint). Never swallowed by fallbacks.
    #[error("budget exhausted during {stage}: {source}")]
    BudgetExhausted {
        /// Where: ``layer `solve` `` or `team construction`.
        stage: String,
        #[source]
        source: LlmError,
    },
    /// Every agent call the layer's aggregator needed failed after the model's retries; the first
    /// error is kept. The example fails, the run goes on.
    #[error("layer `{layer}` produced no output: {source}")]
    LayerFailed {
        layer: String,
        #[source]
        source: LlmError,
    },
}

impl GraphError {
    /// Whether this error must stop the run (an exhausted budget).
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, GraphError::BudgetExhausted { .. })
    }
}

fn join_violations(v: &[Violation]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
}
