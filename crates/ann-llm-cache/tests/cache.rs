//! End-to-end tests of the response cache on real SQLite files: modes, keys, single-flight,
//! restarts, two processes on one file, and JSONL cassettes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ann_llm::{ChatModel, ChatRequest, LlmError, Message, ResponseFormat};
use ann_llm_cache::{CacheError, CacheMode, CacheStats, CachedModel, CassetteEntry, ImportReport, ResponseCache};
use ann_test_support::ScriptedModel;
use tempfile::TempDir;

fn req(text: &str) -> ChatRequest {
    ChatRequest::new("test-model", vec![Message::system("Be brief."), Message::user(text)])
}

/// A model that answers every request with a text derived from it.
fn echo(name: &str) -> ScriptedModel {
    ScriptedModel::new(name).fallback(|r| Ok(format!("answer to {}", r.messages.last().unwrap().content)))
}

fn temp_cache() -> (TempDir, PathBuf, ResponseCache) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let cache = ResponseCache::open(&path).unwrap();
    (dir, path, cache)
}

#[tokio::test]
async fn miss_then_hit_keeps_usage_and_counts_saved_tokens() {
    let (_dir, _path, cache) = temp_cache();
    let model = CachedModel::new(echo("s"), cache.clone());
    let first = model.complete(&req("two plus two")).await.unwrap();
    assert!(!first.cache_hit);
    let second = model.complete(&req("two plus two")).await.unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.text, first.text);
    assert_eq!(second.usage, first.usage);
    assert_eq!(model.inner().calls(), 1);
    assert_eq!(cache.len().unwrap(), 1);
    let stats = model.stats();
    assert_eq!(
        stats,
        CacheStats {
            hits: 1,
            coalesced: 0,
            misses: 1,
            saved_prompt_tokens: first.usage.prompt_tokens,
            saved_completion_tokens: first.usage.completion_tokens,
        }
    );
    assert!(stats.saved_tokens() > 0);
    assert_eq!(stats.saved_tokens(), first.usage.total());
}

#[tokio::test]
async fn a_miss_takes_one_write_transaction_and_a_hit_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let model = CachedModel::new(echo("s"), ResponseCache::open(&path).unwrap());
    for i in 0..5 {
        assert!(!model.complete(&req(&format!("q{i}"))).await.unwrap().cache_hit);
    }
    // The claim is a lock and the lookup a read: the insert is the only write of a miss.
    assert_eq!(model.cache().write_transactions(), 5);
    // Hits, from memory or (another handle, no memory front) from the file, write nothing.
    let config = ann_llm_cache::CacheConfig { memory_entries: 0, ..Default::default() };
    let from_file = CachedModel::new(echo("s"), ResponseCache::open_with(&path, &config).unwrap());
    for i in 0..5 {
        assert!(model.complete(&req(&format!("q{i}"))).await.unwrap().cache_hit);
        assert!(from_file.complete(&req(&format!("q{i}"))).await.unwrap().cache_hit);
    }
    assert_eq!((model.cache().write_transactions(), from_file.cache().write_transactions()), (5, 0));
    assert_eq!(from_file.inner().calls(), 0);
}

#[tokio::test]
async fn a_changed_temperature_sample_index_or_backend_is_a_miss() {
    let (_dir, _path, cache) = temp_cache();
    let model = CachedModel::new(echo("s"), cache.clone());
    let variants = [
        req("q"),
        req("q").with_temperature(0.7),
        req("q").with_temperature(0.8),
        req("q").with_sample_index(1),
        req("q").with_temperature(0.7).with_sample_index(1),
        req("q").with_response_format(ResponseFormat::JsonObject),
    ];
    for v in &variants {
        assert!(!model.complete(v).await.unwrap().cache_hit, "{v:?}");
    }
    assert_eq!(model.inner().calls(), variants.len());
    for v in &variants {
        assert!(model.complete(v).await.unwrap().cache_hit, "{v:?}");
    }
    assert_eq!(model.inner().calls(), variants.len());
    // Another backend on the same file never gets these answers.
    let other = CachedModel::new(echo("other"), cache.clone());
    assert!(!other.complete(&req("q")).await.unwrap().cache_hit);
    assert_eq!(cache.len().unwrap(), variants.len() + 1);
}

#[tokio::test]
async fn tags_do_not_change_the_key() {
    let (_dir, _path, cache) = temp_cache();
    let model = CachedModel::new(echo("s"), cache);
    let forward = req("q").with_tag("phase", "forward").with_tag("agent", "a1");
    let backward = req("q").with_tag("phase", "backward");
    assert!(!model.complete(&forward).await.unwrap().cache_hit);
    assert!(model.complete(&backward).await.unwrap().cache_hit);
    assert_eq!(model.inner().calls(), 1);
}

#[tokio::test]
async fn replay_only_answers_recorded_requests_and_names_a_missing_one() {
    let (_dir, _path, cache) = temp_cache();
    let recorder = CachedModel::new(echo("s"), cache.clone());
    recorder.complete(&req("recorded question")).await.unwrap();

    let replay = CachedModel::new(echo("s"), cache.clone()).with_mode(CacheMode::ReplayOnly);
    let hit = replay.complete(&req("recorded question")).await.unwrap();
    assert!(hit.cache_hit);
    assert_eq!(hit.text, "answer to recorded question");

    let missing = req("What is the capital of France? Answer in one word, please, and nothing else.")
        .with_temperature(0.3)
        .with_sample_index(4);
    let err = replay.complete(&missing).await.unwrap_err();
    let LlmError::CacheMiss { key, summary } = &err else { panic!("expected CacheMiss, got {err:?}") };
    assert_eq!(key, &missing.fingerprint("scripted:s"));
    assert_eq!(
        summary,
        "model test-model on scripted:s, temperature 0.3, sample 4, last user message \
         \"What is the capital of France? Answer in one word, please, a…\""
    );
    let message = err.to_string();
    assert!(message.contains(key.as_str()) && message.contains("replay-only"), "{message}");
    assert!(!err.is_retryable());
    assert_eq!(replay.inner().calls(), 0, "replay-only never calls the backend");
    assert_eq!(cache.len().unwrap(), 1, "a replay-only miss stores nothing");
    assert_eq!(cache.stats().misses, 2);
}

#[tokio::test]
async fn refresh_calls_again_and_overwrites() {
    let (_dir, _path, cache) = temp_cache();
    let inner = Arc::new(ScriptedModel::new("s"));
    inner.push_reply("first");
    inner.push_reply("second");
    let rw = CachedModel::new(inner.clone(), cache.clone());
    let refresh = CachedModel::new(inner.clone(), cache.clone()).with_mode(CacheMode::Refresh);

    assert_eq!(rw.complete(&req("q")).await.unwrap().text, "first");
    let fresh = refresh.complete(&req("q")).await.unwrap();
    assert_eq!((fresh.text.as_str(), fresh.cache_hit), ("second", false));
    assert_eq!(inner.calls(), 2);
    let hit = rw.complete(&req("q")).await.unwrap();
    assert_eq!((hit.text.as_str(), hit.cache_hit), ("second", true));
    assert_eq!(inner.calls(), 2);
    assert_eq!(cache.len().unwrap(), 1);
}

#[tokio::test]
async fn off_bypasses_the_cache() {
    let (_dir, _path, cache) = temp_cache();
    let model = CachedModel::new(echo("s"), cache.clone()).with_mode(CacheMode::Off);
    for _ in 0..2 {
        assert!(!model.complete(&req("q")).await.unwrap().cache_hit);
    }
    assert_eq!(model.inner().calls(), 2);
    assert!(cache.is_empty().unwrap());
    assert_eq!(cache.stats(), CacheStats::default());
}

#[tokio::test]
async fn errors_are_never_cached() {
    let (_dir, _path, cache) = temp_cache();
    let inner = Arc::new(ScriptedModel::new("s"));
    inner.push_error(LlmError::Timeout(Duration::from_secs(5)));
    inner.push_reply("ok");
    let model = CachedModel::new(inner.clone(), cache.clone());
    assert!(matches!(model.complete(&req("q")).await, Err(LlmError::Timeout(_))));
    assert!(cache.is_empty().unwrap());
    assert_eq!(model.complete(&req("q")).await.unwrap().text, "ok");
    assert!(model.complete(&req("q")).await.unwrap().cache_hit);
    assert_eq!(inner.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn identical_concurrent_requests_reach_the_backend_once() {
    let (_dir, _path, cache) = temp_cache();
    let model = Arc::new(CachedModel::new(echo("s").with_latency(Duration::from_secs(2)), cache.clone()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let m = model.clone();
            tokio::spawn(async move { m.complete(&req("same question")).await })
        })
        .collect();
    let answers: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(model.inner().calls(), 1);
    assert!(answers.iter().all(|a| a.text == "answer to same question" && a.usage == answers[0].usage));
    assert_eq!(answers.iter().filter(|a| !a.cache_hit).count(), 1, "exactly one answer came from the backend");
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits + stats.coalesced), (1, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_on_few_keys_call_once_per_key() {
    let (_dir, _path, cache) = temp_cache();
    let model = Arc::new(CachedModel::new(echo("s").with_latency(Duration::from_millis(20)), cache.clone()));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let m = model.clone();
            tokio::spawn(async move {
                let text = format!("question {}", i % 6);
                let answer = m.complete(&req(&text)).await.unwrap();
                assert_eq!(answer.text, format!("answer to {text}"));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(model.inner().calls(), 6);
    assert_eq!(cache.len().unwrap(), 6);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits + stats.coalesced), (6, 54));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_does_not_strand_the_waiting_ones() {
    let (_dir, _path, cache) = temp_cache();
    let model = Arc::new(CachedModel::new(echo("s").with_latency(Duration::from_secs(10)), cache.clone()));
    let m = model.clone();
    let first = tokio::spawn(async move { m.complete(&req("q")).await });
    while model.inner().calls() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let m = model.clone();
    let second = tokio::spawn(async move { m.complete(&req("q")).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let answer = tokio::time::timeout(Duration::from_secs(3600), second).await.expect("not stranded").unwrap().unwrap();
    assert_eq!(answer.text, "answer to q");
    assert_eq!(model.inner().calls(), 2);
    assert_eq!(cache.len().unwrap(), 1);
}

#[tokio::test]
async fn the_cache_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    {
        let model = CachedModel::new(echo("s"), ResponseCache::open(&path).unwrap());
        model.complete(&req("q").with_temperature(0.2)).await.unwrap();
    }
    let cache = ResponseCache::open(&path).unwrap();
    let replay = CachedModel::new(ScriptedModel::new("s"), cache).with_mode(CacheMode::ReplayOnly);
    let answer = replay.complete(&req("q").with_temperature(0.2)).await.unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("answer to q", true));
}

#[test]
fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite");
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
    let err = ResponseCache::open(&path).unwrap_err();
    assert!(matches!(err, CacheError::SchemaVersion { found: 99, supported: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("future.sqlite"), "{err}");
}

const CHILD_ENV: &str = "ANN_LLM_CACHE_TEST_CHILD";
const PER_PROCESS: usize = 20;

/// Run this test binary again as a child process doing `role` on the cache at `path`.
async fn run_child(role: &str, path: &Path) {
    let exe = std::env::current_exe().unwrap();
    let output = tokio::process::Command::new(exe)
        .args(["two_processes_share_one_file", "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, format!("{role}:{}", path.display()))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "child `{role}` failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"), "the child ran the test");
}

/// Record `PER_PROCESS` requests of this process and the shared ones, all at once.
async fn record(model: &CachedModel<ScriptedModel>, own: &str) {
    let requests: Vec<_> =
        (0..PER_PROCESS).flat_map(|i| [req(&format!("{own} {i}")), req(&format!("shared {i}"))]).collect();
    let answers = futures::future::join_all(requests.iter().map(|r| model.complete(r))).await;
    for (r, a) in requests.iter().zip(answers) {
        assert_eq!(a.unwrap().text, format!("answer to {}", r.messages[1].content));
    }
}

/// Check in replay-only mode that every request of `who` and the shared ones is answered.
async fn replay(cache: &ResponseCache, who: &str) {
    let replay = CachedModel::new(ScriptedModel::new("s"), cache.clone()).with_mode(CacheMode::ReplayOnly);
    for i in 0..PER_PROCESS {
        for text in [format!("{who} {i}"), format!("shared {i}")] {
            let a = replay.complete(&req(&text)).await.unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(a.cache_hit);
            assert_eq!(a.text, format!("answer to {text}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_file() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // The child: write its own and the shared requests, or read the parent's.
        let (role, path) = spec.split_once(':').unwrap();
        let cache = ResponseCache::open(Path::new(path)).unwrap();
        match role {
            "write" => record(&CachedModel::new(echo("s"), cache), "child").await,
            "read" => replay(&cache, "parent").await,
            other => panic!("unknown child role {other}"),
        }
        return;
    }
    let (_dir, path, cache) = temp_cache();
    let parent = CachedModel::new(echo("s"), cache.clone());
    // Both processes write at the same time, partly the same keys.
    tokio::join!(run_child("write", &path), record(&parent, "parent"));
    // The parent reads what the child wrote, through its connections that stayed open meanwhile.
    replay(&cache, "child").await;
    // A second child reads what the parent wrote.
    run_child("read", &path).await;
    assert_eq!(cache.len().unwrap(), 3 * PER_PROCESS);
}

/// Record a few varied entries (sampling fields, a JSON schema, unicode and escapes) into `cache`.
async fn record_varied(cache: &ResponseCache) {
    let model = CachedModel::new(echo("s"), cache.clone());
    let schema =
        serde_json::json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let requests = [
        req("plain"),
        req("warm").with_temperature(0.9).with_seed(7).with_max_tokens(64),
        req("warm").with_temperature(0.9).with_seed(7).with_max_tokens(64).with_sample_index(3),
        req("stop at newline").with_stop("\n"),
        req("structured").with_response_format(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema,
            strict: true,
        }),
        req("unicode: ∑ é 日本 \"quoted\"\n\ttabbed"),
    ];
    for r in &requests {
        model.complete(r).await.unwrap();
    }
    // A second backend in the same file.
    CachedModel::new(echo("other"), cache.clone()).complete(&req("plain")).await.unwrap();
}

#[tokio::test]
async fn cassette_round_trip_is_byte_identical_sorted_and_idempotent() {
    let (dir, _path, cache) = temp_cache();
    record_varied(&cache).await;
    let a = dir.path().join("a.jsonl");
    assert_eq!(cache.export_jsonl(&a).unwrap(), 7);
    let text_a = std::fs::read_to_string(&a).unwrap();
    let lines: Vec<&str> = text_a.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(text_a.ends_with('\n'));
    let keys: Vec<String> = lines.iter().map(|l| CassetteEntry::parse_line(l).unwrap().key).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by key: {keys:?}");
    for line in &lines {
        assert!(line.starts_with("{\"key\":\""), "{line}");
        assert!(
            line.contains(",\"backend\":\"") && line.contains(",\"request\":{") && line.contains(",\"response\":{")
        );
        assert!(!line.contains("cache_hit"), "{line}");
    }

    let b_path = dir.path().join("b.sqlite");
    let b = ResponseCache::open(&b_path).unwrap();
    assert_eq!(b.import_jsonl(&a).unwrap(), ImportReport { entries: 7, added: 7, updated: 0, unchanged: 0 });
    assert_eq!(b.import_jsonl(&a).unwrap(), ImportReport { entries: 7, added: 0, updated: 0, unchanged: 7 });
    assert_eq!(b.len().unwrap(), 7);
    let b_out = dir.path().join("b.jsonl");
    b.export_jsonl(&b_out).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b_out).unwrap(), "byte-identical round trip");
    assert!(!dir.path().join("b.jsonl.tmp").exists());
    assert_eq!(cache.entries().unwrap(), b.entries().unwrap());

    // The imported cache answers the recorded requests without a backend.
    let replay = CachedModel::new(ScriptedModel::new("s"), b).with_mode(CacheMode::ReplayOnly);
    let answer = replay.complete(&req("warm").with_temperature(0.9).with_seed(7).with_max_tokens(64)).await.unwrap();
    assert_eq!((answer.text.as_str(), answer.cache_hit), ("answer to warm", true));
}

#[tokio::test]
async fn import_replaces_a_different_answer() {
    let (dir, _path, cache) = temp_cache();
    let inner = Arc::new(ScriptedModel::new("s"));
    inner.push_reply("old answer");
    CachedModel::new(inner.clone(), cache.clone()).complete(&req("q")).await.unwrap();
    let entry = CassetteEntry::new("scripted:s", &req("q"), &ann_llm::ChatResponse::text("s", "new answer"));
    let cassette = dir.path().join("c.jsonl");
    std::fs::write(&cassette, format!("{}\n", entry.to_line())).unwrap();
    assert_eq!(cache.import_jsonl(&cassette).unwrap(), ImportReport { entries: 1, added: 0, updated: 1, unchanged: 0 });
    let hit = CachedModel::new(inner, cache).complete(&req("q")).await.unwrap();
    assert_eq!(hit.text, "new answer");
}

#[test]
fn cassette_format_is_stable() {
    let entry = CassetteEntry::new(
        "scripted:s",
        &req("2 + 2?").with_temperature(0.5).with_sample_index(1),
        &ann_llm::ChatResponse::text("test-model", "4"),
    );
    insta::assert_snapshot!(entry.to_line());
}

#[tokio::test]
async fn a_malformed_cassette_line_names_file_and_line_and_imports_nothing() {
    let (dir, _path, cache) = temp_cache();
    record_varied(&cache).await;
    let good = dir.path().join("good.jsonl");
    cache.export_jsonl(&good).unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();

    let check = |name: &str, lines: &[String], bad_line: usize, needle: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let fresh = ResponseCache::open(&dir.path().join(format!("{name}.sqlite"))).unwrap();
        let err = fresh.import_jsonl(&path).unwrap_err();
        let CacheError::Cassette { path: p, line, message } = &err else { panic!("{err:?}") };
        assert_eq!((p.as_path(), *line), (path.as_path(), bad_line), "{err}");
        assert!(message.contains(needle), "{message}");
        assert!(err.to_string().starts_with(&format!("{}:{bad_line}: ", path.display())), "{err}");
        assert!(fresh.is_empty().unwrap(), "all or nothing");
    };

    let mut broken = lines.clone();
    broken[2] = "{\"key\": \"abc\", oops".into();
    check("syntax.jsonl", &broken, 3, "malformed entry");

    let mut edited = lines.clone();
    edited[4] = edited[4].replacen("answer to", "edited", 1).replacen("\"content\":\"", "\"content\":\"edited ", 1);
    check("edited.jsonl", &edited, 5, "does not match");

    let mut unknown = lines.clone();
    unknown[0] = unknown[0].replacen("{\"key\"", "{\"extra\":1,\"key\"", 1);
    check("unknown.jsonl", &unknown, 1, "unknown field");

    let mut duplicate = lines.clone();
    let other = CassetteEntry::parse_line(&lines[1]).unwrap();
    let mut conflicting = CassetteEntry::parse_line(&lines[0]).unwrap();
    conflicting.response = other.response;
    duplicate.push(conflicting.to_line());
    check("duplicate.jsonl", &duplicate, 8, "also on line 1");

    // Blank lines are fine.
    lines.insert(3, String::new());
    let blank = dir.path().join("blank.jsonl");
    std::fs::write(&blank, lines.join("\n")).unwrap();
    let fresh = ResponseCache::open(&dir.path().join("blank.sqlite")).unwrap();
    assert_eq!(fresh.import_jsonl(&blank).unwrap().added, 7);
}
