//! The relay log commands: DM v2's `start-relay` / `stop-relay`, and the seed's (DM v1's)
//! `pause-relay`, `resume-relay` and `purge-relay` — with `-s source` (v2) or `-w worker`
//! (v1; a worker's name stands for its bound source). Carried out by the master
//! ([`crate::master::relay`]) and the source's worker ([`crate::relay`]).

use super::jsonpb::{self, J, ToJson};
use super::master::{FAIL, OK, SourceFlag, Target, USAGE};
use crate::pb;

/// `start-relay <-s source-id> [worker-name ...]` / `stop-relay …`.
#[derive(Debug, clap::Args)]
pub struct StartStopRelayArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The source's bound worker (optional: dm-rs relays on the worker the source is bound to).
    #[arg(value_name = "worker-name")]
    pub workers: Vec<String>,
}

/// `pause-relay <-s source ...>` / `resume-relay <-s source ...>`.
#[derive(Debug, clap::Args)]
pub struct PauseResumeRelayArgs {
    #[command(flatten)]
    pub source: SourceFlag,
}

/// `switch-relay-master <-s source ...>` (DM v1: `-w worker ...`).
#[derive(Debug, clap::Args)]
pub struct SwitchRelayMasterArgs {
    #[command(flatten)]
    pub source: SourceFlag,
}

impl ToJson for pb::SwitchWorkerRelayMasterResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            (
                "workers",
                J::Arr(self.workers.iter().map(|s| s.to_json()).collect()),
            ),
        ])
    }
}

/// Runs `switch-relay-master`.
pub fn switch_master(a: &SwitchRelayMasterArgs, t: &Target) -> u8 {
    if a.source.sources.is_empty() {
        println!("must specify at least one source (`-s` / `--source`)");
        return USAGE;
    }
    let req = pb::SwitchWorkerRelayMasterRequest {
        workers: match sources(&a.source, t) {
            Ok(s) => s,
            Err(code) => return code,
        },
    };
    match t.call(|mut c| async move { c.switch_worker_relay_master(req).await }) {
        Ok(r) => print(&r, r.result),
        Err(code) => code,
    }
}

/// `update-relay [-s source ...] <config-file>` (DM v1: `[-w worker]`; exactly one source):
/// the relay keys of a source file (relay-dir, relay-binlog-name, relay-binlog-gtid, purge).
#[derive(Debug, clap::Args)]
pub struct UpdateRelayArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// A source file; only its relay keys are taken.
    #[arg(value_name = "config-file")]
    pub file: Option<String>,
}

/// `migrate-relay <source | worker> <binlogName> <binlogPos>` (DM v1).
#[derive(Debug, clap::Args)]
pub struct MigrateRelayArgs {
    /// The source (or DM v1's worker: its bound source).
    #[arg(value_name = "source | worker")]
    pub source: Option<String>,
    #[arg(value_name = "binlogName")]
    pub binlog_name: Option<String>,
    #[arg(value_name = "binlogPos")]
    pub binlog_pos: Option<String>,
}

fn print_common(r: &pb::CommonWorkerResponse) -> u8 {
    println!("{}", jsonpb::jsonpb(&r.to_json()));
    if r.result { OK } else { FAIL }
}

/// Runs `update-relay`.
pub fn update_relay(a: &UpdateRelayArgs, t: &Target) -> u8 {
    let Some(file) = &a.file else {
        return super::usage::usage_error(&["update-relay"]);
    };
    // DM's order: the file is read first, then the source is checked.
    let config = match super::master::read_text(std::path::Path::new(file)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let [src] = a.source.sources.as_slice() else {
        println!("must specify one source (`-s` / `--source`)");
        return USAGE;
    };
    if let Err(e) = crate::config::parse_source(config.as_bytes()) {
        println!("{file}: {e}");
        return FAIL;
    }
    let req = pb::UpdateWorkerRelayConfigRequest {
        config,
        worker: src.clone(),
    };
    match t.call(|mut c| async move { c.update_worker_relay_config(req).await }) {
        Ok(r) => print_common(&r),
        Err(code) => code,
    }
}

/// Runs `migrate-relay`.
pub fn migrate_relay(a: &MigrateRelayArgs, t: &Target) -> u8 {
    let (Some(src), Some(name), Some(pos)) = (&a.source, &a.binlog_name, &a.binlog_pos) else {
        println!("Usage: migrate-relay <source | worker> <binlogName> <binlogPos>");
        return USAGE;
    };
    let Ok(pos) = pos.parse::<u32>() else {
        println!("binlogPos {pos} is not a position");
        return USAGE;
    };
    let req = pb::MigrateWorkerRelayRequest {
        binlog_name: name.clone(),
        binlog_pos: pos,
        worker: src.clone(),
    };
    match t.call(|mut c| async move { c.migrate_worker_relay(req).await }) {
        Ok(r) => print_common(&r),
        Err(code) => code,
    }
}

/// `purge-relay <-s source> <-f filename> [--sub-dir directory]`.
#[derive(Debug, clap::Args)]
pub struct PurgeRelayArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// Relay files before this one (in the sub-directory) are removed, with every older
    /// sub-directory.
    #[arg(short = 'f', long = "filename", value_name = "filename")]
    pub filename: Option<String>,
    /// The relay sub-directory (`<uuid>.<suffix>`); default: the current one.
    #[arg(long = "sub-dir", value_name = "directory")]
    pub sub_dir: Option<String>,
}

impl ToJson for pb::OperateRelayResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            (
                "sources",
                J::Arr(self.sources.iter().map(|s| s.to_json()).collect()),
            ),
        ])
    }
}

impl ToJson for pb::OperateWorkerRelayResponse {
    fn to_json(&self) -> J {
        let op = pb::RelayOp::try_from(self.op).unwrap_or(pb::RelayOp::InvalidRelayOp);
        J::Obj(vec![
            ("op", J::s(op.as_str_name())),
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            (
                "sources",
                J::Arr(self.sources.iter().map(|s| s.to_json()).collect()),
            ),
        ])
    }
}

impl ToJson for pb::PurgeWorkerRelayResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            (
                "sources",
                J::Arr(self.sources.iter().map(|s| s.to_json()).collect()),
            ),
        ])
    }
}

/// `-s` values, or DM v1's `-w` workers (dmctl turns `-w` into `-s`): a worker's name
/// stands for the source it is bound to.
fn sources(a: &SourceFlag, t: &Target) -> Result<Vec<String>, u8> {
    a.sources
        .iter()
        .map(|s| super::errors::source_of_worker(t, s))
        .collect()
}

fn print<T: ToJson>(r: &T, result: bool) -> u8 {
    println!("{}", jsonpb::print_response(r));
    if result { OK } else { FAIL }
}

/// Runs `start-relay` (`start`) or `stop-relay`.
pub fn start_stop(start: bool, a: &StartStopRelayArgs, t: &Target) -> u8 {
    if a.source.sources.is_empty() && a.workers.is_empty() {
        return super::usage::usage_error(&[if start { "start-relay" } else { "stop-relay" }]);
    }
    if a.source.sources.len() != 1 {
        println!("must specify one source (`-s` / `--source`)");
        return USAGE;
    }
    let req = pb::OperateRelayRequest {
        op: if start {
            pb::RelayOpV2::StartRelayV2
        } else {
            pb::RelayOpV2::StopRelayV2
        } as i32,
        source: a.source.sources[0].clone(),
        worker: a.workers.clone(),
    };
    match t.call(|mut c| async move { c.operate_relay(req).await }) {
        Ok(r) => print(&r, r.result),
        Err(code) => code,
    }
}

/// Runs `pause-relay` (`pause`) or `resume-relay`.
pub fn pause_resume(pause: bool, a: &PauseResumeRelayArgs, t: &Target) -> u8 {
    if a.source.sources.is_empty() {
        println!("must specify at least one source (`-s` / `--source`)");
        return USAGE;
    }
    let req = pb::OperateWorkerRelayRequest {
        op: if pause {
            pb::RelayOp::PauseRelay
        } else {
            pb::RelayOp::ResumeRelay
        } as i32,
        sources: match sources(&a.source, t) {
            Ok(s) => s,
            Err(code) => return code,
        },
    };
    match t.call(|mut c| async move { c.operate_worker_relay_task(req).await }) {
        Ok(r) => print(&r, r.result),
        Err(code) => code,
    }
}

/// Runs `purge-relay`.
pub fn purge(a: &PurgeRelayArgs, t: &Target) -> u8 {
    if a.source.sources.is_empty() {
        println!("must specify at least one source (`-s` / `--source`)");
        return USAGE;
    }
    let Some(filename) = a.filename.clone().filter(|f| !f.is_empty()) else {
        println!(
            "must specify the name of the terminal file before which to purge relay log files. (`-f` / `--filename`)"
        );
        return USAGE;
    };
    if a.source.sources.len() > 1 {
        println!("for --filename, can only specify one source per time");
        return USAGE;
    }
    if a.sub_dir.is_none() {
        println!("[warn] no --sub-dir specify for --filename, the latest one will be used");
    }
    let req = pb::PurgeWorkerRelayRequest {
        sources: match sources(&a.source, t) {
            Ok(s) => s,
            Err(code) => return code,
        },
        inactive: false,
        time: 0,
        filename,
        sub_dir: a.sub_dir.clone().unwrap_or_default(),
    };
    match t.call(|mut c| async move { c.purge_worker_relay(req).await }) {
        Ok(r) => print(&r, r.result),
        Err(code) => code,
    }
}
