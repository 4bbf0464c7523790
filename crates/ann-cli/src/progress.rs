//! Progress display: a bar per long phase of a run (training batches, each evaluation) with the
//! live score, calls, cost and cache hits; on a terminal only. Elsewhere (a pipe, a log file) the
//! run's lines are printed as they come and each phase ends with one summary line.
//!
//! Colours follow the terminal: none when stderr is not a terminal or `NO_COLOR` is set (the
//! `console` crate under `indicatif` checks both). Live figures are refreshed by a thread of its
//! own, which reads the run's `journal.jsonl` (training progress) outside any lock.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ann_experiment::reexports::{JournalEvent, Meter, Totals};
use ann_experiment::{Phase, RunObserver};
use indicatif::{ProgressBar, ProgressStyle};

/// The phase under way and its figures.
struct Current {
    phase: Phase,
    started: Instant,
    /// The meter's totals when the phase began.
    at_start: Totals,
    /// Examples scored in this phase, and the sum of their scores.
    scored: u64,
    sum: f64,
    /// Training: the journal read so far (bytes), batches finished, the current validation
    /// score, accepted and rejected steps.
    journal_read: u64,
    batches: u64,
    validation: Option<f64>,
    accepted: u64,
    rejected: u64,
}

/// The progress display of one command; [`RunObserver`] for the run.
pub struct Bars {
    bar: ProgressBar,
    terminal: bool,
    meter: Mutex<Option<Arc<Meter>>>,
    current: Mutex<Option<Current>>,
    run_dir: Mutex<Option<std::path::PathBuf>>,
    stop: AtomicBool,
}

impl Bars {
    /// A display on stderr; `refresh` starts the thread that redraws the live figures (on a terminal).
    pub fn new() -> Arc<Self> {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"));
        let terminal = !bar.is_hidden();
        if terminal {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let bars = Arc::new(Self {
            bar,
            terminal,
            meter: Mutex::new(None),
            current: Mutex::new(None),
            run_dir: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        if terminal {
            let weak = Arc::downgrade(&bars);
            std::thread::spawn(move || {
                while let Some(bars) = weak.upgrade() {
                    if bars.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    bars.refresh();
                    drop(bars);
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        bars
    }

    /// End the display: the phase under way gets its summary line, the bar is cleared.
    pub fn finish_and_clear(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.end_phase();
        self.bar.finish_and_clear();
    }

    /// The run directory, once training has begun in one.
    pub fn run_dir(&self) -> Option<std::path::PathBuf> {
        self.run_dir.lock().expect("run dir slot").clone()
    }

    fn totals(&self) -> Totals {
        self.meter.lock().expect("meter slot").as_ref().map(|m| m.report().total).unwrap_or_default()
    }

    fn print(&self, line: &str) {
        if self.terminal {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Read what the journal gained since the last look (training only), then redraw.
    fn refresh(&self) {
        let journal = match self.current.lock().expect("phase slot").as_ref() {
            Some(Current { phase: Phase::Training { run_dir, .. }, journal_read, .. }) => {
                Some((run_dir.join("journal.jsonl"), *journal_read))
            }
            _ => None,
        };
        let events = journal.map(|(path, from)| read_journal(&path, from));
        let totals = self.totals();
        let mut slot = self.current.lock().expect("phase slot");
        let Some(current) = slot.as_mut() else { return };
        if let Some((read, events)) = events {
            if read < current.journal_read {
                // The journal was cut back to the last checkpoint (a resume): count it again.
                (current.batches, current.accepted, current.rejected) = (0, 0, 0);
            }
            current.journal_read = read;
            for event in events {
                count(current, &event);
            }
        }
        self.bar.set_position(position(current));
        self.bar.set_message(figures(current, &totals));
    }

    fn end_phase(&self) {
        self.refresh();
        let totals = self.totals();
        let Some(done) = self.current.lock().expect("phase slot").take() else { return };
        let (name, total, unit) = describe(&done.phase);
        let line = format!(
            "{name}: {}/{total} {unit}, {}, {:.1}s",
            position(&done),
            figures(&done, &totals).replace(" · ", ", "),
            done.started.elapsed().as_secs_f64()
        );
        self.print(&line);
        if self.terminal {
            self.bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid"));
            self.bar.set_message("");
        }
    }
}

/// The journal's complete lines after byte `from`: how far they reach, and their events
/// (a line that does not parse, e.g. one being written, is left for the next look).
fn read_journal(path: &std::path::Path, from: u64) -> (u64, Vec<JournalEvent>) {
    let Ok(mut file) = std::fs::File::open(path) else { return (from, vec![]) };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < from {
        return (0, read_journal(path, 0).1);
    }
    let mut text = String::new();
    if std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from)).is_err()
        || file.read_to_string(&mut text).is_err()
    {
        return (from, vec![]);
    }
    let Some(end) = text.rfind('\n') else { return (from, vec![]) };
    let events = text[..end].lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (from + end as u64 + 1, events)
}

fn count(current: &mut Current, event: &JournalEvent) {
    match event {
        JournalEvent::Start { val_initial, .. } => current.validation = Some(*val_initial),
        JournalEvent::Skip { .. } => current.batches += 1,
        JournalEvent::Step(step) => {
            current.batches += 1;
            if step.decision.is_accepted() {
                current.accepted += 1;
                current.validation = step.val_candidate.or(current.validation);
            } else {
                current.rejected += 1;
            }
        }
        JournalEvent::End { val_best, .. } => current.validation = Some(*val_best),
    }
}

fn describe(phase: &Phase) -> (String, u64, &'static str) {
    match phase {
        Phase::Training { batches, .. } => ("training".into(), *batches, "batches"),
        Phase::Evaluation { name, examples } => (name.clone(), *examples, "examples"),
    }
}

fn position(current: &Current) -> u64 {
    match &current.phase {
        Phase::Training { batches, .. } => current.batches.min(*batches),
        Phase::Evaluation { examples, .. } => current.scored.min(*examples),
    }
}

/// The live figures: the score (training: the current validation score and the steps), then
/// the calls, cost and cache hits of the phase.
fn figures(current: &Current, totals: &Totals) -> String {
    let score = match &current.phase {
        Phase::Training { .. } => format!(
            "validation {} · {} accepted · {} rejected",
            current.validation.map_or("-".into(), |v| format!("{v:.3}")),
            current.accepted,
            current.rejected
        ),
        Phase::Evaluation { .. } if current.scored == 0 => "score -".into(),
        Phase::Evaluation { .. } => format!("score {:.3}", current.sum / current.scored as f64),
    };
    let s = &current.at_start;
    format!(
        "{score} · {} calls · ${:.4} · {} cache hits",
        totals.calls.saturating_sub(s.calls),
        (totals.dollars - s.dollars).max(0.0),
        totals.cache_hits.saturating_sub(s.cache_hits)
    )
}

impl RunObserver for Bars {
    fn line(&self, line: &str) {
        // A run says nothing while a phase goes on: a line means the phase is over.
        self.end_phase();
        self.print(line);
        if self.terminal && self.current.lock().expect("phase slot").is_none() {
            self.bar.set_message(line.to_string());
        }
    }

    fn phase(&self, phase: &Phase) {
        self.end_phase();
        if let Phase::Training { run_dir, .. } = phase {
            *self.run_dir.lock().expect("run dir slot") = Some(run_dir.clone());
        }
        let (name, total, _) = describe(phase);
        *self.current.lock().expect("phase slot") = Some(Current {
            phase: phase.clone(),
            started: Instant::now(),
            at_start: self.totals(),
            scored: 0,
            sum: 0.0,
            journal_read: 0,
            batches: 0,
            validation: None,
            accepted: 0,
            rejected: 0,
        });
        if self.terminal {
            // Position, message and elapsed time from zero first, so nothing of the last step shows.
            self.bar.reset();
            self.bar.set_message("");
            let template = "{spinner} {prefix:>18.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({elapsed})";
            self.bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
            self.bar.set_prefix(name);
            self.bar.set_length(total);
            self.refresh();
        }
    }

    fn scored(&self, score: f64) {
        let mut slot = self.current.lock().expect("phase slot");
        let Some(current) = slot.as_mut() else { return };
        current.scored += 1;
        current.sum += if score.is_finite() { score } else { 0.0 };
        if self.terminal && matches!(current.phase, Phase::Evaluation { .. }) {
            self.bar.set_position(position(current));
        }
    }

    fn meter(&self, meter: &Arc<Meter>) {
        *self.meter.lock().expect("meter slot") = Some(meter.clone());
    }
}
