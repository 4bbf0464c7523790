//! Agents with tools in the forward pass, over HTTP to the fake OpenAI-compatible server and with
//! the real sandbox: the model ↔ tool loop, its step limit, and every call and result in the trace.

use std::sync::Arc;

use ann_graph::{ForwardConfig, Network, RoutingMode, ValidationRules, forward};
use ann_llm::SharedModel;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_test_support::tool_calls::ToolReply;
use ann_tools::{PythonTool, PythonToolConfig, builtin_registry};

fn network(max_steps: u32, tools: &str) -> Network {
    let json = format!(
        r##"{{
  "version": 1,
  "task_description": "Compute the answer.",
  "layers": [{{
    "id": "compute",
    "subtask": "compute the answer",
    "agents": [{{"id": "coder", "role": "Programmer.", "prompt": "# {{task}}\n{{input}}", "temperature": 0.0,
                 "tools": [{tools}], "max_tool_steps": {max_steps}}}],
    "aggregators": ["single"],
    "default_aggregator": "single",
    "output_spec": "the answer"
  }}]
}}"##
    );
    let network: Network = serde_json::from_str(&json).unwrap();
    network
}

async fn setup(script: Vec<ToolReply>) -> (FakeServer, SharedModel, ForwardConfig) {
    let server =
        FakeServer::start(FakeServerConfig::default().keeping_requests().with_tool_script(script)).await.unwrap();
    let config = OpenAiConfig {
        base_urls: vec![server.url()],
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        ..OpenAiConfig::default()
    };
    let model: SharedModel = Arc::new(OpenAiModel::new(config, None).unwrap());
    let python = PythonTool::new(PythonToolConfig::default()).await.unwrap();
    let forward_config = ForwardConfig {
        routing: RoutingMode::Fixed,
        tools: Some(Arc::new(builtin_registry(Some(python)))),
        ..ForwardConfig::default()
    };
    (server, model, forward_config)
}

#[tokio::test]
async fn an_agent_runs_python_and_answers_from_its_output() {
    let (server, model, config) = setup(Vec::new()).await;
    let result =
        forward(&model, &network(3, r#""python", "calculator""#), "```python\nprint(6 * 7)\n```", None, &config)
            .await
            .unwrap();
    assert_eq!(result.output, "after tools: exit status 0\nstdout:\n42");
    let layer = &result.trace.layers[0];
    assert_eq!(layer.calls.len(), 2, "{:#?}", layer.calls);
    let first = &layer.calls[0];
    assert_eq!(first.tool_calls.len(), 1);
    assert_eq!(first.tool_calls[0].name, "python");
    assert_eq!(first.tool_results[0].content, "exit status 0\nstdout:\n42");
    assert!(!first.tool_results[0].is_error);
    let second = &layer.calls[1];
    assert_eq!(second.messages.last().unwrap().role, ann_llm::Role::Tool);
    assert_eq!(second.output.as_deref(), Some(result.output.as_str()));
    // Only the registered tools were offered, in the agent's order.
    let offered: Vec<_> = server.requests()[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(offered, ["python", "calculator"]);
    let trace_json = serde_json::to_string(&result.trace).unwrap();
    assert!(trace_json.contains("\"tool_results\"") && trace_json.contains("\"tool_calls\""));
}

#[tokio::test]
async fn a_malformed_call_is_data_and_the_step_limit_makes_the_agent_answer() {
    let (server, model, config) = setup(vec![ToolReply::BadArguments]).await;
    let result = forward(&model, &network(1, r#""python""#), "print(1)", None, &config).await.unwrap();
    let calls = &result.trace.layers[0].calls;
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls[0].tool_results[0].is_error);
    assert!(calls[0].tool_results[0].content.contains("not valid JSON"), "{}", calls[0].tool_results[0].content);
    // The last turn offers the tools with tool_choice none: the model answers in text.
    assert_eq!(server.requests()[1].body["tool_choice"], "none");
    assert!(result.output.starts_with("echo: "), "{}", result.output);
    assert!(calls[1].tool_calls.is_empty());
}

#[tokio::test]
async fn the_format_gate_refuses_unknown_tools_and_step_limits_before_any_call() {
    let (server, model, config) = setup(Vec::new()).await;
    let shell = network(3, r#""python", "shell""#);
    let err = forward(&model, &shell, "x", None, &config).await.unwrap_err();
    assert!(err.to_string().contains("tool `shell` is not registered (known: calculator, python)"), "{err}");
    let unbounded = network(99, r#""python""#);
    let violations = unbounded.validate(&ValidationRules::default()).unwrap_err();
    assert_eq!(violations[0].rule(), "tool_steps");
    assert_eq!(violations[0].agent(), Some("coder"));
    // Without a registry an agent that lists tools is refused too: it would silently only talk.
    let no_tools = ForwardConfig { tools: None, ..config };
    let err = forward(&model, &network(3, r#""python""#), "x", None, &no_tools).await.unwrap_err();
    assert!(err.to_string().contains("tool `python` is not registered"), "{err}");
    assert_eq!(server.request_count(), 0);
}
