//! The facts from `config.json` that summaries mention.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gguf::{GgufMetadata, Value as GgufValue};
use crate::error::{Error, Result};

/// Architecture facts from a Hugging Face `config.json`. Every field is
/// optional: configs differ between families, and models without a config
/// are fine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub architecture: Option<String>,
    pub model_type: Option<String>,
    pub hidden_size: Option<u64>,
    pub num_layers: Option<u64>,
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub vocab_size: Option<u64>,
    pub tie_word_embeddings: Option<bool>,
    pub torch_dtype: Option<String>,
    /// Experts per MoE layer (`{arch}.expert_count` in GGUF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_experts: Option<u64>,
    /// A GGUF file's `general.file_type` (`llama_ftype`: 15 = Q4_K_M, ...),
    /// a hint; each tensor's own type is what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf_file_type: Option<u64>,
    /// A GGUF file's `general.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ModelConfig {
    /// Reads `dir/config.json`. `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<ModelConfig>> {
        let path = dir.join("config.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let value: Value = serde_json::from_slice(&text)
            .map_err(|source| Error::InvalidConfig { path, source })?;
        Ok(Some(ModelConfig::from_json(&value)))
    }

    /// Picks the facts out of a parsed config, trying the key names the
    /// main families use (Llama/BERT, GPT-2, T5) and then `text_config` for
    /// multimodal wrappers.
    ///
    /// ```
    /// use tpa_core::model::ModelConfig;
    /// let gpt2 = serde_json::json!({"architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_layer": 12});
    /// let config = ModelConfig::from_json(&gpt2);
    /// assert_eq!(config.hidden_size, Some(768));
    /// assert_eq!(config.num_layers, Some(12));
    /// ```
    pub fn from_json(value: &Value) -> ModelConfig {
        let nested = value.get("text_config");
        let get = |keys: &[&str]| -> Option<&Value> {
            [Some(value), nested]
                .into_iter()
                .flatten()
                .find_map(|v| keys.iter().find_map(|k| v.get(*k)))
        };
        let int = |keys: &[&str]| get(keys).and_then(Value::as_u64);
        let string = |keys: &[&str]| get(keys).and_then(Value::as_str).map(str::to_owned);
        ModelConfig {
            architecture: get(&["architectures"])
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned),
            model_type: string(&["model_type"]),
            hidden_size: int(&["hidden_size", "n_embd", "d_model"]),
            num_layers: int(&["num_hidden_layers", "n_layer", "num_layers"]),
            num_attention_heads: int(&["num_attention_heads", "n_head", "num_heads"]),
            num_key_value_heads: int(&["num_key_value_heads", "num_kv_heads"]),
            intermediate_size: int(&["intermediate_size", "n_inner", "d_ff", "ffn_dim"]),
            vocab_size: int(&["vocab_size"]),
            tie_word_embeddings: get(&["tie_word_embeddings"]).and_then(Value::as_bool),
            torch_dtype: string(&["torch_dtype", "dtype"]),
            num_experts: int(&["num_experts", "num_local_experts", "n_routed_experts"]),
            ..ModelConfig::default()
        }
    }

    /// The same facts from a GGUF file's `general.*` and `{arch}.*` keys.
    /// `vocab_size` falls back to the token list, and embeddings are tied
    /// when the file has no `output.weight` (llama.cpp then reuses
    /// `token_embd`), which the caller says with `has_output`.
    pub fn from_gguf(metadata: &GgufMetadata, has_output: bool) -> ModelConfig {
        let int = |key: &str| metadata.arch_int(key).and_then(|v| u64::try_from(v).ok());
        let general = |key: &str| metadata.get(&format!("general.{key}"));
        ModelConfig {
            architecture: metadata.architecture().map(str::to_owned),
            model_type: metadata.architecture().map(str::to_owned),
            hidden_size: int("embedding_length"),
            num_layers: int("block_count"),
            num_attention_heads: int("attention.head_count"),
            num_key_value_heads: int("attention.head_count_kv"),
            intermediate_size: int("feed_forward_length"),
            vocab_size: int("vocab_size")
                .or_else(|| metadata.tokens.as_ref().map(|t| t.len() as u64)),
            tie_word_embeddings: Some(!has_output),
            torch_dtype: None,
            num_experts: int("expert_count"),
            gguf_file_type: general("file_type")
                .and_then(GgufValue::as_int)
                .and_then(|v| u64::try_from(v).ok()),
            name: general("name")
                .and_then(GgufValue::as_str)
                .map(str::to_owned),
        }
    }
}
