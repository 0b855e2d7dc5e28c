//! The sync unit's checkpoint, kept in the downstream table
//! `` `<meta-schema>`.`<task>_syncer_checkpoint` `` with DM's columns.
//!
//! The global row (`cp_schema = ''`, `cp_table = ''`, `is_global = 1`) is the position to
//! resume reading from: everything before it is applied downstream. Each apply queue also
//! keeps one row (`cp_table = '#queue-I/N'`: queue I of N), updated inside the same downstream transaction
//! as the rows it applies, holding the furthest binlog position that queue has committed.
//! After a crash, the largest of those is the exact safe-mode exit point: events between the
//! global point and it may already be applied (re-applied idempotently in safe mode); events
//! after it certainly are not. Rows of a table with no primary or unique key always go to the
//! same queue, a whole binlog event at a time, so that queue's position also says exactly which
//! of them are downstream: a restart with the same worker-count skips them instead of inserting
//! them twice.
//!
//! More rows of the same table, all with `cp_schema = ''` and a `#` name DM never uses:
//! - `#owner`: the owner epoch (`binlog_pos`), the worker that claimed it (`binlog_name`) and
//!   the last `--remove-meta` start it honoured (`binlog_gtid`, the reset token). Every run of
//!   the unit claims the next epoch ([`CheckpointTable::claim`]), which also stamps the epoch on
//!   every `#queue-*` row (in `exit_safe_binlog_pos`, unused by queue rows otherwise) and
//!   creates the rows of its own queues. Every apply transaction ends with its queue row's
//!   upsert, which fails (MySQL error 1242) unless the row still carries the run's epoch; the
//!   checkpoint saves and the DDL marker end with a guard ([`CheckpointTable::guard_sql`]) that
//!   reads `#owner` under a shared lock and fails the same way. So a fenced or partitioned old
//!   worker's late writes are refused by the downstream itself, and since the claim's exclusive
//!   locks wait for every in-flight transaction of the old run, the new run loads a checkpoint
//!   no old transaction can still change. A `--remove-meta` reset keeps the queue rows (their
//!   positions emptied) so that an old run of any worker-count still meets its stamped row.
//! - `#ddl`: a DDL in flight: written (guarded) before a DDL runs downstream and deleted in the
//!   transaction that saves the checkpoint past it. A crash between the two leaves it, and the
//!   next run replays that DDL tolerating "already exists / does not exist" errors.
//!
//! Queue rows keep their GTID marks in `binlog_gtid` and the `#ddl` row its DDL's mark in
//! `exit_safe_binlog_gtid` (`marks.rs`): after an upstream failover followed by GTID the
//! positions name nothing on the new server, [`CheckpointTable::rebase`] moves them to the
//! new server's start, and the marks say what was applied past the global point.
//!
//! Per-table rows (`cp_schema`, `cp_table` = the upstream table, as DM) hold the table's
//! structure as the schema tracker knew it at the global point (`table_info` JSON), so a
//! resumed task decodes rows written before a later ALTER with the columns they had.

use std::collections::BTreeMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::apply::Applied;
use super::marks::{Mark, Marks};
use crate::binlog::Position;
use crate::rules::TableName;

/// The MySQL error a failed owner guard raises ("Subquery returns more than 1 row").
pub const GUARD_FAILED: u16 = 1242;
use crate::worker::error::UnitError;

/// Quotes an identifier with backquotes.
pub fn quote(id: &str) -> String {
    let mut s = String::with_capacity(id.len() + 2);
    crate::dml::quote_ident(id, &mut s);
    s
}

/// Escapes a string for a single-quoted SQL literal.
pub fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\'' => o.push_str("''"),
            '\\' => o.push_str("\\\\"),
            '\0' => o.push_str("\\0"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

/// cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info
type CheckpointRow = (
    String,
    String,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
);

#[derive(Debug, Clone)]
pub struct CheckpointTable {
    /// `` `meta`.`task_syncer_checkpoint` ``
    pub table: String,
    pub schema: String,
    /// The task's name.
    pub task: String,
    /// The row id: the source id.
    pub id: String,
    /// The owner epoch this run claimed (0: not claimed; no guard).
    pub epoch: u64,
}

/// What [`CheckpointTable::claim`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub epoch: u64,
    /// The checkpoint was cleared (a `--remove-meta` start seen for the first time).
    pub cleared: bool,
}

/// What a previous run left.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub global: Position,
    pub gtid: String,
    /// The furthest position any apply queue committed, when past the global point.
    pub exit_safe: Option<Position>,
    /// Per queue count N: what each queue I of N committed (position and marks).
    pub queues: BTreeMap<usize, BTreeMap<usize, Applied>>,
    /// A DDL that was running when the previous run stopped: its event's end position.
    pub ddl_in_flight: Option<Position>,
    /// That DDL's GTID mark, when the upstream gave it one.
    pub ddl_mark: Option<Mark>,
    /// Per upstream table: the tracked structure (`table_info` JSON) at the global point.
    pub tables: BTreeMap<TableName, String>,
    /// Tables whose own point is past the global one (an `all` task whose dump took several
    /// snapshots): their events up to it are in the dumped data already.
    pub table_points: BTreeMap<TableName, Position>,
}

/// A checkpoint save: the global point and the tables whose structure changed.
#[derive(Debug, Clone, Default)]
pub struct SavePoint<'a> {
    pub global: Option<&'a Position>,
    pub gtid: &'a str,
    pub exit_safe: Option<&'a Position>,
    /// Tables to write (`Some(json)`) or delete (`None`).
    pub tables: Vec<(TableName, Option<String>)>,
    /// Delete the DDL-in-flight marker (the DDL is behind the global point now).
    pub clear_ddl: bool,
    /// Tables whose point is past the global one: their rows keep it.
    pub points: Option<&'a BTreeMap<TableName, Position>>,
}

/// `#queue-I/N` → (I, N).
fn parse_queue_name(t: &str) -> Option<(usize, usize)> {
    let (i, n) = t.strip_prefix("#queue-")?.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

fn down(what: &str, e: &mysql_async::Error) -> UnitError {
    UnitError::from_mysql("downstream", what, e)
}

/// A downstream error of a guarded transaction: the guard's 1242 means another run owns the
/// source now (not retryable: this run must stop).
pub fn owner_error(what: &str, e: &mysql_async::Error, epoch: u64) -> UnitError {
    match e {
        mysql_async::Error::Server(s) if s.code == GUARD_FAILED => UnitError::new(
            crate::worker::error::code::FENCED,
            "internal",
            format!("{what}: another run of this task has claimed the source since this one (owner epoch {epoch}); this run stops"),
        )
        .cause(e)
        .workaround("Nothing to do when the source moved to another worker; otherwise `resume-task`."),
        _ => down(what, e),
    }
}

impl CheckpointTable {
    pub fn new(meta_schema: &str, task: &str, source_id: &str) -> CheckpointTable {
        CheckpointTable {
            table: format!(
                "{}.{}",
                quote(meta_schema),
                quote(&format!("{task}_syncer_checkpoint"))
            ),
            schema: meta_schema.to_string(),
            task: task.to_string(),
            id: source_id.to_string(),
            epoch: 0,
        }
    }

    /// The guard every apply and checkpoint transaction runs last: fails with
    /// [`GUARD_FAILED`] unless the owner epoch is still this run's. Empty when unclaimed.
    pub fn guard_sql(&self) -> String {
        if self.epoch == 0 {
            return String::new();
        }
        format!(
            "SELECT IF(COUNT(*) = 1, 1, (SELECT 1 UNION ALL SELECT 2)) FROM {t} \
             WHERE id = {id} AND cp_schema = '' AND cp_table = '#owner' AND binlog_pos = {e} LOCK IN SHARE MODE",
            t = self.table,
            id = lit(&self.id),
            e = self.epoch,
        )
    }

    /// True when there is no checkpoint to continue from (DM's `IsFreshTask`): no table, no
    /// global point for this source, or a `--remove-meta` token (`reset`) not applied yet.
    pub async fn is_fresh(&self, conn: &mut Conn, reset: Option<&str>) -> Result<bool, UnitError> {
        type Row = (String, Option<String>, Option<String>);
        let rows: Result<Vec<Row>, _> = conn
            .query(format!(
                "SELECT cp_table, binlog_name, binlog_gtid FROM {} WHERE id = {} AND cp_schema = '' AND cp_table IN ('', '#owner')",
                self.table,
                lit(&self.id)
            ))
            .await;
        let rows = match rows {
            Ok(r) => r,
            Err(mysql_async::Error::Server(e)) if e.code == 1146 || e.code == 1049 => {
                return Ok(true);
            }
            Err(e) => return Err(down("read the checkpoint", &e)),
        };
        let has_global = rows
            .iter()
            .any(|(t, n, _)| t.is_empty() && n.as_deref().is_some_and(|n| !n.is_empty()));
        let token = rows
            .iter()
            .find(|(t, _, _)| t == "#owner")
            .and_then(|(_, _, g)| g.clone())
            .unwrap_or_default();
        Ok(!has_global || reset.is_some_and(|r| r != token))
    }

    /// Claims the source for this run: the next owner epoch, recorded with the worker's name.
    /// With `reset = Some(token)` (a `--remove-meta` start), the checkpoint is cleared first —
    /// once per token: a later run of the same start (a worker restart, a fence, a rebind)
    /// finds the token recorded and keeps the checkpoint.
    pub async fn claim(
        &mut self,
        conn: &mut Conn,
        worker: &str,
        reset: Option<&str>,
        queues: usize,
    ) -> Result<Claim, UnitError> {
        // Sources of one task share the table: their claims can deadlock each other (InnoDB's
        // gap locks); the loser's transaction is rolled back whole, so it is tried again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.claim_once(conn, worker, reset, queues).await {
                Err(e)
                    if attempt < 5
                        && matches!(&e, mysql_async::Error::Server(s) if s.code == 1213 || s.code == 1205) =>
                {
                    tracing::info!(
                        attempt,
                        "claim the source in the checkpoint: {e}; trying again"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Ok(c) => {
                    self.epoch = c.epoch;
                    return Ok(c);
                }
                Err(e) => return Err(down("claim the source in the checkpoint", &e)),
            }
        }
    }

    async fn claim_once(
        &self,
        conn: &mut Conn,
        worker: &str,
        reset: Option<&str>,
        queues: usize,
    ) -> Result<Claim, mysql_async::Error> {
        let run = async {
            conn.query_drop("BEGIN").await?;
            let row: Option<(Option<u64>, Option<String>)> = conn
                .query_first(format!(
                    "SELECT binlog_pos, binlog_gtid FROM {} WHERE id = {} AND cp_schema = '' AND cp_table = '#owner' FOR UPDATE",
                    self.table,
                    lit(&self.id)
                ))
                .await?;
            let (old_epoch, old_token) = match row {
                Some((e, t)) => (e.unwrap_or(0), t.unwrap_or_default()),
                None => (0, String::new()),
            };
            let mut token = old_token.clone();
            let mut cleared = false;
            if let Some(r) = reset
                && r != old_token
            {
                conn.query_drop(format!(
                    "DELETE FROM {t} WHERE id = {id} AND NOT (cp_schema = '' AND (cp_table = '#owner' OR cp_table LIKE '#queue-%'))",
                    t = self.table,
                    id = lit(&self.id)
                ))
                .await?;
                conn.query_drop(format!(
                    "UPDATE {t} SET binlog_name = '', binlog_pos = 0, binlog_gtid = '' WHERE id = {id} AND cp_schema = '' AND cp_table LIKE '#queue-%'",
                    t = self.table,
                    id = lit(&self.id)
                ))
                .await?;
                token = r.to_string();
                cleared = true;
            }
            let epoch = old_epoch + 1;
            conn.query_drop(format!(
                "INSERT INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info, is_global) \
                 VALUES ({id}, '', '#owner', {w}, {e}, {tok}, '{{}}', 0) \
                 ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), binlog_gtid = VALUES(binlog_gtid)",
                t = self.table,
                id = lit(&self.id),
                w = lit(worker),
                e = epoch,
                tok = lit(&token),
            ))
            .await?;
            // Stamp every queue row (an old run's included) with the new epoch; create ours.
            conn.query_drop(format!(
                "UPDATE {t} SET exit_safe_binlog_pos = {e} WHERE id = {id} AND cp_schema = '' AND cp_table LIKE '#queue-%'",
                t = self.table,
                id = lit(&self.id),
                e = epoch,
            ))
            .await?;
            let n = queues.max(1);
            let rows: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "({id}, '', '#queue-{i}/{n}', '', 0, '', {epoch}, '{{}}', 0)",
                        id = lit(&self.id)
                    )
                })
                .collect();
            conn.query_drop(format!(
                "INSERT IGNORE INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_pos, table_info, is_global) VALUES {rows}",
                t = self.table,
                rows = rows.join(", "),
            ))
            .await?;
            conn.query_drop("COMMIT").await?;
            Ok::<_, mysql_async::Error>(Claim { epoch, cleared })
        };
        let r = run.await;
        if r.is_err() {
            let _ = conn.query_drop("ROLLBACK").await;
        }
        r
    }

    pub async fn create(&self, conn: &mut Conn) -> Result<(), UnitError> {
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote(&self.schema)
        ))
        .await
        .map_err(|e| down("create the meta schema", &e))?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                id VARCHAR(32) NOT NULL,
                cp_schema VARCHAR(128) NOT NULL,
                cp_table VARCHAR(128) NOT NULL,
                binlog_name VARCHAR(128),
                binlog_pos INT UNSIGNED,
                binlog_gtid TEXT,
                exit_safe_binlog_name VARCHAR(128) DEFAULT '',
                exit_safe_binlog_pos INT UNSIGNED DEFAULT 0,
                exit_safe_binlog_gtid TEXT,
                table_info JSON NOT NULL,
                is_global BOOLEAN,
                create_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
                UNIQUE KEY uk_id_schema_table (id, cp_schema, cp_table)
            )",
            self.table
        ))
        .await
        .map_err(|e| down("create the checkpoint table", &e))
    }

    pub async fn load(&self, conn: &mut Conn) -> Result<Option<Saved>, UnitError> {
        let rows: Vec<CheckpointRow> = conn
            .query(format!(
                "SELECT cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, CAST(table_info AS CHAR), exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid FROM {} WHERE id = {}",
                self.table,
                lit(&self.id)
            ))
            .await
            .map_err(|e| down("read the checkpoint", &e))?;
        let mut global = None;
        let mut furthest: Option<Position> = None;
        let mut queues: BTreeMap<usize, BTreeMap<usize, Applied>> = BTreeMap::new();
        let mut ddl_in_flight = None;
        let mut ddl_mark = None;
        let mut tables = BTreeMap::new();
        let mut points = BTreeMap::new();
        let mut global_exit: Option<Position> = None;
        for (schema, table, name, pos, gtid, info, exit_name, exit_pos, exit_gtid) in rows {
            let (Some(name), Some(pos)) = (name, pos) else {
                continue;
            };
            if name.is_empty() {
                // A queue row created by a claim or emptied by a reset: no position yet.
                continue;
            }
            let p = Position { file: name, pos };
            if schema.is_empty() && table.is_empty() {
                if let (Some(n), Some(ep)) = (exit_name, exit_pos)
                    && !n.is_empty()
                {
                    global_exit = Some(Position { file: n, pos: ep });
                }
                global = Some((p, gtid.unwrap_or_default()));
            } else if schema.is_empty() && table.starts_with("#queue-") {
                if let Some((i, n)) = parse_queue_name(&table) {
                    queues.entry(n).or_default().insert(
                        i,
                        Applied {
                            pos: Some(p.clone()),
                            marks: Marks::parse(gtid.as_deref().unwrap_or_default()),
                        },
                    );
                }
                if furthest.as_ref().is_none_or(|f| p > *f) {
                    furthest = Some(p);
                }
            } else if schema.is_empty() && table == "#ddl" {
                ddl_in_flight = Some(p);
                ddl_mark = exit_gtid.as_deref().and_then(Mark::parse);
            } else if !schema.is_empty() {
                let t = TableName::new(schema, table);
                points.insert(t.clone(), p);
                tables.insert(t, info.unwrap_or_default());
            }
        }
        Ok(global.map(|(g, gtid)| {
            // The saved safe-mode exit point (e.g. the end of a dump's last snapshot) and the
            // furthest any queue got: safe mode lasts until both are passed.
            let exit = match (furthest, global_exit) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Saved {
                exit_safe: exit.filter(|f| *f > g),
                table_points: points.into_iter().filter(|(_, p)| *p > g).collect(),
                global: g,
                gtid,
                queues,
                ddl_in_flight,
                ddl_mark,
                tables,
            }
        }))
    }

    /// The statement that saves the global point.
    pub fn save_global_sql(
        &self,
        p: &Position,
        gtid: &str,
        exit_safe: Option<&Position>,
    ) -> String {
        let (en, ep) = exit_safe
            .map(|e| (e.file.as_str(), e.pos))
            .unwrap_or(("", 0));
        format!(
            "INSERT INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid, table_info, is_global) \
             VALUES ({id}, '', '', {n}, {p}, {g}, {en}, {ep}, '', '{{}}', 1) \
             ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), binlog_gtid = VALUES(binlog_gtid), \
             exit_safe_binlog_name = VALUES(exit_safe_binlog_name), exit_safe_binlog_pos = VALUES(exit_safe_binlog_pos)",
            t = self.table,
            id = lit(&self.id),
            n = lit(&p.file),
            p = p.pos,
            g = lit(gtid),
            en = lit(en),
            ep = ep,
        )
    }

    pub async fn save_global(
        &self,
        conn: &mut Conn,
        p: &Position,
        gtid: &str,
        exit_safe: Option<&Position>,
    ) -> Result<(), UnitError> {
        self.save(
            conn,
            &SavePoint {
                global: Some(p),
                gtid,
                exit_safe,
                ..SavePoint::default()
            },
        )
        .await
    }

    /// Saves a checkpoint in one guarded transaction: the global point, the changed tables'
    /// structures and, when asked, the end of a DDL in flight.
    pub async fn save(&self, conn: &mut Conn, sp: &SavePoint<'_>) -> Result<(), UnitError> {
        let mut sql = String::from("BEGIN;\n");
        if let Some(g) = sp.global {
            sql.push_str(&self.save_global_sql(g, sp.gtid, sp.exit_safe));
            sql.push_str(";\n");
        }
        for (t, info) in &sp.tables {
            match info {
                Some(json) => {
                    let own = sp
                        .points
                        .and_then(|m| m.get(t))
                        .filter(|p| sp.global.is_none_or(|g| *p > g));
                    let (n, p) = own
                        .or(sp.global)
                        .map(|g| (g.file.as_str(), g.pos))
                        .unwrap_or(("", 0));
                    sql.push_str(&format!(
                        "INSERT INTO {tb} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info, is_global) \
                         VALUES ({id}, {s}, {t}, {n}, {p}, '', {j}, 0) \
                         ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), table_info = VALUES(table_info);\n",
                        tb = self.table,
                        id = lit(&self.id),
                        s = lit(&t.schema),
                        t = lit(&t.table),
                        n = lit(n),
                        j = lit(json),
                    ));
                }
                None => sql.push_str(&format!(
                    "DELETE FROM {tb} WHERE id = {id} AND cp_schema = {s} AND cp_table = {t};\n",
                    tb = self.table,
                    id = lit(&self.id),
                    s = lit(&t.schema),
                    t = lit(&t.table),
                )),
            }
        }
        if sp.clear_ddl {
            sql.push_str(&format!(
                "DELETE FROM {} WHERE id = {} AND cp_schema = '' AND cp_table = '#ddl';\n",
                self.table,
                lit(&self.id)
            ));
        }
        self.run_guarded(conn, sql, "save the checkpoint").await
    }

    /// DM's `<meta-schema>.<task>_syncer_sharding_meta` (pessimistic shard DDL).
    pub fn sharding_meta_table(&self) -> String {
        format!(
            "{}.{}",
            quote(&self.schema),
            quote(&format!("{}_syncer_sharding_meta", self.task))
        )
    }

    /// Creates the sharding meta table (DM's columns).
    pub async fn create_sharding_meta(&self, conn: &mut Conn) -> Result<(), UnitError> {
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                source_id VARCHAR(32) NOT NULL COMMENT 'replica source id, defined in task.yaml',
                target_table_id VARCHAR(144) NOT NULL,
                source_table_id VARCHAR(144) NOT NULL,
                active_index INT,
                is_global BOOLEAN,
                data JSON,
                create_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                update_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
                UNIQUE KEY uk_source_id_table_id_source (source_id, target_table_id, source_table_id)
            )",
            self.sharding_meta_table()
        ))
        .await
        .map_err(|e| down("create the sharding meta table", &e))
    }

    /// Writes `target`'s sharding meta rows (DM's upsert), or deletes them when `rows` is
    /// empty (the round resolved).
    pub async fn save_sharding_meta(
        &self,
        conn: &mut Conn,
        target: &str,
        rows: &[super::shard::MetaRow],
    ) -> Result<(), UnitError> {
        let t = self.sharding_meta_table();
        let sql = if rows.is_empty() {
            format!(
                "DELETE FROM {t} WHERE source_id = {} AND target_table_id = {}",
                lit(&self.id),
                lit(target)
            )
        } else {
            let values: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "({}, {}, {}, 0, {}, {})",
                        lit(&r.source_id),
                        lit(&r.target_table_id),
                        lit(&r.source_table_id),
                        r.is_global,
                        lit(&r.data)
                    )
                })
                .collect();
            format!(
                "INSERT INTO {t} (source_id, target_table_id, source_table_id, active_index, is_global, data) VALUES {} \
                 ON DUPLICATE KEY UPDATE data = VALUES(data), active_index = VALUES(active_index)",
                values.join(", ")
            )
        };
        conn.query_drop(sql)
            .await
            .map_err(|e| down("save the sharding meta", &e))
    }

    /// The stream moved to another server (a failover followed by GTID) and starts there at
    /// `p`: the queue rows and the DDL marker take `p` as their position (nothing past it on
    /// the new server is applied yet; what is before it lies inside the checkpoint's GTID set)
    /// and keep their marks, which say what was applied past the global point.
    pub async fn rebase(&self, conn: &mut Conn, p: &Position) -> Result<(), UnitError> {
        let stmt = format!(
            "BEGIN;\nUPDATE {t} SET binlog_name = {n}, binlog_pos = {pos} \
             WHERE id = {id} AND cp_schema = '' AND binlog_name <> '' AND (cp_table LIKE '#queue-%' OR cp_table = '#ddl');\n",
            t = self.table,
            id = lit(&self.id),
            n = lit(&p.file),
            pos = p.pos,
        );
        self.run_guarded(conn, stmt, "rebase the checkpoint on the new upstream")
            .await
    }

    /// Records a DDL about to run downstream (its event's end position, GTID mark and text).
    pub async fn begin_ddl(
        &self,
        conn: &mut Conn,
        at: &Position,
        mark: Option<&Mark>,
        sql: &str,
    ) -> Result<(), UnitError> {
        let text: String = sql.chars().take(4000).collect();
        let mark = mark.map(Mark::to_string).unwrap_or_default();
        let stmt = format!(
            "BEGIN;\nINSERT INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_gtid, table_info, is_global) \
             VALUES ({id}, '', '#ddl', {n}, {p}, {q}, {m}, '{{}}', 0) \
             ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), binlog_gtid = VALUES(binlog_gtid), exit_safe_binlog_gtid = VALUES(exit_safe_binlog_gtid);\n",
            t = self.table,
            id = lit(&self.id),
            n = lit(&at.file),
            p = at.pos,
            q = lit(&text),
            m = lit(&mark),
        );
        self.run_guarded(conn, stmt, "record the DDL in flight")
            .await
    }

    async fn run_guarded(
        &self,
        conn: &mut Conn,
        mut sql: String,
        what: &str,
    ) -> Result<(), UnitError> {
        let guard = self.guard_sql();
        if !guard.is_empty() {
            sql.push_str(&guard);
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT");
        match conn.query_drop(&sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.query_drop("ROLLBACK").await;
                Err(owner_error(what, &e, self.epoch))
            }
        }
    }

    /// The statement an apply queue runs last inside each of its transactions: its position,
    /// which only moves forward (a replay after a crash must not lower what an earlier run
    /// committed), its GTID marks (`marks`, kept monotone by the queue itself), and — once
    /// claimed — the owner check: the row must still carry this run's
    /// epoch, or the statement fails with [`GUARD_FAILED`] and the transaction is refused.
    pub fn queue_sql(&self, queue: usize, of: usize, p: &Position, marks: &str) -> String {
        let check = if self.epoch == 0 {
            String::new()
        } else {
            format!(
                "exit_safe_binlog_pos = IF(exit_safe_binlog_pos = {e}, {e}, (SELECT 1 UNION ALL SELECT 2)), ",
                e = self.epoch
            )
        };
        format!(
            "INSERT INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_pos, table_info, is_global) \
             VALUES ({id}, '', '#queue-{queue}/{of}', {n}, {p}, {m}, {e}, '{{}}', 0) \
             ON DUPLICATE KEY UPDATE {check}\
             binlog_gtid = VALUES(binlog_gtid), \
             binlog_name = IF(@dmrs_adv := ((VALUES(binlog_name), VALUES(binlog_pos)) > (binlog_name, binlog_pos)), VALUES(binlog_name), binlog_name), \
             binlog_pos = IF(@dmrs_adv, VALUES(binlog_pos), binlog_pos)",
            t = self.table,
            id = lit(&self.id),
            n = lit(&p.file),
            p = p.pos,
            m = lit(marks),
            e = self.epoch,
        )
    }
}
