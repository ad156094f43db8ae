//! The facts from `config.json` that summaries mention.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        }
    }
}
