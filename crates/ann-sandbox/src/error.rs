//! Failures of the sandbox itself, and how a run ended (never an error: a program's failure is data).

use std::io;

#[cfg(doc)]
use crate::{BubblewrapMode, Sandbox, SandboxConfig};

/// Failures of the sandbox itself (never of the program it runs).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No interpreter runs inside the sandbox; lists what was tried.
    #[error("no Python interpreter runs in the sandbox: {0}")]
    NoPython(String),
    /// [`BubblewrapMode::Required`] and bubblewrap does not work here.
    #[error("bubblewrap is required but unusable: {0}")]
    Bubblewrap(String),
    /// Neither bubblewrap nor a leased uid would isolate programs, and
    /// [`SandboxConfig::allow_unisolated`] is off: says why and how to fix it.
    #[error(
        "refusing to run untrusted programs without isolation: {0}; without bubblewrap or a leased uid a \
         program runs as this user and can read this process's environment (API keys), signal it and \
         leave processes and files behind. Install bubblewrap (`apt-get install bubblewrap`), run as \
         root with `isolate_uid` on, or set `SandboxConfig::allow_unisolated` to accept the risk"
    )]
    Unisolated(String),
    /// An input file's name cannot be used in the working directory.
    #[error("unusable input file name {0}")]
    InputFile(String),
    /// Every uid of the range is leased.
    #[error("no free sandbox uid in {start}..{end}: all are leased")]
    NoFreeUid { start: u32, end: u32 },
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The program (or bwrap on its behalf) exited with this status.
    Exited(i32),
    /// The program was killed by this signal (e.g. `SIGXCPU`, `SIGKILL` at the CPU hard limit).
    Signaled(i32),
    /// The wall-clock timeout passed; everything was killed.
    TimedOut,
    /// A stream passed [`SandboxConfig::max_output_bytes`]; everything was killed.
    OutputLimit,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub termination: Termination,
    /// Captured stdout (lossy UTF-8, at most `max_output_bytes`).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8, at most `max_output_bytes`).
    pub stderr: String,
    /// The runner reported, with this run's secret, that the program's code ran to its end (for a
    /// test program: `check(...)`, its last statement, returned). Printed text, the exit status and
    /// anything the program can read cannot set it; see the module documentation for its limits.
    pub ran_to_end: bool,
    /// The process group (= session) id of the run; no process of it exists after [`Sandbox::run`].
    pub pgid: u32,
    /// The leased uid the program ran under, if any; no process of it exists after [`Sandbox::run`].
    pub uid: Option<u32>,
}

impl RunOutput {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.termination == Termination::Exited(0)
    }
}
