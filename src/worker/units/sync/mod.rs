//! The Sync unit: streams the upstream binlog and applies it downstream.
//!
//! Reads from the checkpoint (or the task's `meta` on a first run), decodes events through
//! the MariaDB layer ([`crate::binlog`]), applies the instance's block-allow-list, binlog
//! filters and routes ([`crate::rules`]), turns row events into SQL ([`crate::dml`]) applied
//! in parallel by [`apply::Applier`], runs DDL serially after draining every queue, and keeps
//! the checkpoint in the downstream ([`checkpoint`]). Safe mode (idempotent REPLACE /
//! DELETE+REPLACE) runs while re-reading events a previous run may have applied: up to the
//! exact exit point left by a crashed run, or for 2 × checkpoint-flush-interval after the
//! first start of a task (its meta position may be behind data already downstream), or
//! always with `safe-mode: true`.
//!
//! It returns `Ok(())` when cancelled after a clean flush, or the error that stopped it; it
//! never retries by itself (the subtask's auto-resume does).

pub mod apply;
pub mod checkpoint;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::binlog::events::{Event, EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio::sync::watch;

use crate::binlog::rows::{self, TableMeta};
use crate::binlog::{self, Decoded, Position};
use crate::config::source::SourceConfig;
use crate::config::task::{DbConfig, SyncerConfig, TaskConfig};
use crate::dml::TargetTable;
use crate::pb;
use crate::rules::{DdlKind, EventType, TableName, TableRules};
use crate::worker::error::{UnitError, code};
use apply::{Applier, Change};
use checkpoint::{CheckpointTable, quote};

/// How long the stream may be quiet before the unit drains its queues and saves the
/// checkpoint (so an idle task is caught up and checkpointed).
const IDLE: Duration = Duration::from_millis(100);
/// Drain and checkpoint at least this often under load (keeps syncerBinlog fresh).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What the unit needs to run.
pub struct UnitCtx {
    pub task: Arc<TaskConfig>,
    pub source: Arc<SourceConfig>,
    pub stats: Arc<SyncStats>,
    pub remove_meta: bool,
    pub worker: String,
}

/// DM's SyncStatus, kept up to date by the running unit.
#[derive(Default)]
pub struct SyncStats {
    inner: Mutex<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    total_events: i64,
    started: Option<Instant>,
    window_start: Option<Instant>,
    window_events: i64,
    recent_tps: i64,
    master: Option<Position>,
    master_gtid: String,
    syncer: Option<Position>,
    syncer_gtid: String,
    last_event_ts: u32,
}

impl SyncStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add_events(&self, n: i64) {
        let mut s = self.lock();
        let now = Instant::now();
        s.started.get_or_insert(now);
        s.total_events += n;
        let ws = *s.window_start.get_or_insert(now);
        s.window_events += n;
        let el = now.duration_since(ws);
        if el >= Duration::from_secs(10) {
            s.recent_tps = (s.window_events as f64 / el.as_secs_f64()) as i64;
            s.window_start = Some(now);
            s.window_events = 0;
        }
    }

    fn set_master(&self, p: Position, gtid: String) {
        let mut s = self.lock();
        s.master = Some(p);
        s.master_gtid = gtid;
    }

    fn set_syncer(&self, p: Position, gtid: String, ts: u32) {
        let mut s = self.lock();
        s.syncer = Some(p);
        s.syncer_gtid = gtid;
        if ts != 0 {
            s.last_event_ts = ts;
        }
    }

    /// The syncer position (applied and checkpointed).
    pub fn syncer(&self) -> Option<Position> {
        self.lock().syncer.clone()
    }

    pub fn to_pb(&self) -> pb::SyncStatus {
        let s = self.lock();
        let total_tps = match s.started {
            Some(t) if t.elapsed().as_secs_f64() > 0.0 => {
                (s.total_events as f64 / t.elapsed().as_secs_f64()) as i64
            }
            _ => 0,
        };
        let synced = s.master.is_some() && s.master == s.syncer;
        let behind = if synced || s.last_event_ts == 0 {
            0
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (now - s.last_event_ts as i64).max(0)
        };
        pb::SyncStatus {
            total_events: s.total_events,
            total_tps,
            recent_tps: s.recent_tps,
            master_binlog: s.master.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            master_binlog_gtid: s.master_gtid.clone(),
            syncer_binlog: s.syncer.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            syncer_binlog_gtid: s.syncer_gtid.clone(),
            blocking_dd_ls: Vec::new(),
            unresolved_groups: Vec::new(),
            synced,
            binlog_type: "remote".into(),
            seconds_behind_master: behind,
        }
    }
}

/// Connection options for a DM DBConfig (password decrypted here, never logged).
pub fn db_opts(db: &DbConfig, init: Vec<String>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(db.host.clone())
        .tcp_port(db.port)
        .user(Some(db.user.clone()))
        .pass(Some(db.plain_password()))
        .prefer_socket(false)
        .init(init)
        .into()
}

fn downstream_init(db: &DbConfig) -> Vec<String> {
    let mut init = vec!["SET SESSION foreign_key_checks = 0".to_string()];
    let mut tz = "+00:00".to_string();
    for (k, v) in &db.session {
        if k.eq_ignore_ascii_case("time_zone") {
            tz = v.clone();
            continue;
        }
        if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            init.push(format!("SET SESSION {k} = {}", checkpoint::lit(v)));
        }
    }
    init.push(format!("SET SESSION time_zone = {}", checkpoint::lit(&tz)));
    init
}

fn syncer_of(task: &TaskConfig, source_id: &str) -> SyncerConfig {
    task.instances()
        .find(|i| i.source_id == source_id)
        .and_then(|i| i.syncer.clone())
        .unwrap_or_default()
}

/// A downstream table, as the apply code needs it, for one shape of binlog row.
type SchemaCache = HashMap<(String, String, Vec<String>), Arc<TargetTable>>;

struct Unit {
    ctx: UnitCtx,
    rules: TableRules,
    pool: Pool,
    ddl_conn: Conn,
    up_opts: Opts,
    up_conn: Option<Conn>,
    ckpt: CheckpointTable,
    applier: Applier,
    schemas: SchemaCache,
    upstream_columns: HashMap<(String, String), Vec<String>>,
    /// table id → (binlog table meta, downstream table), until the next DDL.
    by_table_id: HashMap<u64, (Arc<TableMeta>, Arc<TargetTable>)>,
    permanent_safe: bool,
    safe_until_pos: Option<Position>,
    safe_until_time: Option<Instant>,
    /// Position after the last complete transaction read (what the checkpoint becomes).
    committed: Position,
    /// GTID state (per domain) at `committed`.
    gtids: BTreeMap<u32, binlog::MariaGtid>,
    cur_gtid: Option<binlog::MariaGtid>,
    last_ts: u32,
    last_flush: Instant,
    dirty: bool,
    events_since_flush: i64,
}

fn gtid_string(g: &BTreeMap<u32, binlog::MariaGtid>) -> String {
    g.values()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the unit until `cancel` turns true (then flushes and returns Ok) or an error.
pub async fn run(ctx: UnitCtx, cancel: watch::Receiver<bool>) -> Result<(), UnitError> {
    let result = run_inner(ctx, cancel).await;
    if let Err(e) = &result {
        tracing::warn!(error = %e, "sync unit stopped");
    }
    result
}

async fn run_inner(ctx: UnitCtx, mut cancel: watch::Receiver<bool>) -> Result<(), UnitError> {
    let task = ctx.task.clone();
    let source_id = ctx.source.source_id.clone();
    let syncer = syncer_of(&task, &source_id);
    let Some(target) = task.target_database.clone() else {
        return Err(UnitError::new(
            code::UNIT_CONFIG,
            "internal",
            "the task has no target-database",
        ));
    };
    let rules = TableRules::new(&task, &source_id).map_err(|e| {
        UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules").cause(e)
    })?;
    let workers = syncer.worker_count.clamp(1, 256) as usize;
    let pool = Pool::new(
        OptsBuilder::from_opts(db_opts(&target, downstream_init(&target))).pool_opts(
            PoolOpts::default()
                .with_constraints(PoolConstraints::new(0, workers + 4).unwrap_or_default()),
        ),
    );
    let mut ddl_conn = pool
        .get_conn()
        .await
        .map_err(|e| UnitError::from_mysql("downstream", "connect to the downstream", &e))?;
    let ckpt = CheckpointTable::new(&task.meta_schema, &task.name, &source_id);
    ckpt.create(&mut ddl_conn).await?;
    if ctx.remove_meta {
        tracing::info!("removing the checkpoint (--remove-meta)");
        ckpt.clear(&mut ddl_conn).await?;
    }
    let saved = ckpt.load(&mut ddl_conn).await?;
    let flush_interval = Duration::from_secs(syncer.checkpoint_flush_interval.max(1) as u64);
    let applied_queues = saved
        .as_ref()
        .and_then(|s| s.queues.get(&workers).cloned())
        .unwrap_or_default();
    let (start, gtid, safe_until_pos, safe_until_time) = match saved {
        Some(s) => {
            tracing::info!(checkpoint = %s.global, exit_safe = ?s.exit_safe.as_ref().map(|p| p.to_string()), "resuming from the checkpoint");
            (s.global, s.gtid, s.exit_safe, None)
        }
        None => {
            let meta = task
                .instances()
                .find(|i| i.source_id == source_id)
                .and_then(|i| i.meta.clone())
                .unwrap_or_default();
            if meta.binlog_name.is_empty() && meta.binlog_gtid.trim().is_empty() {
                return Err(UnitError::new(
                    code::UNIT_CONFIG,
                    "internal",
                    format!(
                        "no checkpoint for task {} and its mysql-instances meta has neither binlog-name nor binlog-gtid",
                        task.name
                    ),
                )
                .workaround("Set meta.binlog-name and meta.binlog-pos (SHOW MASTER STATUS on the upstream), or meta.binlog-gtid (SELECT @@gtid_binlog_pos)."));
            }
            // An empty file name means "start after meta.binlog-gtid".
            let pos = Position {
                file: meta.binlog_name.clone(),
                pos: if meta.binlog_name.is_empty() {
                    4
                } else {
                    u64::from(meta.binlog_pos.max(4))
                },
            };
            tracing::info!(start = %pos, "first run: starting from the task's meta");
            (
                pos,
                meta.binlog_gtid.clone(),
                None,
                Some(Instant::now() + flush_interval * 2),
            )
        }
    };
    let mut applier = Applier::start(
        &pool,
        &ckpt,
        workers,
        syncer.batch.max(1) as usize,
        syncer.queue_size.max(1) as usize,
    )
    .await?;
    applier.set_applied(&applied_queues);
    let up_opts = db_opts(&ctx.source.from, Vec::new());
    let mut gtids = BTreeMap::new();
    for g in gtid.split(',').filter(|s| !s.trim().is_empty()) {
        let parts: Vec<&str> = g.trim().split('-').collect();
        if let [d, s, n] = parts[..]
            && let (Ok(d), Ok(s), Ok(n)) = (d.parse(), s.parse(), n.parse())
        {
            gtids.insert(
                d,
                binlog::MariaGtid {
                    domain: d,
                    server: s,
                    seq: n,
                },
            );
        }
    }
    ctx.stats.set_syncer(start.clone(), gtid_string(&gtids), 0);
    let mut unit = Unit {
        permanent_safe: syncer.safe_mode,
        safe_until_pos,
        safe_until_time,
        rules,
        pool,
        ddl_conn,
        up_opts: up_opts.clone(),
        up_conn: None,
        ckpt,
        applier,
        schemas: HashMap::new(),
        upstream_columns: HashMap::new(),
        by_table_id: HashMap::new(),
        committed: start.clone(),
        gtids,
        cur_gtid: None,
        last_ts: 0,
        last_flush: Instant::now(),
        dirty: false,
        events_since_flush: 0,
        ctx,
    };

    // The master's position, for query-status.
    let poller = tokio::spawn(poll_master(up_opts.clone(), unit.ctx.stats.clone()));
    let server_id = if unit.ctx.source.server_id != 0 {
        unit.ctx.source.server_id
    } else {
        // A stable id per source and task, outside the usual small range.
        400_000_000
            + (crc32fast::hash(format!("{}/{}", task.name, source_id).as_bytes()) % 100_000_000)
    };
    let r = unit.stream(&mut cancel, server_id, start).await;
    poller.abort();
    let r = match r {
        Ok(()) => unit.flush().await,
        Err(e) => Err(e),
    };
    unit.applier.close().await;
    drop(unit.ddl_conn);
    let _ = unit.pool.disconnect().await;
    r
}

async fn poll_master(opts: Opts, stats: Arc<SyncStats>) {
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            conn = Conn::new(opts.clone()).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            let st: Result<Option<mysql_async::Row>, _> = c.query_first("SHOW MASTER STATUS").await;
            let g: Result<Option<String>, _> =
                c.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await;
            match (st, g) {
                (Ok(Some(row)), Ok(g)) => {
                    let file: Option<String> = row.get(0);
                    let pos: Option<u64> = row.get(1);
                    if let (Some(file), Some(pos)) = (file, pos) {
                        stats.set_master(Position { file, pos }, g.unwrap_or_default());
                    }
                }
                _ => conn = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Unit {
    fn safe_mode(&mut self) -> bool {
        if self.permanent_safe {
            return true;
        }
        if let Some(t) = self.safe_until_time {
            if Instant::now() < t {
                return true;
            }
            self.safe_until_time = None;
            tracing::info!("safe mode ends (start window over)");
        }
        if let Some(p) = &self.safe_until_pos {
            if self.committed < *p {
                return true;
            }
            tracing::info!(exit = %p, "safe mode ends (exit point passed)");
            self.safe_until_pos = None;
        }
        false
    }

    async fn stream(
        &mut self,
        cancel: &mut watch::Receiver<bool>,
        server_id: u32,
        start: Position,
    ) -> Result<(), UnitError> {
        let up_err = |what: &str, e: &mysql_async::Error| {
            let mut u = UnitError::from_mysql("upstream", what.to_string(), e);
            u.code = code::BINLOG_READ;
            u
        };
        let opened = if start.file.is_empty() {
            let state = gtid_string(&self.gtids);
            tracing::info!(gtid = %state, "starting after the meta's GTID");
            binlog::open_gtid(self.up_opts.clone(), server_id, &state).await
        } else {
            binlog::open(self.up_opts.clone(), server_id, &start, false).await
        };
        let mut stream = opened.map_err(|e| up_err("open the upstream binlog stream", &e))?;
        let mut cur_file = start.file.clone();
        let mut in_txn = false;
        // Started after a GTID: the position is unknown until the first event group begins.
        let mut gtid_start_pending = start.file.is_empty();
        loop {
            if *cancel.borrow() {
                return Ok(());
            }
            let next = tokio::select! {
                _ = cancel.changed() => return Ok(()),
                r = tokio::time::timeout(IDLE, binlog::next_event(&mut stream)) => r,
            };
            let ev = match next {
                Err(_) => {
                    // Quiet: catch up the checkpoint.
                    if self.dirty && !in_txn {
                        self.flush().await?;
                    }
                    continue;
                }
                Ok(None) => {
                    return Err(UnitError::new(
                        code::BINLOG_READ,
                        "upstream",
                        "the upstream closed the binlog stream",
                    )
                    .retryable(true));
                }
                Ok(Some(Err(e))) => return Err(up_err("read the upstream binlog", &e)),
                Ok(Some(Ok(ev))) => ev,
            };
            let ev: Event = binlog::compress::uncompress(ev).map_err(|e| {
                UnitError::new(code::BINLOG_READ, "upstream", "decompress a binlog event").cause(e)
            })?;
            let log_pos = u64::from(ev.header().log_pos());
            let ts = ev.header().timestamp();
            let decoded = binlog::decode(&ev, &cur_file).map_err(|e| {
                UnitError::new(code::BINLOG_READ, "upstream", "decode a binlog event").cause(e)
            })?;
            if gtid_start_pending {
                match &decoded {
                    Decoded::Rotate(p) => cur_file = p.file.clone(),
                    Decoded::Gtid(_) if log_pos > 0 && !cur_file.is_empty() => {
                        gtid_start_pending = false;
                        let size = u64::from(ev.header().event_size());
                        self.committed = Position {
                            file: cur_file.clone(),
                            pos: log_pos.saturating_sub(size),
                        };
                        tracing::info!(position = %self.committed, "GTID start resolved to a position");
                    }
                    _ => continue,
                }
                if gtid_start_pending {
                    continue;
                }
            }
            match decoded {
                Decoded::Rotate(p) => {
                    cur_file = p.file.clone();
                    if !in_txn {
                        self.committed = p;
                        self.dirty = true;
                    }
                }
                Decoded::Gtid(g) => {
                    self.cur_gtid = Some(g.gtid);
                    in_txn = !g.is_standalone();
                }
                Decoded::GtidList(_) | Decoded::Checkpoint(_) | Decoded::Skip(_) => {
                    if !in_txn && log_pos > 0 {
                        self.committed = Position {
                            file: cur_file.clone(),
                            pos: log_pos,
                        };
                        self.dirty = true;
                    }
                }
                Decoded::Event(data) => match data {
                    EventData::RowsEvent(rows_ev) => {
                        let pos = Position {
                            file: cur_file.clone(),
                            pos: log_pos,
                        };
                        self.rows(&stream, &rows_ev, pos).await?;
                        self.last_ts = ts;
                    }
                    EventData::XidEvent(_) => {
                        in_txn = false;
                        self.end_txn(&cur_file, log_pos, ts).await?;
                    }
                    EventData::QueryEvent(q) => {
                        let sql = q.query();
                        let trimmed = sql.trim();
                        if trimmed.eq_ignore_ascii_case("BEGIN") {
                            in_txn = true;
                        } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                            in_txn = false;
                            self.end_txn(&cur_file, log_pos, ts).await?;
                        } else {
                            let schema = q.schema().to_string();
                            let sql = sql.to_string();
                            self.ddl(&schema, &sql).await?;
                            in_txn = false;
                            self.end_txn(&cur_file, log_pos, ts).await?;
                            // DM flushes the checkpoint right after a DDL.
                            self.flush().await?;
                        }
                    }
                    _ => {
                        if !in_txn && log_pos > 0 {
                            self.committed = Position {
                                file: cur_file.clone(),
                                pos: log_pos,
                            };
                            self.dirty = true;
                        }
                    }
                },
            }
        }
    }

    async fn end_txn(&mut self, file: &str, log_pos: u64, ts: u32) -> Result<(), UnitError> {
        self.committed = Position {
            file: file.to_string(),
            pos: log_pos,
        };
        if let Some(g) = self.cur_gtid.take() {
            self.gtids.insert(g.domain, g);
        }
        if ts != 0 {
            self.last_ts = ts;
        }
        self.dirty = true;
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    /// Drains every queue and saves the global checkpoint at `committed`.
    async fn flush(&mut self) -> Result<(), UnitError> {
        self.applier.flush().await?;
        let gtid = gtid_string(&self.gtids);
        self.ckpt
            .save_global(
                &mut self.ddl_conn,
                &self.committed,
                &gtid,
                self.safe_until_pos.as_ref(),
            )
            .await?;
        self.ctx
            .stats
            .set_syncer(self.committed.clone(), gtid, self.last_ts);
        self.ctx
            .stats
            .add_events(std::mem::take(&mut self.events_since_flush));
        self.last_flush = Instant::now();
        self.dirty = false;
        Ok(())
    }

    async fn rows(
        &mut self,
        stream: &mysql_async::BinlogStream,
        ev: &RowsEventData<'_>,
        pos: Position,
    ) -> Result<(), UnitError> {
        let Some(tme) = stream.get_tme(ev.table_id()) else {
            return Err(UnitError::new(
                code::BINLOG_READ,
                "upstream",
                format!("rows event for unknown table id {}", ev.table_id()),
            ));
        };
        let schema = tme.database_name().to_string();
        let table = tme.table_name().to_string();
        if !self.rules.allow_table(&schema, &table) {
            return Ok(());
        }
        let ev_type = match ev {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                EventType::Insert
            }
            RowsEventData::UpdateRowsEventV1(_)
            | RowsEventData::UpdateRowsEvent(_)
            | RowsEventData::PartialUpdateRowsEvent(_) => EventType::Update,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                EventType::Delete
            }
        };
        if self.rules.skip_event(&schema, &table, ev_type, None) {
            return Ok(());
        }
        // Table maps keep their id until the table changes (a DDL clears the cache).
        let tid = ev.table_id();
        let cached = self
            .by_table_id
            .get(&tid)
            .filter(|(m, _)| {
                m.schema == schema
                    && m.table == table
                    && m.columns.len() as u64 == tme.columns_count()
            })
            .cloned();
        let (meta, target) = match cached {
            Some(x) => x,
            None => {
                let meta = Arc::new(TableMeta::from_tme(tme));
                let target = self.target_table(&schema, &table, &meta).await?;
                self.by_table_id.insert(tid, (meta.clone(), target.clone()));
                (meta, target)
            }
        };
        let changes = rows::decode_rows(ev, tme, &meta).map_err(|e| {
            UnitError::new(
                code::BINLOG_READ,
                "upstream",
                format!("decode rows of `{schema}`.`{table}`"),
            )
            .cause(e)
        })?;
        let safe = self.safe_mode();
        let n = changes.len() as i64;
        if target.pk.is_empty() && target.unique_keys.is_empty() {
            let group = changes
                .into_iter()
                .map(|change| Change {
                    table: target.clone(),
                    change,
                    safe_mode: safe,
                    pos: pos.clone(),
                })
                .collect();
            self.applier.push_keyless(group).await?;
            self.events_since_flush += n;
            self.dirty = true;
            return Ok(());
        }
        for change in changes {
            self.applier
                .push(Change {
                    table: target.clone(),
                    change,
                    safe_mode: safe,
                    pos: pos.clone(),
                })
                .await?;
        }
        self.events_since_flush += n;
        self.dirty = true;
        Ok(())
    }

    async fn upstream(&mut self) -> Result<&mut Conn, UnitError> {
        if self.up_conn.is_none() {
            let c = Conn::new(self.up_opts.clone())
                .await
                .map_err(|e| UnitError::from_mysql("upstream", "connect to the upstream", &e))?;
            self.up_conn = Some(c);
        }
        match self.up_conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(UnitError::new(
                code::DB_DRIVER,
                "upstream",
                "no upstream connection",
            )),
        }
    }

    /// The downstream table for an upstream table and row shape (cached until the next DDL).
    async fn target_table(
        &mut self,
        schema: &str,
        table: &str,
        meta: &TableMeta,
    ) -> Result<Arc<TargetTable>, UnitError> {
        let (ts, tt) = self.rules.route(schema, table);
        let mut columns: Vec<String> = meta
            .columns
            .iter()
            .map(|c| c.name.clone().unwrap_or_default())
            .collect();
        if columns.iter().any(|c| c.is_empty()) {
            // No binlog_row_metadata=FULL: column names from the upstream's current schema.
            let key = (schema.to_string(), table.to_string());
            if !self.upstream_columns.contains_key(&key) {
                let q = format!(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
                    checkpoint::lit(schema),
                    checkpoint::lit(table)
                );
                let conn = self.upstream().await?;
                let names: Vec<String> = conn.query(q).await.map_err(|e| {
                    UnitError::from_mysql("upstream", "read the upstream table's columns", &e)
                })?;
                self.upstream_columns.insert(key.clone(), names);
            }
            let names = self.upstream_columns.get(&key).cloned().unwrap_or_default();
            if names.len() != columns.len() {
                return Err(UnitError::new(
                    code::BINLOG_READ,
                    "upstream",
                    format!(
                        "`{schema}`.`{table}`: the binlog row has {} columns but the table has {} now, and the binlog carries no column names",
                        columns.len(),
                        names.len()
                    ),
                )
                .workaround("Set binlog_row_metadata=FULL on the upstream (SET GLOBAL binlog_row_metadata='FULL'), then resume-task."));
            }
            columns = names;
        }
        let key = (ts.clone(), tt.clone(), columns.clone());
        if let Some(t) = self.schemas.get(&key) {
            return Ok(t.clone());
        }
        let q = format!(
            "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            checkpoint::lit(&ts),
            checkpoint::lit(&tt)
        );
        let rows: Vec<(String, String, i64)> = self.ddl_conn.query(q).await.map_err(|e| {
            UnitError::from_mysql("downstream", "read the downstream table's keys", &e)
        })?;
        let mut indexes: BTreeMap<String, (bool, Vec<Option<usize>>)> = BTreeMap::new();
        for (idx, col, non_unique) in rows {
            if non_unique != 0 {
                continue;
            }
            let pos = columns.iter().position(|c| c.eq_ignore_ascii_case(&col));
            indexes
                .entry(idx.clone())
                .or_insert((idx == "PRIMARY", Vec::new()))
                .1
                .push(pos);
        }
        let mut pk = Vec::new();
        let mut uks = Vec::new();
        for (_, (primary, cols)) in indexes {
            if cols.iter().any(|c| c.is_none()) {
                continue;
            }
            let cols: Vec<usize> = cols.into_iter().flatten().collect();
            if primary {
                pk = cols;
            } else {
                uks.push(cols);
            }
        }
        // Never borrow the upstream's key: the SQL shape and causality follow the downstream
        // table (a downstream table without a key is written as keyless).
        let t = Arc::new(TargetTable {
            schema: ts,
            table: tt,
            columns,
            pk,
            unique_keys: uks,
        });
        self.schemas.insert(key, t.clone());
        Ok(t)
    }

    async fn ddl(&mut self, schema: &str, sql: &str) -> Result<(), UnitError> {
        let ddls = crate::rules::split_ddl(sql, schema).map_err(|e| {
            UnitError::new(code::DDL, "internal", format!("parse DDL: {sql}")).cause(e)
        })?;
        for d in ddls {
            if d.kind == DdlKind::Other || d.tables.is_empty() {
                tracing::debug!(sql, "statement ignored (not a replicated DDL)");
                continue;
            }
            let first = &d.tables[0];
            let allowed = if first.table.is_empty() {
                self.rules.allow_schema(&first.schema)
            } else {
                self.rules.allow_table(&first.schema, &first.table)
            };
            if !allowed
                || self
                    .rules
                    .skip_event(&first.schema, &first.table, d.event_type(), Some(sql))
            {
                tracing::debug!(sql, "DDL filtered out");
                continue;
            }
            let rules = &self.rules;
            let stmt = d.render(&|n: &TableName| {
                let (s, t) = rules.route(&n.schema, &n.table);
                TableName {
                    schema: s,
                    table: t,
                }
            });
            self.applier.flush().await?;
            if matches!(d.kind, DdlKind::CreateTable | DdlKind::RenameTable) {
                // A routed table may land in a schema that does not exist downstream yet.
                let (s, _) = self.rules.route(&first.schema, &first.table);
                let _ = self
                    .ddl_conn
                    .query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(&s)))
                    .await;
            }
            tracing::info!(ddl = %stmt, "executing DDL downstream");
            if let Err(e) = self.ddl_conn.query_drop(&stmt).await {
                let replay = self.safe_mode();
                let idempotent = matches!(&e, mysql_async::Error::Server(s)
                    if matches!(s.code, 1007 | 1008 | 1050 | 1051 | 1054 | 1060 | 1061 | 1068 | 1091 | 1146));
                if replay && idempotent {
                    tracing::info!(ddl = %stmt, error = %e, "DDL already applied (replay in safe mode); skipped");
                } else {
                    let mut err = UnitError::from_mysql(
                        "downstream",
                        format!("execute DDL failed: {stmt}"),
                        &e,
                    );
                    if !err.retryable {
                        err.workaround =
                            "Fix the downstream so the DDL can run, then `resume-task`.".into();
                    }
                    return Err(err);
                }
            }
            self.events_since_flush += 1;
            self.schemas.clear();
            self.upstream_columns.clear();
            self.by_table_id.clear();
        }
        Ok(())
    }
}
