//! Cluster structure of the token-embedding matrix: which tensor it is,
//! its standardized values, k-means, the scores that choose k, and the sweep.

pub mod kmeans;
pub mod scores;
pub mod sweep;
pub mod tokens;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensors::TensorView;

/// The names the original tool looked for first, in its order.
pub const KNOWN_NAMES: [&str; 7] = [
    "model.embed_tokens.weight",
    "transformer.wte.weight",
    "embed_tokens.weight",
    "model.wte.weight",
    "tok_embeddings.weight",
    "embeddings.word_embeddings.weight",
    // GGUF (llama.cpp).
    "token_embd.weight",
];

/// Finds the token-embedding tensor as the original did: the known names,
/// then the first 2-D tensor whose name has "embed" and "weight" and is not a
/// position or token-type embedding. `explicit` (`--tensor`) overrides.
pub fn find_embedding<'m>(model: &'m Model, explicit: Option<&str>) -> Result<TensorView<'m>> {
    if let Some(name) = explicit {
        return model.tensor(name);
    }
    for name in KNOWN_NAMES {
        if let Ok(tensor) = model.tensor(name) {
            return Ok(tensor);
        }
    }
    model
        .tensors()
        .find(|t| {
            let name = t.name().to_ascii_lowercase();
            name.contains("embed")
                && name.contains("weight")
                && !name.contains("position")
                && !name.contains("token_type")
                && t.shape().len() == 2
        })
        .ok_or_else(|| Error::TensorNotFound {
            tensor: "a token embedding (no tensor named like one; pass --tensor NAME)".into(),
        })
}

/// An n × d matrix with per-column mean and scale, as scikit-learn's
/// StandardScaler: z = (x − mean) / std with the population std, and scale 1
/// for constant columns. Means and scales are f64; `row_f64` standardizes in
/// f64 on the fly (for exact scores), `to_f32` gives the copy k-means uses.
pub struct Standardized<'a> {
    raw: &'a [f32],
    d: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl<'a> Standardized<'a> {
    /// `raw` standardized with the column statistics of `like` (to score a
    /// sample of rows exactly as they sit in the whole matrix).
    pub fn with_stats_of(raw: &'a [f32], like: &Standardized<'_>) -> Standardized<'a> {
        Standardized {
            raw,
            d: like.d,
            mean: like.mean.clone(),
            scale: like.scale.clone(),
        }
    }

    /// Column statistics of `raw` (row-major, `d` columns), two-pass in f64.
    pub fn new(raw: &'a [f32], d: usize) -> Standardized<'a> {
        let n = raw.len().checked_div(d).unwrap_or(0);
        let column = |j: usize| -> (f64, f64) {
            let mean = (0..n).map(|i| f64::from(raw[i * d + j])).sum::<f64>() / n.max(1) as f64;
            let var = (0..n)
                .map(|i| (f64::from(raw[i * d + j]) - mean).powi(2))
                .sum::<f64>()
                / n.max(1) as f64;
            (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
        };
        let (mean, scale) = (0..d).into_par_iter().map(column).unzip();
        Standardized {
            raw,
            d,
            mean,
            scale,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.raw.len().checked_div(self.d).unwrap_or(0)
    }

    /// The unstandardized values, row-major.
    pub fn raw(&self) -> &'a [f32] {
        self.raw
    }

    /// Row i, unstandardized.
    pub fn raw_row(&self, i: usize) -> &'a [f32] {
        &self.raw[i * self.d..(i + 1) * self.d]
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Row i, standardized in f64.
    pub fn row_f64(&self, i: usize, out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (f64::from(self.raw[i * self.d + j]) - self.mean[j]) / self.scale[j];
        }
    }

    /// The whole matrix standardized, as f32, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        let d = self.d;
        let mut out = vec![0.0f32; self.raw.len()];
        out.par_chunks_mut(d.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = ((f64::from(self.raw[i * d + j]) - self.mean[j]) / self.scale[j]) as f32;
                }
            });
        out
    }
}

/// The tensor's 2-D view as f32 (exact for every dtype of a real embedding:
/// bf16, f16, f32; f64 rounds to nearest).
pub fn load_f32(tensor: &TensorView<'_>) -> Result<(Vec<f32>, usize, usize)> {
    let (rows, cols) = tensor.matrix_shape();
    let mut out = vec![0.0f32; rows * cols];
    out.par_chunks_mut(cols.max(1) * 256)
        .enumerate()
        .try_for_each(|(b, chunk)| -> Result<()> {
            let mut buffer = vec![0.0f64; chunk.len()];
            tensor.decode_into(b * cols.max(1) * 256, &mut buffer)?;
            chunk
                .iter_mut()
                .zip(&buffer)
                .for_each(|(o, v)| *o = *v as f32);
            Ok(())
        })?;
    tensor.release(0, rows * cols);
    Ok((out, rows, cols))
}
