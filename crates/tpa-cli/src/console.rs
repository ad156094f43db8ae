//! Human-readable console output.

use std::fmt::Write as _;

use indicatif::{BinaryBytes, HumanCount};
use tpa_core::records::ModelSummary;

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
