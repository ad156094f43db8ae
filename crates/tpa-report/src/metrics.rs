//! The per-matrix metrics that layer profiles, heatmaps and comparisons draw.

use crate::draw::scale::Kind;
use crate::input::Matrix;

/// A metric of one matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    RankRatio,
    EnergyRatio90,
    Alpha,
    StableRank,
    SpectralNorm,
    Std,
}

impl Metric {
    /// Every metric, in the order the report shows them.
    pub const ALL: [Metric; 6] = [
        Metric::Alpha,
        Metric::EnergyRatio90,
        Metric::RankRatio,
        Metric::StableRank,
        Metric::SpectralNorm,
        Metric::Std,
    ];

    /// The column-like key used in chart file names and page anchors.
    pub fn key(self) -> &'static str {
        match self {
            Metric::RankRatio => "rank_ratio",
            Metric::EnergyRatio90 => "svd_90_percent_ratio",
            Metric::Alpha => "alpha",
            Metric::StableRank => "stable_rank",
            Metric::SpectralNorm => "spectral_norm",
            Metric::Std => "std",
        }
    }

    /// A short name for titles.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RankRatio => "rank ratio",
            Metric::EnergyRatio90 => "90%-energy ratio",
            Metric::Alpha => "α",
            Metric::StableRank => "stable rank",
            Metric::SpectralNorm => "spectral norm",
            Metric::Std => "std of the values",
        }
    }

    /// The axis label, with its unit or definition.
    pub fn label(self) -> &'static str {
        match self {
            Metric::RankRatio => "rank ratio (actual rank / min(m, n))",
            Metric::EnergyRatio90 => "90%-energy rank / min(m, n)",
            Metric::Alpha => "α (power-law exponent of the ESD)",
            Metric::StableRank => "stable rank (Σσ² / σ₁²)",
            Metric::SpectralNorm => "spectral norm σ₁",
            Metric::Std => "standard deviation of the values",
        }
    }

    /// Values spanning decades are drawn on log axes.
    pub fn axis(self) -> Kind {
        match self {
            Metric::SpectralNorm | Metric::Std => Kind::Log,
            _ => Kind::Linear,
        }
    }

    /// The metric of `m`, when the result has it.
    pub fn of(self, m: &Matrix) -> Option<f64> {
        let v = match self {
            Metric::RankRatio => m.rank_ratio(),
            Metric::EnergyRatio90 => m.energy_ratio_90(),
            Metric::Alpha => m.alpha,
            Metric::StableRank => m.stable_rank,
            Metric::SpectralNorm => m.spectral_norm,
            Metric::Std => m.std,
        };
        v.filter(|v| v.is_finite())
    }

    /// The metrics that some matrix of `matrices` has.
    pub fn present(matrices: &[Matrix]) -> Vec<Metric> {
        Metric::ALL
            .into_iter()
            .filter(|metric| {
                matrices
                    .iter()
                    .any(|m| m.is_matrix() && m.layer.is_some() && metric.of(m).is_some())
            })
            .collect()
    }
}
