//! `tpa-transformer --model-id` without a local model: streamed from the
//! mock Hub under a disk budget, resumed, prefetched, split between shards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Table, assert_success, stderr};
use tpa_testkit::mock_hub::{Fault, MockHub, MockRepo, files_of};
use tpa_testkit::{Dtype, Fill, TensorSpec, write_model};

const REPO: &str = "org/six";

/// A model of `files` equal shard files, each holding one layer's up and
/// down projections (n × n float32), plus a config.
fn write_six(dir: &Path, files: usize, n: usize) {
    let mut tensors = Vec::new();
    for layer in 0..files {
        for (k, name) in ["up_proj", "down_proj"].iter().enumerate() {
            tensors.push(TensorSpec::new(
                format!("model.layers.{layer}.mlp.{name}.weight"),
                Dtype::F32,
                &[n, n],
                Fill::Normal {
                    seed: (layer * 2 + k) as u64,
                    std: 1.0,
                },
            ));
        }
    }
    write_model(dir, &tensors, files).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
}

/// Rows without timings and model_path (the local and the download folder
/// differ).
fn without_labels(t: &Table) -> Vec<Vec<(String, String)>> {
    common::without_timing(t)
        .into_iter()
        .map(|row| row.into_iter().filter(|(k, _)| k != "model_path").collect())
        .collect()
}

fn shard(i: usize, of: usize) -> String {
    format!("model-{i:05}-of-{of:05}.safetensors")
}

/// The local model, the mock Hub serving it, and scratch space.
struct Setup {
    hub: MockHub,
    repo: MockRepo,
    local: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new(files: usize, n: usize) -> Setup {
        let local = tempfile::tempdir().unwrap();
        write_six(local.path(), files, n);
        let hub = MockHub::start();
        let repo = MockRepo::new(REPO, files_of(local.path()).unwrap());
        hub.add_repo(repo.clone());
        Setup {
            hub,
            repo,
            local,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn file_size(&self, path: &str) -> u64 {
        self.repo
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .size() as u64
    }

    fn downloads(&self) -> PathBuf {
        self.scratch.path().join("downloads")
    }

    /// The streamed model's folder.
    fn model_dir(&self) -> PathBuf {
        self.downloads().join("org").join("six")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// tpa-transformer streaming into [`Setup::downloads`] (unless `extra`
    /// gives another --download-dir).
    fn command(&self, out: &Path, extra: &[&str]) -> Command {
        let downloads = self.downloads();
        let dir = ["--download-dir", downloads.to_str().unwrap()];
        let extra: Vec<&str> = if extra.contains(&"--download-dir") {
            extra.to_vec()
        } else {
            [&dir[..], extra].concat()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpa-transformer"));
        command
            .args(["--model-id", REPO, "--out", out.to_str().unwrap()])
            .args(["--no-gpu", "--quiet"])
            .args(&extra)
            .env("HF_ENDPOINT", self.hub.endpoint())
            .env("HF_HOME", self.scratch.path().join("hf-home"))
            .env_remove("HF_TOKEN");
        command
    }

    fn stream(&self, out: &Path, extra: &[&str]) -> Output {
        self.command(out, extra).output().unwrap()
    }

    /// The rows of a local run on the same model, labelled as a streamed
    /// run labels them (model_id, and revision = the commit).
    fn local_rows(&self) -> Table {
        let out = self.out("local.csv");
        let output = common::transformer(&[
            "--model-path",
            self.local.path().to_str().unwrap(),
            "--model-id",
            REPO,
            "--revision",
            &self.repo.commit,
            "--out",
            out.to_str().unwrap(),
            "--no-gpu",
            "--quiet",
        ]);
        assert_success(&output);
        Table::read(&out)
    }

    /// Asserts the streamed rows are the local run's, but for model_path,
    /// which names the download folder.
    fn assert_rows_as_local(&self, streamed: &Path) {
        let streamed = Table::read(streamed);
        let local = self.local_rows();
        assert_eq!(streamed.columns, local.columns);
        let dir = self.model_dir().display().to_string();
        assert!(streamed.rows.iter().all(|r| r["model_path"] == dir));
        assert_eq!(without_labels(&streamed), without_labels(&local));
    }

    /// Full downloads (not header reads) of `path` in the request log.
    fn downloads_of(&self, path: &str) -> usize {
        let sha = self
            .repo
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .sha256();
        self.hub
            .requests_for(&format!("/cdn/{sha}"))
            .iter()
            .filter(|r| r.range.as_deref().is_none_or(|range| range.ends_with('-')))
            .count()
    }
}

/// Watches a folder's size (every file below it) until stopped; returns
/// the largest size and the most weight files (whole or partial) seen.
struct Watcher {
    stop: Arc<AtomicBool>,
    largest: Arc<AtomicU64>,
    most_files: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn folder_size(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut bytes, mut weights) = (0, 0);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (b, w) = folder_size(&path);
            bytes += b;
            weights += w;
        } else if let Ok(m) = entry.metadata() {
            bytes += m.len();
            let name = path.to_string_lossy();
            weights += u64::from(name.ends_with(".safetensors") || name.ends_with(".incomplete"));
        }
    }
    (bytes, weights)
}

impl Watcher {
    fn start(dir: PathBuf) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let largest = Arc::new(AtomicU64::new(0));
        let most_files = Arc::new(AtomicU64::new(0));
        let (s, l, m) = (stop.clone(), largest.clone(), most_files.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let (bytes, weights) = folder_size(&dir);
                l.fetch_max(bytes, Ordering::Relaxed);
                m.fetch_max(weights, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Watcher {
            stop,
            largest,
            most_files,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (
            self.largest.load(Ordering::Relaxed),
            self.most_files.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn six_files_stream_under_a_budget_of_two_and_a_half_and_give_the_local_rows() {
    let s = Setup::new(6, 192);
    let file = s.file_size(&shard(1, 6));
    // Room for two and a half weight files; the configs and the download's
    // bookkeeping take a few kB.
    let budget = file * 5 / 2 + 16 * 1024;
    s.hub.set_rate(4 << 20);
    let watcher = Watcher::start(s.downloads());
    let out = s.out("streamed.csv");
    let output = s.stream(&out, &["--max-disk", &budget.to_string()]);
    let (largest, most_files) = watcher.stop();
    assert_success(&output);
    assert!(
        largest <= budget,
        "the folder reached {largest} bytes, over the budget of {budget}"
    );
    assert!(
        largest > file,
        "the watcher never saw a weight file ({largest} bytes)"
    );
    assert_eq!(most_files, 2, "two files fit the budget at once");
    s.assert_rows_as_local(&out);
    // Every weight file was deleted once analysed; the configs stay.
    let left: Vec<String> = std::fs::read_dir(s.model_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(s.model_dir().join("config.json").is_file());
    for i in 1..=6 {
        assert_eq!(s.downloads_of(&shard(i, 6)), 1, "{}", shard(i, 6));
    }
    // No partial state is left beside the output.
    assert!(!s.out("streamed.csv.partial.jsonl").exists());
    assert!(!s.out("streamed.csv.partial.groups.jsonl").exists());

    // --keep-download keeps them, which the budget must then allow.
    let output = s.stream(
        &s.out("kept.csv"),
        &["--max-disk", &budget.to_string(), "--keep-download"],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("is below the") && err.contains("every weight file"),
        "{err}"
    );
    assert_success(&s.stream(&s.out("kept.csv"), &["--keep-download"]));
    assert!(s.model_dir().join(shard(6, 6)).is_file());
}

#[test]
fn a_budget_below_the_largest_file_is_refused_with_the_minimum() {
    let s = Setup::new(3, 64);
    let output = s.stream(&s.out("o.csv"), &["--max-disk", "20K"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(line.contains("--max-disk 20.0 KiB is below the"), "{err}");
    let minimum: u64 = line
        .split("give --max-disk ")
        .nth(1)
        .and_then(|t| t.split('K').next())
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("no minimum in: {line}"));
    assert!(minimum * 1024 >= s.file_size(&shard(1, 3)), "{line}");
    // Nothing but metadata was fetched; the suggested budget then works.
    assert_eq!(s.downloads_of(&shard(1, 3)), 0);
    assert!(!err.contains("panicked"));
    let output = s.stream(&s.out("o.csv"), &["--max-disk", &format!("{minimum}K")]);
    assert_success(&output);
    s.assert_rows_as_local(&s.out("o.csv"));
    // A local model is read where it is: the budget flags are refused.
    let output = common::transformer(&[
        "--model-path",
        s.local.path().to_str().unwrap(),
        "--out",
        s.out("l.csv").to_str().unwrap(),
        "--max-disk",
        "1G",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("apply when streaming from the Hub"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_connection_dropped_mid_file_is_resumed() {
    let s = Setup::new(3, 96);
    // The header read passes; the download drops.
    s.hub.fault(&shard(2, 3), Fault::Pass);
    s.hub.fault(&shard(2, 3), Fault::DropAfter(10_000));
    let out = s.out("o.csv");
    let output = s.stream(&out, &[]);
    assert_success(&output);
    s.assert_rows_as_local(&out);
    let sha = s
        .repo
        .files
        .iter()
        .find(|f| f.path == shard(2, 3))
        .unwrap()
        .sha256();
    let ranges: Vec<Option<String>> = s
        .hub
        .requests_for(&format!("/cdn/{sha}"))
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert!(
        ranges.contains(&Some("bytes=10000-".into())),
        "no resumed request: {ranges:?}"
    );
}

#[test]
fn a_killed_stream_resumes_without_downloading_what_it_analysed() {
    let s = Setup::new(6, 192);
    s.hub.set_rate(2 << 20);
    let out = s.out("o.csv");
    let ledger = s.out("o.csv.partial.groups.jsonl");
    let kept = common::kill_once_journaled(s.command(&out, &["--max-disk", "2M"]), &ledger, 2);
    assert!(kept >= 2);
    // The mock logs a request once it has sent the body: let the killed
    // run's last requests land in the log before it is cleared.
    std::thread::sleep(Duration::from_millis(300));
    s.hub.clear_log();
    let output = s.stream(&out, &["--max-disk", "2M", "--resume"]);
    assert_success(&output);

    s.assert_rows_as_local(&out);
    // The first two groups were analysed before the kill: not fetched again.
    assert_eq!(s.downloads_of(&shard(1, 6)), 0);
    assert_eq!(s.downloads_of(&shard(2, 6)), 0);
    assert_eq!(s.downloads_of(&shard(6, 6)), 1);
}

#[test]
fn streamed_shards_download_only_their_own_files_and_merge_to_the_local_rows() {
    let s = Setup::new(4, 96);
    let out = s.out("o.csv");
    for i in 0..2 {
        // Each shard in its own download folder, as on separate machines.
        let dir = s.scratch.path().join(format!("machine-{i}"));
        // Each machine its own folder, the same relative --download-dir: the
        // plan (and model_path) is the same on every machine.
        std::fs::create_dir_all(&dir).unwrap();
        let shard = format!("{i}/2");
        let mut args = vec!["--shard", &shard, "--download-dir", "downloads"];
        // The second shard starts after the branch has "moved" (the mock
        // knows no such revision): it reads the commit the plan pinned.
        if i == 1 {
            args.extend(["--revision", "moved-branch"]);
        }
        let output = s.command(&out, &args).current_dir(&dir).output().unwrap();
        assert_success(&output);
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.out("o.csv.parts/plan.json")).unwrap()).unwrap();
    // The configs were fetched before planning: the summary has them.
    assert_eq!(plan["summary"]["config"]["model_type"], "llama", "{plan}");
    let groups = plan["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "one group per file");
    let shards: Vec<u64> = groups.iter().map(|g| g[1].as_u64().unwrap()).collect();
    assert!(shards.contains(&0) && shards.contains(&1), "{shards:?}");
    for i in 1..=4 {
        assert_eq!(
            s.downloads_of(&shard(i, 4)),
            1,
            "{} fetched once in all",
            shard(i, 4)
        );
    }
    assert_success(&common::merge(&[out.to_str().unwrap(), "--quiet"]));
    // The merged rows name the download folder of the first machine's layout.
    let merged = Table::read(&out);
    let local = s.local_rows();
    assert_eq!(without_labels(&merged), without_labels(&local));
}

/// Streaming overlaps the next download with the analysis: with the mock
/// serving at a limited rate, it takes less than downloading first and
/// analysing after.
#[test]
fn the_prefetch_overlaps_downloads_with_the_analysis() {
    let s = Setup::new(6, 1024);
    let file = s.file_size(&shard(1, 6));
    // About as long to download a file as to analyse it.
    let analysis = {
        let started = Instant::now();
        s.local_rows();
        started.elapsed().as_secs_f64() / 6.0
    };
    let rate = (file as f64 / analysis.max(0.05)) as usize;
    s.hub.set_rate(rate);
    let budget = (file * 5 / 2 + 16 * 1024).to_string();

    let started = Instant::now();
    assert_success(&s.stream(&s.out("streamed.csv"), &["--max-disk", &budget]));
    let streamed = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let download = Command::new(env!("CARGO_BIN_EXE_tpa-download"))
        .args([
            "--model-id",
            REPO,
            "--out",
            s.scratch.path().join("full").to_str().unwrap(),
            "--quiet",
        ])
        .env("HF_ENDPOINT", s.hub.endpoint())
        .env("HF_HOME", s.scratch.path().join("hf-home"))
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert_success(&download);
    let dir = s.scratch.path().join("full/org/six");
    assert_success(&common::transformer(&[
        "--model-path",
        dir.to_str().unwrap(),
        "--out",
        s.out("after.csv").to_str().unwrap(),
        "--no-gpu",
        "--quiet",
    ]));
    let sequential = started.elapsed().as_secs_f64();
    eprintln!("streamed {streamed:.2} s, download then analyse {sequential:.2} s");
    assert!(
        streamed < sequential * 0.9,
        "streaming took {streamed:.2} s, download-then-analyse {sequential:.2} s \
         (analysis {analysis:.2} s per file, {rate} B/s)"
    );
}

#[test]
fn tpa_analyze_streams_too_and_gives_the_local_rows() {
    let s = Setup::new(3, 96);
    let out = s.out("streamed.csv");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tpa-analyze"));
    let output = command
        .args(["--model-id", REPO, "--out", out.to_str().unwrap()])
        .args([
            "--download-dir",
            s.downloads().to_str().unwrap(),
            "--max-disk",
            "1M",
            "--no-gpu",
            "-q",
        ])
        .env("HF_ENDPOINT", s.hub.endpoint())
        .env("HF_HOME", s.scratch.path().join("hf-home"))
        .output()
        .unwrap();
    assert_success(&output);
    let local = s.out("local.csv");
    assert_success(&common::analyze(&[
        "--model-path",
        s.local.path().to_str().unwrap(),
        "--model-id",
        REPO,
        "--revision",
        &s.repo.commit,
        "--out",
        local.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    let (streamed, local) = (Table::read(&out), Table::read(&local));
    assert_eq!(streamed.rows.len(), 6);
    assert_eq!(without_labels(&streamed), without_labels(&local));
    assert!(streamed.rows.iter().all(|r| !r["rank"].is_empty()));
}

#[test]
fn a_weight_whose_scales_lie_in_another_file_waits_for_both() {
    // Block-FP8 codes and their scales, cut into files by tensor count so
    // that some weight and its weight_scale_inv land in different files.
    let local = tempfile::tempdir().unwrap();
    let tensors = tpa_testkit::architectures::llama(
        tpa_testkit::architectures::Dims::TOY,
        Dtype::BF16,
        &Fill::Normal { seed: 5, std: 0.02 },
    );
    let scheme: tpa_testkit::quantized::Scheme = "fp8-block-128x128".parse().unwrap();
    let stored = tpa_testkit::quantized::quantize_model(&tensors, &scheme, 5).unwrap();
    tpa_testkit::quantized::write_quantized_model(
        local.path(),
        &stored,
        &scheme,
        7,
        serde_json::json!({}),
    )
    .unwrap();
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(local.path().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let split = map
        .iter()
        .filter_map(|(name, file)| Some((map.get(&format!("{}_scale_inv", name))?, file)))
        .filter(|(scale_file, file)| scale_file != file)
        .count();
    assert!(split > 0, "no weight is apart from its scales");

    let hub = MockHub::start();
    let repo = MockRepo::new(REPO, files_of(local.path()).unwrap());
    hub.add_repo(repo.clone());
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("streamed.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-transformer"))
        .args([
            "--model-id",
            REPO,
            "--out",
            out.to_str().unwrap(),
            "--no-gpu",
            "-q",
        ])
        .args([
            "--download-dir",
            scratch.path().join("dl").to_str().unwrap(),
        ])
        .env("HF_ENDPOINT", hub.endpoint())
        .env("HF_HOME", scratch.path().join("hf-home"))
        .output()
        .unwrap();
    assert_success(&output);
    let local_out = scratch.path().join("local.csv");
    assert_success(&common::transformer(&[
        "--model-path",
        local.path().to_str().unwrap(),
        "--model-id",
        REPO,
        "--revision",
        &repo.commit,
        "--out",
        local_out.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    let (streamed, local) = (Table::read(&out), Table::read(&local_out));
    assert_eq!(without_labels(&streamed), without_labels(&local));
    // Every projection was dequantized, none read as raw codes.
    let q = streamed.row("model.layers.0.self_attn.q_proj.weight");
    assert_eq!(q["quant"], "fp8-block-128x128");
    assert!(
        streamed
            .rows
            .iter()
            .all(|r| !r["param_name"].ends_with("_scale_inv"))
    );
}
