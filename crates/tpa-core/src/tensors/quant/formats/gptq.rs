//! GPTQ (AutoGPTQ, GPTQModel) and AWQ GEMM. Both store the weight
//! transposed, `Wt[in, out]`, with `Wt[i, o] = (q − z) · s` per group of
//! inputs, and both mark a weight with `qweight`.
//!
//! * GPTQ: `qweight` I32 `[in·b/32, out]`, packed along in;
//!   `qzeros` I32 `[groups, out·b/32]`, packed along out, holding zero − 1
//!   in v1 (`gptq`) and the zero itself in `gptq_v2`; `scales [groups, out]`;
//!   `g_idx [in]` gives each input's group (`desc_act`), in original order
//!   (`qlinear_cuda.py`; GPTQModel `dequantize_weight`).
//! * AWQ: `qweight` I32 `[in, out/8]`, packed along out in the order
//!   [0, 2, 4, 6, 1, 3, 5, 7]; `qzeros [in/g, out/8]` likewise; no offset
//!   (`awq/utils/packing_utils.py` `dequantize_gemm`).

use safetensors::Dtype;

use super::{FLOATS, Layout, expect_dtype, expect_shape, group_index, matrix};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::codes::{Codes, integer_table};
use crate::tensors::quant::detect::{Context, QuantConfig};
use crate::tensors::quant::grid::{Grid, PackedLayout, Values};
use crate::tensors::quant::part::Part;

/// GPTQ's `checkpoint_format` (or GPTQModel's `format`).
fn gptq_format(config: &QuantConfig) -> &str {
    config
        .str("checkpoint_format")
        .or_else(|| config.str("format"))
        .unwrap_or("gptq")
}

pub(super) fn check_config(config: &QuantConfig) -> Result<()> {
    let format = gptq_format(config);
    if !matches!(format, "gptq" | "gptq_v2") {
        return Err(config.unsupported(format!(
            "GPTQ checkpoint_format {format:?} (only gptq and gptq_v2 are read)"
        )));
    }
    if let Some(pack) = config.str("pack_dtype").filter(|p| !p.ends_with("int32")) {
        return Err(config.unsupported(format!("GPTQ pack_dtype {pack:?} (only int32 words)")));
    }
    match config.int(&["bits", "w_bit"]) {
        Some(2 | 4 | 8) => Ok(()),
        Some(3) => Err(config.unsupported(
            "GPTQ 3-bit (its codes straddle words; not verified against a reference yet)",
        )),
        Some(b) => Err(config.error(format!("GPTQ bits {b} is not 2, 3, 4 or 8"))),
        None => Err(config.error("a GPTQ configuration needs \"bits\"")),
    }
}

pub(super) fn check_awq_config(config: &QuantConfig) -> Result<()> {
    let version = config.str("version").unwrap_or("gemm").to_ascii_lowercase();
    if version != "gemm" {
        return Err(config.unsupported(format!("AWQ version {version:?} (only GEMM is read)")));
    }
    match config.int(&["bits", "w_bit"]) {
        None | Some(4) => Ok(()),
        Some(b) => Err(config.error(format!("AWQ GEMM is 4-bit only, but bits is {b}"))),
    }
}

/// `gptq` or `awq`, from the configuration (which a `qweight` needs).
pub(super) fn family(cx: &Context<'_>, qweight: &TensorEntry) -> Result<&'static str> {
    match cx.method() {
        Some("gptq") => Ok("gptq"),
        Some("awq") => Ok("awq"),
        other => Err(cx.invalid(
            qweight,
            format!(
                "a GPTQ/AWQ qweight needs quant_method \"gptq\" or \"awq\" in config.json \
                 (or a quantize_config.json) to be read, but {}",
                match other {
                    Some(m) => format!("the configuration names {m:?}"),
                    None => "there is none".into(),
                }
            ),
        )),
    }
}

pub(super) fn detect(
    cx: &Context<'_>,
    qweight: &TensorEntry,
    prefix: &str,
    family: &str,
) -> Result<Quantized> {
    let config = cx
        .config
        .ok_or_else(|| cx.invalid(qweight, "no configuration"))?;
    expect_dtype(cx, qweight, &[Dtype::I32], "qweight")?;
    let (qrows, qcols) = matrix(cx, qweight, "qweight")?;
    let scales = cx.require(
        qweight,
        &format!("{prefix}.scales"),
        "GPTQ/AWQ weights are scaled",
    )?;
    expect_dtype(cx, scales, FLOATS, "scales")?;
    let qzeros = cx.require(
        qweight,
        &format!("{prefix}.qzeros"),
        "GPTQ/AWQ weights have zero points",
    )?;
    expect_dtype(cx, qzeros, &[Dtype::I32], "qzeros")?;
    let awq = family == "awq";
    let bits = if awq {
        4
    } else {
        config.int(&["bits"]).unwrap_or(4) as u32
    };
    let lanes = (32 / bits) as usize;
    let (ins, outs) = if awq {
        (qrows, qcols * 8)
    } else {
        (qrows * lanes, qcols)
    };
    let group = match config.int(&["group_size", "q_group_size"]) {
        Some(g) if g > 0 => g as usize,
        Some(-1) | None => ins,
        Some(g) => return Err(config.error(format!("group_size {g} is not positive or −1"))),
    };
    let n_groups = ins.div_ceil(group.max(1));
    let g_idx = cx.get(&format!("{prefix}.g_idx"));
    if let Some(g) = g_idx {
        // One group index per input, in original (unpermuted) input order.
        expect_shape(
            cx,
            g,
            &[ins],
            &format!("g_idx of a qweight of {ins} inputs"),
        )?;
    }
    expect_shape(
        cx,
        scales,
        &[n_groups, outs],
        &format!("scales of a [{outs}, {ins}] weight in groups of {group}"),
    )?;
    let words = if awq {
        outs / 8
    } else {
        outs * bits as usize / 32
    };
    if !awq && (outs * bits as usize) % 32 != 0 {
        return Err(cx.invalid(
            qzeros,
            format!("{outs} outputs do not pack into whole words"),
        ));
    }
    expect_shape(cx, qzeros, &[n_groups, words], "qzeros")?;
    let v1 = !awq && gptq_format(config) == "gptq";
    let codes = if awq {
        Codes::AwqAlongOut {
            part: Part::new(qweight),
            words_per_row: words,
            table: integer_table(4, 0),
        }
    } else {
        Codes::PackedAlongIn {
            part: Part::new(qweight),
            bits,
            out: outs,
            table: integer_table(bits, 0),
        }
    };
    let groups = group_index(cx, g_idx, ins, group, n_groups)?;
    let group_name = if group >= ins {
        "channel".into()
    } else {
        format!("g{group}")
    };
    Ok(Layout {
        name: format!("{prefix}.weight"),
        shape: vec![outs, ins],
        codes,
        groups,
        scale: Grid::Groups {
            values: Values::Stored(Part::new(scales)),
            rows: outs,
        },
        zero: Some(Grid::Packed {
            part: Part::new(qzeros),
            bits,
            layout: PackedLayout::GroupsOfWords { words, awq },
            add: if v1 { 1.0 } else { 0.0 },
        }),
        bias: None,
        extra_parts: g_idx.map(Part::new).into_iter().collect(),
        code_type: format!("uint{bits}"),
        scheme: format!("{family}-int{bits}-{group_name}"),
    }
    .finish())
}
