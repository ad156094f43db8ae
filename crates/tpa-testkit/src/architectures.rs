//! Tensor lists with the naming of real model families, at toy sizes.

use crate::{Dtype, Fill, TensorSpec};

/// Sizes of a toy model.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    /// Rows of k_proj and v_proj in Llama naming: `hidden` for multi-head
    /// attention, (KV heads × head dim) for grouped-query attention.
    pub kv_dim: usize,
}

impl Dims {
    /// Small enough for unit tests, with an embedding big enough to span
    /// several parallel chunks.
    pub const TOY: Dims = Dims {
        vocab: 1024,
        hidden: 320,
        intermediate: 640,
        layers: 2,
        kv_dim: 320,
    };
}

fn spec(name: String, dtype: Dtype, shape: &[usize], fill: &Fill) -> TensorSpec {
    TensorSpec::new(name, dtype, shape, fill.clone())
}

/// Llama / Qwen naming (`model.layers.N.self_attn.q_proj.weight`, ...).
pub fn llama(d: Dims, dtype: Dtype, fill: &Fill) -> Vec<TensorSpec> {
    decoder(d, dtype, fill, |p| {
        vec![
            spec(
                format!("{p}.mlp.gate_proj.weight"),
                dtype,
                &[d.intermediate, d.hidden],
                fill,
            ),
            spec(
                format!("{p}.mlp.up_proj.weight"),
                dtype,
                &[d.intermediate, d.hidden],
                fill,
            ),
            spec(
                format!("{p}.mlp.down_proj.weight"),
                dtype,
                &[d.hidden, d.intermediate],
                fill,
            ),
        ]
    })
}

/// Qwen3-MoE naming: Llama's attention, then per layer a router
/// (`mlp.gate`) and `experts` routed experts of `moe_intermediate` rows
/// (`mlp.experts.E.{gate,up,down}_proj`).
pub fn moe(
    d: Dims,
    experts: usize,
    moe_intermediate: usize,
    dtype: Dtype,
    fill: &Fill,
) -> Vec<TensorSpec> {
    decoder(d, dtype, fill, |p| {
        let mut t = vec![spec(
            format!("{p}.mlp.gate.weight"),
            dtype,
            &[experts, d.hidden],
            fill,
        )];
        for e in 0..experts {
            let q = format!("{p}.mlp.experts.{e}");
            let (int, h) = (moe_intermediate, d.hidden);
            t.push(spec(
                format!("{q}.gate_proj.weight"),
                dtype,
                &[int, h],
                fill,
            ));
            t.push(spec(format!("{q}.up_proj.weight"), dtype, &[int, h], fill));
            t.push(spec(
                format!("{q}.down_proj.weight"),
                dtype,
                &[h, int],
                fill,
            ));
        }
        t
    })
}

/// A Llama-style decoder: embedding; per layer the attention projections,
/// `mlp(prefix)`'s tensors and the two norms; the final norm and lm_head.
fn decoder(
    d: Dims,
    dtype: Dtype,
    fill: &Fill,
    mlp: impl Fn(&str) -> Vec<TensorSpec>,
) -> Vec<TensorSpec> {
    let mut t = vec![spec(
        "model.embed_tokens.weight".into(),
        dtype,
        &[d.vocab, d.hidden],
        fill,
    )];
    for l in 0..d.layers {
        let p = format!("model.layers.{l}");
        let projections = [
            ("q_proj", d.hidden),
            ("k_proj", d.kv_dim),
            ("v_proj", d.kv_dim),
            ("o_proj", d.hidden),
        ];
        for (proj, rows) in projections {
            t.push(spec(
                format!("{p}.self_attn.{proj}.weight"),
                dtype,
                &[rows, d.hidden],
                fill,
            ));
        }
        t.extend(mlp(&p));
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            t.push(spec(format!("{p}.{norm}.weight"), dtype, &[d.hidden], fill));
        }
    }
    t.push(spec("model.norm.weight".into(), dtype, &[d.hidden], fill));
    t.push(spec(
        "lm_head.weight".into(),
        dtype,
        &[d.vocab, d.hidden],
        fill,
    ));
    t
}

/// BERT naming, with the I64 `embeddings.position_ids` buffer real BERT
/// checkpoints carry.
pub fn bert(d: Dims, dtype: Dtype, fill: &Fill) -> Vec<TensorSpec> {
    let h = d.hidden;
    let mut t = vec![
        spec(
            "embeddings.word_embeddings.weight".into(),
            dtype,
            &[d.vocab, h],
            fill,
        ),
        spec(
            "embeddings.position_embeddings.weight".into(),
            dtype,
            &[64, h],
            fill,
        ),
        spec(
            "embeddings.token_type_embeddings.weight".into(),
            dtype,
            &[2, h],
            fill,
        ),
        spec("embeddings.LayerNorm.weight".into(), dtype, &[h], fill),
        spec("embeddings.LayerNorm.bias".into(), dtype, &[h], fill),
        TensorSpec::new(
            "embeddings.position_ids",
            Dtype::I64,
            &[1, 64],
            Fill::Values((0..64).map(f64::from).collect()),
        ),
    ];
    for l in 0..d.layers {
        let p = format!("encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            t.push(spec(format!("{p}.{m}.weight"), dtype, &[h, h], fill));
            t.push(spec(format!("{p}.{m}.bias"), dtype, &[h], fill));
        }
        t.push(spec(
            format!("{p}.attention.output.LayerNorm.weight"),
            dtype,
            &[h],
            fill,
        ));
        t.push(spec(
            format!("{p}.intermediate.dense.weight"),
            dtype,
            &[d.intermediate, h],
            fill,
        ));
        t.push(spec(
            format!("{p}.output.dense.weight"),
            dtype,
            &[h, d.intermediate],
            fill,
        ));
        t.push(spec(
            format!("{p}.output.LayerNorm.weight"),
            dtype,
            &[h],
            fill,
        ));
    }
    t.push(spec("pooler.dense.weight".into(), dtype, &[h, h], fill));
    t
}

/// GPT-2 naming (Conv1D weights are stored [in, out]).
pub fn gpt2(d: Dims, dtype: Dtype, fill: &Fill) -> Vec<TensorSpec> {
    let h = d.hidden;
    let mut t = vec![
        spec("wte.weight".into(), dtype, &[d.vocab, h], fill),
        spec("wpe.weight".into(), dtype, &[64, h], fill),
    ];
    for l in 0..d.layers {
        let p = format!("h.{l}");
        t.push(spec(format!("{p}.ln_1.weight"), dtype, &[h], fill));
        t.push(spec(
            format!("{p}.attn.c_attn.weight"),
            dtype,
            &[h, 3 * h],
            fill,
        ));
        t.push(spec(format!("{p}.attn.c_attn.bias"), dtype, &[3 * h], fill));
        t.push(spec(
            format!("{p}.attn.c_proj.weight"),
            dtype,
            &[h, h],
            fill,
        ));
        t.push(spec(format!("{p}.ln_2.weight"), dtype, &[h], fill));
        t.push(spec(
            format!("{p}.mlp.c_fc.weight"),
            dtype,
            &[h, d.intermediate],
            fill,
        ));
        t.push(spec(
            format!("{p}.mlp.c_proj.weight"),
            dtype,
            &[d.intermediate, h],
            fill,
        ));
    }
    t.push(spec("ln_f.weight".into(), dtype, &[h], fill));
    t
}
