//! A model's weights fetched group by group under a disk budget: download
//! a group of files, hand it to the caller's analysis, delete it, go on;
//! the next group downloads while the current one is analysed whenever the
//! budget has room for both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use crate::Progress;
use crate::error::HubError;
use crate::header::RemoteHeader;
use crate::snapshot::{Plan, PlannedFile, execute_until};

/// Room kept for `.tpa-download.json` and the lock file, which live in the
/// download folder too: generous for the manifest's line per file.
fn bookkeeping_bytes(files: usize) -> u64 {
    4096 + 512 * files as u64
}

/// The files whose tensors must be on disk together, as indices into
/// `headers`, in file order: a weight and its quantization sidecars
/// (`w.weight` + `w.weight_scale_inv`, `w.qweight` + `w.scales`,
/// `w.weight` + `w.weight.absmax`) can lie in different files. Tensors that
/// share a module (the name up to its last `.`), or whose name extends
/// another tensor's, put their files in one group.
pub fn group_files(headers: &[RemoteHeader]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..headers.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (root(parent, a), root(parent, b));
        parent[ra.max(rb)] = ra.min(rb);
    };
    let mut module_file: HashMap<&str, usize> = HashMap::new();
    let mut tensor_file: HashMap<&str, usize> = HashMap::new();
    for (file, header) in headers.iter().enumerate() {
        for t in &header.tensors {
            tensor_file.insert(&t.name, file);
            if let Some((module, _)) = t.name.rsplit_once('.') {
                let first = *module_file.entry(module).or_insert(file);
                union(&mut parent, first, file);
            }
        }
    }
    for (file, header) in headers.iter().enumerate() {
        for t in &header.tensors {
            let mut name = t.name.as_str();
            while let Some((ancestor, _)) = name.rsplit_once('.') {
                if let Some(&other) = tensor_file.get(ancestor) {
                    union(&mut parent, other, file);
                }
                name = ancestor;
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    for file in 0..headers.len() {
        let r = root(&mut parent, file);
        let g = *group_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(file);
    }
    groups
}

/// How to stream.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Bytes the model folder may hold at any time (`u64::MAX`: no limit).
    pub max_disk: u64,
    /// Keep the files after their analysis (they then count against
    /// `max_disk` for the rest of the run).
    pub keep: bool,
    /// Files of one group downloaded at once.
    pub workers: usize,
}

/// The smallest `max_disk` that can stream `groups` of `plan`: the files
/// that are not weights (configs, index, tokenizer), the download's
/// bookkeeping, and the largest group (every group with `keep`).
pub fn minimum_disk(plan: &Plan, groups: &[Vec<&str>], keep: bool) -> u64 {
    let sizes = groups.iter().map(|g| group_bytes(plan, g));
    let weights = if keep {
        sizes.sum()
    } else {
        sizes.max().unwrap_or(0)
    };
    fixed_bytes(plan) + weights
}

/// Bytes of the files of `plan` named by `paths`.
pub fn group_bytes(plan: &Plan, paths: &[&str]) -> u64 {
    plan.files
        .iter()
        .filter(|f| paths.contains(&f.file.path.as_str()))
        .map(|f| f.file.size)
        .sum()
}

/// Whether a file of the plan is a weight file, fetched only as part of a
/// group; the others (configs, index, tokenizer) are fetched first and kept.
fn is_weights(path: &str) -> bool {
    path.ends_with(".safetensors") || path.ends_with(".gguf")
}

/// Bytes that stay in the folder all along: the files that are not
/// weights, and the bookkeeping.
fn fixed_bytes(plan: &Plan) -> u64 {
    let others: u64 = plan
        .files
        .iter()
        .filter(|f| !is_weights(&f.file.path))
        .map(|f| f.file.size)
        .sum();
    others + bookkeeping_bytes(plan.files.len())
}

/// Fetches the files of `plan` that are not weights (configs, index,
/// tokenizer), which stay for the whole run; returns the plan with them
/// in place, ready for [`stream`].
pub fn fetch_fixed(
    client: &crate::Client,
    plan: &Plan,
    workers: usize,
    progress: &dyn Progress,
) -> Result<Plan, HubError> {
    let fixed = Plan {
        files: plan
            .files
            .iter()
            .filter(|f| !is_weights(&f.file.path))
            .cloned()
            .collect(),
        ..plan.clone()
    };
    execute_until(client, &fixed, workers, progress, &AtomicBool::new(false))?;
    let mut plan = plan.clone();
    for f in plan.files.iter_mut().filter(|f| !is_weights(&f.file.path)) {
        f.local = crate::Local::Complete;
    }
    Ok(plan)
}

/// Checks that `max_disk` can hold `groups` (see [`minimum_disk`]).
pub fn check_budget(
    plan: &Plan,
    groups: &[Vec<&str>],
    options: &StreamOptions,
) -> Result<(), HubError> {
    let minimum = minimum_disk(plan, groups, options.keep);
    if options.max_disk < minimum {
        return Err(HubError::BudgetTooSmall {
            budget: options.max_disk,
            minimum,
            keep: options.keep,
        });
    }
    Ok(())
}

/// Streams each group of `groups` (repository paths) of `plan`, whose
/// other files [`fetch_fixed`] has fetched, in order: downloads it
/// (resumed and verified as [`crate::execute`] does), calls `analyse` with
/// its position in `groups`, and deletes its files unless `keep`. A background thread downloads ahead as far as
/// `max_disk` allows, so with room for two groups the next one arrives
/// while the current one is analysed. Stops at the first error, from a
/// download or from `analyse`, and cancels the download under way (its
/// partial file is kept, for the next run to resume).
pub fn stream<E: From<HubError> + Send>(
    client: &crate::Client,
    plan: &Plan,
    groups: &[Vec<&str>],
    options: &StreamOptions,
    progress: &dyn Progress,
    mut analyse: impl FnMut(usize) -> Result<(), E>,
) -> Result<(), E> {
    check_budget(plan, groups, options)?;
    if !options.keep {
        remove_stale(plan, groups)?;
    }
    let sub_plan = |paths: &dyn Fn(&str) -> bool| Plan {
        files: plan
            .files
            .iter()
            .filter(|f| paths(&f.file.path))
            .cloned()
            .collect::<Vec<PlannedFile>>(),
        ..plan.clone()
    };
    let bytes_of = |g: &Vec<&str>| group_bytes(plan, g);
    // What the budget leaves the groups on disk or being downloaded.
    let room = options.max_disk - fixed_bytes(plan);
    let held = Mutex::new(0u64);
    let freed = Condvar::new();
    let cancel = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Result<usize, HubError>>();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for (i, group) in groups.iter().enumerate() {
                let bytes = bytes_of(group);
                {
                    let mut used = held.lock().unwrap_or_else(|p| p.into_inner());
                    while *used + bytes > room && *used > 0 && !cancel.load(Ordering::Relaxed) {
                        used = freed.wait(used).unwrap_or_else(|p| p.into_inner());
                    }
                    *used += bytes;
                }
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let part = sub_plan(&|p| group.contains(&p));
                let fetched = execute_until(client, &part, options.workers, progress, &cancel);
                let failed = fetched.is_err();
                if sender.send(fetched.map(|_| i)).is_err() || failed {
                    return;
                }
            }
        });
        let result = (|| {
            for group in groups {
                let i = match receiver.recv() {
                    Ok(fetched) => fetched?,
                    Err(_) => return Err(HubError::Cancelled.into()),
                };
                analyse(i)?;
                if !options.keep {
                    for path in group {
                        let file = plan.dir.join(crate::repo::safe_local_path(path)?);
                        std::fs::remove_file(&file).map_err(|e| HubError::io(&file, e))?;
                    }
                    let mut used = held.lock().unwrap_or_else(|p| p.into_inner());
                    *used -= bytes_of(group);
                    freed.notify_all();
                }
            }
            Ok(())
        })();
        if result.is_err() {
            cancel.store(true, Ordering::Relaxed);
            freed.notify_all();
        }
        result
    })
}

/// Deletes the weight files on disk that no group of `groups` needs (left
/// by a run stopped between a group's analysis and its deletion), so that
/// they do not count against the budget unseen.
fn remove_stale(plan: &Plan, groups: &[Vec<&str>]) -> Result<(), HubError> {
    let wanted: Vec<&str> = groups.iter().flatten().copied().collect();
    for f in &plan.files {
        let path = f.file.path.as_str();
        if is_weights(path) && !wanted.contains(&path) {
            let file = plan.dir.join(crate::repo::safe_local_path(path)?);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(HubError::io(&file, e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderTensor;
    use crate::repo::RemoteFile;

    fn header(path: &str, names: &[&str]) -> RemoteHeader {
        RemoteHeader {
            file: RemoteFile {
                path: path.into(),
                size: 100,
                git_oid: String::new(),
                sha256: None,
            },
            header_len: 10,
            tensors: names
                .iter()
                .map(|n| HeaderTensor {
                    name: (*n).into(),
                    dtype: "BF16".into(),
                    shape: vec![1],
                    data_offsets: (0, 2),
                })
                .collect(),
            metadata: Default::default(),
            requests: 1,
        }
    }

    #[test]
    fn a_weight_and_its_sidecars_in_other_files_make_one_group() {
        let headers = [
            header("a", &["l.0.q_proj.weight"]),
            header("b", &["l.0.q_proj.weight_scale_inv", "l.1.k_proj.qweight"]),
            header("c", &["l.2.v_proj.weight"]),
            header("d", &["l.1.k_proj.scales"]),
            header("e", &["l.3.o_proj.weight"]),
            header("f", &["l.3.o_proj.weight.quant_state.bitsandbytes__nf4"]),
            header("g", &["lm_head.weight"]),
        ];
        // FP8 scales (a, b), GPTQ scales (b, d), a bitsandbytes quant state
        // under the weight's own name (e, f); c and g stand alone.
        assert_eq!(
            group_files(&headers),
            [vec![0, 1, 3], vec![2], vec![4, 5], vec![6]]
        );
    }
}
