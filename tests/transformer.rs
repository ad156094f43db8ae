//! `tpa-transformer` end to end on generated models with known spectra.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tpa_testkit::{Dtype, Fill, TensorSpec, write_safetensors};

fn known_model(dir: &Path) -> PathBuf {
    let path = dir.join("model.safetensors");
    // 12 × 10 with rank 7 (three zero singular values).
    let q = permuted_diagonal(12, 10, &[8.0, 4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    // Stacked experts: expert e has σ = (e+1, 1).
    let mut experts = Vec::new();
    for e in 0..3 {
        experts.extend(permuted_diagonal(4, 2, &[e as f64 + 1.0, 1.0]));
    }
    let tensors = vec![
        TensorSpec::new(
            "model.layers.0.self_attn.q_proj.weight",
            Dtype::BF16,
            &[12, 10],
            Fill::Values(q),
        ),
        TensorSpec::new(
            "model.layers.0.mlp.experts.down_proj",
            Dtype::F32,
            &[3, 4, 2],
            Fill::Values(experts),
        ),
        TensorSpec::new(
            "model.layers.1.input_layernorm.weight",
            Dtype::F16,
            &[4],
            Fill::Values(vec![3.0, 0.0, 4.0, 0.0]),
        ),
        TensorSpec::new(
            "model.layers.1.self_attn.k_proj.weight",
            Dtype::F32,
            &[2, 2],
            Fill::Values(vec![1.0, f64::NAN, 0.0, 1.0]),
        ),
        TensorSpec::new(
            "lm_head.weight",
            Dtype::I8,
            &[6, 6],
            Fill::Values(permuted_diagonal(6, 6, &[3.0; 6])),
        ),
    ];
    write_safetensors(&path, &tensors).unwrap();
    path
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let output = transformer(args);
    assert_success(&output);
    output
}

#[test]
fn columns_ranks_experts_and_nan_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.csv");
    let output = run_ok(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
    ]);
    let table = Table::read(&out);
    assert_eq!(
        &table.columns[..22],
        [
            "model_path",
            "model_id",
            "revision",
            "param_name",
            "layer_index",
            "block_type",
            "shape",
            "rows",
            "cols",
            "design_rank",
            "actual_rank",
            "rank_ratio",
            "svd_90_percent_rank",
            "svd_90_percent_ratio",
            "mean",
            "std",
            "var",
            "min",
            "max",
            "sparsity",
            "dtype",
            "created_at"
        ]
    );
    assert_eq!(table.columns[22], "expert_index");
    assert_eq!(table.rows.len(), 1 + 3 + 1 + 1 + 1);

    let q = table.row("model.layers.0.self_attn.q_proj.weight");
    assert_eq!(
        (q["design_rank"].as_str(), q["actual_rank"].as_str()),
        ("10", "7")
    );
    assert_eq!(float(&q["rank_ratio"]), 0.7);
    // σ² = 64, 16, 16, 4, 4, 1, 1: 50% of 106 is reached after 1 value, 90%
    // (95.4) after 3 (96), 99% (104.94) after 6 (105).
    assert_eq!(
        (
            q["svd_50_percent_rank"].as_str(),
            q["svd_90_percent_rank"].as_str()
        ),
        ("1", "3")
    );
    assert_eq!(q["svd_99_percent_rank"], "6");
    assert_eq!(float(&q["spectral_norm"]), 8.0);
    assert_eq!(float(&q["frobenius_norm"]), 106f64.sqrt());
    assert_eq!(q["condition_number"], "", "σmin is 0");
    assert_eq!(
        (q["method"].as_str(), q["backend"].as_str()),
        ("gram-f64", "cpu")
    );

    let experts: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r["param_name"] == "model.layers.0.mlp.experts.down_proj")
        .collect();
    assert_eq!(experts.len(), 3);
    for (e, row) in experts.iter().enumerate() {
        assert_eq!(row["expert_index"], e.to_string());
        assert_eq!(
            (row["shape"].as_str(), row["actual_rank"].as_str()),
            ("[4, 2]", "2")
        );
        assert_eq!(float(&row["spectral_norm"]), e as f64 + 1.0);
        assert_eq!(row["block_type"], "moe_expert");
    }

    let norm = table.row("model.layers.1.input_layernorm.weight");
    assert_eq!(
        (
            norm["rows"].as_str(),
            norm["cols"].as_str(),
            norm["actual_rank"].as_str()
        ),
        ("1", "4", "1")
    );
    assert_eq!(float(&norm["spectral_norm"]), 5.0);

    let nan = table.row("model.layers.1.self_attn.k_proj.weight");
    assert_eq!(
        (
            nan["actual_rank"].as_str(),
            nan["spectral_norm"].as_str(),
            nan["nan_count"].as_str()
        ),
        ("", "", "1")
    );
    assert_eq!(float(&nan["mean"]), 2.0 / 3.0);
    assert!(
        stderr(&output).contains(
            "model.layers.1.self_attn.k_proj.weight: no spectrum (1 NaN and 0 Inf values)"
        )
    );

    let head = table.row("lm_head.weight");
    assert_eq!(
        (head["dtype"].as_str(), head["actual_rank"].as_str()),
        ("int8", "6")
    );
    assert_eq!(float(&head["condition_number"]), 1.0);

    // Rows: layer 0, layer 1, then lm_head.
    let layers: Vec<&str> = table
        .rows
        .iter()
        .map(|r| r["layer_index"].as_str())
        .collect();
    assert_eq!(layers, ["0", "0", "0", "0", "1", "1", ""]);
    let console = stdout(&output);
    assert!(
        console.contains("LAYER-BY-LAYER MATRIX ANALYSIS") && console.contains("🔹 LAYER 0"),
        "{console}"
    );
    assert!(
        console.contains("q_proj        | Shape: (12, 10)"),
        "{console}"
    );
    assert!(console.contains("SUMMARY BY BLOCK TYPE"));
    assert!(
        !Path::new(&format!("{}.partial.jsonl", out.display())).exists(),
        "the journal is removed"
    );
}

#[test]
fn only_skip_and_saved_spectra() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.jsonl");
    let spectra = dir.path().join("sv.safetensors");
    run_ok(&[
        "--model_path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--only",
        "model.layers.0.*",
        "--skip",
        "*q_proj*",
        "--save-spectra",
        spectra.to_str().unwrap(),
        "--no_gpu",
        "--quiet",
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "only the three experts");
    let saved = tpa_core::model::Model::open(&spectra).unwrap();
    assert_eq!(saved.len(), 3);
    let expert2 = saved
        .tensor("model.layers.0.mlp.experts.down_proj[2]")
        .unwrap();
    assert_eq!(expert2.dtype().to_string(), "float64");
    let mut values = [0.0; 2];
    expert2.decode_into(0, &mut values).unwrap();
    assert_eq!(values, [3.0, 1.0]);
}

#[test]
fn rank_k_is_accepted_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.csv");
    let output = run_ok(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--rank_k",
        "128",
        "--no-gpu",
        "-q",
    ]);
    assert!(stderr(&output).contains("--rank_k 128 is ignored"));
}

#[test]
fn an_interrupted_run_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let model = many_matrices(dir.path(), 12, 900);
    let out = dir.path().join("t.csv");
    let journal = dir.path().join("t.csv.partial.jsonl");
    let args = [
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
        "-q",
        "-j",
        "1",
    ];

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-transformer"));
    command.args(args);
    let kept = kill_once_journaled(command, &journal, 3);
    assert!(!out.exists(), "no output before the run completes");

    let resumed = transformer(&[&args[..], &["--resume"]].concat());
    assert_success(&resumed);
    let message = stderr(&resumed);
    assert!(
        message.is_empty() || !message.contains("error"),
        "{message}"
    );
    let resumed_table = Table::read(&out);
    assert!(!journal.exists());

    let fresh_out = dir.path().join("fresh.csv");
    assert_success(&transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        fresh_out.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    assert!((3..12).contains(&kept), "kept {kept}");
    assert_eq!(
        without_timing(&resumed_table),
        without_timing(&Table::read(&fresh_out))
    );
}

#[test]
fn resume_refuses_a_journal_from_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.csv");
    std::fs::write(
        dir.path().join("t.csv.partial.jsonl"),
        "{\"tpa\":\"tpa-transformer partial results\",\"model_path\":\"elsewhere\",\"rank_rtol\":1e-6,\"zero_eps\":1e-8,\"save_spectra\":false}\n",
    )
    .unwrap();
    let output = transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resume",
        "--no-gpu",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("other settings"),
        "{}",
        stderr(&output)
    );
}

/// Without CUDA (CI, this repository's machines) the probe says so in one
/// line and the run goes on, on the CPU; on a machine with a GPU the line
/// names the GPU instead.
#[test]
fn the_gpu_probe_says_one_line_and_the_results_are_right_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.csv");
    let output = run_ok(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "-v",
    ]);
    let err = stderr(&output);
    let probe_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("GPU: ")).collect();
    assert_eq!(probe_lines.len(), 1, "{err}");
    let table = Table::read(&out);
    assert_eq!(
        table.row("model.layers.0.self_attn.q_proj.weight")["actual_rank"],
        "7"
    );
    let backend = &table.row("lm_head.weight")["backend"];
    if probe_lines[0].starts_with("GPU: none usable") {
        assert!(probe_lines[0].ends_with("computing on the CPU"), "{err}");
        assert_eq!(backend, "cpu");
    }
}

#[test]
fn gpu_required_but_missing_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = known_model(dir.path());
    let out = dir.path().join("t.csv");
    let plain = run_ok(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-v",
    ]);
    if !stderr(&plain).contains("GPU: none usable") {
        eprintln!("a GPU is present here; nothing to check");
        return;
    }
    std::fs::remove_file(&out).unwrap();
    let args = [
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let flag = transformer(&[&args[..], &["--gpu"]].concat());
    let env = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-transformer"))
        .args(args)
        .env("TPA_REQUIRE_GPU", "1")
        .output()
        .unwrap();
    for output in [flag, env] {
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(
            err.starts_with("error: --gpu / TPA_REQUIRE_GPU: no usable GPU: "),
            "{err}"
        );
        assert!(!out.exists());
    }
}
