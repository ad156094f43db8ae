//! The row `tpa-diff` writes per matrix: what fine-tuning changed.

use serde::{Deserialize, Serialize};

use super::{Cell, Record, RunInfo};
use crate::analyses::classify::{Placement, classify};
use crate::analyses::diff::{
    DeltaStats, DiffError, DiffOptions, MatrixDiff, Subspace, diff_lora, diff_matrices,
};
use crate::analyses::spectrum::Engine;
use crate::analyses::spectrum::metrics::SpectralMetrics;
use crate::error::Result;
use crate::tensors::{LoraUpdate, MatrixView};

/// How a tensor of either checkpoint was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffStatus {
    Compared,
    /// Only the base has it (its row has no numbers).
    OnlyInBase,
    OnlyInModel,
    /// Both have it, with other shapes: refused, with the shapes in `skipped`.
    ShapeMismatch,
}

impl DiffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffStatus::Compared => "compared",
            DiffStatus::OnlyInBase => "only_in_base",
            DiffStatus::OnlyInModel => "only_in_model",
            DiffStatus::ShapeMismatch => "shape_mismatch",
        }
    }
}

/// The spectral side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffSpectra {
    pub delta_rank: usize,
    pub delta_energy_ranks: [usize; 3],
    pub delta_stable_rank: Option<f64>,
    pub delta_spectral_norm: f64,
    pub rel_spec: Option<f64>,
    /// (rank, ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F) per `--lora-ranks`.
    pub lora_fit: Vec<(usize, Option<f64>)>,
    /// Base and model (empty with `--delta-only`).
    pub alpha: [Option<f64>; 2],
    pub stable_rank: [Option<f64>; 2],
    pub spectral_norm: [Option<f64>; 2],
    /// The top singular vectors compared (`--top-k`).
    #[serde(default)]
    pub subspace: Option<Subspace>,
}

impl DiffSpectra {
    fn of(d: &MatrixDiff) -> DiffSpectra {
        let alpha = |m: &SpectralMetrics| m.power_law.as_ref().map(|p| p.alpha);
        DiffSpectra {
            delta_rank: d.delta.actual_rank,
            delta_energy_ranks: [
                d.delta.energy_rank_50,
                d.delta.energy_rank_90,
                d.delta.energy_rank_99,
            ],
            delta_stable_rank: d.delta.stable_rank,
            delta_spectral_norm: d.delta.spectral_norm,
            rel_spec: d.rel_spec,
            lora_fit: d.lora_fit.clone(),
            alpha: [
                d.base.as_ref().and_then(alpha),
                d.model.as_ref().and_then(alpha),
            ],
            stable_rank: [
                d.base.as_ref().and_then(|m| m.stable_rank),
                d.model.as_ref().and_then(|m| m.stable_rank),
            ],
            spectral_norm: [
                d.base.as_ref().map(|m| m.spectral_norm),
                d.model.as_ref().map(|m| m.spectral_norm),
            ],
            subspace: d.subspace,
        }
    }
}

/// One matrix of the base and the model, compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffRecord {
    pub param_name: String,
    pub placement: Placement,
    /// The expert, for one matrix of a stacked expert tensor.
    pub stack_index: Option<u32>,
    pub status: DiffStatus,
    pub rows: usize,
    pub cols: usize,
    pub base_dtype: String,
    pub model_dtype: String,
    pub stats: Option<DeltaStats>,
    pub spectra: Option<DiffSpectra>,
    /// Why the spectral columns are empty, when they are.
    pub skipped: Option<String>,
    pub seconds: f64,
    /// In a diff between a safetensors and a GGUF checkpoint, the GGUF
    /// name of the matrix (`param_name` is its Hugging Face name).
    #[serde(default)]
    pub gguf_name: String,
}

impl DiffRecord {
    /// Compares the matrices `base` and `model` (same name and shape).
    pub fn compute(
        base: &MatrixView<'_>,
        model: &MatrixView<'_>,
        engine: &Engine,
        options: &DiffOptions,
    ) -> Result<DiffRecord> {
        let start = std::time::Instant::now();
        let mut record = DiffRecord::listed(model, DiffStatus::Compared);
        record.base_dtype = base.tensor().code_type();
        record.absorb(diff_matrices(base, model, engine, options))?;
        record.seconds = start.elapsed().as_secs_f64();
        Ok(record)
    }

    /// Compares the base matrix `base` with itself after the LoRA `update`.
    pub fn compute_lora(
        base: &MatrixView<'_>,
        update: &LoraUpdate,
        adapter_dtype: String,
        engine: &Engine,
        options: &DiffOptions,
    ) -> Result<DiffRecord> {
        let start = std::time::Instant::now();
        let mut record = DiffRecord::listed(base, DiffStatus::Compared);
        record.base_dtype = base.tensor().code_type();
        record.model_dtype = adapter_dtype;
        record.absorb(diff_lora(base, update, engine, options))?;
        record.seconds = start.elapsed().as_secs_f64();
        Ok(record)
    }

    fn absorb(&mut self, diff: std::result::Result<MatrixDiff, DiffError>) -> Result<()> {
        match diff {
            Ok(d) => {
                self.stats = Some(d.stats);
                self.spectra = Some(DiffSpectra::of(&d));
            }
            Err(DiffError::Input(e)) => return Err(e),
            Err(DiffError::NonFinite(stats)) => {
                self.stats = Some(stats);
                self.skipped = Some(DiffError::NonFinite(stats).to_string());
            }
            Err(e @ DiffError::Spectrum(_)) => self.skipped = Some(e.to_string()),
        }
        Ok(())
    }

    /// A row without numbers for `matrix` (a tensor only one side has, or
    /// one whose shapes differ).
    pub fn listed(matrix: &MatrixView<'_>, status: DiffStatus) -> DiffRecord {
        let tensor = matrix.tensor();
        let (rows, cols) = matrix.shape();
        let dtype = tensor.code_type();
        // The matrix is the base's only when only the base has it.
        let (base_dtype, model_dtype) = match status {
            DiffStatus::OnlyInBase => (dtype, String::new()),
            _ => (String::new(), dtype),
        };
        DiffRecord {
            param_name: tensor.name().to_owned(),
            placement: classify(tensor.name()),
            stack_index: matrix.expert_index(),
            status,
            rows,
            cols,
            base_dtype,
            model_dtype,
            stats: None,
            spectra: None,
            skipped: None,
            seconds: 0.0,
            gguf_name: String::new(),
        }
    }

    /// This row under Hugging Face name `hf_name`, for a matrix of a GGUF
    /// checkpoint called `gguf_name` (with `[e]` for an expert).
    pub fn named_across(mut self, hf_name: &str, gguf_name: String) -> DiffRecord {
        self.param_name = hf_name.to_owned();
        self.placement = classify(hf_name);
        self.stack_index = None;
        self.gguf_name = gguf_name;
        self
    }

    /// `param_name`, with `[e]` for expert e of a stacked expert tensor.
    pub fn matrix_name(&self) -> String {
        match self.stack_index {
            Some(e) => format!("{}[{e}]", self.param_name),
            None => self.param_name.clone(),
        }
    }

    /// ΔW's 90%-energy rank over min(rows, cols).
    pub fn delta_90_ratio(&self) -> Option<f64> {
        let n = self.rows.min(self.cols);
        let s = self.spectra.as_ref()?;
        (n > 0).then(|| s.delta_energy_ranks[1] as f64 / n as f64)
    }
}

/// A diff row with what the whole run shares.
pub struct DiffRow<'a> {
    /// The model's path, id, revision and the run's time.
    pub run: &'a RunInfo,
    pub base_path: &'a str,
    /// `--lora-ranks`: one `lora_fit_err_R` column each.
    pub lora_ranks: &'a [usize],
    /// `--top-k`: the `subspace_overlap_*_K` and `intruders_K` columns
    /// (none for 0).
    pub top_k: usize,
    pub record: &'a DiffRecord,
}

impl Record for DiffRow<'_> {
    /// The columns without the `lora_fit_err_R` ones, which stand after
    /// `delta_stable_rank`, and the top-k vector ones, which stand after
    /// `spectral_norm_model` (see [`Record::columns`]).
    const COLUMNS: &'static [&'static str] = &[
        "base_path",
        "model_path",
        "model_id",
        "param_name",
        "layer_index",
        "block_type",
        "expert_index",
        "rows",
        "cols",
        "base_dtype",
        "model_dtype",
        "status",
        "rel_fro",
        "rel_spec",
        "mean_abs_delta",
        "changed_frac",
        "delta_rank",
        "delta_svd_50_percent_rank",
        "delta_svd_90_percent_rank",
        "delta_svd_99_percent_rank",
        "delta_stable_rank",
        "alpha_base",
        "alpha_model",
        "stable_rank_base",
        "stable_rank_model",
        "spectral_norm_base",
        "spectral_norm_model",
        "delta_spectral_norm",
        "numel",
        "changed",
        "nan_inf_count",
        "skipped",
        "seconds",
        "created_at",
        "sqnr_db",
        "gguf_name",
    ];

    fn columns(&self) -> Vec<String> {
        let at = LORA_AFTER;
        let mut columns: Vec<String> = Self::COLUMNS[..at]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        columns.extend(self.lora_ranks.iter().map(|r| format!("lora_fit_err_{r}")));
        columns.extend(
            Self::COLUMNS[at..VECTORS_AFTER]
                .iter()
                .map(|c| (*c).to_owned()),
        );
        if self.top_k > 0 {
            let k = self.top_k;
            columns.extend([
                format!("subspace_overlap_left_{k}"),
                format!("subspace_overlap_right_{k}"),
                format!("intruders_{k}"),
                "vectors_angle_bound".to_owned(),
            ]);
        }
        columns.extend(
            Self::COLUMNS[VECTORS_AFTER..]
                .iter()
                .map(|c| (*c).to_owned()),
        );
        columns
    }

    fn cells(&self) -> Vec<Cell> {
        let (r, run) = (self.record, self.run);
        let st = r.stats.as_ref();
        let sp = r.spectra.as_ref();
        let mut cells = vec![
            Cell::text(self.base_path),
            Cell::text(&run.model_path),
            Cell::text(&run.model_id),
            Cell::text(&r.param_name),
            Cell::opt_uint(r.placement.layer_index),
            Cell::text(r.placement.block_type.as_str()),
            Cell::opt_uint(r.stack_index.or(r.placement.expert_index)),
            Cell::UInt(r.rows as u64),
            Cell::UInt(r.cols as u64),
            Cell::text(&r.base_dtype),
            Cell::text(&r.model_dtype),
            Cell::text(r.status.as_str()),
            Cell::opt_float(st.and_then(DeltaStats::rel_fro)),
            Cell::opt_float(sp.and_then(|s| s.rel_spec)),
            Cell::opt_float(st.and_then(DeltaStats::mean_abs_delta)),
            Cell::opt_float(st.and_then(DeltaStats::changed_frac)),
            Cell::opt_uint(sp.map(|s| s.delta_rank as u64)),
            Cell::opt_uint(sp.map(|s| s.delta_energy_ranks[0] as u64)),
            Cell::opt_uint(sp.map(|s| s.delta_energy_ranks[1] as u64)),
            Cell::opt_uint(sp.map(|s| s.delta_energy_ranks[2] as u64)),
            Cell::opt_float(sp.and_then(|s| s.delta_stable_rank)),
        ];
        debug_assert_eq!(cells.len(), LORA_AFTER);
        for rank in self.lora_ranks {
            let err = sp.and_then(|s| s.lora_fit.iter().find(|(k, _)| k == rank)?.1);
            cells.push(Cell::opt_float(err));
        }
        cells.extend([
            Cell::opt_float(sp.and_then(|s| s.alpha[0])),
            Cell::opt_float(sp.and_then(|s| s.alpha[1])),
            Cell::opt_float(sp.and_then(|s| s.stable_rank[0])),
            Cell::opt_float(sp.and_then(|s| s.stable_rank[1])),
            Cell::opt_float(sp.and_then(|s| s.spectral_norm[0])),
            Cell::opt_float(sp.and_then(|s| s.spectral_norm[1])),
        ]);
        debug_assert_eq!(cells.len(), VECTORS_AFTER + self.lora_ranks.len());
        if self.top_k > 0 {
            let top = sp.and_then(|s| s.subspace);
            cells.extend([
                Cell::opt_float(top.map(|t| t.overlap_left)),
                Cell::opt_float(top.map(|t| t.overlap_right)),
                Cell::opt_uint(top.map(|t| t.intruders as u64)),
                Cell::opt_float(top.and_then(|t| t.angle_bound)),
            ]);
        }
        cells.extend([
            Cell::opt_float(sp.map(|s| s.delta_spectral_norm)),
            Cell::opt_uint(st.map(|s| s.numel)),
            Cell::opt_uint(st.map(|s| s.changed)),
            Cell::opt_uint(st.map(|s| s.nonfinite)),
            Cell::opt_text(r.skipped.as_ref()),
            Cell::Float(r.seconds),
            Cell::text(&run.created_at),
            Cell::opt_float(st.and_then(DeltaStats::sqnr_db)),
            Cell::text(&r.gguf_name),
        ]);
        cells
    }
}

/// Position of the first `lora_fit_err_R` column: after `delta_stable_rank`.
const LORA_AFTER: usize = 21;
/// Position (in [`DiffRow::COLUMNS`]) of the top-k vector columns: after
/// `spectral_norm_model`.
const VECTORS_AFTER: usize = 27;
