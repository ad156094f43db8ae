//! `.tpa-download.json`: which commit the directory holds and which of its
//! files were downloaded and verified, so a re-run can skip them without
//! reading them again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::HubError;
use crate::repo::RemoteFile;

/// File name of the manifest in the model directory.
pub const MANIFEST: &str = ".tpa-download.json";

/// The manifest's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub repo: String,
    pub endpoint: String,
    /// The revision asked for, and the commit it named.
    pub revision: String,
    pub commit: String,
    /// Files downloaded and verified, in path order.
    pub files: Vec<VerifiedFile>,
}

/// One downloaded file and what it was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedFile {
    pub path: String,
    pub size: u64,
    /// Set for LFS files: the sha256 the content matched.
    pub sha256: Option<String>,
    /// The git blob id; the content matched it when `sha256` is not set.
    pub git_oid: String,
}

impl VerifiedFile {
    pub(crate) fn of(file: &RemoteFile) -> VerifiedFile {
        VerifiedFile {
            path: file.path.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
            git_oid: file.git_oid.clone(),
        }
    }
}

impl Manifest {
    /// The manifest in `dir`, or None when there is none or it cannot be
    /// read (then every file is checked on disk instead).
    pub fn load(dir: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether `file` is recorded as downloaded with this content.
    pub fn has(&self, file: &RemoteFile) -> bool {
        let wanted = VerifiedFile::of(file);
        self.files.contains(&wanted)
    }

    /// Records `file` as verified, replacing an older entry for its path.
    pub(crate) fn record(&mut self, file: &RemoteFile) {
        self.files.retain(|f| f.path != file.path);
        self.files.push(VerifiedFile::of(file));
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// Writes the manifest atomically (temporary file, then rename).
    pub(crate) fn save(&self, dir: &Path) -> Result<(), HubError> {
        let path = dir.join(MANIFEST);
        let temp = PathBuf::from(format!("{}.tmp", path.display()));
        let text = serde_json::to_string_pretty(self).map_err(|source| HubError::Json {
            what: "the manifest".into(),
            source,
        })?;
        std::fs::write(&temp, text + "\n").map_err(|e| HubError::io(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| HubError::io(&path, e))
    }
}
