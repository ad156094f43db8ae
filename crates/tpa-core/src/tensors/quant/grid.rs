//! Scales, zero points and biases: one value per group of a weight.

use super::codes::AWQ_REVERSE_ORDER;
use super::part::Part;
use crate::model::Shard;
use crate::tensors::minifloat;

/// How the stored values of a grid become numbers.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    /// As stored: f32/bf16/f16/fp8 scales, int8 zero points.
    Stored(Part),
    /// `u8` exponents of E8M0 scales: 2^(u − 127) (MXFP4).
    E8M0(Part),
    /// compressed-tensors NVFP4: `scale / global_scale`, divided in f32 as
    /// its `_dequantize` does, so that the weight is the one it computes.
    OverGlobal { part: Part, global: f32 },
    /// bitsandbytes LLM.int8: `SCB / 127`.
    Divided { part: Part, divisor: f64 },
    /// bitsandbytes double quantization: `absmax = table[code] ·
    /// nested_absmax[j / block] + offset`, in f32 as bitsandbytes computes it.
    Nested {
        codes: Part,
        table: Vec<f32>,
        absmax: Part,
        block: usize,
        offset: f32,
    },
}

impl Values {
    fn get(&self, shards: &[Shard], index: usize) -> f64 {
        match self {
            Values::Stored(part) => part.value(shards, index),
            Values::E8M0(part) => minifloat::F8_E8M0FNU[usize::from(part.bytes(shards)[index])],
            Values::OverGlobal { part, global } => {
                f64::from(part.value(shards, index) as f32 / global)
            }
            Values::Divided { part, divisor } => part.value(shards, index) / divisor,
            Values::Nested {
                codes,
                table,
                absmax,
                block,
                offset,
            } => {
                let code = usize::from(codes.bytes(shards)[index]);
                let outer = absmax.value(shards, index / block) as f32;
                f64::from(table[code] * outer + offset)
            }
        }
    }
}

/// Where the value for (row, group) of a weight is stored.
#[derive(Debug, Clone)]
pub(crate) enum Grid {
    /// Element `[row / row_div, group]` of a `[rows, groups]` tensor;
    /// `row_div = usize::MAX` for one value per tensor.
    Rows {
        values: Values,
        groups: usize,
        row_div: usize,
    },
    /// Element `[group, row]` of a `[groups, rows]` tensor (GPTQ/AWQ scales).
    Groups { values: Values, rows: usize },
    /// Integer zero points packed into i32 words along the rows:
    /// compressed-tensors `[ceil(out·b/32), groups]` as bitstreams, or
    /// GPTQ/AWQ `[groups, out·b/32]` in lanes (AWQ with its nibble order). `add` is
    /// added to the stored field (GPTQ v1 stores zero − 1; compressed-tensors
    /// stores zero + 2^(b−1)).
    Packed {
        part: Part,
        bits: u32,
        layout: PackedLayout,
        add: f64,
    },
}

/// The two ways formats pack zero points into words.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PackedLayout {
    /// `[ceil(rows·b/32), groups]`: each column a little-endian bitstream
    /// down the rows (compressed-tensors' dense `pack_to_int32(packed_dim=0)`).
    RowsInWords { groups: usize },
    /// `[groups, rows/pf]`, lane `row mod pf` or AWQ's order.
    GroupsOfWords { words: usize, awq: bool },
}

impl Grid {
    /// The value for logical row `row` and group `group`.
    pub(crate) fn at(&self, shards: &[Shard], row: usize, group: usize) -> f64 {
        match self {
            Grid::Rows {
                values,
                groups,
                row_div,
            } => values.get(shards, (row / row_div) * groups + group),
            Grid::Groups { values, rows } => values.get(shards, group * rows + row),
            Grid::Packed {
                part,
                bits,
                layout,
                add,
            } => {
                let bytes = part.bytes(shards);
                let mask = (1u64 << bits) - 1;
                let (word, lane) = match *layout {
                    PackedLayout::RowsInWords { groups } => {
                        // Column `group` is a bitstream down the rows; a
                        // field may continue in the next row's word.
                        let bit = row * *bits as usize;
                        let at = (bit / 32) * groups + group;
                        let low = u64::from(Part::word(bytes, at));
                        let high = if bit % 32 + *bits as usize > 32 {
                            u64::from(Part::word(bytes, at + groups))
                        } else {
                            0
                        };
                        let field = ((low | high << 32) >> (bit % 32)) & mask;
                        return field as f64 + add;
                    }
                    PackedLayout::GroupsOfWords { words, awq } => {
                        let lanes = (32 / bits) as usize;
                        let lane = if awq {
                            AWQ_REVERSE_ORDER[row % 8]
                        } else {
                            (row % lanes) as u32
                        };
                        (group * words + row / lanes, lane)
                    }
                };
                let field = (Part::word(bytes, word) >> (lane * bits)) & ((1u32 << bits) - 1);
                f64::from(field) + add
            }
        }
    }

    pub(crate) fn parts(&self) -> Vec<&Part> {
        match self {
            Grid::Rows { values, .. } | Grid::Groups { values, .. } => match values {
                Values::Stored(p)
                | Values::E8M0(p)
                | Values::OverGlobal { part: p, .. }
                | Values::Divided { part: p, .. } => vec![p],
                Values::Nested { codes, absmax, .. } => vec![codes, absmax],
            },
            Grid::Packed { part, .. } => vec![part],
        }
    }
}

/// Which group column `c` of row `r` belongs to.
#[derive(Debug, Clone)]
pub(crate) enum Groups {
    /// Groups of `size` consecutive columns.
    Cols(usize),
    /// `g_idx[c]` (activation order), read and validated once at detection
    /// (one entry per input column, so small next to the weight).
    Index(Box<[u32]>),
    /// Blocks of `size` elements of the flattened weight (bitsandbytes);
    /// the grid's row is then always 0.
    Flat { size: usize, cols: usize },
}
