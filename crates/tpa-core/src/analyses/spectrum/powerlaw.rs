//! WeightWatcher's power-law fit of a matrix's eigenvalue spectrum.
//!
//! A transcription of `weightwatcher` 0.7.7 (`WW_powerlaw.WWFit`, its default
//! method) so that tpa's `alpha` matches WeightWatcher's on the same
//! eigenvalues λ = σ²:
//!
//! 1. drop λ ≤ 1e-5 and sort the rest ascending: x₀ ≤ … ≤ x_{N−1};
//! 2. for every candidate xmin = x_i (i < N−1), with n = N − i:
//!    α_i = 1 + n / Σ_{j≥i} ln(x_j / x_i) (continuous power-law MLE), and the
//!    KS distance D_i = max_k |1 − (x_{i+k}/x_i)^{1−α_i} − k/n| (D_i = 1 when
//!    α_i ≤ 1);
//! 3. keep the candidate with the smallest D (the first, on ties).
//!
//! With fewer than 20 eigenvalues WeightWatcher switches to a small-sample
//! variant (bias-corrected α = 1 + (n−1)/Σ ln(x_j/x_i), tails of at least 8,
//! objective D − 0.868/√n), reproduced here as well.

/// Eigenvalues at or below this are dropped before fitting (WeightWatcher's
/// `EVALS_THRESH`).
pub const EVALS_THRESHOLD: f64 = 1e-5;

/// Below this many eigenvalues WeightWatcher uses its small-sample fit.
const SMALL_N: usize = 20;

/// A fitted power law p(λ) ∝ λ^−α for λ ≥ xmin.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PowerLawFit {
    pub alpha: f64,
    pub xmin: f64,
    /// Kolmogorov–Smirnov distance of the fit.
    pub ks_distance: f64,
    /// Standard error of α: (α − 1)/√n_tail.
    pub sigma: f64,
    /// Eigenvalues in the fitted tail (λ ≥ xmin).
    pub tail: usize,
}

/// Fits eigenvalues (any order). `None` when fewer than two exceed the
/// threshold, where WeightWatcher's fit fails too.
///
/// ```
/// use tpa_core::analyses::spectrum::powerlaw::fit;
/// // Quantiles of a Pareto law with α = 3 and xmin = 1: x = (1 − u)^(−1/(α−1)).
/// let evals: Vec<f64> = (0..2000).map(|i| (1.0 - (i as f64 + 0.5) / 2000.0).powf(-0.5)).collect();
/// let fit = fit(&evals).unwrap();
/// assert!((fit.alpha - 3.0).abs() < 0.05, "{}", fit.alpha);
/// ```
pub fn fit(eigenvalues: &[f64]) -> Option<PowerLawFit> {
    let mut data: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&x| x > EVALS_THRESHOLD)
        .collect();
    data.sort_by(f64::total_cmp);
    if data.len() < 2 {
        return None;
    }
    let logs: Vec<f64> = data.iter().map(|x| x.ln()).collect();
    // suffix[i] = Σ_{j ≥ i} ln x_j
    let mut suffix = vec![0.0; data.len() + 1];
    for i in (0..data.len()).rev() {
        suffix[i] = suffix[i + 1] + logs[i];
    }
    let fit = if data.len() < SMALL_N {
        small_sample(&data, &logs, &suffix)?
    } else {
        standard(&data, &logs, &suffix)
    };
    // A tail of equal values gives α = ∞: no power law to report.
    (fit.alpha.is_finite() && fit.ks_distance.is_finite()).then_some(fit)
}

/// KS distance between the tail x_i.. and a power law with exponent α from x_i.
fn ks_distance(logs: &[f64], i: usize, alpha: f64) -> f64 {
    let n = (logs.len() - i) as f64;
    logs[i..]
        .iter()
        .enumerate()
        .map(|(k, &lx)| (1.0 - ((1.0 - alpha) * (lx - logs[i])).exp() - k as f64 / n).abs())
        .fold(0.0, f64::max)
}

fn standard(data: &[f64], logs: &[f64], suffix: &[f64]) -> PowerLawFit {
    let total = data.len();
    let mut best: Option<(f64, usize, f64)> = None; // (D, i, alpha)
    for i in 0..total - 1 {
        let n = (total - i) as f64;
        let alpha = 1.0 + n / (suffix[i] - n * logs[i]);
        let d = if alpha > 1.0 {
            ks_distance(logs, i, alpha)
        } else {
            1.0
        };
        if best.is_none_or(|(best_d, _, _)| d < best_d) {
            best = Some((d, i, alpha));
        }
    }
    let (d, i, alpha) = best.unwrap_or((1.0, 0, f64::NAN));
    finish(data, i, alpha, d)
}

fn small_sample(data: &[f64], logs: &[f64], suffix: &[f64]) -> Option<PowerLawFit> {
    const MIN_TAIL: usize = 8;
    let total = data.len();
    let mut best: Option<(f64, usize, f64, f64)> = None; // (J, i, alpha, D)
    for i in 0..total - 1 {
        let tail = total - i;
        if tail < MIN_TAIL {
            continue;
        }
        let n = tail as f64;
        let s = suffix[i] - n * logs[i];
        if s <= 1e-12 {
            continue;
        }
        let alpha = 1.0 + (n - 1.0) / s;
        if alpha <= 1.0 {
            continue;
        }
        let d = ks_distance(logs, i, alpha);
        let j = d - 0.868 / n.sqrt();
        if best.is_none_or(|(best_j, ..)| j < best_j) {
            best = Some((j, i, alpha, d));
        }
    }
    if let Some((_, i, alpha, d)) = best {
        return Some(finish(data, i, alpha, d));
    }
    // No tail qualified: WeightWatcher fits the whole sample.
    let n = total as f64;
    let s = suffix[0] - n * logs[0];
    if s <= 1e-12 {
        return None;
    }
    let alpha = 1.0 + (n - 1.0) / s;
    Some(finish(data, 0, alpha, ks_distance(logs, 0, alpha)))
}

fn finish(data: &[f64], i: usize, alpha: f64, d: f64) -> PowerLawFit {
    let tail = data.len() - i;
    PowerLawFit {
        alpha,
        xmin: data[i],
        ks_distance: d,
        sigma: (alpha - 1.0) / (tail as f64).sqrt(),
        tail,
    }
}
