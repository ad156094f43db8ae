//! Lazy views of single tensors: metadata at once, values on demand.
//!
//! A [`TensorView`] borrows the memory map of its shard. Nothing is read until
//! [`TensorView::decode_into`] asks for a block of elements, and
//! [`TensorView::release`] gives the pages of a finished block back to the
//! kernel, so that streaming a whole model keeps resident memory bounded.

mod dtype;
pub mod ggml;
mod lowrank;
mod matrix;
pub(crate) mod minifloat;
pub mod quant;

use std::path::Path;

pub use dtype::{DType, decode};
pub use ggml::GgmlType;
pub use lowrank::LoraUpdate;
pub use matrix::{MatrixView, RowOrder, stacked_experts};
pub use quant::Quantized;

use crate::error::{Error, Result};
use crate::model::{Shard, TensorEntry};

/// The unit in which file pages are released: 2 MiB, the largest page-cache
/// folio on x86-64 and arm64 (4 KiB pages). See [`TensorView::release`].
pub const RELEASE_BYTES: usize = 2 << 20;

/// One tensor of a model, not yet read. For a quantized weight it is the
/// logical weight (see [`quant`]): name, shape and elements are those of the
/// weight the model computes with, decoded from codes and scales.
#[derive(Clone, Copy)]
pub struct TensorView<'m> {
    pub(crate) entry: &'m TensorEntry,
    pub(crate) shard: &'m Shard,
    pub(crate) shards: &'m [Shard],
    pub(crate) quant: Option<&'m Quantized>,
    /// The model was opened with [`crate::model::Reading::Raw`].
    pub(crate) raw: bool,
    /// A GGUF model's mapping to Hugging Face names.
    pub(crate) hf_names: Option<&'m crate::model::gguf::names::HfNames>,
}

impl<'m> TensorView<'m> {
    /// The tensor's name as stored, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub fn name(&self) -> &'m str {
        &self.entry.name
    }

    /// The Hugging Face name of a GGUF tensor (of expert `expert`, for a
    /// stacked one) in a known architecture; empty otherwise, and for
    /// safetensors models, whose names are already their own.
    pub fn hf_name(&self, expert: Option<u32>) -> String {
        self.hf_names
            .and_then(|names| names.hf_name(self.name(), expert))
            .unwrap_or_default()
    }

    /// The stored element type (of the codes, for a quantized weight).
    pub fn dtype(&self) -> DType {
        self.entry.dtype
    }

    /// The element type as rows report it: the PyTorch dtype name, or the
    /// code type of a quantized weight (`int4`, `nf4`, `float8_e4m3fn`); in
    /// a GGUF file, ggml's type name (`q4_k`, `bf16`, `f32`).
    pub fn code_type(&self) -> String {
        match self.quant {
            Some(q) => q.code_type().to_owned(),
            None if self.shard.gguf => GgmlType::name_of(self.dtype().0)
                .map_or_else(|| self.dtype().to_string(), str::to_owned),
            None => self.dtype().to_string(),
        }
    }

    /// How the tensor was read: its quantization scheme, `none` for a
    /// plain tensor, `raw` for every tensor of a model opened raw.
    pub fn scheme(&self) -> &'m str {
        match self.quant {
            Some(q) => q.scheme(),
            None if self.raw => "raw",
            None => "none",
        }
    }

    /// The quantized weight this view decodes, if it is one.
    pub fn quantization(&self) -> Option<&'m Quantized> {
        self.quant
    }

    /// Bytes stored for this tensor with every sidecar folded into it
    /// (codes + scales + zero points); [`Self::nbytes`] for a plain tensor.
    pub fn quant_bytes(&self) -> usize {
        self.quant.map_or(self.nbytes(), Quantized::stored_bytes)
    }

    /// The stored bytes that `len` elements account for: their share of
    /// [`Self::quant_bytes`] (exact for a plain tensor).
    pub fn bytes_of(&self, len: usize) -> u64 {
        share(self.quant_bytes(), len, self.numel())
    }

    /// The stored shape.
    pub fn shape(&self) -> &'m [usize] {
        &self.entry.shape
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.entry.shape.iter().product()
    }

    /// Bytes of stored data (the codes alone, for a quantized weight).
    pub fn nbytes(&self) -> usize {
        self.entry.range.len()
    }

    /// The shard file that holds this tensor.
    pub fn file(&self) -> &'m Path {
        &self.shard.path
    }

    /// The 2-D view every matrix analysis uses: a scalar is (1, 1), a vector
    /// of n is (1, n), and an N-D tensor is (`shape[0]`, product of the rest).
    ///
    /// ```
    /// use tpa_core::tensors::matrix_shape;
    /// assert_eq!(matrix_shape(&[384]), (1, 384));
    /// assert_eq!(matrix_shape(&[8, 14336, 4096]), (8, 14336 * 4096));
    /// ```
    pub fn matrix_shape(&self) -> (usize, usize) {
        matrix_shape(&self.entry.shape)
    }

    /// Decodes elements `start .. start + out.len()` (row-major order) to f64.
    pub fn decode_into(&self, start: usize, out: &mut [f64]) -> Result<()> {
        if let Some(q) = self.quant {
            self.check_range(start, out.len())?;
            q.decode_range(self.shards, start..start + out.len(), out);
            return Ok(());
        }
        let bytes = self.stored_bytes(start, out.len())?;
        if decode(self.dtype(), bytes, out) {
            Ok(())
        } else {
            Err(self.unsupported_dtype())
        }
    }

    /// The error for a dtype tpa cannot decode, naming file and tensor.
    pub(crate) fn unsupported_dtype(&self) -> Error {
        Error::UnsupportedDtype {
            path: self.shard.path.clone(),
            tensor: self.entry.name.clone(),
            dtype: self.dtype().to_string(),
        }
    }

    /// Fails early, with the tensor named, when its dtype cannot be decoded.
    pub fn check_decodable(&self) -> Result<()> {
        self.decode_into(0, &mut [])
    }

    fn check_range(&self, start: usize, len: usize) -> Result<()> {
        if start.checked_add(len).is_none_or(|end| end > self.numel()) {
            return Err(Error::InvalidTensor {
                path: self.shard.path.clone(),
                tensor: self.entry.name.clone(),
                reason: format!(
                    "elements {start}..{} requested from a tensor of {}",
                    start + len,
                    self.numel()
                ),
            });
        }
        Ok(())
    }

    /// Tells the kernel that elements `start .. start + len` will not be read
    /// again soon, so their file pages leave this process's resident set
    /// (widened to whole [`RELEASE_BYTES`] blocks of the file). A failure only
    /// costs memory, never correctness, so it is ignored.
    pub fn release(&self, start: usize, len: usize) {
        if let Some(q) = self.quant {
            q.release(self.shards, start..start + len);
            return;
        }
        let bits = self.dtype().bits();
        let from = self.entry.range.start + start * bits / 8;
        let to = self.entry.range.start + (start + len) * bits / 8;
        self.shard.release(from, to);
    }

    /// The stored bytes of elements `start .. start + len` (row-major order).
    /// A quantized weight has no such bytes (its elements are computed):
    /// that is an error, as is a range outside the tensor.
    pub fn stored_bytes(&self, start: usize, len: usize) -> Result<&'m [u8]> {
        if self.quant.is_some() {
            return Err(Error::InvalidTensor {
                path: self.shard.path.clone(),
                tensor: self.entry.name.clone(),
                reason: "is quantized: its elements are decoded, not stored".into(),
            });
        }
        self.check_range(start, len)?;
        let bits = self.dtype().bits();
        let from = self.entry.range.start + start * bits / 8;
        let to = self.entry.range.start + (start + len) * bits / 8;
        self.shard
            .data()
            .get(from..to)
            .ok_or_else(|| Error::InvalidTensor {
                path: self.shard.path.clone(),
                tensor: self.entry.name.clone(),
                reason: format!("bytes {from}..{to} lie outside the shard's data"),
            })
    }
}

/// The part of `bytes` that `len` of `total` elements account for.
pub(crate) fn share(bytes: usize, len: usize, total: usize) -> u64 {
    (bytes as u128 * len as u128 / total.max(1) as u128) as u64
}

/// See [`TensorView::matrix_shape`].
pub fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}
