//! Shard DDL coordination, the worker's side. Pessimistic (DM's `ShardingGroup`, `syncer/sharding_group.go`):
//! per downstream table, the group of this source's upstream tables routed to it.
//!
//! The first DDL of a group opens a round: it records the DDLs (after routing) and where the
//! event started and ended (`first`, `first_end`), and its table is **blocked** — the Sync unit
//! skips that table's later events (they are replayed after the round). Every other table of
//! the group must bring the same DDLs (else DM's 36008, "detect inconsistent DDL sequence");
//! when the last one does, the source is synced for the round and the unit reports it to the
//! master (DM's `Info`) and waits for the master's operation: execute (the lock's owner) or
//! skip (the others). Then the round is resolved: the unit replays the blocked tables' events
//! from `first_end` up to where the last DDL arrived ([`Resolved`]), and continues.
//!
//! CREATE TABLE adds a table to its group, DROP TABLE removes it (a round waiting only on the
//! dropped table becomes synced), TRUNCATE is not coordinated; a DDL naming tables of two groups
//! is DM's 36022. The global checkpoint must not pass the earliest open round's `first`
//! ([`ShardGroups::earliest_first`]) so a restart replays the round.
//!
//! [`ShardGroups`] is pure logic (table-tested below); [`ShardSync`] is the channel between the
//! unit and its worker, which carries the rounds to the master and the master's operations back
//! with every push (`dmrs.proto`: `ShardInfo`, `ShardDone`, `ShardOp`). The Sync unit
//! (`mod.rs`, `shard_ddl`) blocks, waits, executes or skips, and replays; the checkpoint is not
//! saved while a round is open or replayed.
//!
//! Optimistic mode (`shard-mode: optimistic`) uses the same groups (no rounds) and the same
//! channel's optimistic half: the unit publishes its groups with each table's tracked schema
//! ([`ShardSync::set_opt_tables`]) and each shard DDL with the table's schema before and after it
//! ([`ShardSync::opt_request`], `OptInfo`); the worker carries them to the master and the
//! master's answers back (`OptOp`, by the DDL's id, its end position), and the unit runs what
//! the answer says (`mod.rs`, `opt_ddl`; the master's side is `src/master/optimist.rs`).
//! [`renames_columns`] is the DDL the join cannot take (DM's 36062).

use std::collections::{BTreeMap, BTreeSet};

use crate::binlog::Position;
use crate::rules::TableName;

/// DM's codes of this module.
pub mod codes {
    /// `ErrSyncUnitDDLWrongSequence`.
    pub const WRONG_SEQUENCE: i32 = 36008;
    /// `ErrSyncerUnitDDLOnMultipleTable`.
    pub const MULTIPLE_TABLES: i32 = 36022;
    /// `ErrSyncerShardDDLConflict` (optimistic mode).
    pub const SHARD_DDL_CONFLICT: i32 = 36062;
    /// `ErrSyncerUnsupportedStmt` (RENAME TABLE in optimistic mode).
    pub const UNSUPPORTED_STMT: i32 = 36068;
}

/// Optimistic mode: a DDL that both removes and adds columns (a column rename, or ADD and
/// DROP in one statement) cannot be joined — DM refuses both. Returns why.
pub fn renames_columns(
    before: &super::schemacmp::Schema,
    after: &super::schemacmp::Schema,
) -> Option<String> {
    let has = |s: &super::schemacmp::Schema, n: &str| {
        s.columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(n))
    };
    let gone: Vec<&str> = before
        .columns
        .iter()
        .filter(|(n, _)| !has(after, n))
        .map(|(n, _)| n.as_str())
        .collect();
    let new: Vec<&str> = after
        .columns
        .iter()
        .filter(|(n, _)| !has(before, n))
        .map(|(n, _)| n.as_str())
        .collect();
    (!gone.is_empty() && !new.is_empty()).then(|| {
        format!(
            "renaming a column, or adding and dropping columns in one statement, is not supported in optimistic mode (columns {gone:?} go, {new:?} come)"
        )
    })
}

/// An open round of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The DDLs, routed (as they would run downstream).
    pub ddls: Vec<String>,
    /// Where the first DDL's event started and ended.
    pub first: Position,
    pub first_end: Position,
    /// Where the latest DDL of the round ended (the replay stops there).
    pub last_end: Position,
    /// Upstream tables that reached the DDLs (blocked until the round is resolved).
    pub synced: BTreeSet<TableName>,
    /// Where each synced table's DDL event ended: its events after that are the ones held
    /// back (the replay starts each table there and skips the DDL events themselves).
    pub ends: BTreeMap<TableName, Position>,
    /// Where each synced table's DDL event started (DM's sharding meta `first-position`).
    pub starts: BTreeMap<TableName, Position>,
}

/// One downstream table's group on this source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub tables: BTreeSet<TableName>,
    pub round: Option<Round>,
}

impl Group {
    fn unsynced(&self) -> Vec<TableName> {
        match &self.round {
            Some(r) => self.tables.difference(&r.synced).cloned().collect(),
            None => Vec::new(),
        }
    }
}

/// What a DDL of a shard table means for the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The table is blocked; the group waits for these tables.
    Wait {
        target: TableName,
        waiting: Vec<TableName>,
    },
    /// Every table of the group on this source reached the DDLs: report to the master.
    Synced {
        target: TableName,
        ddls: Vec<String>,
    },
}

/// A refused DDL: DM's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for ShardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[code={}] {}", self.code, self.message)
    }
}

/// A resolved round: replay the blocked tables' events from `from` up to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub target: TableName,
    pub from: Position,
    pub to: Position,
    /// The held-back tables, each with the end of its own DDL of the round: only its events
    /// after that are replayed (the earlier ones ran the first time through).
    pub tables: BTreeMap<TableName, Position>,
    /// The round's DDL events (by end position): not run again by the replay.
    pub ddl_ends: BTreeSet<Position>,
}

/// This source's groups.
#[derive(Debug, Clone, Default)]
pub struct ShardGroups {
    groups: BTreeMap<TableName, Group>,
    /// upstream table → its downstream table
    of: BTreeMap<TableName, TableName>,
}

impl ShardGroups {
    /// Groups from (upstream table, downstream table) pairs: only downstream tables with two or
    /// more upstream tables form a group (a lone table's DDL needs no coordination on this
    /// source, but the master may still coordinate it across sources: keep singles too).
    pub fn new(pairs: impl IntoIterator<Item = (TableName, TableName)>) -> ShardGroups {
        let mut g = ShardGroups::default();
        for (up, down) in pairs {
            g.add_table(up, down);
        }
        g
    }

    /// CREATE TABLE (or a table seen for the first time): joins its group.
    pub fn add_table(&mut self, up: TableName, down: TableName) {
        self.groups
            .entry(down.clone())
            .or_default()
            .tables
            .insert(up.clone());
        self.of.insert(up, down);
    }

    /// DROP TABLE: leaves its group. A round that only waited for it becomes synced
    /// (`Some(Step::Synced)`).
    pub fn remove_table(&mut self, up: &TableName) -> Option<Step> {
        let down = self.of.remove(up)?;
        let g = self.groups.get_mut(&down)?;
        g.tables.remove(up);
        let round = g.round.as_mut()?;
        round.synced.remove(up);
        round.ends.remove(up);
        round.starts.remove(up);
        if round.synced.is_empty() {
            g.round = None;
            return None;
        }
        let ddls = round.ddls.clone();
        if g.unsynced().is_empty() {
            return Some(Step::Synced { target: down, ddls });
        }
        None
    }

    /// Whether `down` already has upstream tables in its group (a new shard's CREATE TABLE
    /// then need not run downstream: the merged table exists).
    pub fn has_tables(&self, down: &TableName) -> bool {
        self.groups.get(down).is_some_and(|g| !g.tables.is_empty())
    }

    /// Every group: the downstream table and its upstream tables.
    pub fn members(&self) -> Vec<(TableName, Vec<TableName>)> {
        self.groups
            .iter()
            .map(|(d, g)| (d.clone(), g.tables.iter().cloned().collect()))
            .collect()
    }

    /// The downstream table of an upstream table in a group.
    pub fn target_of(&self, up: &TableName) -> Option<&TableName> {
        self.of.get(up)
    }

    /// Whether `up`'s events are held back (its group's round is open and it reached the DDL).
    pub fn is_blocked(&self, up: &TableName) -> bool {
        self.of
            .get(up)
            .and_then(|d| self.groups.get(d))
            .and_then(|g| g.round.as_ref())
            .is_some_and(|r| r.synced.contains(up))
    }

    /// A DDL event on the upstream tables `ups` (every table it names), routed to `ddls`,
    /// from `start` to `end`.
    pub fn on_ddl(
        &mut self,
        ups: &[TableName],
        ddls: Vec<String>,
        start: &Position,
        end: &Position,
    ) -> Result<Step, ShardError> {
        let downs: BTreeSet<&TableName> = ups.iter().filter_map(|u| self.of.get(u)).collect();
        let (Some(up), 1) = (ups.first(), downs.len()) else {
            return Err(ShardError {
                code: codes::MULTIPLE_TABLES,
                message: format!("ddl on multiple table: {} not supported", ddls.join("; ")),
            });
        };
        let down = self.of[up].clone();
        let g = self.groups.get_mut(&down).expect("a table's group exists");
        match &mut g.round {
            None => {
                g.round = Some(Round {
                    ddls: ddls.clone(),
                    first: start.clone(),
                    first_end: end.clone(),
                    last_end: end.clone(),
                    synced: BTreeSet::from([up.clone()]),
                    ends: BTreeMap::from([(up.clone(), end.clone())]),
                    starts: BTreeMap::from([(up.clone(), start.clone())]),
                });
            }
            Some(r) => {
                if r.ddls != ddls {
                    return Err(ShardError {
                        code: codes::WRONG_SEQUENCE,
                        message: format!(
                            "detect inconsistent DDL sequence from source {}, right DDL sequence should be {:?}, but got {:?}",
                            up.quoted(),
                            r.ddls,
                            ddls
                        ),
                    });
                }
                r.synced.insert(up.clone());
                r.ends.insert(up.clone(), end.clone());
                r.starts.insert(up.clone(), start.clone());
                r.last_end = end.clone();
            }
        }
        let waiting = g.unsynced();
        if waiting.is_empty() {
            Ok(Step::Synced { target: down, ddls })
        } else {
            Ok(Step::Wait {
                target: down,
                waiting,
            })
        }
    }

    /// The master resolved the round of `target` (executed by the owner or skipped): the
    /// blocked tables are free again, and their events between the round's first DDL and its
    /// last are to be replayed.
    pub fn resolve(&mut self, target: &TableName) -> Option<Resolved> {
        let g = self.groups.get_mut(target)?;
        let r = g.round.take()?;
        Some(Resolved {
            target: target.clone(),
            from: r.first_end,
            to: r.last_end,
            ddl_ends: r.ends.values().cloned().collect(),
            tables: r.ends,
        })
    }

    /// DM's sharding meta rows (`<task>_syncer_sharding_meta`) of `target`'s open round: the
    /// global row (`source_table_id` "") and one per table that reached the DDLs; empty when
    /// no round is open (DM deletes the rows then).
    pub fn meta_rows(&self, source_id: &str, target: &TableName) -> Vec<MetaRow> {
        let Some(r) = self.groups.get(target).and_then(|g| g.round.as_ref()) else {
            return Vec::new();
        };
        let item = |t: &TableName| {
            let p = r.starts.get(t).unwrap_or(&r.first);
            serde_json::json!({
                "ddls": r.ddls,
                "source": t.quoted(),
                "first-position": { "Name": p.file, "Pos": p.pos },
                "first-gtid-set": "",
            })
        };
        // The global sequence's item is the round's first table's (DM: the first to bring
        // the DDLs); each table's own sequence holds its item.
        let first = r
            .starts
            .iter()
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(t, _)| t.clone());
        let mut rows = vec![MetaRow {
            source_id: source_id.to_string(),
            target_table_id: target.quoted(),
            source_table_id: String::new(),
            is_global: true,
            data: serde_json::Value::Array(first.iter().map(item).collect()).to_string(),
        }];
        for t in &r.synced {
            rows.push(MetaRow {
                source_id: source_id.to_string(),
                target_table_id: target.quoted(),
                source_table_id: t.quoted(),
                is_global: false,
                data: serde_json::Value::Array(vec![item(t)]).to_string(),
            });
        }
        rows
    }

    /// Whether any round is open.
    pub fn any_open(&self) -> bool {
        self.groups.values().any(|g| g.round.is_some())
    }

    /// The earliest start of an open round: the checkpoint must not pass it.
    pub fn earliest_first(&self) -> Option<&Position> {
        self.groups
            .values()
            .filter_map(|g| g.round.as_ref().map(|r| &r.first))
            .min()
    }

    /// DM's `unresolvedGroups` (query-status): open rounds, with `firstLocation` in DM's text.
    pub fn unresolved(&self) -> Vec<crate::pb::ShardingGroup> {
        self.groups
            .iter()
            .filter_map(|(down, g)| {
                let r = g.round.as_ref()?;
                Some(crate::pb::ShardingGroup {
                    target: down.quoted(),
                    dd_ls: r.ddls.clone(),
                    first_location: format!("position: {}", r.first),
                    synced: r.synced.iter().map(TableName::quoted).collect(),
                    unsynced: g.unsynced().iter().map(TableName::quoted).collect(),
                })
            })
            .collect()
    }
}

/// One row of DM's `<meta-schema>.<task>_syncer_sharding_meta` (`active_index` is always 0:
/// a round holds one DDL event; DM's multi-DDL sequences are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRow {
    pub source_id: String,
    pub target_table_id: String,
    pub source_table_id: String,
    pub is_global: bool,
    /// JSON array of DM v2's items `{"ddls","source","first-position","first-gtid-set"}`.
    pub data: String,
}

/// An operation the master sent for a synced round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOp {
    pub lock_id: String,
    pub ddls: Vec<String>,
    pub exec: bool,
    /// DM v1's `--sharding` operator the master hands the owner with its exec.
    pub sql: Option<super::ops::Action>,
}

#[derive(Debug, Default)]
struct SyncInner {
    /// downstream table → DDLs of a synced round waiting for its op
    waiting: BTreeMap<String, Vec<String>>,
    /// downstream table → the op of the latest push
    ops: BTreeMap<String, LockOp>,
    /// lock IDs carried out, reported until the master stops sending their op
    done: BTreeSet<String>,
    /// downstream table → an op given here (DM v1's break-ddl-lock), ahead of the master's
    local: BTreeMap<String, LockOp>,
    /// query-status: the open rounds and the DDLs this subtask waits on
    unresolved: Vec<crate::pb::ShardingGroup>,
    /// Optimistic: upstream table → its DDL (or binlog-schema --sync) waiting for the answer
    opt_infos: BTreeMap<String, crate::dmrs::OptInfo>,
    /// Optimistic: upstream table → the master's answer of the latest push
    opt_ops: BTreeMap<String, crate::dmrs::OptOp>,
    /// Optimistic: the unit's groups with their tables' schemas (reported with every push)
    opt_tables: Vec<crate::dmrs::OptTables>,
}

/// What a subtask's Sync unit and its worker share about shard DDL locks: the unit publishes
/// its synced rounds, the worker reports them to the master and hands back the master's ops
/// (level-triggered both ways, with every push). Rounds of one downstream table are serial: a
/// round is not reported while the previous one's `done` waits for the master.
#[derive(Debug, Default)]
pub struct ShardSync {
    inner: std::sync::Mutex<SyncInner>,
    notify: tokio::sync::Notify,
}

impl ShardSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, SyncInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The unit: this source's tables of `target` reached `ddls`.
    pub fn wait_for(&self, target: &str, ddls: Vec<String>) {
        self.lock().waiting.insert(target.to_string(), ddls);
    }

    /// The worker: the ops of the latest push (replacing the previous ones). `done` IDs the
    /// master no longer sends are forgotten.
    pub fn set_ops(&self, ops: impl IntoIterator<Item = (String, LockOp)>) {
        let mut g = self.lock();
        g.ops = ops.into_iter().collect();
        let sent: BTreeSet<String> = g.ops.values().map(|o| o.lock_id.clone()).collect();
        g.done.retain(|id| sent.contains(id));
        drop(g);
        self.notify.notify_waiters();
    }

    /// The worker: the rounds to report (not those whose previous round's done is pending).
    pub fn infos(&self, task: &str) -> Vec<(String, Vec<String>)> {
        let g = self.lock();
        g.waiting
            .iter()
            .filter(|(t, _)| !g.done.contains(&lock_id_of(task, t)))
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect()
    }

    /// The worker: lock IDs carried out.
    pub fn done(&self) -> Vec<String> {
        self.lock().done.iter().cloned().collect()
    }

    /// The unit: the op for `target`'s round, once the master sent it (None when cancelled).
    pub async fn op_for(
        &self,
        target: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<LockOp> {
        loop {
            let notified = self.notify.notified();
            {
                let g = self.lock();
                if let Some(op) = g.local.get(target) {
                    return Some(op.clone());
                }
                if let Some(op) = g.ops.get(target).filter(|o| !g.done.contains(&o.lock_id)) {
                    return Some(op.clone());
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = cancel.cancelled() => return None,
            }
        }
    }

    /// The unit carried out `op` for `target`'s round.
    pub fn carried_out(&self, target: &str, op: &LockOp) {
        let mut g = self.lock();
        g.waiting.remove(target);
        g.local.remove(target);
        g.done.insert(op.lock_id.clone());
    }

    /// DM v1's break-ddl-lock `--exec` / `--skip`: every round this subtask waits on is
    /// carried out here without the master's operation. Returns the lock IDs concerned (empty:
    /// nothing waits).
    pub fn break_locally(&self, task: &str, exec: bool) -> Vec<String> {
        let mut g = self.lock();
        let waiting: Vec<(String, Vec<String>)> = g
            .waiting
            .iter()
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect();
        let mut ids = Vec::new();
        for (target, ddls) in waiting {
            let lock_id = lock_id_of(task, &target);
            ids.push(lock_id.clone());
            g.local.insert(
                target,
                LockOp {
                    lock_id,
                    ddls,
                    exec,
                    sql: None,
                },
            );
        }
        drop(g);
        self.notify.notify_waiters();
        ids
    }

    /// Optimistic, the unit (or binlog-schema --sync): `info` waits for the master's answer.
    pub fn opt_request(&self, info: crate::dmrs::OptInfo) {
        self.lock().opt_infos.insert(info.up.clone(), info);
    }

    /// Optimistic, the unit: the master's answer to `up`'s info `id` (None when cancelled).
    pub async fn opt_op_for(
        &self,
        up: &str,
        id: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<crate::dmrs::OptOp> {
        loop {
            let notified = self.notify.notified();
            if let Some(op) = self.lock().opt_ops.get(up).filter(|o| o.id == id) {
                return Some(op.clone());
            }
            tokio::select! {
                _ = notified => {}
                _ = cancel.cancelled() => return None,
            }
        }
    }

    /// Optimistic, the unit: `up`'s info was answered and carried out.
    pub fn opt_finished(&self, up: &str, id: &str) {
        let mut g = self.lock();
        if g.opt_infos.get(up).is_some_and(|i| i.id == id) {
            g.opt_infos.remove(up);
        }
    }

    /// Optimistic, the worker: the answers of the latest push. An info already answered is no
    /// longer sent (binlog-schema --sync infos are finished here: no unit waits for them).
    pub fn set_opt_ops(&self, ops: impl IntoIterator<Item = crate::dmrs::OptOp>) {
        let mut g = self.lock();
        g.opt_ops = ops.into_iter().map(|o| (o.up.clone(), o)).collect();
        let SyncInner {
            opt_infos, opt_ops, ..
        } = &mut *g;
        opt_infos
            .retain(|up, i| !(i.ignore_conflict && opt_ops.get(up).is_some_and(|o| o.id == i.id)));
        drop(g);
        self.notify.notify_waiters();
    }

    /// Optimistic, the worker: the infos to send (those not answered yet).
    pub fn opt_infos(&self) -> Vec<crate::dmrs::OptInfo> {
        let g = self.lock();
        g.opt_infos
            .values()
            .filter(|i| g.opt_ops.get(&i.up).is_none_or(|o| o.id != i.id))
            .cloned()
            .collect()
    }

    /// Optimistic, the unit: its groups and their tables' schemas.
    pub fn set_opt_tables(&self, tables: Vec<crate::dmrs::OptTables>) {
        self.lock().opt_tables = tables;
    }

    /// Optimistic, the worker: what to report with every push.
    pub fn opt_tables(&self) -> Vec<crate::dmrs::OptTables> {
        self.lock().opt_tables.clone()
    }

    /// The unit's open rounds, for query-status.
    pub fn set_unresolved(&self, groups: Vec<crate::pb::ShardingGroup>) {
        self.lock().unresolved = groups;
    }

    /// query-status: (unresolvedGroups, blockingDDLs, unresolvedDDLLockID).
    pub fn status(&self, task: &str) -> (Vec<crate::pb::ShardingGroup>, Vec<String>, String) {
        let g = self.lock();
        if let Some(i) = g.opt_infos.values().find(|i| !i.ignore_conflict) {
            // Optimistic: the DDL waiting for the master's answer.
            return (Vec::new(), i.ddls.clone(), lock_id_of(task, &i.target));
        }
        let blocking: Vec<String> = g.waiting.values().flatten().cloned().collect();
        let lock = g
            .waiting
            .keys()
            .find_map(|t| g.ops.get(t).map(|o| o.lock_id.clone()))
            .or_else(|| g.waiting.keys().next().map(|t| lock_id_of(task, t)))
            .unwrap_or_default();
        (g.unresolved.clone(), blocking, lock)
    }
}

/// DM's lock ID for a task's downstream table.
pub fn lock_id_of(task: &str, target: &str) -> String {
    format!("{task}-{target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, n: &str) -> TableName {
        TableName {
            schema: s.into(),
            table: n.into(),
        }
    }
    fn p(pos: u64) -> Position {
        Position {
            file: "b.000001".into(),
            pos,
        }
    }
    const ADD: &str = "ALTER TABLE `db`.`t` ADD COLUMN `c` INT";

    fn groups() -> ShardGroups {
        ShardGroups::new([
            (t("s1", "t1"), t("db", "t")),
            (t("s1", "t2"), t("db", "t")),
            (t("s2", "t1"), t("db", "t")),
            (t("s1", "other"), t("db", "other")),
        ])
    }

    #[test]
    fn the_last_table_to_reach_the_ddl_syncs_the_group() {
        let mut g = groups();
        let ddls = vec![ADD.to_string()];
        // Tables arrive in any order; each is blocked once it has the DDL.
        let order = [t("s2", "t1"), t("s1", "t1"), t("s1", "t2")];
        let mut steps = Vec::new();
        for (i, up) in order.iter().enumerate() {
            assert!(!g.is_blocked(up));
            let s = g
                .on_ddl(
                    std::slice::from_ref(up),
                    ddls.clone(),
                    &p(100 * i as u64 + 10),
                    &p(100 * i as u64 + 50),
                )
                .unwrap();
            assert!(g.is_blocked(up));
            steps.push(s);
        }
        assert_eq!(
            steps[0],
            Step::Wait {
                target: t("db", "t"),
                waiting: vec![t("s1", "t1"), t("s1", "t2")]
            }
        );
        assert_eq!(
            steps[2],
            Step::Synced {
                target: t("db", "t"),
                ddls: ddls.clone()
            }
        );
        // The other group is not touched.
        assert!(!g.is_blocked(&t("s1", "other")));
        assert_eq!(g.earliest_first(), Some(&p(10)));
        let u = g.unresolved();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].target, "`db`.`t`");
        assert_eq!(u[0].first_location, "position: (b.000001, 10)");
        assert!(u[0].unsynced.is_empty());
        // Resolved: replay from the first DDL's end to the last one's, tables free again.
        let r = g.resolve(&t("db", "t")).unwrap();
        assert_eq!((r.from, r.to), (p(50), p(250)));
        assert_eq!(r.ddl_ends, BTreeSet::from([p(50), p(150), p(250)]));
        assert_eq!(
            r.tables,
            BTreeMap::from([
                (t("s2", "t1"), p(50)),
                (t("s1", "t1"), p(150)),
                (t("s1", "t2"), p(250)),
            ])
        );
        assert_eq!(r.tables.len(), 3);
        assert!(!g.is_blocked(&t("s1", "t1")));
        assert_eq!(g.earliest_first(), None);
        assert!(g.unresolved().is_empty());
    }

    #[test]
    fn the_sharding_meta_rows_follow_the_open_round() {
        let mut g = groups();
        assert!(g.meta_rows("s", &t("db", "t")).is_empty());
        g.on_ddl(&[t("s1", "t2")], vec![ADD.into()], &p(10), &p(50))
            .unwrap();
        g.on_ddl(&[t("s1", "t1")], vec![ADD.into()], &p(60), &p(90))
            .unwrap();
        let rows = g.meta_rows("mysql-01", &t("db", "t"));
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows[0].is_global && rows[0].source_table_id.is_empty());
        assert_eq!(rows[0].target_table_id, "`db`.`t`");
        let global: serde_json::Value = serde_json::from_str(&rows[0].data).unwrap();
        assert_eq!(
            global,
            serde_json::json!([{
                "ddls": [ADD],
                "source": "`s1`.`t2`",
                "first-position": {"Name": "b.000001", "Pos": 10},
                "first-gtid-set": ""
            }])
        );
        assert_eq!(rows[1].source_table_id, "`s1`.`t1`");
        let own: serde_json::Value = serde_json::from_str(&rows[1].data).unwrap();
        assert_eq!(own[0]["first-position"]["Pos"], 60);
        g.resolve(&t("db", "t")).unwrap();
        assert!(g.meta_rows("mysql-01", &t("db", "t")).is_empty());
    }

    #[test]
    fn a_different_ddl_in_the_round_is_the_sequence_error() {
        let mut g = groups();
        g.on_ddl(&[t("s1", "t1")], vec![ADD.into()], &p(10), &p(50))
            .unwrap();
        let e = g
            .on_ddl(
                &[t("s1", "t2")],
                vec!["ALTER TABLE `db`.`t` ADD COLUMN `d` INT".into()],
                &p(60),
                &p(90),
            )
            .unwrap_err();
        assert_eq!(e.code, 36008);
        assert!(
            e.message.contains("detect inconsistent DDL sequence"),
            "{e}"
        );
        assert!(!g.is_blocked(&t("s1", "t2")));
    }

    #[test]
    fn a_ddl_on_tables_of_two_groups_is_refused() {
        let mut g = groups();
        let e = g
            .on_ddl(
                &[t("s1", "t1"), t("s1", "other")],
                vec!["RENAME TABLE …".into()],
                &p(10),
                &p(50),
            )
            .unwrap_err();
        assert_eq!(e.code, 36022);
    }

    #[test]
    fn tables_join_and_leave_groups() {
        let mut g = groups();
        g.on_ddl(&[t("s1", "t1")], vec![ADD.into()], &p(10), &p(50))
            .unwrap();
        g.on_ddl(&[t("s1", "t2")], vec![ADD.into()], &p(60), &p(90))
            .unwrap();
        // The round waited only for s2.t1: dropping it syncs the group.
        assert_eq!(
            g.remove_table(&t("s2", "t1")),
            Some(Step::Synced {
                target: t("db", "t"),
                ddls: vec![ADD.into()]
            })
        );
        // A new table joins and the next round waits for it too.
        g.resolve(&t("db", "t")).unwrap();
        assert!(g.has_tables(&t("db", "t")));
        assert!(!g.has_tables(&t("db", "nope")));
        g.add_table(t("s3", "t9"), t("db", "t"));
        let s = g
            .on_ddl(&[t("s1", "t1")], vec![ADD.into()], &p(100), &p(150))
            .unwrap();
        assert_eq!(
            s,
            Step::Wait {
                target: t("db", "t"),
                waiting: vec![t("s1", "t2"), t("s3", "t9")]
            }
        );
        // Dropping the only synced table closes the round.
        assert_eq!(g.remove_table(&t("s1", "t1")), None);
        assert_eq!(g.earliest_first(), None);
        assert_eq!(g.target_of(&t("s1", "t1")), None);
    }

    #[tokio::test]
    async fn rounds_are_reported_ops_handed_back_and_done_kept_until_acknowledged() {
        let s = ShardSync::default();
        let cancel = tokio_util::sync::CancellationToken::new();
        s.wait_for("`db`.`t`", vec![ADD.into()]);
        assert_eq!(
            s.infos("task"),
            vec![("`db`.`t`".to_string(), vec![ADD.to_string()])]
        );
        let (groups, blocking, lock) = s.status("task");
        assert!(groups.is_empty());
        assert_eq!(blocking, vec![ADD.to_string()]);
        assert_eq!(lock, "task-`db`.`t`");
        let op = LockOp {
            lock_id: "task-`db`.`t`".into(),
            ddls: vec![ADD.into()],
            exec: true,
            sql: None,
        };
        // The op arrives with a push while the unit waits.
        let waiter = {
            let s = std::sync::Arc::new(s);
            let s2 = s.clone();
            let c = cancel.clone();
            let h = tokio::spawn(async move { s2.op_for("`db`.`t`", &c).await });
            tokio::task::yield_now().await;
            s.set_ops([("`db`.`t`".to_string(), op.clone())]);
            (s, h.await.unwrap())
        };
        let (s, got) = waiter;
        assert_eq!(got, Some(op.clone()));
        s.carried_out("`db`.`t`", &op);
        assert_eq!(s.done(), vec![op.lock_id.clone()]);
        // A new round of the same table is not reported, nor is the old op taken again, until
        // the master stops sending it.
        s.wait_for("`db`.`t`", vec![ADD.into()]);
        assert!(s.infos("task").is_empty());
        let c2 = tokio_util::sync::CancellationToken::new();
        c2.cancel();
        assert_eq!(s.op_for("`db`.`t`", &c2).await, None);
        s.set_ops([]);
        assert!(s.done().is_empty());
        assert_eq!(s.infos("task").len(), 1);
    }

    fn opt_info(up: &str, id: &str, ignore: bool) -> crate::dmrs::OptInfo {
        crate::dmrs::OptInfo {
            task: "task".into(),
            up: up.into(),
            target: "`db`.`t`".into(),
            id: id.into(),
            ddls: if ignore { vec![] } else { vec![ADD.into()] },
            ignore_conflict: ignore,
            ..Default::default()
        }
    }

    fn opt_op(up: &str, id: &str) -> crate::dmrs::OptOp {
        crate::dmrs::OptOp {
            up: up.into(),
            id: id.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_optimistic_info_is_sent_until_its_answer_comes() {
        let s = std::sync::Arc::new(ShardSync::default());
        s.opt_request(opt_info("`a`.`t1`", "p1", false));
        assert_eq!(s.opt_infos().len(), 1);
        let (_, blocking, lock) = s.status("task");
        assert_eq!(
            (blocking, lock.as_str()),
            (vec![ADD.to_string()], "task-`db`.`t`")
        );
        // An answer to an earlier DDL of the table is not this one's.
        s.set_opt_ops([opt_op("`a`.`t1`", "p0")]);
        assert_eq!(s.opt_infos().len(), 1);
        let cancel = tokio_util::sync::CancellationToken::new();
        let waiter = {
            let (s, c) = (s.clone(), cancel.clone());
            tokio::spawn(async move { s.opt_op_for("`a`.`t1`", "p1", &c).await })
        };
        tokio::task::yield_now().await;
        s.set_opt_ops([opt_op("`a`.`t1`", "p1")]);
        assert_eq!(waiter.await.unwrap(), Some(opt_op("`a`.`t1`", "p1")));
        assert!(s.opt_infos().is_empty(), "answered: no longer sent");
        s.opt_finished("`a`.`t1`", "p1");
        assert!(s.status("task").1.is_empty());
        // Cancelled while waiting: None.
        cancel.cancel();
        assert_eq!(s.opt_op_for("`a`.`t1`", "p2", &cancel).await, None);
    }

    #[test]
    fn a_binlog_schema_sync_is_forgotten_once_answered() {
        let s = ShardSync::default();
        s.opt_request(opt_info("`a`.`t2`", "schema-1", true));
        assert!(s.status("task").1.is_empty(), "not a blocking DDL");
        assert_eq!(s.opt_infos().len(), 1);
        s.set_opt_ops([opt_op("`a`.`t2`", "schema-1")]);
        assert!(s.opt_infos().is_empty());
        s.set_opt_ops([]);
        assert!(s.opt_infos().is_empty(), "no unit waits for it: it is gone");
    }
}
