//! Scripted units for the stage-machine and fencing tests: each `process` of a unit takes the
//! next [`Script`] from a shared queue (run until cancelled when the queue is empty).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Factory, Unit, UnitExit, UnitKind, UnitStatus};
use crate::config::task::TaskConfig;
use crate::worker::error::UnitError;

/// What one run of a scripted unit does.
#[derive(Clone)]
pub enum Script {
    /// Works until cancelled.
    UntilCancel,
    /// Fails in `process` with this error.
    Fail(UnitError),
    /// Finishes by itself.
    Finish,
}

/// The shared script and counters of a scripted factory.
#[derive(Default)]
pub struct Scripted {
    pub queue: Mutex<VecDeque<Script>>,
    /// Runs started (units whose `process` began), per kind in order.
    pub started: Mutex<Vec<UnitKind>>,
    pub closed: AtomicUsize,
    /// Kinds whose `is_fresh` answers false (default: every unit is fresh).
    pub not_fresh: Mutex<Vec<UnitKind>>,
    /// When set, `is_fresh` answers only after this gate is opened (a slow checkpoint read).
    pub fresh_gate: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl Scripted {
    pub fn push(&self, s: Script) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(s);
    }
    pub fn started(&self) -> Vec<UnitKind> {
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

struct ScriptedUnit {
    kind: UnitKind,
    shared: Arc<Scripted>,
}

impl Unit for ScriptedUnit {
    fn kind(&self) -> UnitKind {
        self.kind
    }
    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>> {
        Box::pin(async { Ok(()) })
    }
    fn process(&mut self, cancel: CancellationToken) -> BoxFuture<'_, Result<UnitExit, UnitError>> {
        Box::pin(async move {
            self.shared
                .started
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.kind);
            let script = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
                .unwrap_or(Script::UntilCancel);
            match script {
                Script::UntilCancel => {
                    cancel.cancelled().await;
                    Ok(UnitExit::Cancelled)
                }
                Script::Fail(e) => Err(e),
                Script::Finish => Ok(UnitExit::Finished),
            }
        })
    }
    fn status(&self) -> Arc<dyn UnitStatus> {
        Arc::new(crate::worker::units::sync::SyncStats::default())
    }
    fn update(&mut self, _task: Arc<TaskConfig>) -> Result<(), UnitError> {
        Ok(())
    }
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.closed.fetch_add(1, Ordering::SeqCst);
        })
    }
    fn is_fresh(&mut self) -> BoxFuture<'_, Result<bool, UnitError>> {
        let fresh = !self
            .shared
            .not_fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&self.kind);
        let gate = self
            .shared
            .fresh_gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.notified().await;
            }
            Ok(fresh)
        })
    }
}

/// A factory whose units follow `shared`'s script (each `process` takes the next script).
pub fn scripted(shared: Arc<Scripted>) -> Factory {
    Arc::new(move |_ctx, kind, _s| {
        Ok(Box::new(ScriptedUnit {
            kind,
            shared: shared.clone(),
        }) as Box<dyn Unit>)
    })
}
