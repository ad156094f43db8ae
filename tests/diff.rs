//! `tpa-diff` on a generated base and its fine-tuned twin: planted deltas
//! of known rank (every value exact in bfloat16), unchanged matrices, a
//! changed 1-D tensor, and tensors only one side has.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Table, assert_success, float, stderr};
use tpa_testkit::architectures::{self, Dims};
use tpa_testkit::{Dtype, Fill, SplitMix64, TensorSpec, write_model};

/// Integers in −8..=8: exact in bf16, and so are their sums with the deltas.
fn integers(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() % 17) as f64 - 8.0).collect()
}

/// Adds a delta with singular values `sigma` (σ_k at (k, 3k + 1), on
/// distinct rows and columns) to a rows × cols matrix.
fn plant(values: &mut [f64], cols: usize, sigma: &[f64]) {
    for (k, &s) in sigma.iter().enumerate() {
        values[k * cols + (3 * k + 1) % cols] += if k % 2 == 0 { s } else { -s };
    }
}

const Q: &str = "model.layers.0.self_attn.q_proj.weight";
const V: &str = "model.layers.1.self_attn.v_proj.weight";
const NORM: &str = "model.layers.0.input_layernorm.weight";

/// Writes base/ and tuned/; returns ‖W_base‖_F of q_proj.
fn twins(dir: &Path) -> f64 {
    let mut base = architectures::llama(Dims::TOY, Dtype::BF16, &Fill::Pattern);
    for (i, t) in base.iter_mut().enumerate() {
        t.fill = Fill::Values(integers(i as u64, t.numel()));
    }
    let mut tuned = base.clone();
    let mut q_fro = 0.0;
    for t in &mut tuned {
        let Fill::Values(values) = &mut t.fill else {
            continue;
        };
        let cols = *t.shape.last().unwrap();
        match t.name.as_str() {
            Q => {
                q_fro = values.iter().map(|x| x * x).sum::<f64>().sqrt();
                plant(values, cols, &[6.0, 4.0, 2.0]);
            }
            V => plant(values, cols, &[5.0]),
            NORM => values[7] += 1.0,
            _ => {}
        }
    }
    base.push(TensorSpec::new(
        "only.in.base",
        Dtype::BF16,
        &[4, 4],
        Fill::Pattern,
    ));
    tuned.push(TensorSpec::new(
        "only.in.tuned",
        Dtype::BF16,
        &[4, 4],
        Fill::Pattern,
    ));
    write_model(&dir.join("base"), &base, 2).unwrap();
    write_model(&dir.join("tuned"), &tuned, 1).unwrap();
    q_fro
}

fn diff(dir: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
        .args(["--base", dir.join("base").to_str().unwrap()])
        .args(["--model", dir.join("tuned").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--no-gpu", "-q"])
        .args(extra)
        .output()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

#[test]
fn planted_deltas_come_out_with_their_ranks_and_errors_and_the_rest_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let q_fro = twins(dir.path());
    let out = dir.path().join("diff.csv");
    let output = diff(dir.path(), &out, &["--lora-ranks", "1,2,8"]);
    assert_success(&output);
    let table = Table::read(&out);
    // The LoRA columns follow delta_stable_rank, one per rank asked for.
    let at = table
        .columns
        .iter()
        .position(|c| c == "delta_stable_rank")
        .unwrap();
    assert_eq!(
        table.columns[at + 1..at + 4],
        ["lora_fit_err_1", "lora_fit_err_2", "lora_fit_err_8"]
    );

    let q = table.row(Q);
    assert_eq!(q["status"], "compared");
    assert_eq!(q["delta_rank"], "3");
    assert_eq!(
        (
            &q["delta_svd_50_percent_rank"][..],
            &q["delta_svd_90_percent_rank"][..],
            &q["delta_svd_99_percent_rank"][..]
        ),
        ("1", "2", "3")
    );
    assert!(
        close(float(&q["rel_fro"]), 56f64.sqrt() / q_fro),
        "{}",
        q["rel_fro"]
    );
    assert!(close(float(&q["lora_fit_err_1"]), (20.0f64 / 56.0).sqrt()));
    assert!(close(float(&q["lora_fit_err_2"]), (4.0f64 / 56.0).sqrt()));
    // Past the rank nothing is lost (and nothing prints as −0).
    assert!(float(&q["lora_fit_err_8"]) < 1e-12 && !q["lora_fit_err_8"].starts_with('-'));
    assert!(close(float(&q["delta_spectral_norm"]), 6.0));
    assert_eq!(q["changed"], "3");

    let v = table.row(V);
    assert_eq!(v["delta_rank"], "1");
    // Exactly rank 1: nothing lost but rounding (the SVD route, as the error is tiny).
    assert!(float(&v["lora_fit_err_1"]) < 1e-12);
    let norm = table.row(NORM);
    assert_eq!((&norm["delta_rank"][..], &norm["changed"][..]), ("1", "1"));

    // Everything else is unchanged: ΔW = 0, rank 0, no fit error.
    let unchanged: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r["status"] == "compared" && ![Q, V, NORM].contains(&r["param_name"].as_str()))
        .collect();
    assert_eq!(unchanged.len(), 21 - 3);
    for r in unchanged {
        let name = &r["param_name"];
        assert_eq!(float(&r["rel_fro"]), 0.0, "{name}");
        assert_eq!(r["delta_rank"], "0", "{name}");
        assert_eq!(r["lora_fit_err_8"], "", "{name}");
        // Unchanged matrices share their top vectors exactly.
        if r["rows"] != "1" {
            assert!(
                (float(&r["subspace_overlap_left_10"]) - 1.0).abs() < 1e-10,
                "{name}"
            );
            assert!(
                (float(&r["subspace_overlap_right_10"]) - 1.0).abs() < 1e-10,
                "{name}"
            );
            assert_eq!(r["intruders_10"], "0", "{name}");
        }
    }
    // The top-k columns follow spectral_norm_model; --top-k 0 leaves them out.
    let at = table
        .columns
        .iter()
        .position(|c| c == "spectral_norm_model")
        .unwrap();
    assert_eq!(
        table.columns[at + 1..at + 5],
        [
            "subspace_overlap_left_10",
            "subspace_overlap_right_10",
            "intruders_10",
            "vectors_angle_bound"
        ]
    );
    assert_eq!(table.row("only.in.base")["status"], "only_in_base");
    assert_eq!(table.row("only.in.tuned")["status"], "only_in_model");
    assert!(table.row("only.in.tuned")["rel_fro"].is_empty());

    // The summary lists them, and aggregates per block type and layer.
    let json = dir.path().join("diff.json");
    assert_success(&diff(dir.path(), &json, &[]));
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &j["summary"];
    assert_eq!(s["only_in_base"], serde_json::json!(["only.in.base"]));
    assert_eq!(s["only_in_model"], serde_json::json!(["only.in.tuned"]));
    assert_eq!(s["matrices_compared"], 21);
    assert_eq!(s["by_block_type"]["q_proj"]["max_rel_fro_matrix"], Q);
    assert_eq!(s["by_layer"]["1"]["max_rel_fro_matrix"], V);
    // The default ranks' columns, in JSON too.
    for r in [8, 16, 64, 128] {
        assert!(
            j["matrices"][0].get(format!("lora_fit_err_{r}")).is_some(),
            "{r}"
        );
    }
}

#[test]
fn no_common_tensors_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    twins(dir.path());
    let out = dir.path().join("d.csv");
    let output = diff(dir.path(), &out, &["--only", "nothing.matches*"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("no matrix in common") && err.contains("--only/--skip"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A PEFT adapter folder whose q_proj update is 2·(the delta [6, 4, 2] of
/// `plant`), written as B (out × 3) and A (3 × in) factors; plus a module the
/// base lacks and a copied tensor.
fn adapter(dir: &Path) {
    let (out, inp) = (Dims::TOY.hidden, Dims::TOY.hidden);
    let sigma = [6.0, 4.0, 2.0];
    let mut b = vec![0.0; out * 3];
    let mut a = vec![0.0; 3 * inp];
    for (k, s) in sigma.iter().enumerate() {
        b[k * 3 + k] = *s;
        a[k * inp + (3 * k + 1) % inp] = if k % 2 == 0 { 1.0 } else { -1.0 };
    }
    let p = "base_model.model.";
    let tensors = vec![
        TensorSpec::new(
            format!("{p}{}.lora_A.weight", Q.trim_end_matches(".weight")),
            Dtype::F32,
            &[3, inp],
            Fill::Values(a),
        ),
        TensorSpec::new(
            format!("{p}{}.lora_B.weight", Q.trim_end_matches(".weight")),
            Dtype::F32,
            &[out, 3],
            Fill::Values(b),
        ),
        TensorSpec::new(
            format!("{p}model.layers.9.mlp.up_proj.lora_A.weight"),
            Dtype::F32,
            &[3, 8],
            Fill::Pattern,
        ),
        TensorSpec::new(
            format!("{p}model.layers.9.mlp.up_proj.lora_B.weight"),
            Dtype::F32,
            &[8, 3],
            Fill::Pattern,
        ),
        TensorSpec::new(
            format!("{p}lm_head.weight"),
            Dtype::F32,
            &[4, 4],
            Fill::Pattern,
        ),
    ];
    std::fs::create_dir_all(dir.join("lora")).unwrap();
    tpa_testkit::write_safetensors(&dir.join("lora/adapter_model.safetensors"), &tensors).unwrap();
    std::fs::write(
        dir.join("lora/adapter_config.json"),
        r#"{"peft_type": "LORA", "r": 3, "lora_alpha": 6, "target_modules": ["q_proj", "up_proj"]}"#,
    )
    .unwrap();
}

#[test]
fn an_adapters_delta_has_its_closed_form_spectrum_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let q_fro = twins(dir.path());
    adapter(dir.path());
    let out = dir.path().join("lora.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
        .args(["--base", dir.path().join("base").to_str().unwrap()])
        .args(["--adapter", dir.path().join("lora").to_str().unwrap()])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--no-gpu",
            "-q",
            "--lora-ranks",
            "1,2,8",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = j["matrices"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one module maps to the base: {rows:?}");
    let q = &rows[0];
    assert_eq!(q["param_name"], Q);
    // scale = 6 / 3 = 2: σ(ΔW) = 12, 8, 4; energies 144, 64, 16 of 224.
    assert_eq!(q["delta_rank"], 3);
    assert_eq!(
        (
            q["delta_svd_50_percent_rank"].as_u64(),
            q["delta_svd_90_percent_rank"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let f = |k: &str| q[k].as_f64().unwrap();
    assert!(close(f("delta_spectral_norm"), 12.0));
    assert!(close(f("rel_fro"), 224f64.sqrt() / q_fro));
    assert!(close(f("lora_fit_err_1"), (80.0f64 / 224.0).sqrt()));
    assert!(close(f("lora_fit_err_2"), (16.0f64 / 224.0).sqrt()));
    assert!(close(f("mean_abs_delta"), 24.0 / (320.0 * 320.0)));
    assert_eq!(q["changed"], 3);
    // The model side is the base with the update added as it is read.
    assert!(f("spectral_norm_model") > 0.0 && q["intruders_10"].is_u64());
    let unmapped = j["summary"]["adapter_unmapped"].as_array().unwrap();
    assert_eq!(unmapped.len(), 2, "{unmapped:?}");
    assert!(
        unmapped
            .iter()
            .any(|u| u == "base_model.model.lm_head.weight")
    );
    assert!(unmapped.iter().any(|u| {
        u.as_str()
            .unwrap()
            .starts_with("model.layers.9.mlp.up_proj")
    }));
}

#[test]
fn the_report_shows_where_it_changed_and_the_planted_intruder() {
    let root = common::workspace();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("golden.json");
    let report = dir.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
        .args([
            "--base",
            root.join("tests/fixtures/diff/base.safetensors")
                .to_str()
                .unwrap(),
        ])
        .args([
            "--model",
            root.join("tests/fixtures/diff/tuned.safetensors")
                .to_str()
                .unwrap(),
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
        .args(["--no-gpu", "-q"])
        .output()
        .unwrap();
    assert_success(&output);
    let chart =
        |name: &str| std::fs::read_to_string(report.join(format!("charts/{name}.svg"))).unwrap();
    // layers.1.v_proj holds the planted intruder; layers.1.o_proj did not change.
    let intruders = chart("diff_intruders");
    assert!(
        intruders.contains("layer 1: 1 intruder dimensions — v_proj: 1"),
        "{intruders}"
    );
    assert!(
        intruders.contains("layer 0: 0 intruder dimensions"),
        "{intruders}"
    );
    let rel = chart("diff_rel_fro");
    assert!(rel.contains("layer 1 · o_proj: rel_fro = 0\n"), "{rel}");
    assert!(chart("diff_lora_fit").contains("q_proj, r = 8: median"));
    assert!(chart("diff_energy_rank").contains("q_proj"));
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        html.contains("The 20 most changed matrices") && html.contains("layers.1.v_proj.weight")
    );
    // tpa-report makes the same report from the result file alone.
    let again = dir.path().join("again");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-report"))
        .args([
            out.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        std::fs::read_to_string(again.join("charts/diff_intruders.svg")).unwrap(),
        intruders
    );
}

/// The twins' q and v deltas (see `twins`) written as adapter factors for
/// the scales `scales` (q, v): B (rows × r) holds σ_k/scale at (k, k), A
/// (r × cols) a 1 at (k, 3k + 1). With `fan_in_fan_out` the base layout is
/// ΔWᵀ's, so the roles of rows and columns swap.
fn twin_adapter(dir: &Path, config: &str, fan_in_fan_out: bool, scales: [f64; 2]) {
    let dims = Dims::TOY;
    let p = "base_model.model.";
    let mut tensors = Vec::new();
    for ((name, rows, cols, sigma), scale) in [
        (Q, dims.hidden, dims.hidden, &[6.0, 4.0, 2.0][..]),
        (V, dims.kv_dim, dims.hidden, &[5.0][..]),
    ]
    .into_iter()
    .zip(scales)
    {
        let module = name.trim_end_matches(".weight");
        let r = sigma.len();
        // Factor shapes: B is out × r and A is r × in, in PyTorch's sense.
        let (out, inp) = if fan_in_fan_out {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let (mut b, mut a) = (vec![0.0; out * r], vec![0.0; r * inp]);
        for (k, s) in sigma.iter().enumerate() {
            let signed = if k % 2 == 0 { *s } else { -s } / scale;
            let c = (3 * k + 1) % cols;
            if fan_in_fan_out {
                // (B·A)ᵀ[k, c] = B[c, k]·A[k, k].
                b[c * r + k] = signed;
                a[k * inp + k] = 1.0;
            } else {
                b[k * r + k] = signed;
                a[k * inp + c] = 1.0;
            }
        }
        tensors.push(TensorSpec::new(
            format!("{p}{module}.lora_A.weight"),
            Dtype::F64,
            &[r, inp],
            Fill::Values(a),
        ));
        tensors.push(TensorSpec::new(
            format!("{p}{module}.lora_B.weight"),
            Dtype::F64,
            &[out, r],
            Fill::Values(b),
        ));
    }
    let lora = dir.join("twin-lora");
    std::fs::create_dir_all(&lora).unwrap();
    tpa_testkit::write_safetensors(&lora.join("adapter_model.safetensors"), &tensors).unwrap();
    std::fs::write(lora.join("adapter_config.json"), config).unwrap();
}

fn json_rows(out: &Path) -> Vec<serde_json::Value> {
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    j["matrices"].as_array().unwrap().clone()
}

#[test]
fn an_adapter_of_the_twins_deltas_gives_the_checkpoint_diffs_columns() {
    let dir = tempfile::tempdir().unwrap();
    twins(dir.path());
    let reference = dir.path().join("twins.json");
    assert_success(&diff(dir.path(), &reference, &[]));
    let reference = json_rows(&reference);
    let row = |rows: &[serde_json::Value], name: &str| {
        rows.iter()
            .find(|r| r["param_name"] == name)
            .unwrap()
            .clone()
    };
    // (config, fan_in_fan_out, q_proj's scale, v_proj's scale)
    let cases = [
        (
            r#"{"r": 3, "lora_alpha": 6, "rank_pattern": {"v_proj": 1}, "alpha_pattern": {"v_proj": 4}}"#,
            false,
            2.0,
            4.0,
        ),
        (
            r#"{"r": 3, "lora_alpha": 6, "use_rslora": true, "rank_pattern": {"v_proj": 1}}"#,
            false,
            6.0 / 3f64.sqrt(),
            6.0,
        ),
        (
            r#"{"r": 3, "lora_alpha": 3, "fan_in_fan_out": true, "rank_pattern": {"v_proj": 1}}"#,
            true,
            1.0,
            3.0,
        ),
    ];
    for (config, fan_in_fan_out, q_scale, v_scale) in cases {
        twin_adapter(dir.path(), config, fan_in_fan_out, [q_scale, v_scale]);
        let out = dir.path().join("adapter.json");
        let output = Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
            .args(["--base", dir.path().join("base").to_str().unwrap()])
            .args(["--adapter", dir.path().join("twin-lora").to_str().unwrap()])
            .args(["--out", out.to_str().unwrap(), "--no-gpu", "-q"])
            .output()
            .unwrap();
        assert_success(&output);
        let rows = json_rows(&out);
        assert_eq!(rows.len(), 2, "{config}");
        for name in [Q, V] {
            let (a, c) = (row(&rows, name), row(&reference, name));
            for (key, want) in c.as_object().unwrap() {
                if [
                    "model_path",
                    "model_dtype",
                    "seconds",
                    "created_at",
                    "vectors_angle_bound",
                ]
                .contains(&key.as_str())
                {
                    continue;
                }
                let got = &a[key];
                let same = match (got.as_f64(), want.as_f64()) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1e-12),
                    _ => got == want,
                };
                assert!(
                    same,
                    "{config}: {name} {key}: adapter {got}, checkpoint {want}"
                );
            }
        }
    }
}

/// tests/fixtures/diff (made with tests/golden/make_diff_golden.py) against
/// numpy's float64 answers in tests/golden/diff.json.
#[test]
fn the_committed_pair_agrees_with_numpy() {
    let root = common::workspace();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("golden.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tpa-diff"))
        .args([
            "--base",
            root.join("tests/fixtures/diff/base.safetensors")
                .to_str()
                .unwrap(),
        ])
        .args([
            "--model",
            root.join("tests/fixtures/diff/tuned.safetensors")
                .to_str()
                .unwrap(),
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--lora-ranks",
            "1,2,4,8",
            "--no-gpu",
            "-q",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("tests/golden/diff.json")).unwrap())
            .unwrap();
    let golden = golden["tensors"].as_object().unwrap();
    let rows = ours["matrices"].as_array().unwrap();
    assert_eq!(rows.len(), golden.len());
    let agree = |name: &str, key: &str, a: &serde_json::Value, b: &serde_json::Value| match (
        a.as_f64(),
        b.as_f64(),
    ) {
        (Some(x), Some(y)) => assert!(
            (x - y).abs() <= 1e-9 * y.abs(),
            "{name} {key}: {x} vs numpy {y}"
        ),
        _ => assert_eq!(a.is_null(), b.is_null(), "{name} {key}: {a} vs numpy {b}"),
    };
    for row in rows {
        let name = row["param_name"].as_str().unwrap();
        let g = &golden[name];
        for key in [
            "rel_fro",
            "rel_spec",
            "mean_abs_delta",
            "changed_frac",
            "delta_stable_rank",
        ] {
            agree(name, key, &row[key], &g[key]);
        }
        for key in [
            "delta_rank",
            "delta_svd_50_percent_rank",
            "delta_svd_90_percent_rank",
            "delta_svd_99_percent_rank",
        ] {
            assert_eq!(row[key], g[key], "{name} {key}");
        }
        for r in ["1", "2", "4", "8"] {
            agree(
                name,
                r,
                &row[format!("lora_fit_err_{r}")],
                &g["lora_fit_err"][r],
            );
        }
        // numpy's singular vectors, for the matrices (its 1-D vector aside).
        if g.get("intruders_10").is_some_and(|v| !v.is_null()) {
            for key in ["subspace_overlap_left_10", "subspace_overlap_right_10"] {
                agree(name, key, &row[key], &g[key]);
            }
            assert_eq!(row["intruders_10"], g["intruders_10"], "{name}");
            assert!(
                row["vectors_angle_bound"].as_f64().unwrap() < 1e-8,
                "{name}"
            );
        }
    }
    let intruders = |rows: &[serde_json::Value]| {
        rows.iter()
            .filter_map(|r| r["intruders_10"].as_u64())
            .sum::<u64>()
    };
    assert_eq!(intruders(rows), 1, "the planted one in layers.1.v_proj");
}

#[test]
fn three_diff_shards_merged_give_the_rows_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    twins(dir.path());
    let sharded = dir.path().join("sharded.csv");
    for i in 0..3 {
        let shard = format!("{i}/3");
        assert_success(&diff(dir.path(), &sharded, &["--shard", &shard]));
        assert!(!sharded.exists(), "a shard wrote the output");
    }
    let merged = common::merge(&[sharded.to_str().unwrap()]);
    assert_success(&merged);
    assert!(
        stderr(&merged).contains("merged 3 shards: 23 rows"),
        "{}",
        stderr(&merged)
    );
    let single = dir.path().join("single.csv");
    assert_success(&diff(dir.path(), &single, &[]));
    let (sharded, single) = (Table::read(&sharded), Table::read(&single));
    assert_eq!(sharded.columns, single.columns);
    assert_eq!(common::comparable(&sharded), common::comparable(&single));
}
