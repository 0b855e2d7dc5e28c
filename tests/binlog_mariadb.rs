//! The MariaDB binlog layer against a real MariaDB: GTID events are visible (capability 4),
//! GTID_LIST and checkpoint events parse, the first rotate's name is clean, rows decode.

mod common;

use common::MariaDb;
use dm_rs::binlog::{self, Decoded, Position};
use mysql_async::binlog::events::EventData;
use mysql_async::prelude::*;

#[test]
fn reads_gtids_rotates_and_rows_from_mariadb() {
    let up = MariaDb::upstream(101);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = mysql_async::Conn::from_url(up.url()).await.unwrap();
        c.query_drop("CREATE DATABASE shop").await.unwrap();
        c.query_drop("CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
            .await
            .unwrap();
        for i in 1..=5 {
            c.exec_drop("INSERT INTO shop.t VALUES (?, ?)", (i, format!("v{i}")))
                .await
                .unwrap();
        }
        let gtid_pos: String = c
            .query_first("SELECT @@gtid_binlog_pos")
            .await
            .unwrap()
            .unwrap();
        c.disconnect().await.unwrap();

        let first = "mariadb-bin.000001";
        let opts = mysql_async::Opts::from_url(&up.url()).unwrap();
        let mut stream = binlog::open(
            opts,
            4242,
            &Position {
                file: first.into(),
                pos: 4,
            },
            true,
        )
        .await
        .unwrap();
        let (mut rotates, mut gtids, mut lists, mut rows) = (Vec::new(), Vec::new(), 0, 0usize);
        while let Some(ev) = binlog::next_event(&mut stream).await {
            let ev = ev.unwrap();
            match binlog::decode(&ev, first).unwrap() {
                Decoded::Rotate(p) => rotates.push(p),
                Decoded::Gtid(g) => gtids.push(g),
                Decoded::GtidList(_) => lists += 1,
                Decoded::Event(EventData::RowsEvent(r)) => {
                    let tme = stream.get_tme(r.table_id()).unwrap();
                    assert_eq!(tme.database_name(), "shop");
                    rows += r.rows(tme).count();
                }
                _ => {}
            }
        }
        assert_eq!(
            rotates.first(),
            Some(&Position {
                file: first.into(),
                pos: 4
            })
        );
        assert!(lists >= 1, "no GTID_LIST event");
        assert_eq!(rows, 5);
        // With capability 4 every event group carries its GTID: 2 DDL + 5 inserts at least.
        assert!(gtids.len() >= 7, "{gtids:?}");
        assert!(
            gtids
                .iter()
                .all(|g| g.gtid.server == 101 && g.gtid.domain == 0)
        );
        assert_eq!(gtids.last().unwrap().gtid.to_string(), gtid_pos);
        assert!(
            gtids.iter().filter(|g| g.is_standalone()).count() >= 2,
            "DDL are standalone"
        );
    });
}
