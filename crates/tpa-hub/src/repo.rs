//! Repository ids, the files of a repository, and their URLs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::HubError;

/// A model repository id: `ORG/NAME`, or a bare `NAME` for the Hub's oldest
/// models (e.g. `gpt2`).
///
/// ```
/// let id: tpa_hub::RepoId = "Qwen/Qwen3-4B".parse().unwrap();
/// assert_eq!(id.to_string(), "Qwen/Qwen3-4B");
/// assert!("../etc".parse::<tpa_hub::RepoId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    parts: Vec<String>,
}

impl std::str::FromStr for RepoId {
    type Err = HubError;

    fn from_str(id: &str) -> Result<RepoId, HubError> {
        let parts: Vec<String> = id.split('/').map(str::to_owned).collect();
        // The Hub's own rule, which also keeps the id safe as a folder name.
        let valid_part = |p: &String| {
            !p.is_empty()
                && p.len() <= 96
                && !p.starts_with(['.', '-'])
                && !p.contains("..")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() > 2 || !parts.iter().all(valid_part) {
            return Err(HubError::BadRepoId(id.to_owned()));
        }
        Ok(RepoId { parts })
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("/"))
    }
}

impl RepoId {
    /// Where the repository's files go under `root`: `root/ORG/NAME`.
    pub fn local_dir(&self, root: &Path) -> PathBuf {
        self.parts.iter().fold(root.to_path_buf(), |p, s| p.join(s))
    }
}

/// One file of a repository at a commit, as the tree listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path inside the repository, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Git blob id (sha1 of `blob <size>\0<content>`), for files stored in git.
    pub git_oid: String,
    /// sha256 of the content, for files stored in LFS.
    pub sha256: Option<String>,
}

impl RemoteFile {
    /// A name for this content that no other content shares, for its
    /// partial download: a resumed download can only continue the same bytes.
    pub(crate) fn content_id(&self) -> &str {
        self.sha256.as_deref().unwrap_or(&self.git_oid)
    }
}

/// One entry of `GET /api/models/{repo}/tree/{rev}?recursive=true`.
#[derive(Debug, Deserialize)]
pub(crate) struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    lfs: Option<LfsInfo>,
}

#[derive(Debug, Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl TreeEntry {
    /// The entry as a file, or None for a directory.
    pub(crate) fn into_file(self) -> Option<RemoteFile> {
        if self.kind != "file" {
            return None;
        }
        Some(match self.lfs {
            Some(lfs) => RemoteFile {
                path: self.path,
                size: lfs.size,
                git_oid: self.oid,
                sha256: Some(lfs.oid.to_ascii_lowercase()),
            },
            None => RemoteFile {
                path: self.path,
                size: self.size,
                git_oid: self.oid,
                sha256: None,
            },
        })
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved
/// characters), so `/` in a branch name and `#` or spaces in a file name
/// reach the Hub intact.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A repository path with each segment encoded and the `/` kept.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// The repository path of a file as a relative local path, or an error if
/// it could land outside the output directory or in tpa's own state.
pub(crate) fn safe_local_path(path: &str) -> Result<PathBuf, HubError> {
    let unsafe_path = || HubError::UnsafePath(path.to_owned());
    if path.is_empty() || path.starts_with('/') || path.contains(['\\', '\0']) {
        return Err(unsafe_path());
    }
    let mut local = PathBuf::new();
    for (i, part) in path.split('/').enumerate() {
        let is_state = i == 0 && part.starts_with(crate::STATE_PREFIX);
        // `C:` would make a Windows path absolute.
        if part.is_empty() || part == "." || part == ".." || part.contains(':') || is_state {
            return Err(unsafe_path());
        }
        local.push(part);
    }
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_org_and_name_or_a_bare_name() {
        assert!("gpt2".parse::<RepoId>().is_ok());
        assert!("Qwen/Qwen3-4B".parse::<RepoId>().is_ok());
        for bad in [
            "",
            "a/b/c",
            "a//b",
            "../x",
            "a/..",
            ".hidden/x",
            "a b/c",
            "org/na\\me",
        ] {
            assert!(bad.parse::<RepoId>().is_err(), "{bad}");
        }
        let id: RepoId = "Qwen/Qwen3-4B".parse().unwrap();
        assert_eq!(
            id.local_dir(Path::new("data/models")),
            Path::new("data/models/Qwen/Qwen3-4B")
        );
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_path("a b/c#1.json"), "a%20b/c%231.json");
    }

    #[test]
    fn names_that_escape_the_output_directory_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a\\..\\x",
            "a//b",
            "./a",
            "C:/x",
            "",
            ".tpa-download.json",
            ".tpa-download/x",
        ] {
            assert!(safe_local_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            safe_local_path("sub/model.safetensors").unwrap(),
            Path::new("sub").join("model.safetensors")
        );
    }
}
