//! Bad input gets one clear error naming the file (and tensor), exit code 1,
//! no panic, and no output file.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tpa_testkit::architectures::{Dims, llama};
use tpa_testkit::{Dtype, Fill, raw_safetensors, write_model};

struct Case {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::create_dir_all(&model).unwrap();
        Case { dir, model }
    }

    fn with_file(name: &str, bytes: &[u8]) -> Case {
        let case = Case::new();
        std::fs::write(case.model.join(name), bytes).unwrap();
        case
    }

    fn good_model(shards: usize) -> Case {
        let case = Case::new();
        write_model(
            &case.model,
            &llama(Dims::TOY, Dtype::F32, &Fill::Pattern),
            shards,
        )
        .unwrap();
        case
    }

    /// Runs tpa-analyze on the model, expects failure, returns stderr.
    fn fails(&self) -> String {
        let out_dir = self.dir.path().join("out");
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("params.csv");
        let output = analyze(&[
            "--model-path",
            self.model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "stderr:\n{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            files_in(&out_dir).is_empty(),
            "output left behind: {:?}",
            files_in(&out_dir)
        );
        err
    }
}

fn assert_mentions(err: &str, needles: &[&str]) {
    for needle in needles {
        assert!(err.contains(needle), "error lacks {needle:?}:\n{err}");
    }
}

#[test]
fn truncated_shard() {
    let case = Case::good_model(1);
    let file = case.model.join("model.safetensors");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let err = case.fails();
    // The last tensor in storage order is the one cut short.
    assert_mentions(
        &err,
        &["model.safetensors", "tensor model.norm.weight", "truncated"],
    );
}

#[test]
fn header_length_larger_than_the_file() {
    let mut bytes = 10_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
    let err = Case::with_file("model.safetensors", &bytes).fails();
    assert_mentions(
        &err,
        &[
            "model.safetensors",
            "header length 10000 bytes is larger than the rest of the file",
        ],
    );
}

#[test]
fn absurd_header_length() {
    let mut bytes = (u64::MAX / 3).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 64]);
    let err = Case::with_file("model.safetensors", &bytes).fails();
    assert_mentions(&err, &["model.safetensors", "absurd"]);
}

#[test]
fn file_too_short_for_a_header() {
    let err = Case::with_file("model.safetensors", b"abc").fails();
    assert_mentions(&err, &["model.safetensors", "3 bytes"]);
}

#[test]
fn invalid_header_json() {
    let err = Case::with_file("model.safetensors", &raw_safetensors("{\"w\": [1, 2", &[])).fails();
    assert_mentions(&err, &["model.safetensors", "not valid safetensors JSON"]);
}

#[test]
fn unknown_dtype() {
    let header = r#"{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#;
    let err = Case::with_file("model.safetensors", &raw_safetensors(header, &[0; 4])).fails();
    assert_mentions(&err, &["model.safetensors", "F12"]);
}

#[test]
fn offsets_outside_the_data() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[16],"data_offsets":[8,72]}}"#;
    let err = Case::with_file("model.safetensors", &raw_safetensors(header, &[0; 40])).fails();
    assert_mentions(
        &err,
        &["model.safetensors", "tensor b", "[8, 72]", "40 bytes"],
    );
}

#[test]
fn overlapping_offsets() {
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#;
    let err = Case::with_file("model.safetensors", &raw_safetensors(header, &[0; 24])).fails();
    assert_mentions(&err, &["model.safetensors", "tensor b", "overlap tensor a"]);
}

#[test]
fn shape_and_dtype_disagree_with_the_byte_range() {
    let header = r#"{"w":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,12]}}"#;
    let err = Case::with_file("model.safetensors", &raw_safetensors(header, &[0; 12])).fails();
    assert_mentions(
        &err,
        &["model.safetensors", "tensor w", "needs 24 bytes", "hold 12"],
    );
}

#[test]
fn trailing_bytes_after_the_last_tensor() {
    let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let err = Case::with_file("model.safetensors", &raw_safetensors(header, &[0; 20])).fails();
    assert_mentions(
        &err,
        &["model.safetensors", "end at data byte 8", "20 data bytes"],
    );
}

#[test]
fn missing_model_path() {
    let case = Case::new();
    let missing = Case {
        model: case.model.join("nope"),
        ..case
    };
    let err = missing.fails();
    assert_mentions(&err, &["nope", "does not exist"]);
}

#[test]
fn index_names_a_missing_shard() {
    let case = Case::good_model(2);
    std::fs::remove_file(case.model.join("model-00002-of-00002.safetensors")).unwrap();
    let err = case.fails();
    assert_mentions(
        &err,
        &[
            "model.safetensors.index.json",
            "model-00002-of-00002.safetensors",
            "does not exist",
        ],
    );
}

#[test]
fn index_maps_a_tensor_to_a_shard_without_it() {
    let case = Case::good_model(2);
    let index_path = case.model.join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["weight_map"]["model.layers.0.self_attn.q_proj.weight"] =
        "model-00002-of-00002.safetensors".into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let err = case.fails();
    assert_mentions(
        &err,
        &[
            "tensor model.layers.0.self_attn.q_proj.weight",
            "model-00002-of-00002.safetensors",
        ],
    );
}

#[test]
fn index_may_not_point_outside_the_model() {
    let case = Case::good_model(1);
    std::fs::write(
        case.model.join("model.safetensors.index.json"),
        r#"{"weight_map": {"w": "../../etc/passwd"}}"#,
    )
    .unwrap();
    assert_mentions(&case.fails(), &["outside the model directory"]);
}

#[test]
fn directory_without_safetensors_points_at_models_below_it() {
    // tpa-analyze and tpa-transformer analyse such a folder model by model
    // (tests/folders.rs); tpa-embedding reads one model and says where they are.
    let case = Case::new();
    write_model(
        &case.model.join("Org/Name"),
        &llama(Dims::TOY, Dtype::F32, &Fill::Pattern),
        1,
    )
    .unwrap();
    let out = case.dir.path().join("e.csv");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-embedding"))
        .args([
            "--model-path",
            case.model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_mentions(&stderr(&output), &["no .safetensors files", "Org/Name"]);
}

#[test]
fn pytorch_only_directory_says_so() {
    let err = Case::with_file("pytorch_model.bin", b"pickle").fails();
    assert_mentions(&err, &["no .safetensors files", "PyTorch .bin"]);
}

#[test]
fn failure_leaves_an_existing_output_untouched() {
    let case = Case::with_file("model.safetensors", b"garbage!garbage!");
    let out = case.dir.path().join("keep.csv");
    std::fs::write(&out, "previous results\n").unwrap();
    let output = analyze(&[
        "--model-path",
        case.model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous results\n");
}

#[test]
fn output_path_that_is_a_directory() {
    let case = Case::good_model(1);
    let out = case.dir.path().to_str().unwrap();
    let output = analyze(&[
        "--model-path",
        case.model.to_str().unwrap(),
        "--out",
        out,
        "--format",
        "csv",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_mentions(&stderr(&output), &["is a directory"]);
}

#[test]
fn write_failure_removes_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target: &Path = &dir.path().join("out.csv");
    let result = tpa_core::writers::write_atomically(target, |w| {
        w.write_all(b"partial")?;
        Err(std::io::Error::from_raw_os_error(28)) // ENOSPC, as from a full disk
    });
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("out.csv") && message.contains("No space left"),
        "{message}"
    );
    assert!(files_in(dir.path()).is_empty());
}
