//! The MariaDB test harness works: real upstream and downstream servers, binlog on in ROW format,
//! rows written and read back, and no mariadbd left behind (also when a test panics).

mod common;

use common::{MariaDb, process_alive};
use mysql_async::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn upstream_and_downstream_round_trip_rows_and_upstream_logs_row_binlog() {
    let (up, down) = MariaDb::pair(101);
    let (up_pid, down_pid) = (up.pid(), down.pid());
    assert!(process_alive(up_pid) && process_alive(down_pid));

    rt().block_on(async {
        let mut u = mysql_async::Conn::from_url(up.url()).await.unwrap();
        let vars: Vec<(String, String)> = u
            .query(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
                 ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','server_id')",
            )
            .await
            .unwrap();
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("log_bin"), "ON");
        assert_eq!(get("binlog_format"), "ROW");
        assert_eq!(get("binlog_row_image"), "FULL");
        assert_eq!(get("binlog_row_metadata"), "FULL");
        assert_eq!(get("server_id"), "101");

        u.query_drop("CREATE DATABASE shop").await.unwrap();
        u.query_drop("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(32), qty INT)")
            .await
            .unwrap();
        u.exec_batch(
            "INSERT INTO shop.orders VALUES (?, ?, ?)",
            (1..=100).map(|i| (i, format!("item-{i}"), i * 2)),
        )
        .await
        .unwrap();
        let (n, sum): (i64, i64) = u
            .query_first("SELECT COUNT(*), CAST(SUM(qty) AS SIGNED) FROM shop.orders")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n, sum), (100, 10100));
        // The writes are in the binary log as row events.
        let logs: Vec<mysql_async::Row> = u.query("SHOW BINARY LOGS").await.unwrap();
        assert!(!logs.is_empty());
        let (file, _pos): (String, u64) = {
            let r: mysql_async::Row = u.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
            (r.get(0).unwrap(), r.get(1).unwrap())
        };
        let events: Vec<mysql_async::Row> = u
            .query(format!("SHOW BINLOG EVENTS IN '{file}'"))
            .await
            .unwrap();
        let types: Vec<String> = events
            .iter()
            .map(|r| r.get::<String, _>(2).unwrap())
            .collect();
        assert!(
            types.iter().any(|t| t.starts_with("Write_rows")),
            "{types:?}"
        );
        u.disconnect().await.unwrap();

        let mut d = mysql_async::Conn::from_url(down.url()).await.unwrap();
        let log_bin: String = d.query_first("SELECT @@log_bin").await.unwrap().unwrap();
        assert_eq!(log_bin, "0");
        d.query_drop("CREATE DATABASE shop").await.unwrap();
        d.query_drop("CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(32), qty INT)")
            .await
            .unwrap();
        d.query_drop("INSERT INTO shop.orders VALUES (7, 'x', 3)")
            .await
            .unwrap();
        let row: (i32, String, i32) = d
            .query_first("SELECT * FROM shop.orders")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row, (7, "x".to_string(), 3));
        d.disconnect().await.unwrap();
    });

    drop(up);
    drop(down);
    assert!(
        !process_alive(up_pid),
        "upstream mariadbd {up_pid} still running"
    );
    assert!(
        !process_alive(down_pid),
        "downstream mariadbd {down_pid} still running"
    );
}

#[test]
fn a_panicking_test_leaves_no_mariadbd_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let db = MariaDb::downstream();
        tx.send(db.pid()).unwrap();
        panic!("simulated test failure while a server runs");
    });
    assert!(result.is_err());
    let pid = rx.recv().unwrap();
    assert!(pid > 0);
    assert!(!process_alive(pid), "mariadbd {pid} survived the panic");
}
