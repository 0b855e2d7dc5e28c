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

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::binlog::Position;
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

/// cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid
type CheckpointRow = (String, String, Option<String>, Option<u64>, Option<String>);

#[derive(Debug, Clone)]
pub struct CheckpointTable {
    /// `` `meta`.`task_syncer_checkpoint` ``
    pub table: String,
    pub schema: String,
    /// The row id: the source id.
    pub id: String,
}

/// What a previous run left.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub global: Position,
    pub gtid: String,
    /// The furthest position any apply queue committed, when past the global point.
    pub exit_safe: Option<Position>,
    /// Per queue count N: the last position each queue I of N committed.
    pub queues: std::collections::BTreeMap<usize, std::collections::BTreeMap<usize, Position>>,
}

/// `#queue-I/N` → (I, N).
fn parse_queue_name(t: &str) -> Option<(usize, usize)> {
    let (i, n) = t.strip_prefix("#queue-")?.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

fn down(what: &str, e: &mysql_async::Error) -> UnitError {
    UnitError::from_mysql("downstream", what, e)
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
            id: source_id.to_string(),
        }
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

    /// Forgets this source's checkpoint (start-task --remove-meta).
    pub async fn clear(&self, conn: &mut Conn) -> Result<(), UnitError> {
        conn.query_drop(format!(
            "DELETE FROM {} WHERE id = {}",
            self.table,
            lit(&self.id)
        ))
        .await
        .map_err(|e| down("remove the checkpoint", &e))
    }

    pub async fn load(&self, conn: &mut Conn) -> Result<Option<Saved>, UnitError> {
        let rows: Vec<CheckpointRow> = conn
            .query(format!(
                "SELECT cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid FROM {} WHERE id = {}",
                self.table,
                lit(&self.id)
            ))
            .await
            .map_err(|e| down("read the checkpoint", &e))?;
        let mut global = None;
        let mut furthest: Option<Position> = None;
        let mut queues: std::collections::BTreeMap<
            usize,
            std::collections::BTreeMap<usize, Position>,
        > = Default::default();
        for (schema, table, name, pos, gtid) in rows {
            let (Some(name), Some(pos)) = (name, pos) else {
                continue;
            };
            let p = Position { file: name, pos };
            if schema.is_empty() && table.is_empty() {
                global = Some((p, gtid.unwrap_or_default()));
            } else if schema.is_empty() && table.starts_with("#queue-") {
                if let Some((i, n)) = parse_queue_name(&table) {
                    queues.entry(n).or_default().insert(i, p.clone());
                }
                if furthest.as_ref().is_none_or(|f| p > *f) {
                    furthest = Some(p);
                }
            }
        }
        Ok(global.map(|(g, gtid)| Saved {
            exit_safe: furthest.filter(|f| *f > g),
            global: g,
            gtid,
            queues,
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
        conn.query_drop(self.save_global_sql(p, gtid, exit_safe))
            .await
            .map_err(|e| down("save the checkpoint", &e))
    }

    /// The statement an apply queue runs inside each of its transactions. The position only
    /// moves forward: a replay after a crash must not lower what an earlier run committed.
    pub fn queue_sql(&self, queue: usize, of: usize, p: &Position) -> String {
        format!(
            "INSERT INTO {t} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info, is_global) \
             VALUES ({id}, '', '#queue-{queue}/{of}', {n}, {p}, '', '{{}}', 0) \
             ON DUPLICATE KEY UPDATE \
             binlog_gtid = IF(@dmrs_adv := ((VALUES(binlog_name), VALUES(binlog_pos)) > (binlog_name, binlog_pos)), '', binlog_gtid), \
             binlog_name = IF(@dmrs_adv, VALUES(binlog_name), binlog_name), \
             binlog_pos = IF(@dmrs_adv, VALUES(binlog_pos), binlog_pos)",
            t = self.table,
            id = lit(&self.id),
            n = lit(&p.file),
            p = p.pos,
        )
    }
}
