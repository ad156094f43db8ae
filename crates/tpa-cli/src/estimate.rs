//! How fast this machine analyses matrices, measured, to turn analysis
//! costs into planned wall times.

use std::time::Instant;

use anyhow::{Context, Result};
use tpa_core::analyses::runner::Limits;
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::analyses::stats::StatsOptions;
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;

use crate::matrices::{compute_records, work_units};

/// The calibration matrices' shape: as wide as a 7B model's projections, so
/// that the Gram product dominates as it does in real models.
const ROWS: usize = 1024;
const COLS: usize = 4096;

/// Cost units ([`tpa_core::analyses::shard::matrix_cost`]) per second that
/// this machine's CPUs reach with `jobs` matrices at once, measured by
/// analysing `jobs` random `ROWS × COLS` float32 matrices (about a second).
pub fn units_per_second(jobs: usize) -> Result<f64> {
    let jobs = jobs.max(1);
    let path = std::env::temp_dir().join(format!(
        "tpa-calibration-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, calibration_file(jobs))
        .with_context(|| format!("writing the calibration matrices to {}", path.display()))?;
    let measured = measure(&path, jobs);
    let _ = std::fs::remove_file(&path);
    measured
}

fn measure(path: &std::path::Path, jobs: usize) -> Result<f64> {
    let model = Model::open(path)?;
    let matrices: Vec<MatrixView<'_>> = model.tensors().flat_map(MatrixView::split).collect();
    let units: u64 = matrices.iter().map(work_units).sum();
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let limits = Limits {
        jobs,
        max_memory: Limits::detect().max_memory,
    };
    let started = Instant::now();
    compute_records(
        &matrices,
        &engine,
        limits,
        &StatsOptions::default(),
        false,
        true,
        |_| Ok(()),
    )?;
    Ok(units as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// A safetensors file of `count` float32 matrices of uniform noise.
fn calibration_file(count: usize) -> Vec<u8> {
    let bytes = ROWS * COLS * 4;
    let entries: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "\"m{i}\":{{\"dtype\":\"F32\",\"shape\":[{ROWS},{COLS}],\"data_offsets\":[{},{}]}}",
                i * bytes,
                (i + 1) * bytes
            )
        })
        .collect();
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut file = Vec::with_capacity(8 + header.len() + count * bytes);
    file.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.extend_from_slice(&header);
    // xorshift64: any full-rank noise will do.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..count * ROWS * COLS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let value = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        file.extend_from_slice(&value.to_le_bytes());
    }
    file
}
