//! `--model-path` naming a folder of models: every model below it, in
//! sorted order, into one output.

mod common;

use std::path::Path;

use common::{Table, analyze, assert_success, comparable, stderr, transformer};
use tpa_testkit::architectures::{self, Dims};
use tpa_testkit::{Dtype, Fill, write_model};

/// `root/Org/Name` with a toy Llama of `layers` layers.
fn model(root: &Path, id: &str, layers: usize, seed: u64) {
    let dims = Dims {
        layers,
        ..Dims::TOY
    };
    let tensors = architectures::llama(dims, Dtype::BF16, &Fill::Normal { seed, std: 0.02 });
    write_model(&root.join(id), &tensors, 1).unwrap();
}

#[test]
fn a_folder_of_two_models_gives_each_models_rows_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    model(&root, "zeta/Small", 1, 1);
    model(&root, "alpha/Big", 2, 2);
    for tool in ["tpa-transformer", "tpa-analyze"] {
        let run = |args: &[&str]| {
            if tool == "tpa-analyze" {
                analyze(args)
            } else {
                transformer(args)
            }
        };
        let out = dir.path().join(format!("{tool}.json"));
        let output = run(&[
            "--model-path",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-gpu",
        ]);
        assert_success(&output);
        assert!(
            stderr(&output).contains(&format!(
                "2 models below {}: alpha/Big, zeta/Small",
                root.display()
            )),
            "{}",
            stderr(&output)
        );
        let csv = dir.path().join(format!("{tool}.csv"));
        assert_success(&run(&[
            "--model-path",
            root.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
            "--no-gpu",
            "-q",
        ]));
        // The same rows as one run per model, alpha's first.
        let mut expected = Vec::new();
        for id in ["alpha/Big", "zeta/Small"] {
            let single = dir
                .path()
                .join(format!("{tool}-{}.csv", id.replace('/', "-")));
            let path = root.join(id);
            assert_success(&run(&[
                "--model-path",
                path.to_str().unwrap(),
                "--model-id",
                id,
                "--out",
                single.to_str().unwrap(),
                "--no-gpu",
                "-q",
            ]));
            expected.extend(comparable(&Table::read(&single)));
        }
        let table = Table::read(&csv);
        assert_eq!(comparable(&table), expected, "{tool}");
        assert_eq!(table.rows[0]["model_id"], "alpha/Big");
        assert_eq!(table.rows.last().unwrap()["model_id"], "zeta/Small");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let models = json["summary"]["models"].as_array().unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(models[1]["model_id"], "zeta/Small");
    }
}

#[test]
fn a_gguf_model_folder_is_one_of_the_models() {
    // tpa-download --gguf lays a GGUF model out as ORG/NAME/file.gguf.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    model(&root, "alpha/Small", 1, 1);
    let gguf = root.join("org/tiny-GGUF");
    std::fs::create_dir_all(&gguf).unwrap();
    std::fs::copy(
        common::workspace().join("tests/fixtures/gguf/llama/model.Q8_0.gguf"),
        gguf.join("model.Q8_0.gguf"),
    )
    .unwrap();
    let out = dir.path().join("a.csv");
    let output = analyze(&[
        "--model-path",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
    ]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("2 models below"),
        "{}",
        stderr(&output)
    );
    let table = Table::read(&out);
    let q = table
        .rows
        .iter()
        .find(|r| r["model_id"] == "org/tiny-GGUF" && r["param_name"] == "blk.0.attn_q.weight")
        .expect("the GGUF model's rows");
    assert_eq!(q["dtype"], "q8_0");
    assert!(table.rows.iter().any(|r| r["model_id"] == "alpha/Small"));
}

#[test]
fn a_broken_model_fails_the_run_with_its_name_and_the_others_resume() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    model(&root, "a/First", 1, 1);
    std::fs::create_dir_all(root.join("b/Broken")).unwrap();
    std::fs::write(
        root.join("b/Broken/model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    model(&root, "c/Third", 1, 3);
    let out = dir.path().join("all.csv");
    let args = [
        "--model-path",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ];
    let output = transformer(&args);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: model b/Broken (") && err.contains("failed"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    assert!(!out.exists());
    let journal = dir.path().join("all.csv.partial.a--First.jsonl");
    let kept: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept.len(), 12, "a/First's rows are journaled");

    // Mended, the run resumes: a/First's rows come from its journal.
    model(&root, "b/Broken", 1, 2);
    assert_success(&transformer(&[&args[..], &["--resume"]].concat()));
    let table = Table::read(&out);
    assert_eq!(table.rows.len(), 36);
    let first: Vec<&String> = table
        .rows
        .iter()
        .filter(|r| r["model_id"] == "a/First")
        .map(|r| &r["seconds"])
        .collect();
    // The spectrum's seconds, as journaled (norms have none).
    let journaled: Vec<f64> = kept
        .iter()
        .filter_map(|r| r["spectral"]["seconds"].as_f64())
        .collect();
    assert!(!journaled.is_empty());
    for s in first.iter().filter(|s| !s.is_empty()) {
        let s: f64 = s.parse().unwrap();
        assert!(journaled.contains(&s), "{s} was computed again");
    }
    assert!(
        !journal.exists(),
        "the journals are removed once the output is written"
    );
}

#[test]
fn a_folder_refuses_what_works_on_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    model(&root, "a/One", 1, 1);
    model(&root, "b/Two", 1, 2);
    let out = dir.path().join("o.csv");
    let output = transformer(&[
        "--model-path",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shard",
        "0/2",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--shard works on one model"),
        "{}",
        stderr(&output)
    );
    let output = analyze(&[
        "--model-path",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model-id",
        "x/y",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("holds 2 models"),
        "{}",
        stderr(&output)
    );
}
