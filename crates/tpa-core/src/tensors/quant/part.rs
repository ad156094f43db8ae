//! A stored tensor that a dequantizer reads: codes, scales, zero points.

use crate::model::{Shard, TensorEntry};
use crate::tensors::{DType, decode};

/// One stored tensor folded into a quantized weight.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) entry: TensorEntry,
}

impl Part {
    pub(crate) fn new(entry: &TensorEntry) -> Part {
        Part {
            entry: entry.clone(),
        }
    }

    pub(crate) fn dtype(&self) -> DType {
        self.entry.dtype
    }

    pub(crate) fn numel(&self) -> usize {
        self.entry.shape.iter().product()
    }

    /// The stored bytes. Detection checked that the range lies in the shard.
    pub(crate) fn bytes<'a>(&self, shards: &'a [Shard]) -> &'a [u8] {
        &shards[self.entry.shard].data()[self.entry.range.clone()]
    }

    /// Element `index` decoded with the stored dtype (f32/bf16/f16/fp8 scales,
    /// integer zero points or group indices).
    pub(crate) fn value(&self, shards: &[Shard], index: usize) -> f64 {
        let width = self.dtype().bits() / 8;
        let bytes = &self.bytes(shards)[index * width..(index + 1) * width];
        let mut out = [0.0];
        decode(self.dtype(), bytes, &mut out);
        out[0]
    }

    /// The 32-bit little-endian word `index` (packed codes are `I32`/`U32`).
    #[inline]
    pub(crate) fn word(bytes: &[u8], index: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[index * 4..index * 4 + 4]);
        u32::from_le_bytes(w)
    }

    /// Gives the pages of bytes `from..to` of this tensor back to the kernel.
    pub(crate) fn release(&self, shards: &[Shard], from: usize, to: usize) {
        let start = self.entry.range.start;
        shards[self.entry.shard].release(start + from, start + to.min(self.entry.range.len()));
    }
}
