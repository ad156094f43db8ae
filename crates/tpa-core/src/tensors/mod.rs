//! Lazy views of single tensors: metadata at once, values on demand.
//!
//! A [`TensorView`] borrows the memory map of its shard. Nothing is read until
//! [`TensorView::decode_into`] asks for a block of elements, and
//! [`TensorView::release`] gives the pages of a finished block back to the
//! kernel, so that streaming a whole model keeps resident memory bounded.

mod dtype;
mod matrix;
mod minifloat;

use std::path::Path;

pub use dtype::{DType, decode};
pub use matrix::MatrixView;

use crate::error::{Error, Result};
use crate::model::{Shard, TensorEntry};

/// The unit in which file pages are released: 2 MiB, the largest page-cache
/// folio on x86-64 and arm64 (4 KiB pages). See [`TensorView::release`].
pub const RELEASE_BYTES: usize = 2 << 20;

/// One tensor of a model, not yet read.
#[derive(Clone, Copy)]
pub struct TensorView<'m> {
    pub(crate) entry: &'m TensorEntry,
    pub(crate) shard: &'m Shard,
}

impl<'m> TensorView<'m> {
    /// The tensor's name as stored, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub fn name(&self) -> &'m str {
        &self.entry.name
    }

    /// The stored element type.
    pub fn dtype(&self) -> DType {
        self.entry.dtype
    }

    /// The stored shape.
    pub fn shape(&self) -> &'m [usize] {
        &self.entry.shape
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.entry.shape.iter().product()
    }

    /// Bytes of stored data.
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

    /// Tells the kernel that elements `start .. start + len` will not be read
    /// again soon, so their file pages leave this process's resident set
    /// (widened to whole [`RELEASE_BYTES`] blocks of the file). A failure only
    /// costs memory, never correctness, so it is ignored.
    pub fn release(&self, start: usize, len: usize) {
        let bits = self.dtype().bits();
        let from = self.entry.range.start + start * bits / 8;
        let to = self.entry.range.start + (start + len) * bits / 8;
        self.shard.release(from, to);
    }

    /// The stored bytes of elements `start .. start + len` (row-major order).
    pub fn stored_bytes(&self, start: usize, len: usize) -> Result<&'m [u8]> {
        let bits = self.dtype().bits();
        let out_of_range = || Error::InvalidTensor {
            path: self.shard.path.clone(),
            tensor: self.entry.name.clone(),
            reason: format!(
                "elements {start}..{} requested from a tensor of {}",
                start + len,
                self.numel()
            ),
        };
        if start.checked_add(len).is_none_or(|end| end > self.numel()) {
            return Err(out_of_range());
        }
        let from = self.entry.range.start + start * bits / 8;
        let to = self.entry.range.start + (start + len) * bits / 8;
        self.shard.data().get(from..to).ok_or_else(out_of_range)
    }
}

/// See [`TensorView::matrix_shape`].
pub fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}
