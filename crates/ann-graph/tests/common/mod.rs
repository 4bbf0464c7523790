//! Shared by the hostile-tool tests: one agent that may call `python`, the fake OpenAI-compatible
//! server (which puts the fenced program of the input into its tool call), a model behind a real
//! SQLite response cache, and the python tool in the real sandbox with short limits.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ann_graph::{CallRecord, ForwardConfig, ForwardResult, Network, RoutingMode, forward};
use ann_llm::SharedModel;
use ann_llm_cache::{CachedModel, ResponseCache};
use ann_llm_openai::{OpenAiConfig, OpenAiModel};
use ann_sandbox::SandboxConfig;
use ann_test_support::server::{FakeServer, FakeServerConfig};
use ann_tools::{PythonTool, PythonToolConfig, builtin_registry};

/// The python tool's wall-clock limit in these tests.
pub const TIMEOUT_SECS: u64 = 3;

/// One layer, one agent with `python` and two tool steps.
pub fn network() -> Network {
    serde_json::from_str(
        r##"{
  "version": 1,
  "task_description": "Answer with the help of Python.",
  "layers": [{
    "id": "compute",
    "subtask": "run the program and report",
    "agents": [{"id": "coder", "role": "Programmer.", "prompt": "# {task}\n{input}", "temperature": 0.0,
                "tools": ["python"], "max_tool_steps": 2}],
    "aggregators": ["single"],
    "default_aggregator": "single",
    "output_spec": "the answer"
  }]
}"##,
    )
    .unwrap()
}

pub struct Setup {
    pub server: FakeServer,
    pub model: SharedModel,
    pub config: ForwardConfig,
    pub cache: ResponseCache,
    _cache_dir: tempfile::TempDir,
}

impl Setup {
    /// The model's API key is read from `api_key_env` (a variable that may be unset).
    pub async fn new(api_key_env: &str) -> Self {
        let server = FakeServer::start(FakeServerConfig::default().keeping_requests()).await.unwrap();
        let openai = OpenAiModel::from_env(OpenAiConfig {
            base_urls: vec![server.url()],
            model: "fake-model".into(),
            api_key_env: api_key_env.into(),
            ..OpenAiConfig::default()
        })
        .unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open(&cache_dir.path().join("responses.sqlite")).unwrap();
        let model: SharedModel = Arc::new(CachedModel::new(openai, cache.clone()));
        let python = PythonTool::new(PythonToolConfig {
            sandbox: SandboxConfig {
                timeout: Duration::from_secs(TIMEOUT_SECS),
                cpu_seconds: TIMEOUT_SECS,
                scratch_bytes: 16 << 20,
                max_output_bytes: 4 << 10,
                ..PythonToolConfig::default().sandbox
            },
            ..PythonToolConfig::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let config = ForwardConfig {
            routing: RoutingMode::Fixed,
            tools: Some(Arc::new(builtin_registry(Some(python)))),
            ..ForwardConfig::default()
        };
        Self { server, model, config, cache, _cache_dir: cache_dir }
    }

    /// One forward pass whose agent is asked to run `code`.
    pub async fn run(&self, code: &str) -> ForwardResult {
        let input = format!("```python\n{code}\n```");
        forward(&self.model, &network(), &input, None, &self.config).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The run went on after the hostile call: the program's result went back to the model as an
    /// error result, the model answered from it, and a harmless program still runs afterwards.
    pub async fn assert_contained(&self, result: &ForwardResult, expected: &str) -> String {
        let calls: &[CallRecord] = &result.trace.layers[0].calls;
        assert_eq!(calls.len(), 2, "{calls:#?}");
        let outcome = &calls[0].tool_results[0];
        assert!(outcome.is_error, "{outcome:?}");
        assert!(outcome.content.contains(expected), "expected {expected:?} in {}", outcome.content);
        assert_eq!(calls[1].messages.last().unwrap().role, ann_llm::Role::Tool);
        assert!(result.output.starts_with("after tools: error from tool python"), "{}", result.output);
        let after = self.run("print(6 * 7)").await;
        assert_eq!(after.output, "after tools: exit status 0\nstdout:\n42");
        outcome.content.clone()
    }
}
