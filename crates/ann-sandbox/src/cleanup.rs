//! After a run: kill everything it started, reap orphans, sweep a leased uid's files.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::confine::{ChildHook, install_child_hook};
use crate::uid::UidLease;

/// Kills what a run left: the process group (= session), then every process of the leased uid;
/// reaps the orphans re-parented to us; sweeps the uid's files from world-writable folders; releases
/// the lease. [`Cleanup::finish`] does it and waits until no process is left; `drop` (a cancelled
/// run) does it once without waiting.
pub(crate) struct Cleanup {
    pub(crate) pgid: i32,
    pub(crate) lease: Option<UidLease>,
    pub(crate) python: PathBuf,
    pub(crate) sweep_dirs: Vec<PathBuf>,
    pub(crate) finished: bool,
}

impl Cleanup {
    pub(crate) fn kill(&self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        if let Some(lease) = &self.lease {
            kill_all_of_uid(lease.uid, &self.python);
        }
    }

    /// Processes of the run still in the process table (zombies included), reaping the zombies
    /// that are our children. The direct child (pid = pgid) is tokio's to reap and is skipped.
    pub(crate) fn reap(&self) -> usize {
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

    pub(crate) async fn finish(&mut self) {
        // A fork bomb may still be forking while we kill: keep killing until none is left (with
        // bubblewrap the end of the pid namespace takes them all at once).
        for _ in 0..300 {
            if self.reap() == 0 {
                break;
            }
            self.kill();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.sweep();
        self.finished = true;
    }

    pub(crate) fn sweep(&self) {
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

pub(crate) struct ProcessInfo {
    pub(crate) pid: i32,
    pub(crate) ppid: i32,
    pub(crate) zombie: bool,
}

/// Processes in session or group `pgid`, or (with `uid`) owned by `uid`, from /proc.
pub(crate) fn processes_of(pgid: i32, uid: Option<u32>) -> Vec<ProcessInfo> {
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
pub(crate) fn kill_all_of_uid(uid: u32, any_executable: &Path) {
    let mut command = std::process::Command::new(any_executable);
    command.uid(uid).gid(uid).env_clear().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    install_child_hook(&mut command, ChildHook::KillAllThenExit);
    if let Ok(mut helper) = command.spawn() {
        let _ = helper.wait();
    }
}

pub(crate) fn sweep_uid_files(uid: u32, dirs: &[PathBuf]) {
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
