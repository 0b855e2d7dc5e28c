//! Errors users hit, against the real binaries and MariaDB: each gives a clear message and a
//! non-zero exit, and a downstream that refuses a statement pauses the task with DM's
//! ProcessError until it is fixed and resumed — then nothing is lost.

mod common;

use std::time::{Duration, Instant};

use common::MariaDb;
use common::cluster::{Master, dmctl};
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

fn rows(url: &str, q: &str) -> Vec<(i64, String)> {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let r = c.query(q).await.unwrap();
        c.disconnect().await.unwrap();
        r
    })
}

fn task(name: &str, source: &str, down_port: u16, file: &str, pos: u64) -> String {
    format!(
        "name: {name}\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: {down_port}, user: root, password: ''}}\n\
mysql-instances:\n  - source-id: {source}\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: app\n\
block-allow-list:\n  app: {{do-dbs: [app]}}\n"
    )
}

#[test]
fn user_errors_are_clear_and_a_refused_statement_pauses_until_fixed() {
    let (up, down) = MariaDb::pair(21);
    let (u, d) = (up.url(), down.url());
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let master = Master::start(dir.path(), true);
    let addr = master.addr.clone();

    // Task not found.
    let out = dmctl(&addr, &["pause-task", "nosuch"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("task nosuch has no source or not exist"),
        "{}",
        out.stdout
    );

    // Source not created.
    let (file, pos) = master_pos(&u);
    std::fs::write(p("t1.yaml"), task("t1", "src-a", down.port, &file, pos)).unwrap();
    let out = dmctl(&addr, &["start-task", &p("t1.yaml")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("20031") && out.stdout.contains("src-a"),
        "{}",
        out.stdout
    );

    // Upstream unreachable: operate-source create connects first (as DM) and names the
    // address; nothing is stored, so a task of that source is refused as unknown.
    let dead = common::free_port();
    std::fs::write(
        p("dead.yaml"),
        format!("source-id: src-dead\nfrom: {{host: 127.0.0.1, port: {dead}, user: root, password: ''}}\n"),
    )
    .unwrap();
    let out = dmctl(&addr, &["operate-source", "create", &p("dead.yaml")]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("database driver error")
            && out.stdout.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        out.stdout
    );
    std::fs::write(p("t2.yaml"), task("t2", "src-dead", down.port, &file, pos)).unwrap();
    let out = dmctl(&addr, &["start-task", &p("t2.yaml")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("20031") && out.stdout.contains("src-dead"),
        "{}",
        out.stdout
    );

    // Upstream misconfigured (STATEMENT binlog): the precheck says how to fix it.
    std::fs::write(
        p("src.yaml"),
        format!(
            "source-id: src-a\nfrom: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n",
            up.port
        ),
    )
    .unwrap();
    let out = dmctl(&addr, &["operate-source", "create", &p("src.yaml")]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    exec(&u, &["SET GLOBAL binlog_format = 'STATEMENT'"]);
    let out = dmctl(&addr, &["check-task", &p("t1.yaml")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("binlog_format"), "{}", out.stdout);
    let out = dmctl(&addr, &["start-task", &p("t1.yaml")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("ROW"), "{}", out.stdout);
    exec(&u, &["SET GLOBAL binlog_format = 'ROW'"]);

    // Downstream refuses a statement: a NOT NULL column without default that the upstream
    // does not have (strict mode) → the task pauses with the error; fixed → resumed → equal.
    exec(
        &u,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10), extra INT NOT NULL)",
        ],
    );
    let (file, pos) = master_pos(&u);
    std::fs::write(p("t1.yaml"), task("t1", "src-a", down.port, &file, pos)).unwrap();
    let out = dmctl(&addr, &["start-task", &p("t1.yaml")]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    exec(&u, &["INSERT INTO app.t VALUES (1, 'a'), (2, 'b')"]);
    let t = Instant::now();
    let st = loop {
        let j = dmctl(&addr, &["query-status", "t1"]).json();
        let st = j["sources"][0]["subTaskStatus"][0].clone();
        if st["stage"] == "Paused" {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never paused: {st:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = &st["result"]["errors"][0];
    assert_eq!(err["ErrCode"], 10006, "{st:#}");
    assert_eq!(err["ErrScope"], "downstream", "{st:#}");
    assert!(
        err["RawCause"].as_str().unwrap().contains("extra"),
        "{st:#}"
    );
    assert!(!err["Workaround"].as_str().unwrap().is_empty(), "{st:#}");
    let summary = dmctl(&addr, &["query-status"]).json();
    assert!(
        summary["tasks"][0]["taskStatus"]
            .as_str()
            .unwrap()
            .starts_with("Error - Some error occurred in subtask"),
        "{summary:#}"
    );
    exec(
        &d,
        &["ALTER TABLE app.t MODIFY extra INT NOT NULL DEFAULT 0"],
    );
    let out = dmctl(&addr, &["resume-task", "t1"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let t = Instant::now();
    loop {
        let got = rows(&d, "SELECT id, v FROM app.t ORDER BY id");
        if got == rows(&u, "SELECT id, v FROM app.t ORDER BY id") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not replicated after the fix: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(master);
}
