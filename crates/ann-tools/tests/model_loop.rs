//! A model ↔ tool exchange over HTTP: the fake OpenAI-compatible server asks for the python tool,
//! the registry runs it in the real sandbox, the result goes back and the model answers; a
//! malformed call gets an error result and the exchange goes on.

use ann_llm::{ChatModel, ChatRequest, FinishReason, Message};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_test_support::tool_calls::ToolReply;
use ann_tools::{PythonTool, PythonToolConfig, ToolContext, builtin_registry};

#[tokio::test]
async fn the_fake_model_calls_python_and_reads_its_output() {
    let server =
        FakeServer::start(FakeServerConfig::default().keeping_requests().with_tool_script([ToolReply::BadArguments]))
            .await
            .unwrap();
    let config = OpenAiConfig {
        base_urls: vec![server.url()],
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        ..OpenAiConfig::default()
    };
    let model = OpenAiModel::new(config, None).unwrap();
    let registry = builtin_registry(Some(PythonTool::new(PythonToolConfig::default()).await.unwrap()));
    let tools = registry.definitions(Some(&["python".to_string()])).unwrap();
    // The fake server writes the last user message into the `code` argument.
    let mut request = ChatRequest::new("m", vec![Message::user("print(6 * 7)")]).with_tools(tools);
    let mut results = Vec::new();
    for _turn in 0..4 {
        let response = model.complete(&request).await.unwrap();
        request.messages.push(response.message());
        if response.tool_calls.is_empty() {
            break;
        }
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        for call in &response.tool_calls {
            let outcome = registry.call(call, &ToolContext::default()).await;
            request.messages.push(outcome.message());
            results.push(outcome);
        }
        // The user asks again after the error, as an agent's loop would let the model retry.
        if results.last().is_some_and(|o| o.is_error) {
            request.messages.push(Message::user("print(6 * 7)"));
        }
    }
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].is_error && results[0].content.contains("not valid JSON"), "{:?}", results[0]);
    assert_eq!((results[1].content.as_str(), results[1].is_error), ("exit status 0\nstdout:\n42", false));
    let last = request.messages.last().unwrap();
    assert_eq!(last.content, "after tools: exit status 0\nstdout:\n42");
    // What went over the wire: the tool results in OpenAI's shape.
    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[2]["messages"].as_array().unwrap().last().unwrap()["role"], "tool");
    assert_eq!(bodies[2]["messages"].as_array().unwrap().last().unwrap()["content"], "exit status 0\nstdout:\n42");
}
