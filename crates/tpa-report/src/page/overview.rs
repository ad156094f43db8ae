//! The overview of one model: what was analysed, how, and what it holds.

use std::collections::BTreeMap;

use serde_json::Value;

use super::html::{bytes, group_digits};
use crate::input::{Input, Kind, Matrix};

/// Tensors, parameters and bytes of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub matrices: u64,
    pub parameters: u64,
    /// `None` when the result does not record bytes (older results).
    pub bytes: Option<u64>,
}

impl Tally {
    fn add(&mut self, m: &Matrix) {
        self.matrices += 1;
        self.parameters += m.numel.unwrap_or(m.rows * m.cols);
        self.bytes = match (self.bytes, m.nbytes) {
            (Some(a), Some(b)) => Some(a + b),
            (None, Some(b)) if self.matrices == 1 => Some(b),
            _ => None,
        };
    }
}

/// Totals of named groups.
pub type Tallies = Vec<(String, Tally)>;

/// Totals by block type (largest first) and by dtype, and the grand total.
pub fn tallies(matrices: &[Matrix]) -> (Tallies, Tallies, Tally) {
    let mut by_block: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_dtype: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for m in matrices {
        by_block.entry(m.block_type.clone()).or_default().add(m);
        by_dtype.entry(m.dtype.clone()).or_default().add(m);
        total.add(m);
    }
    let mut by_block: Vec<_> = by_block.into_iter().collect();
    by_block.sort_by_key(|b| std::cmp::Reverse(b.1.parameters));
    (by_block, by_dtype.into_iter().collect(), total)
}

/// The rank tolerance rank_rtol, read back from rank_tol / σ₁.
pub fn rank_rtol(matrices: &[Matrix]) -> Option<f64> {
    let r = matrices.iter().find_map(Matrix::rank_rtol)?;
    // Round away the float64 noise of the division (1e-6 · σ / σ).
    let digits = 10f64.powf(r.log10().floor() - 3.0);
    Some((r / digits).round() * digits)
}

/// Which backends computed the spectra, with counts: "cpu: 80, cuda: 24".
fn backends(matrices: &[Matrix]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in matrices {
        if let Some(b) = &m.backend {
            *counts.entry(b).or_default() += 1;
        }
    }
    (!counts.is_empty()).then(|| {
        counts
            .into_iter()
            .map(|(b, n)| format!("{b}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The label–value facts of the overview.
pub fn facts(input: &Input) -> Vec<(String, String)> {
    let r = &input.result;
    let or_dash = |s: &str| {
        if s.is_empty() {
            "–".to_owned()
        } else {
            s.to_owned()
        }
    };
    let tool = match r.kind {
        Kind::Transformer => "tpa-transformer (complete spectra)",
        Kind::Analyze => "tpa-analyze (statistics)",
    };
    let mut facts = vec![
        ("model".to_owned(), input.label.clone()),
        ("model path".into(), or_dash(&r.model_path)),
        ("model id".into(), or_dash(&r.model_id)),
        ("revision".into(), or_dash(&r.revision)),
        ("result".into(), format!("{} ({tool})", r.path.display())),
        ("analysed at".into(), or_dash(&r.created_at)),
        (
            "tpa version".into(),
            input
                .summary_text("tpa_version")
                .unwrap_or_else(|| "not recorded (only JSON results carry it)".into()),
        ),
        (
            "report by".into(),
            format!("tpa-report {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(b) = backends(&r.matrices) {
        facts.push(("backend".into(), b));
    }
    if let Some(rtol) = rank_rtol(&r.matrices) {
        facts.push((
            "rank tolerance".into(),
            format!("σ > {} · σ₁", crate::draw::scale::format_number(rtol)),
        ));
    }
    let (_, _, total) = tallies(&r.matrices);
    let with_spectrum = r.matrices.iter().filter(|m| m.has_spectrum()).count();
    let nonfinite = r
        .matrices
        .iter()
        .filter(|m| m.nan_count + m.inf_count > 0)
        .count();
    facts.push(("rows".into(), group_digits(r.matrices.len() as u64)));
    if r.kind == Kind::Transformer {
        let other = (r.matrices.len() - with_spectrum).saturating_sub(nonfinite);
        facts.push((
            "spectra".into(),
            format!(
                "{} computed; skipped: {nonfinite} with NaN/Inf, {other} without convergence",
                group_digits(with_spectrum as u64)
            ),
        ));
    }
    let layers: std::collections::BTreeSet<u32> =
        r.matrices.iter().filter_map(|m| m.layer).collect();
    facts.push(("layers".into(), layers.len().to_string()));
    facts.push(("parameters".into(), group_digits(total.parameters)));
    facts.push((
        "bytes stored".into(),
        total
            .bytes
            .map_or("not recorded in this result".into(), |b| {
                format!("{} ({})", group_digits(b), bytes(b))
            }),
    ));
    let selection = r.summary.as_ref().and_then(|s| s.get("selection"));
    if let Some(selection) = selection.filter(|s| !s.is_null()) {
        facts.push(("selection".into(), selection.to_string()));
    }
    match input.config() {
        Some((Value::Object(config), source)) => {
            for (k, v) in config {
                if !v.is_null() {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    facts.push((k.replace('_', " "), v));
                }
            }
            facts.push(("config from".into(), source));
        }
        _ => facts.push((
            "config".into(),
            "not found (a JSON result carries it; else config.json beside the model)".into(),
        )),
    }
    facts
}

/// The plain statement of what was sampled: nothing, except where the
/// embedding sweep says so.
pub fn sampling(input: &Input) -> String {
    let mut text = match input.result.kind {
        Kind::Transformer => "Nothing was sampled: every statistic covers every element of every \
             tensor, and every spectrum is complete (all min(m, n) singular values, in float64)."
            .to_owned(),
        Kind::Analyze => "Nothing was sampled: every statistic covers every element of every \
             tensor; ranks come from complete float64 spectra."
            .to_owned(),
    };
    if let Some(e) = input.embedding.as_ref().map(|e| &e.report) {
        if e.run.sweep_sampled {
            text.push_str(&format!(
                " The embedding's k-means sweep ran on {} seeded sample rows (the chosen k was refit on all {} tokens).",
                group_digits(e.run.sweep_rows as u64),
                group_digits(e.total_tokens as u64)
            ));
        }
        text.push_str(&format!(
            " Embedding silhouettes are computed on a seeded sample of {} rows.",
            group_digits(e.run.silhouette_sample_rows as u64)
        ));
    }
    text
}
