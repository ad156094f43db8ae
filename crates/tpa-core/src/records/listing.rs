//! The row `tpa-download --list-tensors` writes per stored tensor, from the
//! shards' headers alone.

use super::{Cell, Record};
use crate::analyses::classify::classify;
use crate::analyses::shard::tensor_cost;

/// One stored tensor as its shard's header describes it, with the
/// estimated cost of its analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorListing {
    pub name: String,
    /// The safetensors dtype (`BF16`, `F8_E4M3`...).
    pub dtype: String,
    pub shape: Vec<u64>,
    /// The shard file, as the repository names it.
    pub shard: String,
    pub bytes: u64,
    /// Matrices it is analysed as (experts of a stacked tensor count apiece).
    pub matrices: u64,
    /// [`tensor_cost`]: relative analysis cost.
    pub cost: u64,
    /// `cost` at the measured rate, in seconds on one machine.
    pub est_seconds: f64,
}

impl TensorListing {
    /// The row for a tensor, its cost priced at `units_per_second`.
    pub fn new(
        name: &str,
        dtype: &str,
        shape: &[u64],
        shard: &str,
        bytes: u64,
        units_per_second: f64,
    ) -> TensorListing {
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let cost = tensor_cost(name, &dims);
        let matrices = crate::tensors::stacked_experts(name, &dims).map_or(1, |(e, _, _)| e as u64);
        TensorListing {
            name: name.to_owned(),
            dtype: dtype.to_owned(),
            shape: shape.to_vec(),
            shard: shard.to_owned(),
            bytes,
            matrices,
            cost,
            est_seconds: cost as f64 / units_per_second,
        }
    }
}

impl Record for TensorListing {
    const COLUMNS: &'static [&'static str] = &[
        "param_name",
        "dtype",
        "shape",
        "shard",
        "nbytes",
        "layer_index",
        "block_type",
        "matrices",
        "cost",
        "est_seconds",
    ];

    fn cells(&self) -> Vec<Cell> {
        let placement = classify(&self.name);
        vec![
            Cell::text(&self.name),
            Cell::text(&self.dtype),
            Cell::List(self.shape.clone()),
            Cell::text(&self.shard),
            Cell::UInt(self.bytes),
            Cell::opt_uint(placement.layer_index),
            Cell::text(placement.block_type.as_str()),
            Cell::UInt(self.matrices),
            Cell::UInt(self.cost),
            Cell::Float(self.est_seconds),
        ]
    }
}
