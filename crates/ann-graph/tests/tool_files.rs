//! An input's files reach its agents' tool calls (`forward_inputs`): each input's calls see its
//! own files, a batch without files gives none. Over HTTP to the fake server, with a user tool
//! that reports the files of its context.

use std::path::PathBuf;
use std::sync::Arc;

use ann_graph::{ForwardConfig, ForwardInput, Network, RoutingMode, forward_batch, forward_inputs};
use ann_llm::{SharedModel, ToolDefinition};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_tools::{Tool, ToolContext, ToolError, ToolRegistry};
use async_trait::async_trait;
use serde_json::{Map, Value, json};

/// Answers with the names of its context's files, one a line.
struct ListFiles;

#[async_trait]
impl Tool for ListFiles {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition::new(
            "list_files",
            "Lists the files of the example.",
            json!({"type": "object", "properties": {}}),
        )
    }

    async fn call(&self, _arguments: &Map<String, Value>, context: &ToolContext) -> Result<String, ToolError> {
        let names: Vec<String> =
            context.files.iter().map(|f| f.file_name().unwrap_or_default().to_string_lossy().to_string()).collect();
        Ok(format!("files: [{}]", names.join(", ")))
    }
}

fn network() -> Network {
    serde_json::from_value(json!({
        "version": 1,
        "task_description": "Name the files.",
        "layers": [{
            "id": "look",
            "subtask": "name the files",
            "agents": [{"id": "a1", "role": "Clerk.", "prompt": "{task}\n{input}", "temperature": 0.0,
                        "tools": ["list_files"], "max_tool_steps": 1}],
            "aggregators": ["single"],
            "default_aggregator": "single",
            "output_spec": "the file names"
        }]
    }))
    .unwrap()
}

#[tokio::test]
async fn each_input_s_tool_calls_see_its_own_files() {
    let server = FakeServer::start(FakeServerConfig::default()).await.unwrap();
    let model: SharedModel = Arc::new(
        OpenAiModel::new(
            OpenAiConfig {
                base_urls: vec![server.url()],
                model: "fake-model".into(),
                api_key_env: "ANN_TEST_NO_SUCH_VARIABLE".into(),
                ..OpenAiConfig::default()
            },
            None,
        )
        .unwrap(),
    );
    let mut registry = ToolRegistry::new();
    registry.register(Arc::new(ListFiles)).unwrap();
    let config =
        ForwardConfig { routing: RoutingMode::Fixed, tools: Some(Arc::new(registry)), ..ForwardConfig::default() };
    let sales = [PathBuf::from("/data/sales.csv")];
    let people = [PathBuf::from("/data/people.csv"), PathBuf::from("/data/cities.csv")];
    let inputs = [ForwardInput { text: "first", files: &sales }, ForwardInput { text: "second", files: &people }];
    let results = forward_inputs(&model, &network(), &inputs, None, &config).await.unwrap();
    let seen: Vec<String> =
        results.iter().map(|r| r.as_ref().unwrap().trace.layers[0].calls[0].tool_results[0].content.clone()).collect();
    assert_eq!(seen, ["files: [sales.csv]", "files: [people.csv, cities.csv]"]);
    // The model read that result back in its next turn.
    let answer = &results[1].as_ref().unwrap().trace.layers[0].calls[1];
    let last = answer.messages.last().unwrap();
    assert_eq!((last.role, last.content.as_str()), (ann_llm::Role::Tool, "files: [people.csv, cities.csv]"));

    let plain = forward_batch(&model, &network(), &["third".to_string()], None, &config).await.unwrap();
    assert_eq!(plain[0].as_ref().unwrap().trace.layers[0].calls[0].tool_results[0].content, "files: []");
    server.shutdown().await;
}
