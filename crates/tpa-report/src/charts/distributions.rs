//! Model-wide histograms of α and of the 90%-energy ratio (Martin, Peng &
//! Mahoney 2021, Fig. 8). Input and output embeddings are left out of the
//! bars and marked by lines, as the paper leaves them out.

use super::Chart;
use crate::alerts::{ALPHA_HIGH, ALPHA_LOW, MIN_EVALS};
use crate::draw::axis::AxisSpec;
use crate::draw::plot::{Bar, Layer, LegendEntry, Plot};
use crate::draw::scale::{Kind, format_number};
use crate::draw::{Color, Stroke, palette};
use crate::input::{Input, Matrix};

/// A histogram's bins: `bins` bars of `width` from `lo`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bins {
    lo: f64,
    width: f64,
    bins: usize,
}

impl Bins {
    /// Bins of a multiple of `unit` covering `values`, at most `max` of them.
    fn cover(values: &[f64], unit: f64, max: usize) -> Bins {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) {
            return Bins {
                lo: 0.0,
                width: unit,
                bins: 1,
            };
        }
        let mut width = unit;
        while ((hi - lo) / width).ceil() as usize + 1 > max {
            width *= 2.0;
        }
        let lo = (lo / width).floor() * width;
        let bins = (((hi - lo) / width).floor() as usize + 1).max(1);
        Bins { lo, width, bins }
    }

    fn counts(&self, values: &[f64]) -> Vec<usize> {
        let mut counts = vec![0; self.bins];
        for v in values {
            let i = ((v - self.lo) / self.width).floor();
            if i >= 0.0 {
                counts[(i as usize).min(self.bins - 1)] += 1;
            }
        }
        counts
    }

    fn edges(&self, i: usize) -> (f64, f64) {
        let x0 = self.lo + i as f64 * self.width;
        (x0, x0 + self.width)
    }
}

/// What a histogram counts.
struct Quantity {
    key: &'static str,
    title: &'static str,
    axis: &'static str,
    unit: f64,
    value: fn(&Matrix) -> Option<f64>,
}

const ALPHA: Quantity = Quantity {
    key: "alpha",
    title: "Distribution of α over the matrices",
    axis: "α (power-law exponent of the ESD)",
    unit: 0.25,
    value: |m| (m.design_rank >= MIN_EVALS).then_some(m.alpha).flatten(),
};

const ENERGY: Quantity = Quantity {
    key: "svd_90_percent_ratio",
    title: "Distribution of the 90%-energy ratio over the matrices",
    axis: "90%-energy rank / min(m, n)",
    unit: 0.025,
    value: |m| m.energy_ratio_90(),
};

/// The matrices a distribution counts (both sides > 1), split into the
/// counted ones and the embeddings, which are only marked.
fn split<'a>(matrices: &'a [Matrix], q: &Quantity) -> (Vec<f64>, Vec<(&'a Matrix, f64)>) {
    let mut counted = Vec::new();
    let mut marked = Vec::new();
    for m in matrices.iter().filter(|m| m.is_matrix()) {
        if let Some(v) = (q.value)(m).filter(|v| v.is_finite()) {
            if m.is_embedding_like() {
                marked.push((m, v));
            } else {
                counted.push(v);
            }
        }
    }
    (counted, marked)
}

/// The α and energy-ratio histograms of one model.
pub fn distributions(matrices: &[Matrix]) -> Vec<Chart> {
    [ALPHA, ENERGY]
        .iter()
        .filter_map(|q| {
            let (counted, marked) = split(matrices, q);
            if counted.is_empty() && marked.is_empty() {
                return None;
            }
            let all: Vec<f64> = counted.iter().copied().chain(marked.iter().map(|p| p.1)).collect();
            let bins = Bins::cover(&all, q.unit, 60);
            let counts = bins.counts(&counted);
            let mut plot = Plot::new(
                q.title,
                AxisSpec::new(q.axis, Kind::Linear),
                AxisSpec::new("matrices", Kind::Count).include(0.0),
            )
            .size(760.0, 320.0)
            .note(format!(
                "{} matrices; {} embedding and output matrices are left out of the bars and drawn as lines",
                counted.len(),
                marked.len()
            ));
            if q.key == "alpha" {
                plot.layer(Layer::Span {
                    x0: ALPHA_LOW,
                    x1: ALPHA_HIGH,
                    fill: Color::hex(0x009E73).with_alpha(0.08),
                });
                plot.legend.push(LegendEntry::swatch(
                    "2 ≤ α ≤ 6 (WeightWatcher)",
                    Color::hex(0x009E73).with_alpha(0.25),
                ));
            }
            let (mut bars, mut tips) = (Vec::new(), Vec::new());
            for (i, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                let (x0, x1) = bins.edges(i);
                bars.push(Bar { x0, x1, y: count as f64, base: 0.0 });
                tips.push(format!(
                    "{} ≤ x < {}: {count} matrices",
                    format_number(x0),
                    format_number(x1)
                ));
            }
            plot.layer(Layer::Bars {
                bars,
                fill: Color::hex(0x0072B2).with_alpha(0.75),
                tips,
            });
            plot.legend.push(LegendEntry::swatch("matrices", Color::hex(0x0072B2)));
            for (m, v) in &marked {
                let (color, _) = palette::block_type(&m.block_type);
                let stroke = Stroke::dashed(color, 1.5);
                plot.layer(Layer::VLine {
                    x: *v,
                    stroke,
                    label: None,
                });
                plot.legend.push(LegendEntry::line(
                    format!("{}: {}", m.block_type, format_number(*v)),
                    stroke,
                    None,
                ));
            }
            Some(Chart::new(format!("distribution_{}", q.key), plot.render()))
        })
        .collect()
}

/// The same histograms for several models, as outlines of each model's
/// share of its matrices, so that models of different sizes compare.
pub fn compare_distributions(inputs: &[Input]) -> Vec<Chart> {
    [ALPHA, ENERGY]
        .iter()
        .filter_map(|q| {
            let per_model: Vec<Vec<f64>> = inputs
                .iter()
                .map(|i| split(&i.result.matrices, q).0)
                .collect();
            let all: Vec<f64> = per_model.iter().flatten().copied().collect();
            if all.is_empty() {
                return None;
            }
            let bins = Bins::cover(&all, q.unit, 60);
            let mut plot = Plot::new(
                q.title,
                AxisSpec::new(q.axis, Kind::Linear),
                AxisSpec::new("share of the model's matrices", Kind::Linear).include(0.0),
            )
            .size(760.0, 320.0)
            .note("embedding and output matrices left out");
            for (i, values) in per_model.iter().enumerate() {
                if values.is_empty() {
                    continue;
                }
                let counts = bins.counts(values);
                let mut points = Vec::with_capacity(2 * bins.bins + 2);
                points.push((bins.lo, 0.0));
                for (b, &count) in counts.iter().enumerate() {
                    let (x0, x1) = bins.edges(b);
                    let share = count as f64 / values.len() as f64;
                    points.push((x0, share));
                    points.push((x1, share));
                }
                points.push((bins.edges(bins.bins - 1).1, 0.0));
                let stroke = Stroke::solid(palette::model(i), 1.8);
                plot.layer(Layer::Line {
                    points,
                    stroke,
                    marker: None,
                    tips: Vec::new(),
                });
                plot.legend.push(LegendEntry::line(
                    format!("{} ({})", inputs[i].label, values.len()),
                    stroke,
                    None,
                ));
            }
            Some(Chart::new(
                format!("compare_distribution_{}", q.key),
                plot.render(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_every_value_once() {
        let values = [2.1, 2.2, 3.9, 6.0, 6.01];
        let bins = Bins::cover(&values, 0.25, 60);
        assert_eq!(bins.lo, 2.0);
        let counts = bins.counts(&values);
        assert_eq!(counts.iter().sum::<usize>(), values.len());
        assert_eq!(counts[0], 2);
    }

    #[test]
    fn wide_ranges_get_wider_bins() {
        let bins = Bins::cover(&[0.0, 100.0], 0.25, 60);
        assert!(bins.bins <= 60 && bins.width >= 2.0, "{bins:?}");
    }
}
