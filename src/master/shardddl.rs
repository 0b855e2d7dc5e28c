//! Pessimistic shard DDL, the master's side (DM v2's `pkg/shardddl/pessimism` and
//! `dm/master/shardddl/pessimist.go`): one lock per task and downstream table.
//!
//! A source whose shard tables all reached a DDL reports it ([`Info`]); the first report
//! creates the lock (ID `<task>-` + the downstream table, DM's form) with that source as its
//! owner, and every source of the task must report the same DDLs (else DM's 38016). When all
//! have, the lock is synced: the owner is told to execute the DDLs ([`Op`] with `exec`), and
//! once it is done the others are told to skip them; when every source is done the lock is
//! resolved and removed.
//!
//! `unlock-ddl-lock` resolves a lock by hand: the owner (or a replacement, `-o`) must be
//! waiting on it (DM's 38022); the lock is forced synced, the owner executes, the sources that
//! reached the DDL skip it, and the lock goes (38019 when there is no such lock).
//!
//! The state is plain data (serde) so the master keeps it in its store: a master restart in
//! the middle of a lock keeps it (DM v1 lost them). Pure logic: table-tested below; the
//! scheduler feeds it the workers' reports from each push and sends its ops with the next
//! (`scheduler.rs`, `shard_reports`), and saves every changed lock in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pb;

/// DM's codes of this module.
pub mod codes {
    /// `ErrMasterShardingDDLDiff`.
    pub const DDL_DIFF: i32 = 38016;
    /// `ErrMasterLockNotFound`.
    pub const LOCK_NOT_FOUND: i32 = 38019;
    /// `ErrMasterWorkerNotWaitLock`.
    pub const OWNER_NOT_WAITING: i32 = 38022;
}

/// A source's report: its shard tables of `target` reached `ddls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub task: String,
    pub source: String,
    /// The downstream table, `` `db`.`tbl` ``.
    pub target: String,
    pub ddls: Vec<String>,
}

/// What a source must do about a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: String,
    pub task: String,
    /// The downstream table, `` `db`.`tbl` ``.
    pub target: String,
    pub source: String,
    pub ddls: Vec<String>,
    /// Execute (the owner) or skip (the others).
    pub exec: bool,
    /// DM v1's `--sharding` operator for the owner's execution, if one matches.
    pub sql: Option<SqlOp>,
}

/// DM v1's `sql-skip` / `sql-replace --sharding`: kept on the master per task and pattern,
/// handed to the owner of the first lock of the task whose DDLs match, used once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlOp {
    pub task: String,
    /// `~regexp` or the exact statement (after routing).
    pub pattern: String,
    /// Skip the DDLs, or (false) run `sqls` instead.
    pub skip: bool,
    pub sqls: Vec<String>,
}

impl SqlOp {
    /// The store key (one operator per task and pattern; a new one replaces it).
    pub fn key(&self) -> String {
        format!("{}\u{0}{}", self.task, self.pattern)
    }

    fn matches(&self, l: &Lock) -> bool {
        l.task == self.task
            && l.ddls
                .iter()
                .any(|d| crate::worker::units::sync::ops::pattern_matches(&self.pattern, d))
    }
}

/// One lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub id: String,
    pub task: String,
    pub target: String,
    /// The owner's source ID.
    pub owner: String,
    pub ddls: Vec<String>,
    /// source → reached the DDLs
    pub ready: BTreeMap<String, bool>,
    /// source → executed / skipped them
    pub done: BTreeMap<String, bool>,
    /// Resolved by hand (`unlock-ddl-lock`): the sources it left out stay out.
    #[serde(default)]
    pub forced: bool,
}

impl Lock {
    pub fn synced(&self) -> bool {
        self.ready.values().all(|r| *r)
    }

    /// DM's `DDLLock` for show-ddl-locks (synced / unsynced are source IDs, sorted).
    pub fn to_pb(&self) -> pb::DdlLock {
        let (synced, unsynced): (Vec<_>, Vec<_>) = self.ready.iter().partition(|(_, r)| **r);
        pb::DdlLock {
            id: self.id.clone(),
            task: self.task.clone(),
            mode: "pessimistic".into(),
            owner: self.owner.clone(),
            dd_ls: self.ddls.clone(),
            synced: synced.into_iter().map(|(s, _)| s.clone()).collect(),
            unsynced: unsynced.into_iter().map(|(s, _)| s.clone()).collect(),
        }
    }
}

/// A refused request: DM's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[code={}] {}", self.code, self.message)
    }
}

/// DM's lock ID: `` <task>-`db`.`tbl` ``.
pub fn lock_id(task: &str, target: &str) -> String {
    format!("{task}-{target}")
}

/// Every lock of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locks {
    pub locks: BTreeMap<String, Lock>,
    /// `--sharding` operators by [`SqlOp::key`] (durable in their own store table).
    #[serde(default)]
    pub sql_ops: BTreeMap<String, SqlOp>,
}

impl Locks {
    /// A source reports `info`; `sources` are the task's sources. Returns the lock's ID and
    /// whether it is synced now.
    pub fn try_sync(
        &mut self,
        info: Info,
        sources: &[String],
    ) -> Result<(String, bool), LockError> {
        let id = lock_id(&info.task, &info.target);
        let lock = self.locks.entry(id.clone()).or_insert_with(|| Lock {
            id: id.clone(),
            task: info.task.clone(),
            target: info.target.clone(),
            owner: info.source.clone(),
            ddls: info.ddls.clone(),
            ready: sources.iter().map(|s| (s.clone(), false)).collect(),
            done: BTreeMap::new(),
            forced: false,
        });
        // Sources that joined the task since the lock began take part too (not in a lock
        // resolved by hand).
        if !lock.forced {
            for s in sources {
                lock.ready.entry(s.clone()).or_insert(false);
            }
        }
        if lock.ddls != info.ddls {
            return Err(LockError {
                code: codes::DDL_DIFF,
                message: format!(
                    "sharding ddls in ddl lock {id} is different with {:?}: the lock has {:?} (from {})",
                    info.ddls, lock.ddls, lock.owner
                ),
            });
        }
        lock.ready.insert(info.source, true);
        Ok((id, lock.synced()))
    }

    /// What each source must do now: the owner of a synced lock executes; once it is done,
    /// the others skip.
    pub fn ops(&self) -> Vec<Op> {
        let mut out = Vec::new();
        for l in self.locks.values().filter(|l| l.synced()) {
            let owner_done = l.done.get(&l.owner).copied().unwrap_or(false);
            if !owner_done {
                out.push(Op {
                    id: l.id.clone(),
                    task: l.task.clone(),
                    target: l.target.clone(),
                    source: l.owner.clone(),
                    ddls: l.ddls.clone(),
                    exec: true,
                    sql: self.sql_for(l).cloned(),
                });
                continue;
            }
            for (s, ready) in &l.ready {
                if *ready && s != &l.owner && !l.done.get(s).copied().unwrap_or(false) {
                    out.push(Op {
                        id: l.id.clone(),
                        task: l.task.clone(),
                        target: l.target.clone(),
                        source: s.clone(),
                        ddls: l.ddls.clone(),
                        exec: false,
                        sql: None,
                    });
                }
            }
        }
        out
    }

    /// `source` carried out its op of lock `id`. Returns true when the lock is resolved (and
    /// removed).
    /// The `--sharding` operator for `l`'s owner: the first (by key) whose pattern matches
    /// one of its DDLs.
    fn sql_for(&self, l: &Lock) -> Option<&SqlOp> {
        self.sql_ops.values().find(|o| o.matches(l))
    }

    pub fn done(&mut self, id: &str, source: &str) -> bool {
        if let Some(l) = self.locks.get(id)
            && l.owner == source
            && !l.done.get(source).copied().unwrap_or(false)
            && let Some(key) = self.sql_for(l).map(SqlOp::key)
        {
            // The owner carried out the lock with it: used once.
            self.sql_ops.remove(&key);
        }
        let Some(l) = self.locks.get_mut(id) else {
            return false;
        };
        l.done.insert(source.to_string(), true);
        let all = l
            .ready
            .iter()
            .filter(|(_, r)| **r)
            .all(|(s, _)| l.done.get(s).copied().unwrap_or(false));
        if all && l.synced() {
            self.locks.remove(id);
            return true;
        }
        false
    }

    /// `unlock-ddl-lock ID [-o owner]`: forces the lock synced with `owner` (default: its
    /// own) executing; the sources that reached the DDLs skip them.
    pub fn unlock(&mut self, id: &str, replace_owner: Option<&str>) -> Result<(), LockError> {
        let l = self.locks.get_mut(id).ok_or_else(|| LockError {
            code: codes::LOCK_NOT_FOUND,
            message: format!("lock with ID {id} not found"),
        })?;
        let owner = replace_owner.unwrap_or(&l.owner).to_string();
        if !l.ready.get(&owner).copied().unwrap_or(false) {
            let waiting: Vec<&String> = l
                .ready
                .iter()
                .filter(|(_, r)| **r)
                .map(|(s, _)| s)
                .collect();
            return Err(LockError {
                code: codes::OWNER_NOT_WAITING,
                message: format!(
                    "owner {owner} is not waiting for a lock, but sources {waiting:?} are waiting for the lock"
                ),
            });
        }
        l.owner = owner;
        // Sources that never reached the DDL are left out: they neither execute nor skip.
        l.ready.retain(|_, r| *r);
        l.forced = true;
        Ok(())
    }

    /// DM's show-ddl-locks: the locks of `task` (all when empty) that involve one of
    /// `sources` (all when empty).
    pub fn show(&self, task: &str, sources: &[String]) -> Vec<pb::DdlLock> {
        self.locks
            .values()
            .filter(|l| task.is_empty() || l.task == task)
            .filter(|l| sources.is_empty() || sources.iter().any(|s| l.ready.contains_key(s)))
            .map(Lock::to_pb)
            .collect()
    }

    /// A stopped task's locks go with it.
    pub fn remove_task(&mut self, task: &str) {
        self.locks.retain(|_, l| l.task != task);
        self.sql_ops.retain(|_, o| o.task != task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "`db`.`t`";
    const ADD: &str = "ALTER TABLE `db`.`t` ADD COLUMN `c` INT";

    fn info(source: &str, ddl: &str) -> Info {
        Info {
            task: "task".into(),
            source: source.into(),
            target: T.into(),
            ddls: vec![ddl.into()],
        }
    }
    fn srcs() -> Vec<String> {
        vec!["s1".into(), "s2".into(), "s3".into()]
    }

    #[test]
    fn a_sharding_sql_operator_goes_to_the_owner_once() {
        let mut l = Locks::default();
        for (pattern, skip) in [("~(?i)DROP COLUMN", true), ("~(?i)ADD COLUMN", false)] {
            let op = SqlOp {
                task: "task".into(),
                pattern: pattern.into(),
                skip,
                sqls: if skip {
                    vec![]
                } else {
                    vec!["ALTER TABLE `db`.`t` ADD COLUMN `c` BIGINT".into()]
                },
            };
            l.sql_ops.insert(op.key(), op);
        }
        for s in srcs() {
            l.try_sync(info(&s, ADD), &srcs()).unwrap();
        }
        let ops = l.ops();
        assert_eq!(ops.len(), 1);
        let sql = ops[0]
            .sql
            .as_ref()
            .expect("the ADD COLUMN operator matches");
        assert!(!sql.skip && sql.pattern == "~(?i)ADD COLUMN", "{sql:?}");
        // Carried out by the owner: used up; the others skip without it.
        l.done("task-`db`.`t`", &ops[0].source);
        assert_eq!(
            l.sql_ops.len(),
            1,
            "the DROP COLUMN operator waits for its lock"
        );
        assert!(l.ops().iter().all(|o| !o.exec && o.sql.is_none()));
        l.remove_task("task");
        assert!(l.sql_ops.is_empty());
    }

    #[test]
    fn a_lock_syncs_when_every_source_reports_and_resolves_when_all_are_done() {
        let mut l = Locks::default();
        // s2 reports first: it owns the lock.
        assert_eq!(
            l.try_sync(info("s2", ADD), &srcs()).unwrap(),
            ("task-`db`.`t`".to_string(), false)
        );
        assert!(
            l.ops().is_empty(),
            "nothing to do before the lock is synced"
        );
        let shown = l.show("task", &[]);
        assert_eq!(shown[0].owner, "s2");
        assert_eq!(shown[0].synced, vec!["s2"]);
        assert_eq!(shown[0].unsynced, vec!["s1", "s3"]);
        assert_eq!(shown[0].mode, "pessimistic");
        l.try_sync(info("s3", ADD), &srcs()).unwrap();
        let (_, synced) = l.try_sync(info("s1", ADD), &srcs()).unwrap();
        assert!(synced);
        // The owner executes first …
        let ops = l.ops();
        assert_eq!(ops.len(), 1);
        assert_eq!((ops[0].source.as_str(), ops[0].exec), ("s2", true));
        assert!(!l.done("task-`db`.`t`", "s2"));
        // … then the others skip.
        let ops = l.ops();
        let skip: Vec<(&str, bool)> = ops.iter().map(|o| (o.source.as_str(), o.exec)).collect();
        assert_eq!(skip, vec![("s1", false), ("s3", false)]);
        assert!(!l.done("task-`db`.`t`", "s1"));
        assert!(l.done("task-`db`.`t`", "s3"), "resolved");
        assert!(l.locks.is_empty());
        assert!(l.ops().is_empty());
    }

    #[test]
    fn a_different_ddl_is_refused_and_the_lock_stays() {
        let mut l = Locks::default();
        l.try_sync(info("s1", ADD), &srcs()).unwrap();
        let e = l
            .try_sync(
                info("s2", "ALTER TABLE `db`.`t` ADD COLUMN `d` INT"),
                &srcs(),
            )
            .unwrap_err();
        assert_eq!(e.code, 38016);
        assert!(e.message.contains("is different with"), "{e}");
        assert_eq!(l.show("", &[])[0].synced, vec!["s1"]);
    }

    #[test]
    fn unlock_forces_a_lock_a_source_never_reaches() {
        let mut l = Locks::default();
        let e = l.unlock("task-`db`.`x`", None).unwrap_err();
        assert_eq!(e.code, 38019);
        assert_eq!(e.message, "lock with ID task-`db`.`x` not found");
        l.try_sync(info("s1", ADD), &srcs()).unwrap();
        l.try_sync(info("s2", ADD), &srcs()).unwrap();
        // s3 never sends the DDL; an owner that is not waiting is refused.
        let e = l.unlock("task-`db`.`t`", Some("s3")).unwrap_err();
        assert_eq!(e.code, 38022);
        l.unlock("task-`db`.`t`", Some("s2")).unwrap();
        // A waiting source reports again: the lock stays forced (s3 is not added back).
        assert!(l.try_sync(info("s1", ADD), &srcs()).unwrap().1);
        let ops = l.ops();
        assert_eq!((ops[0].source.as_str(), ops[0].exec), ("s2", true));
        l.done("task-`db`.`t`", "s2");
        assert_eq!(l.ops().len(), 1, "s1 skips; s3 gets nothing");
        assert!(l.done("task-`db`.`t`", "s1"));
    }

    #[test]
    fn locks_survive_a_round_trip_through_the_store_and_go_with_their_task() {
        let mut l = Locks::default();
        l.try_sync(info("s1", ADD), &srcs()).unwrap();
        let mut other = info("s1", ADD);
        other.task = "other".into();
        l.try_sync(other, &srcs()).unwrap();
        let json = serde_json::to_string(&l).unwrap();
        let mut back: Locks = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.show("", &["s2".to_string()]).len(), 2);
        assert_eq!(back.show("other", &[]).len(), 1);
        back.remove_task("other");
        assert_eq!(back.show("", &[]).len(), 1);
    }
}
