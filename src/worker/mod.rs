//! dm-worker: runs the subtasks of the one source the master bound to it.
//!
//! The master pushes the worker's whole desired state ([`crate::dmrs::AssignRequest`]: the
//! bound source and its subtasks with their expected stages) about once a second; the worker
//! makes its subtasks match it (level-triggered) and answers status queries. A ticker reaps
//! finished units, runs auto-resumes, and fences the worker: without a push for
//! [`FENCE_AFTER`] it stops everything, so a source is never run by two workers once the
//! master has re-bound it (and should an old run still write, the downstream refuses it: see
//! the owner epoch in [`units::sync::checkpoint`]). The worker decides nothing about
//! scheduling. Stages change only in [`subtask`]; the units are built by a [`units::Factory`]
//! (the real units, or scripted ones in the stage-machine and fencing tests).
//!
//! The bound source's relay log ([`crate::relay`]) runs here too, following the source file's
//! `enable-relay` and the master's relay wishes (start/stop/pause/resume/switch, with every
//! push); the subtasks' Sync units read it, `purge-relay` and the background purge never
//! remove what a subtask still reads.
//!
//! The passwords in a push are sealed under the master's `--secret-key-path` key when it has
//! one; the push that binds a source carries that key, which the worker takes as its cluster
//! key ([`crate::password::set_cluster_key`]) before reading the configs.
//!
//! Used in-process by `dm-master --with-worker` and by `src/bin/dm-worker.rs`.

pub mod config;
pub mod error;
pub mod failpoint;
pub mod subtask;
pub mod units;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::dmrs::{self, AssignRequest, AssignResponse};
use crate::pb::{self, Stage};
use crate::rpc::incoming;
use subtask::{Expect, SubTask};
use units::{Factory, UnitKind};

/// Without a push from the master for this long, the worker stops its subtasks.
pub const FENCE_AFTER: Duration = Duration::from_secs(6);
/// How often the ticker runs.
pub const TICK: Duration = Duration::from_millis(100);

struct Bound {
    source_id: String,
    cfg: Arc<SourceConfig>,
}

/// The same source for the subtasks: equal but for the password's sealing and `enable-relay`
/// (start-relay / stop-relay change it; the relay follows it without restarting the subtasks).
fn same_config(a: &SourceConfig, b: &SourceConfig) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.from.password = a.from.plain_password();
    b.from.password = b.from.plain_password();
    for c in [&mut a, &mut b] {
        relay_keys_cleared(c);
    }
    a == b
}

/// The source without its relay keys (start-relay, stop-relay and update-relay change them; the
/// relay follows without restarting the subtasks).
fn relay_keys_cleared(c: &mut SourceConfig) {
    c.enable_relay = false;
    c.relay_dir = String::new();
    c.relay_binlog_name = String::new();
    c.relay_binlog_gtid = String::new();
    c.purge = Default::default();
}

/// The relay keys of two configs differ (the relay restarts with the new ones).
fn relay_keys_differ(a: &SourceConfig, b: &SourceConfig) -> bool {
    a.relay_dir != b.relay_dir
        || a.relay_binlog_name != b.relay_binlog_name
        || a.relay_binlog_gtid != b.relay_binlog_gtid
        || a.purge != b.purge
}

#[derive(Default)]
struct Inner {
    bound: Option<Bound>,
    subtasks: BTreeMap<String, SubTask>,
    /// Subtasks being stopped (a stop-task, or replaced by a new start): their units must
    /// end before a subtask of the same name starts again.
    retiring: Vec<SubTask>,
    /// When the master last pushed (for fencing).
    last_assign: Option<Instant>,
    /// The bound source's relay log, when it is on.
    relay: Option<Arc<crate::relay::Relay>>,
    /// The relay spec revision last carried out (a change restarts a relay paused by an error).
    relay_rev: u64,
    /// When the relay's background purge last ran.
    last_purge: Option<Instant>,
}

pub struct Worker {
    pub name: String,
    inner: Mutex<Inner>,
    /// The relay, shared with the subtasks (their Sync units read it).
    relay_slot: crate::relay::Slot,
    /// Builds the units of each subtask run (the real units; tests pass scripted ones).
    factory: Factory,
}

/// How long query-status waits for a just-started unit to know its positions.
pub const STATUS_READY_WAIT: Duration = Duration::from_secs(2);

impl Worker {
    pub fn new(name: &str) -> Arc<Worker> {
        Self::with_factory(name, units::real_factory())
    }

    /// A worker whose subtasks run the units `factory` builds.
    pub fn with_factory(name: &str, factory: Factory) -> Arc<Worker> {
        Arc::new(Worker {
            name: name.to_string(),
            inner: Mutex::new(Inner::default()),
            relay_slot: Default::default(),
            factory,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the worker match the master's desired state.
    pub fn assign(&self, req: AssignRequest) -> AssignResponse {
        self.assign_at(req, Instant::now())
    }

    /// [`Worker::assign`] received at `now` (tests drive the fencing clock).
    pub fn assign_at(&self, req: AssignRequest, now: Instant) -> AssignResponse {
        // The key the passwords of this push are sealed under (the master's --secret-key-path).
        if !req.source_id.is_empty() {
            match crate::password::key_from_bytes(&req.secret_key) {
                Ok(k) if k != crate::password::cluster_key() => {
                    tracing::info!(
                        with_key = k.is_some(),
                        "the master's secret key for passwords changed"
                    );
                    crate::password::set_cluster_key(k);
                }
                Ok(_) => {}
                Err(e) => {
                    return AssignResponse {
                        result: false,
                        msg: format!("secret key from the master: {e}"),
                        ..Default::default()
                    };
                }
            }
        }
        let mut inner = self.lock();
        inner.last_assign = Some(now);
        let mut msgs = Vec::new();

        // The bound source.
        // The master re-encrypts the password each time (random IV): compare configs with the
        // password in clear, not the text.
        let incoming = if req.source_id.is_empty() {
            None
        } else {
            match crate::config::parse_source(req.source_yaml.as_bytes()) {
                Ok(l) => Some(l.config),
                Err(e) => {
                    return AssignResponse {
                        result: false,
                        msg: format!("source {}: {e}", req.source_id),
                        ..Default::default()
                    };
                }
            }
        };
        let same_source = match (&inner.bound, &incoming) {
            (Some(b), Some(c)) => b.source_id == req.source_id && same_config(&b.cfg, c),
            (None, None) => true,
            _ => false,
        };
        if same_source
            && let (Some(b), Some(c)) = (inner.bound.as_mut(), incoming.as_ref())
            && (b.cfg.enable_relay != c.enable_relay || relay_keys_differ(&b.cfg, c))
        {
            b.cfg = Arc::new(c.clone());
        }
        if !same_source {
            let old: Vec<String> = inner.subtasks.keys().cloned().collect();
            for name in old {
                if let Some(mut st) = inner.subtasks.remove(&name) {
                    st.stop();
                    inner.retiring.push(st);
                }
            }
            inner.bound = None;
            if let Some(r) = inner.relay.take() {
                r.stop();
                *self.relay_slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            if let Some(cfg) = incoming {
                tracing::info!(worker = %self.name, source = %req.source_id, "bound to source");
                inner.bound = Some(Bound {
                    source_id: req.source_id.clone(),
                    cfg: Arc::new(cfg),
                });
            }
        }
        let Some(source) = inner.bound.as_ref().map(|b| b.cfg.clone()) else {
            return AssignResponse {
                result: true,
                ..Default::default()
            };
        };

        self.follow_relay(&mut inner, &source, req.relay.as_ref());

        // Subtasks no longer wanted: stop.
        let wanted: std::collections::BTreeSet<&str> =
            req.subtasks.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<String> = inner
            .subtasks
            .keys()
            .filter(|n| !wanted.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut st) = inner.subtasks.remove(&name) {
                tracing::info!(task = %name, "stopping subtask");
                st.stop();
                inner.retiring.push(st);
            }
        }

        for spec in &req.subtasks {
            if let Err(m) = self.apply_spec(&mut inner, &source, spec) {
                msgs.push(format!("{}: {m}", spec.name));
            }
        }
        // Pessimistic shard DDL: the master's ops in, the synced rounds and done ops out.
        let mut shard_infos = Vec::new();
        let mut shard_done = Vec::new();
        let mut opt_infos = Vec::new();
        let mut opt_tables = Vec::new();
        for spec in &req.subtasks {
            let Some(st) = inner.subtasks.get(&spec.name) else {
                continue;
            };
            let sync = st.shard_sync();
            sync.set_ops(spec.shard_ops.iter().map(|o| {
                (
                    o.target.clone(),
                    units::sync::shard::LockOp {
                        lock_id: o.lock_id.clone(),
                        ddls: o.ddls.clone(),
                        exec: o.exec,
                        sql: match o.sql_op.as_str() {
                            "skip" => Some(units::sync::ops::Action::Skip),
                            "replace" => {
                                Some(units::sync::ops::Action::Replace(o.sql_op_sqls.clone()))
                            }
                            _ => None,
                        },
                    },
                )
            }));
            for (target, ddls) in sync.infos(&spec.name) {
                shard_infos.push(dmrs::ShardInfo {
                    task: spec.name.clone(),
                    target,
                    ddls,
                });
            }
            for lock_id in sync.done() {
                shard_done.push(dmrs::ShardDone {
                    task: spec.name.clone(),
                    lock_id,
                });
            }
            // Optimistic shard DDL: answers in, DDLs and the groups' tables out.
            sync.set_opt_ops(spec.opt_ops.iter().cloned());
            opt_infos.extend(sync.opt_infos());
            opt_tables.extend(sync.opt_tables());
        }
        AssignResponse {
            result: msgs.is_empty(),
            msg: msgs.join("; "),
            shard_infos,
            shard_done,
            opt_infos,
            opt_tables,
        }
    }

    /// The relay log follows the source (`enable-relay`) and the master (start-relay,
    /// stop-relay, pause-relay, resume-relay).
    fn follow_relay(
        &self,
        inner: &mut Inner,
        source: &Arc<SourceConfig>,
        spec: Option<&dmrs::RelaySpec>,
    ) {
        let wanted = source.enable_relay || spec.is_some_and(|s| s.enabled);
        if !wanted {
            if let Some(r) = inner.relay.take() {
                r.stop();
                *self.relay_slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            return;
        }
        if inner
            .relay
            .as_ref()
            .is_some_and(|r| relay_keys_differ(r.config(), source))
            && let Some(old) = inner.relay.take()
        {
            // update-relay: the relay starts again with the new settings.
            tracing::info!(source = %source.source_id, "relay settings changed: restarting the relay");
            old.stop();
        }
        let relay = inner
            .relay
            .get_or_insert_with(|| crate::relay::Relay::new(source.clone(), &self.name))
            .clone();
        *self.relay_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(relay.clone());
        let rev = spec.map(|s| s.rev).unwrap_or(0);
        let rev_changed = rev != inner.relay_rev;
        inner.relay_rev = rev;
        relay.request_switch(spec.map(|s| s.switch_rev).unwrap_or(0));
        if let Some(s) = spec.filter(|s| s.migrate_rev > 0) {
            relay.request_migrate(s.migrate_rev, &s.migrate_file, s.migrate_pos);
        }
        if spec.is_some_and(|s| s.paused) {
            if relay.stage() == crate::relay::RelayStage::Running {
                relay.pause();
            }
        } else if relay.stage() != crate::relay::RelayStage::Running
            && (!relay.failed() || rev_changed)
        {
            relay.start();
        }
    }

    /// purge-relay on the bound source's relay: refused while a subtask is not syncing or
    /// still reads a file the purge would remove.
    pub async fn purge_relay(&self, req: pb::PurgeRelayRequest) -> pb::CommonWorkerResponse {
        let (source, relay, needed) = {
            let inner = self.lock();
            let source = inner
                .bound
                .as_ref()
                .map(|b| b.source_id.clone())
                .unwrap_or_default();
            (
                source,
                inner.relay.clone(),
                relay_needed(inner.subtasks.values()),
            )
        };
        let answer = |result: bool, msg: String| pb::CommonWorkerResponse {
            result,
            msg,
            source: source.clone(),
            worker: self.name.clone(),
        };
        let Some(relay) = relay else {
            return answer(
                false,
                format!(
                    "relay is not enabled for source {source} on worker {}",
                    self.name
                ),
            );
        };
        if req.filename.is_empty() {
            return answer(
                false,
                format!("[code=30039] request {req:?} not valid: --filename is required"),
            );
        }
        let needed = match needed {
            Ok(n) => n,
            Err(e) => return answer(false, e),
        };
        match relay
            .purge(
                &req.filename,
                &req.sub_dir,
                needed.as_ref().map(|(n, p)| (n.as_str(), p.clone())),
            )
            .await
        {
            Ok(_) => answer(true, String::new()),
            Err(e) => answer(false, e),
        }
    }

    fn apply_spec(
        &self,
        inner: &mut Inner,
        source: &Arc<SourceConfig>,
        spec: &dmrs::SubTaskSpec,
    ) -> Result<(), String> {
        let load = || -> Result<Arc<TaskConfig>, String> {
            crate::config::parse_task(spec.task_yaml.as_bytes())
                .map(|l| Arc::new(l.config))
                .map_err(|e| e.to_string())
        };
        // A new start of the task replaces the old subtask.
        if inner
            .subtasks
            .get(&spec.name)
            .is_some_and(|st| st.start_id != spec.start_id)
            && let Some(mut old) = inner.subtasks.remove(&spec.name)
        {
            old.stop();
            inner.retiring.push(old);
        }
        if !inner.subtasks.contains_key(&spec.name) {
            let cfg = load()?;
            let mut st = SubTask::new(
                &spec.name,
                &self.name,
                source.clone(),
                cfg,
                spec.start_id,
                spec.config_rev,
                spec.stage_rev,
                spec.remove_meta,
                self.factory.clone(),
            );
            st.relay = self.relay_slot.clone();
            inner.subtasks.insert(spec.name.clone(), st);
        }
        let blocked = inner.retiring.iter().any(|r| r.name == spec.name);
        let Some(st) = inner.subtasks.get_mut(&spec.name) else {
            return Ok(());
        };
        if st.config_rev != spec.config_rev {
            let cfg = load()?;
            st.update(cfg, spec.config_rev).map_err(|e| e.to_string())?;
        }
        let user_asked = st.stage_rev != spec.stage_rev;
        st.stage_rev = spec.stage_rev;
        let expect = if spec.expect == Stage::Paused as i32 {
            Expect::Paused
        } else if spec.expect == Stage::Running as i32 {
            Expect::Running
        } else {
            return Ok(());
        };
        st.follow(expect, user_asked, blocked)
            .map_err(|e| e.to_string())
    }

    /// One tick: reap units, auto-resume, start subtasks that waited for a retiring one,
    /// fence when the master is silent.
    pub fn tick(&self) {
        self.tick_at(Instant::now())
    }

    /// [`Worker::tick`] at a given time (tests drive the fencing clock).
    pub fn tick_at(&self, now: Instant) {
        let mut inner = self.lock();
        inner.retiring.retain_mut(|st| !st.reap_at(now));
        let fenced = inner
            .last_assign
            .is_some_and(|t| now.saturating_duration_since(t) > FENCE_AFTER);
        if fenced && (inner.bound.is_some() || !inner.subtasks.is_empty()) {
            tracing::warn!(worker = %self.name, "no word from the master for {:?}: stopping all subtasks", FENCE_AFTER);
            let names: Vec<String> = inner.subtasks.keys().cloned().collect();
            for n in names {
                if let Some(mut st) = inner.subtasks.remove(&n) {
                    st.stop();
                    inner.retiring.push(st);
                }
            }
            inner.bound = None;
        }
        let Inner {
            subtasks, retiring, ..
        } = &mut *inner;
        for st in subtasks.values_mut() {
            st.reap_at(now);
            if !retiring.iter().any(|r| r.name == st.name) {
                // Waited for the old run of the same name: start now.
                st.start_if_new();
            }
        }
        // The relay's background purge, every `purge.interval` seconds.
        if let Some(relay) = inner.relay.clone() {
            let every = Duration::from_secs(relay.config().purge.interval.max(1) as u64);
            if inner
                .last_purge
                .is_none_or(|t| now.saturating_duration_since(t) >= every)
            {
                inner.last_purge = Some(now);
                let needed = relay_needed(inner.subtasks.values());
                drop(inner);
                if let Ok(needed) = needed {
                    relay.auto_purge(needed.as_ref().map(|(_, p)| p));
                }
            }
        }
    }

    /// Runs [`Worker::tick`] forever on the current runtime.
    pub fn spawn_ticker(self: &Arc<Self>) {
        let w = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(TICK);
            loop {
                iv.tick().await;
                match w.upgrade() {
                    Some(w) => w.tick(),
                    None => return,
                }
            }
        });
    }

    /// DM's worker QueryStatus: the source and its subtasks (one task when `name` is set).
    /// A unit that has just started gets up to [`STATUS_READY_WAIT`] to learn its positions,
    /// so a Running Sync unit never shows an empty position.
    pub async fn query_status(&self, name: &str) -> pb::QueryStatusResponse {
        let waiting: Vec<Arc<dyn units::UnitStatus>> = {
            let inner = self.lock();
            inner
                .subtasks
                .values()
                .filter(|st| name.is_empty() || st.name == name)
                .filter(|st| st.is_alive())
                .map(|st| st.unit_status())
                .filter(|u| !u.ready())
                .collect()
        };
        for u in waiting {
            let _ = tokio::time::timeout(STATUS_READY_WAIT, u.wait_ready()).await;
        }
        self.status_now(name)
    }

    /// The status as it is now (no waiting). A run that has just ended is taken first
    /// ([`SubTask::take_ended_run`]): its stage shows now, not at the next tick.
    pub fn status_now(&self, name: &str) -> pb::QueryStatusResponse {
        let mut inner = self.lock();
        let now = Instant::now();
        for st in inner.subtasks.values_mut() {
            if name.is_empty() || st.name == name {
                st.take_ended_run(now);
            }
        }
        let Some(b) = inner.bound.as_ref() else {
            return pb::QueryStatusResponse {
                result: false,
                msg: "[code=40070] no mysql source is being handled in the worker".into(),
                source_status: None,
                sub_task_status: Vec::new(),
            };
        };
        let mut subs = Vec::new();
        for st in inner.subtasks.values() {
            if name.is_empty() || st.name == name {
                subs.push(st.status());
            }
        }
        let msg = if inner.subtasks.is_empty() {
            "no sub task started".to_string()
        } else {
            String::new()
        };
        if !name.is_empty() && subs.is_empty() {
            subs.push(pb::SubTaskStatus {
                name: name.to_string(),
                status: Some(pb::sub_task_status::Status::Msg(format!(
                    "no sub task with name {name} has started"
                ))),
                ..Default::default()
            });
        }
        pb::QueryStatusResponse {
            result: true,
            msg,
            source_status: Some(pb::SourceStatus {
                source: b.source_id.clone(),
                worker: self.name.clone(),
                result: None,
                relay_status: inner.relay.as_ref().map(|r| r.status()),
            }),
            sub_task_status: subs,
        }
    }

    /// DM's worker HandleError for one subtask: sets, reverts or lists an error operator of its
    /// Sync unit (see [`units::sync::ops`]); a subtask paused by an error resumes after a skip,
    /// replace or inject is set (as DM's worker does).
    pub fn handle_error(&self, req: pb::HandleWorkerErrorRequest) -> pb::CommonWorkerResponse {
        use units::sync::ops::{self, Action, Key, Request};
        let mut inner = self.lock();
        let source = inner
            .bound
            .as_ref()
            .map(|b| b.source_id.clone())
            .unwrap_or_default();
        let answer = |result: bool, msg: String| pb::CommonWorkerResponse {
            result,
            msg,
            source: source.clone(),
            worker: self.name.clone(),
        };
        let Some(st) = inner.subtasks.values_mut().find(|s| s.name == req.task) else {
            return answer(
                false,
                format!("[code=40054] sub task with name {} not found", req.task),
            );
        };
        if st.unit() != UnitKind::Sync {
            return answer(
                false,
                format!(
                    "[code=40056] current unit is {} but not Sync: only a Sync unit's errors can be handled",
                    st.unit().to_pb().as_str_name()
                ),
            );
        }
        if !req.dmrs_break_lock.is_empty() {
            // DM v1's break-ddl-lock --exec / --skip, on this worker only.
            let exec = req.dmrs_break_lock == "exec";
            let ids = st.shard_sync().break_locally(&req.task, exec);
            if ids.is_empty() {
                return answer(
                    false,
                    format!(
                        "[code=40061] no shard DDL lock is waiting in sub task {}",
                        req.task
                    ),
                );
            }
            tracing::info!(task = %req.task, locks = ?ids, exec, "break-ddl-lock: the waiting shard DDLs are carried out here");
            return answer(true, String::new());
        }
        let op = pb::ErrorOp::try_from(req.op).unwrap_or(pb::ErrorOp::InvalidErrorOp);
        let key = if !req.dmrs_sql_pattern.is_empty() {
            Some(Key::Pattern(req.dmrs_sql_pattern.clone()))
        } else if !req.binlog_pos.is_empty() {
            match ops::parse_pos(&req.binlog_pos) {
                Ok(p) if req.dmrs_end_position => Some(Key::End(p)),
                Ok(p) => Some(Key::Start(p)),
                Err(e) => {
                    return answer(
                        false,
                        format!(
                            "[code=11118] invalid --binlog-pos {} in handle-error operation: {e}",
                            req.binlog_pos
                        ),
                    );
                }
            }
        } else if req.dmrs_end_position && op == pb::ErrorOp::Inject {
            Some(Key::Next)
        } else {
            None
        };
        let sqls = ops::split_sqls(&req.sqls);
        if matches!(op, pb::ErrorOp::Replace | pb::ErrorOp::Inject)
            && let Some(bad) = sqls.iter().find(|s| !ops::is_ddl(s))
        {
            return answer(
                false,
                format!(
                    "[code=36064] only support replace or inject with DDL currently, but got '{bad}'"
                ),
            );
        }
        let request = match op {
            pb::ErrorOp::Skip => Request::Set(key, Action::Skip),
            pb::ErrorOp::Replace => Request::Set(key, Action::Replace(sqls)),
            pb::ErrorOp::Inject => Request::Set(key, Action::Inject(sqls)),
            pb::ErrorOp::Revert => Request::Revert(key),
            pb::ErrorOp::List => Request::List(key),
            pb::ErrorOp::InvalidErrorOp => {
                return answer(false, format!("[code=36025] op {} not supported", req.op));
            }
        };
        let sets = matches!(request, Request::Set(..));
        match st.error_ops().handle(request, &source) {
            Ok(msg) => {
                if sets && st.paused_by_error() {
                    tracing::info!(task = %st.name, "error operator set: resuming the subtask paused by the error");
                    if let Err(e) = st.resume() {
                        return answer(false, e.to_string());
                    }
                }
                answer(true, msg)
            }
            Err(e) => answer(false, e.to_string()),
        }
    }

    /// DM's worker OperateSchema (`binlog-schema`, `operate-schema`) for one paused subtask:
    /// lists, sets or deletes the tracked schema of an upstream table (see
    /// [`units::sync::schema_ops`]); with `sync` in optimistic mode the master is told the
    /// table's new schema.
    pub async fn operate_schema(
        &self,
        req: pb::OperateWorkerSchemaRequest,
    ) -> pb::CommonWorkerResponse {
        use units::sync::schema_ops::{self, From, Op};
        let (source, found) = {
            let inner = self.lock();
            let source = inner
                .bound
                .as_ref()
                .map(|b| b.source_id.clone())
                .unwrap_or_default();
            let found = inner
                .subtasks
                .values()
                .find(|s| s.name == req.task)
                .map(|st| {
                    (
                        st.stage(),
                        st.unit(),
                        st.cfg.clone(),
                        st.source.clone(),
                        st.shard_sync(),
                    )
                });
            (source, found)
        };
        let answer = |result: bool, msg: String| pb::CommonWorkerResponse {
            result,
            msg,
            source: source.clone(),
            worker: self.name.clone(),
        };
        let Some((stage, unit, cfg, src, sync)) = found else {
            return answer(
                false,
                format!("[code=40054] sub task with name {} not found", req.task),
            );
        };
        if stage != pb::Stage::Paused {
            return answer(
                false,
                format!(
                    "[code=40051] current stage is {} but not paused, invalid",
                    stage.as_str_name()
                ),
            );
        }
        if unit != UnitKind::Sync {
            return answer(
                false,
                format!(
                    "[code=40056] current unit is {} but not Sync: the schema tracker belongs to the Sync unit",
                    unit.to_pb().as_str_name()
                ),
            );
        }
        let t = crate::rules::TableName::new(req.database.clone(), req.table.clone());
        let op = match pb::SchemaOp::try_from(req.op).unwrap_or(pb::SchemaOp::InvalidSchemaOp) {
            pb::SchemaOp::GetSchema | pb::SchemaOp::ListSchema => Op::List,
            pb::SchemaOp::RemoveSchema => Op::Delete,
            pb::SchemaOp::SetSchema if req.from_source => Op::Update(From::Source),
            pb::SchemaOp::SetSchema if req.from_target => Op::Update(From::Target),
            pb::SchemaOp::SetSchema => Op::Update(From::Text(req.schema.clone())),
            other => {
                return answer(
                    false,
                    format!(
                        "schema op {} is not supported by dm-rs",
                        other.as_str_name()
                    ),
                );
            }
        };
        match schema_ops::operate(&cfg, &src, &op, &t).await {
            Ok(done) => {
                if req.sync
                    && cfg.shard_mode == "optimistic"
                    && let (Some(table), Some(target)) = (&done.table, &done.target)
                {
                    let after = table
                        .to_schema()
                        .and_then(|s| serde_json::to_string(&s).ok())
                        .unwrap_or_default();
                    let id = format!(
                        "binlog-schema-{}",
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_nanos())
                            .unwrap_or_default()
                    );
                    sync.opt_request(dmrs::OptInfo {
                        task: req.task.clone(),
                        up: t.quoted(),
                        target: target.quoted(),
                        id,
                        ddls: Vec::new(),
                        before: String::new(),
                        after,
                        ignore_conflict: true,
                        dropped: false,
                    });
                    tracing::info!(task = %req.task, table = %t.quoted(), "binlog-schema --sync: the master is told the table's new schema");
                }
                tracing::info!(task = %req.task, table = %t.quoted(), op = ?op, "binlog-schema done");
                answer(true, done.msg)
            }
            Err(e) => answer(false, e),
        }
    }

    /// The bound source, if any.
    pub fn source(&self) -> Option<String> {
        self.lock().bound.as_ref().map(|b| b.source_id.clone())
    }
}

/// The worker's gRPC face (`dmrs.WorkerControl`).
pub struct ControlService(pub Arc<Worker>);

#[tonic::async_trait]
impl dmrs::worker_control_server::WorkerControl for ControlService {
    async fn assign(
        &self,
        req: tonic::Request<AssignRequest>,
    ) -> Result<tonic::Response<AssignResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.assign(req.into_inner())))
    }

    async fn query_status(
        &self,
        req: tonic::Request<pb::QueryStatusRequest>,
    ) -> Result<tonic::Response<pb::QueryStatusResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.0.query_status(&req.into_inner().name).await,
        ))
    }

    async fn handle_error(
        &self,
        req: tonic::Request<pb::HandleWorkerErrorRequest>,
    ) -> Result<tonic::Response<pb::CommonWorkerResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.handle_error(req.into_inner())))
    }

    async fn purge_relay(
        &self,
        req: tonic::Request<pb::PurgeRelayRequest>,
    ) -> Result<tonic::Response<pb::CommonWorkerResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.0.purge_relay(req.into_inner()).await,
        ))
    }

    async fn operate_schema(
        &self,
        req: tonic::Request<pb::OperateWorkerSchemaRequest>,
    ) -> Result<tonic::Response<pb::CommonWorkerResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.0.operate_schema(req.into_inner()).await,
        ))
    }
}

/// A dm-worker process: serves WorkerControl on `addr` and registers with the master at
/// `join` (retrying until the master answers), then runs until the process is stopped.
/// Serves the worker on `addr` and registers with the master at `join` as `advertise` (the
/// address the master calls it at).
pub async fn run_process(
    name: &str,
    addr: &str,
    advertise: &str,
    join: &str,
) -> anyhow::Result<()> {
    let worker = Worker::new(name);
    worker.spawn_ticker();
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| anyhow::anyhow!("--worker-addr {addr}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(sock)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {addr}: {e}"))?;
    tracing::info!(worker = %name, %addr, "dm-worker listening");
    let svc = dmrs::worker_control_server::WorkerControlServer::new(ControlService(worker.clone()));
    let server = tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming(incoming(listener));
    let reg = register_loop(name.to_string(), advertise.to_string(), join.to_string());
    tokio::select! {
        r = server => r.map_err(|e| anyhow::anyhow!("worker server: {e}")),
        _ = reg => Ok(()),
    }
}

/// Registers with the master every 3 s, for as long as the worker runs (a restarted master
/// learns of the worker again at the next attempt). Each attempt has a connect and a request
/// timeout, so an unreachable master delays nothing. A success is logged at INFO only the
/// first time and after a failure (DEBUG otherwise), so the log does not repeat it every 3 s.
async fn register_loop(name: String, addr: String, join: String) {
    const EVERY: Duration = Duration::from_secs(3);
    let mut registered = false;
    loop {
        match crate::rpc::connect(&join, crate::rpc::CONNECT_TIMEOUT, EVERY).await {
            Ok(ch) => {
                let r = crate::pb::master_client::MasterClient::new(ch)
                    .register_worker(pb::RegisterWorkerRequest {
                        name: name.clone(),
                        address: addr.clone(),
                    })
                    .await;
                match r {
                    Ok(resp) if resp.get_ref().result => {
                        if registered {
                            tracing::debug!(worker = %name, master = %join, "registered with the master");
                        } else {
                            tracing::info!(worker = %name, master = %join, "registered with the master");
                        }
                        registered = true;
                    }
                    Ok(resp) => {
                        registered = false;
                        tracing::warn!(worker = %name, "master refused registration: {}", resp.get_ref().msg)
                    }
                    Err(e) => {
                        registered = false;
                        tracing::warn!(worker = %name, "register: {e}")
                    }
                }
            }
            Err(e) => {
                registered = false;
                tracing::warn!(worker = %name, master = %join, "cannot reach the master: {e}")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// The earliest relay position the subtasks read from (with the subtask), or Err (DM's 30037)
/// while one is not syncing (new, paused, or still dumping/loading: its start is not known).
fn relay_needed<'a>(
    subs: impl Iterator<Item = &'a SubTask>,
) -> Result<Option<(String, crate::binlog::Position)>, String> {
    let mut needed: Option<(String, crate::binlog::Position)> = None;
    for st in subs {
        let (name, stage, unit) = (&st.name, st.stage(), st.unit());
        if matches!(stage, Stage::New | Stage::Paused) || unit != UnitKind::Sync {
            return Err(format!(
                "[code=30037] relay log purge is forbidden temporarily, because sub task {name} current stage is {} (unit {})",
                stage.as_str_name(),
                unit.to_pb().as_str_name()
            ));
        }
        if let Some(pb::sub_task_status::Status::Sync(s)) = &st.status().status
            && let Some(p) = parse_dm_position(&s.syncer_binlog)
            && needed.as_ref().is_none_or(|(_, n)| p < *n)
        {
            needed = Some((name.clone(), p));
        }
    }
    Ok(needed)
}

/// DM's `(file, pos)` text as a position.
fn parse_dm_position(s: &str) -> Option<crate::binlog::Position> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (file, pos) = inner.rsplit_once(',')?;
    Some(crate::binlog::Position {
        file: file.trim().to_string(),
        pos: pos.trim().parse().ok()?,
    })
}
