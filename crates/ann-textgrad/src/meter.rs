//! Cost of a run as the journal records it: calls and tokens as the responses report them.
//!
//! Unlike `ann_llm::Meter`, a cache hit counts like a fresh call here, so that a resumed run
//! (answered from the response cache) writes the same journal as an uninterrupted one.

use std::sync::{Arc, Mutex};

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, PriceTable, SharedModel, Usage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Calls, tokens and dollars. Dollars are kept on a grid of nanodollars (every sum rounded to it),
/// so the total does not depend on the order calls finished in: identical runs write identical
/// journals, to the last bit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cost {
    pub calls: u64,
    /// Calls that failed (after the backend's retries).
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub dollars: f64,
}

impl Cost {
    /// Count one answered call of `model` with its `usage`, priced by `prices`.
    pub fn add_call(&mut self, model: &str, usage: &Usage, prices: &PriceTable) {
        self.calls += 1;
        self.prompt_tokens = self.prompt_tokens.saturating_add(usage.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(usage.completion_tokens);
        self.dollars = nanodollars(self.dollars + nanodollars(prices.cost(model, usage)));
    }

    /// `self - earlier`, field by field (counts saturate: an absurd `usage` cannot panic).
    pub fn since(&self, earlier: &Cost) -> Cost {
        Cost {
            calls: self.calls.saturating_sub(earlier.calls),
            errors: self.errors.saturating_sub(earlier.errors),
            prompt_tokens: self.prompt_tokens.saturating_sub(earlier.prompt_tokens),
            completion_tokens: self.completion_tokens.saturating_sub(earlier.completion_tokens),
            dollars: nanodollars(self.dollars - earlier.dollars),
        }
    }

    /// `self + other`, field by field (counts saturate).
    pub fn plus(&self, other: &Cost) -> Cost {
        Cost {
            calls: self.calls.saturating_add(other.calls),
            errors: self.errors.saturating_add(other.errors),
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self.completion_tokens.saturating_add(other.completion_tokens),
            dollars: nanodollars(self.dollars + other.dollars),
        }
    }
}

/// Training's cost in parts (each as [`Cost`] counts it): the starting network's validation, the
/// optimiser's calls (loss, gradients, patches) and the validation gate's forwards. The training
/// batches' own forwards are the rest of the total.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainCosts {
    pub initial_validation: Cost,
    pub optimizer: Cost,
    pub gate: Cost,
}

impl TrainCosts {
    /// The batches' forwards: `total` less the other parts.
    pub fn forwards(&self, total: &Cost) -> Cost {
        total.since(&self.initial_validation).since(&self.optimizer).since(&self.gate)
    }
}

/// `dollars` rounded to whole nanodollars: sums of rounded amounts (below millions of dollars) are
/// then exact, whatever their order.
fn nanodollars(dollars: f64) -> f64 {
    (dollars * 1e9).round() / 1e9
}

/// A decorator adding every call's usage to a shared [`Cost`].
pub(crate) struct CountingModel {
    inner: SharedModel,
    prices: PriceTable,
    cost: Arc<Mutex<Cost>>,
}

impl CountingModel {
    pub(crate) fn wrap(inner: SharedModel, prices: PriceTable, cost: Arc<Mutex<Cost>>) -> SharedModel {
        Arc::new(Self { inner, prices, cost })
    }
}

#[async_trait]
impl ChatModel for CountingModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let result = self.inner.complete(request).await;
        let mut cost = self.cost.lock().expect("cost lock");
        match &result {
            Ok(r) => cost.add_call(&request.model, &r.usage, &self.prices),
            Err(LlmError::BudgetExhausted(_)) => {}
            Err(_) => cost.errors += 1,
        }
        result
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ann_llm::Price;

    /// Found by `cargo xtask chaos` (hostile mode, absurd usage): the report's sums panicked.
    #[test]
    fn sums_and_differences_of_absurd_counts_saturate() {
        let huge =
            Cost { calls: u64::MAX, errors: 1, prompt_tokens: u64::MAX, completion_tokens: u64::MAX, dollars: 0.0 };
        let sum = huge.plus(&huge);
        assert_eq!((sum.calls, sum.prompt_tokens, sum.completion_tokens), (u64::MAX, u64::MAX, u64::MAX));
        assert_eq!(Cost::default().since(&huge).prompt_tokens, 0);
    }

    #[test]
    fn dollars_do_not_depend_on_the_order_calls_finished_in() {
        let mut prices = PriceTable::empty();
        prices.0.insert("m".into(), Price { input_per_mtok: 0.15, output_per_mtok: 0.6, cached_input_per_mtok: None });
        let usages: Vec<Usage> = [(1234, 56), (7, 890), (31_415, 9), (271, 828), (1, 1), (99_999, 12_345)]
            .iter()
            .map(|&(p, c)| Usage { prompt_tokens: p, completion_tokens: c, cached_tokens: 0 })
            .collect();
        let total = |order: &[usize]| {
            let mut cost = Cost::default();
            for &i in order {
                cost.add_call("m", &usages[i], &prices);
            }
            cost.dollars.to_bits()
        };
        let forward = total(&[0, 1, 2, 3, 4, 5]);
        for order in [[5, 4, 3, 2, 1, 0], [2, 0, 5, 1, 3, 4], [3, 5, 0, 4, 2, 1]] {
            assert_eq!(total(&order), forward, "order {order:?}");
        }
        let mut a = Cost::default();
        a.add_call("m", &usages[0], &prices);
        let mut b = Cost::default();
        b.add_call("m", &usages[5], &prices);
        assert_eq!(a.plus(&b).since(&b).dollars.to_bits(), a.dollars.to_bits());
    }
}
