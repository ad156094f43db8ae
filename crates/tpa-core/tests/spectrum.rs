//! Spectra of matrices whose singular values are built in.

use faer::Mat;
use tpa_core::analyses::spectrum::metrics::SpectralMetrics;
use tpa_core::analyses::spectrum::{
    BackendError, CpuBackend, Engine, Method, SpectralBackend, SpectrumOptions, spectrum_on,
};
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;
use tpa_testkit::{Dtype, EVERY_DTYPE, Fill, SplitMix64, TensorSpec, write_safetensors};

/// An orthonormal m × k matrix (k ≤ m) from the QR of a seeded Gaussian one.
fn orthonormal(m: usize, k: usize, seed: u64) -> Mat<f64> {
    let mut rng = SplitMix64::new(seed);
    let a = Mat::<f64>::from_fn(m, k, |_, _| rng.normal());
    a.qr().compute_thin_Q()
}

/// Row-major values of U·diag(σ)·Vᵀ for a rows × cols matrix.
fn planted(rows: usize, cols: usize, sigma: &[f64], seed: u64) -> Vec<f64> {
    let k = sigma.len();
    let u = orthonormal(rows, k, seed);
    let v = orthonormal(cols, k, seed + 1);
    let us = Mat::<f64>::from_fn(rows, k, |i, j| u[(i, j)] * sigma[j]);
    let w = &us * v.transpose();
    (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| w[(i, j)])
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    model: Model,
}

fn fixture(tensors: Vec<TensorSpec>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write_safetensors(&path, &tensors).unwrap();
    Fixture {
        model: Model::open(&path).unwrap(),
        _dir: dir,
    }
}

fn f64_matrix(name: &str, rows: usize, cols: usize, values: Vec<f64>) -> TensorSpec {
    TensorSpec::new(name, Dtype::F64, &[rows, cols], Fill::Values(values))
}

fn cpu_spectrum(model: &Model, name: &str) -> tpa_core::analyses::spectrum::Spectrum {
    let matrix = MatrixView::whole(model.tensor(name).unwrap());
    spectrum_on(&CpuBackend, &matrix, &SpectrumOptions::default()).unwrap()
}

fn assert_close(ours: &[f64], expected: &[f64], rel: f64) {
    assert_eq!(ours.len(), expected.len());
    let max = expected[0];
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        let scale = b.abs().max(1e-3 * max);
        assert!((a - b).abs() <= rel * scale, "σ[{i}]: {a} vs {b}");
    }
}

/// The Gram route's documented accuracy: 1e-9 relative, plus the error its
/// squaring of the condition number brings, |δσ| ≲ c·eps·σmax²/σ (c = 16).
fn assert_gram_accuracy(gram: &[f64], exact: &[f64]) {
    let max = exact[0];
    for (i, (a, b)) in gram.iter().zip(exact).enumerate() {
        let bound = 1e-9 * b + 16.0 * f64::EPSILON * max * max / b;
        assert!(
            (a - b).abs() <= bound,
            "σ[{i}]: {a} vs {b} (bound {bound:e})"
        );
    }
}

/// 1 down to 1e-4 log-linearly, then exact zeros.
fn decaying(count: usize, zeros: usize) -> Vec<f64> {
    let mut s: Vec<f64> = (0..count)
        .map(|i| 10f64.powf(-4.0 * i as f64 / (count - 1) as f64))
        .collect();
    s.extend(std::iter::repeat_n(0.0, zeros));
    s
}

#[test]
fn tall_and_wide_matrices_recover_their_planted_spectra() {
    let sigma = decaying(90, 30); // rank 90 of 120
    let f = fixture(vec![
        f64_matrix("tall", 300, 120, planted(300, 120, &sigma, 1)),
        f64_matrix("wide", 120, 300, planted(120, 300, &sigma, 2)),
    ]);
    for name in ["tall", "wide"] {
        let s = cpu_spectrum(&f.model, name);
        assert_eq!(s.method, Method::GramF64, "{name}");
        assert_eq!(s.values.len(), 120);
        assert_close(&s.values[..90], &sigma[..90], 1e-9);
        let m = SpectralMetrics::new(&s.values, 1e-6);
        assert_eq!(m.actual_rank, 90, "{name}");
        assert!((m.spectral_norm - 1.0).abs() < 1e-12);
    }
}

#[test]
fn values_in_the_tolerance_band_take_the_svd_route_and_decide_the_rank_exactly() {
    // Just above and just below the tolerance 1e-6 · σmax, both inside ±1%.
    let mut sigma = decaying(60, 0);
    sigma.extend([1.004e-6, 0.996e-6, 0.0, 0.0]);
    let f = fixture(vec![f64_matrix("w", 200, 64, planted(200, 64, &sigma, 3))]);
    let s = cpu_spectrum(&f.model, "w");
    assert_eq!(s.method, Method::SvdF64);
    assert_eq!(SpectralMetrics::new(&s.values, 1e-6).actual_rank, 61);
    // The SVD route is accurate far down the spectrum.
    assert!((s.values[60] - 1.004e-6).abs() < 1e-12, "{}", s.values[60]);
    assert!((s.values[61] - 0.996e-6).abs() < 1e-12, "{}", s.values[61]);
}

#[test]
fn values_outside_the_band_keep_the_gram_route_and_the_right_rank() {
    let mut sigma = decaying(60, 0);
    sigma.extend([1.5e-6, 0.5e-6]);
    let f = fixture(vec![f64_matrix("w", 200, 62, planted(200, 62, &sigma, 4))]);
    let s = cpu_spectrum(&f.model, "w");
    assert_eq!(s.method, Method::GramF64);
    assert_eq!(SpectralMetrics::new(&s.values, 1e-6).actual_rank, 61);
}

#[test]
fn svd_route_matches_gram_route_where_both_are_accurate() {
    let sigma = decaying(50, 10);
    let values = planted(5000, 60, &sigma, 5); // several blocks of the tall orientation
    let f = fixture(vec![
        f64_matrix("w", 5000, 60, values.clone()),
        f64_matrix("wt", 60, 5000, transpose(&values, 5000, 60)),
    ]);
    for name in ["w", "wt"] {
        let matrix = MatrixView::whole(f.model.tensor(name).unwrap());
        let gram = CpuBackend.gram_route(&matrix).unwrap();
        let svd = CpuBackend.svd_route(&matrix).unwrap();
        assert_close(&svd[..50], &sigma[..50], 1e-12);
        assert_gram_accuracy(&gram[..50], &svd[..50]);
        assert!(svd[50..].iter().all(|&s| s < 1e-14), "{:?}", &svd[50..]);
    }
}

/// The ±1% band is safe only if the Gram route's error near the tolerance is
/// far smaller: check it at a size where the two-stage eigensolver runs and
/// errors of the reduction add up.
#[test]
fn gram_route_error_near_the_tolerance_is_far_inside_the_band() {
    let n = 1600;
    let mut sigma = decaying(n - 40, 0);
    sigma.extend((0..40).map(|i| 1e-6 * (0.9 + 0.005 * i as f64)));
    let f = fixture(vec![f64_matrix(
        "w",
        n + 100,
        n,
        planted(n + 100, n, &sigma, 9),
    )]);
    let matrix = MatrixView::whole(f.model.tensor("w").unwrap());
    let gram = CpuBackend.gram_route(&matrix).unwrap();
    let svd = CpuBackend.svd_route(&matrix).unwrap();
    assert_gram_accuracy(&gram, &svd);
    let worst = gram[n - 40..]
        .iter()
        .zip(&svd[n - 40..])
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-3,
        "relative error {worst:e} near 1e-6·σmax; the band is 1e-2"
    );
}

fn transpose(values: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols)
        .flat_map(|j| (0..rows).map(move |i| values[i * cols + j]))
        .collect()
}

#[test]
fn degenerate_shapes() {
    let f = fixture(vec![
        TensorSpec::new(
            "row",
            Dtype::F32,
            &[1, 4],
            Fill::Values(vec![3.0, 0.0, 4.0, 0.0]),
        ),
        TensorSpec::new(
            "col",
            Dtype::F32,
            &[4, 1],
            Fill::Values(vec![0.0, -3.0, 0.0, 4.0]),
        ),
        TensorSpec::new(
            "vector",
            Dtype::F32,
            &[4],
            Fill::Values(vec![1.0, 1.0, 1.0, 1.0]),
        ),
        TensorSpec::new("empty", Dtype::F32, &[0, 5], Fill::Values(vec![])),
        TensorSpec::new("zero", Dtype::F32, &[7, 3], Fill::Values(vec![0.0; 21])),
    ]);
    assert_eq!(cpu_spectrum(&f.model, "row").values, [5.0]);
    assert_eq!(cpu_spectrum(&f.model, "col").values, [5.0]);
    assert_eq!(cpu_spectrum(&f.model, "vector").values, [2.0]);
    assert!(cpu_spectrum(&f.model, "empty").values.is_empty());
    let zero = cpu_spectrum(&f.model, "zero");
    assert_eq!(zero.values, [0.0, 0.0, 0.0]);
    let m = SpectralMetrics::new(&zero.values, 1e-6);
    assert_eq!((m.actual_rank, m.energy_rank_90), (0, 0));
}

/// Signed permutations of integer diagonals: every entry is a small integer,
/// exact in every dtype, and the singular values are the |diagonal|.
#[test]
fn every_stored_dtype() {
    let (rows, cols) = (9, 6);
    for dtype in EVERY_DTYPE {
        let signed = !matches!(
            dtype,
            Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 | Dtype::BOOL
        );
        // Diagonal 4, 3, 2, 2, 1, 0 (bool: 1, 1, 1, 1, 1, 0) on a permutation.
        let diagonal: [f64; 6] = if dtype == Dtype::BOOL {
            [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
        } else {
            [4.0, 3.0, 2.0, 2.0, 1.0, 0.0]
        };
        let mut values = vec![0.0; rows * cols];
        for (k, &d) in diagonal.iter().enumerate() {
            let (i, j) = ((k * 4 + 1) % rows, (k * 5 + 2) % cols);
            values[i * cols + j] = if signed && k % 2 == 1 { -d } else { d };
        }
        let f = fixture(vec![TensorSpec::new(
            "w",
            dtype,
            &[rows, cols],
            Fill::Values(values),
        )]);
        let s = cpu_spectrum(&f.model, "w");
        let mut expected = diagonal.to_vec();
        expected.sort_by(|a, b| b.total_cmp(a));
        assert_close(&s.values, &expected, 1e-14);
        assert_eq!(
            SpectralMetrics::new(&s.values, 1e-6).actual_rank,
            5,
            "{dtype}"
        );
    }
}

#[test]
fn stacked_experts_split_into_one_matrix_each() {
    // Expert e is e · I (3 × 3): σ = (e, e, e).
    let mut values = Vec::new();
    for e in 0..4 {
        for i in 0..3 {
            for j in 0..3 {
                values.push(if i == j { e as f64 } else { 0.0 });
            }
        }
    }
    let f = fixture(vec![TensorSpec::new(
        "model.layers.0.mlp.experts.down_proj",
        Dtype::BF16,
        &[4, 3, 3],
        Fill::Values(values),
    )]);
    let matrices = MatrixView::split(
        f.model
            .tensor("model.layers.0.mlp.experts.down_proj")
            .unwrap(),
    );
    assert_eq!(matrices.len(), 4);
    let engine = Engine::cpu(SpectrumOptions::default());
    for (e, matrix) in matrices.iter().enumerate() {
        assert_eq!(matrix.expert_index(), Some(e as u32));
        assert_eq!(matrix.shape(), (3, 3));
        assert_eq!(engine.spectrum(matrix).unwrap().values, [e as f64; 3]);
    }
}

/// A backend that fails in chosen ways, to prove the engine's fallback.
struct Flaky {
    fail: fn(usize) -> Option<BackendError>,
    calls: std::sync::atomic::AtomicUsize,
}

impl SpectralBackend for Flaky {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn gram_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (self.fail)(call) {
            Some(error) => Err(error),
            None => CpuBackend.gram_route(matrix),
        }
    }
    fn svd_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        CpuBackend.svd_route(matrix)
    }
}

fn engine_with(
    fail: fn(usize) -> Option<BackendError>,
) -> (Engine, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = notices.clone();
    let engine = Engine::cpu(SpectrumOptions::default())
        .with_accelerator(Box::new(Flaky {
            fail,
            calls: Default::default(),
        }))
        .with_notice(move |m| sink.lock().unwrap().push(m.to_owned()));
    (engine, notices)
}

#[test]
fn out_of_memory_falls_back_for_that_matrix_only() {
    let sigma = decaying(20, 0);
    let f = fixture(vec![f64_matrix("w", 40, 20, planted(40, 20, &sigma, 6))]);
    let matrix = MatrixView::whole(f.model.tensor("w").unwrap());
    let (engine, notices) =
        engine_with(|call| (call == 0).then(|| BackendError::OutOfMemory("test".into())));
    let first = engine.spectrum(&matrix).unwrap();
    let second = engine.spectrum(&matrix).unwrap();
    assert_eq!((first.backend, second.backend), ("cpu", "fake"));
    assert_eq!(
        first.values, second.values,
        "results never depend on the backend"
    );
    assert_eq!(
        *notices.lock().unwrap(),
        ["⚠️  GPU OOM, falling back to CPU for matrix (40, 20)"]
    );
}

#[test]
fn a_broken_backend_is_switched_off_for_the_rest_of_the_run() {
    let f = fixture(vec![f64_matrix(
        "w",
        30,
        10,
        planted(30, 10, &decaying(10, 0), 7),
    )]);
    let matrix = MatrixView::whole(f.model.tensor("w").unwrap());
    let (engine, notices) = engine_with(|_| Some(BackendError::Broken("illegal address".into())));
    for _ in 0..3 {
        assert_eq!(engine.spectrum(&matrix).unwrap().backend, "cpu");
    }
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("illegal address") && notices[0].contains("rest of the run"));
}

#[test]
fn a_declined_matrix_is_done_on_the_cpu_and_the_accelerator_stays() {
    let f = fixture(vec![f64_matrix(
        "w",
        30,
        10,
        planted(30, 10, &decaying(10, 0), 8),
    )]);
    let matrix = MatrixView::whole(f.model.tensor("w").unwrap());
    let (engine, notices) =
        engine_with(|call| (call == 0).then(|| BackendError::Declined("no decoder".into())));
    assert_eq!(engine.spectrum(&matrix).unwrap().backend, "cpu");
    assert_eq!(engine.spectrum(&matrix).unwrap().backend, "fake");
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].contains("declined matrix (30, 10): no decoder"),
        "{notices:?}"
    );
}

/// A backend that is correct but slow, to keep the accelerator busy.
struct Slow;

impl SpectralBackend for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn gram_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        std::thread::sleep(std::time::Duration::from_millis(400));
        CpuBackend.gram_route(matrix)
    }
    fn svd_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        CpuBackend.svd_route(matrix)
    }
}

#[test]
fn while_the_accelerator_is_busy_small_matrices_go_to_the_cpu_and_big_ones_wait() {
    let big = tpa_core::analyses::spectrum::ACCELERATOR_FROM;
    let f = fixture(vec![
        f64_matrix("small", 20, 10, planted(20, 10, &decaying(10, 0), 10)),
        TensorSpec::new(
            "big",
            Dtype::F32,
            &[big, big],
            Fill::Normal { seed: 1, std: 1.0 },
        ),
    ]);
    let small = MatrixView::whole(f.model.tensor("small").unwrap());
    let large = MatrixView::whole(f.model.tensor("big").unwrap());
    let engine = Engine::cpu(SpectrumOptions::default()).with_accelerator(Box::new(Slow));
    std::thread::scope(|s| {
        let busy = s.spawn(|| engine.spectrum(&small).unwrap().backend);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let waiting = s.spawn(|| engine.spectrum(&large).unwrap().backend);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            engine.spectrum(&small).unwrap().backend,
            "cpu",
            "the accelerator is busy"
        );
        assert_eq!(busy.join().unwrap(), "slow");
        assert_eq!(
            waiting.join().unwrap(),
            "slow",
            "big matrices wait for the accelerator"
        );
    });
}
