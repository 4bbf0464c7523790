//! `ann`'s exit codes, in one place: what each means, and the one function that maps an error to its code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (an endpoint down after retries, a file that cannot be written, ...) |
//! | 2 | bad command line (clap's usage errors) |
//! | 3 | bad input: a config, a data set or a network file that cannot be read or is refused |
//! | 4 | budget stop: a hard limit of `[budget]` ran out; the run directory resumes (`ann resume`) |
//! | 130 | interrupted (Ctrl-C): calls in flight finished, the run resumes (`ann resume`) |

use std::process::ExitCode;

use ann_experiment::reexports::{EvalError, GraphError, LlmError, StopReason, TrainError};
use ann_experiment::{NetworkRejected, RunStopped};

/// Why `ann` ends, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failure,
    Usage,
    BadInput,
    Budget,
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::BadInput => 3,
            Exit::Budget => 4,
            Exit::Interrupted => 130,
        }
    }

    /// A short name (the `status` of `--json` error output).
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Failure => "failure",
            Exit::Usage => "usage",
            Exit::BadInput => "bad_input",
            Exit::Budget => "budget",
            Exit::Interrupted => "interrupted",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// Input the user gave that `ann` refuses (a config, a data set, a network file): wraps the
/// error where the binary reads such input itself, so that [`classify`] finds it by type.
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The wrapped error's own chain follows as causes; the message is its outermost line.
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for BadInput {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Mark an error as bad input.
pub fn bad_input(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(BadInput(e))
}

/// The exit of an error: found by the types in its chain, never by its text. `interrupted` is
/// whether the user pressed Ctrl-C (a stop it caused may surface as any kind of error).
pub fn classify(error: &anyhow::Error, interrupted: bool) -> Exit {
    if interrupted {
        return Exit::Interrupted;
    }
    for cause in error.chain() {
        if let Some(exit) = of_cause(cause) {
            return exit;
        }
    }
    Exit::Failure
}

fn of_stop(reason: &StopReason) -> Option<Exit> {
    match reason {
        StopReason::Interrupted => Some(Exit::Interrupted),
        StopReason::BudgetExhausted { .. } => Some(Exit::Budget),
        _ => None,
    }
}

fn of_llm(e: &LlmError) -> Option<Exit> {
    match e {
        LlmError::Interrupted => Some(Exit::Interrupted),
        e if e.budget_exhausted().is_some() => Some(Exit::Budget),
        _ => None,
    }
}

fn of_cause(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if cause.is::<BadInput>() || cause.is::<NetworkRejected>() {
        return Some(Exit::BadInput);
    }
    if let Some(stopped) = cause.downcast_ref::<RunStopped>() {
        return of_stop(&stopped.reason);
    }
    if let Some(e) = cause.downcast_ref::<TrainError>() {
        return match e {
            TrainError::InvalidNetwork(_) => Some(Exit::BadInput),
            TrainError::BudgetExhausted { .. } => e.budget_stop().as_ref().and_then(of_stop),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<GraphError>() {
        return match e {
            GraphError::Parse { .. } | GraphError::Invalid(_) => Some(Exit::BadInput),
            GraphError::BudgetExhausted { source, .. } => of_llm(source),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<EvalError>() {
        return match e {
            EvalError::MissingData { .. } | EvalError::BadRow { .. } | EvalError::Config(_) => Some(Exit::BadInput),
            EvalError::Judge(source) => of_llm(source),
            _ => None,
        };
    }
    cause.downcast_ref::<LlmError>().and_then(of_llm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [Exit::Ok, Exit::Failure, Exit::Usage, Exit::BadInput, Exit::Budget, Exit::Interrupted];
        let codes: std::collections::BTreeSet<u8> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn errors_map_by_type_through_context() {
        let bad = bad_input(anyhow::anyhow!("x.toml: unknown field")).context("loading");
        assert_eq!(classify(&bad, false), Exit::BadInput);
        let stopped = anyhow::Error::new(RunStopped {
            reason: StopReason::BudgetExhausted { detail: "calls".into() },
            message: "budget".into(),
        });
        assert_eq!(classify(&stopped, false), Exit::Budget);
        let interrupted = anyhow::Error::new(LlmError::Interrupted).context("evaluating test-trained");
        assert_eq!(classify(&interrupted, false), Exit::Interrupted);
        let rejected = anyhow::Error::new(NetworkRejected { benchmark: "math".into(), violations: vec![] });
        assert_eq!(classify(&rejected.context("the starting network"), false), Exit::BadInput);
        let other = anyhow::anyhow!("disk full");
        assert_eq!((classify(&other, false), classify(&other, true)), (Exit::Failure, Exit::Interrupted));
    }
}
