//! dm-master's secret key (DM v7+'s `--secret-key-path`) and the passwords in its store.
//!
//! The store keeps every source's and task's password sealed (see [`crate::password`]): under
//! the master's key when it has one, else under DM's built-in key. A ciphertext carries no MAC,
//! so a master started with another key would read garbage passwords and fail later with
//! "Access denied" far from the cause. The store therefore records which key sealed it (a
//! keyed hash of the key, never the key; `builtin` for DM's) and [`adopt`] checks it at the
//! start, before anything is loaded:
//! - the same key: nothing to do;
//! - the store was sealed with the built-in key (or predates the record) and a key is given
//!   now: every stored password is sealed again under the key, in one store transaction with
//!   the new record (so a master that gains a key keeps its sources and tasks);
//! - anything else (another key, or a key dropped): the master refuses to start and says so,
//!   since those passwords cannot be read back.
//!
//! Called by [`super::run`] before the scheduler loads the store and before the process's
//! cluster key is set (the re-sealing reads the old seals with the built-in key explicitly).

use std::path::Path;

use super::scheduler::{load_source, load_task};
use super::store::{self, Op, SourceRecord, Store, StoreError, TaskRecord};
use crate::password::{self, Key};

/// The META row recording the sealing key.
pub const SEALING_KEY: &str = "sealing-key";
/// The record for DM's built-in key.
const BUILTIN: &str = "builtin";

/// The record for `key`: a keyed hash (the key cannot be recovered from it).
fn record(key: Option<&Key>) -> String {
    match key {
        None => BUILTIN.to_string(),
        Some(k) => password::keyed_fingerprint(k, &["dm-rs store sealing key"]),
    }
}

/// Why the master cannot use its store with the key it was given.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the passwords stored under {dir} are sealed with {stored}, but dm-master was started {given}: start it with the --secret-key-path it had (to change the key, export the configs with `dmctl config export`, start a master with the new key on an empty --data-dir and `dmctl config import` them)"
    )]
    OtherKey {
        dir: String,
        stored: &'static str,
        given: &'static str,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("re-sealing the stored passwords with the secret key: {0}")]
    Seal(String),
}

/// Checks (and records) which key the store's passwords are sealed with; seals them again
/// under `key` when the store holds DM's built-in seals. Returns how many records changed.
pub fn adopt(store: &Store, dir: &Path, key: Option<&Key>) -> Result<usize, SecretError> {
    let stored = store
        .all::<String>(store::META)?
        .into_iter()
        .find(|(k, _)| k == SEALING_KEY)
        .map(|(_, v)| v);
    let want = record(key);
    if stored.as_deref() == Some(want.as_str()) {
        return Ok(0);
    }
    let builtin_before = stored.as_deref().is_none_or(|s| s == BUILTIN);
    if !builtin_before {
        return Err(SecretError::OtherKey {
            dir: dir.display().to_string(),
            stored: "a secret key",
            given: if key.is_some() {
                "with another --secret-key-path"
            } else {
                "without --secret-key-path"
            },
        });
    }
    let mut ops: Vec<Op> = Vec::new();
    if let Some(k) = key {
        ops.extend(reseal(store, k)?);
    }
    let changed = ops.len();
    ops.push(store::put_op(store::META, SEALING_KEY, &want)?);
    store.write(&ops)?;
    if changed > 0 {
        tracing::info!(
            records = changed,
            "stored passwords sealed again with the secret key"
        );
    }
    Ok(changed)
}

/// A password as stored under the built-in key, in clear (plaintext stays plaintext).
fn builtin_plain(sealed: &str) -> String {
    password::decrypt_with(None, sealed).unwrap_or_else(|_| sealed.to_string())
}

fn seal(key: &Key, plain: &str) -> Result<String, SecretError> {
    password::encrypt_with(Some(key), plain).map_err(|e| SecretError::Seal(e.to_string()))
}

fn yaml<T: serde::Serialize>(v: &T) -> Result<String, SecretError> {
    serde_norway::to_string(v).map_err(|e| SecretError::Seal(e.to_string()))
}

/// The stored sources and tasks with their passwords sealed under `key` (records that no
/// longer load are left as they are: the master reports them when it loads the store).
fn reseal(store: &Store, key: &Key) -> Result<Vec<Op>, SecretError> {
    let mut ops = Vec::new();
    for (id, mut rec) in store.all::<SourceRecord>(store::SOURCES)? {
        let Ok(mut cfg) = load_source(&rec.yaml) else {
            continue;
        };
        cfg.from.password = seal(key, &builtin_plain(&cfg.from.password))?;
        rec.yaml = yaml(&cfg)?;
        ops.push(store::put_op(store::SOURCES, &id, &rec)?);
    }
    for (name, mut rec) in store.all::<TaskRecord>(store::TASKS)? {
        let Ok(mut cfg) = load_task(&rec.yaml) else {
            continue;
        };
        if let Some(db) = cfg.target_database.as_mut() {
            db.password = seal(key, &builtin_plain(&db.password))?;
        }
        rec.yaml = yaml(&cfg)?;
        ops.push(store::put_op(store::TASKS, &name, &rec)?);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = [0x11; 32];

    fn source_password(store: &Store) -> String {
        let (_, rec) = store.all::<SourceRecord>(store::SOURCES).unwrap().remove(0);
        load_source(&rec.yaml).unwrap().from.password
    }

    #[test]
    fn a_store_gains_a_key_once_and_refuses_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A store written under the built-in key (a DM v1–v6 ciphertext with a random IV).
        let rec = SourceRecord {
            id: "s1".into(),
            yaml: "source-id: s1\nfrom: {host: 127.0.0.1, port: 3306, user: root, password: 'Up8156jArvIPymkVC+5LxkAT6rek'}\n".into(),
        };
        store.put(store::SOURCES, "s1", &rec).unwrap();
        assert_eq!(adopt(&store, dir.path(), None).unwrap(), 0);
        assert_eq!(adopt(&store, dir.path(), None).unwrap(), 0);
        // A key now: the password is sealed again under it.
        assert_eq!(adopt(&store, dir.path(), Some(&KEY)).unwrap(), 1);
        let sealed = source_password(&store);
        assert_eq!(password::decrypt_with(Some(&KEY), &sealed).unwrap(), "1234");
        assert_eq!(adopt(&store, dir.path(), Some(&KEY)).unwrap(), 0);
        assert_eq!(source_password(&store), sealed, "sealed once");
        // Without it, or with another one, the master does not start.
        let e = adopt(&store, dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("started without --secret-key-path"), "{e}");
        let e = adopt(&store, dir.path(), Some(&[0x22; 32]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("with another --secret-key-path"), "{e}");
        assert!(!e.contains("1111"), "no key material: {e}");
    }
}
