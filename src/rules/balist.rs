//! Block-allow-list (DM's `block-allow-list`, the tidb-tools `filter` package in the style of
//! MySQL replication rules): decides whether an upstream schema/table is replicated at all.
//! Built by [`super::TableRules`]; called by the sync and load units. Pure: no I/O, never panics.
//!
//! Order of evaluation, as DM: schema first — if `do-dbs` is non-empty the schema must match one
//! of them, else if `ignore-dbs` is non-empty it must match none; then tables — a schema-level name
//! (table `""`) passes; a table matching `do-tables` passes; else one matching `ignore-tables` is
//! blocked; else it passes only when `do-tables` is empty. An entry starting with `~` is a regular
//! expression (unanchored, like Go's `MatchString`), otherwise a wildcard pattern (`*`, `?`).
//! With `case-sensitive: false`, names and wildcard patterns are lower-cased and regexps get `(?i)`
//! (DM also lower-cases the regexp text itself; we do not, so `\D` keeps its meaning).
//!
//! DM quirk kept on purpose: a table entry whose db is a regexp and whose table is a wildcard
//! matches when its db regexp matches and *any* such entry of the same list has a matching table
//! wildcard (DM's trie shares the table parts between those entries).

use regex::Regex;

use super::RulesError;
use super::pattern::Pattern;
use crate::config::task::BaList;

#[derive(Debug, Clone)]
enum Matcher {
    Regex(Regex),
    Wild(Pattern),
}

impl Matcher {
    fn new(list: &str, text: &str, case_sensitive: bool) -> Result<Self, RulesError> {
        if text.is_empty() {
            return Err(RulesError::Invalid {
                kind: "block-allow-list",
                rule: list.to_string(),
                reason: "a db-name / tbl-name / do-dbs / ignore-dbs entry must not be empty".into(),
            });
        }
        if let Some(re) = text.strip_prefix('~') {
            let src = if case_sensitive {
                re.to_string()
            } else {
                format!("(?i){re}")
            };
            Regex::new(&src)
                .map(Matcher::Regex)
                .map_err(|e| RulesError::Regex {
                    kind: "block-allow-list",
                    rule: list.to_string(),
                    pattern: text.to_string(),
                    reason: e.to_string(),
                })
        } else {
            let folded = if case_sensitive {
                text.to_string()
            } else {
                text.to_lowercase()
            };
            Pattern::new(&folded)
                .map(Matcher::Wild)
                .map_err(|reason| RulesError::Pattern {
                    kind: "block-allow-list",
                    rule: list.to_string(),
                    pattern: text.to_string(),
                    reason,
                })
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Regex(r) => r.is_match(s),
            Matcher::Wild(p) => p.matches(s),
        }
    }
}

#[derive(Debug, Clone)]
struct TableEntry {
    db: Matcher,
    tbl: Matcher,
}

/// A compiled block-allow-list.
#[derive(Debug, Clone)]
pub struct BaFilter {
    do_dbs: Vec<Matcher>,
    ignore_dbs: Vec<Matcher>,
    do_tables: Vec<TableEntry>,
    ignore_tables: Vec<TableEntry>,
    case_sensitive: bool,
}

impl BaFilter {
    /// Compiles the list named `name` (the name only appears in errors).
    pub fn new(name: &str, list: &BaList, case_sensitive: bool) -> Result<Self, RulesError> {
        let dbs = |v: &[String]| -> Result<Vec<Matcher>, RulesError> {
            v.iter()
                .map(|d| Matcher::new(name, d, case_sensitive))
                .collect()
        };
        let tables = |v: &[crate::config::task::TableRef]| -> Result<Vec<TableEntry>, RulesError> {
            v.iter()
                .map(|t| {
                    Ok(TableEntry {
                        db: Matcher::new(name, &t.db_name, case_sensitive)?,
                        tbl: Matcher::new(name, &t.tbl_name, case_sensitive)?,
                    })
                })
                .collect()
        };
        Ok(BaFilter {
            do_dbs: dbs(&list.do_dbs)?,
            ignore_dbs: dbs(&list.ignore_dbs)?,
            do_tables: tables(&list.do_tables)?,
            ignore_tables: tables(&list.ignore_tables)?,
            case_sensitive,
        })
    }

    fn fold(&self, s: &str) -> String {
        if self.case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    }

    /// Is `schema.table` replicated? `table == ""` asks about the schema itself.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        let schema = self.fold(schema);
        let table = self.fold(table);
        self.on_schema(&schema) && self.on_table(&schema, &table)
    }

    fn on_schema(&self, schema: &str) -> bool {
        if !self.do_dbs.is_empty() {
            self.do_dbs.iter().any(|m| m.matches(schema))
        } else if !self.ignore_dbs.is_empty() {
            !self.ignore_dbs.iter().any(|m| m.matches(schema))
        } else {
            true
        }
    }

    fn on_table(&self, schema: &str, table: &str) -> bool {
        if table.is_empty() {
            return true;
        }
        if list_matches(&self.do_tables, schema, table) {
            return true;
        }
        if list_matches(&self.ignore_tables, schema, table) {
            return false;
        }
        self.do_tables.is_empty()
    }
}

fn list_matches(list: &[TableEntry], schema: &str, table: &str) -> bool {
    list.iter().any(|e| match (&e.db, &e.tbl) {
        (Matcher::Regex(db), Matcher::Wild(_)) => {
            db.is_match(schema)
                && list.iter().any(|o| {
                    matches!((&o.db, &o.tbl), (Matcher::Regex(_), Matcher::Wild(p)) if p.matches(table))
                })
        }
        (db, tbl) => db.matches(schema) && tbl.matches(table),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::task::TableRef;

    fn tr(db: &str, tbl: &str) -> TableRef {
        TableRef {
            db_name: db.into(),
            tbl_name: tbl.into(),
        }
    }

    fn list(
        do_dbs: &[&str],
        ignore_dbs: &[&str],
        do_t: &[(&str, &str)],
        ign_t: &[(&str, &str)],
    ) -> BaList {
        BaList {
            do_dbs: do_dbs.iter().map(|s| s.to_string()).collect(),
            ignore_dbs: ignore_dbs.iter().map(|s| s.to_string()).collect(),
            do_tables: do_t.iter().map(|(d, t)| tr(d, t)).collect(),
            ignore_tables: ign_t.iter().map(|(d, t)| tr(d, t)).collect(),
        }
    }

    fn check(f: &BaFilter, cases: &[(&str, &str, bool)]) {
        for &(s, t, want) in cases {
            assert_eq!(f.matches(s, t), want, "{s}.{t}");
        }
    }

    #[test]
    fn dm_advanced_example() {
        // The block-allow-list of DM's task_advanced.yaml.
        let l = list(
            &["~^test.*", "do"],
            &["mysql", "ignored"],
            &[("~^test.*", "~^t.*"), ("do", "do")],
            &[("test", "log")],
        );
        let f = BaFilter::new("instance", &l, false).expect("valid");
        check(
            &f,
            &[
                ("test", "t1", true),
                ("test_2", "tx", true),
                ("test", "log", false),
                ("test", "abc", false), // do-tables set: unmatched tables are blocked
                ("do", "do", true),
                ("do", "dx", false),
                ("ignored", "t1", false), // do-dbs set: ignore-dbs is not consulted, no match
                ("other", "t1", false),
                ("test", "", true),
                ("do", "", true),
                ("other", "", false),
                ("TEST", "T1", true), // case-insensitive
                ("Do", "DO", true),
            ],
        );
    }

    #[test]
    fn evaluation_order_table() {
        type Case = (
            &'static str,
            BaList,
            &'static [(&'static str, &'static str, bool)],
        );
        let cases: Vec<Case> = vec![
            (
                "empty list allows all",
                list(&[], &[], &[], &[]),
                &[("a", "b", true), ("a", "", true)],
            ),
            (
                "ignore-dbs only",
                list(&[], &["skip*"], &[], &[]),
                &[
                    ("skip", "t", false),
                    ("skip_1", "", false),
                    ("keep", "t", true),
                    ("keep", "", true),
                ],
            ),
            (
                "do-dbs wins over ignore-dbs",
                list(&["a"], &["a"], &[], &[]),
                &[("a", "t", true), ("b", "t", false)],
            ),
            (
                "do-tables only: schemas all pass, tables must match",
                list(&[], &[], &[("s", "t?")], &[]),
                &[
                    ("s", "t1", true),
                    ("s", "t12", false),
                    ("x", "t1", false),
                    ("x", "", true),
                ],
            ),
            (
                "ignore-tables only",
                list(&[], &[], &[], &[("s", "log*")]),
                &[
                    ("s", "log", false),
                    ("s", "logs", false),
                    ("s", "t", true),
                    ("x", "log", true),
                ],
            ),
            (
                "do-table match beats ignore-table",
                list(&[], &[], &[("s", "*")], &[("s", "t1")]),
                &[("s", "t1", true), ("s", "t2", true), ("x", "t1", false)],
            ),
            (
                "ignore-dbs then ignore-tables",
                list(&[], &["bad"], &[], &[("good", "tmp_*")]),
                &[
                    ("bad", "x", false),
                    ("good", "tmp_1", false),
                    ("good", "x", true),
                ],
            ),
            (
                "regexp is unanchored",
                list(&["~db"], &[], &[], &[]),
                &[("mydb2", "t", true), ("d_b", "t", false)],
            ),
            (
                "db wildcard + table regexp",
                list(&[], &[], &[("s*", "~^t[0-9]+$")], &[]),
                &[
                    ("s1", "t12", true),
                    ("s1", "t1x", false),
                    ("x", "t1", false),
                ],
            ),
            (
                "db regexp + table wildcard shares table parts (DM quirk)",
                list(&[], &[], &[("~^a$", "t1"), ("~^b$", "t2")], &[]),
                &[
                    ("a", "t1", true),
                    ("b", "t2", true),
                    ("a", "t2", true),
                    ("c", "t1", false),
                    ("a", "t3", false),
                ],
            ),
        ];
        for (what, l, expect) in cases {
            let f = BaFilter::new(what, &l, false).expect(what);
            for &(s, t, want) in expect {
                assert_eq!(f.matches(s, t), want, "{what}: {s}.{t}");
            }
        }
    }

    #[test]
    fn case_sensitivity() {
        let l = list(&["Shop", "~^Log"], &[], &[], &[]);
        let ci = BaFilter::new("l", &l, false).expect("valid");
        check(
            &ci,
            &[
                ("shop", "t", true),
                ("SHOP", "t", true),
                ("logs", "t", true),
            ],
        );
        let cs = BaFilter::new("l", &l, true).expect("valid");
        check(
            &cs,
            &[
                ("Shop", "t", true),
                ("shop", "t", false),
                ("Logs", "t", true),
                ("logs", "t", false),
            ],
        );
    }

    #[test]
    fn bad_entries_are_errors() {
        let bad = [
            list(&[""], &[], &[], &[]),
            list(&["~("], &[], &[], &[]),
            list(&[], &["a*b"], &[], &[]),
            list(&[], &[], &[("", "t")], &[]),
            list(&[], &[], &[], &[("s", "~[")]),
        ];
        for l in &bad {
            assert!(BaFilter::new("x", l, false).is_err(), "{l:?}");
        }
    }
}
