//! Times the CPU backend's Gram route on random bf16 matrices.
//!
//! ```text
//! cargo run --release -p tpa-core --example spectrum_timing -- 2048x2048 5632x2048 4096x4096
//! ```

use std::time::Instant;

use tpa_core::analyses::spectrum::{CpuBackend, SpectralBackend};
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;
use tpa_testkit::{Dtype, Fill, TensorSpec, write_safetensors};

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for shape in std::env::args().skip(1) {
        let (rows, cols) = shape
            .split_once('x')
            .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
            .expect("shapes look like 2048x2048");
        let path = dir.path().join(format!("{shape}.safetensors"));
        let spec = TensorSpec::new(
            "w",
            Dtype::BF16,
            &[rows, cols],
            Fill::Normal { seed: 1, std: 0.02 },
        );
        write_safetensors(&path, &[spec]).expect("write the matrix");
        let model = Model::open(&path).expect("open it");
        let matrix = MatrixView::whole(model.tensor("w").expect("tensor w"));
        let start = Instant::now();
        let values = CpuBackend.gram_route(&matrix).expect("spectrum");
        println!(
            "{shape}: gram route {:.3} s (σmax {:.4})",
            start.elapsed().as_secs_f64(),
            values[0]
        );
    }
}
