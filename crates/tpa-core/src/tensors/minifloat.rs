//! Decoding tables for the 8-bit float formats.
//!
//! `half` covers f16 and bf16 but no 8-bit formats. A 256-entry table per
//! format, built at compile time from the format's definition, is exact and
//! faster than any per-element arithmetic; the tables are checked against
//! `ml_dtypes` in the tests (`tests/golden/make_fp8_tables.py`).

/// How a format spends its top exponent and its sign bit.
#[derive(Clone, Copy)]
enum Special {
    /// IEEE-like: top exponent is ±Inf (mantissa 0) or NaN.
    Ieee,
    /// "fn": no infinities; only all-ones exponent and mantissa is NaN.
    FiniteAllOnesNan,
    /// "fnuz": no infinities, no negative zero; 0x80 is the only NaN.
    FiniteUnsignedZero,
}

const fn pow2(mut e: i32) -> f64 {
    let mut x = 1.0;
    while e > 0 {
        x *= 2.0;
        e -= 1;
    }
    while e < 0 {
        x *= 0.5;
        e += 1;
    }
    x
}

const fn table(ebits: u32, mbits: u32, bias: i32, special: Special) -> [f64; 256] {
    let mut t = [0.0; 256];
    let emax = (1u32 << ebits) - 1;
    let mmax = (1u32 << mbits) - 1;
    let mut i = 0u32;
    while i < 256 {
        let negative = i & 0x80 != 0;
        let e = (i >> mbits) & emax;
        let m = i & mmax;
        let magnitude = if e == 0 {
            m as f64 * pow2(1 - bias - mbits as i32)
        } else {
            (1.0 + m as f64 / pow2(mbits as i32)) * pow2(e as i32 - bias)
        };
        let value = match special {
            Special::Ieee if e == emax => {
                if m == 0 {
                    f64::INFINITY
                } else {
                    f64::NAN
                }
            }
            Special::FiniteAllOnesNan if e == emax && m == mmax => f64::NAN,
            Special::FiniteUnsignedZero if i == 0x80 => f64::NAN,
            _ => magnitude,
        };
        t[i as usize] = if negative && !value.is_nan() {
            -value
        } else {
            value
        };
        i += 1;
    }
    t
}

const fn e8m0() -> [f64; 256] {
    let mut t = [0.0; 256];
    let mut i = 0;
    while i < 255 {
        t[i] = pow2(i as i32 - 127);
        i += 1;
    }
    t[255] = f64::NAN;
    t
}

/// `float8_e4m3fn`: 4 exponent bits (bias 7), 3 mantissa bits, max 448.
pub static F8_E4M3FN: [f64; 256] = table(4, 3, 7, Special::FiniteAllOnesNan);
/// `float8_e5m2`: 5 exponent bits (bias 15), 2 mantissa bits, IEEE specials.
pub static F8_E5M2: [f64; 256] = table(5, 2, 15, Special::Ieee);
/// `float8_e4m3fnuz`: bias 8, 0x80 is NaN.
pub static F8_E4M3FNUZ: [f64; 256] = table(4, 3, 8, Special::FiniteUnsignedZero);
/// `float8_e5m2fnuz`: bias 16, 0x80 is NaN.
pub static F8_E5M2FNUZ: [f64; 256] = table(5, 2, 16, Special::FiniteUnsignedZero);
/// `float8_e8m0fnu`: a bare power of two 2^(x−127); 0xFF is NaN.
pub static F8_E8M0FNU: [f64; 256] = e8m0();

/// FP4 E2M1 (`float4_e2m1fn`, OCP MX): index = 4-bit code, bit 3 the sign.
/// The same table is `FP4_VALUES` in transformers' `integrations/mxfp4.py`
/// and the `lut` of MLX's `fp_dequantize`.
pub static E2M1: [f64; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];
