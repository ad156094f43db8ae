//! The CUDA backend: f64 Gram with cuBLAS, eigenvalues with cuSOLVER, loaded
//! at run time so that building tpa needs no CUDA and a machine without it
//! only gets a one-line notice.
//!
//! Facts this rests on (checked with cudarc 0.19.10 on a machine without a
//! GPU, see `../shared/notes/gpu-cudarc.md` of the team): cudarc must be pinned
//! and built with `dynamic-loading` and an explicit CUDA version (13.0, the
//! H200 machines' driver); `CudaContext::new` and formatting a driver error
//! panic when libcuda is absent, so every library is checked for first and
//! the whole probe also runs under `catch_unwind`.

mod backend;
pub mod libraries;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) use backend::driver;
pub use backend::{CudaBackend, MEMORY_LIMIT_VAR};

/// What the probe found out about the GPU.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub total_memory: u64,
    pub free_memory: u64,
    pub compute_capability: (i32, i32),
    /// As cuDriverGetVersion reports it: 13000 for CUDA 13.0.
    pub driver_version: i32,
}

/// Why there is no usable GPU: one line for users, details for `--verbose`.
#[derive(Debug, Clone)]
pub struct ProbeFailure {
    pub reason: String,
    pub details: Vec<String>,
}

/// The CUDA version tpa's bindings are built for (cudarc feature `cuda-13000`).
pub const REQUIRED_DRIVER: i32 = 13000;

/// Looks for a usable GPU and sets up the backend on device 0.
pub fn probe() -> Result<CudaBackend, ProbeFailure> {
    let preload = libraries::preload();
    let mut details: Vec<String> = Vec::new();
    if let Some(dir) = &preload.dir {
        details.push(format!("{}={}", libraries::LIB_DIR_VAR, dir.display()));
        details.extend(
            preload
                .loaded
                .iter()
                .map(|p| format!("preloaded {}", p.display())),
        );
        details.extend(preload.problems.iter().cloned());
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| probe_inner(&mut details)));
    let failure = |reason: String, details: Vec<String>| Err(ProbeFailure { reason, details });
    match outcome {
        Ok(Ok(backend)) => Ok(backend),
        Ok(Err(reason)) => failure(reason, details),
        Err(_) => failure(
            "the CUDA libraries failed while starting (see --verbose)".into(),
            details,
        ),
    }
}

fn probe_inner(details: &mut Vec<String>) -> Result<CudaBackend, String> {
    let hint = format!(
        "; set {} to a folder holding the CUDA 13 libraries (e.g. a PyTorch install's site-packages/nvidia/cu13/lib)",
        libraries::LIB_DIR_VAR
    );
    // SAFETY: these only try to open the libraries by name.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(
            "no CUDA driver library (libcuda.so.1): no NVIDIA driver on this machine".into(),
        );
    }
    let mut version = 0;
    // SAFETY: libcuda is present; the call writes one int.
    let status = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    details.push(format!("cuDriverGetVersion: {status:?}, {version}"));
    if version < REQUIRED_DRIVER {
        return Err(format!(
            "the NVIDIA driver supports CUDA {}.{}, tpa's GPU backend needs {}.{}",
            version / 1000,
            version % 1000 / 10,
            REQUIRED_DRIVER / 1000,
            REQUIRED_DRIVER % 1000 / 10
        ));
    }
    cudarc::driver::result::init().map_err(|e| format!("cuInit failed: {:?}", e.0))?;
    let count = cudarc::driver::result::device::get_count()
        .map_err(|e| format!("no CUDA device ({:?})", e.0))?;
    if count < 1 {
        return Err("the NVIDIA driver sees no GPU".into());
    }
    // SAFETY: as above, opening by name only.
    let present = unsafe {
        [
            (
                "cuBLAS (libcublas.so.13)",
                cudarc::cublas::sys::is_culib_present(),
            ),
            (
                "cuSOLVER (libcusolver.so.12)",
                cudarc::cusolver::sys::is_culib_present(),
            ),
            (
                "NVRTC (libnvrtc.so.13)",
                cudarc::nvrtc::sys::is_culib_present(),
            ),
        ]
    };
    for (name, found) in present {
        details.push(format!(
            "{name}: {}",
            if found { "found" } else { "not found" }
        ));
        if !found {
            return Err(format!("{name} not found{hint}"));
        }
    }
    let backend = CudaBackend::new(0, version).map_err(|e| format!("{e}{hint}"))?;
    self_check(&backend)?;
    Ok(backend)
}

/// Runs small matrices of several dtypes and shapes through both routes on
/// the GPU and on the CPU, and refuses the GPU unless they agree: a wrong
/// layout, decoder or library must never give different numbers silently.
fn self_check(backend: &CudaBackend) -> Result<(), String> {
    use crate::analyses::spectrum::{CpuBackend, SpectralBackend};
    use crate::model::Model;
    use crate::tensors::MatrixView;

    let dir = tempfile::tempdir().map_err(|e| format!("self-check: {e}"))?;
    let path = dir.path().join("self-check.safetensors");
    std::fs::write(&path, self_check_file()).map_err(|e| format!("self-check: {e}"))?;
    let model = Model::open(&path).map_err(|e| format!("self-check: {e}"))?;
    for tensor in model.tensors() {
        let matrix = MatrixView::whole(tensor);
        for route in ["gram", "svd"] {
            let run = |b: &dyn SpectralBackend| match route {
                "gram" => b.gram_route(&matrix),
                _ => b.svd_route(&matrix),
            };
            let cpu = run(&CpuBackend).map_err(|e| format!("self-check on the CPU: {e}"))?;
            let gpu = run(backend).map_err(|e| format!("self-check on the GPU failed: {e}"))?;
            if !spectra_agree(&cpu, &gpu) {
                return Err(format!(
                    "self-check: GPU and CPU disagree on {} ({route} route); not using the GPU",
                    tensor.name()
                ));
            }
        }
    }
    Ok(())
}

/// Whether two computations of one spectrum agree as well as the Gram route
/// allows: 1e-9 relative for σ ≥ 1e-3·σmax, and 1e-6·σmax absolute below,
/// where the Gram route's σ of (numerically) zero are ~1e-8·σmax of noise.
/// A layout or decoding mistake differs by O(σmax).
fn spectra_agree(a: &[f64], b: &[f64]) -> bool {
    let max = a.first().copied().unwrap_or(0.0);
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let d = (x - y).abs();
            d <= 1e-6 * max && (*x < 1e-3 * max || d <= 1e-9 * x)
        })
}

/// A safetensors file with small integer-valued matrices (exact in every
/// dtype): tall bf16, wide f32, f16, int8 (the GPU's table decoder), f64.
fn self_check_file() -> Vec<u8> {
    let specs: [(&str, &str, usize, usize, usize); 5] = [
        ("tall_bf16", "BF16", 70, 40, 2),
        ("wide_f32", "F32", 40, 70, 4),
        ("f16", "F16", 24, 30, 2),
        ("int8", "I8", 30, 20, 1),
        ("f64", "F64", 33, 33, 8),
    ];
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, rows, cols, size) in specs {
        let start = data.len();
        for i in 0..rows * cols {
            let v = ((i * 7919 + i / 13) % 17) as i32 - 8; // −8..8, exact everywhere
            match dtype {
                "BF16" => data.extend(((v as f32).to_bits() >> 16).to_le_bytes()[..2].iter()),
                "F32" => data.extend((v as f32).to_le_bytes()),
                "F16" => data.extend(half::f16::from_f32(v as f32).to_le_bytes()),
                "I8" => data.push(v as i8 as u8),
                _ => data.extend((v as f64).to_le_bytes()),
            }
        }
        debug_assert_eq!(data.len() - start, rows * cols * size);
        header.insert(
            name.to_owned(),
            serde_json::json!({"dtype": dtype, "shape": [rows, cols], "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(data);
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyses::spectrum::{CpuBackend, SpectralBackend};
    use crate::model::Model;
    use crate::tensors::MatrixView;

    /// The self-check's matrices are valid, hold the intended values, and
    /// the CPU's two routes agree on them (the GPU is compared against these).
    #[test]
    fn self_check_matrices_are_valid_and_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.safetensors");
        std::fs::write(&path, self_check_file()).unwrap();
        let model = Model::open(&path).unwrap();
        assert_eq!(model.len(), 5);
        for tensor in model.tensors() {
            let mut first = [0.0; 3];
            tensor.decode_into(0, &mut first).unwrap();
            assert_eq!(first, [-8.0, 6.0, 3.0], "{}", tensor.name());
            let matrix = MatrixView::whole(tensor);
            let (gram, svd) = (
                CpuBackend.gram_route(&matrix).unwrap(),
                CpuBackend.svd_route(&matrix).unwrap(),
            );
            assert!(
                spectra_agree(&svd, &gram),
                "{}: {svd:?} vs {gram:?}",
                tensor.name()
            );
            let mut wrong = gram.clone();
            wrong[0] *= 1.001;
            assert!(
                !spectra_agree(&svd, &wrong),
                "a 0.1% error in σmax must be caught"
            );
        }
    }
}
