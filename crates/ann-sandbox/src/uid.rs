//! Leased uids: one unprivileged uid per run, leased with a lock file.

use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::SandboxError;
use crate::cleanup::kill_all_of_uid;
use crate::error::io_err;

/// The range of uids for sandboxed programs; a uid is leased by holding an exclusive lock on its
/// lock file, which works across threads and processes.
#[derive(Debug, Clone)]
pub(crate) struct UidPool {
    pub(crate) start: u32,
    pub(crate) count: u32,
    pub(crate) lock_dir: PathBuf,
    pub(crate) next: Arc<AtomicU32>,
}

pub(crate) struct UidLease {
    pub(crate) uid: u32,
    pub(crate) _lock: File,
}

impl UidPool {
    pub(crate) fn new(lock_dir: &Path, (start, count): (u32, u32)) -> Result<Self, SandboxError> {
        let lock_dir = lock_dir.to_path_buf();
        std::fs::create_dir_all(&lock_dir).map_err(io_err(format!("creating {}", lock_dir.display())))?;
        std::fs::set_permissions(&lock_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("protecting {}", lock_dir.display())))?;
        Ok(Self { start, count: count.max(1), lock_dir, next: Arc::new(AtomicU32::new(std::process::id())) })
    }

    pub(crate) fn lease(&self, python: &Path) -> Result<UidLease, SandboxError> {
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
