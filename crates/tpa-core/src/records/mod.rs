//! Rows of results with a fixed column order, independent of the output
//! format.
//!
//! Each tool has a record type that lists its columns once ([`Record::COLUMNS`])
//! and turns itself into typed [`Cell`]s; the [`writers`](crate::writers) then
//! render any record type as CSV, JSON or JSON Lines. Adding a column means
//! adding it at the end of `COLUMNS`, so existing readers keep working.

mod analyze;
mod diff;
pub mod embedding;
mod listing;
mod summary;
mod transformer;

pub use analyze::AnalyzeRecord;
pub use diff::{DiffRecord, DiffRow, DiffSpectra, DiffStatus};
pub use listing::TensorListing;
pub use summary::{ModelSummary, Quantization, Tally};
pub use transformer::{SpectralSummary, TransformerRecord};

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value: an empty CSV field, `null` in JSON.
    Empty,
    Text(String),
    UInt(u64),
    /// Non-finite floats are written as empty / `null`.
    Float(f64),
    /// A shape: `[30522, 384]` in CSV, an array in JSON.
    List(Vec<u64>),
}

impl Cell {
    pub fn opt_float(value: Option<f64>) -> Cell {
        value.map_or(Cell::Empty, Cell::Float)
    }

    pub fn opt_uint(value: Option<impl Into<u64>>) -> Cell {
        value.map_or(Cell::Empty, |v| Cell::UInt(v.into()))
    }

    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }

    pub fn opt_text(value: Option<impl ToString>) -> Cell {
        value.map_or(Cell::Empty, |v| Cell::Text(v.to_string()))
    }
}

/// A row type: its column names, in output order, and its cells.
pub trait Record {
    /// Column names; `cells()` returns one cell per column, in this order.
    const COLUMNS: &'static [&'static str];

    /// The row's values, one per column.
    fn cells(&self) -> Vec<Cell>;

    /// The column names of this row: [`Record::COLUMNS`], unless the
    /// columns depend on the run (tpa-diff's one `lora_fit_err_R` per rank
    /// asked for); every row of one table has the same.
    fn columns(&self) -> Vec<String> {
        Self::COLUMNS.iter().map(|c| (*c).to_owned()).collect()
    }
}

/// What every row of one run shares.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The model path as the user gave it.
    pub model_path: String,
    pub model_id: String,
    pub revision: String,
    /// UTC time the run started, RFC 3339 to the second.
    pub created_at: String,
}

impl RunInfo {
    /// Run metadata stamped with the current time.
    pub fn now(
        model_path: impl Into<String>,
        model_id: impl Into<String>,
        revision: impl Into<String>,
    ) -> RunInfo {
        RunInfo {
            model_path: model_path.into(),
            model_id: model_id.into(),
            revision: revision.into(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

/// A record together with its run's metadata: what the writers write.
pub struct Row<'a, R> {
    pub run: &'a RunInfo,
    pub record: &'a R,
}

/// Pairs every record with the run's metadata, ready for a writer.
pub fn rows<'a, R>(run: &'a RunInfo, records: &'a [R]) -> Vec<Row<'a, R>> {
    records.iter().map(|record| Row { run, record }).collect()
}

/// Orders rows as the original tool did: by numeric layer index, rows
/// without a layer last; then by expert; otherwise storage order is kept.
pub fn sort_by_layer<T>(rows: &mut [T], key: impl Fn(&T) -> (Option<u32>, Option<u32>)) {
    rows.sort_by_key(|row| {
        let (layer, expert) = key(row);
        (layer.is_none(), layer, expert)
    });
}
