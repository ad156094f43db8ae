//! Exact statistics of a tensor in one streaming pass.
//!
//! The tensor is cut into chunks that threads take in parallel; each chunk is
//! decoded to f64 a cache-sized block at a time. A block's mean and sum of
//! squared deviations come from two passes over the block while it is in
//! cache, and blocks, then chunks, are merged with Chan et al.'s pairwise
//! update. That is as stable as numpy's pairwise float64 sums, and the merge
//! order is fixed.
//!
//! NaN and ±Inf are counted and left out; every other statistic is over the
//! finite values. The same pass hashes the stored bytes into a [`Digest`].

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::digest::{ChunkHasher, Digest};
use crate::error::Result;
use crate::tensors::{TensorView, decode};

/// Elements per parallel work item (2 MiB of bf16). Chunks start at fixed
/// element indices, so the merge order, and with it every last bit of the
/// result, depends neither on the thread count nor on where the tensor sits
/// in its file.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Elements decoded at a time: 32 KiB of f64, which stays in L1/L2 for the
/// second pass.
const BLOCK_ELEMENTS: usize = 4096;

/// Knobs of the statistics pass.
#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    /// A value counts as zero for `sparsity` when |x| ≤ this.
    pub zero_eps: f64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions { zero_eps: 1e-8 }
    }
}

/// Statistics of one tensor. Value statistics are `None` when the tensor has
/// no finite value (empty, or all NaN/Inf).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    /// Number of elements.
    pub numel: u64,
    /// Mean of the finite values.
    pub mean: Option<f64>,
    /// Population variance (divides by n, like numpy's default).
    pub var: Option<f64>,
    /// Population standard deviation, √var.
    pub std: Option<f64>,
    /// Smallest finite value.
    pub min: Option<f64>,
    /// Largest finite value.
    pub max: Option<f64>,
    /// Share of finite values with |x| ≤ zero_eps.
    pub sparsity: Option<f64>,
    /// Number of NaN elements.
    pub nan_count: u64,
    /// Number of +Inf or −Inf elements.
    pub inf_count: u64,
    /// Digest of the stored bytes (see [`Digest`]); `None` only in results
    /// of tpa versions that did not compute it.
    #[serde(default)]
    pub digest: Option<Digest>,
}

/// Computes [`TensorStats`] for `tensor`, reporting progress in stored bytes
/// through `progress` and releasing each chunk's pages once it is done.
///
/// ```no_run
/// # use tpa_core::model::Model;
/// # use tpa_core::analyses::stats::{tensor_stats, StatsOptions};
/// let model = Model::open("model.safetensors")?;
/// let stats = tensor_stats(&model.tensor("lm_head.weight")?, &StatsOptions::default(), &|_| {})?;
/// println!("std = {:?}", stats.std);
/// # Ok::<(), tpa_core::Error>(())
/// ```
pub fn tensor_stats(
    tensor: &TensorView<'_>,
    options: &StatsOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TensorStats> {
    range_stats(tensor, 0..tensor.numel(), options, progress)
}

/// [`tensor_stats`] of the elements `range` of `tensor` (row-major order),
/// e.g. one expert of a stacked expert tensor.
pub fn range_stats(
    tensor: &TensorView<'_>,
    range: Range<usize>,
    options: &StatsOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TensorStats> {
    tensor.check_decodable()?;
    let numel = range.len();
    let bytes_per_chunk = |len: usize| tensor.bytes_of(len);
    let chunks: Vec<(Moments, u128)> = (0..numel.div_ceil(CHUNK_ELEMENTS))
        .into_par_iter()
        .map(|c| {
            let start = range.start + c * CHUNK_ELEMENTS;
            let len = CHUNK_ELEMENTS.min(range.end - start);
            let chunk = chunk_moments(tensor, start, len, options.zero_eps)?;
            tensor.release(start, len);
            progress(bytes_per_chunk(len));
            Ok(chunk)
        })
        .collect::<Result<_>>()?;
    let digest = Digest::of_chunks(chunks.iter().map(|c| c.1));
    let total = chunks
        .into_iter()
        .map(|c| c.0)
        .fold(Moments::EMPTY, Moments::merge);
    Ok(TensorStats {
        digest: Some(digest),
        ..total.finish(numel as u64)
    })
}

/// Moments and digest of one chunk; each block's bytes are hashed while
/// they are in cache for decoding.
fn chunk_moments(
    tensor: &TensorView<'_>,
    start: usize,
    len: usize,
    eps: f64,
) -> Result<(Moments, u128)> {
    let mut buffer = [0.0f64; BLOCK_ELEMENTS];
    let mut values = vec![
        0u8;
        if tensor.quantization().is_some() {
            8 * BLOCK_ELEMENTS
        } else {
            0
        }
    ];
    let mut acc = Moments::EMPTY;
    let mut hasher = ChunkHasher::new();
    let mut at = start;
    while at < start + len {
        let n = BLOCK_ELEMENTS.min(start + len - at);
        let block = &mut buffer[..n];
        if tensor.quantization().is_some() {
            // A quantized weight's digest is of its dequantized values (f64,
            // little endian): the weight the model computes with.
            tensor.decode_into(at, block)?;
            for (bytes, v) in values.chunks_exact_mut(8).zip(block.iter()) {
                bytes.copy_from_slice(&v.to_le_bytes());
            }
            hasher.update(&values[..n * 8]);
        } else {
            let bytes = tensor.stored_bytes(at, n)?;
            hasher.update(bytes);
            if !decode(tensor.dtype(), bytes, block) {
                return Err(tensor.unsupported_dtype());
            }
        }
        acc = acc.merge(Moments::of_block(block, eps));
        at += n;
    }
    Ok((acc, hasher.finish()))
}

/// Running moments of the finite values seen so far, plus counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moments {
    n: u64,
    mean: f64,
    /// Sum of squared deviations from `mean`.
    m2: f64,
    min: f64,
    max: f64,
    zeros: u64,
    nan: u64,
    inf: u64,
}

/// Independent accumulators per pass, so the compiler can keep them in
/// vector registers (it may not reorder one float sum by itself).
const LANES: usize = 8;

impl Moments {
    pub(crate) const EMPTY: Moments = Moments {
        n: 0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        zeros: 0,
        nan: 0,
        inf: 0,
    };

    /// Moments of one block, two passes while it is in cache.
    pub(crate) fn of_block(values: &[f64], eps: f64) -> Moments {
        if values.is_empty() {
            return Moments::EMPTY;
        }
        let mut sum = [0.0; LANES];
        let mut min = [f64::INFINITY; LANES];
        let mut max = [f64::NEG_INFINITY; LANES];
        let mut zeros = [0u64; LANES];
        let mut lanes = values.chunks_exact(LANES);
        for group in &mut lanes {
            for i in 0..LANES {
                let x = group[i];
                sum[i] += x;
                min[i] = if x < min[i] { x } else { min[i] };
                max[i] = if x > max[i] { x } else { max[i] };
                zeros[i] += u64::from(x.abs() <= eps);
            }
        }
        let tail = lanes.remainder();
        let total: f64 = sum.iter().sum::<f64>() + tail.iter().sum::<f64>();
        if !total.is_finite() {
            // A NaN or Inf is somewhere in the block (or finite values
            // overflowed): take the careful route.
            return Moments::of_block_with_nonfinite(values, eps);
        }
        let n = values.len();
        let mean = total / n as f64;
        let mut m2 = [0.0; LANES];
        let mut lanes = values.chunks_exact(LANES);
        for group in &mut lanes {
            for i in 0..LANES {
                let d = group[i] - mean;
                m2[i] += d * d;
            }
        }
        let tail_m2: f64 = lanes
            .remainder()
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum();
        let fold_min =
            |a: [f64; LANES]| tail.iter().chain(&a).fold(f64::INFINITY, |m, &x| m.min(x));
        let fold_max = |a: [f64; LANES]| {
            tail.iter()
                .chain(&a)
                .fold(f64::NEG_INFINITY, |m, &x| m.max(x))
        };
        Moments {
            n: n as u64,
            mean,
            m2: m2.iter().sum::<f64>() + tail_m2,
            min: fold_min(min),
            max: fold_max(max),
            zeros: zeros.iter().sum::<u64>()
                + tail.iter().filter(|x| x.abs() <= eps).count() as u64,
            nan: 0,
            inf: 0,
        }
    }

    fn of_block_with_nonfinite(values: &[f64], eps: f64) -> Moments {
        let mut finite = [0.0f64; BLOCK_ELEMENTS];
        let mut n = 0;
        let (mut nan, mut inf) = (0, 0);
        for &x in values {
            if x.is_nan() {
                nan += 1;
            } else if x.is_infinite() {
                inf += 1;
            } else {
                finite[n] = x;
                n += 1;
            }
        }
        // Finite values whose plain sum overflows are summed scaled down.
        let moments = if n == 0 {
            Moments::EMPTY
        } else if finite[..n].iter().sum::<f64>().is_finite() {
            Moments::of_block(&finite[..n], eps)
        } else {
            Moments::of_huge_block(&finite[..n], eps)
        };
        Moments {
            nan,
            inf,
            ..moments
        }
    }

    /// Finite values near f64::MAX: Welford's update never forms the sum.
    fn of_huge_block(values: &[f64], eps: f64) -> Moments {
        let mut m = Moments::EMPTY;
        for &x in values {
            m = m.merge(Moments {
                n: 1,
                mean: x,
                m2: 0.0,
                min: x,
                max: x,
                zeros: u64::from(x.abs() <= eps),
                nan: 0,
                inf: 0,
            });
        }
        m
    }

    /// Chan, Golub & LeVeque's pairwise combination.
    pub(crate) fn merge(self, other: Moments) -> Moments {
        let counts = Moments {
            zeros: self.zeros + other.zeros,
            nan: self.nan + other.nan,
            inf: self.inf + other.inf,
            ..self
        };
        if other.n == 0 {
            return counts;
        }
        if self.n == 0 {
            return Moments {
                zeros: counts.zeros,
                nan: counts.nan,
                inf: counts.inf,
                ..other
            };
        }
        let n = self.n + other.n;
        let (na, nb, nn) = (self.n as f64, other.n as f64, n as f64);
        let delta = other.mean - self.mean;
        Moments {
            n,
            mean: if delta.is_finite() {
                self.mean + delta * (nb / nn)
            } else {
                // Means of opposite sign near f64::MAX: the weighted form stays finite.
                self.mean * (na / nn) + other.mean * (nb / nn)
            },
            m2: self.m2 + other.m2 + delta * delta * (na / nn) * nb,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            ..counts
        }
    }

    fn finish(self, numel: u64) -> TensorStats {
        let any = self.n > 0;
        let var = (self.m2 / self.n as f64).max(0.0);
        TensorStats {
            numel,
            mean: any.then_some(self.mean),
            var: any.then_some(var),
            std: any.then_some(var.sqrt()),
            min: any.then_some(self.min),
            max: any.then_some(self.max),
            sparsity: any.then(|| self.zeros as f64 / self.n as f64),
            nan_count: self.nan,
            inf_count: self.inf,
            digest: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn block_matches_two_pass_reference() {
        let values: Vec<f64> = (0..1001)
            .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 11.0)
            .collect();
        let m = Moments::of_block(&values, 1e-8).finish(values.len() as u64);
        let (mean, var) = naive(&values);
        assert!((m.mean.unwrap() - mean).abs() < 1e-13);
        assert!((m.var.unwrap() - var).abs() < 1e-12 * var);
        assert_eq!(m.min, Some(-11.0));
        assert_eq!(m.max, Some(999.0 / 37.0 - 11.0));
    }

    #[test]
    fn merge_is_stable_with_a_large_offset() {
        // Values 1e9 + {−1, +1}: naive Σx² − n·mean² loses every digit here.
        let a = Moments::of_block(&[1e9 - 1.0, 1e9 + 1.0], 0.0);
        let b = Moments::of_block(&[1e9 - 1.0, 1e9 + 1.0, 1e9 + 1.0, 1e9 - 1.0], 0.0);
        let s = a.merge(b).finish(6);
        assert_eq!(s.mean, Some(1e9));
        assert_eq!(s.var, Some(1.0));
    }

    #[test]
    fn nonfinite_values_are_counted_and_left_out() {
        let values = [1.0, f64::NAN, 3.0, f64::INFINITY, f64::NEG_INFINITY, 0.0];
        let s = Moments::of_block(&values, 1e-8).finish(6);
        assert_eq!((s.nan_count, s.inf_count), (1, 2));
        assert_eq!(s.mean, Some(4.0 / 3.0));
        assert_eq!((s.min, s.max), (Some(0.0), Some(3.0)));
        assert_eq!(s.sparsity, Some(1.0 / 3.0));
    }

    #[test]
    fn all_nan_has_no_value_statistics() {
        let s = Moments::of_block(&[f64::NAN; 3], 1e-8).finish(3);
        assert_eq!(s.nan_count, 3);
        assert_eq!((s.mean, s.var, s.min, s.sparsity), (None, None, None, None));
    }

    #[test]
    fn values_near_f64_max_do_not_overflow() {
        let big = f64::MAX / 2.0;
        let s = Moments::of_block(&[big, big, big, big], 0.0).finish(4);
        assert!((s.mean.unwrap() / big - 1.0).abs() < 1e-15);
        assert_eq!(s.var, Some(0.0));
        assert_eq!(s.inf_count, 0);
    }
}
