//! The Load unit (skeleton: filled in by issue 9's work).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::task::TaskConfig;
use crate::pb;
use crate::worker::error::{UnitError, code};
use crate::worker::units::{BoxFuture, Shared, Unit, UnitCtx, UnitExit, UnitKind, UnitStatus};

/// The Load unit's live figures (query-status' `load` object).
#[derive(Default)]
pub struct LoadStats {}

impl UnitStatus for LoadStats {
    fn to_pb(&self) -> pb::sub_task_status::Status {
        pb::sub_task_status::Status::Load(pb::LoadStatus::default())
    }
    fn ready(&self) -> bool {
        true
    }
    fn wait_ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The Load unit of one subtask run.
pub struct LoadUnit {
    ctx: UnitCtx,
    stats: Arc<LoadStats>,
}

impl LoadUnit {
    pub fn new(ctx: UnitCtx, shared: &Shared) -> LoadUnit {
        LoadUnit {
            ctx,
            stats: shared.load_stats.clone(),
        }
    }
}

impl Unit for LoadUnit {
    fn kind(&self) -> UnitKind {
        UnitKind::Load
    }
    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>> {
        Box::pin(async move {
            Err(UnitError::new(
                code::UNIT_CONFIG,
                "internal",
                format!(
                    "the load unit of task {} is not implemented yet",
                    self.ctx.task.name
                ),
            ))
        })
    }
    fn process(
        &mut self,
        _cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<UnitExit, UnitError>> {
        Box::pin(async move { Ok(UnitExit::Cancelled) })
    }
    fn status(&self) -> Arc<dyn UnitStatus> {
        self.stats.clone()
    }
    fn update(&mut self, task: Arc<TaskConfig>) -> Result<(), UnitError> {
        self.ctx.task = task;
        Ok(())
    }
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
