//! The relay log, the master's side: which sources relay (`start-relay` / `stop-relay`, or
//! `enable-relay: true` in the source file) and whether each relay runs or is paused
//! (`pause-relay` / `resume-relay`). Kept in the store and pushed to the source's worker
//! with every Assign ([`crate::dmrs::RelaySpec`]); `purge-relay` goes to the worker at once.
//!
//! dm-rs binds a source to one worker, so `start-relay -s SOURCE [WORKER ...]` relays on the
//! source's bound worker; naming another worker is DM's 46021.

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

    /// Whether `source` relays (its file says so, or start-relay did).
    pub fn relay_enabled(&self, source: &str) -> bool {
        let st = self.lock();
        st.relay.get(source).is_some_and(|r| r.enabled)
            || st
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

    /// DM v2's `start-relay` / `stop-relay`.
    pub async fn operate_relay(&self, req: pb::OperateRelayRequest) -> Result<(), String> {
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
        {
            let _g = self.change().await;
            let (exists, bound) = {
                let st = self.lock();
                (
                    st.sources.contains_key(&req.source),
                    st.worker_of(&req.source).map(str::to_string),
                )
            };
            if !exists {
                return Err(format!("[code=46008] source {} not found", req.source));
            }
            if let Some(other) = req
                .worker
                .iter()
                .find(|w| Some(w.as_str()) != bound.as_deref())
            {
                return Err(format!(
                    "[code=46021] these workers [{other}] have bound for another sources or none: source {} is bound to {}",
                    req.source,
                    bound.as_deref().unwrap_or("no worker")
                ));
            }
            let mut rec = self
                .lock()
                .relay
                .get(&req.source)
                .cloned()
                .unwrap_or_default();
            if start {
                rec.enabled = true;
                rec.paused = false;
                rec.rev += 1;
            } else {
                if !self.relay_enabled(&req.source) {
                    return Err(format!(
                        "[code=46022] relay is not started for source {}",
                        req.source
                    ));
                }
                rec.enabled = false;
                rec.paused = false;
            }
            self.put_relay(&req.source, rec)
                .await
                .map_err(|e| e.to_string())?;
            // As DM v5.4: the source's `enable-relay` follows (get-config shows it, and a
            // reconciled source file saying so is in sync).
            let changed = {
                let st = self.lock();
                st.sources.get(&req.source).and_then(|e| {
                    e.cfg.as_ref().filter(|c| c.enable_relay != start).map(|c| {
                        let mut c = c.clone();
                        c.enable_relay = start;
                        c
                    })
                })
            };
            if let Some(cfg) = changed {
                let rec = store::SourceRecord {
                    id: req.source.clone(),
                    yaml: cfg.to_yaml_sealed(),
                };
                let op =
                    store::put_op(store::SOURCES, &req.source, &rec).map_err(|e| e.to_string())?;
                self.persist(vec![op]).await.map_err(|e| e.to_string())?;
                let mut st = self.lock();
                if let Some(e) = st.sources.get_mut(&req.source) {
                    e.rec = rec;
                    e.cfg = Some(cfg);
                }
            }
            tracing::info!(source = %req.source, start, "relay {}", if start { "started" } else { "stopped" });
        }
        self.round().await;
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
            let rec = store::SourceRecord {
                id: source.to_string(),
                yaml: next.to_yaml_sealed(),
            };
            let op = store::put_op(store::SOURCES, source, &rec).map_err(|e| e.to_string())?;
            self.persist(vec![op]).await.map_err(|e| e.to_string())?;
            let mut st = self.lock();
            if let Some(e) = st.sources.get_mut(source) {
                e.rec = rec;
                e.cfg = Some(next);
            }
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
            enabled: r.enabled,
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
