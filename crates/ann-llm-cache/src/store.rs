//! The SQLite store: schema, a pool of reading connections, lookups, cassette export and import.
//!
//! Everything here blocks; the async layer runs it on tokio's blocking pool. The database is in WAL
//! mode with a busy timeout, so several connections in one process and several processes on one
//! file read concurrently and take turns to write. Claims, lookups of a miss and inserts go through
//! the [`Writer`](crate::writer::Writer), which batches them on one connection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ann_llm::ChatResponse;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::writer::Writer;
use crate::{CacheError, CassetteEntry};

/// The schema version this build reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS responses (
    key      TEXT PRIMARY KEY NOT NULL,
    backend  TEXT NOT NULL,
    request  TEXT NOT NULL,
    response TEXT NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

// Older builds also kept a `claims` table (claims with leases); this build claims with byte-range
// locks in a side file instead (`claims.rs`), neither creates nor reads that table, and
// leaves it in files that have it: the schema version stays 1, and files move freely between
// builds (only a process of an older build and one of this build fetching the same request at
// the same moment may both pay for it).

/// How to open the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a writer waits for another connection or process to release the write lock.
    pub busy_timeout: Duration,
    /// Reading connections kept open between calls (more are opened on demand under load).
    pub max_idle_connections: usize,
    /// The longest pause (at most 250 ms) between two looks at a key that another process or
    /// cache handle is fetching. Claims are byte-range locks that the kernel drops when their
    /// process dies, so a waiter takes over a killed fetcher's key at its next look, never after a
    /// lease; a live fetcher's claim holds for as long as its backend call runs.
    pub claim_lease: Duration,
    /// Recent answers kept in memory (0: none); a hit among them never touches the database.
    pub memory_entries: usize,
    /// The memory front's bound in bytes of answer text; a single answer over half of it is not kept.
    pub memory_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(30),
            max_idle_connections: 64,
            claim_lease: Duration::from_secs(30),
            memory_entries: 4096,
            memory_bytes: 64 << 20,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// Entries in the cassette.
    pub entries: usize,
    /// Entries that were not in the cache.
    pub added: usize,
    /// Entries whose key was in the cache with a different answer (the cassette wins).
    pub updated: usize,
    /// Entries already in the cache exactly as in the cassette.
    pub unchanged: usize,
}

/// Whether an insert replaces an existing answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Keep the answer already stored (another task or process was first).
    Keep,
    /// Replace it (refresh mode).
    Replace,
}

pub(crate) struct Store {
    path: PathBuf,
    config: CacheConfig,
    idle: Mutex<Vec<Connection>>,
    pub(crate) writer: Arc<Writer>,
}

impl Store {
    pub(crate) fn open(path: &Path, config: &CacheConfig) -> Result<Self, CacheError> {
        let open_err = |source| CacheError::open(path, source);
        let conn = initialise(path, config)?;
        let reader = connect(path, config).map_err(open_err)?;
        let writer = Arc::new(Writer::new(path.to_owned(), config.clone(), conn));
        Ok(Self { path: path.to_owned(), config: config.clone(), idle: Mutex::new(vec![reader]), writer })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn db_err(&self, source: rusqlite::Error) -> CacheError {
        CacheError::database(&self.path, source)
    }

    /// Run `f` on an idle connection (or a new one), then return the connection to the pool.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, CacheError>) -> Result<T, CacheError> {
        let pooled = self.idle.lock().expect("connection pool lock").pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path, &self.config).map_err(|e| self.db_err(e))?,
        };
        let result = f(&mut conn);
        let mut idle = self.idle.lock().expect("connection pool lock");
        if idle.len() < self.config.max_idle_connections {
            idle.push(conn);
        }
        result
    }

    /// The stored answer for `key`, as recorded (`cache_hit` false).
    pub(crate) fn get(&self, key: &str) -> Result<Option<ChatResponse>, CacheError> {
        let text: Option<String> = self.with_conn(|c| {
            c.prepare_cached("SELECT response FROM responses WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(|e| self.db_err(e))
        })?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| self.corrupt(key, e))).transpose()
    }

    fn corrupt(&self, key: &str, source: serde_json::Error) -> CacheError {
        CacheError::CorruptEntry { path: self.path.clone(), key: key.to_owned(), source }
    }

    pub(crate) fn len(&self) -> Result<usize, CacheError> {
        self.with_conn(|c| {
            c.query_row("SELECT count(*) FROM responses", [], |r| r.get::<_, i64>(0))
                .map(|n| n as usize)
                .map_err(|e| self.db_err(e))
        })
    }

    /// Every entry, sorted by key.
    pub(crate) fn entries(&self) -> Result<Vec<CassetteEntry>, CacheError> {
        let rows: Vec<(String, String, String, String)> = self.with_conn(|c| {
            let mut stmt = c
                .prepare("SELECT key, backend, request, response FROM responses ORDER BY key")
                .map_err(|e| self.db_err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.db_err(e))?;
            Ok(rows)
        })?;
        let mut entries = rows
            .into_iter()
            .map(|(key, backend, request, response)| {
                let request = serde_json::from_str(&request).map_err(|e| self.corrupt(&key, e))?;
                let response = serde_json::from_str(&response).map_err(|e| self.corrupt(&key, e))?;
                Ok(CassetteEntry { key, backend, request, response })
            })
            .collect::<Result<Vec<_>, CacheError>>()?;
        // SQLite's BINARY collation already orders by bytes; sort again so the order never depends on it.
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Write every entry to `out` as a sorted JSONL cassette (atomically: a temporary file, then rename).
    pub(crate) fn export(&self, out: &Path) -> Result<usize, CacheError> {
        let entries = self.entries()?;
        let mut text = String::new();
        for entry in &entries {
            text.push_str(&entry.to_line());
            text.push('\n');
        }
        ann_llm::write_atomic(out, text.as_bytes())
            .map_err(|source| CacheError::Io { path: out.to_owned(), source })?;
        Ok(entries.len())
    }

    /// Read a cassette and store its entries (all or nothing; importing twice changes nothing).
    pub(crate) fn import(&self, cassette: &Path) -> Result<ImportReport, CacheError> {
        let text =
            std::fs::read_to_string(cassette).map_err(|source| CacheError::Io { path: cassette.to_owned(), source })?;
        let line_err = |line, message| CacheError::Cassette { path: cassette.to_owned(), line, message };
        let mut entries: BTreeMap<String, (usize, CassetteEntry)> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let entry = CassetteEntry::parse_line(line).map_err(|m| line_err(number, m))?;
            match entries.get(&entry.key) {
                Some((first, previous)) if *previous != entry => {
                    return Err(line_err(
                        number,
                        format!("key {} is also on line {first} with a different entry", entry.key),
                    ));
                }
                Some(_) => {}
                None => {
                    entries.insert(entry.key.clone(), (number, entry));
                }
            }
        }
        let mut report = ImportReport { entries: entries.len(), ..Default::default() };
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.db_err(e))?;
            {
                let mut select = tx
                    .prepare("SELECT backend, request, response FROM responses WHERE key = ?1")
                    .map_err(|e| self.db_err(e))?;
                let mut upsert = tx
                    .prepare(
                        "INSERT INTO responses (key, backend, request, response) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (key) DO UPDATE SET backend = excluded.backend, request = excluded.request, \
                         response = excluded.response",
                    )
                    .map_err(|e| self.db_err(e))?;
                for (key, (_, entry)) in &entries {
                    let request = entry.request.canonical_json();
                    let response = response_json(&entry.response);
                    let existing: Option<(String, String, String)> = select
                        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                        .map_err(|e| self.db_err(e))?;
                    match existing {
                        Some((b, q, a)) if b == entry.backend && q == request && a == response => {
                            report.unchanged += 1;
                            continue;
                        }
                        Some(_) => report.updated += 1,
                        None => report.added += 1,
                    }
                    upsert.execute(params![key, entry.backend, request, response]).map_err(|e| self.db_err(e))?;
                }
            }
            tx.commit().map_err(|e| self.db_err(e))
        })?;
        Ok(report)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.writer.close();
    }
}

/// The stored form of a response: never marked as a cache hit.
pub(crate) fn response_json(response: &ChatResponse) -> String {
    let stored = ChatResponse { cache_hit: false, ..response.clone() };
    serde_json::to_string(&stored).expect("a ChatResponse always serializes")
}

/// Open a connection to `path` and make the file a cache: WAL mode, the schema.
///
/// Processes that create one new file at the same moment race for the locks these steps take, and
/// SQLite answers some of those races with "database is locked" without waiting in its busy handler
/// (changing the journal mode, for one). So a busy answer starts the steps again on a new
/// connection until the busy timeout has passed; every step is idempotent.
fn initialise(path: &Path, config: &CacheConfig) -> Result<Connection, CacheError> {
    let started = Instant::now();
    loop {
        match set_up(path, config) {
            Err(CacheError::Open { source, .. }) if is_busy(&source) && started.elapsed() < config.busy_timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    matches!(error.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked))
}

/// One attempt of [`initialise`].
fn set_up(path: &Path, config: &CacheConfig) -> Result<Connection, CacheError> {
    let open_err = |source| CacheError::open(path, source);
    let mut conn = connect(path, config).map_err(open_err)?;
    // WAL is a property of the file: set once, every later connection and process sees it.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "response cache: WAL mode unavailable, concurrent use will be slower");
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open_err)?;
    if version == 0 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_err)?;
        tx.execute_batch(SCHEMA).map_err(open_err)?;
        tx.commit().map_err(open_err)?;
    } else if version != SCHEMA_VERSION {
        return Err(CacheError::SchemaVersion { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
    }
    Ok(conn)
}

pub(crate) fn connect(path: &Path, config: &CacheConfig) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(config.busy_timeout)?;
    // In WAL mode NORMAL is safe against application crashes (a power cut may lose the last answers).
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}
