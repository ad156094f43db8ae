//! Downloads of model repositories from the Hugging Face Hub into plain
//! folders, resumable across runs and verified byte for byte.
//!
//! The flow: [`plan`] resolves the revision to one commit, lists and
//! selects its files and looks at what is already on disk;
//! [`check_disk_space`] compares the rest with the free space; [`execute`]
//! fetches the missing files in parallel, resuming kept partial downloads
//! with `Range`, checks each against its sha256 (LFS) or git blob id, and
//! renames it into place. `.tpa-download.json` in the model folder records
//! what was verified, so a re-run transfers nothing.
//!
//! ```no_run
//! use tpa_hub::{Client, Request, Silent, check_disk_space, execute, plan};
//!
//! let client = Client::new("https://huggingface.co", std::env::var("HF_TOKEN").ok());
//! let request = Request {
//!     repo: "sentence-transformers/all-MiniLM-L6-v2".parse()?,
//!     revision: "main".into(),
//!     out: "data/models".into(),
//!     include: Vec::new(),
//!     exclude: Vec::new(),
//!     gguf: None,
//! };
//! let plan = plan(&client, &request, &Silent)?;
//! check_disk_space(&plan)?;
//! execute(&client, &plan, 8, &Silent)?;
//! println!("{}", plan.dir.display());
//! # Ok::<(), tpa_hub::HubError>(())
//! ```

mod api;
mod client;
mod error;
mod gguf;
mod header;
mod manifest;
mod repo;
pub mod select;
mod size;
mod snapshot;
pub mod stream;
mod transfer;

use std::time::Duration;

pub use api::{list_files, resolve_commit};
pub use client::{Client, RetryPolicy};
pub use error::HubError;
pub use gguf::{GgufModel, choose_gguf, gguf_models};
pub use header::{
    HeaderTensor, RemoteHeader, for_each_file, read_header, read_headers, read_prefix,
};
pub use manifest::{MANIFEST, Manifest, VerifiedFile};
pub use repo::{RemoteFile, RepoId};
pub use size::human;
pub use snapshot::{
    DirLock, LOCK_FILE, Local, Plan, PlannedFile, Request, check_disk_space, execute, lock_dir,
    plan,
};

/// Folder inside the model directory that keeps partial downloads.
pub const STATE_DIR: &str = ".tpa-download";
/// Names starting with this (the partials' folder, the manifest, the lock)
/// belong to tpa-download; the Hub may not use them.
pub(crate) const STATE_PREFIX: &str = ".tpa-download";

/// Reports on a download as it goes; every method may be called from
/// several threads at once.
pub trait Progress: Sync {
    /// A file already in place but not in the manifest is being read to
    /// check it (before any transfer).
    fn verifying(&self, _path: &str, _size: u64) {}
    /// A file's transfer begins (or resumes at `from` bytes).
    fn file_started(&self, _path: &str, _size: u64, _from: u64) {}
    /// `bytes` more of `path` arrived.
    fn advanced(&self, _path: &str, _bytes: u64) {}
    /// The server ignored the resume request; `lost` kept bytes are fetched again.
    fn restarted(&self, _path: &str, _lost: u64) {}
    /// `path` is verified and in place.
    fn file_done(&self, _path: &str) {}
    /// An attempt failed and the next starts after `delay`.
    fn retrying(&self, _message: &str, _delay: Duration) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// Where the token comes from when none is given: `HF_TOKEN`, else the file
/// `$HF_HOME/token` (default `~/.cache/huggingface/token`), as
/// huggingface_hub does.
pub fn token_from_env() -> Option<String> {
    // An empty HF_TOKEN counts as unset, as in huggingface_hub.
    let from_var = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let from_file = || {
        let home = std::env::var_os("HF_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| {
                    std::path::PathBuf::from(h)
                        .join(".cache")
                        .join("huggingface")
                })
            })?;
        std::fs::read_to_string(home.join("token")).ok()
    };
    from_var
        .or_else(from_file)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The endpoint: `HF_ENDPOINT`, else `https://huggingface.co`.
pub fn endpoint_from_env() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
}
