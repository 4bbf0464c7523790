//! The crate's error type: bad start networks, run-directory trouble, failed evaluations, a budget
//! stop, an infrastructure failure.

use std::path::PathBuf;

use ann_eval::EvalError;
use ann_graph::{GraphError, Violation};
use ann_llm::LlmError;

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
    /// The checkpoint or journal is unreadable (`source`: the parse error) or inconsistent.
    #[error("checkpoint: {what}{}", .source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Checkpoint {
        /// The file (and line) and what is wrong with it.
        what: String,
        source: Option<serde_json::Error>,
    },
    /// The run directory belongs to a run with other data or another seed.
    #[error("cannot resume: {0}")]
    ResumeMismatch(String),
    /// The evaluator's infrastructure failed (a judge call, a sandbox, missing data).
    #[error(transparent)]
    Evaluation(EvalError),
    /// The forward pass failed for the whole batch (not one example).
    #[error(transparent)]
    Graph(GraphError),
    /// A model call failed for a reason outside the network (an infrastructure failure:
    /// [`LlmError::is_infrastructure`]): never scored. The run stops as for an exhausted budget
    /// (no call of the batch starts after it, the calls in flight finish), but as an error, so
    /// that a caller cannot mistake it for a result: the last checkpoint stays resumable once the
    /// infrastructure works again.
    #[error("infrastructure failure{}: {source}", .stage.as_deref().map(|s| format!(" during {s}")).unwrap_or_default())]
    InfrastructureFailure {
        /// Where the forward pass stopped (``layer `solve` ``), when it was a forward call.
        stage: Option<String>,
        #[source]
        source: LlmError,
    },
    /// The hard budget ran out. [`crate::Trainer::train`] turns it into a stopped outcome; other
    /// functions return it.
    #[error("budget exhausted: {}", budget_detail(.stage.as_deref(), .source))]
    BudgetExhausted {
        /// Where the forward pass stopped (``layer `solve` ``), when it was a forward call.
        stage: Option<String>,
        source: LlmError,
    },
}

fn budget_detail(stage: Option<&str>, source: &LlmError) -> String {
    let why = source.budget_exhausted().map_or_else(|| source.to_string(), str::to_owned);
    match stage {
        Some(stage) => format!("{stage}: {why}"),
        None => why,
    }
}

impl TrainError {
    /// What ran out, when this is a budget stop (the detail of [`crate::StopReason::BudgetExhausted`]).
    pub fn budget_detail(&self) -> Option<String> {
        match self {
            Self::BudgetExhausted { stage, source } => Some(budget_detail(stage.as_deref(), source)),
            _ => None,
        }
    }

    /// How training stops for this error, when it is a budget stop: [`crate::StopReason::Interrupted`]
    /// for the user's interrupt, else [`crate::StopReason::BudgetExhausted`] with what ran out.
    pub fn budget_stop(&self) -> Option<crate::StopReason> {
        match self {
            Self::BudgetExhausted { source, .. } if source.is_interrupted() => Some(crate::StopReason::Interrupted),
            Self::BudgetExhausted { stage, source } => {
                Some(crate::StopReason::BudgetExhausted { detail: budget_detail(stage.as_deref(), source) })
            }
            _ => None,
        }
    }

    /// A model call's error that stops training: a budget stop, or an infrastructure failure
    /// (whatever the policy: an optimiser call has no example to leave out); `None` when the call
    /// failed for the network's own reason, which is not an error of training (its caller falls back).
    pub(crate) fn stop_of(e: &LlmError) -> Option<Self> {
        if e.budget_exhausted().is_some() {
            Some(Self::BudgetExhausted { stage: None, source: e.clone() })
        } else if e.is_infrastructure() {
            Some(Self::InfrastructureFailure { stage: None, source: e.clone() })
        } else {
            None
        }
    }

    /// Whether this is an infrastructure failure (see [`TrainError::InfrastructureFailure`]).
    pub fn is_infrastructure_failure(&self) -> bool {
        matches!(self, Self::InfrastructureFailure { .. })
    }
}

impl From<GraphError> for TrainError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::BudgetExhausted { stage, source, .. } => Self::BudgetExhausted { stage: Some(stage), source },
            GraphError::InfrastructureFailure { stage, source, .. } => {
                Self::InfrastructureFailure { stage: Some(stage), source }
            }
            other => Self::Graph(other),
        }
    }
}

impl From<EvalError> for TrainError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::Judge(llm) if llm.budget_exhausted().is_some() => {
                Self::BudgetExhausted { stage: None, source: llm }
            }
            other => Self::Evaluation(other),
        }
    }
}
