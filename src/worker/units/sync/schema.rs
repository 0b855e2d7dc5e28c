//! Placeholder of the schema tracker (replaced by the real module on merge).
#![allow(dead_code)]
use std::collections::BTreeMap;

use crate::binlog::rows::TableMeta;
use crate::rules::TableName;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedColumn {
    pub name: String,
    pub unsigned: bool,
}
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedTable {
    pub columns: Vec<TrackedColumn>,
}
#[derive(Debug, thiserror::Error)]
#[error("schema: {0}")]
pub struct SchemaError(String);
#[derive(Debug, thiserror::Error)]
#[error("column count differs: binlog {binlog}, tracked {tracked}")]
pub struct SchemaMismatch {
    pub binlog: usize,
    pub tracked: usize,
}
impl TrackedTable {
    pub fn from_information_schema(rows: &[(String, String)]) -> TrackedTable {
        TrackedTable {
            columns: rows
                .iter()
                .map(|(n, t)| TrackedColumn {
                    name: n.clone(),
                    unsigned: t.to_ascii_lowercase().contains("unsigned"),
                })
                .collect(),
        }
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    pub fn from_json(s: &str) -> Result<TrackedTable, SchemaError> {
        serde_json::from_str(s).map_err(|e| SchemaError(e.to_string()))
    }
}
#[derive(Default)]
pub struct SchemaTracker {
    tables: BTreeMap<TableName, TrackedTable>,
}
#[derive(Default, Debug)]
pub struct DdlEffect {
    pub changed: Vec<TableName>,
    pub dropped: Vec<TableName>,
    pub unknown: Vec<TableName>,
}
impl SchemaTracker {
    pub fn get(&self, t: &TableName) -> Option<&TrackedTable> {
        self.tables.get(t)
    }
    pub fn set(&mut self, t: TableName, table: TrackedTable) {
        self.tables.insert(t, table);
    }
    pub fn forget(&mut self, t: &TableName) {
        self.tables.remove(t);
    }
    pub fn apply_ddl(
        &mut self,
        _sql: &str,
        _default_schema: &str,
    ) -> Result<DdlEffect, SchemaError> {
        Ok(DdlEffect::default())
    }
}
pub fn merge_into(meta: &mut TableMeta, tracked: &TrackedTable) -> Result<(), SchemaMismatch> {
    if meta.columns.len() != tracked.columns.len() {
        return Err(SchemaMismatch {
            binlog: meta.columns.len(),
            tracked: tracked.columns.len(),
        });
    }
    let minimal = meta.columns.iter().all(|c| c.name.is_none());
    for (c, t) in meta.columns.iter_mut().zip(&tracked.columns) {
        if c.name.is_none() {
            c.name = Some(t.name.clone());
        }
        if minimal {
            c.unsigned = t.unsigned;
        }
    }
    Ok(())
}
