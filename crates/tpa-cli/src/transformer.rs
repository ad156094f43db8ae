//! `tpa-transformer`: the full singular-value spectrum of every matrix.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tpa_core::analyses::shard::{self, RunShard};
use tpa_core::records::{RunInfo, TransformerRecord, rows};
use tpa_core::tensors::MatrixView;
use tpa_core::writers::{Parts, write_spectra, write_table};

use crate::common::{self, ModelArgs, OutputArgs, SpectrumArgs, StatsArgs};
use crate::report::ReportFlags;
use crate::{console, matrices};

const EXAMPLES: &str = "\
Examples:
  tpa-transformer --model-path data/models/Qwen/Qwen3-4B --out data/outputs/qwen3.csv
  tpa-transformer --model-path model.safetensors --out spectra.csv --only '*self_attn*' --save-spectra sv.safetensors
  tpa-transformer --model_path data/models/llama --out llama.csv --no_gpu        # original flags
  tpa-transformer --model-path data/models/llama --out llama.csv --resume        # after an interruption

Every matrix (the 2-D view of every tensor; stacked experts one by one) gets all of
its singular values in float64: Gram-matrix eigenvalues, redone with an SVD when a
value lies within 1% of the rank tolerance, so ranks equal LAPACK's f64 SVD. Nothing
is sampled or truncated. Columns: the original transformer_analysis.py columns, then
expert_index, rank_tol, norms, stable/effective rank, 50%/99% energy ranks, condition
number, WeightWatcher alpha and friends, method, backend, seconds, numel, NaN/Inf counts,
nbytes, digest (of the stored bytes), alpha_xmin (see the README).

Progress is saved to FILE.partial.jsonl as each matrix finishes; after a crash or
Ctrl-C, --resume continues from there. The output itself is written at the end.

--report DIR also writes the report of tpa-report (charts, alerts, report.html) into DIR,
keeping the spectra in DIR/spectra.safetensors for its spectrum cards.

Across machines: run the same command with --shard I/N on N machines (or --shard auto
in a Slurm array, torchrun or a Kubernetes Indexed Job); each writes its rows under
FILE.parts/, and `tpa-merge FILE` then writes FILE (and the --save-spectra file), the
same rows as one run; give --report DIR to tpa-merge:
  sbatch --array=0-7 --wrap 'tpa-transformer --model-path M --out out/m.csv --shard auto'
  tpa-merge out/m.csv";

/// Complete singular-value spectra of every weight matrix of a safetensors model.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-transformer",
    version,
    about = "Exact, complete singular-value spectra and ranks of every matrix of a safetensors model",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub spectrum: SpectrumArgs,

    /// Analyse only tensors whose name matches this glob (repeatable), e.g. '*q_proj*'.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<glob::Pattern>,

    /// Leave out tensors whose name matches this glob (repeatable), e.g. '*experts*'.
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<glob::Pattern>,

    /// Also write every matrix's singular values (float64, descending) to this
    /// .safetensors file, one 1-D tensor per matrix named after the parameter
    /// ("NAME[e]" for expert e of a stacked expert tensor).
    #[arg(
        long = "save-spectra",
        visible_alias = "save_spectra",
        value_name = "FILE"
    )]
    pub save_spectra: Option<PathBuf>,

    /// Continue an interrupted run from FILE.partial.jsonl instead of starting over.
    #[arg(long)]
    pub resume: bool,

    /// Compute only shard I of N of the matrices (e.g. 0/8; split by estimated cost so
    /// that shards finish together), or `auto` to take I and N from the scheduler
    /// (SLURM_ARRAY_TASK_ID/_COUNT, torchrun's RANK/WORLD_SIZE, or Kubernetes'
    /// JOB_COMPLETION_INDEX with TPA_SHARD_COUNT). Rows go to FILE.parts/; run
    /// `tpa-merge FILE` when every shard is done.
    #[arg(long, value_name = "I/N|auto", value_parser = parse_shard)]
    pub shard: Option<RunShard>,

    /// Also write the report (as tpa-report does) into DIR when the analysis ends; the
    /// spectra are kept in DIR/spectra.safetensors unless --save-spectra names a file.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    #[command(flatten, next_help_heading = "Report (with --report DIR)")]
    pub report_flags: ReportFlags,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Accepted for compatibility with the original and ignored: spectra are always complete.
    #[arg(
        long = "rank_k",
        visible_alias = "rank-k",
        value_name = "K",
        hide_short_help = true
    )]
    pub rank_k: Option<usize>,

    /// No progress bar and no console report; errors and warnings still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Entry point of the `tpa-transformer` binary.
pub fn main() -> std::process::ExitCode {
    let args: Args =
        crate::report::parse_with_report_flags(|a: &Args| (a.report.is_some(), &a.report_flags));
    crate::exit_code(run(&args))
}

/// Runs the analysis described by `args`.
pub fn run(args: &Args) -> Result<()> {
    let format = common::output_format(&args.output)?;
    if let Some(k) = args.rank_k {
        eprintln!("note: --rank_k {k} is ignored; tpa computes every singular value");
    }
    let spectra_path = spectra_path(args);
    if args.shard.is_some() && args.report.is_some() {
        bail!("with --shard, give --report DIR to tpa-merge: the report needs every shard's rows");
    }
    if let Some(path) = &spectra_path {
        tpa_core::writers::prepare_output(path)?;
    }
    let opened = common::open_model(&args.model)?;
    if let (Some(q), false) = (&opened.quantization, args.quiet) {
        eprintln!("{}", q.note);
    }
    let stats = args.stats.options();
    let engine = args.spectrum.engine(args.quiet)?;

    let selected: Vec<_> = opened
        .model
        .tensors()
        .filter(|t| args.only.is_empty() || args.only.iter().any(|p| p.matches(t.name())))
        .filter(|t| !args.skip.iter().any(|p| p.matches(t.name())))
        .collect();
    if selected.is_empty() {
        bail!(
            "no tensor matches --only/--skip in {}",
            opened.model.path().display()
        );
    }
    for tensor in &selected {
        tensor.check_decodable()?;
    }
    let all: Vec<MatrixView<'_>> = selected
        .iter()
        .flat_map(|t| MatrixView::split(*t))
        .collect();

    let mut header = serde_json::json!({
        "tpa": "tpa-transformer partial results",
        "model_path": opened.run.model_path,
        "rank_rtol": args.spectrum.rank_rtol,
        "zero_eps": args.stats.zero_eps,
        "save_spectra": spectra_path.is_some(),
    });
    let names: Vec<String> = all.iter().map(MatrixView::name).collect();
    let (journal_path, mine) = match args.shard {
        None => (common::journal_path(&args.output.out), all.clone()),
        Some(shard) => {
            header["shard"] = shard.to_string().into();
            let Some(mine) =
                plan_shard(args, &opened, &all, &names, spectra_path.as_deref(), shard)?
            else {
                return Ok(());
            };
            (Parts::of(&args.output.out).journal_path(shard), mine)
        }
    };
    let (mut journal, mut records) =
        common::open_journal::<TransformerRecord>(&journal_path, &header, args.resume)?;
    let done: HashSet<String> = records.iter().map(TransformerRecord::matrix_name).collect();
    let todo: Vec<MatrixView<'_>> = mine
        .iter()
        .filter(|m| !done.contains(&m.name()))
        .copied()
        .collect();
    if !records.is_empty() && !args.quiet {
        eprintln!(
            "resuming: {} of {} matrices already done",
            records.len(),
            mine.len()
        );
    }

    let mut nonfinite = 0;
    matrices::compute_records(
        &todo,
        &engine,
        args.spectrum.limits(),
        &stats,
        spectra_path.is_some(),
        args.quiet,
        |record| {
            if let Some(reason) = &record.skipped {
                nonfinite += 1;
                eprintln!(
                    "warning: {}: no spectrum ({reason}); statistics are still reported",
                    record.param_name
                );
            }
            journal.append(&record)?;
            records.push(record);
            Ok(())
        },
    )
    .with_context(|| {
        format!(
            "analysis stopped; {} finished matrices are kept in {} for --resume",
            records.len(),
            journal_path.display()
        )
    })?;
    drop(journal);

    if let Some(shard) = args.shard {
        let parts = Parts::of(&args.output.out);
        parts.mark_done(shard, records.len())?;
        if !args.quiet {
            eprintln!(
                "shard {shard} done: {} rows in {}; once every shard is done, tpa-merge {} writes the output",
                records.len(),
                journal_path.display(),
                args.output.out.display()
            );
        }
        return Ok(());
    }
    matrices::sort_rows(&mut records, &names);
    let summary = summary(args, &opened, &records);
    write_outputs(
        args,
        format,
        &opened.run,
        &records,
        &summary,
        spectra_path.as_deref(),
    )?;
    std::fs::remove_file(&journal_path)
        .with_context(|| format!("removing {}", journal_path.display()))?;

    if !args.quiet {
        print!("{}", console::layer_report(&records));
        if nonfinite > 0 {
            println!(
                "{nonfinite} matrices had NaN/Inf values or no spectrum; their spectral columns are empty"
            );
        }
        println!(
            "Wrote {} rows to {}",
            records.len(),
            args.output.out.display()
        );
    }
    match &args.report {
        Some(dir) => crate::report::report_of_run(
            &args.output.out,
            summary,
            spectra_path.as_deref(),
            dir,
            &args.report_flags,
            args.quiet,
        ),
        None => Ok(()),
    }
}

/// Writes (or checks) the shard plan in FILE.parts/ and returns this shard's
/// matrices; `None` when the shard has already finished.
fn plan_shard<'m>(
    args: &Args,
    opened: &common::Opened,
    all: &[MatrixView<'m>],
    names: &[String],
    spectra_path: Option<&std::path::Path>,
    shard: RunShard,
) -> Result<Option<Vec<MatrixView<'m>>>> {
    let parts = Parts::of(&args.output.out);
    let costs: Vec<u64> = all.iter().map(matrices::work_units).collect();
    let shard_of = shard::split(&costs, shard.count);
    let mut planned = summary(args, opened, &[]);
    planned["created_at"] = serde_json::Value::Null;
    parts.write_plan(&serde_json::json!({
        "tpa": "tpa-transformer shard plan",
        "count": shard.count,
        "options": {
            "rank_rtol": args.spectrum.rank_rtol,
            "zero_eps": args.stats.zero_eps,
            "raw": args.model.raw,
        },
        // The shards keep every spectrum in their journals; tpa-merge writes the file.
        "spectra": spectra_path.map(|p| p.display().to_string()),
        "summary": planned,
        "items": names.iter().zip(&shard_of).map(|(n, s)| serde_json::json!([n, s])).collect::<Vec<_>>(),
    }))?;
    if parts.is_done(shard) {
        eprintln!(
            "shard {shard} is already complete in {}; nothing to do (tpa-merge {} writes the output)",
            parts.dir().display(),
            args.output.out.display()
        );
        return Ok(None);
    }
    Ok(Some(
        all.iter()
            .zip(&shard_of)
            .filter(|&(_, &s)| s == shard.index)
            .map(|(m, _)| *m)
            .collect(),
    ))
}

fn parse_shard(text: &str) -> Result<RunShard, String> {
    if text == "auto" {
        RunShard::from_env(|k| std::env::var(k).ok())
    } else {
        text.parse()
    }
}

/// Where the spectra go: --save-spectra, else DIR/spectra.safetensors with --report.
fn spectra_path(args: &Args) -> Option<PathBuf> {
    args.save_spectra
        .clone()
        .or_else(|| args.report.as_ref().map(|d| d.join("spectra.safetensors")))
}

/// The JSON output's summary, which reports also read.
fn summary(
    args: &Args,
    opened: &common::Opened,
    records: &[TransformerRecord],
) -> serde_json::Value {
    let run = &opened.run;
    let selection = (!args.only.is_empty() || !args.skip.is_empty()).then(|| {
        serde_json::json!({
            "only": args.only.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "skip": args.skip.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        })
    });
    serde_json::json!({
        "model_path": run.model_path,
        "model_id": run.model_id,
        "revision": run.revision,
        "created_at": run.created_at,
        "matrices": records.len(),
        "rank_rtol": args.spectrum.rank_rtol,
        "tpa_version": env!("CARGO_PKG_VERSION"),
        "selection": selection,
        "config": opened.config,
        "quantization": opened.quantization,
    })
}

fn write_outputs(
    args: &Args,
    format: tpa_core::writers::Format,
    run: &RunInfo,
    records: &[TransformerRecord],
    summary: &serde_json::Value,
    spectra_path: Option<&std::path::Path>,
) -> Result<()> {
    let rows = rows(run, records);
    write_table(&args.output.out, format, &rows, "matrices", Some(summary))?;
    if let Some(path) = spectra_path {
        write_spectra(path, &spectra_of(records))?;
    }
    Ok(())
}

/// Every kept spectrum, named as the spectra file names them.
pub(crate) fn spectra_of(records: &[TransformerRecord]) -> Vec<(String, Vec<f64>)> {
    records
        .iter()
        .filter_map(|r| {
            let values = r.spectral.as_ref()?.values.clone()?;
            Some((r.matrix_name(), values))
        })
        .collect()
}
