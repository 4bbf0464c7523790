//! Persistent content-addressed LLM response cache in SQLite, with JSONL cassettes.
//!
//! [`CachedModel`] wraps any [`ChatModel`](ann_llm::ChatModel) and answers from a
//! [`ResponseCache`]: one SQLite file in WAL mode, safe for many tasks and several processes at
//! once. The key is the sha256 of the backend identity and the canonical JSON of the whole request
//! ([`ChatRequest::fingerprint`](ann_llm::ChatRequest::fingerprint)), so a changed temperature, seed,
//! response format or sample index is a different entry. Only requests and responses are stored:
//! requests carry no secrets (API keys live in the HTTP backend), and no headers are kept.
//!
//! Modes ([`CacheMode`]): read-write (default), replay-only (a miss is an error naming the request),
//! refresh (always call, overwrite), off. Cassettes ([`ResponseCache::export_jsonl`],
//! [`ResponseCache::import_jsonl`]) are sorted JSONL files, stable byte for byte, for committing
//! small recordings as test fixtures.
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
