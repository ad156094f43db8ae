//! Eigenvalues of a dense symmetric matrix, in two stages: a blocked
//! Householder reduction to a band, bulge chasing from the band to a
//! tridiagonal matrix, then implicit QL on the tridiagonal matrix.
//!
//! faer 0.24's `self_adjoint_evd` reduces to tridiagonal form in one stage,
//! with an unblocked kernel that reads and writes the whole trailing matrix
//! at every column: memory-bound. Measured on this project's 2-core machine,
//! eigenvalues only (BENCHMARKS.md): n = 2048 in 0.71 s and n = 4096 in 9.7 s,
//! against 0.50 s and 5.0 s for LAPACK's one-stage dsyevd (OpenBLAS). A
//! LAPACK-style blocked one-stage reduction written here got 0.65 s and 8.3 s:
//! still bound by its matrix-vector products. The two-stage reduction (as in
//! LAPACK's dsytrd_2stage) does almost all its flops in matrix products
//! (stage 1) and the rest on a band that stays in cache (stage 2). Every step
//! is an orthogonal similarity, so eigenvalues are accurate to ~eps·‖A‖, as
//! faer's; the tests below compare the two.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Half-bandwidth of the intermediate band matrix: wide enough for efficient
/// matrix products in stage 1, narrow enough for stage 2 (~6·BAND·n² flops).
const BAND: usize = 32;
/// QL sweeps allowed per eigenvalue before giving up (LAPACK allows 30).
const MAX_SWEEPS: usize = 60;

/// Below this order faer's one-stage solver is faster: the matrix fits in
/// cache, so its memory traffic costs little (measured crossover between
/// n = 1024, faer 0.08 s vs 0.11 s, and n = 2048, faer 0.71 s vs 0.56 s).
const TWO_STAGE_FROM: usize = 1536;

/// All eigenvalues (ascending) of the symmetric matrix whose lower triangle
/// `a` holds; `a` is consumed as workspace.
pub(crate) fn symmetric_eigenvalues(mut a: Mat<f64>) -> Result<Vec<f64>, String> {
    if a.nrows() < TWO_STAGE_FROM {
        return faer_eigenvalues(a.as_ref());
    }
    let (mut d, mut e) = tridiagonalize(a.as_mut());
    tridiagonal_eigenvalues(&mut d, &mut e)?;
    d.sort_by(f64::total_cmp);
    Ok(d)
}

/// faer's one-stage eigenvalues, ascending.
fn faer_eigenvalues(a: MatRef<'_, f64>) -> Result<Vec<f64>, String> {
    let n = a.nrows();
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let params = Default::default();
    let mut mem = MemBuffer::new(self_adjoint_evd_scratch::<f64>(
        n,
        ComputeEigenvectors::No,
        Par::Seq,
        params,
    ));
    self_adjoint_evd(
        a,
        s.as_mut(),
        None,
        Par::Seq,
        MemStack::new(&mut mem),
        params,
    )
    .map_err(|e| format!("eigenvalues did not converge: {e:?}"))?;
    let mut values: Vec<f64> = s.column_vector().iter().copied().collect();
    values.sort_by(f64::total_cmp);
    Ok(values)
}

/// Reduces the lower triangle of `a` to tridiagonal form Qᵀ A Q, returning
/// its diagonal and subdiagonal.
fn tridiagonalize(mut a: MatMut<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    let n = a.nrows();
    to_band(a.rb_mut());
    band_to_tridiagonal(a.rb_mut());
    let d = (0..n).map(|i| a[(i, i)]).collect();
    let e = (0..n.saturating_sub(1)).map(|i| a[(i + 1, i)]).collect();
    (d, e)
}

/// Stage 1: Qᵀ A Q with half-bandwidth [`BAND`], one panel of BAND columns at
/// a time: QR of the panel below the band, then the two-sided update of the
/// trailing matrix, A22 ← Qᵀ A22 Q = A22 − Y Vᵀ − V Yᵀ with Q = I − V T Vᵀ,
/// X = A22 V T and Y = X − ½ V (Tᵀ Vᵀ X), all in matrix products.
fn to_band(mut a: MatMut<'_, f64>) {
    let n = a.nrows();
    let mut p0 = 0;
    while p0 + BAND + 1 < n {
        let top = p0 + BAND;
        let m = n - top;
        let k = BAND.min(m);
        let (v, t) = panel_qr(a.rb_mut().submatrix_mut(top, p0, m, BAND));
        let w = &v * &t;
        let a22 = a.rb().submatrix(top, top, m, m);
        // X = A22 W with A22 symmetric, held in its lower triangle.
        let mut x = Mat::<f64>::zeros(m, k);
        for (lhs, structure, accum) in [
            (a22, BlockStructure::TriangularLower, Accum::Replace),
            (
                a22.transpose(),
                BlockStructure::StrictTriangularUpper,
                Accum::Add,
            ),
        ] {
            matmul(
                x.as_mut(),
                BlockStructure::Rectangular,
                accum,
                lhs,
                structure,
                w.as_ref(),
                BlockStructure::Rectangular,
                1.0,
                Par::Seq,
            );
        }
        let z = t.transpose() * (v.transpose() * &x);
        let y = &x - &v * &z * 0.5;
        let mut a22 = a.rb_mut().submatrix_mut(top, top, m, m);
        for (lhs, rhs) in [(&y, &v), (&v, &y)] {
            matmul(
                a22.rb_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                lhs.as_ref(),
                BlockStructure::Rectangular,
                rhs.as_ref().transpose(),
                BlockStructure::Rectangular,
                -1.0,
                Par::Seq,
            );
        }
        p0 = top;
    }
}

/// Householder QR of an m × BAND panel, in place: R is left in the panel's
/// upper triangle and zeros below it. Returns V (m × k, unit lower
/// trapezoidal) and the k × k upper-triangular T with Q = I − V T Vᵀ
/// (LAPACK dgeqr2 + dlarft).
fn panel_qr(mut p: MatMut<'_, f64>) -> (Mat<f64>, Mat<f64>) {
    let (m, b) = (p.nrows(), p.ncols());
    let k = b.min(m);
    let mut v = Mat::<f64>::zeros(m, k);
    let mut t = Mat::<f64>::zeros(k, k);
    for c in 0..k {
        let (beta, tau) = householder(&mut column_mut(p.rb_mut(), c, c)[..]);
        {
            let vc = column_mut(v.as_mut(), c, c);
            vc.copy_from_slice(column(p.rb(), c, c));
            vc[0] = 1.0;
        }
        let vc = column(v.as_ref(), c, c);
        let pc = column_mut(p.rb_mut(), c, c);
        pc[0] = beta;
        pc[1..].fill(0.0);
        for col in c + 1..b {
            let target = column_mut(p.rb_mut(), col, c);
            let s = tau * dot(vc, target);
            target.iter_mut().zip(vc).for_each(|(x, vi)| *x -= s * vi);
        }
        // T[:c, c] = −τ T[:c, :c] (V[:, :c]ᵀ v_c)
        let proj: Vec<f64> = (0..c)
            .map(|i| dot(&column(v.as_ref(), i, 0)[c..], vc))
            .collect();
        for i in 0..c {
            t[(i, c)] = -tau * (i..c).map(|l| t[(i, l)] * proj[l]).sum::<f64>();
        }
        t[(c, c)] = tau;
    }
    (v, t)
}

/// Stage 2: band (half-bandwidth ≤ [`BAND`]) to tridiagonal by bulge chasing
/// (the sweeps of LAPACK's dsytrd_sb2st, eigenvalues only). Sweep j
/// annihilates column j below the subdiagonal with a reflector on the next
/// BAND rows; applying it to the block below creates a bulge whose first
/// column the next reflector removes, and so on to the end of the matrix.
/// The rest of each bulge lies in the path of the next sweep. Everything a
/// sweep touches is a BAND × 2·BAND window, so the work stays in cache.
fn band_to_tridiagonal(mut a: MatMut<'_, f64>) {
    let n = a.nrows();
    let mut v = vec![0.0; BAND];
    let mut u = vec![0.0; BAND];
    let mut scratch = vec![0.0; BAND];
    for j in 0..n.saturating_sub(2) {
        // Step 0: column j.
        let mut r = j + 1;
        let mut len = BAND.min(n - r);
        let mut tau = {
            let x = &mut column_mut(a.rb_mut(), j, r)[..len];
            let (beta, tau) = householder(x);
            v[..len].copy_from_slice(x);
            v[0] = 1.0;
            x[0] = beta;
            x[1..].fill(0.0);
            tau
        };
        two_sided(a.rb_mut(), r, &v[..len], tau, &mut scratch);
        loop {
            let s = r + len;
            if s >= n {
                break;
            }
            let rows = BAND.min(n - s);
            // R = A[s.., r..r+len] ← R H (fills the bulge).
            if tau != 0.0 {
                u[..rows].fill(0.0);
                for (c, vc) in (r..r + len).zip(&v[..len]) {
                    let col = &column(a.rb(), c, s)[..rows];
                    u[..rows]
                        .iter_mut()
                        .zip(col)
                        .for_each(|(ui, x)| *ui += x * vc);
                }
                for (c, vc) in (r..r + len).zip(&v[..len]) {
                    let col = &mut column_mut(a.rb_mut(), c, s)[..rows];
                    let f = tau * vc;
                    col.iter_mut()
                        .zip(&u[..rows])
                        .for_each(|(x, ui)| *x -= f * ui);
                }
            }
            if rows < 2 {
                break;
            }
            // Remove the bulge's first column: reflector on rows s..s+rows,
            // applied from the left to R and on both sides of A[s.., s..].
            let new_tau = {
                let x = &mut column_mut(a.rb_mut(), r, s)[..rows];
                let (beta, new_tau) = householder(x);
                v[..rows].copy_from_slice(x);
                v[0] = 1.0;
                x[0] = beta;
                x[1..].fill(0.0);
                new_tau
            };
            if new_tau != 0.0 {
                for c in r + 1..r + len {
                    let col = &mut column_mut(a.rb_mut(), c, s)[..rows];
                    let f = new_tau * dot(&v[..rows], col);
                    col.iter_mut()
                        .zip(&v[..rows])
                        .for_each(|(x, vi)| *x -= f * vi);
                }
            }
            two_sided(a.rb_mut(), s, &v[..rows], new_tau, &mut scratch);
            (r, len, tau) = (s, rows, new_tau);
        }
    }
}

/// D ← H D H for the diagonal block D = A[r..r+len, r..r+len] (lower
/// triangle) and H = I − τ v vᵀ.
fn two_sided(mut a: MatMut<'_, f64>, r: usize, v: &[f64], tau: f64, scratch: &mut [f64]) {
    if tau == 0.0 {
        return;
    }
    let len = v.len();
    let y = &mut scratch[..len];
    symv_lower(a.rb().submatrix(r, r, len, len), v, y);
    y.iter_mut().for_each(|x| *x *= tau);
    let alpha = -0.5 * tau * dot(y, v);
    y.iter_mut().zip(v).for_each(|(y, vi)| *y += alpha * vi);
    syr2_lower(a.rb_mut().submatrix_mut(r, r, len, len), v, y);
}

/// Householder reflector (LAPACK dlarfg) for x: afterwards H x = β e₁ with
/// H = I − τ v vᵀ, v = (1, x[1..]). Returns (β, τ); x[0] is left alone.
fn householder(x: &mut [f64]) -> (f64, f64) {
    let alpha = x[0];
    let tail_norm = dot(&x[1..], &x[1..]).sqrt();
    if tail_norm == 0.0 {
        return (alpha, 0.0);
    }
    // Gram matrices are scaled well (entries far from 1e±154), so the plain
    // norm cannot overflow where LAPACK would rescale.
    let beta = -alpha.signum() * alpha.hypot(tail_norm);
    let scale = 1.0 / (alpha - beta);
    x[1..].iter_mut().for_each(|xi| *xi *= scale);
    (beta, (beta - alpha) / beta)
}

/// Column j of `a` from row `from` on, as a slice.
fn column(a: MatRef<'_, f64>, j: usize, from: usize) -> &[f64] {
    let col = a
        .col(j)
        .try_as_col_major()
        .expect("columns of a Mat are contiguous");
    &col.as_slice()[from..]
}

/// Column j of `a` from row `from` on, as a mutable slice.
fn column_mut(a: MatMut<'_, f64>, j: usize, from: usize) -> &mut [f64] {
    let col = a
        .col_mut(j)
        .try_as_col_major_mut()
        .expect("columns of a Mat are contiguous");
    &mut col.as_slice_mut()[from..]
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let mut cx = x.chunks_exact(4);
    let mut cy = y.chunks_exact(4);
    for (a, b) in (&mut cx).zip(&mut cy) {
        for i in 0..4 {
            acc[i] += a[i] * b[i];
        }
    }
    let tail: f64 = cx
        .remainder()
        .iter()
        .zip(cy.remainder())
        .map(|(a, b)| a * b)
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// y = A v for the symmetric A held in the lower triangle of `a`: one pass
/// over the triangle, each column giving a dot product and an axpy. This is
/// where the reduction spends its time, so it is compiled a second time for
/// AVX2 and picked at run time (the default target only has SSE2); measured
/// at n = 2048: 1.5 s of 2.2 s before, see BENCHMARKS.md.
fn symv_lower(a: MatRef<'_, f64>, v: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature the function enables.
        return unsafe { symv_lower_avx2(a, v, y) };
    }
    symv_lower_portable(a, v, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn symv_lower_avx2(a: MatRef<'_, f64>, v: &[f64], y: &mut [f64]) {
    symv_lower_portable(a, v, y)
}

/// Four columns at a time, so that y and v are loaded once per four
/// columns of A instead of once per column.
#[inline(always)]
fn symv_lower_portable(a: MatRef<'_, f64>, v: &[f64], y: &mut [f64]) {
    let m = a.nrows();
    y.fill(0.0);
    let mut j = 0;
    while j + 4 <= m {
        let cols = [
            column(a, j, 0),
            column(a, j + 1, 0),
            column(a, j + 2, 0),
            column(a, j + 3, 0),
        ];
        let vj = [v[j], v[j + 1], v[j + 2], v[j + 3]];
        // The 4 × 4 diagonal block, lower part.
        let mut dots = [0.0; 4];
        for k in 0..4 {
            for i in j + k..j + 4 {
                let aik = cols[k][i];
                y[i] += aik * vj[k];
                if i != j + k {
                    dots[k] += aik * v[i];
                }
            }
        }
        // Rows below the block: y_i += Σ_k A[i, j+k] v[j+k]; dots_k += A[i, j+k] v_i.
        let below = j + 4;
        let (c0, c1, c2, c3) = (
            &cols[0][below..m],
            &cols[1][below..m],
            &cols[2][below..m],
            &cols[3][below..m],
        );
        let (vb, yb) = (&v[below..m], &mut y[below..m]);
        let mut acc = [[0.0; 4]; 4];
        let full = vb.len() / 4 * 4;
        let quads = c0[..full]
            .chunks_exact(4)
            .zip(c1[..full].chunks_exact(4))
            .zip(c2[..full].chunks_exact(4))
            .zip(c3[..full].chunks_exact(4))
            .zip(vb[..full].chunks_exact(4))
            .zip(yb[..full].chunks_exact_mut(4));
        for (((((q0, q1), q2), q3), vq), yq) in quads {
            for l in 0..4 {
                let (a0, a1, a2, a3) = (q0[l], q1[l], q2[l], q3[l]);
                yq[l] += a0 * vj[0] + a1 * vj[1] + a2 * vj[2] + a3 * vj[3];
                acc[0][l] += a0 * vq[l];
                acc[1][l] += a1 * vq[l];
                acc[2][l] += a2 * vq[l];
                acc[3][l] += a3 * vq[l];
            }
        }
        for i in full..vb.len() {
            let (a0, a1, a2, a3) = (c0[i], c1[i], c2[i], c3[i]);
            yb[i] += a0 * vj[0] + a1 * vj[1] + a2 * vj[2] + a3 * vj[3];
            let vi = vb[i];
            dots[0] += a0 * vi;
            dots[1] += a1 * vi;
            dots[2] += a2 * vi;
            dots[3] += a3 * vi;
        }
        for k in 0..4 {
            y[j + k] += dots[k] + acc[k].iter().sum::<f64>();
        }
        j += 4;
    }
    for j in j..m {
        let col = column(a, j, 0);
        y[j] += col[j] * v[j];
        for i in j + 1..m {
            y[i] += col[i] * v[j];
            y[j] += col[i] * v[i];
        }
    }
}

/// A -= v yᵀ + y vᵀ on the lower triangle of `a`.
fn syr2_lower(mut a: MatMut<'_, f64>, v: &[f64], y: &[f64]) {
    let m = a.nrows();
    for j in 0..m {
        let (vj, yj) = (v[j], y[j]);
        let col = column_mut(a.rb_mut(), j, 0);
        for i in j..m {
            col[i] -= v[i] * yj + y[i] * vj;
        }
    }
}

/// Eigenvalues of the symmetric tridiagonal matrix (diagonal `d`, sub-
/// diagonal `e`) by implicit QL with Wilkinson shifts, in place in `d`.
fn tridiagonal_eigenvalues(d: &mut [f64], e: &mut [f64]) -> Result<(), String> {
    let n = d.len();
    let mut e: Vec<f64> = e.iter().copied().chain(std::iter::once(0.0)).collect();
    // Besides LAPACK's relative test, a subdiagonal entry below eps·‖T‖ is
    // dropped: that moves eigenvalues by less than the reduction's own
    // backward error, and without it clusters of (numerically) zero
    // eigenvalues of rank-deficient Gram matrices never split.
    let norm = d.iter().map(|x| x.abs()).fold(0.0, f64::max)
        + 2.0 * e.iter().map(|x| x.abs()).fold(0.0, f64::max);
    if norm == 0.0 {
        return Ok(());
    }
    // Work on T/‖T‖: entries ≤ 1 keep r = √(f² + g²) free of overflow, so
    // the slow careful `hypot` is not needed (it cost 6% of a 2048² run).
    d.iter_mut().for_each(|x| *x /= norm);
    e.iter_mut().for_each(|x| *x /= norm);
    let negligible = f64::EPSILON;
    for l in 0..n {
        let mut sweeps = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd || e[m].abs() <= negligible {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            sweeps += 1;
            if sweeps > MAX_SWEEPS {
                return Err(format!(
                    "tridiagonal QL did not converge for eigenvalue {l} of {n}"
                ));
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = (g * g + 1.0).sqrt();
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = (f * f + g * g).sqrt();
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if !underflow {
                d[l] -= p;
                e[l] = g;
                e[m] = 0.0;
            }
        }
    }
    d.iter_mut().for_each(|x| *x *= norm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-stage solver, whatever the size, against faer's.
    fn check(mut a: Mat<f64>) {
        let expected = faer_eigenvalues(a.as_ref()).unwrap();
        let scale = expected
            .iter()
            .fold(0.0f64, |m, x| m.max(x.abs()))
            .max(f64::MIN_POSITIVE);
        let (mut ours, mut e) = tridiagonalize(a.as_mut());
        tridiagonal_eigenvalues(&mut ours, &mut e).unwrap();
        ours.sort_by(f64::total_cmp);
        assert_eq!(ours.len(), expected.len());
        for (i, (x, y)) in ours.iter().zip(&expected).enumerate() {
            assert!(
                (x - y).abs() <= 1e-12 * scale,
                "λ[{i}] of {}: {x} vs {y}",
                ours.len()
            );
        }
    }

    fn random_symmetric(n: usize, seed: u64) -> Mat<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let b = Mat::<f64>::from_fn(n, n, |_, _| next());
        &b + b.transpose()
    }

    #[test]
    fn matches_faer_on_random_matrices_of_every_size_class() {
        for (n, seed) in [
            (1, 1),
            (2, 2),
            (3, 3),
            (17, 4),
            (127, 5),
            (129, 6),
            (161, 7),
            (300, 8),
        ] {
            check(random_symmetric(n, seed));
        }
    }

    #[test]
    fn matches_faer_on_rank_deficient_gram_matrices_and_zeros() {
        let x = Mat::<f64>::from_fn(250, 90, |i, j| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        check(x.transpose() * &x * 1e-3);
        let x = Mat::<f64>::from_fn(40, 200, |i, j| ((i * 7 + j * 3) % 5) as f64);
        check(x.transpose() * &x); // rank ≤ 40 of 200
        check(Mat::<f64>::zeros(150, 150));
        check(Mat::<f64>::from_fn(140, 140, |i, j| {
            if i == j { i as f64 } else { 0.0 }
        }));
    }

    #[test]
    fn tridiagonal_solver_on_a_known_spectrum() {
        // The n × n second-difference matrix: λ_k = 2 − 2 cos(kπ/(n+1)).
        let n = 50;
        let mut d = vec![2.0; n];
        let mut e = vec![-1.0; n - 1];
        tridiagonal_eigenvalues(&mut d, &mut e).unwrap();
        d.sort_by(f64::total_cmp);
        for (k, x) in d.iter().enumerate() {
            let exact = 2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((x - exact).abs() < 1e-13, "{x} vs {exact}");
        }
    }
}
