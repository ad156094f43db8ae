//! Seeded codes, scales and zero points of one weight, their stored bytes,
//! and the dequantized weight.
//!
//! Each kind of value has its own random stream, so a part's bytes are
//! made without drawing the others (a 1B-parameter model is written tensor
//! by tensor, part by part).

use serde_json::json;

use super::Scheme;
use super::layout::{bits, group, matrix, words};
use super::pack::{
    E2M1, FP4, NF4, Nearest, awq_rows, e4m3, e8m0, high_nibble_pairs, le_bytes, stream_rows,
    transpose,
};
use crate::{Dtype, SplitMix64, encode};

/// bitsandbytes' double quantization: one nested absmax per 256 absmax.
pub(super) const NESTED_BLOCK: usize = 256;
const NESTED_OFFSET: f32 = 0.03125;
/// NVFP4's global scale (a power of two, as a weight's amax makes it roughly).
const GLOBAL_SCALE: f32 = 16384.0;

/// The stored tensors of a quantized weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Codes,
    Scales,
    Zeros,
    Biases,
    GIdx,
    Shape,
    GlobalScale,
    QuantMap,
    QuantState,
    NestedAbsmax,
    NestedMap,
    Format,
}

/// One stored tensor of a generated quantized weight, encoded on demand
/// (a [`crate::Fill::Packed`] fill).
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    draw: Draw,
    part: Part,
    dtype: Dtype,
}

impl Packing {
    /// The stored bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.draw.bytes(self.part, self.dtype)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Draw {
    scheme: Scheme,
    shape: Vec<usize>,
    seed: u64,
}

/// A positive value with five significant bits, 2^−hi … 2^−lo·(31/16):
/// exact in bf16, f16 and f32, so scales store without rounding.
fn exact(rng: &mut SplitMix64, lo: i32, hi: i32) -> f64 {
    let m = 16 + rng.next_u64() % 16;
    let e = lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32;
    m as f64 / 16.0 * 2f64.powi(-e)
}

fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}

impl Draw {
    pub(super) fn new(scheme: Scheme, shape: &[usize], seed: u64) -> Draw {
        Draw {
            scheme,
            shape: shape.to_vec(),
            seed,
        }
    }

    pub(super) fn packing(&self, part: Part, dtype: Dtype) -> Packing {
        Packing {
            draw: self.clone(),
            part,
            dtype,
        }
    }

    fn rng(&self, stream: u64) -> SplitMix64 {
        SplitMix64::new(self.seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    fn dims(&self) -> (usize, usize) {
        matrix(&self.shape)
    }

    fn bits(&self) -> u32 {
        bits(&self.scheme)
    }

    /// Scale cells: `[rows / row_div, groups]`, or the flattened blocks.
    fn grid(&self) -> (usize, usize) {
        let (rows, cols) = self.dims();
        match (&self.scheme, group(&self.scheme, cols)) {
            (Scheme::Fp8Block { rows: bo, .. }, Some(g)) => (rows.div_ceil(*bo), cols.div_ceil(g)),
            (Scheme::Bnb4 { block, .. }, _) => (1, (rows * cols).div_ceil(*block)),
            (_, g) => (rows, cols / g.unwrap_or(cols).max(1)),
        }
    }

    /// The scale cell of element (r, c), with the grid's sizes worked out once.
    fn cell_of<'a>(&'a self, g_idx: &'a [u32]) -> impl Fn(usize, usize) -> usize + 'a {
        let (_, cols) = self.dims();
        let (_, n) = self.grid();
        let g = group(&self.scheme, cols).unwrap_or(cols);
        move |r, c| match &self.scheme {
            Scheme::Fp8Block { rows: bo, .. } => (r / bo) * n + c / g,
            Scheme::Bnb4 { block, .. } => (r * cols + c) / block,
            Scheme::Gptq { .. } => r * n + g_idx[c] as usize,
            _ => r * n + c / g,
        }
    }

    /// The stored field of every element, row-major: rounded Gaussian draws.
    fn codes(&self) -> Vec<u32> {
        let (rows, cols) = self.dims();
        let mut rng = self.rng(1);
        let n = rows * cols;
        let mut draw = |f: &mut dyn FnMut(f64) -> u32| (0..n).map(|_| f(rng.normal())).collect();
        let levels = 1u32 << self.bits();
        match &self.scheme {
            Scheme::Fp8Block { .. } | Scheme::CtFp8Channel => {
                let fp8 = Nearest::new((0..=255u8).map(e4m3));
                draw(&mut |x| fp8.code((x * 48.0).clamp(-448.0, 448.0)))
            }
            Scheme::CtNvfp4 | Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => {
                let e2m1 = Nearest::new(E2M1);
                draw(&mut |x| e2m1.code(x * 2.0))
            }
            Scheme::Bnb4 { nf4, .. } => {
                let table = Nearest::new(bnb_table(*nf4).iter().map(|&v| f64::from(v)));
                draw(&mut |x| table.code(x * 0.4))
            }
            Scheme::BnbInt8 => {
                draw(&mut |x| (x * 40.0).round().clamp(-127.0, 127.0) as i8 as u8 as u32)
            }
            _ => {
                let mid = f64::from(levels / 2);
                let top = f64::from(levels - 1);
                draw(&mut |x| (mid + x * f64::from(levels) / 6.0).round().clamp(0.0, top) as u32)
            }
        }
    }

    /// The stored value of each scale cell (E8M0 and nested absmax: their u8 code).
    fn scales(&self) -> Vec<f64> {
        let (gr, gc) = self.grid();
        let mut rng = self.rng(2);
        let rng = &mut rng;
        let mut draw =
            |f: &mut dyn FnMut(&mut SplitMix64) -> f64| (0..gr * gc).map(|_| f(rng)).collect();
        match &self.scheme {
            Scheme::Fp8Block { .. } | Scheme::CtFp8Channel => draw(&mut |r| exact(r, 11, 13)),
            // Positive normal E4M3 values (exponent field 5–10).
            Scheme::CtNvfp4 => draw(&mut |r| e4m3(0x28 + below(r, 0x30) as u8)),
            Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => draw(&mut |r| (119 + below(r, 6)) as f64),
            Scheme::Bnb4 { nested: true, .. } => draw(&mut |r| below(r, 256) as f64),
            Scheme::Bnb4 { .. } | Scheme::BnbInt8 => draw(&mut |r| exact(r, 3, 5)),
            _ => draw(&mut |r| exact(r, 6, 8)),
        }
    }

    /// The logical zero point of each cell (as the dequantize subtracts it).
    fn zeros(&self) -> Vec<i64> {
        let (gr, gc) = self.grid();
        let mut rng = self.rng(3);
        let levels = 1i64 << self.bits();
        let mid = levels / 2;
        (0..gr * gc)
            .map(|_| {
                let z = mid - 1 + below(&mut rng, 3) as i64;
                match &self.scheme {
                    // Signed zero points of signed codes.
                    Scheme::CtInt {
                        symmetric: false, ..
                    } => (z - mid).clamp(-mid, mid - 1),
                    Scheme::CtInt { .. } => 0,
                    // v1 stores z − 1, so z ≥ 1 keeps the field in range.
                    _ => z.clamp(1, levels - 1),
                }
            })
            .collect()
    }

    /// MLX biases: about −scale·2^(b−1), so codes centre on zero.
    fn biases(&self, scales: &[f64]) -> Vec<f64> {
        let mut rng = self.rng(4);
        let mid = f64::from(1u32 << (self.bits() - 1));
        scales
            .iter()
            .map(|s| {
                let b = -s * mid + (below(&mut rng, 9) as f64 - 4.0) * 2f64.powi(-12);
                // Stored as f16: the weight is the one with the rounded bias.
                half::f16::from_f64(b).to_f64()
            })
            .collect()
    }

    /// GPTQ's group of each input: `c / g`, or with `desc_act` the group of
    /// its place in a random activation order.
    fn g_idx(&self) -> Vec<u32> {
        let (_, cols) = self.dims();
        let g = group(&self.scheme, cols).unwrap_or(cols);
        let mut order: Vec<usize> = (0..cols).collect();
        if let Scheme::Gptq { desc_act: true, .. } = self.scheme {
            let mut rng = self.rng(5);
            for i in (1..cols).rev() {
                order.swap(i, below(&mut rng, i as u64 + 1) as usize);
            }
        }
        order.iter().map(|&p| (p / g) as u32).collect()
    }

    fn nested_absmax(&self) -> Vec<f64> {
        let (_, blocks) = self.grid();
        let mut rng = self.rng(6);
        (0..blocks.div_ceil(NESTED_BLOCK))
            .map(|_| exact(&mut rng, 6, 8))
            .collect()
    }

    /// The value each scale cell multiplies by, as the format computes it
    /// from the stored `scales`.
    fn scale_values(&self, scales: &[f64]) -> Vec<f64> {
        match &self.scheme {
            Scheme::CtNvfp4 => scales
                .iter()
                .map(|&s| f64::from(s as f32 / GLOBAL_SCALE))
                .collect(),
            Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => {
                scales.iter().map(|&e| e8m0(e as u8)).collect()
            }
            Scheme::Bnb4 { nested: true, .. } => {
                let (map, outer) = (nested_map(), self.nested_absmax());
                scales
                    .iter()
                    .enumerate()
                    .map(|(j, &code)| {
                        let v = map[code as usize] * outer[j / NESTED_BLOCK] as f32 + NESTED_OFFSET;
                        f64::from(v)
                    })
                    .collect()
            }
            Scheme::BnbInt8 => scales.iter().map(|s| s / 127.0).collect(),
            _ => scales.to_vec(),
        }
    }

    /// The dequantized weight, row-major.
    pub(super) fn dequantized(&self) -> Vec<f64> {
        let (rows, cols) = self.dims();
        let (codes, scales, zeros, g_idx) =
            (self.codes(), self.scales(), self.zeros(), self.g_idx());
        let (scale, biases) = (self.scale_values(&scales), self.biases(&scales));
        let cell = self.cell_of(&g_idx);
        let offset = i64::from(1u32 << (self.bits() - 1));
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let q = codes[r * cols + c];
                let k = cell(r, c);
                let s = scale[k];
                out.push(match &self.scheme {
                    Scheme::Fp8Block { .. } | Scheme::CtFp8Channel => e4m3(q as u8) * s,
                    Scheme::CtNvfp4 | Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => {
                        E2M1[q as usize] * s
                    }
                    Scheme::Bnb4 { nf4, .. } => f64::from(bnb_table(*nf4)[q as usize]) * s,
                    Scheme::BnbInt8 => f64::from(q as u8 as i8) * s,
                    Scheme::CtInt { .. } => (i64::from(q) - offset - zeros[k]) as f64 * s,
                    Scheme::Gptq { .. } | Scheme::Awq { .. } => {
                        (i64::from(q) - zeros[k]) as f64 * s
                    }
                    Scheme::MlxAffine { .. } => f64::from(q) * s + biases[k],
                });
            }
        }
        out
    }

    fn bytes(&self, part: Part, dtype: Dtype) -> Vec<u8> {
        let (rows, cols) = self.dims();
        let b = self.bits();
        let (_, n_groups) = self.grid();
        match part {
            Part::Codes => {
                let codes = self.codes();
                match &self.scheme {
                    Scheme::Fp8Block { .. } | Scheme::CtFp8Channel | Scheme::BnbInt8 => {
                        codes.iter().map(|&q| q as u8).collect()
                    }
                    Scheme::Bnb4 { .. } => high_nibble_pairs(&codes),
                    // Packed along the inputs, one column of words per output.
                    Scheme::Gptq { .. } => {
                        let per_out = cols * b as usize / 32;
                        le_bytes(&transpose(
                            &stream_rows(&codes, cols, b, per_out),
                            rows,
                            per_out,
                        ))
                    }
                    Scheme::Awq { .. } => le_bytes(&awq_rows(&transpose(&codes, rows, cols), rows)),
                    _ => le_bytes(&stream_rows(&codes, cols, b, words(cols, b))),
                }
            }
            Part::Scales => {
                let scales = self.scales();
                match &self.scheme {
                    Scheme::Gptq { .. } | Scheme::Awq { .. } => {
                        encode(dtype, &transpose(&scales, rows, n_groups))
                    }
                    _ => encode(dtype, &scales),
                }
            }
            Part::Zeros => {
                let zeros = self.zeros();
                let offset = 1i64 << (b - 1);
                // Stored fields, by group: [groups, rows].
                let by_group = transpose(&zeros, rows, n_groups);
                let field = |z: &i64| -> u32 {
                    match &self.scheme {
                        Scheme::CtInt { .. } => (z + offset) as u32,
                        Scheme::Gptq { v2: false, .. } => (z - 1) as u32,
                        _ => *z as u32,
                    }
                };
                let fields: Vec<u32> = by_group.iter().map(field).collect();
                match &self.scheme {
                    // Each group's column a bitstream down the rows: [words, groups].
                    Scheme::CtInt { .. } => {
                        let w = words(rows, b);
                        le_bytes(&transpose(&stream_rows(&fields, rows, b, w), n_groups, w))
                    }
                    Scheme::Awq { .. } => le_bytes(&awq_rows(&fields, rows)),
                    _ => le_bytes(&stream_rows(&fields, rows, b, rows * b as usize / 32)),
                }
            }
            Part::Biases => encode(dtype, &self.biases(&self.scales())),
            Part::GIdx => encode(
                dtype,
                &self
                    .g_idx()
                    .iter()
                    .map(|&g| f64::from(g))
                    .collect::<Vec<_>>(),
            ),
            Part::Shape => encode(dtype, &[rows as f64, cols as f64]),
            Part::GlobalScale => encode(dtype, &[f64::from(GLOBAL_SCALE)]),
            Part::QuantMap => {
                let Scheme::Bnb4 { nf4, .. } = self.scheme else {
                    unreachable!("only bitsandbytes has a quant_map")
                };
                encode(dtype, &bnb_table(nf4).map(f64::from))
            }
            Part::QuantState => quant_state(&self.scheme, &self.shape),
            Part::NestedAbsmax => encode(dtype, &self.nested_absmax()),
            Part::NestedMap => encode(dtype, &nested_map().map(f64::from)),
            Part::Format => vec![0],
        }
    }
}

fn bnb_table(nf4: bool) -> [f32; 16] {
    if nf4 { NF4 } else { FP4 }
}

/// The nested absmax's code table: any 256 f32 values serve; these are k/255.
fn nested_map() -> [f32; 256] {
    std::array::from_fn(|k| k as f32 / 255.0)
}

/// bitsandbytes' `quant_state` JSON, as `QuantState.as_dict(packed=True)` writes it.
pub(super) fn quant_state(scheme: &Scheme, shape: &[usize]) -> Vec<u8> {
    let Scheme::Bnb4 { nf4, block, nested } = scheme else {
        return Vec::new();
    };
    let mut state = json!({
        "quant_type": if *nf4 { "nf4" } else { "fp4" },
        "blocksize": block, "dtype": "float32", "shape": shape,
    });
    if *nested {
        state["nested_blocksize"] = json!(NESTED_BLOCK);
        state["nested_dtype"] = json!("float32");
        state["nested_offset"] = json!(NESTED_OFFSET);
    }
    state.to_string().into_bytes()
}
