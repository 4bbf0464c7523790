//! Diagrams of a network for docs and reports: Graphviz DOT and Mermaid flowcharts.

use std::fmt::Write;

use crate::Network;

const ROLE_CHARS: usize = 60;

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(ROLE_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

impl Network {
    /// Graphviz DOT: one cluster per layer (its agents), a diamond per layer for the aggregators
    /// (default first, marked `*`), edges input -> agents -> aggregator -> next layer -> output.
    pub fn to_dot(&self) -> String {
        let mut s = String::from(
            "digraph network {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n  input [shape=ellipse, label=\"input\"];\n",
        );
        let mut previous = "input".to_string();
        for (li, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(s, "  subgraph cluster_{li} {{");
            let _ = writeln!(s, "    label=\"{}: {}\";", dot_escape(&layer.id), dot_escape(&short(&layer.subtask)));
            for agent in &layer.agents {
                let _ = writeln!(
                    s,
                    "    \"{}/{}\" [label=\"{}\\n{}\"];",
                    dot_escape(&layer.id),
                    dot_escape(&agent.id),
                    dot_escape(&agent.id),
                    dot_escape(&short(&agent.role))
                );
            }
            let agg = format!("{}/aggregate", layer.id);
            let _ = writeln!(
                s,
                "    \"{}\" [shape=diamond, label=\"{}\"];\n  }}",
                dot_escape(&agg),
                self.aggregator_label(li, "\\n")
            );
            for agent in &layer.agents {
                let node = format!("{}/{}", layer.id, agent.id);
                let _ = writeln!(s, "  \"{}\" -> \"{}\";", dot_escape(&previous), dot_escape(&node));
                let _ = writeln!(s, "  \"{}\" -> \"{}\";", dot_escape(&node), dot_escape(&agg));
            }
            previous = agg;
        }
        let _ =
            writeln!(s, "  output [shape=ellipse, label=\"output\"];\n  \"{}\" -> output;\n}}", dot_escape(&previous));
        s
    }

    /// Mermaid flowchart with the same shape as [`Network::to_dot`].
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("flowchart TD\n  input([input])\n");
        let mut previous = "input".to_string();
        for (li, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(
                s,
                "  subgraph L{li}[\"{}: {}\"]",
                mermaid_escape(&layer.id),
                mermaid_escape(&short(&layer.subtask))
            );
            for (ai, agent) in layer.agents.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "    L{li}A{ai}[\"{}<br/>{}\"]",
                    mermaid_escape(&agent.id),
                    mermaid_escape(&short(&agent.role))
                );
            }
            let _ = writeln!(s, "    L{li}F{{\"{}\"}}\n  end", self.aggregator_label(li, "<br/>"));
            for ai in 0..layer.agents.len() {
                let _ = writeln!(s, "  {previous} --> L{li}A{ai}\n  L{li}A{ai} --> L{li}F");
            }
            previous = format!("L{li}F");
        }
        let _ = writeln!(s, "  {previous} --> output([output])");
        s
    }

    fn aggregator_label(&self, layer: usize, newline: &str) -> String {
        let layer = &self.layers[layer];
        let mut names = vec![format!("{}*", layer.default_aggregator)];
        names.extend(layer.aggregators.iter().filter(|a| **a != layer.default_aggregator).map(|a| a.to_string()));
        names.join(newline)
    }
}
