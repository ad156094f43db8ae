//! Spectra on the GPU, same routes and accuracy as the CPU backend.

use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::cublas::sys as blas;
use cudarc::cusolver::safe::DnHandle;
use cudarc::cusolver::sys as solver;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DriverError,
    LaunchConfig, PushKernelArg,
};
use safetensors::Dtype;

use super::DeviceInfo;
use crate::analyses::runner::parse_size;
use crate::analyses::spectrum::{BackendError, SpectralBackend};
use crate::tensors::{DType, MatrixView, decode};

/// f64 elements per decoded block on the device (256 MiB): large products
/// keep cuBLAS busy, and the block is small next to a 139 GiB device.
const DEVICE_BLOCK_ELEMENTS: usize = 32 << 20;

/// Spare device memory kept free beyond what a matrix is computed to need.
const HEADROOM: u64 = 256 << 20;

/// Spectra on one CUDA device. Fields drop in order: the library handles
/// before the stream and the context they live in.
pub struct CudaBackend {
    blas: CudaBlas,
    solver: DnHandle,
    widen: CudaFunction,
    stream: Arc<CudaStream>,
    context: Arc<CudaContext>,
    info: DeviceInfo,
    /// Most device memory one matrix may use (`TPA_GPU_MEMORY`), to share a
    /// GPU with other jobs, and to try the out-of-memory fallback.
    limit: Option<u64>,
}

/// The environment variable that caps tpa's device memory, e.g. `20G`.
pub const MEMORY_LIMIT_VAR: &str = "TPA_GPU_MEMORY";

impl CudaBackend {
    /// Sets up device `ordinal`: context, stream, cuBLAS and cuSOLVER handles,
    /// and the widening kernel compiled with NVRTC.
    pub(super) fn new(ordinal: usize, driver_version: i32) -> Result<CudaBackend, String> {
        let context = CudaContext::new(ordinal)
            .map_err(|e| format!("cannot create a CUDA context: {:?}", e.0))?;
        let name = context.name().map_err(|e| format!("{:?}", e.0))?;
        let (free, total) = context.mem_get_info().map_err(|e| format!("{:?}", e.0))?;
        let compute_capability = context
            .compute_capability()
            .map_err(|e| format!("{:?}", e.0))?;
        let stream = context.default_stream();
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| format!("cuBLAS did not start: {:?}", e.0))?;
        let solver = DnHandle::new(stream.clone())
            .map_err(|e| format!("cuSOLVER did not start: {:?}", e.0))?;
        let ptx = cudarc::nvrtc::compile_ptx(include_str!("widen.cu"))
            .map_err(|e| format!("NVRTC could not compile the widening kernel: {e:?}"))?;
        let module = context
            .load_module(ptx)
            .map_err(|e| format!("cannot load the kernel: {:?}", e.0))?;
        let widen = module
            .load_function("widen")
            .map_err(|e| format!("kernel not found: {:?}", e.0))?;
        Ok(CudaBackend {
            blas,
            solver,
            widen,
            stream,
            context,
            info: DeviceInfo {
                name,
                total_memory: total as u64,
                free_memory: free as u64,
                compute_capability,
                driver_version,
            },
            limit: std::env::var(MEMORY_LIMIT_VAR)
                .ok()
                .and_then(|v| parse_size(&v).ok()),
        })
    }

    /// Caps the device memory one matrix may use (as `TPA_GPU_MEMORY` does).
    pub fn with_memory_limit(mut self, bytes: Option<u64>) -> CudaBackend {
        self.limit = bytes;
        self
    }

    /// The device this backend runs on.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Fails early, as an out-of-memory the engine recovers from, when the
    /// device does not have `bytes` free.
    pub(crate) fn reserve(&self, bytes: u64, what: &str) -> Result<(), BackendError> {
        let (free, _) = self.context.mem_get_info().map_err(driver)?;
        let free = self
            .limit
            .map_or(free as u64, |limit| limit.min(free as u64));
        if bytes + HEADROOM > free {
            return Err(BackendError::OutOfMemory(format!(
                "{what} needs {} MiB, {} MiB free",
                bytes >> 20,
                free >> 20
            )));
        }
        Ok(())
    }

    /// The stream every call of this backend runs on.
    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Makes the context current on the calling thread (cuBLAS needs it).
    pub(crate) fn bind(&self) -> Result<(), BackendError> {
        self.context.bind_to_thread().map_err(driver)
    }

    /// Compiles `source` with NVRTC and loads the kernels `names` from it.
    pub(crate) fn kernels(
        &self,
        source: &str,
        names: &[&str],
    ) -> Result<Vec<CudaFunction>, BackendError> {
        let ptx = cudarc::nvrtc::compile_ptx(source)
            .map_err(|e| BackendError::Broken(format!("NVRTC could not compile: {e:?}")))?;
        let module = self.context.load_module(ptx).map_err(driver)?;
        names
            .iter()
            .map(|name| module.load_function(name).map_err(driver))
            .collect()
    }

    /// C = Aᵀ·B in f32, column-major: A is k × m (ld k), B is k × n (ld k),
    /// C is m × n (ld m). Row-major m × k and n × k matrices are exactly
    /// such A and B, so C holds every row-of-A · row-of-B product.
    pub(crate) fn sgemm_tn(
        &self,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        (m, n, k): (usize, usize, usize),
        c: &mut CudaSlice<f32>,
    ) -> Result<(), BackendError> {
        let (one, zero) = (1.0f32, 0.0f32);
        let (m32, n32, k32) = (int(m)?, int(n)?, int(k)?);
        let (a_ptr, _a) = a.device_ptr(&self.stream);
        let (b_ptr, _b) = b.device_ptr(&self.stream);
        let (c_ptr, _c) = c.device_ptr_mut(&self.stream);
        // SAFETY: A holds k·m, B k·n and C m·n f32 on this stream's device
        // (callers allocate them so); the handle is bound to the same stream.
        let status = unsafe {
            blas::cublasSgemm_v2(
                *self.blas.handle(),
                blas::cublasOperation_t::CUBLAS_OP_T,
                blas::cublasOperation_t::CUBLAS_OP_N,
                m32,
                n32,
                k32,
                &one,
                a_ptr as *const f32,
                k32,
                b_ptr as *const f32,
                k32,
                &zero,
                c_ptr as *mut f32,
                m32,
            )
        };
        cublas(status)
    }

    /// Widens the window rows × cols at (row0, col0) of `input` (a stored
    /// matrix with `ld` elements per row) into `out` as f64, row-major or,
    /// with `transpose`, column-major.
    #[allow(clippy::too_many_arguments)]
    fn widen(
        &self,
        input: &CudaSlice<u8>,
        ld: usize,
        (row0, col0): (usize, usize),
        (rows, cols): (usize, usize),
        kind: &DeviceKind,
        transpose: bool,
        out: &mut CudaSlice<f64>,
    ) -> Result<(), BackendError> {
        let (ld, row0, col0, rows, cols) = (
            ld as u64,
            row0 as u64,
            col0 as u64,
            rows as u64,
            cols as u64,
        );
        let (code, transpose) = (kind.code, i32::from(transpose));
        let blocks = (rows * cols).div_ceil(256).min(65_535 * 32) as u32;
        let config = LaunchConfig {
            grid_dim: (blocks.max(1), 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(&self.widen);
        launch
            .arg(input)
            .arg(&ld)
            .arg(&row0)
            .arg(&col0)
            .arg(&rows)
            .arg(&cols)
            .arg(&code)
            .arg(&kind.table)
            .arg(&transpose)
            .arg(out);
        // SAFETY: the kernel reads rows·cols elements of `input` inside the
        // uploaded matrix and writes rows·cols f64 to `out`, which callers
        // size for that; the argument list matches widen.cu's signature.
        unsafe { launch.launch(config) }.map_err(driver)?;
        Ok(())
    }

    /// C += op(A) op(A)ᵀ on the lower triangle of the n × n matrix C, with
    /// op(A) = A (n × k, ld n) or Aᵀ (A k × n, ld k).
    fn syrk(
        &self,
        a: &CudaSlice<f64>,
        transpose: bool,
        n: usize,
        k: usize,
        c: &mut CudaSlice<f64>,
    ) -> Result<(), BackendError> {
        let (op, lda) = if transpose {
            (blas::cublasOperation_t::CUBLAS_OP_T, k)
        } else {
            (blas::cublasOperation_t::CUBLAS_OP_N, n)
        };
        let (one, n32, k32, lda32) = (1.0f64, int(n)?, int(k)?, int(lda)?);
        let (a_ptr, _a) = a.device_ptr(&self.stream);
        let (c_ptr, _c) = c.device_ptr_mut(&self.stream);
        // SAFETY: A holds k·n f64 and C n·n f64 on this stream's device; the
        // handle is bound to the same stream.
        let status = unsafe {
            blas::cublasDsyrk_v2(
                *self.blas.handle(),
                blas::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                op,
                n32,
                k32,
                &one,
                a_ptr as *const f64,
                lda32,
                &one,
                c_ptr as *mut f64,
                n32,
            )
        };
        cublas(status)
    }

    /// Eigenvalues of the symmetric n × n matrix whose lower triangle `g` holds.
    fn eigenvalues(&self, g: &mut CudaSlice<f64>, n: usize) -> Result<Vec<f64>, BackendError> {
        let n32 = int(n)?;
        let mut w = self.stream.alloc_zeros::<f64>(n).map_err(driver)?;
        let mut info = self.stream.alloc_zeros::<i32>(1).map_err(driver)?;
        let jobz = solver::cusolverEigMode_t::CUSOLVER_EIG_MODE_NOVECTOR;
        let uplo = solver::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER;
        let mut lwork = 0;
        {
            let (g_ptr, _g) = g.device_ptr(&self.stream);
            let (w_ptr, _w) = w.device_ptr(&self.stream);
            // SAFETY: sizes as allocated above; the handle uses our stream.
            let status = unsafe {
                solver::cusolverDnDsyevd_bufferSize(
                    self.solver.cu(),
                    jobz,
                    uplo,
                    n32,
                    g_ptr as *const f64,
                    n32,
                    w_ptr as *const f64,
                    &mut lwork,
                )
            };
            cusolver(status)?;
        }
        self.reserve(lwork.max(1) as u64 * 8, "the eigenvalue workspace")?;
        let mut work = self
            .stream
            .alloc_zeros::<f64>(lwork.max(1) as usize)
            .map_err(driver)?;
        {
            let (g_ptr, _g) = g.device_ptr_mut(&self.stream);
            let (w_ptr, _w) = w.device_ptr_mut(&self.stream);
            let (work_ptr, _k) = work.device_ptr_mut(&self.stream);
            let (info_ptr, _i) = info.device_ptr_mut(&self.stream);
            // SAFETY: as above; lwork is what cuSOLVER asked for.
            let status = unsafe {
                solver::cusolverDnDsyevd(
                    self.solver.cu(),
                    jobz,
                    uplo,
                    n32,
                    g_ptr as *mut f64,
                    n32,
                    w_ptr as *mut f64,
                    work_ptr as *mut f64,
                    lwork,
                    info_ptr as *mut i32,
                )
            };
            cusolver(status)?;
        }
        check_info(&self.stream, &info, "cusolverDnDsyevd")?;
        self.stream.clone_dtoh(&w).map_err(driver)
    }
}

impl SpectralBackend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn gram_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        let (rows, cols) = matrix.shape();
        let (n, long) = (rows.min(cols), rows.max(cols));
        if n == 0 {
            return Ok(Vec::new());
        }
        // Runner threads take turns here; cuBLAS and cuSOLVER calls need
        // the context current on the calling thread.
        self.context.bind_to_thread().map_err(driver)?;
        let kind = Kind::of(matrix.stored_dtype())?.upload(&self.stream)?;
        let b = (DEVICE_BLOCK_ELEMENTS / n)
            .clamp(256, long.max(1))
            .min(long);
        let elem = matrix.stored_dtype().bits() / 8;
        let stored = if rows >= cols {
            b * cols * elem
        } else {
            rows * cols * elem
        };
        self.reserve(
            8 * (n * n + b * n + n) as u64 + stored as u64,
            &format!("the Gram matrix of ({rows}, {cols})"),
        )?;
        let mut gram = self.stream.alloc_zeros::<f64>(n * n).map_err(driver)?;
        let mut block = self.stream.alloc_zeros::<f64>(b * n).map_err(driver)?;
        if rows >= cols {
            // Tall: stream row blocks; each widened block is n × count, column-major.
            for start in (0..rows).step_by(b) {
                let count = b.min(rows - start);
                let input = self
                    .stream
                    .clone_htod(&*matrix.stored_rows(start, count)?)
                    .map_err(driver)?;
                self.widen(
                    &input,
                    cols,
                    (0, 0),
                    (count, cols),
                    &kind,
                    false,
                    &mut block,
                )?;
                self.syrk(&block, false, n, count, &mut gram)?;
                matrix.release_rows(start, count);
            }
        } else {
            // Wide: the stored matrix goes up once; windows of columns are
            // widened into blocks that are count × n, column-major.
            let input = self
                .stream
                .clone_htod(&*matrix.stored_rows(0, rows)?)
                .map_err(driver)?;
            for start in (0..cols).step_by(b) {
                let count = b.min(cols - start);
                self.widen(
                    &input,
                    cols,
                    (0, start),
                    (rows, count),
                    &kind,
                    false,
                    &mut block,
                )?;
                self.syrk(&block, true, n, count, &mut gram)?;
            }
            matrix.release_rows(0, rows);
        }
        drop(block);
        let eigenvalues = self.eigenvalues(&mut gram, n)?;
        let mut values: Vec<f64> = eigenvalues.into_iter().map(|l| l.max(0.0).sqrt()).collect();
        values.sort_by(|a, b| b.total_cmp(a));
        Ok(values)
    }

    fn svd_route(&self, matrix: &MatrixView<'_>) -> Result<Vec<f64>, BackendError> {
        let (rows, cols) = matrix.shape();
        // The tall orientation, column-major: m ≥ n as gesvd requires.
        let (m, n, transpose) = if rows >= cols {
            (rows, cols, true)
        } else {
            (cols, rows, false)
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        self.context.bind_to_thread().map_err(driver)?;
        let kind = Kind::of(matrix.stored_dtype())?.upload(&self.stream)?;
        let stored = (rows * cols * matrix.stored_dtype().bits() / 8) as u64;
        self.reserve(
            8 * (m * n + n) as u64 + stored,
            &format!("the SVD of ({rows}, {cols})"),
        )?;
        let input = self
            .stream
            .clone_htod(&*matrix.stored_rows(0, rows)?)
            .map_err(driver)?;
        let mut a = self.stream.alloc_zeros::<f64>(m * n).map_err(driver)?;
        self.widen(&input, cols, (0, 0), (rows, cols), &kind, transpose, &mut a)?;
        drop(input);
        matrix.release_rows(0, rows);
        let (m32, n32) = (int(m)?, int(n)?);
        let mut lwork = 0;
        // SAFETY: plain size query.
        cusolver(unsafe {
            solver::cusolverDnDgesvd_bufferSize(self.solver.cu(), m32, n32, &mut lwork)
        })?;
        self.reserve(lwork.max(1) as u64 * 8, "the SVD workspace")?;
        let mut work = self
            .stream
            .alloc_zeros::<f64>(lwork.max(1) as usize)
            .map_err(driver)?;
        let mut s = self.stream.alloc_zeros::<f64>(n).map_err(driver)?;
        let mut info = self.stream.alloc_zeros::<i32>(1).map_err(driver)?;
        {
            let (a_ptr, _a) = a.device_ptr_mut(&self.stream);
            let (s_ptr, _s) = s.device_ptr_mut(&self.stream);
            let (work_ptr, _w) = work.device_ptr_mut(&self.stream);
            let (info_ptr, _i) = info.device_ptr_mut(&self.stream);
            // SAFETY: A is m × n column-major (ld m), S holds n values, no
            // singular vectors are asked for (jobu = jobvt = 'N').
            let status = unsafe {
                solver::cusolverDnDgesvd(
                    self.solver.cu(),
                    b'N' as i8,
                    b'N' as i8,
                    m32,
                    n32,
                    a_ptr as *mut f64,
                    m32,
                    s_ptr as *mut f64,
                    std::ptr::null_mut(),
                    1,
                    std::ptr::null_mut(),
                    1,
                    work_ptr as *mut f64,
                    lwork,
                    std::ptr::null_mut(),
                    info_ptr as *mut i32,
                )
            };
            cusolver(status)?;
        }
        check_info(&self.stream, &info, "cusolverDnDgesvd")?;
        let mut values: Vec<f64> = self
            .stream
            .clone_dtoh(&s)
            .map_err(driver)?
            .into_iter()
            .map(f64::abs)
            .collect();
        values.sort_by(|a, b| b.total_cmp(a));
        Ok(values)
    }
}

/// How widen.cu decodes a dtype, plus the 256-entry table 8-bit types use
/// (the CPU decoder's own values, so both backends see identical numbers).
struct Kind {
    code: i32,
    table: Vec<f64>,
}

/// A [`Kind`] with its table on the device.
struct DeviceKind {
    code: i32,
    table: CudaSlice<f64>,
}

impl Kind {
    fn of(dtype: DType) -> Result<Kind, BackendError> {
        let code = match dtype.0 {
            Dtype::F64 => 0,
            Dtype::F32 => 1,
            Dtype::BF16 => 2,
            Dtype::F16 => 3,
            Dtype::I64 => 5,
            Dtype::U64 => 6,
            Dtype::I32 => 7,
            Dtype::U32 => 8,
            Dtype::I16 => 9,
            Dtype::U16 => 10,
            _ if dtype.bits() == 8 => 4,
            _ => {
                return Err(BackendError::Declined(format!(
                    "no GPU decoder for {dtype}"
                )));
            }
        };
        let mut table = vec![0.0; 256];
        if code == 4 {
            let bytes: Vec<u8> = (0..=255).collect();
            if !decode(dtype, &bytes, &mut table) {
                return Err(BackendError::Declined(format!("no decoder for {dtype}")));
            }
        }
        Ok(Kind { code, table })
    }

    fn upload(self, stream: &Arc<CudaStream>) -> Result<DeviceKind, BackendError> {
        Ok(DeviceKind {
            code: self.code,
            table: stream.clone_htod(&self.table).map_err(driver)?,
        })
    }
}

fn int(x: usize) -> Result<i32, BackendError> {
    i32::try_from(x).map_err(|_| {
        BackendError::Declined(format!(
            "dimension {x} exceeds the 32-bit cuBLAS/cuSOLVER API"
        ))
    })
}

fn check_info(
    stream: &Arc<CudaStream>,
    info: &CudaSlice<i32>,
    what: &str,
) -> Result<(), BackendError> {
    let info = stream.clone_dtoh(info).map_err(driver)?;
    match info.first() {
        Some(0) => Ok(()),
        Some(code) => Err(BackendError::Declined(format!(
            "{what} did not converge (info {code})"
        ))),
        None => Err(BackendError::Broken(format!("{what}: no status"))),
    }
}

/// Out of memory is recoverable (the matrix goes to the CPU); any other
/// driver error may have poisoned the context, so the GPU is switched off.
pub(crate) fn driver(e: DriverError) -> BackendError {
    use cudarc::driver::sys::CUresult;
    match e.0 {
        CUresult::CUDA_ERROR_OUT_OF_MEMORY => BackendError::OutOfMemory(format!("{:?}", e.0)),
        code => BackendError::Broken(format!("CUDA error {code:?}")),
    }
}

fn cublas(status: blas::cublasStatus_t) -> Result<(), BackendError> {
    match status {
        blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS => Ok(()),
        blas::cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED => {
            Err(BackendError::OutOfMemory("cuBLAS allocation".into()))
        }
        other => Err(BackendError::Broken(format!("cuBLAS error {other:?}"))),
    }
}

fn cusolver(status: solver::cusolverStatus_t) -> Result<(), BackendError> {
    match status {
        solver::cusolverStatus_t::CUSOLVER_STATUS_SUCCESS => Ok(()),
        solver::cusolverStatus_t::CUSOLVER_STATUS_ALLOC_FAILED => {
            Err(BackendError::OutOfMemory("cuSOLVER allocation".into()))
        }
        other => Err(BackendError::Broken(format!("cuSOLVER error {other:?}"))),
    }
}
