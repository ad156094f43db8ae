//! Writes toy or benchmark-sized models with real families' tensor names.
//!
//! ```text
//! cargo run --release -p tpa-testkit --bin tpa-fixture -- \
//!     --arch llama --dtype bf16 --hidden 2048 --intermediate 5632 --layers 22 --kv-dim 512 \
//!     --vocab 32000 --out data/models/bench-llama-bf16
//! ```

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use tpa_testkit::architectures::{self, Dims};
use tpa_testkit::{Dtype, Fill, write_model};

#[derive(Clone, Copy, ValueEnum)]
enum Arch {
    Llama,
    Bert,
    Gpt2,
    /// Qwen3-MoE naming with --experts routed experts per layer.
    Moe,
}

#[derive(Parser)]
#[command(about = "Write a synthetic safetensors model (seeded Gaussian weights)")]
struct Args {
    #[arg(long, value_enum, default_value = "llama")]
    arch: Arch,
    /// f32, f16, bf16 or f64.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    #[arg(long, default_value_t = 1024)]
    vocab: usize,
    #[arg(long, default_value_t = 320)]
    hidden: usize,
    #[arg(long, default_value_t = 640)]
    intermediate: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Rows of k_proj/v_proj (KV heads × head dim) [default: hidden, i.e. no GQA].
    #[arg(long)]
    kv_dim: Option<usize>,
    /// Routed experts per layer (--arch moe).
    #[arg(long, default_value_t = 8)]
    experts: usize,
    /// Rows of each expert's gate and up projections (--arch moe).
    #[arg(long, default_value_t = 64)]
    moe_intermediate: usize,
    /// Number of shard files (an index is written when more than one).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let dtype = match args.dtype.as_str() {
        "f32" => Dtype::F32,
        "f16" => Dtype::F16,
        "bf16" => Dtype::BF16,
        "f64" => Dtype::F64,
        other => {
            return Err(std::io::Error::other(format!(
                "unsupported --dtype {other}"
            )));
        }
    };
    let dims = Dims {
        vocab: args.vocab,
        hidden: args.hidden,
        intermediate: args.intermediate,
        layers: args.layers,
        kv_dim: args.kv_dim.unwrap_or(args.hidden),
    };
    let fill = Fill::Normal {
        seed: args.seed,
        std: 0.02,
    };
    let mut tensors = match args.arch {
        Arch::Llama => architectures::llama(dims, dtype, &fill),
        Arch::Bert => architectures::bert(dims, dtype, &fill),
        Arch::Gpt2 => architectures::gpt2(dims, dtype, &fill),
        Arch::Moe => architectures::moe(dims, args.experts, args.moe_intermediate, dtype, &fill),
    };
    // Different seeds per tensor, so no two tensors are identical.
    for (i, t) in tensors.iter_mut().enumerate() {
        if let Fill::Normal { seed, .. } = &mut t.fill {
            *seed = seed.wrapping_add(i as u64);
        }
    }
    let paths = write_model(&args.out, &tensors, args.shards)?;
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}
