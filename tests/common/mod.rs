//! Helpers shared by the end-to-end tests: run a tool, read its CSV.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tpa_testkit::{Dtype, Fill, TensorSpec, write_safetensors};

/// Runs `tpa-analyze` with `args`.
pub fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-analyze"))
        .args(args)
        .output()
        .expect("the tpa-analyze binary runs")
}

/// Runs `tpa-transformer` with `args`.
pub fn transformer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-transformer"))
        .args(args)
        .output()
        .expect("the tpa-transformer binary runs")
}

/// Runs `tpa-merge` with `args`.
pub fn merge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-merge"))
        .args(args)
        .output()
        .expect("the tpa-merge binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts success, showing stderr otherwise.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}, stderr:\n{}",
        output.status,
        stderr(output)
    );
}

/// A CSV file as its header and rows keyed by column.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<HashMap<String, String>>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let mut reader = csv::Reader::from_path(path).expect("CSV opens");
        let columns: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.expect("CSV record parses");
                columns
                    .iter()
                    .cloned()
                    .zip(r.iter().map(str::to_owned))
                    .collect()
            })
            .collect();
        Table { columns, rows }
    }

    pub fn row(&self, param_name: &str) -> &HashMap<String, String> {
        self.rows
            .iter()
            .find(|r| r["param_name"] == param_name)
            .unwrap_or_else(|| panic!("no row for {param_name}"))
    }
}

/// The float in a CSV field.
pub fn float(field: &str) -> f64 {
    field
        .parse()
        .unwrap_or_else(|_| panic!("{field:?} is not a number"))
}

/// Checks a tpa-transformer row against one matrix of a numpy/scipy golden
/// (tests/golden/make_quantized.py, make_gguf.py): statistics and spectral
/// norm to 1e-9 relative, sparsity, numel and ranks exactly.
pub fn assert_golden_matrix(row: &HashMap<String, String>, golden: &serde_json::Value, what: &str) {
    for column in ["mean", "std", "var", "min", "max", "spectral_norm"] {
        let (ours, want) = (float(&row[column]), golden[column].as_f64().unwrap());
        assert!(
            (ours - want).abs() <= 1e-9 * want.abs().max(1e-300),
            "{what} {column}: tpa {ours:e}, numpy {want:e}"
        );
    }
    assert_eq!(
        float(&row["sparsity"]),
        golden["sparsity"].as_f64().unwrap(),
        "{what} sparsity"
    );
    for (column, key) in [
        ("numel", "numel"),
        ("actual_rank", "actual_rank"),
        ("svd_90_percent_rank", "energy_rank_90"),
    ] {
        assert_eq!(row[column], golden[key].to_string(), "{what} {column}");
    }
}

/// Files in `dir` (temporary files left behind would show up here).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A rows × cols matrix with `diagonal` on a scattered signed permutation:
/// its singular values are the |diagonal| exactly, in any dtype.
pub fn permuted_diagonal(rows: usize, cols: usize, diagonal: &[f64]) -> Vec<f64> {
    let stride = |n: usize| [7, 5, 3, 11, 1].into_iter().find(|s| n % s != 0).unwrap();
    let (a, b) = (stride(rows), stride(cols));
    let mut values = vec![0.0; rows * cols];
    let (mut used_rows, mut used_cols) = (vec![false; rows], vec![false; cols]);
    for (k, &d) in diagonal.iter().enumerate() {
        let (i, j) = ((k * a + 3) % rows, (k * b + 1) % cols);
        assert!(!used_rows[i] && !used_cols[j], "not a permutation");
        (used_rows[i], used_cols[j]) = (true, true);
        values[i * cols + j] = if k % 2 == 1 { -d } else { d };
    }
    values
}

/// `count` Gaussian n × n f32 matrices in one file: a model whose spectra
/// take long enough to interrupt.
pub fn many_matrices(dir: &Path, count: usize, n: usize) -> PathBuf {
    let path = dir.join("big.safetensors");
    let tensors: Vec<TensorSpec> = (0..count)
        .map(|i| {
            TensorSpec::new(
                format!("layers.{i}.w"),
                Dtype::F32,
                &[n, n],
                Fill::Normal {
                    seed: i as u64,
                    std: 1.0,
                },
            )
        })
        .collect();
    write_safetensors(&path, &tensors).unwrap();
    path
}

/// A table's rows without the columns that differ from run to run.
pub fn without_timing(table: &Table) -> Vec<Vec<(String, String)>> {
    table
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<(String, String)> = r
                .iter()
                .filter(|(k, _)| *k != "seconds" && *k != "created_at")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            cells.sort();
            cells
        })
        .collect()
}

/// Rows as (column, value) lists in file order, without what differs
/// between runs (seconds, backend, created_at).
pub fn comparable(table: &Table) -> Vec<Vec<(String, String)>> {
    table
        .rows
        .iter()
        .map(|r| {
            table
                .columns
                .iter()
                .filter(|c| !matches!(c.as_str(), "seconds" | "backend" | "created_at"))
                .map(|c| (c.clone(), r[c].clone()))
                .collect()
        })
        .collect()
}

/// Starts `command`, waits until `journal` holds its header and at least
/// `records` whole records, then kills it (as a crash or Ctrl-C would).
/// Returns how many whole records the journal kept.
pub fn kill_once_journaled(mut command: Command, journal: &Path, records: usize) -> usize {
    let whole = || {
        std::fs::read_to_string(journal)
            .map_or(0, |t| t.matches('\n').count())
            .saturating_sub(1)
    };
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while whole() < records {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress in the journal"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    whole()
}
