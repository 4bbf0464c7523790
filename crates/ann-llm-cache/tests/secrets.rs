//! The whole HTTP stack (OpenAI-compatible backend under the SQLite cache) never stores the API key.

use ann_llm::{ChatModel, ChatRequest, Message};
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_llm_openai::{ApiKey, OpenAiConfig, OpenAiModel, RetryPolicy};
use ann_test_support::server::{FakeServer, FakeServerConfig, Fault};

const CANARY: &str = "sk-canary-7f3a9c1e5d2b4806";

#[tokio::test]
async fn the_api_key_reaches_the_server_but_never_the_cache_file_or_cassette() {
    let server = FakeServer::start(
        FakeServerConfig::default().keeping_requests().with_script([Fault::Unauthorized, Fault::Status(400)]),
    )
    .await
    .unwrap();
    let mut config = OpenAiConfig::new(server.url(), "gpt-test");
    config.retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let backend = OpenAiModel::new(config, Some(ApiKey::new(CANARY))).unwrap();
    assert!(!backend.identity().contains(CANARY));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.sqlite");
    let model = CachedModel::new(backend, ResponseCache::open(&db).unwrap());
    let request = |text: &str| ChatRequest::new("gpt-test", vec![Message::user(text)]).with_max_tokens(16);

    // The two scripted faults (the 401 body echoes the key, as OpenAI's does): errors never show it.
    for text in ["first", "second"] {
        let err = model.complete(&request(text)).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains(CANARY), "{err:?}");
    }
    for text in ["first", "second", "third"] {
        model.complete(&request(text)).await.unwrap();
        assert!(model.complete(&request(text)).await.unwrap().cache_hit);
    }
    let seen = server.requests();
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter().all(|r| r.headers.get("authorization").is_some_and(|h| h == &format!("Bearer {CANARY}"))),
        "the key must reach the server, or this test proves nothing"
    );

    let cassette = dir.path().join("cassette.jsonl");
    assert_eq!(model.cache().export_jsonl(&cassette).unwrap(), 3);
    drop(model);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} contains the API key",
            path.display()
        );
    }
}
