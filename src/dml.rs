//! Downstream SQL for row changes: values as SQL literals; the INSERT / REPLACE / upsert
//! (`INSERT … ON DUPLICATE KEY UPDATE`), UPDATE, DELETE and `DELETE … WHERE (key) IN (…)`
//! statements the sync unit's applier executes; and the causality keys it uses to order
//! conflicting rows and to tell keyed rows from rows without a usable key.
//!
//! The applier (`worker::units::sync::apply`) calls this with rows decoded by
//! [`crate::binlog::rows`] and the downstream table it routed them to ([`TargetTable`]); it
//! decides safe mode and compaction, this module only builds text. Everything here is pure
//! string building: no I/O, no schema look-ups. Multi-row statements are cut by a byte bound
//! ([`insert_stmts`], [`delete_in_stmts`]); a single row longer than the bound still gets a
//! statement of its own. It must never render a value as anything other than a literal that
//! MariaDB stores back bit-for-bit (strings and blobs are hex literals, so no escaping or
//! charset conversion can go wrong), and it must never put a column whose value is unknown
//! ([`Value::Missing`], from a MINIMAL/NOBLOB row image) into a column list or a WHERE clause.
//! A row whose only keys have a NULL part has no causality key ([`row_keys`] is empty): it
//! cannot be identified downstream, and must not be written as if it could.

use std::fmt::Write as _;

/// A SQL value ready to render (see [`Value::write_sql`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// The column was not in the row image (MINIMAL/NOBLOB): its value is unknown.
    Missing,
    /// A signed integer (any integer column without the UNSIGNED attribute).
    Int(i64),
    /// An unsigned integer (an UNSIGNED integer column).
    UInt(u64),
    /// A FLOAT, as the IEEE-754 bits of the `f32` (see [`Value::float`]).
    Float(u32),
    /// A DOUBLE, as the IEEE-754 bits of the `f64` (see [`Value::double`]).
    Double(u64),
    /// A DECIMAL in its text form (`-12.3400`).
    Decimal(String),
    /// Character or binary string data (CHAR, VARCHAR, TEXT, BLOB, BINARY, JSON, …), raw bytes.
    Bytes(Vec<u8>),
    /// DATE.
    Date { year: u16, month: u8, day: u8 },
    /// DATETIME with microseconds.
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    },
    /// TIME (−838:59:59 … 838:59:59) with microseconds.
    Time {
        negative: bool,
        hours: u32,
        minute: u8,
        second: u8,
        micros: u32,
    },
    /// TIMESTAMP as seconds since the unix epoch (0 is the zero timestamp).
    Timestamp { secs: u64, micros: u32 },
    /// YEAR (0 is the zero year `0000`).
    Year(u16),
    /// ENUM member index (1-based; 0 is the empty error value).
    Enum(u16),
    /// SET members as a bit mask (bit 0 = first member).
    Set(u64),
    /// BIT(n) value.
    Bit(u64),
}

impl Value {
    /// A FLOAT value.
    pub fn float(f: f32) -> Value {
        Value::Float(f.to_bits())
    }

    /// A DOUBLE value.
    pub fn double(f: f64) -> Value {
        Value::Double(f.to_bits())
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for [`Value::Missing`].
    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// Appends this value as a SQL literal. Strings/blobs are `X'hex'` (valid for any column
    /// charset); numbers are plain; FLOAT is written as the exact decimal of its double widening
    /// (so both storing and `=` comparison against a FLOAT column are exact); temporal values are
    /// quoted text with microseconds when non-zero; TIMESTAMP is the UTC wall time (the
    /// downstream session runs with `time_zone='+00:00'`); ENUM/SET/BIT are numbers. `Missing`
    /// renders as `DEFAULT` (only meaningful inside a VALUES list; the builders never emit it
    /// elsewhere).
    pub fn write_sql(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("NULL"),
            Value::Missing => out.push_str("DEFAULT"),
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::UInt(v) | Value::Set(v) | Value::Bit(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Year(v) | Value::Enum(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(bits) => write_double(f64::from(f32::from_bits(*bits)), out),
            Value::Double(bits) => write_double(f64::from_bits(*bits), out),
            Value::Decimal(s) => {
                if is_decimal_text(s) {
                    out.push_str(s);
                } else {
                    write_quoted_text(s, out);
                }
            }
            Value::Bytes(b) => write_hex(b, out),
            Value::Date { year, month, day } => {
                let _ = write!(out, "'{year:04}-{month:02}-{day:02}'");
            }
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            } => {
                let _ = write!(
                    out,
                    "'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
                );
                write_micros(*micros, out);
                out.push('\'');
            }
            Value::Time {
                negative,
                hours,
                minute,
                second,
                micros,
            } => {
                out.push('\'');
                if *negative {
                    out.push('-');
                }
                let _ = write!(out, "{hours:02}:{minute:02}:{second:02}");
                write_micros(*micros, out);
                out.push('\'');
            }
            Value::Timestamp { secs, micros } => {
                if *secs == 0 && *micros == 0 {
                    out.push_str("'0000-00-00 00:00:00'");
                    return;
                }
                let days = (secs / 86_400) as i64;
                let rem = secs % 86_400;
                let (y, m, d) = civil_from_days(days);
                let _ = write!(
                    out,
                    "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    rem / 3600,
                    rem % 3600 / 60,
                    rem % 60
                );
                write_micros(*micros, out);
                out.push('\'');
            }
        }
    }

    /// This value as a SQL literal (see [`Value::write_sql`]).
    pub fn to_sql(&self) -> String {
        let mut s = String::new();
        self.write_sql(&mut s);
        s
    }
}

/// Shortest text that parses back to exactly `f` (finite values only; MariaDB stores no others).
fn write_double(f: f64, out: &mut String) {
    if f.is_finite() {
        let _ = write!(out, "{f:?}");
    } else {
        // Not storable in MariaDB; NULL is the only literal that cannot be mistaken for data.
        out.push_str("NULL");
    }
}

fn write_micros(micros: u32, out: &mut String) {
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
}

fn write_hex(b: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2 + 3);
    out.push_str("X'");
    for byte in b {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 0xf) as usize] as char);
    }
    out.push('\'');
}

fn write_quoted_text(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn is_decimal_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit())
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends a backquoted identifier (`` ` `` doubled inside).
pub fn quote_ident(name: &str, out: &mut String) {
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
}

/// A downstream table: its name, column names (in binlog column order) and key column indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTable {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    /// Primary key column indices (empty: no primary key).
    pub pk: Vec<usize>,
    /// Each UNIQUE key's column indices, in the table's key order.
    pub unique_keys: Vec<Vec<usize>>,
}

impl TargetTable {
    /// Appends `` `schema`.`table` ``.
    pub fn write_name(&self, out: &mut String) {
        quote_ident(&self.schema, out);
        out.push('.');
        quote_ident(&self.table, out);
    }
}

fn value_at(row: &[Value], i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Missing)
}

/// `INSERT INTO `s`.`t` (`c1`,…) VALUES (…),(…)`: several rows in one statement; `safe_mode`
/// writes `REPLACE INTO`. Columns missing from every row are left out; a column missing from
/// only some rows gets `DEFAULT` there. Writes nothing when there is nothing to insert.
pub fn insert_sql(t: &TargetTable, rows: &[&[Value]], safe_mode: bool, out: &mut String) {
    let cols: Vec<usize> = (0..t.columns.len())
        .filter(|&i| rows.iter().any(|r| !value_at(r, i).is_missing()))
        .collect();
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    out.push_str(if safe_mode {
        "REPLACE INTO "
    } else {
        "INSERT INTO "
    });
    t.write_name(out);
    out.push_str(" (");
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        quote_ident(&t.columns[i], out);
    }
    out.push_str(") VALUES ");
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            value_at(row, i).write_sql(out);
        }
        out.push(')');
    }
}

/// Which columns identify a row in a WHERE clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhereKey {
    /// The primary key (compared with `=`).
    Primary(Vec<usize>),
    /// A UNIQUE key whose values are all non-NULL in this row (compared with `=`).
    Unique(Vec<usize>),
    /// Every known column (compared with `<=>`).
    AllColumns(Vec<usize>),
}

/// The WHERE rule: the PK; else the first UNIQUE key with no NULL (or missing) value in `row`;
/// else every column present in `row`, NULL-safe.
pub fn where_key(t: &TargetTable, row: &[Value]) -> WhereKey {
    let usable = |k: &Vec<usize>| {
        !k.is_empty()
            && k.iter().all(|&i| {
                i < t.columns.len() && !matches!(value_at(row, i), Value::Null | Value::Missing)
            })
    };
    if usable(&t.pk) {
        return WhereKey::Primary(t.pk.clone());
    }
    if let Some(k) = t.unique_keys.iter().find(|k| usable(k)) {
        return WhereKey::Unique(k.clone());
    }
    WhereKey::AllColumns(
        (0..t.columns.len())
            .filter(|&i| !value_at(row, i).is_missing())
            .collect(),
    )
}

fn write_where(t: &TargetTable, row: &[Value], out: &mut String) {
    let (cols, op) = match where_key(t, row) {
        WhereKey::Primary(c) | WhereKey::Unique(c) => (c, "="),
        WhereKey::AllColumns(c) => (c, "<=>"),
    };
    out.push_str(" WHERE ");
    if cols.is_empty() {
        // No known column at all: nothing identifies the row; match nothing rather than anything.
        out.push_str("FALSE");
        return;
    }
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        quote_ident(&t.columns[i], out);
        out.push_str(op);
        value_at(row, i).write_sql(out);
    }
}

/// `UPDATE `s`.`t` SET … WHERE <key of before> LIMIT 1`. With `safe_mode` the update becomes
/// `DELETE` (before key) + `REPLACE` (after), so it also applies when replayed — unless the after
/// image lacks columns (MINIMAL row image), where a REPLACE would reset them: then the plain
/// UPDATE is used. Pushes one or two statements; none when the after image has no column.
pub fn update_sql(
    t: &TargetTable,
    before: &[Value],
    after: &[Value],
    safe_mode: bool,
    out: &mut Vec<String>,
) {
    let set: Vec<usize> = (0..t.columns.len())
        .filter(|&i| !value_at(after, i).is_missing())
        .collect();
    if set.is_empty() {
        return;
    }
    if safe_mode && set.len() == t.columns.len() {
        let mut del = String::new();
        delete_sql(t, before, &mut del);
        out.push(del);
        let mut rep = String::new();
        insert_sql(t, &[after], true, &mut rep);
        out.push(rep);
        return;
    }
    let mut s = String::from("UPDATE ");
    t.write_name(&mut s);
    s.push_str(" SET ");
    for (n, &i) in set.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        quote_ident(&t.columns[i], &mut s);
        s.push('=');
        value_at(after, i).write_sql(&mut s);
    }
    write_where(t, before, &mut s);
    s.push_str(" LIMIT 1");
    out.push(s);
}

/// `DELETE FROM `s`.`t` WHERE <key> LIMIT 1`.
pub fn delete_sql(t: &TargetTable, before: &[Value], out: &mut String) {
    out.push_str("DELETE FROM ");
    t.write_name(out);
    write_where(t, before, out);
    out.push_str(" LIMIT 1");
}

/// Causality keys of a row for conflict detection: the PK and each UNIQUE key with no NULL
/// (or missing) part, each as `` `s`.`t`#<key no>:<literals> `` (key no 0 is the PK, 1.. the
/// UNIQUE keys). Empty when the row has no usable key (no PK, and every UNIQUE key has a NULL
/// or unknown part): such a row cannot be identified downstream, so the applier must write it
/// through its keyless path (see `worker::units::sync::apply`), never as a keyed row.
///
/// String parts are folded before they become a key (ASCII letters to lower case, trailing
/// spaces dropped), because the downstream may compare them under a `_ci` / PAD SPACE collation
/// (`'abc'` = `'ABC '`): folding can only make two keys equal that the downstream might keep
/// apart (a needless conflict, which is safe), never the opposite for ASCII text. Non-ASCII
/// folding (accents, expansions such as `ß` = `ss`) is not modelled.
pub fn row_keys(t: &TargetTable, row: &[Value]) -> Vec<String> {
    let mut name = String::new();
    t.write_name(&mut name);
    let mut keys = Vec::new();
    let all = std::iter::once(&t.pk).chain(t.unique_keys.iter());
    for (n, k) in all.enumerate() {
        if !usable_key(t, k, row) {
            continue;
        }
        let mut key = format!("{name}#{n}:");
        for (j, &i) in k.iter().enumerate() {
            if j > 0 {
                key.push(',');
            }
            match value_at(row, i) {
                Value::Bytes(b) => write_folded(b, &mut key),
                v => v.write_sql(&mut key),
            }
        }
        keys.push(key);
    }
    keys
}

/// True when `row` has a usable key: the PK, or a UNIQUE key with no NULL or missing part.
pub fn has_usable_key(t: &TargetTable, row: &[Value]) -> bool {
    std::iter::once(&t.pk)
        .chain(t.unique_keys.iter())
        .any(|k| usable_key(t, k, row))
}

fn usable_key(t: &TargetTable, k: &[usize], row: &[Value]) -> bool {
    !k.is_empty()
        && k.iter().all(|&i| {
            i < t.columns.len() && !matches!(value_at(row, i), Value::Null | Value::Missing)
        })
}

/// A string key part, ASCII case folded and without trailing spaces, as hex.
fn write_folded(b: &[u8], out: &mut String) {
    let mut end = b.len();
    while end > 0 && b[end - 1] == b' ' {
        end -= 1;
    }
    let folded: Vec<u8> = b[..end].iter().map(|c| c.to_ascii_lowercase()).collect();
    write_hex(&folded, out);
}

/// An estimate of the SQL text one row image takes in a statement (values plus column names
/// and separators), used to cut transactions by bytes before the SQL is built.
pub fn row_sql_len(t: &TargetTable, row: &[Value]) -> usize {
    let mut n = 4;
    for (i, v) in row.iter().enumerate() {
        let name = t.columns.get(i).map_or(0, |c| c.len());
        n += name + 4 + value_sql_len(v);
    }
    n
}

/// The exact length of [`Value::write_sql`]'s output for strings and blobs (the values that can
/// be large); a fixed upper bound for the others.
fn value_sql_len(v: &Value) -> usize {
    match v {
        Value::Bytes(b) => 2 * b.len() + 3,
        Value::Decimal(s) => 2 * s.len() + 2,
        _ => 28,
    }
}

/// How [`insert_stmts`] writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertKind {
    /// `INSERT INTO …`: a duplicate key fails (outside safe mode).
    Insert,
    /// `REPLACE INTO …` (safe mode, row images without a usable key or incomplete ones).
    Replace,
    /// `INSERT INTO … ON DUPLICATE KEY UPDATE c=VALUES(c), …` (DM's safe-mode form for complete
    /// images of a keyed table: an existing row is updated in place).
    Upsert,
}

/// At most this many rows go into one multi-row statement.
pub const MAX_ROWS_PER_STATEMENT: usize = 1000;

/// Multi-row INSERT / REPLACE / upsert statements for `rows`, each at most `max_bytes` long and
/// [`MAX_ROWS_PER_STATEMENT`] rows, except that a single row longer than `max_bytes` gets a
/// statement of its own. Columns missing from every row are left out; a column missing from
/// only some rows gets `DEFAULT` there. Nothing when there is nothing to insert.
pub fn insert_stmts(
    t: &TargetTable,
    rows: &[&[Value]],
    kind: InsertKind,
    max_bytes: usize,
) -> Vec<String> {
    let cols: Vec<usize> = (0..t.columns.len())
        .filter(|&i| rows.iter().any(|r| !value_at(r, i).is_missing()))
        .collect();
    if rows.is_empty() || cols.is_empty() {
        return Vec::new();
    }
    let mut head = String::from(if kind == InsertKind::Replace {
        "REPLACE INTO "
    } else {
        "INSERT INTO "
    });
    t.write_name(&mut head);
    head.push_str(" (");
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            head.push(',');
        }
        quote_ident(&t.columns[i], &mut head);
    }
    head.push_str(") VALUES ");
    let mut tail = String::new();
    if kind == InsertKind::Upsert {
        tail.push_str(" ON DUPLICATE KEY UPDATE ");
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                tail.push(',');
            }
            quote_ident(&t.columns[i], &mut tail);
            tail.push_str("=VALUES(");
            quote_ident(&t.columns[i], &mut tail);
            tail.push(')');
        }
    }
    let tuples = rows.iter().map(|row| {
        let mut s = String::from("(");
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            value_at(row, i).write_sql(&mut s);
        }
        s.push(')');
        s
    });
    pack(&head, tuples, &tail, max_bytes)
}

/// `DELETE FROM `s`.`t` WHERE (`k1`,…) IN ((…),(…))` for the key values `keys` (each in the
/// order of `key_cols`), cut like [`insert_stmts`].
pub fn delete_in_stmts(
    t: &TargetTable,
    key_cols: &[usize],
    keys: &[Vec<Value>],
    max_bytes: usize,
) -> Vec<String> {
    if keys.is_empty() || key_cols.is_empty() {
        return Vec::new();
    }
    let mut head = String::from("DELETE FROM ");
    t.write_name(&mut head);
    head.push_str(" WHERE (");
    for (n, &i) in key_cols.iter().enumerate() {
        if n > 0 {
            head.push(',');
        }
        quote_ident(t.columns.get(i).map_or("", |c| c.as_str()), &mut head);
    }
    head.push_str(") IN (");
    let tuples = keys.iter().map(|k| {
        let mut s = String::from("(");
        for (n, v) in k.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            v.write_sql(&mut s);
        }
        s.push(')');
        s
    });
    pack(&head, tuples, ")", max_bytes)
}

/// `head` + comma-separated `items` + `tail`, as several statements when one would pass
/// `max_bytes` or [`MAX_ROWS_PER_STATEMENT`] items (never fewer than one item each).
fn pack(
    head: &str,
    items: impl Iterator<Item = String>,
    tail: &str,
    max_bytes: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut n = 0;
    for item in items {
        if n > 0
            && (n >= MAX_ROWS_PER_STATEMENT || cur.len() + 1 + item.len() + tail.len() > max_bytes)
        {
            cur.push_str(tail);
            out.push(std::mem::take(&mut cur));
            n = 0;
        }
        if n == 0 {
            cur.push_str(head);
        } else {
            cur.push(',');
        }
        cur.push_str(&item);
        n += 1;
    }
    if n > 0 {
        cur.push_str(tail);
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_kind_renders_as_a_literal_mariadb_stores_back() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::Null, "NULL"),
            (Value::Missing, "DEFAULT"),
            (
                Value::Int(-9_223_372_036_854_775_808),
                "-9223372036854775808",
            ),
            (Value::Int(127), "127"),
            (Value::UInt(u64::MAX), "18446744073709551615"),
            (Value::float(0.1), "0.10000000149011612"),
            (Value::float(f32::MAX), "3.4028234663852886e38"),
            (Value::float(-0.0), "-0.0"),
            (Value::double(0.1), "0.1"),
            (Value::double(f64::MAX), "1.7976931348623157e308"),
            (Value::double(5e-324), "5e-324"),
            (Value::double(f64::NAN), "NULL"),
            (Value::Decimal("-12.3400".into()), "-12.3400"),
            (Value::Decimal("1'; DROP".into()), "'1''; DROP'"),
            (Value::Bytes(vec![]), "X''"),
            (Value::Bytes(b"a'\\\0".to_vec()), "X'61275C00'"),
            (Value::Bytes("😀".as_bytes().to_vec()), "X'F09F9880'"),
            (
                Value::Date {
                    year: 0,
                    month: 0,
                    day: 0,
                },
                "'0000-00-00'",
            ),
            (
                Value::Date {
                    year: 2024,
                    month: 2,
                    day: 29,
                },
                "'2024-02-29'",
            ),
            (
                Value::DateTime {
                    year: 9999,
                    month: 12,
                    day: 31,
                    hour: 23,
                    minute: 59,
                    second: 59,
                    micros: 999_999,
                },
                "'9999-12-31 23:59:59.999999'",
            ),
            (
                Value::DateTime {
                    year: 2000,
                    month: 1,
                    day: 2,
                    hour: 3,
                    minute: 4,
                    second: 5,
                    micros: 60,
                },
                "'2000-01-02 03:04:05.000060'",
            ),
            (
                Value::Time {
                    negative: true,
                    hours: 838,
                    minute: 59,
                    second: 59,
                    micros: 0,
                },
                "'-838:59:59'",
            ),
            (
                Value::Time {
                    negative: false,
                    hours: 1,
                    minute: 2,
                    second: 3,
                    micros: 500_000,
                },
                "'01:02:03.500000'",
            ),
            (
                Value::Timestamp { secs: 0, micros: 0 },
                "'0000-00-00 00:00:00'",
            ),
            (
                Value::Timestamp {
                    secs: 1_704_164_645,
                    micros: 0,
                },
                "'2024-01-02 03:04:05'",
            ),
            (
                Value::Timestamp {
                    secs: 2_147_483_647,
                    micros: 123_456,
                },
                "'2038-01-19 03:14:07.123456'",
            ),
            (
                Value::Timestamp { secs: 1, micros: 0 },
                "'1970-01-01 00:00:01'",
            ),
            (Value::Year(0), "0"),
            (Value::Year(2155), "2155"),
            (Value::Enum(3), "3"),
            (Value::Set(0b101), "5"),
            (Value::Bit(u64::MAX), "18446744073709551615"),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_sql(), want, "{v:?}");
        }
    }

    #[test]
    fn identifiers_double_their_backquotes() {
        for (name, want) in [("a", "`a`"), ("we`ird", "`we``ird`"), ("", "``")] {
            let mut s = String::new();
            quote_ident(name, &mut s);
            assert_eq!(s, want);
        }
    }

    fn table(pk: &[usize], uks: &[&[usize]]) -> TargetTable {
        TargetTable {
            schema: "s`1".into(),
            table: "t".into(),
            columns: vec!["id".into(), "u".into(), "v".into()],
            pk: pk.to_vec(),
            unique_keys: uks.iter().map(|k| k.to_vec()).collect(),
        }
    }

    #[test]
    fn insert_batches_rows_and_skips_missing_columns() {
        let t = table(&[0], &[]);
        let r1 = [Value::Int(1), Value::Null, Value::Bytes(b"x".to_vec())];
        let r2 = [Value::Int(2), Value::Missing, Value::Missing];
        let cases: Vec<(Vec<&[Value]>, bool, &str)> = vec![
            (
                vec![&r1, &r2],
                false,
                "INSERT INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (1,NULL,X'78'),(2,DEFAULT,DEFAULT)",
            ),
            (vec![&r2], true, "REPLACE INTO `s``1`.`t` (`id`) VALUES (2)"),
            (vec![], false, ""),
        ];
        for (rows, safe, want) in cases {
            let mut s = String::new();
            insert_sql(&t, &rows, safe, &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn where_uses_pk_then_non_null_unique_then_all_columns_null_safe() {
        let row = [Value::Int(1), Value::Null, Value::Int(3)];
        let row_u = [Value::Int(1), Value::Int(2), Value::Int(3)];
        let minimal = [Value::Int(7), Value::Missing, Value::Missing];
        let cases: Vec<(TargetTable, &[Value], &str)> = vec![
            (
                table(&[0], &[&[1]]),
                &row,
                "DELETE FROM `s``1`.`t` WHERE `id`=1 LIMIT 1",
            ),
            (
                table(&[], &[&[1], &[2, 0]]),
                &row,
                "DELETE FROM `s``1`.`t` WHERE `v`=3 AND `id`=1 LIMIT 1",
            ),
            (
                table(&[], &[&[1]]),
                &row_u,
                "DELETE FROM `s``1`.`t` WHERE `u`=2 LIMIT 1",
            ),
            (
                table(&[], &[&[1]]),
                &row,
                "DELETE FROM `s``1`.`t` WHERE `id`<=>1 AND `u`<=>NULL AND `v`<=>3 LIMIT 1",
            ),
            (
                table(&[], &[]),
                &minimal,
                "DELETE FROM `s``1`.`t` WHERE `id`<=>7 LIMIT 1",
            ),
            (
                table(&[0], &[]),
                &minimal,
                "DELETE FROM `s``1`.`t` WHERE `id`=7 LIMIT 1",
            ),
            (
                table(&[], &[]),
                &[Value::Missing, Value::Missing, Value::Missing],
                "DELETE FROM `s``1`.`t` WHERE FALSE LIMIT 1",
            ),
        ];
        for (t, before, want) in cases {
            let mut s = String::new();
            delete_sql(&t, before, &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn update_plain_and_safe_mode() {
        let t = table(&[0], &[]);
        let before = [Value::Int(1), Value::Int(2), Value::Null];
        let after = [Value::Int(9), Value::Int(2), Value::Bytes(b"z".to_vec())];
        let after_min = [Value::Missing, Value::Int(5), Value::Missing];
        let cases: Vec<(&[Value], bool, Vec<&str>)> = vec![
            (
                &after,
                false,
                vec!["UPDATE `s``1`.`t` SET `id`=9,`u`=2,`v`=X'7A' WHERE `id`=1 LIMIT 1"],
            ),
            (
                &after,
                true,
                vec![
                    "DELETE FROM `s``1`.`t` WHERE `id`=1 LIMIT 1",
                    "REPLACE INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (9,2,X'7A')",
                ],
            ),
            (
                &after_min,
                true,
                vec!["UPDATE `s``1`.`t` SET `u`=5 WHERE `id`=1 LIMIT 1"],
            ),
            (
                &[Value::Missing, Value::Missing, Value::Missing],
                false,
                vec![],
            ),
        ];
        for (after, safe, want) in cases {
            let mut out = Vec::new();
            update_sql(&t, &before, after, safe, &mut out);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn row_keys_cover_pk_and_non_null_unique_keys() {
        let cases: Vec<(TargetTable, Vec<Value>, Vec<&str>)> = vec![
            (
                table(&[0], &[&[1]]),
                vec![Value::Int(1), Value::Bytes(b"a".to_vec()), Value::Null],
                vec!["`s``1`.`t`#0:1", "`s``1`.`t`#1:X'61'"],
            ),
            (
                table(&[0], &[&[1]]),
                vec![Value::Int(1), Value::Null, Value::Null],
                vec!["`s``1`.`t`#0:1"],
            ),
            (
                table(&[], &[&[1, 2]]),
                vec![Value::Int(1), Value::Int(2), Value::Int(3)],
                vec!["`s``1`.`t`#1:2,3"],
            ),
            (
                table(&[], &[&[1]]),
                vec![Value::Int(1), Value::Null, Value::Int(3)],
                vec![],
            ),
            (
                table(&[], &[]),
                vec![Value::Int(1), Value::Int(2), Value::Int(3)],
                vec![],
            ),
            (
                table(&[], &[&[1]]),
                vec![Value::Int(1), Value::Bytes(b"AbC  ".to_vec()), Value::Null],
                vec!["`s``1`.`t`#1:X'616263'"],
            ),
        ];
        for (t, row, want) in cases {
            assert_eq!(row_keys(&t, &row), want);
        }
    }

    #[test]
    fn multi_row_statements_in_each_form_and_cut_by_bytes() {
        let t = table(&[0, 1], &[]);
        let r1 = [Value::Int(1), Value::Int(2), Value::Null];
        let r2 = [Value::Int(3), Value::Int(4), Value::Bytes(b"ab".to_vec())];
        let rows: Vec<&[Value]> = vec![&r1, &r2];
        let cases: Vec<(InsertKind, usize, Vec<&str>)> = vec![
            (
                InsertKind::Insert,
                1000,
                vec!["INSERT INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (1,2,NULL),(3,4,X'6162')"],
            ),
            (
                InsertKind::Replace,
                1000,
                vec!["REPLACE INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (1,2,NULL),(3,4,X'6162')"],
            ),
            (
                InsertKind::Upsert,
                1000,
                vec![
                    "INSERT INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (1,2,NULL),(3,4,X'6162') ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`u`=VALUES(`u`),`v`=VALUES(`v`)",
                ],
            ),
            (
                InsertKind::Insert,
                60,
                vec![
                    "INSERT INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (1,2,NULL)",
                    "INSERT INTO `s``1`.`t` (`id`,`u`,`v`) VALUES (3,4,X'6162')",
                ],
            ),
        ];
        for (kind, bound, want) in cases {
            assert_eq!(
                insert_stmts(&t, &rows, kind, bound),
                want,
                "{kind:?} {bound}"
            );
        }
        let keys = vec![
            vec![Value::Int(1), Value::Int(2)],
            vec![Value::Int(3), Value::Int(4)],
        ];
        assert_eq!(
            delete_in_stmts(&t, &t.pk, &keys, 1000),
            vec!["DELETE FROM `s``1`.`t` WHERE (`id`,`u`) IN ((1,2),(3,4))"]
        );
        assert_eq!(delete_in_stmts(&t, &t.pk, &keys, 10).len(), 2);
        assert!(delete_in_stmts(&t, &t.pk, &[], 10).is_empty());
    }

    #[test]
    fn civil_dates_round_the_leap_years() {
        for (days, want) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (-1, (1969, 12, 31)),
            (2_932_896, (9999, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), want);
        }
    }
}
