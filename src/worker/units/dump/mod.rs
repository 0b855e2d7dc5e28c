//! The Dump unit: a consistent snapshot of the tables the block-allow-list selects, written in
//! DM v2's (dumpling's) layout to the instance's dump directory, with DM's `metadata` file last.
//!
//! One run ([`DumpUnit`], a [`crate::worker::units::Unit`]):
//! - `init` reads the instance's `mydumper` block ([`settings`]), prepares the dump directory
//!   (created 0700; wiped when a `--remove-meta` start brings a new reset token, or when it
//!   holds files but no dm-rs state) and reads the dump's state ([`DumpState`], the truth about
//!   what is finished), and connects to the upstream.
//! - `process`: a finished dump only announces its files to the load and ends. Otherwise it
//!   takes a new *session* ([`snapshot`]: a global read lock held just long enough for every
//!   dump connection to open a consistent snapshot, or no lock with `--consistency none`),
//!   plans the tables not planned yet ([`catalog`], [`chunking`]: integer-key ranges of about
//!   `rows` rows, recorded in the state so a later session dumps the same ranges), writes the
//!   schema files (all before any data, and announced in that order), then `threads`
//!   connections dump the chunks not finished yet ([`dumper`], [`writer`]; the rows are read
//!   with the narrow client [`raw`] where it can log in, else through the driver). Each chunk is
//!   written as `.tmp`, fsynced, renamed, recorded in the state (a durable line of its
//!   journal, see [`crate::worker::units::full`]), then announced. When every
//!   table is done it writes `metadata` (the earliest chunk-writing session's location, and the
//!   latest one's as the after-connection block when it differs) and marks the dump done.
//! - A cancel stops at the next row batch: the unfinished chunk's files are removed, finished
//!   chunks are kept and never dumped again.
//!
//! Files keep the upstream's names (routes apply at load time, as in DM). Status:
//! [`stats::DumpStats`]. Errors: 32001 (`DUMP_RUNTIME`) with the cause, 32004 for a refused
//! global lock; lost connections and timeouts are retryable.

pub mod catalog;
pub mod chunking;
pub mod dumper;
pub mod raw;
pub mod settings;
pub mod snapshot;
pub mod stats;
pub mod writer;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::Conn;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectError;
use crate::config::db::connect_opts;
use crate::config::task::TaskConfig;
use crate::rules::TableRules;
use crate::worker::error::{UnitError, code};
use crate::worker::units::full::metadata::{DumpMeta, now_string};
use crate::worker::units::full::naming::{self, DumpFile};
use crate::worker::units::full::{
    self, BinlogLoc, DumpState, Feed, METADATA_FILE, ReadyFile, STATE_FILE,
};
use crate::worker::units::{BoxFuture, Shared, Unit, UnitCtx, UnitExit, UnitKind, UnitStatus};
use dumper::{DumpCtx, Job, TableJob};
use settings::DumpSettings;
pub use stats::DumpStats;
use stats::Totals;
use writer::{ColKind, TableFormat};

/// A bound for the unit's small queries.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound for a query that may scan (a chunk's first rows, MIN/MAX with `where`) and for each
/// batch of rows of a chunk.
pub const ROW_TIMEOUT: Duration = Duration::from_secs(600);

/// A MySQL error as the dump's error: 32001 with the cause; connection problems, lock waits,
/// deadlocks and "table definition has changed" (a DDL raced the snapshot) are retryable.
pub(crate) fn db_err(what: impl Into<String>, e: &mysql_async::Error) -> UnitError {
    let what = what.into();
    let base = UnitError::from_mysql("upstream", what.clone(), e);
    let retry = base.retryable || matches!(e, mysql_async::Error::Server(s) if s.code == 1412);
    UnitError::new(code::DUMP_RUNTIME, "upstream", what)
        .cause(e)
        .retryable(retry)
}

/// A query that did not answer in time (retryable).
pub(crate) fn timeout_err(what: &str, limit: Duration) -> UnitError {
    UnitError::new(
        code::DUMP_RUNTIME,
        "upstream",
        format!("{what}: no answer within {limit:?}"),
    )
    .retryable(true)
}

/// A file-system error.
pub(crate) fn io_err(what: &str, e: std::io::Error) -> UnitError {
    UnitError::new(code::DUMP_RUNTIME, "internal", what.to_string())
        .cause(e)
        .workaround(
            "Check the dump directory (`loaders.dir` of the task): free space, permissions.",
        )
}

/// Runs a query future with a timeout.
pub(crate) async fn timed<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, UnitError> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(db_err(what, &e)),
        Err(_) => Err(timeout_err(what, limit)),
    }
}

/// A failed connection attempt.
pub(crate) fn connect_error(what: &str, e: ConnectError) -> UnitError {
    match e {
        ConnectError::Sql { source, .. } => db_err(what, &source),
        ConnectError::Timeout { .. } => UnitError::new(code::DUMP_RUNTIME, "upstream", what)
            .cause(e)
            .retryable(true),
        ConnectError::Config(_) => UnitError::new(code::DUMP_RUNTIME, "internal", what).cause(e),
    }
}

/// The Dump unit of one subtask run.
pub struct DumpUnit {
    ctx: UnitCtx,
    stats: Arc<DumpStats>,
    feed: Feed,
    run: Option<Prepared>,
}

/// What `init` prepared.
struct Prepared {
    settings: DumpSettings,
    rules: TableRules,
    dir: PathBuf,
    state: DumpState,
    control: Option<Conn>,
}

impl DumpUnit {
    /// The unit for one run of a subtask; its status and feed are the subtask's
    /// ([`Shared::dump_stats`], [`Shared::feed`]).
    pub fn new(ctx: UnitCtx, shared: &Shared) -> DumpUnit {
        DumpUnit {
            ctx,
            stats: shared.dump_stats.clone(),
            feed: shared.feed.clone(),
            run: None,
        }
    }

    fn source_id(&self) -> &str {
        &self.ctx.source.source_id
    }
}

/// True when the directory should be emptied before this run (see the module doc).
fn needs_wipe(state: Option<&DumpState>, has_files: bool, reset_token: Option<&str>) -> bool {
    match state {
        None => has_files,
        Some(s) => reset_token.is_some_and(|t| s.reset_token.as_deref() != Some(t)),
    }
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Creates (0700) or opens the dump directory, wipes it when asked, drops leftover `.tmp`
/// files, and returns the state to continue from. A directory another source's dump owns
/// (two workers given one absolute `loaders.dir`, or two on one host in one working
/// directory) is refused: continuing that dump would load the other source's rows.
fn prepare_dir(
    dir: &Path,
    reset_token: Option<&str>,
    source_id: &str,
) -> std::io::Result<DumpState> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let state = match DumpState::read(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "the dump state file is unreadable: dumping again from scratch");
            None
        }
    };
    if let Some(owner) = state
        .as_ref()
        .map(|s| s.source.as_str())
        .filter(|o| !o.is_empty() && *o != source_id)
    {
        return Err(std::io::Error::other(format!(
            "the dump directory belongs to source {owner:?}'s dump of this task: give each source its own `loaders.dir` (or run each dm-worker in its own working directory)"
        )));
    }
    let has_files = std::fs::read_dir(dir)?.next().is_some();
    let state = if needs_wipe(state.as_ref(), has_files, reset_token) {
        tracing::info!(dir = %dir.display(), "emptying the dump directory for a new dump");
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        None
    } else {
        state
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let state = match state {
        Some(s) => s,
        None => {
            let s = DumpState {
                dump_id: random_id(),
                reset_token: reset_token.map(str::to_string),
                source: source_id.to_string(),
                ..DumpState::default()
            };
            s.write(dir)?;
            s
        }
    };
    Ok(state)
}

/// The figures a state stands for.
fn totals(state: &DumpState) -> Totals {
    let mut t = Totals::default();
    for td in state.tables.values() {
        t.tables += 1;
        t.completed_tables += u64::from(td.done);
        t.bytes += td.files.values().sum::<u64>();
        t.rows += td.rows;
        t.chunks += td.plan.as_ref().map_or(1, |p| u64::from(p.chunks()));
        t.finished_chunks += td.chunks.len() as u64;
    }
    t.estimate_rows = t.rows;
    t
}

/// Announces every finished file: database, table and view schema files (in that order),
/// then data files table by table.
fn announce_finished(state: &DumpState, feed: &Feed) {
    let rank = |name: &str| match naming::classify(name) {
        DumpFile::SchemaCreate { .. } => 0,
        DumpFile::TableSchema { .. } => 1,
        _ => 2,
    };
    let mut schemas: Vec<(&String, &u64)> = state.schema_files.iter().collect();
    schemas.sort_by_key(|(n, _)| rank(n));
    for (name, size) in schemas {
        feed.push(ReadyFile {
            name: name.clone(),
            size: *size,
        });
    }
    for td in state.tables.values() {
        for (name, size) in &td.files {
            feed.push(ReadyFile {
                name: name.clone(),
                size: *size,
            });
        }
    }
}

/// Writes a small file atomically (temp, fsync, rename); returns its size.
fn write_small(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<u64> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(data.len() as u64)
}

/// A schema file's bytes: the `SET NAMES binary` line, the statement, `;\n`.
fn schema_file_bytes(stmt: &[u8]) -> Vec<u8> {
    let mut v = writer::HEADER.to_vec();
    v.extend_from_slice(stmt);
    v.extend_from_slice(b";\n");
    v
}

/// The metadata of a finished dump (see the module doc).
fn final_meta(state: &DumpState, current: u32) -> DumpMeta {
    let used: BTreeSet<u32> = state
        .tables
        .values()
        .flat_map(|t| t.chunks.values().copied())
        .collect();
    let first = used.first().copied().unwrap_or(current);
    let last = used.last().copied().unwrap_or(current);
    let s_first = state.session(first);
    let s_last = state.session(last);
    let master = s_first
        .map(|s| s.loc.clone())
        .filter(|l: &BinlogLoc| !l.file.is_empty());
    let after = match (&master, s_last) {
        (Some(m), Some(s)) => {
            let a = s.after.clone().unwrap_or_else(|| s.loc.clone());
            (s.after.is_some() || &a != m).then_some(a)
        }
        _ => None,
    };
    let started = s_first
        .map(|s| {
            s.started
                .replacen('T', " ", 1)
                .trim_end_matches('Z')
                .to_string()
        })
        .unwrap_or_else(now_string);
    DumpMeta {
        started,
        master,
        after_conn: after,
        finished: now_string(),
    }
}

impl Unit for DumpUnit {
    fn kind(&self) -> UnitKind {
        UnitKind::Dump
    }

    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>> {
        Box::pin(async move {
            let task = self.ctx.task.clone();
            let source_id = self.source_id().to_string();
            let Some(inst) = task.instances().find(|i| i.source_id == source_id) else {
                return Err(UnitError::new(
                    code::UNIT_CONFIG,
                    "internal",
                    format!(
                        "task {} has no mysql-instance for source {source_id}",
                        task.name
                    ),
                ));
            };
            let (settings, warnings) =
                DumpSettings::from_config(inst.mydumper.as_ref()).map_err(|e| {
                    UnitError::new(code::DUMP_RUNTIME, "internal", "invalid mydumper settings")
                        .cause(e)
                        .workaround("Fix the task's mydumpers block (chunk-filesize, extra-args).")
                })?;
            for w in warnings {
                tracing::warn!("{w}");
            }
            let rules = TableRules::new(&task, &source_id).map_err(|e| {
                UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules").cause(e)
            })?;
            let dir = full::dump_dir(&task, &source_id);
            let token = self.ctx.reset_token.clone();
            let d = dir.clone();
            let owner = source_id.clone();
            let state =
                tokio::task::spawn_blocking(move || prepare_dir(&d, token.as_deref(), &owner))
                    .await
                    .map_err(|e| {
                        io_err(
                            "prepare the dump directory",
                            std::io::Error::other(e.to_string()),
                        )
                    })?
                    .map_err(|e| {
                        io_err(&format!("prepare the dump directory {}", dir.display()), e)
                    })?;
            self.stats.reset(totals(&state), state.done);
            let control = if state.done {
                None
            } else {
                let from = &self.ctx.source.from;
                from.tls_check("from").map_err(|e| {
                    UnitError::new(code::DUMP_RUNTIME, "internal", "connect to the upstream")
                        .cause(e)
                })?;
                Some(
                    connect_opts(from.mysql_opts(snapshot::control_conn_init()))
                        .await
                        .map_err(|e| connect_error("connect to the upstream", e))?,
                )
            };
            tracing::info!(
                dir = %dir.display(),
                dump_id = %state.dump_id,
                sessions = state.sessions.len(),
                done = state.done,
                threads = settings.threads,
                rows = settings.rows,
                consistency = ?settings.consistency,
                "dump unit ready"
            );
            self.run = Some(Prepared {
                settings,
                rules,
                dir,
                state,
                control,
            });
            Ok(())
        })
    }

    fn process(&mut self, cancel: CancellationToken) -> BoxFuture<'_, Result<UnitExit, UnitError>> {
        Box::pin(async move {
            let Some(p) = self.run.as_mut() else {
                return Err(UnitError::new(
                    code::UNIT_CONFIG,
                    "internal",
                    "the dump unit was not initialised",
                ));
            };
            if p.state.done {
                announce_finished(&p.state, &self.feed);
                self.feed.finish();
                tracing::info!("the dump was finished earlier: its files are announced");
                return Ok(UnitExit::Finished);
            }
            let r = dump(&self.ctx, p, &self.stats, &self.feed, &cancel).await;
            match r {
                Ok(UnitExit::Finished) => self.feed.finish(),
                _ => self.feed.stop(),
            }
            r
        })
    }

    fn status(&self) -> Arc<dyn UnitStatus> {
        self.stats.clone()
    }

    fn update(&mut self, task: Arc<TaskConfig>) -> Result<(), UnitError> {
        self.ctx.task = task;
        Ok(())
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(c) = self.run.as_mut().and_then(|p| p.control.take()) {
                let _ = tokio::time::timeout(QUERY_TIMEOUT, c.disconnect()).await;
            }
        })
    }

    fn is_fresh(&mut self) -> BoxFuture<'_, Result<bool, UnitError>> {
        Box::pin(async move {
            let dir = full::dump_dir(&self.ctx.task, self.source_id());
            Ok(!dir.join(STATE_FILE).exists())
        })
    }
}

/// One table's plan work for this session.
struct ToPlan {
    db: String,
    table: String,
    info: catalog::TableInfo,
}

/// The dump of one run (state not done).
async fn dump(
    ctx: &UnitCtx,
    p: &mut Prepared,
    stats: &Arc<DumpStats>,
    feed: &Feed,
    cancel: &CancellationToken,
) -> Result<UnitExit, UnitError> {
    let Some(control) = p.control.as_mut() else {
        return Err(UnitError::new(
            code::UNIT_CONFIG,
            "internal",
            "the dump unit has no upstream connection",
        ));
    };
    let from = &ctx.source.from;
    let session_id = p.state.sessions.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    // Not cancellable half-way: the global read lock must never be left held; every step is
    // bounded by a timeout.
    let snap = snapshot::take(
        from,
        control,
        p.settings.threads,
        p.settings.consistency,
        ctx.task.task_mode == "all",
        session_id,
        &p.rules,
    )
    .await?;
    if cancel.is_cancelled() {
        return Ok(UnitExit::Cancelled);
    }
    let mut conns = snap.conns;
    p.state.sessions.push(snap.session.clone());

    // Tables of earlier sessions that are gone: done with what they have (the binlog replays
    // their DROP).
    let listed: BTreeSet<(String, String)> = snap
        .tables
        .iter()
        .filter(|l| !l.view)
        .map(|l| (l.db.clone(), l.table.clone()))
        .collect();
    for (key, td) in p.state.tables.iter_mut() {
        let (db, t) = key.split_once('\t').unwrap_or((key.as_str(), ""));
        if !td.done && !listed.contains(&(db.to_string(), t.to_string())) {
            tracing::warn!(
                db,
                table = t,
                "table no longer exists upstream: its dump ends with the chunks it has"
            );
            td.done = true;
        }
    }

    let dbs: BTreeSet<String> = snap.tables.iter().map(|l| l.db.clone()).collect();
    let mut infos = catalog::describe(control, &dbs).await?;
    let mut catalog_conn = snap.catalog;
    let conn0: &mut mysql_async::Conn = match catalog_conn.as_mut() {
        Some(c) => c,
        None => match conns.first_mut() {
            Some(snapshot::DumpConn::Driver(c)) => c,
            _ => {
                return Err(UnitError::new(
                    code::DUMP_RUNTIME,
                    "internal",
                    "no dump connection",
                ));
            }
        },
    };

    // Plan and write schema files.
    let mut jobs: Vec<Job> = Vec::new();
    let mut estimate_rows = 0u64;
    let mut dbs_with_tables: BTreeSet<String> = BTreeSet::new();
    let mut views: Vec<(String, String)> = Vec::new();
    let mut plan_work: Vec<ToPlan> = Vec::new();
    for l in &snap.tables {
        if l.view {
            if p.settings.views {
                views.push((l.db.clone(), l.table.clone()));
                dbs_with_tables.insert(l.db.clone());
            }
            continue;
        }
        let info = infos
            .remove(&(l.db.clone(), l.table.clone()))
            .unwrap_or_default();
        estimate_rows += info.estimate;
        dbs_with_tables.insert(l.db.clone());
        plan_work.push(ToPlan {
            db: l.db.clone(),
            table: l.table.clone(),
            info,
        });
    }
    for db in &dbs_with_tables {
        if cancel.is_cancelled() {
            return Ok(UnitExit::Cancelled);
        }
        let name = naming::schema_create_file(db);
        if !p.state.schema_files.contains_key(&name) {
            let text = catalog::show_create_database(conn0, db).await?;
            let size = write_blocking(&p.dir, &name, schema_file_bytes(&text)).await?;
            p.state.schema_files.insert(name, size);
        }
    }
    for w in plan_work {
        if cancel.is_cancelled() {
            return Ok(UnitExit::Cancelled);
        }
        let key = DumpState::key(&w.db, &w.table);
        let cols: Vec<&catalog::Column> = w.info.dumped().collect();
        let col_names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let mut existing = p.state.tables.get(&key).cloned();
        if existing.as_ref().is_some_and(|t| t.done) {
            continue;
        }
        let schema_name = naming::table_schema_file(&w.db, &w.table);
        if existing.as_ref().is_some_and(|t| t.chunks.is_empty()) {
            // Planned by an earlier session that finished none of its chunks: planned again
            // from this session's snapshot, with this session's structure.
            existing = None;
            p.state.schema_files.remove(&schema_name);
        }
        if let Some(t) = &existing
            && !t.columns.is_empty()
            && t.columns != col_names
            && !t.chunks.is_empty()
        {
            return Err(UnitError::new(
                code::DUMP_RUNTIME,
                "upstream",
                format!(
                    "the columns of `{}`.`{}` changed since an earlier dump session ({:?} → {:?}): its finished chunks no longer fit",
                    w.db, w.table, t.columns, col_names
                ),
            )
            .workaround("Dump again from scratch: `start-task --remove-meta` for this task."));
        }
        if !p.state.schema_files.contains_key(&schema_name) {
            let Some(text) = catalog::show_create_table(conn0, &w.db, &w.table).await? else {
                tracing::warn!(db = %w.db, table = %w.table, "table dropped while the dump started: skipped");
                continue;
            };
            let size = write_blocking(&p.dir, &schema_name, schema_file_bytes(&text)).await?;
            p.state.schema_files.insert(schema_name, size);
        }
        let plan = match existing.as_ref().and_then(|t| t.plan.clone()) {
            Some(plan) => plan,
            None => {
                let key_col = chunking::pick_key(&w.info.indexes, |c| w.info.is_int(c));
                let (min_max, estimate) = match &key_col {
                    Some(k) => {
                        let mm = catalog::key_range(conn0, &w.db, &w.table, k, &p.settings.r#where)
                            .await?;
                        let mut est = if p.settings.r#where.is_empty() {
                            w.info.estimate
                        } else {
                            catalog::explain_rows(conn0, &w.db, &w.table, &p.settings.r#where)
                                .await?
                        };
                        // An estimate under one chunk while the key spans more: statistics may
                        // lag a bulk insert. With at least two chunks' rows, the key's width (an
                        // upper bound of a unique key's rows) stands in for it.
                        let rows = p.settings.rows;
                        if let Some((min, max)) = mm
                            && rows > 0
                            && est < rows
                            && max - min >= 2 * rows as i128
                            && catalog::has_rows(
                                conn0,
                                &w.db,
                                &w.table,
                                &p.settings.r#where,
                                2 * rows,
                            )
                            .await?
                        {
                            est = u64::try_from(max - min + 1).unwrap_or(u64::MAX);
                        }
                        (mm, est)
                    }
                    None => (None, w.info.estimate),
                };
                chunking::plan(key_col.as_deref(), min_max, estimate, p.settings.rows)
            }
        };
        let td = p.state.tables.entry(key.clone()).or_default();
        td.plan = Some(plan.clone());
        td.columns = col_names.clone();
        let pk = chunking::primary_columns(&w.info.indexes);
        let order_by = match (&plan.key, pk.first()) {
            (_, None) => String::new(),
            (Some(k), Some(first)) if k != first => String::new(),
            _ => format!(
                " ORDER BY {}",
                pk.iter()
                    .map(|c| chunking::quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let select = format!(
            "SELECT {} FROM {}.{}",
            cols.iter()
                .map(|c| writer::select_expr(&c.name, &c.data_type))
                .collect::<Vec<_>>()
                .join(","),
            chunking::quote_ident(&w.db),
            chunking::quote_ident(&w.table)
        );
        let job = Arc::new(TableJob {
            key: key.clone(),
            fmt: Arc::new(TableFormat {
                db: w.db.clone(),
                table: w.table.clone(),
                insert_prefix: writer::insert_prefix(&w.table, &col_names),
                kinds: cols
                    .iter()
                    .map(|c| ColKind::of(&c.data_type, c.charset.as_deref()))
                    .collect(),
            }),
            select,
            order_by,
            plan: plan.clone(),
            user_where: p.settings.r#where.clone(),
        });
        for chunk in 0..plan.chunks() {
            if !td.chunks.contains_key(&chunk) {
                jobs.push(Job {
                    table: job.clone(),
                    chunk,
                });
            }
        }
    }
    for (db, v) in &views {
        if cancel.is_cancelled() {
            return Ok(UnitExit::Cancelled);
        }
        let table_name = naming::table_schema_file(db, v);
        let view_name = naming::view_schema_file(db, v);
        if p.state.schema_files.contains_key(&view_name) {
            continue;
        }
        let Some((placeholder, create)) = catalog::show_create_view(conn0, db, v).await? else {
            continue;
        };
        let size = write_blocking(&p.dir, &table_name, schema_file_bytes(&placeholder)).await?;
        p.state.schema_files.insert(table_name, size);
        let size = write_blocking(&p.dir, &view_name, schema_file_bytes(&create)).await?;
        p.state.schema_files.insert(view_name, size);
    }
    let state_bytes = write_state(&p.dir, &p.state).await?;
    announce_finished(&p.state, feed);
    let mut t = totals(&p.state);
    t.estimate_rows = estimate_rows.max(t.rows);
    stats.reset(t, true);
    tracing::info!(
        session = session_id,
        tables = p.state.tables.len(),
        chunks_left = jobs.len(),
        "schema files written; dumping data"
    );

    // Data.
    let dctx = Arc::new(DumpCtx {
        dir: p.dir.clone(),
        statement_size: p.settings.statement_size,
        file_size: p.settings.file_size,
        session: session_id,
        stats: stats.clone(),
        feed: feed.clone(),
        state: tokio::sync::Mutex::new(std::mem::take(&mut p.state)),
        queue: Mutex::new(interleave(jobs, |a: &Job, b: &Job| {
            Arc::ptr_eq(&a.table, &b.table)
        })),
        stop: cancel.child_token(),
        kill_opts: from.mysql_opts(Vec::new()),
        bufs: writer::render_pool(),
        state_bytes: std::sync::atomic::AtomicU64::new(state_bytes),
    });
    if let Some(c) = catalog_conn.take() {
        // Its snapshot would hold the upstream's purge back for the whole dump.
        let _ = tokio::time::timeout(QUERY_TIMEOUT, c.disconnect()).await;
    }
    let mut set = tokio::task::JoinSet::new();
    for c in conns.drain(..) {
        set.spawn(dumper::run(dctx.clone(), c));
    }
    let mut first_err: Option<UnitError> = None;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap_or_else(|e| {
            Err(UnitError::new(
                code::DUMP_RUNTIME,
                "internal",
                "a dump connection's task ended abnormally",
            )
            .cause(e))
        });
        if let Err(e) = r {
            dctx.stop.cancel();
            first_err.get_or_insert(e);
        }
    }
    p.state = std::mem::take(&mut *dctx.state.lock().await);
    if let Some(e) = first_err {
        return Err(e);
    }
    if cancel.is_cancelled() {
        tracing::info!(
            session = session_id,
            "dump cancelled: finished chunks are kept"
        );
        return Ok(UnitExit::Cancelled);
    }
    if !p.state.tables.values().all(|t| t.done) {
        return Err(UnitError::new(
            code::DUMP_RUNTIME,
            "internal",
            "the dump ended with tables not finished",
        ));
    }
    let meta = final_meta(&p.state, session_id);
    write_blocking(&p.dir, METADATA_FILE, meta.render().into_bytes()).await?;
    p.state.done = true;
    write_state(&p.dir, &p.state).await?;
    let (rows, bytes) = stats.written();
    tracing::info!(
        rows,
        bytes,
        sessions = p.state.sessions.len(),
        master = ?meta.master.as_ref().map(|l| format!("({}, {})", l.file, l.pos)),
        after = ?meta.after_conn.as_ref().map(|l| format!("({}, {})", l.file, l.pos)),
        "dump finished"
    );
    Ok(UnitExit::Finished)
}

async fn write_blocking(dir: &Path, name: &str, data: Vec<u8>) -> Result<u64, UnitError> {
    let (d, n) = (dir.to_path_buf(), name.to_string());
    tokio::task::spawn_blocking(move || write_small(&d, &n, &data))
        .await
        .map_err(|e| io_err("write a dump file", std::io::Error::other(e.to_string())))?
        .map_err(|e| io_err(&format!("write {name}"), e))
}

/// Writes the state record whole (and empties its journal); returns its size.
async fn write_state(dir: &Path, state: &DumpState) -> Result<u64, UnitError> {
    let (d, s) = (dir.to_path_buf(), state.clone());
    tokio::task::spawn_blocking(move || s.write(&d))
        .await
        .map_err(|e| io_err("write the dump state", std::io::Error::other(e.to_string())))?
        .map_err(|e| io_err("write the dump state", e))
}

/// The chunk queue, round-robin across tables (chunk 0 of every table, then chunk 1, …): the
/// load beside the dump gets files of different tables early, and its connections do not all
/// append to the end of one table's primary key at once.
fn interleave<T>(jobs: Vec<T>, same_table: impl Fn(&T, &T) -> bool) -> VecDeque<T> {
    let mut by_table: Vec<VecDeque<T>> = Vec::new();
    for j in jobs {
        match by_table
            .iter_mut()
            .find(|q| q.front().is_some_and(|f| same_table(f, &j)))
        {
            Some(q) => q.push_back(j),
            None => by_table.push(VecDeque::from([j])),
        }
    }
    let mut out = VecDeque::new();
    while by_table.iter().any(|q| !q.is_empty()) {
        for q in by_table.iter_mut() {
            if let Some(j) = q.pop_front() {
                out.push_back(j);
            }
        }
    }
    out
}

#[cfg(test)]
mod interleave_tests {
    #[test]
    fn chunks_go_round_robin_across_tables() {
        type Chunks = Vec<(&'static str, u32)>;
        let cases: Vec<(Chunks, Chunks)> = vec![
            (vec![], vec![]),
            (vec![("a", 0), ("a", 1)], vec![("a", 0), ("a", 1)]),
            (
                vec![("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)],
                vec![("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("a", 2)],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(&str, u32)> = super::interleave(input.clone(), |x, y| x.0 == y.0).into();
            assert_eq!(got, want, "{input:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::units::full::{ChunkPlan, Session, TableDump};

    #[test]
    fn wipe_rules() {
        let s = |t: Option<&str>| DumpState {
            reset_token: t.map(str::to_string),
            ..DumpState::default()
        };
        let cases = [
            (None, false, None, false),
            (None, true, None, true),
            (None, true, Some("r1"), true),
            (Some(s(None)), true, None, false),
            (Some(s(None)), true, Some("r1"), true),
            (Some(s(Some("r1"))), true, Some("r1"), false),
            (Some(s(Some("r1"))), true, Some("r2"), true),
            (Some(s(Some("r1"))), true, None, false),
        ];
        for (state, files, token, want) in cases {
            assert_eq!(
                needs_wipe(state.as_ref(), files, token),
                want,
                "{state:?} {files} {token:?}"
            );
        }
    }

    fn loc(pos: u64) -> BinlogLoc {
        BinlogLoc {
            file: "bin.000001".into(),
            pos,
            gtid: format!("0-1-{pos}"),
        }
    }

    fn state_with(sessions: Vec<Session>, chunk_sessions: &[u32]) -> DumpState {
        let mut td = TableDump {
            plan: Some(ChunkPlan::default()),
            ..TableDump::default()
        };
        for (i, s) in chunk_sessions.iter().enumerate() {
            td.chunks.insert(i as u32, *s);
        }
        let mut st = DumpState {
            sessions,
            ..DumpState::default()
        };
        st.tables.insert(DumpState::key("d", "t"), td);
        st
    }

    fn session(id: u32, pos: u64, after: Option<u64>) -> Session {
        Session {
            id,
            loc: loc(pos),
            started: "2026-01-02T03:04:05Z".into(),
            after: after.map(loc),
        }
    }

    #[test]
    fn metadata_takes_the_earliest_and_latest_chunk_sessions() {
        // One session, flush: no after block.
        let m = final_meta(&state_with(vec![session(1, 100, None)], &[1, 1]), 1);
        assert_eq!(m.master, Some(loc(100)));
        assert_eq!(m.after_conn, None);
        assert_eq!(m.started, "2026-01-02 03:04:05");
        // Sessions 1 and 3 wrote chunks, 2 wrote none.
        let st = state_with(
            vec![
                session(1, 100, None),
                session(2, 150, None),
                session(3, 200, None),
            ],
            &[1, 3],
        );
        let m = final_meta(&st, 3);
        assert_eq!((m.master, m.after_conn), (Some(loc(100)), Some(loc(200))));
        // consistency none: the after position, even in one session.
        let m = final_meta(&state_with(vec![session(1, 100, Some(120))], &[1]), 1);
        assert_eq!((m.master, m.after_conn), (Some(loc(100)), Some(loc(120))));
        // Binlog off: no position at all.
        let mut s = session(1, 0, None);
        s.loc = BinlogLoc::default();
        let m = final_meta(&state_with(vec![s], &[1]), 1);
        assert_eq!((m.master, m.after_conn), (None, None));
    }

    #[test]
    fn finished_files_are_announced_schemas_first() {
        let mut st = state_with(vec![session(1, 1, None)], &[1]);
        for n in [
            "d.t-schema.sql",
            "d.v-schema-view.sql",
            "d-schema-create.sql",
            "d.v-schema.sql",
        ] {
            st.schema_files.insert(n.into(), 1);
        }
        if let Some(t) = st.tables.get_mut(&DumpState::key("d", "t")) {
            t.files.insert("d.t.0000000000000.sql".into(), 9);
        }
        let feed = Feed::default();
        feed.start_live();
        announce_finished(&st, &feed);
        let names: Vec<String> = feed.snapshot().ready.into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "d-schema-create.sql",
                "d.t-schema.sql",
                "d.v-schema.sql",
                "d.v-schema-view.sql",
                "d.t.0000000000000.sql"
            ]
        );
    }

    /// Two sources' dumps in one directory (one absolute `loaders.dir`, two workers): the
    /// second is refused instead of continuing the first's dump as its own.
    #[test]
    fn a_dump_directory_belongs_to_one_source() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dumped_data.t");
        let first = prepare_dir(&dir, None, "s1").expect("s1 takes the directory");
        let again = prepare_dir(&dir, None, "s1").expect("s1 continues its own dump");
        assert_eq!(first.dump_id, again.dump_id);
        let e = prepare_dir(&dir, None, "s2").unwrap_err();
        assert!(e.to_string().contains("\"s1\""), "{e}");
        // A reset (--remove-meta) of s1 keeps it s1's.
        let reset = prepare_dir(&dir, Some("tok"), "s1").expect("s1 resets");
        assert_ne!(reset.dump_id, first.dump_id);
        assert!(prepare_dir(&dir, None, "s2").is_err());
    }
}
