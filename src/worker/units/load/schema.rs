//! The schema lane: the load's `CREATE DATABASE`, `CREATE TABLE` and `CREATE VIEW` statements,
//! run one after another in DM's order on a connection of their own, beside the data files.
//!
//! A table's data files start as soon as its own `CREATE TABLE` has run ([`super::Run`] holds
//! them back until then), not once every table is created: creating a table costs the
//! downstream several file syncs (about 15–20 ms on the bench machine), so creating all of
//! them first left the data connections idle at the start of every load.
//!
//! The lane is one connection, so the order of the statements is the dump's: databases before
//! their tables, shards merged onto one target table in turn (the first shard's `CREATE TABLE`
//! creates it, without its deferred secondary indexes, and records them in the loader
//! checkpoint's `#keys` row; the next ones find it there), views at the end.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

use super::checkpoint::LoaderCheckpoint;
use super::{STMT_TIMEOUT, quote, rewrite, scan, timed, timeout_error};
use crate::worker::error::{UnitError, code};

/// One statement group of the lane, names already filtered and routed by the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A target database: its dumped `-schema-create.sql` renamed to `target`, or a plain
    /// `CREATE DATABASE IF NOT EXISTS` without one.
    Db {
        target: String,
        file: Option<String>,
    },
    /// An upstream table's `-schema.sql`, created as the target `(db, table)`.
    Table {
        upstream: (String, String),
        target: (String, String),
        file: String,
    },
    /// A view's `-schema-view.sql`, created in the target database.
    View { target_db: String, file: String },
}

/// The lane's connection and what it created in this run.
pub struct Lane {
    conn: Conn,
    ckpt: Arc<LoaderCheckpoint>,
    dir: PathBuf,
    /// Target databases created (or known to exist) in this run.
    dbs: HashSet<String>,
}

impl Lane {
    pub fn new(conn: Conn, ckpt: Arc<LoaderCheckpoint>, dir: PathBuf) -> Lane {
        Lane {
            conn,
            ckpt,
            dir,
            dbs: HashSet::new(),
        }
    }

    /// The connection back (to disconnect it).
    pub fn into_conn(self) -> Conn {
        self.conn
    }

    /// Runs one job. `Ok(false)`: `stop` came first (only the `load-create` failpoint waits
    /// for it: a statement that has started runs to its end, as a CREATE is atomic).
    pub async fn run(&mut self, job: &Job, stop: &CancellationToken) -> Result<bool, UnitError> {
        match job {
            Job::Db { target, file } => self.create_db(target, file.as_deref()).await?,
            Job::Table { target, file, .. } => {
                if let Some(wait) = crate::worker::failpoint::delay_of("load-create") {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return Ok(false),
                    }
                }
                self.create_table(&target.0, &target.1, file).await?
            }
            Job::View { target_db, file } => self.create_view(target_db, file).await?,
        }
        Ok(true)
    }

    async fn ensure_db(&mut self, target: &str) -> Result<(), UnitError> {
        if self.dbs.contains(target) {
            return Ok(());
        }
        timed(
            &format!("create database {}", quote(target)),
            self.conn
                .query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(target))),
        )
        .await?;
        self.dbs.insert(target.to_string());
        Ok(())
    }

    async fn create_db(&mut self, target: &str, file: Option<&str>) -> Result<(), UnitError> {
        if self.dbs.contains(target) {
            return Ok(());
        }
        if let Some(f) = file {
            let t = target.to_string();
            let rw = move |s: &[u8]| {
                rewrite::create_database_name(s).map(|n| {
                    let mut out = Vec::with_capacity(s.len() + 8);
                    rewrite::replace_name(&mut out, s, &n.span, None, &t);
                    out
                })
            };
            // 1007: database exists.
            self.run_file(f, &rw, &[1007]).await?;
        }
        self.ensure_db(target).await
    }

    /// Creates `target` if this run has not, and makes it the session's database.
    async fn enter_db(&mut self, target: &str) -> Result<(), UnitError> {
        self.ensure_db(target).await?;
        timed(
            "use the target database",
            self.conn.query_drop(format!("USE {}", quote(target))),
        )
        .await
    }

    async fn create_table(&mut self, tdb: &str, ttable: &str, file: &str) -> Result<(), UnitError> {
        let text = self.read_file(file).await?;
        self.enter_db(tdb).await?;
        // A table this load creates gets its plain secondary indexes after its data (recorded
        // first, so a crash between the CREATE and the end still adds them).
        let defer = !keys_of(&text).is_empty() && !self.table_exists(tdb, ttable).await?;
        if defer {
            let q = self.ckpt.keys_pending_sql(file, tdb, ttable);
            timed("record the deferred indexes", self.conn.query_drop(q)).await?;
        }
        let ttable = ttable.to_string();
        let name_only = move |s: &[u8]| {
            rewrite::create_table_name(s).map(|n| {
                let mut out = Vec::with_capacity(s.len() + 8);
                rewrite::replace_name(&mut out, s, &n.span, None, &ttable);
                out
            })
        };
        let rw = move |s: &[u8]| {
            let out = name_only(s)?;
            if !defer {
                return Some(out);
            }
            Some(
                rewrite::defer_keys(&out)
                    .map(|(stripped, _)| stripped)
                    .unwrap_or(out),
            )
        };
        // 1050: table exists (shards merged onto one table).
        let n = self.run_text(file, &text, &rw, &[1050]).await?;
        if n == 0 {
            return Err(UnitError::new(
                code::LOAD_NOT_CREATE_TABLE,
                "internal",
                format!("schema file {file} holds no CREATE TABLE statement"),
            )
            .workaround(
                "The dump directory is damaged: dump again (`start-task --remove-meta`).",
            ));
        }
        Ok(())
    }

    async fn create_view(&mut self, tdb: &str, file: &str) -> Result<(), UnitError> {
        if !self.dir.join(file).is_file() {
            return Ok(());
        }
        self.enter_db(tdb).await?;
        self.run_file(file, &|_| None, &[]).await?;
        Ok(())
    }

    async fn table_exists(&mut self, db: &str, table: &str) -> Result<bool, UnitError> {
        let n: Option<u64> = timed(
            "look for the target table",
            self.conn.query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                crate::worker::units::sync::checkpoint::lit(db),
                crate::worker::units::sync::checkpoint::lit(table)
            )),
        )
        .await?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Runs a schema file's statements; `rewrite` turns a statement into the one to run
    /// (`None`: as it is) and `fine` says which server errors are no error. Returns how many
    /// statements `rewrite` turned.
    async fn run_file(
        &mut self,
        file: &str,
        rewrite: &(dyn Fn(&[u8]) -> Option<Vec<u8>> + Sync),
        fine: &[u16],
    ) -> Result<usize, UnitError> {
        let text = self.read_file(file).await?;
        self.run_text(file, &text, rewrite, fine).await
    }

    /// A schema file's bytes.
    async fn read_file(&self, file: &str) -> Result<Vec<u8>, UnitError> {
        let path = self.dir.join(file);
        tokio::fs::read(&path).await.map_err(|e| {
            UnitError::new(
                code::LOAD_READ_SCHEMA_FILE,
                "internal",
                format!("read schema file {}: {e}", path.display()),
            )
        })
    }

    /// [`Lane::run_file`] of a file already read (`text`).
    async fn run_text(
        &mut self,
        file: &str,
        text: &[u8],
        rewrite: &(dyn Fn(&[u8]) -> Option<Vec<u8>> + Sync),
        fine: &[u16],
    ) -> Result<usize, UnitError> {
        let (stmts, ending) = scan::split_all(text);
        if ending != scan::Ending::Clean {
            return Err(UnitError::new(
                code::LOAD_INVALID_FILE_ENDING,
                "internal",
                format!(
                    "invalid dump file ending in {file}: the file ends inside a statement ({ending:?})"
                ),
            ));
        }
        let mut rewritten = 0;
        timed(
            "reset the session charset",
            self.conn.query_drop("SET NAMES utf8mb4"),
        )
        .await?;
        for (s, end, flags) in stmts {
            if !flags.code && !flags.exec_comment {
                continue;
            }
            let q = match rewrite(s) {
                Some(q) => {
                    rewritten += 1;
                    q
                }
                None => s.to_vec(),
            };
            match tokio::time::timeout(STMT_TIMEOUT, self.conn.query_drop(&q)).await {
                Ok(Ok(())) => {}
                Ok(Err(mysql_async::Error::Server(e)))
                    if fine.contains(&e.code) || e.code == 1065 =>
                {
                    tracing::debug!(file, error = %e.message, "ignored");
                }
                Ok(Err(e)) => {
                    return Err(UnitError::from_mysql(
                        "downstream",
                        format!("execute the statement of {file} ending at byte {end}"),
                        &e,
                    ));
                }
                Err(_) => return Err(timeout_error(&format!("execute the statement of {file}"))),
            }
        }
        Ok(rewritten)
    }
}

/// The deferred index definitions of a schema file's CREATE TABLE (empty when none, or when
/// the file cannot be read: the CREATE then reports the error).
pub async fn deferred_keys(dir: &Path, file: &str) -> Vec<String> {
    match tokio::fs::read(dir.join(file)).await {
        Ok(text) => keys_of(&text),
        Err(_) => Vec::new(),
    }
}

/// The deferred index definitions of the CREATE TABLE in a schema file's `text`.
fn keys_of(text: &[u8]) -> Vec<String> {
    let (stmts, _) = scan::split_all(text);
    stmts
        .into_iter()
        .filter(|(s, _, _)| rewrite::create_table_name(s).is_some())
        .find_map(|(s, _, _)| rewrite::defer_keys(s).map(|(_, k)| k))
        .unwrap_or_default()
}
