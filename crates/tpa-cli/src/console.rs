//! Human-readable console output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use indicatif::{BinaryBytes, HumanCount};
use tpa_core::records::{ModelSummary, TransformerRecord};

/// The summary block `tpa-analyze` prints.
pub(crate) fn summary_text(s: &ModelSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Model: {}", s.model_path);
    if let Some(c) = &s.config {
        let arch: Vec<&str> = [c.architecture.as_deref(), c.model_type.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let facts: Vec<String> = [
            ("hidden", c.hidden_size.map(|v| v.to_string())),
            ("layers", c.num_layers.map(|v| v.to_string())),
            ("heads", c.num_attention_heads.map(|v| v.to_string())),
            ("kv heads", c.num_key_value_heads.map(|v| v.to_string())),
            ("intermediate", c.intermediate_size.map(|v| v.to_string())),
            ("vocab", c.vocab_size.map(|v| v.to_string())),
            (
                "tied embeddings",
                c.tie_word_embeddings.map(|v| v.to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(label, v)| Some(format!("{label} {}", v?)))
        .collect();
        let _ = writeln!(out, "  config:  {} | {}", arch.join(", "), facts.join(", "));
    }
    if let Some(q) = &s.quantization {
        let _ = writeln!(out, "  quant:   {}", q.note);
    }
    let files = s.files.len();
    let _ = writeln!(
        out,
        "  tensors: {} in {files} file{} | {} parameters | {} | {} layers",
        s.total.tensors,
        if files == 1 { "" } else { "s" },
        HumanCount(s.total.parameters),
        BinaryBytes(s.total.bytes),
        s.layers
    );
    for (title, groups) in [("block type", &s.by_block_type), ("dtype", &s.by_dtype)] {
        let _ = writeln!(out, "  by {title}:");
        let mut sorted: Vec<_> = groups.iter().collect();
        sorted.sort_by(|a, b| b.1.parameters.cmp(&a.1.parameters).then(a.0.cmp(b.0)));
        for (name, t) in sorted {
            let share = 100.0 * t.parameters as f64 / s.total.parameters.max(1) as f64;
            let _ = writeln!(
                out,
                "    {name:<22} {:>5} tensors {:>16} parameters {share:>6.2}%",
                t.tensors,
                HumanCount(t.parameters).to_string()
            );
        }
    }
    if s.nan_count + s.inf_count > 0 {
        let _ = writeln!(
            out,
            "  warning: {} NaN and {} Inf values; statistics cover the finite values only",
            s.nan_count, s.inf_count
        );
    }
    out
}

const RULE: &str =
    "================================================================================";

/// The original's layer-by-layer display, then the matrices outside layers,
/// then averages per block type.
pub(crate) fn layer_report(records: &[TransformerRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{RULE}\nLAYER-BY-LAYER MATRIX ANALYSIS\n{RULE}");
    let mut current: Option<Option<u32>> = None;
    for r in records {
        if current != Some(r.layer_index) {
            current = Some(r.layer_index);
            let title = r
                .layer_index
                .map_or("NON-LAYER MATRICES".to_owned(), |l| format!("LAYER {l}"));
            let _ = writeln!(out, "\n🔹 {title}\n{}", "-".repeat(50));
        }
        let label = match (r.layer_index, r.stack_index.or(r.expert_index)) {
            (None, _) => r.param_name.clone(),
            (Some(_), Some(e)) => format!("{}[{e}]", r.block_type),
            (Some(_), None) => r.block_type.to_string(),
        };
        let shape = format!("({}, {})", r.rows, r.cols);
        let design = r.design_rank();
        let pct = |k: usize| {
            if design == 0 {
                0.0
            } else {
                100.0 * k as f64 / design as f64
            }
        };
        let rank = match &r.spectral {
            Some(s) => format!(
                "Rank: {}/{design} ({:.1}%)",
                s.metrics.actual_rank,
                pct(s.metrics.actual_rank)
            ),
            None => format!("Rank: n/a ({})", r.skipped.as_deref().unwrap_or("skipped")),
        };
        let _ = writeln!(out, "  📊 {label:<13} | Shape: {shape:<16} | {rank}");
        let svd90 = r.spectral.as_ref().map_or("n/a".to_owned(), |s| {
            format!(
                "{:>4}/{design} ({:.1}%)",
                s.metrics.energy_rank_90,
                pct(s.metrics.energy_rank_90)
            )
        });
        let _ = writeln!(
            out,
            "      SVD 90%: {svd90} | Sparsity: {:.1}% | μ= {:.4} σ= {:.4}",
            100.0 * r.stats.sparsity.unwrap_or(0.0),
            r.stats.mean.unwrap_or(f64::NAN),
            r.stats.std.unwrap_or(f64::NAN)
        );
    }
    let _ = writeln!(out, "\n{RULE}\nSUMMARY BY BLOCK TYPE\n{RULE}");
    let _ = writeln!(
        out,
        "  {:<22} {:>8} {:>16} {:>15} {:>11}",
        "block_type", "matrices", "mean rank ratio", "mean 90% ratio", "mean alpha"
    );
    let mut groups: BTreeMap<String, Vec<&TransformerRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.block_type.to_string()).or_default().push(r);
    }
    for (block, rows) in groups {
        let mean = |f: &dyn Fn(&TransformerRecord) -> Option<f64>| {
            let values: Vec<f64> = rows.iter().filter_map(|r| f(r)).collect();
            if values.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.3}", values.iter().sum::<f64>() / values.len() as f64)
            }
        };
        let ratio = |k: fn(&tpa_core::analyses::spectrum::metrics::SpectralMetrics) -> usize| {
            move |r: &TransformerRecord| {
                let design = r.design_rank();
                r.spectral
                    .as_ref()
                    .filter(|_| design > 0)
                    .map(|s| k(&s.metrics) as f64 / design as f64)
            }
        };
        let _ = writeln!(
            out,
            "  {block:<22} {:>8} {:>16} {:>15} {:>11}",
            rows.len(),
            mean(&ratio(|m| m.actual_rank)),
            mean(&ratio(|m| m.energy_rank_90)),
            mean(&|r| r.spectral.as_ref()?.metrics.power_law.map(|p| p.alpha)),
        );
    }
    out
}
