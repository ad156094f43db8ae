//! GGUF tensor names back to Hugging Face names, for the architectures
//! whose converters tpa knows (llama.cpp's `convert_hf_to_gguf.py` and
//! gguf-py's `tensor_mapping.py`): llama (and Mistral, Mixtral), qwen2,
//! qwen2moe, qwen3, qwen3moe, gemma2, gemma3, phi3, deepseek2.

/// The naming of one GGUF model's architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfNames {
    arch: Arch,
    /// Mixtral keeps the llama architecture but names its MoE blocks
    /// `block_sparse_moe`.
    mixtral: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    Llama,
    Qwen,
    Gemma,
    Phi3,
    Deepseek,
}

impl HfNames {
    /// The naming of `architecture` (`general.architecture`), with
    /// `experts` routed experts per layer; `None` for one tpa does not map.
    ///
    /// ```
    /// use tpa_core::model::gguf::names::HfNames;
    /// let llama = HfNames::of("llama", 0).unwrap();
    /// assert_eq!(llama.hf_name("blk.3.attn_q.weight", None).as_deref(),
    ///            Some("model.layers.3.self_attn.q_proj.weight"));
    /// let qwen = HfNames::of("qwen3moe", 128).unwrap();
    /// assert_eq!(qwen.hf_name("blk.0.ffn_down_exps.weight", Some(7)).as_deref(),
    ///            Some("model.layers.0.mlp.experts.7.down_proj.weight"));
    /// assert!(HfNames::of("rwkv6", 0).is_none());
    /// ```
    pub fn of(architecture: &str, experts: u64) -> Option<HfNames> {
        let arch = match architecture {
            "llama" | "mistral" => Arch::Llama,
            "qwen2" | "qwen2moe" | "qwen3" | "qwen3moe" => Arch::Qwen,
            "gemma2" | "gemma3" => Arch::Gemma,
            "phi3" => Arch::Phi3,
            "deepseek2" => Arch::Deepseek,
            _ => return None,
        };
        Some(HfNames {
            arch,
            mixtral: arch == Arch::Llama && experts > 0,
        })
    }

    /// Whether llama.cpp's converter permuted the rows of `attn_q`/`attn_k`
    /// (`LlamaModel.permute`, for the llama architecture only).
    pub fn permutes_qk(&self) -> bool {
        self.arch == Arch::Llama
    }

    /// What llama.cpp's converter added to the values of the tensor it
    /// names `hf_name`: 1 for Gemma's RMSNorm weights (`...norm.weight`),
    /// which Hugging Face applies as `1 + w` and the converter stores as
    /// `1 + w` for ggml to multiply by directly; 0 otherwise.
    ///
    /// ```
    /// use tpa_core::model::gguf::names::HfNames;
    /// let gemma = HfNames::of("gemma3", 0).unwrap();
    /// assert_eq!(gemma.stored_shift("model.layers.0.self_attn.q_norm.weight"), 1.0);
    /// assert_eq!(gemma.stored_shift("model.layers.0.self_attn.q_proj.weight"), 0.0);
    /// assert_eq!(HfNames::of("llama", 0).unwrap().stored_shift("model.norm.weight"), 0.0);
    /// ```
    pub fn stored_shift(&self, hf_name: &str) -> f64 {
        if self.arch == Arch::Gemma && hf_name.ends_with("norm.weight") {
            1.0
        } else {
            0.0
        }
    }

    /// The Hugging Face name of GGUF tensor `name` (expert `expert` of a
    /// stacked `_exps` tensor); `None` where no one HF tensor corresponds
    /// (`rope_freqs`, DeepSeek's split `attn_k_b`/`attn_v_b`, or a stacked
    /// tensor without an expert).
    pub fn hf_name(&self, name: &str, expert: Option<u32>) -> Option<String> {
        let (module, param) = name.rsplit_once('.')?;
        if let Some(rest) = module.strip_prefix("blk.") {
            let (layer, block) = rest.split_once('.')?;
            layer.parse::<u32>().ok()?;
            if self.arch == Arch::Deepseek && block == "exp_probs_b" {
                return Some(format!(
                    "model.layers.{layer}.mlp.gate.e_score_correction_bias"
                ));
            }
            let inner = self.layer_module(block, expert)?;
            return Some(format!("model.layers.{layer}.{inner}.{param}"));
        }
        let top = match module {
            "token_embd" => "model.embed_tokens",
            "output_norm" => "model.norm",
            "output" => "lm_head",
            _ => return None,
        };
        Some(format!("{top}.{param}"))
    }

    fn layer_module(&self, block: &str, expert: Option<u32>) -> Option<String> {
        use Arch::*;
        let fixed = match (self.arch, block) {
            (_, "attn_q") => "self_attn.q_proj",
            (_, "attn_k") => "self_attn.k_proj",
            (_, "attn_v") => "self_attn.v_proj",
            (_, "attn_output") => "self_attn.o_proj",
            (_, "attn_q_norm") => "self_attn.q_norm",
            (_, "attn_k_norm") => "self_attn.k_norm",
            (Phi3, "attn_qkv") => "self_attn.qkv_proj",
            (_, "attn_norm") => "input_layernorm",
            (Gemma, "ffn_norm") => "pre_feedforward_layernorm",
            (Gemma, "post_attention_norm") => "post_attention_layernorm",
            (Gemma, "post_ffw_norm") => "post_feedforward_layernorm",
            (_, "ffn_norm") => "post_attention_layernorm",
            (Phi3, "ffn_up") => "mlp.gate_up_proj",
            (_, "ffn_gate") => "mlp.gate_proj",
            (_, "ffn_up") => "mlp.up_proj",
            (_, "ffn_down") => "mlp.down_proj",
            (Llama, "ffn_gate_inp") if self.mixtral => "block_sparse_moe.gate",
            (_, "ffn_gate_inp") => "mlp.gate",
            (Qwen, "ffn_gate_inp_shexp") => "mlp.shared_expert_gate",
            (Deepseek, "attn_q_a") => "self_attn.q_a_proj",
            (Deepseek, "attn_q_b") => "self_attn.q_b_proj",
            (Deepseek, "attn_q_a_norm") => "self_attn.q_a_layernorm",
            (Deepseek, "attn_kv_a_mqa") => "self_attn.kv_a_proj_with_mqa",
            (Deepseek, "attn_kv_a_norm") => "self_attn.kv_a_layernorm",
            (Deepseek, "attn_kv_b") => "self_attn.kv_b_proj",
            _ => "",
        };
        if !fixed.is_empty() {
            return Some(fixed.to_owned());
        }
        let projection = |kind: &str| match kind {
            "gate" => Some("gate_proj"),
            "up" => Some("up_proj"),
            "down" => Some("down_proj"),
            _ => None,
        };
        if let Some(kind) = block
            .strip_prefix("ffn_")
            .and_then(|b| b.strip_suffix("_exps"))
        {
            let e = expert?;
            if self.mixtral {
                let w = match kind {
                    "gate" => "w1",
                    "down" => "w2",
                    "up" => "w3",
                    _ => return None,
                };
                return Some(format!("block_sparse_moe.experts.{e}.{w}"));
            }
            return Some(format!("mlp.experts.{e}.{}", projection(kind)?));
        }
        if let Some(kind) = block
            .strip_prefix("ffn_")
            .and_then(|b| b.strip_suffix("_shexp"))
        {
            let shared = if self.arch == Deepseek {
                "shared_experts"
            } else {
                "shared_expert"
            };
            return Some(format!("mlp.{shared}.{}", projection(kind)?));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_architectures_map_to_their_hf_names() {
        let cases = [
            (
                "llama",
                0,
                "token_embd.weight",
                None,
                Some("model.embed_tokens.weight"),
            ),
            ("llama", 0, "output.weight", None, Some("lm_head.weight")),
            (
                "llama",
                0,
                "output_norm.weight",
                None,
                Some("model.norm.weight"),
            ),
            (
                "llama",
                0,
                "blk.1.ffn_norm.weight",
                None,
                Some("model.layers.1.post_attention_layernorm.weight"),
            ),
            (
                "llama",
                8,
                "blk.1.ffn_gate_exps.weight",
                Some(3),
                Some("model.layers.1.block_sparse_moe.experts.3.w1.weight"),
            ),
            (
                "llama",
                8,
                "blk.1.ffn_up_exps.weight",
                Some(3),
                Some("model.layers.1.block_sparse_moe.experts.3.w3.weight"),
            ),
            (
                "llama",
                8,
                "blk.1.ffn_gate_inp.weight",
                None,
                Some("model.layers.1.block_sparse_moe.gate.weight"),
            ),
            (
                "qwen2",
                0,
                "blk.0.attn_q.bias",
                None,
                Some("model.layers.0.self_attn.q_proj.bias"),
            ),
            (
                "qwen2moe",
                60,
                "blk.0.ffn_up_shexp.weight",
                None,
                Some("model.layers.0.mlp.shared_expert.up_proj.weight"),
            ),
            (
                "qwen2moe",
                60,
                "blk.0.ffn_gate_inp_shexp.weight",
                None,
                Some("model.layers.0.mlp.shared_expert_gate.weight"),
            ),
            (
                "qwen3",
                0,
                "blk.2.attn_k_norm.weight",
                None,
                Some("model.layers.2.self_attn.k_norm.weight"),
            ),
            (
                "gemma3",
                0,
                "blk.2.ffn_norm.weight",
                None,
                Some("model.layers.2.pre_feedforward_layernorm.weight"),
            ),
            (
                "gemma3",
                0,
                "blk.2.post_ffw_norm.weight",
                None,
                Some("model.layers.2.post_feedforward_layernorm.weight"),
            ),
            (
                "phi3",
                0,
                "blk.2.ffn_up.weight",
                None,
                Some("model.layers.2.mlp.gate_up_proj.weight"),
            ),
            (
                "phi3",
                0,
                "blk.2.attn_qkv.weight",
                None,
                Some("model.layers.2.self_attn.qkv_proj.weight"),
            ),
            (
                "deepseek2",
                256,
                "blk.5.attn_kv_a_mqa.weight",
                None,
                Some("model.layers.5.self_attn.kv_a_proj_with_mqa.weight"),
            ),
            (
                "deepseek2",
                256,
                "blk.5.ffn_down_shexp.weight",
                None,
                Some("model.layers.5.mlp.shared_experts.down_proj.weight"),
            ),
            (
                "deepseek2",
                256,
                "blk.5.exp_probs_b.bias",
                None,
                Some("model.layers.5.mlp.gate.e_score_correction_bias"),
            ),
            ("deepseek2", 256, "blk.5.attn_k_b.weight", None, None),
            ("qwen3moe", 128, "blk.0.ffn_gate_exps.weight", None, None),
            ("llama", 0, "rope_freqs.weight", None, None),
        ];
        for (arch, experts, name, expert, want) in cases {
            let names = HfNames::of(arch, experts).unwrap();
            assert_eq!(
                names.hf_name(name, expert).as_deref(),
                want,
                "{arch} {name}"
            );
        }
    }
}
