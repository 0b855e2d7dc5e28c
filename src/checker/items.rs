//! The precheck items as pure functions: observed server values in, one [`CheckItem`] out, with
//! DM's item names, messages and an instruction that says how to fix the problem.
//!
//! Called by [`super::live`] after it has read the values from the server. Never does I/O and
//! never fails: a missing value is itself a finding.

use super::grants::{Lack, Need, Privileges};
use super::task::Consistency;
use super::{CheckItem, CheckState};

/// DM's checking-item names (the values of `ignore-checking-items`), plus our own MariaDB items.
pub mod names {
    pub const VERSION: &str = "version";
    pub const SERVER_ID: &str = "server_id";
    pub const BINLOG_ENABLE: &str = "binlog_enable";
    pub const BINLOG_FORMAT: &str = "binlog_format";
    pub const BINLOG_ROW_IMAGE: &str = "binlog_row_image";
    pub const REPLICATION_PRIVILEGE: &str = "replication_privilege";
    pub const DUMP_PRIVILEGE: &str = "dump_privilege";
    /// DM's `table_schema`: every dumped table has a primary or unique key (a warning).
    pub const TABLE_SCHEMA: &str = "table_schema";
    /// DM's `conn_number`: `max_connections` leaves room for the dump (upstream) and the load
    /// (downstream).
    pub const CONN_NUMBER: &str = "conn_number";
    /// Ours: MariaDB/MySQL 8 `binlog_row_metadata` (column names in row events come from it).
    pub const BINLOG_ROW_METADATA: &str = "binlog_row_metadata";
    /// Ours: the source could not be reached; every other source item is then left out.
    pub const SOURCE_CONNECTION: &str = "source_connection";
    /// Ours: the target could not be reached.
    pub const TARGET_CONNECTION: &str = "target_connection";
    /// DM's `target_privilege`: the user can create the meta schema and its tables.
    pub const TARGET_PRIVILEGE: &str = "target_privilege";
    /// Ours: the task or a source uses a setting dm-rs cannot honour (a key it does not run
    /// yet, a TLS file it cannot read). Never skipped by `ignore-checking-items`.
    pub const CONFIG: &str = "config";
    /// Ours: every column an `expression-filter` names exists in its upstream table.
    pub const EXPRESSION_FILTER: &str = "expression_filter";
    /// DM's `schema_of_shard_tables`: the upstream tables merged into one downstream table
    /// have the same columns (pessimistic) or columns that join (optimistic).
    pub const SHARD_TABLES: &str = "schema_of_shard_tables";
    /// DM's `auto_increment_ID`: shard tables with an auto-increment column (a warning in
    /// `schema_of_shard_tables`).
    pub const AUTO_INCREMENT_ID: &str = "auto_increment_ID";
    /// DM's `meta_position`: an incremental task's `meta` position exists on the upstream.
    pub const META_POSITION: &str = "meta_position";
    /// DM's `binlog_db`: the migrated databases are not cut out of the binlog by the
    /// upstream's binlog_do_db / binlog_ignore_db.
    pub const BINLOG_DB: &str = "binlog_db";
}

/// One expression filter's columns against its upstream table's current columns (`None`: the
/// table does not exist). A missing column fails (at run time the filter would never match, as
/// in DM); a missing table is a warning (it may be created later).
pub fn expression_filter_columns(
    rule: &str,
    schema: &str,
    table: &str,
    wanted: &[String],
    have: Option<&[String]>,
    extra: &str,
) -> CheckItem {
    let mut item = CheckItem {
        name: names::EXPRESSION_FILTER.to_string(),
        desc: format!("check the columns expression-filter {rule:?} names"),
        state: CheckState::Success,
        message: String::new(),
        instruction: String::new(),
        extra: extra.to_string(),
    };
    let Some(have) = have else {
        item.state = CheckState::Warning;
        item.message = format!(
            "`{schema}`.`{table}` of expression-filter {rule:?} does not exist upstream: its columns cannot be checked"
        );
        item.instruction = "create the table before its rows arrive, or fix schema/table in the expression-filter; a column the table lacks makes the filter match nothing".into();
        return item;
    };
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        item.state = CheckState::Failure;
        item.message = format!(
            "expression-filter {rule:?} names unknown column(s) {} of `{schema}`.`{table}` (its columns: {})",
            missing.join(", "),
            have.join(", ")
        );
        item.instruction = format!(
            "fix the expression of expression-filter {rule:?} in the task file (DM would silently never match it)"
        );
    }
    item
}

/// A server version as reported by `SELECT VERSION()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub mariadb: bool,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    /// Parses `10.11.19-MariaDB-0+deb12u1`, `5.5.5-10.4.8-MariaDB-log`, `8.0.36`, `5.7.44-log`.
    pub fn parse(raw: &str) -> Option<ServerVersion> {
        let mariadb = raw.to_ascii_lowercase().contains("mariadb");
        let s = raw.trim();
        // MariaDB < 11 behind some proxies reports a fake "5.5.5-" prefix.
        let s = if mariadb {
            s.strip_prefix("5.5.5-").unwrap_or(s)
        } else {
            s
        };
        let head = s.split(['-', '+', ' ']).next()?;
        let mut parts = head.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts
            .next()
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Some(ServerVersion {
            mariadb,
            major,
            minor,
            patch,
        })
    }

    fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// MariaDB ≥ 10.5 names the "show binlog status" privilege BINLOG MONITOR.
    pub fn has_binlog_monitor(&self) -> bool {
        self.mariadb && self.at_least(10, 5)
    }
}

/// An item that judges one global variable's value (`None`: the server has no such variable).
pub type VariableItem = fn(&Server, Option<&str>) -> CheckItem;

/// Everything an item needs to know about the server beside the value itself.
#[derive(Debug, Clone)]
pub struct Server {
    /// DM's extra text: `address of db instance - host:port`.
    pub extra: String,
    /// The parsed version, when it could be read.
    pub version: Option<ServerVersion>,
}

impl Server {
    pub fn new(host: &str, port: u16, version: Option<ServerVersion>) -> Server {
        Server {
            extra: format!("address of db instance - {host}:{port}"),
            version,
        }
    }

    fn mariadb(&self) -> bool {
        self.version.is_none_or(|v| v.mariadb)
    }

    /// The my.cnf section to name in instructions.
    fn cnf_section(&self) -> &'static str {
        if self.mariadb() {
            "[mariadbd]"
        } else {
            "[mysqld]"
        }
    }

    fn item(&self, name: &str, desc: &str) -> CheckItem {
        CheckItem {
            name: name.to_string(),
            desc: desc.to_string(),
            state: CheckState::Success,
            message: String::new(),
            instruction: String::new(),
            extra: self.extra.clone(),
        }
    }
}

fn fail(mut item: CheckItem, state: CheckState, message: String, instruction: String) -> CheckItem {
    item.state = state;
    item.message = message;
    item.instruction = instruction;
    item
}

/// An item whose value could not be read (`cause` is the error text).
pub fn unreadable(server: &Server, name: &str, desc: &str, cause: &str) -> CheckItem {
    fail(
        server.item(name, desc),
        CheckState::Failure,
        format!("could not read the value: {cause}"),
        "make sure the user can connect and run SHOW GLOBAL VARIABLES and SHOW GRANTS".to_string(),
    )
}

/// `version`: MariaDB ≥ 10.1, MySQL ≥ 5.6.
pub fn version(server: &Server, raw: &str) -> CheckItem {
    let item = server.item(names::VERSION, "check whether mysql version is satisfied");
    let Some(v) = ServerVersion::parse(raw) else {
        return fail(
            item,
            CheckState::Warning,
            format!("cannot parse the server version {raw:?}"),
            "use MariaDB >= 10.1 or MySQL >= 5.6".to_string(),
        );
    };
    let (min_major, min_minor, flavor) = if v.mariadb {
        (10, 1, "MariaDB")
    } else {
        (5, 6, "MySQL")
    };
    if !v.at_least(min_major, min_minor) {
        return fail(
            item,
            CheckState::Failure,
            format!(
                "version required at least {flavor} {min_major}.{min_minor}.0 but got {}.{}.{}",
                v.major, v.minor, v.patch
            ),
            format!("upgrade the server to {flavor} {min_major}.{min_minor} or later"),
        );
    }
    item
}

/// `server_id`: set and non-zero.
pub fn server_id(server: &Server, value: Option<&str>) -> CheckItem {
    let item = server.item(
        names::SERVER_ID,
        "check whether mysql server_id has been set > 1",
    );
    let fix = format!(
        "set `server_id = <unique non-zero number>` under {} in my.cnf and restart, or run `SET GLOBAL server_id = <n>`",
        server.cnf_section()
    );
    match value.map(str::trim) {
        None => fail(item, CheckState::Failure, "server_id not set".into(), fix),
        Some("0") => fail(item, CheckState::Failure, "server_id is 0".into(), fix),
        Some(v) if v.parse::<u64>().is_err() => fail(
            item,
            CheckState::Failure,
            format!("server_id is {v:?}, not a number"),
            fix,
        ),
        Some(_) => item,
    }
}

/// `binlog_enable`: `log_bin` is ON.
pub fn binlog_enable(server: &Server, value: Option<&str>) -> CheckItem {
    let item = server.item(
        names::BINLOG_ENABLE,
        "check whether mysql binlog is enabled",
    );
    let v = value.unwrap_or("").trim();
    if v.eq_ignore_ascii_case("ON") || v == "1" {
        return item;
    }
    fail(
        item,
        CheckState::Failure,
        format!(
            "log_bin is {}, and should be ON",
            if v.is_empty() { "not set" } else { v }
        ),
        format!(
            "set `log_bin = mariadb-bin` (and a non-zero `server_id`) under {} in my.cnf and restart the server",
            server.cnf_section()
        ),
    )
}

/// `binlog_format`: ROW.
pub fn binlog_format(server: &Server, value: Option<&str>) -> CheckItem {
    let item = server.item(
        names::BINLOG_FORMAT,
        "check whether mysql binlog_format is ROW",
    );
    let v = value.unwrap_or("").trim();
    if v.eq_ignore_ascii_case("ROW") {
        return item;
    }
    fail(
        item,
        CheckState::Failure,
        format!("binlog_format is {v}, and should be ROW"),
        format!(
            "set `binlog_format = ROW` under {} in my.cnf and restart, or run `SET GLOBAL binlog_format = 'ROW'` (new sessions only)",
            server.cnf_section()
        ),
    )
}

/// `binlog_row_image`: FULL (servers without the variable always log full images).
pub fn binlog_row_image(server: &Server, value: Option<&str>) -> CheckItem {
    let item = server.item(
        names::BINLOG_ROW_IMAGE,
        "check whether mysql binlog_row_image is FULL",
    );
    let Some(v) = value.map(str::trim) else {
        return item;
    };
    if v.eq_ignore_ascii_case("FULL") {
        return item;
    }
    fail(
        item,
        CheckState::Failure,
        format!("binlog_row_image is {v}, and should be FULL"),
        format!(
            "set `binlog_row_image = FULL` under {} in my.cnf and restart, or run `SET GLOBAL binlog_row_image = 'FULL'` (new sessions only)",
            server.cnf_section()
        ),
    )
}

/// `binlog_row_metadata` (ours): FULL, else a warning — without it row events carry no column
/// names and the sync unit must map columns by position against the current table schema.
pub fn binlog_row_metadata(server: &Server, value: Option<&str>) -> CheckItem {
    let item = server.item(
        names::BINLOG_ROW_METADATA,
        "check whether binlog_row_metadata is FULL (column names in row events)",
    );
    let fix = format!(
        "set `binlog_row_metadata = FULL` under {} in my.cnf, or run `SET GLOBAL binlog_row_metadata = 'FULL'` (new sessions only)",
        server.cnf_section()
    );
    match value.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("FULL") => item,
        Some(v) => fail(
            item,
            CheckState::Warning,
            format!(
                "binlog_row_metadata is {v}: row events carry no column names, columns are matched by position against the current table schema"
            ),
            fix,
        ),
        None => fail(
            item,
            CheckState::Warning,
            "the server has no binlog_row_metadata (needs MariaDB >= 10.5 or MySQL >= 8.0.1): columns are matched by position against the current table schema".into(),
            "upgrade the server to get binlog_row_metadata, or keep upstream table schemas unchanged while the task catches up".into(),
        ),
    }
}

fn grant_instruction(privs: &Privileges, missing: &[&str]) -> String {
    let user = privs
        .user
        .clone()
        .unwrap_or_else(|| "'user'@'%'".to_string());
    format!("GRANT {} ON *.* TO {user};", missing.join(", "))
}

/// `replication_privilege`: REPLICATION SLAVE, and REPLICATION CLIENT or BINLOG MONITOR, on `*.*`
/// (or ALL PRIVILEGES).
pub fn replication_privilege(server: &Server, privs: &Privileges) -> CheckItem {
    let item = server.item(
        names::REPLICATION_PRIVILEGE,
        "check replication privileges of source DB",
    );
    let mut missing = Vec::new();
    if !privs.has_global("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    if !privs.has_global("REPLICATION CLIENT") && !privs.has_global("BINLOG MONITOR") {
        let binlog_monitor = server.version.is_some_and(|v| v.has_binlog_monitor());
        missing.push(if binlog_monitor {
            "BINLOG MONITOR"
        } else {
            "REPLICATION CLIENT"
        });
    }
    if missing.is_empty() {
        return item;
    }
    fail(
        item,
        CheckState::Failure,
        format!("lack of {} privilege", missing.join(",")),
        grant_instruction(privs, &missing),
    )
}

/// How many table names an item's message lists before "and N more".
const LIST_MAX: usize = 10;

/// `` `db`.`t`, `db`.`u` `` (at most [`LIST_MAX`], then "and N more").
fn table_list(tables: &[(String, String)]) -> String {
    let q = |s: &str| format!("`{}`", s.replace('`', "``"));
    let mut parts: Vec<String> = tables
        .iter()
        .take(LIST_MAX)
        .map(|(d, t)| format!("{}.{}", q(d), q(t)))
        .collect();
    if tables.len() > LIST_MAX {
        parts.push(format!("and {} more", tables.len() - LIST_MAX));
    }
    parts.join(", ")
}

/// The message and `GRANT` statements for missing privileges: the global ones together
/// (`lack of RELOAD,SELECT privilege`), then one part per privilege missing on some tables,
/// naming them; the instruction grants the global ones on `*.*` and the others on each
/// database that holds an uncovered table.
fn lack_text(privs: &Privileges, lacks: &[Lack]) -> (String, String) {
    let user = privs
        .user
        .clone()
        .unwrap_or_else(|| "'user'@'%'".to_string());
    let global: Vec<&str> = lacks
        .iter()
        .filter(|l| l.global())
        .map(|l| l.privilege)
        .collect();
    let mut msg = Vec::new();
    let mut fix = Vec::new();
    if !global.is_empty() {
        msg.push(format!("lack of {} privilege", global.join(",")));
        fix.push(grant_instruction(privs, &global));
    }
    for l in lacks.iter().filter(|l| !l.global()) {
        msg.push(format!(
            "lack of {} privilege on {} dumped table{}: {}",
            l.privilege,
            l.tables.len(),
            if l.tables.len() == 1 { "" } else { "s" },
            table_list(&l.tables)
        ));
        let mut dbs: Vec<&str> = l.tables.iter().map(|(d, _)| d.as_str()).collect();
        dbs.dedup();
        dbs.sort_unstable();
        dbs.dedup();
        for db in dbs {
            fix.push(format!(
                "GRANT {} ON `{}`.* TO {user};",
                l.privilege,
                db.replace('`', "``")
            ));
        }
    }
    (msg.join("; "), fix.join(" "))
}

/// `dump_privilege` (DM's, for MariaDB/MySQL upstreams): SELECT on every dumped table (global,
/// database or table grants), plus RELOAD on `*.*` for `--consistency auto`/`flush` (the global
/// read lock, or MariaDB's backup stage lock) or LOCK TABLES on every dumped table for `lock`;
/// nothing beside SELECT for `none`. `tables`: the tables the dump takes; `None` when they are
/// not known — then SELECT only on some databases is a warning, as it may not cover them.
pub fn dump_privilege(
    server: &Server,
    privs: &Privileges,
    consistency: Consistency,
    tables: Option<&[(String, String)]>,
) -> CheckItem {
    let item = server.item(names::DUMP_PRIVILEGE, "check dump privileges of source DB");
    let on_tables = || tables.map(<[(String, String)]>::to_vec);
    let mut needs = Vec::new();
    match consistency.lock_privilege() {
        Some("RELOAD") => needs.push(Need {
            privilege: "RELOAD",
            tables: None,
        }),
        Some(p) => needs.push(Need {
            privilege: p,
            tables: on_tables(),
        }),
        None => {}
    }
    needs.push(Need {
        privilege: "SELECT",
        tables: on_tables(),
    });
    let mut lacks = privs.lacking(&needs);
    // Without the table list, SELECT somewhere is not known to be short of anything.
    let partial_select = tables.is_none()
        && lacks.iter().any(|l| l.privilege == "SELECT")
        && privs.has_somewhere("SELECT");
    if partial_select {
        lacks.retain(|l| l.privilege != "SELECT");
    }
    // Global ones first, in need order, as DM lists them.
    lacks.sort_by_key(|l| !l.global());
    if !lacks.is_empty() {
        let (message, mut instruction) = lack_text(privs, &lacks);
        if lacks.iter().any(|l| l.privilege == "RELOAD") {
            instruction.push_str(
                " (RELOAD is for the global read lock that makes the dump consistent; where it cannot be granted, set the mydumper `extra-args: \"--consistency none\"`: no lock, and the sync unit stays in safe mode until it has passed the dump's end)",
            );
        }
        return fail(item, CheckState::Failure, message, instruction);
    }
    if partial_select {
        return fail(
            item,
            CheckState::Warning,
            "SELECT is granted only on some databases or tables".into(),
            format!(
                "make sure SELECT covers every migrated table, or run {}",
                grant_instruction(privs, &["SELECT"])
            ),
        );
    }
    item
}

/// One upstream table as `table_schema` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    pub schema: String,
    pub table: String,
    /// A primary key, or a unique key whose columns are all NOT NULL.
    pub has_key: bool,
    /// The names of its FOREIGN KEY constraints.
    pub foreign_keys: Vec<String>,
}

/// `table_schema`: every dumped table has a primary key or a NOT NULL unique key, and none has
/// a foreign key; the tables that do not are a warning (not an error) naming them. A foreign
/// key's cascading actions (ON DELETE/UPDATE CASCADE, SET NULL) are not in the binlog, and
/// dm-rs writes with `foreign_key_checks = 0` (as DM does), so they do not happen downstream.
pub fn table_schema(server: &Server, tables: &[TableKeys]) -> CheckItem {
    let item = server.item(
        names::TABLE_SCHEMA,
        "check whether every migrated table has a primary key or a not-null unique key, and no foreign key",
    );
    let keyless: Vec<(String, String)> = tables
        .iter()
        .filter(|t| !t.has_key)
        .map(|t| (t.schema.clone(), t.table.clone()))
        .collect();
    let with_fk: Vec<String> = tables
        .iter()
        .filter(|t| !t.foreign_keys.is_empty())
        .map(|t| {
            format!(
                "table `{}`.`{}` Foreign Key {}",
                t.schema,
                t.table,
                t.foreign_keys.join(", ")
            )
        })
        .collect();
    if keyless.is_empty() && with_fk.is_empty() {
        return item;
    }
    let mut messages = Vec::new();
    let mut instructions = Vec::new();
    if !keyless.is_empty() {
        messages.push(format!(
            "primary/unique key does not exist in {} table{}: {}",
            keyless.len(),
            if keyless.len() == 1 { "" } else { "s" },
            table_list(&keyless)
        ));
        instructions.push("add a primary key (or a unique key on NOT NULL columns) to these tables: without one the dump cannot split them into chunks (one connection reads each whole), and rows applied again after a restart (safe mode) cannot be matched by key");
    }
    if !with_fk.is_empty() {
        messages.push(format!(
            "{}: its cascading actions are not in the binlog and the downstream session runs with foreign_key_checks = 0, so ON DELETE/ON UPDATE CASCADE and SET NULL do not happen downstream",
            with_fk.join("; ")
        ));
        instructions.push("make sure the foreign keys have no cascading actions (or migrate the child tables too: their rows changed by a cascade are not replicated)");
    }
    fail(
        item,
        CheckState::Warning,
        messages.join("; "),
        instructions.join("; "),
    )
}

/// One upstream shard table of a downstream table, with its columns as information_schema
/// describes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardTable {
    pub source: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<(String, crate::worker::units::sync::schemacmp::ColumnType)>,
}

impl ShardTable {
    fn id(&self) -> String {
        format!("`{}`.`{}`", self.schema, self.table)
    }

    fn has_auto_increment(&self) -> bool {
        self.columns.iter().any(|(_, c)| c.auto_increment)
    }
}

/// `schema_of_shard_tables` of one downstream table (`target`, as `` `db`.`t` ``) merged from
/// `tables` (at least two): pessimistic shard DDL needs the same columns in every shard (name
/// and type, in order: a failure naming the first difference); optimistic needs columns that
/// join into one table (a failure naming the conflict). An auto-increment column in a shard is
/// a warning (its values may collide in the merged table) unless `auto_increment_ID` is
/// ignored.
pub fn shard_tables(
    target: &str,
    tables: &[ShardTable],
    optimistic: bool,
    check_auto_increment: bool,
) -> CheckItem {
    use crate::worker::units::sync::schemacmp::{self, Schema};
    let mut item = CheckItem {
        name: names::SHARD_TABLES.to_string(),
        desc: if optimistic {
            "check consistency of sharding table structures for Optimistic Sharding Merge".into()
        } else {
            "check consistency of sharding table structures".into()
        },
        state: CheckState::Success,
        message: String::new(),
        instruction: String::new(),
        extra: format!("sharding {target}"),
    };
    let Some(first) = tables.first() else {
        return item;
    };
    let mut problems: Vec<String> = Vec::new();
    if optimistic {
        let schemas: Vec<Schema> = tables
            .iter()
            .map(|t| Schema {
                columns: t.columns.clone(),
            })
            .collect();
        if let Err(e) = schemacmp::join_all(&schemas) {
            problems.push(format!(
                "the shard tables of {target} cannot be merged into one table: {e}"
            ));
            item.instruction = "make the conflicting columns compatible in every shard table (optimistic shard DDL merges their columns)".into();
        }
    } else {
        let brief = |t: &ShardTable| -> Vec<String> {
            t.columns
                .iter()
                .map(|(n, c)| {
                    let mut s = format!("{} {}", n.to_lowercase(), c.ty);
                    if c.unsigned {
                        s.push_str(" unsigned");
                    }
                    if c.zerofill {
                        s.push_str(" zerofill");
                    }
                    s
                })
                .collect()
        };
        let mine = brief(first);
        for other in &tables[1..] {
            let theirs = brief(other);
            let names = |t: &ShardTable| -> Vec<String> {
                t.columns.iter().map(|(n, _)| n.to_lowercase()).collect()
            };
            if mine.len() != theirs.len() {
                problems.push(format!(
                    "column length mismatch (self: {} vs other: {}): self: sourceID {} table {} columns {:?}, other: sourceID {} table {} columns {:?}",
                    mine.len(),
                    theirs.len(),
                    first.source,
                    first.id(),
                    names(first),
                    other.source,
                    other.id(),
                    names(other)
                ));
            } else if let Some(i) = (0..mine.len()).find(|&i| mine[i] != theirs[i]) {
                problems.push(format!(
                    "different column definition: self: sourceID {} table {} column {}, other: sourceID {} table {} column {}",
                    first.source,
                    first.id(),
                    mine[i],
                    other.source,
                    other.id(),
                    theirs[i]
                ));
            }
        }
        if !problems.is_empty() {
            item.instruction = "please set same table structure for sharding tables".into();
        }
    }
    if !problems.is_empty() {
        item.state = CheckState::Failure;
        item.extra = format!("error on sharding {target}");
    }
    if check_auto_increment {
        let auto: Vec<String> = tables
            .iter()
            .filter(|t| t.has_auto_increment())
            .map(|t| format!("sourceID {} table {}", t.source, t.id()))
            .collect();
        if !auto.is_empty() {
            problems.push(format!(
                "{} of sharding {target} have auto-increment key, please make sure them don't conflict in target table!",
                auto.join(", ")
            ));
            if item.state == CheckState::Success {
                item.state = CheckState::Warning;
                item.instruction = "If happen conflict, please handle it by yourself. You can refer to https://docs.pingcap.com/tidb-data-migration/stable/shard-merge-best-practices/#handle-conflicts-between-primary-keys-or-unique-indexes-across-multiple-sharded-tables".into();
                item.extra = "auto-increment key checking".into();
            }
        }
    }
    item.message = problems.join("; ");
    item
}

/// `meta_position`: the incremental task's meta `file:pos` is in the upstream's binlog
/// (`logs`: SHOW BINARY LOGS, name and size).
pub fn meta_position(server: &Server, file: &str, pos: u64, logs: &[(String, u64)]) -> CheckItem {
    let item = server.item(
        names::META_POSITION,
        "check whether meta position is valid for db",
    );
    let problem = match logs.iter().find(|(n, _)| n == file) {
        None => format!(
            "binlog file {file} of the task's meta is not on the upstream (purged, or never written): its binary logs are {}",
            logs.first()
                .zip(logs.last())
                .map(|(a, b)| format!("{} .. {}", a.0, b.0))
                .unwrap_or_else(|| "none".into())
        ),
        Some((_, size)) if pos > *size => {
            format!("meta position ({file}, {pos}) is past the end of {file} ({size} bytes)")
        }
        Some(_) => return item,
    };
    fail(
        item,
        CheckState::Failure,
        problem,
        "you should make sure your meta's binlog position is valid and not purged, and the user has REPLICATION SLAVE privilege".into(),
    )
}

/// `binlog_db`: the upstream's `binlog_do_db` / `binlog_ignore_db` (SHOW MASTER STATUS) keep
/// every database the task migrates (`schemas`) in the binlog. DM fails the item (with a
/// warning's text): changes of a database cut out of the binlog are never replicated.
pub fn binlog_db(
    server: &Server,
    do_db: &str,
    ignore_db: &str,
    schemas: &[String],
    case_sensitive: bool,
) -> CheckItem {
    let item = server.item(
        names::BINLOG_DB,
        "check whether migrated dbs are in binlog_do_db/binlog_ignore_db",
    );
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|x| norm(x.trim()))
            .filter(|x| !x.is_empty())
            .collect()
    };
    let (dos, ignores) = (list(do_db), list(ignore_db));
    let mine: Vec<String> = schemas.iter().map(|s| norm(s)).collect();
    let (message, instruction) = if !dos.is_empty() {
        let missing: Vec<&str> = mine
            .iter()
            .filter(|s| !dos.contains(s))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return item;
        }
        (
            format!(
                "these dbs [{}] are not in binlog_do_db[{do_db}]",
                missing.join(",")
            ),
            "Ensure that the do_dbs contains the dbs you want to migrate",
        )
    } else {
        let cut: Vec<&str> = mine
            .iter()
            .filter(|s| ignores.contains(s))
            .map(String::as_str)
            .collect();
        if cut.is_empty() {
            return item;
        }
        (
            format!(
                "these dbs [{}] are in binlog_ignore_db[{ignore_db}]",
                cut.join(",")
            ),
            "Ensure that the ignore_dbs does not contain the dbs you want to migrate",
        )
    };
    fail(item, CheckState::Failure, message, instruction.into())
}

/// Which side's connections `conn_number` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnUser {
    /// The dump on the upstream: `threads` + 2 (one to plan the SQL, one for the lock).
    Dump,
    /// The loads on the downstream: Σ(pool-size + 1) over the task's sources.
    Load,
}

/// `conn_number`: the server's `max_connections` (`None`: not readable as a number) is at least
/// `needed`.
pub fn conn_number(
    server: &Server,
    user: ConnUser,
    max_connections: Option<&str>,
    needed: u64,
) -> CheckItem {
    let (desc, who, fix) = match user {
        ConnUser::Dump => (
            "check whether the source's max_connections leaves room for the dump",
            "the dump (threads + 2)",
            "raise max_connections on the source (`SET GLOBAL max_connections = N`), or lower the mydumper `threads`",
        ),
        ConnUser::Load => (
            "check whether the target's max_connections leaves room for the load",
            "the load (pool-size + 1 for each source)",
            "raise max_connections on the target (`SET GLOBAL max_connections = N`), or lower the loader `pool-size`",
        ),
    };
    let item = server.item(names::CONN_NUMBER, desc);
    match max_connections.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(max) if max >= needed => item,
        Some(max) => fail(
            item,
            CheckState::Failure,
            format!("max_connections is {max}, less than the {needed} connections {who} opens"),
            fix.into(),
        ),
        None => fail(
            item,
            CheckState::Warning,
            format!(
                "max_connections could not be read ({}); {who} opens {needed} connections",
                max_connections.unwrap_or("no such variable")
            ),
            fix.into(),
        ),
    }
}

/// The privileges the load and the sync use on the target (DM's `target_privilege`).
pub const TARGET_PRIVILEGES: &[&str] = &[
    "CREATE", "SELECT", "INSERT", "UPDATE", "DELETE", "ALTER", "DROP", "INDEX",
];

/// The privileges of [`TARGET_PRIVILEGES`] the target user lacks on `*.*`, as a message and
/// the `GRANT` to run; `None` when nothing is missing. DM makes this a warning: grants on the
/// migrated databases alone may be enough.
pub fn target_privileges(privs: &Privileges) -> Option<(String, String)> {
    let needs: Vec<Need> = TARGET_PRIVILEGES
        .iter()
        .map(|p| Need {
            privilege: p,
            tables: None,
        })
        .collect();
    let lacks = privs.lacking(&needs);
    if lacks.is_empty() {
        return None;
    }
    let missing: Vec<&str> = lacks.iter().map(|l| l.privilege).collect();
    Some((
        format!(
            "lack of {} global (*.*) privilege: the load creates and fills the migrated tables, and the sync applies DDL and rows to them",
            missing.join(",")
        ),
        format!(
            "{} (or grant them on each migrated database)",
            grant_instruction(privs, &missing)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maria() -> Server {
        Server::new("127.0.0.1", 3306, ServerVersion::parse("10.11.6-MariaDB"))
    }

    fn mysql() -> Server {
        Server::new("10.0.0.1", 3307, ServerVersion::parse("8.0.36"))
    }

    #[test]
    fn parses_versions() {
        let cases = [
            ("10.11.19-MariaDB-0+deb12u1", Some((true, 10, 11, 19))),
            ("5.5.5-10.4.8-MariaDB-log", Some((true, 10, 4, 8))),
            ("8.0.36", Some((false, 8, 0, 36))),
            ("5.7.44-log", Some((false, 5, 7, 44))),
            ("11.4", Some((false, 11, 4, 0))),
            ("garbage", None),
            ("", None),
        ];
        for (raw, want) in cases {
            let got = ServerVersion::parse(raw).map(|v| (v.mariadb, v.major, v.minor, v.patch));
            assert_eq!(got, want, "{raw}");
        }
    }

    #[test]
    fn version_item() {
        let cases = [
            ("10.11.19-MariaDB", CheckState::Success),
            ("10.1.48-MariaDB", CheckState::Success),
            ("10.0.38-MariaDB", CheckState::Failure),
            ("5.6.51", CheckState::Success),
            ("5.5.62", CheckState::Failure),
            ("8.0.36", CheckState::Success),
            ("what", CheckState::Warning),
        ];
        for (raw, want) in cases {
            let item = version(&maria(), raw);
            assert_eq!(item.state, want, "{raw}: {item:?}");
            assert_eq!(item.name, "version");
            if want != CheckState::Success {
                assert!(!item.instruction.is_empty());
            }
        }
    }

    #[test]
    fn variable_items() {
        type F = VariableItem;
        let cases: Vec<(F, Option<&str>, CheckState, &str)> = vec![
            (server_id, Some("1"), CheckState::Success, ""),
            (server_id, Some("0"), CheckState::Failure, "server_id is 0"),
            (server_id, None, CheckState::Failure, "server_id not set"),
            (binlog_enable, Some("ON"), CheckState::Success, ""),
            (
                binlog_enable,
                Some("OFF"),
                CheckState::Failure,
                "log_bin is OFF, and should be ON",
            ),
            (
                binlog_enable,
                None,
                CheckState::Failure,
                "log_bin is not set, and should be ON",
            ),
            (binlog_format, Some("ROW"), CheckState::Success, ""),
            (binlog_format, Some("row"), CheckState::Success, ""),
            (
                binlog_format,
                Some("STATEMENT"),
                CheckState::Failure,
                "binlog_format is STATEMENT, and should be ROW",
            ),
            (
                binlog_format,
                Some("MIXED"),
                CheckState::Failure,
                "binlog_format is MIXED, and should be ROW",
            ),
            (binlog_row_image, Some("FULL"), CheckState::Success, ""),
            (
                binlog_row_image,
                Some("MINIMAL"),
                CheckState::Failure,
                "binlog_row_image is MINIMAL, and should be FULL",
            ),
            (
                binlog_row_image,
                Some("NOBLOB"),
                CheckState::Failure,
                "binlog_row_image is NOBLOB, and should be FULL",
            ),
            (binlog_row_image, None, CheckState::Success, ""),
            (binlog_row_metadata, Some("FULL"), CheckState::Success, ""),
            (
                binlog_row_metadata,
                Some("MINIMAL"),
                CheckState::Warning,
                "binlog_row_metadata is MINIMAL",
            ),
            (
                binlog_row_metadata,
                Some("NO_LOG"),
                CheckState::Warning,
                "binlog_row_metadata is NO_LOG",
            ),
            (
                binlog_row_metadata,
                None,
                CheckState::Warning,
                "has no binlog_row_metadata",
            ),
        ];
        for (f, value, state, msg) in cases {
            let item = f(&maria(), value);
            assert_eq!(item.state, state, "{value:?}: {item:?}");
            assert!(item.message.contains(msg), "{value:?}: {item:?}");
            assert_eq!(item.extra, "address of db instance - 127.0.0.1:3306");
            if state == CheckState::Success {
                assert!(item.message.is_empty() && item.instruction.is_empty());
            } else if value.is_some() || item.name == "server_id" || item.name == "binlog_enable" {
                assert!(item.instruction.contains("[mariadbd]"), "{item:?}");
            } else {
                assert!(!item.instruction.is_empty(), "{item:?}");
            }
        }
    }

    #[test]
    fn binlog_format_instruction_says_how_to_fix() {
        let item = binlog_format(&maria(), Some("STATEMENT"));
        assert_eq!(
            item.instruction,
            "set `binlog_format = ROW` under [mariadbd] in my.cnf and restart, or run `SET GLOBAL binlog_format = 'ROW'` (new sessions only)"
        );
        let item = binlog_format(&mysql(), Some("STATEMENT"));
        assert!(item.instruction.contains("[mysqld]"));
    }

    #[test]
    fn replication_privilege_item() {
        // (grants, server, state, instruction)
        let cases: Vec<(&[&str], Server, CheckState, &str)> = vec![
            (
                &["GRANT ALL PRIVILEGES ON *.* TO `root`@`%`"],
                maria(),
                CheckState::Success,
                "",
            ),
            (
                &["GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `dm`@`%`"],
                maria(),
                CheckState::Success,
                "",
            ),
            (
                &["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dm`@`%`"],
                mysql(),
                CheckState::Success,
                "",
            ),
            (
                &["GRANT SELECT ON *.* TO `ro`@`%`"],
                maria(),
                CheckState::Failure,
                "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `ro`@`%`;",
            ),
            (
                &["GRANT SELECT ON *.* TO `ro`@`%`"],
                mysql(),
                CheckState::Failure,
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `ro`@`%`;",
            ),
            (
                &["GRANT REPLICATION SLAVE ADMIN, REPLICA MONITOR ON *.* TO `a`@`%`"],
                maria(),
                CheckState::Failure,
                "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `a`@`%`;",
            ),
            (
                &["GRANT ALL PRIVILEGES ON `db`.* TO `a`@`%`"],
                maria(),
                CheckState::Failure,
                "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `a`@`%`;",
            ),
            (
                &[
                    "GRANT `dm_role` TO `u`@`%`",
                    "GRANT USAGE ON *.* TO `u`@`%`",
                    "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `dm_role`",
                ],
                maria(),
                CheckState::Success,
                "",
            ),
        ];
        for (lines, server, state, instruction) in cases {
            let item = replication_privilege(&server, &Privileges::from_lines(lines));
            assert_eq!(item.state, state, "{lines:?}: {item:?}");
            assert_eq!(item.instruction, instruction, "{lines:?}");
        }
    }

    #[test]
    fn dump_privilege_item() {
        let cases: Vec<(&[&str], CheckState, &str)> = vec![
            (
                &["GRANT ALL PRIVILEGES ON *.* TO `root`@`%`"],
                CheckState::Success,
                "",
            ),
            (
                &["GRANT SELECT, RELOAD ON *.* TO `d`@`%`"],
                CheckState::Success,
                "",
            ),
            (
                &["GRANT SELECT ON *.* TO `d`@`%`"],
                CheckState::Failure,
                "lack of RELOAD privilege",
            ),
            (
                &["GRANT USAGE ON *.* TO `d`@`%`"],
                CheckState::Failure,
                "lack of RELOAD,SELECT privilege",
            ),
            (
                &[
                    "GRANT RELOAD ON *.* TO `d`@`%`",
                    "GRANT SELECT ON `shop`.* TO `d`@`%`",
                ],
                CheckState::Warning,
                "SELECT is granted only on some",
            ),
        ];
        for (lines, state, msg) in cases {
            let item = dump_privilege(
                &maria(),
                &Privileges::from_lines(lines),
                Consistency::Auto,
                None,
            );
            assert_eq!(item.state, state, "{lines:?}: {item:?}");
            assert!(item.message.contains(msg), "{lines:?}: {item:?}");
        }
    }

    fn tables(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(d, t)| (d.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn dump_privilege_per_consistency_and_table() {
        let dumped = tables(&[("shop", "orders"), ("shop", "items"), ("crm", "people")]);
        use Consistency::{Auto, Flush, Lock, None as NoLock};
        // (grants, consistency, state, message, instruction)
        let cases: Vec<(&[&str], Consistency, CheckState, &str, &str)> = vec![
            (
                &["GRANT SELECT, RELOAD ON *.* TO `d`@`%`"],
                Auto,
                CheckState::Success,
                "",
                "",
            ),
            (
                &["GRANT SELECT ON *.* TO `d`@`%`"],
                Flush,
                CheckState::Failure,
                "lack of RELOAD privilege",
                "GRANT RELOAD ON *.* TO `d`@`%`; (RELOAD is for the global read lock",
            ),
            (
                &["GRANT SELECT ON *.* TO `d`@`%`"],
                NoLock,
                CheckState::Success,
                "",
                "",
            ),
            (
                &["GRANT SELECT ON `shop`.* TO `d`@`%`"],
                NoLock,
                CheckState::Failure,
                "lack of SELECT privilege on 1 dumped table: `crm`.`people`",
                "GRANT SELECT ON `crm`.* TO `d`@`%`;",
            ),
            (
                &[
                    "GRANT RELOAD ON *.* TO `d`@`%`",
                    "GRANT SELECT ON `shop`.* TO `d`@`%`",
                    "GRANT SELECT ON `crm`.`people` TO `d`@`%`",
                ],
                Auto,
                CheckState::Success,
                "",
                "",
            ),
            (
                &["GRANT SELECT ON *.* TO `d`@`%`"],
                Lock,
                CheckState::Failure,
                "lack of LOCK TABLES privilege on 3 dumped tables: `shop`.`orders`, `shop`.`items`, `crm`.`people`",
                "GRANT LOCK TABLES ON `crm`.* TO `d`@`%`; GRANT LOCK TABLES ON `shop`.* TO `d`@`%`;",
            ),
            (
                &[
                    "GRANT SELECT, LOCK TABLES ON `shop`.* TO `d`@`%`",
                    "GRANT SELECT, LOCK TABLES ON `crm`.* TO `d`@`%`",
                ],
                Lock,
                CheckState::Success,
                "",
                "",
            ),
            (
                &["GRANT USAGE ON *.* TO `d`@`%`"],
                Auto,
                CheckState::Failure,
                "lack of RELOAD privilege; lack of SELECT privilege on 3 dumped tables",
                "GRANT RELOAD ON *.* TO `d`@`%`; GRANT SELECT ON `crm`.* TO `d`@`%`; GRANT SELECT ON `shop`.* TO `d`@`%`;",
            ),
        ];
        for (lines, consistency, state, msg, fix) in cases {
            let item = dump_privilege(
                &maria(),
                &Privileges::from_lines(lines),
                consistency,
                Some(&dumped),
            );
            assert_eq!(item.state, state, "{lines:?} {consistency:?}: {item:?}");
            assert!(item.message.starts_with(msg), "{lines:?}: {item:?}");
            assert!(item.instruction.starts_with(fix), "{lines:?}: {item:?}");
            assert_eq!(item.name, "dump_privilege");
        }
    }

    #[test]
    fn table_schema_warns_with_the_keyless_tables() {
        let t = |s: &str, n: &str, k: bool| TableKeys {
            schema: s.into(),
            table: n.into(),
            has_key: k,
            foreign_keys: Vec::new(),
        };
        let many: Vec<TableKeys> = (0..12).map(|i| t("db", &format!("t{i}"), false)).collect();
        let cases: Vec<(Vec<TableKeys>, CheckState, &str)> = vec![
            (vec![], CheckState::Success, ""),
            (vec![t("a", "b", true)], CheckState::Success, ""),
            (
                vec![t("a", "b", true), t("a", "log", false)],
                CheckState::Warning,
                "primary/unique key does not exist in 1 table: `a`.`log`",
            ),
            (
                many,
                CheckState::Warning,
                "primary/unique key does not exist in 12 tables: `db`.`t0`, `db`.`t1`, `db`.`t2`, `db`.`t3`, `db`.`t4`, `db`.`t5`, `db`.`t6`, `db`.`t7`, `db`.`t8`, `db`.`t9`, and 2 more",
            ),
        ];
        for (tables, state, msg) in cases {
            let item = table_schema(&maria(), &tables);
            assert_eq!(item.state, state, "{item:?}");
            assert_eq!(item.message, msg);
            assert_eq!(item.name, "table_schema");
        }
    }

    #[test]
    fn table_schema_warns_on_foreign_keys() {
        let tables = vec![TableKeys {
            schema: "dmctl".into(),
            table: "only_warning".into(),
            has_key: true,
            foreign_keys: vec!["only_warning_ibfk_1".into()],
        }];
        let item = table_schema(&maria(), &tables);
        assert_eq!(item.state, CheckState::Warning);
        assert!(
            item.message.starts_with(
                "table `dmctl`.`only_warning` Foreign Key only_warning_ibfk_1: its cascading actions"
            ),
            "{}",
            item.message
        );
    }

    fn shard(source: &str, table: &str, cols: &[(&str, &str)]) -> ShardTable {
        use crate::worker::units::sync::schemacmp::ColumnType;
        ShardTable {
            source: source.into(),
            schema: "db".into(),
            table: table.into(),
            columns: cols
                .iter()
                .map(|(n, t)| {
                    let (ty, extra) = t.split_once(' ').unwrap_or((t, ""));
                    (
                        n.to_string(),
                        ColumnType::from_information_schema(ty, "YES", None, extra),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn shard_tables_per_mode() {
        let ab = shard("s1", "tb_1", &[("a", "int(11)"), ("b", "int(11)")]);
        let ac = shard("s1", "tb_2", &[("a", "int(11)"), ("c", "int(11)")]);
        let abc = shard(
            "s2",
            "tb_3",
            &[("a", "int(11)"), ("b", "int(11)"), ("c", "int(11)")],
        );
        let ab2 = shard("s2", "tb_1", &[("A", "int(11)"), ("b", "int(11)")]);
        let auto = shard(
            "s2",
            "t_1",
            &[("a", "int(11) auto_increment"), ("b", "int(11)")],
        );
        let wide = shard("s2", "tb_9", &[("a", "varchar(10)"), ("b", "int(11)")]);
        // (tables, optimistic, check auto-increment, state, message start)
        let cases: Vec<(Vec<ShardTable>, bool, bool, CheckState, &str)> = vec![
            (
                vec![ab.clone(), ab2.clone()],
                false,
                true,
                CheckState::Success,
                "",
            ),
            (
                vec![ab.clone(), ac.clone()],
                false,
                true,
                CheckState::Failure,
                "different column definition: self: sourceID s1 table `db`.`tb_1` column b int, other: sourceID s1 table `db`.`tb_2` column c int",
            ),
            (
                vec![ab.clone(), abc.clone()],
                false,
                true,
                CheckState::Failure,
                "column length mismatch (self: 2 vs other: 3)",
            ),
            (
                vec![ab.clone(), ac.clone(), abc],
                true,
                true,
                CheckState::Success,
                "",
            ),
            (
                vec![ab.clone(), wide],
                true,
                true,
                CheckState::Failure,
                "the shard tables of `db`.`tb` cannot be merged into one table: column `a`",
            ),
            (
                vec![ab.clone(), auto.clone()],
                false,
                true,
                CheckState::Warning,
                "sourceID s2 table `db`.`t_1` of sharding `db`.`tb` have auto-increment key",
            ),
            (vec![ab, auto], false, false, CheckState::Success, ""),
        ];
        for (tables, optimistic, auto_inc, state, msg) in cases {
            let item = shard_tables("`db`.`tb`", &tables, optimistic, auto_inc);
            assert_eq!(item.state, state, "{item:?}");
            assert!(item.message.starts_with(msg), "{msg}\n{item:?}");
            assert_eq!(item.name, "schema_of_shard_tables");
        }
    }

    #[test]
    fn meta_position_and_binlog_db() {
        let logs = vec![
            ("bin.000001".to_string(), 900u64),
            ("bin.000002".into(), 400),
        ];
        let cases = [
            ("bin.000001", 4, CheckState::Success),
            ("bin.000002", 400, CheckState::Success),
            ("bin.000002", 401, CheckState::Failure),
            ("bin.000000", 4, CheckState::Failure),
        ];
        for (f, p, state) in cases {
            assert_eq!(meta_position(&maria(), f, p, &logs).state, state, "{f}:{p}");
        }
        let dbs = vec!["Shop".to_string(), "log".to_string()];
        let cases = [
            ("", "", false, CheckState::Success, ""),
            ("shop,log", "", false, CheckState::Success, ""),
            (
                "shop",
                "",
                false,
                CheckState::Failure,
                "these dbs [log] are not in binlog_do_db[shop]",
            ),
            (
                "shop",
                "",
                true,
                CheckState::Failure,
                "these dbs [Shop,log] are not in binlog_do_db[shop]",
            ),
            (
                "",
                "log,x",
                false,
                CheckState::Failure,
                "these dbs [log] are in binlog_ignore_db[log,x]",
            ),
            ("", "x", false, CheckState::Success, ""),
        ];
        for (d, i, cs, state, msg) in cases {
            let item = binlog_db(&maria(), d, i, &dbs, cs);
            assert_eq!(item.state, state, "{d} {i}: {item:?}");
            assert_eq!(item.message, msg);
        }
    }

    #[test]
    fn conn_number_against_max_connections() {
        let cases: Vec<(ConnUser, Option<&str>, u64, CheckState, &str)> = vec![
            (ConnUser::Dump, Some("151"), 6, CheckState::Success, ""),
            (ConnUser::Dump, Some("6"), 6, CheckState::Success, ""),
            (
                ConnUser::Dump,
                Some("5"),
                6,
                CheckState::Failure,
                "max_connections is 5, less than the 6 connections the dump (threads + 2) opens",
            ),
            (
                ConnUser::Load,
                Some("20"),
                34,
                CheckState::Failure,
                "max_connections is 20, less than the 34 connections the load (pool-size + 1 for each source) opens",
            ),
            (
                ConnUser::Load,
                None,
                34,
                CheckState::Warning,
                "max_connections could not be read (no such variable)",
            ),
        ];
        for (user, max, needed, state, msg) in cases {
            let item = conn_number(&maria(), user, max, needed);
            assert_eq!(item.state, state, "{item:?}");
            assert!(item.message.starts_with(msg), "{item:?}");
            if state != CheckState::Success {
                assert!(item.instruction.contains("max_connections"));
            }
        }
    }

    #[test]
    fn target_privileges_needed_globally() {
        let cases: Vec<(&[&str], Option<&str>)> = vec![
            (&["GRANT ALL PRIVILEGES ON *.* TO `t`@`%`"], None),
            (
                &[
                    "GRANT CREATE, SELECT, INSERT, UPDATE, DELETE, ALTER, DROP, INDEX ON *.* TO `t`@`%`",
                ],
                None,
            ),
            (
                &["GRANT SELECT, INSERT, UPDATE, DELETE ON *.* TO `t`@`%`"],
                Some("lack of CREATE,ALTER,DROP,INDEX global (*.*) privilege"),
            ),
            (
                &["GRANT ALL PRIVILEGES ON `shop`.* TO `t`@`%`"],
                Some("lack of CREATE,SELECT,INSERT,UPDATE,DELETE,ALTER,DROP,INDEX global"),
            ),
        ];
        for (lines, want) in cases {
            let got = target_privileges(&Privileges::from_lines(lines));
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some((msg, fix))) => {
                    assert!(msg.starts_with(w), "{msg}");
                    assert!(fix.starts_with("GRANT "), "{fix}");
                }
                _ => panic!("{lines:?}: {got:?}"),
            }
        }
    }
}

#[cfg(test)]
mod expression_filter_tests {
    use super::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn expression_filter_columns_table() {
        let have: Vec<String> = vec!["id".into(), "C".into()];
        let cases: &[(&[&str], Option<&[String]>, CheckState, &str)] = &[
            (&["id", "c"], Some(&have), CheckState::Success, ""),
            (&["ID"], Some(&have), CheckState::Success, ""),
            (
                &["id", "nope", "x"],
                Some(&have),
                CheckState::Failure,
                "unknown column(s) nope, x of `db`.`t` (its columns: id, C)",
            ),
            (
                &["id"],
                None,
                CheckState::Warning,
                "does not exist upstream",
            ),
        ];
        for (wanted, have, state, msg) in cases {
            let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
            let item = expression_filter_columns("ef", "db", "t", &wanted, *have, "source s1");
            assert_eq!(item.state, *state, "{wanted:?}");
            assert!(item.message.contains(msg), "{}", item.message);
            assert_eq!(item.name, names::EXPRESSION_FILTER);
        }
    }
}
