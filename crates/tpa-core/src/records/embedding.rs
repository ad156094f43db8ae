//! What `tpa-embedding` writes: the clustering report (JSON) and its
//! per-cluster summary (CSV).

use serde::{Deserialize, Serialize};

use super::{Cell, Record};
use crate::analyses::embedding::scores::format_p_value;
use crate::analyses::embedding::sweep::{Criterion, KScore, Sweep};
use crate::analyses::embedding::tokens::{TokenNames, is_meaningful};

/// `clustering_results.json`: the original's fields first, then the curve
/// and how the run was made. tpa-report reads it back with the same type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusteringReport {
    pub optimal_k: usize,
    /// Mean sampled silhouette of the final clustering.
    pub silhouette_score: Option<f64>,
    pub gpu_accelerated: bool,
    pub total_tokens: usize,
    pub embedding_dimension: usize,
    pub clusters: Vec<ClusterReport>,
    pub criterion: Criterion,
    pub tensor: String,
    pub curve: Vec<CurveRow>,
    pub run: RunReport,
}

/// One cluster of the final clustering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterReport {
    pub cluster_id: usize,
    pub size: usize,
    /// Share of all tokens, in percent.
    pub percentage: f64,
    /// Mean Euclidean distance of the members to the centroid (standardized space).
    pub avg_distance: f64,
    /// The members nearest the centroid, decoded, joined with ", ".
    pub representative_text: String,
    /// The same, keeping only tokens with a letter or digit that are not
    /// special tokens.
    pub meaningful_text: String,
    /// Mean sampled silhouette of the members (empty for singletons and for
    /// clusters without a sampled member).
    pub silhouette_score: Option<f64>,
    /// The representatives' token ids, nearest first.
    pub representative_ids: Vec<u32>,
}

/// One k of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveRow {
    pub k: usize,
    pub f_ratio: Option<f64>,
    pub df_between: Option<u64>,
    pub df_within: Option<u64>,
    /// 0 where it underflowed f64; `p_value_text` then says "< 1e-300".
    pub p_value: Option<f64>,
    pub p_value_text: Option<String>,
    pub inertia: f64,
    pub silhouette: Option<f64>,
    pub nonsingleton_clusters: Option<usize>,
    pub iterations: usize,
    pub seconds: f64,
}

/// How the run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub model_path: String,
    pub model_id: String,
    pub revision: String,
    pub created_at: String,
    pub seed: u64,
    pub n_init: usize,
    pub max_k: usize,
    pub engine: String,
    /// Whether the sweep ran on a sample of the rows (the chosen k was then
    /// refitted on all rows).
    pub sweep_sampled: bool,
    pub sweep_rows: usize,
    pub silhouette_sample_rows: usize,
    pub tokenizer: bool,
    pub seconds: f64,
    pub tpa_version: String,
}

impl CurveRow {
    pub fn new(s: &KScore) -> CurveRow {
        CurveRow {
            k: s.k,
            f_ratio: s.anova.map(|a| a.f_ratio),
            df_between: s.anova.map(|a| a.df_between),
            df_within: s.anova.map(|a| a.df_within),
            p_value: s.anova.map(|a| a.p_value),
            p_value_text: s.anova.map(|a| format_p_value(a.p_value)),
            inertia: s.inertia,
            silhouette: s.silhouette,
            nonsingleton_clusters: s.anova.map(|a| a.clusters),
            iterations: s.iterations,
            seconds: s.seconds,
        }
    }
}

/// The clusters of `sweep`'s final clustering, each with its `representatives`
/// members nearest the centroid decoded by `names`.
pub fn cluster_reports(
    sweep: &Sweep,
    names: &TokenNames,
    representatives: usize,
) -> Vec<ClusterReport> {
    let c = &sweep.clustering;
    let n = c.labels.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); c.k];
    for (i, &l) in c.labels.iter().enumerate() {
        members[l as usize].push(i);
    }
    members
        .into_iter()
        .enumerate()
        .map(|(id, mut rows)| {
            let size = rows.len();
            let avg_distance = if size == 0 {
                0.0
            } else {
                rows.iter()
                    .map(|&i| f64::from(c.sq_distances[i]).sqrt())
                    .sum::<f64>()
                    / size as f64
            };
            rows.sort_by(|&a, &b| {
                c.sq_distances[a]
                    .total_cmp(&c.sq_distances[b])
                    .then(a.cmp(&b))
            });
            rows.truncate(representatives);
            let texts: Vec<String> = rows.iter().map(|&i| names.text(i as u32)).collect();
            let meaningful: Vec<&str> = texts
                .iter()
                .map(String::as_str)
                .filter(|t| is_meaningful(t))
                .collect();
            ClusterReport {
                cluster_id: id,
                size,
                percentage: 100.0 * size as f64 / n.max(1) as f64,
                avg_distance,
                representative_text: texts.join(", "),
                meaningful_text: meaningful.join(", "),
                silhouette_score: sweep.silhouettes.per_cluster.get(id).copied().flatten(),
                representative_ids: rows.iter().map(|&i| i as u32).collect(),
            }
        })
        .collect()
}

impl Record for ClusterReport {
    /// The original's `embedding_clusters_summary.csv` columns, in its order.
    const COLUMNS: &'static [&'static str] = &[
        "cluster_id",
        "size",
        "percentage",
        "avg_distance",
        "silhouette_score",
        "meaningful_text",
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::UInt(self.cluster_id as u64),
            Cell::UInt(self.size as u64),
            Cell::Float(self.percentage),
            Cell::Float(self.avg_distance),
            Cell::opt_float(self.silhouette_score),
            Cell::text(&self.meaningful_text),
        ]
    }
}
