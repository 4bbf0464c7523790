//! The `python` tool: runs a program in the sandbox, with the example's files read-only in its
//! working directory, and returns its exit status, stdout and stderr to the model.

use std::sync::Arc;
use std::time::Duration;

use ann_llm::ToolDefinition;
use ann_sandbox::{BubblewrapMode, InputFile, Sandbox, SandboxConfig, SandboxError};
use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::prompts;
use crate::tool::{Tool, ToolContext, ToolError};

/// Limits of the `python` tool.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonToolConfig {
    /// The sandbox's settings. The default: 10 s wall clock, 10 s CPU, 1 GiB of address space,
    /// 16 KiB kept per stream, bubblewrap required.
    pub sandbox: SandboxConfig,
    /// Refuse to start unless bubblewrap cuts the network (it alone does: a leased uid does not).
    /// On by default.
    pub require_no_network: bool,
}

impl Default for PythonToolConfig {
    fn default() -> Self {
        Self {
            sandbox: SandboxConfig {
                timeout: Duration::from_secs(10),
                cpu_seconds: 10,
                max_output_bytes: 16 << 10,
                bubblewrap: BubblewrapMode::Required,
                ..SandboxConfig::default()
            },
            require_no_network: true,
        }
    }
}

/// Why the `python` tool cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PythonToolError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(
        "the python tool needs bubblewrap to cut the network, and the sandbox runs without it \
         ({0}); install bubblewrap or set `require_no_network = false`"
    )]
    NetworkNotCut(String),
}

/// Runs Python programs in a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct PythonTool {
    sandbox: Arc<Sandbox>,
}

impl PythonTool {
    /// Start a sandbox with `config`.
    pub async fn new(config: PythonToolConfig) -> Result<Self, PythonToolError> {
        let sandbox = Sandbox::new(config.sandbox).await?;
        Self::with_sandbox(Arc::new(sandbox), config.require_no_network)
    }

    /// Run programs in an existing sandbox.
    pub fn with_sandbox(sandbox: Arc<Sandbox>, require_no_network: bool) -> Result<Self, PythonToolError> {
        if require_no_network && !sandbox.uses_bubblewrap() {
            return Err(PythonToolError::NetworkNotCut(sandbox.describe()));
        }
        Ok(Self { sandbox })
    }

    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }
}

#[async_trait]
impl Tool for PythonTool {
    fn definition(&self) -> ToolDefinition {
        let limits = self.sandbox.config();
        ToolDefinition::new(
            "python",
            prompts::python_description(limits.timeout.as_secs(), limits.max_output_bytes),
            json!({
                "type": "object",
                "properties": {"code": {"type": "string", "description": "a complete Python 3 program"}},
                "required": ["code"],
                "additionalProperties": false
            }),
        )
    }

    async fn call(&self, arguments: &Map<String, Value>, context: &ToolContext) -> Result<String, ToolError> {
        let code = arguments["code"].as_str().unwrap_or_default();
        let files: Vec<InputFile> = context.files.iter().map(InputFile::from_path).collect();
        match self.sandbox.run_with_files(code, &files).await {
            Ok(run) if run.success() => Ok(prompts::python_result(&run, self.sandbox.config())),
            Ok(run) => Err(ToolError::Failed(prompts::python_result(&run, self.sandbox.config()))),
            Err(e @ SandboxError::InputFile(_)) => Err(ToolError::Unavailable(e.to_string())),
            Err(e) => Err(ToolError::Unavailable(format!("the sandbox could not run the program: {e}"))),
        }
    }
}
