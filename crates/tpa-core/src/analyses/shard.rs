//! Splitting a run's work items between machines (`--shard I/N`).
//!
//! Every shard process plans the same split from the same items, so no
//! coordinator is needed: items go greedily, most expensive first, to the
//! shard with the least work so far (Graham's longest-processing-time rule,
//! within 4/3 of the best split), ties broken by item order and shard
//! number so that the split depends only on the items and their costs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based), as `--shard I/N` names it.
///
/// ```
/// use tpa_core::analyses::shard::RunShard;
///
/// let shard: RunShard = "2/8".parse().unwrap();
/// assert_eq!((shard.index, shard.count), (2, 8));
/// assert_eq!(shard.to_string(), "2/8");
/// assert_eq!(shard.file_stem(), "2-of-8");
/// assert!("8/8".parse::<RunShard>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunShard {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for RunShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for RunShard {
    type Err = String;

    fn from_str(text: &str) -> Result<RunShard, String> {
        let bad = || format!("{text:?} is not a shard like 0/8 (index/count, index from 0)");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        RunShard::new(index, count).ok_or_else(|| {
            format!("shard {text}: the index must be below the count, and the count at least 1")
        })
    }
}

/// The environment variables `--shard auto` reads, for error messages.
pub const SHARD_VARIABLES: &str = "SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (Slurm job \
     arrays), RANK with WORLD_SIZE (torchrun), or JOB_COMPLETION_INDEX with TPA_SHARD_COUNT \
     (Kubernetes Indexed Jobs)";

impl RunShard {
    pub fn new(index: usize, count: usize) -> Option<RunShard> {
        (count >= 1 && index < count).then_some(RunShard { index, count })
    }

    /// `I-of-N`, for file names.
    pub fn file_stem(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    /// The shard a scheduler gave this process, from `var` (the process
    /// environment in practice):
    ///
    /// * Slurm job arrays: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of
    ///   `SLURM_ARRAY_TASK_COUNT` (so `--array=4-6` is shards 0–2 of 3);
    /// * torchrun: `RANK` of `WORLD_SIZE`;
    /// * Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of `TPA_SHARD_COUNT`.
    ///
    /// ```
    /// use tpa_core::analyses::shard::RunShard;
    ///
    /// let env = |k: &str| match k {
    ///     "SLURM_ARRAY_TASK_ID" => Some("5".to_string()),
    ///     "SLURM_ARRAY_TASK_MIN" => Some("4".to_string()),
    ///     "SLURM_ARRAY_TASK_COUNT" => Some("3".to_string()),
    ///     _ => None,
    /// };
    /// assert_eq!(RunShard::from_env(env), Ok(RunShard { index: 1, count: 3 }));
    /// ```
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<RunShard, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        let need = |name: &str, with: &str| -> Result<usize, String> {
            number(name)?.ok_or_else(|| format!("{with} is set but {name} is not"))
        };
        let (index, count, source) = if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = need("SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_ID")?;
            let index = id.checked_sub(min).ok_or_else(|| {
                format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
            })?;
            (index, count, "the Slurm array")
        } else if let Some(rank) = number("RANK")? {
            (rank, need("WORLD_SIZE", "RANK")?, "torchrun")
        } else if let Some(i) = number("JOB_COMPLETION_INDEX")? {
            let count = need("TPA_SHARD_COUNT", "JOB_COMPLETION_INDEX")?;
            (i, count, "the Kubernetes Indexed Job")
        } else {
            return Err(format!(
                "--shard auto found no shard index in the environment; it reads {SHARD_VARIABLES}"
            ));
        };
        RunShard::new(index, count).ok_or_else(|| {
            format!(
                "{source} gives shard index {index} of {count}: arrays with steps or lists \
                 (e.g. --array=1-7:2) do not number their tasks 0..count-1; use a plain range \
                 (--array=0-{}) or --shard I/N",
                count.saturating_sub(1)
            )
        })
    }
}

/// The shard of each item: greedy longest-first on `costs`, so that shards
/// finish together. Deterministic: the same costs always give the same split.
///
/// ```
/// use tpa_core::analyses::shard::split;
///
/// // The two big items go to different shards, the small ones fill in.
/// assert_eq!(split(&[10, 1, 10, 1, 1], 2), [0, 0, 1, 1, 0]);
/// ```
pub fn split(costs: &[u64], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (Reverse(costs[i]), i));
    // (load, shard), least-loaded and then lowest-numbered shard first.
    let mut loads: BinaryHeap<Reverse<(u128, usize)>> =
        (0..count).map(|s| Reverse((0, s))).collect();
    let mut shard_of = vec![0; costs.len()];
    for i in order {
        let Some(Reverse((load, s))) = loads.pop() else {
            break;
        };
        shard_of[i] = s;
        loads.push(Reverse((load + u128::from(costs[i]), s)));
    }
    shard_of
}

/// Relative cost of one `rows × cols` matrix's analysis: the Gram product
/// plus the eigenvalue reduction, in multiply-adds, plus the values read.
/// The runner's progress, `--shard`'s split and the planned wall times of
/// `tpa-download --list-tensors` all weigh matrices by it.
pub fn matrix_cost(rows: usize, cols: usize) -> u64 {
    let (n, long) = (rows.min(cols) as u64, rows.max(cols) as u64);
    long * n * n + n * n * n + (rows * cols) as u64
}

/// [`matrix_cost`] of every matrix a tensor called `name` of `shape` is
/// analysed as (one per expert of a stacked expert tensor), from its header
/// alone.
///
/// ```
/// use tpa_core::analyses::shard::{matrix_cost, tensor_cost};
/// assert_eq!(tensor_cost("model.layers.0.mlp.experts.up_proj", &[8, 14336, 4096]), 8 * matrix_cost(14336, 4096));
/// assert_eq!(tensor_cost("model.norm.weight", &[4096]), matrix_cost(1, 4096));
/// ```
pub fn tensor_cost(name: &str, shape: &[usize]) -> u64 {
    match crate::tensors::stacked_experts(name, shape) {
        Some((experts, rows, cols)) => experts as u64 * matrix_cost(rows, cols),
        None => {
            let (rows, cols) = crate::tensors::matrix_shape(shape);
            matrix_cost(rows, cols)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(m: u64, n: u64) -> u64 {
        matrix_cost(m as usize, n as usize)
    }

    #[test]
    fn a_seven_b_plan_splits_evenly_into_eight() {
        // Llama-2-7B: per layer q, k, v, o 4096², gate/up 11008×4096, down
        // 4096×11008; embedding and LM head 32000×4096; norms.
        let mut costs = Vec::new();
        for _ in 0..32 {
            costs.extend([cost(4096, 4096); 4]);
            costs.extend([cost(11008, 4096), cost(11008, 4096), cost(4096, 11008)]);
            costs.extend([cost(1, 4096); 2]);
        }
        costs.extend([cost(32000, 4096), cost(32000, 4096), cost(1, 4096)]);
        let shard_of = split(&costs, 8);
        let mut load = [0u128; 8];
        for (i, &s) in shard_of.iter().enumerate() {
            load[s] += u128::from(costs[i]);
        }
        let (max, min) = (load.iter().max().unwrap(), load.iter().min().unwrap());
        let ratio = *max as f64 / *min as f64;
        // The issue asks for ≤ 1.15; longest-first gives 1.02 here, where
        // dealing the items round-robin would give 1.12.
        assert!(ratio <= 1.05, "largest/smallest shard cost {ratio}");
        assert_eq!(split(&costs, 8), shard_of, "the split is deterministic");
    }

    #[test]
    fn every_item_gets_one_shard_and_one_shard_takes_all() {
        assert_eq!(split(&[3, 2, 1], 1), [0, 0, 0]);
        assert_eq!(split(&[], 4), Vec::<usize>::new());
        // More shards than items: the extra shards get nothing.
        assert_eq!(split(&[5, 5], 4), [0, 1]);
    }

    #[test]
    fn shard_text_and_environment() {
        assert!("1/0".parse::<RunShard>().is_err());
        assert!("-1/4".parse::<RunShard>().is_err());
        assert!("a/b".parse::<RunShard>().is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            RunShard::from_env(env(&[("RANK", "3"), ("WORLD_SIZE", "4")])),
            Ok(RunShard { index: 3, count: 4 })
        );
        assert_eq!(
            RunShard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "0"),
                ("TPA_SHARD_COUNT", "2")
            ])),
            Ok(RunShard { index: 0, count: 2 })
        );
        let err = RunShard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err();
        assert!(err.contains("TPA_SHARD_COUNT"), "{err}");
        let err = RunShard::from_env(env(&[])).unwrap_err();
        assert!(
            err.contains("SLURM_ARRAY_TASK_ID") && err.contains("RANK"),
            "{err}"
        );
        // --array=1-7:2: IDs 1, 3, 5, 7 with MIN 1 and COUNT 4.
        let err = RunShard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap_err();
        assert!(err.contains("--array=1-7:2"), "{err}");
    }
}
