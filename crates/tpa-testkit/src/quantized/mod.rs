//! Quantized weights in every format tpa reads, generated at any size.
//!
//! A [`Scheme`] turns a weight's name and logical shape into the tensors the
//! format stores (codes, scales, zero points, ...), filled with seeded codes
//! drawn from a rounded Gaussian, and knows the `config.json` entry that
//! marks the format. [`QuantWeight::dequantized`] gives the weight the
//! format's own dequantize computes, in f64, by code written here from the
//! format specs; tpa-core's decoders are checked against it.
//!
//! ```
//! use tpa_testkit::quantized::Scheme;
//!
//! let scheme: Scheme = "gptq-int4-g32-desc".parse().unwrap();
//! assert_eq!(scheme.label(), "gptq-int4-g32");
//! let w = scheme.quantize("model.layers.0.mlp.down_proj.weight", &[64, 128], 7).unwrap();
//! let names: Vec<_> = w.tensors.iter().map(|t| t.name.as_str()).collect();
//! assert!(names.contains(&"model.layers.0.mlp.down_proj.qweight"));
//! assert_eq!(w.dequantized().len(), 64 * 128);
//! ```

mod draw;
mod layout;
pub mod pack;
mod text;

pub use draw::Packing;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Dtype, Fill, TensorSpec, write_model};
use draw::Draw;

/// A quantization format and its settings. The text form (see
/// [`Scheme::label`]) is tpa's `quant` column, optionally followed by
/// modifiers that the column does not show: `-bf16`/`-f16` scales (FP8
/// block), `-asym` (compressed-tensors int), `-v2` and `-desc` (GPTQ
/// `gptq_v2`, `desc_act`), `-nested` (bitsandbytes double quantization).
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// DeepSeek/Qwen fine-grained FP8: E4M3 codes times `weight_scale_inv`
    /// per `rows × cols` block (edge blocks partial).
    Fp8Block {
        rows: usize,
        cols: usize,
        scale: Dtype,
    },
    /// compressed-tensors float-quantized, one F32 scale per output channel.
    CtFp8Channel,
    /// compressed-tensors pack-quantized int (groups of `group` inputs, or
    /// one per channel), symmetric or with packed zero points.
    CtInt {
        bits: u32,
        group: Option<usize>,
        symmetric: bool,
    },
    /// compressed-tensors nvfp4-pack-quantized: E2M1 codes, an E4M3 scale
    /// per 16 divided by a global scale.
    CtNvfp4,
    /// GPTQ v1 (zero − 1 stored) or `gptq_v2`, groups of `group` inputs or
    /// one per channel, with `g_idx` (permuted when `desc_act`).
    Gptq {
        bits: u32,
        group: Option<usize>,
        desc_act: bool,
        v2: bool,
    },
    /// AutoAWQ GEMM, 4-bit.
    Awq { group: usize },
    /// MLX affine: `scales · q + biases`; 2–6 or 8 bits.
    MlxAffine { bits: u32, group: usize },
    /// MLX mxfp4: E2M1 codes, E8M0 scales per 32.
    MlxMxfp4,
    /// bitsandbytes nf4 or fp4 in blocks of `block`, absmax optionally
    /// quantized itself (`nested`).
    Bnb4 {
        nf4: bool,
        block: usize,
        nested: bool,
    },
    /// bitsandbytes LLM.int8 with its `SCB` row scales.
    BnbInt8,
    /// gpt-oss MXFP4 `_blocks`/`_scales` (stacked experts).
    GptOssMxfp4,
}

impl Scheme {
    /// One of each family, with settings that exercise the odd cases
    /// (ragged FP8 blocks, 3-bit streams, asymmetric packed zeros,
    /// activation order, nested absmax).
    pub fn examples() -> Vec<Scheme> {
        [
            "fp8-block-128x128",
            "fp8-block-64x32-bf16",
            "ct-fp8-channel",
            "ct-int4-g32-asym",
            "ct-int3-channel",
            "ct-int8-g64",
            "ct-nvfp4-g16",
            "gptq-int4-g32-desc",
            "gptq-int2-g64",
            "gptq-int8-channel-v2",
            "awq-int4-g64",
            "mlx-affine-int2-g128",
            "mlx-affine-int3-g64",
            "mlx-affine-int4-g64",
            "mlx-affine-int5-g32",
            "mlx-affine-int6-g32",
            "mlx-affine-int8-g128",
            "mlx-mxfp4-g32",
            "bnb-nf4-b64-nested",
            "bnb-fp4-b128",
            "bnb-int8-row",
            "mxfp4-b32",
        ]
        .iter()
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
    }

    /// The scheme as tpa's `quant` column names it.
    pub fn label(&self) -> String {
        text::label(self)
    }

    /// The entry of `config.json` that names this format (merged into the
    /// file [`write_quantized_model`] writes).
    pub fn config(&self) -> Value {
        layout::config(self)
    }

    /// Whether a weight of `shape` can be stored this way.
    pub fn check_shape(&self, shape: &[usize]) -> Result<(), String> {
        layout::check_shape(self, shape)
    }

    /// The stored tensors of weight `name` (`P.weight`, or gpt-oss's bare
    /// `P`) of logical `shape`, codes drawn from `seed`.
    pub fn quantize(&self, name: &str, shape: &[usize], seed: u64) -> Result<QuantWeight, String> {
        self.check_shape(shape)?;
        let logical = match self {
            Scheme::GptOssMxfp4 => name.strip_suffix(".weight").unwrap_or(name),
            _ => name,
        };
        let draw = Draw::new(self.clone(), shape, seed);
        let tensors = layout::parts(self, logical, shape)
            .into_iter()
            .map(|(name, dtype, stored, part)| {
                TensorSpec::new(
                    name,
                    dtype,
                    &stored,
                    Fill::Packed(draw.packing(part, dtype)),
                )
            })
            .collect();
        Ok(QuantWeight {
            name: logical.to_owned(),
            shape: shape.to_vec(),
            tensors,
            draw,
        })
    }
}

/// One logical weight in its stored form.
#[derive(Debug, Clone)]
pub struct QuantWeight {
    /// The name tpa gives its row.
    pub name: String,
    /// The logical shape (`[out, in]`, or `[E, out, in]` stacked).
    pub shape: Vec<usize>,
    /// What the checkpoint stores.
    pub tensors: Vec<TensorSpec>,
    draw: Draw,
}

impl QuantWeight {
    /// The dequantized weight, row-major over the logical shape.
    pub fn dequantized(&self) -> Vec<f64> {
        self.draw.dequantized()
    }
}

/// Whether a tensor of a generated model is one that real quantized
/// checkpoints quantize: the linear projections (`*_proj.weight`,
/// DeepSeek's `kv_a_proj_with_mqa`, stacked experts), not embeddings, norms,
/// routers or the LM head.
pub fn is_quantized_linear(t: &TensorSpec) -> bool {
    let module = t.name.strip_suffix(".weight").unwrap_or(&t.name);
    (module.ends_with("_proj") || module.ends_with("_proj_with_mqa")) && t.shape.len() >= 2
}

/// `tensors` with every [`is_quantized_linear`] one replaced by its stored
/// form (seeds `seed + i`); the others stay as they are.
pub fn quantize_model(
    tensors: &[TensorSpec],
    scheme: &Scheme,
    seed: u64,
) -> Result<Vec<TensorSpec>, String> {
    let mut out = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        if is_quantized_linear(t) {
            let w = scheme
                .quantize(&t.name, &t.shape, seed.wrapping_add(i as u64))
                .map_err(|e| format!("{}: {e}", t.name))?;
            out.extend(w.tensors);
        } else {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Writes a model of already quantized `tensors` (see [`quantize_model`])
/// and a `config.json` holding `scheme`'s entry and `extra` (an object).
pub fn write_quantized_model(
    dir: &Path,
    tensors: &[TensorSpec],
    scheme: &Scheme,
    shards: usize,
    extra: Value,
) -> std::io::Result<Vec<PathBuf>> {
    let paths = write_model(dir, tensors, shards)?;
    let mut config = json!({});
    for part in [extra, scheme.config()] {
        if let (Some(c), Value::Object(p)) = (config.as_object_mut(), part) {
            c.extend(p);
        }
    }
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(paths)
}
