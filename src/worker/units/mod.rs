//! The processing units a subtask runs (DM's `unit.Unit`): Sync today; Dump and Load next.
//!
//! - [`sync`] — the Sync unit: binlog → downstream, with its checkpoint.

pub mod sync;
