//! The write path: one connection, operations queued and committed in batches (group commit).
//!
//! A call that needs the database while no batch is running starts one on tokio's blocking pool;
//! calls arriving meanwhile join the queue and are committed together in the next transaction. A
//! miss therefore costs one queued lookup-and-claim and one queued insert, whatever the
//! concurrency, and no call waits for a connection to open. WAL checkpoints run after a batch, on a
//! connection of their own, never inside a caller's round trip.
//!
//! Claims make single-flight work across processes: before calling the backend for a key, a
//! process records `(key, owner, lease expiry)` in the `claims` table in the same transaction that
//! found no answer. Another process asking for that key sees the live claim and polls until the
//! answer is stored; an owner that crashed stops renewing its lease, which expires, and the next
//! asker takes over.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ann_llm::ChatResponse;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::CacheError;
use crate::store::{CacheConfig, OnConflict, connect};

/// Stored inserts between two WAL checkpoints.
const CHECKPOINT_EVERY: usize = 256;

/// What a lookup-and-claim found.
pub(crate) enum Claim {
    /// The answer is stored.
    Hit(ChatResponse),
    /// No answer, and this cache now owns the key's claim: call the backend, then store.
    Claimed,
    /// No answer, and another process (or cache handle) holds a live claim: poll again later.
    Held,
}

/// One answer to store, already serialized.
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) backend: String,
    pub(crate) request: String,
    pub(crate) response: String,
    pub(crate) on_conflict: OnConflict,
}

enum Op {
    LookupOrClaim { key: String, reply: oneshot::Sender<Result<Claim, CacheError>> },
    Store { entry: Entry, reply: oneshot::Sender<Result<(), CacheError>> },
    Renew { key: String },
    Release { key: String },
}

/// A drain to run. A runtime that is shutting down drops blocking tasks without running them: then
/// the drain runs on a thread of its own, so queued operations are never stranded.
struct DrainTask(Option<Arc<Writer>>);

impl DrainTask {
    fn run(mut self) {
        if let Some(writer) = self.0.take() {
            writer.drain();
        }
    }
}

impl Drop for DrainTask {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            drop(std::thread::spawn(move || writer.drain()));
        }
    }
}

/// What an operation did inside a committed transaction.
enum Done {
    Found(String),
    Claimed,
    Held,
    Nothing,
}

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    running: bool,
}

pub(crate) struct Writer {
    path: PathBuf,
    config: CacheConfig,
    /// Who this cache handle is in the claims table: process id, start time and a per-process counter.
    owner: String,
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
    queue: Mutex<Queue>,
    /// Signalled when a drain stops.
    drained: Condvar,
    stored_since_checkpoint: AtomicUsize,
    checkpointing: AtomicBool,
    checkpointer: Mutex<Option<Connection>>,
    closed: AtomicBool,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Writer {
    pub(crate) fn new(path: PathBuf, config: CacheConfig, conn: Connection) -> Self {
        static HANDLES: AtomicUsize = AtomicUsize::new(0);
        let owner = format!("{}-{}-{}", std::process::id(), now_ms(), HANDLES.fetch_add(1, Ordering::Relaxed));
        // Checkpoints are ours to schedule (after a batch), not a side effect of some caller's commit.
        if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", 0) {
            tracing::warn!(path = %path.display(), error = %e, "response cache: cannot turn off automatic checkpoints");
        }
        // Keys are hashes, so inserts land on random pages: keep more of them in memory (the pages
        // are only allocated as they are touched).
        if let Err(e) = conn.pragma_update(None, "cache_size", -32_768) {
            tracing::debug!(path = %path.display(), error = %e, "response cache: cannot enlarge the page cache");
        }
        Self {
            path,
            config,
            owner,
            conn: Mutex::new(Some(conn)),
            queue: Mutex::new(Queue::default()),
            drained: Condvar::new(),
            stored_since_checkpoint: AtomicUsize::new(0),
            checkpointing: AtomicBool::new(false),
            checkpointer: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn lease(&self) -> Duration {
        self.config.claim_lease
    }

    /// The stored answer, or this handle's claim on the key, or word that someone else holds it.
    pub(crate) async fn lookup_or_claim(self: &Arc<Self>, key: &str) -> Result<Claim, CacheError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::LookupOrClaim { key: key.to_owned(), reply });
        answer.await.map_err(|_| CacheError::Worker("the cache writer stopped".into()))?
    }

    /// Store an answer and release this handle's claim on its key; returns once committed.
    pub(crate) async fn store(self: &Arc<Self>, entry: Entry) -> Result<(), CacheError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::Store { entry, reply });
        answer.await.map_err(|_| CacheError::Worker("the cache writer stopped".into()))?
    }

    /// Extend this handle's claim on `key` (the backend call is still running).
    pub(crate) fn renew(self: &Arc<Self>, key: &str) {
        self.submit(Op::Renew { key: key.to_owned() });
    }

    /// Drop this handle's claim on `key` (the call failed or was cancelled): waiters take over.
    pub(crate) fn release(self: &Arc<Self>, key: &str) {
        self.submit(Op::Release { key: key.to_owned() });
    }

    fn submit(self: &Arc<Self>, op: Op) {
        let mut queue = self.queue.lock().expect("writer queue lock");
        queue.ops.push(op);
        if queue.running {
            return;
        }
        queue.running = true;
        drop(queue);
        let task = DrainTask(Some(self.clone()));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(move || task.run())),
            Err(_) => drop(std::thread::spawn(move || task.run())),
        }
    }

    /// Commit queued operations batch after batch until the queue is empty.
    fn drain(&self) {
        let mut conn = self.conn.lock().expect("writer connection lock");
        loop {
            let ops = {
                let mut queue = self.queue.lock().expect("writer queue lock");
                if queue.ops.is_empty() {
                    queue.running = false;
                    self.drained.notify_all();
                    break;
                }
                std::mem::take(&mut queue.ops)
            };
            match conn.as_mut() {
                Some(conn) => self.run_batch(conn, ops),
                None => ops.into_iter().for_each(|op| self.deliver(op, Err(rusqlite::Error::InvalidQuery))),
            }
        }
        drop(conn);
        if self.stored_since_checkpoint.load(Ordering::Relaxed) >= CHECKPOINT_EVERY
            && !self.checkpointing.swap(true, Ordering::AcqRel)
        {
            self.stored_since_checkpoint.store(0, Ordering::Relaxed);
            self.checkpoint();
            self.checkpointing.store(false, Ordering::Release);
        }
    }

    /// Wait for the running batch, then close the connections (the last handle is gone), so that
    /// dropping the cache closes its file.
    pub(crate) fn close(&self) {
        let mut queue = self.queue.lock().expect("writer queue lock");
        while queue.running {
            queue = self.drained.wait(queue).expect("writer queue lock");
        }
        drop(queue);
        self.closed.store(true, Ordering::Release);
        drop(self.conn.lock().expect("writer connection lock").take());
        drop(self.checkpointer.lock().expect("checkpointer lock").take());
    }

    /// A passive checkpoint: copies what it can without blocking writers or readers.
    fn checkpoint(&self) {
        let mut slot = self.checkpointer.lock().expect("checkpointer lock");
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if slot.is_none() {
            *slot = connect(&self.path, &self.config).ok();
        }
        let Some(conn) = slot.as_ref() else { return };
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(path = %self.path.display(), error = %e, "response cache: checkpoint failed");
        }
        // Claims of crashed owners whose keys nobody asked for again.
        if let Err(e) = conn.execute("DELETE FROM claims WHERE expires_ms < ?1", [now_ms()]) {
            tracing::debug!(path = %self.path.display(), error = %e, "response cache: cannot purge expired claims");
        }
    }

    /// One transaction for the whole batch. If it fails, every operation reports the failure
    /// (a held lock or a full disk would only fail again, once per operation), except that a
    /// read-only file still answers lookups: only claims and inserts fail there.
    fn run_batch(&self, conn: &mut Connection, ops: Vec<Op>) {
        let failure = match self.apply(conn, &ops) {
            Ok(done) => return ops.into_iter().zip(done).for_each(|(op, done)| self.deliver(op, Ok(done))),
            Err(e) => e,
        };
        let read_only = cannot_write(&failure);
        for op in ops {
            let result = match &op {
                Op::LookupOrClaim { key, .. } if read_only => match lookup(conn, key) {
                    Ok(Some(found)) => Ok(Done::Found(found)),
                    _ => Err(copy_err(&failure)),
                },
                _ => Err(copy_err(&failure)),
            };
            self.deliver(op, result);
        }
    }

    fn apply(&self, conn: &mut Connection, ops: &[Op]) -> rusqlite::Result<Vec<Done>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let until = now.saturating_add(self.config.claim_lease.as_millis() as i64);
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            done.push(match op {
                Op::LookupOrClaim { key, .. } => match lookup(&tx, key)? {
                    Some(found) => Done::Found(found),
                    None => {
                        let holder: Option<(String, i64)> = tx
                            .prepare_cached("SELECT owner, expires_ms FROM claims WHERE key = ?1")?
                            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?;
                        match holder {
                            Some((owner, expires)) if owner != self.owner && expires > now => Done::Held,
                            _ => {
                                tx.prepare_cached(
                                    "INSERT INTO claims (key, owner, expires_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) \
                                     DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms",
                                )?
                                .execute(params![key, self.owner, until])?;
                                Done::Claimed
                            }
                        }
                    }
                },
                Op::Store { entry, .. } => {
                    tx.prepare_cached(match entry.on_conflict {
                        OnConflict::Keep => {
                            "INSERT INTO responses (key, backend, request, response) VALUES (?1, ?2, ?3, ?4) \
                             ON CONFLICT (key) DO NOTHING"
                        }
                        OnConflict::Replace => {
                            "INSERT INTO responses (key, backend, request, response) VALUES (?1, ?2, ?3, ?4) \
                             ON CONFLICT (key) DO UPDATE SET backend = excluded.backend, \
                             request = excluded.request, response = excluded.response"
                        }
                    })?
                    .execute(params![entry.key, entry.backend, entry.request, entry.response])?;
                    release(&tx, &entry.key, &self.owner)?;
                    Done::Nothing
                }
                Op::Renew { key } => {
                    tx.prepare_cached("UPDATE claims SET expires_ms = ?3 WHERE key = ?1 AND owner = ?2")?
                        .execute(params![key, self.owner, until])?;
                    Done::Nothing
                }
                Op::Release { key } => {
                    release(&tx, key, &self.owner)?;
                    Done::Nothing
                }
            });
        }
        tx.commit()?;
        Ok(done)
    }

    fn deliver(&self, op: Op, result: rusqlite::Result<Done>) {
        match op {
            Op::LookupOrClaim { key, reply } => {
                let claimed = matches!(result, Ok(Done::Claimed));
                let answer = match result {
                    Ok(Done::Found(text)) => serde_json::from_str(&text).map(Claim::Hit).map_err(|source| {
                        CacheError::CorruptEntry { path: self.path.clone(), key: key.clone(), source }
                    }),
                    Ok(Done::Claimed) => Ok(Claim::Claimed),
                    Ok(Done::Held | Done::Nothing) => Ok(Claim::Held),
                    Err(e) => Err(CacheError::database(&self.path, e)),
                };
                if reply.send(answer).is_err() && claimed {
                    // The asker was cancelled: give the claim back at once rather than at lease expiry.
                    self.queue.lock().expect("writer queue lock").ops.push(Op::Release { key });
                }
            }
            Op::Store { reply, .. } => {
                if result.is_ok() {
                    self.stored_since_checkpoint.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(result.map(drop).map_err(|e| CacheError::database(&self.path, e)));
            }
            Op::Renew { key } | Op::Release { key } => {
                if let Err(e) = result {
                    tracing::debug!(key, error = %e, "response cache: claim update failed (the lease will expire)");
                }
            }
        }
    }
}

fn lookup(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT response FROM responses WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

fn release(conn: &Connection, key: &str, owner: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM claims WHERE key = ?1 AND owner = ?2")?.execute(params![key, owner])
}

/// Whether SQLite refused a write because the database cannot be written (read-only file,
/// directory or filesystem), as opposed to a failure that reads would share.
fn cannot_write(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode::{CannotOpen, ReadOnly};
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ReadOnly || f.code == CannotOpen)
}

/// The same failure again, for each operation of a failed batch (rusqlite errors are not `Clone`).
fn copy_err(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(other.to_string()))),
    }
}
