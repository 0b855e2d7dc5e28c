//! Per-row rules of one source of a task: column mapping ([`super::column_mapping`]) then
//! expression filters ([`super::expr_filter`]), in DM's order (DM's syncer maps the rows of an
//! event first and evaluates the filters on the mapped values).
//!
//! Called by the sync unit for every row change of a table [`RowRules::applies`] to, and by the
//! load unit for every dumped row ([`RowRules::map_row`]: DM's loader applied column mapping
//! only — expression filters are an incremental-replication feature in DM). Built from the
//! canonical task config with [`RowRules::new`]; a changed task (update-task) builds a new one.
//!
//! The rules of a table are bound to its column list the first time a row of that column list
//! is seen (target column position, partition-id parts, filter expressions bound to column
//! indices) and kept until the table's columns change. Pure apart from a `tracing` warning when a
//! filter names a column the table lacks (that filter then never matches, as in DM). Never
//! panics on input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::RulesError;
use super::column_mapping::{ColumnMapping, TableMapping};
use super::expr_filter::{BoundFilter, ExprFilter};
use crate::config::task::TaskConfig;
use crate::dml::Value;

/// An update's (before, after) rows, or `None` when a filter skipped it.
pub type UpdateOutcome = Option<(Vec<Value>, Vec<Value>)>;

/// The rules of one table for one column list.
#[derive(Debug)]
struct Bound {
    columns: Vec<String>,
    mapping: Result<Option<TableMapping>, RulesError>,
    filter: BoundFilter,
}

/// Column mapping and expression filters of one source of a task.
#[derive(Debug)]
pub struct RowRules {
    mapping: ColumnMapping,
    filter: ExprFilter,
    cache: Mutex<HashMap<(String, String), Arc<Bound>>>,
}

impl RowRules {
    /// The rules of instance `source_id` of a loaded (canonical) task: its
    /// `column-mapping-rules` and `expression-filters`, and the task's `case-sensitive`.
    pub fn new(task: &TaskConfig, source_id: &str) -> Result<RowRules, RulesError> {
        let inst = task
            .instances()
            .find(|i| i.source_id == source_id)
            .ok_or_else(|| RulesError::NoSuchSource(source_id.to_string()))?;
        let unknown = |kind, name: &String| RulesError::UnknownRule {
            kind,
            name: name.clone(),
        };
        let maps = inst
            .column_mapping_rules
            .iter()
            .map(|n| {
                task.column_mappings
                    .get(n)
                    .map(|r| (n.as_str(), r))
                    .ok_or_else(|| unknown("column mapping", n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let filters = inst
            .expression_filters
            .iter()
            .map(|n| {
                task.expression_filter
                    .get(n)
                    .map(|r| (n.as_str(), r))
                    .ok_or_else(|| unknown("expression-filter", n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RowRules {
            mapping: ColumnMapping::new(maps, task.case_sensitive)?,
            filter: ExprFilter::new(filters)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// No column mapping and no expression filter at all.
    pub fn is_empty(&self) -> bool {
        self.mapping.is_empty() && self.filter.is_empty()
    }

    /// Does any column mapping or expression filter apply to upstream `schema.table`?
    pub fn applies(&self, schema: &str, table: &str) -> bool {
        self.mapping.applies(schema, table) || self.filter.applies(schema, table)
    }

    /// Does a column mapping apply to upstream `schema.table`? (What the load unit needs.)
    pub fn maps(&self, schema: &str, table: &str) -> bool {
        self.mapping.applies(schema, table)
    }

    fn bound(&self, schema: &str, table: &str, columns: &[String]) -> Arc<Bound> {
        let key = (schema.to_string(), table.to_string());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = cache.get(&key)
            && b.columns == columns
        {
            return b.clone();
        }
        let filter = self.filter.bind(schema, table, columns);
        for (rule, column) in &filter.unknown {
            tracing::warn!(
                rule = %rule,
                table = %format!("`{schema}`.`{table}`"),
                column = %column,
                "expression-filter names a column the table does not have: the filter never matches (as in DM)"
            );
        }
        let b = Arc::new(Bound {
            columns: columns.to_vec(),
            mapping: self.mapping.resolve(schema, table, columns),
            filter,
        });
        cache.insert(key, b.clone());
        b
    }

    fn map(b: &Bound, schema: &str, table: &str, row: &mut [Value]) -> Result<(), RulesError> {
        match &b.mapping {
            Ok(Some(m)) => m.apply(schema, table, row),
            Ok(None) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Column mapping only, in place (the load unit's use). `columns` are the row's column
    /// names in value order.
    pub fn map_row(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
        row: &mut [Value],
    ) -> Result<(), RulesError> {
        if !self.mapping.applies(schema, table) {
            return Ok(());
        }
        let b = self.bound(schema, table, columns);
        Self::map(&b, schema, table, row)
    }

    /// An inserted row: mapped, or `None` when a filter skips it.
    pub fn on_insert(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
        mut row: Vec<Value>,
    ) -> Result<Option<Vec<Value>>, RulesError> {
        let b = self.bound(schema, table, columns);
        Self::map(&b, schema, table, &mut row)?;
        Ok((!b.filter.skip_insert(&row)?).then_some(row))
    }

    /// An updated row (before and after images): mapped, or `None` when a filter skips it.
    pub fn on_update(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
        mut before: Vec<Value>,
        mut after: Vec<Value>,
    ) -> Result<UpdateOutcome, RulesError> {
        let b = self.bound(schema, table, columns);
        Self::map(&b, schema, table, &mut before)?;
        Self::map(&b, schema, table, &mut after)?;
        Ok((!b.filter.skip_update(&before, &after)?).then_some((before, after)))
    }

    /// A deleted row: mapped, or `None` when a filter skips it.
    pub fn on_delete(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
        mut row: Vec<Value>,
    ) -> Result<Option<Vec<Value>>, RulesError> {
        let b = self.bound(schema, table, columns);
        Self::map(&b, schema, table, &mut row)?;
        Ok((!b.filter.skip_delete(&row)?).then_some(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = r#"
name: t
task-mode: incremental
target-database: {host: 127.0.0.1, port: 3306, user: root, password: ""}
mysql-instances:
  - source-id: s1
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
    column-mapping-rules: [pid, pre]
    expression-filters: [even, upd, del]
  - source-id: s2
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
column-mappings:
  pid: {schema-pattern: "shard_*", table-pattern: "t_*", source-column: id, target-column: id, expression: "partition id", arguments: ["1", "shard", "t", "_"]}
  pre: {schema-pattern: "names", table-pattern: "n", source-column: name, target-column: name, expression: "add prefix", arguments: ["up:"]}
expression-filter:
  even: {schema: shard_1, table: t_2, insert-value-expr: "c % 2 = 0"}
  upd: {schema: shard_1, table: t_2, update-new-value-expr: "c > 100"}
  del: {schema: names, table: n, delete-value-expr: "name = 'up:keep'"}
"#;

    fn rules(src: &str) -> RowRules {
        let loaded = crate::config::parse_task(TASK.as_bytes()).expect("task parses");
        RowRules::new(&loaded.config, src).expect("rules build")
    }

    fn cols(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    const BASE: i64 = (1 << 59) | (1 << 52) | (2 << 44);

    #[test]
    fn maps_then_filters() {
        let r = rules("s1");
        let c = cols(&["id", "c"]);
        assert!(r.applies("shard_1", "t_2"));
        assert!(r.applies("names", "n"));
        assert!(!r.applies("other", "x"));
        assert_eq!(
            r.on_insert("shard_1", "t_2", &c, vec![Value::Int(5), Value::Int(3)])
                .ok(),
            Some(Some(vec![Value::Int(BASE | 5), Value::Int(3)]))
        );
        assert_eq!(
            r.on_insert("shard_1", "t_2", &c, vec![Value::Int(5), Value::Int(4)])
                .ok(),
            Some(None)
        );
        assert_eq!(
            r.on_update(
                "shard_1",
                "t_2",
                &c,
                vec![Value::Int(5), Value::Int(1)],
                vec![Value::Int(5), Value::Int(200)]
            )
            .ok(),
            Some(None)
        );
        assert_eq!(
            r.on_update(
                "shard_1",
                "t_2",
                &c,
                vec![Value::Int(5), Value::Int(1)],
                vec![Value::Int(6), Value::Int(2)]
            )
            .ok(),
            Some(Some((
                vec![Value::Int(BASE | 5), Value::Int(1)],
                vec![Value::Int(BASE | 6), Value::Int(2)]
            )))
        );
        // The filter sees the mapped value.
        let n = cols(&["id", "name"]);
        let b = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        assert_eq!(
            r.on_delete("names", "n", &n, vec![Value::Int(1), b("keep")])
                .ok(),
            Some(None)
        );
        assert_eq!(
            r.on_delete("names", "n", &n, vec![Value::Int(1), b("x")])
                .ok(),
            Some(Some(vec![Value::Int(1), b("up:x")]))
        );
        // map_row: mapping only, no filter.
        let mut row = vec![Value::Int(1), b("keep")];
        r.map_row("names", "n", &n, &mut row).expect("maps");
        assert_eq!(row, vec![Value::Int(1), b("up:keep")]);
    }

    #[test]
    fn mapping_errors_surface_on_every_row() {
        let r = rules("s1");
        let c = cols(&["id", "c"]);
        for _ in 0..2 {
            let e = r
                .on_insert("shard_x", "t_1", &c, vec![Value::Int(1), Value::Int(1)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not an integer"), "{e}");
        }
        let e = r
            .on_insert(
                "shard_1",
                "t_1",
                &c,
                vec![Value::Int(1 << 44), Value::Int(1)],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("id must less than 17592186044416"), "{e}");
        // A column list without the target column; then the right one again.
        let e = r
            .on_insert("shard_1", "t_1", &cols(&["x"]), vec![Value::Int(1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("target column \"id\" not found"), "{e}");
        assert!(
            r.on_insert("shard_1", "t_1", &c, vec![Value::Int(1), Value::Int(1)])
                .is_ok()
        );
    }

    #[test]
    fn instance_without_rules_passes_everything() {
        let r = rules("s2");
        assert!(r.is_empty());
        assert!(!r.applies("shard_1", "t_2"));
        let row = vec![Value::Int(5), Value::Int(4)];
        assert_eq!(
            r.on_insert("shard_1", "t_2", &cols(&["id", "c"]), row.clone())
                .ok(),
            Some(Some(row))
        );
    }

    #[test]
    fn row_rules_are_send_sync() {
        fn assert_traits<T: Send + Sync>() {}
        assert_traits::<RowRules>();
    }
}
