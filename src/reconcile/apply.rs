//! Apply: runs a [`Plan`] against the master — the only part of the reconciler that changes it.
//!
//! Called by dmctl `apply` (a fresh plan, or a saved one through [`apply_saved`], which first
//! re-reads the live state and refuses every task that changed since the plan was made) and by
//! [`super::watch`] every round. Source steps run first, then each task's steps in order; after
//! each step it polls query-status until the task reaches the expected stage (Start/Resume →
//! Running, Pause → Paused, Stop → gone, Update → still Paused). Tasks are isolated: a failed
//! step ends only its own task's steps, and an `update-task` that fails after this plan's
//! `pause-task` resumes the task on its old config. It never retries (the loop's backoff does),
//! never prints, and never sends anything but the plan's sealed YAML (no plaintext password).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::live::{self, LiveError, MasterConn};
use super::model::{ChangeClass, FileError, LiveState, Plan, Step, TaskPlan};
use super::output;
use crate::pb;

/// How long a step may take to reach its stage when `--timeout` is not given.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the stage is polled while waiting.
pub const POLL: Duration = Duration::from_millis(250);
/// How many tasks are applied at once.
pub const DEFAULT_PARALLELISM: usize = 4;

/// Cancels in-flight waits (a newer desired state pre-empts the round).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    flag: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// Resolves once [`CancelToken::cancel`] was called.
    pub async fn cancelled(&self) {
        loop {
            let n = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long each step may take to reach its stage.
    pub step_timeout: Duration,
    /// Timeout of each RPC.
    pub rpc_timeout: Duration,
    pub cancel: CancelToken,
    /// Tasks not to touch this time, with the reason (the loop's backoff).
    pub skip: BTreeMap<String, String>,
    pub parallelism: usize,
    /// Safe point before a stop: wait until every Sync subtask is at most this far behind
    /// (reconcile.yaml `max-lag-before-stop`); None: stop at once.
    pub max_lag: Option<Duration>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            step_timeout: DEFAULT_STEP_TIMEOUT,
            rpc_timeout: Duration::from_secs(60),
            cancel: CancelToken::default(),
            skip: BTreeMap::new(),
            parallelism: DEFAULT_PARALLELISM,
            max_lag: None,
        }
    }
}

/// What happened to a task (or a source step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step ran and reached its stage.
    Ok,
    /// Nothing to do.
    Unchanged,
    /// A step failed; the task's later steps did not run.
    Failed,
    /// The plan refused the change (or the saved plan is stale).
    Refused,
    /// Not attempted: in backoff, or pre-empted by a newer desired state.
    Skipped,
}

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step as a command line (no YAML).
    pub step: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What happened to one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: String,
    pub class: ChangeClass,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub steps: Vec<StepResult>,
}

/// What happened to one source step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceResult {
    pub source: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The result of an apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Set when nothing could be done (master unreachable): no step ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sources: Vec<SourceResult>,
    pub tasks: Vec<TaskResult>,
    /// The files that could not be used (their tasks were left alone).
    pub errors: Vec<FileError>,
}

impl ApplyReport {
    /// Whether everything was applied: no error, failure, refusal or invalid file.
    pub fn success(&self) -> bool {
        let fine = |o: Outcome| matches!(o, Outcome::Ok | Outcome::Unchanged | Outcome::Skipped);
        self.error.is_none()
            && self.errors.is_empty()
            && self.sources.iter().all(|s| fine(s.outcome))
            && self.tasks.iter().all(|t| fine(t.outcome))
    }

    /// How many tasks ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.tasks.iter().filter(|t| t.outcome == outcome).count()
    }

    fn failed(error: String, errors: Vec<FileError>) -> ApplyReport {
        ApplyReport {
            error: Some(error),
            errors,
            ..Default::default()
        }
    }
}

/// Connects to the master and applies `plan`. Master unreachable → a report with `error` set
/// and nothing done.
pub async fn apply(plan: &Plan, addr: &str, opts: &ApplyOptions) -> ApplyReport {
    match MasterConn::connect(addr, opts.rpc_timeout).await {
        Ok(conn) => apply_with(&conn, plan, opts).await,
        Err(e) => ApplyReport::failed(e.to_string(), plan.errors.clone()),
    }
}

/// Applies a saved plan: re-reads the live state first and refuses every task whose live state
/// changed since the plan was made (and every source step whose source exists now).
pub async fn apply_saved(plan: &Plan, addr: &str, opts: &ApplyOptions) -> ApplyReport {
    let conn = match MasterConn::connect(addr, opts.rpc_timeout).await {
        Ok(c) => c,
        Err(e) => return ApplyReport::failed(e.to_string(), plan.errors.clone()),
    };
    // No directory here: passwords are not compared, only the digests are checked.
    let live = match live::fetch_with(&conn, &live::Passwords::new()).await {
        Ok(f) => f.state,
        Err(e) => return ApplyReport::failed(e.to_string(), plan.errors.clone()),
    };
    let mut plan = plan.clone();
    let stale_sources = mark_stale(&mut plan, &live);
    let mut report = apply_with(&conn, &plan, opts).await;
    for s in &mut report.sources {
        if let Some(why) = stale_sources.get(&s.source) {
            s.outcome = Outcome::Refused;
            s.message = Some(why.clone());
        }
    }
    report
}

/// The message of a stale task.
pub fn stale_message(task: &str) -> String {
    format!("saved plan is stale: task {task} changed since the plan was made; run plan again")
}

/// Marks every task whose live digest changed as refused (its steps will not run) and drops
/// the source steps whose source exists now; returns those sources with the reason.
pub fn mark_stale(plan: &mut Plan, live: &LiveState) -> BTreeMap<String, String> {
    for t in &mut plan.tasks {
        if t.refused.is_none() && live.task_digest(&t.task) != t.live_digest {
            t.refused = Some(stale_message(&t.task));
        }
    }
    let mut stale = BTreeMap::new();
    for s in &plan.sources {
        if let Step::CreateSource { source, .. } = s
            && live.sources.contains(source)
        {
            stale.insert(
                source.clone(),
                format!("saved plan is stale: source {source} exists now; run plan again"),
            );
        }
    }
    stale
}

/// Applies `plan` over an open connection.
pub async fn apply_with(conn: &MasterConn, plan: &Plan, opts: &ApplyOptions) -> ApplyReport {
    let mut report = ApplyReport {
        errors: plan.errors.clone(),
        ..Default::default()
    };
    for step in &plan.sources {
        let source = match step {
            Step::CreateSource { source, .. }
            | Step::UpdateSource { source, .. }
            | Step::StartRelay { source }
            | Step::StopRelay { source } => source,
            _ => continue,
        };
        let (outcome, message) = if opts.cancel.is_cancelled() {
            (Outcome::Skipped, Some(PREEMPTED.to_string()))
        } else {
            match run_step(conn, step, opts).await {
                Ok(()) => (Outcome::Ok, None),
                Err(StepError::Cancelled) => (Outcome::Skipped, Some(PREEMPTED.to_string())),
                Err(StepError::Failed(m)) => (Outcome::Failed, Some(m)),
            }
        };
        tracing::info!(source = %source, step = %crate::reconcile::output::describe(step), ?outcome, "source step");
        report.sources.push(SourceResult {
            source: source.clone(),
            outcome,
            message,
        });
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.parallelism.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, tp) in plan.tasks.iter().enumerate() {
        let (conn, tp, opts, sem) = (conn.clone(), tp.clone(), opts.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, run_task(&conn, &tp, &opts).await)
        });
    }
    let mut results: Vec<(usize, TaskResult)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!("an apply task ended abnormally: {e}"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    report.tasks = results.into_iter().map(|(_, r)| r).collect();
    report
}

const PREEMPTED: &str = "pre-empted by a newer desired state";

#[derive(Debug)]
enum StepError {
    Failed(String),
    Cancelled,
}

impl From<LiveError> for StepError {
    fn from(e: LiveError) -> Self {
        StepError::Failed(e.to_string())
    }
}

async fn run_task(conn: &MasterConn, tp: &TaskPlan, opts: &ApplyOptions) -> TaskResult {
    let mut result = TaskResult {
        task: tp.task.clone(),
        class: tp.class,
        outcome: Outcome::Unchanged,
        message: None,
        steps: Vec::new(),
    };
    if let Some(why) = &tp.refused {
        result.outcome = Outcome::Refused;
        result.message = Some(why.clone());
        return result;
    }
    if tp.steps.is_empty() {
        return result;
    }
    if let Some(why) = opts.skip.get(&tp.task) {
        result.outcome = Outcome::Skipped;
        result.message = Some(why.clone());
        return result;
    }
    let span = tracing::info_span!("apply", task = %tp.task);
    let _enter = span.enter();
    // Sources paused by this plan and not resumed yet (for the update-task rollback).
    let mut paused: Option<Vec<String>> = None;
    let mut skip_next = false;
    for (i, step) in tp.steps.iter().enumerate() {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let line = output::describe(step);
        if opts.cancel.is_cancelled() {
            result.outcome = Outcome::Skipped;
            result.message = Some(PREEMPTED.into());
            return result;
        }
        // start-task followed by pause-task of the same sources: create the subtasks Paused
        // at once (`start-task --paused`), so they never open a connection.
        let start_paused = matches!(
            (step, tp.steps.get(i + 1)),
            (Step::StartTask { task, sources, .. }, Some(Step::PauseTask { task: t2, sources: s2 }))
                if task == t2 && sources == s2
        );
        match run_step_with(conn, step, opts, start_paused).await {
            Ok(()) => {
                tracing::info!(step = %line, "step done");
                result.steps.push(StepResult {
                    step: line,
                    ok: true,
                    message: None,
                });
                if start_paused && let Some(next) = tp.steps.get(i + 1) {
                    result.steps.push(StepResult {
                        step: output::describe(next),
                        ok: true,
                        message: Some("created paused by start-task --paused".into()),
                    });
                    paused = match next {
                        Step::PauseTask { sources, .. } => Some(sources.clone()),
                        _ => paused,
                    };
                    skip_next = true;
                    continue;
                }
                match step {
                    Step::PauseTask { sources, .. } => paused = Some(sources.clone()),
                    Step::ResumeTask { .. } | Step::StopTask { .. } => paused = None,
                    _ => {}
                }
            }
            Err(StepError::Cancelled) => {
                result.outcome = Outcome::Skipped;
                result.message = Some(PREEMPTED.into());
                return result;
            }
            Err(StepError::Failed(msg)) => {
                tracing::warn!(step = %line, error = %msg, "step failed");
                result.steps.push(StepResult {
                    step: line,
                    ok: false,
                    message: Some(msg.clone()),
                });
                result.outcome = Outcome::Failed;
                result.message = Some(match (step, paused) {
                    (Step::UpdateTask { .. }, Some(sources)) => {
                        rollback(conn, &tp.task, sources, opts, &msg, &mut result.steps).await
                    }
                    _ => msg,
                });
                return result;
            }
        }
    }
    result.outcome = Outcome::Ok;
    result
}

/// Resumes a task whose update-task failed after this plan paused it.
async fn rollback(
    conn: &MasterConn,
    task: &str,
    sources: Vec<String>,
    opts: &ApplyOptions,
    why: &str,
    steps: &mut Vec<StepResult>,
) -> String {
    let step = Step::ResumeTask {
        task: task.to_string(),
        sources,
    };
    // The rollback runs even when the round is pre-empted: never leave a task paused by us.
    let opts = ApplyOptions {
        cancel: CancelToken::default(),
        ..opts.clone()
    };
    let r = run_step(conn, &step, &opts).await;
    let line = output::describe(&step);
    match r {
        Ok(()) => {
            steps.push(StepResult {
                step: line,
                ok: true,
                message: None,
            });
            format!("update-task failed: {why}; resumed on the previous config")
        }
        Err(e) => {
            let m = match e {
                StepError::Failed(m) => m,
                StepError::Cancelled => PREEMPTED.into(),
            };
            steps.push(StepResult {
                step: line,
                ok: false,
                message: Some(m.clone()),
            });
            format!("update-task failed: {why}; resuming it on the previous config failed too: {m}")
        }
    }
}

/// What a step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Running,
    Paused,
    Gone,
}

impl Expect {
    fn word(self) -> &'static str {
        match self {
            Expect::Running => "Running",
            Expect::Paused => "Paused",
            Expect::Gone => "stopped",
        }
    }
}

/// The master's answer to a step: Ok when it succeeded, or when it only timed out waiting for
/// the stage (we keep waiting, longer); the master's message otherwise.
fn check_answer(
    result: bool,
    msg: &str,
    sources: &[pb::CommonWorkerResponse],
) -> Result<(), String> {
    if result {
        return Ok(());
    }
    let failed: Vec<&pb::CommonWorkerResponse> = sources.iter().filter(|s| !s.result).collect();
    if msg.is_empty()
        && !failed.is_empty()
        && failed.iter().all(|s| s.msg.starts_with("subtask is "))
    {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !msg.is_empty() {
        parts.push(msg.to_string());
    }
    parts.extend(failed.iter().map(|s| {
        if s.source.is_empty() {
            s.msg.clone()
        } else {
            format!("source {}: {}", s.source, s.msg)
        }
    }));
    if parts.is_empty() {
        parts.push("the master answered result: false".into());
    }
    Err(parts.join("; "))
}

async fn run_step(conn: &MasterConn, step: &Step, opts: &ApplyOptions) -> Result<(), StepError> {
    run_step_with(conn, step, opts, false).await
}

async fn run_step_with(
    conn: &MasterConn,
    step: &Step,
    opts: &ApplyOptions,
    start_paused: bool,
) -> Result<(), StepError> {
    match step {
        Step::CreateSource { source, yaml } => create_source(conn, source, yaml, opts).await,
        Step::UpdateSource { yaml, .. } => {
            let req = pb::OperateSourceRequest {
                op: pb::SourceOp::UpdateSource as i32,
                config: vec![yaml.to_string()],
                source_id: vec![],
                worker_name: String::new(),
            };
            let r = conn
                .call("operate-source update", |mut c| async move {
                    c.operate_source(req).await
                })
                .await?;
            check_answer(r.result, &r.msg, &r.sources).map_err(StepError::Failed)
        }
        Step::StartRelay { source } | Step::StopRelay { source } => {
            let start = matches!(step, Step::StartRelay { .. });
            let req = pb::OperateRelayRequest {
                op: if start {
                    pb::RelayOpV2::StartRelayV2
                } else {
                    pb::RelayOpV2::StopRelayV2
                } as i32,
                source: source.clone(),
                worker: vec![],
            };
            let r = conn
                .call("start-relay / stop-relay", |mut c| async move {
                    c.operate_relay(req).await
                })
                .await?;
            if r.result {
                Ok(())
            } else {
                Err(StepError::Failed(r.msg))
            }
        }
        Step::StartTask {
            task,
            sources,
            remove_meta,
            yaml,
        } => {
            let req = pb::StartTaskRequest {
                task: yaml.clone(),
                sources: sources.clone(),
                remove_meta: *remove_meta,
                start_time: String::new(),
                dmrs_start_paused: start_paused,
            };
            let r = conn
                .call("start-task", |mut c| async move { c.start_task(req).await })
                .await?;
            // A failed precheck answers in checkResult (as DM does).
            let msg = if r.msg.is_empty() {
                &r.check_result
            } else {
                &r.msg
            };
            check_answer(r.result, msg, &r.sources).map_err(StepError::Failed)?;
            let expect_sources = if sources.is_empty() {
                crate::config::parse_task(yaml.as_bytes())
                    .map(|l| l.config.instances().map(|i| i.source_id.clone()).collect())
                    .unwrap_or_default()
            } else {
                sources.clone()
            };
            let expect = if start_paused {
                Expect::Paused
            } else {
                Expect::Running
            };
            wait_stage(conn, task, &expect_sources, expect, opts).await
        }
        Step::PauseTask { task, sources } => {
            operate(conn, pb::TaskOp::Pause, task, sources, opts).await
        }
        Step::ResumeTask { task, sources } => {
            operate(conn, pb::TaskOp::Resume, task, sources, opts).await
        }
        Step::StopTask { task, sources } => {
            if let Some(max) = opts.max_lag {
                wait_safe_point(conn, task, max, opts).await?;
            }
            operate(conn, pb::TaskOp::Stop, task, sources, opts).await
        }
        Step::UpdateTask { task, yaml } => {
            let req = pb::UpdateTaskRequest {
                task: yaml.clone(),
                sources: vec![],
            };
            let r = conn
                .call(
                    "update-task",
                    |mut c| async move { c.update_task(req).await },
                )
                .await?;
            check_answer(r.result, &r.msg, &r.sources).map_err(StepError::Failed)?;
            wait_stage(conn, task, &[], Expect::Paused, opts).await
        }
    }
}

async fn operate(
    conn: &MasterConn,
    op: pb::TaskOp,
    task: &str,
    sources: &[String],
    opts: &ApplyOptions,
) -> Result<(), StepError> {
    let req = pb::OperateTaskRequest {
        op: op as i32,
        name: task.to_string(),
        sources: sources.to_vec(),
    };
    let what = match op {
        pb::TaskOp::Pause => "pause-task",
        pb::TaskOp::Resume => "resume-task",
        _ => "stop-task",
    };
    let r = conn
        .call(what, |mut c| async move { c.operate_task(req).await })
        .await?;
    check_answer(r.result, &r.msg, &r.sources).map_err(StepError::Failed)?;
    let expect = match op {
        pb::TaskOp::Pause => Expect::Paused,
        pb::TaskOp::Resume => Expect::Running,
        _ => Expect::Gone,
    };
    wait_stage(conn, task, sources, expect, opts).await
}

async fn create_source(
    conn: &MasterConn,
    source: &str,
    yaml: &str,
    opts: &ApplyOptions,
) -> Result<(), StepError> {
    let req = pb::OperateSourceRequest {
        op: pb::SourceOp::StartSource as i32,
        config: vec![yaml.to_string()],
        source_id: vec![],
        worker_name: String::new(),
    };
    let r = conn
        .call("operate-source create", |mut c| async move {
            c.operate_source(req).await
        })
        .await?;
    check_answer(r.result, &r.msg, &r.sources).map_err(StepError::Failed)?;
    // Wait until a worker is bound: start-task needs it.
    let deadline = Instant::now() + opts.step_timeout;
    loop {
        let req = pb::OperateSourceRequest {
            op: pb::SourceOp::ShowSource as i32,
            config: vec![],
            source_id: vec![source.to_string()],
            worker_name: String::new(),
        };
        let r = conn
            .call("operate-source show", |mut c| async move {
                c.operate_source(req).await
            })
            .await?;
        if r.sources
            .iter()
            .any(|s| s.source == source && s.result && !s.worker.is_empty())
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StepError::Failed(format!(
                "source {source} was created but no dm-worker was bound to it within {:?}",
                opts.step_timeout
            )));
        }
        pause(opts).await?;
    }
}

async fn pause(opts: &ApplyOptions) -> Result<(), StepError> {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => Ok(()),
        _ = opts.cancel.cancelled() => Err(StepError::Cancelled),
    }
}

/// Where a task stands against an expectation: done, still waiting (with what it is now),
/// or failed (an error paused it while it should run).
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Done,
    Waiting(String),
    Failed(String),
}

/// Judges one query-status answer for `task` (pure; see [`wait_stage`]). `sources` empty means
/// every source the task has.
pub fn judge(
    resp: &pb::QueryStatusListResponse,
    task: &str,
    sources: &[String],
    expect: Expect,
) -> Progress {
    let subs = if resp.result {
        live::subtasks_from_status(resp)
            .0
            .remove(task)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let wanted: Vec<_> = subs
        .iter()
        .filter(|s| sources.is_empty() || sources.contains(&s.source))
        .collect();
    match expect {
        Expect::Gone => {
            if wanted.is_empty() {
                Progress::Done
            } else {
                Progress::Waiting(format!(
                    "still on {}",
                    wanted
                        .iter()
                        .map(|s| s.source.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        Expect::Running | Expect::Paused => {
            let ok = |stage: &str| match expect {
                Expect::Running => stage == "Running" || stage == "Finished",
                _ => stage == "Paused",
            };
            if expect == Expect::Running
                && let Some(s) = wanted
                    .iter()
                    .find(|s| s.stage == "Paused" && s.error.is_some())
            {
                return Progress::Failed(format!(
                    "source {}: {}",
                    s.source,
                    s.error.as_deref().unwrap_or_default()
                ));
            }
            let missing: Vec<&String> = sources
                .iter()
                .filter(|src| !subs.iter().any(|s| &s.source == *src))
                .collect();
            let wrong: Vec<String> = wanted
                .iter()
                .filter(|s| !ok(&s.stage))
                .map(|s| {
                    let stage = if s.stage.is_empty() { "New" } else { &s.stage };
                    format!("{} on {}", stage, s.source)
                })
                .collect();
            if wanted.is_empty() {
                Progress::Waiting("not started yet".into())
            } else if !missing.is_empty() {
                Progress::Waiting(format!(
                    "not started yet on {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else if !wrong.is_empty() {
                Progress::Waiting(wrong.join(", "))
            } else {
                Progress::Done
            }
        }
    }
}

/// Polls query-status for `task` until it meets `expect`, the step timeout passes, or the
/// apply is cancelled.
/// How far behind its upstream the task's furthest running Sync subtask is (seconds), from a
/// query-status answer; None when no subtask of `task` is a running Sync unit.
pub fn worst_lag(r: &pb::QueryStatusListResponse, task: &str) -> Option<i64> {
    r.sources
        .iter()
        .flat_map(|s| s.sub_task_status.iter())
        .filter(|st| st.name == task && st.stage == pb::Stage::Running as i32)
        .filter_map(|st| match &st.status {
            Some(pb::sub_task_status::Status::Sync(s)) => Some(s.seconds_behind_master.max(0)),
            _ => None,
        })
        .max()
}

/// One query-status of `task` (every source).
async fn task_status(
    conn: &MasterConn,
    task: &str,
) -> Result<pb::QueryStatusListResponse, StepError> {
    let req = pb::QueryStatusListRequest {
        name: task.to_string(),
        sources: vec![],
    };
    Ok(conn
        .call(
            "query-status",
            |mut c| async move { c.query_status(req).await },
        )
        .await?)
}

/// The safe point before a stop: waits (up to the step timeout) until the task's Sync
/// subtasks are at most `max` behind; a task that stays further behind is not stopped.
async fn wait_safe_point(
    conn: &MasterConn,
    task: &str,
    max: Duration,
    opts: &ApplyOptions,
) -> Result<(), StepError> {
    let deadline = Instant::now() + opts.step_timeout;
    loop {
        let r = task_status(conn, task).await?;
        match worst_lag(&r, task) {
            Some(lag) if lag as u64 > max.as_secs() => {
                if Instant::now() >= deadline {
                    return Err(StepError::Failed(format!(
                        "task {task} is still {lag} s behind its upstream after {:?} (max-lag-before-stop {:?}): not stopped",
                        opts.step_timeout, max
                    )));
                }
                pause(opts).await?;
            }
            _ => return Ok(()),
        }
    }
}

async fn wait_stage(
    conn: &MasterConn,
    task: &str,
    sources: &[String],
    expect: Expect,
    opts: &ApplyOptions,
) -> Result<(), StepError> {
    let deadline = Instant::now() + opts.step_timeout;
    loop {
        let r = task_status(conn, task).await?;
        match judge(&r, task, sources, expect) {
            Progress::Done => return Ok(()),
            Progress::Failed(m) => return Err(StepError::Failed(m)),
            Progress::Waiting(now) if Instant::now() >= deadline => {
                return Err(StepError::Failed(format!(
                    "task {task} did not become {} within {:?} ({now})",
                    expect.word(),
                    opts.step_timeout
                )));
            }
            Progress::Waiting(_) => pause(opts).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::{CheckpointFate, LiveSubtask, LiveTask};

    #[test]
    fn the_safe_point_is_the_furthest_running_sync_subtask() {
        let sub = |name: &str, stage: pb::Stage, lag: Option<i64>| pb::SubTaskStatus {
            name: name.into(),
            stage: stage as i32,
            status: Some(match lag {
                Some(l) => pb::sub_task_status::Status::Sync(pb::SyncStatus {
                    seconds_behind_master: l,
                    ..Default::default()
                }),
                None => pb::sub_task_status::Status::Load(pb::LoadStatus::default()),
            }),
            ..Default::default()
        };
        let resp = |subs: Vec<pb::SubTaskStatus>| pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: subs
                .into_iter()
                .map(|s| pb::QueryStatusResponse {
                    result: true,
                    sub_task_status: vec![s],
                    ..Default::default()
                })
                .collect(),
        };
        let cases: Vec<(Vec<pb::SubTaskStatus>, Option<i64>)> = vec![
            (vec![], None),
            (
                vec![
                    sub("t", pb::Stage::Running, Some(3)),
                    sub("t", pb::Stage::Running, Some(40)),
                ],
                Some(40),
            ),
            // paused, loading and other tasks' subtasks do not count
            (
                vec![
                    sub("t", pb::Stage::Paused, Some(99)),
                    sub("t", pb::Stage::Running, None),
                    sub("u", pb::Stage::Running, Some(70)),
                    sub("t", pb::Stage::Running, Some(-1)),
                ],
                Some(0),
            ),
        ];
        for (subs, want) in cases {
            assert_eq!(worst_lag(&resp(subs.clone()), "t"), want, "{subs:?}");
        }
    }

    fn status(subs: &[(&str, &str, pb::Stage, bool)]) -> pb::QueryStatusListResponse {
        let mut sources: BTreeMap<&str, Vec<pb::SubTaskStatus>> = BTreeMap::new();
        for (src, name, stage, err) in subs {
            sources.entry(src).or_default().push(pb::SubTaskStatus {
                name: name.to_string(),
                stage: *stage as i32,
                result: err.then(|| pb::ProcessResult {
                    errors: vec![pb::ProcessError {
                        message: "dup".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: sources
                .into_iter()
                .map(|(s, subs)| pb::QueryStatusResponse {
                    result: true,
                    msg: String::new(),
                    source_status: Some(pb::SourceStatus {
                        source: s.into(),
                        ..Default::default()
                    }),
                    sub_task_status: subs,
                })
                .collect(),
        }
    }

    #[test]
    fn judge_waits_for_the_expected_stage() {
        use pb::Stage::*;
        let none: &[String] = &[];
        let s1 = ["s1".to_string()];
        let cases: Vec<(pb::QueryStatusListResponse, &[String], Expect, &str)> = vec![
            (
                status(&[("s1", "t", Running, false)]),
                none,
                Expect::Running,
                "done",
            ),
            (
                status(&[("s1", "t", Finished, false)]),
                none,
                Expect::Running,
                "done",
            ),
            (
                status(&[("s1", "t", Paused, false)]),
                none,
                Expect::Running,
                "wait",
            ),
            (
                status(&[("s1", "t", Paused, true)]),
                none,
                Expect::Running,
                "fail",
            ),
            (status(&[]), none, Expect::Running, "wait"),
            (
                status(&[("s2", "t", Running, false)]),
                &s1,
                Expect::Running,
                "wait",
            ),
            (
                status(&[("s1", "t", Paused, false), ("s2", "t", Running, false)]),
                &s1,
                Expect::Paused,
                "done",
            ),
            (
                status(&[("s1", "t", Paused, false), ("s2", "t", Running, false)]),
                none,
                Expect::Paused,
                "wait",
            ),
            (
                status(&[("s1", "t", Paused, true)]),
                none,
                Expect::Paused,
                "done",
            ),
            (status(&[]), none, Expect::Gone, "done"),
            (
                status(&[("s1", "other", Running, false)]),
                none,
                Expect::Gone,
                "done",
            ),
            (
                status(&[("s1", "t", Running, false)]),
                none,
                Expect::Gone,
                "wait",
            ),
            (
                status(&[("s2", "t", Running, false)]),
                &s1,
                Expect::Gone,
                "done",
            ),
            (
                pb::QueryStatusListResponse {
                    result: false,
                    msg: "task t has no source or not exist".into(),
                    sources: vec![],
                },
                none,
                Expect::Gone,
                "done",
            ),
        ];
        for (i, (resp, sources, expect, want)) in cases.into_iter().enumerate() {
            let got = match judge(&resp, "t", sources, expect) {
                Progress::Done => "done",
                Progress::Waiting(_) => "wait",
                Progress::Failed(_) => "fail",
            };
            assert_eq!(got, want, "case {i}: {expect:?} {sources:?}");
        }
    }

    #[test]
    fn master_answers_fail_unless_only_the_wait_ran_out() {
        let w = |result: bool, source: &str, msg: &str| pb::CommonWorkerResponse {
            result,
            msg: msg.into(),
            source: source.into(),
            worker: "w".into(),
        };
        type Case<'a> = (
            bool,
            &'a str,
            Vec<pb::CommonWorkerResponse>,
            Result<(), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (true, "", vec![], Ok(())),
            (
                false,
                "",
                vec![w(false, "s1", "subtask is New (expected Running)")],
                Ok(()),
            ),
            (false, "bad config", vec![], Err("bad config")),
            (
                false,
                "",
                vec![w(true, "s1", ""), w(false, "s2", "[code=1] boom")],
                Err("source s2: [code=1] boom"),
            ),
            (false, "", vec![], Err("the master answered result: false")),
        ];
        for (result, msg, sources, want) in cases {
            let got = check_answer(result, msg, &sources);
            assert_eq!(
                got.as_ref().map_err(|e| e.as_str()),
                want.as_ref().map_err(|e| *e)
            );
        }
    }

    fn task_plan(name: &str, digest: &str, refused: Option<&str>) -> TaskPlan {
        TaskPlan {
            task: name.into(),
            class: ChangeClass::Stage,
            steps: vec![Step::ResumeTask {
                task: name.into(),
                sources: vec![],
            }],
            fields: vec![],
            summary: String::new(),
            checkpoint: CheckpointFate::Kept,
            warnings: vec![],
            refused: refused.map(str::to_string),
            ignored: vec![],
            diff: String::new(),
            live_digest: digest.into(),
            file: None,
            phase: Vec::new(),
        }
    }

    #[test]
    fn stale_tasks_and_sources_of_a_saved_plan_are_refused() {
        let mut live = LiveState::default();
        live.sources.insert("s-now".into());
        live.tasks.insert(
            "same".into(),
            LiveTask {
                name: "same".into(),
                config: None,
                config_error: None,
                password_fingerprint: None,
                password_matches: None,
                subtasks: vec![LiveSubtask {
                    source: "s1".into(),
                    stage: "Paused".into(),
                    error: None,
                    unit: String::new(),
                    progress: None,
                    lock: None,
                }],
            },
        );
        let same_digest = live.task_digest("same");
        let mut plan = Plan {
            version: 1,
            dir: "d".into(),
            sources: vec![
                Step::CreateSource {
                    source: "s-now".into(),
                    yaml: String::new(),
                },
                Step::CreateSource {
                    source: "s-new".into(),
                    yaml: String::new(),
                },
            ],
            tasks: vec![
                task_plan("same", &same_digest, None),
                task_plan("changed", "old-digest", None),
                task_plan("absent", "absent", None),
                task_plan("refused", "x", Some("protected")),
            ],
            errors: vec![],
        };
        let stale = mark_stale(&mut plan, &live);
        assert_eq!(stale.keys().collect::<Vec<_>>(), vec!["s-now"]);
        let refused: Vec<(&str, Option<&str>)> = plan
            .tasks
            .iter()
            .map(|t| (t.task.as_str(), t.refused.as_deref()))
            .collect();
        let msg = stale_message("changed");
        assert_eq!(
            refused,
            vec![
                ("same", None),
                ("changed", Some(msg.as_str())),
                ("absent", None),
                ("refused", Some("protected")),
            ]
        );
    }

    #[test]
    fn report_success_needs_every_task_applied() {
        let t = |outcome| TaskResult {
            task: "t".into(),
            class: ChangeClass::Stage,
            outcome,
            message: None,
            steps: vec![],
        };
        let cases = [
            (
                vec![Outcome::Ok, Outcome::Unchanged, Outcome::Skipped],
                true,
            ),
            (vec![Outcome::Ok, Outcome::Failed], false),
            (vec![Outcome::Refused], false),
            (vec![], true),
        ];
        for (outcomes, want) in cases {
            let r = ApplyReport {
                tasks: outcomes.iter().map(|o| t(*o)).collect(),
                ..Default::default()
            };
            assert_eq!(r.success(), want, "{outcomes:?}");
        }
        let mut r = ApplyReport::default();
        r.errors.push(FileError {
            file: "x.yaml".into(),
            message: "bad".into(),
        });
        assert!(!r.success());
        assert!(!ApplyReport::failed("down".into(), vec![]).success());
    }

    #[tokio::test]
    async fn cancel_wakes_waiters() {
        let c = CancelToken::default();
        let c2 = c.clone();
        let h = tokio::spawn(async move { c2.cancelled().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        c.cancel();
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .expect("woken")
            .expect("joined");
        assert!(c.is_cancelled());
    }
}
