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
//! - [`TrackedTable`] `{ columns: Vec<TrackedColumn { name, unsigned }> }` with
//!   `from_information_schema`, `to_json`, `from_json`;
//! - [`SchemaTracker`]: `get`, `set`, `forget`, `apply_ddl(sql, default_schema) -> DdlEffect
//!   { changed, dropped, unknown }`;
//! - [`merge_into`]`(&mut TableMeta, &TrackedTable)`.
//!
//! Statements understood (keywords case-insensitive; comments anywhere; `/*!NNNNN … */` read as
//! SQL; a trailing `;` ignored):
//! - `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (…)`: the column definitions in order, UNSIGNED
//!   when the definition says UNSIGNED or ZEROFILL (or the type is SERIAL); index, key,
//!   constraint, foreign key, check and period lines are not columns. IF NOT EXISTS with `t`
//!   tracked: no change. `… LIKE s`: a copy of `s` when tracked, else `t` unknown.
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

/// One column of a tracked table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedColumn {
    pub name: String,
    /// The column is an UNSIGNED (or ZEROFILL) number.
    pub unsigned: bool,
}

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
    #[error(
        "`{schema}`.`{table}`: tracked column {column:?} (column {ordinal}) is UNSIGNED but the binlog's column {ordinal} is not a number"
    )]
    NotNumeric {
        schema: String,
        table: String,
        column: String,
        /// 1-based, as information_schema's ORDINAL_POSITION.
        ordinal: usize,
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
                // Only numbers are unsigned, and their types hold no strings: a COLUMN_TYPE that
                // does not tokenize is an ENUM/SET.
                unsigned: tokenize(column_type).is_ok_and(|toks| {
                    depth0(&toks).any(|t| is_kw(t, "UNSIGNED") || is_kw(t, "ZEROFILL"))
                }),
            })
            .collect();
        TrackedTable { columns }
    }

    /// The form kept in the checkpoint's `table_info`: `{"columns":[{"name":…,"unsigned":…}]}`.
    pub fn to_json(&self) -> String {
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|c| serde_json::json!({ "name": c.name, "unsigned": c.unsigned }))
            .collect();
        serde_json::json!({ "columns": columns }).to_string()
    }

    /// Reads what [`TrackedTable::to_json`] wrote.
    pub fn from_json(s: &str) -> Result<TrackedTable, SchemaError> {
        serde_json::from_str(s).map_err(SchemaError::Json)
    }
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
/// `meta` is left as it is. Otherwise the column counts must agree, and a column the tracker
/// says is UNSIGNED must be a number in the binlog; UNSIGNED is only ever added (MINIMAL
/// metadata's own signedness bits are kept). On an error `meta` is unchanged.
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
        if t.unsigned && !col.column_type.is_numeric_type() {
            return Err(SchemaMismatch::NotNumeric {
                schema: meta.schema.clone(),
                table: meta.table.clone(),
                column: t.name.clone(),
                ordinal: i + 1,
            });
        }
    }
    for (col, t) in meta.columns.iter_mut().zip(&tracked.columns) {
        if col.name.is_none() {
            col.name = Some(t.name.clone());
        }
        col.unsigned |= t.unsigned;
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

fn is_kw(t: &Tok, kw: &str) -> bool {
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
fn same_column(a: &str, b: &str) -> bool {
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
fn closing_paren(toks: &[Tok], open: usize) -> Option<usize> {
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
    Some(ColumnDef {
        column: TrackedColumn { name, unsigned },
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
    if depth0(tail).any(|t| is_kw(t, "AS") || is_kw(t, "TABLE") || is_kw(t, "VALUES")) {
        return None;
    }
    let mut columns = Vec::new();
    for item in split_commas(inner)? {
        if is_column_line(item) {
            columns.push(column_def(item, sql, false)?.column);
        }
    }
    (!columns.is_empty() && !has_duplicates(&column_names(&columns))).then_some(columns)
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
