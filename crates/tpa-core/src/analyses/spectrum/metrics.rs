//! Everything `tpa-transformer` reports about a spectrum.

use serde::{Deserialize, Serialize};

use super::powerlaw::{self, PowerLawFit};

/// Metrics of a singular-value spectrum (values in descending order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectralMetrics {
    /// The absolute tolerance: rank_rtol · σmax.
    pub rank_tol: f64,
    /// Number of σ > rank_tol.
    pub actual_rank: usize,
    /// Smallest k whose k largest σ² hold 50% / 90% / 99% of Σσ² (0 for a
    /// zero matrix).
    pub energy_rank_50: usize,
    pub energy_rank_90: usize,
    pub energy_rank_99: usize,
    /// σmax.
    pub spectral_norm: f64,
    /// √Σσ².
    pub frobenius_norm: f64,
    /// Σσ² / σmax².
    pub stable_rank: Option<f64>,
    /// exp of the Shannon entropy of p_i = σ_i / Σσ.
    pub effective_rank: Option<f64>,
    /// σmax / σmin; `None` when σmin is 0.
    pub condition_number: Option<f64>,
    /// log10 Σλ with λ = σ².
    pub log_norm: Option<f64>,
    /// log10 λmax.
    pub log_spectral_norm: Option<f64>,
    /// WeightWatcher's power-law fit of λ.
    pub power_law: Option<PowerLawFit>,
    /// α · log10 λmax.
    pub alpha_weighted: Option<f64>,
}

impl SpectralMetrics {
    /// Computes every metric from `values` (descending σ) at `rank_rtol`.
    ///
    /// ```
    /// use tpa_core::analyses::spectrum::metrics::SpectralMetrics;
    /// let m = SpectralMetrics::new(&[4.0, 2.0, 1e-9, 0.0], 1e-6);
    /// assert_eq!(m.actual_rank, 2);
    /// assert_eq!(m.energy_rank_90, 2); // 16 + 4 = 20 ≥ 0.9 · 20
    /// assert_eq!(m.stable_rank, Some(20.0 / 16.0));
    /// assert_eq!(m.condition_number, None);
    /// ```
    pub fn new(values: &[f64], rank_rtol: f64) -> SpectralMetrics {
        let max = values.first().copied().unwrap_or(0.0);
        let min = values.last().copied().unwrap_or(0.0);
        let rank_tol = rank_rtol * max;
        let squares: Vec<f64> = values.iter().map(|s| s * s).collect();
        let energy: f64 = squares.iter().sum();
        let sum: f64 = values.iter().sum();
        let positive = |x: f64| (x > 0.0).then_some(x);
        let eigenvalues_max = max * max;
        let power_law = powerlaw::fit(&squares);
        SpectralMetrics {
            rank_tol,
            actual_rank: values.iter().filter(|&&s| s > rank_tol).count(),
            energy_rank_50: energy_rank(&squares, 0.5),
            energy_rank_90: energy_rank(&squares, 0.9),
            energy_rank_99: energy_rank(&squares, 0.99),
            spectral_norm: max,
            frobenius_norm: energy.sqrt(),
            stable_rank: positive(max).map(|_| energy / eigenvalues_max),
            effective_rank: positive(sum).map(|sum| {
                let entropy: f64 = values
                    .iter()
                    .filter(|&&s| s > 0.0)
                    .map(|s| {
                        let p = s / sum;
                        -p * p.ln()
                    })
                    .sum();
                entropy.exp()
            }),
            condition_number: positive(min).map(|min| max / min),
            log_norm: positive(energy).map(f64::log10),
            log_spectral_norm: positive(eigenvalues_max).map(f64::log10),
            alpha_weighted: power_law
                .filter(|_| eigenvalues_max > 0.0)
                .map(|fit| fit.alpha * eigenvalues_max.log10()),
            power_law,
        }
    }
}

/// Smallest k with Σ_{i≤k} σ_i² ≥ share · Σσ², summing in descending order
/// (as `numpy.cumsum` over the sorted values does); 0 when Σσ² is 0.
fn energy_rank(squares: &[f64], share: f64) -> usize {
    let mut cumulative = Vec::with_capacity(squares.len());
    let mut acc = 0.0;
    for s in squares {
        acc += s;
        cumulative.push(acc);
    }
    let total = acc;
    if total <= 0.0 {
        return 0;
    }
    let target = share * total;
    cumulative
        .iter()
        .position(|&c| c >= target)
        .map_or(squares.len(), |k| k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_matrix_has_rank_zero() {
        let m = SpectralMetrics::new(&[0.0; 5], 1e-6);
        assert_eq!(
            (m.actual_rank, m.energy_rank_90, m.energy_rank_50),
            (0, 0, 0)
        );
        assert_eq!((m.spectral_norm, m.frobenius_norm), (0.0, 0.0));
        assert_eq!(
            (m.stable_rank, m.effective_rank, m.condition_number),
            (None, None, None)
        );
        assert!(m.power_law.is_none());
    }

    #[test]
    fn empty_spectrum() {
        let m = SpectralMetrics::new(&[], 1e-6);
        assert_eq!((m.actual_rank, m.energy_rank_99), (0, 0));
    }

    #[test]
    fn effective_rank_of_a_flat_spectrum_is_its_length() {
        let m = SpectralMetrics::new(&[2.0; 10], 1e-6);
        assert!((m.effective_rank.unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(m.condition_number, Some(1.0));
        assert_eq!(m.energy_rank_50, 5);
        assert_eq!(m.energy_rank_90, 9);
        assert_eq!(m.energy_rank_99, 10);
        assert_eq!(m.log_norm, Some(40f64.log10()));
    }

    #[test]
    fn rank_uses_a_strict_inequality() {
        // σ exactly at the tolerance does not count, as in the original.
        let m = SpectralMetrics::new(&[1.0, 1e-6, 2e-6], 1e-6);
        assert_eq!(m.actual_rank, 2);
    }
}
