//! Expression filters (DM's `expression-filter`, `dm/syncer/expr_filter_group.go`): skip single
//! row changes whose values match a SQL expression. Built by [`super::row::RowRules`] from an
//! instance's `expression-filters`; the sync unit asks it about every row change. Pure: no I/O,
//! never panics. The expressions are parsed by [`super::sqlexpr`].
//!
//! Semantics, as DM's:
//! - A filter names one upstream table exactly (`schema`, `table`: no wildcards, compared as
//!   written) and one kind of change: `insert-value-expr`, `delete-value-expr`, or
//!   `update-old-value-expr` and/or `update-new-value-expr`.
//! - An INSERT (DELETE) row is skipped when any insert (delete) filter of its table matches.
//! - An UPDATE is skipped when, for any one update filter of its table, the old row matches
//!   its `update-old-value-expr` AND the new row matches its `update-new-value-expr`; a side
//!   the filter leaves empty always matches. (So `update-new-value-expr: "c > 100"` alone skips
//!   every update whose new `c` is above 100.)
//! - "Matches" means the expression's value is the integer 1 (DM's `GetInt64() == 1`): TRUE
//!   comparisons match, NULL never does.
//! - An expression naming a column the table does not have never matches (DM replaces it with
//!   FALSE and logs a warning); [`BoundFilter::unknown`] lists them so the caller can warn.
//!   The task check (`check-task` / `start-task`) reports such columns against the upstream's
//!   current tables beforehand.
//! - Expression filters are evaluated on the values after column mapping (DM maps first).

use std::collections::BTreeMap;

use super::RulesError;
use super::sqlexpr::{self, Expr, V, eval};
use crate::config::task::ExpressionFilter;
use crate::dml::Value;

/// Parses one expression of a filter; the error says what is wrong and where.
pub fn check_expression(text: &str) -> Result<(), String> {
    sqlexpr::parse(text).map(|_| ()).map_err(|e| e.to_string())
}

/// The columns the expressions of one filter name (each once, in order), or the first parse
/// error as `(key, message)`.
pub fn filter_columns(f: &ExpressionFilter) -> Result<Vec<String>, (&'static str, String)> {
    let mut out: Vec<String> = Vec::new();
    for (key, text) in keys(f) {
        if text.is_empty() {
            continue;
        }
        let e = sqlexpr::parse(text).map_err(|e| (key, e.to_string()))?;
        for c in e.columns() {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                out.push(c.to_string());
            }
        }
    }
    Ok(out)
}

fn keys(f: &ExpressionFilter) -> [(&'static str, &str); 4] {
    [
        ("insert-value-expr", f.insert_value_expr.as_str()),
        ("update-old-value-expr", f.update_old_value_expr.as_str()),
        ("update-new-value-expr", f.update_new_value_expr.as_str()),
        ("delete-value-expr", f.delete_value_expr.as_str()),
    ]
}

#[derive(Debug, Clone)]
struct Parsed {
    name: String,
    insert: Option<Expr>,
    update_old: Option<Expr>,
    update_new: Option<Expr>,
    delete: Option<Expr>,
}

/// The parsed expression filters of one instance, by upstream table.
#[derive(Debug, Clone, Default)]
pub struct ExprFilter {
    by_table: BTreeMap<(String, String), Vec<Parsed>>,
}

/// The filters of one table, bound to its columns.
#[derive(Debug, Clone, Default)]
pub struct BoundFilter {
    schema: String,
    table: String,
    insert: Vec<(String, Expr)>,
    /// (rule, old-row expression, new-row expression); an empty side is TRUE.
    update: Vec<(String, Expr, Expr)>,
    delete: Vec<(String, Expr)>,
    /// `(rule, column)` for every expression that names a column the table does not have;
    /// such an expression never matches.
    pub unknown: Vec<(String, String)>,
}

impl ExprFilter {
    /// Parses named filters (in the instance's `expression-filters` order). A parse error
    /// names the filter and the key.
    pub fn new<'a>(
        rules: impl IntoIterator<Item = (&'a str, &'a ExpressionFilter)>,
    ) -> Result<Self, RulesError> {
        let mut by_table: BTreeMap<(String, String), Vec<Parsed>> = BTreeMap::new();
        for (name, f) in rules {
            let parse = |key: &str, text: &str| -> Result<Option<Expr>, RulesError> {
                if text.is_empty() {
                    return Ok(None);
                }
                sqlexpr::parse(text)
                    .map(Some)
                    .map_err(|e| RulesError::Invalid {
                        kind: "expression-filter",
                        rule: name.to_string(),
                        reason: format!("{key} ({text}) has wrong grammar: {e}"),
                    })
            };
            let p = Parsed {
                name: name.to_string(),
                insert: parse("insert-value-expr", &f.insert_value_expr)?,
                update_old: parse("update-old-value-expr", &f.update_old_value_expr)?,
                update_new: parse("update-new-value-expr", &f.update_new_value_expr)?,
                delete: parse("delete-value-expr", &f.delete_value_expr)?,
            };
            by_table
                .entry((f.schema.clone(), f.table.clone()))
                .or_default()
                .push(p);
        }
        Ok(ExprFilter { by_table })
    }

    /// No filters at all.
    pub fn is_empty(&self) -> bool {
        self.by_table.is_empty()
    }

    /// Has upstream `schema.table` any filter?
    pub fn applies(&self, schema: &str, table: &str) -> bool {
        self.by_table
            .contains_key(&(schema.to_string(), table.to_string()))
    }

    /// The filters of `schema.table` bound to its columns (in row order).
    pub fn bind(&self, schema: &str, table: &str, columns: &[String]) -> BoundFilter {
        let mut out = BoundFilter {
            schema: schema.to_string(),
            table: table.to_string(),
            ..BoundFilter::default()
        };
        let Some(list) = self.by_table.get(&(schema.to_string(), table.to_string())) else {
            return out;
        };
        let never = Expr::Lit(V::Int(0));
        let always = Expr::Lit(V::Int(1));
        let mut bind = |name: &str, e: &Expr| match e.bind(columns) {
            Ok(b) => b,
            Err(col) => {
                out.unknown.push((name.to_string(), col));
                never.clone()
            }
        };
        let mut insert = Vec::new();
        let mut update = Vec::new();
        let mut delete = Vec::new();
        for p in list {
            if let Some(e) = &p.insert {
                insert.push((p.name.clone(), bind(&p.name, e)));
            }
            if p.update_old.is_some() || p.update_new.is_some() {
                let old = p
                    .update_old
                    .as_ref()
                    .map_or(always.clone(), |e| bind(&p.name, e));
                let new = p
                    .update_new
                    .as_ref()
                    .map_or(always.clone(), |e| bind(&p.name, e));
                update.push((p.name.clone(), old, new));
            }
            if let Some(e) = &p.delete {
                delete.push((p.name.clone(), bind(&p.name, e)));
            }
        }
        out.insert = insert;
        out.update = update;
        out.delete = delete;
        out
    }
}

fn view(row: &[Value]) -> Vec<V> {
    row.iter().map(eval::from_value).collect()
}

impl BoundFilter {
    /// No filter for any kind of change.
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    fn matches(&self, rule: &str, e: &Expr, row: &[V]) -> Result<bool, RulesError> {
        eval::eval(e, row)
            .map(|v| eval::is_one(&v))
            .map_err(|err| RulesError::Filter {
                rule: rule.to_string(),
                schema: self.schema.clone(),
                table: self.table.clone(),
                reason: err.0,
            })
    }

    /// Must this inserted row be skipped?
    pub fn skip_insert(&self, row: &[Value]) -> Result<bool, RulesError> {
        if self.insert.is_empty() {
            return Ok(false);
        }
        let v = view(row);
        for (rule, e) in &self.insert {
            if self.matches(rule, e, &v)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Must this update be skipped? (Old matches AND new matches, for any one filter.)
    pub fn skip_update(&self, before: &[Value], after: &[Value]) -> Result<bool, RulesError> {
        if self.update.is_empty() {
            return Ok(false);
        }
        let (old, new) = (view(before), view(after));
        for (rule, o, n) in &self.update {
            if self.matches(rule, o, &old)? && self.matches(rule, n, &new)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Must this deleted row be skipped?
    pub fn skip_delete(&self, row: &[Value]) -> Result<bool, RulesError> {
        if self.delete.is_empty() {
            return Ok(false);
        }
        let v = view(row);
        for (rule, e) in &self.delete {
            if self.matches(rule, e, &v)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(schema: &str, table: &str, kind: &str, expr: &str) -> ExpressionFilter {
        let mut x = ExpressionFilter {
            schema: schema.into(),
            table: table.into(),
            ..ExpressionFilter::default()
        };
        match kind {
            "insert" => x.insert_value_expr = expr.into(),
            "old" => x.update_old_value_expr = expr.into(),
            "new" => x.update_new_value_expr = expr.into(),
            _ => x.delete_value_expr = expr.into(),
        }
        x
    }

    fn cols() -> Vec<String> {
        vec!["id".into(), "c".into(), "name".into()]
    }

    fn r(id: i64, c: Option<i64>, name: &str) -> Vec<Value> {
        vec![
            Value::Int(id),
            c.map_or(Value::Null, Value::Int),
            Value::Bytes(name.as_bytes().to_vec()),
        ]
    }

    #[test]
    fn insert_and_delete_table() {
        let even = f("db", "t", "insert", "c % 2 = 0");
        let bob = f("db", "t", "insert", "name = 'bob'");
        let del = f("db", "t", "delete", "id > 10");
        let ef = ExprFilter::new([("even", &even), ("bob", &bob), ("del", &del)]).expect("ok");
        let b = ef.bind("db", "t", &cols());
        let cases: &[(Vec<Value>, bool, bool)] = &[
            (r(1, Some(2), "x"), true, false),
            (r(1, Some(3), "x"), false, false),
            (r(1, Some(3), "bob"), true, false),
            (r(1, None, "x"), false, false),
            (r(11, Some(3), "x"), false, true),
            (r(11, Some(4), "x"), true, true),
        ];
        for (row, ins, del) in cases {
            assert_eq!(b.skip_insert(row).ok(), Some(*ins), "insert {row:?}");
            assert_eq!(b.skip_delete(row).ok(), Some(*del), "delete {row:?}");
            assert_eq!(b.skip_update(row, row).ok(), Some(false), "update {row:?}");
        }
        assert!(ef.applies("db", "t"));
        assert!(!ef.applies("db", "T"));
        assert!(!ef.applies("db", "t2"));
        assert!(ef.bind("db", "t2", &cols()).is_empty());
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn update_rule_is_old_and_new_per_filter_or_across_filters() {
        let only_old = f("db", "t", "old", "c > 100");
        let only_new = f("db", "t", "new", "c > 100");
        let mut both = f("db", "t", "old", "c = 1");
        both.update_new_value_expr = "c = 2".into();
        let cases: &[(&[(&str, &ExpressionFilter)], i64, i64, bool)] = &[
            (&[("o", &only_old)], 101, 5, true),
            (&[("o", &only_old)], 5, 101, false),
            (&[("n", &only_new)], 5, 101, true),
            (&[("n", &only_new)], 101, 5, false),
            (&[("b", &both)], 1, 2, true),
            (&[("b", &both)], 1, 3, false),
            (&[("b", &both)], 3, 2, false),
            (&[("o", &only_old), ("n", &only_new)], 5, 101, true),
            (&[("o", &only_old), ("n", &only_new)], 101, 5, true),
            (&[("o", &only_old), ("n", &only_new)], 5, 5, false),
        ];
        for (rules, old, new, want) in cases {
            let ef = ExprFilter::new(rules.iter().copied()).expect("ok");
            let b = ef.bind("db", "t", &cols());
            let got = b.skip_update(&r(1, Some(*old), "x"), &r(1, Some(*new), "x"));
            assert_eq!(got.ok(), Some(*want), "{old} → {new}");
            // Update filters never touch inserts or deletes.
            assert_eq!(b.skip_insert(&r(1, Some(*new), "x")).ok(), Some(false));
        }
    }

    #[test]
    fn unknown_column_never_matches_and_is_reported() {
        let a = f("db", "t", "insert", "nope = 1");
        let b = f("db", "t", "old", "nope = 1");
        let ef = ExprFilter::new([("a", &a), ("b", &b)]).expect("ok");
        let bound = ef.bind("db", "t", &cols());
        assert_eq!(
            bound.unknown,
            vec![("a".into(), "nope".into()), ("b".into(), "nope".into())]
        );
        assert_eq!(bound.skip_insert(&r(1, Some(1), "x")).ok(), Some(false));
        assert_eq!(
            bound
                .skip_update(&r(1, Some(1), "x"), &r(1, Some(1), "x"))
                .ok(),
            Some(false)
        );
    }

    #[test]
    fn parse_errors_name_the_rule_and_key() {
        let bad = f("db", "t", "insert", "c = = 1");
        let e = ExprFilter::new([("oops", &bad)]).unwrap_err().to_string();
        assert!(
            e.contains("\"oops\"") && e.contains("insert-value-expr"),
            "{e}"
        );
        let unknown_fn = f("db", "t", "delete", "frobnicate(c)");
        let e = ExprFilter::new([("fn", &unknown_fn)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown function FROBNICATE"), "{e}");
    }

    #[test]
    fn eval_errors_name_the_rule() {
        let x = f("db", "t", "insert", "c * 9223372036854775807 > 0");
        let ef = ExprFilter::new([("big", &x)]).expect("ok");
        let e = ef
            .bind("db", "t", &cols())
            .skip_insert(&r(1, Some(5), "x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"big\"") && e.contains("out of range"), "{e}");
    }

    #[test]
    fn filter_columns_lists_each_once() {
        let mut x = f("db", "t", "old", "a > 1 AND B < 2");
        x.update_new_value_expr = "b = 3 OR c IS NULL".into();
        assert_eq!(
            filter_columns(&x).expect("parses"),
            vec!["a".to_string(), "B".into(), "c".into()]
        );
        let bad = f("db", "t", "delete", "(");
        assert_eq!(filter_columns(&bad).unwrap_err().0, "delete-value-expr");
    }
}
