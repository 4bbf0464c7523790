//! The tools of a run: the registry the forward pass gets when a network's agents list tools.
//!
//! No configuration: the networks say which tools they use. `calculator` is always there once any
//! agent lists a tool; `python` (a sandbox with bubblewrap, [`PythonToolConfig::default`]'s limits)
//! is started only when an agent lists it, so a run without it needs no bubblewrap.

use std::collections::BTreeSet;
use std::sync::Arc;

use ann_graph::{AggregatorName, Network};
use ann_tools::{PythonTool, PythonToolConfig, ToolRegistry, builtin_registry};
use anyhow::Context as _;

/// The tool names a network of a run may list (the built-in tools).
pub fn builtin_names() -> Vec<String> {
    ann_tools::BUILTIN_TOOLS.iter().map(|t| t.to_string()).collect()
}

/// The tool names the agents of `networks` list, and `python` where a layer offers
/// `tool_pipeline` (which runs its plan's program with it).
pub fn listed_tools<'a>(networks: impl IntoIterator<Item = &'a Network>) -> BTreeSet<String> {
    let layers: Vec<_> = networks.into_iter().flat_map(|n| n.layers.iter()).collect();
    let pipeline = layers.iter().any(|l| l.aggregators.contains(&AggregatorName::ToolPipeline));
    layers
        .iter()
        .flat_map(|l| l.agents.iter())
        .flat_map(|a| a.tools.iter().cloned())
        .chain(pipeline.then(|| ann_graph::PIPELINE_TOOL.to_string()))
        .collect()
}

/// The registry for `networks` (`None` when no agent lists a tool). A tool name that is not built
/// in is left to the format gate, which names it.
pub async fn registry_for<'a>(
    networks: impl IntoIterator<Item = &'a Network>,
) -> anyhow::Result<Option<Arc<ToolRegistry>>> {
    let listed = listed_tools(networks);
    if listed.is_empty() {
        return Ok(None);
    }
    let python = if listed.contains("python") {
        Some(PythonTool::new(PythonToolConfig::default()).await.context("starting the python tool's sandbox")?)
    } else {
        None
    };
    Ok(Some(Arc::new(builtin_registry(python))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_pipeline_layer_lists_python() {
        let mut network = ann_graph::example_network();
        assert!(listed_tools([&network]).is_empty());
        network.layers[1].aggregators.push(AggregatorName::ToolPipeline);
        assert_eq!(listed_tools([&network]).into_iter().collect::<Vec<_>>(), ["python"]);
        network.layers[0].agents[0].tools = vec!["calculator".into()];
        assert_eq!(listed_tools([&network]).into_iter().collect::<Vec<_>>(), ["calculator", "python"]);
    }
}
