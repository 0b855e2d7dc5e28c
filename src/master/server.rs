//! `pb.Master` over gRPC: DM's RPCs on top of the [`Scheduler`]. Each handler checks the
//! request, changes the state (written through to the store), pushes the affected workers at
//! once and, for task operations, waits until the workers report the expected stage (as DM's
//! master does), then answers with DM's response shapes and messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::scheduler::{Scheduler, SourceEntry, TaskEntry, load_source, load_task};
use super::store::{self, SourceRecord, SubTaskRecord, TaskRecord};
use crate::config::changes::non_updatable_changes;
use crate::config::task::TaskConfig;
use crate::pb::{self, Stage, TaskOp, master_server::Master};

/// How long a task operation waits for the workers (DM: 10 polls, 1 s apart).
pub const WAIT: Duration = Duration::from_secs(10);

pub struct MasterService {
    pub sched: Arc<Scheduler>,
    pub name: String,
    pub addr: String,
}

type Res<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> Res<T> {
    Ok(Response::new(t))
}

fn cwr(
    result: bool,
    msg: impl Into<String>,
    source: &str,
    worker: &str,
) -> pb::CommonWorkerResponse {
    pb::CommonWorkerResponse {
        result,
        msg: msg.into(),
        source: source.to_string(),
        worker: worker.to_string(),
    }
}

/// Adds the entries of `from` that `into` lacks (existing ones stay as they are).
fn merge_missing<V: Clone>(into: &mut BTreeMap<String, V>, from: &BTreeMap<String, V>) {
    for (k, v) in from {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

impl MasterService {
    fn parse_task(&self, yaml: &str) -> Result<TaskConfig, String> {
        load_task(yaml)
    }

    /// Pushes now and waits for the stage on each source; builds DM's per-source answers.
    async fn push_and_wait(
        &self,
        task: &str,
        sources: &[String],
        expect: Option<Stage>,
    ) -> (bool, Vec<pb::CommonWorkerResponse>) {
        self.sched.round().await;
        let failed = self.sched.wait_stage(task, sources, expect, WAIT).await;
        let st = self.sched.lock();
        let mut all = true;
        let out = sources
            .iter()
            .map(|s| {
                let w = st.worker_of(s).unwrap_or("").to_string();
                match failed.get(s) {
                    Some(m) => {
                        all = false;
                        cwr(false, m.clone(), s, &w)
                    }
                    None => cwr(true, "", s, &w),
                }
            })
            .collect();
        (all, out)
    }
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn start_task(&self, req: Request<pb::StartTaskRequest>) -> Res<pb::StartTaskResponse> {
        let req = req.into_inner();
        let fail = |msg: String| pb::StartTaskResponse {
            result: false,
            msg,
            sources: vec![],
        };
        let cfg = match self.parse_task(&req.task) {
            Ok(c) => c,
            Err(e) => return ok(fail(e)),
        };
        if cfg.task_mode != "incremental" {
            return ok(fail(format!(
                "task-mode {} is not supported by dm-rs yet: only `incremental` (binlog replication from meta) runs; use DM's dump/load or mysqldump for the initial copy",
                cfg.task_mode
            )));
        }
        let task_sources: Vec<String> = cfg.instances().map(|i| i.source_id.clone()).collect();
        let sources: Vec<String> = if req.sources.is_empty() {
            task_sources.clone()
        } else {
            let unknown: Vec<&String> = req
                .sources
                .iter()
                .filter(|s| !task_sources.contains(s))
                .collect();
            if !unknown.is_empty() {
                return ok(fail(format!(
                    "[code=46017] sources {unknown:?} need to be operate not exist in task {}",
                    cfg.name
                )));
            }
            req.sources.clone()
        };
        // Checks that need the cluster's state.
        let precheck_targets = {
            let st = self.sched.lock();
            let missing: Vec<&String> = sources
                .iter()
                .filter(|s| !st.sources.contains_key(*s))
                .collect();
            if !missing.is_empty() {
                return ok(fail(format!(
                    "[code=20031] source {} in deployment configuration not found: create it first with `operate-source create <source.yaml>`",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let unbound: Vec<&String> = sources
                .iter()
                .filter(|s| st.worker_of(s).is_none())
                .collect();
            if !unbound.is_empty() {
                return ok(fail(format!(
                    "[code=46009] sources {unbound:?} have not bound: no free dm-worker is online (start one with `dm-worker --join {}`, or check `list-member`)",
                    self.addr
                )));
            }
            let existing: Vec<&String> = sources
                .iter()
                .filter(|s| st.subtasks.contains_key(&(cfg.name.clone(), (*s).clone())))
                .collect();
            if !existing.is_empty() && existing.len() == sources.len() {
                return ok(fail(format!(
                    "[code=46014] subtasks with name {} for sources {existing:?} already exist",
                    cfg.name
                )));
            }
            sources
                .iter()
                .filter(|s| !st.subtasks.contains_key(&(cfg.name.clone(), (*s).clone())))
                .filter_map(|s| {
                    st.sources
                        .get(s)
                        .and_then(|e| e.cfg.clone())
                        .map(|c| (s.clone(), c))
                })
                .collect::<Vec<_>>()
        };
        // Precheck against the upstreams and the downstream (skipped with ignore-checking-items: ["all"]).
        if let Some(report) = crate::master::precheck(&cfg, &precheck_targets).await
            && !report.passed()
        {
            return ok(fail(report.to_dm_json(10, 10)));
        }
        let new_sources: Vec<String> = precheck_targets.into_iter().map(|(s, _)| s).collect();
        // Adding sources to a running task (start-task -s NEW): the fields update-task cannot
        // change must be what the task already runs with; the stored config becomes the old one
        // plus the new instances (their rules added), so a later update-task still sees any rule
        // change for the running sources.
        let mut to_store = cfg.clone();
        {
            let st = self.sched.lock();
            if let Some(old) = st.tasks.get(&cfg.name).and_then(|t| t.cfg.as_ref())
                && !st.task_sources(&cfg.name).is_empty()
            {
                let mut old_cmp = old.clone();
                old_cmp.mysql_instances.retain(|i| {
                    i.as_ref()
                        .is_some_and(|i| !new_sources.contains(&i.source_id))
                });
                let diff = non_updatable_changes(&old_cmp, &cfg.without_sources(&new_sources));
                if !diff.is_empty() {
                    return ok(fail(format!(
                        "task {} already runs on {:?} with a different config (changed: {}); update or stop it before adding sources",
                        cfg.name,
                        st.task_sources(&cfg.name),
                        diff.join(", ")
                    )));
                }
                let mut merged = old.clone();
                for i in cfg
                    .instances()
                    .filter(|i| new_sources.contains(&i.source_id))
                {
                    merged.mysql_instances.push(Some(i.clone()));
                }
                merge_missing(&mut merged.routes, &cfg.routes);
                merge_missing(&mut merged.filters, &cfg.filters);
                merge_missing(&mut merged.column_mappings, &cfg.column_mappings);
                merge_missing(&mut merged.expression_filter, &cfg.expression_filter);
                merge_missing(&mut merged.block_allow_list, &cfg.block_allow_list);
                to_store = merged;
            }
        }
        {
            let mut st = self.sched.lock();
            let rev = st
                .tasks
                .get(&cfg.name)
                .map(|t| t.rec.config_rev)
                .unwrap_or(1);
            // Stored normalised, password DM-encrypted: a restarted master needs no `${ENV}`.
            let rec = TaskRecord {
                name: cfg.name.clone(),
                yaml: to_store.to_yaml_sealed(),
                config_rev: rev,
            };
            let mut ops = vec![(
                store::TASKS,
                cfg.name.clone(),
                Some(serde_json::to_string(&rec).unwrap_or_default()),
            )];
            let mut subs = Vec::new();
            for s in &new_sources {
                let start_id = match self.sched.store.next_id("start") {
                    Ok(i) => i,
                    Err(e) => return ok(fail(e.to_string())),
                };
                let sub = SubTaskRecord {
                    task: cfg.name.clone(),
                    source: s.clone(),
                    expect: if req.dmrs_start_paused {
                        Stage::Paused as i32
                    } else {
                        Stage::Running as i32
                    },
                    start_id,
                    remove_meta: req.remove_meta,
                    stage_rev: 0,
                };
                ops.push((
                    store::SUBTASKS,
                    sub.key(),
                    Some(serde_json::to_string(&sub).unwrap_or_default()),
                ));
                subs.push(sub);
            }
            if let Err(e) = self.sched.store.write(&ops) {
                return ok(fail(e.to_string()));
            }
            st.tasks.insert(
                cfg.name.clone(),
                TaskEntry {
                    rec,
                    cfg: Some(to_store),
                    error: String::new(),
                },
            );
            for sub in subs {
                st.subtasks
                    .insert((sub.task.clone(), sub.source.clone()), sub);
            }
        }
        tracing::info!(task = %cfg.name, sources = ?new_sources, "task started");
        let expect = if req.dmrs_start_paused {
            Stage::Paused
        } else {
            Stage::Running
        };
        let (all, resp) = self
            .push_and_wait(&cfg.name, &new_sources, Some(expect))
            .await;
        ok(pb::StartTaskResponse {
            result: all,
            msg: String::new(),
            sources: resp,
        })
    }

    async fn operate_task(
        &self,
        req: Request<pb::OperateTaskRequest>,
    ) -> Res<pb::OperateTaskResponse> {
        let req = req.into_inner();
        let op = TaskOp::try_from(req.op).unwrap_or(TaskOp::InvalidOp);
        let fail = |msg: String| pb::OperateTaskResponse {
            op: req.op,
            result: false,
            msg,
            sources: vec![],
        };
        let sources: Vec<String> = {
            let st = self.sched.lock();
            let all = st.task_sources(&req.name);
            if all.is_empty() {
                return ok(fail(format!(
                    "task {} has no source or not exist, please check the task name and status",
                    req.name
                )));
            }
            if req.sources.is_empty() {
                all
            } else {
                let unknown: Vec<&String> =
                    req.sources.iter().filter(|s| !all.contains(s)).collect();
                if !unknown.is_empty() {
                    return ok(fail(format!(
                        "[code=46017] sources {unknown:?} need to be operate not exist"
                    )));
                }
                req.sources.clone()
            }
        };
        let expect = match op {
            TaskOp::Pause => Some(Stage::Paused),
            TaskOp::Resume => Some(Stage::Running),
            TaskOp::Stop => None,
            _ => {
                return ok(fail(format!(
                    "[code=38041] invalid op {} on {}",
                    op.as_str_name(),
                    req.name
                )));
            }
        };
        {
            let mut st = self.sched.lock();
            let mut ops = Vec::new();
            for s in &sources {
                let key = (req.name.clone(), s.clone());
                match expect {
                    Some(stage) => {
                        if let Some(sub) = st.subtasks.get_mut(&key) {
                            sub.expect = stage as i32;
                            sub.stage_rev += 1;
                            sub.remove_meta = false;
                            ops.push((
                                store::SUBTASKS,
                                sub.key(),
                                Some(serde_json::to_string(&*sub).unwrap_or_default()),
                            ));
                        }
                    }
                    None => {
                        if let Some(sub) = st.subtasks.remove(&key) {
                            ops.push((store::SUBTASKS, sub.key(), None));
                        }
                    }
                }
            }
            if expect.is_none() && st.task_sources(&req.name).is_empty() {
                st.tasks.remove(&req.name);
                ops.push((store::TASKS, req.name.clone(), None));
            } else if expect.is_none()
                && let Some(t) = st.tasks.get_mut(&req.name)
                && let Some(cfg) = t.cfg.as_ref()
            {
                // stop-task -s SRC: the source leaves the task's stored config as well.
                let rest = cfg.without_sources(&sources);
                t.rec.yaml = rest.to_yaml_sealed();
                t.cfg = Some(rest);
                ops.push((
                    store::TASKS,
                    req.name.clone(),
                    Some(serde_json::to_string(&t.rec).unwrap_or_default()),
                ));
            }
            if let Err(e) = self.sched.store.write(&ops) {
                return ok(fail(e.to_string()));
            }
        }
        tracing::info!(task = %req.name, op = op.as_str_name(), sources = ?sources, "task operation");
        let (all, resp) = self.push_and_wait(&req.name, &sources, expect).await;
        ok(pb::OperateTaskResponse {
            op: req.op,
            result: all,
            msg: String::new(),
            sources: resp,
        })
    }

    async fn update_task(
        &self,
        req: Request<pb::UpdateTaskRequest>,
    ) -> Res<pb::UpdateTaskResponse> {
        let req = req.into_inner();
        let fail = |msg: String| pb::UpdateTaskResponse {
            result: false,
            msg,
            sources: vec![],
        };
        let new = match self.parse_task(&req.task) {
            Ok(c) => c,
            Err(e) => return ok(fail(e)),
        };
        let (old, sources) = {
            let st = self.sched.lock();
            match st.tasks.get(&new.name).and_then(|t| t.cfg.clone()) {
                Some(c) => (c, st.task_sources(&new.name)),
                None => {
                    return ok(fail(format!(
                        "task {} has no source or not exist, please check the task name and status",
                        new.name
                    )));
                }
            }
        };
        let new_sources: Vec<String> = new.instances().map(|i| i.source_id.clone()).collect();
        if new_sources
            != old
                .instances()
                .map(|i| i.source_id.clone())
                .collect::<Vec<_>>()
        {
            return ok(fail(format!(
                "update-task cannot add or remove sources (mysql-instances) of task {}: use `start-task -s SOURCE` / `stop-task -s SOURCE`",
                new.name
            )));
        }
        let bad = non_updatable_changes(&old, &new);
        if !bad.is_empty() {
            return ok(fail(format!(
                "update-task can only change routes, filters, column-mappings, block-allow-list and expression-filter (and the instances' rule lists); task {} also changes: {}. Apply that with `stop-task` then `start-task` (the checkpoint is kept)",
                new.name,
                bad.join(", ")
            )));
        }
        // Every subtask must be Paused (DM's worker rule, 40052).
        let mut resp = Vec::new();
        let mut all = true;
        for s in &sources {
            let worker = self.sched.lock().worker_of(s).unwrap_or("").to_string();
            match self.sched.subtask_status(&new.name, s).await {
                Ok(Some(st)) if st.stage == Stage::Paused as i32 => {
                    resp.push(cwr(true, "", s, &worker))
                }
                Ok(st) => {
                    all = false;
                    let stage = st
                        .and_then(|x| Stage::try_from(x.stage).ok())
                        .map(|x| x.as_str_name())
                        .unwrap_or("New");
                    resp.push(cwr(
                        false,
                        format!("[code=40052:class=dm-worker:scope=internal:level=low], Message: can only update task on Paused stage, but current stage is {stage}, Workaround: Please use `pause-task` command to pause the task."),
                        s,
                        &worker,
                    ));
                }
                Err(e) => {
                    all = false;
                    resp.push(cwr(false, e, s, &worker));
                }
            }
        }
        if !all {
            return ok(pb::UpdateTaskResponse {
                result: false,
                msg: String::new(),
                sources: resp,
            });
        }
        {
            let mut st = self.sched.lock();
            let Some(t) = st.tasks.get_mut(&new.name) else {
                return ok(fail(format!("task {} disappeared", new.name)));
            };
            t.rec.yaml = new.to_yaml_sealed();
            t.rec.config_rev += 1;
            t.cfg = Some(new.clone());
            if let Err(e) = self.sched.store.put(store::TASKS, &new.name, &t.rec) {
                return ok(fail(e.to_string()));
            }
        }
        tracing::info!(task = %new.name, "task updated");
        self.sched.round().await;
        ok(pb::UpdateTaskResponse {
            result: true,
            msg: String::new(),
            sources: resp,
        })
    }

    async fn query_status(
        &self,
        req: Request<pb::QueryStatusListRequest>,
    ) -> Res<pb::QueryStatusListResponse> {
        let req = req.into_inner();
        let fail = |msg: String| pb::QueryStatusListResponse {
            result: false,
            msg,
            sources: vec![],
        };
        let (sources, task_names) = {
            let st = self.sched.lock();
            if !req.sources.is_empty() {
                let unknown: Vec<&String> = req
                    .sources
                    .iter()
                    .filter(|s| !st.sources.contains_key(*s))
                    .collect();
                if !unknown.is_empty() {
                    return ok(fail(format!("sources {unknown:?} haven't been added")));
                }
            }
            let mut sources: Vec<String> = if !req.name.is_empty() {
                let s = st.task_sources(&req.name);
                if s.is_empty() {
                    return ok(fail(format!(
                        "task {} has no source or not exist, please check the task name and status",
                        req.name
                    )));
                }
                s
            } else {
                st.sources.keys().cloned().collect()
            };
            if !req.sources.is_empty() {
                sources.retain(|s| req.sources.contains(s));
            }
            sources.sort();
            let names: BTreeMap<String, Vec<String>> = sources
                .iter()
                .map(|s| {
                    (
                        s.clone(),
                        st.subtasks
                            .keys()
                            .filter(|(t, src)| src == s && (req.name.is_empty() || *t == req.name))
                            .map(|(t, _)| t.clone())
                            .collect(),
                    )
                })
                .collect();
            (sources, names)
        };
        let mut out = Vec::new();
        for s in sources {
            let worker = self.sched.lock().worker_of(&s).map(|w| w.to_string());
            let Some(worker) = worker else {
                out.push(pb::QueryStatusResponse {
                    result: false,
                    msg: format!("source {s} is not bound to any dm-worker (no free worker online; see `list-member`)"),
                    source_status: Some(pb::SourceStatus {
                        source: s.clone(),
                        ..Default::default()
                    }),
                    sub_task_status: vec![],
                });
                continue;
            };
            match self.sched.query_worker(&worker, &req.name).await {
                Some(mut r) => {
                    let wanted = task_names.get(&s).cloned().unwrap_or_default();
                    r.sub_task_status.retain(|x| wanted.contains(&x.name));
                    for t in &wanted {
                        if !r.sub_task_status.iter().any(|x| &x.name == t) {
                            r.sub_task_status.push(pb::SubTaskStatus {
                                name: t.clone(),
                                status: Some(pb::sub_task_status::Status::Msg(format!(
                                    "no sub task with name {t} has started"
                                ))),
                                ..Default::default()
                            });
                        }
                    }
                    if r.source_status.is_none() {
                        r.source_status = Some(pb::SourceStatus {
                            source: s.clone(),
                            worker: worker.clone(),
                            ..Default::default()
                        });
                    }
                    out.push(r)
                }
                None => out.push(pb::QueryStatusResponse {
                    result: false,
                    msg: format!("dm-worker {worker} bound to source {s} does not answer"),
                    source_status: Some(pb::SourceStatus {
                        source: s.clone(),
                        worker: worker.clone(),
                        ..Default::default()
                    }),
                    sub_task_status: vec![],
                }),
            }
        }
        ok(pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: out,
        })
    }

    async fn show_ddl_locks(
        &self,
        _: Request<pb::ShowDdlLocksRequest>,
    ) -> Res<pb::ShowDdlLocksResponse> {
        ok(pb::ShowDdlLocksResponse {
            result: true,
            msg: "no DDL lock exists".into(),
            locks: vec![],
        })
    }

    async fn unlock_ddl_lock(
        &self,
        _: Request<pb::UnlockDdlLockRequest>,
    ) -> Res<pb::UnlockDdlLockResponse> {
        ok(pb::UnlockDdlLockResponse {
            result: false,
            msg: "[code=38019] lock not found: dm-rs does not run sharding DDL locks yet".into(),
        })
    }

    async fn operate_worker_relay_task(
        &self,
        req: Request<pb::OperateWorkerRelayRequest>,
    ) -> Res<pb::OperateWorkerRelayResponse> {
        ok(pb::OperateWorkerRelayResponse {
            op: req.into_inner().op,
            result: false,
            msg: "relay log is not supported by dm-rs yet: the sync unit reads the upstream binlog directly".into(),
            sources: vec![],
        })
    }

    async fn purge_worker_relay(
        &self,
        _: Request<pb::PurgeWorkerRelayRequest>,
    ) -> Res<pb::PurgeWorkerRelayResponse> {
        ok(pb::PurgeWorkerRelayResponse {
            result: false,
            msg: "relay log is not supported by dm-rs yet".into(),
            sources: vec![],
        })
    }

    async fn check_task(&self, req: Request<pb::CheckTaskRequest>) -> Res<pb::CheckTaskResponse> {
        let req = req.into_inner();
        let cfg = match self.parse_task(&req.task) {
            Ok(c) => c,
            Err(e) => {
                return ok(pb::CheckTaskResponse {
                    result: false,
                    msg: e,
                });
            }
        };
        let (targets, missing) = {
            let st = self.sched.lock();
            let mut t = Vec::new();
            let mut m = Vec::new();
            for i in cfg.instances() {
                match st.sources.get(&i.source_id).and_then(|e| e.cfg.clone()) {
                    Some(c) => t.push((i.source_id.clone(), c)),
                    None => m.push(i.source_id.clone()),
                }
            }
            (t, m)
        };
        if !missing.is_empty() {
            return ok(pb::CheckTaskResponse {
                result: false,
                msg: format!(
                    "[code=20031] source {} in deployment configuration not found: create it first with `operate-source create <source.yaml>`",
                    missing.join(", ")
                ),
            });
        }
        let err_cnt = if req.err_cnt > 0 {
            req.err_cnt as usize
        } else {
            10
        };
        let warn_cnt = if req.warn_cnt > 0 {
            req.warn_cnt as usize
        } else {
            10
        };
        match crate::master::precheck(&cfg, &targets).await {
            None => ok(pb::CheckTaskResponse {
                result: true,
                msg: "check pass!!!".into(),
            }),
            Some(r) if r.passed() && r.counts().3 == 0 => ok(pb::CheckTaskResponse {
                result: true,
                msg: "check pass!!!".into(),
            }),
            Some(r) => ok(pb::CheckTaskResponse {
                result: r.passed(),
                msg: r.to_dm_json(err_cnt, warn_cnt),
            }),
        }
    }

    async fn operate_source(
        &self,
        req: Request<pb::OperateSourceRequest>,
    ) -> Res<pb::OperateSourceResponse> {
        let req = req.into_inner();
        let op = pb::SourceOp::try_from(req.op).unwrap_or(pb::SourceOp::InvalidSourceOp);
        let fail = |msg: String| pb::OperateSourceResponse {
            result: false,
            msg,
            sources: vec![],
        };
        match op {
            pb::SourceOp::StartSource | pb::SourceOp::UpdateSource => {
                let mut parsed = Vec::new();
                for yaml in &req.config {
                    match load_source(yaml) {
                        Ok(c) => parsed.push(c),
                        Err(e) => return ok(fail(e)),
                    }
                }
                let ids: Vec<String> = parsed.iter().map(|c| c.source_id.clone()).collect();
                if parsed.is_empty() {
                    return ok(fail(
                        "operate-source create needs at least one source config file".into(),
                    ));
                }
                let mut resp = Vec::new();
                {
                    let mut st = self.sched.lock();
                    for cfg in &parsed {
                        let id = cfg.source_id.clone();
                        let exists = st.sources.contains_key(&id);
                        if op == pb::SourceOp::StartSource && exists {
                            return ok(fail(format!(
                                "[code=46004] source config with ID {id} already exists"
                            )));
                        }
                        if op == pb::SourceOp::UpdateSource {
                            if !exists {
                                return ok(fail(format!("source {id} does not exist")));
                            }
                            let used: Vec<String> = st
                                .subtasks
                                .keys()
                                .filter(|(_, s)| *s == id)
                                .map(|(t, _)| t.clone())
                                .collect();
                            if !used.is_empty() {
                                return ok(fail(format!(
                                    "source {id} is used by task(s) {used:?}: stop them before updating the source"
                                )));
                            }
                        }
                    }
                    for cfg in parsed {
                        let id = cfg.source_id.clone();
                        let rec = SourceRecord {
                            id: id.clone(),
                            yaml: cfg.to_yaml_sealed(),
                        };
                        if let Err(e) = self.sched.store.put(store::SOURCES, &id, &rec) {
                            return ok(fail(e.to_string()));
                        }
                        st.sources.insert(
                            id.clone(),
                            SourceEntry {
                                rec,
                                cfg: Some(cfg),
                                error: String::new(),
                            },
                        );
                        tracing::info!(source = %id, "source created");
                    }
                    self.sched.bind_free(&mut st);
                }
                self.sched.round().await;
                let st = self.sched.lock();
                for id in &ids {
                    match st.worker_of(id) {
                        Some(w) => resp.push(cwr(true, "", id, w)),
                        None => resp.push(cwr(
                            true,
                            "source is added but there is no free worker to bind",
                            id,
                            "",
                        )),
                    }
                }
                ok(pb::OperateSourceResponse {
                    result: true,
                    msg: String::new(),
                    sources: resp,
                })
            }
            pb::SourceOp::StopSource => {
                let mut ids: Vec<String> = req.source_id.clone();
                for yaml in &req.config {
                    match load_source(yaml) {
                        Ok(c) => ids.push(c.source_id),
                        Err(e) => return ok(fail(e)),
                    }
                }
                let mut resp = Vec::new();
                {
                    let mut st = self.sched.lock();
                    for id in &ids {
                        if !st.sources.contains_key(id) {
                            return ok(fail(format!("[code=46008] source {id} not exist")));
                        }
                        let used: Vec<String> = st
                            .subtasks
                            .keys()
                            .filter(|(_, s)| s == id)
                            .map(|(t, _)| t.clone())
                            .collect();
                        if !used.is_empty() {
                            return ok(fail(format!(
                                "source {id} is still used by task(s) {used:?}: stop them first with `stop-task`"
                            )));
                        }
                    }
                    for id in &ids {
                        let w = st.bindings.remove(id).unwrap_or_default();
                        st.sources.remove(id);
                        let _ = self.sched.store.write(&[
                            (store::SOURCES, id.clone(), None),
                            (store::BINDINGS, id.clone(), None),
                        ]);
                        resp.push(cwr(true, "", id, &w));
                    }
                    self.sched.bind_free(&mut st);
                }
                self.sched.round().await;
                ok(pb::OperateSourceResponse {
                    result: true,
                    msg: String::new(),
                    sources: resp,
                })
            }
            pb::SourceOp::ShowSource => {
                let st = self.sched.lock();
                let ids: Vec<String> = if req.source_id.is_empty() {
                    st.sources.keys().cloned().collect()
                } else {
                    req.source_id.clone()
                };
                let mut resp = Vec::new();
                for id in ids {
                    if !st.sources.contains_key(&id) {
                        resp.push(cwr(false, format!("source {id} not exist"), &id, ""));
                        continue;
                    }
                    match st.worker_of(&id) {
                        Some(w) => resp.push(cwr(true, "", &id, w)),
                        None => resp.push(cwr(
                            true,
                            "source is added but is not bound to any worker",
                            &id,
                            "",
                        )),
                    }
                }
                ok(pb::OperateSourceResponse {
                    result: true,
                    msg: String::new(),
                    sources: resp,
                })
            }
            pb::SourceOp::InvalidSourceOp => ok(fail("invalid source op".into())),
        }
    }

    async fn register_worker(
        &self,
        req: Request<pb::RegisterWorkerRequest>,
    ) -> Res<pb::RegisterWorkerResponse> {
        let req = req.into_inner();
        match self.sched.register(&req.name, &req.address) {
            Ok(()) => ok(pb::RegisterWorkerResponse {
                result: true,
                msg: String::new(),
            }),
            Err(e) => ok(pb::RegisterWorkerResponse {
                result: false,
                msg: e,
            }),
        }
    }

    async fn offline_member(
        &self,
        req: Request<pb::OfflineMemberRequest>,
    ) -> Res<pb::OfflineMemberResponse> {
        let req = req.into_inner();
        if req.r#type != "worker" {
            return ok(pb::OfflineMemberResponse {
                result: false,
                msg: format!(
                    "dm-rs runs a single master; cannot offline {} {}",
                    req.r#type, req.name
                ),
            });
        }
        let mut st = self.sched.lock();
        match st.workers.get(&req.name) {
            None => ok(pb::OfflineMemberResponse {
                result: false,
                msg: format!("[code=38032] dm-worker with name {} not exists", req.name),
            }),
            Some(w) if w.online => ok(pb::OfflineMemberResponse {
                result: false,
                msg: format!(
                    "dm-worker {} is still online: stop the process first",
                    req.name
                ),
            }),
            Some(_) => {
                st.workers.remove(&req.name);
                let src: Vec<String> = st
                    .bindings
                    .iter()
                    .filter(|(_, w)| **w == req.name)
                    .map(|(s, _)| s.clone())
                    .collect();
                let mut ops = vec![(store::WORKERS, req.name.clone(), None)];
                for s in src {
                    st.bindings.remove(&s);
                    ops.push((store::BINDINGS, s, None));
                }
                let _ = self.sched.store.write(&ops);
                self.sched.bind_free(&mut st);
                ok(pb::OfflineMemberResponse {
                    result: true,
                    msg: String::new(),
                })
            }
        }
    }

    async fn operate_leader(
        &self,
        _: Request<pb::OperateLeaderRequest>,
    ) -> Res<pb::OperateLeaderResponse> {
        ok(pb::OperateLeaderResponse {
            result: false,
            msg: "dm-rs runs a single master: there is no leader to evict".into(),
        })
    }

    async fn list_member(
        &self,
        req: Request<pb::ListMemberRequest>,
    ) -> Res<pb::ListMemberResponse> {
        let req = req.into_inner();
        let all = !req.leader && !req.master && !req.worker;
        let st = self.sched.lock();
        let mut members = Vec::new();
        let named = |n: &str| req.names.is_empty() || req.names.iter().any(|x| x == n);
        if all || req.leader {
            members.push(pb::Members {
                member: Some(pb::members::Member::Leader(pb::ListLeaderMember {
                    msg: String::new(),
                    name: self.name.clone(),
                    addr: self.addr.clone(),
                })),
            });
        }
        if all || req.master {
            let masters = if named(&self.name) {
                vec![pb::MasterInfo {
                    name: self.name.clone(),
                    member_id: 1,
                    alive: true,
                    peer_ur_ls: vec![],
                    client_ur_ls: vec![format!("http://{}", self.addr)],
                }]
            } else {
                vec![]
            };
            members.push(pb::Members {
                member: Some(pb::members::Member::Master(pb::ListMasterMember {
                    msg: String::new(),
                    masters,
                })),
            });
        }
        if all || req.worker {
            let workers = st
                .workers
                .values()
                .filter(|w| named(&w.rec.name))
                .map(|w| {
                    let source = st.source_of(&w.rec.name).unwrap_or("").to_string();
                    let stage = if !w.online {
                        "offline"
                    } else if source.is_empty() {
                        "free"
                    } else {
                        "bound"
                    };
                    pb::WorkerInfo {
                        name: w.rec.name.clone(),
                        addr: w.rec.addr.clone(),
                        stage: stage.into(),
                        source,
                    }
                })
                .collect();
            members.push(pb::Members {
                member: Some(pb::members::Member::Worker(pb::ListWorkerMember {
                    msg: String::new(),
                    workers,
                })),
            });
        }
        ok(pb::ListMemberResponse {
            result: true,
            msg: String::new(),
            members,
        })
    }

    async fn operate_schema(
        &self,
        _: Request<pb::OperateSchemaRequest>,
    ) -> Res<pb::OperateSchemaResponse> {
        ok(pb::OperateSchemaResponse {
            result: false,
            msg: "operate-schema is not supported by dm-rs yet".into(),
            sources: vec![],
        })
    }

    async fn get_sub_task_cfg(
        &self,
        req: Request<pb::GetSubTaskCfgRequest>,
    ) -> Res<pb::GetSubTaskCfgResponse> {
        let name = req.into_inner().name;
        let st = self.sched.lock();
        match st.tasks.get(&name).and_then(|t| t.cfg.as_ref()) {
            Some(c) => ok(pb::GetSubTaskCfgResponse {
                result: true,
                msg: String::new(),
                cfgs: vec![c.to_yaml_masked()],
            }),
            None => ok(pb::GetSubTaskCfgResponse {
                result: false,
                msg: format!("task {name} not found"),
                cfgs: vec![],
            }),
        }
    }

    async fn get_cfg(&self, req: Request<pb::GetCfgRequest>) -> Res<pb::GetCfgResponse> {
        let req = req.into_inner();
        let t = pb::CfgType::try_from(req.r#type).unwrap_or(pb::CfgType::InvalidType);
        let st = self.sched.lock();
        let fail = |msg: String| pb::GetCfgResponse {
            result: false,
            msg,
            cfg: String::new(),
        };
        let cfg = match t {
            pb::CfgType::TaskType => match st.tasks.get(&req.name) {
                Some(TaskEntry { cfg: Some(c), .. }) => {
                    // dm-rs: a salted fingerprint of the password, so the reconciler can tell
                    // whether it changed without the master ever showing it.
                    // Stable while the stored task is unchanged (a saved plan's digest must
                    // not change between two reads), different for every stored version.
                    let salt = {
                        use sha2::Digest;
                        let rec = st
                            .tasks
                            .get(&req.name)
                            .map(|t| t.rec.yaml.as_str())
                            .unwrap_or("");
                        let h = sha2::Sha256::digest(format!("{}\u{0}{rec}", req.name).as_bytes());
                        h.iter()
                            .take(8)
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    };
                    let plain = c
                        .target_database
                        .as_ref()
                        .map(|d| d.plain_password())
                        .unwrap_or_default();
                    format!(
                        "{}{}{}\n",
                        c.to_yaml_masked(),
                        crate::password::FINGERPRINT_COMMENT,
                        crate::password::fingerprint(&salt, &plain)
                    )
                }
                Some(e) => {
                    return ok(fail(format!(
                        "task {} does not load: {}",
                        req.name, e.error
                    )));
                }
                None => return ok(fail(format!("[code=38032] task {} not found", req.name))),
            },
            pb::CfgType::SourceType => match st.sources.get(&req.name) {
                Some(SourceEntry { cfg: Some(c), .. }) => c.to_yaml_masked(),
                Some(e) => {
                    return ok(fail(format!(
                        "source {} does not load: {}",
                        req.name, e.error
                    )));
                }
                None => return ok(fail(format!("source {} not found", req.name))),
            },
            pb::CfgType::MasterType => {
                if req.name != self.name {
                    return ok(fail(format!("master {} not found", req.name)));
                }
                format!("name: {}\nmaster-addr: {}\n", self.name, self.addr)
            }
            pb::CfgType::WorkerType => match st.workers.get(&req.name) {
                Some(w) => format!(
                    "name: {}\nworker-addr: {}\njoin: {}\n",
                    w.rec.name, w.rec.addr, self.addr
                ),
                None => return ok(fail(format!("worker {} not found", req.name))),
            },
            pb::CfgType::InvalidType => return ok(fail("invalid config type".into())),
        };
        ok(pb::GetCfgResponse {
            result: true,
            msg: String::new(),
            cfg,
        })
    }

    async fn handle_error(
        &self,
        _: Request<pb::HandleErrorRequest>,
    ) -> Res<pb::HandleErrorResponse> {
        ok(pb::HandleErrorResponse {
            result: false,
            msg: "handle-error is not supported by dm-rs yet: fix the downstream and `resume-task`"
                .into(),
            sources: vec![],
        })
    }

    async fn get_master_cfg(
        &self,
        _: Request<pb::GetMasterCfgRequest>,
    ) -> Res<pb::GetMasterCfgResponse> {
        ok(pb::GetMasterCfgResponse {
            cfg: format!("name: {}\nmaster-addr: {}\n", self.name, self.addr),
        })
    }

    async fn transfer_source(
        &self,
        req: Request<pb::TransferSourceRequest>,
    ) -> Res<pb::TransferSourceResponse> {
        let req = req.into_inner();
        let mut st = self.sched.lock();
        let busy = st.subtasks.keys().any(|(_, s)| *s == req.source);
        if busy {
            return ok(pb::TransferSourceResponse {
                result: false,
                msg: format!(
                    "source {} has running tasks: stop them before transferring it",
                    req.source
                ),
            });
        }
        let free = st.workers.get(&req.worker).is_some_and(|w| w.online)
            && st.source_of(&req.worker).is_none();
        if !st.sources.contains_key(&req.source) || !free {
            return ok(pb::TransferSourceResponse {
                result: false,
                msg: format!(
                    "source {} or free worker {} not found",
                    req.source, req.worker
                ),
            });
        }
        st.bindings.insert(req.source.clone(), req.worker.clone());
        let _ = self
            .sched
            .store
            .put(store::BINDINGS, &req.source, &req.worker);
        ok(pb::TransferSourceResponse {
            result: true,
            msg: String::new(),
        })
    }

    async fn operate_relay(
        &self,
        _: Request<pb::OperateRelayRequest>,
    ) -> Res<pb::OperateRelayResponse> {
        ok(pb::OperateRelayResponse {
            result: false,
            msg: "relay log is not supported by dm-rs yet".into(),
        })
    }
}
