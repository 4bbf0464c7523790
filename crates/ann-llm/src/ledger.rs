//! The budget's ledger on record without serialising calls: one writer thread per budget records
//! the latest ledger (changes made while it was busy go into one recording: group commit), calls
//! wait for their reservation to be on record without holding any lock, and [`LedgerFile`]
//! appends each recording to the run's `budget.jsonl`, synced to disk in the background.
//!
//! What a recording promises: once [`LedgerSink::record`] returns, a crash of the process cannot
//! lose it (the line is in the operating system's hands); a power cut can lose at most the last
//! moment of recordings (the log is synced by a thread of its own, at most [`SYNC_PAUSE`] apart,
//! and completely at [`LedgerSink::flush`]), never the lines before.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::BudgetLedger;
use crate::budget::Books;

/// Where a budget's ledger is recorded ([`crate::Budget::record_to`]). Runs on the budget's
/// writer thread, one call at a time, never under the budget's lock.
pub trait LedgerSink: Send + 'static {
    /// Record `ledger`, the latest state (earlier states not recorded yet are folded into it).
    /// Returns once a crash of the process can no longer lose the record.
    fn record(&mut self, ledger: &BudgetLedger) -> Result<(), String>;
    /// Make everything recorded durable (called by [`crate::Budget::flush_ledger`] and when the
    /// budget is dropped, after the last record).
    fn flush(&mut self, ledger: &BudgetLedger) -> Result<(), String> {
        let _ = ledger;
        Ok(())
    }
}

/// A closure as a sink (records only; nothing to flush).
pub struct FnSink<F>(pub F);

impl<F: FnMut(&BudgetLedger) -> Result<(), String> + Send + 'static> LedgerSink for FnSink<F> {
    fn record(&mut self, ledger: &BudgetLedger) -> Result<(), String> {
        (self.0)(ledger)
    }
}

/// What the writer has done, as versions of the ledger and counts of flushes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded {
    /// The last version recorded.
    pub(crate) ok: u64,
    /// The last version whose recording failed.
    pub(crate) failed: u64,
    /// Flushes done (see `Books::flush_requests`).
    pub(crate) flushes: u64,
    /// The last flush request that failed.
    pub(crate) flush_failed: u64,
    /// The last failure.
    pub(crate) error: String,
}

/// What a budget shares with its writer thread.
pub(crate) struct Shared {
    pub(crate) books: Mutex<Books>,
    /// Wakes the writer (paired with `books`).
    pub(crate) wake: Condvar,
    pub(crate) recorded: tokio::sync::watch::Sender<Recorded>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            books: Mutex::new(Books::default()),
            wake: Condvar::new(),
            recorded: tokio::sync::watch::Sender::new(Recorded::default()),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("books", &self.books).finish()
    }
}

/// The writer thread: record the latest ledger whenever it changed, flush when asked, and at the
/// end (the budget is dropped) record and flush the last state.
pub(crate) fn write_loop(shared: &Shared, mut sink: Box<dyn LedgerSink>, mut written: u64) {
    let mut flushes = shared.books.lock().expect("budget lock").flush_requests;
    loop {
        let (ledger, version, flush_to, stop) = {
            let mut books = shared.books.lock().expect("budget lock");
            while books.awaited <= written && books.flush_requests == flushes && !books.stop {
                let wait = if books.version != written {
                    // Only settlements (nobody waits for them): held back until `LINGER` after the
                    // first of them, so that they are recorded with the next reservation in one
                    // write instead of one write each.
                    let since = *books.unawaited_since.get_or_insert_with(Instant::now);
                    let left = (since + LINGER).saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    Some(left)
                } else if books.ledger.in_flight.calls > 0 {
                    // Nothing to record, but calls in flight will settle: a settlement does not
                    // wake the writer, which looks again after `LINGER`.
                    Some(LINGER)
                } else {
                    None
                };
                books = match wait {
                    Some(left) => {
                        books.lingering = true;
                        shared.wake.wait_timeout(books, left).expect("budget lock").0
                    }
                    None => {
                        books.writer_idle = true;
                        shared.wake.wait(books).expect("budget lock")
                    }
                };
                books.lingering = false;
                books.writer_idle = false;
            }
            books.unawaited_since = None;
            (books.ledger, books.version, books.flush_requests, books.stop)
        };
        if version != written {
            let result = sink.record(&ledger);
            if let Err(why) = &result {
                tracing::warn!("the budget's ledger could not be recorded: {why}");
            }
            shared.recorded.send_modify(|r| match result {
                Ok(()) => r.ok = version,
                Err(why) => (r.failed, r.error) = (version, why),
            });
            written = version;
        }
        if flush_to != flushes || stop {
            let result = sink.flush(&ledger);
            if let Err(why) = &result {
                tracing::warn!("the budget's ledger could not be flushed: {why}");
            }
            shared.recorded.send_modify(|r| match result {
                Ok(()) => r.flushes = flush_to,
                Err(why) => (r.flush_failed, r.error) = (flush_to, why),
            });
            flushes = flush_to;
        }
        if stop {
            return;
        }
    }
}

/// The longest the writer holds back changes nobody waits for (settlements, and reservations
/// covered by budget set aside earlier) before recording them (they do not wake it: while calls
/// are in flight it looks for them this often); a reservation that sets budget aside, a flush or
/// the budget's drop records them at once. Until then the ledger on record holds the settled
/// calls' worst cases and the set-aside, which is what a resumed run would count. At 100 ms a
/// run writes at most about ten lines a second however many calls it makes.
pub const LINGER: Duration = Duration::from_millis(100);

/// The longest a recorded line waits before the syncing thread syncs it (and the shortest time
/// between two syncs: lines recorded meanwhile are synced together).
pub const SYNC_PAUSE: Duration = Duration::from_millis(500);

/// The log is rewritten as one line once it grows past this.
const COMPACT_AT: u64 = 1 << 20;

/// The run's ledger on disk: `budget.jsonl` in the run directory, one compact JSON
/// [`BudgetLedger`] per line, appended (the last complete line is the ledger); rewritten as its
/// last line when it grows past 1 MiB. `budget.json` holds the ledger as one JSON document,
/// written atomically at every flush (a run's end), for people and tools.
pub struct LedgerFile {
    dir: PathBuf,
    log: Arc<File>,
    bytes: u64,
    syncer: Syncer,
}

impl LedgerFile {
    /// The append-only log.
    pub const LOG: &'static str = "budget.jsonl";
    /// The flushed ledger as one document.
    pub const SNAPSHOT: &'static str = "budget.json";

    /// Open (or create) the log in `dir` for appending.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(Self::LOG);
        let log = Arc::new(open_log(&path)?);
        let bytes = log.metadata()?.len();
        let syncer = Syncer::start(log.clone())?;
        Ok(Self { dir: dir.to_owned(), log, bytes, syncer })
    }

    /// The ledger recorded in `dir`: the log's last complete line, else `budget.json` (a run
    /// directory of an older build, or a deleted log), else `None`.
    pub fn read(dir: &Path) -> std::io::Result<Option<BudgetLedger>> {
        match std::fs::read(dir.join(Self::LOG)) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                // A line cut short (or zeros after a power cut) is skipped.
                let last = text.lines().rev().find_map(|line| serde_json::from_str::<BudgetLedger>(line.trim()).ok());
                if last.is_some() {
                    return Ok(last);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let path = dir.join(Self::SNAPSHOT);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(Self::LOG)
    }

    /// Replace the log by one line (atomically and durably), then append to the new file.
    fn compact(&mut self, line: &str) -> std::io::Result<()> {
        let path = self.log_path();
        crate::write_atomic(&path, line.as_bytes())?;
        self.log = Arc::new(open_log(&path)?);
        self.bytes = line.len() as u64;
        *self.syncer.state.file.lock().expect("ledger sync lock") = self.log.clone();
        Ok(())
    }
}

impl LedgerSink for LedgerFile {
    fn record(&mut self, ledger: &BudgetLedger) -> Result<(), String> {
        let mut line = serde_json::to_string(ledger).expect("a ledger always serializes");
        line.push('\n');
        let written = if self.bytes + line.len() as u64 > COMPACT_AT {
            self.compact(&line)
        } else {
            (&*self.log).write_all(line.as_bytes()).map(|()| self.bytes += line.len() as u64)
        };
        written.map_err(|e| format!("writing {}: {e}", self.log_path().display()))?;
        self.syncer.dirty();
        Ok(())
    }

    fn flush(&mut self, ledger: &BudgetLedger) -> Result<(), String> {
        self.log.sync_data().map_err(|e| format!("syncing {}: {e}", self.log_path().display()))?;
        let path = self.dir.join(Self::SNAPSHOT);
        let text = serde_json::to_string_pretty(ledger).expect("a ledger always serializes") + "\n";
        crate::write_atomic(&path, text.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

/// Open `path` for appending; a last line cut short by a crash is ended, so the next line stands alone.
fn open_log(path: &Path) -> std::io::Result<File> {
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    if file.metadata()?.len() > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

/// The thread that syncs the log to disk, at most once per [`SYNC_PAUSE`].
struct Syncer {
    state: Arc<SyncState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct SyncState {
    file: Mutex<Arc<File>>,
    dirty: AtomicBool,
    stop: AtomicBool,
}

impl Syncer {
    fn start(file: Arc<File>) -> std::io::Result<Self> {
        let state =
            Arc::new(SyncState { file: Mutex::new(file), dirty: AtomicBool::new(false), stop: AtomicBool::new(false) });
        let shared = state.clone();
        let thread = std::thread::Builder::new().name("budget-ledger-sync".into()).spawn(move || {
            while !shared.stop.load(Ordering::Acquire) {
                if !shared.dirty.swap(false, Ordering::AcqRel) {
                    // Woken by the record that makes the log dirty (or by the drop).
                    std::thread::park();
                    continue;
                }
                let file = shared.file.lock().expect("ledger sync lock").clone();
                if let Err(e) = file.sync_data() {
                    tracing::debug!(error = %e, "the budget's ledger could not be synced (retried at the next line)");
                    shared.dirty.store(true, Ordering::Release);
                }
                let until = Instant::now() + SYNC_PAUSE;
                while !shared.stop.load(Ordering::Acquire) && Instant::now() < until {
                    std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
                }
            }
        })?;
        Ok(Self { state, thread: Some(thread) })
    }

    /// Only the record that makes a clean log dirty wakes the thread (one wake per sync, not per line).
    fn dirty(&self) {
        if self.state.dirty.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BudgetSpent;

    fn ledger(calls: u64, in_flight: u64) -> BudgetLedger {
        BudgetLedger {
            spent: BudgetSpent { tokens: calls * 10, dollars: 0.0, calls },
            in_flight: BudgetSpent { tokens: in_flight * 10, dollars: 0.0, calls: in_flight },
            ahead: BudgetSpent::default(),
        }
    }

    #[test]
    fn the_last_complete_line_is_the_ledger_and_a_cut_line_is_skipped() {
        let dir = tempfile_dir("read");
        assert_eq!(LedgerFile::read(&dir).unwrap(), None);
        let mut file = LedgerFile::open(&dir).unwrap();
        file.record(&ledger(1, 1)).unwrap();
        file.record(&ledger(2, 0)).unwrap();
        assert_eq!(LedgerFile::read(&dir).unwrap(), Some(ledger(2, 0)));
        assert!(!dir.join(LedgerFile::SNAPSHOT).exists(), "the snapshot is written at a flush");
        drop(file);
        // A crash in the middle of a line: the line before counts, and the next process's lines
        // start on a line of their own.
        std::fs::OpenOptions::new().append(true).open(dir.join(LedgerFile::LOG)).unwrap().write_all(b"{\"spe").unwrap();
        assert_eq!(LedgerFile::read(&dir).unwrap(), Some(ledger(2, 0)));
        let mut file = LedgerFile::open(&dir).unwrap();
        file.record(&ledger(3, 2)).unwrap();
        assert_eq!(LedgerFile::read(&dir).unwrap(), Some(ledger(3, 2)));
        file.flush(&ledger(3, 2)).unwrap();
        let snapshot: BudgetLedger =
            serde_json::from_str(&std::fs::read_to_string(dir.join(LedgerFile::SNAPSHOT)).unwrap()).unwrap();
        assert_eq!(snapshot, ledger(3, 2));
        // Without the log, the snapshot (an older build's only file) is the ledger.
        std::fs::remove_file(dir.join(LedgerFile::LOG)).unwrap();
        assert_eq!(LedgerFile::read(&dir).unwrap(), Some(ledger(3, 2)));
        std::fs::write(dir.join(LedgerFile::SNAPSHOT), "not json").unwrap();
        let err = LedgerFile::read(&dir).unwrap_err();
        assert!(err.to_string().contains("budget.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_long_log_is_compacted_to_its_last_line() {
        let dir = tempfile_dir("compact");
        let mut file = LedgerFile::open(&dir).unwrap();
        let mut n = 0;
        while std::fs::metadata(dir.join(LedgerFile::LOG)).unwrap().len() + 200 < COMPACT_AT {
            n += 1;
            file.record(&ledger(n, 1)).unwrap();
        }
        for _ in 0..10 {
            n += 1;
            file.record(&ledger(n, 1)).unwrap();
        }
        assert!(std::fs::metadata(dir.join(LedgerFile::LOG)).unwrap().len() < 2_000);
        assert_eq!(LedgerFile::read(&dir).unwrap(), Some(ledger(n, 1)));
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ann-llm-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
