//! Finding quantized weights from their sibling tensors and `config.json`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Quantized;
use super::formats;
use crate::error::{Error, Result};
use crate::model::{Shard, TensorEntry};

/// The quantized weights of a model and the stored tensors they fold in.
#[derive(Default)]
pub(crate) struct Detected {
    pub quantized: Vec<Quantized>,
    /// Stored names that belong to a quantized weight (codes and sidecars).
    pub folded: HashSet<String>,
    /// The quantization method the configuration names, if any.
    pub method: Option<String>,
    /// What a reader of the numbers must know that the rows cannot say.
    pub caveats: Vec<String>,
}

/// The quantization section of a model's configuration.
pub(crate) struct QuantConfig {
    pub path: PathBuf,
    /// `quant_method` (`fp8`, `gptq`, `awq`, `compressed-tensors`,
    /// `bitsandbytes`, `mxfp4`), or `mlx` for MLX's `quantization`.
    pub method: String,
    pub value: Value,
}

impl QuantConfig {
    /// The first of: `config.json`'s `quantization` (MLX), its
    /// `quantization_config`, `quantize_config.json`, `quant_config.json`.
    pub fn load(dir: &Path) -> Result<Option<QuantConfig>> {
        let read = |name: &str| -> Result<Option<(PathBuf, Value)>> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(text) => serde_json::from_slice(&text)
                    .map(|v| Some((path.clone(), v)))
                    .map_err(|source| Error::InvalidConfig { path, source }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(path, e)),
            }
        };
        if let Some((path, config)) = read("config.json")? {
            if let Some(q) = config.get("quantization").filter(|q| q.is_object()) {
                return Ok(Some(QuantConfig {
                    path,
                    method: "mlx".into(),
                    value: q.clone(),
                }));
            }
            if let Some(q) = config.get("quantization_config").filter(|q| q.is_object()) {
                return Ok(Some(QuantConfig::of(path, q.clone())));
            }
        }
        for name in ["quantize_config.json", "quant_config.json"] {
            if let Some((path, value)) = read(name)? {
                return Ok(Some(QuantConfig::of(path, value)));
            }
        }
        Ok(None)
    }

    fn of(path: PathBuf, value: Value) -> QuantConfig {
        let method = value
            .get("quant_method")
            .and_then(Value::as_str)
            // AutoGPTQ's quantize_config.json predates quant_method.
            .unwrap_or(if value.get("bits").is_some() {
                "gptq"
            } else {
                ""
            })
            .to_ascii_lowercase();
        QuantConfig {
            path,
            method,
            value,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    pub fn int(&self, keys: &[&str]) -> Option<i64> {
        keys.iter()
            .find_map(|k| self.value.get(*k).and_then(Value::as_i64))
    }

    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::QuantizationConfig {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// A layout that is recognised but not read: a clear error, so that its
    /// codes are never analysed as numbers by accident.
    pub fn unsupported(&self, layout: impl Into<String>) -> Error {
        Error::UnsupportedQuantization {
            path: self.path.clone(),
            layout: layout.into(),
        }
    }
}

/// What the format detectors see: every stored tensor by name.
pub(crate) struct Context<'a> {
    by_name: HashMap<&'a str, &'a TensorEntry>,
    shards: &'a [Shard],
    pub config: Option<&'a QuantConfig>,
}

impl<'a> Context<'a> {
    pub fn get(&self, name: &str) -> Option<&'a TensorEntry> {
        self.by_name.get(name).copied()
    }

    pub fn shards(&self) -> &'a [Shard] {
        self.shards
    }

    /// The sibling `name`, or an error at `anchor` saying it is missing.
    pub fn require(&self, anchor: &TensorEntry, name: &str, why: &str) -> Result<&'a TensorEntry> {
        self.get(name)
            .ok_or_else(|| self.invalid(anchor, format!("{why}, but {name} is not in the model")))
    }

    pub fn invalid(&self, entry: &TensorEntry, reason: impl Into<String>) -> Error {
        Error::InvalidTensor {
            path: self.shards[entry.shard].path.clone(),
            tensor: entry.name.clone(),
            reason: reason.into(),
        }
    }

    /// The configuration's method, when it names one.
    pub fn method(&self) -> Option<&'a str> {
        self.config
            .map(|c| c.method.as_str())
            .filter(|m| !m.is_empty())
    }
}

/// The format families, as `quant_method` names them.
const FAMILIES: &[&str] = &[
    "fp8",
    "compressed-tensors",
    "gptq",
    "awq",
    "mlx",
    "bitsandbytes",
    "mxfp4",
];

/// Finds every quantized weight among `entries`.
pub(crate) fn detect(
    entries: &[TensorEntry],
    shards: &[Shard],
    config: Option<&QuantConfig>,
) -> Result<Detected> {
    if let Some(config) = config {
        formats::check_config(config)?;
    }
    let cx = Context {
        by_name: entries.iter().map(|e| (e.name.as_str(), e)).collect(),
        shards,
        config,
    };
    let mut found: Vec<(&'static str, Quantized)> = Vec::new();
    for entry in entries {
        if let Some(q) = formats::detect_at(&cx, entry)? {
            found.push(q);
        }
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (_, q) in &found {
        for part in &q.parts {
            if let Some(first) = owner.insert(&part.entry.name, &q.logical.name) {
                return Err(cx.invalid(
                    &part.entry,
                    format!(
                        "is claimed by two quantized weights ({first} and {})",
                        q.logical.name
                    ),
                ));
            }
        }
    }
    if let Some(config) = config.filter(|c| FAMILIES.contains(&c.method.as_str())) {
        if let Some((family, q)) = found.iter().find(|(f, _)| *f != config.method) {
            return Err(cx.invalid(
                &q.parts[0].entry,
                format!(
                    "its sidecar tensors are {family} ones, but {} names quant_method {:?}",
                    config.path.display(),
                    config.method
                ),
            ));
        }
        if found.is_empty() {
            return Err(config.error(format!(
                "it names quant_method {:?}, but no tensor of the model has that format's \
                 sidecars (scales, packed codes); the checkpoint and its configuration do not match \
                 (use --raw to analyse the stored tensors as they are)",
                config.method
            )));
        }
    }
    Ok(Detected {
        folded: owner.keys().map(|n| (*n).to_owned()).collect(),
        quantized: found.into_iter().map(|(_, q)| q).collect(),
        method: config.map(|c| c.method.clone()).filter(|m| !m.is_empty()),
        caveats: config.map(caveats).unwrap_or_default(),
    })
}

/// compressed-tensors' `transform_config` means the weights were rotated
/// (SpinQuant/QuIP Hadamard transforms) before they were quantized.
fn caveats(config: &QuantConfig) -> Vec<String> {
    let rotated = config
        .value
        .get("transform_config")
        .is_some_and(|t| !t.is_null() && t.as_object().is_none_or(|o| !o.is_empty()));
    if !rotated {
        return Vec::new();
    }
    vec![format!(
        "{} has a transform_config: the weights were rotated before quantization and are \
         analysed as stored, in the rotated basis (an orthogonal rotation leaves the singular \
         values as they were; the elementwise statistics change)",
        config.path.display()
    )]
}
