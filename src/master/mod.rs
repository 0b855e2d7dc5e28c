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
//! the pushes) and their [`MasterError`]s back; [`store`] is the redb file; [`refresh`] is DM
//! v1's refresh-worker-tasks and every worker's status; [`config`] the settings (`--config`
//! file and flags) and update-master-config; [`shardddl`] and [`optimist`] the pessimistic
//! and optimistic shard DDL locks; [`relay`] the sources' relay wishes (start/stop/pause/
//! resume/switch-relay-master, purge-relay); [`secret`] the `--secret-key-path` key and the
//! store's sealed passwords.

pub mod config;
pub mod error;
pub mod optimist;
pub mod refresh;
pub mod relay;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod shardddl;
pub mod sources;
pub mod start_time;
pub mod store;
pub mod tasks;

use std::sync::Arc;

use crate::checker::{self, CheckItem, CheckReport, CheckState};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::worker::Worker;
pub use error::MasterError;

/// What dm-master runs with.
pub struct MasterOpts {
    /// The settings (`--config` file and flags, see [`config`]).
    pub settings: Arc<config::Settings>,
    /// Name of the in-process worker, when `--with-worker` is given.
    pub with_worker: Option<String>,
}

/// Runs the master until the process is stopped.
pub async fn run(opts: MasterOpts) -> anyhow::Result<()> {
    let cfg = opts.settings.current();
    let key = match &cfg.secret_key_path {
        Some(p) => Some(crate::password::read_key_file(p).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let store = store::Store::open(&cfg.data_dir)?;
    secret::adopt(&store, &cfg.data_dir, key.as_ref())?;
    crate::password::set_cluster_key(key);
    if key.is_some() {
        tracing::info!("passwords are sealed with the secret key of --secret-key-path");
    }
    let local = opts.with_worker.as_ref().map(|n| {
        let w = Worker::new(n);
        w.spawn_ticker();
        w
    });
    let sched = Arc::new(scheduler::Scheduler::open(store, local, &cfg.master_addr)?);
    sched.set_timings(cfg.timings);
    let addr: std::net::SocketAddr = cfg
        .master_addr
        .parse()
        .map_err(|e| anyhow::anyhow!("--master-addr {}: {e}", cfg.master_addr))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {}: {e}", cfg.master_addr))?;
    tracing::info!(name = %cfg.name, addr = %cfg.master_addr, data_dir = %cfg.data_dir.display(), timings = ?cfg.timings, "dm-master listening");
    tokio::spawn(sched.clone().run());
    let svc = server::MasterService {
        sched,
        name: cfg.name.clone(),
        addr: cfg.master_addr.clone(),
        settings: opts.settings.clone(),
    };
    tonic::transport::Server::builder()
        .add_service(crate::pb::master_server::MasterServer::new(svc))
        .serve_with_incoming(crate::rpc::incoming(listener))
        .await
        .map_err(|e| anyhow::anyhow!("master server: {e}"))
}

/// The precheck of start-task and check-task: first what the configs ask for that dm-rs cannot
/// do ([`config_refusals`]: always, even with `ignore-checking-items: ["all"]`), then each
/// source's upstream, the downstream, and the shard tables across the sources
/// ([`checker::check_shard_tables`]). None when the task ignores all checking items and
/// nothing is refused.
pub async fn precheck(
    task: &TaskConfig,
    sources: &[(String, SourceConfig)],
) -> Option<CheckReport> {
    let mut report = CheckReport {
        items: config_refusals(task, sources),
    };
    let all_ignored = task.ignore_checking_items.iter().any(|i| i == "all");
    if all_ignored {
        return (!report.items.is_empty()).then_some(report);
    }
    // A connection whose TLS files cannot be read was refused above; dialling it would only
    // repeat that failure less clearly. The upstreams and the downstream are checked at once
    // (start-task waits for the slowest, not the sum); the report keeps the sources' order.
    let source_checks = sources
        .iter()
        .filter(|(_, src)| src.from.tls_check("from").is_ok())
        .map(|(id, src)| async move {
            let opts = src.from.mysql_opts(Vec::new());
            let mut r =
                checker::check_source_for_task(id, opts.clone(), task, src.enable_relay).await;
            let filters = expression_filter_columns(task, id);
            r.merge(checker::check_expression_filters(id, opts.clone(), &filters).await);
            (r, (id.clone(), opts))
        });
    let target = task
        .target_database
        .as_ref()
        .filter(|t| t.tls_check("target-database").is_ok())
        .map(|t| t.mysql_opts(Vec::new()));
    let target_check = async {
        match &target {
            Some(t) => Some(checker::check_target_for_task(t.clone(), task).await),
            None => None,
        }
    };
    let (source_reports, target_report) =
        tokio::join!(futures_util::future::join_all(source_checks), target_check);
    let mut reachable = Vec::new();
    for (r, src) in source_reports {
        report.merge(r);
        reachable.push(src);
    }
    if let Some(r) = target_report {
        report.merge(r);
    }
    report.merge(checker::check_shard_tables(task, &reachable, target).await);
    Some(report)
}

/// The expression filters of instance `source_id` with the columns each names (for the
/// precheck's column check). A filter that does not parse was refused when the task loaded.
fn expression_filter_columns(task: &TaskConfig, source_id: &str) -> Vec<checker::FilterColumns> {
    let Some(inst) = task.instances().find(|i| i.source_id == source_id) else {
        return Vec::new();
    };
    inst.expression_filters
        .iter()
        .filter_map(|name| {
            let f = task.expression_filter.get(name)?;
            let cols = crate::rules::expr_filter::filter_columns(f).ok()?;
            Some((name.clone(), f.schema.clone(), f.table.clone(), cols))
        })
        .collect()
}

/// What start-task and check-task refuse before any server is asked, as failed `config` items:
/// the task's and the sources' keys dm-rs cannot run yet ([`TaskConfig::unsupported`],
/// [`SourceConfig::unsupported`]) and TLS files of the target or a source that cannot be read ([`crate::config::DbConfig::tls_check`]).
pub fn config_refusals(task: &TaskConfig, sources: &[(String, SourceConfig)]) -> Vec<CheckItem> {
    let item = |extra: String, e: crate::config::ConfigError| {
        CheckItem {
        name: checker::names::CONFIG.to_string(),
        desc: "check whether dm-rs supports every setting of the task".to_string(),
        state: CheckState::Failure,
        message: e.to_string(),
        instruction: "change the task or source file as the message says; ignore-checking-items does not skip this".to_string(),
        extra,
    }
    };
    let mut items: Vec<CheckItem> = task
        .unsupported()
        .into_iter()
        .map(|e| item(format!("task {}", task.name), e))
        .collect();
    if let Some(t) = &task.target_database
        && let Err(e) = t.tls_check("target-database")
    {
        items.push(item(format!("task {}", task.name), e));
    }
    for (id, src) in sources {
        for e in src.unsupported() {
            items.push(item(format!("source {id}"), e));
        }
        if let Err(e) = src.from.tls_check("from") {
            items.push(item(format!("source {id}"), e));
        }
    }
    items
}
