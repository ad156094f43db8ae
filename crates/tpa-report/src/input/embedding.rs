//! A `tpa-embedding` output directory, read through the type that writes
//! its `clustering_results.json`.

use std::path::{Path, PathBuf};

pub use tpa_core::records::embedding::{ClusterReport, ClusteringReport, CurveRow, RunReport};

use crate::error::{Result, input};

/// A sweep's results and the file they came from.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub report: ClusteringReport,
    pub path: PathBuf,
}

impl Embedding {
    /// Reads `dir/clustering_results.json` (or `dir` itself, when it is that file).
    pub fn load(dir: &Path) -> Result<Embedding> {
        let path = if dir.is_dir() {
            dir.join("clustering_results.json")
        } else {
            dir.to_owned()
        };
        let text = std::fs::read_to_string(&path).map_err(|e| input(&path, e))?;
        let report = serde_json::from_str(&text).map_err(|e| {
            input(
                &path,
                format!("not a tpa-embedding clustering_results.json: {e}"),
            )
        })?;
        Ok(Embedding { report, path })
    }

    /// The criterion's name (`anova`, `silhouette`, `elbow`).
    pub fn criterion(&self) -> String {
        serde_json::to_value(self.report.criterion)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}
