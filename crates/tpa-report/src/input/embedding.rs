//! A `tpa-embedding` output directory, as its `clustering_results.json`
//! describes it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, input};

/// The parts of `clustering_results.json` the report shows.
#[derive(Debug, Clone, Deserialize)]
pub struct Embedding {
    pub optimal_k: usize,
    pub silhouette_score: Option<f64>,
    pub total_tokens: usize,
    pub embedding_dimension: usize,
    pub clusters: Vec<Cluster>,
    pub criterion: String,
    pub tensor: String,
    pub curve: Vec<CurvePoint>,
    pub run: Run,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub cluster_id: usize,
    pub size: usize,
    pub percentage: f64,
    pub avg_distance: f64,
    pub meaningful_text: String,
    pub silhouette_score: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CurvePoint {
    pub k: usize,
    pub f_ratio: Option<f64>,
    pub p_value_text: Option<String>,
    pub inertia: f64,
    pub silhouette: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub model_path: String,
    pub model_id: String,
    pub seed: u64,
    pub n_init: usize,
    pub max_k: usize,
    pub engine: String,
    pub sweep_sampled: bool,
    pub sweep_rows: usize,
    pub silhouette_sample_rows: usize,
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
        let mut embedding: Embedding = serde_json::from_str(&text).map_err(|e| {
            input(
                &path,
                format!("not a tpa-embedding clustering_results.json: {e}"),
            )
        })?;
        embedding.path = path;
        Ok(embedding)
    }
}
