//! ggml's tensor types (the element types of GGUF files) and their exact
//! dequantization.
//!
//! A ggml block type stores a row as blocks of 32 to 256 elements, each with
//! its own scales; a block never spans two rows. The decoders follow ggml's
//! reference `dequantize_row_*` operation by operation in f32, so that every
//! value equals the one llama.cpp computes, bit for bit (checked against the
//! `gguf` package, whose numpy dequantization matches ggml's C exactly). The
//! f32 values then widen to f64 without rounding.

#[rustfmt::skip]
mod grids;
mod iquants;
mod kquants;
mod simple;

use safetensors::Dtype;

/// A ggml tensor type as GGUF stores it (`enum ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(u32);

/// How a ggml type's elements are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// One element per value, in a dtype the plain decoders read.
    Elements(Dtype),
    /// Blocks of `elements` values in `bytes` bytes each.
    Blocks { elements: usize, bytes: usize },
}

/// (id, name, storage) of every type tpa reads.
const TYPES: &[(u32, &str, Storage)] = &[
    (0, "f32", Storage::Elements(Dtype::F32)),
    (1, "f16", Storage::Elements(Dtype::F16)),
    (2, "q4_0", blocks(32, 18)),
    (3, "q4_1", blocks(32, 20)),
    (6, "q5_0", blocks(32, 22)),
    (7, "q5_1", blocks(32, 24)),
    (8, "q8_0", blocks(32, 34)),
    (10, "q2_k", blocks(256, 84)),
    (11, "q3_k", blocks(256, 110)),
    (12, "q4_k", blocks(256, 144)),
    (13, "q5_k", blocks(256, 176)),
    (14, "q6_k", blocks(256, 210)),
    (16, "iq2_xxs", blocks(256, 66)),
    (17, "iq2_xs", blocks(256, 74)),
    (18, "iq3_xxs", blocks(256, 98)),
    (19, "iq1_s", blocks(256, 50)),
    (20, "iq4_nl", blocks(32, 18)),
    (21, "iq3_s", blocks(256, 110)),
    (22, "iq2_s", blocks(256, 82)),
    (23, "iq4_xs", blocks(256, 136)),
    (24, "i8", Storage::Elements(Dtype::I8)),
    (25, "i16", Storage::Elements(Dtype::I16)),
    (26, "i32", Storage::Elements(Dtype::I32)),
    (27, "i64", Storage::Elements(Dtype::I64)),
    (28, "f64", Storage::Elements(Dtype::F64)),
    (29, "iq1_m", blocks(256, 56)),
    (30, "bf16", Storage::Elements(Dtype::BF16)),
    (34, "tq1_0", blocks(256, 54)),
    (35, "tq2_0", blocks(256, 66)),
    (39, "mxfp4", blocks(32, 17)),
    (40, "nvfp4", blocks(64, 36)),
];

/// Types that exist but that tpa refuses, with the reason.
const REFUSED: &[(u32, &str, &str)] = &[
    (9, "q8_1", "an activation-only type, not a weight format"),
    (
        15,
        "q8_k",
        "an intermediate type of ggml's dot products, not a weight format",
    ),
    (
        41,
        "q1_0",
        "too new to have a reference dequantizer to check tpa against",
    ),
    (
        42,
        "q2_0",
        "too new to have a reference dequantizer to check tpa against",
    ),
];

const fn blocks(elements: usize, bytes: usize) -> Storage {
    Storage::Blocks { elements, bytes }
}

impl GgmlType {
    /// The type with ggml id `id`, or why tpa does not read it.
    ///
    /// ```
    /// use tpa_core::tensors::GgmlType;
    /// assert_eq!(GgmlType::from_id(12).unwrap().name(), "q4_k");
    /// assert!(GgmlType::from_id(9).unwrap_err().contains("q8_1"));
    /// assert!(GgmlType::from_id(4).is_err());
    /// ```
    pub fn from_id(id: u32) -> Result<GgmlType, String> {
        if TYPES.iter().any(|t| t.0 == id) {
            return Ok(GgmlType(id));
        }
        Err(match REFUSED.iter().find(|t| t.0 == id) {
            Some((_, name, why)) => format!("ggml type {name} ({id}) is not read by tpa: {why}"),
            None => format!("unknown ggml type {id}"),
        })
    }

    fn entry(self) -> &'static (u32, &'static str, Storage) {
        // from_id only makes types that are in TYPES.
        TYPES.iter().find(|t| t.0 == self.0).unwrap_or(&TYPES[0])
    }

    /// The id GGUF stores.
    pub fn id(self) -> u32 {
        self.0
    }

    /// ggml's lower-case name (`q4_k`, `iq2_xxs`, `bf16`).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// How its elements are stored.
    pub fn storage(self) -> Storage {
        self.entry().2
    }

    /// Elements per block (1 for the element types).
    pub fn block_elements(self) -> usize {
        match self.storage() {
            Storage::Elements(_) => 1,
            Storage::Blocks { elements, .. } => elements,
        }
    }

    /// Bytes per block (the element size for the element types).
    pub fn block_bytes(self) -> usize {
        match self.storage() {
            Storage::Elements(dtype) => dtype.bitsize() / 8,
            Storage::Blocks { bytes, .. } => bytes,
        }
    }

    /// The ggml name of an element dtype (`f32`, `bf16`, `i32`).
    pub(crate) fn name_of(dtype: Dtype) -> Option<&'static str> {
        TYPES
            .iter()
            .find(|t| t.2 == Storage::Elements(dtype))
            .map(|t| t.1)
    }

    /// The block decoder, for the block types.
    pub(crate) fn decoder(self) -> Option<BlockDecoder> {
        let Storage::Blocks { elements, bytes } = self.storage() else {
            return None;
        };
        let decode: fn(&[u8], &mut [f32]) = match self.name() {
            "q4_0" => simple::q4_0,
            "q4_1" => simple::q4_1,
            "q5_0" => simple::q5_0,
            "q5_1" => simple::q5_1,
            "q8_0" => simple::q8_0,
            "iq4_nl" => simple::iq4_nl,
            "mxfp4" => simple::mxfp4,
            "nvfp4" => simple::nvfp4,
            "q2_k" => kquants::q2_k,
            "q3_k" => kquants::q3_k,
            "q4_k" => kquants::q4_k,
            "q5_k" => kquants::q5_k,
            "q6_k" => kquants::q6_k,
            "tq1_0" => kquants::tq1_0,
            "tq2_0" => kquants::tq2_0,
            "iq2_xxs" => iquants::iq2_xxs,
            "iq2_xs" => iquants::iq2_xs,
            "iq2_s" => iquants::iq2_s,
            "iq3_xxs" => iquants::iq3_xxs,
            "iq3_s" => iquants::iq3_s,
            "iq1_s" => iquants::iq1_s,
            "iq1_m" => iquants::iq1_m,
            "iq4_xs" => iquants::iq4_xs,
            _ => return None,
        };
        Some(BlockDecoder {
            elements,
            bytes,
            decode,
        })
    }
}

/// Dequantizes whole blocks of one ggml block type.
#[derive(Clone, Copy)]
pub struct BlockDecoder {
    elements: usize,
    bytes: usize,
    decode: fn(&[u8], &mut [f32]),
}

impl std::fmt::Debug for BlockDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockDecoder({}/{} B)", self.elements, self.bytes)
    }
}

/// The largest block: 256 elements.
const MAX_BLOCK: usize = 256;

impl BlockDecoder {
    /// Elements `start .. start + out.len()` of a run of blocks `data`
    /// (element 0 is the first element of `data`'s first block), as f64.
    /// `data` must hold every block the range touches.
    pub(crate) fn decode_range(&self, data: &[u8], start: usize, out: &mut [f64]) {
        let mut values = [0f32; MAX_BLOCK];
        let values = &mut values[..self.elements];
        let mut at = start;
        let mut written = 0;
        while written < out.len() {
            let block = at / self.elements;
            let skip = at % self.elements;
            let take = (self.elements - skip).min(out.len() - written);
            (self.decode)(&data[block * self.bytes..(block + 1) * self.bytes], values);
            for (o, &v) in out[written..written + take]
                .iter_mut()
                .zip(&values[skip..skip + take])
            {
                *o = f64::from(v);
            }
            at += take;
            written += take;
        }
    }

    /// Bytes that hold elements `start .. start + len`, whole blocks.
    pub(crate) fn byte_range(&self, start: usize, len: usize) -> std::ops::Range<usize> {
        let first = start / self.elements;
        let last = (start + len).div_ceil(self.elements);
        first * self.bytes..last * self.bytes
    }

    /// Decodes one block to f32 exactly as ggml does (tests and benchmarks).
    pub fn decode_block(&self, block: &[u8], out: &mut [f32]) {
        (self.decode)(block, out);
    }
}

/// Codes packed two to a byte as ggml's 4-bit types pack them: byte j holds
/// element j in its low nibble and element j + `qs.len()` in its high one;
/// `value` turns a nibble into its element.
#[inline(always)]
pub(super) fn nibbles(qs: &[u8], y: &mut [f32], value: impl Fn(u8) -> f32) {
    let half = qs.len();
    for (j, &q) in qs.iter().enumerate() {
        y[j] = value(q & 0xF);
        y[j + half] = value(q >> 4);
    }
}

/// An IEEE half stored little endian at `b[at..at + 2]`, widened exactly.
#[inline(always)]
pub(super) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// A little-endian u16 at `b[at..]`.
#[inline(always)]
pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A little-endian u32 at `b[at..]`.
#[inline(always)]
pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
