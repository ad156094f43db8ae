//! `tpa-diff`: what fine-tuning changed, matrix by matrix: the exact
//! spectrum of ΔW = W_model − W_base and the spectra of both sides.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tpa_core::analyses::diff::DiffOptions;
use tpa_core::model::{Adapter, Model, Reading};
use tpa_core::records::{DiffRecord, DiffRow, DiffStatus, RunInfo, sort_by_layer};
use tpa_core::tensors::{LoraUpdate, MatrixView, TensorView};
use tpa_core::writers::write_table;

use crate::common::{self, OutputArgs, SpectrumArgs};
use crate::{matrices, runs};

const EXAMPLES: &str = "\
Examples:
  tpa-diff --base data/models/meta-llama/Llama-3.1-8B --model data/models/org/tuned --out diff.csv
  tpa-diff --base base/ --model tuned/ --out diff.json --only '*self_attn*' --lora-ranks 4,16,64
  tpa-diff --base base/ --model tuned/ --out diff.csv --resume        # after an interruption
  tpa-diff --base data/models/meta-llama/Llama-3.1-8B --adapter my-lora/ --out lora.csv
  tpa-diff --base data/models/meta-llama/Llama-3.1-8B --adapter my-lora/ --out lora.csv --delta-only

Tensors are matched by name. For every matrix both checkpoints hold with the same shape,
ΔW = W_model − W_base is formed exactly in f64 from the stored (or dequantized) values and
gets its complete spectrum from the engine of tpa-transformer, as do both sides. Columns:
base_path, model_path, model_id, param_name, layer_index, block_type, expert_index, rows,
cols, base_dtype, model_dtype, status (compared, only_in_base, only_in_model,
shape_mismatch), rel_fro = ‖ΔW‖_F/‖W_base‖_F, rel_spec = ‖ΔW‖₂/‖W_base‖₂, mean_abs_delta
(BitDelta's scale), changed_frac (share of elements that changed at all), delta_rank (σ >
rank-rtol·σmax(ΔW); 0 for ΔW = 0), delta_svd_{50,90,99}_percent_rank, delta_stable_rank,
lora_fit_err_R per --lora-ranks (‖ΔW − ΔW_R‖_F/‖ΔW‖_F: what a rank-R LoRA loses, from the
spectrum), alpha, stable rank and spectral norm of base and model, then with --top-k K
(default 10) subspace_overlap_left_K and subspace_overlap_right_K (‖U_bᵀU_m‖²_F/K over the
top-K left, and right, singular vectors: 1 = same dominant directions), intruders_K (how
many of the model's top-K left singular vectors have |cos| < --intruder-threshold, default
0.5, with every base left singular vector) and vectors_angle_bound (Wedin's a-posteriori
bound on the sine of the angle between the vectors used and the exact ones; empty where
σ_K = σ_K+1 and the top-K subspace is not unique), then delta_spectral_norm, numel,
changed, nan_inf_count, skipped, seconds, created_at. A pair with NaN/Inf keeps its
element-wise columns, with a warning. Tensors only one side has, and shape mismatches, get
rows with their status and are listed in the summary.

--adapter DIR reads a PEFT LoRA adapter (r, lora_alpha, rank_pattern/alpha_pattern,
use_rslora, fan_in_fan_out, lora_embedding_A/B; DoRA is refused): ΔW = scale·B·A, its
singular values exact from the r×r core of two thin QRs (ΔW is formed only, row by row,
for the element-wise columns); the model side is the base with the update added as rows
are read (never stored). Adapter tensors that map to no base weight are listed in the
summary (adapter_unmapped).

Progress is saved to FILE.partial.jsonl as each matrix finishes; --resume continues.";

/// What fine-tuning changed: the spectra of ΔW between two checkpoints.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-diff",
    version,
    about = "What fine-tuning changed: exact spectra of ΔW between two checkpoints, matrix by matrix",
    after_help = EXAMPLES
)]
pub struct Args {
    /// The base checkpoint: a model directory, .safetensors or .gguf file.
    #[arg(long, value_name = "PATH")]
    pub base: PathBuf,

    /// The fine-tuned checkpoint: a model directory, .safetensors or .gguf file.
    #[arg(
        long,
        visible_alias = "model-path",
        value_name = "PATH",
        required_unless_present = "adapter",
        conflicts_with = "adapter"
    )]
    pub model: Option<PathBuf>,

    /// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) instead
    /// of --model: ΔW = scale·B·A per module, its spectrum exact from the r×r core.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,

    /// Written to the model_id column, e.g. org/my-fine-tune.
    #[arg(long = "model-id", visible_alias = "model_id", value_name = "ID")]
    pub model_id: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Compare only tensors whose name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<glob::Pattern>,

    /// Leave out tensors whose name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<glob::Pattern>,

    /// The ranks R of the lora_fit_err_R columns.
    #[arg(
        long = "lora-ranks",
        visible_alias = "lora_ranks",
        value_name = "R,R,...",
        value_delimiter = ',',
        default_value = "8,16,64,128"
    )]
    pub lora_ranks: Vec<usize>,

    /// Compare the top K singular vectors of base and model (subspace_overlap_left_K,
    /// subspace_overlap_right_K, intruders_K); 0 leaves them out, and lets the base and
    /// model spectra run on the GPU (the vectors are computed on the CPU).
    #[arg(
        long = "top-k",
        visible_alias = "top_k",
        value_name = "K",
        default_value_t = 10
    )]
    pub top_k: usize,

    /// A model singular vector is an intruder when its largest |cos| with every base
    /// singular vector is below this.
    #[arg(
        long = "intruder-threshold",
        value_name = "COS",
        default_value_t = 0.5,
        value_parser = parse_threshold
    )]
    pub intruder_threshold: f64,

    /// Only ΔW's columns: no spectra of the base and the model (rel_spec, alpha, stable
    /// rank, spectral norm of both sides and the top-k columns stay empty). With --adapter
    /// the spectral work is then O((out + in)·r²) per module.
    #[arg(long = "delta-only")]
    pub delta_only: bool,

    /// Compare the stored tensors as stored (quantized codes and scales apart).
    #[arg(long)]
    pub raw: bool,

    #[command(flatten)]
    pub spectrum: SpectrumArgs,

    /// Also write the report of what changed (as tpa-report does with the result) into DIR:
    /// heatmaps of rel_fro and ΔW's energy rank, LoRA fit error curves, intruders per layer.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    /// Continue an interrupted run from FILE.partial.jsonl.
    #[arg(long)]
    pub resume: bool,

    /// Compute only shard I of N of the matrices, or `auto` (as tpa-transformer --shard);
    /// rows go to FILE.parts/, then `tpa-merge FILE`.
    #[arg(long, value_name = "I/N|auto", value_parser = crate::transformer::parse_shard)]
    pub shard: Option<tpa_core::analyses::shard::RunShard>,

    /// No progress bar and no console summary; errors and warnings still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_threshold(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("{text:?} is not a cosine between 0 and 1")),
    }
}

/// Entry point of the `tpa-diff` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::exit_code(run(&args))
}

/// One comparison to compute.
enum Work<'m> {
    /// The same matrix of both checkpoints.
    Pair(MatrixView<'m>, MatrixView<'m>),
    /// A base matrix and an adapter's update of it (with the factors' dtype).
    Lora(MatrixView<'m>, LoraUpdate, String),
    /// A safetensors and a GGUF checkpoint's matrix (base, model), under
    /// the Hugging Face name and the GGUF one.
    Across(MatrixView<'m>, MatrixView<'m>, String, String),
}

impl Work<'_> {
    fn base(&self) -> &MatrixView<'_> {
        match self {
            Work::Pair(b, _) | Work::Lora(b, ..) | Work::Across(b, ..) => b,
        }
    }

    /// The name of the row it makes.
    fn name(&self) -> String {
        match self {
            Work::Across(_, _, hf, _) => hf.clone(),
            _ => self.base().name(),
        }
    }
}

/// The matched matrices of the two checkpoints, and the rows of what did
/// not match.
struct Matching<'m> {
    pairs: Vec<Work<'m>>,
    listed: Vec<DiffRecord>,
    /// Every row's matrix name, in the model's storage order (the base's
    /// own tensors after).
    names: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if args.shard.is_some() && args.report.is_some() {
        bail!(
            "with --shard, run tpa-report on the merged result: the report needs every shard's rows"
        );
    }
    let format = common::output_format(&args.output)?;
    let reading = if args.raw {
        Reading::Raw
    } else {
        Reading::Dequantized
    };
    let base = Model::open_with(&args.base, reading).context("cannot open the base")?;
    let (model, adapter) = match (&args.model, &args.adapter) {
        (Some(path), _) => (
            Some(Model::open_with(path, reading).context("cannot open the model")?),
            None,
        ),
        (None, Some(dir)) => (
            None,
            Some(Adapter::open(dir).context("cannot open the adapter")?),
        ),
        (None, None) => bail!("give --model PATH or --adapter DIR"),
    };
    let engine = args.spectrum.engine(args.quiet)?;
    let (matching, unmapped) = match (&model, &adapter) {
        (Some(model), _) => (match_tensors(args, &base, model)?, Vec::new()),
        (_, Some(adapter)) => match_adapter(args, &base, adapter)?,
        _ => unreachable!("one of --model and --adapter is given"),
    };
    if matching.pairs.is_empty() {
        bail!(
            "{} and {} have no matrix in common (same name and shape): different architectures?{}",
            args.base.display(),
            other_path(args).display(),
            if args.only.is_empty() && args.skip.is_empty() {
                ""
            } else {
                " (or --only/--skip left none)"
            }
        );
    }
    let labels = Labels {
        base_path: args.base.display().to_string(),
        model_path: other_path(args).display().to_string(),
        model_id: args.model_id.clone().unwrap_or_default(),
        adapter: args.adapter.as_ref().map(|a| a.display().to_string()),
        unmapped,
        rank_rtol: args.spectrum.rank_rtol,
        lora_ranks: args.lora_ranks.clone(),
        top_k: if args.delta_only { 0 } else { args.top_k },
        intruder_threshold: args.intruder_threshold,
        delta_only: args.delta_only,
    };
    let options = DiffOptions {
        lora_ranks: args.lora_ranks.clone(),
        top_k: labels.top_k,
        intruder_threshold: args.intruder_threshold,
        delta_only: args.delta_only,
    };
    let mut header = serde_json::json!({
        "tpa": "tpa-diff partial results",
        "base_path": labels.base_path,
        "model_path": labels.model_path,
        "rank_rtol": args.spectrum.rank_rtol,
        "lora_ranks": args.lora_ranks,
        "top_k": labels.top_k,
        "intruder_threshold": args.intruder_threshold,
        "delta_only": args.delta_only,
        "raw": args.raw,
    });
    let out = &args.output.out;
    let all: Vec<&Work<'_>> = matching.pairs.iter().collect();
    let (journal_path, mine) = match args.shard {
        None => (common::journal_path(out), all),
        Some(shard) => {
            header["shard"] = shard.to_string().into();
            let names: Vec<String> = all.iter().map(|w| w.base().name()).collect();
            let costs: Vec<u64> = all
                .iter()
                .map(|w| 3 * matrices::work_units(w.base()))
                .collect();
            let (items, mine) = runs::share(&all, &names, &costs, shard);
            let mut fields = serde_json::json!({
                "options": {"rank_rtol": args.spectrum.rank_rtol, "lora_ranks": args.lora_ranks,
                    "top_k": labels.top_k, "intruder_threshold": args.intruder_threshold,
                    "delta_only": args.delta_only, "raw": args.raw},
                "labels": labels,
                // The rows without numbers, and every row's place, for tpa-merge.
                "listed": matching.listed,
                "names": matching.names,
            });
            fields["items"] = items["items"].clone();
            if !runs::plan_shard(out, "tpa-diff", shard, fields)? {
                return Ok(());
            }
            (tpa_core::writers::Parts::of(out).journal_path(shard), mine)
        }
    };
    let mut rows = runs::Rows::<DiffRecord>::open(&journal_path, &header, args.resume)?;
    let done: HashSet<String> = rows.records.iter().map(DiffRecord::matrix_name).collect();
    let todo: Vec<&Work<'_>> = mine
        .into_iter()
        .filter(|w| !done.contains(&w.name()))
        .collect();
    if !done.is_empty() && !args.quiet {
        eprintln!(
            "resuming: {} of {} matrices already compared",
            done.len(),
            done.len() + todo.len()
        );
    }
    // The top vectors hold the base's n × n eigenvectors beside its Gram matrix.
    let held = if labels.top_k > 0 { 3 } else { 2 };
    let spectra = if args.delta_only { 1 } else { 3 };
    let result = matrices::run_items(
        &todo,
        |w| spectra * matrices::work_units(w.base()),
        |w| held * matrices::memory(w.base()),
        args.spectrum.limits(),
        args.quiet,
        |w| {
            Ok(match w {
                Work::Pair(b, m) => DiffRecord::compute(b, m, &engine, &options)?,
                Work::Across(b, m, hf, gguf) => {
                    DiffRecord::compute(b, m, &engine, &options)?.named_across(hf, gguf.clone())
                }
                Work::Lora(b, update, dtype) => {
                    DiffRecord::compute_lora(b, update, dtype.clone(), &engine, &options)?
                }
            })
        },
        |record| {
            if let Some(reason) = &record.skipped {
                eprintln!(
                    "warning: {}: no spectral comparison ({reason}); the element-wise columns are still reported",
                    record.matrix_name()
                );
            }
            rows.push(record)
        },
    );
    result.with_context(|| rows.stopped("matrices"))?;
    if let Some(shard) = args.shard {
        return runs::finish_shard(out, shard, rows.records.len(), args.quiet);
    }
    let mut records = std::mem::take(&mut rows.records);
    records.extend(matching.listed);
    let summary = write_diff(out, format, &labels, records, &matching.names, args.quiet)?;
    drop(rows);
    runs::remove_all(&[journal_path.as_path()])?;
    match &args.report {
        Some(dir) => crate::report::diff_report_of_run(out, summary, dir, args.quiet),
        None => Ok(()),
    }
}

/// What the rows and the summary say of the run besides the comparisons.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Labels {
    pub base_path: String,
    /// --model, or the adapter folder.
    pub model_path: String,
    pub model_id: String,
    pub adapter: Option<String>,
    /// Adapter tensors that map to no base weight.
    pub unmapped: Vec<String>,
    pub rank_rtol: f64,
    pub lora_ranks: Vec<usize>,
    #[serde(default)]
    pub top_k: usize,
    #[serde(default)]
    pub intruder_threshold: f64,
    #[serde(default)]
    pub delta_only: bool,
}

/// Writes the output of a whole run (or of merged shards): `records` put in
/// the order of `names` (storage order) by layer, the summary, and the
/// console list. Returns the summary.
pub(crate) fn write_diff(
    out: &std::path::Path,
    format: tpa_core::writers::Format,
    labels: &Labels,
    mut records: Vec<DiffRecord>,
    names: &[String],
    quiet: bool,
) -> Result<serde_json::Value> {
    let position: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    records.sort_by_cached_key(|r| position.get(r.matrix_name().as_str()).copied());
    sort_by_layer(&mut records, |r| {
        (
            r.placement.layer_index,
            r.stack_index.or(r.placement.expert_index),
        )
    });
    let run = RunInfo::now(
        labels.model_path.clone(),
        labels.model_id.clone(),
        String::new(),
    );
    let table: Vec<DiffRow<'_>> = records
        .iter()
        .map(|record| DiffRow {
            run: &run,
            base_path: &labels.base_path,
            lora_ranks: &labels.lora_ranks,
            top_k: labels.top_k,
            record,
        })
        .collect();
    let summary = summary(labels, &run, &records);
    write_table(out, format, &table, "matrices", Some(&summary))?;
    if !quiet {
        print!("{}", console(&records));
        println!("Wrote {} rows to {}", table.len(), out.display());
    }
    Ok(summary)
}

/// Pairs the model's matrices with the base's by tensor name.
fn match_tensors<'m>(args: &Args, base: &'m Model, model: &'m Model) -> Result<Matching<'m>> {
    if base.gguf().is_some() != model.gguf().is_some() {
        return match_across(args, base, model);
    }
    let selected = |t: &TensorView<'_>| {
        (args.only.is_empty() || args.only.iter().any(|p| p.matches(t.name())))
            && !args.skip.iter().any(|p| p.matches(t.name()))
    };
    let base_tensors: HashMap<&str, TensorView<'m>> = base
        .tensors()
        .filter(selected)
        .map(|t| (t.name(), t))
        .collect();
    let mut matching = Matching {
        pairs: Vec::new(),
        listed: Vec::new(),
        names: Vec::new(),
    };
    let mut seen = HashSet::new();
    for t in model.tensors().filter(selected) {
        seen.insert(t.name());
        let Some(b) = base_tensors.get(t.name()) else {
            let row = DiffRecord::listed(&MatrixView::whole(t), DiffStatus::OnlyInModel);
            matching.names.push(row.matrix_name());
            matching.listed.push(row);
            continue;
        };
        if b.shape() != t.shape() {
            let mut row = DiffRecord::listed(&MatrixView::whole(t), DiffStatus::ShapeMismatch);
            row.base_dtype = b.code_type();
            row.skipped = Some(format!(
                "shape {:?} in the base, {:?} in the model",
                b.shape(),
                t.shape()
            ));
            matching.names.push(row.matrix_name());
            matching.listed.push(row);
            continue;
        }
        b.check_decodable()?;
        t.check_decodable()?;
        for (bm, mm) in MatrixView::split(*b).into_iter().zip(MatrixView::split(t)) {
            matching.names.push(mm.name());
            matching.pairs.push(Work::Pair(bm, mm));
        }
    }
    for b in base.tensors().filter(selected) {
        if !seen.contains(b.name()) {
            let row = DiffRecord::listed(&MatrixView::whole(b), DiffStatus::OnlyInBase);
            matching.names.push(row.matrix_name());
            matching.listed.push(row);
        }
    }
    Ok(matching)
}

/// A safetensors and a GGUF checkpoint: matrices paired by Hugging Face
/// name, the GGUF side read in Hugging Face's row order (so that ΔW is the
/// quantization error, not a permutation).
fn match_across<'m>(args: &Args, base: &'m Model, model: &'m Model) -> Result<Matching<'m>> {
    let gguf_is_model = model.gguf().is_some();
    let (gguf, hf) = if gguf_is_model {
        (model, base)
    } else {
        (base, model)
    };
    let architecture = gguf.gguf().and_then(|m| m.architecture()).unwrap_or("none");
    let mapped = gguf.hf_matrices()?.with_context(|| {
        format!(
            "{}: tpa does not know the Hugging Face names of GGUF architecture {architecture}, \
             so it cannot pair its tensors with {}",
            gguf.path().display(),
            hf.path().display()
        )
    })?;
    let selected = |name: &str| {
        (args.only.is_empty() || args.only.iter().any(|p| p.matches(name)))
            && !args.skip.iter().any(|p| p.matches(name))
    };
    let hf_side: HashMap<String, MatrixView<'m>> = hf
        .tensors()
        .flat_map(MatrixView::split)
        .map(|m| (m.name(), m))
        .filter(|(name, _)| selected(name))
        .collect();
    let mut matching = Matching {
        pairs: Vec::new(),
        listed: Vec::new(),
        names: Vec::new(),
    };
    let (only_gguf, only_hf) = if gguf_is_model {
        (DiffStatus::OnlyInModel, DiffStatus::OnlyInBase)
    } else {
        (DiffStatus::OnlyInBase, DiffStatus::OnlyInModel)
    };
    let mut seen = HashSet::new();
    let (mapped, unnamed): (Vec<_>, Vec<_>) =
        mapped.into_iter().partition(|(name, _)| !name.is_empty());
    for (name, g) in mapped.into_iter().filter(|(name, _)| selected(name)) {
        seen.insert(name.clone());
        let Some(h) = hf_side.get(&name) else {
            let row = DiffRecord::listed(&g, only_gguf).named_across(&name, g.name());
            matching.names.push(name);
            matching.listed.push(row);
            continue;
        };
        if h.shape() != g.shape() {
            let mut row =
                DiffRecord::listed(&g, DiffStatus::ShapeMismatch).named_across(&name, g.name());
            row.skipped = Some(format!(
                "shape {:?} in {}, {:?} in {}",
                h.shape(),
                hf.path().display(),
                g.shape(),
                gguf.path().display()
            ));
            matching.names.push(name);
            matching.listed.push(row);
            continue;
        }
        let (b, m) = if gguf_is_model { (*h, g) } else { (g, *h) };
        b.tensor().check_decodable()?;
        m.tensor().check_decodable()?;
        matching.names.push(name.clone());
        matching.pairs.push(Work::Across(b, m, name, g.name()));
    }
    // Tensors llama.cpp derived or fused (DeepSeek's attn_k_b/attn_v_b, a
    // fused gate_up, rope_freqs) have no one HF tensor to compare with:
    // listed, never dropped.
    for (_, g) in unnamed.into_iter().filter(|(_, g)| selected(&g.name())) {
        let mut row = DiffRecord::listed(&g, only_gguf);
        row.gguf_name = g.name();
        row.skipped = Some(format!(
            "no one Hugging Face tensor corresponds to it in {architecture}, so it is not compared"
        ));
        matching.names.push(row.matrix_name());
        matching.listed.push(row);
    }
    let mut rest: Vec<&MatrixView<'m>> = hf_side
        .iter()
        .filter(|(name, _)| !seen.contains(*name))
        .map(|(_, m)| m)
        .collect();
    rest.sort_by_key(|m| m.name());
    for h in rest {
        let row = DiffRecord::listed(h, only_hf);
        matching.names.push(row.matrix_name());
        matching.listed.push(row);
    }
    Ok(matching)
}

/// The path the rows name as the model: --model, or --adapter.
fn other_path(args: &Args) -> &std::path::Path {
    args.model
        .as_deref()
        .or(args.adapter.as_deref())
        .unwrap_or(std::path::Path::new(""))
}

/// Pairs each adapter module with its base weight. Returns the matching
/// and the adapter tensors that map to nothing (modules the base lacks,
/// tensors that are not LoRA factors).
fn match_adapter<'m>(
    args: &Args,
    base: &'m Model,
    adapter: &Adapter,
) -> Result<(Matching<'m>, Vec<String>)> {
    let mut matching = Matching {
        pairs: Vec::new(),
        listed: Vec::new(),
        names: Vec::new(),
    };
    let mut unmapped = adapter.unmapped.clone();
    let selected = |name: &str| {
        (args.only.is_empty() || args.only.iter().any(|p| p.matches(name)))
            && !args.skip.iter().any(|p| p.matches(name))
    };
    let factor = |name: &str| -> Result<(Vec<f64>, Vec<usize>, String)> {
        let t = adapter.model.tensor(name)?;
        let mut values = vec![0.0; t.numel()];
        t.decode_into(0, &mut values)?;
        Ok((values, t.shape().to_vec(), t.code_type()))
    };
    let by_target: HashMap<&str, &tpa_core::model::LoraModule> = adapter
        .modules
        .iter()
        .map(|m| (m.target.as_str(), m))
        .collect();
    // One pass over the base's names, not a search per module.
    let in_base: HashSet<&str> = base.tensors().map(|t| t.name()).collect();
    for m in &adapter.modules {
        if !in_base.contains(m.target.as_str()) {
            unmapped.push(format!("{} (no {} in the base)", m.module, m.target));
        }
    }
    // In the base's storage order.
    for t in base.tensors().filter(|t| selected(t.name())) {
        let Some(m) = by_target.get(t.name()) else {
            continue;
        };
        let ((a, a_shape, dtype), (b, b_shape, _)) = (factor(&m.a)?, factor(&m.b)?);
        let update = LoraUpdate {
            b,
            a,
            out: b_shape[0],
            rank: m.rank,
            inp: a_shape[1],
            scale: m.scale,
            transposed: m.transposed,
        };
        t.check_decodable()?;
        let view = MatrixView::whole(t);
        matching.names.push(view.name());
        if view.shape() != update.shape() {
            let mut row = DiffRecord::listed(&view, DiffStatus::ShapeMismatch);
            row.skipped = Some(format!(
                "the base's {:?} and the adapter's ΔW {:?} (B {:?} · A {:?})",
                view.shape(),
                update.shape(),
                b_shape,
                a_shape
            ));
            matching.listed.push(row);
            continue;
        }
        matching.pairs.push(Work::Lora(view, update, dtype));
    }
    Ok((matching, unmapped))
}

/// The JSON summary: what did not match, and the changes per block type
/// and per layer (mean and largest rel_fro, median ΔW 90%-energy rank ratio).
fn summary(labels: &Labels, run: &RunInfo, records: &[DiffRecord]) -> serde_json::Value {
    let named = |status: DiffStatus| -> Vec<String> {
        records
            .iter()
            .filter(|r| r.status == status)
            .map(DiffRecord::matrix_name)
            .collect()
    };
    let compared: Vec<&DiffRecord> = records
        .iter()
        .filter(|r| r.status == DiffStatus::Compared)
        .collect();
    let by = |key: &dyn Fn(&DiffRecord) -> String| {
        let mut groups: BTreeMap<String, Vec<&DiffRecord>> = BTreeMap::new();
        for r in &compared {
            groups.entry(key(r)).or_default().push(r);
        }
        groups
            .into_iter()
            .map(|(k, rs)| (k, aggregate(&rs)))
            .collect::<serde_json::Map<_, _>>()
    };
    let mut summary = serde_json::json!({
        "base_path": labels.base_path,
        "model_path": run.model_path,
        "adapter": labels.adapter,
        "model_id": run.model_id,
        "created_at": run.created_at,
        "rank_rtol": labels.rank_rtol,
        "lora_ranks": labels.lora_ranks,
        "top_k": labels.top_k,
        "intruder_threshold": labels.intruder_threshold,
        "delta_only": labels.delta_only,
        "matrices_compared": compared.len(),
        "only_in_base": named(DiffStatus::OnlyInBase),
        "only_in_model": named(DiffStatus::OnlyInModel),
        "shape_mismatch": named(DiffStatus::ShapeMismatch),
        "by_block_type": by(&|r| r.placement.block_type.as_str().to_owned()),
        "by_layer": by(&|r| r.placement.layer_index.map_or("none".into(), |l| l.to_string())),
        "tpa_version": env!("CARGO_PKG_VERSION"),
    });
    if labels.adapter.is_some() {
        summary["adapter_unmapped"] = labels.unmapped.clone().into();
    }
    summary
}

fn aggregate(records: &[&DiffRecord]) -> serde_json::Value {
    let rel: Vec<(f64, String)> = records
        .iter()
        .filter_map(|r| Some((r.stats.as_ref()?.rel_fro()?, r.matrix_name())))
        .collect();
    let largest = rel.iter().max_by(|a, b| a.0.total_cmp(&b.0));
    let mut ratios: Vec<f64> = records.iter().filter_map(|r| r.delta_90_ratio()).collect();
    ratios.sort_by(f64::total_cmp);
    let median = match ratios.len() {
        0 => None,
        n if n % 2 == 1 => Some(ratios[n / 2]),
        n => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0),
    };
    let tops: Vec<_> = records
        .iter()
        .filter_map(|r| r.spectra.as_ref()?.subspace)
        .collect();
    let mean = |values: &[f64]| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let overlaps: Vec<f64> = tops.iter().map(|t| t.overlap_left).collect();
    serde_json::json!({
        "matrices": records.len(),
        "mean_rel_fro": mean(&rel.iter().map(|r| r.0).collect::<Vec<_>>()),
        "max_rel_fro": largest.map(|r| r.0),
        "max_rel_fro_matrix": largest.map(|r| r.1.clone()),
        "median_delta_svd_90_percent_rank_ratio": median,
        "mean_subspace_overlap_left": mean(&overlaps),
        "intruders": (!tops.is_empty()).then(|| tops.iter().map(|t| t.intruders).sum::<usize>()),
    })
}

/// The ten most changed matrices, for people.
fn console(records: &[DiffRecord]) -> String {
    let mut changed: Vec<(&DiffRecord, f64)> = records
        .iter()
        .filter_map(|r| Some((r, r.stats.as_ref()?.rel_fro()?)))
        .collect();
    changed.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out =
        String::from("Most changed matrices (rel_fro = ‖ΔW‖_F/‖W‖_F, ΔW rank, 90% energy rank):\n");
    for (r, rel) in changed.iter().take(10) {
        let (rank, e90) = r
            .spectra
            .as_ref()
            .map_or((String::new(), String::new()), |s| {
                (
                    s.delta_rank.to_string(),
                    s.delta_energy_ranks[1].to_string(),
                )
            });
        out.push_str(&format!(
            "  {:<60} {rel:>10.4}  rank {rank:>5}  90% {e90:>5}\n",
            r.matrix_name()
        ));
    }
    let unchanged = changed.iter().filter(|(_, rel)| *rel == 0.0).count();
    out.push_str(&format!(
        "{unchanged} of {} compared matrices unchanged\n",
        changed.len()
    ));
    out
}
