//! The `tool_pipeline` aggregator over HTTP to the fake OpenAI-compatible server, with the real
//! sandbox: the planner's program runs with the `python` tool, the call and its result are in the
//! trace, and the answering agent answers from the program's output; a failing program is data it
//! reads; without a registered `python` tool the format gate refuses the layer before any call.

use std::sync::Arc;

use ann_graph::{AggregatorName, ForwardConfig, Network, RoutingMode, ValidationRules, forward};
use ann_llm::SharedModel;
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_tools::{PythonTool, PythonToolConfig, builtin_registry};
use serde_json::Value;

fn network() -> Network {
    serde_json::from_str(
        r##"{
  "version": 1,
  "task_description": "Compute the answer.",
  "layers": [{
    "id": "compute",
    "subtask": "compute the answer with a program",
    "agents": [
      {"id": "planner", "role": "Plans and programs.", "prompt": "# {task}\n{input}", "temperature": 0.0},
      {"id": "answerer", "role": "Answers from the results.", "prompt": "# {task}\n{input}", "temperature": 0.0}
    ],
    "aggregators": ["tool_pipeline"],
    "default_aggregator": "tool_pipeline",
    "output_spec": "the answer"
  }]
}"##,
    )
    .unwrap()
}

/// The planner writes the program the input names after `program:`; the answerer reports the
/// lines of the result it was shown.
fn reply(body: &Value) -> String {
    let last = body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    if last.contains("Plan how to solve this") {
        let program = last.split("program: ").nth(1).unwrap().lines().next().unwrap();
        format!("Plan: compute it.\n```python\n{program}\n```")
    } else if let Some(shown) = last.split("\n\nRunning the program ").nth(1) {
        format!("answer from {}", shown.split("\n\nUse what").next().unwrap().replace('\n', " | "))
    } else {
        "unexpected request".into()
    }
}

async fn setup(with_python: bool) -> (FakeServer, SharedModel, ForwardConfig) {
    let server = FakeServer::start(FakeServerConfig::default().keeping_requests().with_reply(reply)).await.unwrap();
    let config = OpenAiConfig {
        base_urls: vec![server.url()],
        model: "fake-model".into(),
        api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
        ..OpenAiConfig::default()
    };
    let model: SharedModel = Arc::new(OpenAiModel::new(config, None).unwrap());
    let python = if with_python { Some(PythonTool::new(PythonToolConfig::default()).await.unwrap()) } else { None };
    let config = ForwardConfig {
        routing: RoutingMode::Fixed,
        tools: Some(Arc::new(builtin_registry(python))),
        ..ForwardConfig::default()
    };
    (server, model, config)
}

#[tokio::test]
async fn the_plans_program_runs_and_the_answer_comes_from_its_output() {
    let (server, model, config) = setup(true).await;
    let result = forward(&model, &network(), "program: print(6 * 7)", None, &config).await.unwrap();
    assert_eq!(result.output, "answer from gave: | exit status 0 | stdout: | 42");
    let layer = &result.trace.layers[0];
    assert_eq!(layer.routing.aggregator, AggregatorName::ToolPipeline);
    assert_eq!(layer.calls.len(), 2, "{:#?}", layer.calls);
    // The plan's call carries the tool call the pipeline made and its result.
    let plan = &layer.calls[0];
    assert_eq!(plan.agent.as_deref(), Some("planner"));
    assert_eq!(plan.tool_calls.len(), 1);
    assert_eq!(plan.tool_calls[0].name, "python");
    assert_eq!(plan.tool_calls[0].id, "pipeline_compute");
    let arguments: Value = serde_json::from_str(&plan.tool_calls[0].arguments).unwrap();
    assert_eq!(arguments["code"], "print(6 * 7)\n");
    assert_eq!(plan.tool_results[0].content, "exit status 0\nstdout:\n42");
    assert!(!plan.tool_results[0].is_error);
    let answer = &layer.calls[1];
    assert_eq!((answer.agent.as_deref(), answer.round), (Some("answerer"), 1));
    let trace_json = serde_json::to_string(&result.trace).unwrap();
    assert!(trace_json.contains("\"tool_calls\"") && trace_json.contains("pipeline_compute"), "{trace_json}");
    // The model was offered no tools: the pipeline ran the program itself.
    assert!(server.requests().iter().all(|r| r.body.get("tools").is_none()));
}

#[tokio::test]
async fn a_failing_program_is_data_the_answerer_reads() {
    let (_server, model, config) = setup(true).await;
    let result = forward(&model, &network(), "program: print(1 / 0)", None, &config).await.unwrap();
    assert!(
        result.output.starts_with("answer from failed: | error from tool python: exit status 1 | stderr: |"),
        "{}",
        result.output
    );
    assert!(result.output.contains("ZeroDivisionError"), "{}", result.output);
    assert!(result.trace.layers[0].calls[0].tool_results[0].is_error);
}

#[tokio::test]
async fn without_a_python_tool_the_format_gate_refuses_the_layer() {
    let (server, model, config) = setup(false).await;
    let err = forward(&model, &network(), "program: print(1)", None, &config).await.unwrap_err();
    assert!(
        err.to_string().contains("`tool_pipeline` runs its plan's program with the `python` tool, which is not registered (known: calculator)"),
        "{err}"
    );
    assert_eq!(server.request_count(), 0);
    // Rules that name no tools check nothing about them (a network file checked on its own).
    assert!(network().validate(&ValidationRules::default()).is_ok());
}
