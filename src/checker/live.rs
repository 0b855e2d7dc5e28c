//! The checks that talk to servers: read variables and grants from an upstream, try to create the
//! meta schema on the downstream, and hand the values to [`super::items`].
//!
//! Called through [`super::check_source`] / [`super::check_target`] by dm-master. Every network
//! step has a timeout; every failure becomes a failed item, never an `Err` or a panic. It never
//! writes to the upstream.

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};
use tracing::{Instrument, debug, info_span};

use super::grants::Privileges;
use super::items::{self, ConnUser, Server, ServerVersion, TableKeys, names};
use super::task::{Consistency, SourcePlan, load_connections};
use super::{CheckItem, CheckReport, CheckState};
use crate::config::task::TaskConfig;

/// How long to wait for one statement.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many nested roles to follow when gathering privileges.
const MAX_ROLES: usize = 16;

/// Why a step of a check could not be done (becomes an item's message).
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error("{0}")]
    Sql(#[from] mysql_async::Error),
    #[error("{0}")]
    Connect(#[from] crate::config::ConnectError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("unexpected value in column {col} of `{sql}`")]
    Value { sql: String, col: usize },
}

/// One connection within `config::CONNECT_TIMEOUT` (`config::db::connect_opts`). The cause is kept
/// without the address, which the item's message already names.
async fn connect(opts: Opts) -> Result<Conn, CheckError> {
    use crate::config::ConnectError;
    match crate::config::db::connect_opts(opts).await {
        Ok(c) => Ok(c),
        Err(ConnectError::Sql { source, .. }) => Err(CheckError::Sql(source)),
        Err(ConnectError::Timeout { timeout, .. }) => Err(CheckError::Timeout(timeout)),
        Err(e) => Err(CheckError::Connect(e)),
    }
}

async fn query_rows(conn: &mut Conn, sql: &str) -> Result<Vec<Row>, CheckError> {
    tokio::time::timeout(QUERY_TIMEOUT, conn.query::<Row, _>(sql))
        .await
        .map_err(|_| CheckError::Timeout(QUERY_TIMEOUT))?
        .map_err(CheckError::from)
}

async fn exec(conn: &mut Conn, sql: &str) -> Result<(), CheckError> {
    tokio::time::timeout(QUERY_TIMEOUT, conn.query_drop(sql))
        .await
        .map_err(|_| CheckError::Timeout(QUERY_TIMEOUT))?
        .map_err(CheckError::from)
}

/// Column `col` of `row` as text (`None` for SQL NULL).
fn text(row: &Row, col: usize, sql: &str) -> Result<Option<String>, CheckError> {
    let bad = || CheckError::Value {
        sql: sql.to_string(),
        col,
    };
    match row.as_ref(col) {
        None => Err(bad()),
        Some(mysql_async::Value::NULL) => Ok(None),
        Some(mysql_async::Value::Bytes(b)) => Ok(Some(String::from_utf8_lossy(b).into_owned())),
        Some(v) => Ok(Some(v.as_sql(true).trim_matches('\'').to_string())),
    }
}

/// `SHOW GLOBAL VARIABLES LIKE 'name'`: the value, or `None` when the server has no such variable.
async fn global_var(conn: &mut Conn, name: &str) -> Result<Option<String>, CheckError> {
    let sql = format!("SHOW GLOBAL VARIABLES LIKE '{name}'");
    let rows = query_rows(conn, &sql).await?;
    match rows.first() {
        None => Ok(None),
        Some(row) => text(row, 1, &sql),
    }
}

async fn single_value(conn: &mut Conn, sql: &str) -> Result<Option<String>, CheckError> {
    let rows = query_rows(conn, sql).await?;
    match rows.first() {
        None => Ok(None),
        Some(row) => text(row, 0, sql),
    }
}

async fn grant_lines(conn: &mut Conn, sql: &str) -> Result<Vec<String>, CheckError> {
    let mut out = Vec::new();
    for row in query_rows(conn, sql).await? {
        if let Some(line) = text(&row, 0, sql)? {
            out.push(line);
        }
    }
    Ok(out)
}

/// The user's privileges: `SHOW GRANTS FOR CURRENT_USER`, plus the grants of the session's
/// active role(s) (the default role; `CURRENT_ROLE()`) and of roles granted to them, where the
/// server lets us read them.
async fn privileges(conn: &mut Conn) -> Result<Privileges, CheckError> {
    let lines = grant_lines(conn, "SHOW GRANTS FOR CURRENT_USER").await?;
    let mut privs = Privileges::from_lines(&lines);
    // MariaDB: the role name or NULL; MySQL 8: `r`@`%`,… or NONE. Older servers: an error.
    let mut pending: Vec<String> = match single_value(conn, "SELECT CURRENT_ROLE()").await {
        Ok(Some(v)) if !v.eq_ignore_ascii_case("NONE") => v
            .split(',')
            .map(|r| super::grants::grantee_user(r.trim()))
            .filter(|r| !r.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    while let Some(role) = pending.pop() {
        if seen.len() >= MAX_ROLES || !seen.insert(role.clone()) {
            continue;
        }
        let before: BTreeSet<String> = privs.roles.clone();
        if !privs.has_grants_for(&role) {
            let sql = format!("SHOW GRANTS FOR `{}`", role.replace('`', "``"));
            match grant_lines(conn, &sql).await {
                Ok(lines) => privs.add_lines(&lines),
                Err(e) => debug!(role, error = %e, "cannot read the grants of a role"),
            }
        }
        pending.extend(privs.roles.difference(&before).cloned());
    }
    Ok(privs)
}

fn address(opts: &Opts) -> (String, u16) {
    (opts.ip_or_hostname().to_string(), opts.tcp_port())
}

fn connection_failure(
    name: &str,
    desc: &str,
    host: &str,
    port: u16,
    user: &str,
    cause: &str,
) -> CheckItem {
    CheckItem {
        name: name.to_string(),
        desc: desc.to_string(),
        state: CheckState::Failure,
        message: format!("cannot connect to {host}:{port} as {user:?}: {cause}"),
        instruction: format!(
            "Please check the database connection and the database config in configuration file: is the server at {host}:{port} running and reachable, are the user and password right?"
        ),
        extra: format!("address of db instance - {host}:{port}"),
    }
}

/// One expression filter to check: `(rule, schema, table, columns it names)`.
pub type FilterColumns = (String, String, String, Vec<String>);

/// Checks that the columns each expression filter names exist in its upstream table (one item
/// per filter; a connection failure is one failed item).
pub async fn check_expression_filters(
    source_id: &str,
    opts: Opts,
    filters: &[FilterColumns],
) -> CheckReport {
    let span = info_span!("precheck", source = source_id);
    async move {
        let mut report = CheckReport::default();
        if filters.is_empty() {
            return report;
        }
        let (host, port) = address(&opts);
        let user = opts.user().unwrap_or("").to_string();
        let extra = format!("source {source_id}");
        let mut conn = match connect(opts).await {
            Ok(c) => c,
            Err(e) => {
                report.items.push(connection_failure(
                    names::EXPRESSION_FILTER,
                    "check the columns expression filters name",
                    &host,
                    port,
                    &user,
                    &e.to_string(),
                ));
                return report;
            }
        };
        for (rule, schema, table, wanted) in filters {
            let lit = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"));
            let sql = format!(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
                lit(schema),
                lit(table)
            );
            let item = match query_rows(&mut conn, &sql).await {
                Ok(rows) => {
                    let have: Vec<String> = rows
                        .iter()
                        .filter_map(|r| text(r, 0, &sql).ok().flatten())
                        .collect();
                    items::expression_filter_columns(
                        rule,
                        schema,
                        table,
                        wanted,
                        (!have.is_empty()).then_some(have.as_slice()),
                        &extra,
                    )
                }
                Err(e) => CheckItem {
                    name: names::EXPRESSION_FILTER.to_string(),
                    desc: format!("check the columns expression-filter {rule:?} names"),
                    state: CheckState::Failure,
                    message: format!("cannot read the columns of `{schema}`.`{table}`: {e}"),
                    instruction: "grant the source user SELECT on information_schema (it has it by default) and retry".into(),
                    extra: extra.clone(),
                },
            };
            report.items.push(item);
        }
        drop(conn);
        report
    }
    .instrument(span)
    .await
}

/// Checks one upstream for a task in `task_mode` (`full`, `incremental` or `all`), skipping the
/// items named in `ignore` (the task's `ignore-checking-items`; `all` skips everything and does not
/// even connect). A connection failure is one failed item naming the address and the cause.
pub async fn check_source(
    source_id: &str,
    opts: Opts,
    task_mode: &str,
    ignore: &[String],
) -> CheckReport {
    let span = info_span!("precheck", source = source_id);
    check_source_inner(opts, SourcePlan::for_mode(task_mode, ignore))
        .instrument(span)
        .await
}

/// Checks the upstream `source_id` of `task` (canonical): the items of [`check_source`] and,
/// when the task dumps (`full`, `all`), `table_schema` (tables without a primary or unique
/// key: a warning naming them), `conn_number` (`max_connections` ≥ threads + 2) and
/// `dump_privilege` measured against the tables the instance's block-allow-list selects and
/// the mydumper `extra-args`' `--consistency`.
///
/// `relay`: the source runs a relay log, which the sync unit reads instead of the upstream's
/// binlog, so `meta_position` is not checked against the upstream (as DM skips it).
pub async fn check_source_for_task(
    source_id: &str,
    opts: Opts,
    task: &TaskConfig,
    relay: bool,
) -> CheckReport {
    let span = info_span!("precheck", task = %task.name, source = source_id);
    let mut plan = SourcePlan::for_task(task, source_id);
    if relay {
        plan.meta = None;
        plan.items.retain(|n| *n != names::META_POSITION);
    }
    check_source_inner(opts, plan).instrument(span).await
}

/// The system schemas a dump never takes (as `information_schema` names them).
const SKIP_SCHEMAS: &str = "'mysql','information_schema','performance_schema','sys'";

/// An upstream table or view the dump would take.
struct Dumped {
    schema: String,
    table: String,
    view: bool,
}

/// The tables and views the plan's dump takes (block-allow-list applied).
async fn dumped_tables(conn: &mut Conn, plan: &SourcePlan) -> Result<Vec<Dumped>, CheckError> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ({SKIP_SCHEMAS}) ORDER BY TABLE_SCHEMA, TABLE_NAME"
    );
    let rules = plan.dump.as_ref().and_then(|d| d.rules.as_ref());
    let mut out = Vec::new();
    for row in query_rows(conn, &sql).await? {
        let (Some(schema), Some(table)) = (text(&row, 0, &sql)?, text(&row, 1, &sql)?) else {
            continue;
        };
        let kind = text(&row, 2, &sql)?.unwrap_or_default();
        let allowed = match rules {
            Some(r) => r.allow_table(&schema, &table),
            None => !crate::rules::is_system_schema(&schema),
        };
        if allowed {
            out.push(Dumped {
                schema,
                table,
                view: kind.eq_ignore_ascii_case("VIEW"),
            });
        }
    }
    Ok(out)
}

/// Which of `tables` (base tables) have a primary key or a unique key on NOT NULL columns.
async fn table_keys(conn: &mut Conn, tables: &[Dumped]) -> Result<Vec<TableKeys>, CheckError> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, MAX(NULLABLE = 'YES') FROM information_schema.STATISTICS WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA NOT IN ({SKIP_SCHEMAS}) GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME"
    );
    let mut keyed = BTreeSet::new();
    for row in query_rows(conn, &sql).await? {
        let (Some(schema), Some(table)) = (text(&row, 0, &sql)?, text(&row, 1, &sql)?) else {
            continue;
        };
        if text(&row, 2, &sql)?.as_deref() == Some("0") {
            keyed.insert((schema, table));
        }
    }
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_TYPE = 'FOREIGN KEY' AND TABLE_SCHEMA NOT IN ({SKIP_SCHEMAS}) ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME"
    );
    let mut fks: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for row in query_rows(conn, &sql).await? {
        let (Some(schema), Some(table), Some(name)) = (
            text(&row, 0, &sql)?,
            text(&row, 1, &sql)?,
            text(&row, 2, &sql)?,
        ) else {
            continue;
        };
        fks.entry((schema, table)).or_default().push(name);
    }
    Ok(tables
        .iter()
        .filter(|t| !t.view)
        .map(|t| {
            let key = (t.schema.clone(), t.table.clone());
            TableKeys {
                has_key: keyed.contains(&key),
                foreign_keys: fks.get(&key).cloned().unwrap_or_default(),
                schema: t.schema.clone(),
                table: t.table.clone(),
            }
        })
        .collect())
}

/// The databases of the upstream tables `rules` let through (`binlog_db`'s schemas).
async fn migrated_schemas(
    conn: &mut Conn,
    rules: &crate::rules::TableRules,
) -> Result<Vec<String>, CheckError> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ({SKIP_SCHEMAS}) ORDER BY TABLE_SCHEMA, TABLE_NAME"
    );
    let mut out: Vec<String> = Vec::new();
    for row in query_rows(conn, &sql).await? {
        let (Some(schema), Some(table)) = (text(&row, 0, &sql)?, text(&row, 1, &sql)?) else {
            continue;
        };
        if rules.allow_table(&schema, &table) && !out.contains(&schema) {
            out.push(schema);
        }
    }
    Ok(out)
}

/// The upstream's binary logs (SHOW BINARY LOGS: name, size).
async fn binary_logs(conn: &mut Conn) -> Result<Vec<(String, u64)>, CheckError> {
    let sql = "SHOW BINARY LOGS";
    let mut out = Vec::new();
    for row in query_rows(conn, sql).await? {
        let (Some(name), Some(size)) = (text(&row, 0, sql)?, text(&row, 1, sql)?) else {
            continue;
        };
        out.push((name, size.parse().unwrap_or(0)));
    }
    Ok(out)
}

async fn check_source_inner(opts: Opts, plan: SourcePlan) -> CheckReport {
    let wanted = plan.items.clone();
    let mut report = CheckReport::default();
    if wanted.is_empty() {
        return report;
    }
    let (host, port) = address(&opts);
    let user = opts.user().unwrap_or("").to_string();
    let mut conn = match connect(opts).await {
        Ok(c) => c,
        Err(e) => {
            report.items.push(connection_failure(
                names::SOURCE_CONNECTION,
                "check whether the source database can be connected",
                &host,
                port,
                &user,
                &e.to_string(),
            ));
            return report;
        }
    };

    let raw_version = single_value(&mut conn, "SELECT VERSION()").await;
    let version = match &raw_version {
        Ok(Some(v)) => ServerVersion::parse(v),
        _ => None,
    };
    let server = Server::new(&host, port, version);
    let privs = if wanted
        .iter()
        .any(|n| *n == names::REPLICATION_PRIVILEGE || *n == names::DUMP_PRIVILEGE)
    {
        Some(privileges(&mut conn).await)
    } else {
        None
    };
    let consistency = plan
        .dump
        .as_ref()
        .map_or(Consistency::Auto, |d| d.consistency);
    let dumped = match &plan.dump {
        Some(_)
            if wanted
                .iter()
                .any(|n| *n == names::DUMP_PRIVILEGE || *n == names::TABLE_SCHEMA) =>
        {
            Some(dumped_tables(&mut conn, &plan).await)
        }
        _ => None,
    };
    let dumped_pairs: Option<Vec<(String, String)>> = match &dumped {
        Some(Ok(list)) => Some(
            list.iter()
                .map(|t| (t.schema.clone(), t.table.clone()))
                .collect(),
        ),
        _ => None,
    };

    for name in wanted {
        let item = match name {
            names::VERSION => match &raw_version {
                Ok(v) => items::version(&server, v.as_deref().unwrap_or("")),
                Err(e) => items::unreadable(
                    &server,
                    name,
                    "check whether mysql version is satisfied",
                    &e.to_string(),
                ),
            },
            names::REPLICATION_PRIVILEGE | names::DUMP_PRIVILEGE => match &privs {
                Some(Ok(p)) if name == names::REPLICATION_PRIVILEGE => {
                    items::replication_privilege(&server, p)
                }
                Some(Ok(p)) => {
                    items::dump_privilege(&server, p, consistency, dumped_pairs.as_deref())
                }
                Some(Err(e)) => items::unreadable(
                    &server,
                    name,
                    "check privileges of source DB",
                    &e.to_string(),
                ),
                None => continue,
            },
            names::TABLE_SCHEMA => {
                let desc =
                    "check whether every migrated table has a primary key or a not-null unique key";
                match &dumped {
                    Some(Ok(list)) => match table_keys(&mut conn, list).await {
                        Ok(keys) => items::table_schema(&server, &keys),
                        Err(e) => items::unreadable(&server, name, desc, &e.to_string()),
                    },
                    Some(Err(e)) => items::unreadable(&server, name, desc, &e.to_string()),
                    None => continue,
                }
            }
            names::META_POSITION => {
                let Some((file, pos)) = &plan.meta else {
                    continue;
                };
                match binary_logs(&mut conn).await {
                    Ok(logs) => items::meta_position(&server, file, *pos, &logs),
                    Err(e) => items::unreadable(
                        &server,
                        name,
                        "check whether meta position is valid for db",
                        &e.to_string(),
                    ),
                }
            }
            names::BINLOG_DB => {
                let Some(rules) = &plan.rules else { continue };
                let desc = "check whether migrated dbs are in binlog_do_db/binlog_ignore_db";
                let status = query_rows(&mut conn, "SHOW MASTER STATUS").await;
                match (status, migrated_schemas(&mut conn, rules).await) {
                    (Ok(rows), Ok(schemas)) => {
                        let sql = "SHOW MASTER STATUS";
                        let col = |i: usize| {
                            rows.first()
                                .and_then(|r| text(r, i, sql).ok().flatten())
                                .unwrap_or_default()
                        };
                        items::binlog_db(&server, &col(2), &col(3), &schemas, plan.case_sensitive)
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        items::unreadable(&server, name, desc, &e.to_string())
                    }
                }
            }
            names::CONN_NUMBER => {
                let Some(d) = &plan.dump else { continue };
                match global_var(&mut conn, "max_connections").await {
                    Ok(v) => {
                        items::conn_number(&server, ConnUser::Dump, v.as_deref(), d.threads + 2)
                    }
                    Err(e) => items::unreadable(
                        &server,
                        name,
                        "check whether the source's max_connections leaves room for the dump",
                        &e.to_string(),
                    ),
                }
            }
            _ => {
                let (var, f): (&str, items::VariableItem) = match name {
                    names::SERVER_ID => ("server_id", items::server_id),
                    names::BINLOG_ENABLE => ("log_bin", items::binlog_enable),
                    names::BINLOG_FORMAT => ("binlog_format", items::binlog_format),
                    names::BINLOG_ROW_IMAGE => ("binlog_row_image", items::binlog_row_image),
                    names::BINLOG_ROW_METADATA => {
                        ("binlog_row_metadata", items::binlog_row_metadata)
                    }
                    _ => continue,
                };
                match global_var(&mut conn, var).await {
                    Ok(v) => f(&server, v.as_deref()),
                    Err(e) => {
                        items::unreadable(&server, name, &format!("check {var}"), &e.to_string())
                    }
                }
            }
        };
        report.items.push(item);
    }
    let _ = conn.disconnect().await;
    report
}

/// DM's `schema_of_shard_tables` (with `auto_increment_ID`) across the task's sources: for a
/// task with a shard mode that dumps (`full`, `all`) and has no checkpoint in the downstream
/// yet, one item per downstream table that more than one upstream table is merged into
/// ([`items::shard_tables`]). A source or target that cannot be reached is left out here (its
/// connection item fails elsewhere).
pub async fn check_shard_tables(
    task: &TaskConfig,
    sources: &[(String, Opts)],
    target: Option<Opts>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let ignored = |name: &str| {
        task.ignore_checking_items
            .iter()
            .any(|i| i == "all" || i == name)
    };
    if task.shard_mode.is_empty()
        || !matches!(task.task_mode.as_str(), "full" | "all")
        || ignored(names::SHARD_TABLES)
    {
        return report;
    }
    let span = info_span!("precheck", task = %task.name, item = names::SHARD_TABLES);
    async move {
        if let Some(t) = target
            && let Ok(mut conn) = connect(t).await
        {
            let mut fresh = true;
            for suffix in ["syncer_checkpoint", "loader_checkpoint"] {
                let q = |s: &str| format!("`{}`", s.replace('`', "``"));
                let sql = format!(
                    "SELECT 1 FROM {}.{} LIMIT 1",
                    q(&task.meta_schema),
                    q(&format!("{}_{suffix}", task.name))
                );
                if query_rows(&mut conn, &sql).await.is_ok_and(|r| !r.is_empty()) {
                    fresh = false;
                }
            }
            let _ = conn.disconnect().await;
            if !fresh {
                debug!("the task has a checkpoint: shard tables are not checked");
                return report;
            }
        }
        let mut groups: std::collections::BTreeMap<(String, String), Vec<items::ShardTable>> =
            Default::default();
        for (id, opts) in sources {
            let Ok(rules) = crate::rules::TableRules::new(task, id) else {
                continue;
            };
            let Ok(mut conn) = connect(opts.clone()).await else {
                continue;
            };
            let sql = format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA NOT IN ({SKIP_SCHEMAS}) ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
            );
            let rows = match query_rows(&mut conn, &sql).await {
                Ok(r) => r,
                Err(e) => {
                    debug!(source = %id, error = %e, "cannot read the upstream columns");
                    continue;
                }
            };
            let mut tables: Vec<items::ShardTable> = Vec::new();
            for row in rows {
                let cell = |i: usize| text(&row, i, &sql).ok().flatten();
                let (Some(schema), Some(table), Some(col), Some(ty)) =
                    (cell(0), cell(1), cell(2), cell(3))
                else {
                    continue;
                };
                if !rules.allow_table(&schema, &table) {
                    continue;
                }
                let def = crate::worker::units::sync::schemacmp::ColumnType::from_information_schema(
                    &ty,
                    &cell(4).unwrap_or_default(),
                    cell(5).as_deref(),
                    &cell(6).unwrap_or_default(),
                );
                match tables.last_mut() {
                    Some(t) if t.schema == schema && t.table == table => t.columns.push((col, def)),
                    _ => tables.push(items::ShardTable {
                        source: id.clone(),
                        schema,
                        table,
                        columns: vec![(col, def)],
                    }),
                }
            }
            let _ = conn.disconnect().await;
            for t in tables {
                let target = rules.route(&t.schema, &t.table);
                groups.entry(target).or_default().push(t);
            }
        }
        for ((schema, table), tables) in groups {
            if tables.len() < 2 {
                continue;
            }
            report.items.push(items::shard_tables(
                &format!("`{schema}`.`{table}`"),
                &tables,
                task.shard_mode == "optimistic",
                !ignored(names::AUTO_INCREMENT_ID),
            ));
        }
        report
    }
    .instrument(span)
    .await
}

/// Checks the downstream: it is reachable with the task's target-database credentials, and the
/// user can create the meta schema (`CREATE DATABASE IF NOT EXISTS`) and a table in it (a scratch
/// table is created and dropped again).
pub async fn check_target(opts: Opts, meta_schema: &str) -> CheckReport {
    let span = info_span!("precheck", target = %opts.ip_or_hostname());
    check_target_inner(opts, meta_schema, None, &[])
        .instrument(span)
        .await
}

/// Checks the downstream for `task`: [`check_target`]'s items (`target_privilege` also warns
/// when the user lacks CREATE, SELECT, INSERT, UPDATE, DELETE, ALTER, DROP or INDEX on `*.*`),
/// and for a task that loads (`full`, `all`) `conn_number`: `max_connections` ≥ Σ(pool-size + 1)
/// over the task's sources. `ignore-checking-items` skips `target_privilege` and `conn_number`.
pub async fn check_target_for_task(opts: Opts, task: &TaskConfig) -> CheckReport {
    let span = info_span!("precheck", task = %task.name, target = %opts.ip_or_hostname());
    check_target_inner(
        opts,
        &task.meta_schema,
        load_connections(task),
        &task.ignore_checking_items,
    )
    .instrument(span)
    .await
}

async fn check_target_inner(
    opts: Opts,
    meta_schema: &str,
    load_conns: Option<u64>,
    ignore: &[String],
) -> CheckReport {
    let ignored = |name: &str| ignore.iter().any(|i| i == "all" || i == name);
    let (host, port) = address(&opts);
    let user = opts.user().unwrap_or("").to_string();
    let desc = "check whether the target database can be connected";
    let mut report = CheckReport::default();
    let mut conn = match connect(opts).await {
        Ok(c) => c,
        Err(e) => {
            report.items.push(connection_failure(
                names::TARGET_CONNECTION,
                desc,
                &host,
                port,
                &user,
                &e.to_string(),
            ));
            return report;
        }
    };
    let server = Server::new(&host, port, None);
    report.items.push(CheckItem {
        name: names::TARGET_CONNECTION.to_string(),
        desc: desc.to_string(),
        state: CheckState::Success,
        message: String::new(),
        instruction: String::new(),
        extra: server.extra.clone(),
    });

    let schema = format!("`{}`", meta_schema.replace('`', "``"));
    let table = format!("{schema}.`dm_rs_precheck`");
    let mut item = CheckItem {
        name: names::TARGET_PRIVILEGE.to_string(),
        desc: format!(
            "check whether the target user can create the meta schema {meta_schema} and tables in it"
        ),
        state: CheckState::Success,
        message: String::new(),
        instruction: String::new(),
        extra: server.extra.clone(),
    };
    let grant = format!(
        "GRANT CREATE, DROP, SELECT, INSERT, UPDATE, DELETE ON {schema}.* TO '{user}'@'%'; (plus the privileges to write the migrated tables)"
    );
    let steps = [
        format!("CREATE DATABASE IF NOT EXISTS {schema}"),
        format!("CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY)"),
    ];
    for sql in &steps {
        if let Err(e) = exec(&mut conn, sql).await {
            item.state = CheckState::Failure;
            item.message = format!("`{sql}` failed: {e}");
            item.instruction = grant.clone();
            break;
        }
    }
    if item.state == CheckState::Success
        && let Err(e) = exec(&mut conn, &format!("DROP TABLE IF EXISTS {table}")).await
    {
        item.state = CheckState::Warning;
        item.message = format!("cannot drop the scratch table {table}: {e}");
        item.instruction = format!("drop {table} by hand; {grant}");
    }
    if item.state == CheckState::Success {
        match privileges(&mut conn).await {
            Ok(p) => {
                if let Some((message, instruction)) = items::target_privileges(&p) {
                    item.state = CheckState::Warning;
                    item.message = message;
                    item.instruction = instruction;
                }
            }
            Err(e) => debug!(error = %e, "cannot read the target user's grants"),
        }
    }
    if !ignored(names::TARGET_PRIVILEGE) {
        report.items.push(item);
    }
    if let Some(needed) = load_conns
        && !ignored(names::CONN_NUMBER)
    {
        report
            .items
            .push(match global_var(&mut conn, "max_connections").await {
                Ok(v) => items::conn_number(&server, ConnUser::Load, v.as_deref(), needed),
                Err(e) => items::unreadable(
                    &server,
                    names::CONN_NUMBER,
                    "check whether the target's max_connections leaves room for the load",
                    &e.to_string(),
                ),
            });
    }
    let _ = conn.disconnect().await;
    report
}

#[cfg(test)]
mod tests {
    use super::super::task::source_items;

    #[test]
    fn items_per_task_mode() {
        let cases: [(&str, &[&str]); 4] = [
            ("full", &["version", "dump_privilege"]),
            (
                "incremental",
                &[
                    "version",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "replication_privilege",
                ],
            ),
            (
                "all",
                &[
                    "version",
                    "dump_privilege",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "replication_privilege",
                ],
            ),
            (
                "ALL",
                &[
                    "version",
                    "dump_privilege",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "replication_privilege",
                ],
            ),
        ];
        for (mode, want) in cases {
            assert_eq!(source_items(mode), want, "{mode}");
        }
    }
}
