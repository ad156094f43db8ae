//! GGUF files (llama.cpp, Ollama, LM Studio): one file or a split set
//! `X-00001-of-0000N.gguf`, each memory-mapped and validated as strictly as
//! a safetensors header.
//!
//! A tensor stored with `ne = [in, out]` is listed with the PyTorch shape
//! `[out, in]` (`[E, out, in]` for stacked experts): read row-major, the
//! bytes already are that matrix. Block-quantized tensors become
//! [`Quantized`] weights that ggml's decoders read (see [`crate::tensors::ggml`]).

mod header;
pub mod names;

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::Dtype;

pub use header::Value;

use super::shard::{Shard, TensorEntry};
use crate::error::{Error, Result};
use crate::tensors::quant::part::Part;
use crate::tensors::{DType, GgmlType, Quantized, ggml::Storage};

/// What a GGUF model says about itself: its metadata (from the first file
/// of a split set, which holds all of it) and the files it spans.
#[derive(Debug, Clone)]
pub struct GgufMetadata {
    /// The GGUF version of the first file (2 or 3).
    pub version: u32,
    /// Every key-value pair of the first file, in stored order.
    pub entries: Vec<(String, Value)>,
    /// `tokenizer.ggml.tokens`, decoded (token id order), when present.
    pub tokens: Option<Vec<String>>,
}

impl GgufMetadata {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        header::lookup(&self.entries, key)
    }

    /// `general.architecture` (`llama`, `qwen2`, `deepseek2`...).
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// An integer key of the architecture, `{arch}.{key}` (e.g.
    /// `block_count`, `attention.head_count`); `None` when absent or a
    /// per-layer array, which has no one value.
    pub fn arch_int(&self, key: &str) -> Option<i128> {
        let arch = self.architecture()?;
        self.get(&format!("{arch}.{key}")).and_then(Value::as_int)
    }
}

/// A GGUF model opened: its shards, their tensors, the block-quantized
/// weights among them, and its metadata.
pub(crate) struct Opened {
    pub shards: Vec<Shard>,
    pub entries: Vec<TensorEntry>,
    pub quantized: Vec<Quantized>,
    pub metadata: GgufMetadata,
}

/// Whether `path` names a GGUF file.
pub(crate) fn is_gguf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// `(prefix, number, count)` of a split file name `prefix-00002-of-00003.gguf`.
fn split_name(path: &Path) -> Option<(String, u32, u32)> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, number) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(number) && digits(count))
        .then(|| Some((prefix.to_owned(), number.parse().ok()?, count.parse().ok()?)))?
}

/// The place of the file `path` in its split set, by its name, and the
/// set's size: `(0, 1)` for a file that is not split.
fn place_of(path: &Path) -> (usize, usize) {
    let (_, number, count) = split_name(path).unwrap_or_default();
    (number.max(1) as usize - 1, count.max(1) as usize)
}

/// The files of the model `path` belongs to: itself, or every file of its
/// split set in order (missing ones are an error naming them).
pub(crate) fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    let Some((prefix, _, count)) = split_name(path) else {
        return Ok(vec![path.to_owned()]);
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = (1..=count)
        .map(|i| dir.join(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
        .collect();
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(Error::MissingShard {
            index: path.to_owned(),
            shard: missing.clone(),
        });
    }
    Ok(files)
}

/// The GGUF models in `dir`: single files, and split sets by their first file.
pub(crate) fn models_in(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = paths
        .iter()
        .filter(|p| is_gguf(p) && p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("._"))
        })
        .filter(|p| split_name(p).is_none_or(|(_, number, _)| number == 1))
        .cloned()
        .collect();
    models.sort();
    models
}

/// Opens the GGUF model `path` (any file of a split set opens the whole set).
pub(crate) fn open(path: &Path) -> Result<Opened> {
    let files = files_of(path)?;
    let count = files.len();
    let placed: Vec<(&Path, usize, usize)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_path(), i, count))
        .collect();
    let opened = open_placed(&placed, None)?;
    check_total(
        &files[0],
        &opened.metadata,
        opened.entries.len(),
        opened.shards.len(),
    )?;
    Ok(opened)
}

/// Opens some files of a GGUF model (those of a model streamed from the
/// Hub that are on disk now) with `metadata`, the model's metadata read
/// from its first file's header ([`GgufHeader`]). Each file must be the
/// split its name says it is.
pub(crate) fn open_part(files: &[PathBuf], metadata: &GgufMetadata) -> Result<Opened> {
    let placed: Vec<(&Path, usize, usize)> = files
        .iter()
        .map(|f| {
            let (place, count) = place_of(f);
            (f.as_path(), place, count)
        })
        .collect();
    open_placed(&placed, Some(metadata))
}

/// Opens `files`, each with its place in its split set and the set's
/// size; the metadata is `metadata`, or the first split's own.
fn open_placed(files: &[(&Path, usize, usize)], metadata: Option<&GgufMetadata>) -> Result<Opened> {
    let mut opened = Opened {
        shards: Vec::new(),
        entries: Vec::new(),
        quantized: Vec::new(),
        metadata: metadata.cloned().unwrap_or(GgufMetadata {
            version: 0,
            entries: Vec::new(),
            tokens: None,
        }),
    };
    let mut seen = std::collections::HashMap::new();
    for (i, &(file, place, count)) in files.iter().enumerate() {
        let (shard, header) = map(file)?;
        check_split(file, &header, place, count)?;
        let first = opened.entries.len();
        for info in &header.tensors {
            if let Some(first) = seen.insert(info.name.clone(), i) {
                return Err(Error::DuplicateTensor {
                    tensor: info.name.clone(),
                    first: files[first].0.to_owned(),
                    second: file.to_owned(),
                });
            }
            let (entry, quant) = entry(&shard, &header, info, i)?;
            opened.entries.push(entry);
            opened.quantized.extend(quant);
        }
        check_overlaps(
            file,
            opened.entries[first..]
                .iter()
                .map(|e| (e.name.as_str(), e.range.start as u64..e.range.end as u64)),
        )?;
        if place == 0 && metadata.is_none() {
            opened.metadata = metadata_of(&header, shard.file_bytes());
        }
        opened.shards.push(shard);
    }
    Ok(opened)
}

/// The metadata of a parsed header; `bytes` are the file's (at least up to
/// the end of the header), for the token strings.
fn metadata_of(header: &header::Header, bytes: &[u8]) -> GgufMetadata {
    let tokens = header::lookup(&header.metadata, "tokenizer.ggml.tokens")
        .and_then(|v| header::strings(bytes, v));
    GgufMetadata {
        version: header.version,
        entries: header.metadata.clone(),
        tokens,
    }
}

/// One tensor of a [`GgufHeader`].
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// The ggml type's name (`q4_k`, `f16`...).
    pub type_name: &'static str,
    /// The PyTorch shape (`ne` reversed).
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub data_offsets: (u64, u64),
}

/// A GGUF file's header on its own, read before (or without) the file's
/// data, e.g. from the Hub with Range requests: the tensors the file holds
/// and, for a single file or the first of a split set, the model's
/// metadata. Checked as [`crate::model::Model::open`] checks the file.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    pub metadata: GgufMetadata,
    pub tensors: Vec<GgufTensorInfo>,
    /// Where the data section starts in the file.
    pub data_start: u64,
}

impl GgufHeader {
    /// Parses the header of the file `path` (`file_len` bytes) from its
    /// first `bytes`: `Ok(None)` when the header goes on past them (read
    /// more and call again).
    ///
    /// ```
    /// use std::path::Path;
    /// use tpa_core::model::gguf::GgufHeader;
    /// // The magic, version 3, no tensors and no metadata: a whole header.
    /// let mut file = b"GGUF".to_vec();
    /// file.extend(3u32.to_le_bytes());
    /// file.extend([0u8; 16]);
    /// let len = file.len() as u64;
    /// assert!(GgufHeader::from_prefix(Path::new("m.gguf"), &file[..10], len).unwrap().is_none());
    /// let header = GgufHeader::from_prefix(Path::new("m.gguf"), &file, len).unwrap().unwrap();
    /// assert_eq!(header.metadata.version, 3);
    /// assert!(GgufHeader::from_prefix(Path::new("m.gguf"), b"GGML", 99).is_err());
    /// ```
    pub fn from_prefix(path: &Path, bytes: &[u8], file_len: u64) -> Result<Option<GgufHeader>> {
        let header = match header::parse_prefix(bytes, file_len) {
            Ok(header) => header,
            Err(header::Failure::Short) => return Ok(None),
            Err(header::Failure::Bad(reason)) => {
                return Err(Error::InvalidGguf {
                    path: path.to_owned(),
                    reason,
                });
            }
        };
        let data_len = file_len - header.data_start as u64;
        let tensors = header
            .tensors
            .iter()
            .map(|info| {
                let (kind, shape, nbytes) = layout(path, &header, info, data_len)?;
                Ok(GgufTensorInfo {
                    name: info.name.clone(),
                    type_name: kind.name(),
                    shape,
                    data_offsets: (info.offset, info.offset + nbytes as u64),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (place, count) = place_of(path);
        check_split(path, &header, place, count)?;
        check_overlaps(
            path,
            tensors
                .iter()
                .map(|t| (t.name.as_str(), t.data_offsets.0..t.data_offsets.1)),
        )?;
        Ok(Some(GgufHeader {
            metadata: metadata_of(&header, bytes),
            tensors,
            data_start: header.data_start as u64,
        }))
    }

    /// Checks the headers of a whole model, its files in order (`path`,
    /// header): no tensor in two files, and as many tensors as the first
    /// file's `split.tensors.count` says.
    pub fn check_set(files: &[(&Path, &GgufHeader)]) -> Result<()> {
        let mut seen = std::collections::HashMap::new();
        for &(path, header) in files {
            for t in &header.tensors {
                if let Some(first) = seen.insert(t.name.as_str(), path) {
                    return Err(Error::DuplicateTensor {
                        tensor: t.name.clone(),
                        first: first.to_owned(),
                        second: path.to_owned(),
                    });
                }
            }
        }
        match files.first() {
            Some((first, header)) => check_total(first, &header.metadata, seen.len(), files.len()),
            None => Ok(()),
        }
    }
}

/// Maps one file and parses its header.
fn map(path: &Path) -> Result<(Shard, header::Header)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: as for safetensors shards (`Shard::open`): a read-only map of a
    // file tpa never writes.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let header = header::parse(&mmap).map_err(|reason| Error::InvalidGguf {
        path: path.to_owned(),
        reason,
    })?;
    let data_start = header.data_start;
    Ok((Shard::gguf(path, mmap, data_start), header))
}

/// A split file must say it is number `index` of `count`.
fn check_split(path: &Path, header: &header::Header, index: usize, count: usize) -> Result<()> {
    let get = |key: &str| header::lookup(&header.metadata, key).and_then(Value::as_int);
    let invalid = |reason: String| Error::InvalidGguf {
        path: path.to_owned(),
        reason,
    };
    match (get("split.no"), get("split.count")) {
        (None, None) if count == 1 => Ok(()),
        (Some(no), Some(n)) if no == index as i128 && n == count as i128 => Ok(()),
        (no, n) => Err(invalid(format!(
            "as file {} of a split set of {count} it should hold split.no = {index} and \
             split.count = {count}, but it holds {} and {}",
            index + 1,
            no.map_or("none".into(), |v| v.to_string()),
            n.map_or("none".into(), |v| v.to_string()),
        ))),
    }
}

/// No two tensors of a file may share bytes (`tensors`: name and byte range).
fn check_overlaps<'a>(
    path: &Path,
    tensors: impl Iterator<Item = (&'a str, Range<u64>)>,
) -> Result<()> {
    let mut tensors: Vec<_> = tensors.filter(|(_, range)| !range.is_empty()).collect();
    tensors.sort_by_key(|(_, range)| range.start);
    for pair in tensors.windows(2) {
        let ((before, a), (name, b)) = (&pair[0], &pair[1]);
        if b.start < a.end {
            return Err(Error::InvalidTensor {
                path: path.to_owned(),
                tensor: (*name).to_owned(),
                reason: format!(
                    "its bytes {}..{} of the data section overlap tensor {before} ({}..{})",
                    b.start, b.end, a.start, a.end
                ),
            });
        }
    }
    Ok(())
}

/// The first file of a split set gives the total tensor count; the `files`
/// of the model hold `tensors`.
fn check_total(first: &Path, metadata: &GgufMetadata, tensors: usize, files: usize) -> Result<()> {
    let Some(total) = metadata.get("split.tensors.count").and_then(Value::as_int) else {
        return Ok(());
    };
    if total != tensors as i128 {
        return Err(Error::InvalidGguf {
            path: first.to_owned(),
            reason: format!(
                "split.tensors.count says {total} tensors, but the {} files hold {tensors}",
                files.max(1),
            ),
        });
    }
    Ok(())
}

/// The entry of one tensor info, checked against its file; and the
/// quantized weight it is, for a block type.
fn entry(
    shard: &Shard,
    header: &header::Header,
    info: &header::TensorInfo,
    shard_index: usize,
) -> Result<(TensorEntry, Option<Quantized>)> {
    let (kind, shape, nbytes) = layout(shard.path(), header, info, shard.data().len() as u64)?;
    let block = kind.block_elements();
    let range = info.offset as usize..info.offset as usize + nbytes;
    Ok(match kind.storage() {
        Storage::Elements(dtype) => (
            TensorEntry {
                name: info.name.clone(),
                dtype: DType(dtype),
                shape,
                shard: shard_index,
                range,
            },
            None,
        ),
        Storage::Blocks { .. } => {
            let mut stored_shape = shape.clone();
            if let Some(last) = stored_shape.last_mut() {
                *last = *last / block * kind.block_bytes();
            }
            let stored = TensorEntry {
                name: info.name.clone(),
                dtype: DType(Dtype::U8),
                shape: stored_shape,
                shard: shard_index,
                range,
            };
            let logical = TensorEntry {
                shape,
                ..stored.clone()
            };
            let quant = Quantized::ggml(logical, Part::new(&stored), kind);
            (stored, quant)
        }
    })
}

/// The type, PyTorch shape and byte size of one tensor info, checked
/// against a data section of `data_len` bytes.
fn layout(
    path: &Path,
    header: &header::Header,
    info: &header::TensorInfo,
    data_len: u64,
) -> Result<(GgmlType, Vec<usize>, usize)> {
    let invalid = |reason: String| Error::InvalidTensor {
        path: path.to_owned(),
        tensor: info.name.clone(),
        reason,
    };
    let kind = GgmlType::from_id(info.ggml_type).map_err(invalid)?;
    let shape: Vec<usize> = info
        .ne
        .iter()
        .rev()
        .map(|&n| usize::try_from(n).map_err(|_| invalid(format!("dimension {n} is absurd"))))
        .collect::<Result<_>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| invalid(format!("shape {shape:?} overflows")))?;
    let block = kind.block_elements();
    let row = shape.last().copied().unwrap_or(1);
    if row % block != 0 {
        return Err(invalid(format!(
            "rows of {row} elements do not fill whole {} blocks of {block}",
            kind.name()
        )));
    }
    let nbytes = (numel / block)
        .checked_mul(kind.block_bytes())
        .ok_or_else(|| invalid("its byte size overflows".into()))?;
    let end = info.offset.checked_add(nbytes as u64);
    if end.is_none_or(|end| end > data_len) {
        return Err(invalid(format!(
            "its {nbytes} bytes at offset {} lie outside the data section (which starts at \
             byte {} and holds {data_len} bytes): the file is truncated or the offset is wrong",
            info.offset, header.data_start
        )));
    }
    Ok((kind, shape, nbytes))
}
