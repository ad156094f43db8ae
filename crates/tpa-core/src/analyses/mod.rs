//! What tpa computes for each tensor.
//!
//! * [`classify`]: layer, expert and block type from the tensor's name;
//! * [`stats`]: exact streaming statistics over the stored values.

pub mod classify;
pub mod stats;
