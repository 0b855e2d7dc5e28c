//! Schema comparison for optimistic shard DDL: canonical column definitions and the *joined
//! schema* of a shard-merge group (DM's `schemacmp`, simplified).
//!
//! In an optimistic shard-merge group many upstream tables are merged into one downstream
//! table, and each may run its own ALTERs. The downstream table must hold every shard's rows,
//! so it has the *joined* schema: the least schema every shard's schema fits in ([`join`],
//! [`join_all`]). A shard DDL that widens the join (a new column, a larger integer, a longer
//! varchar) can run downstream at once; one whose column fits in no common type is a conflict
//! (an `Err` naming the column and both definitions).
//!
//! What it never does: I/O, panic on any input, or guess about a definition it cannot read
//! ([`ColumnType::parse`] gives `None`).
//!
//! # Canonical forms
//!
//! A [`ColumnType`] is a column definition reduced to what decides which values fit, so that two
//! spellings of one definition compare equal (DDL text through [`ColumnType::parse`] and
//! MariaDB's information_schema through [`ColumnType::from_information_schema`] alike):
//! - the type (`ty`): lowercase base name, aliases resolved (`INTEGER` → `int`, `BOOL` →
//!   `tinyint`, `DEC`/`NUMERIC`/`FIXED` → `decimal`, `REAL`/`DOUBLE PRECISION`/`FLOAT8` →
//!   `double`, `FLOAT4` → `float`, `CHARACTER`/`NCHAR` → `char`, `CHARACTER VARYING`/
//!   `VARCHARACTER`/`NVARCHAR` → `varchar`, `INT1..INT8`, `MIDDLEINT`, `LONG [VARCHAR]` →
//!   `mediumtext`, `LONG VARBINARY` → `mediumblob`, `SERIAL` → `bigint unsigned NOT NULL
//!   AUTO_INCREMENT`), with the arguments the server keeps: integer display widths dropped,
//!   `decimal` → `decimal(10,0)` and `decimal(M)` → `decimal(M,0)`, `char`/`binary`/`bit` →
//!   length 1, temporal fsp 0 dropped (`datetime(0)` = `datetime`), `year(4)` → `year`,
//!   `blob(M)` → the smallest blob type that holds M bytes, `text(M)` → `text` (its real type
//!   depends on the character set, which is not modelled), `float(…)`/`double(…)` arguments
//!   as written; enum/set members re-quoted as `'…'` with `''` for a quote, no spaces;
//! - `unsigned`, `zerofill` (which implies unsigned), `auto_increment`;
//! - `nullable`: true unless NOT NULL, PRIMARY KEY (or a bare column `KEY`), SERIAL or
//!   `SERIAL DEFAULT VALUE`;
//! - `default`: `None` for no default and DEFAULT NULL; for numeric types (integers, decimal,
//!   float, double, bit, year) a number as written without quotes (`'0'` = `0`, `- 1` = `-1`,
//!   a leading `+` dropped, TRUE/FALSE = 1/0, hex and bit literals as decimal numbers); for
//!   the other types the string value, re-quoted as `'…'` (`''` for a quote, `\\` for a
//!   backslash, `\0`, `\n`, `\r` — the server's own quoting); `CURRENT_TIMESTAMP`, `NOW()`,
//!   `LOCALTIME`, `LOCALTIMESTAMP` with an optional precision → `current_timestamp()` or
//!   `current_timestamp(N)`; any other expression (`(expr)` or a bare function call) → `(expr)`
//!   lowercased, strings kept as written, spaces only between words.
//!
//! Ignored, because they do not change which values a column holds: COMMENT, CHARACTER SET /
//! CHARSET / COLLATE, ON UPDATE …, UNIQUE / KEY (a key only changes NOT NULL), INVISIBLE,
//! COLUMN_FORMAT, STORAGE, CHECK (…) (a constraint, not a type), REFERENCES …, and generated
//! columns' `AS (…) [VIRTUAL|STORED|PERSISTENT]` (only the type counts).
//!
//! # The lattice ([`join_column`])
//!
//! Two definitions join when one type holds both's values: equal types; integers of equal
//! signedness (tinyint < smallint < mediumint < int < bigint); float < double; longer
//! char/varchar/binary/varbinary/bit; decimal(M,D) with enough integer and fraction digits
//! (at most 65); tinytext < text < mediumtext < longtext and the same for blobs; an enum/set
//! whose members start with the other's; temporal types with the larger fsp. Flags
//! (unsigned, zerofill, auto_increment) and defaults must be equal; the join is nullable when
//! either is. A column present in only one schema is kept as it is.

use serde::{Deserialize, Serialize};

use super::schema::{closing_paren, is_kw, same_column};
use crate::rules::ddl::{Tok, TokKind, tokenize};

/// A canonical column definition (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnType {
    /// Canonical type: lowercase base name with the arguments the server keeps:
    /// "int", "bigint", "tinyint", "varchar(20)", "char(1)", "decimal(10,2)", "double", "float",
    /// "enum('a','b')", "set('x')", "datetime(3)", "datetime", "text", "longtext", "blob", "bit(1)", "json" ...
    pub ty: String,
    pub unsigned: bool,
    pub zerofill: bool,
    pub nullable: bool,
    /// None: no default or DEFAULT NULL. Some: canonical literal or expression.
    pub default: Option<String>,
    pub auto_increment: bool,
}

/// A table's columns in ordinal order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<(String, ColumnType)>,
}

const INTEGERS: [&str; 5] = ["tinyint", "smallint", "mediumint", "int", "bigint"];
const TEXTS: [&str; 4] = ["tinytext", "text", "mediumtext", "longtext"];
const BLOBS: [&str; 4] = ["tinyblob", "blob", "mediumblob", "longblob"];
/// Types whose length argument joins to the larger one.
const LENGTHS: [&str; 5] = ["char", "varchar", "binary", "varbinary", "bit"];
const TEMPORALS: [&str; 3] = ["datetime", "time", "timestamp"];
/// Spellings of the current time as a default.
const NOW: [&str; 4] = ["current_timestamp", "now", "localtime", "localtimestamp"];
/// Words that start a column attribute, never a type.
const NOT_TYPES: &[&str] = &[
    "always",
    "as",
    "auto_increment",
    "charset",
    "check",
    "collate",
    "column_format",
    "comment",
    "constraint",
    "default",
    "generated",
    "invisible",
    "key",
    "not",
    "null",
    "on",
    "primary",
    "references",
    "signed",
    "storage",
    "unique",
    "unsigned",
    "visible",
    "zerofill",
];

impl ColumnType {
    /// The text of a column definition after the column name, as written in CREATE TABLE /
    /// ALTER TABLE ADD|MODIFY, without FIRST/AFTER: e.g. "INT(11) UNSIGNED NOT NULL DEFAULT '0'
    /// COMMENT 'x'", "SERIAL", "timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE
    /// CURRENT_TIMESTAMP". `None` when it does not read as a column definition: no type word,
    /// unbalanced parentheses, an unterminated quote or comment.
    pub fn parse(def: &str) -> Option<ColumnType> {
        let toks = tokenize(def).ok()?;
        if !balanced(&toks) {
            return None;
        }
        let head = parse_type(&toks, def)?;
        let mut c = ColumnType {
            ty: head.ty,
            unsigned: head.serial,
            zerofill: false,
            nullable: true,
            default: None,
            auto_increment: head.serial,
        };
        let base = base_of(&c.ty).to_string();
        let mut explicit_null: Option<bool> = None;
        let mut not_null = head.serial;
        let mut byte = false;
        let mut i = head.end;
        while let Some(t) = toks.get(i) {
            let (all, at) = (&toks, i);
            let kw = move |k: usize, w: &str| all.get(at + k).is_some_and(|t| is_kw(t, w));
            if t.kind == TokKind::Punct(b'(') {
                i = closing_paren(&toks, i).map_or(toks.len(), |c| c + 1);
                continue;
            }
            if t.kind != TokKind::Word {
                i += 1;
                continue;
            }
            match t.text.to_ascii_lowercase().as_str() {
                "unsigned" => c.unsigned = true,
                "zerofill" => {
                    c.zerofill = true;
                    c.unsigned = true;
                }
                "not" if kw(1, "NULL") => {
                    explicit_null = Some(false);
                    i += 1;
                }
                "null" => explicit_null = Some(true),
                "serial" if kw(1, "DEFAULT") && kw(2, "VALUE") => {
                    not_null = true;
                    c.auto_increment = true;
                    i += 2;
                }
                "default" => {
                    let end = value_end(&toks, i + 1);
                    c.default = canon_default(toks.get(i + 1..end).unwrap_or_default(), def, &base);
                    i = end;
                    continue;
                }
                "auto_increment" => c.auto_increment = true,
                "primary" if kw(1, "KEY") => {
                    not_null = true;
                    i += 1;
                }
                // A column's bare KEY is PRIMARY KEY.
                "key" => not_null = true,
                "unique" if kw(1, "KEY") => i += 1,
                "character" | "char" if kw(1, "SET") => i += 2,
                "charset" | "collate" | "column_format" | "storage" => i += 1,
                "on" if kw(1, "UPDATE") || kw(1, "DELETE") => {
                    i = value_end(&toks, i + 2);
                    continue;
                }
                "constraint" if !kw(1, "CHECK") => i += 1,
                "check" | "as" => {
                    i = value_end(&toks, i + 1);
                    continue;
                }
                "references" => break,
                "byte" => byte = true,
                _ => {}
            }
            i += 1;
        }
        c.nullable = !not_null && explicit_null.unwrap_or(true);
        if byte && base == "char" {
            c.ty = format!("binary{}", c.ty.get(4..).unwrap_or_default());
        }
        Some(c)
    }

    /// From MariaDB 10.2+ information_schema.COLUMNS: COLUMN_TYPE ("int(10) unsigned
    /// zerofill", "enum('a','b')"), IS_NULLABLE ("YES"/"NO"), COLUMN_DEFAULT (None = no
    /// default; Some("NULL") = DEFAULT NULL; Some("'abc'"), Some("0"),
    /// Some("current_timestamp()"), or an expression), EXTRA ("auto_increment", …).
    pub fn from_information_schema(
        column_type: &str,
        is_nullable: &str,
        column_default: Option<&str>,
        extra: &str,
    ) -> ColumnType {
        let mut c = ColumnType::parse(column_type).unwrap_or_else(|| ColumnType {
            ty: column_type.trim().to_lowercase(),
            unsigned: false,
            zerofill: false,
            nullable: true,
            default: None,
            auto_increment: false,
        });
        c.nullable = !is_nullable.trim().eq_ignore_ascii_case("NO");
        c.auto_increment = extra.to_ascii_lowercase().contains("auto_increment");
        c.default = column_default.and_then(|d| default_from_text(d, base_of(&c.ty)));
        c
    }

    /// A definition that creates this column (after a column name in ADD/MODIFY COLUMN), e.g.
    /// "int unsigned NOT NULL DEFAULT 0", "varchar(20) DEFAULT 'a''b'". A nullable timestamp
    /// says NULL (without it, a server with `explicit_defaults_for_timestamp=OFF` makes it
    /// NOT NULL).
    pub fn to_sql(&self) -> String {
        let mut s = self.ty.clone();
        if self.unsigned {
            s.push_str(" unsigned");
        }
        if self.zerofill {
            s.push_str(" zerofill");
        }
        if !self.nullable {
            s.push_str(" NOT NULL");
        } else if base_of(&self.ty) == "timestamp" {
            s.push_str(" NULL");
        }
        if let Some(d) = &self.default {
            s.push_str(" DEFAULT ");
            s.push_str(d);
        }
        if self.auto_increment {
            s.push_str(" AUTO_INCREMENT");
        }
        s
    }
}

/// The least column both `a`'s and `b`'s values fit in, or `Err(message)` (a conflict).
pub fn join_column(a: &ColumnType, b: &ColumnType) -> Result<ColumnType, String> {
    let conflict = |why: &str| format!("{} vs {}{why}", a.to_sql(), b.to_sql());
    let ty = join_ty(&a.ty, &b.ty)?.ok_or_else(|| conflict(""))?;
    if a.unsigned != b.unsigned || a.zerofill != b.zerofill {
        return Err(conflict(": different signedness"));
    }
    if a.auto_increment != b.auto_increment {
        return Err(conflict(": only one is AUTO_INCREMENT"));
    }
    if a.default != b.default {
        return Err(conflict(": different default values"));
    }
    Ok(ColumnType {
        ty,
        unsigned: a.unsigned,
        zerofill: a.zerofill,
        nullable: a.nullable || b.nullable,
        default: a.default.clone(),
        auto_increment: a.auto_increment,
    })
}

/// The union of `a` and `b` by column name (case-insensitive): `a`'s columns in order, then
/// `b`'s new ones in `b`'s order; a shared column is joined with [`join_column`] and keeps
/// `a`'s spelling of its name.
pub fn join(a: &Schema, b: &Schema) -> Result<Schema, String> {
    let mut columns = Vec::with_capacity(a.columns.len() + b.columns.len());
    for (name, ta) in &a.columns {
        let column = match b.columns.iter().find(|(n, _)| same_column(n, name)) {
            Some((_, tb)) => join_column(ta, tb).map_err(|e| format!("column `{name}`: {e}"))?,
            None => ta.clone(),
        };
        columns.push((name.clone(), column));
    }
    for (name, tb) in &b.columns {
        if !columns.iter().any(|(n, _)| same_column(n, name)) {
            columns.push((name.clone(), tb.clone()));
        }
    }
    Ok(Schema { columns })
}

/// The join of many schemas (an empty schema for none).
pub fn join_all<'a>(schemas: impl IntoIterator<Item = &'a Schema>) -> Result<Schema, String> {
    schemas
        .into_iter()
        .try_fold(Schema::default(), |acc, s| join(&acc, s))
}

// ---------------------------------------------------------------------------------------------
// Types

/// `"varchar(20)"` → `"varchar"`.
fn base_of(ty: &str) -> &str {
    ty.split('(').next().unwrap_or(ty)
}

/// `"varchar(20)"` → `Some("20")`.
fn args_of(ty: &str) -> Option<&str> {
    let open = ty.find('(')?;
    ty.get(open + 1..)?.strip_suffix(')')
}

fn is_numeric(base: &str) -> bool {
    INTEGERS.contains(&base) || ["decimal", "float", "double", "bit", "year"].contains(&base)
}

fn rank(family: &[&str], base: &str) -> Option<usize> {
    family.iter().position(|b| *b == base)
}

/// The least type holding both; `Ok(None)` when none does, `Err` for a decimal too wide.
fn join_ty(a: &str, b: &str) -> Result<Option<String>, String> {
    if a == b {
        return Ok(Some(a.to_string()));
    }
    let (ba, bb) = (base_of(a), base_of(b));
    let larger = |family: &[&str]| match (rank(family, ba), rank(family, bb)) {
        (Some(x), Some(y)) => Some(if x >= y { a } else { b }.to_string()),
        _ => None,
    };
    if let Some(t) = larger(&INTEGERS)
        .or_else(|| larger(&TEXTS))
        .or_else(|| larger(&BLOBS))
    {
        return Ok(Some(t));
    }
    let approx = |t: &str| ["float", "double"].contains(&base_of(t));
    if approx(a) && approx(b) {
        let t = if a == "double" || b == "double" {
            Some("double")
        } else if (a == "float" && bb == "float") || (b == "float" && ba == "float") {
            Some("float")
        } else {
            None
        };
        return Ok(t.map(str::to_string));
    }
    if ba != bb {
        return Ok(None);
    }
    let num = |t: &str| args_of(t).map(|s| s.trim().parse::<u64>().ok());
    if LENGTHS.contains(&ba) {
        return Ok(match (num(a), num(b)) {
            (Some(Some(x)), Some(Some(y))) => Some(format!("{ba}({})", x.max(y))),
            _ => None,
        });
    }
    if TEMPORALS.contains(&ba) {
        return Ok(
            match (num(a).unwrap_or(Some(0)), num(b).unwrap_or(Some(0))) {
                (Some(x), Some(y)) => Some(temporal(ba, x.max(y))),
                _ => None,
            },
        );
    }
    if ba == "decimal" {
        return join_decimal(a, b);
    }
    if ba == "enum" || ba == "set" {
        let (Some(ma), Some(mb)) = (members_of(a), members_of(b)) else {
            return Ok(None);
        };
        return Ok(if mb.starts_with(&ma) {
            Some(b.to_string())
        } else if ma.starts_with(&mb) {
            Some(a.to_string())
        } else {
            None
        });
    }
    Ok(None)
}

fn join_decimal(a: &str, b: &str) -> Result<Option<String>, String> {
    let md = |t: &str| -> Option<(u64, u64)> {
        let (m, d) = args_of(t)?.split_once(',')?;
        Some((m.trim().parse().ok()?, d.trim().parse().ok()?))
    };
    let (Some((m1, d1)), Some((m2, d2))) = (md(a), md(b)) else {
        return Ok(None);
    };
    let d = d1.max(d2);
    let m = m1.saturating_sub(d1).max(m2.saturating_sub(d2)) + d;
    if m > 65 {
        return Err(format!(
            "{a} vs {b}: no decimal holds both (it needs precision {m}, at most 65)"
        ));
    }
    Ok(Some(format!("decimal({m},{d})")))
}

fn temporal(base: &str, fsp: u64) -> String {
    if fsp == 0 {
        base.to_string()
    } else {
        format!("{base}({fsp})")
    }
}

/// The canonical members of `enum(…)`/`set(…)`.
fn members_of(ty: &str) -> Option<Vec<String>> {
    let args = args_of(ty)?;
    let toks = tokenize(args).ok()?;
    members(&toks, args)
}

/// `'a', "b"` → `['a', 'b']` re-quoted; `None` unless each member is one string.
fn members(toks: &[Tok], sql: &str) -> Option<Vec<String>> {
    toks.split(|t| t.kind == TokKind::Punct(b','))
        .map(|m| match m {
            [t] if t.kind == TokKind::Str => Some(quote_str(&unescape(slice(sql, t)))),
            _ => None,
        })
        .collect()
}

/// The type at the start of a column definition, and where its attributes start.
struct TypeHead {
    ty: String,
    serial: bool,
    end: usize,
}

fn parse_type(toks: &[Tok], sql: &str) -> Option<TypeHead> {
    let first = toks.first().filter(|t| t.kind == TokKind::Word)?;
    let word = first.text.to_ascii_lowercase();
    if word.starts_with(|c: char| c.is_ascii_digit()) || NOT_TYPES.contains(&word.as_str()) {
        return None;
    }
    let next = |k: usize, w: &str| toks.get(k).is_some_and(|t| is_kw(t, w));
    let (base, mut end) = match word.as_str() {
        "double" if next(1, "PRECISION") => ("double", 2),
        "character" | "char" if next(1, "VARYING") => ("varchar", 2),
        "national" if next(1, "VARCHAR") => ("varchar", 2),
        "national" if next(1, "CHAR") || next(1, "CHARACTER") => {
            if next(2, "VARYING") {
                ("varchar", 3)
            } else {
                ("char", 2)
            }
        }
        "nchar" if next(1, "VARCHAR") || next(1, "VARYING") => ("varchar", 2),
        "long" if next(1, "VARBINARY") => ("mediumblob", 2),
        "long" if next(1, "VARCHAR") => ("mediumtext", 2),
        "long" => ("mediumtext", 1),
        "nchar" | "character" => ("char", 1),
        "nvarchar" | "varcharacter" => ("varchar", 1),
        "integer" | "int4" => ("int", 1),
        "int1" | "bool" | "boolean" => ("tinyint", 1),
        "int2" => ("smallint", 1),
        "int3" | "middleint" => ("mediumint", 1),
        "int8" | "serial" => ("bigint", 1),
        "dec" | "numeric" | "fixed" => ("decimal", 1),
        "real" | "float8" => ("double", 1),
        "float4" => ("float", 1),
        w => (w, 1),
    };
    let mut args: Option<&[Tok]> = None;
    if toks
        .get(end)
        .is_some_and(|t| t.kind == TokKind::Punct(b'('))
    {
        let close = closing_paren(toks, end)?;
        args = Some(toks.get(end + 1..close)?);
        end = close + 1;
    }
    let one = |args: &[Tok]| match args {
        [t] if t.kind == TokKind::Word => t.text.parse::<u64>().ok(),
        _ => None,
    };
    let written = |args: &[Tok]| format!("{base}({})", compact(args, sql));
    let ty = match (base, args) {
        (b, _) if INTEGERS.contains(&b) || b == "year" => b.to_string(),
        ("decimal", None) => "decimal(10,0)".to_string(),
        ("decimal", Some(args)) => match args {
            [m] => one(std::slice::from_ref(m)).map(|m| format!("decimal({m},0)")),
            [m, c, d] if c.kind == TokKind::Punct(b',') => {
                match (one(std::slice::from_ref(m)), one(std::slice::from_ref(d))) {
                    (Some(m), Some(d)) => Some(format!("decimal({m},{d})")),
                    _ => None,
                }
            }
            _ => None,
        }
        .unwrap_or_else(|| written(args)),
        ("char" | "binary" | "bit", None) => format!("{base}(1)"),
        (b, Some(args)) if LENGTHS.contains(&b) => {
            one(args).map_or_else(|| written(args), |n| format!("{b}({n})"))
        }
        (b, None) if TEMPORALS.contains(&b) => b.to_string(),
        (b, Some(args)) if TEMPORALS.contains(&b) => {
            one(args).map_or_else(|| written(args), |n| temporal(b, n))
        }
        ("enum" | "set", Some(args)) => {
            members(args, sql).map_or_else(|| written(args), |m| format!("{base}({})", m.join(",")))
        }
        ("blob", Some(args)) => one(args).map_or_else(
            || written(args),
            |n| {
                match n {
                    0..256 => "tinyblob",
                    256..65536 => "blob",
                    65536..16777216 => "mediumblob",
                    _ => "longblob",
                }
                .to_string()
            },
        ),
        ("text", Some(_)) => "text".to_string(),
        (b, Some(args)) => format!("{b}({})", compact(args, sql)),
        (b, None) => b.to_string(),
    };
    Some(TypeHead {
        ty,
        serial: word == "serial",
        end,
    })
}

// ---------------------------------------------------------------------------------------------
// Defaults

/// The index after the value starting at `i`: a parenthesised group, strings (with a charset
/// introducer), a signed number, a function call, or one token.
fn value_end(toks: &[Tok], i: usize) -> usize {
    let group = |open: usize| closing_paren(toks, open).map_or(toks.len(), |c| c + 1);
    let strings = |mut j: usize| {
        while toks.get(j).is_some_and(|t| t.kind == TokKind::Str) {
            j += 1;
        }
        j
    };
    let Some(t) = toks.get(i) else {
        return i;
    };
    let next = toks.get(i + 1);
    match t.kind {
        TokKind::Punct(b'(') => group(i),
        TokKind::Str => strings(i),
        TokKind::Punct(b'-' | b'+') => match next {
            Some(n) if starts_number(n) => number_end(toks, i + 1),
            _ => i + 1,
        },
        _ if starts_number(t) => number_end(toks, i),
        TokKind::Word => match next {
            Some(n) if n.kind == TokKind::Str && (n.start == t.end || t.text.starts_with('_')) => {
                strings(i + 1)
            }
            Some(n) if n.kind == TokKind::Punct(b'(') => group(i + 1),
            _ => i + 1,
        },
        _ => i + 1,
    }
}

fn starts_number(t: &Tok) -> bool {
    match t.kind {
        TokKind::Word => t.text.starts_with(|c: char| c.is_ascii_digit()),
        TokKind::Punct(b'.') => true,
        _ => false,
    }
}

/// A number's tokens run together: `1`, `.`, `5e`, `-`, `3`.
fn number_end(toks: &[Tok], i: usize) -> usize {
    let mut j = i;
    while let Some(t) = toks.get(j) {
        let prev = j.checked_sub(1).and_then(|p| toks.get(p)).filter(|_| j > i);
        if prev.is_some_and(|p| p.end != t.start) {
            break;
        }
        let ok = match t.kind {
            TokKind::Word | TokKind::Punct(b'.') => true,
            TokKind::Punct(b'+' | b'-') => prev.is_some_and(|p| {
                p.kind == TokKind::Word && p.text.ends_with(['e', 'E']) && toks.get(j + 1).is_some()
            }),
            _ => false,
        };
        if !ok {
            break;
        }
        j += 1;
    }
    j.max(i + 1)
}

/// The canonical default of the value tokens `v` for a column of type `base`.
fn canon_default(v: &[Tok], sql: &str, base: &str) -> Option<String> {
    let numeric = is_numeric(base);
    let first = v.first()?;
    if let [t] = v {
        if is_kw(t, "NULL") {
            return None;
        }
        if is_kw(t, "TRUE") || is_kw(t, "FALSE") {
            let n = if is_kw(t, "TRUE") { "1" } else { "0" };
            return Some(number_default(n, numeric));
        }
    }
    if let Some(now) = current_timestamp(v) {
        return Some(now);
    }
    if first.kind == TokKind::Punct(b'(') && closing_paren(v, 0) == Some(v.len() - 1) {
        let inner = v.get(1..v.len() - 1).unwrap_or_default();
        return Some(
            current_timestamp(inner).unwrap_or_else(|| format!("({})", compact(inner, sql))),
        );
    }
    let strs = |ts: &[Tok]| -> Option<String> {
        (!ts.is_empty() && ts.iter().all(|t| t.kind == TokKind::Str))
            .then(|| ts.iter().map(|t| unescape(slice(sql, t))).collect())
    };
    if let Some(s) = strs(v) {
        return Some(string_default(&s, numeric));
    }
    if let (TokKind::Word, Some(rest)) = (first.kind, v.get(1..)) {
        let word = first.text.to_ascii_lowercase();
        if let Some(s) = strs(rest) {
            match word.as_str() {
                "x" | "b" if rest.len() == 1 => {
                    let radix = if word == "x" { 16 } else { 2 };
                    return Some(radix_literal(&s, radix, numeric, v, sql));
                }
                w if w.starts_with('_') || w == "n" => return Some(string_default(&s, numeric)),
                _ => {}
            }
        }
    }
    let text: String = v.iter().map(|t| slice(sql, t)).collect();
    if is_number(&text) {
        return Some(number_default(
            text.strip_prefix('+').unwrap_or(&text),
            numeric,
        ));
    }
    if let [t] = v {
        let lower = t.text.to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix("0x") {
            return Some(radix_literal(hex, 16, numeric, v, sql));
        }
        if let Some(bits) = lower.strip_prefix("0b") {
            return Some(radix_literal(bits, 2, numeric, v, sql));
        }
    }
    Some(format!("({})", compact(v, sql)))
}

/// A COLUMN_DEFAULT of information_schema: a literal, NULL, or an expression.
fn default_from_text(text: &str, base: &str) -> Option<String> {
    let toks = match tokenize(text) {
        Ok(toks) if !toks.is_empty() && balanced(&toks) => toks,
        _ => return Some(quote_str(text)),
    };
    if value_end(&toks, 0) == toks.len() {
        canon_default(&toks, text, base)
    } else {
        Some(format!("({})", compact(&toks, text)))
    }
}

/// `CURRENT_TIMESTAMP`, `NOW()`, `LOCALTIME(3)`, … → `current_timestamp()` / `(3)`.
fn current_timestamp(v: &[Tok]) -> Option<String> {
    let (first, rest) = v.split_first()?;
    if first.kind != TokKind::Word || !NOW.contains(&first.text.to_ascii_lowercase().as_str()) {
        return None;
    }
    let fsp = match rest {
        [] => 0,
        [o, c] if o.kind == TokKind::Punct(b'(') && c.kind == TokKind::Punct(b')') => 0,
        [o, n, c] if o.kind == TokKind::Punct(b'(') && c.kind == TokKind::Punct(b')') => n
            .text
            .parse::<u32>()
            .ok()
            .filter(|_| n.kind == TokKind::Word)?,
        _ => return None,
    };
    Some(if fsp == 0 {
        "current_timestamp()".to_string()
    } else {
        format!("current_timestamp({fsp})")
    })
}

fn number_default(n: &str, numeric: bool) -> String {
    if numeric { n.to_string() } else { quote_str(n) }
}

fn string_default(s: &str, numeric: bool) -> String {
    let t = s.trim();
    if numeric && is_number(t) {
        t.strip_prefix('+').unwrap_or(t).to_string()
    } else {
        quote_str(s)
    }
}

/// A hex or bit literal: a decimal number for a numeric column, else as written.
fn radix_literal(digits: &str, radix: u32, numeric: bool, v: &[Tok], sql: &str) -> String {
    match u128::from_str_radix(digits, radix) {
        Ok(n) if numeric => n.to_string(),
        _ => v
            .iter()
            .map(|t| slice(sql, t).to_ascii_lowercase())
            .collect(),
    }
}

/// `[+-]digits[.digits][e[+-]digits]` (or `.digits`).
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(p) => (s.get(..p).unwrap_or_default(), s.get(p + 1..)),
        None => (s, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

// ---------------------------------------------------------------------------------------------
// Tokens and strings

fn slice<'a>(sql: &'a str, t: &Tok) -> &'a str {
    sql.get(t.start..t.end).unwrap_or_default()
}

fn balanced(toks: &[Tok]) -> bool {
    let mut depth = 0usize;
    for t in toks {
        match t.kind {
            TokKind::Punct(b'(') => depth += 1,
            TokKind::Punct(b')') => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

/// Tokens as one canonical text: words lowercased, strings and quoted names as written, a
/// space only between two words (or names, strings) that were apart, and inside `- -`, `/ *`,
/// `* /` (which would otherwise read as comments).
fn compact(toks: &[Tok], sql: &str) -> String {
    let wordish = |k: TokKind| matches!(k, TokKind::Word | TokKind::Quoted | TokKind::Str);
    let mut out = String::new();
    let mut prev: Option<&Tok> = None;
    for t in toks {
        if let Some(p) = prev {
            let hazard = matches!(
                (p.kind, t.kind),
                (TokKind::Punct(b'-'), TokKind::Punct(b'-'))
                    | (TokKind::Punct(b'/'), TokKind::Punct(b'*'))
                    | (TokKind::Punct(b'*'), TokKind::Punct(b'/'))
            );
            if hazard || (t.start > p.end && wordish(p.kind) && wordish(t.kind)) {
                out.push(' ');
            }
        }
        match t.kind {
            TokKind::Word => out.push_str(&t.text.to_lowercase()),
            TokKind::Quoted | TokKind::Str => out.push_str(slice(sql, t)),
            TokKind::Punct(c) => out.push(char::from(c)),
        }
        prev = Some(t);
    }
    out
}

/// The value of a `'…'` or `"…"` literal (backslash escapes, doubled quotes).
fn unescape(raw: &str) -> String {
    let mut chars = raw.chars();
    let Some(q) = chars.next() else {
        return String::new();
    };
    let inner: Vec<char> = chars.collect();
    let inner = inner.strip_suffix(&[q]).unwrap_or(&inner);
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = inner.get(i) {
        let next = inner.get(i + 1).copied();
        match (c, next) {
            ('\\', Some(e)) => {
                match e {
                    '0' => out.push('\0'),
                    'b' => out.push('\u{8}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'Z' => out.push('\u{1a}'),
                    '%' | '_' => {
                        out.push('\\');
                        out.push(e);
                    }
                    e => out.push(e),
                }
                i += 2;
            }
            (c, Some(n)) if c == q && n == q => {
                out.push(q);
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `v` as a `'…'` literal, quoted as the server shows it.
fn quote_str(v: &str) -> String {
    let mut out = String::from("'");
    for c in v.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The MySQL field type a canonical base type is (TiDB's `mysql.Type*`: text and blob share one,
/// char and binary one, varchar and varbinary one).
fn field_type(base: &str) -> &str {
    match base {
        "char" | "binary" => "string",
        "varchar" | "varbinary" => "varchar",
        "tinytext" | "tinyblob" => "tinyblob",
        "text" | "blob" => "blob",
        "mediumtext" | "mediumblob" => "mediumblob",
        "longtext" | "longblob" => "longblob",
        "numeric" => "decimal",
        "real" => "double",
        other => other,
    }
}

/// (flen, decimals) of a canonical type: its arguments, the implicit length of the text and
/// blob types, a temporal type's fraction digits as decimals; -1 when not known.
fn flen_dec(ty: &str) -> (i64, i64) {
    let base = base_of(ty);
    let nums: Vec<i64> = args_of(ty)
        .map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    match base {
        "tinytext" | "tinyblob" => (255, -1),
        "text" | "blob" => (65_535, -1),
        "mediumtext" | "mediumblob" => (16_777_215, -1),
        "longtext" | "longblob" => (4_294_967_295, -1),
        "datetime" | "time" | "timestamp" => (-1, nums.first().copied().unwrap_or(0)),
        _ => (
            nums.first().copied().unwrap_or(-1),
            nums.get(1).copied().unwrap_or(-1),
        ),
    }
}

/// The default display width of an integer type (TiDB's `GetDefaultFieldLengthAndDecimal`).
fn int_width(base: &str) -> i64 {
    match base {
        "tinyint" => 4,
        "smallint" => 6,
        "mediumint" => 9,
        "int" | "integer" => 11,
        "bigint" => 20,
        _ => -1,
    }
}

/// The quoted elements of an `enum(…)` / `set(…)`.
fn elems(ty: &str) -> Vec<String> {
    args_of(ty)
        .map(|a| a.split(',').map(|e| e.trim().to_string()).collect())
        .unwrap_or_default()
}

/// DM's binlog-filter event of `MODIFY` / `CHANGE COLUMN` from the tracked column `old` to
/// `new` (tiflow's `handleModifyColumn` / `needChangeColumnData`, for what the tracker keeps:
/// it does not know a column's key flags, character set or collation, so "drop primary key",
/// "drop unique key", "modify charset" and "modify collation" are never told apart here).
pub fn modify_event(
    old: &ColumnType,
    new: &ColumnType,
    renamed: bool,
    positioned: bool,
) -> crate::rules::EventType {
    use crate::rules::EventType as E;
    let (ob, nb) = (base_of(&old.ty), base_of(&new.ty));
    let (of, nf) = (field_type(ob), field_type(nb));
    let ((ol, od), (nl, nd)) = (flen_dec(&old.ty), flen_dec(&new.ty));
    let sign = old.unsigned != new.unsigned;
    let truncates = (nl > 0 && nl < ol) || (nd >= 0 && nd < od) || sign;
    let strings = [
        "string",
        "varchar",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
    ];
    let data = if of == nf {
        match of {
            "decimal" if ol != nl || od != nd || sign => E::PrecisionDecrease,
            "decimal" => E::AlterTable,
            "enum" | "set" => {
                let (o, n) = (elems(&old.ty), elems(&new.ty));
                if n.len() < o.len() || o.iter().zip(&n).any(|(a, b)| a != b) {
                    E::ValueRangeDecrease
                } else {
                    E::AlterTable
                }
            }
            _ if INTEGERS.contains(&of) => {
                if sign {
                    E::PrecisionDecrease
                } else {
                    E::AlterTable
                }
            }
            "string" if (ob == "binary" || nb == "binary") && ol != nl => E::PrecisionDecrease,
            "string" => E::AlterTable,
            _ if truncates => E::ValueRangeDecrease,
            _ => E::AlterTable,
        }
    } else if matches!((of, nf), ("string", "varchar") | ("varchar", "string")) {
        E::ModifyColumn
    } else if strings.contains(&of) && strings.contains(&nf) {
        if truncates {
            E::ModifyColumn
        } else {
            E::AlterTable
        }
    } else if INTEGERS.contains(&of) && INTEGERS.contains(&nf) {
        let (ow, nw) = (int_width(of), int_width(nf));
        if (nw > 0 && nw < ow) || sign {
            E::ValueRangeDecrease
        } else {
            E::AlterTable
        }
    } else {
        E::ModifyColumn
    };
    if data != E::AlterTable {
        return data;
    }
    if old.auto_increment && !new.auto_increment {
        E::RemoveAutoIncrement
    } else if old.default != new.default {
        E::ModifyDefaultValue
    } else if positioned {
        E::ModifyColumnsOrder
    } else if renamed {
        E::RenameColumn
    } else {
        E::AlterTable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nullable column of type `ty` without flags or default.
    fn c(ty: &str) -> ColumnType {
        ColumnType {
            ty: ty.to_string(),
            unsigned: false,
            zerofill: false,
            nullable: true,
            default: None,
            auto_increment: false,
        }
    }

    impl ColumnType {
        fn un(mut self) -> Self {
            self.unsigned = true;
            self
        }
        fn zf(mut self) -> Self {
            self.zerofill = true;
            self
        }
        fn nn(mut self) -> Self {
            self.nullable = false;
            self
        }
        fn def(mut self, d: &str) -> Self {
            self.default = Some(d.to_string());
            self
        }
        fn ai(mut self) -> Self {
            self.auto_increment = true;
            self
        }
    }

    fn parse_cases() -> Vec<(&'static str, Option<ColumnType>)> {
        vec![
            // integers, aliases, widths
            ("INT", Some(c("int"))),
            ("int(11)", Some(c("int"))),
            ("INTEGER(10)", Some(c("int"))),
            ("INT4", Some(c("int"))),
            ("INT1", Some(c("tinyint"))),
            ("INT2", Some(c("smallint"))),
            ("INT3", Some(c("mediumint"))),
            ("MIDDLEINT", Some(c("mediumint"))),
            ("INT8", Some(c("bigint"))),
            ("bigint(20) unsigned", Some(c("bigint").un())),
            ("BOOL", Some(c("tinyint"))),
            ("BOOLEAN", Some(c("tinyint"))),
            ("tinyint(1)", Some(c("tinyint"))),
            ("int(5) ZEROFILL", Some(c("int").un().zf())),
            ("INT SIGNED", Some(c("int"))),
            ("int /*!50000 UNSIGNED */", Some(c("int").un())),
            ("SERIAL", Some(c("bigint").un().nn().ai())),
            ("int SERIAL DEFAULT VALUE", Some(c("int").nn().ai())),
            (
                "bigint NOT NULL AUTO_INCREMENT",
                Some(c("bigint").nn().ai()),
            ),
            // decimal, approximate
            ("DECIMAL", Some(c("decimal(10,0)"))),
            ("DECIMAL(5)", Some(c("decimal(5,0)"))),
            ("DEC(12, 4)", Some(c("decimal(12,4)"))),
            ("NUMERIC(7,2)", Some(c("decimal(7,2)"))),
            ("FIXED", Some(c("decimal(10,0)"))),
            ("decimal(10,2) unsigned", Some(c("decimal(10,2)").un())),
            ("REAL", Some(c("double"))),
            ("DOUBLE PRECISION", Some(c("double"))),
            ("FLOAT8", Some(c("double"))),
            ("FLOAT4", Some(c("float"))),
            ("FLOAT(24)", Some(c("float(24)"))),
            ("float(7, 3)", Some(c("float(7,3)"))),
            // strings, binaries, bits
            ("CHARACTER", Some(c("char(1)"))),
            ("CHAR(10)", Some(c("char(10)"))),
            ("NCHAR(3)", Some(c("char(3)"))),
            ("NATIONAL CHARACTER(2)", Some(c("char(2)"))),
            ("CHARACTER VARYING(20)", Some(c("varchar(20)"))),
            ("CHAR VARYING(20)", Some(c("varchar(20)"))),
            ("VARCHARACTER(20)", Some(c("varchar(20)"))),
            ("NVARCHAR(5)", Some(c("varchar(5)"))),
            ("NATIONAL VARCHAR(5)", Some(c("varchar(5)"))),
            ("NCHAR VARYING(5)", Some(c("varchar(5)"))),
            ("NATIONAL CHAR VARYING(4)", Some(c("varchar(4)"))),
            ("VARCHAR ( 20 )", Some(c("varchar(20)"))),
            ("BINARY", Some(c("binary(1)"))),
            ("VARBINARY(16)", Some(c("varbinary(16)"))),
            ("CHAR(4) BYTE", Some(c("binary(4)"))),
            ("BIT", Some(c("bit(1)"))),
            ("BIT(8)", Some(c("bit(8)"))),
            ("LONG VARCHAR", Some(c("mediumtext"))),
            ("LONG", Some(c("mediumtext"))),
            ("LONG VARBINARY", Some(c("mediumblob"))),
            ("TEXT", Some(c("text"))),
            ("text(100)", Some(c("text"))),
            ("LONGTEXT", Some(c("longtext"))),
            ("BLOB", Some(c("blob"))),
            ("blob(100)", Some(c("tinyblob"))),
            ("blob(70000)", Some(c("mediumblob"))),
            ("JSON", Some(c("json"))),
            ("GEOMETRY NOT NULL", Some(c("geometry").nn())),
            ("ENUM('a', 'b')", Some(c("enum('a','b')"))),
            (
                "enum(\"a\",'b''c', 'd\\'e')",
                Some(c("enum('a','b''c','d''e')")),
            ),
            ("SET('x')", Some(c("set('x')"))),
            // temporal
            ("DATETIME", Some(c("datetime"))),
            ("datetime(0)", Some(c("datetime"))),
            ("DATETIME(3)", Some(c("datetime(3)"))),
            ("TIME(6)", Some(c("time(6)"))),
            ("timestamp(0)", Some(c("timestamp"))),
            ("YEAR(4)", Some(c("year"))),
            // nullability
            ("int NULL", Some(c("int"))),
            ("int NOT NULL", Some(c("int").nn())),
            ("int PRIMARY KEY", Some(c("int").nn())),
            ("int KEY", Some(c("int").nn())),
            ("int NULL PRIMARY KEY", Some(c("int").nn())),
            ("int UNIQUE KEY", Some(c("int"))),
            ("int UNIQUE", Some(c("int"))),
            // numeric defaults
            (
                "INT(10) UNSIGNED NOT NULL DEFAULT '0' COMMENT 'x'",
                Some(c("int").un().nn().def("0")),
            ),
            ("int DEFAULT 0", Some(c("int").def("0"))),
            ("int DEFAULT '0'", Some(c("int").def("0"))),
            ("int DEFAULT -1", Some(c("int").def("-1"))),
            ("int DEFAULT - 1", Some(c("int").def("-1"))),
            ("int DEFAULT '-1'", Some(c("int").def("-1"))),
            ("int DEFAULT ' 7 '", Some(c("int").def("7"))),
            ("int DEFAULT +1", Some(c("int").def("1"))),
            ("int DEFAULT 'abc'", Some(c("int").def("'abc'"))),
            ("int DEFAULT 0x10", Some(c("int").def("16"))),
            (
                "decimal(10,2) DEFAULT 1.50",
                Some(c("decimal(10,2)").def("1.50")),
            ),
            (
                "decimal(10,2) DEFAULT '1.50'",
                Some(c("decimal(10,2)").def("1.50")),
            ),
            ("double DEFAULT 1.5e-3", Some(c("double").def("1.5e-3"))),
            ("double DEFAULT .5", Some(c("double").def(".5"))),
            ("BOOL DEFAULT TRUE", Some(c("tinyint").def("1"))),
            (
                "boolean NOT NULL DEFAULT false",
                Some(c("tinyint").nn().def("0")),
            ),
            ("bit(3) DEFAULT b'101'", Some(c("bit(3)").def("5"))),
            ("bit(8) DEFAULT x'0F'", Some(c("bit(8)").def("15"))),
            ("bit(3) DEFAULT 5", Some(c("bit(3)").def("5"))),
            ("int DEFAULT NULL", Some(c("int"))),
            ("int NOT NULL DEFAULT NULL", Some(c("int").nn())),
            // string defaults
            (
                "varchar(10) DEFAULT 'abc'",
                Some(c("varchar(10)").def("'abc'")),
            ),
            (
                "varchar(10) DEFAULT 'a''b'",
                Some(c("varchar(10)").def("'a''b'")),
            ),
            (
                "varchar(10) DEFAULT 'a\\'b'",
                Some(c("varchar(10)").def("'a''b'")),
            ),
            (
                "varchar(10) DEFAULT \"a\"\"b\"",
                Some(c("varchar(10)").def("'a\"b'")),
            ),
            (
                "varchar(10) DEFAULT 'a\\\\b'",
                Some(c("varchar(10)").def("'a\\\\b'")),
            ),
            (
                "varchar(10) DEFAULT 'a\\nb'",
                Some(c("varchar(10)").def("'a\\nb'")),
            ),
            ("varchar(10) DEFAULT ''", Some(c("varchar(10)").def("''"))),
            (
                "varchar(10) DEFAULT 'a' 'b'",
                Some(c("varchar(10)").def("'ab'")),
            ),
            (
                "varchar(10) DEFAULT _utf8mb4'x'",
                Some(c("varchar(10)").def("'x'")),
            ),
            (
                "varchar(10) DEFAULT N'x'",
                Some(c("varchar(10)").def("'x'")),
            ),
            ("varchar(10) DEFAULT 0", Some(c("varchar(10)").def("'0'"))),
            (
                "varchar(10) DEFAULT -1.5",
                Some(c("varchar(10)").def("'-1.5'")),
            ),
            (
                "varbinary(4) DEFAULT x'0A'",
                Some(c("varbinary(4)").def("x'0a'")),
            ),
            (
                "enum('a','b') NOT NULL DEFAULT 'a'",
                Some(c("enum('a','b')").nn().def("'a'")),
            ),
            (
                "datetime DEFAULT '2020-01-01 00:00:00'",
                Some(c("datetime").def("'2020-01-01 00:00:00'")),
            ),
            // current time
            (
                "timestamp DEFAULT CURRENT_TIMESTAMP",
                Some(c("timestamp").def("current_timestamp()")),
            ),
            (
                "timestamp DEFAULT current_timestamp()",
                Some(c("timestamp").def("current_timestamp()")),
            ),
            (
                "timestamp DEFAULT CURRENT_TIMESTAMP(0)",
                Some(c("timestamp").def("current_timestamp()")),
            ),
            (
                "timestamp DEFAULT NOW()",
                Some(c("timestamp").def("current_timestamp()")),
            ),
            (
                "datetime DEFAULT LOCALTIME",
                Some(c("datetime").def("current_timestamp()")),
            ),
            (
                "datetime DEFAULT LOCALTIMESTAMP()",
                Some(c("datetime").def("current_timestamp()")),
            ),
            (
                "datetime DEFAULT (CURRENT_TIMESTAMP)",
                Some(c("datetime").def("current_timestamp()")),
            ),
            (
                "datetime(3) DEFAULT CURRENT_TIMESTAMP(3)",
                Some(c("datetime(3)").def("current_timestamp(3)")),
            ),
            (
                "DATETIME(3) DEFAULT NOW(3)",
                Some(c("datetime(3)").def("current_timestamp(3)")),
            ),
            (
                "timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
                Some(c("timestamp").nn().def("current_timestamp()")),
            ),
            (
                "timestamp(3) NOT NULL DEFAULT NOW(3) ON UPDATE NOW(3) COMMENT 'u'",
                Some(c("timestamp(3)").nn().def("current_timestamp(3)")),
            ),
            // expressions
            (
                "varchar(36) DEFAULT (UUID())",
                Some(c("varchar(36)").def("(uuid())")),
            ),
            (
                "varchar(36) DEFAULT uuid()",
                Some(c("varchar(36)").def("(uuid())")),
            ),
            ("int DEFAULT (1 + 1)", Some(c("int").def("(1+1)"))),
            (
                "varchar(10) DEFAULT (CONCAT('A', `b`))",
                Some(c("varchar(10)").def("(concat('A',`b`))")),
            ),
            // ignored clauses
            (
                "varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                Some(c("varchar(20)")),
            ),
            (
                "varchar(20) CHARSET latin1 NOT NULL",
                Some(c("varchar(20)").nn()),
            ),
            (
                "varchar(20) COLLATE 'utf8mb4_bin' DEFAULT 'x'",
                Some(c("varchar(20)").def("'x'")),
            ),
            ("char(5) BINARY", Some(c("char(5)"))),
            ("int COMMENT 'not null, default 5' NULL", Some(c("int"))),
            ("int INVISIBLE", Some(c("int"))),
            (
                "int COLUMN_FORMAT FIXED STORAGE DISK NOT NULL",
                Some(c("int").nn()),
            ),
            ("int CHECK (x > 0 AND x IS NOT NULL)", Some(c("int"))),
            (
                "int CONSTRAINT c1 CHECK (x > 0) NOT NULL",
                Some(c("int").nn()),
            ),
            (
                "int REFERENCES t (id) ON DELETE CASCADE ON UPDATE SET NULL",
                Some(c("int")),
            ),
            ("int AS (a + 1) VIRTUAL", Some(c("int"))),
            (
                "int GENERATED ALWAYS AS (a * (a + 1)) STORED NOT NULL",
                Some(c("int").nn()),
            ),
            ("int AS (a) PERSISTENT", Some(c("int"))),
            ("int /* a, NOT NULL ( */ NOT NULL", Some(c("int").nn())),
            ("int -- trailing\n DEFAULT 3", Some(c("int").def("3"))),
            // not a column definition
            ("", None),
            ("   ", None),
            ("(", None),
            ("int(", None),
            ("int)", None),
            ("varchar(10) DEFAULT 'abc", None),
            ("int /* open", None),
            ("NOT NULL", None),
            ("DEFAULT 1", None),
            ("123", None),
            ("`int`", None),
            ("'int'", None),
        ]
    }

    #[test]
    fn parse_canonicalises_definitions() {
        for (def, want) in parse_cases() {
            assert_eq!(ColumnType::parse(def), want, "{def:?}");
        }
    }

    #[test]
    fn to_sql_round_trips_through_parse() {
        for (def, want) in parse_cases() {
            let Some(want) = want else { continue };
            let sql = want.to_sql();
            assert_eq!(ColumnType::parse(&sql), Some(want), "{def:?} → {sql:?}");
        }
    }

    /// Totality: every prefix of every case reads without a panic, and what reads round-trips
    /// and joins with itself.
    #[test]
    fn every_prefix_reads_and_round_trips() {
        for (def, _) in parse_cases() {
            for end in (0..=def.len()).filter(|&e| def.is_char_boundary(e)) {
                let prefix = &def[..end];
                let info = ColumnType::from_information_schema(prefix, "YES", Some(prefix), prefix);
                assert_eq!(
                    join_column(&info, &info).ok(),
                    Some(info.clone()),
                    "{prefix:?}"
                );
                let Some(col) = ColumnType::parse(prefix) else {
                    continue;
                };
                let sql = col.to_sql();
                assert_eq!(
                    ColumnType::parse(&sql).as_ref(),
                    Some(&col),
                    "{prefix:?} → {sql:?}"
                );
            }
        }
    }

    #[test]
    fn to_sql_writes_the_definition() {
        let cases = [
            (
                c("int").un().nn().def("0"),
                "int unsigned NOT NULL DEFAULT 0",
            ),
            (c("varchar(20)").def("'a''b'"), "varchar(20) DEFAULT 'a''b'"),
            (c("bigint").nn().ai(), "bigint NOT NULL AUTO_INCREMENT"),
            (c("int").un().zf(), "int unsigned zerofill"),
            (c("timestamp"), "timestamp NULL"),
            (
                c("timestamp(3)").nn().def("current_timestamp(3)"),
                "timestamp(3) NOT NULL DEFAULT current_timestamp(3)",
            ),
        ];
        for (col, want) in cases {
            assert_eq!(col.to_sql(), want);
        }
    }

    #[test]
    fn information_schema_matches_the_ddl() {
        let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
            ("int(11)", "YES", None, "", "int"),
            ("int(11)", "YES", Some("NULL"), "", "int DEFAULT NULL"),
            (
                "int(10) unsigned zerofill",
                "NO",
                Some("0"),
                "",
                "INT(10) ZEROFILL NOT NULL DEFAULT '0'",
            ),
            ("int(11)", "NO", Some("-1"), "", "int NOT NULL DEFAULT -1"),
            (
                "bigint(20) unsigned",
                "NO",
                None,
                "auto_increment",
                "SERIAL",
            ),
            ("tinyint(1)", "YES", Some("1"), "", "BOOL DEFAULT TRUE"),
            (
                "decimal(10,2)",
                "NO",
                Some("1.50"),
                "",
                "DECIMAL(10, 2) NOT NULL DEFAULT '1.50'",
            ),
            ("decimal(10,0)", "YES", None, "", "NUMERIC"),
            (
                "double",
                "YES",
                Some("-1"),
                "",
                "DOUBLE PRECISION DEFAULT -1",
            ),
            ("float(7,3)", "YES", None, "", "float(7, 3)"),
            ("bit(3)", "YES", Some("b'101'"), "", "bit(3) DEFAULT 5"),
            (
                "varchar(20)",
                "YES",
                Some("'abc'"),
                "",
                "varchar(20) DEFAULT 'abc'",
            ),
            (
                "varchar(20)",
                "YES",
                Some("'a''b'"),
                "",
                "varchar(20) DEFAULT 'a\\'b'",
            ),
            (
                "varchar(20)",
                "YES",
                Some("'a\\\\b'"),
                "",
                "varchar(20) DEFAULT 'a\\\\b'",
            ),
            (
                "varchar(20)",
                "NO",
                Some("''"),
                "",
                "varchar(20) NOT NULL DEFAULT ''",
            ),
            (
                "varchar(20)",
                "YES",
                Some("'0'"),
                "",
                "varchar(20) DEFAULT 0",
            ),
            ("char(1)", "YES", None, "", "CHAR"),
            ("mediumtext", "YES", None, "", "LONG"),
            (
                "enum('a','b')",
                "YES",
                Some("'a'"),
                "",
                "ENUM('a', 'b') DEFAULT 'a'",
            ),
            ("set('x','y')", "YES", None, "", "SET(\"x\", \"y\")"),
            (
                "timestamp",
                "NO",
                Some("current_timestamp()"),
                "on update current_timestamp()",
                "timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
            ),
            (
                "datetime(3)",
                "YES",
                Some("current_timestamp(3)"),
                "",
                "DATETIME(3) DEFAULT NOW(3)",
            ),
            (
                "datetime",
                "YES",
                Some("'2020-01-01 00:00:00'"),
                "",
                "datetime DEFAULT '2020-01-01 00:00:00'",
            ),
            (
                "varchar(36)",
                "YES",
                Some("uuid()"),
                "",
                "varchar(36) DEFAULT (UUID())",
            ),
            ("int(11)", "YES", Some("1 + 1"), "", "int DEFAULT (1+1)"),
            (
                "int(11)",
                "YES",
                None,
                "VIRTUAL GENERATED",
                "int AS (a + 1) VIRTUAL",
            ),
        ];
        for &(ty, nullable, default, extra, ddl) in cases {
            assert_eq!(
                ColumnType::from_information_schema(ty, nullable, default, extra),
                ColumnType::parse(ddl).expect(ddl),
                "{ty} {nullable} {default:?} {extra}"
            );
        }
    }

    #[test]
    fn information_schema_keeps_what_it_cannot_read() {
        let col = ColumnType::from_information_schema("Weird(", "YES", Some("'open"), "");
        assert_eq!(col, c("weird(").def("'''open'"));
    }

    /// `a ⊔ b`: `Some(joined)` or `None` for a conflict.
    fn join_cases() -> Vec<(ColumnType, ColumnType, Option<ColumnType>)> {
        vec![
            // equal types
            (c("int"), c("int"), Some(c("int"))),
            (c("int").nn(), c("int"), Some(c("int"))),
            (c("int").nn(), c("int").nn(), Some(c("int").nn())),
            (c("json"), c("json"), Some(c("json"))),
            (c("int").un(), c("int"), None),
            (c("int").un().zf(), c("int").un(), None),
            (c("bigint").ai(), c("bigint"), None),
            (c("int").def("0"), c("int").def("1"), None),
            (c("int").def("0"), c("int"), None),
            (
                c("int").def("0"),
                c("int").nn().def("0"),
                Some(c("int").def("0")),
            ),
            // integers
            (c("tinyint"), c("bigint"), Some(c("bigint"))),
            (c("smallint"), c("mediumint"), Some(c("mediumint"))),
            (c("int").un(), c("bigint").un(), Some(c("bigint").un())),
            (c("int").un(), c("bigint"), None),
            (
                c("int").nn().def("0"),
                c("bigint").def("0"),
                Some(c("bigint").def("0")),
            ),
            // approximate
            (c("float"), c("double"), Some(c("double"))),
            (c("float(7,3)"), c("double"), Some(c("double"))),
            (c("float(7,3)"), c("float"), Some(c("float"))),
            (c("float(7,3)"), c("float(8,2)"), None),
            (c("float"), c("decimal(10,0)"), None),
            // lengths
            (c("varchar(10)"), c("varchar(20)"), Some(c("varchar(20)"))),
            (c("char(1)"), c("char(5)"), Some(c("char(5)"))),
            (c("binary(2)"), c("binary(4)"), Some(c("binary(4)"))),
            (
                c("varbinary(8)"),
                c("varbinary(3)"),
                Some(c("varbinary(8)")),
            ),
            (c("bit(1)"), c("bit(8)"), Some(c("bit(8)"))),
            (c("char(10)"), c("varchar(10)"), None),
            (c("varchar(10)"), c("varbinary(10)"), None),
            // decimal
            (
                c("decimal(10,2)"),
                c("decimal(12,0)"),
                Some(c("decimal(14,2)")),
            ),
            (
                c("decimal(5,3)"),
                c("decimal(5,1)"),
                Some(c("decimal(7,3)")),
            ),
            (c("decimal(65,30)"), c("decimal(65,0)"), None),
            (c("decimal(10,0)"), c("int"), None),
            // text and blob families
            (c("text"), c("longtext"), Some(c("longtext"))),
            (c("tinytext"), c("mediumtext"), Some(c("mediumtext"))),
            (c("blob"), c("tinyblob"), Some(c("blob"))),
            (c("mediumblob"), c("longblob"), Some(c("longblob"))),
            (c("text"), c("blob"), None),
            (c("varchar(10)"), c("text"), None),
            // enum and set
            (c("enum('a')"), c("enum('a','b')"), Some(c("enum('a','b')"))),
            (c("set('x')"), c("set('x','y')"), Some(c("set('x','y')"))),
            (c("enum('a','b')"), c("enum('b','a')"), None),
            (c("enum('a','b')"), c("enum('a','c')"), None),
            (c("enum('a')"), c("set('a')"), None),
            // temporal
            (c("datetime"), c("datetime(3)"), Some(c("datetime(3)"))),
            (c("time(1)"), c("time(2)"), Some(c("time(2)"))),
            (c("timestamp(6)"), c("timestamp"), Some(c("timestamp(6)"))),
            (c("datetime"), c("timestamp"), None),
            (c("date"), c("datetime"), None),
            // anything else
            (c("int"), c("varchar(10)"), None),
        ]
    }

    #[test]
    fn join_column_follows_the_lattice() {
        for (a, b, want) in join_cases() {
            assert_eq!(join_column(&a, &b).ok(), want, "{a:?} ⊔ {b:?}");
        }
    }

    #[test]
    fn join_column_is_symmetric() {
        for (a, b, _) in join_cases() {
            assert_eq!(
                join_column(&a, &b).ok(),
                join_column(&b, &a).ok(),
                "{a:?} ⊔ {b:?}"
            );
        }
    }

    #[test]
    fn join_column_messages_give_both_definitions_and_why() {
        let cases = [
            (c("int"), c("varchar(10)"), "int vs varchar(10)"),
            (
                c("int").def("0"),
                c("int").def("1"),
                "int DEFAULT 0 vs int DEFAULT 1: different default values",
            ),
            (
                c("int").un(),
                c("int"),
                "int unsigned vs int: different signedness",
            ),
            (
                c("decimal(65,30)"),
                c("decimal(65,0)"),
                "decimal(65,30) vs decimal(65,0): no decimal holds both (it needs precision 95, at most 65)",
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(join_column(&a, &b), Err(want.to_string()));
        }
    }

    fn schema(cols: &[(&str, ColumnType)]) -> Schema {
        Schema {
            columns: cols
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
        }
    }

    #[test]
    fn join_adds_the_columns_of_either_side() {
        let a = schema(&[("id", c("int")), ("x", c("int"))]);
        let b = schema(&[("id", c("int")), ("y", c("text")), ("z", c("json"))]);
        let want = schema(&[
            ("id", c("int")),
            ("x", c("int")),
            ("y", c("text")),
            ("z", c("json")),
        ]);
        assert_eq!(join(&a, &b), Ok(want));
    }

    #[test]
    fn join_joins_the_shared_columns() {
        let a = schema(&[("id", c("int").nn()), ("v", c("varchar(10)"))]);
        let b = schema(&[("v", c("varchar(20)")), ("id", c("bigint").nn())]);
        let want = schema(&[("id", c("bigint").nn()), ("v", c("varchar(20)"))]);
        assert_eq!(join(&a, &b), Ok(want));
    }

    #[test]
    fn join_compares_names_case_insensitively() {
        let a = schema(&[("ID", c("int")), ("Name", c("varchar(5)"))]);
        let b = schema(&[
            ("id", c("int").nn()),
            ("name", c("varchar(9)")),
            ("NAME2", c("int")),
        ]);
        let want = schema(&[
            ("ID", c("int")),
            ("Name", c("varchar(9)")),
            ("NAME2", c("int")),
        ]);
        assert_eq!(join(&a, &b), Ok(want));
    }

    #[test]
    fn join_conflict_names_the_column() {
        let a = schema(&[("id", c("int")), ("c", c("int"))]);
        let b = schema(&[("C", c("varchar(10)"))]);
        assert_eq!(
            join(&a, &b),
            Err("column `c`: int vs varchar(10)".to_string())
        );
    }

    #[test]
    fn join_all_of_none_is_empty() {
        assert_eq!(join_all(std::iter::empty()), Ok(Schema::default()));
    }

    #[test]
    fn join_all_folds_every_schema() {
        let shards = [
            schema(&[("id", c("int"))]),
            schema(&[("id", c("bigint")), ("a", c("text"))]),
            schema(&[
                ("id", c("smallint")),
                ("b", c("datetime(3)")),
                ("A", c("longtext")),
            ]),
        ];
        let want = schema(&[
            ("id", c("bigint")),
            ("a", c("longtext")),
            ("b", c("datetime(3)")),
        ]);
        assert_eq!(join_all(&shards), Ok(want));
    }

    #[test]
    fn join_all_reports_a_conflict() {
        let shards = [
            schema(&[("id", c("int"))]),
            schema(&[("v", c("enum('a','b')"))]),
            schema(&[("v", c("enum('b')"))]),
        ];
        assert_eq!(
            join_all(&shards),
            Err("column `v`: enum('a','b') vs enum('b')".to_string())
        );
    }

    #[test]
    fn column_types_serialize_to_json_and_back() {
        let s = schema(&[
            ("id", c("bigint").un().nn().ai()),
            ("v", c("varchar(3)").def("'a''b'")),
        ]);
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(serde_json::from_str::<Schema>(&json).ok(), Some(s));
    }

    #[test]
    fn modify_events_follow_dms_comparison() {
        use crate::rules::EventType as E;
        // (old definition, new definition, renamed, positioned, DM's event)
        let cases: &[(&str, &str, bool, bool, E)] = &[
            ("int", "bigint", false, false, E::AlterTable),
            ("bigint", "int", false, false, E::ValueRangeDecrease),
            ("int", "int unsigned", false, false, E::PrecisionDecrease),
            (
                "int unsigned",
                "bigint",
                false,
                false,
                E::ValueRangeDecrease,
            ),
            (
                "varchar(20)",
                "varchar(10)",
                false,
                false,
                E::ValueRangeDecrease,
            ),
            ("varchar(10)", "varchar(20)", false, false, E::AlterTable),
            ("char(10)", "varchar(10)", false, false, E::ModifyColumn),
            ("varchar(10)", "char(10)", false, false, E::ModifyColumn),
            ("varchar(20)", "text", false, false, E::AlterTable),
            ("text", "varchar(20)", false, false, E::ModifyColumn),
            ("char(10)", "char(5)", false, false, E::AlterTable),
            ("binary(4)", "binary(8)", false, false, E::PrecisionDecrease),
            (
                "decimal(10,2)",
                "decimal(12,2)",
                false,
                false,
                E::PrecisionDecrease,
            ),
            (
                "decimal(10,2)",
                "decimal(10,2)",
                false,
                false,
                E::AlterTable,
            ),
            (
                "enum('a','b')",
                "enum('a','b','c')",
                false,
                false,
                E::AlterTable,
            ),
            (
                "enum('a','b')",
                "enum('b','a')",
                false,
                false,
                E::ValueRangeDecrease,
            ),
            (
                "set('x','y')",
                "set('x')",
                false,
                false,
                E::ValueRangeDecrease,
            ),
            (
                "datetime(3)",
                "datetime",
                false,
                false,
                E::ValueRangeDecrease,
            ),
            ("datetime", "datetime(3)", false, false, E::AlterTable),
            ("int", "varchar(10)", false, false, E::ModifyColumn),
            ("double", "float", false, false, E::ModifyColumn),
            (
                "int AUTO_INCREMENT",
                "int",
                false,
                false,
                E::RemoveAutoIncrement,
            ),
            (
                "int DEFAULT 1",
                "int DEFAULT 2",
                false,
                false,
                E::ModifyDefaultValue,
            ),
            ("int", "int NOT NULL", false, true, E::ModifyColumnsOrder),
            ("int", "int", true, false, E::RenameColumn),
            ("int", "int NOT NULL", false, false, E::AlterTable),
        ];
        for (old, new, renamed, positioned, want) in cases {
            let (o, n) = (
                ColumnType::parse(old).expect(old),
                ColumnType::parse(new).expect(new),
            );
            assert_eq!(
                modify_event(&o, &n, *renamed, *positioned),
                *want,
                "{old} -> {new}"
            );
        }
    }
}
