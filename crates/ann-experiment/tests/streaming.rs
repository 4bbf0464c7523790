//! A split evaluated as a stream (`Prepared::evaluate_streaming`) against the fake
//! OpenAI-compatible server on 127.0.0.1: memory holds the examples in flight, not the set (the
//! process's live heap is counted by this binary's allocator, against the collecting
//! `Prepared::evaluate` on the same examples), the files on disk hold every example in input
//! order with the same lines the collecting path gives, `train.trace_examples` and
//! `train.write_traces` are respected, and an evaluation stopped by the budget leaves no file.
//! One test function: the allocator's count is the process's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ann_eval::{Benchmark, EvalError, Evaluation, Example, Split};
use ann_experiment::reexports::OpenAiConfig;
use ann_experiment::run::Prepared;
use ann_experiment::{BackendSource, ExperimentConfig, Record, RunOptions};
use ann_graph::RoutingRecord;
use ann_test_support::server::{FakeServer, FakeServerConfig};
use async_trait::async_trait;
use serde_json::Value;

/// The system allocator, counting the bytes live and their peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// The one unsafe part: forwarding to the system allocator, whose contract the caller upholds.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The growth of the live heap at its peak while `work` runs.
async fn peak_growth<T>(work: impl Future<Output = T>) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = work.await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Examples whose right answer is B; the fake server's long answer ends with it.
struct Questions(Vec<Example>);

#[async_trait]
impl Benchmark for Questions {
    fn name(&self) -> &str {
        "questions"
    }
    fn task_description(&self) -> &str {
        "Answer the question."
    }
    fn answer_format(&self) -> &str {
        "Answer: X"
    }
    fn examples(&self, split: Split) -> &[Example] {
        match split {
            Split::Test => &self.0,
            _ => &[],
        }
    }
    fn extract_answer(&self, output: &str) -> Option<String> {
        output.split_once("Answer:").and_then(|(_, x)| x.split_whitespace().next()).map(str::to_string)
    }
    fn starting_network(&self) -> &str {
        r#"{"version": 1, "task_description": "Answer the question.", "layers": [
            {"id": "solve", "subtask": "answer", "agents": [{"id": "a", "role": "You answer.",
             "prompt": "{task}\n{input}\nEnd with 'Answer: X'.", "temperature": 0.0}],
             "aggregators": ["single"], "default_aggregator": "single", "output_spec": "Answer: X"}]}"#
    }
    async fn evaluate(&self, example: &Example, output: &str) -> Result<Evaluation, EvalError> {
        Ok(if self.extract_answer(output) == example.reference {
            Evaluation::pass("correct")
        } else {
            Evaluation::fail(format!("{} is wrong", example.id))
        })
    }
}

/// Every question's answer: `Answer: B` for even questions, `A` else, then 16 KB of reasoning.
fn reply(body: &Value) -> String {
    let prompt = body["messages"].to_string();
    let even = prompt.contains("even question");
    format!("Answer: {}\n{}", if even { "B" } else { "A" }, "reasoning ".repeat(1600))
}

async fn prepare(dir: &Path, server: &FakeServer, n: usize, extra: &str) -> Prepared {
    let text = format!(
        "name = \"streaming\"\n[benchmark]\nname = \"questions\"\ntrain = 0\nvalidation = 0\ntest = {n}\n\
         [model]\nbackend = \"openai\"\nname = \"m\"\n[cache]\nmode = \"off\"\n\
         [forward]\nmax_parallel_inputs = 4\nmax_parallel_calls = 4\n{extra}"
    );
    let config = ExperimentConfig::from_toml(&text, "streaming.toml").unwrap();
    let questions = (0..n)
        .map(|i| {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            Example::new(format!("q{i:03}"), format!("The {parity} question number {i}?")).with_reference("B")
        })
        .collect();
    let mut openai = OpenAiConfig::new(server.url(), "m");
    openai.api_key_env = "ANN_TEST_NO_SUCH_KEY".into();
    openai.retry.max_attempts = 1;
    let options = RunOptions {
        base_dir: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        backend: BackendSource::Open { local_model: PathBuf::new(), openai: Some(openai) },
        clock: Arc::new(std::time::SystemTime::now),
        progress: None,
        benchmark: Some(Arc::new(Questions(questions))),
        interrupt: None,
    };
    ann_experiment::prepare(&config, &options).await.unwrap()
}

/// A trace file's lines as JSON, each call's `latency_ms` (a clock reading) and `cached_tokens`
/// (the fake server's prompt cache: the second evaluation repeats the first one's prompts) set to 0.
fn lines_without_latency(text: &str) -> Vec<Value> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["latency_ms", "cached_tokens"] {
                    if map.contains_key(key) {
                        map.insert(key.into(), 0.into());
                    }
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            strip(&mut v);
            v
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_evaluation_holds_the_examples_in_flight_and_writes_every_one_in_order() {
    const N: usize = 240;
    let server = FakeServer::start(FakeServerConfig::default().with_reply(reply)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prepared = prepare(dir.path(), &server, N, "").await;
    let examples = ann_experiment::split_examples(prepared.benchmark.as_ref(), Split::Test);
    let start = prepared.start.clone();
    let routing = RoutingRecord::default();

    // The collecting path keeps every run with its trace until the end.
    let (runs, collected) = peak_growth(prepared.evaluate(&start, &examples, None, &routing)).await;
    let runs = runs.unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let record = Some(Record { run_dir: &run_dir, name: "test-trained" });
    let (evaluated, streamed) =
        peak_growth(prepared.evaluate_streaming(&start, &examples, None, &routing, record)).await;
    let evaluated = evaluated.unwrap();

    // One example's trace is over 16 KB (the answer).
    let per_example = ann_textgrad::journal::example_jsonl(&runs[0]).len();
    assert!(per_example > 16_000, "{per_example}");
    assert!(collected > N * per_example / 2, "the collecting path holds every trace: {collected} bytes");
    // In flight: 4 forwards, 4 scorings, the writer's queue (16) and the one it writes, with the
    // client's and the server's buffers: well under a quarter of the set.
    let held = streamed / (collected / N);
    assert!(
        held < 60,
        "the streaming path holds the examples in flight, not {N}: {streamed} bytes at its peak, {held} examples' \
         worth ({collected} collecting)"
    );

    // What is kept: the scores, the cost and the calls, in input order.
    assert_eq!(evaluated.examples.len(), N);
    let ids: Vec<&str> = evaluated.examples.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());
    assert_eq!(evaluated.scores(), runs.iter().map(ann_textgrad::ExampleRun::score).collect::<Vec<_>>());
    assert_eq!(evaluated.passed(), N / 2);
    assert_eq!(evaluated.cost, ann_textgrad::forward_cost(&runs, &prepared.prices));
    assert_eq!(evaluated.calls, N as u64);

    // On disk: every example, in input order, the lines the collecting path gives.
    let evaluations = read(&run_dir.join("evaluations/test-trained.jsonl"));
    let lines: Vec<Value> = evaluations.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), N);
    for (line, run) in lines.iter().zip(&runs) {
        assert_eq!(line["id"], run.id.as_str());
        assert_eq!(line["score"], run.evaluation.score);
        assert_eq!(line["passed"], run.evaluation.passed);
        assert_eq!(line["feedback"], run.evaluation.feedback.as_str());
        assert_eq!(line["output"], run.output.as_str());
    }
    let traces = read(&run_dir.join("traces/test-trained.jsonl"));
    let (streamed_lines, collected_lines) =
        (lines_without_latency(&traces), lines_without_latency(&ann_textgrad::journal::traces_jsonl(&runs)));
    assert_eq!(streamed_lines.len(), collected_lines.len());
    let differs = streamed_lines.iter().zip(&collected_lines).position(|(a, b)| a != b);
    assert!(differs.is_none(), "the trace files differ at line {differs:?}");
    let parsed = ann_experiment::report::view::parse_traces("test-trained", &traces).unwrap();
    assert_eq!(parsed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ids);
    assert!(parsed.iter().all(|e| e.trace.as_ref().is_some_and(|t| t.calls().count() == 1)));
    let left: Vec<_> = std::fs::read_dir(run_dir.join("traces")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "no partial file is left: {left:?}");

    // `train.trace_examples` keeps the first N traces; `train.write_traces = false` none.
    for (extra, traced) in [("[train]\ntrace_examples = 3\n", Some(3)), ("[train]\nwrite_traces = false\n", None)] {
        let dir = tempfile::tempdir().unwrap();
        let prepared = prepare(dir.path(), &server, 8, extra).await;
        let examples = ann_experiment::split_examples(prepared.benchmark.as_ref(), Split::Test);
        let record = Some(Record { run_dir: dir.path(), name: "validation-initial" });
        prepared.evaluate_streaming(&prepared.start, &examples, None, &routing, record).await.unwrap();
        assert_eq!(read(&dir.path().join("evaluations/validation-initial.jsonl")).lines().count(), 8);
        let traces = dir.path().join("traces/validation-initial.jsonl");
        match traced {
            Some(n) => {
                let parsed = ann_experiment::report::view::parse_traces("v", &read(&traces)).unwrap();
                assert_eq!(parsed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["q000", "q001", "q002"][..n]);
            }
            None => assert!(!traces.exists(), "{extra}"),
        }
    }

    // A budget stop is the error (typed), and leaves neither file.
    let dir = tempfile::tempdir().unwrap();
    let prepared = prepare(dir.path(), &server, 40, "[budget]\nmax_calls = 10\n").await;
    let examples = ann_experiment::split_examples(prepared.benchmark.as_ref(), Split::Test);
    let record = Some(Record { run_dir: dir.path(), name: "test-initial" });
    let err = prepared.evaluate_streaming(&prepared.start, &examples, None, &routing, record).await.unwrap_err();
    let train = err.downcast_ref::<ann_textgrad::TrainError>().unwrap_or_else(|| panic!("{err:#}"));
    assert!(train.budget_stop().is_some(), "{train}");
    for sub in ["evaluations", "traces"] {
        let files: Vec<_> = std::fs::read_dir(dir.path().join(sub)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(files.is_empty(), "{sub}: {files:?}");
    }
    server.shutdown().await;
}
