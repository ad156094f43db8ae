//! GGUF files written by gguf-py (tests/golden/make_gguf.py): every ggml
//! type decodes to gguf-py's dequantized values bit for bit, and a split,
//! stacked-experts model reads as one.

use std::path::{Path, PathBuf};

use tpa_core::model::Model;
use tpa_core::tensors::{MatrixView, TensorView};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn values(tensor: &TensorView<'_>) -> Vec<f64> {
    let mut out = vec![0.0; tensor.numel()];
    tensor.decode_into(0, &mut out).unwrap();
    out
}

#[test]
fn every_ggml_type_decodes_to_gguf_py_values_bit_for_bit() {
    let model = Model::open(workspace().join("tests/fixtures/gguf/types.gguf")).unwrap();
    let golden =
        Model::open(workspace().join("tests/golden/gguf_dequantized.safetensors")).unwrap();
    assert_eq!(model.len(), 31);
    assert_eq!(golden.len(), model.len());
    for tensor in model.tensors() {
        let want = golden.tensor(tensor.name()).unwrap();
        assert_eq!(tensor.shape(), want.shape(), "{}", tensor.name());
        let type_name = tensor.name().strip_prefix("types.").unwrap();
        assert_eq!(tensor.code_type(), type_name);
        let (ours, theirs) = (values(&tensor), values(&want));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                a.to_bits() == b.to_bits(),
                "{}: element {i} is {a:e}, gguf-py {b:e}",
                tensor.name()
            );
        }
        // Any element range decodes as the whole does (blocks split across
        // the range's ends, and rows not a multiple of anything).
        let (start, len) = (37, 300);
        let mut part = vec![0.0; len];
        tensor.decode_into(start, &mut part).unwrap();
        assert_eq!(part, ours[start..start + len], "{}", tensor.name());
    }
}

#[test]
fn a_split_model_reads_as_one_with_its_experts_and_tokens() {
    let dir = workspace().join("tests/fixtures/gguf/moe");
    for path in [
        dir.clone(),
        dir.join("tiny-moe-00001-of-00003.gguf"),
        dir.join("tiny-moe-00003-of-00003.gguf"),
    ] {
        let model = Model::open(&path).unwrap();
        assert_eq!(model.files().count(), 3, "{}", path.display());
        assert_eq!(model.len(), 14);
        let metadata = model.gguf().unwrap();
        assert_eq!(metadata.architecture(), Some("qwen3moe"));
        assert_eq!(metadata.arch_int("block_count"), Some(2));
        assert_eq!(metadata.arch_int("expert_count"), Some(4));
        let tokens = metadata.tokens.as_ref().unwrap();
        assert_eq!((tokens.len(), tokens[63].as_str()), (64, "héllo"));
        let gate = model.tensor("blk.1.ffn_gate_exps.weight").unwrap();
        assert_eq!(gate.shape(), &[4, 32, 256]);
        assert_eq!(
            (gate.code_type().as_str(), gate.scheme()),
            ("q4_k", "gguf-q4_k")
        );
        let experts = MatrixView::split(gate);
        assert_eq!(experts.len(), 4);
        assert_eq!(experts[2].shape(), (32, 256));
        assert!(model.tensor("output.weight").is_err());
    }
}
