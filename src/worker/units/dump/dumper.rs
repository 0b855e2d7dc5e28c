//! The dump connections' work: each takes the next chunk from the shared queue, streams its
//! rows (`SELECT … WHERE <range> [AND <where>] [ORDER BY <primary key>]`, text protocol) into
//! a [`ChunkWriter`], and when the chunk is whole renames its files, records it in the state
//! file and announces the files to the load.
//!
//! A cancel (or another connection's error) is seen between row batches: the query is killed
//! on the server (`KILL QUERY`, so nothing streams on in the background), the chunk's `.tmp`
//! files are removed, finished chunks stay.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::Opts;
use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

use super::chunking::{range_condition, where_clause};
use super::raw::RawConn;
use super::snapshot::DumpConn;
use super::stats::DumpStats;
use super::writer::{ChunkWriter, TableFormat, WrittenFile};
use super::{ROW_TIMEOUT, db_err, io_err, timeout_err};
use crate::config::db::kill_query;
use crate::worker::error::{UnitError, code};
use crate::worker::units::full::{
    Applied, ChunkDone, ChunkPlan, DumpState, Feed, ReadyFile, journal_append,
};

/// One table's dump, as its chunks share it.
#[derive(Debug)]
pub struct TableJob {
    /// [`DumpState::key`].
    pub key: String,
    pub fmt: Arc<TableFormat>,
    /// `SELECT <cols> FROM `db`.`t``.
    pub select: String,
    /// ` ORDER BY …` or "".
    pub order_by: String,
    pub plan: ChunkPlan,
    pub user_where: String,
}

/// One chunk to dump.
#[derive(Debug, Clone)]
pub struct Job {
    pub table: Arc<TableJob>,
    pub chunk: u32,
}

/// What every dump connection shares.
pub struct DumpCtx {
    pub dir: PathBuf,
    pub statement_size: u64,
    pub file_size: u64,
    pub session: u32,
    pub stats: Arc<DumpStats>,
    pub feed: Feed,
    pub state: tokio::sync::Mutex<DumpState>,
    pub queue: Mutex<VecDeque<Job>>,
    /// Fires on cancel or on any connection's error.
    pub stop: CancellationToken,
    /// For `KILL QUERY`.
    pub kill_opts: Opts,
    /// Render buffers shared by the connections' chunk writers.
    pub bufs: crate::worker::units::bufpool::BufPool,
    /// The size of the state record as last written whole: the journal is folded into it
    /// once it is larger (and at least [`MIN_JOURNAL`]).
    pub state_bytes: AtomicU64,
}

/// The journal size below which the state record is never rewritten for it.
const MIN_JOURNAL: u64 = 64 << 10;

/// Whether a journal of `journal` bytes is folded into a record last written with `whole`
/// bytes: once it is larger than the record (so the bytes written for the record stay within
/// twice the journal's, however many tables), and at least [`MIN_JOURNAL`].
fn fold_journal(journal: u64, whole: u64) -> bool {
    journal > whole.max(MIN_JOURNAL)
}

impl DumpCtx {
    fn next_job(&self) -> Option<Job> {
        self.queue.lock().ok()?.pop_front()
    }
}

/// One dump connection's loop: chunks until the queue is empty or the dump stops.
pub async fn run(ctx: Arc<DumpCtx>, mut conn: DumpConn) -> Result<(), UnitError> {
    let r = async {
        while !ctx.stop.is_cancelled() {
            let Some(job) = ctx.next_job() else {
                break;
            };
            tokio::select! {
                _ = crate::worker::failpoint::delay("dump-chunk") => {}
                _ = ctx.stop.cancelled() => break,
            }
            let Some((files, rows)) = dump_chunk(&ctx, &mut conn, &job).await? else {
                break;
            };
            record(&ctx, &job, files, rows).await?;
        }
        Ok(())
    }
    .await;
    if r.is_err() {
        ctx.stop.cancel();
    }
    conn.disconnect().await;
    r
}

/// Dumps one chunk; `None` when the dump stopped meanwhile (the chunk's files are removed).
async fn dump_chunk(
    ctx: &DumpCtx,
    conn: &mut DumpConn,
    job: &Job,
) -> Result<Option<(Vec<WrittenFile>, u64)>, UnitError> {
    let t = &job.table;
    let mut w = ChunkWriter::new(
        &ctx.dir,
        t.fmt.clone(),
        job.chunk,
        ctx.statement_size,
        ctx.file_size,
        &ctx.bufs,
    );
    if t.fmt.kinds.is_empty() {
        // Only generated columns: nothing to insert.
        return Ok(Some((Vec::new(), 0)));
    }
    let range = range_condition(&t.plan, job.chunk).map_err(|e| {
        UnitError::new(
            code::DUMP_RUNTIME,
            "internal",
            format!(
                "the dump state's chunk plan of {} is damaged",
                t.key.replace('\t', ".")
            ),
        )
        .cause(e)
        .workaround("Start the task again with `start-task --remove-meta` to dump from scratch.")
    })?;
    let sql = format!(
        "{}{}{}",
        t.select,
        where_clause(range.as_deref(), &t.user_where),
        t.order_by
    );
    let conn_id = conn.id();
    let mut counted = (0u64, 0u64);
    let name = t.key.replace('\t', ".");
    let outcome = stream(ctx, conn, &sql, &name, &mut w, &mut counted).await;
    match outcome {
        Ok(true) => {
            let rows = w.rows;
            let files = match w.commit().await {
                Ok(f) => f,
                Err(e) => {
                    ctx.stats.sub_written(counted.0, counted.1);
                    return Err(io_err("rename a finished dump file", e));
                }
            };
            Ok(Some((files, rows)))
        }
        other => {
            ctx.stats.sub_written(counted.0, counted.1);
            w.abort();
            if matches!(other, Ok(false)) || ctx.stop.is_cancelled() {
                kill_query(ctx.kill_opts.clone(), conn_id).await;
            }
            other.map(|_| None)
        }
    }
}

/// After a batch of rows: counts them, and at the end of the rows writes the chunk's last
/// file (`Ok(true)`), else flushes what the batch rendered (`Ok(false)`).
async fn batch_done(
    ctx: &DumpCtx,
    w: &mut ChunkWriter,
    counted: &mut (u64, u64),
    end: bool,
) -> Result<bool, UnitError> {
    ctx.stats
        .add_written(w.rows - counted.0, w.bytes - counted.1);
    *counted = (w.rows, w.bytes);
    if end {
        w.finish()
            .await
            .map_err(|e| io_err("write a dump file", e))?;
        ctx.stats
            .add_written(w.rows - counted.0, w.bytes - counted.1);
        *counted = (w.rows, w.bytes);
        return Ok(true);
    }
    w.flush()
        .await
        .map_err(|e| io_err("write a dump file", e))?;
    Ok(false)
}

/// Where a chunk's rows come from: the driver's result set or the narrow client's.
trait RowSource {
    /// Renders the next row into `w`; `Ok(false)` at the end of the rows.
    async fn push_next(&mut self, w: &mut ChunkWriter) -> Result<bool, mysql_async::Error>;

    /// Renders rows into `w` until it wants a flush (`Ok(false)`) or the rows end (`Ok(true)`).
    async fn render(&mut self, w: &mut ChunkWriter) -> Result<bool, mysql_async::Error> {
        while !w.wants_flush() {
            if !self.push_next(w).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl RowSource for mysql_async::QueryResult<'_, '_, mysql_async::TextProtocol> {
    async fn push_next(&mut self, w: &mut ChunkWriter) -> Result<bool, mysql_async::Error> {
        let row = self.next().await?;
        Ok(row.map(|r| w.push_row(&r)).is_some())
    }
}

impl RowSource for RawConn {
    async fn push_next(&mut self, w: &mut ChunkWriter) -> Result<bool, mysql_async::Error> {
        let row = self.next_row().await?;
        Ok(row.map(|r| w.push_row(&r)).is_some())
    }
}

/// Streams a chunk's rows: `Ok(true)` when every row is written, `Ok(false)` when the dump
/// stopped. Each batch (up to a flush) is bounded by [`ROW_TIMEOUT`].
async fn stream(
    ctx: &DumpCtx,
    conn: &mut DumpConn,
    sql: &str,
    name: &str,
    w: &mut ChunkWriter,
    counted: &mut (u64, u64),
) -> Result<bool, UnitError> {
    match conn {
        DumpConn::Driver(c) => {
            let started = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => return Ok(false),
                r = tokio::time::timeout(ROW_TIMEOUT, c.query_iter(sql)) => r,
            };
            let mut rows = started_or(started, sql, name)?;
            batches(ctx, &mut rows, sql, name, w, counted).await
        }
        DumpConn::Raw(c) => {
            let started = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => return Ok(false),
                r = tokio::time::timeout(ROW_TIMEOUT, c.query(sql)) => r,
            };
            started_or(started, sql, name)?;
            batches(ctx, c, sql, name, w, counted).await
        }
    }
}

/// A query's start (bounded by [`ROW_TIMEOUT`]) as a dump error.
fn started_or<T>(
    r: Result<Result<T, mysql_async::Error>, tokio::time::error::Elapsed>,
    sql: &str,
    name: &str,
) -> Result<T, UnitError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(db_err(format!("dump {name}"), &e)),
        Err(_) => Err(timeout_err(sql, ROW_TIMEOUT)),
    }
}

/// The batches of a started query's rows (see [`stream`]).
async fn batches(
    ctx: &DumpCtx,
    rows: &mut impl RowSource,
    sql: &str,
    name: &str,
    w: &mut ChunkWriter,
    counted: &mut (u64, u64),
) -> Result<bool, UnitError> {
    loop {
        let end = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => return Ok(false),
            r = tokio::time::timeout(ROW_TIMEOUT, rows.render(w)) => match r {
                Ok(Ok(end)) => end,
                Ok(Err(e)) => return Err(db_err(format!("dump {name}"), &e)),
                Err(_) => return Err(timeout_err(&format!("rows of {sql}"), ROW_TIMEOUT)),
            },
        };
        if batch_done(ctx, w, counted, end).await? {
            return Ok(true);
        }
    }
}

/// Records a finished chunk (a line of the state's journal, durable before anything else
/// sees the chunk; the whole record is rewritten once the journal outgrows it), then
/// announces its files.
async fn record(
    ctx: &DumpCtx,
    job: &Job,
    files: Vec<WrittenFile>,
    rows: u64,
) -> Result<(), UnitError> {
    tracing::debug!(table = %job.table.key.replace('\t', "."), chunk = job.chunk, rows, "chunk written");
    let mut st = ctx.state.lock().await;
    let done = ChunkDone {
        table: job.table.key.clone(),
        chunk: job.chunk,
        session: ctx.session,
        files: files.iter().map(|f| (f.name.clone(), f.size)).collect(),
        rows,
        chunks: job.table.plan.chunks(),
    };
    let table_done = match st.apply(&done) {
        Applied::New { table_done } => table_done,
        Applied::Again => false,
        Applied::UnknownTable => {
            return Err(UnitError::new(
                code::DUMP_RUNTIME,
                "internal",
                format!(
                    "table {} is missing from the dump state",
                    job.table.key.replace('\t', ".")
                ),
            ));
        }
    };
    let dir = ctx.dir.clone();
    let whole = ctx.state_bytes.load(Ordering::Relaxed);
    let journal = tokio::task::spawn_blocking(move || journal_append(&dir, &done))
        .await
        .map_err(|e| io_err("write the dump state", std::io::Error::other(e.to_string())))?
        .map_err(|e| io_err("write the dump state", e))?;
    if fold_journal(journal, whole) {
        let bytes = super::write_state(&ctx.dir, &st).await?;
        ctx.state_bytes.store(bytes, Ordering::Relaxed);
    }
    for f in files {
        ctx.feed.push(ReadyFile {
            name: f.name,
            size: f.size,
        });
    }
    drop(st);
    ctx.stats.chunk_done();
    if table_done {
        ctx.stats.table_done();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_folded_once_larger_than_the_record() {
        // (journal bytes, record bytes, fold)
        let cases = [
            (100, 1_000, false),
            (MIN_JOURNAL, 1_000, false),
            (MIN_JOURNAL + 1, 1_000, true),
            (MIN_JOURNAL + 1, 10 << 20, false),
            (10 << 20, 10 << 20, false),
            ((10 << 20) + 1, 10 << 20, true),
            (MIN_JOURNAL + 1, 0, true),
        ];
        for (journal, whole, fold) in cases {
            assert_eq!(fold_journal(journal, whole), fold, "{journal} {whole}");
        }
    }
}
