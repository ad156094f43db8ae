//! Whole-model totals for the console and the JSON output.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AnalyzeRecord, RunInfo};
use crate::model::{Model, ModelConfig, Reading};

/// Count of tensors, parameters and bytes in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub tensors: u64,
    pub parameters: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, parameters: u64, bytes: u64) {
        self.tensors += 1;
        self.parameters += parameters;
        self.bytes += bytes;
    }
}

/// Totals over a model's tensors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub model_path: String,
    pub model_id: String,
    pub revision: String,
    pub created_at: String,
    pub files: Vec<String>,
    pub total: Tally,
    /// Distinct layer indices seen in tensor names.
    pub layers: usize,
    pub by_block_type: BTreeMap<String, Tally>,
    pub by_dtype: BTreeMap<String, Tally>,
    pub nan_count: u64,
    pub inf_count: u64,
    pub config: Option<ModelConfig>,
    /// What was dequantized, or that the model was read raw; `None` for a
    /// model with nothing quantized.
    pub quantization: Option<Quantization>,
    /// The version of tpa that made the result.
    pub tpa_version: &'static str,
}

/// How a model's quantized weights were read.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Quantization {
    /// `dequantized`, or `raw` with `--raw`.
    pub reading: String,
    /// The configuration's `quant_method` (`mlx` for MLX), if any.
    pub method: Option<String>,
    /// Quantized weights per scheme.
    pub schemes: BTreeMap<String, u64>,
    /// Stored tensors (codes and sidecars) folded into those weights.
    pub stored_tensors: u64,
    /// One line for people: what was dequantized, and how.
    pub note: String,
    /// What the configuration implies for the numbers (in `note` too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<String>,
}

impl Quantization {
    /// What `model` dequantized; `None` when it holds nothing quantized and
    /// was not opened raw.
    ///
    /// ```no_run
    /// # use tpa_core::model::Model;
    /// # use tpa_core::records::Quantization;
    /// let model = Model::open("Qwen3-0.6B-FP8")?;
    /// if let Some(q) = Quantization::of(&model) {
    ///     println!("{}", q.note);
    /// }
    /// # Ok::<(), tpa_core::Error>(())
    /// ```
    pub fn of(model: &Model) -> Option<Quantization> {
        if model.reading() == Reading::Raw {
            return Some(Quantization {
                reading: "raw".into(),
                method: None,
                schemes: BTreeMap::new(),
                stored_tensors: model.stored_len() as u64,
                note: "read raw (--raw): every stored tensor is analysed as stored; quantized \
                       codes, scales and zero points are not combined"
                    .into(),
                caveats: Vec::new(),
            });
        }
        let quantized = model.quantized();
        if quantized.is_empty() {
            return None;
        }
        let mut schemes: BTreeMap<String, u64> = BTreeMap::new();
        for q in quantized {
            *schemes.entry(q.scheme().to_owned()).or_default() += 1;
        }
        let stored: usize = quantized.iter().map(|q| q.stored_names().count()).sum();
        Some(Quantization::dequantized(
            model.quant_method().map(str::to_owned),
            schemes,
            stored as u64,
            model.quant_caveats().to_vec(),
        ))
    }

    /// The quantization of a model read in parts (e.g. streamed file by
    /// file): the parts' counts added up.
    pub fn combine(parts: impl IntoIterator<Item = Quantization>) -> Option<Quantization> {
        let mut parts = parts.into_iter();
        let mut total = parts.next()?;
        for part in parts {
            total.stored_tensors += part.stored_tensors;
            for (scheme, n) in part.schemes {
                *total.schemes.entry(scheme).or_default() += n;
            }
            total.method = total.method.or(part.method);
            for caveat in part.caveats {
                if !total.caveats.contains(&caveat) {
                    total.caveats.push(caveat);
                }
            }
        }
        Some(match total.reading.as_str() {
            "raw" => total,
            _ => Quantization::dequantized(
                total.method,
                total.schemes,
                total.stored_tensors,
                total.caveats,
            ),
        })
    }

    fn dequantized(
        method: Option<String>,
        schemes: BTreeMap<String, u64>,
        stored: u64,
        caveats: Vec<String>,
    ) -> Quantization {
        let weights: u64 = schemes.values().sum();
        let list: Vec<String> = schemes.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
        let mut note = format!(
            "dequantized {weights} quantized weight{} exactly in f64 from codes and scales \
             ({}); their {stored} stored tensors are folded into one row per weight, \
             with parameters counted as logical weights and bytes as stored",
            if weights == 1 { "" } else { "s" },
            list.join(", ")
        );
        for caveat in &caveats {
            note.push_str(". Note: ");
            note.push_str(caveat);
        }
        Quantization {
            reading: "dequantized".into(),
            method,
            note,
            schemes,
            stored_tensors: stored,
            caveats,
        }
    }
}

impl ModelSummary {
    /// Sums up `records`.
    pub fn new(
        run: &RunInfo,
        files: Vec<String>,
        records: &[AnalyzeRecord],
        config: Option<ModelConfig>,
    ) -> Self {
        let mut summary = ModelSummary {
            model_path: run.model_path.clone(),
            model_id: run.model_id.clone(),
            revision: run.revision.clone(),
            created_at: run.created_at.clone(),
            files,
            total: Tally::default(),
            layers: 0,
            by_block_type: BTreeMap::new(),
            by_dtype: BTreeMap::new(),
            nan_count: 0,
            inf_count: 0,
            config,
            quantization: None,
            tpa_version: env!("CARGO_PKG_VERSION"),
        };
        let mut layers = std::collections::BTreeSet::new();
        for r in records {
            let (n, bytes) = (r.stats.numel, r.quant_bytes);
            summary.total.add(n, bytes);
            summary
                .by_block_type
                .entry(r.placement.block_type.to_string())
                .or_default()
                .add(n, bytes);
            summary
                .by_dtype
                .entry(r.dtype.clone())
                .or_default()
                .add(n, bytes);
            summary.nan_count += r.stats.nan_count;
            summary.inf_count += r.stats.inf_count;
            layers.extend(r.placement.layer_index);
        }
        summary.layers = layers.len();
        summary
    }
}
