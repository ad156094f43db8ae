//! GGUF models through the command-line tools: every ggml type's tensor and
//! a split qwen3moe-shaped model (tests/golden/make_gguf.py, written with
//! gguf-py) give the statistics and ranks numpy/scipy compute on gguf-py's
//! dequantized values, with ggml type names, Hugging Face names and the
//! GGUF metadata in the summary.

mod common;

use std::path::{Path, PathBuf};

use common::{Table, analyze, assert_golden_matrix, assert_success, transformer, workspace};
use serde_json::Value;

fn golden() -> Value {
    let path = workspace().join("tests/golden/gguf.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn run(
    tool: fn(&[&str]) -> std::process::Output,
    model: &Path,
    out: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(out);
    let output = tool(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_success(&output);
    (dir, out)
}

/// Checks every matrix row of `table` against the golden `tensors`.
fn check(table: &Table, tensors: &serde_json::Map<String, Value>) {
    for (name, want) in tensors {
        let kind = want["type"].as_str().unwrap();
        let stacked = want["shape"].as_array().unwrap().len() == 3;
        for (e, m) in want["matrices"].as_array().unwrap().iter().enumerate() {
            let row = table
                .rows
                .iter()
                .find(|r| {
                    r["param_name"] == *name && (!stacked || r["expert_index"] == e.to_string())
                })
                .unwrap_or_else(|| panic!("no row for {name}[{e}]"));
            let name_e = format!("{name}[{e}]");
            let what = |c: &str| format!("{name_e} {c}");
            assert_eq!(row["dtype"], kind, "{}", what("dtype"));
            let block_type = !matches!(
                kind,
                "f32" | "f16" | "bf16" | "f64" | "i8" | "i16" | "i32" | "i64"
            );
            let quant = if block_type {
                format!("gguf-{kind}")
            } else {
                "none".into()
            };
            assert_eq!(row["quant"], quant, "{}", what("quant"));
            assert_golden_matrix(row, m, &name_e);
        }
    }
}

#[test]
fn every_ggml_type_gives_the_golden_statistics_and_ranks() {
    let golden = golden();
    let types = golden["types"].as_object().unwrap();
    assert_eq!(types.len(), 31);
    let (_dir, out) = run(
        transformer,
        &workspace().join("tests/fixtures/gguf/types.gguf"),
        "t.csv",
    );
    let table = Table::read(&out);
    assert_eq!(table.rows.len(), 31);
    check(&table, types);
    // Rows are the PyTorch [out, in] shape of ne = [256, 13].
    assert_eq!(table.row("types.q4_k")["shape"], "[13, 256]");
}

#[test]
fn a_split_moe_model_is_analysed_per_expert_with_hf_names() {
    let golden = golden();
    let model = workspace().join("tests/fixtures/gguf/moe");
    let (_dir, out) = run(transformer, &model, "t.csv");
    let table = Table::read(&out);
    // 14 tensors, two of them stacked over 4 experts in each of 2 layers.
    assert_eq!(table.rows.len(), 14 + 2 * 2 * 3);
    check(&table, golden["moe"].as_object().unwrap());
    let expert = |name: &str, e: &str| {
        table
            .rows
            .iter()
            .find(|r| r["param_name"] == name && r["expert_index"] == e)
            .unwrap()
            .clone()
    };
    let planted = expert("blk.1.ffn_gate_exps.weight", "2");
    assert_eq!(planted["actual_rank"], "3");
    assert_eq!(
        planted["hf_name"],
        "model.layers.1.mlp.experts.2.gate_proj.weight"
    );
    assert_eq!(planted["block_type"], "moe_expert");
    assert_eq!(planted["layer_index"], "1");
    assert_eq!(
        table.row("token_embd.weight")["hf_name"],
        "model.embed_tokens.weight"
    );
    assert_eq!(table.row("blk.0.attn_k.weight")["block_type"], "k_proj");
}

#[test]
fn the_summary_reads_the_gguf_metadata() {
    let model = workspace().join("tests/fixtures/gguf/moe/tiny-moe-00002-of-00003.gguf");
    let (_dir, out) = run(analyze, &model, "a.json");
    let result: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    let summary = &result["summary"];
    let config = &summary["config"];
    assert_eq!(config["architecture"], "qwen3moe");
    assert_eq!(config["num_layers"], 2);
    assert_eq!(config["num_attention_heads"], 4);
    assert_eq!(config["num_key_value_heads"], 2);
    assert_eq!(config["num_experts"], 4);
    assert_eq!(config["vocab_size"], 64);
    assert_eq!(config["gguf_file_type"], 15);
    // No output.weight: llama.cpp reuses token_embd.
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(summary["files"].as_array().unwrap().len(), 3);
    assert_eq!(summary["quantization"]["schemes"]["gguf-q4_k"], 4);
    assert!(
        summary["quantization"]["note"]
            .as_str()
            .unwrap()
            .contains("bit for bit")
    );
    let rows = result["tensors"].as_array().unwrap();
    assert_eq!(rows.len(), 14);
    let gate = rows
        .iter()
        .find(|r| r["param_name"] == "blk.0.ffn_gate_exps.weight")
        .unwrap();
    assert_eq!(gate["shape"], serde_json::json!([4, 32, 256]));
    // A stacked tensor has no one HF name; its experts do (tpa-transformer).
    assert_eq!(gate["hf_name"], "");
}

#[test]
fn tpa_embedding_clusters_token_embd_and_names_tokens_from_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let model = workspace().join("tests/fixtures/gguf/moe");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-embedding"))
        .args(["--model-path", model.to_str().unwrap(), "--output-dir"])
        .arg(dir.path())
        .args(["--max-k", "3", "--no-gpu", "-q"])
        .output()
        .unwrap();
    assert_success(&output);
    let result: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("clustering_results.json")).unwrap())
            .unwrap();
    assert_eq!(result["total_tokens"], 64);
    assert_eq!(result["embedding_dimension"], 256);
    // Each representative id is shown as its vocabulary entry: "tok{id}",
    // and ids 62 and 63 as "<s>" and "héllo".
    for cluster in result["clusters"].as_array().unwrap() {
        let ids = cluster["representative_ids"].as_array().unwrap();
        let texts: Vec<&str> = cluster["representative_text"]
            .as_str()
            .unwrap()
            .split(", ")
            .collect();
        assert_eq!(ids.len(), texts.len());
        for (id, text) in ids.iter().zip(texts) {
            let want = match id.as_u64().unwrap() {
                62 => "<s>".to_owned(),
                63 => "héllo".to_owned(),
                n => format!("tok{n}"),
            };
            assert_eq!(text, want);
        }
    }
}

/// tpa-diff `--base base --model model --out out` and `extra`.
fn tpa_diff(base: &Path, model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
        .arg("--base")
        .arg(base)
        .arg("--model")
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// In `dir`: `m.gguf` of architecture `arch` holding the 8 × 8 f32 tensors
/// `gguf`, and `hf.safetensors` holding the 8 × 8 tensors `hf`.
fn small_pair(dir: &Path, arch: &str, gguf: &[&str], hf: &[&str]) -> (PathBuf, PathBuf) {
    use tpa_testkit::gguf::{GgufTensor, GgufValue, gguf_bytes};
    use tpa_testkit::{Dtype, Fill, TensorSpec, write_safetensors};
    let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let tensors: Vec<GgufTensor> = gguf
        .iter()
        .map(|n| GgufTensor::f32(n, 8, 8, &values))
        .collect();
    let bytes = gguf_bytes(
        &[("general.architecture", GgufValue::String(arch.into()))],
        &tensors,
        32,
    );
    let (gguf_path, hf_path) = (dir.join("m.gguf"), dir.join("hf.safetensors"));
    std::fs::write(&gguf_path, bytes).unwrap();
    let specs: Vec<TensorSpec> = hf
        .iter()
        .map(|n| TensorSpec::new(*n, Dtype::F32, &[8, 8], Fill::Pattern))
        .collect();
    write_safetensors(&hf_path, &specs).unwrap();
    (gguf_path, hf_path)
}

/// tpa-diff of the HF model of `tests/fixtures/gguf/PAIR/hf` against its
/// GGUF twin, its rows checked against numpy's error per matrix (golden
/// `KEY`), with a report in `dir/report`.
fn diff_twin(pair: &str, key: &str, dir: &Path) -> (Table, serde_json::Map<String, Value>) {
    let errors = golden()[key].as_object().unwrap().clone();
    let pair = workspace().join("tests/fixtures/gguf").join(pair);
    let out = dir.join("diff.csv");
    let report = dir.join("report");
    let output = tpa_diff(
        &pair.join("hf"),
        &pair.join("model.Q8_0.gguf"),
        &out,
        &["--report", report.to_str().unwrap(), "-q"],
    );
    assert_success(&output);
    let table = Table::read(&out);
    assert_eq!(table.rows.len(), errors.len());
    for (name, want) in &errors {
        let row = table.row(name);
        assert_eq!(row["status"], "compared", "{name}");
        assert_eq!(row["gguf_name"], want["gguf_name"].as_str().unwrap());
        let close = |column: &str, key: &str| {
            let (ours, theirs) = (common::float(&row[column]), want[key].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs(),
                "{name} {column}: tpa {ours:e}, numpy {theirs:e}"
            );
        };
        if want["changed_frac"].as_f64().unwrap() == 0.0 {
            // The f32 norms are stored as they are: nothing changed.
            assert_eq!(row["rel_fro"], "0.0", "{name}");
            assert_eq!(row["sqnr_db"], "", "{name}");
            continue;
        }
        close("rel_fro", "rel_fro");
        close("sqnr_db", "sqnr_db");
        close("changed_frac", "changed_frac");
        if row["model_dtype"] == "q8_0" {
            // Q8_0 keeps about 45 dB.
            let sqnr = common::float(&row["sqnr_db"]);
            assert!((40.0..50.0).contains(&sqnr), "{name}: {sqnr} dB");
        }
    }
    (table, errors)
}

#[test]
fn tpa_diff_of_a_hf_model_and_its_gguf_twin_is_the_pure_quantization_error() {
    let dir = tempfile::tempdir().unwrap();
    let (table, errors) = diff_twin("llama", "llama_q8_0_error", dir.path());
    // The report leads with the quantization damage per layer.
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(html.contains("what quantization changed"));
    let damage = std::fs::read_to_string(dir.path().join("report/charts/diff_sqnr.svg")).unwrap();
    assert!(
        damage.contains("layer 1 · k_proj: SQNR dB = 45."),
        "{damage}"
    );
    for (name, want) in &errors {
        // Read without undoing llama.cpp's row permutation, Q and K would
        // differ by more than their own norm.
        if name.contains("q_proj") || name.contains("k_proj") {
            assert!(want["rel_fro_as_stored"].as_f64().unwrap() > 1.0, "{name}");
            assert!(common::float(&table.row(name)["rel_fro"]) < 0.01, "{name}");
        }
    }
    assert_eq!(
        table.row("model.layers.1.self_attn.k_proj.weight")["block_type"],
        "k_proj"
    );
}

#[test]
fn gemma_norms_stored_as_one_plus_w_are_compared_as_w() {
    let dir = tempfile::tempdir().unwrap();
    let (table, errors) = diff_twin("gemma3", "gemma3_q8_0_error", dir.path());
    let norms: Vec<&String> = errors
        .keys()
        .filter(|n| n.ends_with("norm.weight"))
        .collect();
    // model.norm, and per layer q/k norms and the four layer norms.
    assert_eq!(norms.len(), 1 + 2 * 6);
    for name in norms {
        // As stored (1 + w) they would differ by three times their norm;
        // read back as w, only the converter's f32 rounding of 1 + w is left.
        assert!(
            errors[name]["rel_fro_as_stored"].as_f64().unwrap() > 1.0,
            "{name}"
        );
        let rel = common::float(&table.row(name)["rel_fro"]);
        assert!(rel > 0.0 && rel < 1e-6, "{name}: rel_fro {rel}");
    }
    // The other way round (the GGUF file as the base), the shift is undone
    // on the subtracted side.
    let pair = workspace().join("tests/fixtures/gguf/gemma3");
    let out = dir.path().join("reverse.csv");
    let output = tpa_diff(
        &pair.join("model.Q8_0.gguf"),
        &pair.join("hf"),
        &out,
        &["-q"],
    );
    assert_success(&output);
    let reverse = Table::read(&out);
    for (name, want) in &errors {
        let rel = common::float(&reverse.row(name)["rel_fro"]);
        let forward = want["rel_fro"].as_f64().unwrap();
        // ‖ΔW‖ is the same; only the norm it is divided by changes side.
        assert!(
            (rel / forward - 1.0).abs() < 0.01,
            "{name}: {rel} vs {forward}"
        );
        // ΔW's spectrum (read through the difference) is that of −ΔW.
        let spectral = |t: &Table| common::float(&t.row(name)["delta_spectral_norm"]);
        let (a, b) = (spectral(&table), spectral(&reverse));
        assert!(
            (a - b).abs() <= 1e-9 * a,
            "{name}: ‖ΔW‖₂ {a} forward, {b} reversed"
        );
    }
}

#[test]
fn a_llama_gguf_without_head_counts_cannot_be_diffed_against_hf() {
    let dir = tempfile::tempdir().unwrap();
    let (gguf, hf) = small_pair(
        dir.path(),
        "llama",
        &["blk.0.attn_q.weight"],
        &["model.layers.0.self_attn.q_proj.weight"],
    );
    let output = tpa_diff(&hf, &gguf, &dir.path().join("d.csv"), &[]);
    let err = common::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    for needle in [
        "m.gguf",
        "blk.0.attn_q.weight",
        "llama.attention.head_count (absent)",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!dir.path().join("d.csv").exists());
}

#[test]
fn two_shards_of_a_gguf_model_merge_to_the_rows_of_one_run() {
    let model = workspace().join("tests/fixtures/gguf/moe");
    let dir = tempfile::tempdir().unwrap();
    let (sharded, one) = (dir.path().join("t.csv"), dir.path().join("one.csv"));
    let args = |out: &Path, shard: Option<&str>| {
        let mut args = vec![
            "--model-path".to_owned(),
            model.to_str().unwrap().to_owned(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
            "-q".to_owned(),
        ];
        if let Some(s) = shard {
            args.extend(["--shard".to_owned(), s.to_owned()]);
        }
        args
    };
    for shard in ["0/2", "1/2"] {
        let a = args(&sharded, Some(shard));
        assert_success(&transformer(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
    }
    assert_success(&common::merge(&[sharded.to_str().unwrap(), "-q"]));
    let a = args(&one, None);
    assert_success(&transformer(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let (merged, single) = (Table::read(&sharded), Table::read(&one));
    assert_eq!(merged.rows.len(), 26);
    assert_eq!(common::comparable(&merged), common::comparable(&single));
}

#[test]
fn a_gguf_tensor_without_a_hf_counterpart_is_listed_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // DeepSeek's attn_k_b is derived from kv_b_proj by the converter: no
    // one HF tensor to compare it with.
    let (gguf, hf) = small_pair(
        dir.path(),
        "deepseek2",
        &["blk.0.attn_q_a.weight", "blk.0.attn_k_b.weight"],
        &[
            "model.layers.0.self_attn.q_a_proj.weight",
            "model.layers.0.self_attn.kv_b_proj.weight",
        ],
    );
    let out = dir.path().join("d.csv");
    let output = tpa_diff(&hf, &gguf, &out, &["-q"]);
    assert_success(&output);
    let table = Table::read(&out);
    assert_eq!(table.rows.len(), 3);
    assert_eq!(
        table.row("model.layers.0.self_attn.q_a_proj.weight")["status"],
        "compared"
    );
    let k_b = table.row("blk.0.attn_k_b.weight");
    assert_eq!(k_b["status"], "only_in_model");
    assert_eq!(k_b["gguf_name"], "blk.0.attn_k_b.weight");
    assert!(
        k_b["skipped"].contains("no one Hugging Face tensor"),
        "{k_b:?}"
    );
    assert_eq!(
        table.row("model.layers.0.self_attn.kv_b_proj.weight")["status"],
        "only_in_base"
    );
}
