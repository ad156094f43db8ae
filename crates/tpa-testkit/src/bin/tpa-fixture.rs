//! Writes toy or benchmark-sized models with real families' tensor names.
//!
//! ```text
//! cargo run --release -p tpa-testkit --bin tpa-fixture -- \
//!     --arch llama --dtype bf16 --hidden 2048 --intermediate 5632 --layers 22 --kv-dim 512 \
//!     --vocab 32000 --out data/models/bench-llama-bf16
//! ```
//!
//! With `--quant SCHEME` the linear projections are stored quantized (e.g.
//! `fp8-block-128x128`, `gptq-int4-g128`; see `tpa_testkit::quantized`) and
//! a `config.json` names the format; embeddings, norms and routers keep `--dtype`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use tpa_testkit::architectures::{self, Dims};
use tpa_testkit::quantized::{Scheme, quantize_model, write_quantized_model};
use tpa_testkit::{Dtype, Fill, write_model, write_model_headers};

#[derive(Clone, Copy, ValueEnum)]
enum Arch {
    Llama,
    Bert,
    Gpt2,
    /// Qwen3-MoE naming with --experts routed experts per layer.
    Moe,
    /// DeepSeek-V3 naming: MLA attention, --dense-layers dense layers, then
    /// MoE layers of --experts routed experts and a shared one.
    DeepseekV3,
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
    /// Rows of each expert's gate and up projections (--arch moe, deepseek-v3).
    #[arg(long, default_value_t = 64)]
    moe_intermediate: usize,
    /// Layers with a dense MLP before the MoE ones (--arch deepseek-v3).
    #[arg(long, default_value_t = 1)]
    dense_layers: usize,
    /// MLA query and key/value ranks and heads (--arch deepseek-v3;
    /// DeepSeek-V3's are 1536, 512, 128).
    #[arg(long, num_args = 3, value_names = ["Q_RANK", "KV_RANK", "HEADS"], default_values_t = [64, 32, 4])]
    mla: Vec<usize>,
    /// Number of shard files (an index is written when more than one).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Store the linear projections quantized: fp8-block-128x128,
    /// gptq-int4-g128 (modifiers -v2, -desc), awq-int4-g128, ct-int4-g128
    /// (-asym), ct-fp8-channel, ct-nvfp4-g16, mlx-affine-int4-g64,
    /// mlx-mxfp4-g32, bnb-nf4-b64 (-nested), bnb-fp4-b64, bnb-int8-row, mxfp4-b32.
    #[arg(long)]
    quant: Option<Scheme>,
    /// Write only the shards' headers, each file at its full length with the data as a
    /// hole (sparse): the tensor layout of a model too big to build, for
    /// `tpa-download --list-tensors` against `tpa-mock-hub --headers-only`.
    #[arg(long)]
    headers_only: bool,
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
        Arch::DeepseekV3 => {
            let mla = architectures::Mla {
                q_rank: args.mla[0],
                kv_rank: args.mla[1],
                heads: args.mla[2],
            };
            let (dense, experts, int) = (args.dense_layers, args.experts, args.moe_intermediate);
            architectures::deepseek_v3(dims, mla, dense, experts, int, dtype, &fill)
        }
    };
    // Different seeds per tensor, so no two tensors are identical.
    for (i, t) in tensors.iter_mut().enumerate() {
        if let Fill::Normal { seed, .. } = &mut t.fill {
            *seed = seed.wrapping_add(i as u64);
        }
    }
    let paths = match &args.quant {
        _ if args.headers_only => {
            let stored = match &args.quant {
                Some(scheme) => {
                    quantize_model(&tensors, scheme, args.seed).map_err(std::io::Error::other)?
                }
                None => tensors,
            };
            if let Some(scheme) = &args.quant {
                std::fs::create_dir_all(&args.out)?;
                std::fs::write(
                    args.out.join("config.json"),
                    serde_json::to_vec_pretty(&scheme.config())?,
                )?;
            }
            write_model_headers(&args.out, &stored, args.shards)?
        }
        Some(scheme) => {
            let stored =
                quantize_model(&tensors, scheme, args.seed).map_err(std::io::Error::other)?;
            write_quantized_model(
                &args.out,
                &stored,
                scheme,
                args.shards,
                serde_json::json!({}),
            )?
        }
        None => write_model(&args.out, &tensors, args.shards)?,
    };
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}
