//! Whole-model totals for the console and the JSON output.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AnalyzeRecord, RunInfo};
use crate::model::ModelConfig;

/// Count of tensors, parameters and bytes in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub tensors: u64,
    pub parameters: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, parameters: u64, bytes: u64) {
        self.tensors += 1;
        self.parameters += parameters;
        self.bytes += bytes;
    }
}

/// Totals over a model's tensors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub model_path: String,
    pub model_id: String,
    pub revision: String,
    pub created_at: String,
    pub files: Vec<String>,
    pub total: Tally,
    /// Distinct layer indices seen in tensor names.
    pub layers: usize,
    pub by_block_type: BTreeMap<String, Tally>,
    pub by_dtype: BTreeMap<String, Tally>,
    pub nan_count: u64,
    pub inf_count: u64,
    pub config: Option<ModelConfig>,
    /// The version of tpa that made the result.
    pub tpa_version: &'static str,
}

impl ModelSummary {
    /// Sums up `records`.
    pub fn new(
        run: &RunInfo,
        files: Vec<String>,
        records: &[AnalyzeRecord],
        config: Option<ModelConfig>,
    ) -> Self {
        let mut summary = ModelSummary {
            model_path: run.model_path.clone(),
            model_id: run.model_id.clone(),
            revision: run.revision.clone(),
            created_at: run.created_at.clone(),
            files,
            total: Tally::default(),
            layers: 0,
            by_block_type: BTreeMap::new(),
            by_dtype: BTreeMap::new(),
            nan_count: 0,
            inf_count: 0,
            config,
            tpa_version: env!("CARGO_PKG_VERSION"),
        };
        let mut layers = std::collections::BTreeSet::new();
        for r in records {
            let (n, bytes) = (r.stats.numel, r.nbytes);
            summary.total.add(n, bytes);
            summary
                .by_block_type
                .entry(r.placement.block_type.to_string())
                .or_default()
                .add(n, bytes);
            summary
                .by_dtype
                .entry(r.dtype.clone())
                .or_default()
                .add(n, bytes);
            summary.nan_count += r.stats.nan_count;
            summary.inf_count += r.stats.inf_count;
            layers.extend(r.placement.layer_index);
        }
        summary.layers = layers.len();
        summary
    }
}
