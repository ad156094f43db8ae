//! Where the code of logical element (row, col) sits, and what it means.
//!
//! Every format stores small codes; `table` maps a code to its value before
//! scaling: `code − offset` for integer formats, the element format's value
//! for FP8/FP4/NF4. The layouts are the three the formats use.

use super::part::Part;
use crate::model::Shard;

/// The packed codes of a quantized weight.
#[derive(Debug, Clone)]
pub(crate) enum Codes {
    /// Row-major bit fields, least significant bit first: element (r, c) is
    /// bits `r·row_bits + c·bits ..` of the tensor's bytes (little-endian
    /// words are then just bytes). With `high_first`, the two 4-bit fields of
    /// a byte are swapped (bitsandbytes puts element 2k in the high nibble).
    /// Covers FP8/INT8 bytes, MLX words and bitstreams, compressed-tensors
    /// words, E2M1 nibbles and bitsandbytes' flat nibbles.
    Stream {
        part: Part,
        bits: u32,
        row_bits: usize,
        high_first: bool,
        table: Box<[f64]>,
    },
    /// GPTQ `qweight [in·b/32, out]`: logical (o, i) is lane `i mod (32/b)`
    /// of word `[i / (32/b), o]`.
    PackedAlongIn {
        part: Part,
        bits: u32,
        out: usize,
        table: Box<[f64]>,
    },
    /// AWQ `qweight [in, out/8]`: logical (o, i) is nibble
    /// `AWQ_REVERSE_ORDER[o mod 8]` of word `[i, o / 8]`.
    AwqAlongOut {
        part: Part,
        words_per_row: usize,
        table: Box<[f64]>,
    },
}

/// The nibble that holds output `8c + j` in an AWQ word (`awq/utils/packing_utils.py`).
pub(crate) const AWQ_REVERSE_ORDER: [u32; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// `code − offset` for every code of `bits` bits.
pub(crate) fn integer_table(bits: u32, offset: i64) -> Box<[f64]> {
    (0..1i64 << bits).map(|q| (q - offset) as f64).collect()
}

/// A byte reinterpreted as a signed 8-bit integer.
pub(crate) fn int8_table() -> Box<[f64]> {
    (0..256u32).map(|q| f64::from(q as u8 as i8)).collect()
}

impl Codes {
    /// One byte per element, `row_bytes` bytes per row, each byte mapped
    /// through `table` (FP8, INT8).
    pub(crate) fn bytes(part: Part, row_bytes: usize, table: Box<[f64]>) -> Codes {
        Codes::Stream {
            part,
            bits: 8,
            row_bits: row_bytes * 8,
            high_first: false,
            table,
        }
    }

    pub(crate) fn part(&self) -> &Part {
        match self {
            Codes::Stream { part, .. }
            | Codes::PackedAlongIn { part, .. }
            | Codes::AwqAlongOut { part, .. } => part,
        }
    }

    /// Whether logical row r's codes are one contiguous byte range.
    pub(crate) fn row_bytes(&self) -> Option<usize> {
        match self {
            Codes::Stream { row_bits, .. } if row_bits % 8 == 0 => Some(row_bits / 8),
            _ => None,
        }
    }

    /// Writes the code values of `W[row, col .. col + out.len()]` to `out`.
    pub(crate) fn decode(&self, shards: &[Shard], row: usize, col: usize, out: &mut [f64]) {
        match self {
            Codes::Stream {
                part,
                bits,
                row_bits,
                high_first,
                table,
            } => {
                let bytes = part.bytes(shards);
                let base = row * row_bits + col * *bits as usize;
                if *bits == 8 {
                    let from = base / 8;
                    let n = out.len();
                    for (o, &b) in out.iter_mut().zip(&bytes[from..from + n]) {
                        *o = table[usize::from(b)];
                    }
                } else {
                    let mask = (1u16 << bits) - 1;
                    let swap = if *high_first { 4 } else { 0 };
                    for (j, o) in out.iter_mut().enumerate() {
                        let mut p = base + j * *bits as usize;
                        if swap != 0 {
                            p ^= 4;
                        }
                        let lo = u16::from(bytes[p >> 3]);
                        let hi = bytes.get((p >> 3) + 1).map_or(0, |&b| u16::from(b));
                        let q = ((lo | hi << 8) >> (p & 7)) & mask;
                        *o = table[usize::from(q)];
                    }
                }
            }
            Codes::PackedAlongIn {
                part,
                bits,
                out: outs,
                table,
            } => {
                let bytes = part.bytes(shards);
                let lanes = (32 / bits) as usize;
                let mask = (1u32 << bits) - 1;
                for (j, o) in out.iter_mut().enumerate() {
                    let i = col + j;
                    let word = Part::word(bytes, (i / lanes) * outs + row);
                    let q = (word >> ((i % lanes) as u32 * bits)) & mask;
                    *o = table[q as usize];
                }
            }
            Codes::AwqAlongOut {
                part,
                words_per_row,
                table,
            } => {
                let bytes = part.bytes(shards);
                let shift = 4 * AWQ_REVERSE_ORDER[row % 8];
                for (j, o) in out.iter_mut().enumerate() {
                    let word = Part::word(bytes, (col + j) * words_per_row + row / 8);
                    *o = table[((word >> shift) & 0xF) as usize];
                }
            }
        }
    }
}
