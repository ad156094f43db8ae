//! What each format stores, what its configuration says, and its names.

use serde_json::{Value, json};

use super::Scheme;
use super::draw::Part;
use crate::Dtype;

/// `rows` (everything before the last dimension) and `cols` of a shape.
pub(super) fn matrix(shape: &[usize]) -> (usize, usize) {
    let cols = shape.last().copied().unwrap_or(1);
    (
        shape[..shape.len().saturating_sub(1)].iter().product(),
        cols,
    )
}

pub(super) fn config(s: &Scheme) -> Value {
    let ct = |format: &str, weights: Value| {
        json!({"quantization_config": {
            "quant_method": "compressed-tensors",
            "format": format,
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}},
        }})
    };
    let strategy = |g: &Option<usize>| if g.is_some() { "group" } else { "channel" };
    match s {
        Scheme::Fp8Block { rows, cols, .. } => json!({"quantization_config": {
            "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
            "weight_block_size": [rows, cols],
        }}),
        Scheme::CtFp8Channel => ct(
            "float-quantized",
            json!({"num_bits": 8, "type": "float", "symmetric": true, "strategy": "channel"}),
        ),
        Scheme::CtInt {
            bits,
            group,
            symmetric,
        } => ct(
            "pack-quantized",
            json!({"num_bits": bits, "type": "int", "symmetric": symmetric,
                   "group_size": group, "strategy": strategy(group)}),
        ),
        Scheme::CtNvfp4 => ct(
            "nvfp4-pack-quantized",
            json!({"num_bits": 4, "type": "float", "symmetric": true,
                   "group_size": 16, "strategy": "tensor_group"}),
        ),
        Scheme::Gptq {
            bits,
            group,
            desc_act,
            v2,
        } => json!({"quantization_config": {
            "quant_method": "gptq", "bits": bits,
            "group_size": group.map_or(-1, |g| g as i64), "desc_act": desc_act, "sym": false,
            "checkpoint_format": if *v2 { "gptq_v2" } else { "gptq" },
        }}),
        Scheme::Awq { group } => json!({"quantization_config": {
            "quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm",
            "zero_point": true,
        }}),
        Scheme::MlxAffine { bits, group } => {
            json!({"quantization": {"group_size": group, "bits": bits}})
        }
        Scheme::MlxMxfp4 => {
            json!({"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})
        }
        Scheme::Bnb4 { nf4, nested, .. } => json!({"quantization_config": {
            "quant_method": "bitsandbytes", "load_in_4bit": true,
            "bnb_4bit_quant_type": if *nf4 { "nf4" } else { "fp4" },
            "bnb_4bit_use_double_quant": nested,
        }}),
        Scheme::BnbInt8 => json!({"quantization_config": {
            "quant_method": "bitsandbytes", "load_in_8bit": true,
        }}),
        Scheme::GptOssMxfp4 => json!({"quantization_config": {"quant_method": "mxfp4"}}),
    }
}

/// Bits per code.
pub(super) fn bits(s: &Scheme) -> u32 {
    match s {
        Scheme::CtInt { bits, .. } | Scheme::Gptq { bits, .. } | Scheme::MlxAffine { bits, .. } => {
            *bits
        }
        Scheme::Fp8Block { .. } | Scheme::CtFp8Channel | Scheme::BnbInt8 => 8,
        _ => 4,
    }
}

/// Columns per scale (GPTQ: before `g_idx` permutes them); `None` for
/// bitsandbytes 4-bit, whose blocks run over the flattened weight.
pub(super) fn group(s: &Scheme, cols: usize) -> Option<usize> {
    match s {
        Scheme::Fp8Block { cols: c, .. } => Some(*c),
        Scheme::CtFp8Channel | Scheme::BnbInt8 => Some(cols),
        Scheme::CtInt { group, .. } | Scheme::Gptq { group, .. } => Some(group.unwrap_or(cols)),
        Scheme::CtNvfp4 => Some(16),
        Scheme::Awq { group } | Scheme::MlxAffine { group, .. } => Some(*group),
        Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => Some(32),
        Scheme::Bnb4 { .. } => None,
    }
}

pub(super) fn check_shape(s: &Scheme, shape: &[usize]) -> Result<(), String> {
    let stacked = matches!(
        s,
        Scheme::MlxAffine { .. } | Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 | Scheme::Bnb4 { .. }
    );
    if shape.len() != 2 && !(stacked && shape.len() >= 2) {
        return Err(format!(
            "{} stores [out, in] weights{}, not {shape:?}",
            s.label(),
            if stacked { " (or stacked ones)" } else { "" }
        ));
    }
    let (rows, cols) = matrix(shape);
    let b = bits(s) as usize;
    let need = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    if let Some(g) = group(s, cols) {
        // FP8 blocks may be ragged; every other group divides the inputs.
        if !matches!(s, Scheme::Fp8Block { .. }) {
            need(
                g > 0 && cols % g == 0,
                format!("{cols} inputs are not whole groups of {g}"),
            )?;
        }
    }
    match s {
        Scheme::CtInt { bits, .. } => {
            need((1..=8).contains(bits), format!("{bits} bits is not 1–8"))?
        }
        Scheme::Gptq { bits, .. } => {
            need(
                matches!(bits, 2 | 4 | 8),
                format!("GPTQ {bits} bits is not 2, 4 or 8"),
            )?;
            need(
                cols * b % 32 == 0 && rows * b % 32 == 0,
                format!("[{rows}, {cols}] does not pack into whole {b}-bit words both ways"),
            )?
        }
        Scheme::Awq { .. } => need(rows % 8 == 0, format!("{rows} outputs are not whole words"))?,
        Scheme::MlxAffine { bits, group } => {
            need(
                matches!(bits, 2..=6 | 8) && matches!(group, 32 | 64 | 128),
                format!("MLX affine {bits} bits / group {group}"),
            )?;
            need(
                cols * b % 32 == 0,
                format!("{cols} {b}-bit codes are not whole words"),
            )?
        }
        Scheme::CtNvfp4 | Scheme::Bnb4 { .. } if cols % 2 != 0 => {
            return Err(format!("{cols} inputs are not whole bytes of 4-bit codes"));
        }
        _ => {}
    }
    Ok(())
}

/// Words of `n` b-bit fields.
pub(super) fn words(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(32)
}

/// Every stored tensor of weight `name`: (name, dtype, stored shape, part).
pub(super) fn parts(
    s: &Scheme,
    name: &str,
    shape: &[usize],
) -> Vec<(String, Dtype, Vec<usize>, Part)> {
    let (rows, cols) = matrix(shape);
    let p = name.strip_suffix(".weight").unwrap_or(name);
    let lead = &shape[..shape.len() - 1];
    let with = |last: &[usize]| [lead, last].concat();
    let b = bits(s);
    let n_groups = group(s, cols).map_or(0, |g| cols.div_ceil(g));
    let t =
        |suffix: &str, dtype, shape: Vec<usize>, part| (format!("{p}{suffix}"), dtype, shape, part);
    match s {
        Scheme::Fp8Block {
            rows: bo, scale, ..
        } => vec![
            t(".weight", Dtype::F8_E4M3, vec![rows, cols], Part::Codes),
            t(
                ".weight_scale_inv",
                *scale,
                vec![rows.div_ceil(*bo), n_groups],
                Part::Scales,
            ),
        ],
        Scheme::CtFp8Channel => vec![
            t(".weight", Dtype::F8_E4M3, vec![rows, cols], Part::Codes),
            t(".weight_scale", Dtype::F32, vec![rows, 1], Part::Scales),
        ],
        Scheme::CtInt { symmetric, .. } => {
            let mut v = vec![
                t(
                    ".weight_packed",
                    Dtype::I32,
                    vec![rows, words(cols, b)],
                    Part::Codes,
                ),
                t(
                    ".weight_scale",
                    Dtype::BF16,
                    vec![rows, n_groups],
                    Part::Scales,
                ),
                t(".weight_shape", Dtype::I64, vec![2], Part::Shape),
            ];
            if !symmetric {
                v.push(t(
                    ".weight_zero_point",
                    Dtype::I32,
                    vec![words(rows, b), n_groups],
                    Part::Zeros,
                ));
            }
            v
        }
        Scheme::CtNvfp4 => vec![
            t(
                ".weight_packed",
                Dtype::U8,
                vec![rows, cols / 2],
                Part::Codes,
            ),
            t(
                ".weight_scale",
                Dtype::F8_E4M3,
                vec![rows, n_groups],
                Part::Scales,
            ),
            t(
                ".weight_global_scale",
                Dtype::F32,
                vec![1],
                Part::GlobalScale,
            ),
            t(".weight_shape", Dtype::I64, vec![2], Part::Shape),
        ],
        Scheme::Gptq { .. } => vec![
            t(
                ".qweight",
                Dtype::I32,
                vec![cols * b as usize / 32, rows],
                Part::Codes,
            ),
            t(
                ".qzeros",
                Dtype::I32,
                vec![n_groups, rows * b as usize / 32],
                Part::Zeros,
            ),
            t(".scales", Dtype::F16, vec![n_groups, rows], Part::Scales),
            t(".g_idx", Dtype::I32, vec![cols], Part::GIdx),
        ],
        Scheme::Awq { .. } => vec![
            t(".qweight", Dtype::I32, vec![cols, rows / 8], Part::Codes),
            t(".qzeros", Dtype::I32, vec![n_groups, rows / 8], Part::Zeros),
            t(".scales", Dtype::F16, vec![n_groups, rows], Part::Scales),
        ],
        Scheme::MlxAffine { .. } => vec![
            t(".weight", Dtype::U32, with(&[words(cols, b)]), Part::Codes),
            t(".scales", Dtype::F16, with(&[n_groups]), Part::Scales),
            t(".biases", Dtype::F16, with(&[n_groups]), Part::Biases),
        ],
        Scheme::MlxMxfp4 => vec![
            t(".weight", Dtype::U32, with(&[words(cols, 4)]), Part::Codes),
            t(".scales", Dtype::U8, with(&[n_groups]), Part::Scales),
        ],
        Scheme::Bnb4 { nf4, block, nested } => {
            let kind = if *nf4 { "nf4" } else { "fp4" };
            let n = rows * cols;
            let blocks = n.div_ceil(*block);
            let state = super::draw::quant_state(s, shape).len();
            let mut v = vec![
                t(".weight", Dtype::U8, vec![n.div_ceil(2), 1], Part::Codes),
                t(
                    ".weight.absmax",
                    if *nested { Dtype::U8 } else { Dtype::F32 },
                    vec![blocks],
                    Part::Scales,
                ),
                t(".weight.quant_map", Dtype::F32, vec![16], Part::QuantMap),
                t(
                    &format!(".weight.quant_state.bitsandbytes__{kind}"),
                    Dtype::U8,
                    vec![state],
                    Part::QuantState,
                ),
            ];
            if *nested {
                v.push(t(
                    ".weight.nested_absmax",
                    Dtype::F32,
                    vec![blocks.div_ceil(super::draw::NESTED_BLOCK)],
                    Part::NestedAbsmax,
                ));
                v.push(t(
                    ".weight.nested_quant_map",
                    Dtype::F32,
                    vec![256],
                    Part::NestedMap,
                ));
            }
            v
        }
        Scheme::BnbInt8 => vec![
            t(".weight", Dtype::I8, vec![rows, cols], Part::Codes),
            t(".SCB", Dtype::F32, vec![rows], Part::Scales),
            t(".weight_format", Dtype::U8, vec![], Part::Format),
        ],
        Scheme::GptOssMxfp4 => vec![
            t("_blocks", Dtype::U8, with(&[n_groups, 16]), Part::Codes),
            t("_scales", Dtype::U8, with(&[n_groups]), Part::Scales),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_do_not_pack_are_refused() {
        let gptq: Scheme = "gptq-int4-g32".parse().unwrap();
        assert!(gptq.check_shape(&[64, 96]).is_ok());
        assert!(gptq.check_shape(&[64, 100]).is_err());
        assert!(gptq.check_shape(&[2, 64, 96]).is_err());
        let mlx: Scheme = "mlx-affine-int3-g64".parse().unwrap();
        assert!(mlx.check_shape(&[4, 8, 128]).is_ok());
        assert!(
            "fp8-block-128x128"
                .parse::<Scheme>()
                .unwrap()
                .check_shape(&[200, 300])
                .is_ok()
        );
    }
}
