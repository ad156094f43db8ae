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

// GGUF files: each lie in the header is an error naming the file (and the
// tensor, where one is at fault).

use tpa_testkit::gguf::{GgufTensor, GgufValue, gguf_bytes};

fn gguf_tensors() -> Vec<GgufTensor> {
    let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
    vec![
        GgufTensor::f32("blk.0.attn_q.weight", 8, 8, &values),
        GgufTensor::f32("blk.0.attn_k.weight", 8, 8, &values),
    ]
}

fn gguf_case(tensors: &[GgufTensor]) -> Vec<u8> {
    gguf_bytes(
        &[("general.architecture", GgufValue::String("llama".into()))],
        tensors,
        32,
    )
}

fn gguf_fails(bytes: &[u8]) -> String {
    Case::with_file("model.gguf", bytes).fails()
}

#[test]
fn gguf_truncated_file() {
    let mut bytes = gguf_case(&gguf_tensors());
    bytes.truncate(bytes.len() - 10);
    let err = gguf_fails(&bytes);
    assert_mentions(
        &err,
        &["model.gguf", "tensor blk.0.attn_k.weight", "truncated"],
    );
}

#[test]
fn gguf_truncated_header() {
    let bytes = gguf_case(&gguf_tensors());
    let err = gguf_fails(&bytes[..40]);
    assert_mentions(&err, &["model.gguf", "not a valid GGUF file", "truncated"]);
}

#[test]
fn gguf_bad_magic_and_versions() {
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[..4].copy_from_slice(b"GGUG");
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "GGUF magic"]);
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[4..8].copy_from_slice(&7u32.to_le_bytes());
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "version 7"]);
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "big-endian"]);
}

#[test]
fn gguf_absurd_counts_and_string_lengths() {
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "tensor count"]);
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[16..24].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "metadata count"]);
    // The first key's length.
    let mut bytes = gguf_case(&gguf_tensors());
    bytes[24..32].copy_from_slice(&(u64::MAX - 5).to_le_bytes());
    assert_mentions(
        &gguf_fails(&bytes),
        &["model.gguf", "metadata key 0", "claims"],
    );
}

#[test]
fn gguf_offset_outside_the_file() {
    let mut tensors = gguf_tensors();
    tensors[1].offset = Some(1 << 20);
    let err = gguf_fails(&gguf_case(&tensors));
    assert_mentions(
        &err,
        &[
            "model.gguf",
            "tensor blk.0.attn_k.weight",
            "outside the data section",
        ],
    );
}

#[test]
fn gguf_unaligned_and_overlapping_offsets() {
    let mut tensors = gguf_tensors();
    tensors[1].offset = Some(4);
    let err = gguf_fails(&gguf_case(&tensors));
    assert_mentions(
        &err,
        &[
            "model.gguf",
            "blk.0.attn_k.weight",
            "not a multiple of the alignment 32",
        ],
    );
    let mut tensors = gguf_tensors();
    tensors[1].offset = Some(0);
    let err = gguf_fails(&gguf_case(&tensors));
    assert_mentions(&err, &["model.gguf", "overlap"]);
}

#[test]
fn gguf_unknown_and_refused_types() {
    for (id, needle) in [
        (99, "unknown ggml type 99"),
        (9, "q8_1"),
        (15, "q8_k"),
        (4, "unknown ggml type 4"),
    ] {
        let mut tensors = gguf_tensors();
        tensors[1].ggml_type = id;
        let err = gguf_fails(&gguf_case(&tensors));
        assert_mentions(&err, &["model.gguf", "tensor blk.0.attn_k.weight", needle]);
    }
}

#[test]
fn gguf_rows_that_do_not_fill_blocks() {
    let mut tensors = gguf_tensors();
    // Q4_0 blocks hold 32 elements; rows of 8 cannot be stored.
    tensors[1].ggml_type = 2;
    let err = gguf_fails(&gguf_case(&tensors));
    assert_mentions(
        &err,
        &[
            "model.gguf",
            "blk.0.attn_k.weight",
            "whole q4_0 blocks of 32",
        ],
    );
}

#[test]
fn gguf_bad_alignment_and_nested_arrays() {
    let bytes = gguf_bytes(
        &[("general.alignment", GgufValue::U32(48))],
        &gguf_tensors(),
        32,
    );
    assert_mentions(
        &gguf_fails(&bytes),
        &["model.gguf", "general.alignment", "power of two"],
    );
    let mut bytes = gguf_bytes(&[("x", GgufValue::Strings(vec!["a".into()]))], &[], 32);
    // Turn the array's element type (STRING) into ARRAY.
    let at = 24 + 8 + 1 + 4;
    bytes[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
    assert_mentions(&gguf_fails(&bytes), &["model.gguf", "nested array"]);
}

#[test]
fn gguf_split_set_with_a_missing_file_or_wrong_numbers() {
    let case = Case::new();
    let split = |no: u32, count: u32| {
        gguf_bytes(
            &[
                ("split.no", GgufValue::U32(no)),
                ("split.count", GgufValue::U32(count)),
            ],
            &[],
            32,
        )
    };
    std::fs::write(case.model.join("m-00001-of-00003.gguf"), split(0, 3)).unwrap();
    std::fs::write(case.model.join("m-00002-of-00003.gguf"), split(1, 3)).unwrap();
    assert_mentions(&case.fails(), &["m-00003-of-00003.gguf", "does not exist"]);
    std::fs::write(case.model.join("m-00003-of-00003.gguf"), split(1, 3)).unwrap();
    assert_mentions(
        &case.fails(),
        &["m-00003-of-00003.gguf", "split.no = 2", "holds 1"],
    );
}

#[test]
fn a_directory_with_two_gguf_models_asks_for_one() {
    let case = Case::new();
    let bytes = gguf_case(&gguf_tensors());
    std::fs::write(case.model.join("m.Q4_K_M.gguf"), &bytes).unwrap();
    std::fs::write(case.model.join("m.Q8_0.gguf"), &bytes).unwrap();
    assert_mentions(
        &case.fails(),
        &["several GGUF models", "m.Q4_K_M.gguf", "m.Q8_0.gguf"],
    );
}
