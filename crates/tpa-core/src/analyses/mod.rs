//! What tpa computes for each tensor.
//!
//! * [`classify`]: layer, expert and block type from the tensor's name;
//! * [`stats`]: exact streaming statistics over the stored values;
//! * [`spectrum`]: complete singular-value spectra and the metrics drawn from them;
//! * [`runner`]: many matrices on a fixed number of threads under a memory budget.

pub mod classify;
pub mod runner;
pub mod spectrum;
pub mod stats;
