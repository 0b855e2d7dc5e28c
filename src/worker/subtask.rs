//! One task on one source, on the worker: DM's subtask stage machine, and the runner of the
//! task mode's units ([`crate::worker::units`]).
//!
//! Stages: New → Running ⇄ (Pausing) Paused ⇄ (Resuming) Running; Stopping → Stopped (then
//! removed); Finished when the last unit ends by itself. This file is the only place stages
//! change. A unit error pauses the subtask with a ProcessError; retryable errors resume
//! automatically with exponential backoff unless the user paused the task (DM's
//! `isCanceled`). All methods are quick and never wait for a unit: stopping it is a signal
//! (a [`CancellationToken`]), and [`SubTask::reap`] (called by the worker's ticker) collects
//! the result. A run goes through the units from the one that was current (a resumed
//! `all` task does not dump again), each one `init` → `process` → `close`; a subtask's first
//! run starts at the last unit that has progress of its own (DM's `IsFreshTask` scan; until it
//! has chosen, the status says New in the first unit, as DM's subtask does during Init). Dump
//! and Load run side by side: the load takes each file as soon as the dump has written it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::error::{UnitError, code as ecode};
use super::units::{self, Factory, Shared, UnitCtx, UnitExit, UnitKind, UnitStatus};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::pb::{self, Stage};

/// DM's stage error codes.
pub mod code {
    /// ErrWorkerNotRunningStage.
    pub const NOT_RUNNING: i32 = 40050;
    /// ErrWorkerNotPausedStage.
    pub const NOT_PAUSED: i32 = 40051;
    /// ErrWorkerUpdateTaskStage.
    pub const UPDATE_NOT_PAUSED: i32 = 40052;
}

/// A refused stage change: DM's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[code={code}] {message}")]
pub struct StageError {
    pub code: i32,
    pub message: String,
}

/// First auto-resume delay; doubles up to [`AUTO_RESUME_MAX`].
pub const AUTO_RESUME_MIN: Duration = Duration::from_secs(1);
pub const AUTO_RESUME_MAX: Duration = Duration::from_secs(30);
/// How soon a run that ended to reopen its binlog source ([`UnitError::reopen`]) starts again.
pub const REOPEN_DELAY: Duration = Duration::from_millis(100);

/// The stage the master expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Running,
    Paused,
}

struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<Result<UnitExit, UnitError>>,
}

pub struct SubTask {
    pub name: String,
    pub source_id: String,
    pub worker: String,
    pub start_id: u64,
    pub config_rev: u64,
    pub stage_rev: u64,
    pub cfg: Arc<TaskConfig>,
    pub source: Arc<SourceConfig>,
    stage: Stage,
    pub result: Option<pb::ProcessResult>,
    kinds: Vec<UnitKind>,
    /// Index into `kinds` of the unit running (or to run next); [`UNDECIDED`] while a
    /// first run is still asking the units which one to start at.
    current: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    factory: Factory,
    reset_token: Option<String>,
    run: Option<Running>,
    backoff: Duration,
    resume_at: Option<Instant>,
    /// The worker's relay log (the Sync unit reads it when it holds the start).
    pub relay: crate::relay::Slot,
}

impl SubTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        worker: &str,
        source: Arc<SourceConfig>,
        cfg: Arc<TaskConfig>,
        start_id: u64,
        config_rev: u64,
        stage_rev: u64,
        remove_meta: bool,
        factory: Factory,
    ) -> SubTask {
        // An unknown task mode is caught by config checks before; run it as incremental's
        // units would fail loudly in init instead of silently doing nothing.
        let kinds = units::units_for(&cfg.task_mode).unwrap_or_else(|_| vec![UnitKind::Sync]);
        SubTask {
            name: name.to_string(),
            source_id: source.source_id.clone(),
            worker: worker.to_string(),
            start_id,
            config_rev,
            stage_rev,
            cfg,
            source,
            stage: Stage::New,
            result: None,
            kinds,
            current: Arc::new(AtomicUsize::new(0)),
            shared: Arc::new(Shared::default()),
            factory,
            reset_token: remove_meta.then(|| format!("start-{start_id}")),
            run: None,
            backoff: AUTO_RESUME_MIN,
            resume_at: None,
            relay: Default::default(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Starts (or restarts) the units from the current one. Caller checks the stage.
    fn start_run(&mut self) {
        let cancel = CancellationToken::new();
        let ctx = UnitCtx {
            task: self.cfg.clone(),
            source: self.source.clone(),
            worker: self.worker.clone(),
            reset_token: self.reset_token.clone(),
            relay: crate::relay::in_slot(&self.relay),
        };
        let span = tracing::info_span!("subtask", task = %self.name, source = %self.source_id, worker = %self.worker);
        let fut = run_units(
            ctx,
            self.kinds.clone(),
            self.current.clone(),
            self.factory.clone(),
            self.shared.clone(),
            cancel.clone(),
        );
        if self.kinds.len() > 1 && self.current.load(Ordering::Relaxed) == 0 {
            self.current.store(UNDECIDED, Ordering::Relaxed);
        }
        let handle = tokio::spawn(tracing::Instrument::instrument(fut, span));
        self.run = Some(Running { cancel, handle });
        self.stage = Stage::Running;
        self.result = None;
        self.resume_at = None;
        tracing::info!(task = %self.name, source = %self.source_id, "subtask units started");
    }

    pub fn is_alive(&self) -> bool {
        self.run.is_some()
    }

    /// Makes the subtask follow the master's expected stage. `user_asked`: the stage revision
    /// changed (a pause-task/resume-task), which also resumes a task paused by an error;
    /// `blocked`: an earlier run of the same name is still stopping, so nothing starts yet.
    pub fn follow(
        &mut self,
        expect: Expect,
        user_asked: bool,
        blocked: bool,
    ) -> Result<(), StageError> {
        match expect {
            Expect::Running => match self.stage {
                Stage::New if !blocked => {
                    self.start_run();
                    Ok(())
                }
                // A user pause is undone by the expected stage; an error pause only by a
                // resume-task (or the auto-resume timer).
                Stage::Paused
                    if !self.is_alive() && !blocked && (!self.paused_by_error() || user_asked) =>
                {
                    self.resume()
                }
                _ => Ok(()),
            },
            Expect::Paused => match self.stage {
                Stage::Running | Stage::Resuming => self.pause(),
                Stage::Paused if user_asked => self.pause(),
                // Created paused: never runs until resumed.
                Stage::New => {
                    self.stage = Stage::Paused;
                    Ok(())
                }
                _ => Ok(()),
            },
        }
    }

    /// Called by the ticker for a New subtask that waited for a retiring run of its name.
    pub fn start_if_new(&mut self) {
        if self.stage == Stage::New {
            self.start_run();
        }
    }

    /// Pause: Running → Pausing (→ Paused when the unit has flushed and ended). A subtask
    /// already paused by an error is marked canceled, so it does not auto-resume.
    pub fn pause(&mut self) -> Result<(), StageError> {
        match self.stage {
            Stage::Running | Stage::Resuming => {
                self.stage = Stage::Pausing;
                if let Some(r) = &self.run {
                    r.cancel.cancel();
                }
                Ok(())
            }
            Stage::Paused => {
                if let Some(res) = self.result.as_mut()
                    && !res.errors.is_empty()
                {
                    res.is_canceled = true;
                }
                self.resume_at = None;
                Ok(())
            }
            Stage::Pausing => Ok(()),
            s => Err(StageError {
                code: code::NOT_RUNNING,
                message: format!(
                    "current stage is {} but not running, invalid",
                    s.as_str_name()
                ),
            }),
        }
    }

    /// Resume: Paused → Resuming → Running (a fresh run from the checkpoint).
    pub fn resume(&mut self) -> Result<(), StageError> {
        match self.stage {
            Stage::Paused if self.run.is_none() => {
                self.backoff = AUTO_RESUME_MIN;
                self.start_run();
                Ok(())
            }
            Stage::New => {
                self.start_run();
                Ok(())
            }
            Stage::Running | Stage::Resuming => Ok(()),
            s => Err(StageError {
                code: code::NOT_PAUSED,
                message: format!(
                    "current stage is {} but not paused, invalid",
                    s.as_str_name()
                ),
            }),
        }
    }

    /// Stop: signal the units; the worker drops the subtask once [`SubTask::reap`] sees them end.
    pub fn stop(&mut self) {
        if self.run.is_none() {
            self.stage = Stage::Stopped;
            return;
        }
        self.stage = Stage::Stopping;
        if let Some(r) = &self.run {
            r.cancel.cancel();
        }
    }

    /// Replace the config of a Paused subtask (update-task); the next resume runs with it.
    pub fn update(&mut self, cfg: Arc<TaskConfig>, rev: u64) -> Result<(), StageError> {
        if self.stage != Stage::Paused && self.stage != Stage::New {
            return Err(StageError {
                code: code::UPDATE_NOT_PAUSED,
                message: format!(
                    "can only update task on Paused stage, but current stage is {}",
                    self.stage.as_str_name()
                ),
            });
        }
        self.cfg = cfg;
        self.config_rev = rev;
        Ok(())
    }

    /// Collects a finished run and moves the stage on; runs due auto-resumes.
    /// Returns true when the subtask is gone (stopped) and can be dropped.
    pub fn reap(&mut self) -> bool {
        self.reap_at(Instant::now())
    }

    /// [`SubTask::reap`] at a given time (tests drive the auto-resume clock).
    pub fn reap_at(&mut self, now: Instant) -> bool {
        self.take_ended_run(now);
        if self.stage == Stage::Paused
            && self.run.is_none()
            && let Some(at) = self.resume_at
            && now >= at
            && !self.result.as_ref().is_some_and(|r| r.is_canceled)
        {
            tracing::info!(task = %self.name, source = %self.source_id, "auto-resume");
            self.start_run();
        }
        self.stage == Stage::Stopped && self.run.is_none()
    }

    /// The stage a run that has ended leads to (Finished, Paused, …), without the rest of a
    /// reap (no auto-resume). Status reads call it, so a unit that has just finished shows
    /// Finished at once instead of at the worker's next tick.
    pub fn take_ended_run(&mut self, now: Instant) {
        if let Some(r) = &self.run
            && r.handle.is_finished()
            && let Some(r) = self.run.take()
        {
            let outcome = match futures_util::FutureExt::now_or_never(r.handle) {
                Some(Ok(res)) => res,
                Some(Err(join)) => Err(UnitError::new(
                    ecode::CRASHED,
                    "internal",
                    "a unit's task ended abnormally",
                )
                .cause(join)),
                None => Ok(UnitExit::Cancelled),
            };
            self.on_exit(outcome, now);
        }
    }

    /// The stage after a run ended.
    fn on_exit(&mut self, outcome: Result<UnitExit, UnitError>, now: Instant) {
        match outcome {
            Ok(exit) => {
                self.stage = match (self.stage, exit) {
                    (Stage::Stopping, _) => Stage::Stopped,
                    (Stage::Pausing, _) => Stage::Paused,
                    (_, UnitExit::Finished) => Stage::Finished,
                    (_, UnitExit::Cancelled) => Stage::Paused,
                };
            }
            Err(e) => {
                tracing::warn!(task = %self.name, source = %self.source_id, error = %e, "subtask paused by an error");
                let stopping = self.stage == Stage::Stopping;
                let user_paused = self.stage == Stage::Pausing;
                self.result = Some(pb::ProcessResult {
                    is_canceled: user_paused,
                    errors: vec![e.to_pb()],
                    detail: Vec::new(),
                });
                self.stage = if stopping {
                    Stage::Stopped
                } else {
                    Stage::Paused
                };
                if e.reopen && !user_paused && !stopping {
                    // Not a fault: the binlog source is opened again from the checkpoint.
                    self.resume_at = Some(now + REOPEN_DELAY);
                    tracing::info!(task = %self.name, "reading again from the checkpoint in {REOPEN_DELAY:?}");
                } else if e.retryable && !user_paused && !stopping {
                    self.resume_at = Some(now + self.backoff);
                    tracing::info!(task = %self.name, "auto-resume in {:?}", self.backoff);
                    self.backoff = (self.backoff * 2).min(AUTO_RESUME_MAX);
                }
            }
        }
    }

    /// Paused by an error (not by the user).
    /// What the Sync unit and the worker share about shard DDL locks.
    pub fn shard_sync(&self) -> Arc<crate::worker::units::sync::shard::ShardSync> {
        self.shared.shard_sync.clone()
    }

    /// The Sync unit's error operators (handle-error and friends).
    pub fn error_ops(&self) -> Arc<crate::worker::units::sync::ops::ErrorOps> {
        self.shared.error_ops.clone()
    }

    pub fn paused_by_error(&self) -> bool {
        self.stage == Stage::Paused && self.result.as_ref().is_some_and(|r| !r.errors.is_empty())
    }

    /// The current unit's kind (the first unit while the run has not chosen where to start).
    pub fn unit(&self) -> UnitKind {
        let i = match self.current.load(Ordering::Relaxed) {
            UNDECIDED => 0,
            i => i,
        };
        self.kinds
            .get(i)
            .or(self.kinds.last())
            .copied()
            .unwrap_or(UnitKind::Sync)
    }

    /// The current unit's status handle.
    pub fn unit_status(&self) -> Arc<dyn UnitStatus> {
        self.shared.status_of(self.unit())
    }

    pub fn status(&self) -> pb::SubTaskStatus {
        let mut status = self.unit_status().to_pb();
        let (groups, blocking, lock) = self.shared.shard_sync.status(&self.name);
        let lock = if blocking.is_empty() {
            String::new()
        } else {
            lock
        };
        if let pb::sub_task_status::Status::Sync(s) = &mut status {
            s.blocking_dd_ls = blocking;
            s.unresolved_groups = groups;
        }
        // As DM's subtask is New until its Init has chosen the unit to start at: a status
        // read in between would say Running in a unit the run is about to skip.
        let stage = match (self.stage, self.current.load(Ordering::Relaxed)) {
            (Stage::Running, UNDECIDED) => Stage::New,
            (stage, _) => stage,
        };
        pb::SubTaskStatus {
            name: self.name.clone(),
            stage: stage as i32,
            unit: self.unit().to_pb() as i32,
            result: self.result.clone(),
            unresolved_ddl_lock_id: lock,
            status: Some(status),
        }
    }
}

impl Drop for SubTask {
    fn drop(&mut self) {
        if let Some(r) = &self.run {
            r.cancel.cancel();
        }
    }
}

/// `SubTask::current` while a first run has not yet chosen the unit to start at.
const UNDECIDED: usize = usize::MAX;

/// One run: the units from the current one on, each init → process → close.
///
/// A run from the first unit first asks the later units, last first, whether they have
/// progress of their own ([`units::Unit::is_fresh`], DM's `IsFreshTask`): an `all` task whose
/// sync checkpoint exists starts at Sync, one whose load finished starts at Load (which then
/// finishes at once).
///
/// Dump followed by Load run side by side ([`run_dump_and_load`]): the load takes each chunk
/// as soon as the dump has written it.
async fn run_units(
    ctx: UnitCtx,
    kinds: Vec<UnitKind>,
    current: Arc<AtomicUsize>,
    factory: Factory,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Result<UnitExit, UnitError> {
    // start_run marks a first run of several units UNDECIDED.
    let mut from = current.load(Ordering::Relaxed);
    if from == UNDECIDED {
        from = 0;
        for i in (1..kinds.len()).rev() {
            let kind = kinds[i];
            let fresh = match factory(&ctx, kind, &shared) {
                Ok(mut unit) => {
                    let fresh = unit.is_fresh().await;
                    unit.close().await;
                    fresh
                }
                Err(e) => Err(e),
            };
            let fresh = fresh.map_err(|e| {
                current.store(0, Ordering::Relaxed);
                e.in_unit(kind)
            });
            if !fresh? {
                tracing::info!(
                    unit = kind.class(),
                    "the unit has progress of its own: the run starts there"
                );
                from = i;
                break;
            }
        }
        current.store(from, Ordering::Relaxed);
    }
    let mut i = from;
    while i < kinds.len() {
        let kind = kinds[i];
        current.store(i, Ordering::Relaxed);
        if kind == UnitKind::Dump && kinds.get(i + 1) == Some(&UnitKind::Load) {
            match run_dump_and_load(&ctx, &factory, &shared, &cancel, &current, i).await? {
                UnitExit::Finished => {
                    tracing::info!("dump and load finished");
                    i += 2;
                }
                UnitExit::Cancelled => return Ok(UnitExit::Cancelled),
            }
        } else {
            if kind == UnitKind::Load {
                // No dump runs beside it: the load reads the directory as it is.
                shared.feed.clear();
            }
            let mut unit = factory(&ctx, kind, &shared).map_err(|e| e.in_unit(kind))?;
            let r = match unit.init().await {
                Ok(()) => unit.process(cancel.clone()).await,
                Err(e) => Err(e),
            };
            unit.close().await;
            match r {
                Ok(UnitExit::Finished) => {
                    tracing::info!(unit = kind.class(), "unit finished");
                    i += 1;
                }
                Ok(UnitExit::Cancelled) => return Ok(UnitExit::Cancelled),
                Err(e) => return Err(e.in_unit(kind)),
            }
        }
        if i < kinds.len() {
            current.store(i, Ordering::Relaxed);
        }
        if cancel.is_cancelled() {
            return Ok(UnitExit::Cancelled);
        }
    }
    Ok(UnitExit::Finished)
}

/// Dump (at `i`) and Load (at `i + 1`) side by side, through `shared.feed`. The current unit
/// is Dump until the dump finishes, then Load. An error in either cancels the other and is
/// the run's error; a cancel ends both (each keeps its own progress).
async fn run_dump_and_load(
    ctx: &UnitCtx,
    factory: &Factory,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    current: &AtomicUsize,
    i: usize,
) -> Result<UnitExit, UnitError> {
    shared.feed.start_live();
    let mut dump = factory(ctx, UnitKind::Dump, shared).map_err(|e| e.in_unit(UnitKind::Dump))?;
    let mut load = match factory(ctx, UnitKind::Load, shared) {
        Ok(u) => u,
        Err(e) => {
            shared.feed.stop();
            return Err(e.in_unit(UnitKind::Load));
        }
    };
    let both = cancel.child_token();
    let init = async {
        dump.init().await.map_err(|e| e.in_unit(UnitKind::Dump))?;
        load.init().await.map_err(|e| e.in_unit(UnitKind::Load))
    }
    .await;
    let outcome = match init {
        Err(e) => Err(e),
        Ok(()) => {
            let d = async {
                let r = dump.process(both.clone()).await;
                match &r {
                    Ok(UnitExit::Finished) => {
                        tracing::info!(unit = UnitKind::Dump.class(), "unit finished");
                        current.store(i + 1, Ordering::Relaxed);
                    }
                    Ok(UnitExit::Cancelled) => shared.feed.stop(),
                    Err(_) => {
                        shared.feed.stop();
                        both.cancel();
                    }
                }
                r.map_err(|e| e.in_unit(UnitKind::Dump))
            };
            let l = async {
                let r = load.process(both.clone()).await;
                if r.is_err() {
                    both.cancel();
                }
                r.map_err(|e| e.in_unit(UnitKind::Load))
            };
            let (rd, rl) = tokio::join!(d, l);
            match (rd, rl) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(UnitExit::Finished), Ok(UnitExit::Finished)) => Ok(UnitExit::Finished),
                _ => Ok(UnitExit::Cancelled),
            }
        }
    };
    shared.feed.stop();
    dump.close().await;
    load.close().await;
    outcome
}

#[cfg(test)]
pub(crate) mod tests;
