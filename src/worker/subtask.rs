//! One task on one source, on the worker: DM's subtask stage machine.
//!
//! Stages: New → Running ⇄ (Pausing) Paused ⇄ (Resuming) Running; Stopping → removed;
//! Finished when the unit ends by itself. A unit error pauses the subtask with a
//! ProcessError; retryable errors resume automatically with exponential backoff unless the
//! user paused the task (DM's `isCanceled`). All methods are quick and never wait for the
//! unit: stopping it is a signal, and [`SubTask::reap`] (called by the worker's ticker)
//! collects the result. The incremental task's only unit is Sync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::UnitError;
use super::units::sync::{self, SyncStats, UnitCtx};
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

/// First auto-resume delay; doubles up to [`AUTO_RESUME_MAX`].
pub const AUTO_RESUME_MIN: Duration = Duration::from_secs(1);
pub const AUTO_RESUME_MAX: Duration = Duration::from_secs(30);

struct Running {
    cancel: watch::Sender<bool>,
    handle: JoinHandle<Result<(), UnitError>>,
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
    pub stage: Stage,
    pub result: Option<pb::ProcessResult>,
    pub stats: Arc<SyncStats>,
    remove_meta: bool,
    run: Option<Running>,
    backoff: Duration,
    resume_at: Option<Instant>,
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
    ) -> SubTask {
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
            stats: Arc::new(SyncStats::default()),
            remove_meta,
            run: None,
            backoff: AUTO_RESUME_MIN,
            resume_at: None,
        }
    }

    /// Starts (or restarts) the unit. Caller checks the stage.
    pub fn start_unit(&mut self) {
        let (tx, rx) = watch::channel(false);
        let ctx = UnitCtx {
            task: self.cfg.clone(),
            source: self.source.clone(),
            stats: self.stats.clone(),
            remove_meta: std::mem::take(&mut self.remove_meta),
            worker: self.worker.clone(),
        };
        let span = tracing::info_span!("subtask", task = %self.name, source = %self.source_id, worker = %self.worker);
        let handle = tokio::spawn(tracing::Instrument::instrument(sync::run(ctx, rx), span));
        self.run = Some(Running { cancel: tx, handle });
        self.stage = Stage::Running;
        self.result = None;
        self.resume_at = None;
        tracing::info!(task = %self.name, source = %self.source_id, "subtask unit started");
    }

    pub fn is_alive(&self) -> bool {
        self.run.is_some()
    }

    /// Pause: Running → Pausing (→ Paused when the unit has flushed and ended). A subtask
    /// already paused by an error is marked canceled, so it does not auto-resume.
    pub fn pause(&mut self) -> Result<(), (i32, String)> {
        match self.stage {
            Stage::Running => {
                self.stage = Stage::Pausing;
                if let Some(r) = &self.run {
                    let _ = r.cancel.send(true);
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
            s => Err((
                code::NOT_RUNNING,
                format!(
                    "current stage is {} but not running, invalid",
                    s.as_str_name()
                ),
            )),
        }
    }

    /// Resume: Paused → Resuming → Running (a fresh unit run from the checkpoint).
    pub fn resume(&mut self) -> Result<(), (i32, String)> {
        match self.stage {
            Stage::Paused if self.run.is_none() => {
                self.stage = Stage::Resuming;
                self.backoff = AUTO_RESUME_MIN;
                self.start_unit();
                Ok(())
            }
            Stage::New => {
                self.start_unit();
                Ok(())
            }
            Stage::Running | Stage::Resuming => Ok(()),
            s => Err((
                code::NOT_PAUSED,
                format!(
                    "current stage is {} but not paused, invalid",
                    s.as_str_name()
                ),
            )),
        }
    }

    /// Stop: signal the unit; the worker drops the subtask once [`SubTask::reap`] sees it end.
    pub fn stop(&mut self) {
        if matches!(self.stage, Stage::Stopped | Stage::Finished) && self.run.is_none() {
            self.stage = Stage::Stopped;
            return;
        }
        self.stage = Stage::Stopping;
        if let Some(r) = &self.run {
            let _ = r.cancel.send(true);
        }
    }

    /// Replace the config of a Paused subtask (update-task); the next resume runs with it.
    pub fn update(&mut self, cfg: Arc<TaskConfig>, rev: u64) -> Result<(), (i32, String)> {
        if self.stage != Stage::Paused && self.stage != Stage::New {
            return Err((
                code::UPDATE_NOT_PAUSED,
                format!(
                    "can only update task on Paused stage, but current stage is {}",
                    self.stage.as_str_name()
                ),
            ));
        }
        self.cfg = cfg;
        self.config_rev = rev;
        Ok(())
    }

    /// Collects a finished unit and moves the stage on; runs due auto-resumes.
    /// Returns true when the subtask is gone (stopped) and can be dropped.
    pub fn reap(&mut self) -> bool {
        if let Some(r) = &self.run
            && r.handle.is_finished()
        {
            let Some(r) = self.run.take() else {
                return false;
            };
            let outcome = match futures_util::FutureExt::now_or_never(r.handle) {
                Some(Ok(res)) => res,
                Some(Err(join)) => Err(UnitError::new(
                    super::error::code::UNIT_CONFIG,
                    "internal",
                    "sync unit crashed",
                )
                .cause(join)),
                None => Ok(()),
            };
            match outcome {
                Ok(()) => {
                    self.stage = match self.stage {
                        Stage::Pausing => Stage::Paused,
                        Stage::Stopping => Stage::Stopped,
                        _ => Stage::Finished,
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
                    if e.retryable && !user_paused && !stopping {
                        self.resume_at = Some(Instant::now() + self.backoff);
                        tracing::info!(task = %self.name, "auto-resume in {:?}", self.backoff);
                        self.backoff = (self.backoff * 2).min(AUTO_RESUME_MAX);
                    }
                }
            }
        }
        if self.stage == Stage::Paused
            && self.run.is_none()
            && let Some(at) = self.resume_at
            && Instant::now() >= at
            && !self.result.as_ref().is_some_and(|r| r.is_canceled)
        {
            tracing::info!(task = %self.name, source = %self.source_id, "auto-resume");
            self.stage = Stage::Resuming;
            self.start_unit();
        }
        self.stage == Stage::Stopped && self.run.is_none()
    }

    /// Paused by an error (not by the user).
    pub fn paused_by_error(&self) -> bool {
        self.stage == Stage::Paused && self.result.as_ref().is_some_and(|r| !r.errors.is_empty())
    }

    pub fn status(&self) -> pb::SubTaskStatus {
        pb::SubTaskStatus {
            name: self.name.clone(),
            stage: self.stage as i32,
            unit: pb::UnitType::Sync as i32,
            result: self.result.clone(),
            unresolved_ddl_lock_id: String::new(),
            status: Some(pb::sub_task_status::Status::Sync(self.stats.to_pb())),
        }
    }
}

impl Drop for SubTask {
    fn drop(&mut self) {
        if let Some(r) = &self.run {
            let _ = r.cancel.send(true);
        }
    }
}
