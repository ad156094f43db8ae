//! `tpa-analyze`: one row of exact statistics per tensor.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use rayon::prelude::*;
use tpa_core::analyses::stats::{StatsOptions, tensor_stats};
use tpa_core::model::{Model, ModelConfig};
use tpa_core::records::{AnalyzeRecord, ModelSummary, RunInfo, sort_by_layer};
use tpa_core::tensors::TensorView;
use tpa_core::writers::{Format, prepare_output, write_table};

use crate::{console, progress};

const EXAMPLES: &str = "\
Examples:
  tpa-analyze --model-path data/models/Qwen/Qwen3-4B --out data/outputs/params.csv
  tpa-analyze --model-path model.safetensors --out stats.jsonl --quiet
  tpa-analyze --model_path data/models/bert --out params.json --format json  # original flags

Output columns (CSV, JSON, JSON Lines), in order:
  model_path, model_id, revision, param_name, layer_index, block_type, shape, rows, cols,
  rank, mean, std, var, sparsity, dtype, created_at        (the original analyze.py columns)
  min, max, numel, nan_count, inf_count, expert_index, design_rank, nbytes, file   (new)
Statistics are exact, in float64, over the finite values; rank is empty until the
spectral engine fills it (tpa-transformer). See the README for every definition.";

/// Exact per-tensor statistics of a safetensors model.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-analyze",
    version,
    about = "Exact statistics of every tensor of a safetensors model, streamed from disk",
    long_about = "Reads every tensor of a model (a directory with .safetensors shards, with or \
                  without model.safetensors.index.json, or a single .safetensors file) without \
                  loading the model into memory, and writes one row per tensor: layer and block \
                  type from the tensor's name, shape, dtype, and mean, std, var, min, max and \
                  sparsity computed exactly in float64.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Model directory or single .safetensors file.
    #[arg(long = "model-path", visible_alias = "model_path", value_name = "PATH")]
    pub model_path: PathBuf,

    /// Output file; written atomically. Its extension (.csv, .json, .jsonl) sets the format
    /// unless --format is given.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Output format: csv, json (rows plus a model summary) or jsonl (one row per line).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Model id written to the model_id column, e.g. Qwen/Qwen3-4B.
    #[arg(long = "model-id", visible_alias = "model_id", value_name = "ID")]
    pub model_id: Option<String>,

    /// Revision written to the revision column.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,

    /// Values with |x| <= this count as zero for the sparsity column.
    #[arg(
        long = "zero-eps",
        visible_alias = "zero_eps",
        value_name = "X",
        default_value = "1e-8"
    )]
    pub zero_eps: f64,

    /// Worker threads [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// No progress bar and no summary; errors and warnings still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Entry point of the `tpa-analyze` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::exit_code(run(&args))
}

/// Runs the analysis described by `args`.
pub fn run(args: &Args) -> Result<()> {
    let format = match args.format.or_else(|| Format::from_path(&args.out)) {
        Some(format) => format,
        None => anyhow::bail!(
            "cannot tell the output format from {}: give --format csv, json or jsonl, \
             or a file name ending in .csv, .json or .jsonl",
            args.out.display()
        ),
    };
    prepare_output(&args.out)?;
    crate::set_jobs(args.jobs)?;
    let run = RunInfo::now(
        args.model_path.display().to_string(),
        args.model_id.clone().unwrap_or_default(),
        args.revision.clone().unwrap_or_default(),
    );

    let model = Model::open(&args.model_path).context("cannot open the model")?;
    warn_about_unindexed(&model);
    let config = match ModelConfig::load(model.dir()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("warning: {e}; the summary will lack the config facts");
            None
        }
    };

    let options = StatsOptions {
        zero_eps: args.zero_eps,
    };
    let mut records = analyze_tensors(&model, &options, args.quiet)?;
    sort_by_layer(&mut records, |r| {
        (r.placement.layer_index, r.placement.expert_index)
    });
    warn_about_nonfinite(&records);

    let files = model.files().map(|p| file_name(p.as_os_str())).collect();
    let summary = ModelSummary::new(&run, files, &records, config);
    let rows: Vec<_> = records.iter().map(|r| r.with_run(&run)).collect();
    let summary_json = serde_json::to_value(&summary)?;
    write_table(&args.out, format, &rows, "tensors", Some(&summary_json))?;

    if !args.quiet {
        print!("{}", console::summary_text(&summary));
        println!("Wrote {} rows to {}", rows.len(), args.out.display());
    }
    Ok(())
}

fn analyze_tensors(
    model: &Model,
    options: &StatsOptions,
    quiet: bool,
) -> Result<Vec<AnalyzeRecord>> {
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

fn warn_about_unindexed(model: &Model) {
    let unindexed = model.unindexed_tensors();
    if let (Some(first), Some(index)) = (unindexed.first(), model.index_path()) {
        eprintln!(
            "warning: {} tensor(s) in the shards are not listed in {} and are left out, e.g. {first}",
            unindexed.len(),
            index.display()
        );
    }
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
