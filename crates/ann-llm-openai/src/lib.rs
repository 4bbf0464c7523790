//! OpenAI-compatible HTTP chat backend: timeouts, retries, rate limits, replicas.
//!
//! [`OpenAiModel`] implements [`ann_llm::ChatModel`] against any server speaking OpenAI's chat
//! completions API (OpenAI, vLLM, llama.cpp server, Ollama, OpenRouter). Configure it with an
//! [`OpenAiConfig`]; binaries can take one from the environment with [`OpenAiConfig::from_env`]
//! (`ANN_OPENAI_BASE_URL`, `ANN_OPENAI_MODEL`, `ANN_OPENAI_API_KEY` or `OPENAI_API_KEY`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ann_llm::LlmError> {
//! use ann_llm::{ChatModel, ChatRequest, Message};
//! use ann_llm_openai::{OpenAiConfig, OpenAiModel};
//!
//! let config = OpenAiConfig::from_env()?
//!     .unwrap_or_else(|| OpenAiConfig::new("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct"));
//! let model = OpenAiModel::from_env(config)?;
//! let answer = model.complete(&ChatRequest::new("", vec![Message::user("2 + 2 = ?")])).await?;
//! println!("{}", answer.text);
//! # Ok(()) }
//! ```

mod client;
mod clock;
mod config;
mod limiter;
mod wire;

pub use client::{ApiKey, OpenAiModel, ReplicaStats};
pub use clock::{Clock, ManualClock, TokioClock};
pub use config::{OpenAiConfig, RateLimits, RetryPolicy};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
