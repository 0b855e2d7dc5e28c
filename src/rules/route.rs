//! Route rules (DM's `table-router`): map an upstream `schema.table` to its downstream name.
//! Built by [`super::TableRules`] from an instance's `route-rules`; called for every row event and
//! DDL by the sync unit and for every dumped table by the load unit. Pure: no I/O, never panics.
//!
//! Semantics (tidb-tools `pkg/table-router`): a rule with an empty `table-pattern` is a schema rule,
//! otherwise a table rule. Table rules win over schema rules; routing a schema (`table == ""`) only
//! looks at schema rules. An empty target keeps the upstream name. When `case-sensitive` is false,
//! patterns and names are compared lower-cased. DM refuses a name matched by two rules of the same
//! level; [`Router::route_checked`] reports that, [`Router::route`] picks the first such rule in
//! the instance's `route-rules` order.

use super::RulesError;
use super::pattern::{Pattern, compile_rule, fold};
use crate::config::task::RouteRule;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    schema: Pattern,
    table: Option<Pattern>,
    target_schema: String,
    target_table: String,
}

/// Compiled route rules of one instance.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
    case_sensitive: bool,
}

impl Router {
    /// Compiles named rules, in the order given.
    pub fn new<'a>(
        rules: impl IntoIterator<Item = (&'a str, &'a RouteRule)>,
        case_sensitive: bool,
    ) -> Result<Self, RulesError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (name, r) in rules {
            let invalid = |reason: &str| RulesError::Invalid {
                kind: "route",
                rule: name.to_string(),
                reason: reason.to_string(),
            };
            if r.schema_pattern.is_empty() {
                return Err(invalid("schema-pattern must not be empty"));
            }
            if r.target_schema.is_empty() {
                return Err(invalid("target-schema must not be empty"));
            }
            let (schema, table) = compile_rule(
                "route",
                name,
                &r.schema_pattern,
                &r.table_pattern,
                case_sensitive,
            )?;
            if let Some(other) = entries.iter().find(|e| {
                e.schema == schema
                    && e.table.as_ref().map(Pattern::as_str) == table.as_ref().map(Pattern::as_str)
            }) {
                return Err(RulesError::Duplicate {
                    kind: "route",
                    rule: name.to_string(),
                    other: other.name.clone(),
                });
            }
            entries.push(Entry {
                name: name.to_string(),
                schema,
                table,
                target_schema: r.target_schema.clone(),
                target_table: r.target_table.clone(),
            });
        }
        Ok(Router {
            entries,
            case_sensitive,
        })
    }

    /// The rules that decide `schema.table`: the matching table rules if any (and `table` is not
    /// empty), else the matching schema rules; in rule order.
    fn deciding(&self, schema: &str, table: &str) -> Vec<&Entry> {
        let s = fold(schema, self.case_sensitive);
        let t = fold(table, self.case_sensitive);
        let matching = self.entries.iter().filter(|e| e.schema.matches(&s));
        let (schema_rules, table_rules): (Vec<&Entry>, Vec<&Entry>) =
            matching.partition(|e| e.table.is_none());
        let table_rules: Vec<&Entry> = table_rules
            .into_iter()
            .filter(|e| e.table.as_ref().is_some_and(|p| p.matches(&t)))
            .collect();
        if table.is_empty() || table_rules.is_empty() {
            schema_rules
        } else {
            table_rules
        }
    }

    fn apply(rule: Option<&Entry>, schema: &str, table: &str) -> (String, String) {
        let (ts, tt) = rule.map_or(("", ""), |r| {
            (r.target_schema.as_str(), r.target_table.as_str())
        });
        let ts = if ts.is_empty() { schema } else { ts };
        let tt = if tt.is_empty() { table } else { tt };
        (ts.to_string(), tt.to_string())
    }

    /// Downstream `(schema, table)`; no matching rule = unchanged. Ambiguity: first rule wins.
    pub fn route(&self, schema: &str, table: &str) -> (String, String) {
        Self::apply(self.deciding(schema, table).first().copied(), schema, table)
    }

    /// Like [`Router::route`], but errors as DM does when two rules of the deciding level match.
    pub fn route_checked(&self, schema: &str, table: &str) -> Result<(String, String), RulesError> {
        let rules = self.deciding(schema, table);
        if let [a, b, ..] = rules.as_slice() {
            return Err(RulesError::AmbiguousRoute {
                schema: schema.to_string(),
                table: table.to_string(),
                first: a.name.clone(),
                second: b.name.clone(),
            });
        }
        Ok(Self::apply(rules.first().copied(), schema, table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(sp: &str, tp: &str, ts: &str, tt: &str) -> RouteRule {
        RouteRule {
            schema_pattern: sp.into(),
            table_pattern: tp.into(),
            target_schema: ts.into(),
            target_table: tt.into(),
            ..RouteRule::default()
        }
    }

    fn router(rules: &[(&str, RouteRule)], cs: bool) -> Router {
        Router::new(rules.iter().map(|(n, r)| (*n, r)), cs).expect("valid rules")
    }

    #[test]
    fn routing_table() {
        let rules = [
            ("schema", rule("test_*", "", "test", "")),
            ("table", rule("test_*", "t_*", "test", "t")),
            ("exact", rule("shop", "orders", "shop2", "")),
            ("rename_db", rule("legacy", "", "modern", "")),
            ("q", rule("db?", "tbl?", "dbx", "tblx")),
        ];
        let r = router(&rules, false);
        let cases: &[(&str, &str, (&str, &str))] = &[
            // table rule wins over the schema rule
            ("test_1", "t_1", ("test", "t")),
            ("test_1", "t_99", ("test", "t")),
            // schema rule: table name kept
            ("test_1", "other", ("test", "other")),
            // schema-level DDL only uses schema rules
            ("test_1", "", ("test", "")),
            // empty target-table keeps the table
            ("shop", "orders", ("shop2", "orders")),
            ("shop", "items", ("shop", "items")),
            ("shop", "", ("shop", "")),
            ("legacy", "x", ("modern", "x")),
            ("legacy", "", ("modern", "")),
            // no rule: unchanged
            ("nope", "t_1", ("nope", "t_1")),
            ("test", "t_1", ("test", "t_1")),
            // `?` is exactly one character
            ("db1", "tbl2", ("dbx", "tblx")),
            ("db12", "tbl2", ("db12", "tbl2")),
            ("db1", "tbl", ("db1", "tbl")),
            // case-insensitive: matched lower-cased, unrouted parts keep their case
            ("TEST_1", "T_1", ("test", "t")),
            ("Test_1", "Other", ("test", "Other")),
            ("Nope", "X", ("Nope", "X")),
        ];
        for &(s, t, (ws, wt)) in cases {
            assert_eq!(r.route(s, t), (ws.to_string(), wt.to_string()), "{s}.{t}");
        }
    }

    #[test]
    fn case_sensitive_routing() {
        let r = router(&[("a", rule("Test_*", "T?", "dst", "tt"))], true);
        assert_eq!(r.route("Test_1", "T1"), ("dst".into(), "tt".into()));
        assert_eq!(r.route("test_1", "T1"), ("test_1".into(), "T1".into()));
        assert_eq!(r.route("Test_1", "t1"), ("Test_1".into(), "t1".into()));
    }

    #[test]
    fn table_pattern_star_does_not_route_schema_ddl() {
        let r = router(&[("a", rule("s", "*", "d", "t"))], false);
        assert_eq!(r.route("s", ""), ("s".into(), "".into()));
        assert_eq!(r.route("s", "x"), ("d".into(), "t".into()));
    }

    #[test]
    fn ambiguous_rules_first_wins_and_checked_errors() {
        let r = router(
            &[
                ("first", rule("s*", "t*", "one", "")),
                ("second", rule("s1", "t?", "two", "")),
            ],
            false,
        );
        assert_eq!(r.route("s1", "t1"), ("one".into(), "t1".into()));
        match r.route_checked("s1", "t1") {
            Err(RulesError::AmbiguousRoute { first, second, .. }) => {
                assert_eq!((first.as_str(), second.as_str()), ("first", "second"))
            }
            other => panic!("expected ambiguity, got {other:?}"),
        }
        assert_eq!(
            r.route_checked("s2", "t1").expect("one rule"),
            ("one".into(), "t1".into())
        );
    }

    #[test]
    fn invalid_rules_are_rejected() {
        let bad = [
            rule("", "t", "d", ""),
            rule("s", "t", "", ""),
            rule("s*x", "", "d", ""),
            rule("s", "t*x", "d", ""),
        ];
        for b in &bad {
            assert!(Router::new([("bad", b)], false).is_err(), "{b:?}");
        }
        let dup = [rule("S", "t", "a", ""), rule("s", "t", "b", "")];
        let e = Router::new([("r1", &dup[0]), ("r2", &dup[1])], false);
        assert!(matches!(e, Err(RulesError::Duplicate { .. })), "{e:?}");
        // case-sensitive: S and s are different patterns
        assert!(Router::new([("r1", &dup[0]), ("r2", &dup[1])], true).is_ok());
    }
}
