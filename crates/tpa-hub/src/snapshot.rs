//! A whole download: plan what to fetch against what is already on disk,
//! check the disk has room, then fetch several files at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use glob::Pattern;

use crate::Progress;
use crate::api::{index_names, indexed_files, list_files, resolve_commit};
use crate::client::Client;
use crate::error::HubError;
use crate::manifest::Manifest;
use crate::repo::{RemoteFile, RepoId, safe_local_path};
use crate::select::select;
use crate::transfer::{Fetcher, partial_path, verify_on_disk};

/// What to download.
#[derive(Debug, Clone)]
pub struct Request {
    pub repo: RepoId,
    /// Branch, tag or commit.
    pub revision: String,
    /// Files go to `out/ORG/NAME/`.
    pub out: PathBuf,
    /// Globs of files to fetch; empty means [`crate::select::DEFAULT_INCLUDE`].
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
    /// The GGUF model to fetch instead (a part of its file name, e.g.
    /// `Q4_K_M`); see [`crate::select::select`].
    pub gguf: Option<String>,
}

/// How much of a file is already here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// In place and verified (by the manifest, or by reading it).
    Complete,
    /// This many bytes of a partial download are kept.
    Partial(u64),
    Missing,
}

/// A selected file and its local state.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    pub file: RemoteFile,
    pub local: Local,
}

impl PlannedFile {
    /// Bytes still to transfer.
    pub fn remaining(&self) -> u64 {
        match self.local {
            Local::Complete => 0,
            Local::Partial(have) => self.file.size - have,
            Local::Missing => self.file.size,
        }
    }
}

/// The download worked out before any transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub repo: RepoId,
    pub revision: String,
    pub commit: String,
    /// The model directory, `out/ORG/NAME`.
    pub dir: PathBuf,
    pub files: Vec<PlannedFile>,
    /// Weights in other formats, left out by default.
    pub skipped_weights: Vec<RemoteFile>,
    /// Safetensors copies the shard index does not name, left out by default.
    pub skipped_copies: Vec<RemoteFile>,
}

impl Plan {
    /// Bytes of all selected files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.file.size).sum()
    }

    /// Bytes still to transfer.
    pub fn remaining_bytes(&self) -> u64 {
        self.files.iter().map(PlannedFile::remaining).sum()
    }

    /// Files not yet complete.
    pub fn pending(&self) -> impl Iterator<Item = &PlannedFile> {
        self.files.iter().filter(|f| f.local != Local::Complete)
    }
}

/// Resolves the revision, lists and selects the files, and finds what is
/// already on disk. Transfers nothing but metadata.
pub fn plan(client: &Client, request: &Request, progress: &dyn Progress) -> Result<Plan, HubError> {
    let on_retry = |message: &str, delay| progress.retrying(message, delay);
    let commit = resolve_commit(client, &request.repo, &request.revision, &on_retry)?;
    let all = list_files(client, &request.repo, &commit, &on_retry)?;
    let mut selection = select(
        &request.repo,
        &all,
        &request.include,
        &request.exclude,
        request.gguf.as_deref(),
    )?;
    // Every name is checked before the first byte is written.
    for file in &selection.files {
        safe_local_path(&file.path)?;
    }
    let dir = request.repo.local_dir(&request.out);
    let manifest = Manifest::load(&dir);
    let index = "model.safetensors.index.json";
    let index_file = selection.files.iter().find(|f| f.path == index).cloned();
    // The index's state, found once (finding it may read and hash the file).
    let mut index_state = None;
    if let (true, Some(file)) = (request.include.is_empty(), index_file) {
        // The index already on disk and verified is read there, so that a
        // rerun transfers nothing.
        let local = dir.join(index);
        let state = local_state(&dir, &file, manifest.as_ref(), progress)?;
        let indexed = match state {
            Local::Complete => {
                let bytes = std::fs::read(&local).map_err(|e| HubError::io(&local, e))?;
                index_names(&bytes, index).map_err(|source| HubError::Json {
                    what: local.display().to_string(),
                    source,
                })?
            }
            _ => indexed_files(client, &request.repo, &commit, index, &on_retry)?,
        };
        selection.keep_one_copy(index, &indexed);
        index_state = Some(state);
    }
    let mut files = Vec::with_capacity(selection.files.len());
    for file in selection.files {
        let local = match index_state.take_if(|_| file.path == index) {
            Some(state) => state,
            None => local_state(&dir, &file, manifest.as_ref(), progress)?,
        };
        files.push(PlannedFile { file, local });
    }
    Ok(Plan {
        repo: request.repo.clone(),
        revision: request.revision.clone(),
        commit,
        dir,
        files,
        skipped_weights: selection.skipped_weights,
        skipped_copies: selection.skipped_copies,
    })
}

fn local_state(
    dir: &Path,
    file: &RemoteFile,
    manifest: Option<&Manifest>,
    progress: &dyn Progress,
) -> Result<Local, HubError> {
    let path = dir.join(safe_local_path(&file.path)?);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == file.size) {
        if manifest.is_some_and(|m| m.has(file)) {
            return Ok(Local::Complete);
        }
        // In place but not in the manifest (an older download, a copy):
        // read once, and kept if it verifies.
        progress.verifying(&file.path, file.size);
        if verify_on_disk(&path, file)? {
            return Ok(Local::Complete);
        }
    }
    Ok(match std::fs::metadata(partial_path(dir, file)) {
        Ok(m) if m.len() <= file.size => Local::Partial(m.len()),
        _ => Local::Missing,
    })
}

/// Fails when the file system of the model directory has less free space
/// than the download still needs.
pub fn check_disk_space(plan: &Plan) -> Result<(), HubError> {
    let needed = plan.remaining_bytes();
    match free_space(&plan.dir) {
        Some(available) if available < needed => Err(HubError::DiskSpace {
            dir: plan.dir.clone(),
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

/// Free bytes for unprivileged users on the file system holding `path` (or
/// its nearest existing ancestor); None when unknown. statvfs directly: the
/// crates that wrap it (fs2, fs4) would be a dependency for these lines.
#[cfg(unix)]
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    if existing.as_os_str().is_empty() {
        existing = Path::new(".");
    }
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_space(_path: &Path) -> Option<u64> {
    None
}

/// Fetches every pending file of `plan`, `workers` at a time, largest first,
/// and records each verified file in the manifest as it lands. On the first
/// failure the other workers stop (keeping their partial downloads for the
/// next run) and that failure is returned.
pub fn execute(
    client: &Client,
    plan: &Plan,
    workers: usize,
    progress: &dyn Progress,
) -> Result<Manifest, HubError> {
    execute_until(client, plan, workers, progress, &AtomicBool::new(false))
}

/// [`execute`], which also stops (with [`HubError::Cancelled`], partial
/// downloads kept) once `cancel` is set.
pub(crate) fn execute_until(
    client: &Client,
    plan: &Plan,
    workers: usize,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Manifest, HubError> {
    std::fs::create_dir_all(&plan.dir).map_err(|e| HubError::io(&plan.dir, e))?;
    let mut manifest = Manifest::load(&plan.dir)
        .filter(|m| m.repo == plan.repo.to_string())
        .unwrap_or_else(|| Manifest {
            repo: plan.repo.to_string(),
            endpoint: client.endpoint().to_owned(),
            revision: String::new(),
            commit: String::new(),
            files: Vec::new(),
        });
    manifest.endpoint = client.endpoint().to_owned();
    manifest.revision = plan.revision.clone();
    manifest.commit = plan.commit.clone();
    for planned in plan.files.iter().filter(|f| f.local == Local::Complete) {
        manifest.record(&planned.file);
    }
    manifest.save(&plan.dir)?;

    let mut pending: Vec<&RemoteFile> = plan.pending().map(|f| &f.file).collect();
    pending.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let manifest = Mutex::new(manifest);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let fetcher = Fetcher {
        client,
        repo: &plan.repo,
        commit: &plan.commit,
        dir: &plan.dir,
        cancel,
        progress,
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, pending.len().max(1)) {
            scope.spawn(|| {
                while !cancel.load(Ordering::Relaxed) {
                    let Some(file) = pending.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let result = fetcher.fetch(file).and_then(|()| {
                        let mut m = manifest.lock().unwrap_or_else(|p| p.into_inner());
                        m.record(file);
                        m.save(&plan.dir)
                    });
                    if let Err(error) = result {
                        cancel.store(true, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(error);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(error) = failures
        .into_iter()
        .find(|e| !matches!(e, HubError::Cancelled))
    {
        return Err(error);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(HubError::Cancelled);
    }
    // Nothing is left to resume; the folder is removed if empty.
    let _ = std::fs::remove_dir(plan.dir.join(crate::STATE_DIR));
    Ok(manifest.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// An exclusive claim on a model directory, held while downloading into it,
/// so that two runs (e.g. `make -j`) never write the same partial file.
/// Released when dropped.
pub struct DirLock {
    _file: std::fs::File,
}

/// Name of the lock file in the model directory.
pub const LOCK_FILE: &str = ".tpa-download.lock";

/// Takes the lock on `dir` (created if needed); when another process holds
/// it, calls `waiting` once and waits for it.
pub fn lock_dir(dir: &Path, waiting: &dyn Fn()) -> Result<DirLock, HubError> {
    std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HubError::io(&path, e))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // flock directly: a lock crate (fs2, fs4) would be a dependency for
        // two calls. The lock goes with the file descriptor, so a killed
        // run releases it.
        let fd = file.as_raw_fd();
        // SAFETY: fd is an open descriptor owned by `file`.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            waiting();
            // SAFETY: as above.
            if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                return Err(HubError::io(&path, std::io::Error::last_os_error()));
            }
        }
    }
    Ok(DirLock { _file: file })
}
