//! dm-master: serves DM's `pb.Master` over gRPC, keeps sources, tasks and each subtask's
//! expected stage durably (redb under `--data-dir`), binds each source to one free worker and
//! pushes every worker its desired state once a second (that push is the keepalive).
//!
//! Called by `src/bin/dm-master.rs`. The master never touches replicated data: it decides,
//! the workers run. `--with-worker` runs one worker in the master's process (the
//! single-machine setup of the quickstart).
//!
//! Layout: [`server`] translates `pb.Master` requests into the operations of [`tasks`] and
//! [`sources`] (methods of [`scheduler::Scheduler`], which owns the state, the bindings and
//! the pushes) and their [`MasterError`]s back; [`store`] is the redb file.

pub mod error;
pub mod scheduler;
pub mod server;
pub mod sources;
pub mod store;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;

use crate::checker::{self, CheckReport};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::worker::Worker;
pub use error::MasterError;

/// dm-master's settings (DM's flag names).
#[derive(Debug, Clone)]
pub struct MasterOpts {
    pub name: String,
    pub master_addr: String,
    pub data_dir: PathBuf,
    /// Name of the in-process worker, when `--with-worker` is given.
    pub with_worker: Option<String>,
}

/// Runs the master until the process is stopped.
pub async fn run(opts: MasterOpts) -> anyhow::Result<()> {
    let store = store::Store::open(&opts.data_dir)?;
    let local = opts.with_worker.as_ref().map(|n| {
        let w = Worker::new(n);
        w.spawn_ticker();
        w
    });
    let sched = Arc::new(scheduler::Scheduler::open(store, local, &opts.master_addr)?);
    let addr: std::net::SocketAddr = opts
        .master_addr
        .parse()
        .map_err(|e| anyhow::anyhow!("--master-addr {}: {e}", opts.master_addr))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {}: {e}", opts.master_addr))?;
    tracing::info!(name = %opts.name, addr = %opts.master_addr, data_dir = %opts.data_dir.display(), "dm-master listening");
    tokio::spawn(sched.clone().run());
    let svc = server::MasterService {
        sched,
        name: opts.name.clone(),
        addr: opts.master_addr.clone(),
    };
    tonic::transport::Server::builder()
        .add_service(crate::pb::master_server::MasterServer::new(svc))
        .serve_with_incoming(crate::rpc::incoming(listener))
        .await
        .map_err(|e| anyhow::anyhow!("master server: {e}"))
}

/// The precheck of start-task and check-task: each source's upstream and the downstream.
/// None when the task ignores all checking items.
pub async fn precheck(
    task: &TaskConfig,
    sources: &[(String, SourceConfig)],
) -> Option<CheckReport> {
    if task.ignore_checking_items.iter().any(|i| i == "all") {
        return None;
    }
    let mut report = CheckReport { items: Vec::new() };
    for (id, src) in sources {
        let opts = crate::worker::units::sync::db_opts(&src.from, Vec::new());
        report.merge(
            checker::check_source(id, opts, &task.task_mode, &task.ignore_checking_items).await,
        );
    }
    if let Some(t) = &task.target_database {
        let opts = crate::worker::units::sync::db_opts(t, Vec::new());
        report.merge(checker::check_target(opts, &task.meta_schema).await);
    }
    Some(report)
}
