//! `tpa-embedding`: cluster structure of the token-embedding matrix.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use tpa_core::analyses::embedding::kmeans::KMeansAccelerator;
use tpa_core::analyses::embedding::scores::format_p_value;
use tpa_core::analyses::embedding::sweep::{
    Criterion, KScore, Placement, SweepOptions, first_pass, sweep,
};
use tpa_core::analyses::embedding::tokens::TokenNames;
use tpa_core::analyses::embedding::{Standardized, find_embedding, load_f32};
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::records::embedding::{ClusteringReport, CurveRow, RunReport, cluster_reports};
use tpa_core::records::{AnalyzeRecord, TransformerRecord, rows};
use tpa_core::tensors::MatrixView;
use tpa_core::writers::{Format, prepare_output, write_atomically, write_table};
use tpa_report::charts::embedding::sweep_curve;

use crate::common::{self, Gpu, GpuProbe, ModelArgs, StatsArgs};
use crate::progress;

const EXAMPLES: &str = "\
Examples:
  tpa-embedding --model-path data/models/all-MiniLM-L6-v2 --output-dir data/outputs/minilm-clusters
  tpa-embedding --model-path data/models/Qwen/Qwen3-4B --output-dir out/ --max-k 40 --sweep-sample 30000
  tpa-embedding --model_path data/models/bert --out data/outputs/embedding.csv --max_k 20   # original flags

Writes to the output directory: clustering_results.json (chosen k, clusters with sizes,
distances, silhouettes and their nearest tokens, the whole F curve), embedding_clusters_summary.csv,
anova_curve.png and anova_curve.svg; with --out also the one-row statistics CSV of the
embedding tensor. On unstructured data the highest F is often the smallest k: look at the
whole curve and the silhouettes (--criterion silhouette|elbow choose differently).";

/// k-means cluster structure of a model's token embeddings.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-embedding",
    version,
    about = "Cluster structure of a model's token-embedding matrix: k-means over k, ANOVA choice of k, silhouettes, nearest tokens",
    after_help = EXAMPLES
)]
#[command(group = clap::ArgGroup::new("destination").required(true).multiple(true).args(["output_dir", "out"]))]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Directory for clustering_results.json, embedding_clusters_summary.csv and the plots
    /// [default: the directory of --out].
    #[arg(long = "output-dir", visible_alias = "output_dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Also write the embedding tensor's one-row statistics CSV here (the original's --out).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Largest k tried: every k up to 50, above that a coarse pass (step max(10, max_k/20))
    /// and a fine pass around the best.
    #[arg(
        long = "max-k",
        visible_alias = "max_k",
        value_name = "N",
        default_value_t = 100
    )]
    pub max_k: usize,

    /// Seed of every random choice (k-means++, samples).
    #[arg(
        long = "random-state",
        visible_alias = "random_state",
        value_name = "S",
        default_value_t = 42
    )]
    pub random_state: u64,

    /// k-means runs per k; the lowest inertia is kept.
    #[arg(
        long = "n-init",
        visible_alias = "n_init",
        value_name = "N",
        default_value_t = 10
    )]
    pub n_init: usize,

    /// Tokens shown per cluster: the members nearest its centroid.
    #[arg(
        long = "n-representatives",
        visible_alias = "n_representatives",
        value_name = "N",
        default_value_t = 10
    )]
    pub n_representatives: usize,

    /// Do not decode representative tokens.
    #[arg(long = "skip-representatives", visible_alias = "skip_representatives")]
    pub skip_representatives: bool,

    /// How k is chosen: anova (highest F, the original's), silhouette (highest mean
    /// silhouette) or elbow (of the inertia curve).
    #[arg(long, value_enum, default_value = "anova")]
    pub criterion: CriterionArg,

    /// The embedding tensor [default: found by name, as the original found it].
    #[arg(long, value_name = "NAME")]
    pub tensor: Option<String>,

    /// Sweep k on this many seeded rows, then refit the chosen k on all rows. Outputs say
    /// the sweep was sampled. For large vocabularies, where an exact sweep takes hours.
    #[arg(
        long = "sweep-sample",
        visible_alias = "sweep_sample",
        value_name = "N"
    )]
    pub sweep_sample: Option<usize>,

    /// Rows in the seeded sample the silhouettes are computed on.
    #[arg(long = "silhouette-sample", value_name = "N", default_value_t = 10_000)]
    pub silhouette_sample: usize,

    /// Do not look for a GPU: k-means runs on the CPU (Elkan's iterations). With a GPU,
    /// every distance is an SGEMM product there, for large vocabularies.
    #[arg(long = "no-gpu", visible_aliases = ["no_gpu", "use_cpu", "use-cpu"])]
    pub no_gpu: bool,

    /// Fail instead of falling back to the CPU when no GPU is usable (also TPA_REQUIRE_GPU=1).
    #[arg(long, conflicts_with = "no_gpu")]
    pub gpu: bool,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Worker threads [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Continue an interrupted sweep: the k values it finished (kept in
    /// OUTPUT_DIR/.tpa-embedding.partial.jsonl) are not fitted again. Fits are
    /// deterministic, so the result equals an uninterrupted run's.
    #[arg(long)]
    pub resume: bool,

    /// A line per k as the sweep goes.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// No progress bar and no console report.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The sweep's progress, in the output directory, until the outputs are written.
const JOURNAL: &str = ".tpa-embedding.partial.jsonl";

/// `--criterion` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CriterionArg {
    Anova,
    Silhouette,
    Elbow,
}

impl From<CriterionArg> for Criterion {
    fn from(c: CriterionArg) -> Criterion {
        match c {
            CriterionArg::Anova => Criterion::Anova,
            CriterionArg::Silhouette => Criterion::Silhouette,
            CriterionArg::Elbow => Criterion::Elbow,
        }
    }
}

/// Entry point of the `tpa-embedding` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::exit_code(run(&args))
}

/// Runs the analysis described by `args`.
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let dir = output_dir(args)?;
    if let Some(out) = &args.out {
        prepare_output(out)?;
    }
    anyhow::ensure!(
        args.max_k >= 2,
        "--max-k must be at least 2 (k = 1 has no F-ratio)"
    );
    crate::set_jobs(args.jobs)?;
    let opened = common::open_model(&args.model)?;
    let tensor = find_embedding(&opened.model, args.tensor.as_deref())
        .context("cannot find the embedding")?;
    tensor.check_decodable()?;
    let (raw, rows, dim) = load_f32(&tensor)?;
    if !args.quiet {
        eprintln!(
            "embedding: {} [{rows} × {dim}, {}{}]",
            tensor.name(),
            tensor.code_type(),
            match tensor.quantization() {
                Some(q) => format!(", {} dequantized", q.scheme()),
                None => String::new(),
            }
        );
    }
    let z = Standardized::new(&raw, dim);
    let x = z.to_f32();

    let options = SweepOptions {
        max_k: args.max_k.min(rows),
        n_init: args.n_init.max(1),
        seed: args.random_state,
        criterion: args.criterion.into(),
        silhouette_rows: args.silhouette_sample,
        sweep_rows: args.sweep_sample,
    };
    let gpu = GpuProbe {
        no_gpu: args.no_gpu,
        require: args.gpu,
        verbose: args.verbose,
        quiet: args.quiet,
        role: "k-means distances on the GPU",
    }
    .run()?;
    let accelerator: Option<&dyn KMeansAccelerator> = match &gpu {
        Gpu::None => None,
        #[cfg(feature = "cuda")]
        Gpu::Cuda(backend) => Some(backend),
    };
    let header = serde_json::json!({
        "tpa": "tpa-embedding partial sweep",
        "model_path": opened.run.model_path,
        "tensor": tensor.name(),
        "shape": [rows, dim],
        "options": options,
        "device": accelerator.map_or("cpu".to_owned(), |a| a.describe()),
    });
    let journal_path = dir.join(JOURNAL);
    let (mut journal, known) = common::open_journal::<KScore>(&journal_path, &header, args.resume)?;
    if !known.is_empty() && !args.quiet {
        eprintln!("resuming: {} k values already fitted", known.len());
    }
    let mut journal_error = None;

    let first = first_pass(options.max_k);
    let bar = progress::work_bar(
        first.iter().map(|&k| k as u64).sum(),
        first.len() as u64,
        args.quiet,
    );
    bar.set_message("k sweep".to_owned());
    let mut in_second_pass = false;
    let notice = |message: &str| bar.suspend(|| eprintln!("warning: {message}"));
    let placement = Placement {
        accelerator,
        notice: &notice,
    };
    let result = sweep(
        &z,
        &x,
        &options,
        &placement,
        &known,
        &mut |score, remaining| {
            if journal_error.is_none() && !known.contains(score) {
                journal_error = journal.append(score).err();
            }
            if !first.contains(&score.k) && !in_second_pass {
                in_second_pass = true;
                bar.inc_length((score.k as u64) * (remaining as u64 + 1));
            }
            bar.inc(score.k as u64);
            bar.set_message(format!("k = {}", score.k));
            if args.verbose {
                bar.suspend(|| eprintln!("{}", curve_line(score)));
            }
        },
    )
    .context("no k could be chosen: the embedding has too few distinct rows")?;
    bar.finish_and_clear();
    drop(journal);
    if let Some(error) = journal_error {
        return Err(error).context("the sweep could not record its progress for --resume");
    }

    let (names, warning) = if args.skip_representatives {
        (TokenNames::ids_only(), None)
    } else {
        TokenNames::of_model(&opened.model)
    };
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let representatives = if args.skip_representatives {
        0
    } else {
        args.n_representatives
    };
    let clusters = cluster_reports(&result, &names, representatives);
    let report = ClusteringReport {
        optimal_k: result.chosen_k,
        silhouette_score: result.silhouettes.overall,
        gpu_accelerated: result.accelerated,
        total_tokens: rows,
        embedding_dimension: dim,
        clusters,
        criterion: options.criterion,
        tensor: tensor.name().to_owned(),
        curve: result.curve.iter().map(CurveRow::new).collect(),
        run: RunReport {
            model_path: opened.run.model_path.clone(),
            model_id: opened.run.model_id.clone(),
            revision: opened.run.revision.clone(),
            created_at: opened.run.created_at.clone(),
            seed: options.seed,
            n_init: options.n_init,
            max_k: options.max_k,
            engine: match (result.accelerated, accelerator) {
                (true, Some(device)) => format!(
                    "tpa k-means: greedy k-means++, Lloyd with every distance an f32 SGEMM product, {}",
                    device.describe()
                ),
                _ => "tpa k-means: greedy k-means++, Lloyd with Elkan's bounds, f32 distances, CPU"
                    .into(),
            },
            sweep_sampled: result.sampled_rows.is_some(),
            sweep_rows: result.sampled_rows.unwrap_or(rows),
            silhouette_sample_rows: args.silhouette_sample.min(rows),
            tokenizer: names.has_tokenizer(),
            seconds: started.elapsed().as_secs_f64(),
            tpa_version: env!("CARGO_PKG_VERSION").into(),
        },
    };
    write_outputs(args, &dir, &report, &opened, &tensor)?;
    std::fs::remove_file(&journal_path)
        .with_context(|| format!("removing {}", journal_path.display()))?;
    if !args.quiet {
        print!("{}", console_report(&report));
        println!(
            "Wrote clustering_results.json, embedding_clusters_summary.csv, anova_curve.png/.svg to {}",
            dir.display()
        );
    }
    Ok(())
}

fn output_dir(args: &Args) -> Result<PathBuf> {
    let dir = match (&args.output_dir, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned(),
        (None, None) => anyhow::bail!("give --output-dir DIR or --out FILE.csv"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn write_outputs(
    args: &Args,
    dir: &Path,
    report: &ClusteringReport,
    opened: &common::Opened,
    tensor: &tpa_core::tensors::TensorView<'_>,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    write_atomically(&dir.join("clustering_results.json"), |out| {
        out.write_all(&json)
    })?;
    write_table(
        &dir.join("embedding_clusters_summary.csv"),
        Format::Csv,
        &report.clusters,
        "clusters",
        None,
    )?;
    let title = format!(
        "{}: F-ratio over k{}",
        report.tensor,
        if report.run.sweep_sampled {
            " (sweep on a sample)"
        } else {
            ""
        }
    );
    let criterion = serde_json::to_value(report.criterion)?;
    let scene = sweep_curve(
        &report.curve,
        report.optimal_k,
        criterion.as_str().unwrap_or("anova"),
        &title,
    );
    tpa_report::write_chart(
        &scene,
        &dir.join("anova_curve.svg"),
        Some(&dir.join("anova_curve.png")),
    )?;
    if let Some(out) = &args.out {
        // The original README's one-row statistics of the embedding, rank included.
        let engine = Engine::cpu(SpectrumOptions::default());
        let record = TransformerRecord::compute(
            &MatrixView::whole(*tensor),
            &engine,
            &args.stats.options(),
            false,
        )?;
        let mut row = AnalyzeRecord::new(tensor, record.stats);
        row.rank = record
            .spectral
            .as_ref()
            .map(|s| s.metrics.actual_rank as u64);
        let format = Format::from_path(out).unwrap_or(Format::Csv);
        let records = [row];
        write_table(out, format, &rows(&opened.run, &records), "tensors", None)?;
    }
    Ok(())
}

fn curve_line(s: &tpa_core::analyses::embedding::sweep::KScore) -> String {
    match s.anova {
        Some(a) => format!(
            "k={:>3}: F={:>10.3} (df {}, {}) p={} inertia={:.1} silhouette={} clusters={} ({:.1} s)",
            s.k,
            a.f_ratio,
            a.df_between,
            a.df_within,
            format_p_value(a.p_value),
            s.inertia,
            s.silhouette.map_or("-".into(), |v| format!("{v:.4}")),
            a.clusters,
            s.seconds
        ),
        None => format!(
            "k={:>3}: F undefined, inertia={:.1} ({:.1} s)",
            s.k, s.inertia, s.seconds
        ),
    }
}

fn console_report(r: &ClusteringReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let chosen = r.curve.iter().find(|c| c.k == r.optimal_k);
    let _ = writeln!(
        out,
        "Embedding {} ({} tokens × {}): k = {} by {:?}{}",
        r.tensor,
        r.total_tokens,
        r.embedding_dimension,
        r.optimal_k,
        r.criterion,
        if r.run.sweep_sampled {
            format!(" (sweep on {} sampled rows)", r.run.sweep_rows)
        } else {
            String::new()
        }
    );
    if let Some(c) = chosen {
        let _ = writeln!(
            out,
            "  F = {} (p {}), silhouette {} (sampled), inertia {:.1}",
            c.f_ratio.map_or("undefined".into(), |f| format!("{f:.3}")),
            c.p_value_text.as_deref().unwrap_or("-"),
            r.silhouette_score.map_or("-".into(), |s| format!("{s:.4}")),
            c.inertia
        );
    }
    let _ = writeln!(
        out,
        "  {:>4} {:>7} {:>7} {:>9} {:>10}  nearest tokens",
        "id", "size", "%", "avg dist", "silhouette"
    );
    for c in &r.clusters {
        let _ = writeln!(
            out,
            "  {:>4} {:>7} {:>6.2}% {:>9.3} {:>10}  {}",
            c.cluster_id,
            c.size,
            c.percentage,
            c.avg_distance,
            c.silhouette_score.map_or("-".into(), |s| format!("{s:.4}")),
            c.representative_text
        );
    }
    out
}
