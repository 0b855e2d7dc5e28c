//! Live state: what the master has, read with as few RPCs as possible.
//!
//! Called by the dmctl `plan`/`apply`/`reconcile` commands and by [`super::watch`] at the start
//! of every round, and by [`super::apply`] before a saved plan runs. One `QueryStatus` (no task
//! name: every task on every source) gives the tasks and their stages, one
//! `OperateSource{ShowSource}` the sources, then one `GetCfg` per task (up to
//! [`CONFIG_CONCURRENCY`] in flight on one channel) the stored configs with the master's
//! password fingerprint. Each `GetCfg` carries the directory's desired password of that task
//! (sealed) in dm-rs's `dmrsComparePassword`, and the master answers whether it is the stored
//! one: the comparison happens on the master, and nothing that could be brute-forced comes
//! back (the config is masked; the fingerprint is keyed with a secret only the master has).
//! It only reads: it never changes the master.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use super::model::{
    DesiredState, FINGERPRINT_COMMENT, LiveSource, LiveState, LiveSubtask, LiveTask,
};
use crate::config;
use crate::pb;
use crate::pb::master_client::MasterClient;

/// How many `GetCfg` calls run at once.
pub const CONFIG_CONCURRENCY: usize = 32;

/// How long connecting to the master may take.
pub const CONNECT_TIMEOUT: Duration = crate::rpc::CONNECT_TIMEOUT;

/// The master could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("can not connect to master {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("master {addr} did not answer {what} within {timeout:?}")]
    Timeout {
        addr: String,
        what: &'static str,
        timeout: Duration,
    },
    #[error("master {addr} returned an error for {what}: {status}")]
    Status {
        addr: String,
        what: &'static str,
        status: String,
    },
    #[error("master {addr}: {what} failed: {msg}")]
    Refused {
        addr: String,
        what: &'static str,
        msg: String,
    },
    #[error("can not start the async runtime: {0}")]
    Runtime(String),
}

/// How many RPCs a fetch made (the status calls must not grow with the number of tasks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub status_calls: u64,
    pub source_calls: u64,
    pub config_calls: u64,
}

/// A fetch's result: the state, the RPC counts, and the sources whose worker did not answer
/// (their subtasks are missing from the state).
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub state: LiveState,
    pub stats: LiveStats,
    pub unreachable_sources: Vec<String>,
}

/// A connected master client (one channel, cloned per call).
#[derive(Debug, Clone)]
pub struct MasterConn {
    pub addr: String,
    pub timeout: Duration,
    pub client: MasterClient<Channel>,
}

impl MasterConn {
    /// Connects to `addr` (host:port or a URL); `timeout` bounds every later RPC.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<MasterConn, LiveError> {
        let channel = crate::rpc::connect(addr, CONNECT_TIMEOUT, timeout)
            .await
            .map_err(|e| LiveError::Connect {
                addr: addr.into(),
                why: e.why().to_string(),
            })?;
        Ok(MasterConn {
            addr: addr.to_string(),
            timeout,
            client: MasterClient::new(channel),
        })
    }

    /// Runs one RPC with the timeout, mapping transport errors.
    pub async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, LiveError>
    where
        F: FnOnce(MasterClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, f(self.client.clone())).await {
            Err(_) => Err(LiveError::Timeout {
                addr: self.addr.clone(),
                what,
                timeout: self.timeout,
            }),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                Err(LiveError::Connect {
                    addr: self.addr.clone(),
                    why: status.message().to_string(),
                })
            }
            Ok(Err(status)) => Err(LiveError::Status {
                addr: self.addr.clone(),
                what,
                status: status.message().to_string(),
            }),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }
}

/// Reads the master's live state (blocking; builds its own runtime).
pub fn fetch(addr: &str, timeout: Duration, passwords: &Passwords) -> Result<LiveState, LiveError> {
    fetch_counted(addr, timeout, passwords).map(|f| f.state)
}

/// Like [`fetch`], with the RPC counts.
pub fn fetch_counted(
    addr: &str,
    timeout: Duration,
    passwords: &Passwords,
) -> Result<Fetched, LiveError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LiveError::Runtime(e.to_string()))?;
    rt.block_on(async {
        let conn = MasterConn::connect(addr, timeout).await?;
        fetch_with(&conn, passwords).await
    })
}

/// Desired target passwords by task name (and source passwords by [`source_key`]), DM-sealed,
/// for the master to compare.
pub type Passwords = BTreeMap<String, String>;

/// A source's key in [`Passwords`] (no task name holds the control character).
pub fn source_key(id: &str) -> String {
    format!("\u{1}source:{id}")
}

/// The desired target password of every task of the directory, sealed (a task whose password
/// cannot be sealed is left out: its password is then reported as not compared).
pub fn desired_passwords(desired: &DesiredState) -> Passwords {
    let mut out: Passwords = desired
        .tasks
        .iter()
        .filter_map(|(name, t)| {
            let plain = t
                .config
                .target_database
                .as_ref()
                .map(|d| d.plain_password())
                .unwrap_or_default();
            crate::password::encrypt(&plain)
                .ok()
                .map(|sealed| (name.clone(), sealed))
        })
        .collect();
    for (id, src) in &desired.sources {
        if let Ok(sealed) = crate::password::encrypt(&src.config.from.plain_password()) {
            out.insert(source_key(id), sealed);
        }
    }
    out
}

/// Reads the live state over an existing connection; `passwords` (task → desired password,
/// sealed or plain) are compared by the master, see [`LiveTask::password_matches`].
pub async fn fetch_with(conn: &MasterConn, passwords: &Passwords) -> Result<Fetched, LiveError> {
    let mut stats = LiveStats::default();
    let status_req = pb::QueryStatusListRequest {
        name: String::new(),
        sources: vec![],
    };
    let source_req = pb::OperateSourceRequest {
        op: pb::SourceOp::ShowSource as i32,
        config: vec![],
        source_id: vec![],
        worker_name: String::new(),
    };
    let (status, shown) = tokio::join!(
        conn.call("query-status", |mut c| async move {
            c.query_status(status_req).await
        }),
        conn.call("operate-source show", |mut c| async move {
            c.operate_source(source_req).await
        }),
    );
    stats.status_calls += 1;
    stats.source_calls += 1;
    let status = status?;
    let shown = shown?;
    if !status.result {
        return Err(LiveError::Refused {
            addr: conn.addr.clone(),
            what: "query-status",
            msg: status.msg,
        });
    }
    if !shown.result {
        return Err(LiveError::Refused {
            addr: conn.addr.clone(),
            what: "operate-source show",
            msg: shown.msg,
        });
    }
    let (subtasks, unreachable_sources) = subtasks_from_status(&status);
    let sources: BTreeSet<String> = shown
        .sources
        .iter()
        .filter(|s| s.result && !s.source.is_empty())
        .map(|s| s.source.clone())
        .collect();

    let sem = Arc::new(tokio::sync::Semaphore::new(CONFIG_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for name in subtasks.keys() {
        let (conn, sem, name) = (conn.clone(), sem.clone(), name.clone());
        let compare = passwords.get(&name).cloned();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let req = pb::GetCfgRequest {
                r#type: pb::CfgType::TaskType as i32,
                name: name.clone(),
                dmrs_compare_password: compare,
            };
            let r = conn
                .call("get-config", |mut c| async move { c.get_cfg(req).await })
                .await;
            (name, r)
        });
    }
    let mut configs: BTreeMap<String, Result<pb::GetCfgResponse, LiveError>> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        stats.config_calls += 1;
        if let Ok((name, r)) = joined {
            configs.insert(name, r);
        }
    }
    // The sources of the directory that exist: their configs, to compare with the files.
    let mut src_set = tokio::task::JoinSet::new();
    for id in sources
        .iter()
        .filter(|id| passwords.contains_key(&source_key(id)))
    {
        let (conn, sem, id) = (conn.clone(), sem.clone(), id.clone());
        let compare = passwords.get(&source_key(&id)).cloned();
        src_set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let req = pb::GetCfgRequest {
                r#type: pb::CfgType::SourceType as i32,
                name: id.clone(),
                dmrs_compare_password: compare,
            };
            let r = conn
                .call("get-config", |mut c| async move { c.get_cfg(req).await })
                .await;
            (id, r)
        });
    }
    let mut source_configs = BTreeMap::new();
    while let Some(joined) = src_set.join_next().await {
        stats.config_calls += 1;
        let Ok((id, r)) = joined else { continue };
        let live = match r {
            Ok(r) if r.result => match config::parse_source(r.cfg.as_bytes()) {
                Ok(l) => LiveSource {
                    config: Some(l.config),
                    error: None,
                    password_matches: r.dmrs_password_matches,
                },
                Err(e) => LiveSource {
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            },
            Ok(r) => LiveSource {
                error: Some(r.msg),
                ..Default::default()
            },
            Err(e @ LiveError::Connect { .. }) => return Err(e),
            Err(e) => LiveSource {
                error: Some(e.to_string()),
                ..Default::default()
            },
        };
        source_configs.insert(id, live);
    }
    let mut tasks = BTreeMap::new();
    for (name, subs) in subtasks {
        let (config, config_error, password_fingerprint, password_matches) =
            match configs.remove(&name) {
                Some(Ok(r)) if r.result => {
                    let (yaml, fp) = split_fingerprint(&r.cfg);
                    match config::parse_task(yaml.as_bytes()) {
                        Ok(l) => (Some(l.config), None, fp, r.dmrs_password_matches),
                        Err(e) => (None, Some(e.to_string()), fp, r.dmrs_password_matches),
                    }
                }
                Some(Ok(r)) => (None, Some(r.msg), None, None),
                Some(Err(e @ LiveError::Connect { .. })) => return Err(e),
                Some(Err(e)) => (None, Some(e.to_string()), None, None),
                None => (None, Some("get-config did not finish".into()), None, None),
            };
        tasks.insert(
            name.clone(),
            LiveTask {
                name,
                config,
                config_error,
                password_fingerprint,
                password_matches,
                subtasks: subs,
            },
        );
    }
    Ok(Fetched {
        state: LiveState {
            tasks,
            sources,
            source_configs,
        },
        stats,
        unreachable_sources,
    })
}

/// DM's stage name of a `pb::Stage` value ("" for 0 or an unknown value).
pub fn stage_name(v: i32) -> String {
    match pb::Stage::try_from(v) {
        Ok(pb::Stage::InvalidStage) | Err(_) => String::new(),
        Ok(s) => s.as_str_name().to_string(),
    }
}

/// DM's unit name of a `pb::UnitType` value ("" for 0 or an unknown value).
pub fn unit_name(v: i32) -> String {
    match pb::UnitType::try_from(v) {
        Ok(pb::UnitType::InvalidUnit) | Err(_) => String::new(),
        Ok(u) => u.as_str_name().to_string(),
    }
}

/// A subtask's progress in DM's form: Dump and Load `42.10 %` (Load from its bytes when the
/// worker gives them), Sync `synced` when caught up; `None` when there is nothing to show.
pub fn progress_text(st: &pb::SubTaskStatus) -> Option<String> {
    use pb::sub_task_status::Status;
    match &st.status {
        Some(Status::Dump(d)) if !d.progress.is_empty() => Some(d.progress.trim().to_string()),
        Some(Status::Load(l)) if l.total_bytes > 0 => Some(format!(
            "{:.2} %",
            (l.finished_bytes as f64 / l.total_bytes as f64 * 100.0).clamp(0.0, 100.0)
        )),
        Some(Status::Load(l)) if !l.progress.is_empty() => Some(l.progress.trim().to_string()),
        Some(Status::Sync(s)) if s.synced => Some("synced".into()),
        _ => None,
    }
}

/// A subtask's error text: the first error's code and message, the others counted.
pub fn error_text(r: &Option<pb::ProcessResult>) -> Option<String> {
    let errors = &r.as_ref()?.errors;
    let first = errors.first()?;
    let mut text = if first.err_code != 0 {
        format!("[code={}] {}", first.err_code, first.message)
    } else {
        first.message.clone()
    };
    if !first.raw_cause.is_empty() {
        text.push_str(&format!(": {}", first.raw_cause));
    }
    if errors.len() > 1 {
        text.push_str(&format!(" (and {} more)", errors.len() - 1));
    }
    Some(text)
}

/// Tasks and their subtasks from one query-status answer, plus the sources that did not
/// answer. Subtasks are in source order.
pub fn subtasks_from_status(
    resp: &pb::QueryStatusListResponse,
) -> (BTreeMap<String, Vec<LiveSubtask>>, Vec<String>) {
    let mut tasks: BTreeMap<String, Vec<LiveSubtask>> = BTreeMap::new();
    let mut unreachable = Vec::new();
    for src in &resp.sources {
        let source = src
            .source_status
            .as_ref()
            .map(|s| s.source.clone())
            .unwrap_or_default();
        if !src.result {
            unreachable.push(source.clone());
        }
        for st in &src.sub_task_status {
            if st.name.is_empty() {
                continue;
            }
            tasks.entry(st.name.clone()).or_default().push(LiveSubtask {
                source: source.clone(),
                stage: stage_name(st.stage),
                error: error_text(&st.result),
                unit: unit_name(st.unit),
                progress: progress_text(st),
                lock: Some(st.unresolved_ddl_lock_id.clone()).filter(|l| !l.is_empty()),
            });
        }
    }
    for subs in tasks.values_mut() {
        subs.sort_by(|a, b| a.source.cmp(&b.source));
    }
    (tasks, unreachable)
}

/// Splits get-config's task YAML into the YAML and the fingerprint of its comment line.
pub fn split_fingerprint(cfg: &str) -> (String, Option<String>) {
    let mut fp = None;
    let mut yaml = String::with_capacity(cfg.len());
    for line in cfg.lines() {
        match line.strip_prefix(FINGERPRINT_COMMENT) {
            Some(rest) if fp.is_none() => fp = Some(rest.trim().to_string()),
            _ => {
                yaml.push_str(line);
                yaml.push('\n');
            }
        }
    }
    (yaml, fp.filter(|f| !f.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, stage: pb::Stage, err: Option<&str>) -> pb::SubTaskStatus {
        pb::SubTaskStatus {
            name: name.into(),
            stage: stage as i32,
            result: err.map(|m| pb::ProcessResult {
                is_canceled: false,
                errors: vec![pb::ProcessError {
                    err_code: 36069,
                    message: m.into(),
                    ..Default::default()
                }],
                detail: vec![],
            }),
            ..Default::default()
        }
    }

    fn src(id: &str, result: bool, subs: Vec<pb::SubTaskStatus>) -> pb::QueryStatusResponse {
        pb::QueryStatusResponse {
            result,
            msg: String::new(),
            source_status: Some(pb::SourceStatus {
                source: id.into(),
                ..Default::default()
            }),
            sub_task_status: subs,
        }
    }

    #[test]
    fn status_gives_each_task_its_subtasks_stages_and_errors() {
        use pb::Stage::*;
        let resp = pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: vec![
                src(
                    "s2",
                    true,
                    vec![sub("a", Running, None), sub("b", Paused, Some("boom"))],
                ),
                src("s1", true, vec![sub("a", Paused, None)]),
                src("s3", false, vec![]),
                src("s4", true, vec![sub("c", InvalidStage, None)]),
            ],
        };
        let (tasks, unreachable) = subtasks_from_status(&resp);
        let s = |source: &str, stage: &str, error: Option<&str>| LiveSubtask {
            source: source.into(),
            stage: stage.into(),
            error: error.map(str::to_string),
            unit: String::new(),
            progress: None,
            lock: None,
        };
        let cases: &[(&str, Vec<LiveSubtask>)] = &[
            ("a", vec![s("s1", "Paused", None), s("s2", "Running", None)]),
            ("b", vec![s("s2", "Paused", Some("[code=36069] boom"))]),
            ("c", vec![s("s4", "", None)]),
        ];
        for (name, want) in cases {
            assert_eq!(tasks.get(*name), Some(want), "{name}");
        }
        assert_eq!(tasks.len(), 3);
        assert_eq!(unreachable, vec!["s3".to_string()]);
    }

    #[test]
    fn subtasks_carry_their_unit_and_progress() {
        use pb::sub_task_status::Status;
        let st = |unit: pb::UnitType, status: Option<Status>| pb::SubTaskStatus {
            name: "t".into(),
            stage: pb::Stage::Running as i32,
            unit: unit as i32,
            status,
            ..Default::default()
        };
        let load = |fin: i64, tot: i64, progress: &str| {
            Some(Status::Load(pb::LoadStatus {
                finished_bytes: fin,
                total_bytes: tot,
                progress: progress.into(),
                ..Default::default()
            }))
        };
        let cases: Vec<(pb::SubTaskStatus, &str, Option<&str>)> = vec![
            (
                st(
                    pb::UnitType::Dump,
                    Some(Status::Dump(pb::DumpStatus {
                        progress: "30.52 %".into(),
                        ..Default::default()
                    })),
                ),
                "Dump",
                Some("30.52 %"),
            ),
            (
                st(
                    pb::UnitType::Dump,
                    Some(Status::Dump(pb::DumpStatus::default())),
                ),
                "Dump",
                None,
            ),
            (
                st(pb::UnitType::Load, load(421, 1000, "")),
                "Load",
                Some("42.10 %"),
            ),
            (
                st(pb::UnitType::Load, load(0, 0, "100.00 %")),
                "Load",
                Some("100.00 %"),
            ),
            (
                st(
                    pb::UnitType::Sync,
                    Some(Status::Sync(pb::SyncStatus {
                        synced: true,
                        ..Default::default()
                    })),
                ),
                "Sync",
                Some("synced"),
            ),
            (
                st(
                    pb::UnitType::Sync,
                    Some(Status::Sync(pb::SyncStatus::default())),
                ),
                "Sync",
                None,
            ),
            (st(pb::UnitType::InvalidUnit, None), "", None),
        ];
        for (sub, unit, progress) in cases {
            let resp = pb::QueryStatusListResponse {
                result: true,
                msg: String::new(),
                sources: vec![src("s1", true, vec![sub.clone()])],
            };
            let (tasks, _) = subtasks_from_status(&resp);
            let got = &tasks["t"][0];
            assert_eq!(got.unit, unit, "{sub:?}");
            assert_eq!(got.progress.as_deref(), progress, "{sub:?}");
        }
        let s = LiveSubtask {
            source: "s1".into(),
            stage: "Running".into(),
            error: None,
            unit: "Load".into(),
            progress: Some("42.10 %".into()),
            lock: None,
        };
        assert_eq!(s.phase(), "s1: Load 42.10 %");
        let f = LiveSubtask {
            stage: "Finished".into(),
            progress: Some("100.00 %".into()),
            lock: None,
            ..s
        };
        assert_eq!(f.phase(), "s1: Load Finished 100.00 %");
    }

    #[test]
    fn fingerprint_comment_is_split_from_the_yaml() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "name: t\n# dm-rs password-fingerprint: ab:cd\n",
                "name: t\n",
                Some("ab:cd"),
            ),
            ("name: t\n", "name: t\n", None),
            (
                "name: t\n# dm-rs password-fingerprint: \n",
                "name: t\n",
                None,
            ),
            (
                "# other comment\nname: t",
                "# other comment\nname: t\n",
                None,
            ),
        ];
        for (input, yaml, fp) in cases {
            let (y, f) = split_fingerprint(input);
            assert_eq!(y, *yaml, "{input:?}");
            assert_eq!(f.as_deref(), *fp, "{input:?}");
        }
    }

    #[test]
    fn stage_names_are_dm_names() {
        let cases = [
            (pb::Stage::Running as i32, "Running"),
            (pb::Stage::Paused as i32, "Paused"),
            (0, ""),
            (99, ""),
        ];
        for (v, want) in cases {
            assert_eq!(stage_name(v), want);
        }
    }

    #[test]
    fn unreachable_master_is_named_in_the_error() {
        let e = fetch("127.0.0.1:1", Duration::from_secs(2), &Passwords::new()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("can not connect to master 127.0.0.1:1: "),
            "{text}"
        );
    }
}
