//! Output files: CSV, JSON and JSON Lines, always written atomically.
//!
//! * CSV: a header row with [`Record::COLUMNS`], then one line per record;
//!   empty fields for missing values; floats in shortest round-trip form.
//!   `pandas.read_csv` and `polars.read_csv` read it as it is.
//! * JSON: `{"summary": {...}, "<rows_key>": [{column: value, ...}, ...]}`.
//! * JSON Lines: one object per record, no summary (`read_json(lines=True)`,
//!   `polars.read_ndjson`).

mod atomic;
mod journal;
mod parts;
mod render;
mod spectra;

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

pub use atomic::{prepare_output, write_atomically};
pub use journal::{Journal, Resumed};
pub use parts::Parts;
pub use spectra::write_spectra;

use crate::error::{Error, Result};
use crate::records::Record;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
}

impl Format {
    /// The format a file name's extension implies, if any.
    ///
    /// ```
    /// use tpa_core::writers::Format;
    /// assert_eq!(Format::from_path("out/params.csv".as_ref()), Some(Format::Csv));
    /// assert_eq!(Format::from_path("out/params.ndjson".as_ref()), Some(Format::Jsonl));
    /// assert_eq!(Format::from_path("out/params".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        ext.parse().ok()
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            other => Err(format!(
                "unknown format {other:?} (expected csv, json or jsonl)"
            )),
        }
    }
}

/// Writes `rows` to `path` in `format`, atomically: either the complete file
/// appears at `path` or nothing changes there. `summary` goes into JSON
/// output only, beside the rows under `rows_key`.
pub fn write_table<R: Record>(
    path: &Path,
    format: Format,
    rows: &[R],
    rows_key: &str,
    summary: Option<&serde_json::Value>,
) -> Result<()> {
    write_atomically(path, |out| {
        write_table_to(out, format, rows, rows_key, summary)
    })
}

/// [`write_table`] into `out` (e.g. standard output) instead of a file.
pub fn write_table_to<R: Record>(
    out: &mut dyn Write,
    format: Format,
    rows: &[R],
    rows_key: &str,
    summary: Option<&serde_json::Value>,
) -> std::io::Result<()> {
    match format {
        Format::Csv => render::csv(out, rows),
        Format::Jsonl => render::jsonl(out, rows),
        Format::Json => render::json(out, rows, rows_key, summary),
    }
}

pub(crate) fn output_error(path: &Path, reason: impl ToString) -> Error {
    Error::Output {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

pub(crate) type Sink<'a> = &'a mut dyn Write;
