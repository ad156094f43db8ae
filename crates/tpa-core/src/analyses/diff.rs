//! What fine-tuning changed in one matrix: ΔW = W_model − W_base, computed
//! exactly in f64 from the stored values and analysed by the same spectral
//! engine as any stored matrix (through [`MatrixView::minus`]).
//!
//! ```no_run
//! use tpa_core::analyses::diff::{DiffOptions, diff_matrices};
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
//!     &DiffOptions::default(),
//! )?;
//! println!("rel_fro {:?}, ΔW rank {}", diff.stats.rel_fro(), diff.delta.actual_rank);
//! if let Some(top) = &diff.subspace {
//!     println!("top-{} overlap {:.3}, {} intruders", top.k, top.overlap_left, top.intruders);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::analyses::spectrum::metrics::SpectralMetrics;
use crate::analyses::spectrum::vectors::{SingularVectors, subspace_overlap};
use crate::analyses::spectrum::{
    BackendError, CpuBackend, Engine, Method, SpectralBackend, near_tolerance,
};
use crate::error::{Error, Result};
use crate::tensors::{LoraUpdate, MatrixView};

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

    /// Signal-to-quantization-noise ratio in dB, 10·log10(‖W‖²/‖ΔW‖²): how
    /// far a quantized model (the "model" side) is from its base. `None`
    /// when either norm is zero.
    pub fn sqnr_db(&self) -> Option<f64> {
        (self.base_sq > 0.0 && self.delta_sq > 0.0)
            .then(|| 10.0 * (self.base_sq / self.delta_sq).log10())
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
        release_done(row, rows, &[base, model]);
    }
    Ok(stats)
}

/// Rows read per release of their file pages in the element-wise passes.
const RELEASE_ROWS: usize = 64;

/// After row `row` of `rows`, gives the pages of the finished rows back
/// every [`RELEASE_ROWS`] rows, so that a pass over a whole model keeps
/// resident memory bounded (as the spectral routes do).
fn release_done(row: usize, rows: usize, views: &[&MatrixView<'_>]) {
    let done = row + 1;
    if done % RELEASE_ROWS == 0 || done == rows {
        let start = (done - 1) / RELEASE_ROWS * RELEASE_ROWS;
        for view in views {
            view.release_rows(start, done - start);
        }
    }
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

/// What a comparison computes beyond the element-wise facts.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffOptions {
    /// One [`lora_fit_error`] per rank, in this order.
    pub lora_ranks: Vec<usize>,
    /// How many top singular vectors of each side are compared (0: none;
    /// the spectra then run on the engine's accelerator too).
    pub top_k: usize,
    /// A model vector whose largest |cos| with every base vector is below
    /// this is an intruder dimension.
    pub intruder_threshold: f64,
    /// Only ΔW's side: no spectra (nor vectors) of the base and the model,
    /// so `rel_spec` and both sides' metrics stay empty. With an adapter
    /// this leaves O((out + in)·r²) spectral work per module.
    pub delta_only: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            lora_ranks: vec![8, 16, 64, 128],
            top_k: 10,
            intruder_threshold: 0.5,
            delta_only: false,
        }
    }
}

/// How the model's dominant directions relate to the base's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subspace {
    /// The number of top vectors compared: `top_k`, or min(rows, cols).
    pub k: usize,
    /// ‖U_bᵀU_m‖²_F / k over the top-k left singular vectors, and the same
    /// for the right ones ([`subspace_overlap`]).
    pub overlap_left: f64,
    pub overlap_right: f64,
    /// How many of the model's top-k left singular vectors have a largest
    /// |cos| with every left singular vector of the base below the
    /// threshold (Shuttleworth et al.'s intruder dimensions).
    pub intruders: usize,
    /// The larger of the two sides' [`SingularVectors::angle_bound`]: how
    /// far the vectors used may be from the exact ones, in sine of angle;
    /// `None` when σ_k = σ_{k+1} on a side.
    pub angle_bound: Option<f64>,
}

/// A base matrix compared with itself after a LoRA update: the
/// element-wise facts (ΔW formed row by row, O(out·in·r)), ΔW's exact
/// spectrum from [`lora_singular_values`] (ΔW never formed for it), and the
/// spectra (and top vectors) of the base and of the merged matrix, read
/// through [`MatrixView::plus`].
pub fn diff_lora(
    base: &MatrixView<'_>,
    update: &LoraUpdate,
    engine: &Engine,
    options: &DiffOptions,
) -> std::result::Result<MatrixDiff, DiffError> {
    let (rows, cols) = base.shape();
    let mismatch = || {
        DiffError::Input(Error::ShapeMismatch {
            tensor: base.name(),
            reason: format!(
                "{:?} in the base, the adapter's ΔW is {:?}",
                (rows, cols),
                update.shape()
            ),
        })
    };
    let merged = base.plus(update).ok_or_else(mismatch)?;
    let mut stats = DeltaStats::default();
    let (mut w, mut d) = (vec![0.0f64; cols], vec![0.0f64; cols]);
    for i in 0..rows {
        base.decode_row_segment(i, 0, &mut w)?;
        d.fill(0.0);
        update.add_row_segment(i, 0, &mut d);
        for (&x, &dx) in w.iter().zip(&d) {
            // Changed: the merged value differs from the stored one.
            stats.add(x, dx, x + dx != x);
        }
        release_done(i, rows, &[base]);
    }
    if stats.nonfinite > 0 {
        return Err(DiffError::NonFinite(stats));
    }
    let delta_values = lora_singular_values(
        &update.b,
        &update.a,
        update.out,
        update.rank,
        update.inp,
        update.scale,
    )
    .map_err(DiffError::Spectrum)?;
    MatrixDiff::new(stats, base, &merged, delta_values, engine, options)
}

/// Everything that is compared for one pair of matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixDiff {
    pub stats: DeltaStats,
    /// The spectra's metrics: ΔW's, the base's and the model's (those two
    /// `None` with `delta_only`).
    pub delta: SpectralMetrics,
    pub base: Option<SpectralMetrics>,
    pub model: Option<SpectralMetrics>,
    /// ‖ΔW‖₂ / ‖W_base‖₂; `None` for a zero base, or with `delta_only`.
    pub rel_spec: Option<f64>,
    /// [`lora_fit_error`] for each requested rank, in the order given.
    pub lora_fit: Vec<(usize, Option<f64>)>,
    /// The top singular vectors compared (`None` with `top_k` 0).
    pub subspace: Option<Subspace>,
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

impl From<BackendError> for DiffError {
    fn from(e: BackendError) -> DiffError {
        match e {
            BackendError::Input(e) => DiffError::Input(e),
            other => DiffError::Spectrum(other.to_string()),
        }
    }
}

/// Compares `model` with `base` (the same matrix of both checkpoints):
/// the element-wise facts, the complete spectra of the base, the model
/// and ΔW, the LoRA fit errors and the top singular vectors.
pub fn diff_matrices(
    base: &MatrixView<'_>,
    model: &MatrixView<'_>,
    engine: &Engine,
    options: &DiffOptions,
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
    let spectrum = engine.spectrum(&delta_view)?;
    let delta_values = if spectrum.method == Method::GramF64
        && too_fine_for_gram(&spectrum.values, &options.lora_ranks)
    {
        CpuBackend.svd_route(&delta_view)?
    } else {
        spectrum.values
    };
    MatrixDiff::new(stats, base, model, delta_values, engine, options)
}

/// Whether a LoRA fit error would come from σ's the Gram route cannot
/// resolve: its σᵢ² carry an absolute error of about n·ε·σ₁², so a tail
/// energy within 10⁶ of that (fit errors below ~1e-4 for n in the
/// thousands) is redone by the SVD route, whose σᵢ are accurate to ε·σ₁.
/// A delta that is almost exactly of low rank (a merged adapter stored in
/// f32, say) is the case this catches.
fn too_fine_for_gram(values: &[f64], lora_ranks: &[usize]) -> bool {
    let n = values.len();
    let Some(&top) = values.first() else {
        return false;
    };
    let floor = 1e6 * n as f64 * f64::EPSILON * top * top;
    top > 0.0
        && lora_ranks
            .iter()
            .any(|&r| r < n && values[r..].iter().map(|s| s * s).sum::<f64>() < floor)
}

impl MatrixDiff {
    /// Completes a comparison whose ΔW is known: the spectra of both sides
    /// and, with `top_k`, their top vectors.
    fn new(
        stats: DeltaStats,
        base: &MatrixView<'_>,
        model: &MatrixView<'_>,
        delta_values: Vec<f64>,
        engine: &Engine,
        options: &DiffOptions,
    ) -> std::result::Result<MatrixDiff, DiffError> {
        let rtol = engine.options().rank_rtol;
        let (base_values, model_values, subspace) = if options.delta_only {
            (None, None, None)
        } else if options.top_k == 0 {
            let base_values = engine.spectrum(base)?.values;
            (
                Some(base_values),
                Some(engine.spectrum(model)?.values),
                None,
            )
        } else {
            let top = |view: &MatrixView<'_>, all: bool| {
                SingularVectors::compute(view, options.top_k, all)
            };
            let (b, m) = (top(base, true)?, top(model, false)?);
            let cosines = b.max_left_cosines(base, m.left(), rtol)?;
            let subspace = Subspace {
                k: m.k(),
                overlap_left: subspace_overlap(b.left(), m.left()),
                overlap_right: subspace_overlap(b.right(), m.right()),
                intruders: cosines
                    .iter()
                    .filter(|&&c| c < options.intruder_threshold)
                    .count(),
                angle_bound: b.angle_bound().zip(m.angle_bound()).map(|(x, y)| x.max(y)),
            };
            // The band rule of the spectra: a σ next to the rank tolerance
            // is settled by the engine's SVD route.
            let values = |svd: SingularVectors, view: &MatrixView<'_>| {
                if near_tolerance(svd.values(), rtol) {
                    engine.spectrum(view).map(|s| s.values)
                } else {
                    Ok(svd.into_values())
                }
            };
            (
                Some(values(b, base)?),
                Some(values(m, model)?),
                Some(subspace),
            )
        };
        let delta = SpectralMetrics::new(&delta_values, rtol);
        let metrics = |values: Option<Vec<f64>>| values.map(|v| SpectralMetrics::new(&v, rtol));
        let base = metrics(base_values);
        Ok(MatrixDiff {
            stats,
            rel_spec: base
                .as_ref()
                .filter(|b| b.spectral_norm > 0.0)
                .map(|b| delta.spectral_norm / b.spectral_norm),
            lora_fit: options
                .lora_ranks
                .iter()
                .map(|&r| (r, lora_fit_error(&delta_values, r)))
                .collect(),
            delta,
            base,
            model: metrics(model_values),
            subspace,
            delta_values,
        })
    }
}
