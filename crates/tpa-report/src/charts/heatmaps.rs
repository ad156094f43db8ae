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

/// The rows (series) and columns (every layer from the first to the last).
fn frame(series: &[(String, Vec<Cell>)]) -> (Vec<String>, Vec<u32>) {
    let rows = series.iter().map(|(n, _)| n.clone()).collect();
    let layers = series
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(|c| c.layer));
    let (lo, hi) = layers.fold((u32::MAX, 0), |(a, b), l| (a.min(l), b.max(l)));
    let columns = if lo <= hi {
        (lo..=hi).collect()
    } else {
        Vec::new()
    };
    (rows, columns)
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
    let series = by_series(matrices, metric);
    let (rows, columns) = frame(&series);
    if columns.is_empty() {
        return None;
    }
    let mut values = vec![vec![None; columns.len()]; rows.len()];
    let mut tips = vec![vec![String::new(); columns.len()]; rows.len()];
    for (r, (name, cells)) in series.iter().enumerate() {
        for c in cells {
            let col = (c.layer - columns[0]) as usize;
            values[r][col] = Some(c.mean);
            tips[r][col] = cell_tip(name, metric, c);
        }
    }
    let map = Heatmap {
        title: format!("{} by layer and block type", metric.name()),
        note: Some("hover over a cell for its value and matrix; grey: no such matrix".into()),
        rows,
        columns: columns.iter().map(u32::to_string).collect(),
        x_label: "layer".into(),
        value_label: metric.name().into(),
        values,
        tips,
        colors: Colors::Sequential {
            log: metric.axis() == Kind::Log,
        },
    };
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
    let (rows, columns) = frame(&series);
    if columns.is_empty() {
        return None;
    }
    let mut values = vec![vec![None; columns.len()]; rows.len()];
    let mut tips = vec![vec![String::new(); columns.len()]; rows.len()];
    for (r, (name, cells)) in series.iter().enumerate() {
        for c in cells {
            let col = (c.layer - columns[0]) as usize;
            values[r][col] = Some(c.mean);
            tips[r][col] = format!(
                "layer {} · {name}: change of {} = {}{}",
                c.layer,
                metric.name(),
                format_number(c.mean),
                c.only
                    .as_ref()
                    .map(|n| format!("\n{n}"))
                    .unwrap_or_default()
            );
        }
    }
    let map = Heatmap {
        title: format!(
            "{}: change of {} from {}",
            other.label,
            metric.name(),
            reference.label
        ),
        note: Some("matrices matched by name; blue: lower than the reference, red: higher".into()),
        rows,
        columns: columns.iter().map(u32::to_string).collect(),
        x_label: "layer".into(),
        value_label: change_label(metric),
        values,
        tips,
        colors: Colors::Diverging,
    };
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
