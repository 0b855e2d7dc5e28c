//! One INSERT statement of a dump file, as dumpling and mydumper write them, read into values
//! and rendered back — so the load unit can apply column mapping ([`super::row::RowRules::map_row`])
//! to dumped rows, as DM's loader did (`parseInsertStmt` / `parseRowValues`, errors 34003).
//!
//! Accepted: `INSERT [IGNORE] INTO name [(`c1`,`c2`,…)] VALUES (…),(…)[;]` and `REPLACE INTO …`,
//! where `name` is `` `t` `` or `` `db`.`t` `` (backquoted with doubled backquotes, or bare), rows
//! separated by `,` with any whitespace (dumpling: `,\n`). Values: `NULL`; integers (→ `Int`, or
//! `UInt` above the signed range); other numbers (`1.5`, `-1e3`) → `Decimal` text; `'…'` and
//! `"…"` strings with MySQL's backslash escapes (`\0 \' \" \b \n \r \t \Z \\`, `\%` and `\_`
//! kept as two characters) and doubled quotes, optionally with a charset introducer
//! (`_binary'…'`, `_utf8mb4'…'`) → `Bytes`; `0x…`, `X'…'` and `b'…'` → `Bytes`.
//!
//! Rendering ([`InsertStmt::render`]) goes through [`crate::dml`]'s literals (strings as hex),
//! so a rendered statement stores the same bytes. Pure: no I/O, never panics on input.

use std::fmt::Write as _;

use crate::dml::{Value, quote_ident};

/// DM's code for a dump statement whose values cannot be read (`ErrLoadUnitParseQuoteValues`).
pub const PARSE_VALUES_CODE: i32 = 34003;

/// Why a statement could not be read: what, at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[code=34003] parse quote values error: {msg} (at byte {at}: {near})")]
pub struct InsertTextError {
    pub msg: String,
    pub at: usize,
    /// Up to 40 bytes of the text at `at`, lossily decoded.
    pub near: String,
}

/// One parsed INSERT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertStmt {
    /// `INSERT INTO`, `INSERT IGNORE INTO` or `REPLACE INTO`.
    pub verb: Verb,
    /// The schema when the name was qualified (dumpling and mydumper write none).
    pub schema: Option<String>,
    pub table: String,
    /// The column list when the statement had one.
    pub columns: Option<Vec<String>>,
    pub rows: Vec<Vec<Value>>,
}

/// How the statement inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Insert,
    InsertIgnore,
    Replace,
}

impl Verb {
    fn text(self) -> &'static str {
        match self {
            Verb::Insert => "INSERT INTO ",
            Verb::InsertIgnore => "INSERT IGNORE INTO ",
            Verb::Replace => "REPLACE INTO ",
        }
    }
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn err(&self, msg: impl Into<String>) -> InsertTextError {
        let at = self.i.min(self.b.len());
        let end = (at + 40).min(self.b.len());
        InsertTextError {
            msg: msg.into(),
            at,
            near: String::from_utf8_lossy(&self.b[at..end]).into_owned(),
        }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn kw(&mut self, kw: &str) -> bool {
        self.ws();
        let end = self.i + kw.len();
        let ok = self
            .b
            .get(self.i..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
            && self
                .b
                .get(end)
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
        if ok {
            self.i = end;
        }
        ok
    }

    fn expect(&mut self, c: u8) -> Result<(), InsertTextError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{}`", c as char)))
        }
    }

    fn ident(&mut self) -> Result<String, InsertTextError> {
        self.ws();
        if self.peek() == Some(b'`') {
            let mut out = Vec::new();
            self.i += 1;
            loop {
                match self.peek() {
                    None => return Err(self.err("unterminated quoted name")),
                    Some(b'`') if self.b.get(self.i + 1) == Some(&b'`') => {
                        out.push(b'`');
                        self.i += 2;
                    }
                    Some(b'`') => {
                        self.i += 1;
                        break;
                    }
                    Some(c) => {
                        out.push(c);
                        self.i += 1;
                    }
                }
            }
            return String::from_utf8(out).map_err(|_| self.err("a name is not valid UTF-8"));
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80)
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected a name"));
        }
        String::from_utf8(self.b[start..self.i].to_vec())
            .map_err(|_| self.err("a name is not valid UTF-8"))
    }

    fn value(&mut self) -> Result<Value, InsertTextError> {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(self.err("expected a value"));
        };
        if c == b'\'' || c == b'"' {
            return self.string();
        }
        // Charset introducer, X'…', b'…'.
        if c == b'_' || c.is_ascii_alphabetic() {
            let start = self.i;
            let mut j = self.i;
            while self
                .b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                j += 1;
            }
            let word = &self.b[start..j];
            if matches!(self.b.get(j), Some(b'\'' | b'"')) {
                if word.starts_with(b"_") {
                    self.i = j;
                    return self.string();
                }
                if word.eq_ignore_ascii_case(b"x") || word.eq_ignore_ascii_case(b"b") {
                    let hex = word.eq_ignore_ascii_case(b"x");
                    let body_start = j + 1;
                    let Some(len) = self.b[body_start..].iter().position(|&c| c == b'\'') else {
                        return Err(self.err("unterminated literal"));
                    };
                    let body = &self.b[body_start..body_start + len];
                    let v = if hex {
                        // X'…' needs whole bytes (0x… does not).
                        hex_bytes(body).filter(|_| body.len().is_multiple_of(2))
                    } else {
                        bit_bytes(body)
                    };
                    return match v {
                        Some(v) => {
                            self.i = body_start + len + 1;
                            Ok(Value::Bytes(v))
                        }
                        None => Err(self.err("bad hexadecimal or bit literal")),
                    };
                }
            }
            if word.eq_ignore_ascii_case(b"NULL") {
                self.i = j;
                return Ok(Value::Null);
            }
            return Err(self.err("unexpected word in VALUES"));
        }
        if c == b'0' && matches!(self.b.get(self.i + 1), Some(b'x' | b'X' | b'b')) {
            let hex = self.b[self.i + 1] != b'b';
            let start = self.i + 2;
            let mut j = start;
            while self.b.get(j).is_some_and(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    *c == b'0' || *c == b'1'
                }
            }) {
                j += 1;
            }
            let body = &self.b[start..j];
            let v = if hex {
                hex_bytes(body)
            } else {
                bit_bytes(body)
            };
            return match v {
                Some(v) if !body.is_empty() => {
                    self.i = j;
                    Ok(Value::Bytes(v))
                }
                _ => Err(self.err("bad hexadecimal or bit literal")),
            };
        }
        if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() {
            let start = self.i;
            let mut j = self.i + 1;
            while self.b.get(j).is_some_and(|c| {
                c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
            }) {
                j += 1;
            }
            let text = std::str::from_utf8(&self.b[start..j]).unwrap_or("");
            self.i = j;
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            if let Ok(u) = text.strip_prefix('+').unwrap_or(text).parse::<u64>() {
                return Ok(Value::UInt(u));
            }
            if text.parse::<f64>().is_ok() {
                return Ok(Value::Decimal(text.to_string()));
            }
            self.i = start;
            return Err(self.err(format!("bad number {text:?}")));
        }
        Err(self.err("expected a value"))
    }

    fn string(&mut self) -> Result<Value, InsertTextError> {
        match super::sqlexpr::read_string(self.b, self.i) {
            Some((s, next)) => {
                self.i = next;
                Ok(Value::Bytes(s))
            }
            None => Err(self.err("unterminated string")),
        }
    }
}

fn hex_bytes(s: &[u8]) -> Option<Vec<u8>> {
    let s: Vec<u8> = if s.len() % 2 == 1 {
        std::iter::once(b'0').chain(s.iter().copied()).collect()
    } else {
        s.to_vec()
    };
    s.chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(t, 16).ok()
        })
        .collect()
}

fn bit_bytes(s: &[u8]) -> Option<Vec<u8>> {
    if !s.iter().all(|&c| c == b'0' || c == b'1') {
        return None;
    }
    let pad = (8 - s.len() % 8) % 8;
    let bits: Vec<u8> = std::iter::repeat_n(b'0', pad)
        .chain(s.iter().copied())
        .collect();
    Some(
        bits.chunks(8)
            .map(|ch| ch.iter().fold(0u8, |acc, &c| (acc << 1) | (c - b'0')))
            .collect(),
    )
}

/// Reads one INSERT / REPLACE statement (a trailing `;` and whitespace allowed).
pub fn parse_insert(sql: &[u8]) -> Result<InsertStmt, InsertTextError> {
    let mut c = Cur { b: sql, i: 0 };
    let verb = if c.kw("INSERT") {
        let v = if c.kw("IGNORE") {
            Verb::InsertIgnore
        } else {
            Verb::Insert
        };
        if !c.kw("INTO") {
            return Err(c.err("expected INTO"));
        }
        v
    } else if c.kw("REPLACE") {
        if !c.kw("INTO") {
            return Err(c.err("expected INTO"));
        }
        Verb::Replace
    } else {
        return Err(c.err("expected INSERT or REPLACE"));
    };
    let first = c.ident()?;
    c.ws();
    let (schema, table) = if c.peek() == Some(b'.') {
        c.i += 1;
        (Some(first), c.ident()?)
    } else {
        (None, first)
    };
    c.ws();
    let columns = if c.peek() == Some(b'(') {
        c.i += 1;
        let mut cols = vec![c.ident()?];
        loop {
            c.ws();
            match c.peek() {
                Some(b',') => {
                    c.i += 1;
                    cols.push(c.ident()?);
                }
                Some(b')') => {
                    c.i += 1;
                    break;
                }
                _ => return Err(c.err("expected `,` or `)` in the column list")),
            }
        }
        Some(cols)
    } else {
        None
    };
    if !c.kw("VALUES") {
        return Err(c.err("expected VALUES"));
    }
    let mut rows = Vec::new();
    loop {
        c.expect(b'(')?;
        let mut row = Vec::with_capacity(columns.as_ref().map_or(8, Vec::len));
        c.ws();
        if c.peek() == Some(b')') {
            c.i += 1;
        } else {
            loop {
                row.push(c.value()?);
                c.ws();
                match c.peek() {
                    Some(b',') => c.i += 1,
                    Some(b')') => {
                        c.i += 1;
                        break;
                    }
                    _ => return Err(c.err("expected `,` or `)` after a value")),
                }
            }
        }
        if let Some(cols) = &columns
            && cols.len() != row.len()
        {
            return Err(c.err(format!(
                "row {} has {} values but the column list has {}",
                rows.len() + 1,
                row.len(),
                cols.len()
            )));
        }
        if let Some(first) = rows.first().map(Vec::len)
            && first != row.len()
        {
            return Err(c.err(format!(
                "row {} has {} values, the first row has {first}",
                rows.len() + 1,
                row.len()
            )));
        }
        rows.push(row);
        c.ws();
        match c.peek() {
            Some(b',') => c.i += 1,
            Some(b';') => {
                c.i += 1;
                c.ws();
                break;
            }
            None => break,
            _ => return Err(c.err("expected `,` or `;` after a row")),
        }
    }
    if c.i < sql.len() {
        return Err(c.err("unexpected text after the statement"));
    }
    Ok(InsertStmt {
        verb,
        schema,
        table,
        columns,
        rows,
    })
}

impl InsertStmt {
    /// The statement as SQL: `INSERT INTO `db`.`t` (`a`,`b`) VALUES\n(…),\n(…);\n`, values as
    /// [`crate::dml`] renders them (strings as hex literals).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + self.rows.len() * 32);
        out.push_str(self.verb.text());
        if let Some(s) = &self.schema {
            quote_ident(s, &mut out);
            out.push('.');
        }
        quote_ident(&self.table, &mut out);
        if let Some(cols) = &self.columns {
            out.push_str(" (");
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote_ident(c, &mut out);
            }
            out.push(')');
        }
        out.push_str(" VALUES\n");
        for (r, row) in self.rows.iter().enumerate() {
            if r > 0 {
                out.push_str(",\n");
            }
            out.push('(');
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                v.write_sql(&mut out);
            }
            out.push(')');
        }
        let _ = writeln!(out, ";");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Value {
        Value::Bytes(s.to_vec())
    }

    #[test]
    fn dumpling_and_mydumper_forms() {
        let s = parse_insert(b"INSERT INTO `t` (`a`,`b`) VALUES\n(1,'x'),\n(2,NULL);\n")
            .expect("parses");
        assert_eq!(s.verb, Verb::Insert);
        assert_eq!(s.schema, None);
        assert_eq!(s.table, "t");
        assert_eq!(s.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            s.rows,
            vec![
                vec![Value::Int(1), b(b"x")],
                vec![Value::Int(2), Value::Null]
            ]
        );
        let s = parse_insert(b"INSERT INTO `db`.`t` VALUES\n(1,\"x\");").expect("parses");
        assert_eq!(s.schema.as_deref(), Some("db"));
        assert_eq!(s.columns, None);
        let s = parse_insert(b"insert ignore into t values (1),(2)").expect("parses");
        assert_eq!(s.verb, Verb::InsertIgnore);
        assert_eq!(s.rows.len(), 2);
        let s = parse_insert(b"REPLACE INTO `we``ird` VALUES ()").expect("parses");
        assert_eq!(s.verb, Verb::Replace);
        assert_eq!(s.table, "we`ird");
        assert_eq!(s.rows, vec![Vec::<Value>::new()]);
    }

    #[test]
    fn values_table() {
        let cases: &[(&[u8], Value)] = &[
            (b"NULL", Value::Null),
            (b"null", Value::Null),
            (b"0", Value::Int(0)),
            (b"-42", Value::Int(-42)),
            (b"9223372036854775807", Value::Int(i64::MAX)),
            (b"-9223372036854775808", Value::Int(i64::MIN)),
            (b"18446744073709551615", Value::UInt(u64::MAX)),
            (
                b"99999999999999999999",
                Value::Decimal("99999999999999999999".into()),
            ),
            (b"1.50", Value::Decimal("1.50".into())),
            (b"-0.001", Value::Decimal("-0.001".into())),
            (b"1e+30", Value::Decimal("1e+30".into())),
            (b"-1.5E-7", Value::Decimal("-1.5E-7".into())),
            (b"''", b(b"")),
            (b"'it\\'s'", b(b"it's")),
            (b"'it''s'", b(b"it's")),
            (b"\"say \\\"hi\\\"\"", b(b"say \"hi\"")),
            (b"\"a\"\"b\"", b(b"a\"b")),
            (b"'\\\\'", b(b"\\")),
            (b"'\\0\\n\\r\\Z\\t\\b'", b(b"\0\n\r\x1a\t\x08")),
            (b"'50\\%'", b(b"50\\%")),
            (b"'a\\_b'", b(b"a\\_b")),
            (b"'\\x'", b(b"x")),
            (b"'(),;\n'", b(b"(),;\n")),
            (b"'\xe4\xb8\xad\xe6\x96\x87'", b("中文".as_bytes())),
            (b"'\xff\x00\xfe'", b(b"\xff\x00\xfe")),
            (b"_binary'\\0\xff'", b(b"\0\xff")),
            (b"_utf8mb4'x'", b(b"x")),
            (b"0x", Value::Null),
            (b"0xDEADbeef", b(b"\xde\xad\xbe\xef")),
            (b"0xF", b(b"\x0f")),
            (b"X'4142'", b(b"AB")),
            (b"x''", b(b"")),
            (b"b'101'", b(b"\x05")),
            (b"b'100000001'", b(b"\x01\x01")),
            (b"0b11", b(b"\x03")),
        ];
        for (text, want) in cases {
            let mut sql = b"INSERT INTO t VALUES (".to_vec();
            sql.extend_from_slice(text);
            sql.extend_from_slice(b");");
            let got = parse_insert(&sql);
            if *want == Value::Null && *text == b"0x" {
                assert!(got.is_err(), "{}", String::from_utf8_lossy(text));
                continue;
            }
            let got = got.unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(text)));
            assert_eq!(
                got.rows,
                vec![vec![want.clone()]],
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn errors_table() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "expected INSERT or REPLACE"),
            (b"SELECT 1", "expected INSERT or REPLACE"),
            (b"INSERT t VALUES (1)", "expected INTO"),
            (b"INSERT INTO VALUES (1)", "expected VALUES"),
            (b"INSERT INTO `t VALUES (1)", "unterminated quoted name"),
            (b"INSERT INTO t (a,b VALUES (1,2)", "column list"),
            (b"INSERT INTO t VALUE (1)", "expected VALUES"),
            (b"INSERT INTO t VALUES 1", "expected `(`"),
            (b"INSERT INTO t VALUES (1", "after a value"),
            (b"INSERT INTO t VALUES (1,'x", "unterminated string"),
            (b"INSERT INTO t VALUES ('it\\')", "unterminated string"),
            (b"INSERT INTO t VALUES (1) (2)", "after a row"),
            (b"INSERT INTO t VALUES (1),", "expected `(`"),
            (b"INSERT INTO t VALUES (1); SELECT", "unexpected text"),
            (b"INSERT INTO t VALUES (NOW())", "unexpected word"),
            (b"INSERT INTO t VALUES (1-2-)", "bad number"),
            (b"INSERT INTO t VALUES (X'4')", "bad hexadecimal"),
            (b"INSERT INTO t VALUES (b'12')", "bad hexadecimal or bit"),
            (b"INSERT INTO t (a) VALUES (1,2)", "column list has 1"),
            (b"INSERT INTO t VALUES (1,2),(3)", "the first row has 2"),
        ];
        for (sql, want) in cases {
            let e = parse_insert(sql)
                .err()
                .unwrap_or_else(|| panic!("{} parsed", String::from_utf8_lossy(sql)));
            let text = e.to_string();
            assert!(
                text.contains(want) && text.contains("[code=34003]"),
                "{}: {text}",
                String::from_utf8_lossy(sql)
            );
        }
    }

    #[test]
    fn render_round_trips() {
        let sql = b"INSERT INTO `db`.`t` (`a`,`b`,`c`) VALUES\n(1,'x''y',NULL),\n(-2,_binary'\\0\xff',1.50);\n";
        let s = parse_insert(sql).expect("parses");
        let out = s.render();
        assert_eq!(
            out,
            "INSERT INTO `db`.`t` (`a`,`b`,`c`) VALUES\n(1,X'782779',NULL),\n(-2,X'00FF',1.50);\n"
        );
        assert_eq!(parse_insert(out.as_bytes()).expect("re-parses"), s);
        let s = parse_insert(b"INSERT IGNORE INTO t VALUES (1)").expect("parses");
        assert_eq!(s.render(), "INSERT IGNORE INTO `t` VALUES\n(1);\n");
    }
}
