//! compressed-tensors (vLLM llm-compressor): `w = (q − zp) · scale`, with
//! the scale per tensor, channel, group or block
//! (`quantization/lifecycle/forward.py` `_dequantize`).
//!
//! * float-quantized: `weight` F8_E4M3.
//! * int-/naive-quantized: `weight` I8 holding signed values.
//! * pack-quantized: `weight_packed` I32 `[out, ceil(in·b/32)]`, each row a
//!   dense little-endian bitstream of b-bit fields stored as q + 2^(b−1)
//!   (for b = 2, 4, 8 the same as `32/b` lanes per word); `weight_shape`
//!   gives `[out, in]`; asymmetric zero points are packed the same way down
//!   the output dimension (`compressors/pack_quantized/helpers.py`).
//! * nvfp4-pack-quantized: `weight_packed` U8 E2M1 pairs (low nibble first),
//!   `weight_scale` F8 per 16, divided by `weight_global_scale`.

use safetensors::Dtype;
use serde_json::Value;

use super::{Layout, expect_dtype, expect_shape, group_index, matrix};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::minifloat;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::codes::{Codes, int8_table, integer_table};
use crate::tensors::quant::detect::{Context, QuantConfig};
use crate::tensors::quant::grid::{Grid, Groups, PackedLayout, Values};
use crate::tensors::quant::part::Part;

const UNSUPPORTED_FORMATS: &[&str] = &["sparse-bitmask", "sparse-24-bitmask", "marlin-24"];

pub(super) fn check_config(config: &QuantConfig) -> Result<()> {
    let mut formats: Vec<&str> = config.str("format").into_iter().collect();
    if let Some(groups) = config.value.get("config_groups").and_then(Value::as_object) {
        formats.extend(
            groups
                .values()
                .filter_map(|g| g.get("format").and_then(Value::as_str)),
        );
    }
    if let Some(f) = formats.iter().find(|f| UNSUPPORTED_FORMATS.contains(f)) {
        return Err(config.unsupported(format!("compressed-tensors format {f:?} (sparse)")));
    }
    if config
        .value
        .get("sparsity_config")
        .is_some_and(|s| !s.is_null())
    {
        let format = config.value["sparsity_config"]
            .get("format")
            .and_then(Value::as_str);
        if format.is_some_and(|f| f != "dense") {
            return Err(config.unsupported(format!(
                "compressed-tensors sparsity format {:?}",
                format.unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// The `weights` arguments of the configuration's groups.
fn weight_args<'a>(cx: &Context<'a>) -> Vec<&'a Value> {
    cx.config
        .and_then(|c| c.value.get("config_groups"))
        .and_then(Value::as_object)
        .map(|groups| groups.values().filter_map(|g| g.get("weights")).collect())
        .unwrap_or_default()
}

/// `num_bits` of the groups whose `type` is `kind`, when they agree.
fn configured_bits(cx: &Context<'_>, kind: &str) -> Option<u32> {
    let mut bits = weight_args(cx)
        .into_iter()
        .filter(|w| {
            w.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == kind)
        })
        .filter_map(|w| w.get("num_bits").and_then(Value::as_u64));
    let first = bits.next()?;
    bits.all(|b| b == first).then_some(first as u32)
}

fn block_structure(cx: &Context<'_>) -> Option<(usize, usize)> {
    weight_args(cx).into_iter().find_map(|w| {
        let b = w.get("block_structure")?.as_array()?;
        Some((b.first()?.as_u64()? as usize, b.get(1)?.as_u64()? as usize))
    })
}

pub(super) fn detect(cx: &Context<'_>, scale: &TensorEntry, prefix: &str) -> Result<Quantized> {
    if let Some(packed) = cx.get(&format!("{prefix}.weight_packed")) {
        return if packed.dtype.0 == Dtype::U8 {
            fp4(cx, scale, packed, prefix)
        } else {
            pack_quantized(cx, scale, packed, prefix)
        };
    }
    let weight = cx.require(
        scale,
        &format!("{prefix}.weight"),
        "it is a compressed-tensors weight scale",
    )?;
    expect_dtype(
        cx,
        weight,
        &[Dtype::F8_E4M3, Dtype::I8],
        "a compressed-tensors weight",
    )?;
    let (rows, cols) = matrix(cx, weight, "a compressed-tensors weight")?;
    let float = weight.dtype.0 == Dtype::F8_E4M3;
    let bits = if float {
        8
    } else {
        configured_bits(cx, "int").unwrap_or(8)
    };
    if !(2..=8).contains(&bits) {
        return Err(cx.invalid(weight, format!("num_bits {bits} does not fit int8 storage")));
    }
    let codes = if float {
        super::fp8::bytes(weight)
    } else {
        Codes::bytes(Part::new(weight), cols, int8_table())
    };
    let (strategy, groups, geometry) = strategy(cx, scale, rows, cols)?;
    let zero = match cx.get(&format!("{prefix}.weight_zero_point")) {
        Some(zp) => {
            expect_dtype(cx, zp, &[Dtype::I8, Dtype::I32], "a zero point")?;
            expect_shape(cx, zp, &scale.shape, "the zero point (same as the scale)")?;
            Some(geometry.grid(Values::Stored(Part::new(zp))))
        }
        None => None,
    };
    let groups = match (&groups, cx.get(&format!("{prefix}.weight_g_idx"))) {
        (Groups::Cols(size), Some(g_idx)) => {
            group_index(cx, Some(g_idx), cols, *size, cols.div_ceil(*size))?
        }
        _ => groups,
    };
    let g_idx = cx.get(&format!("{prefix}.weight_g_idx")).map(Part::new);
    let kind = if float {
        "fp8".to_owned()
    } else {
        format!("int{bits}")
    };
    Ok(Layout {
        name: weight.name.clone(),
        shape: vec![rows, cols],
        codes,
        groups,
        scale: geometry.grid(Values::Stored(Part::new(scale))),
        zero,
        bias: None,
        extra_parts: g_idx.into_iter().collect(),
        code_type: if float {
            weight.dtype.to_string()
        } else {
            kind.clone()
        },
        scheme: format!("ct-{kind}-{strategy}"),
    }
    .finish())
}

/// How a strategy lays out its scales: `groups` per row of the grid, one
/// grid row per `row_div` weight rows.
#[derive(Clone, Copy)]
struct Geometry {
    groups: usize,
    row_div: usize,
}

impl Geometry {
    fn grid(self, values: Values) -> Grid {
        Grid::Rows {
            values,
            groups: self.groups,
            row_div: self.row_div,
        }
    }
}

/// Tells the strategy from the scale's shape (`initialize_qparams`):
/// `(1,)` tensor, `(out, 1)` channel, `(out, in/g)` group, else blocks.
fn strategy(
    cx: &Context<'_>,
    scale: &TensorEntry,
    rows: usize,
    cols: usize,
) -> Result<(String, Groups, Geometry)> {
    expect_dtype(
        cx,
        scale,
        &[Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::F8_E4M3],
        "a scale",
    )?;
    let numel: usize = scale.shape.iter().product();
    let shape = scale.shape.as_slice();
    if numel == 1 && shape.len() <= 1 {
        return Ok((
            "tensor".into(),
            Groups::Cols(cols.max(1)),
            Geometry {
                groups: 1,
                row_div: usize::MAX,
            },
        ));
    }
    match *shape {
        [r, 1] if r == rows => Ok((
            "channel".into(),
            Groups::Cols(cols.max(1)),
            Geometry {
                groups: 1,
                row_div: 1,
            },
        )),
        [r, g] if r == rows && g > 0 && cols % g == 0 => Ok((
            format!("g{}", cols / g),
            Groups::Cols(cols / g),
            Geometry {
                groups: g,
                row_div: 1,
            },
        )),
        [br, bc] => {
            let (bo, bi) = block_structure(cx).unwrap_or((128, 128));
            if br != rows.div_ceil(bo) || bc != cols.div_ceil(bi) {
                return Err(cx.invalid(
                    scale,
                    format!(
                        "a scale of shape {shape:?} fits no strategy for a [{rows}, {cols}] \
                         weight (tensor (1,), channel ({rows}, 1), group ({rows}, {cols}/g), \
                         block ({}, {}) for {bo}×{bi} blocks)",
                        rows.div_ceil(bo),
                        cols.div_ceil(bi)
                    ),
                ));
            }
            Ok((
                format!("block-{bo}x{bi}"),
                Groups::Cols(bi),
                Geometry {
                    groups: bc,
                    row_div: bo,
                },
            ))
        }
        _ => Err(cx.invalid(
            scale,
            format!("a scale of shape {shape:?} fits no strategy for a [{rows}, {cols}] weight"),
        )),
    }
}

/// `[out, in]` from `weight_shape` (I32 or I64, as versions differ).
fn logical_shape(cx: &Context<'_>, packed: &TensorEntry, prefix: &str) -> Result<(usize, usize)> {
    let entry = cx.require(
        packed,
        &format!("{prefix}.weight_shape"),
        "pack-quantized weights need their shape",
    )?;
    expect_dtype(cx, entry, &[Dtype::I32, Dtype::I64], "weight_shape")?;
    expect_shape(cx, entry, &[2], "weight_shape")?;
    let part = Part::new(entry);
    let (rows, cols) = (part.value(cx.shards(), 0), part.value(cx.shards(), 1));
    if rows < 0.0 || cols < 0.0 {
        return Err(cx.invalid(entry, format!("holds a negative shape [{rows}, {cols}]")));
    }
    Ok((rows as usize, cols as usize))
}

fn pack_quantized(
    cx: &Context<'_>,
    scale: &TensorEntry,
    packed: &TensorEntry,
    prefix: &str,
) -> Result<Quantized> {
    expect_dtype(cx, packed, &[Dtype::I32], "weight_packed")?;
    let (out, words) = matrix(cx, packed, "weight_packed")?;
    let (rows, cols) = logical_shape(cx, packed, prefix)?;
    let words_for = |n: usize, b: u32| (n * b as usize).div_ceil(32);
    let bits = match configured_bits(cx, "int") {
        Some(b) => b,
        None => [4u32, 8, 2, 3, 5, 6, 7, 1]
            .into_iter()
            .find(|&b| words_for(cols, b) == words)
            .unwrap_or(4),
    };
    if !(1..=8).contains(&bits) {
        return Err(cx.invalid(
            packed,
            format!("pack-quantized num_bits {bits} is not 1 to 8"),
        ));
    }
    if out != rows || words != words_for(cols, bits) {
        return Err(cx.invalid(
            packed,
            format!(
                "a packed length that does not match the shape: {bits}-bit codes of a \
                 [{rows}, {cols}] weight need [{rows}, {}] words, but weight_packed is [{out}, {words}]",
                words_for(cols, bits)
            ),
        ));
    }
    let (strategy, groups, geometry) = strategy(cx, scale, rows, cols)?;
    let n_groups = geometry.groups;
    let offset = 1i64 << (bits - 1);
    let zero = match cx.get(&format!("{prefix}.weight_zero_point")) {
        Some(zp) if zp.dtype.0 == Dtype::I32 => {
            expect_shape(
                cx,
                zp,
                &[words_for(rows, bits), n_groups],
                "a packed zero point",
            )?;
            Some(Grid::Packed {
                part: Part::new(zp),
                bits,
                layout: PackedLayout::RowsInWords { groups: n_groups },
                add: -(offset as f64),
            })
        }
        Some(zp) => {
            // Before compressed-tensors 0.9.4, zero points were stored unpacked.
            expect_dtype(cx, zp, &[Dtype::I8], "a zero point")?;
            expect_shape(cx, zp, &scale.shape, "the zero point (same as the scale)")?;
            Some(geometry.grid(Values::Stored(Part::new(zp))))
        }
        None => None,
    };
    let groups = match (&groups, cx.get(&format!("{prefix}.weight_g_idx"))) {
        (Groups::Cols(size), Some(g_idx)) => group_index(cx, Some(g_idx), cols, *size, n_groups)?,
        _ => groups,
    };
    let extra = [".weight_shape", ".weight_g_idx"]
        .iter()
        .filter_map(|s| cx.get(&format!("{prefix}{s}")).map(Part::new));
    Ok(Layout {
        name: format!("{prefix}.weight"),
        shape: vec![rows, cols],
        codes: Codes::Stream {
            part: Part::new(packed),
            bits,
            row_bits: words * 32,
            high_first: false,
            table: integer_table(bits, offset),
        },
        groups,
        scale: geometry.grid(Values::Stored(Part::new(scale))),
        zero,
        bias: None,
        extra_parts: extra.collect(),
        code_type: format!("int{bits}"),
        scheme: format!("ct-int{bits}-{strategy}"),
    }
    .finish())
}

/// nvfp4-pack-quantized (and the mxfp4 variant with E8M0 `u8` scales).
fn fp4(
    cx: &Context<'_>,
    scale: &TensorEntry,
    packed: &TensorEntry,
    prefix: &str,
) -> Result<Quantized> {
    let (rows, half) = matrix(cx, packed, "an FP4 weight_packed")?;
    let cols = half * 2;
    let (values, group, kind, mut extra) = if scale.dtype.0 == Dtype::U8 {
        (Values::E8M0(Part::new(scale)), 32, "mxfp4", Vec::new())
    } else {
        expect_dtype(cx, scale, &[Dtype::F8_E4M3], "an NVFP4 scale")?;
        let global = cx.require(
            scale,
            &format!("{prefix}.weight_global_scale"),
            "NVFP4 scales are divided by a global scale",
        )?;
        expect_dtype(cx, global, &[Dtype::F32], "weight_global_scale")?;
        if global.shape.iter().product::<usize>() != 1 {
            return Err(cx.invalid(global, "must hold one value"));
        }
        let part = Part::new(global);
        let g = part.value(cx.shards(), 0) as f32;
        (
            Values::OverGlobal {
                part: Part::new(scale),
                global: g,
            },
            16,
            "nvfp4",
            vec![part],
        )
    };
    expect_shape(
        cx,
        scale,
        &[rows, cols / group],
        &format!("a {kind} scale (one per {group})"),
    )?;
    if cols % group != 0 {
        return Err(cx.invalid(
            packed,
            format!("{cols} columns are not whole groups of {group}"),
        ));
    }
    if let Some(shape) = cx.get(&format!("{prefix}.weight_shape")) {
        let (r, c) = logical_shape(cx, packed, prefix)?;
        if (r, c) != (rows, cols) {
            return Err(cx.invalid(
                packed,
                format!("weight_shape says [{r}, {c}] but the packed codes hold [{rows}, {cols}]"),
            ));
        }
        extra.push(Part::new(shape));
    }
    Ok(Layout {
        name: format!("{prefix}.weight"),
        shape: vec![rows, cols],
        codes: e2m1_codes(packed, half * 8),
        groups: Groups::Cols(group),
        scale: Grid::Rows {
            values,
            groups: cols / group,
            row_div: 1,
        },
        zero: None,
        bias: None,
        extra_parts: extra,
        code_type: "float4_e2m1fn".into(),
        scheme: format!("ct-{kind}-g{group}"),
    }
    .finish())
}

/// E2M1 codes, two per byte, the even element in the low nibble.
pub(super) fn e2m1_codes(part: &TensorEntry, row_bits: usize) -> Codes {
    Codes::Stream {
        part: Part::new(part),
        bits: 4,
        row_bits,
        high_first: false,
        table: minifloat::E2M1.to_vec().into_boxed_slice(),
    }
}
