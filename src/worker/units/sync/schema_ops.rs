//! `binlog-schema` / `operate-schema` on a worker (DM's `OperateSchema`): read, set or delete
//! the schema tracker's view of one upstream table for a **paused** subtask.
//!
//! The tracker of a paused subtask lives in its checkpoint (`table_info` of the table's row in
//! `<meta-schema>.<task>_syncer_checkpoint`, [`super::checkpoint`]), from which the next run
//! seeds it; so these operations read and write that row on the downstream:
//! - list (v2 `get`): the table's tracked columns as a `CREATE TABLE` (DM's 44005 when the
//!   table is not tracked);
//! - update (v2 `set`): from a `CREATE TABLE` statement (the table's name in it is replaced by
//!   the one asked for; DM's 44009 when it is not one), or `--from-source` (the upstream's
//!   information_schema now) or `--from-target` (the downstream table it is routed to). The row
//!   keeps its position (a new row takes the global one). `--flush` is always in effect: the
//!   checkpoint is the only place a paused subtask keeps its tracker.
//! - delete (v2 `remove`): the row goes; the next run reads the table from the upstream when
//!   it meets it.
//!
//! `--sync` (optimistic shard DDL) is carried out by the caller: the master is told the
//! table's new schema ([`super::shard::ShardSync::opt_request`] with `ignore_conflict`).

use mysql_async::prelude::Queryable;

use super::checkpoint::{CheckpointTable, lit};
use super::schema::{SchemaTracker, TrackedTable};
use crate::config::db::connect_opts;
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::rules::{TableName, TableRules};

/// Where an update takes the table's schema from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// A `CREATE TABLE` statement.
    Text(String),
    /// The upstream's information_schema.
    Source,
    /// The downstream table the upstream table is routed to.
    Target,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    List,
    Update(From),
    Delete,
}

/// What an operation did: the message for the answer, and (update) the table's new tracked
/// columns.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub msg: String,
    pub table: Option<TrackedTable>,
    /// The downstream table the upstream one is routed to.
    pub target: Option<TableName>,
}

/// Reads a `CREATE TABLE` statement as the tracked columns of `t` (the statement's own table
/// name does not matter). DM's 44009 when it is not a `CREATE TABLE` the tracker reads.
pub fn parse_create(sql: &str, t: &TableName) -> Result<TrackedTable, String> {
    let bad = || format!("[code=44009] {sql} is not a valid `CREATE TABLE` statement");
    let mut tr = SchemaTracker::default();
    let effect = tr.apply_ddl(sql, &t.schema).map_err(|_| bad())?;
    let [made] = effect.changed.as_slice() else {
        return Err(bad());
    };
    let table = tr.get(made).cloned().ok_or_else(bad)?;
    if table.to_schema().is_none() {
        return Err(format!(
            "[code=44009] {sql}: a column definition of it could not be read"
        ));
    }
    Ok(table)
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("[code=10006] {what}: {e}")
}

/// Carries out `op` on `t` (upstream name) of the subtask (`task`, `source`).
pub async fn operate(
    task: &TaskConfig,
    source: &SourceConfig,
    op: &Op,
    t: &TableName,
) -> Result<Done, String> {
    let target = task
        .target_database
        .as_ref()
        .ok_or_else(|| "the task has no target-database".to_string())?;
    let rules = TableRules::new(task, &source.source_id).map_err(|e| e.to_string())?;
    let (ts, tt) = rules.route(&t.schema, &t.table);
    let routed = TableName::new(ts, tt);
    let mut down = connect_opts(target.mysql_opts(Vec::new()))
        .await
        .map_err(|e| err("connect to the downstream", e))?;
    let ckpt = CheckpointTable::new(&task.meta_schema, &task.name, &source.source_id);
    let r = run(&mut down, &ckpt, source, op, t, &routed).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), down.disconnect()).await;
    r.map(|mut d| {
        d.target = Some(routed);
        d
    })
}

async fn run(
    down: &mut mysql_async::Conn,
    ckpt: &CheckpointTable,
    source: &SourceConfig,
    op: &Op,
    t: &TableName,
    routed: &TableName,
) -> Result<Done, String> {
    let key = format!(
        "id = {} AND cp_schema = {} AND cp_table = {}",
        lit(&ckpt.id),
        lit(&t.schema),
        lit(&t.table)
    );
    let current: Option<Option<String>> = down
        .query_first(format!(
            "SELECT CAST(table_info AS CHAR) FROM {} WHERE {key}",
            ckpt.table
        ))
        .await
        .map_err(|e| err("read the checkpoint", e))?;
    let current = current.flatten().filter(|j| !j.is_empty());
    let not_tracked = || format!("[code=44005] cannot get table {}", t.quoted());
    match op {
        Op::List => {
            let json = current.ok_or_else(not_tracked)?;
            let table = TrackedTable::from_json(&json).map_err(|e| e.to_string())?;
            let msg = table.to_create_sql(t).ok_or_else(|| {
                format!(
                    "the tracked schema of {} has columns without a known definition (a checkpoint written by an older dm-rs): set it with `binlog-schema update`",
                    t.quoted()
                )
            })?;
            Ok(Done {
                msg,
                ..Default::default()
            })
        }
        Op::Delete => {
            if current.is_none() {
                return Err(not_tracked());
            }
            down.query_drop(format!("DELETE FROM {} WHERE {key}", ckpt.table))
                .await
                .map_err(|e| err("update the checkpoint", e))?;
            Ok(Done::default())
        }
        Op::Update(from) => {
            let table = match from {
                From::Text(sql) => parse_create(sql, t)?,
                From::Source => {
                    let mut up = connect_opts(source.from.mysql_opts(Vec::new()))
                        .await
                        .map_err(|e| err("connect to the upstream", e))?;
                    let r = super::read_table_columns(&mut up, t).await;
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(5), up.disconnect())
                            .await;
                    r.map_err(|e| e.to_string())?
                }
                From::Target => super::read_table_columns(down, routed)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            if table.columns.is_empty() {
                return Err(format!(
                    "[code=44005] cannot get table {}: it has no columns there",
                    match from {
                        From::Target => routed.quoted(),
                        _ => t.quoted(),
                    }
                ));
            }
            let global: Option<u64> = down
                .query_first(format!(
                    "SELECT COUNT(*) FROM {} WHERE id = {} AND cp_schema = '' AND cp_table = ''",
                    ckpt.table,
                    lit(&ckpt.id)
                ))
                .await
                .map_err(|e| err("read the checkpoint", e))?;
            if global.unwrap_or(0) == 0 {
                return Err(format!(
                    "the subtask has no checkpoint yet (its Sync unit never ran): the tracked schema of {} cannot be set",
                    t.quoted()
                ));
            }
            let json = table.to_json();
            // The row keeps its position; a new one takes the global point's.
            let sql = format!(
                "INSERT INTO {tb} (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info, is_global) \
                 SELECT id, {s}, {n}, binlog_name, binlog_pos, '', {j}, 0 FROM {tb} \
                 WHERE id = {id} AND cp_schema = '' AND cp_table = '' \
                 ON DUPLICATE KEY UPDATE table_info = VALUES(table_info)",
                tb = ckpt.table,
                id = lit(&ckpt.id),
                s = lit(&t.schema),
                n = lit(&t.table),
                j = lit(&json),
            );
            down.query_drop(sql)
                .await
                .map_err(|e| err("update the checkpoint", e))?;
            Ok(Done {
                table: Some(table),
                ..Default::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_table_is_read_under_the_name_asked_for() {
        let t = TableName::new("db", "t2");
        let got = parse_create(
            "CREATE TABLE `other` (`id` int NOT NULL, `c` varchar(10) DEFAULT 'x', PRIMARY KEY (`id`))",
            &t,
        )
        .expect("parses");
        let s = got.to_schema().expect("definitions");
        assert_eq!(
            s.columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["id", "c"]
        );
        let sql = got.to_create_sql(&t).expect("definitions");
        assert!(sql.starts_with("CREATE TABLE `db`.`t2` ("), "{sql}");
        // What list prints is read back to the same columns.
        let again = parse_create(&sql, &t).expect("round trip");
        assert_eq!(again.to_schema(), got.to_schema());
    }

    #[test]
    fn anything_but_a_create_table_is_44009() {
        let t = TableName::new("db", "t");
        for bad in [
            "",
            "SELECT 1",
            "ALTER TABLE t ADD c INT",
            "CREATE TABLE t (",
            "CREATE TABLE a (x int); CREATE TABLE b (y int)",
            "CREATE TABLE t AS SELECT 1",
        ] {
            let e = parse_create(bad, &t).expect_err(bad);
            assert!(e.starts_with("[code=44009]"), "{bad}: {e}");
        }
    }
}
