//! What the dump reads about the tables before it writes data: columns, keys and row estimates
//! from information_schema (one query each for all the dumped schemas, on the control
//! connection), and, on a dump connection inside the session's snapshot, the `SHOW CREATE`
//! texts (as bytes: `SET NAMES binary`) and each keyed table's `MIN`/`MAX` key.
//!
//! Reading `SHOW CREATE TABLE` inside the snapshot transaction also takes the table's metadata
//! lock until the session ends, as dumpling does: a DDL on a dumped table waits for the dump.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::chunking::{IndexColumn, is_integer_type, quote_ident};
use super::{QUERY_TIMEOUT, ROW_TIMEOUT, timed};
use crate::worker::error::UnitError;

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub charset: Option<String>,
    /// A generated column: never dumped (it cannot be inserted).
    pub generated: bool,
}

/// What information_schema says about a table.
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    pub columns: Vec<Column>,
    pub indexes: Vec<IndexColumn>,
    /// information_schema.TABLES.TABLE_ROWS.
    pub estimate: u64,
}

impl TableInfo {
    /// The dumped (non-generated) columns.
    pub fn dumped(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.generated)
    }

    pub fn is_int(&self, column: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.name == column && is_integer_type(&c.data_type))
    }
}

/// `'a','b'` for an IN list.
fn in_list(dbs: &BTreeSet<String>) -> String {
    dbs.iter()
        .map(|d| crate::worker::units::sync::checkpoint::lit(d))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads columns, keys and row estimates of every table in `dbs` (on a connection with
/// `sql_mode = ''`), keyed by (db, table).
pub async fn describe(
    c: &mut Conn,
    dbs: &BTreeSet<String>,
) -> Result<BTreeMap<(String, String), TableInfo>, UnitError> {
    let mut out: BTreeMap<(String, String), TableInfo> = BTreeMap::new();
    if dbs.is_empty() {
        return Ok(out);
    }
    let list = in_list(dbs);
    type ColRow = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let cols: Vec<ColRow> = timed(
        "read the dumped tables' columns",
        QUERY_TIMEOUT,
        c.query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, IS_GENERATED \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({list}) \
             ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        )),
    )
    .await?;
    for (db, t, name, data_type, charset, generated) in cols {
        out.entry((db, t)).or_default().columns.push(Column {
            name,
            data_type,
            charset,
            generated: generated.is_some_and(|g| g.eq_ignore_ascii_case("ALWAYS")),
        });
    }
    type IxRow = (String, String, String, i64, i64, Option<String>);
    let ixs: Vec<IxRow> = timed(
        "read the dumped tables' keys",
        QUERY_TIMEOUT,
        c.query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({list})"
        )),
    )
    .await?;
    for (db, t, index, non_unique, seq, column) in ixs {
        if let Some(column) = column {
            out.entry((db, t)).or_default().indexes.push(IndexColumn {
                index,
                non_unique: non_unique != 0,
                seq: seq.max(0) as u32,
                column,
            });
        }
    }
    let rows: Vec<(String, String, Option<u64>)> = timed(
        "read the dumped tables' row estimates",
        QUERY_TIMEOUT,
        c.query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA IN ({list}) AND TABLE_TYPE <> 'VIEW'"
        )),
    )
    .await?;
    for (db, t, n) in rows {
        out.entry((db, t)).or_default().estimate = n.unwrap_or(0);
    }
    Ok(out)
}

/// `SHOW CREATE DATABASE` text (bytes).
pub async fn show_create_database(c: &mut Conn, db: &str) -> Result<Vec<u8>, UnitError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = timed(
        &format!("SHOW CREATE DATABASE {}", quote_ident(db)),
        QUERY_TIMEOUT,
        c.query_first(format!("SHOW CREATE DATABASE {}", quote_ident(db))),
    )
    .await?;
    Ok(row.map(|r| r.1).unwrap_or_default())
}

/// `SHOW CREATE TABLE` text (bytes), `None` when the table is gone.
pub async fn show_create_table(
    c: &mut Conn,
    db: &str,
    table: &str,
) -> Result<Option<Vec<u8>>, UnitError> {
    let q = format!(
        "SHOW CREATE TABLE {}.{}",
        quote_ident(db),
        quote_ident(table)
    );
    match tokio::time::timeout(QUERY_TIMEOUT, c.query_first::<(Vec<u8>, Vec<u8>), _>(&q)).await {
        Ok(Ok(row)) => Ok(row.map(|r| r.1)),
        Ok(Err(mysql_async::Error::Server(s))) if s.code == 1146 => Ok(None),
        Ok(Err(e)) => Err(super::db_err(q, &e)),
        Err(_) => Err(super::timeout_err(&q, QUERY_TIMEOUT)),
    }
}

/// dumpling's view files: the placeholder table (`CREATE TABLE `v`(\n`c` int,…\n)ENGINE=MyISAM;`)
/// and the view (`DROP TABLE IF EXISTS`, `DROP VIEW IF EXISTS`, `SHOW CREATE VIEW` text).
/// `None` when the view is gone.
pub async fn show_create_view(
    c: &mut Conn,
    db: &str,
    view: &str,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, UnitError> {
    let name = format!("{}.{}", quote_ident(db), quote_ident(view));
    let fields: Vec<mysql_async::Row> = match tokio::time::timeout(
        QUERY_TIMEOUT,
        c.query(format!("SHOW FIELDS FROM {name}")),
    )
    .await
    {
        Ok(Err(mysql_async::Error::Server(s))) if s.code == 1146 => return Ok(None),
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return Err(super::db_err(format!("SHOW FIELDS FROM {name}"), &e)),
        Err(_) => {
            return Err(super::timeout_err(
                &format!("SHOW FIELDS FROM {name}"),
                QUERY_TIMEOUT,
            ));
        }
    };
    let mut placeholder = format!("CREATE TABLE {}(\n", quote_ident(view)).into_bytes();
    let cols: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|r| r.get::<Vec<u8>, _>(0))
        .map(|f| {
            let mut v = b"`".to_vec();
            for &b in &f {
                if b == b'`' {
                    v.push(b'`');
                }
                v.push(b);
            }
            v.extend_from_slice(b"` int");
            v
        })
        .collect();
    placeholder.extend_from_slice(&cols.join(&b",\n"[..]));
    placeholder.extend_from_slice(b"\n)ENGINE=MyISAM");
    let q = format!("SHOW CREATE VIEW {name}");
    let row: Option<mysql_async::Row> = timed(&q, QUERY_TIMEOUT, c.query_first(&q)).await?;
    let Some(text) = row.and_then(|r| r.get::<Vec<u8>, _>(1)) else {
        return Ok(None);
    };
    let mut create = format!(
        "DROP TABLE IF EXISTS {v};\nDROP VIEW IF EXISTS {v};\n",
        v = quote_ident(view)
    )
    .into_bytes();
    create.extend_from_slice(&text);
    Ok(Some((placeholder, create)))
}

/// The key's `MIN` and `MAX` in the snapshot (with the task's `where`), `None` when the table
/// has no non-NULL key.
pub async fn key_range(
    c: &mut Conn,
    db: &str,
    table: &str,
    key: &str,
    user_where: &str,
) -> Result<Option<(i128, i128)>, UnitError> {
    let q = format!(
        "SELECT MIN({k}), MAX({k}) FROM {}.{}{}",
        quote_ident(db),
        quote_ident(table),
        super::chunking::where_clause(None, user_where),
        k = quote_ident(key)
    );
    type MinMax = (Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<MinMax> = timed(&q, ROW_TIMEOUT, c.query_first(&q)).await?;
    let parse = |v: Option<Vec<u8>>| -> Option<i128> {
        v.and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i128>().ok())
    };
    Ok(match row {
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
        None => None,
    })
}

/// Whether the table has at least `n` rows (with the task's `where`): reads at most `n` rows of
/// the key. For a row estimate that may be stale (InnoDB's statistics lag a bulk insert).
pub async fn has_rows(
    c: &mut Conn,
    db: &str,
    table: &str,
    user_where: &str,
    n: u64,
) -> Result<bool, UnitError> {
    let q = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {}.{}{} LIMIT {n}) AS probe",
        quote_ident(db),
        quote_ident(table),
        super::chunking::where_clause(None, user_where),
    );
    let got: Option<u64> = timed(&q, ROW_TIMEOUT, c.query_first(&q)).await?;
    Ok(got.unwrap_or(0) >= n)
}

/// The optimizer's row estimate of a table with the task's `where` (`EXPLAIN`), 0 if unknown.
pub async fn explain_rows(
    c: &mut Conn,
    db: &str,
    table: &str,
    user_where: &str,
) -> Result<u64, UnitError> {
    let q = format!(
        "EXPLAIN SELECT * FROM {}.{}{}",
        quote_ident(db),
        quote_ident(table),
        super::chunking::where_clause(None, user_where)
    );
    let rows: Vec<mysql_async::Row> = timed(&q, ROW_TIMEOUT, c.query(&q)).await?;
    let n = rows.first().and_then(|r| {
        let i = r
            .columns_ref()
            .iter()
            .position(|c| c.name_str() == "rows")?;
        let v: Option<Vec<u8>> = r.get(i);
        v.and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
    });
    Ok(n.unwrap_or(0))
}
