//! Optimistic shard DDL, the master's side (DM v2's `pkg/shardddl/optimism` and
//! `dm/master/shardddl/optimist.go`): one lock per task and downstream table, spanning every
//! upstream table of every source routed to it.
//!
//! Each worker reports, with every push, its upstream tables of each downstream table and
//! their tracked schemas ([`OptLocks::report_tables`]); a table's schema is taken from there
//! only until the table's first DDL, after which its DDLs alone move it. A DDL of one upstream
//! table arrives as an [`OptInfo`] (its schema before and after); the master joins every
//! table's schema ([`schemacmp::join_all`]) before and after the change:
//! - the joined schema does not change (a column another table already added, a DROP COLUMN
//!   while other tables still have it, a narrower type): nothing runs downstream;
//! - it changes (the first ADD COLUMN, the last DROP COLUMN, a wider type): the DDL runs
//!   downstream — the table's own statements when they change the table exactly as the
//!   joined schema changes, else an `ALTER TABLE` made from the difference;
//! - the join fails (the same column with two incompatible types): a conflict, DM's 11111
//!   message; the worker pauses with 36062 and the table keeps its old schema here. The way
//!   out is `binlog-schema update` (with `--sync`, which sets the table's schema here without
//!   a check) and `binlog skip` / `handle-error`.
//!
//! Statements that change no column (indexes, table options) run once per lock: the first
//! table to bring one runs it, later tables bringing the same text skip it.
//!
//! DML is never blocked: a table's DDL is answered at once, whatever the other tables did.
//! The answer is kept per table with the info's id (the DDL event's end position), so a
//! worker that sends the same DDL again after a crash gets the same answer.
//!
//! The locks are plain data (serde) kept in the master's store; a lock is shown by
//! show-ddl-locks while some table's schema differs from the joined one. Pure logic,
//! table-tested below.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::pb;
use crate::worker::units::sync::schemacmp::{self, ColumnType, Schema};

/// DM's codes of this module.
pub mod codes {
    /// `ErrShardDDLOptimismTrySyncFail`.
    pub const TRY_SYNC_FAIL: i32 = 11111;
}

/// One upstream table's DDL (or, with `ignore_conflict`, its schema set by binlog-schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptInfo {
    pub task: String,
    pub source: String,
    /// `` `db`.`tbl` `` upstream.
    pub up: String,
    /// `` `db`.`tbl` `` downstream.
    pub target: String,
    pub id: String,
    pub ddls: Vec<String>,
    pub before: Schema,
    pub after: Schema,
    pub ignore_conflict: bool,
    pub dropped: bool,
}

/// The answer to an info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub id: String,
    pub ddls: Vec<String>,
    /// Non-empty: a conflict (nothing runs; the table keeps its schema).
    pub conflict: String,
}

/// One upstream table of a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptTable {
    /// None: not known yet (no report with a schema, no DDL).
    pub schema: Option<Schema>,
    /// Moved by a DDL (then reports no longer change it).
    #[serde(default)]
    pub by_ddl: bool,
    /// The answer to the table's latest info (the one sent to its worker).
    pub last: Option<Decided>,
    /// The answers given, oldest first (at most [`HISTORY`]): a worker that restarts from an
    /// earlier checkpoint sends those DDLs again and gets the same answers, without moving
    /// the table's schema again.
    #[serde(default)]
    pub history: Vec<Decided>,
}

/// How many answers a table keeps ([`OptTable::history`]).
pub const HISTORY: usize = 64;

impl OptTable {
    fn answered(&mut self, d: &Decided) {
        self.last = Some(d.clone());
        self.history.push(d.clone());
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
    }
}

/// One lock: a task's downstream table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptLock {
    pub id: String,
    pub task: String,
    pub target: String,
    /// source → upstream table → state
    pub tables: BTreeMap<String, BTreeMap<String, OptTable>>,
    /// Statements that change no column, already run for this lock.
    #[serde(default)]
    pub done_stmts: BTreeSet<String>,
}

impl OptLock {
    fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.tables
            .values()
            .flat_map(|t| t.values())
            .filter_map(|t| t.schema.as_ref())
    }

    /// The joined schema of every known table.
    pub fn joined(&self) -> Result<Schema, String> {
        schemacmp::join_all(self.schemas())
    }

    /// (synced, unsynced) tables as DM shows them: `` <source>-`db`.`tbl` ``.
    pub fn sync_state(&self) -> (Vec<String>, Vec<String>) {
        let joined = self.joined().ok();
        let mut synced = Vec::new();
        let mut unsynced = Vec::new();
        for (source, ts) in &self.tables {
            for (up, t) in ts {
                let name = format!("{source}-{up}");
                if joined.is_some() && t.schema.as_ref() == joined.as_ref() {
                    synced.push(name);
                } else {
                    unsynced.push(name);
                }
            }
        }
        (synced, unsynced)
    }

    /// Some table's schema differs from the joined one (shown by show-ddl-locks).
    pub fn unresolved(&self) -> bool {
        !self.sync_state().1.is_empty()
    }

    /// DM v2's `DDLLock` of an optimistic lock: no owner, no DDLs.
    pub fn to_pb(&self) -> pb::DdlLock {
        let (synced, unsynced) = self.sync_state();
        pb::DdlLock {
            id: self.id.clone(),
            task: self.task.clone(),
            mode: "optimistic".into(),
            owner: String::new(),
            dd_ls: Vec::new(),
            synced,
            unsynced,
        }
    }
}

/// Every optimistic lock of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptLocks {
    pub locks: BTreeMap<String, OptLock>,
}

/// A column change between two schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Add(String, ColumnType),
    Drop(String),
    Modify(String, ColumnType),
}

fn find<'a>(s: &'a Schema, name: &str) -> Option<&'a ColumnType> {
    s.columns
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)
}

/// What turns `a` into `b`, by lowercase column name.
fn diff(a: &Schema, b: &Schema) -> Vec<Change> {
    let mut out = Vec::new();
    for (n, t) in &b.columns {
        match find(a, n) {
            None => out.push(Change::Add(n.to_lowercase(), t.clone())),
            Some(old) if old != t => out.push(Change::Modify(n.to_lowercase(), t.clone())),
            Some(_) => {}
        }
    }
    for (n, _) in &a.columns {
        if find(b, n).is_none() {
            out.push(Change::Drop(n.to_lowercase()));
        }
    }
    out.sort_by(|a, b| change_key(a).cmp(&change_key(b)));
    out
}

fn change_key(c: &Change) -> (u8, &str) {
    match c {
        Change::Add(n, _) => (0, n),
        Change::Drop(n) => (1, n),
        Change::Modify(n, _) => (2, n),
    }
}

fn quote(id: &str) -> String {
    format!("`{}`", id.replace('`', "``"))
}

/// An `ALTER TABLE` that turns the joined schema `a` into `b` downstream.
fn synthesize(target: &str, a: &Schema, b: &Schema) -> Vec<String> {
    let mut specs = Vec::new();
    for (n, t) in &b.columns {
        match find(a, n) {
            None => specs.push(format!("ADD COLUMN {} {}", quote(n), t.to_sql())),
            Some(old) if old != t => {
                specs.push(format!("MODIFY COLUMN {} {}", quote(n), t.to_sql()))
            }
            Some(_) => {}
        }
    }
    for (n, _) in &a.columns {
        if find(b, n).is_none() {
            specs.push(format!("DROP COLUMN {}", quote(n)));
        }
    }
    if specs.is_empty() {
        return Vec::new();
    }
    vec![format!("ALTER TABLE {target} {}", specs.join(", "))]
}

/// DM's lock ID: `` <task>-`db`.`tbl` ``.
pub fn lock_id(task: &str, target: &str) -> String {
    crate::master::shardddl::lock_id(task, target)
}

impl OptLocks {
    /// A worker's report: `source`'s upstream tables of `target` with their tracked schemas
    /// (None: not known yet). Adds the tables a lock does not have; fills a schema only where
    /// no DDL has set it. Returns whether anything changed.
    pub fn report_tables(
        &mut self,
        task: &str,
        source: &str,
        target: &str,
        ups: &[(String, Option<Schema>)],
    ) -> bool {
        let id = lock_id(task, target);
        let lock = self.locks.entry(id.clone()).or_insert_with(|| OptLock {
            id,
            task: task.to_string(),
            target: target.to_string(),
            ..Default::default()
        });
        let tables = lock.tables.entry(source.to_string()).or_default();
        let mut changed = false;
        for (up, schema) in ups {
            let t = tables.entry(up.clone()).or_default();
            if !t.by_ddl && schema.is_some() && &t.schema != schema {
                t.schema = schema.clone();
                changed = true;
            }
        }
        changed
    }

    /// One table's DDL: the answer (the same one again for an id already answered).
    pub fn try_sync(&mut self, info: &OptInfo) -> Decided {
        let id = lock_id(&info.task, &info.target);
        let lock = self.locks.entry(id.clone()).or_insert_with(|| OptLock {
            id: id.clone(),
            task: info.task.clone(),
            target: info.target.clone(),
            ..Default::default()
        });
        if let Some(t) = lock
            .tables
            .get_mut(&info.source)
            .and_then(|t| t.get_mut(&info.up))
            && let Some(d) = t.history.iter().rev().find(|d| d.id == info.id).cloned()
        {
            // Sent again (a resend, or a restart from an earlier checkpoint): the same answer.
            t.last = Some(d.clone());
            return d;
        }
        let mut decided = Decided {
            id: info.id.clone(),
            ..Default::default()
        };
        if info.dropped {
            if let Some(ts) = lock.tables.get_mut(&info.source) {
                ts.remove(&info.up);
            }
            return decided;
        }
        let joined_before = {
            let cur = lock
                .tables
                .get(&info.source)
                .and_then(|t| t.get(&info.up))
                .and_then(|t| t.schema.clone());
            let mut all: Vec<&Schema> = others(lock, &info.source, &info.up).collect();
            let cur = cur.unwrap_or_else(|| info.before.clone());
            all.push(&cur);
            schemacmp::join_all(all)
        };
        let joined_after = {
            let mut all: Vec<&Schema> = others(lock, &info.source, &info.up).collect();
            all.push(&info.after);
            schemacmp::join_all(all)
        };
        let table = lock
            .tables
            .entry(info.source.clone())
            .or_default()
            .entry(info.up.clone())
            .or_default();
        if info.ignore_conflict {
            table.schema = Some(info.after.clone());
            table.by_ddl = true;
            table.answered(&decided);
            return decided;
        }
        let (jb, ja) = match (joined_before, joined_after) {
            (_, Err(e)) | (Err(e), _) => {
                decided.conflict = format!(
                    "[code={}] fail to try sync the optimistic shard ddl lock {id}: there will be conflicts if DDLs {} are applied to the downstream: {e}",
                    codes::TRY_SYNC_FAIL,
                    info.ddls.join("; ")
                );
                table.answered(&decided);
                return decided;
            }
            (Ok(b), Ok(a)) => (b, a),
        };
        if jb == ja {
            if info.before == info.after {
                // Changes no column: runs once per lock.
                for s in &info.ddls {
                    if lock.done_stmts.insert(s.clone()) {
                        decided.ddls.push(s.clone());
                    }
                }
            }
        } else if diff(&info.before, &info.after) == diff(&jb, &ja) {
            decided.ddls = info.ddls.clone();
        } else {
            decided.ddls = synthesize(&info.target, &jb, &ja);
        }
        let table = lock
            .tables
            .entry(info.source.clone())
            .or_default()
            .entry(info.up.clone())
            .or_default();
        table.schema = Some(info.after.clone());
        table.by_ddl = true;
        table.answered(&decided);
        decided
    }

    /// The answers to send `source` for `task`: (upstream table, answer) of every table that
    /// has one.
    pub fn ops(&self, task: &str, source: &str) -> Vec<(String, Decided)> {
        self.locks
            .values()
            .filter(|l| l.task == task)
            .filter_map(|l| l.tables.get(source))
            .flat_map(|ts| {
                ts.iter()
                    .filter_map(|(up, t)| t.last.clone().map(|d| (up.clone(), d)))
            })
            .collect()
    }

    /// show-ddl-locks: the unresolved locks (of `task` when given, with a table of one of
    /// `sources` when given).
    pub fn shown(&self, task: &str, sources: &[String]) -> Vec<pb::DdlLock> {
        self.locks
            .values()
            .filter(|l| task.is_empty() || l.task == task)
            .filter(|l| sources.is_empty() || sources.iter().any(|s| l.tables.contains_key(s)))
            .filter(|l| l.unresolved())
            .map(OptLock::to_pb)
            .collect()
    }

    /// A task stopped: its locks go.
    pub fn remove_task(&mut self, task: &str) -> Vec<String> {
        let ids: Vec<String> = self
            .locks
            .values()
            .filter(|l| l.task == task)
            .map(|l| l.id.clone())
            .collect();
        for id in &ids {
            self.locks.remove(id);
        }
        ids
    }
}

fn others<'a>(lock: &'a OptLock, source: &'a str, up: &'a str) -> impl Iterator<Item = &'a Schema> {
    lock.tables.iter().flat_map(move |(s, ts)| {
        ts.iter()
            .filter(move |(u, _)| !(s == source && u.as_str() == up))
            .filter_map(|(_, t)| t.schema.as_ref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(def: &str) -> ColumnType {
        ColumnType::parse(def).expect(def)
    }
    fn schema(cols: &[(&str, &str)]) -> Schema {
        Schema {
            columns: cols.iter().map(|(n, d)| (n.to_string(), col(d))).collect(),
        }
    }
    const T: &str = "`db`.`t`";

    fn info(
        source: &str,
        up: &str,
        id: &str,
        ddl: &str,
        before: &Schema,
        after: &Schema,
    ) -> OptInfo {
        OptInfo {
            task: "task".into(),
            source: source.into(),
            up: up.into(),
            target: T.into(),
            id: id.into(),
            ddls: vec![ddl.into()],
            before: before.clone(),
            after: after.clone(),
            ignore_conflict: false,
            dropped: false,
        }
    }

    /// Two sources with two shards each, all at (id int, v varchar(10)).
    fn four() -> (OptLocks, Schema) {
        let base = schema(&[("id", "int NOT NULL"), ("v", "varchar(10)")]);
        let mut l = OptLocks::default();
        for s in ["s1", "s2"] {
            let ups = vec![
                ("`a`.`t1`".to_string(), Some(base.clone())),
                ("`a`.`t2`".to_string(), Some(base.clone())),
            ];
            assert!(l.report_tables("task", s, T, &ups));
        }
        (l, base)
    }

    fn with(base: &Schema, extra: &[(&str, &str)]) -> Schema {
        let mut s = base.clone();
        for (n, d) in extra {
            s.columns.push((n.to_string(), col(d)));
        }
        s
    }

    #[test]
    fn the_first_add_column_runs_and_the_others_do_not() {
        let (mut l, base) = four();
        let after = with(&base, &[("c", "int")]);
        let add = "ALTER TABLE `db`.`t` ADD COLUMN `c` INT";
        let d = l.try_sync(&info("s2", "`a`.`t2`", "p1", add, &base, &after));
        assert_eq!(
            (d.ddls.clone(), d.conflict.as_str()),
            (vec![add.to_string()], "")
        );
        assert_eq!(
            l.shown("task", &[]).len(),
            1,
            "three tables still lack the column"
        );
        for (s, u, id) in [
            ("s1", "`a`.`t1`", "p2"),
            ("s1", "`a`.`t2`", "p3"),
            ("s2", "`a`.`t1`", "p4"),
        ] {
            let d = l.try_sync(&info(s, u, id, add, &base, &after));
            assert!(d.ddls.is_empty() && d.conflict.is_empty(), "{s} {u}: {d:?}");
        }
        assert!(
            l.shown("task", &[]).is_empty(),
            "every table has the joined schema"
        );
    }

    #[test]
    fn drop_column_runs_only_when_the_last_table_drops_it() {
        let (mut l, base) = four();
        let after = schema(&[("id", "int NOT NULL")]);
        let drop = "ALTER TABLE `db`.`t` DROP COLUMN `v`";
        let order = [
            ("s1", "`a`.`t2`"),
            ("s2", "`a`.`t1`"),
            ("s1", "`a`.`t1`"),
            ("s2", "`a`.`t2`"),
        ];
        for (i, (s, u)) in order.iter().enumerate() {
            let d = l.try_sync(&info(s, u, &format!("p{i}"), drop, &base, &after));
            if i < 3 {
                assert!(d.ddls.is_empty(), "{i}: {d:?}");
            } else {
                assert_eq!(d.ddls, vec![drop.to_string()]);
            }
        }
    }

    #[test]
    fn a_conflicting_type_is_refused_and_the_table_keeps_its_schema() {
        let (mut l, base) = four();
        let as_int = with(&base, &[("c", "int")]);
        let as_text = with(&base, &[("c", "varchar(10)")]);
        l.try_sync(&info(
            "s1",
            "`a`.`t1`",
            "p1",
            "ALTER TABLE `db`.`t` ADD COLUMN `c` INT",
            &base,
            &as_int,
        ));
        let d = l.try_sync(&info(
            "s2",
            "`a`.`t1`",
            "p2",
            "ALTER TABLE `db`.`t` ADD COLUMN `c` VARCHAR(10)",
            &base,
            &as_text,
        ));
        assert!(d.ddls.is_empty());
        assert!(
            d.conflict.starts_with(
                "[code=11111] fail to try sync the optimistic shard ddl lock task-`db`.`t`"
            ),
            "{}",
            d.conflict
        );
        assert!(
            d.conflict.contains("`c`") || d.conflict.contains("c:") || d.conflict.contains(" c"),
            "{}",
            d.conflict
        );
        let lock = &l.locks["task-`db`.`t`"];
        assert_eq!(lock.tables["s2"]["`a`.`t1`"].schema.as_ref(), Some(&base));
        // binlog-schema update --sync sets the table's schema without a check.
        let mut set = info("s2", "`a`.`t1`", "schema-1", "", &base, &as_int);
        set.ignore_conflict = true;
        set.ddls.clear();
        let d = l.try_sync(&set);
        assert!(d.ddls.is_empty() && d.conflict.is_empty());
        assert_eq!(
            l.locks["task-`db`.`t`"].tables["s2"]["`a`.`t1`"]
                .schema
                .as_ref(),
            Some(&as_int)
        );
    }

    #[test]
    fn a_wider_type_on_one_table_is_a_modify_of_the_joined_column() {
        let (mut l, base) = four();
        let wide = schema(&[("id", "int NOT NULL"), ("v", "varchar(20)")]);
        let ddl = "ALTER TABLE `db`.`t` MODIFY COLUMN `v` VARCHAR(20)";
        let d = l.try_sync(&info("s1", "`a`.`t1`", "p1", ddl, &base, &wide));
        assert_eq!(d.ddls, vec![ddl.to_string()]);
        // Adding a column another table added with a wider type: the joined column widens,
        // so the ALTER is made from the difference.
        let c10 = with(&wide, &[("c", "varchar(10)")]);
        let c30 = with(&base, &[("c", "varchar(30)")]);
        l.try_sync(&info(
            "s1",
            "`a`.`t1`",
            "p2",
            "ALTER TABLE `db`.`t` ADD COLUMN `c` VARCHAR(10)",
            &wide,
            &c10,
        ));
        let d = l.try_sync(&info(
            "s1",
            "`a`.`t2`",
            "p3",
            "ALTER TABLE `db`.`t` ADD COLUMN `c` VARCHAR(30)",
            &base,
            &c30,
        ));
        assert_eq!(
            d.ddls,
            vec!["ALTER TABLE `db`.`t` MODIFY COLUMN `c` varchar(30)".to_string()]
        );
    }

    #[test]
    fn statements_that_change_no_column_run_once_per_lock() {
        let (mut l, base) = four();
        let idx = "ALTER TABLE `db`.`t` ADD INDEX `iv` (`v`)";
        let d = l.try_sync(&info("s1", "`a`.`t1`", "p1", idx, &base, &base));
        assert_eq!(d.ddls, vec![idx.to_string()]);
        let d = l.try_sync(&info("s2", "`a`.`t2`", "p2", idx, &base, &base));
        assert!(d.ddls.is_empty());
    }

    #[test]
    fn the_same_info_again_gets_the_same_answer() {
        let (mut l, base) = four();
        let after = with(&base, &[("c", "int")]);
        let add = "ALTER TABLE `db`.`t` ADD COLUMN `c` INT";
        let first = l.try_sync(&info("s1", "`a`.`t1`", "p1", add, &base, &after));
        let again = l.try_sync(&info("s1", "`a`.`t1`", "p1", add, &base, &after));
        assert_eq!(first, again);
        assert_eq!(again.ddls, vec![add.to_string()]);
        assert_eq!(l.ops("task", "s1"), vec![("`a`.`t1`".to_string(), first)]);
        assert!(l.ops("task", "s2").is_empty());
    }

    #[test]
    fn a_restart_from_an_earlier_checkpoint_gets_the_old_answers_again() {
        let (mut l, base) = four();
        let c = with(&base, &[("c", "int")]);
        let cd = with(&c, &[("d", "int")]);
        let add_c = "ALTER TABLE `db`.`t` ADD COLUMN `c` INT";
        let add_d = "ALTER TABLE `db`.`t` ADD COLUMN `d` INT";
        let first = l.try_sync(&info("s1", "`a`.`t1`", "p1", add_c, &base, &c));
        let second = l.try_sync(&info("s1", "`a`.`t1`", "p2", add_d, &c, &cd));
        assert_eq!(second.ddls, vec![add_d.to_string()]);
        // The worker restarts before p1 and sends both again: the same answers, and the
        // table's schema is not moved back (which would drop `d` downstream).
        assert_eq!(
            l.try_sync(&info("s1", "`a`.`t1`", "p1", add_c, &base, &c)),
            first
        );
        assert_eq!(
            l.ops("task", "s1")[0].1,
            first,
            "the answer sent is the one asked for"
        );
        assert_eq!(
            l.try_sync(&info("s1", "`a`.`t1`", "p2", add_d, &c, &cd)),
            second
        );
        assert_eq!(
            l.locks["task-`db`.`t`"].tables["s1"]["`a`.`t1`"]
                .schema
                .as_ref(),
            Some(&cd)
        );
    }

    #[test]
    fn reports_fill_schemas_only_until_a_ddl_moves_the_table() {
        let (mut l, base) = four();
        let after = with(&base, &[("c", "int")]);
        l.try_sync(&info(
            "s1",
            "`a`.`t1`",
            "p1",
            "ALTER TABLE `db`.`t` ADD COLUMN `c` INT",
            &base,
            &after,
        ));
        // A stale report (the worker's tracker before the DDL) does not undo it.
        assert!(!l.report_tables("task", "s1", T, &[("`a`.`t1`".into(), Some(base.clone()))]));
        assert_eq!(
            l.locks["task-`db`.`t`"].tables["s1"]["`a`.`t1`"]
                .schema
                .as_ref(),
            Some(&after)
        );
        // A new table joins the lock.
        assert!(l.report_tables("task", "s1", T, &[("`a`.`t3`".into(), Some(base.clone()))]));
        assert_eq!(l.locks["task-`db`.`t`"].tables["s1"].len(), 3);
        assert_eq!(l.remove_task("task"), vec!["task-`db`.`t`".to_string()]);
        assert!(l.locks.is_empty());
    }

    #[test]
    fn a_dropped_table_leaves_the_lock() {
        let (mut l, base) = four();
        let mut d = info("s1", "`a`.`t1`", "p1", "", &base, &base);
        d.dropped = true;
        d.ddls.clear();
        assert!(l.try_sync(&d).ddls.is_empty());
        assert_eq!(l.locks["task-`db`.`t`"].tables["s1"].len(), 1);
        let (synced, unsynced) = l.locks["task-`db`.`t`"].sync_state();
        assert_eq!(synced.len(), 3);
        assert!(unsynced.is_empty());
        assert!(synced.contains(&"s2-`a`.`t1`".to_string()));
    }
}
