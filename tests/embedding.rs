//! `tpa-embedding` end to end on generated embeddings with known clusters.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tpa_testkit::{Dtype, Fill, SplitMix64, TensorSpec, write_safetensors};

fn embedding(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-embedding"))
        .args(args)
        .output()
        .expect("the tpa-embedding binary runs")
}

/// A model whose token embedding has three well separated groups of 200
/// rows (bf16), plus a position embedding that must not be picked.
fn clustered_model(dir: &Path) -> PathBuf {
    let mut rng = SplitMix64::new(11);
    let d = 16;
    // Every feature separates the groups (standardization scales pure-noise
    // features up to the informative ones).
    let centers: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..d).map(|_| 4.0 * rng.normal()).collect())
        .collect();
    let values: Vec<f64> = (0..600)
        .flat_map(|i| {
            centers[i % 3]
                .iter()
                .map(|m| m + 0.3 * rng.normal())
                .collect::<Vec<_>>()
        })
        .collect();
    let path = dir.join("model.safetensors");
    write_safetensors(
        &path,
        &[
            TensorSpec::new(
                "model.embed_positions.weight",
                Dtype::F32,
                &[64, d],
                Fill::Normal { seed: 1, std: 1.0 },
            ),
            TensorSpec::new(
                "model.embed_tokens.weight",
                Dtype::BF16,
                &[600, d],
                Fill::Values(values),
            ),
        ],
    )
    .unwrap();
    path
}

#[test]
fn finds_the_three_groups_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = clustered_model(dir.path());
    let out_dir = dir.path().join("out");
    let stats = dir.path().join("stats.csv");
    let output = embedding(&[
        "--model-path",
        model.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--out",
        stats.to_str().unwrap(),
        "--max-k",
        "8",
        "--n-init",
        "3",
    ]);
    assert_success(&output);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("clustering_results.json")).unwrap())
            .unwrap();
    assert_eq!(report["optimal_k"], 3);
    assert_eq!(report["tensor"], "model.embed_tokens.weight");
    assert_eq!(
        (
            report["total_tokens"].as_u64(),
            report["embedding_dimension"].as_u64()
        ),
        (Some(600), Some(16))
    );
    assert_eq!(report["gpu_accelerated"], false);
    assert_eq!(report["run"]["sweep_sampled"], false);
    assert_eq!(report["run"]["tokenizer"], false);
    let clusters = report["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    for c in clusters {
        assert_eq!(c["size"], 200);
        assert!((c["percentage"].as_f64().unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert!(c["silhouette_score"].as_f64().unwrap() > 0.5);
        // No tokenizer: token ids, nearest first.
        let ids: Vec<String> = c["representative_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(c["representative_text"].as_str().unwrap(), ids.join(", "));
    }
    let curve = report["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 8);
    assert!(curve[0]["f_ratio"].is_null(), "k = 1 has no F");
    assert_eq!(curve[2]["df_between"], 2);
    assert_eq!(curve[2]["df_within"], 597);
    assert_eq!(curve[2]["p_value_text"], "< 1e-300");

    let summary = Table::read(&out_dir.join("embedding_clusters_summary.csv"));
    assert_eq!(
        summary.columns,
        [
            "cluster_id",
            "size",
            "percentage",
            "avg_distance",
            "silhouette_score",
            "meaningful_text"
        ]
    );
    assert_eq!(summary.rows.len(), 3);
    let png = std::fs::read(out_dir.join("anova_curve.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out_dir.join("anova_curve.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("F-ratio"));
    let stats = Table::read(&stats);
    assert_eq!(stats.rows[0]["param_name"], "model.embed_tokens.weight");
    assert_eq!(
        (
            stats.rows[0]["dtype"].as_str(),
            stats.rows[0]["rank"].as_str()
        ),
        ("bfloat16", "16")
    );
    let console = stdout(&output);
    assert!(console.contains("k = 3 by Anova"), "{console}");
}

#[test]
fn a_sampled_sweep_is_stated_and_original_flags_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = clustered_model(dir.path());
    let out = dir.path().join("o").join("embedding.csv");
    let output = embedding(&[
        "--model_path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max_k",
        "5",
        "--random_state",
        "7",
        "--n_representatives",
        "4",
        "--use_cpu",
        "--sweep-sample",
        "300",
        "-q",
    ]);
    assert_success(&output);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("o/clustering_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["run"]["sweep_sampled"], true);
    assert_eq!(report["run"]["sweep_rows"], 300);
    assert_eq!(report["run"]["seed"], 7);
    assert_eq!(report["optimal_k"], 3);
    assert_eq!(
        report["clusters"][0]["representative_ids"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let sizes: u64 = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .sum();
    assert_eq!(sizes, 600, "the chosen k is refitted on all rows");
}

#[test]
fn the_embedding_can_be_named_and_mistakes_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let model = clustered_model(dir.path());
    let out_dir = dir.path().join("out");
    let named = embedding(&[
        "--model-path",
        model.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--tensor",
        "model.embed_positions.weight",
        "--max-k",
        "3",
        "-q",
    ]);
    assert_success(&named);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("clustering_results.json")).unwrap())
            .unwrap();
    assert_eq!(report["tensor"], "model.embed_positions.weight");

    let missing = embedding(&[
        "--model-path",
        model.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--tensor",
        "nope",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("tensor nope is not in the model"),
        "{}",
        stderr(&missing)
    );

    let no_destination = embedding(&["--model-path", model.to_str().unwrap()]);
    assert_eq!(no_destination.status.code(), Some(2), "a usage error");

    let bad_k = embedding(&[
        "--model-path",
        model.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--max-k",
        "1",
    ]);
    assert_eq!(bad_k.status.code(), Some(1));
    assert!(stderr(&bad_k).contains("--max-k must be at least 2"));
}

#[test]
fn a_killed_sweep_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    write_safetensors(
        &model,
        &[TensorSpec::new(
            "model.embed_tokens.weight",
            Dtype::F32,
            &[4_000, 16],
            Fill::Normal { seed: 5, std: 1.0 },
        )],
    )
    .unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpa-embedding"));
        command
            .args(["--model-path", model.to_str().unwrap()])
            .args(["--output-dir", out.to_str().unwrap()])
            .args(["--max-k", "20", "--n-init", "4", "--skip-representatives"])
            .arg("--no-gpu")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .args(extra);
        command
    };
    let fresh_dir = dir.path().join("fresh");
    assert_success(&run(&fresh_dir, &[]).output().unwrap());

    let out = dir.path().join("interrupted");
    let journal = out.join(".tpa-embedding.partial.jsonl");
    let kept = kill_once_journaled(run(&out, &[]), &journal, 4);
    assert!(!out.join("clustering_results.json").exists());

    let resumed = run(&out, &["--resume"]).output().unwrap();
    assert_success(&resumed);
    let said = stderr(&resumed);
    let fitted: usize = said
        .split("resuming: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resuming line in: {said}"));
    assert_eq!(fitted, kept, "{said}");
    assert!(
        !journal.exists(),
        "the journal is removed once the outputs are written"
    );
    let read = |d: &Path| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("clustering_results.json")).unwrap(),
        )
        .unwrap();
        v.as_object_mut().unwrap().remove("run");
        for row in v["curve"].as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("seconds");
        }
        v
    };
    assert_eq!(read(&out), read(&fresh_dir));

    // A journal from other settings is refused, not mixed in.
    kill_once_journaled(run(&out, &[]), &journal, 1);
    let other = run(&out, &["--resume", "--random-state", "7"])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    assert!(stderr(&other).contains("from a run with other settings"));
}
