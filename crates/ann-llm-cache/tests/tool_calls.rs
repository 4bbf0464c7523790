//! Tool-call responses in the cache: stored and replayed with their calls (also after a restart,
//! from SQLite), keyed on the offered tools.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ann_llm::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, Message, ToolCall, ToolChoice, ToolDefinition,
};
use ann_llm_cache::{CachedModel, ResponseCache};

/// Calls the first offered tool, counting the calls that reached it.
#[derive(Default)]
struct Caller {
    calls: AtomicU64,
}

#[async_trait::async_trait]
impl ChatModel for Caller {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut response = ChatResponse::text(&request.model, "");
        response.tool_calls = vec![ToolCall::new("call_0", &request.tools[0].name, r#"{"expression":"1/3"}"#)];
        response.finish_reason = FinishReason::ToolCalls;
        Ok(response)
    }
    fn identity(&self) -> String {
        "caller".into()
    }
}

fn tool(name: &str) -> ToolDefinition {
    ToolDefinition::new(name, "Computes.", serde_json::json!({"type": "object"}))
}

#[tokio::test]
async fn tool_calls_are_replayed_and_the_offered_tools_are_part_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("responses.sqlite");
    let inner = Arc::new(Caller::default());
    let request = ChatRequest::new("m", vec![Message::user("1/3?")]).with_tools(vec![tool("calculator")]);
    let first = {
        let model = CachedModel::new(inner.clone(), ResponseCache::open(&path).unwrap());
        let first = model.complete(&request).await.unwrap();
        let again = model.complete(&request).await.unwrap();
        assert!(again.cache_hit);
        assert_eq!(again.tool_calls, first.tool_calls);
        // Another tool set, or another choice, is another question.
        let other = model.complete(&request.clone().with_tools(vec![tool("python")])).await.unwrap();
        assert_eq!((other.cache_hit, other.tool_calls[0].name.as_str()), (false, "python"));
        let forced = request.clone().with_tool_choice(ToolChoice::Required);
        assert!(!model.complete(&forced).await.unwrap().cache_hit);
        first
    };
    assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    // After a restart the answer comes from SQLite, calls and finish reason intact.
    let model = CachedModel::new(inner.clone(), ResponseCache::open(&path).unwrap());
    let replay = model.complete(&request).await.unwrap();
    assert!(replay.cache_hit);
    assert_eq!((replay.tool_calls, replay.finish_reason), (first.tool_calls, FinishReason::ToolCalls));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
}
