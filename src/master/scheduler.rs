//! The master's in-memory view of the cluster, written through to the [`Store`]: sources,
//! tasks, subtasks with their expected stage, workers and bindings. One push round
//! ([`Scheduler::round`]) sends every worker its desired state; the answers are the
//! keepalive. A worker silent for `worker-offline-after` ([`Timings`]) goes offline and its source is bound
//! again to a free worker. Only this module decides bindings.
//!
//! Every change of durable state follows one pattern: take [`Scheduler::change`] (an async
//! lock that orders changes), compute under the state's std `Mutex`, release it, write to the
//! store ([`Scheduler::persist`], fsynced on a blocking thread), then apply the change in
//! memory. The std `Mutex` is never held across a store write or an `.await`. The operations
//! themselves are `Scheduler` methods in `tasks.rs` and `sources.rs`; `server.rs` only
//! translates between the wire and these.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::MasterError;
use super::store::{
    self, ExpectedStage, Op, SourceRecord, Store, StoreError, SubTaskRecord, TaskRecord,
    WorkerRecord,
};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::dmrs::{AssignRequest, SubTaskSpec, worker_control_client::WorkerControlClient};
use crate::pb::{self, Stage};
use crate::worker::Worker;

/// A worker that has not answered a push for this long is offline (longer than the worker's
/// own fence, so it has stopped its subtasks by then). Default of `worker-offline-after`.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(8);
/// How often every worker gets its desired state. Default of `push-interval`.
pub const ROUND_EVERY: Duration = Duration::from_secs(1);
/// Bound of every call to a worker. Default of `worker-call-timeout`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound of a connection attempt to a worker. Default of `worker-connect-timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The master's timings (dm-master's config file, see [`crate::master::config`]); they can
/// change while the master runs (update-master-config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How often every worker gets its desired state (`push-interval`).
    pub push_interval: Duration,
    /// A worker silent this long is offline and its source is bound again
    /// (`worker-offline-after`).
    pub offline_after: Duration,
    /// Bound of every call to a worker (`worker-call-timeout`).
    pub call_timeout: Duration,
    /// Bound of a connection attempt to a worker (`worker-connect-timeout`).
    pub connect_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            push_interval: ROUND_EVERY,
            offline_after: OFFLINE_AFTER,
            call_timeout: CALL_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

pub struct SourceEntry {
    pub rec: SourceRecord,
    /// None when the stored file no longer loads (e.g. a `${ENV}` the master lacks now).
    pub cfg: Option<SourceConfig>,
    pub error: String,
}

pub struct TaskEntry {
    pub rec: TaskRecord,
    pub cfg: Option<TaskConfig>,
    pub error: String,
}

pub struct WorkerEntry {
    pub rec: WorkerRecord,
    pub online: bool,
    pub last_ok: Option<Instant>,
    /// When the master started watching it (registration or master start).
    pub since: Instant,
}

#[derive(Default)]
pub struct State {
    pub sources: BTreeMap<String, SourceEntry>,
    pub tasks: BTreeMap<String, TaskEntry>,
    /// key: (task, source)
    pub subtasks: BTreeMap<(String, String), SubTaskRecord>,
    pub workers: BTreeMap<String, WorkerEntry>,
    /// source → worker
    pub bindings: BTreeMap<String, String>,
    /// Pessimistic shard DDL locks (durable: [`store::SHARD_LOCKS`]).
    pub shard_locks: crate::master::shardddl::Locks,
    /// Optimistic shard DDL locks (durable: [`store::OPT_LOCKS`]).
    pub opt_locks: crate::master::optimist::OptLocks,
    /// Relay wishes per source (durable: [`store::RELAY`]).
    pub relay: BTreeMap<String, crate::master::relay::RelayRecord>,
    /// Optimistic: (task, source) pairs whose worker has reported its shard tables since this
    /// master started (a task's DDLs are answered only when all its sources have).
    pub opt_reported: std::collections::BTreeSet<(String, String)>,
}

impl State {
    pub fn worker_of(&self, source: &str) -> Option<&str> {
        self.bindings.get(source).map(|s| s.as_str())
    }

    pub fn source_of(&self, worker: &str) -> Option<&str> {
        self.bindings
            .iter()
            .find(|(_, w)| w.as_str() == worker)
            .map(|(s, _)| s.as_str())
    }

    /// Sources of a task, in order.
    pub fn task_sources(&self, task: &str) -> Vec<String> {
        self.subtasks
            .keys()
            .filter(|(t, _)| t == task)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

pub struct Scheduler {
    pub store: Arc<Store>,
    pub state: Mutex<State>,
    pub local: Option<Arc<Worker>>,
    /// The master's own address (`dm-worker --join` hints in messages).
    pub addr: String,
    clients: Mutex<BTreeMap<String, WorkerControlClient<Channel>>>,
    round_lock: tokio::sync::Mutex<()>,
    /// Orders the changes of durable state (see the module doc).
    changes: tokio::sync::Mutex<()>,
    timings: Mutex<Timings>,
}

pub fn load_source(yaml: &str) -> Result<SourceConfig, crate::config::ConfigError> {
    crate::config::parse_source(yaml.as_bytes()).map(|l| l.config)
}

pub fn load_task(yaml: &str) -> Result<TaskConfig, crate::config::ConfigError> {
    crate::config::parse_task(yaml.as_bytes()).map(|l| l.config)
}

/// The stage the worker is told to reach (the push protocol speaks `pb::Stage`).
pub fn stage_to_pb(s: ExpectedStage) -> Stage {
    match s {
        ExpectedStage::Running => Stage::Running,
        ExpectedStage::Paused => Stage::Paused,
    }
}

/// Unbound sources paired with free online workers, in name order (no state change).
fn free_bindings(st: &State) -> Vec<(String, String)> {
    let mut taken: Vec<&str> = st.bindings.values().map(String::as_str).collect();
    let mut out = Vec::new();
    for s in st.sources.keys().filter(|s| !st.bindings.contains_key(*s)) {
        // DM's order: the source's relay workers first; a relay worker of another source is
        // never bound to this one.
        let usable = |w: &&WorkerEntry| {
            w.online
                && !taken.contains(&w.rec.name.as_str())
                && crate::master::relay::relay_source_of(st, &w.rec.name).is_none_or(|r| r == s)
        };
        let relay_workers = st.relay.get(s).map(|r| &r.workers);
        let free = st
            .workers
            .values()
            .filter(usable)
            .find(|w| relay_workers.is_some_and(|r| r.contains(&w.rec.name)))
            .or_else(|| st.workers.values().find(usable));
        if let Some(w) = free {
            taken.push(&w.rec.name);
            out.push((s.clone(), w.rec.name.clone()));
        }
    }
    out
}

impl Scheduler {
    /// Opens the store and rebuilds the state from it. `addr` is the master's address.
    pub fn open(
        store: Store,
        local: Option<Arc<Worker>>,
        addr: &str,
    ) -> Result<Scheduler, StoreError> {
        let mut st = State::default();
        let now = Instant::now();
        for (_, rec) in store.all::<SourceRecord>(store::SOURCES)? {
            let (cfg, error) = match load_source(&rec.yaml) {
                Ok(c) => (Some(c), String::new()),
                Err(e) => {
                    tracing::error!(source = %rec.id, "stored source no longer loads: {e}");
                    (None, e.to_string())
                }
            };
            st.sources
                .insert(rec.id.clone(), SourceEntry { rec, cfg, error });
        }
        for (_, rec) in store.all::<TaskRecord>(store::TASKS)? {
            let (cfg, error) = match load_task(&rec.yaml) {
                Ok(c) => (Some(c), String::new()),
                Err(e) => {
                    tracing::error!(task = %rec.name, "stored task no longer loads: {e}");
                    (None, e.to_string())
                }
            };
            st.tasks
                .insert(rec.name.clone(), TaskEntry { rec, cfg, error });
        }
        for (_, rec) in store.all::<SubTaskRecord>(store::SUBTASKS)? {
            st.subtasks
                .insert((rec.task.clone(), rec.source.clone()), rec);
        }
        for (_, rec) in store.all::<WorkerRecord>(store::WORKERS)? {
            st.workers.insert(
                rec.name.clone(),
                WorkerEntry {
                    rec,
                    online: false,
                    last_ok: None,
                    since: now,
                },
            );
        }
        for (s, w) in store.all::<String>(store::BINDINGS)? {
            st.bindings.insert(s, w);
        }
        for (id, lock) in store.all::<crate::master::shardddl::Lock>(store::SHARD_LOCKS)? {
            st.shard_locks.locks.insert(id, lock);
        }
        for (k, op) in store.all::<crate::master::shardddl::SqlOp>(store::SHARD_SQL_OPS)? {
            st.shard_locks.sql_ops.insert(k, op);
        }
        for (s, r) in store.all::<crate::master::relay::RelayRecord>(store::RELAY)? {
            st.relay.insert(s, r);
        }
        for (id, lock) in store.all::<crate::master::optimist::OptLock>(store::OPT_LOCKS)? {
            st.opt_locks.locks.insert(id, lock);
        }
        if let Some(w) = &local {
            let rec = WorkerRecord {
                name: w.name.clone(),
                addr: "(in-process)".into(),
            };
            store.put(store::WORKERS, &rec.name, &rec)?;
            st.workers.insert(
                rec.name.clone(),
                WorkerEntry {
                    rec,
                    online: true,
                    last_ok: Some(now),
                    since: now,
                },
            );
        }
        Ok(Scheduler {
            store: Arc::new(store),
            state: Mutex::new(st),
            local,
            addr: addr.to_string(),
            clients: Mutex::new(BTreeMap::new()),
            round_lock: tokio::sync::Mutex::new(()),
            changes: tokio::sync::Mutex::new(()),
            timings: Mutex::new(Timings::default()),
        })
    }

    /// The timings in force.
    pub fn timings(&self) -> Timings {
        *self.timings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the timings; the next push round uses them (worker connections are made again
    /// with the new timeouts).
    pub fn set_timings(&self, t: Timings) {
        let old = std::mem::replace(
            &mut *self.timings.lock().unwrap_or_else(|p| p.into_inner()),
            t,
        );
        if old.call_timeout != t.call_timeout || old.connect_timeout != t.connect_timeout {
            self.clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    /// The in-memory state. Never hold the guard across a store write or an `.await`.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock that orders changes of durable state; hold it from computing a change to
    /// applying it in memory (never while calling [`Scheduler::round`]).
    pub async fn change(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// Writes `ops` in one transaction on a blocking thread (redb fsyncs). A failure is
    /// logged here and returned; the caller leaves memory unchanged then.
    pub async fn persist(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let r = match tokio::task::spawn_blocking(move || store.write(&ops)).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Db(format!("store writer stopped: {e}"))),
        };
        if let Err(e) = &r {
            tracing::error!("master state not saved: {e}");
        }
        r
    }

    /// Binds every unbound source to a free online worker, durably. The caller holds
    /// [`Scheduler::change`]. Returns whether anything changed.
    pub async fn bind_free(&self) -> bool {
        let plan = free_bindings(&self.lock());
        if plan.is_empty() {
            return false;
        }
        let ops: Result<Vec<Op>, StoreError> = plan
            .iter()
            .map(|(s, w)| store::put_op(store::BINDINGS, s, w))
            .collect();
        let saved = match ops {
            Ok(ops) => self.persist(ops).await.is_ok(),
            Err(e) => {
                tracing::error!("bindings not saved: {e}");
                false
            }
        };
        if !saved {
            return false;
        }
        let mut st = self.lock();
        for (s, w) in plan {
            tracing::info!(source = %s, worker = %w, "source bound");
            st.bindings.insert(s, w);
        }
        true
    }

    /// The desired state of one worker.
    fn desired(&self, st: &State, worker: &str) -> AssignRequest {
        let mut req = AssignRequest {
            worker_name: worker.to_string(),
            ..Default::default()
        };
        let Some(source) = st.source_of(worker) else {
            return req;
        };
        let Some(src) = st.sources.get(source).filter(|s| s.cfg.is_some()) else {
            return req;
        };
        req.source_id = source.to_string();
        // The key the stored passwords are sealed under goes with them (none: DM's built-in).
        req.secret_key = crate::password::cluster_key()
            .map(|k| k.to_vec())
            .unwrap_or_default();
        // The stored form is already normalised with the password sealed.
        req.source_yaml = src.rec.yaml.clone();
        req.relay = self.relay_spec(st, source);
        for ((task, s), rec) in &st.subtasks {
            if s != source {
                continue;
            }
            let Some(t) = st.tasks.get(task) else {
                continue;
            };
            if t.cfg.is_none() {
                continue;
            }
            let shard_ops = st
                .shard_locks
                .ops()
                .into_iter()
                .filter(|o| &o.task == task && o.source == source)
                .map(|o| crate::dmrs::ShardOp {
                    lock_id: o.id,
                    target: o.target,
                    ddls: o.ddls,
                    exec: o.exec,
                    sql_op: match &o.sql {
                        Some(x) if x.skip => "skip".into(),
                        Some(_) => "replace".into(),
                        None => String::new(),
                    },
                    sql_op_sqls: o.sql.map(|x| x.sqls).unwrap_or_default(),
                })
                .collect();
            let opt_ops = st
                .opt_locks
                .ops(task, source)
                .into_iter()
                .map(|(up, d)| crate::dmrs::OptOp {
                    up,
                    id: d.id,
                    ddls: d.ddls,
                    conflict: d.conflict,
                })
                .collect();
            req.subtasks.push(SubTaskSpec {
                shard_ops,
                opt_ops,
                name: task.clone(),
                task_yaml: t.rec.yaml.clone(),
                expect: stage_to_pb(rec.expect) as i32,
                start_id: rec.start_id,
                remove_meta: rec.remove_meta,
                config_rev: t.rec.config_rev,
                stage_rev: rec.stage_rev,
            });
        }
        req
    }

    fn client(&self, addr: &str) -> Option<WorkerControlClient<Channel>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(addr) {
            return Some(c.clone());
        }
        let t = self.timings();
        let ch = match crate::rpc::connect_lazy(addr, t.connect_timeout, t.call_timeout) {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!(%addr, "worker address: {e}");
                return None;
            }
        };
        let c = WorkerControlClient::new(ch);
        clients.insert(addr.to_string(), c.clone());
        Some(c)
    }

    /// Pushes every worker its desired state, updates liveness, re-binds sources.
    pub async fn round(&self) {
        let _g = self.round_lock.lock().await;
        let timings = self.timings();
        let calls: Vec<(String, String, AssignRequest)> = {
            let st = self.lock();
            st.workers
                .values()
                .map(|w| {
                    (
                        w.rec.name.clone(),
                        w.rec.addr.clone(),
                        self.desired(&st, &w.rec.name),
                    )
                })
                .collect()
        };
        let futs = calls.into_iter().map(|(name, addr, req)| async move {
            let resp = if let Some(l) = self.local.as_ref().filter(|l| l.name == name) {
                Some(l.assign(req))
            } else if let Some(mut c) = self.client(&addr) {
                match tokio::time::timeout(timings.call_timeout, c.assign(req)).await {
                    Ok(Ok(r)) => Some(r.into_inner()),
                    Ok(Err(e)) => {
                        tracing::debug!(worker = %name, "push failed: {e}");
                        None
                    }
                    Err(_) => None,
                }
            } else {
                None
            };
            if let Some(r) = &resp
                && !r.result
            {
                tracing::warn!(worker = %name, "assign: {}", r.msg);
            }
            (name, resp)
        });
        let answers = futures_util::future::join_all(futs).await;
        let changes = self.change().await;
        self.shard_reports(&answers).await;
        let opt_answered = self.opt_reports(&answers).await;
        let results: Vec<(String, bool)> = answers
            .into_iter()
            .map(|(name, r)| (name, r.is_some()))
            .collect();
        let offline: Vec<(String, String)> = {
            let mut st = self.lock();
            let now = Instant::now();
            for (name, ok) in results {
                if let Some(w) = st.workers.get_mut(&name) {
                    if ok {
                        if !w.online {
                            tracing::info!(worker = %name, "worker online");
                        }
                        w.online = true;
                        w.last_ok = Some(now);
                    } else {
                        let last = w.last_ok.unwrap_or(w.since);
                        if w.online && now.duration_since(last) > timings.offline_after {
                            tracing::warn!(worker = %name, "worker offline");
                            w.online = false;
                        } else if !w.online
                            && w.last_ok.is_none()
                            && now.duration_since(w.since) > timings.offline_after
                        {
                            w.online = false;
                        }
                    }
                }
            }
            // Sources of offline workers (after the grace period) are unbound.
            st.bindings
                .iter()
                .filter(|(_, w)| {
                    st.workers.get(*w).is_none_or(|e| {
                        !e.online
                            && now.duration_since(e.last_ok.unwrap_or(e.since))
                                > timings.offline_after
                    })
                })
                .map(|(s, w)| (s.clone(), w.clone()))
                .collect()
        };
        // An optimistic DDL answered: send the answer at once (the worker waits for it).
        let mut changed = opt_answered;
        if !offline.is_empty() {
            let ops = offline
                .iter()
                .map(|(s, _)| store::del_op(store::BINDINGS, s))
                .collect();
            // On failure the bindings stay (in memory and on disk) until the next round.
            if self.persist(ops).await.is_ok() {
                let mut st = self.lock();
                for (s, w) in offline {
                    tracing::warn!(source = %s, worker = %w, "worker is offline: unbinding its source");
                    st.bindings.remove(&s);
                }
                changed = true;
            }
        }
        if self.bind_free().await {
            changed = true;
        }
        drop(changes);
        if changed {
            // Tell the newly bound workers at once.
            drop(_g);
            Box::pin(self.round()).await;
        }
    }

    /// Pessimistic shard DDL: the workers' synced rounds and done ops (carried by their
    /// Assign answers) move the locks; a changed lock is saved before the next push sends its
    /// ops. The caller holds [`Scheduler::change`].
    async fn shard_reports(&self, answers: &[(String, Option<crate::dmrs::AssignResponse>)]) {
        use crate::master::shardddl::Info;
        if !answers.iter().any(|(_, r)| {
            r.as_ref()
                .is_some_and(|r| !r.shard_infos.is_empty() || !r.shard_done.is_empty())
        }) {
            // Nothing to report this round (the usual case): no copy of the locks.
            return;
        }
        let mut ops = Vec::new();
        {
            let mut st = self.lock();
            let before = st.shard_locks.clone();
            for (worker, r) in answers {
                let Some(r) = r else { continue };
                if r.shard_infos.is_empty() && r.shard_done.is_empty() {
                    continue;
                }
                let Some(source) = st.source_of(worker).map(str::to_string) else {
                    continue;
                };
                for d in &r.shard_done {
                    if st.shard_locks.done(&d.lock_id, &source) {
                        tracing::info!(lock = %d.lock_id, "shard DDL lock resolved");
                    }
                }
                for i in &r.shard_infos {
                    let sources = st.task_sources(&i.task);
                    let info = Info {
                        task: i.task.clone(),
                        source: source.clone(),
                        target: i.target.clone(),
                        ddls: i.ddls.clone(),
                    };
                    let known = st
                        .shard_locks
                        .locks
                        .get(&crate::master::shardddl::lock_id(&i.task, &i.target))
                        .is_some_and(|l| l.ready.get(&source).copied().unwrap_or(false));
                    match st.shard_locks.try_sync(info, &sources) {
                        Ok((id, synced)) if !known => {
                            tracing::info!(lock = %id, source = %source, synced, ddls = ?i.ddls, "shard DDL lock: a source reached the DDLs");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(source = %source, "shard DDL lock: {e}"),
                    }
                }
            }
            if st.shard_locks != before {
                for (id, l) in &st.shard_locks.locks {
                    if before.locks.get(id) != Some(l)
                        && let Ok(op) = store::put_op(store::SHARD_LOCKS, id, l)
                    {
                        ops.push(op);
                    }
                }
                for id in before.locks.keys() {
                    if !st.shard_locks.locks.contains_key(id) {
                        ops.push(store::del_op(store::SHARD_LOCKS, id));
                    }
                }
                for k in before.sql_ops.keys() {
                    if !st.shard_locks.sql_ops.contains_key(k) {
                        ops.push(store::del_op(store::SHARD_SQL_OPS, k));
                    }
                }
            }
        }
        let _ = self.persist(ops).await;
    }

    /// Optimistic shard DDL: the workers' shard tables and DDLs (carried by their Assign
    /// answers) move the locks; a changed lock is saved before the next push sends its
    /// answers. Returns whether a DDL was answered. The caller holds [`Scheduler::change`].
    async fn opt_reports(&self, answers: &[(String, Option<crate::dmrs::AssignResponse>)]) -> bool {
        use crate::master::optimist::OptInfo;
        use crate::worker::units::sync::schemacmp::Schema;
        if !answers.iter().any(|(_, r)| {
            r.as_ref()
                .is_some_and(|r| !r.opt_infos.is_empty() || !r.opt_tables.is_empty())
        }) {
            return false;
        }
        let parse = |s: &str| -> Option<Schema> {
            if s.is_empty() {
                return None;
            }
            serde_json::from_str(s).ok()
        };
        let mut answered = false;
        let mut ops = Vec::new();
        {
            let mut st = self.lock();
            let before = st.opt_locks.clone();
            for (worker, r) in answers {
                let Some(r) = r else { continue };
                let Some(source) = st.source_of(worker).map(str::to_string) else {
                    continue;
                };
                for t in &r.opt_tables {
                    let ups: Vec<(String, Option<Schema>)> = t
                        .ups
                        .iter()
                        .enumerate()
                        .map(|(i, u)| (u.clone(), t.schemas.get(i).and_then(|s| parse(s))))
                        .collect();
                    st.opt_locks
                        .report_tables(&t.task, &source, &t.target, &ups);
                    st.opt_reported.insert((t.task.clone(), source.clone()));
                }
                for i in &r.opt_infos {
                    let all_reported = st
                        .task_sources(&i.task)
                        .iter()
                        .all(|s| st.opt_reported.contains(&(i.task.clone(), s.clone())));
                    if !all_reported && !i.ignore_conflict {
                        // Answered once every source of the task has said which shard tables
                        // it has (after a master restart, within a push or two).
                        continue;
                    }
                    let info = OptInfo {
                        task: i.task.clone(),
                        source: source.clone(),
                        up: i.up.clone(),
                        target: i.target.clone(),
                        id: i.id.clone(),
                        ddls: i.ddls.clone(),
                        before: parse(&i.before).unwrap_or_default(),
                        after: parse(&i.after).unwrap_or_default(),
                        ignore_conflict: i.ignore_conflict,
                        dropped: i.dropped,
                    };
                    let d = st.opt_locks.try_sync(&info);
                    if d.conflict.is_empty() {
                        tracing::info!(source = %source, table = %i.up, target = %i.target, ddls = ?d.ddls, "optimistic shard DDL answered");
                    } else {
                        tracing::warn!(source = %source, table = %i.up, target = %i.target, "optimistic shard DDL: {}", d.conflict);
                    }
                    answered = true;
                }
            }
            if st.opt_locks != before {
                for (id, l) in &st.opt_locks.locks {
                    if before.locks.get(id) != Some(l)
                        && let Ok(op) = store::put_op(store::OPT_LOCKS, id, l)
                    {
                        ops.push(op);
                    }
                }
                for id in before.locks.keys() {
                    if !st.opt_locks.locks.contains_key(id) {
                        ops.push(store::del_op(store::OPT_LOCKS, id));
                    }
                }
            }
        }
        // The immediate push that sends an answer follows only a successful save (a master
        // restart then keeps every answer it gave).
        self.persist(ops).await.is_ok() && answered
    }

    /// The push loop; runs forever.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.round().await;
            tokio::time::sleep(self.timings().push_interval).await;
        }
    }

    /// A worker's QueryStatus (None when it cannot be asked).
    pub async fn query_worker(&self, worker: &str, task: &str) -> Option<pb::QueryStatusResponse> {
        self.query_worker_or_why(worker, task).await.ok()
    }

    /// A worker's QueryStatus, or why it could not be asked.
    pub async fn query_worker_or_why(
        &self,
        worker: &str,
        task: &str,
    ) -> Result<pb::QueryStatusResponse, String> {
        let req = pb::QueryStatusRequest {
            name: task.to_string(),
        };
        self.call_worker(
            worker,
            |l| async move { l.query_status(task).await },
            |mut c| async move { c.query_status(req).await },
        )
        .await
    }

    /// One call to `worker`: `local` when it is the master's own worker, else `remote` over
    /// gRPC within the call timeout; Err says what failed.
    pub(crate) async fn call_worker<T, LF, RF>(
        &self,
        worker: &str,
        local: impl FnOnce(Arc<Worker>) -> LF,
        remote: impl FnOnce(WorkerControlClient<Channel>) -> RF,
    ) -> Result<T, String>
    where
        LF: std::future::Future<Output = T>,
        RF: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        if let Some(l) = self.local.clone().filter(|l| l.name == worker) {
            return Ok(local(l).await);
        }
        let c = self.worker_client(worker)?;
        match tokio::time::timeout(self.timings().call_timeout, remote(c)).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(e)) => Err(format!("dm-worker {worker}: {}", e.message())),
            Err(_) => Err(format!("dm-worker {worker} did not answer in time")),
        }
    }

    /// Sends a handle-error request to a worker (the master's own when it runs one).
    pub async fn handle_error_on(
        &self,
        worker: &str,
        req: pb::HandleWorkerErrorRequest,
    ) -> Result<pb::CommonWorkerResponse, String> {
        let r = req.clone();
        self.call_worker(
            worker,
            |l| async move { l.handle_error(r) },
            |mut c| async move { c.handle_error(req).await },
        )
        .await
    }

    /// A client of `worker` (by its registered address).
    pub(crate) fn worker_client(
        &self,
        worker: &str,
    ) -> Result<WorkerControlClient<Channel>, String> {
        let addr = self
            .lock()
            .workers
            .get(worker)
            .map(|w| w.rec.addr.clone())
            .ok_or_else(|| format!("dm-worker {worker} is not registered"))?;
        self.client(&addr)
            .ok_or_else(|| format!("dm-worker {worker} at {addr} cannot be reached"))
    }

    /// Sends an operate-schema request to a worker (the master's own when it runs one).
    pub async fn operate_schema_on(
        &self,
        worker: &str,
        req: pb::OperateWorkerSchemaRequest,
    ) -> Result<pb::CommonWorkerResponse, String> {
        let r = req.clone();
        self.call_worker(
            worker,
            |l| async move { l.operate_schema(r).await },
            |mut c| async move { c.operate_schema(req).await },
        )
        .await
    }

    /// The stage of (task, source) as its worker reports it: None when the worker has no
    /// such subtask; Err when the source is unbound or the worker cannot be asked.
    pub async fn subtask_status(
        &self,
        task: &str,
        source: &str,
    ) -> Result<Option<pb::SubTaskStatus>, MasterError> {
        let worker = self
            .lock()
            .worker_of(source)
            .map(|s| s.to_string())
            .ok_or_else(|| MasterError::SourceUnbound(source.to_string()))?;
        let r =
            self.query_worker(&worker, task)
                .await
                .ok_or_else(|| MasterError::WorkerSilent {
                    worker: worker.clone(),
                    source_id: source.to_string(),
                })?;
        if r.source_status.as_ref().is_none_or(|s| s.source != source) {
            return Ok(None);
        }
        Ok(r.sub_task_status.into_iter().find(|s| {
            s.name == task && !matches!(s.status, Some(pb::sub_task_status::Status::Msg(_)))
        }))
    }

    /// Waits (≤ `timeout`) until each source's subtask reaches `expect` (None = gone).
    /// Returns per-source messages for those that did not.
    pub async fn wait_stage(
        &self,
        task: &str,
        sources: &[String],
        expect: Option<ExpectedStage>,
        timeout: Duration,
    ) -> BTreeMap<String, String> {
        let expect = expect.map(stage_to_pb);
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = BTreeMap::new();
            for s in sources {
                match self.subtask_status(task, s).await {
                    Err(e) => {
                        pending.insert(s.clone(), e.to_string());
                    }
                    Ok(st) => {
                        let stage = st.as_ref().map(|x| x.stage);
                        let errors: Vec<String> = st
                            .as_ref()
                            .and_then(|x| x.result.as_ref())
                            .map(|r| {
                                r.errors
                                    .iter()
                                    .map(|e| format!("[code={}:class={}:scope={}:level={}], Message: {}, RawCause: {}, Workaround: {}", e.err_code, e.err_class, e.err_scope, e.err_level, e.message, e.raw_cause, e.workaround))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let ok = match expect {
                            None => stage.is_none(),
                            Some(Stage::Running) => {
                                stage == Some(Stage::Running as i32)
                                    || stage == Some(Stage::Finished as i32)
                            }
                            Some(e) => stage == Some(e as i32),
                        };
                        if !ok {
                            if expect == Some(Stage::Running)
                                && stage == Some(Stage::Paused as i32)
                                && !errors.is_empty()
                            {
                                // Paused by an error: report it now.
                                return BTreeMap::from([(s.clone(), errors.join("; "))]);
                            }
                            pending.insert(
                                s.clone(),
                                format!(
                                    "subtask is {} (expected {})",
                                    stage
                                        .and_then(|x| Stage::try_from(x).ok())
                                        .map(|x| x.as_str_name())
                                        .unwrap_or("absent"),
                                    expect.map(|e| e.as_str_name()).unwrap_or("absent")
                                ),
                            );
                        }
                    }
                }
            }
            if pending.is_empty() || Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Registers (or re-registers) a worker process.
    pub async fn register(&self, name: &str, addr: &str) -> Result<(), MasterError> {
        if self.local.as_ref().is_some_and(|l| l.name == name) {
            return Err(MasterError::WorkerNameTaken(name.to_string()));
        }
        // An address the master could never push to is refused now, not retried every round.
        let t = self.timings();
        crate::rpc::endpoint(addr, t.connect_timeout, t.call_timeout)?;
        let rec = WorkerRecord {
            name: name.to_string(),
            addr: addr.to_string(),
        };
        let _changes = self.change().await;
        if self.lock().workers.get(name).is_some_and(|w| w.rec == rec) {
            return Ok(());
        }
        self.persist(vec![store::put_op(store::WORKERS, name, &rec)?])
            .await?;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr);
        tracing::info!(worker = %name, %addr, "worker registered");
        self.lock().workers.insert(
            name.to_string(),
            WorkerEntry {
                rec,
                online: false,
                last_ok: None,
                since: Instant::now(),
            },
        );
        Ok(())
    }
}
