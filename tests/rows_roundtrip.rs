//! Row events round-trip through our decoder and SQL builders into a second MariaDB: every
//! column type with its extreme values, keyed and keyless tables, PK changes, plain and
//! compressed binlog (`log_bin_compress=ON`), FULL and MINIMAL row images. The downstream must
//! end up identical to the upstream, row by row and by CHECKSUM TABLE.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::MariaDb;
use dm_rs::binlog::compress;
use dm_rs::binlog::rows::{RowChange, TableMeta, decode_rows};
use dm_rs::binlog::{self, Decoded, Position};
use dm_rs::dml::{self, TargetTable, Value};
use mysql_async::binlog::events::EventData;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

const TABLES: &[(&str, &str)] = &[
    (
        "t_int",
        "CREATE TABLE rt.t_int (id INT PRIMARY KEY, y YEAR, ti TINYINT, tu TINYINT UNSIGNED,
          si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT,
          iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, dec65 DECIMAL(65,30), f FLOAT,
          d DOUBLE, du DECIMAL(10,2) UNSIGNED)",
    ),
    (
        "t_str",
        "CREATE TABLE rt.t_str (id BIGINT UNSIGNED PRIMARY KEY,
          c CHAR(10) CHARACTER SET utf8mb4, v VARCHAR(300) CHARACTER SET utf8mb4,
          l VARCHAR(50) CHARACTER SET latin1, b BINARY(8), vb VARBINARY(20), tx TEXT, bl BLOB,
          lb LONGBLOB, j JSON, e ENUM('a','b','c'), s SET('x','y','z'), bit1 BIT(1),
          bit64 BIT(64)) DEFAULT CHARSET=utf8mb4",
    ),
    (
        "t_time",
        "CREATE TABLE rt.t_time (id INT PRIMARY KEY, dt DATE, tm TIME(6), tm0 TIME,
          dtt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, ts0 TIMESTAMP NULL DEFAULT NULL,
          y YEAR, t2 TIME(2), t4 TIME(4))",
    ),
    (
        "t_uk",
        "CREATE TABLE rt.t_uk (a INT NOT NULL, u VARCHAR(20) NULL, v VARCHAR(20),
          UNIQUE KEY uk_u (u))",
    ),
    (
        "t_none",
        "CREATE TABLE rt.t_none (a INT, b VARCHAR(10), c DOUBLE, bn BINARY(4), f FLOAT)",
    ),
];

const DML: &[&str] = &[
    // integers and numbers at their limits
    "INSERT INTO rt.t_int VALUES
      (1, 2155, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
       -9223372036854775808, 18446744073709551615,
       '-99999999999999999999999999999999999.999999999999999999999999999999',
       3.402823466e38, 1.7976931348623157e308, 99999999.99),
      (2, 1901, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
       '0.000000000000000000000000000001', -1.17549435e-38, -2.2250738585072014e-308, 0),
      (3, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, NULL, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, '0', 0.1, 0.1, 0.01)",
    "UPDATE rt.t_int SET bu = 18446744073709551614, f = 1.5, d = 1e-300 WHERE id = 4",
    "UPDATE rt.t_int SET id = 102, ti = NULL WHERE id = 2",
    "UPDATE rt.t_int SET ti = 5, y = 1999 WHERE id = 3",
    "DELETE FROM rt.t_int WHERE id = 1",
    "INSERT INTO rt.t_int (id, bu, f) VALUES (1, 18446744073709551615, 3.402823466e38)",
    // strings, binaries, blobs, JSON, ENUM, SET, BIT
    "INSERT INTO rt.t_str VALUES
      (18446744073709551615, 'ab ', CONCAT('😀 ''quote'' \\\\back\\\\', CHAR(0), 'nul'),
       CONVERT('café ÿ' USING latin1), X'41', X'00FF00', 'text ✓', X'DEADBEEF',
       REPEAT(X'00FF10', 1000000), '{\"a\": [1, 2, {\"b\": null}], \"u\": \"☃\"}', 'c', 'x,z',
       b'1', b'1000000000000000000000000000000000000000000000000000000000000001'),
      (1, '', '', '', X'', X'', '', X'', X'', '[]', 'a', '', b'0', b'0'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "UPDATE rt.t_str SET v = 'changed', s = 'x,y,z', bit64 = 18446744073709551615,
       lb = REPEAT('z', 100) WHERE id = 1",
    "UPDATE rt.t_str SET id = 3, b = X'0102030405060708' WHERE id = 2",
    "UPDATE rt.t_str SET c = NULL, e = NULL, j = NULL WHERE id = 18446744073709551615",
    "INSERT INTO rt.t_str (id, c) VALUES (4, 'gone')",
    "DELETE FROM rt.t_str WHERE id = 4",
    // temporal types; the upstream session is at +03:00
    "INSERT INTO rt.t_time VALUES
      (1, '1000-01-01', '-838:59:59.000000', '838:59:59', '1000-01-01 00:00:00.000000',
       '1970-01-01 03:00:01.000001', '2038-01-19 06:14:07', 1901, '-00:00:01.50', '-00:00:01.5'),
      (2, '9999-12-31', '838:59:59.999999', '-00:00:01', '9999-12-31 23:59:59.999999',
       '2024-01-02 03:04:05.123456', '2024-06-30 23:59:59', 2155, '-10:00:00.01', '-838:59:59.9999'),
      (3, '0000-00-00', '-00:00:00.500000', '00:00:00', '0000-00-00 00:00:00.000000',
       '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0, '00:00:00.99', '-00:00:00.0001'),
      (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "UPDATE rt.t_time SET tm = '-12:34:56.789012', ts = '2001-02-03 04:05:06.7' WHERE id = 4",
    "UPDATE rt.t_time SET id = 40, dtt = '2020-02-29 12:00:00.5' WHERE id = 1",
    "DELETE FROM rt.t_time WHERE id = 3",
    // a UNIQUE key but no PK; NULLs in the key make rows fall back to all columns
    "INSERT INTO rt.t_uk VALUES (1, 'one', 'a'), (2, NULL, 'b'), (3, NULL, 'b'), (4, 'four', NULL)",
    "UPDATE rt.t_uk SET u = 'uno', v = 'A' WHERE a = 1",
    "UPDATE rt.t_uk SET v = 'c' WHERE a = 2",
    "UPDATE rt.t_uk SET u = 'three' WHERE a = 3",
    "DELETE FROM rt.t_uk WHERE a = 4",
    // no key at all, duplicate rows
    "INSERT INTO rt.t_none VALUES (1, 'x', 0.5, X'41', 0.1), (1, 'x', 0.5, X'41', 0.1),
       (2, NULL, NULL, NULL, NULL), (3, 'y', 1e300, X'00', 3.3), (5, 'bin', 1, X'4200', 0.7)",
    "UPDATE rt.t_none SET a = 6 WHERE a = 5",
    "UPDATE rt.t_none SET b = 'changed' WHERE a = 1 LIMIT 1",
    "UPDATE rt.t_none SET c = 2.5 WHERE a = 2",
    "DELETE FROM rt.t_none WHERE a = 3",
];

async fn connect(db: &MariaDb) -> Conn {
    Conn::from_url(db.url()).await.expect("connect")
}

async fn master_position(c: &mut Conn) -> Position {
    let row: Row = c
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("SHOW MASTER STATUS")
        .expect("binlog is on");
    let file: String = row.get(0).expect("File");
    let pos: u64 = row.get(1).expect("Position");
    Position { file, pos }
}

/// The downstream table for a binlog table: names and PK from the binlog's FULL metadata,
/// UNIQUE keys from the downstream schema (what the sync unit's schema tracker provides).
async fn target_table(down: &mut Conn, meta: &TableMeta) -> TargetTable {
    let columns = meta.column_names();
    let rows: Vec<(String, String)> = down
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
             ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
            (&meta.schema, &meta.table),
        )
        .await
        .expect("read keys");
    let mut keys: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, column) in rows {
        let pos = columns
            .iter()
            .position(|c| *c == column)
            .expect("key column in binlog");
        match keys.last_mut() {
            Some((name, cols)) if *name == index => cols.push(pos),
            _ => keys.push((index, vec![pos])),
        }
    }
    let pk: Vec<usize> = keys
        .iter()
        .find(|(n, _)| n == "PRIMARY")
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    assert_eq!(pk, meta.primary_key, "binlog PK metadata of {}", meta.table);
    TargetTable {
        schema: meta.schema.clone(),
        table: meta.table.clone(),
        columns,
        pk: meta.primary_key.clone(),
        unique_keys: keys
            .into_iter()
            .filter(|(n, _)| n != "PRIMARY")
            .map(|(_, c)| c)
            .collect(),
    }
}

/// What reading the binlog gave.
#[derive(Default)]
struct Replay {
    compressed_types: BTreeSet<u8>,
    queries: Vec<String>,
    changes: Vec<(String, RowChange)>,
    statements: Vec<String>,
}

/// Reads the upstream binlog from `start` to its end, decodes every rows event and builds the
/// downstream SQL (the downstream connection is only used to read key definitions).
async fn replay(up: &MariaDb, down: &mut Conn, start: &Position, safe_mode: bool) -> Replay {
    let opts = mysql_async::Opts::from_url(&up.url()).expect("url");
    let mut stream = binlog::open(opts, 4242, start, true)
        .await
        .expect("open binlog");
    let mut out = Replay::default();
    let mut targets: HashMap<String, TargetTable> = HashMap::new();
    while let Some(ev) = binlog::next_event(&mut stream).await {
        let ev = ev.expect("binlog event");
        let t = ev.header().event_type_raw();
        if compress::is_compressed(t) {
            out.compressed_types.insert(t);
        }
        let ev = compress::uncompress(ev).expect("uncompress");
        assert!(!compress::is_compressed(ev.header().event_type_raw()));
        match binlog::decode(&ev, &start.file).expect("decode") {
            Decoded::Event(EventData::QueryEvent(q)) => out.queries.push(q.query().into_owned()),
            Decoded::Event(EventData::RowsEvent(r)) => {
                let tme = stream.get_tme(r.table_id()).expect("table map");
                let meta = TableMeta::from_tme(tme);
                let changes = decode_rows(&r, tme, &meta).expect("decode rows");
                if !targets.contains_key(&meta.table) {
                    let t = target_table(down, &meta).await;
                    targets.insert(meta.table.clone(), t);
                }
                let target = &targets[&meta.table];
                let inserts: Vec<&[Value]> = changes
                    .iter()
                    .filter_map(|c| match c {
                        RowChange::Insert(r) => Some(r.as_slice()),
                        _ => None,
                    })
                    .collect();
                if !inserts.is_empty() {
                    let mut s = String::new();
                    dml::insert_sql(target, &inserts, safe_mode, &mut s);
                    out.statements.push(s);
                }
                for c in &changes {
                    match c {
                        RowChange::Insert(_) => {}
                        RowChange::Update { before, after } => {
                            dml::update_sql(target, before, after, safe_mode, &mut out.statements)
                        }
                        RowChange::Delete(before) => {
                            let mut s = String::new();
                            dml::delete_sql(target, before, &mut s);
                            out.statements.push(s);
                        }
                    }
                }
                out.changes
                    .extend(changes.into_iter().map(|c| (meta.table.clone(), c)));
            }
            _ => {}
        }
    }
    out
}

async fn table_rows(c: &mut Conn, table: &str) -> Vec<Vec<mysql_async::Value>> {
    let cols: Vec<String> = c
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = 'rt' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .expect("columns");
    // HEX() makes FLOAT/DOUBLE/BIT bit-exact in the comparison; the plain columns follow.
    let exprs: Vec<String> = cols.iter().map(|c| format!("HEX(`{c}`), `{c}`")).collect();
    let order: Vec<String> = (1..=cols.len() * 2).map(|i| i.to_string()).collect();
    let rows: Vec<Row> = c
        .query(format!(
            "SELECT {} FROM rt.`{table}` ORDER BY {}",
            exprs.join(", "),
            order.join(", ")
        ))
        .await
        .expect("select");
    rows.into_iter().map(|r| r.unwrap()).collect()
}

async fn checksum(c: &mut Conn, table: &str) -> Option<u64> {
    let row: Row = c
        .query_first(format!("CHECKSUM TABLE rt.`{table}`"))
        .await
        .expect("checksum")
        .expect("checksum row");
    row.get::<Option<u64>, _>(1).flatten()
}

async fn assert_same(up: &mut Conn, down: &mut Conn, tables: &[&str]) {
    for c in [&mut *up, &mut *down] {
        c.query_drop("SET time_zone = '+00:00'").await.expect("tz");
    }
    for t in tables {
        let a = table_rows(up, t).await;
        let b = table_rows(down, t).await;
        assert_eq!(a.len(), b.len(), "row count of {t}");
        for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
            assert_eq!(ra, rb, "{t} row {i}");
        }
        let (ca, cb) = (checksum(up, t).await, checksum(down, t).await);
        assert!(ca.is_some(), "CHECKSUM TABLE {t}");
        assert_eq!(ca, cb, "CHECKSUM TABLE {t}");
    }
}

async fn setup(up: &mut Conn, down: &mut Conn, tables: &[(&str, &str)]) {
    for c in [&mut *up, &mut *down] {
        c.query_drop("CREATE DATABASE rt").await.expect("create db");
        for (_, ddl) in tables {
            c.query_drop(*ddl).await.expect("create table");
        }
    }
}

async fn apply(down: &mut Conn, statements: &[String]) {
    for s in statements {
        if let Err(e) = down.query_drop(s).await {
            let shown: String = s.chars().take(300).collect();
            panic!("downstream rejected {shown}: {e}");
        }
    }
}

fn run(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

async fn all_types_roundtrip(compressed: bool) {
    let up_db = MariaDb::upstream(1);
    let down_db = MariaDb::downstream();
    let mut up = connect(&up_db).await;
    let mut down = connect(&down_db).await;
    // Big enough for the multi-MB LONGBLOB as hex.
    for c in [&mut up, &mut down] {
        c.query_drop("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
            .await
            .expect("max_allowed_packet");
    }
    if compressed {
        up.query_drop("SET GLOBAL log_bin_compress = ON, GLOBAL log_bin_compress_min_len = 10")
            .await
            .expect("log_bin_compress");
    }
    let mut up = connect(&up_db).await;
    let mut down = connect(&down_db).await;
    setup(&mut up, &mut down, TABLES).await;
    let start = master_position(&mut up).await;

    up.query_drop("SET time_zone = '+03:00'").await.expect("tz");
    for s in DML {
        up.query_drop(*s).await.expect(s);
    }
    let extra_ddl = "CREATE TABLE rt.t_after_start (id INT PRIMARY KEY)";
    up.query_drop(extra_ddl).await.expect("ddl");

    down.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("tz");
    // The compressed run applies in safe mode (UPDATE → DELETE + REPLACE, INSERT → REPLACE).
    let r = replay(&up_db, &mut down, &start, compressed).await;
    apply(&mut down, &r.statements).await;

    if compressed {
        for t in [
            compress::event_type::QUERY_COMPRESSED,
            compress::event_type::WRITE_ROWS_COMPRESSED_V1,
            compress::event_type::UPDATE_ROWS_COMPRESSED_V1,
            compress::event_type::DELETE_ROWS_COMPRESSED_V1,
        ] {
            assert!(
                r.compressed_types.contains(&t),
                "no compressed event {t} seen: {:?}",
                r.compressed_types
            );
        }
    } else {
        assert!(r.compressed_types.is_empty(), "{:?}", r.compressed_types);
    }
    assert!(
        r.queries.iter().any(|q| q == extra_ddl),
        "DDL after the start position not decoded: {:?}",
        r.queries
    );

    // Spot checks on decoded values (the quirks of crates.md §2).
    let t_int_first = r
        .changes
        .iter()
        .find_map(|(t, c)| match c {
            RowChange::Insert(row) if t == "t_int" => Some(row.clone()),
            _ => None,
        })
        .expect("t_int insert");
    assert_eq!(t_int_first[0], Value::Int(1));
    assert_eq!(t_int_first[1], Value::Year(2155));
    assert_eq!(t_int_first[3], Value::UInt(255));
    assert_eq!(t_int_first[11], Value::UInt(u64::MAX));
    assert_eq!(t_int_first[10], Value::Int(i64::MIN));
    let ts = r
        .changes
        .iter()
        .find_map(|(t, c)| match c {
            RowChange::Insert(row) if t == "t_time" => Some(row[5].clone()),
            _ => None,
        })
        .expect("t_time insert");
    assert_eq!(ts, Value::Timestamp { secs: 1, micros: 1 });

    let names: Vec<&str> = TABLES.iter().map(|(n, _)| *n).collect();
    assert_same(&mut up, &mut down, &names).await;
    let counts: Vec<i64> = vec![
        down.query_first("SELECT COUNT(*) FROM rt.t_none")
            .await
            .expect("count")
            .expect("row"),
        down.query_first("SELECT COUNT(*) FROM rt.t_none WHERE b = 'changed'")
            .await
            .expect("count")
            .expect("row"),
    ];
    assert_eq!(
        counts,
        [4, 1],
        "keyless duplicate rows: exactly one updated"
    );
    for c in [up, down] {
        c.disconnect().await.expect("disconnect");
    }
}

#[test]
fn all_types_roundtrip_through_plain_binlog() {
    run(all_types_roundtrip(false));
}

#[test]
fn all_types_roundtrip_through_compressed_binlog_in_safe_mode() {
    run(all_types_roundtrip(true));
}

#[test]
fn minimal_row_image_yields_missing_columns_and_still_hits_the_row() {
    run(async {
        let up_db = MariaDb::upstream(1);
        let down_db = MariaDb::downstream();
        let mut up = connect(&up_db).await;
        let mut down = connect(&down_db).await;
        let tables = [(
            "t_min",
            "CREATE TABLE rt.t_min (id INT PRIMARY KEY, a INT, b VARCHAR(20) DEFAULT 'dflt',
              c BLOB)",
        )];
        setup(&mut up, &mut down, &tables).await;
        let start = master_position(&mut up).await;
        up.query_drop("SET SESSION binlog_row_image = MINIMAL")
            .await
            .expect("MINIMAL");
        for s in [
            "INSERT INTO rt.t_min VALUES (1, 10, 'one', X'01'), (2, 20, 'two', X'02'),
               (3, 30, 'three', X'03')",
            "INSERT INTO rt.t_min (id, a) VALUES (4, 40)",
            "UPDATE rt.t_min SET a = a + 1 WHERE id = 2",
            "UPDATE rt.t_min SET id = 5 WHERE id = 4",
            "DELETE FROM rt.t_min WHERE id = 3",
        ] {
            up.query_drop(s).await.expect(s);
        }
        down.query_drop("SET time_zone = '+00:00'")
            .await
            .expect("tz");
        let r = replay(&up_db, &mut down, &start, false).await;
        let changes: Vec<&RowChange> = r.changes.iter().map(|(_, c)| c).collect();
        let m = Value::Missing;
        let update = changes
            .iter()
            .find(|c| matches!(c, RowChange::Update { before, .. } if before[0] == Value::Int(2)))
            .expect("update of id 2");
        assert_eq!(
            **update,
            RowChange::Update {
                before: vec![Value::Int(2), m.clone(), m.clone(), m.clone()],
                after: vec![m.clone(), Value::Int(21), m.clone(), m.clone()],
            }
        );
        assert!(
            changes
                .iter()
                .any(|c| **c
                    == RowChange::Delete(vec![Value::Int(3), m.clone(), m.clone(), m.clone()])),
            "{changes:?}"
        );
        assert!(
            r.statements
                .iter()
                .any(|s| s == "UPDATE `rt`.`t_min` SET `a`=21 WHERE `id`=2 LIMIT 1"),
            "{:?}",
            r.statements
        );
        apply(&mut down, &r.statements).await;
        assert_same(&mut up, &mut down, &["t_min"]).await;
        for c in [up, down] {
            c.disconnect().await.expect("disconnect");
        }
    });
}
