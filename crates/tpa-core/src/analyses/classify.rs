//! Layer, expert and block type from a tensor's name.
//!
//! The rules are ordered; the first that matches wins. The README has the
//! same table for users. Labels the original tool had (`embedding`, `q_proj`,
//! `k_proj`, `v_proj`, `o_proj`, `moe_gate`, `moe_expert`, `moe`, `output`,
//! `norm`) keep their meaning; the rest name what it used to call `other`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What part of the network a tensor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockType {
    Embedding,
    PositionEmbedding,
    TokenTypeEmbedding,
    QProj,
    KProj,
    VProj,
    OProj,
    Qkv,
    KvProj,
    MlpGate,
    MlpUp,
    MlpDown,
    MlpGateUp,
    MoeGate,
    MoeExpert,
    Moe,
    Output,
    Norm,
    Bias,
    QuantScale,
    Other,
}

impl BlockType {
    /// The label written to outputs.
    pub fn as_str(self) -> &'static str {
        use BlockType::*;
        match self {
            Embedding => "embedding",
            PositionEmbedding => "position_embedding",
            TokenTypeEmbedding => "token_type_embedding",
            QProj => "q_proj",
            KProj => "k_proj",
            VProj => "v_proj",
            OProj => "o_proj",
            Qkv => "qkv",
            KvProj => "kv_proj",
            MlpGate => "mlp_gate",
            MlpUp => "mlp_up",
            MlpDown => "mlp_down",
            MlpGateUp => "mlp_gate_up",
            MoeGate => "moe_gate",
            MoeExpert => "moe_expert",
            Moe => "moe",
            Output => "output",
            Norm => "norm",
            Bias => "bias",
            QuantScale => "quant_scale",
            Other => "other",
        }
    }
}

impl fmt::Display for BlockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a tensor sits in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Transformer layer (block) number, if the name has one.
    pub layer_index: Option<u32>,
    /// Expert number inside a mixture-of-experts layer.
    pub expert_index: Option<u32>,
    /// The block type.
    pub block_type: BlockType,
}

/// Classifies a tensor by its name.
///
/// ```
/// use tpa_core::analyses::classify::{classify, BlockType};
/// let p = classify("model.layers.3.mlp.experts.17.down_proj.weight");
/// assert_eq!(p.layer_index, Some(3));
/// assert_eq!(p.expert_index, Some(17));
/// assert_eq!(p.block_type, BlockType::MoeExpert);
/// assert_eq!(classify("encoder.layer.2.attention.self.query.weight").block_type, BlockType::QProj);
/// ```
pub fn classify(name: &str) -> Placement {
    let segments: Vec<String> = name.split('.').map(str::to_ascii_lowercase).collect();
    Placement {
        layer_index: index_after(
            &segments,
            &["layers", "layer", "h", "blocks", "block", "blk"],
        ),
        expert_index: index_after(&segments, &["experts"]),
        block_type: block_type(&segments),
    }
}

/// The number after the leftmost segment named one of `keys` (leftmost, so
/// T5's `block.3.layer.1` is block 3, not sub-layer 1).
fn index_after(segments: &[String], keys: &[&str]) -> Option<u32> {
    segments
        .windows(2)
        .find(|w| keys.contains(&w[0].as_str()) && w[1].parse::<u32>().is_ok())
        .and_then(|w| w[1].parse().ok())
}

fn block_type(segments: &[String]) -> BlockType {
    use BlockType::*;
    let (param, module) = match segments.split_last() {
        Some((last, rest)) if !rest.is_empty() => (last.as_str(), rest),
        _ => ("", segments),
    };
    let owner = module.last().map_or("", String::as_str);
    let has = |s: &str| module.iter().any(|m| m == s);
    let in_attention = module
        .iter()
        .any(|m| m.contains("attn") || m.contains("attention"));
    let is = |names: &[&str]| names.contains(&owner);

    if module
        .iter()
        .any(|m| m.contains("norm") || m.starts_with("ln_") || m == "ln")
    {
        return Norm;
    }
    if let Some(block) = gguf_block_type(owner) {
        return block;
    }
    if param.ends_with("_scale_inv") || param.ends_with("_scale") {
        return QuantScale;
    }
    if owner.contains("position_embedding") || is(&["wpe", "embed_positions", "pos_embed"]) {
        return PositionEmbedding;
    }
    if owner.contains("relative_attention_bias") {
        return PositionEmbedding;
    }
    if owner.contains("token_type_embedding") {
        return TokenTypeEmbedding;
    }
    if module.first().is_some_and(|m| m == "lm_head") || segments == ["output", "weight"] {
        return Output;
    }
    if is(&["embed_out"]) {
        return Output;
    }
    let t5_shared = module.len() == 1 && owner == "shared";
    if param == "weight" && (owner.contains("embed") || owner == "wte" || t5_shared) {
        return Embedding;
    }
    if has("experts") {
        return MoeExpert;
    }
    if is(&["gate", "router", "shared_expert_gate"]) {
        return MoeGate;
    }
    if module
        .iter()
        .any(|m| m.starts_with("shared_expert") || m.contains("moe"))
    {
        return Moe;
    }
    for (label, block) in [
        ("q_proj", QProj),
        ("k_proj", KProj),
        ("v_proj", VProj),
        ("o_proj", OProj),
    ] {
        if has(label) {
            return block;
        }
    }
    if param == "bias" || param.ends_with("_bias") {
        return Bias;
    }
    if is(&["c_attn", "query_key_value", "qkv_proj", "wqkv", "qkv"]) {
        return Qkv;
    }
    if is(&["query", "wq", "q", "q_a_proj", "q_b_proj"]) {
        return QProj;
    }
    if is(&["key", "wk", "k"]) {
        return KProj;
    }
    if is(&["value", "wv", "v"]) {
        return VProj;
    }
    if is(&["kv_a_proj_with_mqa", "kv_b_proj"]) {
        return KvProj;
    }
    if in_attention && is(&["o", "wo", "out_proj", "dense", "c_proj"]) {
        return OProj;
    }
    if is(&["gate_up_proj"]) {
        return MlpGateUp;
    }
    if is(&["gate_proj", "w1", "wi_0"]) {
        return MlpGate;
    }
    if is(&[
        "up_proj",
        "w3",
        "fc1",
        "c_fc",
        "wi",
        "wi_1",
        "dense_h_to_4h",
    ]) {
        return MlpUp;
    }
    if is(&["down_proj", "w2", "fc2", "c_proj", "wo", "dense_4h_to_h"]) {
        return MlpDown;
    }
    // BERT: layer.N.intermediate.dense is the up projection, layer.N.output.dense the down.
    if owner == "dense" && module.len() >= 2 {
        match module[module.len() - 2].as_str() {
            "intermediate" => return MlpUp,
            "output" => return MlpDown,
            _ => {}
        }
    }
    Other
}

/// GGUF's own module names (gguf-py `constants.py` `TENSOR_NAMES`), which
/// no Hugging Face name uses.
fn gguf_block_type(owner: &str) -> Option<BlockType> {
    use BlockType::*;
    Some(match owner {
        "token_embd" => Embedding,
        "position_embd" => PositionEmbedding,
        "token_types" => TokenTypeEmbedding,
        "attn_q" | "attn_q_a" | "attn_q_b" => QProj,
        "attn_k" => KProj,
        "attn_v" => VProj,
        "attn_output" => OProj,
        "attn_qkv" => Qkv,
        "attn_kv_a_mqa" | "attn_kv_b" | "attn_k_b" | "attn_v_b" => KvProj,
        "ffn_gate" => MlpGate,
        "ffn_up" => MlpUp,
        "ffn_down" => MlpDown,
        "ffn_gate_up" => MlpGateUp,
        "ffn_gate_inp" | "ffn_gate_inp_shexp" | "exp_probs_b" => MoeGate,
        o if o.ends_with("_exps") || o.ends_with("_chexps") => MoeExpert,
        o if o.ends_with("_shexp") => Moe,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::BlockType::*;
    use super::*;

    fn check(cases: &[(&str, Option<u32>, BlockType)]) {
        for &(name, layer, block) in cases {
            let p = classify(name);
            assert_eq!((p.layer_index, p.block_type), (layer, block), "{name}");
        }
    }

    #[test]
    fn llama() {
        check(&[
            ("model.embed_tokens.weight", None, Embedding),
            ("model.layers.0.self_attn.q_proj.weight", Some(0), QProj),
            ("model.layers.0.self_attn.k_proj.weight", Some(0), KProj),
            ("model.layers.0.self_attn.v_proj.weight", Some(0), VProj),
            ("model.layers.0.self_attn.o_proj.weight", Some(0), OProj),
            ("model.layers.31.mlp.gate_proj.weight", Some(31), MlpGate),
            ("model.layers.31.mlp.up_proj.weight", Some(31), MlpUp),
            ("model.layers.31.mlp.down_proj.weight", Some(31), MlpDown),
            ("model.layers.31.input_layernorm.weight", Some(31), Norm),
            (
                "model.layers.31.post_attention_layernorm.weight",
                Some(31),
                Norm,
            ),
            ("model.norm.weight", None, Norm),
            ("lm_head.weight", None, Output),
            // Meta's original checkpoint naming.
            ("tok_embeddings.weight", None, Embedding),
            ("layers.2.attention.wq.weight", Some(2), QProj),
            ("layers.2.attention.wo.weight", Some(2), OProj),
            ("layers.2.feed_forward.w1.weight", Some(2), MlpGate),
            ("layers.2.feed_forward.w2.weight", Some(2), MlpDown),
            ("layers.2.feed_forward.w3.weight", Some(2), MlpUp),
            ("layers.2.attention_norm.weight", Some(2), Norm),
            ("output.weight", None, Output),
        ]);
    }

    #[test]
    fn qwen3_and_qwen2_biases() {
        check(&[
            ("model.layers.5.self_attn.q_norm.weight", Some(5), Norm),
            ("model.layers.5.self_attn.k_norm.weight", Some(5), Norm),
            ("model.layers.5.self_attn.q_proj.weight", Some(5), QProj),
            // The original labelled Qwen2's projection biases by their module.
            ("model.layers.5.self_attn.q_proj.bias", Some(5), QProj),
        ]);
    }

    #[test]
    fn qwen3_moe_and_mixtral() {
        check(&[
            ("model.layers.7.mlp.gate.weight", Some(7), MoeGate),
            (
                "model.layers.7.mlp.experts.127.gate_proj.weight",
                Some(7),
                MoeExpert,
            ),
            (
                "model.layers.7.mlp.experts.0.down_proj.weight",
                Some(7),
                MoeExpert,
            ),
            (
                "model.layers.0.block_sparse_moe.gate.weight",
                Some(0),
                MoeGate,
            ),
            (
                "model.layers.0.block_sparse_moe.experts.3.w1.weight",
                Some(0),
                MoeExpert,
            ),
            (
                "model.layers.0.block_sparse_moe.experts.3.w2.weight",
                Some(0),
                MoeExpert,
            ),
            (
                "model.layers.2.mlp.shared_expert.up_proj.weight",
                Some(2),
                Moe,
            ),
            (
                "model.layers.2.mlp.shared_expert_gate.weight",
                Some(2),
                MoeGate,
            ),
        ]);
        let p = classify("model.layers.0.block_sparse_moe.experts.3.w3.weight");
        assert_eq!(p.expert_index, Some(3));
    }

    #[test]
    fn deepseek_v3() {
        check(&[
            ("model.layers.0.self_attn.q_a_proj.weight", Some(0), QProj),
            (
                "model.layers.0.self_attn.q_a_layernorm.weight",
                Some(0),
                Norm,
            ),
            ("model.layers.0.self_attn.q_b_proj.weight", Some(0), QProj),
            (
                "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                Some(0),
                KvProj,
            ),
            (
                "model.layers.0.self_attn.kv_a_layernorm.weight",
                Some(0),
                Norm,
            ),
            ("model.layers.0.self_attn.kv_b_proj.weight", Some(0), KvProj),
            ("model.layers.0.self_attn.o_proj.weight", Some(0), OProj),
            (
                "model.layers.0.self_attn.q_a_proj.weight_scale_inv",
                Some(0),
                QuantScale,
            ),
            ("model.layers.0.mlp.gate_proj.weight", Some(0), MlpGate),
            ("model.layers.3.mlp.gate.weight", Some(3), MoeGate),
            (
                "model.layers.3.mlp.gate.e_score_correction_bias",
                Some(3),
                MoeGate,
            ),
            (
                "model.layers.3.mlp.experts.255.up_proj.weight",
                Some(3),
                MoeExpert,
            ),
            (
                "model.layers.3.mlp.shared_experts.down_proj.weight",
                Some(3),
                Moe,
            ),
        ]);
    }

    #[test]
    fn bert() {
        check(&[
            ("embeddings.word_embeddings.weight", None, Embedding),
            (
                "embeddings.position_embeddings.weight",
                None,
                PositionEmbedding,
            ),
            (
                "embeddings.token_type_embeddings.weight",
                None,
                TokenTypeEmbedding,
            ),
            ("embeddings.LayerNorm.weight", None, Norm),
            ("embeddings.LayerNorm.bias", None, Norm),
            ("embeddings.position_ids", None, Other),
            (
                "encoder.layer.4.attention.self.query.weight",
                Some(4),
                QProj,
            ),
            ("encoder.layer.4.attention.self.key.weight", Some(4), KProj),
            (
                "encoder.layer.4.attention.self.value.weight",
                Some(4),
                VProj,
            ),
            ("encoder.layer.4.attention.self.value.bias", Some(4), Bias),
            (
                "encoder.layer.4.attention.output.dense.weight",
                Some(4),
                OProj,
            ),
            (
                "encoder.layer.4.attention.output.LayerNorm.weight",
                Some(4),
                Norm,
            ),
            ("encoder.layer.4.intermediate.dense.weight", Some(4), MlpUp),
            ("encoder.layer.4.output.dense.weight", Some(4), MlpDown),
            ("encoder.layer.4.output.dense.bias", Some(4), Bias),
            ("encoder.layer.4.output.LayerNorm.bias", Some(4), Norm),
            ("pooler.dense.weight", None, Other),
        ]);
    }

    #[test]
    fn gpt2() {
        check(&[
            ("wte.weight", None, Embedding),
            ("wpe.weight", None, PositionEmbedding),
            ("h.11.ln_1.weight", Some(11), Norm),
            ("h.11.attn.c_attn.weight", Some(11), Qkv),
            ("h.11.attn.c_attn.bias", Some(11), Bias),
            ("h.11.attn.c_proj.weight", Some(11), OProj),
            ("h.11.attn.bias", Some(11), Bias),
            ("h.11.ln_2.bias", Some(11), Norm),
            ("h.11.mlp.c_fc.weight", Some(11), MlpUp),
            ("h.11.mlp.c_proj.weight", Some(11), MlpDown),
            ("ln_f.weight", None, Norm),
            ("transformer.h.0.mlp.c_fc.weight", Some(0), MlpUp),
        ]);
    }

    #[test]
    fn falcon() {
        check(&[
            ("transformer.word_embeddings.weight", None, Embedding),
            (
                "transformer.h.9.self_attention.query_key_value.weight",
                Some(9),
                Qkv,
            ),
            (
                "transformer.h.9.self_attention.dense.weight",
                Some(9),
                OProj,
            ),
            ("transformer.h.9.mlp.dense_h_to_4h.weight", Some(9), MlpUp),
            ("transformer.h.9.mlp.dense_4h_to_h.weight", Some(9), MlpDown),
            ("transformer.h.9.input_layernorm.weight", Some(9), Norm),
            ("transformer.ln_f.bias", None, Norm),
            ("lm_head.weight", None, Output),
        ]);
    }

    #[test]
    fn phi3() {
        check(&[
            ("model.layers.1.self_attn.qkv_proj.weight", Some(1), Qkv),
            ("model.layers.1.self_attn.o_proj.weight", Some(1), OProj),
            ("model.layers.1.mlp.gate_up_proj.weight", Some(1), MlpGateUp),
            ("model.layers.1.mlp.down_proj.weight", Some(1), MlpDown),
        ]);
    }

    #[test]
    fn t5() {
        check(&[
            ("shared.weight", None, Embedding),
            ("encoder.embed_tokens.weight", None, Embedding),
            (
                "encoder.block.3.layer.0.SelfAttention.q.weight",
                Some(3),
                QProj,
            ),
            (
                "encoder.block.3.layer.0.SelfAttention.k.weight",
                Some(3),
                KProj,
            ),
            (
                "encoder.block.3.layer.0.SelfAttention.v.weight",
                Some(3),
                VProj,
            ),
            (
                "encoder.block.3.layer.0.SelfAttention.o.weight",
                Some(3),
                OProj,
            ),
            (
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                Some(0),
                PositionEmbedding,
            ),
            ("encoder.block.3.layer.0.layer_norm.weight", Some(3), Norm),
            (
                "encoder.block.3.layer.1.DenseReluDense.wi.weight",
                Some(3),
                MlpUp,
            ),
            (
                "encoder.block.3.layer.1.DenseReluDense.wo.weight",
                Some(3),
                MlpDown,
            ),
            (
                "decoder.block.2.layer.1.EncDecAttention.q.weight",
                Some(2),
                QProj,
            ),
            (
                "decoder.block.2.layer.2.DenseReluDense.wi_0.weight",
                Some(2),
                MlpGate,
            ),
            (
                "decoder.block.2.layer.2.DenseReluDense.wi_1.weight",
                Some(2),
                MlpUp,
            ),
            ("encoder.final_layer_norm.weight", None, Norm),
            ("lm_head.weight", None, Output),
        ]);
    }

    #[test]
    fn gguf() {
        check(&[
            ("token_embd.weight", None, Embedding),
            ("output.weight", None, Output),
            ("output_norm.weight", None, Norm),
            ("blk.3.attn_norm.weight", Some(3), Norm),
            ("blk.3.attn_q.weight", Some(3), QProj),
            ("blk.3.attn_k.weight", Some(3), KProj),
            ("blk.3.attn_v.weight", Some(3), VProj),
            ("blk.3.attn_output.weight", Some(3), OProj),
            ("blk.3.attn_q.bias", Some(3), QProj),
            ("blk.3.attn_qkv.weight", Some(3), Qkv),
            ("blk.3.attn_q_norm.weight", Some(3), Norm),
            ("blk.3.ffn_norm.weight", Some(3), Norm),
            ("blk.3.ffn_gate.weight", Some(3), MlpGate),
            ("blk.3.ffn_up.weight", Some(3), MlpUp),
            ("blk.3.ffn_down.weight", Some(3), MlpDown),
            ("blk.3.ffn_gate_inp.weight", Some(3), MoeGate),
            ("blk.3.ffn_gate_exps.weight", Some(3), MoeExpert),
            ("blk.3.ffn_down_exps.weight", Some(3), MoeExpert),
            ("blk.3.ffn_up_shexp.weight", Some(3), Moe),
            ("blk.3.attn_kv_a_mqa.weight", Some(3), KvProj),
            ("blk.3.attn_kv_a_norm.weight", Some(3), Norm),
            ("blk.3.exp_probs_b.bias", Some(3), MoeGate),
        ]);
        assert_eq!(classify("blk.3.ffn_gate_exps.weight").expert_index, None);
    }

    #[test]
    fn stacked_experts_and_blocks() {
        check(&[
            (
                "model.layers.4.mlp.experts.gate_up_proj",
                Some(4),
                MoeExpert,
            ),
            (
                "model.layers.4.mlp.experts.down_proj_bias",
                Some(4),
                MoeExpert,
            ),
            ("blocks.6.attn.qkv.weight", Some(6), Qkv),
        ]);
        assert_eq!(
            classify("model.layers.4.mlp.experts.gate_up_proj").expert_index,
            None
        );
    }
}
