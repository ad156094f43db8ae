//! Charts of a `tpa-embedding` sweep: the F-ratio and silhouette curves
//! over k (also `tpa-embedding`'s own `anova_curve`), cluster sizes and
//! per-cluster silhouettes.

use super::Chart;
use crate::draw::axis::AxisSpec;
use crate::draw::plot::{Bar, Layer, Plot};
use crate::draw::scale::{Kind, format_number};
use crate::draw::{Color, Scene, Stroke};
use crate::input::{CurveRow, Embedding};

const F_COLOR: Color = Color::hex(0x0072B2);
const S_COLOR: Color = Color::hex(0xD55E00);
const CHOSEN: Color = Color::hex(0x333333);

/// F against k above the silhouette against k, sharing the k axis, with
/// the chosen k marked in both. Two panels instead of two y axes: each
/// curve gets its own honest scale.
pub fn sweep_curve(points: &[CurveRow], chosen_k: usize, criterion: &str, title: &str) -> Scene {
    let f: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.k as f64, p.f_ratio?)))
        .collect();
    let s: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.k as f64, p.silhouette?)))
        .collect();
    let k_range = points
        .iter()
        .map(|p| p.k as f64)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), k| {
            (a.min(k), b.max(k))
        });
    let k_axis = || {
        let axis = AxisSpec::new("k (clusters)", Kind::Integer);
        if k_range.0 <= k_range.1 {
            axis.range(k_range.0 - 0.5, k_range.1 + 0.5)
        } else {
            axis
        }
    };
    let chosen = |label: bool| Layer::VLine {
        x: chosen_k as f64,
        stroke: Stroke::dashed(CHOSEN, 1.2),
        label: label.then(|| format!("chosen k = {chosen_k} ({criterion})")),
    };
    let tips = |values: &[(f64, f64)], what: &str| -> Vec<String> {
        values
            .iter()
            .map(|(k, v)| format!("k = {k}: {what} = {}", format_number(*v)))
            .collect()
    };
    let mut top = Plot::new(
        title,
        k_axis(),
        AxisSpec::new("F-ratio (ANOVA)", Kind::Linear).include(0.0),
    )
    .size(820.0, 300.0);
    top.layer(chosen(true));
    top.layer(Layer::Line {
        tips: tips(&f, "F"),
        points: f,
        stroke: Stroke::solid(F_COLOR, 2.0),
        marker: Some(crate::draw::Marker::Circle),
    });
    let mut bottom = Plot::new(
        "Mean silhouette (on a seeded sample of rows)",
        k_axis(),
        AxisSpec::new("silhouette", Kind::Linear).include(0.0),
    )
    .size(820.0, 240.0);
    bottom.layer(Layer::HLine {
        y: 0.0,
        stroke: Stroke::solid(Color::MUTED, 1.0),
        label: None,
    });
    bottom.layer(chosen(false));
    bottom.layer(Layer::Line {
        tips: tips(&s, "silhouette"),
        points: s,
        stroke: Stroke::solid(S_COLOR, 1.8),
        marker: Some(crate::draw::Marker::Square),
    });
    let left = top.natural_left().max(bottom.natural_left());
    (top.left, bottom.left) = (Some(left), Some(left));
    let (top, bottom) = (top.render(), bottom.render());
    let mut scene = Scene::new(top.width, top.height + bottom.height, title);
    let h = top.height;
    scene.place(top, 0.0, 0.0);
    scene.place(bottom, 0.0, h);
    scene
}

/// The embedding section's charts; their names end in `suffix`.
pub fn embedding_charts(embedding: &Embedding, suffix: &str) -> Vec<Chart> {
    let e = &embedding.report;
    let sampled = if e.run.sweep_sampled {
        format!(" (sweep on {} sampled rows)", e.run.sweep_rows)
    } else {
        String::new()
    };
    let title = format!("{}: F-ratio over k{sampled}", e.tensor);
    let mut charts = vec![Chart::new(
        format!("embedding_curve{suffix}"),
        sweep_curve(&e.curve, e.optimal_k, &embedding.criterion(), &title),
    )];
    let mut sizes = Plot::new(
        format!("Cluster sizes at k = {}", e.optimal_k),
        AxisSpec::new("cluster", Kind::Integer),
        AxisSpec::new("tokens", Kind::Count).include(0.0),
    )
    .size(640.0, 280.0);
    let bar = |id: usize, y: f64| Bar {
        x0: id as f64 - 0.4,
        x1: id as f64 + 0.4,
        y,
        base: 0.0,
    };
    sizes.layer(Layer::Bars {
        bars: e
            .clusters
            .iter()
            .map(|c| bar(c.cluster_id, c.size as f64))
            .collect(),
        fill: F_COLOR,
        tips: e
            .clusters
            .iter()
            .map(|c| {
                format!(
                    "cluster {}: {} tokens ({:.1}%)",
                    c.cluster_id, c.size, c.percentage
                )
            })
            .collect(),
    });
    charts.push(Chart::new(
        format!("embedding_sizes{suffix}"),
        sizes.render(),
    ));
    let with_silhouette: Vec<_> = e
        .clusters
        .iter()
        .filter(|c| c.silhouette_score.is_some())
        .collect();
    if !with_silhouette.is_empty() {
        let mut sil = Plot::new(
            format!("Silhouette per cluster at k = {}", e.optimal_k),
            AxisSpec::new("cluster", Kind::Integer),
            AxisSpec::new("mean silhouette of the members", Kind::Linear).include(0.0),
        )
        .size(640.0, 280.0);
        sil.layer(Layer::Bars {
            bars: with_silhouette
                .iter()
                .map(|c| bar(c.cluster_id, c.silhouette_score.unwrap_or(0.0)))
                .collect(),
            fill: S_COLOR,
            tips: with_silhouette
                .iter()
                .map(|c| {
                    format!(
                        "cluster {}: silhouette {}",
                        c.cluster_id,
                        format_number(c.silhouette_score.unwrap_or(0.0))
                    )
                })
                .collect(),
        });
        charts.push(Chart::new(
            format!("embedding_silhouettes{suffix}"),
            sil.render(),
        ));
    }
    charts
}
