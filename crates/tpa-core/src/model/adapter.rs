//! A PEFT LoRA adapter folder (`adapter_config.json` and
//! `adapter_model.safetensors`): which base weight each `lora_A`/`lora_B`
//! pair changes, with its rank and scale, so that ΔW = scale · B·A.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Model;
use crate::error::{Error, Result};

/// The prefix PEFT puts before the base model's module names.
const PREFIX: &str = "base_model.model.";

#[derive(Deserialize)]
struct Config {
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    rank_pattern: BTreeMap<String, usize>,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, f64>,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    peft_type: Option<String>,
}

/// One module the adapter changes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraModule {
    /// The module's name in the base model (`model.layers.0.self_attn.q_proj`).
    pub module: String,
    /// The base tensor it changes (`module.weight`).
    pub target: String,
    /// The adapter's tensors: A (r × in) and B (out × r).
    pub a: String,
    pub b: String,
    pub rank: usize,
    /// lora_alpha / r, or lora_alpha / √r with `use_rslora`.
    pub scale: f64,
    /// ΔW is (scale·B·A)ᵀ in the base's layout: an embedding
    /// (`lora_embedding_A/B`), or a layer stored in-by-out (`fan_in_fan_out`).
    pub transposed: bool,
}

/// An opened adapter: its tensors and the modules they change.
pub struct Adapter {
    pub dir: PathBuf,
    /// `adapter_model.safetensors`, read as stored.
    pub model: Model,
    pub modules: Vec<LoraModule>,
    /// Tensors that are not a LoRA factor (e.g. `modules_to_save` copies),
    /// which tpa-diff lists but does not compare.
    pub unmapped: Vec<String>,
}

impl Adapter {
    /// Opens the adapter folder `dir`, checking every factor's shape
    /// against the rank its config gives (an error names the module).
    pub fn open(dir: &Path) -> Result<Adapter> {
        let config_path = dir.join("adapter_config.json");
        let bad = |reason: String| Error::AdapterConfig {
            path: config_path.clone(),
            reason,
        };
        let text = std::fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: Config = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("not a PEFT LoRA config: {e}")))?;
        if let Some(kind) = config.peft_type.as_deref().filter(|k| *k != "LORA") {
            return Err(bad(format!(
                "peft_type {kind}: tpa reads LoRA adapters only"
            )));
        }
        if config.use_dora {
            return Err(bad(
                "use_dora: DoRA rescales each column of W + BA by lora_magnitude_vector, so \
                 ΔW is not B·A; tpa does not read DoRA adapters yet"
                    .into(),
            ));
        }
        let model = Model::open_with(dir.join("adapter_model.safetensors"), super::Reading::Raw)?;
        let mut pairs: BTreeMap<String, (Option<String>, Option<String>, bool)> = BTreeMap::new();
        let mut unmapped = Vec::new();
        for tensor in model.tensors() {
            let name = tensor.name();
            let Some((module, factor, embedding)) = factor_of(name) else {
                unmapped.push(name.to_owned());
                continue;
            };
            let entry = pairs.entry(module).or_insert((None, None, embedding));
            match factor {
                'A' => entry.0 = Some(name.to_owned()),
                _ => entry.1 = Some(name.to_owned()),
            }
        }
        let mut modules = Vec::new();
        for (module, (a, b, embedding)) in pairs {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(bad(format!(
                    "{module} has only one of its lora_A/lora_B factors"
                )));
            };
            let rank = pattern(&config.rank_pattern, &module).unwrap_or(config.r);
            let alpha = pattern(&config.alpha_pattern, &module).unwrap_or(config.lora_alpha);
            // A is r × in (r × vocab for an embedding), B is out × r.
            let (a_shape, b_shape) = (model.tensor(&a)?.shape(), model.tensor(&b)?.shape());
            if a_shape.len() != 2 || b_shape.len() != 2 || a_shape[0] != rank || b_shape[1] != rank
            {
                return Err(bad(format!(
                    "{module}: lora_A {a_shape:?} and lora_B {b_shape:?} do not have the rank {rank} \
                     the config gives it"
                )));
            }
            let scale = if config.use_rslora {
                alpha / (rank as f64).sqrt()
            } else {
                alpha / rank as f64
            };
            modules.push(LoraModule {
                target: format!("{module}.weight"),
                module,
                a,
                b,
                rank,
                scale,
                transposed: embedding || config.fan_in_fan_out,
            });
        }
        Ok(Adapter {
            dir: dir.to_owned(),
            model,
            modules,
            unmapped,
        })
    }
}

/// (module, 'A' or 'B', embedding) of a LoRA factor's tensor name.
fn factor_of(name: &str) -> Option<(String, char, bool)> {
    let name = name.strip_prefix(PREFIX).unwrap_or(name);
    for (suffix, factor) in [(".lora_embedding_A", 'A'), (".lora_embedding_B", 'B')] {
        if let Some(module) = name.strip_suffix(suffix) {
            return Some((module.to_owned(), factor, true));
        }
    }
    // `.lora_A.weight`, or with the adapter's name inside (`.lora_A.default.weight`).
    let (module, rest) = name.strip_suffix(".weight")?.rsplit_once(".lora_")?;
    let factor = match rest.split('.').next()? {
        "A" => 'A',
        "B" => 'B',
        _ => return None,
    };
    Some((module.to_owned(), factor, false))
}

/// The value of the first pattern that names `module` (the whole name, or
/// its last components, as PEFT's rank_pattern keys do).
fn pattern<T: Copy>(patterns: &BTreeMap<String, T>, module: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(key, _)| module == key.as_str() || module.ends_with(&format!(".{key}")))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_names_map_to_their_base_module() {
        assert_eq!(
            factor_of("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            Some(("model.layers.0.self_attn.q_proj".into(), 'A', false))
        );
        assert_eq!(
            factor_of("base_model.model.model.embed_tokens.lora_embedding_B"),
            Some(("model.embed_tokens".into(), 'B', true))
        );
        assert_eq!(
            factor_of("base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight"),
            Some(("model.layers.1.mlp.up_proj".into(), 'B', false))
        );
        assert_eq!(factor_of("base_model.model.lm_head.weight"), None);
    }

    #[test]
    fn patterns_match_whole_names_or_their_ends() {
        let p = BTreeMap::from([("q_proj".to_string(), 4usize)]);
        assert_eq!(pattern(&p, "model.layers.0.self_attn.q_proj"), Some(4));
        assert_eq!(pattern(&p, "model.layers.0.self_attn.qq_proj"), None);
    }
}
