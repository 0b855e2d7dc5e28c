//! The error a processing unit stops with: DM's terror shape (code, class, scope, level,
//! message, raw cause, workaround), plus whether an automatic resume may fix it.
//!
//! The class is typed ([`ErrClass`]): a database error is `database`, anything else is the
//! class of the unit that stopped (`sync-unit`, `dump-unit`, `load-unit`), set by the subtask
//! from the unit's kind ([`UnitError::in_unit`]). The scope is typed too ([`Scope`]).

use crate::pb;
use crate::worker::units::UnitKind;

/// Codes dm-rs uses (DM's numbering where DM has the same error).
pub mod code {
    /// DM `ErrDBDriverError`: a database connection failed or broke.
    pub const DB_DRIVER: i32 = 10001;
    /// DM `ErrDBExecuteFailed`: the downstream refused a statement.
    pub const DB_EXECUTE: i32 = 10006;
    /// The upstream binlog could not be read or decoded.
    pub const BINLOG_READ: i32 = 36069;
    /// The task's configuration cannot be run (e.g. no start position for an incremental task).
    pub const UNIT_CONFIG: i32 = 36001;
    /// A DDL statement could not be parsed or routed.
    pub const DDL: i32 = 36009;
    /// Another run of the task claimed the source (owner epoch moved on): this run stops.
    pub const FENCED: i32 = 36070;
    /// The unit's task ended abnormally (a bug): DM's ErrNotSet class of error.
    pub const CRASHED: i32 = 36071;
    /// DM's `ErrSyncerReprocessWithSafeModeFail` (DM's own 36071): `safe-mode-duration: 0s`
    /// but the run must re-apply events a previous run may have applied.
    pub const REPROCESS_WITHOUT_SAFE_MODE: i32 = 36071;
    /// DM `ErrParseMydumperMeta`: the dump's `metadata` file is missing or unreadable.
    pub const PARSE_META: i32 = 11001;
    /// DM `ErrMetadataNoBinlogLoc`: the dump's `metadata` has no binlog position.
    pub const META_NO_BINLOG: i32 = 11123;
    /// DM `ErrDumpUnitRuntime`: the dump failed.
    pub const DUMP_RUNTIME: i32 = 32001;
    /// DM `ErrDumpUnitGlobalLock`: the dump could not take the global read lock.
    pub const DUMP_GLOBAL_LOCK: i32 = 32004;
    /// DM `ErrLoadUnitCreateSchemaFile`: a database or table could not be created.
    pub const LOAD_CREATE_SCHEMA: i32 = 34001;
    /// DM `ErrLoadUnitInvalidFileEnding`: a data file ends inside a statement.
    pub const LOAD_INVALID_FILE_ENDING: i32 = 34002;
    /// DM `ErrLoadUnitParseQuoteValues`: the VALUES of an INSERT could not be parsed.
    pub const LOAD_PARSE_VALUES: i32 = 34003;
    /// DM `ErrLoadUnitDoColumnMapping`: a column mapping (or expression filter) failed on a dumped row.
    pub const LOAD_COLUMN_MAPPING: i32 = 34004;
    /// DM `ErrLoadUnitReadSchemaFile`.
    pub const LOAD_READ_SCHEMA_FILE: i32 = 34005;
    /// DM `ErrLoadUnitParseStatement`.
    pub const LOAD_PARSE_STATEMENT: i32 = 34006;
    /// DM `ErrLoadUnitNotCreateTable`: a `-schema.sql` file holds no CREATE TABLE.
    pub const LOAD_NOT_CREATE_TABLE: i32 = 34007;
    /// DM `ErrLoadUnitDispatchSQLFromFile`: a data file could not be read.
    pub const LOAD_DISPATCH: i32 = 34008;
    /// DM `ErrLoadUnitInvalidInsertSQL`: a data statement is not an INSERT.
    pub const LOAD_INVALID_INSERT: i32 = 34009;
    /// DM `ErrLoadUnitNoDBFile`.
    pub const LOAD_NO_DB_FILE: i32 = 34012;
    /// DM `ErrLoadUnitNoTableFile`.
    pub const LOAD_NO_TABLE_FILE: i32 = 34013;
    /// DM `ErrLoadUnitDumpDirNotFound`.
    pub const LOAD_DIR_NOT_FOUND: i32 = 34014;
    /// DM `ErrLoadUnitDuplicateTableFile`.
    pub const LOAD_DUPLICATE_TABLE_FILE: i32 = 34015;
    /// DM `ErrSyncerUnitGenColumnMapping`: the column mapping rules cannot be built.
    pub const SYNC_GEN_COLUMN_MAPPING: i32 = 36032;
    /// DM `ErrSyncerUnitDoColumnMapping`: a column mapping failed on a row ("mapping row data
    /// … for table …").
    pub const SYNC_DO_COLUMN_MAPPING: i32 = 36033;
    /// dm-rs's own (DM returns the evaluator's error without a code): an expression filter
    /// could not be evaluated on a row.
    pub const SYNC_EXPR_FILTER: i32 = 36900;
    /// DM `ErrLoadTaskCheckPointNotMatch`: the loader checkpoint belongs to another dump.
    pub const LOAD_CHECKPOINT_MISMATCH: i32 = 34018;
}

/// DM's error scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Upstream,
    Downstream,
    Internal,
}

impl Scope {
    /// DM's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Upstream => "upstream",
            Scope::Downstream => "downstream",
            Scope::Internal => "internal",
        }
    }

    fn parse(s: &str) -> Scope {
        match s {
            "upstream" => Scope::Upstream,
            "downstream" => Scope::Downstream,
            _ => Scope::Internal,
        }
    }
}

/// DM's error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrClass {
    /// A downstream database error.
    Database,
    /// The unit's own class.
    Unit(UnitKind),
}

impl ErrClass {
    /// DM's text (`database`, `sync-unit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrClass::Database => "database",
            ErrClass::Unit(k) => k.class(),
        }
    }
}

/// The workaround every retryable error carries.
const RETRY_WORKAROUND: &str =
    "dm-rs retries automatically; check that the database is up and reachable";

#[derive(Debug, Clone, PartialEq)]
pub struct UnitError {
    pub code: i32,
    pub class: ErrClass,
    pub scope: Scope,
    pub level: &'static str,
    pub message: String,
    pub raw_cause: String,
    pub workaround: String,
    /// A connection problem or a lock wait: auto-resume retries with backoff.
    pub retryable: bool,
    /// Not a fault: the unit's binlog source must be opened again from the checkpoint (the
    /// relay it read moved to a new sub-directory or stopped). Resumed at once, without
    /// growing the backoff.
    pub reopen: bool,
}

impl std::fmt::Display for UnitError {
    /// DM's terror text: `[code=N:class=C:scope=S:level=L], Message: …, RawCause: …, Workaround: …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[code={}:class={}:scope={}:level={}], Message: {}",
            self.code,
            self.class.as_str(),
            self.scope.as_str(),
            self.level,
            self.message
        )?;
        if !self.raw_cause.is_empty() {
            write!(f, ", RawCause: {}", self.raw_cause)?;
        }
        if !self.workaround.is_empty() {
            write!(f, ", Workaround: {}", self.workaround)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnitError {}

impl UnitError {
    pub fn new(code: i32, scope: &'static str, message: impl Into<String>) -> UnitError {
        UnitError {
            code,
            class: ErrClass::Unit(UnitKind::Sync),
            scope: Scope::parse(scope),
            level: "high",
            message: message.into(),
            raw_cause: String::new(),
            workaround: String::new(),
            retryable: false,
            reopen: false,
        }
    }

    /// Marks a [`UnitError::reopen`] error (retryable too).
    pub fn reopen(mut self) -> Self {
        self.reopen = true;
        self.retryable(true)
    }

    /// Sets the class of a non-database error to the unit's.
    pub fn in_unit(mut self, kind: UnitKind) -> Self {
        if let ErrClass::Unit(_) = self.class {
            self.class = ErrClass::Unit(kind);
        }
        self
    }

    pub fn cause(mut self, c: impl std::fmt::Display) -> Self {
        self.raw_cause = c.to_string();
        self
    }

    pub fn workaround(mut self, w: impl Into<String>) -> Self {
        self.workaround = w.into();
        self
    }

    pub fn retryable(mut self, r: bool) -> Self {
        self.retryable = r;
        if r && self.workaround.is_empty() {
            self.workaround = RETRY_WORKAROUND.into();
        }
        self
    }

    /// A MySQL/MariaDB client error, classified: connection problems, lock wait timeouts and
    /// deadlocks are retryable; a statement the server refuses is not.
    pub fn from_mysql(
        scope: &'static str,
        what: impl Into<String>,
        e: &mysql_async::Error,
    ) -> UnitError {
        let (code, retryable) = match e {
            mysql_async::Error::Server(s) => match s.code {
                // lock wait timeout, deadlock, server shutting down, too many connections
                1205 | 1213 | 1053 | 1040 | 1152 | 1158 | 1159 | 1160 | 1161 => {
                    (code::DB_EXECUTE, true)
                }
                _ => (code::DB_EXECUTE, false),
            },
            mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => (code::DB_DRIVER, true),
            _ => (code::DB_DRIVER, false),
        };
        let class = if scope == "upstream" {
            ErrClass::Unit(UnitKind::Sync)
        } else {
            ErrClass::Database
        };
        let workaround = if retryable {
            RETRY_WORKAROUND.to_string()
        } else if scope == "downstream" {
            "Fix the downstream (or the task's routes/filters), then run `resume-task`.".to_string()
        } else {
            String::new()
        };
        UnitError {
            code,
            class,
            scope: Scope::parse(scope),
            level: "high",
            message: what.into(),
            raw_cause: e.to_string(),
            workaround,
            retryable,
            reopen: false,
        }
    }

    pub fn to_pb(&self) -> pb::ProcessError {
        pb::ProcessError {
            err_code: self.code,
            err_class: self.class.as_str().to_string(),
            err_scope: self.scope.as_str().to_string(),
            err_level: self.level.to_string(),
            message: self.message.clone(),
            raw_cause: self.raw_cause.clone(),
            workaround: self.workaround.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_follows_the_unit_and_database_errors_stay_database() {
        let e = UnitError::new(code::UNIT_CONFIG, "internal", "x").in_unit(UnitKind::Load);
        assert_eq!(e.to_pb().err_class, "load-unit");
        assert_eq!(e.to_pb().err_scope, "internal");
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::other("reset")));
        let d = UnitError::from_mysql("downstream", "apply", &io).in_unit(UnitKind::Sync);
        assert_eq!(d.to_pb().err_class, "database");
        assert!(d.retryable, "a broken connection is retryable");
        assert_eq!(
            d.to_string().split(", Message").next(),
            Some("[code=10001:class=database:scope=downstream:level=high]")
        );
    }
}
