//! Opening a model: find its shards, map them, validate every header.
//!
//! A model is a directory as `snapshot_download` leaves it (shards plus
//! `model.safetensors.index.json`, or one or more `.safetensors` files), a
//! single `.safetensors` file, or a GGUF file or split set (module [`gguf`]).
//! Nothing but headers is read here.

mod adapter;
mod config;
pub mod gguf;
mod index;
mod shard;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use adapter::{Adapter, LoraModule};
pub use config::ModelConfig;
pub use gguf::GgufMetadata;
pub(crate) use shard::{Shard, TensorEntry};

use crate::error::{Error, Result};
use crate::tensors::quant::{self, QuantConfig};
use crate::tensors::{MatrixView, Quantized, RowOrder, TensorView};
use index::ShardIndex;

/// The index file name `transformers` writes for sharded checkpoints.
const INDEX_NAME: &str = "model.safetensors.index.json";

/// How a model's tensors are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// Quantized weights are dequantized: one logical weight per codes
    /// tensor, with its sidecars folded in (see [`crate::tensors::quant`]).
    #[default]
    Dequantized,
    /// Every stored tensor as it is, codes and sidecars alike.
    Raw,
}

/// One tensor of the model as [`Model::tensors`] lists it.
#[derive(Debug, Clone, Copy)]
enum Item {
    Stored(usize),
    Quantized(usize),
}

/// An opened model: every shard mapped, every header validated.
pub struct Model {
    path: PathBuf,
    dir: PathBuf,
    index: Option<PathBuf>,
    shards: Vec<Shard>,
    entries: Vec<TensorEntry>,
    unindexed: Vec<String>,
    reading: Reading,
    quantized: Vec<Quantized>,
    quant_method: Option<String>,
    quant_caveats: Vec<String>,
    items: Vec<Item>,
    /// A GGUF model's metadata and its block-quantized weights.
    gguf: Option<(GgufMetadata, Vec<Quantized>)>,
    /// How a GGUF model's names map to Hugging Face names.
    hf_names: Option<gguf::names::HfNames>,
}

impl Model {
    /// Opens a model directory or a single `.safetensors` file, dequantizing
    /// quantized weights ([`Reading::Dequantized`]).
    ///
    /// With a shard index, the index's `weight_map` decides which tensors the
    /// model has; otherwise every `*.safetensors` file in the directory counts.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        Model::open_with(path, Reading::Dequantized)
    }

    /// [`Model::open`], reading tensors as `reading` says.
    pub fn open_with(path: impl AsRef<Path>, reading: Reading) -> Result<Model> {
        Model::open_stored(path.as_ref())?.read_as(reading)
    }

    /// Opens only the shard files `files` (names inside the model directory
    /// `dir`), e.g. those of a model streamed from the Hub that are on disk
    /// now. With a shard index, the tensors it places in those files are
    /// listed and the others are not; every quantized weight must have its
    /// sidecars within `files`.
    pub fn open_part(dir: &Path, files: &[&str], reading: Reading) -> Result<Model> {
        let index = dir.join(INDEX_NAME);
        let model = if index.is_file() {
            Model::open_indexed(dir, dir, &index, Some(files))?
        } else {
            let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
            Model::open_files(dir, dir, &paths)?
        };
        model.read_as(reading)
    }

    /// [`Model::open_part`] for a GGUF model: only its files `files` (in
    /// `dir`), with the model's `metadata` from its first file's header
    /// ([`gguf::GgufHeader`]), which need not be among them.
    pub fn open_gguf_part(
        dir: &Path,
        files: &[&str],
        metadata: &GgufMetadata,
        reading: Reading,
    ) -> Result<Model> {
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        let opened = gguf::open_part(&paths, metadata)?;
        let first = paths.first().map_or(dir, PathBuf::as_path);
        Model::with_gguf(first, dir, opened).read_as(reading)
    }

    fn read_as(mut self, reading: Reading) -> Result<Model> {
        self.reading = reading;
        if let Some((_, quantized)) = &self.gguf {
            if reading == Reading::Dequantized {
                self.quantized = quantized.clone();
                self.quant_method = Some("gguf".into());
                self.quant_caveats = vec![
                    "GGUF blocks are dequantized in f32 in ggml's own operation order, so \
                     every value equals llama.cpp's bit for bit; statistics and spectra \
                     then work in f64"
                        .into(),
                ];
                self.items = items(&self.entries, &self.quantized, &Default::default());
            }
            return Ok(self);
        }
        if reading == Reading::Dequantized {
            let config = QuantConfig::load(&self.dir)?;
            let detected = quant::detect(&self.entries, &self.shards, config.as_ref())?;
            self.quantized = detected.quantized;
            self.quant_method = detected.method;
            self.quant_caveats = detected.caveats;
            self.items = items(&self.entries, &self.quantized, &detected.folded);
        }
        Ok(self)
    }

    fn open_stored(path: &Path) -> Result<Model> {
        let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ModelPathMissing {
                path: path.to_owned(),
            },
            _ => Error::io(path, e),
        })?;
        if metadata.is_file() && gguf::is_gguf(path) {
            return Model::open_gguf(path);
        }
        if metadata.is_file() {
            let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
            if path.to_string_lossy().ends_with(".safetensors.index.json") {
                return Model::open_indexed(path, &dir, path, None);
            }
            return Model::open_files(path, &dir, &[path.to_owned()]);
        }
        let index = path.join(INDEX_NAME);
        if index.is_file() {
            return Model::open_indexed(path, path, &index, None);
        }
        if let Some(other_index) = single_other_index(path)? {
            return Model::open_indexed(path, path, &other_index, None);
        }
        let files = safetensors_files(path)?;
        if files.is_empty() {
            let ggufs = gguf::models_in(&read_dir_sorted(path)?);
            match ggufs.len() {
                0 => {}
                1 => return Model::open_gguf(&ggufs[0]),
                _ => {
                    return Err(Error::SeveralModels {
                        dir: path.to_owned(),
                        found: ggufs
                            .iter()
                            .map(|p| file_name(p).to_owned())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            return Err(Error::NoSafetensors {
                dir: path.to_owned(),
                hint: no_safetensors_hint(path),
            });
        }
        Model::open_files(path, path, &files)
    }

    fn open_gguf(path: &Path) -> Result<Model> {
        let opened = gguf::open(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(Model::with_gguf(path, dir, opened))
    }

    fn with_gguf(path: &Path, dir: &Path, opened: gguf::Opened) -> Model {
        let mut model = Model::new(path, dir, None, opened.shards, opened.entries, Vec::new());
        model.hf_names = opened.metadata.architecture().and_then(|arch| {
            let experts = opened.metadata.arch_int("expert_count").unwrap_or(0);
            gguf::names::HfNames::of(arch, u64::try_from(experts).unwrap_or(0))
        });
        model.gguf = Some((opened.metadata, opened.quantized));
        model
    }

    fn open_files(path: &Path, dir: &Path, files: &[PathBuf]) -> Result<Model> {
        let mut shards = Vec::with_capacity(files.len());
        let mut entries = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            let (shard, shard_entries) = Shard::open(file, i)?;
            for entry in &shard_entries {
                if let Some(&first) = seen.get(&entry.name) {
                    return Err(Error::DuplicateTensor {
                        tensor: entry.name.clone(),
                        first: files[first].clone(),
                        second: file.clone(),
                    });
                }
                seen.insert(entry.name.clone(), i);
            }
            shards.push(shard);
            entries.extend(shard_entries);
        }
        Ok(Model::new(path, dir, None, shards, entries, Vec::new()))
    }

    /// The model of an index; with `only`, just the tensors of those shards.
    fn open_indexed(
        path: &Path,
        dir: &Path,
        index_path: &Path,
        only: Option<&[&str]>,
    ) -> Result<Model> {
        let index = ShardIndex::load(index_path)?;
        let mut shards = Vec::new();
        let mut entries = Vec::new();
        let mut unindexed = Vec::new();
        let mut names = index.shard_names();
        if let Some(only) = only {
            names.retain(|n| only.contains(n));
        }
        for (i, name) in names.iter().copied().enumerate() {
            let file = dir.join(name);
            if !file.is_file() {
                return Err(Error::MissingShard {
                    index: index.path.clone(),
                    shard: file,
                });
            }
            let (shard, shard_entries) = Shard::open(&file, i)?;
            for entry in shard_entries {
                if index.weight_map.get(&entry.name).map(String::as_str) == Some(name) {
                    entries.push(entry);
                } else {
                    unindexed.push(entry.name);
                }
            }
            shards.push(shard);
        }
        let wanted = |shard: &String| names.contains(&shard.as_str());
        let expected = index.weight_map.values().filter(|s| wanted(s)).count();
        if entries.len() != expected {
            let held: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.name.as_str()).collect();
            if let Some((tensor, shard)) = index
                .weight_map
                .iter()
                .find(|(tensor, shard)| wanted(shard) && !held.contains(tensor.as_str()))
            {
                return Err(Error::TensorNotInShard {
                    index: index.path.clone(),
                    tensor: tensor.clone(),
                    shard: dir.join(shard),
                });
            }
        }
        Ok(Model::new(
            path,
            dir,
            Some(index.path),
            shards,
            entries,
            unindexed,
        ))
    }

    fn new(
        path: &Path,
        dir: &Path,
        index: Option<PathBuf>,
        shards: Vec<Shard>,
        entries: Vec<TensorEntry>,
        unindexed: Vec<String>,
    ) -> Model {
        Model {
            path: path.to_owned(),
            dir: dir.to_owned(),
            index,
            items: (0..entries.len()).map(Item::Stored).collect(),
            shards,
            entries,
            unindexed,
            reading: Reading::Raw,
            quantized: Vec::new(),
            quant_method: None,
            quant_caveats: Vec::new(),
            gguf: None,
            hf_names: None,
        }
    }

    /// The architecture facts: from a GGUF file's metadata, else from
    /// `config.json` (`Ok(None)` when there is none).
    pub fn config(&self) -> Result<Option<ModelConfig>> {
        match self.gguf() {
            Some(metadata) => {
                let has_output = self.entries.iter().any(|e| e.name == "output.weight");
                Ok(Some(ModelConfig::from_gguf(metadata, has_output)))
            }
            None => ModelConfig::load(&self.dir),
        }
    }

    /// Every matrix of a GGUF model under its Hugging Face name, each read
    /// in Hugging Face's row order: llama's `attn_q`/`attn_k` weights with
    /// llama.cpp's rotary permutation undone, Gemma's norms (stored as
    /// `1 + w`) shifted back to `w`, so that they subtract from the Hugging
    /// Face weights element by element. `Ok(None)` for safetensors
    /// and for an architecture without known names; a tensor with no one HF
    /// counterpart (`rope_freqs`, DeepSeek's `attn_k_b`) comes with an
    /// empty name. A permutation that cannot be undone (head
    /// counts missing, per layer, or not dividing the rows) is an error.
    pub fn hf_matrices(&self) -> Result<Option<Vec<(String, MatrixView<'_>)>>> {
        let (Some(names), Some(metadata)) = (self.hf_names.as_ref(), self.gguf()) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for tensor in self.tensors() {
            let keys: &[&str] = match tensor.name().rsplit_once('.') {
                _ if !names.permutes_qk() => &[],
                Some((module, "weight")) if module.ends_with(".attn_q") => {
                    &["attention.head_count"]
                }
                // llama.cpp's loader takes n_head_kv = n_head when it is absent.
                Some((module, "weight")) if module.ends_with(".attn_k") => {
                    &["attention.head_count_kv", "attention.head_count"]
                }
                _ => &[],
            };
            let arch = metadata.architecture().unwrap_or_default();
            let heads = keys
                .iter()
                .find_map(|key| metadata.get(&format!("{arch}.{key}")).map(|v| (*key, v)));
            for matrix in MatrixView::split(tensor) {
                let hf = tensor.hf_name(matrix.expert_index());
                if hf.is_empty() {
                    out.push((hf, matrix));
                    continue;
                }
                let matrix = match heads {
                    None if keys.is_empty() => matrix,
                    found => {
                        let rows = matrix.shape().0;
                        let heads = found
                            .and_then(|(_, v)| usize::try_from(v.as_int()?).ok())
                            .filter(|&n| n > 0 && rows % n == 0);
                        heads
                            .and_then(|n| {
                                let head_dim = rows / n;
                                matrix.reordered(RowOrder::RotaryInterleaved { head_dim })
                            })
                            .ok_or_else(|| Error::InvalidTensor {
                                path: tensor.file().to_owned(),
                                tensor: tensor.name().to_owned(),
                                reason: format!(
                                    "llama.cpp permuted its {rows} rows by attention head, and \
                                     {arch}.{} ({}) does not say how to undo it",
                                    keys[0],
                                    found.map_or("absent".into(), |(_, v)| format!("{v:?}"))
                                ),
                            })?
                    }
                };
                // Gemma's norms as Hugging Face stores them (w, not 1 + w).
                let shift = names.stored_shift(&hf);
                out.push((hf, matrix.shifted(-shift)));
            }
        }
        Ok(Some(out))
    }

    /// A GGUF model's metadata (`None` for safetensors).
    pub fn gguf(&self) -> Option<&GgufMetadata> {
        self.gguf.as_ref().map(|(metadata, _)| metadata)
    }

    /// The path the model was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds the shards (and `config.json`, if any).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shard index followed, if the model has one.
    pub fn index_path(&self) -> Option<&Path> {
        self.index.as_deref()
    }

    /// The shard files, in the order their tensors are listed.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.shards.iter().map(Shard::path)
    }

    /// Number of tensors (logical weights, for a dequantized model).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the model holds no tensor at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every tensor, shard by shard in storage order; a quantized weight
    /// stands where its codes are stored, and its sidecars are not listed.
    /// Views are cheap and `Send`, so they can be handed to several threads.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> {
        self.items.iter().map(|&item| self.view(item))
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.tensors()
            .find(|t| t.name() == name)
            .ok_or_else(|| Error::TensorNotFound {
                tensor: name.to_owned(),
            })
    }

    /// How tensors are read.
    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// The quantized weights found (empty for a raw or unquantized model).
    pub fn quantized(&self) -> &[Quantized] {
        &self.quantized
    }

    /// The quantization method the configuration names (`fp8`, `gptq`, `mlx`...).
    pub fn quant_method(&self) -> Option<&str> {
        self.quant_method.as_deref()
    }

    /// What the quantization configuration implies for the numbers (e.g.
    /// rotated weights), one sentence each.
    pub fn quant_caveats(&self) -> &[String] {
        &self.quant_caveats
    }

    /// Every stored tensor, with sidecars, whatever the reading.
    pub fn stored_len(&self) -> usize {
        self.entries.len()
    }

    /// Tensors that a shard holds but the index does not list. They are not
    /// part of the model (as in `transformers`); callers should say so.
    pub fn unindexed_tensors(&self) -> &[String] {
        &self.unindexed
    }

    fn view(&self, item: Item) -> TensorView<'_> {
        let (entry, quant) = match item {
            Item::Stored(i) => (&self.entries[i], None),
            Item::Quantized(i) => (&self.quantized[i].logical, Some(&self.quantized[i])),
        };
        TensorView {
            entry,
            shard: &self.shards[entry.shard],
            shards: &self.shards,
            quant,
            raw: self.reading == Reading::Raw,
            hf_names: self.hf_names.as_ref(),
        }
    }
}

/// The tensors a dequantized model lists, in storage order: a quantized
/// weight where its codes are, plain tensors as they are, sidecars nowhere.
fn items(
    entries: &[TensorEntry],
    quantized: &[Quantized],
    folded: &std::collections::HashSet<String>,
) -> Vec<Item> {
    let by_codes: HashMap<&str, usize> = quantized
        .iter()
        .enumerate()
        .filter_map(|(i, q)| q.stored_names().next().map(|n| (n, i)))
        .collect();
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match by_codes.get(e.name.as_str()) {
            Some(&q) => Some(Item::Quantized(q)),
            None if folded.contains(&e.name) => None,
            None => Some(Item::Stored(i)),
        })
        .collect()
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        paths.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// `*.safetensors` files, skipping macOS `._*` resource forks.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| {
            let name = file_name(p);
            name.ends_with(".safetensors") && !name.starts_with("._") && p.is_file()
        })
        .collect())
}

/// An index under another name (`diffusion_pytorch_model.safetensors.index.json`),
/// used only when it is the only one.
fn single_other_index(dir: &Path) -> Result<Option<PathBuf>> {
    let mut indexes: Vec<PathBuf> = read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| {
            let name = file_name(p);
            name.ends_with(".safetensors.index.json") && !name.starts_with("._")
        })
        .collect();
    Ok(if indexes.len() == 1 {
        indexes.pop()
    } else {
        None
    })
}

/// Says where models are when the user pointed at a parent directory (the
/// original tool was often run with `--model_path data/models`), or that the
/// directory only has PyTorch pickles.
fn no_safetensors_hint(dir: &Path) -> String {
    let has = |d: &Path, pred: &dyn Fn(&str) -> bool| {
        read_dir_sorted(d).is_ok_and(|ps| ps.iter().any(|p| pred(file_name(p))))
    };
    if has(dir, &|n| {
        n.ends_with(".bin") || n.ends_with(".pth") || n.ends_with(".pt")
    }) {
        return "; it holds PyTorch .bin/.pth weights, which tpa does not read \
                (download the safetensors weights instead)"
            .into();
    }
    let found: Vec<String> = models_below(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    match found.len() {
        0 => String::new(),
        1..=5 => format!("; models found below it: {}", found.join(", ")),
        n => format!(
            "; {n} models found below it, e.g. {}",
            found[..3].join(", ")
        ),
    }
}

/// The model directories below `dir` (up to three levels down, as
/// `tpa-download` lays out `data/models/ORG/NAME`), in sorted order: the
/// folders that hold `.safetensors` files, not looked into further. Empty
/// when `dir` is itself a model, or holds none.
///
/// ```no_run
/// for model in tpa_core::model::models_below("data/models".as_ref()) {
///     println!("{}", model.display());
/// }
/// ```
pub fn models_below(dir: &Path) -> Vec<PathBuf> {
    let has_weights = |d: &Path| {
        read_dir_sorted(d).is_ok_and(|ps| {
            ps.iter().any(|p| {
                let name = file_name(p);
                (name.ends_with(".safetensors") || gguf::is_gguf(p)) && !name.starts_with("._")
            })
        })
    };
    if has_weights(dir) {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut frontier = vec![dir.to_owned()];
    for _depth in 0..3 {
        let mut next = Vec::new();
        for d in frontier {
            for p in read_dir_sorted(&d).unwrap_or_default() {
                // Hidden folders (.cache, .tpa-download) hold no models.
                if !p.is_dir() || file_name(&p).starts_with('.') {
                    continue;
                }
                if has_weights(&p) {
                    found.push(p);
                } else {
                    next.push(p);
                }
            }
        }
        frontier = next;
    }
    found.sort();
    found
}
