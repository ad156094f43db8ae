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
    CudaBackend::new(0, version).map_err(|e| format!("{e}{hint}"))
}
