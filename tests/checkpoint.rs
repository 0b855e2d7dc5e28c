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
        ck.clear(&mut c).await.unwrap();
        assert_eq!(
            ck.load(&mut c).await.unwrap(),
            None,
            "--remove-meta clears it"
        );
    });
}
