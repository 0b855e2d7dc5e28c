//! What the load unit does with each dump file, in DM's order: databases, tables, data, views.
//!
//! A file becomes an [`Entry`] by its name ([`crate::worker::units::full::naming::classify`],
//! which knows dumpling's and mydumper 0.9 – 0.13's names). Reading a whole directory
//! ([`scan_dir`]) orders the entries as DM does — every database, then every table, then the
//! data files (round-robin over the tables), then the views — and adds a database entry without a file for each database
//! that has tables but no `-schema-create.sql` (DM generates `CREATE DATABASE` for it).

use std::collections::BTreeSet;
use std::path::Path;

use crate::worker::units::full::naming::{DumpFile, classify};

/// One thing to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A database; `file` is its `-schema-create.sql` (None: generate `CREATE DATABASE`).
    Db { db: String, file: Option<String> },
    /// A table's `-schema.sql`.
    Table {
        db: String,
        table: String,
        file: String,
    },
    /// A data file.
    Data {
        db: String,
        table: String,
        file: String,
        size: u64,
    },
    /// A view's `-schema-view.sql`.
    View {
        db: String,
        view: String,
        file: String,
    },
}

impl Entry {
    /// The entry of a file, by its name (`None` for `metadata`, dm-rs's own files and the
    /// files the loader does not load).
    pub fn of(name: &str, size: u64) -> Option<Entry> {
        match classify(name) {
            DumpFile::SchemaCreate { db } => Some(Entry::Db {
                db,
                file: Some(name.to_string()),
            }),
            DumpFile::TableSchema { db, table } => Some(Entry::Table {
                db,
                table,
                file: name.to_string(),
            }),
            DumpFile::ViewSchema { db, view } => Some(Entry::View {
                db,
                view,
                file: name.to_string(),
            }),
            DumpFile::Data { db, table, .. } => Some(Entry::Data {
                db,
                table,
                file: name.to_string(),
                size,
            }),
            DumpFile::Metadata => None,
            DumpFile::Ignored(why) => {
                if name.ends_with(".sql") {
                    tracing::warn!(file = name, why, "dump file not loaded");
                }
                None
            }
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Entry::Db { .. } => 0,
            Entry::Table { .. } => 1,
            Entry::Data { .. } => 2,
            Entry::View { .. } => 3,
        }
    }

    /// The file's name, if any.
    pub fn file(&self) -> Option<&str> {
        match self {
            Entry::Db { file, .. } => file.as_deref(),
            Entry::Table { file, .. } | Entry::Data { file, .. } | Entry::View { file, .. } => {
                Some(file)
            }
        }
    }
}

/// Orders entries as DM loads them and adds the missing databases.
pub fn order(mut entries: Vec<Entry>) -> Vec<Entry> {
    let have: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Db { db, .. } => Some(db.clone()),
            _ => None,
        })
        .collect();
    let mut missing = BTreeSet::new();
    for e in &entries {
        if let Entry::Table { db, .. } | Entry::Data { db, .. } | Entry::View { db, .. } = e
            && !have.contains(db)
        {
            missing.insert(db.clone());
        }
    }
    entries.extend(missing.into_iter().map(|db| Entry::Db { db, file: None }));
    entries.sort_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then_with(|| a.file().unwrap_or("").cmp(b.file().unwrap_or("")))
    });
    // Data files round-robin over the tables (the first file of every table, then the
    // second…), so the connections load different tables at once instead of contending for
    // the end of one table's primary key.
    let mut nth: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut keyed: Vec<(u8, usize, Entry)> = entries
        .into_iter()
        .map(|e| {
            let k = match &e {
                Entry::Data { db, table, .. } => {
                    let n = nth.entry((db.clone(), table.clone())).or_insert(0);
                    *n += 1;
                    *n
                }
                _ => 0,
            };
            (e.rank(), k, e)
        })
        .collect();
    // Stable: within the same rank and round, the name order stays.
    keyed.sort_by_key(|(rank, k, _)| (*rank, *k));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

/// The entries of a dump directory, in DM's order, and whether it has a `metadata` file.
pub fn scan_dir(dir: &Path) -> std::io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut meta = false;
    for de in std::fs::read_dir(dir)? {
        let de = de?;
        if !de.file_type()?.is_file() {
            continue;
        }
        let Some(name) = de.file_name().to_str().map(str::to_string) else {
            tracing::warn!(file = ?de.file_name(), "dump file name is not UTF-8: not loaded");
            continue;
        };
        if name == crate::worker::units::full::METADATA_FILE {
            meta = true;
            continue;
        }
        let size = de.metadata()?.len();
        entries.extend(Entry::of(&name, size));
    }
    Ok((order(entries), meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_dms_order_and_missing_databases_are_generated() {
        let names = [
            "b.t.00001.sql",
            "a.t.0000000000001.sql",
            "b.v-schema-view.sql",
            "a.t.0000000000000.sql",
            "a.t-schema.sql",
            "b.t-schema.sql",
            "a-schema-create.sql",
            "a.t-schema-triggers.sql",
            "metadata",
            "dm-rs-dump.json",
            "dm-rs-dump.journal",
            "b.t.sql.tmp",
        ];
        let got = order(names.iter().filter_map(|n| Entry::of(n, 7)).collect());
        let kinds: Vec<String> = got
            .iter()
            .map(|e| match e {
                Entry::Db { db, file } => format!("db {db} {file:?}"),
                Entry::Table { db, table, .. } => format!("table {db}.{table}"),
                Entry::Data { file, size, .. } => format!("data {file} {size}"),
                Entry::View { db, view, .. } => format!("view {db}.{view}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "db b None",
                "db a Some(\"a-schema-create.sql\")",
                "table a.t",
                "table b.t",
                "data a.t.0000000000000.sql 7",
                "data b.t.00001.sql 7",
                "data a.t.0000000000001.sql 7",
                "view b.v",
            ]
        );
    }

    #[test]
    fn escaped_names_are_unescaped() {
        assert_eq!(
            Entry::of("a%2Eb.c%2Dschema.000000000.sql", 3),
            Some(Entry::Data {
                db: "a.b".into(),
                table: "c-schema".into(),
                file: "a%2Eb.c%2Dschema.000000000.sql".into(),
                size: 3
            })
        );
    }
}
