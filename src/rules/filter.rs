//! Binlog event filter (DM's `filters` / `filter-rules`, tidb-tools `binlog-filter`): skip some
//! event types or statements of some schemas/tables. Built by [`super::TableRules`]; called by the
//! sync unit for every row event and DDL. Pure: no I/O, never panics.
//!
//! Semantics, as DM: every rule whose patterns match the (schema, table) is consulted — schema
//! rules (empty `table-pattern`) match every table of their schemas, table rules match tables only
//! (a schema-level event has table `""`, which only a `*` table pattern matches). For each rule:
//! if the event has a type, an `Ignore` rule listing it skips the event and a `Do` rule *not*
//! listing it skips it; then, if a statement text is given and the rule has `sql-pattern`s, an
//! `Ignore` rule whose patterns match skips it and a `Do` rule whose patterns do not match skips
//! it. An event no rule skips is kept, so Ignore always wins and the order of rules is irrelevant.
//! `events` are read in order: `all` → listed, `none` → not listed, `all ddl`/`none ddl` and
//! `all dml`/`none dml` likewise for their class, else an exact name. Statements we do not
//! classify ([`EventType::Other`]) are only judged by `sql-pattern`, as DM's `NullEvent`.
//! `incompatible ddl changes` lists DM's incompatible class: every DDL event but create
//! database / table / index, alter database and plain alter table. Event names DM accepts but
//! dm-rs never produces (DM's TiDB-only `add column`, `multi schema change`, …, and `drop
//! unique key`: the tracker keeps no key flags) match nothing here; `config::task` warns.

use regex::Regex;

use super::pattern::{Pattern, compile_rule};
use super::{EventType, RulesError};
use crate::config::task::FilterRule;

/// One entry of a rule's `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    All,
    None,
    AllDdl,
    NoneDdl,
    AllDml,
    NoneDml,
    /// DM's "incompatible ddl changes": drops, renames, truncates.
    Incompatible,
    Exact(EventType),
    /// A DM event name we never produce (views, partitions, column-level kinds…): matches nothing.
    Never,
}

fn parse_event(name: &str) -> Option<Ev> {
    use EventType as E;
    Some(match name.to_ascii_lowercase().as_str() {
        "all" => Ev::All,
        "none" => Ev::None,
        "all ddl" => Ev::AllDdl,
        "none ddl" => Ev::NoneDdl,
        "all dml" => Ev::AllDml,
        "none dml" => Ev::NoneDml,
        "incompatible ddl changes" => Ev::Incompatible,
        "insert" => Ev::Exact(E::Insert),
        "update" => Ev::Exact(E::Update),
        "delete" => Ev::Exact(E::Delete),
        "create database" | "create schema" => Ev::Exact(E::CreateDatabase),
        "drop database" | "drop schema" => Ev::Exact(E::DropDatabase),
        "alter database" | "alter schema" => Ev::Exact(E::AlterDatabase),
        "create table" => Ev::Exact(E::CreateTable),
        "drop table" => Ev::Exact(E::DropTable),
        "truncate table" => Ev::Exact(E::TruncateTable),
        "rename table" => Ev::Exact(E::RenameTable),
        "alter table" => Ev::Exact(E::AlterTable),
        "create index" | "add index" => Ev::Exact(E::CreateIndex),
        "drop index" => Ev::Exact(E::DropIndex),
        "rename column" => Ev::Exact(E::RenameColumn),
        "rename index" => Ev::Exact(E::RenameIndex),
        "drop column" => Ev::Exact(E::DropColumn),
        "drop primary key" => Ev::Exact(E::DropPrimaryKey),
        "drop table partition" => Ev::Exact(E::DropTablePartition),
        "truncate table partition" => Ev::Exact(E::TruncateTablePartition),
        "modify default value" => Ev::Exact(E::ModifyDefaultValue),
        "modify constraint" => Ev::Exact(E::ModifyConstraint),
        "modify charset" => Ev::Exact(E::ModifyCharset),
        "modify collation" => Ev::Exact(E::ModifyCollation),
        "modify storage engine" => Ev::Exact(E::ModifyStorageEngine),
        "reorganize table partition" => Ev::Exact(E::ReorganizePartition),
        "rebuild table partition" => Ev::Exact(E::RebuildPartition),
        "coalesce table partition" => Ev::Exact(E::CoalescePartition),
        "exchange table partition" => Ev::Exact(E::ExchangePartition),
        "value range decrease" => Ev::Exact(E::ValueRangeDecrease),
        "precision decrease" => Ev::Exact(E::PrecisionDecrease),
        "modify column" => Ev::Exact(E::ModifyColumn),
        "remove auto increment" => Ev::Exact(E::RemoveAutoIncrement),
        "modify columns order" => Ev::Exact(E::ModifyColumnsOrder),
        "" | "null event" => Ev::Never,
        // Names DM accepts that dm-rs never produces (its warning says why).
        other if crate::config::task::unmatched_event(other).is_some() => Ev::Never,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Dml,
    Ddl,
    Null,
}

fn class(e: EventType) -> Class {
    match e {
        EventType::Insert | EventType::Update | EventType::Delete => Class::Dml,
        EventType::Other => Class::Null,
        _ => Class::Ddl,
    }
}

/// DM's `incompatibleDDL` class: every DDL but the creating ones and plain "alter table".
fn is_incompatible(e: EventType) -> bool {
    use EventType as E;
    !matches!(
        e,
        E::Insert
            | E::Update
            | E::Delete
            | E::Other
            | E::CreateDatabase
            | E::AlterDatabase
            | E::CreateTable
            | E::CreateIndex
            | E::AlterTable
    )
}

#[derive(Debug, Clone)]
struct Entry {
    schema: Pattern,
    table: Option<Pattern>,
    events: Vec<Ev>,
    sql: Option<Regex>,
    ignore: bool,
}

impl Entry {
    fn lists(&self, event: EventType) -> bool {
        let c = class(event);
        for ev in &self.events {
            match ev {
                Ev::All => return true,
                Ev::None => return false,
                Ev::AllDdl if c == Class::Ddl => return true,
                Ev::NoneDdl if c == Class::Ddl => return false,
                Ev::AllDml if c == Class::Dml => return true,
                Ev::NoneDml if c == Class::Dml => return false,
                Ev::Incompatible if is_incompatible(event) => return true,
                Ev::Exact(e) if *e == event => return true,
                _ => {}
            }
        }
        false
    }

    /// Does this rule alone skip the event?
    fn skips(&self, event: EventType, sql: &str) -> bool {
        if class(event) != Class::Null && self.lists(event) == self.ignore {
            return true;
        }
        match (&self.sql, sql.is_empty()) {
            (Some(re), false) => re.is_match(sql) == self.ignore,
            _ => false,
        }
    }
}

/// Compiled binlog event filter rules of one instance.
#[derive(Debug, Clone, Default)]
pub struct BinlogFilter {
    entries: Vec<Entry>,
    case_sensitive: bool,
}

impl BinlogFilter {
    /// Compiles named rules, in the order given.
    pub fn new<'a>(
        rules: impl IntoIterator<Item = (&'a str, &'a FilterRule)>,
        case_sensitive: bool,
    ) -> Result<Self, RulesError> {
        let mut entries: Vec<(String, Entry)> = Vec::new();
        for (name, r) in rules {
            let invalid = |reason: String| RulesError::Invalid {
                kind: "filter",
                rule: name.to_string(),
                reason,
            };
            if r.schema_pattern.is_empty() {
                return Err(invalid("schema-pattern must not be empty".into()));
            }
            let ignore = if r.action.eq_ignore_ascii_case("ignore") {
                true
            } else if r.action.eq_ignore_ascii_case("do") {
                false
            } else {
                return Err(invalid(format!(
                    "action must be Do or Ignore, got {:?}",
                    r.action
                )));
            };
            let events = r
                .events
                .iter()
                .map(|e| {
                    parse_event(e).ok_or_else(|| invalid(format!("event type {e:?} is not valid")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sql = if r.sql_pattern.is_empty() {
                None
            } else {
                let joined = format!("(?i){}", r.sql_pattern.join("|"));
                Some(Regex::new(&joined).map_err(|e| RulesError::Regex {
                    kind: "filter",
                    rule: name.to_string(),
                    pattern: r.sql_pattern.join("|"),
                    reason: e.to_string(),
                })?)
            };
            let (schema, table) = compile_rule(
                "filter",
                name,
                &r.schema_pattern,
                &r.table_pattern,
                case_sensitive,
            )?;
            if let Some((other, _)) = entries.iter().find(|(_, e)| {
                e.schema == schema
                    && e.table.as_ref().map(Pattern::as_str) == table.as_ref().map(Pattern::as_str)
            }) {
                return Err(RulesError::Duplicate {
                    kind: "filter",
                    rule: name.to_string(),
                    other: other.clone(),
                });
            }
            entries.push((
                name.to_string(),
                Entry {
                    schema,
                    table,
                    events,
                    sql,
                    ignore,
                },
            ));
        }
        Ok(BinlogFilter {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            case_sensitive,
        })
    }

    /// True = the event must be skipped.
    pub fn skip(&self, schema: &str, table: &str, event: EventType, sql: Option<&str>) -> bool {
        let (s, t) = if self.case_sensitive {
            (schema.to_string(), table.to_string())
        } else {
            (schema.to_lowercase(), table.to_lowercase())
        };
        let sql = sql.unwrap_or("");
        self.entries
            .iter()
            .filter(|e| {
                e.schema.matches(&s)
                    && match &e.table {
                        None => true,
                        Some(p) => p.matches(&t),
                    }
            })
            .any(|e| e.skips(event, sql))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType as E;

    fn rule(sp: &str, tp: &str, events: &[&str], sql: &[&str], action: &str) -> FilterRule {
        FilterRule {
            schema_pattern: sp.into(),
            table_pattern: tp.into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            sql_pattern: sql.iter().map(|s| s.to_string()).collect(),
            action: action.into(),
        }
    }

    fn filter(rules: &[(&str, FilterRule)], cs: bool) -> BinlogFilter {
        BinlogFilter::new(rules.iter().map(|(n, r)| (*n, r)), cs).expect("valid rules")
    }

    type Case = (
        &'static str,
        &'static str,
        EventType,
        Option<&'static str>,
        bool,
    );

    fn check(f: &BinlogFilter, cases: &[Case]) {
        for &(s, t, e, sql, want) in cases {
            assert_eq!(f.skip(s, t, e, sql), want, "{s}.{t} {e:?} {sql:?}");
        }
    }

    #[test]
    fn dm_advanced_example() {
        // DM's task_advanced.yaml: instance 1 uses both rules.
        let f = filter(
            &[
                (
                    "user-filter-1",
                    rule(
                        "test_*",
                        "t_*",
                        &["truncate table", "drop table"],
                        &["^DROP\\s+PROCEDURE", "^CREATE\\s+PROCEDURE"],
                        "Ignore",
                    ),
                ),
                ("user-filter-2", rule("test_*", "", &["all dml"], &[], "Do")),
            ],
            false,
        );
        check(
            &f,
            &[
                // schema rule Do all dml: DML passes, DDL is skipped
                ("test_1", "x", E::Insert, None, false),
                ("test_1", "x", E::Delete, None, false),
                (
                    "test_1",
                    "x",
                    E::CreateTable,
                    Some("CREATE TABLE x (a int)"),
                    true,
                ),
                ("test_1", "t_1", E::Update, None, false),
                (
                    "test_1",
                    "t_1",
                    E::TruncateTable,
                    Some("TRUNCATE TABLE t_1"),
                    true,
                ),
                (
                    "test_1",
                    "",
                    E::CreateDatabase,
                    Some("CREATE DATABASE test_1"),
                    true,
                ),
                // other schemas are untouched
                ("other", "t_1", E::DropTable, Some("DROP TABLE t_1"), false),
                ("other", "t_1", E::Insert, None, false),
                // case-insensitive
                ("TEST_1", "T_1", E::Insert, None, false),
            ],
        );
    }

    #[test]
    fn event_lists_table() {
        type Tc = (
            &'static [&'static str],
            &'static str,
            &'static [(EventType, bool)],
        );
        // (events, action, [(event, skipped?)])
        let cases: &[Tc] = &[
            (
                &["all"],
                "Ignore",
                &[(E::Insert, true), (E::DropTable, true), (E::Other, false)],
            ),
            (&["all"], "Do", &[(E::Insert, false), (E::DropTable, false)]),
            (
                &["none"],
                "Do",
                &[(E::Insert, true), (E::CreateTable, true)],
            ),
            (&["none"], "Ignore", &[(E::Insert, false)]),
            (&[], "Ignore", &[(E::Insert, false), (E::DropTable, false)]),
            (
                &[],
                "Do",
                &[(E::Insert, true), (E::DropTable, true), (E::Other, false)],
            ),
            (
                &["all ddl"],
                "Ignore",
                &[
                    (E::Insert, false),
                    (E::AlterTable, true),
                    (E::CreateDatabase, true),
                ],
            ),
            (
                &["all dml"],
                "Ignore",
                &[(E::Insert, true), (E::Update, true), (E::AlterTable, false)],
            ),
            (
                &["all ddl"],
                "Do",
                &[(E::Insert, true), (E::AlterTable, false)],
            ),
            (
                &["insert", "delete"],
                "Ignore",
                &[(E::Insert, true), (E::Update, false), (E::Delete, true)],
            ),
            (&["INSERT"], "Ignore", &[(E::Insert, true)]),
            (
                &["none dml", "insert"],
                "Ignore",
                &[(E::Insert, false), (E::DropTable, false)],
            ),
            (
                &["insert", "none dml"],
                "Ignore",
                &[(E::Insert, true), (E::Update, false)],
            ),
            (
                &["none ddl", "all"],
                "Ignore",
                &[(E::CreateTable, false), (E::Insert, true)],
            ),
            (
                &["create schema"],
                "Ignore",
                &[(E::CreateDatabase, true), (E::DropDatabase, false)],
            ),
            (&["drop schema"], "Ignore", &[(E::DropDatabase, true)]),
            (&["alter database"], "Ignore", &[(E::AlterDatabase, true)]),
            (
                &["add index"],
                "Ignore",
                &[(E::CreateIndex, true), (E::DropIndex, false)],
            ),
            (
                &["rename table", "truncate table"],
                "Ignore",
                &[
                    (E::RenameTable, true),
                    (E::TruncateTable, true),
                    (E::DropTable, false),
                ],
            ),
            (
                &["incompatible ddl changes"],
                "Ignore",
                &[
                    (E::DropColumn, true),
                    (E::RenameColumn, true),
                    (E::ModifyConstraint, true),
                    (E::ModifyCharset, true),
                    (E::DropTablePartition, true),
                    (E::CreateIndex, false),
                    (E::CreateTable, false),
                    (E::Insert, false),
                ],
            ),
            (
                &["drop column", "drop primary key"],
                "Ignore",
                &[
                    (E::DropColumn, true),
                    (E::DropPrimaryKey, true),
                    (E::AlterTable, false),
                    (E::DropIndex, false),
                ],
            ),
            (
                &["all ddl"],
                "Ignore",
                &[(E::DropColumn, true), (E::ExchangePartition, true)],
            ),
            (
                &["alter table"],
                "Ignore",
                &[(E::AlterTable, true), (E::DropColumn, false)],
            ),
            (
                &[
                    "modify default value",
                    "modify storage engine",
                    "rename index",
                ],
                "Ignore",
                &[
                    (E::ModifyDefaultValue, true),
                    (E::ModifyStorageEngine, true),
                    (E::RenameIndex, true),
                    (E::ModifyCollation, false),
                ],
            ),
            (
                &["incompatible ddl changes"],
                "Ignore",
                &[
                    (E::DropTable, true),
                    (E::TruncateTable, true),
                    (E::AlterTable, false),
                    (E::CreateTable, false),
                ],
            ),
            (
                &["create view", "add column"],
                "Ignore",
                &[(E::AlterTable, false), (E::Other, false)],
            ),
        ];
        for &(events, action, expect) in cases {
            let f = filter(&[("r", rule("s", "t", events, &[], action))], false);
            for &(e, want) in expect {
                assert_eq!(f.skip("s", "t", e, None), want, "{events:?} {action} {e:?}");
                assert!(!f.skip("x", "t", e, None), "unmatched schema never skipped");
            }
        }
    }

    #[test]
    fn sql_patterns() {
        let f = filter(
            &[
                (
                    "ign",
                    rule(
                        "*",
                        "",
                        &[],
                        &["^DROP\\s+PROCEDURE", "^create\\s+procedure"],
                        "Ignore",
                    ),
                ),
                ("do", rule("only", "", &["all"], &["^ALTER"], "Do")),
            ],
            false,
        );
        check(
            &f,
            &[
                ("s", "", E::Other, Some("DROP PROCEDURE p"), true),
                (
                    "s",
                    "",
                    E::Other,
                    Some("create  PROCEDURE p() begin end"),
                    true,
                ),
                ("s", "", E::Other, Some("DROP VIEW v"), false),
                ("s", "", E::Other, None, false),
                ("s", "", E::Other, Some(""), false),
                // `Do` with sql-pattern: statements not matching are skipped
                (
                    "only",
                    "t",
                    E::AlterTable,
                    Some("ALTER TABLE t ADD c int"),
                    false,
                ),
                ("only", "t", E::DropTable, Some("DROP TABLE t"), true),
                // row events have no text: only the event list counts
                ("only", "t", E::Insert, None, false),
            ],
        );
    }

    #[test]
    fn schema_and_table_rules_combine() {
        let f = filter(
            &[
                ("schema", rule("db", "", &["drop table"], &[], "Ignore")),
                ("table", rule("db", "keep*", &["all"], &[], "Do")),
                (
                    "star",
                    rule("db2", "*", &["create database"], &[], "Ignore"),
                ),
            ],
            false,
        );
        check(
            &f,
            &[
                ("db", "keep1", E::DropTable, Some("DROP TABLE keep1"), true), // Ignore wins
                ("db", "keep1", E::Insert, None, false),
                ("db", "other", E::Insert, None, false),
                ("db", "other", E::DropTable, None, true),
                ("db", "", E::CreateDatabase, None, false), // table rule `keep*` does not match ""
                ("db2", "", E::CreateDatabase, None, true), // `*` matches the schema-level ""
                ("db2", "t", E::CreateDatabase, None, true),
            ],
        );
    }

    #[test]
    fn case_sensitive_filter() {
        let f = filter(&[("r", rule("Db", "T", &["insert"], &[], "Ignore"))], true);
        check(
            &f,
            &[
                ("Db", "T", E::Insert, None, true),
                ("db", "t", E::Insert, None, false),
            ],
        );
    }

    #[test]
    fn invalid_rules_are_rejected() {
        let bad = [
            rule("", "", &["all"], &[], "Ignore"),
            rule("s", "", &["all"], &[], "Maybe"),
            rule("s", "", &["explode"], &[], "Do"),
            rule("s", "", &[], &["("], "Do"),
            rule("s*x", "", &[], &[], "Do"),
        ];
        for b in &bad {
            assert!(BinlogFilter::new([("bad", b)], false).is_err(), "{b:?}");
        }
        let a = rule("s", "t", &["all"], &[], "Do");
        let e = BinlogFilter::new([("a", &a), ("b", &a)], false);
        assert!(matches!(e, Err(RulesError::Duplicate { .. })), "{e:?}");
    }
}
