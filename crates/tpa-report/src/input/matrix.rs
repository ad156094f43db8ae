//! One row of a result, typed: what the report knows about one matrix.

/// A matrix (or tensor, for `tpa-analyze` results) as the result describes it.
/// Every measured value is optional: a `tpa-analyze` result has no spectral
/// columns, a matrix with NaN has no spectrum, older results lack new columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    /// Unique per matrix: `param_name`, with `[e]` for expert e of a stacked
    /// expert tensor.
    pub name: String,
    pub param_name: String,
    pub layer: Option<u32>,
    pub block_type: String,
    pub expert: Option<u32>,
    pub shape: Vec<u64>,
    pub rows: u64,
    pub cols: u64,
    pub dtype: String,
    pub numel: Option<u64>,
    pub nbytes: Option<u64>,
    pub nan_count: u64,
    pub inf_count: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sparsity: Option<f64>,
    pub design_rank: u64,
    pub actual_rank: Option<u64>,
    pub energy_rank_50: Option<u64>,
    pub energy_rank_90: Option<u64>,
    pub energy_rank_99: Option<u64>,
    pub rank_tol: Option<f64>,
    pub spectral_norm: Option<f64>,
    pub frobenius_norm: Option<f64>,
    pub stable_rank: Option<f64>,
    pub effective_rank: Option<f64>,
    pub condition_number: Option<f64>,
    pub alpha: Option<f64>,
    pub alpha_xmin: Option<f64>,
    pub ks_distance: Option<f64>,
    pub backend: Option<String>,
    pub digest: Option<String>,
}

impl Matrix {
    /// A real matrix: both sides longer than 1 (not a bias, norm or scalar).
    pub fn is_matrix(&self) -> bool {
        self.rows > 1 && self.cols > 1
    }

    /// Whether the result holds its spectrum (tpa-transformer, finite values).
    pub fn has_spectrum(&self) -> bool {
        self.spectral_norm.is_some()
    }

    /// A stored integer or boolean tensor: a buffer such as BERT's
    /// `position_ids`, not a learned weight.
    pub fn is_integer(&self) -> bool {
        let d = self.dtype.as_str();
        d.starts_with("int") || d.starts_with("uint") || d == "bool"
    }

    /// actual_rank / design_rank.
    pub fn rank_ratio(&self) -> Option<f64> {
        ratio(self.actual_rank?, self.design_rank)
    }

    /// The relative rank tolerance the result used: rank_tol / σ₁.
    pub fn rank_rtol(&self) -> Option<f64> {
        match (self.rank_tol, self.spectral_norm) {
            (Some(tol), Some(norm)) if norm > 0.0 => Some(tol / norm),
            _ => None,
        }
    }

    /// svd_90_percent_rank / design_rank.
    pub fn energy_ratio_90(&self) -> Option<f64> {
        ratio(self.energy_rank_90?, self.design_rank)
    }

    /// The series this matrix belongs to in layer charts: its block type,
    /// or for experts (`moe_expert`, shared `moe`) the block type and the
    /// projection (`moe_expert:down_proj`), which differ too much to average.
    pub fn series(&self) -> String {
        if self.block_type == "moe_expert" || self.block_type == "moe" {
            format!("{}:{}", self.block_type, projection(&self.param_name))
        } else {
            self.block_type.clone()
        }
    }

    /// Whether the matrix is an input or output embedding, which spectral
    /// studies leave out of model-wide distributions (they are normalised
    /// differently; Martin et al. 2021).
    pub fn is_embedding_like(&self) -> bool {
        matches!(
            self.block_type.as_str(),
            "embedding" | "output" | "position_embedding" | "token_type_embedding"
        )
    }
}

fn ratio(k: u64, design: u64) -> Option<f64> {
    (design > 0).then(|| k as f64 / design as f64)
}

/// The projection's own name: the last part of a parameter name before
/// `.weight`/`.bias` (`gate_proj`, `w2`, `gate_up_proj`).
fn projection(param_name: &str) -> &str {
    let mut parts = param_name.rsplit('.');
    let last = parts.next().unwrap_or(param_name);
    if matches!(last, "weight" | "bias") {
        parts.next().unwrap_or(last)
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experts_are_series_per_projection() {
        let m = Matrix {
            param_name: "model.layers.3.mlp.experts.7.down_proj.weight".into(),
            block_type: "moe_expert".into(),
            ..Matrix::default()
        };
        assert_eq!(m.series(), "moe_expert:down_proj");
        let stacked = Matrix {
            param_name: "model.layers.3.mlp.experts.gate_up_proj".into(),
            block_type: "moe_expert".into(),
            ..Matrix::default()
        };
        assert_eq!(stacked.series(), "moe_expert:gate_up_proj");
        let dense = Matrix {
            block_type: "q_proj".into(),
            ..Matrix::default()
        };
        assert_eq!(dense.series(), "q_proj");
    }
}
