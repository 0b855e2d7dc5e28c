//! DM v1's cluster commands dm-rs keeps: `refresh-worker-tasks` (the master pushes every
//! worker its desired state at once and reports each worker) and `update-master-config FILE`
//! (the master rewrites its `--config` file and applies what can change online).
//!
//! Called by [`super::dispatch`]. Each is one `pb.Master` RPC printed as DM's jsonpb; a local
//! file is checked before any call, so an invalid one never reaches the master.

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
