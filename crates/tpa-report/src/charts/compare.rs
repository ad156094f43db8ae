//! Comparison charts: each model against the reference (the first result),
//! one point per matrix matched by name, and the most changed matrices.

use std::collections::HashMap;

use super::heatmaps::{change, slug};
use super::{Chart, series_style};
use crate::draw::axis::AxisSpec;
use crate::draw::plot::{Layer, LegendEntry, Plot};
use crate::draw::scale::format_number;
use crate::draw::{Color, Stroke};
use crate::input::{Input, Matrix};
use crate::layers::order;
use crate::metrics::Metric;

/// Matrices of `other` paired with the reference's of the same name.
pub fn matched<'a>(reference: &'a Input, other: &'a Input) -> Vec<(&'a Matrix, &'a Matrix)> {
    let base: HashMap<&str, &Matrix> = reference
        .result
        .matrices
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    other
        .result
        .matrices
        .iter()
        .filter_map(|m| Some((*base.get(m.name.as_str())?, m)))
        .collect()
}

/// Names in one result and not in the other: (only in the reference, only in `other`).
pub fn unmatched(reference: &Input, other: &Input) -> (Vec<String>, Vec<String>) {
    // The names of `from` that `other` lacks, in `from`'s row order.
    let only = |from: &Input, other: &Input| {
        let names: std::collections::HashSet<&str> = other
            .result
            .matrices
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        from.result
            .matrices
            .iter()
            .filter(|m| !names.contains(m.name.as_str()))
            .map(|m| m.name.clone())
            .collect::<Vec<_>>()
    };
    (only(reference, other), only(other, reference))
}

/// A scatter's points and their tooltips.
type Points = (Vec<(f64, f64)>, Vec<String>);

/// Model `index` against the reference for `metric`: a scatter with y = x.
pub fn scatter(reference: &Input, other: &Input, index: usize, metric: Metric) -> Option<Chart> {
    let pairs: Vec<(&Matrix, f64, f64)> = matched(reference, other)
        .into_iter()
        .filter(|(a, _)| a.is_matrix())
        .filter_map(|(a, b)| Some((b, metric.of(a)?, metric.of(b)?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    // Both axes span the same values, so that y = x is the diagonal.
    let (lo, hi) = pairs
        .iter()
        .flat_map(|p| [p.1, p.2])
        .filter(|v| metric.axis() != crate::draw::scale::Kind::Log || *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let axis = |label: &str| {
        AxisSpec::new(format!("{} — {label}", metric.name()), metric.axis())
            .include(lo)
            .include(hi)
    };
    // The section names the models; the axes say which is which.
    let mut plot = Plot::new(metric.name(), axis(&reference.label), axis(&other.label))
        .size(560.0, 420.0)
        .note(format!(
            "{} matrices matched by name; dashed: y = x",
            pairs.len()
        ));
    plot.layer(Layer::Diagonal {
        stroke: Stroke::dashed(Color::MUTED, 1.0),
    });
    let mut by_series: std::collections::BTreeMap<String, Points> = Default::default();
    for (m, x, y) in pairs {
        let slot = by_series.entry(m.series()).or_default();
        slot.0.push((x, y));
        slot.1.push(format!(
            "{}\n{}: {} → {}",
            m.name,
            metric.name(),
            format_number(x),
            format_number(y)
        ));
    }
    let mut by_series: Vec<(String, Points)> = by_series.into_iter().collect();
    by_series.sort_by_key(|s| order(&s.0));
    for (series, (points, tips)) in by_series {
        let (stroke, marker) = series_style(&series);
        plot.layer(Layer::Points {
            points,
            marker,
            color: stroke.color.with_alpha(0.8),
            radius: 3.2,
            tips,
        });
        plot.legend
            .push(LegendEntry::point(series, stroke.color, marker));
    }
    Some(Chart::new(
        format!("scatter_{}_{index}_{}", metric.key(), slug(&other.label)),
        plot.render(),
    ))
}

/// One of the most changed matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub name: String,
    pub layer: Option<u32>,
    pub block_type: String,
    /// The metric that changed most, relative to the reference.
    pub metric: Metric,
    pub reference: f64,
    pub value: f64,
    /// |change| / |reference value|.
    pub relative: f64,
}

/// The `n` matrices whose metrics changed most: the score of a matrix is
/// the largest relative change |b − a| / |a| over the metrics both have.
pub fn most_changed(reference: &Input, other: &Input, n: usize) -> Vec<Changed> {
    let mut changed: Vec<Changed> = matched(reference, other)
        .into_iter()
        .filter(|(a, _)| a.is_matrix())
        .filter_map(|(a, b)| {
            Metric::ALL
                .into_iter()
                .filter_map(|metric| {
                    let (x, y) = (metric.of(a)?, metric.of(b)?);
                    let relative = if x != 0.0 {
                        ((y - x) / x).abs()
                    } else if y != 0.0 {
                        f64::INFINITY
                    } else {
                        0.0
                    };
                    Some(Changed {
                        name: b.name.clone(),
                        layer: b.layer,
                        block_type: b.block_type.clone(),
                        metric,
                        reference: x,
                        value: y,
                        relative,
                    })
                })
                .max_by(|p, q| p.relative.total_cmp(&q.relative))
        })
        .filter(|c| c.relative > 0.0)
        .collect();
    changed.sort_by(|p, q| q.relative.total_cmp(&p.relative));
    changed.truncate(n);
    changed
}

/// The change of one metric as the delta heatmaps measure it, for tables.
pub fn describe_change(c: &Changed) -> String {
    match change(c.metric, c.reference, c.value) {
        Some(d) => format_number(d),
        None => "–".into(),
    }
}
