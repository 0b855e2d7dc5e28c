//! Source and member operations as [`Scheduler`] methods: operate-source create / update /
//! stop / show (create may name the worker, DM v6's `-w`), transfer-source (DM v2's checks and
//! texts; running tasks move with the source) and offline-member.
//!
//! operate-source create / update first connect to each file's upstream, as DM does
//! ([`probe_upstreams`]): a source whose upstream refuses the user (or cannot be reached) is
//! not added, with DM's `database driver error` and the server's own words.
//!
//! Called by the gRPC handlers in `server.rs`. Same pattern as the task operations: checked and
//! computed under the state lock, written to the store outside it, applied in memory, then the
//! workers are pushed. Bindings change only here and in the scheduler's round.

use super::MasterError;
use super::scheduler::{Scheduler, SourceEntry, load_source};
use super::store::{self, SourceRecord};
use super::tasks::SourceOutcome;

/// DM's message (word for word) for a source created or shown without a worker.
pub const NO_FREE_WORKER: &str = "source is added but there is no free worker to bound";

/// DM's bound for the upstream check (its `DefaultDBTimeout`).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects to the upstream of every source file that loads (a file that does not load is
/// left to [`Scheduler::create_sources`], which names its error), as DM's operate-source create
/// and update do before storing anything: the connection must open, and a MySQL upstream of a
/// source with `enable-gtid: true` must have `GTID_MODE = ON` (DM's 26007; MariaDB always has
/// GTIDs).
pub async fn probe_upstreams(yamls: &[String]) -> Result<(), MasterError> {
    for cfg in yamls.iter().filter_map(|y| load_source(y).ok()) {
        let driver = |cause: String| {
            MasterError::Upstream(format!(
                "[code=10001:class=database:scope=upstream:level=high], Message: database driver error, RawCause: {cause}, Workaround: Please check the database connection and the database config in configuration file."
            ))
        };
        // The cause names the address and the server's own words (`Access denied for user …`).
        let mut conn = match cfg.from.connect("from", vec![]).await {
            Ok(c) => c,
            Err(e) => return Err(driver(e.to_string())),
        };
        use mysql_async::prelude::Queryable;
        let mut ask = async |q: &str| match tokio::time::timeout(
            PROBE_TIMEOUT,
            conn.query_first::<String, _>(q),
        )
        .await
        {
            Ok(Ok(v)) => Ok(v.unwrap_or_default()),
            Ok(Err(e)) => Err(driver(e.to_string())),
            Err(_) => Err(driver(format!("no answer within {PROBE_TIMEOUT:?}"))),
        };
        let version = ask("SELECT @@version").await;
        let mariadb = cfg.flavor.eq_ignore_ascii_case("mariadb")
            || version
                .as_ref()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("mariadb"));
        // MariaDB always has GTIDs (and no gtid_mode variable).
        let gtid_mode = match (&version, cfg.enable_gtid && !mariadb) {
            (Ok(_), true) => ask("SELECT @@global.gtid_mode").await.map(Some),
            _ => Ok(None),
        };
        let _ = tokio::time::timeout(PROBE_TIMEOUT, conn.disconnect()).await;
        version?;
        if let Some(mode) = gtid_mode?
            && !mode.eq_ignore_ascii_case("ON")
        {
            return Err(MasterError::Upstream(format!(
                "[code=26007:class=task-check:scope=internal:level=medium], Message: {} has GTID_MODE = {mode} instead of ON, Workaround: Please check the `enable-gtid` config in source configuration file.",
                cfg.source_id
            )));
        }
    }
    Ok(())
}

/// Which operate-source change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChange {
    Create,
    Update,
}

impl SourceChange {
    fn name(self) -> &'static str {
        match self {
            SourceChange::Create => "create",
            SourceChange::Update => "update",
        }
    }
}

/// Tasks that have a subtask on `source`.
fn tasks_on(st: &super::scheduler::State, source: &str) -> Vec<String> {
    st.subtasks
        .keys()
        .filter(|(_, s)| s == source)
        .map(|(t, _)| t.clone())
        .collect()
}

impl Scheduler {
    /// operate-source create / update: every file must load and pass the checks, or nothing
    /// is stored. `worker` (create only, one file): bind the source to that worker, which must
    /// be online and free; otherwise sources are bound to any free worker.
    pub async fn create_sources(
        &self,
        change: SourceChange,
        yamls: &[String],
        worker: &str,
    ) -> Result<Vec<SourceOutcome>, MasterError> {
        let parsed = yamls
            .iter()
            .map(|y| load_source(y))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err(MasterError::NoSourceConfig);
        }
        if !worker.is_empty() {
            if change != SourceChange::Create {
                return Err(MasterError::WorkerNameOnlyOnCreate(change.name()));
            }
            if parsed.len() != 1 {
                return Err(MasterError::WorkerNameNeedsOneSource(parsed.len()));
            }
        }
        let ids: Vec<String> = parsed.iter().map(|c| c.source_id.clone()).collect();
        {
            let _changes = self.change().await;
            let mut ops = Vec::new();
            let mut records = Vec::new();
            {
                let st = self.lock();
                for cfg in &parsed {
                    let id = &cfg.source_id;
                    let exists = st.sources.contains_key(id);
                    match change {
                        SourceChange::Create if exists => {
                            return Err(MasterError::SourceExists(id.clone()));
                        }
                        SourceChange::Update if !exists => {
                            return Err(MasterError::SourceMissing(id.clone()));
                        }
                        SourceChange::Update => {
                            let used = tasks_on(&st, id);
                            if !used.is_empty() {
                                return Err(MasterError::SourceUsedByTasks {
                                    source_id: id.clone(),
                                    tasks: used,
                                });
                            }
                        }
                        SourceChange::Create => {}
                    }
                    let rec = SourceRecord {
                        id: id.clone(),
                        yaml: cfg.to_yaml_sealed(),
                    };
                    ops.push(store::put_op(store::SOURCES, id, &rec)?);
                    records.push(rec);
                }
                if !worker.is_empty() {
                    // DM's checks and texts: the worker must exist and be free.
                    let why = match st.workers.get(worker) {
                        None => return Err(MasterError::WorkerNameNotExist(worker.to_string())),
                        Some(w) if !w.online => Some("it is offline".to_string()),
                        Some(_) => st
                            .source_of(worker)
                            .map(|s| format!("it is bound to source {s}")),
                    };
                    if let Some(why) = why {
                        return Err(MasterError::WorkerNotFree {
                            worker: worker.to_string(),
                            why,
                        });
                    }
                    ops.push(store::put_op(
                        store::BINDINGS,
                        &ids[0],
                        &worker.to_string(),
                    )?);
                }
            }
            self.persist(ops).await?;
            {
                let mut st = self.lock();
                for (rec, cfg) in records.into_iter().zip(parsed) {
                    tracing::info!(source = %rec.id, "source {}d", change.name());
                    st.sources.insert(
                        rec.id.clone(),
                        SourceEntry {
                            rec,
                            cfg: Some(cfg),
                            error: String::new(),
                        },
                    );
                }
                if !worker.is_empty() {
                    tracing::info!(source = %ids[0], %worker, "source bound");
                    st.bindings.insert(ids[0].clone(), worker.to_string());
                }
            }
            self.bind_free().await;
        }
        self.round().await;
        let st = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                let w = st.worker_of(id).unwrap_or("").to_string();
                SourceOutcome {
                    source: id.clone(),
                    ok: true,
                    msg: if w.is_empty() {
                        NO_FREE_WORKER.into()
                    } else {
                        String::new()
                    },
                    worker: w,
                }
            })
            .collect())
    }

    /// operate-source stop: the sources (by id, or by their files) must exist and run no task.
    pub async fn stop_sources(
        &self,
        ids: &[String],
        yamls: &[String],
    ) -> Result<Vec<SourceOutcome>, MasterError> {
        let mut ids = ids.to_vec();
        for y in yamls {
            ids.push(load_source(y)?.source_id);
        }
        let out = {
            let _changes = self.change().await;
            let mut ops = Vec::new();
            {
                let st = self.lock();
                for id in &ids {
                    if !st.sources.contains_key(id) {
                        return Err(MasterError::SourceNotExist(id.clone()));
                    }
                    let used = tasks_on(&st, id);
                    if !used.is_empty() {
                        return Err(MasterError::SourceStillUsed {
                            source_id: id.clone(),
                            tasks: used,
                        });
                    }
                    ops.push(store::del_op(store::SOURCES, id));
                    ops.push(store::del_op(store::BINDINGS, id));
                }
            }
            self.persist(ops).await?;
            let out = {
                let mut st = self.lock();
                ids.iter()
                    .map(|id| {
                        let worker = st.bindings.remove(id).unwrap_or_default();
                        st.sources.remove(id);
                        tracing::info!(source = %id, "source stopped");
                        let msg = if worker.is_empty() {
                            "source is stopped and hasn't bound to worker before being stopped"
                        } else {
                            ""
                        };
                        SourceOutcome {
                            source: id.clone(),
                            worker,
                            ok: true,
                            msg: msg.into(),
                        }
                    })
                    .collect()
            };
            self.bind_free().await;
            out
        };
        self.round().await;
        Ok(out)
    }

    /// operate-source show: every source (or those named) with its worker.
    pub fn show_sources(&self, ids: &[String]) -> Vec<SourceOutcome> {
        let st = self.lock();
        let ids: Vec<String> = if ids.is_empty() {
            st.sources.keys().cloned().collect()
        } else {
            ids.to_vec()
        };
        ids.into_iter()
            .map(|id| {
                let (ok, worker, msg) = if !st.sources.contains_key(&id) {
                    (false, String::new(), format!("source {id} not exist"))
                } else {
                    match st.worker_of(&id) {
                        Some(w) => (true, w.to_string(), String::new()),
                        None => (true, String::new(), NO_FREE_WORKER.to_string()),
                    }
                };
                SourceOutcome {
                    source: id,
                    worker,
                    ok,
                    msg,
                }
            })
            .collect()
    }

    /// transfer-source (DM's `Scheduler.TransferSource`): moves a source to a free online
    /// worker. Its tasks move with it: the running ones must be in the Sync unit (a dump in
    /// progress stays with the current worker's files, DM's 46019); they are paused on the
    /// current worker first (so it stops at a checkpoint), then the binding changes and they
    /// run again on the new worker, in one store write. To the worker it is bound to already,
    /// it is a no-op; a bound or offline target is DM's 46006. The freed worker takes an
    /// unbound source if there is one.
    pub async fn transfer_source(&self, source: &str, worker: &str) -> Result<(), MasterError> {
        let (old, running) = {
            let _changes = self.change().await;
            let st = self.lock();
            if !st.sources.contains_key(source) {
                return Err(MasterError::SourceNotExist(source.to_string()));
            }
            let Some(target) = st.workers.get(worker) else {
                return Err(MasterError::WorkerNameNotExist(worker.to_string()));
            };
            let old = st.worker_of(source).map(str::to_string);
            if old.as_deref() == Some(worker) {
                return Ok(());
            }
            let from = if !target.online {
                Some("offline")
            } else if st.source_of(worker).is_some() {
                Some("bound")
            } else {
                None
            };
            if let Some(from) = from {
                return Err(MasterError::WorkerInvalidTrans {
                    worker: worker.to_string(),
                    from,
                    to: "bound",
                });
            }
            let running: Vec<String> = st
                .subtasks
                .iter()
                .filter(|((_, s), r)| s == source && r.expect == store::ExpectedStage::Running)
                .map(|((t, _), _)| t.clone())
                .collect();
            // An offline worker runs nothing (it fenced itself): nothing to pause there.
            let old = old.filter(|o| st.workers.get(o).is_some_and(|w| w.online));
            (old, running)
        };
        let mut paused = Vec::new();
        if let Some(old) = &old
            && !running.is_empty()
        {
            let status = self.query_worker_or_why(old, "").await.map_err(|why| {
                MasterError::QueryWorkerForTransfer {
                    worker: old.clone(),
                    why,
                }
            })?;
            let sync = crate::pb::UnitType::Sync as i32;
            if status
                .sub_task_status
                .iter()
                .any(|s| running.contains(&s.name) && s.unit != sync)
            {
                return Err(MasterError::RunningNotInSync {
                    source_id: source.to_string(),
                    tasks: running,
                });
            }
            self.set_expected(source, &running, store::ExpectedStage::Paused)
                .await?;
            self.round().await;
            let mut failed = Vec::new();
            for t in &running {
                let why = self
                    .wait_stage(
                        t,
                        &[source.to_string()],
                        Some(store::ExpectedStage::Paused),
                        super::tasks::WAIT,
                    )
                    .await;
                failed.extend(why.into_values().map(|w| format!("{t}: {w}")));
            }
            if !failed.is_empty() {
                self.set_expected(source, &running, store::ExpectedStage::Running)
                    .await?;
                self.round().await;
                return Err(MasterError::PauseForTransfer {
                    tasks: running,
                    why: failed.join("; "),
                });
            }
            paused = running;
        }
        {
            let _changes = self.change().await;
            let mut ops = vec![store::put_op(store::BINDINGS, source, &worker.to_string())?];
            let resumed = {
                let st = self.lock();
                let mut resumed = Vec::new();
                for t in &paused {
                    // Still paused by this transfer (not stopped or resumed meanwhile).
                    if let Some(sub) = st.subtasks.get(&(t.clone(), source.to_string()))
                        && sub.expect == store::ExpectedStage::Paused
                    {
                        let mut sub = sub.clone();
                        sub.expect = store::ExpectedStage::Running;
                        sub.stage_rev += 1;
                        sub.remove_meta = false;
                        ops.push(store::put_op(store::SUBTASKS, &sub.key(), &sub)?);
                        resumed.push(sub);
                    }
                }
                resumed
            };
            self.persist(ops).await?;
            {
                let mut st = self.lock();
                st.bindings.insert(source.to_string(), worker.to_string());
                for sub in resumed {
                    st.subtasks
                        .insert((sub.task.clone(), sub.source.clone()), sub);
                }
            }
            tracing::info!(%source, %worker, from = ?old, tasks = ?paused, "source transferred");
            self.bind_free().await;
        }
        self.round().await;
        Ok(())
    }

    /// Sets the expected stage of `tasks` on `source` durably (a stage change the workers
    /// see at the next push).
    async fn set_expected(
        &self,
        source: &str,
        tasks: &[String],
        stage: store::ExpectedStage,
    ) -> Result<(), MasterError> {
        let _changes = self.change().await;
        let subs: Vec<store::SubTaskRecord> = {
            let st = self.lock();
            tasks
                .iter()
                .filter_map(|t| st.subtasks.get(&(t.clone(), source.to_string())))
                .map(|sub| {
                    let mut sub = sub.clone();
                    sub.expect = stage;
                    sub.stage_rev += 1;
                    sub.remove_meta = false;
                    sub
                })
                .collect()
        };
        let ops = subs
            .iter()
            .map(|sub| store::put_op(store::SUBTASKS, &sub.key(), sub))
            .collect::<Result<Vec<_>, _>>()?;
        self.persist(ops).await?;
        let mut st = self.lock();
        for sub in subs {
            st.subtasks
                .insert((sub.task.clone(), sub.source.clone()), sub);
        }
        Ok(())
    }

    /// offline-member --type worker: forgets an offline worker; its sources go to free ones.
    pub async fn offline_worker(&self, kind: &str, name: &str) -> Result<(), MasterError> {
        if kind != "worker" {
            return Err(MasterError::OfflineNotWorker {
                kind: kind.to_string(),
                name: name.to_string(),
            });
        }
        let _changes = self.change().await;
        let sources: Vec<String> = {
            let st = self.lock();
            match st.workers.get(name) {
                None => return Err(MasterError::WorkerNotExists(name.to_string())),
                Some(w) if w.online => {
                    return Err(MasterError::WorkerStillOnline(name.to_string()));
                }
                Some(_) => st
                    .bindings
                    .iter()
                    .filter(|(_, w)| *w == name)
                    .map(|(s, _)| s.clone())
                    .collect(),
            }
        };
        let mut ops = vec![store::del_op(store::WORKERS, name)];
        ops.extend(sources.iter().map(|s| store::del_op(store::BINDINGS, s)));
        self.persist(ops).await?;
        {
            let mut st = self.lock();
            st.workers.remove(name);
            for s in &sources {
                st.bindings.remove(s);
            }
        }
        tracing::info!(worker = %name, "worker offlined");
        self.bind_free().await;
        Ok(())
    }

    /// The stored source config as get-config shows it (normalised, password masked).
    pub fn source_config(&self, id: &str) -> Result<String, MasterError> {
        self.source_config_compare(id, None).map(|(c, _)| c)
    }

    /// [`Scheduler::source_config`], and whether `compare` (a password, sealed or plain) is
    /// the stored one (compared here: the stored password never leaves the master).
    pub fn source_config_compare(
        &self,
        id: &str,
        compare: Option<&str>,
    ) -> Result<(String, Option<bool>), MasterError> {
        let st = self.lock();
        let e = st
            .sources
            .get(id)
            .ok_or_else(|| MasterError::SourceConfigNotFound(id.to_string()))?;
        let c = e
            .cfg
            .as_ref()
            .ok_or_else(|| MasterError::SourceDoesNotLoad {
                source_id: id.to_string(),
                why: e.error.clone(),
            })?;
        let plain = c.from.plain_password();
        Ok((
            c.to_yaml_masked(),
            compare.map(|p| crate::password::same_password(p, &plain)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::store::Store;

    const SOURCE: &str =
        "source-id: s1\nfrom: {host: 127.0.0.1, port: 3306, user: root, password: pw}\n";

    #[tokio::test]
    async fn sources_are_stored_before_memory_and_worker_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scheduler::open(Store::open(dir.path()).unwrap(), None, "m:1").unwrap();
        let e = s
            .create_sources(SourceChange::Create, &[SOURCE.into()], "w9")
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[code=46004] dm-worker with name w9 not exists"),
            "{e}"
        );
        assert!(s.lock().sources.is_empty(), "nothing created");
        let e = s
            .create_sources(SourceChange::Update, &[SOURCE.into()], "w9")
            .await
            .unwrap_err();
        assert!(
            matches!(e, MasterError::WorkerNameOnlyOnCreate("update")),
            "{e}"
        );

        let out = s
            .create_sources(SourceChange::Create, &[SOURCE.into()], "")
            .await
            .unwrap();
        assert_eq!(out[0].source, "s1");
        assert!(out[0].worker.is_empty() && out[0].msg.contains("no free worker"));
        let stored: Vec<(String, SourceRecord)> = s.store.all(store::SOURCES).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].1.yaml.contains("password: pw"), "stored sealed");
        assert!(s.source_config("s1").unwrap().contains("******"));

        s.stop_sources(&["s1".into()], &[]).await.unwrap();
        assert!(s.lock().sources.is_empty());
        assert!(
            s.store
                .all::<SourceRecord>(store::SOURCES)
                .unwrap()
                .is_empty()
        );
        let e = s.stop_sources(&["s1".into()], &[]).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "[code=46008] source config with ID s1 not exists"
        );
    }

    #[tokio::test]
    async fn transfer_source_checks_source_and_worker_as_dm_does() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scheduler::open(Store::open(dir.path()).unwrap(), None, "m:1").unwrap();
        let e = s.transfer_source("s1", "w1").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "[code=46008] source config with ID s1 not exists"
        );
        s.create_sources(SourceChange::Create, &[SOURCE.into()], "")
            .await
            .unwrap();
        let e = s.transfer_source("s1", "w1").await.unwrap_err();
        assert!(matches!(e, MasterError::WorkerNameNotExist(_)), "{e}");
        // Registered but not heard from: offline, so not a target.
        s.register("w1", "127.0.0.1:1").await.unwrap();
        s.lock().workers.get_mut("w1").unwrap().online = false;
        let e = s.transfer_source("s1", "w1").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "[code=46006] invalid stage transformation for dm-worker w1, from offline to bound"
        );
        // Bound to another source: not free.
        s.lock().workers.get_mut("w1").unwrap().online = true;
        s.lock().bindings.insert("s0".into(), "w1".into());
        let e = s.transfer_source("s1", "w1").await.unwrap_err();
        assert!(e.to_string().contains("from bound to bound"), "{e}");
        // To the worker it is bound to: nothing to do.
        s.lock().bindings.insert("s1".into(), "w1".into());
        s.transfer_source("s1", "w1").await.unwrap();
    }

    #[tokio::test]
    async fn workers_register_with_a_usable_address_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scheduler::open(Store::open(dir.path()).unwrap(), None, "m:1").unwrap();
        let e = s.register("w1", "bad address\u{0}").await.unwrap_err();
        assert!(matches!(e, MasterError::WorkerAddress(_)), "{e}");
        assert!(s.lock().workers.is_empty());
        s.register("w1", "127.0.0.1:1").await.unwrap();
        let stored: Vec<(String, store::WorkerRecord)> = s.store.all(store::WORKERS).unwrap();
        assert_eq!(stored[0].1.addr, "127.0.0.1:1");
        assert!(s.lock().workers.contains_key("w1"));
    }
}
