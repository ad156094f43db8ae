//! GGUF models from the (mock) Hub: tpa-download picks one model of a
//! repository of several, lists its tensors from Range-read headers, and
//! tpa-analyze / tpa-transformer stream a split set one file at a time (and
//! split between shards) to the rows of a local run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Table, assert_success, stderr, stdout, workspace};
use serde_json::Value;
use tpa_testkit::gguf::{GgufTensor, GgufValue, gguf_bytes};
use tpa_testkit::mock_hub::{MockFile, MockHub, MockRepo};

const REPO: &str = "org/tiny-moe-GGUF";
const SPLITS: [&str; 3] = [
    "tiny-moe-00001-of-00003.gguf",
    "tiny-moe-00002-of-00003.gguf",
    "tiny-moe-00003-of-00003.gguf",
];

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures/gguf").join(path)).unwrap()
}

/// The mock Hub with a repository of two GGUF models, the split qwen3moe
/// set and a single Q8_0 llama file, as GGUF repositories hold one model in
/// several quantizations.
struct Setup {
    hub: MockHub,
    repo: MockRepo,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let hub = MockHub::start();
        let mut files = vec![
            MockFile::git("README.md", "# tiny-moe GGUF\n"),
            MockFile::lfs("llama-Q8_0.gguf", fixture("llama/model.Q8_0.gguf")),
        ];
        files.extend(SPLITS.map(|s| MockFile::lfs(s, fixture(&format!("moe/{s}")))));
        let repo = MockRepo::new(REPO, files);
        hub.add_repo(repo.clone());
        Setup {
            hub,
            repo,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    fn command(&self, bin: &str, args: &[&str]) -> Command {
        let mut command = Command::new(bin);
        command
            .args(args)
            .env("HF_ENDPOINT", self.hub.endpoint())
            .env("HF_HOME", self.path("hf-home"))
            .env_remove("HF_TOKEN");
        command
    }

    /// tpa-download into `models/` (unless `args` give another --out).
    fn download(&self, args: &[&str]) -> Output {
        let out = self.path("models");
        let mut all = args.to_vec();
        if !args.contains(&"--out") {
            all.extend(["--out", out.to_str().unwrap()]);
        }
        self.command(env!("CARGO_BIN_EXE_tpa-download"), &all)
            .output()
            .unwrap()
    }

    /// `tpa-download --list-tensors` of `repo` into `list`, which succeeds.
    fn list_tensors(&self, repo: &str, list: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["--model-id", repo, "--list-tensors"];
        args.extend(["--out", list.to_str().unwrap(), "--units-per-second", "1e9"]);
        args.extend(extra);
        let output = self.download(&args);
        assert_success(&output);
        output
    }

    /// `bin` streaming REPO into `downloads` (relative to `cwd`).
    fn stream(&self, bin: &str, out: &Path, cwd: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["--model-id", REPO, "--out", out.to_str().unwrap()];
        args.extend(["--download-dir", "downloads", "--no-gpu", "-q"]);
        args.extend(extra);
        self.command(bin, &args).current_dir(cwd).output().unwrap()
    }

    /// Full downloads (not header reads) of `path`.
    fn downloads_of(&self, path: &str) -> usize {
        let file = self.repo.files.iter().find(|f| f.path == path).unwrap();
        self.hub
            .requests_for(&format!("/cdn/{}", file.sha256()))
            .iter()
            .filter(|r| r.range.as_deref().is_none_or(|range| range.ends_with('-')))
            .count()
    }

    fn size(&self, path: &str) -> u64 {
        let file = self.repo.files.iter().find(|f| f.path == path).unwrap();
        file.size() as u64
    }

    /// `bin` on the local split set, labelled as a streamed run is.
    fn local(&self, bin: &str, out: &Path) {
        let model = workspace().join("tests/fixtures/gguf/moe").join(SPLITS[0]);
        let output = Command::new(bin)
            .args(["--model-path", model.to_str().unwrap()])
            .args(["--model-id", REPO, "--revision", &self.repo.commit])
            .args(["--out", out.to_str().unwrap(), "--no-gpu", "-q"])
            .output()
            .unwrap();
        assert_success(&output);
    }
}

/// Rows without timings and model_path (the local and the download folder
/// differ).
fn comparable(t: &Table) -> Vec<Vec<(String, String)>> {
    common::without_timing(t)
        .into_iter()
        .map(|row| row.into_iter().filter(|(k, _)| k != "model_path").collect())
        .collect()
}

/// The rows of a JSON output without what differs between a local and a
/// streamed run (model_path, timings).
fn json_rows(output: &Value) -> Vec<serde_json::Map<String, Value>> {
    let rows = output["tensors"].as_array().unwrap();
    rows.iter()
        .map(|r| {
            let mut r = r.as_object().unwrap().clone();
            for key in ["model_path", "seconds", "created_at"] {
                r.remove(key);
            }
            r
        })
        .collect()
}

#[test]
fn tpa_download_takes_the_gguf_model_named_and_lists_its_tensors() {
    let s = Setup::new();
    // Two models: the default cannot choose, and says how to.
    let output = s.download(&["--model-id", REPO]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    for part in [
        "several GGUF models",
        "llama-Q8_0.gguf (",
        "tiny-moe-*-of-00003.gguf (",
        "--gguf NAME",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let output = s.download(&["--model-id", REPO, "--gguf", "IQ2"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no GGUF model of org/tiny-moe-GGUF matches `IQ2`"));

    // A part of the name picks one (case aside); the card comes along, the
    // other model is listed as left out.
    let output = s.download(&["--model-id", REPO, "--gguf", "q8_0"]);
    assert_success(&output);
    let dir = PathBuf::from(stdout(&output).lines().last().unwrap());
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".tpa-download"))
        .collect();
    got.sort();
    assert_eq!(got, ["README.md", "llama-Q8_0.gguf"]);
    assert!(stderr(&output).contains("skipped other weights: tiny-moe-00001-of-00003.gguf"));
    // What it fetched is the model: tpa-analyze reads the folder.
    let out = s.path("q8.csv");
    let output = common::analyze(&[
        "--model-path",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_success(&output);
    assert_eq!(
        Table::read(&out).row("blk.0.attn_q.weight")["dtype"],
        "q8_0"
    );

    // --list-tensors reads the three headers only, and lists the
    // dequantized shapes with their ggml types.
    s.hub.clear_log();
    let list = s.path("list.csv");
    let output = s.list_tensors(REPO, &list, &["--gguf", "tiny-moe"]);
    assert!(
        stderr(&output).contains("3 GGUF files") && stderr(&output).contains("14 tensors"),
        "{}",
        stderr(&output)
    );
    for split in SPLITS {
        assert_eq!(s.downloads_of(split), 0, "{split} was downloaded");
    }
    let table = Table::read(&list);
    assert_eq!(table.rows.len(), 14);
    let gate = table.row("blk.0.ffn_gate_exps.weight");
    assert_eq!(gate["dtype"], "q4_k");
    assert_eq!(gate["shape"], "[4, 32, 256]");
    assert_eq!(gate["matrices"], "4");
    assert_eq!(table.row("token_embd.weight")["shard"], SPLITS[0]);
}

#[test]
fn a_repository_with_one_gguf_model_gets_it_without_asking() {
    let s = Setup::new();
    s.hub.add_repo(MockRepo::new(
        "org/one-GGUF",
        vec![
            MockFile::git("config.json", "{}"),
            MockFile::lfs("types.gguf", fixture("types.gguf")),
        ],
    ));
    let output = s.download(&["--model-id", "org/one-GGUF"]);
    assert_success(&output);
    let dir = PathBuf::from(stdout(&output).lines().last().unwrap());
    assert!(dir.join("types.gguf").is_file());
    // The GGUF file holds config and tokenizer: nothing else is fetched.
    assert!(!dir.join("config.json").exists());
}

#[test]
fn a_split_gguf_model_streams_one_file_at_a_time_to_the_local_rows() {
    let s = Setup::new();
    let largest = SPLITS.iter().map(|f| s.size(f)).max().unwrap();
    // Room for the largest file and the bookkeeping, not for the two
    // largest at once.
    let budget = (largest + 16 * 1024).to_string();
    let analyze = env!("CARGO_BIN_EXE_tpa-analyze");
    let out = s.path("streamed.json");
    let output = s.stream(
        analyze,
        &out,
        s.scratch.path(),
        &["--gguf", "tiny-moe", "--max-disk", &budget],
    );
    assert_success(&output);
    for split in SPLITS {
        assert_eq!(s.downloads_of(split), 1, "{split}");
        assert!(
            !s.path("downloads/org/tiny-moe-GGUF").join(split).exists(),
            "{split} kept"
        );
    }
    assert_eq!(s.downloads_of("llama-Q8_0.gguf"), 0);
    let local = s.path("local.json");
    s.local(analyze, &local);
    let (streamed, local): (Value, Value) = (
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap(),
        serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap(),
    );
    // The summary's facts come from the first file's header, read before
    // any download; the tensors of the later files keep their HF names.
    for key in ["config", "quantization"] {
        assert_eq!(streamed["summary"][key], local["summary"][key], "{key}");
    }
    assert_eq!(streamed["summary"]["config"]["architecture"], "qwen3moe");
    let (a, b) = (json_rows(&streamed), json_rows(&local));
    assert_eq!(a.len(), 14);
    assert_eq!(a, b);
    let q = a
        .iter()
        .find(|r| r["param_name"] == "blk.1.attn_q.weight")
        .unwrap();
    assert_eq!(q["hf_name"], "model.layers.1.self_attn.q_proj.weight");

    // The budget is checked against the largest file before any download.
    let output = s.stream(
        analyze,
        &s.path("o.json"),
        s.scratch.path(),
        &["--gguf", "tiny-moe", "--max-disk", "40K"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is below the"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn streamed_gguf_shards_merge_to_the_rows_of_a_local_run() {
    let s = Setup::new();
    let transformer = env!("CARGO_BIN_EXE_tpa-transformer");
    let out = s.path("o.csv");
    for i in 0..2 {
        let machine = s.path(&format!("machine-{i}"));
        std::fs::create_dir_all(&machine).unwrap();
        let shard = format!("{i}/2");
        let output = s.stream(
            transformer,
            &out,
            &machine,
            &["--gguf", "tiny-moe", "--shard", &shard],
        );
        assert_success(&output);
    }
    // Each file went to one machine only.
    for split in SPLITS {
        assert_eq!(s.downloads_of(split), 1, "{split}");
    }
    assert_success(&common::merge(&[out.to_str().unwrap(), "--quiet"]));
    let local = s.path("local.csv");
    s.local(transformer, &local);
    let (merged, local) = (Table::read(&out), Table::read(&local));
    // The 14 tensors, the 4 experts of each of the 4 stacked ones in place
    // of the stacked tensor.
    assert_eq!(merged.rows.len(), 26);
    assert_eq!(comparable(&merged), comparable(&local));
}

#[test]
fn a_gguf_header_longer_than_the_first_read_is_read_in_more_requests() {
    // A vocabulary of 300 000 tokens puts the tensor infos past the first
    // 4 MiB read, as a real large-vocabulary model's header does.
    let tokens: Vec<String> = (0..300_000).map(|i| format!("token-{i:07}")).collect();
    let weights: Vec<f32> = (0..64 * 32).map(|i| (i % 7) as f32 - 3.0).collect();
    let bytes = gguf_bytes(
        &[
            ("general.architecture", GgufValue::String("llama".into())),
            ("tokenizer.ggml.tokens", GgufValue::Strings(tokens)),
        ],
        &[GgufTensor::f32("blk.0.attn_v.weight", 64, 32, &weights)],
        32,
    );
    assert!(bytes.len() > 4 << 20);
    let s = Setup::new();
    s.hub.add_repo(MockRepo::new(
        "org/big-vocab",
        vec![MockFile::lfs("m.gguf", bytes)],
    ));
    let list = s.path("list.csv");
    let output = s.list_tensors("org/big-vocab", &list, &[]);
    assert!(
        stderr(&output).contains("1 GGUF files") && stderr(&output).contains("2 header requests"),
        "{}",
        stderr(&output)
    );
    let table = Table::read(&list);
    assert_eq!(table.row("blk.0.attn_v.weight")["shape"], "[64, 32]");
}

#[test]
fn a_damaged_gguf_header_on_the_hub_fails_before_any_download_naming_the_file() {
    let s = Setup::new();
    let mut bytes = fixture("llama/model.Q8_0.gguf");
    // The tensor count claims more tensors than the file could hold.
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let bad = MockFile::lfs("bad.Q8_0.gguf", bytes);
    let cdn = format!("/cdn/{}", bad.sha256());
    s.hub.add_repo(MockRepo::new("org/bad-GGUF", vec![bad]));
    let list = s.path("list.csv");
    let output = s.download(&[
        "--model-id",
        "org/bad-GGUF",
        "--list-tensors",
        "--out",
        list.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("reading the GGUF header of bad.Q8_0.gguf in org/bad-GGUF")
            && err.contains("the tensor count at byte 8"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !list.exists());
    let out = s.path("o.csv");
    let analyze = env!("CARGO_BIN_EXE_tpa-analyze");
    let command = s.command(
        analyze,
        &["--model-id", "org/bad-GGUF", "--out", out.to_str().unwrap()],
    );
    let output = { command }.current_dir(s.scratch.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("bad.Q8_0.gguf"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists());
    let reads = s.hub.requests_for(&cdn);
    assert!(
        !reads.is_empty()
            && reads
                .iter()
                .all(|r| r.range.as_deref() == Some("bytes=0-87583")),
        "{reads:?}"
    );
}
