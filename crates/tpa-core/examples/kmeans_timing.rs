//! Times k-means (n_init 10) on a model's standardized token embeddings.
//!
//! ```text
//! cargo run --release -p tpa-core --example kmeans_timing -- data/models/all-MiniLM-L6-v2 2 10 50
//! ```

use std::time::Instant;

use tpa_core::analyses::embedding::kmeans::{Data, KMeansOptions, kmeans};
use tpa_core::analyses::embedding::scores::anova;
use tpa_core::analyses::embedding::{Standardized, find_embedding, load_f32};
use tpa_core::model::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = Model::open(args.next().ok_or("usage: kmeans_timing MODEL K...")?)?;
    let tensor = find_embedding(&model, None)?;
    let (raw, _, d) = load_f32(&tensor)?;
    let z = Standardized::new(&raw, d);
    let x = z.to_f32();
    let data = Data::new(&x, d);
    for k in args {
        let k: usize = k.parse()?;
        let start = Instant::now();
        let fit = kmeans(&data, &KMeansOptions::new(k, 42));
        let seconds = start.elapsed().as_secs_f64();
        let f = anova(&z, &fit.labels, k).map(|a| a.f_ratio);
        println!(
            "k={k}: {seconds:.2} s, inertia {:.1}, iterations {}, F {f:?}",
            fit.inertia, fit.iterations
        );
    }
    Ok(())
}
