//! The i-quants: 256-element super-blocks of 8 sub-blocks of 32, whose
//! codes index lookup grids (module `grids`, generated from gguf-py).

use super::grids::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS, IQ4NL, KSIGNS};
use super::{f16_at, nibbles, u16_at, u32_at};

/// ggml's `IQ1S_DELTA`, negative where the sub-block's sign bit is set.
fn iq1_delta(negative: bool) -> f32 {
    if negative { -0.125 } else { 0.125 }
}

/// ±1 for bit j of a sign byte (set means negative).
#[inline(always)]
fn sign(signs: u8, j: usize) -> f32 {
    if signs & (1 << j) != 0 { -1.0 } else { 1.0 }
}

/// Eight values `db · grid[j] · sign(j)` (the IQ2 and IQ3 pattern).
#[inline(always)]
fn signed(y: &mut [f32], db: f32, grid: &[u8], signs: u8, first_sign: usize) {
    for (j, (o, &g)) in y.iter_mut().zip(grid).enumerate() {
        *o = db * f32::from(g) * sign(signs, first_sign + j);
    }
}

pub(super) fn iq2_xxs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let at = 2 + 8 * ib;
        let (a0, a1) = (u32_at(b, at), u32_at(b, at + 4));
        let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
        for l in 0..4 {
            let grid = &IQ2XXS[((a0 >> (8 * l)) & 0xFF) as usize];
            let signs = KSIGNS[((a1 >> (7 * l)) & 127) as usize];
            signed(&mut y[32 * ib + 8 * l..][..8], db, grid, signs, 0);
        }
    }
}

/// The two sub-block scales of IQ2_XS/IQ2_S: `d · (0.5 + s) · 0.25`.
fn iq2_scales(d: f32, scale: u8) -> [f32; 2] {
    [
        d * (0.5 + f32::from(scale & 0xF)) * 0.25,
        d * (0.5 + f32::from(scale >> 4)) * 0.25,
    ]
}

pub(super) fn iq2_xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let db = iq2_scales(d, b[66 + ib]);
        for l in 0..4 {
            let q = u16_at(b, 2 + 2 * (4 * ib + l));
            let grid = &IQ2XS[usize::from(q & 511)];
            let signs = KSIGNS[usize::from(q >> 9)];
            signed(&mut y[32 * ib + 8 * l..][..8], db[l / 2], grid, signs, 0);
        }
    }
}

pub(super) fn iq2_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let (qs, signs, qh) = (&b[2..34], &b[34..66], &b[66..74]);
    for ib in 0..8 {
        let db = iq2_scales(d, b[74 + ib]);
        for l in 0..4 {
            let index =
                usize::from(qs[4 * ib + l]) | ((usize::from(qh[ib]) << (8 - 2 * l)) & 0x300);
            let out = &mut y[32 * ib + 8 * l..][..8];
            signed(out, db[l / 2], &IQ2S[index], signs[4 * ib + l], 0);
        }
    }
}

pub(super) fn iq3_xxs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    for ib in 0..8 {
        let aux = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for l in 0..4 {
            let signs = KSIGNS[((aux >> (7 * l)) & 127) as usize];
            let out = &mut y[32 * ib + 8 * l..][..8];
            let (first, second) = out.split_at_mut(4);
            signed(
                first,
                db,
                &IQ3XXS[usize::from(qs[8 * ib + 2 * l])],
                signs,
                0,
            );
            signed(
                second,
                db,
                &IQ3XXS[usize::from(qs[8 * ib + 2 * l + 1])],
                signs,
                4,
            );
        }
    }
}

pub(super) fn iq3_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let (qs, qh, signs, scales) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
    for ib in 0..8 {
        let scale = scales[ib / 2] >> (4 * (ib % 2)) & 0xF;
        let db = d * (1 + 2 * i32::from(scale)) as f32;
        let high = usize::from(qh[ib]);
        for l in 0..4 {
            let i1 = usize::from(qs[8 * ib + 2 * l]) | ((high << (8 - 2 * l)) & 256);
            let i2 = usize::from(qs[8 * ib + 2 * l + 1]) | ((high << (7 - 2 * l)) & 256);
            let s = signs[4 * ib + l];
            let out = &mut y[32 * ib + 8 * l..][..8];
            let (first, second) = out.split_at_mut(4);
            signed(first, db, &IQ3S[i1], s, 0);
            signed(second, db, &IQ3S[i2], s, 4);
        }
    }
}

/// Eight values `dl · (grid[j] + delta)` (IQ1_S and IQ1_M).
#[inline(always)]
fn shifted(y: &mut [f32], dl: f32, grid: &[i8; 8], delta: f32) {
    for (o, &g) in y.iter_mut().zip(grid) {
        *o = dl * (f32::from(g) + delta);
    }
}

pub(super) fn iq1_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..34];
    for ib in 0..8 {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
        let delta = iq1_delta(qh & 0x8000 != 0);
        for l in 0..4 {
            let index = usize::from(qs[4 * ib + l]) | (usize::from((qh >> (3 * l)) & 7) << 8);
            shifted(&mut y[32 * ib + 8 * l..][..8], dl, &IQ1S[index], delta);
        }
    }
}

pub(super) fn iq1_m(b: &[u8], y: &mut [f32]) {
    let (qs, qh) = (&b[0..32], &b[32..48]);
    let sc: [u16; 4] = std::array::from_fn(|k| u16_at(b, 48 + 2 * k));
    // The super-block scale is an f16 spread over the top nibbles of `sc`.
    let bits = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000);
    let d = half::f16::from_bits(bits).to_f32();
    for ib in 0..8 {
        let shift = 6 * (ib % 2);
        let dl1 = d * (2 * ((sc[ib / 2] >> shift) & 7) + 1) as f32;
        let dl2 = d * (2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1) as f32;
        let (h0, h1) = (usize::from(qh[2 * ib]), usize::from(qh[2 * ib + 1]));
        let q = |l: usize| usize::from(qs[4 * ib + l]);
        let index = [
            q(0) | ((h0 << 8) & 0x700),
            q(1) | ((h0 << 4) & 0x700),
            q(2) | ((h1 << 8) & 0x700),
            q(3) | ((h1 << 4) & 0x700),
        ];
        let deltas = [
            iq1_delta(h0 & 0x08 != 0),
            iq1_delta(h0 & 0x80 != 0),
            iq1_delta(h1 & 0x08 != 0),
            iq1_delta(h1 & 0x80 != 0),
        ];
        for l in 0..4 {
            let dl = if l < 2 { dl1 } else { dl2 };
            shifted(
                &mut y[32 * ib + 8 * l..][..8],
                dl,
                &IQ1S[index[l]],
                deltas[l],
            );
        }
    }
}

pub(super) fn iq4_xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let scales_h = u16_at(b, 2);
    let (scales_l, qs) = (&b[4..8], &b[8..136]);
    for ib in 0..8 {
        let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) as i32
            | (((scales_h >> (2 * ib)) & 3) << 4) as i32;
        let dl = d * (ls - 32) as f32;
        let out = &mut y[32 * ib..32 * ib + 32];
        nibbles(&qs[16 * ib..16 * ib + 16], out, |q| {
            dl * f32::from(IQ4NL[usize::from(q)])
        });
    }
}
