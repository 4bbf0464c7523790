//! The synchronous engine: prompt rendering, prefill with a shared-prefix KV cache, and the decoding loop.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use ann_llm::{ChatRequest, ChatResponse, FinishReason, LlmError, ResponseFormat};
use candle_core::quantized::gguf_file;
use llguidance::api::TopLevelGrammar;
use llguidance::{JsonCompileOptions, Matcher, ParserFactory};

use crate::llama::{KvCache, Llama, WeightPlan, vnni_available};
use crate::prefill::PrefillPart;
use crate::prefix_cache::PrefixCache;
use crate::sampling::Sampler;
use crate::sequence::{Sequence, Step};
use crate::template::{CHATML_TEMPLATE, ChatTemplate};
use crate::tokenizer::GgufTokenizer;
use crate::{LocalConfig, LocalError};

/// What the engine knows about its model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// File name of the GGUF file.
    pub file_name: String,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// `general.name` from the metadata, else the file stem.
    pub name: String,
    /// Context window in tokens (prompt and completion together).
    pub context_length: usize,
    /// Width of the logits (vocabulary size).
    pub vocab_size: usize,
}

/// Most prompt tokens run through the model at once.
const MAX_CHUNK: usize = 512;

/// A request before its prefill: its prompt, the chunk ends past its cached prefix (offsets from
/// it) and its sequence holding that prefix.
struct Prepared {
    tokens: Vec<u32>,
    ends: Vec<usize>,
    sequence: Sequence,
}

/// One loaded model; not thread-safe by itself (the worker owns it).
pub struct Engine {
    model: Llama,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    info: ModelInfo,
    config: LocalConfig,
    cache: PrefixCache,
    factory: Option<ParserFactory>,
}

/// A tokenized prompt and the token counts at which the prefill is split (the ends of whole messages,
/// then the end of the prompt). The split depends on the prompt alone, so a cached prefix gives
/// bit-identical results to a cold run.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptTokens {
    pub tokens: Vec<u32>,
    pub chunk_ends: Vec<usize>,
}

impl Engine {
    /// Load `path` (whose sha256 the caller computed) as a llama-architecture GGUF model.
    pub fn load(path: &Path, sha256: String, config: LocalConfig) -> Result<Self, LocalError> {
        let format = |reason: String| LocalError::Format { path: path.to_path_buf(), reason };
        let mut file = File::open(path).map_err(|source| LocalError::Io { path: path.to_path_buf(), source })?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| format(format!("not a GGUF file: {e}")))?;
        let meta_str = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
        let arch = meta_str("general.architecture").unwrap_or_default();
        if arch != "llama" {
            return Err(format(format!("architecture `{arch}` is not supported (supported: llama)")));
        }
        let tokenizer = GgufTokenizer::from_gguf(&content)?;
        let token_text = |id: Option<u32>| id.and_then(|id| tokenizer.inner.id_to_token(id)).unwrap_or_default();
        let eos_id = content.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok());
        let template = ChatTemplate::new(
            meta_str("tokenizer.chat_template").as_deref().unwrap_or(CHATML_TEMPLATE),
            &token_text(tokenizer.bos_id),
            &token_text(eos_id),
        )?;
        let file_context =
            content.metadata.get("llama.context_length").and_then(|v| v.to_u32().ok()).unwrap_or(2048) as usize;
        let context_length = file_context.min(config.context_length.unwrap_or(usize::MAX)).max(1);
        let vocab_size = content
            .metadata
            .get("llama.vocab_size")
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .unwrap_or_else(|| tokenizer.vocab_size());
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = meta_str("general.name")
            .unwrap_or_else(|| path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let plan = WeightPlan {
            dense_prefill: config.dense_prefill,
            requantize_q8: config.requantize_q8,
            pad_for_vnni: config.vnni_padding && vnni_available(),
        };
        let model = Llama::from_gguf(&content, &mut file, context_length, plan).map_err(|e| format(e.to_string()))?;
        let cache = PrefixCache::new(config.prefix_cache_tokens);
        let info = ModelInfo { file_name, sha256, name, context_length, vocab_size };
        Ok(Self { model, tokenizer, template, info, config, cache, factory: None })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// Render and tokenize a conversation, with the assistant's generation prompt at the end.
    pub fn prompt_tokens(&self, messages: &[ann_llm::Message]) -> Result<PromptTokens, LocalError> {
        let rendered = self.template.render(messages)?;
        let bos = self.tokenizer.bos_id.filter(|_| self.tokenizer.add_bos);
        let encode = |text: &str| -> Result<Vec<u32>, LocalError> {
            let mut ids = self.tokenizer.encode(text)?;
            if let Some(bos) = bos
                && ids.first() != Some(&bos)
            {
                ids.insert(0, bos);
            }
            Ok(ids)
        };
        let tokens = encode(&rendered.text)?;
        let mut chunk_ends = Vec::new();
        for &end in &rendered.message_ends {
            let prefix = encode(&rendered.text[..end])?;
            if !prefix.is_empty()
                && prefix.len() < tokens.len()
                && tokens.starts_with(&prefix)
                && chunk_ends.last().is_none_or(|&l| prefix.len() > l)
            {
                chunk_ends.push(prefix.len());
            }
        }
        chunk_ends.push(tokens.len());
        // Long stretches are prefilled in pieces, which bounds the attention matrices' memory.
        let mut bounded = Vec::with_capacity(chunk_ends.len());
        let mut start = 0;
        for end in chunk_ends {
            while end - start > MAX_CHUNK {
                start += MAX_CHUNK;
                bounded.push(start);
            }
            bounded.push(end);
            start = end;
        }
        Ok(PromptTokens { tokens, chunk_ends: bounded })
    }

    fn matcher(&mut self, format: &ResponseFormat) -> Result<Option<Matcher>, LocalError> {
        let mut schema = match format {
            ResponseFormat::Text => return Ok(None),
            ResponseFormat::JsonObject => serde_json::json!({"type": "object"}),
            ResponseFormat::JsonSchema { schema, .. } => schema.clone(),
        };
        // Compact separators and no free whitespace: a small model cannot then loop on blank lines.
        if let Some(obj) = schema.as_object_mut()
            && !obj.contains_key("x-guidance")
        {
            let options = JsonCompileOptions {
                whitespace_flexible: false,
                item_separator: ", ".into(),
                key_separator: ": ".into(),
                ..Default::default()
            };
            options.apply_to(&mut schema);
        }
        if self.factory.is_none() {
            let env = self.tokenizer.tok_env(self.info.vocab_size)?;
            let mut factory = ParserFactory::new_simple(&env).map_err(|e| LocalError::Grammar(e.to_string()))?;
            factory.quiet();
            self.factory = Some(factory);
        }
        let factory = self.factory.as_ref().expect("just built");
        let parser = factory.create_parser(TopLevelGrammar::from_json_schema(schema));
        let matcher = Matcher::new(parser);
        if let Some(err) = matcher.get_error() {
            return Err(LocalError::Grammar(format!("the JSON schema cannot be used: {err}")));
        }
        Ok(Some(matcher))
    }

    /// Prefill several requests' prompts together (each resuming from its longest cached prefix)
    /// and return each ready to decode, or its error: one forward pass reads the weights once for
    /// every prompt, and each gets exactly the state it gets alone (see `prefill.rs`).
    pub fn start_many(&mut self, reqs: &[&ChatRequest]) -> Vec<Result<Sequence, LlmError>> {
        let mut prepared: Vec<Result<Prepared, LlmError>> = reqs.iter().map(|r| self.prepare(r)).collect();
        let mut ready: Vec<&mut Prepared> = prepared.iter_mut().filter_map(|p| p.as_mut().ok()).collect();
        // With f32 weights, which projection runs depends on a chunk's row count: each chunk then
        // runs alone, so that a resumed prompt computes exactly what a cold one does.
        let outcome = if self.config.dense_prefill {
            ready.iter_mut().try_for_each(|p| {
                let ends = p.ends.clone();
                let mut start = 0;
                for end in ends {
                    self.prefill(std::slice::from_mut(p), start, end)?;
                    start = end;
                }
                Ok(())
            })
        } else {
            let ends: Vec<usize> = ready.iter().map(|p| p.ends.last().copied().unwrap_or(0)).collect();
            self.prefill_all(&mut ready, &ends)
        };
        if let Err(e) = outcome {
            return reqs.iter().map(|_| Err(e.clone())).collect();
        }
        prepared.into_iter().map(|p| p.map(|p| p.sequence)).collect()
    }

    /// Run `ready[0]`'s chunks ending after `start` up to `end` (both offsets past its cached
    /// prefix).
    fn prefill(&mut self, ready: &mut [&mut Prepared], start: usize, end: usize) -> Result<(), LlmError> {
        let p = &mut ready[0];
        let ends: Vec<usize> = p.ends.iter().filter(|&&e| e > start && e <= end).map(|e| e - start).collect();
        let base = p.sequence.cached_tokens + start;
        let mut parts =
            [PrefillPart { tokens: &p.tokens[base..base + end - start], cache: &mut p.sequence.kv, ends: &ends }];
        let logits = self.model.prefill(&mut parts).map_err(LocalError::from)?;
        let p = &mut ready[0];
        self.keep(p, &ends.iter().map(|e| e + base).collect::<Vec<_>>(), logits.into_iter().next().unwrap_or_default());
        Ok(())
    }

    /// Run every prompt's uncached tokens (up to `ends[i]` past its cached prefix) in one pass.
    fn prefill_all(&mut self, ready: &mut [&mut Prepared], ends: &[usize]) -> Result<(), LlmError> {
        let todo: Vec<usize> = (0..ready.len()).filter(|&i| ends[i] > 0).collect();
        if todo.is_empty() {
            return Ok(());
        }
        let logits = {
            let mut parts: Vec<PrefillPart<'_>> = ready
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| ends[*i] > 0)
                .map(|(_, p)| {
                    let base = p.sequence.cached_tokens;
                    PrefillPart { tokens: &p.tokens[base..], cache: &mut p.sequence.kv, ends: &p.ends }
                })
                .collect();
            self.model.prefill(&mut parts).map_err(LocalError::from)?
        };
        for (i, logits) in todo.into_iter().zip(logits) {
            let p = &mut ready[i];
            let absolute: Vec<usize> = p.ends.iter().map(|e| e + p.sequence.cached_tokens).collect();
            self.keep(p, &absolute, logits);
        }
        Ok(())
    }

    /// After a prefill up to `ends` (absolute token counts) with these logits at each: the
    /// sequence takes the last logits, and the prefix cache a snapshot at each end.
    fn keep(&mut self, p: &mut Prepared, ends: &[usize], logits: Vec<Vec<f32>>) {
        let mut kept = Vec::new();
        for (&end, l) in ends.iter().zip(logits) {
            if self.cache.wants(&p.tokens[..end]) {
                kept.push((end, l.clone()));
            }
            p.sequence.logits = l;
        }
        self.cache.insert(&p.tokens, &p.sequence.kv, kept);
    }

    /// Render, tokenize and check one request, with its cached prefix (if any) in its sequence.
    fn prepare(&mut self, req: &ChatRequest) -> Result<Prepared, LlmError> {
        let started = Instant::now();
        let with_tools = crate::tools::active(req);
        let prompt = if with_tools {
            self.prompt_tokens(&crate::tools::prompt_messages(req))?
        } else {
            self.prompt_tokens(&req.messages)?
        };
        let context = self.info.context_length;
        let prompt_len = prompt.tokens.len();
        if prompt_len >= context {
            return Err(LlmError::ContextOverflow { prompt_tokens: prompt_len, context });
        }
        let matcher = if with_tools {
            let schema = crate::tools::answer_schema(req);
            self.matcher(&ResponseFormat::JsonSchema { name: "tool_calls".into(), schema, strict: true })?
        } else {
            self.matcher(&req.response_format)?
        };

        // Resume from the longest cached prefix that ends where one of our chunks ends.
        let (kv, logits) = self.cache.lookup(&prompt.tokens, &prompt.chunk_ends).unwrap_or_default();
        let cached_tokens = kv.len();
        let ends: Vec<usize> =
            prompt.chunk_ends.iter().filter(|&&e| e > cached_tokens).map(|e| e - cached_tokens).collect();

        let temperature = req.temperature.unwrap_or(self.config.default_temperature);
        let sampler = Sampler::new(
            req.seed.unwrap_or(self.config.default_seed),
            req.sample_index,
            temperature,
            req.top_p.unwrap_or(1.0),
        );
        let sequence = Sequence {
            kv,
            logits,
            matcher,
            sampler,
            stop: req.stop.clone(),
            max_new: req.max_tokens.map(|m| m as usize).unwrap_or(self.config.default_max_tokens as usize),
            prompt_len,
            cached_tokens,
            context,
            started,
            generated: Vec::new(),
            text: String::new(),
            tool_request: with_tools.then(|| Box::new(req.clone())),
        };
        Ok(Prepared { tokens: prompt.tokens, ends, sequence })
    }

    /// The next step of `seq` (see [`Sequence::next`]).
    pub fn next(&self, seq: &mut Sequence) -> Result<Step, LlmError> {
        static NONE: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
        seq.next(&self.tokenizer, if self.config.ignore_end_of_turn { &NONE } else { &self.tokenizer.stop_ids })
    }

    /// The response of a finished sequence.
    pub fn finish(&self, seq: Sequence, finish_reason: FinishReason) -> ChatResponse {
        seq.finish(finish_reason, &self.info.name)
    }

    /// Run one token through the model for each sequence, all in one batch: each sequence's logits
    /// are the same as if it ran alone.
    pub fn feed(&self, batch: &mut [(&mut Sequence, u32)]) -> Result<(), LlmError> {
        let tokens: Vec<u32> = batch.iter().map(|(_, t)| *t).collect();
        let mut caches: Vec<&mut KvCache> = batch.iter_mut().map(|(s, _)| &mut s.kv).collect();
        let logits = self.model.forward_decode(&tokens, &mut caches).map_err(LocalError::from)?;
        for ((seq, _), l) in batch.iter_mut().zip(logits) {
            seq.logits = l;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ann_llm::Message;

    fn engine() -> Engine {
        let cache = std::env::var_os("ANN_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
        let path = crate::pinned_model_path(&cache);
        Engine::load(&path, String::new(), LocalConfig::default())
            .unwrap_or_else(|e| panic!("{e}\nRun `cargo xtask fetch-model` first."))
    }

    #[test]
    fn requests_started_together_get_the_state_they_get_alone_or_from_the_prefix_cache() {
        let ask =
            |q: &str| ChatRequest::new("local", vec![Message::system("You answer in one word."), Message::user(q)]);
        let (a, b) = (ask("What colour is the sky?"), ask("What colour is grass on a sunny day?"));
        let bad = ChatRequest::new("local", vec![Message::user("x".repeat(40_000))]);

        // Together, with a request that cannot start: one prefill for the two that can.
        let mut together = engine();
        let started = together.start_many(&[&a, &bad, &b]);
        assert!(matches!(started[1], Err(LlmError::ContextOverflow { .. })), "{:?}", started[1].as_ref().err());
        let (ta, tb) = (started[0].as_ref().unwrap(), started[2].as_ref().unwrap());
        assert_eq!((ta.cached_tokens, tb.cached_tokens), (0, 0));

        // One after another: the second resumes from the first's system-prompt snapshot.
        let mut alone = engine();
        let sa = alone.start_many(&[&a]).pop().unwrap().unwrap();
        let sb = alone.start_many(&[&b]).pop().unwrap().unwrap();
        assert!(sb.cached_tokens > 0 && sb.cached_tokens < sb.prompt_len, "{} of {}", sb.cached_tokens, sb.prompt_len);
        for (x, y) in [(ta, &sa), (tb, &sb)] {
            assert_eq!(x.logits, y.logits, "the next token's logits differ");
            assert!(x.kv.layers == y.kv.layers && x.kv.len() == x.prompt_len, "the keys and values differ");
        }
        // And again: the whole prompt comes from the cache.
        let again = alone.start_many(&[&a]).pop().unwrap().unwrap();
        assert_eq!((again.cached_tokens, &again.logits), (again.prompt_len, &sa.logits));
    }
}
