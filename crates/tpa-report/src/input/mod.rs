//! What a report is made from: result files, their spectra files and
//! `tpa-embedding` outputs. The model itself is never needed.

mod diff;
mod embedding;
mod matrix;
mod result;
mod spectra;

use std::path::Path;

use serde_json::Value;

pub use diff::{DiffMatrix, DiffResult};
pub use embedding::{ClusterReport, ClusteringReport, CurveRow, Embedding, RunReport};
pub use matrix::Matrix;
pub use result::{Kind, ResultFile};
pub use spectra::SpectraFile;

use crate::error::Result;

/// One model's results.
pub struct Input {
    pub result: ResultFile,
    pub spectra: Option<SpectraFile>,
    pub embedding: Option<Embedding>,
    /// The model's name in charts and tables.
    pub label: String,
}

impl Input {
    /// Reads a result file; spectra and embedding are added by the caller.
    pub fn load(path: &Path) -> Result<Input> {
        let result = ResultFile::load(path)?;
        let label = default_label(&result);
        Ok(Input {
            result,
            spectra: None,
            embedding: None,
            label,
        })
    }

    /// Architecture facts: from the JSON summary when the result has one,
    /// else from `config.json` beside the model if it is still there.
    /// Returns the facts and where they came from.
    pub fn config(&self) -> Option<(Value, String)> {
        if let Some(config) = self
            .result
            .summary
            .as_ref()
            .and_then(|s| s.get("config"))
            .filter(|c| c.is_object())
        {
            return Some((config.clone(), "the result's summary".into()));
        }
        let model = Path::new(&self.result.model_path);
        let dir = if model.is_dir() {
            model
        } else {
            model.parent()?
        };
        let config = tpa_core::model::ModelConfig::load(dir).ok()??;
        let value = serde_json::to_value(config).ok()?;
        Some((value, format!("{}", dir.join("config.json").display())))
    }

    /// A string field of the JSON summary.
    pub fn summary_text(&self, key: &str) -> Option<String> {
        match self.result.summary.as_ref()?.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// `model_id`, else the model folder's name, else the result's file name.
fn default_label(result: &ResultFile) -> String {
    if !result.model_id.is_empty() {
        return result.model_id.clone();
    }
    let model = Path::new(&result.model_path);
    let folder = if model.extension().is_some_and(|e| e == "safetensors") {
        model.parent().and_then(Path::file_name)
    } else {
        model.file_name()
    };
    folder
        .or_else(|| result.path.file_stem())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Makes labels unique by appending " (2)", " (3)", ...
pub fn unique_labels(inputs: &mut [Input]) {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for input in inputs.iter_mut() {
        let n = seen.entry(input.label.clone()).or_default();
        *n += 1;
        if *n > 1 {
            input.label = format!("{} ({n})", input.label);
        }
    }
}
