//! Config errors: DM's error code and meaning, plus where in which file.

use std::fmt;

/// A 1-based line and column in a YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// DM config error codes (`errors.toml`, class `config`) used by the checks in this module.
pub mod code {
    /// DM's `ErrConnInvalidTLSConfig` ("invalid TLS config"): a `security` block that cannot
    /// work (a file that cannot be read, a certificate without its key).
    pub const TLS_CONFIG: u32 = 11112;
    pub const CHECK_ITEM: u32 = 20001;
    pub const YAML: u32 = 20003;
    pub const EMPTY_SOURCE_ID: u32 = 20005;
    pub const LONG_SOURCE_ID: u32 = 20006;
    pub const ONLINE_SCHEME: u32 = 20007;
    /// DM: "can not decrypt password"; here also a `${ENV}` password whose variable is unset.
    pub const PASSWORD: u32 = 20010;
    pub const META_INVALID: u32 = 20011;
    pub const INSTANCE_NIL: u32 = 20012;
    pub const NO_INSTANCES: u32 = 20013;
    pub const DUP_SOURCE_ID: u32 = 20014;
    pub const MYDUMPER_CONFLICT: u32 = 20015;
    pub const LOADER_CONFLICT: u32 = 20016;
    pub const SYNCER_CONFLICT: u32 = 20017;
    pub const READ_FILE: u32 = 20018;
    pub const NO_NAME: u32 = 20019;
    pub const TASK_MODE: u32 = 20020;
    pub const NO_TARGET_DB: u32 = 20021;
    pub const NO_META: u32 = 20022;
    pub const ROUTE_NOT_FOUND: u32 = 20023;
    pub const FILTER_NOT_FOUND: u32 = 20024;
    pub const COLUMN_MAPPING_NOT_FOUND: u32 = 20025;
    pub const BA_LIST_NOT_FOUND: u32 = 20026;
    pub const MYDUMPER_NOT_FOUND: u32 = 20027;
    pub const MYDUMPER_PATH: u32 = 20028;
    pub const LOADER_NOT_FOUND: u32 = 20029;
    pub const SYNCER_NOT_FOUND: u32 = 20030;
    pub const DUPLICATE_ITEM: u32 = 20032;
    pub const SHARD_MODE: u32 = 20033;
    pub const BINLOG_FILTER: u32 = 20037;
    pub const UNUSED_GLOBAL: u32 = 20038;
    pub const EXPR_MANY: u32 = 20039;
    pub const EXPR_NOT_FOUND: u32 = 20040;
    pub const EXPR_GRAMMAR: u32 = 20041;
    pub const EXPR_EMPTY: u32 = 20042;
    /// DM's ErrConfigCheckerMaxTooSmall (`checker.backoff-max` below `backoff-min`).
    pub const CHECKER_MAX_TOO_SMALL: u32 = 20043;
    pub const BA_LIST_GEN: u32 = 20044;
    pub const ROUTE_GEN: u32 = 20045;
    pub const COLUMN_MAPPING_GEN: u32 = 20046;
    pub const CHUNK_FILESIZE: u32 = 20047;
    pub const COLLATION: u32 = 20052;
    pub const LOAD_MODE: u32 = 20053;
    pub const LOAD_DUPLICATE: u32 = 20054;
    pub const VALIDATION_MODE: u32 = 20055;
    pub const VALIDATOR_NOT_FOUND: u32 = 20056;
    /// `start-time %s is too late, no binlog location matches it`.
    pub const START_TIME_TOO_LATE: u32 = 20057;
    pub const SAFE_MODE_DURATION: u32 = 20060;
    pub const SAFE_MODE_CONFLICT: u32 = 20061;
    pub const LOAD_DUPLICATE_PHYSICAL: u32 = 20062;
    pub const LOAD_CHECKSUM: u32 = 20063;
    pub const LOAD_ANALYZE: u32 = 20065;
    pub const STRICT_OPTIMISTIC: u32 = 20066;
    pub const IMPORT_INTO_SHARDING: u32 = 20068;
    pub const FOREIGN_KEY_OPTION: u32 = 20070;
    /// dm-rs's own (DM has no such code): a key dm-rs parses but cannot run yet; see
    /// `TaskConfig::unsupported`.
    pub const UNSUPPORTED: u32 = 20900;
}

/// One failed check. Displays as `file:line:col: [code=N] message`, leaving out what is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub code: u32,
    pub message: String,
    pub file: Option<String>,
    pub pos: Option<Pos>,
}

impl ConfigError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        ConfigError {
            code,
            message: message.into(),
            file: None,
            pos: None,
        }
    }

    pub fn at(mut self, pos: Option<Pos>) -> Self {
        if self.pos.is_none() {
            self.pos = pos;
        }
        self
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
            if let Some(p) = self.pos {
                write!(f, "{}:{}:", p.line, p.col)?;
            }
            f.write_str(" ")?;
        } else if let Some(p) = self.pos {
            write!(f, "line {} column {}: ", p.line, p.col)?;
        }
        write!(f, "[code={}] {}", self.code, self.message)
    }
}

impl std::error::Error for ConfigError {}
