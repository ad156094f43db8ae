//! The CPU backend: faer, one matrix per thread.
//!
//! Gram route: G = TᵀT (n × n, lower triangle) accumulated in f64 block by
//! block, then its eigenvalues only; σ = √max(λ, 0). Measured in
//! `../shared/notes/linalg.md` and BENCHMARKS.md: 2–4× faster than an f64 SVD,
//! accurate to ~1e-11 relative for σ ≥ 1e-3·σmax and resolving σ down to
//! ~1e-8·σmax (the error grows as (σmax/σ)² below that).
//!
//! SVD route: a streaming tall-skinny QR (R of [R; block] block by block,
//! which is backward stable) and an f64 SVD of the n × n R: full f64
//! accuracy everywhere, with memory ~n² instead of the whole matrix.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::linalg::qr::no_pivoting::factor::{
    qr_in_place, qr_in_place_scratch, recommended_block_size,
};
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
use faer::{Accum, Mat, Par};

use super::blocks::{block_rows, for_each_block, gram_order};
use super::eigen::symmetric_eigenvalues;
use super::{BackendError, SpectralBackend};
use crate::tensors::MatrixView;

/// Spectra on the CPU with faer, single-threaded per matrix (parallelism
/// comes from running several matrices at once).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl CpuBackend {
    /// Bytes of memory one matrix needs on this backend, for either route:
    /// the n × n Gram matrix and the eigensolver's copy (or R and the stacked
    /// QR buffer and the SVD's workspace), plus one decoded block.
    pub fn memory_estimate(rows: usize, cols: usize) -> u64 {
        let n = rows.min(cols) as u64;
        let b = block_rows(n as usize) as u64;
        8 * (3 * n * n + 2 * b * n)
    }
}

impl SpectralBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn gram_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        let gram = gram_matrix(matrix)?;
        let eigenvalues = symmetric_eigenvalues(gram).map_err(BackendError::Failed)?;
        Ok(descending(
            eigenvalues.into_iter().map(|l| l.max(0.0).sqrt()).collect(),
        ))
    }

    fn svd_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        let n = gram_order(matrix);
        // R so far: `k` rows of an upper-triangular k × n factor.
        let mut r = Mat::<f64>::zeros(n, n);
        let mut k = 0;
        for_each_block(matrix, |block| {
            let rows = k + block.nrows();
            let mut stacked = Mat::<f64>::zeros(rows, n);
            stacked
                .as_mut()
                .subrows_mut(0, k)
                .copy_from(r.as_ref().subrows(0, k));
            stacked
                .as_mut()
                .subrows_mut(k, block.nrows())
                .copy_from(block);
            let bs = recommended_block_size::<f64>(rows, n);
            let mut coeff = Mat::<f64>::zeros(bs, rows.min(n));
            let mut mem = MemBuffer::new(qr_in_place_scratch::<f64>(
                rows,
                n,
                bs,
                Par::Seq,
                Default::default(),
            ));
            qr_in_place(
                stacked.as_mut(),
                coeff.as_mut(),
                Par::Seq,
                MemStack::new(&mut mem),
                Default::default(),
            );
            k = rows.min(n);
            for j in 0..n {
                for i in 0..k {
                    r[(i, j)] = if i <= j { stacked[(i, j)] } else { 0.0 };
                }
            }
            Ok(())
        })?;
        let r = r.as_ref().subrows(0, k);
        let mut s = faer::diag::Diag::<f64>::zeros(k.min(n));
        let mut mem = MemBuffer::new(svd_scratch::<f64>(
            k,
            n,
            ComputeSvdVectors::No,
            ComputeSvdVectors::No,
            Par::Seq,
            Default::default(),
        ));
        svd(
            r,
            s.as_mut(),
            None,
            None,
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|e| BackendError::Failed(format!("SVD did not converge: {e:?}")))?;
        let mut values: Vec<f64> = s.column_vector().iter().map(|x| x.abs()).collect();
        // An n-column matrix with fewer than n rows still has n singular
        // values for the rank count of T's small side: the missing ones are 0.
        values.resize(n, 0.0);
        Ok(descending(values))
    }
}

/// G = TᵀT of the tall orientation T (n × n, lower triangle), accumulated
/// in f64 block by block.
pub(crate) fn gram_matrix(matrix: &MatrixView<'_>) -> crate::error::Result<Mat<f64>> {
    let n = gram_order(matrix);
    let mut gram = Mat::<f64>::zeros(n, n);
    for_each_block(matrix, |block| {
        matmul(
            gram.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            block.transpose(),
            BlockStructure::Rectangular,
            block,
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
        Ok(())
    })?;
    Ok(gram)
}

fn descending(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| b.total_cmp(a));
    values
}
