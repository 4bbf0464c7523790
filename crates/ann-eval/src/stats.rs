//! Statistics over per-example scores: mean, seeded bootstrap confidence intervals, paired comparison.
//!
//! All resampling is the percentile bootstrap. Resample `b` draws its indices from its own
//! `ChaCha8Rng` seeded with the config's seed on stream `b`, so the result depends only on the data
//! and the seed, never on how rayon spreads the resamples over threads.

use ndarray::{Array1, ArrayView1};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{EvalError, Evaluation};

/// How to bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootstrapConfig {
    /// Number of resamples (default 10,000).
    pub resamples: usize,
    /// Confidence level of the interval, in `(0, 1)` (default 0.95).
    pub confidence: f64,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { resamples: 10_000, confidence: 0.95, seed: 0 }
    }
}

/// Mean of a run's scores with its bootstrap confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of examples.
    pub n: usize,
    /// Mean score.
    pub mean: f64,
    /// Lower end of the confidence interval of the mean.
    pub ci_low: f64,
    /// Upper end of the confidence interval of the mean.
    pub ci_high: f64,
    /// The interval's confidence level.
    pub confidence: f64,
}

/// Run `b` against run `a` on the same examples (paired by index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Number of paired examples.
    pub n: usize,
    /// Mean score of run `a`.
    pub mean_a: f64,
    /// Mean score of run `b`.
    pub mean_b: f64,
    /// `mean_b - mean_a`.
    pub difference: f64,
    /// Lower end of the confidence interval of the difference.
    pub ci_low: f64,
    /// Upper end of the confidence interval of the difference.
    pub ci_high: f64,
    /// The interval's confidence level.
    pub confidence: f64,
    /// Fraction of resamples in which `b`'s mean is strictly above `a`'s.
    pub fraction_b_better: f64,
    /// Two-sided bootstrap p-value for "no difference": twice the smaller share of resampled
    /// differences on either side of zero (each share counted with +1 smoothing), capped at 1.
    pub p_value: f64,
}

/// The scores of a run's evaluations, in order (the input of the functions below).
pub fn scores(evaluations: &[Evaluation]) -> Vec<f64> {
    evaluations.iter().map(|e| e.score).collect()
}

/// Mean of `scores`; an error when empty or when a score is not finite.
pub fn mean(scores: &[f64]) -> Result<f64, EvalError> {
    let view = checked(scores)?;
    Ok(view.mean().unwrap_or(0.0))
}

/// Mean and seeded percentile-bootstrap confidence interval of `scores`.
pub fn bootstrap_ci(scores: &[f64], config: &BootstrapConfig) -> Result<Summary, EvalError> {
    let view = checked(scores)?;
    check_config(config)?;
    let means = resample_means(view, config);
    let (ci_low, ci_high) = interval(&means, config.confidence);
    Ok(Summary { n: scores.len(), mean: view.mean().unwrap_or(0.0), ci_low, ci_high, confidence: config.confidence })
}

/// Paired bootstrap comparison of two runs scored on the same examples in the same order.
pub fn paired_bootstrap(a: &[f64], b: &[f64], config: &BootstrapConfig) -> Result<PairedComparison, EvalError> {
    if a.len() != b.len() {
        return Err(EvalError::Config(format!(
            "paired comparison needs runs on the same examples: {} scores against {}",
            a.len(),
            b.len()
        )));
    }
    let (va, vb) = (checked(a)?, checked(b)?);
    check_config(config)?;
    let diffs: Array1<f64> = &vb - &va;
    let means = resample_means(diffs.view(), config);
    let (ci_low, ci_high) = interval(&means, config.confidence);
    let above = means.iter().filter(|&&d| d > 0.0).count();
    let at_or_below = means.len() - above;
    let at_or_above = means.iter().filter(|&&d| d >= 0.0).count();
    let total = means.len() as f64;
    let side = (at_or_below.min(at_or_above) as f64 + 1.0) / (total + 1.0);
    Ok(PairedComparison {
        n: a.len(),
        mean_a: va.mean().unwrap_or(0.0),
        mean_b: vb.mean().unwrap_or(0.0),
        difference: diffs.mean().unwrap_or(0.0),
        ci_low,
        ci_high,
        confidence: config.confidence,
        fraction_b_better: above as f64 / total,
        p_value: (2.0 * side).min(1.0),
    })
}

fn checked(scores: &[f64]) -> Result<ArrayView1<'_, f64>, EvalError> {
    if scores.is_empty() {
        return Err(EvalError::Config("statistics need at least one score".into()));
    }
    if let Some((i, s)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(EvalError::Config(format!("score {i} is not finite: {s}")));
    }
    Ok(ArrayView1::from(scores))
}

fn check_config(config: &BootstrapConfig) -> Result<(), EvalError> {
    if config.resamples == 0 {
        return Err(EvalError::Config("bootstrap needs at least one resample".into()));
    }
    if !(config.confidence > 0.0 && config.confidence < 1.0) {
        return Err(EvalError::Config(format!("confidence {} is not in (0, 1)", config.confidence)));
    }
    Ok(())
}

/// The means of `config.resamples` resamples with replacement, sorted ascending.
fn resample_means(values: ArrayView1<'_, f64>, config: &BootstrapConfig) -> Vec<f64> {
    let n = values.len();
    let mut means: Vec<f64> = (0..config.resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(b as u64);
            let sum: f64 = (0..n).map(|_| values[rng.random_range(0..n)]).sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means
}

/// The central `confidence` interval of sorted values (linear interpolation between order statistics).
fn interval(sorted: &[f64], confidence: f64) -> (f64, f64) {
    let alpha = (1.0 - confidence) / 2.0;
    (quantile(sorted, alpha), quantile(sorted, 1.0 - alpha))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> BootstrapConfig {
        BootstrapConfig { resamples: 2_000, seed, ..Default::default() }
    }

    #[test]
    fn mean_known_values_and_bad_input() {
        let evals = [
            Evaluation::pass("ok"),
            Evaluation::fail("no"),
            Evaluation { score: 0.5, passed: false, feedback: String::new() },
        ];
        assert_eq!(mean(&scores(&evals)).unwrap(), 0.5);
        assert_eq!(mean(&[0.0, 1.0, 1.0, 0.0]).unwrap(), 0.5);
        assert_eq!(mean(&[0.25]).unwrap(), 0.25);
        assert!(mean(&[]).is_err());
        assert!(mean(&[0.5, f64::NAN]).unwrap_err().to_string().contains("score 1"));
    }

    #[test]
    fn constant_scores_have_a_point_interval() {
        let s = bootstrap_ci(&[0.7; 9], &config(1)).unwrap();
        assert_eq!(s.n, 9);
        for v in [s.mean, s.ci_low, s.ci_high] {
            assert!((v - 0.7).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn interval_covers_the_mean_and_is_plausible() {
        // 30 of 50 solved: the normal approximation gives 0.6 +- 0.136.
        let scores: Vec<f64> = (0..50).map(|i| if i % 5 < 3 { 1.0 } else { 0.0 }).collect();
        let s = bootstrap_ci(&scores, &config(7)).unwrap();
        assert_eq!(s.mean, 0.6);
        assert!(s.ci_low < 0.6 && 0.6 < s.ci_high, "{s:?}");
        assert!((0.44..0.50).contains(&s.ci_low) && (0.70..0.76).contains(&s.ci_high), "{s:?}");
    }

    #[test]
    fn seeded_and_independent_of_thread_count() {
        let scores: Vec<f64> = (0..37).map(|i| f64::from(i * 7 % 11) / 10.0).collect();
        let run = |threads: usize, seed: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| bootstrap_ci(&scores, &config(seed)).unwrap())
        };
        assert_eq!(run(1, 3), run(4, 3));
        assert_eq!(run(2, 3), bootstrap_ci(&scores, &config(3)).unwrap());
        assert_ne!(run(1, 3), run(1, 4));
    }

    #[test]
    fn paired_comparison_identical_runs() {
        let a = [1.0, 0.0, 1.0, 0.5];
        let c = paired_bootstrap(&a, &a, &config(2)).unwrap();
        assert_eq!((c.difference, c.ci_low, c.ci_high, c.p_value, c.fraction_b_better), (0.0, 0.0, 0.0, 1.0, 0.0));
    }

    #[test]
    fn paired_comparison_detects_a_clear_gain() {
        let a: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        let b: Vec<f64> = (0..40).map(|i| if i % 8 == 7 { 0.0 } else { 1.0 }).collect();
        let c = paired_bootstrap(&a, &b, &config(5)).unwrap();
        assert_eq!((c.mean_a, c.mean_b, c.difference), (0.5, 0.875, 0.375));
        assert!(c.ci_low > 0.2 && c.ci_low < 0.375 && c.ci_high > 0.375 && c.ci_high < 0.55, "{c:?}");
        assert!(c.p_value < 0.01 && c.fraction_b_better > 0.99, "{c:?}");
        let reversed = paired_bootstrap(&b, &a, &config(5)).unwrap();
        assert_eq!(reversed.difference, -0.375);
        assert_eq!(reversed.p_value, c.p_value);
    }

    #[test]
    fn paired_comparison_of_noise_is_not_significant() {
        let a: Vec<f64> = (0..30).map(|i| f64::from(i % 2)).collect();
        let b: Vec<f64> = (0..30).map(|i| f64::from((i / 2) % 2)).collect();
        let c = paired_bootstrap(&a, &b, &config(9)).unwrap();
        assert!(c.ci_low < 0.0 && c.ci_high > 0.0 && c.p_value > 0.2, "{c:?}");
    }

    #[test]
    fn paired_comparison_rejects_mismatched_runs() {
        let err = paired_bootstrap(&[1.0, 0.0], &[1.0], &config(0)).unwrap_err();
        assert!(err.to_string().contains("2 scores against 1"), "{err}");
        assert!(bootstrap_ci(&[1.0], &BootstrapConfig { resamples: 0, ..Default::default() }).is_err());
        assert!(bootstrap_ci(&[1.0], &BootstrapConfig { confidence: 1.0, ..Default::default() }).is_err());
    }
}
