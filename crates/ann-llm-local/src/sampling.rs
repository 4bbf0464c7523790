//! Choosing the next token: greedy at temperature 0, else seeded temperature and nucleus (top-p) sampling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Picks tokens from logits; deterministic for a given seed and sample index.
pub struct Sampler {
    rng: ChaCha8Rng,
    temperature: f32,
    top_p: f32,
}

/// The RNG seed of one sample: the request's seed mixed with its sample index.
pub fn sample_seed(seed: u64, sample_index: u32) -> u64 {
    // splitmix64 of the pair, so that neighbouring indices give unrelated streams.
    let mut z = seed ^ (u64::from(sample_index)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Sampler {
    pub fn new(seed: u64, sample_index: u32, temperature: f32, top_p: f32) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(sample_seed(seed, sample_index)), temperature, top_p }
    }

    /// The next token, or `None` when every logit is masked out (negative infinity or NaN).
    pub fn sample(&mut self, logits: &[f32]) -> Option<u32> {
        let best = argmax(logits)?;
        if self.temperature <= 0.0 || !self.temperature.is_finite() {
            return Some(best);
        }
        let max = logits[best as usize];
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, ((l - max) / self.temperature).exp()))
            .filter(|(_, p)| *p > 0.0)
            .collect();
        // Highest probability first; ties by token id so the order never depends on the sort.
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f32 = probs.iter().map(|p| p.1).sum();
        let top_p = if self.top_p > 0.0 && self.top_p < 1.0 { self.top_p } else { 1.0 };
        let mut kept = 0.0;
        let mut n = 0;
        for (_, p) in &probs {
            kept += p;
            n += 1;
            if kept >= top_p * total {
                break;
            }
        }
        probs.truncate(n.max(1));
        let mass: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.random::<f32>() * mass;
        for (id, p) in &probs {
            if r < *p {
                return Some(*id);
            }
            r -= p;
        }
        probs.last().map(|p| p.0)
    }
}

/// Index of the largest finite logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax_and_skips_masked_tokens() {
        let mut s = Sampler::new(0, 0, 0.0, 1.0);
        assert_eq!(s.sample(&[0.1, 2.0, 2.0, -1.0]), Some(1));
        assert_eq!(s.sample(&[f32::NEG_INFINITY, f32::NEG_INFINITY, 0.5]), Some(2));
        assert_eq!(s.sample(&[f32::NEG_INFINITY, f32::NAN]), None);
    }

    #[test]
    fn sampling_is_deterministic_per_seed_and_index_and_respects_top_p() {
        let logits = [1.0, 1.2, 0.8, 3.0, -2.0, f32::NEG_INFINITY];
        let draw = |seed, index, top_p| {
            let mut s = Sampler::new(seed, index, 1.0, top_p);
            (0..64).map(|_| s.sample(&logits).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 0, 1.0), draw(7, 0, 1.0));
        assert_ne!(draw(7, 0, 1.0), draw(7, 1, 1.0));
        assert_ne!(draw(7, 0, 1.0), draw(8, 0, 1.0));
        let all = draw(7, 0, 1.0);
        assert!(all.iter().any(|&t| t != 3), "temperature 1 must sometimes leave the argmax");
        assert!(!all.contains(&5), "a masked token is never drawn");
        // Token 3 holds about 70% of the mass: top_p = 0.5 keeps it alone.
        assert!(draw(7, 0, 0.5).iter().all(|&t| t == 3));
    }
}
