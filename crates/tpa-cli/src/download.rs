//! `tpa-download`: a model repository from the Hub into `OUT/ORG/NAME/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use tpa_hub::{Client, Local, Plan, Progress, Request, human};

use crate::progress::bytes_bar;

const EXAMPLES: &str = "\
Examples:
  tpa-download --model-id Qwen/Qwen3-4B --out data/models/
  MODEL=$(tpa-download --model-id sentence-transformers/all-MiniLM-L6-v2 --quiet)
  tpa-download --model-id meta-llama/Llama-2-7b-hf --revision main --dry-run
  tpa-download --model_id Qwen/Qwen3-4B --out data/models/        # original flags
  tpa-download --model-id deepseek-ai/DeepSeek-V3 --list-tensors --out v3.csv --target-hours 2
  tpa-download --model-id unsloth/gemma-3-270m-it-GGUF --gguf Q4_K_M

Files go to OUT/ORG/NAME/ as plain files; that path is the last line on stdout.
Without --include, tpa-download fetches the safetensors weights and index, *.json,
tokenizer files and README.md, and says which other weights it left out. A repository
of GGUF files holds one model in many quantizations: --gguf NAME fetches the one named
(and README.md; the GGUF file holds config and tokenizer), and one without safetensors
and with a single GGUF model gets it by default.
An interrupted download resumes where it stopped on the next run; every file is
checked against its size and sha256 (or git blob id) before it takes its name, and
.tpa-download.json records what was verified, so a re-run transfers nothing.

--list-tensors downloads no weights: it reads each safetensors file's header with one
Range request (two when the header is bigger than 100 kB; a GGUF header from its
first 4 MiB, more when it is longer) and writes one row per tensor
(name, dtype, shape, shard, bytes, layer, block type, matrices, cost, est_seconds) to
--out FILE (.csv, .json, .jsonl) or as CSV to stdout. It measures this machine's analysis
rate (about a second on the CPU; --units-per-second sets it instead) and prints the planned
wall time of tpa-transformer on 1, 8, 64 and 256 machines with --shard, and with
--target-hours H the shard count that meets H. Costs come from the stored shapes, so
packed quantized codes (GPTQ, AWQ) are priced as stored.

Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN, HF_HOME (the
token is read from $HF_HOME/token, default ~/.cache/huggingface/token).";

/// Files bigger than this get a bar of their own.
const OWN_BAR_BYTES: u64 = 64 << 20;

/// Downloads a model repository from the Hugging Face Hub.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-download",
    version,
    about = "Download a model from the Hugging Face Hub into OUT/ORG/NAME/: resumable, verified, parallel",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Repository id, e.g. Qwen/Qwen3-4B.
    #[arg(long = "model-id", visible_alias = "model_id", value_name = "ORG/NAME")]
    pub model_id: String,

    /// Directory under which ORG/NAME/ is created [default: data/models]; with
    /// --list-tensors, the table's file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Branch, tag or commit; resolved to one commit before any file is fetched.
    #[arg(long, value_name = "REV", default_value = "main")]
    pub revision: String,

    /// Access token for private and gated repositories [default: HF_TOKEN, then
    /// $HF_HOME/token]. Prefer the environment: a flag is visible to other users in `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Fetch only files matching this glob (repeatable; `*` also matches `/`). Replaces the
    /// default selection.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Fetch this GGUF model of the repository instead of its safetensors weights: a part of
    /// its file name that tells it apart from the others, e.g. Q4_K_M (a split set
    /// X-00001-of-0000N.gguf is one model), and README.md. A repository without safetensors
    /// weights and with one GGUF model gets it without --gguf.
    #[arg(long, value_name = "NAME", conflicts_with = "include")]
    pub gguf: Option<String>,

    /// Leave out files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Files downloaded at once.
    #[arg(
        long = "max-workers",
        visible_alias = "max_workers",
        value_name = "N",
        default_value_t = 8
    )]
    pub max_workers: usize,

    /// List what would be fetched (and what is already here), then stop.
    #[arg(long = "dry-run", visible_alias = "dry_run")]
    pub dry_run: bool,

    /// Download nothing: list every tensor from the shards' headers (Range requests)
    /// with its estimated analysis cost, and print the planned wall time (see below).
    #[arg(long = "list-tensors", visible_alias = "list_tensors")]
    pub list_tensors: bool,

    /// With --list-tensors: the table's format (csv, json, jsonl) [default: from --out].
    #[arg(long, value_name = "FORMAT", requires = "list_tensors")]
    pub format: Option<tpa_core::writers::Format>,

    /// With --list-tensors: also print the shard count whose planned wall time is at most H hours.
    #[arg(long = "target-hours", value_name = "H", requires = "list_tensors")]
    pub target_hours: Option<f64>,

    /// With --list-tensors: price the analysis at this many cost units per second instead
    /// of measuring this machine (to plan for other machines).
    #[arg(long = "units-per-second", value_name = "X", requires = "list_tensors")]
    pub units_per_second: Option<f64>,

    /// No progress bars or messages on stderr; errors are still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    crate::exit_code(run(&args))
}

/// Runs the download described by `args`.
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let patterns = |globs: &[String], flag: &str| {
        tpa_hub::select::patterns(globs).with_context(|| format!("invalid {flag} pattern"))
    };
    let request = Request {
        repo: args.model_id.parse()?,
        revision: args.revision.clone(),
        out: if args.list_tensors {
            PathBuf::new()
        } else {
            args.out.clone().unwrap_or_else(|| "data/models".into())
        },
        include: patterns(&args.include, "--include")?,
        exclude: patterns(&args.exclude, "--exclude")?,
        gguf: args.gguf.clone(),
    };
    let token = args.token.clone().or_else(tpa_hub::token_from_env);
    let client = Client::new(&tpa_hub::endpoint_from_env(), token);
    let bars = Bars::new(args.quiet);

    let mut plan = tpa_hub::plan(&client, &request, &bars)?;
    if args.list_tensors {
        let headers = crate::remote::read(&client, &plan, args.max_workers, &bars)?.headers;
        let list = crate::listing::ListRequest {
            out: args.out.as_deref(),
            format: args.format,
            target_hours: args.target_hours,
            units_per_second: args.units_per_second,
            jobs: tpa_core::analyses::runner::Limits::detect().jobs,
        };
        return crate::listing::list_tensors(&headers, &plan, &list, &|line| bars.say(line));
    }
    if args.dry_run {
        bars.say(&plan_summary(&plan));
        print!("{}", plan_listing(&plan));
        println!("{}", plan.dir.display());
        return Ok(());
    }
    let waited = std::cell::Cell::new(false);
    let _lock = tpa_hub::lock_dir(&plan.dir, &|| {
        waited.set(true);
        bars.say(&format!(
            "waiting: another tpa-download is writing {}",
            plan.dir.display()
        ));
    })?;
    if waited.get() {
        // The other run may have fetched some or all of it meanwhile.
        plan = tpa_hub::plan(&client, &request, &bars)?;
    }
    bars.say(&plan_summary(&plan));
    tpa_hub::check_disk_space(&plan)?;
    bars.start(plan.remaining_bytes());
    let result = tpa_hub::execute(&client, &plan, args.max_workers, &bars);
    bars.finish();
    result?;
    let fetched = plan.pending().count();
    if fetched > 0 {
        bars.say(&format!(
            "downloaded {fetched} file{} ({}) in {:.1} s; all {} files verified",
            if fetched == 1 { "" } else { "s" },
            human(plan.remaining_bytes()),
            started.elapsed().as_secs_f64(),
            plan.files.len()
        ));
    } else {
        bars.say("nothing to fetch: every file is here and verified");
    }
    println!("{}", plan.dir.display());
    Ok(())
}

/// What will happen, in two or three lines.
fn plan_summary(plan: &Plan) -> String {
    let pending = plan.pending().count();
    let mut text = format!(
        "{} at {} (commit {}): {} files, {}; {} to fetch ({} file{})",
        plan.repo,
        plan.revision,
        &plan.commit[..plan.commit.len().min(12)],
        plan.files.len(),
        human(plan.total_bytes()),
        human(plan.remaining_bytes()),
        pending,
        if pending == 1 { "" } else { "s" },
    );
    let resumed: Vec<&str> = plan
        .files
        .iter()
        .filter(|f| matches!(f.local, Local::Partial(n) if n > 0))
        .map(|f| f.file.path.as_str())
        .collect();
    if !resumed.is_empty() {
        text.push_str(&format!("\nresuming {}", resumed.join(", ")));
    }
    let skipped = [
        (&plan.skipped_weights, "other weights"),
        (
            &plan.skipped_copies,
            "safetensors that model.safetensors.index.json does not name (the same weights again)",
        ),
    ];
    for (files, what) in skipped.into_iter().filter(|(f, _)| !f.is_empty()) {
        let names: Vec<String> = files
            .iter()
            .map(|f| format!("{} ({})", f.path, human(f.size)))
            .collect();
        text.push_str(&format!(
            "\nskipped {what}: {} (pass --include, or --gguf NAME for a GGUF model, to fetch them)",
            names.join(", ")
        ));
    }
    text
}

/// One line per file for --dry-run: action, size, path.
fn plan_listing(plan: &Plan) -> String {
    let mut out = String::new();
    for f in &plan.files {
        let action = match f.local {
            Local::Complete => "have".to_owned(),
            Local::Partial(n) if n > 0 => format!("resume from {}", human(n)),
            _ => "fetch".to_owned(),
        };
        out.push_str(&format!(
            "{action}\t{}\t{}\n",
            human(f.file.size),
            f.file.path
        ));
    }
    for f in plan.skipped_weights.iter().chain(&plan.skipped_copies) {
        out.push_str(&format!("skip\t{}\t{}\n", human(f.size), f.path));
    }
    out
}

/// The overall bar and the bars of big files, on stderr.
struct Bars {
    quiet: bool,
    multi: MultiProgress,
    total: Mutex<Option<ProgressBar>>,
    files: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bars {
            quiet,
            multi: MultiProgress::with_draw_target(target),
            total: Mutex::new(None),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// A message on stderr that does not break the bars.
    fn say(&self, message: &str) {
        if !self.quiet {
            let _ = self.multi.println(message);
            if self.multi.is_hidden() {
                eprintln!("{message}");
            }
        }
    }

    fn start(&self, bytes: u64) {
        let bar = self.multi.add(bytes_bar(bytes, "total", self.quiet));
        *lock(&self.total) = Some(bar);
    }

    fn finish(&self) {
        if let Some(bar) = lock(&self.total).take() {
            bar.finish_and_clear();
        }
        for (_, bar) in lock(&self.files).drain() {
            bar.finish_and_clear();
        }
    }

    fn with_total(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = lock(&self.total).as_ref() {
            f(bar);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Progress for Bars {
    fn verifying(&self, path: &str, size: u64) {
        self.say(&format!(
            "checking {path} ({}), already here but not in the manifest",
            human(size)
        ));
    }

    fn file_started(&self, path: &str, size: u64, from: u64) {
        if size >= OWN_BAR_BYTES {
            let name = path.rsplit('/').next().unwrap_or(path);
            let bar = self.multi.add(bytes_bar(size, name, self.quiet));
            bar.set_position(from);
            lock(&self.files).insert(path.to_owned(), bar);
        }
    }

    fn advanced(&self, path: &str, bytes: u64) {
        self.with_total(|bar| bar.inc(bytes));
        if let Some(bar) = lock(&self.files).get(path) {
            bar.inc(bytes);
        }
    }

    fn restarted(&self, path: &str, lost: u64) {
        self.with_total(|bar| bar.inc_length(lost));
        if let Some(bar) = lock(&self.files).get(path) {
            bar.set_position(0);
        }
        self.say(&format!(
            "{path}: the server ignored the resume request; fetching it again from the start"
        ));
    }

    fn file_done(&self, path: &str) {
        if let Some(bar) = lock(&self.files).remove(path) {
            bar.finish_and_clear();
        }
    }

    fn retrying(&self, message: &str, delay: Duration) {
        self.say(&format!(
            "retrying in {:.1} s: {message}",
            delay.as_secs_f64()
        ));
    }
}
