//! The embedded offline model (SmolLM2 GGUF through candle) behind ChatModel.
//!
//! [`LocalModel`] loads a llama-architecture GGUF file (by default SmolLM2-135M-Instruct Q4_1, fetched
//! by `cargo xtask fetch-model`), builds the tokenizer and the chat template from the file's metadata,
//! and answers [`ChatRequest`]s on a dedicated worker thread fed by a bounded queue, so that many
//! concurrent agents never block the async runtime. The worker decodes the requests in progress
//! together (up to [`LocalConfig::max_batch`]): one forward pass advances each of them by a token and
//! reads the weights once for all, and each request gets exactly the answer it gets alone.
//!
//! Decoding: greedy at temperature 0 (the default when a request sets none); otherwise temperature and
//! top-p sampling from a ChaCha RNG seeded by the request's `seed` and `sample_index`, so every answer
//! is reproducible. Generation ends at the end-of-turn token, at a stop string (the text is cut before
//! it), at `max_tokens`, or at the end of the context window (`finish_reason = length`). A prompt that
//! does not fit the context window is refused with [`LlmError::ContextOverflow`]: nothing is truncated.
//!
//! Structured output: [`ResponseFormat::JsonObject`] and [`ResponseFormat::JsonSchema`] constrain every
//! sampled token with llguidance, so the answer is JSON that fits the schema (unless `max_tokens` cuts
//! it short, which `finish_reason = length` reports).
//!
//! Tool calls: a request that offers tools gets them described in its system message, and its
//! answer is decoded under a JSON Schema over the offered tools' names and parameter schemas (and
//! the tool choice), then read back as [`ann_llm::ToolCall`]s (`finish_reason = tool_calls`) or text.
//!
//! Usage: `prompt_tokens` counts the rendered prompt; `completion_tokens` counts sampled tokens except
//! the end-of-turn token; `cached_tokens` counts prompt tokens served from the shared-prefix cache.
//!
//! Shared prefixes: the prefill is split where whole messages end, and the model state after each
//! split is kept (bounded by [`LocalConfig::prefix_cache_tokens`]). Agents with the same system prompt
//! and repeated samples of one prompt then skip the shared part. The split depends only on the prompt,
//! so a cache hit gives exactly the answer a cold run gives. On the 8-bit weights the chunks of a
//! prompt, and the prompts of requests that arrive together, run in one forward pass (`prefill.rs`):
//! only attention works chunk by chunk; on the f32 copy (the default) each chunk runs on its own.
//!
//! Speed: the transformer (`llama.rs`) is our own code over candle's public tensor ops. Generation
//! runs on the quantized weights, with Q4_1 requantized to Q8_0, whose dot product candle vectorises
//! ([`LocalConfig::requantize_q8`]), and attention read in place from an append-only KV cache. Prompts
//! run on a dequantized f32 copy of the weights ([`LocalConfig::dense_prefill`], on by default:
//! 8-bit activations make the small model's answers worse), or with it off on the same 8-bit
//! weights (on AVX-512 VNNI, query/key/value and gate/up each as one fused call that quantizes its
//! input once), faster on such CPUs and without the copy's memory. `cargo xtask local-speed` prints prefill and
//! generation tokens per second. candle's CPU kernels spin-wait on a thread barrier: on a machine
//! whose cores are busy with other work, throughput drops sharply.

mod attention;
mod engine;
mod error;
mod linear;
mod llama;
mod ops;
mod pin;
mod prefill;
mod prefix_cache;
mod prompts;
mod sampling;
mod sequence;
mod template;
mod tokenizer;
mod tools;
mod worker;

use std::path::Path;

use ann_llm::{ChatModel, ChatRequest, ChatResponse, LlmError, Message};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

pub use engine::{ModelInfo, PromptTokens};
pub use error::LocalError;
pub use pin::{
    MODEL_ENV, PINNED_FILE_NAME, PINNED_REQUIREMENT, PINNED_SHA256, PINNED_SIZE, pinned_model_path, sha256_file,
    verify_file,
};
pub use sampling::sample_seed;
pub use template::{CHATML_TEMPLATE, ChatTemplate, RenderedPrompt};
pub use worker::DecodeStats;

#[cfg(doc)]
use ann_llm::ResponseFormat;

use engine::Engine;
use tokenizer::GgufTokenizer;

/// Settings of the embedded model.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// Completion length when a request sets no `max_tokens`.
    pub default_max_tokens: u32,
    /// Temperature when a request sets none (0 = greedy).
    pub default_temperature: f32,
    /// Seed when a request sets none.
    pub default_seed: u64,
    /// Cap on the context window (the file's own applies too).
    pub context_length: Option<usize>,
    /// Requests that may wait for the worker before callers wait to enqueue.
    pub queue_capacity: usize,
    /// Prompt tokens of shared-prefix KV snapshots kept (about 46 KB each for SmolLM2-135M); 0 turns
    /// the cache off.
    pub prefix_cache_tokens: usize,
    /// Keep a dequantized f32 copy of the weights (about 4 bytes a parameter, ~425 MB for SmolLM2-135M)
    /// for prompt chunks of 16 tokens or more, which then run as dense matrix products, each chunk
    /// on its own. On by default, for the answers' sake: the 8-bit path quantizes the prompt's
    /// activations too, and the 135M model's answers get worse (the answer-format job's backward
    /// step was accepted on 1 of 5 seeds with it off, 4 of 5 with it on). Off saves the copy's
    /// memory and, with AVX-512 VNNI, prefills faster.
    pub dense_prefill: bool,
    /// Requantize weights stored in block formats that candle has no SIMD dot product for (Q4_1,
    /// Q5_0, Q5_1; the pinned model is Q4_1) to Q8_0 at load: generation runs several times faster
    /// through those projections, at the cost of about twice their memory and a rounding step far
    /// below the 4-bit format's own.
    pub requantize_q8: bool,
    /// Most requests decoded together: concurrent requests share each forward pass (one token
    /// each), and each gets the answer it would get alone. 1 answers one request at a time.
    pub max_batch: usize,
    /// On CPUs with AVX-512 VNNI, pad 8-bit projections whose input width is not a multiple of 256
    /// (SmolLM2's 576) with zero blocks, so that candle runs them on its VNNI kernel instead of a
    /// 256-bit dot product per row and column. Activations are then quantized in blocks of 256.
    pub vnni_padding: bool,
    /// Keep generating past the end-of-turn token, up to `max_tokens` (for benchmarks that must
    /// generate an exact number of tokens, as llama.cpp's `ignore_eos`); off by default.
    pub ignore_end_of_turn: bool,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            default_max_tokens: 512,
            default_temperature: 0.0,
            default_seed: 0,
            context_length: None,
            queue_capacity: 64,
            prefix_cache_tokens: 8192,
            dense_prefill: true,
            requantize_q8: true,
            max_batch: 8,
            vnni_padding: true,
            ignore_end_of_turn: false,
        }
    }
}

enum Job {
    Complete(Box<ChatRequest>, oneshot::Sender<Result<ChatResponse, LlmError>>),
    CountPrompt(Vec<Message>, oneshot::Sender<Result<PromptTokens, LlmError>>),
}

/// The embedded model behind [`ChatModel`]; share it through an `Arc` (one worker thread per instance,
/// which decodes concurrent requests together).
pub struct LocalModel {
    jobs: mpsc::Sender<Job>,
    info: ModelInfo,
    tokenizer: GgufTokenizer,
    numerics: String,
    counters: std::sync::Arc<worker::Counters>,
}

/// Bumped whenever a change of the engine changes its outputs (the order or precision of its
/// arithmetic), so that cached answers of an older engine are never served as this one's.
const ENGINE_REVISION: u32 = 4;

impl LocalModel {
    /// Open `path` after checking its sha256 against `expected_sha256`; a missing or corrupt file is
    /// an error naming the path and the expected checksum.
    pub fn open_verified(path: &Path, expected_sha256: &str, config: LocalConfig) -> Result<Self, LocalError> {
        let sha = verify_file(path, expected_sha256)?;
        Self::start(path, sha, config)
    }

    /// Open the pinned SmolLM2 file at `path`, checking its checksum.
    pub fn open_pinned(path: &Path, config: LocalConfig) -> Result<Self, LocalError> {
        Self::open_verified(path, PINNED_SHA256, config)
    }

    /// Open any llama-architecture GGUF file (its sha256 still names it in [`ChatModel::identity`]).
    pub fn open(path: &Path, config: LocalConfig) -> Result<Self, LocalError> {
        if !path.is_file() {
            return Err(LocalError::Missing { path: path.to_path_buf(), expected_sha256: "(any)".into() });
        }
        let sha = sha256_file(path)?;
        Self::start(path, sha, config)
    }

    fn start(path: &Path, sha256: String, config: LocalConfig) -> Result<Self, LocalError> {
        let capacity = config.queue_capacity.max(1);
        let numerics = format!(
            "e{ENGINE_REVISION}{}{}{}",
            if config.dense_prefill { "-dense" } else { "" },
            if config.requantize_q8 { "-q8" } else { "" },
            if config.vnni_padding && llama::vnni_available() { "-vnni" } else { "" },
        );
        let numerics = if config.ignore_end_of_turn { numerics + "-no-eot" } else { numerics };
        let max_batch = config.max_batch;
        let engine = Engine::load(path, sha256, config)?;
        let info = engine.info().clone();
        let tokenizer = engine.tokenizer().clone();
        let (jobs, rx) = mpsc::channel::<Job>(capacity);
        let counters = std::sync::Arc::new(worker::Counters::default());
        let shared = counters.clone();
        std::thread::Builder::new()
            .name(format!("ann-llm-local:{}", info.file_name))
            // Ends when every LocalModel handle (every sender) is gone.
            .spawn(move || worker::run(engine, rx, max_batch, shared))
            .map_err(|e| LocalError::Runtime(format!("starting the model worker thread: {e}")))?;
        Ok(Self { jobs, info, tokenizer, numerics, counters })
    }

    /// The model file's name, checksum, context window and vocabulary size.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// How the worker has decoded so far (forward passes, tokens, the largest batch).
    pub fn decode_stats(&self) -> DecodeStats {
        self.counters.snapshot()
    }

    /// Tokens of `text` as the model sees it (special tokens such as `<|im_end|>` recognised).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        self.tokenizer.encode(text)
    }

    /// Text of `ids`, special tokens left out.
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.tokenizer.decode(ids)
    }

    /// Text of `ids` with special tokens written out (a rendered prompt, as another engine would
    /// read it).
    pub fn detokenize_special(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.tokenizer.decode_special(ids)
    }

    /// The rendered, tokenized prompt of `messages` (what `usage.prompt_tokens` counts).
    pub async fn prompt_tokens(&self, messages: &[Message]) -> Result<PromptTokens, LlmError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::CountPrompt(messages.to_vec(), tx), rx).await
    }

    async fn submit<T>(&self, job: Job, rx: oneshot::Receiver<Result<T, LlmError>>) -> Result<T, LlmError> {
        let gone = || LlmError::Backend("the embedded model's worker thread has stopped".into());
        self.jobs.send(job).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// Run `f`, turning a panic into an error: model output and runtime faults never bring a run down.
fn guarded<T>(f: impl FnOnce() -> Result<T, LlmError>) -> Result<T, LlmError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(LlmError::Backend(format!("the embedded model panicked: {why}")))
    })
}

#[async_trait]
impl ChatModel for LocalModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Complete(Box::new(request.clone()), tx), rx).await
    }

    /// `local:<file name>:<first 16 hex digits of its sha256>:<numerics>`, where the numerics name
    /// the engine revision and the options that change answers (`e4-dense-q8-vnni` by default on a CPU with AVX-512 VNNI).
    fn identity(&self) -> String {
        let sha = &self.info.sha256[..16.min(self.info.sha256.len())];
        format!("local:{}:{sha}:{}", self.info.file_name, self.numerics)
    }
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
