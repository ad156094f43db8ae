//! Reading quantized weights as the weight the model computes with.
//!
//! A quantized checkpoint stores a weight as small codes plus sidecar
//! tensors (scales, zero points, group indices). Opening a model finds them from
//! each weight's siblings, as the formats' own loaders do, and checks the
//! result against `config.json`. A [`Quantized`] then decodes any row
//! segment of the logical `[out, in]` weight (`[E, out, in]` for stacked
//! experts) exactly in f64:
//!
//! `W[r, c] = (code(r, c) − zero(r, g)) · scale(r, g) + bias(r, g)`,
//!
//! with g the group of column c. Each format only says where its codes and
//! grids are (module `formats`); the arithmetic is shared. Every product a format
//! defines is exact in f64 (small integers or 2–4-bit-mantissa floats times
//! f32/f16/bf16 scales), so nothing is rounded that the model would not round.

mod codes;
mod detect;
mod formats;
mod grid;
pub(crate) mod part;

use std::ops::Range;

pub(crate) use detect::{QuantConfig, detect};

use codes::Codes;
use grid::{Grid, Groups};
use part::Part;

use crate::model::{Shard, TensorEntry};
use crate::tensors::ggml::{BlockDecoder, GgmlType};

/// One quantized weight: where its codes and grids are, and how to read them.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The logical weight: its name and shape as the unquantized model has
    /// them (`dtype`, `shard` and `range` are those of the codes).
    pub(crate) logical: TensorEntry,
    pub(crate) decoder: Decoder,
    /// Every stored tensor folded into this weight, the codes first.
    pub(crate) parts: Vec<Part>,
    code_type: String,
    scheme: String,
}

/// How a quantized weight's values are computed.
// One per weight, held by the model: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Decoder {
    /// Codes with scales (and zero points, biases) in grids of their own.
    Grouped {
        codes: Codes,
        groups: Groups,
        scale: Grid,
        zero: Option<Grid>,
        bias: Option<Grid>,
    },
    /// ggml blocks, which carry their scales: a GGUF tensor (its one part).
    Blocks(BlockDecoder),
}

impl Quantized {
    /// The stored code type in PyTorch spelling where one exists
    /// (`float8_e4m3fn`, `int4`, `uint4`, `int8`, `nf4`, `float4_e2m1fn`).
    pub fn code_type(&self) -> &str {
        &self.code_type
    }

    /// The scheme, e.g. `fp8-block-128x128`, `gptq-int4-g128`, `mlx-affine-int4-g64`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The stored tensors folded into this weight (codes first).
    pub fn stored_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|p| p.entry.name.as_str())
    }

    /// Bytes stored for codes, scales, zero points and other sidecars.
    pub fn stored_bytes(&self) -> usize {
        self.parts.iter().map(|p| p.entry.range.len()).sum()
    }

    fn cols(&self) -> usize {
        self.logical.shape.last().copied().unwrap_or(1)
    }

    /// A GGUF tensor of block type `kind` stored as `part` (the logical
    /// entry has the weight's shape); `None` for an element type.
    pub(crate) fn ggml(logical: TensorEntry, part: Part, kind: GgmlType) -> Option<Quantized> {
        Some(Quantized {
            logical,
            decoder: Decoder::Blocks(kind.decoder()?),
            parts: vec![part],
            code_type: kind.name().to_owned(),
            scheme: format!("gguf-{}", kind.name()),
        })
    }

    /// Decodes `W[row, col .. col + out.len()]` (row counted across experts).
    pub(crate) fn decode_row(&self, shards: &[Shard], row: usize, col: usize, out: &mut [f64]) {
        let Decoder::Grouped {
            codes,
            groups,
            scale,
            zero,
            bias,
        } = &self.decoder
        else {
            self.decode_range(
                shards,
                row * self.cols() + col..row * self.cols() + col + out.len(),
                out,
            );
            return;
        };
        codes.decode(shards, row, col, out);
        let n = out.len();
        let mut j = 0;
        while j < n {
            let c = col + j;
            let (grid_row, group, run) = match groups {
                Groups::Cols(size) => (row, c / size, (size - c % size).min(n - j)),
                Groups::Flat { size, cols } => {
                    let k = row * cols + c;
                    (0, k / size, (size - k % size).min(n - j))
                }
                Groups::Index(g_idx) => {
                    let group = g_idx[c];
                    let run = g_idx[c..col + n]
                        .iter()
                        .take_while(|&&g| g == group)
                        .count();
                    (row, group as usize, run)
                }
            };
            let s = scale.at(shards, grid_row, group);
            let z = zero.as_ref().map_or(0.0, |g| g.at(shards, grid_row, group));
            let b = bias.as_ref().map_or(0.0, |g| g.at(shards, grid_row, group));
            for x in &mut out[j..j + run] {
                *x = (*x - z) * s + b;
            }
            j += run;
        }
    }

    /// Decodes logical elements `range` (row-major order) into `out`.
    pub(crate) fn decode_range(&self, shards: &[Shard], range: Range<usize>, out: &mut [f64]) {
        if let Decoder::Blocks(blocks) = &self.decoder {
            blocks.decode_range(self.parts[0].bytes(shards), range.start, out);
            return;
        }
        let cols = self.cols().max(1);
        let mut at = range.start;
        let mut written = 0;
        while at < range.end {
            let (row, col) = (at / cols, at % cols);
            let len = (cols - col).min(range.end - at);
            self.decode_row(shards, row, col, &mut out[written..written + len]);
            at += len;
            written += len;
        }
    }

    /// Releases the file pages of logical elements `range`: the codes' own
    /// rows where they are contiguous, and everything once the range reaches
    /// the weight's end (passes go front to back; codes packed across rows,
    /// as GPTQ's, are only released then, else they would stay resident).
    pub(crate) fn release(&self, shards: &[Shard], range: Range<usize>) {
        let numel: usize = self.logical.shape.iter().product();
        let codes = match &self.decoder {
            Decoder::Blocks(blocks) => {
                let bytes = blocks.byte_range(range.start, range.len());
                self.parts[0].release(shards, bytes.start, bytes.end);
                return;
            }
            Decoder::Grouped { codes, .. } => codes,
        };
        if range.end >= numel {
            for part in &self.parts {
                part.release(shards, 0, part.entry.range.len());
            }
        } else if let Some(row_bytes) = codes.row_bytes() {
            let cols = self.cols().max(1);
            let (first, last) = (range.start / cols, range.end.div_ceil(cols));
            codes
                .part()
                .release(shards, first * row_bytes, last * row_bytes);
        }
    }
}
