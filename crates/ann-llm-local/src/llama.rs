//! A llama-architecture transformer over candle's public ops, with a KV cache the engine can snapshot.
//!
//! Each projection keeps its quantized weights (fast for one token at a time, memory-bound) and,
//! when enabled, a dequantized f32 copy used for prompt chunks of many tokens (compute-bound, where
//! a dense matrix multiplication is several times faster than the quantized dot products).

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use std::io::{Read, Seek};
use std::sync::Arc;

/// The causal mask of `seq` new positions after `pos` cached ones: 1 where a query may not look.
fn causal_mask(seq: usize, pos: usize, device: &Device) -> Result<Tensor> {
    let kv = pos + seq;
    let mask: Vec<u8> = (0..seq).flat_map(|i| (0..kv).map(move |j| u8::from(j > pos + i))).collect();
    Tensor::from_vec(mask, (seq, kv), device)
}

/// Grouped-query attention: each key/value head serves `n_rep` query heads.
fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, n_kv, len, d) = x.dims4()?;
    x.unsqueeze(2)?.expand((b, n_kv, n_rep, len, d))?.reshape((b, n_kv * n_rep, len, d))
}

/// Chunks of at least this many tokens use the f32 weights.
const DENSE_MIN_ROWS: usize = 16;

/// One projection: quantized weights, and optionally a dense copy for long chunks.
struct Linear {
    quantized: QMatMul,
    dense: Option<QMatMul>,
}

impl Linear {
    fn new(q: QTensor, dense: bool) -> Result<Self> {
        let q = Arc::new(q);
        let dense = if dense { Some(QMatMul::Tensor(q.dequantize(&q.device())?)) } else { None };
        Ok(Self { quantized: QMatMul::from_arc(q)?, dense })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.dense {
            Some(dense) if x.dim(1)? >= DENSE_MIN_ROWS => dense.forward(x),
            _ => self.quantized.forward(x),
        }
    }
}

struct Layer {
    attn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The attention keys and values of every processed position; cheap to clone (tensors are shared).
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
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
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    shape: LlamaShape,
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
        dense_prefill: bool,
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
        let embed = embed_q.dequantize(&device)?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut t = |n: &str| tensor(&format!("blk.{i}.{n}.weight"));
            layers.push(Layer {
                attn_norm: t("attn_norm")?.dequantize(&device)?,
                wq: Linear::new(t("attn_q")?, dense_prefill)?,
                wk: Linear::new(t("attn_k")?, dense_prefill)?,
                wv: Linear::new(t("attn_v")?, dense_prefill)?,
                wo: Linear::new(t("attn_output")?, dense_prefill)?,
                ffn_norm: t("ffn_norm")?.dequantize(&device)?,
                gate: Linear::new(t("ffn_gate")?, dense_prefill)?,
                up: Linear::new(t("ffn_up")?, dense_prefill)?,
                down: Linear::new(t("ffn_down")?, dense_prefill)?,
            });
        }
        let norm = tensor("output_norm.weight")?.dequantize(&device)?;
        // Only the last position is projected to logits: the quantized weights suffice. Small models
        // tie the output projection to the embeddings.
        let output = match tensor("output.weight") {
            Ok(q) => Linear::new(q, false)?,
            Err(_) => Linear::new(embed_q, false)?,
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

    /// Run `tokens` after the positions in `cache` (extending it) and return the logits of the last one.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        let s = &self.shape;
        let (seq, pos) = (tokens.len(), cache.len);
        if seq == 0 || pos + seq > s.max_positions {
            candle_core::bail!("{seq} tokens at position {pos} do not fit {} positions", s.max_positions);
        }
        let device = self.embed.device();
        let ids = Tensor::new(tokens, device)?;
        let mut x = self.embed.index_select(&ids, 0)?.unsqueeze(0)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let mask = if seq > 1 { Some(causal_mask(seq, pos, device)?) } else { None };
        let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?;
        let scale = 1.0 / (s.head_dim as f64).sqrt();
        let heads = |t: Tensor, n: usize| t.reshape((1, seq, n, s.head_dim))?.transpose(1, 2)?.contiguous();
        let mut new_cache = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, s.eps as f32)?;
            let q = heads(layer.wq.forward(&h)?, s.n_head)?;
            let k = heads(layer.wk.forward(&h)?, s.n_kv_head)?;
            let v = heads(layer.wv.forward(&h)?, s.n_kv_head)?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (k, v) = match cache.layers.get(i) {
                Some((kc, vc)) => (Tensor::cat(&[kc, &k], 2)?, Tensor::cat(&[vc, &v], 2)?),
                None => (k, v),
            };
            new_cache.push((k.clone(), v.clone()));
            let rep = s.n_head / s.n_kv_head;
            let k = repeat_kv(k, rep)?;
            let v = repeat_kv(v, rep)?.contiguous()?;
            let att = (q.matmul(&k.t()?)? * scale)?;
            let att = match &mask {
                Some(m) => m.broadcast_as(att.shape())?.where_cond(&neg_inf.broadcast_as(att.shape())?, &att)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((1, seq, s.dim))?;
            x = (x + layer.wo.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, s.eps as f32)?;
            let act = (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&act)?)?;
        }
        cache.layers = new_cache;
        cache.len = pos + seq;
        let last = x.i((.., seq - 1.., ..))?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, s.eps as f32)?;
        let logits = self.output.forward(&last)?;
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_mask_hides_only_later_positions() {
        let m = causal_mask(3, 2, &Device::Cpu).unwrap();
        let rows: Vec<Vec<u8>> = m.to_vec2().unwrap();
        assert_eq!(rows, vec![vec![0, 0, 0, 1, 1], vec![0, 0, 0, 0, 1], vec![0, 0, 0, 0, 0]]);
    }

    #[test]
    fn repeat_kv_serves_consecutive_query_heads() {
        let x = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap().reshape((1, 2, 2, 2)).unwrap();
        let r = repeat_kv(x, 3).unwrap();
        assert_eq!(r.dims(), &[1, 6, 2, 2]);
        let heads: Vec<Vec<Vec<f32>>> = r.squeeze(0).unwrap().to_vec3().unwrap();
        assert_eq!(heads[0], heads[2]);
        assert_eq!(heads[3], heads[5]);
        assert_ne!(heads[2], heads[3]);
    }
}
