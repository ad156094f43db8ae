//! k-means distances on the GPU. The data set is uploaded once; each call
//! uploads the few centres, one cuBLAS SGEMM forms every product and a small
//! kernel turns them into squared distances or nearest centres, so only
//! n·m floats (or n labels and distances) come back.

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

use super::{CpuDistances, Data, Distances, KMeansAccelerator};
use crate::analyses::spectrum::BackendError;
use crate::analyses::spectrum::cuda::{CudaBackend, driver};

/// Centres the product buffer is reserved for up front (n × this many
/// floats); more are allowed, and an out-of-memory then falls back to the CPU.
const RESERVED_CENTERS: usize = 128;

impl KMeansAccelerator for CudaBackend {
    fn describe(&self) -> String {
        format!("GPU ({})", self.info().name)
    }

    fn prepare<'a>(&'a self, data: &'a Data<'a>) -> Result<Box<dyn Distances + 'a>, BackendError> {
        let device = DeviceData::upload(self, data)?;
        device.check_against_cpu()?;
        Ok(Box::new(device))
    }
}

/// A data set on the device.
struct DeviceData<'a> {
    gpu: &'a CudaBackend,
    data: &'a Data<'a>,
    x: CudaSlice<f32>,
    norms: CudaSlice<f32>,
    to_distances: CudaFunction,
    nearest: CudaFunction,
}

impl<'a> DeviceData<'a> {
    fn upload(gpu: &'a CudaBackend, data: &'a Data<'a>) -> Result<DeviceData<'a>, BackendError> {
        let (n, d) = (data.n, data.d);
        gpu.bind()?;
        gpu.reserve(
            4 * (n * d + n + n * RESERVED_CENTERS) as u64,
            &format!("k-means on {n} × {d}"),
        )?;
        let kernels = gpu.kernels(include_str!("distances.cu"), &["to_distances", "nearest"])?;
        let [to_distances, nearest]: [CudaFunction; 2] = kernels
            .try_into()
            .map_err(|_| BackendError::Broken("k-means kernels missing".into()))?;
        let stream = gpu.stream();
        Ok(DeviceData {
            gpu,
            data,
            x: stream.clone_htod(data.x).map_err(driver)?,
            norms: stream.clone_htod(&data.sq_norms).map_err(driver)?,
            to_distances,
            nearest,
        })
    }

    /// The products of every row with `m` centres, column-major m × n, and
    /// the centres' squared norms, on the device.
    fn products(
        &self,
        centers: &[f32],
        m: usize,
    ) -> Result<(CudaSlice<f32>, CudaSlice<f32>), BackendError> {
        let (n, d) = (self.data.n, self.data.d);
        if centers.len() != m * d {
            return Err(BackendError::Declined(format!(
                "{} values for {m} centres of {d}",
                centers.len()
            )));
        }
        self.gpu.bind()?;
        let stream = self.gpu.stream();
        let c_norms: Vec<f32> = centers
            .chunks(d.max(1))
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
        let c = stream.clone_htod(centers).map_err(driver)?;
        let cn = stream.clone_htod(&c_norms).map_err(driver)?;
        let mut g = stream.alloc_zeros::<f32>(n * m).map_err(driver)?;
        self.gpu.sgemm_tn(&c, &self.x, (m, n, d), &mut g)?;
        Ok((g, cn))
    }

    /// Compares the device's distances to three centres with the CPU's on
    /// every row; a layout or library mistake differs by O(the values).
    fn check_against_cpu(&self) -> Result<(), BackendError> {
        let data = self.data;
        let m = data.n.min(3);
        let centers: Vec<f32> = (0..m).flat_map(|i| data.row(i).iter().copied()).collect();
        let gpu = self.matrix(&centers, m)?;
        let cpu = CpuDistances(data).matrix(&centers, m)?;
        let (labels, nearest) = self.nearest(&centers, m)?;
        // f32 products round with an error that scales with the norms; 1e-3
        // of them is far above that and far below a wrong result.
        let c_max = data.sq_norms[..m].iter().copied().fold(0.0f32, f32::max);
        for i in 0..data.n {
            let row = &cpu[i * m..(i + 1) * m];
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * (data.sq_norms[i] + c_max) + 1e-30;
            let best = row.iter().copied().fold(f32::INFINITY, f32::min);
            let agree = row
                .iter()
                .zip(&gpu[i * m..(i + 1) * m])
                .all(|(a, b)| close(*a, *b))
                && close(nearest[i], best)
                && close(row[labels[i] as usize], best);
            if !agree {
                return Err(BackendError::Declined(format!(
                    "self-check: GPU and CPU k-means distances disagree at row {i}; not using the GPU"
                )));
            }
        }
        Ok(())
    }
}

/// A launch over `items` with a grid-stride loop in the kernel.
fn launch_config(items: usize) -> LaunchConfig {
    let blocks = items.div_ceil(256).clamp(1, 65_535 * 32) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Distances for DeviceData<'_> {
    fn matrix(&self, centers: &[f32], m: usize) -> Result<Vec<f32>, BackendError> {
        let n = self.data.n as u64;
        let (mut g, cn) = self.products(centers, m)?;
        let m64 = m as u64;
        let mut launch = self.gpu.stream().launch_builder(&self.to_distances);
        launch
            .arg(&mut g)
            .arg(&self.norms)
            .arg(&cn)
            .arg(&n)
            .arg(&m64);
        // SAFETY: g holds n·m floats, norms n and cn m; the arguments match
        // distances.cu's `to_distances`.
        unsafe { launch.launch(launch_config(self.data.n * m)) }.map_err(driver)?;
        self.gpu.stream().clone_dtoh(&g).map_err(driver)
    }

    fn nearest(&self, centers: &[f32], k: usize) -> Result<(Vec<u32>, Vec<f32>), BackendError> {
        let n = self.data.n;
        let (g, cn) = self.products(centers, k)?;
        let stream = self.gpu.stream();
        let mut labels = stream.alloc_zeros::<u32>(n).map_err(driver)?;
        let mut distances = stream.alloc_zeros::<f32>(n).map_err(driver)?;
        let (n64, k64) = (n as u64, k as u64);
        let mut launch = stream.launch_builder(&self.nearest);
        launch
            .arg(&g)
            .arg(&self.norms)
            .arg(&cn)
            .arg(&n64)
            .arg(&k64)
            .arg(&mut labels)
            .arg(&mut distances);
        // SAFETY: g holds n·k floats, norms n, cn k, labels and distances n;
        // the arguments match distances.cu's `nearest`.
        unsafe { launch.launch(launch_config(n)) }.map_err(driver)?;
        Ok((
            stream.clone_dtoh(&labels).map_err(driver)?,
            stream.clone_dtoh(&distances).map_err(driver)?,
        ))
    }
}
