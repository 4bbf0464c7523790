//! `ann inspect PATH`: a network (a network file, a `checkpoint.json` or a run directory) as a tree
//! of layers, teams, agents, aggregators and routing candidates; or a trace file
//! (`traces/*.jsonl`) walked example by example: input, each layer's chosen aggregator and why,
//! the agents' outputs, the final answer, score and feedback.

use std::path::{Path, PathBuf};

use ann_experiment::reexports::{Checkpoint, Network};
use ann_experiment::report::lineage;
use ann_experiment::report::view::{ExampleTrace, parse_traces};
use anyhow::Context;
use clap::Args;
use serde::Serialize;

/// `ann inspect`'s arguments.
#[derive(Args)]
pub struct InspectArgs {
    /// A network file (JSON or YAML), a `checkpoint.json`, a run directory (its trained network,
    /// else its checkpoint's, else its starting one) or a trace file (`traces/<name>.jsonl`).
    pub path: PathBuf,
    /// Only the example with this id (trace files).
    #[arg(long, value_name = "ID")]
    pub example: Option<String>,
    /// Print whole texts (prompts, inputs, outputs) instead of their first line.
    #[arg(long)]
    pub full: bool,
}

/// What `ann inspect --json` prints: `{"kind": "network", "network": ...}`,
/// `{"kind": "checkpoint", "checkpoint": {...}, "network": ...}` or `{"kind": "trace", "examples": [...]}`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Inspected {
    Network { path: PathBuf, network: Network },
    Checkpoint { path: PathBuf, checkpoint: CheckpointSummary, network: Network },
    Trace { path: PathBuf, examples: Vec<ExampleView> },
}

/// Where training stood at a checkpoint.
#[derive(Serialize)]
struct CheckpointSummary {
    epoch: usize,
    next_batch: usize,
    val_initial: f64,
    val_current: f64,
    val_best: f64,
    steps: u64,
    accepted: u64,
    rejected: u64,
    calls: u64,
    dollars: f64,
    /// `null` while training goes on; else why it stopped.
    stopped: Option<String>,
}

/// One example of a trace file.
#[derive(Serialize)]
struct ExampleView {
    id: String,
    /// The trace file's name (`test-trained`, `e0-b1`, ...).
    set: String,
    score: f64,
    passed: bool,
    excluded: bool,
    feedback: String,
    input: Option<String>,
    layers: Vec<LayerView>,
    output: Option<String>,
}

#[derive(Serialize)]
struct LayerView {
    layer: String,
    aggregator: String,
    /// How it was chosen: `model`, `fallback`, `fixed`, `single_candidate`.
    source: String,
    reason: String,
    fallback: Option<String>,
    agents: Vec<AgentOutput>,
    error: Option<String>,
    output: String,
}

#[derive(Serialize)]
struct AgentOutput {
    agent: String,
    /// The call's kind (`agent`, `synthesis`, `judge`, ...) and round.
    kind: String,
    round: u32,
    output: Option<String>,
    error: Option<String>,
    cache_hit: bool,
}

fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn example_view(e: &ExampleTrace) -> ExampleView {
    let trace = e.trace.as_ref();
    ExampleView {
        id: e.id.clone(),
        set: e.batch.clone(),
        score: e.score,
        passed: e.passed,
        excluded: e.excluded,
        feedback: e.feedback.clone(),
        input: trace.map(|t| t.input.clone()),
        output: trace.map(|t| t.output.clone()),
        layers: trace
            .map(|t| {
                t.layers
                    .iter()
                    .map(|l| LayerView {
                        layer: l.layer.clone(),
                        aggregator: l.routing.aggregator.to_string(),
                        source: word(&l.routing.source),
                        reason: l.routing.reason.clone(),
                        fallback: l.routing.fallback.clone(),
                        agents: l
                            .calls
                            .iter()
                            .filter(|c| word(&c.kind) != "routing")
                            .map(|c| AgentOutput {
                                agent: c.agent.clone().unwrap_or_else(|| "-".into()),
                                kind: word(&c.kind),
                                round: c.round,
                                output: c.output.clone(),
                                error: c.error.clone(),
                                cache_hit: c.cache_hit,
                            })
                            .collect(),
                        error: l.error.clone(),
                        output: l.output.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn read(path: &Path, example: Option<&str>) -> anyhow::Result<Inspected> {
    let is_trace = path.is_file() && path.extension().is_some_and(|x| x == "jsonl");
    if is_trace {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let set = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let examples = parse_traces(&set, &text).with_context(|| format!("reading {}", path.display()))?;
        let examples: Vec<ExampleView> =
            examples.iter().filter(|e| example.is_none_or(|id| e.id == id)).map(example_view).collect();
        if let (Some(id), true) = (example, examples.is_empty()) {
            anyhow::bail!("{} has no example `{id}`", path.display());
        }
        return Ok(Inspected::Trace { path: path.to_path_buf(), examples });
    }
    if path.is_file() && path.file_name().is_some_and(|n| n == "checkpoint.json") {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let c: Checkpoint = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let checkpoint = CheckpointSummary {
            epoch: c.epoch,
            next_batch: c.next_batch,
            val_initial: c.val_initial,
            val_current: c.val_current,
            val_best: c.val_best,
            steps: c.optimizer.steps,
            accepted: c.optimizer.accepted,
            rejected: c.optimizer.rejected,
            calls: c.cost.calls,
            dollars: c.cost.dollars,
            stopped: c.stopped.as_ref().map(|s| format!("{s:?}")),
        };
        return Ok(Inspected::Checkpoint { path: path.to_path_buf(), checkpoint, network: c.network });
    }
    Ok(Inspected::Network { path: path.to_path_buf(), network: lineage::load_network(path)? })
}

/// `text` whole when `full`; else on one line (its lines joined by ` / `), cut at 120 characters
/// with a mark when something was left out.
fn shown(text: &str, full: bool) -> String {
    if full {
        return text.to_string();
    }
    let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" / ");
    let mut line: String = joined.chars().take(120).collect();
    if line.len() < joined.len() {
        line.push_str(" …");
    }
    line
}

/// Indent every line after the first of `text` by `pad`.
fn block(text: &str, pad: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

/// The network as a tree.
pub fn network_tree(net: &Network, full: bool) -> String {
    let mut out = format!(
        "network: {} layers\n  task: {}\n",
        net.layers.len(),
        block(&shown(&net.task_description, full), "        ")
    );
    for (i, layer) in net.layers.iter().enumerate() {
        let last_layer = i + 1 == net.layers.len();
        let (branch, pipe) = if last_layer { ("└─", "   ") } else { ("├─", "│  ") };
        let agents = match layer.agents.len() {
            1 => "1 agent".to_string(),
            n => format!("{n} agents"),
        };
        out.push_str(&format!("{branch} layer {} ({agents}): {}\n", layer.id, shown(&layer.subtask, full)));
        let candidates: Vec<String> = layer
            .aggregators
            .iter()
            .map(|a| if *a == layer.default_aggregator { format!("{a} (default)") } else { a.to_string() })
            .collect();
        out.push_str(&format!("{pipe}  aggregators (routing candidates): {}\n", candidates.join(", ")));
        if !layer.routing_hint.is_empty() {
            out.push_str(&format!("{pipe}  routing hint: {}\n", shown(&layer.routing_hint, full)));
        }
        out.push_str(&format!("{pipe}  output spec: {}\n", shown(&layer.output_spec, full)));
        for (j, agent) in layer.agents.iter().enumerate() {
            let (abranch, apipe) = if j + 1 == layer.agents.len() { ("└─", "   ") } else { ("├─", "│  ") };
            let mut facts = vec![format!("temperature {}", agent.temperature)];
            if let Some(profile) = &agent.model.profile {
                facts.push(format!("model profile {profile}"));
            }
            if let Some(max) = agent.model.max_tokens {
                facts.push(format!("max_tokens {max}"));
            }
            out.push_str(&format!("{pipe}  {abranch} agent {} ({})\n", agent.id, facts.join(", ")));
            let pad = format!("{pipe}  {apipe}   ");
            out.push_str(&format!("{pad}role: {}\n", shown(&agent.role, full)));
            out.push_str(&format!("{pad}prompt: {}\n", block(&shown(&agent.prompt, full), &format!("{pad}        "))));
        }
    }
    out
}

/// The examples of a trace, walked one by one.
fn trace_text(examples: &[ExampleView], full: bool) -> String {
    let mut out = String::new();
    for e in examples {
        let verdict = if e.excluded {
            "excluded".to_string()
        } else {
            format!("score {:.3}, {}", e.score, if e.passed { "passed" } else { "failed" })
        };
        out.push_str(&format!("example {} ({}): {verdict}\n", e.id, e.set));
        if let Some(input) = &e.input {
            out.push_str(&format!("  input: {}\n", block(&shown(input, full), "         ")));
        }
        for l in &e.layers {
            let fallback = l.fallback.as_ref().map(|f| format!(" (fallback: {f})")).unwrap_or_default();
            out.push_str(&format!(
                "  layer {}: {} [{}] {}{fallback}\n",
                l.layer,
                l.aggregator,
                l.source,
                shown(&l.reason, full)
            ));
            for a in &l.agents {
                let text = match (&a.output, &a.error) {
                    (_, Some(err)) => format!("error: {err}"),
                    (Some(o), None) => shown(o, full),
                    (None, None) => String::new(),
                };
                let round = if a.round > 0 { format!(" round {}", a.round) } else { String::new() };
                let cached = if a.cache_hit { " (cached)" } else { "" };
                out.push_str(&format!("    {} {}{round}{cached}: {}\n", a.kind, a.agent, block(&text, "      ")));
            }
            if let Some(err) = &l.error {
                out.push_str(&format!("    error: {err}\n"));
            }
            out.push_str(&format!("    layer output: {}\n", block(&shown(&l.output, full), "      ")));
        }
        if let Some(output) = &e.output {
            out.push_str(&format!("  final answer: {}\n", block(&shown(output, full), "    ")));
        }
        out.push_str(&format!("  feedback: {}\n\n", block(&shown(&e.feedback, full), "    ")));
    }
    out
}

/// `ann inspect`.
pub fn run(args: &InspectArgs, json: bool) -> anyhow::Result<()> {
    let inspected = read(&args.path, args.example.as_deref()).map_err(crate::exit::bad_input)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&inspected)?);
        return Ok(());
    }
    match &inspected {
        Inspected::Network { network, .. } => print!("{}", network_tree(network, args.full)),
        Inspected::Checkpoint { checkpoint: c, network, .. } => {
            println!(
                "checkpoint: epoch {}, next batch {}; validation {:.3} at the start, {:.3} now, {:.3} best; \
                 {} steps ({} accepted, {} rejected); {} calls, ${:.4}{}",
                c.epoch,
                c.next_batch,
                c.val_initial,
                c.val_current,
                c.val_best,
                c.steps,
                c.accepted,
                c.rejected,
                c.calls,
                c.dollars,
                c.stopped.as_ref().map(|s| format!("; stopped: {s}")).unwrap_or_default()
            );
            print!("{}", network_tree(network, args.full));
        }
        Inspected::Trace { examples, .. } => print!("{}", trace_text(examples, args.full)),
    }
    Ok(())
}
