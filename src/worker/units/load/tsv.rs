//! A dumped multi-row INSERT turned into the text `LOAD DATA` reads with its default format
//! (fields split by a tab, rows by a newline, `\` escapes, `\N` for NULL), so the load can send
//! the rows without the server parsing them as SQL (the parser is most of an INSERT's cost).
//!
//! Only what a dump writes is taken: an optional column list, `VALUES`, then tuples of `NULL`,
//! bare numbers, quoted strings (either quote, backslash escapes, doubled quotes) and hex
//! literals (`0x…`, `X'…'`). Anything else — a function, a bit literal, an introducer
//! (`_binary'…'`), a comment, tuples of different widths — gives `None`, and the statement goes
//! as it is. Pure logic; the caller decides whether LOAD DATA may stand in for the INSERT (see
//! `bulk.rs`).

use std::ops::Range;

/// What [`convert`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// The column list as written, parentheses included (`` (`a`,`b`) ``), if any.
    pub columns: Option<Range<usize>>,
    /// The number of rows appended.
    pub rows: u64,
    /// Some value was a hex literal (its bytes are binary: only a `binary` load keeps them as
    /// the INSERT would).
    pub hex: bool,
}

/// Bytes that end a plain run inside a quoted string.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[0] = true;
    t
};

/// Appends one raw byte of a value in LOAD DATA's escaping.
#[inline]
fn push_raw(out: &mut Vec<u8>, b: u8) {
    match b {
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\t' => out.extend_from_slice(b"\\t"),
        b'\n' => out.extend_from_slice(b"\\n"),
        0 => out.extend_from_slice(b"\\0"),
        _ => out.push(b),
    }
}

fn skip_ws(s: &[u8], i: &mut usize) {
    while *i < s.len() && s[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// `kw` (upper case) at `i`, not followed by an identifier character.
fn keyword(s: &[u8], i: usize, kw: &[u8]) -> bool {
    s.len() >= i + kw.len()
        && s[i..i + kw.len()].eq_ignore_ascii_case(kw)
        && s.get(i + kw.len()).is_none_or(|b| !is_ident(*b))
}

/// A quoted string at `s[*i]` (the quote), its value appended.
fn string(s: &[u8], i: &mut usize, out: &mut Vec<u8>) -> Option<()> {
    let q = s[*i];
    *i += 1;
    loop {
        let run = *i;
        // The run up to the closing quote or a backslash (vectorised), copied at once when it
        // holds no byte LOAD DATA needs escaped (the usual case), else byte by byte.
        let stop = memchr::memchr2(q, b'\\', &s[run..]).map_or(s.len(), |p| run + p);
        if memchr::memchr3(b'\t', b'\n', 0, &s[run..stop]).is_none() {
            *i = stop;
        } else {
            while *i < s.len() && !STOP[s[*i] as usize] {
                *i += 1;
            }
        }
        out.extend_from_slice(&s[run..*i]);
        let b = *s.get(*i)?;
        *i += 1;
        if b == q {
            if s.get(*i) == Some(&q) {
                out.push(q);
                *i += 1;
                continue;
            }
            return Some(());
        }
        if b != b'\\' {
            // The other quote, a tab, a newline or NUL inside the string.
            push_raw(out, b);
            continue;
        }
        let e = *s.get(*i)?;
        *i += 1;
        match e {
            // SQL keeps the backslash of these two (for LIKE patterns).
            b'%' | b'_' => {
                out.extend_from_slice(b"\\\\");
                out.push(e);
            }
            b'0' => out.extend_from_slice(b"\\0"),
            b'b' => out.push(0x08),
            b'n' => out.extend_from_slice(b"\\n"),
            b'r' => out.push(b'\r'),
            b't' => out.extend_from_slice(b"\\t"),
            b'Z' => out.push(0x1a),
            other => push_raw(out, other),
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Hex digits `d` as bytes (an odd count has a leading zero nibble, as MySQL reads `0x123`).
fn hex_bytes(d: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut j = 0;
    if d.len() % 2 == 1 {
        push_raw(out, hex_val(d[0])?);
        j = 1;
    }
    while j < d.len() {
        push_raw(out, (hex_val(d[j])? << 4) | hex_val(d[j + 1])?);
        j += 2;
    }
    Some(())
}

/// One value at `s[*i]`, appended; `hex` set when it was a hex literal.
fn value(s: &[u8], i: &mut usize, out: &mut Vec<u8>, hex: &mut bool) -> Option<()> {
    let b = *s.get(*i)?;
    match b {
        b'\'' | b'"' => string(s, i, out),
        b'0' if matches!(s.get(*i + 1), Some(b'x' | b'X')) => {
            let from = *i + 2;
            let mut j = from;
            while j < s.len() && s[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j == from || s.get(j).is_some_and(|b| is_ident(*b)) {
                return None;
            }
            hex_bytes(&s[from..j], out)?;
            *hex = true;
            *i = j;
            Some(())
        }
        b'x' | b'X' if s.get(*i + 1) == Some(&b'\'') => {
            let from = *i + 2;
            let len = s[from..].iter().position(|&b| b == b'\'')?;
            let d = &s[from..from + len];
            if d.len() % 2 == 1 {
                return None;
            }
            hex_bytes(d, out)?;
            *hex = true;
            *i = from + len + 1;
            Some(())
        }
        b'n' | b'N' if keyword(s, *i, b"NULL") => {
            out.extend_from_slice(b"\\N");
            *i += 4;
            Some(())
        }
        b'0'..=b'9' | b'-' | b'+' | b'.' => {
            let from = *i;
            while *i < s.len() && matches!(s[*i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+') {
                *i += 1;
            }
            if s.get(*i).is_some_and(|b| is_ident(*b)) {
                return None;
            }
            out.extend_from_slice(&s[from..*i]);
            Some(())
        }
        _ => None,
    }
}

/// Appends the rows of the INSERT `s` to `out`, reading from `from` (just after the table's
/// name). `None` (with `out` in any state) when the statement holds anything but a dump's
/// plain values.
pub fn convert(s: &[u8], from: usize, out: &mut Vec<u8>) -> Option<Rows> {
    let mut i = from;
    skip_ws(s, &mut i);
    let mut columns = None;
    if s.get(i) == Some(&b'(') {
        let start = i;
        i += 1;
        loop {
            match *s.get(i)? {
                b'`' => {
                    // A quoted name; a doubled backquote is one inside it.
                    i += 1;
                    loop {
                        let b = *s.get(i)?;
                        i += 1;
                        if b == b'`' {
                            if s.get(i) == Some(&b'`') {
                                i += 1;
                                continue;
                            }
                            break;
                        }
                    }
                }
                b')' => break,
                b'\'' | b'"' | b'(' | b'/' | b'#' | b'-' => return None,
                _ => i += 1,
            }
        }
        i += 1;
        columns = Some(start..i);
        skip_ws(s, &mut i);
    }
    if keyword(s, i, b"VALUES") {
        i += 6;
    } else if keyword(s, i, b"VALUE") {
        i += 5;
    } else {
        return None;
    }
    let mut width = None;
    let mut rows = 0u64;
    let mut hex = false;
    loop {
        skip_ws(s, &mut i);
        if s.get(i) != Some(&b'(') {
            return None;
        }
        i += 1;
        let mut n = 0usize;
        loop {
            skip_ws(s, &mut i);
            if n > 0 {
                out.push(b'\t');
            }
            value(s, &mut i, out, &mut hex)?;
            n += 1;
            skip_ws(s, &mut i);
            match *s.get(i)? {
                b',' => i += 1,
                b')' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
        if *width.get_or_insert(n) != n {
            return None;
        }
        out.push(b'\n');
        rows += 1;
        skip_ws(s, &mut i);
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b';') | None => break,
            Some(_) => return None,
        }
    }
    if s.get(i) == Some(&b';') {
        i += 1;
    }
    skip_ws(s, &mut i);
    if i != s.len() {
        return None;
    }
    Some(Rows { columns, rows, hex })
}

/// The statement before the table name (`s[..name_start]`) is a plain `INSERT INTO` (not
/// IGNORE, REPLACE, a priority, or anything LOAD DATA would have to say differently).
pub fn plain_insert(s: &[u8], name_start: usize) -> bool {
    let head = &s[..name_start.min(s.len())];
    let mut words = head
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(a), Some(b), None) if a.eq_ignore_ascii_case(b"INSERT") && b.eq_ignore_ascii_case(b"INTO")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(stmt: &str) -> Option<(String, Option<String>, u64, bool)> {
        let s = stmt.as_bytes();
        let name_end = stmt.find("`t`").map(|p| p + 3)?;
        let mut out = Vec::new();
        let r = convert(s, name_end, &mut out)?;
        Some((
            String::from_utf8_lossy(&out).into_owned(),
            r.columns.map(|c| stmt[c].to_string()),
            r.rows,
            r.hex,
        ))
    }

    #[test]
    fn values_become_load_data_text() {
        let cases: &[(&str, &str)] = &[
            ("INSERT INTO `t` VALUES (1,'a'),(2,'b');", "1\ta\n2\tb\n"),
            (
                "INSERT INTO `t` VALUES\n(1,NULL),\n(-2.5e3,null);\n",
                "1\t\\N\n-2.5e3\t\\N\n",
            ),
            (r"INSERT INTO `t` VALUES ('it''s','a\'b')", "it's\ta'b\n"),
            (
                r#"INSERT INTO `t` VALUES ("say ""hi""","x\"y")"#,
                "say \"hi\"\tx\"y\n",
            ),
            (
                r"INSERT INTO `t` VALUES ('a\\b','\0\n\r\t\Z\b')",
                "a\\\\b\t\\0\\n\r\\t\x1a\x08\n",
            ),
            // LIKE escapes keep their backslash in SQL, so the value has it too.
            (
                r"INSERT INTO `t` VALUES ('50\%','a\_b','\q')",
                "50\\\\%\ta\\\\_b\tq\n",
            ),
            // raw tabs and newlines inside a string are escaped for LOAD DATA
            ("INSERT INTO `t` VALUES ('a\tb','c\nd')", "a\\tb\tc\\nd\n"),
            (
                "INSERT INTO `t` VALUES (0x41425C09,X'00ff',0x123)",
                "AB\\\\\\t\t\\0\u{fffd}\t\u{1}#\n",
            ),
            ("INSERT INTO `t` VALUES ('')", "\n"),
            (r"INSERT INTO `t` VALUES ('\\N','\N')", "\\\\N\tN\n"),
            ("insert into `t` value (1)", "1\n"),
        ];
        for (stmt, want) in cases {
            let (got, ..) = conv(stmt).unwrap_or_else(|| panic!("{stmt:?} refused"));
            assert_eq!(got, *want, "{stmt:?}");
        }
    }

    #[test]
    fn column_lists_rows_and_hex_are_reported() {
        let (_, cols, rows, hex) = conv("INSERT INTO `t` (`a`,`b``c`) VALUES (1,2),(3,4)").unwrap();
        assert_eq!(cols.as_deref(), Some("(`a`,`b``c`)"));
        assert_eq!((rows, hex), (2, false));
        let (_, cols, rows, hex) = conv("INSERT INTO `t` VALUES (0x00)").unwrap();
        assert_eq!((cols, rows, hex), (None, 1, true));
    }

    #[test]
    fn anything_but_plain_values_is_refused() {
        for stmt in [
            "INSERT INTO `t` VALUES (NOW())",
            "INSERT INTO `t` VALUES (b'101')",
            "INSERT INTO `t` VALUES (_binary'ab')",
            "INSERT INTO `t` VALUES (TRUE)",
            "INSERT INTO `t` VALUES (1,2),(3)",
            "INSERT INTO `t` VALUES (1) /* c */",
            "INSERT INTO `t` VALUES ('a' 'b')",
            "INSERT INTO `t` VALUES ('open",
            "INSERT INTO `t` VALUES (0x)",
            "INSERT INTO `t` VALUES (0x4G)",
            "INSERT INTO `t` VALUES (X'123')",
            "INSERT INTO `t` VALUES (1",
            "INSERT INTO `t` VALUES (1); INSERT INTO `t` VALUES (2)",
            "INSERT INTO `t` SELECT 1",
            "INSERT INTO `t` SET a = 1",
            "INSERT INTO `t` (a, 'b') VALUES (1, 2)",
            "INSERT INTO `t` VALUES (1) ON DUPLICATE KEY UPDATE a = 1",
        ] {
            assert_eq!(conv(stmt), None, "{stmt:?}");
        }
    }

    #[test]
    fn only_a_plain_insert_into_qualifies() {
        let cases = [
            ("INSERT INTO `t` VALUES (1)", true),
            ("insert\n into `t` VALUES (1)", true),
            ("INSERT IGNORE INTO `t` VALUES (1)", false),
            ("REPLACE INTO `t` VALUES (1)", false),
            ("INSERT LOW_PRIORITY INTO `t` VALUES (1)", false),
            ("INSERT `t` VALUES (1)", false),
        ];
        for (stmt, want) in cases {
            let at = stmt.find("`t`").unwrap();
            assert_eq!(plain_insert(stmt.as_bytes(), at), want, "{stmt:?}");
        }
    }
}
