//! Deterministic model fixtures for tpa's tests and benchmarks.
//!
//! Every fixture tensor is filled either with a pattern whose statistics are
//! known in closed form ([`Fill::Pattern`], see [`Known`]) or with seeded
//! Gaussian noise ([`Fill::Normal`], for benchmarks). Values are encoded here
//! with code that shares nothing with `tpa-core`'s decoders, so a test that
//! writes with this crate and reads with `tpa-core` checks both directions.

pub mod architectures;
mod encode;
pub mod gguf;
pub mod mock_hub;
pub mod planted;
pub mod quantized;
mod rng;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use safetensors::Dtype;

pub use encode::encode;
pub use rng::SplitMix64;

/// Every dtype tpa decodes and fixtures can encode, for tests that loop over all.
pub const EVERY_DTYPE: [Dtype; 15] = [
    Dtype::F64,
    Dtype::F32,
    Dtype::F16,
    Dtype::BF16,
    Dtype::F8_E4M3,
    Dtype::F8_E5M2,
    Dtype::I64,
    Dtype::I32,
    Dtype::I16,
    Dtype::I8,
    Dtype::U64,
    Dtype::U32,
    Dtype::U16,
    Dtype::U8,
    Dtype::BOOL,
];

/// How a fixture tensor is filled.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// [`PATTERN`] shifted by the dtype's offset (see [`Known::of`]), in an
    /// order that differs from block to block; exact in every dtype.
    Pattern,
    /// Gaussian values with this standard deviation, from this seed.
    Normal { seed: u64, std: f64 },
    /// Exactly these values (must be representable in the dtype).
    Values(Vec<f64>),
    /// A 2-D tensor with exactly these singular values (see [`planted`]).
    Spectrum { sigma: Vec<f64>, seed: u64 },
    /// Stored bytes of a quantized weight (codes, scales, ...), packed on
    /// demand; see [`quantized`]. Such a tensor has bytes, not values.
    Packed(quantized::Packing),
}

/// A tensor to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub fill: Fill,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dtype: Dtype, shape: &[usize], fill: Fill) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            fill,
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values this tensor holds, as f64 (before encoding).
    ///
    /// # Panics
    /// For [`Fill::Packed`] tensors, whose values are the weight's
    /// ([`quantized::QuantWeight::dequantized`]), not the stored elements'.
    pub fn values(&self) -> Vec<f64> {
        let n = self.numel();
        match &self.fill {
            Fill::Pattern => {
                let offset = Known::offset(self.dtype);
                (0..n).map(|i| PATTERN[(i + i / 8) % 8] + offset).collect()
            }
            Fill::Normal { seed, std } => {
                let mut rng = SplitMix64::new(*seed);
                (0..n).map(|_| rng.normal() * std).collect()
            }
            Fill::Values(v) => v.clone(),
            Fill::Spectrum { sigma, seed } => {
                let (rows, cols) = match self.shape.as_slice() {
                    [rows, cols] => (*rows, *cols),
                    _ => (1, n),
                };
                planted::matrix(rows, cols, sigma, *seed)
            }
            Fill::Packed(_) => panic!("{} holds packed codes, not values", self.name),
        }
    }

    /// The stored bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match &self.fill {
            Fill::Packed(p) => p.bytes(),
            _ => encode(self.dtype, &self.values()),
        }
    }
}

impl safetensors::View for &TensorSpec {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    // Encoded on demand, so that writing a large model holds one tensor at a time.
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.bytes())
    }
    fn data_len(&self) -> usize {
        (self.numel() * self.dtype.bitsize()).div_ceil(8)
    }
}

/// The multiset every [`Fill::Pattern`] tensor repeats (before its offset):
/// mean 0, population variance 3.5, min −3, max 3, one zero in four values.
pub const PATTERN: [f64; 8] = [-3.0, -1.0, 0.0, 0.0, 1.0, 3.0, 2.0, -2.0];

/// Statistics of a [`Fill::Pattern`] tensor, known in closed form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Known {
    pub mean: f64,
    pub var: f64,
    pub min: f64,
    pub max: f64,
    /// Share of values equal to zero.
    pub sparsity: f64,
}

impl Known {
    /// The shift applied to [`PATTERN`] in `dtype`: +1 for signed and float
    /// types (so zeros come from the −1 entry), +3 for unsigned ones (so the
    /// values stay ≥ 0), none for booleans (which store `x > 0`).
    pub fn offset(dtype: Dtype) -> f64 {
        match dtype {
            Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => 3.0,
            Dtype::BOOL => 0.0,
            _ => 1.0,
        }
    }

    /// The statistics a pattern tensor of `dtype` must have (any size that
    /// is a multiple of 8).
    pub fn of(dtype: Dtype) -> Known {
        if dtype == Dtype::BOOL {
            // PATTERN > 0 is {0, 0, 0, 0, 1, 1, 1, 0}: three ones in eight.
            return Known {
                mean: 0.375,
                var: 0.375 * 0.625,
                min: 0.0,
                max: 1.0,
                sparsity: 0.625,
            };
        }
        let offset = Known::offset(dtype);
        Known {
            mean: offset,
            var: 3.5,
            min: -3.0 + offset,
            max: 3.0 + offset,
            sparsity: PATTERN.iter().filter(|&&x| x + offset == 0.0).count() as f64 / 8.0,
        }
    }
}

/// Writes `tensors` as one safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[TensorSpec]) -> std::io::Result<()> {
    let views: Vec<(&str, &TensorSpec)> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    safetensors::serialize_to_file(views, metadata, path).map_err(std::io::Error::other)
}

/// Writes a model directory: `model.safetensors`, or with `shards > 1` the
/// `model-0000i-of-0000n.safetensors` files and `model.safetensors.index.json`
/// as `transformers` lays them out. Returns the shard paths.
pub fn write_model(
    dir: &Path,
    tensors: &[TensorSpec],
    shards: usize,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    if shards <= 1 {
        let path = dir.join("model.safetensors");
        write_safetensors(&path, tensors)?;
        return Ok(vec![path]);
    }
    let per_shard = tensors.len().div_ceil(shards);
    let mut weight_map = BTreeMap::new();
    let mut paths = Vec::new();
    for (i, group) in tensors.chunks(per_shard).enumerate() {
        let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards);
        write_safetensors(&dir.join(&name), group)?;
        for t in group {
            weight_map.insert(t.name.clone(), name.clone());
        }
        paths.push(dir.join(name));
    }
    let total: usize = tensors
        .iter()
        .map(|t| safetensors::View::data_len(&t))
        .sum();
    write_index(dir, total as u64, &weight_map)?;
    Ok(paths)
}

/// `model.safetensors.index.json` as transformers writes it.
fn write_index(
    dir: &Path,
    total_size: u64,
    weight_map: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    let index =
        serde_json::json!({"metadata": {"total_size": total_size}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec_pretty(&index)?,
    )
}

/// Writes a model's shard files as headers alone: each file has its real
/// safetensors header and its full length, the data left as a hole (a
/// sparse file, so a 689 GB layout takes a few MB of disk), for header-only
/// tools such as `tpa-download --list-tensors` against the mock Hub.
/// Tensors fill `shards` files in order, about equally by bytes, as
/// checkpoint writers cut them; the index is written too. Returns the
/// shard paths.
pub fn write_model_headers(
    dir: &Path,
    tensors: &[TensorSpec],
    shards: usize,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let shards = shards.max(1);
    let bytes = |t: &TensorSpec| safetensors::View::data_len(&t) as u64;
    let total: u64 = tensors.iter().map(bytes).sum();
    let target = total.div_ceil(shards as u64);
    let mut groups: Vec<Vec<&TensorSpec>> = vec![Vec::new()];
    let mut filled = 0;
    for t in tensors {
        if filled >= target && groups.len() < shards {
            groups.push(Vec::new());
            filled = 0;
        }
        filled += bytes(t);
        if let Some(group) = groups.last_mut() {
            group.push(t);
        }
    }
    let count = groups.len();
    let mut weight_map = BTreeMap::new();
    let mut paths = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, count);
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0;
        for t in group {
            let end = offset + bytes(t);
            header.insert(
                t.name.clone(),
                serde_json::json!({
                    "dtype": format!("{:?}", t.dtype),
                    "shape": t.shape,
                    "data_offsets": [offset, end],
                }),
            );
            weight_map.insert(t.name.clone(), name.clone());
            offset = end;
        }
        let mut text = serde_json::to_vec(&header)?;
        text.resize(text.len().next_multiple_of(8), b' ');
        let path = dir.join(&name);
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, &(text.len() as u64).to_le_bytes())?;
        std::io::Write::write_all(&mut file, &text)?;
        file.set_len(8 + text.len() as u64 + offset)?;
        paths.push(path);
    }
    write_index(dir, total, &weight_map)?;
    Ok(paths)
}

/// Raw safetensors bytes built by hand, for corrupt-file tests: an 8-byte
/// length, the given header text, then `data`.
pub fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}
