//! Stored element types and their exact conversion to `f64`.

use std::fmt;

use safetensors::Dtype;

use super::minifloat;

/// The element type of a stored tensor.
///
/// `Display` gives the PyTorch name (`bfloat16`, `float8_e4m3fn`, `int64`),
/// because that is what users of the original tool and of PyTorch read.
///
/// ```
/// use tpa_core::tensors::DType;
/// assert_eq!(DType::from(safetensors::Dtype::BF16).to_string(), "bfloat16");
/// assert_eq!(DType::from(safetensors::Dtype::F8_E4M3).to_string(), "float8_e4m3fn");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DType(pub Dtype);

impl From<Dtype> for DType {
    fn from(dtype: Dtype) -> Self {
        DType(dtype)
    }
}

impl DType {
    /// The PyTorch spelling of this dtype.
    pub fn torch_name(self) -> &'static str {
        match self.0 {
            Dtype::BOOL => "bool",
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::U16 => "uint16",
            Dtype::I16 => "int16",
            Dtype::U32 => "uint32",
            Dtype::I32 => "int32",
            Dtype::U64 => "uint64",
            Dtype::I64 => "int64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::F8_E4M3 => "float8_e4m3fn",
            Dtype::F8_E5M2 => "float8_e5m2",
            Dtype::F8_E4M3FNUZ => "float8_e4m3fnuz",
            Dtype::F8_E5M2FNUZ => "float8_e5m2fnuz",
            Dtype::F8_E8M0 => "float8_e8m0fnu",
            Dtype::F4 => "float4_e2m1fn_x2",
            Dtype::F6_E2M3 => "float6_e2m3fn",
            Dtype::F6_E3M2 => "float6_e3m2fn",
            Dtype::C64 => "complex64",
            _ => "unknown",
        }
    }

    /// Bits per element as stored.
    pub fn bits(self) -> usize {
        self.0.bitsize()
    }

    /// Whether [`decode`] can turn this dtype into numbers. Packed sub-byte
    /// floats (F4, F6) and complex numbers cannot.
    pub fn is_decodable(self) -> bool {
        decoder(self.0).is_some()
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.torch_name())
    }
}

/// Converts little-endian stored elements to `f64`, exactly wherever `f64`
/// can hold the value (every float type, and integers up to 2^53 in size).
///
/// `bytes` must hold exactly `out.len()` elements of `dtype`. Returns `false`
/// (and leaves `out` alone) when the dtype cannot be decoded.
///
/// ```
/// use tpa_core::tensors::{decode, DType};
/// let stored = half::bf16::from_f32(-1.5).to_le_bytes();
/// let mut out = [0.0f64; 1];
/// assert!(decode(DType(safetensors::Dtype::BF16), &stored, &mut out));
/// assert_eq!(out, [-1.5]);
/// ```
pub fn decode(dtype: DType, bytes: &[u8], out: &mut [f64]) -> bool {
    match decoder(dtype.0) {
        Some(decode) => {
            debug_assert_eq!(bytes.len() * 8, out.len() * dtype.bits());
            decode(bytes, out);
            true
        }
        None => false,
    }
}

type Decoder = fn(&[u8], &mut [f64]);

fn decoder(dtype: Dtype) -> Option<Decoder> {
    Some(match dtype {
        Dtype::BOOL => |b, o| map(b, o, |[x]: [u8; 1]| f64::from(u8::from(x != 0))),
        Dtype::U8 => |b, o| map(b, o, |x: [u8; 1]| f64::from(x[0])),
        Dtype::I8 => |b, o| map(b, o, |x| f64::from(i8::from_le_bytes(x))),
        Dtype::U16 => |b, o| map(b, o, |x| f64::from(u16::from_le_bytes(x))),
        Dtype::I16 => |b, o| map(b, o, |x| f64::from(i16::from_le_bytes(x))),
        Dtype::U32 => |b, o| map(b, o, |x| f64::from(u32::from_le_bytes(x))),
        Dtype::I32 => |b, o| map(b, o, |x| f64::from(i32::from_le_bytes(x))),
        Dtype::U64 => |b, o| map(b, o, |x| u64::from_le_bytes(x) as f64),
        Dtype::I64 => |b, o| map(b, o, |x| i64::from_le_bytes(x) as f64),
        Dtype::F32 => |b, o| map(b, o, |x| f64::from(f32::from_le_bytes(x))),
        Dtype::F64 => |b, o| map(b, o, f64::from_le_bytes),
        // bf16 is the top half of an f32: widening is a shift, exact.
        Dtype::BF16 => |b, o| {
            map(b, o, |x| {
                f64::from(f32::from_bits(u32::from(u16::from_le_bytes(x)) << 16))
            })
        },
        Dtype::F16 => |b, o| map(b, o, |x| half::f16::from_le_bytes(x).to_f64()),
        Dtype::F8_E4M3 => |b, o| lookup(b, o, &minifloat::F8_E4M3FN),
        Dtype::F8_E5M2 => |b, o| lookup(b, o, &minifloat::F8_E5M2),
        Dtype::F8_E4M3FNUZ => |b, o| lookup(b, o, &minifloat::F8_E4M3FNUZ),
        Dtype::F8_E5M2FNUZ => |b, o| lookup(b, o, &minifloat::F8_E5M2FNUZ),
        Dtype::F8_E8M0 => |b, o| lookup(b, o, &minifloat::F8_E8M0FNU),
        _ => return None,
    })
}

#[inline(always)]
fn map<const N: usize>(bytes: &[u8], out: &mut [f64], f: impl Fn([u8; N]) -> f64) {
    for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(N)) {
        // chunks_exact(N) yields slices of length N, so the conversion is total.
        let mut element = [0u8; N];
        element.copy_from_slice(chunk);
        *o = f(element);
    }
}

#[inline(always)]
fn lookup(bytes: &[u8], out: &mut [f64], table: &[f64; 256]) {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = table[usize::from(b)];
    }
}
