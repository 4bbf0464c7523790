//! The crate's error type: bad files, invalid networks, exhausted budgets, infrastructure failures,
//! layers with no output.

use std::path::PathBuf;

use ann_llm::LlmError;

use crate::{Trace, Violation};

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
    /// The forward pass started no call after it and let the calls already sent finish.
    #[error("budget exhausted during {stage}: {source}")]
    BudgetExhausted {
        /// Where: ``layer `solve` `` or `team construction`.
        stage: String,
        #[source]
        source: LlmError,
        /// In a forward pass, its trace up to the stop (see [`GraphError::trace`]); `None`
        /// elsewhere (team construction).
        trace: Option<Box<Trace>>,
    },
    /// A model call failed for a reason outside the network (an infrastructure failure:
    /// [`LlmError::is_infrastructure`]). Never scored: under the default
    /// [`InfrastructurePolicy::Stop`](crate::InfrastructurePolicy::Stop) the pass (or batch)
    /// started no call after it and let the calls already sent finish, as for an exhausted budget;
    /// under `Exclude` only this input ended.
    #[error("infrastructure failure during {stage}: {source}")]
    InfrastructureFailure {
        /// Where: ``layer `solve` `` or `team construction`.
        stage: String,
        #[source]
        source: LlmError,
        /// In a forward pass, its trace up to the failure; `None` elsewhere.
        trace: Option<Box<Trace>>,
    },
    /// Every agent call the layer's aggregator needed failed for a reason that is not the
    /// infrastructure's (a prompt past the context window); the first error is kept. The example
    /// fails (scored as data), the run goes on.
    #[error("layer `{layer}` produced no output: {source}")]
    LayerFailed {
        layer: String,
        #[source]
        source: LlmError,
        /// The forward pass's trace up to and including the failed layer (see [`GraphError::trace`]).
        trace: Box<Trace>,
    },
}

impl GraphError {
    /// Whether this error must stop the run (an exhausted budget).
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, GraphError::BudgetExhausted { .. })
    }

    /// Whether this error is an infrastructure failure (see [`GraphError::InfrastructureFailure`]).
    pub fn is_infrastructure_failure(&self) -> bool {
        matches!(self, GraphError::InfrastructureFailure { .. })
    }

    /// The partial trace of a failed forward pass: every layer that finished, then the layer that
    /// failed (when it made any call) with its calls, its [`LayerTrace::error`](crate::LayerTrace::error)
    /// and an empty output. `None` for errors outside a forward pass.
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            GraphError::BudgetExhausted { trace, .. } | GraphError::InfrastructureFailure { trace, .. } => {
                trace.as_deref()
            }
            GraphError::LayerFailed { trace, .. } => Some(trace),
            _ => None,
        }
    }

    /// [`GraphError::trace`], by value.
    pub fn into_trace(self) -> Option<Trace> {
        match self {
            GraphError::BudgetExhausted { trace, .. } | GraphError::InfrastructureFailure { trace, .. } => {
                trace.map(|t| *t)
            }
            GraphError::LayerFailed { trace, .. } => Some(*trace),
            _ => None,
        }
    }

    /// Attach the forward pass's partial trace to a layer failure or a budget stop.
    pub(crate) fn with_trace(mut self, partial: Trace) -> Self {
        match &mut self {
            GraphError::BudgetExhausted { trace, .. } | GraphError::InfrastructureFailure { trace, .. } => {
                *trace = Some(Box::new(partial))
            }
            GraphError::LayerFailed { trace, .. } => **trace = partial,
            _ => {}
        }
        self
    }
}

fn join_violations(v: &[Violation]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
}
