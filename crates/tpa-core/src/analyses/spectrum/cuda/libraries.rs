//! Finding the CUDA libraries at run time.
//!
//! cudarc opens libraries by bare name (`libcublas.so.13`), which only finds
//! what LD_LIBRARY_PATH (read at process start), RUNPATH and ld.so.cache
//! point at. PyTorch's wheels keep them in `site-packages/nvidia/cu13/lib`;
//! `TPA_CUDA_LIB_DIR` names such a folder, and everything needed is opened
//! from there by absolute path with RTLD_GLOBAL first, so that cudarc's later
//! open by name gets the copy already loaded.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that points at a folder of CUDA libraries.
pub const LIB_DIR_VAR: &str = "TPA_CUDA_LIB_DIR";

/// Libraries to preload, in dependency order (cuSOLVER needs cuBLAS,
/// cuBLASLt, cuSPARSE and nvJitLink; cuBLAS needs cuBLASLt).
const PRELOAD: [&str; 6] = [
    "nvJitLink",
    "cublasLt",
    "cublas",
    "cusparse",
    "cusolver",
    "nvrtc",
];

/// What preloading did, for `--verbose`.
#[derive(Debug, Clone, Default)]
pub struct Preload {
    pub dir: Option<PathBuf>,
    pub loaded: Vec<PathBuf>,
    pub problems: Vec<String>,
}

/// Preloads the libraries from `TPA_CUDA_LIB_DIR` once per process.
pub fn preload() -> &'static Preload {
    static DONE: OnceLock<Preload> = OnceLock::new();
    DONE.get_or_init(|| match std::env::var_os(LIB_DIR_VAR) {
        Some(dir) if !dir.is_empty() => preload_from(Path::new(&dir)),
        _ => Preload::default(),
    })
}

fn preload_from(dir: &Path) -> Preload {
    let mut report = Preload {
        dir: Some(dir.to_owned()),
        ..Preload::default()
    };
    let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(e) => {
            report
                .problems
                .push(format!("{LIB_DIR_VAR}={}: {e}", dir.display()));
            return report;
        }
    };
    for name in PRELOAD {
        let prefix = format!("lib{name}.so");
        let Some(path) = entries
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(&prefix))
            })
            .min()
        else {
            continue;
        };
        // SAFETY: loading a shared library runs its initialisers; these are
        // NVIDIA's own libraries from the folder the user named for them.
        let opened = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
            )
        };
        match opened {
            Ok(library) => {
                // Kept open for the life of the process: cudarc uses it.
                std::mem::forget(library);
                report.loaded.push(path.clone());
            }
            Err(e) => report.problems.push(format!("{}: {e}", path.display())),
        }
    }
    report
}
