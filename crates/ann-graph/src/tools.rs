//! An agent with tools: the bounded model ↔ tool loop of one agent call.
//!
//! The agent's first request offers the tools it lists (those the forward configuration's
//! registry holds; others are noted and not offered). While the model answers with tool calls and
//! steps remain, each call runs through the registry (an unknown tool, malformed arguments or a
//! failing tool is an error result the model reads, never a failed pass; the input's files are the
//! calls' [`ann_tools::ToolContext`]), the assistant turn and
//! the results join the conversation, and the model is asked again. After `max_tool_steps` turns
//! with calls, the last request offers the tools with `tool_choice = none`, so the agent answers.
//! Every model call is a traced call (`CallRecord::tool_calls`, `tool_results`); its answer is
//! the agent's output as a plain agent's would be.

use ann_llm::{ResponseFormat, ToolCall, ToolChoice};
use ann_tools::{ToolOutcome, ToolRegistry};

use crate::GraphError;
use crate::call::{CallSpec, LayerContext, ToolOffer};
use crate::prompts::forward as prompts;
use crate::trace::{CallKind, ToolResult};

/// Tool-calling turns an agent gets when it sets no `max_tool_steps`.
pub const DEFAULT_TOOL_STEPS: u32 = 4;
/// The most tool-calling turns any agent gets.
pub const MAX_TOOL_STEPS: u32 = 16;

impl LayerContext<'_> {
    /// Agent `index` answers with its tools (see the module documentation).
    pub(crate) async fn tool_agent_call(
        &self,
        registry: &ToolRegistry,
        index: usize,
        kind: CallKind,
        round: u32,
        peers: Option<String>,
    ) -> Result<Option<String>, GraphError> {
        let layer = self.layer();
        let agent = &layer.agents[index];
        let mut offered = Vec::new();
        for name in &agent.tools {
            match registry.get(name) {
                Some(tool) => offered.push(tool.definition()),
                None => self.note(format!("agent `{}` lists the tool `{name}`, which is not registered", agent.id)),
            }
        }
        let mut messages = prompts::agent_messages(layer, agent, self.task(), self.input(), peers.as_deref());
        let steps = agent.max_tool_steps.unwrap_or(DEFAULT_TOOL_STEPS).min(MAX_TOOL_STEPS);
        let mut step = 0;
        loop {
            let last = step >= steps || offered.is_empty();
            let offer = (!offered.is_empty()).then(|| ToolOffer {
                tools: offered.clone(),
                choice: if last { ToolChoice::None } else { ToolChoice::Auto },
            });
            let spec = CallSpec {
                kind,
                agent: Some(index),
                round,
                messages: messages.clone(),
                temperature: agent.temperature,
                response_format: ResponseFormat::Text,
            };
            let Some((response, seq)) = self.call_with(spec, offer).await? else { return Ok(None) };
            if response.tool_calls.is_empty() {
                return Ok(Some(response.text));
            }
            if last {
                self.note(format!(
                    "agent `{}` asked for tools after its {steps} tool steps; its text is its answer",
                    agent.id
                ));
                return Ok(Some(response.text));
            }
            messages.push(response.message());
            let mut results = Vec::with_capacity(response.tool_calls.len());
            for call in &response.tool_calls {
                let outcome = registry.call(call, &self.tool_context()).await;
                messages.push(outcome.message());
                results.push(ToolResult {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    content: outcome.content,
                    is_error: outcome.is_error,
                });
            }
            self.record_tool_results(seq, results);
            step += 1;
        }
    }
}

impl LayerContext<'_> {
    /// Run `code` with the registry's tool `tool` on behalf of agent `index` (the `tool_pipeline`
    /// aggregator's tool step): the call (id `pipeline_<layer>`) and its result are recorded on the
    /// agent's latest traced call. `None` when no such tool is registered.
    pub(crate) async fn run_plan_program(&self, index: usize, tool: &str, code: &str) -> Option<ToolOutcome> {
        let registry = self.tools()?;
        registry.get(tool)?;
        let arguments = serde_json::json!({ "code": code }).to_string();
        let call = ToolCall::new(format!("pipeline_{}", self.layer().id), tool, arguments);
        let outcome = registry.call(&call, &self.tool_context()).await;
        let result = ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            content: outcome.content.clone(),
            is_error: outcome.is_error,
        };
        self.attach_tool_call(index, call, result);
        Some(outcome)
    }
}
