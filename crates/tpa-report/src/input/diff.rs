//! A `tpa-diff` result (CSV, JSON or JSON Lines) read back: what changed
//! in each matrix between a base and a fine-tuned model.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tpa_core::writers::Format;

use super::matrix::Matrix;
use super::result::{Row, name_stacked_experts, read_rows};
use crate::error::{Result, input};

/// One row of a diff: the matrix's identity and what changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffMatrix {
    /// Name, layer, block type and shape, as in other results.
    pub matrix: Matrix,
    /// `compared`, `only_in_base`, `only_in_model` or `shape_mismatch`.
    pub status: String,
    pub rel_fro: Option<f64>,
    pub rel_spec: Option<f64>,
    pub delta_rank: Option<u64>,
    pub delta_energy_rank_90: Option<u64>,
    /// (R, lora_fit_err_R) for each LoRA rank the run asked for.
    pub lora_fit: Vec<(u64, f64)>,
    pub overlap_left: Option<f64>,
    pub intruders: Option<u64>,
    /// 10·log10(‖W_base‖²/‖ΔW‖²) (empty for ΔW = 0, and in older results).
    pub sqnr_db: Option<f64>,
    /// The two sides are stored in different types (a quantized model
    /// against its original).
    pub requantized: bool,
}

impl DiffMatrix {
    /// ΔW's 90%-energy rank over min(rows, cols).
    pub fn delta_ratio_90(&self) -> Option<f64> {
        let n = self.matrix.rows.min(self.matrix.cols);
        (n > 0).then(|| self.delta_energy_rank_90.map(|r| r as f64 / n as f64))?
    }
}

/// A `tpa-diff` result file, read.
#[derive(Debug, Clone)]
pub struct DiffResult {
    pub path: PathBuf,
    pub rows: Vec<DiffMatrix>,
    /// The JSON output's `summary`, when the result has one.
    pub summary: Option<Value>,
    pub base_path: String,
    pub model_path: String,
    pub model_id: String,
    /// The K of the `intruders_K` columns, when the run had them.
    pub top_k: Option<u64>,
}

impl DiffResult {
    /// Whether `path` holds a `tpa-diff` result (its first row has `rel_fro`).
    pub fn is_diff(path: &Path) -> bool {
        Format::from_path(path)
            .and_then(|f| read_rows(path, f).ok())
            .is_some_and(|(rows, _)| rows.first().is_some_and(|r| r.has("rel_fro")))
    }

    /// Reads `path`; the format comes from its extension.
    pub fn load(path: &Path) -> Result<DiffResult> {
        let format = Format::from_path(path).ok_or_else(|| {
            input(
                path,
                "cannot tell the format: a result ends in .csv, .json or .jsonl",
            )
        })?;
        let (rows, summary) = read_rows(path, format)?;
        let first = rows
            .first()
            .ok_or_else(|| input(path, "the result has no rows"))?;
        if !first.has("rel_fro") {
            return Err(input(path, "not a tpa-diff result (no rel_fro column)"));
        }
        let suffix = |prefix: &str| -> Vec<u64> {
            let mut values: Vec<u64> = first
                .columns()
                .iter()
                .filter_map(|c| c.strip_prefix(prefix)?.parse().ok())
                .collect();
            values.sort_unstable();
            values
        };
        let ranks = suffix("lora_fit_err_");
        let top_k = suffix("intruders_").first().copied();
        let text_of = |col: &str| first.text(col).unwrap_or_default();
        let (base_path, model_path, model_id) = (
            text_of("base_path"),
            text_of("model_path"),
            text_of("model_id"),
        );
        let mut rows = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                diff_row(row, &ranks, top_k)
                    .map_err(|reason| input(path, format!("row {}: {reason}", i + 1)))
            })
            .collect::<Result<Vec<_>>>()?;
        // Rows of one stacked expert tensor become NAME[e], as elsewhere.
        let mut matrices: Vec<Matrix> = rows.iter().map(|r| r.matrix.clone()).collect();
        name_stacked_experts(&mut matrices);
        for (row, matrix) in rows.iter_mut().zip(matrices) {
            row.matrix = matrix;
        }
        Ok(DiffResult {
            path: path.to_owned(),
            rows,
            summary,
            base_path,
            model_path,
            model_id,
            top_k,
        })
    }

    /// The compared rows.
    pub fn compared(&self) -> impl Iterator<Item = &DiffMatrix> {
        self.rows.iter().filter(|r| r.status == "compared")
    }
}

fn diff_row(row: &Row, ranks: &[u64], top_k: Option<u64>) -> Result<DiffMatrix, String> {
    let param_name = row
        .text("param_name")
        .ok_or("no param_name (is this a tpa result?)")?;
    let mut lora_fit = Vec::new();
    for &r in ranks {
        if let Some(e) = row.float(&format!("lora_fit_err_{r}"))? {
            lora_fit.push((r, e));
        }
    }
    let k = |prefix: &str| top_k.map(|k| format!("{prefix}{k}")).unwrap_or_default();
    Ok(DiffMatrix {
        matrix: Matrix {
            name: param_name.clone(),
            layer: row.uint("layer_index")?.map(|v| v as u32),
            block_type: row.text("block_type").unwrap_or_else(|| "other".into()),
            expert: row.uint("expert_index")?.map(|v| v as u32),
            rows: row.uint("rows")?.unwrap_or(1),
            cols: row.uint("cols")?.unwrap_or(1),
            dtype: row.text("model_dtype").unwrap_or_default(),
            param_name,
            ..Matrix::default()
        },
        status: row.text("status").unwrap_or_else(|| "compared".into()),
        rel_fro: row.float("rel_fro")?,
        rel_spec: row.float("rel_spec")?,
        delta_rank: row.uint("delta_rank")?,
        delta_energy_rank_90: row.uint("delta_svd_90_percent_rank")?,
        lora_fit,
        overlap_left: row.float(&k("subspace_overlap_left_"))?,
        intruders: row.uint(&k("intruders_"))?,
        sqnr_db: row.float("sqnr_db")?,
        requantized: row.text("base_dtype") != row.text("model_dtype"),
    })
}
