//! A network failure: the upstream goes away while a task runs. The task pauses with a
//! retryable error that says what happened, resumes by itself once the upstream is back, and
//! the downstream ends equal to the upstream (no row lost or doubled).

mod common;

use std::time::{Duration, Instant};

use common::MariaDb;
use common::cluster::{Master, dmctl};
use common::sql::{exec, rt};
use mysql_async::prelude::*;

fn rows(url: &str) -> Vec<(i64, String)> {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let r = c
            .query("SELECT id, v FROM app.t ORDER BY id")
            .await
            .unwrap_or_default();
        c.disconnect().await.unwrap();
        r
    })
}

fn status(addr: &str) -> serde_json::Value {
    dmctl(addr, &["query-status", "net"]).json()["sources"][0]["subTaskStatus"][0].clone()
}

fn wait<F: Fn(&serde_json::Value) -> bool>(
    addr: &str,
    what: &str,
    secs: u64,
    f: F,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let st = status(addr);
        if f(&st) {
            return st;
        }
        assert!(t.elapsed() < Duration::from_secs(secs), "{what}: {st:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes source `s1` (the upstream) and task `net` (to the downstream, starting at `meta`),
/// starts a master with its worker, creates the source and starts the task.
fn start_net_task(dir: &std::path::Path, up: &MariaDb, down: &MariaDb, meta: &str) -> Master {
    std::fs::write(
        dir.join("src.yaml"),
        format!(
            "source-id: s1\nfrom: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n",
            up.port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("task.yaml"),
        format!(
            "name: net\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n\
mysql-instances:\n  - source-id: s1\n    meta: {meta}\n",
            down.port
        ),
    )
    .unwrap();
    let master = Master::start(dir, true);
    let p = |n: &str| dir.join(n).display().to_string();
    assert_eq!(
        dmctl(&master.addr, &["operate-source", "create", &p("src.yaml")]).code,
        0
    );
    let out = dmctl(&master.addr, &["start-task", &p("task.yaml")]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    master
}

#[test]
fn upstream_outage_pauses_with_a_message_and_auto_resumes_without_loss() {
    let (mut up, down) = MariaDb::pair(31);
    let (u, d) = (up.url(), down.url());
    let dir = tempfile::tempdir().unwrap();
    let (file, pos): (String, u64) = rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(u.clone()).await.unwrap();
        let r: mysql_async::Row = c.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
        (r.get(0).unwrap(), r.get(1).unwrap())
    });
    let meta = format!("{{binlog-name: {file}, binlog-pos: {pos}}}");
    let master = start_net_task(dir.path(), &up, &down, &meta);
    let addr = master.addr.clone();
    exec(
        &u,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO app.t VALUES (1, 'before')",
        ],
    );
    let t = Instant::now();
    while rows(&d) != rows(&u) {
        assert!(t.elapsed() < Duration::from_secs(30), "not replicated");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The upstream goes away: the task pauses with a retryable error naming the cause.
    up.stop();
    let st = wait(&addr, "paused by the outage", 30, |st| {
        st["stage"] == "Paused" && st["result"]["errors"][0]["ErrCode"].is_number()
    });
    let err = &st["result"]["errors"][0];
    assert_eq!(err["ErrScope"], "upstream", "{st:#}");
    assert!(!err["Message"].as_str().unwrap_or("").is_empty(), "{st:#}");
    assert!(
        err["Workaround"].as_str().unwrap_or("").contains("retries"),
        "{}",
        st
    );

    // Back: it resumes by itself (auto-resume with backoff) and catches up.
    up.start_again();
    exec(
        &u,
        &(2..=50)
            .map(|i| format!("INSERT INTO app.t VALUES ({i}, 'after')"))
            .collect::<Vec<_>>(),
    );
    wait(&addr, "auto-resumed", 60, |st| st["stage"] == "Running");
    let t = Instant::now();
    while rows(&d) != rows(&u) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not caught up: {:?}",
            rows(&d).len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(rows(&d).len(), 50);
    drop(master);
}

#[test]
fn incremental_task_can_start_after_a_gtid() {
    let (up, down) = MariaDb::pair(32);
    let (u, d) = (up.url(), down.url());
    let ddl = [
        "CREATE DATABASE app".to_string(),
        "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))".to_string(),
    ];
    exec(&u, &ddl);
    exec(&d, &ddl);
    exec(
        &u,
        &["INSERT INTO app.t VALUES (1, 'before'), (2, 'before')"],
    );
    let gtid: String = rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(u.clone()).await.unwrap();
        c.query_first("SELECT @@GLOBAL.gtid_binlog_pos")
            .await
            .unwrap()
            .unwrap()
    });
    exec(
        &u,
        &[
            "INSERT INTO app.t VALUES (3, 'after')",
            "UPDATE app.t SET v = 'changed' WHERE id = 1",
        ],
    );
    // The downstream holds the state at the GTID (as a dump would have left it).
    exec(
        &d,
        &["INSERT INTO app.t VALUES (1, 'before'), (2, 'before')"],
    );

    let dir = tempfile::tempdir().unwrap();
    let master = start_net_task(
        dir.path(),
        &up,
        &down,
        &format!("{{binlog-gtid: '{gtid}'}}"),
    );
    let addr = master.addr.clone();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let t = Instant::now();
    while rows(&d) != rows(&u) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not replicated from the GTID: {:?} {}",
            rows(&d),
            status(&addr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The checkpoint is a real position: stop, write, start resumes exactly.
    assert_eq!(dmctl(&addr, &["stop-task", "net"]).code, 0);
    exec(&u, &["INSERT INTO app.t VALUES (4, 'later')"]);
    let out = dmctl(&addr, &["start-task", &p("task.yaml")]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let t = Instant::now();
    while rows(&d) != rows(&u) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not resumed: {:?}",
            rows(&d)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = status(&addr);
    assert!(
        st["sync"]["syncerBinlog"]
            .as_str()
            .unwrap()
            .starts_with("(mariadb-bin."),
        "{st}"
    );
    drop(master);
}
