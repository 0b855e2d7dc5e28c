//! Checks the integration tests share: a table's full contents, a task's status, waiting
//! for a stage or for the task to catch up with the upstream, comparing tables.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::cluster::dmctl;
use super::sql::{master_pos, rt};

/// The rows of a query as text (NULL as None).
pub fn query_rows(url: &str, q: &str) -> Result<Vec<Vec<Option<String>>>, mysql_async::Error> {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await?;
        let rows: Result<Vec<mysql_async::Row>, _> = c.query(q).await;
        let _ = c.disconnect().await;
        Ok(rows?
            .into_iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.as_ref(i).and_then(|v| match v {
                            mysql_async::Value::NULL => None,
                            v => Some(v.as_sql(true)),
                        })
                    })
                    .collect()
            })
            .collect())
    })
}

/// Every row of a table as text, in primary-key (or full-row) order; None when the table
/// does not exist.
pub fn contents(url: &str, table: &str) -> Option<Vec<Vec<Option<String>>>> {
    match query_rows(url, &format!("SELECT * FROM {table} ORDER BY 1, 2")) {
        Ok(rows) => Some(rows),
        Err(mysql_async::Error::Server(e)) if e.code == 1146 || e.code == 1049 => None,
        Err(e) => panic!("{table}: {e}"),
    }
}

/// The first subtask status of `task` in the full query-status output.
pub fn subtask(addr: &str, task: &str) -> serde_json::Value {
    let out = dmctl(addr, &["query-status", task]);
    let j = out.json();
    j["sources"][0]["subTaskStatus"][0].clone()
}

/// Waits until the task's syncerBinlog equals the upstream's SHOW MASTER STATUS.
pub fn wait_synced(addr: &str, task: &str, up: &str) -> serde_json::Value {
    let t = Instant::now();
    let mut last = serde_json::Value::Null;
    while t.elapsed() < Duration::from_secs(60) {
        let (f, p) = master_pos(up);
        last = subtask(addr, task);
        if last["sync"]["syncerBinlog"] == format!("({f}, {p})")
            && last["sync"]["masterBinlog"] == format!("({f}, {p})")
            && last["sync"]["synced"] == true
        {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "task {task} did not catch up with {:?}: {last:#}",
        master_pos(up)
    );
}

/// Waits until the task's first subtask is in `stage`.
pub fn wait_stage(addr: &str, task: &str, stage: &str) -> serde_json::Value {
    let t = Instant::now();
    let mut last = serde_json::Value::Null;
    while t.elapsed() < Duration::from_secs(30) {
        last = subtask(addr, task);
        if last["stage"] == stage {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("task {task} is not {stage}: {last:#}");
}

/// Compares two tables' contents, reporting only the first difference.
pub fn same_table(up: &str, down: &str, u: &str, d: &str, what: &str) {
    let a = contents(up, u).unwrap_or_default();
    let b = contents(down, d).unwrap_or_default();
    if a != b {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: {u} ({} rows upstream) and {d} ({} rows downstream) differ at row {first}: {:?} vs {:?}",
            a.len(),
            b.len(),
            a.get(first),
            b.get(first)
        );
    }
}

/// `CHECKSUM TABLE` of one table (None when it does not exist).
pub fn checksum(url: &str, table: &str) -> Option<u64> {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let r: Option<(String, Option<u64>)> = c
            .query_first(format!("CHECKSUM TABLE {table}"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        r.and_then(|(_, v)| v)
    })
}

/// The number of rows of a table.
pub fn count(url: &str, table: &str) -> u64 {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let n: Option<u64> = c
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        n.unwrap_or(0)
    })
}

/// The rows of `q` (panics on an error, naming the query).
pub fn rows(url: &str, q: &str) -> Vec<Vec<Option<String>>> {
    query_rows(url, q).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Polls `f` every 100 ms until it is Ok; panics with `what` and the last Err after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<(), String>) {
    let t = Instant::now();
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if t.elapsed() > timeout => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
