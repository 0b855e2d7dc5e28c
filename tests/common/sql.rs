//! Small SQL helpers the integration tests share: a runtime, statements, the binlog position.
#![allow(dead_code)]

use mysql_async::prelude::*;

/// A current-thread tokio runtime for one blocking call.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs each statement on a fresh connection to `url`; panics naming the failing one.
pub fn exec<S: AsRef<str>>(url: &str, sqls: &[S]) {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.expect("connect");
        for s in sqls {
            c.query_drop(s.as_ref())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", s.as_ref()));
        }
        c.disconnect().await.expect("disconnect");
    })
}

/// The upstream's `SHOW MASTER STATUS` (file, position).
pub fn master_pos(url: &str) -> (String, u64) {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.expect("connect");
        let row: mysql_async::Row = c
            .query_first("SHOW MASTER STATUS")
            .await
            .expect("SHOW MASTER STATUS")
            .expect("binlog is on");
        let r = (
            row.get::<String, _>(0).expect("file"),
            row.get::<u64, _>(1).expect("position"),
        );
        c.disconnect().await.expect("disconnect");
        r
    })
}
