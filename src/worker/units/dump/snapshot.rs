//! Taking a dump session: `threads` connections that all see the same snapshot, the binlog
//! location of that snapshot, and the list of tables at that moment.
//!
//! `flush` (DM's default on MariaDB): the dump connections are opened first (login and session
//! settings take the most time), then on the control connection `FLUSH TABLES WITH READ LOCK`
//! (bounded by `lock_wait_timeout`), `SHOW MASTER STATUS` + `@@global.gtid_binlog_pos`, the
//! table list, `START TRANSACTION WITH CONSISTENT SNAPSHOT` on every dump connection, and
//! `UNLOCK TABLES` at once — the lock is held for a few round trips, and how long is logged.
//! A refused lock (no RELOAD privilege) is DM's 32004 with the way out.
//!
//! The dump connections are the narrow client's ([`super::raw`]) where it can log in (plain
//! TCP, `mysql_native_password` or `caching_sha2_password`'s fast path; `DMRS_DUMP_RAW=0`
//! turns it off); the schema reads then use one more, driver, connection in the same snapshot,
//! closed before the rows are dumped. Otherwise every dump connection is the driver's and the
//! first one also does the schema reads.
//!
//! `none`: no lock; the location is read before the connections open their snapshots and again
//! after (the session's upper bound, [`Session::after`]); the sync unit stays in safe mode up to
//! it.
//!
//! A binary log that is off (empty `SHOW MASTER STATUS`) gives a session without a location:
//! allowed for task-mode `full` (DM writes metadata without a position), an error for `all`.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::raw::{Connect, RawConn};
use super::settings::Consistency;
use super::{QUERY_TIMEOUT, db_err, timed};
use crate::config::db::{CONNECT_TIMEOUT, DbConfig, connect_opts};
use crate::rules::TableRules;
use crate::worker::error::{UnitError, code};
use crate::worker::units::full::{BinlogLoc, Session};

/// The server-side bound of the global read lock's wait (seconds).
pub const LOCK_WAIT_TIMEOUT_SECS: u64 = 30;

/// Session settings of every dump connection.
pub fn dump_conn_init() -> Vec<String> {
    vec![
        "SET NAMES binary".into(),
        "SET SESSION time_zone = '+00:00'".into(),
        "SET SESSION sql_mode = ''".into(),
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".into(),
        "SET SESSION net_write_timeout = 600 /*M!100108 , SESSION max_statement_time = 0 */".into(),
    ]
}

/// Session settings of the control connection.
pub fn control_conn_init() -> Vec<String> {
    vec![
        "SET SESSION sql_mode = ''".into(),
        "SET SESSION time_zone = '+00:00'".into(),
    ]
}

/// A table or view as listed when the session was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub db: String,
    pub table: String,
    pub view: bool,
}

/// A dump connection: the narrow client where it can be used ([`super::raw`]), else the
/// driver's.
pub enum DumpConn {
    Raw(RawConn),
    Driver(Conn),
}

impl DumpConn {
    /// The server's connection id (for `KILL QUERY`).
    pub fn id(&self) -> u32 {
        match self {
            DumpConn::Raw(c) => c.id(),
            DumpConn::Driver(c) => c.id(),
        }
    }

    async fn exec(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        match self {
            DumpConn::Raw(c) => c.exec(sql).await,
            DumpConn::Driver(c) => c.query_drop(sql).await,
        }
    }

    /// Closes the connection (bounded by [`QUERY_TIMEOUT`]).
    pub async fn disconnect(self) {
        match self {
            DumpConn::Raw(c) => {
                let _ = tokio::time::timeout(QUERY_TIMEOUT, c.disconnect()).await;
            }
            DumpConn::Driver(c) => {
                let _ = tokio::time::timeout(QUERY_TIMEOUT, c.disconnect()).await;
            }
        }
    }
}

/// A taken session.
pub struct Snapshot {
    pub session: Session,
    /// The dump connections, each inside its consistent-snapshot transaction.
    pub conns: Vec<DumpConn>,
    /// A driver connection in the same snapshot for the schema reads (`SHOW CREATE …`, key
    /// ranges), when the dump connections are narrow ones; `None`: the first dump connection
    /// (a driver one) does them.
    pub catalog: Option<Conn>,
    /// Tables and views the block-allow-list selects, sorted.
    pub tables: Vec<Listed>,
}

/// RFC 3339 UTC now.
pub fn rfc3339_now() -> String {
    format!(
        "{}Z",
        crate::worker::units::full::metadata::now_string().replacen(' ', "T", 1)
    )
}

/// Reads the binlog location (`None`: binary log off).
async fn read_location(c: &mut Conn) -> Result<Option<BinlogLoc>, UnitError> {
    let row: Option<mysql_async::Row> = timed(
        "read SHOW MASTER STATUS",
        QUERY_TIMEOUT,
        c.query_first("SHOW MASTER STATUS"),
    )
    .await?;
    let gtid: Option<Option<String>> = timed(
        "read @@global.gtid_binlog_pos",
        QUERY_TIMEOUT,
        c.query_first("SELECT @@global.gtid_binlog_pos"),
    )
    .await
    .or_else(|e| {
        // MySQL has no such variable; the position alone still works.
        tracing::warn!(error = %e, "could not read @@global.gtid_binlog_pos");
        Ok::<_, UnitError>(None)
    })?;
    Ok(row.and_then(|row| {
        let file: Option<String> = row.get(0);
        let pos: Option<u64> = row.get(1);
        match (file, pos) {
            (Some(file), Some(pos)) if !file.is_empty() => Some(BinlogLoc {
                file,
                pos,
                gtid: gtid.flatten().unwrap_or_default(),
            }),
            _ => None,
        }
    }))
}

/// Lists the tables and views the rules select (system schemas never).
async fn list_tables(c: &mut Conn, rules: &TableRules) -> Result<Vec<Listed>, UnitError> {
    let rows: Vec<(String, String, String)> = timed(
        "list the upstream tables",
        QUERY_TIMEOUT,
        c.query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
        ),
    )
    .await?;
    let mut out: Vec<Listed> = rows
        .into_iter()
        .filter(|(db, t, _)| rules.allow_table(db, t))
        .filter_map(|(db, table, ty)| match ty.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => Some(Listed {
                db,
                table,
                view: false,
            }),
            "VIEW" => Some(Listed {
                db,
                table,
                view: true,
            }),
            other => {
                tracing::warn!(db = %db, table = %table, kind = other, "not dumped (only tables and views are)");
                None
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.db, &a.table).cmp(&(&b.db, &b.table)));
    Ok(out)
}

fn ftwrl_error(e: &mysql_async::Error) -> UnitError {
    let denied =
        matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1227 | 1044 | 1045 | 1142));
    let timeout = matches!(e, mysql_async::Error::Server(s) if s.code == 1205);
    let base = db_err("FLUSH TABLES WITH READ LOCK", e);
    UnitError::new(
        code::DUMP_GLOBAL_LOCK,
        "upstream",
        "Couldn't acquire global lock",
    )
    .cause(e)
    .workaround(if timeout {
        "A long-running query or transaction on the upstream held the tables: the dump retries; or dump without the lock with `extra-args: --consistency none` in the task's mydumpers block (safe mode then covers the gap)."
    } else {
        "Grant the RELOAD privilege to the task's upstream user (GRANT RELOAD ON *.* TO …), or dump without the global read lock with `extra-args: --consistency none` in the task's mydumpers block (safe mode then covers the gap)."
    })
    .retryable(!denied && (timeout || base.retryable))
}

/// Opens one driver dump connection.
async fn open_dump_conn(from: &DbConfig) -> Result<Conn, UnitError> {
    from.tls_check("from").map_err(|e| {
        UnitError::new(code::DUMP_RUNTIME, "internal", "connect to the upstream").cause(e)
    })?;
    connect_opts(from.mysql_opts(dump_conn_init()))
        .await
        .map_err(|e| super::connect_error("connect a dump connection to the upstream", e))
}

/// Opens one narrow dump connection with the session settings; `None`: the narrow client
/// cannot be used here (the reason is logged).
async fn open_raw_conn(from: &DbConfig) -> Result<Option<RawConn>, UnitError> {
    let what = "connect a dump connection to the upstream";
    let mut c = match RawConn::connect(from, CONNECT_TIMEOUT).await {
        Ok(Connect::Connected(c)) => c,
        Ok(Connect::Unsupported(why)) => {
            tracing::info!(reason = %why, "the dump reads through the driver's connections");
            return Ok(None);
        }
        Err(e) => return Err(db_err(what, &e)),
    };
    for q in dump_conn_init() {
        timed(&q, QUERY_TIMEOUT, c.exec(&q)).await?;
    }
    Ok(Some(c))
}

/// `threads` dump connections (narrow ones where possible) and, with narrow ones, the
/// driver connection for the schema reads.
async fn open_dump_conns(
    from: &DbConfig,
    threads: usize,
) -> Result<(Vec<DumpConn>, Option<Conn>), UnitError> {
    let threads = threads.max(1);
    if !raw_disabled()
        && let Some(first) = open_raw_conn(from).await?
    {
        let rest = try_join_all((1..threads).map(|_| async {
            open_raw_conn(from).await?.ok_or_else(|| {
                UnitError::new(
                    code::DUMP_RUNTIME,
                    "internal",
                    "a dump connection could not log in as the first one did",
                )
                .retryable(true)
            })
        }));
        let (rest, catalog) = tokio::try_join!(rest, open_dump_conn(from))?;
        let conns = std::iter::once(first)
            .chain(rest)
            .map(DumpConn::Raw)
            .collect();
        return Ok((conns, Some(catalog)));
    }
    let conns = try_join_all((0..threads).map(|_| open_dump_conn(from))).await?;
    Ok((conns.into_iter().map(DumpConn::Driver).collect(), None))
}

/// `DMRS_DUMP_RAW=0` in the worker's environment: the dump reads through the driver only.
fn raw_disabled() -> bool {
    std::env::var("DMRS_DUMP_RAW").is_ok_and(|v| v == "0")
}

async fn start_snapshots(
    conns: &mut [DumpConn],
    catalog: Option<&mut Conn>,
) -> Result<(), UnitError> {
    const START: &str = "START TRANSACTION /*!40108 WITH CONSISTENT SNAPSHOT */";
    let what = "START TRANSACTION WITH CONSISTENT SNAPSHOT";
    let dump = try_join_all(
        conns
            .iter_mut()
            .map(|c| timed(what, QUERY_TIMEOUT, c.exec(START))),
    );
    let cat = async {
        match catalog {
            Some(c) => timed(what, QUERY_TIMEOUT, c.query_drop(START)).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(dump, cat)?;
    Ok(())
}

/// Takes a new session `id` with `threads` dump connections.
pub async fn take(
    from: &DbConfig,
    control: &mut Conn,
    threads: usize,
    consistency: Consistency,
    need_binlog: bool,
    id: u32,
    rules: &TableRules,
) -> Result<Snapshot, UnitError> {
    let (mut conns, mut catalog) = open_dump_conns(from, threads).await?;
    let started = rfc3339_now();
    let (loc, after, tables) = match consistency {
        Consistency::Flush => {
            timed(
                "set lock_wait_timeout",
                QUERY_TIMEOUT,
                control.query_drop(format!(
                    "SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT_SECS}"
                )),
            )
            .await?;
            let t0 = Instant::now();
            match tokio::time::timeout(
                Duration::from_secs(LOCK_WAIT_TIMEOUT_SECS + 10),
                control.query_drop("FLUSH TABLES WITH READ LOCK"),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ftwrl_error(&e)),
                Err(_) => {
                    return Err(UnitError::new(
                        code::DUMP_GLOBAL_LOCK,
                        "upstream",
                        "Couldn't acquire global lock",
                    )
                    .cause("FLUSH TABLES WITH READ LOCK did not answer in time")
                    .retryable(true));
                }
            }
            let locked = Instant::now();
            let under_lock = async {
                let loc = read_location(control).await?;
                let tables = list_tables(control, rules).await?;
                start_snapshots(&mut conns, catalog.as_mut()).await?;
                Ok::<_, UnitError>((loc, tables))
            }
            .await;
            let unlock = timed(
                "UNLOCK TABLES",
                QUERY_TIMEOUT,
                control.query_drop("UNLOCK TABLES"),
            )
            .await;
            let held = locked.elapsed();
            tracing::info!(
                lock_wait_ms = (locked - t0).as_millis() as u64,
                held_ms = held.as_millis() as u64,
                connections = conns.len(),
                "global read lock released: every dump connection has its snapshot"
            );
            let (loc, tables) = under_lock?;
            unlock?;
            (loc, None, tables)
        }
        Consistency::None => {
            let before = read_location(control).await?;
            start_snapshots(&mut conns, catalog.as_mut()).await?;
            let after = read_location(control).await?;
            let tables = list_tables(control, rules).await?;
            (before, after, tables)
        }
    };
    if loc.is_none() && need_binlog {
        return Err(UnitError::new(
            code::DUMP_RUNTIME,
            "upstream",
            "the upstream's binary log is off (SHOW MASTER STATUS is empty): task-mode all needs a binlog position to continue from",
        )
        .workaround("Enable log_bin (with binlog_format=ROW) on the upstream and restart it, or use task-mode full."));
    }
    tracing::info!(
        session = id,
        position = ?loc.as_ref().map(|l| format!("({}, {})", l.file, l.pos)),
        gtid = loc.as_ref().map(|l| l.gtid.as_str()).unwrap_or(""),
        after = ?after.as_ref().map(|l: &BinlogLoc| format!("({}, {})", l.file, l.pos)),
        tables = tables.len(),
        "dump session taken"
    );
    Ok(Snapshot {
        session: Session {
            id,
            loc: loc.unwrap_or_default(),
            started,
            after,
        },
        conns,
        catalog,
        tables,
    })
}
