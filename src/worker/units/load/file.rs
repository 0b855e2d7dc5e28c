//! Loading one data file on one connection, statement by statement from its checkpoint
//! offset: each INSERT runs in one transaction with the checkpoint's update and guard
//! (`BEGIN; UPDATE … offset; guard; INSERT …; COMMIT`, one round trip), so what is committed
//! and what the checkpoint says never differ. Where it stores the same values, the INSERT's rows
//! go as `LOAD DATA LOCAL INFILE` in that transaction instead ([`super::bulk`]).

use std::path::PathBuf;
use std::sync::Arc;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{GUARD, GUARD_FAILED, LoaderCheckpoint};
use super::reader::{self, Kind, ReadError, StmtReader, session_prefix};
use super::rewrite::{OnDuplicate, insert_name, replace_name_with, with_duplicate_head};
use super::stats::LoadStats;
use super::{STMT_TIMEOUT, bulk, timeout_error, tsv};
use crate::worker::error::{UnitError, code};
use crate::worker::units::bufpool::BufPool;

/// One data file to load.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The file's name in the dump directory (the checkpoint's `filename`).
    pub name: String,
    pub path: PathBuf,
    /// The upstream table.
    pub db: String,
    pub table: String,
    /// The downstream table (routes applied).
    pub target_db: String,
    pub target_table: String,
    /// The checkpoint's `end_pos` (the file's size).
    pub size: u64,
    /// Where to start (the checkpoint's offset).
    pub offset: u64,
    /// The checkpoint already has the file's row.
    pub has_row: bool,
}

/// Buffers the file tasks hand on to each other, one pool per use (a reader's buffer is
/// [`reader::BUF`] or more, a rows buffer the size of a statement's rows: mixed, a take would
/// often grow the other kind's buffer). At most one of each per running file task exists.
#[derive(Debug, Clone)]
pub struct Bufs {
    /// [`StmtReader`] buffers.
    pub read: BufPool,
    /// LOAD DATA rows buffers.
    pub rows: BufPool,
}

/// Buffers larger than this are not kept (a statement of hundreds of MiB grows one once).
const MAX_CAP: usize = 64 << 20;
/// Nor more than this many of a kind.
const MAX_KEPT: usize = 64;

impl Default for Bufs {
    fn default() -> Bufs {
        let pool = || BufPool::new(0, 1..=MAX_CAP, MAX_KEPT);
        Bufs {
            read: pool(),
            rows: pool(),
        }
    }
}

/// What the file tasks share.
pub struct FileCtx {
    pub ckpt: Arc<LoaderCheckpoint>,
    /// The task's column mappings (None when it has none).
    pub rules: Option<Arc<crate::rules::row::RowRules>>,
    pub stats: Arc<LoadStats>,
    /// The LOAD DATA fast path (bulk.rs).
    pub bulk: Arc<bulk::Bulk>,
    /// Stop after the statement in flight (pause, stop, or the dump stopped).
    pub stop: CancellationToken,
    /// The task's `on-duplicate-logical`.
    pub on_duplicate: OnDuplicate,
    /// Buffers reused from file to file.
    pub bufs: Arc<Bufs>,
}

/// How a file's load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEnd {
    /// Every statement is loaded; the checkpoint's offset is the file's size.
    Finished,
    /// Stopped at a statement boundary (the checkpoint says where).
    Stopped,
}

fn at(job: &FileJob, offset: u64) -> String {
    format!("{}:{offset}", job.name)
}

fn read_error(job: &FileJob, e: ReadError) -> UnitError {
    match e {
        ReadError::BadEnding { offset, .. } => UnitError::new(
            code::LOAD_INVALID_FILE_ENDING,
            "internal",
            format!("invalid dump file ending in {}: {e}", at(job, offset)),
        )
        .workaround(
            "The dump file is truncated or damaged: dump again (`start-task --remove-meta`).",
        ),
        ReadError::TooLarge { offset } => UnitError::new(
            code::LOAD_DISPATCH,
            "internal",
            format!("read {}: {e}", at(job, offset)),
        ),
        ReadError::Io(io) => UnitError::new(
            code::LOAD_DISPATCH,
            "internal",
            format!("read dump file {}: {io}", job.path.display()),
        )
        .workaround("Check that the dump directory is readable and the file exists."),
    }
}

fn exec_error(job: &FileJob, start: u64, end: u64, e: &mysql_async::Error) -> UnitError {
    if let mysql_async::Error::Server(s) = e
        && s.code == GUARD_FAILED
    {
        return UnitError::new(
            code::DB_EXECUTE,
            "downstream",
            format!(
                "load {}: the loader checkpoint of this file moved since this run read it (another run loaded the statement); the load continues from the checkpoint",
                at(job, start)
            ),
        )
        .cause(e)
        .retryable(true);
    }
    UnitError::from_mysql(
        "downstream",
        format!(
            "execute the statement at {} (bytes {start}..{end}) on {}.{}",
            at(job, start),
            super::quote(&job.target_db),
            super::quote(&job.target_table)
        ),
        e,
    )
}

async fn exec_timed(
    conn: &mut Conn,
    what: &str,
    q: &[u8],
) -> Result<(), Result<mysql_async::Error, UnitError>> {
    match tokio::time::timeout(STMT_TIMEOUT, conn.query_drop(q)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ok(e)),
        Err(_) => Err(Err(timeout_error(what))),
    }
}

/// Runs an executable comment of the file's head on the session (`/*!40101 SET NAMES
/// binary*/`); an empty query (a comment with nothing to run here) is fine.
async fn session_stmt(
    conn: &mut Conn,
    job: &FileJob,
    text: &[u8],
    offset: u64,
) -> Result<(), UnitError> {
    match exec_timed(
        conn,
        &format!("run a session statement of {}", at(job, offset)),
        text,
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(Ok(mysql_async::Error::Server(s))) if s.code == 1065 => Ok(()),
        Err(Ok(e)) => Err(UnitError::from_mysql(
            "downstream",
            format!("run the session statement of {}", at(job, offset)),
            &e,
        )),
        Err(Err(t)) => Err(t),
    }
}

/// Per-row rules on this file's rows, as the sync unit applies them to inserted rows: column
/// mappings, then the table's expression filter's `insert-value-expr` (a dumped row is an
/// insert; beyond DM, whose loader applies only the mappings, so rows a filter keeps out of
/// the binlog's inserts are kept out of the copy too). The dumped INSERT is parsed into rows,
/// each row mapped and filtered, and the statement rendered again with the target table's
/// name; `Some(empty)` when every row is filtered out (the checkpoint still advances). `None`:
/// no rule names this table (the statement goes as dumped, only renamed). Errors: DM's 34003
/// (values unparseable) / 34004 (a mapping or filter failed on a row).
async fn apply_row_rules(
    conn: &mut Conn,
    job: &FileJob,
    cx: &FileCtx,
    columns: &mut Option<Vec<String>>,
    stmt: &[u8],
    start: u64,
) -> Result<Option<Vec<u8>>, UnitError> {
    let Some(rules) = cx.rules.as_ref().filter(|r| r.applies(&job.db, &job.table)) else {
        return Ok(None);
    };
    let mut ins = crate::rules::insert_text::parse_insert(stmt).map_err(|e| {
        UnitError::new(
            code::LOAD_PARSE_VALUES,
            "internal",
            format!("parse the values of {}: {e}", at(job, start)),
        )
        .workaround("The dump file is damaged: dump again (`start-task --remove-meta`).")
    })?;
    let cols = match &ins.columns {
        Some(c) => c.clone(),
        None => {
            if columns.is_none() {
                // A dump without column lists: the target table's columns, in order (the
                // table was created from the dumped schema).
                let q = format!(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
                    crate::worker::units::sync::checkpoint::lit(&job.target_db),
                    crate::worker::units::sync::checkpoint::lit(&job.target_table)
                );
                let names: Vec<String> =
                    match tokio::time::timeout(super::QUERY_TIMEOUT, conn.query(q)).await {
                        Ok(Ok(v)) => v,
                        Ok(Err(e)) => {
                            return Err(UnitError::from_mysql(
                                "downstream",
                                format!(
                                    "read the columns of `{}`.`{}`",
                                    job.target_db, job.target_table
                                ),
                                &e,
                            ));
                        }
                        Err(_) => {
                            return Err(super::timeout_error("read the target table's columns"));
                        }
                    };
                *columns = Some(names);
            }
            columns.clone().unwrap_or_default()
        }
    };
    let mut kept = Vec::with_capacity(ins.rows.len());
    for row in std::mem::take(&mut ins.rows) {
        let r = rules.on_insert(&job.db, &job.table, &cols, row).map_err(|e| {
            UnitError::new(
                code::LOAD_COLUMN_MAPPING,
                "internal",
                format!("column mapping / expression filter on {}: {e}", at(job, start)),
            )
            .workaround("Check the column-mappings and expression-filter rules for this table (a partition id needs the value to fit its bits).")
        })?;
        kept.extend(r);
    }
    if kept.is_empty() {
        return Ok(Some(Vec::new()));
    }
    ins.rows = kept;
    ins.schema = Some(job.target_db.clone());
    ins.table = job.target_table.clone();
    let mut text = ins.render().into_bytes();
    while text
        .last()
        .is_some_and(|b| b.is_ascii_whitespace() || *b == b';')
    {
        text.pop();
    }
    Ok(Some(text))
}

/// Loads `job` on `conn` from its checkpoint offset until the end or `cx.stop`.
pub async fn load_file(conn: &mut Conn, job: &FileJob, cx: &FileCtx) -> Result<FileEnd, UnitError> {
    // A fresh session charset for each file; its own head may change it (SET NAMES binary).
    session_stmt(conn, job, b"SET NAMES utf8mb4", 0).await?;
    if !job.has_row {
        let q = cx.ckpt.open_sql(&job.name, &job.db, &job.table, job.size);
        match exec_timed(
            conn,
            "insert the file's loader checkpoint row",
            q.as_bytes(),
        )
        .await
        {
            Ok(()) => {}
            Err(Ok(e)) => {
                return Err(UnitError::from_mysql(
                    "downstream",
                    format!("insert the loader checkpoint row of {}", job.name),
                    &e,
                ));
            }
            Err(Err(t)) => return Err(t),
        }
    }
    // The session's character set as the file set it (the fast path needs to know it).
    let mut charset: Option<String> = Some("utf8mb4".to_string());
    if job.offset > 0 {
        let head = session_prefix(&job.path, job.offset, job.size)
            .await
            .map_err(|e| read_error(job, e))?;
        for s in head {
            session_stmt(conn, job, &s, 0).await?;
            if let Some(cs) = bulk::session_charset(&s) {
                charset = cs;
            }
        }
    }
    let mut rows_buf = cx.bufs.rows.take();
    // Full size at once: grown file by file (a dump's first chunks are small), each growth
    // copied the stale contents into freshly faulted pages.
    let read_buf = cx.bufs.read.take_filled(reader::BUF);
    let mut reader = StmtReader::open_in(&job.path, job.offset, job.size, read_buf)
        .await
        .map_err(|e| read_error(job, ReadError::Io(e)))?;
    let end = load_statements(conn, job, cx, &mut reader, &mut rows_buf, charset).await;
    cx.bufs.rows.put(rows_buf);
    cx.bufs.read.put(reader.into_buf());
    end
}

/// The statements of `job` from its checkpoint offset on (see [`load_file`]).
async fn load_statements(
    conn: &mut Conn,
    job: &FileJob,
    cx: &FileCtx,
    reader: &mut StmtReader,
    rows_buf: &mut Vec<u8>,
    mut charset: Option<String>,
) -> Result<FileEnd, UnitError> {
    // The target table's columns, read once when the row rules need them (a statement without
    // a column list).
    let mut columns: Option<Vec<String>> = None;
    let mut fast =
        cx.bulk.enabled() && bulk::table_is_fast(conn, &job.target_db, &job.target_table).await;
    let into = format!(
        "{}.{}",
        super::quote(&job.target_db),
        super::quote(&job.target_table)
    );
    let mut cur = job.offset;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if cx.stop.is_cancelled() {
            return Ok(FileEnd::Stopped);
        }
        let stmt = match reader.next().await.map_err(|e| read_error(job, e))? {
            Some(s) => s,
            None => break,
        };
        let (start, end) = (stmt.start, stmt.end);
        match stmt.kind {
            Kind::Comment => continue,
            Kind::Session => {
                session_stmt(conn, job, stmt.text, start).await?;
                if let Some(cs) = bulk::session_charset(stmt.text) {
                    charset = cs;
                }
                continue;
            }
            Kind::Data => {}
        }
        let text = stmt.text;
        let Some(name) = insert_name(text) else {
            let head: String = String::from_utf8_lossy(&text[..text.len().min(60)]).into_owned();
            return Err(UnitError::new(
                code::LOAD_INVALID_INSERT,
                "internal",
                format!(
                    "invalid insert statement in {} (bytes {start}..{end}): a data file holds only INSERT statements, found {head:?}",
                    job.name
                ),
            )
            .workaround("The dump file is not a dump's data file or is damaged: dump again (`start-task --remove-meta`)."));
        };
        let rendered = apply_row_rules(conn, job, cx, &mut columns, text, start).await?;
        crate::worker::failpoint::delay("load-statement").await;
        if fast && cx.bulk.enabled() {
            // The rows as LOAD DATA, when they can be (see bulk.rs); else the INSERT below.
            let (body, name_span) = match &rendered {
                None => (text, Some(name.span.clone())),
                Some(r) if r.is_empty() => (&r[..], None),
                Some(r) => (&r[..], insert_name(r).map(|n| n.span)),
            };
            // Sized once (the rows' text is never longer than the INSERT's): growing it by
            // doubling took fresh, zeroed pages several times per statement. A buffer too
            // small is replaced, not grown (growing copies its stale contents).
            let need = body.len() + 64;
            if rows_buf.capacity() < need {
                *rows_buf = Vec::with_capacity(need.next_power_of_two());
            }
            rows_buf.clear();
            let converted = name_span
                .filter(|sp| tsv::plain_insert(body, sp.start))
                .and_then(|sp| tsv::convert(body, sp.end, rows_buf));
            if let (Some(rows), Some(cs)) = (converted, charset.as_deref())
                && (!rows.hex || cs.eq_ignore_ascii_case("binary"))
            {
                let begin = format!("BEGIN;{};{GUARD}", cx.ckpt.advance_sql(&job.name, cur, end));
                let cols = rows.columns.clone().map(|c| &body[c]);
                let what = format!("load {}", at(job, start));
                let r = tokio::time::timeout(
                    STMT_TIMEOUT,
                    bulk::load(
                        conn,
                        &cx.bulk,
                        bulk::Batch {
                            begin: &begin,
                            into: &into,
                            charset: cs,
                            rows: &rows,
                            columns: cols,
                            data: rows_buf,
                        },
                    ),
                )
                .await;
                match r {
                    Ok(Ok(bulk::Outcome::Committed)) => {
                        cx.stats.add_finished(end - cur);
                        cur = end;
                        continue;
                    }
                    // Once a statement of the file needs its INSERT, the rest go as INSERTs.
                    Ok(Ok(bulk::Outcome::Insert)) => fast = false,
                    Ok(Err(e)) => return Err(exec_error(job, start, end, &e)),
                    Err(_) => return Err(timeout_error(&what)),
                }
            }
        }
        buf.clear();
        buf.extend_from_slice(b"BEGIN;");
        buf.extend_from_slice(cx.ckpt.advance_sql(&job.name, cur, end).as_bytes());
        buf.push(b';');
        buf.extend_from_slice(GUARD.as_bytes());
        buf.push(b';');
        match rendered {
            Some(rendered) if rendered.is_empty() => {}
            Some(rendered) => {
                with_duplicate_head(&mut buf, &rendered, cx.on_duplicate);
                buf.push(b';');
            }
            None => {
                replace_name_with(
                    &mut buf,
                    text,
                    &name.span,
                    Some(&job.target_db),
                    &job.target_table,
                    cx.on_duplicate,
                );
                buf.push(b';');
            }
        }
        buf.extend_from_slice(b"COMMIT");
        match exec_timed(conn, &format!("load {}", at(job, start)), &buf).await {
            Ok(()) => {}
            Err(Ok(e)) => return Err(exec_error(job, start, end, &e)),
            Err(Err(t)) => return Err(t),
        }
        cx.stats.add_finished(end - cur);
        cur = end;
    }
    if cur < job.size {
        // Only comments or whitespace after the last statement: the file is done.
        let q = format!(
            "BEGIN;{};{GUARD};COMMIT",
            cx.ckpt.advance_sql(&job.name, cur, job.size)
        );
        match exec_timed(conn, &format!("finish {}", job.name), q.as_bytes()).await {
            Ok(()) => {}
            Err(Ok(e)) => return Err(exec_error(job, cur, job.size, &e)),
            Err(Err(t)) => return Err(t),
        }
        cx.stats.add_finished(job.size - cur);
    }
    Ok(FileEnd::Finished)
}
