//! Metering: tokens and dollars per model and per tag, from a price table a config can extend.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ChatModel, ChatRequest, ChatResponse, LlmError, Usage};

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Price of prompt tokens served from the provider's prefix cache; defaults to the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
}

/// Prices by model name. Unknown models (local ones, for instance) cost nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl Default for PriceTable {
    /// Public list prices (USD per million tokens) of common hosted models; extend or override by config.
    fn default() -> Self {
        let p = |i, o, c| Price { input_per_mtok: i, output_per_mtok: o, cached_input_per_mtok: c };
        PriceTable(BTreeMap::from([
            ("gpt-3.5-turbo".to_string(), p(0.5, 1.5, None)),
            ("gpt-4".to_string(), p(30.0, 60.0, None)),
            ("gpt-4o".to_string(), p(2.5, 10.0, Some(1.25))),
            ("gpt-4o-mini".to_string(), p(0.15, 0.6, Some(0.075))),
        ]))
    }
}

impl PriceTable {
    /// An empty table: everything is free.
    pub fn empty() -> Self {
        PriceTable(BTreeMap::new())
    }

    /// Add or override entries.
    pub fn extend(&mut self, other: &PriceTable) {
        self.0.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// The price of `model`: an exact entry, else the longest entry that prefixes it
    /// (`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.0.get(model) {
            return Some(*p);
        }
        self.0
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// Dollars for the given usage.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        let Some(p) = self.price(model) else { return 0.0 };
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        (fresh as f64 * p.input_per_mtok
            + cached as f64 * p.cached_input_per_mtok.unwrap_or(p.input_per_mtok)
            + usage.completion_tokens as f64 * p.output_per_mtok)
            / 1e6
    }
}

/// Accumulated figures of one key (a model, or a tag such as `phase=backward`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub calls: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Calls answered by the response cache.
    pub cache_hits: u64,
    /// Tokens a cache hit saved (its recorded prompt + completion tokens).
    pub saved_tokens: u64,
    pub dollars: f64,
    /// Calls whose answer asked for tools (tool-call turns of an agent's model-tool loop).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tool_turns: u64,
    /// Tool calls those answers asked for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tool_calls: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Totals {
    fn add(&mut self, usage: &Usage, dollars: f64, cache_hit: bool, tool_calls: usize) {
        self.calls += 1;
        if tool_calls > 0 {
            self.tool_turns += 1;
            self.tool_calls = self.tool_calls.saturating_add(tool_calls as u64);
        }
        if cache_hit {
            self.cache_hits += 1;
            self.saved_tokens = self.saved_tokens.saturating_add(usage.total());
        } else {
            self.prompt_tokens = self.prompt_tokens.saturating_add(usage.prompt_tokens);
            self.completion_tokens = self.completion_tokens.saturating_add(usage.completion_tokens);
            self.cached_tokens = self.cached_tokens.saturating_add(usage.cached_tokens);
            self.dollars += dollars;
        }
    }
}

/// A snapshot of a [`Meter`]: totals overall, per model and per `tag=value`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeterReport {
    pub total: Totals,
    pub by_model: BTreeMap<String, Totals>,
    pub by_tag: BTreeMap<String, Totals>,
}

/// The shared ledger that one or more [`MeteredModel`]s write to.
#[derive(Debug, Default)]
pub struct Meter {
    prices: PriceTable,
    report: Mutex<MeterReport>,
}

impl Meter {
    pub fn new(prices: PriceTable) -> Arc<Self> {
        Arc::new(Self { prices, report: Mutex::new(MeterReport::default()) })
    }

    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// Record one finished call. Allocates only for a model or tag seen for the first time.
    pub fn record(&self, request: &ChatRequest, outcome: Result<&ChatResponse, &LlmError>) {
        let dollars = outcome.map_or(0.0, |resp| self.prices.cost(&request.model, &resp.usage));
        let add = |totals: &mut Totals| match outcome {
            Ok(resp) => totals.add(&resp.usage, dollars, resp.cache_hit, resp.tool_calls.len()),
            Err(_) => totals.errors += 1,
        };
        let mut key = String::new();
        let mut report = self.report.lock().expect("meter lock");
        let report = &mut *report;
        add(&mut report.total);
        match report.by_model.get_mut(&request.model) {
            Some(totals) => add(totals),
            None => add(report.by_model.entry(request.model.clone()).or_default()),
        }
        for (k, v) in &request.tags {
            key.clear();
            key.extend([k.as_str(), "=", v.as_str()]);
            match report.by_tag.get_mut(&key) {
                Some(totals) => add(totals),
                None => add(report.by_tag.entry(key.clone()).or_default()),
            }
        }
    }

    pub fn report(&self) -> MeterReport {
        self.report.lock().expect("meter lock").clone()
    }
}

/// Decorator that records every call's usage and cost in a [`Meter`].
pub struct MeteredModel<M> {
    inner: M,
    meter: Arc<Meter>,
}

impl<M: ChatModel> MeteredModel<M> {
    pub fn new(inner: M, meter: Arc<Meter>) -> Self {
        Self { inner, meter }
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for MeteredModel<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let result = self.inner.complete(request).await;
        self.meter.record(request, result.as_ref());
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    fn concurrency_limit(&self) -> Option<usize> {
        self.inner.concurrency_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_by_prefix_and_cached_tokens() {
        let table = PriceTable::default();
        let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, cached_tokens: 0 };
        assert!((table.cost("gpt-4o-mini-2024-07-18", &usage) - 0.75).abs() < 1e-9);
        let cached = Usage { cached_tokens: 1_000_000, ..usage };
        assert!((table.cost("gpt-4o-mini", &cached) - 0.675).abs() < 1e-9);
        assert_eq!(table.cost("SmolLM2-135M", &usage), 0.0);
        let mut ext = PriceTable::empty();
        ext.0.insert("local".into(), Price { input_per_mtok: 1.0, output_per_mtok: 2.0, cached_input_per_mtok: None });
        let mut t = PriceTable::default();
        t.extend(&ext);
        assert!((t.cost("local", &usage) - 3.0).abs() < 1e-9);
    }
}
