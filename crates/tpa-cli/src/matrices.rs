//! Computing matrix records in parallel, with a progress bar and a stop on
//! the first input error.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use tpa_core::analyses::runner::{self, Limits};
use tpa_core::analyses::shard::matrix_cost;
use tpa_core::analyses::spectrum::{CpuBackend, Engine};
use tpa_core::analyses::stats::StatsOptions;
use tpa_core::records::{TransformerRecord, sort_by_layer};
use tpa_core::tensors::MatrixView;

use crate::progress;

/// [`matrix_cost`] of a matrix: how the progress bar and `--shard` weigh it.
pub(crate) fn work_units(matrix: &MatrixView<'_>) -> u64 {
    let (rows, cols) = matrix.shape();
    matrix_cost(rows, cols)
}

/// Host memory a matrix holds while it is computed; wide matrices keep their
/// file pages mapped until the end (see the spectrum's block visitor).
pub(crate) fn memory(matrix: &MatrixView<'_>) -> u64 {
    let (rows, cols) = matrix.shape();
    let pages = if rows < cols {
        matrix.tensor().bytes_of(matrix.numel())
    } else {
        0
    };
    CpuBackend::memory_estimate(rows, cols) + pages
}

/// Runs [`TransformerRecord::compute`] on every matrix under `limits` and
/// hands each record to `done` as it finishes (on this thread). Stops at the
/// first error, from the computation or from `done`.
pub(crate) fn compute_records(
    matrices: &[MatrixView<'_>],
    engine: &Engine,
    limits: Limits,
    stats: &StatsOptions,
    keep_values: bool,
    quiet: bool,
    done: impl FnMut(TransformerRecord) -> Result<()>,
) -> Result<()> {
    run_items(
        matrices,
        |m| work_units(m),
        |m| memory(m),
        limits,
        quiet,
        |matrix| {
            Ok(TransformerRecord::compute(
                matrix,
                engine,
                stats,
                keep_values,
            )?)
        },
        done,
    )
}

/// Runs `compute` on every item under `limits` (`memory`: an item's need),
/// with a progress bar weighed by `units`, and hands each result to `done`
/// as it finishes (on this thread). Stops at the first error, from
/// `compute` or from `done`.
pub(crate) fn run_items<T: Sync, R: Send>(
    items: &[T],
    units: impl Fn(&T) -> u64 + Sync,
    memory: impl Fn(&T) -> u64 + Sync,
    limits: Limits,
    quiet: bool,
    compute: impl Fn(&T) -> Result<R> + Sync,
    mut done: impl FnMut(R) -> Result<()>,
) -> Result<()> {
    let total: u64 = items.iter().map(&units).sum();
    let bar = progress::work_bar(total, items.len() as u64, quiet);
    let stop = AtomicBool::new(false);
    let mut first_error: Option<anyhow::Error> = None;
    let mut finished = 0u64;
    runner::run(
        items,
        limits,
        memory,
        |item| {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let result = compute(item);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            Some((units(item), result))
        },
        |_, outcome| {
            let Some((units, result)) = outcome else {
                return;
            };
            let handled = result.and_then(&mut done);
            if let Err(e) = handled {
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            finished += 1;
            bar.set_message(format!("{finished}/{} matrices", items.len()));
            bar.inc(units);
        },
    );
    bar.finish_and_clear();
    first_error.map_or(Ok(()), Err)
}

/// Puts rows in output order: by layer, then expert, then in the order of
/// `names` (the model's storage order), whatever order they finished in.
pub(crate) fn sort_rows(records: &mut [TransformerRecord], names: &[String]) {
    let position: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    records.sort_by_cached_key(|r| position.get(r.matrix_name().as_str()).copied());
    sort_by_layer(records, |r| (r.layer_index, r.expert_index));
}
