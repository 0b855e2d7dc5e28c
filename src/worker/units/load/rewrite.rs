//! Finding and replacing the table (or database) name of a dumped statement, so routes apply
//! to what the load unit runs (DM's loader does the same by text: the first quoted name).
//!
//! Only the statement's head is read: `INSERT [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [IGNORE]
//! [INTO] name`, `REPLACE [LOW_PRIORITY|DELAYED] [INTO] name`, `CREATE [OR REPLACE]
//! [TEMPORARY] TABLE [IF NOT EXISTS] name`, `CREATE {DATABASE|SCHEMA} [IF NOT EXISTS] name`,
//! with comments and whitespace anywhere between the words. A name is backquoted (with ``
//! escapes) or bare, optionally qualified (`db`.`t`). The rest of the statement is copied
//! byte for byte.

use std::ops::Range;

/// A name found in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The bytes of the whole (possibly qualified) name in the statement.
    pub span: Range<usize>,
    pub db: Option<String>,
    pub name: String,
}

struct Lex<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lex<'a> {
    fn skip_ws(&mut self) {
        let s = self.s;
        loop {
            while self.i < s.len() && s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            let rest = &s[self.i..];
            if rest.starts_with(b"/*") {
                match memchr::memmem::find(&rest[2..], b"*/") {
                    Some(k) => self.i += 2 + k + 2,
                    None => self.i = s.len(),
                }
            } else if rest.starts_with(b"#")
                || (rest.starts_with(b"--") && rest.get(2).is_none_or(|b| b.is_ascii_whitespace()))
            {
                match memchr::memchr(b'\n', rest) {
                    Some(k) => self.i += k + 1,
                    None => self.i = s.len(),
                }
            } else {
                return;
            }
        }
    }

    fn word_len(&self) -> usize {
        self.s[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$' || **b >= 0x80)
            .count()
    }

    /// Consumes keyword `kw` (case-insensitive, whole word).
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let n = self.word_len();
        if n == kw.len() && self.s[self.i..self.i + n].eq_ignore_ascii_case(kw.as_bytes()) {
            self.i += n;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        let s = self.s;
        if s.get(self.i) == Some(&b'`') {
            let mut out = Vec::new();
            let mut j = self.i + 1;
            loop {
                let k = memchr::memchr(b'`', &s[j..])?;
                out.extend_from_slice(&s[j..j + k]);
                j += k + 1;
                if s.get(j) == Some(&b'`') {
                    out.push(b'`');
                    j += 1;
                } else {
                    break;
                }
            }
            self.i = j;
            return String::from_utf8(out).ok();
        }
        let n = self.word_len();
        if n == 0 {
            return None;
        }
        let w = std::str::from_utf8(&s[self.i..self.i + n])
            .ok()?
            .to_string();
        self.i += n;
        Some(w)
    }

    fn name(&mut self) -> Option<Name> {
        self.skip_ws();
        let start = self.i;
        let first = self.ident()?;
        let end_first = self.i;
        let save = self.i;
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.skip_ws();
            if let Some(second) = self.ident() {
                return Some(Name {
                    span: start..self.i,
                    db: Some(first),
                    name: second,
                });
            }
        }
        self.i = save;
        Some(Name {
            span: start..end_first,
            db: None,
            name: first,
        })
    }
}

/// The table name of an `INSERT` or `REPLACE` statement.
pub fn insert_name(stmt: &[u8]) -> Option<Name> {
    let mut l = Lex { s: stmt, i: 0 };
    if l.keyword("INSERT") {
        let _ = l.keyword("LOW_PRIORITY") || l.keyword("DELAYED") || l.keyword("HIGH_PRIORITY");
        l.keyword("IGNORE");
    } else if l.keyword("REPLACE") {
        let _ = l.keyword("LOW_PRIORITY") || l.keyword("DELAYED");
    } else {
        return None;
    }
    l.keyword("INTO");
    l.name()
}

/// The table name of a `CREATE TABLE` statement.
pub fn create_table_name(stmt: &[u8]) -> Option<Name> {
    let mut l = Lex { s: stmt, i: 0 };
    if !l.keyword("CREATE") {
        return None;
    }
    if l.keyword("OR") && !l.keyword("REPLACE") {
        return None;
    }
    l.keyword("TEMPORARY");
    if !l.keyword("TABLE") {
        return None;
    }
    if_not_exists(&mut l);
    l.name()
}

/// The database name of a `CREATE DATABASE` statement.
pub fn create_database_name(stmt: &[u8]) -> Option<Name> {
    let mut l = Lex { s: stmt, i: 0 };
    if !l.keyword("CREATE") {
        return None;
    }
    if !(l.keyword("DATABASE") || l.keyword("SCHEMA")) {
        return None;
    }
    if_not_exists(&mut l);
    l.name()
}

fn if_not_exists(l: &mut Lex<'_>) {
    let save = l.i;
    if !(l.keyword("IF") && l.keyword("NOT") && l.keyword("EXISTS")) {
        l.i = save;
    }
}

/// Appends a backquoted identifier.
pub fn push_quoted(out: &mut Vec<u8>, id: &str) {
    out.push(b'`');
    for b in id.bytes() {
        if b == b'`' {
            out.push(b'`');
        }
        out.push(b);
    }
    out.push(b'`');
}

/// DM's `on-duplicate-logical`: what a dumped row whose key already exists downstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    /// `REPLACE INTO`: the dumped row wins (DM's default).
    #[default]
    Replace,
    /// `INSERT INTO`: the load stops with the duplicate-key error.
    Error,
    /// `INSERT IGNORE INTO`: the row already downstream stays.
    Ignore,
}

impl OnDuplicate {
    /// From the task's (adjusted) `on-duplicate-logical`; empty is DM's default.
    pub fn from_config(v: &str) -> OnDuplicate {
        match v.to_ascii_lowercase().as_str() {
            "error" => OnDuplicate::Error,
            "ignore" => OnDuplicate::Ignore,
            _ => OnDuplicate::Replace,
        }
    }

    /// The statement head for a plain `INSERT INTO` (`stmt[..name_start]`); any other
    /// statement form keeps its own head.
    fn head(self, stmt: &[u8], name_start: usize) -> &[u8] {
        let head = &stmt[..name_start.min(stmt.len())];
        if !super::tsv::plain_insert(stmt, name_start) {
            return head;
        }
        match self {
            OnDuplicate::Error => head,
            OnDuplicate::Replace => b"REPLACE INTO ",
            OnDuplicate::Ignore => b"INSERT IGNORE INTO ",
        }
    }
}

/// Appends `stmt` with the name at `span` replaced by `` `db`.`table` `` (or `` `table` ``)
/// and, when it is a plain `INSERT INTO`, the head `dup` asks for.
pub fn replace_name_with(
    out: &mut Vec<u8>,
    stmt: &[u8],
    span: &Range<usize>,
    db: Option<&str>,
    table: &str,
    dup: OnDuplicate,
) {
    out.extend_from_slice(dup.head(stmt, span.start));
    if let Some(db) = db {
        push_quoted(out, db);
        out.push(b'.');
    }
    push_quoted(out, table);
    out.extend_from_slice(&stmt[span.end..]);
}

/// `stmt` (a whole INSERT) with the head `dup` asks for.
pub fn with_duplicate_head(out: &mut Vec<u8>, stmt: &[u8], dup: OnDuplicate) {
    match insert_name(stmt) {
        Some(n) => {
            out.extend_from_slice(dup.head(stmt, n.span.start));
            out.extend_from_slice(&stmt[n.span.start..]);
        }
        None => out.extend_from_slice(stmt),
    }
}

/// Appends `stmt` with the name at `span` replaced by `` `db`.`table` `` (or `` `table` ``).
pub fn replace_name(
    out: &mut Vec<u8>,
    stmt: &[u8],
    span: &Range<usize>,
    db: Option<&str>,
    table: &str,
) {
    out.extend_from_slice(&stmt[..span.start]);
    if let Some(db) = db {
        push_quoted(out, db);
        out.push(b'.');
    }
    push_quoted(out, table);
    out.extend_from_slice(&stmt[span.end..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_duplicate_heads() {
        let stmt = b"INSERT INTO `t` VALUES (1)";
        let n = insert_name(stmt).unwrap();
        for (dup, want) in [
            (OnDuplicate::Replace, "REPLACE INTO `d`.`x` VALUES (1)"),
            (OnDuplicate::Error, "INSERT INTO `d`.`x` VALUES (1)"),
            (OnDuplicate::Ignore, "INSERT IGNORE INTO `d`.`x` VALUES (1)"),
        ] {
            let mut out = Vec::new();
            replace_name_with(&mut out, stmt, &n.span, Some("d"), "x", dup);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        // other forms keep their head
        let mut out = Vec::new();
        with_duplicate_head(
            &mut out,
            b"INSERT IGNORE INTO `t` VALUES (1)",
            OnDuplicate::Replace,
        );
        assert_eq!(out, b"INSERT IGNORE INTO `t` VALUES (1)");
        assert_eq!(OnDuplicate::from_config(""), OnDuplicate::Replace);
        assert_eq!(OnDuplicate::from_config("ERROR"), OnDuplicate::Error);
    }

    fn show(n: Option<Name>) -> Option<(Option<String>, String)> {
        n.map(|n| (n.db, n.name))
    }
    fn nm(db: Option<&str>, t: &str) -> Option<(Option<String>, String)> {
        Some((db.map(str::to_string), t.to_string()))
    }

    #[test]
    fn finds_insert_targets() {
        let cases = [
            ("INSERT INTO `t` VALUES (1)", nm(None, "t")),
            ("insert into `t` (`a`) values (1)", nm(None, "t")),
            ("INSERT IGNORE INTO `a``b` VALUES (1)", nm(None, "a`b")),
            (
                "INSERT LOW_PRIORITY IGNORE INTO t(a) VALUES (1)",
                nm(None, "t"),
            ),
            ("INSERT INTO `d`.`t` VALUES (1)", nm(Some("d"), "t")),
            ("INSERT INTO d . t VALUES (1)", nm(Some("d"), "t")),
            ("INSERT `t` VALUES (1)", nm(None, "t")),
            ("REPLACE INTO `t` VALUES (1)", nm(None, "t")),
            (
                "/* x */ INSERT /*!99999 */ INTO\n`ü.t` VALUES (1)",
                nm(None, "ü.t"),
            ),
            ("-- c\nINSERT INTO `t` VALUES (1)", nm(None, "t")),
            ("INSERTINTO t", None),
            ("UPDATE t SET a = 1", None),
            ("SET NAMES binary", None),
            ("INSERT INTO `unterminated", None),
        ];
        for (sql, want) in cases {
            assert_eq!(show(insert_name(sql.as_bytes())), want, "{sql}");
        }
    }

    #[test]
    fn finds_create_targets() {
        let cases = [
            ("CREATE TABLE `t` (\n`a` int\n)", nm(None, "t")),
            (
                "CREATE TABLE IF NOT EXISTS `d`.`t` (a int)",
                nm(Some("d"), "t"),
            ),
            ("create or replace temporary table t (a int)", nm(None, "t")),
            ("CREATE TABLE `if` (a int)", nm(None, "if")),
            ("CREATE VIEW v AS SELECT 1", None),
            ("CREATE OR ALTER TABLE t", None),
        ];
        for (sql, want) in cases {
            assert_eq!(show(create_table_name(sql.as_bytes())), want, "{sql}");
        }
        let dbs = [
            (
                "CREATE DATABASE `db` /*!40100 DEFAULT CHARACTER SET latin1 */",
                nm(None, "db"),
            ),
            (
                "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a.b`",
                nm(None, "a.b"),
            ),
            ("create schema if not exists s", nm(None, "s")),
            ("CREATE TABLE t (a int)", None),
        ];
        for (sql, want) in dbs {
            assert_eq!(show(create_database_name(sql.as_bytes())), want, "{sql}");
        }
    }

    #[test]
    fn replacing_keeps_the_rest_byte_for_byte() {
        type Case<'a> = (&'a [u8], Option<&'a str>, &'a str, &'a [u8]);
        let cases: [Case; 4] = [
            (
                b"INSERT INTO `t` VALUES ('\xff;')",
                Some("db"),
                "t2",
                b"INSERT INTO `db`.`t2` VALUES ('\xff;')",
            ),
            (
                b"INSERT INTO `d`.`t` (`a`) VALUES (1)",
                Some("x`y"),
                "t",
                b"INSERT INTO `x``y`.`t` (`a`) VALUES (1)",
            ),
            (
                b"CREATE TABLE `t` (a int)",
                None,
                "n",
                b"CREATE TABLE `n` (a int)",
            ),
            (
                b"insert into t(a) values (1)",
                Some("d"),
                "t",
                b"insert into `d`.`t`(a) values (1)",
            ),
        ];
        for (sql, db, t, want) in cases {
            let n = insert_name(sql)
                .or_else(|| create_table_name(sql))
                .expect("a name");
            let mut out = Vec::new();
            replace_name(&mut out, sql, &n.span, db, t);
            assert_eq!(out, want, "{}", String::from_utf8_lossy(sql));
        }
    }
}

/// A CREATE TABLE (as `SHOW CREATE TABLE` writes it: one column or index per line) without its
/// plain secondary indexes (`KEY …` lines), and those index definitions: the load creates the
/// table without them and adds them when the data is in (a sorted index build instead of
/// random inserts into every index). `None` when there is nothing to defer or the text is not
/// in that shape, or the table has foreign keys (their indexes must exist while rows arrive).
/// Primary, unique, fulltext and spatial keys stay.
pub fn defer_keys(create: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    let text = std::str::from_utf8(create).ok()?;
    let lines: Vec<&str> = text.split('\n').collect();
    let open = lines.iter().position(|l| l.trim_end().ends_with('('))?;
    let close = lines
        .iter()
        .enumerate()
        .skip(open + 1)
        .find(|(_, l)| l.starts_with(')'))
        .map(|(i, _)| i)?;
    let body = &lines[open + 1..close];
    let mut kept: Vec<&str> = Vec::with_capacity(body.len());
    let mut keys = Vec::new();
    for l in body {
        if !l.starts_with("  ") {
            return None;
        }
        let item = l.trim().trim_end_matches(',');
        let upper = item.to_ascii_uppercase();
        if upper.starts_with("CONSTRAINT") || upper.starts_with("FOREIGN KEY") {
            return None;
        }
        if upper.starts_with("KEY `") {
            keys.push(item.to_string());
        } else {
            kept.push(item);
        }
    }
    if keys.is_empty() || kept.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for l in &lines[..=open] {
        out.push_str(l);
        out.push('\n');
    }
    for (i, item) in kept.iter().enumerate() {
        out.push_str("  ");
        out.push_str(item);
        if i + 1 < kept.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&lines[close..].join("\n"));
    Some((out.into_bytes(), keys))
}

#[cfg(test)]
mod defer_tests {
    use super::defer_keys;

    #[test]
    fn plain_secondary_keys_are_deferred_and_the_rest_stays() {
        let sb = "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`)\n) ENGINE=InnoDB";
        let two = "CREATE TABLE `t` (\n  `a` int,\n  `b` varchar(10) DEFAULT 'x,y',\n  KEY `ia` (`a`) USING BTREE,\n  UNIQUE KEY `ub` (`b`),\n  KEY `iab` (`a`,`b`(5)) COMMENT 'c'\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        type Case<'a> = (&'a str, Option<(&'a str, Vec<&'a str>)>);
        let cases: Vec<Case> = vec![
            (
                sb,
                Some((
                    "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
                    vec!["KEY `k_1` (`k`)"],
                )),
            ),
            (
                two,
                Some((
                    "CREATE TABLE `t` (\n  `a` int,\n  `b` varchar(10) DEFAULT 'x,y',\n  UNIQUE KEY `ub` (`b`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                    vec![
                        "KEY `ia` (`a`) USING BTREE",
                        "KEY `iab` (`a`,`b`(5)) COMMENT 'c'",
                    ],
                )),
            ),
            // Nothing to defer.
            (
                "CREATE TABLE `t` (\n  `a` int,\n  PRIMARY KEY (`a`)\n) ENGINE=InnoDB",
                None,
            ),
            // Foreign keys: their indexes stay.
            (
                "CREATE TABLE `c` (\n  `p` int,\n  KEY `p` (`p`),\n  CONSTRAINT `f` FOREIGN KEY (`p`) REFERENCES `q` (`id`)\n) ENGINE=InnoDB",
                None,
            ),
            // Not SHOW CREATE TABLE's shape.
            ("CREATE TABLE t (a int, KEY k (a))", None),
            ("CREATE TABLE `t` (\n`a` int,\nKEY `k` (`a`)\n)", None),
        ];
        for (input, want) in cases {
            let got = defer_keys(input.as_bytes()).map(|(s, k)| (String::from_utf8(s).unwrap(), k));
            let want = want.map(|(s, k)| {
                (
                    s.to_string(),
                    k.into_iter().map(String::from).collect::<Vec<_>>(),
                )
            });
            assert_eq!(got, want, "{input}");
        }
    }
}
