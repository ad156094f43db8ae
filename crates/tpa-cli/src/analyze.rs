//! `tpa-analyze`: one row of exact statistics (and the rank) per tensor.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use rayon::prelude::*;
use tpa_core::analyses::stats::{StatsOptions, tensor_stats};
use tpa_core::model::Model;
use tpa_core::records::{AnalyzeRecord, ModelSummary, TransformerRecord, rows, sort_by_layer};
use tpa_core::tensors::{MatrixView, TensorView};
use tpa_core::writers::write_table;

use crate::common::{self, ModelArgs, OutputArgs, SpectrumArgs, StatsArgs};
use crate::report::ReportFlags;
use crate::{console, matrices, progress};

const EXAMPLES: &str = "\
Examples:
  tpa-analyze --model-path data/models/Qwen/Qwen3-4B --out data/outputs/params.csv
  tpa-analyze --model-path model.safetensors --out stats.jsonl --no-rank --quiet
  tpa-analyze --model_path data/models/bert --out params.json --format json  # original flags

Output columns (CSV, JSON, JSON Lines), in order:
  model_path, model_id, revision, param_name, layer_index, block_type, shape, rows, cols,
  rank, mean, std, var, sparsity, dtype, created_at        (the original analyze.py columns)
  min, max, numel, nan_count, inf_count, expert_index, design_rank, nbytes, file, digest   (new)
Statistics are exact, in float64, over the finite values. rank is the numerical rank of
the 2-D view (σ > rank-rtol·σmax, from the complete f64 spectrum, as tpa-transformer);
--no-rank leaves it empty for a fast pass. See the README for every definition.

--report DIR also writes a statistics report (alerts, charts, report.html) into DIR, as
tpa-report does; with --fail-on it is a CI gate (exit 3 when an alert matches).";

/// Exact per-tensor statistics of a safetensors model.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-analyze",
    version,
    about = "Exact statistics and rank of every tensor of a safetensors model, streamed from disk",
    long_about = "Reads every tensor of a model (a directory with .safetensors shards, with or \
                  without model.safetensors.index.json, or a single .safetensors file) without \
                  loading the model into memory, and writes one row per tensor: layer and block \
                  type from the tensor's name, shape, dtype, mean, std, var, min, max and \
                  sparsity computed exactly in float64, and the numerical rank.",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Leave the rank column empty: statistics only, at disk speed.
    #[arg(long = "no-rank", visible_alias = "no_rank")]
    pub no_rank: bool,

    #[command(flatten)]
    pub spectrum: SpectrumArgs,

    /// Continue an interrupted run from FILE.partial.jsonl (the tensors whose rank it
    /// finished) instead of starting over.
    #[arg(long, conflicts_with = "no_rank")]
    pub resume: bool,

    /// Also write a statistics report (as tpa-report does) into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    #[command(flatten, next_help_heading = "Report (with --report DIR)")]
    pub report_flags: ReportFlags,

    /// No progress bar and no summary; errors and warnings still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Entry point of the `tpa-analyze` binary.
pub fn main() -> std::process::ExitCode {
    let args: Args =
        crate::report::parse_with_report_flags(|a: &Args| (a.report.is_some(), &a.report_flags));
    crate::exit_code(run(&args))
}

/// Runs the analysis described by `args`.
pub fn run(args: &Args) -> Result<()> {
    let format = common::output_format(&args.output)?;
    crate::set_jobs(args.spectrum.jobs)?;
    let opened = common::open_model(&args.model)?;
    let options = args.stats.options();
    let journal_path = common::journal_path(&args.output.out);
    let mut records = if args.no_rank {
        statistics(&opened.model, &options, args.quiet)?
    } else {
        statistics_and_rank(&opened, args, &options, &journal_path)?
    };
    sort_by_layer(&mut records, |r| {
        (r.placement.layer_index, r.placement.expert_index)
    });
    warn_about_nonfinite(&records);

    let files = opened
        .model
        .files()
        .map(|p| file_name(p.as_os_str()))
        .collect();
    let mut summary = ModelSummary::new(&opened.run, files, &records, opened.config);
    summary.quantization = opened.quantization;
    let rows = rows(&opened.run, &records);
    let summary_json = serde_json::to_value(&summary)?;
    write_table(
        &args.output.out,
        format,
        &rows,
        "tensors",
        Some(&summary_json),
    )?;

    if !args.no_rank {
        std::fs::remove_file(&journal_path)
            .with_context(|| format!("removing {}", journal_path.display()))?;
    }

    if !args.quiet {
        print!("{}", console::summary_text(&summary));
        println!("Wrote {} rows to {}", rows.len(), args.output.out.display());
    }
    match &args.report {
        Some(dir) => crate::report::report_of_run(
            &args.output.out,
            summary_json,
            None,
            dir,
            &args.report_flags,
            args.quiet,
        ),
        None => Ok(()),
    }
}

/// The statistics pass alone: tensors in parallel, each streamed in chunks.
fn statistics(model: &Model, options: &StatsOptions, quiet: bool) -> Result<Vec<AnalyzeRecord>> {
    let tensors: Vec<TensorView<'_>> = model.tensors().collect();
    let total = tensors.iter().map(|t| t.nbytes() as u64).sum();
    let bar = progress::bytes_bar(total, "analyzing", quiet);
    let records = tensors
        .par_iter()
        .map(|t| {
            Ok(AnalyzeRecord::new(
                t,
                tensor_stats(t, options, &|bytes| bar.inc(bytes))?,
            ))
        })
        .collect::<tpa_core::Result<Vec<_>>>();
    bar.finish_and_clear();
    Ok(records?)
}

/// Statistics and the rank of each tensor's 2-D view, through the spectral
/// engine (which computes the same statistics on its way). Each finished
/// tensor is journaled, so that `--resume` continues an interrupted run.
fn statistics_and_rank(
    opened: &common::Opened,
    args: &Args,
    options: &StatsOptions,
    journal_path: &Path,
) -> Result<Vec<AnalyzeRecord>> {
    let model = &opened.model;
    let tensors: Vec<TensorView<'_>> = model.tensors().collect();
    for tensor in &tensors {
        tensor.check_decodable()?;
    }
    let header = serde_json::json!({
        "tpa": "tpa-analyze partial results",
        "model_path": opened.run.model_path,
        "rank_rtol": args.spectrum.rank_rtol,
        "zero_eps": args.stats.zero_eps,
    });
    let (mut journal, done) =
        common::open_journal::<TransformerRecord>(journal_path, &header, args.resume)?;
    let finished: HashSet<&str> = done.iter().map(|r| r.param_name.as_str()).collect();
    let matrices: Vec<MatrixView<'_>> = tensors
        .iter()
        .filter(|t| !finished.contains(t.name()))
        .map(|t| MatrixView::whole(*t))
        .collect();
    if !done.is_empty() && !args.quiet {
        eprintln!(
            "resuming: {} of {} tensors already done",
            done.len(),
            tensors.len()
        );
    }
    let row = |record: &TransformerRecord| -> tpa_core::Result<AnalyzeRecord> {
        let tensor = model.tensor(&record.param_name)?;
        let mut row = AnalyzeRecord::new(&tensor, record.stats);
        row.rank = record
            .spectral
            .as_ref()
            .map(|s| s.metrics.actual_rank as u64);
        Ok(row)
    };
    let mut records = done.iter().map(row).collect::<tpa_core::Result<Vec<_>>>()?;
    let engine = args.spectrum.engine(args.quiet)?;
    matrices::compute_records(
        &matrices,
        &engine,
        args.spectrum.limits(),
        options,
        false,
        args.quiet,
        |record| {
            journal.append(&record)?;
            records.push(row(&record)?);
            Ok(())
        },
    )
    .with_context(|| {
        format!(
            "analysis stopped; {} finished tensors are kept in {} for --resume",
            records.len(),
            journal_path.display()
        )
    })?;
    Ok(records)
}

fn warn_about_nonfinite(records: &[AnalyzeRecord]) {
    const SHOWN: usize = 10;
    let bad: Vec<_> = records
        .iter()
        .filter(|r| r.stats.nan_count + r.stats.inf_count > 0)
        .collect();
    for r in bad.iter().take(SHOWN) {
        eprintln!(
            "warning: tensor {} has {} NaN and {} Inf values; its statistics cover the finite values",
            r.param_name, r.stats.nan_count, r.stats.inf_count
        );
    }
    if bad.len() > SHOWN {
        eprintln!(
            "warning: ... and {} more tensors with NaN or Inf values",
            bad.len() - SHOWN
        );
    }
}

fn file_name(path: &std::ffi::OsStr) -> String {
    std::path::Path::new(path)
        .file_name()
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
