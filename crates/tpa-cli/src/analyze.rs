//! `tpa-analyze`: one row of exact statistics (and the rank) per tensor.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rayon::prelude::*;
use tpa_core::analyses::shard::{RunShard, matrix_cost};
use tpa_core::analyses::spectrum::Engine;
use tpa_core::analyses::stats::{StatsOptions, tensor_stats};
use tpa_core::records::{AnalyzeRecord, ModelSummary, sort_by_layer};
use tpa_core::tensors::{MatrixView, TensorView};
use tpa_core::writers::{Parts, write_table};

use crate::common::{self, ModelArgs, OutputArgs, SpectrumArgs, StatsArgs};
use crate::report::ReportFlags;
use crate::{console, folder, matrices, progress, runs, stream};

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

Progress is saved to FILE.partial.jsonl as each tensor finishes; --resume continues an
interrupted run. --model-id alone streams the model from the Hub under --max-disk, and
--shard I/N splits the tensors between machines, as tpa-transformer does (see its --help);
tpa-merge FILE then writes the output.

--report DIR also writes a statistics report (alerts, charts, report.html) into DIR, as
tpa-report does; with --fail-on it is a CI gate (exit 3 when an alert matches).";

/// Exact per-tensor statistics of a safetensors or GGUF model.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-analyze",
    version,
    about = "Exact statistics and rank of every tensor of a safetensors or GGUF model, streamed from disk",
    long_about = "Reads every tensor of a model (a directory with .safetensors shards, with or \
                  without model.safetensors.index.json, a single .safetensors file, or a GGUF file \
                  or split set) without \
                  loading the model into memory, and writes one row per tensor: layer and block \
                  type from the tensor's name, shape, dtype, mean, std, var, min, max and \
                  sparsity computed exactly in float64, and the numerical rank.",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub stream: crate::stream::StreamArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Leave the rank column empty: statistics only, at disk speed.
    #[arg(long = "no-rank", visible_alias = "no_rank")]
    pub no_rank: bool,

    #[command(flatten)]
    pub spectrum: SpectrumArgs,

    /// Continue an interrupted run from FILE.partial.jsonl (the tensors it finished)
    /// instead of starting over.
    #[arg(long)]
    pub resume: bool,

    /// Compute only shard I of N of the tensors (e.g. 0/8; split by estimated cost), or
    /// `auto` to take I and N from the scheduler (as tpa-transformer --shard). Rows go to
    /// FILE.parts/; run `tpa-merge FILE` when every shard is done.
    #[arg(long, value_name = "I/N|auto", value_parser = crate::transformer::parse_shard)]
    pub shard: Option<RunShard>,

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
    if args.shard.is_some() && args.report.is_some() {
        bail!("with --shard, give --report DIR to tpa-merge: the report needs every shard's rows");
    }
    let run = Run {
        args,
        format,
        options: args.stats.options(),
        engine: std::sync::OnceLock::new(),
    };
    args.stream.check_local(&args.model)?;
    match &args.model.model_path {
        Some(_) => run.local(),
        None => run.streamed(),
    }
}

/// What every part of one run shares.
struct Run<'a> {
    args: &'a Args,
    format: tpa_core::writers::Format,
    options: StatsOptions,
    /// The spectral engine for the rank, probed once the model has opened
    /// (so that a bad model's error comes first); unused with --no-rank.
    engine: std::sync::OnceLock<Engine>,
}

type Rows = runs::Rows<AnalyzeRecord>;

impl Run<'_> {
    fn local(&self) -> Result<()> {
        let args = self.args;
        if let Some(models) = folder::models_in(&args.model)? {
            return self.folder(&models);
        }
        let opened = common::open_model(&args.model)?;
        if !args.no_rank {
            self.engine()?;
        }
        let tensors: Vec<TensorView<'_>> = opened.model.tensors().collect();
        let names: Vec<String> = tensors.iter().map(|t| t.name().to_owned()).collect();
        let files = shard_files(&opened.model);
        let mut header = self.journal_header(&opened.run.model_path);
        let (journal_path, mine) = match args.shard {
            None => (common::journal_path(&args.output.out), tensors.clone()),
            Some(shard) => {
                header["shard"] = shard.to_string().into();
                let costs: Vec<u64> = tensors.iter().map(|t| self.cost(t)).collect();
                let (items, mine) = runs::share(&tensors, &names, &costs, shard);
                let planned = self.planned(&opened.facts(), &files);
                if !self.plan_shard(shard, planned, items)? {
                    return Ok(());
                }
                (Parts::of(&args.output.out).journal_path(shard), mine)
            }
        };
        let mut rows = Rows::open(&journal_path, &header, args.resume)?;
        if !rows.records.is_empty() && !args.quiet {
            eprintln!(
                "resuming: {} of {} tensors already done",
                rows.records.len(),
                mine.len()
            );
        }
        self.compute(&mut rows, &mine)?;
        match args.shard {
            Some(shard) => {
                runs::finish_shard(&args.output.out, shard, rows.records.len(), args.quiet)
            }
            None => self.finish(&opened.facts(), files, rows, &names, &[]),
        }
    }

    /// `--model-path` names a folder of models: each in turn, journaled
    /// apart, into one output.
    fn folder(&self, models: &[folder::FolderModel]) -> Result<()> {
        let args = self.args;
        folder::refuse(args.shard.is_some(), args.report.is_some(), false)?;
        folder::announce(common::local_path(&args.model)?, models, args.quiet);
        let mut done: Vec<(common::Facts, Vec<AnalyzeRecord>, ModelSummary)> = Vec::new();
        let mut journals = Vec::new();
        for (i, m) in models.iter().enumerate() {
            if !args.quiet {
                eprintln!("model {} of {}: {}", i + 1, models.len(), m.id);
            }
            let failed = |e: anyhow::Error| {
                e.context(format!(
                    "model {} ({}) failed; the {i} model(s) before it are kept for --resume",
                    m.id,
                    m.dir.display()
                ))
            };
            let opened = common::open_model(&m.args(&args.model)).map_err(failed)?;
            let tensors: Vec<TensorView<'_>> = opened.model.tensors().collect();
            let names: Vec<String> = tensors.iter().map(|t| t.name().to_owned()).collect();
            let files = shard_files(&opened.model);
            let path = m.journal_path(&args.output.out);
            let header = self.journal_header(&opened.run.model_path);
            let mut rows = Rows::open(&path, &header, args.resume)?;
            self.compute(&mut rows, &tensors).map_err(failed)?;
            let mut records = rows.records;
            sort_rows(&mut records, &names);
            warn_about_nonfinite(&records);
            let facts = opened.facts();
            let mut summary = ModelSummary::new(&facts.run, files, &records, facts.config.clone());
            summary.quantization = facts.quantization.clone();
            done.push((facts, records, summary));
            journals.push(path);
        }
        let table: Vec<_> = done
            .iter()
            .flat_map(|(f, r, _)| tpa_core::records::rows(&f.run, r))
            .collect();
        let summaries = done
            .iter()
            .map(|(_, _, s)| serde_json::to_value(s))
            .collect::<serde_json::Result<Vec<_>>>()?;
        let summary = serde_json::json!({ "models": summaries });
        write_table(
            &args.output.out,
            self.format,
            &table,
            "tensors",
            Some(&summary),
        )?;
        runs::remove_all(&journals.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        if !args.quiet {
            for (_, _, summary) in &done {
                print!("{}", console::summary_text(summary));
            }
            println!(
                "Wrote {} rows of {} models to {}",
                table.len(),
                done.len(),
                args.output.out.display()
            );
        }
        Ok(())
    }

    /// `--model-id` alone: the model streamed from the Hub (see tpa-transformer).
    fn streamed(&self) -> Result<()> {
        let args = self.args;
        let out = &args.output.out;
        let source = stream::Source::open(&args.model, &args.stream, out, args.shard, args.quiet)?;
        if !args.no_rank {
            self.engine()?;
        }
        let mut header = self.journal_header(&source.dir().display().to_string());
        header["source"] = source.identity();
        if let Some(shard) = args.shard {
            header["shard"] = shard.to_string().into();
        }
        let files: Vec<String> = source
            .groups()
            .iter()
            .flatten()
            .map(|p| file_name(std::ffi::OsStr::new(p)))
            .collect();
        let planned = self.planned(&source.facts(&[]), &files);
        let Some(plan) = source.plan_run(out, args.shard, |shard, work| {
            self.plan_shard(shard, planned, work)
        })?
        else {
            return Ok(());
        };
        let mut rows = Rows::open(&plan.journal, &header, args.resume)?;
        let (stream, resume, quiet) = (&args.stream, args.resume, args.quiet);
        let streamed = source.run(&plan, &header, stream, resume, quiet, |model| {
            let tensors: Vec<TensorView<'_>> = model.tensors().collect();
            self.compute(&mut rows, &tensors)?;
            Ok(tensors.iter().map(|t| t.name().to_owned()).collect())
        });
        streamed.with_context(|| rows.stopped("tensors"))?;
        if let Some(shard) = args.shard {
            return runs::finish_shard(out, shard, rows.records.len(), args.quiet);
        }
        let (finished, names) = plan.finished()?;
        self.finish(
            &source.facts(&finished),
            files,
            rows,
            &names,
            &[plan.ledger],
        )
    }

    /// Estimated cost of a tensor: the bytes read, and its spectrum unless --no-rank.
    fn cost(&self, tensor: &TensorView<'_>) -> u64 {
        let bytes = tensor.nbytes() as u64;
        if self.args.no_rank {
            return bytes;
        }
        let (rows, cols) = tensor.matrix_shape();
        matrix_cost(rows, cols) + bytes
    }

    /// The spectral engine (see [`SpectrumArgs::engine_in`]).
    fn engine(&self) -> Result<&tpa_core::analyses::spectrum::Engine> {
        self.args.spectrum.engine_in(&self.engine, self.args.quiet)
    }

    fn journal_header(&self, model_path: &str) -> serde_json::Value {
        serde_json::json!({
            "tpa": "tpa-analyze partial results",
            "model_path": model_path,
            "rank": !self.args.no_rank,
            "rank_rtol": self.args.spectrum.rank_rtol,
            "zero_eps": self.args.stats.zero_eps,
        })
    }

    /// The summary a shard plan carries (no rows yet).
    fn planned(&self, facts: &common::Facts, files: &[String]) -> serde_json::Value {
        let mut summary = ModelSummary::new(&facts.run, files.to_vec(), &[], facts.config.clone());
        summary.quantization = facts.quantization.clone();
        let mut planned = serde_json::to_value(&summary).unwrap_or_default();
        planned["created_at"] = serde_json::Value::Null;
        planned
    }

    fn plan_shard(
        &self,
        shard: RunShard,
        planned: serde_json::Value,
        work: serde_json::Value,
    ) -> Result<bool> {
        let args = self.args;
        let mut fields = serde_json::json!({
            "options": {
                "rank": !args.no_rank,
                "rank_rtol": args.spectrum.rank_rtol,
                "zero_eps": args.stats.zero_eps,
                "raw": args.model.raw,
            },
            "summary": planned,
        });
        if let (Some(fields), Some(work)) = (fields.as_object_mut(), work.as_object()) {
            fields.extend(work.clone());
        }
        runs::plan_shard(&args.output.out, "tpa-analyze", shard, fields)
    }

    /// The rows of the tensors of `tensors` not yet in the journal, each
    /// journaled as it finishes: statistics streamed from disk, and the rank
    /// through the spectral engine (which computes the same statistics on
    /// its way).
    fn compute(&self, rows: &mut Rows, tensors: &[TensorView<'_>]) -> Result<()> {
        let done: HashSet<String> = rows.records.iter().map(|r| r.param_name.clone()).collect();
        let todo: Vec<TensorView<'_>> = tensors
            .iter()
            .filter(|t| !done.contains(t.name()))
            .copied()
            .collect();
        let args = self.args;
        if args.no_rank {
            let total = todo.iter().map(|t| t.nbytes() as u64).sum();
            let bar = progress::bytes_bar(total, "analyzing", args.quiet);
            let rows = std::sync::Mutex::new(rows);
            let options = &self.options;
            let result = todo.par_iter().try_for_each(|t| -> Result<()> {
                let stats = tensor_stats(t, options, &|bytes| bar.inc(bytes))?;
                let mut rows = rows.lock().unwrap_or_else(|p| p.into_inner());
                rows.push(AnalyzeRecord::new(t, stats))
            });
            bar.finish_and_clear();
            let rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
            return result.with_context(|| rows.stopped("tensors"));
        }
        let engine = self.engine()?;
        for tensor in &todo {
            tensor.check_decodable()?;
        }
        let by_name: HashMap<&str, &TensorView<'_>> = todo.iter().map(|t| (t.name(), t)).collect();
        let matrices: Vec<MatrixView<'_>> = todo.iter().map(|t| MatrixView::whole(*t)).collect();
        let result = matrices::compute_records(
            &matrices,
            engine,
            args.spectrum.limits(),
            &self.options,
            false,
            args.quiet,
            |record| {
                let Some(tensor) = by_name.get(record.param_name.as_str()) else {
                    bail!("no tensor {} in the model", record.param_name);
                };
                let mut row = AnalyzeRecord::new(tensor, record.stats);
                row.rank = record
                    .spectral
                    .as_ref()
                    .map(|s| s.metrics.actual_rank as u64);
                rows.push(row)
            },
        );
        result.with_context(|| rows.stopped("tensors"))
    }

    /// Writes the output (and report) of a whole run, then removes its
    /// journal and `also_remove`.
    fn finish(
        &self,
        facts: &common::Facts,
        files: Vec<String>,
        rows: Rows,
        names: &[String],
        also_remove: &[PathBuf],
    ) -> Result<()> {
        let args = self.args;
        let Rows {
            journal,
            path: journal_path,
            mut records,
        } = rows;
        drop(journal);
        sort_rows(&mut records, names);
        warn_about_nonfinite(&records);
        let mut summary = ModelSummary::new(&facts.run, files, &records, facts.config.clone());
        summary.quantization = facts.quantization.clone();
        let rows = tpa_core::records::rows(&facts.run, &records);
        let summary_json = serde_json::to_value(&summary)?;
        write_table(
            &args.output.out,
            self.format,
            &rows,
            "tensors",
            Some(&summary_json),
        )?;
        let remove: Vec<&Path> = std::iter::once(journal_path.as_path())
            .chain(also_remove.iter().map(PathBuf::as_path))
            .collect();
        runs::remove_all(&remove)?;
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
}

/// Puts rows in output order: by layer, then expert, then in the order of
/// `names` (the model's storage order), whatever order they finished in.
pub(crate) fn sort_rows(records: &mut [AnalyzeRecord], names: &[String]) {
    let position: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    records.sort_by_cached_key(|r| position.get(r.param_name.as_str()).copied());
    sort_by_layer(records, |r| {
        (r.placement.layer_index, r.placement.expert_index)
    });
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

/// The names of a model's shard files, for the summary.
fn shard_files(model: &tpa_core::model::Model) -> Vec<String> {
    model.files().map(|p| file_name(p.as_os_str())).collect()
}

fn file_name(path: &std::ffi::OsStr) -> String {
    std::path::Path::new(path)
        .file_name()
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
