//! Quantized checkpoints: every format's fixture (made with the format's own
//! library, or a transcription checked against it; see
//! tests/golden/make_quantized.py) analysed as the dequantized weight, and
//! compared with numpy/scipy statistics and ranks of that weight.

mod common;

use std::path::{Path, PathBuf};

use common::{
    Table, analyze, assert_golden_matrix, assert_success, float, stderr, transformer, workspace,
};
use serde_json::{Value, json};
use tpa_testkit::quantized::{Scheme, write_quantized_model};
use tpa_testkit::{Dtype, Fill, TensorSpec};

fn golden() -> Value {
    let path = workspace().join("tests/golden/quantized.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn fixture(case: &str) -> PathBuf {
    workspace().join("tests/fixtures/quant").join(case)
}

fn run_transformer(model: &Path, extra: &[&str]) -> Table {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let mut args = vec![
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let output = transformer(&args);
    assert_success(&output);
    Table::read(&out)
}

#[test]
fn every_format_matches_the_golden_statistics_and_ranks_of_its_dequantized_weight() {
    let golden = golden();
    let cases = golden["cases"].as_object().unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for (case, spec) in cases {
        let table = run_transformer(&fixture(case), &[]);
        let weights = spec["weights"].as_object().unwrap();
        // One row per logical matrix plus the plain norm; no sidecar rows.
        let matrices: usize = weights
            .values()
            .map(|w| w["matrices"].as_array().unwrap().len())
            .sum();
        assert_eq!(
            table.rows.len(),
            matrices + spec["plain"].as_array().unwrap().len(),
            "{case}: rows {:?}",
            table
                .rows
                .iter()
                .map(|r| &r["param_name"])
                .collect::<Vec<_>>()
        );
        for (name, want) in weights {
            let shape: Vec<u64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            for (e, m) in want["matrices"].as_array().unwrap().iter().enumerate() {
                let row = table
                    .rows
                    .iter()
                    .find(|r| {
                        r["param_name"] == *name
                            && (shape.len() == 2 || r["expert_index"] == e.to_string())
                    })
                    .unwrap_or_else(|| panic!("{case}: no row for {name} [{e}]"));
                let what = |c: &str| format!("{case} {name}[{e}] {c}");
                assert_eq!(
                    row["quant"],
                    spec["scheme"].as_str().unwrap(),
                    "{}",
                    what("quant")
                );
                assert_golden_matrix(row, m, &format!("{case} {name}[{e}]"));
                if shape.len() == 2 {
                    assert_eq!(row["shape"], format!("{shape:?}"), "{}", what("shape"));
                }
            }
        }
        for plain in spec["plain"].as_array().unwrap() {
            assert_eq!(
                table.row(plain.as_str().unwrap())["quant"],
                "none",
                "{case}"
            );
        }
    }
}

/// A shape each generated scheme can store, with its odd cases: ragged FP8
/// blocks and bitsandbytes blocks, stacked MLX and gpt-oss experts.
fn generated_shape(scheme: &Scheme) -> Vec<usize> {
    match scheme {
        Scheme::Fp8Block { .. } => vec![200, 300],
        Scheme::Bnb4 { .. } => vec![90, 250],
        Scheme::MlxAffine { .. } | Scheme::MlxMxfp4 | Scheme::GptOssMxfp4 => vec![3, 32, 256],
        _ => vec![96, 256],
    }
}

#[test]
fn generated_models_of_every_format_read_as_their_generator_dequantizes() {
    let schemes = Scheme::examples();
    assert!(schemes.len() >= 20);
    for scheme in schemes {
        let dir = tempfile::tempdir().unwrap();
        let shape = generated_shape(&scheme);
        let name = if shape.len() == 3 {
            "model.layers.0.mlp.experts.down_proj.weight"
        } else {
            "model.layers.0.mlp.down_proj.weight"
        };
        let w = scheme.quantize(name, &shape, 11).unwrap();
        let mut tensors = w.tensors.clone();
        tensors.push(TensorSpec::new(
            "model.norm.weight",
            Dtype::BF16,
            &[64],
            Fill::Pattern,
        ));
        write_quantized_model(dir.path(), &tensors, &scheme, 1, json!({})).unwrap();
        let table = run_transformer(dir.path(), &[]);
        let values = w.dequantized();
        let per = values.len() / shape[0];
        let experts = if shape.len() == 3 { shape[0] } else { 1 };
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|r| r["param_name"] == w.name)
            .collect();
        assert_eq!(rows.len(), experts, "{scheme}: {:?}", table.rows.len());
        assert_eq!(table.rows.len(), experts + 1, "{scheme}: sidecar rows");
        for (e, row) in rows.iter().enumerate() {
            let m = if experts > 1 {
                &values[e * per..(e + 1) * per]
            } else {
                &values[..]
            };
            let n = m.len() as f64;
            let mean = m.iter().sum::<f64>() / n;
            let var = m.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            let frobenius = m.iter().map(|x| x * x).sum::<f64>().sqrt();
            let min = m.iter().copied().fold(f64::INFINITY, f64::min);
            let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let what = |c: &str| format!("{scheme} [{e}] {c}");
            assert_eq!(row["quant"], scheme.label(), "{}", what("quant"));
            for (column, want) in [
                ("mean", mean),
                ("var", var),
                ("min", min),
                ("max", max),
                ("frobenius_norm", frobenius),
            ] {
                let ours = float(&row[column]);
                assert!(
                    (ours - want).abs() <= 1e-10 * want.abs().max(1e-300),
                    "{}: tpa {ours:e}, generator {want:e}",
                    what(column)
                );
            }
            assert_eq!(row["numel"], m.len().to_string(), "{}", what("numel"));
        }
    }
}

#[test]
fn raw_analyses_the_stored_tensors_and_labels_every_row_raw() {
    let model = fixture("gptq_v1_int4_desc_act");
    let table = run_transformer(&model, &["--raw"]);
    let names: Vec<&str> = table
        .rows
        .iter()
        .map(|r| r["param_name"].as_str())
        .collect();
    for stored in ["qweight", "qzeros", "scales", "g_idx"] {
        let name = format!("model.layers.0.self_attn.k_proj.{stored}");
        assert!(
            names.contains(&name.as_str()),
            "{name} missing from {names:?}"
        );
    }
    assert!(table.rows.iter().all(|r| r["quant"] == "raw"));
    assert_eq!(
        table.row("model.layers.0.self_attn.k_proj.qweight")["dtype"],
        "int32"
    );
}

#[test]
fn analyze_counts_logical_parameters_and_stored_bytes() {
    let model = fixture("mlx_affine_4bit");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let output = analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-rank",
        "-q",
    ]);
    assert_success(&output);
    let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = json["tensors"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["param_name"] == "model.layers.0.mlp.down_proj.weight")
        .unwrap();
    // [96, 256] at 4 bits: 96·32 u32 words of codes; f16 scales and biases per 64.
    assert_eq!(row["numel"], 96 * 256);
    assert_eq!(row["dtype"], "uint4");
    assert_eq!(row["quant"], "mlx-affine-int4-g64");
    assert_eq!(row["nbytes"], 96 * 32 * 4);
    assert_eq!(row["quant_bytes"], 96 * 32 * 4 + 2 * (96 * 4 * 2));
    let summary = &json["summary"];
    assert_eq!(summary["total"]["parameters"], 96 * 256 + 256);
    assert_eq!(
        summary["total"]["bytes"],
        96 * 32 * 4 + 2 * (96 * 4 * 2) + 256 * 2
    );
    assert_eq!(summary["quantization"]["schemes"]["mlx-affine-int4-g64"], 1);
    assert_eq!(summary["quantization"]["stored_tensors"], 3);
    assert!(
        summary["quantization"]["note"]
            .as_str()
            .unwrap()
            .starts_with("dequantized 1 quantized weight exactly"),
        "{}",
        summary["quantization"]["note"]
    );
}

/// A checkpoint's tensors as (name, dtype, shape, bytes), for editing.
type Tensors = Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// Copies a fixture to a temporary directory, rewriting its tensors with
/// `edit` and its config with `config`.
fn altered(
    case: &str,
    edit: impl Fn(&mut Tensors),
    config: impl Fn(&mut Value),
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture(case);
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    config(&mut cfg);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    dir
}

/// Runs tpa-transformer and returns its stderr, asserting a clean failure.
fn fails(model: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let output = transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "an output was written");
    err
}

fn drop_tensor(name: &'static str) -> impl Fn(&mut Tensors) {
    move |t| t.retain(|x| x.0 != name)
}

/// Applies `change` to the tensor whose name ends with `suffix`.
fn with_tensor(
    suffix: &'static str,
    change: impl Fn(&mut (String, safetensors::Dtype, Vec<usize>, Vec<u8>)),
) -> impl Fn(&mut Tensors) {
    move |t| change(t.iter_mut().find(|x| x.0.ends_with(suffix)).unwrap())
}

#[test]
fn bad_sidecars_and_configs_are_errors_that_name_the_tensor_and_file() {
    let keep = |_: &mut Value| {};
    // A scale of the wrong shape (FP8 blocks of a [200, 300] weight are 2 × 3).
    let dir = altered(
        "fp8_block_ragged_f32",
        with_tensor("weight_scale_inv", |s| s.2 = vec![3, 2]),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("model.layers.0.mlp.down_proj.weight_scale_inv"),
        "{err}"
    );
    assert!(
        err.contains("model.safetensors") && err.contains("[2, 3]"),
        "{err}"
    );

    // A missing sibling.
    let dir = altered(
        "gptq_v1_int4_desc_act",
        drop_tensor("model.layers.0.self_attn.k_proj.qzeros"),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("model.layers.0.self_attn.k_proj.qzeros is not in the model"),
        "{err}"
    );

    // Stacked (3-D) compressed-tensors codes: its experts are separate
    // modules, so such a tensor is refused rather than guessed.
    let dir = altered(
        "ct_int4_asym_g32",
        with_tensor("weight_packed", |p| p.2 = vec![2, 32, 32]),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("q_proj.weight_packed") && err.contains("must be 2-D"),
        "{err}"
    );

    // A packed length that does not match the shape.
    let dir = altered(
        "ct_int4_sym_channel",
        with_tensor("weight_shape", |s| {
            s.3[..8].copy_from_slice(&100i64.to_le_bytes())
        }),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("weight_packed") && err.contains("does not match the shape"),
        "{err}"
    );

    // A configuration that names a format whose tensors are missing.
    let dir = altered(
        "bnb_int8",
        |_| {},
        |c| {
            c["quantization_config"] =
                serde_json::json!({"quant_method": "fp8", "weight_block_size": [128, 128]});
        },
    );
    let err = fails(dir.path());
    assert!(
        err.contains("bitsandbytes") && err.contains("\"fp8\""),
        "{err}"
    );
    let dir = altered(
        "mlx_affine_4bit",
        |t| t.retain(|x| !x.0.contains("down_proj")),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("config.json") && err.contains("no tensor"),
        "{err}"
    );

    // Recognised but unsupported layouts are refused, never read raw.
    let dir = altered(
        "gptq_v2_int8_channel",
        |_| {},
        |c| {
            c["quantization_config"]["checkpoint_format"] = "marlin".into();
        },
    );
    let err = fails(dir.path());
    assert!(err.contains("marlin") && err.contains("--raw"), "{err}");
    let dir = altered(
        "awq_int4_g64",
        |_| {},
        |c| {
            c["quantization_config"]["version"] = "gemv".into();
        },
    );
    assert!(fails(dir.path()).contains("AWQ version \"gemv\""));
    let dir = altered(
        "ct_fp8_tensor",
        |_| {},
        |c| {
            c["quantization_config"]["format"] = "sparse-24-bitmask".into();
        },
    );
    assert!(fails(dir.path()).contains("sparse"));
    // Also in an MLX per-layer override.
    let dir = altered(
        "mlx_mxfp4",
        |_| {},
        |c| {
            c["quantization"]["model.layers.0.mlp.down_proj"] =
                serde_json::json!({"mode": "nvfp4", "group_size": 16, "bits": 4});
        },
    );
    assert!(fails(dir.path()).contains("MLX quantization mode \"nvfp4\""));

    // bitsandbytes' packed codes must hold the shape its quant_state gives.
    let dir = altered(
        "bnb_fp4",
        with_tensor("model.layers.0.self_attn.o_proj.weight", |w| {
            w.2 = vec![w.2[0] - 1, 1];
            w.3.truncate(w.2[0]);
        }),
        keep,
    );
    let err = fails(dir.path());
    assert!(
        err.contains("o_proj.weight") && err.contains("does not match the shape"),
        "{err}"
    );
}

#[test]
fn nan_scales_take_the_nan_path() {
    let dir = altered(
        "fp8_block_bf16_scales",
        with_tensor("weight_scale_inv", |s| {
            s.3[..2].copy_from_slice(&half::bf16::NAN.to_le_bytes())
        }),
        |_| {},
    );
    let table = run_transformer(dir.path(), &[]);
    let row = table.row("model.layers.0.mlp.down_proj.weight");
    // The first 128 × 128 block is NaN; the rest still counts.
    assert_eq!(row["nan_count"], (128 * 128).to_string());
    assert_eq!(row["actual_rank"], "");
}

#[test]
fn rotated_compressed_tensors_checkpoints_say_so_in_the_summary() {
    let analyze_json = |dir: &Path| -> Value {
        let out = dir.join("out.json");
        let output = analyze(&[
            "--model-path",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-rank",
            "-q",
        ]);
        assert_success(&output);
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
    };
    let plain = altered("ct_int4_asym_g32", |_| {}, |_| {});
    let rotated = altered(
        "ct_int4_asym_g32",
        |_| {},
        |cfg| {
            cfg["quantization_config"]["transform_config"] =
                json!({"config_groups": {"u": {"type": "hadamard", "apply": []}}});
        },
    );
    let note = |v: &Value| {
        v["summary"]["quantization"]["note"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (plain, rotated) = (analyze_json(plain.path()), analyze_json(rotated.path()));
    assert!(
        !note(&plain).contains("transform_config"),
        "{}",
        note(&plain)
    );
    assert!(
        note(&rotated).contains("has a transform_config: the weights were rotated"),
        "{}",
        note(&rotated)
    );
    // The numbers are those of the weight as stored either way.
    let numbers = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["param_name"].clone(), r["mean"].clone(), r["var"].clone()))
            .collect()
    };
    assert_eq!(numbers(&plain), numbers(&rotated));
}
