//! A network drawn as SVG: layers as teams of agents, each with its aggregator candidates (routing)
//! and default. Graphviz `dot` lays it out when installed; otherwise a built-in column layout.

use std::io::Write;
use std::process::{Command, Stdio};

use ann_graph::{Layer, Network};

use super::html::escape;

/// How a diagram was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Graphviz,
    BuiltIn,
}

/// `text` cut to `max` characters (with an ellipsis).
fn short(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max { text } else { format!("{}…", text.chars().take(max - 1).collect::<String>()) }
}

/// A DOT string literal's contents.
fn dot_quote(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '\n' | '\r' => vec![' '],
            c => vec![c],
        })
        .collect()
}

fn routing_label(layer: &Layer) -> String {
    let candidates: Vec<String> = layer.aggregators.iter().map(ToString::to_string).collect();
    if candidates.len() > 1 {
        format!("routing: {} (default {})", candidates.join(" | "), layer.default_aggregator)
    } else {
        format!("aggregator: {}", layer.default_aggregator)
    }
}

/// The network in Graphviz's language (ids are `n<layer>_<agent>`, so any slug is safe).
pub fn to_dot(network: &Network) -> String {
    let mut out = String::from(
        "digraph network {\n  rankdir=TB; ordering=out;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", \
         fontname=\"Helvetica\", fontsize=11];\n  edge [color=\"#555555\"];\n  input [shape=oval, \
         fillcolor=\"#ffffff\", label=\"input x\"];\n",
    );
    let mut previous = "input".to_string();
    for (i, layer) in network.layers.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label=\"{}\\l{}\\l\";\n    style=\"rounded\"; color=\"#7a8fb5\"; labeljust=\"l\"; \
             fontname=\"Helvetica\"; fontsize=12;\n",
            dot_quote(&layer.id),
            dot_quote(&short(&layer.subtask, 45))
        ));
        for (j, agent) in layer.agents.iter().enumerate() {
            out.push_str(&format!(
                "    n{i}_{j} [label=\"{}\\n{}\", tooltip=\"{}\"];\n",
                dot_quote(&agent.id),
                dot_quote(&short(&agent.role, 40)),
                dot_quote(&short(&agent.prompt, 300))
            ));
        }
        if layer.agents.len() > 1 {
            // Keep the team's order left to right (the first agent leads some aggregators).
            let chain: Vec<String> = (0..layer.agents.len()).map(|j| format!("n{i}_{j}")).collect();
            out.push_str(&format!("    {{ rank=same; {} [style=invis]; }}\n", chain.join(" -> ")));
        }
        out.push_str(&format!(
            "    agg{i} [shape=hexagon, fillcolor=\"#fdf1dc\", label=\"{}\"];\n  }}\n",
            dot_quote(&routing_label(layer))
        ));
        for j in 0..layer.agents.len() {
            out.push_str(&format!("  {previous} -> n{i}_{j};\n  n{i}_{j} -> agg{i};\n"));
        }
        previous = format!("agg{i}");
    }
    out.push_str(&format!(
        "  output [shape=oval, fillcolor=\"#ffffff\", label=\"answer\"];\n  {previous} -> output;\n}}\n"
    ));
    out
}

/// The SVG of `network`: from `dot` when it runs, else [`builtin_svg`].
pub fn render(network: &Network) -> (String, Layout) {
    match graphviz_svg(&to_dot(network)) {
        Some(svg) => (svg, Layout::Graphviz),
        None => (builtin_svg(network), Layout::BuiltIn),
    }
}

/// Run `dot -Tsvg` on `dot` (None when Graphviz is not installed or fails); the XML prologue
/// and doctype are cut so the SVG can sit inside HTML.
pub fn graphviz_svg(dot: &str) -> Option<String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(dot.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let svg = String::from_utf8(output.stdout).ok()?;
    let start = svg.find("<svg")?;
    Some(svg[start..].trim_end().to_string())
}

const AGENT_W: usize = 190;
const AGENT_H: usize = 46;
const GAP: usize = 16;
const LAYER_PAD: usize = 14;

/// A column layout drawn without Graphviz: the input, each layer as a box holding its agents
/// side by side and its aggregator below them, the answer; arrows between.
pub fn builtin_svg(network: &Network) -> String {
    let widest = network.layers.iter().map(|l| l.agents.len().max(1)).max().unwrap_or(1);
    let inner = widest * AGENT_W + (widest - 1) * GAP;
    let width = (inner + 2 * LAYER_PAD + 40).max(420);
    let center = width / 2;
    let layer_h = 24 + AGENT_H + 30 + 30 + LAYER_PAD;
    let height = 60 + network.layers.len() * (layer_h + 30) + 50;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"diagram\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n"
    );
    let arrow = |x1: usize, y1: usize, x2: usize, y2: usize| {
        format!("<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\n")
    };
    svg.push_str(&format!(
        "<ellipse cx=\"{center}\" cy=\"25\" rx=\"40\" ry=\"15\" fill=\"#fff\" stroke=\"#555\"/>\
         <text x=\"{center}\" y=\"29\" text-anchor=\"middle\">input x</text>\n"
    ));
    let mut top = 60;
    let mut from = 40;
    for layer in &network.layers {
        let n = layer.agents.len().max(1);
        let row = n * AGENT_W + (n - 1) * GAP;
        let left = center - row / 2;
        svg.push_str(&format!(
            "<g class=\"layer\"><rect x=\"20\" y=\"{top}\" width=\"{}\" height=\"{layer_h}\" rx=\"8\" fill=\"none\" \
             stroke=\"#7a8fb5\"/><text x=\"30\" y=\"{}\" font-weight=\"bold\">{}</text>\n",
            width - 40,
            top + 16,
            escape(&format!("{}: {}", layer.id, short(&layer.subtask, 70)))
        ));
        let agents_y = top + 24;
        let agg_y = agents_y + AGENT_H + 30;
        for (j, agent) in layer.agents.iter().enumerate() {
            let x = left + j * (AGENT_W + GAP);
            svg.push_str(&arrow(center, from, x + AGENT_W / 2, agents_y));
            svg.push_str(&format!(
                "<g class=\"agent\"><title>{}</title><rect x=\"{x}\" y=\"{agents_y}\" width=\"{AGENT_W}\" \
                 height=\"{AGENT_H}\" rx=\"6\" fill=\"#eef3fb\" stroke=\"#555\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
                escape(&short(&agent.prompt, 300)),
                x + AGENT_W / 2,
                agents_y + 18,
                escape(&short(&agent.id, 28)),
                x + AGENT_W / 2,
                agents_y + 34,
                escape(&short(&agent.role, 30))
            ));
            svg.push_str(&arrow(x + AGENT_W / 2, agents_y + AGENT_H, center, agg_y));
        }
        let label = short(&routing_label(layer), 80);
        let agg_w = (label.chars().count() * 6 + 24).min(width - 60);
        svg.push_str(&format!(
            "<rect class=\"aggregator\" x=\"{}\" y=\"{agg_y}\" width=\"{agg_w}\" height=\"26\" rx=\"13\" \
             fill=\"#fdf1dc\" stroke=\"#555\"/><text x=\"{center}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
            center - agg_w / 2,
            agg_y + 17,
            escape(&label)
        ));
        from = agg_y + 26;
        top += layer_h + 30;
    }
    svg.push_str(&arrow(center, from, center, top));
    svg.push_str(&format!(
        "<ellipse cx=\"{center}\" cy=\"{}\" rx=\"40\" ry=\"15\" fill=\"#fff\" stroke=\"#555\"/>\
         <text x=\"{center}\" y=\"{}\" text-anchor=\"middle\">answer</text>\n</svg>",
        top + 15,
        top + 19
    ));
    svg
}
