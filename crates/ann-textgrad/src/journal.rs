//! The run journal (JSONL, one line per step) and the atomic checkpoint beside it.
//!
//! After every step the trainer appends the step's journal line (flushed to disk) and then
//! replaces `checkpoint.json` atomically (write a temporary file, sync, rename). The checkpoint
//! records the journal's length, so a run killed between the two writes resumes by cutting the
//! journal back to that length and redoing the step (its calls come from the response cache).
//! Beside the journal, `journal.sha256` holds the sha256 of every line, appended with it; a resume
//! checks every checkpointed line against it and names the first one that was changed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ann_graph::{Network, RoutingRecord};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::decision::{ComponentScope, ComponentStatus, Decision};
use crate::gradient::{GlobalGradient, LanguageLoss, LocalText};
use crate::meter::{Cost, TrainCosts};
use crate::momentum::Momentum;
use crate::patch::PatchOp;

/// File name of the checkpoint in the run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// File name of the journal in the run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// File name of the journal's line checksums (one hex sha256 per journal line).
pub const JOURNAL_SUMS_FILE: &str = "journal.sha256";
/// Bytes of one line of [`JOURNAL_SUMS_FILE`]: 64 hex digits and a newline.
const SUM_LINE: u64 = 65;
/// Folder of the per-batch forward traces in the run directory.
pub const TRACES_DIR: &str = "traces";
/// Format version of the checkpoint.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stop", rename_all = "snake_case")]
pub enum StopReason {
    /// Every epoch ran.
    Completed,
    /// `patience` steps in a row were rejected.
    Patience,
    /// The validation score reached the target.
    Target,
    /// The hard budget ran out; the last checkpoint resumes the run.
    BudgetExhausted { detail: String },
    /// The user interrupted the run (Ctrl-C, a budget stop of its own kind); the last checkpoint
    /// resumes the run.
    Interrupted,
}

/// The state of the shuffling RNG (ChaCha8, seeded from the run's seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: u64,
    /// ChaCha's word position (as a decimal string: JSON numbers do not hold a u128).
    #[serde(with = "u128_string")]
    pub word_pos: u128,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Counters of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Backward steps taken (perfect batches excluded).
    pub steps: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Perfect batches: no backward.
    pub skipped: u64,
    /// Rejected steps since the last accepted one (for patience).
    pub consecutive_rejections: u64,
}

/// Everything a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    /// The data and seed the run was started with (a resume with other data is refused).
    pub seed: u64,
    pub train_ids: Vec<String>,
    pub validation_ids: Vec<String>,
    /// Current epoch, from 0.
    pub epoch: usize,
    /// Next batch of the epoch, from 0.
    pub next_batch: usize,
    /// This epoch's order of the training examples (empty before the epoch's shuffle).
    pub order: Vec<usize>,
    pub rng: RngState,
    /// The current network (the last accepted one).
    pub network: Network,
    pub val_current: f64,
    /// The best validated network and its score.
    pub best: Network,
    pub val_best: f64,
    pub val_initial: f64,
    pub momentum: Momentum,
    pub optimizer: OptimizerState,
    /// Cost of the run so far.
    pub cost: Cost,
    /// Parts of [`Checkpoint::cost`]: initial validation, optimiser, validation gate (absent in
    /// checkpoints written before they were kept: zero).
    #[serde(default)]
    pub costs: TrainCosts,
    /// Length of the journal in bytes and lines when this checkpoint was written.
    pub journal_bytes: u64,
    pub journal_lines: u64,
    /// Set when the run is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
    /// What the run's forwards chose per layer and how they scored (routing statistics).
    #[serde(default, skip_serializing_if = "RoutingRecord::is_empty")]
    pub routing: RoutingRecord,
}

/// One example's result in a journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleScore {
    pub id: String,
    pub score: f64,
    pub passed: bool,
    /// Left out of the scores (an infrastructure failure under the `exclude` policy); written only
    /// when set, so the journals of runs without one are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded: bool,
}

/// What became of one proposed patch (a local gradient's or the structure call's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// The layer id, or `structure`.
    pub scope: ComponentScope,
    /// The local gradient's text (absent for the structure call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<LocalText>,
    /// The typed ops of the last attempt.
    pub ops: Vec<PatchOp>,
    /// Model calls spent on this patch (1 + fix requests).
    pub attempts: u32,
    /// `merged`, or the rejection reason (`unknown_id`, `invariant:placeholder`, ...).
    pub status: ComponentStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// With the per-layer gate: `accepted`, or why this patch alone was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decision::as_word")]
    pub gate: Option<Decision>,
    /// With the per-layer gate: the pre-check means (current, candidate) of this patch alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_check: Option<(f64, f64)>,
    /// With the per-layer gate: the validation score with this patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_candidate: Option<f64>,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// The run began: the starting network's validation score.
    Start { val_initial: f64, train: usize, validation: usize, cost: Cost },
    /// A batch every example of which scored 1: no backward.
    Skip { epoch: usize, batch: usize, examples: Vec<ExampleScore>, cost: Cost },
    /// A backward step.
    Step(Box<StepRecord>),
    /// The run is over.
    End { stop: StopReason, val_initial: f64, val_best: f64, optimizer: OptimizerState, cost: Cost },
}

/// Everything about one backward step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    pub epoch: usize,
    pub batch: usize,
    pub examples: Vec<ExampleScore>,
    /// Ids of the examples the backward used (failures first).
    pub selected: Vec<String>,
    pub losses: Vec<LanguageLoss>,
    pub global: GlobalGradient,
    pub components: Vec<ComponentRecord>,
    /// The merged patch as RFC 6902 over the network JSON (absent when nothing was merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<json_patch::Patch>,
    /// Mean score of the current and the candidate network on the step's failing examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_check: Option<(f64, f64)>,
    pub val_before: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_candidate: Option<f64>,
    pub decision: Decision,
    pub cost: Cost,
}

/// The files of a run directory.
#[derive(Debug, Clone)]
pub struct RunFiles {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_path_buf(), source }
}

impl RunFiles {
    /// The files in `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, TrainError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// The checkpoint, if the run has one.
    pub fn load_checkpoint(&self) -> Result<Option<Checkpoint>, TrainError> {
        let path = self.checkpoint_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let checkpoint: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| TrainError::Checkpoint { what: path.display().to_string(), source: Some(e) })?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            let what =
                format!("{}: format {} (this build reads {CHECKPOINT_FORMAT})", path.display(), checkpoint.format);
            return Err(TrainError::Checkpoint { what, source: None });
        }
        Ok(Some(checkpoint))
    }

    /// Replace the checkpoint atomically.
    pub fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), TrainError> {
        let path = self.checkpoint_path();
        let text = serde_json::to_string_pretty(checkpoint).expect("a checkpoint always serializes");
        ann_llm::write_atomic(&path, text.as_bytes()).map_err(io(&path))
    }

    pub fn journal_sums_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_SUMS_FILE)
    }

    /// Append one line and its checksum, synced; returns the journal's new length in bytes.
    pub fn append(&self, event: &JournalEvent) -> Result<u64, TrainError> {
        let path = self.journal_path();
        let mut line = serde_json::to_string(event).expect("journal events always serialize");
        line.push('\n');
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        file.write_all(line.as_bytes()).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let sums = self.journal_sums_path();
        let mut file = OpenOptions::new().create(true).append(true).open(&sums).map_err(io(&sums))?;
        file.write_all(format!("{}\n", line_sum(&line)).as_bytes()).map_err(io(&sums))?;
        file.sync_data().map_err(io(&sums))?;
        Ok(len)
    }

    /// Cut the journal back to `bytes` and `lines` (what the checkpoint recorded), its checksums
    /// with it; a fresh run starts empty.
    pub fn truncate_journal(&self, bytes: u64, lines: u64) -> Result<(), TrainError> {
        for (path, keep) in [(self.journal_path(), bytes), (self.journal_sums_path(), lines * SUM_LINE)] {
            let file = OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(io(&path))?;
            let len = file.metadata().map_err(io(&path))?.len();
            if len < keep {
                let what = format!("{} has {len} bytes, the checkpoint recorded {keep}", path.display());
                return Err(TrainError::Checkpoint { what, source: None });
            }
            file.set_len(keep).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Check the journal's first `bytes` bytes (its `lines` checkpointed lines) against their
    /// checksums; an error names the first line that differs. A run written before checksums
    /// existed (no checksum file) is not checked.
    pub fn verify_journal(&self, bytes: u64, lines: u64) -> Result<(), TrainError> {
        let (path, sums_path) = (self.journal_path(), self.journal_sums_path());
        let sums = match fs::read_to_string(&sums_path) {
            Ok(sums) => sums,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&sums_path)(e)),
        };
        let journal = fs::read(&path).map_err(io(&path))?;
        let prefix = journal.get(..bytes as usize).unwrap_or(&journal);
        let mut sums = sums.lines();
        let mut read = prefix.split_inclusive(|&b| b == b'\n');
        for n in 1..=lines {
            let line = read.next().map(String::from_utf8_lossy);
            let intact = matches!((&line, sums.next()), (Some(line), Some(sum)) if line_sum(line) == sum);
            if !intact {
                let what = format!(
                    "{} line {n} is not what was written (its checksum in {} differs): the journal was changed \
                     or corrupted; restore it, or start the run anew",
                    path.display(),
                    sums_path.display()
                );
                return Err(TrainError::Checkpoint { what, source: None });
            }
        }
        Ok(())
    }

    /// The trace file of one batch: `traces/e<epoch>-b<batch>.jsonl`.
    pub fn traces_path(&self, epoch: usize, batch: usize) -> PathBuf {
        self.named_traces_path(&batch_traces_name(epoch, batch))
    }

    /// `traces/<name>.jsonl`.
    pub fn named_traces_path(&self, name: &str) -> PathBuf {
        self.dir.join(TRACES_DIR).join(format!("{name}.jsonl"))
    }

    /// Write the forward traces of one set of forwards to `traces/<name>.jsonl` (replacing the
    /// file when a resumed run redoes them): per example an `example` line with its id and score,
    /// then its trace's lines; with `sample` > 0 only the first `sample` examples.
    pub fn write_traces(&self, name: &str, runs: &[crate::ExampleRun], sample: usize) -> Result<(), TrainError> {
        let path = self.named_traces_path(name);
        let dir = self.dir.join(TRACES_DIR);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let runs = if sample > 0 { &runs[..sample.min(runs.len())] } else { runs };
        let text = traces_jsonl(runs);
        ann_llm::write_atomic(&path, text.as_bytes()).map_err(io(&path))
    }

    /// Every line of the journal, parsed.
    pub fn read_journal(&self) -> Result<Vec<JournalEvent>, TrainError> {
        let path = self.journal_path();
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| TrainError::Checkpoint {
                    what: format!("{}:{}", path.display(), i + 1),
                    source: Some(e),
                })
            })
            .collect()
    }
}

/// The hex sha256 of one journal line (with its newline).
fn line_sum(line: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(line.as_bytes()))
}

/// The name of a training batch's traces: `e<epoch>-b<batch>`.
pub fn batch_traces_name(epoch: usize, batch: usize) -> String {
    format!("e{epoch}-b{batch}")
}

/// Forward traces as JSONL: per example an `example` line (id, score, passed, feedback, and
/// `excluded` when it was), then its trace's lines.
pub fn traces_jsonl(runs: &[crate::ExampleRun]) -> String {
    runs.iter().map(example_jsonl).collect()
}

/// One example's part of [`traces_jsonl`]: its `example` line, then its trace's lines.
pub fn example_jsonl(run: &crate::ExampleRun) -> String {
    let mut head = serde_json::json!({
        "event": "example",
        "id": run.id,
        "score": run.evaluation.score,
        "passed": run.evaluation.passed,
        "feedback": run.evaluation.feedback,
    });
    if run.excluded {
        head["excluded"] = serde_json::Value::Bool(true);
    }
    let mut text = head.to_string();
    text.push('\n');
    if let Some(trace) = &run.trace {
        text.push_str(&trace.to_jsonl());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_network;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            seed: 7,
            train_ids: vec!["a".into()],
            validation_ids: vec!["v".into()],
            epoch: 0,
            next_batch: 1,
            order: vec![0],
            rng: RngState { seed: 7, word_pos: u128::MAX - 1 },
            network: sample_network(),
            val_current: 0.5,
            best: sample_network(),
            val_best: 0.5,
            val_initial: 0.25,
            momentum: Momentum::default(),
            optimizer: OptimizerState::default(),
            cost: Cost::default(),
            costs: TrainCosts::default(),
            journal_bytes: 0,
            journal_lines: 0,
            stopped: None,
            routing: RoutingRecord::default(),
        }
    }

    #[test]
    fn checkpoint_roundtrips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path()).unwrap();
        assert_eq!(files.load_checkpoint().unwrap(), None);
        let cp = checkpoint();
        files.save_checkpoint(&cp).unwrap();
        assert_eq!(files.load_checkpoint().unwrap(), Some(cp));
        assert!(!dir.path().join("checkpoint.json.tmp").exists());
        fs::write(files.checkpoint_path(), "{ torn").unwrap();
        assert!(matches!(files.load_checkpoint(), Err(TrainError::Checkpoint { .. })));
    }

    #[test]
    fn journal_appends_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path()).unwrap();
        files.truncate_journal(0, 0).unwrap();
        let start = JournalEvent::Start { val_initial: 0.5, train: 2, validation: 1, cost: Cost::default() };
        let first = files.append(&start).unwrap();
        let end = JournalEvent::End {
            stop: StopReason::Completed,
            val_initial: 0.5,
            val_best: 0.5,
            optimizer: OptimizerState::default(),
            cost: Cost::default(),
        };
        files.append(&end).unwrap();
        assert_eq!(files.read_journal().unwrap(), vec![start.clone(), end]);
        files.truncate_journal(first, 1).unwrap();
        assert_eq!(files.read_journal().unwrap(), vec![start]);
        assert!(files.truncate_journal(first + 10, 1).is_err());
    }

    #[test]
    fn a_changed_checkpointed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path()).unwrap();
        files.truncate_journal(0, 0).unwrap();
        let line = |val_initial| JournalEvent::Start { val_initial, train: 2, validation: 1, cost: Cost::default() };
        let first = files.append(&line(0.25)).unwrap();
        files.append(&line(0.5)).unwrap();
        let bytes = files.append(&line(0.75)).unwrap();
        files.verify_journal(bytes, 3).unwrap();
        // One digit of the second line flipped, same length (a length check cannot see it).
        let text = fs::read_to_string(files.journal_path()).unwrap();
        fs::write(files.journal_path(), text.replacen("0.5", "0.6", 1)).unwrap();
        let err = files.verify_journal(bytes, 3).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl line 2 is not what was written"), "{err}");
        // Lines past the checkpoint are not checked (the resume cuts them off).
        files.verify_journal(first, 1).unwrap();
        // A run from before checksums existed is not checked.
        fs::remove_file(files.journal_sums_path()).unwrap();
        files.verify_journal(bytes, 3).unwrap();
    }
}
