//! Spectrum cards: for one matrix, the log-log ESD with its power-law fit
//! (WeightWatcher's `esd` plot), the CCDF that WeightWatcher's users asked
//! for (its issue #281), and the scree / cumulative-energy curve.
//!
//! Curves are drawn from at most [`MAX_POINTS`] points of a spectrum:
//! log-spaced in the eigenvalue or rank, plus the largest values in full.
//! Only the drawing is thinned; every number shown is computed from all values.

use super::Chart;
use crate::draw::axis::AxisSpec;
use crate::draw::plot::{Bar, Layer, Plot};
use crate::draw::scale::{Kind, format_number};
use crate::draw::{Color, Stroke};
use crate::input::Matrix;

/// The most points one curve of a card is drawn with.
pub const MAX_POINTS: usize = 400;
/// Log-spaced bins of the ESD histogram.
const ESD_BINS: usize = 50;
const WIDTH: f64 = 330.0;
const HEIGHT: f64 = 250.0;
const BARS: Color = Color::hex(0x56B4E9);
const FIT: Color = Color::hex(0xD55E00);
const ENERGY: Color = Color::hex(0x0072B2);

/// The three charts of one matrix's card.
pub fn card(m: &Matrix, sigma: &[f64], index: usize) -> Vec<Chart> {
    let lambda: Vec<f64> = {
        let mut l: Vec<f64> = sigma.iter().map(|s| s * s).filter(|l| *l > 0.0).collect();
        l.sort_by(f64::total_cmp);
        l
    };
    let stem = format!("card_{index:03}");
    vec![
        Chart::new(format!("{stem}_esd"), esd(m, &lambda).render()),
        Chart::new(format!("{stem}_ccdf"), ccdf(m, &lambda).render()),
        Chart::new(format!("{stem}_scree"), scree(m, sigma).render()),
    ]
}

/// The fitted tail: xmin, α, and the share of eigenvalues at or above xmin.
fn tail(m: &Matrix, lambda: &[f64]) -> Option<(f64, f64, f64)> {
    let (alpha, xmin) = (m.alpha?, m.alpha_xmin?);
    let n_tail = lambda.len() - lambda.partition_point(|&l| l < xmin);
    (n_tail > 0 && !lambda.is_empty()).then(|| (xmin, alpha, n_tail as f64 / lambda.len() as f64))
}

fn fit_note(m: &Matrix, lambda: &[f64]) -> String {
    let short = |v: f64| format!("{v:.3}");
    match tail(m, lambda) {
        Some((xmin, alpha, share)) => format!(
            "α {} · xmin {} · D {} · tail {:.0}% of λ",
            short(alpha),
            format_number(xmin),
            m.ks_distance.map_or("–".into(), short),
            share * 100.0,
        ),
        None if m.alpha.is_some() => format!(
            "α {} (xmin not in this result)",
            m.alpha.map_or("–".into(), short)
        ),
        None => "no power-law fit".into(),
    }
}

/// Log-spaced points from `lo` to `hi`.
fn logspace(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    let (a, b) = (lo.log10(), hi.log10());
    (0..n).map(move |i| 10f64.powf(a + (b - a) * i as f64 / (n - 1).max(1) as f64))
}

fn esd(m: &Matrix, lambda: &[f64]) -> Plot {
    let mut plot = Plot::new(
        "ESD (log-log)",
        AxisSpec::new("λ = σ²", Kind::Log),
        AxisSpec::new("density", Kind::Log),
    )
    .size(WIDTH, HEIGHT)
    .note(fit_note(m, lambda));
    let (Some(&lo), Some(&hi)) = (lambda.first(), lambda.last()) else {
        return plot;
    };
    let hi = if hi > lo { hi } else { lo * 10.0 };
    let edges: Vec<f64> = logspace(lo, hi, ESD_BINS + 1).collect();
    let mut counts = vec![0usize; ESD_BINS];
    for &l in lambda {
        let i = edges.partition_point(|&e| e <= l).saturating_sub(1);
        counts[i.min(ESD_BINS - 1)] += 1;
    }
    let n = lambda.len() as f64;
    let bars: Vec<Bar> = (0..ESD_BINS)
        .filter(|&i| counts[i] > 0)
        .map(|i| Bar {
            x0: edges[i],
            x1: edges[i + 1],
            y: counts[i] as f64 / (n * (edges[i + 1] - edges[i])),
            base: 0.0,
        })
        .collect();
    plot.layer(Layer::Bars {
        bars,
        fill: BARS,
        tips: Vec::new(),
    });
    if let Some((xmin, alpha, share)) = tail(m, lambda) {
        // The tail's density, scaled by its share of all eigenvalues.
        fit_overlay(&mut plot, xmin, hi, |l| {
            share * (alpha - 1.0) / xmin * (l / xmin).powf(-alpha)
        });
    }
    plot
}

/// The fitted power law from xmin to `hi` (dashed) and the xmin line.
fn fit_overlay(plot: &mut Plot, xmin: f64, hi: f64, curve: impl Fn(f64) -> f64) {
    plot.layer(Layer::Line {
        points: logspace(xmin, hi.max(xmin), 60)
            .map(|l| (l, curve(l)))
            .collect(),
        stroke: Stroke::dashed(FIT, 1.8),
        marker: None,
        tips: Vec::new(),
    });
    plot.layer(Layer::VLine {
        x: xmin,
        stroke: Stroke::solid(FIT, 1.0),
        label: Some("xmin".into()),
    });
}

/// Indices of `n` ascending values to draw: log-spaced by value, plus the
/// largest values whole.
fn thin_ascending(values: &[f64]) -> Vec<usize> {
    let n = values.len();
    if n <= MAX_POINTS {
        return (0..n).collect();
    }
    let top = MAX_POINTS / 4;
    let mut picks: Vec<usize> = logspace(values[0], values[n - 1], MAX_POINTS - top)
        .map(|v| values.partition_point(|&x| x < v).min(n - 1))
        .chain(n - top..n)
        .collect();
    picks.sort_unstable();
    picks.dedup();
    picks
}

fn ccdf(m: &Matrix, lambda: &[f64]) -> Plot {
    let mut plot = Plot::new(
        "CCDF of λ",
        AxisSpec::new("λ = σ²", Kind::Log),
        AxisSpec::new("P(Λ ≥ λ)", Kind::Log),
    )
    .size(WIDTH, HEIGHT)
    .note(format!(
        "{} eigenvalues; dashed: the power-law fit",
        lambda.len()
    ));
    let n = lambda.len() as f64;
    let points: Vec<(f64, f64)> = thin_ascending(lambda)
        .into_iter()
        .map(|i| (lambda[i], (n - i as f64) / n))
        .collect();
    plot.layer(Layer::Line {
        points,
        stroke: Stroke::solid(ENERGY, 1.6),
        marker: None,
        tips: Vec::new(),
    });
    if let (Some((xmin, alpha, share)), Some(&hi)) = (tail(m, lambda), lambda.last()) {
        fit_overlay(&mut plot, xmin, hi, |l| {
            share * (l / xmin).powf(1.0 - alpha)
        });
    }
    plot
}

/// Smallest k with Σ_{i≤k} σ_i² ≥ share · Σσ².
fn energy_rank(cumulative: &[f64], share: f64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    cumulative
        .iter()
        .position(|&c| c >= share * total)
        .map_or(cumulative.len(), |k| k + 1)
}

fn scree(m: &Matrix, sigma: &[f64]) -> Plot {
    let mut plot = Plot::new(
        "Scree and cumulative energy",
        AxisSpec::new("rank k", Kind::Integer),
        AxisSpec::new("share", Kind::Linear).range(0.0, 1.05),
    )
    .size(WIDTH, HEIGHT)
    .note("solid: cumulative share of Σσ²; dotted: σ_k / σ₁");
    let n = sigma.len();
    if n == 0 {
        return plot;
    }
    let mut cumulative = Vec::with_capacity(n);
    let mut acc = 0.0;
    for s in sigma {
        acc += s * s;
        cumulative.push(acc);
    }
    let total = acc.max(f64::MIN_POSITIVE);
    let top = sigma[0].max(f64::MIN_POSITIVE);
    let ranks: Vec<usize> = [0.5, 0.9, 0.99]
        .iter()
        .map(|&s| energy_rank(&cumulative, s))
        .collect();
    let mut picks: Vec<usize> = if n <= MAX_POINTS {
        (0..n).collect()
    } else {
        let linear = (0..MAX_POINTS / 2).map(|i| i * (n - 1) / (MAX_POINTS / 2 - 1));
        let log =
            logspace(1.0, n as f64, MAX_POINTS / 2).map(|k| (k.round() as usize).clamp(1, n) - 1);
        linear
            .chain(log)
            .chain(ranks.iter().map(|k| k - 1))
            .collect()
    };
    picks.sort_unstable();
    picks.dedup();
    let at = |i: usize| (i + 1) as f64;
    plot.layer(Layer::Line {
        points: picks
            .iter()
            .map(|&i| (at(i), cumulative[i] / total))
            .collect(),
        stroke: Stroke::solid(ENERGY, 1.8),
        marker: None,
        tips: Vec::new(),
    });
    plot.layer(Layer::Line {
        points: picks.iter().map(|&i| (at(i), sigma[i] / top)).collect(),
        stroke: Stroke::dotted(Color::hex(0x444444), 1.6),
        marker: None,
        tips: Vec::new(),
    });
    for (k, label) in ranks.iter().zip(["50%", "90%", "99%"]) {
        plot.layer(Layer::VLine {
            x: *k as f64,
            stroke: Stroke::dashed(Color::hex(0xD55E00), 1.0),
            label: Some(label.into()),
        });
    }
    if let Some(rank) = m.actual_rank.filter(|&r| (r as usize) < n) {
        plot.layer(Layer::VLine {
            x: rank as f64,
            stroke: Stroke::solid(Color::hex(0xCC79A7), 1.4),
            label: Some(format!("rank {rank}")),
        });
    }
    plot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_limit() {
        let values: Vec<f64> = (1..=5000).map(|i| i as f64).collect();
        let picks = thin_ascending(&values);
        assert!(picks.len() <= MAX_POINTS);
        assert_eq!(picks.first(), Some(&0));
        assert_eq!(picks.last(), Some(&4999));
    }

    #[test]
    fn energy_ranks_match_the_definition() {
        let cumulative = [16.0, 20.0, 20.0];
        assert_eq!(energy_rank(&cumulative, 0.5), 1);
        assert_eq!(energy_rank(&cumulative, 0.9), 2);
    }
}
