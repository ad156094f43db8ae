//! k-means on the GPU against the CPU, with timings: what
//! `scripts/gpu-check.sh` runs on a machine with a GPU.
//!
//! Data: 30 522 × 384 (MiniLM's shape), 40 Gaussian blobs of different sizes
//! under noise. For k = 10, 40 and 92 (n_init 10) both paths fit; the check
//! is that the GPU's best inertia is within 0.5% of the CPU's and that every
//! GPU label is its row's nearest centre by the CPU's distances (to 1e-4
//! relative). Then one GPU fit at 151 936 × 2560 (a Qwen-sized vocabulary)
//! for the timing. Exit 0 when everything agrees, 1 when not, 2 without a GPU.

use std::process::ExitCode;
use std::time::Instant;

use tpa_core::analyses::embedding::kmeans::{
    CpuDistances, Data, Distances, KMeansAccelerator, KMeansOptions, kmeans, kmeans_on,
};
use tpa_core::analyses::spectrum::cuda;
use tpa_testkit::SplitMix64;

fn blobs(n: usize, d: usize, centres: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let means: Vec<f64> = (0..centres * d).map(|_| rng.normal() * 1.5).collect();
    (0..n)
        .flat_map(|i| {
            // Uneven sizes: cluster c gets rows in proportion to c + 1.
            let c = ((i as f64 / n as f64).sqrt() * centres as f64) as usize % centres;
            (0..d)
                .map(|j| (means[c * d + j] + rng.normal()) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn main() -> ExitCode {
    let backend = match cuda::probe() {
        Ok(backend) => backend,
        Err(failure) => {
            eprintln!("no usable GPU: {}", failure.reason);
            return ExitCode::from(2);
        }
    };
    println!("GPU: {}", backend.describe());
    let mut ok = true;
    let (n, d) = (30_522, 384);
    let x = blobs(n, d, 40, 1);
    let data = Data::new(&x, d);
    let device = match backend.prepare(&data) {
        Ok(device) => device,
        Err(e) => {
            println!("prepare failed: {e}");
            return ExitCode::from(1);
        }
    };
    println!();
    println!(
        "| {n} × {d}, n_init 10 | CPU s | GPU s | speed-up | CPU inertia | GPU inertia | labels nearest |"
    );
    println!("|---|---|---|---|---|---|---|");
    for k in [10, 40, 92] {
        let options = KMeansOptions::new(k, 42);
        let start = Instant::now();
        let cpu = kmeans(&data, &options);
        let cpu_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let gpu = match kmeans_on(&data, &options, device.as_ref()) {
            Ok(fit) => fit,
            Err(e) => {
                println!("| k = {k} | {cpu_s:.2} | failed: {e} | | | | |");
                ok = false;
                continue;
            }
        };
        let gpu_s = start.elapsed().as_secs_f64();
        let distances = CpuDistances(&data)
            .matrix(&gpu.centers, k)
            .unwrap_or_default();
        let nearest = (0..n)
            .filter(|&i| {
                let row = &distances[i * k..(i + 1) * k];
                let best = row.iter().copied().fold(f32::INFINITY, f32::min);
                row[gpu.labels[i] as usize]
                    <= best + 1e-4 * (best + data.row(i).iter().map(|v| v * v).sum::<f32>())
            })
            .count();
        let close = (gpu.inertia - cpu.inertia).abs() <= 5e-3 * cpu.inertia;
        ok &= close && nearest == n;
        println!(
            "| k = {k} | {cpu_s:.2} | {gpu_s:.2} | {:.1}x | {:.1} | {:.1}{} | {nearest}/{n} |",
            cpu_s / gpu_s,
            cpu.inertia,
            gpu.inertia,
            if close { "" } else { " (differs)" }
        );
    }
    drop(device);

    let (n, d, k) = (151_936, 2560, 100);
    let x = blobs(n, d, 200, 2);
    let data = Data::new(&x, d);
    let start = Instant::now();
    match backend.prepare(&data) {
        Ok(device) => {
            let upload_s = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let options = KMeansOptions {
                n_init: 1,
                ..KMeansOptions::new(k, 42)
            };
            match kmeans_on(&data, &options, device.as_ref()) {
                Ok(fit) => println!(
                    "\n{n} × {d}, k = {k}, n_init 1 on the GPU: {:.2} s ({} iterations; upload and self-check {upload_s:.2} s)",
                    start.elapsed().as_secs_f64(),
                    fit.iterations
                ),
                Err(e) => {
                    println!("\n{n} × {d}: GPU fit failed: {e}");
                    ok = false;
                }
            }
        }
        Err(e) => {
            println!("\n{n} × {d}: prepare failed: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
