//! What tpa computes for each tensor.
//!
//! * [`classify`]: layer, expert and block type from the tensor's name;
//! * [`stats`]: exact streaming statistics over the stored values, and a
//!   [`digest`] of the stored bytes;
//! * [`spectrum`]: complete singular-value spectra and the metrics drawn from them;
//! * [`embedding`]: cluster structure of the token embeddings (k-means and its scores);
//! * [`runner`]: many matrices on a fixed number of threads under a memory budget.

pub mod classify;
pub mod diff;
pub mod digest;
pub mod embedding;
pub mod runner;
pub mod shard;
pub mod spectrum;
pub mod stats;
