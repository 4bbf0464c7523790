//! The routing record: per layer and aggregator, how often past forward passes ran it and the mean
//! final score of those passes, read from their traces. Routing shows it to the model when
//! [`ForwardConfig::routing_statistics`](crate::ForwardConfig::routing_statistics) is on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AggregatorName, RoutingStat, Trace};

/// Uses and summed scores of one aggregator in one layer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub uses: u64,
    pub score_sum: f64,
}

/// What past forward passes chose per layer id and aggregator, and how they scored. Ordered maps:
/// the same passes recorded in the same order give the same record, byte for byte.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoutingRecord {
    layers: BTreeMap<String, BTreeMap<AggregatorName, Tally>>,
}

impl RoutingRecord {
    /// Count one forward pass scored `score`: every layer that ran (a routing decision without an
    /// error) adds one use of the aggregator it ran. A failed layer says nothing about its
    /// aggregator and is left out.
    pub fn record(&mut self, trace: &Trace, score: f64) {
        let score = if score.is_finite() { score.clamp(0.0, 1.0) } else { 0.0 };
        for layer in trace.layers.iter().filter(|l| l.error.is_none()) {
            let tally =
                self.layers.entry(layer.layer.clone()).or_default().entry(layer.routing.aggregator).or_default();
            tally.uses = tally.uses.saturating_add(1);
            tally.score_sum += score;
        }
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The statistics routing shows, per layer id: each aggregator used so far with its count and
    /// mean score, in aggregator order.
    pub fn stats(&self) -> BTreeMap<String, Vec<RoutingStat>> {
        self.layers
            .iter()
            .map(|(layer, tallies)| {
                let stats = tallies
                    .iter()
                    .filter(|(_, t)| t.uses > 0)
                    .map(|(&aggregator, t)| RoutingStat {
                        aggregator,
                        mean_score: t.score_sum / t.uses as f64,
                        uses: t.uses,
                    })
                    .collect();
                (layer.clone(), stats)
            })
            .collect()
    }

    /// The tally of `aggregator` in layer `layer`, if it was used.
    pub fn tally(&self, layer: &str, aggregator: AggregatorName) -> Option<Tally> {
        self.layers.get(layer)?.get(&aggregator).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{LayerTrace, RoutingDecision, RoutingSource};

    fn trace(choices: &[(&str, AggregatorName, bool)]) -> Trace {
        Trace {
            task: "t".into(),
            input: "x".into(),
            layers: choices
                .iter()
                .map(|&(layer, aggregator, failed)| LayerTrace {
                    layer: layer.into(),
                    input: "x".into(),
                    routing: RoutingDecision {
                        aggregator,
                        reason: String::new(),
                        source: RoutingSource::Model,
                        fallback: None,
                    },
                    calls: Vec::new(),
                    notes: Vec::new(),
                    error: failed.then(|| "failed".into()),
                    output: String::new(),
                })
                .collect(),
            output: String::new(),
        }
    }

    #[test]
    fn counts_uses_and_mean_scores_per_layer_and_aggregator() {
        use AggregatorName::{Debate, MajorityVote};
        let mut record = RoutingRecord::default();
        record.record(&trace(&[("solve", MajorityVote, false), ("check", Debate, false)]), 1.0);
        record.record(&trace(&[("solve", MajorityVote, false), ("check", Debate, true)]), 0.0);
        record.record(&trace(&[("solve", Debate, false)]), f64::NAN);
        let stats = record.stats();
        assert_eq!(
            stats["solve"],
            vec![
                RoutingStat { aggregator: MajorityVote, mean_score: 0.5, uses: 2 },
                RoutingStat { aggregator: Debate, mean_score: 0.0, uses: 1 },
            ]
        );
        assert_eq!(stats["check"], vec![RoutingStat { aggregator: Debate, mean_score: 1.0, uses: 1 }]);
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"check":{"debate":{"uses":1,"score_sum":1.0}},"solve":{"majority_vote":{"uses":2,"score_sum":1.0},"debate":{"uses":1,"score_sum":0.0}}}"#
        );
        assert_eq!(serde_json::from_str::<RoutingRecord>(&json).unwrap(), record);
    }
}
