//! The sync unit under the faults DM users meet, with the real binaries and real MariaDB:
//! savepoints while pause/resume runs, `--remove-meta` followed by crashes and fences, a
//! half-open upstream, a crash right after a DDL, and MariaDB's default (MINIMAL) row
//! metadata behind an ALTER that reorders columns. Each test runs its own dm-master and
//! dm-worker; the tests that need no special upstream share one MariaDB pair while they run
//! (each its own task and database).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{contents, count, same_table, subtask, wait_stage, wait_synced};
use common::cluster::{Cluster, Master, WorkerProc, dmctl, ok};
use common::proxy::Proxy;
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

/// Writes a task file replicating database `db` from the upstream's current position.
fn task_file(dir: &Path, name: &str, db: &str, up: &str, down: &MariaDb, syncer: &str) -> String {
    let (file, pos) = master_pos(up);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: only\n    syncer-config-name: s\n\
block-allow-list:\n  only:\n    do-dbs: [{db}]\n\
syncers:\n  s:\n    worker-count: 4\n    batch: 20\n{syncer}",
            down.port
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Waits until `cond` holds on the task's status (bounded).
fn wait_status(
    addr: &str,
    task: &str,
    limit: Duration,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let st = subtask(addr, task);
        if cond(&st) {
            return st;
        }
        assert!(t.elapsed() < limit, "condition not reached: {st:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_log(p: &common::cluster::Proc, needle: &str, limit: Duration) {
    let t = Instant::now();
    while !p.log_text().contains(needle) {
        assert!(
            t.elapsed() < limit,
            "`{needle}` never logged:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn transactions_with_savepoints_survive_repeated_pause_and_resume() {
    let p = common::shared_pair(21);
    let (up, down) = (&p.up, &p.down);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE sp",
            "CREATE TABLE sp.a (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE sp.k (v INT, note VARCHAR(32))",
        ],
    );
    let c = Cluster::start(up.port, &[]);
    let task = task_file(c.dir.path(), "sp", "sp", &u, down, "");
    exec(
        &d,
        &[
            "CREATE DATABASE IF NOT EXISTS sp",
            "CREATE TABLE IF NOT EXISTS sp.a (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE IF NOT EXISTS sp.k (v INT, note VARCHAR(32))",
        ],
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    // Right after start-task a DM client can already parse both positions.
    let st = subtask(&c.addr, "sp");
    for key in ["syncerBinlog", "masterBinlog"] {
        let v = st["sync"][key].as_str().unwrap_or_default();
        assert!(
            v.starts_with("(mariadb-bin."),
            "{key} right after start-task: {st:#}"
        );
    }
    let writer = {
        let u = u.clone();
        std::thread::spawn(move || {
            rt().block_on(async {
                let mut c = mysql_async::Conn::from_url(&u).await.unwrap();
                for i in 0..300 {
                    // An ORM's nested transactions: savepoints, a rollback to one, a release.
                    c.query_drop(format!(
                        "BEGIN; INSERT INTO sp.a VALUES ({a}, 0); SAVEPOINT s1; \
                         INSERT INTO sp.a VALUES ({b}, 1); INSERT INTO sp.k VALUES ({i}, 'gone'); \
                         ROLLBACK TO SAVEPOINT s1; UPDATE sp.a SET v = v + 1 WHERE id = {a}; \
                         SAVEPOINT s2; INSERT INTO sp.k VALUES ({i}, 'kept'); RELEASE SAVEPOINT s2; \
                         INSERT INTO sp.k VALUES ({i}, 'kept too'); COMMIT",
                        a = i * 2,
                        b = i * 2 + 1
                    ))
                    .await
                    .unwrap();
                }
                c.disconnect().await.unwrap();
            })
        })
    };
    for _ in 0..8 {
        ok(&dmctl(&c.addr, &["pause-task", "sp"]), "pause-task");
        wait_stage(&c.addr, "sp", "Paused");
        ok(&dmctl(&c.addr, &["resume-task", "sp"]), "resume-task");
        wait_stage(&c.addr, "sp", "Running");
    }
    writer.join().unwrap();
    let st = wait_synced(&c.addr, "sp", &u);
    assert_eq!(st["stage"], "Running", "{st:#}");
    assert_eq!(count(&u, "sp.k"), 600);
    same_table(&u, &d, "sp.a", "sp.a", "savepoints");
    same_table(&u, &d, "sp.k", "sp.k", "savepoints");
}

#[test]
fn remove_meta_is_applied_once_across_crash_restart_and_fence() {
    let p = common::shared_pair(21);
    let (up, down) = (&p.up, &p.down);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE rm",
            "CREATE TABLE rm.k (v INT, note VARCHAR(32))",
            "CREATE TABLE rm.p (id INT PRIMARY KEY, v INT)",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE IF NOT EXISTS rm",
            "CREATE TABLE IF NOT EXISTS rm.k (v INT, note VARCHAR(32))",
            "CREATE TABLE IF NOT EXISTS rm.p (id INT PRIMARY KEY, v INT)",
        ],
    );
    let mut c = Cluster::start(up.port, &[]);
    let task = task_file(c.dir.path(), "rm", "rm", &u, down, "");
    ok(
        &dmctl(&c.addr, &["start-task", "--remove-meta", &task]),
        "start-task --remove-meta",
    );
    let mut n = 0;
    let mut write = |what: &str| {
        let mut stmts = Vec::new();
        for _ in 0..3 {
            n += 1;
            stmts.push(format!("INSERT INTO rm.k VALUES ({n}, '{what}')"));
            stmts.push(format!("INSERT INTO rm.p VALUES ({n}, {n})"));
        }
        exec(&u, &stmts);
    };
    let check = |c: &Cluster, what: &str| {
        let st = wait_synced(&c.addr, "rm", &u);
        assert_eq!(st["stage"], "Running", "{what}: {st:#}");
        same_table(&u, &d, "rm.k", "rm.k", what);
        same_table(&u, &d, "rm.p", "rm.p", what);
    };
    write("first");
    check(&c, "after the start");

    // kill -9 of the worker, then a restart.
    write("before kill");
    c.worker.proc.kill9();
    write("while down");
    let dir = c.dir.path().to_path_buf();
    c.worker = WorkerProc::start_at(&dir, "worker-a", &c.worker.addr.clone(), &c.addr);
    check(&c, "after kill -9 and restart of the worker");

    // A master restart.
    write("before master restart");
    c.master.restart(&dir);
    write("after master restart");
    check(&c, "after a master restart");

    // A fence: the master is away longer than the worker's fence, then back.
    c.master.proc.stop();
    wait_log(
        &c.worker.proc,
        "no word from the master",
        Duration::from_secs(30),
    );
    write("while fenced");
    c.master = Master::start_at(&dir, &c.addr, false);
    wait_stage(&c.addr, "rm", "Running");
    write("after the fence");
    check(&c, "after a fence");
    let log = c.worker.proc.log_text();
    assert!(
        !log.contains("checkpoint removed"),
        "the checkpoint was removed again after the first start:\n{log}"
    );
}

#[test]
fn a_half_open_upstream_pauses_with_a_retryable_error_and_recovers() {
    let p = common::shared_pair(21);
    let (up, down) = (&p.up, &p.down);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE ho",
            "CREATE TABLE ho.t (id INT PRIMARY KEY, v VARCHAR(16))",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE IF NOT EXISTS ho",
            "CREATE TABLE IF NOT EXISTS ho.t (id INT PRIMARY KEY, v VARCHAR(16))",
        ],
    );
    let proxy = Proxy::start(up.port);
    let c = Cluster::start(proxy.port, &[]);
    let task = task_file(c.dir.path(), "ho", "ho", &u, down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    exec(&u, &["INSERT INTO ho.t VALUES (1, 'before')"]);
    wait_synced(&c.addr, "ho", &u);

    // The path goes silent without closing: no event, no heartbeat, no FIN.
    proxy.freeze();
    exec(&u, &["INSERT INTO ho.t VALUES (2, 'while frozen')"]);
    let st = wait_status(&c.addr, "ho", Duration::from_secs(90), |st| {
        st["stage"] == "Paused" || st["result"]["errors"][0]["Message"].is_string()
    });
    let err = &st["result"]["errors"][0];
    let msg = err["Message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("no binlog event and no heartbeat") || msg.contains("no answer within"),
        "{st:#}"
    );
    assert!(
        err["Workaround"]
            .as_str()
            .unwrap_or_default()
            .contains("retries automatically"),
        "a retryable error: {st:#}"
    );

    proxy.thaw();
    exec(&u, &["INSERT INTO ho.t VALUES (3, 'after')"]);
    let st = wait_status(&c.addr, "ho", Duration::from_secs(120), |st| {
        st["stage"] == "Running" && st["sync"]["synced"] == true && {
            let (f, p) = master_pos(&u);
            st["sync"]["syncerBinlog"] == format!("({f}, {p})")
        }
    });
    assert_eq!(st["stage"], "Running");
    same_table(&u, &d, "ho.t", "ho.t", "after the thaw");
}

#[test]
fn a_crash_right_after_a_ddl_resumes_and_stays_running() {
    let p = common::shared_pair(21);
    let (up, down) = (&p.up, &p.down);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE dd",
            "CREATE TABLE dd.t (id INT PRIMARY KEY, v INT)",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE IF NOT EXISTS dd",
            "CREATE TABLE IF NOT EXISTS dd.t (id INT PRIMARY KEY, v INT)",
        ],
    );
    let mut c = Cluster::start(up.port, &[]);
    // A short first-start safe window, so the DDL below runs with safe mode off.
    let task = task_file(
        c.dir.path(),
        "dd",
        "dd",
        &u,
        down,
        "    checkpoint-flush-interval: 1\n",
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let mut i = 0;
    let t = Instant::now();
    while !c.worker.proc.log_text().contains("safe mode ends") {
        i += 1;
        exec(&u, &[format!("INSERT INTO dd.t VALUES ({i}, {i})")]);
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "safe mode never ended"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_synced(&c.addr, "dd", &u);

    // The worker now crashes right after running a DDL downstream, before its checkpoint.
    let dir = c.dir.path().to_path_buf();
    let waddr = c.worker.addr.clone();
    c.worker.proc.kill9();
    c.worker = WorkerProc::start_env(
        &dir,
        "worker-a",
        &waddr,
        &c.addr,
        &[("DMRS_FAILPOINTS", "sync-after-ddl")],
    );
    wait_stage(&c.addr, "dd", "Running");
    exec(&u, &["ALTER TABLE dd.t ADD COLUMN c INT NULL"]);
    let t = Instant::now();
    while !c.worker.proc.exited() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the failpoint never fired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        contents(&d, "dd.t").is_some()
            && {
                rt().block_on(async {
                let mut conn = mysql_async::Conn::from_url(&d).await.unwrap();
                let n: Option<u64> = conn
                    .query_first("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='dd' AND TABLE_NAME='t' AND COLUMN_NAME='c'")
                    .await
                    .unwrap();
                n == Some(1)
            })
            },
        "the DDL ran downstream before the crash"
    );
    c.worker = WorkerProc::start_at(&dir, "worker-a", &waddr, &c.addr);
    exec(
        &u,
        &[
            "INSERT INTO dd.t VALUES (1000, 1, 7)",
            "UPDATE dd.t SET c = id WHERE id < 5",
        ],
    );
    let st = wait_synced(&c.addr, "dd", &u);
    assert_eq!(st["stage"], "Running", "{st:#}");
    assert!(
        st["result"].is_null()
            || st["result"]["errors"]
                .as_array()
                .is_none_or(|e| e.is_empty()),
        "{st:#}"
    );
    wait_log(
        &c.worker.proc,
        "DDL already applied",
        Duration::from_secs(5),
    );
    same_table(&u, &d, "dd.t", "dd.t", "after the crash after the DDL");
}

#[test]
fn minimal_row_metadata_decodes_rows_behind_an_alter_that_reorders_columns() {
    // Its own upstream at MariaDB's default binlog_row_metadata (NO_LOG: no column names,
    // no signedness).
    let up = MariaDb::upstream(22);
    let p = common::shared_pair(21);
    let down = &p.down;
    let (u, d) = (up.url(), down.url());
    exec(&u, &["SET GLOBAL binlog_row_metadata = 'NO_LOG'"]);
    let c = Cluster::start(up.port, &[]);
    let task = task_file(c.dir.path(), "mm", "mm", &u, down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    exec(
        &u,
        &[
            "CREATE DATABASE mm",
            "CREATE TABLE mm.t (id INT PRIMARY KEY, a VARCHAR(10), b INT UNSIGNED)",
            "INSERT INTO mm.t VALUES (1, 'one', 4000000001), (2, 'two', 2)",
        ],
    );
    wait_synced(&c.addr, "mm", &u);
    ok(&dmctl(&c.addr, &["pause-task", "mm"]), "pause-task");
    wait_stage(&c.addr, "mm", "Paused");
    exec(
        &u,
        &[
            "INSERT INTO mm.t VALUES (3, 'three', 4000000003)",
            "UPDATE mm.t SET a = 'uno' WHERE id = 1",
            // Reorder and rename: (id, a, b) becomes (id, b, a2).
            "ALTER TABLE mm.t MODIFY b INT UNSIGNED AFTER id, CHANGE a a2 VARCHAR(10)",
            "INSERT INTO mm.t VALUES (4, 4000000004, 'four')",
            "UPDATE mm.t SET a2 = 'deux' WHERE id = 2",
        ],
    );
    ok(&dmctl(&c.addr, &["resume-task", "mm"]), "resume-task");
    let st = wait_synced(&c.addr, "mm", &u);
    assert_eq!(st["stage"], "Running", "{st:#}");
    same_table(&u, &d, "mm.t", "mm.t", "after the reordering ALTER");
    assert_eq!(
        contents(&d, "mm.t").unwrap()[0],
        vec![
            Some("'1'".to_string()),
            Some("'4000000001'".to_string()),
            Some("'uno'".to_string())
        ]
    );
}
