//! The row `tpa-analyze` writes per tensor.

use super::{Cell, Record, Row};
use crate::analyses::classify::{Placement, classify};
use crate::analyses::stats::TensorStats;
use crate::tensors::TensorView;

/// One tensor's identity, placement and statistics; serializable, so that
/// a journal can keep it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalyzeRecord {
    pub param_name: String,
    pub placement: Placement,
    pub shape: Vec<usize>,
    pub rows: usize,
    pub cols: usize,
    /// Numerical rank; `None` until the spectral engine fills it.
    pub rank: Option<u64>,
    pub stats: TensorStats,
    /// PyTorch dtype name.
    pub dtype: String,
    pub nbytes: u64,
    /// The shard file's name.
    pub file: String,
    /// Quantization scheme, `none` or `raw` (see [`TensorView::scheme`]).
    pub quant: String,
    /// Stored bytes with sidecars (see [`TensorView::quant_bytes`]).
    pub quant_bytes: u64,
    /// The Hugging Face name of a GGUF tensor (see [`TensorView::hf_name`]).
    #[serde(default)]
    pub hf_name: String,
}

impl AnalyzeRecord {
    /// Builds the row for `tensor` from its statistics.
    pub fn new(tensor: &TensorView<'_>, stats: TensorStats) -> AnalyzeRecord {
        let (rows, cols) = tensor.matrix_shape();
        AnalyzeRecord {
            param_name: tensor.name().to_owned(),
            placement: classify(tensor.name()),
            shape: tensor.shape().to_vec(),
            rows,
            cols,
            rank: None,
            stats,
            dtype: tensor.code_type(),
            nbytes: tensor.nbytes() as u64,
            quant: tensor.scheme().to_owned(),
            quant_bytes: tensor.quant_bytes() as u64,
            hf_name: tensor.hf_name(None),
            file: tensor
                .file()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

impl Record for Row<'_, AnalyzeRecord> {
    const COLUMNS: &'static [&'static str] = &[
        // The original analyze.py columns, in its order.
        "model_path",
        "model_id",
        "revision",
        "param_name",
        "layer_index",
        "block_type",
        "shape",
        "rows",
        "cols",
        "rank",
        "mean",
        "std",
        "var",
        "sparsity",
        "dtype",
        "created_at",
        // Added by tpa.
        "min",
        "max",
        "numel",
        "nan_count",
        "inf_count",
        "expert_index",
        "design_rank",
        "nbytes",
        "file",
        "digest",
        "quant",
        "quant_bytes",
        "hf_name",
    ];

    fn cells(&self) -> Vec<Cell> {
        let (run, r, s) = (self.run, self.record, &self.record.stats);
        vec![
            Cell::text(&run.model_path),
            Cell::text(&run.model_id),
            Cell::text(&run.revision),
            Cell::text(&r.param_name),
            Cell::opt_uint(r.placement.layer_index),
            Cell::text(r.placement.block_type.as_str()),
            Cell::List(r.shape.iter().map(|&d| d as u64).collect()),
            Cell::UInt(r.rows as u64),
            Cell::UInt(r.cols as u64),
            Cell::opt_uint(r.rank),
            Cell::opt_float(s.mean),
            Cell::opt_float(s.std),
            Cell::opt_float(s.var),
            Cell::opt_float(s.sparsity),
            Cell::text(&r.dtype),
            Cell::text(&run.created_at),
            Cell::opt_float(s.min),
            Cell::opt_float(s.max),
            Cell::UInt(s.numel),
            Cell::UInt(s.nan_count),
            Cell::UInt(s.inf_count),
            Cell::opt_uint(r.placement.expert_index),
            Cell::UInt(r.rows.min(r.cols) as u64),
            Cell::UInt(r.nbytes),
            Cell::text(&r.file),
            Cell::opt_text(s.digest),
            Cell::text(&r.quant),
            Cell::UInt(r.quant_bytes),
            Cell::text(&r.hf_name),
        ]
    }
}
