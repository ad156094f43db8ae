//! Where each format keeps its codes and grids (see `quantized.md` in the
//! project notes for the byte-level sources). A detector runs at the
//! tensor that marks its format (a scale, `qweight`, `absmax`, `_blocks`)
//! and returns the weight it belongs to, after checking every sibling's
//! dtype and shape.

mod bnb;
mod compressed;
mod fp8;
mod gpt_oss;
mod gptq;
mod mlx;

use safetensors::Dtype;

use super::codes::Codes;
use super::detect::{Context, QuantConfig};
use super::grid::{Grid, Groups};
use super::part::Part;
use super::{Decoder, Quantized};
use crate::error::Result;
use crate::model::TensorEntry;

/// Rejects configurations that name a layout tpa does not read.
pub(super) fn check_config(config: &QuantConfig) -> Result<()> {
    match config.method.as_str() {
        "gptq" => gptq::check_config(config),
        "awq" => gptq::check_awq_config(config),
        "compressed-tensors" => compressed::check_config(config),
        "mlx" => mlx::check_config(config),
        _ => Ok(()),
    }
}

/// The quantized weight that `entry` marks, with its family.
pub(super) fn detect_at(
    cx: &Context<'_>,
    entry: &TensorEntry,
) -> Result<Option<(&'static str, Quantized)>> {
    let name = entry.name.as_str();
    let found = if let Some(p) = name.strip_suffix(".weight_scale_inv") {
        ("fp8", fp8::block(cx, entry, p)?)
    } else if let Some(p) = name.strip_suffix(".weight_scale") {
        ("compressed-tensors", compressed::detect(cx, entry, p)?)
    } else if let Some(p) = name.strip_suffix(".qweight") {
        let family = gptq::family(cx, entry)?;
        (family, gptq::detect(cx, entry, p, family)?)
    } else if let Some(p) = name.strip_suffix(".scales") {
        // GPTQ and AWQ have `.scales` too; their `.qweight` marks them.
        if cx.get(&format!("{p}.qweight")).is_some() {
            return Ok(None);
        }
        ("mlx", mlx::detect(cx, entry, p)?)
    } else if let Some(p) = name.strip_suffix(".weight.absmax") {
        ("bitsandbytes", bnb::four_bit(cx, entry, p)?)
    } else if let Some(p) = name.strip_suffix(".SCB") {
        ("bitsandbytes", bnb::int8(cx, entry, p)?)
    } else if let Some(p) = name.strip_suffix("_blocks") {
        return Ok(gpt_oss::detect(cx, entry, p)?.map(|q| ("mxfp4", q)));
    } else {
        return Ok(None);
    };
    Ok(Some(found))
}

/// The pieces of a quantized weight, before they are checked into one.
pub(super) struct Layout {
    pub name: String,
    pub shape: Vec<usize>,
    pub codes: Codes,
    pub groups: Groups,
    pub scale: Grid,
    pub zero: Option<Grid>,
    pub bias: Option<Grid>,
    /// Sidecars read only at detection (`weight_shape`, tables) that still
    /// count as stored bytes of the weight.
    pub extra_parts: Vec<Part>,
    pub code_type: String,
    pub scheme: String,
}

impl Layout {
    pub fn finish(self) -> Quantized {
        let codes_entry = &self.codes.part().entry;
        let logical = TensorEntry {
            name: self.name,
            dtype: codes_entry.dtype,
            shape: self.shape,
            shard: codes_entry.shard,
            range: codes_entry.range.clone(),
        };
        let mut parts = vec![self.codes.part().clone()];
        for grid in [Some(&self.scale), self.zero.as_ref(), self.bias.as_ref()]
            .into_iter()
            .flatten()
        {
            parts.extend(grid.parts().into_iter().cloned());
        }
        parts.extend(self.extra_parts);
        Quantized {
            logical,
            decoder: Decoder::Grouped {
                codes: self.codes,
                groups: self.groups,
                scale: self.scale,
                zero: self.zero,
                bias: self.bias,
            },
            parts,
            code_type: self.code_type,
            scheme: self.scheme,
        }
    }
}

/// Fails unless `entry` has one of `dtypes`.
pub(super) fn expect_dtype(
    cx: &Context<'_>,
    entry: &TensorEntry,
    dtypes: &[Dtype],
    role: &str,
) -> Result<()> {
    if dtypes.contains(&entry.dtype.0) {
        return Ok(());
    }
    let names: Vec<String> = dtypes
        .iter()
        .map(|d| crate::tensors::DType(*d).to_string())
        .collect();
    Err(cx.invalid(
        entry,
        format!(
            "{role} must be {}, but it is {}",
            names.join(" or "),
            entry.dtype
        ),
    ))
}

/// Fails unless `entry` has exactly `shape`.
pub(super) fn expect_shape(
    cx: &Context<'_>,
    entry: &TensorEntry,
    shape: &[usize],
    role: &str,
) -> Result<()> {
    if entry.shape == shape {
        return Ok(());
    }
    Err(cx.invalid(
        entry,
        format!(
            "{role} must have shape {shape:?}, but it has {:?}",
            entry.shape
        ),
    ))
}

/// `[rows, cols]` of a 2-D tensor, or an error naming it.
pub(super) fn matrix(cx: &Context<'_>, entry: &TensorEntry, role: &str) -> Result<(usize, usize)> {
    match entry.shape[..] {
        [rows, cols] => Ok((rows, cols)),
        ref other => Err(cx.invalid(
            entry,
            format!("{role} must be 2-D, but it has shape {other:?}"),
        )),
    }
}

/// Float types scales are stored in.
pub(super) const FLOATS: &[Dtype] = &[Dtype::F32, Dtype::BF16, Dtype::F16];

/// Checks that group indices are valid and returns how columns map to
/// groups: plain groups of `size` when `g_idx[i] = i / size` throughout,
/// else the index itself. The caller keeps the `g_idx` tensor among the
/// weight's stored parts.
pub(super) fn group_index(
    cx: &Context<'_>,
    g_idx: Option<&TensorEntry>,
    cols: usize,
    size: usize,
    groups: usize,
) -> Result<Groups> {
    let Some(entry) = g_idx else {
        return Ok(Groups::Cols(size));
    };
    expect_dtype(cx, entry, &[Dtype::I32, Dtype::I64], "the group index")?;
    expect_shape(cx, entry, &[cols], "the group index")?;
    let part = Part::new(entry);
    let mut index = Vec::with_capacity(cols);
    for i in 0..cols {
        let g = part.value(cx.shards(), i);
        if !(g >= 0.0 && (g as usize) < groups) {
            return Err(cx.invalid(
                entry,
                format!("entry {i} is {g}, outside the {groups} groups of the scales"),
            ));
        }
        index.push(g as u32);
    }
    Ok(
        if index
            .iter()
            .enumerate()
            .all(|(i, &g)| g as usize == i / size)
        {
            Groups::Cols(size)
        } else {
            Groups::Index(index.into_boxed_slice())
        },
    )
}
