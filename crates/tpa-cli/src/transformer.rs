//! `tpa-transformer`: the full singular-value spectrum of every matrix.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tpa_core::analyses::shard::RunShard;
use tpa_core::model::Model;
use tpa_core::records::{RunInfo, TransformerRecord, rows};
use tpa_core::tensors::MatrixView;
use tpa_core::writers::{Parts, write_spectra, write_table};

use crate::common::{self, ModelArgs, OutputArgs, SpectrumArgs, StatsArgs};
use crate::report::ReportFlags;
use crate::{console, folder, matrices, runs, stream};

const EXAMPLES: &str = "\
Examples:
  tpa-transformer --model-path data/models/Qwen/Qwen3-4B --out data/outputs/qwen3.csv
  tpa-transformer --model-path model.safetensors --out spectra.csv --only '*self_attn*' --save-spectra sv.safetensors
  tpa-transformer --model_path data/models/llama --out llama.csv --no_gpu        # original flags
  tpa-transformer --model-path data/models/llama --out llama.csv --resume        # after an interruption
  tpa-transformer --model-id Qwen/Qwen3-235B-A22B --max-disk 20G --out qwen3.csv    # streamed from the Hub
  tpa-transformer --model-id unsloth/Qwen3-30B-A3B-GGUF --gguf Q4_K_M --out q4.csv  # one GGUF model of several

Every matrix (the 2-D view of every tensor; stacked experts one by one) gets all of
its singular values in float64: Gram-matrix eigenvalues, redone with an SVD when a
value lies within 1% of the rank tolerance, so ranks equal LAPACK's f64 SVD. Nothing
is sampled or truncated. Columns: the original transformer_analysis.py columns, then
expert_index, rank_tol, norms, stable/effective rank, 50%/99% energy ranks, condition
number, WeightWatcher alpha and friends, method, backend, seconds, numel, NaN/Inf counts,
nbytes, digest (of the stored bytes), alpha_xmin (see the README).

Progress is saved to FILE.partial.jsonl as each matrix finishes; after a crash or
Ctrl-C, --resume continues from there. The output itself is written at the end.

--model-id ORG/NAME without --model-path streams the model from the Hub (HF_ENDPOINT,
HF_TOKEN as for tpa-download): the revision is resolved to one commit, every shard's header
is read with a Range request, then the shard files are downloaded (resumed, sha256-checked)
into --download-dir/ORG/NAME, analysed and deleted, so that the folder never holds more than
--max-disk; with room for two files the next one downloads during the analysis. A weight
whose scales lie in another file waits for both. A GGUF model streams file by file; --gguf
NAME picks it in a repository of several quantizations. --resume downloads again only the
files not yet analysed. The rows are those of a local run on the downloaded folder, with the
commit in the revision column.

--report DIR also writes the report of tpa-report (charts, alerts, report.html) into DIR,
keeping the spectra in DIR/spectra.safetensors for its spectrum cards.

Across machines: run the same command with --shard I/N on N machines (or --shard auto
in a Slurm array, torchrun or a Kubernetes Indexed Job); each writes its rows under
FILE.parts/, and `tpa-merge FILE` then writes FILE (and the --save-spectra file), the
same rows as one run; give --report DIR to tpa-merge. Streamed (--model-id alone), the split
is by shard file, so that each machine downloads only its own files:
  sbatch --array=0-7 --wrap 'tpa-transformer --model-path M --out out/m.csv --shard auto'
  tpa-merge out/m.csv";

/// Complete singular-value spectra of every weight matrix of a safetensors or GGUF model.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-transformer",
    version,
    about = "Exact, complete singular-value spectra and ranks of every matrix of a safetensors or GGUF model",
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
    let run = Run {
        args,
        format,
        stats: args.stats.options(),
        engine: std::sync::OnceLock::new(),
        spectra_path,
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
    stats: tpa_core::analyses::stats::StatsOptions,
    /// Probed once the model has opened, so that a bad model's error comes first.
    engine: std::sync::OnceLock<tpa_core::analyses::spectrum::Engine>,
    spectra_path: Option<PathBuf>,
}

impl Run<'_> {
    fn local(&self) -> Result<()> {
        let args = self.args;
        if let Some(models) = folder::models_in(&args.model)? {
            return self.folder(&models);
        }
        let opened = common::open_model(&args.model)?;
        if let (Some(q), false) = (&opened.quantization, args.quiet) {
            eprintln!("{}", q.note);
        }
        self.engine()?;
        let all = self.matrices_of(&opened.model)?;
        if all.is_empty() {
            bail!(
                "no tensor matches --only/--skip in {}",
                opened.model.path().display()
            );
        }
        let names: Vec<String> = all.iter().map(MatrixView::name).collect();
        let mut header = self.journal_header(&opened.run.model_path);
        let (journal_path, mine) = match args.shard {
            None => (common::journal_path(&args.output.out), all.clone()),
            Some(shard) => {
                header["shard"] = shard.to_string().into();
                let costs: Vec<u64> = all.iter().map(matrices::work_units).collect();
                let (items, mine) = runs::share(&all, &names, &costs, shard);
                let planned = summary(args, &opened.facts(), &[]);
                if !self.plan_shard(shard, planned, items)? {
                    return Ok(());
                }
                (Parts::of(&args.output.out).journal_path(shard), mine)
            }
        };
        let mut rows = Rows::open(&journal_path, &header, args.resume)?;
        if !rows.records.is_empty() && !args.quiet {
            eprintln!(
                "resuming: {} of {} matrices already done",
                rows.records.len(),
                mine.len()
            );
        }
        self.compute(&mut rows, &mine)?;
        match args.shard {
            Some(shard) => {
                runs::finish_shard(&args.output.out, shard, rows.records.len(), args.quiet)
            }
            None => self.finish(&opened.facts(), rows, &names, &[]),
        }
    }

    /// `--model-path` names a folder of models: each in turn, journaled
    /// apart, into one output.
    fn folder(&self, models: &[folder::FolderModel]) -> Result<()> {
        let args = self.args;
        folder::refuse(
            args.shard.is_some(),
            args.report.is_some(),
            self.spectra_path.is_some(),
        )?;
        folder::announce(common::local_path(&args.model)?, models, args.quiet);
        let mut done: Vec<(common::Facts, Vec<TransformerRecord>)> = Vec::new();
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
            self.engine()?;
            let all = self.matrices_of(&opened.model).map_err(failed)?;
            let names: Vec<String> = all.iter().map(MatrixView::name).collect();
            let path = m.journal_path(&args.output.out);
            let header = self.journal_header(&opened.run.model_path);
            let mut rows = Rows::open(&path, &header, args.resume)?;
            self.compute(&mut rows, &all).map_err(failed)?;
            let mut records = rows.records;
            matrices::sort_rows(&mut records, &names);
            done.push((opened.facts(), records));
            journals.push(path);
        }
        let table: Vec<_> = done.iter().flat_map(|(f, r)| rows(&f.run, r)).collect();
        let summaries: Vec<serde_json::Value> =
            done.iter().map(|(f, r)| summary(args, f, r)).collect();
        let summary = serde_json::json!({ "models": summaries });
        write_table(
            &args.output.out,
            self.format,
            &table,
            "matrices",
            Some(&summary),
        )?;
        runs::remove_all(&journals.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        if !args.quiet {
            for (facts, records) in &done {
                println!("{}: {} rows", facts.run.model_id, records.len());
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

    /// `--model-id` alone: the model streamed from the Hub file group by
    /// file group under `--max-disk`.
    fn streamed(&self) -> Result<()> {
        let args = self.args;
        let out = &args.output.out;
        let source = stream::Source::open(&args.model, &args.stream, out, args.shard, args.quiet)?;
        self.engine()?;
        let mut header = self.journal_header(&source.dir().display().to_string());
        header["source"] = source.identity();
        if let Some(shard) = args.shard {
            header["shard"] = shard.to_string().into();
        }
        let planned = summary(args, &source.facts(&[]), &[]);
        let Some(plan) = source.plan_run(out, args.shard, |shard, work| {
            self.plan_shard(shard, planned, work)
        })?
        else {
            return Ok(());
        };
        let mut rows = Rows::open(&plan.journal, &header, args.resume)?;
        let (stream, resume, quiet) = (&args.stream, args.resume, args.quiet);
        let streamed = source.run(&plan, &header, stream, resume, quiet, |model| {
            let matrices = self.matrices_of(model)?;
            self.compute(&mut rows, &matrices)?;
            Ok(matrices.iter().map(MatrixView::name).collect())
        });
        streamed.with_context(|| rows.stopped("matrices"))?;
        if let Some(shard) = args.shard {
            return runs::finish_shard(out, shard, rows.records.len(), args.quiet);
        }
        let (finished, names) = plan.finished()?;
        if names.is_empty() {
            bail!(
                "no tensor matches --only/--skip in {}",
                source.dir().display()
            );
        }
        self.finish(&source.facts(&finished), rows, &names, &[plan.ledger])
    }

    /// The matrices of `model` that --only/--skip select.
    fn matrices_of<'m>(&self, model: &'m Model) -> Result<Vec<MatrixView<'m>>> {
        let args = self.args;
        let selected: Vec<_> = model
            .tensors()
            .filter(|t| args.only.is_empty() || args.only.iter().any(|p| p.matches(t.name())))
            .filter(|t| !args.skip.iter().any(|p| p.matches(t.name())))
            .collect();
        for tensor in &selected {
            tensor.check_decodable()?;
        }
        Ok(selected.into_iter().flat_map(MatrixView::split).collect())
    }

    /// The spectral engine (see [`SpectrumArgs::engine_in`]).
    fn engine(&self) -> Result<&tpa_core::analyses::spectrum::Engine> {
        self.args.spectrum.engine_in(&self.engine, self.args.quiet)
    }

    fn journal_header(&self, model_path: &str) -> serde_json::Value {
        serde_json::json!({
            "tpa": "tpa-transformer partial results",
            "model_path": model_path,
            "rank_rtol": self.args.spectrum.rank_rtol,
            "zero_eps": self.args.stats.zero_eps,
            "save_spectra": self.spectra_path.is_some(),
        })
    }

    /// Writes (or checks) the shard plan in FILE.parts/ (`work`: the items or
    /// groups and their shards); false when the shard has already finished.
    fn plan_shard(
        &self,
        shard: RunShard,
        mut planned: serde_json::Value,
        work: serde_json::Value,
    ) -> Result<bool> {
        let args = self.args;
        planned["created_at"] = serde_json::Value::Null;
        let mut fields = serde_json::json!({
            "options": {
                "rank_rtol": args.spectrum.rank_rtol,
                "zero_eps": args.stats.zero_eps,
                "raw": args.model.raw,
            },
            // The shards keep every spectrum in their journals; tpa-merge writes the file.
            "spectra": self.spectra_path.as_ref().map(|p| p.display().to_string()),
            "summary": planned,
        });
        if let (Some(fields), Some(work)) = (fields.as_object_mut(), work.as_object()) {
            fields.extend(work.clone());
        }
        runs::plan_shard(&args.output.out, "tpa-transformer", shard, fields)
    }

    /// Computes the matrices of `matrices` not yet in the journal, adding
    /// each to it as it finishes.
    fn compute(&self, rows: &mut Rows, matrices: &[MatrixView<'_>]) -> Result<()> {
        let done: HashSet<String> = rows
            .records
            .iter()
            .map(TransformerRecord::matrix_name)
            .collect();
        let todo: Vec<MatrixView<'_>> = matrices
            .iter()
            .filter(|m| !done.contains(&m.name()))
            .copied()
            .collect();
        let args = self.args;
        let engine = self.engine()?;
        let result = matrices::compute_records(
            &todo,
            engine,
            args.spectrum.limits(),
            &self.stats,
            self.spectra_path.is_some(),
            args.quiet,
            |record| {
                if let Some(reason) = &record.skipped {
                    eprintln!(
                        "warning: {}: no spectrum ({reason}); statistics are still reported",
                        record.param_name
                    );
                }
                rows.push(record)
            },
        );
        result.with_context(|| rows.stopped("matrices"))
    }

    /// Writes the output (and spectra, and report) of a whole run, then
    /// removes its journal and `also_remove`.
    fn finish(
        &self,
        facts: &common::Facts,
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
        let nonfinite = records.iter().filter(|r| r.skipped.is_some()).count();
        matrices::sort_rows(&mut records, names);
        let summary = summary(args, facts, &records);
        write_outputs(
            args,
            self.format,
            &facts.run,
            &records,
            &summary,
            self.spectra_path.as_deref(),
        )?;
        let remove: Vec<&std::path::Path> = std::iter::once(&journal_path)
            .chain(also_remove)
            .map(PathBuf::as_path)
            .collect();
        runs::remove_all(&remove)?;
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
                self.spectra_path.as_deref(),
                dir,
                &args.report_flags,
                args.quiet,
            ),
            None => Ok(()),
        }
    }
}

type Rows = runs::Rows<TransformerRecord>;

pub(crate) fn parse_shard(text: &str) -> Result<RunShard, String> {
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
fn summary(args: &Args, facts: &common::Facts, records: &[TransformerRecord]) -> serde_json::Value {
    let run = &facts.run;
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
        "config": facts.config,
        "quantization": facts.quantization,
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
