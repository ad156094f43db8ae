//! The 256-element super-blocks: Q2_K … Q6_K and the ternary TQ1_0/TQ2_0.

use super::f16_at;

pub(super) fn q2_k(b: &[u8], y: &mut [f32]) {
    let scales = &b[0..16];
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    let mut out = 0;
    let mut is = 0;
    for half in 0..2 {
        let q = &b[16 + 32 * half..16 + 32 * half + 32];
        for shift in [0, 2, 4, 6] {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * f32::from(sc & 0xF), dmin * f32::from(sc >> 4));
                for &byte in &q[16 * part..16 * part + 16] {
                    y[out] = dl * f32::from((byte >> shift) & 3) - ml;
                    out += 1;
                }
            }
        }
    }
}

pub(super) fn q3_k(b: &[u8], y: &mut [f32]) {
    let hmask = &b[0..32];
    let d = f16_at(b, 108);
    let s = &b[96..108];
    let mut scales = [0i8; 16];
    for k in 0..4 {
        scales[k] = ((s[k] & 0xF) | ((s[8 + k] & 3) << 4)) as i8;
        scales[4 + k] = ((s[4 + k] & 0xF) | (((s[8 + k] >> 2) & 3) << 4)) as i8;
        scales[8 + k] = ((s[k] >> 4) | (((s[8 + k] >> 4) & 3) << 4)) as i8;
        scales[12 + k] = ((s[4 + k] >> 4) | (((s[8 + k] >> 6) & 3) << 4)) as i8;
    }
    let mut out = 0;
    let mut is = 0;
    let mut m = 1u8;
    for half in 0..2 {
        let q = &b[32 + 32 * half..32 + 32 * half + 32];
        for shift in [0, 2, 4, 6] {
            for part in 0..2 {
                let dl = d * f32::from(scales[is] - 32);
                is += 1;
                for l in 16 * part..16 * part + 16 {
                    let low = ((q[l] >> shift) & 3) as i8;
                    let high = if hmask[l] & m != 0 { 0 } else { 4 };
                    y[out] = dl * f32::from(low - high);
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit (scale, min) of sub-block j.
fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K (`qh` absent) and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
fn q45_k(b: &[u8], qh: Option<&[u8]>, qs: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    for c in 0..4 {
        let q = &qs[32 * c..32 * c + 32];
        for (nibble, j) in [(0u8, 2 * c), (4u8, 2 * c + 1)] {
            let (sc, m) = scale_min(j, scales);
            let (d1, m1) = (d * f32::from(sc), dmin * f32::from(m));
            let out = &mut y[64 * c + 32 * usize::from(nibble / 4)..][..32];
            for l in 0..32 {
                let mut x = (q[l] >> nibble) & 0xF;
                if let Some(qh) = qh {
                    if qh[l] & (1 << j) != 0 {
                        x += 16;
                    }
                }
                out[l] = d1 * f32::from(x) - m1;
            }
        }
    }
}

pub(super) fn q4_k(b: &[u8], y: &mut [f32]) {
    q45_k(b, None, &b[16..144], y);
}

pub(super) fn q5_k(b: &[u8], y: &mut [f32]) {
    q45_k(b, Some(&b[16..48]), &b[48..176], y);
}

pub(super) fn q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let out = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            let scale = |k: usize| d * f32::from(sc[k] as i8);
            out[l] = scale(is) * f32::from(q1);
            out[l + 32] = scale(is + 2) * f32::from(q2);
            out[l + 64] = scale(is + 4) * f32::from(q3);
            out[l + 96] = scale(is + 6) * f32::from(q4);
        }
    }
}

/// A base-3 digit of TQ1_0: `((u8)(q · 3^n) · 3) >> 8`, minus 1.
fn trit(q: u8, pow3: u8) -> f32 {
    let shifted = q.wrapping_mul(pow3);
    f32::from(((u16::from(shifted) * 3) >> 8) as i16 - 1)
}

pub(super) fn tq1_0(b: &[u8], y: &mut [f32]) {
    let (qs, qh) = (&b[0..48], &b[48..52]);
    let d = f16_at(b, 52);
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let mut out = 0;
    // Five trits a byte in qs (32 bytes, then 16), four in qh.
    for (bytes, pows) in [
        (&qs[0..32], &POW3[..]),
        (&qs[32..48], &POW3[..]),
        (qh, &POW3[..4]),
    ] {
        for &p in pows {
            for &q in bytes {
                y[out] = trit(q, p) * d;
                out += 1;
            }
        }
    }
}

pub(super) fn tq2_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 64);
    for j in [0, 32] {
        for l in 0..4 {
            for m in 0..32 {
                let q = (b[j + m] >> (2 * l)) & 3;
                y[4 * j + 32 * l + m] = f32::from(i16::from(q) - 1) * d;
            }
        }
    }
}
