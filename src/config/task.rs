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
/// The checking items `ignore-checking-items` may name: DM v2's, plus `conn_number` and
/// `target_privilege` of later DM versions (dm-rs checks them), and dm-rs's own
/// `binlog_row_metadata`.
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
    "conn_number",
    "target_privilege",
    "binlog_row_metadata",
];
/// Binlog event types a filter rule may name (case-insensitive).
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
];

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LoaderConfig {
    pub pool_size: i64,
    #[serde(deserialize_with = "y::string")]
    pub dir: String,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            pool_size: 16,
            dir: "./dumped_data".into(),
        }
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
            max_retry: 0,
            auto_fix_gtid: false,
            enable_gtid: false,
            disable_detect: false,
            safe_mode: false,
            enable_ansi_quotes: false,
        }
    }
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
    #[serde(deserialize_with = "y::boolean")]
    pub clean_dump_file: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub ansi_quotes: bool,
    #[serde(deserialize_with = "y::boolean")]
    pub remove_meta: bool,
    pub tidb: Option<TidbConfig>,
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
];

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            name: String::new(),
            task_mode: String::new(),
            is_sharding: false,
            shard_mode: String::new(),
            ignore_checking_items: Vec::new(),
            meta_schema: DEFAULT_META_SCHEMA.into(),
            enable_heartbeat: false,
            heartbeat_update_interval: 1,
            heartbeat_report_interval: 10,
            timezone: String::new(),
            case_sensitive: false,
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
            clean_dump_file: true,
            ansi_quotes: false,
            remove_meta: false,
            tidb: None,
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
        if !matches!(self.task_mode.as_str(), "full" | "incremental" | "all") {
            return Err(err(
                ix,
                "task-mode",
                code::TASK_MODE,
                format!(
                    "please specify right task-mode, support `full`, `incremental`, `all` (got {:?})",
                    self.task_mode
                ),
            ));
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
            .as_ref()
            .and_then(|d| d.security.as_ref())
        {
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
                        "mysql-instance({i})'s meta must specify `binlog-name` (position mode) or `binlog-gtid` (GTID mode)"
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
            let suffix = format!(".{}", self.name);
            if !loader.dir.ends_with(&suffix) {
                loader.dir.push_str(&suffix);
            }
            let syncer = resolve_unit(
                &inst.syncer_config_name,
                &mut inst.syncer,
                &syncers,
                unit("syncer", code::SYNCER_NOT_FOUND, "syncers"),
            )?;
            if inst.syncer_thread != 0 {
                syncer.worker_count = inst.syncer_thread;
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
        self.check_subtasks(ix)?;
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
    fn check_subtasks(&self, ix: &PosIndex) -> Result<(), ConfigError> {
        for (i, inst) in self.mysql_instances.iter().flatten().enumerate() {
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
                    format!("invalid `chunk-filesize` {:?}", m.chunk_filesize),
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
                if !FILTER_EVENTS.contains(&e.to_ascii_lowercase().as_str()) {
                    return Err(err(
                        ix,
                        &p,
                        code::BINLOG_FILTER,
                        format!(
                            "filter rule {name:?}: event {e:?} is not a known binlog event type"
                        ),
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
    /// tables would be replicated as-is), and `target-database.security.cert-allowed-cn`
    /// (the server certificate's common name is not checked).
    pub fn unsupported(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let mut refuse = |keys: &[&str], what: String| {
            let pos = keys.iter().find_map(|k| self.positions.get(k));
            out.push(ConfigError::new(code::UNSUPPORTED, what).at(pos));
        };
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
