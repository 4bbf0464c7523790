//! The error type of opening, importing and exporting a response cache.

use std::path::PathBuf;

use ann_llm::LlmError;

/// Why a cache operation failed. During a chat call these become [`LlmError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The database file could not be opened or set up (WAL mode, schema).
    #[error("cannot open response cache {}: {source}", path.display())]
    Open {
        path: PathBuf,
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

impl From<CacheError> for LlmError {
    fn from(e: CacheError) -> Self {
        LlmError::Backend(e.to_string())
    }
}
