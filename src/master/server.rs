//! `pb.Master` over gRPC: DM's RPCs on top of the [`Scheduler`]. Each handler only translates:
//! the request into a domain request (`tasks.rs`, `sources.rs`), the [`Outcome`] or
//! [`MasterError`] back into DM's response shapes and messages. Handlers never write the store
//! and never decide anything; a refusal is `result: false` with the error's text.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::MasterError;
use super::scheduler::Scheduler;
use super::sources::SourceChange;
use super::store;
use super::tasks::{Outcome, SourceOutcome, StartTask, TaskOperation};
use crate::pb::{self, master_server::Master};

pub struct MasterService {
    pub sched: Arc<Scheduler>,
    pub name: String,
    pub addr: String,
    /// The master's settings (update-master-config).
    pub settings: Arc<super::config::Settings>,
}

type Res<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> Res<T> {
    Ok(Response::new(t))
}

/// One source's answer in DM's `CommonWorkerResponse` form.
fn worker_response(o: SourceOutcome) -> pb::CommonWorkerResponse {
    pb::CommonWorkerResponse {
        result: o.ok,
        msg: o.msg,
        source: o.source,
        worker: o.worker,
    }
}

/// A worker's settings as DM's `get-config worker` shows them (TOML).
fn worker_toml(name: &str, addr: &str, join: &str) -> String {
    let q = super::config::toml_str;
    format!(
        "name = {}\nworker-addr = {}\njoin = {}\n",
        q(name),
        q(addr),
        q(join)
    )
}

fn worker_responses(o: Vec<SourceOutcome>) -> Vec<pb::CommonWorkerResponse> {
    o.into_iter().map(worker_response).collect()
}

/// The shared shape of DM's `{result, msg, sources}` task responses.
fn task_answer(r: Result<Outcome, MasterError>) -> (bool, String, Vec<pb::CommonWorkerResponse>) {
    match r {
        Ok(o) => (o.ok, String::new(), worker_responses(o.sources)),
        Err(e) => (false, e.to_string(), vec![]),
    }
}

/// The sources a request names, sorted and once each; each must be one of `task`'s
/// (`task_sources`), else DM-style message.
fn named_sources(
    task: &str,
    task_sources: &[String],
    named: &[String],
) -> Result<Vec<String>, String> {
    let mut sources = named.to_vec();
    sources.sort();
    sources.dedup();
    if let Some(bad) = sources.iter().find(|s| !task_sources.contains(s)) {
        return Err(format!(
            "source {bad} not found in task {task}: the task's sources are {}",
            task_sources.join(", ")
        ));
    }
    Ok(sources)
}

impl MasterService {
    /// One answer per source from its bound worker: `call(worker, source)`; an unbound source
    /// or a failed call answers `result: false` with why (`what` names the operation in the log).
    async fn per_source<F, Fut>(
        &self,
        what: &str,
        task: &str,
        sources: Vec<String>,
        call: F,
    ) -> Vec<pb::CommonWorkerResponse>
    where
        F: Fn(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<pb::CommonWorkerResponse, String>>,
    {
        let mut out = Vec::new();
        for s in sources {
            let worker = self.sched.lock().worker_of(&s).map(str::to_string);
            let Some(worker) = worker else {
                out.push(pb::CommonWorkerResponse {
                    result: false,
                    msg: format!("source {s} is not bound to any dm-worker"),
                    source: s.clone(),
                    worker: String::new(),
                });
                continue;
            };
            let mut r = match call(worker.clone(), s.clone()).await {
                Ok(r) => r,
                Err(msg) => pb::CommonWorkerResponse {
                    result: false,
                    msg,
                    source: s.clone(),
                    worker,
                },
            };
            if r.source.is_empty() {
                r.source = s.clone();
            }
            tracing::info!(task, source = %s, result = r.result, "{what}");
            out.push(r);
        }
        out
    }
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn start_task(&self, req: Request<pb::StartTaskRequest>) -> Res<pb::StartTaskResponse> {
        let req = req.into_inner();
        let r = self
            .sched
            .start_task(StartTask {
                yaml: req.task,
                sources: req.sources,
                remove_meta: req.remove_meta,
                paused: req.dmrs_start_paused,
                start_time: req.start_time,
            })
            .await;
        // DM: a failed precheck answers in checkResult with an empty msg.
        let (check_result, note) = match &r {
            Ok(o) => (o.check_result.clone(), o.note.clone()),
            Err(crate::master::MasterError::PrecheckFailed(why)) => (why.clone(), String::new()),
            Err(_) => Default::default(),
        };
        let (result, mut msg, sources) = match r {
            Err(crate::master::MasterError::PrecheckFailed(_)) => (false, String::new(), vec![]),
            r => task_answer(r),
        };
        // DM's note for a task file that still says `remove-meta: true`.
        if result && msg.is_empty() {
            msg = note;
        }
        ok(pb::StartTaskResponse {
            result,
            msg,
            sources,
            check_result,
        })
    }

    async fn operate_task(
        &self,
        req: Request<pb::OperateTaskRequest>,
    ) -> Res<pb::OperateTaskResponse> {
        let req = req.into_inner();
        let op = pb::TaskOp::try_from(req.op).unwrap_or(pb::TaskOp::InvalidOp);
        let r = match TaskOperation::from_pb(op, &req.name) {
            Ok(op) => self.sched.operate_task(op, &req.name, &req.sources).await,
            Err(e) => Err(e),
        };
        let (result, msg, sources) = task_answer(r);
        ok(pb::OperateTaskResponse {
            op: req.op,
            result,
            msg,
            sources,
        })
    }

    async fn update_task(
        &self,
        req: Request<pb::UpdateTaskRequest>,
    ) -> Res<pb::UpdateTaskResponse> {
        let req = req.into_inner();
        let (result, msg, sources) = task_answer(self.sched.update_task(&req.task).await);
        ok(pb::UpdateTaskResponse {
            result,
            msg,
            sources,
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
        let (sources, task_names) = match self.sched.status_targets(&req.name, &req.sources) {
            Ok(t) => (t.sources, t.tasks),
            Err(e) => return ok(fail(e.to_string())),
        };
        let mut out = Vec::new();
        for s in sources {
            let worker = self.sched.lock().worker_of(&s).map(|w| w.to_string());
            let Some(worker) = worker else {
                // DM's answer for a source no worker serves: worker "source not bound" and
                // the source's tasks by name.
                let tasks = task_names.get(&s).cloned().unwrap_or_default();
                let msg = match tasks.first() {
                    Some(t) => format!(
                        "can't find task={t} from dm-worker for source={s}, please use dmctl list-member to check if worker is offline."
                    ),
                    None => format!(
                        "source {s} is not bound to any dm-worker (no free worker online; see `list-member`)"
                    ),
                };
                out.push(pb::QueryStatusResponse {
                    result: false,
                    msg,
                    source_status: Some(pb::SourceStatus {
                        source: s.clone(),
                        worker: "source not bound".to_string(),
                        ..Default::default()
                    }),
                    sub_task_status: tasks
                        .iter()
                        .map(|t| pb::SubTaskStatus {
                            name: t.clone(),
                            ..Default::default()
                        })
                        .collect(),
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
        req: Request<pb::ShowDdlLocksRequest>,
    ) -> Res<pb::ShowDdlLocksResponse> {
        let req = req.into_inner();
        let locks = {
            let st = self.sched.lock();
            // DM v2: the pessimistic locks, then the optimistic ones.
            let mut locks = st.shard_locks.show(&req.task, &req.sources);
            locks.extend(st.opt_locks.shown(&req.task, &req.sources));
            locks
        };
        let msg = if locks.is_empty() {
            "no DDL lock exists".to_string()
        } else {
            String::new()
        };
        ok(pb::ShowDdlLocksResponse {
            result: true,
            msg,
            locks,
        })
    }

    async fn unlock_ddl_lock(
        &self,
        req: Request<pb::UnlockDdlLockRequest>,
    ) -> Res<pb::UnlockDdlLockResponse> {
        let req = req.into_inner();
        let owner = Some(req.replace_owner.as_str()).filter(|o| !o.is_empty());
        let _g = self.sched.change().await;
        if self.sched.lock().opt_locks.locks.contains_key(&req.id) {
            return ok(pb::UnlockDdlLockResponse {
                result: false,
                msg: "`unlock-ddl-lock` is only supported in pessimistic shard mode currently"
                    .into(),
            });
        }
        let saved = {
            let mut st = self.sched.lock();
            match st.shard_locks.unlock(&req.id, owner) {
                Ok(()) => st.shard_locks.locks.get(&req.id).cloned(),
                Err(e) => {
                    return ok(pb::UnlockDdlLockResponse {
                        result: false,
                        msg: e.to_string(),
                    });
                }
            }
        };
        if let Some(l) = saved {
            let op = match store::put_op(store::SHARD_LOCKS, &req.id, &l) {
                Ok(op) => op,
                Err(e) => {
                    return ok(pb::UnlockDdlLockResponse {
                        result: false,
                        msg: e.to_string(),
                    });
                }
            };
            if let Err(e) = self.sched.persist(vec![op]).await {
                return ok(pb::UnlockDdlLockResponse {
                    result: false,
                    msg: e.to_string(),
                });
            }
        }
        tracing::info!(lock = %req.id, owner = ?owner, "unlock-ddl-lock: the lock is forced synced; the owner executes, the waiting sources skip");
        ok(pb::UnlockDdlLockResponse {
            result: true,
            msg: String::new(),
        })
    }

    async fn operate_worker_relay_task(
        &self,
        req: Request<pb::OperateWorkerRelayRequest>,
    ) -> Res<pb::OperateWorkerRelayResponse> {
        let req = req.into_inner();
        let op = pb::RelayOp::try_from(req.op).unwrap_or(pb::RelayOp::InvalidRelayOp);
        if req.sources.is_empty() {
            return ok(pb::OperateWorkerRelayResponse {
                op: req.op,
                result: false,
                msg: "must specify at least one source (`-s` / `--source`)".into(),
                sources: vec![],
            });
        }
        if !matches!(op, pb::RelayOp::PauseRelay | pb::RelayOp::ResumeRelay) {
            return ok(pb::OperateWorkerRelayResponse {
                op: req.op,
                result: false,
                msg: format!(
                    "[code=46011] invalid new expectant relay stage {}",
                    op.as_str_name()
                ),
                sources: vec![],
            });
        }
        let sources = self.sched.pause_resume_relay(op, &req.sources).await;
        ok(pb::OperateWorkerRelayResponse {
            op: req.op,
            result: sources.iter().all(|s| s.result),
            msg: String::new(),
            sources,
        })
    }

    async fn purge_worker_relay(
        &self,
        req: Request<pb::PurgeWorkerRelayRequest>,
    ) -> Res<pb::PurgeWorkerRelayResponse> {
        let req = req.into_inner();
        if req.sources.is_empty() {
            return ok(pb::PurgeWorkerRelayResponse {
                result: false,
                msg: "must specify at least one source (`-s` / `--source`)".into(),
                sources: vec![],
            });
        }
        let mut out = Vec::new();
        for s in &req.sources {
            let wreq = pb::PurgeRelayRequest {
                inactive: req.inactive,
                time: req.time,
                filename: req.filename.clone(),
                sub_dir: req.sub_dir.clone(),
            };
            out.push(self.sched.purge_relay_on(s, wreq).await);
        }
        ok(pb::PurgeWorkerRelayResponse {
            result: out.iter().all(|r| r.result),
            msg: String::new(),
            sources: out,
        })
    }

    async fn check_task(&self, req: Request<pb::CheckTaskRequest>) -> Res<pb::CheckTaskResponse> {
        let req = req.into_inner();
        let r = self
            .sched
            .check_task(&req.task, req.err_cnt, req.warn_cnt, &req.start_time)
            .await;
        ok(match r {
            Ok(c) => pb::CheckTaskResponse {
                result: c.passed,
                msg: c.msg,
            },
            Err(e) => pb::CheckTaskResponse {
                result: false,
                msg: e.to_string(),
            },
        })
    }

    async fn operate_source(
        &self,
        req: Request<pb::OperateSourceRequest>,
    ) -> Res<pb::OperateSourceResponse> {
        let req = req.into_inner();
        let op = pb::SourceOp::try_from(req.op).unwrap_or(pb::SourceOp::InvalidSourceOp);
        let r = match op {
            pb::SourceOp::StartSource | pb::SourceOp::UpdateSource => {
                let change = if op == pb::SourceOp::StartSource {
                    SourceChange::Create
                } else {
                    SourceChange::Update
                };
                match super::sources::probe_upstreams(&req.config).await {
                    Ok(()) => {
                        self.sched
                            .create_sources(change, &req.config, &req.worker_name)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            pb::SourceOp::StopSource if !req.worker_name.is_empty() => {
                Err(MasterError::WorkerNameOnlyOnCreate("stop"))
            }
            pb::SourceOp::StopSource => self.sched.stop_sources(&req.source_id, &req.config).await,
            pb::SourceOp::ShowSource => Ok(self.sched.show_sources(&req.source_id)),
            pb::SourceOp::InvalidSourceOp => {
                return ok(pb::OperateSourceResponse {
                    result: false,
                    msg: "invalid source op".into(),
                    sources: vec![],
                });
            }
        };
        ok(match r {
            Ok(sources) => pb::OperateSourceResponse {
                result: true,
                msg: String::new(),
                sources: worker_responses(sources),
            },
            Err(e) => pb::OperateSourceResponse {
                result: false,
                msg: e.to_string(),
                sources: vec![],
            },
        })
    }

    async fn register_worker(
        &self,
        req: Request<pb::RegisterWorkerRequest>,
    ) -> Res<pb::RegisterWorkerResponse> {
        let req = req.into_inner();
        let r = self.sched.register(&req.name, &req.address).await;
        ok(pb::RegisterWorkerResponse {
            result: r.is_ok(),
            msg: r.err().map(|e| e.to_string()).unwrap_or_default(),
            // The key goes only with a bound source's push (AssignRequest.secret_key).
            secret_key: vec![],
        })
    }

    async fn offline_member(
        &self,
        req: Request<pb::OfflineMemberRequest>,
    ) -> Res<pb::OfflineMemberResponse> {
        let req = req.into_inner();
        let r = self.sched.offline_worker(&req.r#type, &req.name).await;
        ok(pb::OfflineMemberResponse {
            result: r.is_ok(),
            msg: r.err().map(|e| e.to_string()).unwrap_or_default(),
        })
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

    /// `binlog-schema` / `operate-schema`: each named source's worker lists, sets or deletes
    /// the tracked schema of a table of its paused subtask.
    async fn operate_schema(
        &self,
        req: Request<pb::OperateSchemaRequest>,
    ) -> Res<pb::OperateSchemaResponse> {
        let req = req.into_inner();
        let fail = |msg: String| pb::OperateSchemaResponse {
            result: false,
            msg,
            sources: vec![],
        };
        let task_sources = self.sched.lock().task_sources(&req.task);
        if task_sources.is_empty() {
            return ok(fail(format!(
                "task {} has no source or not exist, please check the task name and status",
                req.task
            )));
        }
        if req.sources.is_empty() {
            return ok(fail("must specify at least one source".into()));
        }
        if req.database.is_empty() || req.table.is_empty() {
            return ok(fail("must specify the database and the table".into()));
        }
        let sources = match named_sources(&req.task, &task_sources, &req.sources) {
            Ok(s) => s,
            Err(m) => return ok(fail(m)),
        };
        let req = &req;
        let out = self
            .per_source(
                "operate-schema",
                &req.task,
                sources,
                |worker, s| async move {
                    let wreq = pb::OperateWorkerSchemaRequest {
                        op: req.op,
                        task: req.task.clone(),
                        source: s,
                        database: req.database.clone(),
                        table: req.table.clone(),
                        schema: req.schema.clone(),
                        flush: req.flush,
                        sync: req.sync,
                        from_source: req.from_source,
                        from_target: req.from_target,
                    };
                    self.sched.operate_schema_on(&worker, wreq).await
                },
            )
            .await;
        ok(pb::OperateSchemaResponse {
            result: out.iter().all(|r| r.result),
            msg: String::new(),
            sources: out,
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
        let fail = |msg: String| pb::GetCfgResponse {
            result: false,
            msg,
            cfg: String::new(),
            dmrs_password_matches: None,
        };
        let mut matches = None;
        let cfg = match t {
            pb::CfgType::TaskType => {
                let compare = req.dmrs_compare_password.as_deref();
                match self.sched.task_config(&req.name, compare) {
                    Ok((cfg, m)) => {
                        matches = m;
                        cfg
                    }
                    Err(MasterError::TaskConfigNotFound(_)) => {
                        return ok(fail("task not found".into()));
                    }
                    Err(e) => return ok(fail(e.to_string())),
                }
            }
            pb::CfgType::SourceType => {
                let compare = req.dmrs_compare_password.as_deref();
                match self.sched.source_config_compare(&req.name, compare) {
                    Ok((cfg, m)) => {
                        matches = m;
                        cfg
                    }
                    Err(MasterError::SourceConfigNotFound(_)) => {
                        return ok(fail("source not found".into()));
                    }
                    Err(e) => return ok(fail(e.to_string())),
                }
            }
            // DM's texts for an unknown name (no name in them: `master not found`, …).
            pb::CfgType::MasterType => {
                if req.name != self.name {
                    return ok(fail("master not found".into()));
                }
                self.settings.current().to_toml()
            }
            pb::CfgType::WorkerType => match self.sched.lock().workers.get(&req.name) {
                Some(w) => worker_toml(&w.rec.name, &w.rec.addr, &self.addr),
                None => return ok(fail("worker not found".into())),
            },
            pb::CfgType::InvalidType => return ok(fail("invalid config type".into())),
        };
        ok(pb::GetCfgResponse {
            result: true,
            msg: String::new(),
            cfg,
            dmrs_password_matches: matches,
        })
    }

    async fn handle_error(
        &self,
        req: Request<pb::HandleErrorRequest>,
    ) -> Res<pb::HandleErrorResponse> {
        let req = req.into_inner();
        let fail = |msg: String| pb::HandleErrorResponse {
            result: false,
            msg,
            sources: vec![],
        };
        if !req.dmrs_remove_lock_id.is_empty() {
            // DM v1's break-ddl-lock --remove-id: the master forgets the lock.
            let _g = self.sched.change().await;
            let removed = self
                .sched
                .lock()
                .shard_locks
                .locks
                .remove(&req.dmrs_remove_lock_id);
            if removed.is_none() {
                return ok(fail(format!(
                    "[code=38019] lock with ID {} not found",
                    req.dmrs_remove_lock_id
                )));
            }
            let _ = self
                .sched
                .persist(vec![store::del_op(
                    store::SHARD_LOCKS,
                    &req.dmrs_remove_lock_id,
                )])
                .await;
            tracing::info!(lock = %req.dmrs_remove_lock_id, "break-ddl-lock: lock removed");
            if req.dmrs_break_lock.is_empty() {
                return ok(pb::HandleErrorResponse {
                    result: true,
                    msg: String::new(),
                    sources: vec![],
                });
            }
        }
        let task_sources = self.sched.lock().task_sources(&req.task);
        if task_sources.is_empty() {
            return ok(fail(format!(
                "task {} has no source or not exist, please check the task name and status",
                req.task
            )));
        }
        if req.dmrs_sharding {
            // DM v1's sql-skip / sql-replace --sharding: kept here, handed to the owner of the
            // task's lock whose DDLs match, with its execute operation.
            let op = pb::ErrorOp::try_from(req.op).unwrap_or(pb::ErrorOp::InvalidErrorOp);
            if req.dmrs_sql_pattern.is_empty()
                || !matches!(op, pb::ErrorOp::Skip | pb::ErrorOp::Replace)
            {
                return ok(fail(
                    "[code=38003] --sharding takes sql-skip or sql-replace with --sql-pattern"
                        .into(),
                ));
            }
            let sql = crate::master::shardddl::SqlOp {
                task: req.task.clone(),
                pattern: req.dmrs_sql_pattern.clone(),
                skip: op == pb::ErrorOp::Skip,
                sqls: crate::worker::units::sync::ops::split_sqls(&req.sqls),
            };
            let _g = self.sched.change().await;
            let put = match store::put_op(store::SHARD_SQL_OPS, &sql.key(), &sql) {
                Ok(p) => p,
                Err(e) => return ok(fail(e.to_string())),
            };
            if let Err(e) = self.sched.persist(vec![put]).await {
                return ok(fail(e.to_string()));
            }
            tracing::info!(task = %req.task, pattern = %sql.pattern, skip = sql.skip, "sql operator with --sharding saved for the DDL lock's owner");
            self.sched.lock().shard_locks.sql_ops.insert(sql.key(), sql);
            return ok(pb::HandleErrorResponse {
                result: true,
                msg: "request with --sharding saved and will be sent to DDL lock's owner when resolving DDL lock".into(),
                sources: vec![],
            });
        }
        let named = if req.sources.is_empty() {
            &task_sources
        } else {
            &req.sources
        };
        let sources = match named_sources(&req.task, &task_sources, named) {
            Ok(s) => s,
            Err(m) => return ok(fail(m)),
        };
        let req = &req;
        let out = self
            .per_source("handle-error", &req.task, sources, |worker, _| async move {
                let wreq = pb::HandleWorkerErrorRequest {
                    op: req.op,
                    task: req.task.clone(),
                    binlog_pos: req.binlog_pos.clone(),
                    sqls: req.sqls.clone(),
                    dmrs_sql_pattern: req.dmrs_sql_pattern.clone(),
                    dmrs_end_position: req.dmrs_end_position,
                    dmrs_break_lock: req.dmrs_break_lock.clone(),
                };
                self.sched.handle_error_on(&worker, wreq).await
            })
            .await;
        let result = out.iter().all(|r| r.result);
        ok(pb::HandleErrorResponse {
            result,
            msg: String::new(),
            sources: out,
        })
    }

    async fn get_master_cfg(
        &self,
        _: Request<pb::GetMasterCfgRequest>,
    ) -> Res<pb::GetMasterCfgResponse> {
        ok(pb::GetMasterCfgResponse {
            cfg: self.settings.current().to_toml(),
        })
    }

    async fn transfer_source(
        &self,
        req: Request<pb::TransferSourceRequest>,
    ) -> Res<pb::TransferSourceResponse> {
        let req = req.into_inner();
        let r = self.sched.transfer_source(&req.source, &req.worker).await;
        ok(pb::TransferSourceResponse {
            result: r.is_ok(),
            msg: r.err().map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    async fn update_worker_relay_config(
        &self,
        req: Request<pb::UpdateWorkerRelayConfigRequest>,
    ) -> Res<pb::CommonWorkerResponse> {
        let req = req.into_inner();
        let source = self.sched.source_of_name(&req.worker);
        let answer = |result: bool, msg: String| pb::CommonWorkerResponse {
            result,
            msg,
            source: source.clone(),
            worker: self
                .sched
                .lock()
                .worker_of(&source)
                .unwrap_or_default()
                .to_string(),
        };
        let cfg = match crate::config::parse_source(req.config.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => return ok(answer(false, e.to_string())),
        };
        match self.sched.update_relay_config(&source, &cfg).await {
            Ok(()) => ok(answer(true, String::new())),
            Err(m) => ok(answer(false, m)),
        }
    }

    async fn migrate_worker_relay(
        &self,
        req: Request<pb::MigrateWorkerRelayRequest>,
    ) -> Res<pb::CommonWorkerResponse> {
        let req = req.into_inner();
        let source = self.sched.source_of_name(&req.worker);
        let r = self
            .sched
            .migrate_relay(&source, &req.binlog_name, u64::from(req.binlog_pos))
            .await;
        let worker = self
            .sched
            .lock()
            .worker_of(&source)
            .unwrap_or_default()
            .to_string();
        ok(pb::CommonWorkerResponse {
            result: r.is_ok(),
            msg: r.err().unwrap_or_default(),
            source,
            worker,
        })
    }

    async fn switch_worker_relay_master(
        &self,
        req: Request<pb::SwitchWorkerRelayMasterRequest>,
    ) -> Res<pb::SwitchWorkerRelayMasterResponse> {
        let req = req.into_inner();
        if req.workers.is_empty() {
            return ok(pb::SwitchWorkerRelayMasterResponse {
                result: false,
                msg: "must specify at least one source (`-s` / `--source`)".into(),
                workers: vec![],
            });
        }
        let workers = self.sched.switch_relay_master(&req.workers).await;
        ok(pb::SwitchWorkerRelayMasterResponse {
            result: workers.iter().all(|w| w.result),
            msg: String::new(),
            workers,
        })
    }

    async fn operate_relay(
        &self,
        req: Request<pb::OperateRelayRequest>,
    ) -> Res<pb::OperateRelayResponse> {
        match self.sched.operate_relay(req.into_inner()).await {
            Ok(sources) => ok(pb::OperateRelayResponse {
                result: true,
                msg: String::new(),
                sources,
            }),
            Err(msg) => ok(pb::OperateRelayResponse {
                result: false,
                msg,
                sources: Vec::new(),
            }),
        }
    }

    /// DM v1's refresh-worker-tasks: push now, then one line per worker.
    async fn refresh_worker_tasks(
        &self,
        _: Request<pb::RefreshWorkerTasksRequest>,
    ) -> Res<pb::RefreshWorkerTasksResponse> {
        let workers = self
            .sched
            .refresh_worker_tasks()
            .await
            .into_iter()
            .map(|w| pb::RefreshWorkerTasksMsg {
                worker: w.worker,
                msg: w.msg,
            })
            .collect();
        ok(pb::RefreshWorkerTasksResponse {
            result: true,
            workers,
        })
    }

    /// DM v1's update-master-config: rewrite the config file, apply what can change online,
    /// answer every worker's status.
    async fn update_master_config(
        &self,
        req: Request<pb::UpdateMasterConfigRequest>,
    ) -> Res<pb::UpdateMasterConfigResponse> {
        let req = req.into_inner();
        ok(match self.settings.update(&req.config, &self.sched).await {
            Ok(msg) => pb::UpdateMasterConfigResponse {
                result: true,
                msg,
                workers: self.sched.all_worker_status().await,
            },
            Err(msg) => pb::UpdateMasterConfigResponse {
                result: false,
                msg,
                workers: vec![],
            },
        })
    }

    /// DM v7's Encrypt: the plaintext sealed under the master's secret key (under DM's
    /// built-in key when it has none: dm-rs keeps DM v1–v6's ciphertexts working, where DM v7
    /// answers "secret key not initialized"). The plaintext is never logged.
    async fn encrypt(&self, req: Request<pb::EncryptRequest>) -> Res<pb::EncryptResponse> {
        let req = req.into_inner();
        ok(match crate::password::encrypt(&req.plaintext) {
            Ok(ciphertext) => pb::EncryptResponse {
                result: true,
                msg: String::new(),
                ciphertext,
            },
            Err(e) => pb::EncryptResponse {
                result: false,
                msg: e.to_string(),
                ciphertext: String::new(),
            },
        })
    }
}
