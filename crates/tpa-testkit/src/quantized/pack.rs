//! Bit packing and the small float codes, written from the formats' specs
//! (`../shared/notes/quantized.md` in the team's notes) and sharing nothing
//! with tpa-core's decoders.

/// Packs `fields` (each below 2^bits) as one little-endian bitstream into
/// `words` u32 words: field k occupies bits k·b .. (k+1)·b of the stream,
/// and may straddle two words (MLX 3/5/6-bit, compressed-tensors' dense packing).
pub fn stream(fields: impl IntoIterator<Item = u32>, bits: u32, words: usize) -> Vec<u32> {
    let mut out = vec![0u32; words];
    for (k, f) in fields.into_iter().enumerate() {
        debug_assert!(u64::from(f) < 1 << bits);
        let at = k * bits as usize;
        let (w, shift) = (at / 32, at % 32);
        let wide = u64::from(f) << shift;
        out[w] |= wide as u32;
        if shift + bits as usize > 32 {
            out[w + 1] |= (wide >> 32) as u32;
        }
    }
    out
}

/// Each row of a `[rows, cols]` field matrix as its own stream of `words` words.
pub fn stream_rows(fields: &[u32], cols: usize, bits: u32, words: usize) -> Vec<u32> {
    fields
        .chunks(cols.max(1))
        .flat_map(|row| stream(row.iter().copied(), bits, words))
        .collect()
}

/// The little-endian bytes of `words`.
pub fn le_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub fn transpose<T: Copy>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| m[r * cols + c]))
        .collect()
}

/// AutoAWQ packs eight 4-bit values of a word in this order: lane j holds
/// element `AWQ_ORDER[j]`.
pub const AWQ_ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];

/// Rows of 4-bit fields packed eight per word in AWQ's order.
pub fn awq_rows(fields: &[u32], cols: usize) -> Vec<u32> {
    fields
        .chunks(cols)
        .flat_map(|row| {
            row.chunks(8).map(|eight| {
                AWQ_ORDER
                    .iter()
                    .enumerate()
                    .fold(0u32, |w, (lane, &e)| w | eight[e] << (4 * lane))
            })
        })
        .collect()
}

/// bitsandbytes 4-bit: the flattened codes two per byte, the even element in
/// the high nibble; an odd count leaves the last low nibble zero.
pub fn high_nibble_pairs(fields: &[u32]) -> Vec<u8> {
    fields
        .chunks(2)
        .map(|p| (p[0] << 4 | p.get(1).copied().unwrap_or(0)) as u8)
        .collect()
}

/// `float8_e4m3fn`: bias 7, 3 mantissa bits, no infinities, 0x7F/0xFF NaN.
pub fn e4m3(byte: u8) -> f64 {
    let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
    let (e, m) = (i32::from(byte >> 3 & 0xF), f64::from(byte & 7));
    if e == 0xF && m == 7.0 {
        return f64::NAN;
    }
    sign * if e == 0 {
        m / 8.0 * 2f64.powi(-6)
    } else {
        (1.0 + m / 8.0) * 2f64.powi(e - 7)
    }
}

/// The 16 `float4_e2m1fn` values, by code (bit 3 the sign).
pub const E2M1: [f64; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

/// An E8M0 scale: 2^(e − 127).
pub fn e8m0(e: u8) -> f64 {
    2f64.powi(i32::from(e) - 127)
}

/// bitsandbytes' NF4 table (`functional.py` `get_4bit_type("nf4")`), as the
/// f32 values its `quant_map` stores.
pub const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// bitsandbytes' FP4 table (`get_4bit_type("fp4")`, normalised by its maximum 6).
pub const FP4: [f32; 16] = [
    0.0,
    0.005_208_333_5,
    0.666_666_7,
    1.0,
    0.333_333_34,
    0.5,
    0.166_666_67,
    0.25,
    0.0,
    -0.005_208_333_5,
    -0.666_666_7,
    -1.0,
    -0.333_333_34,
    -0.5,
    -0.166_666_67,
    -0.25,
];

/// Rounds to the nearest value of a code table (NaN entries never win).
pub struct Nearest(Vec<(f64, u32)>);

impl Nearest {
    pub fn new(table: impl IntoIterator<Item = f64>) -> Nearest {
        let mut v: Vec<(f64, u32)> = table
            .into_iter()
            .zip(0..)
            .filter(|(x, _)| !x.is_nan())
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Nearest(v)
    }

    /// The code whose value is nearest to `x`.
    pub fn code(&self, x: f64) -> u32 {
        let i = self.0.partition_point(|&(v, _)| v < x);
        let above = self.0.get(i);
        let below = i.checked_sub(1).map(|j| self.0[j]);
        match (below, above) {
            (Some(b), Some(a)) if x - b.0 < a.0 - x => b.1,
            (_, Some(a)) => a.1,
            (Some(b), None) => b.1,
            (None, None) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_straddle_words_little_endian() {
        // Eleven 3-bit fields: the eleventh starts at bit 30 and ends in word 1.
        let fields = [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 5];
        let w = stream(fields, 3, 2);
        assert_eq!(w[0] & 7, 1);
        assert_eq!(w[0] >> 3 & 7, 2);
        assert_eq!((w[0] >> 30) | (w[1] & 1) << 2, 5);
    }

    #[test]
    fn awq_order_and_nibble_pairs() {
        let w = awq_rows(&[0, 1, 2, 3, 4, 5, 6, 7], 8);
        // Lanes hold elements 0, 2, 4, 6, 1, 3, 5, 7.
        assert_eq!(w, [0x7531_6420]);
        assert_eq!(high_nibble_pairs(&[0xA, 0x3, 0x5]), [0xA3, 0x50]);
    }

    #[test]
    fn minifloats() {
        assert_eq!(e4m3(0x38), 1.0);
        assert_eq!(e4m3(0x7E), 448.0);
        assert_eq!(e4m3(0x01), 2f64.powi(-9));
        assert!(e4m3(0xFF).is_nan());
        assert_eq!(e8m0(127), 1.0);
        assert_eq!(E2M1[0xF], -6.0);
        let e2m1 = Nearest::new(E2M1);
        assert_eq!(e2m1.code(2.4), 4);
        assert_eq!(e2m1.code(-7.0), 0xF);
        assert_eq!(Nearest::new((0..=255).map(e4m3)).code(1e9), 0x7E);
    }
}
