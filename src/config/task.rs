//! The task file (`task.yaml`) as DM reads it: every key with DM's default, strict decoding
//! (unknown keys are code 20003), and DM's `adjust()` checks in DM's order, each failure carrying
//! DM's code and the line and column of the offending node.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use super::db::{DbConfig, Security};
use super::error::{ConfigError, Pos, code};
use super::yaml::{self as y, PosIndex};
use crate::password;

/// Longest source-id DM accepts (`MaxSourceIDLength`).
pub const MAX_SOURCE_ID_LEN: usize = 32;
/// Default downstream schema for checkpoints and other metadata.
pub const DEFAULT_META_SCHEMA: &str = "dm_meta";
/// The checking items `ignore-checking-items` may name: DM's (tiflow HEAD
/// `dm/config/checking_item.go`, its Lightning items and the additional `primary_key`
/// included) and dm-rs's own `binlog_row_metadata`. Naming an item dm-rs does not run (the
/// Lightning ones, `online_ddl`) is accepted as DM accepts it: there is nothing to skip.
pub const CHECKING_ITEMS: &[&str] = &[
    "all",
    "dump_privilege",
    "replication_privilege",
    "version",
    "server_id",
    "binlog_enable",
    "binlog_format",
    "binlog_row_image",
    "table_schema",
    "schema_of_shard_tables",
    "auto_increment_ID",
    "online_ddl",
    "binlog_db",
    "meta_position",
    "conn_number",
    "target_privilege",
    "empty_region",
    "region_distribution",
    "downstream_version",
    "free_space",
    "downstream_mutex_features",
    "downstream_table_empty",
    "primary_key",
    "binlog_row_metadata",
];
/// The task modes DM accepts (`dump`, `load` and `load&sync` are DM v7's split modes; dm-rs
/// refuses them at start-task, see [`TaskConfig::unsupported`]).
pub const TASK_MODES: &[&str] = &["full", "incremental", "all", "dump", "load", "load&sync"];
/// `binlog-name` that stands in for the meta of a task started with `--start-time` (DM's
/// `FakeBinlogName`): the meta checks pass, and the master replaces it with the position the
/// time resolves to.
pub const START_TIME_BINLOG_NAME: &str = "start-task with --start-time";
/// Binlog event types a filter rule may name (case-insensitive): tiflow HEAD's binlog-filter
/// names (its `toEventType`), plus dm-rs's earlier `alter view` and `null event`.
pub const FILTER_EVENTS: &[&str] = &[
    "all",
    "all dml",
    "all ddl",
    "none",
    "none dml",
    "none ddl",
    "insert",
    "update",
    "delete",
    "create database",
    "drop database",
    "alter database",
    "create schema",
    "drop schema",
    "alter schema",
    "create table",
    "create index",
    "drop table",
    "truncate table",
    "rename table",
    "drop index",
    "alter table",
    "create view",
    "drop view",
    "alter view",
    "null event",
    "add table partition",
    "drop table partition",
    "truncate table partition",
    "incompatible ddl changes",
    "value range decrease",
    "precision decrease",
    "modify column",
    "rename column",
    "rename index",
    "drop column",
    "drop primary key",
    "drop unique key",
    "modify default value",
    "modify constraint",
    "modify columns order",
    "modify charset",
    "modify collation",
    "remove auto increment",
    "modify storage engine",
    "reorganize table partition",
    "rebuild table partition",
    "coalesce table partition",
    "split table partition",
    "exchange table partition",
    "add foreign key",
    "drop foreign key",
    "modify schema charset and collate",
    "modify table charset and collate",
    "modify table comment",
    "recover table",
    "alter table partitioning",
    "remove table partitioning",
    "add column",
    "set default value",
    "rebase auto id",
    "add primary key",
    "alter index visibility",
    "alter ttl info",
    "alter ttl remove",
    "multi schema change",
];

/// Why a filter event DM accepts matches nothing in dm-rs (None: it can match).
pub fn unmatched_event(event: &str) -> Option<&'static str> {
    match event {
        "drop unique key" => Some(
            "dm-rs's schema tracker does not keep key flags, so a MODIFY / CHANGE COLUMN that drops a column's UNIQUE is filed under another event",
        ),
        "add table partition"
        | "add foreign key"
        | "drop foreign key"
        | "split table partition"
        | "modify schema charset and collate"
        | "modify table charset and collate"
        | "modify table comment"
        | "recover table"
        | "alter table partitioning"
        | "remove table partitioning"
        | "add column"
        | "set default value"
        | "rebase auto id"
        | "add primary key"
        | "alter index visibility"
        | "alter ttl info"
        | "alter ttl remove"
        | "multi schema change" => Some(
            "DM produces it only from TiDB's DDL jobs, never from a MySQL/MariaDB binlog (ALTER TABLE … ADD COLUMN is \"alter table\")",
        ),
        "create view" | "drop view" | "alter view" => {
            Some("views are not replicated by the sync unit (only sql-pattern sees them)")
        }
        _ => None,
    }
}

/// Where an incremental task starts when it has no checkpoint yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Meta {
    #[serde(deserialize_with = "y::string")]
    pub binlog_name: String,
    pub binlog_pos: u32,
    #[serde(deserialize_with = "y::string")]
    pub binlog_gtid: String,
}

/// Dump unit settings (DM's `MydumperConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MydumperConfig {
    #[serde(deserialize_with = "y::string")]
    pub mydumper_path: String,
    pub threads: i64,
    #[serde(deserialize_with = "y::string")]
    pub chunk_filesize: String,
    pub statement_size: u64,
    pub rows: u64,
    #[serde(deserialize_with = "y::string")]
    pub r#where: String,
    #[serde(deserialize_with = "y::boolean")]
    pub skip_tz_utc: bool,
    #[serde(deserialize_with = "y::string")]
    pub extra_args: String,
}

impl Default for MydumperConfig {
    fn default() -> Self {
        MydumperConfig {
            mydumper_path: "./bin/mydumper".into(),
            threads: 4,
            chunk_filesize: "64".into(),
            statement_size: 0,
            rows: 0,
            r#where: String::new(),
            skip_tz_utc: true,
            extra_args: String::new(),
        }
    }
}

/// Load unit settings (DM's `LoaderConfig`).
///
/// `import-mode` `logical` (DM's default; `sql` and `loader` are its old spellings) is what
/// dm-rs's load unit does; `physical` and `import-into` are TiDB Lightning backends and refused
/// ([`TaskConfig::unsupported`]). `on-duplicate-logical` (`replace`, DM's default; `error`;
/// `ignore`; the deprecated `on-duplicate` is folded into it) decides what a dumped row whose
/// key already exists downstream does. The `*-physical` keys, `range-concurrency`,
/// `compress-kv-pairs`, `pd-addr` and `sorting-dir-physical` only apply to the physical mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LoaderConfig {
    pub pool_size: i64,
    #[serde(deserialize_with = "y::string")]
    pub dir: String,
    #[serde(deserialize_with = "y::string")]
    pub sorting_dir_physical: String,
    #[serde(deserialize_with = "y::string")]
    pub import_mode: String,
    /// Deprecated alias of `on-duplicate-logical` (folded into it by [`TaskConfig::adjust`]).
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub on_duplicate: String,
    #[serde(deserialize_with = "y::string")]
    pub on_duplicate_logical: String,
    #[serde(deserialize_with = "y::string")]
    pub on_duplicate_physical: String,
    #[serde(deserialize_with = "y::string")]
    pub disk_quota_physical: String,
    #[serde(deserialize_with = "y::string")]
    pub checksum_physical: String,
    #[serde(deserialize_with = "y::string")]
    pub analyze: String,
    pub range_concurrency: i64,
    #[serde(deserialize_with = "y::string")]
    pub compress_kv_pairs: String,
    #[serde(deserialize_with = "y::string")]
    pub pd_addr: String,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            pool_size: 16,
            dir: "./dumped_data".into(),
            sorting_dir_physical: String::new(),
            import_mode: "logical".into(),
            on_duplicate: String::new(),
            // Filled in by `adjust` (after the deprecated `on-duplicate`): `replace`.
            on_duplicate_logical: String::new(),
            on_duplicate_physical: String::new(),
            disk_quota_physical: String::new(),
            checksum_physical: String::new(),
            analyze: String::new(),
            range_concurrency: 0,
            compress_kv_pairs: String::new(),
            pd_addr: String::new(),
        }
    }
}

impl LoaderConfig {
    /// DM's `LoaderConfig.adjust`: defaults and the allowed values of the mode keys.
    fn adjust(&mut self) -> Result<(), (&'static str, u32, String)> {
        let mode = self.import_mode.to_ascii_lowercase();
        self.import_mode = match mode.as_str() {
            "" | "sql" | "loader" => "logical".into(),
            _ => mode,
        };
        if !matches!(
            self.import_mode.as_str(),
            "logical" | "physical" | "import-into"
        ) {
            return Err((
                "import-mode",
                code::LOAD_MODE,
                format!("invalid load mode '{}'", self.import_mode),
            ));
        }
        if self.pool_size == 0 {
            self.pool_size = 16;
        }
        if self.on_duplicate_logical.is_empty() {
            self.on_duplicate_logical = std::mem::take(&mut self.on_duplicate);
        }
        self.on_duplicate.clear();
        if self.on_duplicate_logical.is_empty() {
            self.on_duplicate_logical = "replace".into();
        }
        self.on_duplicate_logical = self.on_duplicate_logical.to_ascii_lowercase();
        if !matches!(
            self.on_duplicate_logical.as_str(),
            "replace" | "error" | "ignore"
        ) {
            return Err((
                "on-duplicate-logical",
                code::LOAD_DUPLICATE,
                format!(
                    "invalid load on-duplicate-logical or on-duplicate option '{}'",
                    self.on_duplicate_logical
                ),
            ));
        }
        let level = |v: &mut String, default: &str, key: &'static str, c: u32, what: &str| {
            if v.is_empty() {
                *v = default.into();
            }
            *v = v.to_ascii_lowercase();
            if matches!(v.as_str(), "required" | "optional" | "off") {
                Ok(())
            } else {
                Err((key, c, format!("invalid load {what} option '{v}'")))
            }
        };
        if self.on_duplicate_physical.is_empty() {
            self.on_duplicate_physical = "none".into();
        }
        self.on_duplicate_physical = self.on_duplicate_physical.to_ascii_lowercase();
        if !matches!(self.on_duplicate_physical.as_str(), "none" | "manual") {
            return Err((
                "on-duplicate-physical",
                code::LOAD_DUPLICATE_PHYSICAL,
                format!(
                    "invalid load on-duplicate-physical option '{}'",
                    self.on_duplicate_physical
                ),
            ));
        }
        level(
            &mut self.checksum_physical,
            "required",
            "checksum-physical",
            code::LOAD_CHECKSUM,
            "checksum-physical",
        )?;
        level(
            &mut self.analyze,
            "optional",
            "analyze",
            code::LOAD_ANALYZE,
            "analyze",
        )?;
        Ok(())
    }
}

/// Sync unit settings (DM's `SyncerConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SyncerConfig {
    #[serde(deserialize_with = "y::string")]
    pub meta_file: String,
    pub worker_count: i64,
    pub batch: i64,
    pub queue_size: i64,
    /// Seconds.
    pub checkpoint_flush_interval: i64,
    /// Merge the changes of one row within a batch into its final state (DM's compactor).
    #[serde(deserialize_with = "y::boolean")]
    pub compact: bool,
    /// Write consecutive changes of the same kind to one table as one multi-row statement.
    #[serde(deserialize_with = "y::boolean")]
    pub multiple_rows: bool,
    /// Deprecated in DM.
    pub max_retry: i64,
    #[serde(deserialize_with = "y::boolean")]
    pub auto_fix_gtid: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub enable_gtid: bool,
    /// Deprecated in DM: "no longer take effect".
    #[serde(deserialize_with = "y::boolean")]
    pub disable_detect: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub safe_mode: bool,
    /// How long safe mode lasts after a start (a Go duration; empty: 2 ×
    /// checkpoint-flush-interval, filled in by [`TaskConfig::adjust`]).
    #[serde(deserialize_with = "y::string")]
    pub safe_mode_duration: String,
    /// Deprecated in DM.
    #[serde(deserialize_with = "y::boolean")]
    pub enable_ansi_quotes: bool,
}

impl Default for SyncerConfig {
    fn default() -> Self {
        SyncerConfig {
            meta_file: String::new(),
            worker_count: 16,
            batch: 100,
            queue_size: 1024,
            checkpoint_flush_interval: 30,
            compact: false,
            multiple_rows: false,
            max_retry: 0,
            auto_fix_gtid: false,
            enable_gtid: false,
            disable_detect: false,
            safe_mode: false,
            safe_mode_duration: String::new(),
            enable_ansi_quotes: false,
        }
    }
}

impl SyncerConfig {
    /// `safe-mode-duration` as a duration (after [`TaskConfig::adjust`] it always parses).
    pub fn safe_mode_window(&self) -> std::time::Duration {
        super::source::parse_go_duration(&self.safe_mode_duration).unwrap_or_else(|| {
            std::time::Duration::from_secs(2 * self.checkpoint_flush_interval.max(1) as u64)
        })
    }
}

/// A continuous data validator's settings (DM's `ValidatorConfig`, `validators:`). dm-rs has
/// no validator: the keys are checked as DM checks them, and a task whose instance uses a
/// validator with a `mode` other than `none` is refused ([`TaskConfig::unsupported`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ValidatorConfig {
    #[serde(deserialize_with = "y::string")]
    pub mode: String,
    pub worker_count: i64,
    #[serde(deserialize_with = "y::string")]
    pub validate_interval: String,
    #[serde(deserialize_with = "y::string")]
    pub check_interval: String,
    #[serde(deserialize_with = "y::string")]
    pub row_error_delay: String,
    #[serde(deserialize_with = "y::string")]
    pub meta_flush_interval: String,
    pub batch_query_size: i64,
    #[serde(deserialize_with = "y::string")]
    pub max_pending_row_size: String,
    pub max_pending_row_count: i64,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            mode: "none".into(),
            worker_count: 0,
            validate_interval: String::new(),
            check_interval: String::new(),
            row_error_delay: String::new(),
            meta_flush_interval: String::new(),
            batch_query_size: 0,
            max_pending_row_size: String::new(),
            max_pending_row_count: 0,
        }
    }
}

impl ValidatorConfig {
    /// DM's `ValidatorConfig.Adjust`: the mode, DM's defaults, durations and the size.
    fn adjust(&mut self) -> Result<(), (&'static str, u32, String)> {
        if self.mode.is_empty() {
            self.mode = "none".into();
        }
        if !matches!(self.mode.as_str(), "none" | "fast" | "full") {
            return Err((
                "mode",
                code::VALIDATION_MODE,
                format!(
                    "invalid validation mode {:?} (use none, fast or full)",
                    self.mode
                ),
            ));
        }
        if self.worker_count <= 0 {
            self.worker_count = 4;
        }
        for (key, v, default) in [
            ("validate-interval", &mut self.validate_interval, "10s"),
            ("check-interval", &mut self.check_interval, "5s"),
            ("row-error-delay", &mut self.row_error_delay, "30m0s"),
            ("meta-flush-interval", &mut self.meta_flush_interval, "5m0s"),
        ] {
            if v.is_empty() || super::source::parse_go_duration(v).is_some_and(|d| d.is_zero()) {
                *v = default.into();
            } else if super::source::parse_go_duration(v).is_none() {
                return Err((
                    key,
                    code::YAML,
                    format!("{key}: {v:?} is not a duration (e.g. 10s, 5m, 1h30m)"),
                ));
            }
        }
        if self.batch_query_size == 0 {
            self.batch_query_size = 100;
        }
        if self.max_pending_row_size.is_empty() {
            self.max_pending_row_size = "500m".into();
        }
        if ram_in_bytes(&self.max_pending_row_size).is_none() {
            return Err((
                "max-pending-row-size",
                code::YAML,
                format!("invalid size: '{}'", self.max_pending_row_size),
            ));
        }
        if self.max_pending_row_count == 0 {
            self.max_pending_row_count = i64::from(i32::MAX);
        }
        Ok(())
    }
}

/// docker/go-units' `RAMInBytes`: a number with an optional binary unit (`k`, `kb`, `kib`,
/// `m`, `g`, `t`, `p`, any case); e.g. `500m`, `1.5GB`, `100`.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// DM's `experimental:` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ExperimentalConfig {
    /// Flush the checkpoint without blocking the sync unit; refused (see
    /// [`TaskConfig::unsupported`]).
    #[serde(deserialize_with = "y::boolean")]
    pub async_checkpoint_flush: bool,
}

/// A schema/table route rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RouteRule {
    #[serde(deserialize_with = "y::string")]
    pub schema_pattern: String,
    #[serde(deserialize_with = "y::string")]
    pub table_pattern: String,
    #[serde(deserialize_with = "y::string")]
    pub target_schema: String,
    #[serde(deserialize_with = "y::string")]
    pub target_table: String,
    /// DM v6's extended column from the table name (shard merges); refused
    /// ([`TaskConfig::unsupported`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract_table: Option<Extractor>,
    /// The same from the schema name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract_schema: Option<Extractor>,
    /// The same from the source id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract_source: Option<Extractor>,
}

/// An `extract-table` / `extract-schema` / `extract-source` of a route: a regular expression
/// over the name and the downstream column its first group fills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Extractor {
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub table_regexp: String,
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub schema_regexp: String,
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_regexp: String,
    #[serde(deserialize_with = "y::string")]
    pub target_column: String,
}

/// A binlog event filter rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FilterRule {
    #[serde(deserialize_with = "y::string")]
    pub schema_pattern: String,
    #[serde(deserialize_with = "y::string")]
    pub table_pattern: String,
    #[serde(deserialize_with = "y::strings")]
    pub events: Vec<String>,
    #[serde(deserialize_with = "y::strings")]
    pub sql_pattern: Vec<String>,
    #[serde(deserialize_with = "y::string")]
    pub action: String,
}

/// A column mapping rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ColumnMappingRule {
    #[serde(deserialize_with = "y::string")]
    pub schema_pattern: String,
    #[serde(deserialize_with = "y::string")]
    pub table_pattern: String,
    #[serde(deserialize_with = "y::string")]
    pub source_column: String,
    #[serde(deserialize_with = "y::string")]
    pub target_column: String,
    #[serde(deserialize_with = "y::string")]
    pub expression: String,
    #[serde(deserialize_with = "y::strings")]
    pub arguments: Vec<String>,
    #[serde(deserialize_with = "y::string")]
    pub create_table_query: String,
}

/// An expression filter: rows matching the SQL expression are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ExpressionFilter {
    #[serde(deserialize_with = "y::string")]
    pub schema: String,
    #[serde(deserialize_with = "y::string")]
    pub table: String,
    #[serde(deserialize_with = "y::string")]
    pub insert_value_expr: String,
    #[serde(deserialize_with = "y::string")]
    pub update_old_value_expr: String,
    #[serde(deserialize_with = "y::string")]
    pub update_new_value_expr: String,
    #[serde(deserialize_with = "y::string")]
    pub delete_value_expr: String,
}

/// A (db, table) pair in a block-allow-list; `~` starts a regular expression.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TableRef {
    #[serde(deserialize_with = "y::string")]
    pub db_name: String,
    #[serde(deserialize_with = "y::string")]
    pub tbl_name: String,
}

/// A block-allow-list (DM's `filter.Rules`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BaList {
    #[serde(deserialize_with = "y::map_or_null")]
    pub do_tables: Vec<TableRef>,
    #[serde(deserialize_with = "y::strings")]
    pub do_dbs: Vec<String>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub ignore_tables: Vec<TableRef>,
    #[serde(deserialize_with = "y::strings")]
    pub ignore_dbs: Vec<String>,
}

/// TiDB-specific load settings (Lightning backend).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TidbConfig {
    pub status_port: i64,
    #[serde(deserialize_with = "y::string")]
    pub pd_addr: String,
    #[serde(deserialize_with = "y::string")]
    pub backend: String,
}

/// One upstream source of a task (`mysql-instances[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MySqlInstance {
    #[serde(deserialize_with = "y::string")]
    pub source_id: String,
    pub meta: Option<Meta>,
    #[serde(deserialize_with = "y::strings")]
    pub filter_rules: Vec<String>,
    #[serde(deserialize_with = "y::strings")]
    pub column_mapping_rules: Vec<String>,
    #[serde(deserialize_with = "y::strings")]
    pub route_rules: Vec<String>,
    #[serde(deserialize_with = "y::strings")]
    pub expression_filters: Vec<String>,
    /// Deprecated alias of `block-allow-list`; folded into it by [`TaskConfig::adjust`].
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub black_white_list: String,
    #[serde(deserialize_with = "y::string")]
    pub block_allow_list: String,
    #[serde(deserialize_with = "y::string")]
    pub mydumper_config_name: String,
    pub mydumper: Option<MydumperConfig>,
    pub mydumper_thread: i64,
    #[serde(deserialize_with = "y::string")]
    pub loader_config_name: String,
    pub loader: Option<LoaderConfig>,
    pub loader_thread: i64,
    #[serde(deserialize_with = "y::string")]
    pub syncer_config_name: String,
    pub syncer: Option<SyncerConfig>,
    pub syncer_thread: i64,
    /// The name of a `validators:` entry (kept by name: DM has no inline form).
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub validator_config_name: String,
}

/// A whole task file. After [`TaskConfig::adjust`] the config is canonical: every instance carries
/// its effective mydumper/loader/syncer settings inline (named global unit configs and `*-thread`
/// overrides folded in and dropped), deprecated aliases folded into their successors, maps sorted.
/// Two canonical configs compare field by field, which is what the reconciler diffs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TaskConfig {
    #[serde(deserialize_with = "y::string")]
    pub name: String,
    #[serde(deserialize_with = "y::string")]
    pub task_mode: String,
    #[serde(deserialize_with = "y::boolean")]
    pub is_sharding: bool,
    #[serde(deserialize_with = "y::string")]
    pub shard_mode: String,
    /// Optimistic shard DDL: a conflicting DDL stops the task instead of waiting for the
    /// other tables (what dm-rs's optimistic mode always does).
    #[serde(deserialize_with = "y::boolean")]
    pub strict_optimistic_shard_mode: bool,
    #[serde(deserialize_with = "y::strings")]
    pub ignore_checking_items: Vec<String>,
    #[serde(deserialize_with = "y::string")]
    pub meta_schema: String,
    #[serde(deserialize_with = "y::boolean")]
    pub enable_heartbeat: bool,
    pub heartbeat_update_interval: i64,
    pub heartbeat_report_interval: i64,
    #[serde(deserialize_with = "y::string")]
    pub timezone: String,
    #[serde(deserialize_with = "y::boolean")]
    pub case_sensitive: bool,
    /// `loose` (DM's default: DDL runs as written) or `strict` (DM adds the upstream's
    /// default collation to CREATE statements; refused, see [`TaskConfig::unsupported`]).
    #[serde(rename = "collation_compatible", deserialize_with = "y::string")]
    pub collation_compatible: String,
    pub target_database: Option<DbConfig>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub mysql_instances: Vec<Option<MySqlInstance>>,
    #[serde(deserialize_with = "y::boolean")]
    pub online_ddl: bool,
    #[serde(deserialize_with = "y::strings")]
    pub shadow_table_rules: Vec<String>,
    #[serde(deserialize_with = "y::strings")]
    pub trash_table_rules: Vec<String>,
    #[serde(deserialize_with = "y::string")]
    pub online_ddl_scheme: String,
    #[serde(deserialize_with = "y::map_or_null")]
    pub routes: BTreeMap<String, RouteRule>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub filters: BTreeMap<String, FilterRule>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub column_mappings: BTreeMap<String, ColumnMappingRule>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub expression_filter: BTreeMap<String, ExpressionFilter>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub block_allow_list: BTreeMap<String, BaList>,
    /// Deprecated alias of `block-allow-list`, used only when that is empty.
    #[serde(
        deserialize_with = "y::map_or_null",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub black_white_list: BTreeMap<String, BaList>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub mydumpers: BTreeMap<String, MydumperConfig>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub loaders: BTreeMap<String, LoaderConfig>,
    #[serde(deserialize_with = "y::map_or_null")]
    pub syncers: BTreeMap<String, SyncerConfig>,
    /// Continuous validators by name (`mysql-instances[].validator-config-name`).
    #[serde(
        deserialize_with = "y::map_or_null",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub validators: BTreeMap<String, ValidatorConfig>,
    #[serde(deserialize_with = "y::boolean")]
    pub clean_dump_file: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub ansi_quotes: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub remove_meta: bool,
    pub tidb: Option<TidbConfig>,
    pub experimental: ExperimentalConfig,
    /// Where the loader found the keys [`TaskConfig::unsupported`] reports (not part of the
    /// config: never serialized, ignored by `==`).
    #[serde(skip)]
    pub positions: KeyPositions,
}

/// Line and column of some keys in the file a config was loaded from, for checks that run after
/// loading. Not part of the config's meaning: two values always compare equal, so the
/// reconciler's diffs and update-task's comparisons never see it.
#[derive(Debug, Clone, Default)]
pub struct KeyPositions(BTreeMap<String, Pos>);

impl KeyPositions {
    /// The position of a YAML path (e.g. `column-mappings`), when the loader recorded it.
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.0.get(path).copied()
    }

    fn record(&mut self, ix: &PosIndex, paths: &[&str]) {
        for p in paths {
            if let Some(pos) = ix.best(p) {
                self.0.insert((*p).to_string(), pos);
            }
        }
    }
}

impl PartialEq for KeyPositions {
    fn eq(&self, _: &KeyPositions) -> bool {
        true
    }
}

impl Eq for KeyPositions {}

/// The keys [`TaskConfig::unsupported`] may report, recorded by [`TaskConfig::adjust`].
const UNSUPPORTED_KEYS: &[&str] = &[
    "is-sharding",
    "shard-mode",
    "online-ddl",
    "online-ddl-scheme",
    "target-database.security.cert-allowed-cn",
    "task-mode",
    "collation_compatible",
    "validators",
    "experimental.async-checkpoint-flush",
];

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            name: String::new(),
            task_mode: String::new(),
            is_sharding: false,
            shard_mode: String::new(),
            strict_optimistic_shard_mode: false,
            ignore_checking_items: Vec::new(),
            meta_schema: DEFAULT_META_SCHEMA.into(),
            enable_heartbeat: false,
            heartbeat_update_interval: 1,
            heartbeat_report_interval: 10,
            timezone: String::new(),
            case_sensitive: false,
            collation_compatible: "loose".into(),
            target_database: None,
            mysql_instances: Vec::new(),
            online_ddl: false,
            shadow_table_rules: Vec::new(),
            trash_table_rules: Vec::new(),
            online_ddl_scheme: String::new(),
            routes: BTreeMap::new(),
            filters: BTreeMap::new(),
            column_mappings: BTreeMap::new(),
            expression_filter: BTreeMap::new(),
            block_allow_list: BTreeMap::new(),
            black_white_list: BTreeMap::new(),
            mydumpers: BTreeMap::new(),
            loaders: BTreeMap::new(),
            syncers: BTreeMap::new(),
            validators: BTreeMap::new(),
            clean_dump_file: true,
            ansi_quotes: false,
            remove_meta: false,
            tidb: None,
            experimental: ExperimentalConfig::default(),
            positions: KeyPositions::default(),
        }
    }
}

pub(super) fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    struct S(#[serde(deserialize_with = "y::string")] String);
    let m: Option<BTreeMap<String, S>> = Deserialize::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// An instance's effective unit config: the named global one (a missing name is `missing`'s
/// error), else the inline one, else DM's defaults.
fn resolve_unit<'a, T: Clone + Default>(
    name: &str,
    inline: &'a mut Option<T>,
    globals: &BTreeMap<String, T>,
    missing: impl FnOnce(&str) -> ConfigError,
) -> Result<&'a mut T, ConfigError> {
    if !name.is_empty() {
        *inline = Some(globals.get(name).cloned().ok_or_else(|| missing(name))?);
    }
    Ok(inline.get_or_insert_with(T::default))
}

fn err(ix: &PosIndex, path: &str, code: u32, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(code, msg).at(ix.best(path))
}

/// Compiles a block-allow-list / pattern entry: `~` starts a regular expression.
fn check_pattern(p: &str) -> Result<(), String> {
    if let Some(re) = p.strip_prefix('~') {
        regex::Regex::new(re).map_err(|e| format!("invalid regular expression {re:?}: {e}"))?;
    }
    Ok(())
}

/// Accepts what DM's chunk-filesize parser accepts: a size, optionally with a unit.
fn valid_chunk_filesize(s: &str) -> bool {
    let s = s.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && matches!(
            unit.trim().to_ascii_lowercase().as_str(),
            "" | "b"
                | "k"
                | "kb"
                | "kib"
                | "m"
                | "mb"
                | "mib"
                | "g"
                | "gb"
                | "gib"
                | "t"
                | "tb"
                | "tib"
        )
}

/// DM's grammar check of an expression-filter SQL expression (DM parses `SELECT <expr>` with
/// TiDB's parser): here the expression parser the sync unit evaluates with, so an unknown
/// function or a wrong argument count is refused too.
fn check_expression(expr: &str) -> Result<(), String> {
    crate::rules::expr_filter::check_expression(expr)
}

impl TaskConfig {
    /// DM's `adjust()`: fills defaults and runs every check in DM's order, stopping at the first
    /// failure. Deprecated settings are reset with a warning pushed onto `warnings`.
    pub fn adjust(&mut self, ix: &PosIndex, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        let present: Vec<&str> = UNSUPPORTED_KEYS
            .iter()
            .copied()
            .filter(|k| match k.rsplit_once('.') {
                Some((parent, key)) => ix.key(parent, key).is_some(),
                None => ix.key("", k).is_some(),
            })
            .collect();
        self.positions.record(ix, &present);
        if self.name.is_empty() {
            return Err(err(
                ix,
                "name",
                code::NO_NAME,
                "must specify a unique task name",
            ));
        }
        if !TASK_MODES.contains(&self.task_mode.as_str()) {
            return Err(err(
                ix,
                "task-mode",
                code::TASK_MODE,
                format!(
                    "please specify right task-mode, support `full`, `incremental`, `all`, `dump`, `load`, `load&sync` (got {:?})",
                    self.task_mode
                ),
            ));
        }
        if self.meta_schema.is_empty() {
            self.meta_schema = DEFAULT_META_SCHEMA.into();
        }
        if self.is_sharding && self.shard_mode.is_empty() {
            self.shard_mode = "pessimistic".into();
        }
        match self.shard_mode.as_str() {
            "" => {}
            "pessimistic" | "optimistic" => self.is_sharding = true,
            other => {
                return Err(err(
                    ix,
                    "shard-mode",
                    code::SHARD_MODE,
                    format!("shard mode {other:?} not supported (use pessimistic or optimistic)"),
                ));
            }
        }
        if self.strict_optimistic_shard_mode && self.shard_mode != "optimistic" {
            return Err(err(
                ix,
                "strict-optimistic-shard-mode",
                code::STRICT_OPTIMISTIC,
                "cannot enable `strict-optimistic-shard-mode` while `shard-mode` is not `optimistic`",
            ));
        }
        match self.collation_compatible.as_str() {
            "" => self.collation_compatible = "loose".into(),
            "loose" | "strict" => {}
            other => {
                return Err(err(
                    ix,
                    "collation_compatible",
                    code::COLLATION,
                    format!("collation compatible {other} not supported (use `loose` or `strict`)"),
                ));
            }
        }
        for (i, item) in self.ignore_checking_items.iter().enumerate() {
            if !CHECKING_ITEMS.contains(&item.as_str()) {
                return Err(err(
                    ix,
                    &format!("ignore-checking-items[{i}]"),
                    code::CHECK_ITEM,
                    format!(
                        "checking item {item:?} is not supported; supported: {}",
                        CHECKING_ITEMS.join(", ")
                    ),
                ));
            }
        }
        match self.online_ddl_scheme.as_str() {
            "" => {}
            "pt" | "gh-ost" => {
                self.online_ddl = true;
                warnings.push("online-ddl-scheme is deprecated; use online-ddl: true".into());
            }
            other => {
                return Err(err(
                    ix,
                    "online-ddl-scheme",
                    code::ONLINE_SCHEME,
                    format!("online scheme {other:?} not supported (use pt or gh-ost)"),
                ));
            }
        }
        if self.online_ddl {
            if self.shadow_table_rules.is_empty() {
                self.shadow_table_rules = vec!["^_(.+)_(?:new|gho)$".into()];
            }
            if self.trash_table_rules.is_empty() {
                self.trash_table_rules = vec!["^_(.+)_(?:ghc|del|old)$".into()];
            }
        }
        if self.enable_heartbeat
            || self.heartbeat_update_interval != 1
            || self.heartbeat_report_interval != 10
        {
            warnings
                .push("heartbeat settings are deprecated and were reset to their defaults".into());
            self.enable_heartbeat = false;
            self.heartbeat_update_interval = 1;
            self.heartbeat_report_interval = 10;
        }
        if !self.timezone.is_empty() {
            warnings.push("timezone is deprecated and was cleared".into());
            self.timezone.clear();
        }
        if self.remove_meta {
            warnings.push("remove-meta is deprecated; use `start-task --remove-meta`".into());
        }
        if self.target_database.is_none() {
            return Err(err(
                ix,
                "target-database",
                code::NO_TARGET_DB,
                "must specify target-database",
            ));
        }
        if let Some(sec) = self
            .target_database
            .as_mut()
            .and_then(|d| d.security.as_mut())
        {
            sec.fold_base64("target-database.security")
                .map_err(|e| e.at(ix.best("target-database.security")))?;
            sec.check_pairs("target-database.security")
                .map_err(|e| e.at(ix.best("target-database.security")))?;
        }
        if self.mysql_instances.is_empty() {
            return Err(err(
                ix,
                "mysql-instances",
                code::NO_INSTANCES,
                "must specify at least one mysql-instances",
            ));
        }
        self.check_expression_filters(ix)?;
        for (name, v) in self.validators.iter_mut() {
            v.adjust().map_err(|(key, c, msg)| {
                err(
                    ix,
                    &format!("validators.{name}.{key}"),
                    c,
                    format!("validators.{name}: {msg}"),
                )
            })?;
        }
        if self.block_allow_list.is_empty() && !self.black_white_list.is_empty() {
            self.block_allow_list = std::mem::take(&mut self.black_white_list);
            warnings.push("black-white-list is deprecated; use block-allow-list".into());
        }
        self.black_white_list.clear();

        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut duplicates: Vec<String> = Vec::new();
        let (mydumpers, loaders, syncers) = (
            self.mydumpers.clone(),
            self.loaders.clone(),
            self.syncers.clone(),
        );
        let known_routes: BTreeSet<String> = self.routes.keys().cloned().collect();
        let known_filters: BTreeSet<String> = self.filters.keys().cloned().collect();
        let known_mappings: BTreeSet<String> = self.column_mappings.keys().cloned().collect();
        let mysql_instances_len = self.mysql_instances.len();
        for i in 0..self.mysql_instances.len() {
            let p = format!("mysql-instances[{i}]");
            let Some(inst) = self.mysql_instances[i].as_mut() else {
                return Err(err(
                    ix,
                    &p,
                    code::INSTANCE_NIL,
                    "mysql instance config must specify",
                ));
            };
            if inst.source_id.is_empty() {
                return Err(err(
                    ix,
                    &format!("{p}.source-id"),
                    code::EMPTY_SOURCE_ID,
                    format!("mysql-instance({i}): empty source-id not valid"),
                ));
            }
            if let Some(meta) = &inst.meta
                && meta.binlog_name.is_empty()
                && meta.binlog_gtid.is_empty()
            {
                return Err(err(
                    ix,
                    &format!("{p}.meta"),
                    code::META_INVALID,
                    format!(
                        "must specify `binlog-name` without GTID enabled for the source or specify `binlog-gtid` with GTID enabled for the source (mysql-instance({i}) {})",
                        inst.source_id
                    ),
                ));
            }
            if let Some(meta) = &inst.meta
                && let Err(e) = meta.binlog_gtid.parse::<crate::binlog::GtidSet>()
            {
                return Err(err(
                    ix,
                    &format!("{p}.meta.binlog-gtid"),
                    code::META_INVALID,
                    format!("mysql-instance({i})'s meta binlog-gtid: {e}"),
                ));
            }
            for (name_key, inline_key, has_name, has_inline, c) in [
                (
                    "mydumper-config-name",
                    "mydumper",
                    !inst.mydumper_config_name.is_empty(),
                    inst.mydumper.is_some(),
                    code::MYDUMPER_CONFLICT,
                ),
                (
                    "loader-config-name",
                    "loader",
                    !inst.loader_config_name.is_empty(),
                    inst.loader.is_some(),
                    code::LOADER_CONFLICT,
                ),
                (
                    "syncer-config-name",
                    "syncer",
                    !inst.syncer_config_name.is_empty(),
                    inst.syncer.is_some(),
                    code::SYNCER_CONFLICT,
                ),
            ] {
                if has_name && has_inline {
                    return Err(err(
                        ix,
                        &format!("{p}.{inline_key}"),
                        c,
                        format!(
                            "mysql-instance({i}): {name_key} and {inline_key} should only specify one"
                        ),
                    ));
                }
            }
            if let Some(first) = seen.insert(inst.source_id.clone(), i) {
                return Err(err(
                    ix,
                    &format!("{p}.source-id"),
                    code::DUP_SOURCE_ID,
                    format!(
                        "mysql-instance ({first}) and ({i}) have same source-id ({})",
                        inst.source_id
                    ),
                ));
            }
            if self.task_mode == "incremental" && inst.meta.is_none() {
                return Err(err(
                    ix,
                    &p,
                    code::NO_META,
                    format!(
                        "mysql-instance({i}) must set meta for task-mode {}",
                        self.task_mode
                    ),
                ));
            }
            if self.task_mode != "incremental" && inst.meta.is_some() {
                warnings.push(format!(
                    "mysql-instance({i})'s meta is ignored for task-mode {}",
                    self.task_mode
                ));
            }
            for (key, names, c, global, known) in [
                (
                    "route-rules",
                    &inst.route_rules,
                    code::ROUTE_NOT_FOUND,
                    "routes",
                    &known_routes,
                ),
                (
                    "filter-rules",
                    &inst.filter_rules,
                    code::FILTER_NOT_FOUND,
                    "filters",
                    &known_filters,
                ),
                (
                    "column-mapping-rules",
                    &inst.column_mapping_rules,
                    code::COLUMN_MAPPING_NOT_FOUND,
                    "column-mappings",
                    &known_mappings,
                ),
            ] {
                for (k, n) in names.iter().enumerate() {
                    if !known.contains(n) {
                        return Err(err(
                            ix,
                            &format!("{p}.{key}[{k}]"),
                            c,
                            format!("mysql-instance({i})'s {key} {n:?} does not exist in {global}"),
                        ));
                    }
                }
            }
            if inst.block_allow_list.is_empty() && !inst.black_white_list.is_empty() {
                inst.block_allow_list = std::mem::take(&mut inst.black_white_list);
            }
            inst.black_white_list.clear();
            if !inst.block_allow_list.is_empty()
                && !self.block_allow_list.contains_key(&inst.block_allow_list)
            {
                return Err(err(
                    ix,
                    &format!("{p}.block-allow-list"),
                    code::BA_LIST_NOT_FOUND,
                    format!(
                        "mysql-instance({i})'s list {:?} does not exist in block-allow-list",
                        inst.block_allow_list
                    ),
                ));
            }
            // Unit configs: by name from the global maps, inline, or DM's defaults; then *-thread.
            let unit = |key: &'static str, c: u32, global: &'static str| {
                let path = format!("{p}.{key}-config-name");
                move |name: &str| {
                    err(
                        ix,
                        &path,
                        c,
                        format!(
                            "mysql-instance({i})'s {key} config {name:?} does not exist in {global}"
                        ),
                    )
                }
            };
            let dumper = resolve_unit(
                &inst.mydumper_config_name,
                &mut inst.mydumper,
                &mydumpers,
                unit("mydumper", code::MYDUMPER_NOT_FOUND, "mydumpers"),
            )?;
            if inst.mydumper_thread != 0 {
                dumper.threads = inst.mydumper_thread;
            }
            let loader = resolve_unit(
                &inst.loader_config_name,
                &mut inst.loader,
                &loaders,
                unit("loader", code::LOADER_NOT_FOUND, "loaders"),
            )?;
            if inst.loader_thread != 0 {
                loader.pool_size = inst.loader_thread;
            }
            loader.adjust().map_err(|(key, c, msg)| {
                let at = if inst.loader_config_name.is_empty() {
                    format!("{p}.loader.{key}")
                } else {
                    format!("loaders.{}.{key}", inst.loader_config_name)
                };
                err(ix, &at, c, msg)
            })?;
            let suffix = format!(".{}", self.name);
            if !loader.dir.ends_with(&suffix) {
                loader.dir.push_str(&suffix);
            }
            if mysql_instances_len > 1 && loader.import_mode == "import-into" {
                return Err(err(
                    ix,
                    &format!("{p}.loader-config-name"),
                    code::IMPORT_INTO_SHARDING,
                    "import-into mode does not support sharding (multi-source) scenario",
                ));
            }
            let syncer = resolve_unit(
                &inst.syncer_config_name,
                &mut inst.syncer,
                &syncers,
                unit("syncer", code::SYNCER_NOT_FOUND, "syncers"),
            )?;
            if syncer.queue_size == 0 {
                syncer.queue_size = 1024;
            }
            if syncer.checkpoint_flush_interval == 0 {
                syncer.checkpoint_flush_interval = 30;
            }
            if syncer.safe_mode_duration.is_empty() {
                syncer.safe_mode_duration = format!("{}s", 2 * syncer.checkpoint_flush_interval);
            }
            let syncer_at = |key: &str| {
                if inst.syncer_config_name.is_empty() {
                    format!("{p}.syncer.{key}")
                } else {
                    format!("syncers.{}.{key}", inst.syncer_config_name)
                }
            };
            match super::source::parse_go_duration(&syncer.safe_mode_duration) {
                None => {
                    return Err(err(
                        ix,
                        &syncer_at("safe-mode-duration"),
                        code::SAFE_MODE_DURATION,
                        format!(
                            "safe-mode-duration '{}' parsed failed: not a duration (e.g. 60s, 5m, 1h30m)",
                            syncer.safe_mode_duration
                        ),
                    ));
                }
                Some(d) if d.is_zero() && syncer.safe_mode => {
                    return Err(err(
                        ix,
                        &syncer_at("safe-mode-duration"),
                        code::SAFE_MODE_CONFLICT,
                        "safe-mode(true) conflicts with safe-mode-duration(0s)",
                    ));
                }
                Some(_) => {}
            }
            if inst.syncer_thread != 0 {
                syncer.worker_count = inst.syncer_thread;
            }
            if !inst.validator_config_name.is_empty()
                && !self.validators.contains_key(&inst.validator_config_name)
            {
                return Err(err(
                    ix,
                    &format!("{p}.validator-config-name"),
                    code::VALIDATOR_NOT_FOUND,
                    format!(
                        "mysql-instance({i})'s continuous validator config {} not exist",
                        inst.validator_config_name
                    ),
                ));
            }
            for (k, n) in inst.expression_filters.iter().enumerate() {
                if !self.expression_filter.contains_key(n) {
                    return Err(err(
                        ix,
                        &format!("{p}.expression-filters[{k}]"),
                        code::EXPR_NOT_FOUND,
                        format!(
                            "mysql-instance({i})'s expression-filters {n:?} does not exist in expression-filter"
                        ),
                    ));
                }
            }
            if matches!(self.task_mode.as_str(), "full" | "all")
                && inst
                    .mydumper
                    .as_ref()
                    .is_some_and(|m| m.mydumper_path.is_empty())
            {
                return Err(err(
                    ix,
                    &format!("{p}.mydumper"),
                    code::MYDUMPER_PATH,
                    format!(
                        "mysql-instance({i}) must specify `mydumper-path` when task-mode is all or full"
                    ),
                ));
            }
            for (key, names) in [
                ("route-rules", &inst.route_rules),
                ("filter-rules", &inst.filter_rules),
                ("column-mapping-rules", &inst.column_mapping_rules),
                ("expression-filters", &inst.expression_filters),
            ] {
                let mut set = BTreeSet::new();
                for n in names {
                    if !set.insert(n) {
                        duplicates.push(format!("mysql-instance({i})'s {key}: {n}"));
                    }
                }
            }
        }
        if !duplicates.is_empty() {
            let first = duplicates[0].clone();
            let inst_no: usize = first
                .trim_start_matches("mysql-instance(")
                .split(')')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Err(err(
                ix,
                &format!("mysql-instances[{inst_no}]"),
                code::DUPLICATE_ITEM,
                format!(
                    "the following mysql configs have duplicate items, please remove the duplicates: {}",
                    duplicates.join("; ")
                ),
            ));
        }
        self.check_unused_globals(ix)?;
        self.check_subtasks(ix, warnings)?;
        // Canonical form: each instance carries its effective unit settings inline, so the named
        // global unit configs and the *-thread overrides have been folded in and are dropped.
        for inst in self.mysql_instances.iter_mut().flatten() {
            inst.mydumper_config_name.clear();
            inst.loader_config_name.clear();
            inst.syncer_config_name.clear();
            inst.mydumper_thread = 0;
            inst.loader_thread = 0;
            inst.syncer_thread = 0;
        }
        self.mydumpers.clear();
        self.loaders.clear();
        self.syncers.clear();
        Ok(())
    }

    fn check_expression_filters(&self, ix: &PosIndex) -> Result<(), ConfigError> {
        for (name, f) in &self.expression_filter {
            let p = format!("expression-filter.{name}");
            if f.schema.is_empty() || f.table.is_empty() {
                return Err(err(
                    ix,
                    &p,
                    code::EXPR_EMPTY,
                    format!("expression-filter {name:?} must set both schema and table"),
                ));
            }
            for (key, e) in [
                ("insert-value-expr", &f.insert_value_expr),
                ("update-old-value-expr", &f.update_old_value_expr),
                ("update-new-value-expr", &f.update_new_value_expr),
                ("delete-value-expr", &f.delete_value_expr),
            ] {
                if !e.is_empty()
                    && let Err(why) = check_expression(e)
                {
                    return Err(err(
                        ix,
                        &format!("{p}.{key}"),
                        code::EXPR_GRAMMAR,
                        format!(
                            "expression-filter name({name}) SQL({e}) has wrong grammar in {key}: {why}"
                        ),
                    ));
                }
            }
            let kinds = [
                !f.insert_value_expr.is_empty(),
                !f.update_old_value_expr.is_empty() || !f.update_new_value_expr.is_empty(),
                !f.delete_value_expr.is_empty(),
            ];
            if kinds.iter().filter(|k| **k).count() > 1 {
                return Err(err(
                    ix,
                    &p,
                    code::EXPR_MANY,
                    format!(
                        "expression-filter {name:?} can only specify one of insert-value-expr, update-old-value-expr/update-new-value-expr, delete-value-expr"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_unused_globals(&self, ix: &PosIndex) -> Result<(), ConfigError> {
        let insts: Vec<&MySqlInstance> = self.mysql_instances.iter().flatten().collect();
        let used = |f: &dyn Fn(&MySqlInstance) -> Vec<&String>| -> BTreeSet<String> {
            insts.iter().flat_map(|i| f(i)).cloned().collect()
        };
        let mut unused: Vec<(String, String)> = Vec::new();
        let mut collect = |section: &str, names: Vec<&String>, used: BTreeSet<String>| {
            for n in names {
                if !used.contains(n) {
                    unused.push((section.to_string(), n.clone()));
                }
            }
        };
        collect(
            "routes",
            self.routes.keys().collect(),
            used(&|i| i.route_rules.iter().collect()),
        );
        collect(
            "filters",
            self.filters.keys().collect(),
            used(&|i| i.filter_rules.iter().collect()),
        );
        collect(
            "column-mappings",
            self.column_mappings.keys().collect(),
            used(&|i| i.column_mapping_rules.iter().collect()),
        );
        collect(
            "mydumpers",
            self.mydumpers.keys().collect(),
            used(&|i| vec![&i.mydumper_config_name]),
        );
        collect(
            "loaders",
            self.loaders.keys().collect(),
            used(&|i| vec![&i.loader_config_name]),
        );
        collect(
            "syncers",
            self.syncers.keys().collect(),
            used(&|i| vec![&i.syncer_config_name]),
        );
        collect(
            "expression-filter",
            self.expression_filter.keys().collect(),
            used(&|i| i.expression_filters.iter().collect()),
        );
        collect(
            "validators",
            self.validators.keys().collect(),
            used(&|i| vec![&i.validator_config_name]),
        );
        if let Some((section, name)) = unused.first() {
            let list: Vec<String> = unused.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            return Err(err(
                ix,
                &format!("{section}.{name}"),
                code::UNUSED_GLOBAL,
                format!(
                    "The configurations as following [{}] are set in global configuration but instances don't use them",
                    list.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// What DM checks when it turns the task into per-source subtasks: source-id length and
    /// that every rule compiles.
    fn check_subtasks(&self, ix: &PosIndex, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        let fk_checks = self.target_database.as_ref().is_some_and(|db| {
            db.session.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("foreign_key_checks") && {
                    let v = v.trim_matches(|c| c == ' ' || c == '\'' || c == '"');
                    v == "1" || v.eq_ignore_ascii_case("on")
                }
            })
        });
        for (i, inst) in self.mysql_instances.iter().flatten().enumerate() {
            if fk_checks && let Some(sy) = &inst.syncer {
                for (on, key) in [(sy.compact, "compact"), (sy.multiple_rows, "multiple-rows")] {
                    if on {
                        return Err(err(
                            ix,
                            "target-database.session",
                            code::FOREIGN_KEY_OPTION,
                            format!("`{key}` is not supported when foreign_key_checks=1"),
                        ));
                    }
                }
            }
            if inst.source_id.chars().count() > MAX_SOURCE_ID_LEN {
                return Err(err(
                    ix,
                    &format!("mysql-instances[{i}].source-id"),
                    code::LONG_SOURCE_ID,
                    format!(
                        "too long source-id not valid: {:?} has {} characters, at most {MAX_SOURCE_ID_LEN} are allowed",
                        inst.source_id,
                        inst.source_id.chars().count()
                    ),
                ));
            }
            if let Some(m) = &inst.mydumper
                && !valid_chunk_filesize(&m.chunk_filesize)
            {
                return Err(err(
                    ix,
                    &format!("mysql-instances[{i}]"),
                    code::CHUNK_FILESIZE,
                    format!("invalid `chunk-filesize` {}", m.chunk_filesize),
                ));
            }
        }
        for (name, ba) in &self.block_allow_list {
            let p = format!("block-allow-list.{name}");
            let pats = ba.do_dbs.iter().chain(&ba.ignore_dbs).chain(
                ba.do_tables
                    .iter()
                    .chain(&ba.ignore_tables)
                    .flat_map(|t| [&t.db_name, &t.tbl_name]),
            );
            // DM (tidb-tools' filter): a table entry needs both names.
            for t in ba.do_tables.iter().chain(&ba.ignore_tables) {
                for (what, v) in [("Schema", &t.db_name), ("Table", &t.tbl_name)] {
                    if v.trim().is_empty() {
                        return Err(err(
                            ix,
                            &p,
                            code::BA_LIST_GEN,
                            format!(
                                "generate block allow list {name:?} error: {what} string cannot be empty"
                            ),
                        ));
                    }
                }
            }
            for pat in pats {
                check_pattern(pat).map_err(|why| {
                    err(
                        ix,
                        &p,
                        code::BA_LIST_GEN,
                        format!("generate block allow list {name:?} error: {why}"),
                    )
                })?;
            }
        }
        for (name, r) in &self.routes {
            if r.schema_pattern.is_empty() {
                return Err(err(
                    ix,
                    &format!("routes.{name}"),
                    code::ROUTE_GEN,
                    format!("route rule {name:?}: schema-pattern must not be empty"),
                ));
            }
            if r.table_pattern.is_empty() && !r.target_table.is_empty() {
                return Err(err(
                    ix,
                    &format!("routes.{name}"),
                    code::ROUTE_GEN,
                    format!("route rule {name:?}: target-table needs a table-pattern"),
                ));
            }
            for (key, ex, re) in [
                (
                    "extract-table",
                    &r.extract_table,
                    r.extract_table.as_ref().map(|e| &e.table_regexp),
                ),
                (
                    "extract-schema",
                    &r.extract_schema,
                    r.extract_schema.as_ref().map(|e| &e.schema_regexp),
                ),
                (
                    "extract-source",
                    &r.extract_source,
                    r.extract_source.as_ref().map(|e| &e.source_regexp),
                ),
            ] {
                let Some(e) = ex else { continue };
                if let Err(why) = regex::Regex::new(re.map(String::as_str).unwrap_or_default()) {
                    return Err(err(
                        ix,
                        &format!("routes.{name}.{key}"),
                        code::ROUTE_GEN,
                        format!("route rule {name:?}: {key}: invalid regular expression: {why}"),
                    ));
                }
                if e.target_column.is_empty() {
                    return Err(err(
                        ix,
                        &format!("routes.{name}.{key}"),
                        code::ROUTE_GEN,
                        format!("route rule {name:?}: {key} needs a target-column"),
                    ));
                }
            }
        }
        for (name, f) in &self.filters {
            let p = format!("filters.{name}");
            if !f.action.eq_ignore_ascii_case("do") && !f.action.eq_ignore_ascii_case("ignore") {
                return Err(err(
                    ix,
                    &p,
                    code::BINLOG_FILTER,
                    format!(
                        "filter rule {name:?}: action must be Do or Ignore, got {:?}",
                        f.action
                    ),
                ));
            }
            for e in &f.events {
                let lower = e.to_ascii_lowercase();
                if !FILTER_EVENTS.contains(&lower.as_str()) {
                    return Err(err(
                        ix,
                        &p,
                        code::BINLOG_FILTER,
                        format!(
                            "filter rule {name:?}: event {e:?} is not a known binlog event type"
                        ),
                    ));
                }
                if let Some(why) = unmatched_event(&lower) {
                    warnings.push(format!(
                        "filter rule {name:?}: event {e:?} matches no statement in dm-rs: {why}"
                    ));
                }
            }
            for s in &f.sql_pattern {
                regex::Regex::new(s).map_err(|e| {
                    err(
                        ix,
                        &p,
                        code::BINLOG_FILTER,
                        format!("filter rule {name:?}: sql-pattern {s:?}: {e}"),
                    )
                })?;
            }
        }
        for (name, c) in &self.column_mappings {
            if let Err(why) = crate::rules::column_mapping::check_rule(c) {
                return Err(err(
                    ix,
                    &format!("column-mappings.{name}"),
                    code::COLUMN_MAPPING_GEN,
                    format!("generate column mapping error: rule {name:?}: {why}"),
                ));
            }
        }
        for (i, inst) in self.mysql_instances.iter().flatten().enumerate() {
            let rules = inst
                .column_mapping_rules
                .iter()
                .filter_map(|n| self.column_mappings.get(n).map(|r| (n.as_str(), r)));
            if let Err(e) =
                crate::rules::column_mapping::ColumnMapping::new(rules, self.case_sensitive)
            {
                return Err(err(
                    ix,
                    &format!("mysql-instances[{i}].column-mapping-rules"),
                    code::COLUMN_MAPPING_GEN,
                    format!("generate column mapping error: mysql-instance({i}): {e}"),
                ));
            }
        }
        Ok(())
    }

    /// The settings this task uses that dm-rs parses but cannot run yet, one error per key,
    /// each naming the key (and its line and column when the task was loaded from text).
    /// Empty when the task can run. dm-master's precheck refuses a task with any of these at
    /// start-task and check-task, whatever `ignore-checking-items` says; loading (check-task
    /// --offline, `dmctl plan`) still accepts them, as DM does.
    ///
    /// Refused: online DDL (`online-ddl: true` / `online-ddl-scheme`: gh-ost/pt-osc shadow
    /// tables would be replicated as-is), `target-database.security.cert-allowed-cn` (the
    /// server certificate's common name is not checked), DM v7's split task modes (`dump`,
    /// `load`, `load&sync`), `collation_compatible: strict`, a continuous validator (a
    /// `validators` entry an instance uses with `mode` other than `none`), the TiDB Lightning
    /// load modes (`import-mode: physical` / `import-into`) and
    /// `experimental.async-checkpoint-flush: true`.
    pub fn unsupported(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let mut refuse = |keys: &[&str], what: String| {
            let pos = keys.iter().find_map(|k| self.positions.get(k));
            out.push(ConfigError::new(code::UNSUPPORTED, what).at(pos));
        };
        if matches!(self.task_mode.as_str(), "dump" | "load" | "load&sync") {
            refuse(
                &["task-mode"],
                format!(
                    "task-mode {} is not supported by dm-rs yet: it runs `full` (dump + load), `incremental` and `all`; use one of them",
                    self.task_mode
                ),
            );
        }
        if self.collation_compatible == "strict" {
            refuse(
                &["collation_compatible"],
                "collation_compatible: strict is not supported by dm-rs yet: CREATE statements run as the upstream wrote them (DM's `loose`), without the upstream's default collation added; remove the key or set it to loose".into(),
            );
        }
        for inst in self.instances() {
            if let Some(v) = self.validators.get(&inst.validator_config_name)
                && v.mode != "none"
            {
                refuse(
                    &["validators"],
                    format!(
                        "validators.{} (mode {}) used by mysql-instance {} is not supported by dm-rs: it has no continuous data validator; set mode: none or remove validator-config-name",
                        inst.validator_config_name, v.mode, inst.source_id
                    ),
                );
            }
            if let Some(l) = &inst.loader
                && l.import_mode != "logical"
                && matches!(self.task_mode.as_str(), "full" | "all")
            {
                refuse(
                    &[],
                    format!(
                        "import-mode {} of mysql-instance {} is a TiDB Lightning backend and not supported by dm-rs (its load unit runs SQL, DM's `logical` mode); use import-mode: logical",
                        l.import_mode, inst.source_id
                    ),
                );
            }
        }
        for (name, r) in &self.routes {
            if r.extract_table.is_some() || r.extract_schema.is_some() || r.extract_source.is_some()
            {
                refuse(
                    &[],
                    format!(
                        "routes.{name}: extract-table / extract-schema / extract-source (DM's extended columns for shard merges) are not supported by dm-rs yet: the target column would not be filled; remove them (column-mappings' `add prefix` / `partition id` run)"
                    ),
                );
            }
        }
        if self.experimental.async_checkpoint_flush {
            refuse(
                &["experimental.async-checkpoint-flush"],
                "experimental.async-checkpoint-flush is not supported by dm-rs: its sync unit saves the checkpoint after draining the apply queues, at most once a second; remove the key or set it to false".into(),
            );
        }
        if self.online_ddl || !self.online_ddl_scheme.is_empty() {
            refuse(
                &["online-ddl", "online-ddl-scheme"],
                "online-ddl / online-ddl-scheme is not supported by dm-rs yet: gh-ost/pt-osc shadow and trash tables would be replicated as plain tables; remove online-ddl and online-ddl-scheme or use DM".into(),
            );
        }
        if self
            .target_database
            .as_ref()
            .and_then(|d| d.security.as_ref())
            .is_some_and(|s| !s.cert_allowed_cn.is_empty())
        {
            refuse(
                &["target-database.security.cert-allowed-cn"],
                "target-database.security.cert-allowed-cn is not supported by dm-rs yet: the server certificate is verified against ssl-ca and the host name, but its common name is not checked; remove cert-allowed-cn".into(),
            );
        }
        out
    }

    /// All instances, after [`TaskConfig::adjust`] (which refuses null ones).
    pub fn instances(&self) -> impl Iterator<Item = &MySqlInstance> {
        self.mysql_instances.iter().flatten()
    }

    /// The normalised config as YAML, passwords shown as `******` (what get-config prints).
    pub fn to_yaml_masked(&self) -> String {
        let mut c = self.clone();
        if let Some(db) = c.target_database.as_mut() {
            db.mask_secrets();
        }
        serde_norway::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The task without the instances of `gone` (stop-task -s): global rules no remaining
    /// instance refers to are dropped too, so the result still passes DM's unused-global check.
    pub fn without_sources(&self, gone: &[String]) -> TaskConfig {
        let mut c = self.clone();
        c.mysql_instances
            .retain(|i| i.as_ref().is_some_and(|i| !gone.contains(&i.source_id)));
        let insts: Vec<MySqlInstance> = c.mysql_instances.iter().flatten().cloned().collect();
        let uses = |f: &dyn Fn(&MySqlInstance) -> Vec<String>| -> BTreeSet<String> {
            insts.iter().flat_map(f).collect()
        };
        let routes = uses(&|i| i.route_rules.clone());
        let filters = uses(&|i| i.filter_rules.clone());
        let maps = uses(&|i| i.column_mapping_rules.clone());
        let exprs = uses(&|i| i.expression_filters.clone());
        let lists = uses(&|i| vec![i.block_allow_list.clone(), i.black_white_list.clone()]);
        let validators = uses(&|i| vec![i.validator_config_name.clone()]);
        c.validators.retain(|k, _| validators.contains(k));
        c.routes.retain(|k, _| routes.contains(k));
        c.filters.retain(|k, _| filters.contains(k));
        c.column_mappings.retain(|k, _| maps.contains(k));
        c.expression_filter.retain(|k, _| exprs.contains(k));
        c.block_allow_list.retain(|k, _| lists.contains(k));
        c.black_white_list.retain(|k, _| lists.contains(k));
        c
    }

    /// The normalised config as YAML with the password DM-encrypted: what the master hands a
    /// worker (it loads again to the same config, and no plaintext crosses the wire).
    pub fn to_yaml_sealed(&self) -> String {
        let mut c = self.clone();
        if let Some(db) = c.target_database.as_mut() {
            db.password = password::encrypt(&db.plain_password()).unwrap_or_default();
        }
        serde_norway::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_filesize_forms() {
        for ok in ["64", "64M", "1.5 GiB", "100kb"] {
            assert!(valid_chunk_filesize(ok), "{ok}");
        }
        for bad in ["", "abc", "64X", "-1"] {
            assert!(!valid_chunk_filesize(bad), "{bad}");
        }
    }

    const BASE: &str = "name: t\ntask-mode: all\ntarget-database: {host: 127.0.0.1, port: 3306, user: root, password: ''}\nmysql-instances:\n  - source-id: s1\n";

    fn load(extra: &str) -> Result<TaskConfig, ConfigError> {
        let text = format!("{BASE}{extra}");
        crate::config::parse_task(text.as_bytes()).map(|l| l.config)
    }

    fn code_of(extra: &str) -> u32 {
        match load(extra) {
            Ok(c) => panic!("{extra}: loaded {c:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn filter_events_dm_accepts_load_and_those_dm_rs_never_matches_warn() {
        // (event, loads, warns)
        let cases: &[(&str, bool, bool)] = &[
            ("incompatible ddl changes", true, false),
            ("drop column", true, false),
            ("modify constraint", true, false),
            ("exchange table partition", true, false),
            ("modify column", true, false),
            ("value range decrease", true, false),
            ("drop unique key", true, true),
            ("add column", true, true),
            ("multi schema change", true, true),
            ("create view", true, true),
            ("drop everything", false, false),
        ];
        for (event, loads, warns) in cases {
            let text = format!(
                "{BASE}    filter-rules: [f]\nfilters:\n  f: {{schema-pattern: d, events: [\"{event}\"], action: Ignore}}\n"
            );
            match crate::config::parse_task(text.as_bytes()) {
                Ok(l) => {
                    assert!(*loads, "{event} loaded");
                    let warned = l
                        .warnings
                        .iter()
                        .any(|w| w.contains("matches no statement"));
                    assert_eq!(warned, *warns, "{event}: {:?}", l.warnings);
                }
                Err(e) => {
                    assert!(!loads, "{event}: {e}");
                    assert_eq!(e.code, code::BINLOG_FILTER);
                }
            }
        }
    }

    #[test]
    fn newer_dm_keys_load_with_dm_defaults() {
        let c = load("").unwrap();
        let inst = c.instances().next().unwrap();
        let sy = inst.syncer.as_ref().unwrap();
        assert!(!sy.compact && !sy.multiple_rows);
        assert_eq!(sy.safe_mode_duration, "60s");
        assert_eq!(sy.safe_mode_window(), std::time::Duration::from_secs(60));
        let l = inst.loader.as_ref().unwrap();
        assert_eq!(
            (
                l.import_mode.as_str(),
                l.on_duplicate_logical.as_str(),
                l.on_duplicate_physical.as_str(),
                l.checksum_physical.as_str(),
                l.analyze.as_str()
            ),
            ("logical", "replace", "none", "required", "optional")
        );
        assert_eq!(c.collation_compatible, "loose");
        assert!(c.unsupported().is_empty());

        let c = load(
            "    syncer-config-name: g\n    validator-config-name: v\nsyncers:\n  g: {checkpoint-flush-interval: 5, compact: true, multiple-rows: true}\nvalidators:\n  v: {mode: none}\nstrict-optimistic-shard-mode: true\nshard-mode: optimistic\ncollation_compatible: loose\nignore-checking-items: [online_ddl, meta_position, binlog_db]\n",
        )
        .unwrap();
        let sy = c.instances().next().unwrap().syncer.clone().unwrap();
        assert!(sy.compact && sy.multiple_rows);
        assert_eq!(sy.safe_mode_duration, "10s");
        assert_eq!(c.validators["v"].worker_count, 4);
        assert_eq!(c.validators["v"].max_pending_row_size, "500m");
        assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
        let again = crate::config::parse_task(c.to_yaml_masked().as_bytes()).unwrap();
        assert_eq!(again.config.validators, c.validators);

        let c = load("    loader: {on-duplicate: ignore, import-mode: SQL}\n").unwrap();
        let l = c.instances().next().unwrap().loader.clone().unwrap();
        assert_eq!(
            (l.import_mode.as_str(), l.on_duplicate_logical.as_str()),
            ("logical", "ignore")
        );
    }

    #[test]
    fn newer_dm_keys_are_checked_with_dm_codes() {
        let cases = [
            (
                "    syncer: {safe-mode-duration: abc}\n",
                code::SAFE_MODE_DURATION,
            ),
            (
                "    syncer: {safe-mode: true, safe-mode-duration: 0s}\n",
                code::SAFE_MODE_CONFLICT,
            ),
            (
                "    validator-config-name: nope\n",
                code::VALIDATOR_NOT_FOUND,
            ),
            (
                "    validator-config-name: v\nvalidators:\n  v: {mode: sometimes}\n",
                code::VALIDATION_MODE,
            ),
            ("validators:\n  v: {mode: none}\n", code::UNUSED_GLOBAL),
            ("    loader: {import-mode: fast}\n", code::LOAD_MODE),
            (
                "    loader: {on-duplicate-logical: keep}\n",
                code::LOAD_DUPLICATE,
            ),
            (
                "    loader: {on-duplicate-physical: keep}\n",
                code::LOAD_DUPLICATE_PHYSICAL,
            ),
            (
                "    loader: {checksum-physical: maybe}\n",
                code::LOAD_CHECKSUM,
            ),
            ("    loader: {analyze: maybe}\n", code::LOAD_ANALYZE),
            (
                "strict-optimistic-shard-mode: true\n",
                code::STRICT_OPTIMISTIC,
            ),
            ("collation_compatible: exact\n", code::COLLATION),
            ("description: a task\n", code::YAML),
        ];
        for (extra, want) in cases {
            assert_eq!(code_of(extra), want, "{extra}");
        }
        let fk = "name: t\ntask-mode: all\ntarget-database: {host: h, port: 1, user: u, password: '', session: {foreign_key_checks: 'ON'}}\nmysql-instances:\n  - source-id: s1\n    syncer: {compact: true}\n";
        let e = crate::config::parse_task(fk.as_bytes()).unwrap_err();
        assert_eq!(e.code, code::FOREIGN_KEY_OPTION, "{e}");
        assert!(
            e.message
                .contains("`compact` is not supported when foreign_key_checks=1")
        );
    }

    #[test]
    fn what_dm_rs_cannot_run_is_listed_not_ignored() {
        for (extra, key) in [
            (
                "    validator-config-name: v\nvalidators:\n  v: {mode: fast}\n",
                "continuous data validator",
            ),
            ("    loader: {import-mode: physical}\n", "TiDB Lightning"),
            (
                "collation_compatible: strict\n",
                "collation_compatible: strict",
            ),
            (
                "experimental: {async-checkpoint-flush: true}\n",
                "async-checkpoint-flush",
            ),
        ] {
            let c = load(extra).unwrap();
            let u = c.unsupported();
            assert_eq!(u.len(), 1, "{extra}: {u:?}");
            assert!(u[0].message.contains(key), "{extra}: {}", u[0]);
            assert_eq!(u[0].code, code::UNSUPPORTED);
        }
        let c = crate::config::parse_task(
            BASE.replace("task-mode: all", "task-mode: load&sync")
                .as_bytes(),
        )
        .unwrap()
        .config;
        assert!(c.unsupported()[0].message.contains("task-mode load&sync"));
    }

    #[test]
    fn expression_checks() {
        assert!(check_expression("c % 2 = 0").is_ok());
        assert!(check_expression("c_json->\"$.id\" = 2").is_ok());
        assert!(check_expression("(a = 1").is_err());
        assert!(check_expression("a = 'x").is_err());
        assert!(check_expression(" ").is_err());
        assert!(check_expression("no_such_function(a) = 1").is_err());
        assert!(check_expression("LENGTH(a, b) = 1").is_err());
    }
}
