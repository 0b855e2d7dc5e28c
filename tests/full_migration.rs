//! Full migration end to end, with the real binaries and real MariaDB: task-mode `all` (dump →
//! load → binlog, with writes during and after the dump) and `full` (ends Finished), kill -9 of
//! the worker during the load and (twice) during the dump under writes (the dump continues in new
//! snapshots; tables without a key stay exact), pause/resume during the dump and during the load. Each test has
//! its own dm-master, dm-worker and MariaDB pair (they run side by side; the load and kill
//! tests slow the units down with the worker's delay failpoints so they can act mid-phase).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{checksum, count, query_rows, same_table, subtask, wait_synced};
use common::cluster::{Cluster, WorkerProc, dmctl, ok};
use common::sql::{exec, rt};
use dm_rs::worker::units::full::DumpState;
use mysql_async::prelude::*;

/// The dump directory of a test task (under the cluster's temp dir).
fn dump_dir(dir: &Path) -> String {
    dir.join("dumped_data").display().to_string()
}

/// A task file: `mode` over the databases `dbs`, small chunks and statements so that even
/// small tables take several files and statements, and `extra` YAML appended.
fn task_file(
    dir: &Path,
    name: &str,
    mode: &str,
    dbs: &[&str],
    down: &MariaDb,
    extra: &str,
) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\ntask-mode: {mode}\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {port}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    block-allow-list: only\n    mydumper-config-name: d\n    loader-config-name: l\n    syncer-config-name: s\n{routes}\
block-allow-list:\n  only:\n    do-dbs: [{dbs}]\n\
mydumpers:\n  d:\n    threads: 2\n    rows: 500\n    statement-size: 20000\n\
loaders:\n  l:\n    pool-size: 4\n    dir: {dir}\n\
syncers:\n  s:\n    worker-count: 4\n    batch: 50\n{extra}",
            port = down.port,
            dbs = dbs.join(", "),
            dir = dump_dir(dir),
            routes = [
                ("routes:", "    route-rules: [r1]\n"),
                ("column-mappings:", "    column-mapping-rules: [pid]\n"),
                ("expression-filter:", "    expression-filters: [even_c]\n"),
            ]
            .iter()
            .filter(|(k, _)| extra.contains(k))
            .map(|(_, v)| *v)
            .collect::<String>(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Creates `db` upstream: a keyed table with `rows` rows, a table without a key (with
/// duplicate rows), a table with every column type, and a view.
fn seed(u: &str, db: &str, rows: u64) {
    let mut sqls = vec![
        format!("CREATE DATABASE {db} CHARACTER SET utf8mb4"),
        format!(
            "CREATE TABLE {db}.keyed (id INT PRIMARY KEY, v VARCHAR(64), n BIGINT, KEY n_idx (n), KEY v_n (v(10), n))"
        ),
        format!("CREATE TABLE {db}.nokey (a INT, b VARCHAR(32))"),
        format!(
            "CREATE TABLE {db}.types (id INT AUTO_INCREMENT PRIMARY KEY, \
             ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED, \
             de DECIMAL(20,6), fl FLOAT, db DOUBLE, bt BIT(10), d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, \
             tm TIME(2), yr YEAR, ch CHAR(5), vc VARCHAR(100), bn BINARY(4), vb VARBINARY(20), \
             tx TEXT, bl BLOB, lb LONGBLOB, en ENUM('a','b','c'), st SET('x','y','z'), js JSON)"
        ),
        format!("CREATE VIEW {db}.v AS SELECT id, v FROM {db}.keyed WHERE id % 2 = 0"),
    ];
    let mut i = 0;
    while i < rows {
        let end = (i + 500).min(rows);
        let vals: Vec<String> = (i..end)
            .map(|k| format!("({k}, 'row {k} ''q'' \\\\ ;\\n', {})", k * 7))
            .collect();
        sqls.push(format!("INSERT INTO {db}.keyed VALUES {}", vals.join(",")));
        let vals: Vec<String> = (i..end)
            .map(|k| format!("({}, 'n{}')", k % 50, k % 7))
            .collect();
        sqls.push(format!("INSERT INTO {db}.nokey VALUES {}", vals.join(",")));
        i = end;
    }
    sqls.push(format!(
        "INSERT INTO {db}.types (ti,tu,si,mi,bi,bu,de,fl,db,bt,d,dt,ts,tm,yr,ch,vc,bn,vb,tx,bl,lb,en,st,js) VALUES \
         (-128,255,-32768,-8388608,-9223372036854775808,18446744073709551615,-12345678901234.123456,3.5,-2.2250738585072014e-308,b'1010101010','1000-01-01','9999-12-31 23:59:59.999999','2038-01-19 03:14:07.999','-838:59:59.99',1901,'ab','ünïcödé ☃ \\'\\\"\\\\',0x00FF10AB,0x000102,'line1\\nline2\\ttab',0xDEADBEEF00,REPEAT('x',70000),'b','x,z','{{\"k\": [1, 2, {{\"n\": null}}]}}'), \
         (NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL), \
         (0,0,0,0,0,0,0,0,0,b'0','2000-02-29','2000-01-01 00:00:00','1970-01-01 00:00:01','00:00:00',2000,'','',0x00000000,'','','','','a','','[]')"
    ));
    exec(u, &sqls);
}

/// Writes to `db.keyed` and `db.nokey` until `stop`: inserts, updates and deletes.
fn writer(
    u: String,
    db: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        rt().block_on(async {
            let mut c = mysql_async::Conn::from_url(&u).await.unwrap();
            let mut i: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                let k = 1_000_000 + i;
                c.query_drop(format!(
                    "BEGIN; INSERT INTO {db}.keyed VALUES ({k}, 'w{i}', {i}); \
                     UPDATE {db}.keyed SET n = n + 1 WHERE id = {u}; \
                     DELETE FROM {db}.keyed WHERE id = {d}; \
                     INSERT INTO {db}.nokey VALUES ({a}, 'w'); \
                     UPDATE {db}.nokey SET b = 'u{i}' WHERE a = {a} LIMIT 1; COMMIT",
                    u = (i * 37) % 3000,
                    d = 3000 + i,
                    a = i % 50,
                ))
                .await
                .unwrap();
                i += 1;
                done.store(i, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            c.disconnect().await.unwrap();
        })
    })
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

/// The table `db.t` is the same up and down (checksum and, for the keyless one, contents).
fn same(u: &str, d: &str, table: &str) {
    same_table(u, d, table, table, table);
    assert_eq!(
        checksum(u, table),
        checksum(d, table),
        "checksum of {table}"
    );
}

/// The secondary indexes the load deferred are there downstream, as upstream.
fn same_indexes(u: &str, d: &str, db: &str) {
    let indexes = |url: &str| {
        query_rows(
            url,
            &format!(
                "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, NON_UNIQUE FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = '{db}' ORDER BY 1, 2, 3"
            ),
        )
        .unwrap()
    };
    assert_eq!(indexes(d), indexes(u), "indexes of {db} downstream");
}

/// The loader checkpoint's committed offsets: (files with rows, files finished).
fn loader_progress(d: &str, task: &str) -> (u64, u64) {
    let rows = query_rows(
        d,
        &format!(
            "SELECT COUNT(*), SUM(`offset` = end_pos) FROM dm_meta.`{task}_loader_checkpoint` \
             WHERE filename NOT LIKE '#%' AND `offset` > 0"
        ),
    )
    .unwrap_or_default();
    let get = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.trim_matches('\'').parse().ok())
            .unwrap_or(0)
    };
    (get(0), get(1))
}

#[test]
fn all_mode_copies_existing_rows_then_follows_the_binlog() {
    let (up, down) = MariaDb::pair(31);
    let (u, d) = (up.url(), down.url());
    seed(&u, "fa", 3000);
    seed(&u, "fb", 500);
    exec(
        &u,
        &[
            "CREATE TABLE fb.src (id INT PRIMARY KEY, v INT)",
            "INSERT INTO fb.src VALUES (1, 1), (2, 2)",
            // A column mapping (DM's partition id) and an expression filter (rows with an even
            // c are not migrated), applied to the dumped rows and to the binlog's alike.
            "CREATE DATABASE shard_1",
            "CREATE TABLE shard_1.t_2 (id BIGINT PRIMARY KEY, c INT, note VARCHAR(20))",
            "INSERT INTO shard_1.t_2 VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c'), (4, 4, 'd')",
        ],
    );
    // The dump is slowed so the writer's rows arrive while it runs.
    let c = Cluster::start(up.port, &[("DMRS_FAILPOINTS", "dump-chunk=40")]);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let w = writer(u.clone(), "fa".into(), stop.clone(), written.clone());
    let task = task_file(
        c.dir.path(),
        "alltask",
        "all",
        &["fa", "fb", "shard_1"],
        &down,
        "routes:\n  r1:\n    schema-pattern: fb\n    table-pattern: src\n    target-schema: fb\n    target-table: dst\n\
column-mappings:\n  pid: {schema-pattern: \"shard_*\", table-pattern: \"t_*\", source-column: id, target-column: id, expression: \"partition id\", arguments: [\"1\", \"shard\", \"t\", \"_\"]}\n\
expression-filter:\n  even_c: {schema: shard_1, table: t_2, insert-value-expr: \"c % 2 = 0\"}\n",
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let seen_dump = wait_status(&c.addr, "alltask", Duration::from_secs(60), |s| {
        s["unit"] == "Dump" || s["unit"] == "Load" || s["unit"] == "Sync"
    });
    assert_ne!(seen_dump["stage"], "Paused", "{seen_dump:#}");
    wait_status(&c.addr, "alltask", Duration::from_secs(180), |s| {
        s["unit"] == "Sync" && s["stage"] == "Running"
    });
    // Writes after the hand-over too.
    exec(
        &u,
        &["INSERT INTO shard_1.t_2 VALUES (5, 5, 'e'), (6, 6, 'f')"],
    );
    let before = written.load(Ordering::SeqCst);
    while written.load(Ordering::SeqCst) < before + 50 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    w.join().unwrap();
    wait_synced(&c.addr, "alltask", &u);
    for t in [
        "fa.keyed", "fa.nokey", "fa.types", "fb.keyed", "fb.nokey", "fb.types",
    ] {
        same(&u, &d, t);
    }
    same_table(&u, &d, "fb.src", "fb.dst", "routed table");
    // DM's partition id: instance 1 << 59 | schema id 1 << 52 | table id 2 << 44 | id; rows
    // with an even c filtered, dumped (1-4) and replicated (5, 6) alike.
    let base: i64 = (1 << 59) | (1 << 52) | (2 << 44);
    let s = |v: &str| Some(format!("'{v}'"));
    assert_eq!(
        common::check::contents(&d, "shard_1.t_2"),
        Some(vec![
            vec![s(&(base | 1).to_string()), s("1"), s("a")],
            vec![s(&(base | 3).to_string()), s("3"), s("c")],
            vec![s(&(base | 5).to_string()), s("5"), s("e")],
        ]),
        "mapped and filtered rows"
    );
    same_table(&u, &d, "fa.v", "fa.v", "view");
    assert!(
        !Path::new(&format!("{}.alltask", dump_dir(c.dir.path()))).exists(),
        "clean-dump-file removes the dump directory once sync has started"
    );
}

#[test]
fn full_mode_ends_finished_with_the_load_at_100_percent() {
    let (up, down) = MariaDb::pair(32);
    let (u, d) = (up.url(), down.url());
    seed(&u, "ff", 2000);
    let c = Cluster::start(up.port, &[]);
    let task = task_file(c.dir.path(), "fulltask", "full", &["ff"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let st = wait_status(&c.addr, "fulltask", Duration::from_secs(120), |s| {
        s["stage"] == "Finished" || s["stage"] == "Paused"
    });
    assert_eq!(st["stage"], "Finished", "{st:#}");
    assert_eq!(st["unit"], "Load", "{st:#}");
    assert_eq!(st["load"]["progress"], "100.00 %", "{st:#}");
    assert_eq!(
        st["load"]["finishedBytes"], st["load"]["totalBytes"],
        "{st:#}"
    );
    assert!(
        st["load"]["metaBinlog"]
            .as_str()
            .is_some_and(|m| m.starts_with("(mariadb-bin.")),
        "{st:#}"
    );
    let all = dmctl(&c.addr, &["query-status", "fulltask"]).json();
    assert_eq!(all["sources"][0]["subTaskStatus"][0]["stage"], "Finished");
    for t in ["ff.keyed", "ff.nokey", "ff.types"] {
        same(&u, &d, t);
    }
    same_indexes(&u, &d, "ff");
    assert!(
        !Path::new(&format!("{}.fulltask", dump_dir(c.dir.path()))).exists(),
        "full mode with clean-dump-file removes the whole dump directory"
    );
}

#[test]
fn a_worker_killed_during_the_load_resumes_at_its_checkpoint() {
    let (up, down) = MariaDb::pair(33);
    let (u, d) = (up.url(), down.url());
    seed(&u, "fk", 6000);
    let slow = [("DMRS_FAILPOINTS", "load-statement=30")];
    let mut c = Cluster::start(up.port, &slow);
    let task = task_file(c.dir.path(), "killtask", "full", &["fk"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    for round in 0..3 {
        // Kill once some statements are committed and some are not.
        let t = Instant::now();
        loop {
            let (started, _) = loader_progress(&d, "killtask");
            if started > round {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the load never progressed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c.worker.proc.kill9();
        let addr = c.worker.addr.clone();
        c.worker = WorkerProc::start_env(c.dir.path(), "worker-a", &addr, &c.master.addr, &slow);
    }
    let st = wait_status(&c.addr, "killtask", Duration::from_secs(300), |s| {
        s["stage"] == "Finished"
    });
    assert_eq!(st["stage"], "Finished", "{st:#}");
    for t in ["fk.keyed", "fk.nokey", "fk.types"] {
        same(&u, &d, t);
    }
    assert_eq!(count(&d, "fk.nokey"), 6000, "no keyless row loaded twice");
    same_indexes(&u, &d, "fk");
}

#[test]
fn pause_and_resume_during_the_dump_and_during_the_load() {
    let (up, down) = MariaDb::pair(34);
    let (u, d) = (up.url(), down.url());
    seed(&u, "fp", 4000);
    let c = Cluster::start(
        up.port,
        &[("DMRS_FAILPOINTS", "dump-chunk=300,load-statement=300")],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let w = writer(u.clone(), "fp".into(), stop.clone(), written.clone());
    let task = task_file(c.dir.path(), "ptask", "all", &["fp"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    for unit in ["Dump", "Load"] {
        wait_status(&c.addr, "ptask", Duration::from_secs(120), |s| {
            s["unit"] == unit && s["stage"] == "Running"
        });
        ok(&dmctl(&c.addr, &["pause-task", "ptask"]), "pause-task");
        let st = wait_status(&c.addr, "ptask", Duration::from_secs(60), |s| {
            s["stage"] == "Paused"
        });
        assert_eq!(st["unit"], unit, "paused in the {unit} unit: {st:#}");
        ok(&dmctl(&c.addr, &["resume-task", "ptask"]), "resume-task");
    }
    wait_status(&c.addr, "ptask", Duration::from_secs(300), |s| {
        s["unit"] == "Sync" && s["stage"] == "Running"
    });
    stop.store(true, Ordering::SeqCst);
    w.join().unwrap();
    wait_synced(&c.addr, "ptask", &u);
    for t in ["fp.keyed", "fp.nokey", "fp.types"] {
        same(&u, &d, t);
    }
}

#[test]
fn a_worker_killed_during_the_dump_continues_it_and_every_table_stays_exact() {
    let (up, down) = MariaDb::pair(35);
    let (u, d) = (up.url(), down.url());
    seed(&u, "ga", 3000);
    seed(&u, "gb", 3000);
    let slow = [("DMRS_FAILPOINTS", "dump-chunk=200")];
    let mut c = Cluster::start(up.port, &slow);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers = [
        writer(u.clone(), "ga".into(), stop.clone(), written.clone()),
        writer(
            u.clone(),
            "gb".into(),
            stop.clone(),
            Arc::new(AtomicU64::new(0)),
        ),
    ];
    let task = task_file(c.dir.path(), "dtask", "all", &["ga", "gb"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let dir = format!("{}.dtask", dump_dir(c.dir.path()));
    for round in 0..2 {
        // Kill once the dump has finished some chunks (in this run) but not all.
        let t = Instant::now();
        loop {
            // The record with its journal, as the worker reads it back.
            let st = DumpState::read(Path::new(&dir))
                .ok()
                .flatten()
                .unwrap_or_default();
            let sessions = st.sessions.len();
            let chunks: usize = st.tables.values().map(|t| t.files.len()).sum();
            assert!(!st.done, "the dump finished before kill {round}");
            if sessions > round && chunks > 2 * (round + 1) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the dump never progressed: {st:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c.worker.proc.kill9();
        let addr = c.worker.addr.clone();
        c.worker = WorkerProc::start_env(c.dir.path(), "worker-a", &addr, &c.master.addr, &slow);
    }
    wait_status(&c.addr, "dtask", Duration::from_secs(300), |s| {
        s["unit"] == "Sync" && s["stage"] == "Running"
    });
    let before = written.load(Ordering::SeqCst);
    while written.load(Ordering::SeqCst) < before + 30 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    wait_synced(&c.addr, "dtask", &u);
    for t in [
        "ga.keyed", "ga.nokey", "ga.types", "gb.keyed", "gb.nokey", "gb.types",
    ] {
        same(&u, &d, t);
    }
}

/// The downstream statements running `DO SLEEP` (the `load-index` failpoint's stand-in for a
/// long index build).
fn sleeping_builds(d: &str) -> usize {
    query_rows(
        d,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'",
    )
    .map(|r| r.len())
    .unwrap_or(0)
}

#[test]
fn a_pause_during_the_index_builds_kills_them_and_resume_adds_each_index_once() {
    let (up, down) = MariaDb::pair(36);
    let (u, d) = (up.url(), down.url());
    seed(&u, "ix", 2000);
    // Each index build first sleeps ten minutes on its connection: the pause cannot wait for
    // it (the wait for Paused gives up after one minute), it has to kill it.
    let slow = [("DMRS_FAILPOINTS", "load-index=600000")];
    let mut c = Cluster::start(up.port, &slow);
    let task = task_file(c.dir.path(), "itask", "full", &["ix"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let t = Instant::now();
    while sleeping_builds(&d) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no index build started: {:#}",
            subtask(&c.addr, "itask")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&dmctl(&c.addr, &["pause-task", "itask"]), "pause-task");
    let st = wait_status(&c.addr, "itask", Duration::from_secs(60), |s| {
        s["stage"] == "Paused"
    });
    assert_eq!(st["unit"], "Load", "{st:#}");
    let t = Instant::now();
    while sleeping_builds(&d) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the index build still runs downstream after the pause"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same worker with builds of two seconds, checked for every 100 ms while they run:
    // the resumed load adds the indexes, once each.
    c.worker.proc.kill9();
    let addr = c.worker.addr.clone();
    let checked = [("DMRS_FAILPOINTS", "load-index=2000,load-index-check=100")];
    c.worker = WorkerProc::start_env(c.dir.path(), "worker-a", &addr, &c.master.addr, &checked);
    ok(&dmctl(&c.addr, &["resume-task", "itask"]), "resume-task");
    wait_status(&c.addr, "itask", Duration::from_secs(300), |s| {
        s["stage"] == "Finished"
    });
    for t in ["ix.keyed", "ix.nokey", "ix.types"] {
        same(&u, &d, t);
    }
    same_indexes(&u, &d, "ix");
}

/// Whether `db.table` exists (downstream).
fn table_exists(url: &str, db: &str, table: &str) -> bool {
    !query_rows(
        url,
        &format!(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}'"
        ),
    )
    .unwrap()
    .is_empty()
}

#[test]
fn a_tables_rows_load_as_soon_as_its_own_create_table_has_run() {
    let (up, down) = MariaDb::pair(37);
    let (u, d) = (up.url(), down.url());
    let vals = |p: &str| {
        (1..=1500)
            .map(|k| format!("({k}, '{p}{k}')"))
            .collect::<Vec<_>>()
            .join(",")
    };
    exec(
        &u,
        &[
            "CREATE DATABASE lane".to_string(),
            "CREATE TABLE lane.a (id INT PRIMARY KEY, v VARCHAR(20), KEY v_idx (v))".to_string(),
            "CREATE TABLE lane.b (id INT PRIMARY KEY, v VARCHAR(20))".to_string(),
            format!("INSERT INTO lane.a VALUES {}", vals("a")),
            format!("INSERT INTO lane.b VALUES {}", vals("b")),
        ],
    );
    // Each CREATE TABLE of the load first waits 10 s: `a` is created at about 10 s, `b` at
    // about 20 s. Every file of `a` must be loaded in between.
    let slow = [("DMRS_FAILPOINTS", "load-create=10000")];
    let c = Cluster::start(up.port, &slow);
    let task = task_file(c.dir.path(), "ltask", "full", &["lane"], &down, "");
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    let t = Instant::now();
    while !table_exists(&d, "lane", "a") || count(&d, "lane.a") < 1500 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "lane.a is not loaded: {:#}",
            subtask(&c.addr, "ltask")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !table_exists(&d, "lane", "b"),
        "lane.b was created before lane.a's rows were loaded"
    );
    wait_status(&c.addr, "ltask", Duration::from_secs(120), |s| {
        s["stage"] == "Finished"
    });
    for t in ["lane.a", "lane.b"] {
        same(&u, &d, t);
    }
    same_indexes(&u, &d, "lane");
}
