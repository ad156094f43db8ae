//! DeepSeek-V3/R1, Qwen3 and transformers "fine-grained" FP8: `weight`
//! (F8_E4M3 `[out, in]`) times `weight_scale_inv[i / bo, j / bi]`, a
//! multiplication despite the name (DeepSeek `inference/kernel.py`
//! `weight_dequant_kernel`). Edge blocks are partial and use their own scale.

use safetensors::Dtype;

use super::{FLOATS, Layout, expect_dtype, expect_shape, matrix};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::minifloat;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::codes::Codes;
use crate::tensors::quant::detect::Context;
use crate::tensors::quant::grid::{Grid, Groups, Values};
use crate::tensors::quant::part::Part;

/// `P.weight` + `P.weight_scale_inv`, block size from `weight_block_size`
/// (128 × 128 when the configuration does not say).
pub(super) fn block(cx: &Context<'_>, scale: &TensorEntry, prefix: &str) -> Result<Quantized> {
    let weight = cx.require(
        scale,
        &format!("{prefix}.weight"),
        "it is an FP8 block scale",
    )?;
    expect_dtype(
        cx,
        weight,
        &[Dtype::F8_E4M3, Dtype::F8_E5M2],
        "an FP8 weight",
    )?;
    let (rows, cols) = matrix(cx, weight, "an FP8 block-scaled weight")?;
    expect_dtype(cx, scale, FLOATS, "an FP8 block scale")?;
    let (bo, bi) = block_size(cx)?;
    expect_shape(
        cx,
        scale,
        &[rows.div_ceil(bo), cols.div_ceil(bi)],
        &format!("the scale of a [{rows}, {cols}] weight in {bo}×{bi} blocks"),
    )?;
    Ok(Layout {
        name: weight.name.clone(),
        shape: vec![rows, cols],
        codes: bytes(weight),
        groups: Groups::Cols(bi),
        scale: Grid::Rows {
            values: Values::Stored(Part::new(scale)),
            groups: cols.div_ceil(bi),
            row_div: bo,
        },
        zero: None,
        bias: None,
        extra_parts: Vec::new(),
        code_type: weight.dtype.to_string(),
        scheme: format!("fp8-block-{bo}x{bi}"),
    }
    .finish())
}

/// One FP8 byte per element, row-major, decoded by its own table.
pub(super) fn bytes(weight: &TensorEntry) -> Codes {
    let cols = weight.shape.last().copied().unwrap_or(1);
    Codes::bytes(Part::new(weight), cols, table(weight))
}

/// The decoding table of an FP8 tensor's dtype (E5M2 or E4M3FN).
pub(super) fn table(weight: &TensorEntry) -> Box<[f64]> {
    let table: &[f64; 256] = if weight.dtype.0 == Dtype::F8_E5M2 {
        &minifloat::F8_E5M2
    } else {
        &minifloat::F8_E4M3FN
    };
    table.to_vec().into_boxed_slice()
}

fn block_size(cx: &Context<'_>) -> Result<(usize, usize)> {
    let Some(config) = cx.config else {
        return Ok((128, 128));
    };
    let Some(v) = config.value.get("weight_block_size") else {
        return Ok((128, 128));
    };
    let size = v
        .as_array()
        .map(|a| a.iter().map(|x| x.as_u64()).collect::<Vec<_>>());
    match size.as_deref() {
        Some(&[Some(rows), Some(cols)]) if rows > 0 && cols > 0 => {
            Ok((rows as usize, cols as usize))
        }
        _ => Err(config.unsupported(format!(
            "FP8 with weight_block_size {v} (only [rows, cols] blocks are read)"
        ))),
    }
}
