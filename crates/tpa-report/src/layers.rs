//! Matrices grouped by series (block type) and layer: the unit of layer
//! profiles and heatmaps. Experts of one layer are summarised by their mean
//! and range.

use std::collections::BTreeMap;

use crate::input::Matrix;
use crate::metrics::Metric;

/// One series at one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub layer: u32,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// How many matrices (experts) the cell summarises.
    pub count: usize,
    /// The matrix, when there is exactly one.
    pub only: Option<String>,
}

/// Series name → cells in layer order, for the matrices (both sides > 1)
/// inside layers that have `metric`.
pub fn by_series(matrices: &[Matrix], metric: Metric) -> Vec<(String, Vec<Cell>)> {
    group(matrices, |m| metric.of(m))
}

/// As [`by_series`], for any value of a matrix.
pub fn group(
    matrices: &[Matrix],
    value: impl Fn(&Matrix) -> Option<f64>,
) -> Vec<(String, Vec<Cell>)> {
    // Series → layer → (value, matrix name).
    type Layers<'a> = BTreeMap<u32, Vec<(f64, &'a str)>>;
    let mut groups: BTreeMap<String, Layers> = BTreeMap::new();
    for m in matrices {
        if let (true, Some(layer), Some(v)) = (m.is_matrix(), m.layer, value(m)) {
            groups
                .entry(m.series())
                .or_default()
                .entry(layer)
                .or_default()
                .push((v, &m.name));
        }
    }
    let mut series: Vec<(String, Vec<Cell>)> = groups
        .into_iter()
        .map(|(name, layers)| {
            let cells = layers
                .into_iter()
                .map(|(layer, values)| {
                    let n = values.len();
                    let sum: f64 = values.iter().map(|v| v.0).sum();
                    Cell {
                        layer,
                        mean: sum / n as f64,
                        min: values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min),
                        max: values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max),
                        count: n,
                        only: (n == 1).then(|| values[0].1.to_owned()),
                    }
                })
                .collect();
            (name, cells)
        })
        .collect();
    series.sort_by_key(|(name, _)| order(name));
    series
}

/// Where a series comes in charts: attention, then MLP, then experts, then
/// anything else by name.
pub fn order(series: &str) -> (usize, String) {
    const ORDER: [&str; 12] = [
        "q_proj",
        "k_proj",
        "v_proj",
        "qkv",
        "kv_proj",
        "o_proj",
        "mlp_gate",
        "mlp_up",
        "mlp_gate_up",
        "mlp_down",
        "moe_gate",
        "moe_expert",
    ];
    let base = series.split(':').next().unwrap_or(series);
    let rank = ORDER
        .iter()
        .position(|&s| s == base)
        .unwrap_or(ORDER.len() + 1);
    (rank, series.to_owned())
}

/// The block type a series belongs to (for its colour).
pub fn block_type_of(series: &str) -> &str {
    match series.split_once(':') {
        None => series,
        // An expert's projection takes the colour of its dense twin.
        Some((_, projection)) => match projection {
            p if p.contains("gate_up") => "mlp_gate_up",
            p if p.contains("gate") || p == "w1" => "mlp_gate",
            p if p.contains("up") || p == "w3" => "mlp_up",
            p if p.contains("down") || p == "w2" => "mlp_down",
            _ => "moe_expert",
        },
    }
}

/// Median of `values` (which it sorts); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, block: &str, layer: u32, alpha: f64) -> Matrix {
        Matrix {
            name: name.into(),
            param_name: name.into(),
            block_type: block.into(),
            layer: Some(layer),
            rows: 8,
            cols: 8,
            design_rank: 8,
            alpha: Some(alpha),
            ..Matrix::default()
        }
    }

    #[test]
    fn experts_of_a_layer_are_averaged_with_their_range() {
        let ms = vec![
            m("l.0.experts.0.down_proj.weight", "moe_expert", 0, 2.0),
            m("l.0.experts.1.down_proj.weight", "moe_expert", 0, 4.0),
            m("l.0.q_proj.weight", "q_proj", 0, 3.0),
        ];
        let series = by_series(&ms, Metric::Alpha);
        assert_eq!(series[0].0, "q_proj");
        assert_eq!(series[0].1[0].only.as_deref(), Some("l.0.q_proj.weight"));
        let experts = &series[1];
        assert_eq!(experts.0, "moe_expert:down_proj");
        let c = &experts.1[0];
        assert_eq!((c.mean, c.min, c.max, c.count), (3.0, 2.0, 4.0, 2));
        assert_eq!(block_type_of(&experts.0), "mlp_down");
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
