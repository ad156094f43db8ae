//! `--model-id` without `--model-path`: the model streamed from the Hub
//! under a disk budget, one group of files at a time (see
//! [`tpa_hub::stream`]), with a ledger of the finished groups so that
//! `--resume` downloads again only what is not yet analysed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tpa_core::analyses::runner::parse_size;
use tpa_core::analyses::shard::{RunShard, split, tensor_cost};
use tpa_core::model::{GgufMetadata, Model, ModelConfig, Reading};
use tpa_core::records::{Quantization, RunInfo};
use tpa_core::writers::{Journal, Parts};
use tpa_hub::stream::{StreamOptions, group_files};
use tpa_hub::{Client, DirLock, Plan, Progress, RemoteHeader, Request, human};

use crate::common::{Facts, ModelArgs};
use crate::remote::RemoteModel;

const HEADING: &str = "Streaming from the Hub (--model-id without --model-path)";

/// Where and how a streamed model is downloaded.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// Folder the files are downloaded into (as DIR/ORG/NAME/) while they are analysed.
    #[arg(
        help_heading = HEADING,
        long = "download-dir",
        visible_alias = "download_dir",
        value_name = "DIR",
        default_value = "data/models"
    )]
    pub download_dir: PathBuf,

    /// The most the model's download folder may hold at once, e.g. 20G (K, M, G, T are
    /// binary units) [default: no limit]. Files are deleted once analysed; with room for
    /// two files the next downloads while one is analysed. At least the largest file.
    #[arg(help_heading = HEADING, long = "max-disk", visible_alias = "max_disk", value_name = "SIZE", value_parser = parse_size)]
    pub max_disk: Option<u64>,

    /// Keep the downloaded files instead of deleting each once analysed.
    #[arg(help_heading = HEADING, long = "keep-download", visible_alias = "keep_download")]
    pub keep_download: bool,

    /// Stream this GGUF model of the repository: a part of its file name that tells it apart
    /// from the others, e.g. Q4_K_M (a split set is one model). A repository without
    /// safetensors weights and with one GGUF model needs no --gguf.
    #[arg(help_heading = HEADING, long, value_name = "NAME")]
    pub gguf: Option<String>,

    /// Files downloaded at once within a group.
    #[arg(
        help_heading = HEADING,
        long = "max-workers",
        visible_alias = "max_workers",
        value_name = "N",
        default_value_t = 4
    )]
    pub max_workers: usize,
}

impl StreamArgs {
    /// Refuses the streaming flags for a local model, where they would do nothing.
    pub fn check_local(&self, model: &ModelArgs) -> Result<()> {
        if model.model_path.is_some()
            && (self.max_disk.is_some() || self.keep_download || self.gguf.is_some())
        {
            bail!(
                "--max-disk, --keep-download and --gguf apply when streaming from the Hub (--model-id \
                 without --model-path); {} is read where it is",
                model
                    .model_path
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display()
            );
        }
        Ok(())
    }
}

/// A model on the Hub, planned: its commit, its files, their headers, and
/// the groups of files that are downloaded and analysed together.
pub struct Source {
    client: Client,
    plan: Plan,
    headers: Vec<RemoteHeader>,
    /// Indices into `headers`, in file order.
    groups: Vec<Vec<usize>>,
    /// A GGUF model's metadata, from its first file's header.
    gguf: Option<GgufMetadata>,
    reading: Reading,
    _lock: DirLock,
}

/// One finished group, as the ledger keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    /// The group's files (repository paths).
    pub files: Vec<String>,
    /// Its matrices, in storage order.
    pub names: Vec<String>,
    pub quantization: Option<Quantization>,
}

impl Source {
    /// Resolves the revision to one commit, lists and selects the files,
    /// reads every safetensors or GGUF header (Range requests) and groups
    /// the files (a GGUF file is a group of its own: it has no sidecars).
    /// A shard of a run writing `out` takes the commit its plan pinned, so
    /// that every shard reads the same bytes even if the branch moves.
    pub fn open(
        model: &ModelArgs,
        args: &StreamArgs,
        out: &Path,
        shard: Option<RunShard>,
        quiet: bool,
    ) -> Result<Source> {
        let Some(id) = &model.model_id else {
            bail!(
                "give --model-path PATH, or --model-id ORG/NAME to stream the model from the Hub"
            );
        };
        let pinned = match shard {
            Some(_) => Parts::of(out).read_plan()?.and_then(|plan| {
                let source = plan.get("source")?;
                (source["repo"] == id.as_str())
                    .then(|| source["commit"].as_str().map(str::to_owned))?
            }),
            None => None,
        };
        let revision = pinned
            .or_else(|| model.revision.clone())
            .unwrap_or_else(|| "main".into());
        let request = Request {
            repo: id.parse()?,
            revision,
            out: args.download_dir.clone(),
            include: Vec::new(),
            exclude: Vec::new(),
            gguf: args.gguf.clone(),
        };
        let client = Client::new(&tpa_hub::endpoint_from_env(), tpa_hub::token_from_env());
        let say = Say { quiet };
        let dir = request.repo.local_dir(&request.out);
        let lock = tpa_hub::lock_dir(&dir, &|| {
            say.line(&format!(
                "waiting: another run is downloading into {} (give each shard its own --download-dir)",
                dir.display()
            ))
        })?;
        let plan = tpa_hub::plan(&client, &request, &say)?;
        let RemoteModel { headers, gguf } =
            crate::remote::read(&client, &plan, args.max_workers, &say)?;
        if headers.is_empty() {
            bail!("{} has no safetensors or GGUF files to stream", plan.repo);
        }
        let groups = match gguf {
            Some(_) => (0..headers.len()).map(|i| vec![i]).collect(),
            None => group_files(&headers),
        };
        // The budget is checked, against every group, before any download.
        let paths: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| headers[i].file.path.as_str()).collect())
            .collect();
        tpa_hub::stream::check_budget(&plan, &paths, &options(args))?;
        let plan = tpa_hub::stream::fetch_fixed(&client, &plan, args.max_workers, &say)?;
        let reading = if model.raw {
            Reading::Raw
        } else {
            Reading::Dequantized
        };
        Ok(Source {
            client,
            plan,
            headers,
            groups,
            gguf,
            reading,
            _lock: lock,
        })
    }

    /// The model's folder under the download dir.
    pub fn dir(&self) -> &Path {
        &self.plan.dir
    }

    /// The rows' model_path, model_id and revision (the resolved commit).
    pub fn run_info(&self) -> RunInfo {
        RunInfo::now(
            self.plan.dir.display().to_string(),
            self.plan.repo.to_string(),
            self.plan.commit.clone(),
        )
    }

    /// What identifies the streamed model, for journals and plans.
    pub fn identity(&self) -> serde_json::Value {
        serde_json::json!({"repo": self.plan.repo.to_string(), "commit": self.plan.commit})
    }

    /// The groups, as lists of repository paths.
    pub fn groups(&self) -> Vec<Vec<String>> {
        self.groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&i| self.headers[i].file.path.clone())
                    .collect()
            })
            .collect()
    }

    /// Estimated analysis cost of each group, from its headers.
    pub fn group_costs(&self) -> Vec<u64> {
        self.groups
            .iter()
            .map(|g| {
                g.iter()
                    .flat_map(|&i| &self.headers[i].tensors)
                    .map(|t| {
                        let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
                        tensor_cost(&t.name, &shape) + t.bytes()
                    })
                    .sum()
            })
            .collect()
    }

    /// Streams `groups` (from [`Source::groups`]) in order: each is
    /// downloaded, opened and handed to `analyse`, which returns its
    /// matrices' names; then deleted unless kept. Every finished group is
    /// appended to `ledger`.
    pub fn stream(
        &self,
        groups: &[Vec<String>],
        args: &StreamArgs,
        quiet: bool,
        ledger: &mut Journal,
        mut analyse: impl FnMut(&Model) -> Result<Vec<String>>,
    ) -> Result<()> {
        let options = options(args);
        let paths: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(String::as_str).collect())
            .collect();
        let say = Say { quiet };
        let total = groups.len();
        tpa_hub::stream::stream(&self.client, &self.plan, &paths, &options, &say, |i| {
            let files = &paths[i];
            let bytes = tpa_hub::stream::group_bytes(&self.plan, files);
            say.line(&format!(
                "analysing {} ({}; group {} of {total})",
                files.join(", "),
                human(bytes),
                i + 1
            ));
            let dir = &self.plan.dir;
            let model = match &self.gguf {
                Some(metadata) => Model::open_gguf_part(dir, files, metadata, self.reading),
                None => Model::open_part(dir, files, self.reading),
            }
            .with_context(|| format!("cannot open {} of {}", files.join(", "), self.plan.repo))?;
            let names = analyse(&model)?;
            ledger.append(&Finished {
                files: groups[i].clone(),
                names,
                quantization: Quantization::of(&model),
            })?;
            Ok(())
        })
    }

    /// The summary facts of the whole model from the finished groups.
    pub fn facts(&self, finished: &[Finished]) -> Facts {
        let config = match &self.gguf {
            Some(metadata) => {
                let has_output = (self.headers.iter().flat_map(|h| &h.tensors))
                    .any(|t| t.name == "output.weight");
                Some(ModelConfig::from_gguf(metadata, has_output))
            }
            None => ModelConfig::load(self.dir()).unwrap_or_else(|e| {
                eprintln!("warning: {e}; the summary will lack the config facts");
                None
            }),
        };
        Facts {
            run: self.run_info(),
            config,
            quantization: Quantization::combine(
                finished.iter().filter_map(|f| f.quantization.clone()),
            ),
        }
    }
}

fn options(args: &StreamArgs) -> StreamOptions {
    StreamOptions {
        max_disk: args.max_disk.unwrap_or(u64::MAX),
        keep: args.keep_download,
        workers: args.max_workers,
    }
}

/// A streamed run, planned: every group of the model, this run's share of
/// them, and where its rows and its ledger of finished groups are kept.
pub struct StreamedRun {
    pub groups: Vec<Vec<String>>,
    pub mine: Vec<Vec<String>>,
    pub journal: PathBuf,
    pub ledger: PathBuf,
}

impl StreamedRun {
    /// The finished groups, read back from the ledger, and their matrices
    /// (or tensors) in the model's storage order.
    pub fn finished(&self) -> Result<(Vec<Finished>, Vec<String>)> {
        let finished = Journal::read::<Finished>(&self.ledger)?
            .map(|(resumed, _)| resumed.records)
            .unwrap_or_default();
        let mut names = Vec::new();
        for group in &self.groups {
            if let Some(f) = finished.iter().find(|f| &f.files == group) {
                names.extend(f.names.iter().cloned());
            }
        }
        Ok((finished, names))
    }
}

impl Source {
    /// Plans a run writing `out`: every group, or with `shard` its share by
    /// estimated cost (so that each machine downloads only its own files),
    /// handed to `plan_shard` as the plan's `source` and `groups`; `None`
    /// when `plan_shard` says the shard has finished.
    pub fn plan_run(
        &self,
        out: &Path,
        shard: Option<RunShard>,
        plan_shard: impl FnOnce(RunShard, serde_json::Value) -> Result<bool>,
    ) -> Result<Option<StreamedRun>> {
        let groups = self.groups();
        let Some(shard) = shard else {
            let journal = crate::common::journal_path(out);
            return Ok(Some(StreamedRun {
                mine: groups.clone(),
                groups,
                ledger: crate::common::ledger_path(&journal),
                journal,
            }));
        };
        let shard_of = split(&self.group_costs(), shard.count);
        let work = serde_json::json!({
            "source": self.identity(),
            "groups": groups.iter().zip(&shard_of).map(|(g, s)| serde_json::json!([g, s])).collect::<Vec<_>>(),
        });
        if !plan_shard(shard, work)? {
            return Ok(None);
        }
        let parts = Parts::of(out);
        let mine = groups
            .iter()
            .zip(&shard_of)
            .filter(|&(_, &s)| s == shard.index)
            .map(|(g, _)| g.clone())
            .collect();
        Ok(Some(StreamedRun {
            groups,
            mine,
            journal: parts.journal_path(shard),
            ledger: parts.ledger_path(shard),
        }))
    }

    /// Streams the groups of `run` its ledger does not list as finished
    /// (all of them unless `resume`), as [`Source::stream`] does.
    pub fn run(
        &self,
        run: &StreamedRun,
        header: &serde_json::Value,
        args: &StreamArgs,
        resume: bool,
        quiet: bool,
        analyse: impl FnMut(&Model) -> Result<Vec<String>>,
    ) -> Result<()> {
        let (mut ledger, finished) =
            crate::common::open_journal::<Finished>(&run.ledger, header, resume)?;
        let todo: Vec<Vec<String>> = run
            .mine
            .iter()
            .filter(|g| !finished.iter().any(|f| &f.files == *g))
            .cloned()
            .collect();
        if !finished.is_empty() && !quiet {
            eprintln!(
                "resuming: {} of {} file groups already analysed; they are not downloaded again",
                finished.len(),
                run.mine.len(),
            );
        }
        self.stream(&todo, args, quiet, &mut ledger, analyse)
    }
}

/// Download progress as lines on stderr.
struct Say {
    quiet: bool,
}

impl Say {
    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

impl Progress for Say {
    fn file_started(&self, path: &str, size: u64, from: u64) {
        if from > 0 {
            self.line(&format!(
                "downloading {path}: resuming at {} of {}",
                human(from),
                human(size)
            ));
        } else if size >= 1 << 20 {
            self.line(&format!("downloading {path} ({})", human(size)));
        }
    }

    fn retrying(&self, message: &str, delay: Duration) {
        self.line(&format!(
            "retrying in {:.1} s: {message}",
            delay.as_secs_f64()
        ));
    }

    fn restarted(&self, path: &str, _lost: u64) {
        self.line(&format!(
            "{path}: the server ignored the resume request; fetching it again"
        ));
    }
}
