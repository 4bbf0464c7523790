//! The executor: set-up (interpreter, bubblewrap, uid pool, probe) and one run of a program.

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::cleanup::Cleanup;
use crate::confine::{ChildHook, Limits, install_child_hook};
use crate::error::io_err;
use crate::runner::{ChildFds, RUNNER, VERDICT_CAP, above_stdio, join_reader, read_capped, run_secret};
use crate::uid::UidPool;
use crate::{BubblewrapMode, PROGRAM_FILE, RunOutput, SandboxConfig, SandboxError, Termination, tail};

/// A file a program finds, read-only, in its working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Its name there: a plain file name (no `/`, not hidden, not the program's own).
    pub name: String,
    /// Where it is read from.
    pub source: PathBuf,
}

impl InputFile {
    /// The file at `source`, under its own file name.
    pub fn from_path(source: impl Into<PathBuf>) -> Self {
        let source = source.into();
        let name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self { name, source }
    }

    fn check(&self) -> Result<(), SandboxError> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > 255
            || n.contains('/')
            || n.contains('\0')
            || n.starts_with('.')
            || n == PROGRAM_FILE
        {
            return Err(SandboxError::InputFile(format!(
                "{n:?} (from {}) is not a plain file name other than {PROGRAM_FILE}",
                self.source.display()
            )));
        }
        Ok(())
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
        self.run_with_files(source, &[]).await
    }

    /// [`Sandbox::run`] with `files` copied, read-only, into the program's working directory (the
    /// copies are the program's to read: with bubblewrap each is a read-only mount, under a leased
    /// uid it belongs to this process with mode `0444`; the originals are never reachable).
    pub async fn run_with_files(&self, source: &str, files: &[InputFile]) -> Result<RunOutput, SandboxError> {
        for file in files {
            file.check()?;
        }
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let dir = tempfile::Builder::new()
            .prefix("ann-sandbox-")
            .tempdir_in(&self.config.scratch_dir)
            .map_err(io_err(format!("creating a temporary directory in {}", self.config.scratch_dir.display())))?;
        let program = dir.path().join(PROGRAM_FILE);
        std::fs::write(&program, source).map_err(io_err(format!("writing {}", program.display())))?;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644))
            .map_err(io_err("making the program readable"))?;
        for file in files {
            let copy = dir.path().join(&file.name);
            std::fs::copy(&file.source, &copy)
                .map_err(io_err(format!("copying the input file {}", file.source.display())))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444))
                .map_err(io_err(format!("making {} read-only", copy.display())))?;
        }
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
        let mut command = self.command(dir.path(), uid, &child_fds, files)?;
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

    fn command(
        &self,
        dir: &Path,
        uid: Option<u32>,
        fds: &ChildFds,
        files: &[InputFile],
    ) -> Result<tokio::process::Command, SandboxError> {
        let mut command = match &self.bwrap {
            Some(bwrap) => {
                // Every writable place is a size-limited tmpfs of this namespace: the working
                // directory (over the host's, whose program and input copies are mounted read-only
                // inside: bind sources are host paths), /tmp and /dev/shm; /dev itself is
                // remounted read-only. Nothing the program writes reaches the disk or outlives it.
                let size = self.config.scratch_bytes.max(4096).to_string();
                let mut c = tokio::process::Command::new(bwrap);
                c.args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"])
                    .args(["--dev", "/dev", "--proc", "/proc"])
                    .args(["--size", &size, "--tmpfs", "/tmp"])
                    .args(["--size", &size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"])
                    .args(["--size", &size, "--tmpfs"])
                    .arg(dir);
                for name in std::iter::once(PROGRAM_FILE).chain(files.iter().map(|f| f.name.as_str())) {
                    let path = dir.join(name);
                    c.arg("--ro-bind").arg(&path).arg(&path);
                }
                c.arg("--chdir").arg(dir).arg("--").arg(&self.python);
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

/// The wall-clock limit of the start-up probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

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
