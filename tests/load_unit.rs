//! The Load unit driven directly (no cluster) against real MariaDB: a directory written by
//! Debian's mydumper 0.10, a dumpling-layout fixture with escaped names, routes, a keyless
//! table and a view; a cancelled and a crashed (dropped) load resumed exactly; bad input with
//! DM's codes; clean-dump-file; a live feed beside a dump; the LOAD DATA fast path storing what
//! the INSERT would, and giving way to it where LOAD DATA would skip a row.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{checksum, count, query_rows};
use common::sql::exec;
use dm_rs::worker::error::UnitError;
use dm_rs::worker::units::full::{DumpState, ReadyFile};
use dm_rs::worker::units::load::LoadUnit;
use dm_rs::worker::units::{Shared, Unit, UnitCtx, UnitExit};
use tokio_util::sync::CancellationToken;

const META: &str = "Started dump at: 2026-11-30 04:00:00\nSHOW MASTER STATUS:\n\tLog: mariadb-bin.000003\n\tPos: 1274\n\tGTID:0-1-12\n\nFinished dump at: 2026-11-30 04:00:09\n";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A task of `mode` loading `<dir>.<name>` into `down`, with extra YAML at the end.
fn ctx(
    name: &str,
    mode: &str,
    down: &MariaDb,
    dir: &Path,
    extra: &str,
    reset: Option<&str>,
) -> UnitCtx {
    let yaml = format!(
        "name: {name}\ntask-mode: {mode}\nmeta-schema: dm_meta\ntarget-database:\n  host: 127.0.0.1\n  port: {port}\n  user: root\n  password: \"\"\nmysql-instances:\n  - source-id: src-1\n    loader-config-name: l\n    route-rules: [r1]\nloaders:\n  l:\n    pool-size: 3\n    dir: {dir}\nroutes:\n  r1:\n    schema-pattern: shop\n    table-pattern: \"orders_*\"\n    target-schema: merged\n    target-table: orders\n{extra}",
        port = down.port,
        dir = dir.display(),
    );
    let task = dm_rs::config::parse_task(yaml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
        .config;
    let source = dm_rs::config::parse_source(
        b"source-id: src-1\nfrom:\n  host: 127.0.0.1\n  port: 3306\n  user: root\n  password: \"\"\n",
    )
    .expect("source")
    .config;
    UnitCtx {
        task: Arc::new(task),
        source: Arc::new(source),
        worker: "w1".into(),
        reset_token: reset.map(str::to_string),
        relay: None,
    }
}

/// The directory a task named `name` loads (`loaders.dir` + `.name`).
fn task_dir(base: &Path, name: &str) -> PathBuf {
    PathBuf::from(format!("{}.{name}", base.display()))
}

/// One whole run of the unit: init, process, close.
async fn run(
    ctx: UnitCtx,
    shared: &Shared,
    cancel: CancellationToken,
) -> Result<UnitExit, UnitError> {
    let mut u = LoadUnit::new(ctx, shared);
    u.init().await?;
    let r = u.process(cancel).await;
    u.close().await;
    r
}

fn run_blocking(ctx: UnitCtx) -> Result<UnitExit, UnitError> {
    let shared = Shared::default();
    rt().block_on(run(ctx, &shared, CancellationToken::new()))
}

fn write(dir: &Path, name: &str, text: &[u8]) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

fn one(url: &str, q: &str) -> Option<String> {
    query_rows(url, q)
        .expect(q)
        .first()
        .and_then(|r| r[0].clone())
}

/// (sum of offsets, sum of end_pos) of the task's data-file rows.
fn ckpt_sums(url: &str, task: &str) -> (u64, u64) {
    let r = query_rows(
        url,
        &format!(
            "SELECT COALESCE(SUM(`offset`),0), COALESCE(SUM(end_pos),0) FROM dm_meta.`{task}_loader_checkpoint` WHERE filename NOT LIKE '#%'"
        ),
    );
    match r {
        Ok(rows) => {
            let v = |i: usize| {
                rows[0][i]
                    .as_deref()
                    .unwrap_or("0")
                    .trim_matches('\'')
                    .parse()
                    .unwrap_or(0)
            };
            (v(0), v(1))
        }
        Err(_) => (0, 0),
    }
}

#[test]
fn a_mydumper_010_directory_loads_with_equal_checksums() {
    let (up, down) = MariaDb::pair(71);
    let mut stmts = vec![
        "CREATE DATABASE md".to_string(),
        "CREATE TABLE md.sb (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY k_1 (k))".into(),
        "CREATE TABLE md.nokey (a INT, b VARCHAR(40), t DATETIME, bl BLOB)".into(),
        "CREATE TABLE md.odd (id INT PRIMARY KEY, s TEXT, d DECIMAL(20,6), j DOUBLE, e ENUM('x','y'), ts TIMESTAMP NULL) DEFAULT CHARSET=utf8mb4".into(),
    ];
    for chunk in 0..5 {
        let rows: Vec<String> = (0..1000)
            .map(|i| {
                let id = chunk * 1000 + i + 1;
                format!("({id}, {}, '{:0>119}', '{:x>59}')", id % 97, id, id)
            })
            .collect();
        stmts.push(format!("INSERT INTO md.sb VALUES {}", rows.join(",")));
    }
    stmts.push("INSERT INTO md.nokey VALUES (1,'a','2020-01-01 00:00:00',x'00ff27225c3b'),(1,'a','2020-01-01 00:00:00',x'00ff27225c3b'),(NULL,NULL,NULL,NULL),(2,'semi;colon -- /* x */','1999-12-31 23:59:59','')".into());
    stmts.push(r#"INSERT INTO md.odd VALUES (1,'it''s "q" \\ back\nslash ; end','-123.456789',1.5e300,'y','2038-01-19 03:14:07'),(2,'ünïcødé 🎉',0,-0.0,NULL,NULL),(3,'',NULL,NULL,'x','1970-01-01 00:00:01')"#.into());
    stmts.push("CREATE VIEW md.v AS SELECT id, k FROM md.sb WHERE id <= 10".into());
    exec(&up.url(), &stmts);

    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("dump"), "md");
    let out = std::process::Command::new("mydumper")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &up.port.to_string(),
            "-u",
            "root",
            "-B",
            "md",
            "-o",
        ])
        .arg(&dir)
        .args(["--rows", "1000"])
        .output()
        .expect("run mydumper (apt-get install mydumper)");
    assert!(
        out.status.success(),
        "mydumper: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("md.sb.0000")),
        "mydumper --rows names: {names:?}"
    );

    let c = ctx(
        "md",
        "full",
        &down,
        &base.path().join("dump"),
        "clean-dump-file: false\n",
        None,
    );
    assert_eq!(run_blocking(c).expect("load"), UnitExit::Finished);
    for t in ["md.sb", "md.nokey", "md.odd"] {
        assert_eq!(checksum(&down.url(), t), checksum(&up.url(), t), "{t}");
        assert!(checksum(&up.url(), t).is_some());
    }
    assert_eq!(count(&down.url(), "md.sb"), 5000);
    assert_eq!(count(&down.url(), "md.v"), 10, "mydumper's view files load");
    let (f, t) = ckpt_sums(&down.url(), "md");
    assert!(t > 0 && f == t, "checkpoint complete: {f}/{t}");
    assert!(
        dir.join("metadata").is_file(),
        "clean-dump-file: false keeps the directory"
    );
}

/// A dumpling-layout directory with escaped names, a keyless table, a routed table and a view.
fn dumpling_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    write(dir, "metadata", META.as_bytes());
    write(dir, "a%2Eb-schema-create.sql", b"/*!40101 SET NAMES binary*/;\nCREATE DATABASE `a.b` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n");
    write(dir, "a%2Eb.t%2Dschema-schema.sql", b"/*!40101 SET NAMES binary*/;\nCREATE TABLE `t-schema` (\n  `id` int NOT NULL,\n  `s` varchar(64) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n");
    write(dir, "a%2Eb.t%2Dschema.0000000000000.sql", "/*!40101 SET NAMES binary*/;\nINSERT INTO `t-schema` (`id`,`s`) VALUES\n(1,'a'),\n(2,'it\\'s;'),\n(3,NULL);\nINSERT INTO `t-schema` (`id`,`s`) VALUES\n(4,'ü');\n".as_bytes());
    write(dir, "a%2Eb.t%2Dschema.0000000000001.sql", b"/*!40101 SET NAMES binary*/;\nINSERT INTO `t-schema` (`id`,`s`) VALUES\n(5,'--not a comment'),\n(6,'/* nor this */');\n");
    write(dir, "a%2Eb.nokey-schema.sql", b"/*!40101 SET NAMES binary*/;\nCREATE TABLE `nokey` (\n  `a` int DEFAULT NULL,\n  `b` varchar(10) DEFAULT NULL\n) ENGINE=InnoDB;\n");
    write(dir, "a%2Eb.nokey.0000000000000.sql", b"/*!40101 SET NAMES binary*/;\nINSERT INTO `nokey` (`a`,`b`) VALUES\n(1,'x'),\n(1,'x'),\n(NULL,NULL);\n");
    write(
        dir,
        "shop-schema-create.sql",
        b"/*!40101 SET NAMES binary*/;\nCREATE DATABASE `shop`;\n",
    );
    for n in [1, 2] {
        write(dir, &format!("shop.orders_{n}-schema.sql"), format!("/*!40101 SET NAMES binary*/;\nCREATE TABLE `orders_{n}` (\n  `id` int NOT NULL,\n  `v` int DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n").as_bytes());
        write(dir, &format!("shop.orders_{n}.0000000000000.sql"), format!("/*!40101 SET NAMES binary*/;\nINSERT INTO `orders_{n}` (`id`,`v`) VALUES\n({n}0,{n}),\n({n}1,{n});\n").as_bytes());
    }
    write(
        dir,
        "a%2Eb.ünï-schema.sql",
        "/*!40101 SET NAMES binary*/;\nCREATE TABLE `ünï` (`id` int PRIMARY KEY, `s` varchar(10)) DEFAULT CHARSET=utf8mb4;\n".as_bytes(),
    );
    write(
        dir,
        "a%2Eb.ünï.0000000000000.sql",
        "/*!40101 SET NAMES binary*/;\nINSERT INTO `ünï` VALUES (1,'ü'),(2,'🎉');\n".as_bytes(),
    );
    write(
        dir,
        "a%2Eb.v-schema.sql",
        b"/*!40101 SET NAMES binary*/;\nCREATE TABLE `v`(\n`id` int,\n`s` int\n)ENGINE=MyISAM;\n",
    );
    write(dir, "a%2Eb.v-schema-view.sql", b"/*!40101 SET NAMES binary*/;\nDROP TABLE IF EXISTS `v`;\nDROP VIEW IF EXISTS `v`;\nCREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select `id` AS `id`,`s` AS `s` from `t-schema` where `id` < 3;\n");
}

#[test]
fn a_dumpling_layout_loads_with_escaped_names_routes_a_keyless_table_and_a_view() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "fx");
    dumpling_fixture(&dir);
    let c = ctx(
        "fx",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    let shared = Shared::default();
    let r = rt().block_on(run(c, &shared, CancellationToken::new()));
    assert_eq!(r.expect("load"), UnitExit::Finished);
    let u = down.url();
    let rows = query_rows(&u, "SELECT id, s FROM `a.b`.`t-schema` ORDER BY id").unwrap();
    let got: Vec<(Option<String>, Option<String>)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        got,
        vec![
            (s("'1'"), s("'a'")),
            (s("'2'"), s("'it''s;'")),
            (s("'3'"), None),
            (s("'4'"), s("'ü'")),
            (s("'5'"), s("'--not a comment'")),
            (s("'6'"), s("'/* nor this */'")),
        ]
    );
    assert_eq!(count(&u, "`a.b`.nokey"), 3);
    assert_eq!(
        one(&u, "SELECT GROUP_CONCAT(s ORDER BY id) FROM `a.b`.`ünï`"),
        s("'ü,🎉'"),
        "a non-ASCII table name, bytes as written under SET NAMES binary"
    );
    assert_eq!(
        count(&u, "merged.orders"),
        4,
        "both shards routed onto one table"
    );
    assert_eq!(
        one(
            &u,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'"
        ),
        s("'0'"),
        "routed shards are not created under their own names"
    );
    assert_eq!(count(&u, "`a.b`.v"), 2, "the view is created last");
    assert_eq!(
        one(
            &u,
            "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA='a.b' AND TABLE_NAME='v'"
        ),
        s("'VIEW'")
    );
    let pb = shared.load_stats.to_load_pb();
    assert_eq!(pb.progress, "100.00 %");
    assert_eq!(pb.finished_bytes, pb.total_bytes);
    assert_eq!(pb.meta_binlog, "(mariadb-bin.000003, 1274)");
    assert_eq!(pb.meta_binlog_gtid, "0-1-12");
}

/// Deferred secondary indexes: each table this load creates gets its plain KEYs after its data
/// (built as soon as the table's last file is loaded, beside the other tables' files), once
/// per target table even when shards are merged onto it, and every `#keys` row of the loader
/// checkpoint ends done.
#[test]
fn deferred_indexes_are_added_once_per_target_table() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "keys");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "metadata", META.as_bytes());
    write(
        &dir,
        "shop-schema-create.sql",
        b"/*!40101 SET NAMES binary*/;\nCREATE DATABASE `shop`;\n",
    );
    // Two shards routed onto merged.orders, two tables of their own; several files each.
    let tables = ["orders_1", "orders_2", "items", "users"];
    for t in tables {
        write(&dir, &format!("shop.{t}-schema.sql"), format!("/*!40101 SET NAMES binary*/;\nCREATE TABLE `{t}` (\n  `id` int NOT NULL,\n  `k` int NOT NULL,\n  `s` varchar(20) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`),\n  KEY `ks` (`k`,`s`)\n) ENGINE=InnoDB;\n").as_bytes());
        let shard = t
            .strip_prefix("orders_")
            .map_or(0, |n| n.parse::<u64>().unwrap());
        for f in 0..4u64 {
            let mut text =
                format!("/*!40101 SET NAMES binary*/;\nINSERT INTO `{t}` (`id`,`k`,`s`) VALUES\n");
            let rows: Vec<String> = (0..50u64)
                .map(|i| {
                    let id = shard * 100_000 + f * 1000 + i;
                    format!("({id},{},'r{id}')", id % 7)
                })
                .collect();
            text.push_str(&rows.join(",\n"));
            text.push_str(";\n");
            write(&dir, &format!("shop.{t}.{f:013}.sql"), text.as_bytes());
        }
    }
    let c = ctx(
        "keys",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    assert_eq!(run_blocking(c).expect("load"), UnitExit::Finished);
    let u = down.url();
    assert_eq!(
        count(&u, "merged.orders"),
        400,
        "both shards, four files each"
    );
    assert_eq!(count(&u, "shop.items"), 200);
    assert_eq!(count(&u, "shop.users"), 200);
    for (db, t) in [("merged", "orders"), ("shop", "items"), ("shop", "users")] {
        assert_eq!(
            one(
                &u,
                &format!(
                    "SELECT GROUP_CONCAT(DISTINCT INDEX_NAME ORDER BY BINARY INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{t}'"
                )
            ),
            Some("'PRIMARY,k_1,ks'".to_string()),
            "{db}.{t}: the deferred keys, once"
        );
    }
    assert_eq!(
        one(
            &u,
            "SELECT CONCAT(COUNT(*), '/', SUM(`offset`)) FROM dm_meta.`keys_loader_checkpoint` WHERE filename LIKE '#keys/%'"
        ),
        Some("'3/3'".to_string()),
        "one #keys row per table the load created (the second shard finds the table there), every one done"
    );
}

/// A fixture big enough to cancel in the middle: a keyed and a keyless table, `files` files
/// each of `stmts` statements of 10 rows.
fn big_fixture(dir: &Path, files: usize, stmts: usize) -> (u64, u64) {
    std::fs::create_dir_all(dir).unwrap();
    write(dir, "metadata", META.as_bytes());
    write(dir, "big-schema-create.sql", b"CREATE DATABASE `big`;\n");
    write(
        dir,
        "big.k-schema.sql",
        b"CREATE TABLE `k` (`id` int NOT NULL PRIMARY KEY, `s` varchar(20));\n",
    );
    write(
        dir,
        "big.n-schema.sql",
        b"CREATE TABLE `n` (`id` int, `s` varchar(20));\n",
    );
    let mut total = 0u64;
    for t in ["k", "n"] {
        for f in 0..files {
            let mut text = String::from("/*!40101 SET NAMES binary*/;\n");
            for s in 0..stmts {
                let rows: Vec<String> = (0..10)
                    .map(|r| {
                        let id = (f * stmts + s) * 10 + r;
                        format!("({id},'v;{id}')")
                    })
                    .collect();
                text.push_str(&format!(
                    "INSERT INTO `{t}` VALUES\n{};\n",
                    rows.join(",\n")
                ));
            }
            write(dir, &format!("big.{t}.{f:09}.sql"), text.as_bytes());
            total += 1;
        }
    }
    let rows = (files * stmts * 10) as u64;
    (rows, total)
}

fn assert_big_loaded(url: &str, rows: u64) {
    for t in ["big.k", "big.n"] {
        assert_eq!(count(url, t), rows, "{t}: every row once");
        let distinct = one(url, &format!("SELECT COUNT(DISTINCT id) FROM {t}")).unwrap();
        assert_eq!(distinct, format!("'{rows}'"), "{t}: no row twice");
    }
}

/// Waits until the load committed something but not everything.
fn wait_partial(url: &str, task: &str) {
    let t0 = Instant::now();
    loop {
        let (f, t) = ckpt_sums(url, task);
        if f > 0 && f < t {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the load never got going: {f}/{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cancelled_and_a_crashed_load_resume_exactly() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "big");
    let (rows, _) = big_fixture(&dir, 3, 400);
    let c = ctx(
        "big",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    let rt = rt();
    let u = down.url();

    // 1. A pause: cancel mid-load; the run returns Cancelled after its in-flight statements.
    let shared = Shared::default();
    let cancel = CancellationToken::new();
    let h = {
        let (c, cancel) = (c.clone(), cancel.clone());
        rt.spawn(async move {
            let shared = Shared::default();
            run(c, &shared, cancel).await
        })
    };
    wait_partial(&u, "big");
    cancel.cancel();
    let r = rt.block_on(h).expect("join");
    assert_eq!(r.expect("cancelled run"), UnitExit::Cancelled);
    let (f, t) = ckpt_sums(&u, "big");
    assert!(f < t, "stopped in the middle ({f}/{t})");
    let mut unit = LoadUnit::new(c.clone(), &shared);
    assert!(
        rt.block_on(unit.is_fresh()).expect("is_fresh"),
        "a load that has only begun is fresh: its dump runs first, the load continues beside it"
    );

    // 2. A crash: the process future is dropped in the middle of a file.
    let h = {
        let c = c.clone();
        rt.spawn(async move {
            let shared = Shared::default();
            run(c, &shared, CancellationToken::new()).await
        })
    };
    let before = ckpt_sums(&u, "big").0;
    let t0 = Instant::now();
    while ckpt_sums(&u, "big").0 < before + 2000 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no progress after resume"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.abort();
    let _ = rt.block_on(h);
    let (f, t) = ckpt_sums(&u, "big");
    assert!(f < t, "crashed in the middle ({f}/{t})");

    // 3. The next run finishes: every row once, in both tables.
    let r = rt.block_on(run(c.clone(), &shared, CancellationToken::new()));
    assert_eq!(r.expect("final run"), UnitExit::Finished);
    assert_big_loaded(&u, rows);
    let (f, t) = ckpt_sums(&u, "big");
    assert_eq!(f, t);
    let mut unit = LoadUnit::new(c.clone(), &shared);
    assert!(
        !rt.block_on(unit.is_fresh()).expect("is_fresh"),
        "a finished load is not fresh: a later run starts at Load and finishes at once"
    );
    let r = rt.block_on(run(c.clone(), &shared, CancellationToken::new()));
    assert_eq!(r.expect("a run after the end"), UnitExit::Finished);
    assert_big_loaded(&u, rows);

    // 4. --remove-meta: fresh again for a new token, rows cleared once at init.
    let reset = ctx(
        "big",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        Some("start-9"),
    );
    let mut unit = LoadUnit::new(reset.clone(), &shared);
    assert!(
        rt.block_on(unit.is_fresh()).expect("is_fresh"),
        "a new --remove-meta token makes it fresh"
    );
    exec(&u, &["TRUNCATE big.k", "TRUNCATE big.n"]);
    let r = rt.block_on(run(reset.clone(), &shared, CancellationToken::new()));
    assert_eq!(r.expect("reloaded"), UnitExit::Finished);
    assert_big_loaded(&u, rows);
    let mut unit = LoadUnit::new(reset, &shared);
    assert!(
        !rt.block_on(unit.is_fresh()).expect("is_fresh"),
        "the same token is honoured once"
    );
}

/// The downstream's count of LOAD DATA statements.
fn com_load(url: &str) -> u64 {
    let rows = query_rows(url, "SHOW GLOBAL STATUS LIKE 'Com_load'").expect("status");
    rows[0][1]
        .as_deref()
        .unwrap_or("0")
        .trim_matches('\'')
        .parse()
        .expect("Com_load is a number")
}

const TRICKY_TABLE: &str = "(`id` int NOT NULL PRIMARY KEY, `s` varchar(200) CHARACTER SET utf8mb4 DEFAULT NULL, `b` varbinary(32) DEFAULT NULL, `d` decimal(10,3) DEFAULT NULL, `f` double DEFAULT NULL, `dt` datetime DEFAULT NULL, `e` enum('a','b') DEFAULT NULL, `j` json DEFAULT NULL, `n` int DEFAULT NULL) ENGINE=InnoDB";

/// Rows with every escape a dump can hold: backslash escapes (LIKE's `\%` and `\_` keep their
/// backslash), doubled quotes in both quote styles, a raw tab, `\N` as text, hex literals with
/// bytes LOAD DATA must escape, empty values, NULLs, exponents, 4-byte UTF-8.
const TRICKY_ROWS: &str = concat!(
    "INSERT INTO `t` (`id`,`s`,`b`,`d`,`f`,`dt`,`e`,`j`,`n`) VALUES\n",
    r#"(1,'a\tb\nc\\d\'e\"f\0g\Zh\bi\rj','x',1.5,-2.5e-3,'2026-11-30 01:02:03','a','{"k": "v\\n"}',NULL),"#,
    "\n",
    r#"(2,'50\% a\_b \q','',0,0,'1999-12-31 23:59:59','b','[]',7),"#,
    "\n",
    r#"(3,"double ""quoted"" it's",0x00090A5CFF4E,-0.001,1e300,NULL,NULL,NULL,-8),"#,
    "\n",
    "(4,'raw\ttab','',1,1,NULL,NULL,NULL,NULL),\n",
    r#"(5,'\\N','\N',NULL,NULL,NULL,NULL,NULL,NULL),"#,
    "\n",
    "(6,'',X'',NULL,NULL,NULL,NULL,NULL,NULL),\n",
    "(7,'ü🎉',X'5C4E',NULL,NULL,NULL,NULL,NULL,NULL);\n",
);

#[test]
fn load_data_stores_exactly_what_the_insert_would() {
    let down = MariaDb::downstream();
    let u = down.url();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "ld");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "metadata", META.as_bytes());
    write(&dir, "ld-schema-create.sql", b"CREATE DATABASE `ld`;\n");
    write(
        &dir,
        "ld.t-schema.sql",
        format!("/*!40101 SET NAMES binary*/;\nCREATE TABLE `t` {TRICKY_TABLE};\n").as_bytes(),
    );
    write(
        &dir,
        "ld.t.0000000000000.sql",
        format!("/*!40101 SET NAMES binary*/;\n{TRICKY_ROWS}").as_bytes(),
    );
    // The reference: the same INSERT run as SQL on a binary session.
    exec(
        &u,
        &[
            "CREATE DATABASE ref".to_string(),
            format!("CREATE TABLE ref.t {TRICKY_TABLE}"),
            "SET NAMES binary".to_string(),
            format!("USE ref; {TRICKY_ROWS}"),
        ],
    );
    let loads = com_load(&u);
    let r = run_blocking(ctx("ld", "full", &down, &base.path().join("d"), "", None));
    assert_eq!(r.expect("load"), UnitExit::Finished);
    assert!(
        com_load(&u) > loads,
        "the rows went as LOAD DATA (Com_load did not move)"
    );
    let cols = "id, HEX(s), HEX(b), d, f, dt, e, HEX(j), n";
    let got = query_rows(&u, &format!("SELECT {cols} FROM ld.t ORDER BY id")).unwrap();
    let want = query_rows(&u, &format!("SELECT {cols} FROM ref.t ORDER BY id")).unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(got, want, "LOAD DATA stored other values than the INSERT");
    assert_eq!(checksum(&u, "ld.t"), checksum(&u, "ref.t"));
}

/// `ctx` with the instance's `on-duplicate-logical` set to `mode`.
fn with_on_duplicate(mut c: UnitCtx, mode: &str) -> UnitCtx {
    let task = Arc::make_mut(&mut c.task);
    for inst in task.mysql_instances.iter_mut().flatten() {
        if let Some(l) = inst.loader.as_mut() {
            l.on_duplicate_logical = mode.into();
        }
    }
    c
}

#[test]
fn a_row_already_downstream_follows_on_duplicate_logical() {
    let down = MariaDb::downstream();
    let u = down.url();
    // on-duplicate-logical → the rows of dup.t after the load (None: the load stops)
    let cases: [(&str, Option<[&str; 3]>); 3] = [
        ("error", None),
        ("replace", Some(["up", "up", "up"])),
        ("ignore", Some(["up", "down", "up"])),
    ];
    for (mode, want) in cases {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = task_dir(&base.path().join("d"), "dup");
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "metadata", META.as_bytes());
        write(&dir, "dup-schema-create.sql", b"CREATE DATABASE `dup`;\n");
        write(
            &dir,
            "dup.t-schema.sql",
            b"CREATE TABLE `t` (`id` int PRIMARY KEY, `v` varchar(10));\n",
        );
        write(
            &dir,
            "dup.t.0000000000000.sql",
            b"/*!40101 SET NAMES binary*/;\nINSERT INTO `t` (`id`,`v`) VALUES\n(1,'up'),\n(2,'up'),\n(3,'up');\n",
        );
        // The target already has row 2 (a LOCAL LOAD DATA would skip it with a warning).
        exec(
            &u,
            &[
                "DROP DATABASE IF EXISTS dup",
                "DROP DATABASE IF EXISTS dm_meta",
                "CREATE DATABASE dup",
                "CREATE TABLE dup.t (`id` int PRIMARY KEY, `v` varchar(10))",
                "INSERT INTO dup.t VALUES (2, 'down')",
            ],
        );
        let loads = com_load(&u);
        let c = with_on_duplicate(
            ctx("dup", "full", &down, &base.path().join("d"), "", None),
            mode,
        );
        let r = run_blocking(c);
        assert!(com_load(&u) > loads, "{mode}: LOAD DATA was tried first");
        let got = query_rows(&u, "SELECT id, v FROM dup.t ORDER BY id").unwrap();
        match want {
            None => {
                let e = r.expect_err("a duplicate key stops the load");
                assert_eq!(e.code, 10006, "{e}");
                assert!(
                    e.to_string().contains("1062") || e.to_string().contains("Duplicate"),
                    "{e}"
                );
                assert!(e.message.contains("dup.t.0000000000000.sql:29"), "{e}");
                assert_eq!(
                    got,
                    vec![vec![Some("'2'".to_string()), Some("'down'".to_string())]],
                    "nothing of the failed statement stays"
                );
            }
            Some(vs) => {
                if let Err(e) = r {
                    panic!("{mode}: {e}");
                }
                let want: Vec<Vec<Option<String>>> = vs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| vec![Some(format!("'{}'", i + 1)), Some(format!("'{v}'"))])
                    .collect();
                assert_eq!(got, want, "{mode}");
            }
        }
    }
}

#[test]
fn a_different_dump_with_unfinished_rows_is_34018() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "dd");
    big_fixture(&dir, 2, 300);
    let st = DumpState {
        dump_id: "dump-A".into(),
        done: true,
        ..DumpState::default()
    };
    st.write(&dir).unwrap();
    let c = ctx(
        "dd",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    let rt = rt();
    let cancel = CancellationToken::new();
    let h = {
        let (c, cancel) = (c.clone(), cancel.clone());
        rt.spawn(async move { run(c, &Shared::default(), cancel).await })
    };
    wait_partial(&down.url(), "dd");
    cancel.cancel();
    assert_eq!(rt.block_on(h).unwrap().unwrap(), UnitExit::Cancelled);
    assert_eq!(
        one(
            &down.url(),
            "SELECT cp_schema FROM dm_meta.dd_loader_checkpoint WHERE filename = '#dump'"
        ),
        Some("'dump-A'".into())
    );
    DumpState {
        dump_id: "dump-B".into(),
        ..st
    }
    .write(&dir)
    .unwrap();
    let e = rt
        .block_on(run(c, &Shared::default(), CancellationToken::new()))
        .unwrap_err();
    assert_eq!(e.code, 34018, "{e}");
    assert!(e.workaround.contains("--remove-meta"), "{e}");
}

#[test]
fn bad_input_gives_dm_codes_with_file_and_offset() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let head = "/*!40101 SET NAMES binary*/;\nINSERT INTO `t` VALUES (1);\n";
    let cases: [(&str, String, i32, &str); 4] = [
        (
            "b1",
            format!("{head}UPDATE `t` SET a = 2;\n"),
            34009,
            "bad.t.000000000.sql (bytes 57..79)",
        ),
        (
            "b2",
            format!("{head}INSERT INTO `t` VALUES ('oops);\n"),
            34002,
            "bad.t.000000000.sql:57",
        ),
        (
            "b3",
            format!("{head}INSERT INTO `t` VALUES (2)\n"),
            34002,
            "bad.t.000000000.sql:57",
        ),
        (
            "b5",
            format!("{head}INSERT INTO `t` (`nope`) VALUES (2);\n"),
            10006,
            "bad.t.000000000.sql:57",
        ),
    ];
    for (task, data, code, at) in cases {
        let dir = task_dir(&base.path().join("d"), task);
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "metadata", META.as_bytes());
        write(&dir, "bad-schema-create.sql", b"CREATE DATABASE `bad`;\n");
        write(&dir, "bad.t-schema.sql", b"CREATE TABLE `t` (`a` int);\n");
        write(&dir, "bad.t.000000000.sql", data.as_bytes());
        let e =
            run_blocking(ctx(task, "full", &down, &base.path().join("d"), "", None)).unwrap_err();
        assert_eq!(e.code, code, "{task}: {e}");
        assert!(e.message.contains(at), "{task}: {at:?} not in {e}");
        assert!(!e.retryable, "{task}");
    }
    // The good statement before the bad one is loaded once, and stays once after a retry.
    let again =
        run_blocking(ctx("b1", "full", &down, &base.path().join("d"), "", None)).unwrap_err();
    assert_eq!(again.code, 34009);
    assert_eq!(
        count(&down.url(), "bad.t"),
        4,
        "the statement before the bad one, once per case, none again on the retry"
    );
    // No metadata: 11001.
    let dir = task_dir(&base.path().join("d"), "b4");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "bad-schema-create.sql", b"CREATE DATABASE `bad`;\n");
    let e = run_blocking(ctx("b4", "full", &down, &base.path().join("d"), "", None)).unwrap_err();
    assert_eq!(e.code, 11001, "{e}");
}

#[test]
fn clean_dump_file_deletes_loaded_files() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    // all: data files go, the rest stays for the sync unit.
    let dir = task_dir(&base.path().join("d"), "ca");
    dumpling_fixture(&dir);
    DumpState {
        dump_id: "x".into(),
        done: true,
        ..DumpState::default()
    }
    .write(&dir)
    .unwrap();
    assert_eq!(
        run_blocking(ctx("ca", "all", &down, &base.path().join("d"), "", None)).unwrap(),
        UnitExit::Finished
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(
        left.iter()
            .all(|n| !n.ends_with("0000000000000.sql") && !n.ends_with("0000000000001.sql")),
        "{left:?}"
    );
    for keep in [
        "metadata",
        "dm-rs-dump.json",
        "a%2Eb-schema-create.sql",
        "a%2Eb.nokey-schema.sql",
    ] {
        assert!(left.iter().any(|n| n == keep), "{keep} kept: {left:?}");
    }
    // A second run finds every file done (their files are gone) and finishes.
    assert_eq!(
        run_blocking(ctx("ca", "all", &down, &base.path().join("d"), "", None)).unwrap(),
        UnitExit::Finished
    );
    // full: the whole directory goes.
    let dir = task_dir(&base.path().join("d"), "cf");
    dumpling_fixture(&dir);
    exec(
        &down.url(),
        &[
            "DROP DATABASE `a.b`",
            "DROP DATABASE merged",
            "DROP DATABASE shop",
        ],
    );
    assert_eq!(
        run_blocking(ctx("cf", "full", &down, &base.path().join("d"), "", None)).unwrap(),
        UnitExit::Finished
    );
    assert!(!dir.exists(), "full mode removes the dump directory");
    assert_eq!(count(&down.url(), "merged.orders"), 4);
    // A run after the directory is gone (a crash after the removal) still finishes.
    assert_eq!(
        run_blocking(ctx("cf", "full", &down, &base.path().join("d"), "", None)).unwrap(),
        UnitExit::Finished
    );
}

#[test]
fn a_live_feed_is_loaded_file_by_file_before_the_dump_finishes() {
    let down = MariaDb::downstream();
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("d"), "lv");
    std::fs::create_dir_all(&dir).unwrap();
    let c = ctx(
        "lv",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    let shared = Arc::new(Shared::default());
    shared.feed.start_live();
    let rt = rt();
    let h = {
        let (c, shared) = (c.clone(), shared.clone());
        rt.spawn(async move { run(c, &shared, CancellationToken::new()).await })
    };
    let push = |name: &str, text: &[u8]| {
        write(&dir, name, text);
        shared.feed.push(ReadyFile {
            name: name.into(),
            size: text.len() as u64,
        });
    };
    push("live-schema-create.sql", b"CREATE DATABASE `live`;\n");
    push(
        "live.t-schema.sql",
        b"CREATE TABLE `t` (`id` int PRIMARY KEY);\n",
    );
    let u = down.url();
    for f in 0..3u64 {
        let name = format!("live.t.{f:09}0000.sql");
        push(
            &name,
            format!("INSERT INTO `t` VALUES ({f}1),({f}2);\n").as_bytes(),
        );
        let t0 = Instant::now();
        loop {
            let done = query_rows(&u, &format!("SELECT `offset` = end_pos FROM dm_meta.lv_loader_checkpoint WHERE filename = '{name}'"))
                .ok()
                .and_then(|r| r.first().and_then(|r| r[0].clone()));
            if done.as_deref() == Some("'1'") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{name} not loaded while the dump runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(count(&u, "live.t"), 2 * (f + 1));
        assert!(!h.is_finished(), "the load waits for the dump");
    }
    write(&dir, "metadata", META.as_bytes());
    shared.feed.finish();
    assert_eq!(rt.block_on(h).unwrap().unwrap(), UnitExit::Finished);
    assert_eq!(shared.load_stats.to_load_pb().progress, "100.00 %");
    assert_eq!(
        shared.load_stats.to_load_pb().meta_binlog,
        "(mariadb-bin.000003, 1274)"
    );

    // A dump that stops: the load returns Cancelled.
    let c2 = ctx(
        "lv2",
        "full",
        &down,
        &base.path().join("d"),
        "clean-dump-file: false\n",
        None,
    );
    let shared2 = Arc::new(Shared::default());
    shared2.feed.start_live();
    let h = {
        let shared2 = shared2.clone();
        rt.spawn(async move { run(c2, &shared2, CancellationToken::new()).await })
    };
    shared2.feed.stop();
    assert_eq!(rt.block_on(h).unwrap().unwrap(), UnitExit::Cancelled);
}

/// Throughput against myloader 0.10 on the same mydumper directory, same thread count
/// (`cargo test --test load_unit -- --ignored --nocapture load_throughput`; BENCH_TABLES,
/// BENCH_ROWS, BENCH_THREADS change the size). Prints rows/s and MB/s of each side.
#[test]
#[ignore]
fn load_throughput_vs_myloader() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (tables, rows, threads) = (
        env("BENCH_TABLES", 4),
        env("BENCH_ROWS", 100_000),
        env("BENCH_THREADS", 4),
    );
    let (up, down) = MariaDb::pair(72);
    let mut stmts = vec![
        "CREATE DATABASE sb".to_string(),
        "CREATE DATABASE seq".to_string(),
    ];
    for t in 1..=tables {
        stmts.push(format!("CREATE TABLE sb.sbtest{t} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_{t} (k))"));
        stmts.push(format!(
            "INSERT INTO sb.sbtest{t} SELECT seq, FLOOR(RAND()*{rows}), \
             CONCAT_WS('-', LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0')), \
             CONCAT_WS('-', LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0'), LPAD(FLOOR(RAND()*1e11),11,'0')) \
             FROM seq.seq_1_to_{rows}"
        ));
    }
    exec(&up.url(), &stmts);
    let base = tempfile::tempdir().expect("tempdir");
    let dir = task_dir(&base.path().join("dump"), "bench");
    let out = std::process::Command::new("mydumper")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &up.port.to_string(),
            "-u",
            "root",
            "-B",
            "sb",
            "-t",
            &threads.to_string(),
            "--rows",
            "100000",
            "-o",
        ])
        .arg(&dir)
        .output()
        .expect("mydumper");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name().to_string_lossy().contains(".sbtest")
                && !e.file_name().to_string_lossy().contains("-schema")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let total_rows = tables * rows;
    let report = |who: &str, secs: f64| {
        println!(
            "{who:>8}: {total_rows} rows, {:.1} MB in {secs:.2} s = {:.0} rows/s, {:.2} MB/s",
            bytes as f64 / 1e6,
            total_rows as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
        secs
    };
    let check = || {
        for t in 1..=tables {
            let n = format!("sb.sbtest{t}");
            assert_eq!(checksum(&down.url(), &n), checksum(&up.url(), &n), "{n}");
        }
    };
    let myloader = || {
        let t0 = Instant::now();
        let out = std::process::Command::new("myloader")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &down.port.to_string(),
                "-u",
                "root",
                "-t",
                &threads.to_string(),
                "-o",
                "-d",
            ])
            .arg(&dir)
            .output()
            .expect("myloader");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = t0.elapsed().as_secs_f64();
        check();
        exec(&down.url(), &["DROP DATABASE sb"]);
        s
    };
    let mut dmrs_run = 0;
    let mut dmrs = || {
        dmrs_run += 1;
        let name = format!("bench{dmrs_run}");
        let d2 = task_dir(&base.path().join("dump"), &name);
        let _ = std::fs::remove_dir_all(&d2);
        std::fs::create_dir_all(&d2).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            std::fs::hard_link(e.path(), d2.join(e.file_name())).unwrap();
        }
        let c = ctx(
            &name,
            "full",
            &down,
            &base.path().join("dump"),
            "clean-dump-file: false\n",
            None,
        );
        let mut task = (*c.task).clone();
        for i in task.mysql_instances.iter_mut().flatten() {
            if let Some(l) = i.loader.as_mut() {
                l.pool_size = threads as i64;
            }
        }
        let c = UnitCtx {
            task: Arc::new(task),
            ..c
        };
        let t0 = Instant::now();
        assert_eq!(run_blocking(c).unwrap(), UnitExit::Finished);
        let s = t0.elapsed().as_secs_f64();
        check();
        exec(&down.url(), &["DROP DATABASE sb"]);
        s
    };
    let m1 = report("myloader", myloader());
    let d1 = report("dm-rs", dmrs());
    let m2 = report("myloader", myloader());
    let d2 = report("dm-rs", dmrs());
    println!(
        "ratio (myloader time / dm-rs time): {:.2} and {:.2}",
        m1 / d1,
        m2 / d2
    );
}
