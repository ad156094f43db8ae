//! ΔW between a base and a fine-tuned twin with planted low-rank deltas,
//! every value exact in bfloat16, so that the deltas' ranks, energy ranks
//! and LoRA fit errors are known in closed form.

use tpa_core::analyses::diff::{DiffError, DiffOptions, diff_matrices};
use tpa_core::analyses::spectrum::{Engine, SpectrumOptions};
use tpa_core::model::Model;
use tpa_core::tensors::MatrixView;
use tpa_testkit::{Dtype, Fill, SplitMix64, TensorSpec, write_safetensors};

const ROWS: usize = 48;
const COLS: usize = 40;

/// Integers in −8..=8: exact in bf16, and so are their sums with the deltas.
fn base_values(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() % 17) as f64 - 8.0).collect()
}

/// A delta with singular values `sigma` (integers): σ_k at (k, 3k + 1), on
/// distinct rows and columns, so that these are exactly its singular values.
fn delta(sigma: &[f64]) -> Vec<f64> {
    let mut d = vec![0.0; ROWS * COLS];
    for (k, &s) in sigma.iter().enumerate() {
        d[k * COLS + (3 * k + 1) % COLS] = if k % 2 == 0 { s } else { -s };
    }
    d
}

fn spec(name: &str, shape: &[usize], values: Vec<f64>) -> TensorSpec {
    TensorSpec::new(name, Dtype::BF16, shape, Fill::Values(values))
}

struct Pair {
    _dir: tempfile::TempDir,
    base: Model,
    tuned: Model,
    /// The base values, by tensor.
    values: Vec<(String, Vec<f64>)>,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let planted: [(&str, &[f64]); 3] = [
        ("layers.0.q_proj.weight", &[6.0, 4.0, 2.0]),
        ("layers.0.v_proj.weight", &[5.0]),
        ("layers.1.o_proj.weight", &[]),
    ];
    let (mut base, mut tuned, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (name, sigma)) in planted.iter().enumerate() {
        let b = base_values(i as u64, ROWS * COLS);
        let t: Vec<f64> = b.iter().zip(delta(sigma)).map(|(x, d)| x + d).collect();
        base.push(spec(name, &[ROWS, COLS], b.clone()));
        tuned.push(spec(name, &[ROWS, COLS], t));
        values.push((name.to_string(), b));
    }
    // A 1-D tensor that changed in one element.
    let norm = base_values(9, COLS);
    let mut changed = norm.clone();
    changed[7] += 1.0;
    base.push(spec("layers.0.norm.weight", &[COLS], norm.clone()));
    tuned.push(spec("layers.0.norm.weight", &[COLS], changed));
    values.push(("layers.0.norm.weight".into(), norm));
    // A tensor with another shape in the tuned model.
    base.push(spec("embed.weight", &[4, COLS], base_values(11, 4 * COLS)));
    tuned.push(spec("embed.weight", &[5, COLS], base_values(11, 5 * COLS)));
    write_safetensors(&dir.path().join("base.safetensors"), &base).unwrap();
    write_safetensors(&dir.path().join("tuned.safetensors"), &tuned).unwrap();
    Pair {
        base: Model::open(dir.path().join("base.safetensors")).unwrap(),
        tuned: Model::open(dir.path().join("tuned.safetensors")).unwrap(),
        _dir: dir,
        values,
    }
}

fn views<'m>(p: &'m Pair, name: &str) -> (MatrixView<'m>, MatrixView<'m>) {
    (
        MatrixView::whole(p.base.tensor(name).unwrap()),
        MatrixView::whole(p.tuned.tensor(name).unwrap()),
    )
}

/// The LoRA fit errors at `lora_ranks`, no singular vectors.
fn ranks(lora_ranks: &[usize]) -> DiffOptions {
    DiffOptions {
        lora_ranks: lora_ranks.to_vec(),
        top_k: 0,
        ..DiffOptions::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

#[test]
fn planted_deltas_have_their_ranks_and_closed_form_errors() {
    let p = pair();
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let name = "layers.0.q_proj.weight";
    let (b, t) = views(&p, name);
    let d = diff_matrices(&b, &t, &engine, &ranks(&[1, 2, 8])).unwrap();
    // σ(ΔW) = 6, 4, 2: energies 36, 16, 4 of 56.
    assert_eq!(d.delta.actual_rank, 3);
    assert_eq!(
        (
            d.delta.energy_rank_50,
            d.delta.energy_rank_90,
            d.delta.energy_rank_99
        ),
        (1, 2, 3)
    );
    assert!(close(d.delta_values[0], 6.0) && close(d.delta_values[2], 2.0));
    assert!(close(d.delta.stable_rank.unwrap(), 56.0 / 36.0));
    let lora: Vec<f64> = d.lora_fit.iter().map(|(_, e)| e.unwrap()).collect();
    assert!(close(lora[0], (20.0f64 / 56.0).sqrt()), "{lora:?}");
    assert!(close(lora[1], (4.0f64 / 56.0).sqrt()), "{lora:?}");
    assert!(lora[2] < 1e-12, "{lora:?}");
    // rel_fro, mean |Δ| and the changed share from the base values alone.
    let base = &p.values.iter().find(|(n, _)| n == name).unwrap().1;
    let base_fro = base.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(close(d.stats.rel_fro().unwrap(), 56f64.sqrt() / base_fro));
    assert!(close(
        d.stats.mean_abs_delta().unwrap(),
        12.0 / (ROWS * COLS) as f64
    ));
    assert_eq!(d.stats.changed, 3);
    let base_side = d.base.as_ref().unwrap();
    assert!(close(d.rel_spec.unwrap() * base_side.spectral_norm, 6.0));
    assert_eq!(base_side.actual_rank, COLS);

    let (b, t) = views(&p, "layers.0.v_proj.weight");
    let d = diff_matrices(&b, &t, &engine, &ranks(&[1])).unwrap();
    assert_eq!(d.delta.actual_rank, 1);
    assert_eq!(d.lora_fit[0].1, Some(0.0));
}

#[test]
fn an_unchanged_matrix_has_a_zero_delta_and_a_changed_vector_rank_one() {
    let p = pair();
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let (b, t) = views(&p, "layers.1.o_proj.weight");
    let d = diff_matrices(&b, &t, &engine, &ranks(&[8])).unwrap();
    assert_eq!(d.stats.rel_fro(), Some(0.0));
    assert_eq!(d.stats.changed, 0);
    assert_eq!(d.delta.actual_rank, 0);
    assert_eq!(d.delta.energy_rank_90, 0);
    assert_eq!(d.lora_fit, [(8, None)]);
    assert_eq!(d.rel_spec, Some(0.0));

    let (b, t) = views(&p, "layers.0.norm.weight");
    let d = diff_matrices(&b, &t, &engine, &ranks(&[1])).unwrap();
    assert_eq!(d.stats.changed, 1);
    assert_eq!(d.delta.actual_rank, 1);
    assert!(close(d.delta.spectral_norm, 1.0));
}

#[test]
fn a_shape_mismatch_is_an_input_error_naming_the_tensor() {
    let p = pair();
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let (b, t) = views(&p, "embed.weight");
    match diff_matrices(&b, &t, &engine, &ranks(&[8])) {
        Err(DiffError::Input(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("embed.weight") && text.contains("shapes differ"),
                "{text}"
            );
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(t.minus(b).is_none());
}

#[test]
fn nan_on_either_side_leaves_only_the_element_wise_facts() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = base_values(3, ROWS * COLS);
    let clean = spec("w", &[ROWS, COLS], values.clone());
    values[5] = f64::NAN;
    write_safetensors(&dir.path().join("b.safetensors"), &[clean]).unwrap();
    write_safetensors(
        &dir.path().join("t.safetensors"),
        &[spec("w", &[ROWS, COLS], values)],
    )
    .unwrap();
    let base = Model::open(dir.path().join("b.safetensors")).unwrap();
    let tuned = Model::open(dir.path().join("t.safetensors")).unwrap();
    let engine = Engine::cpu(SpectrumOptions { rank_rtol: 1e-6 });
    let (b, t) = (
        MatrixView::whole(base.tensor("w").unwrap()),
        MatrixView::whole(tuned.tensor("w").unwrap()),
    );
    match diff_matrices(&b, &t, &engine, &ranks(&[8])) {
        Err(DiffError::NonFinite(stats)) => {
            assert_eq!((stats.nonfinite, stats.changed), (1, 0));
            assert_eq!(stats.numel, (ROWS * COLS) as u64);
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
}

#[test]
fn lora_singular_values_from_the_core_equal_those_of_the_formed_delta() {
    use tpa_core::analyses::diff::lora_singular_values;
    let (out, r, inp, scale) = (50, 6, 40, 16.0 / 6.0f64.sqrt());
    let mut rng = SplitMix64::new(7);
    let b: Vec<f64> = (0..out * r).map(|_| rng.normal()).collect();
    let a: Vec<f64> = (0..r * inp).map(|_| rng.normal()).collect();
    let values = lora_singular_values(&b, &a, out, r, inp, scale).unwrap();
    assert_eq!(values.len(), inp);
    // The out × in ΔW formed and decomposed directly, as the reference.
    let delta = faer::Mat::<f64>::from_fn(out, inp, |i, j| {
        scale * (0..r).map(|k| b[i * r + k] * a[k * inp + j]).sum::<f64>()
    });
    let reference = delta.singular_values().unwrap();
    for (k, (x, y)) in values.iter().zip(&reference).enumerate() {
        if k < r {
            assert!((x - y).abs() <= 1e-12 * reference[0], "σ{k}: {x} vs {y}");
        } else {
            assert_eq!(*x, 0.0);
            assert!(*y <= 1e-12 * reference[0]);
        }
    }
    assert!(lora_singular_values(&b, &a, out, r + 1, inp, 1.0).is_err());
}

#[test]
fn a_peft_adapter_maps_its_factors_to_base_modules_with_their_scales() {
    use tpa_core::model::Adapter;
    let dir = tempfile::tempdir().unwrap();
    let factor = |name: &str, shape: &[usize]| {
        let n = shape.iter().product();
        TensorSpec::new(name, Dtype::F32, shape, Fill::Values(base_values(1, n)))
    };
    let p = "base_model.model.model.layers.0";
    let tensors = vec![
        factor(&format!("{p}.self_attn.q_proj.lora_A.weight"), &[8, 32]),
        factor(&format!("{p}.self_attn.q_proj.lora_B.weight"), &[48, 8]),
        factor(&format!("{p}.self_attn.v_proj.lora_A.weight"), &[4, 32]),
        factor(&format!("{p}.self_attn.v_proj.lora_B.weight"), &[16, 4]),
        factor(
            "base_model.model.model.embed_tokens.lora_embedding_A",
            &[8, 100],
        ),
        factor(
            "base_model.model.model.embed_tokens.lora_embedding_B",
            &[32, 8],
        ),
        factor("base_model.model.lm_head.weight", &[100, 32]),
    ];
    write_safetensors(&dir.path().join("adapter_model.safetensors"), &tensors).unwrap();
    let config = |extra: &str| {
        std::fs::write(
            dir.path().join("adapter_config.json"),
            format!(r#"{{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "rank_pattern": {{"v_proj": 4}}{extra}}}"#),
        )
        .unwrap();
    };
    config("");
    let adapter = Adapter::open(dir.path()).unwrap();
    let module = |name: &str| adapter.modules.iter().find(|m| m.module == name).unwrap();
    let q = module("model.layers.0.self_attn.q_proj");
    assert_eq!((q.rank, q.scale, q.transposed), (8, 2.0, false));
    assert_eq!(q.target, "model.layers.0.self_attn.q_proj.weight");
    let v = module("model.layers.0.self_attn.v_proj");
    assert_eq!((v.rank, v.scale), (4, 4.0));
    assert!(module("model.embed_tokens").transposed);
    assert_eq!(adapter.unmapped, ["base_model.model.lm_head.weight"]);

    config(r#", "use_rslora": true"#);
    let q = Adapter::open(dir.path()).unwrap().modules[1].clone();
    assert!((q.scale - 16.0 / 8f64.sqrt()).abs() < 1e-15, "{q:?}");

    // A rank the config does not give is an error naming the module.
    std::fs::write(
        dir.path().join("adapter_config.json"),
        r#"{"r": 4, "lora_alpha": 16}"#,
    )
    .unwrap();
    let err = Adapter::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("model.embed_tokens: lora_A [8, 100]") && err.contains("rank 4"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("adapter_config.json"),
        r#"{"r": 8, "lora_alpha": 16, "use_dora": true}"#,
    )
    .unwrap();
    let err = Adapter::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("DoRA"), "{err}");
}
