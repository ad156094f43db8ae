//! Shared plumbing of the tpa binaries: exit codes, progress bars, console
//! output. Each tool's logic is a module here; `src/bin/*` only call it.

// Doc comments on clap arguments are --help text, where `NAME[e]` is not a link.
#![allow(rustdoc::broken_intra_doc_links)]

pub mod analyze;
mod common;
mod console;
pub mod diff;
pub mod download;
pub mod embedding;
mod estimate;
mod folder;
mod listing;
mod matrices;
pub mod merge;
mod progress;
mod remote;
pub mod report;
mod runs;
mod stream;
pub mod transformer;

use std::process::ExitCode;

/// Runs a tool's body and turns its outcome into the process exit code:
/// 0 on success, 1 with one `error:` line (and its causes) on failure, 3
/// when alerts matched `--fail-on` (the report was written). Usage errors
/// exit with 2 from clap before this is reached.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<report::GateFailed>() => {
            eprintln!("fail-on: {error}");
            ExitCode::from(3)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Sets the number of worker threads for the whole process.
pub fn set_jobs(jobs: Option<usize>) -> anyhow::Result<()> {
    if let Some(jobs) = jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {jobs} worker threads: {e}"))?;
    }
    Ok(())
}
