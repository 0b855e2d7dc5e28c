//! The fast path of a data statement: the dumped INSERT's rows sent as `LOAD DATA LOCAL INFILE`
//! (converted by [`super::tsv`]) in the same transaction as the loader checkpoint's update, so
//! the server does not parse the rows as SQL (1.3–1.4× the rows per second of the same
//! INSERTs on MariaDB; see bench/README.md).
//!
//! LOAD DATA stands in for an INSERT only where it stores the same values:
//! - the target table's columns are all of types whose text LOAD DATA stores as an INSERT of
//!   the same literal does ([`fast_type`]; not BIT, spatial types, INET4/INET6/UUID);
//! - the statement is a plain `INSERT INTO` of dumped values ([`super::tsv`]);
//! - the session's character set is known from the file (`SET NAMES`); hex literals only on a
//!   `binary` session (their bytes are not converted, as LOAD DATA's would be otherwise);
//! - the server ends the LOAD DATA without a warning and with every row inserted. A LOCAL load
//!   turns errors into warnings (a duplicate key, a bad value, a NULL in a NOT NULL column), so
//!   a warning or an error rolls the transaction back and the statement runs as the INSERT it
//!   is, with the INSERT's errors (DM's codes and texts) and the INSERT's result.
//!
//! A server that refuses LOCAL INFILE (`local_infile = 0`, error 1148/4166) turns the fast path
//! off for the run. `DMRS_LOAD_DATA=0` in the worker's environment turns it off altogether.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::tsv::Rows;

/// Whether the fast path is on, and what it did (shared by a run's file tasks).
#[derive(Debug)]
pub struct Bulk {
    enabled: AtomicBool,
    /// Statements loaded by LOAD DATA.
    pub loaded: AtomicU64,
    /// Statements tried as LOAD DATA that ran as INSERTs after all.
    pub fell_back: AtomicU64,
}

impl Bulk {
    /// On unless `DMRS_LOAD_DATA=0`.
    pub fn from_env() -> Bulk {
        let off = std::env::var("DMRS_LOAD_DATA").is_ok_and(|v| v.trim() == "0");
        Bulk {
            enabled: AtomicBool::new(!off),
            loaded: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn disable(&self) {
        if self.enabled.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "the downstream refuses LOAD DATA LOCAL INFILE (local_infile = 0): data files are loaded as INSERT statements"
            );
        }
    }
}

/// A column type (information_schema `DATA_TYPE`) whose values LOAD DATA stores as an INSERT
/// of the dumped literal does.
pub fn fast_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "numeric"
            | "float"
            | "double"
            | "real"
            | "char"
            | "varchar"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "binary"
            | "varbinary"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "date"
            | "datetime"
            | "timestamp"
            | "time"
            | "year"
            | "enum"
            | "set"
            | "json"
    )
}

/// Whether every column of the downstream table `db`.`table` has a [`fast_type`]. A failed
/// query (no such table yet, a server without information_schema) says no: the INSERT path
/// reports whatever is wrong.
pub async fn table_is_fast(conn: &mut Conn, db: &str, table: &str) -> bool {
    use crate::worker::units::sync::checkpoint::lit;
    let q = format!(
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
        lit(db),
        lit(table)
    );
    match tokio::time::timeout(super::QUERY_TIMEOUT, conn.query::<String, _>(q)).await {
        Ok(Ok(types)) => !types.is_empty() && types.iter().all(|t| fast_type(t)),
        _ => false,
    }
}

/// What `SET NAMES` in a session statement of a dump file does to the session's character set:
/// `Some(Some(cs))` it is now `cs`; `Some(None)` it changed in a way not followed (the fast
/// path stops for the file); `None` the statement does not touch it.
pub fn session_charset(stmt: &[u8]) -> Option<Option<String>> {
    let text = String::from_utf8_lossy(stmt).to_ascii_lowercase();
    if !text.contains("names") && !text.contains("character") && !text.contains("charset") {
        return None;
    }
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';' || c == '*' || c == '/' || c == '!')
        .filter(|w| !w.is_empty())
        .collect();
    // `/*!40101 SET NAMES binary*/` → ["40101", "set", "names", "binary"]
    let names = words.iter().position(|w| *w == "names");
    match names {
        Some(p)
            if p > 0
                && words[p - 1] == "set"
                && words.len() == p + 2
                && words[p + 1]
                    .trim_matches(|c| c == '\'' || c == '"' || c == '`')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Some(Some(
                words[p + 1]
                    .trim_matches(|c| c == '\'' || c == '"' || c == '`')
                    .to_string(),
            ))
        }
        _ => Some(None),
    }
}

/// How a fast-path attempt ended.
pub enum Outcome {
    /// The rows and the checkpoint are committed.
    Committed,
    /// Rolled back (or never begun): run the statement as its INSERT.
    Insert,
}

/// One data statement's rows for [`load`].
pub struct Batch<'a> {
    /// `BEGIN;` + the loader checkpoint's update and guard.
    pub begin: &'a str,
    /// The target table, quoted and qualified.
    pub into: &'a str,
    /// The session's character set (the LOAD DATA's `CHARACTER SET`).
    pub charset: &'a str,
    pub rows: &'a Rows,
    /// The statement's column list, parentheses included.
    pub columns: Option<&'a [u8]>,
    /// The rows in LOAD DATA's text ([`super::tsv::convert`]).
    pub data: Vec<u8>,
}

/// One data statement as LOAD DATA: `begin` runs first, then the LOAD DATA of the rows, then
/// COMMIT when the server inserted every row without a warning; otherwise ROLLBACK and
/// [`Outcome::Insert`]. Errors of `begin` and COMMIT, and of a connection that breaks, are
/// returned as they come.
pub async fn load(
    conn: &mut Conn,
    bulk: &Bulk,
    b: Batch<'_>,
) -> Result<Outcome, mysql_async::Error> {
    let Batch {
        begin,
        into,
        charset,
        rows,
        columns,
        data,
    } = b;
    let mut q = format!(
        "LOAD DATA LOCAL INFILE 'dm-rs-rows' INTO TABLE {into} CHARACTER SET {charset} FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
    );
    if let Some(cols) = columns {
        q.push(' ');
        q.push_str(&String::from_utf8_lossy(cols));
    }
    conn.query_drop(begin).await?;
    let bytes = Bytes::from(data);
    conn.set_infile_handler(async move {
        Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed())
    });
    let r = conn.query_drop(&q).await;
    let clean = match &r {
        Ok(()) => conn.get_warnings() == 0 && conn.affected_rows() == rows.rows,
        Err(mysql_async::Error::Server(s)) => {
            if matches!(s.code, 1148 | 4166 | 2068) {
                bulk.disable();
            }
            false
        }
        Err(_) => {
            // The connection broke (or the driver failed): no ROLLBACK to send.
            return r.map(|_| Outcome::Insert);
        }
    };
    if clean {
        conn.query_drop("COMMIT").await?;
        bulk.loaded.fetch_add(1, Ordering::Relaxed);
        return Ok(Outcome::Committed);
    }
    tracing::debug!(
        result = ?r.as_ref().err().map(|e| e.to_string()),
        warnings = conn.get_warnings(),
        affected = conn.affected_rows(),
        rows = rows.rows,
        "LOAD DATA not clean: rolled back, the statement runs as INSERT"
    );
    conn.query_drop("ROLLBACK").await?;
    bulk.fell_back.fetch_add(1, Ordering::Relaxed);
    Ok(Outcome::Insert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_charset_follows_set_names() {
        let cases: &[(&str, Option<Option<&str>>)] = &[
            ("/*!40101 SET NAMES binary*/", Some(Some("binary"))),
            ("SET NAMES utf8mb4", Some(Some("utf8mb4"))),
            ("SET NAMES 'latin1'", Some(Some("latin1"))),
            ("/*!40014 SET FOREIGN_KEY_CHECKS=0*/", None),
            ("/*!40103 SET TIME_ZONE='+00:00' */", None),
            ("SET NAMES utf8mb4 COLLATE utf8mb4_bin", Some(None)),
            ("SET character_set_client = latin1", Some(None)),
            ("SET CHARACTER SET utf8", Some(None)),
        ];
        for (stmt, want) in cases {
            let got = session_charset(stmt.as_bytes());
            assert_eq!(got, want.map(|w| w.map(str::to_string)), "{stmt:?}");
        }
    }

    #[test]
    fn fast_types_leave_out_bit_spatial_and_mariadb_types() {
        for t in [
            "int", "BIGINT", "varchar", "longblob", "datetime", "enum", "json", "decimal",
        ] {
            assert!(fast_type(t), "{t}");
        }
        for t in [
            "bit", "geometry", "point", "polygon", "inet6", "inet4", "uuid", "vector",
        ] {
            assert!(!fast_type(t), "{t}");
        }
    }
}
