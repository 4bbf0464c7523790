//! The shared cache handle: the SQLite store, its memory front, hit/miss counters, the table of
//! calls in flight and the answers that could not be stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ann_llm::{ChatRequest, ChatResponse, LlmError, Usage};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::claims::ClaimGuard;
use crate::front::Front;
use crate::store::{OnConflict, Store, response_json};
use crate::writer::{Claim, Entry};
use crate::{CacheConfig, CacheError, CassetteEntry, ImportReport};

/// The outcome of one upstream call, shared with every task that asked the same thing meanwhile.
pub(crate) type Outcome = Result<ChatResponse, LlmError>;

/// A persistent response cache on one SQLite file. Cheap to clone; clones share the database
/// connections, the counters and the single-flight table, so one cache can serve many
/// [`CachedModel`](crate::CachedModel)s (keys include the backend identity, so they never mix).
#[derive(Clone)]
pub struct ResponseCache {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    front: Front,
    unsaved: Mutex<Vec<CassetteEntry>>,
    flights: Mutex<HashMap<String, Flight>>,
    next_flight: AtomicU64,
    counters: Counters,
}

struct Flight {
    id: u64,
    outcome: watch::Receiver<Option<Outcome>>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    coalesced: AtomicU64,
    misses: AtomicU64,
    saved_prompt_tokens: AtomicU64,
    saved_completion_tokens: AtomicU64,
}

/// Counters since the cache was opened (all clones together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheStats {
    /// Requests answered from the database (or its memory front).
    pub hits: u64,
    /// Requests answered by an identical call that was already in flight (single-flight).
    pub coalesced: u64,
    /// Requests the cache could not answer: sent to the backend, or refused in replay-only mode.
    pub misses: u64,
    /// Prompt tokens of the answers served from the cache or an in-flight call.
    pub saved_prompt_tokens: u64,
    /// Completion tokens of the answers served from the cache or an in-flight call.
    pub saved_completion_tokens: u64,
}

impl CacheStats {
    /// Prompt and completion tokens not paid for thanks to the cache.
    pub fn saved_tokens(&self) -> u64 {
        self.saved_prompt_tokens.saturating_add(self.saved_completion_tokens)
    }
}

/// Whether the caller makes the upstream call for a key or waits for the task that does.
pub(crate) enum Join {
    Leader(Leader),
    Follower(watch::Receiver<Option<Outcome>>),
}

/// The right and duty to make the upstream call for one key. Dropping it without [`Leader::finish`]
/// (the caller was cancelled) releases the waiting tasks, which then try again themselves.
pub(crate) struct Leader {
    shared: Arc<Shared>,
    key: String,
    id: u64,
    outcome: watch::Sender<Option<Outcome>>,
}

impl Leader {
    /// Hand the outcome to every waiting task.
    pub(crate) fn finish(self, outcome: Outcome) {
        self.outcome.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut flights = self.shared.flights.lock().expect("flight table lock");
        if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(&self.key);
        }
        // `self.outcome` drops after this: waiters see either the outcome or a closed channel.
    }
}

impl ResponseCache {
    /// Open (or create) the cache at `path` with the default configuration.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        Self::open_with(path, &CacheConfig::default())
    }

    /// Open (or create) the cache at `path`: WAL mode, busy timeout, schema check. Blocks briefly.
    pub fn open_with(path: &Path, config: &CacheConfig) -> Result<Self, CacheError> {
        let store = Store::open(path, config)?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                front: Front::new(config.memory_entries, config.memory_bytes),
                unsaved: Mutex::new(Vec::new()),
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                counters: Counters::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.shared.store.path()
    }

    /// Counters since opening.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            saved_prompt_tokens: c.saved_prompt_tokens.load(Ordering::Relaxed),
            saved_completion_tokens: c.saved_completion_tokens.load(Ordering::Relaxed),
        }
    }

    /// The stored answer for a key (as recorded, `cache_hit` false), without touching the counters.
    pub async fn get(&self, key: &str) -> Result<Option<ChatResponse>, CacheError> {
        let key = key.to_owned();
        self.blocking(move |store| store.get(&key)).await
    }

    /// Store an answer for `request` from `backend`, replacing any earlier one; returns the key.
    pub async fn insert(
        &self,
        backend: &str,
        request: &ChatRequest,
        response: &ChatResponse,
    ) -> Result<String, CacheError> {
        let key = request.fingerprint(backend);
        self.store(&key, backend, request, response, OnConflict::Replace, None).await?;
        Ok(key)
    }

    /// Answers received from a backend that could not be stored (see [`CacheError::Unsaved`]), in
    /// the order they arrived. Write them somewhere safe (e.g. [`CassetteEntry::to_line`] into the
    /// run directory, to import later) before stopping, so that they are not paid for again.
    pub fn unsaved(&self) -> Vec<CassetteEntry> {
        self.shared.unsaved.lock().expect("unsaved lock").clone()
    }

    /// How many entries the file holds. Blocks (call from `spawn_blocking` in async code).
    pub fn len(&self) -> Result<usize, CacheError> {
        self.shared.store.len()
    }

    /// Whether the file holds no entry. Blocks.
    pub fn is_empty(&self) -> Result<bool, CacheError> {
        Ok(self.len()? == 0)
    }

    /// Every entry, sorted by key. Blocks.
    pub fn entries(&self) -> Result<Vec<CassetteEntry>, CacheError> {
        self.shared.store.entries()
    }

    /// Write every entry to a JSONL cassette at `path`, one line per entry sorted by key; the same
    /// entries always give the same bytes. Returns the number of entries. Blocks.
    pub fn export_jsonl(&self, path: &Path) -> Result<usize, CacheError> {
        self.shared.store.export(path)
    }

    /// Add the entries of a JSONL cassette (the cassette wins over a different stored answer).
    /// All or nothing: a malformed line (reported with file and line) imports nothing. Importing the
    /// same cassette twice changes nothing. Blocks.
    pub fn import_jsonl(&self, path: &Path) -> Result<ImportReport, CacheError> {
        let report = self.shared.store.import(path);
        // Imported answers may replace remembered ones.
        self.shared.front.clear();
        report
    }

    /// Store an answer (once committed, it is also remembered in memory), then release `claim`.
    pub(crate) async fn store(
        &self,
        key: &str,
        backend: &str,
        request: &ChatRequest,
        response: &ChatResponse,
        on_conflict: OnConflict,
        claim: Option<ClaimGuard>,
    ) -> Result<(), CacheError> {
        let entry = Entry {
            key: key.to_owned(),
            backend: backend.to_owned(),
            request: request.canonical_json(),
            response: response_json(response),
            on_conflict,
            claim,
        };
        self.shared.store.writer.store(entry).await?;
        self.remember(key, response);
        Ok(())
    }

    /// Keep a paid answer that could not be stored: in memory (so this process does not ask again)
    /// and in the list [`ResponseCache::unsaved`] returns.
    pub(crate) fn keep_unsaved(&self, backend: &str, request: &ChatRequest, response: &ChatResponse) {
        let entry = CassetteEntry::new(backend, request, response);
        self.remember(&entry.key, response);
        self.shared.unsaved.lock().expect("unsaved lock").push(entry);
    }

    /// The answer remembered in memory for `key`, as recorded (`cache_hit` false).
    pub(crate) fn recent(&self, key: &str) -> Option<ChatResponse> {
        self.shared.front.get(key).map(|r| ChatResponse::clone(&r))
    }

    pub(crate) fn remember(&self, key: &str, response: &ChatResponse) {
        self.shared.front.insert(key, Arc::new(ChatResponse { cache_hit: false, ..response.clone() }));
    }

    /// Claim the key, then look it up: the stored answer, or this handle's claim on the key, or
    /// word that another process (or handle) holds it.
    pub(crate) async fn claim_and_lookup(&self, key: &str) -> Result<Claim, CacheError> {
        let claim = self.shared.store.writer.claim_and_lookup(key).await?;
        if let Claim::Hit(hit) = &claim {
            self.remember(key, hit);
        }
        Ok(claim)
    }

    /// Write transactions this handle has run: one per batch of inserts, none for lookups and
    /// claims. For tests and benchmarks.
    #[doc(hidden)]
    pub fn write_transactions(&self) -> u64 {
        self.shared.store.writer.write_transactions()
    }

    /// The longest pause between two looks at a key another process or handle is fetching:
    /// [`CacheConfig::claim_lease`], at most 250 ms.
    pub(crate) fn claim_poll_max(&self) -> std::time::Duration {
        self.shared
            .store
            .config()
            .claim_lease
            .min(std::time::Duration::from_millis(250))
            .max(std::time::Duration::from_millis(1))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, CacheError> + Send + 'static,
    ) -> Result<T, CacheError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared.store)).await.map_err(|e| CacheError::Worker(e.to_string()))?
    }

    /// Become the one task that calls upstream for `key`, or subscribe to the task that already does.
    pub(crate) fn join(&self, key: &str) -> Join {
        let mut flights = self.shared.flights.lock().expect("flight table lock");
        if let Some(flight) = flights.get(key) {
            return Join::Follower(flight.outcome.clone());
        }
        let id = self.shared.next_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        flights.insert(key.to_owned(), Flight { id, outcome: rx });
        Join::Leader(Leader { shared: self.shared.clone(), key: key.to_owned(), id, outcome: tx })
    }

    /// Count an answer served without a backend call and mark it as a cache hit.
    pub(crate) fn served(&self, mut response: ChatResponse, coalesced: bool) -> ChatResponse {
        let c = &self.shared.counters;
        if coalesced { &c.coalesced } else { &c.hits }.fetch_add(1, Ordering::Relaxed);
        let Usage { prompt_tokens, completion_tokens, .. } = response.usage;
        c.saved_prompt_tokens.fetch_add(prompt_tokens, Ordering::Relaxed);
        c.saved_completion_tokens.fetch_add(completion_tokens, Ordering::Relaxed);
        response.cache_hit = true;
        response
    }

    pub(crate) fn record_miss(&self) {
        self.shared.counters.misses.fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache").field("path", &self.path()).field("stats", &self.stats()).finish()
    }
}
