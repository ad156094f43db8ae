//! MLX (`mlx.core.quantize`, mlx-lm): `weight` U32 `[..., out, in·b/32]`
//! with `scales` and `biases` `[..., out, in/g]`.
//!
//! * affine: `w = scales · q + biases`, q unsigned; b ∈ {2, 3, 4, 5, 6, 8},
//!   the row a little-endian bitstream (3/5/6-bit codes straddle words),
//!   g ∈ {32, 64, 128} (`mlx/ops.cpp` `affine_dequantize`).
//! * mxfp4: E2M1 codes, low nibble first, E8M0 `u8` scales per 32.
//! * mxfp8: E4M3 codes, E8M0 scales per 32.
//!
//! Stacked experts (`SwitchLinear`) are 3-D; embeddings are quantized too.

use safetensors::Dtype;
use serde_json::Value;

use super::{Layout, expect_dtype, expect_shape};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::codes::{Codes, integer_table};
use crate::tensors::quant::detect::{Context, QuantConfig};
use crate::tensors::quant::grid::{Grid, Groups, Values};
use crate::tensors::quant::part::Part;

pub(super) fn check_config(config: &QuantConfig) -> Result<()> {
    check_mode(config, config.str("mode").unwrap_or("affine"))
}

/// Refuses modes tpa does not read, globally or in a per-layer override.
fn check_mode(config: &QuantConfig, mode: &str) -> Result<()> {
    match mode {
        "affine" | "mxfp4" | "mxfp8" => Ok(()),
        mode => Err(config.unsupported(format!(
            "MLX quantization mode {mode:?} (affine, mxfp4 and mxfp8 are read)"
        ))),
    }
}

/// The settings for module `prefix`: its own entry in `quantization`
/// (mlx-lm's per-layer overrides) or the global ones.
fn settings<'a>(config: &'a QuantConfig, prefix: &str) -> &'a Value {
    config
        .value
        .get(prefix)
        .filter(|v| v.is_object())
        .unwrap_or(&config.value)
}

pub(super) fn detect(cx: &Context<'_>, scales: &TensorEntry, prefix: &str) -> Result<Quantized> {
    let weight = cx.require(scales, &format!("{prefix}.weight"), "it is an MLX scale")?;
    let Some(config) = cx.config.filter(|c| c.method == "mlx") else {
        return Err(cx.invalid(
            scales,
            "MLX-quantized weights need the \"quantization\" entry of config.json \
             (group_size, bits, mode) to be read",
        ));
    };
    let settings = settings(config, prefix);
    let mode = settings
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("affine");
    check_mode(config, mode)?;
    let (default_group, default_bits) = match mode {
        "mxfp4" => (32, 4),
        "mxfp8" => (32, 8),
        _ => (64, 4),
    };
    let int =
        |key: &str, default: u64| settings.get(key).and_then(Value::as_u64).unwrap_or(default);
    let group = int("group_size", default_group) as usize;
    let bits = int("bits", default_bits) as u32;
    if mode == "affine" && (!matches!(bits, 2..=6 | 8) || !matches!(group, 32 | 64 | 128)) {
        return Err(config.error(format!(
            "MLX affine bits {bits} / group_size {group} (bits 2–6 or 8, groups 32, 64 or 128)"
        )));
    }
    expect_dtype(cx, weight, &[Dtype::U32], "an MLX quantized weight")?;
    let Some((&words, lead)) = weight.shape.split_last() else {
        return Err(cx.invalid(weight, "an MLX quantized weight cannot be a scalar"));
    };
    let cols = words * 32 / bits as usize;
    if (words * 32) % bits as usize != 0 || cols % group != 0 {
        return Err(cx.invalid(
            weight,
            format!("{words} words per row are not whole groups of {group} {bits}-bit codes"),
        ));
    }
    let mut grid_shape = lead.to_vec();
    grid_shape.push(cols / group);
    expect_shape(
        cx,
        scales,
        &grid_shape,
        &format!("the scales of {bits}-bit codes in groups of {group}"),
    )?;
    let mut shape = lead.to_vec();
    shape.push(cols);
    let grid = |values| Grid::Rows {
        values,
        groups: cols / group,
        row_div: 1,
    };
    let row_bits = words * 32;
    let (codes, scale, bias, code_type) = if mode == "affine" {
        expect_dtype(cx, scales, super::FLOATS, "MLX scales")?;
        let biases = cx.require(
            scales,
            &format!("{prefix}.biases"),
            "MLX affine weights have biases",
        )?;
        expect_dtype(cx, biases, super::FLOATS, "MLX biases")?;
        expect_shape(cx, biases, &grid_shape, "the biases (same as the scales)")?;
        let codes = Codes::Stream {
            part: Part::new(weight),
            bits,
            row_bits,
            high_first: false,
            table: integer_table(bits, 0),
        };
        (
            codes,
            grid(Values::Stored(Part::new(scales))),
            Some(grid(Values::Stored(Part::new(biases)))),
            format!("uint{bits}"),
        )
    } else {
        expect_dtype(cx, scales, &[Dtype::U8], "MLX E8M0 scales")?;
        let codes = if mode == "mxfp4" {
            super::compressed::e2m1_codes(weight, row_bits)
        } else {
            Codes::bytes(Part::new(weight), words * 4, super::fp8::table(weight))
        };
        let code_type = if mode == "mxfp4" {
            "float4_e2m1fn"
        } else {
            "float8_e4m3fn"
        };
        (
            codes,
            grid(Values::E8M0(Part::new(scales))),
            None,
            code_type.to_owned(),
        )
    };
    let kind = if mode == "affine" {
        format!("affine-int{bits}")
    } else {
        mode.to_owned()
    };
    Ok(Layout {
        name: weight.name.clone(),
        shape,
        codes,
        groups: Groups::Cols(group),
        scale,
        zero: None,
        bias,
        extra_parts: Vec::new(),
        code_type,
        scheme: format!("mlx-{kind}-g{group}"),
    }
    .finish())
}
