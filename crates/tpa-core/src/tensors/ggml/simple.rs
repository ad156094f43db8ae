//! The 32- and 64-element block types: Q4_0 … Q8_0, IQ4_NL, MXFP4, NVFP4.
//! In every one, byte j of the codes holds element j in its low nibble and
//! element j + half in its high nibble (ggml's `dequantize_row_*`).

use super::grids::IQ4NL;
use super::{f16_at, nibbles, u32_at};

/// E2M1 values doubled, as ggml's `kvalues_mxfp4` (the scales are halved).
const FP4_DOUBLED: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

pub(super) fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    nibbles(&b[2..18], y, |q| (i32::from(q) - 8) as f32 * d);
}

pub(super) fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    nibbles(&b[4..20], y, |q| f32::from(q) * d + m);
}

/// The 5-bit codes of Q5_0/Q5_1: nibble plus bit j (or j + 16) of `qh`.
fn five_bit(qh: u32, qs: &[u8], j: usize) -> (u32, u32) {
    let x0 = u32::from(qs[j] & 0xF) | (((qh >> j) << 4) & 0x10);
    let x1 = u32::from(qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
    (x0, x1)
}

pub(super) fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32_at(b, 2);
    let qs = &b[6..22];
    for j in 0..16 {
        let (x0, x1) = five_bit(qh, qs, j);
        y[j] = (x0 as i32 - 16) as f32 * d;
        y[j + 16] = (x1 as i32 - 16) as f32 * d;
    }
}

pub(super) fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32_at(b, 4);
    let qs = &b[8..24];
    for j in 0..16 {
        let (x0, x1) = five_bit(qh, qs, j);
        y[j] = x0 as f32 * d + m;
        y[j + 16] = x1 as f32 * d + m;
    }
}

pub(super) fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (o, &q) in y.iter_mut().zip(&b[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

pub(super) fn iq4_nl(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    nibbles(&b[2..18], y, |q| d * f32::from(IQ4NL[usize::from(q)]));
}

/// ggml's `ggml_e8m0_to_fp32_half`: 2^(e − 128), subnormal for e < 2.
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (u32::from(e) - 1) << 23
    };
    f32::from_bits(bits)
}

pub(super) fn mxfp4(b: &[u8], y: &mut [f32]) {
    let d = e8m0_half(b[0]);
    nibbles(&b[1..17], y, |q| f32::from(FP4_DOUBLED[usize::from(q)]) * d);
}

/// ggml's `ggml_ue4m3_to_fp32`, halved for the doubled E2M1 values: 0 for
/// the codes 0 and 0x7F (NaN), else the unsigned E4M3 value / 2.
fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exp = i32::from((x >> 3) & 0xF);
    let man = f32::from(x & 7);
    let raw = if exp == 0 {
        man * (2f32).powi(-9)
    } else {
        (1.0 + man / 8.0) * (2f32).powi(exp - 7)
    };
    raw * 0.5
}

pub(super) fn nvfp4(b: &[u8], y: &mut [f32]) {
    let qs = &b[4..36];
    for s in 0..4 {
        let d = ue4m3_half(b[s]);
        let out = &mut y[16 * s..16 * (s + 1)];
        nibbles(&qs[8 * s..8 * s + 8], out, |q| {
            d * f32::from(FP4_DOUBLED[usize::from(q)])
        });
    }
}
