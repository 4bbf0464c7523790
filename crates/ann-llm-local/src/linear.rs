//! One projection of the transformer: its quantized weights (8-bit, padded for the VNNI kernel
//! where that helps), optionally a dequantized f32 copy, and the fused call that runs several
//! projections of one input (query/key/value, gate/up) with one quantization of the input.

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, Module, Result, Tensor};

/// Chunks of at least this many tokens use the f32 weights.
const DENSE_MIN_ROWS: usize = 16;

/// How the projections' weights are kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightPlan {
    /// Also keep a dequantized f32 copy, used for chunks of at least [`DENSE_MIN_ROWS`] tokens.
    pub dense_prefill: bool,
    /// Requantize block formats that candle has no SIMD dot product for (Q4_1, Q5_0, Q5_1) to Q8_0.
    pub requantize_q8: bool,
    /// Pad Q8_0 projections whose input width is not a multiple of 256 so that they take candle's
    /// AVX-512 VNNI kernel (only where the CPU has it).
    pub pad_for_vnni: bool,
}

/// One projection: quantized weights, and optionally a dense copy for long chunks.
pub(crate) struct Linear {
    pub(crate) quantized: QMatMul,
    dense: Option<QMatMul>,
    /// Input width the quantized weights were padded to (with zero blocks), when wider than the
    /// input: see [`pad_q8_0`].
    padded_k: Option<usize>,
}

/// candle's AVX-512 VNNI kernel for Q8_0 weights (one pass over the weights for a whole batch of
/// rows) takes only input widths that are a multiple of 256; other widths (SmolLM2's 576) fall back
/// to a 256-bit dot product per row and column. Padding each weight row with zero blocks to the
/// next multiple of 256 (and each input row with zeros) lets every projection take the fast kernel:
/// the zero blocks add exact zeros.
const VNNI_K: usize = 256;

pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `q` (Q8_0, shape `(n, k)`) with each row followed by zero blocks up to `padded_k` columns.
fn pad_q8_0(q: &QTensor, padded_k: usize) -> Result<QTensor> {
    let (n, k) = q.shape().dims2()?;
    let (block, size) = (GgmlDType::Q8_0.block_size(), GgmlDType::Q8_0.type_size());
    let (row, padded_row) = (k / block * size, padded_k / block * size);
    let data = q.data()?;
    let mut out = vec![0u8; n * padded_row];
    for (src, dst) in data.chunks_exact(row).zip(out.chunks_exact_mut(padded_row)) {
        dst[..row].copy_from_slice(src);
    }
    qtensor_from_ggml(GgmlDType::Q8_0, &out, vec![n, padded_k], &q.device())
}

impl Linear {
    pub(crate) fn new(q: QTensor, plan: WeightPlan) -> Result<Self> {
        let device = q.device();
        let slow = matches!(q.dtype(), GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
        let f32_copy =
            if plan.dense_prefill || (plan.requantize_q8 && slow) { Some(q.dequantize(&device)?) } else { None };
        let quantized = match &f32_copy {
            // Q8_0 adds a rounding step of at most 1/254 of each block's largest weight, far below
            // the 4-bit format's own step, and its dot product is several times faster.
            Some(w) if plan.requantize_q8 && slow => QTensor::quantize(w, GgmlDType::Q8_0)?,
            _ => q,
        };
        let dense = if plan.dense_prefill { f32_copy.map(QMatMul::Tensor) } else { None };
        let k = quantized.shape().dims2()?.1;
        let (quantized, padded_k) =
            if plan.pad_for_vnni && quantized.dtype() == GgmlDType::Q8_0 && !k.is_multiple_of(VNNI_K) {
                let padded_k = k.next_multiple_of(VNNI_K);
                (pad_q8_0(&quantized, padded_k)?, Some(padded_k))
            } else {
                (quantized, None)
            };
        Ok(Self { quantized: QMatMul::from_qtensor(quantized)?, dense, padded_k })
    }

    /// The quantized weights whatever the row count: one row's result does not depend on the others.
    pub(crate) fn forward_quantized(&self, x: &Tensor) -> Result<Tensor> {
        match self.padded_k {
            Some(padded) => {
                let k = x.dim(D::Minus1)?;
                self.quantized.forward(&x.pad_with_zeros(D::Minus1, 0, padded - k)?)
            }
            None => self.quantized.forward(x),
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.dense {
            Some(dense) if x.dim(1)? >= DENSE_MIN_ROWS => dense.forward(x),
            _ => self.forward_quantized(x),
        }
    }
}

/// `parts` applied to the rows of a prompt: each projection's f32 copy where it has one and there
/// are enough rows, else the quantized weights through [`forward_fused`].
pub(crate) fn forward_prefill<const N: usize>(parts: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    if parts.iter().any(|l| l.dense.is_some()) && x.dim(1)? >= DENSE_MIN_ROWS {
        let mut outs = Vec::with_capacity(N);
        for l in parts {
            outs.push(l.forward(x)?);
        }
        return outs.try_into().map_err(|_| candle_core::Error::Msg("projection count".into()));
    }
    forward_fused(parts, x)
}

/// `parts` applied to one input `x` (`[1, rows, k]`), as `parts[i].forward_quantized(x)` each: on
/// CPUs with AVX-512 VNNI, candle's fused kernel quantizes `x` once and runs every projection in one
/// parallel region; each output is bit-identical to the projection's own call (the same kernel per
/// row and column), and other CPUs take the separate calls.
pub(crate) fn forward_fused<const N: usize>(parts: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let padded = parts[0].padded_k;
    let qtensors: Option<Vec<&QTensor>> = parts
        .iter()
        .map(|l| match &l.quantized {
            QMatMul::QTensor(q) if l.padded_k == padded => Some(q.as_ref()),
            _ => None,
        })
        .collect();
    if let Some(qtensors) = qtensors {
        let input = match padded {
            Some(p) => {
                let k = x.dim(D::Minus1)?;
                x.pad_with_zeros(D::Minus1, 0, p - k)?
            }
            None => x.contiguous()?,
        };
        if let Some(outs) = QTensor::gemv_fused_shared_lhs(&qtensors, &input)? {
            return outs.try_into().map_err(|_| candle_core::Error::Msg("fused projection count".into()));
        }
    }
    let mut outs = Vec::with_capacity(N);
    for l in parts {
        outs.push(l.forward_quantized(x)?);
    }
    outs.try_into().map_err(|_| candle_core::Error::Msg("projection count".into()))
}
