//! Chat vocabulary, the ChatModel trait and pure decorators (metering, budgets).
//!
//! Every other crate talks to models through [`ChatModel`]: one object-safe async method, so that
//! backends (HTTP, embedded) and decorators (cache, metering, budget) stack like tower layers.

pub mod answer;
mod atomic;
mod budget;
mod budgeted;
mod call;
mod error;
mod ledger;
mod metering;
mod model;
mod tools;
mod types;

pub use atomic::write_atomic;
pub use budget::{AHEAD_CALLS, Budget, BudgetLedger, BudgetLimits, BudgetSpent, INTERRUPTED};
pub use budgeted::BudgetedModel;
pub use call::CallSettings;
pub use error::LlmError;
pub use ledger::{FnSink, LINGER, LedgerFile, LedgerSink, SYNC_PAUSE};
pub use metering::{Meter, MeterReport, MeteredModel, Price, PriceTable, Totals};
pub use model::{Attempts, ChatModel, SharedModel};
pub use tools::{ToolCall, ToolChoice, ToolDefinition};
pub use types::{
    ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, Role, Usage, estimate_prompt_tokens,
};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
