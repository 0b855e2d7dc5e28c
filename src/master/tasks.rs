//! Task operations as [`Scheduler`] methods: start (with the precheck, and `-s NEW` adding
//! sources to a running task), pause / resume / stop, update, check, and the stored config.
//! start-task and check-task answer with DM's precheck message (`pre-check is passed. `, the
//! warnings, or code 26005 with the failures) and take `--start-time` ([`super::start_time`]).
//!
//! Called by the gRPC handlers in `server.rs`, which only translate wire types into these
//! requests and [`Outcome`]s / [`MasterError`]s back. Each change is computed under the
//! state lock, written to the store outside it, then applied in memory (see the scheduler's
//! module doc); task operations then push the workers at once and wait (≤ [`WAIT`]) until
//! they report the expected stage, as DM's master does.

use std::collections::BTreeMap;
use std::time::Duration;

use super::MasterError;
use super::scheduler::{Scheduler, TaskEntry, load_task};
use super::store::{self, ExpectedStage, SubTaskRecord, TaskRecord};
use crate::config::changes::non_updatable_changes;
use crate::config::task::TaskConfig;
use crate::pb::{self, Stage};

/// How long a task operation waits for the workers (DM: 10 polls, 1 s apart).
pub const WAIT: Duration = Duration::from_secs(10);
/// The failures and warnings start-task's precheck lists (DM's `DefaultErrorCnt`/`WarnCnt`).
pub const DEFAULT_ERR_CNT: usize = 10;
pub const DEFAULT_WARN_CNT: usize = 10;

/// One source's part of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOutcome {
    pub source: String,
    /// The worker bound to the source ("" when none).
    pub worker: String,
    pub ok: bool,
    pub msg: String,
}

/// The per-source answers of an operation; `ok` when all are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub sources: Vec<SourceOutcome>,
    /// start-task: the precheck's message (DM's `checkResult`: `pre-check is passed. ` or
    /// its warnings; empty when every item is ignored).
    pub check_result: String,
    /// start-task: DM's note on a deprecated setting the task file still has (its `msg`).
    pub note: String,
}

/// start-task as the master receives it.
#[derive(Debug, Clone, Default)]
pub struct StartTask {
    /// The task file (YAML; its password may be plain, sealed or already resolved).
    pub yaml: String,
    /// Sources to start; empty means all of the task's.
    pub sources: Vec<String>,
    pub remove_meta: bool,
    /// Create the subtasks Paused (dm-rs's `start-task --paused`).
    pub paused: bool,
    /// DM v6's `--start-time` (empty: none): each source starts at the time's position.
    pub start_time: String,
}

/// What pause-task, resume-task and stop-task ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOperation {
    Pause,
    Resume,
    /// stop-task (DM v6+ sends it as `Delete`).
    Stop,
}

impl TaskOperation {
    /// The wire op, or the refusal DM gives for any other op.
    pub fn from_pb(op: pb::TaskOp, task: &str) -> Result<TaskOperation, MasterError> {
        match op {
            pb::TaskOp::Pause => Ok(TaskOperation::Pause),
            pb::TaskOp::Resume => Ok(TaskOperation::Resume),
            pb::TaskOp::Stop | pb::TaskOp::Delete => Ok(TaskOperation::Stop),
            other => Err(MasterError::InvalidOp {
                op: other.as_str_name().to_string(),
                task: task.to_string(),
            }),
        }
    }

    /// The stage the subtasks must reach (None: gone).
    fn target(self) -> Option<ExpectedStage> {
        match self {
            TaskOperation::Pause => Some(ExpectedStage::Paused),
            TaskOperation::Resume => Some(ExpectedStage::Running),
            TaskOperation::Stop => None,
        }
    }
}

/// The sources query-status asks, in order, and the task names each runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTargets {
    pub sources: Vec<String>,
    pub tasks: BTreeMap<String, Vec<String>>,
}

/// check-task's answer: `passed` is DM's `result`, `msg` its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub passed: bool,
    pub msg: String,
}

/// The task of a start-task / check-task request: with `--start-time` its format is checked
/// first (as DM's `TaskCliArgs.Verify`), the task loads without its `meta` (DM's fake meta)
/// and must be incremental.
fn load_request(
    yaml: &str,
    start_time: &str,
) -> Result<(TaskConfig, Option<super::start_time::StartTime>), MasterError> {
    if start_time.is_empty() {
        return Ok((load_task(yaml)?, None));
    }
    let t = super::start_time::parse(start_time).map_err(MasterError::StartTime)?;
    let cfg = crate::config::parse_task_for_start_time(yaml.as_bytes())?.config;
    if cfg.task_mode != "incremental" {
        return Err(MasterError::StartTimeMode {
            task: cfg.name.clone(),
            mode: cfg.task_mode.clone(),
        });
    }
    Ok((cfg, Some(t)))
}

/// Puts each source's position for `t` into its instance's `meta` (sources without a config
/// here keep the placeholder: starting them is refused as their source does not exist).
async fn apply_start_time(
    cfg: &mut TaskConfig,
    t: &super::start_time::StartTime,
    sources: &[(String, crate::config::SourceConfig)],
) -> Result<(), MasterError> {
    for (id, src) in sources {
        let pos = super::start_time::resolve(src, t).await?;
        for inst in cfg.mysql_instances.iter_mut().flatten() {
            if inst.source_id == *id {
                inst.meta = Some(crate::config::task::Meta {
                    binlog_name: pos.file.clone(),
                    binlog_pos: u32::try_from(pos.pos).unwrap_or(u32::MAX),
                    binlog_gtid: String::new(),
                });
            }
        }
    }
    Ok(())
}

/// The precheck message a start-task / check-task answers with, or the refusal.
fn precheck_message(
    report: Option<crate::checker::CheckReport>,
    err_cnt: usize,
    warn_cnt: usize,
) -> Result<String, MasterError> {
    match report {
        None => Ok(String::new()),
        Some(r) => r
            .to_dm_message(err_cnt, warn_cnt)
            .map_err(MasterError::PrecheckFailed),
    }
}

/// Adds the entries of `from` that `into` lacks (existing ones stay as they are).
fn merge_missing<V: Clone>(into: &mut BTreeMap<String, V>, from: &BTreeMap<String, V>) {
    for (k, v) in from {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

impl Scheduler {
    /// Pushes now and waits for the stage on each source; one answer per source.
    pub async fn push_and_wait(
        &self,
        task: &str,
        sources: &[String],
        expect: Option<ExpectedStage>,
    ) -> Outcome {
        self.round().await;
        let failed = self.wait_stage(task, sources, expect, WAIT).await;
        let st = self.lock();
        let sources: Vec<SourceOutcome> = sources
            .iter()
            .map(|s| {
                let msg = failed.get(s).cloned();
                SourceOutcome {
                    source: s.clone(),
                    worker: st.worker_of(s).unwrap_or("").to_string(),
                    ok: msg.is_none(),
                    msg: msg.unwrap_or_default(),
                }
            })
            .collect();
        Outcome {
            ok: sources.iter().all(|s| s.ok),
            sources,
            check_result: String::new(),
            note: String::new(),
        }
    }

    /// start-task: checks the request against the cluster, prechecks the upstreams and the
    /// downstream, stores the task and its new subtasks, then pushes and waits.
    pub async fn start_task(&self, req: StartTask) -> Result<Outcome, MasterError> {
        let (mut cfg, start_time) = load_request(&req.yaml, &req.start_time)?;
        let task_sources: Vec<String> = cfg.instances().map(|i| i.source_id.clone()).collect();
        let sources: Vec<String> = if req.sources.is_empty() {
            task_sources.clone()
        } else {
            let unknown: Vec<String> = req
                .sources
                .iter()
                .filter(|s| !task_sources.contains(s))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(MasterError::SourcesNotInTask {
                    sources: unknown,
                    task: cfg.name.clone(),
                });
            }
            req.sources.clone()
        };
        let precheck_targets = self.start_targets(&cfg, &sources)?;
        if let Some(t) = &start_time {
            let all = self.source_configs(&cfg);
            apply_start_time(&mut cfg, t, &all).await?;
        }
        // Precheck against the upstreams and the downstream (skipped with ignore-checking-items: ["all"]).
        let check_result = precheck_message(
            super::precheck(&cfg, &precheck_targets).await,
            DEFAULT_ERR_CNT,
            DEFAULT_WARN_CNT,
        )?;
        // A start time overrides the checkpoint (DM): the sources start from it afresh.
        let remove_meta = req.remove_meta || start_time.is_some();
        let new_sources: Vec<String> = precheck_targets.into_iter().map(|(s, _)| s).collect();
        let expect = if req.paused {
            ExpectedStage::Paused
        } else {
            ExpectedStage::Running
        };
        {
            let _changes = self.change().await;
            // Another start-task of the same task may have won while this one prechecked.
            let raced: Vec<String> = {
                let st = self.lock();
                new_sources
                    .iter()
                    .filter(|s| st.subtasks.contains_key(&(cfg.name.clone(), (*s).clone())))
                    .cloned()
                    .collect()
            };
            if !raced.is_empty() {
                return Err(MasterError::SubtasksExist {
                    task: cfg.name.clone(),
                    sources: raced,
                });
            }
            let to_store = self.config_to_store(&cfg, &new_sources)?;
            let rev = self
                .lock()
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
            let first_id = if new_sources.is_empty() {
                0
            } else {
                let store = self.store.clone();
                let n = new_sources.len() as u64;
                tokio::task::spawn_blocking(move || store.reserve_ids("start", n))
                    .await
                    .map_err(|e| store::StoreError::Db(format!("store writer stopped: {e}")))??
            };
            let subs: Vec<SubTaskRecord> = new_sources
                .iter()
                .zip(first_id..)
                .map(|(s, start_id)| SubTaskRecord {
                    task: cfg.name.clone(),
                    source: s.clone(),
                    expect,
                    start_id,
                    remove_meta,
                    stage_rev: 0,
                })
                .collect();
            let mut ops = vec![store::put_op(store::TASKS, &cfg.name, &rec)?];
            for sub in &subs {
                ops.push(store::put_op(store::SUBTASKS, &sub.key(), sub)?);
            }
            self.persist(ops).await?;
            let mut st = self.lock();
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
        let mut out = self
            .push_and_wait(&cfg.name, &new_sources, Some(expect))
            .await;
        out.check_result = check_result;
        if cfg.remove_meta {
            out.note = "`remove-meta` in task config is deprecated, please use `start-task ... --remove-meta` instead".to_string();
        }
        Ok(out)
    }

    /// The configs of the task's sources that exist here.
    fn source_configs(&self, cfg: &TaskConfig) -> Vec<(String, crate::config::SourceConfig)> {
        let st = self.lock();
        cfg.instances()
            .filter_map(|i| {
                st.sources
                    .get(&i.source_id)
                    .and_then(|e| e.cfg.clone())
                    .map(|c| (i.source_id.clone(), c))
            })
            .collect()
    }

    /// The checks of start-task that need the cluster's state; the sources to start (those
    /// without a subtask of this task yet) with their configs, for the precheck.
    fn start_targets(
        &self,
        cfg: &TaskConfig,
        sources: &[String],
    ) -> Result<Vec<(String, crate::config::SourceConfig)>, MasterError> {
        let st = self.lock();
        let missing: Vec<&str> = sources
            .iter()
            .filter(|s| !st.sources.contains_key(*s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(MasterError::SourcesNotCreated(missing.join(", ")));
        }
        let unbound: Vec<String> = sources
            .iter()
            .filter(|s| st.worker_of(s).is_none())
            .cloned()
            .collect();
        if !unbound.is_empty() {
            return Err(MasterError::SourcesUnbound {
                sources: unbound,
                master: self.addr.clone(),
            });
        }
        let has_subtask = |s: &String| st.subtasks.contains_key(&(cfg.name.clone(), s.clone()));
        let existing: Vec<String> = sources.iter().filter(|s| has_subtask(s)).cloned().collect();
        if !existing.is_empty() && existing.len() == sources.len() {
            return Err(MasterError::SubtasksExist {
                task: cfg.name.clone(),
                sources: existing,
            });
        }
        Ok(sources
            .iter()
            .filter(|s| !has_subtask(s))
            .filter_map(|s| {
                st.sources
                    .get(s)
                    .and_then(|e| e.cfg.clone())
                    .map(|c| (s.clone(), c))
            })
            .collect())
    }

    /// The config to store for start-task. Adding sources to a running task (start-task -s
    /// NEW): the fields update-task cannot change must be what the task already runs with;
    /// the stored config becomes the old one plus the new instances (their rules added), so a
    /// later update-task still sees any rule change for the running sources.
    fn config_to_store(
        &self,
        cfg: &TaskConfig,
        new_sources: &[String],
    ) -> Result<TaskConfig, MasterError> {
        let st = self.lock();
        let running = st.task_sources(&cfg.name);
        let Some(old) = st.tasks.get(&cfg.name).and_then(|t| t.cfg.as_ref()) else {
            return Ok(cfg.clone());
        };
        if running.is_empty() {
            return Ok(cfg.clone());
        }
        let mut old_cmp = old.clone();
        old_cmp.mysql_instances.retain(|i| {
            i.as_ref()
                .is_some_and(|i| !new_sources.contains(&i.source_id))
        });
        let diff = non_updatable_changes(&old_cmp, &cfg.without_sources(new_sources));
        if !diff.is_empty() {
            return Err(MasterError::RunsWithDifferentConfig {
                task: cfg.name.clone(),
                sources: running,
                changed: diff.join(", "),
            });
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
        Ok(merged)
    }

    /// pause-task / resume-task / stop-task on `sources` (empty: all of the task's).
    pub async fn operate_task(
        &self,
        op: TaskOperation,
        task: &str,
        sources: &[String],
    ) -> Result<Outcome, MasterError> {
        let expect = op.target();
        let sources = {
            let _changes = self.change().await;
            let (sources, ops, rest) = {
                let st = self.lock();
                let all = st.task_sources(task);
                if all.is_empty() {
                    return Err(MasterError::TaskNotFound(task.to_string()));
                }
                let sources = if sources.is_empty() {
                    all.clone()
                } else {
                    let unknown: Vec<String> = sources
                        .iter()
                        .filter(|s| !all.contains(s))
                        .cloned()
                        .collect();
                    if !unknown.is_empty() {
                        return Err(MasterError::SourcesNotInOperation(unknown));
                    }
                    sources.to_vec()
                };
                let mut ops = Vec::new();
                for s in &sources {
                    let key = (task.to_string(), s.clone());
                    match (expect, st.subtasks.get(&key)) {
                        (Some(stage), Some(sub)) => {
                            let mut sub = sub.clone();
                            sub.expect = stage;
                            sub.stage_rev += 1;
                            sub.remove_meta = false;
                            ops.push(store::put_op(store::SUBTASKS, &sub.key(), &sub)?);
                        }
                        (None, Some(sub)) => ops.push(store::del_op(store::SUBTASKS, &sub.key())),
                        (_, None) => {}
                    }
                }
                // stop-task: the task leaves the store with its last source; stop-task -s SRC
                // drops the source from the task's stored config.
                let mut rest = None;
                if expect.is_none() {
                    if all.iter().all(|s| sources.contains(s)) {
                        ops.push(store::del_op(store::TASKS, task));
                        // Its shard DDL locks go with it.
                        for (id, l) in &st.shard_locks.locks {
                            if l.task == task {
                                ops.push(store::del_op(store::SHARD_LOCKS, id));
                            }
                        }
                        for (k, o) in &st.shard_locks.sql_ops {
                            if o.task == task {
                                ops.push(store::del_op(store::SHARD_SQL_OPS, k));
                            }
                        }
                        for (id, l) in &st.opt_locks.locks {
                            if l.task == task {
                                ops.push(store::del_op(store::OPT_LOCKS, id));
                            }
                        }
                    } else if let Some(t) = st.tasks.get(task)
                        && let Some(cfg) = t.cfg.as_ref()
                    {
                        let cfg = cfg.without_sources(&sources);
                        let mut rec = t.rec.clone();
                        rec.yaml = cfg.to_yaml_sealed();
                        ops.push(store::put_op(store::TASKS, task, &rec)?);
                        rest = Some((rec, cfg));
                    }
                }
                (sources, ops, rest)
            };
            self.persist(ops).await?;
            let mut st = self.lock();
            for s in &sources {
                let key = (task.to_string(), s.clone());
                match expect {
                    Some(stage) => {
                        if let Some(sub) = st.subtasks.get_mut(&key) {
                            sub.expect = stage;
                            sub.stage_rev += 1;
                            sub.remove_meta = false;
                        }
                    }
                    None => {
                        st.subtasks.remove(&key);
                    }
                }
            }
            if expect.is_none() {
                match rest {
                    None => {
                        st.tasks.remove(task);
                        st.shard_locks.remove_task(task);
                        st.opt_locks.remove_task(task);
                        st.opt_reported.retain(|(t, _)| t != task);
                    }
                    Some((rec, cfg)) => {
                        if let Some(t) = st.tasks.get_mut(task) {
                            t.rec = rec;
                            t.cfg = Some(cfg);
                        }
                    }
                }
            }
            sources
        };
        tracing::info!(task = %task, op = ?op, sources = ?sources, "task operation");
        Ok(self.push_and_wait(task, &sources, expect).await)
    }

    /// update-task: only the online fields may change, every subtask must be Paused (DM's
    /// worker rule, 40052); the new config is stored with the next revision and pushed.
    /// A subtask that is not Paused gives a not-ok [`Outcome`], nothing changed.
    pub async fn update_task(&self, yaml: &str) -> Result<Outcome, MasterError> {
        let new = load_task(yaml)?;
        // update-task has no precheck: refuse here what start-task's precheck refuses.
        let refused = new.unsupported();
        if !refused.is_empty() {
            return Err(MasterError::Unsupported(
                refused
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
        let (old, sources) = {
            let st = self.lock();
            match st.tasks.get(&new.name).and_then(|t| t.cfg.clone()) {
                Some(c) => (c, st.task_sources(&new.name)),
                None => return Err(MasterError::TaskNotFound(new.name.clone())),
            }
        };
        let ids = |c: &TaskConfig| {
            c.instances()
                .map(|i| i.source_id.clone())
                .collect::<Vec<_>>()
        };
        if ids(&new) != ids(&old) {
            return Err(MasterError::UpdateChangesSources(new.name.clone()));
        }
        let bad = non_updatable_changes(&old, &new);
        if !bad.is_empty() {
            return Err(MasterError::NotUpdatable {
                task: new.name.clone(),
                changed: bad.join(", "),
            });
        }
        let mut out = Vec::new();
        for s in &sources {
            let worker = self.lock().worker_of(s).unwrap_or("").to_string();
            let msg = match self.subtask_status(&new.name, s).await {
                Ok(Some(st)) if st.stage == Stage::Paused as i32 => None,
                Ok(st) => {
                    let stage = st
                        .and_then(|x| Stage::try_from(x.stage).ok())
                        .map(|x| x.as_str_name())
                        .unwrap_or("New");
                    Some(format!(
                        "[code=40052:class=dm-worker:scope=internal:level=low], Message: can only update task on Paused stage, but current stage is {stage}, Workaround: Please use `pause-task` command to pause the task."
                    ))
                }
                Err(e) => Some(e.to_string()),
            };
            out.push(SourceOutcome {
                source: s.clone(),
                worker,
                ok: msg.is_none(),
                msg: msg.unwrap_or_default(),
            });
        }
        if out.iter().any(|s| !s.ok) {
            return Ok(Outcome {
                ok: false,
                sources: out,
                check_result: String::new(),
                note: String::new(),
            });
        }
        {
            let _changes = self.change().await;
            let rec = {
                let st = self.lock();
                let Some(t) = st.tasks.get(&new.name) else {
                    return Err(MasterError::TaskDisappeared(new.name.clone()));
                };
                TaskRecord {
                    name: new.name.clone(),
                    yaml: new.to_yaml_sealed(),
                    config_rev: t.rec.config_rev + 1,
                }
            };
            self.persist(vec![store::put_op(store::TASKS, &new.name, &rec)?])
                .await?;
            if let Some(t) = self.lock().tasks.get_mut(&new.name) {
                t.rec = rec;
                t.cfg = Some(new.clone());
            }
        }
        tracing::info!(task = %new.name, "task updated");
        self.round().await;
        Ok(Outcome {
            ok: true,
            sources: out,
            check_result: String::new(),
            note: String::new(),
        })
    }

    /// check-task: the task's sources must exist; then the precheck (at most `err_cnt`
    /// errors and `warn_cnt` warnings shown, as DM's `check-task -e/-w`), with each source at
    /// its `--start-time` position when one is given.
    pub async fn check_task(
        &self,
        yaml: &str,
        err_cnt: i64,
        warn_cnt: i64,
        start_time: &str,
    ) -> Result<CheckOutcome, MasterError> {
        let (mut cfg, start_time) = load_request(yaml, start_time)?;
        let (targets, missing) = {
            let st = self.lock();
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
            return Err(MasterError::SourcesNotCreated(missing.join(", ")));
        }
        if let Some(t) = &start_time {
            apply_start_time(&mut cfg, t, &targets).await?;
        }
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        let report = super::precheck(&cfg, &targets).await;
        Ok(
            match precheck_message(report, count(err_cnt), count(warn_cnt)) {
                Ok(msg) => CheckOutcome { passed: true, msg },
                Err(e) => CheckOutcome {
                    passed: false,
                    msg: e.to_string(),
                },
            },
        )
    }

    /// The stored task config as get-config shows it: normalised, password masked, and a
    /// comment line with a fingerprint of the stored version under the master's secret key
    /// (stable while the stored task is unchanged, so a saved plan's digest holds; useless
    /// for guessing the password). With `compare` (a password, DM-sealed or plain), also
    /// whether it is the task's target-database password, compared by value here.
    pub fn task_config(
        &self,
        name: &str,
        compare: Option<&str>,
    ) -> Result<(String, Option<bool>), MasterError> {
        let st = self.lock();
        let t = st
            .tasks
            .get(name)
            .ok_or_else(|| MasterError::TaskConfigNotFound(name.to_string()))?;
        let c = t.cfg.as_ref().ok_or_else(|| MasterError::TaskDoesNotLoad {
            task: name.to_string(),
            why: t.error.clone(),
        })?;
        let plain = c
            .target_database
            .as_ref()
            .map(|d| d.plain_password())
            .unwrap_or_default();
        let fp = self.store.fingerprint(&[name, &t.rec.yaml, &plain]);
        let text = format!(
            "{}{}{fp}\n",
            c.to_yaml_masked(),
            crate::password::FINGERPRINT_COMMENT
        );
        Ok((
            text,
            compare.map(|p| crate::password::same_password(p, &plain)),
        ))
    }

    /// What query-status asks the workers: the sources (sorted) — those of `task`, or all when
    /// it is empty, narrowed to `only` when given — each with the task names it runs.
    pub fn status_targets(
        &self,
        task: &str,
        only: &[String],
    ) -> Result<StatusTargets, MasterError> {
        let st = self.lock();
        let unknown: Vec<String> = only
            .iter()
            .filter(|s| !st.sources.contains_key(*s))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(MasterError::SourcesNotAdded(unknown));
        }
        let mut sources: Vec<String> = if task.is_empty() {
            st.sources.keys().cloned().collect()
        } else {
            let s = st.task_sources(task);
            if s.is_empty() {
                return Err(MasterError::TaskNotFound(task.to_string()));
            }
            s
        };
        if !only.is_empty() {
            sources.retain(|s| only.contains(s));
        }
        sources.sort();
        let names = sources
            .iter()
            .map(|s| {
                let tasks = st
                    .subtasks
                    .keys()
                    .filter(|(t, src)| src == s && (task.is_empty() || t == task))
                    .map(|(t, _)| t.clone())
                    .collect();
                (s.clone(), tasks)
            })
            .collect();
        Ok(StatusTargets {
            sources,
            tasks: names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::store::Store;

    const TASK: &str = "name: t\ntask-mode: incremental\ntarget-database: {host: 127.0.0.1, port: 3306, user: root, password: ''}\n\
mysql-instances:\n  - source-id: s1\n    meta: {binlog-name: b.000001, binlog-pos: 4}\n";

    fn sched(dir: &std::path::Path) -> Scheduler {
        Scheduler::open(Store::open(dir).unwrap(), None, "127.0.0.1:8261").unwrap()
    }

    #[test]
    fn delete_is_stop_and_other_ops_are_refused() {
        let op = |o| TaskOperation::from_pb(o, "t");
        assert_eq!(op(pb::TaskOp::Delete).unwrap(), TaskOperation::Stop);
        assert_eq!(op(pb::TaskOp::Stop).unwrap(), TaskOperation::Stop);
        assert_eq!(op(pb::TaskOp::Pause).unwrap(), TaskOperation::Pause);
        let e = op(pb::TaskOp::AutoResume).unwrap_err();
        assert_eq!(e.to_string(), "[code=38041] invalid op AutoResume on t");
    }

    #[tokio::test]
    async fn start_task_refuses_before_storing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let s = sched(dir.path());
        let start = |start_time: &str| StartTask {
            yaml: TASK.into(),
            start_time: start_time.into(),
            ..Default::default()
        };
        let e = s.start_task(start("20240101 000000")).await.unwrap_err();
        assert!(matches!(e, MasterError::StartTime(_)), "{e}");
        assert!(
            e.to_string().starts_with("error while parse start-time"),
            "{e}"
        );
        let e = s
            .start_task(start("2024-01-01 00:00:00"))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("[code=20031] source s1 "), "{e}");
        let e = s.start_task(start("")).await.unwrap_err();
        assert!(e.to_string().starts_with("[code=20031] source s1 "), "{e}");
        let e = s
            .check_task(TASK, 0, 0, "2024-01-01 00:00")
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("error while parse start-time"),
            "{e}"
        );
        let full = TASK.replace("incremental", "full");
        let e = s
            .check_task(&full, 0, 0, "2024-01-01 00:00:00")
            .await
            .unwrap_err();
        assert!(matches!(e, MasterError::StartTimeMode { .. }), "{e}");
        let e = s
            .operate_task(TaskOperation::Stop, "t", &[])
            .await
            .unwrap_err();
        assert!(matches!(e, MasterError::TaskNotFound(_)), "{e}");
        assert!(s.lock().tasks.is_empty());
    }
}
