//! Parsing the backward phase's answers: language losses, the global gradient, local gradients.
//!
//! Model output is data: every parser has a fallback, and what fell back is recorded.

use ann_graph::Network;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use ann_llm::answer::{extract_tag, first_json_value};

/// The language loss of one example: a critique of the output and what the last layer must produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageLoss {
    pub example: String,
    /// What is wrong with the final output and why.
    pub critique: String,
    /// What the last layer's output should look like (the start of the backward chain).
    pub requirement: String,
    /// Why the reply could not be read as tagged sections (the whole reply is then the critique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Read `<critique>` and `<requirement>`; without tags, the whole reply is the critique.
pub fn parse_language_loss(example: &str, reply: &str) -> LanguageLoss {
    let critique = extract_tag(reply, "critique");
    let requirement = extract_tag(reply, "requirement");
    let fallback = match (critique, requirement) {
        (Some(_), Some(_)) => None,
        (None, _) => Some("no <critique> section".to_string()),
        (Some(_), None) => Some("no <requirement> section".to_string()),
    };
    LanguageLoss {
        example: example.to_string(),
        critique: critique.unwrap_or(reply.trim()).to_string(),
        requirement: requirement.unwrap_or("").to_string(),
        fallback,
    }
}

/// One layer's share of the global gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerBlame {
    pub layer: String,
    /// 0.0 (innocent) to 1.0 (the cause).
    pub blame: f64,
    #[serde(default)]
    pub issue: String,
    #[serde(default)]
    pub direction: String,
}

/// A structural suggestion of the global gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuralSuggestion {
    /// `add_layer`, `remove_layer`, `reorder` or `none`.
    pub kind: String,
    #[serde(default)]
    pub why: String,
}

/// The global gradient: a diagnosis of the whole network, each layer's blame, structural suggestions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalGradient {
    pub diagnosis: String,
    pub layers: Vec<LayerBlame>,
    #[serde(default)]
    pub structural: Vec<StructuralSuggestion>,
    /// Why the uniform fallback was used instead of a parsed answer (`None` when parsed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl GlobalGradient {
    /// Uniform blame (1.0 for every layer), the critiques joined as the diagnosis, no structural
    /// change: the fallback when the answer does not parse, and the `no_global_gradient` ablation.
    pub fn uniform(net: &Network, losses: &[LanguageLoss], why: &str) -> Self {
        let diagnosis = losses
            .iter()
            .filter(|l| !l.critique.is_empty())
            .map(|l| format!("[{}] {}", l.example, l.critique))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            diagnosis,
            layers: net
                .layers
                .iter()
                .map(|l| LayerBlame { layer: l.id.clone(), blame: 1.0, issue: String::new(), direction: String::new() })
                .collect(),
            structural: Vec::new(),
            fallback: Some(why.to_string()),
        }
    }

    /// The blame entry of a layer.
    pub fn blame_of(&self, layer: &str) -> Option<&LayerBlame> {
        self.layers.iter().find(|b| b.layer == layer)
    }

    /// Whether a structural change other than `none` was suggested.
    pub fn wants_structure(&self) -> bool {
        self.structural.iter().any(|s| s.kind != "none" && !s.kind.trim().is_empty())
    }

    /// The layers to visit: blame at least `threshold`, the `max` most blamed (ties: the later
    /// layer), returned from the last layer to the first.
    pub fn blamed_layers(&self, net: &Network, threshold: f64, max: usize) -> Vec<String> {
        let mut blamed: Vec<(usize, f64)> = net
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| self.blame_of(&l.id).map(|b| (i, b.blame)))
            .filter(|(_, blame)| *blame >= threshold)
            .collect();
        blamed.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        blamed.truncate(max);
        blamed.sort_by_key(|b| std::cmp::Reverse(b.0));
        blamed.into_iter().map(|(i, _)| net.layers[i].id.clone()).collect()
    }
}

/// Parse the global gradient's JSON (the first object of the reply). Unknown layer ids are
/// dropped, blame is clamped to 0..=1; the error says why nothing usable was found.
pub fn parse_global_gradient(reply: &str, net: &Network) -> Result<GlobalGradient, String> {
    let value = first_json_value(reply, &['{']).ok_or("no JSON object in the reply")?;
    let diagnosis = value.get("diagnosis").and_then(Value::as_str).ok_or("no string field `diagnosis`")?;
    let layers = value.get("layers").and_then(Value::as_array).ok_or("no array field `layers`")?;
    let mut blames = Vec::new();
    for item in layers {
        let Some(id) = item.get("layer").and_then(Value::as_str) else { continue };
        if net.layer(id).is_none() || blames.iter().any(|b: &LayerBlame| b.layer == id) {
            continue;
        }
        let blame = item.get("blame").and_then(Value::as_f64).unwrap_or(0.0).clamp(0.0, 1.0);
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        blames.push(LayerBlame { layer: id.to_string(), blame, issue: text("issue"), direction: text("direction") });
    }
    if blames.is_empty() {
        return Err("no entry of `layers` names a layer of the network".into());
    }
    let structural = value
        .get("structural")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|s| {
                    let kind = s.get("kind").and_then(Value::as_str)?;
                    let why = s.get("why").and_then(Value::as_str).unwrap_or("");
                    Some(StructuralSuggestion { kind: kind.to_string(), why: why.to_string() })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(GlobalGradient { diagnosis: diagnosis.to_string(), layers: blames, structural, fallback: None })
}

/// The textual part of a local gradient: the critique of one layer and what it needs from the layer before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalText {
    /// Critique and directions for the layer.
    pub gradient: String,
    /// What the layer needed from its input (the requirement of the previous layer).
    pub requirement_for_previous: String,
}

/// Read `<gradient>` and `<requirement_for_previous>`, or a JSON object with those fields (the
/// two-stage gradient's structured answer); else the text before any `<patch>` is the gradient.
pub fn parse_local_text(reply: &str) -> LocalText {
    if let Some(value) = first_json_value(reply.trim_start(), &['{']).filter(|_| reply.trim_start().starts_with('{'))
        && let Some(gradient) = value.get("gradient").and_then(Value::as_str)
    {
        let requirement = value.get("requirement_for_previous").and_then(Value::as_str).unwrap_or("");
        return LocalText {
            gradient: gradient.trim().to_string(),
            requirement_for_previous: requirement.trim().to_string(),
        };
    }
    let gradient = extract_tag(reply, "gradient")
        .map(str::to_string)
        .unwrap_or_else(|| reply.split("<patch>").next().unwrap_or("").trim().to_string());
    let requirement_for_previous = extract_tag(reply, "requirement_for_previous").unwrap_or("").to_string();
    LocalText { gradient, requirement_for_previous }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_network;

    #[test]
    fn language_loss_with_and_without_tags() {
        let l = parse_language_loss("e1", "<critique>no box</critique>\n<requirement>box it</requirement>");
        assert_eq!((l.critique.as_str(), l.requirement.as_str(), l.fallback), ("no box", "box it", None));
        let l = parse_language_loss("e1", "  just prose  ");
        assert_eq!(l.critique, "just prose");
        assert_eq!(l.fallback.as_deref(), Some("no <critique> section"));
    }

    #[test]
    fn local_text_from_tags_json_or_prose() {
        let t = parse_local_text(r#"{"gradient": " say Yes or No first ", "requirement_for_previous": "a question"}"#);
        assert_eq!((t.gradient.as_str(), t.requirement_for_previous.as_str()), ("say Yes or No first", "a question"));
        let t = parse_local_text("<gradient>g</gradient><requirement_for_previous>r</requirement_for_previous>");
        assert_eq!((t.gradient.as_str(), t.requirement_for_previous.as_str()), ("g", "r"));
        let t = parse_local_text("prose {\"gradient\": \"x\"} <patch>[]</patch>");
        assert_eq!(t.gradient, "prose {\"gradient\": \"x\"}");
    }

    #[test]
    fn global_gradient_parses_and_cleans() {
        let net = sample_network();
        let g = parse_global_gradient(
            r#"Sure: {"diagnosis": "d", "layers": [{"layer": "verify", "blame": 1.7, "issue": "i"},
               {"layer": "ghost", "blame": 1.0}, {"layer": "solve", "blame": 0.1}],
               "structural": [{"kind": "none", "why": ""}]}"#,
            &net,
        )
        .unwrap();
        assert_eq!(g.layers.len(), 2);
        assert_eq!(g.layers[0].blame, 1.0);
        assert!(!g.wants_structure());
        assert_eq!(g.blamed_layers(&net, 0.2, 3), ["verify"]);
        for bad in ["no json", r#"{"layers": []}"#, r#"{"diagnosis": "d", "layers": [{"layer": "ghost"}]}"#] {
            assert!(parse_global_gradient(bad, &net).is_err(), "{bad}");
        }
    }

    #[test]
    fn blamed_layers_are_capped_and_ordered_last_to_first() {
        let net = sample_network();
        let mut g = GlobalGradient::uniform(&net, &[], "test");
        assert_eq!(g.blamed_layers(&net, 0.2, 3), ["verify", "solve", "understand"]);
        assert_eq!(g.blamed_layers(&net, 0.2, 2), ["verify", "solve"]);
        g.layers[2].blame = 0.0;
        g.layers[0].blame = 0.9;
        assert_eq!(g.blamed_layers(&net, 0.2, 2), ["solve", "understand"]);
    }

    #[test]
    fn local_text_fallback() {
        let t = parse_local_text(
            "<gradient>g</gradient><requirement_for_previous>r</requirement_for_previous><patch>[]</patch>",
        );
        assert_eq!((t.gradient.as_str(), t.requirement_for_previous.as_str()), ("g", "r"));
        let t = parse_local_text("loose words <patch>[]</patch>");
        assert_eq!(t.gradient, "loose words");
    }
}
