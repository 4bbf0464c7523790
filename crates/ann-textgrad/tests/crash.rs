//! A training run in a real child process, over HTTP to the fake OpenAI server and through the
//! SQLite response cache, is killed with SIGKILL mid-step, resumed, and ends with the same network
//! and journal as an uninterrupted run, with the same number of calls reaching the server.
//!
//! The child is this test binary run again with `child_training_run` as its filter and the run's
//! settings in environment variables; without them that test runs the same training in process.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, SharedModel};
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_textgrad::{RunFiles, StopReason, TrainConfig, TrainOutcome, Trainer};
use async_trait::async_trait;
use common::{FIX, data, network, objective, read, server};

const ENV_URL: &str = "ANN_TEXTGRAD_CRASH_URL";
const ENV_DIR: &str = "ANN_TEXTGRAD_CRASH_DIR";
const ENV_PAUSE_AT: &str = "ANN_TEXTGRAD_CRASH_PAUSE_AT";

/// Once the journal has `after_lines` lines, before the `at`-th call from then on (and every
/// later one): wait until no earlier call is in flight (so each has been answered and stored in
/// the cache), write the marker file and hang. The parent kills the process mid-step, at a point
/// where no call reached the server without being cached.
struct PauseGate {
    inner: SharedModel,
    journal: PathBuf,
    after_lines: usize,
    at: u64,
    marker: PathBuf,
    count: AtomicU64,
    in_flight: AtomicUsize,
}

#[async_trait]
impl ChatModel for PauseGate {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let lines = std::fs::read_to_string(&self.journal).map(|t| t.lines().count()).unwrap_or(0);
        let n = if lines >= self.after_lines { self.count.fetch_add(1, Ordering::SeqCst) + 1 } else { 0 };
        if n >= self.at {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            while self.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            std::fs::write(&self.marker, n.to_string()).expect("write the marker");
            std::future::pending::<()>().await;
        }
        let result = self.inner.complete(request).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}

/// Train against the server at `url`, with the cache and the run files in `dir`.
async fn train_over_http(url: &str, dir: &Path, pause_at: Option<u64>) -> TrainOutcome {
    let config = OpenAiConfig {
        base_urls: vec![url.to_string()],
        model: "fake".into(),
        api_key_env: String::new(),
        ..OpenAiConfig::default()
    };
    let client = OpenAiModel::new(config, None).expect("client");
    let cache = ResponseCache::open(&dir.join("responses.sqlite")).expect("cache");
    let mut model: SharedModel = Arc::new(CachedModel::new(client, cache));
    let run = dir.join("run");
    if let Some(at) = pause_at {
        model = Arc::new(PauseGate {
            inner: model,
            journal: run.join("journal.jsonl"),
            after_lines: 3,
            at,
            marker: dir.join("paused"),
            count: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
    }
    let mut cfg = TrainConfig { epochs: 3, batch_size: 2, seed: 11, ..TrainConfig::default() };
    cfg.forward.model = "fake".into();
    cfg.optimizer.model = "fake".into();
    Trainer::new(model.clone(), model, objective(), cfg).train(&network(), &data(), &run).await.expect("training runs")
}

/// The child's entry point; run without the environment, the same training in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_training_run() {
    if let (Ok(url), Ok(dir)) = (std::env::var(ENV_URL), std::env::var(ENV_DIR)) {
        let pause_at = std::env::var(ENV_PAUSE_AT).ok().map(|n| n.parse().expect("a call number"));
        train_over_http(&url, Path::new(&dir), pause_at).await;
        return;
    }
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = train_over_http(&server.url(), dir.path(), None).await;
    assert_eq!((out.val_initial, out.val_best), (0.0, 0.75));
    assert!(out.best.layer("answer").unwrap().agents[0].prompt.contains(FIX));
    assert_eq!(out.stop, StopReason::Completed);
    let calls = server.request_count();
    // Again on the same directory: the finished run answers from its checkpoint, no call at all.
    let again = train_over_http(&server.url(), dir.path(), None).await;
    assert_eq!((again, server.request_count()), (out, calls));
}

async fn child(url: &str, dir: &Path, pause_at: Option<u64>) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command.args(["child_training_run", "--exact", "--nocapture", "--test-threads=1"]);
    command.env(ENV_URL, url).env(ENV_DIR, dir);
    if let Some(at) = pause_at {
        command.env(ENV_PAUSE_AT, at.to_string());
    } else {
        command.env_remove(ENV_PAUSE_AT);
    }
    // The child's own test harness output is noise here; its panics still reach stderr.
    command.stdout(std::process::Stdio::null());
    command.kill_on_drop(true).spawn().expect("spawn the child")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_to_the_same_network_and_journal_without_paying_twice() {
    // The uninterrupted run.
    let whole_server = server().await;
    let whole = tempfile::tempdir().unwrap();
    let status = child(&whole_server.url(), whole.path(), None).await.wait().await.unwrap();
    assert!(status.success(), "uninterrupted child: {status}");
    let whole_calls = whole_server.request_count();
    let whole_journal = read(&whole.path().join("run/journal.jsonl"));
    let whole_checkpoint = RunFiles::new(&whole.path().join("run")).unwrap().load_checkpoint().unwrap().unwrap();

    // The same run, killed halfway (by calls), then resumed by a fresh process.
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    // Paused at the third call after the second step's journal line: inside the third step.
    let mut killed = child(&server.url(), dir.path(), Some(3)).await;
    let marker = dir.path().join("paused");
    let mut waited = 0;
    while !marker.exists() {
        assert!(killed.try_wait().unwrap().is_none(), "the child ended before pausing");
        assert!(waited < 6000, "the child never paused");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    killed.kill().await.expect("SIGKILL the child");
    let status = killed.wait().await.unwrap();
    assert!(!status.success());
    let partial = read(&dir.path().join("run/journal.jsonl"));
    assert_eq!(partial.lines().count(), 3, "killed after two steps");
    assert!(partial.len() < whole_journal.len(), "killed before the end");
    let calls_at_kill = server.request_count();
    assert!(calls_at_kill > 0 && calls_at_kill < whole_calls);

    let status = child(&server.url(), dir.path(), None).await.wait().await.unwrap();
    assert!(status.success(), "resumed child: {status}");
    assert_eq!(read(&dir.path().join("run/journal.jsonl")), whole_journal);
    let checkpoint = RunFiles::new(&dir.path().join("run")).unwrap().load_checkpoint().unwrap().unwrap();
    assert_eq!(checkpoint.best, whole_checkpoint.best);
    assert_eq!(checkpoint.network, whole_checkpoint.network);
    assert_eq!(checkpoint, whole_checkpoint);
    assert_eq!(server.request_count(), whole_calls, "no call was paid twice");
}
