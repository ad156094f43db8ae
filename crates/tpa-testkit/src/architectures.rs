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

/// DeepSeek-V3's multi-head latent attention sizes (its `config.json`:
/// `q_lora_rank`, `kv_lora_rank`, `num_attention_heads`; head dims
/// `qk_nope_head_dim` 128, `qk_rope_head_dim` 64, `v_head_dim` 128).
#[derive(Debug, Clone, Copy)]
pub struct Mla {
    pub q_rank: usize,
    pub kv_rank: usize,
    pub heads: usize,
}

impl Mla {
    pub const DEEPSEEK_V3: Mla = Mla {
        q_rank: 1536,
        kv_rank: 512,
        heads: 128,
    };
    const NOPE: usize = 128;
    const ROPE: usize = 64;
    const V: usize = 128;
}

/// DeepSeek-V3/R1 naming: MLA attention (`q_a_proj`, `q_b_proj`,
/// `kv_a_proj_with_mqa`, `kv_b_proj`, `o_proj` and their norms); the first
/// `dense_layers` layers a dense MLP of `d.intermediate`, the others a router
/// (`mlp.gate` + `e_score_correction_bias`), `experts` routed experts and
/// one shared expert of `moe_intermediate`. DeepSeek-V3 itself is
/// `Dims { vocab: 129280, hidden: 7168, intermediate: 18432, layers: 61, .. }`,
/// 3 dense layers, 256 experts of 2048, [`Mla::DEEPSEEK_V3`].
pub fn deepseek_v3(
    d: Dims,
    mla: Mla,
    dense_layers: usize,
    experts: usize,
    moe_intermediate: usize,
    dtype: Dtype,
    fill: &Fill,
) -> Vec<TensorSpec> {
    let h = d.hidden;
    let mlp = |q: &str, int: usize| {
        vec![
            spec(format!("{q}.gate_proj.weight"), dtype, &[int, h], fill),
            spec(format!("{q}.up_proj.weight"), dtype, &[int, h], fill),
            spec(format!("{q}.down_proj.weight"), dtype, &[h, int], fill),
        ]
    };
    let mut t = vec![spec(
        "model.embed_tokens.weight".into(),
        dtype,
        &[d.vocab, h],
        fill,
    )];
    for l in 0..d.layers {
        let p = format!("model.layers.{l}");
        let a = format!("{p}.self_attn");
        let heads = mla.heads;
        t.extend([
            spec(
                format!("{a}.q_a_proj.weight"),
                dtype,
                &[mla.q_rank, h],
                fill,
            ),
            spec(
                format!("{a}.q_a_layernorm.weight"),
                dtype,
                &[mla.q_rank],
                fill,
            ),
            spec(
                format!("{a}.q_b_proj.weight"),
                dtype,
                &[heads * (Mla::NOPE + Mla::ROPE), mla.q_rank],
                fill,
            ),
            spec(
                format!("{a}.kv_a_proj_with_mqa.weight"),
                dtype,
                &[mla.kv_rank + Mla::ROPE, h],
                fill,
            ),
            spec(
                format!("{a}.kv_a_layernorm.weight"),
                dtype,
                &[mla.kv_rank],
                fill,
            ),
            spec(
                format!("{a}.kv_b_proj.weight"),
                dtype,
                &[heads * (Mla::NOPE + Mla::V), mla.kv_rank],
                fill,
            ),
            spec(
                format!("{a}.o_proj.weight"),
                dtype,
                &[h, heads * Mla::V],
                fill,
            ),
        ]);
        if l < dense_layers {
            t.extend(mlp(&format!("{p}.mlp"), d.intermediate));
        } else {
            t.push(spec(
                format!("{p}.mlp.gate.weight"),
                dtype,
                &[experts, h],
                fill,
            ));
            t.push(spec(
                format!("{p}.mlp.gate.e_score_correction_bias"),
                Dtype::F32,
                &[experts],
                fill,
            ));
            for e in 0..experts {
                t.extend(mlp(&format!("{p}.mlp.experts.{e}"), moe_intermediate));
            }
            t.extend(mlp(&format!("{p}.mlp.shared_experts"), moe_intermediate));
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            t.push(spec(format!("{p}.{norm}.weight"), dtype, &[h], fill));
        }
    }
    t.push(spec("model.norm.weight".into(), dtype, &[h], fill));
    t.push(spec("lm_head.weight".into(), dtype, &[d.vocab, h], fill));
    t
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
