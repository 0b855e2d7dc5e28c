//! The reconciler end to end, with the real planner, master, worker and MariaDB:
//! `dmctl plan` / `apply DIR` through every transition class, and `dmctl reconcile` keeping
//! the cluster on the directory (a block-allow-list edit applied online within seconds of the
//! save, a worker-count change applied as stop → start with the checkpoint kept, a target port
//! change refused without allow-reset, a task paused by hand resumed at the next resync).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::MariaDb;
use common::cluster::{Master, Proc, dmctl};
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

/// All rows of a table as text, sorted; empty when the table does not exist.
fn rows(url: &str, table: &str) -> Vec<String> {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let r: Vec<mysql_async::Row> = c
            .query(format!("SELECT * FROM {table}"))
            .await
            .unwrap_or_default();
        c.disconnect().await.unwrap();
        let mut v: Vec<String> = r
            .into_iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.as_ref(i).map(|v| v.as_sql(true)).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        v.sort();
        v
    })
}

/// Stage per source of a task ("" list when the task is unknown).
fn stages(addr: &str, task: &str) -> Vec<String> {
    let out = dmctl(addr, &["query-status", task]);
    if out.code != 0 {
        return vec![];
    }
    let j = out.json();
    let mut v = Vec::new();
    for s in j["sources"].as_array().cloned().unwrap_or_default() {
        for st in s["subTaskStatus"].as_array().cloned().unwrap_or_default() {
            v.push(st["stage"].as_str().unwrap_or("").to_string());
        }
    }
    v
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    loop {
        if f() {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn source_yaml(id: &str, port: u16) -> String {
    format!("source-id: {id}\nfrom: {{host: 127.0.0.1, port: {port}, user: root, password: ''}}\n")
}

struct TaskSpec<'a> {
    sources: &'a [(&'a str, &'a str, u64)],
    do_tables: &'a [&'a str],
    worker_count: u32,
    port: u16,
}

fn task_yaml(s: &TaskSpec) -> String {
    let mut y = format!(
        "name: t1\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\nmysql-instances:\n",
        s.port
    );
    for (id, file, pos) in s.sources {
        y.push_str(&format!(
            "  - source-id: {id}\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: app\n    syncer-config-name: g\n"
        ));
    }
    y.push_str("block-allow-list:\n  app:\n    do-tables:\n");
    for t in s.do_tables {
        y.push_str(&format!("      - {{db-name: app, tbl-name: {t}}}\n"));
    }
    y.push_str(&format!(
        "syncers:\n  g: {{worker-count: {}}}\n",
        s.worker_count
    ));
    y
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn plan_and_apply_take_a_directory_through_every_transition() {
    let (up1, up2, down) = std::thread::scope(|s| {
        let a = s.spawn(|| MariaDb::upstream(41));
        let b = s.spawn(|| MariaDb::upstream(42));
        let c = s.spawn(MariaDb::downstream);
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let (u1, u2, d) = (up1.url(), up2.url(), down.url());
    for u in [&u1, &u2] {
        exec(
            u,
            &[
                "CREATE DATABASE app",
                "CREATE TABLE app.log (n INT, note VARCHAR(20))",
            ],
        );
    }
    exec(
        &d,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.log (n INT, note VARCHAR(20))",
        ],
    );
    let (f1, p1) = master_pos(&u1);
    let (f2, p2) = master_pos(&u2);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("tasks");
    std::fs::create_dir(&dir).unwrap();
    let master = Master::start(work.path(), true);
    // A second worker for the second source.
    let _w2 = common::cluster::WorkerProc::start(work.path(), "w2", &master.addr);
    let addr = master.addr.clone();
    let dirs = dir.display().to_string();
    write(&dir, "src1.yaml", &source_yaml("s1", up1.port));
    write(&dir, "src2.yaml", &source_yaml("s2", up2.port));
    write(&dir, "reconcile.yaml", "prune: true\n");
    let one = [("s1", f1.as_str(), p1)];
    let both = [("s1", f1.as_str(), p1), ("s2", f2.as_str(), p2)];
    let spec = |sources, tables, wc| TaskSpec {
        sources,
        do_tables: tables,
        worker_count: wc,
        port: down.port,
    };
    write(&dir, "t1.yaml", &task_yaml(&spec(&one, &["log"], 4)));

    // create: plan says so (exit 2), apply does it, then nothing to do (exit 0).
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("t1"), "{}", out.stdout);
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "no changes expected:\n{}{}",
        out.stdout, out.stderr
    );
    exec(&u1, &["INSERT INTO app.log VALUES (1, 'a')"]);
    wait_until("first row", 30, || {
        rows(&d, "app.log") == rows(&u1, "app.log")
    });

    // online: a block-allow-list change → pause, update-task, resume.
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&spec(&one, &["log", "extra"], 4)),
    );
    let out = dmctl(&addr, &["plan", &dirs]);
    assert!(out.stdout.contains("update-task"), "{}", out.stdout);
    assert!(
        out.stdout.contains("back-fill") || out.stdout.contains("backfill"),
        "no back-fill warning:\n{}",
        out.stdout
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    let cfg = dmctl(&addr, &["get-config", "task", "t1"]);
    assert!(cfg.stdout.contains("tbl-name: extra"), "{}", cfg.stdout);

    // add-source, then remove-source.
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&spec(&both, &["log", "extra"], 4)),
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Running", "Running"]);
    exec(&u2, &["INSERT INTO app.log VALUES (2, 'from s2')"]);
    wait_until("s2's row", 30, || rows(&d, "app.log").len() == 2);
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&spec(&one, &["log", "extra"], 4)),
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "after remove-source:\n{}{}",
        out.stdout, out.stderr
    );

    // restart: worker-count → stop, start; checkpoint kept (a keyless table shows any
    // duplicate or gap).
    exec(&u1, &["INSERT INTO app.log VALUES (3, 'before restart')"]);
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&spec(&one, &["log", "extra"], 8)),
    );
    let out = dmctl(&addr, &["plan", &dirs]);
    assert!(
        out.stdout.contains("stop-task") && out.stdout.contains("kept"),
        "{}",
        out.stdout
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    exec(&u1, &["INSERT INTO app.log VALUES (4, 'after restart')"]);
    let want = {
        let mut w = rows(&u1, "app.log");
        w.extend(rows(&u2, "app.log"));
        w.sort();
        w
    };
    wait_until("restart kept the checkpoint", 30, || {
        rows(&d, "app.log") == want
    });

    // reset needed (target port): refused without allow-reset, nothing changes.
    let mut moved = spec(&one, &["log", "extra"], 8);
    moved.port = up2.port;
    write(&dir, "t1.yaml", &task_yaml(&moved));
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("allow-reset"), "{}", out.stdout);
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&spec(&one, &["log", "extra"], 8)),
    );

    // stage from the policy: paused, then running again.
    write(
        &dir,
        "reconcile.yaml",
        "prune: true\ntasks:\n  - name: t1\n    stage: paused\n",
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Paused"]);
    write(&dir, "reconcile.yaml", "prune: true\n");
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);

    // one invalid file among valid ones: reported, the others applied, exit 1.
    write(
        &dir,
        "broken.yaml",
        "name: t9\ntask-mode: incremental\nnot-a-key: 1\n",
    );
    let mut t2 = task_yaml(&spec(&both, &["log"], 4)).replace("name: t1", "name: t2");
    t2.push('\n');
    write(&dir, "t2.yaml", &t2);
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("broken.yaml") || out.stderr.contains("broken.yaml"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(stages(&addr, "t2"), vec!["Running", "Running"]);
    std::fs::remove_file(dir.join("broken.yaml")).unwrap();

    // create a task the policy wants paused: it is created Paused (never runs).
    write(
        &dir,
        "reconcile.yaml",
        "prune: true\ntasks:\n  - name: t3\n    stage: paused\n",
    );
    let t3 = task_yaml(&spec(&one, &["log"], 4)).replace("name: t1", "name: t3");
    write(&dir, "t3.yaml", &t3);
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(stages(&addr, "t3"), vec!["Paused"]);
    std::fs::remove_file(dir.join("t3.yaml")).unwrap();
    write(&dir, "reconcile.yaml", "prune: true\n");

    // delete with prune.
    std::fs::remove_file(dir.join("t2.yaml")).unwrap();
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(stages(&addr, "t2").is_empty());
    assert!(stages(&addr, "t3").is_empty());
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    drop(master);
}

#[test]
fn reconcile_keeps_the_cluster_on_the_directory() {
    let (up, down) = std::thread::scope(|s| {
        let a = s.spawn(|| MariaDb::upstream(43));
        let c = s.spawn(MariaDb::downstream);
        (a.join().unwrap(), c.join().unwrap())
    });
    let (u, d) = (up.url(), down.url());
    let ddl = [
        "CREATE DATABASE app",
        "CREATE TABLE app.log (n INT, note VARCHAR(20))",
        "CREATE TABLE app.extra (id INT PRIMARY KEY, v VARCHAR(20))",
    ];
    exec(&u, &ddl);
    exec(&d, &ddl);
    exec(&u, &["INSERT INTO app.extra VALUES (1, 'old row')"]);
    let (f, p) = master_pos(&u);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("tasks");
    std::fs::create_dir(&dir).unwrap();
    let master = Master::start(work.path(), true);
    let addr = master.addr.clone();
    write(&dir, "src.yaml", &source_yaml("s1", up.port));
    let one = [("s1", f.as_str(), p)];
    let spec = |tables, wc| TaskSpec {
        sources: &one,
        do_tables: tables,
        worker_count: wc,
        port: down.port,
    };
    write(&dir, "t1.yaml", &task_yaml(&spec(&["log"], 4)));
    let admin = format!("127.0.0.1:{}", common::free_port());
    let mut rec = Proc::spawn(
        env!("CARGO_BIN_EXE_dmctl"),
        &[
            "--master-addr".into(),
            addr.clone(),
            "reconcile".into(),
            dir.display().to_string(),
            "--interval".into(),
            "2s".into(),
            "--debounce".into(),
            "200ms".into(),
            "--admin-addr".into(),
            admin.clone(),
        ],
        work.path().join("reconcile.log"),
        "reconcile",
    );
    wait_until("the task is created", 60, || {
        stages(&addr, "t1") == vec!["Running"]
    });
    exec(
        &u,
        &[
            "INSERT INTO app.log VALUES (1, 'a')",
            "INSERT INTO app.extra VALUES (2, 'not yet')",
        ],
    );
    wait_until("replicating", 30, || {
        rows(&d, "app.log") == rows(&u, "app.log")
    });
    assert_eq!(rows(&d, "app.extra").len(), 0, "extra is not allowed yet");

    // Edit the block-allow-list: applied online (pause → update-task → resume) soon after the save.
    write(&dir, "t1.yaml", &task_yaml(&spec(&["log", "extra"], 4)));
    let took = wait_until("the new block-allow-list is live", 20, || {
        dmctl(&addr, &["get-config", "task", "t1"])
            .stdout
            .contains("tbl-name: extra")
            && stages(&addr, "t1") == vec!["Running"]
    });
    eprintln!("block-allow-list edit applied {took:?} after the save");
    exec(&u, &["INSERT INTO app.extra VALUES (3, 'new')"]);
    wait_until("the newly allowed table replicates", 30, || {
        rows(&d, "app.extra") == vec!["'3'|'new'".to_string()]
    });

    // worker-count: stop → start, checkpoint kept (keyless table: no duplicate, no gap).
    exec(&u, &["INSERT INTO app.log VALUES (2, 'b')"]);
    write(&dir, "t1.yaml", &task_yaml(&spec(&["log", "extra"], 8)));
    wait_until("worker-count applied", 30, || {
        dmctl(&addr, &["get-config", "task", "t1"])
            .stdout
            .contains("worker-count: 8")
            && stages(&addr, "t1") == vec!["Running"]
    });
    exec(&u, &["INSERT INTO app.log VALUES (3, 'c')"]);
    wait_until("no duplicate, no gap", 30, || {
        rows(&d, "app.log") == rows(&u, "app.log")
    });

    // target port: needs a reset, refused without allow-reset; the task keeps running.
    let mut moved = spec(&["log", "extra"], 8);
    moved.port = up.port;
    let rounds = |rec: &Proc| rec.log_text().matches(" in sync").count();
    let before = rounds(&rec);
    write(&dir, "t1.yaml", &task_yaml(&moved));
    wait_until("a round refuses the reset", 30, || {
        rec.log_text().contains("allow-reset") && rounds(&rec) >= before + 2
    });
    let cfg = dmctl(&addr, &["get-config", "task", "t1"]).stdout;
    assert!(cfg.contains(&format!("port: {}", down.port)), "{cfg}");
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    assert!(rec.log_text().contains("allow-reset"), "{}", rec.log_text());
    let before = rounds(&rec);
    write(&dir, "t1.yaml", &task_yaml(&spec(&["log", "extra"], 8)));
    // A whole round after the restore (the round in flight is pre-empted, the next one reads
    // the file): the hand pause below must not race the round the save triggers.
    wait_until("a round after the restore", 30, || {
        rounds(&rec) >= before + 2
    });

    // Paused by hand: undone at the next resync (self-heal is on by default).
    let out = dmctl(&addr, &["pause-task", "t1"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let took = wait_until("self-heal resumes it", 20, || {
        stages(&addr, "t1") == vec!["Running"]
    });
    eprintln!("hand pause undone after {took:?}");

    // The loop serves health and metrics.
    let health = std::net::TcpStream::connect(&admin).is_ok();
    assert!(health, "admin endpoint is up");
    rec.stop();
    assert!(rec.log_text().contains("round"), "{}", rec.log_text());
    drop(master);
}

#[test]
fn a_changed_source_file_is_planned_by_what_changed_and_applied() {
    let (up, down) = MariaDb::pair(43);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.log (n INT, note VARCHAR(20))",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.log (n INT, note VARCHAR(20))",
        ],
    );
    let (f, p) = master_pos(&u);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("tasks");
    std::fs::create_dir(&dir).unwrap();
    let master = Master::start(work.path(), true);
    let addr = master.addr.clone();
    let dirs = dir.display().to_string();
    let relay_dir = work.path().join("relay").display().to_string();
    let source = |extra: &str| {
        format!(
            "{}relay-dir: {relay_dir}\n{extra}",
            source_yaml("s1", up.port)
        )
    };
    write(&dir, "src1.yaml", &source(""));
    let one = [("s1", f.as_str(), p)];
    write(
        &dir,
        "t1.yaml",
        &task_yaml(&TaskSpec {
            sources: &one,
            do_tables: &["log"],
            worker_count: 4,
            port: down.port,
        }),
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "in sync:\n{}{}", out.stdout, out.stderr);

    // enable-relay only: start-relay, the task keeps running.
    write(&dir, "src1.yaml", &source("enable-relay: true\n"));
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("start-relay -s s1")
            && out.stdout.contains("enable-relay: false → true"),
        "{}",
        out.stdout
    );
    let out = dmctl(&addr, &["apply", &dirs, "--yes"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_until("the relay running", 30, || {
        let j = dmctl(&addr, &["query-status", "-s", "s1"]).json();
        j["sources"][0]["sourceStatus"]["relayStatus"]["stage"] == "Running"
    });
    assert_eq!(stages(&addr, "t1"), vec!["Running"]);
    let out = dmctl(&addr, &["plan", &dirs, "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "in sync after start-relay:\n{}{}",
        out.stdout, out.stderr
    );
    exec(&u, &["INSERT INTO app.log VALUES (1, 'a')"]);
    wait_until("the row", 30, || rows(&d, "app.log") == rows(&u, "app.log"));

    // Another key while the task uses the source: DM refuses the update, the plan says why.
    write(
        &dir,
        "src1.yaml",
        &source("enable-relay: true\npurge: {interval: 60}\n"),
    );
    let out = dmctl(&addr, &["plan", &dirs]);
    assert!(
        out.stdout.contains("purge.interval: 3600 → 60")
            && out
                .stdout
                .contains("refused while tasks use the source (t1)"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}
