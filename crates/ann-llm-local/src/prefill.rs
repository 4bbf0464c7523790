//! Prompt prefill: the new tokens of one or more prompts in one forward pass.
//!
//! Every prompt is split into chunks (where its messages end, see `Engine::prompt_tokens`); the
//! projections, norms and rotary embedding run over the rows of every chunk of every prompt at
//! once (each row's result is independent of the others), while attention runs per chunk, over the
//! chunk's own cached positions, with the shapes a chunk run alone would have. So a prompt's keys,
//! values and logits are bit-identical whether its chunks run together, one after another, resumed
//! from a cached prefix, or beside other prompts; and the weights are read once for them all.

use candle_core::{DType, Device, IndexOp, Result, Tensor};

use crate::attention::{Chunk, Heads, attend};
use crate::linear::forward_prefill;
use crate::llama::{KvCache, Llama};

/// One prompt's part of a prefill: `tokens` after the positions in `cache`, split at `ends`
/// (offsets into `tokens`, increasing, the last one `tokens.len()`).
pub struct PrefillPart<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
    pub ends: &'a [usize],
}

impl Llama {
    /// Run every part's tokens after its cached positions (extending its cache) and return, per
    /// part, the logits of the next token after each of its ends. On an error every cache keeps
    /// exactly the positions it had.
    pub fn prefill(&self, parts: &mut [PrefillPart<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let max = self.shape.max_positions;
        for p in parts.iter() {
            let (seq, pos) = (p.tokens.len(), p.cache.len);
            if seq == 0 || pos + seq > max {
                candle_core::bail!("{seq} tokens at position {pos} do not fit {max} positions");
            }
            let increasing = p.ends.windows(2).all(|w| w[0] < w[1]) && p.ends.first().is_some_and(|&e| e > 0);
            if !increasing || p.ends.last() != Some(&seq) {
                candle_core::bail!("chunk ends {:?} do not split {seq} tokens", p.ends);
            }
        }
        let positions: Vec<usize> = parts.iter().map(|p| p.cache.len).collect();
        let result = self.prefill_inner(parts);
        for (p, &pos) in parts.iter_mut().zip(&positions) {
            match result {
                Ok(_) => p.cache.len = pos + p.tokens.len(),
                Err(_) => self.truncate(p.cache, pos),
            }
        }
        result
    }

    fn prefill_inner(&self, parts: &mut [PrefillPart<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let s = &self.shape;
        let (n_kv, d) = (s.n_kv_head, s.head_dim);
        let kv_width = n_kv * d;
        let device = &Device::Cpu;
        let tokens: Vec<u32> = parts.iter().flat_map(|p| p.tokens.iter().copied()).collect();
        let at: Vec<u32> =
            parts.iter().flat_map(|p| (p.cache.len..p.cache.len + p.tokens.len()).map(|i| i as u32)).collect();
        let rows = tokens.len();
        let mut x = self.embedding(&Tensor::new(tokens.as_slice(), device)?)?;
        let at = Tensor::new(at.as_slice(), device)?;
        let (cos, sin) = (self.cos.index_select(&at, 0)?, self.sin.index_select(&at, 0)?);
        let heads = |t: Tensor, n: usize| t.reshape((1, rows, n, d))?.transpose(1, 2)?.contiguous();
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        // Each chunk: (part, first row of the part, chunk start, chunk end), offsets within the part.
        let mut chunks = Vec::new();
        let mut first = 0;
        for (i, p) in parts.iter_mut().enumerate() {
            p.cache.layers.resize_with(self.layers.len(), Default::default);
            let mut start = 0;
            for &end in p.ends {
                chunks.push((i, first, start, end));
                start = end;
            }
            first += p.tokens.len();
        }
        for (li, layer) in self.layers.iter().enumerate() {
            let h = crate::ops::rms_norm(&x, &layer.attn_norm, s.eps as f32)?;
            let [q, k, v] = forward_prefill([&layer.wq, &layer.wk, &layer.wv], &h)?;
            let q = crate::ops::rope_i(&heads(q, s.n_head)?, &cos, &sin)?;
            let k = crate::ops::rope_i(&heads(k, n_kv)?, &cos, &sin)?;
            // Appended in the cache's `[position][kv head][dim]` layout (the value projection's
            // rows already are).
            let (k, v) = (flat(&k.transpose(1, 2)?.contiguous()?)?, flat(&v)?);
            let mut row = 0;
            for p in parts.iter_mut() {
                let (kc, vc) = &mut p.cache.layers[li];
                let span = row * kv_width..(row + p.tokens.len()) * kv_width;
                kc.extend_from_slice(&k[span.clone()]);
                vc.extend_from_slice(&v[span]);
                row += p.tokens.len();
            }
            let q = flat(&q)?;
            let attending: Vec<Chunk<'_>> = chunks
                .iter()
                .map(|&(i, first, start, end)| {
                    let (keys, values) = &parts[i].cache.layers[li];
                    Chunk { first: first + start, seq: end - start, pos: parts[i].cache.len + start, keys, values }
                })
                .collect();
            let y = attend(&q, rows, &attending, Heads { n_head: s.n_head, n_kv, d });
            let y = Tensor::from_vec(y, (1, rows, s.dim), device)?;
            let [out] = forward_prefill([&layer.wo], &y)?;
            x = (x + out)?;
            let h = crate::ops::rms_norm(&x, &layer.ffn_norm, s.eps as f32)?;
            let [gate, up] = forward_prefill([&layer.gate, &layer.up], &h)?;
            let [down] = forward_prefill([&layer.down], &(candle_nn::ops::silu(&gate)? * up)?)?;
            x = (x + down)?;
        }
        // Logits after each chunk's last row (the output projection is quantized: row by row).
        let last: Vec<u32> = chunks.iter().map(|&(_, first, _, end)| (first + end - 1) as u32).collect();
        let x = x.i(0)?.index_select(&Tensor::new(last.as_slice(), device)?, 0)?.unsqueeze(0)?;
        let x = crate::ops::rms_norm(&x, &self.norm, s.eps as f32)?;
        let logits = self.output.forward_quantized(&x)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let mut rows = logits.chunks_exact(logits.len() / chunks.len()).map(<[f32]>::to_vec);
        Ok(parts.iter().map(|p| rows.by_ref().take(p.ends.len()).collect()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::WeightPlan;

    /// The pinned model (`$ANN_CACHE_DIR` or `<workspace>/.cache`), read as the engine reads it.
    fn model() -> (Llama, Vec<u32>) {
        let cache = std::env::var_os("ANN_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
        let path = crate::pinned_model_path(&cache);
        let mut file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\nRun `cargo xtask fetch-model` first.", path.display()));
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
        let plan =
            WeightPlan { dense_prefill: false, requantize_q8: true, pad_for_vnni: crate::llama::vnni_available() };
        let text = "<|im_start|>user\nThe committee reviewed the quarterly report on river water quality and farming rules. What did it \
                    find about nitrates?<|im_end|>\n<|im_start|>assistant\n";
        let tokens = crate::tokenizer::GgufTokenizer::from_gguf(&content).unwrap().encode(text).unwrap();
        (Llama::from_gguf(&content, &mut file, 256, plan).unwrap(), tokens)
    }

    fn argmax(l: &[f32]) -> usize {
        (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap()
    }

    #[test]
    fn prefill_agrees_with_decoding_and_is_bit_identical_however_prompts_are_grouped() {
        let (model, prompt) = model();
        assert!(prompt.len() >= 30, "{} tokens", prompt.len());
        let prompt = &prompt[..30];
        let other: Vec<u32> = (0..23u32).map(|i| 300 + (i * 104_729) % 30_000).collect();
        let ends = [9, 20, 30];

        // Alone, in one pass.
        let mut alone = KvCache::default();
        let logits = model.prefill(&mut [PrefillPart { tokens: prompt, cache: &mut alone, ends: &ends }]).unwrap();
        assert_eq!(alone.len(), 30);
        assert_eq!(logits[0].len(), 3);

        // One token at a time through the decoding path: the same predictions, close logits. Not
        // equal: the two attention implementations round differently, and a last-bit difference
        // that moves an 8-bit activation to the next step grows through the layers.
        let mut decoded = KvCache::default();
        let mut stepwise = Vec::new();
        for &t in prompt {
            stepwise.push(model.forward_decode(&[t], &mut [&mut decoded]).unwrap().pop().unwrap());
        }
        for (&end, l) in ends.iter().zip(&logits[0]) {
            let d = &stepwise[end - 1];
            assert_eq!(argmax(l), argmax(d), "after {end} tokens");
            let mean = l.iter().zip(d).map(|(a, b)| (a - b).abs()).sum::<f32>() / l.len() as f32;
            let scale = d.iter().map(|a| a.abs()).sum::<f32>() / d.len() as f32;
            assert!(mean < 0.25 * scale, "after {end} tokens the logits differ by {mean} on average (scale {scale})");
        }

        // Chunk by chunk, resumed from the first chunk, and beside another prompt: bit-identical.
        let mut resumed = KvCache::default();
        let first =
            model.prefill(&mut [PrefillPart { tokens: &prompt[..9], cache: &mut resumed, ends: &[9] }]).unwrap();
        assert_eq!(first[0][0], logits[0][0]);
        let rest =
            model.prefill(&mut [PrefillPart { tokens: &prompt[9..], cache: &mut resumed, ends: &[11, 21] }]).unwrap();
        assert_eq!(rest[0], logits[0][1..]);
        let (mut a, mut b) = (KvCache::default(), KvCache::default());
        let both = model
            .prefill(&mut [
                PrefillPart { tokens: &other, cache: &mut b, ends: &[23] },
                PrefillPart { tokens: prompt, cache: &mut a, ends: &ends },
            ])
            .unwrap();
        assert_eq!(both[1], logits[0]);
        for cache in [&resumed, &a] {
            assert!(cache.layers == alone.layers, "the keys and values differ");
        }
        let mut b_alone = KvCache::default();
        let b_logits = model.prefill(&mut [PrefillPart { tokens: &other, cache: &mut b_alone, ends: &[23] }]).unwrap();
        assert_eq!(both[0], b_logits[0]);

        // A snapshot of a prefix continues exactly as the full cache does.
        let mut from_prefix = alone.prefix(20);
        let cont = model.prefill(&mut [PrefillPart { tokens: &prompt[20..], cache: &mut from_prefix, ends: &[10] }]);
        assert_eq!(cont.unwrap()[0][0], logits[0][2]);

        // Bad splits are errors that leave the cache as it was.
        let mut cache = alone.prefix(9);
        let bad = model.prefill(&mut [PrefillPart { tokens: &prompt[9..], cache: &mut cache, ends: &[5, 3, 21] }]);
        assert!(bad.unwrap_err().to_string().contains("do not split"));
        assert_eq!(cache.len(), 9);
        let too_long = vec![1u32; 300];
        let err = model.prefill(&mut [PrefillPart { tokens: &too_long, cache: &mut cache, ends: &[300] }]).unwrap_err();
        assert!(err.to_string().contains("do not fit 256 positions"), "{err}");
    }
}
