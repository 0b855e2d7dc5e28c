//! The reconcile loop (`dmctl reconcile DIR`): level-triggered, like kube-runtime's controller.
//!
//! Every round starts from scratch — [`desired::load_dir`], [`live::fetch_with`],
//! [`plan::plan`], [`apply::apply_with`] — and never relies on having seen an earlier event. A
//! round runs at start, after a change under DIR (notify, recursive, debounced), every
//! `interval` (to catch drift), and when a task's backoff ends. A file change during a round
//! cancels its waits (the newer desired state pre-empts the older one) and starts a new round.
//! A task that failed is skipped until its backoff (1 s doubling, capped at 5 min, reset on
//! success) ends. Called by dmctl; it stops cleanly on SIGINT/SIGTERM and never exits the
//! process itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use super::admin::{self, AdminError, Metrics};
use super::apply::{self, ApplyOptions, ApplyReport, CancelToken, Outcome};
use super::live::{self, LiveError, MasterConn};
use super::model::{LiveState, Plan};
use super::{desired, plan};

/// Resync interval when `--interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Quiet time after a file change before a round starts.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);
/// First backoff after a failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub interval: Duration,
    pub debounce: Duration,
    /// `host:port` for `/metrics` and `/healthz`.
    pub admin_addr: Option<String>,
    pub rpc_timeout: Duration,
    pub step_timeout: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: DEFAULT_INTERVAL,
            debounce: DEFAULT_DEBOUNCE,
            admin_addr: None,
            rpc_timeout: Duration::from_secs(30),
            step_timeout: apply::DEFAULT_STEP_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("can not watch {dir}: {why}")]
    Watch { dir: PathBuf, why: String },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("can not start the async runtime: {0}")]
    Runtime(String),
}

/// The backoff after `failures` consecutive failures (1 s, 2 s, 4 s, … capped at 5 min).
pub fn backoff_delay(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(20);
    BACKOFF_START.saturating_mul(1u32 << shift).min(BACKOFF_CAP)
}

/// Per-task exponential backoff.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: BTreeMap<String, (u32, Instant)>,
}

impl Backoff {
    /// Records a failure; returns how long the task now waits.
    pub fn failed(&mut self, task: &str, now: Instant) -> Duration {
        let e = self.entries.entry(task.to_string()).or_insert((0, now));
        e.0 += 1;
        let d = backoff_delay(e.0);
        e.1 = now + d;
        d
    }

    pub fn succeeded(&mut self, task: &str) {
        self.entries.remove(task);
    }

    /// How long the task still waits (None: it may run).
    pub fn blocked(&self, task: &str, now: Instant) -> Option<Duration> {
        self.entries
            .get(task)
            .and_then(|(_, at)| at.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// The next time a task's backoff ends.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        self.entries
            .values()
            .map(|(_, at)| *at)
            .filter(|at| *at > now)
            .min()
    }

    /// The tasks that wait now, with the reason.
    pub fn skip_list(&self, now: Instant) -> BTreeMap<String, String> {
        self.entries
            .keys()
            .filter_map(|t| {
                self.blocked(t, now).map(|d| {
                    (
                        t.clone(),
                        format!(
                            "in backoff after a failure: retried in {}s",
                            d.as_secs().max(1)
                        ),
                    )
                })
            })
            .collect()
    }
}

/// What started a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Files,
    Interval,
    Backoff,
}

/// The result of one round.
#[derive(Debug)]
struct Round {
    live: Option<LiveState>,
    plan: Option<Plan>,
    report: ApplyReport,
}

async fn round(dir: &Path, addr: &str, opts: &ApplyOptions) -> Round {
    let desired = desired::load_dir(dir);
    let conn = match MasterConn::connect(addr, opts.rpc_timeout).await {
        Ok(c) => c,
        Err(e) => return failed_round(e, &desired.errors),
    };
    let fetched = match live::fetch_with(&conn, &live::desired_passwords(&desired)).await {
        Ok(f) => f,
        Err(e) => return failed_round(e, &desired.errors),
    };
    for s in &fetched.unreachable_sources {
        tracing::warn!(source = %s, "the worker of this source did not answer query-status; its tasks are not seen this round");
    }
    let p = plan::plan(&desired, &fetched.state);
    let opts = ApplyOptions {
        max_lag: desired.policy.max_lag_before_stop,
        ..opts.clone()
    };
    let report = apply::apply_with(&conn, &p, &opts).await;
    Round {
        live: Some(fetched.state),
        plan: Some(p),
        report,
    }
}

fn failed_round(e: LiveError, errors: &[super::model::FileError]) -> Round {
    Round {
        live: None,
        plan: None,
        report: ApplyReport {
            error: Some(e.to_string()),
            errors: errors.to_vec(),
            ..Default::default()
        },
    }
}

/// Tasks by stage for the `dmrs_tasks` gauge: a task's stage is "Error" when a subtask has an
/// error, else its subtasks' stage when they agree, else "Mixed".
pub fn stage_counts(live: &LiveState) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for t in live.tasks.values() {
        let stage = if t.subtasks.iter().any(|s| s.error.is_some()) {
            "Error".to_string()
        } else {
            let mut stages: Vec<&str> = t.subtasks.iter().map(|s| s.stage.as_str()).collect();
            stages.dedup();
            match stages.as_slice() {
                [one] if !one.is_empty() => one.to_string(),
                [] | [_] => "Unknown".to_string(),
                _ => "Mixed".to_string(),
            }
        };
        *out.entry(stage).or_default() += 1;
    }
    out
}

/// Runs the loop until SIGINT/SIGTERM (blocking; builds its own runtime).
pub fn run(dir: &Path, addr: &str, opts: WatchOptions) -> Result<(), WatchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WatchError::Runtime(e.to_string()))?;
    rt.block_on(async {
        let stop = CancelToken::default();
        let s = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping after the current step");
            s.cancel();
        });
        run_until(dir, addr, &opts, stop).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {},
                _ = t.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Whether a notify event can change the desired state (reads and metadata do not).
fn relevant(ev: &notify::Event) -> bool {
    use notify::event::ModifyKind;
    match ev.kind {
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Other => false,
        _ => ev
            .paths
            .iter()
            .any(|p| match p.extension().and_then(|e| e.to_str()) {
                Some(ext) => ext == "yaml" || ext == "yml",
                None => true,
            }),
    }
}

/// Waits until no file event came for `quiet`.
async fn debounce(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>, quiet: Duration) {
    loop {
        tokio::select! {
            Some(()) = rx.recv() => continue,
            _ = tokio::time::sleep(quiet) => return,
        }
    }
}

/// Runs the loop until `stop` is cancelled.
pub async fn run_until(
    dir: &Path,
    addr: &str,
    opts: &WatchOptions,
    stop: CancelToken,
) -> Result<(), WatchError> {
    let metrics = Arc::new(Metrics::default());
    if let Some(a) = &opts.admin_addr {
        let listener = admin::bind(a).await?;
        tracing::info!(addr = %a, "admin endpoint: GET /metrics, GET /healthz");
        tokio::spawn(admin::serve(listener, metrics.clone(), stop.clone()));
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && relevant(&ev)
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| WatchError::Watch {
        dir: dir.to_path_buf(),
        why: e.to_string(),
    })?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| WatchError::Watch {
            dir: dir.to_path_buf(),
            why: e.to_string(),
        })?;
    metrics.set_running(true);
    tracing::info!(dir = %dir.display(), master = %addr, interval = ?opts.interval, "reconcile loop started");

    let mut backoff = Backoff::default();
    let mut trigger = Trigger::Start;
    let mut n: u64 = 0;
    while !stop.is_cancelled() {
        n += 1;
        let started = Instant::now();
        let cancel = CancelToken::default();
        let aopts = ApplyOptions {
            step_timeout: opts.step_timeout,
            rpc_timeout: opts.rpc_timeout,
            cancel: cancel.clone(),
            skip: backoff.skip_list(started),
            parallelism: apply::DEFAULT_PARALLELISM,
            max_lag: None,
        };
        let fut = round(dir, addr, &aopts);
        tokio::pin!(fut);
        let mut preempted = false;
        let r = loop {
            tokio::select! {
                r = &mut fut => break r,
                Some(()) = rx.recv(), if !preempted => {
                    tracing::info!("round {n}: the directory changed: pre-empting this round's waits");
                    preempted = true;
                    cancel.cancel();
                }
                _ = stop.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
            }
        };
        record(n, trigger, &r, started.elapsed(), &metrics, &mut backoff);
        if stop.is_cancelled() {
            break;
        }
        if preempted {
            debounce(&mut rx, opts.debounce).await;
            trigger = Trigger::Files;
            continue;
        }
        let now = Instant::now();
        let interval_at = now + opts.interval;
        let (wake_at, wake_trigger) = match backoff.next_due(now) {
            Some(at) if at < interval_at => (at, Trigger::Backoff),
            _ => (interval_at, Trigger::Interval),
        };
        tokio::select! {
            Some(()) = rx.recv() => {
                debounce(&mut rx, opts.debounce).await;
                trigger = Trigger::Files;
            }
            _ = tokio::time::sleep_until(wake_at.into()) => trigger = wake_trigger,
            _ = stop.cancelled() => break,
        }
    }
    metrics.set_running(false);
    drop(watcher);
    tracing::info!("reconcile loop stopped after {n} round(s)");
    Ok(())
}

/// Updates backoff and metrics after a round and logs its one-line summary.
fn record(
    n: u64,
    trigger: Trigger,
    r: &Round,
    took: Duration,
    metrics: &Metrics,
    backoff: &mut Backoff,
) {
    let reached = r.report.error.is_none();
    metrics.observe_round(took.as_secs_f64(), reached);
    if let Some(e) = &r.report.error {
        metrics.add_errors(1);
        tracing::warn!("round {n}: {e}; took {}ms", took.as_millis());
        return;
    }
    for e in &r.report.errors {
        tracing::warn!(file = %e.file.display(), "round {n}: {}", e.message);
    }
    let now = Instant::now();
    for t in &r.report.tasks {
        match t.outcome {
            Outcome::Ok => {
                backoff.succeeded(&t.task);
                metrics.add_transition(t.class);
            }
            Outcome::Unchanged => backoff.succeeded(&t.task),
            Outcome::Failed => {
                metrics.add_errors(1);
                let d = backoff.failed(&t.task, now);
                tracing::warn!(task = %t.task, "round {n}: {}; next try in {}s", t.message.as_deref().unwrap_or("failed"), d.as_secs());
            }
            Outcome::Refused => {
                tracing::warn!(task = %t.task, "round {n}: refused: {}", t.message.as_deref().unwrap_or(""))
            }
            Outcome::Skipped => {}
        }
    }
    if trigger == Trigger::Interval
        && let Some(p) = &r.plan
    {
        let drift = p
            .tasks
            .iter()
            .filter(|t| t.refused.is_none() && !t.steps.is_empty())
            .count() as u64;
        if drift > 0 {
            tracing::info!("round {n}: drift found on {drift} task(s) at a resync");
        }
        metrics.add_drift(drift);
    }
    if let Some(live) = &r.live {
        metrics.set_tasks(stage_counts(live));
    }
    let rep = &r.report;
    let mut extra = String::new();
    for (word, o) in [("refused", Outcome::Refused), ("skipped", Outcome::Skipped)] {
        let c = rep.count(o);
        if c > 0 {
            extra.push_str(&format!(", {c} {word}"));
        }
    }
    if !rep.errors.is_empty() {
        extra.push_str(&format!(", {} invalid file(s)", rep.errors.len()));
    }
    tracing::info!(
        "round {n}: {} applied, {} failed, {} in sync{extra}, took {}ms",
        rep.count(Outcome::Ok),
        rep.count(Outcome::Failed),
        rep.count(Outcome::Unchanged),
        took.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::{LiveSubtask, LiveTask};

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let cases = [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (9, 256),
            (10, 300),
            (30, 300),
            (u32::MAX, 300),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                backoff_delay(failures),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn a_task_in_backoff_is_skipped_until_its_time_and_reset_on_success() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.failed("a", t0), Duration::from_secs(1));
        assert_eq!(b.failed("a", t0), Duration::from_secs(2));
        assert!(b.blocked("a", t0).is_some());
        assert!(b.blocked("b", t0).is_none());
        assert_eq!(b.skip_list(t0).keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(b.next_due(t0), Some(t0 + Duration::from_secs(2)));
        let later = t0 + Duration::from_secs(3);
        assert!(b.blocked("a", later).is_none());
        assert!(b.skip_list(later).is_empty());
        assert_eq!(b.failed("a", later), Duration::from_secs(4));
        b.succeeded("a");
        assert!(b.blocked("a", later).is_none());
        assert_eq!(b.failed("a", later), Duration::from_secs(1));
    }

    #[test]
    fn tasks_are_counted_by_stage() {
        let task = |name: &str, subs: &[(&str, bool)]| LiveTask {
            name: name.into(),
            config: None,
            config_error: None,
            password_fingerprint: None,
            password_matches: None,
            subtasks: subs
                .iter()
                .enumerate()
                .map(|(i, (stage, err))| LiveSubtask {
                    source: format!("s{i}"),
                    stage: stage.to_string(),
                    error: err.then(|| "x".to_string()),
                    unit: String::new(),
                    progress: None,
                    lock: None,
                })
                .collect(),
        };
        let mut live = LiveState::default();
        for t in [
            task("a", &[("Running", false), ("Running", false)]),
            task("b", &[("Running", false)]),
            task("c", &[("Paused", true)]),
            task("d", &[("Paused", false), ("Running", false)]),
            task("e", &[("", false)]),
        ] {
            live.tasks.insert(t.name.clone(), t);
        }
        let want: BTreeMap<String, u64> =
            [("Running", 2), ("Error", 1), ("Mixed", 1), ("Unknown", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(stage_counts(&live), want);
    }

    #[test]
    fn only_writes_to_yaml_files_start_a_round() {
        use notify::event::{AccessKind, CreateKind, MetadataKind, ModifyKind};
        let ev = |kind: EventKind, path: &str| notify::Event {
            kind,
            paths: vec![PathBuf::from(path)],
            attrs: Default::default(),
        };
        let cases = [
            (ev(EventKind::Create(CreateKind::File), "d/t.yaml"), true),
            (ev(EventKind::Modify(ModifyKind::Any), "d/t.yml"), true),
            (
                ev(EventKind::Remove(notify::event::RemoveKind::Any), "d/sub"),
                true,
            ),
            (ev(EventKind::Access(AccessKind::Any), "d/t.yaml"), false),
            (
                ev(
                    EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                    "d/t.yaml",
                ),
                false,
            ),
            (
                ev(EventKind::Create(CreateKind::File), "d/.t.yaml.swp"),
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(relevant(&e), want, "{e:?}");
        }
    }
}
