//! The cluster end to end, with the built binaries and real MariaDB servers: dm-master and a
//! separate dm-worker process replicate an incremental task upstream → downstream through
//! INSERT / UPDATE / DELETE / DDL, a routed table and a table outside the allow list; then
//! pause / resume, stop / start from the checkpoint, kill -9 of the worker during a write
//! burst (including a table with no key: exact too), a master restart, and update-task's rules.
//! Every data check compares the full contents of each table (row by row) between upstream and
//! downstream. Set DMRS_KEEP_LOGS=FILE to keep the processes' logs of the kill -9 phase.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{contents, same_table, subtask, wait_stage, wait_synced};
use common::cluster::{Master, WorkerProc, dmctl, write_source};
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

const TABLES: &[(&str, &str)] = &[
    ("shop.customers", "shop.customers"),
    ("shop.orders_archive", "shop.orders_history"),
    ("shop.items", "shop.items"),
    ("shop.events", "shop.events"),
];

fn assert_same(up: &str, down: &str, what: &str) {
    for (u, d) in TABLES {
        assert!(contents(up, u).is_some(), "{what}: upstream {u} missing");
        assert!(
            contents(down, d).is_some(),
            "{what}: downstream {d} missing"
        );
        same_table(up, down, u, d, what);
    }
    // Outside the allow list: never created downstream.
    assert_eq!(
        contents(down, "shop.audit_log"),
        None,
        "{what}: audit_log leaked"
    );
    assert_eq!(contents(down, "other.t"), None, "{what}: other.t leaked");
}

fn write_files(
    dir: &Path,
    up: &MariaDb,
    down: &MariaDb,
    file: &str,
    pos: u64,
    extra: &str,
) -> (String, String) {
    let source = write_source(dir, "mariadb-01", up.port);
    let task = dir.join("task.yaml");
    std::fs::write(
        &task,
        task_yaml(
            down,
            file,
            pos,
            "    ignore-tables:\n      - db-name: shop\n        tbl-name: audit_log\n",
            extra,
        ),
    )
    .unwrap();
    (source.display().to_string(), task.display().to_string())
}

fn task_yaml(down: &MariaDb, file: &str, pos: u64, ignore: &str, syncer: &str) -> String {
    format!(
        "name: shop-sync\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: shop-only\n    route-rules: [archive]\n    filter-rules: [keep-ledger]\n    syncer-config-name: global\n\
block-allow-list:\n  shop-only:\n    do-dbs: [shop]\n{ignore}\
routes:\n  archive:\n    schema-pattern: shop\n    table-pattern: orders_archive\n    target-schema: shop\n    target-table: orders_history\n\
filters:\n  keep-ledger:\n    schema-pattern: shop\n    table-pattern: ledger\n    events: [delete]\n    action: Ignore\n\
syncers:\n  global:\n    worker-count: {syncer}\n    batch: 50\n",
        down.port
    )
}

fn burst(up: &str, from: i64, n: i64) {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(up).await.unwrap();
        for i in from..from + n {
            c.query_drop(format!(
                "BEGIN; INSERT INTO shop.customers VALUES ({i}, 'c{i}', {i}.25, NULL); \
                 UPDATE shop.customers SET balance = balance + 1 WHERE id = {}; \
                 INSERT INTO shop.orders_archive VALUES ({i}, {i}, 'B-{i}', {i}.5); \
                 DELETE FROM shop.orders_archive WHERE id = {}; \
                 INSERT INTO shop.events (kind, note) VALUES ('burst', 'n{i}'), ('burst', 'n{i}'); COMMIT",
                i - 1,
                i - 7
            ))
            .await
            .unwrap();
        }
        c.disconnect().await.unwrap();
    })
}

#[test]
fn cluster_replicates_and_survives_pause_stop_kill_and_master_restart() {
    let (up, down) = MariaDb::pair(11);
    let (u, d) = (up.url(), down.url());
    let dir = tempfile::tempdir().unwrap();
    let (file, pos) = master_pos(&u);
    let (source, task) = write_files(dir.path(), &up, &down, &file, pos, "4");

    let mut master = Master::start(dir.path(), false);
    let mut worker = WorkerProc::start(dir.path(), "worker-a", &master.addr);
    let addr = master.addr.clone();

    // Source and binding.
    let out = dmctl(&addr, &["operate-source", "create", &source]);
    ok(&out, &addr);
    let t = Instant::now();
    loop {
        let lm = dmctl(&addr, &["list-member", "--worker"]).json();
        let w = &lm["members"][0]["worker"]["workers"][0];
        if w["stage"] == "bound" {
            assert_eq!(w["source"], "mariadb-01");
            assert_eq!(w["name"], "worker-a");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "worker never bound: {lm:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Start the task, then write upstream: DDL, DML, a routed table, filtered tables.
    let out = dmctl(&addr, &["start-task", &task]);
    ok(&out, &addr);
    exec(
        &u,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64), balance DECIMAL(12,2))",
            "CREATE TABLE shop.orders_archive (id BIGINT PRIMARY KEY, customer_id INT, order_no VARCHAR(32), amount DOUBLE, UNIQUE KEY uk_no (order_no))",
            "CREATE TABLE shop.audit_log (id INT PRIMARY KEY AUTO_INCREMENT, msg TEXT)",
            "CREATE TABLE shop.events (kind VARCHAR(16), note VARCHAR(64))",
            "CREATE TABLE shop.ledger (id INT PRIMARY KEY, amount INT)",
            "INSERT INTO shop.ledger VALUES (1, 10), (2, 20), (3, 30)",
            "UPDATE shop.ledger SET amount = 21 WHERE id = 2",
            "DELETE FROM shop.ledger WHERE id = 1",
            "CREATE TABLE shop.tmp_items (id INT PRIMARY KEY, label VARCHAR(20))",
            "RENAME TABLE shop.tmp_items TO shop.items",
            "CREATE TABLE shop.dropme (id INT)",
            "DROP TABLE shop.dropme",
            "CREATE DATABASE other",
            "CREATE TABLE other.t (id INT PRIMARY KEY)",
            "INSERT INTO other.t VALUES (1), (2)",
            "INSERT INTO shop.customers VALUES (1, 'ann', 10.50), (2, 'bob', 0), (3, 'cy', NULL)",
            "INSERT INTO shop.orders_archive VALUES (1, 1, 'A-1', 9.5), (2, 2, 'A-2', 1e10), (3, 1, 'A-3', -0.25)",
            "INSERT INTO shop.audit_log (msg) VALUES ('secret'), ('more')",
            "INSERT INTO shop.items VALUES (1, 'x'), (2, 'y')",
            "INSERT INTO shop.events VALUES ('a', 'no key'), ('a', 'no key'), ('b', NULL)",
            "UPDATE shop.customers SET balance = balance * 2 WHERE id < 3",
            "UPDATE shop.orders_archive SET id = 10, order_no = 'A-10' WHERE id = 1",
            "DELETE FROM shop.orders_archive WHERE id = 2",
            "DELETE FROM shop.events WHERE kind = 'b'",
            "ALTER TABLE shop.customers ADD COLUMN email VARCHAR(64) NULL",
            "UPDATE shop.customers SET email = CONCAT(name, '@example.com')",
            "TRUNCATE TABLE shop.items",
            "INSERT INTO shop.items VALUES (3, 'z')",
        ],
    );
    let st = wait_synced(&addr, "shop-sync", &u);
    assert_eq!(st["stage"], "Running", "{st:#}");
    assert_eq!(st["unit"], "Sync", "{st:#}");
    assert_eq!(st["sync"]["synced"], true, "{st:#}");
    assert_same(&u, &d, "after the first writes");
    // The binlog filter ignores DELETEs on shop.ledger: the deleted row stays downstream.
    assert_eq!(
        contents(&d, "shop.ledger").map(|r| r.len()),
        Some(3),
        "filter: deletes on ledger are ignored"
    );
    assert_eq!(contents(&u, "shop.ledger").map(|r| r.len()), Some(2));
    assert_eq!(
        contents(&d, "shop.ledger").unwrap()[1],
        vec![Some("'2'".to_string()), Some("'21'".to_string())],
        "filter: updates on ledger still replicate"
    );
    let summary = dmctl(&addr, &["query-status"]).json();
    assert_eq!(summary["tasks"][0]["taskName"], "shop-sync", "{summary:#}");
    assert_eq!(summary["tasks"][0]["taskStatus"], "Running", "{summary:#}");

    // update-task on a Running task: 40052.
    let out = dmctl(&addr, &["update-task", &task]);
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("40052"), "{}", out.stdout);

    // Pause: nothing moves; resume: caught up.
    let out = dmctl(&addr, &["pause-task", "shop-sync"]);
    ok(&out, &addr);
    wait_stage(&addr, "shop-sync", "Paused");
    let before = contents(&d, "shop.customers");
    exec(
        &u,
        &["INSERT INTO shop.customers VALUES (100, 'paused', 1, NULL)"],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        contents(&d, "shop.customers"),
        before,
        "rows moved while paused"
    );

    // update-task on the paused task: a changed worker-count is refused, naming the field…
    std::fs::write(
        dir.path().join("task-wc.yaml"),
        task_yaml(
            &down,
            &file,
            pos,
            "    ignore-tables:\n      - db-name: shop\n        tbl-name: audit_log\n",
            "8",
        ),
    )
    .unwrap();
    let out = dmctl(
        &addr,
        &[
            "update-task",
            &dir.path().join("task-wc.yaml").display().to_string(),
        ],
    );
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("worker-count"), "{}", out.stdout);
    // …a changed block-allow-list is taken: audit_log becomes allowed after resume.
    std::fs::write(
        dir.path().join("task-ba.yaml"),
        task_yaml(&down, &file, pos, "", "4"),
    )
    .unwrap();
    let out = dmctl(
        &addr,
        &[
            "update-task",
            &dir.path().join("task-ba.yaml").display().to_string(),
        ],
    );
    ok(&out, &addr);
    // No back-fill: the DBA creates the table downstream before resuming.
    exec(
        &d,
        &["CREATE TABLE shop.audit_log (id INT PRIMARY KEY AUTO_INCREMENT, msg TEXT)"],
    );
    let out = dmctl(&addr, &["resume-task", "shop-sync"]);
    ok(&out, &addr);
    exec(
        &u,
        &["INSERT INTO shop.audit_log (id, msg) VALUES (50, 'now replicated')"],
    );
    wait_synced(&addr, "shop-sync", &u);
    assert_same_except_audit(&u, &d, "after resume");
    assert_eq!(
        contents(&d, "shop.audit_log"),
        Some(vec![vec![
            Some("'50'".into()),
            Some("'now replicated'".into())
        ]]),
        "the newly allowed table replicates new rows only"
    );

    // stop-task, writes, start-task: resumes from the checkpoint (events has no key: any
    // duplicate or gap shows).
    let out = dmctl(&addr, &["stop-task", "shop-sync"]);
    ok(&out, &addr);
    let out = dmctl(&addr, &["query-status", "shop-sync"]);
    assert_ne!(out.code, 0, "a stopped task is gone: {}", out.stdout);
    exec(
        &u,
        &[
            "INSERT INTO shop.events VALUES ('stopped', 'x'), ('stopped', 'x')",
            "UPDATE shop.customers SET name = 'renamed' WHERE id = 3",
        ],
    );
    let out = dmctl(
        &addr,
        &[
            "start-task",
            &dir.path().join("task-ba.yaml").display().to_string(),
        ],
    );
    ok(&out, &addr);
    wait_synced(&addr, "shop-sync", &u);
    assert_same_except_audit(&u, &d, "after stop/start");

    // kill -9 of the worker during a write burst; restart it.
    let writer = {
        let u = u.clone();
        std::thread::spawn(move || burst(&u, 1000, 600))
    };
    std::thread::sleep(Duration::from_millis(700));
    worker.proc.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let dir_path = dir.path().to_path_buf();
    worker = WorkerProc::start_at(
        &dir_path,
        "worker-a",
        &worker.addr.clone(),
        &master.addr.clone(),
    );
    writer.join().unwrap();
    wait_synced(&addr, "shop-sync", &u);
    if let Ok(keep) = std::env::var("DMRS_KEEP_LOGS") {
        let mut all = String::new();
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                all.push_str(&format!("==== {}\n", e.path().display()));
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        std::fs::write(keep, all).unwrap();
    }
    assert_same_except_audit(&u, &d, "after kill -9 of the worker");

    // Restart dm-master: sources, tasks and stages survive.
    dmctl(&addr, &["pause-task", "shop-sync"]);
    wait_stage(&addr, "shop-sync", "Paused");
    master.restart(dir.path());
    let t = Instant::now();
    loop {
        let st = subtask(&addr, "shop-sync");
        if st["stage"] == "Paused" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "after the master restart: {st:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let cfg = dmctl(&addr, &["get-config", "task", "shop-sync"]);
    assert_eq!(cfg.code, 0, "{}{}", cfg.stdout, cfg.stderr);
    assert!(cfg.stdout.contains("shop-sync"));
    let out = dmctl(&addr, &["resume-task", "shop-sync"]);
    ok(&out, &addr);
    exec(
        &u,
        &["INSERT INTO shop.customers VALUES (5000, 'after master restart', 1, NULL)"],
    );
    wait_synced(&addr, "shop-sync", &u);
    assert_same_except_audit(&u, &d, "after the master restart");
    drop(worker);
    drop(master);
}

/// A dmctl call must succeed; on failure show the task's full status too.
fn ok(out: &common::cluster::CtlOut, addr: &str) {
    if out.code != 0 {
        let qs = dmctl(addr, &["query-status", "shop-sync"]);
        panic!(
            "dmctl exit {}:\n{}\n{}\nquery-status:\n{}",
            out.code, out.stdout, out.stderr, qs.stdout
        );
    }
}

fn assert_same_except_audit(up: &str, down: &str, what: &str) {
    for (u, d) in TABLES {
        same_table(up, down, u, d, what);
    }
    assert_eq!(contents(down, "other.t"), None, "{what}: other.t leaked");
}
