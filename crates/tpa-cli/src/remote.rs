//! A Hub model's tensors from its files' headers, read with Range requests
//! before (or without) downloading the weights: every safetensors header,
//! or every GGUF header and the model's metadata from the first.

use std::path::Path;

use anyhow::{Context, Result};
use tpa_core::model::GgufMetadata;
use tpa_core::model::gguf::GgufHeader;
use tpa_hub::{Client, HeaderTensor, Plan, Progress, RemoteFile, RemoteHeader};

/// The first read of a GGUF header. A large vocabulary's metadata (tokens,
/// scores, merges) runs to several MB (Gemma 3's 262144 tokens: 6.2 MiB);
/// smaller headers cost one request.
const GGUF_FIRST_READ: u64 = 4 << 20;
/// The most of a GGUF header read into memory: real ones are tens of MB at
/// most, so a header that claims more (a lying string length) is damaged.
const GGUF_MAX_HEADER: u64 = 256 << 20;

/// The headers of a planned model's weight files.
pub struct RemoteModel {
    /// In path order (split order for a GGUF split set). For GGUF, `dtype`
    /// is the ggml type's name and `shape` the dequantized tensor's.
    pub headers: Vec<RemoteHeader>,
    /// A GGUF model's metadata (from its first file).
    pub gguf: Option<GgufMetadata>,
}

/// Reads the headers of `plan`'s weights, `workers` at a time: its GGUF
/// files if it has any (one model, as the selection chose), else its
/// safetensors files.
pub fn read(
    client: &Client,
    plan: &Plan,
    workers: usize,
    progress: &dyn Progress,
) -> Result<RemoteModel> {
    let ggufs: Vec<&RemoteFile> = plan
        .files
        .iter()
        .map(|f| &f.file)
        .filter(|f| f.path.ends_with(".gguf"))
        .collect();
    if ggufs.is_empty() {
        return Ok(RemoteModel {
            headers: tpa_hub::read_headers(client, plan, workers, progress)?,
            gguf: None,
        });
    }
    let on_retry = |message: &str, delay| progress.retrying(message, delay);
    let mut read = tpa_hub::for_each_file(&ggufs, workers, |file| {
        let path = Path::new(&file.path);
        let (header, requests) = tpa_hub::read_prefix(
            client,
            &plan.repo,
            &plan.commit,
            file,
            GGUF_FIRST_READ..=GGUF_MAX_HEADER,
            &on_retry,
            |bytes| GgufHeader::from_prefix(path, bytes, file.size).map_err(anyhow::Error::from),
        )
        .with_context(|| format!("reading the GGUF header of {} in {}", file.path, plan.repo))?;
        anyhow::Ok((file.clone(), header, requests))
    })?;
    read.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let files: Vec<(&Path, &GgufHeader)> = read
        .iter()
        .map(|(file, header, _)| (Path::new(&file.path), header))
        .collect();
    GgufHeader::check_set(&files).with_context(|| format!("the GGUF files of {}", plan.repo))?;
    let gguf = read.first().map(|(_, header, _)| header.metadata.clone());
    let headers = read
        .into_iter()
        .map(|(file, header, requests)| RemoteHeader {
            header_len: header.data_start.saturating_sub(8),
            tensors: header
                .tensors
                .into_iter()
                .map(|t| HeaderTensor {
                    name: t.name,
                    dtype: t.type_name.to_owned(),
                    shape: t.shape.iter().map(|&d| d as u64).collect(),
                    data_offsets: t.data_offsets,
                })
                .collect(),
            metadata: Default::default(),
            file,
            requests,
        })
        .collect();
    Ok(RemoteModel { headers, gguf })
}
