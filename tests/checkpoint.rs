//! The sync unit's checkpoint table on a real MariaDB: the global point round-trips, and a
//! queue's committed position only moves forward (a replay after a crash must not lower what
//! an earlier run committed, or the next restart would re-apply rows).

mod common;

use common::MariaDb;
use dm_rs::binlog::Position;
use dm_rs::worker::units::sync::checkpoint::CheckpointTable;
use mysql_async::prelude::*;

#[test]
fn queue_positions_only_move_forward_and_the_global_point_round_trips() {
    let down = MariaDb::downstream();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let ck = CheckpointTable::new("dm_meta", "t", "src-1");
        ck.create(&mut c).await.unwrap();
        assert_eq!(ck.load(&mut c).await.unwrap(), None, "fresh: no checkpoint");
        let p = |pos| Position {
            file: "mariadb-bin.000002".into(),
            pos,
        };
        ck.save_global(&mut c, &p(100), "0-1-5", None)
            .await
            .unwrap();
        for (pos, file) in [
            (500, "mariadb-bin.000002"),
            (300, "mariadb-bin.000002"),
            (50, "mariadb-bin.000001"),
        ] {
            let q = Position {
                file: file.into(),
                pos,
            };
            c.query_drop(format!("BEGIN; {}; COMMIT", ck.queue_sql(1, 4, &q)))
                .await
                .unwrap();
        }
        let saved = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(saved.global, p(100));
        assert_eq!(saved.gtid, "0-1-5");
        assert_eq!(
            saved.exit_safe,
            Some(p(500)),
            "the furthest position is kept"
        );
        assert_eq!(saved.queues.get(&4).and_then(|m| m.get(&1)), Some(&p(500)));
        let q = Position {
            file: "mariadb-bin.000003".into(),
            pos: 4,
        };
        c.query_drop(ck.queue_sql(1, 4, &q)).await.unwrap();
        let saved = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(
            saved.exit_safe,
            Some(q.clone()),
            "a later file moves it forward"
        );
        // A --remove-meta start: the claim clears the checkpoint.
        let mut ck = ck;
        let reset = ck.claim(&mut c, "w", Some("start-1"), 4).await.unwrap();
        assert!(reset.cleared);
        assert_eq!(
            ck.load(&mut c).await.unwrap(),
            None,
            "--remove-meta clears it"
        );
    });
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_newer_claim_fences_the_older_runs_writes() {
    let down = MariaDb::downstream();
    rt().block_on(async {
        let mut c1 = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let mut c2 = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let mut old = CheckpointTable::new("dm_meta", "t", "src-1");
        old.create(&mut c1).await.unwrap();
        let first = old.claim(&mut c1, "worker-a", None, 1).await.unwrap();
        let p = Position {
            file: "bin.000001".into(),
            pos: 100,
        };
        c1.query_drop("CREATE TABLE dm_meta.rows_t (a INT)").await.unwrap();
        let write = |ck: &CheckpointTable, v: i32| {
            format!(
                "BEGIN; INSERT INTO dm_meta.rows_t VALUES ({v}); {}; COMMIT",
                ck.queue_sql(0, 1, &p)
            )
        };
        c1.query_drop(write(&old, 1)).await.unwrap();
        old.save_global(&mut c1, &p, "", None).await.unwrap();

        let mut new = CheckpointTable::new("dm_meta", "t", "src-1");
        let second = new.claim(&mut c2, "worker-b", None, 1).await.unwrap();
        assert_eq!(second.epoch, first.epoch + 1);
        assert!(!second.cleared);

        // The old run's late apply and checkpoint writes are refused by the downstream.
        let e = c1.query_drop(write(&old, 2)).await.unwrap_err();
        assert!(
            matches!(&e, mysql_async::Error::Server(s) if s.code == dm_rs::worker::units::sync::checkpoint::GUARD_FAILED),
            "{e}"
        );
        c1.query_drop("ROLLBACK").await.unwrap();
        let e = old.save_global(&mut c1, &p, "", None).await.unwrap_err();
        assert_eq!(e.code, dm_rs::worker::error::code::FENCED, "{e}");
        // The new run writes.
        c2.query_drop(write(&new, 3)).await.unwrap();
        let rows: Vec<i32> = c2
            .query("SELECT a FROM dm_meta.rows_t ORDER BY a")
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3], "the fenced write is not there");
    });
}

#[test]
fn remove_meta_clears_once_per_start_token() {
    let down = MariaDb::downstream();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let mut ck = CheckpointTable::new("dm_meta", "t2", "src-1");
        ck.create(&mut c).await.unwrap();
        ck.claim(&mut c, "w", None, 4).await.unwrap();
        let p = Position {
            file: "bin.000001".into(),
            pos: 200,
        };
        ck.save_global(&mut c, &p, "", None).await.unwrap();
        let r = ck.claim(&mut c, "w", Some("start-5"), 4).await.unwrap();
        assert!(r.cleared, "the first run of a remove-meta start clears");
        assert_eq!(ck.load(&mut c).await.unwrap(), None);
        ck.save_global(&mut c, &p, "", None).await.unwrap();
        for _ in 0..3 {
            // A worker restart, a fence, a rebind: the same start again.
            let r = ck.claim(&mut c, "w2", Some("start-5"), 4).await.unwrap();
            assert!(!r.cleared);
            assert_eq!(ck.load(&mut c).await.unwrap().unwrap().global, p);
        }
        let r = ck.claim(&mut c, "w", Some("start-6"), 4).await.unwrap();
        assert!(r.cleared, "a new remove-meta start clears again");
        assert!(r.epoch > 4, "the epoch keeps growing across a reset");
    });
}

#[test]
fn a_ddl_marker_and_table_structures_round_trip() {
    use dm_rs::rules::TableName;
    use dm_rs::worker::units::sync::checkpoint::SavePoint;
    let down = MariaDb::downstream();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let mut ck = CheckpointTable::new("dm_meta", "t3", "src-1");
        ck.create(&mut c).await.unwrap();
        ck.claim(&mut c, "w", None, 4).await.unwrap();
        let g = Position {
            file: "bin.000001".into(),
            pos: 300,
        };
        let ddl = Position {
            file: "bin.000001".into(),
            pos: 400,
        };
        let t = TableName::new("db", "orders");
        ck.save(
            &mut c,
            &SavePoint {
                global: Some(&g),
                gtid: "0-1-9",
                tables: vec![(t.clone(), Some("{\"columns\":[]}".into()))],
                ..SavePoint::default()
            },
        )
        .await
        .unwrap();
        ck.begin_ddl(&mut c, &ddl, "ALTER TABLE orders ADD c INT")
            .await
            .unwrap();
        let s = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(s.ddl_in_flight, Some(ddl.clone()));
        assert_eq!(
            s.tables.get(&t).map(String::as_str),
            Some("{\"columns\":[]}")
        );
        ck.save(
            &mut c,
            &SavePoint {
                global: Some(&ddl),
                gtid: "0-1-10",
                tables: vec![(t.clone(), None)],
                clear_ddl: true,
                ..SavePoint::default()
            },
        )
        .await
        .unwrap();
        let s = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(s.global, ddl);
        assert_eq!(
            s.ddl_in_flight, None,
            "the save past the DDL clears its marker"
        );
        assert!(
            s.tables.is_empty(),
            "a dropped table's structure is deleted"
        );
    });
}
