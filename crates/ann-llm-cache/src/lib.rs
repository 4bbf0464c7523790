//! Persistent content-addressed LLM response cache in SQLite, with JSONL cassettes.
//!
//! [`CachedModel`] wraps any [`ChatModel`](ann_llm::ChatModel) and answers from a
//! [`ResponseCache`]: one SQLite file in WAL mode, safe for many tasks and several processes at
//! once, with a bounded in-memory front of recent answers (a hit there never touches the database;
//! another process's later refresh of the same key is not seen by an answer already remembered).
//! A miss costs one lookup, after claiming the key (a byte-range lock in the side file
//! `<db>.claims`, so a process asking for a key another process is fetching waits for that answer
//! instead of paying for it again, and a killed process's claims vanish with it), and one insert,
//! the miss's only write transaction; lookups and inserts of concurrent calls run together in
//! batches. The key is the sha256 of the backend identity and the canonical JSON of the whole request
//! ([`ChatRequest::fingerprint`](ann_llm::ChatRequest::fingerprint)), so a changed temperature, seed,
//! response format or sample index is a different entry. Only requests and responses are stored:
//! requests carry no secrets (API keys live in the HTTP backend), and no headers are kept.
//!
//! Modes ([`CacheMode`]): read-write (default), replay-only (a miss is an error naming the request),
//! refresh (always call, overwrite), off. Cassettes ([`ResponseCache::export_jsonl`],
//! [`ResponseCache::import_jsonl`]) are sorted JSONL files, stable byte for byte, for committing
//! small recordings as test fixtures.
//!
//! Failures of the cache itself are [`CacheError`]s, never model answers: a paid answer that
//! cannot be stored (disk full, read-only file, lock timeout) is kept in memory
//! ([`ResponseCache::unsaved`]) and reported as [`CacheError::Unsaved`]; a read-only database,
//! directory or filesystem is reported as [`CacheError::ReadOnly`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ann_llm::{ChatModel, ChatRequest, Message};
//! use ann_llm_cache::{CachedModel, ResponseCache};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = ResponseCache::open(&dir.path().join("responses.sqlite"))?;
//! let backend = ann_test_support::ScriptedModel::default().fallback(|_| Ok("four".into()));
//! let model = CachedModel::new(backend, cache);
//! let request = ChatRequest::new("m", vec![Message::user("2 + 2?")]);
//! assert!(!model.complete(&request).await?.cache_hit);
//! assert!(model.complete(&request).await?.cache_hit);
//! assert_eq!(model.inner().calls(), 1);
//! # Ok(())
//! # }
//! ```

mod cache;
mod cassette;
mod claims;
mod error;
mod front;
mod model;
mod store;
mod writer;

pub use cache::{CacheStats, ResponseCache};
pub use cassette::CassetteEntry;
pub use error::{CacheError, ReadOnlyPart};
pub use model::{CacheMode, CachedModel};
pub use store::{CacheConfig, ImportReport};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
