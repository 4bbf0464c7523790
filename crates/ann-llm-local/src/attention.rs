//! Causal attention of a prompt chunk's queries over its cached keys and values, in blocks of query
//! rows spread over candle's worker threads: each block's scores are one matrix product read in
//! place from the cache, soft-maxed over the positions each query may see, then one more product
//! with the values. A block reads keys only up to its last query's position.
//!
//! The blocks depend only on the chunk's length and position, and each is computed on one thread,
//! so a chunk's output is the same however many threads run and whatever else is in the prefill.

/// Query rows per block.
const BLOCK: usize = 32;

/// Attention weights from raw scores, in place: `scores` holds rows of `width` scores, and row `r`
/// sees the first `first_seen + r` of them. Each row is scaled by `scale` and soft-maxed over what
/// it sees; the rest get 0.
fn causal_softmax(scores: &mut [f32], width: usize, first_seen: usize, scale: f32) {
    for (r, row) in scores.chunks_exact_mut(width).enumerate() {
        let (seen, hidden) = row.split_at_mut((first_seen + r).min(width));
        let max = seen.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x * scale));
        let mut sum = 0.0;
        for x in seen.iter_mut() {
            *x = (*x * scale - max).exp();
            sum += *x;
        }
        seen.iter_mut().for_each(|x| *x /= sum);
        hidden.fill(0.0);
    }
}

/// The shape of the attention: query heads, key/value heads, head width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub n_head: usize,
    pub n_kv: usize,
    pub d: usize,
}

/// One chunk: its rows `first..first + seq` of the prefill, at positions `pos..pos + seq`, and its
/// sequence's cached keys and values (`[position][kv head][dim]`, at least `pos + seq` positions).
pub(crate) struct Chunk<'a> {
    pub first: usize,
    pub seq: usize,
    pub pos: usize,
    pub keys: &'a [f32],
    pub values: &'a [f32],
}

/// Attention output `[row][head][dim]` of every chunk, from the queries `q` (`[head][row][dim]`,
/// `rows` rows, rotary embedding applied).
// The one unsafe block of the crate: gemm takes raw pointers and strides, which read the cache in
// place and let the threads write their disjoint blocks of one output.
#[allow(unsafe_code)]
pub(crate) fn attend(q: &[f32], rows: usize, chunks: &[Chunk<'_>], heads: Heads) -> Vec<f32> {
    let Heads { n_head, n_kv, d } = heads;
    let (rep, width) = (n_head / n_kv, n_head * d);
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let mut out = vec![0f32; rows * width];
    // (chunk, head, first row of the block in the chunk, rows)
    let blocks: Vec<(usize, usize, usize, usize)> = chunks
        .iter()
        .enumerate()
        .flat_map(|(c, ch)| {
            (0..n_head).flat_map(move |h| (0..ch.seq).step_by(BLOCK).map(move |t| (c, h, t, BLOCK.min(ch.seq - t))))
        })
        .collect();
    let out_ptr = out.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(blocks.len(), |range| {
        for &(c, h, t, tb) in &blocks[range] {
            let ch = &chunks[c];
            let g = h / rep;
            let keys = ch.pos + t + tb;
            let mut scores = vec![0f32; tb * keys];
            let row = ch.first + t;
            // SAFETY: every pointer and stride stays inside its buffer: `q` holds `n_head * rows`
            // rows of `d`, the cache at least `keys` positions of `n_kv * d`, `scores` `tb * keys`
            // and `out` `rows` rows of `width`; blocks write disjoint (row, head) parts of `out`.
            unsafe {
                gemm::gemm(
                    tb,
                    keys,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    keys as isize,
                    false,
                    q.as_ptr().add((h * rows + row) * d),
                    1,
                    d as isize,
                    ch.keys.as_ptr().add(g * d),
                    (n_kv * d) as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                causal_softmax(&mut scores, keys, ch.pos + t + 1, scale);
                gemm::gemm(
                    tb,
                    d,
                    keys,
                    (out_ptr as *mut f32).add(row * width + h * d),
                    1,
                    width as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    keys as isize,
                    ch.values.as_ptr().add(g * d),
                    1,
                    (n_kv * d) as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_softmax_weighs_only_the_positions_a_query_may_see() {
        // Rows of 4 scores; the first row sees 2 of them.
        let raw: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let mut att = raw.clone();
        causal_softmax(&mut att, 4, 2, 0.5);
        for (r, (row, raw)) in att.chunks_exact(4).zip(raw.chunks_exact(4)).enumerate() {
            let seen = 2 + r;
            let z: f32 = raw[..seen].iter().map(|x| (x * 0.5).exp()).sum();
            for j in 0..4 {
                let want = if j < seen { (raw[j] * 0.5).exp() / z } else { 0.0 };
                assert!((row[j] - want).abs() < 1e-6, "row {r} position {j}: {} vs {want}", row[j]);
            }
        }
    }

    /// Attention written out naively, one query at a time.
    fn naive(q: &[f32], rows: usize, ch: &Chunk<'_>, heads: Heads) -> Vec<f32> {
        let Heads { n_head, n_kv, d } = heads;
        let mut out = vec![0f32; ch.seq * n_head * d];
        for t in 0..ch.seq {
            for h in 0..n_head {
                let g = h / (n_head / n_kv);
                let qv = &q[(h * rows + ch.first + t) * d..][..d];
                let at = |c: &[f32], j: usize, i: usize| c[(j * n_kv + g) * d + i];
                let seen = ch.pos + t + 1;
                let s: Vec<f32> = (0..seen)
                    .map(|j| (0..d).map(|i| qv[i] * at(ch.keys, j, i)).sum::<f32>() / (d as f32).sqrt())
                    .collect();
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = s.iter().map(|x| (x - max).exp()).sum();
                for i in 0..d {
                    out[(t * n_head + h) * d + i] =
                        (0..seen).map(|j| (s[j] - max).exp() / z * at(ch.values, j, i)).sum::<f32>();
                }
            }
        }
        out
    }

    #[test]
    fn blocked_attention_matches_naive_causal_attention() {
        let heads = Heads { n_head: 6, n_kv: 2, d: 8 };
        // 70 new rows (three blocks, the last partial) after 5 cached positions.
        let (rows, first, seq, pos) = (73, 3, 70, 5);
        let wave = |n: usize, f: f32| (0..n).map(|i| ((i as f32) * f).sin()).collect::<Vec<_>>();
        let q = wave(heads.n_head * rows * heads.d, 0.37);
        let (keys, values) = (wave((pos + seq) * 16, 0.11), wave((pos + seq) * 16, 0.53));
        let chunk = Chunk { first, seq, pos, keys: &keys, values: &values };
        let out = attend(&q, rows, std::slice::from_ref(&chunk), heads);
        let want = naive(&q, rows, &chunk, heads);
        let got = &out[first * 48..(first + seq) * 48];
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4), "blocked attention differs");
        assert!(out[..first * 48].iter().chain(&out[(first + seq) * 48..]).all(|&x| x == 0.0), "other rows untouched");
    }
}
