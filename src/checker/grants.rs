//! Parsing the lines of `SHOW GRANTS` into privileges per level (global, database, table), and the
//! role grants among them.
//!
//! Called by the source checks in [`super::live`] (which runs the statements) and evaluated by
//! [`super::items`]. Pure text work: it never talks to a server, and it never fails — a line it
//! cannot read becomes [`GrantLine::Other`] and simply grants nothing.

use std::collections::BTreeSet;

/// Where a privilege applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantLevel {
    /// `ON *.*`
    Global,
    /// ``ON `db`.*``
    Database(String),
    /// ``ON `db`.`tbl` `` (also `ON tbl` without a database)
    Table(String, String),
    /// `ON PROCEDURE …`, `ON FUNCTION …`, `ON ''@'%'` (PROXY): nothing a migration needs.
    Other,
}

/// One `GRANT <privileges> ON <object> TO <grantee>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeGrant {
    /// Upper-case privilege names, column lists dropped, aliases folded
    /// (`ALL` → `ALL PRIVILEGES`, `REPLICATION REPLICA` → `REPLICATION SLAVE`).
    pub privileges: Vec<String>,
    /// Privileges granted on some columns only (`SELECT (a, b)`): they do not cover the table
    /// (a dump needs `SHOW CREATE TABLE` and every column).
    pub column_only: Vec<String>,
    pub level: GrantLevel,
    /// The grantee exactly as the server printed it, e.g. `` `u`@`%` ``.
    pub grantee: String,
}

/// What one line of `SHOW GRANTS` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantLine {
    Privileges(PrivilegeGrant),
    /// `GRANT role1, role2 TO grantee`: the roles (unquoted) granted to the grantee.
    Roles {
        roles: Vec<String>,
        grantee: String,
    },
    /// `SET DEFAULT ROLE role FOR grantee`.
    DefaultRole(String),
    Other,
}

/// Parses one line of `SHOW GRANTS` output.
pub fn parse_grant_line(line: &str) -> GrantLine {
    let line = line.trim().trim_end_matches(';');
    if let Some(rest) = strip_prefix_ci(line, "SET DEFAULT ROLE ") {
        let end = find_top_level(rest, " FOR ").unwrap_or(rest.len());
        let role = unquote(rest[..end].trim());
        if role.eq_ignore_ascii_case("NONE") {
            return GrantLine::Other;
        }
        return GrantLine::DefaultRole(role);
    }
    let Some(rest) = strip_prefix_ci(line, "GRANT ") else {
        return GrantLine::Other;
    };
    let Some(to) = find_top_level(rest, " TO ") else {
        return GrantLine::Other;
    };
    let after_to = &rest[to + 4..];
    let grantee = grantee_of(after_to);
    match find_top_level(&rest[..to], " ON ") {
        None => {
            let roles = split_top_level(&rest[..to])
                .into_iter()
                .map(|r| unquote(r.trim()))
                .filter(|r| !r.is_empty())
                .collect();
            GrantLine::Roles { roles, grantee }
        }
        Some(on) => {
            let mut privileges = Vec::new();
            let mut column_only = Vec::new();
            for p in split_top_level(&rest[..on]) {
                if let Some(name) = normalize_privilege(&p) {
                    if p.contains('(') {
                        column_only.push(name);
                    } else {
                        privileges.push(name);
                    }
                }
            }
            let level = parse_level(rest[on + 4..to].trim());
            GrantLine::Privileges(PrivilegeGrant {
                privileges,
                column_only,
                level,
                grantee,
            })
        }
    }
}

/// The privileges of a user (and the roles whose grants were added), gathered from grant lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    pub grants: Vec<PrivilegeGrant>,
    /// Roles granted to the user or to an added role (unquoted names).
    pub roles: BTreeSet<String>,
    /// The default role named by `SET DEFAULT ROLE`, if any.
    pub default_role: Option<String>,
    /// The first grantee seen (the user itself), for instructions.
    pub user: Option<String>,
}

impl Privileges {
    /// Gathers every line of one `SHOW GRANTS` output.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Privileges {
        let mut p = Privileges::default();
        p.add_lines(lines);
        p
    }

    /// Adds more lines (e.g. `SHOW GRANTS FOR role`).
    pub fn add_lines<S: AsRef<str>>(&mut self, lines: &[S]) {
        for line in lines {
            match parse_grant_line(line.as_ref()) {
                GrantLine::Privileges(g) => {
                    if self.user.is_none() {
                        self.user = Some(g.grantee.clone());
                    }
                    self.grants.push(g);
                }
                GrantLine::Roles { roles, grantee } => {
                    if self.user.is_none() {
                        self.user = Some(grantee);
                    }
                    self.roles.extend(roles);
                }
                GrantLine::DefaultRole(r) => self.default_role = Some(r),
                GrantLine::Other => {}
            }
        }
    }

    /// True when some line grants privileges to `grantee_name` (unquoted user or role name).
    pub fn has_grants_for(&self, grantee_name: &str) -> bool {
        self.grants
            .iter()
            .any(|g| grantee_user(&g.grantee) == grantee_name)
    }

    /// True when `privilege` (upper case) is granted on `*.*`, directly or through `ALL PRIVILEGES`.
    pub fn has_global(&self, privilege: &str) -> bool {
        self.grants.iter().any(|g| {
            g.level == GrantLevel::Global
                && g.privileges
                    .iter()
                    .any(|p| p == privilege || p == "ALL PRIVILEGES")
        })
    }

    /// True when `privilege` is granted on some database or table, but maybe not on `*.*`.
    pub fn has_somewhere(&self, privilege: &str) -> bool {
        self.grants.iter().any(|g| {
            matches!(
                g.level,
                GrantLevel::Global | GrantLevel::Database(_) | GrantLevel::Table(..)
            ) && g
                .privileges
                .iter()
                .any(|p| p == privilege || p == "ALL PRIVILEGES")
        })
    }
}

/// A privilege something needs, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Upper case, e.g. `RELOAD`, `SELECT`, `LOCK TABLES`.
    pub privilege: &'static str,
    /// `None`: on `*.*` (RELOAD and the replication privileges exist only there); `Some`: on
    /// each of these `(database, table)` — a global, database (name patterns with `%` / `_`
    /// included) or whole-table grant covers a table.
    pub tables: Option<Vec<(String, String)>>,
}

/// A privilege that is missing, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lack {
    pub privilege: &'static str,
    /// Empty when it is needed on `*.*`; else the `(database, table)`s it does not cover, in
    /// the order they were asked for.
    pub tables: Vec<(String, String)>,
}

impl Lack {
    /// Whether the privilege is needed on `*.*`.
    pub fn global(&self) -> bool {
        self.tables.is_empty()
    }
}

impl Privileges {
    /// Which of `needs` these grants do not cover (DM's `VerifyPrivileges`): `ALL PRIVILEGES`
    /// covers everything at its level; a column-level grant covers nothing.
    pub fn lacking(&self, needs: &[Need]) -> Vec<Lack> {
        let mut out = Vec::new();
        for need in needs {
            let grants = |g: &&PrivilegeGrant| {
                g.privileges
                    .iter()
                    .any(|p| p == need.privilege || p == "ALL PRIVILEGES")
            };
            if self.has_global(need.privilege) {
                continue;
            }
            match &need.tables {
                None => out.push(Lack {
                    privilege: need.privilege,
                    tables: Vec::new(),
                }),
                Some(tables) => {
                    let covering: Vec<&PrivilegeGrant> =
                        self.grants.iter().filter(grants).collect();
                    let missing: Vec<(String, String)> = tables
                        .iter()
                        .filter(|(db, tbl)| {
                            !covering.iter().any(|g| match &g.level {
                                GrantLevel::Database(pattern) => like_match(pattern, db),
                                GrantLevel::Table(gdb, gtbl) => gdb == db && gtbl == tbl,
                                _ => false,
                            })
                        })
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        out.push(Lack {
                            privilege: need.privilege,
                            tables: missing,
                        });
                    }
                }
            }
        }
        out
    }
}

/// A database name against the name in a database-level grant, where `%` and `_` are SQL
/// `LIKE` wildcards and `\` escapes the next character (`GRANT … ON `shop\_%`.*`).
pub fn like_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // dp over (pattern index, name index); iterative with backtracking on the last `%`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('\\') if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                pi += 2;
                ni += 1;
                continue;
            }
            Some('_') => {
                pi += 1;
                ni += 1;
                continue;
            }
            Some(c) if *c != '\\' && *c == n[ni] => {
                pi += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// The user part of a grantee: `` `u`@`%` `` → `u`, `` `role` `` → `role`.
pub fn grantee_user(grantee: &str) -> String {
    let end = find_top_level(grantee, "@").unwrap_or(grantee.len());
    unquote(grantee[..end].trim())
}

fn grantee_of(after_to: &str) -> String {
    // The grantee ends at the first top-level space (IDENTIFIED BY / WITH / REQUIRE …).
    let mut end = after_to.len();
    let mut quote: Option<char> = None;
    for (i, c) in after_to.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '\'' || c == '"' => quote = Some(c),
            None if c == ' ' || c == ',' => {
                end = i;
                break;
            }
            None => {}
        }
    }
    after_to[..end].to_string()
}

fn normalize_privilege(raw: &str) -> Option<String> {
    // Drop a column list: `SELECT (a, b)` → `SELECT`.
    let base = match raw.find('(') {
        Some(i) => &raw[..i],
        None => raw,
    };
    let words: Vec<String> = base.split_whitespace().map(str::to_uppercase).collect();
    if words.is_empty() {
        return None;
    }
    let name = words.join(" ");
    Some(match name.as_str() {
        "ALL" => "ALL PRIVILEGES".to_string(),
        "REPLICATION REPLICA" => "REPLICATION SLAVE".to_string(),
        _ => name,
    })
}

fn parse_level(object: &str) -> GrantLevel {
    let upper = object.to_uppercase();
    if upper.starts_with("PROCEDURE ")
        || upper.starts_with("FUNCTION ")
        || upper.starts_with("PACKAGE ")
    {
        return GrantLevel::Other;
    }
    if object.contains('@') {
        return GrantLevel::Other;
    }
    let object = strip_prefix_ci(object, "TABLE ").unwrap_or(object);
    let (db, tbl) = match find_top_level(object, ".") {
        Some(dot) => (&object[..dot], Some(&object[dot + 1..])),
        None => (object, None),
    };
    match (db.trim(), tbl.map(str::trim)) {
        ("*", Some("*")) => GrantLevel::Global,
        (db, Some("*")) => GrantLevel::Database(unquote(db)),
        (db, Some(t)) => GrantLevel::Table(unquote(db), unquote(t)),
        ("*", None) => GrantLevel::Database(String::new()),
        (t, None) => GrantLevel::Table(String::new(), unquote(t)),
    }
}

/// Removes one level of `` ` ``, `'` or `"` quoting (doubled quote characters inside are undone).
pub fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['`', '\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            let inner = &s[1..s.len() - 1];
            let doubled: String = [q, q].iter().collect();
            return inner.replace(&doubled, &q.to_string());
        }
    }
    s.to_string()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Byte offset of the first occurrence of `needle` (ASCII, case-insensitive) outside quotes and
/// parentheses.
fn find_top_level(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let n = needle.as_bytes();
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'`' || c == b'\'' || c == b'"' {
                    quote = Some(c);
                } else if c == b'(' {
                    depth += 1;
                } else if c == b')' {
                    depth = depth.saturating_sub(1);
                } else if depth == 0
                    && i + n.len() <= bytes.len()
                    && bytes[i..i + n.len()].eq_ignore_ascii_case(n)
                {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// Splits at commas outside quotes and parentheses.
fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                cur.push(c);
            }
            None => match c {
                '`' | '\'' | '"' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '(' => {
                    depth += 1;
                    cur.push(c);
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    cur.push(c);
                }
                ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_grant_lines() {
        let cases: Vec<(&str, GrantLine)> = vec![
            (
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["ALL PRIVILEGES"]),
                    column_only: vec![],
                    level: GrantLevel::Global,
                    grantee: "`root`@`localhost`".into(),
                }),
            ),
            (
                "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `dm`@`%` IDENTIFIED BY PASSWORD '*ABC'",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["SELECT", "RELOAD", "REPLICATION SLAVE", "BINLOG MONITOR"]),
                    column_only: vec![],
                    level: GrantLevel::Global,
                    grantee: "`dm`@`%`".into(),
                }),
            ),
            (
                "GRANT REPLICATION SLAVE ADMIN, REPLICA MONITOR ON *.* TO 'u'@'%'",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["REPLICATION SLAVE ADMIN", "REPLICA MONITOR"]),
                    column_only: vec![],
                    level: GrantLevel::Global,
                    grantee: "'u'@'%'".into(),
                }),
            ),
            (
                "GRANT SELECT (`a`, `b`), INSERT ON `shop`.`orders` TO `u`@`h`",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["INSERT"]),
                    column_only: privs(&["SELECT"]),
                    level: GrantLevel::Table("shop".into(), "orders".into()),
                    grantee: "`u`@`h`".into(),
                }),
            ),
            (
                "GRANT ALL ON `we``ird`.* TO `u`@`%`",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["ALL PRIVILEGES"]),
                    column_only: vec![],
                    level: GrantLevel::Database("we`ird".into()),
                    grantee: "`u`@`%`".into(),
                }),
            ),
            (
                "GRANT replication replica ON *.* TO u@'%';",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["REPLICATION SLAVE"]),
                    column_only: vec![],
                    level: GrantLevel::Global,
                    grantee: "u@'%'".into(),
                }),
            ),
            (
                "GRANT EXECUTE ON PROCEDURE `db`.`p` TO `u`@`%`",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["EXECUTE"]),
                    column_only: vec![],
                    level: GrantLevel::Other,
                    grantee: "`u`@`%`".into(),
                }),
            ),
            (
                "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["PROXY"]),
                    column_only: vec![],
                    level: GrantLevel::Other,
                    grantee: "'root'@'localhost'".into(),
                }),
            ),
            (
                "GRANT `dm_role`, `ro` TO `u`@`%`",
                GrantLine::Roles {
                    roles: vec!["dm_role".into(), "ro".into()],
                    grantee: "`u`@`%`".into(),
                },
            ),
            (
                "GRANT USAGE ON *.* TO `dm_role`",
                GrantLine::Privileges(PrivilegeGrant {
                    privileges: privs(&["USAGE"]),
                    column_only: vec![],
                    level: GrantLevel::Global,
                    grantee: "`dm_role`".into(),
                }),
            ),
            (
                "SET DEFAULT ROLE `dm_role` FOR `u`@`%`",
                GrantLine::DefaultRole("dm_role".into()),
            ),
            ("SET DEFAULT ROLE NONE FOR `u`@`%`", GrantLine::Other),
            ("garbage", GrantLine::Other),
            ("GRANT", GrantLine::Other),
            ("", GrantLine::Other),
            ("GRANT SELECT ON", GrantLine::Other),
        ];
        for (line, want) in cases {
            assert_eq!(parse_grant_line(line), want, "line: {line}");
        }
    }

    #[test]
    fn global_and_partial_privileges() {
        // (lines, privilege, has_global, has_somewhere)
        let cases: Vec<(&[&str], &str, bool, bool)> = vec![
            (
                &["GRANT ALL PRIVILEGES ON *.* TO `r`@`%`"],
                "RELOAD",
                true,
                true,
            ),
            (
                &["GRANT SELECT ON `db`.* TO `r`@`%`"],
                "SELECT",
                false,
                true,
            ),
            (
                &["GRANT SELECT ON `db`.`t` TO `r`@`%`"],
                "SELECT",
                false,
                true,
            ),
            (&["GRANT ALL ON `db`.* TO `r`@`%`"], "SELECT", false, true),
            (
                &["GRANT REPLICATION SLAVE ADMIN ON *.* TO `r`@`%`"],
                "REPLICATION SLAVE",
                false,
                false,
            ),
            (
                &[
                    "GRANT USAGE ON *.* TO `r`@`%`",
                    "GRANT RELOAD ON *.* TO `r`@`%`",
                ],
                "RELOAD",
                true,
                true,
            ),
            (
                &["GRANT EXECUTE ON PROCEDURE `db`.`p` TO `r`@`%`"],
                "EXECUTE",
                false,
                false,
            ),
        ];
        for (lines, p, global, somewhere) in cases {
            let privs = Privileges::from_lines(lines);
            assert_eq!(privs.has_global(p), global, "{lines:?} {p}");
            assert_eq!(privs.has_somewhere(p), somewhere, "{lines:?} {p}");
        }
    }

    #[test]
    fn like_patterns_of_database_grants() {
        let cases = [
            ("shop", "shop", true),
            ("shop", "shops", false),
            ("shop%", "shops", true),
            ("shop%", "shop", true),
            ("s_op", "shop", true),
            ("s_op", "sop", false),
            ("shop\\_a", "shop_a", true),
            ("shop\\_a", "shopxa", false),
            ("%", "anything", true),
            ("%_x", "ax", true),
            ("%_x", "x", false),
            ("a%b%c", "aXXbYYc", true),
            ("a%b%c", "aXXbYY", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(like_match(pattern, name), want, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn lacking_privileges_per_table() {
        let t = |d: &str, x: &str| (d.to_string(), x.to_string());
        let tables = vec![t("shop", "a"), t("shop", "b"), t("crm", "c")];
        let dump = |tables: &Vec<(String, String)>| {
            vec![
                Need {
                    privilege: "RELOAD",
                    tables: None,
                },
                Need {
                    privilege: "SELECT",
                    tables: Some(tables.clone()),
                },
            ]
        };
        // (grants, lacks as (privilege, tables))
        type Want = Vec<(&'static str, Vec<(String, String)>)>;
        let cases: Vec<(&[&str], Want)> = vec![
            (&["GRANT ALL PRIVILEGES ON *.* TO `u`@`%`"], vec![]),
            (&["GRANT SELECT, RELOAD ON *.* TO `u`@`%`"], vec![]),
            (
                &["GRANT SELECT ON *.* TO `u`@`%`"],
                vec![("RELOAD", vec![])],
            ),
            (
                &["GRANT USAGE ON *.* TO `u`@`%`"],
                vec![("RELOAD", vec![]), ("SELECT", tables.clone())],
            ),
            (
                &[
                    "GRANT RELOAD ON *.* TO `u`@`%`",
                    "GRANT SELECT ON `shop`.* TO `u`@`%`",
                ],
                vec![("SELECT", vec![t("crm", "c")])],
            ),
            (
                &[
                    "GRANT RELOAD ON *.* TO `u`@`%`",
                    "GRANT ALL PRIVILEGES ON `s%`.* TO `u`@`%`",
                    "GRANT SELECT ON `crm`.`c` TO `u`@`%`",
                ],
                vec![],
            ),
            (
                &[
                    "GRANT RELOAD ON *.* TO `u`@`%`",
                    "GRANT SELECT (`id`) ON `crm`.`c` TO `u`@`%`",
                    "GRANT SELECT ON `shop`.`a` TO `u`@`%`",
                    "GRANT INSERT ON `shop`.`b` TO `u`@`%`",
                ],
                vec![("SELECT", vec![t("shop", "b"), t("crm", "c")])],
            ),
            (
                // RELOAD on a database is not RELOAD (it exists only on *.*)
                &[
                    "GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%`",
                    "GRANT SELECT ON `crm`.* TO `u`@`%`",
                ],
                vec![("RELOAD", vec![])],
            ),
        ];
        for (lines, want) in cases {
            let got: Vec<(&str, Vec<(String, String)>)> = Privileges::from_lines(lines)
                .lacking(&dump(&tables))
                .into_iter()
                .map(|l| (l.privilege, l.tables))
                .collect();
            assert_eq!(got, want, "{lines:?}");
        }
    }

    #[test]
    fn roles_and_user_are_collected() {
        let p = Privileges::from_lines(&[
            "GRANT `dm_role` TO `u`@`%`",
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT REPLICATION SLAVE ON *.* TO `dm_role`",
            "SET DEFAULT ROLE `dm_role` FOR `u`@`%`",
        ]);
        assert_eq!(p.user.as_deref(), Some("`u`@`%`"));
        assert!(p.roles.contains("dm_role"));
        assert_eq!(p.default_role.as_deref(), Some("dm_role"));
        assert!(p.has_grants_for("dm_role"));
        assert!(p.has_grants_for("u"));
        assert!(!p.has_grants_for("other"));
        assert!(p.has_global("REPLICATION SLAVE"));
    }

    #[test]
    fn grantee_user_and_unquote() {
        let cases = [
            ("`u`@`%`", "u"),
            ("'a@b'@'h'", "a@b"),
            ("`role`", "role"),
            ("plain", "plain"),
        ];
        for (g, want) in cases {
            assert_eq!(grantee_user(g), want, "{g}");
        }
        assert_eq!(unquote("'it''s'"), "it's");
        assert_eq!(unquote("`x`"), "x");
        assert_eq!(unquote("x"), "x");
    }
}
