//! `model.safetensors.index.json`: which shard holds which tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

/// A parsed shard index.
pub(crate) struct ShardIndex {
    pub path: PathBuf,
    /// Tensor name → shard file name (relative to the index's directory).
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    pub fn load(path: &Path) -> Result<ShardIndex> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let parsed: IndexFile = serde_json::from_slice(&text).map_err(|e| Error::InvalidIndex {
            path: path.to_owned(),
            reason: format!("not a valid index (expected {{\"weight_map\": {{...}}}}): {e}"),
        })?;
        for shard in parsed.weight_map.values() {
            // The index is data from the internet: never let it point outside
            // the model directory.
            let p = Path::new(shard);
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(Error::InvalidIndex {
                    path: path.to_owned(),
                    reason: format!("shard name {shard:?} points outside the model directory"),
                });
            }
        }
        Ok(ShardIndex {
            path: path.to_owned(),
            weight_map: parsed.weight_map,
        })
    }

    /// Shard file names in name order, without repeats.
    pub fn shard_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.weight_map.values().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}
