//! DM v1's cluster commands dm-rs keeps: `refresh-worker-tasks` (the master pushes every
//! worker its desired state at once and reports each worker) and `update-master-config FILE`
//! (the master rewrites its `--config` file and applies what can change online).
//!
//! Called by [`super::dispatch`]. Each is one `pb.Master` RPC printed as DM's jsonpb; a local
//! file is checked before any call, so an invalid one never reaches the master.

use std::path::PathBuf;

use super::jsonpb;
use super::master::{FAIL, OK, Target};
use crate::pb;

/// `refresh-worker-tasks` takes no arguments.
#[derive(Debug, clap::Args)]
pub struct RefreshWorkerTasksArgs {}

/// Runs `refresh-worker-tasks`.
pub fn refresh_worker_tasks(_: &RefreshWorkerTasksArgs, t: &Target) -> u8 {
    let req = pb::RefreshWorkerTasksRequest {};
    match t.call(|mut c| async move { c.refresh_worker_tasks(req).await }) {
        Ok(resp) => {
            println!("{}", jsonpb::print_response(&resp));
            if resp.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

/// `update-master-config <config-file>`.
#[derive(Debug, clap::Args)]
pub struct UpdateMasterConfigArgs {
    /// The master's new config file (TOML), written over the one it runs with.
    #[arg(value_name = "config-file")]
    pub file: PathBuf,
}

/// Runs `update-master-config`: the file is checked here first (errors name its line).
pub fn update_master_config(a: &UpdateMasterConfigArgs, t: &Target) -> u8 {
    let text = match std::fs::read_to_string(&a.file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: error in get file content: {e}", a.file.display());
            return FAIL;
        }
    };
    if let Err(e) = crate::master::config::parse_file(&a.file, &text) {
        eprintln!("{e}");
        return FAIL;
    }
    let req = pb::UpdateMasterConfigRequest { config: text };
    match t.call(|mut c| async move { c.update_master_config(req).await }) {
        Ok(resp) => {
            println!("{}", jsonpb::print_response(&resp));
            if resp.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

/// DM v1's `query-error [-w worker ...] [task-name]`: the errors of the subtasks (and relays)
/// in v1's `QueryErrorListResponse` shape, read from the master's query-status (dm-rs's master
/// has no separate error store).
#[derive(Debug, clap::Args)]
pub struct QueryErrorArgs {
    #[command(flatten)]
    pub source: super::master::SourceFlag,
    /// A task name, or a task file to take the name from (empty: every task).
    #[arg(value_name = "task-name")]
    pub task: Option<String>,
}

/// v1's `SubTaskError` of one subtask status: its sync errors as `SyncSQLError`s (message,
/// `failedBinlogPosition` — v1's end position of the event, what `sql-skip -b` takes — from the
/// error's endLocation, `errorSQL`), other units' as `msg`.
pub fn subtask_error(st: &crate::pb::SubTaskStatus) -> super::jsonpb::J {
    use super::jsonpb::J;
    let stage = crate::pb::Stage::try_from(st.stage)
        .map(|s| s.as_str_name())
        .unwrap_or("InvalidStage");
    let unit = crate::pb::UnitType::try_from(st.unit)
        .map(|u| u.as_str_name())
        .unwrap_or("InvalidUnit");
    let errors: Vec<&crate::pb::ProcessError> = st
        .result
        .as_ref()
        .map(|r| r.errors.iter().collect())
        .unwrap_or_default();
    let mut fields = vec![
        ("name", J::s(&st.name)),
        ("stage", J::s(stage)),
        ("unit", J::s(unit)),
    ];
    if unit == "Sync" && !errors.is_empty() {
        let sync: Vec<J> = errors
            .iter()
            .map(|e| {
                let pos = e
                    .message
                    .split("endLocation: [position: ")
                    .nth(1)
                    .and_then(|r| r.split(']').next())
                    .unwrap_or("")
                    .to_string();
                let sql = e
                    .message
                    .split("execute DDL failed: ")
                    .nth(1)
                    .and_then(|r| r.split(", startLocation").next())
                    .unwrap_or("")
                    .to_string();
                J::Obj(vec![
                    ("msg", J::s(&e.message)),
                    ("failedBinlogPosition", J::s(&pos)),
                    ("errorSQL", J::s(&sql)),
                ])
            })
            .collect();
        fields.push(("sync", J::Obj(vec![("errors", J::Arr(sync))])));
    } else {
        let msg: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        fields.push(("msg", J::s(&msg.join("; "))));
    }
    J::Obj(fields)
}

/// Runs `query-error`.
pub fn query_error(a: &QueryErrorArgs, t: &super::master::Target) -> u8 {
    use super::jsonpb::{self, J};
    let req = crate::pb::QueryStatusListRequest {
        name: a
            .task
            .as_deref()
            .map(super::master::task_name_from_arg)
            .unwrap_or_default(),
        sources: a.source.sources.clone(),
    };
    let resp = match t.call(|mut c| async move { c.query_status(req).await }) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let workers: Vec<J> = resp
        .sources
        .iter()
        .map(|s| {
            let (worker, relay_err) = match &s.source_status {
                Some(ss) => (
                    ss.worker.clone(),
                    ss.relay_status
                        .as_ref()
                        .and_then(|r| r.result.as_ref())
                        .map(|r| {
                            r.errors
                                .iter()
                                .map(|e| e.message.clone())
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            J::Obj(vec![
                ("result", J::Bool(s.result)),
                ("worker", J::s(&worker)),
                ("msg", J::s(&s.msg)),
                (
                    "subTaskError",
                    J::Arr(s.sub_task_status.iter().map(subtask_error).collect()),
                ),
                ("RelayError", J::Obj(vec![("msg", J::s(&relay_err))])),
            ])
        })
        .collect();
    let out = J::Obj(vec![
        ("result", J::Bool(resp.result)),
        ("msg", J::s(&resp.msg)),
        ("workers", J::Arr(workers)),
    ]);
    println!("{}", jsonpb::jsonpb(&out));
    if resp.result {
        super::master::OK
    } else {
        super::master::FAIL
    }
}
