//! f64 → stored bytes, for every dtype tpa reads.

use safetensors::Dtype;

/// Encodes `values` as little-endian `dtype` elements. Floats round to
/// nearest; 8-bit floats must be exactly representable (fixtures only use
/// such values), and booleans store `x > 0`.
///
/// # Panics
/// On an 8-bit float value that the format cannot hold exactly, and on
/// dtypes fixtures never use (packed sub-byte floats, complex).
pub fn encode(dtype: Dtype, values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * dtype.bitsize() / 8);
    for &x in values {
        match dtype {
            Dtype::F64 => out.extend(x.to_le_bytes()),
            Dtype::F32 => out.extend((x as f32).to_le_bytes()),
            Dtype::F16 => out.extend(half::f16::from_f64(x).to_le_bytes()),
            Dtype::BF16 => out.extend(half::bf16::from_f64(x).to_le_bytes()),
            Dtype::F8_E4M3 => out.push(minifloat(x, 3, 7, 448.0)),
            Dtype::F8_E5M2 => out.push(minifloat(x, 2, 15, 57344.0)),
            Dtype::I64 => out.extend((x as i64).to_le_bytes()),
            Dtype::I32 => out.extend((x as i32).to_le_bytes()),
            Dtype::I16 => out.extend((x as i16).to_le_bytes()),
            Dtype::I8 => out.extend((x as i8).to_le_bytes()),
            Dtype::U64 => out.extend((x as u64).to_le_bytes()),
            Dtype::U32 => out.extend((x as u32).to_le_bytes()),
            Dtype::U16 => out.extend((x as u16).to_le_bytes()),
            Dtype::U8 => out.push(x as u8),
            Dtype::BOOL => out.push(u8::from(x > 0.0)),
            other => panic!("fixtures do not encode {other}"),
        }
    }
    out
}

/// Sign, biased exponent and mantissa of a normal value (or zero), checked
/// to round-trip exactly.
fn minifloat(x: f64, mbits: u32, bias: i32, max: f64) -> u8 {
    assert!(x.is_finite() && x.abs() <= max, "{x} is out of range");
    let sign = if x < 0.0 { 0x80u8 } else { 0 };
    if x == 0.0 {
        return sign;
    }
    let e = x.abs().log2().floor() as i32;
    let frac = x.abs() / 2f64.powi(e) - 1.0;
    let m = frac * f64::from(1u32 << mbits);
    assert!(
        m.fract() == 0.0 && e + bias > 0,
        "{x} is not exactly representable"
    );
    sign | (((e + bias) as u8) << mbits) | m as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minifloat_codes() {
        assert_eq!(
            encode(Dtype::F8_E4M3, &[1.0, -2.0, 448.0, 0.0]),
            [0x38, 0xC0, 0x7E, 0x00]
        );
        assert_eq!(
            encode(Dtype::F8_E5M2, &[1.0, 3.0, 57344.0]),
            [0x3C, 0x42, 0x7B]
        );
    }
}
