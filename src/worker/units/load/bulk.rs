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
    /// The rows in LOAD DATA's text ([`super::tsv::convert`]); handed back with its capacity
    /// (the caller reuses it for the next statement).
    pub data: &'a mut Vec<u8>,
}

/// The size of the pieces the rows are sent in. The driver copies each piece into a pooled
/// buffer and then into its frame: in one multi-MiB piece, both were fresh allocations, and so
/// freshly faulted, zeroed (huge) pages, on every statement.
const PIECE: usize = 64 << 10;

/// `data` taken as [`Bytes`] (no copy), twice: one for [`piece_stream`], one for [`reclaim`].
fn pieces(data: &mut Vec<u8>) -> (Bytes, Bytes) {
    let whole = Bytes::from(std::mem::take(data));
    (whole.clone(), whole)
}

/// `whole` as a stream of [`PIECE`]-sized slices of it (no copy).
fn piece_stream(whole: Bytes) -> futures_util::stream::BoxStream<'static, std::io::Result<Bytes>> {
    let len = whole.len();
    futures_util::stream::iter(
        (0..len)
            .step_by(PIECE)
            .map(move |i| Ok(whole.slice(i..(i + PIECE).min(len)))),
    )
    .boxed()
}

/// The buffer of [`pieces`] back, empty, with its capacity — when no slice of it is alive
/// any more (else a new one: the next statement allocates).
fn reclaim(keep: Bytes) -> Vec<u8> {
    match keep.try_into_mut() {
        Ok(m) => {
            let mut v = Vec::from(m);
            v.clear();
            v
        }
        Err(_) => Vec::new(),
    }
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
    let (keep, whole) = pieces(data);
    conn.set_infile_handler(async move { Ok(piece_stream(whole)) });
    let r = conn.query_drop(&q).await;
    *data = reclaim(keep);
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
    fn pieces_cover_the_rows_and_the_buffer_comes_back() {
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17] {
            let mut data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            data.reserve(100);
            let want = data.clone();
            let (cap, ptr) = (data.capacity(), data.as_ptr());
            let (keep, whole) = pieces(&mut data);
            assert!(data.is_empty(), "taken");
            let stream = piece_stream(whole);
            let got: Vec<Bytes> = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(stream.map(|r| r.expect("piece")).collect::<Vec<_>>());
            assert!(
                got.iter().all(|b| !b.is_empty() && b.len() <= PIECE),
                "{len}"
            );
            assert_eq!(got.concat(), want, "{len}");
            drop(got);
            let back = reclaim(keep);
            assert!(back.is_empty());
            if len > 0 {
                assert_eq!(
                    (back.capacity(), back.as_ptr()),
                    (cap, ptr),
                    "the same allocation comes back ({len})"
                );
            }
        }
    }

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
