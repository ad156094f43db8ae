//! What can go wrong making a report.

use std::path::PathBuf;

/// A report error; each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A result, spectra or embedding file that cannot be read as one.
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },

    /// Writing the report failed (the message names the file).
    #[error(transparent)]
    Output(#[from] tpa_core::Error),

    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn input(path: &std::path::Path, reason: impl ToString) -> Error {
    Error::Input {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}
