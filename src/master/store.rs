//! The master's durable state in redb, under `--data-dir`: sources, tasks, subtasks (expected
//! stage and ids), workers and bindings, so a restarted master keeps everything.
//!
//! Values are JSON documents under string keys; the scheduler keeps the same state in memory
//! and writes through here on every change, before answering the client. Nothing else reads
//! or writes the file.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A table of the store.
pub type Table = TableDefinition<'static, &'static str, &'static str>;

pub const SOURCES: Table = TableDefinition::new("sources");
pub const TASKS: Table = TableDefinition::new("tasks");
pub const SUBTASKS: Table = TableDefinition::new("subtasks");
pub const WORKERS: Table = TableDefinition::new("workers");
pub const BINDINGS: Table = TableDefinition::new("bindings");
pub const COUNTERS: Table = TableDefinition::new("counters");

/// A created source: normalised, its password DM-encrypted (no `${ENV}` needed on restart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceRecord {
    pub id: String,
    pub yaml: String,
}

/// A started task: normalised, password DM-encrypted, and a revision bumped by update-task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    pub name: String,
    pub yaml: String,
    pub config_rev: u64,
}

/// One task on one source: what the worker bound to the source must run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubTaskRecord {
    pub task: String,
    pub source: String,
    /// Expected stage (`pb::Stage` as i32): Running or Paused.
    pub expect: i32,
    pub start_id: u64,
    pub remove_meta: bool,
    pub stage_rev: u64,
}

impl SubTaskRecord {
    pub fn key(&self) -> String {
        subtask_key(&self.task, &self.source)
    }
}

pub fn subtask_key(task: &str, source: &str) -> String {
    format!("{task}\u{1}{source}")
}

/// A worker that registered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerRecord {
    pub name: String,
    pub addr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("master state store: {0}")]
    Db(String),
    #[error("master state store: bad record in {table}/{key}: {cause}")]
    Decode {
        table: String,
        key: String,
        cause: String,
    },
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The redb file `<data-dir>/dm-master.redb`.
pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| db_err(format!("{}: {e}", dir.display())))?;
        let path = dir.join("dm-master.redb");
        let db = Database::create(&path).map_err(|e| db_err(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        for t in [SOURCES, TASKS, SUBTASKS, WORKERS, BINDINGS, COUNTERS] {
            txn.open_table(t).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Store { db })
    }

    /// Applies puts (`Some`) and deletes (`None`) in one transaction.
    pub fn write(&self, ops: &[(Table, String, Option<String>)]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        for (t, k, v) in ops {
            let mut table = txn.open_table(*t).map_err(db_err)?;
            match v {
                Some(v) => {
                    table.insert(k.as_str(), v.as_str()).map_err(db_err)?;
                }
                None => {
                    table.remove(k.as_str()).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    pub fn put<T: Serialize>(&self, t: Table, key: &str, v: &T) -> Result<(), StoreError> {
        let json = serde_json::to_string(v).map_err(db_err)?;
        self.write(&[(t, key.to_string(), Some(json))])
    }

    pub fn delete(&self, t: Table, key: &str) -> Result<(), StoreError> {
        self.write(&[(t, key.to_string(), None)])
    }

    /// Every record of a table, in key order.
    pub fn all<T: DeserializeOwned>(&self, t: Table) -> Result<Vec<(String, T)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let key = k.value().to_string();
            let val = serde_json::from_str(v.value()).map_err(|e| StoreError::Decode {
                table: format!("{t}"),
                key: key.clone(),
                cause: e.to_string(),
            })?;
            out.push((key, val));
        }
        Ok(out)
    }

    /// Next value of a named counter (start ids), durable.
    pub fn next_id(&self, name: &str) -> Result<u64, StoreError> {
        let cur: u64 = self
            .all::<u64>(COUNTERS)?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or(0);
        let next = cur + 1;
        self.put(COUNTERS, name, &next)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let r = SourceRecord {
                id: "s1".into(),
                yaml: "source-id: s1\n".into(),
            };
            s.put(SOURCES, "s1", &r).unwrap();
            s.put(BINDINGS, "s1", &"w1".to_string()).unwrap();
            assert_eq!(s.next_id("start").unwrap(), 1);
            assert_eq!(s.next_id("start").unwrap(), 2);
            s.put(SOURCES, "s2", &r).unwrap();
            s.delete(SOURCES, "s2").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let all: Vec<(String, SourceRecord)> = s.all(SOURCES).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.yaml, "source-id: s1\n");
        assert_eq!(s.next_id("start").unwrap(), 3);
        let b: Vec<(String, String)> = s.all(BINDINGS).unwrap();
        assert_eq!(b, vec![("s1".to_string(), "w1".to_string())]);
    }
}
