//! The Sync unit: streams the upstream binlog and applies it downstream.
//!
//! One run ([`SyncUnit`], a [`crate::worker::units::Unit`]): `init` connects to the
//! downstream, claims the source in the checkpoint (the owner epoch; a `--remove-meta` start
//! clears the checkpoint here, once per start), loads the checkpoint (or the task's `meta` on a
//! first run, saved at once so a crash before the first flush still leaves an exact exit
//! point) and the tracked table structures. `process` reads events from a [`source`]
//! ([`source::RemoteSource`] today), finds transaction boundaries with [`txn::TxnTracker`],
//! applies the instance's block-allow-list, binlog filters (a MODIFY / CHANGE COLUMN's event
//! from the tracked column, [`schemacmp::modify_event`]) and routes ([`crate::rules`]) and, to
//! each row of the tables they name, its column mappings and expression filters
//! ([`crate::rules::row::RowRules`]: a mapped value is what is written, a filtered row is not),
//! decodes rows with the [`schema`] tracker's columns when the binlog carries no names
//! (MariaDB's default `binlog_row_metadata=MINIMAL`), and hands them to
//! [`apply::Applier`] (parallel queues, causality by the downstream table's keys). DDL runs
//! serially after draining every queue, marked in the checkpoint while it runs.
//! The checkpoint ([`checkpoint`]) is saved at transaction boundaries, at least every second
//! under load and whenever the stream is quiet.
//!
//! An `all` task's first run starts from its dump instead of `meta` (`dump_start`): the
//! `metadata` file's position and GTID, the structures of the dump's `-schema.sql` files in
//! the schema tracker, safe mode until the after-connection position (the dump's latest
//! snapshot), and, for tables dumped from a later snapshot than the first, their own points:
//! their events up to there are skipped (they are in the dumped rows), which keeps even
//! tables without a key exact. All of it is saved at once; then, with `clean-dump-file`, the
//! dump directory is removed.
//!
//! Safe mode (idempotent upserts and deletes) runs while re-reading events a previous run may
//! have applied: up to the exact exit point left by a crashed run, or, on a start without one,
//! for the syncer's `safe-mode-duration` (DM's default 2 × checkpoint-flush-interval; a meta
//! position may be behind data already downstream), or always with `safe-mode: true`. With
//! `safe-mode-duration: 0s` a run that must re-apply up to an exit point stops with DM's 36071.
//!
//! With `enable-gtid` the upstream is read after the checkpoint's GTID set (a first run whose
//! meta names only a file and offset asks the upstream for the set there, `BINLOG_GTID_POS`).
//! When that start lands elsewhere than the checkpoint's position (a failover to another
//! server) the checkpoint is rebased there (`Run::rebase`): positions past the global point
//! name the old server, so the queues' and the DDL marker's GTID marks ([`marks`]) decide what
//! is applied, and safe mode lasts until the new server's current end.
//!
//! It never retries by itself: an error ends the run (the subtask's auto-resume retries the
//! retryable ones).

pub mod apply;
pub mod checkpoint;
pub mod marks;
pub mod ops;
pub mod schema;
pub mod schema_ops;
pub mod schemacmp;
pub mod shard;
pub mod source;
pub mod stats;
pub mod txn;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio_util::sync::CancellationToken;

use crate::binlog::rows::{self, TableMeta};
use crate::binlog::{self, Decoded, Position};
use crate::config::db::connect_opts;
use crate::config::task::{DbConfig, SyncerConfig, TaskConfig};
use crate::config::{CONNECT_TIMEOUT, ConnectError};
use crate::dml::TargetTable;
use crate::rules::row::RowRules;
use crate::rules::{DdlKind, EventType, RulesError, TableName, TableRules};
use crate::worker::error::{UnitError, code};
use crate::worker::units::{BoxFuture, Unit, UnitCtx, UnitExit, UnitKind, UnitStatus, full};
use apply::{Applier, ApplyOpts, Change};
use checkpoint::{CheckpointTable, SavePoint, quote};
use ops::{Action, ErrorAt, ErrorOps};
use shard::{ShardGroups, ShardSync};

/// What pessimistic shard DDL made of a DDL event.
enum ShardOutcome {
    /// Not coordinated: run it as usual.
    Execute,
    /// Coordinated, blocked, or not to run downstream: only the schema tracker follows it.
    Handled,
    /// Met again by a replay: it ran (or was coordinated) and was tracked the first time.
    Replayed,
}

/// The replay after a resolved shard round: from the round's first DDL to its last, only the
/// blocked tables' events run (the others ran the first time), without the round's DDLs.
#[derive(Debug, Clone)]
struct Replay {
    to: Position,
    /// The held-back tables, each replayed from the end of its own DDL of the round.
    tables: BTreeMap<TableName, Position>,
    ddl_ends: BTreeSet<Position>,
}
use marks::Mark;
use schema::{SchemaTracker, TrackedTable};
use source::{BinlogSource, Next, RemoteSource, StartAt};
pub use stats::SyncStats;
use txn::{Boundary, Ev, QueryKind, TxnTracker};

/// A DDL a previous run recorded as in flight: its event's end position (None once the
/// stream moved to another server) and its GTID mark.
#[derive(Debug, Clone)]
struct DdlReplay {
    pos: Option<Position>,
    mark: Option<Mark>,
}

/// How long the stream may be quiet before the unit drains its queues and saves the
/// checkpoint (so an idle task is caught up and checkpointed).
const IDLE: Duration = Duration::from_millis(100);
/// Drain and checkpoint at least this often under load (keeps syncerBinlog fresh).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the last flush of a cancelled run may take (a hung downstream must not keep a
/// pause or a fence waiting; the checkpoint stays exact without it).
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound for the unit's small downstream and upstream queries (not for DDL or apply).
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A downstream table, as the apply code needs it, for one shape of binlog row.
type SchemaCache = HashMap<(String, String, Vec<String>), Arc<TargetTable>>;

/// The Sync unit of one subtask run.
pub struct SyncUnit {
    ctx: UnitCtx,
    stats: Arc<SyncStats>,
    ops: Arc<ErrorOps>,
    shard_sync: Arc<ShardSync>,
    run: Option<Run>,
}

impl SyncUnit {
    /// `stats`, `ops` and `shard_sync` belong to the subtask (they outlive each run).
    pub fn new(
        ctx: UnitCtx,
        stats: Arc<SyncStats>,
        ops: Arc<ErrorOps>,
        shard_sync: Arc<ShardSync>,
    ) -> SyncUnit {
        SyncUnit {
            ctx,
            stats,
            ops,
            shard_sync,
            run: None,
        }
    }
}

impl Unit for SyncUnit {
    fn kind(&self) -> UnitKind {
        UnitKind::Sync
    }

    fn init(&mut self) -> BoxFuture<'_, Result<(), UnitError>> {
        Box::pin(async move {
            let run = Run::init(
                &self.ctx,
                self.stats.clone(),
                self.ops.clone(),
                self.shard_sync.clone(),
            )
            .await?;
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
                    "the sync unit was not initialised",
                ));
            };
            run.process(&cancel).await?;
            Ok(UnitExit::Cancelled)
        })
    }

    fn status(&self) -> Arc<dyn UnitStatus> {
        self.stats.clone()
    }

    fn update(&mut self, task: Arc<TaskConfig>) -> Result<(), UnitError> {
        let source_id = self.ctx.source.source_id.clone();
        if let Some(run) = self.run.as_mut() {
            run.rules =
                TableRules::with_source_filters(&task, &source_id, &self.ctx.source.filters)
                    .map_err(|e| {
                        UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules")
                            .cause(e)
                    })?;
            run.row_rules = row_rules(&task, &source_id)?;
            run.invalidate_tables();
        }
        self.ctx.task = task;
        Ok(())
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(run) = self.run.take() {
                run.close().await;
            }
        })
    }

    fn is_fresh(&mut self) -> BoxFuture<'_, Result<bool, UnitError>> {
        Box::pin(async move {
            let task = &self.ctx.task;
            let Some(target) = task.target_database.as_ref() else {
                return Ok(true);
            };
            let mut conn = connect_opts(target.mysql_opts(Vec::new()))
                .await
                .map_err(|e| connect_error("downstream", "connect to the downstream", e))?;
            let ckpt =
                CheckpointTable::new(&task.meta_schema, &task.name, &self.ctx.source.source_id);
            let fresh = timed("downstream", "read the checkpoint", async {
                Ok::<_, mysql_async::Error>(
                    ckpt.is_fresh(&mut conn, self.ctx.reset_token.as_deref())
                        .await,
                )
            })
            .await??;
            let _ = tokio::time::timeout(QUERY_TIMEOUT, conn.disconnect()).await;
            Ok(fresh)
        })
    }
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

/// The column mapping and expression filters of the instance (DM: 36032 when they cannot be
/// built).
fn row_rules(task: &TaskConfig, source_id: &str) -> Result<RowRules, UnitError> {
    RowRules::new(task, source_id).map_err(|e| {
        UnitError::new(
            code::SYNC_GEN_COLUMN_MAPPING,
            "internal",
            "generate column mapping / expression filters",
        )
        .cause(e)
        .workaround("Please check the `column-mappings` and `expression-filter` config in task configuration file.")
    })
}

/// A row rule that failed on a row: DM's 36033 for a column mapping.
fn row_rule_error(e: RulesError) -> UnitError {
    match e {
        RulesError::Filter { .. } => UnitError::new(
            code::SYNC_EXPR_FILTER,
            "internal",
            "evaluate an expression filter on a row",
        )
        .cause(e)
        .workaround("Change the `expression-filter` rule (update-task while paused), then resume-task."),
        e => UnitError::new(code::SYNC_DO_COLUMN_MAPPING, "internal", "mapping row data")
            .cause(e)
            .workaround("Please check the `column-mappings` config in task configuration file; update-task while paused, then resume-task."),
    }
}

/// Applies the row rules to one decoded change: `None` when a filter skips it.
fn apply_row_rules(
    rules: &RowRules,
    schema: &str,
    table: &str,
    columns: &[String],
    change: rows::RowChange,
) -> Result<Option<rows::RowChange>, UnitError> {
    use rows::RowChange as R;
    let out = match change {
        R::Insert(row) => rules
            .on_insert(schema, table, columns, row)
            .map(|r| r.map(R::Insert)),
        R::Update { before, after } => rules
            .on_update(schema, table, columns, before, after)
            .map(|r| r.map(|(before, after)| R::Update { before, after })),
        R::Delete(row) => rules
            .on_delete(schema, table, columns, row)
            .map(|r| r.map(R::Delete)),
    };
    out.map_err(row_rule_error)
}

fn syncer_of(task: &TaskConfig, source_id: &str) -> SyncerConfig {
    task.instances()
        .find(|i| i.source_id == source_id)
        .and_then(|i| i.syncer.clone())
        .unwrap_or_default()
}

/// One run's state, from `init` to `close`.
struct Run {
    stats: Arc<SyncStats>,
    /// handle-error / binlog / sql-* operators, and where the last DDL failed.
    ops: Arc<ErrorOps>,
    task_name: String,
    /// Pessimistic shard DDL (`shard-mode: pessimistic`): this source's groups, the channel to
    /// the master (through the worker), a replay after a resolved round, and a pending
    /// redirect of the stream to the replay's start.
    shard: Option<ShardGroups>,
    /// `shard-mode: optimistic`: `shard` holds the groups (no rounds); each shard table's DDL
    /// is sent to the master and its answer carried out (`opt_ddl`).
    optimistic: bool,
    shard_sync: Arc<ShardSync>,
    replay: Option<Replay>,
    redirect: Option<Position>,
    /// The source's relay log, when it is on (read instead of the upstream when it holds the
    /// position).
    relay: Option<Arc<crate::relay::Relay>>,
    /// The source's `enable-gtid`: the upstream is read after the checkpoint's GTID set.
    enable_gtid: bool,
    rules: TableRules,
    /// Column mapping and expression filters (applied to each row of the tables they name).
    row_rules: RowRules,
    pool: Pool,
    ddl_conn: Conn,
    up_opts: Opts,
    up_conn: Option<Conn>,
    server_id: u32,
    start: Position,
    ckpt: CheckpointTable,
    applier: Applier,
    schemas: SchemaCache,
    tracker: SchemaTracker,
    /// Tracked tables whose structure the next checkpoint save must write (or delete).
    tracker_dirty: BTreeSet<TableName>,
    /// The unit's own table-map cache: table id → TABLE_MAP (until the next one for the id).
    table_maps: HashMap<u64, TableMapEvent<'static>>,
    /// table id → (decoded table meta, downstream table), until the next DDL.
    by_table_id: HashMap<u64, (Arc<TableMeta>, Arc<TargetTable>)>,
    permanent_safe: bool,
    /// Tables whose events up to their own point are in the dumped data already.
    table_points: BTreeMap<TableName, Position>,
    safe_until_pos: Option<Position>,
    safe_until_time: Option<Instant>,
    txn: TxnTracker,
    /// A DDL a previous run started and may have finished.
    ddl_replay: Option<DdlReplay>,
    /// A DDL ran since the last save: the save clears its marker.
    ddl_done: bool,
    /// GTID state (per domain) at `txn.committed()`.
    gtids: BTreeMap<u32, binlog::MariaGtid>,
    cur_gtid: Option<binlog::MariaGtid>,
    /// The ordinal of the last rows event in the current event group (for its mark).
    group_ord: u32,
    last_ts: u32,
    last_flush: Instant,
    dirty: bool,
    events_since_flush: i64,
}

impl Run {
    async fn init(
        ctx: &UnitCtx,
        stats: Arc<SyncStats>,
        ops: Arc<ErrorOps>,
        shard_sync: Arc<ShardSync>,
    ) -> Result<Run, UnitError> {
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
        // The source file's `filters` join the task's, as DM does (binlog events only).
        let rules = TableRules::with_source_filters(&task, &source_id, &ctx.source.filters)
            .map_err(|e| {
                UnitError::new(code::UNIT_CONFIG, "internal", "invalid table rules").cause(e)
            })?;
        let row_rules = row_rules(&task, &source_id)?;
        let workers = syncer.worker_count.clamp(1, 256) as usize;
        let pool = Pool::new(
            OptsBuilder::from_opts(target.mysql_opts(downstream_init(&target))).pool_opts(
                PoolOpts::default()
                    .with_constraints(PoolConstraints::new(0, workers + 4).unwrap_or_default()),
            ),
        );
        let mut ddl_conn =
            timed("downstream", "connect to the downstream", pool.get_conn()).await?;
        let mut ckpt = CheckpointTable::new(&task.meta_schema, &task.name, &source_id);
        ckpt.create(&mut ddl_conn).await?;
        let claim = ckpt
            .claim(
                &mut ddl_conn,
                &ctx.worker,
                ctx.reset_token.as_deref(),
                workers,
            )
            .await?;
        if claim.cleared {
            tracing::info!(token = ?ctx.reset_token, "checkpoint removed (--remove-meta, once for this start)");
        }
        if task.shard_mode == "pessimistic" {
            ckpt.create_sharding_meta(&mut ddl_conn).await?;
            if claim.cleared {
                timed(
                    "downstream",
                    "remove the sharding meta",
                    ddl_conn.query_drop(format!(
                        "DELETE FROM {} WHERE source_id = {}",
                        ckpt.sharding_meta_table(),
                        checkpoint::lit(&source_id)
                    )),
                )
                .await?;
            }
        }
        tracing::info!(epoch = claim.epoch, "claimed the source in the checkpoint");
        let saved = ckpt.load(&mut ddl_conn).await?;
        // DM's safe-mode-duration (default 2 × checkpoint-flush-interval): safe mode for that
        // long after every start that has no exit point to reach.
        let window = syncer.safe_mode_window();
        let start_window = (!window.is_zero()).then(|| Instant::now() + window);
        let applied_queues = saved
            .as_ref()
            .and_then(|s| s.queues.get(&workers).cloned())
            .unwrap_or_default();
        let mut tracker = SchemaTracker::default();
        let mut ddl_replay = None;
        let fresh = saved.is_none();
        // An `all` task's first sync run starts where its dump's snapshot was.
        let from_dump = task.task_mode == "all";
        let mut table_points = saved
            .as_ref()
            .map(|s| s.table_points.clone())
            .unwrap_or_default();
        let mut seeded_from_dump = false;
        let (start, gtid, safe_until_pos, safe_until_time) = match saved {
            Some(s) => {
                tracing::info!(checkpoint = %s.global, exit_safe = ?s.exit_safe.as_ref().map(|p| p.to_string()), ddl_in_flight = ?s.ddl_in_flight.as_ref().map(|p| p.to_string()), "resuming from the checkpoint");
                for (t, json) in &s.tables {
                    match TrackedTable::from_json(json) {
                        Ok(tt) => tracker.set(t.clone(), tt),
                        Err(e) => {
                            tracing::warn!(table = %t.quoted(), error = %e, "ignoring an unreadable tracked table structure")
                        }
                    }
                }
                ddl_replay = s.ddl_in_flight.clone().map(|p| DdlReplay {
                    pos: Some(p),
                    mark: s.ddl_mark,
                });
                // Safe mode up to the furthest point a previous run may have reached: its
                // queues' positions, or the DDL it was running.
                let ddl_past = s.ddl_in_flight.clone().filter(|d| *d > s.global);
                let exit = match (s.exit_safe, ddl_past) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let time = if exit.is_some() { None } else { start_window };
                (s.global, s.gtid, exit, time)
            }
            None if from_dump => {
                let d = dump_start(&task, &source_id, &rules, &mut tracker)?;
                table_points = d.points;
                seeded_from_dump = true;
                let time = if d.exit_safe.is_some() {
                    None
                } else {
                    start_window
                };
                (d.start, d.gtid, d.exit_safe, time)
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
                (pos, meta.binlog_gtid.clone(), None, start_window)
            }
        };
        if window.is_zero()
            && !syncer.safe_mode
            && let Some(exit) = &safe_until_pos
        {
            // DM's ErrSyncerReprocessWithSafeModeFail: events up to `exit` may be downstream
            // already and only safe mode applies them again without a duplicate-key error.
            return Err(UnitError::new(
                code::REPROCESS_WITHOUT_SAFE_MODE,
                "internal",
                format!(
                    "your `safe-mode-duration` in task.yaml is set to 0s, the task can't be re-processed without safe mode currently (events up to {exit} may be applied already)"
                ),
            )
            .workaround("Please stop and re-start this task. If you want to start task successfully, you need set `safe-mode-duration` greater than `0s`."));
        }
        // The config check refuses a malformed meta.binlog-gtid; a checkpoint's own GTID text
        // was written by this unit.
        let mut gtids: BTreeMap<u32, binlog::MariaGtid> = gtid
            .parse::<binlog::GtidSet>()
            .map_err(|e| {
                UnitError::new(code::UNIT_CONFIG, "internal", format!("GTID set {gtid:?}")).cause(e)
            })?
            .into();
        // The DDL marker still counts when its DDL lies past the global point, by position
        // or (after a failover rebased the positions) by its mark.
        let ddl_replay = ddl_replay.filter(|d| {
            d.pos.as_ref().is_some_and(|p| *p > start)
                || d.mark.is_some_and(|m| !marks::gtid_set_holds(&gtids, &m))
        });
        let up_opts = ctx.source.from.mysql_opts(Vec::new());
        let mut up_conn = connect_opts(up_opts.clone()).await.ok();
        if fresh
            && !seeded_from_dump
            && ctx.source.enable_gtid
            && gtids.is_empty()
            && !start.file.is_empty()
        {
            // `enable-gtid` with a meta that names only a file and offset: the GTID set at
            // that point goes into the first checkpoint, so a restart after a failover to
            // another server (other file names and offsets) still finds its place.
            let Some(c) = up_conn.as_mut() else {
                return Err(UnitError::new(
                    code::DB_DRIVER,
                    "upstream",
                    format!("enable-gtid: connect to the upstream to find the GTID set at {start}"),
                )
                .retryable(true));
            };
            let at: Option<Option<String>> = timed(
                "upstream",
                "find the GTID set at the meta position (BINLOG_GTID_POS)",
                c.exec_first(
                    "SELECT BINLOG_GTID_POS(?, ?)",
                    (start.file.as_str(), start.pos),
                ),
            )
            .await
            .or_else(|e| {
                if e.retryable {
                    Err(e)
                } else {
                    // A server without BINLOG_GTID_POS (not MariaDB) answers "no such function".
                    tracing::warn!(error = %e, "enable-gtid: could not ask the upstream for the GTID set at the meta position");
                    Ok(None)
                }
            })?;
            match at.flatten() {
                Some(g) => {
                    gtids = g
                        .parse::<binlog::GtidSet>()
                        .map_err(|e| {
                            UnitError::new(
                                code::UNIT_CONFIG,
                                "upstream",
                                format!("BINLOG_GTID_POS({start}) returned {g:?}"),
                            )
                            .cause(e)
                        })?
                        .into();
                    tracing::info!(start = %start, gtid = %g, "enable-gtid: the meta position's GTID set");
                }
                None => {
                    tracing::warn!(start = %start, "enable-gtid: the upstream knows no GTID set at the meta position; reading by file and offset until the first transaction")
                }
            }
        }
        if seeded_from_dump {
            // The dump's position, its safe-mode exit, each table's structure and own point,
            // in one save: from here on a restart continues at Sync, never at the dump.
            let all: Vec<TableName> = tracker.tables().map(|(t, _)| t.clone()).collect();
            save_start(
                &mut ckpt,
                &mut ddl_conn,
                &tracker,
                all,
                (&start, &gtid_string(&gtids), safe_until_pos.as_ref()),
                &table_points,
            )
            .await?;
            tracing::info!(start = %start, exit_safe = ?safe_until_pos.as_ref().map(|p| p.to_string()), tables = tracker.tables().count(), own_points = table_points.len(), "first run after the dump: checkpoint saved at the dump's position");
            if task.clean_dump_file {
                let dir = full::dump_dir(&task, &source_id);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {
                        tracing::info!(dir = %dir.display(), "dump directory removed (clean-dump-file)")
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the dump directory")
                    }
                }
            }
        } else if fresh && !start.file.is_empty() {
            // Saved before anything is applied: a crash before the first flush still finds
            // the queues' exit points relative to a global point.
            ckpt.save_global(&mut ddl_conn, &start, &gtid_string(&gtids), None)
                .await?;
        }
        let applier = Applier::open(
            &pool,
            &ckpt,
            ApplyOpts {
                worker_count: workers,
                batch: syncer.batch.max(1) as usize,
                queue_size: syncer.queue_size.max(1) as usize,
                max_batch_bytes: 0,
                compact: syncer.compact,
                multiple_rows: syncer.multiple_rows,
            },
            &applied_queues,
        )
        .await?;
        // The positions query-status shows from now on: where this run starts, and the
        // upstream's (read once here, then polled).
        stats.set_syncer(start.clone(), gtid_string(&gtids), 0);
        if let Some(c) = up_conn.as_mut()
            && let Ok(Ok(Some((p, g)))) =
                tokio::time::timeout(CONNECT_TIMEOUT, master_status(c)).await
        {
            stats.set_master(p, g);
        }
        let mut tracker_dirty = BTreeSet::new();
        if fresh
            && !seeded_from_dump
            && let Some(c) = up_conn.as_mut()
        {
            // A first start: the tracked structures are the upstream's as of now (the nearest
            // to the meta position there is), persisted with the first checkpoint.
            type Row = (
                String,
                String,
                String,
                String,
                String,
                Option<String>,
                String,
            );
            let rows: Vec<Row> = timed(
                "upstream",
                "read the upstream tables' columns",
                c.query(format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, {} FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
                     ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
                    schema::COLUMN_ROW_SELECT
                )),
            )
            .await?;
            let mut by_table: BTreeMap<TableName, Vec<schema::ColumnRow>> = BTreeMap::new();
            for (schema, table, name, column_type, is_nullable, column_default, extra) in rows {
                if rules.allow_table(&schema, &table) {
                    by_table
                        .entry(TableName::new(schema, table))
                        .or_default()
                        .push(schema::ColumnRow {
                            name,
                            column_type,
                            is_nullable,
                            column_default,
                            extra,
                        });
                }
            }
            for (t, cols) in by_table {
                tracker.set(t.clone(), TrackedTable::from_column_rows(&cols));
                tracker_dirty.insert(t);
            }
            tracing::info!(
                tables = tracker_dirty.len(),
                "schema tracker seeded from the upstream"
            );
            if !start.file.is_empty() && !tracker_dirty.is_empty() {
                // Saved at once with the start point: a restart before the first flush (or
                // while a shard round holds the checkpoint) finds every table's structure.
                save_start(
                    &mut ckpt,
                    &mut ddl_conn,
                    &tracker,
                    std::mem::take(&mut tracker_dirty).into_iter().collect(),
                    (&start, &gtid_string(&gtids), safe_until_pos.as_ref()),
                    &table_points,
                )
                .await?;
            }
        }
        if stats.master().is_none() {
            // Never an empty position: until the upstream answers, it is at least here.
            stats.set_master(start.clone(), gtid_string(&gtids));
        }
        stats.notify_ready();
        // A stable id per source and task, outside the usual small range.
        let own_id = 400_000_000
            + (crc32fast::hash(format!("{}/{}", task.name, source_id).as_bytes()) % 100_000_000);
        let configured = ctx.source.server_id;
        let taken = match up_conn.as_mut() {
            Some(c) if configured != 0 => replica_id_taken(c, configured).await,
            _ => false,
        };
        let server_id = if configured == 0 {
            own_id
        } else if taken {
            // Another reader (another task of the source) is already that replica: a second
            // stream under its id would end the first (DM then picks another id too).
            tracing::info!(
                server_id = configured,
                instead = own_id,
                "the source's server-id is in use by another replica connection: this task reads as its own id"
            );
            own_id
        } else {
            configured
        };
        let optimistic = task.shard_mode == "optimistic";
        let shard = (task.shard_mode == "pessimistic" || optimistic).then(|| {
            ShardGroups::new(tracker.tables().map(|(t, _)| {
                let (s, n) = rules.route(&t.schema, &t.table);
                (t.clone(), TableName::new(s, n))
            }))
        });
        shard_sync.set_unresolved(Vec::new());
        Ok(Run {
            stats,
            ops,
            task_name: task.name.clone(),
            shard,
            optimistic,
            shard_sync,
            replay: None,
            redirect: None,
            relay: ctx.relay.clone(),
            enable_gtid: ctx.source.enable_gtid,
            rules,
            row_rules,
            pool,
            ddl_conn,
            up_opts,
            up_conn,
            server_id,
            start: start.clone(),
            ckpt,
            applier,
            schemas: HashMap::new(),
            tracker,
            tracker_dirty,
            table_maps: HashMap::new(),
            by_table_id: HashMap::new(),
            permanent_safe: syncer.safe_mode,
            table_points,
            safe_until_pos,
            safe_until_time,
            txn: TxnTracker::new(start),
            ddl_replay,
            ddl_done: false,
            gtids,
            cur_gtid: None,
            group_ord: 0,
            last_ts: 0,
            last_flush: Instant::now(),
            dirty: false,
            events_since_flush: 0,
        })
    }

    async fn close(self) {
        self.applier.close().await;
        drop(self.ddl_conn);
        drop(self.up_conn);
        let _ = tokio::time::timeout(QUERY_TIMEOUT, self.pool.disconnect()).await;
    }

    fn invalidate_tables(&mut self) {
        self.schemas.clear();
        self.by_table_id.clear();
    }

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
            if self.txn.committed() < p {
                return true;
            }
            tracing::info!(exit = %p, "safe mode ends (exit point passed)");
            self.safe_until_pos = None;
        }
        false
    }

    /// Streams until cancelled (then saves the checkpoint) or an error.
    async fn process(&mut self, cancel: &CancellationToken) -> Result<(), UnitError> {
        let poller = tokio::spawn(tracing::Instrument::instrument(
            poll_master(self.up_opts.clone(), self.stats.clone()),
            tracing::Span::current(),
        ));
        let r = self.stream(cancel).await;
        poller.abort();
        match r {
            Ok(()) => match tokio::time::timeout(FINAL_FLUSH_TIMEOUT, self.flush()).await {
                Ok(r) => r,
                Err(_) => Err(UnitError::new(
                    code::DB_EXECUTE,
                    "downstream",
                    format!(
                        "the last checkpoint save did not finish within {FINAL_FLUSH_TIMEOUT:?}"
                    ),
                )
                .retryable(true)),
            },
            Err(e) => Err(e),
        }
    }

    async fn stream(&mut self, cancel: &CancellationToken) -> Result<(), UnitError> {
        self.publish_opt_tables();
        let at = if self.start.file.is_empty() {
            let state = gtid_string(&self.gtids);
            tracing::info!(gtid = %state, "starting after the meta's GTID");
            StartAt::Gtid(state)
        } else {
            StartAt::Position(self.start.clone())
        };
        // `enable-gtid`: an upstream read starts after the checkpoint's GTID set, so a task
        // follows its source to another server (a failover to a replica, whose binlog files
        // have other names and offsets); the relay log is read by position.
        let by_gtid = self.enable_gtid
            && !self.gtids.is_empty()
            && matches!(at, StartAt::Position(_))
            && !self.relay_holds(&self.start);
        let at = if by_gtid {
            let state = gtid_string(&self.gtids);
            tracing::info!(gtid = %state, position = %self.start, "enable-gtid: reading the upstream after the checkpoint's GTID set");
            StartAt::Gtid(state)
        } else {
            at
        };
        let mut source = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            s = self.open_source(&at) => s?,
        };
        // Started after a GTID: the position is unknown until the first event group begins.
        let mut gtid_start_pending = matches!(at, StartAt::Gtid(_));
        let mut file = if gtid_start_pending {
            String::new()
        } else {
            self.start.file.clone()
        };
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            // No select on the token per event (it registers a waiter each time): a quiet
            // stream returns within IDLE, and the loop checks the token before every read.
            let next = source.next(IDLE).await?;
            let ev = match next {
                Next::Quiet => {
                    // Quiet: catch up the checkpoint.
                    if self.dirty && !self.txn.in_txn() {
                        self.flush().await?;
                    }
                    continue;
                }
                Next::Event(ev) => ev,
            };
            let log_pos = u64::from(ev.header().log_pos());
            let ts = ev.header().timestamp();
            let decoded = binlog::decode(&ev, &file).map_err(|e| {
                UnitError::new(code::BINLOG_READ, "upstream", "decode a binlog event").cause(e)
            })?;
            if gtid_start_pending {
                match &decoded {
                    Decoded::Rotate(p) => file = p.file.clone(),
                    Decoded::Gtid(_) if log_pos > 0 && !file.is_empty() => {
                        gtid_start_pending = false;
                        let size = u64::from(ev.header().event_size());
                        let at = Position {
                            file: file.clone(),
                            pos: log_pos.saturating_sub(size),
                        };
                        tracing::info!(position = %at, "GTID start resolved to a position");
                        // (A start from the meta's GTID alone has no position to compare.)
                        if !self.start.file.is_empty() && at != self.start {
                            self.rebase(&at).await?;
                        }
                        self.txn.reset(at);
                        // The first real point: saved now, so a crash before the first flush
                        // resumes from a position, with the queues' exit points.
                        self.flush().await?;
                    }
                    _ => continue,
                }
                if gtid_start_pending {
                    continue;
                }
            }
            if log_pos > 0
                && self.replay.as_ref().is_some_and(|r| {
                    Position {
                        file: file.clone(),
                        pos: log_pos,
                    } > r.to
                })
            {
                tracing::info!("shard DDL: replay done");
                self.replay = None;
            }
            let step = match decoded {
                Decoded::Rotate(p) => {
                    file = p.file.clone();
                    Ev::Rotate(p)
                }
                Decoded::Gtid(g) => {
                    self.cur_gtid = Some(g.gtid);
                    self.group_ord = 0;
                    Ev::Gtid {
                        standalone: g.is_standalone(),
                    }
                }
                Decoded::GtidList(_) | Decoded::Checkpoint(_) | Decoded::Skip(_) => Ev::Other,
                Decoded::Event(data) => match data {
                    EventData::TableMapEvent(tme) => {
                        self.table_maps.insert(tme.table_id(), tme.into_owned());
                        Ev::TableMap
                    }
                    EventData::RowsEvent(rows_ev) => {
                        let pos = Position {
                            file: file.clone(),
                            pos: log_pos,
                        };
                        self.group_ord += 1;
                        let mark = self.cur_gtid.map(|g| Mark::new(g, self.group_ord));
                        self.rows(&rows_ev, pos, mark).await?;
                        self.last_ts = ts;
                        Ev::Rows
                    }
                    EventData::XidEvent(_) => Ev::Xid,
                    EventData::XaPrepareLogEvent(_) => Ev::XaPrepare,
                    EventData::HeartbeatEvent => Ev::Heartbeat,
                    EventData::QueryEvent(q) => {
                        let sql = q.query();
                        let kind = txn::classify_query(&sql);
                        let own_statement = kind == QueryKind::Statement
                            && (!self.txn.in_txn() || self.txn.standalone());
                        if own_statement {
                            let schema = q.schema().to_string();
                            let sql = sql.to_string();
                            let end = Position {
                                file: file.clone(),
                                pos: log_pos,
                            };
                            let start = Position {
                                file: file.clone(),
                                pos: log_pos.saturating_sub(u64::from(ev.header().event_size())),
                            };
                            self.statement(&schema, &sql, &start, &end, cancel).await?;
                        }
                        Ev::Query(kind)
                    }
                    _ => Ev::Other,
                },
            };
            let is_statement = matches!(step, Ev::Query(QueryKind::Statement));
            if self.txn.on(&step, log_pos) == Boundary::End {
                self.end_txn(ts).await?;
                if self.ops.has_next()
                    && let Some(sqls) = self.ops.take_next()
                {
                    // DM v1's sql-inject: right after the next transaction or DDL.
                    self.inject(&sqls, "sql-inject", cancel).await?;
                }
                if is_statement && self.ddl_done {
                    // DM saves the checkpoint right after a DDL.
                    self.flush().await?;
                }
            } else if !self.txn.in_txn() && !matches!(step, Ev::Heartbeat) {
                self.dirty = true;
            }
            if let Some(at) = self.redirect.take() {
                // A resolved shard round: read again from its first DDL (the replay).
                self.applier.flush().await?;
                let from = StartAt::Position(at.clone());
                source = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    s = self.open_source(&from) => s?,
                };
                file = at.file.clone();
                self.txn.reset(at);
            }
        }
    }

    /// The current statement's GTID mark (a DDL is its own event group: ordinal 0).
    fn ddl_mark(&self) -> Option<Mark> {
        self.cur_gtid.map(|g| Mark::new(g, 0))
    }

    /// Whether the DDL ending at `end` (in the current event group) is the one a previous run
    /// left in flight: the same position, or the same GTID after a failover.
    fn is_ddl_replay(&self, end: &Position) -> bool {
        self.ddl_replay.as_ref().is_some_and(|d| {
            d.pos.as_ref() == Some(end)
                || d.mark
                    .zip(self.cur_gtid)
                    .is_some_and(|(m, g)| m.gtid.domain == g.domain && m.gtid.seq == g.seq)
        })
    }

    /// Forgets the DDL in flight once the stream is at or past it.
    fn pass_ddl_replay(&mut self, end: &Position) {
        let passed = self.ddl_replay.as_ref().is_some_and(|d| {
            d.pos.as_ref().is_some_and(|p| p <= end)
                || d.mark
                    .zip(self.cur_gtid)
                    .is_some_and(|(m, g)| m.gtid.domain == g.domain && m.gtid.seq <= g.seq)
        });
        if passed {
            self.ddl_replay = None;
        }
    }

    /// The GTID start resolved to `at`, not to the checkpoint's position: the upstream is
    /// another server (a failover behind the source's address), or the checkpoint sat at the
    /// end of a file. The previous run's points past the global one are positions on the
    /// server it read, so they are re-expressed here:
    /// - the apply queues keep only their GTID marks (keyless events are skipped by mark),
    ///   and their checkpoint rows and the DDL marker move to `at`;
    /// - the DDL in flight is recognised by its mark (without one it is forgotten);
    /// - safe mode lasts until this server's current end (all a previous run may have applied
    ///   is before it), as do the dump's per-table points.
    async fn rebase(&mut self, at: &Position) -> Result<(), UnitError> {
        let past_global = self.safe_until_pos.is_some()
            || self.ddl_replay.is_some()
            || !self.table_points.is_empty();
        tracing::info!(checkpoint = %self.start, here = %at, past_global, "the GTID start is elsewhere than the checkpoint's position: rebasing the checkpoint on this server");
        self.applier.rebase();
        if let Some(d) = self.ddl_replay.as_mut() {
            d.pos = None;
            if d.mark.is_none() {
                tracing::warn!(
                    "the DDL in flight has no GTID mark: it runs again if it comes again"
                );
                self.ddl_replay = None;
            }
        }
        if past_global {
            let end = async {
                let mut c = connect_opts(self.up_opts.clone()).await.map_err(|e| {
                    UnitError::new(code::DB_DRIVER, "upstream", "connect to the upstream")
                        .cause(e)
                        .retryable(true)
                })?;
                timed("upstream", "read SHOW MASTER STATUS", master_status(&mut c)).await
            }
            .await?;
            let Some((end, _)) = end else {
                return Err(UnitError::new(
                    code::BINLOG_READ,
                    "upstream",
                    "SHOW MASTER STATUS returned nothing (is the binlog on?)",
                ));
            };
            if !self.table_points.is_empty() {
                tracing::warn!(
                    tables = self.table_points.len(),
                    "the dump's per-table points name the old server: those tables' events replay in safe mode"
                );
                self.table_points.clear();
            }
            tracing::info!(exit = %end, "safe mode until this server's current end");
            self.safe_until_pos = Some(end);
        }
        self.ckpt.rebase(&mut self.ddl_conn, at).await
    }

    /// Whether the relay log is on and holds `p`.
    fn relay_holds(&self, p: &Position) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| r.holds(p, &gtid_string(&self.gtids)).is_ok())
    }

    /// The binlog source for `at`: the relay log when it is on and holds `at` (`local`),
    /// else the upstream (`remote`, DM's fallback).
    async fn open_source(&self, at: &StartAt) -> Result<Box<dyn BinlogSource>, UnitError> {
        if let (Some(relay), StartAt::Position(p)) = (&self.relay, at) {
            match crate::relay::reader::LocalSource::open(
                relay.clone(),
                p,
                &gtid_string(&self.gtids),
            ) {
                Ok(s) => {
                    if !self.stats.is_local() {
                        tracing::info!(from = %p, "reading the relay log (binlogType local)");
                    }
                    self.stats.set_local(true);
                    return Ok(Box::new(s));
                }
                Err(why) => {
                    tracing::info!(from = %p, reason = %why, "the relay log does not hold the start: reading the upstream (binlogType remote)");
                }
            }
        }
        self.stats.set_local(false);
        Ok(Box::new(
            RemoteSource::open(self.up_opts.clone(), self.server_id, at).await?,
        ))
    }

    async fn end_txn(&mut self, ts: u32) -> Result<(), UnitError> {
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

    /// Drains every queue and saves the checkpoint at the last complete transaction, with
    /// the changed table structures, clearing a finished DDL's marker.
    async fn flush(&mut self) -> Result<(), UnitError> {
        self.applier.flush().await?;
        if self.events_since_flush > 0 {
            // The queues committed rows past the global point, not yet saved.
            crate::worker::failpoint::hit("sync-before-save");
        }
        if self.replay.is_some() || self.shard.as_ref().is_some_and(ShardGroups::any_open) {
            // A shard round is open or being replayed: the checkpoint stays before the round's
            // first DDL, so a restart forms the round again (DM's rule).
            self.last_flush = Instant::now();
            return Ok(());
        }
        let gtid = gtid_string(&self.gtids);
        let committed = self.txn.committed().clone();
        let tables = std::mem::take(&mut self.tracker_dirty)
            .into_iter()
            .map(|t| {
                let json = self.tracker.get(&t).map(|x| x.to_json());
                (t, json)
            })
            .collect();
        let save = SavePoint {
            global: Some(&committed),
            gtid: &gtid,
            exit_safe: self.safe_until_pos.as_ref(),
            tables,
            clear_ddl: self.ddl_done,
            points: Some(&self.table_points),
        };
        self.ckpt.save(&mut self.ddl_conn, &save).await?;
        if !self.table_points.is_empty() {
            self.table_points.retain(|_, p| *p > committed);
        }
        self.ddl_done = false;
        self.stats.set_syncer(committed, gtid, self.last_ts);
        self.stats
            .add_events(std::mem::take(&mut self.events_since_flush));
        self.last_flush = Instant::now();
        self.dirty = false;
        Ok(())
    }

    async fn rows(
        &mut self,
        ev: &RowsEventData<'_>,
        pos: Position,
        mark: Option<Mark>,
    ) -> Result<(), UnitError> {
        let tid = ev.table_id();
        let Some(tme) = self.table_maps.get(&tid) else {
            return Err(UnitError::new(
                code::BINLOG_READ,
                "upstream",
                format!("rows event for unknown table id {tid}"),
            ));
        };
        let schema = tme.database_name().to_string();
        let table = tme.table_name().to_string();
        if !self.rules.allow_table(&schema, &table) {
            return Ok(());
        }
        if self.shard.is_some() {
            let t = TableName::new(schema.clone(), table.clone());
            if self.shard.as_ref().is_some_and(|g| g.is_blocked(&t)) {
                // Held back until its shard round is resolved (then replayed).
                return Ok(());
            }
            if self
                .replay
                .as_ref()
                .is_some_and(|r| pos <= r.to && r.tables.get(&t).is_none_or(|from| pos <= *from))
            {
                // Applied the first time through (another table's, or this table's before it
                // was held back).
                return Ok(());
            }
        }
        if !self.table_points.is_empty()
            && self
                .table_points
                .get(&TableName::new(schema.clone(), table.clone()))
                .is_some_and(|p| pos <= *p)
        {
            // Already in the rows this table's dump snapshot holds.
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
        let columns = tme.columns_count();
        let cached = self
            .by_table_id
            .get(&tid)
            .filter(|(m, _)| {
                m.schema == schema && m.table == table && m.columns.len() as u64 == columns
            })
            .cloned();
        let (meta, target) = match cached {
            Some(x) => x,
            None => {
                let mut meta = TableMeta::from_tme(tme);
                self.complete_meta(&mut meta).await?;
                let meta = Arc::new(meta);
                let target = self.target_table(&schema, &table, &meta).await?;
                self.by_table_id.insert(tid, (meta.clone(), target.clone()));
                (meta, target)
            }
        };
        let Some(tme) = self.table_maps.get(&tid) else {
            return Ok(());
        };
        let changes = rows::decode_rows(ev, tme, &meta).map_err(|e| {
            UnitError::new(
                code::BINLOG_READ,
                "upstream",
                format!("decode rows of `{schema}`.`{table}`"),
            )
            .cause(e)
        })?;
        let n = changes.len() as i64;
        let changes = if self.row_rules.applies(&schema, &table) {
            let columns: Vec<String> = meta
                .columns
                .iter()
                .map(|c| c.name.clone().unwrap_or_default())
                .collect();
            let mut kept = Vec::with_capacity(changes.len());
            for change in changes {
                if let Some(c) =
                    apply_row_rules(&self.row_rules, &schema, &table, &columns, change)?
                {
                    kept.push(c);
                }
            }
            kept
        } else {
            changes
        };
        let safe = self.safe_mode();
        // The applier decides per row between the keyed and the keyless path.
        let event = changes
            .into_iter()
            .map(|change| Change {
                table: target.clone(),
                change,
                safe_mode: safe,
                pos: pos.clone(),
                mark,
            })
            .collect();
        self.applier.push_event(event).await?;
        self.events_since_flush += n;
        self.dirty = true;
        Ok(())
    }

    /// Fills column names (and signedness) the binlog lacks (MINIMAL metadata) from the schema
    /// tracker, seeding it from the upstream the first time a table is seen.
    async fn complete_meta(&mut self, meta: &mut TableMeta) -> Result<(), UnitError> {
        if meta.columns.iter().all(|c| c.name.is_some()) {
            return Ok(());
        }
        let t = TableName::new(meta.schema.clone(), meta.table.clone());
        for attempt in 0..2 {
            if attempt == 1 || self.tracker.get(&t).is_none() {
                let seeded = self.read_upstream_table(&t).await?;
                tracing::info!(table = %t.quoted(), columns = seeded.columns.len(), "schema tracker: table structure read from the upstream");
                self.tracker.set(t.clone(), seeded);
                self.tracker_dirty.insert(t.clone());
            }
            if let Some(tracked) = self.tracker.get(&t)
                && schema::merge_into(meta, tracked).is_ok()
            {
                return Ok(());
            }
        }
        Err(UnitError::new(
            code::BINLOG_READ,
            "upstream",
            format!(
                "{}: the binlog row has {} columns, but neither the tracked structure nor the upstream's current one has as many, and the binlog carries no column names",
                t.quoted(),
                meta.columns.len()
            ),
        )
        .workaround("Set binlog_row_metadata=FULL on the upstream (SET GLOBAL binlog_row_metadata='FULL'), then resume-task."))
    }

    async fn upstream(&mut self) -> Result<&mut Conn, UnitError> {
        if self.up_conn.is_none() {
            let c = connect_opts(self.up_opts.clone())
                .await
                .map_err(|e| connect_error("upstream", "connect to the upstream", e))?;
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

    async fn read_upstream_table(&mut self, t: &TableName) -> Result<TrackedTable, UnitError> {
        read_table_columns(self.upstream().await?, t).await
    }

    /// The downstream table for an upstream table and row shape (cached until the next DDL).
    async fn target_table(
        &mut self,
        schema: &str,
        table: &str,
        meta: &TableMeta,
    ) -> Result<Arc<TargetTable>, UnitError> {
        let (ts, tt) = self.rules.route(schema, table);
        let columns: Vec<String> = meta
            .columns
            .iter()
            .map(|c| c.name.clone().unwrap_or_default())
            .collect();
        let key = (ts.clone(), tt.clone(), columns.clone());
        if let Some(t) = self.schemas.get(&key) {
            return Ok(t.clone());
        }
        let q = format!(
            "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            checkpoint::lit(&ts),
            checkpoint::lit(&tt)
        );
        let rows: Vec<(String, String, i64)> = timed(
            "downstream",
            "read the downstream table's keys",
            self.ddl_conn.query(q),
        )
        .await?;
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

    /// DM's filter event of an ALTER TABLE decided by its MODIFY / CHANGE COLUMN spec: the
    /// tracked column (before the statement) against the new definition; "alter table" when
    /// either is not known.
    fn modify_event(&self, table: &TableName, m: &crate::rules::ddl::ModifySpec) -> EventType {
        let old = self.tracker.get(table).and_then(|t| {
            t.columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&m.old))
                .and_then(|c| c.def.clone())
        });
        match (old, schemacmp::ColumnType::parse(&m.def)) {
            (Some(old), Some(new)) => schemacmp::modify_event(
                &old,
                &new,
                !m.old.eq_ignore_ascii_case(&m.new),
                m.positioned,
            ),
            _ => EventType::AlterTable,
        }
    }

    /// A statement of its own (DDL, or anything else outside a transaction): runs the DDL the
    /// task replicates, marked in the checkpoint while it runs, then updates the schema
    /// tracker (whether or not the DDL was replicated: the upstream table changed).
    async fn statement(
        &mut self,
        schema: &str,
        sql: &str,
        start: &Position,
        end: &Position,
        cancel: &CancellationToken,
    ) -> Result<(), UnitError> {
        let ddls = crate::rules::split_ddl(sql, schema).map_err(|e| {
            UnitError::new(code::DDL, "internal", format!("parse DDL: {sql}")).cause(e)
        })?;
        if !self.table_points.is_empty()
            && ddls.iter().any(|d| {
                d.tables
                    .iter()
                    .any(|t| self.table_points.get(t).is_some_and(|p| end <= p))
            })
        {
            tracing::info!(sql, "DDL skipped: the table's dump snapshot is past it");
            return Ok(());
        }
        let mut run: Vec<(DdlKind, String, TableName)> = Vec::new();
        for d in ddls {
            if d.kind == DdlKind::Other || d.tables.is_empty() {
                continue;
            }
            let first = d.tables[0].clone();
            let allowed = if first.table.is_empty() {
                self.rules.allow_schema(&first.schema)
            } else {
                self.rules.allow_table(&first.schema, &first.table)
            };
            let event = match d.modify_spec() {
                Some(m) => self.modify_event(&first, m),
                None => d.event_type(),
            };
            if !allowed
                || self
                    .rules
                    .skip_event(&first.schema, &first.table, event, Some(sql))
            {
                tracing::debug!(kind = ?d.kind, table = %first.quoted(), "DDL filtered out");
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
            run.push((d.kind, stmt, first));
        }
        let mut taken = None;
        if self.optimistic && !run.is_empty() {
            let stmts: Vec<String> = run.iter().map(|r| r.1.clone()).collect();
            taken = self.ops.take_for(start, end, &stmts);
            match &taken {
                Some(Action::Skip) => {
                    // Skipped whole: the schema tracker does not follow it either (DM's way
                    // out of a conflict: binlog-schema update, then binlog skip).
                    tracing::info!(sql, position = %start, "DDL skipped (handle-error / binlog skip / sql-skip); optimistic mode: the schema tracker keeps the table as it is");
                    self.ops.passed(start);
                    return Ok(());
                }
                Some(_) => {}
                None => match self.opt_ddl(&run, sql, schema, start, end, cancel).await? {
                    ShardOutcome::Execute => {}
                    ShardOutcome::Handled | ShardOutcome::Replayed => {
                        self.ops.passed(start);
                        return Ok(());
                    }
                },
            }
        } else if self.shard.is_some() && !run.is_empty() {
            match self.shard_ddl(&run, start, end, cancel).await? {
                ShardOutcome::Execute => {}
                ShardOutcome::Handled => {
                    self.ops.passed(start);
                    return self.track_ddl(sql, schema);
                }
                ShardOutcome::Replayed => return Ok(()),
            }
        }
        let action = if taken.is_some() {
            taken
        } else if run.is_empty() || self.ops.is_empty() {
            None
        } else {
            let stmts: Vec<String> = run.iter().map(|r| r.1.clone()).collect();
            self.ops.take_for(start, end, &stmts)
        };
        if !run.is_empty() {
            self.applier.flush().await?;
            let mark = self.ddl_mark();
            self.ckpt
                .begin_ddl(&mut self.ddl_conn, end, mark.as_ref(), sql)
                .await?;
            self.ddl_done = true;
            let replay = self.is_ddl_replay(end);
            let at = ErrorAt {
                start: start.clone(),
                end: end.clone(),
                sql: sql.to_string(),
            };
            match action {
                Some(Action::Skip) => {
                    tracing::info!(sql, position = %start, "DDL skipped (handle-error / binlog skip / sql-skip)");
                }
                Some(Action::Replace(sqls)) => {
                    tracing::info!(sql, position = %start, with = ?sqls, "DDL replaced (handle-error / binlog replace / sql-replace)");
                    for stmt in &sqls {
                        self.execute_ddl(DdlKind::Other, stmt, &run[0].2, replay, cancel)
                            .await
                            .map_err(|e| self.failed_at(e, &at))?;
                        self.events_since_flush += 1;
                    }
                }
                other => {
                    if let Some(Action::Inject(sqls)) = other {
                        self.inject(&sqls, "binlog inject", cancel).await?;
                    }
                    for (kind, stmt, first) in run {
                        self.execute_ddl(kind, &stmt, &first, replay, cancel)
                            .await
                            .map_err(|e| self.failed_at(e, &at))?;
                        self.events_since_flush += 1;
                    }
                }
            }
            self.ops.passed(start);
            crate::worker::failpoint::hit("sync-after-ddl");
        }
        self.pass_ddl_replay(end);
        self.track_ddl(sql, schema)
    }

    /// The schema tracker follows a DDL (whether or not it ran downstream).
    fn track_ddl(&mut self, sql: &str, schema: &str) -> Result<(), UnitError> {
        match self.tracker.apply_ddl(sql, schema) {
            Ok(effect) => {
                for t in effect
                    .changed
                    .into_iter()
                    .chain(effect.dropped)
                    .chain(effect.unknown)
                {
                    if !self.rules.allow_table(&t.schema, &t.table) {
                        self.tracker.forget(&t);
                    }
                    self.tracker_dirty.insert(t);
                }
            }
            Err(e) => tracing::warn!(error = %e, "schema tracker: statement not understood"),
        }
        self.invalidate_tables();
        Ok(())
    }

    /// Pessimistic shard DDL for one DDL event (`run`: its routed statements with their first
    /// upstream table). CREATE TABLE joins a group and runs; DROP TABLE / DROP DATABASE leave
    /// their groups and do not run downstream (the merged table stays); TRUNCATE of a shard is
    /// ignored; any other DDL of a shard table is coordinated: the table is blocked until every
    /// table of the group on this source has the same DDL, then the source waits for the
    /// master's lock operation, runs the DDL (the lock's owner) or not (the others), and replays
    /// the blocked tables' events.
    async fn shard_ddl(
        &mut self,
        run: &[(DdlKind, String, TableName)],
        start: &Position,
        end: &Position,
        cancel: &CancellationToken,
    ) -> Result<ShardOutcome, UnitError> {
        let ups: Vec<TableName> = run.iter().map(|r| r.2.clone()).collect();
        if let Some(r) = &self.replay
            && end <= &r.to
            && (r.ddl_ends.contains(end)
                || !ups
                    .iter()
                    .any(|u| r.tables.get(u).is_some_and(|from| end > from)))
        {
            // Coordinated (or run, and tracked) the first time through.
            return Ok(ShardOutcome::Replayed);
        }
        let kind = run[0].0;
        let Some(groups) = self.shard.as_mut() else {
            return Ok(ShardOutcome::Execute);
        };
        match kind {
            DdlKind::CreateDatabase | DdlKind::AlterDatabase => Ok(ShardOutcome::Execute),
            DdlKind::CreateTable => {
                let mut merged_exists = true;
                for u in &ups {
                    let (s, n) = self.rules.route(&u.schema, &u.table);
                    let down = TableName::new(s, n);
                    merged_exists &= groups.has_tables(&down);
                    groups.add_table(u.clone(), down);
                }
                if merged_exists {
                    tracing::info!(tables = ?ups, "shard DDL: a new shard joins its group; the merged table exists, so its CREATE TABLE does not run downstream");
                    Ok(ShardOutcome::Handled)
                } else {
                    Ok(ShardOutcome::Execute)
                }
            }
            DdlKind::DropTable | DdlKind::DropDatabase => {
                let gone: Vec<TableName> = if kind == DdlKind::DropDatabase {
                    self.tracker
                        .tables()
                        .filter(|(t, _)| ups.iter().any(|u| u.schema == t.schema))
                        .map(|(t, _)| t.clone())
                        .collect()
                } else {
                    ups.clone()
                };
                let mut synced = None;
                for t in &gone {
                    if let Some(step) = groups.remove_table(t) {
                        synced = Some(step);
                    }
                }
                let targets: BTreeSet<TableName> = gone
                    .iter()
                    .map(|t| {
                        let (s, n) = self.rules.route(&t.schema, &t.table);
                        TableName::new(s, n)
                    })
                    .collect();
                tracing::info!(tables = ?gone, "shard DDL: tables leave their shard groups; the drop does not run downstream");
                for t in &targets {
                    self.save_shard_meta(t).await?;
                }
                if let Some(shard::Step::Synced { target, ddls }) = synced {
                    self.shard_wait_and_resolve(&target, &ddls, run, (start, end), false, cancel)
                        .await?;
                }
                Ok(ShardOutcome::Handled)
            }
            DdlKind::TruncateTable => {
                tracing::info!(tables = ?ups, "ignore truncate table statement in shard group");
                Ok(ShardOutcome::Handled)
            }
            _ => {
                if !ups.iter().any(|u| groups.target_of(u).is_some()) {
                    return Ok(ShardOutcome::Execute);
                }
                let stmts: Vec<String> = run.iter().map(|r| r.1.clone()).collect();
                let step = groups.on_ddl(&ups, stmts, start, end).map_err(|e| {
                    UnitError::new(e.code, "internal", e.message).workaround(
                        "Every shard table must bring the same DDLs in the same order: fix the upstream, or resolve the lock with `unlock-ddl-lock`, then `resume-task`.",
                    )
                })?;
                self.shard_sync.set_unresolved(groups.unresolved());
                let target = match &step {
                    shard::Step::Wait { target, .. } | shard::Step::Synced { target, .. } => {
                        target.clone()
                    }
                };
                self.save_shard_meta(&target).await?;
                match step {
                    shard::Step::Wait { target, waiting } => {
                        tracing::info!(target = %target.quoted(), waiting = ?waiting, "shard DDL: table blocked until the group's other tables reach the DDL");
                        Ok(ShardOutcome::Handled)
                    }
                    shard::Step::Synced { target, ddls } => {
                        self.shard_wait_and_resolve(
                            &target,
                            &ddls,
                            run,
                            (start, end),
                            true,
                            cancel,
                        )
                        .await?;
                        Ok(ShardOutcome::Handled)
                    }
                }
            }
        }
    }

    /// Every table of `target`'s group on this source reached `ddls`: report to the master,
    /// wait for the lock's operation, carry it out (`runnable`: the event's statements may run
    /// here) and resolve the round, arranging the replay.
    async fn shard_wait_and_resolve(
        &mut self,
        target: &TableName,
        ddls: &[String],
        run: &[(DdlKind, String, TableName)],
        (start, end): (&Position, &Position),
        runnable: bool,
        cancel: &CancellationToken,
    ) -> Result<(), UnitError> {
        self.applier.flush().await?;
        let key = target.quoted();
        self.shard_sync.wait_for(&key, ddls.to_vec());
        tracing::info!(target = %key, ddls = ?ddls, "shard DDL: every table of the group on this source reached the DDL; waiting for the lock");
        let Some(op) = self.shard_sync.op_for(&key, cancel).await else {
            // Paused or stopped while waiting: the round forms again on the next run.
            return Ok(());
        };
        if op.exec {
            tracing::info!(lock = %op.lock_id, ddls = ?op.ddls, "shard DDL: executing the lock's DDLs (owner)");
            let mark = self.ddl_mark();
            self.ckpt
                .begin_ddl(&mut self.ddl_conn, end, mark.as_ref(), &op.ddls.join("; "))
                .await?;
            self.ddl_done = true;
            let replay = self.is_ddl_replay(end);
            let first = run
                .first()
                .map(|r| r.2.clone())
                .unwrap_or_else(|| target.clone());
            // handle-error / binlog / sql-* operators apply to the lock's DDLs on the owner
            // (DM v1's --sharding ones come with the master's operation).
            let action = match &op.sql {
                Some(a) => {
                    tracing::info!(lock = %op.lock_id, "shard DDL: the lock carries a sql-skip / sql-replace --sharding operator");
                    Some(a.clone())
                }
                None => self.ops.take_for(start, end, &op.ddls),
            };
            let (stmts, kind) = match action {
                Some(Action::Skip) => {
                    tracing::info!(lock = %op.lock_id, "shard DDL: the lock's DDLs are skipped (handle-error / binlog skip / sql-skip)");
                    (Vec::new(), DdlKind::Other)
                }
                Some(Action::Replace(sqls)) => (sqls, DdlKind::Other),
                Some(Action::Inject(sqls)) => {
                    self.inject(&sqls, "binlog inject", cancel).await?;
                    (op.ddls.clone(), DdlKind::Other)
                }
                None => (
                    op.ddls.clone(),
                    if runnable {
                        run.first().map(|r| r.0).unwrap_or(DdlKind::Other)
                    } else {
                        DdlKind::Other
                    },
                ),
            };
            let at = ErrorAt {
                start: start.clone(),
                end: end.clone(),
                sql: op.ddls.join("; "),
            };
            for stmt in &stmts {
                self.execute_ddl(kind, stmt, &first, replay, cancel)
                    .await
                    .map_err(|e| self.failed_at(e, &at))?;
                self.events_since_flush += 1;
            }
            self.ops.passed(start);
        } else {
            tracing::info!(lock = %op.lock_id, "shard DDL: the lock's owner runs the DDLs; skipped here");
        }
        self.shard_sync.carried_out(&key, &op);
        let groups = self.shard.as_mut().expect("shard mode");
        let resolved = groups.resolve(target);
        self.save_shard_meta(target).await?;
        if let Some(r) = resolved
            && r.from < r.to
        {
            tracing::info!(from = %r.from, to = %r.to, tables = ?r.tables, "shard DDL: replaying the blocked tables' events");
            self.redirect = Some(r.from.clone());
            self.replay = Some(Replay {
                to: r.to,
                tables: r.tables,
                ddl_ends: r.ddl_ends,
            });
        }
        if self.redirect.is_none() {
            // The stream was not read while waiting (the upstream may have given up on a
            // connection that stopped reading): continue on a fresh one after this event.
            self.redirect = Some(end.clone());
        }
        if let Some(groups) = self.shard.as_ref() {
            self.shard_sync.set_unresolved(groups.unresolved());
        }
        Ok(())
    }

    /// Writes (or, with no open round, deletes) DM's sharding meta rows of `target`.
    async fn save_shard_meta(&mut self, target: &TableName) -> Result<(), UnitError> {
        let Some(groups) = self.shard.as_ref().filter(|_| !self.optimistic) else {
            return Ok(());
        };
        let rows = groups.meta_rows(&self.ckpt.id, target);
        self.ckpt
            .save_sharding_meta(&mut self.ddl_conn, &target.quoted(), &rows)
            .await
    }

    /// The tracked schema of `up` with every column's definition (read again from the upstream
    /// when the tracker does not know it, or knows it without definitions).
    async fn opt_schema(&mut self, up: &TableName) -> Result<schemacmp::Schema, UnitError> {
        if let Some(s) = self.tracker.get(up).and_then(TrackedTable::to_schema) {
            return Ok(s);
        }
        let t = self.read_upstream_table(up).await?;
        self.tracker.set(up.clone(), t.clone());
        self.tracker_dirty.insert(up.clone());
        t.to_schema().ok_or_else(|| {
            UnitError::new(
                code::DDL,
                "internal",
                format!("the columns of {} could not be read", up.quoted()),
            )
        })
    }

    /// Optimistic shard DDL for one DDL event (DM's `handleQueryEventOptimistic`): the DDL of
    /// a shard table goes to the master with the table's schema before and after it, and the
    /// master's answer runs downstream (maybe nothing: another shard already brought the
    /// column, or others still have the one dropped). DML is never held back. CREATE/ALTER
    /// DATABASE run; DROP DATABASE and TRUNCATE of shards do not; DROP TABLE leaves the lock;
    /// RENAME TABLE is DM's 36068; a conflict pauses with DM's 36062.
    async fn opt_ddl(
        &mut self,
        run: &[(DdlKind, String, TableName)],
        sql: &str,
        schema: &str,
        start: &Position,
        end: &Position,
        cancel: &CancellationToken,
    ) -> Result<ShardOutcome, UnitError> {
        let kind = run[0].0;
        let ups: Vec<TableName> = run.iter().map(|r| r.2.clone()).collect();
        let stmts: Vec<String> = run.iter().map(|r| r.1.clone()).collect();
        let Some(groups) = self.shard.as_mut() else {
            return Ok(ShardOutcome::Execute);
        };
        match kind {
            DdlKind::CreateDatabase | DdlKind::AlterDatabase => return Ok(ShardOutcome::Execute),
            DdlKind::DropDatabase => {
                tracing::info!(
                    sql,
                    "optimistic shard DDL: DROP DATABASE does not run downstream"
                );
                return Ok(ShardOutcome::Handled);
            }
            DdlKind::TruncateTable => {
                tracing::info!(tables = ?ups, "ignore truncate table statement in shard group");
                return Ok(ShardOutcome::Handled);
            }
            DdlKind::RenameTable => {
                let at = ErrorAt {
                    start: start.clone(),
                    end: end.clone(),
                    sql: sql.to_string(),
                };
                return Err(self.failed_at(
                    UnitError::new(
                        shard::codes::UNSUPPORTED_STMT,
                        "internal",
                        format!("`RENAME TABLE` statement not supported in optimistic mode: {sql}"),
                    ),
                    &at,
                ));
            }
            _ => {}
        }
        let downs: BTreeSet<TableName> = ups
            .iter()
            .map(|u| {
                let (s, n) = self.rules.route(&u.schema, &u.table);
                TableName::new(s, n)
            })
            .collect();
        let (Some(up), Some(down), 1) = (ups.first().cloned(), downs.first().cloned(), downs.len())
        else {
            return Err(UnitError::new(
                shard::codes::MULTIPLE_TABLES,
                "internal",
                format!("ddl on multiple table: {} not supported", stmts.join("; ")),
            ));
        };
        let empty = schemacmp::Schema::default();
        let (before, after, dropped) = match kind {
            DdlKind::CreateTable => {
                let merged = groups.has_tables(&down);
                groups.add_table(up.clone(), down.clone());
                if !merged {
                    // The first table of its group: the CREATE runs downstream as usual.
                    return Ok(ShardOutcome::Execute);
                }
                let mut after_tracker = self.tracker.clone();
                let _ = after_tracker.apply_ddl(sql, schema);
                let after = after_tracker
                    .get(&up)
                    .and_then(TrackedTable::to_schema)
                    .unwrap_or_default();
                (empty, after, false)
            }
            DdlKind::DropTable => {
                groups.remove_table(&up);
                (empty.clone(), empty, true)
            }
            _ => {
                if groups.target_of(&up).is_none() {
                    groups.add_table(up.clone(), down.clone());
                }
                let before = self.opt_schema(&up).await?;
                let mut after_tracker = self.tracker.clone();
                let _ = after_tracker.apply_ddl(sql, schema);
                let Some(after) = after_tracker.get(&up).and_then(TrackedTable::to_schema) else {
                    let at = ErrorAt {
                        start: start.clone(),
                        end: end.clone(),
                        sql: sql.to_string(),
                    };
                    return Err(self.failed_at(
                        UnitError::new(
                            shard::codes::SHARD_DDL_CONFLICT,
                            "internal",
                            format!(
                                "fail to handle shard ddl {stmts:?} in optimistic mode, because schema conflict detected, conflict error: the schema tracker cannot follow this DDL of {}",
                                up.quoted()
                            ),
                        ),
                        &at,
                    ));
                };
                if let Some(why) = shard::renames_columns(&before, &after) {
                    let at = ErrorAt {
                        start: start.clone(),
                        end: end.clone(),
                        sql: sql.to_string(),
                    };
                    return Err(self.opt_conflict(&stmts, &why, &at));
                }
                (before, after, false)
            }
        };
        self.applier.flush().await?;
        let key = up.quoted();
        let id = end.to_string();
        self.shard_sync.opt_request(crate::dmrs::OptInfo {
            task: self.task_name.clone(),
            up: key.clone(),
            target: down.quoted(),
            id: id.clone(),
            ddls: if dropped { Vec::new() } else { stmts.clone() },
            before: serde_json::to_string(&before).unwrap_or_default(),
            after: serde_json::to_string(&after).unwrap_or_default(),
            ignore_conflict: false,
            dropped,
        });
        tracing::info!(table = %key, target = %down.quoted(), ddls = ?stmts, "optimistic shard DDL: waiting for the master's answer");
        let Some(op) = self.shard_sync.opt_op_for(&key, &id, cancel).await else {
            return Err(UnitError::new(
                code::DDL,
                "internal",
                "cancelled while waiting for the optimistic shard DDL answer",
            )
            .retryable(true));
        };
        let at = ErrorAt {
            start: start.clone(),
            end: end.clone(),
            sql: sql.to_string(),
        };
        if !op.conflict.is_empty() {
            self.shard_sync.opt_finished(&key, &id);
            return Err(self.opt_conflict(&stmts, &op.conflict, &at));
        }
        if !op.ddls.is_empty() {
            tracing::info!(table = %key, ddls = ?op.ddls, "optimistic shard DDL: the joined schema changed; executing");
            let mark = self.ddl_mark();
            self.ckpt
                .begin_ddl(&mut self.ddl_conn, end, mark.as_ref(), &op.ddls.join("; "))
                .await?;
            self.ddl_done = true;
            let replay = self.is_ddl_replay(end);
            for stmt in &op.ddls {
                self.execute_ddl(DdlKind::Other, stmt, &up, replay, cancel)
                    .await
                    .map_err(|e| self.failed_at(e, &at))?;
                self.events_since_flush += 1;
            }
            crate::worker::failpoint::hit("sync-after-ddl");
        } else {
            tracing::info!(table = %key, "optimistic shard DDL: the joined schema does not change; nothing runs downstream");
        }
        self.shard_sync.opt_finished(&key, &id);
        self.pass_ddl_replay(end);
        self.track_ddl(sql, schema)?;
        self.publish_opt_tables();
        // The stream was not read while waiting: continue on a fresh one after this event.
        self.redirect = Some(end.clone());
        Ok(ShardOutcome::Handled)
    }

    /// DM's 36062, at the DDL's location (so `binlog skip` without `-b` acts there).
    fn opt_conflict(&self, stmts: &[String], why: &str, at: &ErrorAt) -> UnitError {
        let task = &self.task_name;
        let pos = format!("{}:{}", at.start.file, at.start.pos);
        let mut e = self.failed_at(
            UnitError::new(
                shard::codes::SHARD_DDL_CONFLICT,
                "internal",
                format!(
                    "fail to handle shard ddl {stmts:?} in optimistic mode, because schema conflict detected, conflict error: {why}"
                ),
            ),
            at,
        );
        e.workaround = format!(
            "Make the shards agree: set this table's tracked schema to one that fits the merged table (`binlog-schema update {task} <db> <table> <schema-file>`, which also tells the master), then skip the DDL: `binlog skip {task} -b {pos}` (DM v2: `handle-error {task} -b {pos} skip`); or run other statements instead: `binlog replace {task} -b {pos} \"<statements>\"`."
        );
        e
    }

    /// Optimistic: the groups and their tables' schemas, for the master (with every push).
    fn publish_opt_tables(&self) {
        if !self.optimistic {
            return;
        }
        let Some(groups) = self.shard.as_ref() else {
            return;
        };
        let tables = groups
            .members()
            .into_iter()
            .map(|(target, ups)| crate::dmrs::OptTables {
                task: self.task_name.clone(),
                target: target.quoted(),
                schemas: ups
                    .iter()
                    .map(|u| {
                        self.tracker
                            .get(u)
                            .and_then(TrackedTable::to_schema)
                            .and_then(|s| serde_json::to_string(&s).ok())
                            .unwrap_or_default()
                    })
                    .collect(),
                ups: ups.iter().map(TableName::quoted).collect(),
            })
            .collect();
        self.shard_sync.set_opt_tables(tables);
    }

    /// A DDL of the event `at` failed downstream: remember where (handle-error without `-b`
    /// acts there) and say which commands get past it.
    fn failed_at(&self, mut e: UnitError, at: &ErrorAt) -> UnitError {
        if e.retryable {
            return e;
        }
        self.ops.set_error(at.clone());
        let (task, pos) = (
            &self.task_name,
            format!("{}:{}", at.start.file, at.start.pos),
        );
        e.message = format!(
            "{}, startLocation: [position: {}], endLocation: [position: {}]",
            e.message, at.start, at.end
        );
        e.workaround = format!(
            "Fix the downstream so the DDL can run, then `resume-task {task}`; or skip it: `binlog skip {task} -b {pos}` (DM v2: `handle-error {task} -b {pos} skip`); or run other statements instead: `binlog replace {task} -b {pos} \"<statements>\"`."
        );
        e
    }

    /// Runs injected statements (`binlog inject`, DM v1's `sql-inject`) downstream, after
    /// draining the queues.
    async fn inject(
        &mut self,
        sqls: &[String],
        what: &str,
        cancel: &CancellationToken,
    ) -> Result<(), UnitError> {
        self.applier.flush().await?;
        for stmt in sqls {
            tracing::info!(ddl = %stmt, "{what}: executing an injected statement");
            let r = tokio::select! {
                r = self.ddl_conn.query_drop(stmt.as_str()) => r,
                _ = cancel.cancelled() => {
                    return Err(UnitError::new(
                        code::DB_EXECUTE,
                        "downstream",
                        format!("cancelled while executing an injected statement: {stmt}"),
                    )
                    .retryable(true));
                }
            };
            r.map_err(|e| {
                UnitError::from_mysql(
                    "downstream",
                    format!("execute the injected statement ({what}) failed: {stmt}"),
                    &e,
                )
            })?;
        }
        self.ddl_done = true;
        Ok(())
    }

    async fn execute_ddl(
        &mut self,
        kind: DdlKind,
        stmt: &str,
        first: &TableName,
        replay: bool,
        cancel: &CancellationToken,
    ) -> Result<(), UnitError> {
        if matches!(kind, DdlKind::CreateTable | DdlKind::RenameTable) {
            // A routed table may land in a schema that does not exist downstream yet.
            let (s, _) = self.rules.route(&first.schema, &first.table);
            let _ = timed(
                "downstream",
                "create the target schema",
                self.ddl_conn
                    .query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(&s))),
            )
            .await;
        }
        tracing::info!(ddl = %stmt, "executing DDL downstream");
        // A DDL may wait long for a metadata lock: pause, stop and fence cancel the wait (the
        // DDL marker makes the replay of a DDL that finished anyway harmless).
        let r = tokio::select! {
            r = self.ddl_conn.query_drop(stmt) => r,
            _ = cancel.cancelled() => {
                return Err(UnitError::new(
                    code::DB_EXECUTE,
                    "downstream",
                    format!("cancelled while executing DDL: {stmt}"),
                )
                .retryable(true));
            }
        };
        if let Err(e) = r {
            let idempotent = matches!(&e, mysql_async::Error::Server(s)
                if matches!(s.code, 1007 | 1008 | 1050 | 1051 | 1054 | 1060 | 1061 | 1068 | 1091 | 1146));
            if idempotent && (replay || self.safe_mode()) {
                tracing::info!(ddl = %stmt, error = %e, "DDL already applied (replay of a DDL a previous run ran); skipped");
                return Ok(());
            }
            return Err(UnitError::from_mysql(
                "downstream",
                format!("execute DDL failed: {stmt}"),
                &e,
            ));
        }
        Ok(())
    }
}

/// Saves a first run's start point with the tracked structures of `tables` (so a restart before
/// the first flush, or while a shard round holds the checkpoint, knows every table).
async fn save_start(
    ckpt: &mut CheckpointTable,
    conn: &mut Conn,
    tracker: &SchemaTracker,
    tables: Vec<TableName>,
    (start, gtid, exit_safe): (&Position, &str, Option<&Position>),
    points: &BTreeMap<TableName, Position>,
) -> Result<(), UnitError> {
    let tables = tables
        .into_iter()
        .map(|t| {
            let json = tracker.get(&t).map(|x| x.to_json());
            (t, json)
        })
        .collect();
    ckpt.save(
        conn,
        &SavePoint {
            global: Some(start),
            gtid,
            exit_safe,
            tables,
            clear_ddl: false,
            points: Some(points),
        },
    )
    .await
}

/// Where an `all` task's sync starts: read from its dump directory.
struct DumpStart {
    start: Position,
    gtid: String,
    /// The latest snapshot of the dump (its after-connection position): safe mode until past.
    exit_safe: Option<Position>,
    /// Tables dumped from a later snapshot than `start`: their own start points.
    points: BTreeMap<TableName, Position>,
}

/// Reads the dump's `metadata` (DM's ErrParseMydumperMeta / ErrMetadataNoBinlogLoc when it
/// is missing, damaged or has no position), seeds `tracker` from the dump's `-schema.sql`
/// files (the structures as of the snapshot) and takes each table's own point from dm-rs's
/// dump record.
fn dump_start(
    task: &TaskConfig,
    source_id: &str,
    rules: &TableRules,
    tracker: &mut SchemaTracker,
) -> Result<DumpStart, UnitError> {
    use full::naming::{DumpFile, classify};
    let dir = full::dump_dir(task, source_id);
    let path = dir.join(full::METADATA_FILE);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UnitError::new(
            code::PARSE_META,
            "internal",
            format!("parse mydumper metadata error: read {shown}: {e}"),
        )
        .workaround("The dump directory of this task is gone or incomplete (it is local to the worker that dumped): start the task again with --remove-meta to dump again.")
    })?;
    let meta = full::metadata::DumpMeta::parse(&text, &shown)?;
    let loc = meta.start(&shown)?.clone();
    let start = loc.position();
    let exit_safe = meta
        .after_conn
        .as_ref()
        .map(|a| a.position())
        .filter(|p| *p > start);
    let mut points = BTreeMap::new();
    match full::DumpState::read(&dir) {
        Ok(Some(state)) => {
            for (key, td) in &state.tables {
                let (Some((db, t)), Some(s)) = (key.split_once('\t'), state.session(td.session))
                else {
                    continue;
                };
                let p = s.loc.position();
                if p > start && rules.allow_table(db, t) {
                    points.insert(TableName::new(db.to_string(), t.to_string()), p);
                }
            }
        }
        // Not a dm-rs dump (mydumper, dumpling): one snapshot, no own points.
        Ok(None) => {}
        Err(e) => {
            return Err(UnitError::new(
                code::PARSE_META,
                "internal",
                format!("read the dump record {}: {e}", dir.join(full::STATE_FILE).display()),
            )
            .workaround("The dump directory is damaged: start the task again with --remove-meta to dump again."));
        }
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        UnitError::new(
            code::LOAD_DIR_NOT_FOUND,
            "internal",
            format!("read the dump directory {}: {e}", dir.display()),
        )
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let DumpFile::TableSchema { db, table } = classify(&name) else {
            continue;
        };
        if !rules.allow_table(&db, &table) {
            continue;
        }
        let Ok(sql) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let t = TableName::new(db.clone(), table.clone());
        for stmt in sql.split(";\n") {
            let stmt = stmt.trim();
            if stmt.is_empty() || (stmt.starts_with("/*") && stmt.ends_with("*/")) {
                continue;
            }
            if let Err(e) = tracker.apply_ddl(stmt, &db) {
                tracing::warn!(table = %t.quoted(), error = %e, "schema file not understood: the structure is read from the upstream when needed");
                tracker.forget(&t);
            }
        }
    }
    tracing::info!(start = %start, gtid = %loc.gtid, exit_safe = ?exit_safe.as_ref().map(|p| p.to_string()), "starting from the dump's metadata");
    Ok(DumpStart {
        start,
        gtid: loc.gtid,
        exit_safe,
        points,
    })
}

fn gtid_string(g: &BTreeMap<u32, binlog::MariaGtid>) -> String {
    g.values()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A failed [`connect_opts`] as the unit's error: a server or network error is classified
/// like any MySQL error, a timeout is retryable, a settings error is not.
fn connect_error(scope: &'static str, what: &str, e: ConnectError) -> UnitError {
    match e {
        ConnectError::Sql { source, .. } => UnitError::from_mysql(scope, what.to_string(), &source),
        ConnectError::Timeout { .. } => UnitError::new(code::DB_DRIVER, scope, what.to_string())
            .cause(e)
            .retryable(true),
        ConnectError::Config(_) => {
            UnitError::new(code::UNIT_CONFIG, scope, what.to_string()).cause(e)
        }
    }
}

/// Runs a query future with [`QUERY_TIMEOUT`]; a timeout is a retryable error.
async fn timed<T>(
    scope: &'static str,
    what: &str,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, UnitError> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(UnitError::from_mysql(scope, what.to_string(), &e)),
        Err(_) => Err(UnitError::new(
            code::DB_DRIVER,
            scope,
            format!("{what}: no answer within {QUERY_TIMEOUT:?}"),
        )
        .retryable(true)),
    }
}

/// Whether a connected replica has registered as `server_id` (SHOW SLAVE HOSTS; a
/// failure to ask counts as free).
async fn replica_id_taken(conn: &mut Conn, server_id: u32) -> bool {
    let rows: Result<Vec<mysql_async::Row>, _> =
        match tokio::time::timeout(QUERY_TIMEOUT, conn.query("SHOW SLAVE HOSTS")).await {
            Ok(r) => r,
            Err(_) => return false,
        };
    rows.map(|rows| {
        rows.iter()
            .any(|r| r.get::<Option<u32>, _>(0).flatten() == Some(server_id))
    })
    .unwrap_or(false)
}

/// Reads the upstream's current position (SHOW MASTER STATUS) and GTID state.
pub async fn master_status(
    conn: &mut Conn,
) -> Result<Option<(Position, String)>, mysql_async::Error> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let g: Option<String> = conn.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
    Ok(row.and_then(|row| {
        let file: Option<String> = row.get(0);
        let pos: Option<u64> = row.get(1);
        match (file, pos) {
            (Some(file), Some(pos)) => Some((Position { file, pos }, g.unwrap_or_default())),
            _ => None,
        }
    }))
}

/// Keeps the upstream's position fresh for query-status (every 500 ms, each call bounded).
async fn poll_master(opts: Opts, stats: Arc<SyncStats>) {
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            conn = connect_opts(opts.clone()).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            match tokio::time::timeout(QUERY_TIMEOUT, master_status(c)).await {
                Ok(Ok(Some((p, g)))) => {
                    stats.set_master(p, g);
                    stats.notify_ready();
                }
                _ => conn = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One upstream table's columns with their definitions, from information_schema (the tracker
/// seeds a table it does not know from here; binlog-schema update --from-source too).
pub(crate) async fn read_table_columns(
    conn: &mut Conn,
    t: &TableName,
) -> Result<TrackedTable, UnitError> {
    let q = format!(
        "SELECT {} FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        schema::COLUMN_ROW_SELECT,
        checkpoint::lit(&t.schema),
        checkpoint::lit(&t.table)
    );
    type Row = (String, String, String, Option<String>, String);
    let rows: Vec<Row> = timed(
        "upstream",
        "read the upstream table's columns",
        conn.query(q),
    )
    .await?;
    let rows: Vec<schema::ColumnRow> = rows
        .into_iter()
        .map(
            |(name, column_type, is_nullable, column_default, extra)| schema::ColumnRow {
                name,
                column_type,
                is_nullable,
                column_default,
                extra,
            },
        )
        .collect();
    Ok(TrackedTable::from_column_rows(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(dir: &std::path::Path) -> TaskConfig {
        let yaml = format!(
            "name: t\ntask-mode: all\ntarget-database: {{host: 127.0.0.1, port: 3306, user: root, password: ''}}\n\
mysql-instances:\n  - source-id: s1\n    block-allow-list: ba\n    loader-config-name: l\n\
block-allow-list:\n  ba:\n    do-dbs: [db]\nloaders:\n  l:\n    dir: {}\n",
            dir.join("dump").display()
        );
        crate::config::parse_task(yaml.as_bytes()).unwrap().config
    }

    /// (metadata text or None for no file, dump record, want: Ok((start, exit, own points)) or
    /// Err(code)).
    #[test]
    fn an_all_task_starts_where_its_dump_says() {
        let meta1 = "SHOW MASTER STATUS:\n\tLog: b.000001\n\tPos: 100\n\tGTID:0-1-5\n\n";
        let meta2 = "SHOW MASTER STATUS:\n\tLog: b.000001\n\tPos: 100\n\tGTID:0-1-5\n\nSHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */\n\tLog: b.000001\n\tPos: 900\n\tGTID:0-1-9\n\n";
        let no_pos = "Started dump at: x\nFinished dump at: y\n";
        let state = r#"{"dump_id":"x","sessions":[{"id":1,"loc":{"file":"b.000001","pos":100,"gtid":""},"started":""},{"id":2,"loc":{"file":"b.000001","pos":900,"gtid":""},"started":""}],
            "tables":{"db\tearly":{"session":1,"files":{},"done":true},"db\tlate":{"session":2,"files":{},"done":true},"other\tlate":{"session":2,"files":{},"done":true}},"done":true}"#;
        type Want = Result<(u64, Option<u64>, Vec<&'static str>), i32>;
        let cases: Vec<(&str, Option<&str>, Option<&str>, Want)> = vec![
            ("one snapshot", Some(meta1), None, Ok((100, None, vec![]))),
            (
                "two snapshots: safe until the last, a later table starts at its own",
                Some(meta2),
                Some(state),
                Ok((100, Some(900), vec!["late"])),
            ),
            ("no metadata file", None, None, Err(code::PARSE_META)),
            (
                "metadata without a position",
                Some(no_pos),
                None,
                Err(code::META_NO_BINLOG),
            ),
            (
                "damaged metadata",
                Some("SHOW MASTER STATUS:\n\tPos: x\n"),
                None,
                Err(code::PARSE_META),
            ),
            (
                "damaged dump record",
                Some(meta2),
                Some("{"),
                Err(code::PARSE_META),
            ),
        ];
        for (name, meta, st, want) in cases {
            let base = tempfile::tempdir().unwrap();
            let task = task(base.path());
            let dir = full::dump_dir(&task, "s1");
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(m) = meta {
                std::fs::write(dir.join(full::METADATA_FILE), m).unwrap();
            }
            if let Some(s) = st {
                std::fs::write(dir.join(full::STATE_FILE), s).unwrap();
            }
            std::fs::write(
                dir.join(full::naming::table_schema_file("db", "late")),
                "/*!40101 SET NAMES binary*/;\nCREATE TABLE `late` (\n  `id` int(10) unsigned NOT NULL,\n  `v` text\n) ENGINE=InnoDB;\n",
            )
            .unwrap();
            let rules = TableRules::new(&task, "s1").unwrap();
            let mut tracker = SchemaTracker::default();
            let got = dump_start(&task, "s1", &rules, &mut tracker);
            match (got, want) {
                (Ok(d), Ok((pos, exit, points))) => {
                    assert_eq!(d.start.pos, pos, "{name}");
                    assert_eq!(d.exit_safe.map(|p| p.pos), exit, "{name}");
                    let mut own: Vec<&str> = d.points.keys().map(|t| t.table.as_str()).collect();
                    own.sort();
                    assert_eq!(
                        own, points,
                        "{name}: other.late is not in the block-allow-list"
                    );
                    let late = tracker.get(&TableName::new("db", "late"));
                    let cols: Vec<(String, bool)> = late
                        .map(|t| {
                            t.columns
                                .iter()
                                .map(|c| (c.name.clone(), c.unsigned))
                                .collect()
                        })
                        .unwrap_or_default();
                    assert_eq!(
                        cols,
                        vec![("id".to_string(), true), ("v".to_string(), false)],
                        "{name}: the tracker is seeded from the schema file"
                    );
                }
                (Err(e), Err(c)) => assert_eq!(e.code, c, "{name}: {e:?}"),
                (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|d| d.start)),
            }
        }
    }
}
