//! Why the master refuses or fails an operation. The texts are DM's where DM has one (with its
//! `[code=…]`), because dmctl users and scripts read them; the gRPC handlers put them in the
//! response's `msg` with `result: false`. None of them ever holds a password.

use super::store::StoreError;

/// An operation of the master that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// A task or source file that does not load (the config model's message, with position).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// `--start-time` in a format DM does not take (DM's "error while parse start-time").
    #[error("{0}")]
    StartTime(String),
    /// `--start-time` after the upstream's last event (DM's `ErrConfigStartTimeTooLate`).
    #[error(
        "[code=20057] start-time {0} is too late, no binlog location matches it. Please check the `--start-time` is expected or try again later."
    )]
    StartTimeTooLate(String),
    /// The upstream could not be read to place `--start-time`.
    #[error("start-time: cannot find the binlog position on source {source_id}: {why}")]
    StartTimeLookup { source_id: String, why: String },
    /// `--start-time` on a task that does not start from the binlog.
    #[error(
        "--start-time applies to task-mode incremental only: task {task} has task-mode {mode} (full reads no binlog, all starts where its dump ends)"
    )]
    StartTimeMode { task: String, mode: String },
    #[error("[code=46017] sources {sources:?} need to be operate not exist in task {task}")]
    SourcesNotInTask { sources: Vec<String>, task: String },
    #[error("[code=46017] sources {0:?} need to be operate not exist")]
    SourcesNotInOperation(Vec<String>),
    #[error(
        "[code=20031] source {0} in deployment configuration not found: create it first with `operate-source create <source.yaml>`"
    )]
    SourcesNotCreated(String),
    #[error(
        "[code=46009] sources {sources:?} have not bound: no free dm-worker is online (start one with `dm-worker --join {master}`, or check `list-member`)"
    )]
    SourcesUnbound {
        sources: Vec<String>,
        master: String,
    },
    #[error("[code=46014] subtasks with name {task} for sources {sources:?} already exist")]
    SubtasksExist { task: String, sources: Vec<String> },
    /// Keys dm-rs parses but cannot run yet (`TaskConfig::unsupported`), one per line.
    #[error("{0}")]
    Unsupported(String),
    /// The precheck's report (DM's JSON form).
    #[error("{0}")]
    PrecheckFailed(String),
    #[error(
        "task {task} already runs on {sources:?} with a different config (changed: {changed}); update or stop it before adding sources"
    )]
    RunsWithDifferentConfig {
        task: String,
        sources: Vec<String>,
        changed: String,
    },
    #[error("sources [{}] haven't been added", .0.join(" "))]
    SourcesNotAdded(Vec<String>),
    #[error("task {0} has no source or not exist, please check the task name and status")]
    TaskNotFound(String),
    #[error("[code=38041] invalid op {op} on {task}")]
    InvalidOp { op: String, task: String },
    #[error(
        "update-task cannot add or remove sources (mysql-instances) of task {0}: use `start-task -s SOURCE` / `stop-task -s SOURCE`"
    )]
    UpdateChangesSources(String),
    #[error(
        "update-task can only change routes, filters, column-mappings, block-allow-list and expression-filter (and the instances' rule lists); task {task} also changes: {changed}. Apply that with `stop-task` then `start-task` (the checkpoint is kept)"
    )]
    NotUpdatable { task: String, changed: String },
    #[error("[code=38032] task {0} not found")]
    TaskConfigNotFound(String),
    #[error("task {task} does not load: {why}")]
    TaskDoesNotLoad { task: String, why: String },
    #[error("source {0} not found")]
    SourceConfigNotFound(String),
    #[error("source {source_id} does not load: {why}")]
    SourceDoesNotLoad { source_id: String, why: String },
    #[error("task {0} disappeared")]
    TaskDisappeared(String),
    #[error("source {0} is not bound to any worker")]
    SourceUnbound(String),
    #[error("worker {worker} of source {source_id} does not answer")]
    WorkerSilent { worker: String, source_id: String },
    #[error("operate-source create needs at least one source config file")]
    NoSourceConfig,
    #[error("[code=46004] source config with ID {0} already exists")]
    SourceExists(String),
    /// operate-source create / update could not reach the source's upstream (DM's message).
    #[error("{0}")]
    Upstream(String),
    #[error("source {0} does not exist")]
    SourceMissing(String),
    #[error("[code=46008] source config with ID {0} not exists")]
    SourceNotExist(String),
    #[error(
        "source {source_id} is used by task(s) {tasks:?}: stop them before updating the source"
    )]
    SourceUsedByTasks {
        source_id: String,
        tasks: Vec<String>,
    },
    #[error(
        "source {source_id} is still used by task(s) {tasks:?}: stop them first with `stop-task`"
    )]
    SourceStillUsed {
        source_id: String,
        tasks: Vec<String>,
    },
    /// `operate-source create -w WORKER` with more than one file.
    #[error(
        "operate-source create with a worker name takes exactly one source config file, got {0}"
    )]
    WorkerNameNeedsOneSource(usize),
    #[error("operate-source: a worker name applies only to create, not to {0}")]
    WorkerNameOnlyOnCreate(&'static str),
    /// operate-source create -w / transfer-source: no worker of that name.
    #[error("[code=46004] dm-worker with name {0} not exists (see `list-member --worker`)")]
    WorkerNameNotExist(String),
    /// operate-source create -w: the worker is bound or offline.
    #[error("[code=46033] dm-worker with name {worker} not free: {why}")]
    WorkerNotFree { worker: String, why: String },
    /// transfer-source to a worker that is bound or offline (DM's stage names).
    #[error(
        "[code=46006] invalid stage transformation for dm-worker {worker}, from {from} to {to}"
    )]
    WorkerInvalidTrans {
        worker: String,
        from: &'static str,
        to: &'static str,
    },
    /// transfer-source while running subtasks of the source are not in the Sync unit.
    #[error(
        "[code=46019] running tasks [{}] to be transferred on source {source_id} should in sync unit: their dump files stay with the current worker; wait until they reach Sync, or pause them first (`pause-task -s {source_id} TASK`)",
        tasks.join(" ")
    )]
    RunningNotInSync {
        source_id: String,
        tasks: Vec<String>,
    },
    /// transfer-source: the running subtasks did not pause on the current worker in time.
    #[error(
        "[code=46032] failed to auto pause tasks [{}] when transfer-source: {why}; pause them with `dmctl pause-task` and transfer again",
        tasks.join(" ")
    )]
    PauseForTransfer { tasks: Vec<String>, why: String },
    /// transfer-source: the status of the source's worker is needed and it does not answer.
    #[error("failed to query worker: {worker} status err: {why}")]
    QueryWorkerForTransfer { worker: String, why: String },
    #[error("dm-rs runs a single master; cannot offline {kind} {name}")]
    OfflineNotWorker { kind: String, name: String },
    #[error("[code=38032] dm-worker with name {0} not exists")]
    WorkerNotExists(String),
    #[error("dm-worker {0} is still online: stop the process first")]
    WorkerStillOnline(String),
    #[error("worker name {0} is taken by the master's own worker")]
    WorkerNameTaken(String),
    /// A worker registered with an address that is not `host:port` or a URL.
    #[error("worker address: {0}")]
    WorkerAddress(#[from] crate::rpc::RpcError),
    #[error("{0}")]
    Store(#[from] StoreError),
}
