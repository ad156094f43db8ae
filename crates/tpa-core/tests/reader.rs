//! The model reader and the statistics on fixtures whose answers are known.

use std::path::Path;

use tpa_core::analyses::stats::{StatsOptions, TensorStats, tensor_stats};
use tpa_core::model::Model;
use tpa_core::tensors::{DType, decode};
use tpa_testkit::architectures::{Dims, bert, gpt2, llama};
use tpa_testkit::{Dtype, EVERY_DTYPE, Fill, Known, TensorSpec, write_model, write_safetensors};

fn stats_of(model: &Model, name: &str) -> TensorStats {
    let tensor = model.tensor(name).unwrap();
    tensor_stats(&tensor, &StatsOptions::default(), &|_| {}).unwrap()
}

fn assert_known(stats: &TensorStats, known: Known, what: &str) {
    assert_eq!(stats.mean, Some(known.mean), "mean of {what}");
    assert_eq!(stats.var, Some(known.var), "var of {what}");
    assert_eq!(stats.std, Some(known.var.sqrt()), "std of {what}");
    assert_eq!(stats.min, Some(known.min), "min of {what}");
    assert_eq!(stats.max, Some(known.max), "max of {what}");
    assert_eq!(stats.sparsity, Some(known.sparsity), "sparsity of {what}");
    assert_eq!((stats.nan_count, stats.inf_count), (0, 0), "{what}");
}

#[test]
fn every_dtype_gives_the_known_statistics() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in EVERY_DTYPE {
        let path = dir.path().join(format!("{dtype}.safetensors"));
        let tensors = llama(Dims::TOY, dtype, &Fill::Pattern);
        write_safetensors(&path, &tensors).unwrap();
        let model = Model::open(&path).unwrap();
        assert_eq!(model.len(), tensors.len());
        for t in &tensors {
            let view = model.tensor(&t.name).unwrap();
            assert_eq!(view.shape(), t.shape.as_slice());
            assert_eq!(view.dtype(), DType(dtype));
            let stats = stats_of(&model, &t.name);
            assert_eq!(stats.numel, t.numel() as u64);
            assert_known(&stats, Known::of(dtype), &format!("{} as {dtype}", t.name));
        }
    }
}

#[test]
fn dtype_names_follow_pytorch() {
    let names: Vec<String> = EVERY_DTYPE.iter().map(|&d| DType(d).to_string()).collect();
    assert_eq!(
        names,
        [
            "float64",
            "float32",
            "float16",
            "bfloat16",
            "float8_e4m3fn",
            "float8_e5m2",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint64",
            "uint32",
            "uint16",
            "uint8",
            "bool"
        ]
    );
}

/// Gaussian data merges blocks and chunks with different means, so this
/// checks the parallel merge against a plain two-pass sum.
#[test]
fn streaming_matches_a_two_pass_reference_on_random_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.safetensors");
    // 700_001 elements: several chunks, a ragged last block.
    let spec = TensorSpec::new(
        "w",
        Dtype::F64,
        &[7, 100_000 + 1, 1],
        Fill::Normal { seed: 7, std: 3.0 },
    );
    let shifted: Vec<f64> = spec.values().iter().map(|x| x + 1e4).collect();
    let spec = TensorSpec::new("w", Dtype::F64, &spec.shape, Fill::Values(shifted.clone()));
    write_safetensors(&path, std::slice::from_ref(&spec)).unwrap();

    let n = shifted.len() as f64;
    let mean = shifted.iter().sum::<f64>() / n;
    let var = shifted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let stats = stats_of(&Model::open(&path).unwrap(), "w");
    assert!((stats.mean.unwrap() - mean).abs() <= 1e-12 * mean.abs());
    assert!(
        (stats.var.unwrap() - var).abs() <= 1e-10 * var,
        "{:?} vs {var}",
        stats.var
    );
    assert_eq!(stats.min, shifted.iter().copied().reduce(f64::min));
    assert_eq!(stats.max, shifted.iter().copied().reduce(f64::max));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let spec = TensorSpec::new(
        "w",
        Dtype::F32,
        &[1000, 999],
        Fill::Normal { seed: 3, std: 1.0 },
    );
    write_safetensors(&path, &[spec]).unwrap();
    let model = Model::open(&path).unwrap();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| stats_of(&model, "w"))
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn nan_and_inf_are_counted_and_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    let values = vec![
        1.0,
        f64::NAN,
        2.0,
        f64::INFINITY,
        3.0,
        f64::NEG_INFINITY,
        0.0,
        f64::NAN,
    ];
    let tensors = [
        TensorSpec::new("some_bad", Dtype::F32, &[2, 4], Fill::Values(values)),
        TensorSpec::new(
            "all_nan",
            Dtype::BF16,
            &[3],
            Fill::Values(vec![f64::NAN; 3]),
        ),
    ];
    write_safetensors(&path, &tensors).unwrap();
    let model = Model::open(&path).unwrap();
    let s = stats_of(&model, "some_bad");
    assert_eq!((s.nan_count, s.inf_count), (2, 2));
    assert_eq!(
        (s.mean, s.var, s.min, s.max),
        (Some(1.5), Some(1.25), Some(0.0), Some(3.0))
    );
    assert_eq!(s.sparsity, Some(0.25));
    let s = stats_of(&model, "all_nan");
    assert_eq!((s.nan_count, s.mean, s.sparsity), (3, None, None));
}

#[test]
fn empty_and_scalar_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.safetensors");
    let tensors = [
        TensorSpec::new("empty", Dtype::F32, &[0, 4], Fill::Values(vec![])),
        TensorSpec::new("scalar", Dtype::F16, &[], Fill::Values(vec![-2.5])),
    ];
    write_safetensors(&path, &tensors).unwrap();
    let model = Model::open(&path).unwrap();
    let empty = stats_of(&model, "empty");
    assert_eq!((empty.numel, empty.mean), (0, None));
    assert_eq!(model.tensor("empty").unwrap().matrix_shape(), (0, 4));
    let scalar = stats_of(&model, "scalar");
    assert_eq!(
        (scalar.numel, scalar.mean, scalar.var),
        (1, Some(-2.5), Some(0.0))
    );
    assert_eq!(model.tensor("scalar").unwrap().matrix_shape(), (1, 1));
}

#[test]
fn sharded_model_with_index_reads_like_the_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = bert(Dims::TOY, Dtype::BF16, &Fill::Normal { seed: 1, std: 0.02 });
    write_model(&dir.path().join("single"), &tensors, 1).unwrap();
    let shards = write_model(&dir.path().join("sharded"), &tensors, 3).unwrap();
    assert_eq!(shards.len(), 3);
    let single = Model::open(dir.path().join("single")).unwrap();
    let sharded = Model::open(dir.path().join("sharded")).unwrap();
    assert_eq!(sharded.files().count(), 3);
    assert!(sharded.index_path().is_some());
    assert_eq!(single.len(), sharded.len());
    for t in &tensors {
        assert_eq!(
            stats_of(&single, &t.name),
            stats_of(&sharded, &t.name),
            "{}",
            t.name
        );
    }
}

#[test]
fn directory_without_index_reads_every_shard_and_skips_resource_forks() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = gpt2(Dims::TOY, Dtype::F16, &Fill::Pattern);
    let (a, b) = tensors.split_at(5);
    write_safetensors(&dir.path().join("a.safetensors"), a).unwrap();
    write_safetensors(&dir.path().join("b.safetensors"), b).unwrap();
    std::fs::write(dir.path().join("._a.safetensors"), b"macOS junk").unwrap();
    let model = Model::open(dir.path()).unwrap();
    assert_eq!(model.len(), tensors.len());
    assert!(model.index_path().is_none());
}

#[test]
fn eight_bit_float_tables_match_ml_dtypes() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/fp8_tables.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let formats = [
        (Dtype::F8_E4M3, "float8_e4m3fn"),
        (Dtype::F8_E5M2, "float8_e5m2"),
        (Dtype::F8_E4M3FNUZ, "float8_e4m3fnuz"),
        (Dtype::F8_E5M2FNUZ, "float8_e5m2fnuz"),
        (Dtype::F8_E8M0, "float8_e8m0fnu"),
    ];
    let bytes: Vec<u8> = (0..=255).collect();
    for (dtype, name) in formats {
        assert_eq!(DType(dtype).to_string(), name);
        let mut ours = [0.0; 256];
        assert!(decode(DType(dtype), &bytes, &mut ours));
        let theirs = golden["tables"][name].as_array().unwrap();
        for (byte, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let b: f64 = b.as_str().unwrap().parse().unwrap();
            let same = (a.is_nan() && b.is_nan())
                || (a == &b && a.is_sign_negative() == b.is_sign_negative());
            assert!(same, "{name} byte {byte:#04x}: ours {a}, ml_dtypes {b}");
        }
    }
}

#[test]
fn undecodable_dtypes_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c64.safetensors");
    let header = r#"{"z":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}}"#;
    std::fs::write(&path, tpa_testkit::raw_safetensors(header, &[0; 16])).unwrap();
    let model = Model::open(&path).unwrap();
    let err = tensor_stats(
        &model.tensor("z").unwrap(),
        &StatsOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("c64.safetensors") && message.contains("tensor z"),
        "{message}"
    );
    assert!(message.contains("complex64"), "{message}");
}

#[test]
fn progress_reports_every_byte_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    let spec = TensorSpec::new(
        "w",
        Dtype::BF16,
        &[600, 1000],
        Fill::Normal { seed: 1, std: 1.0 },
    );
    write_safetensors(&path, &[spec]).unwrap();
    let model = Model::open(&path).unwrap();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let tensor = model.tensor("w").unwrap();
    tensor_stats(&tensor, &StatsOptions::default(), &|b| {
        seen.fetch_add(b, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(seen.into_inner(), 1_200_000);
}
