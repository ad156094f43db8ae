//! `tpa-report`: the charts and statistical report of one model, or the
//! comparison of several, from their result files alone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use tpa_report::alerts::{Alert, FailOn, Severity};
use tpa_report::input::{DiffResult, Embedding, Input, SpectraFile, unique_labels};
use tpa_report::{Cards, Options};

const EXAMPLES: &str = "\
Examples:
  tpa-report data/outputs/minilm.csv --spectra data/outputs/minilm-sv.safetensors --out reports/minilm
  tpa-report base.csv tuned.csv --label base --label tuned --out reports/compare
  tpa-report params.csv --out reports/smoke --fail-on nan,inf,zero_tensor     # a CI gate
  tpa-transformer --model-path MODEL --out x.csv --report reports/x             # all in one run

One RESULT gives a model report; 2 to 8 give a comparison, the first as the reference.
A tpa-diff result gives the report of what fine-tuning changed (heatmaps of rel_fro and of
ΔW's energy rank, LoRA fit error curves, intruder dimensions per layer, the 20 most changed
matrices).
RESULT is a tpa-transformer output (or a tpa-analyze one, for statistics only) in csv,
json or jsonl. The folder gets report.html (self-contained: nothing is loaded from the
network), report.md, charts/*.svg (and *.png with --png) and alerts.json.

Alert kinds: nan, inf, zero_tensor, constant_tensor, rank_deficient, low_energy_rank,
alpha_low, alpha_high, fit_failed, ill_conditioned, duplicate_tensor, layer_outlier
(thresholds in the README). --fail-on takes kinds and/or a severity (error, warning,
info: that severity or worse).

Exit codes: 0 success, 1 error, 2 usage error, 3 an alert matched --fail-on (the report
is written first).";

/// Charts and a statistical report of tpa results.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-report",
    version,
    about = "Charts and a self-contained HTML report of tpa-transformer / tpa-analyze results, with typed alerts",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Result files (csv, json or jsonl): one for a model report, 2 to 8 for a comparison.
    #[arg(value_name = "RESULT", required = true)]
    pub results: Vec<PathBuf>,

    /// The report folder (created; its files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The --save-spectra file of each result, in the order of the results; enables the
    /// spectrum cards.
    #[arg(long, value_name = "FILE")]
    pub spectra: Vec<PathBuf>,

    /// A tpa-embedding output folder for each result, in order; adds the embedding section.
    #[arg(long, value_name = "DIR")]
    pub embedding: Vec<PathBuf>,

    /// A name for each result, in order [default: model_id, else the model folder's name].
    #[arg(long, value_name = "NAME")]
    pub label: Vec<String>,

    #[command(flatten)]
    pub report: ReportFlags,

    /// No summary on stdout; errors still go to stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The report flags that tpa-transformer and tpa-analyze share with tpa-report.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportFlags {
    /// The page title [default: "MODEL: weight report"].
    #[arg(long, value_name = "T")]
    pub title: Option<String>,

    /// Spectrum cards: "all", a number (the default selection, at most N; default 40) or a
    /// glob over matrix names, e.g. '*layers.0.*'.
    #[arg(long, value_name = "all|N|GLOB", default_value = "40")]
    pub cards: Cards,

    /// Exit with 3 when an alert matches: kinds (nan,inf,zero_tensor,...) and/or a severity
    /// (error, warning, info: that severity or worse). The report is written first.
    #[arg(long = "fail-on", visible_alias = "fail_on", value_name = "KINDS")]
    pub fail_on: Option<FailOn>,

    /// Also write every chart as PNG (drawn with a bundled font, twice the SVG's size).
    #[arg(long)]
    pub png: bool,
}

impl ReportFlags {
    /// The first report flag given, when one is.
    fn first_given(&self) -> Option<&'static str> {
        [
            (self.fail_on.is_some(), "--fail-on"),
            (self.png, "--png"),
            (self.title.is_some(), "--title"),
            (self.cards != Cards::default(), "--cards"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// Parses a tool's arguments; report flags without `--report DIR` are a
/// usage error (exit 2), not silently ignored.
pub(crate) fn parse_with_report_flags<A: Parser>(report: impl Fn(&A) -> (bool, &ReportFlags)) -> A {
    let args = A::parse();
    let (has_report, flags) = report(&args);
    if let (false, Some(flag)) = (has_report, flags.first_given()) {
        A::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{flag} needs --report DIR"),
            )
            .exit();
    }
    args
}

/// Alerts matched `--fail-on`: the tool exits with 3 after writing the report.
#[derive(Debug)]
pub struct GateFailed {
    pub matched: usize,
    pub first: String,
}

impl std::fmt::Display for GateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} alert{} matched --fail-on, e.g. {}",
            self.matched,
            if self.matched == 1 { "" } else { "s" },
            self.first
        )
    }
}

impl std::error::Error for GateFailed {}

/// Entry point of the `tpa-report` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(problem) = args.usage_problem() {
        Args::command()
            .error(clap::error::ErrorKind::TooManyValues, problem)
            .exit();
    }
    crate::exit_code(run(&args))
}

impl Args {
    /// Counts of arguments that do not fit together (a usage error, exit 2).
    fn usage_problem(&self) -> Option<String> {
        let n = self.results.len();
        if self.spectra.len() > n || self.embedding.len() > n || self.label.len() > n {
            return Some(format!(
                "more --spectra, --embedding or --label than results ({n}); give them in the order of the results"
            ));
        }
        (n > tpa_report::MAX_MODELS).then(|| {
            format!(
                "{n} results: a comparison takes at most {}",
                tpa_report::MAX_MODELS
            )
        })
    }
}

/// Runs the report described by `args`.
pub fn run(args: &Args) -> Result<()> {
    if let Some(problem) = args.usage_problem() {
        bail!(problem);
    }
    if let [path] = &args.results[..]
        && DiffResult::is_diff(path)
    {
        let diff = DiffResult::load(path).context("cannot read the result")?;
        return write_diff_report(&diff, &args.out, &args.report, args.quiet);
    }
    let mut inputs = Vec::with_capacity(args.results.len());
    for (i, path) in args.results.iter().enumerate() {
        let mut input = Input::load(path).context("cannot read the result")?;
        if let Some(spectra) = args.spectra.get(i) {
            input.spectra = Some(SpectraFile::open(spectra).context("cannot read the spectra")?);
        }
        if let Some(dir) = args.embedding.get(i) {
            input.embedding =
                Some(Embedding::load(dir).context("cannot read the embedding result")?);
        }
        if let Some(label) = args.label.get(i) {
            input.label = label.clone();
        }
        inputs.push(input);
    }
    unique_labels(&mut inputs);
    write_report(&inputs, &args.out, &args.report, args.quiet)
}

/// The report of a run that just wrote `out` (and its spectra): what
/// `--report DIR` of tpa-transformer and tpa-analyze does. The result is
/// read back from the file (milliseconds), so the report is exactly the one
/// tpa-report makes of it; only the summary, which a CSV lacks, is handed over.
pub fn report_of_run(
    out: &Path,
    summary: serde_json::Value,
    spectra: Option<&Path>,
    dir: &Path,
    flags: &ReportFlags,
    quiet: bool,
) -> Result<()> {
    let mut input = Input::load(out).context("cannot read the result back for the report")?;
    input.result.summary = Some(summary);
    if let Some(path) = spectra {
        input.spectra = Some(SpectraFile::open(path).context("cannot read the spectra back")?);
    }
    write_report(&[input], dir, flags, quiet)
}

/// The report of a tpa-diff run that just wrote `out`: `tpa-diff --report DIR`.
pub fn diff_report_of_run(
    out: &Path,
    summary: serde_json::Value,
    dir: &Path,
    quiet: bool,
) -> Result<()> {
    let mut diff = DiffResult::load(out).context("cannot read the result back for the report")?;
    diff.summary = Some(summary);
    let flags = ReportFlags {
        title: None,
        cards: Cards::default(),
        fail_on: None,
        png: false,
    };
    write_diff_report(&diff, dir, &flags, quiet)
}

/// Builds and writes the report of a tpa-diff result into `dir`.
fn write_diff_report(
    diff: &DiffResult,
    dir: &Path,
    flags: &ReportFlags,
    quiet: bool,
) -> Result<()> {
    let options = Options {
        title: flags.title.clone(),
        ..Options::new(dir)
    };
    let report = tpa_report::diff_report(diff, &options);
    tpa_report::write(&report, dir, flags.png).context("cannot write the report")?;
    if !quiet {
        println!(
            "Wrote {} ({}, {} charts)",
            dir.join("report.html").display(),
            tpa_report::page::html::bytes(report.html.len() as u64),
            report.charts.len(),
        );
    }
    Ok(())
}

/// Builds and writes the report of `inputs` into `dir`, prints where it is
/// (unless `quiet`), then applies `--fail-on`.
pub fn write_report(inputs: &[Input], dir: &Path, flags: &ReportFlags, quiet: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let options = Options {
        title: flags.title.clone(),
        cards: flags.cards.clone(),
        ..Options::new(dir)
    };
    let report = tpa_report::build(inputs, &options)?;
    tpa_report::write(&report, dir, flags.png).context("cannot write the report")?;
    if !quiet {
        println!(
            "Wrote {} ({}, {} charts) in {:.2} s; alerts: {}",
            dir.join("report.html").display(),
            tpa_report::page::html::bytes(report.html.len() as u64),
            report.charts.len(),
            started.elapsed().as_secs_f64(),
            alert_counts(&report.alerts)
        );
    }
    gate(&report.alerts, flags.fail_on.as_ref())
}

fn alert_counts(alerts: &[Alert]) -> String {
    let count = |s: Severity| alerts.iter().filter(|a| a.severity == s).count();
    format!(
        "{} errors, {} warnings, {} info",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    )
}

fn gate(alerts: &[Alert], fail_on: Option<&FailOn>) -> Result<()> {
    let Some(fail_on) = fail_on else {
        return Ok(());
    };
    let matched: Vec<&Alert> = alerts.iter().filter(|a| fail_on.matches(a)).collect();
    match matched.first() {
        None => Ok(()),
        Some(first) => Err(GateFailed {
            matched: matched.len(),
            first: format!(
                "{} on {}{}",
                first.kind.as_str(),
                first.param_name,
                first
                    .model
                    .as_ref()
                    .map_or(String::new(), |m| format!(" ({m})"))
            ),
        }
        .into()),
    }
}
