//! Single-flight across processes: separate processes asking one cache file for the same requests
//! reach the backend once per request, and a crashed fetcher's claim expires so a waiter takes over.
//!
//! The child processes are this test binary run again with an environment variable naming their role.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_cache::{CacheConfig, CachedModel, ResponseCache};
use ann_test_support::ScriptedModel;

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

fn short_lease() -> CacheConfig {
    CacheConfig { claim_lease: Duration::from_millis(900), ..CacheConfig::default() }
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
            let cache = ResponseCache::open_with(Path::new(path), &short_lease()).unwrap();
            let model = CachedModel::new(slow_echo(Duration::from_secs(3600)), cache);
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

fn claim_expiry(path: &Path, key: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT expires_ms FROM claims WHERE key = ?1", [key], |r| r.get(0)).ok()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fetchers_claim_expires_and_a_waiter_takes_over() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return run_child(&spec).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open_with(&path, &short_lease()).unwrap();
    let key = req("orphan").fingerprint("scripted:s");
    let mut owner = child("a_killed_fetchers_claim_expires_and_a_waiter_takes_over", "hang", &path).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while claim_expiry(&path, &key).is_none() {
        assert!(Instant::now() < deadline, "the child never claimed the request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The owner renews its lease while it lives: wait past one lease, then kill it mid-call.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(claim_expiry(&path, &key).unwrap() > now_ms(), "a live owner keeps its claim");
    owner.kill().await.unwrap();
    let expires = claim_expiry(&path, &key).expect("a killed owner leaves its claim behind");

    let model = CachedModel::new(slow_echo(Duration::ZERO), cache);
    let answer = tokio::time::timeout(Duration::from_secs(30), model.complete(&req("orphan"))).await.unwrap().unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("answer to orphan", false));
    assert_eq!(model.inner().calls(), 1);
    assert!(now_ms() >= expires, "the waiter took over only once the lease had expired");
    assert_eq!(claim_expiry(&path, &key), None, "the new owner released its claim when it stored the answer");
}

#[tokio::test]
async fn a_claim_held_elsewhere_is_waited_for_and_its_answer_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    let key = req("q").fingerprint("scripted:s");
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute("INSERT INTO claims (key, owner, expires_ms) VALUES (?1, 'elsewhere', ?2)", (&key, now_ms() + 60_000))
        .unwrap();
    let model = CachedModel::new(slow_echo(Duration::ZERO), cache.clone());
    let waiter = tokio::spawn(async move { model.complete(&req("q")).await.map(|a| (a, model.inner().calls())) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "a live claim is waited for");
    // The other owner stores its answer and releases its claim, as a finishing process does.
    let theirs = serde_json::to_string(&ann_llm::ChatResponse::text("test-model", "their answer")).unwrap();
    other
        .execute(
            "INSERT INTO responses (key, backend, request, response) VALUES (?1, 'scripted:s', ?2, ?3)",
            (&key, req("q").canonical_json(), theirs),
        )
        .unwrap();
    other.execute("DELETE FROM claims WHERE key = ?1", [&key]).unwrap();
    let (answer, calls) = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit, calls), ("their answer", true, 0));
}

#[test]
fn a_claim_dropped_at_runtime_shutdown_is_released_and_the_cache_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    let key = req("q").fingerprint("scripted:s");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let model = CachedModel::new(slow_echo(Duration::from_secs(3600)), cache.clone());
    runtime.spawn(async move { model.complete(&req("q")).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while claim_expiry(&path, &key).is_none() {
        assert!(Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Shutting down drops the call mid-flight; its claim is given back although the runtime is gone.
    drop(runtime);
    drop(cache);
    assert_eq!(claim_expiry(&path, &key), None);
}
