//! The error type of the response cache, and how a failed database call is told apart as "read-only".

use std::path::{Path, PathBuf};

use ann_llm::LlmError;

/// Why a cache operation failed. During a chat call these become [`LlmError::Storage`] (file and
/// cause); [`CacheError::Unsaved`] is the one that follows a paid answer.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The database file could not be opened or set up (WAL mode, schema).
    #[error("cannot open response cache {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database file, its directory or its filesystem cannot be written.
    #[error("response cache {} is read-only ({part}): {source}", path.display())]
    ReadOnly {
        path: PathBuf,
        part: ReadOnlyPart,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer, incompatible version of this crate.
    #[error("response cache {} has schema version {found}; this build reads version {supported}", path.display())]
    SchemaVersion { path: PathBuf, found: i64, supported: i64 },
    /// A query failed (disk full, lock held past the busy timeout, corrupt file).
    #[error("response cache {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A backend answer was received (and paid for) but could not be stored. The answer is not lost:
    /// the cache keeps it in memory ([`ResponseCache::unsaved`](crate::ResponseCache::unsaved)).
    /// This is an infrastructure failure, never a model failure: stop the run and fix the disk.
    #[error("a paid answer to request {key} could not be stored (kept in memory, not lost): {source}")]
    Unsaved {
        key: String,
        #[source]
        source: Box<CacheError>,
    },
    /// A stored entry is not valid JSON of the expected shape.
    #[error("response cache {}: entry {key} is corrupt: {source}", path.display())]
    CorruptEntry {
        path: PathBuf,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a cassette file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One line of a cassette is malformed (bad JSON, unknown field, key that does not match the request).
    #[error("{}:{line}: {message}", path.display())]
    Cassette { path: PathBuf, line: usize, message: String },
    /// The blocking worker that runs a database call panicked or was cancelled.
    #[error("response cache worker failed: {0}")]
    Worker(String),
}

/// What cannot be written when a cache is read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyPart {
    /// The database file itself (permissions, or opened read-only).
    File,
    /// The directory holding it: SQLite cannot create its `-wal`/`-shm`/journal files there.
    Directory,
    /// The filesystem is mounted read-only, or the reason could not be narrowed down.
    Filesystem,
}

impl std::fmt::Display for ReadOnlyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadOnlyPart::File => "the database file is not writable",
            ReadOnlyPart::Directory => "its directory is not writable",
            ReadOnlyPart::Filesystem => "its filesystem is not writable",
        })
    }
}

impl CacheError {
    /// Whether the cause is a read-only database, directory or filesystem.
    pub fn is_read_only(&self) -> bool {
        match self {
            CacheError::ReadOnly { .. } => true,
            CacheError::Unsaved { source, .. } => source.is_read_only(),
            _ => false,
        }
    }

    /// A failed database call on `path`: [`CacheError::ReadOnly`] when SQLite or the file system
    /// says the database cannot be written, else `other(path, source)`.
    pub(crate) fn classify(
        path: &Path,
        source: rusqlite::Error,
        other: fn(PathBuf, rusqlite::Error) -> CacheError,
    ) -> CacheError {
        match read_only_part(path, &source) {
            Some(part) => CacheError::ReadOnly { path: path.to_owned(), part, source },
            None => other(path.to_owned(), source),
        }
    }

    pub(crate) fn database(path: &Path, source: rusqlite::Error) -> CacheError {
        Self::classify(path, source, |path, source| CacheError::Database { path, source })
    }

    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> CacheError {
        Self::classify(path, source, |path, source| CacheError::Open { path, source })
    }
}

/// Which part is read-only, if the error says so (or the file system shows it after an open failure).
fn read_only_part(path: &Path, error: &rusqlite::Error) -> Option<ReadOnlyPart> {
    use rusqlite::ffi::{self, ErrorCode};
    let rusqlite::Error::SqliteFailure(e, _) = error else { return None };
    let probe = || probe_writable(path);
    match e.code {
        ErrorCode::ReadOnly => match e.extended_code {
            ffi::SQLITE_READONLY_DIRECTORY => Some(ReadOnlyPart::Directory),
            _ => Some(probe().unwrap_or(ReadOnlyPart::Filesystem)),
        },
        // A WAL database whose directory or `-shm` file cannot be written fails to open instead.
        ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::PermissionDenied => probe(),
        _ => None,
    }
}

/// Try the file and its directory for writing (only after a failure): which part refuses, if any.
fn probe_writable(path: &Path) -> Option<ReadOnlyPart> {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    let refused = |e: &std::io::Error| matches!(e.kind(), PermissionDenied | ReadOnlyFilesystem);
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
        if e.kind() == ReadOnlyFilesystem {
            return Some(ReadOnlyPart::Filesystem);
        }
        if refused(&e) {
            return Some(ReadOnlyPart::File);
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let probe = dir.join(format!(".{name}.write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) if e.kind() == ReadOnlyFilesystem => Some(ReadOnlyPart::Filesystem),
        Err(e) if refused(&e) => Some(ReadOnlyPart::Directory),
        Err(_) => None,
    }
}

impl CacheError {
    /// The cache file (or cassette) the error is about, when it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CacheError::Open { path, .. }
            | CacheError::ReadOnly { path, .. }
            | CacheError::SchemaVersion { path, .. }
            | CacheError::Database { path, .. }
            | CacheError::CorruptEntry { path, .. }
            | CacheError::Io { path, .. }
            | CacheError::Cassette { path, .. } => Some(path),
            CacheError::Unsaved { source, .. } => source.path(),
            CacheError::Worker(_) => None,
        }
    }

    /// What went wrong, without the file's name (which [`CacheError::path`] gives).
    fn detail(&self) -> String {
        match self {
            CacheError::Open { source, .. } => format!("cannot be opened: {source}"),
            CacheError::ReadOnly { part, source, .. } => format!("is read-only ({part}): {source}"),
            CacheError::Database { source, .. } => source.to_string(),
            CacheError::CorruptEntry { key, source, .. } => format!("entry {key} is corrupt: {source}"),
            CacheError::Unsaved { key, source } => {
                format!(
                    "a paid answer to request {key} could not be stored (kept in memory, not lost): {}",
                    source.detail()
                )
            }
            other => other.to_string(),
        }
    }
}

/// During a chat call every cache failure is [`LlmError::Storage`]: an infrastructure failure that
/// stops the run (never a failed agent or a zero score), naming the file and the cause.
impl From<CacheError> for LlmError {
    fn from(e: CacheError) -> Self {
        let path = e.path().map(|p| p.display().to_string()).unwrap_or_default();
        LlmError::Storage { path, detail: e.detail() }
    }
}
