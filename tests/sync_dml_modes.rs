//! The syncer's `compact` and `multiple-rows` (DM's keys, off by default as in DM) change the
//! statements the downstream runs, not the data: the same upstream transaction — 200 single-row
//! INSERTs and 100 UPDATEs of one row — costs the downstream about 2 INSERT and 1 UPDATE
//! statements with both on, and 200 and 100 with both off (its `Com_insert` / `Com_update`
//! counters), and both end with the upstream's rows. `safe-mode-duration: 0s` keeps the start
//! free of safe mode, so the UPDATEs stay UPDATEs.

mod common;

use std::time::Duration;

use common::check::{query_rows, wait_for, wait_synced};
use common::cluster::{Master, create_source_bound, dmctl, ok, write_source};
use common::sql::{exec, master_pos, rt};

/// The downstream's global `Com_<what>` counter.
fn com(url: &str, what: &str) -> u64 {
    let rows = query_rows(url, &format!("SHOW GLOBAL STATUS LIKE 'Com_{what}'")).unwrap();
    rows[0][1]
        .as_deref()
        .unwrap_or("0")
        .trim_matches('\'')
        .parse()
        .unwrap()
}

/// One upstream transaction: 200 INSERTs, then 100 UPDATEs of the first row.
fn workload(url: &str, db: &str) {
    rt().block_on(async {
        use mysql_async::prelude::Queryable;
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        for i in 1..=200 {
            c.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, 0)"))
                .await
                .unwrap();
        }
        for _ in 0..100 {
            c.query_drop(format!("UPDATE {db}.t SET v = v + 1 WHERE id = 1"))
                .await
                .unwrap();
        }
        c.query_drop("COMMIT").await.unwrap();
        c.disconnect().await.unwrap();
    })
}

#[test]
fn compact_and_multiple_rows_change_the_statements_not_the_rows() {
    let (up, down) = common::MariaDb::pair(221);
    let (u, d) = (up.url(), down.url());
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), true);
    let addr = master.addr.clone();
    create_source_bound(&addr, &write_source(dir.path(), "modes-up", up.port));
    for url in [&u, &d] {
        for db in ["m_on", "m_off"] {
            exec(
                url,
                &[
                    format!("CREATE DATABASE {db}"),
                    format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"),
                ],
            );
        }
    }
    // (task, database, syncer keys, Com_insert range, Com_update range)
    let cases = [
        (
            "modes-on",
            "m_on",
            "compact: true, multiple-rows: true, ",
            0..40u64,
            0..40u64,
        ),
        ("modes-off", "m_off", "", 200..260, 100..160),
    ];
    for (task, db, keys, inserts, updates) in cases {
        let (file, pos) = master_pos(&u);
        let path = dir.path().join(format!("{task}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {task}\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\nmysql-instances:\n  - source-id: modes-up\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: only\n    syncer-config-name: s\nblock-allow-list:\n  only: {{do-dbs: [{db}]}}\nsyncers:\n  s: {{{keys}worker-count: 1, batch: 100, safe-mode-duration: 0s}}\n",
                down.port
            ),
        )
        .unwrap();
        let path = path.display().to_string();
        ok(&dmctl(&addr, &["start-task", &path]), "start-task");
        wait_synced(&addr, task, &u);
        let (i0, u0) = (com(&d, "insert"), com(&d, "update"));
        workload(&u, db);
        wait_synced(&addr, task, &u);
        wait_for("the rows downstream", Duration::from_secs(30), || {
            let r = query_rows(&d, &format!("SELECT COUNT(*), SUM(v) FROM {db}.t"))
                .map_err(|e| e.to_string())?;
            (r == vec![vec![Some("'200'".to_string()), Some("'100'".to_string())]])
                .then_some(())
                .ok_or(format!("{r:?}"))
        });
        let (di, du) = (com(&d, "insert") - i0, com(&d, "update") - u0);
        assert!(
            inserts.contains(&di) && updates.contains(&du),
            "{task}: Com_insert +{di} (want {inserts:?}), Com_update +{du} (want {updates:?})"
        );
        ok(&dmctl(&addr, &["stop-task", task]), "stop-task");
    }
}
