//! End-to-end tests of `tpa-download` against the mock Hub of tpa-testkit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{analyze, assert_success, stderr, stdout};
use tpa_testkit::architectures::{Dims, llama};
use tpa_testkit::mock_hub::{Access, Fault, MockFile, MockHub, MockRepo};
use tpa_testkit::{Dtype, Fill, write_model};

const REPO: &str = "org/tiny-llama";

/// A three-shard Llama-shaped model with configs, a tokenizer, a model card
/// and a PyTorch copy of the weights, as Hub repositories often have.
fn model_files() -> Vec<MockFile> {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &llama(Dims::TOY, Dtype::BF16, &Fill::Pattern),
        3,
    )
    .unwrap();
    let mut files = tpa_testkit::mock_hub::files_of(dir.path()).unwrap();
    files.push(MockFile::git("config.json", r#"{"model_type": "llama"}"#));
    files.push(MockFile::git("tokenizer.json", r#"{"version": "1.0"}"#));
    files.push(MockFile::git("README.md", "# tiny llama\n"));
    files.push(MockFile::git(".gitattributes", "*.bin filter=lfs\n"));
    files.push(MockFile::lfs("pytorch_model.bin", vec![7u8; 5000]));
    files
}

fn shard(n: usize) -> String {
    format!("model-0000{n}-of-00003.safetensors")
}

/// A mock Hub serving [`REPO`], and a scratch directory for the output and
/// for HF_HOME (so no real token is picked up).
struct Setup {
    hub: MockHub,
    files: Vec<MockFile>,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let hub = MockHub::start();
        let files = model_files();
        hub.add_repo(MockRepo::new(REPO, files.clone()));
        Setup {
            hub,
            files,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn out(&self) -> PathBuf {
        self.scratch.path().join("models")
    }

    fn model_dir(&self) -> PathBuf {
        self.out().join("org").join("tiny-llama")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpa-download"));
        command
            .args(args)
            .env("HF_ENDPOINT", self.hub.endpoint())
            .env("HF_HOME", self.scratch.path().join("hf-home"))
            .env_remove("HF_TOKEN");
        command
    }

    /// Runs tpa-download for `repo` into the scratch output directory.
    fn download(&self, repo: &str, extra: &[&str]) -> Output {
        let out = self.out();
        let mut args = vec!["--model-id", repo, "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.command(&args).output().unwrap()
    }

    fn file(&self, path: &str) -> &MockFile {
        self.files.iter().find(|f| f.path == path).unwrap()
    }

    /// The CDN requests for an LFS file.
    fn cdn_requests(&self, path: &str) -> Vec<tpa_testkit::mock_hub::Logged> {
        self.hub
            .requests_for(&format!("/cdn/{}", self.file(path).sha256()))
    }

    /// The Range header of each CDN request for an LFS file, in order.
    fn cdn_ranges(&self, path: &str) -> Vec<Option<String>> {
        self.cdn_requests(path)
            .into_iter()
            .map(|r| r.range)
            .collect()
    }

    /// Starts tpa-download into the scratch output in the background.
    fn spawn(&self, extra: &[&str]) -> std::process::Child {
        let out = self.out();
        let mut args = vec!["--model-id", REPO, "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Waits (up to 30 s) until the kept partial download of an LFS file
    /// holds `bytes`.
    fn wait_for_partial(&self, path: &str, bytes: u64) {
        let partial = self
            .model_dir()
            .join(".tpa-download")
            .join(format!("{}.incomplete", self.file(path).sha256()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < bytes {
            assert!(
                Instant::now() < deadline,
                "{path}: the partial never reached {bytes} bytes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the file landed with exactly the served bytes.
    fn assert_landed(&self, path: &str) {
        let on_disk = std::fs::read(self.model_dir().join(path)).unwrap();
        assert!(on_disk == *self.file(path).content, "{path} differs");
    }
}

/// Asserts a failed run: exit 1, one `error:` line containing every needle.
fn assert_fails_with(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr:\n{err}");
    for needle in needles {
        assert!(lines[0].contains(needle), "`{needle}` not in: {}", lines[0]);
    }
    assert!(!err.contains("panicked") && !err.contains("stack backtrace"));
}

#[test]
fn downloads_a_sharded_model_that_tpa_analyze_then_reads() {
    let s = Setup::new();
    s.hub.set_page_size(3);
    let mut command = s.command(&["--model-id", REPO, "--out", s.out().to_str().unwrap()]);
    let output = command.env("HF_TOKEN", "hf_secret").output().unwrap();
    assert_success(&output);

    // The path is the last line on stdout, for MODEL=$(tpa-download ...).
    assert_eq!(
        stdout(&output).lines().last(),
        Some(s.model_dir().to_str().unwrap())
    );
    for path in [
        &shard(1),
        &shard(2),
        &shard(3),
        "model.safetensors.index.json",
        "config.json",
        "tokenizer.json",
        "README.md",
    ] {
        s.assert_landed(path);
    }
    assert!(!s.model_dir().join("pytorch_model.bin").exists());
    assert!(!s.model_dir().join(".gitattributes").exists());
    assert!(stderr(&output).contains("skipped other weights: pytorch_model.bin"));
    assert!(!s.model_dir().join(".tpa-download").exists());

    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.model_dir().join(".tpa-download.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["commit"].as_str().unwrap().len(), 40);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 7);
    assert_eq!(
        manifest["files"][2]["sha256"].as_str(),
        Some(s.file(&shard(1)).sha256().as_str())
    );

    // The token went to the endpoint and never to the CDN host.
    let requests = s.hub.requests();
    assert!(requests.iter().any(|r| r.path.contains("/cdn/")));
    for r in &requests {
        if r.path.contains("/cdn/") {
            assert!(r.host.starts_with("localhost:"), "{r:?}");
            assert_eq!(r.authorization, None, "{r:?}");
        } else {
            assert!(r.host.starts_with("127.0.0.1:"), "{r:?}");
            assert_eq!(r.authorization.as_deref(), Some("Bearer hf_secret"));
        }
    }
    // Every file was fetched at the resolved commit, not at `main`.
    let commit = manifest["commit"].as_str().unwrap();
    assert!(
        requests
            .iter()
            .filter(|r| r.path.contains("/resolve/"))
            .all(|r| r.path.contains(&format!("/resolve/{commit}/")))
    );

    let csv = s.scratch.path().join("analysis.csv");
    let analysis = analyze(&[
        "--model-path",
        s.model_dir().to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_success(&analysis);
    let rows = csv::Reader::from_path(&csv).unwrap().records().count();
    assert_eq!(rows, llama(Dims::TOY, Dtype::BF16, &Fill::Pattern).len());
}

#[test]
fn a_rerun_transfers_nothing_and_a_copy_without_manifest_is_verified_not_fetched() {
    let s = Setup::new();
    assert_success(&s.download(REPO, &[]));
    s.hub.clear_log();
    let again = s.download(REPO, &[]);
    assert_success(&again);
    assert!(
        stderr(&again).contains("nothing to fetch"),
        "{}",
        stderr(&again)
    );
    let transfers = |s: &Setup| {
        s.hub
            .requests()
            .iter()
            .filter(|r| r.path.contains("/resolve/") || r.path.contains("/cdn/"))
            .count()
    };
    assert_eq!(transfers(&s), 0);

    // Without the manifest, files are read and checked, still not fetched.
    std::fs::remove_file(s.model_dir().join(".tpa-download.json")).unwrap();
    let checked = s.download(REPO, &[]);
    assert_success(&checked);
    assert!(stderr(&checked).contains(&format!("checking {}", shard(1))));
    assert_eq!(transfers(&s), 0);
    assert!(s.model_dir().join(".tpa-download.json").exists());

    // A file changed on disk is fetched again.
    std::fs::write(
        s.model_dir().join("config.json"),
        "{\"model_type\": \"gpt2\"}",
    )
    .unwrap();
    std::fs::remove_file(s.model_dir().join(".tpa-download.json")).unwrap();
    assert_success(&s.download(REPO, &[]));
    assert_eq!(transfers(&s), 1);
    s.assert_landed("config.json");
}

#[test]
fn a_dropped_connection_resumes_with_range() {
    let s = Setup::new();
    let size = s.file(&shard(2)).content.len();
    s.hub.fault(&shard(2), Fault::DropAfter(100_000));
    let output = s.download(REPO, &[]);
    assert_success(&output);
    s.assert_landed(&shard(2));
    let cdn = s.cdn_requests(&shard(2));
    assert_eq!(cdn.len(), 2, "{cdn:?}");
    assert_eq!(cdn[0].range, None);
    assert_eq!(cdn[1].range.as_deref(), Some("bytes=100000-"));
    // Nothing was fetched twice.
    assert_eq!(cdn.iter().map(|r| r.body_bytes).sum::<usize>(), size);
    assert!(stderr(&output).contains("retrying"));
}

#[test]
fn a_body_shorter_than_the_file_is_completed_with_range() {
    let s = Setup::new();
    s.hub.fault(&shard(1), Fault::ShortBody(5000));
    assert_success(&s.download(REPO, &[]));
    s.assert_landed(&shard(1));
    let cdn = s.cdn_requests(&shard(1));
    assert_eq!(cdn.len(), 2);
    assert_eq!(cdn[1].range.as_deref(), Some("bytes=5000-"));
}

#[test]
fn a_server_that_ignores_range_gets_the_file_fetched_from_the_start() {
    let s = Setup::new();
    s.hub.fault(&shard(3), Fault::DropAfter(4096));
    s.hub.fault(&shard(3), Fault::IgnoreRange);
    let output = s.download(REPO, &[]);
    assert_success(&output);
    s.assert_landed(&shard(3));
    assert!(stderr(&output).contains("ignored the resume request"));

    // A 206 for another range than asked is not appended: the file restarts.
    let s = Setup::new();
    s.hub.fault(&shard(3), Fault::DropAfter(4096));
    s.hub.fault(&shard(3), Fault::WrongRange);
    assert_success(&s.download(REPO, &[]));
    s.assert_landed(&shard(3));
    assert_eq!(
        s.cdn_ranges(&shard(3)),
        [None, Some("bytes=4096-".into()), None]
    );
}

#[test]
fn transient_503s_and_429s_are_retried_and_persistent_ones_give_up() {
    let s = Setup::new();
    s.hub.fault("config.json", Fault::Unavailable(2));
    let output = s.download(REPO, &[]);
    assert_success(&output);
    s.assert_landed("config.json");
    assert_eq!(s.hub.requests_for("/config.json").len(), 3);

    let s = Setup::new();
    s.hub.fault(&shard(1), Fault::RateLimited(3));
    assert_success(&s.download(REPO, &[]));
    s.assert_landed(&shard(1));
    assert_eq!(s.cdn_requests(&shard(1)).len(), 4);

    let s = Setup::new();
    s.hub.fault("tokenizer.json", Fault::Unavailable(100));
    let output = s.download(REPO, &[]);
    assert_fails_with(
        &output,
        &["tokenizer.json", "gave up after 6 attempts", "HTTP 503"],
    );
    assert!(!s.model_dir().join("tokenizer.json").exists());
}

#[test]
fn a_corrupt_file_is_deleted_and_named() {
    let s = Setup::new();
    s.hub.fault(&shard(2), Fault::FlipByte(777));
    let output = s.download(REPO, &[]);
    assert_fails_with(&output, &[&shard(2), "sha256 mismatch", "deleted"]);
    assert!(!s.model_dir().join(shard(2)).exists());
    let partials = s.model_dir().join(".tpa-download");
    let left: Vec<_> = std::fs::read_dir(&partials)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let bad = format!("{}.incomplete", s.file(&shard(2)).sha256());
    assert!(!left.iter().any(|n| *n == *bad), "{left:?}");

    // A corrupt git file is caught by its blob id.
    let s = Setup::new();
    s.hub.fault("config.json", Fault::FlipByte(3));
    assert_fails_with(
        &s.download(REPO, &[]),
        &["config.json", "git blob sha1 mismatch"],
    );
    assert!(!s.model_dir().join("config.json").exists());
}

#[test]
fn a_body_longer_than_the_file_is_refused() {
    let s = Setup::new();
    s.hub.fault(&shard(3), Fault::LongBody(10));
    let size = s.file(&shard(3)).content.len();
    let output = s.download(REPO, &[]);
    assert_fails_with(
        &output,
        &[&shard(3), "size mismatch", &format!("expected {size}")],
    );
    assert!(!s.model_dir().join(shard(3)).exists());
}

#[test]
fn a_killed_download_resumes_on_the_next_run() {
    let s = Setup::new();
    s.hub.fault(&shard(1), Fault::StallAfter(200_000));
    let mut child = s.spawn(&["--max-workers", "1"]);
    s.wait_for_partial(&shard(1), 200_000);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!s.model_dir().join(shard(1)).exists());

    s.hub.clear_log();
    assert_success(&s.download(REPO, &[]));
    s.assert_landed(&shard(1));
    assert_eq!(s.cdn_ranges(&shard(1)), [Some("bytes=200000-".into())]);
}

#[test]
fn a_second_run_on_the_same_directory_waits_for_the_first() {
    let s = Setup::new();
    s.hub.fault(&shard(1), Fault::StallAfter(100_000));
    let mut first = s.spawn(&[]);
    s.wait_for_partial(&shard(1), 100_000);
    let out = s.out();
    let second = s
        .command(&["--model-id", REPO, "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The second run plans (its listing reaches the mock), then waits
    // rather than writing the same partial file.
    let deadline = Instant::now() + Duration::from_secs(30);
    let listings = || {
        s.hub
            .requests()
            .iter()
            .filter(|r| r.path.contains("/tree/"))
            .count()
    };
    while listings() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second run never listed the files"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    first.kill().unwrap();
    first.wait().unwrap();
    let second = second.wait_with_output().unwrap();
    assert_success(&second);
    assert!(stderr(&second).contains("waiting: another tpa-download is writing"));
    s.assert_landed(&shard(1));
    // It continued the first run's partial download.
    assert_eq!(
        s.cdn_ranges(&shard(1)),
        [None, Some("bytes=100000-".into())]
    );
}

#[test]
fn each_failure_names_its_case() {
    let s = Setup::new();
    let gated_token = "hf_accepted";
    s.hub.add_repo(
        MockRepo::new("org/gated", model_files()).with_access(Access::Gated {
            token: gated_token.into(),
        }),
    );
    s.hub.add_repo(
        MockRepo::new("org/private", model_files()).with_access(Access::Private {
            token: "hf_mine".into(),
        }),
    );
    assert_fails_with(
        &s.download("org/missing", &[]),
        &["org/missing not found on http://127.0.0.1:", "token"],
    );
    assert_fails_with(&s.download("org/private", &[]), &["org/private not found"]);
    assert_fails_with(
        &s.download("org/gated", &[]),
        &[
            "org/gated is gated",
            "accept its licence",
            "/org/gated",
            "token",
        ],
    );
    assert_fails_with(
        &s.download("org/gated", &["--token", "hf_other"]),
        &["org/gated is gated and the token given has no access"],
    );
    assert_fails_with(
        &s.download(REPO, &["--revision", "v9"]),
        &["revision `v9` not found in org/tiny-llama"],
    );
    assert_fails_with(&s.download("../etc", &[]), &["not a model id"]);
    s.hub.refuse_token("hf_expired");
    assert_fails_with(
        &s.download(REPO, &["--token", "hf_expired"]),
        &["refused the token (invalid or expired)"],
    );

    // The right token works, from the flag and from $HF_HOME/token.
    assert_success(&s.download("org/private", &["--token", "hf_mine"]));
    let home = s.scratch.path().join("hf-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("token"), format!("{gated_token}\n")).unwrap();
    assert_success(&s.download("org/gated", &[]));
    // The token is never printed.
    let output = s.download("org/gated", &["--token", "hf_other"]);
    assert!(!stderr(&output).contains("hf_other") && !stdout(&output).contains("hf_other"));
}

#[test]
fn an_unreachable_endpoint_is_named() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let s = Setup::new();
    let output = s
        .command(&["--model-id", REPO, "--out", s.out().to_str().unwrap()])
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_fails_with(&output, &[&format!("cannot reach 127.0.0.1:{port}")]);
}

#[test]
fn a_file_listed_but_missing_is_named() {
    let s = Setup::new();
    let mut repo = MockRepo::new("org/ghost", vec![MockFile::git("config.json", "{}")]);
    repo.listed_only
        .push(("ghost.safetensors".into(), 10, "ab".repeat(32)));
    s.hub.add_repo(repo);
    assert_fails_with(
        &s.download("org/ghost", &[]),
        &["file `ghost.safetensors` not found in org/ghost at commit"],
    );
}

#[test]
fn names_that_escape_the_output_directory_are_refused_before_writing() {
    for bad in ["../evil.json", "sub/../../evil.json", "a\\evil.json"] {
        let s = Setup::new();
        let files = vec![
            MockFile::lfs("model.safetensors", vec![1u8; 100]),
            MockFile::git(bad, "{}"),
        ];
        s.hub.add_repo(MockRepo::new("org/evil", files));
        let output = s.download("org/evil", &[]);
        assert_fails_with(&output, &["refusing the file name", bad]);
        assert!(!s.out().exists(), "{bad}: something was written");
        assert!(!s.scratch.path().join("evil.json").exists());
    }
}

#[test]
fn a_repository_without_safetensors_says_what_it_has() {
    let s = Setup::new();
    s.hub.add_repo(MockRepo::new(
        "org/old",
        vec![
            MockFile::git("config.json", "{}"),
            MockFile::lfs("pytorch_model.bin", vec![0u8; 2048]),
        ],
    ));
    assert_fails_with(
        &s.download("org/old", &[]),
        &[
            "no safetensors or GGUF weights",
            "pytorch_model.bin (2.0 KiB)",
            "--include",
        ],
    );
    // Asked for by name, the .bin comes.
    assert_success(&s.download("org/old", &["--include", "*.bin"]));
    assert!(s.out().join("org/old/pytorch_model.bin").exists());
    assert!(!s.out().join("org/old/config.json").exists());
}

#[test]
fn include_and_exclude_choose_the_files() {
    let s = Setup::new();
    let output = s.download(REPO, &["--include", "*.json", "--exclude", "tokenizer*"]);
    assert_success(&output);
    let mut names: Vec<String> = std::fs::read_dir(s.model_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".tpa-download.json",
            ".tpa-download.lock",
            "config.json",
            "model.safetensors.index.json"
        ]
    );
}

#[test]
fn disk_space_is_checked_before_any_transfer() {
    let s = Setup::new();
    let mut repo = MockRepo::new("org/huge", vec![MockFile::git("config.json", "{}")]);
    repo.listed_only
        .push(("model.safetensors".into(), 1 << 60, "cd".repeat(32)));
    s.hub.add_repo(repo);
    let output = s.download("org/huge", &[]);
    assert_fails_with(&output, &["not enough disk space", "1024.0 PiB more"]);
    assert!(
        !s.hub
            .requests()
            .iter()
            .any(|r| r.path.contains("/resolve/"))
    );
}

#[test]
fn dry_run_lists_the_plan_and_writes_nothing() {
    let s = Setup::new();
    let output = s.download(REPO, &["--dry-run"]);
    assert_success(&output);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&s.model_dir().to_str().unwrap()));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("fetch\t") && l.ends_with(&shard(1)))
    );
    assert!(lines.contains(&"skip	4.9 KiB	pytorch_model.bin"));
    assert!(!s.out().exists());
}

#[test]
fn help_teaches_and_the_original_flags_still_work() {
    let s = Setup::new();
    let help = s.command(&["--help"]).output().unwrap();
    assert_success(&help);
    for needle in [
        "--model-id",
        "--include",
        "HF_ENDPOINT",
        "resumes",
        "Examples:",
    ] {
        assert!(stdout(&help).contains(needle), "{needle}");
    }
    let out = s.out();
    let output = s
        .command(&[
            "--model_id",
            REPO,
            "--out",
            out.to_str().unwrap(),
            "--revision",
            "main",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(Path::new(&s.model_dir()).join(shard(1)).exists());
}

#[test]
fn a_repository_with_two_copies_of_its_weights_is_fetched_once() {
    // Mistral's layout: consolidated.safetensors beside the indexed shards.
    let s = Setup::new();
    let mut files = model_files();
    files.push(MockFile::lfs("consolidated.safetensors", vec![9u8; 4000]));
    s.hub.add_repo(MockRepo::new("org/dual", files));
    let dir = s.out().join("org").join("dual");

    let output = s.download("org/dual", &[]);
    assert_success(&output);
    assert!(!dir.join("consolidated.safetensors").exists());
    for n in 1..=3 {
        assert!(dir.join(shard(n)).exists(), "{}", shard(n));
    }
    let err = stderr(&output);
    assert!(
        err.contains("does not name") && err.contains("consolidated.safetensors"),
        "{err}"
    );
    assert!(s.hub.requests_for("consolidated.safetensors").is_empty());

    // Asked for, it is fetched.
    let output = s.download("org/dual", &["--include", "consolidated.safetensors"]);
    assert_success(&output);
    assert!(dir.join("consolidated.safetensors").exists());
}

/// Tensor name → (dtype, shape, bytes) as the safetensors crate reads a file.
fn header_of(content: &[u8]) -> Vec<(String, String, String, u64)> {
    let tensors = safetensors::SafeTensors::deserialize(content).unwrap();
    let mut out: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape: Vec<String> = view.shape().iter().map(|d| d.to_string()).collect();
            (
                name,
                format!("{:?}", view.dtype()),
                format!("[{}]", shape.join(", ")),
                view.data().len() as u64,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn list_tensors_reads_each_header_with_one_range_request() {
    let s = Setup::new();
    let table = s.scratch.path().join("tensors.csv");
    let output = s
        .command(&[
            "--model-id",
            REPO,
            "--list-tensors",
            "--out",
            table.to_str().unwrap(),
            "--units-per-second",
            "1e9",
            "--target-hours",
            "0.000001",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let err = stderr(&output);
    assert!(
        err.contains("3 safetensors files") && err.contains("3 header requests"),
        "{err}"
    );
    assert!(
        err.contains("planned wall time with --shard: 1 machine"),
        "{err}"
    );
    assert!(err.contains("--target-hours 0.000001: "), "{err}");

    // Every tensor of every shard, as the safetensors crate reads the files.
    let rows = common::Table::read(&table);
    let mut expected = Vec::new();
    for n in 1..=3 {
        for (name, dtype, shape, bytes) in header_of(&s.file(&shard(n)).content) {
            let row = rows.row(&name);
            assert_eq!(row["dtype"], dtype, "{name}");
            assert_eq!(row["shape"], shape, "{name}");
            assert_eq!(row["shard"], shard(n), "{name}");
            assert_eq!(row["nbytes"], bytes.to_string(), "{name}");
            expected.push(name);
        }
        // One ranged read of the start of the file, nothing more.
        let size = s.file(&shard(n)).content.len();
        let ranges = s.cdn_ranges(&shard(n));
        assert_eq!(
            ranges,
            [Some(format!("bytes=0-{}", size.min(100_000) - 1))],
            "{}",
            shard(n)
        );
        let served: usize = s.cdn_requests(&shard(n)).iter().map(|r| r.body_bytes).sum();
        assert!(served <= 100_000, "{served} bytes of {}", shard(n));
    }
    assert_eq!(rows.rows.len(), expected.len());
    // Nothing was downloaded.
    assert!(!s.model_dir().exists());
    let q = rows.row("model.layers.0.self_attn.q_proj.weight");
    let (m, n) = (q["shape"].clone(), q["cost"].clone());
    assert!(m.starts_with('['));
    assert!(n.parse::<u64>().unwrap() > 0);
    assert_eq!(q["block_type"], "q_proj");
    assert_eq!(q["layer_index"], "0");
}

#[test]
fn a_header_beyond_the_first_read_takes_a_second_range_and_a_200_is_refused() {
    // 150 kB of metadata: the header does not fit the first 100 kB read.
    let data = vec![0u8; 4 * 6];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &data).unwrap();
    let metadata = std::collections::HashMap::from([("note".to_string(), "x".repeat(150_000))]);
    let content = safetensors::serialize([("w", view)], Some(metadata)).unwrap();
    let header_len = u64::from_le_bytes(content[..8].try_into().unwrap());
    let hub = MockHub::start();
    let file = MockFile::lfs("model.safetensors", content);
    let sha = file.sha256();
    hub.add_repo(MockRepo::new(
        "org/big-header",
        vec![file, MockFile::git("config.json", "{}")],
    ));
    let scratch = tempfile::tempdir().unwrap();
    let list = |extra: &[&str]| {
        let mut args = vec![
            "--model-id",
            "org/big-header",
            "--list-tensors",
            "--units-per-second",
            "1e9",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_tpa-download"))
            .args(&args)
            .env("HF_ENDPOINT", hub.endpoint())
            .env("HF_HOME", scratch.path())
            .env_remove("HF_TOKEN")
            .output()
            .unwrap()
    };
    let output = list(&[]);
    assert_success(&output);
    // CSV on stdout without --out.
    assert!(stdout(&output).starts_with("param_name,dtype,shape,shard,nbytes,"));
    assert!(stdout(&output).contains("\nw,F32,\"[2, 3]\",model.safetensors,24,"));
    let ranges: Vec<_> = hub
        .requests_for(&format!("/cdn/{sha}"))
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        [
            Some("bytes=0-99999".to_string()),
            Some(format!("bytes=8-{}", header_len + 7))
        ]
    );

    hub.fault("model.safetensors", Fault::IgnoreRange);
    let output = list(&[]);
    assert_fails_with(
        &output,
        &["model.safetensors", "206 expected", "byte ranges"],
    );
}

#[test]
fn list_tensors_plans_a_layout_served_as_headers_alone() {
    // A header-only layout (as scripts/plan-deepseek.sh builds DeepSeek-V3's):
    // the files have their full length, the data is a hole.
    let dir = tempfile::tempdir().unwrap();
    let mut tensors =
        tpa_testkit::architectures::moe(Dims::TOY, 8, 64, Dtype::BF16, &Fill::Pattern);
    // And one stacked expert tensor, as gpt-oss stores them.
    tensors.push(tpa_testkit::TensorSpec::new(
        "model.layers.1.mlp.experts.down_proj",
        Dtype::BF16,
        &[4, 32, 16],
        Fill::Pattern,
    ));
    let paths = tpa_testkit::write_model_headers(dir.path(), &tensors, 3).unwrap();
    assert_eq!(paths.len(), 3);
    let mut files = Vec::new();
    let mut total = 0;
    for path in &paths {
        let size = std::fs::metadata(path).unwrap().len() as usize;
        total += size;
        let bytes = std::fs::read(path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let name = path.file_name().unwrap().to_str().unwrap();
        files.push(MockFile::lfs_start(
            name,
            bytes[..8 + header_len].to_vec(),
            size,
        ));
    }
    let hub = MockHub::start();
    hub.add_repo(MockRepo::new("org/layout", files));
    let scratch = tempfile::tempdir().unwrap();
    let table = scratch.path().join("t.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-download"))
        .args([
            "--model-id",
            "org/layout",
            "--list-tensors",
            "--units-per-second",
            "1e9",
        ])
        .args(["--out", table.to_str().unwrap(), "--target-hours", "1"])
        .env("HF_ENDPOINT", hub.endpoint())
        .env("HF_HOME", scratch.path())
        .output()
        .unwrap();
    assert_success(&output);
    let rows = common::Table::read(&table);
    assert_eq!(rows.rows.len(), tensors.len());
    let mut listed = 0;
    for t in &tensors {
        let row = rows.row(&t.name);
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            row["shape"],
            format!("[{}]", shape.join(", ")),
            "{}",
            t.name
        );
        assert_eq!(row["nbytes"], (t.numel() * 2).to_string(), "{}", t.name);
        listed += t.numel() * 2;
    }
    // The shards hold every byte of the layout, and nothing else.
    let headers: usize = paths
        .iter()
        .map(|p| {
            8 + u64::from_le_bytes(std::fs::read(p).unwrap()[..8].try_into().unwrap()) as usize
        })
        .sum();
    assert_eq!(total, listed + headers);
    // Stacked experts count one matrix each.
    assert_eq!(
        rows.row("model.layers.1.mlp.experts.down_proj")["matrices"],
        "4"
    );
    assert!(
        stderr(&output).contains("(3 more matrices as stacked experts split)"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("3 header requests"),
        "{}",
        stderr(&output)
    );
}
