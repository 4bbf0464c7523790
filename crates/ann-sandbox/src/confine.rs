//! What the forked child does before exec: a new session, rlimits, inherited descriptors.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt as _;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::SandboxConfig;

/// Rlimits for the child, computed before the fork (never above the current hard limits).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) cpu: (u64, u64),
    pub(crate) address_space: u64,
    pub(crate) processes: Option<u64>,
    pub(crate) file_size: u64,
    pub(crate) open_files: u64,
}

impl Limits {
    pub(crate) fn new(config: &SandboxConfig, leased_uid: bool) -> io::Result<Self> {
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
    pub(crate) fn apply(&self) -> io::Result<()> {
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

pub(crate) enum ChildHook {
    /// Keep the `inherit` descriptors open across exec, new session and rlimits, then exec the program.
    Confine { limits: Limits, inherit: [RawFd; 2] },
    /// `kill(-1, SIGKILL)` as the command's uid, then `_exit(0)` without exec.
    KillAllThenExit,
}

#[allow(unsafe_code)]
pub(crate) fn install_child_hook(command: &mut std::process::Command, hook: ChildHook) {
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
