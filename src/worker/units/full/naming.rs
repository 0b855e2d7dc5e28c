//! Dump file names: dumpling's escaping of database and table names, and the classification
//! of a dump directory's files, for dm-rs's own dumps (dumpling's layout) and for mydumper's
//! (0.9 – 0.13) and dumpling's.
//!
//! Escaping (dumpling's `fn` template function): the bytes `\x00`–`\x1f` and
//! `% " * . / : < > ? \ |` are written `%XX` (upper-case hex), and so is the `-` of any
//! `-schema` (case-insensitive) inside a name, so a name never forges a file kind. The loader
//! reverses any `%XX`.

/// A dump directory entry, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpFile {
    /// `{db}-schema-create.sql`.
    SchemaCreate { db: String },
    /// `{db}.{tbl}-schema.sql`.
    TableSchema { db: String, table: String },
    /// `{db}.{view}-schema-view.sql`.
    ViewSchema { db: String, view: String },
    /// `{db}.{tbl}.sql`, `{db}.{tbl}.{n}.sql` or mydumper 0.13's `{db}.{tbl}.{n}.{m}.sql`;
    /// `chunk` is what stands between the table and `.sql` (empty for `{db}.{tbl}.sql`).
    Data {
        db: String,
        table: String,
        chunk: String,
    },
    /// `metadata`.
    Metadata,
    /// A file the loader does not load, with the reason (triggers, routines, CSV, …).
    Ignored(&'static str),
}

/// Escapes a database or table name for a file name (dumpling's rules).
pub fn escape(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let special = b < 0x20 || b"%\"*./:<>?\\|".contains(&b);
        let schema_dash = b == b'-'
            && bytes.len() >= i + 7
            && bytes[i + 1..i + 7].eq_ignore_ascii_case(b"schema");
        if special || schema_dash {
            out.push_str(&format!("%{b:02X}"));
            i += 1;
        } else {
            // Copy one whole UTF-8 character.
            let ch = name[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// Reverses [`escape`]: every `%XX` (hex) becomes its byte; anything else is kept.
pub fn unescape(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The file name of a database's schema file.
pub fn schema_create_file(db: &str) -> String {
    format!("{}-schema-create.sql", escape(db))
}

/// The file name of a table's schema file.
pub fn table_schema_file(db: &str, table: &str) -> String {
    format!("{}.{}-schema.sql", escape(db), escape(table))
}

/// The file name of a view's definition file.
pub fn view_schema_file(db: &str, view: &str) -> String {
    format!("{}.{}-schema-view.sql", escape(db), escape(view))
}

/// The file name of a data chunk: `{db}.{tbl}.{chunk:09}{file:04}.sql` (dumpling's form when
/// both `rows` and `chunk-filesize` are set, as DM always sets them).
pub fn data_file(db: &str, table: &str, chunk: u64, file: u64) -> String {
    format!("{}.{}.{chunk:09}{file:04}.sql", escape(db), escape(table))
}

/// Classifies a dump directory entry by its name.
pub fn classify(name: &str) -> DumpFile {
    if name == super::METADATA_FILE {
        return DumpFile::Metadata;
    }
    if name.ends_with(".sql.gz") || name.ends_with(".sql.zst") {
        return DumpFile::Ignored("compressed dump files are not supported");
    }
    if name.ends_with(".csv") || name.ends_with(".dat") {
        return DumpFile::Ignored("CSV dump files are not supported (DM dumps SQL)");
    }
    let Some(stem) = name.strip_suffix(".sql") else {
        return DumpFile::Ignored("not a dump file");
    };
    if let Some(db) = stem.strip_suffix("-schema-create") {
        if db.contains('.') {
            return DumpFile::Ignored("not a dump file");
        }
        return DumpFile::SchemaCreate { db: unescape(db) };
    }
    if stem.ends_with("-schema-triggers") {
        return DumpFile::Ignored("triggers are not loaded (as DM)");
    }
    if stem.ends_with("-schema-post") {
        return DumpFile::Ignored("routines and events are not loaded (as DM)");
    }
    if stem.ends_with("-schema-create-tablespace") || stem.ends_with("-schema-sequence") {
        return DumpFile::Ignored("not loaded (as DM)");
    }
    if let Some(obj) = stem.strip_suffix("-schema-view") {
        return match obj.split_once('.') {
            Some((db, v)) if !v.contains('.') => DumpFile::ViewSchema {
                db: unescape(db),
                view: unescape(v),
            },
            _ => DumpFile::Ignored("not a dump file"),
        };
    }
    if let Some(obj) = stem.strip_suffix("-schema") {
        return match obj.split_once('.') {
            Some((db, t)) if !t.contains('.') => DumpFile::TableSchema {
                db: unescape(db),
                table: unescape(t),
            },
            _ => DumpFile::Ignored("not a dump file"),
        };
    }
    let parts: Vec<&str> = stem.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [db, t] => DumpFile::Data {
            db: unescape(db),
            table: unescape(t),
            chunk: String::new(),
        },
        [db, t, n] if numeric(n) => DumpFile::Data {
            db: unescape(db),
            table: unescape(t),
            chunk: n.to_string(),
        },
        [db, t, n, m] if numeric(n) && numeric(m) => DumpFile::Data {
            db: unescape(db),
            table: unescape(t),
            chunk: format!("{n}.{m}"),
        },
        _ => DumpFile::Ignored("not a dump file name DM knows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_dumpling_and_round_trips() {
        let cases = [
            ("plain", "plain"),
            ("a.b", "a%2Eb"),
            ("a/b:c", "a%2Fb%3Ac"),
            ("100%", "100%25"),
            ("x-schema", "x%2Dschema"),
            ("x-SCHEMA-create", "x%2DSCHEMA-create"),
            ("my-table", "my-table"),
            ("tab\tle", "tab%09le"),
            ("ünï", "ünï"),
            ("q\"*<>?\\|", "q%22%2A%3C%3E%3F%5C%7C"),
        ];
        for (raw, esc) in cases {
            assert_eq!(escape(raw), esc, "{raw}");
            assert_eq!(unescape(esc), raw, "{esc}");
        }
        // A stray % that is not an escape is kept.
        assert_eq!(unescape("50%"), "50%");
        assert_eq!(unescape("a%zz"), "a%zz");
    }

    #[test]
    fn classify_knows_dumpling_and_mydumper_names() {
        use DumpFile::*;
        let d = |db: &str, t: &str, c: &str| Data {
            db: db.into(),
            table: t.into(),
            chunk: c.into(),
        };
        let cases: Vec<(&str, DumpFile)> = vec![
            ("metadata", Metadata),
            ("db-schema-create.sql", SchemaCreate { db: "db".into() }),
            (
                "db.t-schema.sql",
                TableSchema {
                    db: "db".into(),
                    table: "t".into(),
                },
            ),
            (
                "db.v-schema-view.sql",
                ViewSchema {
                    db: "db".into(),
                    view: "v".into(),
                },
            ),
            ("db.t.sql", d("db", "t", "")),
            ("db.t.00000.sql", d("db", "t", "00000")),
            ("db.t.0000000000001.sql", d("db", "t", "0000000000001")),
            ("db.t.00001.00002.sql", d("db", "t", "00001.00002")),
            (
                "a%2Eb.c%2Dschema.000000000.sql",
                d("a.b", "c-schema", "000000000"),
            ),
            (
                "a%2Eb.t%2Dschema-schema.sql",
                TableSchema {
                    db: "a.b".into(),
                    table: "t-schema".into(),
                },
            ),
            (
                "db.t-schema-triggers.sql",
                Ignored("triggers are not loaded (as DM)"),
            ),
            (
                "db-schema-post.sql",
                Ignored("routines and events are not loaded (as DM)"),
            ),
            ("db.t.x.sql", Ignored("not a dump file name DM knows")),
            (
                "db.t.sql.gz",
                Ignored("compressed dump files are not supported"),
            ),
            ("notes.txt", Ignored("not a dump file")),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), want, "{name}");
        }
    }

    #[test]
    fn written_names_classify_back_to_their_objects() {
        for (db, t) in [("db", "t"), ("a.b", "c/d"), ("x-schema", "y-Schema-view")] {
            assert_eq!(
                classify(&schema_create_file(db)),
                DumpFile::SchemaCreate { db: db.into() }
            );
            assert_eq!(
                classify(&table_schema_file(db, t)),
                DumpFile::TableSchema {
                    db: db.into(),
                    table: t.into()
                }
            );
            assert_eq!(
                classify(&view_schema_file(db, t)),
                DumpFile::ViewSchema {
                    db: db.into(),
                    view: t.into()
                }
            );
            assert_eq!(
                classify(&data_file(db, t, 3, 1)),
                DumpFile::Data {
                    db: db.into(),
                    table: t.into(),
                    chunk: "0000000030001".into()
                }
            );
        }
    }
}
