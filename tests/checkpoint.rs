//! The sync unit's checkpoint table on a real MariaDB: the global point round-trips, and a
//! queue's committed position only moves forward (a replay after a crash must not lower what
//! an earlier run committed, or the next restart would re-apply rows); a rebase after a
//! failover keeps the GTID marks.

mod common;

use common::MariaDb;
use dm_rs::binlog::Position;
use dm_rs::worker::units::sync::apply::Applied;
use dm_rs::worker::units::sync::checkpoint::CheckpointTable;
use dm_rs::worker::units::sync::marks::{Mark, Marks};
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
        for (pos, file, marks) in [
            (500, "mariadb-bin.000002", "0-1-9#2"),
            (300, "mariadb-bin.000002", "0-1-9#2"),
            (50, "mariadb-bin.000001", "0-1-9#2"),
        ] {
            let q = Position {
                file: file.into(),
                pos,
            };
            c.query_drop(format!("BEGIN; {}; COMMIT", ck.queue_sql(1, 4, &q, marks)))
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
        assert_eq!(
            saved.queues.get(&4).and_then(|m| m.get(&1)),
            Some(&Applied {
                pos: Some(p(500)),
                marks: Marks::parse("0-1-9#2")
            })
        );
        let q = Position {
            file: "mariadb-bin.000003".into(),
            pos: 4,
        };
        c.query_drop(ck.queue_sql(1, 4, &q, "0-1-10#1"))
            .await
            .unwrap();
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
                ck.queue_sql(0, 1, &p, "")
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
        let mark = Mark::parse("0-1-10#0");
        ck.begin_ddl(&mut c, &ddl, mark.as_ref(), "ALTER TABLE orders ADD c INT")
            .await
            .unwrap();
        let s = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(s.ddl_in_flight, Some(ddl.clone()));
        assert_eq!(s.ddl_mark, mark);
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

/// After a failover followed by GTID the stream starts on another server: the rebase moves
/// the queue rows and the DDL marker to the new start and keeps their GTID marks.
#[test]
fn a_rebase_moves_the_points_to_the_new_server_and_keeps_the_marks() {
    let down = MariaDb::downstream();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let mut ck = CheckpointTable::new("dm_meta", "t", "src-1");
        ck.create(&mut c).await.unwrap();
        ck.claim(&mut c, "worker-a", None, 2).await.unwrap();
        let old = |pos| Position {
            file: "old-bin.000007".into(),
            pos,
        };
        ck.save_global(&mut c, &old(100), "0-1-5", None)
            .await
            .unwrap();
        c.query_drop(format!(
            "BEGIN; {}; COMMIT",
            ck.queue_sql(1, 2, &old(900), "0-1-8#3")
        ))
        .await
        .unwrap();
        let mark = Mark::parse("0-1-9#0");
        ck.begin_ddl(&mut c, &old(950), mark.as_ref(), "CREATE TABLE x (a INT)")
            .await
            .unwrap();
        let new = Position {
            file: "new-bin.000001".into(),
            pos: 4321,
        };
        ck.rebase(&mut c, &new).await.unwrap();
        ck.save_global(&mut c, &new, "0-1-5", None).await.unwrap();
        let s = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(s.global, new);
        assert_eq!(
            s.queues.get(&2).and_then(|m| m.get(&1)),
            Some(&Applied {
                pos: Some(new.clone()),
                marks: Marks::parse("0-1-8#3")
            })
        );
        assert_eq!(s.ddl_in_flight, Some(new.clone()));
        assert_eq!(s.ddl_mark, mark);
        assert_eq!(s.exit_safe, None, "no position past the new start");
        // The new server's positions move the queue row forward again.
        let next = Position {
            file: "new-bin.000001".into(),
            pos: 5000,
        };
        c.query_drop(format!(
            "BEGIN; {}; COMMIT",
            ck.queue_sql(1, 2, &next, "0-1-10#1")
        ))
        .await
        .unwrap();
        let s = ck.load(&mut c).await.unwrap().unwrap();
        assert_eq!(s.exit_safe, Some(next));
    });
}
