//! Layer × block type heatmaps of a metric (LASER's and AlphaPruning's
//! "where is the structure" view), and of its change between two models.

use std::collections::HashMap;

use super::Chart;
use crate::draw::heatmap::{Colors, Heatmap};
use crate::draw::scale::{Kind, format_number};
use crate::input::{Input, Matrix};
use crate::layers::{Cell, by_series, group};
use crate::metrics::Metric;

/// Width the heatmaps are laid out for.
pub const WIDTH: f64 = 900.0;

/// What a heatmap shows, besides its cells.
pub(crate) struct Labels {
    pub(crate) title: String,
    pub(crate) note: &'static str,
    pub(crate) value_label: String,
    pub(crate) colors: Colors,
}

/// The heatmap of grouped cells: rows are the series, columns every layer
/// from the first to the last; `None` when there are no cells.
pub(crate) fn heatmap_of(
    series: &[(String, Vec<Cell>)],
    labels: Labels,
    tip: impl Fn(&str, &Cell) -> String,
) -> Option<Heatmap> {
    let layers = series
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(|c| c.layer));
    let (lo, hi) = layers.fold((u32::MAX, 0), |(a, b), l| (a.min(l), b.max(l)));
    if lo > hi {
        return None;
    }
    let width = (hi - lo + 1) as usize;
    let mut values = vec![vec![None; width]; series.len()];
    let mut tips = vec![vec![String::new(); width]; series.len()];
    for (r, (name, cells)) in series.iter().enumerate() {
        for c in cells {
            let col = (c.layer - lo) as usize;
            values[r][col] = Some(c.mean);
            tips[r][col] = tip(name, c);
        }
    }
    Some(Heatmap {
        title: labels.title,
        note: Some(labels.note.into()),
        rows: series.iter().map(|(n, _)| n.clone()).collect(),
        columns: (lo..=hi).map(|l| l.to_string()).collect(),
        x_label: "layer".into(),
        value_label: labels.value_label,
        values,
        tips,
        colors: labels.colors,
    })
}

fn cell_tip(series: &str, metric: Metric, c: &Cell) -> String {
    match &c.only {
        Some(name) => format!(
            "layer {} · {series}: {} = {}\n{name}",
            c.layer,
            metric.name(),
            format_number(c.mean)
        ),
        None => format!(
            "layer {} · {series}: {} = {} (mean of {}; min {}, max {})",
            c.layer,
            metric.name(),
            format_number(c.mean),
            c.count,
            format_number(c.min),
            format_number(c.max)
        ),
    }
}

/// The heatmap of `metric`; `None` when no matrix inside a layer has it.
pub fn heatmap(matrices: &[Matrix], metric: Metric) -> Option<Chart> {
    let labels = Labels {
        title: format!("{} by layer and block type", metric.name()),
        note: "hover over a cell for its value and matrix; grey: no such matrix",
        value_label: metric.name().into(),
        colors: Colors::Sequential {
            log: metric.axis() == Kind::Log,
        },
    };
    let map = heatmap_of(&by_series(matrices, metric), labels, |name, c| {
        cell_tip(name, metric, c)
    })?;
    Some(Chart::new(
        format!("heatmap_{}", metric.key()),
        map.render(WIDTH),
    ))
}

/// How a metric's change is measured: differences for α and ratios,
/// relative changes for scale-like metrics.
pub fn change(metric: Metric, reference: f64, other: f64) -> Option<f64> {
    match metric {
        Metric::Alpha | Metric::RankRatio | Metric::EnergyRatio90 => Some(other - reference),
        _ => (reference != 0.0).then(|| (other - reference) / reference.abs()),
    }
}

/// The label of [`change`] for `metric`.
pub fn change_label(metric: Metric) -> String {
    match metric {
        Metric::Alpha | Metric::RankRatio | Metric::EnergyRatio90 => {
            format!("Δ {} (model − reference)", metric.name())
        }
        _ => format!(
            "relative change of the {} ((model − reference) / reference)",
            metric.name()
        ),
    }
}

/// The heatmap of `metric`'s change from `reference` to `other`, matrix by
/// matrix (matched by name), averaged per layer and block type.
pub fn delta_heatmap(
    reference: &Input,
    other: &Input,
    index: usize,
    metric: Metric,
) -> Option<Chart> {
    let base: HashMap<&str, f64> = reference
        .result
        .matrices
        .iter()
        .filter_map(|m| Some((m.name.as_str(), metric.of(m)?)))
        .collect();
    let series = group(&other.result.matrices, |m| {
        change(metric, *base.get(m.name.as_str())?, metric.of(m)?)
    });
    let labels = Labels {
        title: format!(
            "{}: change of {} from {}",
            other.label,
            metric.name(),
            reference.label
        ),
        note: "matrices matched by name; blue: lower than the reference, red: higher",
        value_label: change_label(metric),
        colors: Colors::Diverging,
    };
    let map = heatmap_of(&series, labels, |name, c| {
        format!(
            "layer {} · {name}: change of {} = {}{}",
            c.layer,
            metric.name(),
            format_number(c.mean),
            c.only
                .as_ref()
                .map(|n| format!("\n{n}"))
                .unwrap_or_default()
        )
    })?;
    Some(Chart::new(
        format!("delta_{}_{index}_{}", metric.key(), slug(&other.label)),
        map.render(WIDTH),
    ))
}

/// A label as a file-name part.
pub fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "model".into() } else { s }
}
