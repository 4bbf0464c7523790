//! The open aggregator trait and the registry the forward phase looks aggregators up in.
//!
//! An [`Aggregator`] is an aggregation function: it runs a layer's team through a
//! [`LayerContext`] and returns the layer output. The [`AggregatorRegistry`] maps names to
//! implementations; its default holds the nine built-ins. A user adds an aggregator by
//! implementing the trait under a declared custom name ([`AggregatorName::custom`]), registering it
//! in the [`crate::ForwardConfig`]'s registry (for [`crate::forward`]) and in the
//! [`crate::ValidationRules`]' (for the format gate); a network file may then name it in
//! `aggregators` and `default_aggregator`, and routing offers it with its own description.
//!
//! ```
//! use ann_graph::{Aggregator, AggregatorName, AggregatorRegistry, ForwardConfig, GraphError, LayerContext};
//!
//! /// Every agent answers; the longest answer is the layer output.
//! struct Longest;
//!
//! #[ann_graph::async_trait]
//! impl Aggregator for Longest {
//!     fn name(&self) -> AggregatorName {
//!         AggregatorName::custom("longest").expect("a slug that is not a built-in's")
//!     }
//!     fn description(&self) -> &str {
//!         "all agents answer in parallel; the longest answer wins"
//!     }
//!     async fn aggregate(&self, ctx: &LayerContext<'_>) -> Result<String, GraphError> {
//!         let outputs = ctx.first_round().await?;
//!         let live = ann_graph::survivors(&outputs);
//!         Ok(live.iter().map(|(_, text)| *text).max_by_key(|t| t.len()).unwrap_or_default().to_string())
//!     }
//! }
//!
//! let registry = AggregatorRegistry::default().with(Longest);
//! let longest = "longest".parse::<AggregatorName>().unwrap();
//! assert!(registry.contains(longest) && registry.contains(AggregatorName::Debate));
//! let config = ForwardConfig { aggregators: registry, ..Default::default() };
//! assert_eq!(config.aggregators.names().count(), 10);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::aggregators::{
    Concatenate, CriticRevise, Debate, LlmSynthesis, MajorityVote, SelectBest, SequentialRefine, Single, ToolPipeline,
};
use crate::{Aggregator, AggregatorName};

/// The implementation of a built-in name.
///
/// # Panics
/// For a custom name: custom aggregators live in an [`AggregatorRegistry`], see
/// [`AggregatorRegistry::get`].
pub fn aggregator(name: AggregatorName) -> &'static dyn Aggregator {
    match name {
        AggregatorName::Single => &Single,
        AggregatorName::Concatenate => &Concatenate,
        AggregatorName::MajorityVote => &MajorityVote,
        AggregatorName::LlmSynthesis => &LlmSynthesis,
        AggregatorName::SelectBest => &SelectBest,
        AggregatorName::SequentialRefine => &SequentialRefine,
        AggregatorName::Debate => &Debate,
        AggregatorName::CriticRevise => &CriticRevise,
        AggregatorName::ToolPipeline => &ToolPipeline,
        AggregatorName::Custom(name) => {
            panic!("`{}` is a custom aggregator: look it up in an AggregatorRegistry", name.as_str())
        }
    }
}

/// The aggregators a forward pass (and the format gate) knows, by name. The default holds the nine
/// built-ins; [`Self::register`] adds (or replaces) one. Cloning shares the implementations.
/// Two registries are equal when they know the same names.
#[derive(Clone)]
pub struct AggregatorRegistry {
    entries: BTreeMap<AggregatorName, Arc<dyn Aggregator>>,
}

impl Default for AggregatorRegistry {
    /// The nine built-ins.
    fn default() -> Self {
        let built_ins: [Arc<dyn Aggregator>; 9] = [
            Arc::new(Single),
            Arc::new(Concatenate),
            Arc::new(MajorityVote),
            Arc::new(LlmSynthesis),
            Arc::new(SelectBest),
            Arc::new(SequentialRefine),
            Arc::new(Debate),
            Arc::new(CriticRevise),
            Arc::new(ToolPipeline),
        ];
        Self { entries: built_ins.into_iter().map(|a| (a.name(), a)).collect() }
    }
}

impl AggregatorRegistry {
    /// A registry without any aggregator (not even the built-ins).
    pub fn empty() -> Self {
        Self { entries: BTreeMap::new() }
    }

    /// Add `aggregator` under its name, replacing (and returning) one registered under it before.
    pub fn register(&mut self, aggregator: Arc<dyn Aggregator>) -> Option<Arc<dyn Aggregator>> {
        self.entries.insert(aggregator.name(), aggregator)
    }

    /// [`Self::register`], as a builder.
    #[must_use]
    pub fn with(mut self, aggregator: impl Aggregator + 'static) -> Self {
        self.register(Arc::new(aggregator));
        self
    }

    /// The aggregator registered under `name`.
    pub fn get(&self, name: AggregatorName) -> Option<&dyn Aggregator> {
        self.entries.get(&name).map(|a| &**a)
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: AggregatorName) -> bool {
        self.entries.contains_key(&name)
    }

    /// The registered names: the built-ins in registry order, then custom names alphabetically.
    pub fn names(&self) -> impl Iterator<Item = AggregatorName> + '_ {
        self.entries.keys().copied()
    }
}

impl fmt::Debug for AggregatorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names().map(AggregatorName::as_str)).finish()
    }
}

impl PartialEq for AggregatorRegistry {
    fn eq(&self, other: &Self) -> bool {
        self.names().eq(other.names())
    }
}
