//! Tool calls through the OpenAI-compatible backend and the fake server on 127.0.0.1: offered tools
//! go out in OpenAI's shape, calls come back parsed, results go back in, malformed calls are data.

use ann_llm::{ChatModel, ChatRequest, FinishReason, Message, Role, ToolChoice, ToolDefinition};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_test_support::tool_calls::ToolReply;

fn client(server: &FakeServer) -> OpenAiModel {
    let config = OpenAiConfig {
        base_urls: vec![server.url()],
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        ..OpenAiConfig::default()
    };
    OpenAiModel::new(config, None).expect("valid config")
}

fn python_tool() -> ToolDefinition {
    ToolDefinition::new(
        "python",
        "Runs Python code and returns its output.",
        serde_json::json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}),
    )
}

#[tokio::test]
async fn a_tool_call_round_trip() {
    let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
    let model = client(&server);
    let request = ChatRequest::new("m", vec![Message::user("print(6 * 7)")]).with_tools(vec![python_tool()]);
    let asked = model.complete(&request).await.unwrap();
    assert_eq!(asked.finish_reason, FinishReason::ToolCalls);
    assert_eq!(asked.tool_calls.len(), 1);
    let call = &asked.tool_calls[0];
    assert_eq!((call.id.as_str(), call.name.as_str()), ("call_0", "python"));
    assert_eq!(call.parsed_arguments().unwrap()["code"], "print(6 * 7)");
    // The assistant's turn and the result go back; the server sees OpenAI's shapes and answers in text.
    let mut follow = request.clone();
    follow.messages.push(asked.message());
    follow.messages.push(Message::tool_result(&call.id, "42\n"));
    let answer = model.complete(&follow).await.unwrap();
    assert_eq!((answer.text.as_str(), answer.finish_reason.clone()), ("after tools: 42\n", FinishReason::Stop));
    assert!(answer.tool_calls.is_empty());
    let sent = &server.requests()[1].body;
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "python");
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["messages"][1]["tool_calls"][0]["function"]["name"], "python");
    assert_eq!(sent["messages"][1]["content"], serde_json::Value::Null);
    assert_eq!(sent["messages"][2], serde_json::json!({"role": "tool", "content": "42\n", "tool_call_id": "call_0"}));
    assert_eq!(follow.messages[2].role, Role::Tool);
    // A request without tools is sent exactly as before tools existed.
    model.complete(&ChatRequest::new("m", vec![Message::user("hi")])).await.unwrap();
    assert_eq!(server.requests()[2].raw_body, r#"{"model":"fake-model","messages":[{"role":"user","content":"hi"}]}"#);
}

#[tokio::test]
async fn tool_choice_and_malformed_calls_are_data() {
    let config = FakeServerConfig::default().keeping_requests().with_tool_script([
        ToolReply::BadArguments,
        ToolReply::UnknownTool,
        ToolReply::NotAnObject,
        ToolReply::Text,
    ]);
    let server = FakeServer::start(config).await.unwrap();
    let model = client(&server);
    let calculator = ToolDefinition::new(
        "calculator",
        "Exact arithmetic.",
        serde_json::json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
    );
    let request = ChatRequest::new("m", vec![Message::user("1/3 + 1/6")]).with_tools(vec![python_tool(), calculator]);
    let bad = model.complete(&request).await.unwrap();
    assert!(bad.tool_calls[0].parsed_arguments().unwrap_err().contains("not valid JSON"));
    let unknown = model.complete(&request).await.unwrap();
    assert_eq!(unknown.tool_calls[0].name, "no_such_tool");
    let not_object = model.complete(&request).await.unwrap();
    assert!(not_object.tool_calls[0].parsed_arguments().unwrap_err().contains("not a JSON object"));
    let text = model.complete(&request).await.unwrap();
    assert!(text.tool_calls.is_empty() && text.text.starts_with("echo: "), "{text:?}");
    // After the script: a call of the tool the choice names.
    let named = model.complete(&request.clone().with_tool_choice(ToolChoice::Tool("calculator".into()))).await.unwrap();
    assert_eq!(named.tool_calls[0].name, "calculator");
    assert_eq!(named.tool_calls[0].parsed_arguments().unwrap()["expression"], "1/3 + 1/6");
    assert_eq!(server.requests()[4].body["tool_choice"]["function"]["name"], "calculator");
    let none = model.complete(&request.with_tool_choice(ToolChoice::None)).await.unwrap();
    assert!(none.tool_calls.is_empty());
}
