//! # tpa-core
//!
//! The library behind the `tpa-*` tools. Data flows through the modules in the
//! order they are listed:
//!
//! * [`model`]: opens a model directory, a `.safetensors` file or a GGUF
//!   file (or split set), memory-maps its shards and validates every header;
//! * [`tensors`]: typed, lazy views of single tensors that decode any stored
//!   dtype, quantized format or ggml type to `f64` a block at a time;
//! * [`analyses`]: what is computed per tensor (block classification, streaming
//!   statistics);
//! * [`records`]: one row per tensor, with a fixed, documented column order;
//! * [`writers`]: CSV, JSON and JSON Lines output, always written atomically.
//!
//! ```no_run
//! use tpa_core::model::Model;
//! use tpa_core::analyses::stats::{tensor_stats, StatsOptions};
//!
//! let model = Model::open("data/models/all-MiniLM-L6-v2")?;
//! for tensor in model.tensors() {
//!     let stats = tensor_stats(&tensor, &StatsOptions::default(), &|_| {})?;
//!     println!("{} {} mean={:?}", tensor.name(), tensor.dtype(), stats.mean);
//! }
//! # Ok::<(), tpa_core::Error>(())
//! ```

pub mod analyses;
pub mod error;
pub mod model;
pub mod records;
pub mod tensors;
pub mod writers;

pub use error::{Error, Result};
