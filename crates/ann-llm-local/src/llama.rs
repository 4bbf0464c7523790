//! A llama-architecture transformer over candle's public ops, with a KV cache the engine can snapshot.
//!
//! The projections (`linear.rs`) run on 8-bit weights; decoding is here, prompts are prefilled in
//! `prefill.rs`. Every operation works row by row, so a token's result never depends on the other
//! rows it is computed with.

use candle_core::quantized::QMatMul;
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Result, Tensor};
use std::io::{Read, Seek};

use crate::linear::{Linear, forward_fused};
pub use crate::linear::{WeightPlan, vnni_available};

/// Dot product with eight independent accumulators, so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Attention of one new position over every cached one, read in place from the cache (copying the
/// keys and values per token would cost more than the arithmetic). `q` and `out` are `[head][dim]`,
/// `k` and `v` are `[position][kv head][dim]`; query head `h` reads kv head `h / (heads / kv heads)`.
fn attend_one(q: &[f32], k: &[f32], v: &[f32], n_kv: usize, d: usize, scale: f32, out: &mut [f32]) {
    let n_head = q.len() / d;
    let rep = n_head / n_kv;
    let len = k.len() / (n_kv * d);
    let mut scores = vec![0f32; n_head * len];
    for (j, row) in k.chunks_exact(n_kv * d).enumerate() {
        for (h, qh) in q.chunks_exact(d).enumerate() {
            let g = h / rep;
            scores[h * len + j] = dot(qh, &row[g * d..(g + 1) * d]) * scale;
        }
    }
    for s in scores.chunks_exact_mut(len) {
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for x in s.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        s.iter_mut().for_each(|x| *x /= sum);
    }
    out.fill(0.0);
    for (j, row) in v.chunks_exact(n_kv * d).enumerate() {
        for (h, oh) in out.chunks_exact_mut(d).enumerate() {
            let (g, p) = (h / rep, scores[h * len + j]);
            oh.iter_mut().zip(&row[g * d..(g + 1) * d]).for_each(|(o, x)| *o += p * x);
        }
    }
}

pub(crate) struct Layer {
    pub(crate) attn_norm: Tensor,
    pub(crate) wq: Linear,
    pub(crate) wk: Linear,
    pub(crate) wv: Linear,
    pub(crate) wo: Linear,
    pub(crate) ffn_norm: Tensor,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

/// The attention keys and values of every processed position: per layer, keys and values laid out
/// as `[position][kv head][head dim]`, so that new positions are appended in place.
#[derive(Clone, Default)]
pub struct KvCache {
    pub(crate) layers: Vec<(Vec<f32>, Vec<f32>)>,
    pub(crate) len: usize,
}

impl KvCache {
    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// A copy of the first `len` positions (all of them when `len` is larger).
    pub fn prefix(&self, len: usize) -> KvCache {
        let len = len.min(self.len);
        let keep = |c: &Vec<f32>| c[..c.len() / self.len.max(1) * len].to_vec();
        KvCache { layers: self.layers.iter().map(|(k, v)| (keep(k), keep(v))).collect(), len }
    }
}

/// Shape of the model, from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_layer: usize,
    pub dim: usize,
    pub eps: f64,
    pub rope_base: f32,
    pub max_positions: usize,
}

pub struct Llama {
    /// The token embeddings, quantized: rows are dequantized as they are looked up (from the output
    /// projection's weights when the two are tied, whose rows may be padded past `dim`).
    pub(crate) embed: QMatMul,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Tensor,
    pub(crate) output: Linear,
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    pub(crate) shape: LlamaShape,
}

fn meta_usize(ct: &Content, key: &str) -> Result<usize> {
    match ct.metadata.get(key) {
        Some(v) => Ok(v.to_u32()? as usize),
        None => candle_core::bail!("missing metadata {key}"),
    }
}

impl Llama {
    /// Load a llama GGUF; `max_positions` bounds the rotary tables (the context window).
    pub fn from_gguf<R: Read + Seek>(
        ct: &Content,
        reader: &mut R,
        max_positions: usize,
        plan: WeightPlan,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let n_head = meta_usize(ct, "llama.attention.head_count")?;
        let n_kv_head = meta_usize(ct, "llama.attention.head_count_kv")?;
        let n_layer = meta_usize(ct, "llama.block_count")?;
        let dim = meta_usize(ct, "llama.embedding_length")?;
        let head_dim = dim / n_head;
        let rope_dim = meta_usize(ct, "llama.rope.dimension_count").unwrap_or(head_dim);
        if rope_dim != head_dim || n_head % n_kv_head != 0 {
            candle_core::bail!("unsupported llama shape (rope dims {rope_dim}, head dim {head_dim})");
        }
        let eps =
            ct.metadata.get("llama.attention.layer_norm_rms_epsilon").map(|v| v.to_f32()).transpose()?.unwrap_or(1e-5)
                as f64;
        let rope_base = ct.metadata.get("llama.rope.freq_base").map(|v| v.to_f32()).transpose()?.unwrap_or(10_000.0);
        let mut tensor = |name: &str| ct.tensor(reader, name, &device);
        let embed_q = tensor("token_embd.weight")?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut t = |n: &str| tensor(&format!("blk.{i}.{n}.weight"));
            layers.push(Layer {
                attn_norm: t("attn_norm")?.dequantize(&device)?,
                wq: Linear::new(t("attn_q")?, plan)?,
                wk: Linear::new(t("attn_k")?, plan)?,
                wv: Linear::new(t("attn_v")?, plan)?,
                wo: Linear::new(t("attn_output")?, plan)?,
                ffn_norm: t("ffn_norm")?.dequantize(&device)?,
                gate: Linear::new(t("ffn_gate")?, plan)?,
                up: Linear::new(t("ffn_up")?, plan)?,
                down: Linear::new(t("ffn_down")?, plan)?,
            });
        }
        let norm = tensor("output_norm.weight")?.dequantize(&device)?;
        // Only the last position is projected to logits: the quantized weights suffice. Small models
        // tie the output projection to the embeddings.
        // Tied, the embeddings are looked up in the output projection's 8-bit weights: one copy.
        let (output, embed) = match tensor("output.weight") {
            Ok(q) => (Linear::new(q, WeightPlan { dense_prefill: false, ..plan })?, QMatMul::QTensor(embed_q.into())),
            Err(_) => {
                let output = Linear::new(embed_q, WeightPlan { dense_prefill: false, ..plan })?;
                let embed = output.quantized.clone();
                (output, embed)
            }
        };
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half).map(|i| 1.0 / rope_base.powf((2 * i) as f32 / head_dim as f32)).collect();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (max_positions, half), &device)?;
        let sin = Tensor::from_vec(sin, (max_positions, half), &device)?;
        let shape = LlamaShape { n_head, n_kv_head, head_dim, n_layer, dim, eps, rope_base, max_positions };
        Ok(Self { embed, layers, norm, output, cos, sin, shape })
    }

    /// The embeddings of `ids` as `[1, ids, dim]`.
    pub(crate) fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        let rows = self.embed.embedding(ids)?;
        let rows = if rows.dim(1)? > self.shape.dim { rows.narrow(1, 0, self.shape.dim)?.contiguous()? } else { rows };
        rows.unsqueeze(0)
    }

    pub(crate) fn truncate(&self, cache: &mut KvCache, pos: usize) {
        let keep = pos * self.shape.n_kv_head * self.shape.head_dim;
        cache.layers.iter_mut().for_each(|(k, v)| {
            k.truncate(keep);
            v.truncate(keep);
        });
    }

    /// One new token for each of several independent sequences (`tokens[i]` after `caches[i]`),
    /// decoded together: each projection reads its weights once for the whole batch, which is what
    /// a memory-bound decode step costs. Every operation works row by row (the quantized dot
    /// products, the norms, the rotary embedding at each row's own position, attention over each
    /// sequence's own cache), so a sequence's logits are bit-identical whatever else is in the batch.
    pub fn forward_decode(&self, tokens: &[u32], caches: &mut [&mut KvCache]) -> Result<Vec<Vec<f32>>> {
        if tokens.len() != caches.len() || tokens.is_empty() {
            candle_core::bail!("{} tokens for {} sequences", tokens.len(), caches.len());
        }
        let positions: Vec<usize> = caches.iter().map(|c| c.len).collect();
        if let Some(&p) = positions.iter().find(|&&p| p + 1 > self.shape.max_positions) {
            candle_core::bail!("a token at position {p} does not fit {} positions", self.shape.max_positions);
        }
        let result = self.decode_inner(tokens, caches, &positions);
        for (cache, &pos) in caches.iter_mut().zip(&positions) {
            match result {
                Ok(_) => cache.len = pos + 1,
                Err(_) => self.truncate(cache, pos),
            }
        }
        result
    }

    fn decode_inner(&self, tokens: &[u32], caches: &mut [&mut KvCache], positions: &[usize]) -> Result<Vec<Vec<f32>>> {
        let s = &self.shape;
        let (rows, n_kv, d) = (tokens.len(), s.n_kv_head, s.head_dim);
        let device = &Device::Cpu;
        let ids = Tensor::new(tokens, device)?;
        let mut x = self.embedding(&ids)?;
        let at: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let at = Tensor::new(at.as_slice(), device)?;
        let (cos, sin) = (self.cos.index_select(&at, 0)?, self.sin.index_select(&at, 0)?);
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        let heads = |t: Tensor, n: usize| t.reshape((1, rows, n, d))?.transpose(1, 2)?.contiguous();
        // Back to one row per sequence: `[row][head][dim]`.
        let rows_of = |t: &Tensor| t.transpose(1, 2)?.contiguous()?.flatten_all()?.to_vec1::<f32>();
        for cache in caches.iter_mut() {
            cache.layers.resize_with(self.layers.len(), Default::default);
        }
        let kv_width = n_kv * d;
        for (li, layer) in self.layers.iter().enumerate() {
            let h = crate::ops::rms_norm(&x, &layer.attn_norm, s.eps as f32)?;
            let [q, k, v] = forward_fused([&layer.wq, &layer.wk, &layer.wv], &h)?;
            let q = rows_of(&crate::ops::rope_i(&heads(q, s.n_head)?, &cos, &sin)?)?;
            let k = rows_of(&crate::ops::rope_i(&heads(k, n_kv)?, &cos, &sin)?)?;
            let v = v.flatten_all()?.to_vec1::<f32>()?;
            let mut out = vec![0f32; rows * s.dim];
            for (r, cache) in caches.iter_mut().enumerate() {
                let (kc, vc) = &mut cache.layers[li];
                kc.extend_from_slice(&k[r * kv_width..(r + 1) * kv_width]);
                vc.extend_from_slice(&v[r * kv_width..(r + 1) * kv_width]);
                let q = &q[r * s.dim..(r + 1) * s.dim];
                attend_one(q, kc, vc, n_kv, d, scale, &mut out[r * s.dim..(r + 1) * s.dim]);
            }
            let y = Tensor::from_vec(out, (1, rows, s.dim), device)?;
            x = (x + layer.wo.forward_quantized(&y)?)?;
            let h = crate::ops::rms_norm(&x, &layer.ffn_norm, s.eps as f32)?;
            let [gate, up] = forward_fused([&layer.gate, &layer.up], &h)?;
            let act = (candle_nn::ops::silu(&gate)? * up)?;
            x = (x + layer.down.forward_quantized(&act)?)?;
        }
        let x = crate::ops::rms_norm(&x, &self.norm, s.eps as f32)?;
        let logits = self.output.forward_quantized(&x)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(logits.chunks_exact(logits.len() / rows).map(<[f32]>::to_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_with_a_remainder() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    /// Softmax attention written out naively, one query head at a time.
    fn reference(q: &[f32], k: &[f32], v: &[f32], n_kv: usize, d: usize, scale: f32) -> Vec<f32> {
        let n_head = q.len() / d;
        let len = k.len() / (n_kv * d);
        let mut out = Vec::new();
        for h in 0..n_head {
            let g = h / (n_head / n_kv);
            let at = |c: &[f32], j: usize, i: usize| c[(j * n_kv + g) * d + i];
            let s: Vec<f32> =
                (0..len).map(|j| (0..d).map(|i| q[h * d + i] * at(k, j, i)).sum::<f32>() * scale).collect();
            let z: f32 = s.iter().map(|x| x.exp()).sum();
            out.extend((0..d).map(|i| (0..len).map(|j| s[j].exp() / z * at(v, j, i)).sum::<f32>()));
        }
        out
    }

    #[test]
    fn attend_one_matches_naive_grouped_attention() {
        let (n_head, n_kv, d, len) = (6, 2, 16, 5);
        let wave = |n: usize, f: f32| (0..n).map(|i| ((i as f32) * f).sin()).collect::<Vec<_>>();
        let (q, k, v) = (wave(n_head * d, 0.37), wave(len * n_kv * d, 0.11), wave(len * n_kv * d, 0.53));
        let mut out = vec![1.0; n_head * d];
        attend_one(&q, &k, &v, n_kv, d, 0.25, &mut out);
        let want = reference(&q, &k, &v, n_kv, d, 0.25);
        assert!(out.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{out:?} vs {want:?}");
        // Query heads of one group read the same keys: equal queries give equal outputs.
        let mut shared = q.clone();
        shared.copy_within(0..d, d);
        attend_one(&shared, &k, &v, n_kv, d, 0.25, &mut out);
        assert_eq!(out[..d], out[d..2 * d]);
    }
}
