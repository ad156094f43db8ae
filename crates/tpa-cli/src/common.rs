//! Flags and set-up that several tools share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tpa_core::analyses::runner::Limits;
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::analyses::stats::StatsOptions;
use tpa_core::model::{Model, ModelConfig, Reading};
use tpa_core::records::{Quantization, RunInfo};
use tpa_core::writers::{Format, Journal, prepare_output};

/// Which model, and how to label it.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Model directory, single .safetensors file, or GGUF file (a split set
    /// X-00001-of-0000N.gguf opens whole from any of its files).
    #[arg(
        long = "model-path",
        visible_alias = "model_path",
        value_name = "PATH",
        required_unless_present = "model_id"
    )]
    pub model_path: Option<PathBuf>,

    /// Model id written to the model_id column, e.g. Qwen/Qwen3-4B. Without --model-path,
    /// tpa-transformer and tpa-analyze stream this model from the Hub (see --max-disk).
    #[arg(long = "model-id", visible_alias = "model_id", value_name = "ID")]
    pub model_id: Option<String>,

    /// Revision written to the revision column; when streaming, the branch, tag or commit
    /// to analyse [default: main] (the column then holds the commit it resolved to).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,

    /// Analyse the stored tensors exactly as stored: quantized codes, scales and zero points
    /// get rows of their own (quant = raw) instead of being dequantized into their weight.
    #[arg(long)]
    pub raw: bool,
}

/// Where results go.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output file; written atomically. Its extension (.csv, .json, .jsonl) sets the format
    /// unless --format is given.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Output format: csv, json (rows plus a model summary) or jsonl (one row per line).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
}

/// How statistics are computed.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Values with |x| <= this count as zero for the sparsity column.
    #[arg(
        long = "zero-eps",
        visible_alias = "zero_eps",
        value_name = "X",
        default_value = "1e-8"
    )]
    pub zero_eps: f64,
}

impl StatsArgs {
    pub fn options(&self) -> StatsOptions {
        StatsOptions {
            zero_eps: self.zero_eps,
        }
    }
}

/// How spectra are computed.
#[derive(Debug, clap::Args)]
pub struct SpectrumArgs {
    /// Numerical rank counts singular values above X times the largest one.
    #[arg(
        long = "rank-rtol",
        visible_alias = "rank_rtol",
        value_name = "X",
        default_value = "1e-6"
    )]
    pub rank_rtol: f64,

    /// Matrices computed at once, one per thread [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Memory the matrices in flight may use, e.g. 8G or 512M [default: half of the
    /// available memory]. A matrix larger than this runs alone.
    #[arg(long = "max-memory", visible_alias = "max_memory", value_name = "SIZE", value_parser = tpa_core::analyses::runner::parse_size)]
    pub max_memory: Option<u64>,

    /// Do not look for a GPU; compute on the CPU.
    #[arg(long = "no-gpu", visible_alias = "no_gpu")]
    pub no_gpu: bool,

    /// Fail instead of falling back to the CPU when no GPU is usable (also
    /// TPA_REQUIRE_GPU=1), for batch jobs that must not run for hours on a CPU.
    #[arg(long, conflicts_with = "no_gpu")]
    pub gpu: bool,

    /// Say what the GPU probe found and tried. TPA_CUDA_LIB_DIR names a folder
    /// of CUDA 13 libraries, e.g. a PyTorch install's site-packages/nvidia/cu13/lib.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl SpectrumArgs {
    pub fn limits(&self) -> Limits {
        let detected = Limits::detect();
        Limits {
            jobs: self.jobs.unwrap_or(detected.jobs).max(1),
            max_memory: self.max_memory.unwrap_or(detected.max_memory),
        }
    }

    /// The spectral engine: the CPU, plus the GPU where one is found (one
    /// line on stderr says which, unless `quiet`).
    pub fn engine(&self, quiet: bool) -> Result<Engine> {
        let engine = Engine::cpu(SpectrumOptions {
            rank_rtol: self.rank_rtol,
        });
        let probe = GpuProbe {
            no_gpu: self.no_gpu,
            require: self.gpu,
            verbose: self.verbose,
            quiet,
            role: "big matrices on the GPU, small ones on the CPU",
        };
        Ok(match probe.run()? {
            Gpu::None => engine,
            #[cfg(feature = "cuda")]
            Gpu::Cuda(backend) => engine.with_accelerator(Box::new(backend)),
        })
    }
}

impl SpectrumArgs {
    /// The engine kept in `cell`, probed on first use: after the model has
    /// opened (so that a bad model's error comes first), before any journal
    /// exists.
    pub fn engine_in<'c>(
        &self,
        cell: &'c std::sync::OnceLock<Engine>,
        quiet: bool,
    ) -> Result<&'c Engine> {
        if let Some(engine) = cell.get() {
            return Ok(engine);
        }
        let engine = self.engine(quiet)?;
        Ok(cell.get_or_init(|| engine))
    }
}

/// What the GPU probe found.
pub enum Gpu {
    None,
    #[cfg(feature = "cuda")]
    Cuda(tpa_core::analyses::spectrum::cuda::CudaBackend),
}

/// How to look for a GPU, and what to say about it.
pub struct GpuProbe<'a> {
    /// Do not look.
    pub no_gpu: bool,
    /// Fail when none is usable (also TPA_REQUIRE_GPU=1).
    pub require: bool,
    /// Print the probe's details.
    pub verbose: bool,
    /// Print nothing unless verbose.
    pub quiet: bool,
    /// What the GPU will do, for the line that announces it.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub role: &'a str,
}

impl GpuProbe<'_> {
    /// Looks for a usable GPU; one line on stderr says what was found.
    pub fn run(&self) -> Result<Gpu> {
        if self.no_gpu {
            return Ok(Gpu::None);
        }
        let require = self.require
            || std::env::var("TPA_REQUIRE_GPU")
                .is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let say = |line: String| {
            if !self.quiet || self.verbose {
                eprintln!("{line}");
            }
        };
        #[cfg(feature = "cuda")]
        {
            use tpa_core::analyses::spectrum::cuda;
            match cuda::probe() {
                Ok(backend) => {
                    let info = backend.info();
                    say(format!(
                        "GPU: {}, {:.1} of {:.1} GiB free, compute {}.{}, CUDA driver {}.{}; {}",
                        info.name,
                        info.free_memory as f64 / (1u64 << 30) as f64,
                        info.total_memory as f64 / (1u64 << 30) as f64,
                        info.compute_capability.0,
                        info.compute_capability.1,
                        info.driver_version / 1000,
                        info.driver_version % 1000 / 10,
                        self.role
                    ));
                    Ok(Gpu::Cuda(backend))
                }
                Err(failure) => {
                    if self.verbose {
                        failure
                            .details
                            .iter()
                            .for_each(|d| eprintln!("  gpu probe: {d}"));
                    }
                    if require {
                        anyhow::bail!("--gpu / TPA_REQUIRE_GPU: no usable GPU: {}", failure.reason);
                    }
                    say(format!(
                        "GPU: none usable ({}); computing on the CPU",
                        failure.reason
                    ));
                    Ok(Gpu::None)
                }
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            let reason = "this build has no GPU support (built without the cuda feature)";
            if require {
                anyhow::bail!("--gpu / TPA_REQUIRE_GPU: no usable GPU: {reason}");
            }
            say(format!("GPU: none usable ({reason}); computing on the CPU"));
            Ok(Gpu::None)
        }
    }
}

/// A model opened for analysis, with what the summary needs.
pub struct Opened {
    pub model: Model,
    pub config: Option<ModelConfig>,
    pub run: RunInfo,
    /// What was dequantized (or that the model was read raw).
    pub quantization: Option<Quantization>,
}

impl Opened {
    /// What the summary says of the model.
    pub fn facts(&self) -> Facts {
        Facts {
            run: self.run.clone(),
            config: self.config.clone(),
            quantization: self.quantization.clone(),
        }
    }
}

/// What a summary says of the model besides its rows.
pub struct Facts {
    pub run: RunInfo,
    pub config: Option<ModelConfig>,
    pub quantization: Option<Quantization>,
}

/// The local model path; a tool that cannot stream says so when only
/// --model-id was given.
pub fn local_path(args: &ModelArgs) -> Result<&Path> {
    args.model_path.as_deref().context(
        "give --model-path PATH: this tool reads local models (tpa-transformer and tpa-analyze \
         can stream one from the Hub with --model-id alone)",
    )
}

/// Opens the model, warning about what does not stop the analysis.
pub fn open_model(args: &ModelArgs) -> Result<Opened> {
    let path = local_path(args)?;
    let run = RunInfo::now(
        path.display().to_string(),
        args.model_id.clone().unwrap_or_default(),
        args.revision.clone().unwrap_or_default(),
    );
    let reading = if args.raw {
        Reading::Raw
    } else {
        Reading::Dequantized
    };
    let model = Model::open_with(path, reading).context("cannot open the model")?;
    let unindexed = model.unindexed_tensors();
    if let (Some(first), Some(index)) = (unindexed.first(), model.index_path()) {
        eprintln!(
            "warning: {} tensor(s) in the shards are not listed in {} and are left out, e.g. {first}",
            unindexed.len(),
            index.display()
        );
    }
    let config = model.config().unwrap_or_else(|e| {
        eprintln!("warning: {e}; the summary will lack the config facts");
        None
    });
    let quantization = Quantization::of(&model);
    Ok(Opened {
        model,
        config,
        run,
        quantization,
    })
}

/// The output format, from --format or the file's extension; also checks
/// that the output path can be written, before any long work.
pub fn output_format(args: &OutputArgs) -> Result<Format> {
    let format = args
        .format
        .or_else(|| Format::from_path(&args.out))
        .with_context(|| {
            format!(
                "cannot tell the output format from {}: give --format csv, json or jsonl, \
             or a file name ending in .csv, .json or .jsonl",
                args.out.display()
            )
        })?;
    prepare_output(&args.out)?;
    Ok(format)
}

/// Opens the journal: continues it with --resume when it belongs to this
/// run, starts a fresh one otherwise. Returns it with the records it held.
pub fn open_journal<T: serde::de::DeserializeOwned>(
    path: &Path,
    header: &serde_json::Value,
    resume: bool,
) -> Result<(Journal, Vec<T>)> {
    let previous = Journal::read::<T>(path)?;
    match previous {
        Some((resumed, valid_len)) if resume => {
            if &resumed.header != header {
                anyhow::bail!(
                    "{} is from a run with other settings ({}); run without --resume to start over",
                    path.display(),
                    resumed.header
                );
            }
            Ok((Journal::reopen(path, valid_len)?, resumed.records))
        }
        Some(_) => {
            eprintln!(
                "note: starting over; {} held results of an interrupted run (--resume continues such a run)",
                path.display()
            );
            Ok((Journal::create(path, header)?, Vec::new()))
        }
        None => {
            if resume {
                eprintln!(
                    "note: nothing to resume at {}; starting from the beginning",
                    path.display()
                );
            }
            Ok((Journal::create(path, header)?, Vec::new()))
        }
    }
}

/// Where a streamed run keeps its ledger of finished file groups, beside
/// its journal.
pub fn ledger_path(journal: &Path) -> PathBuf {
    journal.with_extension("groups.jsonl")
}

/// Where the journal of an interrupted run writing `out` is kept.
pub fn journal_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial.jsonl");
    PathBuf::from(name)
}
