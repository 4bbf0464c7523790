//! A response cache that cannot store paid answers mid-run: `ann train` stops with a clear message
//! and a non-zero exit, the answers go to the run directory's `unsaved-responses.jsonl`, and once
//! the cache works again `ann resume` imports them first, so no call is paid twice and the results
//! equal an uninterrupted run's.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ann_test_support::server::{FakeServer, FakeServerConfig, echo_reply};
use support::stderr;

const UNSAVED: &str = "unsaved-responses.jsonl";

/// An `mmlu-ml` experiment on the fetched data with the demo's network, its cache at
/// `home/responses.sqlite` waiting at most 200 ms for a write lock.
fn experiment(home: &Path) -> PathBuf {
    support::mmlu_experiment(home, "unsaved", (4, 2, 2), 1, "busy_timeout_ms = 200\n")
}

async fn ann(home: &Path, url: &str, args: &[&str]) -> std::process::Output {
    support::ann_at(home, url, args)
        .env("ANN_OPENAI_API_KEY", "sk-test-unsaved")
        .env_remove("ANN_CACHE_DIR")
        .output()
        .await
        .unwrap()
}

/// The calls a run's `budget.json` counts as spent, and those it holds in flight.
fn ledger_calls(run: &Path) -> (u64, u64) {
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("budget.json")).unwrap()).unwrap();
    (ledger["spent"]["calls"].as_u64().unwrap(), ledger["in_flight"]["calls"].as_u64().unwrap())
}

fn only_run(home: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(home.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1);
    runs[0].clone()
}

/// The files that hold a run's results: the trained network and every evaluation.
fn results(run: &Path) -> Vec<(String, String)> {
    let mut files =
        vec![("network-trained.json".to_string(), std::fs::read_to_string(run.join("network-trained.json")).unwrap())];
    let mut evaluations: Vec<_> =
        std::fs::read_dir(run.join("evaluations")).unwrap().map(|e| e.unwrap().path()).collect();
    evaluations.sort();
    for path in evaluations {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((name, std::fs::read_to_string(&path).unwrap()));
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_cache_cannot_store_are_kept_in_the_run_and_imported_by_resume() {
    // The uninterrupted run, for its call count and results.
    let whole_server = FakeServer::start(FakeServerConfig::default()).await.unwrap();
    let whole = tempfile::tempdir().unwrap();
    let config = experiment(whole.path());
    let out =
        ann(whole.path(), &whole_server.url(), &["train", "--openai", "--config", config.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(whole.path().join("responses.sqlite").is_file());
    let calls = whole_server.request_count();
    assert!(calls >= 10, "{calls} calls");
    assert_eq!(ledger_calls(&only_run(whole.path())), (calls, 0), "the ledger counts every request");

    // Mid-run, another connection takes the cache's write lock and keeps it: from then on no paid
    // answer can be stored (as on a full disk).
    let home = tempfile::tempdir().unwrap();
    let cache_file = home.path().join("responses.sqlite");
    let locker: Arc<Mutex<Option<rusqlite::Connection>>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    let reply = {
        let (locker, seen, cache_file) = (locker.clone(), seen.clone(), cache_file.clone());
        move |body: &serde_json::Value| {
            if seen.fetch_add(1, Ordering::SeqCst) == calls / 2 {
                let connection = rusqlite::Connection::open(&cache_file).unwrap();
                connection.execute_batch("BEGIN IMMEDIATE").unwrap();
                *locker.lock().unwrap() = Some(connection);
            }
            echo_reply(body)
        }
    };
    let server = FakeServer::start(FakeServerConfig::default().with_reply(reply)).await.unwrap();
    let config = experiment(home.path());
    let out = ann(home.path(), &server.url(), &["train", "--openai", "--config", config.to_str().unwrap()]).await;
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(locker.lock().unwrap().is_some(), "the lock was taken mid-run");
    let run = only_run(home.path());
    assert!(!run.join("report.json").exists(), "no report");
    assert!(err.contains("could not be stored") && err.contains("responses.sqlite"), "the cause is named: {err}");
    assert!(err.contains(UNSAVED) && err.contains("ann resume"), "the kept answers and the resume are named: {err}");
    let kept = std::fs::read_to_string(run.join(UNSAVED)).unwrap();
    assert!(kept.lines().count() >= 1, "{kept}");
    assert!(!kept.contains("sk-test-unsaved"), "no key in the run directory");
    let paid_before = server.request_count();
    assert!(paid_before < calls, "the run stopped early: {paid_before} of {calls}");
    assert_eq!(ledger_calls(&run), (paid_before, 0), "the stopped run's ledger counts what it paid");

    // The lock is released: the resumed run imports the kept answers and pays for none again.
    let connection = locker.lock().unwrap().take().unwrap();
    connection.execute_batch("ROLLBACK").unwrap();
    drop(connection);
    let out = ann(home.path(), &server.url(), &["resume", run.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("imported"), "{}", stderr(&out));
    assert!(!run.join(UNSAVED).exists(), "imported, then removed");
    assert_eq!(server.request_count(), calls, "no call paid twice");
    assert_eq!(ledger_calls(&run), (calls, 0), "the ledger of the stop and the resume together");
    assert_eq!(results(&run), results(&only_run(whole.path())), "the results of an uninterrupted run");
    server.shutdown().await;
    whole_server.shutdown().await;
}
