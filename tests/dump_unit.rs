//! The Dump unit driven directly (no cluster) against a real upstream MariaDB: the files it
//! writes (dumpling's names and contents, DM's metadata), rows of every column type loaded back
//! with the `mariadb` client into a downstream equal to the upstream (CHECKSUM TABLE), chunking
//! by key ranges, a cancelled dump continued in a second session without rewriting its finished
//! chunks, and a refused global read lock (DM's 32004).
//!
//! The tests share one upstream/downstream pair; each uses its own databases and dump dir.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::check::query_rows;
use common::sql::exec;
use dm_rs::worker::units::dump::DumpUnit;
use dm_rs::worker::units::full::metadata::DumpMeta;
use dm_rs::worker::units::full::naming::{self, DumpFile};
use dm_rs::worker::units::full::{DumpState, FeedState};
use dm_rs::worker::units::{Shared, Unit, UnitCtx, UnitExit};
use tokio_util::sync::CancellationToken;

fn pair() -> Arc<common::SharedPair> {
    common::shared_pair(41)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A unit context: task `name` (mode `full`) on the upstream at `port` as `user`, dumping the
/// databases `dbs` into `<dir>/dump.<name>` with the given `mydumpers` block body.
fn unit_ctx(
    name: &str,
    port: u16,
    user: &str,
    dir: &Path,
    dbs: &[&str],
    mydumper: &str,
) -> UnitCtx {
    let source = format!(
        "source-id: src-{name}\nfrom:\n  host: 127.0.0.1\n  port: {port}\n  user: {user}\n  password: \"{pw}\"\n",
        pw = if user == "root" { "" } else { "pw" }
    );
    let dbs: Vec<String> = dbs.iter().map(|d| format!("\"{d}\"")).collect();
    let task = format!(
        "name: {name}\ntask-mode: full\ntarget-database:\n  host: 127.0.0.1\n  port: 3306\n  user: root\n  password: \"\"\nmysql-instances:\n  - source-id: src-{name}\n    block-allow-list: ba\n    mydumper-config-name: md\n    loader-config-name: ld\nblock-allow-list:\n  ba:\n    do-dbs: [{}]\nmydumpers:\n  md:\n{mydumper}\nloaders:\n  ld:\n    dir: {}\n",
        dbs.join(", "),
        dir.join("dump").display()
    );
    let task = dm_rs::config::parse_task(task.as_bytes())
        .unwrap_or_else(|e| panic!("task: {e}\n{task}"))
        .config;
    let source = dm_rs::config::parse_source(source.as_bytes())
        .unwrap_or_else(|e| panic!("source: {e}"))
        .config;
    UnitCtx {
        task: Arc::new(task),
        source: Arc::new(source),
        worker: "w1".into(),
        reset_token: None,
        relay: None,
    }
}

fn dump_dir(ctx: &UnitCtx) -> PathBuf {
    dm_rs::worker::units::full::dump_dir(&ctx.task, &ctx.source.source_id)
}

/// One run of the unit: init, process (cancelled when `cancel_when` says so about the feed),
/// close. Returns the process result and the feed as the run left it.
fn run_unit(
    ctx: &UnitCtx,
    shared: &Shared,
    cancel_when: Option<fn(&FeedState) -> bool>,
) -> (Result<UnitExit, dm_rs::worker::error::UnitError>, FeedState) {
    rt().block_on(async {
        shared.feed.start_live();
        let mut u = DumpUnit::new(ctx.clone(), shared);
        let cancel = CancellationToken::new();
        if let Some(cond) = cancel_when {
            let mut rx = shared.feed.subscribe();
            let c = cancel.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    if cond(&rx.borrow()) {
                        c.cancel();
                        return;
                    }
                }
            });
        }
        let r = match u.init().await {
            Ok(()) => u.process(cancel).await,
            Err(e) => Err(e),
        };
        u.close().await;
        (r, shared.feed.snapshot())
    })
}

fn names(feed: &FeedState) -> Vec<String> {
    feed.ready.iter().map(|f| f.name.clone()).collect()
}

fn file_text(dir: &Path, name: &str) -> String {
    String::from_utf8_lossy(
        &std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")),
    )
    .into_owned()
}

/// Loads announced files with the `mariadb` client into the server at `port`, in the order
/// given (schema files first, as the feed announces them).
fn load_with_client(dir: &Path, files: &[String], port: u16) {
    for f in files {
        let db = match naming::classify(f) {
            DumpFile::SchemaCreate { .. } => None,
            DumpFile::TableSchema { db, .. }
            | DumpFile::ViewSchema { db, .. }
            | DumpFile::Data { db, .. } => Some(db),
            other => panic!("{f}: {other:?}"),
        };
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uroot",
            "--init-command=SET time_zone='+00:00'",
        ]);
        if let Some(db) = db {
            cmd.arg(db);
        }
        let input = std::fs::File::open(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let out = cmd
            .stdin(Stdio::from(input))
            .output()
            .expect("the mariadb client (apt-get install mariadb-client)");
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .chars()
            .rev()
            .take(600)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(out.status.success(), "loading {f}: …{tail}");
    }
}

fn checksum(url: &str, table: &str) -> String {
    let rows = query_rows(url, &format!("CHECKSUM TABLE {table}"))
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    format!("{:?}", rows[0][1])
}

fn state(dir: &Path) -> DumpState {
    DumpState::read(dir)
        .expect("read state")
        .expect("state exists")
}

fn master_loc(url: &str) -> (String, u64, String) {
    let rows = query_rows(url, "SHOW MASTER STATUS").expect("SHOW MASTER STATUS");
    let g = query_rows(url, "SELECT @@global.gtid_binlog_pos").expect("gtid");
    let unq = |v: &Option<String>| v.clone().unwrap_or_default().trim_matches('\'').to_string();
    (
        unq(&rows[0][0]),
        unq(&rows[0][1]).parse().expect("pos"),
        unq(&g[0][0]),
    )
}

#[test]
fn files_and_metadata_follow_dumpling_and_dm() {
    let p = pair();
    let up = p.up.url();
    exec(
        &up,
        &[
            "CREATE DATABASE lay1",
            "CREATE TABLE lay1.t_pk (id INT PRIMARY KEY, s VARCHAR(20))",
            "INSERT INTO lay1.t_pk VALUES (1, 'one'), (2, 'it''s'), (3, NULL)",
            "CREATE TABLE lay1.t_nokey (a INT, b TEXT)",
            "INSERT INTO lay1.t_nokey VALUES (7, 'x'), (7, 'x')",
            "CREATE TABLE lay1.t_empty (id INT PRIMARY KEY)",
            "CREATE VIEW lay1.v AS SELECT id, s FROM lay1.t_pk",
            "CREATE DATABASE `a.b`",
            "CREATE TABLE `a.b`.`x-schema` (`id` BIGINT UNSIGNED PRIMARY KEY, `we``ird` INT)",
            "INSERT INTO `a.b`.`x-schema` VALUES (18446744073709551615, -1)",
            "CREATE DATABASE lay_skip",
            "CREATE TABLE lay_skip.t (id INT)",
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "lay",
        p.up.port,
        "root",
        tmp.path(),
        &["lay1", "a.b"],
        "    threads: 2",
    );
    let dir = dump_dir(&ctx);
    let want_loc = master_loc(&up);
    let shared = Shared::default();
    let (r, feed) = run_unit(&ctx, &shared, None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    assert!(feed.done && !feed.stopped, "{feed:?}");

    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        [
            "a%2Eb-schema-create.sql",
            "a%2Eb.x%2Dschema-schema.sql",
            "a%2Eb.x%2Dschema.0000000000000.sql",
            "dm-rs-dump.json",
            "lay1-schema-create.sql",
            "lay1.t_empty-schema.sql",
            "lay1.t_nokey-schema.sql",
            "lay1.t_nokey.0000000000000.sql",
            "lay1.t_pk-schema.sql",
            "lay1.t_pk.0000000000000.sql",
            "lay1.v-schema-view.sql",
            "lay1.v-schema.sql",
            "metadata",
        ]
    );
    // Every schema file is announced before any data file, the view's after the tables.
    let announced = names(&feed);
    let first_data = announced
        .iter()
        .position(|n| matches!(naming::classify(n), DumpFile::Data { .. }))
        .expect("data files announced");
    assert!(
        announced[first_data..]
            .iter()
            .all(|n| matches!(naming::classify(n), DumpFile::Data { .. }))
    );
    assert_eq!(announced.len(), 11, "{announced:?}");

    assert_eq!(
        file_text(&dir, "lay1.t_pk.0000000000000.sql"),
        "/*!40101 SET NAMES binary*/;\nINSERT INTO `t_pk` (`id`,`s`) VALUES\n(1,'one'),\n(2,'it\\'s'),\n(3,NULL);\n"
    );
    assert_eq!(
        file_text(&dir, "a%2Eb.x%2Dschema.0000000000000.sql"),
        "/*!40101 SET NAMES binary*/;\nINSERT INTO `x-schema` (`id`,`we``ird`) VALUES\n(18446744073709551615,-1);\n"
    );
    let schema = file_text(&dir, "lay1.t_pk-schema.sql");
    assert!(
        schema.starts_with("/*!40101 SET NAMES binary*/;\nCREATE TABLE `t_pk` ("),
        "{schema}"
    );
    assert!(schema.ends_with(";\n"), "{schema}");
    assert!(
        file_text(&dir, "lay1-schema-create.sql")
            .starts_with("/*!40101 SET NAMES binary*/;\nCREATE DATABASE `lay1`")
    );
    assert_eq!(
        file_text(&dir, "lay1.v-schema.sql"),
        "/*!40101 SET NAMES binary*/;\nCREATE TABLE `v`(\n`id` int,\n`s` int\n)ENGINE=MyISAM;\n"
    );
    let view = file_text(&dir, "lay1.v-schema-view.sql");
    assert!(
        view.starts_with("/*!40101 SET NAMES binary*/;\nDROP TABLE IF EXISTS `v`;\nDROP VIEW IF EXISTS `v`;\nCREATE ")
            && view.contains("VIEW `lay1`.`v` AS"),
        "{view}"
    );

    let meta = DumpMeta::parse(&file_text(&dir, "metadata"), "metadata").unwrap();
    let m = meta.master.expect("master block");
    let st = state(&dir);
    assert_eq!(m, st.sessions[0].loc, "the session's location");
    assert!(
        (m.file.clone(), m.pos) >= (want_loc.0, want_loc.1),
        "{m:?}: taken after the dump started"
    );
    assert!(!m.gtid.is_empty());
    assert_eq!(
        meta.after_conn, None,
        "one session under the lock: no after block"
    );

    assert!(st.done);
    assert_eq!(st.sessions.len(), 1);
    assert_eq!(st.tables.len(), 4);
    assert!(st.tables.values().all(|t| t.done && t.session == 1));
    let status = shared.dump_stats.to_dump_status();
    assert_eq!((status.total_tables, status.completed_tables), (4, 4.0));
    assert_eq!(status.finished_rows, 6.0);
    assert_eq!(status.progress, "100.00 %");

    // A finished dump only announces its files again (nothing rewritten).
    let before = std::fs::metadata(dir.join("lay1.t_pk.0000000000000.sql"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(dir.join("lay1.t_nokey.0000000000000.sql")).unwrap();
    let (r, feed2) = run_unit(&ctx, &Shared::default(), None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    // Schema files first, in the same order; data files (finished by the threads in any order
    // the first time) all again.
    let split = |v: Vec<String>| {
        let (schema, mut data): (Vec<String>, Vec<String>) =
            v.into_iter().partition(|n| n.contains("-schema"));
        data.sort();
        (schema, data)
    };
    assert_eq!(
        split(names(&feed2)),
        split(announced.clone()),
        "the same files, schema files first in the same order"
    );
    assert!(
        !dir.join("lay1.t_nokey.0000000000000.sql").exists(),
        "a loaded-and-deleted file is not dumped again"
    );
    assert_eq!(
        std::fs::metadata(dir.join("lay1.t_pk.0000000000000.sql"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
}

#[test]
fn every_column_type_loads_back_equal() {
    let p = pair();
    let up = p.up.url();
    let down = p.down.url();
    exec(
        &up,
        &[
            "CREATE DATABASE types1",
            "CREATE TABLE types1.t (
                id INT PRIMARY KEY AUTO_INCREMENT,
                ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED,
                de DECIMAL(65,30), dz DECIMAL(10,0),
                f FLOAT, d DOUBLE, fu FLOAT(7,3),
                bt BIT(1), b9 BIT(9), b64 BIT(64),
                c CHAR(10), vc VARCHAR(300), tx TEXT, lt LONGTEXT, l1 VARCHAR(20) CHARACTER SET latin1,
                bn BINARY(4), vb VARBINARY(300), bl BLOB, lb LONGBLOB,
                dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(6), yr YEAR,
                en ENUM('a','b','c d'), st SET('x','y','z'),
                js JSON, g GEOMETRY NULL, pt POINT NULL,
                i6 INET6, uu UUID, i4 INET4,
                gv INT AS (ti + 1) VIRTUAL, gs BIGINT AS (si * 2) STORED,
                hid INT INVISIBLE DEFAULT 42
            )",
        ],
    );
    let mut inserts = vec![
        "INSERT INTO types1.t (id) VALUES (1)".to_string(),
        "INSERT INTO types1.t (ti, tu, si, mi, bi, bu, de, dz, f, d, fu, bt, b9, b64, c, vc, tx, lt, l1, bn, vb, bl, lb, dt, dtm, ts, tm, yr, en, st, js, g, pt, i6, uu, i4, hid) VALUES \
         (-128, 255, -32768, -8388608, -9223372036854775808, 18446744073709551615, \
          -99999999999999999999999999999999999.999999999999999999999999999999, 9999999999, \
          -3.4028234e38, -1.7976931348623157e308, -9999.999, b'1', b'100000001', b'1111111111111111111111111111111111111111111111111111111111111111', \
          'abc', 'q''uote \\\\ back\\\\slash \"dq\" nl\\nnl cr\\rcr tab\\tz \\Z nul\\0x', REPEAT('é', 1000), REPEAT('long ', 100000), 0xE9E8, \
          0x00FF0A27, 0x0001020304050607080909272F5C, 0xDEADBEEF00, REPEAT(0xFF00, 70000), \
          '1000-01-01', '9999-12-31 23:59:59.999999', '2030-01-19 03:14:07.999', '-838:59:59.000000', 2155, \
          'c d', 'x,z', '{\"k\": [1, \"two\", null, {\"n\": 3.5}]}', ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'), POINT(1.5, -2.25), \
          '2001:db8::ff00:42:8329', '123e4567-e89b-12d3-a456-426614174000', '10.0.0.255', 7)".to_string(),
        "INSERT INTO types1.t (ti, c, vc, bl, vb, en, st, dtm, ts, f, d) VALUES (0, '', '', '', '', 'a', '', '2000-02-29 00:00:00', '2000-01-01 00:00:01', 0, 0)".to_string(),
    ];
    // Floats and doubles from random bit patterns (finite ones), written exactly.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut vals = Vec::new();
    while vals.len() < 300 {
        let d = f64::from_bits(next());
        let f = f32::from_bits(next() as u32);
        if d.is_finite() && f.is_finite() {
            vals.push(format!("({:e}, {:e}, {})", f64::from(f), d, vals.len()));
        }
    }
    inserts.push(format!(
        "INSERT INTO types1.t (f, d, si) VALUES {}",
        vals.join(",")
    ));
    // Every byte value in binary and latin1 columns.
    let all: String = (0..=255u8).map(|b| format!("{b:02X}")).collect();
    inserts.push(format!(
        "INSERT INTO types1.t (vb, bl, l1) VALUES (0x{all}, 0x{all}, 0x{})",
        &all[2 * 32..2 * 52]
    ));
    exec(&up, &inserts);

    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "types",
        p.up.port,
        "root",
        tmp.path(),
        &["types1"],
        "    threads: 2\n    statement-size: 5000",
    );
    let dir = dump_dir(&ctx);
    let (r, feed) = run_unit(&ctx, &Shared::default(), None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    let data = file_text(&dir, "types1.t.0000000000000.sql");
    assert!(
        data.matches("INSERT INTO `t` (`id`,").count() > 1,
        "statement-size splits the INSERTs"
    );
    assert!(
        !data.contains("`gv`") && !data.contains("`gs`"),
        "generated columns are not dumped"
    );
    assert!(data.contains("`hid`"), "invisible columns are");
    load_with_client(&dir, &names(&feed), p.down.port);
    assert_eq!(checksum(&up, "types1.t"), checksum(&down, "types1.t"));
    let all_cols = "SELECT *, hid FROM types1.t ORDER BY id";
    assert_eq!(
        query_rows(&up, all_cols).unwrap(),
        query_rows(&down, all_cols).unwrap()
    );
}

#[test]
fn small_rows_give_several_chunks_whose_union_is_the_table() {
    let p = pair();
    let up = p.up.url();
    let down = p.down.url();
    let mut sqls = vec![
        "CREATE DATABASE chunk1".to_string(),
        "CREATE TABLE chunk1.t (id INT PRIMARY KEY, pad VARCHAR(100))".to_string(),
        "CREATE TABLE chunk1.u (k BIGINT NULL UNIQUE, v INT)".to_string(),
    ];
    let rows: Vec<String> = (1..=1000)
        .map(|i| format!("({i}, REPEAT('p', {}))", i % 97))
        .collect();
    sqls.push(format!("INSERT INTO chunk1.t VALUES {}", rows.join(",")));
    let rows: Vec<String> = (0..500)
        .map(|i| {
            if i % 50 == 0 {
                format!("(NULL, {i})")
            } else {
                format!("({}, {i})", i * 1000 - 250_000)
            }
        })
        .collect();
    sqls.push(format!("INSERT INTO chunk1.u VALUES {}", rows.join(",")));
    sqls.push("ANALYZE TABLE chunk1.t, chunk1.u".into());
    exec(&up, &sqls);

    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "chunks",
        p.up.port,
        "root",
        tmp.path(),
        &["chunk1"],
        "    threads: 3\n    rows: 100\n    statement-size: 2000\n    chunk-filesize: 4KiB",
    );
    let dir = dump_dir(&ctx);
    let (r, feed) = run_unit(&ctx, &Shared::default(), None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    let st = state(&dir);
    let t = &st.tables[&DumpState::key("chunk1", "t")];
    let u = &st.tables[&DumpState::key("chunk1", "u")];
    assert_eq!(t.plan.as_ref().and_then(|p| p.key.as_deref()), Some("id"));
    assert!(t.plan.as_ref().unwrap().chunks() >= 5, "{:?}", t.plan);
    assert_eq!(u.plan.as_ref().and_then(|p| p.key.as_deref()), Some("k"));
    assert!(u.plan.as_ref().unwrap().chunks() >= 3, "{:?}", u.plan);
    assert_eq!((t.rows, u.rows), (1000, 500));
    // chunk-filesize splits a chunk into several files: `…{chunk:09}{file:04}.sql`.
    assert!(
        t.files.keys().any(|n| n.ends_with("0001.sql")),
        "{:?}",
        t.files.keys()
    );
    for (name, size) in &t.files {
        assert_eq!(
            std::fs::metadata(dir.join(name)).unwrap().len(),
            *size,
            "{name}"
        );
        assert!(
            file_text(&dir, name).ends_with(");\n"),
            "{name} ends with a whole statement"
        );
    }
    load_with_client(&dir, &names(&feed), p.down.port);
    for table in ["chunk1.t", "chunk1.u"] {
        assert_eq!(checksum(&up, table), checksum(&down, table), "{table}");
    }
    let nulls = query_rows(&down, "SELECT COUNT(*) FROM chunk1.u WHERE k IS NULL").unwrap();
    assert_eq!(nulls[0][0].as_deref(), Some("'10'"));
}

#[test]
fn a_cancelled_dump_keeps_its_chunks_and_continues_in_a_new_session() {
    let p = pair();
    let up = p.up.url();
    let mut sqls = vec![
        "CREATE DATABASE resume1".to_string(),
        "CREATE TABLE resume1.t (id INT PRIMARY KEY, v INT, pad CHAR(200))".to_string(),
    ];
    for part in 0..6 {
        let rows: Vec<String> = (1..=1000)
            .map(|i| format!("({}, 0, 'x')", part * 1000 + i))
            .collect();
        sqls.push(format!("INSERT INTO resume1.t VALUES {}", rows.join(",")));
    }
    sqls.push("ANALYZE TABLE resume1.t".into());
    exec(&up, &sqls);
    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "resume",
        p.up.port,
        "root",
        tmp.path(),
        &["resume1"],
        "    threads: 1\n    rows: 100",
    );
    let dir = dump_dir(&ctx);

    // Session 1: cancelled as soon as the first data file is announced.
    let s1_loc = master_loc(&up);
    let shared = Shared::default();
    let (r, feed) = run_unit(
        &ctx,
        &shared,
        Some(|f: &FeedState| {
            f.ready
                .iter()
                .any(|r| matches!(naming::classify(&r.name), DumpFile::Data { .. }))
        }),
    );
    assert_eq!(r.unwrap(), UnitExit::Cancelled);
    assert!(feed.stopped && !feed.done);
    let st1 = state(&dir);
    let td1 = &st1.tables[&DumpState::key("resume1", "t")];
    let planned = td1.plan.as_ref().unwrap().chunks() as usize;
    assert!(
        !td1.done && !td1.chunks.is_empty() && td1.chunks.len() < planned,
        "cancelled mid-dump: {td1:?}"
    );
    assert!(!dir.join("metadata").exists());
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "no partial file is left"
    );
    let kept: BTreeMap<String, (std::time::SystemTime, Vec<u8>)> = td1
        .files
        .keys()
        .map(|n| {
            let path = dir.join(n);
            (
                n.clone(),
                (
                    std::fs::metadata(&path).unwrap().modified().unwrap(),
                    std::fs::read(&path).unwrap(),
                ),
            )
        })
        .collect();

    // Writes between the sessions, then session 2.
    exec(&up, &["UPDATE resume1.t SET v = v + 1 WHERE id % 7 = 0"]);
    let s2_loc = master_loc(&up);
    assert_ne!(s1_loc, s2_loc);
    std::thread::sleep(Duration::from_millis(20));
    let (r, feed) = run_unit(&ctx, &shared, None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    assert!(feed.done);
    let st2 = state(&dir);
    let td2 = &st2.tables[&DumpState::key("resume1", "t")];
    assert!(td2.done);
    assert_eq!(td2.plan, td1.plan, "the same ranges in the second session");
    assert_eq!(
        td2.session, 1,
        "the table's first chunk came from session 1"
    );
    for (chunk, s) in &td1.chunks {
        assert_eq!(td2.chunks.get(chunk), Some(s), "chunk {chunk} kept");
    }
    assert!(td2.chunks.values().any(|s| *s == 2));
    for (n, (mtime, bytes)) in &kept {
        let path = dir.join(n);
        assert_eq!(
            &std::fs::metadata(&path).unwrap().modified().unwrap(),
            mtime,
            "{n} not rewritten"
        );
        assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{n}");
    }
    // The feed of session 2 announces session 1's files too.
    for n in kept.keys() {
        assert!(names(&feed).contains(n), "{n} announced again");
    }
    assert_eq!(td2.rows, 6000);
    // Other tests write to the shared upstream meanwhile: positions are compared by order.
    let meta = DumpMeta::parse(&file_text(&dir, "metadata"), "metadata").unwrap();
    let m = meta.master.unwrap();
    let a = meta.after_conn.expect("after-connection block: session 2");
    assert_eq!(st2.sessions.len(), 2);
    assert_eq!(m, st2.sessions[0].loc, "master block: session 1");
    assert_eq!(a, st2.sessions[1].loc, "after-connection block: session 2");
    let at = |l: &dm_rs::worker::units::full::BinlogLoc| (l.file.clone(), l.pos);
    assert!(at(&m) >= (s1_loc.0.clone(), s1_loc.1));
    assert!(
        at(&m) < (s2_loc.0.clone(), s2_loc.1),
        "session 1 was before the UPDATE"
    );
    assert!(at(&a) >= (s2_loc.0.clone(), s2_loc.1), "session 2 after it");
}

#[test]
fn a_refused_global_lock_is_dm_32004_and_consistency_none_needs_no_lock() {
    let p = pair();
    let up = p.up.url();
    exec(
        &up,
        &[
            "CREATE DATABASE lock1",
            "CREATE TABLE lock1.t (id INT PRIMARY KEY)",
            "INSERT INTO lock1.t VALUES (1), (2)",
            "CREATE USER 'noreload'@'127.0.0.1' IDENTIFIED BY 'pw'",
            "GRANT SELECT, SHOW VIEW, REPLICATION CLIENT ON *.* TO 'noreload'@'127.0.0.1'",
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "lock",
        p.up.port,
        "noreload",
        tmp.path(),
        &["lock1"],
        "    threads: 2",
    );
    let (r, feed) = run_unit(&ctx, &Shared::default(), None);
    let e = r.expect_err("FTWRL needs RELOAD");
    assert_eq!(e.code, 32004, "{e}");
    assert!(e.message.contains("Couldn't acquire global lock"), "{e}");
    assert!(
        e.workaround.contains("RELOAD") && e.workaround.contains("--consistency none"),
        "{e}"
    );
    assert!(!e.retryable);
    assert!(feed.stopped);

    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "nolock",
        p.up.port,
        "noreload",
        tmp.path(),
        &["lock1"],
        "    threads: 2\n    extra-args: \"--consistency none\"",
    );
    let (r, _) = run_unit(&ctx, &Shared::default(), None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    let meta = DumpMeta::parse(&file_text(&dump_dir(&ctx), "metadata"), "metadata").unwrap();
    assert!(
        meta.master.is_some() && meta.after_conn.is_some(),
        "{meta:?}"
    );
}

/// Throughput against mydumper 0.10 (`/usr/bin/mydumper`) on sysbench-like tables, same thread
/// count and rows per chunk, in one run: `cargo test --release --test dump_unit -- --ignored
/// --nocapture dump_throughput`. Prints rows/s and MB/s of each; checks nothing but that both
/// dumped every row.
#[test]
#[ignore]
fn dump_throughput_against_mydumper() {
    const TABLES: usize = 4;
    const ROWS: u64 = 250_000;
    const THREADS: usize = 4;
    let up = common::MariaDb::upstream(77);
    let url = up.url();
    let mut sqls = vec!["CREATE DATABASE sbtest".to_string()];
    for t in 1..=TABLES {
        sqls.push(format!(
            "CREATE TABLE sbtest.sbtest{t} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, \
             c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))"
        ));
        sqls.push(format!(
            "INSERT INTO sbtest.sbtest{t} (id, k, c, pad) SELECT seq, FLOOR(RAND(seq) * {ROWS}), \
             CONCAT_WS('-', LEFT(MD5(seq), 11), LEFT(MD5(seq + 1), 11), LEFT(MD5(seq + 2), 11), LEFT(MD5(seq + 3), 11), \
                       LEFT(MD5(seq + 4), 11), LEFT(MD5(seq + 5), 11), LEFT(MD5(seq + 6), 11), LEFT(MD5(seq + 7), 11), \
                       LEFT(MD5(seq + 8), 11), LEFT(MD5(seq + 9), 11)), \
             CONCAT_WS('-', LEFT(MD5(seq * 3), 11), LEFT(MD5(seq * 5), 11), LEFT(MD5(seq * 7), 11), LEFT(MD5(seq * 11), 11), LEFT(MD5(seq * 13), 11)) \
             FROM sbtest.seq_1_to_{ROWS}"
        ));
        sqls.push(format!("ANALYZE TABLE sbtest.sbtest{t}"));
    }
    exec(&url, &sqls);
    let total_rows = TABLES as u64 * ROWS;
    let dir_size = |d: &Path| -> u64 {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sql"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let report = |who: &str, secs: f64, cpu: f64, bytes: u64| {
        println!(
            "{who:>12}: {secs:6.2} s  {:>9.0} rows/s  {:6.1} MB/s  ({:.1} MB)  client CPU {cpu:5.2} s",
            total_rows as f64 / secs,
            bytes as f64 / 1e6 / secs,
            bytes as f64 / 1e6
        );
    };
    // User + system CPU seconds of this process (RUSAGE_SELF) or of its waited-for children.
    let cpu = |who: i32| -> f64 {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    for round in 0..3 {
        // dm-rs
        let tmp = tempfile::tempdir().unwrap();
        let ctx = unit_ctx(
            "bench",
            up.port,
            "root",
            tmp.path(),
            &["sbtest"],
            &format!("    threads: {THREADS}\n    rows: 200000"),
        );
        let t0 = std::time::Instant::now();
        let c0 = cpu(libc::RUSAGE_SELF);
        let shared = Shared::default();
        let (r, _) = run_unit(&ctx, &shared, None);
        let dm_secs = t0.elapsed().as_secs_f64();
        let dm_cpu = cpu(libc::RUSAGE_SELF) - c0;
        assert_eq!(r.unwrap(), UnitExit::Finished);
        let st = state(&dump_dir(&ctx));
        assert_eq!(st.tables.values().map(|t| t.rows).sum::<u64>(), total_rows);
        report(
            &format!("dm-rs #{round}"),
            dm_secs,
            dm_cpu,
            dir_size(&dump_dir(&ctx)),
        );
        drop(tmp);
        // mydumper 0.10
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("md");
        let t0 = std::time::Instant::now();
        let c0 = cpu(libc::RUSAGE_CHILDREN);
        let st = Command::new("mydumper")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &up.port.to_string(),
                "-u",
                "root",
                "-t",
                &THREADS.to_string(),
                "-r",
                "200000",
                "-B",
                "sbtest",
                "--trx-consistency-only",
                "-o",
            ])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mydumper (apt-get install mydumper)");
        let md_secs = t0.elapsed().as_secs_f64();
        let md_cpu = cpu(libc::RUSAGE_CHILDREN) - c0;
        assert!(st.success());
        report(
            &format!("mydumper #{round}"),
            md_secs,
            md_cpu,
            dir_size(&out),
        );
    }
}

/// A row over 16 MiB comes in several protocol packets: the dump's narrow client joins them
/// and writes the row whole (values before and after it as well).
#[test]
fn a_row_over_16_mib_is_dumped_whole() {
    let p = pair();
    let up = p.up.url();
    // New sessions may send and receive 64 MiB packets (the default is 16 MiB).
    exec(&up, &["SET GLOBAL max_allowed_packet = 67108864"]);
    exec(
        &up,
        &[
            "CREATE DATABASE big1",
            "CREATE TABLE big1.t (id INT PRIMARY KEY, v LONGTEXT)",
            "INSERT INTO big1.t VALUES (1, 'before'), (2, REPEAT('x', 17000000)), (3, NULL), (4, 'after')",
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "big",
        p.up.port,
        "root",
        tmp.path(),
        &["big1"],
        "    threads: 1\n    statement-size: 100",
    );
    let (r, feed) = run_unit(&ctx, &Shared::default(), None);
    assert_eq!(r.unwrap(), UnitExit::Finished);
    let dir = dump_dir(&ctx);
    let text: String = names(&feed)
        .iter()
        .filter(|n| n.starts_with("big1.t.") && n.ends_with(".sql"))
        .map(|n| file_text(&dir, n))
        .collect();
    let big = format!("(2,'{}')", "x".repeat(17_000_000));
    for want in ["(1,'before')", big.as_str(), "(3,NULL)", "(4,'after')"] {
        assert!(
            text.contains(want),
            "{} missing",
            &want[..want.len().min(20)]
        );
    }
}

/// On plain TCP with a password login the dump connections are the narrow client's (each in
/// the session's snapshot, with its server connection id), and one driver connection in the
/// same snapshot does the schema reads; the rows a narrow connection reads are the table's.
#[test]
fn plain_tcp_dump_connections_are_narrow_ones_in_the_snapshot() {
    use dm_rs::worker::units::dump::settings::Consistency;
    use dm_rs::worker::units::dump::snapshot::{self, DumpConn};
    use mysql_async::prelude::Queryable;

    let p = pair();
    let up = p.up.url();
    exec(
        &up,
        &[
            "CREATE DATABASE narrow1",
            "CREATE TABLE narrow1.t (id INT PRIMARY KEY, v VARCHAR(10))",
            "INSERT INTO narrow1.t VALUES (1, 'a'), (2, NULL)",
            "CREATE USER 'narrow'@'127.0.0.1' IDENTIFIED BY 'pw'",
            "GRANT SELECT, RELOAD, LOCK TABLES, SHOW VIEW, REPLICATION CLIENT ON *.* TO 'narrow'@'127.0.0.1'",
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let ctx = unit_ctx(
        "narrow",
        p.up.port,
        "narrow",
        tmp.path(),
        &["narrow1"],
        "    threads: 2",
    );
    let rules =
        dm_rs::rules::TableRules::new(&ctx.task, &ctx.source.source_id).expect("table rules");
    rt().block_on(async {
        let from = &ctx.source.from;
        let mut control = mysql_async::Conn::new(from.mysql_opts(snapshot::control_conn_init()))
            .await
            .unwrap();
        let snap = snapshot::take(from, &mut control, 2, Consistency::Flush, false, 1, &rules)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(snap.conns.len(), 2);
        assert!(
            snap.catalog.is_some(),
            "no driver connection for the schema reads"
        );
        // Rows inserted after the snapshot are not seen by its connections.
        let mut root = mysql_async::Conn::from_url(up.as_str()).await.unwrap();
        root.query_drop("INSERT INTO narrow1.t VALUES (3, 'late')")
            .await
            .unwrap();
        root.disconnect().await.unwrap();
        // Each one's id is its server connection (what KILL QUERY is sent for).
        let ids: Vec<u32> = snap.conns.iter().map(DumpConn::id).collect();
        let live: Vec<u32> = control
            .query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'narrow'")
            .await
            .unwrap();
        assert!(ids.iter().all(|id| live.contains(id)), "{ids:?} {live:?}");
        for c in snap.conns {
            let DumpConn::Raw(mut c) = c else {
                panic!("a driver dump connection on plain TCP");
            };
            assert_eq!(
                c.query("SELECT id, v FROM narrow1.t ORDER BY id")
                    .await
                    .unwrap(),
                2
            );
            let mut rows = Vec::new();
            while let Some(r) = c.next_row().await.unwrap() {
                rows.push((r.get(0).map(<[u8]>::to_vec), r.get(1).map(<[u8]>::to_vec)));
            }
            assert_eq!(
                rows,
                vec![
                    (Some(b"1".to_vec()), Some(b"a".to_vec())),
                    (Some(b"2".to_vec()), None)
                ]
            );
            c.disconnect().await;
        }
        if let Some(c) = snap.catalog {
            c.disconnect().await.unwrap();
        }
        control.disconnect().await.unwrap();
    });
}
