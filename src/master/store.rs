//! The master's durable state in redb, under `--data-dir`: sources, tasks, subtasks (expected
//! stage and ids), workers and bindings, so a restarted master keeps everything.
//!
//! The data dir is 0700 and its files 0600: they hold sealed passwords (under DM's built-in
//! key, or the `--secret-key-path` key, recorded in [`META`]: see `secret.rs`) and the
//! master's secret key (`fingerprint.key`, behind get-config's password fingerprint).
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
/// Pessimistic shard DDL locks, one row per lock ID (see `shardddl.rs`).
pub const SHARD_LOCKS: Table = TableDefinition::new("shard_locks");
/// DM v1's `--sharding` SQL operators, one row per task and pattern (see `shardddl.rs`).
pub const SHARD_SQL_OPS: Table = TableDefinition::new("shard_sql_ops");
/// Relay wishes, one row per source (see `relay.rs`).
pub const RELAY: Table = TableDefinition::new("relay");
/// Optimistic shard DDL locks, one row per lock ID (see `optimist.rs`).
pub const OPT_LOCKS: Table = TableDefinition::new("opt_locks");
/// Facts about the store itself: which key its passwords are sealed with (see `secret.rs`).
pub const META: Table = TableDefinition::new("meta");

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

/// The stage the master wants a subtask in. Stored by name ("Running", "Paused"); a store
/// written before names were used holds DM's `pb::Stage` numbers, which still load. A stopped
/// subtask has no record at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpectedStage {
    Running,
    Paused,
}

impl<'de> Deserialize<'de> for ExpectedStage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Number(i64),
        }
        match Form::deserialize(d)? {
            Form::Name(n) if n == "Running" => Ok(ExpectedStage::Running),
            Form::Name(n) if n == "Paused" => Ok(ExpectedStage::Paused),
            // DM's pb.Stage: Running = 2, Paused = 3.
            Form::Number(2) => Ok(ExpectedStage::Running),
            Form::Number(3) => Ok(ExpectedStage::Paused),
            Form::Name(n) => Err(serde::de::Error::custom(format!("unknown stage {n:?}"))),
            Form::Number(n) => Err(serde::de::Error::custom(format!("unknown stage {n}"))),
        }
    }
}

/// One task on one source: what the worker bound to the source must run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubTaskRecord {
    pub task: String,
    pub source: String,
    pub expect: ExpectedStage,
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
    #[error("master state store: cannot encode {table}/{key}: {cause}")]
    Encode {
        table: String,
        key: String,
        cause: String,
    },
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

/// One change of a [`Store::write`]: a put (`Some(json)`) or a delete (`None`).
pub type Op = (Table, String, Option<String>);

/// A put of `v` as JSON under `key`.
pub fn put_op<T: Serialize>(t: Table, key: &str, v: &T) -> Result<Op, StoreError> {
    let json = serde_json::to_string(v).map_err(|e| StoreError::Encode {
        table: format!("{t}"),
        key: key.to_string(),
        cause: e.to_string(),
    })?;
    Ok((t, key.to_string(), Some(json)))
}

/// A delete of `key`.
pub fn del_op(t: Table, key: &str) -> Op {
    (t, key.to_string(), None)
}

/// The redb file `<data-dir>/dm-master.redb`, and the master's secret key
/// `<data-dir>/fingerprint.key` (32 random bytes, 0600, created once).
pub struct Store {
    db: Database,
    key: [u8; 32],
}

/// The file of the key behind get-config's password fingerprint.
pub const KEY_FILE: &str = "fingerprint.key";

/// Reads the master's secret key, creating it (0600) on first start.
fn load_or_create_key(dir: &Path) -> Result<[u8; 32], StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(KEY_FILE);
    let err = |e: String| db_err(format!("{}: {e}", path.display()));
    match std::fs::read(&path) {
        Ok(bytes) => {
            private_file(&path)?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| err(format!("expected 32 bytes, found {}", bytes.len())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| err(e.to_string()))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| err(e.to_string()))?;
            f.write_all(&key).map_err(|e| err(e.to_string()))?;
            f.sync_all().map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

impl Store {
    /// Opens (or creates) the store. The data dir is created 0700 and the redb file is kept
    /// 0600: it holds the sources' and tasks' passwords (sealed, under DM's public key unless
    /// the master has a `--secret-key-path` key).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        private_dir(dir)?;
        let path = dir.join("dm-master.redb");
        let db = Database::create(&path).map_err(|e| db_err(format!("{}: {e}", path.display())))?;
        private_file(&path)?;
        let key = load_or_create_key(dir)?;
        let txn = db.begin_write().map_err(db_err)?;
        for t in [
            SOURCES,
            TASKS,
            SUBTASKS,
            WORKERS,
            BINDINGS,
            COUNTERS,
            SHARD_LOCKS,
            SHARD_SQL_OPS,
            OPT_LOCKS,
            RELAY,
            META,
        ] {
            txn.open_table(t).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Store { db, key })
    }

    /// A fingerprint of `parts` under the master's secret key (see
    /// [`crate::password::keyed_fingerprint`]); the key itself is never handed out.
    pub fn fingerprint(&self, parts: &[&str]) -> String {
        crate::password::keyed_fingerprint(&self.key, parts)
    }

    /// Applies puts (`Some`) and deletes (`None`) in one transaction (fsynced: call it
    /// outside any lock the request path shares).
    pub fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
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
        self.write(&[put_op(t, key, v)?])
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
        self.reserve_ids(name, 1)
    }

    /// Reserves `n` consecutive values of a named counter in one write; returns the first.
    pub fn reserve_ids(&self, name: &str, n: u64) -> Result<u64, StoreError> {
        let cur: u64 = self
            .all::<u64>(COUNTERS)?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or(0);
        self.put(COUNTERS, name, &(cur + n))?;
        Ok(cur + 1)
    }
}

/// Creates `dir` (and its parents) 0700; an existing dir is narrowed to 0700.
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |e: std::io::Error| db_err(format!("{}: {e}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Narrows a file of the data dir to 0600.
pub fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| db_err(format!("{}: {e}", path.display())))
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

    #[test]
    fn data_dir_and_file_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("data");
        drop(Store::open(&dir).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("dm-master.redb")), 0o600);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    }

    #[test]
    fn the_key_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap().fingerprint(&["t", "pw"]);
        let b = Store::open(dir.path()).unwrap().fingerprint(&["t", "pw"]);
        assert_eq!(a, b, "the same key after a restart");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            a,
            Store::open(other.path()).unwrap().fingerprint(&["t", "pw"])
        );
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(Store::open(dir.path()).is_err());
    }

    #[test]
    fn stage_is_stored_by_name_and_old_numbers_load() {
        let rec = SubTaskRecord {
            task: "t".into(),
            source: "s".into(),
            expect: ExpectedStage::Paused,
            start_id: 1,
            remove_meta: false,
            stage_rev: 0,
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains("\"expect\":\"Paused\""), "{json}");
        let old = json.replace("\"Paused\"", "2");
        let back: SubTaskRecord = serde_json::from_str(&old).unwrap();
        assert_eq!(back.expect, ExpectedStage::Running);
        assert!(serde_json::from_str::<SubTaskRecord>(&json.replace("Paused", "Lost")).is_err());
    }
}
