//! Pessimistic shard DDL with the real binaries: two upstream MariaDB servers (two sources, two
//! workers), each with two shard tables routed into one downstream table, DML interleaved
//! throughout. The same ALTER reaching the shards in different orders forms one lock (shown by
//! show-ddl-locks and query-status), runs downstream once (on the lock's owner) when the last
//! shard arrives, and every row lands; a different DDL on one source is DM's 36008; a lock a
//! source never joins is resolved with unlock-ddl-lock. The tests share the three servers (each
//! its own database, task and cluster).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{query_rows, rows, wait_for};
use common::cluster::{Master, WorkerProc, dmctl, ok, write_source};
use common::sql::{exec, master_pos};

struct Servers {
    up1: MariaDb,
    up2: MariaDb,
    down: MariaDb,
}

fn servers() -> Arc<Servers> {
    static S: Mutex<Weak<Servers>> = Mutex::new(Weak::new());
    let mut slot = S.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let (up1, down) = MariaDb::pair(61);
    let up2 = MariaDb::upstream(62);
    let s = Arc::new(Servers { up1, up2, down });
    *slot = Arc::downgrade(&s);
    s
}

/// A master and two workers, `source-1` (up1) and `source-2` (up2) bound one to each.
struct Shards {
    dir: tempfile::TempDir,
    _master: Master,
    workers: Vec<WorkerProc>,
    addr: String,
}

impl Shards {
    fn start(s: &Servers) -> Shards {
        let dir = tempfile::tempdir().unwrap();
        let master = Master::start(dir.path(), false);
        let workers: Vec<WorkerProc> = ["worker-1", "worker-2"]
            .iter()
            .map(|n| WorkerProc::start(dir.path(), n, &master.addr))
            .collect();
        let addr = master.addr.clone();
        for (id, port) in [("source-1", s.up1.port), ("source-2", s.up2.port)] {
            let f = write_source(dir.path(), id, port);
            ok(
                &dmctl(
                    &addr,
                    &["operate-source", "create", &f.display().to_string()],
                ),
                "operate-source",
            );
        }
        let t = Instant::now();
        loop {
            let lm = dmctl(&addr, &["list-member", "--worker"]).json();
            let bound = lm["members"][0]["worker"]["workers"]
                .as_array()
                .map(|w| w.iter().filter(|x| x["stage"] == "bound").count())
                .unwrap_or(0);
            if bound == 2 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "never bound: {lm:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Shards {
            dir,
            _master: master,
            workers,
            addr,
        }
    }

    fn logs(&self) -> String {
        self.workers.iter().map(|w| w.proc.log_text()).collect()
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs: Vec<(&str, String)> = self
                .workers
                .iter()
                .map(|w| (w.name.as_str(), w.proc.log_text()))
                .collect();
            common::cluster::report_logs(&mut self.dir, &logs, 40);
        }
    }
}

/// Creates `db`.t1 and `db`.t2 on both upstreams and `merged_<db>`.t downstream, and writes the
/// pessimistic task routing all four into the merged table, from each upstream's current
/// position.
fn setup(s: &Servers, dir: &Path, db: &str) -> String {
    setup_mode(s, dir, db, "pessimistic")
}

/// [`setup`] with another `shard-mode`.
fn setup_mode(s: &Servers, dir: &Path, db: &str, mode: &str) -> String {
    for up in [&s.up1, &s.up2] {
        exec(
            &up.url(),
            &[
                format!("CREATE DATABASE {db}"),
                format!("CREATE TABLE {db}.t1 (id INT PRIMARY KEY, v INT)"),
                format!("CREATE TABLE {db}.t2 (id INT PRIMARY KEY, v INT)"),
            ],
        );
    }
    exec(
        &s.down.url(),
        &[
            format!("CREATE DATABASE merged_{db}"),
            format!("CREATE TABLE merged_{db}.t (id INT PRIMARY KEY, v INT)"),
        ],
    );
    let mut inst = String::new();
    for (id, up) in [("source-1", &s.up1), ("source-2", &s.up2)] {
        let (file, pos) = master_pos(&up.url());
        inst.push_str(&format!(
            "  - source-id: {id}\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: bal\n    route-rules: [r-db, r-tbl]\n    syncer-config-name: quick\n"
        ));
    }
    let path = dir.join(format!("{db}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {db}\ntask-mode: incremental\nshard-mode: {mode}\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n{inst}\
block-allow-list:\n  bal:\n    do-dbs: [{db}]\n\
syncers:\n  quick:\n    checkpoint-flush-interval: 1\n\
routes:\n  r-db:\n    schema-pattern: {db}\n    target-schema: merged_{db}\n  r-tbl:\n    schema-pattern: {db}\n    table-pattern: \"t*\"\n    target-schema: merged_{db}\n    target-table: t\n",
            s.down.port
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The subtasks' status per source.
fn subtasks(addr: &str, task: &str) -> Vec<serde_json::Value> {
    let j = dmctl(addr, &["query-status", task]).json();
    j["sources"]
        .as_array()
        .map(|a| a.iter().map(|s| s["subTaskStatus"][0].clone()).collect())
        .unwrap_or_default()
}

/// Starts the task of `setup` and waits until both subtasks run.
fn start_running(c: &Shards, task_file: &str, task: &str) {
    ok(&dmctl(&c.addr, &["start-task", task_file]), "start-task");
    wait_for("both subtasks Running", Duration::from_secs(30), || {
        let st = subtasks(&c.addr, task);
        (st.len() == 2 && st.iter().all(|x| x["stage"] == "Running"))
            .then_some(())
            .ok_or(format!("{st:?}"))
    });
}

/// Waits until `merged_<db>`.t holds every row of the four shards once (`cols` of each).
fn wait_merged_equals_shards(s: &Servers, db: &str, cols: &str) {
    let mut want = Vec::new();
    for u in [s.up1.url(), s.up2.url()] {
        for t in ["t1", "t2"] {
            want.extend(rows(&u, &format!("SELECT {cols} FROM {db}.{t}")));
        }
    }
    want.sort_by_key(|r| {
        r[0].as_deref()
            .unwrap_or("")
            .trim_matches('\'')
            .parse::<i64>()
            .unwrap_or(0)
    });
    let q = format!("SELECT {cols} FROM merged_{db}.t ORDER BY id");
    wait_for(
        "the merged table equals the shards",
        Duration::from_secs(60),
        || {
            let got = query_rows(&s.down.url(), &q).map_err(|e| e.to_string())?;
            (got == want)
                .then_some(())
                .ok_or(format!("{got:?}\n!=\n{want:?}"))
        },
    );
}

/// Waits until show-ddl-locks has no lock.
fn wait_no_lock(c: &Shards) {
    wait_for("the lock resolved", Duration::from_secs(30), || {
        let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
        (j["msg"] == "no DDL lock exists")
            .then_some(())
            .ok_or(format!("{j:#}"))
    });
}

#[test]
fn the_same_alter_in_any_order_runs_once_and_every_row_lands() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd1");
    start_running(&c, &task, "sd1");
    let (u1, u2, d) = (s.up1.url(), s.up2.url(), s.down.url());
    // Past the start's safe-mode window (2 × checkpoint-flush-interval): from here a row
    // applied twice is a duplicate-key error, not a silent REPLACE.
    let mut n = 0;
    wait_for(
        "both sources past the safe-mode window",
        Duration::from_secs(30),
        || {
            n += 1;
            exec(
                &u1,
                &[format!("INSERT INTO sd1.t1 VALUES ({}, 0)", 1000 + n)],
            );
            exec(
                &u2,
                &[format!("INSERT INTO sd1.t1 VALUES ({}, 0)", 3000 + n)],
            );
            let seen = c
                .logs()
                .matches("safe mode ends (start window over)")
                .count();
            (seen >= 2).then_some(()).ok_or(format!("{seen} of 2"))
        },
    );
    exec(
        &u1,
        &[
            "INSERT INTO sd1.t1 VALUES (101, 1)",
            "INSERT INTO sd1.t2 VALUES (201, 1)",
        ],
    );
    exec(
        &u2,
        &[
            "INSERT INTO sd1.t1 VALUES (301, 1)",
            "INSERT INTO sd1.t2 VALUES (401, 1)",
        ],
    );
    // source-1: t1 first; source-2: t2 first; rows in between on every table.
    exec(
        &u1,
        &[
            "ALTER TABLE sd1.t1 ADD COLUMN c INT",
            "INSERT INTO sd1.t1 VALUES (102, 2, 12)",
            "INSERT INTO sd1.t2 VALUES (202, 2)",
            "UPDATE sd1.t2 SET v = 20 WHERE id = 201",
        ],
    );
    exec(
        &u2,
        &[
            "ALTER TABLE sd1.t2 ADD COLUMN c INT",
            "INSERT INTO sd1.t2 VALUES (402, 2, 42)",
            "INSERT INTO sd1.t1 VALUES (302, 2)",
        ],
    );
    exec(
        &u1,
        &[
            "ALTER TABLE sd1.t2 ADD COLUMN c INT",
            "INSERT INTO sd1.t2 VALUES (203, 3, 23)",
            "INSERT INTO sd1.t1 VALUES (103, 3, 13)",
        ],
    );
    // source-1 has every shard at the DDL: the lock exists, source-2 not yet in it.
    wait_for(
        "the lock with source-1 synced",
        Duration::from_secs(30),
        || {
            let j = dmctl(&c.addr, &["show-ddl-locks", "sd1"]).json();
            let l = &j["locks"][0];
            (l["ID"] == "sd1-`merged_sd1`.`t`"
                && l["synced"] == serde_json::json!(["source-1"])
                && l["unsynced"] == serde_json::json!(["source-2"])
                && l["owner"] == "source-1")
                .then_some(())
                .ok_or(format!("{j:#}"))
        },
    );
    let st = subtasks(&c.addr, "sd1");
    let s1 = st
        .iter()
        .find(|x| x["unresolvedDDLLockID"] == "sd1-`merged_sd1`.`t`")
        .unwrap_or_else(|| panic!("query-status shows the lock: {st:#?}"));
    assert_eq!(
        s1["sync"]["blockingDDLs"][0], "ALTER TABLE `merged_sd1`.`t` ADD COLUMN c INT",
        "{s1:#}"
    );
    // DM's sharding meta of source-1's round: the global row and one per table (source-2 has
    // its own rows for the table that reached the DDL there).
    let meta = rows(
        &d,
        "SELECT source_id, target_table_id, source_table_id, is_global, JSON_EXTRACT(data, '$[0].ddls[0]') FROM dm_meta.sd1_syncer_sharding_meta WHERE source_id = 'source-1' ORDER BY source_table_id",
    );
    let ddl = Some("'\"ALTER TABLE `merged_sd1`.`t` ADD COLUMN c INT\"'".to_string());
    let row = |src: &str, global: &str| {
        vec![
            Some("'source-1'".to_string()),
            Some("'`merged_sd1`.`t`'".to_string()),
            Some(format!("'{src}'")),
            Some(format!("'{global}'")),
            ddl.clone(),
        ]
    };
    assert_eq!(
        meta,
        vec![row("", "1"), row("`sd1`.`t1`", "0"), row("`sd1`.`t2`", "0")]
    );
    // Nothing ran downstream yet.
    assert_eq!(
        rows(
            &d,
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'merged_sd1' AND COLUMN_NAME = 'c'"
        ),
        vec![vec![Some("'0'".to_string())]]
    );
    exec(
        &u2,
        &[
            "ALTER TABLE sd1.t1 ADD COLUMN c INT",
            "INSERT INTO sd1.t1 VALUES (303, 3, 33)",
            "UPDATE sd1.t2 SET c = 44 WHERE id = 401",
        ],
    );
    // Every row of the four shards, once, in the merged table.
    wait_merged_equals_shards(&s, "sd1", "id, v, c");
    wait_no_lock(&c);
    wait_for("the sharding meta emptied", Duration::from_secs(30), || {
        let n = rows(&d, "SELECT COUNT(*) FROM dm_meta.sd1_syncer_sharding_meta");
        (n == vec![vec![Some("'0'".to_string())]])
            .then_some(())
            .ok_or(format!("{n:?}"))
    });
    let logs = c.logs();
    assert_eq!(
        logs.matches("executing the lock's DDLs (owner)").count(),
        1,
        "the DDL ran once"
    );
    assert_eq!(
        logs.matches("skipped here").count(),
        1,
        "and was skipped once"
    );
    ok(&dmctl(&c.addr, &["stop-task", "sd1"]), "stop-task");
}

#[test]
fn a_different_ddl_on_one_source_is_the_sequence_error() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd2");
    start_running(&c, &task, "sd2");
    exec(
        &s.up1.url(),
        &[
            "ALTER TABLE sd2.t1 ADD COLUMN c INT",
            "ALTER TABLE sd2.t2 ADD COLUMN d INT",
        ],
    );
    wait_for(
        "source-1 paused with 36008",
        Duration::from_secs(30),
        || {
            let st = subtasks(&c.addr, "sd2");
            let text = serde_json::to_string(&st).unwrap();
            (text.contains("Paused")
                && text.contains("36008")
                && text.contains("detect inconsistent DDL sequence"))
            .then_some(())
            .ok_or(text)
        },
    );
    ok(&dmctl(&c.addr, &["stop-task", "sd2"]), "stop-task");
}

#[test]
fn unlock_ddl_lock_resolves_a_lock_a_source_never_joins() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd3");
    start_running(&c, &task, "sd3");
    let (u1, d) = (s.up1.url(), s.down.url());
    exec(
        &u1,
        &[
            "ALTER TABLE sd3.t1 ADD COLUMN c INT",
            "ALTER TABLE sd3.t2 ADD COLUMN c INT",
            "INSERT INTO sd3.t1 VALUES (101, 1, 11)",
        ],
    );
    let id = "sd3-`merged_sd3`.`t`";
    wait_for("the lock", Duration::from_secs(30), || {
        let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
        (j["locks"][0]["ID"] == id)
            .then_some(())
            .ok_or(format!("{j:#}"))
    });
    let out = dmctl(&c.addr, &["unlock-ddl-lock", "sd3-`merged_sd3`.`nope`"]);
    assert!(out.stdout.contains("38019"), "{}", out.stdout);
    let out = dmctl(&c.addr, &["unlock-ddl-lock", id, "-o", "source-2"]);
    assert!(out.stdout.contains("38022"), "{}", out.stdout);
    ok(&dmctl(&c.addr, &["unlock-ddl-lock", id]), "unlock-ddl-lock");
    wait_for(
        "the DDL ran and the row arrived",
        Duration::from_secs(30),
        || {
            let got = query_rows(&d, "SELECT id, v, c FROM merged_sd3.t ORDER BY id")
                .map_err(|e| e.to_string())?;
            (got == vec![vec![
                Some("'101'".to_string()),
                Some("'1'".to_string()),
                Some("'11'".to_string()),
            ]])
            .then_some(())
            .ok_or(format!("{got:?}"))
        },
    );
    wait_no_lock(&c);
    ok(&dmctl(&c.addr, &["stop-task", "sd3"]), "stop-task");
}

#[test]
fn a_lock_survives_a_master_restart_and_a_worker_kill9() {
    let s = servers();
    let mut c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd4");
    start_running(&c, &task, "sd4");
    let (u1, u2) = (s.up1.url(), s.up2.url());
    exec(
        &u1,
        &[
            "INSERT INTO sd4.t1 VALUES (101, 1)",
            "ALTER TABLE sd4.t1 ADD COLUMN c INT",
            "INSERT INTO sd4.t2 VALUES (201, 1)",
            "ALTER TABLE sd4.t2 ADD COLUMN c INT",
            "INSERT INTO sd4.t1 VALUES (102, 2, 12)",
        ],
    );
    exec(&u2, &["INSERT INTO sd4.t1 VALUES (301, 1)"]);
    let id = "sd4-`merged_sd4`.`t`";
    let lock_with_source_1 = || -> Result<(), String> {
        let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
        (j["locks"][0]["ID"] == id && j["locks"][0]["synced"] == serde_json::json!(["source-1"]))
            .then_some(())
            .ok_or(format!("{j:#}"))
    };
    wait_for("the lock", Duration::from_secs(30), lock_with_source_1);
    // The master restarts: the lock is still there.
    c._master.restart(c.dir.path());
    wait_for(
        "the lock after a master restart",
        Duration::from_secs(30),
        || {
            let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
            (j["locks"][0]["ID"] == id)
                .then_some(())
                .ok_or(format!("{j:#}"))
        },
    );
    // The worker of source-1 is killed and started again: its round forms again.
    let lm = dmctl(&c.addr, &["list-member", "--worker"]).json();
    let w1 = lm["members"][0]["worker"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["source"] == "source-1")
        .map(|w| w["name"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{lm:#}"));
    let k = c.workers.iter().position(|w| w.name == w1).unwrap();
    c.workers[k].proc.kill9();
    let (name, addr, join) = (
        c.workers[k].name.clone(),
        c.workers[k].addr.clone(),
        c.workers[k].join.clone(),
    );
    c.workers[k] = WorkerProc::start_at(c.dir.path(), &name, &addr, &join);
    exec(&u1, &["INSERT INTO sd4.t2 VALUES (202, 2, 22)"]);
    wait_for(
        "source-1 back in the lock",
        Duration::from_secs(60),
        lock_with_source_1,
    );
    exec(
        &u2,
        &[
            "ALTER TABLE sd4.t2 ADD COLUMN c INT",
            "INSERT INTO sd4.t2 VALUES (401, 1, 41)",
            "ALTER TABLE sd4.t1 ADD COLUMN c INT",
            "INSERT INTO sd4.t1 VALUES (302, 2, 32)",
        ],
    );
    // Every row of the four shards, once, in the merged table.
    wait_merged_equals_shards(&s, "sd4", "id, v, c");
    wait_no_lock(&c);
    ok(&dmctl(&c.addr, &["stop-task", "sd4"]), "stop-task");
}

#[test]
fn break_ddl_lock_runs_the_waiting_ddl_on_a_worker_and_removes_the_lock() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd5");
    start_running(&c, &task, "sd5");
    let (u1, d) = (s.up1.url(), s.down.url());
    exec(
        &u1,
        &[
            "ALTER TABLE sd5.t1 ADD COLUMN c INT",
            "ALTER TABLE sd5.t2 ADD COLUMN c INT",
            "INSERT INTO sd5.t2 VALUES (201, 1, 21)",
        ],
    );
    let id = "sd5-`merged_sd5`.`t`";
    wait_for("the lock", Duration::from_secs(30), || {
        let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
        (j["locks"][0]["ID"] == id)
            .then_some(())
            .ok_or(format!("{j:#}"))
    });
    let lm = dmctl(&c.addr, &["list-member", "--worker"]).json();
    let w1 = lm["members"][0]["worker"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["source"] == "source-1")
        .map(|w| w["name"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{lm:#}"));
    let both = dmctl(
        &c.addr,
        &["break-ddl-lock", "-w", &w1, "sd5", "--exec", "-s"],
    );
    assert_eq!(both.code, 2, "{}", both.stdout);
    assert!(
        both.stdout.contains("can not specify both"),
        "{}",
        both.stdout
    );
    let out = dmctl(&c.addr, &["break-ddl-lock", "-w", &w1, "sd5", "--exec"]);
    ok(&out, "break-ddl-lock --exec");
    assert_eq!(out.json()["workers"][0]["result"], true, "{}", out.stdout);
    wait_for(
        "the DDL ran on source-1 and its row arrived",
        Duration::from_secs(30),
        || {
            let got = query_rows(&d, "SELECT id, v, c FROM merged_sd5.t ORDER BY id")
                .map_err(|e| e.to_string())?;
            (got == vec![vec![
                Some("'201'".to_string()),
                Some("'1'".to_string()),
                Some("'21'".to_string()),
            ]])
            .then_some(())
            .ok_or(format!("{got:?}"))
        },
    );
    ok(
        &dmctl(&c.addr, &["break-ddl-lock", "sd5", "--remove-id", id]),
        "break-ddl-lock --remove-id",
    );
    let j = dmctl(&c.addr, &["show-ddl-locks"]).json();
    assert_eq!(j["msg"], "no DDL lock exists", "{j:#}");
    ok(&dmctl(&c.addr, &["stop-task", "sd5"]), "stop-task");
}

#[test]
fn a_new_shard_joins_its_group_without_recreating_the_merged_table() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd6");
    start_running(&c, &task, "sd6");
    exec(
        &s.up1.url(),
        &[
            "CREATE TABLE sd6.t3 (id INT PRIMARY KEY, v INT)",
            "INSERT INTO sd6.t3 VALUES (501, 5)",
        ],
    );
    wait_for("the new shard's row", Duration::from_secs(30), || {
        let got = query_rows(&s.down.url(), "SELECT id, v FROM merged_sd6.t")
            .map_err(|e| e.to_string())?;
        (got == vec![vec![Some("'501'".to_string()), Some("'5'".to_string())]])
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    let st = subtasks(&c.addr, "sd6");
    assert!(st.iter().all(|x| x["stage"] == "Running"), "{st:#?}");
    assert!(c.logs().contains("a new shard joins its group"));
    ok(&dmctl(&c.addr, &["stop-task", "sd6"]), "stop-task");
}

#[test]
fn a_shard_ddl_the_downstream_rejects_is_replaced_with_binlog_replace() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd7");
    start_running(&c, &task, "sd7");
    let (u1, u2, d) = (s.up1.url(), s.up2.url(), s.down.url());
    // The merged table holds v = 1 twice across shards: a unique key on v cannot be added there.
    exec(&u1, &["INSERT INTO sd7.t1 VALUES (101, 1)"]);
    exec(&u2, &["INSERT INTO sd7.t1 VALUES (301, 1)"]);
    for (u, db) in [(&u1, "sd7"), (&u2, "sd7")] {
        exec(
            u,
            &[
                format!("ALTER TABLE {db}.t1 ADD UNIQUE KEY uk (v)"),
                format!("ALTER TABLE {db}.t2 ADD UNIQUE KEY uk (v)"),
            ],
        );
    }
    let mut owner = String::new();
    wait_for(
        "the owner paused on the rejected DDL",
        Duration::from_secs(30),
        || {
            let j = dmctl(&c.addr, &["query-status", "sd7"]).json();
            for src in j["sources"].as_array().into_iter().flatten() {
                let st = &src["subTaskStatus"][0];
                let text = st.to_string();
                if st["stage"] == "Paused"
                    && text.contains("1062")
                    && text.contains("binlog replace sd7")
                {
                    owner = src["sourceStatus"]["source"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    return Ok(());
                }
            }
            Err(format!("{j:#}"))
        },
    );
    ok(
        &dmctl(
            &c.addr,
            &[
                "binlog",
                "replace",
                "sd7",
                "-s",
                &owner,
                "ALTER TABLE merged_sd7.t ADD KEY k (v)",
            ],
        ),
        "binlog replace",
    );
    exec(&u1, &["INSERT INTO sd7.t2 VALUES (201, 2)"]);
    exec(&u2, &["INSERT INTO sd7.t2 VALUES (401, 4)"]);
    let want = vec![
        vec![Some("'101'".to_string()), Some("'1'".to_string())],
        vec![Some("'201'".to_string()), Some("'2'".to_string())],
        vec![Some("'301'".to_string()), Some("'1'".to_string())],
        vec![Some("'401'".to_string()), Some("'4'".to_string())],
    ];
    wait_for(
        "every row, the lock resolved",
        Duration::from_secs(60),
        || {
            let got = query_rows(&d, "SELECT id, v FROM merged_sd7.t ORDER BY id")
                .map_err(|e| e.to_string())?;
            let locks = dmctl(&c.addr, &["show-ddl-locks"]).json();
            (got == want && locks["msg"] == "no DDL lock exists")
                .then_some(())
                .ok_or(format!("{got:?} {locks}"))
        },
    );
    let idx = query_rows(
        &d,
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'merged_sd7' AND TABLE_NAME = 't' ORDER BY 1",
    )
    .unwrap();
    assert_eq!(
        idx,
        vec![
            vec![Some("'k'".to_string())],
            vec![Some("'PRIMARY'".to_string())]
        ],
        "the replacement ran, the rejected DDL did not"
    );
    ok(&dmctl(&c.addr, &["stop-task", "sd7"]), "stop-task");
}

/// The columns of `merged_<db>`.t downstream, in order.
fn merged_columns(s: &Servers, db: &str) -> Vec<String> {
    rows(
        &s.down.url(),
        &format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'merged_{db}' AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION"
        ),
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap_or_default().trim_matches('\'').to_string())
    .collect()
}

/// Waits until the merged table has exactly `id` among its rows with `v`.
fn wait_row(s: &Servers, db: &str, id: i64, v: i64) {
    let q = format!("SELECT v FROM merged_{db}.t WHERE id = {id}");
    wait_for(
        &format!("row {id} downstream"),
        Duration::from_secs(30),
        || {
            let got = query_rows(&s.down.url(), &q).map_err(|e| e.to_string())?;
            (got == vec![vec![Some(format!("'{v}'"))]])
                .then_some(())
                .ok_or(format!("{got:?}"))
        },
    );
}

#[test]
fn optimistic_add_column_runs_at_the_first_shard_and_drop_at_the_last_without_blocking_dml() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup_mode(&s, c.dir.path(), "so1", "optimistic");
    start_running(&c, &task, "so1");
    let (u1, u2) = (s.up1.url(), s.up2.url());
    exec(
        &u1,
        &[
            "INSERT INTO so1.t1 VALUES (101, 1)",
            "INSERT INTO so1.t2 VALUES (201, 1)",
        ],
    );
    exec(
        &u2,
        &[
            "INSERT INTO so1.t1 VALUES (301, 1)",
            "INSERT INTO so1.t2 VALUES (401, 1)",
        ],
    );
    // The first shard's ADD COLUMN runs downstream at once.
    exec(
        &u1,
        &[
            "ALTER TABLE so1.t1 ADD COLUMN c INT",
            "INSERT INTO so1.t1 VALUES (102, 2, 12)",
        ],
    );
    wait_row(&s, "so1", 102, 2);
    assert_eq!(merged_columns(&s, "so1"), ["id", "v", "c"]);
    // The other shards' rows keep landing while they have no `c` (DML is never blocked).
    exec(&u1, &["INSERT INTO so1.t2 VALUES (202, 2)"]);
    exec(
        &u2,
        &[
            "INSERT INTO so1.t1 VALUES (302, 2)",
            "INSERT INTO so1.t2 VALUES (402, 2)",
        ],
    );
    wait_row(&s, "so1", 202, 2);
    wait_row(&s, "so1", 302, 2);
    wait_row(&s, "so1", 402, 2);
    // The lock shows the three tables still without the column.
    let j = dmctl(&c.addr, &["show-ddl-locks", "so1"]).json();
    let l = &j["locks"][0];
    assert_eq!(l["ID"], "so1-`merged_so1`.`t`", "{j:#}");
    assert_eq!(l["mode"], "optimistic", "{j:#}");
    assert_eq!(
        l["synced"],
        serde_json::json!(["source-1-`so1`.`t1`"]),
        "{j:#}"
    );
    assert_eq!(
        l["unsynced"],
        serde_json::json!([
            "source-1-`so1`.`t2`",
            "source-2-`so1`.`t1`",
            "source-2-`so1`.`t2`"
        ]),
        "{j:#}"
    );
    // The others add it at different times; nothing more runs downstream.
    exec(
        &u2,
        &[
            "ALTER TABLE so1.t2 ADD COLUMN c INT",
            "INSERT INTO so1.t2 VALUES (403, 3, 43)",
        ],
    );
    exec(&u1, &["UPDATE so1.t1 SET c = 11 WHERE id = 101"]);
    exec(
        &u1,
        &[
            "ALTER TABLE so1.t2 ADD COLUMN c INT",
            "INSERT INTO so1.t2 VALUES (203, 3, 23)",
        ],
    );
    exec(
        &u2,
        &[
            "ALTER TABLE so1.t1 ADD COLUMN c INT",
            "INSERT INTO so1.t1 VALUES (303, 3, 33)",
        ],
    );
    wait_merged_equals_shards(&s, "so1", "id, v, c");
    wait_no_lock(&c);
    // DROP COLUMN: the merged table keeps `c` until the last shard drops it.
    exec(
        &u2,
        &[
            "ALTER TABLE so1.t1 DROP COLUMN c",
            "INSERT INTO so1.t1 VALUES (304, 4)",
        ],
    );
    exec(
        &u1,
        &[
            "ALTER TABLE so1.t1 DROP COLUMN c",
            "INSERT INTO so1.t1 VALUES (104, 4)",
        ],
    );
    exec(
        &u1,
        &[
            "ALTER TABLE so1.t2 DROP COLUMN c",
            "INSERT INTO so1.t2 VALUES (204, 4)",
        ],
    );
    wait_row(&s, "so1", 304, 4);
    wait_row(&s, "so1", 104, 4);
    wait_row(&s, "so1", 204, 4);
    assert_eq!(
        merged_columns(&s, "so1"),
        ["id", "v", "c"],
        "one shard still has c"
    );
    exec(&u2, &["INSERT INTO so1.t2 VALUES (404, 4, 44)"]);
    exec(
        &u2,
        &[
            "ALTER TABLE so1.t2 DROP COLUMN c",
            "INSERT INTO so1.t2 VALUES (405, 5)",
        ],
    );
    wait_for("the last DROP COLUMN ran", Duration::from_secs(30), || {
        let cols = merged_columns(&s, "so1");
        (cols == ["id", "v"])
            .then_some(())
            .ok_or(format!("{cols:?}"))
    });
    wait_merged_equals_shards(&s, "so1", "id, v");
    wait_no_lock(&c);
    let st = subtasks(&c.addr, "so1");
    assert!(st.iter().all(|x| x["stage"] == "Running"), "{st:#?}");
    let logs = c.logs();
    assert_eq!(
        logs.matches("the joined schema changed; executing").count(),
        2,
        "one ADD and one DROP ran downstream"
    );
    ok(&dmctl(&c.addr, &["stop-task", "so1"]), "stop-task");
}

#[test]
fn optimistic_conflicting_type_is_36062_and_binlog_schema_update_then_skip_gets_past_it() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup_mode(&s, c.dir.path(), "so2", "optimistic");
    start_running(&c, &task, "so2");
    let (u1, u2) = (s.up1.url(), s.up2.url());
    exec(
        &u1,
        &[
            "ALTER TABLE so2.t1 ADD COLUMN c INT",
            "INSERT INTO so2.t1 VALUES (101, 1, 11)",
        ],
    );
    wait_row(&s, "so2", 101, 1);
    // The same column as text on another shard: the joined schema cannot hold both.
    exec(
        &u2,
        &[
            "ALTER TABLE so2.t1 ADD COLUMN c VARCHAR(10)",
            "INSERT INTO so2.t1 VALUES (301, 1, '31')",
        ],
    );
    wait_for(
        "source-2 paused with 36062",
        Duration::from_secs(30),
        || {
            let st = subtasks(&c.addr, "so2");
            let text = st.iter().map(|x| x.to_string()).collect::<String>();
            (text.contains("\"Paused\"")
                && text.contains("36062")
                && text.contains("because schema conflict detected")
                && text.contains("binlog-schema update so2"))
            .then_some(())
            .ok_or(text)
        },
    );
    // The other source goes on meanwhile.
    exec(&u1, &["INSERT INTO so2.t2 VALUES (201, 2)"]);
    wait_row(&s, "so2", 201, 2);
    // binlog-schema list shows the tracked table (before the conflicting DDL).
    let l = dmctl(
        &c.addr,
        &[
            "binlog-schema",
            "list",
            "so2",
            "so2",
            "t1",
            "-s",
            "source-2",
        ],
    )
    .json();
    let shown = l["sources"][0]["msg"].as_str().unwrap_or("").to_string();
    assert!(
        l["result"] == true
            && shown.starts_with("CREATE TABLE `so2`.`t1`")
            && !shown.contains("`c`"),
        "{l:#}"
    );
    // The way out: the table's tracked schema as the merged table has it, then skip the DDL.
    let f = c.dir.path().join("so2-t1.sql");
    std::fs::write(&f, "CREATE TABLE t1 (id INT PRIMARY KEY, v INT, c INT)").unwrap();
    ok(
        &dmctl(
            &c.addr,
            &[
                "binlog-schema",
                "update",
                "so2",
                "so2",
                "t1",
                &f.display().to_string(),
                "-s",
                "source-2",
            ],
        ),
        "binlog-schema update",
    );
    let l = dmctl(
        &c.addr,
        &[
            "binlog-schema",
            "list",
            "so2",
            "so2",
            "t1",
            "-s",
            "source-2",
        ],
    )
    .json();
    assert!(
        l["sources"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("`c` int"),
        "{l:#}"
    );
    ok(
        &dmctl(&c.addr, &["handle-error", "so2", "-s", "source-2", "skip"]),
        "handle-error skip",
    );
    wait_for("both subtasks Running", Duration::from_secs(30), || {
        let st = subtasks(&c.addr, "so2");
        st.iter()
            .all(|x| x["stage"] == "Running")
            .then_some(())
            .ok_or(format!("{st:#?}"))
    });
    // The skipped DDL did not run; the shard's rows land in the INT column.
    exec(&u2, &["INSERT INTO so2.t1 VALUES (302, 2, '32')"]);
    wait_row(&s, "so2", 302, 2);
    for (u, t) in [(&u1, "t2"), (&u2, "t2")] {
        exec(u, &[format!("ALTER TABLE so2.{t} ADD COLUMN c INT")]);
    }
    exec(&u2, &["INSERT INTO so2.t2 VALUES (401, 4, 41)"]);
    wait_merged_equals_shards(&s, "so2", "id, v, c + 0");
    wait_no_lock(&c);
    let ty = rows(
        &s.down.url(),
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'merged_so2' AND TABLE_NAME = 't' AND COLUMN_NAME = 'c'",
    );
    assert_eq!(ty, vec![vec![Some("'int'".to_string())]]);
    ok(&dmctl(&c.addr, &["stop-task", "so2"]), "stop-task");
}

#[test]
fn optimistic_rename_table_is_36068() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup_mode(&s, c.dir.path(), "so3", "optimistic");
    start_running(&c, &task, "so3");
    exec(&s.up1.url(), &["RENAME TABLE so3.t2 TO so3.t3"]);
    wait_for(
        "source-1 paused with 36068",
        Duration::from_secs(30),
        || {
            let st = subtasks(&c.addr, "so3");
            let text = st.iter().map(|x| x.to_string()).collect::<String>();
            (text.contains("36068") && text.contains("not supported in optimistic mode"))
                .then_some(())
                .ok_or(text)
        },
    );
    ok(&dmctl(&c.addr, &["stop-task", "so3"]), "stop-task");
}

#[test]
fn sql_replace_with_sharding_is_handed_to_the_lock_owner() {
    let s = servers();
    let c = Shards::start(&s);
    let task = setup(&s, c.dir.path(), "sd8");
    start_running(&c, &task, "sd8");
    let (u1, u2, d) = (s.up1.url(), s.up2.url(), s.down.url());
    // DM v1: saved on the master before the lock exists, for whichever source owns it.
    let o = dmctl(
        &c.addr,
        &[
            "sql-replace",
            "-w",
            "worker-1",
            "--sharding",
            "--sql-pattern",
            "~(?i)ADD UNIQUE",
            "sd8",
            "ALTER TABLE merged_sd8.t ADD KEY k (v)",
        ],
    );
    assert!(
        o.stdout.contains("will be ignored")
            && o.stdout.contains(
                "request with --sharding saved and will be sent to DDL lock's owner when resolving DDL lock"
            ),
        "{}",
        o.stdout
    );
    // v = 1 twice across shards: the unique key could not be added to the merged table.
    exec(&u1, &["INSERT INTO sd8.t1 VALUES (101, 1)"]);
    exec(&u2, &["INSERT INTO sd8.t1 VALUES (301, 1)"]);
    for u in [&u1, &u2] {
        exec(
            u,
            &[
                "ALTER TABLE sd8.t1 ADD UNIQUE KEY uk (v)",
                "ALTER TABLE sd8.t2 ADD UNIQUE KEY uk (v)",
            ],
        );
    }
    exec(&u1, &["INSERT INTO sd8.t2 VALUES (201, 2)"]);
    exec(&u2, &["INSERT INTO sd8.t2 VALUES (401, 4)"]);
    wait_merged_equals_shards(&s, "sd8", "id, v");
    wait_no_lock(&c);
    let idx = rows(
        &d,
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'merged_sd8' AND TABLE_NAME = 't' ORDER BY 1",
    );
    assert_eq!(
        idx,
        vec![
            vec![Some("'k'".to_string())],
            vec![Some("'PRIMARY'".to_string())]
        ],
        "the owner ran the replacement"
    );
    let st = subtasks(&c.addr, "sd8");
    assert!(st.iter().all(|x| x["stage"] == "Running"), "{st:#?}");
    assert!(
        c.logs()
            .contains("carries a sql-skip / sql-replace --sharding operator")
    );
    ok(&dmctl(&c.addr, &["stop-task", "sd8"]), "stop-task");
}

#[test]
fn optimistic_answers_survive_a_crash_after_the_ddl_ran_and_a_master_restart() {
    let s = servers();
    let mut c = Shards::start(&s);
    let task = setup_mode(&s, c.dir.path(), "so4", "optimistic");
    start_running(&c, &task, "so4");
    let (u1, u2) = (s.up1.url(), s.up2.url());
    // source-1's worker again, now aborting right after a DDL ran downstream (before its
    // checkpoint), as a kill -9 would leave it.
    let lm = dmctl(&c.addr, &["list-member", "--worker"]).json();
    let w1 = lm["members"][0]["worker"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["source"] == "source-1")
        .map(|w| w["name"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{lm:#}"));
    let k = c.workers.iter().position(|w| w.name == w1).unwrap();
    let (name, addr, join) = (
        c.workers[k].name.clone(),
        c.workers[k].addr.clone(),
        c.workers[k].join.clone(),
    );
    c.workers[k].proc.kill9();
    c.workers[k] = WorkerProc::start_env(
        c.dir.path(),
        &name,
        &addr,
        &join,
        &[("DMRS_FAILPOINTS", "sync-after-ddl")],
    );
    wait_for(
        "both subtasks Running again",
        Duration::from_secs(60),
        || {
            let st = subtasks(&c.addr, "so4");
            (st.len() == 2 && st.iter().all(|x| x["stage"] == "Running"))
                .then_some(())
                .ok_or(format!("{st:?}"))
        },
    );
    exec(
        &u1,
        &[
            "INSERT INTO so4.t1 VALUES (101, 1)",
            "INSERT INTO so4.t2 VALUES (201, 1)",
        ],
    );
    exec(&u2, &["INSERT INTO so4.t1 VALUES (301, 1)"]);
    exec(
        &u1,
        &[
            "ALTER TABLE so4.t1 ADD COLUMN c INT",
            "INSERT INTO so4.t1 VALUES (102, 2, 12)",
        ],
    );
    let t = Instant::now();
    while c.workers[k]
        .proc
        .child
        .as_mut()
        .is_some_and(|ch| ch.try_wait().ok().flatten().is_none())
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the failpoint never fired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        merged_columns(&s, "so4"),
        ["id", "v", "c"],
        "the ADD ran before the crash"
    );
    // The master restarts too, with the lock open (three shards lack `c`).
    c._master.restart(c.dir.path());
    c.workers[k] = WorkerProc::start_at(c.dir.path(), &name, &addr, &join);
    // The restarted worker sends the same DDL again and gets the same answer: the ADD runs again
    // and is taken as already applied.
    wait_row(&s, "so4", 102, 2);
    assert!(
        c.logs()
            .contains("DDL already applied (replay of a DDL a previous run ran)"),
        "the replay ran the answer again"
    );
    exec(
        &u1,
        &[
            "ALTER TABLE so4.t2 ADD COLUMN c INT",
            "INSERT INTO so4.t2 VALUES (202, 2, 22)",
        ],
    );
    exec(
        &u2,
        &[
            "ALTER TABLE so4.t1 ADD COLUMN c INT",
            "ALTER TABLE so4.t2 ADD COLUMN c INT",
            "INSERT INTO so4.t2 VALUES (401, 4, 41)",
        ],
    );
    wait_merged_equals_shards(&s, "so4", "id, v, c");
    wait_no_lock(&c);
    ok(&dmctl(&c.addr, &["stop-task", "so4"]), "stop-task");
}
