//! `tpa-analyze` end to end on generated models with known answers.

mod common;

use common::*;
use tpa_testkit::architectures::{Dims, bert, gpt2, llama};
use tpa_testkit::{Dtype, Fill, Known, TensorSpec, write_model, write_safetensors};

const ORIGINAL_COLUMNS: [&str; 16] = [
    "model_path",
    "model_id",
    "revision",
    "param_name",
    "layer_index",
    "block_type",
    "shape",
    "rows",
    "cols",
    "rank",
    "mean",
    "std",
    "var",
    "sparsity",
    "dtype",
    "created_at",
];

fn llama_model(dir: &std::path::Path, dtype: Dtype, shards: usize) -> std::path::PathBuf {
    let path = dir.join("llama");
    write_model(&path, &llama(Dims::TOY, dtype, &Fill::Pattern), shards).unwrap();
    std::fs::write(
        path.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 320,
            "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1024,
            "tie_word_embeddings": false}"#,
    )
    .unwrap();
    path
}

#[test]
fn csv_has_the_original_columns_first_and_known_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = llama_model(dir.path(), Dtype::BF16, 1);
    let out = dir.path().join("out/params.csv");
    let output = analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model-id",
        "toy/llama",
        "--revision",
        "main",
        "--no-rank",
    ]);
    assert_success(&output);
    let table = Table::read(&out);
    assert_eq!(&table.columns[..16], ORIGINAL_COLUMNS);
    assert_eq!(
        &table.columns[16..],
        [
            "min",
            "max",
            "numel",
            "nan_count",
            "inf_count",
            "expert_index",
            "design_rank",
            "nbytes",
            "file",
            "digest",
            "quant",
            "quant_bytes",
            "hf_name"
        ]
    );
    assert_eq!(table.rows.len(), 2 + 2 * 9 + 1);

    let known = Known::of(Dtype::BF16);
    for row in &table.rows {
        assert_eq!(row["model_id"], "toy/llama");
        assert_eq!(row["revision"], "main");
        assert_eq!(row["dtype"], "bfloat16");
        assert_eq!(
            row["rank"], "",
            "rank stays empty until the spectral engine"
        );
        assert_eq!(float(&row["mean"]), known.mean);
        assert_eq!(float(&row["var"]), known.var);
        assert_eq!(float(&row["std"]), known.var.sqrt());
        assert_eq!(float(&row["min"]), known.min);
        assert_eq!(float(&row["max"]), known.max);
        assert_eq!(float(&row["sparsity"]), known.sparsity);
        assert_eq!(row["nan_count"], "0");
    }
    let q = table.row("model.layers.1.self_attn.q_proj.weight");
    assert_eq!(
        (q["layer_index"].as_str(), q["block_type"].as_str()),
        ("1", "q_proj")
    );
    assert_eq!(
        (q["shape"].as_str(), q["rows"].as_str(), q["cols"].as_str()),
        ("[320, 320]", "320", "320")
    );
    let down = table.row("model.layers.0.mlp.down_proj.weight");
    assert_eq!(
        (down["block_type"].as_str(), down["design_rank"].as_str()),
        ("mlp_down", "320")
    );
    let norm = table.row("model.norm.weight");
    assert_eq!(
        (
            norm["layer_index"].as_str(),
            norm["rows"].as_str(),
            norm["cols"].as_str()
        ),
        ("", "1", "320")
    );
    assert_eq!(table.row("lm_head.weight")["block_type"], "output");
    assert_eq!(
        table.row("model.embed_tokens.weight")["nbytes"],
        (1024 * 320 * 2).to_string()
    );

    // Layer rows first, in numeric order; rows without a layer last.
    let layers: Vec<&str> = table
        .rows
        .iter()
        .map(|r| r["layer_index"].as_str())
        .collect();
    let first_empty = layers.iter().position(|l| l.is_empty()).unwrap();
    assert!(
        layers[..first_empty]
            .windows(2)
            .all(|w| w[0].parse::<u32>().unwrap() <= w[1].parse().unwrap())
    );
    assert!(layers[first_empty..].iter().all(|l| l.is_empty()));

    let console = stdout(&output);
    assert!(console.contains("LlamaForCausalLM"), "{console}");
    assert!(console.contains("21 in 1 file"), "{console}");
}

#[test]
fn json_carries_a_summary_and_jsonl_one_row_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = llama_model(dir.path(), Dtype::F16, 1);
    let json_out = dir.path().join("params.json");
    assert_success(&analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        json_out.to_str().unwrap(),
        "--no-rank",
    ]));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let summary = &doc["summary"];
    let params = 2 * 1024 * 320 + 2 * (4 * 320 * 320 + 3 * 640 * 320 + 2 * 320) + 320;
    assert_eq!(summary["total"]["parameters"], params);
    assert_eq!(summary["total"]["bytes"], 2 * params);
    assert_eq!(summary["layers"], 2);
    assert_eq!(summary["by_block_type"]["q_proj"]["tensors"], 2);
    assert_eq!(summary["by_dtype"]["float16"]["parameters"], params);
    assert_eq!(summary["config"]["num_layers"], 2);
    assert_eq!(summary["config"]["tie_word_embeddings"], false);
    let rows = doc["tensors"].as_array().unwrap();
    assert_eq!(rows.len(), 21);
    let q = rows
        .iter()
        .find(|r| r["param_name"] == "model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert_eq!(q["shape"], serde_json::json!([320, 320]));
    assert_eq!(q["layer_index"], 0);
    assert!(q["rank"].is_null());
    assert_eq!(q["mean"], 1.0);

    let jsonl_out = dir.path().join("params.txt");
    assert_success(&analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        jsonl_out.to_str().unwrap(),
        "--format",
        "jsonl",
    ]));
    let text = std::fs::read_to_string(&jsonl_out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 21);
    assert!(
        text.starts_with("{\"model_path\":"),
        "keys keep the column order"
    );
}

#[test]
fn original_underscore_flags_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = llama_model(dir.path(), Dtype::F32, 1);
    let out = dir.path().join("p.csv");
    let output = analyze(&[
        "--model_path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model_id",
        "org/name",
        "--format",
        "csv",
        "--zero_eps",
        "0",
        "--quiet",
    ]);
    assert_success(&output);
    assert!(stdout(&output).is_empty(), "--quiet prints nothing");
    let table = Table::read(&out);
    assert_eq!(table.rows[0]["model_id"], "org/name");
}

#[test]
fn sharded_and_single_file_models_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = gpt2(Dims::TOY, Dtype::F32, &Fill::Normal { seed: 5, std: 0.02 });
    write_model(&dir.path().join("one"), &tensors, 1).unwrap();
    write_model(&dir.path().join("four"), &tensors, 4).unwrap();
    let run = |name: &str| {
        let out = dir.path().join(format!("{name}.csv"));
        assert_success(&analyze(&[
            "--model-path",
            dir.path().join(name).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        Table::read(&out)
    };
    let (one, four) = (run("one"), run("four"));
    assert_eq!(one.rows.len(), tensors.len());
    for row in &one.rows {
        let other = four.row(&row["param_name"]);
        for column in [
            "layer_index",
            "block_type",
            "shape",
            "mean",
            "std",
            "var",
            "min",
            "max",
            "sparsity",
        ] {
            assert_eq!(row[column], other[column], "{} {column}", row["param_name"]);
        }
    }
    let files: std::collections::BTreeSet<&str> =
        four.rows.iter().map(|r| r["file"].as_str()).collect();
    assert_eq!(files.len(), 4);
}

#[test]
fn a_single_safetensors_file_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("bert");
    write_model(&model, &bert(Dims::TOY, Dtype::F32, &Fill::Pattern), 1).unwrap();
    let out = dir.path().join("bert.csv");
    let file = model.join("model.safetensors");
    assert_success(&analyze(&[
        "--model-path",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let table = Table::read(&out);
    let ids = table.row("embeddings.position_ids");
    assert_eq!(
        (ids["dtype"].as_str(), ids["block_type"].as_str()),
        ("int64", "other")
    );
    assert_eq!(float(&ids["mean"]), 31.5);
    assert_eq!(float(&ids["max"]), 63.0);
    assert_eq!(
        table.row("encoder.layer.1.attention.self.key.weight")["block_type"],
        "k_proj"
    );
    assert_eq!(
        table.row("encoder.layer.1.attention.self.key.bias")["block_type"],
        "bias"
    );
    assert_eq!(
        table.row("encoder.layer.1.intermediate.dense.weight")["block_type"],
        "mlp_up"
    );
}

#[test]
fn nan_tensors_warn_and_still_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    let tensors = [tpa_testkit::TensorSpec::new(
        "layers.0.w",
        Dtype::F32,
        &[2, 2],
        Fill::Values(vec![1.0, f64::NAN, f64::INFINITY, 3.0]),
    )];
    tpa_testkit::write_safetensors(&path, &tensors).unwrap();
    let out = dir.path().join("nan.csv");
    let output = analyze(&[
        "--model-path",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("tensor layers.0.w has 1 NaN and 1 Inf values"),
        "{}",
        stderr(&output)
    );
    let row = &Table::read(&out).rows[0];
    assert_eq!(
        (
            row["nan_count"].as_str(),
            row["inf_count"].as_str(),
            row["mean"].as_str()
        ),
        ("1", "1", "2.0")
    );
}

#[test]
fn unknown_output_extension_needs_format() {
    let dir = tempfile::tempdir().unwrap();
    let model = llama_model(dir.path(), Dtype::F32, 1);
    let out = dir.path().join("params.parquet");
    let output = analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--format"), "{}", stderr(&output));
    assert!(!out.exists());
}

#[test]
fn help_teaches_the_columns_and_aliases() {
    let output = analyze(&["--help"]);
    assert_success(&output);
    let help = stdout(&output);
    for needle in [
        "--model-path",
        "model_path",
        "--format",
        "nan_count",
        "Examples:",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn the_rank_column_is_the_numerical_rank_of_the_2d_view() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let tensors = [
        // Rank 7 of 10, in bf16.
        TensorSpec::new(
            "layers.0.w",
            Dtype::BF16,
            &[12, 10],
            Fill::Values(permuted_diagonal(
                12,
                10,
                &[8.0, 4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0],
            )),
        ),
        // A 3-D tensor: the 2-D view is (2, 6) with rank 2.
        TensorSpec::new(
            "layers.0.conv",
            Dtype::F32,
            &[2, 3, 2],
            Fill::Values(permuted_diagonal(2, 6, &[1.0, 5.0])),
        ),
        TensorSpec::new("zero", Dtype::F16, &[5], Fill::Values(vec![0.0; 5])),
    ];
    write_safetensors(&path, &tensors).unwrap();
    let out = dir.path().join("r.csv");
    let output = analyze(&[
        "--model-path",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
    ]);
    assert_success(&output);
    let table = Table::read(&out);
    assert_eq!(table.row("layers.0.w")["rank"], "7");
    assert_eq!(table.row("layers.0.conv")["rank"], "2");
    assert_eq!(table.row("zero")["rank"], "0");
}

#[test]
fn an_interrupted_rank_pass_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let model = many_matrices(dir.path(), 12, 900);
    let out = dir.path().join("a.csv");
    let journal = dir.path().join("a.csv.partial.jsonl");
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
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-analyze"));
    command.args(args);
    let kept = kill_once_journaled(command, &journal, 3);
    assert!(!out.exists(), "no output before the run completes");
    let not_quiet: Vec<&str> = args.iter().copied().filter(|a| *a != "-q").collect();
    let resumed = analyze(&[&not_quiet[..], &["--resume"]].concat());
    assert_success(&resumed);
    assert!(
        stderr(&resumed).contains(&format!("resuming: {kept} of 12 tensors already done")),
        "{}",
        stderr(&resumed)
    );
    assert!(!journal.exists());
    let fresh = dir.path().join("fresh.csv");
    assert_success(&analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        fresh.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    let resumed_table = Table::read(&out);
    assert_eq!(resumed_table.rows.len(), 12);
    assert_eq!(
        without_timing(&resumed_table),
        without_timing(&Table::read(&fresh))
    );
}

/// The digest column: xxh3-128 of each 2^20-element chunk of the stored
/// bytes, then of those digests in order (computed here from the bytes the
/// fixture wrote); equal tensors share it, one changed element changes it.
#[test]
fn digest_is_the_chunked_xxh3_of_the_stored_bytes() {
    use xxhash_rust::xxh3::xxh3_128;
    let dir = tempfile::tempdir().unwrap();
    let n = (1 << 20) * 2 + 1000;
    let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1013) as f64 - 500.0).collect();
    let mut changed = values.clone();
    changed[n - 1] += 1.0;
    let tensors = vec![
        TensorSpec::new("a", Dtype::BF16, &[n], Fill::Values(values.clone())),
        TensorSpec::new("copy_of_a", Dtype::BF16, &[n], Fill::Values(values)),
        TensorSpec::new("changed", Dtype::BF16, &[n], Fill::Values(changed)),
    ];
    let path = dir.path().join("m.safetensors");
    write_safetensors(&path, &tensors).unwrap();
    let out = dir.path().join("d.csv");
    assert_success(&analyze(&[
        "--model-path",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-rank",
        "--quiet",
    ]));
    let table = Table::read(&out);
    let bytes = tensors[0].bytes();
    let chunks: Vec<u8> = bytes
        .chunks((1 << 20) * 2)
        .flat_map(|c| xxh3_128(c).to_le_bytes())
        .collect();
    let expected = format!("{:032x}", xxh3_128(&chunks));
    assert_eq!(table.row("a")["digest"], expected);
    assert_eq!(table.row("copy_of_a")["digest"], expected);
    assert_ne!(table.row("changed")["digest"], expected);
}
