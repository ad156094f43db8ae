//! What fine-tuning changed in one matrix: ΔW = W_model − W_base, computed
//! exactly in f64 from the stored values and analysed by the same spectral
//! engine as any stored matrix (through [`MatrixView::minus`]).
//!
//! ```no_run
//! use tpa_core::analyses::diff::diff_matrices;
//! use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
//! use tpa_core::model::Model;
//! use tpa_core::tensors::MatrixView;
//!
//! let (base, tuned) = (Model::open("base")?, Model::open("tuned")?);
//! let name = "model.layers.0.self_attn.q_proj.weight";
//! let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
//! let diff = diff_matrices(
//!     &MatrixView::whole(base.tensor(name)?),
//!     &MatrixView::whole(tuned.tensor(name)?),
//!     &engine,
//!     &[8, 64],
//! )?;
//! println!("rel_fro {:?}, ΔW rank {}", diff.stats.rel_fro(), diff.delta.actual_rank);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::analyses::spectrum::metrics::SpectralMetrics;
use crate::analyses::spectrum::{BackendError, Engine};
use crate::error::{Error, Result};
use crate::tensors::MatrixView;

/// Element-wise facts of a pair, from one pass over both matrices.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeltaStats {
    pub numel: u64,
    /// Elements whose value changed at all (model ≠ base).
    pub changed: u64,
    /// ‖W_base‖²_F and ‖ΔW‖²_F.
    pub base_sq: f64,
    pub delta_sq: f64,
    /// Σ|ΔW|.
    pub abs_sum: f64,
    /// Elements that are NaN or ±Inf on either side.
    pub nonfinite: u64,
}

impl DeltaStats {
    /// ‖ΔW‖_F / ‖W_base‖_F; `None` for a zero base.
    pub fn rel_fro(&self) -> Option<f64> {
        (self.base_sq > 0.0).then(|| (self.delta_sq / self.base_sq).sqrt())
    }

    /// mean |ΔW|: the one scale of BitDelta's sign approximation.
    pub fn mean_abs_delta(&self) -> Option<f64> {
        (self.numel > 0).then(|| self.abs_sum / self.numel as f64)
    }

    /// Counts one element: base value `x`, its change `d` (NaN or ±Inf
    /// on either side count as non-finite and nothing else).
    fn add(&mut self, x: f64, d: f64, changed: bool) {
        self.numel += 1;
        if !(x.is_finite() && d.is_finite()) {
            self.nonfinite += 1;
            return;
        }
        self.changed += u64::from(changed);
        self.base_sq += x * x;
        self.delta_sq += d * d;
        self.abs_sum += d.abs();
    }

    /// Share of the elements that changed.
    pub fn changed_frac(&self) -> Option<f64> {
        (self.numel > 0).then(|| self.changed as f64 / self.numel as f64)
    }
}

/// [`DeltaStats`] of `model − base` (same shape), streamed row by row.
pub fn delta_stats(base: &MatrixView<'_>, model: &MatrixView<'_>) -> Result<DeltaStats> {
    let (rows, cols) = base.shape();
    if model.shape() != (rows, cols) {
        return Err(Error::ShapeMismatch {
            tensor: model.name(),
            reason: format!(
                "{:?} in the model, {:?} in the base",
                model.shape(),
                (rows, cols)
            ),
        });
    }
    let mut stats = DeltaStats::default();
    let (mut b, mut m) = (vec![0.0f64; cols], vec![0.0f64; cols]);
    for row in 0..rows {
        base.decode_row_segment(row, 0, &mut b)?;
        model.decode_row_segment(row, 0, &mut m)?;
        for (&x, &y) in b.iter().zip(&m) {
            let d = y - x;
            stats.add(x, d, d != 0.0);
        }
    }
    Ok(stats)
}

/// ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F, what the best rank-`r` approximation (a LoRA of
/// rank r) leaves out, from ΔW's singular values (descending): by
/// Eckart–Young, √(Σ_{i>r} σᵢ²) / √(Σ σᵢ²). The tail is summed directly,
/// not as total minus head, so that small errors keep their digits. `None`
/// for ΔW = 0.
///
/// ```
/// use tpa_core::analyses::diff::lora_fit_error;
/// assert_eq!(lora_fit_error(&[4.0, 3.0], 1), Some(0.6));
/// assert_eq!(lora_fit_error(&[4.0, 3.0], 2), Some(0.0));
/// assert_eq!(lora_fit_error(&[0.0, 0.0], 1), None);
/// assert!(lora_fit_error(&[4.0], 8).unwrap().is_sign_positive());
/// ```
pub fn lora_fit_error(values: &[f64], r: usize) -> Option<f64> {
    // Folded from +0.0: an empty f64 sum is −0.0, which would print as such.
    let total = values.iter().fold(0.0, |acc, s| acc + s * s);
    let tail = values.iter().skip(r).fold(0.0, |acc, s| acc + s * s);
    (total > 0.0).then(|| (tail / total).sqrt())
}

/// The singular values of ΔW = `scale` · B·A for a LoRA of rank r (B is
/// out × r, A is r × in, both row-major), without forming the out × in
/// ΔW: with B = Q_B·R_B and Aᵀ = Q_A·R_A (thin QR), ΔW = Q_B·(scale·R_B·R_Aᵀ)·Q_Aᵀ,
/// so its nonzero singular values are those of the r × r core. O((out +
/// in)·r²) instead of O(out·in·r). Returns min(out, in) values, descending,
/// zeros after the first r.
///
/// ```
/// use tpa_core::analyses::diff::lora_singular_values;
/// // B = [1, 0, 0]ᵀ·2 and A = [0, 3]: ΔW has the one singular value 6·scale.
/// let values = lora_singular_values(&[2.0, 0.0, 0.0], &[0.0, 3.0], 3, 1, 2, 0.5).unwrap();
/// assert_eq!(values, [3.0, 0.0]);
/// ```
pub fn lora_singular_values(
    b: &[f64],
    a: &[f64],
    out: usize,
    r: usize,
    inp: usize,
    scale: f64,
) -> std::result::Result<Vec<f64>, String> {
    use faer::Mat;
    if b.len() != out * r || a.len() != r * inp {
        return Err(format!(
            "LoRA factors of {} and {} values do not make {out}×{r} and {r}×{inp}",
            b.len(),
            a.len()
        ));
    }
    let b = Mat::<f64>::from_fn(out, r, |i, j| b[i * r + j]);
    let at = Mat::<f64>::from_fn(inp, r, |i, j| a[j * inp + i]);
    let rb = b.qr().thin_R().to_owned();
    let ra = at.qr().thin_R().to_owned();
    let core = &rb * ra.transpose() * faer::Scale(scale);
    let mut values = core
        .singular_values()
        .map_err(|e| format!("the {r}×{r} core's SVD did not converge: {e:?}"))?;
    values.resize(out.min(inp), 0.0);
    values.sort_by(|x, y| y.total_cmp(x));
    Ok(values)
}

/// A LoRA update of one base matrix: ΔW = scale·B·A (B out × r, A r × in,
/// row-major f64), or its transpose when the base stores the layer as
/// in × out (`fan_in_fan_out`, embeddings).
#[derive(Debug, Clone)]
pub struct LoraUpdate {
    pub b: Vec<f64>,
    pub a: Vec<f64>,
    pub out: usize,
    pub rank: usize,
    pub inp: usize,
    pub scale: f64,
    pub transposed: bool,
}

impl LoraUpdate {
    /// The shape ΔW has in the base's layout.
    pub fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.inp, self.out)
        } else {
            (self.out, self.inp)
        }
    }

    /// Row `i` of ΔW in the base's layout, into `row`.
    fn row(&self, i: usize, row: &mut [f64]) {
        row.fill(0.0);
        let (r, inp) = (self.rank, self.inp);
        if self.transposed {
            // ΔWᵀ[i, j] = scale · Σ_k B[j, k] · A[k, i]
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.scale
                    * (0..r)
                        .map(|k| self.b[j * r + k] * self.a[k * inp + i])
                        .sum::<f64>();
            }
        } else {
            for k in 0..r {
                let coef = self.scale * self.b[i * r + k];
                for (v, &a) in row.iter_mut().zip(&self.a[k * inp..(k + 1) * inp]) {
                    *v += coef * a;
                }
            }
        }
    }
}

/// A base matrix compared with itself after a LoRA update: the
/// element-wise facts (ΔW formed row by row, O(out·in·r)), ΔW's exact
/// spectrum from [`lora_singular_values`] (ΔW never formed for it), the
/// base's spectrum, and the LoRA fit errors. The updated matrix's own
/// spectrum is not computed (it is not stored anywhere to read).
pub fn diff_lora(
    base: &MatrixView<'_>,
    update: &LoraUpdate,
    engine: &Engine,
    lora_ranks: &[usize],
) -> std::result::Result<MatrixDiff, DiffError> {
    let (rows, cols) = base.shape();
    if update.shape() != (rows, cols) {
        return Err(DiffError::Input(Error::ShapeMismatch {
            tensor: base.name(),
            reason: format!(
                "{:?} in the base, the adapter's ΔW is {:?}",
                (rows, cols),
                update.shape()
            ),
        }));
    }
    let mut stats = DeltaStats::default();
    let (mut w, mut d) = (vec![0.0f64; cols], vec![0.0f64; cols]);
    for i in 0..rows {
        base.decode_row_segment(i, 0, &mut w)?;
        update.row(i, &mut d);
        for (&x, &dx) in w.iter().zip(&d) {
            // Changed: the merged value differs from the stored one.
            stats.add(x, dx, x + dx != x);
        }
    }
    if stats.nonfinite > 0 {
        return Err(DiffError::NonFinite(stats));
    }
    let rtol = engine.options().rank_rtol;
    let base_values = match engine.spectrum(base) {
        Ok(s) => s.values,
        Err(BackendError::Input(e)) => return Err(DiffError::Input(e)),
        Err(other) => return Err(DiffError::Spectrum(other.to_string())),
    };
    let delta_values = lora_singular_values(
        &update.b,
        &update.a,
        update.out,
        update.rank,
        update.inp,
        update.scale,
    )
    .map_err(DiffError::Spectrum)?;
    Ok(MatrixDiff::new(
        stats,
        SpectralMetrics::new(&base_values, rtol),
        None,
        delta_values,
        rtol,
        lora_ranks,
    ))
}

/// Everything that is compared for one pair of matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixDiff {
    pub stats: DeltaStats,
    /// The spectra's metrics: ΔW's, the base's and the model's (none for
    /// a LoRA update, see [`diff_lora`]).
    pub delta: SpectralMetrics,
    pub base: SpectralMetrics,
    pub model: Option<SpectralMetrics>,
    /// ‖ΔW‖₂ / ‖W_base‖₂; `None` for a zero base.
    pub rel_spec: Option<f64>,
    /// [`lora_fit_error`] for each requested rank, in the order given.
    pub lora_fit: Vec<(usize, Option<f64>)>,
    /// ΔW's singular values, descending.
    pub delta_values: Vec<f64>,
}

/// Why a pair has no spectral comparison.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading either matrix failed, or their shapes differ.
    #[error(transparent)]
    Input(#[from] Error),
    /// NaN or Inf on either side: the element-wise facts are still known.
    #[error("{} NaN/Inf values in the base or the model", .0.nonfinite)]
    NonFinite(DeltaStats),
    /// The engine could not compute a spectrum (did not converge, ...).
    #[error("{0}")]
    Spectrum(String),
}

/// Compares `model` with `base` (the same matrix of both checkpoints):
/// the element-wise facts, the complete spectra of the base, the model
/// and ΔW, and the LoRA fit errors at `lora_ranks`.
pub fn diff_matrices(
    base: &MatrixView<'_>,
    model: &MatrixView<'_>,
    engine: &Engine,
    lora_ranks: &[usize],
) -> std::result::Result<MatrixDiff, DiffError> {
    let stats = delta_stats(base, model)?;
    if stats.nonfinite > 0 {
        return Err(DiffError::NonFinite(stats));
    }
    let delta_view = model.minus(*base).ok_or_else(|| {
        DiffError::Input(Error::ShapeMismatch {
            tensor: model.name(),
            reason: "the base has another shape".into(),
        })
    })?;
    let rtol = engine.options().rank_rtol;
    let spectrum = |view: &MatrixView<'_>| match engine.spectrum(view) {
        Ok(s) => Ok(s.values),
        Err(BackendError::Input(e)) => Err(DiffError::Input(e)),
        Err(other) => Err(DiffError::Spectrum(other.to_string())),
    };
    let delta_values = spectrum(&delta_view)?;
    Ok(MatrixDiff::new(
        stats,
        SpectralMetrics::new(&spectrum(base)?, rtol),
        Some(SpectralMetrics::new(&spectrum(model)?, rtol)),
        delta_values,
        rtol,
        lora_ranks,
    ))
}

impl MatrixDiff {
    fn new(
        stats: DeltaStats,
        base: SpectralMetrics,
        model: Option<SpectralMetrics>,
        delta_values: Vec<f64>,
        rank_rtol: f64,
        lora_ranks: &[usize],
    ) -> MatrixDiff {
        let delta = SpectralMetrics::new(&delta_values, rank_rtol);
        MatrixDiff {
            stats,
            rel_spec: (base.spectral_norm > 0.0).then(|| delta.spectral_norm / base.spectral_norm),
            lora_fit: lora_ranks
                .iter()
                .map(|&r| (r, lora_fit_error(&delta_values, r)))
                .collect(),
            delta,
            base,
            model,
            delta_values,
        }
    }
}
