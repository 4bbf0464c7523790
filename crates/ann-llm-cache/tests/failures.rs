//! Infrastructure failures of the cache are told apart from model failures: a read-only file or
//! directory is named as such, and a paid answer that cannot be stored is kept, not discarded.
//!
//! Root writes through file permissions, so as root the read-only checks run in a child process
//! (this test binary again) as the unprivileged user `nobody`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use ann_llm::{ChatModel, ChatRequest, LlmError, Message};
use ann_llm_cache::{CacheConfig, CacheError, CachedModel, ResponseCache};
use ann_test_support::ScriptedModel;

const CHILD_ENV: &str = "ANN_LLM_CACHE_READ_ONLY_CHILD";
const NOBODY: u32 = 65534;

fn req(text: &str) -> ChatRequest {
    ChatRequest::new("test-model", vec![Message::user(text)])
}

fn echo() -> ScriptedModel {
    ScriptedModel::new("s").fallback(|r| Ok(format!("answer to {}", r.messages.last().unwrap().content)))
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Record one answer in a fresh cache at `dir/responses.sqlite`, then close it.
async fn recorded(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir(dir).unwrap();
    let path = dir.join("responses.sqlite");
    let model = CachedModel::new(echo(), ResponseCache::open(&path).unwrap());
    model.complete(&req("recorded")).await.unwrap();
    drop(model);
    assert!(!dir.join("responses.sqlite-wal").exists(), "closing the last connection removes the WAL");
    path
}

/// Use a cache that cannot be written: it opens and answers what it holds, and a new request fails
/// before the backend is called; or (a WAL file in a read-only directory) it does not open. Either
/// way the error says read-only and names the file. Returns the error message.
async fn check_read_only(path: &Path) -> String {
    let message = match ResponseCache::open(path) {
        Err(e) => {
            assert!(e.is_read_only(), "{e:?}");
            e.to_string()
        }
        Ok(cache) => {
            let model = CachedModel::new(echo(), cache);
            // What was recorded is still answered.
            assert!(model.complete(&req("recorded")).await.unwrap().cache_hit);
            let err = model.complete(&req("new question")).await.unwrap_err();
            assert_eq!(model.inner().calls(), 0, "nothing is paid for that cannot be stored");
            assert!(err.is_infrastructure(), "a storage failure stops the run: {err:?}");
            let LlmError::Storage { .. } = err else { panic!("{err:?}") };
            err.to_string()
        }
    };
    assert!(message.contains("read-only"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    message
}

#[tokio::test]
async fn a_read_only_cache_file_or_directory_says_read_only() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        println!("{}", check_read_only(Path::new(&path)).await);
        return;
    }
    let root = tempfile::tempdir().unwrap();
    chmod(root.path(), 0o755);
    let file = recorded(&root.path().join("file")).await;
    chmod(file.parent().unwrap(), 0o777);
    chmod(&file, 0o444);
    let dir = recorded(&root.path().join("dir")).await;
    chmod(&dir, 0o666);
    chmod(dir.parent().unwrap(), 0o555);

    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    for (path, part) in [(&file, "database file is not writable"), (&dir, "directory is not writable")] {
        let message = if as_root {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["a_read_only_cache_file_or_directory_says_read_only", "--exact", "--nocapture"])
                .env(CHILD_ENV, path)
                .uid(NOBODY)
                .gid(NOBODY)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
            stdout
        } else {
            check_read_only(path).await
        };
        assert!(message.contains(part), "{}: {message}", path.display());
    }
    chmod(dir.parent().unwrap(), 0o755);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_answer_that_cannot_be_stored_is_kept_and_the_error_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let config = CacheConfig { busy_timeout: Duration::from_millis(100), ..CacheConfig::default() };
    let cache = ResponseCache::open_with(&path, &config).unwrap();
    // While the backend answers, another connection takes the write lock and keeps it past the busy
    // timeout: the insert of the paid answer fails as it would on a full disk.
    let locker = std::sync::Arc::new(std::sync::Mutex::new(rusqlite::Connection::open(&path).unwrap()));
    let held = locker.clone();
    let backend = ScriptedModel::new("s").fallback(move |_| {
        held.lock().unwrap().execute_batch("BEGIN IMMEDIATE").unwrap();
        Ok("a paid answer".into())
    });
    let model = CachedModel::new(backend, cache.clone());
    let err = model.complete(&req("q")).await.unwrap_err();
    let LlmError::Storage { .. } = &err else { panic!("{err:?}") };
    assert!(err.is_infrastructure());
    let message = err.to_string();
    assert!(
        message.contains("could not be stored") && message.contains(&req("q").fingerprint("scripted:s")),
        "{message}"
    );
    assert!(message.contains("responses.sqlite"), "{message}");
    assert!(!err.is_retryable());
    locker.lock().unwrap().execute_batch("ROLLBACK").unwrap();

    let unsaved = cache.unsaved();
    assert_eq!(unsaved.len(), 1);
    assert_eq!((unsaved[0].response.text.as_str(), &unsaved[0].request), ("a paid answer", &req("q")));
    // The answer is not paid for again in this process.
    let again = model.complete(&req("q")).await.unwrap();
    assert_eq!((again.text.as_str(), again.cache_hit), ("a paid answer", true));
    assert_eq!(model.inner().calls(), 1);
    // And it can be written out as a cassette line and imported once the disk is fixed.
    let cassette = dir.path().join("unsaved.jsonl");
    std::fs::write(&cassette, format!("{}\n", unsaved[0].to_line())).unwrap();
    assert_eq!(cache.import_jsonl(&cassette).unwrap().added, 1);
}

#[test]
fn read_only_errors_are_typed() {
    let err = CacheError::Unsaved {
        key: "k".into(),
        source: Box::new(CacheError::ReadOnly {
            path: "/x/c.sqlite".into(),
            part: ann_llm_cache::ReadOnlyPart::Directory,
            source: rusqlite::Error::InvalidQuery,
        }),
    };
    assert!(err.is_read_only());
    assert!(std::error::Error::source(&err).is_some(), "errors keep their source");
}
