//! Flags and set-up that several tools share.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tpa_core::analyses::runner::Limits;
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::analyses::stats::StatsOptions;
use tpa_core::model::{Model, ModelConfig};
use tpa_core::records::RunInfo;
use tpa_core::writers::{Format, prepare_output};

/// Which model, and how to label it.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Model directory or single .safetensors file.
    #[arg(long = "model-path", visible_alias = "model_path", value_name = "PATH")]
    pub model_path: PathBuf,

    /// Model id written to the model_id column, e.g. Qwen/Qwen3-4B.
    #[arg(long = "model-id", visible_alias = "model_id", value_name = "ID")]
    pub model_id: Option<String>,

    /// Revision written to the revision column.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
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
    #[arg(long = "max-memory", visible_alias = "max_memory", value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// Do not use a GPU.
    #[arg(long = "no-gpu", visible_alias = "no_gpu")]
    pub no_gpu: bool,
}

impl SpectrumArgs {
    pub fn limits(&self) -> Limits {
        let detected = Limits::detect();
        Limits {
            jobs: self.jobs.unwrap_or(detected.jobs).max(1),
            max_memory: self.max_memory.unwrap_or(detected.max_memory),
        }
    }

    pub fn engine(&self, quiet: bool) -> Engine {
        if !self.no_gpu && !quiet {
            eprintln!(
                "note: no GPU backend in this build yet; computing spectra on the CPU (--no-gpu hides this)"
            );
        }
        Engine::cpu(SpectrumOptions {
            rank_rtol: self.rank_rtol,
        })
    }
}

/// `16G`, `512M`, `1.5GiB`, `4096` (bytes); units are binary.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 8G or 512M"))?;
    let scale = match unit
        .trim()
        .trim_end_matches("iB")
        .trim_end_matches('B')
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    Ok((number * scale as f64) as u64)
}

/// A model opened for analysis, with what the summary needs.
pub struct Opened {
    pub model: Model,
    pub config: Option<ModelConfig>,
    pub run: RunInfo,
}

/// Opens the model, warning about what does not stop the analysis.
pub fn open_model(args: &ModelArgs) -> Result<Opened> {
    let run = RunInfo::now(
        args.model_path.display().to_string(),
        args.model_id.clone().unwrap_or_default(),
        args.revision.clone().unwrap_or_default(),
    );
    let model = Model::open(&args.model_path).context("cannot open the model")?;
    let unindexed = model.unindexed_tensors();
    if let (Some(first), Some(index)) = (unindexed.first(), model.index_path()) {
        eprintln!(
            "warning: {} tensor(s) in the shards are not listed in {} and are left out, e.g. {first}",
            unindexed.len(),
            index.display()
        );
    }
    let config = ModelConfig::load(model.dir()).unwrap_or_else(|e| {
        eprintln!("warning: {e}; the summary will lack the config facts");
        None
    });
    Ok(Opened { model, config, run })
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }
}
