//! The row `tpa-transformer` writes per matrix.

use serde::{Deserialize, Serialize};

use super::{Cell, Record, Row};
use crate::analyses::classify::{BlockType, classify};
use crate::analyses::spectrum::metrics::SpectralMetrics;
use crate::analyses::spectrum::{BackendError, Engine};
use crate::analyses::stats::{StatsOptions, TensorStats, range_stats};
use crate::error::Result;
use crate::tensors::{MatrixView, share};

/// One matrix: identity, statistics, and its spectrum's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerRecord {
    pub param_name: String,
    pub layer_index: Option<u32>,
    pub block_type: BlockType,
    pub expert_index: Option<u32>,
    /// Position of this matrix in a stacked expert tensor ([E, out, in]).
    pub stack_index: Option<u32>,
    /// The tensor's shape, or [rows, cols] for one expert of a stacked tensor.
    pub shape: Vec<usize>,
    pub rows: usize,
    pub cols: usize,
    pub dtype: String,
    /// Bytes stored: the tensor's, or this expert's share of a stacked tensor.
    #[serde(default)]
    pub nbytes: u64,
    /// How the matrix was read: its quantization scheme (`fp8-block-128x128`,
    /// `gptq-int4-g128`...), `none`, or `raw`.
    #[serde(default)]
    pub quant: String,
    /// Stored bytes of codes + scales + zero points (this expert's share of
    /// a stacked tensor); `nbytes` for a plain tensor.
    #[serde(default)]
    pub quant_bytes: u64,
    /// The Hugging Face name of a GGUF matrix (see [`crate::tensors::TensorView::hf_name`]).
    #[serde(default)]
    pub hf_name: String,
    pub stats: TensorStats,
    /// The spectrum's metrics; `None` when it was skipped (see `skipped`).
    pub spectral: Option<SpectralSummary>,
    /// Why there is no spectrum (NaN/Inf values, no convergence).
    pub skipped: Option<String>,
}

/// What the spectrum gave and how it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectralSummary {
    pub metrics: SpectralMetrics,
    pub method: String,
    pub backend: String,
    pub seconds: f64,
    /// All singular values, descending; kept only when the caller asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
}

impl TransformerRecord {
    /// Statistics and spectrum of `matrix`. Matrices with NaN or Inf get
    /// their statistics and a `skipped` reason instead of a spectrum; so do
    /// matrices whose spectrum does not converge. Errors are input errors.
    pub fn compute(
        matrix: &MatrixView<'_>,
        engine: &Engine,
        stats_options: &StatsOptions,
        keep_values: bool,
    ) -> Result<TransformerRecord> {
        let tensor = matrix.tensor();
        let placement = classify(tensor.name());
        let (rows, cols) = matrix.shape();
        let range = matrix.offset()..matrix.offset() + matrix.numel();
        let stats = range_stats(&tensor, range, stats_options, &|_| {})?;
        let mut record = TransformerRecord {
            param_name: tensor.name().to_owned(),
            layer_index: placement.layer_index,
            block_type: placement.block_type,
            expert_index: matrix.expert_index().or(placement.expert_index),
            stack_index: matrix.expert_index(),
            shape: match matrix.expert_index() {
                Some(_) => vec![rows, cols],
                None => tensor.shape().to_vec(),
            },
            rows,
            cols,
            dtype: tensor.code_type(),
            nbytes: share(tensor.nbytes(), matrix.numel(), tensor.numel()),
            quant: tensor.scheme().to_owned(),
            quant_bytes: tensor.bytes_of(matrix.numel()),
            hf_name: tensor.hf_name(matrix.expert_index()),
            stats,
            spectral: None,
            skipped: None,
        };
        if stats.nan_count + stats.inf_count > 0 {
            record.skipped = Some(format!(
                "{} NaN and {} Inf values",
                stats.nan_count, stats.inf_count
            ));
            return Ok(record);
        }
        match engine.spectrum(matrix) {
            Ok(spectrum) => {
                record.spectral = Some(SpectralSummary {
                    metrics: SpectralMetrics::new(&spectrum.values, engine.options().rank_rtol),
                    method: spectrum.method.as_str().to_owned(),
                    backend: spectrum.backend.to_owned(),
                    seconds: spectrum.seconds,
                    values: keep_values.then_some(spectrum.values),
                });
            }
            Err(BackendError::Input(e)) => return Err(e),
            Err(other) => record.skipped = Some(other.to_string()),
        }
        Ok(record)
    }

    /// A name unique per matrix: the parameter's, with `[e]` appended for
    /// expert e of a stacked expert tensor.
    pub fn matrix_name(&self) -> String {
        match self.stack_index {
            Some(e) => format!("{}[{e}]", self.param_name),
            None => self.param_name.clone(),
        }
    }

    /// min(rows, cols).
    pub fn design_rank(&self) -> usize {
        self.rows.min(self.cols)
    }
}

impl Record for Row<'_, TransformerRecord> {
    const COLUMNS: &'static [&'static str] = &[
        // The original transformer_analysis.py columns, in its order.
        "model_path",
        "model_id",
        "revision",
        "param_name",
        "layer_index",
        "block_type",
        "shape",
        "rows",
        "cols",
        "design_rank",
        "actual_rank",
        "rank_ratio",
        "svd_90_percent_rank",
        "svd_90_percent_ratio",
        "mean",
        "std",
        "var",
        "min",
        "max",
        "sparsity",
        "dtype",
        "created_at",
        // Added by tpa.
        "expert_index",
        "rank_tol",
        "spectral_norm",
        "frobenius_norm",
        "stable_rank",
        "effective_rank",
        "svd_50_percent_rank",
        "svd_99_percent_rank",
        "condition_number",
        "alpha",
        "alpha_weighted",
        "log_norm",
        "log_spectral_norm",
        "ks_distance",
        "method",
        "backend",
        "seconds",
        "numel",
        "nan_count",
        "inf_count",
        "nbytes",
        "digest",
        "alpha_xmin",
        "quant",
        "quant_bytes",
        "hf_name",
    ];

    fn cells(&self) -> Vec<Cell> {
        let (run, r, s) = (self.run, self.record, &self.record.stats);
        let m = r.spectral.as_ref().map(|x| &x.metrics);
        let design = r.design_rank();
        let ratio = |k: usize| (design > 0).then(|| k as f64 / design as f64);
        let fit = m.and_then(|m| m.power_law);
        vec![
            Cell::text(&run.model_path),
            Cell::text(&run.model_id),
            Cell::text(&run.revision),
            Cell::text(&r.param_name),
            Cell::opt_uint(r.layer_index),
            Cell::text(r.block_type.as_str()),
            Cell::List(r.shape.iter().map(|&d| d as u64).collect()),
            Cell::UInt(r.rows as u64),
            Cell::UInt(r.cols as u64),
            Cell::UInt(design as u64),
            Cell::opt_uint(m.map(|m| m.actual_rank as u64)),
            Cell::opt_float(m.and_then(|m| ratio(m.actual_rank))),
            Cell::opt_uint(m.map(|m| m.energy_rank_90 as u64)),
            Cell::opt_float(m.and_then(|m| ratio(m.energy_rank_90))),
            Cell::opt_float(s.mean),
            Cell::opt_float(s.std),
            Cell::opt_float(s.var),
            Cell::opt_float(s.min),
            Cell::opt_float(s.max),
            Cell::opt_float(s.sparsity),
            Cell::text(&r.dtype),
            Cell::text(&run.created_at),
            Cell::opt_uint(r.expert_index),
            Cell::opt_float(m.map(|m| m.rank_tol)),
            Cell::opt_float(m.map(|m| m.spectral_norm)),
            Cell::opt_float(m.map(|m| m.frobenius_norm)),
            Cell::opt_float(m.and_then(|m| m.stable_rank)),
            Cell::opt_float(m.and_then(|m| m.effective_rank)),
            Cell::opt_uint(m.map(|m| m.energy_rank_50 as u64)),
            Cell::opt_uint(m.map(|m| m.energy_rank_99 as u64)),
            Cell::opt_float(m.and_then(|m| m.condition_number)),
            Cell::opt_float(fit.map(|f| f.alpha)),
            Cell::opt_float(m.and_then(|m| m.alpha_weighted)),
            Cell::opt_float(m.and_then(|m| m.log_norm)),
            Cell::opt_float(m.and_then(|m| m.log_spectral_norm)),
            Cell::opt_float(fit.map(|f| f.ks_distance)),
            r.spectral
                .as_ref()
                .map_or(Cell::Empty, |x| Cell::text(&x.method)),
            r.spectral
                .as_ref()
                .map_or(Cell::Empty, |x| Cell::text(&x.backend)),
            Cell::opt_float(r.spectral.as_ref().map(|x| x.seconds)),
            Cell::UInt(s.numel),
            Cell::UInt(s.nan_count),
            Cell::UInt(s.inf_count),
            Cell::UInt(r.nbytes),
            Cell::opt_text(s.digest),
            Cell::opt_float(fit.map(|f| f.xmin)),
            Cell::text(&r.quant),
            Cell::UInt(r.quant_bytes),
            Cell::text(&r.hf_name),
        ]
    }
}
