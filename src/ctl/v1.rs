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
