//! bitsandbytes serialized weights (`bitsandbytes/nn/modules.py`,
//! `functional.py` `QuantState`, `backends/default/ops.py`).
//!
//! * 4-bit (nf4, fp4): `weight` holds the flattened weight two codes per
//!   byte, element 2k in the **high** nibble; `weight.quant_map [16]` maps
//!   codes to values, scaled by `absmax[k / blocksize]`. With double
//!   quantization, absmax is itself u8 codes of `nested_quant_map`, scaled
//!   per 256 by `nested_absmax`, plus `nested_offset`. The shape, block size
//!   and offset are the JSON in `weight.quant_state.bitsandbytes__<type>`.
//! * LLM.int8: `weight` I8 `[out, in]`, `SCB [out]`: `w = q · SCB / 127`.

use safetensors::Dtype;
use serde_json::Value;

use super::{Layout, expect_dtype, expect_shape, matrix};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::codes::{Codes, int8_table};
use crate::tensors::quant::detect::Context;
use crate::tensors::quant::grid::{Grid, Groups, Values};
use crate::tensors::quant::part::Part;

/// The `quant_state` sidecar of `prefix.weight`, whichever type it names.
fn quant_state<'a>(cx: &Context<'a>, prefix: &str) -> Option<(&'static str, &'a TensorEntry)> {
    ["nf4", "fp4"].into_iter().find_map(|t| {
        cx.get(&format!("{prefix}.weight.quant_state.bitsandbytes__{t}"))
            .map(|e| (t, e))
    })
}

fn floats(cx: &Context<'_>, entry: &TensorEntry) -> Vec<f32> {
    let part = Part::new(entry);
    (0..part.numel())
        .map(|i| part.value(cx.shards(), i) as f32)
        .collect()
}

pub(super) fn four_bit(cx: &Context<'_>, absmax: &TensorEntry, prefix: &str) -> Result<Quantized> {
    let w = format!("{prefix}.weight");
    let weight = cx.require(absmax, &w, "it is a bitsandbytes absmax")?;
    let Some((kind, state)) = quant_state(cx, prefix) else {
        return Err(cx.invalid(
            absmax,
            format!(
                "a bitsandbytes 4-bit weight needs {w}.quant_state.bitsandbytes__nf4 (or __fp4)"
            ),
        ));
    };
    let json: Value = serde_json::from_slice(Part::new(state).bytes(cx.shards()))
        .map_err(|e| cx.invalid(state, format!("is not the JSON bitsandbytes writes: {e}")))?;
    let shape: Vec<usize> = json
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
        .ok_or_else(|| cx.invalid(state, "has no \"shape\" list"))?;
    let block = json.get("blocksize").and_then(Value::as_u64).unwrap_or(64) as usize;
    if !(block.is_power_of_two() && (32..=4096).contains(&block)) {
        return Err(cx.invalid(
            state,
            format!("blocksize {block} is not a power of two in 32..4096"),
        ));
    }
    let n: usize = shape.iter().product();
    // quant_storage may be any dtype; the bytes are u8 pairs of codes.
    let stored = weight.range.len();
    if stored != n.div_ceil(2) {
        return Err(cx.invalid(
            weight,
            format!(
                "a packed length that does not match the shape: {shape:?} needs {} bytes of \
                 4-bit codes, but the weight holds {stored}",
                n.div_ceil(2)
            ),
        ));
    }
    let map = cx.require(
        absmax,
        &format!("{w}.quant_map"),
        "4-bit codes need their table",
    )?;
    expect_dtype(cx, map, &[Dtype::F32], "quant_map")?;
    expect_shape(cx, map, &[16], "quant_map")?;
    let blocks = n.div_ceil(block);
    expect_shape(
        cx,
        absmax,
        &[blocks],
        &format!("absmax of {n} elements in blocks of {block}"),
    )?;
    let mut extra = vec![Part::new(map), Part::new(state)];
    let values = if absmax.dtype.0 == Dtype::U8 {
        let nested = cx.require(
            absmax,
            &format!("{w}.nested_absmax"),
            "absmax is quantized (u8)",
        )?;
        let nested_map = cx.require(
            absmax,
            &format!("{w}.nested_quant_map"),
            "absmax is quantized (u8)",
        )?;
        expect_dtype(cx, nested, &[Dtype::F32], "nested_absmax")?;
        expect_dtype(cx, nested_map, &[Dtype::F32], "nested_quant_map")?;
        expect_shape(cx, nested_map, &[256], "nested_quant_map")?;
        let nested_block = json
            .get("nested_blocksize")
            .and_then(Value::as_u64)
            .unwrap_or(256) as usize;
        expect_shape(
            cx,
            nested,
            &[blocks.div_ceil(nested_block.max(1))],
            "nested_absmax",
        )?;
        let offset = json
            .get("nested_offset")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as f32;
        extra.push(Part::new(nested_map));
        Values::Nested {
            codes: Part::new(absmax),
            table: floats(cx, nested_map),
            absmax: Part::new(nested),
            block: nested_block.max(1),
            offset,
        }
    } else {
        expect_dtype(cx, absmax, &[Dtype::F32], "absmax")?;
        Values::Stored(Part::new(absmax))
    };
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let table: Box<[f64]> = floats(cx, map).into_iter().map(f64::from).collect();
    Ok(Layout {
        name: w,
        shape,
        codes: Codes::Stream {
            part: Part::new(weight),
            bits: 4,
            row_bits: cols * 4,
            high_first: true,
            table,
        },
        groups: Groups::Flat { size: block, cols },
        scale: Grid::Rows {
            values,
            groups: blocks,
            row_div: usize::MAX,
        },
        zero: None,
        bias: None,
        extra_parts: extra,
        code_type: kind.into(),
        scheme: format!("bnb-{kind}-b{block}"),
    }
    .finish())
}

pub(super) fn int8(cx: &Context<'_>, scb: &TensorEntry, prefix: &str) -> Result<Quantized> {
    let weight = cx.require(
        scb,
        &format!("{prefix}.weight"),
        "it is a bitsandbytes int8 scale",
    )?;
    expect_dtype(cx, weight, &[Dtype::I8], "an LLM.int8 weight")?;
    let (rows, cols) = matrix(cx, weight, "an LLM.int8 weight")?;
    expect_dtype(cx, scb, &[Dtype::F32, Dtype::F16, Dtype::BF16], "SCB")?;
    expect_shape(cx, scb, &[rows], "SCB (one scale per row)")?;
    let mut extra = Vec::new();
    if let Some(format) = cx.get(&format!("{prefix}.weight_format")) {
        let code = Part::new(format).value(cx.shards(), 0);
        if code != 0.0 {
            return Err(cx.invalid(
                format,
                format!("weight_format {code} is not 0 (row), the one bitsandbytes reads"),
            ));
        }
        extra.push(Part::new(format));
    }
    Ok(Layout {
        name: weight.name.clone(),
        shape: vec![rows, cols],
        codes: Codes::bytes(Part::new(weight), cols, int8_table()),
        groups: Groups::Cols(cols.max(1)),
        scale: Grid::Rows {
            values: Values::Divided {
                part: Part::new(scb),
                divisor: 127.0,
            },
            groups: 1,
            row_div: 1,
        },
        zero: None,
        bias: None,
        extra_parts: extra,
        code_type: "int8".into(),
        scheme: "bnb-int8-row".into(),
    }
    .finish())
}
