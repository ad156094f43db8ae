//! gpt-oss MXFP4 experts (transformers `integrations/mxfp4.py`
//! `convert_moe_packed_tensors`): `X_blocks` U8 `[E, out, in/32, 16]`,
//! 32 E2M1 codes per 16 bytes, element 2k in the low nibble, times
//! 2^(`X_scales` − 127). The logical weight `X` is `[E, out, in]`; for
//! `gate_up_proj` its even rows are gate and its odd rows up.

use safetensors::Dtype;

use super::{Layout, expect_dtype, expect_shape};
use crate::error::Result;
use crate::model::TensorEntry;
use crate::tensors::quant::Quantized;
use crate::tensors::quant::detect::Context;
use crate::tensors::quant::grid::{Grid, Groups, Values};
use crate::tensors::quant::part::Part;

pub(super) fn detect(
    cx: &Context<'_>,
    blocks: &TensorEntry,
    name: &str,
) -> Result<Option<Quantized>> {
    let Some(scales) = cx.get(&format!("{name}_scales")) else {
        // A `_blocks` tensor of another kind: only the pair marks MXFP4.
        return Ok(None);
    };
    expect_dtype(cx, blocks, &[Dtype::U8], "MXFP4 blocks")?;
    expect_dtype(cx, scales, &[Dtype::U8], "MXFP4 scales")?;
    let shape = &blocks.shape;
    let [lead @ .., groups, 16] = shape.as_slice() else {
        return Err(cx.invalid(
            blocks,
            format!("MXFP4 blocks must be [..., out, in/32, 16], but they are {shape:?}"),
        ));
    };
    if lead.is_empty() {
        return Err(cx.invalid(blocks, "MXFP4 blocks need an output dimension"));
    }
    let mut grid_shape = lead.to_vec();
    grid_shape.push(*groups);
    expect_shape(
        cx,
        scales,
        &grid_shape,
        "MXFP4 scales (one per block of 32)",
    )?;
    let mut logical = lead.to_vec();
    logical.push(groups * 32);
    Ok(Some(
        Layout {
            name: name.to_owned(),
            shape: logical,
            codes: super::compressed::e2m1_codes(blocks, groups * 16 * 8),
            groups: Groups::Cols(32),
            scale: Grid::Rows {
                values: Values::E8M0(Part::new(scales)),
                groups: *groups,
                row_div: 1,
            },
            zero: None,
            bias: None,
            extra_parts: Vec::new(),
            code_type: "float4_e2m1fn".into(),
            scheme: "mxfp4-b32".into(),
        }
        .finish(),
    ))
}
