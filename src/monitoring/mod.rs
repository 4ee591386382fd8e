//! Race-condition and lock monitoring: conflict statistics in shared memory.

pub mod stats;
