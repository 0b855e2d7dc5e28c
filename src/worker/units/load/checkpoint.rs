//! The loader checkpoint, `` `<meta-schema>`.`<task>_loader_checkpoint` `` in the downstream,
//! with DM's columns (DM's own loader reads and writes the same table).
//!
//! One row per data file (`id` = source-id, `filename` = the file's name, `cp_schema` /
//! `cp_table` = the upstream table, `end_pos` = the file's size, `offset` = the byte offset
//! after the last statement committed). The row is inserted when the file is first opened;
//! every data statement then runs in one transaction with the row's update
//! ([`LoaderCheckpoint::advance_sql`]), which only matches the row at the offset the statement
//! starts from and is followed by a guard ([`GUARD`]) that fails the transaction otherwise. So
//! a load resumes after a pause, a stop or a kill -9 at the exact byte offset, and an older run
//! whose statement is still in flight cannot commit a statement twice.
//!
//! dm-rs keeps two more rows per source, with a `#` file name DM's loader never reads:
//! - `#dump`: `cp_schema` = the `dump_id` of the dump ([`crate::worker::units::full::DumpState`])
//!   whose files the rows belong to; a different dump while rows are unfinished is DM's 34018.
//! - `#reset`: `cp_schema` = the `--remove-meta` token last honoured: a start with a new token
//!   deletes the source's rows once (a worker restart of the same start keeps them).

use std::collections::BTreeMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::timed;
use crate::worker::error::{UnitError, code};
use crate::worker::units::sync::checkpoint::{lit as plain_lit, quote};

/// A string literal read as utf8mb4 whatever the session's charset (a data file's head may
/// have run `SET NAMES binary` on the connection).
fn lit(s: &str) -> String {
    format!("_utf8mb4{}", plain_lit(s))
}

/// The guard that follows [`LoaderCheckpoint::advance_sql`]: fails with MySQL error 1242
/// ("Subquery returns more than 1 row") unless the update matched the row.
pub const GUARD: &str = "SELECT IF(ROW_COUNT() = 1, 1, (SELECT 1 UNION ALL SELECT 2))";
/// The MySQL error a failed [`GUARD`] raises.
pub const GUARD_FAILED: u16 = 1242;

const DUMP_ROW: &str = "#dump";
const RESET_ROW: &str = "#reset";
/// Written when the load has finished every file (its `cp_schema` is the metadata's binlog
/// location as query-status shows it): a later run finishes at once, without the directory.
const DONE_ROW: &str = "#done";
/// `#keys/<schema file>`: the table created from it waits for its deferred indexes (offset 0)
/// or has them (offset 1).
const KEYS_ROW: &str = "#keys/";

/// A data file's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub schema: String,
    pub table: String,
    pub offset: u64,
    pub end_pos: u64,
}

impl FileRow {
    pub fn finished(&self) -> bool {
        self.offset >= self.end_pos
    }
}

/// What the checkpoint holds for a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// File name → row.
    pub files: BTreeMap<String, FileRow>,
    /// The `#dump` row's dump id.
    pub dump_id: Option<String>,
    /// The `#reset` row's token.
    pub reset: Option<String>,
    /// The `#done` row: the load finished (its text: `metaBinlog` then a tab and
    /// `metaBinlogGTID`).
    pub done: Option<String>,
}

impl Saved {
    /// Some data file is not finished.
    pub fn unfinished(&self) -> bool {
        self.files.values().any(|r| !r.finished())
    }
}

/// The checkpoint table of one task and source.
#[derive(Debug, Clone)]
pub struct LoaderCheckpoint {
    /// `` `meta`.`task_loader_checkpoint` ``
    pub table: String,
    pub schema: String,
    pub id: String,
}

fn down(what: &str, e: &mysql_async::Error) -> UnitError {
    UnitError::from_mysql("downstream", what, e)
}

impl LoaderCheckpoint {
    pub fn new(meta_schema: &str, task: &str, source_id: &str) -> LoaderCheckpoint {
        LoaderCheckpoint {
            table: format!(
                "{}.{}",
                quote(meta_schema),
                quote(&format!("{task}_loader_checkpoint"))
            ),
            schema: meta_schema.to_string(),
            id: source_id.to_string(),
        }
    }

    pub async fn create(&self, conn: &mut Conn) -> Result<(), UnitError> {
        timed(
            "create the meta schema",
            conn.query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                quote(&self.schema)
            )),
        )
        .await?;
        timed(
            "create the loader checkpoint table",
            conn.query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {} (
                    id char(32) NOT NULL,
                    filename varchar(255) NOT NULL,
                    cp_schema varchar(128) NOT NULL,
                    cp_table varchar(128) NOT NULL,
                    `offset` bigint NOT NULL,
                    end_pos bigint NOT NULL,
                    create_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    update_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
                    UNIQUE KEY uk_id_f (id, filename)
                ) DEFAULT CHARSET = utf8mb4",
                self.table
            )),
        )
        .await
    }

    /// Every row of the source; `None` when the table (or the meta schema) does not exist.
    pub async fn read(&self, conn: &mut Conn) -> Result<Option<Saved>, UnitError> {
        let q = format!(
            "SELECT filename, cp_schema, cp_table, `offset`, end_pos FROM {} WHERE id = {}",
            self.table,
            lit(&self.id)
        );
        let rows: Vec<(String, String, String, i64, i64)> =
            match tokio::time::timeout(super::QUERY_TIMEOUT, conn.query(q)).await {
                Ok(Ok(r)) => r,
                Ok(Err(mysql_async::Error::Server(e))) if e.code == 1146 || e.code == 1049 => {
                    return Ok(None);
                }
                Ok(Err(e)) => return Err(down("read the loader checkpoint", &e)),
                Err(_) => return Err(super::timeout_error("read the loader checkpoint")),
            };
        let mut saved = Saved::default();
        for (file, schema, table, offset, end_pos) in rows {
            match file.as_str() {
                DUMP_ROW => saved.dump_id = Some(schema),
                RESET_ROW => saved.reset = Some(schema),
                DONE_ROW => saved.done = Some(schema),
                f if f.starts_with('#') => {}
                _ => {
                    saved.files.insert(
                        file,
                        FileRow {
                            schema,
                            table,
                            offset: offset.max(0) as u64,
                            end_pos: end_pos.max(0) as u64,
                        },
                    );
                }
            }
        }
        Ok(Some(saved))
    }

    /// Fresh unless the load has finished (the `#done` row), counting a pending
    /// `--remove-meta` (a `reset` token not yet honoured) as fresh. Unlike DM's `IsFreshTask`
    /// (any data file row), a load that has only begun is fresh: it runs beside its dump,
    /// which must run first to finish (or re-announce) the files; the load then continues
    /// from its rows.
    pub async fn is_fresh(&self, conn: &mut Conn, reset: Option<&str>) -> Result<bool, UnitError> {
        let Some(saved) = self.read(conn).await? else {
            return Ok(true);
        };
        if let Some(t) = reset
            && saved.reset.as_deref() != Some(t)
        {
            return Ok(true);
        }
        Ok(saved.done.is_none())
    }

    /// Records that every file is loaded (`meta`: what query-status shows as `metaBinlog`,
    /// a tab, `metaBinlogGTID`).
    pub async fn mark_done(&self, conn: &mut Conn, meta: &str) -> Result<(), UnitError> {
        timed(
            "record the finished load in the loader checkpoint",
            conn.query_drop(format!(
                "INSERT INTO {t} (id, filename, cp_schema, cp_table, `offset`, end_pos) \
                 VALUES ({id}, '{DONE_ROW}', {m}, '', 1, 1) \
                 ON DUPLICATE KEY UPDATE cp_schema = VALUES(cp_schema)",
                t = self.table,
                id = lit(&self.id),
                m = lit(meta)
            )),
        )
        .await
    }

    /// Honours a `--remove-meta` start once per token: deletes the source's rows and records
    /// the token. Returns true when it deleted.
    pub async fn apply_reset(
        &self,
        conn: &mut Conn,
        token: Option<&str>,
    ) -> Result<bool, UnitError> {
        let Some(token) = token else {
            return Ok(false);
        };
        let id = lit(&self.id);
        let t = &self.table;
        let run = async {
            conn.query_drop("BEGIN").await?;
            let old: Option<String> = conn
                .query_first(format!(
                    "SELECT cp_schema FROM {t} WHERE id = {id} AND filename = '{RESET_ROW}' FOR UPDATE"
                ))
                .await?;
            if old.as_deref() == Some(token) {
                conn.query_drop("COMMIT").await?;
                return Ok(false);
            }
            conn.query_drop(format!("DELETE FROM {t} WHERE id = {id}"))
                .await?;
            conn.query_drop(format!(
                "INSERT INTO {t} (id, filename, cp_schema, cp_table, `offset`, end_pos) \
                 VALUES ({id}, '{RESET_ROW}', {tok}, '', 0, 0)",
                tok = lit(token)
            ))
            .await?;
            conn.query_drop("COMMIT").await?;
            Ok::<bool, mysql_async::Error>(true)
        };
        match tokio::time::timeout(super::QUERY_TIMEOUT, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(down("clear the loader checkpoint (--remove-meta)", &e)),
            Err(_) => Err(super::timeout_error(
                "clear the loader checkpoint (--remove-meta)",
            )),
        }
    }

    /// Records (or checks) the dump the rows belong to: rows of unfinished files from another
    /// dump are DM's 34018.
    pub async fn check_dump(
        &self,
        conn: &mut Conn,
        saved: &Saved,
        dump_id: &str,
    ) -> Result<(), UnitError> {
        match &saved.dump_id {
            Some(old) if old == dump_id => return Ok(()),
            Some(old) if saved.unfinished() => {
                return Err(UnitError::new(
                    code::LOAD_CHECKPOINT_MISMATCH,
                    "internal",
                    format!(
                        "inconsistent checkpoints between loader and target database: the loader checkpoint {} has unfinished files of dump {old}, the dump directory holds dump {dump_id}",
                        self.table
                    ),
                )
                .workaround("The dump was made again since the load started: run `start-task --remove-meta` to load the new dump from the start (truncate the target tables first)."));
            }
            _ => {}
        }
        timed(
            "record the dump in the loader checkpoint",
            conn.query_drop(format!(
                "INSERT INTO {t} (id, filename, cp_schema, cp_table, `offset`, end_pos) \
                 VALUES ({id}, '{DUMP_ROW}', {d}, '', 0, 0) \
                 ON DUPLICATE KEY UPDATE cp_schema = VALUES(cp_schema)",
                t = self.table,
                id = lit(&self.id),
                d = lit(dump_id)
            )),
        )
        .await
    }

    /// Inserts a data file's row (offset 0) unless it exists.
    pub fn open_sql(&self, file: &str, db: &str, table: &str, size: u64) -> String {
        format!(
            "INSERT INTO {t} (id, filename, cp_schema, cp_table, `offset`, end_pos) \
             VALUES ({id}, {f}, {d}, {tb}, 0, {size}) ON DUPLICATE KEY UPDATE id = id",
            t = self.table,
            id = lit(&self.id),
            f = lit(file),
            d = lit(db),
            tb = lit(table),
        )
    }

    /// Records that the table created from schema file `file` (as `db`.`table` downstream)
    /// still needs its deferred secondary indexes (a `#keys/<file>` row, offset 0).
    pub fn keys_pending_sql(&self, file: &str, db: &str, table: &str) -> String {
        format!(
            "INSERT INTO {t} (id, filename, cp_schema, cp_table, `offset`, end_pos) \
             VALUES ({id}, {f}, {d}, {tb}, 0, 1) ON DUPLICATE KEY UPDATE id = id",
            t = self.table,
            id = lit(&self.id),
            f = lit(&format!("{KEYS_ROW}{file}")),
            d = lit(db),
            tb = lit(table),
        )
    }

    /// The tables whose deferred indexes are not added yet: (schema file, target db, target
    /// table).
    pub async fn keys_pending(
        &self,
        conn: &mut Conn,
    ) -> Result<Vec<(String, String, String)>, UnitError> {
        let rows: Vec<(String, String, String)> = timed(
            "read the loader checkpoint's deferred indexes",
            conn.query(format!(
                "SELECT filename, cp_schema, cp_table FROM {} WHERE id = {} AND filename LIKE '{KEYS_ROW}%' AND `offset` = 0",
                self.table,
                lit(&self.id)
            )),
        )
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(f, d, t)| Some((f.strip_prefix(KEYS_ROW)?.to_string(), d, t)))
            .collect())
    }

    /// Marks a table's deferred indexes as added.
    pub fn keys_done_sql(&self, file: &str) -> String {
        format!(
            "UPDATE {t} SET `offset` = 1 WHERE id = {id} AND filename = {f}",
            t = self.table,
            id = lit(&self.id),
            f = lit(&format!("{KEYS_ROW}{file}")),
        )
    }

    /// Moves a file's offset from `from` to `to`; matches no row unless the offset is still
    /// `from` (follow it with [`GUARD`]).
    pub fn advance_sql(&self, file: &str, from: u64, to: u64) -> String {
        format!(
            "UPDATE {t} SET `offset` = {to} WHERE id = {id} AND filename = {f} AND `offset` = {from}",
            t = self.table,
            id = lit(&self.id),
            f = lit(file),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_dm_columns() {
        let c = LoaderCheckpoint::new("dm_meta", "t1", "mysql-01");
        assert_eq!(c.table, "`dm_meta`.`t1_loader_checkpoint`");
        assert_eq!(
            c.advance_sql("db.t.000000000.sql", 10, 20),
            "UPDATE `dm_meta`.`t1_loader_checkpoint` SET `offset` = 20 WHERE id = _utf8mb4'mysql-01' AND filename = _utf8mb4'db.t.000000000.sql' AND `offset` = 10"
        );
        assert!(c.open_sql("a'b.t.sql", "a'b", "t", 99).contains(
            "VALUES (_utf8mb4'mysql-01', _utf8mb4'a''b.t.sql', _utf8mb4'a''b', _utf8mb4't', 0, 99)"
        ));
    }

    #[test]
    fn unfinished_means_some_offset_below_its_end() {
        let row = |o, e| FileRow {
            schema: "d".into(),
            table: "t".into(),
            offset: o,
            end_pos: e,
        };
        let mut s = Saved::default();
        assert!(!s.unfinished());
        s.files.insert("a".into(), row(5, 5));
        assert!(!s.unfinished());
        s.files.insert("b".into(), row(0, 5));
        assert!(s.unfinished());
    }
}
