//! Singular vectors from the Gram route, for comparing the dominant
//! directions of two matrices ([`subspace_overlap`], intruder dimensions).
//!
//! The small side's vectors are eigenvectors of the f64 Gram matrix G = TᵀT
//! (T the tall orientation, as in the spectra), from faer's self-adjoint
//! eigendecomposition; the long side's top-k vectors are T·s/σ, formed in one
//! more pass over the matrix. That pass also gives the residual Tᵀl − σs of
//! every top-k triplet, so each computation carries its own accuracy: by
//! Wedin's theorem the largest angle between the computed and the exact
//! top-k singular subspaces (left and right) is at most ‖R‖_F / (σ_k −
//! σ_{k+1}), reported as [`SingularVectors::angle_bound`]. The residual is
//! ~1e-16·σ₁², so with the usual gaps the bound is far below 1e-8; it grows
//! without limit as σ_k and σ_{k+1} meet, where the top-k subspace itself is
//! not determined by the matrix.
//!
//! ```
//! use tpa_core::analyses::spectrum::vectors::{subspace_overlap, SingularVectors};
//! use tpa_core::model::Model;
//! use tpa_core::tensors::MatrixView;
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("m.safetensors");
//! // W = diag(3, 2, 1) with a zero fourth column.
//! # let values: Vec<f32> = (0..12).map(|i| if i % 5 == 0 { 3.0 - (i / 5) as f32 } else { 0.0 }).collect();
//! # let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
//! # let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 4], &bytes)?;
//! # safetensors::serialize_to_file([("w", view)], None, &path)?;
//! let model = Model::open(&path)?;
//! let w = MatrixView::whole(model.tensor("w")?);
//! let svd = SingularVectors::compute(&w, 2, false)?;
//! assert_eq!(svd.values(), [3.0, 2.0, 1.0]);
//! assert!((svd.left()[(0, 0)].abs() - 1.0).abs() < 1e-12);
//! assert!(svd.angle_bound().unwrap() < 1e-8);
//! // A matrix shares its dominant directions with itself.
//! assert!((subspace_overlap(svd.left(), svd.left()) - 1.0).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

use super::BackendError;
use super::blocks::{for_each_block, gram_order};
use super::cpu::gram_matrix;
use crate::tensors::MatrixView;

/// A matrix's singular values and top-k singular vectors (and, when asked
/// for, every vector of its small side).
#[derive(Debug, Clone)]
pub struct SingularVectors {
    /// All min(rows, cols) singular values, descending.
    values: Vec<f64>,
    /// Whether the small side is the left one (rows < cols).
    small_is_left: bool,
    /// Unit eigenvectors of the Gram matrix in descending σ: n × k, or n × n.
    small: Mat<f64>,
    /// The long side's top-k vectors T·s/σ: long × k.
    long: Mat<f64>,
    k: usize,
    angle_bound: Option<f64>,
}

impl SingularVectors {
    /// The singular values and the top-`k` left and right singular vectors
    /// of `matrix` (k is capped at min(rows, cols); vectors of σ = 0 are
    /// arbitrary unit vectors of the null space, as LAPACK's). With `all`,
    /// every vector of the small side is kept too (for
    /// [`Self::max_left_cosines`]). CPU only: one f64 Gram matrix, its full
    /// eigendecomposition, and one more pass over the matrix.
    pub fn compute(
        matrix: &MatrixView<'_>,
        k: usize,
        all: bool,
    ) -> Result<SingularVectors, BackendError> {
        let (rows, cols) = matrix.shape();
        let n = gram_order(matrix);
        let long_len = rows.max(cols);
        let k = k.min(n);
        let gram = gram_matrix(matrix)?;
        let (eigenvalues, eigenvectors) = eigendecomposition(gram)?;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| eigenvalues[b].total_cmp(&eigenvalues[a]));
        let values: Vec<f64> = order
            .iter()
            .map(|&i| eigenvalues[i].max(0.0).sqrt())
            .collect();
        let keep = if all { n } else { k };
        let small = Mat::<f64>::from_fn(n, keep, |i, j| eigenvectors[(i, order[j])]);
        let top = small.as_ref().subcols(0, k);
        // Long side: l_j = T s_j / σ_j, block by block; the same pass sums
        // Tᵀ l_j, whose distance from σ_j s_j is the residual.
        let inverse: Vec<f64> = values[..k]
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        let mut long = Mat::<f64>::zeros(long_len, k);
        let mut back = Mat::<f64>::zeros(n, k);
        let mut start = 0;
        for_each_block(matrix, |block| {
            let count = block.nrows();
            let mut part = long.as_mut().subrows_mut(start, count);
            matmul(part.as_mut(), Accum::Replace, block, top, 1.0, Par::Seq);
            for (j, &inv) in inverse.iter().enumerate() {
                part.as_mut().col_mut(j).iter_mut().for_each(|x| *x *= inv);
            }
            matmul(
                back.as_mut(),
                Accum::Add,
                block.transpose(),
                part.as_ref(),
                1.0,
                Par::Seq,
            );
            start += count;
            Ok(())
        })?;
        let mut residual = 0.0;
        for j in 0..k {
            if values[j] > 0.0 {
                for i in 0..n {
                    let r = back[(i, j)] - values[j] * top[(i, j)];
                    residual += r * r;
                }
            }
        }
        // σ_{k+1} is 0 past the small side (the long side's other vectors).
        let gap = match k {
            0 => 0.0,
            k => values[k - 1] - values.get(k).copied().unwrap_or(0.0),
        };
        let angle_bound = (k > 0 && gap > 0.0).then(|| (residual.sqrt() / gap).min(1.0));
        Ok(SingularVectors {
            values,
            small_is_left: rows < cols,
            small,
            long,
            k,
            angle_bound,
        })
    }

    /// All singular values, descending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The singular values, without the vectors.
    pub fn into_values(self) -> Vec<f64> {
        self.values
    }

    /// The number of top vectors kept.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The top-k left singular vectors, rows × k.
    pub fn left(&self) -> MatRef<'_, f64> {
        if self.small_is_left {
            self.small.as_ref().subcols(0, self.k)
        } else {
            self.long.as_ref()
        }
    }

    /// The top-k right singular vectors, cols × k.
    pub fn right(&self) -> MatRef<'_, f64> {
        if self.small_is_left {
            self.long.as_ref()
        } else {
            self.small.as_ref().subcols(0, self.k)
        }
    }

    /// Wedin's bound on the sine of the largest angle between the computed
    /// top-k singular subspaces and the exact ones (module docs); `None`
    /// when σ_k = σ_{k+1}, where those subspaces are not unique.
    pub fn angle_bound(&self) -> Option<f64> {
        self.angle_bound
    }

    /// For each column u of `vectors` (unit vectors of length rows), the
    /// largest |cos| between u and the left singular vectors of `matrix`
    /// (the matrix these vectors were computed from, with `all`): the min(rows,
    /// cols) vectors of the thin SVD. Vectors whose σ is at or below
    /// `rank_rtol`·σ₁ are left out: the matrix does not determine them.
    ///
    /// Panics if these vectors were computed without `all`.
    pub fn max_left_cosines(
        &self,
        matrix: &MatrixView<'_>,
        vectors: MatRef<'_, f64>,
        rank_rtol: f64,
    ) -> Result<Vec<f64>, BackendError> {
        let n = self.values.len();
        assert_eq!(self.small.ncols(), n, "computed without every vector");
        let kept = self
            .values
            .iter()
            .take_while(|&&s| s > rank_rtol * self.values[0])
            .count();
        let cosines = if self.small_is_left {
            // The left vectors are the Gram's eigenvectors.
            self.small.as_ref().subcols(0, kept).transpose() * vectors
        } else {
            // u_iᵀ x = s_iᵀ (Wᵀ x) / σ_i, with Wᵀ x from one pass over W = T.
            let mut projected = Mat::<f64>::zeros(n, vectors.ncols());
            let mut start = 0;
            for_each_block(matrix, |block| {
                let count = block.nrows();
                matmul(
                    projected.as_mut(),
                    Accum::Add,
                    block.transpose(),
                    vectors.subrows(start, count),
                    1.0,
                    Par::Seq,
                );
                start += count;
                Ok(())
            })?;
            let mut c = self.small.as_ref().subcols(0, kept).transpose() * &projected;
            for i in 0..kept {
                let inv = 1.0 / self.values[i];
                c.as_mut().row_mut(i).iter_mut().for_each(|x| *x *= inv);
            }
            c
        };
        Ok((0..vectors.ncols())
            .map(|j| {
                cosines
                    .col(j)
                    .iter()
                    .fold(0.0f64, |m, c| m.max(c.abs()))
                    .min(1.0)
            })
            .collect())
    }
}

/// ‖AᵀB‖²_F / k for two n × k sets of orthonormal vectors: the mean squared
/// cosine of the principal angles between their spans, 1 for the same
/// subspace and 0 for orthogonal ones.
pub fn subspace_overlap(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let k = a.ncols().min(b.ncols());
    if k == 0 {
        return 0.0;
    }
    let product = a.transpose() * b;
    product.squared_norm_l2() / k as f64
}

/// Eigenvalues (ascending) and eigenvectors of the symmetric matrix whose
/// lower triangle `a` holds.
fn eigendecomposition(a: Mat<f64>) -> Result<(Vec<f64>, Mat<f64>), BackendError> {
    let n = a.nrows();
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut u = Mat::<f64>::zeros(n, n);
    let params = Default::default();
    let mut mem = MemBuffer::new(self_adjoint_evd_scratch::<f64>(
        n,
        ComputeEigenvectors::Yes,
        Par::Seq,
        params,
    ));
    self_adjoint_evd(
        a.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        params,
    )
    .map_err(|e| BackendError::Failed(format!("eigenvectors did not converge: {e:?}")))?;
    Ok((s.column_vector().iter().copied().collect(), u))
}
