//! A set of examples evaluated as a stream, in bounded memory: each example's evaluation line
//! (`evaluations/<name>.jsonl`) and trace (`traces/<name>.jsonl`, when the run writes traces, the
//! first `train.trace_examples` when set) go to the run directory as it finishes, written by one
//! writer thread (buffered, so no async worker waits on the disk), and only its score is kept
//! ([`Evaluated`]). Both files are written beside their place (`<file>.partial`) and renamed over
//! it once every example is in, so a file in its place is whole (a resumed run redoes and
//! replaces it); an evaluation that stops leaves neither.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ann_eval::Example;
use ann_graph::{Network, RoutingRecord};
use ann_llm::PriceTable;
use ann_textgrad::journal::{ExampleScore, TRACES_DIR, example_jsonl};
use ann_textgrad::{Cost, ExampleRun, TrainError};
use anyhow::{Context, anyhow};
use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use serde::Serialize;

use crate::baselines::Baseline;
use crate::run::Prepared;

/// Folder of the per-example evaluation lines in the run directory.
pub const EVALUATIONS_DIR: &str = "evaluations";

/// How many finished examples may wait for the writer before the evaluation waits for it.
const WRITER_QUEUE: usize = 16;

/// What an evaluation keeps of its examples: per example its score, no output and no trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluated {
    /// Per example, in input order: id, score, passed, excluded.
    pub examples: Vec<ExampleScore>,
    /// What the forwards cost, counted from their traces ([`ann_textgrad::forward_cost`]).
    pub cost: Cost,
    /// The model calls the forwards' traces hold (answered or failed).
    pub calls: u64,
}

impl Evaluated {
    /// Each example's score (`None`: excluded, an infrastructure failure under `exclude`).
    pub fn scores(&self) -> Vec<Option<f64>> {
        self.examples.iter().map(|e| (!e.excluded).then_some(e.score)).collect()
    }

    /// How many examples passed.
    pub fn passed(&self) -> usize {
        self.examples.iter().filter(|e| e.passed).count()
    }

    fn add(&mut self, run: &ExampleRun, prices: &PriceTable) {
        self.cost.add_forward(run, prices);
        self.calls += run.trace.iter().map(|t| t.calls().count() as u64).sum::<u64>();
        let e = &run.evaluation;
        self.examples.push(ExampleScore {
            id: run.id.clone(),
            score: e.score,
            passed: e.passed,
            excluded: run.excluded,
        });
    }
}

/// Where an evaluation's files go: `evaluations/<name>.jsonl` and `traces/<name>.jsonl` under
/// `run_dir`.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub run_dir: &'a Path,
    pub name: &'a str,
}

impl Prepared {
    /// Forward `net` on `examples` and score it as [`Prepared::evaluate`] does, keeping only the
    /// scores: each example's run is dropped once it is counted and, with `record`, written to
    /// the run directory (module docs), so memory holds the examples in flight, not the set.
    /// The error is the evaluation's [`TrainError`] (a stop, an infrastructure failure) or the
    /// writer's I/O error naming its file.
    pub async fn evaluate_streaming(
        &self,
        net: &Network,
        examples: &[Example],
        baseline: Option<Baseline>,
        routing: &RoutingRecord,
        record: Option<Record<'_>>,
    ) -> anyhow::Result<Evaluated> {
        let config = self.forward_config(baseline, routing);
        let refs: Vec<&Example> = examples.iter().collect();
        let train = &self.train_config;
        let traces = train.write_traces.then_some(train.trace_examples);
        let mut writer = record.map(|r| Writer::start(r, traces)).transpose()?;
        let sender = writer.as_ref().map(|w| w.tx.clone());
        let mut evaluated = Evaluated { examples: Vec::with_capacity(examples.len()), ..Evaluated::default() };
        let result =
            ann_textgrad::evaluate_each(&self.stack.model, &self.evaluator, net, &refs, &config, |index, run| {
                evaluated.add(&run, &self.prices);
                let sender = sender.clone();
                async move {
                    let Some(mut tx) = sender else { return Ok(()) };
                    tx.send(Line::Run(index, Box::new(run))).await.map_err(|_| anyhow::Error::new(WriterStopped))
                }
            })
            .await;
        drop(sender);
        let Some(writer) = writer.take() else { return result.map(|()| evaluated) };
        match result {
            Ok(()) => writer.commit().await.map(|()| evaluated),
            Err(e) => match writer.abandon().await {
                // The writer's own failure is why the evaluation stopped.
                Err(why) if e.is::<WriterStopped>() => Err(why),
                _ => Err(e),
            },
        }
    }
}

/// The writer thread is gone (its error says why).
#[derive(Debug)]
struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the evaluation's writer stopped")
    }
}

impl std::error::Error for WriterStopped {}

enum Line {
    /// An example's run, with its index in the set.
    Run(usize, Box<ExampleRun>),
    /// Every example is in: put the files in their place.
    Commit,
}

/// The handle of one evaluation's writer thread.
struct Writer {
    tx: mpsc::Sender<Line>,
    done: oneshot::Receiver<anyhow::Result<()>>,
}

impl Writer {
    /// Start the thread; `traces`: write traces, of the first N examples when N > 0.
    fn start(record: Record<'_>, traces: Option<usize>) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let (report, done) = oneshot::channel();
        let dir = record.run_dir.to_path_buf();
        let name = record.name.to_string();
        std::thread::Builder::new()
            .name("ann-evaluation-writer".into())
            .spawn(move || {
                let _ = report.send(write(rx, &dir, &name, traces));
            })
            .context("starting the evaluation's writer thread")?;
        Ok(Self { tx, done })
    }

    /// Tell the thread every example is in and wait for the files to be in place.
    async fn commit(mut self) -> anyhow::Result<()> {
        // A failed send means the thread already stopped: its result says why.
        let _ = self.tx.send(Line::Commit).await;
        self.finish().await
    }

    /// Stop the thread without putting its files in place.
    async fn abandon(self) -> anyhow::Result<()> {
        self.finish().await
    }

    async fn finish(self) -> anyhow::Result<()> {
        drop(self.tx);
        self.done.await.map_err(|_| anyhow!("the evaluation's writer thread panicked"))?
    }
}

/// One output file, written beside its place until it is whole.
struct Partial {
    path: PathBuf,
    partial: PathBuf,
    file: BufWriter<File>,
}

impl Partial {
    fn create(dir: &Path, name: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.jsonl"));
        let partial = dir.join(format!("{name}.jsonl.partial"));
        let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        Ok(Self { path, partial, file: BufWriter::with_capacity(1 << 16, file) })
    }

    fn write(&mut self, text: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(text).with_context(|| format!("writing {}", self.partial.display()))
    }

    /// Flush, sync and rename over its place.
    fn commit(self) -> anyhow::Result<()> {
        let file = self.file.into_inner().map_err(|e| e.into_error());
        let file = file.with_context(|| format!("writing {}", self.partial.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", self.partial.display()))?;
        drop(file);
        std::fs::rename(&self.partial, &self.path)
            .with_context(|| format!("renaming {} to {}", self.partial.display(), self.path.display()))?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(dir)
        {
            // Best effort: some file systems cannot sync a directory.
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn remove(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// One example's line in `evaluations/*.jsonl`.
#[derive(Serialize)]
struct EvaluationLine<'a> {
    id: &'a str,
    score: f64,
    passed: bool,
    feedback: &'a str,
    output: &'a str,
    /// Left out of the scores (an infrastructure failure under `exclude`); written only when set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    excluded: bool,
}

/// The writer thread: every run received is written; the files are put in place at `Commit`,
/// removed when the channel closes without it.
fn write(mut rx: mpsc::Receiver<Line>, run_dir: &Path, name: &str, traces: Option<usize>) -> anyhow::Result<()> {
    let mut evaluations = Partial::create(&run_dir.join(EVALUATIONS_DIR), name)?;
    let mut trace_file = match traces {
        Some(_) => Some(Partial::create(&run_dir.join(TRACES_DIR), name)?),
        None => None,
    };
    let sample = traces.unwrap_or(0);
    let mut written = || -> anyhow::Result<bool> {
        while let Some(line) = futures::executor::block_on(futures::StreamExt::next(&mut rx)) {
            let (index, run) = match line {
                Line::Run(index, run) => (index, run),
                Line::Commit => return Ok(true),
            };
            let line = EvaluationLine {
                id: &run.id,
                score: run.evaluation.score,
                passed: run.evaluation.passed,
                feedback: &run.evaluation.feedback,
                output: &run.output,
                excluded: run.excluded,
            };
            let mut text = serde_json::to_string(&line)?;
            text.push('\n');
            evaluations.write(text.as_bytes())?;
            if let Some(file) = &mut trace_file
                && (sample == 0 || index < sample)
            {
                file.write(example_jsonl(&run).as_bytes())?;
            }
        }
        Ok(false)
    };
    let committed = written();
    match committed {
        Ok(true) => {
            evaluations.commit()?;
            trace_file.map_or(Ok(()), Partial::commit)
        }
        other => {
            evaluations.remove();
            if let Some(file) = trace_file {
                file.remove();
            }
            other.map(|_| ())
        }
    }
}

/// `TrainError` of an evaluation, if that is what `e` is.
pub(crate) fn train_error(e: &anyhow::Error) -> Option<&TrainError> {
    e.downcast_ref::<TrainError>()
}
