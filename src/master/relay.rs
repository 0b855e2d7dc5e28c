//! The relay log, the master's side: which sources relay (`start-relay` / `stop-relay`, or
//! `enable-relay: true` in the source file) and whether each relay runs or is paused
//! (`pause-relay` / `resume-relay`). Kept in the store and pushed to the source's worker
//! with every Assign ([`crate::dmrs::RelaySpec`]); `purge-relay` goes to the worker at once.
//!
//! DM v2's two ways, as DM keeps them apart: `start-relay -s SOURCE` without a worker name
//! sets the source's `enable-relay` (the relay runs on whichever worker the source is bound
//! to), `start-relay -s SOURCE WORKER...` makes those workers the source's relay workers (the
//! relay runs when the source is bound to one of them, and the scheduler binds the source to
//! its relay workers first and never binds another source to them). Mixing the two forms,
//! naming a worker bound to or relaying for another source, or an unknown worker are DM's
//! 46030/46031, 46028/46029, 46021, 46020/46022 and 46004. A named worker that is offline
//! is accepted and answered with DM's "source relay is operated but the bound worker is
//! offline".

use serde::{Deserialize, Serialize};

use crate::master::error::MasterError;
use crate::master::scheduler::Scheduler;
use crate::master::store;
use crate::pb;

/// One source's relay wishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRecord {
    /// `start-relay` (on top of the source file's `enable-relay`).
    pub enabled: bool,
    /// `pause-relay`.
    pub paused: bool,
    /// Bumped by start-relay / resume-relay (restarts a relay paused by an error).
    pub rev: u64,
    /// Bumped by switch-relay-master.
    #[serde(default)]
    pub switch_rev: u64,
    /// migrate-relay: bumped with the position it asks for.
    #[serde(default)]
    pub migrate_rev: u64,
    #[serde(default)]
    pub migrate_to: Option<(String, u64)>,
    /// The workers named by `start-relay -s SOURCE WORKER...` (DM's relay workers).
    #[serde(default)]
    pub workers: std::collections::BTreeSet<String>,
}

/// The source whose relay workers include `worker`, if any.
pub fn relay_source_of<'a>(
    st: &'a crate::master::scheduler::State,
    worker: &str,
) -> Option<&'a str> {
    st.relay
        .iter()
        .find(|(_, r)| r.workers.contains(worker))
        .map(|(s, _)| s.as_str())
}

impl Scheduler {
    /// A source ID, or the source a worker of that name is bound to (DM v1 names workers).
    pub fn source_of_name(&self, name: &str) -> String {
        let st = self.lock();
        if st.sources.contains_key(name) {
            return name.to_string();
        }
        st.source_of(name).unwrap_or(name).to_string()
    }

    /// Whether `source` relays (its file says so, start-relay did, or it is bound to one of
    /// its relay workers).
    pub fn relay_enabled(&self, source: &str) -> bool {
        let st = self.lock();
        st.relay.get(source).is_some_and(|r| {
            r.enabled || st.worker_of(source).is_some_and(|w| r.workers.contains(w))
        }) || st
            .sources
            .get(source)
            .and_then(|s| s.cfg.as_ref())
            .is_some_and(|c| c.enable_relay)
    }

    async fn put_relay(&self, source: &str, rec: RelayRecord) -> Result<(), MasterError> {
        self.persist(vec![store::put_op(store::RELAY, source, &rec)?])
            .await?;
        self.lock().relay.insert(source.to_string(), rec);
        Ok(())
    }

    /// DM v2's `start-relay` / `stop-relay` (see the module doc): one answer per named
    /// worker.
    pub async fn operate_relay(
        &self,
        req: pb::OperateRelayRequest,
    ) -> Result<Vec<pb::CommonWorkerResponse>, String> {
        let start = match pb::RelayOpV2::try_from(req.op).unwrap_or(pb::RelayOpV2::InvalidRelayOpV2)
        {
            pb::RelayOpV2::StartRelayV2 => true,
            pb::RelayOpV2::StopRelayV2 => false,
            other => {
                return Err(format!(
                    "[code=38041] invalid op {} on source {}",
                    other.as_str_name(),
                    req.source
                ));
            }
        };
        let source = req.source.clone();
        let answers = {
            let _g = self.change().await;
            let mut rec = {
                let st = self.lock();
                let Some(entry) = st.sources.get(&source) else {
                    return Err(format!(
                        "[code=46008] source config with ID {source} not exists"
                    ));
                };
                let on_bound = entry.cfg.as_ref().is_some_and(|c| c.enable_relay)
                    || st.relay.get(&source).is_some_and(|r| r.enabled);
                let rec = st.relay.get(&source).cloned().unwrap_or_default();
                check_relay_workers(&st, &source, &req.worker, &rec, on_bound, start)?;
                rec
            };
            if req.worker.is_empty() {
                rec.enabled = start;
                rec.paused = false;
                if start {
                    rec.rev += 1;
                }
            } else if start {
                if rec.workers.is_empty() {
                    // A new relay runs; a paused one stays paused (DM keeps the stage).
                    rec.paused = false;
                }
                rec.workers.extend(req.worker.iter().cloned());
                rec.rev += 1;
            } else {
                for w in &req.worker {
                    rec.workers.remove(w);
                }
            }
            self.put_relay(&source, rec)
                .await
                .map_err(|e| e.to_string())?;
            if req.worker.is_empty() {
                // As DM: the source's `enable-relay` follows (get-config shows it, and a
                // reconciled source file saying so is in sync).
                self.set_enable_relay(&source, start).await?;
            }
            tracing::info!(source = %source, workers = ?req.worker, start, "relay {}", if start { "started" } else { "stopped" });
            self.bind_free().await;
            let st = self.lock();
            req.worker
                .iter()
                .map(|w| {
                    let online = st.workers.get(w).is_some_and(|e| e.online);
                    pb::CommonWorkerResponse {
                        result: true,
                        msg: if online {
                            String::new()
                        } else {
                            "source relay is operated but the bound worker is offline".to_string()
                        },
                        source: source.clone(),
                        worker: w.clone(),
                    }
                })
                .collect()
        };
        self.round().await;
        Ok(answers)
    }

    /// Writes `enable-relay: on` into the stored source file when it differs.
    async fn set_enable_relay(&self, source: &str, on: bool) -> Result<(), String> {
        let changed = {
            let st = self.lock();
            st.sources.get(source).and_then(|e| {
                e.cfg.as_ref().filter(|c| c.enable_relay != on).map(|c| {
                    let mut c = c.clone();
                    c.enable_relay = on;
                    c
                })
            })
        };
        match changed {
            Some(cfg) => self.save_source_cfg(source, cfg).await,
            None => Ok(()),
        }
    }

    /// Stores `source`'s changed config (password sealed), then takes it in memory.
    async fn save_source_cfg(
        &self,
        source: &str,
        cfg: crate::config::source::SourceConfig,
    ) -> Result<(), String> {
        let rec = store::SourceRecord {
            id: source.to_string(),
            yaml: cfg.to_yaml_sealed(),
        };
        let op = store::put_op(store::SOURCES, source, &rec).map_err(|e| e.to_string())?;
        self.persist(vec![op]).await.map_err(|e| e.to_string())?;
        let mut st = self.lock();
        if let Some(e) = st.sources.get_mut(source) {
            e.rec = rec;
            e.cfg = Some(cfg);
        }
        Ok(())
    }

    /// `pause-relay` / `resume-relay` of `sources`: one answer per source.
    pub async fn pause_resume_relay(
        &self,
        op: pb::RelayOp,
        sources: &[String],
    ) -> Vec<pb::CommonWorkerResponse> {
        let mut out = Vec::new();
        {
            let _g = self.change().await;
            for s in sources {
                let worker = self
                    .lock()
                    .worker_of(s)
                    .map(str::to_string)
                    .unwrap_or_default();
                let mut answer = pb::CommonWorkerResponse {
                    result: true,
                    msg: String::new(),
                    source: s.clone(),
                    worker,
                };
                if !self.lock().sources.contains_key(s) {
                    answer.result = false;
                    answer.msg = format!("[code=46012] source {s} not found");
                } else if !self.relay_enabled(s) {
                    answer.result = false;
                    answer.msg = format!(
                        "relay is not enabled for source {s}: `start-relay -s {s}` or `enable-relay: true` first"
                    );
                } else {
                    let mut rec = self.lock().relay.get(s).cloned().unwrap_or_default();
                    match op {
                        pb::RelayOp::PauseRelay => rec.paused = true,
                        pb::RelayOp::ResumeRelay => {
                            rec.paused = false;
                            rec.rev += 1;
                        }
                        other => {
                            answer.result = false;
                            answer.msg =
                                format!("[code=38041] invalid op {} on {s}", other.as_str_name());
                            out.push(answer);
                            continue;
                        }
                    }
                    if let Err(e) = self.put_relay(s, rec).await {
                        answer.result = false;
                        answer.msg = e.to_string();
                    } else {
                        tracing::info!(source = %s, op = op.as_str_name(), "relay stage set");
                    }
                }
                out.push(answer);
            }
        }
        self.round().await;
        out
    }

    /// DM v1's `switch-relay-master` of `sources`: each relay must be paused (40039) and its
    /// source use GTIDs (30034); its next start (resume-relay) begins a new sub-directory after
    /// the relay's last GTID, on whatever server the source's address reaches then.
    pub async fn switch_relay_master(&self, sources: &[String]) -> Vec<pb::CommonWorkerResponse> {
        let mut out = Vec::new();
        {
            let _g = self.change().await;
            for s in sources {
                let (worker, gtid, exists) = {
                    let st = self.lock();
                    (
                        st.worker_of(s).map(str::to_string).unwrap_or_default(),
                        st.sources
                            .get(s)
                            .and_then(|e| e.cfg.as_ref())
                            .is_some_and(|c| c.enable_gtid),
                        st.sources.contains_key(s),
                    )
                };
                let mut answer = pb::CommonWorkerResponse {
                    result: false,
                    msg: String::new(),
                    source: s.clone(),
                    worker,
                };
                let rec = self.lock().relay.get(s).cloned().unwrap_or_default();
                if !exists {
                    answer.msg = format!("[code=46012] source {s} not found");
                } else if !self.relay_enabled(s) {
                    answer.msg = format!("relay is not enabled for source {s}");
                } else if !rec.paused {
                    answer.msg = format!(
                        "[code=40039] current stage is Running, Paused required, relay op SwitchRelayMaster: run `pause-relay -s {s}` first"
                    );
                } else if !gtid {
                    answer.msg = format!(
                        "[code=30034] can only switch relay's master server when GTID enabled (source {s} has enable-gtid: false)"
                    );
                } else {
                    let mut rec = rec;
                    rec.switch_rev += 1;
                    match self.put_relay(s, rec).await {
                        Ok(()) => {
                            answer.result = true;
                            tracing::info!(source = %s, "switch-relay-master: the relay's next start begins a new sub-directory");
                        }
                        Err(e) => answer.msg = e.to_string(),
                    }
                }
                out.push(answer);
            }
        }
        self.round().await;
        out
    }

    /// DM v1's `migrate-relay SOURCE FILE POS`: the relay pauses (if it runs) and its next start
    /// (resume-relay) begins a new sub-directory at FILE:POS (40053 when it is not on).
    pub async fn migrate_relay(&self, source: &str, file: &str, pos: u64) -> Result<(), String> {
        {
            let _g = self.change().await;
            if !self.lock().sources.contains_key(source) {
                return Err(format!("[code=46012] source {source} not found"));
            }
            if !self.relay_enabled(source) {
                return Err(format!(
                    "[code=40053] current stage is Stopped, relay op MigrateRelay not valid: relay is not enabled for source {source}"
                ));
            }
            if crate::relay::files::binlog_seq(file).is_none() {
                return Err(format!("[code=30004] relay-binlog-name {file} not valid"));
            }
            let mut rec = self.lock().relay.get(source).cloned().unwrap_or_default();
            rec.paused = true;
            rec.migrate_rev += 1;
            rec.migrate_to = Some((file.to_string(), pos.max(4)));
            self.put_relay(source, rec)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(
                source,
                file,
                pos,
                "migrate-relay: the relay pauses; its next start begins a new sub-directory there"
            );
        }
        self.round().await;
        Ok(())
    }

    /// DM v1's `update-relay`: the relay keys of `cfg` (relay-dir, relay-binlog-name,
    /// relay-binlog-gtid, purge) replace the stored source's; the source's worker restarts the
    /// relay with them (its tasks keep running).
    pub async fn update_relay_config(
        &self,
        source: &str,
        cfg: &crate::config::source::SourceConfig,
    ) -> Result<(), String> {
        {
            let _g = self.change().await;
            let current = self
                .lock()
                .sources
                .get(source)
                .and_then(|e| e.cfg.clone())
                .ok_or_else(|| {
                    format!("[code=46012] source {source} not found (or it does not load)")
                })?;
            let mut next = current.clone();
            next.relay_dir = cfg.relay_dir.clone();
            next.relay_binlog_name = cfg.relay_binlog_name.clone();
            next.relay_binlog_gtid = cfg.relay_binlog_gtid.clone();
            next.purge = cfg.purge.clone();
            if next == current {
                return Ok(());
            }
            self.save_source_cfg(source, next).await?;
            tracing::info!(source, "update-relay: the relay settings changed");
        }
        self.round().await;
        Ok(())
    }

    /// The relay spec pushed to `source`'s worker.
    pub fn relay_spec(
        &self,
        st: &crate::master::scheduler::State,
        source: &str,
    ) -> Option<crate::dmrs::RelaySpec> {
        st.relay.get(source).map(|r| crate::dmrs::RelaySpec {
            enabled: r.enabled || st.worker_of(source).is_some_and(|w| r.workers.contains(w)),
            paused: r.paused,
            rev: r.rev,
            switch_rev: r.switch_rev,
            migrate_rev: r.migrate_rev,
            migrate_file: r
                .migrate_to
                .as_ref()
                .map(|m| m.0.clone())
                .unwrap_or_default(),
            migrate_pos: r.migrate_to.as_ref().map(|m| m.1).unwrap_or_default(),
        })
    }

    /// `purge-relay` on `source`'s worker.
    pub async fn purge_relay_on(
        &self,
        source: &str,
        req: pb::PurgeRelayRequest,
    ) -> pb::CommonWorkerResponse {
        let worker = self.lock().worker_of(source).map(str::to_string);
        let fail = |msg: String, worker: String| pb::CommonWorkerResponse {
            result: false,
            msg,
            source: source.to_string(),
            worker,
        };
        let Some(worker) = worker else {
            return fail(
                format!("source {source} is not bound to any dm-worker"),
                String::new(),
            );
        };
        if !self.relay_enabled(source) {
            return fail(
                format!("relay worker for source {source} not found, please `start-relay` first"),
                worker,
            );
        }
        let r = req.clone();
        self.call_worker(
            &worker,
            |l| async move { l.purge_relay(r).await },
            |mut c| async move { c.purge_relay(req).await },
        )
        .await
        .unwrap_or_else(|m| fail(m, worker.clone()))
    }
}

/// DM's checks of `start-relay` / `stop-relay` (`start`) for `source` with `workers` named
/// (none: the `enable-relay` form), given the source's relay record and whether its relay
/// runs on the bound worker (`on_bound`).
fn check_relay_workers(
    st: &crate::master::scheduler::State,
    source: &str,
    workers: &[String],
    rec: &RelayRecord,
    on_bound: bool,
    start: bool,
) -> Result<(), String> {
    let op = if start { "start-relay" } else { "stop-relay" };
    if workers.is_empty() {
        if !rec.workers.is_empty() {
            let list: Vec<&str> = rec.workers.iter().map(String::as_str).collect();
            return Err(format!(
                "[code={}] the source has `start-relay` with worker name for workers [{}], so it can't `{op}` without worker name now",
                if start { 46028 } else { 46029 },
                list.join(" ")
            ));
        }
        return Ok(());
    }
    if on_bound {
        return Err(format!(
            "[code={}] the source has `start-relay` automatically for bound worker, so it can't `{op}` with worker name now",
            if start { 46030 } else { 46031 }
        ));
    }
    let missing: Vec<&str> = workers
        .iter()
        .filter(|w| !st.workers.contains_key(*w))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "[code=46004] dm-worker with name [{}] not exists",
            missing.join(" ")
        ));
    }
    let bound = |w: &str| st.source_of(w);
    let relaying = |w: &str| relay_source_of(st, w);
    if start {
        if let Some((w, s)) = held_elsewhere(workers, source, bound) {
            return Err(format!(
                "[code=46021] these workers [{w}] have bound for another sources [{s}] respectively"
            ));
        }
        if let Some((w, s)) = held_elsewhere(workers, source, relaying) {
            return Err(format!(
                "[code=46020] these workers [{w}] have started relay for sources [{s}] respectively"
            ));
        }
    } else if let Some((w, s)) = held_elsewhere(workers, source, relaying) {
        return Err(format!(
            "[code=46022] these workers [{w}] have started relay for another sources [{s}] respectively"
        ));
    }
    Ok(())
}

/// The `workers` that `holder` says belong to a source other than `source`, listed as DM
/// lists them: the workers and their sources, each space-separated (`w1 w2`, `s1 s2`).
fn held_elsewhere<'s>(
    workers: &[String],
    source: &str,
    holder: impl Fn(&str) -> Option<&'s str>,
) -> Option<(String, String)> {
    let (ws, ss): (Vec<&str>, Vec<&str>) = workers
        .iter()
        .filter_map(|w| holder(w).filter(|s| *s != source).map(|s| (w.as_str(), s)))
        .unzip();
    (!ws.is_empty()).then(|| (ws.join(" "), ss.join(" ")))
}
