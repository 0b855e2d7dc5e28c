//! Table rules: what DM applies to every upstream table and binlog event before anything reaches
//! the downstream — the block-allow-list ([`balist`]), route rules ([`route`]), binlog event
//! filters ([`filter`]) — plus the DDL statement splitter/rewriter ([`ddl`]) that lets the sync unit
//! judge and route DDLs table by table.
//!
//! Called by the sync unit (every row event and QUERY event) and the load unit (every dumped
//! table), through one [`TableRules`] per subtask built from the canonical task config. Pure logic:
//! this module never does I/O, never logs secrets, never panics on names, patterns or SQL text;
//! a bad pattern is a [`RulesError`] naming the rule at construction time.

pub mod balist;
pub mod column_mapping;
pub mod ddl;
pub mod expr_filter;
pub mod filter;
pub mod insert_text;
pub mod pattern;
pub mod route;
pub mod row;
pub mod sqlexpr;

pub use ddl::{Ddl, DdlError, DdlKind, TableName, split_ddl};

use crate::config::task::TaskConfig;

/// The kind of a binlog event as the binlog filter sees it (DM's `bf.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Insert,
    Update,
    Delete,
    CreateDatabase,
    DropDatabase,
    AlterDatabase,
    CreateTable,
    DropTable,
    TruncateTable,
    RenameTable,
    AlterTable,
    CreateIndex,
    DropIndex,
    // DM's finer ALTER TABLE events (tiflow's `AstToDDLEvent`); all in its "incompatible ddl
    // changes" class.
    RenameColumn,
    RenameIndex,
    DropColumn,
    DropPrimaryKey,
    DropTablePartition,
    TruncateTablePartition,
    ModifyDefaultValue,
    ModifyConstraint,
    ModifyCharset,
    ModifyCollation,
    ModifyStorageEngine,
    ReorganizePartition,
    RebuildPartition,
    CoalescePartition,
    ExchangePartition,
    // DM's MODIFY / CHANGE COLUMN events (compared with the tracked column by the sync unit).
    ValueRangeDecrease,
    PrecisionDecrease,
    ModifyColumn,
    RemoveAutoIncrement,
    ModifyColumnsOrder,
    /// A statement DM does not classify (its `NullEvent`): only `sql-pattern` applies.
    Other,
}

/// Why the rules of a task could not be built, or a row rule could not be applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RulesError {
    #[error("task has no mysql-instance with source-id {0:?}")]
    NoSuchSource(String),
    #[error("{kind} rule {name:?} does not exist in the task")]
    UnknownRule { kind: &'static str, name: String },
    #[error("{kind} rule {rule:?}: {reason}")]
    Invalid {
        kind: &'static str,
        rule: String,
        reason: String,
    },
    #[error("{kind} rule {rule:?}: bad pattern {pattern:?}: {reason}")]
    Pattern {
        kind: &'static str,
        rule: String,
        pattern: String,
        reason: String,
    },
    #[error("{kind} rule {rule:?}: bad regular expression {pattern:?}: {reason}")]
    Regex {
        kind: &'static str,
        rule: String,
        pattern: String,
        reason: String,
    },
    #[error("{kind} rule {rule:?} has the same schema/table patterns as rule {other:?}")]
    Duplicate {
        kind: &'static str,
        rule: String,
        other: String,
    },
    /// A column mapping could not be applied to a table or row (DM: 36033 in sync, 34004 in
    /// load).
    #[error("column mapping rule {rule:?} on `{schema}`.`{table}`: {reason}")]
    Mapping {
        rule: String,
        schema: String,
        table: String,
        reason: String,
    },
    /// An expression filter could not be evaluated on a row.
    #[error("expression-filter {rule:?} on `{schema}`.`{table}`: {reason}")]
    Filter {
        rule: String,
        schema: String,
        table: String,
        reason: String,
    },
    #[error("`{schema}`.`{table}` matches more than one route rule: {first:?} and {second:?}")]
    AmbiguousRoute {
        schema: String,
        table: String,
        first: String,
        second: String,
    },
}

/// Schemas never replicated, whatever the block-allow-list says (DM's `filter.IsSystemSchema`,
/// compared case-insensitively).
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "metrics_schema",
    "inspection_schema",
    "dm_heartbeat",
];

/// Is `schema` a system schema (never replicated)?
pub fn is_system_schema(schema: &str) -> bool {
    SYSTEM_SCHEMAS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(schema))
}

/// All table rules of one source of a task. Cheap to clone; immutable once built.
#[derive(Debug, Clone)]
pub struct TableRules {
    ba: Option<balist::BaFilter>,
    router: route::Router,
    filter: filter::BinlogFilter,
    meta_schema: String,
    case_sensitive: bool,
}

impl TableRules {
    /// Rules of one instance (source) of a loaded (canonical) task: its route-rules, filter-rules,
    /// block-allow-list, and the task's case-sensitive flag.
    pub fn new(task: &TaskConfig, source_id: &str) -> Result<Self, RulesError> {
        Self::with_source_filters(task, source_id, &[])
    }

    /// [`TableRules::new`] plus the source file's own `filters`, as DM adds them to each
    /// subtask: after the task's rules, and a source rule whose schema and table patterns a
    /// task rule already has is left out (the task's wins).
    pub fn with_source_filters(
        task: &TaskConfig,
        source_id: &str,
        source_filters: &[crate::config::task::FilterRule],
    ) -> Result<Self, RulesError> {
        let inst = task
            .mysql_instances
            .iter()
            .flatten()
            .find(|i| i.source_id == source_id)
            .ok_or_else(|| RulesError::NoSuchSource(source_id.to_string()))?;
        let cs = task.case_sensitive;
        let unknown = |kind, name: &String| RulesError::UnknownRule {
            kind,
            name: name.clone(),
        };
        let routes = inst
            .route_rules
            .iter()
            .map(|n| {
                task.routes
                    .get(n)
                    .map(|r| (n.as_str(), r))
                    .ok_or_else(|| unknown("route", n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filters = inst
            .filter_rules
            .iter()
            .map(|n| {
                task.filters
                    .get(n)
                    .map(|r| (n.as_str(), r))
                    .ok_or_else(|| unknown("filter", n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut filters = filters;
        for f in source_filters {
            let same = |r: &&crate::config::task::FilterRule| {
                r.schema_pattern == f.schema_pattern && r.table_pattern == f.table_pattern
            };
            if filters.iter().any(|(_, r)| same(r)) {
                tracing::warn!(schema = %f.schema_pattern, table = %f.table_pattern, "a source filter has the patterns of a task filter: the task's is used");
                continue;
            }
            filters.push(("source filter", f));
        }
        // A canonical config has folded black-white-list into block-allow-list; accept both.
        let ba_name = if inst.block_allow_list.is_empty() {
            &inst.black_white_list
        } else {
            &inst.block_allow_list
        };
        let ba = if ba_name.is_empty() {
            None
        } else {
            let list = task
                .block_allow_list
                .get(ba_name)
                .or_else(|| task.black_white_list.get(ba_name))
                .ok_or_else(|| unknown("block-allow-list", ba_name))?;
            Some(balist::BaFilter::new(ba_name, list, cs)?)
        };
        Ok(TableRules {
            ba,
            router: route::Router::new(routes, cs)?,
            filter: filter::BinlogFilter::new(filters, cs)?,
            meta_schema: task.meta_schema.clone(),
            case_sensitive: cs,
        })
    }

    fn is_meta_schema(&self, schema: &str) -> bool {
        if self.meta_schema.is_empty() {
            return false;
        }
        if self.case_sensitive {
            schema == self.meta_schema
        } else {
            schema.to_lowercase() == self.meta_schema.to_lowercase()
        }
    }

    /// Block-allow-list: is upstream table schema.table replicated? System schemas (mysql,
    /// information_schema, performance_schema, sys, …) and the task's meta-schema are never
    /// replicated.
    pub fn allow_table(&self, schema: &str, table: &str) -> bool {
        if is_system_schema(schema) || self.is_meta_schema(schema) {
            return false;
        }
        self.ba.as_ref().is_none_or(|ba| ba.matches(schema, table))
    }

    /// Block-allow-list for schema-level statements (CREATE/DROP/ALTER DATABASE). As in DM, only
    /// `do-dbs` / `ignore-dbs` decide; a list with only `do-tables` allows every schema.
    pub fn allow_schema(&self, schema: &str) -> bool {
        self.allow_table(schema, "")
    }

    /// Route: the downstream (schema, table) for upstream schema.table. `table == ""` routes a
    /// schema (for schema-level DDL). No matching rule = unchanged. When two rules of the deciding
    /// level match (DM refuses that), the first in the instance's `route-rules` order wins; use
    /// [`TableRules::route_checked`] to get DM's error instead.
    pub fn route(&self, schema: &str, table: &str) -> (String, String) {
        self.router.route(schema, table)
    }

    /// [`TableRules::route`], erroring like DM when several rules of the deciding level match.
    pub fn route_checked(&self, schema: &str, table: &str) -> Result<(String, String), RulesError> {
        self.router.route_checked(schema, table)
    }

    /// Binlog event filter (`filters` / `filter-rules`): true = the event must be skipped. `sql`
    /// is the DDL text for DDL events, None for row events.
    pub fn skip_event(
        &self,
        schema: &str,
        table: &str,
        event: EventType,
        sql: Option<&str>,
    ) -> bool {
        self.filter.skip(schema, table, event, sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::task::FilterRule;

    const TASK: &str = r#"
name: t
task-mode: incremental
case-sensitive: false
meta-schema: dm_meta
target-database: {host: 127.0.0.1, port: 3306, user: root, password: ""}
mysql-instances:
  - source-id: s1
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
    route-rules: [sharded, schema]
    filter-rules: [no-drop]
    block-allow-list: bal
  - source-id: s2
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
routes:
  sharded: {schema-pattern: "shard_*", table-pattern: "orders_*", target-schema: shop, target-table: orders}
  schema: {schema-pattern: "shard_*", target-schema: shop}
filters:
  no-drop: {schema-pattern: "shard_*", events: ["drop table", "truncate table"], action: Ignore}
block-allow-list:
  bal: {do-dbs: ["shard_*", "~^keep"], ignore-tables: [{db-name: "shard_*", tbl-name: "tmp*"}]}
"#;

    fn rules(source: &str) -> TableRules {
        let loaded = crate::config::parse_task(TASK.as_bytes()).expect("task parses");
        TableRules::new(&loaded.config, source).expect("rules build")
    }

    #[test]
    fn instance_with_all_rules() {
        let r = rules("s1");
        let allow: &[(&str, &str, bool)] = &[
            ("shard_1", "orders_1", true),
            ("shard_1", "tmp_x", false),
            ("keeper", "x", true),
            ("other", "x", false),
            ("mysql", "user", false),
            ("INFORMATION_SCHEMA", "tables", false),
            ("dm_meta", "x", false),
            ("DM_META", "x", false),
        ];
        for &(s, t, want) in allow {
            assert_eq!(r.allow_table(s, t), want, "{s}.{t}");
        }
        assert!(r.allow_schema("shard_9"));
        assert!(!r.allow_schema("other"));
        assert!(!r.allow_schema("sys"));
        assert_eq!(
            r.route("shard_1", "orders_7"),
            ("shop".into(), "orders".into())
        );
        assert_eq!(r.route("Shard_1", "items"), ("shop".into(), "items".into()));
        assert_eq!(r.route("shard_1", ""), ("shop".into(), "".into()));
        assert!(r.skip_event(
            "shard_1",
            "orders_1",
            EventType::DropTable,
            Some("DROP TABLE x")
        ));
        assert!(!r.skip_event("shard_1", "orders_1", EventType::Insert, None));
        assert!(!r.skip_event("other", "t", EventType::DropTable, Some("DROP TABLE t")));
    }

    /// DM's source-file `filters` join the task's; a task rule with the same patterns wins.
    #[test]
    fn source_filters_join_the_tasks_and_the_task_wins_on_the_same_patterns() {
        let loaded = crate::config::parse_task(TASK.as_bytes()).expect("task parses");
        let rule = |schema: &str, table: &str, sql: &str, action: &str| FilterRule {
            schema_pattern: schema.into(),
            table_pattern: table.into(),
            events: Vec::new(),
            sql_pattern: vec![sql.into()],
            action: action.into(),
        };
        let source = [
            // New patterns: joins.
            rule(
                "shard_*",
                "orders_1",
                "^ALTER TABLE .* ADD COLUMN aaa",
                "Ignore",
            ),
            // The task's `no-drop` patterns (schema only): the task's rule is kept instead.
            rule("shard_*", "", "^CREATE", "Ignore"),
        ];
        let r = TableRules::with_source_filters(&loaded.config, "s1", &source).expect("build");
        let cases: &[(&str, &str, EventType, &str, bool)] = &[
            (
                "shard_1",
                "orders_1",
                EventType::AlterTable,
                "ALTER TABLE t ADD COLUMN aaa INT",
                true,
            ),
            (
                "shard_1",
                "orders_2",
                EventType::AlterTable,
                "ALTER TABLE t ADD COLUMN aaa INT",
                false,
            ),
            (
                "shard_1",
                "orders_1",
                EventType::AlterTable,
                "ALTER TABLE t ADD COLUMN bbb INT",
                false,
            ),
            (
                "shard_1",
                "orders_1",
                EventType::CreateTable,
                "CREATE TABLE x (a INT)",
                false,
            ),
            (
                "shard_1",
                "orders_1",
                EventType::DropTable,
                "DROP TABLE x",
                true,
            ),
        ];
        for &(s, t, ev, sql, want) in cases {
            assert_eq!(r.skip_event(s, t, ev, Some(sql)), want, "{s}.{t} {sql}");
        }
        // Without source filters: as `new`.
        let plain = TableRules::with_source_filters(&loaded.config, "s1", &[]).expect("build");
        assert!(!plain.skip_event(
            "shard_1",
            "orders_1",
            EventType::AlterTable,
            Some("ALTER TABLE t ADD COLUMN aaa INT")
        ));
    }

    #[test]
    fn instance_without_rules_allows_all_but_system() {
        let r = rules("s2");
        assert!(r.allow_table("anything", "t"));
        assert!(r.allow_schema("anything"));
        assert!(!r.allow_table("performance_schema", "t"));
        assert!(!r.allow_schema("mysql"));
        assert_eq!(
            r.route("shard_1", "orders_1"),
            ("shard_1".into(), "orders_1".into())
        );
        assert!(!r.skip_event("shard_1", "t", EventType::DropTable, None));
    }

    #[test]
    fn unknown_source_is_an_error() {
        let loaded = crate::config::parse_task(TASK.as_bytes()).expect("task parses");
        assert!(matches!(
            TableRules::new(&loaded.config, "nope"),
            Err(RulesError::NoSuchSource(_))
        ));
    }

    #[test]
    fn table_rules_are_send_sync_clone() {
        fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync>() {}
        assert_traits::<TableRules>();
    }
}
