//! Applying row changes downstream in parallel, as DM's syncer does.
//!
//! The sync unit (`sync/mod.rs`) is the only caller: [`Applier::open`], then
//! [`Applier::push_event`] per rows event, [`Applier::flush`] at checkpoints and before DDL,
//! [`Applier::close`]. It must never write a row without a usable key as a keyed
//! row, never split such a row's event across transactions, and never turn an INSERT into an
//! overwrite outside safe mode.
//!
//! **Routing.** [`Applier::push_event`] receives all rows of one binlog rows event. A row change
//! is *keyed* when every image it carries (the before and the after image of an UPDATE) has a
//! usable downstream key: the primary key, or a UNIQUE key with no NULL part
//! ([`dml::has_usable_key`]). Keyed changes go through causality: each key maps to a group,
//! the change goes to queue `crc32(group) % worker-count`, and a change whose keys belong to
//! two groups is a conflict, so every queue is drained first ([`Applier::flush`]) and the
//! groups start afresh. When an event holds any row without a usable key (a table with no key
//! downstream, or a row whose only UNIQUE keys have a NULL part), the whole event goes, in
//! order, as one unit to the table's queue (`crc32(table)`), and its rows' usable keys are
//! registered to the table's group so later keyed changes of the same rows follow it there.
//! The causality map is bounded ([`MAX_CAUSALITY_KEYS`]): past it, the applier drains the
//! queues and starts afresh. DDL and checkpoints also drain all queues first.
//!
//! **Exactness.** Each transaction also records, in the queue's checkpoint row
//! (`CheckpointTable::queue_sql`), the furthest binlog position it applied and, per GTID
//! domain, the furthest event mark (`marks.rs`); that makes crash recovery exact. A keyless
//! event is never split across transactions, so a queue's committed point says exactly which
//! keyless events are downstream: after a crash with the same worker count, events at or
//! before it are skipped (the `prior` of [`Applier::open`]) instead of being inserted twice.
//! After a failover followed by GTID the positions mean nothing on the new server
//! ([`Applier::rebase`]) and the marks alone decide.
//!
//! **SQL.** A queue applies up to `batch` changes, and about [`ApplyOpts::max_batch_bytes`]
//! of SQL (at most half the downstream's `@@max_allowed_packet`), in one downstream
//! transaction. With the syncer's `compact` (DM's key, off by default), per table, changes of a
//! table with a primary key and complete row images are compacted per row (DM's compactor),
//! then written one statement per row or, with `multiple-rows`, DM's "multiple rows" way:
//! - in safe mode an INSERT or UPDATE becomes `INSERT … ON DUPLICATE KEY UPDATE`, a DELETE
//!   stays `DELETE … WHERE (pk) IN (…)`;
//! - outside safe mode a row whose final state comes from an INSERT is a plain multi-row
//!   `INSERT` (a duplicate key fails with 1062 and the task pauses, as in DM), except after a
//!   DELETE of the same row in the batch (DM turns DELETE + INSERT into a replace: the upsert);
//!   an UPDATE stays `UPDATE … WHERE pk = … LIMIT 1`. DM's multiple-rows mode writes an UPDATE
//!   that keeps its key as an upsert, which re-creates a row that is missing downstream; a plain
//!   UPDATE cannot create a row, so dm-rs keeps it. An UPDATE that changes the key is split into
//!   a DELETE of the old key and an INSERT of the new one (as DM's compactor does).
//!
//! Compaction uses the primary key only: DM also compacts on a UNIQUE key whose columns are
//! all NOT NULL, but the downstream table model here does not know nullability.
//!
//! Each change keeps its own safe mode, also in a batch that mixes both. Other tables (no
//! primary key, partial MINIMAL/NOBLOB images), and every table without `compact`, get their
//! statements one by one, in order; with `multiple-rows` consecutive INSERTs of the same shape
//! and mode are merged into multi-row statements and consecutive DELETEs of a keyed table into
//! one `DELETE … WHERE (pk) IN (…)`; in safe
//! mode those use DM's single-row forms (REPLACE; an UPDATE with a complete after image as
//! DELETE + REPLACE). On a row without a usable key those are not idempotent (a replayed
//! UPDATE would insert its after image again), which is why keyless events are skipped by
//! queue position after a crash instead of being replayed.
//!
//! **Bytes.** Multi-row statements are cut by bytes as well as by
//! [`dml::MAX_ROWS_PER_STATEMENT`]; the statements of a transaction are sent in packets of at
//! most the byte bound. A row larger than the bound still applies, alone in its statement (and,
//! when it arrives as a keyed change, alone in its transaction). A statement that cannot fit
//! the downstream's `max_allowed_packet` at all stops the task with a non-retryable error
//! naming the table and the size. Trade-off: a keyless event is one transaction however large
//! it is (exactness needs that); it is sent as several packets, each within the bound.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::checkpoint::CheckpointTable;
use super::marks::{Mark, Marks};
use crate::binlog::Position;
use crate::binlog::rows::RowChange;
use crate::dml::{self, InsertKind, TargetTable, Value};
use crate::worker::error::{UnitError, code};

#[cfg(test)]
mod tests;

/// One row change, ready to apply.
pub struct Change {
    pub table: Arc<TargetTable>,
    pub change: RowChange,
    pub safe_mode: bool,
    /// End position of the binlog event it came from.
    pub pos: Position,
    /// The event's GTID mark (None when the upstream has no GTID for it).
    pub mark: Option<Mark>,
}

/// What a queue committed in a previous run (same worker count): its furthest position on
/// the server it read then, and its furthest mark per GTID domain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub pos: Option<Position>,
    pub marks: Marks,
}

impl Applied {
    /// Whether the event at `pos` (with `mark`) was committed by this queue before.
    fn holds(&self, pos: &Position, mark: Option<&Mark>) -> bool {
        self.pos.as_ref().is_some_and(|a| pos <= a) || mark.is_some_and(|m| self.marks.covers(m))
    }
}

/// The default bound on one queue transaction's SQL, before `max_allowed_packet / 2` caps it.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 << 20;

/// MariaDB's default `max_allowed_packet`, assumed when the downstream does not say.
const DEFAULT_MAX_ALLOWED_PACKET: usize = 16 << 20;

/// Past this many keys in the causality map, the applier drains every queue and clears it.
pub const MAX_CAUSALITY_KEYS: usize = 100_000;

/// Room left in a packet for the protocol header and the statements appended after the last
/// row statement (the checkpoint update, COMMIT).
const PACKET_MARGIN: usize = 16 << 10;

/// How long a queue waits for more changes to fill a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// How the applier runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOpts {
    /// Number of queues (DM's `worker-count`).
    pub worker_count: usize,
    /// At most this many row changes per downstream transaction (DM's `batch`).
    pub batch: usize,
    /// Changes each queue's channel holds (DM's `queue-size`).
    pub queue_size: usize,
    /// SQL bytes per transaction (also per multi-row statement); capped at half the
    /// downstream's `max_allowed_packet`. 0 means [`DEFAULT_MAX_BATCH_BYTES`].
    pub max_batch_bytes: usize,
    /// DM's `compact`: a row's changes in one transaction are merged into its final state.
    pub compact: bool,
    /// DM's `multiple-rows`: consecutive changes of one kind to one table become one
    /// statement.
    pub multiple_rows: bool,
}

/// The byte limits of one queue's writes, and how its statements are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    /// A transaction is cut (and its packets are cut) at this many bytes of SQL.
    bound: usize,
    /// No single statement may be longer than this (`max_allowed_packet` minus a margin).
    max_statement: usize,
    /// [`ApplyOpts::compact`].
    compact: bool,
    /// [`ApplyOpts::multiple_rows`].
    multiple_rows: bool,
}

impl Limits {
    fn new(max_batch_bytes: usize, max_allowed_packet: usize) -> Limits {
        // Unknown (0): assume MariaDB's default.
        let max_allowed_packet = if max_allowed_packet == 0 {
            DEFAULT_MAX_ALLOWED_PACKET
        } else {
            max_allowed_packet
        };
        let wanted = if max_batch_bytes == 0 {
            DEFAULT_MAX_BATCH_BYTES
        } else {
            max_batch_bytes
        };
        Limits {
            bound: wanted.min(max_allowed_packet / 2).max(1),
            max_statement: max_allowed_packet.saturating_sub(PACKET_MARGIN),
            compact: true,
            multiple_rows: true,
        }
    }

    /// These limits with the statement shapes of `opts`.
    fn shaped(mut self, opts: &ApplyOpts) -> Limits {
        self.compact = opts.compact;
        self.multiple_rows = opts.multiple_rows;
        self
    }
}

/// What one queue applies: a single keyed change, or every row of one event that must stay in
/// one transaction (keyless).
struct Unit {
    changes: Vec<Change>,
    /// Estimated SQL bytes.
    bytes: usize,
}

impl Unit {
    fn new(changes: Vec<Change>) -> Unit {
        let bytes = changes.iter().map(change_bytes).sum();
        Unit { changes, bytes }
    }
}

enum Job {
    Unit(Unit),
    Flush(oneshot::Sender<()>),
}

/// Estimated SQL bytes of one change.
fn change_bytes(c: &Change) -> usize {
    let t = &c.table;
    64 + match &c.change {
        RowChange::Insert(r) | RowChange::Delete(r) => dml::row_sql_len(t, r),
        RowChange::Update { before, after } => {
            dml::row_sql_len(t, before) + dml::row_sql_len(t, after)
        }
    }
}

/// The images of a change (one, or the before and after image of an UPDATE).
fn images(c: &RowChange) -> impl Iterator<Item = &[Value]> {
    let (a, b): (&[Value], Option<&[Value]>) = match c {
        RowChange::Insert(r) | RowChange::Delete(r) => (r, None),
        RowChange::Update { before, after } => (before, Some(after)),
    };
    std::iter::once(a).chain(b)
}

/// True when every image of the change has a usable downstream key.
fn keyed(c: &Change) -> bool {
    images(&c.change).all(|r| dml::has_usable_key(&c.table, r))
}

/// The causality keys of a change: the usable keys of each of its images.
fn change_keys(c: &Change, keys: &mut Vec<String>) {
    for r in images(&c.change) {
        for k in dml::row_keys(&c.table, r) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
}

fn table_name(t: &TargetTable) -> String {
    let mut s = String::new();
    t.write_name(&mut s);
    s
}

/// Where a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    queue: usize,
    /// Every queue must be drained before it is sent (a conflict, or a full map).
    drain_first: bool,
}

/// DM's causality: key → group; a group always goes to the same queue.
#[derive(Debug, Default)]
struct Causality {
    groups: HashMap<String, String>,
    queues: usize,
}

impl Causality {
    fn new(queues: usize) -> Causality {
        Causality {
            groups: HashMap::new(),
            queues: queues.max(1),
        }
    }

    fn queue_of(&self, group: &str) -> usize {
        (crc32fast::hash(group.as_bytes()) as usize) % self.queues
    }

    /// Places a change with these keys: joins the group one of them already has (or `fixed`,
    /// the table's group for a keyless event; else the first key starts a group), records
    /// every key under it, and returns the group's queue. None when the keys belong to two
    /// different groups: a conflict, to be resolved by draining every queue and
    /// [`Causality::clear`].
    fn place(&mut self, keys: &[String], fixed: Option<&str>) -> Option<usize> {
        let mut group: Option<&String> = None;
        for k in keys {
            if let Some(g) = self.groups.get(k) {
                match (group, fixed) {
                    (_, Some(f)) if g != f => return None,
                    (Some(cur), _) if cur != g => return None,
                    _ => group = Some(g),
                }
            }
        }
        let group = match (fixed, group) {
            (Some(f), _) => f.to_string(),
            (None, Some(g)) => g.clone(),
            (None, None) => keys.first().cloned().unwrap_or_default(),
        };
        for k in keys {
            if !self.groups.contains_key(k) {
                self.groups.insert(k.clone(), group.clone());
            }
        }
        Some(self.queue_of(&group))
    }

    fn full(&self) -> bool {
        self.groups.len() >= MAX_CAUSALITY_KEYS
    }

    /// Where a keyed change goes: its group's queue; after draining every queue (the map
    /// starts afresh) when its keys conflict or the map is full.
    fn place_keyed(&mut self, c: &Change) -> Placement {
        let mut keys = Vec::new();
        change_keys(c, &mut keys);
        self.place_or_drain(&keys, None)
    }

    /// Where an event with a row without a usable key goes: whole, to its table's queue
    /// (after a drain on conflict); None when that queue committed it before a crash
    /// (`applied`: per queue, the last position it committed in the previous run).
    fn place_keyless(&mut self, changes: &[Change], applied: &[Applied]) -> Option<Placement> {
        let first = changes.first()?;
        let name = table_name(&first.table);
        let q = self.queue_of(&name);
        if applied
            .get(q)
            .is_some_and(|a| a.holds(&first.pos, first.mark.as_ref()))
        {
            return None;
        }
        let mut keys = vec![name.clone()];
        for c in changes {
            change_keys(c, &mut keys);
        }
        Some(self.place_or_drain(&keys, Some(&name)))
    }

    fn place_or_drain(&mut self, keys: &[String], fixed: Option<&str>) -> Placement {
        let mut drain_first = false;
        if self.full() {
            self.clear();
            drain_first = true;
        }
        let queue = match self.place(keys, fixed) {
            Some(q) => q,
            None => {
                self.clear();
                drain_first = true;
                // An empty map has no conflict.
                self.place(keys, fixed).unwrap_or_default()
            }
        };
        Placement { queue, drain_first }
    }

    fn clear(&mut self) {
        self.groups.clear();
    }
}

pub struct Applier {
    queues: Vec<mpsc::Sender<Job>>,
    handles: Vec<Option<JoinHandle<Result<(), UnitError>>>>,
    causality: Causality,
    pending: usize,
    /// After a crash: per queue, what it committed in the previous run (same worker count).
    /// Keyless events at or before it are already downstream.
    applied: Vec<Applied>,
}

impl Applier {
    /// Connects one downstream session per queue, reads `@@max_allowed_packet` once, and
    /// starts the queues. `prior`: what each queue (index → state) committed in a previous
    /// run with the same number of queues.
    pub async fn open(
        pool: &Pool,
        ckpt: &CheckpointTable,
        opts: ApplyOpts,
        prior: &std::collections::BTreeMap<usize, Applied>,
    ) -> Result<Applier, UnitError> {
        let n = opts.worker_count.max(1);
        let applied: Vec<Applied> = (0..n)
            .map(|i| prior.get(&i).cloned().unwrap_or_default())
            .collect();
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let conn = pool.get_conn().await.map_err(|e| {
                UnitError::from_mysql("downstream", "connect to the downstream", &e)
            })?;
            conns.push(conn);
        }
        let mut max_packet: u64 = 0;
        if let Some(c) = conns.first_mut() {
            let v: Option<u64> =
                c.query_first("SELECT @@max_allowed_packet")
                    .await
                    .map_err(|e| {
                        UnitError::from_mysql("downstream", "read @@max_allowed_packet", &e)
                    })?;
            max_packet = v.unwrap_or(0);
        }
        let limits = Limits::new(
            opts.max_batch_bytes,
            usize::try_from(max_packet).unwrap_or(usize::MAX),
        )
        .shaped(&opts);
        tracing::info!(
            queues = n,
            batch = opts.batch,
            compact = opts.compact,
            multiple_rows = opts.multiple_rows,
            bytes = limits.bound,
            max_allowed_packet = max_packet,
            "apply queues start"
        );
        let span = tracing::Span::current();
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for (i, conn) in conns.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(opts.queue_size.max(1));
            let q = Queue {
                id: i,
                of: n,
                conn,
                ckpt: ckpt.clone(),
                batch: opts.batch.max(1),
                limits,
                marks: applied[i].marks.clone(),
            };
            let fut = q.run(rx);
            handles.push(Some(tokio::spawn(tracing::Instrument::instrument(
                fut,
                span.clone(),
            ))));
            queues.push(tx);
        }
        Ok(Applier {
            queues,
            handles,
            causality: Causality::new(n),
            pending: 0,
            applied,
        })
    }

    /// The stream moved to another server (a failover followed by GTID): the previous run's
    /// positions name nothing here, so only its marks say what the queues committed.
    pub fn rebase(&mut self) {
        for a in &mut self.applied {
            a.pos = None;
        }
    }

    /// Whether any queue committed something in a previous run.
    pub fn has_prior(&self) -> bool {
        self.applied
            .iter()
            .any(|a| a.pos.is_some() || !a.marks.is_empty())
    }

    /// Queues all rows of one binlog rows event (one table, one end position). Rows that all
    /// have a usable key go through causality one by one; an event with any row without one
    /// goes whole to the table's queue (and is skipped when that queue committed it before a
    /// crash). See the module doc.
    pub async fn push_event(&mut self, changes: Vec<Change>) -> Result<(), UnitError> {
        self.route(changes).await
    }

    async fn route(&mut self, changes: Vec<Change>) -> Result<(), UnitError> {
        if changes.is_empty() {
            return Ok(());
        }
        if changes.iter().all(keyed) {
            for c in changes {
                let p = self.causality.place_keyed(&c);
                self.execute(p, Unit::new(vec![c])).await?;
            }
            Ok(())
        } else {
            match self.causality.place_keyless(&changes, &self.applied) {
                Some(p) => self.execute(p, Unit::new(changes)).await,
                None => Ok(()),
            }
        }
    }

    async fn execute(&mut self, p: Placement, unit: Unit) -> Result<(), UnitError> {
        if p.drain_first {
            self.drain().await?;
        }
        self.send(p.queue, unit).await
    }

    async fn send(&mut self, q: usize, unit: Unit) -> Result<(), UnitError> {
        let n = unit.changes.len();
        let sent = match self.queues.get(q) {
            Some(tx) => tx.send(Job::Unit(unit)).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.queue_error(q).await);
        }
        self.pending += n;
        Ok(())
    }

    /// Changes queued since the last flush.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Waits until every queued change is committed downstream.
    pub async fn flush(&mut self) -> Result<(), UnitError> {
        self.drain().await?;
        self.causality.clear();
        Ok(())
    }

    /// Drains every queue (the caller decides about the causality map).
    async fn drain(&mut self) -> Result<(), UnitError> {
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
        self.pending = 0;
        Ok(())
    }

    async fn queue_error(&mut self, i: usize) -> UnitError {
        let fallback = || UnitError::new(code::DB_EXECUTE, "downstream", "an apply queue stopped");
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
    limits: Limits,
    /// The furthest mark per GTID domain this queue committed (this run or before).
    marks: Marks,
}

/// What a queue gathers into one transaction.
#[derive(Default)]
struct Gathered {
    units: Vec<Unit>,
    changes: usize,
    bytes: usize,
    acks: Vec<oneshot::Sender<()>>,
}

impl Gathered {
    /// Takes a job; gives a unit back when it would push a non-empty transaction over the
    /// byte bound (it starts the next one).
    fn take(&mut self, job: Job, bound: usize) -> Option<Unit> {
        match job {
            Job::Flush(a) => {
                self.acks.push(a);
                None
            }
            Job::Unit(u) => {
                if !self.units.is_empty() && self.bytes + u.bytes > bound {
                    return Some(u);
                }
                self.changes += u.changes.len();
                self.bytes += u.bytes;
                self.units.push(u);
                None
            }
        }
    }

    fn open(&self, batch: usize, bound: usize) -> bool {
        self.changes < batch && self.bytes < bound && self.acks.is_empty()
    }
}

impl Queue {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) -> Result<(), UnitError> {
        let bound = self.limits.bound;
        let mut carry: Option<Unit> = None;
        loop {
            let mut g = Gathered::default();
            match carry.take() {
                Some(u) => {
                    g.take(Job::Unit(u), bound);
                }
                None => match rx.recv().await {
                    Some(job) => {
                        carry = g.take(job, bound);
                    }
                    None => break,
                },
            }
            // Take what is waiting, up to a batch (by count and bytes); wait at most GATHER
            // for more while the stream is busy; a flush, or a unit that does not fit, ends
            // the batch.
            let deadline = tokio::time::Instant::now() + GATHER;
            while carry.is_none() && g.open(self.batch, bound) {
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
                carry = g.take(job, bound);
            }
            if !g.units.is_empty() {
                let changes: Vec<&Change> = g.units.iter().flat_map(|u| &u.changes).collect();
                self.apply(&changes).await?;
            }
            for a in g.acks {
                let _ = a.send(());
            }
        }
        Ok(())
    }

    async fn apply(&mut self, batch: &[&Change]) -> Result<(), UnitError> {
        let stmts = statements(batch, self.limits)?;
        let mut marks = self.marks.clone();
        for m in batch.iter().filter_map(|c| c.mark) {
            marks.advance(m);
        }
        let tail = match batch.last() {
            Some(last) => format!(
                "{};\nCOMMIT",
                self.ckpt
                    .queue_sql(self.id, self.of, &last.pos, &marks.to_string())
            ),
            None => "COMMIT".to_string(),
        };
        let packets = packets(&stmts, &tail, self.limits.bound);
        // Deadlocks and lock wait timeouts between queues (InnoDB next-key locks can collide
        // on disjoint keys) are retried here, the whole transaction again.
        let mut attempt = 0u32;
        let result = loop {
            match run_packets(&mut self.conn, &packets).await {
                Ok(()) => break Ok(()),
                Err((_, mysql_async::Error::Server(e)))
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
        if let Err((packet, e)) = result {
            let _ = self.conn.query_drop("ROLLBACK").await;
            return Err(execute_error(
                packets.get(packet).map_or("", |p| p),
                &e,
                self.ckpt.epoch,
            ));
        }
        self.marks = marks;
        Ok(())
    }
}

/// How long one packet of a queue's transaction may take downstream. A silent (half-open)
/// downstream becomes a retryable error after it instead of a queue that waits forever.
pub const APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the packets of one transaction in order; on error, the failing packet's index.
async fn run_packets(
    conn: &mut Conn,
    packets: &[String],
) -> Result<(), (usize, mysql_async::Error)> {
    for (i, p) in packets.iter().enumerate() {
        match tokio::time::timeout(APPLY_TIMEOUT, conn.query_drop(p)).await {
            Ok(r) => r.map_err(|e| (i, e))?,
            Err(_) => {
                let io = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from the downstream within {APPLY_TIMEOUT:?}"),
                );
                return Err((i, mysql_async::Error::Io(mysql_async::IoError::Io(io))));
            }
        }
    }
    Ok(())
}

/// DM's ErrDBExecuteFailed (10006) for a refused transaction, with the statement's start
/// (without the BEGIN) and a workaround for the usual causes.
fn execute_error(packet: &str, e: &mysql_async::Error, epoch: u64) -> UnitError {
    if let mysql_async::Error::Server(s) = e
        && s.code == super::checkpoint::GUARD_FAILED
    {
        // The owner guard: another run claimed the source; this run's write was refused.
        return super::checkpoint::owner_error("apply a transaction", e, epoch);
    }
    let first = packet
        .lines()
        .find(|l| !l.starts_with("BEGIN"))
        .unwrap_or("")
        .trim_end_matches(';')
        .chars()
        .take(300)
        .collect::<String>();
    let mut err = UnitError::from_mysql(
        "downstream",
        format!("execute statement failed: {first}"),
        e,
    );
    if !err.retryable {
        err.workaround = match e {
            mysql_async::Error::Server(s) if s.code == 1062 => "A row with the same key already exists downstream (safe mode is off, so an INSERT does not overwrite it). Remove or fix the conflicting downstream row (or set the task's safe-mode: true to overwrite), then run `resume-task`.".into(),
            _ => "Fix the downstream table (or the task's routes/filters), then run `resume-task`; `query-status` shows the statement.".into(),
        };
    }
    err
}

/// The statements of one transaction: per table (first-appearance order; the changes of one
/// row always belong to one table, so every row keeps its own order), compacted or one by one.
/// Fails when a statement cannot fit `max_allowed_packet`.
fn statements(batch: &[&Change], limits: Limits) -> Result<Vec<String>, TooBig> {
    let mut groups: Vec<(&Arc<TargetTable>, Vec<&Change>)> = Vec::new();
    for c in batch {
        match groups.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &c.table)) {
            Some((_, v)) => v.push(c),
            None => groups.push((&c.table, vec![c])),
        }
    }
    let mut out = Vec::new();
    for (table, changes) in &groups {
        let from = out.len();
        if limits.compact && compactable(table, changes) {
            compact(table, changes, limits, &mut out);
        } else {
            sequential(changes, limits, &mut out);
        }
        if let Some(big) = out[from..].iter().find(|s| s.len() > limits.max_statement) {
            return Err(TooBig {
                table: table_name(table),
                len: big.len(),
                max: limits.max_statement,
            });
        }
    }
    Ok(out)
}

/// A statement the downstream can never accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a statement for {table} is {len} bytes, more than the downstream's max_allowed_packet allows ({max} bytes with a {PACKET_MARGIN}-byte margin)"
)]
pub struct TooBig {
    /// `` `schema`.`table` ``
    pub table: String,
    /// The statement's length in bytes.
    pub len: usize,
    /// The longest statement the downstream accepts.
    pub max: usize,
}

impl From<TooBig> for UnitError {
    fn from(e: TooBig) -> UnitError {
        UnitError::new(code::DB_EXECUTE, "downstream", e.to_string()).workaround(
            "Raise max_allowed_packet on the downstream (SET GLOBAL max_allowed_packet = …, at least twice the row's size plus 16 KiB), then run `resume-task`.",
        )
    }
}

/// Packs a transaction's statements into packets of at most `bound` bytes (a longer statement
/// is a packet of its own): `BEGIN` opens the first, `tail` (checkpoint + COMMIT) closes the
/// last.
fn packets(stmts: &[String], tail: &str, bound: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::from("BEGIN");
    for s in stmts
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(tail))
    {
        if !cur.is_empty() && cur.len() + 2 + s.len() > bound {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push_str(";\n");
        }
        cur.push_str(s);
    }
    out.push(cur);
    out
}

/// A table's changes can be merged per row when the table has a primary key and every row
/// image is complete (no column missing from a MINIMAL/NOBLOB image).
fn compactable(t: &TargetTable, changes: &[&Change]) -> bool {
    !t.pk.is_empty()
        && changes.iter().all(|c| {
            images(&c.change).all(|r| {
                r.len() >= t.columns.len()
                    && r.iter().all(|v| !v.is_missing())
                    && t.pk.iter().all(|&i| i < r.len())
            })
        })
}

fn pk_of(t: &TargetTable, r: &[Value]) -> Vec<Value> {
    t.pk.iter()
        .map(|&i| r.get(i).cloned().unwrap_or(Value::Missing))
        .collect()
}

/// A row's final state in a batch (DM's compactor).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Final<'a> {
    /// The row is this image, from an INSERT; `safe`: it may already exist.
    Insert { row: &'a [Value], safe: bool },
    /// The row was updated in place (same key) to `after`.
    Update {
        before: &'a [Value],
        after: &'a [Value],
        safe: bool,
    },
    /// The row is gone.
    Delete,
}

/// DM's reduction of a row's previous state with its next change:
/// INSERT + UPDATE → INSERT (the insert's safe mode); UPDATE + UPDATE → UPDATE; anything +
/// DELETE → DELETE; DELETE + INSERT → INSERT in safe mode (the row may still be there).
fn reduce<'a>(prev: Option<Final<'a>>, next: Final<'a>) -> Final<'a> {
    match (prev, next) {
        (None, n) => n,
        (Some(Final::Insert { safe, .. }), Final::Update { after, .. }) => {
            Final::Insert { row: after, safe }
        }
        (
            Some(Final::Update {
                before, safe: ps, ..
            }),
            Final::Update { after, safe, .. },
        ) => Final::Update {
            before,
            after,
            safe: ps || safe,
        },
        (Some(Final::Delete), Final::Insert { row, .. }) => Final::Insert { row, safe: true },
        (Some(Final::Insert { safe: ps, .. }), Final::Insert { row, safe })
        | (Some(Final::Update { safe: ps, .. }), Final::Insert { row, safe }) => Final::Insert {
            row,
            safe: ps || safe,
        },
        (Some(_), n) => n,
    }
}

/// Each row's changes in the batch reduce to its final state ([`reduce`]); the rows are then
/// written in the order of their last change, DELETEs first as `DELETE … WHERE (pk) IN (…)`
/// (removing rows first can only free unique values), then runs of the same kind: plain
/// multi-row INSERT, multi-row upsert (safe mode), or one UPDATE per row.
fn compact(t: &TargetTable, changes: &[&Change], limits: Limits, out: &mut Vec<String>) {
    let bound = limits.bound;
    let mut steps: Vec<(Vec<Value>, Final<'_>)> = Vec::with_capacity(changes.len());
    for c in changes {
        let safe = c.safe_mode;
        match &c.change {
            RowChange::Insert(r) => steps.push((pk_of(t, r), Final::Insert { row: r, safe })),
            RowChange::Delete(r) => steps.push((pk_of(t, r), Final::Delete)),
            RowChange::Update { before, after } => {
                let (kb, ka) = (pk_of(t, before), pk_of(t, after));
                if kb != ka {
                    steps.push((kb, Final::Delete));
                    steps.push((ka, Final::Insert { row: after, safe }));
                } else {
                    let f = Final::Update {
                        before,
                        after,
                        safe,
                    };
                    steps.push((ka, f));
                }
            }
        }
    }
    // key → (final state, index of its last change)
    let mut fin: HashMap<Vec<Value>, (Final<'_>, usize)> = HashMap::new();
    for (i, (k, f)) in steps.into_iter().enumerate() {
        let prev = fin.get(&k).map(|(p, _)| *p);
        fin.insert(k, (reduce(prev, f), i));
    }
    let mut rows: Vec<(Vec<Value>, Final<'_>, usize)> =
        fin.into_iter().map(|(k, (f, i))| (k, f, i)).collect();
    rows.sort_by_key(|(_, _, i)| *i);
    let deletes: Vec<Vec<Value>> = rows
        .iter()
        .filter(|(_, f, _)| matches!(f, Final::Delete))
        .map(|(k, _, _)| k.clone())
        .collect();
    if limits.multiple_rows {
        out.extend(dml::delete_in_stmts(t, &t.pk, &deletes, bound));
    } else {
        for k in &deletes {
            out.extend(dml::delete_in_stmts(
                t,
                &t.pk,
                std::slice::from_ref(k),
                bound,
            ));
        }
    }

    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Insert,
        Upsert,
        Update,
    }
    let mut run: Vec<&Final<'_>> = Vec::new();
    let mut run_kind = Kind::Insert;
    let flush = |run: &mut Vec<&Final<'_>>, kind: Kind, out: &mut Vec<String>| {
        if run.is_empty() {
            return;
        }
        match kind {
            Kind::Insert | Kind::Upsert => {
                let imgs: Vec<&[Value]> = run
                    .iter()
                    .filter_map(|f| match f {
                        Final::Insert { row, .. } => Some(*row),
                        Final::Update { after, .. } => Some(*after),
                        Final::Delete => None,
                    })
                    .collect();
                let ik = if kind == Kind::Insert {
                    InsertKind::Insert
                } else {
                    InsertKind::Upsert
                };
                if limits.multiple_rows {
                    out.extend(dml::insert_stmts(t, &imgs, ik, bound));
                } else {
                    for img in imgs {
                        out.extend(dml::insert_stmts(t, &[img], ik, bound));
                    }
                }
            }
            Kind::Update => {
                for f in run.iter() {
                    if let Final::Update { before, after, .. } = f {
                        dml::update_sql(t, before, after, false, out);
                    }
                }
            }
        }
        run.clear();
    };
    for (_, f, _) in &rows {
        let kind = match f {
            Final::Delete => continue,
            Final::Insert { safe: false, .. } => Kind::Insert,
            Final::Insert { safe: true, .. } | Final::Update { safe: true, .. } => Kind::Upsert,
            Final::Update { safe: false, .. } => Kind::Update,
        };
        if kind != run_kind {
            flush(&mut run, run_kind, out);
            run_kind = kind;
        }
        run.push(f);
    }
    flush(&mut run, run_kind, out);
}

/// Statements one by one, in order (tables without a primary key, partial row images, or
/// `compact` off); with `multiple-rows`, consecutive INSERTs of one shape and mode become
/// multi-row statements, cut by bytes, and consecutive DELETEs of complete rows of a table
/// with a primary key one `DELETE … WHERE (pk) IN (…)`.
fn sequential(changes: &[&Change], limits: Limits, out: &mut Vec<String>) {
    let bound = limits.bound;
    let by_pk = |c: &Change| match &c.change {
        RowChange::Delete(r) => {
            let t = &c.table;
            !t.pk.is_empty()
                && r.len() >= t.columns.len()
                && t.pk.iter().all(|&i| i < r.len() && !r[i].is_missing())
        }
        _ => false,
    };
    let mut i = 0;
    while i < changes.len() {
        let c = changes[i];
        match &c.change {
            RowChange::Delete(_) if limits.multiple_rows && by_pk(c) => {
                let mut j = i;
                let mut keys: Vec<Vec<Value>> = Vec::new();
                while j < changes.len() && by_pk(changes[j]) {
                    if let RowChange::Delete(r) = &changes[j].change {
                        keys.push(pk_of(&c.table, r));
                    }
                    j += 1;
                }
                out.extend(dml::delete_in_stmts(&c.table, &c.table.pk, &keys, bound));
                i = j;
            }
            RowChange::Insert(_) => {
                let mut j = i;
                let mut rows: Vec<&[Value]> = Vec::new();
                while j < changes.len()
                    && changes[j].safe_mode == c.safe_mode
                    && (limits.multiple_rows || rows.is_empty())
                {
                    match &changes[j].change {
                        RowChange::Insert(r) if same_shape(r, rows.first().copied()) => {
                            rows.push(r)
                        }
                        _ => break,
                    }
                    j += 1;
                }
                let kind = if c.safe_mode {
                    InsertKind::Replace
                } else {
                    InsertKind::Insert
                };
                out.extend(dml::insert_stmts(&c.table, &rows, kind, bound));
                i = j;
            }
            RowChange::Update { before, after } => {
                dml::update_sql(&c.table, before, after, c.safe_mode, out);
                i += 1;
            }
            RowChange::Delete(r) => {
                let mut s = String::new();
                dml::delete_sql(&c.table, r, &mut s);
                out.push(s);
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
