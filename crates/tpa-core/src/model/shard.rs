//! One `.safetensors` file: memory-mapped, header parsed and validated.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};
use safetensors::SafeTensorError;
use safetensors::tensor::{SafeTensors, TensorInfo};

use crate::error::{Error, Result};
use crate::tensors::{DType, RELEASE_BYTES};

/// Largest header we accept. The safetensors crate refuses more than 100 MB
/// as well; the biggest real headers (DeepSeek-V3 shards) are under 1 MB.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A memory-mapped shard.
pub struct Shard {
    pub(crate) path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    /// A GGUF file (its dtypes are named as ggml names them).
    pub(crate) gguf: bool,
}

/// A tensor's header entry, resolved to its shard.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub(crate) name: String,
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) shard: usize,
    /// Byte range within the shard's data section.
    pub(crate) range: Range<usize>,
}

impl Shard {
    /// Maps `path` and validates its header. Returns the shard and its
    /// tensors in storage order (`shard` fields set to `shard_index`).
    pub(crate) fn open(path: &Path, shard_index: usize) -> Result<(Shard, Vec<TensorEntry>)> {
        let invalid = |reason: String| Error::InvalidShard {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len < 8 {
            return Err(invalid(format!(
                "the file is {file_len} bytes, too short to hold the 8-byte header length"
            )));
        }
        // SAFETY: the map is read-only and private to this process's use; tpa
        // never writes model files. Another process truncating the file while
        // we read it is the one hazard, as for every mmap-based reader
        // (safetensors' own documentation maps files the same way).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&mmap[..8]);
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES {
            return Err(invalid(format!(
                "header length {header_len} bytes is absurd (limit {MAX_HEADER_BYTES}); \
                 the file is damaged or not safetensors"
            )));
        }
        if header_len > file_len - 8 {
            return Err(invalid(format!(
                "header length {header_len} bytes is larger than the rest of the file \
                 ({} bytes): the file is truncated or not safetensors",
                file_len - 8
            )));
        }
        let (n, metadata) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| diagnose(path, &mmap[8..8 + header_len as usize], file_len, e))?;

        let mut entries = Vec::with_capacity(metadata.tensors().len());
        for name in metadata.offset_keys() {
            let Some(info) = metadata.info(&name) else {
                continue;
            };
            entries.push(TensorEntry {
                dtype: DType(info.dtype),
                shape: info.shape.clone(),
                shard: shard_index,
                range: info.data_offsets.0..info.data_offsets.1,
                name,
            });
        }
        let shard = Shard {
            path: path.to_owned(),
            mmap,
            data_start: 8 + n,
            gguf: false,
        };
        Ok((shard, entries))
    }

    /// A GGUF file mapped as `mmap`, whose data section starts at `data_start`.
    pub(crate) fn gguf(path: &Path, mmap: Mmap, data_start: usize) -> Shard {
        Shard {
            path: path.to_owned(),
            mmap,
            data_start,
            gguf: true,
        }
    }

    /// The whole file.
    pub(crate) fn file_bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// The path of this shard.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data section (everything after the header).
    pub(crate) fn data(&self) -> &[u8] {
        &self.mmap[self.data_start..]
    }

    /// Drops the pages of data bytes `from..to` from the resident set,
    /// widened to whole [`RELEASE_BYTES`] blocks of the file.
    ///
    /// Why widen: the kernel maps a large page-cache folio (up to 2 MiB,
    /// aligned in the file) whole on a single fault, so a fault in one chunk
    /// maps pages of its neighbour too, some of them already released.
    /// Measured on Linux 6.18/ext4: releasing page-rounded ranges left one
    /// 512 KiB folio per chunk edge resident, and memory grew with the model
    /// (75 MiB peak at 1.9 GB, 220 MiB at 5.2 GB). Widened, whoever touches a
    /// folio last releases all of it (peak 8 MiB at both sizes). A neighbour
    /// that loses pages this way only faults them in again from the page cache.
    pub(crate) fn release(&self, from: usize, to: usize) {
        let start = (self.data_start + from) / RELEASE_BYTES * RELEASE_BYTES;
        let end = (self.data_start + to)
            .next_multiple_of(RELEASE_BYTES)
            .min(self.mmap.len());
        if end > start {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only
            // unmaps pages; the next access faults them in again from the page
            // cache with the same contents, so no borrowed byte can change.
            let _ = unsafe {
                self.mmap
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

/// Turns the safetensors crate's verdict into a message that names the
/// tensor and says what is wrong with it. The crate validates; this only
/// re-reads the header (on the error path) to find the culprit.
fn diagnose(path: &Path, header: &[u8], file_len: u64, error: SafeTensorError) -> Error {
    let invalid = |reason: String| Error::InvalidShard {
        path: path.to_owned(),
        reason,
    };
    let tensor_error = |tensor: &str, reason: String| Error::InvalidTensor {
        path: path.to_owned(),
        tensor: tensor.to_owned(),
        reason,
    };
    let data_len = file_len - 8 - header.len() as u64;
    match error {
        SafeTensorError::InvalidHeader(e) => invalid(format!("header is not UTF-8 ({e})")),
        SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
            invalid(format!("header is not valid safetensors JSON: {e}"))
        }
        SafeTensorError::HeaderTooLarge => invalid("header too large".into()),
        other => {
            let entries = raw_entries(header);
            if let Some((name, reason)) = first_bad_entry(&entries, data_len) {
                return tensor_error(&name, reason);
            }
            match other {
                SafeTensorError::MetadataIncompleteBuffer => {
                    let end = entries.iter().map(|(_, i)| i.data_offsets.1).max();
                    invalid(format!(
                        "the tensors end at data byte {} but the file holds {data_len} data \
                         bytes after the header",
                        end.unwrap_or(0)
                    ))
                }
                other => invalid(other.to_string()),
            }
        }
    }
}

/// Header entries in offset order, for diagnosis only.
fn raw_entries(header: &[u8]) -> Vec<(String, TensorInfo)> {
    let map: HashMap<String, serde_json::Value> =
        serde_json::from_slice(header).unwrap_or_default();
    let mut entries: Vec<(String, TensorInfo)> = map
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
        .collect();
    entries.sort_by_key(|(name, info)| (info.data_offsets, name.clone()));
    entries
}

fn first_bad_entry(entries: &[(String, TensorInfo)], data_len: u64) -> Option<(String, String)> {
    let mut previous: Option<(&str, usize)> = None;
    for (name, info) in entries {
        let (start, end) = info.data_offsets;
        let dtype = DType(info.dtype);
        let elements = info
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        let expected = elements
            .and_then(|n| n.checked_mul(dtype.bits()))
            .map(|b| b.div_ceil(8));
        let reason = if end < start {
            Some(format!(
                "data_offsets [{start}, {end}] end before they start"
            ))
        } else if end as u64 > data_len {
            Some(format!(
                "data_offsets [{start}, {end}] reach past the end of the data ({data_len} bytes): \
                 the file is truncated or the header lies"
            ))
        } else if let Some((prev, prev_end)) = previous.filter(|&(_, e)| start < e) {
            Some(format!(
                "data_offsets [{start}, {end}] overlap tensor {prev} (which ends at {prev_end})"
            ))
        } else if let Some((_, prev_end)) = previous.filter(|&(_, e)| start > e) {
            Some(format!(
                "data_offsets [{start}, {end}] leave a gap after byte {prev_end}"
            ))
        } else if previous.is_none() && start != 0 {
            Some(format!(
                "data_offsets [{start}, {end}]: the first tensor must start at 0"
            ))
        } else {
            match expected {
                None => Some(format!("shape {:?} overflows", info.shape)),
                Some(bytes) if bytes != end - start => Some(format!(
                    "shape {:?} of {dtype} needs {bytes} bytes but data_offsets [{start}, {end}] \
                     hold {}",
                    info.shape,
                    end - start
                )),
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            return Some((name.clone(), reason));
        }
        previous = Some((name, end));
    }
    None
}
