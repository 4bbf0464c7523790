//! Single-flight across processes: separate processes asking one cache file for the same requests
//! reach the backend once per request, and a killed fetcher's claims vanish with it so a waiter
//! takes over.
//!
//! The child processes are this test binary run again with an environment variable naming their role.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, Message};
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_test_support::ScriptedModel;
use tokio::io::AsyncBufReadExt;

const CHILD_ENV: &str = "ANN_LLM_CACHE_PROCESS_CHILD";
const KEYS: usize = 16;
const PROCESSES: usize = 4;

fn req(text: &str) -> ChatRequest {
    ChatRequest::new("test-model", vec![Message::user(text)])
}

fn slow_echo(latency: Duration) -> ScriptedModel {
    ScriptedModel::new("s")
        .fallback(|r| Ok(format!("answer to {}", r.messages.last().unwrap().content)))
        .with_latency(latency)
}

/// A backend that says on stdout when it is called (the cache has claimed the request by then).
struct Announced(ScriptedModel);

#[async_trait::async_trait]
impl ChatModel for Announced {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        use std::io::Write;
        println!("backend called");
        std::io::stdout().flush().unwrap();
        self.0.complete(request).await
    }

    fn identity(&self) -> String {
        self.0.identity()
    }
}

fn child(test: &str, role: &str, path: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, format!("{role}:{}", path.display()))
        .kill_on_drop(true);
    command
}

/// The child's side: `fetch` asks every key at once through a slow backend and prints how many
/// backend calls it made; `hang` asks one key through a backend that never answers.
async fn run_child(spec: &str) {
    let (role, path) = spec.split_once(':').unwrap();
    match role {
        "fetch" => {
            let model =
                CachedModel::new(slow_echo(Duration::from_millis(300)), ResponseCache::open(Path::new(path)).unwrap());
            let requests: Vec<_> = (0..KEYS).map(|i| req(&format!("question {i}"))).collect();
            let answers = futures::future::join_all(requests.iter().map(|r| model.complete(r))).await;
            for (i, answer) in answers.into_iter().enumerate() {
                assert_eq!(answer.unwrap().text, format!("answer to question {i}"));
            }
            println!("backend calls: {}", model.inner().calls());
        }
        "open" => {
            let cache = ResponseCache::open(Path::new(path)).unwrap_or_else(|e| panic!("opening a new file: {e:?}"));
            assert_eq!(cache.len().unwrap(), 0);
        }
        "hang" => {
            let cache = ResponseCache::open(Path::new(path)).unwrap();
            let model = CachedModel::new(Announced(slow_echo(Duration::from_secs(3600))), cache);
            let _ = model.complete(&req("orphan")).await;
            panic!("the backend never answers");
        }
        other => panic!("unknown child role {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_file_call_the_backend_once_per_request() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return run_child(&spec).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    let test = "processes_sharing_a_file_call_the_backend_once_per_request";
    let runs = (0..PROCESSES).map(|_| async { child(test, "fetch", &path).output().await.unwrap() });
    let mut calls = 0;
    for output in futures::future::join_all(runs).await {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        // libtest prints `test name ... ` on the same line, before the child's own output.
        let reported = stdout.split("backend calls: ").nth(1).expect("the child reports its calls");
        calls += reported.split_whitespace().next().unwrap().parse::<usize>().unwrap();
    }
    assert_eq!(calls, KEYS, "{PROCESSES} processes × {KEYS} requests: each request paid once");
    assert_eq!(cache.len().unwrap(), KEYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_creating_one_new_file_at_once_all_open_it() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return run_child(&spec).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let test = "processes_creating_one_new_file_at_once_all_open_it";
    // Each round a fresh file that several processes create, set to WAL and give a schema together.
    for round in 0..8 {
        let path = dir.path().join(format!("new-{round}.sqlite"));
        let opens = (0..PROCESSES).map(|_| async { child(test, "open", &path).output().await.unwrap() });
        for output in futures::future::join_all(opens).await {
            assert!(output.status.success(), "round {round}: {}", String::from_utf8_lossy(&output.stderr));
        }
        assert_eq!(ResponseCache::open(&path).unwrap().len().unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fetchers_claim_is_released_and_a_waiter_takes_over() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return run_child(&spec).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    let mut owner = child("a_killed_fetchers_claim_is_released_and_a_waiter_takes_over", "hang", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(owner.stdout.take().unwrap()).lines();
    let announced = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("backend called") {
                return;
            }
        }
        panic!("the child ended without calling its backend");
    };
    tokio::time::timeout(Duration::from_secs(60), announced).await.expect("the child never called its backend");

    // The child holds the claim while its backend call runs: this process waits instead of paying.
    let model = Arc::new(CachedModel::new(slow_echo(Duration::ZERO), cache));
    let m = model.clone();
    let waiter = tokio::spawn(async move { m.complete(&req("orphan")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "a live fetcher's claim is waited for");
    assert_eq!(model.inner().calls(), 0);
    // Killed mid-call, the child's claim goes with it: the waiter takes over and pays once.
    owner.kill().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap().unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("answer to orphan", false));
    assert_eq!(model.inner().calls(), 1);
}

#[tokio::test]
async fn a_key_another_handle_is_fetching_is_waited_for_and_its_answer_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    // Two handles on one file exclude each other as two processes do (each has its own claims).
    let theirs = Arc::new(CachedModel::new(
        ScriptedModel::new("s").fallback(|_| Ok("their answer".into())).with_latency(Duration::from_secs(2)),
        ResponseCache::open(&path).unwrap(),
    ));
    let ours = Arc::new(CachedModel::new(slow_echo(Duration::ZERO), ResponseCache::open(&path).unwrap()));
    let t = theirs.clone();
    let fetcher = tokio::spawn(async move { t.complete(&req("q")).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while theirs.inner().calls() == 0 {
        assert!(Instant::now() < deadline, "never called");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let o = ours.clone();
    let waiter = tokio::spawn(async move { o.complete(&req("q")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "a claim held elsewhere is waited for");
    let fetched = fetcher.await.unwrap().unwrap();
    assert_eq!((fetched.text.as_str(), fetched.cache_hit), ("their answer", false));
    let answer = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("their answer", true));
    assert_eq!((theirs.inner().calls(), ours.inner().calls()), (1, 0));
}

#[test]
fn a_claim_dropped_at_runtime_shutdown_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    let backend = Arc::new(slow_echo(Duration::from_secs(3600)));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let model = CachedModel::new(backend.clone(), cache.clone());
    runtime.spawn(async move { model.complete(&req("q")).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.calls() == 0 {
        assert!(Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Shutting down drops the call mid-flight; its claim is given back while the cache stays open
    // (closing the cache would release it anyway), so another handle fetches the key itself.
    drop(runtime);
    let other = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let model = CachedModel::new(slow_echo(Duration::ZERO), ResponseCache::open(&path).unwrap());
    let answer = other
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), model.complete(&req("q"))).await })
        .expect("the claim was released")
        .unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit, model.inner().calls()), ("answer to q", false, 1));
    drop(cache);
}

#[tokio::test]
async fn a_file_with_an_older_builds_claims_table_is_used_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let key = req("q").fingerprint("scripted:s");
    // A file as an older build left it: schema version 1 with its claims table, holding a claim.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE responses (key TEXT PRIMARY KEY NOT NULL, backend TEXT NOT NULL, request TEXT NOT NULL,
             response TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE claims (key TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, expires_ms INTEGER NOT NULL)
             WITHOUT ROWID;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    old.execute("INSERT INTO claims (key, owner, expires_ms) VALUES (?1, 'old', ?2)", (&key, i64::MAX)).unwrap();
    let model = CachedModel::new(slow_echo(Duration::ZERO), ResponseCache::open(&path).unwrap());
    let answer = tokio::time::timeout(Duration::from_secs(30), model.complete(&req("q"))).await.unwrap().unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("answer to q", false));
    assert!(model.complete(&req("q")).await.unwrap().cache_hit);
    assert_eq!(model.inner().calls(), 1);
    let claims: i64 = old.query_row("SELECT count(*) FROM claims", [], |r| r.get(0)).unwrap();
    assert_eq!(claims, 1, "the old table is left as it was");
}
