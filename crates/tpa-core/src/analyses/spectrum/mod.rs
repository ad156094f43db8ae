//! Exact, complete singular-value spectra of weight matrices.
//!
//! Every matrix gets all min(rows, cols) singular values, accurate in f64.
//! The fast route forms the Gram matrix of the small side in f64 and takes
//! its eigenvalues; it resolves σ down to ~1e-8·σmax, so wherever a σ falls
//! within ±1% of the rank tolerance (σ > rtol·σmax decides the rank) the
//! matrix is redone with an f64 SVD. The numerical rank then equals LAPACK's
//! f64 SVD on the same stored values. Nothing is ever computed in f32: that
//! gets ranks wrong at rtol = 1e-6.
//!
//! Backends implement [`SpectralBackend`]: the CPU one always, the CUDA one
//! (feature `cuda`, on by default, loaded at run time) where a GPU is found.
//! An [`Engine`] runs the accelerator first and falls back to the CPU per
//! matrix.

mod blocks;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod eigen;
pub mod metrics;
pub mod powerlaw;
pub mod vectors;

use std::sync::{Mutex, TryLockError};
use std::time::Instant;

pub use cpu::CpuBackend;

use crate::error::Error;
use crate::tensors::MatrixView;

/// Half-width of the band around the rank tolerance, relative to it, inside
/// which the Gram route's σ is not trusted to decide the rank. Its worst
/// error there is ~7e-5 relative (notes/linalg.md), 100× inside the band.
pub const TOLERANCE_BAND: f64 = 0.01;

/// Knobs of the spectral analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumOptions {
    /// σ counts towards the rank when σ > rank_rtol · σmax.
    pub rank_rtol: f64,
}

impl Default for SpectrumOptions {
    fn default() -> Self {
        SpectrumOptions { rank_rtol: 1e-6 }
    }
}

/// How a spectrum was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Eigenvalues of the f64 Gram matrix.
    GramF64,
    /// f64 SVD (after a streaming QR).
    SvdF64,
}

impl Method {
    /// The label written to outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GramF64 => "gram-f64",
            Method::SvdF64 => "svd-f64",
        }
    }
}

/// All singular values of a matrix, in descending order.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    pub values: Vec<f64>,
    pub method: Method,
    /// The backend that computed it (`cpu`, `cuda`).
    pub backend: &'static str,
    /// Wall time of the computation.
    pub seconds: f64,
}

/// Why a backend could not produce a spectrum.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The device ran out of memory for this matrix; others may still fit.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// The backend is broken for the rest of the run (e.g. a sticky CUDA error).
    #[error("{0}")]
    Broken(String),
    /// This matrix failed (e.g. no convergence); reported, not retried.
    #[error("{0}")]
    Failed(String),
    /// This backend cannot do this matrix (a dtype it cannot decode, a
    /// dimension past its API, no convergence there); another backend may.
    #[error("{0}")]
    Declined(String),
    /// Reading the matrix failed: the input is at fault, not the backend.
    #[error(transparent)]
    Input(#[from] Error),
}

/// A way to compute singular values. Both routes return all min(rows, cols)
/// values in descending order.
pub trait SpectralBackend: Send + Sync {
    /// Short name for the `backend` column.
    fn name(&self) -> &'static str;
    /// σ from the eigenvalues of the f64 Gram matrix of the small side.
    fn gram_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError>;
    /// σ from an f64 SVD.
    fn svd_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError>;
}

/// Computes the spectrum of `matrix` on `backend` with the band rule: the
/// Gram route first, the SVD route if any σ lies within ±1% of the rank
/// tolerance.
pub fn spectrum_on(
    backend: &dyn SpectralBackend,
    matrix: &MatrixView<'_>,
    options: &SpectrumOptions,
) -> Result<Spectrum, BackendError> {
    let start = Instant::now();
    let values = backend.gram_route(matrix)?;
    let (values, method) = if near_tolerance(&values, options.rank_rtol) {
        (backend.svd_route(matrix)?, Method::SvdF64)
    } else {
        (values, Method::GramF64)
    };
    Ok(Spectrum {
        values,
        method,
        backend: backend.name(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Whether some σ lies within ±[`TOLERANCE_BAND`] of rtol·σmax.
pub(crate) fn near_tolerance(values: &[f64], rank_rtol: f64) -> bool {
    let Some(&max) = values.first() else {
        return false;
    };
    let tol = rank_rtol * max;
    tol > 0.0
        && values
            .iter()
            .any(|&s| (s - tol).abs() <= TOLERANCE_BAND * tol)
}

/// Matrices whose small side is at least this wait for the accelerator when
/// it is busy; smaller ones go to the CPU instead, so that CPU threads work
/// through the small matrices while the accelerator takes the big ones.
pub const ACCELERATOR_FROM: usize = 1024;

/// Runs spectra on an optional accelerator with the CPU as fallback, per
/// matrix: an out-of-memory matrix (or one the accelerator declines) is done
/// on the CPU and the accelerator stays in use; a broken accelerator is
/// switched off for the rest of the run.
pub struct Engine {
    /// One matrix at a time; `None` once switched off.
    accelerator: Mutex<Option<Box<dyn SpectralBackend>>>,
    cpu: CpuBackend,
    options: SpectrumOptions,
    notice: Box<dyn Fn(&str) + Send + Sync>,
}

impl Engine {
    /// An engine on the CPU only.
    pub fn cpu(options: SpectrumOptions) -> Engine {
        Engine {
            accelerator: Mutex::new(None),
            cpu: CpuBackend,
            options,
            notice: Box::new(|message| eprintln!("{message}")),
        }
    }

    /// Adds an accelerator tried before the CPU.
    pub fn with_accelerator(self, backend: Box<dyn SpectralBackend>) -> Engine {
        Engine {
            accelerator: Mutex::new(Some(backend)),
            ..self
        }
    }

    /// Where fallback notices go (stderr by default).
    pub fn with_notice(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Engine {
        self.notice = Box::new(notice);
        self
    }

    /// The options every spectrum uses.
    pub fn options(&self) -> &SpectrumOptions {
        &self.options
    }

    /// The spectrum of `matrix`.
    pub fn spectrum(&self, matrix: &MatrixView<'_>) -> Result<Spectrum, BackendError> {
        let (rows, cols) = matrix.shape();
        let slot = if rows.min(cols) >= ACCELERATOR_FROM {
            Some(self.accelerator.lock().unwrap_or_else(|e| e.into_inner()))
        } else {
            match self.accelerator.try_lock() {
                Ok(slot) => Some(slot),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        };
        if let Some(mut slot) = slot
            && let Some(accelerator) = slot.as_deref()
        {
            match spectrum_on(accelerator, matrix, &self.options) {
                Ok(spectrum) => return Ok(spectrum),
                Err(BackendError::OutOfMemory(_)) => {
                    (self.notice)(&format!(
                        "⚠️  GPU OOM, falling back to CPU for matrix ({rows}, {cols})"
                    ));
                }
                Err(BackendError::Declined(reason)) => {
                    (self.notice)(&format!(
                        "⚠️  {} backend declined matrix ({rows}, {cols}): {reason}; computing it on the CPU",
                        accelerator.name()
                    ));
                }
                Err(BackendError::Broken(reason)) => {
                    (self.notice)(&format!(
                        "⚠️  {} backend failed ({reason}); using the CPU for the rest of the run",
                        accelerator.name()
                    ));
                    // Its handles would fail (and panic) when dropped on a
                    // broken context: keep it alive, unused, until exit.
                    if let Some(broken) = slot.take() {
                        std::mem::forget(broken);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        spectrum_on(&self.cpu, matrix, &self.options)
    }
}
