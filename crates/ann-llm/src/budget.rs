//! Hard budgets (tokens, dollars, calls), checked before each call against its worst case.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::ledger::{LedgerSink, Recorded, Shared};
use crate::{ChatRequest, LlmError, PriceTable, Usage};

/// Limits of a run; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimits {
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_dollars: Option<f64>,
    #[serde(default)]
    pub max_calls: Option<u64>,
    /// Completion tokens assumed for a request that sets no `max_tokens` (its worst case).
    #[serde(default = "default_completion_allowance")]
    pub default_max_tokens: u32,
}

fn default_completion_allowance() -> u32 {
    4096
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            max_tokens: None,
            max_dollars: None,
            max_calls: None,
            default_max_tokens: default_completion_allowance(),
        }
    }
}

/// The reason of a budget stop caused by [`Budget::interrupt_when`] (the detail of
/// [`LlmError::Interrupted`]).
pub const INTERRUPTED: &str = "interrupted by the user: no new call starts";

/// What has been spent (or is reserved by calls in flight).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BudgetSpent {
    pub tokens: u64,
    pub dollars: f64,
    pub calls: u64,
}

impl BudgetSpent {
    /// The sum of two amounts (saturating: a provider's absurd usage cannot wrap a total back
    /// under a limit).
    pub fn plus(self, other: BudgetSpent) -> BudgetSpent {
        BudgetSpent {
            tokens: self.tokens.saturating_add(other.tokens),
            dollars: self.dollars + other.dollars,
            calls: self.calls.saturating_add(other.calls),
        }
    }
    /// Nothing at all.
    pub fn is_zero(&self) -> bool {
        *self == BudgetSpent::default()
    }
    /// At least `other` in every dimension.
    fn covers(&self, other: &BudgetSpent) -> bool {
        self.tokens >= other.tokens && self.dollars >= other.dollars && self.calls >= other.calls
    }
    fn minus(self, other: BudgetSpent) -> BudgetSpent {
        BudgetSpent {
            tokens: self.tokens.saturating_sub(other.tokens),
            dollars: (self.dollars - other.dollars).max(0.0),
            calls: self.calls.saturating_sub(other.calls),
        }
    }
}

/// A budget's books: what finished calls spent and the worst case reserved by calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLedger {
    pub spent: BudgetSpent,
    pub in_flight: BudgetSpent,
    /// Set aside for calls about to start: once on record, a call it covers is sent without
    /// waiting for a recording of its own (see [`Budget::record_to`]). Zero whenever the ledger is
    /// flushed; a resumed run counts it as spent, since calls may have used it.
    #[serde(default, skip_serializing_if = "BudgetSpent::is_zero")]
    pub ahead: BudgetSpent,
}

impl BudgetLedger {
    /// The most the calls so far can have cost: what a resumed run must count as already spent
    /// (a call in flight when its process died may have been billed, and so may one that the
    /// budget set aside for).
    pub fn committed(&self) -> BudgetSpent {
        self.spent.plus(self.in_flight).plus(self.ahead)
    }
}

/// How many calls' worst cases the budget sets aside at once when a writer records its ledger
/// (fewer near a limit: at most a tenth of what is left below it).
pub const AHEAD_CALLS: u64 = 16;

#[derive(Default)]
pub(crate) struct Books {
    pub(crate) ledger: BudgetLedger,
    /// Set by the user (Ctrl-C): no new call starts.
    interrupt: Option<Arc<AtomicBool>>,
    /// Bumped at every change of the ledger, so the ledger's writer knows what it has recorded.
    pub(crate) version: u64,
    /// Whether a writer records the ledger ([`Budget::record_with`]).
    pub(crate) recording: bool,
    /// The writer is waiting for a change (so a change must wake it).
    pub(crate) writer_idle: bool,
    /// The latest version a call waits to see recorded (a reservation); later changes only settle.
    pub(crate) awaited: u64,
    /// The version that set the ledger's `ahead` aside: a call it covers waits for this one.
    ahead_version: u64,
    /// The writer sleeps with a timeout (holding changes nobody waits for, or looking for them
    /// while calls are in flight), so only a change somebody waits for must wake it.
    pub(crate) lingering: bool,
    /// When the writer first saw a change nobody waits for that it has not recorded yet.
    pub(crate) unawaited_since: Option<std::time::Instant>,
    /// Calls of [`Budget::flush_ledger`] so far (the writer flushes until it has done as many).
    pub(crate) flush_requests: u64,
    /// The budget is gone: the writer records the last state, flushes and stops.
    pub(crate) stop: bool,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books").field("ledger", &self.ledger).field("recording", &self.recording).finish()
    }
}

impl Books {
    /// A new version of the ledger: one a call waits to see recorded (`awaited`), or one the
    /// writer may hold back for up to [`crate::LINGER`].
    fn bump(&mut self, awaited: bool) {
        self.version += 1;
        if awaited {
            self.awaited = self.version;
        } else if self.recording && self.unawaited_since.is_none() {
            self.unawaited_since = Some(std::time::Instant::now());
        }
    }
}

/// Give back what is set aside (at a flush or the writer's stop): the record made durable then is
/// exact.
fn give_back_ahead(books: &mut Books) {
    if !books.ledger.ahead.is_zero() {
        books.ledger.ahead = BudgetSpent::default();
        books.version += 1;
    }
}

/// A shared hard budget. Every call reserves its worst case first (prompt upper bound plus
/// `max_tokens`), so concurrent calls can never together exceed a limit.
///
/// A budget belongs to a run, not to a process: [`Budget::with_spent`] starts it from what earlier
/// processes of the run spent, and [`Budget::record_to`] hands the ledger to a
/// [`LedgerSink`] (e.g. a [`crate::LedgerFile`] next to the run's checkpoint) on a writer thread
/// of its own: a call waits (asynchronously, holding no lock) until its reservation is recorded
/// before it is sent; changes made meanwhile are recorded together (group commit).
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    prices: PriceTable,
    pub(crate) shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Budget {
    fn drop(&mut self) {
        // The writer records the last state and flushes it before the budget is gone.
        self.stop_writer();
    }
}

impl Budget {
    pub fn new(limits: BudgetLimits, prices: PriceTable) -> Arc<Self> {
        Arc::new(Self { limits, prices, shared: Arc::new(Shared::default()), writer: Mutex::new(None) })
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.shared.books.lock().expect("budget lock")
    }

    /// Close the budget when `flag` is set (a user's Ctrl-C): from then on every new call is
    /// refused as a budget stop, so the run stops as it does at a limit (calls in flight finish
    /// and reach the cache, the last checkpoint stays resumable, nothing is scored).
    pub fn interrupt_when(self: Arc<Self>, flag: Arc<AtomicBool>) -> Arc<Self> {
        self.books().interrupt = Some(flag);
        self
    }

    /// Resume with what an earlier (checkpointed) part of the run already spent.
    pub fn with_spent(self: Arc<Self>, spent: BudgetSpent) -> Arc<Self> {
        self.change(true, |ledger| ledger.spent = spent);
        self
    }

    /// Record the ledger with `sink` now (on the caller's thread) and after every change from now
    /// on, on a writer thread of the budget's: before each call is sent its worst case is
    /// reserved, and the call waits until a recording that holds the reservation has returned;
    /// after a call settles its spend is recorded without anyone waiting. The writer always
    /// records the latest ledger, so changes made while it was busy are recorded at once, and it
    /// runs without the budget's lock. A failure to record before a call refuses the call with
    /// [`LlmError::BudgetExhausted`] and withdraws its reservation (an unrecorded spend could be
    /// counted by no resumed run); a failure after a call is logged (the recorded ledger then
    /// still holds the call's worst case). [`Budget::flush_ledger`] waits until everything is
    /// recorded and flushed; dropping the budget does the same. Returns the first recording's error
    /// (the sink is then not installed).
    ///
    /// So that calls do not wait for a recording each, a reservation the ledger cannot cover
    /// sets aside up to [`AHEAD_CALLS`] times its worst case (`BudgetLedger::ahead`, on record
    /// with it); later calls covered by what is set aside are sent as soon as that is on record,
    /// and their reservations are recorded with the next change (at most [`crate::LINGER`] later).
    /// A resumed run counts what was set aside as spent, so a crash can make it over-count by
    /// that much, never under-count; a flush gives it back.
    pub fn record_to(&self, sink: impl LedgerSink) -> Result<(), String> {
        self.stop_writer();
        let mut sink: Box<dyn LedgerSink> = Box::new(sink);
        let (ledger, version) = {
            let books = self.books();
            (books.ledger, books.version)
        };
        sink.record(&ledger)?;
        let mut books = self.books();
        books.recording = true;
        books.stop = false;
        drop(books);
        self.shared.recorded.send_modify(|r| *r = Recorded { ok: version, ..Recorded::default() });
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("budget-ledger".into())
            .spawn(move || crate::ledger::write_loop(&shared, sink, version))
            .map_err(|e| format!("cannot start the ledger's writer: {e}"))?;
        *self.writer.lock().expect("ledger writer lock") = Some(thread);
        Ok(())
    }

    /// [`Budget::record_to`] a closure that records each ledger (and has nothing to flush).
    pub fn record_with(
        &self,
        recorder: impl FnMut(&BudgetLedger) -> Result<(), String> + Send + 'static,
    ) -> Result<(), String> {
        self.record_to(crate::FnSink(recorder))
    }

    /// Wait until every change of the ledger so far is recorded and the sink has flushed it
    /// ([`LedgerSink::flush`]); an error says why it could not be. Without a sink: at once.
    pub async fn flush_ledger(&self) -> Result<(), String> {
        let request = {
            let mut books = self.books();
            if !books.recording {
                return Ok(());
            }
            give_back_ahead(&mut books);
            books.flush_requests += 1;
            let request = books.flush_requests;
            self.wake_writer(books, true);
            request
        };
        let mut rx = self.shared.recorded.subscribe();
        let state = rx
            .wait_for(|r| r.flushes >= request || r.flush_failed >= request)
            .await
            .map_err(|_| "the ledger's writer stopped".to_string())?;
        if state.flushes >= request { Ok(()) } else { Err(state.error.clone()) }
    }

    /// Stop the writer (if any) after it recorded and flushed the last state.
    fn stop_writer(&self) {
        let Some(thread) = self.writer.lock().expect("ledger writer lock").take() else { return };
        let mut books = self.books();
        give_back_ahead(&mut books);
        books.stop = true;
        self.wake_writer(books, true);
        if thread.join().is_err() {
            tracing::warn!("the budget's ledger writer panicked");
        }
        let mut books = self.books();
        books.recording = false;
        books.stop = false;
    }

    /// Wake the writer if it sleeps and must act now: for a change somebody waits for, a flush
    /// or a stop (`urgent`); a change nobody waits for wakes it only when it sleeps without a timeout.
    fn wake_writer(&self, books: std::sync::MutexGuard<'_, Books>, urgent: bool) {
        let urgent = urgent || books.awaited == books.version;
        let wake = books.writer_idle || (books.lingering && urgent);
        drop(books);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Change the ledger; returns the new version when a writer records it. `awaited`: a call
    /// waits for this change to be recorded (otherwise the writer may hold it back briefly).
    fn change(&self, awaited: bool, f: impl FnOnce(&mut BudgetLedger)) -> Option<u64> {
        let mut books = self.books();
        f(&mut books.ledger);
        books.bump(awaited);
        let version = books.recording.then_some(books.version);
        self.wake_writer(books, false);
        version
    }

    /// Wait until the ledger's version `version` (or a later one) is recorded.
    pub(crate) async fn recorded(&self, version: u64) -> Result<(), String> {
        if self.shared.recorded.borrow().ok >= version {
            return Ok(());
        }
        let mut rx = self.shared.recorded.subscribe();
        let state = rx
            .wait_for(|r| r.ok >= version || r.failed >= version)
            .await
            .map_err(|_| "the ledger's writer stopped".to_string())?;
        if state.ok >= version { Ok(()) } else { Err(state.error.clone()) }
    }

    pub fn limits(&self) -> &BudgetLimits {
        &self.limits
    }

    /// What finished calls have spent.
    pub fn spent(&self) -> BudgetSpent {
        self.books().ledger.spent
    }

    /// What finished calls have spent and calls in flight hold reserved.
    pub fn ledger(&self) -> BudgetLedger {
        self.books().ledger
    }

    fn worst_case(&self, request: &ChatRequest) -> BudgetSpent {
        let completion = request.max_tokens.unwrap_or(self.limits.default_max_tokens) as u64;
        let prompt = request.prompt_upper_bound();
        let usage = Usage { prompt_tokens: prompt, completion_tokens: completion, cached_tokens: 0 };
        BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(&request.model, &usage), calls: 1 }
    }

    /// Reserve the worst case of `request`, or say which limit it would break. Returns the
    /// reservation and, when a writer records the ledger, the version the call must see recorded
    /// before it is sent.
    ///
    /// A reservation that what is set aside covers takes it from there (what is on record does
    /// not change) and waits only for the set-aside to be on record. Otherwise it sets aside up to
    /// [`AHEAD_CALLS`] times its worst case for the calls after it, at most a tenth of what is
    /// left below each limit, and waits for that to be on record.
    pub(crate) fn reserve(&self, request: &ChatRequest) -> Result<(BudgetSpent, Option<u64>), LlmError> {
        let worst = self.worst_case(request);
        let mut books = self.books();
        let ledger = books.ledger;
        if books.recording && ledger.ahead.covers(&worst) && !self.interrupted(&books) {
            books.ledger.ahead = ledger.ahead.minus(worst);
            books.ledger.in_flight = ledger.in_flight.plus(worst);
            books.bump(false);
            let version = books.ahead_version;
            self.wake_writer(books, false);
            return Ok((worst, Some(version)));
        }
        let after = ledger.spent.plus(ledger.in_flight).plus(worst);
        let l = &self.limits;
        if self.interrupted(&books) {
            return Err(LlmError::Interrupted);
        }
        let broken = if l.max_calls.is_some_and(|m| after.calls > m) {
            Some(format!(
                "calls: {} spent, {} in flight, limit {}",
                ledger.spent.calls,
                ledger.in_flight.calls,
                l.max_calls.unwrap_or_default()
            ))
        } else if l.max_tokens.is_some_and(|m| after.tokens > m) {
            Some(format!(
                "tokens: {} spent, {} in flight, this call may use {}, limit {}",
                ledger.spent.tokens,
                ledger.in_flight.tokens,
                worst.tokens,
                l.max_tokens.unwrap_or_default()
            ))
        } else if l.max_dollars.is_some_and(|m| after.dollars > m) {
            Some(format!(
                "dollars: {:.6} spent, {:.6} in flight, this call may cost {:.6}, limit {:.6}",
                ledger.spent.dollars,
                ledger.in_flight.dollars,
                worst.dollars,
                l.max_dollars.unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(why) = broken {
            return Err(LlmError::BudgetExhausted(why));
        }
        if books.recording {
            books.ledger.ahead = self.ahead(after, worst);
        }
        books.ledger.in_flight = ledger.in_flight.plus(worst);
        books.bump(true);
        // In the same lock as the change: no call can see the set-aside before its version.
        books.ahead_version = books.version;
        let version = books.recording.then_some(books.version);
        self.wake_writer(books, false);
        Ok((worst, version))
    }

    fn interrupted(&self, books: &Books) -> bool {
        books.interrupt.as_ref().is_some_and(|flag| flag.load(Ordering::SeqCst))
    }

    /// What to set aside once the ledger commits `after`: [`AHEAD_CALLS`] × `worst`, and under
    /// each limit at most a tenth of what is left below it.
    fn ahead(&self, after: BudgetSpent, worst: BudgetSpent) -> BudgetSpent {
        let l = &self.limits;
        let room = |limit: Option<u64>, used: u64, want: u64| match limit {
            Some(limit) => want.min(limit.saturating_sub(used) / 10),
            None => want,
        };
        BudgetSpent {
            tokens: room(l.max_tokens, after.tokens, worst.tokens.saturating_mul(AHEAD_CALLS)),
            calls: room(l.max_calls, after.calls, AHEAD_CALLS),
            dollars: match l.max_dollars {
                Some(limit) => (worst.dollars * AHEAD_CALLS as f64).min((limit - after.dollars).max(0.0) / 10.0),
                None => worst.dollars * AHEAD_CALLS as f64,
            },
        }
    }

    /// Give back a reservation whose call was never sent because the ledger could not be
    /// recorded, and what was set aside with it (nothing may be sent on a record that failed).
    pub(crate) fn withdraw(&self, reserved: BudgetSpent) {
        self.change(false, |ledger| {
            ledger.in_flight = ledger.in_flight.minus(reserved);
            ledger.ahead = BudgetSpent::default();
        });
    }

    pub(crate) fn settle(&self, model: &str, reserved: BudgetSpent, usage: Option<&Usage>) {
        // A failed attempt counts as a call; tokens it did not report are taken as zero.
        let usage = usage.copied().unwrap_or_default();
        let actual = BudgetSpent { tokens: usage.total(), dollars: self.prices.cost(model, &usage), calls: 1 };
        // Recorded by the writer without anyone waiting: until then the ledger on record holds the
        // call's worst case, which is what a resumed run would count.
        self.change(false, |ledger| {
            ledger.in_flight = ledger.in_flight.minus(reserved);
            ledger.spent = ledger.spent.plus(actual);
        });
    }
}
