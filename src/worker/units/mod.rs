//! The processing units a subtask runs, behind one trait (DM's `unit.Unit`).
//!
//! A unit is created for one run of its subtask (a start, a resume, an auto-resume):
//! [`Unit::init`] connects and loads its checkpoint, [`Unit::process`] works until it is
//! finished or cancelled, [`Unit::close`] releases what it holds. Pause is "cancel, then a new
//! run from the checkpoint later". [`Unit::status`] is readable at any time through the
//! shared [`UnitStatus`] handle the unit hands out, which outlives the run (query-status shows
//! the last figures of a paused task). [`Unit::update`] takes the online-updatable rules of a
//! new task config.
//!
//! The task mode names the units, in order ([`units_for`]): incremental → Sync; full → Dump,
//! Load; all → Dump, Load, Sync. The subtask ([`crate::worker::subtask`]) runs them in that
//! order and is the only place stages change; units never touch stages.
//!
//! - [`dump`] — the Dump unit: a consistent snapshot of the upstream into files.
//! - [`load`] — the Load unit: dump files → downstream, with its checkpoint.
//! - [`full`] — what Dump and Load share (file names, `metadata`, the dump → load feed).
//! - [`sync`] — the Sync unit: the binlog → downstream, with its checkpoint.

pub mod bufpool;
pub mod dump;
pub mod full;
pub mod load;
pub mod sync;
#[cfg(test)]
pub(crate) mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::error::{UnitError, code};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::pb;

/// A boxed future, as the unit methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The kinds of unit (DM's `pb.UnitType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Dump,
    Load,
    Sync,
}

impl UnitKind {
    /// DM's error class of the unit.
    pub fn class(self) -> &'static str {
        match self {
            UnitKind::Dump => "dump-unit",
            UnitKind::Load => "load-unit",
            UnitKind::Sync => "sync-unit",
        }
    }

    /// The wire unit type.
    pub fn to_pb(self) -> pb::UnitType {
        match self {
            UnitKind::Dump => pb::UnitType::Dump,
            UnitKind::Load => pb::UnitType::Load,
            UnitKind::Sync => pb::UnitType::Sync,
        }
    }
}

/// How [`Unit::process`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitExit {
    /// The unit's work is done (a dump or load finished); the next unit starts.
    Finished,
    /// Cancelled (pause, stop, fence) after saving its checkpoint.
    Cancelled,
}

/// A unit's live status, shared with the subtask for query-status.
pub trait UnitStatus: Send + Sync {
    /// The status as query-status shows it.
    fn to_pb(&self) -> pb::sub_task_status::Status;
    /// True once the unit knows its positions (after `init`); query-status waits a moment
    /// for this so it never shows an empty position.
    fn ready(&self) -> bool;
    /// Resolves when [`UnitStatus::ready`] turns true (or never).
    fn wait_ready(&self) -> BoxFuture<'_, ()>;
}

/// One processing unit (DM's `unit.Unit`).
pub trait Unit: Send {
    fn kind(&self) -> UnitKind;
    /// Connects, claims the source and loads the checkpoint.
    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>>;
    /// Works until finished or `cancel` fires (then saves its checkpoint and returns
    /// [`UnitExit::Cancelled`]), or an error stops it.
    fn process(&mut self, cancel: CancellationToken) -> BoxFuture<'_, Result<UnitExit, UnitError>>;
    /// The live status handle.
    fn status(&self) -> Arc<dyn UnitStatus>;
    /// Takes the online-updatable rules (routes, filters, block-allow-list…) of a new config.
    fn update(&mut self, task: Arc<TaskConfig>) -> Result<(), UnitError>;
    /// Releases connections; called after `process` returns, whatever it returned.
    fn close(&mut self) -> BoxFuture<'_, ()>;
    /// False when the unit has progress of its own to continue from (DM's `IsFreshTask`):
    /// a subtask's first run starts at the last unit that is not fresh. Called before `init`.
    fn is_fresh(&mut self) -> BoxFuture<'_, Result<bool, UnitError>> {
        Box::pin(async { Ok(true) })
    }
}

/// What a unit is built from.
#[derive(Clone)]
pub struct UnitCtx {
    pub task: Arc<TaskConfig>,
    pub source: Arc<SourceConfig>,
    /// The worker's name (recorded with the owner epoch).
    pub worker: String,
    /// A `--remove-meta` start: the token that makes the reset happen once
    /// (`<start id>` of the start-task that asked for it).
    pub reset_token: Option<String>,
    /// The source's relay log on this worker, when it is on.
    pub relay: Option<std::sync::Arc<crate::relay::Relay>>,
}

/// The unit kinds of a task mode, in run order.
pub fn units_for(task_mode: &str) -> Result<Vec<UnitKind>, UnitError> {
    match task_mode {
        "incremental" => Ok(vec![UnitKind::Sync]),
        "full" => Ok(vec![UnitKind::Dump, UnitKind::Load]),
        "all" => Ok(vec![UnitKind::Dump, UnitKind::Load, UnitKind::Sync]),
        other => Err(UnitError::new(
            code::UNIT_CONFIG,
            "internal",
            format!("task-mode {other:?} is not one of full, incremental, all"),
        )),
    }
}

/// Builds the units of one kind list (the production factory).
pub type Factory =
    Arc<dyn Fn(&UnitCtx, UnitKind, &Shared) -> Result<Box<dyn Unit>, UnitError> + Send + Sync>;

/// Per-subtask state the units of successive runs share (their status handles).
#[derive(Default)]
pub struct Shared {
    pub sync_stats: Arc<sync::stats::SyncStats>,
    pub dump_stats: Arc<dump::DumpStats>,
    pub load_stats: Arc<load::LoadStats>,
    /// The dump → load hand-over while both run side by side.
    pub feed: full::Feed,
    /// The Sync unit's error operators (handle-error, binlog, sql-*), kept across runs.
    pub error_ops: Arc<sync::ops::ErrorOps>,
    /// Pessimistic shard DDL: the Sync unit's synced rounds and the master's ops.
    pub shard_sync: Arc<sync::shard::ShardSync>,
}

impl Shared {
    /// The status handle of a unit kind.
    pub fn status_of(&self, kind: UnitKind) -> Arc<dyn UnitStatus> {
        match kind {
            UnitKind::Sync => self.sync_stats.clone(),
            UnitKind::Dump => self.dump_stats.clone(),
            UnitKind::Load => self.load_stats.clone(),
        }
    }
}

/// The real units.
pub fn real_factory() -> Factory {
    Arc::new(|ctx, kind, shared| match kind {
        UnitKind::Sync => Ok(Box::new(sync::SyncUnit::new(
            ctx.clone(),
            shared.sync_stats.clone(),
            shared.error_ops.clone(),
            shared.shard_sync.clone(),
        )) as Box<dyn Unit>),
        UnitKind::Dump => Ok(Box::new(dump::DumpUnit::new(ctx.clone(), shared)) as Box<dyn Unit>),
        UnitKind::Load => Ok(Box::new(load::LoadUnit::new(ctx.clone(), shared)) as Box<dyn Unit>),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_modes_name_their_units_in_order() {
        use UnitKind::*;
        let cases: [(&str, Option<Vec<UnitKind>>); 4] = [
            ("incremental", Some(vec![Sync])),
            ("full", Some(vec![Dump, Load])),
            ("all", Some(vec![Dump, Load, Sync])),
            ("fast", None),
        ];
        for (mode, want) in cases {
            assert_eq!(units_for(mode).ok(), want, "{mode}");
        }
    }
}
