//! The GPU against the CPU on fresh random matrices, with timings: what
//! `scripts/gpu-check.sh` runs on a machine with a GPU.
//!
//! Checks, for each matrix: the numerical rank is the same on both backends,
//! and every σ ≥ 1e-3·σmax agrees to 1e-9 relative; the matrix planted with
//! singular values inside the ±1% band goes to the SVD route on both. Then
//! the out-of-memory fallback, by capping the GPU's memory below what a
//! 4096² matrix needs. Exit code 0 when everything agrees, 1 when something
//! does not, 2 when there is no usable GPU.

use std::process::ExitCode;
use std::time::Instant;

use faer::Mat;
use tpa_core::analyses::spectrum::cuda::{self, CudaBackend};
use tpa_core::analyses::spectrum::metrics::SpectralMetrics;
use tpa_core::analyses::spectrum::{
    CpuBackend, Engine, SpectralBackend, SpectrumOptions, spectrum_on,
};
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;
use tpa_testkit::{Dtype, Fill, SplitMix64, TensorSpec, write_safetensors};

struct Row {
    name: String,
    route: &'static str,
    cpu_seconds: f64,
    gpu_seconds: f64,
    cpu_rank: usize,
    gpu_rank: usize,
    worst: f64,
}

fn main() -> ExitCode {
    let backend = match cuda::probe() {
        Ok(backend) => backend,
        Err(failure) => {
            eprintln!("no usable GPU: {}", failure.reason);
            failure.details.iter().for_each(|d| eprintln!("  {d}"));
            return ExitCode::from(2);
        }
    };
    let info = backend.info().clone();
    println!(
        "GPU: {}, {:.1} GiB, compute {}.{}, driver {}",
        info.name,
        info.total_memory as f64 / (1u64 << 30) as f64,
        info.compute_capability.0,
        info.compute_capability.1,
        info.driver_version
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("check.safetensors");
    let gaussian = |name: &str, rows, cols, seed| {
        TensorSpec::new(
            name,
            Dtype::BF16,
            &[rows, cols],
            Fill::Normal { seed, std: 0.02 },
        )
    };
    let tensors = vec![
        gaussian("warmup", 256, 256, 1),
        gaussian("square_4096", 4096, 4096, 2),
        gaussian("mlp_11008x4096", 11008, 4096, 3),
        gaussian("wide_4096x11008", 4096, 11008, 4),
        gaussian("vocab_32000x4096", 32000, 4096, 5),
        planted_near_tolerance(2048, 1536, 6),
    ];
    write_safetensors(&path, &tensors).expect("write the matrices");
    let model = Model::open(&path).expect("open them");
    let options = SpectrumOptions::default();

    let warmup = MatrixView::whole(model.tensor("warmup").expect("warmup"));
    let _ = backend.gram_route(&warmup); // first cuBLAS/cuSOLVER calls load kernels

    let mut rows = Vec::new();
    let mut ok = true;
    for t in &tensors[1..] {
        let matrix = MatrixView::whole(model.tensor(&t.name).expect("tensor"));
        let routes: &[&'static str] = if t.name.starts_with("planted") || t.name == "square_4096" {
            &["gram", "svd", "engine"]
        } else {
            &["gram"]
        };
        for &route in routes {
            let run = |b: &dyn SpectralBackend| -> (f64, Vec<f64>, &'static str) {
                let start = Instant::now();
                let (values, method) = match route {
                    "gram" => (b.gram_route(&matrix).expect("gram route"), "gram"),
                    "svd" => (b.svd_route(&matrix).expect("svd route"), "svd"),
                    _ => {
                        let s = spectrum_on(b, &matrix, &options).expect("spectrum");
                        (s.values, s.method.as_str())
                    }
                };
                (start.elapsed().as_secs_f64(), values, method)
            };
            let (cpu_seconds, cpu, cpu_method) = run(&CpuBackend);
            let (gpu_seconds, gpu, gpu_method) = run(&backend);
            let (cpu_rank, gpu_rank) =
                (rank(&cpu, options.rank_rtol), rank(&gpu, options.rank_rtol));
            let worst = worst_relative(&cpu, &gpu);
            let agrees = cpu_rank == gpu_rank && worst <= 1e-9 && cpu_method == gpu_method;
            if !agrees {
                ok = false;
                println!(
                    "MISMATCH {} {route}: ranks {cpu_rank}/{gpu_rank}, worst {worst:e}, methods {cpu_method}/{gpu_method}",
                    t.name
                );
            }
            rows.push(Row {
                name: t.name.clone(),
                route: if route == "engine" { gpu_method } else { route },
                cpu_seconds,
                gpu_seconds,
                cpu_rank,
                gpu_rank,
                worst,
            });
        }
    }

    // Out of memory: cap the GPU at 64 MiB, far below a 4096² Gram matrix.
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = notices.clone();
    let capped: CudaBackend = backend.with_memory_limit(Some(64 << 20));
    let engine = Engine::cpu(options)
        .with_accelerator(Box::new(capped))
        .with_notice(move |m| sink.lock().expect("notices").push(m.to_owned()));
    let square = MatrixView::whole(model.tensor("square_4096").expect("tensor"));
    let fallback = engine.spectrum(&square).expect("fallback spectrum");
    let notices = notices.lock().expect("notices").clone();
    let oom_ok = fallback.backend == "cpu"
        && notices
            .iter()
            .any(|n| n.contains("GPU OOM, falling back to CPU for matrix (4096, 4096)"));
    println!(
        "OOM fallback: {} ({:?})",
        if oom_ok { "ok" } else { "FAILED" },
        notices
    );
    ok &= oom_ok;

    println!();
    println!(
        "| matrix | route | CPU s (1 thread) | GPU s | speed-up | rank CPU | rank GPU | worst rel. diff (σ ≥ 1e-3·σmax) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.0}× | {} | {} | {:.1e} |",
            r.name,
            r.route,
            r.cpu_seconds,
            r.gpu_seconds,
            r.cpu_seconds / r.gpu_seconds,
            r.cpu_rank,
            r.gpu_rank,
            r.worst
        );
    }
    println!("{}", if ok { "ALL AGREE" } else { "SOME DISAGREE" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn rank(values: &[f64], rtol: f64) -> usize {
    SpectralMetrics::new(values, rtol).actual_rank
}

/// Largest relative difference over σ ≥ 1e-3·σmax.
fn worst_relative(a: &[f64], b: &[f64]) -> f64 {
    let max = a.first().copied().unwrap_or(0.0);
    a.iter()
        .zip(b)
        .filter(|(x, _)| **x >= 1e-3 * max)
        .map(|(x, y)| ((x - y) / x).abs())
        .fold(
            if a.len() == b.len() {
                0.0
            } else {
                f64::INFINITY
            },
            f64::max,
        )
}

/// rows × cols, float64, σ from 1 down to 1e-4 and then a cluster around
/// the tolerance 1e-6·σmax, two of them inside the ±1% band.
fn planted_near_tolerance(rows: usize, cols: usize, seed: u64) -> TensorSpec {
    let k = cols;
    let mut sigma: Vec<f64> = (0..k - 8)
        .map(|i| 10f64.powf(-4.0 * i as f64 / (k - 9) as f64))
        .collect();
    sigma.extend([1.5e-6, 1.2e-6, 1.004e-6, 0.996e-6, 0.8e-6, 0.5e-6, 0.0, 0.0]);
    let mut rng = SplitMix64::new(seed);
    let u = Mat::<f64>::from_fn(rows, k, |_, _| rng.normal())
        .qr()
        .compute_thin_Q();
    let v = Mat::<f64>::from_fn(cols, k, |_, _| rng.normal())
        .qr()
        .compute_thin_Q();
    let us = Mat::<f64>::from_fn(rows, k, |i, j| u[(i, j)] * sigma[j]);
    let w = &us * v.transpose();
    let values = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| w[(i, j)])
        .collect();
    TensorSpec::new(
        format!("planted_{rows}x{cols}"),
        Dtype::F64,
        &[rows, cols],
        Fill::Values(values),
    )
}
