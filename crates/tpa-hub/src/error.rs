//! Everything a download can fail with, one variant per case a user must
//! tell apart (each message says what to do next).

use std::path::PathBuf;

use crate::size::human;

/// A failed Hub request or download.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("`{0}` is not a model id: expected ORG/NAME, e.g. Qwen/Qwen3-4B")]
    BadRepoId(String),

    #[error(
        "repository {repo} not found on {endpoint}: check the id; a private repository needs a \
         token (--token, HF_TOKEN or `hf auth login`)"
    )]
    RepoNotFound { repo: String, endpoint: String },

    #[error(
        "{endpoint} refused the token (invalid or expired): check --token, HF_TOKEN or $HF_HOME/token"
    )]
    TokenRefused { endpoint: String },

    #[error("revision `{revision}` not found in {repo}: check the branch, tag or commit")]
    RevisionNotFound { repo: String, revision: String },

    #[error(
        "{repo} is gated: accept its licence at {url} and pass a token of that account \
         (--token or HF_TOKEN)"
    )]
    GatedWithoutToken { repo: String, url: String },

    #[error(
        "{repo} is gated and the token given has no access: accept its licence at {url} with \
         the account the token belongs to"
    )]
    GatedNoAccess { repo: String, url: String },

    #[error("file `{path}` not found in {repo} at commit {commit}")]
    EntryNotFound {
        repo: String,
        path: String,
        commit: String,
    },

    #[error(
        "cannot reach {endpoint}: {reason} (check the network, or set HF_ENDPOINT to a mirror)"
    )]
    Unreachable { endpoint: String, reason: String },

    #[error("{what}: HTTP {status} from {url}{detail}")]
    Http {
        what: String,
        url: String,
        status: u16,
        detail: String,
    },

    #[error("{what}: gave up after {attempts} attempts; last error: {reason}")]
    GaveUp {
        what: String,
        attempts: u32,
        reason: String,
    },

    #[error("{what}: unexpected answer from {url}: {reason}")]
    BadResponse {
        what: String,
        url: String,
        reason: String,
    },

    #[error(
        "{path}: {check} mismatch (expected {expected}, received {actual}); the bad download was \
         deleted, run again to fetch it anew"
    )]
    Corrupt {
        path: String,
        check: &'static str,
        expected: String,
        actual: String,
    },

    #[error(
        "refusing the file name `{0}` from the Hub: it would be written outside the output directory"
    )]
    UnsafePath(String),

    #[error(
        "{repo} has no safetensors or GGUF weights (it has: {found}); tpa reads those two \
         formats. Pass --include to fetch other files anyway"
    )]
    NoWeights { repo: String, found: String },

    #[error(
        "{repo} holds several GGUF models: {models}; choose one with --gguf NAME (a part of \
         its file name that tells it apart, e.g. Q4_K_M)"
    )]
    SeveralGguf { repo: String, models: String },

    #[error("no GGUF model of {repo} matches `{wanted}` (it has: {models})")]
    NoGgufMatch {
        repo: String,
        wanted: String,
        models: String,
    },

    #[error("{repo}: the split GGUF model {model} lacks {missing} in the repository")]
    IncompleteGguf {
        repo: String,
        model: String,
        missing: String,
    },

    #[error("no file of {repo} matches the --include/--exclude patterns (it has: {found})")]
    NothingSelected { repo: String, found: String },

    #[error(
        "not enough disk space in {}: the download needs {} more, {} is free",
        dir.display(), human(*needed), human(*available)
    )]
    DiskSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },

    #[error("disk full while writing {}", path.display())]
    DiskFull { path: PathBuf },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },

    #[error(
        "--max-disk {} is below the {} this model needs: {} on disk at once, plus the configs and \
         tokenizer; give --max-disk {}K or more",
        human(*budget), human(*minimum),
        if *keep { "every weight file (--keep-download keeps them)" } else { "its largest weight file (with the files holding its scales)" },
        minimum.div_ceil(1024)
    )]
    BudgetTooSmall {
        budget: u64,
        minimum: u64,
        keep: bool,
    },

    #[error("interrupted")]
    Cancelled,
}

impl HubError {
    /// An I/O error on `path`; a full disk gets its own message.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HubError {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::StorageFull {
            HubError::DiskFull { path }
        } else {
            HubError::Io { path, source }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HubError;

    #[test]
    fn a_full_disk_is_named_as_such() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let message = HubError::io("m/a.safetensors", full).to_string();
        assert_eq!(message, "disk full while writing m/a.safetensors");
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(HubError::io("x", other), HubError::Io { .. }));
    }
}
