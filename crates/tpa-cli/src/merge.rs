//! `tpa-merge`: the output of a sharded run, from its `FILE.parts/` folder.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::de::DeserializeOwned;
use tpa_core::analyses::shard::RunShard;
use tpa_core::model::ModelConfig;
use tpa_core::records::{
    AnalyzeRecord, DiffRecord, ModelSummary, Quantization, RunInfo, TransformerRecord, rows,
};
use tpa_core::writers::{Format, Journal, Parts, write_spectra, write_table};

use crate::report::ReportFlags;
use crate::{matrices, stream};

const EXAMPLES: &str = "\
Examples:
  tpa-transformer --model-path M --out out/m.csv --shard 0/2    # on one machine
  tpa-transformer --model-path M --out out/m.csv --shard 1/2    # on another
  tpa-merge out/m.csv                                           # once both are done
  tpa-merge out/m.csv --report out/m-report                     # and the report

FILE is the --out of the shards (of tpa-transformer or tpa-analyze); their rows are in
FILE.parts/. The merged rows are
those a single run writes (apart from seconds, backend and created_at), in the same
order; the shards' --save-spectra file is written too. FILE.parts/ is kept.";

/// Merge the shards of a `--shard` run into its output file.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-merge",
    version,
    about = "Merge the shards of a tpa-transformer or tpa-analyze --shard run into one output file",
    after_help = EXAMPLES
)]
pub struct Args {
    /// The output file the shards were given as --out.
    #[arg(value_name = "FILE")]
    pub out: PathBuf,

    /// Output format: csv, json or jsonl [default: from FILE's extension].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Also write the report (as tpa-report does) into DIR; it has spectrum cards
    /// when the shards ran with --save-spectra.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    #[command(flatten, next_help_heading = "Report (with --report DIR)")]
    pub report_flags: ReportFlags,

    /// Print nothing but errors and warnings.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Entry point of the `tpa-merge` binary.
pub fn main() -> std::process::ExitCode {
    let args: Args =
        crate::report::parse_with_report_flags(|a: &Args| (a.report.is_some(), &a.report_flags));
    crate::exit_code(run(&args))
}

pub fn run(args: &Args) -> Result<()> {
    let format = crate::common::output_format(&crate::common::OutputArgs {
        out: args.out.clone(),
        format: args.format,
    })?;
    let parts = Parts::of(&args.out);
    let plan = parts.read_plan()?.with_context(|| {
        format!(
            "{} holds no plan.json: run tpa-transformer --out {} --shard I/N first",
            parts.dir().display(),
            args.out.display()
        )
    })?;
    let count = match plan["count"].as_u64() {
        Some(n) if n > 0 => n as usize,
        _ => bail!("{} gives no shard count", parts.plan_path().display()),
    };
    let unfinished = parts.unfinished(count);
    if let Some(first) = unfinished.first() {
        let names: Vec<String> = unfinished.iter().map(RunShard::to_string).collect();
        bail!(
            "missing shards: {} (no finished shard in {}); run each again with the same \
             command and its --shard, e.g. --shard {first} --resume, then tpa-merge again",
            names.join(", "),
            parts.dir().display()
        );
    }
    if plan["tpa"] == "tpa-analyze shard plan" {
        return merge_analyze(args, format, &parts, &plan, count);
    }
    if plan["tpa"] == "tpa-diff shard plan" {
        return merge_diff(args, format, &parts, &plan, count);
    }
    let (mut records, names, quantization) =
        shard_rows(&parts, &plan, count, |r: &TransformerRecord| {
            r.matrix_name()
        })?;
    matrices::sort_rows(&mut records, &names);

    let (run, mut summary) = merged_summary(&plan, quantization)?;
    summary["matrices"] = records.len().into();
    write_table(
        &args.out,
        format,
        &rows(&run, &records),
        "matrices",
        Some(&summary),
    )?;
    let spectra = plan["spectra"].as_str().map(PathBuf::from);
    if let Some(path) = &spectra {
        write_spectra(path, &crate::transformer::spectra_of(&records))?;
    }
    if !args.quiet {
        eprintln!(
            "merged {count} shards: {} rows into {}{}",
            records.len(),
            args.out.display(),
            spectra
                .as_ref()
                .map(|p| format!(", spectra into {}", p.display()))
                .unwrap_or_default()
        );
    }
    match &args.report {
        Some(dir) => {
            if spectra.is_none() && !args.quiet {
                eprintln!(
                    "note: the shards kept no spectra (--save-spectra), so the report has no spectrum cards"
                );
            }
            crate::report::report_of_run(
                &args.out,
                summary,
                spectra.as_deref(),
                dir,
                &args.report_flags,
                args.quiet,
            )
        }
        None => Ok(()),
    }
}

/// Every shard's rows, checked against the plan (each planned item has
/// exactly one row, from its shard), with the items in storage order and
/// the quantization the shards found.
fn shard_rows<T: DeserializeOwned>(
    parts: &Parts,
    plan: &serde_json::Value,
    count: usize,
    name_of: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Vec<String>, Option<Quantization>)> {
    let mut records: Vec<T> = Vec::new();
    for index in 0..count {
        let shard = RunShard { index, count };
        let path = parts.journal_path(shard);
        let (resumed, _) = Journal::read::<T>(&path)?.with_context(|| {
            format!(
                "shard {shard} is marked done but {} is missing",
                path.display()
            )
        })?;
        records.extend(resumed.records);
    }
    let (items, quantization) = planned_items(parts, plan, count)?;
    let shard_of: HashMap<&str, usize> = items.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &records {
        let name = name_of(r);
        if !shard_of.contains_key(name.as_str()) {
            bail!("a shard holds a row for {name}, which the plan does not list");
        }
        *seen.entry(name).or_default() += 1;
    }
    if let Some((name, _)) = seen.iter().find(|(_, n)| **n > 1) {
        bail!("{name} has rows from more than one shard");
    }
    if let Some((name, s)) = items.iter().find(|(n, _)| !seen.contains_key(n)) {
        bail!("no row for {name}, which shard {s}/{count} was to compute");
    }
    let names = items.into_iter().map(|(n, _)| n).collect();
    Ok((records, names, quantization))
}

/// The plan's summary, stamped now, with the quantization the shards found
/// when they were streamed; and the rows' run facts.
fn merged_summary(
    plan: &serde_json::Value,
    quantization: Option<Quantization>,
) -> Result<(RunInfo, serde_json::Value)> {
    let mut summary = plan["summary"].clone();
    if let Some(q) = quantization {
        summary["quantization"] = serde_json::to_value(q)?;
    }
    let text = |key: &str| summary[key].as_str().unwrap_or_default().to_owned();
    let run = RunInfo::now(text("model_path"), text("model_id"), text("revision"));
    summary["created_at"] = run.created_at.clone().into();
    Ok((run, summary))
}

/// tpa-merge of a `tpa-analyze --shard` run: the statistics table and its summary.
fn merge_analyze(
    args: &Args,
    format: tpa_core::writers::Format,
    parts: &Parts,
    plan: &serde_json::Value,
    count: usize,
) -> Result<()> {
    let (mut records, names, quantization) =
        shard_rows(parts, plan, count, |r: &AnalyzeRecord| r.param_name.clone())?;
    crate::analyze::sort_rows(&mut records, &names);
    let (run, planned) = merged_summary(plan, None)?;
    let files: Vec<String> = serde_json::from_value(planned["files"].clone()).unwrap_or_default();
    let config: Option<ModelConfig> =
        serde_json::from_value(planned["config"].clone()).unwrap_or_default();
    let mut summary = ModelSummary::new(&run, files, &records, config);
    summary.quantization = quantization.or_else(|| {
        serde_json::from_value(planned["quantization"].clone())
            .ok()
            .flatten()
    });
    let summary = serde_json::to_value(&summary)?;
    write_table(
        &args.out,
        format,
        &rows(&run, &records),
        "tensors",
        Some(&summary),
    )?;
    if !args.quiet {
        eprintln!(
            "merged {count} shards: {} rows into {}",
            records.len(),
            args.out.display()
        );
    }
    match &args.report {
        Some(dir) => crate::report::report_of_run(
            &args.out,
            summary,
            None,
            dir,
            &args.report_flags,
            args.quiet,
        ),
        None => Ok(()),
    }
}

/// tpa-merge of a `tpa-diff --shard` run: the compared rows of every shard
/// and the plan's rows without numbers, in the order of a single run.
fn merge_diff(
    args: &Args,
    format: tpa_core::writers::Format,
    parts: &Parts,
    plan: &serde_json::Value,
    count: usize,
) -> Result<()> {
    if args.report.is_some() {
        bail!("tpa-diff has no report yet; merge without --report");
    }
    let (mut records, _, _) = shard_rows(parts, plan, count, |r: &DiffRecord| r.matrix_name())?;
    let broken = || format!("{} is not a tpa-diff plan", parts.plan_path().display());
    let labels: crate::diff::Labels =
        serde_json::from_value(plan["labels"].clone()).with_context(broken)?;
    let listed: Vec<DiffRecord> =
        serde_json::from_value(plan["listed"].clone()).with_context(broken)?;
    let names: Vec<String> = serde_json::from_value(plan["names"].clone()).with_context(broken)?;
    records.extend(listed);
    let rows = records.len();
    crate::diff::write_diff(&args.out, format, &labels, records, &names, true)?;
    if !args.quiet {
        eprintln!(
            "merged {count} shards: {rows} rows into {}",
            args.out.display()
        );
    }
    Ok(())
}

/// Matrix names and the shard of each.
type Items = Vec<(String, usize)>;

/// Every matrix the plan gives a shard, in storage order, with its shard.
/// A streamed run plans groups of files, whose matrices the shards' ledgers
/// name (with the groups' quantization, then known only to them).
fn planned_items(
    parts: &Parts,
    plan: &serde_json::Value,
    count: usize,
) -> Result<(Items, Option<Quantization>)> {
    let Some(groups) = plan.get("groups") else {
        let items = serde_json::from_value(plan["items"].clone())
            .with_context(|| format!("{} lists no items", parts.plan_path().display()))?;
        return Ok((items, None));
    };
    let groups: Vec<(Vec<String>, usize)> = serde_json::from_value(groups.clone())
        .with_context(|| format!("{} lists no file groups", parts.plan_path().display()))?;
    let mut finished: Vec<(stream::Finished, usize)> = Vec::new();
    for index in 0..count {
        let shard = RunShard { index, count };
        let path = parts.ledger_path(shard);
        let (ledger, _) = Journal::read::<stream::Finished>(&path)?.with_context(|| {
            format!(
                "shard {shard} is marked done but {} is missing",
                path.display()
            )
        })?;
        finished.extend(ledger.records.into_iter().map(|f| (f, index)));
    }
    let mut items = Vec::new();
    let mut quantizations = Vec::new();
    for (files, s) in &groups {
        let Some((f, _)) = finished.iter().find(|(f, i)| &f.files == files && i == s) else {
            bail!(
                "shard {s}/{count} is marked done but has not analysed {}",
                files.join(", ")
            );
        };
        items.extend(f.names.iter().map(|n| (n.clone(), *s)));
        quantizations.extend(f.quantization.clone());
    }
    Ok((items, Quantization::combine(quantizations)))
}
