//! One file: continue the kept partial download with `Range`, check size
//! and checksum, then rename it into place.
//!
//! Why not the hf-hub crate (team notes, hub-download.md): 0.4 writes only
//! into its cache layout and 1.0 left truncated files after an interrupted
//! run; neither checks sha256. Here a partial lives under
//! `.tpa-download/<content id>.incomplete` until its bytes are verified, so
//! a half or corrupt file never takes the final name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::Progress;
use crate::client::{Bytes, Client, Failure, Target, header};
use crate::error::HubError;
use crate::repo::{RemoteFile, RepoId, encode_path, safe_local_path};

/// Read and write in pieces of this size.
const CHUNK: usize = 1 << 20;

/// Where the partial download of `file` is kept between runs.
pub(crate) fn partial_path(dir: &Path, file: &RemoteFile) -> PathBuf {
    dir.join(crate::STATE_DIR)
        .join(format!("{}.incomplete", file.content_id()))
}

/// The checksum a file is verified against: sha256 for LFS files, the git
/// blob sha1 for the others.
#[derive(Clone)]
pub(crate) enum Checksum {
    Sha256(Sha256),
    GitBlob(Sha1),
}

impl Checksum {
    pub(crate) fn new(file: &RemoteFile) -> Checksum {
        if file.sha256.is_some() {
            Checksum::Sha256(Sha256::new())
        } else {
            let mut sha1 = Sha1::new();
            sha1.update(format!("blob {}\0", file.size).as_bytes());
            Checksum::GitBlob(sha1)
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Checksum::Sha256(h) => h.update(bytes),
            Checksum::GitBlob(h) => h.update(bytes),
        }
    }

    /// Name of the check, expected value, and value of the bytes seen.
    pub(crate) fn finish(self, file: &RemoteFile) -> (&'static str, String, String) {
        match self {
            Checksum::Sha256(h) => (
                "sha256",
                file.sha256.clone().unwrap_or_default(),
                hex(&h.finalize()),
            ),
            Checksum::GitBlob(h) => ("git blob sha1", file.git_oid.clone(), hex(&h.finalize())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the file at `path` has exactly the size and checksum of `file`.
pub(crate) fn verify_on_disk(path: &Path, file: &RemoteFile) -> Result<bool, HubError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.len() == file.size) {
        return Ok(false);
    }
    let mut checksum = Checksum::new(file);
    hash_prefix(path, file.size, &mut checksum)?;
    let (_, expected, actual) = checksum.finish(file);
    Ok(expected == actual)
}

/// Feeds the first `len` bytes of `path` to `checksum`.
fn hash_prefix(path: &Path, len: u64, checksum: &mut Checksum) -> Result<(), HubError> {
    let mut reader = File::open(path)
        .map_err(|e| HubError::io(path, e))?
        .take(len);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => checksum.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HubError::io(path, e)),
        }
    }
}

/// What every file of one download shares.
pub(crate) struct Fetcher<'a> {
    pub client: &'a Client,
    pub repo: &'a RepoId,
    pub commit: &'a str,
    pub dir: &'a Path,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Progress,
}

/// A partial download being extended.
struct Partial {
    path: PathBuf,
    have: u64,
    checksum: Checksum,
}

impl Fetcher<'_> {
    /// Downloads `file` into place, resuming a partial download if one is kept.
    pub(crate) fn fetch(&self, file: &RemoteFile) -> Result<(), HubError> {
        let local = self.dir.join(safe_local_path(&file.path)?);
        let path = partial_path(self.dir, file);
        for folder in [path.parent(), local.parent()].into_iter().flatten() {
            std::fs::create_dir_all(folder).map_err(|e| HubError::io(folder, e))?;
        }
        let mut partial = Partial {
            have: 0,
            checksum: Checksum::new(file),
            path,
        };
        match std::fs::metadata(&partial.path) {
            Ok(m) if m.len() <= file.size => {
                hash_prefix(&partial.path, m.len(), &mut partial.checksum)?;
                partial.have = m.len();
            }
            // Absent, or longer than the file can be: start empty (an empty
            // file needs no request, but does need to exist).
            _ => File::create(&partial.path)
                .map(drop)
                .map_err(|e| HubError::io(&partial.path, e))?,
        }
        self.progress
            .file_started(&file.path, file.size, partial.have);
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.client.endpoint(),
            self.repo,
            self.commit,
            encode_path(&file.path)
        );
        let target = Target {
            repo: self.repo,
            revision: self.commit,
            path: Some(&file.path),
        };
        let on_retry = |message: &str, delay| self.progress.retrying(message, delay);
        self.client.retrying(&file.path, &on_retry, || {
            self.receive(&url, target, file, &mut partial)
        })?;

        let (check, expected, actual) = partial.checksum.finish(file);
        if expected != actual {
            let _ = std::fs::remove_file(&partial.path);
            return Err(HubError::Corrupt {
                path: file.path.clone(),
                check,
                expected,
                actual,
            });
        }
        // On disk before it takes the final name: a crash right after the
        // rename must not leave a file that looks complete and is not.
        File::open(&partial.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| HubError::io(&partial.path, e))?;
        std::fs::rename(&partial.path, &local).map_err(|e| HubError::io(&local, e))?;
        self.progress.file_done(&file.path);
        Ok(())
    }

    /// One request: appends what arrives to the partial file, hashing it.
    fn receive(
        &self,
        url: &str,
        target: Target<'_>,
        file: &RemoteFile,
        partial: &mut Partial,
    ) -> Result<(), Failure> {
        if partial.have == file.size {
            return Ok(());
        }
        let response = self.client.get(
            url,
            (partial.have > 0).then_some(Bytes::From(partial.have)),
            target,
        )?;
        let partial_content = response.status().as_u16() == 206;
        let resumed = partial_content
            && header(&response, "content-range")
                .is_some_and(|r| range_start(&r) == Some(partial.have));
        if !resumed && (partial.have > 0 || partial_content) {
            // The server ignored the Range (200: the whole file follows) or
            // answered another one (then ask again for all of it).
            self.progress.restarted(&file.path, partial.have);
            partial.have = 0;
            partial.checksum = Checksum::new(file);
            if partial_content {
                return Err(Failure::transient(
                    "the server sent another range than asked",
                ));
            }
        }
        let io = |e| Failure::Fatal(HubError::io(&partial.path, e));
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial.path)
            .map_err(io)?;
        out.set_len(partial.have).map_err(io)?;
        out.seek(SeekFrom::Start(partial.have)).map_err(io)?;

        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        let start = partial.have;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Failure::Fatal(HubError::Cancelled));
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::Transient {
                        reason: format!("connection lost at byte {}: {e}", partial.have),
                        retry_after: None,
                        progressed: partial.have > start,
                    });
                }
            };
            if partial.have + n as u64 > file.size {
                let _ = std::fs::remove_file(&partial.path);
                return Err(Failure::Fatal(HubError::Corrupt {
                    path: file.path.clone(),
                    check: "size",
                    expected: format!("{} bytes", file.size),
                    actual: format!("more than {} bytes", file.size),
                }));
            }
            // Written straight through: what is on disk is exactly what was
            // hashed, so a killed run resumes from the file's length.
            out.write_all(&buf[..n])
                .map_err(|e| Failure::Fatal(HubError::io(&partial.path, e)))?;
            partial.checksum.update(&buf[..n]);
            partial.have += n as u64;
            self.progress.advanced(&file.path, n as u64);
        }
        if partial.have < file.size {
            return Err(Failure::Transient {
                reason: format!("the body ended at byte {} of {}", partial.have, file.size),
                retry_after: None,
                progressed: partial.have > start,
            });
        }
        Ok(())
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL`.
fn range_start(content_range: &str) -> Option<u64> {
    let range = content_range.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let file = RemoteFile {
            path: "a".into(),
            size: 6,
            git_oid: "ce013625030ba8dba906f756967f9e9ca394464a".into(),
            sha256: None,
        };
        let mut c = Checksum::new(&file);
        c.update(b"hello\n");
        let (_, expected, actual) = c.finish(&file);
        assert_eq!(expected, actual);
    }

    #[test]
    fn content_range_start_is_read() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }
}
