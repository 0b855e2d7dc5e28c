//! Applying row changes downstream in parallel, as DM's syncer does: causality by primary /
//! unique key decides which changes may run concurrently, each change goes to queue
//! `crc32(group) % worker-count`, and each queue applies up to `batch` changes in one
//! downstream transaction (consecutive INSERTs into one table become one multi-row
//! statement). A change whose keys belong to two different groups is a conflict: every queue
//! is drained first ([`Applier::flush`]), then the groups start afresh. DDL and checkpoints
//! also drain all queues first.
//!
//! Each transaction also records, in the queue's checkpoint row, the furthest binlog position
//! it applied (see `checkpoint.rs`): that makes crash recovery exact.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::checkpoint::CheckpointTable;
use crate::binlog::Position;
use crate::binlog::rows::RowChange;
use crate::dml::{self, TargetTable, Value};
use crate::worker::error::UnitError;

/// One row change, ready to apply.
pub struct Change {
    pub table: Arc<TargetTable>,
    pub change: RowChange,
    pub safe_mode: bool,
    /// End position of the binlog event it came from.
    pub pos: Position,
}

/// How long a queue waits for more changes to fill a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

enum Job {
    Change(Change),
    /// All rows of one binlog event for a keyless table: never split across transactions,
    /// so a queue's committed position tells exactly which of them are downstream.
    Group(Vec<Change>),
    Flush(oneshot::Sender<()>),
}

pub struct Applier {
    queues: Vec<mpsc::Sender<Job>>,
    handles: Vec<Option<JoinHandle<Result<(), UnitError>>>>,
    /// key → group key
    causality: HashMap<String, String>,
    pending: usize,
    /// After a crash: per queue, the last position it committed in the previous run (same
    /// worker count). Keyless-table changes at or before it are already downstream.
    applied: Vec<Option<Position>>,
}

impl Applier {
    pub async fn start(
        pool: &Pool,
        ckpt: &CheckpointTable,
        worker_count: usize,
        batch: usize,
        queue_size: usize,
    ) -> Result<Applier, UnitError> {
        let n = worker_count.max(1);
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let conn = pool.get_conn().await.map_err(|e| {
                UnitError::from_mysql("downstream", "connect to the downstream", &e)
            })?;
            let (tx, rx) = mpsc::channel(queue_size.max(1));
            let q = Queue {
                id: i,
                of: n,
                conn,
                ckpt: ckpt.clone(),
                batch: batch.max(1),
            };
            handles.push(Some(tokio::spawn(q.run(rx))));
            queues.push(tx);
        }
        Ok(Applier {
            queues,
            handles,
            causality: HashMap::new(),
            pending: 0,
            applied: vec![None; n],
        })
    }

    /// Tells the applier what each queue committed in a previous run (queue index → position),
    /// when that run had the same number of queues.
    pub fn set_applied(&mut self, queues: &std::collections::BTreeMap<usize, Position>) {
        for (i, p) in queues {
            if let Some(slot) = self.applied.get_mut(*i) {
                *slot = Some(p.clone());
            }
        }
    }

    /// Queues all rows of one event of a table with no primary or unique key as one unit, on
    /// the table's queue; skips them when that queue committed them before a crash.
    pub async fn push_keyless(&mut self, changes: Vec<Change>) -> Result<(), UnitError> {
        let Some(first) = changes.first() else {
            return Ok(());
        };
        let mut name = String::new();
        first.table.write_name(&mut name);
        let q = (crc32fast::hash(name.as_bytes()) as usize) % self.queues.len();
        if self.applied[q].as_ref().is_some_and(|a| first.pos <= *a) {
            return Ok(());
        }
        // The table's key is its name: a conflict with another group means a flush first.
        if let Some(g) = self.causality.get(&name)
            && *g != name
        {
            self.flush().await?;
        }
        self.causality.insert(name.clone(), name);
        let n = changes.len();
        if self.queues[q].send(Job::Group(changes)).await.is_err() {
            return Err(self.queue_error(q).await);
        }
        self.pending += n;
        Ok(())
    }

    /// Queues one change; drains everything first when its keys conflict.
    pub async fn push(&mut self, c: Change) -> Result<(), UnitError> {
        let keys = match &c.change {
            RowChange::Insert(r) => dml::row_keys(&c.table, r),
            RowChange::Delete(r) => dml::row_keys(&c.table, r),
            RowChange::Update { before, after } => {
                let mut k = dml::row_keys(&c.table, before);
                for x in dml::row_keys(&c.table, after) {
                    if !k.contains(&x) {
                        k.push(x);
                    }
                }
                k
            }
        };
        let mut group: Option<String> = None;
        let mut conflict = false;
        for k in &keys {
            if let Some(g) = self.causality.get(k) {
                match &group {
                    None => group = Some(g.clone()),
                    Some(cur) if cur != g => conflict = true,
                    _ => {}
                }
            }
        }
        if conflict {
            self.flush().await?;
            group = None;
        }
        let group = group.unwrap_or_else(|| keys.first().cloned().unwrap_or_default());
        for k in keys {
            self.causality.entry(k).or_insert_with(|| group.clone());
        }
        let q = (crc32fast::hash(group.as_bytes()) as usize) % self.queues.len();
        if self.queues[q].send(Job::Change(c)).await.is_err() {
            return Err(self.queue_error(q).await);
        }
        self.pending += 1;
        Ok(())
    }

    /// Changes queued since the last flush.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Waits until every queued change is committed downstream.
    pub async fn flush(&mut self) -> Result<(), UnitError> {
        let mut acks = Vec::with_capacity(self.queues.len());
        for (i, q) in self.queues.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            if q.send(Job::Flush(tx)).await.is_err() {
                return Err(self.queue_error(i).await);
            }
            acks.push(rx);
        }
        for (i, rx) in acks.into_iter().enumerate() {
            if rx.await.is_err() {
                return Err(self.queue_error(i).await);
            }
        }
        self.causality.clear();
        self.pending = 0;
        Ok(())
    }

    async fn queue_error(&mut self, i: usize) -> UnitError {
        let fallback = || {
            UnitError::new(
                crate::worker::error::code::DB_EXECUTE,
                "downstream",
                "an apply queue stopped",
            )
        };
        match self.handles.get_mut(i).and_then(|h| h.take()) {
            Some(h) => match h.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => fallback(),
                Err(j) => fallback().cause(j),
            },
            None => fallback(),
        }
    }

    /// Stops the queues (after a flush, nothing is lost).
    pub async fn close(mut self) {
        self.queues.clear();
        for h in self.handles.iter_mut().filter_map(|h| h.take()) {
            let _ = h.await;
        }
    }
}

struct Queue {
    id: usize,
    of: usize,
    conn: Conn,
    ckpt: CheckpointTable,
    batch: usize,
}

impl Queue {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) -> Result<(), UnitError> {
        let mut batch: Vec<Change> = Vec::with_capacity(self.batch);
        let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
        while let Some(job) = rx.recv().await {
            match job {
                Job::Change(c) => batch.push(c),
                Job::Group(g) => batch.extend(g),
                Job::Flush(a) => acks.push(a),
            }
            // Take what is waiting, up to a batch; wait at most GATHER (10 ms) for more while the
            // stream is busy (bigger transactions, fewer round trips); a flush ends the batch.
            let deadline = tokio::time::Instant::now() + GATHER;
            while batch.len() < self.batch && acks.is_empty() {
                let job = match rx.try_recv() {
                    Ok(j) => j,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(j)) => j,
                            _ => break,
                        }
                    }
                };
                match job {
                    Job::Change(c) => batch.push(c),
                    Job::Group(g) => batch.extend(g),
                    Job::Flush(a) => acks.push(a),
                }
            }
            if !batch.is_empty() {
                self.apply(&batch).await?;
                batch.clear();
            }
            for a in acks.drain(..) {
                let _ = a.send(());
            }
        }
        Ok(())
    }

    async fn apply(&mut self, batch: &[Change]) -> Result<(), UnitError> {
        let mut sql = String::with_capacity(256 * batch.len());
        sql.push_str("BEGIN;\n");
        // Group by table, keeping first-appearance order. Changes of one row always belong to
        // one table, so grouping keeps every row's own order.
        let mut groups: Vec<(&Arc<TargetTable>, Vec<&Change>)> = Vec::new();
        for c in batch {
            match groups.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &c.table)) {
                Some((_, v)) => v.push(c),
                None => groups.push((&c.table, vec![c])),
            }
        }
        for (table, changes) in &groups {
            if compactable(table, changes) {
                compact(table, changes, &mut sql);
            } else {
                sequential(changes, &mut sql);
            }
        }
        if let Some(last) = batch.last() {
            sql.push_str(&self.ckpt.queue_sql(self.id, self.of, &last.pos));
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT");
        // Deadlocks and lock wait timeouts between queues (InnoDB next-key locks can collide
        // on disjoint keys) are retried here, the whole transaction again.
        let mut attempt = 0u32;
        let result = loop {
            match self.conn.query_drop(&sql).await {
                Ok(()) => break Ok(()),
                Err(mysql_async::Error::Server(e))
                    if matches!(e.code, 1213 | 1205) && attempt < 8 =>
                {
                    let _ = self.conn.query_drop("ROLLBACK").await;
                    attempt += 1;
                    tracing::info!(queue = self.id, attempt, "retrying after {}", e.message);
                    tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt)))
                        .await;
                }
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = result {
            let _ = self.conn.query_drop("ROLLBACK").await;
            let first = sql
                .lines()
                .nth(1)
                .unwrap_or("")
                .chars()
                .take(300)
                .collect::<String>();
            let mut err = UnitError::from_mysql(
                "downstream",
                format!("execute statement failed: {first}"),
                &e,
            );
            if !err.retryable {
                err.workaround = "Fix the downstream table (or the task's routes/filters), then run `resume-task`; `query-status` shows the statement.".into();
            }
            return Err(err);
        }
        Ok(())
    }
}

/// A table's changes can be merged per row when the table has a primary key and every row
/// image is complete (no column missing from a MINIMAL/NOBLOB image).
fn compactable(t: &TargetTable, changes: &[&Change]) -> bool {
    !t.pk.is_empty()
        && changes.iter().all(|c| match &c.change {
            RowChange::Insert(r) | RowChange::Delete(r) => complete(r, &t.pk),
            RowChange::Update { before, after } => {
                complete(before, &t.pk) && after.iter().all(|v| !v.is_missing())
            }
        })
}

fn complete(r: &[Value], pk: &[usize]) -> bool {
    r.iter().all(|v| !v.is_missing()) && pk.iter().all(|&i| i < r.len())
}

fn pk_of(t: &TargetTable, r: &[Value]) -> Vec<Value> {
    t.pk.iter()
        .map(|&i| r.get(i).cloned().unwrap_or(Value::Missing))
        .collect()
}

/// DM's "compact" + "multiple rows" (RFC 20211008): each row's changes in the batch reduce to
/// its final state — gone, or this image — written as one `DELETE … WHERE pk IN (…)` and one
/// multi-row upsert (`INSERT … ON DUPLICATE KEY UPDATE`). Deletes go first.
fn compact(t: &TargetTable, changes: &[&Change], sql: &mut String) {
    let mut order: Vec<Vec<Value>> = Vec::new();
    let mut fin: HashMap<Vec<Value>, Option<&[Value]>> = HashMap::new();
    let mut steps: Vec<(Vec<Value>, Option<&[Value]>)> = Vec::new();
    for c in changes {
        match &c.change {
            RowChange::Insert(r) => steps.push((pk_of(t, r), Some(r))),
            RowChange::Delete(r) => steps.push((pk_of(t, r), None)),
            RowChange::Update { before, after } => {
                let (kb, ka) = (pk_of(t, before), pk_of(t, after));
                if kb != ka {
                    steps.push((kb, None));
                }
                steps.push((ka, Some(after)));
            }
        }
    }
    for (k, v) in steps {
        if !fin.contains_key(&k) {
            order.push(k.clone());
        }
        fin.insert(k, v);
    }
    let deletes: Vec<&Vec<Value>> = order
        .iter()
        .filter(|k| matches!(fin.get(*k), Some(None)))
        .collect();
    let upserts: Vec<&[Value]> = order
        .iter()
        .filter_map(|k| fin.get(k).copied().flatten())
        .collect();
    if !deletes.is_empty() {
        sql.push_str("DELETE FROM ");
        t.write_name(sql);
        sql.push_str(" WHERE (");
        for (n, &i) in t.pk.iter().enumerate() {
            if n > 0 {
                sql.push(',');
            }
            dml::quote_ident(&t.columns[i], sql);
        }
        sql.push_str(") IN (");
        for (n, k) in deletes.iter().enumerate() {
            if n > 0 {
                sql.push(',');
            }
            sql.push('(');
            for (m, v) in k.iter().enumerate() {
                if m > 0 {
                    sql.push(',');
                }
                v.write_sql(sql);
            }
            sql.push(')');
        }
        sql.push_str(");\n");
    }
    for chunk in upserts.chunks(1000) {
        upsert_sql(t, chunk, sql);
        sql.push_str(";\n");
    }
}

/// `INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c), …` (DM's safe-mode form since its RFC
/// 20211008): an existing row is updated in place, which costs the downstream less than
/// REPLACE's delete + insert.
fn upsert_sql(t: &TargetTable, rows: &[&[Value]], sql: &mut String) {
    let before = sql.len();
    dml::insert_sql(t, rows, false, sql);
    if sql.len() == before {
        return;
    }
    sql.push_str(" ON DUPLICATE KEY UPDATE ");
    let mut first = true;
    for (i, c) in t.columns.iter().enumerate() {
        if rows.iter().all(|r| r.get(i).is_none_or(|v| v.is_missing())) {
            continue;
        }
        if !first {
            sql.push(',');
        }
        first = false;
        dml::quote_ident(c, sql);
        sql.push_str("=VALUES(");
        dml::quote_ident(c, sql);
        sql.push(')');
    }
}

/// Statements one by one, in order (tables without a primary key, partial row images).
fn sequential(changes: &[&Change], sql: &mut String) {
    let mut stmts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let c = changes[i];
        match &c.change {
            RowChange::Insert(_) => {
                // Consecutive inserts into the same table: one statement.
                let mut j = i;
                let mut rows: Vec<&[Value]> = Vec::new();
                while j < changes.len() && changes[j].safe_mode == c.safe_mode && rows.len() < 1000
                {
                    match &changes[j].change {
                        RowChange::Insert(r) if same_shape(r, rows.first().copied()) => {
                            rows.push(r)
                        }
                        _ => break,
                    }
                    j += 1;
                }
                dml::insert_sql(&c.table, &rows, c.safe_mode, sql);
                sql.push_str(";\n");
                i = j;
            }
            RowChange::Update { before, after } => {
                stmts.clear();
                dml::update_sql(&c.table, before, after, c.safe_mode, &mut stmts);
                for s in &stmts {
                    sql.push_str(s);
                    sql.push_str(";\n");
                }
                i += 1;
            }
            RowChange::Delete(r) => {
                dml::delete_sql(&c.table, r, sql);
                sql.push_str(";\n");
                i += 1;
            }
        }
    }
}

/// Rows of a multi-row INSERT must list the same columns (Missing columns are left out).
fn same_shape(r: &[Value], first: Option<&[Value]>) -> bool {
    match first {
        None => true,
        Some(f) => {
            f.len() == r.len()
                && f.iter()
                    .zip(r)
                    .all(|(a, b)| matches!(a, Value::Missing) == matches!(b, Value::Missing))
        }
    }
}
