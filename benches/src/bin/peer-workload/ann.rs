//! agentic-nn's side: the model stack built the way `ann` builds it (`ann_experiment::prepare`
//! over an experiment config, the endpoint read from `ANN_OPENAI_*` like the binary reads it, the
//! run's budget ledger recorded in a folder), the peers' network, and the forward pass or one
//! training step through the public steps (evaluate → loss → backward → step).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_experiment::reexports::OpenAiConfig;
use ann_experiment::{BackendSource, ExperimentConfig, Record, RunOptions, prepare, run::Prepared};
use ann_graph::{Network, RoutingRecord};
use ann_textgrad::{Optimizer, select_examples};
use anyhow::{Context, Result, bail};
use async_trait::async_trait;

/// The peers' workload as a network: 3 solvers (their answers concatenated, no call), an
/// aggregator agent, a formatter agent; 5 calls per question.
const NETWORK: &str = r#"{
  "version": 1,
  "task_description": "Answer the multiple-choice question.",
  "layers": [
    {"id": "solve", "subtask": "solve the question",
     "agents": [
       {"id": "s1", "role": "Solver 1 of a team.", "prompt": "{task}\nSolve the question.\n{input}", "temperature": 0.0},
       {"id": "s2", "role": "Solver 2 of a team.", "prompt": "{task}\nSolve the question.\n{input}", "temperature": 0.0},
       {"id": "s3", "role": "Solver 3 of a team.", "prompt": "{task}\nSolve the question.\n{input}", "temperature": 0.0}],
     "aggregators": ["concatenate"], "default_aggregator": "concatenate", "output_spec": "three solutions"},
    {"id": "aggregate", "subtask": "merge the solutions",
     "agents": [{"id": "merge", "role": "You merge the solvers' answers.", "prompt": "{task}\nSolutions:\n{input}\nGive the best answer.", "temperature": 0.0}],
     "aggregators": ["single"], "default_aggregator": "single", "output_spec": "one answer"},
    {"id": "format", "subtask": "format the answer",
     "agents": [{"id": "fmt", "role": "You format the final answer.", "prompt": "{task}\n{input}\nEnd with 'Answer: X'.", "temperature": 0.0}],
     "aggregators": ["single"], "default_aggregator": "single", "output_spec": "a last line 'Answer: X'"}
  ]
}"#;

/// The workload's questions as a benchmark (`ann-experiment` cuts its splits); the right choice
/// is always B, so the fake server's `learn` replies fail until a patch says so.
struct Questions {
    train: Vec<Example>,
    test: Vec<Example>,
}

impl Questions {
    fn new(train: usize, test: usize) -> Self {
        let example = |i: usize| Example::new(format!("q{i}"), crate::question(i)).with_reference("B");
        Self { train: (0..train).map(example).collect(), test: (train..train + test).map(example).collect() }
    }
}

#[async_trait]
impl Benchmark for Questions {
    fn name(&self) -> &str {
        "peers"
    }
    fn task_description(&self) -> &str {
        "Answer the multiple-choice question."
    }
    fn answer_format(&self) -> &str {
        "Answer: X"
    }
    fn examples(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &[],
            Split::Test => &self.test,
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        output.rsplit_once("Answer:").map(|(_, x)| x.trim().to_string())
    }
    fn starting_network(&self) -> &str {
        NETWORK
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        Ok(if self.extract_answer(output) == example.reference {
            Evaluation::pass("correct")
        } else {
            Evaluation::fail("the final answer picks the wrong choice: the right one is B")
        })
    }
}

/// The experiment a user would write for this workload (`ann eval`/`ann train` read the same keys).
fn config(dir: &Path, cache: bool, questions: usize, in_flight: usize) -> Result<ExperimentConfig> {
    let text = format!(
        r#"name = "peers"
[benchmark]
name = "peers"
train = {questions}
validation = 0
test = {questions}
[model]
backend = "openai"
name = "peer-model"
[cache]
path = "cache/responses.sqlite"
mode = "{mode}"
[forward]
max_parallel_inputs = {in_flight}
max_parallel_calls = {calls}
[train]
batch_size = {questions}
"#,
        mode = if cache { "read_write" } else { "off" },
        calls = 3 * in_flight,
    );
    let _ = dir;
    ExperimentConfig::from_toml(&text, "the peers' workload")
}

pub struct Setup {
    prepared: Prepared,
    network: Network,
}

impl Setup {
    /// Prepare the run as `ann` does, in the fresh folder `dir`, and with `ledger` record its
    /// budget ledger there (as `ann train` does; `ann eval` records none).
    pub async fn open(
        url: &str,
        dir: &Path,
        cache: bool,
        ledger: bool,
        questions: usize,
        in_flight: usize,
    ) -> Result<Self> {
        let config = config(dir, cache, questions, in_flight)?;
        // `ann` reads the endpoint from ANN_OPENAI_*; the caller sets them to `url`.
        let openai = OpenAiConfig::from_env().context("reading ANN_OPENAI_*")?;
        match &openai {
            Some(o) if o.base_urls == [url.to_string()] => {}
            _ => bail!("ANN_OPENAI_BASE_URL must be {url}"),
        }
        // The benchmark holds the questions once (`ann-experiment` cuts its splits without a copy).
        let benchmark = Arc::new(Questions::new(questions, questions));
        let options = RunOptions {
            base_dir: dir.to_path_buf(),
            runs_dir: dir.join("runs"),
            backend: BackendSource::Open { local_model: PathBuf::new(), openai },
            clock: Arc::new(std::time::SystemTime::now),
            progress: None,
            benchmark: Some(benchmark),
            interrupt: None,
        };
        let prepared = prepare(&config, &options).await?;
        if ledger {
            record_ledger(&prepared, dir)?;
        }
        let network = prepared.start.clone();
        Ok(Self { network, prepared })
    }

    /// One question outside the workload, through the same stack.
    pub async fn warm_up(&self) -> Result<()> {
        let example = Example::new("warm-up", crate::question(crate::WARM_UP)).with_reference("B");
        self.prepared.evaluate_streaming(&self.network, &[example], None, &RoutingRecord::default(), None).await?;
        Ok(())
    }

    /// The forward workload on every question, scored by the benchmark in bounded memory as
    /// `ann eval` does (`Prepared::evaluate_streaming`); with `record`, each question's evaluation
    /// line and trace are written to `evaluations/` and `traces/` of `record` as a run's test
    /// evaluation writes them. Returns the model calls the traces hold.
    pub async fn forward(&self, record: Option<&Path>) -> Result<u64> {
        let record = record.map(|run_dir| Record { run_dir, name: "test" });
        let examples = self.prepared.benchmark.examples(Split::Test);
        let evaluated =
            self.prepared.evaluate_streaming(&self.network, examples, None, &RoutingRecord::default(), record).await?;
        Ok(evaluated.calls)
    }

    /// One training step on `batch` questions: forward and score, loss, backward, step; returns
    /// the model calls made (forward calls plus the optimiser's).
    pub async fn train_step(&self, batch: usize) -> Result<u64> {
        let train = self.prepared.benchmark.examples(Split::Train);
        let examples: Vec<&Example> = train.iter().take(batch).collect();
        let optimizer =
            Optimizer::new(self.prepared.models.optimizer().model.clone(), self.prepared.train_config.clone());
        let before = self.prepared.stack.meter.report().total.calls;
        let runs =
            self.prepared.evaluate(&self.network, &train[..examples.len()], None, &RoutingRecord::default()).await?;
        let selected = select_examples(&runs, &optimizer.config().selection);
        let losses = optimizer.loss(&self.network, &examples, &runs, &selected).await?;
        let proposal = optimizer.backward(&self.network, &examples, &runs, &selected, losses, None).await?;
        let merged = optimizer.step(&self.network, &proposal);
        if let Err(e) = &merged.patch {
            bail!("the training step produced no patch: {e:?}");
        }
        Ok(self.prepared.stack.meter.report().total.calls - before)
    }
}

/// Record the run's budget ledger in `dir` (`budget.jsonl`, appended by the budget's writer
/// thread), as `ann train` does for its run directory.
fn record_ledger(prepared: &Prepared, dir: &Path) -> Result<()> {
    let file = ann_llm::LedgerFile::open(dir)?;
    prepared.stack.budget.record_to(file).map_err(anyhow::Error::msg)
}
