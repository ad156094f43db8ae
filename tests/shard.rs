//! `--shard I/N` and `tpa-merge`: shard processes on one generated model,
//! merged, give the rows of a single run.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    Table, assert_success, comparable, kill_once_journaled, many_matrices, merge, stderr,
    transformer,
};
use tpa_testkit::architectures::{self, Dims};
use tpa_testkit::{Dtype, Fill, write_model};

/// A toy Llama with 21 rows.
fn model(dir: &Path) -> String {
    let fill = Fill::Normal { seed: 3, std: 0.02 };
    let tensors = architectures::llama(Dims::TOY, Dtype::BF16, &fill);
    write_model(&dir.join("m"), &tensors, 1).unwrap();
    dir.join("m").to_str().unwrap().to_owned()
}

fn run_shard(model: &str, out: &Path, shard: &str, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "--model-path",
        model,
        "--out",
        out,
        "--shard",
        shard,
        "--no-gpu",
        "-q",
    ];
    args.extend_from_slice(extra);
    transformer(&args)
}

#[test]
fn three_shards_merged_give_the_rows_of_one_run_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = dir.path().join("sharded.csv");
    for i in 0..3 {
        assert_success(&run_shard(&model, &out, &format!("{i}/3"), &[]));
        assert!(!out.exists(), "a shard wrote the output");
    }
    let merged = merge(&[out.to_str().unwrap()]);
    assert_success(&merged);
    assert!(
        stderr(&merged).contains("merged 3 shards: 21 rows"),
        "{}",
        stderr(&merged)
    );

    let single = dir.path().join("single.csv");
    assert_success(&transformer(&[
        "--model-path",
        &model,
        "--out",
        single.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    let (sharded, single) = (Table::read(&out), Table::read(&single));
    assert_eq!(sharded.columns, single.columns);
    assert_eq!(comparable(&sharded), comparable(&single));

    // Each shard did a part: the three journals hold 21 rows between them,
    // none of them all.
    let rows: Vec<usize> = (0..3)
        .map(|i| {
            let journal = dir.path().join(format!("sharded.csv.parts/{i}-of-3.jsonl"));
            std::fs::read_to_string(journal).unwrap().lines().count() - 1
        })
        .collect();
    assert_eq!(rows.iter().sum::<usize>(), 21, "{rows:?}");
    assert!(rows.iter().all(|&n| (1..21).contains(&n)), "{rows:?}");

    // A finished shard run again does nothing and says so.
    let again = run_shard(&model, &out, "1/3", &[]);
    assert_success(&again);
    assert!(
        stderr(&again).contains("shard 1/3 is already complete"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn merge_names_the_missing_shards_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = dir.path().join("out.json");
    assert_success(&run_shard(&model, &out, "1/3", &[]));
    let merged = merge(&[out.to_str().unwrap()]);
    assert_eq!(merged.status.code(), Some(1));
    let err = stderr(&merged);
    assert!(err.contains("missing shards: 0/3, 2/3"), "{err}");
    assert!(err.contains("--shard 0/3 --resume"), "{err}");
    assert!(!out.exists());

    // Merging where no shard ran says what to do.
    let err = stderr(&merge(&[dir.path().join("none.csv").to_str().unwrap()]));
    assert!(
        err.contains("holds no plan.json") && err.contains("--shard I/N"),
        "{err}"
    );
}

#[test]
fn a_shard_with_other_options_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = dir.path().join("out.csv");
    assert_success(&run_shard(&model, &out, "0/2", &[]));
    let other = run_shard(&model, &out, "1/2", &["--rank-rtol", "1e-3"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(stderr(&other).contains("plan.json"), "{}", stderr(&other));
    let other = run_shard(&model, &out, "1/3", &[]);
    assert_eq!(other.status.code(), Some(1), "another shard count");
}

#[test]
fn shard_auto_reads_the_schedulers_variables() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = dir.path().join("out.csv");
    let clean = |c: &mut Command| {
        for v in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_COUNT",
            "RANK",
            "WORLD_SIZE",
            "JOB_COMPLETION_INDEX",
            "TPA_SHARD_COUNT",
        ] {
            c.env_remove(v);
        }
    };
    let auto = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tpa-transformer"));
        clean(&mut c);
        c.args([
            "--model-path",
            &model,
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "auto",
            "--no-gpu",
            "-q",
        ]);
        c.envs(env.iter().copied());
        c.output().unwrap()
    };
    // Slurm --array=4-5: task 5 is shard 1/2; torchrun rank 0 of 2.
    let slurm = auto(&[
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]);
    assert_success(&slurm);
    assert!(dir.path().join("out.csv.parts/1-of-2.done").exists());
    assert_success(&auto(&[("RANK", "0"), ("WORLD_SIZE", "2")]));
    assert_success(&merge(&[out.to_str().unwrap()]));
    assert_eq!(Table::read(&out).rows.len(), 21);

    let none = auto(&[]);
    assert_eq!(none.status.code(), Some(2));
    let err = stderr(&none);
    assert!(
        err.contains("SLURM_ARRAY_TASK_ID") && err.contains("JOB_COMPLETION_INDEX"),
        "{err}"
    );
}

#[test]
fn a_shard_killed_mid_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let model = many_matrices(dir.path(), 12, 900);
    let model = model.to_str().unwrap();
    let out = dir.path().join("out.csv");
    let journal = dir.path().join("out.csv.parts/0-of-2.jsonl");
    let args = [
        "--model-path",
        model,
        "--out",
        out.to_str().unwrap(),
        "--shard",
        "0/2",
        "--no-gpu",
        "-q",
        "-j",
        "1",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_tpa-transformer"));
    command.args(args);
    let kept = kill_once_journaled(command, &journal, 2);
    assert!(!dir.path().join("out.csv.parts/0-of-2.done").exists());
    let resumed = transformer(&[&args[..], &["--resume"]].concat());
    assert_success(&resumed);
    assert!(dir.path().join("out.csv.parts/0-of-2.done").exists());
    assert_success(&run_shard(model, &out, "1/2", &["-j", "1"]));
    assert_success(&merge(&[out.to_str().unwrap()]));
    let table = Table::read(&out);
    assert_eq!(table.rows.len(), 12);
    let mut names: Vec<&str> = table
        .rows
        .iter()
        .map(|r| r["param_name"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 12, "every matrix once");
    assert!((2..6).contains(&kept), "kept {kept} of shard 0's 6");
}

#[test]
fn merge_writes_the_spectra_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let out = dir.path().join("out.csv");
    let spectra = dir.path().join("sv.safetensors");
    let keep = ["--save-spectra", spectra.to_str().unwrap()];
    for i in 0..2 {
        assert_success(&run_shard(&model, &out, &format!("{i}/2"), &keep));
    }
    assert!(!spectra.exists(), "a shard wrote the spectra file");
    let report = dir.path().join("report");
    assert_success(&merge(&[
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-q",
    ]));
    assert!(report.join("report.html").is_file());

    let single = dir.path().join("single.csv");
    let single_spectra = dir.path().join("single.safetensors");
    assert_success(&transformer(&[
        "--model-path",
        &model,
        "--out",
        single.to_str().unwrap(),
        "--save-spectra",
        single_spectra.to_str().unwrap(),
        "--no-gpu",
        "-q",
    ]));
    assert_eq!(
        std::fs::read(&spectra).unwrap(),
        std::fs::read(&single_spectra).unwrap(),
        "the merged spectra file differs from a single run's"
    );

    // The report is made from every shard's rows, so a shard cannot make it.
    let err = stderr(&run_shard(&model, &out, "0/2", &["--report", "r"]));
    assert!(err.contains("give --report DIR to tpa-merge"), "{err}");
}

#[test]
fn tpa_analyze_shards_merged_give_the_rows_and_summary_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    for extra in [&[][..], &["--no-rank"][..]] {
        let out = dir.path().join(format!("sharded{}.json", extra.len()));
        let outs = out.to_str().unwrap();
        for i in 0..3 {
            let shard = format!("{i}/3");
            let args = [
                &[
                    "--model-path",
                    &model,
                    "--out",
                    outs,
                    "--shard",
                    &shard,
                    "--no-gpu",
                    "-q",
                ][..],
                extra,
            ]
            .concat();
            assert_success(&common::analyze(&args));
            assert!(!out.exists(), "a shard wrote the output");
        }
        assert_success(&merge(&[outs, "-q"]));
        let single = dir.path().join(format!("single{}.json", extra.len()));
        let args = [
            &[
                "--model-path",
                &model,
                "--out",
                single.to_str().unwrap(),
                "--no-gpu",
                "-q",
            ][..],
            extra,
        ]
        .concat();
        assert_success(&common::analyze(&args));
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        let (mut merged, mut single) = (read(&out), read(&single));
        for json in [&mut merged, &mut single] {
            json["summary"]["created_at"] = serde_json::Value::Null;
            for row in json["tensors"].as_array_mut().unwrap() {
                row["created_at"] = serde_json::Value::Null;
            }
        }
        assert_eq!(merged["tensors"].as_array().unwrap().len(), 21);
        assert_eq!(merged, single, "with {extra:?}");
        let ranks: Vec<&serde_json::Value> = merged["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["rank"])
            .collect();
        assert_eq!(ranks.iter().all(|r| r.is_null()), extra == ["--no-rank"]);
    }
}
