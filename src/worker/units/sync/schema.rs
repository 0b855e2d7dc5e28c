//! The schema tracker: each upstream table's columns — names in binlog (ordinal) order, and
//! which are UNSIGNED — *as of the binlog position the task has reached*, not as the upstream
//! has them now.
//!
//! Why: below `binlog_row_metadata=FULL` a TABLE_MAP carries column types but no names (and,
//! with MariaDB's `NO_LOG`, no signedness). Names read from the upstream's *current*
//! information_schema are wrong while the task is behind a later ALTER that renames or reorders
//! columns (rows land in the wrong columns), and an UNSIGNED value above the signed range
//! decodes as negative.
//!
//! Who calls it: the sync unit, which owns one [`SchemaTracker`] per subtask. It
//! - seeds a table the first time the table is seen: from the checkpoint's per-table
//!   `table_info` JSON ([`TrackedTable::from_json`]) when there, else from the upstream's
//!   information_schema ([`TrackedTable::from_information_schema`]), then [`SchemaTracker::set`];
//! - applies every QUERY event's statement, as it is in the binlog (unrouted), with the event's
//!   default schema ([`SchemaTracker::apply_ddl`]), and persists what the returned [`DdlEffect`]
//!   names: `changed` → write `table_info` ([`TrackedTable::to_json`]), `dropped` → delete it,
//!   `unknown` → forgotten here, re-read from the upstream when the table is next seen;
//! - fills each TABLE_MAP's missing names and signedness with [`merge_into`], and on a
//!   [`SchemaMismatch`] re-reads the table from the upstream or stops with that message.
//!
//! What it never does: I/O (no upstream reads, no checkpoint writes, no logging), panic on any
//! input, or guess. Whatever it does not understand in a CREATE or ALTER of a table makes that
//! table *unknown* (forgotten and reported), never a wrong column list. Errors
//! ([`SchemaError`]) are only for statement text that cannot be tokenized (the tokenizer is
//! [`crate::rules::ddl`]'s) and for `table_info` JSON that does not parse.
//!
//! API:
//! - [`TrackedTable`] `{ columns: Vec<TrackedColumn { name, unsigned, def }> }` with
//!   `from_information_schema`, `from_column_rows` (definitions included), `to_json`,
//!   `from_json`, `to_schema` and `to_create_sql`. `def` is the column's canonical definition
//!   ([`super::schemacmp::ColumnType`], read from the DDL text or information_schema; None
//!   when unknown): optimistic shard DDL joins it and binlog-schema prints it; a table-level
//!   PRIMARY KEY makes its columns NOT NULL, as the server does;
//! - [`SchemaTracker`]: `get`, `set`, `forget`, `apply_ddl(sql, default_schema) -> DdlEffect
//!   { changed, dropped, unknown }`;
//! - [`merge_into`]`(&mut TableMeta, &TrackedTable)`.
//!
//! Statements understood (keywords case-insensitive; comments anywhere; `/*!NNNNN … */` read as
//! SQL; a trailing `;` ignored):
//! - `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (…)`: the column definitions in order, UNSIGNED
//!   when the definition says UNSIGNED or ZEROFILL (or the type is SERIAL); index, key,
//!   constraint, foreign key, check and period lines are not columns. IF NOT EXISTS with `t`
//!   tracked: no change (untracked: `t` is taken to be new, and gets the statement's columns).
//!   `… LIKE s`: a copy of `s` when tracked, else `t` unknown.
//!   `… [AS] SELECT`, `… AS TABLE`/`VALUES` and system-versioned tables: `t` unknown.
//! - `ALTER [ONLINE|OFFLINE] [IGNORE] TABLE [IF EXISTS] t [WAIT n|NOWAIT]` with any
//!   comma-separated mix of `ADD [COLUMN] [IF NOT EXISTS] c def [FIRST|AFTER x]`,
//!   `ADD [COLUMN] [IF NOT EXISTS] (c def, …)`, `DROP [COLUMN] [IF EXISTS] c`,
//!   `CHANGE [COLUMN] [IF EXISTS] old new def [FIRST|AFTER x]`,
//!   `MODIFY [COLUMN] [IF EXISTS] c def [FIRST|AFTER x]`, `RENAME COLUMN a TO b`,
//!   `RENAME [TO|AS] u` (the table moves to `u`), `ALTER [COLUMN] c SET|DROP …`, and index,
//!   key, constraint, partition and table options (`ENGINE=`, `ALGORITHM=`, `LOCK=`,
//!   `CONVERT TO CHARACTER SET`, …), which change no column. As in MariaDB's
//!   `mysql_prepare_alter_table`, DROP/CHANGE/MODIFY/RENAME COLUMN/ALTER COLUMN and the
//!   IF [NOT] EXISTS tests name columns of the table *before* the statement (so
//!   `CHANGE a b …, CHANGE b a …` swaps two names), unpositioned ADDs append in statement order,
//!   and FIRST/AFTER are applied in statement order against the new column list. Anything else
//!   in the ALTER of a tracked table, or a change that could not have succeeded upstream
//!   (unknown column, duplicate name), makes the table (and any rename target) unknown.
//! - `DROP [TEMPORARY] TABLE [IF EXISTS] a, b`: dropped (TEMPORARY: no change).
//!   `RENAME TABLE a TO b, c TO d`: applied pair by pair in order (so swaps through a temporary
//!   name work); renaming an untracked table makes the target unknown.
//!   `DROP DATABASE d` and `CREATE OR REPLACE DATABASE d`: every tracked table of `d` dropped.
//!   `CREATE [OR REPLACE] SEQUENCE s`: `s` unknown; `DROP SEQUENCE s`: dropped.
//! - Everything else (TRUNCATE, CREATE/DROP INDEX, CREATE/ALTER DATABASE, views, temporary
//!   tables, BEGIN, SAVEPOINT, GRANT, DML, …): no change.
//!
//! Names: an unqualified table name takes the default schema. Schema and table names compare
//! exactly (case-sensitively), as MySQL/MariaDB do on Linux with the default
//! `lower_case_table_names=0`; with `lower_case_table_names=1` the server lowercases names in
//! the binlog's TABLE_MAPs but not in DDL text, so a caller serving such an upstream must
//! lowercase names before they reach the tracker. Column names compare case-insensitively, as
//! MySQL's do.

use std::collections::BTreeMap;

use crate::binlog::rows::TableMeta;
use crate::rules::TableName;
use crate::rules::ddl::{DdlError, Tok, TokKind, tokenize};
use crate::worker::units::sync::schemacmp::{ColumnType, Schema};

/// One column of a tracked table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedColumn {
    pub name: String,
    /// The column is an UNSIGNED (or ZEROFILL) number.
    pub unsigned: bool,
    /// Its definition, canonical ([`ColumnType`]): what optimistic shard DDL joins and
    /// binlog-schema prints. None when not known (a `table_info` written before definitions
    /// were kept, or a definition the parser did not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub def: Option<ColumnType>,
}

/// One information_schema.COLUMNS row (MariaDB 10.2+ forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnRow {
    pub name: String,
    /// COLUMN_TYPE, e.g. `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    /// IS_NULLABLE: `YES` / `NO`.
    pub is_nullable: String,
    /// COLUMN_DEFAULT (None: no default).
    pub column_default: Option<String>,
    /// EXTRA, e.g. `auto_increment`.
    pub extra: String,
}

/// The columns of information_schema.COLUMNS that [`ColumnRow`] reads, in its order.
pub const COLUMN_ROW_SELECT: &str = "COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA";

/// One upstream table as of the tracked binlog position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedTable {
    /// In binlog (ordinal) order.
    pub columns: Vec<TrackedColumn>,
}

/// Why a statement or a persisted table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot tokenize the DDL statement: {0}")]
    Tokenize(#[from] DdlError),
    #[error("bad table_info JSON for the schema tracker: {0}")]
    Json(#[source] serde_json::Error),
}

/// Why a tracked table does not fit a binlog TABLE_MAP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaMismatch {
    #[error(
        "`{schema}`.`{table}`: the binlog row has {binlog} columns but the tracked schema has {tracked}"
    )]
    ColumnCount {
        schema: String,
        table: String,
        binlog: usize,
        tracked: usize,
    },
    #[error("`{schema}`.`{table}`: column {ordinal} ({column:?} in the tracked schema) {detail}")]
    Column {
        schema: String,
        table: String,
        /// 1-based, as information_schema's ORDINAL_POSITION.
        ordinal: usize,
        /// The tracked name.
        column: String,
        detail: &'static str,
    },
}

/// What one statement did to the tracked tables; each list sorted by name, each table in at
/// most one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DdlEffect {
    /// Tables whose columns are new or changed (persist them).
    pub changed: Vec<TableName>,
    /// Tables that no longer exist (delete what is persisted for them).
    pub dropped: Vec<TableName>,
    /// Tables whose columns the tracker no longer knows (re-read them from the upstream).
    pub unknown: Vec<TableName>,
}

impl DdlEffect {
    /// The statement changed nothing the tracker holds.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.dropped.is_empty() && self.unknown.is_empty()
    }
}

/// Every tracked upstream table, by upstream name.
#[derive(Debug, Clone, Default)]
pub struct SchemaTracker {
    tables: BTreeMap<TableName, TrackedTable>,
}

impl TrackedTable {
    /// From information_schema.COLUMNS rows `(COLUMN_NAME, COLUMN_TYPE)` in ORDINAL_POSITION
    /// order; COLUMN_TYPE like `int(10) unsigned` or `enum('a','b')`.
    pub fn from_information_schema(rows: &[(String, String)]) -> TrackedTable {
        let columns = rows
            .iter()
            .map(|(name, column_type)| TrackedColumn {
                name: name.clone(),
                unsigned: unsigned_type(column_type),
                def: None,
            })
            .collect();
        TrackedTable { columns }
    }

    /// From information_schema.COLUMNS rows ([`COLUMN_ROW_SELECT`]) in ORDINAL_POSITION
    /// order, definitions included.
    pub fn from_column_rows(rows: &[ColumnRow]) -> TrackedTable {
        let columns = rows
            .iter()
            .map(|r| TrackedColumn {
                name: r.name.clone(),
                unsigned: unsigned_type(&r.column_type),
                def: Some(ColumnType::from_information_schema(
                    &r.column_type,
                    &r.is_nullable,
                    r.column_default.as_deref(),
                    &r.extra,
                )),
            })
            .collect();
        TrackedTable { columns }
    }

    /// The columns with their definitions, for schemacmp (None when a definition is not
    /// known).
    pub fn to_schema(&self) -> Option<Schema> {
        let columns = self
            .columns
            .iter()
            .map(|c| c.def.clone().map(|d| (c.name.clone(), d)))
            .collect::<Option<Vec<_>>>()?;
        Some(Schema { columns })
    }

    /// A `CREATE TABLE` of these columns (binlog-schema list); None when a column's
    /// definition is not known.
    pub fn to_create_sql(&self, t: &TableName) -> Option<String> {
        let schema = self.to_schema()?;
        let cols: Vec<String> = schema
            .columns
            .iter()
            .map(|(n, d)| format!("  `{}` {}", n.replace('`', "``"), d.to_sql()))
            .collect();
        Some(format!(
            "CREATE TABLE {} (\n{}\n)",
            t.quoted(),
            cols.join(",\n")
        ))
    }

    /// The form kept in the checkpoint's `table_info`:
    /// `{"columns":[{"name":…,"unsigned":…,"def":{…}}]}` (`def` left out when not known).
    pub fn to_json(&self) -> String {
        serde_json::json!({ "columns": self.columns }).to_string()
    }

    /// Reads what [`TrackedTable::to_json`] wrote.
    pub fn from_json(s: &str) -> Result<TrackedTable, SchemaError> {
        serde_json::from_str(s).map_err(SchemaError::Json)
    }
}

/// Only numbers are unsigned, and their types hold no strings: a COLUMN_TYPE that does not
/// tokenize is an ENUM/SET.
fn unsigned_type(column_type: &str) -> bool {
    tokenize(column_type)
        .is_ok_and(|toks| depth0(&toks).any(|t| is_kw(t, "UNSIGNED") || is_kw(t, "ZEROFILL")))
}

impl SchemaTracker {
    /// The tracked columns of `t`, if known.
    pub fn get(&self, t: &TableName) -> Option<&TrackedTable> {
        self.tables.get(t)
    }

    /// Seeds (or replaces) `t`.
    pub fn set(&mut self, t: TableName, table: TrackedTable) {
        self.tables.insert(t, table);
    }

    /// Every tracked table.
    pub fn tables(&self) -> impl Iterator<Item = (&TableName, &TrackedTable)> {
        self.tables.iter()
    }

    /// Stops tracking `t`.
    pub fn forget(&mut self, t: &TableName) {
        self.tables.remove(t);
    }

    /// Applies one upstream statement (the text of a QUERY event, as it is in the binlog,
    /// unrouted) with its default schema. Returns what changed so the caller can persist those
    /// tables. Errors only when the text cannot be tokenized; statements that are not DDL
    /// change nothing.
    pub fn apply_ddl(&mut self, sql: &str, default_schema: &str) -> Result<DdlEffect, SchemaError> {
        let mut toks = tokenize(sql)?;
        while toks.last().is_some_and(|t| t.kind == TokKind::Punct(b';')) {
            toks.pop();
        }
        let mut c = Cursor {
            toks: &toks,
            sql,
            default_schema,
            pos: 0,
        };
        let mut fx = Effects::default();
        if c.eat("CREATE") {
            self.on_create(&mut c, &mut fx);
        } else if c.eat("ALTER") {
            self.on_alter(&mut c, &mut fx);
        } else if c.eat("DROP") {
            self.on_drop(&mut c, &mut fx);
        } else if c.eat("RENAME") {
            self.on_rename(&mut c, &mut fx);
        }
        Ok(fx.finish(&self.tables))
    }

    fn put(&mut self, t: TableName, table: TrackedTable, fx: &mut Effects) {
        self.tables.insert(t.clone(), table);
        fx.0.insert(t, Outcome::Changed);
    }

    fn dropped(&mut self, t: TableName, fx: &mut Effects) {
        self.tables.remove(&t);
        fx.0.insert(t, Outcome::Dropped);
    }

    fn unknown(&mut self, t: TableName, fx: &mut Effects) {
        self.tables.remove(&t);
        fx.0.insert(t, Outcome::Unknown);
    }

    fn on_create(&mut self, c: &mut Cursor<'_>, fx: &mut Effects) {
        let or_replace = c.eat_seq(&["OR", "REPLACE"]);
        if c.eat("TEMPORARY") {
            return;
        }
        if c.eat("DATABASE") || c.eat("SCHEMA") {
            if or_replace {
                c.eat_seq(&["IF", "NOT", "EXISTS"]);
                if let Some(db) = c.ident() {
                    self.drop_database(&db, fx);
                }
            }
            return;
        }
        if c.eat("SEQUENCE") {
            c.eat_seq(&["IF", "NOT", "EXISTS"]);
            if let Some(t) = c.table_name() {
                self.unknown(t, fx);
            }
            return;
        }
        if !c.eat("TABLE") {
            return;
        }
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let Some(t) = c.table_name() else { return };
        if if_not_exists && self.tables.contains_key(&t) {
            return;
        }
        // `LIKE s` or `(LIKE s)`
        let paren_like = c.is_punct(0, b'(') && c.is_kw(1, "LIKE");
        if paren_like || c.is_kw(0, "LIKE") {
            c.pos += if paren_like { 2 } else { 1 };
            let source = c.table_name();
            let closed = !paren_like || c.eat_punct(b')');
            match source.and_then(|s| self.tables.get(&s).cloned()) {
                Some(table) if closed && c.at_end() => self.put(t, table, fx),
                _ => self.unknown(t, fx),
            }
            return;
        }
        match create_columns(c.rest(), c.sql) {
            Some(columns) => self.put(t, TrackedTable { columns }, fx),
            None => self.unknown(t, fx),
        }
    }

    fn on_alter(&mut self, c: &mut Cursor<'_>, fx: &mut Effects) {
        while c.eat("ONLINE") || c.eat("OFFLINE") || c.eat("IGNORE") {}
        if !c.eat("TABLE") {
            return;
        }
        c.eat_seq(&["IF", "EXISTS"]);
        let Some(t) = c.table_name() else { return };
        if c.eat("WAIT") {
            c.pos += 1;
        } else {
            c.eat("NOWAIT");
        }
        let rest = c.rest();
        let ops = if mentions_system_versioning(rest) {
            None
        } else {
            alter_ops(rest, c.sql, c.default_schema)
        };
        let Some(ops) = ops else {
            for to in rename_targets(rest, c.sql, c.default_schema) {
                self.unknown(to, fx);
            }
            if self.tables.contains_key(&t) {
                self.unknown(t, fx);
            }
            return;
        };
        let rename_to = ops
            .iter()
            .rev()
            .find_map(|op| match op {
                AlterOp::RenameTable(to) => Some(to.clone()),
                _ => None,
            })
            .filter(|to| *to != t);
        let Some(old) = self.tables.get(&t) else {
            // Not tracked: there are no columns to change; a rename only moves the name.
            if let Some(to) = rename_to {
                self.dropped(t, fx);
                self.unknown(to, fx);
            }
            return;
        };
        match apply_alter(&old.columns, &ops) {
            None => {
                self.unknown(t, fx);
                if let Some(to) = rename_to {
                    self.unknown(to, fx);
                }
            }
            Some(columns) => {
                let changed = columns != old.columns;
                match rename_to {
                    Some(to) => {
                        self.dropped(t, fx);
                        self.put(to, TrackedTable { columns }, fx);
                    }
                    None if changed => self.put(t, TrackedTable { columns }, fx),
                    None => {}
                }
            }
        }
    }

    fn on_drop(&mut self, c: &mut Cursor<'_>, fx: &mut Effects) {
        if c.eat("TEMPORARY") {
            return;
        }
        if c.eat("DATABASE") || c.eat("SCHEMA") {
            c.eat_seq(&["IF", "EXISTS"]);
            if let Some(db) = c.ident() {
                self.drop_database(&db, fx);
            }
            return;
        }
        if !(c.eat("TABLE") || c.eat("TABLES") || c.eat("SEQUENCE")) {
            return;
        }
        c.eat_seq(&["IF", "EXISTS"]);
        while let Some(t) = c.table_name() {
            self.dropped(t, fx);
            if !c.eat_punct(b',') {
                break;
            }
        }
    }

    fn drop_database(&mut self, db: &str, fx: &mut Effects) {
        let gone: Vec<TableName> = self
            .tables
            .keys()
            .filter(|t| t.schema == db)
            .cloned()
            .collect();
        for t in gone {
            self.dropped(t, fx);
        }
    }

    fn on_rename(&mut self, c: &mut Cursor<'_>, fx: &mut Effects) {
        if !(c.eat("TABLE") || c.eat("TABLES")) {
            return;
        }
        c.eat_seq(&["IF", "EXISTS"]);
        let mut pairs = Vec::new();
        let mut complete = false;
        while let Some(from) = c.table_name() {
            if c.eat("WAIT") {
                c.pos += 1;
            } else {
                c.eat("NOWAIT");
            }
            let to = if c.eat("TO") { c.table_name() } else { None };
            let Some(to) = to else { break };
            pairs.push((from, to));
            if !c.eat_punct(b',') {
                complete = c.at_end();
                break;
            }
        }
        if !complete {
            // Not a statement the upstream ran as written: trust none of it.
            for (from, to) in pairs {
                self.unknown(from, fx);
                self.unknown(to, fx);
            }
            return;
        }
        for (from, to) in pairs {
            match self.tables.remove(&from) {
                Some(table) => {
                    self.dropped(from, fx);
                    self.put(to, table, fx);
                }
                None => {
                    self.dropped(from, fx);
                    self.unknown(to, fx);
                }
            }
        }
    }
}

/// Fills the names (where the binlog has none) and signedness of `meta`'s columns from
/// `tracked`. With `binlog_row_metadata=FULL` (every column named) the binlog is the truth and
/// `meta` is left as it is. Otherwise the column counts must agree, a column the tracker says is
/// UNSIGNED must be a number in the binlog, and a column the binlog says is UNSIGNED (MINIMAL
/// metadata carries signedness) must be UNSIGNED in the tracker too. On an error `meta` is
/// unchanged.
pub fn merge_into(meta: &mut TableMeta, tracked: &TrackedTable) -> Result<(), SchemaMismatch> {
    if meta.columns.iter().all(|c| c.name.is_some()) {
        return Ok(());
    }
    if meta.columns.len() != tracked.columns.len() {
        return Err(SchemaMismatch::ColumnCount {
            schema: meta.schema.clone(),
            table: meta.table.clone(),
            binlog: meta.columns.len(),
            tracked: tracked.columns.len(),
        });
    }
    let pairs = meta.columns.iter().zip(&tracked.columns).enumerate();
    for (i, (col, t)) in pairs {
        let detail = if t.unsigned && !col.column_type.is_numeric_type() {
            "is UNSIGNED in the tracked schema but not a number in the binlog"
        } else if col.unsigned && !t.unsigned {
            "is UNSIGNED in the binlog but signed in the tracked schema"
        } else {
            continue;
        };
        return Err(SchemaMismatch::Column {
            schema: meta.schema.clone(),
            table: meta.table.clone(),
            ordinal: i + 1,
            column: t.name.clone(),
            detail,
        });
    }
    for (col, t) in meta.columns.iter_mut().zip(&tracked.columns) {
        if col.name.is_none() {
            col.name = Some(t.name.clone());
        }
        // Checked above: the binlog's own UNSIGNED bits (if any) agree.
        col.unsigned = t.unsigned;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Effects

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Changed,
    Dropped,
    Unknown,
}

/// The last outcome of every table a statement touched.
#[derive(Default)]
struct Effects(BTreeMap<TableName, Outcome>);

impl Effects {
    fn finish(self, tables: &BTreeMap<TableName, TrackedTable>) -> DdlEffect {
        let mut fx = DdlEffect::default();
        for (t, outcome) in self.0 {
            match outcome {
                Outcome::Changed if tables.contains_key(&t) => fx.changed.push(t),
                Outcome::Changed | Outcome::Dropped => fx.dropped.push(t),
                Outcome::Unknown => fx.unknown.push(t),
            }
        }
        fx
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// A position in the tokens of one statement.
struct Cursor<'a> {
    toks: &'a [Tok],
    sql: &'a str,
    default_schema: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn is_kw(&self, ahead: usize, kw: &str) -> bool {
        self.toks
            .get(self.pos + ahead)
            .is_some_and(|t| is_kw(t, kw))
    }

    fn is_punct(&self, ahead: usize, p: u8) -> bool {
        self.toks
            .get(self.pos + ahead)
            .is_some_and(|t| t.kind == TokKind::Punct(p))
    }

    fn eat(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(0, kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Eats all of `kws` in sequence, or nothing.
    fn eat_seq(&mut self, kws: &[&str]) -> bool {
        let hit = kws.iter().enumerate().all(|(k, kw)| self.is_kw(k, kw));
        if hit {
            self.pos += kws.len();
        }
        hit
    }

    fn eat_punct(&mut self, p: u8) -> bool {
        let hit = self.is_punct(0, p);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn ident(&mut self) -> Option<String> {
        let name = ident_of(self.toks.get(self.pos)?, self.sql)?;
        self.pos += 1;
        Some(name)
    }

    /// `name` or `schema.name`; unqualified names take the default schema.
    fn table_name(&mut self) -> Option<TableName> {
        let first = self.ident()?;
        if self.is_punct(0, b'.') {
            self.pos += 1;
            let second = self.ident()?;
            return Some(TableName::new(first, second));
        }
        Some(TableName::new(self.default_schema, first))
    }

    fn rest(&self) -> &'a [Tok] {
        self.toks.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }
}

pub(super) fn is_kw(t: &Tok, kw: &str) -> bool {
    t.kind == TokKind::Word && t.text.eq_ignore_ascii_case(kw)
}

fn is_kw_any(t: Option<&Tok>, kws: &[&str]) -> bool {
    t.is_some_and(|t| kws.iter().any(|kw| is_kw(t, kw)))
}

/// An identifier: a word, a backquoted name, or an ANSI_QUOTES `"name"`.
fn ident_of(t: &Tok, sql: &str) -> Option<String> {
    match t.kind {
        TokKind::Word | TokKind::Quoted => Some(t.text.clone()),
        TokKind::Str => {
            let raw = sql.get(t.start..t.end)?;
            let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
            Some(inner.replace("\"\"", "\""))
        }
        TokKind::Punct(_) => None,
    }
}

/// MySQL column names are case-insensitive.
pub(super) fn same_column(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// The tokens outside any parentheses (the parentheses themselves left out).
fn depth0(toks: &[Tok]) -> impl Iterator<Item = &Tok> {
    let mut depth = 0usize;
    toks.iter().filter(move |t| match t.kind {
        TokKind::Punct(b'(') => {
            depth += 1;
            false
        }
        TokKind::Punct(b')') => {
            depth = depth.saturating_sub(1);
            false
        }
        _ => depth == 0,
    })
}

/// `toks` split at the commas outside parentheses; `None` when the parentheses do not balance.
fn split_commas(toks: &[Tok]) -> Option<Vec<&[Tok]>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            TokKind::Punct(b'(') => depth += 1,
            TokKind::Punct(b')') => depth = depth.checked_sub(1)?,
            TokKind::Punct(b',') if depth == 0 => {
                out.push(toks.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    out.push(toks.get(start..)?);
    Some(out)
}

/// The index of the `)` closing the `(` at `open`.
pub(super) fn closing_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            TokKind::Punct(b'(') => depth += 1,
            TokKind::Punct(b')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// MariaDB system versioning adds hidden columns the tracker does not model.
fn mentions_system_versioning(toks: &[Tok]) -> bool {
    toks.iter()
        .any(|t| is_kw(t, "VERSIONING") || is_kw(t, "SYSTEM_TIME"))
}

// ---------------------------------------------------------------------------------------------
// Column definitions

/// Where an ALTER puts a column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pos {
    /// Unpositioned: in place (CHANGE/MODIFY) or at the end (ADD).
    Keep,
    First,
    After(String),
}

#[derive(Debug, Clone)]
struct ColumnDef {
    column: TrackedColumn,
    pos: Pos,
}

/// Lines of a CREATE TABLE (or parenthesised ADD) that are not columns.
const NOT_COLUMNS: &[&str] = &[
    "PRIMARY",
    "KEY",
    "INDEX",
    "UNIQUE",
    "FULLTEXT",
    "SPATIAL",
    "CONSTRAINT",
    "FOREIGN",
    "CHECK",
];

fn is_column_line(item: &[Tok]) -> bool {
    let first = item.first();
    let period = is_kw_any(first, &["PERIOD"]) && is_kw_any(item.get(1), &["FOR"]);
    !(period || is_kw_any(first, NOT_COLUMNS))
}

/// `name type …` with, when `positioned`, an optional trailing `FIRST` or `AFTER x`.
fn column_def(toks: &[Tok], sql: &str, positioned: bool) -> Option<ColumnDef> {
    let (name, def) = toks.split_first()?;
    let name = ident_of(name, sql)?;
    let n = def.len();
    let (body, pos) = match (def.get(n.wrapping_sub(2)), def.last()) {
        (Some(a), Some(x)) if n >= 3 && is_kw(a, "AFTER") => {
            (def.get(..n - 2)?, Pos::After(ident_of(x, sql)?))
        }
        (_, Some(f)) if n >= 2 && is_kw(f, "FIRST") => (def.get(..n - 1)?, Pos::First),
        _ => (def, Pos::Keep),
    };
    if pos != Pos::Keep && !positioned {
        return None;
    }
    let data_type = body.first().filter(|t| t.kind == TokKind::Word)?;
    if depth0(body).any(|t| is_kw(t, "FIRST") || is_kw(t, "AFTER")) {
        return None;
    }
    let unsigned = is_kw(data_type, "SERIAL")
        || depth0(body).any(|t| is_kw(t, "UNSIGNED") || is_kw(t, "ZEROFILL"));
    let def = match (body.first(), body.last()) {
        (Some(a), Some(b)) => sql.get(a.start..b.end).and_then(ColumnType::parse),
        _ => None,
    };
    Some(ColumnDef {
        column: TrackedColumn {
            name,
            unsigned,
            def,
        },
        pos,
    })
}

/// Two of `names` are the same column name.
fn has_duplicates<S: AsRef<str>>(names: &[S]) -> bool {
    names.iter().enumerate().any(|(i, a)| {
        names
            .get(..i)
            .unwrap_or_default()
            .iter()
            .any(|b| same_column(a.as_ref(), b.as_ref()))
    })
}

fn column_names(columns: &[TrackedColumn]) -> Vec<&str> {
    columns.iter().map(|c| c.name.as_str()).collect()
}

/// The columns of `CREATE TABLE t` from the tokens after `t`: `(defs…) [options]`. `None`
/// when that is not a plain column list (`AS SELECT`, garbage, system versioning, …).
fn create_columns(rest: &[Tok], sql: &str) -> Option<Vec<TrackedColumn>> {
    if !rest.first().is_some_and(|t| t.kind == TokKind::Punct(b'(')) {
        return None;
    }
    if rest.iter().any(|t| is_kw(t, "SELECT")) || mentions_system_versioning(rest) {
        return None;
    }
    let close = closing_paren(rest, 0)?;
    let inner = rest.get(1..close)?;
    if is_kw_any(inner.first(), &["VALUES", "TABLE", "WITH"]) {
        return None;
    }
    let tail = rest.get(close + 1..)?;
    split_commas(tail)?; // the options' parentheses balance
    if depth0(tail).any(|t| is_kw(t, "AS") || is_kw(t, "TABLE") || is_kw(t, "VALUES")) {
        return None;
    }
    let mut columns = Vec::new();
    let mut primary: Vec<String> = Vec::new();
    for item in split_commas(inner)? {
        if is_column_line(item) {
            columns.push(column_def(item, sql, false)?.column);
        } else {
            primary.extend(primary_key_columns(item, sql));
        }
    }
    // A table-level PRIMARY KEY makes its columns NOT NULL (as the server stores them).
    for c in &mut columns {
        if primary.iter().any(|p| same_column(p, &c.name))
            && let Some(d) = c.def.as_mut()
        {
            d.nullable = false;
        }
    }
    (!columns.is_empty() && !has_duplicates(&column_names(&columns))).then_some(columns)
}

/// The columns of a `[CONSTRAINT [name]] PRIMARY KEY [USING …] (a, b(10), …)` line (empty for
/// any other line).
fn primary_key_columns(item: &[Tok], sql: &str) -> Vec<String> {
    let Some(at) = item.iter().position(|t| is_kw(t, "PRIMARY")) else {
        return Vec::new();
    };
    if !is_kw_any(item.get(at + 1), &["KEY"]) {
        return Vec::new();
    }
    let Some(open) = item
        .iter()
        .skip(at)
        .position(|t| t.kind == TokKind::Punct(b'('))
        .map(|p| p + at)
    else {
        return Vec::new();
    };
    let Some(close) = closing_paren(item, open) else {
        return Vec::new();
    };
    item.get(open + 1..close)
        .and_then(split_commas)
        .unwrap_or_default()
        .iter()
        .filter_map(|part| part.first().and_then(|t| ident_of(t, sql)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// ALTER TABLE

/// One understood piece of an ALTER TABLE.
#[derive(Debug, Clone)]
enum AlterOp {
    Add {
        def: ColumnDef,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
    /// CHANGE old new … and MODIFY c … (`old == c`).
    Change {
        old: String,
        if_exists: bool,
        def: ColumnDef,
    },
    RenameColumn {
        old: String,
        new: String,
    },
    /// `ALTER [COLUMN] c SET|DROP …`: no change, but `c` must exist.
    Touch(String),
    RenameTable(TableName),
    /// Index, constraint, partition and table options.
    NoOp,
}

/// First words of ALTER pieces that change no column (table options, partitioning, …).
const OPTION_PIECES: &[&str] = &[
    "ALGORITHM",
    "ANALYZE",
    "AUTO_INCREMENT",
    "AUTOEXTEND_SIZE",
    "AVG_ROW_LENGTH",
    "CHARACTER",
    "CHARSET",
    "CHECK",
    "CHECKSUM",
    "COALESCE",
    "COLLATE",
    "COMMENT",
    "COMPRESSION",
    "CONNECTION",
    "CONVERT",
    "DATA",
    "DEFAULT",
    "DELAY_KEY_WRITE",
    "DISABLE",
    "DISCARD",
    "ENABLE",
    "ENCRYPTED",
    "ENCRYPTION",
    "ENCRYPTION_KEY_ID",
    "ENGINE",
    "EXCHANGE",
    "FORCE",
    "IETF_QUOTES",
    "IMPORT",
    "INDEX",
    "INSERT_METHOD",
    "KEY_BLOCK_SIZE",
    "LOCK",
    "MAX_ROWS",
    "MIN_ROWS",
    "OPTIMIZE",
    "ORDER",
    "PACK_KEYS",
    "PAGE_CHECKSUM",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "PARTITION",
    "PASSWORD",
    "REBUILD",
    "REMOVE",
    "REORGANIZE",
    "REPAIR",
    "ROW_FORMAT",
    "SECONDARY_ENGINE",
    "SEQUENCE",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "STORAGE",
    "TABLESPACE",
    "TRANSACTIONAL",
    "TRUNCATE",
    "UNION",
    "UPGRADE",
];

/// Words that start a column change: an options piece holding one is not understood.
const COLUMN_VERBS: &[&str] = &["ADD", "DROP", "CHANGE", "MODIFY", "RENAME", "ALTER"];

/// The pieces of an ALTER TABLE after the table name; `None` when any is not understood.
fn alter_ops(rest: &[Tok], sql: &str, default_schema: &str) -> Option<Vec<AlterOp>> {
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let mut ops = Vec::new();
    for piece in split_commas(rest)? {
        alter_piece(piece, sql, default_schema, &mut ops)?;
    }
    Some(ops)
}

fn alter_piece(
    piece: &[Tok],
    sql: &str,
    default_schema: &str,
    ops: &mut Vec<AlterOp>,
) -> Option<()> {
    let mut c = Cursor {
        toks: piece,
        sql,
        default_schema,
        pos: 0,
    };
    let first = piece.first()?;
    let op = if c.eat("ADD") {
        if is_kw_any(piece.get(1), NOT_COLUMNS)
            || is_kw_any(piece.get(1), &["PARTITION"])
            || (c.is_kw(0, "PERIOD") && c.is_kw(1, "FOR"))
        {
            AlterOp::NoOp
        } else {
            c.eat("COLUMN");
            let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
            if c.is_punct(0, b'(') {
                let close = closing_paren(piece, c.pos)?;
                if close + 1 != piece.len() {
                    return None;
                }
                for item in split_commas(piece.get(c.pos + 1..close)?)? {
                    if is_column_line(item) {
                        let def = column_def(item, sql, false)?;
                        ops.push(AlterOp::Add { def, if_not_exists });
                    }
                }
                return Some(());
            }
            let def = column_def(c.rest(), sql, true)?;
            AlterOp::Add { def, if_not_exists }
        }
    } else if c.eat("DROP") {
        if is_kw_any(
            piece.get(1),
            &[
                "INDEX",
                "KEY",
                "PRIMARY",
                "FOREIGN",
                "CONSTRAINT",
                "CHECK",
                "PARTITION",
                "PERIOD",
            ],
        ) {
            AlterOp::NoOp
        } else {
            c.eat("COLUMN");
            let if_exists = c.eat_seq(&["IF", "EXISTS"]);
            let name = c.ident()?;
            if !c.eat("RESTRICT") {
                c.eat("CASCADE");
            }
            c.at_end().then_some(())?;
            AlterOp::Drop { name, if_exists }
        }
    } else if c.eat("CHANGE") {
        c.eat("COLUMN");
        let if_exists = c.eat_seq(&["IF", "EXISTS"]);
        let old = c.ident()?;
        let def = column_def(c.rest(), sql, true)?;
        AlterOp::Change {
            old,
            if_exists,
            def,
        }
    } else if c.eat("MODIFY") {
        c.eat("COLUMN");
        let if_exists = c.eat_seq(&["IF", "EXISTS"]);
        let def = column_def(c.rest(), sql, true)?;
        AlterOp::Change {
            old: def.column.name.clone(),
            if_exists,
            def,
        }
    } else if c.eat("RENAME") {
        if c.eat("COLUMN") {
            let old = c.ident()?;
            c.eat("TO").then_some(())?;
            let new = c.ident()?;
            c.at_end().then_some(())?;
            AlterOp::RenameColumn { old, new }
        } else if c.eat("INDEX") || c.eat("KEY") {
            AlterOp::NoOp
        } else {
            if !c.eat("TO") {
                c.eat("AS");
            }
            let to = c.table_name()?;
            c.at_end().then_some(())?;
            AlterOp::RenameTable(to)
        }
    } else if c.eat("ALTER") {
        if is_kw_any(piece.get(1), &["INDEX", "KEY", "CHECK", "CONSTRAINT"]) {
            AlterOp::NoOp
        } else {
            c.eat("COLUMN");
            c.eat_seq(&["IF", "EXISTS"]);
            let name = c.ident()?;
            (c.is_kw(0, "SET") || c.is_kw(0, "DROP")).then_some(())?;
            AlterOp::Touch(name)
        }
    } else if is_kw_any(Some(first), &["WITH", "WITHOUT"]) {
        // MySQL's `WITH[OUT] VALIDATION`; system versioning was refused before.
        (c.is_kw(1, "VALIDATION") && piece.len() == 2).then_some(AlterOp::NoOp)?
    } else if is_kw_any(Some(first), OPTION_PIECES) {
        if piece
            .iter()
            .skip(1)
            .any(|t| is_kw_any(Some(t), COLUMN_VERBS))
        {
            return None;
        }
        AlterOp::NoOp
    } else {
        return None;
    };
    ops.push(op);
    Some(())
}

/// The table-rename targets (`RENAME [TO|AS] u`) in an ALTER that was not understood.
fn rename_targets(rest: &[Tok], sql: &str, default_schema: &str) -> Vec<TableName> {
    let mut out = Vec::new();
    let mut c = Cursor {
        toks: rest,
        sql,
        default_schema,
        pos: 0,
    };
    while !c.at_end() {
        if c.eat("RENAME") && !c.is_kw(0, "COLUMN") && !c.is_kw(0, "INDEX") && !c.is_kw(0, "KEY") {
            if !c.eat("TO") {
                c.eat("AS");
            }
            if let Some(t) = c.table_name() {
                out.push(t);
            }
        } else {
            c.pos += 1;
        }
    }
    out
}

/// The columns after `ops`, following MariaDB's `mysql_prepare_alter_table`; `None` when the
/// statement could not have succeeded on `old` (so the tracker must be wrong).
fn apply_alter(old: &[TrackedColumn], ops: &[AlterOp]) -> Option<Vec<TrackedColumn>> {
    let in_old = |n: &str| old.iter().any(|c| same_column(&c.name, n));
    // IF [NOT] EXISTS are decided against the table before the statement.
    let mut live: Vec<&AlterOp> = Vec::new();
    let mut added: Vec<&str> = Vec::new();
    for op in ops {
        match op {
            AlterOp::Drop { name, if_exists }
            | AlterOp::Change {
                old: name,
                if_exists,
                ..
            } if !in_old(name) => {
                if *if_exists {
                    continue;
                }
                return None;
            }
            AlterOp::RenameColumn { old: name, .. } | AlterOp::Touch(name) if !in_old(name) => {
                return None;
            }
            AlterOp::Add {
                def,
                if_not_exists: true,
            } if in_old(&def.column.name)
                || added.iter().any(|a| same_column(a, &def.column.name)) =>
            {
                continue;
            }
            AlterOp::Add { def, .. } => added.push(&def.column.name),
            _ => {}
        }
        live.push(op);
    }
    let subject = |op: &AlterOp| -> Option<String> {
        match op {
            AlterOp::Drop { name, .. }
            | AlterOp::Change { old: name, .. }
            | AlterOp::RenameColumn { old: name, .. } => Some(name.clone()),
            _ => None,
        }
    };
    // Each old column is the subject of at most one DROP / CHANGE / MODIFY / RENAME COLUMN.
    let subjects: Vec<String> = live.iter().filter_map(|op| subject(op)).collect();
    if has_duplicates(&subjects) {
        return None;
    }
    let mut new: Vec<TrackedColumn> = Vec::with_capacity(old.len() + ops.len());
    for col in old {
        let op = live
            .iter()
            .find(|op| subject(op).is_some_and(|n| same_column(&n, &col.name)));
        match op {
            None => new.push(col.clone()),
            Some(AlterOp::Drop { .. }) => {}
            Some(AlterOp::Change { def, .. }) => {
                if def.pos == Pos::Keep {
                    new.push(def.column.clone());
                }
            }
            Some(AlterOp::RenameColumn { new: name, .. }) => new.push(TrackedColumn {
                name: name.clone(),
                unsigned: col.unsigned,
                def: col.def.clone(),
            }),
            Some(_) => return None,
        }
    }
    for op in &live {
        let def = match op {
            AlterOp::Add { def, .. } => def,
            AlterOp::Change { def, .. } if def.pos != Pos::Keep => def,
            _ => continue,
        };
        match &def.pos {
            Pos::Keep => new.push(def.column.clone()),
            Pos::First => new.insert(0, def.column.clone()),
            Pos::After(x) => {
                let at = new.iter().position(|c| same_column(&c.name, x))?;
                new.insert(at + 1, def.column.clone());
            }
        }
    }
    (!new.is_empty() && !has_duplicates(&column_names(&new))).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::rows::ColumnMeta;
    use mysql_async::consts::ColumnType as MyType;

    /// `"id+ a b"`: columns in order, `+` = UNSIGNED.
    fn cols(spec: &str) -> Vec<TrackedColumn> {
        spec.split_whitespace()
            .map(|w| TrackedColumn {
                name: w.trim_end_matches('+').to_string(),
                unsigned: w.ends_with('+'),
                def: None,
            })
            .collect()
    }

    /// A tracked table's names and signedness (what these tests compare; definitions have
    /// their own tests).
    fn bare(t: Option<&TrackedTable>) -> Option<TrackedTable> {
        t.map(|t| TrackedTable {
            columns: t
                .columns
                .iter()
                .map(|c| TrackedColumn {
                    def: None,
                    ..c.clone()
                })
                .collect(),
        })
    }

    fn table(spec: &str) -> TrackedTable {
        TrackedTable {
            columns: cols(spec),
        }
    }

    /// `"db.t"`.
    fn tn(s: &str) -> TableName {
        let (schema, table) = s.split_once('.').unwrap_or(("", s));
        TableName::new(schema, table)
    }

    fn tns(list: &[&str]) -> Vec<TableName> {
        list.iter().map(|s| tn(s)).collect()
    }

    fn tracker(tables: &[(&str, &str)]) -> SchemaTracker {
        let mut t = SchemaTracker::default();
        for (name, spec) in tables {
            t.set(tn(name), table(spec));
        }
        t
    }

    fn effect(changed: &[&str], dropped: &[&str], unknown: &[&str]) -> DdlEffect {
        DdlEffect {
            changed: tns(changed),
            dropped: tns(dropped),
            unknown: tns(unknown),
        }
    }

    /// Each case creates `db.t`: `Some(columns)` or `None` = unknown.
    #[test]
    fn create_table_tracks_the_columns_in_order() {
        let cases: &[(&str, Option<&str>)] = &[
            ("CREATE TABLE t (id int, name varchar(10))", Some("id name")),
            (
                "create table `t` (`id` bigint unsigned not null auto_increment, `v` int(10) zerofill, primary key (`id`))",
                Some("id+ v+"),
            ),
            (
                "CREATE TABLE IF NOT EXISTS db.t (a INT UNSIGNED, b DECIMAL(10,2) UNSIGNED, c FLOAT, d TINYINT SIGNED)",
                Some("a+ b+ c d"),
            ),
            (
                "CREATE TABLE t (a int COMMENT 'x (y, z) unsigned', b varchar(5) DEFAULT 'a,b', c enum('x','y,z') NOT NULL, d set('FIRST','AFTER'))",
                Some("a b c d"),
            ),
            (
                "CREATE TABLE t (a int, b int AS (a * (a + 1)) VIRTUAL, c bigint GENERATED ALWAYS AS (cast(a as unsigned)) STORED)",
                Some("a b c"),
            ),
            (
                "CREATE TABLE t (id int, KEY k (id), UNIQUE KEY u (id), INDEX (id), CONSTRAINT fk FOREIGN KEY (id) REFERENCES p (id) ON DELETE CASCADE, FOREIGN KEY (id) REFERENCES p(id), CHECK (id > 0), CONSTRAINT c CHECK (id < 10), FULLTEXT KEY f (id), SPATIAL INDEX s (id), PERIOD FOR p(id, id), UNIQUE (id))",
                Some("id"),
            ),
            (
                "/* lead */ CREATE TABLE /*!32312 IF NOT EXISTS*/ t ( -- first\n a int, # second\n b int /* inline, c int */ ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 /*!50100 PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (10)) */;",
                Some("a b"),
            ),
            (
                "CREATE OR REPLACE TABLE t (`select` int, `a``b` int unsigned, \"c\" int)",
                Some("select a`b+ c"),
            ),
            (
                "CREATE TABLE t (s serial, b bool, y year, d double precision unsigned, m mediumint(8) unsigned zerofill)",
                Some("s+ b y d+ m+"),
            ),
            ("CREATE TABLE t (A int, `é` int)", Some("A é")),
            (
                "CREATE TABLE t (a int check (a in (1,2)), b int default (a + 1) invisible, c int references p (id))",
                Some("a b c"),
            ),
            ("CREATE TABLE t(a int)ENGINE=MyISAM", Some("a")),
            (
                "CREATE TABLE t (a int, b int) PARTITION BY LIST (a) (PARTITION p0 VALUES IN (1, 2), PARTITION p1 VALUES IN (3))",
                Some("a b"),
            ),
            ("CREATE TABLE t (a int) SELECT 1 AS a", None),
            ("CREATE TABLE t AS SELECT * FROM s", None),
            ("CREATE TABLE t SELECT 1", None),
            ("CREATE TABLE t (a int) IGNORE SELECT * FROM s", None),
            ("CREATE TABLE t (a int) REPLACE AS SELECT * FROM s", None),
            ("CREATE TABLE t (SELECT 1)", None),
            ("CREATE TABLE t AS TABLE s", None),
            ("CREATE TABLE t (a int) AS VALUES (1)", None),
            ("CREATE TABLE t LIKE missing", None),
            ("CREATE TABLE t (a int, b int) WITH SYSTEM VERSIONING", None),
            ("CREATE TABLE t (a int, a int)", None),
            ("CREATE TABLE t (a int, A int)", None),
            ("CREATE TABLE t (a int,)", None),
            ("CREATE TABLE t ()", None),
            ("CREATE TABLE t (a int", None),
            ("CREATE TABLE t (a int))", None),
            ("CREATE TABLE t", None),
            ("CREATE TABLE t (a)", None),
            ("CREATE TABLE t (a int FIRST)", None),
            ("CREATE TABLE t (PRIMARY KEY (a))", None),
            ("CREATE TABLE t ('a' int)", None),
        ];
        for &(sql, want) in cases {
            let mut tr = SchemaTracker::default();
            let fx = tr
                .apply_ddl(sql, "db")
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            match want {
                Some(spec) => {
                    assert_eq!(fx, effect(&["db.t"], &[], &[]), "{sql}");
                    assert_eq!(bare(tr.get(&tn("db.t"))), Some(table(spec)), "{sql}");
                }
                None => {
                    assert_eq!(fx, effect(&[], &[], &["db.t"]), "{sql}");
                    assert_eq!(bare(tr.get(&tn("db.t"))), None, "{sql}");
                }
            }
        }
    }

    #[test]
    fn create_table_replaces_unless_if_not_exists() {
        // (statement, columns of db.t after it, reported as changed)
        let cases: &[(&str, &str, bool)] = &[
            ("CREATE TABLE IF NOT EXISTS t (a int)", "x", false),
            ("CREATE TABLE IF NOT EXISTS t LIKE s", "x", false),
            ("CREATE TABLE t (a int)", "a", true),
            ("CREATE OR REPLACE TABLE t (b int unsigned)", "b+", true),
            ("CREATE TABLE t LIKE s", "id+ v", true),
            ("CREATE TABLE db.t (LIKE `db`.`s`)", "id+ v", true),
        ];
        for &(sql, want, changed) in cases {
            let mut tr = tracker(&[("db.t", "x"), ("db.s", "id+ v")]);
            let fx = tr.apply_ddl(sql, "db").expect("tokenizes");
            let want_fx = if changed {
                effect(&["db.t"], &[], &[])
            } else {
                DdlEffect::default()
            };
            assert_eq!(fx, want_fx, "{sql}");
            assert_eq!(bare(tr.get(&tn("db.t"))), Some(table(want)), "{sql}");
            assert_eq!(bare(tr.get(&tn("db.s"))), Some(table("id+ v")), "{sql}");
        }
        // LIKE into another schema; LIKE with trailing garbage is not understood
        let mut tr = tracker(&[("db.s", "id+ v")]);
        let fx = tr.apply_ddl("CREATE TABLE o.t LIKE s", "db").expect("ok");
        assert_eq!(fx, effect(&["o.t"], &[], &[]));
        assert_eq!(bare(tr.get(&tn("o.t"))), Some(table("id+ v")));
        let fx = tr.apply_ddl("CREATE TABLE u (LIKE s", "db").expect("ok");
        assert_eq!(fx, effect(&[], &[], &["db.u"]));
    }

    #[test]
    fn temporary_and_nameless_creates_change_nothing() {
        for sql in [
            "CREATE TEMPORARY TABLE t (a int)",
            "CREATE OR REPLACE TEMPORARY TABLE t (a int)",
            "CREATE TABLE",
            "CREATE TABLE (a int)",
            "DROP TEMPORARY TABLE IF EXISTS t /* generated by server */",
        ] {
            let mut tr = tracker(&[("db.t", "x")]);
            let fx = tr.apply_ddl(sql, "db").expect("tokenizes");
            assert!(fx.is_empty(), "{sql}: {fx:?}");
            assert_eq!(bare(tr.get(&tn("db.t"))), Some(table("x")), "{sql}");
        }
    }

    /// Each case alters `db.t` = `id+ a b c`: `Some(columns)` or `None` = unknown.
    #[test]
    fn alter_table_follows_mariadb_column_semantics() {
        let cases: &[(&str, Option<&str>)] = &[
            ("ALTER TABLE t ADD COLUMN d int", Some("id+ a b c d")),
            (
                "ALTER TABLE t ADD d int unsigned FIRST",
                Some("d+ id+ a b c"),
            ),
            ("ALTER TABLE t ADD d int AFTER a", Some("id+ a d b c")),
            (
                "ALTER TABLE t ADD COLUMN (d int, e bigint unsigned, INDEX (d))",
                Some("id+ a b c d e+"),
            ),
            (
                "ALTER TABLE t ADD IF NOT EXISTS a int unsigned, ADD COLUMN IF NOT EXISTS d int",
                Some("id+ a b c d"),
            ),
            (
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS d int, ADD COLUMN IF NOT EXISTS D bigint unsigned",
                Some("id+ a b c d"),
            ),
            ("ALTER TABLE t DROP COLUMN a", Some("id+ b c")),
            (
                "ALTER TABLE t DROP a, DROP COLUMN IF EXISTS zz, DROP b RESTRICT",
                Some("id+ c"),
            ),
            ("ALTER TABLE t CHANGE a a2 varchar(10)", Some("id+ a2 b c")),
            // R8: same column count, renamed and reordered
            (
                "ALTER TABLE t CHANGE COLUMN a a2 int, MODIFY b int AFTER id",
                Some("id+ b a2 c"),
            ),
            (
                "ALTER TABLE t CHANGE a b int, CHANGE b a int",
                Some("id+ b a c"),
            ),
            (
                "ALTER TABLE t CHANGE IF EXISTS zz z int, CHANGE id id int",
                Some("id a b c"),
            ),
            ("ALTER TABLE t MODIFY COLUMN c int FIRST", Some("c id+ a b")),
            (
                "ALTER TABLE t MODIFY a int(11) unsigned",
                Some("id+ a+ b c"),
            ),
            ("ALTER TABLE t MODIFY IF EXISTS zz int", Some("id+ a b c")),
            (
                "ALTER TABLE t MODIFY id bigint unsigned zerofill FIRST",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t RENAME COLUMN a TO x, RENAME COLUMN b TO a",
                Some("id+ x a c"),
            ),
            ("ALTER TABLE t RENAME COLUMN A TO z", Some("id+ z b c")),
            ("ALTER TABLE t ADD z int AFTER A", Some("id+ a z b c")),
            (
                "ALTER TABLE t DROP a, ADD a bigint unsigned",
                Some("id+ b c a+"),
            ),
            (
                "ALTER TABLE t ADD d int FIRST, ADD e int AFTER d",
                Some("d e id+ a b c"),
            ),
            (
                "ALTER TABLE t CHANGE a a2 int, ADD d int AFTER a2",
                Some("id+ a2 d b c"),
            ),
            (
                "ALTER TABLE t ADD d int, CHANGE a a2 int AFTER d",
                Some("id+ b c d a2"),
            ),
            (
                "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1, ALTER b DROP DEFAULT",
                Some("id+ a b c"),
            ),
            (
                "ALTER ONLINE IGNORE TABLE IF EXISTS t WAIT 5 ADD d int, ALGORITHM=INPLACE, LOCK=NONE",
                Some("id+ a b c d"),
            ),
            (
                "ALTER TABLE t ADD INDEX i (a), ADD UNIQUE KEY u (b), ADD PRIMARY KEY (id), ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id), ADD CHECK (a > 0), ADD FULLTEXT (b), ADD SPATIAL (c), ADD KEY IF NOT EXISTS k (a)",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t DROP INDEX i, DROP KEY k, DROP PRIMARY KEY, DROP FOREIGN KEY fk, DROP CONSTRAINT c1, DROP CHECK ck",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t ENGINE=InnoDB ROW_FORMAT=DYNAMIC, DEFAULT CHARSET=utf8mb4, CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, COMMENT='add (x)', AUTO_INCREMENT=10, FORCE",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t RENAME INDEX i TO j, RENAME KEY k TO l, ALTER INDEX i INVISIBLE",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t PARTITION BY HASH (id) PARTITIONS 4",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t ADD PARTITION (PARTITION p3 VALUES LESS THAN (40)), DROP PARTITION p0",
                Some("id+ a b c"),
            ),
            (
                "ALTER TABLE t REORGANIZE PARTITION p0 INTO (PARTITION x VALUES LESS THAN (5), PARTITION y VALUES LESS THAN (10))",
                Some("id+ a b c"),
            ),
            ("ALTER TABLE t ORDER BY a", Some("id+ a b c")),
            (
                "/*!40000 ALTER TABLE `t` DISABLE KEYS */",
                Some("id+ a b c"),
            ),
            ("ALTER TABLE t", Some("id+ a b c")),
            ("ALTER TABLE t WITHOUT VALIDATION", Some("id+ a b c")),
            (
                "ALTER TABLE t ADD COLUMN d enum('FIRST','AFTER') DEFAULT 'FIRST' COMMENT 'after a'",
                Some("id+ a b c d"),
            ),
            (
                "ALTER TABLE t ADD d int AS (a + (b * 2)) VIRTUAL AFTER `c`",
                Some("id+ a b c d"),
            ),
            ("ALTER TABLE t ADD period int", Some("id+ a b c period")),
            ("ALTER TABLE t ADD PERIOD FOR p(a, b)", Some("id+ a b c")),
            (
                "ALTER TABLE t ADD d int PARTITION BY HASH (id)",
                Some("id+ a b c d"),
            ),
            ("ALTER TABLE db.t ADD d serial;", Some("id+ a b c d+")),
            // could not have succeeded on the tracked table, or not understood
            ("ALTER TABLE t DROP zz", None),
            ("ALTER TABLE t CHANGE zz z int", None),
            ("ALTER TABLE t MODIFY zz int", None),
            ("ALTER TABLE t RENAME COLUMN zz TO z", None),
            ("ALTER TABLE t ADD a int", None),
            ("ALTER TABLE t ADD d int AFTER zz", None),
            ("ALTER TABLE t CHANGE a b int", None),
            ("ALTER TABLE t DROP a, CHANGE a x int", None),
            ("ALTER TABLE t RENAME COLUMN a TO x, MODIFY a int", None),
            ("ALTER TABLE t MODIFY a int AFTER a", None),
            ("ALTER TABLE t ALTER COLUMN zz SET DEFAULT 1", None),
            ("ALTER TABLE t DROP id, DROP a, DROP b, DROP c", None),
            ("ALTER TABLE t ADD SYSTEM VERSIONING", None),
            ("ALTER TABLE t WITH SYSTEM VERSIONING", None),
            (
                "ALTER TABLE t ADD COLUMN ts timestamp(6) GENERATED ALWAYS AS ROW START, ADD PERIOD FOR SYSTEM_TIME(ts, te)",
                None,
            ),
            ("ALTER TABLE t FROBNICATE", None),
            ("ALTER TABLE t ADD COLUMN", None),
            ("ALTER TABLE t ADD", None),
            ("ALTER TABLE t ADD d", None),
            ("ALTER TABLE t ADD (d int", None),
            ("ALTER TABLE t ADD (d int) junk", None),
            ("ALTER TABLE t ADD d int,", None),
            ("ALTER TABLE t ADD d int FIRST junk", None),
            ("ALTER TABLE t ADD d int AFTER", None),
            ("ALTER TABLE t ENGINE=InnoDB ADD d int", None),
            ("ALTER TABLE t DROP COLUMN a b", None),
            ("ALTER TABLE t RENAME COLUMN a x", None),
            ("ALTER TABLE t ALTER COLUMN a", None),
            ("ALTER TABLE t WITH VALIDATION junk", None),
            ("ALTER TABLE t ADD \"d\" int, ADD 'e' int", None),
        ];
        for &(sql, want) in cases {
            let mut tr = tracker(&[("db.t", "id+ a b c"), ("db.other", "x")]);
            let fx = tr
                .apply_ddl(sql, "db")
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            match want {
                Some(spec) => {
                    // A MODIFY that keeps the name and signedness still changes the
                    // column's definition (persisted too).
                    let want_fx = if spec == "id+ a b c" && !sql.contains("MODIFY id") {
                        DdlEffect::default()
                    } else {
                        effect(&["db.t"], &[], &[])
                    };
                    assert_eq!(fx, want_fx, "{sql}");
                    assert_eq!(bare(tr.get(&tn("db.t"))), Some(table(spec)), "{sql}");
                }
                None => {
                    assert_eq!(fx, effect(&[], &[], &["db.t"]), "{sql}");
                    assert_eq!(bare(tr.get(&tn("db.t"))), None, "{sql}");
                }
            }
            assert_eq!(bare(tr.get(&tn("db.other"))), Some(table("x")), "{sql}");
        }
    }

    #[test]
    fn alter_table_rename_moves_the_table() {
        // (statement, effect, table → columns afterwards; "-" = not tracked)
        type Case<'a> = (
            &'a str,
            (&'a [&'a str], &'a [&'a str], &'a [&'a str]),
            &'a [(&'a str, &'a str)],
        );
        let cases: &[Case] = &[
            (
                "ALTER TABLE t RENAME TO u",
                (&["db.u"], &["db.t"], &[]),
                &[("db.t", "-"), ("db.u", "id a")],
            ),
            (
                "ALTER TABLE t ADD d int unsigned, RENAME AS o.u",
                (&["o.u"], &["db.t"], &[]),
                &[("db.t", "-"), ("o.u", "id a d+")],
            ),
            (
                "alter table t rename v",
                (&["db.v"], &["db.t"], &[]),
                &[("db.t", "-"), ("db.v", "id a")],
            ),
            (
                "ALTER TABLE t RENAME TO t",
                (&[], &[], &[]),
                &[("db.t", "id a")],
            ),
            (
                "ALTER TABLE t RENAME TO x, ADD d int",
                (&["db.x"], &["db.t"], &[]),
                &[("db.t", "-"), ("db.x", "id a d")],
            ),
            (
                "ALTER TABLE t FROBNICATE, RENAME TO x",
                (&[], &[], &["db.t", "db.x"]),
                &[("db.t", "-"), ("db.x", "-")],
            ),
            (
                "ALTER TABLE t DROP zz, RENAME TO u",
                (&[], &[], &["db.t", "db.u"]),
                &[("db.t", "-"), ("db.u", "-")],
            ),
            // not tracked: nothing to change, a rename moves the name
            ("ALTER TABLE y ADD d int", (&[], &[], &[]), &[("db.y", "-")]),
            (
                "ALTER TABLE y FROBNICATE",
                (&[], &[], &[]),
                &[("db.y", "-")],
            ),
            (
                "ALTER TABLE y RENAME TO x",
                (&[], &["db.y"], &["db.x"]),
                &[("db.x", "-"), ("db.t", "id a")],
            ),
        ];
        for (sql, (changed, dropped, unknown), after) in cases {
            let mut tr = tracker(&[("db.t", "id a"), ("db.x", "old")]);
            let fx = tr.apply_ddl(sql, "db").expect("tokenizes");
            assert_eq!(fx, effect(changed, dropped, unknown), "{sql}");
            for (name, spec) in *after {
                let want = (*spec != "-").then(|| table(spec));
                assert_eq!(bare(tr.get(&tn(name))), want, "{sql}: {name}");
            }
        }
    }

    #[test]
    fn drop_rename_and_database_statements() {
        let start: &[(&str, &str)] = &[
            ("db.a", "a1"),
            ("db.b", "b1"),
            ("db.c", "c1"),
            ("other.a", "oa"),
        ];
        // (statement, effect, table → columns afterwards; "-" = not tracked)
        type Case<'a> = (
            &'a str,
            (&'a [&'a str], &'a [&'a str], &'a [&'a str]),
            &'a [(&'a str, &'a str)],
        );
        let cases: &[Case] = &[
            (
                "DROP TABLE a, other.a",
                (&[], &["db.a", "other.a"], &[]),
                &[("db.a", "-"), ("other.a", "-"), ("db.b", "b1")],
            ),
            (
                "DROP TABLE IF EXISTS `a` /* generated by server */",
                (&[], &["db.a"], &[]),
                &[("db.a", "-"), ("other.a", "oa")],
            ),
            (
                "drop tables if exists a, zz restrict",
                (&[], &["db.a", "db.zz"], &[]),
                &[("db.a", "-")],
            ),
            (
                "DROP DATABASE db",
                (&[], &["db.a", "db.b", "db.c"], &[]),
                &[("db.a", "-"), ("db.c", "-"), ("other.a", "oa")],
            ),
            (
                "DROP SCHEMA IF EXISTS `other`",
                (&[], &["other.a"], &[]),
                &[("other.a", "-"), ("db.a", "a1")],
            ),
            (
                "CREATE OR REPLACE DATABASE other",
                (&[], &["other.a"], &[]),
                &[("other.a", "-")],
            ),
            ("DROP DATABASE DB", (&[], &[], &[]), &[("db.a", "a1")]),
            (
                "RENAME TABLE a TO x",
                (&["db.x"], &["db.a"], &[]),
                &[("db.a", "-"), ("db.x", "a1")],
            ),
            (
                "RENAME TABLE a TO tmp, b TO a, tmp TO b",
                (&["db.a", "db.b"], &["db.tmp"], &[]),
                &[("db.a", "b1"), ("db.b", "a1"), ("db.tmp", "-")],
            ),
            (
                "RENAME TABLES db.a WAIT 3 TO other.z, c NOWAIT TO d;",
                (&["db.d", "other.z"], &["db.a", "db.c"], &[]),
                &[("other.z", "a1"), ("db.d", "c1")],
            ),
            (
                "RENAME TABLE zz TO a",
                (&[], &["db.zz"], &["db.a"]),
                &[("db.a", "-")],
            ),
            (
                "RENAME TABLE a TO x, b",
                (&[], &[], &["db.a", "db.x"]),
                &[("db.a", "-"), ("db.b", "b1")],
            ),
            ("RENAME TABLE a TO", (&[], &[], &[]), &[("db.a", "a1")]),
            ("CREATE SEQUENCE a", (&[], &[], &["db.a"]), &[("db.a", "-")]),
            (
                "DROP SEQUENCE IF EXISTS b",
                (&[], &["db.b"], &[]),
                &[("db.b", "-")],
            ),
            ("TRUNCATE TABLE a", (&[], &[], &[]), &[("db.a", "a1")]),
            ("truncate a", (&[], &[], &[]), &[("db.a", "a1")]),
            (
                "CREATE INDEX i ON a (x)",
                (&[], &[], &[]),
                &[("db.a", "a1")],
            ),
            ("CREATE UNIQUE INDEX i ON a (x)", (&[], &[], &[]), &[]),
            ("DROP INDEX i ON a", (&[], &[], &[]), &[("db.a", "a1")]),
            ("CREATE DATABASE db", (&[], &[], &[]), &[("db.a", "a1")]),
            ("ALTER DATABASE db CHARACTER SET utf8", (&[], &[], &[]), &[]),
            (
                "ALTER SEQUENCE a RESTART 1",
                (&[], &[], &[]),
                &[("db.a", "a1")],
            ),
        ];
        for (sql, (changed, dropped, unknown), after) in cases {
            let mut tr = tracker(start);
            let fx = tr.apply_ddl(sql, "db").expect("tokenizes");
            assert_eq!(fx, effect(changed, dropped, unknown), "{sql}");
            for (name, spec) in *after {
                let want = (*spec != "-").then(|| table(spec));
                assert_eq!(bare(tr.get(&tn(name))), want, "{sql}: {name}");
            }
        }
    }

    #[test]
    fn statements_that_are_not_table_ddl_change_nothing() {
        for sql in [
            "",
            "   ",
            ";",
            "BEGIN",
            "COMMIT",
            "SAVEPOINT s1",
            "ROLLBACK TO SAVEPOINT s1",
            "XA START 'x'",
            "GRANT ALL ON *.* TO 'u'@'%'",
            "INSERT INTO a VALUES (1)",
            "UPDATE a SET x = 1",
            "CREATE VIEW a AS SELECT 1",
            "CREATE OR REPLACE VIEW a AS SELECT 1",
            "DROP VIEW a",
            "FLUSH TABLES",
            "SET NAMES utf8",
            "CREATE USER u",
            "ALTER USER u IDENTIFIED BY 'p'",
            "RENAME USER a TO b",
            "DROP USER a",
            "ANALYZE TABLE a",
            "OPTIMIZE TABLE a",
            "CREATE DEFINER=`root`@`%` PROCEDURE p() BEGIN DROP TABLE a; END",
            "DROP PROCEDURE p",
            "CREATE TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1",
            "# just a comment",
        ] {
            let mut tr = tracker(&[("db.a", "x")]);
            let fx = tr.apply_ddl(sql, "db").expect("tokenizes");
            assert!(fx.is_empty(), "{sql}: {fx:?}");
            assert_eq!(bare(tr.get(&tn("db.a"))), Some(table("x")), "{sql}");
        }
    }

    #[test]
    fn table_names_are_case_sensitive_and_default_to_the_schema() {
        let mut tr = tracker(&[("db.T", "a")]);
        let fx = tr.apply_ddl("ALTER TABLE t ADD x int", "db").expect("ok");
        assert!(fx.is_empty());
        let fx = tr.apply_ddl("ALTER TABLE T ADD x int", "DB").expect("ok");
        assert!(fx.is_empty());
        let fx = tr.apply_ddl("DROP TABLE db.t", "").expect("ok");
        assert_eq!(fx, effect(&[], &["db.t"], &[]));
        assert_eq!(bare(tr.get(&tn("db.T"))), Some(table("a")));
        let fx = tr.apply_ddl("ALTER TABLE T ADD x int", "db").expect("ok");
        assert_eq!(fx, effect(&["db.T"], &[], &[]));
        assert_eq!(bare(tr.get(&tn("db.T"))), Some(table("a x")));
        // no default schema: the name stays unqualified
        let fx = tr.apply_ddl("CREATE TABLE u (a int)", "").expect("ok");
        assert_eq!(fx.changed, [TableName::new("", "u")]);
        // forget
        tr.forget(&tn("db.T"));
        assert_eq!(bare(tr.get(&tn("db.T"))), None);
    }

    #[test]
    fn untokenizable_text_is_an_error_and_changes_nothing() {
        for sql in [
            "CREATE TABLE `t (a int)",
            "ALTER TABLE t ADD c varchar(3) DEFAULT 'x",
            "DROP TABLE t /* never closed",
            "ALTER TABLE t ADD c int COMMENT \"x\\\"",
        ] {
            let mut tr = tracker(&[("db.t", "a")]);
            match tr.apply_ddl(sql, "db") {
                Err(SchemaError::Tokenize(_)) => {}
                other => panic!("{sql}: {other:?}"),
            }
            assert_eq!(bare(tr.get(&tn("db.t"))), Some(table("a")), "{sql}");
        }
    }

    #[test]
    fn truncated_and_garbage_statements_never_panic() {
        let corpus = [
            "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` bigint unsigned NOT NULL AUTO_INCREMENT, c enum('a','b') DEFAULT 'a,b' COMMENT 'x (y)', g int AS (id * (id + 1)) VIRTUAL, PRIMARY KEY (`id`), CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (c)) ENGINE=InnoDB /*!50100 PARTITION BY HASH (id) */",
            "ALTER ONLINE IGNORE TABLE IF EXISTS t WAIT 1 ADD COLUMN IF NOT EXISTS (d int, e int unsigned), CHANGE COLUMN IF EXISTS a a2 int FIRST, MODIFY b int AFTER a2, DROP COLUMN IF EXISTS c, RENAME COLUMN x TO y, RENAME TO u, ALTER c SET DEFAULT 1, ADD INDEX (d), ALGORITHM=INPLACE",
            "RENAME TABLE a TO tmp, b TO a, tmp TO b",
            "DROP TABLE IF EXISTS a, b /* generated by server */",
            "CREATE TABLE t LIKE s",
            "CREATE TABLE t (LIKE s)",
            "DROP DATABASE IF EXISTS db",
            "CREATE OR REPLACE DATABASE db",
            "ALTER TABLE t ADD d int AFTER `é`",
        ];
        let garbage = [
            ")))(((",
            ",,,",
            "(",
            ")",
            ".",
            "ALTER TABLE . ADD",
            "ALTER TABLE t ADD ((((",
            "ALTER TABLE t ADD ()",
            "ALTER TABLE t CHANGE",
            "ALTER TABLE t RENAME",
            "ALTER TABLE t RENAME COLUMN",
            "ALTER TABLE t ,,, RENAME TO",
            "CREATE TABLE t (a int))) SELECT (((",
            "CREATE TABLE t ( , , )",
            "CREATE TABLE t (LIKE",
            "RENAME TABLE , TO",
            "RENAME TABLE a TO b TO c",
            "DROP TABLE ,",
            "DROP DATABASE",
            "\"\"",
            "ALTER TABLE \"\" ADD \"\" int",
            "CREATE TABLE t (\"\" int)",
            "ALTER TABLE t ADD c int AFTER FIRST FIRST",
            "ALTER TABLE t MODIFY FIRST",
            "/*!",
            "/*!50100 ALTER TABLE t ADD c int",
            "é ü ; ; ;",
        ];
        let seeds: &[(&str, &str)] = &[
            ("db.t", "a b+ c x"),
            ("db.a", "a"),
            ("db.b", "b"),
            ("db.s", "s"),
        ];
        let mut inputs: Vec<String> = garbage.iter().map(|s| s.to_string()).collect();
        for sql in corpus {
            for (i, _) in sql.char_indices() {
                inputs.push(sql[..i].to_string());
                inputs.push(sql[i..].to_string());
            }
        }
        // deterministic token soup
        let words = [
            "ALTER", "TABLE", "ADD", "DROP", "CHANGE", "MODIFY", "RENAME", "TO", "COLUMN", "(",
            ")", ",", "FIRST", "AFTER", "a", "b", "int", "unsigned", "IF", "EXISTS", "NOT", ".",
            "CREATE", "LIKE", "SELECT", "`q`", "'s'", "INDEX", "KEY", ";",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            let mut sql = String::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                sql.push_str(words[(x % words.len() as u64) as usize]);
                sql.push(' ');
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            inputs.push(sql);
        }
        for sql in &inputs {
            let mut tr = tracker(seeds);
            let _ = tr.apply_ddl(sql, "db");
            // whatever happened, every tracked table is still a valid one
            for name in ["db.t", "db.a", "db.b", "db.s", "db.u", "db.tmp"] {
                if let Some(t) = tr.get(&tn(name)) {
                    assert!(!t.columns.is_empty(), "{sql}: {name}");
                    assert!(!has_duplicates(&column_names(&t.columns)), "{sql}");
                }
            }
        }
    }

    #[test]
    fn information_schema_rows_give_names_and_unsigned() {
        let rows: Vec<(String, String)> = [
            ("id", "bigint(20) unsigned"),
            ("z", "int(10) unsigned zerofill"),
            ("Z2", "tinyint(3) zerofill"),
            ("e", "enum('unsigned','x')"),
            ("q", "enum('it''s unsigned')"),
            ("bs", "set('a\\')"),
            ("d", "decimal(10,2)"),
            ("f", "float unsigned"),
            ("n", "varchar(10)"),
            ("u", "INT UNSIGNED"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
        assert_eq!(
            TrackedTable::from_information_schema(&rows),
            table("id+ z+ Z2+ e q bs d f+ n u+")
        );
        assert_eq!(
            TrackedTable::from_information_schema(&[]),
            TrackedTable { columns: vec![] }
        );
    }

    /// (statement run on `db.t` = `id int NOT NULL, a varchar(10)`, column, its definition).
    #[test]
    fn column_definitions_follow_create_and_alter() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "CREATE TABLE t (id INT, v INT, PRIMARY KEY (id))",
                "id",
                "int NOT NULL",
            ),
            (
                "CREATE TABLE t (id INT, v INT, PRIMARY KEY (id))",
                "v",
                "int",
            ),
            (
                "CREATE TABLE t (`id` bigint unsigned NOT NULL, CONSTRAINT pk PRIMARY KEY USING BTREE (`id`))",
                "id",
                "bigint unsigned NOT NULL",
            ),
            (
                "ALTER TABLE t ADD COLUMN c VARCHAR(20) DEFAULT 'x'",
                "c",
                "varchar(20) DEFAULT 'x'",
            ),
            (
                "ALTER TABLE t MODIFY a VARCHAR(30) NOT NULL",
                "a",
                "varchar(30) NOT NULL",
            ),
            ("ALTER TABLE t CHANGE a b TEXT", "b", "text"),
            ("ALTER TABLE t RENAME COLUMN a TO b", "b", "varchar(10)"),
            ("ALTER TABLE t ADD INDEX i (a)", "a", "varchar(10)"),
        ];
        for &(sql, col, def) in cases {
            let mut tr = SchemaTracker::default();
            tr.apply_ddl("CREATE TABLE t (id int NOT NULL, a varchar(10))", "db")
                .expect("seed");
            tr.apply_ddl(sql, "db").expect(sql);
            let t = tr.get(&tn("db.t")).expect(sql);
            let got = t
                .columns
                .iter()
                .find(|c| c.name == col)
                .and_then(|c| c.def.clone());
            assert_eq!(got, ColumnType::parse(def), "{sql}: {col}");
            assert!(t.to_schema().is_some(), "{sql}");
        }
    }

    #[test]
    fn information_schema_rows_give_the_definitions_ddl_text_gives() {
        let row =
            |name: &str, ty: &str, null: &str, default: Option<&str>, extra: &str| ColumnRow {
                name: name.into(),
                column_type: ty.into(),
                is_nullable: null.into(),
                column_default: default.map(str::to_string),
                extra: extra.into(),
            };
        let from_rows = TrackedTable::from_column_rows(&[
            row("id", "int(10) unsigned", "NO", None, "auto_increment"),
            row("v", "varchar(20)", "YES", Some("'x'"), ""),
            row("n", "int(11)", "YES", Some("NULL"), ""),
        ]);
        let mut tr = SchemaTracker::default();
        tr.apply_ddl(
            "CREATE TABLE t (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) DEFAULT 'x', n INT)",
            "db",
        )
        .expect("parses");
        assert_eq!(Some(&from_rows), tr.get(&tn("db.t")));
        assert!(from_rows.columns[0].unsigned);
    }

    #[test]
    fn definitions_are_kept_in_table_info_and_older_json_still_reads() {
        let mut tr = SchemaTracker::default();
        tr.apply_ddl("CREATE TABLE t (id INT NOT NULL, v VARCHAR(5))", "db")
            .expect("parses");
        let t = tr.get(&tn("db.t")).expect("tracked").clone();
        assert_eq!(TrackedTable::from_json(&t.to_json()).expect("reads"), t);
        // table_info written before definitions were kept: names only, no schema to join.
        let old = TrackedTable::from_json(
            r#"{"columns":[{"name":"id","unsigned":false},{"name":"v","unsigned":false}]}"#,
        )
        .expect("reads");
        assert_eq!(old.columns.len(), 2);
        assert!(old.to_schema().is_none());
        assert!(old.to_create_sql(&tn("db.t")).is_none());
        let sql = t.to_create_sql(&tn("db.t")).expect("definitions known");
        assert_eq!(
            sql,
            "CREATE TABLE `db`.`t` (\n  `id` int NOT NULL,\n  `v` varchar(5)\n)"
        );
    }

    #[test]
    fn table_json_round_trips() {
        let t = table("id+ a`b é \"q\"");
        let json = t.to_json();
        assert_eq!(TrackedTable::from_json(&json).expect("parses"), t);
        assert_eq!(
            table("id+ v").to_json(),
            r#"{"columns":[{"name":"id","unsigned":true},{"name":"v","unsigned":false}]}"#
        );
        for bad in ["", "nope", "{}", r#"{"columns":[{"name":"a"}]}"#, "[1]"] {
            assert!(
                matches!(TrackedTable::from_json(bad), Err(SchemaError::Json(_))),
                "{bad}"
            );
        }
    }

    fn meta(columns: &[(Option<&str>, MyType, bool)]) -> TableMeta {
        TableMeta {
            schema: "db".into(),
            table: "t".into(),
            columns: columns
                .iter()
                .map(|(name, column_type, unsigned)| ColumnMeta {
                    name: name.map(str::to_string),
                    unsigned: *unsigned,
                    column_type: *column_type,
                    charset: None,
                    binary: false,
                    max_len: 0,
                    decimals: 0,
                    members: Vec::new(),
                    nullable: true,
                })
                .collect(),
            primary_key: Vec::new(),
        }
    }

    #[test]
    fn merge_into_fills_names_and_unsigned_without_full_metadata() {
        use MyType::{
            MYSQL_TYPE_LONG as LONG, MYSQL_TYPE_LONGLONG as LONGLONG,
            MYSQL_TYPE_NEWDECIMAL as DECIMAL, MYSQL_TYPE_VARCHAR as VARCHAR,
        };
        type Cols<'a> = &'a [(Option<&'a str>, MyType, bool)];
        // (binlog columns, tracked, result or error)
        let cases: &[(Cols, &str, Result<Cols, SchemaMismatch>)] = &[
            // NO_LOG: names and signedness from the tracker
            (
                &[
                    (None, LONGLONG, false),
                    (None, VARCHAR, false),
                    (None, DECIMAL, false),
                ],
                "id+ name d+",
                Ok(&[
                    (Some("id"), LONGLONG, true),
                    (Some("name"), VARCHAR, false),
                    (Some("d"), DECIMAL, true),
                ]),
            ),
            // MINIMAL: the binlog's own UNSIGNED bits agree
            (
                &[(None, LONG, true), (None, LONG, false)],
                "a+ b",
                Ok(&[(Some("a"), LONG, true), (Some("b"), LONG, false)]),
            ),
            (
                &[(None, LONG, true), (None, LONG, false)],
                "a b",
                Err(SchemaMismatch::Column {
                    schema: "db".into(),
                    table: "t".into(),
                    ordinal: 1,
                    column: "a".into(),
                    detail: "is UNSIGNED in the binlog but signed in the tracked schema",
                }),
            ),
            // some names: only the missing ones are filled
            (
                &[(Some("x"), LONG, false), (None, LONG, false)],
                "a b+",
                Ok(&[(Some("x"), LONG, false), (Some("b"), LONG, true)]),
            ),
            // FULL: the binlog is the truth, even when the tracker disagrees
            (
                &[(Some("x"), LONG, false)],
                "a+ b",
                Ok(&[(Some("x"), LONG, false)]),
            ),
            (&[], "a", Ok(&[])),
            (
                &[(None, LONG, false)],
                "a b",
                Err(SchemaMismatch::ColumnCount {
                    schema: "db".into(),
                    table: "t".into(),
                    binlog: 1,
                    tracked: 2,
                }),
            ),
            (
                &[(None, LONG, false), (None, VARCHAR, false)],
                "a b+",
                Err(SchemaMismatch::Column {
                    schema: "db".into(),
                    table: "t".into(),
                    ordinal: 2,
                    column: "b".into(),
                    detail: "is UNSIGNED in the tracked schema but not a number in the binlog",
                }),
            ),
        ];
        for (binlog, tracked, want) in cases {
            let mut m = meta(binlog);
            let got = merge_into(&mut m, &table(tracked));
            match want {
                Ok(after) => {
                    assert_eq!(got, Ok(()), "{binlog:?} / {tracked}");
                    assert_eq!(m, meta(after), "{binlog:?} / {tracked}");
                }
                Err(e) => {
                    assert_eq!(got.as_ref(), Err(e), "{binlog:?} / {tracked}");
                    assert_eq!(m, meta(binlog), "unchanged on error: {tracked}");
                }
            }
        }
        let msg =
            merge_into(&mut meta(&[(None, LONG, false)]), &table("a b")).map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err("`db`.`t`: the binlog row has 1 columns but the tracked schema has 2".to_string())
        );
        let msg = merge_into(&mut meta(&[(None, VARCHAR, false)]), &table("v+"))
            .map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err("`db`.`t`: column 1 (\"v\" in the tracked schema) is UNSIGNED in the tracked schema but not a number in the binlog".to_string())
        );
    }
}
