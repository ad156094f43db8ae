//! What fine-tuning changed, drawn: where (layer × block type heatmaps of
//! rel_fro and of ΔW's energy rank), how low-rank (LoRA fit error curves)
//! and whether new directions appeared (intruder dimensions per layer).

use std::collections::{BTreeMap, HashMap};

use super::heatmaps::{Labels, WIDTH, heatmap_of};
use super::{Chart, series_legend, series_style};
use crate::draw::Color;
use crate::draw::axis::AxisSpec;
use crate::draw::heatmap::Colors;
use crate::draw::plot::{Bar, Layer, LegendEntry, Plot};
use crate::draw::scale::{Kind, format_number};
use crate::input::{DiffMatrix, DiffResult, Matrix};
use crate::layers::{group, order};

/// The compared matrices (both sides > 1) and their rows by name.
fn compared(diff: &DiffResult) -> (Vec<Matrix>, HashMap<String, &DiffMatrix>) {
    let rows: Vec<&DiffMatrix> = diff.compared().filter(|r| r.matrix.is_matrix()).collect();
    let matrices = rows.iter().map(|r| r.matrix.clone()).collect();
    let by_name = rows
        .into_iter()
        .map(|r| (r.matrix.name.clone(), r))
        .collect();
    (matrices, by_name)
}

/// A layer × block type heatmap of one value of the compared matrices.
fn diff_heatmap(
    diff: &DiffResult,
    name: &str,
    labels: Labels,
    value: impl Fn(&DiffMatrix) -> Option<f64>,
) -> Option<Chart> {
    let (matrices, by_name) = compared(diff);
    let series = group(&matrices, |m| value(by_name.get(&m.name)?));
    let what = labels.value_label.clone();
    let map = heatmap_of(&series, labels, |series, c| match &c.only {
        Some(only) => format!(
            "layer {} · {series}: {what} = {}\n{only}",
            c.layer,
            format_number(c.mean)
        ),
        None => format!(
            "layer {} · {series}: {what} = {} (mean of {}; max {})",
            c.layer,
            format_number(c.mean),
            c.count,
            format_number(c.max)
        ),
    })?;
    Some(Chart::new(name, map.render(WIDTH)))
}

/// Where the weights moved: ‖ΔW‖_F / ‖W_base‖_F by layer and block type.
pub fn rel_fro_heatmap(diff: &DiffResult) -> Option<Chart> {
    let labels = Labels {
        title: "Relative change ‖ΔW‖_F / ‖W_base‖_F by layer and block type".into(),
        note: "0: the matrix did not change; hover over a cell for its value; grey: no such matrix",
        value_label: "rel_fro".into(),
        colors: Colors::Sequential { log: false },
    };
    diff_heatmap(diff, "diff_rel_fro", labels, |r| r.rel_fro)
}

/// How spread out each change is: ΔW's 90%-energy rank over min(rows, cols).
pub fn energy_rank_heatmap(diff: &DiffResult) -> Option<Chart> {
    let labels = Labels {
        title: "ΔW's 90% energy rank / min(rows, cols) by layer and block type".into(),
        note: "low: the change lies in few directions (LoRA-like); high: spread over many",
        value_label: "ΔW 90% energy rank ratio".into(),
        colors: Colors::Sequential { log: false },
    };
    diff_heatmap(diff, "diff_energy_rank", labels, DiffMatrix::delta_ratio_90)
}

/// What quantization did, where: the SQNR of every matrix stored in
/// another type than its base (a GGUF or quantized model against its
/// original), by layer and block type. Shown only for such diffs.
pub fn quantization_damage(diff: &DiffResult) -> Option<Chart> {
    if !diff
        .compared()
        .any(|r| r.requantized && r.sqnr_db.is_some())
    {
        return None;
    }
    let labels = Labels {
        title: "Quantization damage: SQNR in dB".into(),
        note: "low: more lost (≈6 dB per bit); grey: not requantized",
        value_label: "SQNR dB".into(),
        colors: Colors::Sequential { log: false },
    };
    diff_heatmap(diff, "diff_sqnr", labels, |r| {
        r.requantized.then_some(r.sqnr_db).flatten()
    })
}

/// What a LoRA of rank r would lose, per block type: the median over its
/// matrices of ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F at each rank of the run.
pub fn lora_fit_curves(diff: &DiffResult) -> Option<Chart> {
    let mut by_type: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for r in diff.compared().filter(|r| r.matrix.is_matrix()) {
        for &(rank, err) in &r.lora_fit {
            by_type
                .entry(r.matrix.block_type.clone())
                .or_default()
                .entry(rank)
                .or_default()
                .push(err);
        }
    }
    let mut series: Vec<(String, BTreeMap<u64, Vec<f64>>)> = by_type.into_iter().collect();
    series.sort_by_key(|(name, _)| order(name));
    let mut plot = Plot::new(
        "What a rank-r LoRA would lose: ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F",
        AxisSpec::new("LoRA rank r", Kind::Log),
        AxisSpec::new("share of ‖ΔW‖_F lost (median per block type)", Kind::Linear).range(0.0, 1.0),
    )
    .size(760.0, 360.0)
    .note("Eckart–Young, from ΔW's exact spectrum; 0: rank r captures the change");
    for (name, ranks) in &series {
        let (stroke, marker) = series_style(name);
        let mut points = Vec::new();
        let mut tips = Vec::new();
        for (&rank, errors) in ranks {
            let m = median(errors);
            points.push((rank as f64, m));
            tips.push(format!(
                "{name}, r = {rank}: median {} over {} matrices (max {})",
                format_number(m),
                errors.len(),
                format_number(errors.iter().copied().fold(0.0, f64::max))
            ));
        }
        plot.layer(Layer::Line {
            points,
            stroke,
            marker: Some(marker),
            tips,
        });
        plot.legend.push(series_legend(name));
    }
    plot.has_data()
        .then(|| Chart::new("diff_lora_fit", plot.render()))
}

/// Intruder dimensions per layer: the model's top-k singular vectors with
/// no close base vector, summed over the layer's matrices.
pub fn intruders_by_layer(diff: &DiffResult, threshold: Option<f64>) -> Option<Chart> {
    let k = diff.top_k?;
    let mut layers: BTreeMap<u32, (u64, Vec<(String, u64)>)> = BTreeMap::new();
    for r in diff.compared() {
        if let (Some(layer), Some(n)) = (r.matrix.layer, r.intruders) {
            let entry = layers.entry(layer).or_default();
            entry.0 += n;
            if n > 0 {
                entry.1.push((r.matrix.block_type.clone(), n));
            }
        }
    }
    if layers.is_empty() {
        return None;
    }
    let cos = threshold.map_or_else(String::new, |t| format!(", |cos| < {}", format_number(t)));
    let (first, last) = (*layers.keys().next()?, *layers.keys().last()?);
    let total: u64 = layers.values().map(|(n, _)| n).sum();
    let mut plot = Plot::new(
        format!("Intruder dimensions per layer (top {k} singular vectors{cos})"),
        AxisSpec::new("layer", Kind::Integer).range(first as f64 - 0.5, last as f64 + 0.5),
        AxisSpec::new("intruder dimensions (all matrices of the layer)", Kind::Count).include(0.0),
    )
    .size(760.0, 320.0)
    .note(if total == 0 {
        "none in any layer: every top singular vector of the model has a base singular vector near it"
    } else {
        "a model singular vector with no base singular vector near it (Shuttleworth et al. 2024)"
    });
    let (bars, tips): (Vec<Bar>, Vec<String>) = layers
        .iter()
        .map(|(&layer, (n, which))| {
            let detail: Vec<String> = which.iter().map(|(b, n)| format!("{b}: {n}")).collect();
            (
                Bar {
                    x0: layer as f64 - 0.4,
                    x1: layer as f64 + 0.4,
                    y: *n as f64,
                    base: 0.0,
                },
                format!(
                    "layer {layer}: {n} intruder dimensions{}{}",
                    if detail.is_empty() { "" } else { " — " },
                    detail.join(", ")
                ),
            )
        })
        .unzip();
    let fill = Color::hex(0xD55E00);
    plot.layer(Layer::Bars {
        bars,
        fill: fill.with_alpha(0.8),
        tips,
    });
    plot.legend.push(LegendEntry::swatch("intruders", fill));
    Some(Chart::new("diff_intruders", plot.render()))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
