//! Top singular vectors and what they say about a fine-tune: matrices built
//! as U·diag(σ)·Vᵀ from known orthonormal U and V, so that every vector,
//! overlap and intruder count is known in closed form.

use faer::Mat;
use tpa_core::analyses::diff::{DiffOptions, Subspace, diff_matrices};
use tpa_core::analyses::spectrum::vectors::SingularVectors;
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;
use tpa_testkit::{Dtype, Fill, SplitMix64, TensorSpec, write_safetensors};

/// An n × n orthonormal matrix from the QR of a random one.
fn orthonormal(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = SplitMix64::new(seed);
    let m = Mat::<f64>::from_fn(n, n, |_, _| rng.normal());
    m.qr().compute_Q()
}

/// σ_i = 10·0.8^i: gaps of 20%, so every vector is well determined.
fn sigma(n: usize) -> Vec<f64> {
    (0..n).map(|i| 10.0 * 0.8f64.powi(i as i32)).collect()
}

/// Row-major U[:, :n]·diag(σ)·V[:, :n]ᵀ.
fn compose(u: &Mat<f64>, sigma: &[f64], v: &Mat<f64>) -> Vec<f64> {
    let (rows, cols) = (u.nrows(), v.nrows());
    let mut w = vec![0.0; rows * cols];
    for (k, &s) in sigma.iter().enumerate() {
        for i in 0..rows {
            for j in 0..cols {
                w[i * cols + j] += s * u[(i, k)] * v[(j, k)];
            }
        }
    }
    w
}

/// A base and a model file, each with the one f64 matrix "w".
struct Pair {
    _dir: tempfile::TempDir,
    base: Model,
    model: Model,
}

fn pair(rows: usize, cols: usize, base: Vec<f64>, model: Vec<f64>) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    for (file, values) in [("base", base), ("model", model)] {
        let spec = TensorSpec::new("w", Dtype::F64, &[rows, cols], Fill::Values(values));
        write_safetensors(&dir.path().join(format!("{file}.safetensors")), &[spec]).unwrap();
    }
    Pair {
        base: Model::open(dir.path().join("base.safetensors")).unwrap(),
        model: Model::open(dir.path().join("model.safetensors")).unwrap(),
        _dir: dir,
    }
}

fn compare(p: &Pair, threshold: f64) -> Subspace {
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let options = DiffOptions {
        intruder_threshold: threshold,
        ..DiffOptions::default()
    };
    let (b, m) = (
        MatrixView::whole(p.base.tensor("w").unwrap()),
        MatrixView::whole(p.model.tensor("w").unwrap()),
    );
    diff_matrices(&b, &m, &engine, &options)
        .unwrap()
        .subspace
        .unwrap()
}

/// The angle between two unit vectors up to sign, accurate for tiny angles.
fn angle(a: faer::ColRef<'_, f64>, b: faer::ColRef<'_, f64>) -> f64 {
    let (mut plus, mut minus) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b.iter()) {
        plus += (x + y) * (x + y);
        minus += (x - y) * (x - y);
    }
    plus.min(minus).sqrt()
}

#[test]
fn top_vectors_are_the_planted_ones_to_1e_8_in_angle_on_both_orientations() {
    for (rows, cols) in [(60, 40), (40, 60)] {
        let n = rows.min(cols);
        let (u, v) = (orthonormal(rows, 1), orthonormal(cols, 2));
        let s = sigma(n);
        let p = pair(rows, cols, compose(&u, &s, &v), vec![0.0; rows * cols]);
        let w = MatrixView::whole(p.base.tensor("w").unwrap());
        let svd = SingularVectors::compute(&w, 10, false).unwrap();
        assert_eq!(svd.k(), 10);
        let mut worst = 0.0f64;
        for j in 0..10 {
            worst = worst
                .max(angle(svd.left().col(j), u.col(j)))
                .max(angle(svd.right().col(j), v.col(j)));
            assert!((svd.values()[j] - s[j]).abs() <= 1e-12 * s[0]);
        }
        let bound = svd.angle_bound().unwrap();
        assert!(
            worst < 1e-8 && bound < 1e-8,
            "{rows}×{cols}: {worst:e}, bound {bound:e}"
        );
    }
}

#[test]
fn a_near_tie_at_k_makes_the_angle_bound_say_the_subspace_is_loose() {
    let (rows, cols) = (50, 30);
    let (u, v) = (orthonormal(rows, 3), orthonormal(cols, 4));
    let mut s = sigma(cols);
    // σ_10 and σ_11 (k = 10) a relative 1e-10 apart.
    s[10] = s[9] * (1.0 - 1e-10);
    let p = pair(rows, cols, compose(&u, &s, &v), vec![0.0; rows * cols]);
    let w = MatrixView::whole(p.base.tensor("w").unwrap());
    let loose = SingularVectors::compute(&w, 10, false).unwrap();
    assert!(
        loose.angle_bound().unwrap() > 1e-8,
        "{:?}",
        loose.angle_bound()
    );
    // k = 9 stops before the tie: tight again.
    let tight = SingularVectors::compute(&w, 9, false).unwrap();
    assert!(
        tight.angle_bound().unwrap() < 1e-8,
        "{:?}",
        tight.angle_bound()
    );
}

#[test]
fn identical_matrices_overlap_fully_with_no_intruders() {
    for (rows, cols) in [(48, 32), (32, 48)] {
        let (u, v) = (orthonormal(rows, 5), orthonormal(cols, 6));
        let w = compose(&u, &sigma(rows.min(cols)), &v);
        let top = compare(&pair(rows, cols, w.clone(), w), 0.5);
        assert!((top.overlap_left - 1.0).abs() < 1e-12, "{top:?}");
        assert!((top.overlap_right - 1.0).abs() < 1e-12, "{top:?}");
        assert_eq!((top.k, top.intruders), (10, 0));
        assert!(top.angle_bound.unwrap() < 1e-8);
    }
}

#[test]
fn a_planted_rotation_of_the_top_left_vector_is_measured() {
    let (rows, cols, theta) = (48, 32, 0.6f64);
    let (u, v) = (orthonormal(rows, 7), orthonormal(cols, 8));
    let s = sigma(cols);
    // u₁ turned by θ towards u₁₂, which lies outside the top 10.
    let mut turned = u.clone();
    for i in 0..rows {
        let (a, b) = (u[(i, 0)], u[(i, 11)]);
        turned[(i, 0)] = theta.cos() * a + theta.sin() * b;
        turned[(i, 11)] = -theta.sin() * a + theta.cos() * b;
    }
    let p = pair(rows, cols, compose(&u, &s, &v), compose(&turned, &s, &v));
    let top = compare(&p, 0.5);
    let expected = (9.0 + theta.cos().powi(2)) / 10.0;
    assert!(
        (top.overlap_left - expected).abs() < 1e-12,
        "{top:?} vs {expected}"
    );
    assert!((top.overlap_right - 1.0).abs() < 1e-12, "{top:?}");
    // The turned vector still has |cos| = cos θ = 0.825 with u₁.
    assert_eq!(top.intruders, 0);
    assert_eq!(compare(&p, 0.9).intruders, 1);
}

#[test]
fn a_planted_rank_one_intruder_direction_is_counted() {
    for (rows, cols) in [(48, 40), (40, 48)] {
        let (u, v) = (orthonormal(rows, 9), orthonormal(cols, 10));
        let s = sigma(rows.min(cols));
        let base = compose(&u, &s, &v);
        // x and y spread evenly over base vectors 20..36: |cos| = 1/4 with
        // each; 20·x·yᵀ becomes the model's top direction.
        let mut model = base.clone();
        for i in 0..rows {
            for j in 0..cols {
                let x: f64 = (20..36).map(|k| u[(i, k)]).sum::<f64>() / 4.0;
                let y: f64 = (20..36).map(|k| v[(j, k)]).sum::<f64>() / 4.0;
                model[i * cols + j] += 20.0 * x * y;
            }
        }
        let top = compare(&pair(rows, cols, base, model), 0.5);
        assert_eq!(top.intruders, 1, "{rows}×{cols}: {top:?}");
        // The other nine are the base's u₁..u₉; the intruder is orthogonal
        // to all of the base's top ten.
        assert!((top.overlap_left - 0.9).abs() < 1e-12, "{top:?}");
        assert!((top.overlap_right - 0.9).abs() < 1e-12, "{top:?}");
    }
}
