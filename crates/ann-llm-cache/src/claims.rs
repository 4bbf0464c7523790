//! Claims on keys being fetched, shared by every process on one cache file: byte-range locks in a
//! side file `<db>.claims`, one byte per key at an offset derived from the key.
//!
//! A claim is an exclusive `fcntl` write lock on one byte. On Linux it is an open-file-description
//! lock (`F_OFD_SETLK`): it belongs to this cache handle's descriptor, so two handles on one file
//! exclude each other as two processes do, and the kernel drops it the moment its process dies (a
//! killed fetcher's claims are free at once; nothing waits out a lease). Other unixes use
//! process-associated POSIX locks (`F_SETLK`): the same across processes, but two handles on one
//! file in one process do not exclude each other there, and closing one handle drops the other's
//! claims (never a wrong answer, at worst a request paid twice).
//!
//! Claims take no database write: a miss costs one write transaction, the insert of its answer.
//! Two keys whose offsets collide only make one wait for the other (a spurious wait, never a wrong
//! answer: a waiter always reads the answer for its own key from the database). Within a handle,
//! one descriptor's locks never conflict with each other, so the handle also keeps the offsets it
//! holds and treats a second claim on one of them as held elsewhere.
//!
//! Nothing here touches the disk: lock calls are non-blocking system calls on the kernel's lock
//! table, safe on any thread.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use crate::CacheError;

/// The claims of one cache handle.
pub(crate) struct Claims {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Opened on the first claim (a replay-only or read-only cache never creates it).
    file: Option<File>,
    /// Offsets this handle holds.
    held: HashSet<u64>,
}

/// The right to fetch one key: released (the byte unlocked) when dropped, which the writer does
/// only after the answer's insert has committed (or failed), and a cancelled call at once.
pub(crate) struct ClaimGuard {
    claims: Arc<Claims>,
    offset: u64,
}

impl std::fmt::Debug for ClaimGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimGuard").field("offset", &self.offset).finish()
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.release(self.offset);
    }
}

/// The side file of the database at `db`.
pub(crate) fn claims_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".claims");
    PathBuf::from(name)
}

/// The byte that stands for `key`: FNV-1a (64 bits) of the key, kept below 2^62 so that the lock's
/// range stays a valid `off_t`. Every build and process must agree on it: never change it.
pub(crate) fn offset(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash & ((1 << 62) - 1)
}

impl Claims {
    pub(crate) fn new(db: &Path) -> Arc<Self> {
        Arc::new(Self { path: claims_path(db), inner: Mutex::new(Inner::default()) })
    }

    /// Claim `key`: `Some` if this handle now holds it, `None` if another handle or process (or a
    /// key of this handle on the same byte) does.
    pub(crate) fn try_claim(self: &Arc<Self>, key: &str) -> Result<Option<ClaimGuard>, CacheError> {
        let offset = offset(key);
        let mut inner = self.inner.lock().expect("claims lock");
        if inner.held.contains(&offset) {
            return Ok(None);
        }
        if inner.file.is_none() {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(|source| CacheError::Io { path: self.path.clone(), source })?;
            inner.file = Some(file);
        }
        let file = inner.file.as_ref().expect("opened above");
        match lock(file, offset, libc::F_WRLCK) {
            Ok(()) => {
                inner.held.insert(offset);
                Ok(Some(ClaimGuard { claims: self.clone(), offset }))
            }
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
            Err(errno) => Err(CacheError::Io { path: self.path.clone(), source: errno.into() }),
        }
    }

    fn release(&self, offset: u64) {
        let mut inner = self.inner.lock().expect("claims lock");
        if !inner.held.remove(&offset) {
            return;
        }
        // Unlock while the table is still locked, so a new claim on this byte cannot slip in
        // between and lose its lock to this unlock.
        if let Some(file) = &inner.file
            && let Err(errno) = lock(file, offset, libc::F_UNLCK)
        {
            tracing::warn!(path = %self.path.display(), offset, %errno, "response cache: cannot release a claim");
        }
    }
}

/// Set (`F_WRLCK`) or clear (`F_UNLCK`) the lock on one byte, without waiting.
fn lock(file: &File, offset: u64, kind: libc::c_int) -> nix::Result<()> {
    let flock = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset as libc::off_t,
        l_len: 1,
        // Must be 0 for open-file-description locks.
        l_pid: 0,
    };
    #[cfg(target_os = "linux")]
    let arg = FcntlArg::F_OFD_SETLK(&flock);
    #[cfg(not(target_os = "linux"))]
    let arg = FcntlArg::F_SETLK(&flock);
    fcntl(file, arg).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_spread() {
        // Pinned: processes of different builds must agree on the byte of a key.
        assert_eq!(offset(""), 0xcbf2_9ce4_8422_2325 & ((1 << 62) - 1));
        assert_eq!(offset("a"), 0xaf63_dc4c_8601_ec8c & ((1 << 62) - 1));
        let offsets: HashSet<u64> = (0..10_000).map(|i| offset(&format!("{i:064x}"))).collect();
        assert_eq!(offsets.len(), 10_000);
        assert!(offsets.iter().all(|&o| o < 1 << 62));
    }

    #[test]
    fn two_handles_exclude_each_other_and_a_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.sqlite");
        let (a, b) = (Claims::new(&db), Claims::new(&db));
        let held = a.try_claim("k").unwrap().expect("a free key is claimed");
        assert!(a.try_claim("k").unwrap().is_none(), "a handle's own byte is held");
        assert!(b.try_claim("k").unwrap().is_none(), "another descriptor is refused");
        let other = b.try_claim("other key").unwrap().expect("other bytes stay free");
        drop(held);
        assert!(b.try_claim("k").unwrap().is_some(), "released on drop");
        drop(other);
        assert!(claims_path(&db).exists());
    }
}
