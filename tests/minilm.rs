//! tpa-analyze on a real model, all-MiniLM-L6-v2, against numpy float64.
//!
//! `.ci/run` (or `scripts/fetch-minilm.sh`) puts the model in
//! `data/models/all-MiniLM-L6-v2`; `TPA_MINILM_DIR` points elsewhere. Without
//! it the test is skipped locally, but fails when `CI` is set.

mod common;

use std::path::PathBuf;

use common::*;

fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TPA_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("data/models/all-MiniLM-L6-v2"));
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but MiniLM is missing at {}: run scripts/fetch-minilm.sh",
        dir.display()
    );
    eprintln!(
        "skipping: MiniLM not found at {} (run scripts/fetch-minilm.sh)",
        dir.display()
    );
    None
}

fn close(ours: f64, numpy: f64, rel: f64) -> bool {
    ours == numpy || (ours - numpy).abs() <= rel * numpy.abs()
}

#[test]
fn statistics_match_numpy_float64_on_all_104_tensors() {
    let Some(model) = minilm_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("minilm.csv");
    assert_success(&analyze(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let ours = Table::read(&out);
    let golden = Table::read(&workspace().join("tests/golden/minilm_stats.csv"));
    assert_eq!(ours.rows.len(), 104);
    assert_eq!(golden.rows.len(), 104);

    for expected in &golden.rows {
        let name = &expected["param_name"];
        let row = ours.row(name);
        for column in ["dtype", "shape", "numel", "nan_count", "inf_count"] {
            assert_eq!(row[column], expected[column], "{name} {column}");
        }
        for column in ["mean", "var", "min", "max", "std"] {
            let (a, b) = (float(&row[column]), float(&expected[column]));
            assert!(close(a, b, 1e-9), "{name} {column}: tpa {a} vs numpy {b}");
        }
        // Sparsity is a count over numel: exact.
        assert_eq!(
            float(&row["sparsity"]),
            float(&expected["sparsity"]),
            "{name} sparsity"
        );
    }

    let ids = ours.row("embeddings.position_ids");
    assert_eq!(
        (ids["dtype"].as_str(), ids["shape"].as_str()),
        ("int64", "[1, 512]")
    );
    assert_eq!(float(&ids["mean"]), 255.5);
    let words = ours.row("embeddings.word_embeddings.weight");
    assert_eq!(
        (
            words["block_type"].as_str(),
            words["rows"].as_str(),
            words["cols"].as_str()
        ),
        ("embedding", "30522", "384")
    );
    assert_eq!(
        ours.rows
            .iter()
            .filter(|r| r["block_type"] == "q_proj")
            .count(),
        6
    );
}

#[test]
fn spectra_match_scipy_and_weightwatcher_on_all_104_tensors() {
    let Some(model) = minilm_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spectra.csv");
    let output = transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
        "--quiet",
    ]);
    assert_success(&output);
    let ours = Table::read(&out);
    let golden = Table::read(&workspace().join("tests/golden/minilm_spectra.csv"));
    assert_eq!((ours.rows.len(), golden.rows.len()), (104, 104));
    for expected in &golden.rows {
        let name = &expected["param_name"];
        let row = ours.row(name);
        for column in [
            "rows",
            "cols",
            "actual_rank",
            "svd_50_percent_rank",
            "svd_90_percent_rank",
            "svd_99_percent_rank",
        ] {
            assert_eq!(row[column], expected[column], "{name} {column}");
        }
        let tolerances = [
            ("spectral_norm", 1e-9),
            ("frobenius_norm", 1e-9),
            ("stable_rank", 1e-9),
            ("effective_rank", 1e-9),
            ("log_norm", 1e-9),
            ("log_spectral_norm", 1e-9),
            ("alpha", 1e-6),
            ("alpha_weighted", 1e-6),
            ("ks_distance", 1e-6),
        ];
        for (column, rel) in tolerances {
            match (row[column].as_str(), expected[column].as_str()) {
                ("", "") => {}
                (a, b) => {
                    let (a, b) = (float(a), float(b));
                    assert!(
                        close(a, b, rel),
                        "{name} {column}: tpa {a} vs reference {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn kmeans_inertia_and_f_ratio_match_scikit_learn() {
    use tpa_core::analyses::embedding::kmeans::{Data, KMeansOptions, kmeans};
    use tpa_core::analyses::embedding::scores::anova;
    use tpa_core::analyses::embedding::{Standardized, find_embedding, load_f32};

    let Some(dir) = minilm_dir() else { return };
    let model = tpa_core::model::Model::open(&dir).unwrap();
    let tensor = find_embedding(&model, None).unwrap();
    assert_eq!(tensor.name(), "embeddings.word_embeddings.weight");
    let (raw, _, d) = load_f32(&tensor).unwrap();
    let z = Standardized::new(&raw, d);
    let x = z.to_f32();
    let data = Data::new(&x, d);
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(workspace().join("tests/golden/minilm_kmeans.json")).unwrap(),
    )
    .unwrap();
    for k in [2usize, 5, 10, 20] {
        let g = &golden["k"][k.to_string()];
        let labels: Vec<u32> = g["labels"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| c.to_digit(36).unwrap())
            .collect();
        let ours = anova(&z, &labels, k).unwrap().f_ratio;
        let theirs = g["f_ratio"].as_f64().unwrap();
        assert!(
            close(ours, theirs, 1e-9),
            "k={k}: F {ours} vs scikit-learn {theirs}"
        );
        let fit = kmeans(&data, &KMeansOptions::new(k, 42));
        let sklearn = g["inertia"].as_f64().unwrap();
        assert!(
            (fit.inertia / sklearn - 1.0).abs() < 0.01,
            "k={k}: inertia {} vs scikit-learn {sklearn}",
            fit.inertia
        );
    }
}

#[test]
fn embedding_clusters_show_real_wordpieces() {
    let Some(model) = minilm_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("embedding.csv");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tpa-embedding"))
        .args([
            "--model-path",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--max-k",
            "3",
            "--n-init",
            "2",
            "--silhouette-sample",
            "2000",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("clustering_results.json")).unwrap())
            .unwrap();
    assert_eq!(report["total_tokens"], 30522);
    assert_eq!(report["embedding_dimension"], 384);
    assert_eq!(report["run"]["tokenizer"], true);
    for cluster in report["clusters"].as_array().unwrap() {
        let ids: Vec<String> = cluster["representative_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        let texts: Vec<&str> = cluster["representative_text"]
            .as_str()
            .unwrap()
            .split(", ")
            .collect();
        assert_eq!(texts.len(), 10);
        assert!(
            texts.iter().zip(&ids).all(|(t, id)| *t != id),
            "ids shown instead of tokens: {texts:?}"
        );
    }
    let all: String = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["meaningful_text"].as_str().unwrap())
        .collect();
    assert!(
        all.chars().any(|c| c.is_ascii_lowercase()),
        "no wordpiece among {all}"
    );
    let stats = Table::read(&out);
    assert_eq!(stats.rows.len(), 1);
    assert_eq!(
        stats.rows[0]["param_name"],
        "embeddings.word_embeddings.weight"
    );
    assert_eq!(stats.rows[0]["rank"], "384");
    for file in [
        "embedding_clusters_summary.csv",
        "anova_curve.png",
        "anova_curve.svg",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
}

/// The report's alerts on a real, well-known model, each one read and
/// explained. A rule change that adds or removes one here must say why.
#[test]
fn report_alerts_on_minilm_are_the_known_ones() {
    let Some(model) = minilm_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let output = transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        dir.path().join("minilm.csv").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-gpu",
        "--quiet",
    ]);
    assert_success(&output);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("alerts.json")).unwrap()).unwrap();
    let found: std::collections::BTreeSet<(String, String, String)> = doc["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (s("severity"), s("kind"), s("param_name"))
        })
        .collect();
    let expected: std::collections::BTreeSet<(String, String, String)> = [
        // sentence-transformers pools by the mean; BERT's pooler is left as
        // initialised: a zero bias and a random-like weight (α 12.4).
        ("warning", "zero_tensor", "pooler.dense.bias"),
        ("warning", "alpha_high", "pooler.dense.weight"),
        // Learned positions are smooth: 90% of their energy lies in 11 of 384
        // directions, a very heavy tail (α 1.55).
        (
            "warning",
            "alpha_low",
            "embeddings.position_embeddings.weight",
        ),
        // The top of the 6-layer distilled encoder: value and key matrices of
        // layers 4-5 have light tails (α 8.4, 7.8, 6.6), WeightWatcher's
        // "under-trained" side.
        (
            "warning",
            "alpha_high",
            "encoder.layer.4.attention.self.value.weight",
        ),
        (
            "warning",
            "alpha_high",
            "encoder.layer.5.attention.self.value.weight",
        ),
        (
            "warning",
            "alpha_high",
            "encoder.layer.5.attention.self.key.weight",
        ),
        // Against their own block type: layer 5's key α is 2.4× the keys'
        // median (2.76), layer 4's output projection α half the median (5.06).
        (
            "warning",
            "layer_outlier",
            "encoder.layer.5.attention.self.key.weight",
        ),
        (
            "warning",
            "layer_outlier",
            "encoder.layer.4.attention.output.dense.weight",
        ),
    ]
    .into_iter()
    .map(|(s, k, n)| (s.to_owned(), k.to_owned(), n.to_owned()))
    .collect();
    assert_eq!(found, expected);
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        html.contains("BertModel"),
        "the config facts are in the overview"
    );
    assert!(
        html.contains("22,713,728"),
        "the parameter count is in the overview"
    );
}
