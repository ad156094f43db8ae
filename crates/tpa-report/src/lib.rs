//! # tpa-report
//!
//! Charts and reports of tpa results, for people: a self-contained HTML
//! page (inline CSS and SVG, no network), a Markdown summary, every chart as
//! SVG (and PNG), and typed alerts that can gate CI.
//!
//! Data flows through the modules in this order:
//!
//! * [`input`]: result files (`tpa-transformer`, `tpa-analyze`), spectra
//!   files and `tpa-embedding` outputs, read back into typed rows;
//! * [`alerts`], [`layers`], [`metrics`], [`selection`]: what the report says
//!   about the rows;
//! * [`charts`], drawn with [`draw`]: the pictures;
//! * [`page`]: the HTML and Markdown pages; [`write()`] puts it all in a folder.
//!
//! ```no_run
//! use tpa_report::{Options, input::Input};
//! let inputs = vec![Input::load("out/minilm.csv".as_ref())?];
//! let report = tpa_report::build(&inputs, &Options::new("out/report"))?;
//! tpa_report::write(&report, "out/report".as_ref(), false)?;
//! println!("{} alerts", report.alerts.len());
//! # Ok::<(), tpa_report::error::Error>(())
//! ```

pub mod alerts;
pub mod charts;
pub mod draw;
pub mod error;
pub mod input;
pub mod layers;
pub mod metrics;
pub mod page;
pub mod selection;
mod write;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use selection::Cards;
pub use write::{write, write_chart};

use alerts::Alert;
use charts::Chart;
use input::Input;

/// The most models a comparison report takes.
pub const MAX_MODELS: usize = 8;
/// Above this many rows the tensor table becomes per-block-type summaries.
pub const TABLE_LIMIT: usize = 5000;

/// How a report is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// The page title; default: from the model's label.
    pub title: Option<String>,
    pub cards: Cards,
    pub table_limit: usize,
    /// The report folder, for links from the page to the result files.
    pub out_dir: PathBuf,
}

impl Options {
    pub fn new(out_dir: impl Into<PathBuf>) -> Options {
        Options {
            title: None,
            cards: Cards::default(),
            table_limit: TABLE_LIMIT,
            out_dir: out_dir.into(),
        }
    }
}

/// A finished report, not yet written.
pub struct Report {
    pub html: String,
    pub markdown: String,
    pub charts: Vec<Chart>,
    pub alerts: Vec<Alert>,
}

/// The report of a `tpa-diff` result: where fine-tuning changed the
/// weights, how low-rank the change is, and its intruder dimensions.
pub fn diff_report(diff: &input::DiffResult, options: &Options) -> Report {
    page::diff::report(diff, options)
}

/// The report of one model, or the comparison of 2 to [`MAX_MODELS`].
pub fn build(inputs: &[Input], options: &Options) -> Result<Report> {
    match inputs.len() {
        0 => Err(Error::Usage("no result to report on".into())),
        1 => Ok(page::model::report(&inputs[0], options)),
        n if n <= MAX_MODELS => Ok(page::compare::report(inputs, options)),
        n => Err(Error::Usage(format!(
            "{n} results: a comparison report takes at most {MAX_MODELS} models"
        ))),
    }
}
