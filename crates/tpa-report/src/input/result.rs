//! Reading a `tpa-transformer` or `tpa-analyze` result (CSV, JSON or JSON
//! Lines) back into [`Matrix`] rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tpa_core::writers::Format;

use super::matrix::Matrix;
use crate::error::{Result, input};

/// Which tool wrote a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Spectra of every matrix.
    Transformer,
    /// Statistics (and the rank) of every tensor.
    Analyze,
}

/// A result file, read.
#[derive(Debug, Clone)]
pub struct ResultFile {
    pub path: PathBuf,
    pub kind: Kind,
    pub format: Format,
    pub matrices: Vec<Matrix>,
    /// The JSON output's `summary`, when the result has one.
    pub summary: Option<Value>,
    pub model_path: String,
    pub model_id: String,
    pub revision: String,
    pub created_at: String,
}

impl ResultFile {
    /// Reads `path`; the format comes from its extension.
    pub fn load(path: &Path) -> Result<ResultFile> {
        let format = Format::from_path(path).ok_or_else(|| {
            input(
                path,
                "cannot tell the format: a result ends in .csv, .json or .jsonl",
            )
        })?;
        let (rows, summary) = read_rows(path, format)?;
        let kind = match rows.first() {
            None => {
                return Err(input(path, "the result has no rows"));
            }
            Some(first) if first.has("actual_rank") => Kind::Transformer,
            Some(first) if first.has("rank") => Kind::Analyze,
            Some(first) if first.has("rel_fro") => {
                return Err(input(
                    path,
                    "a tpa-diff result: read it with DiffResult (tpa-report does)",
                ));
            }
            Some(_) => {
                return Err(input(
                    path,
                    "not a tpa-transformer or tpa-analyze result (no actual_rank or rank column)",
                ));
            }
        };
        let mut matrices = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            matrices.push(
                matrix(row, kind)
                    .map_err(|reason| input(path, format!("row {}: {reason}", i + 1)))?,
            );
        }
        name_stacked_experts(&mut matrices);
        let first = &rows[0];
        let text_of = |col: &str| first.text(col).unwrap_or_default();
        Ok(ResultFile {
            path: path.to_owned(),
            kind,
            format,
            summary,
            model_path: text_of("model_path"),
            model_id: text_of("model_id"),
            revision: text_of("revision"),
            created_at: text_of("created_at"),
            matrices,
        })
    }
}

/// The rows of a result file of `format`, and its JSON summary.
pub(crate) fn read_rows(path: &Path, format: Format) -> Result<(Vec<Row>, Option<Value>)> {
    let text = std::fs::read_to_string(path).map_err(|e| input(path, e))?;
    match format {
        Format::Csv => Ok((csv_rows(path, &text)?, None)),
        Format::Jsonl => Ok((jsonl_rows(path, &text)?, None)),
        Format::Json => json_rows(path, &text),
    }
}

/// One row of any format, by column name.
pub(crate) enum Row {
    Csv(HashMap<String, String>),
    Json(Map<String, Value>),
}

impl Row {
    /// The row's column names.
    pub(crate) fn columns(&self) -> Vec<&str> {
        match self {
            Row::Csv(m) => m.keys().map(String::as_str).collect(),
            Row::Json(m) => m.keys().map(String::as_str).collect(),
        }
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        match self {
            Row::Csv(m) => m.contains_key(column),
            Row::Json(m) => m.contains_key(column),
        }
    }

    pub(crate) fn text(&self, column: &str) -> Option<String> {
        match self {
            Row::Csv(m) => m.get(column).filter(|s| !s.is_empty()).cloned(),
            Row::Json(m) => match m.get(column)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        }
    }

    pub(crate) fn float(&self, column: &str) -> Result<Option<f64>, String> {
        match self {
            Row::Json(m) => match m.get(column) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(other) => Err(format!("column {column}: {other} is not a number")),
            },
            Row::Csv(_) => match self.text(column) {
                None => Ok(None),
                Some(s) => s
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("column {column}: {s:?} is not a number")),
            },
        }
    }

    pub(crate) fn uint(&self, column: &str) -> Result<Option<u64>, String> {
        match self.float(column)? {
            None => Ok(None),
            Some(v) if v >= 0.0 && v.fract() == 0.0 => Ok(Some(v as u64)),
            Some(v) => Err(format!("column {column}: {v} is not a count")),
        }
    }

    fn shape(&self) -> Result<Vec<u64>, String> {
        let bad = |s: &str| format!("column shape: {s:?} is not a shape like [384, 1536]");
        match self {
            Row::Json(m) => match m.get("shape") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_u64().ok_or_else(|| bad(&v.to_string())))
                    .collect(),
                Some(other) => Err(bad(&other.to_string())),
                None => Ok(Vec::new()),
            },
            Row::Csv(_) => {
                let Some(text) = self.text("shape") else {
                    return Ok(Vec::new());
                };
                let inner = text
                    .trim()
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .ok_or_else(|| bad(&text))?;
                inner
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| bad(&text)))
                    .collect()
            }
        }
    }
}

fn matrix(row: &Row, kind: Kind) -> Result<Matrix, String> {
    let param_name = row
        .text("param_name")
        .ok_or("no param_name (is this a tpa result?)")?;
    let rows = row.uint("rows")?.unwrap_or(1);
    let cols = row.uint("cols")?.unwrap_or(1);
    let (actual_rank, energy_rank_90) = match kind {
        Kind::Transformer => (row.uint("actual_rank")?, row.uint("svd_90_percent_rank")?),
        Kind::Analyze => (row.uint("rank")?, None),
    };
    let layer = row.uint("layer_index")?.map(|v| v as u32);
    let expert = row.uint("expert_index")?.map(|v| v as u32);
    Ok(Matrix {
        name: param_name.clone(),
        layer,
        block_type: row.text("block_type").unwrap_or_else(|| "other".into()),
        expert,
        shape: row.shape()?,
        rows,
        cols,
        dtype: row.text("dtype").unwrap_or_default(),
        numel: row.uint("numel")?,
        nbytes: row.uint("nbytes")?,
        nan_count: row.uint("nan_count")?.unwrap_or(0),
        inf_count: row.uint("inf_count")?.unwrap_or(0),
        mean: row.float("mean")?,
        std: row.float("std")?,
        min: row.float("min")?,
        max: row.float("max")?,
        sparsity: row.float("sparsity")?,
        design_rank: row.uint("design_rank")?.unwrap_or(rows.min(cols)),
        actual_rank,
        energy_rank_50: row.uint("svd_50_percent_rank")?,
        energy_rank_90,
        energy_rank_99: row.uint("svd_99_percent_rank")?,
        rank_tol: row.float("rank_tol")?,
        spectral_norm: row.float("spectral_norm")?,
        frobenius_norm: row.float("frobenius_norm")?,
        stable_rank: row.float("stable_rank")?,
        effective_rank: row.float("effective_rank")?,
        condition_number: row.float("condition_number")?,
        alpha: row.float("alpha")?,
        alpha_xmin: row.float("alpha_xmin")?,
        ks_distance: row.float("ks_distance")?,
        backend: row.text("backend"),
        digest: row.text("digest"),
        param_name,
    })
}

/// A stacked expert tensor ([E, out, in]) gives E rows with one name; they
/// become `NAME[e]`, as tpa-transformer names them in its spectra file.
pub(crate) fn name_stacked_experts(matrices: &mut [Matrix]) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for m in matrices.iter() {
        *count.entry(m.param_name.as_str()).or_default() += 1;
    }
    let repeated: std::collections::HashSet<String> = count
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(name, _)| name.to_owned())
        .collect();
    for m in matrices.iter_mut() {
        if let (true, Some(e)) = (repeated.contains(&m.param_name), m.expert) {
            m.name = format!("{}[{e}]", m.param_name);
        }
    }
}

fn csv_rows(path: &Path, text: &str) -> Result<Vec<Row>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| input(path, e))?
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| input(path, e))?;
            Ok(Row::Csv(
                headers
                    .iter()
                    .cloned()
                    .zip(record.iter().map(str::to_owned))
                    .collect(),
            ))
        })
        .collect()
}

fn jsonl_rows(path: &Path, text: &str) -> Result<Vec<Row>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| match serde_json::from_str(line) {
            Ok(Value::Object(map)) => Ok(Row::Json(map)),
            Ok(_) => Err(input(path, format!("line {}: not a JSON object", i + 1))),
            Err(e) => Err(input(path, format!("line {}: {e}", i + 1))),
        })
        .collect()
}

fn json_rows(path: &Path, text: &str) -> Result<(Vec<Row>, Option<Value>)> {
    let mut doc: Map<String, Value> = serde_json::from_str(text).map_err(|e| input(path, e))?;
    let summary = doc.remove("summary");
    let rows = ["matrices", "tensors"]
        .iter()
        .find_map(|key| doc.remove(*key))
        .ok_or_else(|| input(path, "no \"matrices\" or \"tensors\" array"))?;
    let Value::Array(rows) = rows else {
        return Err(input(path, "\"matrices\" is not an array"));
    };
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(map) => Ok(Row::Json(map)),
            _ => Err(input(path, format!("row {}: not a JSON object", i + 1))),
        })
        .collect::<Result<_>>()?;
    Ok((rows, summary))
}
