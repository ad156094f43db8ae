//! What the analysis tools' runs share: the journal of finished rows, and
//! the plan and completion marker of a `--shard` run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tpa_core::analyses::shard::RunShard;
use tpa_core::writers::{Journal, Parts};

/// The rows finished so far and the journal that keeps them.
pub struct Rows<T> {
    pub journal: Journal,
    pub path: PathBuf,
    pub records: Vec<T>,
}

impl<T: Serialize + DeserializeOwned> Rows<T> {
    /// The journal at `path`: continued with `resume` when it belongs to
    /// this run (`header`), started afresh otherwise.
    pub fn open(path: &Path, header: &serde_json::Value, resume: bool) -> Result<Rows<T>> {
        let (journal, records) = crate::common::open_journal::<T>(path, header, resume)?;
        Ok(Rows {
            journal,
            path: path.to_owned(),
            records,
        })
    }

    /// Journals `record` and keeps it.
    pub fn push(&mut self, record: T) -> Result<()> {
        self.journal.append(&record)?;
        self.records.push(record);
        Ok(())
    }

    /// The message of an error that stopped the run: what is kept, where.
    pub fn stopped(&self, what: &str) -> String {
        format!(
            "analysis stopped; {} finished {what} are kept in {} for --resume",
            self.records.len(),
            self.path.display()
        )
    }
}

/// The split of `items` (named by `names`, weighed by `costs`) between the
/// shards: the plan's `{"items": [[name, shard], ...]}`, and `shard`'s items.
pub fn share<T: Copy>(
    items: &[T],
    names: &[String],
    costs: &[u64],
    shard: RunShard,
) -> (serde_json::Value, Vec<T>) {
    let shard_of = tpa_core::analyses::shard::split(costs, shard.count);
    let listed: Vec<serde_json::Value> = names
        .iter()
        .zip(&shard_of)
        .map(|(n, s)| serde_json::json!([n, s]))
        .collect();
    let mine = items
        .iter()
        .zip(&shard_of)
        .filter(|&(_, &s)| s == shard.index)
        .map(|(item, _)| *item)
        .collect();
    (serde_json::json!({ "items": listed }), mine)
}

/// Writes (or checks) the shard plan of `tool` in OUT.parts/: `fields`
/// (options, summary, the items or file groups and their shards) with the
/// shard count. False when `shard` has already finished.
pub fn plan_shard(
    out: &Path,
    tool: &str,
    shard: RunShard,
    fields: serde_json::Value,
) -> Result<bool> {
    let parts = Parts::of(out);
    let mut plan = serde_json::json!({
        "tpa": format!("{tool} shard plan"),
        "count": shard.count,
    });
    if let (Some(plan), Some(fields)) = (plan.as_object_mut(), fields.as_object()) {
        plan.extend(fields.clone());
    }
    parts.write_plan(&plan)?;
    if parts.is_done(shard) {
        eprintln!(
            "shard {shard} is already complete in {}; nothing to do (tpa-merge {} writes the output)",
            parts.dir().display(),
            out.display()
        );
        return Ok(false);
    }
    Ok(true)
}

/// Marks `shard` complete with its `rows`, and says what comes next.
pub fn finish_shard(out: &Path, shard: RunShard, rows: usize, quiet: bool) -> Result<()> {
    let parts = Parts::of(out);
    parts.mark_done(shard, rows)?;
    if !quiet {
        eprintln!(
            "shard {shard} done: {rows} rows in {}; once every shard is done, tpa-merge {} writes the output",
            parts.journal_path(shard).display(),
            out.display()
        );
    }
    Ok(())
}

/// Removes the journal (and ledger) of a run whose output is written.
pub fn remove_all(paths: &[&Path]) -> Result<()> {
    use anyhow::Context;
    for path in paths {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}
