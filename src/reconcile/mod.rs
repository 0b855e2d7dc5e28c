//! The declarative reconciler: a directory of DM task files is the desired state.
//!
//! The same cut as kube-runtime: [`desired`] loads the directory (and `reconcile.yaml`
//! policy), [`live`] reads the master (one query-status for every task, plus each task's
//! stored config), [`diff`] compares normalised configs field by field, [`plan`] is a pure
//! function from (desired, live) to a [`model::Plan`] — no I/O — [`apply`] is the only part
//! that changes the master, and [`watch`] runs it all as a level-triggered loop (notify +
//! interval + backoff) with `/metrics` and `/healthz`. `transitions.md` beside this file
//! documents which change needs which transition; the planner's tests keep the two in
//! agreement.

pub mod admin;
pub mod apply;
pub mod desired;
pub mod diff;
pub mod live;
pub mod model;
pub mod output;
pub mod plan;
pub mod watch;
