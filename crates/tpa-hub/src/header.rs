//! A safetensors file's header read from the Hub without its data: one
//! Range request, or two when the header is larger than the first read.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::client::{Bytes, Client, Failure, Target, header};
use crate::error::HubError;
use crate::repo::{RemoteFile, RepoId, encode_path};
use crate::size::human;
use crate::{Plan, Progress};

/// The first read: huggingface_hub's size, which holds 97% of real headers.
const FIRST_READ: u64 = 100_000;
/// The largest header accepted, as the safetensors crate's limit.
const MAX_HEADER: u64 = 100_000_000;

/// One tensor as a header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTensor {
    pub name: String,
    /// The safetensors dtype name (`BF16`, `F8_E4M3`, `I32`...).
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Byte range within the data section (after the header).
    pub data_offsets: (u64, u64),
}

impl HeaderTensor {
    /// Stored bytes.
    pub fn bytes(&self) -> u64 {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// A remote file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteHeader {
    /// The file, as the listing gives it.
    pub file: RemoteFile,
    /// Length of the header after its first 8 bytes: the data section
    /// starts at byte `8 + header_len` (safetensors: the JSON's length;
    /// GGUF: the rest of the header and its padding).
    pub header_len: u64,
    /// Tensors in storage order.
    pub tensors: Vec<HeaderTensor>,
    /// The header's `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// Requests it took (1, or 2 for a header beyond the first read).
    pub requests: u32,
}

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Reads the header of `file` (a `.safetensors` file of `repo` at `commit`)
/// with Range requests, checking that the server answered exactly the bytes
/// asked for and that every tensor lies inside the file.
pub fn read_header(
    client: &Client,
    repo: &RepoId,
    commit: &str,
    file: &RemoteFile,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<RemoteHeader, HubError> {
    let (target, url) = resolve(client, repo, commit, file);
    let bad = |reason: String| HubError::BadResponse {
        what: target.describe(),
        url: url.clone(),
        reason,
    };
    if file.size < 8 {
        return Err(bad(format!(
            "the file is {} bytes, too short for a safetensors header",
            file.size
        )));
    }
    let first = ranged(client, &url, target, 0, FIRST_READ.min(file.size), on_retry)?;
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap_or_default());
    if header_len > MAX_HEADER || header_len > file.size - 8 {
        return Err(bad(format!(
            "header length {header_len} bytes does not fit a file of {} bytes (limit {MAX_HEADER}): \
             not safetensors, or damaged",
            file.size
        )));
    }
    let (json, requests) = if 8 + header_len <= first.len() as u64 {
        (first[8..8 + header_len as usize].to_vec(), 1)
    } else {
        (ranged(client, &url, target, 8, header_len, on_retry)?, 2)
    };
    let mut raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|source| HubError::Json {
            what: format!("the header of {}", target.describe()),
            source,
        })?;
    let metadata = match raw.remove("__metadata__") {
        Some(value) => serde_json::from_value(value).map_err(|source| HubError::Json {
            what: format!("the __metadata__ of {}", target.describe()),
            source,
        })?,
        None => BTreeMap::new(),
    };
    let data_len = file.size - 8 - header_len;
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let entry: Entry = serde_json::from_value(value).map_err(|source| HubError::Json {
            what: format!("tensor {name} in the header of {}", target.describe()),
            source,
        })?;
        let (start, end) = entry.data_offsets;
        if start > end || end > data_len {
            return Err(bad(format!(
                "tensor {name} claims bytes {start}..{end} of a {data_len}-byte data section"
            )));
        }
        tensors.push(HeaderTensor {
            name,
            dtype: entry.dtype,
            shape: entry.shape,
            data_offsets: entry.data_offsets,
        });
    }
    tensors.sort_by_key(|t| t.data_offsets);
    Ok(RemoteHeader {
        file: file.clone(),
        header_len,
        tensors,
        metadata,
        requests,
    })
}

/// The headers of every safetensors file of `plan`, read `workers` at a
/// time, in path order.
pub fn read_headers(
    client: &Client,
    plan: &Plan,
    workers: usize,
    progress: &dyn Progress,
) -> Result<Vec<RemoteHeader>, HubError> {
    let files: Vec<&RemoteFile> = plan
        .files
        .iter()
        .map(|f| &f.file)
        .filter(|f| f.path.ends_with(".safetensors"))
        .collect();
    let on_retry = |message: &str, delay| progress.retrying(message, delay);
    let mut headers = for_each_file(&files, workers, |file| {
        read_header(client, &plan.repo, &plan.commit, file, &on_retry)
    })?;
    headers.sort_by(|a, b| a.file.path.cmp(&b.file.path));
    Ok(headers)
}

/// `read` on each of `files`, `workers` at a time; the first error stops
/// the others after their current file. The results come in no set order.
pub fn for_each_file<T: Send, E: Send>(
    files: &[&RemoteFile],
    workers: usize,
    read: impl Fn(&RemoteFile) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, files.len().max(1)) {
            scope.spawn(|| {
                while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = read(file);
                    if result.is_err() {
                        next.store(files.len(), Ordering::Relaxed);
                    }
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect()
}

/// The first bytes of `file` (of `repo` at `commit`) that `parse` needs, by
/// Range requests: `reads.start()` bytes, then twice as many each time
/// `parse` answers `Ok(None)` (more needed), up to the whole file or
/// `reads.end()` bytes (past which it is an error: a header that claims
/// more is damaged);
/// `parse`'s result, and the requests it took. For headers whose size is
/// not known before they are read (GGUF).
pub fn read_prefix<T, E: From<HubError>>(
    client: &Client,
    repo: &RepoId,
    commit: &str,
    file: &RemoteFile,
    reads: RangeInclusive<u64>,
    on_retry: &dyn Fn(&str, Duration),
    mut parse: impl FnMut(&[u8]) -> Result<Option<T>, E>,
) -> Result<(T, u32), E> {
    let (target, url) = resolve(client, repo, commit, file);
    let mut bytes = Vec::new();
    let (mut want, max) = ((*reads.start()).max(1), *reads.end());
    let mut requests = 0;
    loop {
        requests += 1;
        let want_now = want.min(file.size).min(max);
        let have = bytes.len() as u64;
        if want_now > have {
            bytes.extend(ranged(
                client,
                &url,
                target,
                have,
                want_now - have,
                on_retry,
            )?);
        }
        if let Some(parsed) = parse(&bytes)? {
            return Ok((parsed, requests));
        }
        if want_now == file.size || want_now == max {
            let reason = if want_now == file.size {
                "the whole file was read and its header did not end".into()
            } else {
                format!(
                    "its header goes on past {} (the most read): it is damaged",
                    human(max)
                )
            };
            return Err(HubError::BadResponse {
                what: target.describe(),
                url,
                reason,
            }
            .into());
        }
        want = want.saturating_mul(2);
    }
}

/// The target and URL of `file` of `repo` at `commit`.
fn resolve<'a>(
    client: &Client,
    repo: &'a RepoId,
    commit: &'a str,
    file: &'a RemoteFile,
) -> (Target<'a>, String) {
    let target = Target {
        repo,
        revision: commit,
        path: Some(&file.path),
    };
    let url = format!(
        "{}/{repo}/resolve/{commit}/{}",
        client.endpoint(),
        encode_path(&file.path)
    );
    (target, url)
}

/// `len` bytes from `start`, as a 206 answer of exactly that range: a 200
/// (the server ignored Range and would send the whole file) is refused.
fn ranged(
    client: &Client,
    url: &str,
    target: Target<'_>,
    start: u64,
    len: u64,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<Vec<u8>, HubError> {
    let what = target.describe();
    client.retrying(&what, on_retry, || {
        let response = client.get(url, Some(Bytes::Span { start, len }), target)?;
        let bad = |reason: String| {
            Failure::Fatal(HubError::BadResponse {
                what: what.clone(),
                url: url.to_owned(),
                reason,
            })
        };
        if response.status().as_u16() != 206 {
            return Err(bad(format!(
                "HTTP {} to a Range request (206 expected): the server does not serve byte ranges",
                response.status().as_u16()
            )));
        }
        let range = header(&response, "content-range").unwrap_or_default();
        if span_of(&range) != Some((start, start + len - 1)) {
            return Err(bad(format!(
                "asked for bytes {start}-{}, got Content-Range `{range}`",
                start + len - 1
            )));
        }
        let mut body = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(response.into_body().into_reader(), len + 1),
            &mut body,
        )
        .map_err(|e| Failure::transient(format!("reading the header: {e}")))?;
        if body.len() as u64 != len {
            return Err(Failure::transient(format!(
                "{} bytes of a {len}-byte range arrived",
                body.len()
            )));
        }
        Ok(body)
    })
}

/// START and END of `bytes START-END/TOTAL`.
fn span_of(content_range: &str) -> Option<(u64, u64)> {
    let range = content_range.trim().strip_prefix("bytes")?.trim_start();
    let (span, _total) = range.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read_with_both_ends() {
        assert_eq!(span_of("bytes 0-99999/5234139343"), Some((0, 99_999)));
        assert_eq!(span_of("bytes */200"), None);
        assert_eq!(
            Bytes::Span { start: 8, len: 10 }.header(),
            "bytes=8-17",
            "HTTP range ends are inclusive"
        );
    }
}
