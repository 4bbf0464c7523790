//! The write path: one connection, operations queued and committed in batches (group commit).
//!
//! A call that needs the database while no batch is running starts one on tokio's blocking pool;
//! calls arriving meanwhile join the queue and are handled together in the next transaction. A
//! miss therefore costs one queued claim-and-lookup (a read transaction) and one queued insert (the
//! miss's only write transaction, shared with the other inserts of its batch), whatever the
//! concurrency, and no call waits for a connection to open. WAL checkpoints run after a batch, on a
//! connection of their own, never inside a caller's round trip.
//!
//! Claims make single-flight work across processes ([`Claims`]): before looking a key up, the
//! batch takes the key's byte-range lock in `<db>.claims`; a key found stored gives its lock back at
//! once, a key not found keeps it until its answer's insert has committed (or failed). Another
//! process asking for that key meanwhile finds the lock taken and no answer, and polls until the
//! answer is stored; the kernel drops the locks of a process that dies, so the next asker takes over.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ann_llm::ChatResponse;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::CacheError;
use crate::claims::{ClaimGuard, Claims};
use crate::store::{CacheConfig, OnConflict, connect};

/// Stored inserts between two WAL checkpoints.
const CHECKPOINT_EVERY: usize = 256;

/// What a claim-and-lookup found.
pub(crate) enum Claim {
    /// The answer is stored.
    Hit(ChatResponse),
    /// No answer, and this cache handle now holds the key's claim: call the backend, then store
    /// (the claim goes with the answer into [`Entry::claim`] and is released once it is stored).
    Claimed(ClaimGuard),
    /// No answer, and another process or cache handle holds the claim: poll again later.
    Held,
}

/// One answer to store, already serialized.
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) backend: String,
    pub(crate) request: String,
    pub(crate) response: String,
    pub(crate) on_conflict: OnConflict,
    /// The claim on the key, released after the insert has committed (or failed).
    pub(crate) claim: Option<ClaimGuard>,
}

enum Op {
    ClaimAndLookup { key: String, reply: oneshot::Sender<Result<Claim, CacheError>> },
    Store { entry: Entry, reply: oneshot::Sender<Result<(), CacheError>> },
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

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    running: bool,
}

pub(crate) struct Writer {
    path: PathBuf,
    config: CacheConfig,
    claims: Arc<Claims>,
    /// Why the database cannot be written, found when it was opened: then a key that is not stored
    /// fails before any backend call, since its answer could not be kept.
    read_only: Option<rusqlite::Error>,
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
    queue: Mutex<Queue>,
    /// Signalled when a drain stops.
    drained: Condvar,
    stored_since_checkpoint: AtomicUsize,
    write_transactions: AtomicU64,
    checkpointing: AtomicBool,
    checkpointer: Mutex<Option<Connection>>,
    closed: AtomicBool,
}

impl Writer {
    pub(crate) fn new(path: PathBuf, config: CacheConfig, conn: Connection) -> Self {
        // Checkpoints are ours to schedule (after a batch), not a side effect of some caller's commit.
        if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", 0) {
            tracing::warn!(path = %path.display(), error = %e, "response cache: cannot turn off automatic checkpoints");
        }
        // SQLite's default page cache (2 MiB), not a larger one: after every commit SQLite drops the
        // cached pages past the end of the file, and with a large cache that scan of its whole hash
        // table was a fifth of a miss's CPU (perf, the criterion miss bench); the pages it would
        // keep are read back from the OS's cache instead.
        let read_only = write_refusal(&conn);
        Self {
            claims: Claims::new(&path),
            path,
            config,
            read_only,
            conn: Mutex::new(Some(conn)),
            queue: Mutex::new(Queue::default()),
            drained: Condvar::new(),
            stored_since_checkpoint: AtomicUsize::new(0),
            write_transactions: AtomicU64::new(0),
            checkpointing: AtomicBool::new(false),
            checkpointer: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// Write transactions this handle has committed or tried (inserts; claims and lookups take none).
    pub(crate) fn write_transactions(&self) -> u64 {
        self.write_transactions.load(Ordering::Relaxed)
    }

    /// Claim the key, then look it up: the stored answer, or this handle's claim, or word that
    /// someone else holds it.
    pub(crate) async fn claim_and_lookup(self: &Arc<Self>, key: &str) -> Result<Claim, CacheError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::ClaimAndLookup { key: key.to_owned(), reply });
        answer.await.map_err(|_| CacheError::Worker("the cache writer stopped".into()))?
    }

    /// Store an answer (and then release its claim); returns once committed.
    pub(crate) async fn store(self: &Arc<Self>, entry: Entry) -> Result<(), CacheError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::Store { entry, reply });
        answer.await.map_err(|_| CacheError::Worker("the cache writer stopped".into()))?
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

    /// Handle queued operations batch after batch until the queue is empty.
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
                None => {
                    let closed = || rusqlite::Error::InvalidQuery;
                    ops.into_iter().for_each(|op| self.deliver(op, None, Err(closed()), Err(closed())));
                }
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
    }

    /// Claims first (no database write), then the batch's lookups and inserts: in one write
    /// transaction if there is something to insert, else each on its own. A key is looked up only after its
    /// claim is taken, so an answer stored by the claim's previous holder is always seen. If the
    /// transaction fails, every insert reports the failure (a held lock or a full disk would only
    /// fail again, once per insert) and the lookups are tried again on their own, outside it.
    fn run_batch(&self, conn: &mut Connection, ops: Vec<Op>) {
        let claims: Vec<Option<Result<Option<ClaimGuard>, CacheError>>> = ops
            .iter()
            .map(|op| match op {
                Op::ClaimAndLookup { key, .. } if self.read_only.is_none() => Some(self.claims.try_claim(key)),
                _ => None,
            })
            .collect();
        let stores = ops.iter().any(|op| matches!(op, Op::Store { .. }));
        if stores {
            self.write_transactions.fetch_add(1, Ordering::Relaxed);
        }
        let failure = match self.apply(conn, &ops, stores) {
            Ok(found) => {
                for ((op, claim), found) in ops.into_iter().zip(claims).zip(found) {
                    self.deliver(op, claim, Ok(found), Ok(()));
                }
                return;
            }
            Err(e) => e,
        };
        for (op, claim) in ops.into_iter().zip(claims) {
            let found = match &op {
                Op::ClaimAndLookup { key, .. } => lookup(conn, key),
                Op::Store { .. } => Ok(None),
            };
            self.deliver(op, claim, found, Err(copy_err(&failure)));
        }
    }

    /// Per operation, the stored answer a lookup found.
    fn apply(&self, conn: &mut Connection, ops: &[Op], stores: bool) -> rusqlite::Result<Vec<Option<String>>> {
        if !stores {
            // Lookups alone need no transaction: each reads after its claim was taken.
            return ops
                .iter()
                .map(|op| match op {
                    Op::ClaimAndLookup { key, .. } => lookup(conn, key),
                    Op::Store { .. } => Ok(None),
                })
                .collect();
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut found = Vec::with_capacity(ops.len());
        for op in ops {
            found.push(match op {
                Op::ClaimAndLookup { key, .. } => lookup(&tx, key)?,
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
                    None
                }
            });
        }
        tx.commit()?;
        Ok(found)
    }

    /// Answer one operation: `found` is its lookup, `committed` the batch's inserts. A claim that
    /// is not handed over (the key is stored, the asker was cancelled) is released here, and an
    /// insert's claim once its answer is sent.
    fn deliver(
        &self,
        op: Op,
        claim: Option<Result<Option<ClaimGuard>, CacheError>>,
        found: rusqlite::Result<Option<String>>,
        committed: rusqlite::Result<()>,
    ) {
        match op {
            Op::ClaimAndLookup { key, reply } => {
                let answer = match found {
                    Err(e) => Err(CacheError::database(&self.path, e)),
                    Ok(Some(text)) => serde_json::from_str(&text)
                        .map(Claim::Hit)
                        .map_err(|source| CacheError::CorruptEntry { path: self.path.clone(), key, source }),
                    Ok(None) => match claim {
                        Some(Ok(Some(guard))) => Ok(Claim::Claimed(guard)),
                        Some(Ok(None)) => Ok(Claim::Held),
                        Some(Err(e)) => Err(e),
                        None => Err(CacheError::database(
                            &self.path,
                            self.read_only.as_ref().map_or(rusqlite::Error::InvalidQuery, copy_err),
                        )),
                    },
                };
                // A cancelled asker drops the answer, and with it the claim.
                let _ = reply.send(answer);
            }
            Op::Store { entry, reply } => {
                if committed.is_ok() {
                    self.stored_since_checkpoint.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(committed.map_err(|e| CacheError::database(&self.path, e)));
                // Released only now: until the answer is stored, other processes keep waiting.
                drop(entry.claim);
            }
        }
    }
}

fn lookup(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT response FROM responses WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

/// Why the database cannot be written, if it cannot: a read-only connection (the file's
/// permissions), or a write lock refused for that reason (directory, filesystem). Takes the write
/// lock and gives it back without writing; only at open.
fn write_refusal(conn: &Connection) -> Option<rusqlite::Error> {
    use rusqlite::ffi;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Some(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_READONLY),
            Some("attempt to write a readonly database".into()),
        ));
    }
    let refused = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").err();
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    refused.filter(cannot_write)
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
