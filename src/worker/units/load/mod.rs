//! The Load unit: a dump directory → the downstream, resumable at the exact byte.
//!
//! It reads dm-rs's own dumps (dumpling's layout) and directories written by mydumper 0.9 –
//! 0.13 or dumpling ([`plan`]). The schema statements run in DM's order on a connection of
//! their own ([`schema`]): every `CREATE DATABASE` (generated when a database has no
//! `-schema-create.sql`; "already exists" is fine), then every `CREATE TABLE` ("already exists"
//! is fine, so shards merge onto one table; skipped for a table the checkpoint already has rows
//! of), then, at the end, the views. Beside them the data files load on `pool-size`
//! connections (one file per connection at a time), each table's as soon as its own
//! `CREATE TABLE` has run. Routes rename what is created and loaded, the block-allow-list and
//! the system schemas decide what is skipped ([`crate::rules`]).
//!
//! A dumped row whose key already exists downstream does what the instance's
//! `on-duplicate-logical` says (DM's logical import mode): `replace` (the default) runs the
//! dump's `INSERT INTO` as `REPLACE INTO`, `ignore` as `INSERT IGNORE INTO`, `error` as written
//! (the load stops with the duplicate-key error) — see [`rewrite::OnDuplicate`].
//!
//! Each data file is read statement by statement ([`reader`], [`scan`]); executable comments
//! (`/*!40101 SET NAMES binary*/;`) run on the session, each INSERT runs in one transaction
//! with its file's row of the loader checkpoint ([`checkpoint`], [`file`]) — as `LOAD DATA LOCAL
//! INFILE` where that stores the same values ([`bulk`], [`tsv`]). A pause, a stop or
//! a kill -9 therefore loses nothing and loads nothing twice: the next run starts each file at
//! its checkpoint offset.
//!
//! Beside a running dump (the subtask runs Dump and Load side by side and the feed is live),
//! the unit follows [`crate::worker::units::full::Feed`]: schema files are run as they arrive,
//! data files are loaded as soon as they are ready, and it finishes when the dump is done and
//! every file is loaded (the directory is then read once more for files a resumed dump did
//! not announce again). A dump that stops makes the load stop after its in-flight statements.
//! Without a live feed the directory is read once.
//!
//! A table this load creates gets its plain secondary indexes after its data (building them
//! after the rows costs the downstream about half of keeping them up to date row by row): the
//! `CREATE TABLE` runs without them, a `#keys` row of the loader checkpoint records them, and
//! once every file is known each table's indexes are added as soon as its last file is loaded,
//! on a pool connection beside the other tables' files (so the builds do not queue at the end),
//! one build per target table at a time; the `#keys` row is then marked done, so a crash in
//! between adds them on the next run without adding one twice.
//!
//! With `clean-dump-file` (the default) each data file is deleted as soon as it is loaded
//! (disk use stays bounded while dump and load run together); at the end a `full` task's
//! directory is removed, an `all` task keeps `metadata`, the schema files and dm-rs's dump
//! record for the sync unit (which removes the directory later).
//!
//! Sessions: `time_zone = '+00:00'` (dumps are written in UTC), `foreign_key_checks = 0`,
//! `sql_mode` = `NO_AUTO_VALUE_ON_ZERO` plus the target `session`'s modes (never
//! `NO_BACKSLASH_ESCAPES`: dumps escape with backslashes), then the target's session
//! variables. Every statement runs under a timeout, except the index builds, which can take
//! hours on a big table: a side connection checks every 30 s that the server still runs one,
//! and a pause or stop kills it (`KILL QUERY`) instead of waiting for it. Connection errors
//! are retryable (the subtask auto-resumes and the checkpoint makes the retry exact).

pub mod bulk;
pub mod checkpoint;
pub mod file;
pub mod plan;
pub mod reader;
pub mod rewrite;
pub mod scan;
pub mod schema;
pub mod stats;
pub mod tsv;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectError;
use crate::config::db::connect_opts;
use crate::config::task::{DbConfig, TaskConfig};
use crate::rules::TableRules;
use crate::rules::row::RowRules;
use crate::worker::error::{UnitError, code};
use crate::worker::units::full::metadata::DumpMeta;
use crate::worker::units::full::{self, DumpState, FeedState, METADATA_FILE, STATE_FILE};
use crate::worker::units::{BoxFuture, Shared, Unit, UnitCtx, UnitExit, UnitKind, UnitStatus};
use checkpoint::{LoaderCheckpoint, Saved};
use file::{FileCtx, FileEnd, FileJob};
use plan::Entry;
pub use stats::LoadStats;

/// A bound for the unit's small queries (checkpoint, session settings).
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound for one data or schema statement.
pub(crate) const STMT_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the unit logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Quotes an identifier with backquotes.
pub(crate) fn quote(id: &str) -> String {
    crate::worker::units::sync::checkpoint::quote(id)
}

/// A statement that did not answer in time: retryable.
pub(crate) fn timeout_error(what: &str) -> UnitError {
    UnitError::new(
        code::DB_DRIVER,
        "downstream",
        format!("{what}: no answer from the downstream in time"),
    )
    .retryable(true)
}

/// Runs a small downstream query with [`QUERY_TIMEOUT`].
pub(crate) async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, UnitError> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(UnitError::from_mysql("downstream", what.to_string(), &e)),
        Err(_) => Err(timeout_error(what)),
    }
}

fn connect_error(what: &str, e: ConnectError) -> UnitError {
    match e {
        ConnectError::Sql { source, .. } => {
            UnitError::from_mysql("downstream", what.to_string(), &source)
        }
        ConnectError::Timeout { .. } => {
            UnitError::new(code::DB_DRIVER, "downstream", what.to_string())
                .cause(e)
                .retryable(true)
        }
        ConnectError::Config(_) => {
            UnitError::new(code::UNIT_CONFIG, "downstream", what.to_string()).cause(e)
        }
    }
}

/// The load session's `sql_mode`: `NO_AUTO_VALUE_ON_ZERO` plus the modes the target
/// `session` sets, without `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES` (dump files are read as
/// they were written: backslash escapes, double-quoted strings from mydumper).
pub fn sql_mode(target_session_mode: Option<&str>) -> String {
    let mut modes: Vec<String> = vec!["NO_AUTO_VALUE_ON_ZERO".into()];
    for m in target_session_mode.unwrap_or("").split(',') {
        let m = m.trim().to_ascii_uppercase();
        if m.is_empty() || m == "NO_BACKSLASH_ESCAPES" || m == "ANSI_QUOTES" || modes.contains(&m) {
            continue;
        }
        modes.push(m);
    }
    modes.join(",")
}

/// The statements every load connection runs first.
pub fn session_init(db: &DbConfig) -> Vec<String> {
    let lit = crate::worker::units::sync::checkpoint::lit;
    let mode = db
        .session
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("sql_mode"))
        .map(|(_, v)| v.as_str());
    let mut init = vec![
        "SET SESSION foreign_key_checks = 0".to_string(),
        "SET SESSION time_zone = '+00:00'".to_string(),
        format!("SET SESSION sql_mode = {}", lit(&sql_mode(mode))),
    ];
    for (k, v) in &db.session {
        if k.eq_ignore_ascii_case("time_zone")
            || k.eq_ignore_ascii_case("sql_mode")
            || k.eq_ignore_ascii_case("foreign_key_checks")
        {
            continue;
        }
        if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            init.push(format!("SET SESSION {k} = {}", lit(v)));
        }
    }
    init
}

/// The Load unit of one subtask run.
pub struct LoadUnit {
    ctx: UnitCtx,
    stats: Arc<LoadStats>,
    feed: watch::Receiver<FeedState>,
    run: Option<Run>,
}

impl LoadUnit {
    pub fn new(ctx: UnitCtx, shared: &Shared) -> LoadUnit {
        LoadUnit {
            ctx,
            stats: shared.load_stats.clone(),
            feed: shared.feed.subscribe(),
            run: None,
        }
    }
}

fn target_of(task: &TaskConfig) -> Result<DbConfig, UnitError> {
    task.target_database.clone().ok_or_else(|| {
        UnitError::new(
            code::UNIT_CONFIG,
            "internal",
            "the task has no target-database",
        )
    })
}

fn checkpoint_of(ctx: &UnitCtx) -> LoaderCheckpoint {
    LoaderCheckpoint::new(&ctx.task.meta_schema, &ctx.task.name, &ctx.source.source_id)
}

impl Unit for LoadUnit {
    fn kind(&self) -> UnitKind {
        UnitKind::Load
    }

    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>> {
        Box::pin(async move {
            let run = Run::init(&self.ctx, self.stats.clone())
                .await
                .map_err(|e| e.in_unit(UnitKind::Load))?;
            self.run = Some(run);
            Ok(())
        })
    }

    fn process(&mut self, cancel: CancellationToken) -> BoxFuture<'_, Result<UnitExit, UnitError>> {
        Box::pin(async move {
            let Some(run) = self.run.as_mut() else {
                return Err(UnitError::new(
                    code::UNIT_CONFIG,
                    "internal",
                    "the load unit was not initialised",
                ));
            };
            run.process(&mut self.feed, &cancel)
                .await
                .map_err(|e| e.in_unit(UnitKind::Load))
        })
    }

    fn status(&self) -> Arc<dyn UnitStatus> {
        self.stats.clone()
    }

    fn update(&mut self, task: Arc<TaskConfig>) -> Result<(), UnitError> {
        let rules = TableRules::new(&task, &self.ctx.source.source_id).map_err(|e| {
            UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules").cause(e)
        })?;
        let row_rules = RowRules::new(&task, &self.ctx.source.source_id).map_err(|e| {
            UnitError::new(code::UNIT_CONFIG, "internal", "invalid column-mappings").cause(e)
        })?;
        if let Some(run) = self.run.as_mut() {
            run.rules = rules;
            run.row_rules = (!row_rules.is_empty()).then(|| Arc::new(row_rules));
        }
        self.ctx.task = task;
        Ok(())
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(run) = self.run.take() {
                let _ = tokio::time::timeout(Duration::from_secs(5), run.ctrl.disconnect()).await;
            }
        })
    }

    fn is_fresh(&mut self) -> BoxFuture<'_, Result<bool, UnitError>> {
        Box::pin(async move {
            let target = target_of(&self.ctx.task)?;
            let mut conn = connect_opts(target.mysql_opts(Vec::new()))
                .await
                .map_err(|e| connect_error("connect to the downstream", e))?;
            let r = checkpoint_of(&self.ctx)
                .is_fresh(&mut conn, self.ctx.reset_token.as_deref())
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.disconnect()).await;
            r
        })
    }
}

/// One run's state, from `init` to `close`.
struct Run {
    stats: Arc<LoadStats>,
    rules: TableRules,
    /// The task's column mappings, applied to dumped rows (None without any).
    row_rules: Option<Arc<RowRules>>,
    opts: Opts,
    ctrl: Conn,
    ckpt: Arc<LoaderCheckpoint>,
    saved: Saved,
    dir: PathBuf,
    pool_size: usize,
    clean: bool,
    /// `full` mode: the whole directory goes at the end (with `clean`).
    full_mode: bool,
    /// Upstream tables with a schema file in this run (their CREATE TABLE queued or skipped).
    tables: HashSet<(String, String)>,
    /// Upstream tables with checkpoint rows (their CREATE TABLE is skipped).
    tables_with_rows: HashSet<(String, String)>,
    /// Files taken (by name) in this run.
    seen: HashSet<String>,
    /// The dump id is recorded in the checkpoint.
    dump_checked: bool,
    /// The LOAD DATA fast path ([`bulk`]).
    bulk: Arc<bulk::Bulk>,
    /// Buffers the file tasks reuse.
    bufs: Arc<file::Bufs>,
    /// `on-duplicate-logical`: how a dumped row meets an existing key downstream.
    on_duplicate: rewrite::OnDuplicate,
}

/// A target table (db, table).
type Target = (String, String);

/// Where [`Run::drive`] is.
struct Drive {
    data: VecDeque<FileJob>,
    /// Running files per target table.
    busy: HashMap<Target, usize>,
    views: Vec<Entry>,
    running: JoinSet<(Conn, FileJob, Result<FileEnd, UnitError>)>,
    idle: Vec<Conn>,
    stop: CancellationToken,
    /// Deferred index builds started before the end (a table whose every file is loaded once
    /// the dump is complete): the target table, the connection back, and `Ok(false)` when the
    /// build was stopped (the connection is then dropped).
    indexing: JoinSet<(Target, Conn, Result<bool, UnitError>)>,
    /// The checkpoint's pending deferred indexes (schema file, target db, target table) not
    /// started yet; read once every file is known and every table created.
    keys_todo: Option<Vec<(String, String, String)>>,
    /// Schema statements not started yet, in order ([`schema`]).
    schema: VecDeque<schema::Job>,
    /// The schema lane while idle (`None` while it runs a job, or before it is opened).
    lane: Option<schema::Lane>,
    /// The schema job running (at most one: the lane is one connection).
    lane_running: JoinSet<(schema::Lane, schema::Job, Result<bool, UnitError>)>,
    /// Upstream tables whose CREATE TABLE has run (or is skipped) in this run: their data
    /// files may start.
    created: HashSet<(String, String)>,
}

impl Drive {
    /// No schema job queued or running.
    fn schema_idle(&self) -> bool {
        self.schema.is_empty() && self.lane_running.is_empty()
    }
}

impl Run {
    async fn init(ctx: &UnitCtx, stats: Arc<LoadStats>) -> Result<Run, UnitError> {
        let task = ctx.task.clone();
        let source_id = ctx.source.source_id.clone();
        let target = target_of(&task)?;
        let rules = TableRules::new(&task, &source_id).map_err(|e| {
            UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules").cause(e)
        })?;
        let loader = task
            .instances()
            .find(|i| i.source_id == source_id)
            .and_then(|i| i.loader.clone())
            .unwrap_or_default();
        let pool_size = if loader.pool_size <= 0 {
            16
        } else {
            loader.pool_size.min(256) as usize
        };
        let opts = target.mysql_opts(session_init(&target));
        let mut ctrl = connect_opts(opts.clone())
            .await
            .map_err(|e| connect_error("connect to the downstream", e))?;
        let ckpt = checkpoint_of(ctx);
        ckpt.create(&mut ctrl).await?;
        if ckpt
            .apply_reset(&mut ctrl, ctx.reset_token.as_deref())
            .await?
        {
            tracing::info!(token = ?ctx.reset_token, "loader checkpoint removed (--remove-meta, once for this start)");
        }
        let saved = ckpt.read(&mut ctrl).await?.unwrap_or_default();
        let (mut fin, mut tot, mut done) = (0i64, 0i64, 0u64);
        for r in saved.files.values() {
            fin += r.offset.min(r.end_pos) as i64;
            tot += r.end_pos as i64;
            done += u64::from(r.finished());
        }
        stats.reset(fin, tot, saved.files.len() as u64, done);
        let tables_with_rows = saved
            .files
            .values()
            .map(|r| (r.schema.clone(), r.table.clone()))
            .collect();
        if !saved.files.is_empty() {
            tracing::info!(
                files = saved.files.len(),
                finished = done,
                "resuming the load from the loader checkpoint"
            );
        }
        let row_rules = RowRules::new(&task, &source_id).map_err(|e| {
            UnitError::new(code::UNIT_CONFIG, "internal", "invalid column-mappings").cause(e)
        })?;
        Ok(Run {
            stats,
            rules,
            row_rules: (!row_rules.is_empty()).then(|| Arc::new(row_rules)),
            opts,
            ctrl,
            ckpt: Arc::new(ckpt),
            saved,
            dir: full::dump_dir(&task, &source_id),
            pool_size,
            clean: task.clean_dump_file,
            full_mode: task.task_mode == "full",
            tables: HashSet::new(),
            tables_with_rows,
            seen: HashSet::new(),
            dump_checked: false,
            bulk: Arc::new(bulk::Bulk::from_env()),
            bufs: Arc::default(),
            on_duplicate: rewrite::OnDuplicate::from_config(&loader.on_duplicate_logical),
        })
    }

    fn meta(&self) -> Result<DumpMeta, UnitError> {
        let path = self.dir.join(METADATA_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => DumpMeta::parse(&text, &shown),
            Err(e) => Err(UnitError::new(
                code::PARSE_META,
                "internal",
                format!("parse mydumper metadata error: read {shown}: {e}"),
            )
            .workaround("The dump directory has no readable `metadata` file (the dump did not finish): dump again (`start-task --remove-meta`).")),
        }
    }

    fn set_meta(&self, meta: &DumpMeta) {
        self.stats
            .set_meta(meta.master.clone().filter(|m| !m.file.is_empty()));
    }

    /// Records the dump id of a dm-rs dump directory (once per run).
    async fn check_dump(&mut self) -> Result<(), UnitError> {
        if self.dump_checked {
            return Ok(());
        }
        match DumpState::read(&self.dir) {
            Ok(Some(st)) if !st.dump_id.is_empty() => {
                self.ckpt
                    .check_dump(&mut self.ctrl, &self.saved, &st.dump_id)
                    .await?;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(file = STATE_FILE, error = %e, "unreadable dump record; the dump id is not checked")
            }
        }
        self.dump_checked = true;
        Ok(())
    }

    async fn process(
        &mut self,
        feed: &mut watch::Receiver<FeedState>,
        cancel: &CancellationToken,
    ) -> Result<UnitExit, UnitError> {
        let live = feed.borrow().live;
        let mut d = Drive {
            data: VecDeque::new(),
            busy: HashMap::new(),
            views: Vec::new(),
            running: JoinSet::new(),
            idle: Vec::new(),
            stop: cancel.child_token(),
            indexing: JoinSet::new(),
            keys_todo: None,
            schema: VecDeque::new(),
            lane: None,
            lane_running: JoinSet::new(),
            created: HashSet::new(),
        };
        let r = self.drive(&mut d, feed, cancel, live).await;
        if r.is_err() || matches!(r, Ok(UnitExit::Cancelled)) {
            // Let the in-flight statements finish (each is atomic with its checkpoint, a
            // CREATE is atomic too); the index builds see `stop` and are killed (an ALTER is
            // atomic; the next run adds what is missing).
            d.stop.cancel();
            while d.running.join_next().await.is_some() {}
            while d.indexing.join_next().await.is_some() {}
            while let Some(j) = d.lane_running.join_next().await {
                if let Ok((lane, _, _)) = j {
                    d.lane = Some(lane);
                }
            }
        }
        let lane = d.lane.take().map(schema::Lane::into_conn);
        for c in d.idle.drain(..).chain(lane) {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.disconnect()).await;
        }
        let (f, t, fd, ft) = self.stats.figures();
        let (fast, slow) = (
            self.bulk.loaded.load(std::sync::atomic::Ordering::Relaxed),
            self.bulk
                .fell_back
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        tracing::info!(finished_bytes = f, total_bytes = t, files_done = fd, files_total = ft, load_data_statements = fast, insert_fallbacks = slow, result = ?r.as_ref().map_err(|e| e.to_string()), "load run ends");
        r
    }

    async fn drive(
        &mut self,
        d: &mut Drive,
        feed: &mut watch::Receiver<FeedState>,
        cancel: &CancellationToken,
        live: bool,
    ) -> Result<UnitExit, UnitError> {
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut consumed = 0usize;
        let mut done;
        if let Some(text) = self.saved.done.clone() {
            // Finished by an earlier run (the directory may be gone): nothing to load.
            self.stats.set_meta(done_meta(&text));
            self.stats.set_done();
            tracing::info!("the load finished in an earlier run");
            return Ok(UnitExit::Finished);
        }
        if live {
            done = false;
        } else {
            if !self.dir.is_dir() {
                if !self.saved.files.is_empty() && !self.saved.unfinished() {
                    tracing::info!(dir = %self.dir.display(), "the dump directory is gone and every file is loaded");
                    self.stats.set_done();
                    return Ok(UnitExit::Finished);
                }
                return Err(UnitError::new(
                    code::LOAD_DIR_NOT_FOUND,
                    "internal",
                    format!("the dump directory {} does not exist", self.dir.display()),
                )
                .workaround(
                    "Dump again (`start-task --remove-meta`), or point `loaders.dir` at the dump.",
                ));
            }
            let meta = self.meta()?;
            self.set_meta(&meta);
            self.check_dump().await?;
            let entries = self.scan()?;
            self.take(entries, d).await?;
            done = true;
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(UnitExit::Cancelled);
            }
            let mut stopped = false;
            if live {
                let st = feed.borrow_and_update().clone();
                let new: Vec<Entry> = st.ready[consumed.min(st.ready.len())..]
                    .iter()
                    .filter_map(|f| Entry::of(&f.name, f.size))
                    .collect();
                consumed = st.ready.len();
                if !new.is_empty() {
                    self.take(new, d).await?;
                }
                stopped = st.stopped;
                if st.done && !done {
                    done = true;
                    // The dump is complete: its metadata, and any file it did not announce
                    // (a resumed dump's earlier files).
                    let meta = self.meta()?;
                    self.set_meta(&meta);
                    let entries = self.scan()?;
                    self.take(entries, d).await?;
                }
            }
            if stopped {
                tracing::info!("the dump stopped: the load stops after its in-flight statements");
                return Ok(UnitExit::Cancelled);
            }
            self.start_schema(d).await?;
            if done && d.schema_idle() {
                self.start_indexes(d).await?;
            }
            self.dispatch(d).await?;
            if done
                && d.schema_idle()
                && d.data.is_empty()
                && d.running.is_empty()
                && d.indexing.is_empty()
            {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(UnitExit::Cancelled),
                r = feed.changed(), if live && !done => {
                    if r.is_err() {
                        return Ok(UnitExit::Cancelled);
                    }
                }
                Some(j) = d.running.join_next() => self.joined(d, j)?,
                Some(j) = d.lane_running.join_next() => {
                    let (lane, job, r) = j.map_err(|e| {
                        UnitError::new(code::CRASHED, "internal", "a schema statement ended abnormally")
                            .cause(e)
                    })?;
                    d.lane = Some(lane);
                    if !r? {
                        return Ok(UnitExit::Cancelled);
                    }
                    if let schema::Job::Table { upstream, .. } = job {
                        tracing::debug!(db = %upstream.0, table = %upstream.1, "table created");
                        d.created.insert(upstream);
                    }
                }
                Some(j) = d.indexing.join_next() => {
                    let (target, conn, r) = j.map_err(|e| {
                        UnitError::new(code::CRASHED, "internal", "an index build ended abnormally")
                            .cause(e)
                    })?;
                    d.busy.remove(&target);
                    if r? {
                        d.idle.push(conn);
                    }
                }
                _ = tick.tick() => self.log_progress(),
            }
        }
        if !self.add_deferred_keys(cancel).await? {
            return Ok(UnitExit::Cancelled);
        }
        let views: Vec<schema::Job> = std::mem::take(&mut d.views)
            .into_iter()
            .filter_map(|v| self.view_job(v))
            .collect();
        if !views.is_empty() {
            let mut lane = match d.lane.take() {
                Some(l) => l,
                None => self.open_lane().await?,
            };
            let mut r = Ok(true);
            for v in &views {
                r = lane.run(v, cancel).await;
                if !matches!(r, Ok(true)) {
                    break;
                }
            }
            d.lane = Some(lane);
            if !r? {
                return Ok(UnitExit::Cancelled);
            }
        }
        let meta = self.stats.meta();
        self.ckpt
            .mark_done(
                &mut self.ctrl,
                &meta
                    .map(|m| format!("{}\t{}\t{}", m.file, m.pos, m.gtid))
                    .unwrap_or_default(),
            )
            .await?;
        self.finish_clean();
        self.stats.set_done();
        self.log_progress();
        Ok(UnitExit::Finished)
    }

    fn log_progress(&self) {
        let (f, t, fd, ft) = self.stats.figures();
        tracing::info!(
            finished_bytes = f,
            total_bytes = t,
            files_done = fd,
            files_total = ft,
            progress = %stats::progress(f, t, false),
            "progress status of load"
        );
    }

    /// The directory's entries not taken yet; unfinished checkpoint rows must have a file.
    fn scan(&mut self) -> Result<Vec<Entry>, UnitError> {
        let (entries, _) = plan::scan_dir(&self.dir).map_err(|e| {
            UnitError::new(
                code::LOAD_DIR_NOT_FOUND,
                "internal",
                format!("read the dump directory {}: {e}", self.dir.display()),
            )
        })?;
        let names: HashSet<&str> = entries.iter().filter_map(Entry::file).collect();
        if let Some((f, _)) = self.saved.files.iter().find(|(f, r)| {
            !r.finished() && !names.contains(f.as_str()) && !self.seen.contains(f.as_str())
        }) {
            return Err(UnitError::new(
                code::LOAD_DISPATCH,
                "internal",
                format!(
                    "the data file {f} is partly loaded (loader checkpoint {}) but is missing from {}",
                    self.ckpt.table,
                    self.dir.display()
                ),
            )
            .workaround("Restore the dump directory, or start again with `start-task --remove-meta` (truncate the target tables first)."));
        }
        Ok(entries
            .into_iter()
            .filter(|e| e.file().is_none_or(|f| !self.seen.contains(f)))
            .collect())
    }

    /// Takes entries in order: schema statements are queued for the lane ([`Run::start_schema`]),
    /// data files are queued, views wait for the end.
    async fn take(&mut self, entries: Vec<Entry>, d: &mut Drive) -> Result<(), UnitError> {
        for e in entries {
            if let Some(f) = e.file()
                && !self.seen.insert(f.to_string())
            {
                continue;
            }
            match e {
                Entry::Db { db, file } => {
                    if self.rules.allow_schema(&db) {
                        let (target, _) = self.rules.route(&db, "");
                        d.schema.push_back(schema::Job::Db { target, file });
                    }
                }
                Entry::Table { db, table, file } => {
                    if !self.rules.allow_table(&db, &table) {
                        continue;
                    }
                    let key = (db, table);
                    self.tables.insert(key.clone());
                    if self.tables_with_rows.contains(&key) {
                        tracing::debug!(
                            db = %key.0,
                            table = %key.1,
                            "table already being loaded: CREATE TABLE skipped"
                        );
                        d.created.insert(key);
                    } else {
                        let target = self.rules.route(&key.0, &key.1);
                        d.schema.push_back(schema::Job::Table {
                            upstream: key,
                            target,
                            file,
                        });
                    }
                }
                Entry::View { .. } => d.views.push(e),
                Entry::Data {
                    db,
                    table,
                    file,
                    size,
                } => {
                    if let Some(job) = self.data_job(db, table, file, size).await? {
                        d.data.push_back(job);
                    }
                }
            }
        }
        Ok(())
    }

    async fn data_job(
        &mut self,
        db: String,
        table: String,
        name: String,
        size: u64,
    ) -> Result<Option<FileJob>, UnitError> {
        if !self.rules.allow_table(&db, &table) {
            return Ok(None);
        }
        if name.len() > 255 {
            return Err(UnitError::new(
                code::LOAD_DISPATCH,
                "internal",
                format!("the data file name {name} is longer than the loader checkpoint's 255 bytes"),
            )
            .workaround("Rename the database or table to a shorter name upstream, or load this table another way."));
        }
        let path = self.dir.join(&name);
        let row = self.saved.files.get(&name).cloned();
        if let Some(r) = &row {
            if r.finished() {
                if self.clean {
                    remove_file(&path);
                }
                return Ok(None);
            }
            if r.end_pos != size {
                return Err(UnitError::new(
                    code::LOAD_CHECKPOINT_MISMATCH,
                    "internal",
                    format!(
                        "inconsistent checkpoints between loader and target database: {name} has {size} bytes, the loader checkpoint says {}",
                        r.end_pos
                    ),
                )
                .workaround("The dump directory changed since the load started: run `start-task --remove-meta` to load it from the start (truncate the target tables first)."));
            }
        } else {
            if !self.tables.contains(&(db.clone(), table.clone())) {
                return Err(UnitError::new(
                    code::LOAD_NO_TABLE_FILE,
                    "internal",
                    format!(
                        "data file {name} has no table schema file ({})",
                        full::naming::table_schema_file(&db, &table)
                    ),
                )
                .workaround(
                    "The dump directory is incomplete: dump again (`start-task --remove-meta`).",
                ));
            }
            self.stats.add_file(size, 0, false);
        }
        self.check_dump().await?;
        let (tdb, ttable) = self.rules.route(&db, &table);
        Ok(Some(FileJob {
            name,
            path,
            db,
            table,
            target_db: tdb,
            target_table: ttable,
            size,
            offset: row.as_ref().map_or(0, |r| r.offset),
            has_row: row.is_some(),
        }))
    }

    /// Once every file is known: starts the deferred index builds of the target tables with no
    /// file queued or loading, on free connections (before data files: a build is long, and
    /// run beside the last files it keeps both the downstream's cores busy instead of leaving
    /// them to a tail of single builds at the end). One build per target table at a time; the
    /// end ([`Run::add_deferred_keys`]) adds whatever is left.
    async fn start_indexes(&mut self, d: &mut Drive) -> Result<(), UnitError> {
        if d.keys_todo.is_none() {
            d.keys_todo = Some(self.ckpt.keys_pending(&mut self.ctrl).await?);
        }
        let free = |d: &Drive| d.running.len() + d.indexing.len() < self.pool_size;
        let mut todo = d.keys_todo.take().unwrap_or_default();
        if todo.is_empty() || !free(d) {
            d.keys_todo = Some(todo);
            return Ok(());
        }
        // The targets with files still queued, once per call (not once per pending table).
        let queued: HashSet<Target> = d
            .data
            .iter()
            .map(|j| (j.target_db.clone(), j.target_table.clone()))
            .collect();
        let mut i = 0;
        while i < todo.len() && free(d) {
            let target = (todo[i].1.clone(), todo[i].2.clone());
            let loading = d.busy.get(&target).is_some_and(|n| *n > 0) || queued.contains(&target);
            if loading {
                i += 1;
                continue;
            }
            let build = self.key_build(todo.remove(i)).await;
            let mut conn = match d.idle.pop() {
                Some(c) => c,
                None => connect_opts(self.opts.clone())
                    .await
                    .map_err(|e| connect_error("connect to the downstream", e))?,
            };
            let (ckpt, stop, opts) = (self.ckpt.clone(), d.stop.clone(), self.opts.clone());
            tracing::debug!(db = %build.db, table = %build.table, "deferred indexes start");
            // Not two builds of one target table at once (shards merged onto it): the next
            // waits in `todo` for this one.
            d.busy.insert(target.clone(), 1);
            d.indexing.spawn(async move {
                let r = add_keys(&mut conn, &ckpt, &build, &stop, &opts).await;
                (target, conn, r)
            });
        }
        d.keys_todo = Some(todo);
        Ok(())
    }

    /// Starts queued data files on free connections (up to `pool-size`, index builds included).
    async fn dispatch(&mut self, d: &mut Drive) -> Result<(), UnitError> {
        while d.running.len() + d.indexing.len() < self.pool_size {
            let Some(i) = pick_file(&d.data, &d.created, &d.busy) else {
                break;
            };
            let conn = match d.idle.pop() {
                Some(c) => c,
                None => connect_opts(self.opts.clone())
                    .await
                    .map_err(|e| connect_error("connect to the downstream", e))?,
            };
            let Some(job) = d.data.remove(i) else {
                d.idle.push(conn);
                break;
            };
            *d.busy
                .entry((job.target_db.clone(), job.target_table.clone()))
                .or_default() += 1;
            tracing::debug!(file = %job.name, offset = job.offset, running = d.running.len() + 1, "data file load starts");
            let cx = FileCtx {
                ckpt: self.ckpt.clone(),
                rules: self.row_rules.clone(),
                stats: self.stats.clone(),
                bulk: self.bulk.clone(),
                bufs: self.bufs.clone(),
                stop: d.stop.clone(),
                on_duplicate: self.on_duplicate,
            };
            d.running.spawn(async move {
                let mut conn = conn;
                let r = file::load_file(&mut conn, &job, &cx).await;
                (conn, job, r)
            });
        }
        Ok(())
    }

    fn joined(
        &mut self,
        d: &mut Drive,
        j: Result<(Conn, FileJob, Result<FileEnd, UnitError>), tokio::task::JoinError>,
    ) -> Result<(), UnitError> {
        let (conn, job, r) = j.map_err(|e| {
            UnitError::new(code::CRASHED, "internal", "a load task ended abnormally").cause(e)
        })?;
        if let Some(n) = d
            .busy
            .get_mut(&(job.target_db.clone(), job.target_table.clone()))
        {
            *n = n.saturating_sub(1);
        }
        match r {
            Ok(FileEnd::Finished) => {
                d.idle.push(conn);
                self.stats.file_done();
                if self.clean {
                    remove_file(&job.path);
                }
                tracing::debug!(file = %job.name, "data file loaded");
                Ok(())
            }
            Ok(FileEnd::Stopped) => {
                d.idle.push(conn);
                Ok(())
            }
            Err(e) => {
                // The connection may hold a transaction the error interrupted: dropped.
                drop(conn);
                Err(e)
            }
        }
    }

    /// Starts the next schema job on the lane when it is idle (opening its connection the
    /// first time).
    async fn start_schema(&mut self, d: &mut Drive) -> Result<(), UnitError> {
        if !d.lane_running.is_empty() {
            return Ok(());
        }
        let Some(job) = d.schema.pop_front() else {
            return Ok(());
        };
        let mut lane = match d.lane.take() {
            Some(l) => l,
            None => match self.open_lane().await {
                Ok(l) => l,
                Err(e) => {
                    d.schema.push_front(job);
                    return Err(e);
                }
            },
        };
        let stop = d.stop.clone();
        d.lane_running.spawn(async move {
            let r = lane.run(&job, &stop).await;
            (lane, job, r)
        });
        Ok(())
    }

    async fn open_lane(&self) -> Result<schema::Lane, UnitError> {
        let conn = connect_opts(self.opts.clone())
            .await
            .map_err(|e| connect_error("connect to the downstream", e))?;
        Ok(schema::Lane::new(conn, self.ckpt.clone(), self.dir.clone()))
    }

    /// A view entry as a schema job (`None`: filtered out).
    fn view_job(&self, e: Entry) -> Option<schema::Job> {
        let Entry::View { db, view, file } = e else {
            return None;
        };
        if !self.rules.allow_table(&db, &view) {
            return None;
        }
        let (target_db, _) = self.rules.route(&db, &view);
        Some(schema::Job::View { target_db, file })
    }

    /// A pending `#keys` row (schema file, target db, target table) with its definitions.
    async fn key_build(&self, (file, db, table): (String, String, String)) -> KeyBuild {
        let keys = schema::deferred_keys(&self.dir, &file).await;
        KeyBuild {
            file,
            db,
            table,
            keys,
        }
    }

    /// Adds the deferred secondary indexes of the tables this load created (`pool-size` tables
    /// at once), each recorded as done in the checkpoint; an index already there (a run that
    /// crashed after adding it) is not added twice. `Ok(false)`: `cancel` stopped them
    /// (killed; the next run adds what is missing).
    async fn add_deferred_keys(&mut self, cancel: &CancellationToken) -> Result<bool, UnitError> {
        let pending = self.ckpt.keys_pending(&mut self.ctrl).await?;
        if pending.is_empty() {
            return Ok(true);
        }
        let started = std::time::Instant::now();
        let mut jobs = Vec::new();
        for p in pending {
            jobs.push(self.key_build(p).await);
        }
        let n = jobs.len();
        let mut set: JoinSet<Result<bool, UnitError>> = JoinSet::new();
        let mut jobs = jobs.into_iter();
        let mut all = true;
        loop {
            while set.len() < self.pool_size && !cancel.is_cancelled() {
                let Some(build) = jobs.next() else {
                    break;
                };
                let (opts, ckpt, stop) = (self.opts.clone(), self.ckpt.clone(), cancel.clone());
                set.spawn(async move {
                    let mut conn = connect_opts(opts.clone())
                        .await
                        .map_err(|e| connect_error("connect to the downstream", e))?;
                    let r = add_keys(&mut conn, &ckpt, &build, &stop, &opts).await;
                    if matches!(r, Ok(true)) {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(5), conn.disconnect()).await;
                    }
                    r
                });
            }
            match set.join_next().await {
                Some(Ok(r)) => all &= r?,
                Some(Err(e)) => {
                    return Err(UnitError::new(
                        code::CRASHED,
                        "internal",
                        "an index build ended abnormally",
                    )
                    .cause(e));
                }
                None => break,
            }
        }
        if !all || cancel.is_cancelled() {
            return Ok(false);
        }
        tracing::info!(tables = n, elapsed = ?started.elapsed(), "deferred secondary indexes added");
        Ok(true)
    }

    /// `clean-dump-file` at the end: `full` removes the directory; `all` has already removed
    /// the data files and keeps the rest for the sync unit.
    fn finish_clean(&self) {
        if !self.clean {
            return;
        }
        if self.full_mode {
            if let Err(e) = std::fs::remove_dir_all(&self.dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the dump directory");
            } else {
                tracing::info!(dir = %self.dir.display(), "dump directory removed (clean-dump-file)");
            }
        }
    }
}

/// The queued file to load next: only one whose table is created (or was, by an earlier run:
/// the file has its row in the checkpoint); of those, one of a target table no connection is
/// writing first (connections appending to the end of one primary key wait on each other).
fn pick_file(
    data: &VecDeque<FileJob>,
    created: &HashSet<(String, String)>,
    busy: &HashMap<Target, usize>,
) -> Option<usize> {
    let ready = |j: &FileJob| j.has_row || created.contains(&(j.db.clone(), j.table.clone()));
    let idle_table = |j: &FileJob| {
        busy.get(&(j.target_db.clone(), j.target_table.clone()))
            .is_none_or(|n| *n == 0)
    };
    data.iter()
        .position(|j| ready(j) && idle_table(j))
        .or_else(|| data.iter().position(ready))
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "could not remove a loaded dump file");
    }
}

/// Adds the missing ones of `keys` (definitions like ``KEY `k` (`c`)``) to `db`.`table` in one
/// ALTER ([`long_statement`]: no fixed timeout, `stop` kills it), then marks the table's
/// `#keys` row done. `Ok(false)`: stopped, the row is not done (the next run adds what is
/// missing) and `conn` must be dropped.
async fn add_keys(
    conn: &mut Conn,
    ckpt: &LoaderCheckpoint,
    b: &KeyBuild,
    stop: &CancellationToken,
    opts: &Opts,
) -> Result<bool, UnitError> {
    let KeyBuild {
        file,
        db,
        table,
        keys,
    } = b;
    let have: Vec<String> = timed(
        "read the target table's indexes",
        conn.query(format!(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            crate::worker::units::sync::checkpoint::lit(db),
            crate::worker::units::sync::checkpoint::lit(table)
        )),
    )
    .await?;
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let name = k
                .strip_prefix("KEY `")
                .and_then(|r| r.split('`').next())
                .unwrap_or("");
            !have.iter().any(|h| h.eq_ignore_ascii_case(name))
        })
        .collect();
    if !missing.is_empty() {
        if let Some(d) = crate::worker::failpoint::delay_of("load-index") {
            let sleep = format!("DO SLEEP({:.3})", d.as_secs_f64());
            if long_statement(conn, &sleep, stop, opts, "the load-index failpoint").await?
                == LongEnd::Stopped
            {
                return Ok(false);
            }
        }
        let adds: Vec<String> = missing.iter().map(|k| format!("ADD {k}")).collect();
        let q = format!(
            "ALTER TABLE {}.{} {}",
            quote(db),
            quote(table),
            adds.join(", ")
        );
        let what = format!("add the secondary indexes of `{db}`.`{table}`");
        if long_statement(conn, &q, stop, opts, &what).await? == LongEnd::Stopped {
            tracing::info!(db = %db, table = %table, "index build stopped: the next run adds the indexes");
            return Ok(false);
        }
    }
    timed(
        "record the added indexes",
        conn.query_drop(ckpt.keys_done_sql(file)),
    )
    .await?;
    Ok(true)
}

/// One target table's deferred indexes: its `#keys` checkpoint row (`file`) and definitions.
struct KeyBuild {
    file: String,
    db: String,
    table: String,
    keys: Vec<String>,
}

/// How often a [`long_statement`] checks that the server is still running it (the
/// `load-index-check=MILLIS` failpoint shortens it for the tests).
fn long_check_every() -> Duration {
    crate::worker::failpoint::delay_of("load-index-check").unwrap_or(Duration::from_secs(30))
}

/// How a [`long_statement`] ended.
#[derive(Debug, PartialEq, Eq)]
enum LongEnd {
    Done,
    /// `stop` fired: the statement was killed (`KILL QUERY`) and the connection is unusable.
    Stopped,
}

/// Runs a statement that can take hours (an index build on a big table), so without a fixed
/// timeout: instead, every [`long_check_every`] (30 s) a side connection checks that the server
/// still has the statement's connection (`information_schema.PROCESSLIST`). Not confirmed
/// [`LONG_UNCONFIRMED`] times in a row (unreachable, or the connection gone): killed and a
/// retryable error (the next run starts over; an ALTER is atomic). `stop` kills it with
/// `KILL QUERY` on a side connection.
async fn long_statement(
    conn: &mut Conn,
    sql: &str,
    stop: &CancellationToken,
    opts: &Opts,
    what: &str,
) -> Result<LongEnd, UnitError> {
    let id = conn.id();
    let run = conn.query_drop(sql);
    tokio::pin!(run);
    let every = long_check_every();
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut unconfirmed = 0;
    loop {
        tokio::select! {
            r = &mut run => {
                return r
                    .map(|()| LongEnd::Done)
                    .map_err(|e| UnitError::from_mysql("downstream", what.to_string(), &e));
            }
            _ = stop.cancelled() => {
                crate::config::db::kill_query(opts.clone(), id).await;
                return Ok(LongEnd::Stopped);
            }
            _ = check.tick() => {
                let why = match still_running(opts, id).await {
                    Ok(true) => {
                        unconfirmed = 0;
                        continue;
                    }
                    Ok(false) => format!("the downstream no longer has connection {id}"),
                    Err(e) => e.to_string(),
                };
                unconfirmed += 1;
                tracing::warn!(what, unconfirmed, reason = %why, "a running index build could not be confirmed");
                if unconfirmed >= LONG_UNCONFIRMED {
                    crate::config::db::kill_query(opts.clone(), id).await;
                    return Err(UnitError::new(
                        code::DB_DRIVER,
                        "downstream",
                        format!("{what}: not confirmed running {LONG_UNCONFIRMED} times in a row ({why})"),
                    )
                    .retryable(true));
                }
            }
        }
    }
}

/// Checks in a row that may fail to confirm a [`long_statement`] before it is given up.
const LONG_UNCONFIRMED: u32 = 3;

/// Whether the downstream still has connection `id` (checked on a side connection).
async fn still_running(opts: &Opts, id: u32) -> Result<bool, UnitError> {
    let mut c = connect_opts(opts.clone())
        .await
        .map_err(|e| connect_error("connect to the downstream", e))?;
    let n: Option<u64> = timed(
        "check a running index build",
        c.query_first(format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"
        )),
    )
    .await?;
    let _ = tokio::time::timeout(QUERY_TIMEOUT, c.disconnect()).await;
    Ok(n.unwrap_or(0) > 0)
}

/// The metadata location a `#done` row keeps (`file`, tab, `pos`, tab, `gtid`).
fn done_meta(text: &str) -> Option<full::BinlogLoc> {
    let mut it = text.split('\t');
    let file = it.next()?.to_string();
    let pos = it.next()?.parse().ok()?;
    let gtid = it.next().unwrap_or_default().to_string();
    (!file.is_empty()).then_some(full::BinlogLoc { file, pos, gtid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_file_is_of_a_created_table_and_an_idle_one_first() {
        // A file of upstream table `t` (routed onto target `T`), with or without its row in
        // the checkpoint.
        let job = |t: &str, target: &str, has_row: bool| FileJob {
            name: format!("d.{t}.sql"),
            path: PathBuf::from(format!("d.{t}.sql")),
            db: "d".into(),
            table: t.into(),
            target_db: "d".into(),
            target_table: target.into(),
            size: 1,
            offset: 0,
            has_row,
        };
        let key = |t: &str| ("d".to_string(), t.to_string());
        // (queue, created upstream tables, busy target tables, pick)
        type Case = (
            Vec<FileJob>,
            Vec<&'static str>,
            Vec<&'static str>,
            Option<usize>,
        );
        let cases: Vec<Case> = vec![
            (vec![], vec!["a"], vec![], None),
            // Nothing created yet: nothing starts.
            (
                vec![job("a", "a", false), job("b", "b", false)],
                vec![],
                vec![],
                None,
            ),
            // Only b is created.
            (
                vec![job("a", "a", false), job("b", "b", false)],
                vec!["b"],
                vec![],
                Some(1),
            ),
            // A row in the checkpoint: created by an earlier run.
            (vec![job("a", "a", true)], vec![], vec![], Some(0)),
            // a is being written: b first.
            (
                vec![job("a", "a", false), job("b", "b", false)],
                vec!["a", "b"],
                vec!["a"],
                Some(1),
            ),
            // Every created table is being written: the first created one anyway.
            (
                vec![
                    job("x", "x", false),
                    job("a", "a", false),
                    job("b", "b", false),
                ],
                vec!["a", "b"],
                vec!["a", "b"],
                Some(1),
            ),
            // Shards a and b both go to T, which is being written; c is idle.
            (
                vec![
                    job("a", "T", false),
                    job("b", "T", false),
                    job("c", "c", false),
                ],
                vec!["a", "b", "c"],
                vec!["T"],
                Some(2),
            ),
        ];
        for (i, (queue, created, busy, want)) in cases.into_iter().enumerate() {
            let data: VecDeque<FileJob> = queue.into_iter().collect();
            let created: HashSet<(String, String)> = created.into_iter().map(key).collect();
            let busy: HashMap<Target, usize> = busy.into_iter().map(|t| (key(t), 1)).collect();
            assert_eq!(pick_file(&data, &created, &busy), want, "case {i}");
        }
    }

    #[test]
    fn sql_mode_keeps_the_targets_modes_but_never_no_backslash_escapes() {
        let cases = [
            (None, "NO_AUTO_VALUE_ON_ZERO"),
            (Some(""), "NO_AUTO_VALUE_ON_ZERO"),
            (
                Some("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES"),
                "NO_AUTO_VALUE_ON_ZERO,STRICT_TRANS_TABLES",
            ),
            (
                Some("no_auto_value_on_zero, ansi_quotes,traditional"),
                "NO_AUTO_VALUE_ON_ZERO,TRADITIONAL",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sql_mode(input), want, "{input:?}");
        }
    }

    #[test]
    fn sessions_force_utc_and_take_the_targets_variables() {
        let mut db = DbConfig::default();
        db.session.insert("time_zone".into(), "+08:00".into());
        db.session
            .insert("sql_mode".into(), "STRICT_ALL_TABLES".into());
        db.session
            .insert("innodb_lock_wait_timeout".into(), "7".into());
        db.session.insert("bad name".into(), "x".into());
        assert_eq!(
            session_init(&db),
            vec![
                "SET SESSION foreign_key_checks = 0",
                "SET SESSION time_zone = '+00:00'",
                "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES'",
                "SET SESSION innodb_lock_wait_timeout = '7'",
            ]
        );
    }
}
