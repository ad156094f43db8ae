//! Layer profiles: a metric against layer index, one line per block type
//! (Martin, Peng & Mahoney 2021, Fig. 4). Experts of a layer are drawn as
//! their mean with a min–max band.

use super::{Chart, band, series_legend, series_style};
use crate::alerts::{ALPHA_HIGH, ALPHA_LOW};
use crate::draw::axis::AxisSpec;
use crate::draw::plot::{Layer, LegendEntry, Plot};
use crate::draw::scale::{Kind, format_number};
use crate::draw::{Color, Scene, Stroke, TextStyle, palette};
use crate::input::{Input, Matrix};
use crate::layers::{Cell, by_series, order};
use crate::metrics::Metric;

/// The y axis of `metric`: ratios span [0, 1]; α shows WeightWatcher's band.
fn y_axis(metric: Metric) -> AxisSpec {
    let axis = AxisSpec::new(metric.label(), metric.axis());
    match metric {
        Metric::RankRatio | Metric::EnergyRatio90 => axis.range(0.0, 1.05),
        // Room below α = 2, so that its line is not the axis.
        Metric::Alpha => axis.include(ALPHA_LOW - 0.5).include(ALPHA_HIGH),
        _ => axis,
    }
}

fn references(plot: &mut Plot, metric: Metric) {
    if metric == Metric::Alpha {
        for (a, label) in [(ALPHA_LOW, "α = 2"), (ALPHA_HIGH, "α = 6")] {
            plot.layer(Layer::HLine {
                y: a,
                stroke: Stroke::dashed(Color::MUTED, 1.0),
                label: Some(label.into()),
            });
        }
    }
}

fn tip(series: &str, metric: Metric, c: &Cell) -> String {
    match &c.only {
        Some(name) => format!(
            "{name}\nlayer {} · {series}\n{} = {}",
            c.layer,
            metric.name(),
            format_number(c.mean)
        ),
        None => format!(
            "layer {} · {series}: mean of {} matrices\n{} = {} (min {}, max {})",
            c.layer,
            c.count,
            metric.name(),
            format_number(c.mean),
            format_number(c.min),
            format_number(c.max)
        ),
    }
}

/// One profile chart per metric the result has.
pub fn layer_profiles(matrices: &[Matrix]) -> Vec<Chart> {
    Metric::present(matrices)
        .into_iter()
        .filter_map(|metric| {
            let series = by_series(matrices, metric);
            let mut plot = Plot::new(
                format!("{} per layer", metric.name()),
                AxisSpec::new("layer", Kind::Integer),
                y_axis(metric),
            )
            .size(760.0, 360.0);
            if series
                .iter()
                .any(|(_, cells)| cells.iter().any(|c| c.count > 1))
            {
                plot = plot.note("experts: mean of the layer's experts, band from min to max");
            }
            references(&mut plot, metric);
            for (name, cells) in &series {
                let (stroke, marker) = series_style(name);
                if cells.iter().any(|c| c.count > 1) {
                    plot.layer(Layer::Band {
                        lower: cells.iter().map(|c| (c.layer as f64, c.min)).collect(),
                        upper: cells.iter().map(|c| (c.layer as f64, c.max)).collect(),
                        fill: band(stroke.color),
                    });
                }
                plot.layer(Layer::Line {
                    points: gaps(cells),
                    stroke,
                    marker: Some(marker),
                    tips: gap_tips(cells, |c| tip(name, metric, c)),
                });
                plot.legend.push(series_legend(name));
            }
            plot.has_data()
                .then(|| Chart::new(format!("profile_{}", metric.key()), plot.render()))
        })
        .collect()
}

/// The points of a series, with a break (NaN) where a layer is missing.
fn gaps(cells: &[Cell]) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(cells.len());
    for (i, c) in cells.iter().enumerate() {
        if i > 0 && c.layer > cells[i - 1].layer + 1 {
            points.push((c.layer as f64 - 0.5, f64::NAN));
        }
        points.push((c.layer as f64, c.mean));
    }
    points
}

/// Tooltips aligned with [`gaps`]' points.
fn gap_tips(cells: &[Cell], tip: impl Fn(&Cell) -> String) -> Vec<String> {
    let mut tips = Vec::with_capacity(cells.len());
    for (i, c) in cells.iter().enumerate() {
        if i > 0 && c.layer > cells[i - 1].layer + 1 {
            tips.push(String::new());
        }
        tips.push(tip(c));
    }
    tips
}

/// Comparison: per metric, one small panel per block type with one line per
/// model, under a shared legend of the models.
pub fn compare_profiles(inputs: &[Input]) -> Vec<Chart> {
    let present: Vec<Vec<Metric>> = inputs
        .iter()
        .map(|i| Metric::present(&i.result.matrices))
        .collect();
    Metric::ALL
        .into_iter()
        .filter(|m| present.iter().any(|p| p.contains(m)))
        .filter_map(|metric| {
            let per_model: Vec<Vec<(String, Vec<Cell>)>> = inputs
                .iter()
                .map(|i| by_series(&i.result.matrices, metric))
                .collect();
            let mut names: Vec<String> =
                per_model.iter().flatten().map(|(n, _)| n.clone()).collect();
            names.sort_by_key(|n| order(n));
            names.dedup();
            if names.is_empty() {
                return None;
            }
            let panels: Vec<Scene> = names
                .iter()
                .map(|name| {
                    let mut plot = Plot::new(
                        name.clone(),
                        AxisSpec::new("layer", Kind::Integer),
                        AxisSpec {
                            label: metric.name().into(),
                            ..y_axis(metric)
                        },
                    )
                    .size(330.0, 230.0);
                    references(&mut plot, metric);
                    for (i, series) in per_model.iter().enumerate() {
                        if let Some((_, cells)) = series.iter().find(|(n, _)| n == name) {
                            plot.layer(Layer::Line {
                                points: gaps(cells),
                                stroke: Stroke::solid(palette::model(i), 1.5),
                                marker: Some(palette::model_marker(i)),
                                tips: gap_tips(cells, |c| {
                                    format!("{}\n{}", inputs[i].label, tip(name, metric, c))
                                }),
                            });
                        }
                    }
                    plot.render()
                })
                .collect();
            let legend: Vec<LegendEntry> = inputs
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    LegendEntry::line(
                        input.label.clone(),
                        Stroke::solid(palette::model(i), 1.5),
                        Some(palette::model_marker(i)),
                    )
                })
                .collect();
            let title = format!("{} per layer, by block type", metric.name());
            Some(Chart::new(
                format!("compare_profile_{}", metric.key()),
                grid(&title, panels, &legend, 3),
            ))
        })
        .collect()
}

/// Panels in rows of `columns`, under a title and a one-line legend.
pub fn grid(title: &str, panels: Vec<Scene>, legend: &[LegendEntry], columns: usize) -> Scene {
    let (pw, ph) = panels
        .first()
        .map_or((330.0, 230.0), |p| (p.width, p.height));
    let rows = panels.len().div_ceil(columns);
    let header = 30.0 + 20.0 * legend_rows(legend, pw * columns as f64) as f64;
    let width = pw * columns.min(panels.len()).max(1) as f64;
    let mut scene = Scene::new(width.max(480.0), header + ph * rows as f64, title);
    scene.text(12.0, 20.0, title, TextStyle::new(14.0).bold());
    let legend_width = scene.width - 24.0;
    draw_legend_row(&mut scene, legend, 12.0, 42.0, legend_width);
    for (i, panel) in panels.into_iter().enumerate() {
        let (r, c) = (i / columns, i % columns);
        scene.place(panel, c as f64 * pw, header + r as f64 * ph);
    }
    scene
}

fn legend_rows(legend: &[LegendEntry], width: f64) -> usize {
    let mut rows = 1;
    let mut x = 0.0;
    for e in legend {
        let w = entry_width(e);
        if x + w > width && x > 0.0 {
            rows += 1;
            x = 0.0;
        }
        x += w;
    }
    rows
}

fn entry_width(e: &LegendEntry) -> f64 {
    30.0 + crate::draw::text::width(&e.label, 11.0, false).min(220.0) + 16.0
}

/// A legend laid out left to right, wrapping at `width`.
pub fn draw_legend_row(scene: &mut Scene, legend: &[LegendEntry], x0: f64, y0: f64, width: f64) {
    let (mut x, mut y) = (x0, y0);
    for e in legend {
        let w = entry_width(e);
        if x + w > x0 + width && x > x0 {
            x = x0;
            y += 20.0;
        }
        if let Some(stroke) = e.stroke {
            scene.line((x, y - 4.0), (x + 20.0, y - 4.0), stroke);
        }
        if let Some(marker) = e.marker {
            scene.push(crate::draw::Item::Point {
                x: x + 10.0,
                y: y - 4.0,
                r: 3.5,
                marker,
                fill: e.color,
                tip: None,
            });
        }
        scene.text(
            x + 26.0,
            y,
            crate::draw::text::fit(&e.label, 11.0, 220.0),
            TextStyle::new(11.0),
        );
        x += w;
    }
}
