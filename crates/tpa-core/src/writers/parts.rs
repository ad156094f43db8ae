//! The folder a sharded run writes instead of its output (`FILE.parts/`):
//!
//! * `plan.json`: the items, which shard takes each, and the options; the
//!   same for every shard, written once;
//! * `I-of-N.jsonl`: shard I's rows as they finish (a [`super::Journal`]);
//! * `I-of-N.groups.jsonl`: when streaming from the Hub, the groups of
//!   files shard I has finished, with their matrices in storage order;
//! * `I-of-N.done`: written last, when the shard has every row it planned.
//!
//! `tpa-merge FILE` reads the folder back into the output a single run writes.

use std::path::{Path, PathBuf};

use super::{output_error, write_atomically};
use crate::analyses::shard::RunShard;
use crate::error::Result;

/// The parts folder of output `out`.
#[derive(Debug, Clone)]
pub struct Parts {
    dir: PathBuf,
}

impl Parts {
    /// `out` + `.parts`.
    pub fn of(out: &Path) -> Parts {
        let mut name = out.as_os_str().to_owned();
        name.push(".parts");
        Parts {
            dir: PathBuf::from(name),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn plan_path(&self) -> PathBuf {
        self.dir.join("plan.json")
    }

    /// Shard `shard`'s journal of finished rows.
    pub fn journal_path(&self, shard: RunShard) -> PathBuf {
        self.dir.join(format!("{}.jsonl", shard.file_stem()))
    }

    /// Shard `shard`'s ledger of finished file groups (streamed runs).
    pub fn ledger_path(&self, shard: RunShard) -> PathBuf {
        self.dir.join(format!("{}.groups.jsonl", shard.file_stem()))
    }

    fn marker_path(&self, shard: RunShard) -> PathBuf {
        self.dir.join(format!("{}.done", shard.file_stem()))
    }

    /// Writes `plan` unless the folder has one; an existing plan must be
    /// the same (a shard started with other options or another model is
    /// refused: its rows could not be merged with the others').
    pub fn write_plan(&self, plan: &serde_json::Value) -> Result<()> {
        let path = self.plan_path();
        match self.read_plan()? {
            Some(existing) if &existing == plan => Ok(()),
            Some(_) => Err(output_error(
                &path,
                "was planned for other options, items or shard count than this run's; \
                 give the same options to every shard, or remove the folder to start over",
            )),
            None => write_atomically(&path, |w| {
                serde_json::to_writer_pretty(w, plan).map_err(Into::into)
            }),
        }
    }

    /// The plan, if one was written.
    pub fn read_plan(&self) -> Result<Option<serde_json::Value>> {
        let path = self.plan_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| output_error(&path, format!("is not a tpa plan: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(output_error(&path, e)),
        }
    }

    /// Marks `shard` complete, with `rows` rows.
    pub fn mark_done(&self, shard: RunShard, rows: usize) -> Result<()> {
        let marker = serde_json::json!({"shard": shard.to_string(), "rows": rows});
        write_atomically(&self.marker_path(shard), |w| {
            serde_json::to_writer(w, &marker).map_err(Into::into)
        })
    }

    pub fn is_done(&self, shard: RunShard) -> bool {
        self.marker_path(shard).is_file()
    }

    /// The shards of `count` that have not finished.
    pub fn unfinished(&self, count: usize) -> Vec<RunShard> {
        (0..count)
            .filter_map(|i| RunShard::new(i, count))
            .filter(|&s| !self.is_done(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_written_once_and_other_plans_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let parts = Parts::of(&dir.path().join("out.csv"));
        assert_eq!(parts.dir(), dir.path().join("out.csv.parts"));
        let plan = serde_json::json!({"items": [["a", 0], ["b", 1]]});
        parts.write_plan(&plan).unwrap();
        parts.write_plan(&plan).unwrap();
        let other = serde_json::json!({"items": [["a", 1], ["b", 0]]});
        let err = parts.write_plan(&other).unwrap_err().to_string();
        assert!(
            err.contains("plan.json") && err.contains("other options"),
            "{err}"
        );

        let shard = |i| RunShard::new(i, 3).unwrap();
        parts.mark_done(shard(1), 4).unwrap();
        assert_eq!(parts.unfinished(3), [shard(0), shard(2)]);
        assert_eq!(
            parts.journal_path(shard(2)),
            parts.dir().join("2-of-3.jsonl")
        );
    }
}
