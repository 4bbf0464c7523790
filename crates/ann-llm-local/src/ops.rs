//! The row-wise operations of the forward pass that candle would hand to its rayon thread pool
//! (RMS norm over more than 32 rows, the rotary embedding over more than one row), done on the
//! calling thread with candle's own formulas, element for element: they are small beside the
//! projections, and a second pool of threads beside the one running the projections costs more in
//! wake-ups and contention on a machine with few cores than they take.

use candle_core::{Result, Tensor};

/// RMS norm of each row of `x` (last dimension), times `alpha`.
pub(crate) fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f32) -> Result<Tensor> {
    let alpha = alpha.to_vec1::<f32>()?;
    let n = alpha.len();
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    for row in v.chunks_exact_mut(n) {
        let sum2 = row.iter().map(|&v| v * v).sum::<f32>();
        let m = (sum2 / n as f32 + eps).sqrt();
        row.iter_mut().zip(&alpha).for_each(|(x, a)| *x = *x / m * a);
    }
    Tensor::from_vec(v, x.shape(), x.device())
}

/// The rotary embedding of interleaved pairs (`candle_nn::rotary_emb::rope_i`) of `x`
/// (`[1, heads, rows, dim]`), row `t` rotated by `cos[t]` and `sin[t]` (`[rows, dim / 2]`).
pub(crate) fn rope_i(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (_, _, rows, d) = x.dims4()?;
    let (cos, sin) = (cos.flatten_all()?.to_vec1::<f32>()?, sin.flatten_all()?.to_vec1::<f32>()?);
    if cos.len() != rows * d / 2 || sin.len() != cos.len() {
        candle_core::bail!("rotary tables of {} values for {rows} rows of {d}", cos.len());
    }
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    for head in v.chunks_exact_mut(rows * d) {
        for (i, pair) in head.chunks_exact_mut(2).enumerate() {
            let (c, s) = (cos[i], sin[i]);
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * c - b * s;
            pair[1] = a * s + b * c;
        }
    }
    Tensor::from_vec(v, x.shape(), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn rms_norm_and_rope_are_candles_bit_for_bit() {
        let dev = &Device::Cpu;
        let wave = |n: usize, f: f32| (0..n).map(|i| ((i as f32) * f).sin() * 3.0).collect::<Vec<_>>();
        // 40 rows: candle runs them on its thread pool.
        let x = Tensor::from_vec(wave(40 * 64, 0.37), (1, 40, 64), dev).unwrap();
        let alpha = Tensor::from_vec(wave(64, 0.11), 64, dev).unwrap();
        let ours = rms_norm(&x, &alpha, 1e-5).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let theirs = candle_nn::ops::rms_norm(&x, &alpha, 1e-5).unwrap().flatten_all().unwrap().to_vec1::<f32>();
        assert_eq!(ours, theirs.unwrap());
        let q = Tensor::from_vec(wave(3 * 40 * 16, 0.53), (1, 3, 40, 16), dev).unwrap();
        let (cos, sin) = (wave(40 * 8, 0.07), wave(40 * 8, 0.13));
        let cos = Tensor::from_vec(cos, (40, 8), dev).unwrap();
        let sin = Tensor::from_vec(sin, (40, 8), dev).unwrap();
        let ours = rope_i(&q, &cos, &sin).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let theirs = candle_nn::rotary_emb::rope_i(&q, &cos, &sin).unwrap().flatten_all().unwrap().to_vec1::<f32>();
        assert_eq!(ours, theirs.unwrap());
    }
}
