//! Typed errors. Every variant names the file it is about, and the tensor where
//! there is one, so that a binary can print it as the whole story.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading a model or writing results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model path given by the user does not exist.
    #[error("model path {path} does not exist")]
    ModelPathMissing { path: PathBuf },

    /// A directory without any `.safetensors` file.
    #[error("no .safetensors files in {dir}{hint}")]
    NoSafetensors { dir: PathBuf, hint: String },

    /// A directory that holds several models and no way to choose.
    #[error("{dir} holds several GGUF models ({found}): give the path of one")]
    SeveralModels { dir: PathBuf, found: String },

    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The shard index (`model.safetensors.index.json`) is unreadable or wrong.
    #[error("{path}: {reason}")]
    InvalidIndex { path: PathBuf, reason: String },

    /// The shard index names a shard file that is not there.
    #[error("{index}: shard {shard} (named in weight_map) does not exist")]
    MissingShard { index: PathBuf, shard: PathBuf },

    /// The shard index maps a tensor to a shard that does not hold it.
    #[error("{index}: tensor {tensor} is mapped to {shard}, which does not contain it")]
    TensorNotInShard {
        index: PathBuf,
        tensor: String,
        shard: PathBuf,
    },

    /// A `.safetensors` file whose header or layout is invalid.
    #[error("{path}: not a valid safetensors file: {reason}")]
    InvalidShard { path: PathBuf, reason: String },

    /// A `.gguf` file whose header or layout is invalid.
    #[error("{path}: not a valid GGUF file: {reason}")]
    InvalidGguf { path: PathBuf, reason: String },

    /// A header entry that is invalid on its own (bad offsets, size mismatch).
    #[error("{path}: tensor {tensor}: {reason}")]
    InvalidTensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },

    /// The same tensor name in two shards when no index says which one counts.
    #[error("tensor {tensor} is stored twice: in {first} and in {second}")]
    DuplicateTensor {
        tensor: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// A dtype tpa cannot turn into numbers (packed sub-byte floats, complex).
    #[error("{path}: tensor {tensor}: dtype {dtype} is not supported")]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },

    /// A PEFT adapter whose config is wrong, or does not fit its tensors.
    #[error("{path}: {reason}")]
    AdapterConfig { path: PathBuf, reason: String },

    /// Two tensors that are compared (base and model) differ in shape.
    #[error("tensor {tensor}: shapes differ: {reason}")]
    ShapeMismatch { tensor: String, reason: String },

    /// A tensor name that the model does not hold.
    #[error("tensor {tensor} is not in the model")]
    TensorNotFound { tensor: String },

    /// A quantization configuration that is wrong or does not fit the model.
    #[error("{path}: quantization: {reason}")]
    QuantizationConfig { path: PathBuf, reason: String },

    /// A quantized layout that tpa recognises but does not read. Its codes
    /// are never analysed as numbers by accident.
    #[error(
        "{path}: {layout} is a quantized layout tpa does not read yet \
         (--raw analyses the stored tensors as they are)"
    )]
    UnsupportedQuantization { path: PathBuf, layout: String },

    /// `config.json` is present but is not valid JSON.
    #[error("{path}: invalid JSON: {source}")]
    InvalidConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// Writing an output file failed; nothing was left at `path`.
    #[error("writing {path}: {reason}")]
    Output { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
