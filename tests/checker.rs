//! Precheck against real MariaDB servers: a well-configured upstream passes, each misconfiguration
//! fails its own item with an instruction, privileges (also through a default role) are read
//! from SHOW GRANTS, ignore-checking-items skips, and unreachable servers are one failed item.

mod common;

use common::{MariaDb, free_port};
use dm_rs::checker::{CheckItem, CheckReport, CheckState, check_source, check_target, names};
use mysql_async::Opts;
use mysql_async::prelude::Queryable;

fn opts(url: &str) -> Opts {
    Opts::from_url(url).expect("valid url")
}

async fn sql(db: &MariaDb, stmts: &[&str]) {
    let mut conn = mysql_async::Conn::new(opts(&db.url()))
        .await
        .expect("connect as root");
    for s in stmts {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    conn.disconnect().await.expect("disconnect");
}

fn item<'a>(r: &'a CheckReport, name: &str) -> &'a CheckItem {
    r.items
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name} in {r:#?}"))
}

fn names_of(r: &CheckReport) -> Vec<&str> {
    r.items.iter().map(|i| i.name.as_str()).collect()
}

#[tokio::test]
async fn configured_upstream_passes_every_item() {
    let up = MariaDb::upstream(11);
    let r = check_source("s1", opts(&up.url()), "all", &[]).await;
    assert!(r.passed(), "{}", r.to_text());
    assert_eq!(
        names_of(&r),
        [
            "version",
            "dump_privilege",
            "server_id",
            "binlog_enable",
            "binlog_format",
            "binlog_row_image",
            "binlog_row_metadata",
            "replication_privilege"
        ]
    );
    assert_eq!(r.counts(), (8, 8, 0, 0), "{}", r.to_text());
    let extra = format!("address of db instance - 127.0.0.1:{}", up.port);
    assert!(r.items.iter().all(|i| i.extra == extra));
    assert_eq!(r.to_text(), "");

    // incremental mode leaves the dump privilege out
    let r = check_source("s1", opts(&up.url()), "incremental", &[]).await;
    assert!(!names_of(&r).contains(&"dump_privilege"));
    assert_eq!(r.counts(), (7, 7, 0, 0));
}

#[tokio::test]
async fn ignore_checking_items_skips() {
    let up = MariaDb::upstream(12);
    sql(&up, &["SET GLOBAL binlog_format = 'STATEMENT'"]).await;
    let ignore = vec!["binlog_format".to_string(), "dump_privilege".to_string()];
    let r = check_source("s1", opts(&up.url()), "all", &ignore).await;
    assert!(r.passed(), "{}", r.to_text());
    assert!(!names_of(&r).contains(&"binlog_format"));
    assert!(!names_of(&r).contains(&"dump_privilege"));
    assert_eq!(r.counts().0, 6);

    let r = check_source("s1", opts(&up.url()), "all", &["all".to_string()]).await;
    assert!(r.items.is_empty());
    assert!(r.passed());

    // "all" does not even connect
    let closed = format!("mysql://root@127.0.0.1:{}", free_port());
    let r = check_source("s1", opts(&closed), "all", &["all".to_string()]).await;
    assert!(r.items.is_empty());
}

#[tokio::test]
async fn statement_binlog_format_fails_with_instruction() {
    let up = MariaDb::upstream(13);
    sql(&up, &["SET GLOBAL binlog_format = 'STATEMENT'"]).await;
    let r = check_source("s1", opts(&up.url()), "incremental", &[]).await;
    assert!(!r.passed());
    assert_eq!(r.counts(), (7, 6, 1, 0), "{}", r.to_text());
    let i = item(&r, names::BINLOG_FORMAT);
    assert_eq!(i.state, CheckState::Failure);
    assert_eq!(i.message, "binlog_format is STATEMENT, and should be ROW");
    assert_eq!(
        i.instruction,
        "set `binlog_format = ROW` under [mariadbd] in my.cnf and restart, or run `SET GLOBAL binlog_format = 'ROW'` (new sessions only)"
    );
    let text = r.to_text();
    assert!(text.starts_with("[failure] binlog_format"), "{text}");
    assert!(text.contains("SET GLOBAL binlog_format = 'ROW'"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&r.to_dm_json(10, 10)).expect("DM JSON parses");
    assert_eq!(json["summary"]["passed"], false);
    assert_eq!(json["summary"]["failed"], 1);
    assert_eq!(json["results"][0]["name"], "binlog_format");
    assert_eq!(json["results"][0]["state"], "fail");
}

#[tokio::test]
async fn minimal_row_image_fails_and_row_metadata_warns() {
    let up = MariaDb::upstream(14);
    sql(
        &up,
        &[
            "SET GLOBAL binlog_row_image = 'MINIMAL'",
            "SET GLOBAL binlog_row_metadata = 'MINIMAL'",
        ],
    )
    .await;
    let r = check_source("s1", opts(&up.url()), "incremental", &[]).await;
    let i = item(&r, names::BINLOG_ROW_IMAGE);
    assert_eq!(i.state, CheckState::Failure);
    assert_eq!(i.message, "binlog_row_image is MINIMAL, and should be FULL");
    assert!(
        i.instruction
            .contains("SET GLOBAL binlog_row_image = 'FULL'")
    );
    let m = item(&r, names::BINLOG_ROW_METADATA);
    assert_eq!(m.state, CheckState::Warning);
    assert!(m.instruction.contains("binlog_row_metadata = FULL"));
    assert_eq!(r.counts(), (7, 5, 1, 1), "{}", r.to_text());
    assert!(!r.passed());
}

#[tokio::test]
async fn privileges_are_read_from_show_grants() {
    let up = MariaDb::upstream(15);
    sql(
        &up,
        &[
            "CREATE USER 'ro'@'127.0.0.1' IDENTIFIED BY 'ro-pw'",
            "GRANT SELECT ON *.* TO 'ro'@'127.0.0.1'",
            "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw'",
            "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'repl'@'127.0.0.1'",
            "CREATE ROLE dm_repl",
            "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO dm_repl",
            "CREATE USER 'viarole'@'127.0.0.1' IDENTIFIED BY 'r-pw'",
            "GRANT dm_repl TO 'viarole'@'127.0.0.1'",
            "SET DEFAULT ROLE dm_repl FOR 'viarole'@'127.0.0.1'",
            "CREATE USER 'nodefault'@'127.0.0.1' IDENTIFIED BY 'n-pw'",
            "GRANT dm_repl TO 'nodefault'@'127.0.0.1'",
        ],
    )
    .await;
    let url = |user: &str, pw: &str| format!("mysql://{user}:{pw}@127.0.0.1:{}", up.port);

    // SELECT only: replication fails with the GRANT to run, dump lacks RELOAD
    let r = check_source("s1", opts(&url("ro", "ro-pw")), "all", &[]).await;
    let i = item(&r, names::REPLICATION_PRIVILEGE);
    assert_eq!(i.state, CheckState::Failure, "{i:?}");
    assert_eq!(
        i.message,
        "lack of REPLICATION SLAVE,BINLOG MONITOR privilege"
    );
    assert_eq!(
        i.instruction,
        "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `ro`@`127.0.0.1`;"
    );
    let d = item(&r, names::DUMP_PRIVILEGE);
    assert_eq!(d.state, CheckState::Failure);
    assert_eq!(d.message, "lack of RELOAD privilege");
    // the variables are still readable as that user
    assert_eq!(item(&r, names::BINLOG_FORMAT).state, CheckState::Success);

    // exactly the needed privileges
    let r = check_source("s1", opts(&url("repl", "repl-pw")), "all", &[]).await;
    assert!(r.passed(), "{}", r.to_text());

    // through the default role
    let r = check_source("s1", opts(&url("viarole", "r-pw")), "incremental", &[]).await;
    let i = item(&r, names::REPLICATION_PRIVILEGE);
    assert_eq!(i.state, CheckState::Success, "{i:?}");

    // a granted but inactive role does not count
    let r = check_source("s1", opts(&url("nodefault", "n-pw")), "incremental", &[]).await;
    assert_eq!(
        item(&r, names::REPLICATION_PRIVILEGE).state,
        CheckState::Failure
    );
}

#[tokio::test]
async fn downstream_without_binlog_fails_binlog_enable_and_passes_target_check() {
    let down = MariaDb::downstream();
    let r = check_source("s1", opts(&down.url()), "incremental", &[]).await;
    let i = item(&r, names::BINLOG_ENABLE);
    assert_eq!(i.state, CheckState::Failure);
    assert_eq!(i.message, "log_bin is OFF, and should be ON");
    assert!(i.instruction.contains("log_bin"));
    assert!(!r.passed());

    let t = check_target(opts(&down.url()), "dm_meta").await;
    assert!(t.passed(), "{}", t.to_text());
    assert_eq!(t.counts(), (2, 2, 0, 0));
    assert_eq!(
        names_of(&t),
        [names::TARGET_CONNECTION, names::TARGET_PRIVILEGE]
    );
    let mut conn = mysql_async::Conn::new(opts(&down.url()))
        .await
        .expect("connect");
    let dbs: Vec<String> = conn.query("SHOW DATABASES").await.expect("show databases");
    assert!(dbs.contains(&"dm_meta".to_string()), "{dbs:?}");
    let tables: Vec<String> = conn
        .query("SHOW TABLES FROM dm_meta")
        .await
        .expect("show tables");
    assert!(tables.is_empty(), "scratch table left behind: {tables:?}");
    conn.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn target_user_without_create_fails_target_privilege() {
    let down = MariaDb::downstream();
    sql(
        &down,
        &[
            "CREATE USER 'w'@'127.0.0.1' IDENTIFIED BY 'w-pw'",
            "GRANT SELECT, INSERT ON *.* TO 'w'@'127.0.0.1'",
        ],
    )
    .await;
    let url = format!("mysql://w:w-pw@127.0.0.1:{}", down.port);
    let t = check_target(opts(&url), "dm_meta").await;
    assert!(!t.passed());
    let i = item(&t, names::TARGET_PRIVILEGE);
    assert_eq!(i.state, CheckState::Failure);
    assert!(
        i.message
            .contains("CREATE DATABASE IF NOT EXISTS `dm_meta`"),
        "{i:?}"
    );
    assert!(i.instruction.starts_with("GRANT CREATE"), "{i:?}");
    assert_eq!(
        item(&t, names::TARGET_CONNECTION).state,
        CheckState::Success
    );

    // wrong password: a connection failure naming the address
    let bad = format!("mysql://w:nope@127.0.0.1:{}", down.port);
    let t = check_target(opts(&bad), "dm_meta").await;
    assert_eq!(t.items.len(), 1);
    assert_eq!(t.items[0].name, names::TARGET_CONNECTION);
    assert!(
        t.items[0].message.contains("Access denied"),
        "{:?}",
        t.items[0]
    );
}

#[tokio::test]
async fn unreachable_servers_give_one_failure() {
    let port = free_port();
    let url = format!("mysql://root@127.0.0.1:{port}");
    let r = check_source("mysql-replica-01", opts(&url), "all", &[]).await;
    assert_eq!(r.items.len(), 1, "{r:#?}");
    let i = &r.items[0];
    assert_eq!(i.name, names::SOURCE_CONNECTION);
    assert_eq!(i.state, CheckState::Failure);
    assert!(
        i.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        i.message
    );
    assert_eq!(
        i.extra,
        format!("address of db instance - 127.0.0.1:{port}")
    );
    assert!(!r.passed());
    assert_eq!(r.counts(), (1, 0, 1, 0));

    let t = check_target(opts(&url), "dm_meta").await;
    assert_eq!(t.items.len(), 1);
    assert_eq!(t.items[0].name, names::TARGET_CONNECTION);
    assert_eq!(t.items[0].state, CheckState::Failure);
    assert!(!t.passed());

    let mut all = r;
    all.merge(t);
    assert_eq!(all.counts(), (2, 0, 2, 0));
}

/// The full-mode precheck of start-task / check-task (`dm_rs::master::precheck`) against a real
/// upstream and downstream: a dump user without RELOAD fails `dump_privilege`, naming it; with
/// `--consistency none` the same user passes; a keyless table is a `table_schema` warning
/// naming it; `conn_number` compares both servers' `max_connections`; no replication item runs.
#[tokio::test]
async fn full_mode_precheck_names_dump_privilege_and_keyless_tables() {
    use dm_rs::config::{parse_source, parse_task};
    let (up, down) = MariaDb::pair(16);
    sql(
        &up,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.orders (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE shop.events (id INT NULL, v INT, UNIQUE KEY (id))",
            "CREATE TABLE shop.log (msg TEXT)",
            "CREATE DATABASE other",
            "CREATE TABLE other.nokey (x INT)",
            "CREATE USER 'dumper'@'127.0.0.1' IDENTIFIED BY 'd-pw'",
            "GRANT SELECT ON shop.* TO 'dumper'@'127.0.0.1'",
        ],
    )
    .await;
    let source = parse_source(
        format!(
            "source-id: s1\nfrom: {{host: 127.0.0.1, port: {}, user: dumper, password: d-pw}}\n",
            up.port
        )
        .as_bytes(),
    )
    .expect("source parses")
    .config;
    let task = |extra_args: &str| {
        let text = format!(
            "name: full1\ntask-mode: full\ntarget-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n\
             block-allow-list:\n  shop: {{do-dbs: [shop]}}\n\
             mydumpers:\n  d: {{threads: 4, extra-args: \"{extra_args}\"}}\n\
             mysql-instances:\n  - source-id: s1\n    block-allow-list: shop\n    mydumper-config-name: d\n",
            down.port
        );
        parse_task(text.as_bytes()).expect("task parses").config
    };
    let sources = vec![("s1".to_string(), source)];

    let report = dm_rs::master::precheck(&task(""), &sources)
        .await
        .expect("a precheck ran");
    assert!(!report.passed(), "{}", report.to_text());
    let d = item(&report, names::DUMP_PRIVILEGE);
    assert_eq!(d.state, CheckState::Failure);
    assert!(d.message.starts_with("lack of RELOAD privilege"), "{d:?}");
    assert!(
        d.instruction.starts_with(
            "GRANT RELOAD ON *.* TO `dumper`@`127.0.0.1`; (RELOAD is for the global read lock"
        ),
        "{d:?}"
    );
    let json = report.to_dm_json(10, 10);
    assert!(json.contains("\"name\": \"dump_privilege\""), "{json}");
    // the block-allow-list keeps other.nokey out; shop.events' unique key is nullable
    let t = item(&report, names::TABLE_SCHEMA);
    assert_eq!(t.state, CheckState::Warning);
    assert_eq!(
        t.message,
        "primary/unique key does not exist in 2 tables: `shop`.`events`, `shop`.`log`"
    );
    let names = names_of(&report);
    for absent in [
        names::BINLOG_ENABLE,
        names::BINLOG_FORMAT,
        names::REPLICATION_PRIVILEGE,
        names::SERVER_ID,
    ] {
        assert!(!names.contains(&absent), "{absent} in {names:?}");
    }
    let conns: Vec<&CheckItem> = report
        .items
        .iter()
        .filter(|i| i.name == names::CONN_NUMBER)
        .collect();
    assert_eq!(conns.len(), 2, "{}", report.to_text());
    assert!(conns.iter().all(|i| i.state == CheckState::Success));

    // no lock: SELECT on the dumped tables is all it needs
    let report = dm_rs::master::precheck(&task("--consistency none"), &sources)
        .await
        .expect("a precheck ran");
    assert!(report.passed(), "{}", report.to_text());
    assert_eq!(
        item(&report, names::DUMP_PRIVILEGE).state,
        CheckState::Success
    );

    // LOCK TABLES on every dumped table for --consistency lock
    let report = dm_rs::master::precheck(&task("--consistency lock"), &sources)
        .await
        .expect("a precheck ran");
    let d = item(&report, names::DUMP_PRIVILEGE);
    assert_eq!(d.state, CheckState::Failure);
    assert!(
        d.message
            .starts_with("lack of LOCK TABLES privilege on 3 dumped tables: `shop`.`events`"),
        "{d:?}"
    );
    sql(
        &up,
        &[
            "GRANT LOCK TABLES ON shop.* TO 'dumper'@'127.0.0.1'",
            "SET GLOBAL max_connections = 10",
        ],
    )
    .await;
    let report = dm_rs::master::precheck(&task("--consistency lock -t 16"), &sources)
        .await
        .expect("a precheck ran");
    assert_eq!(
        item(&report, names::DUMP_PRIVILEGE).state,
        CheckState::Success,
        "{}",
        report.to_text()
    );
    // 16 threads + 2 > 10
    let c = report
        .items
        .iter()
        .find(|i| i.name == names::CONN_NUMBER && i.state == CheckState::Failure)
        .unwrap_or_else(|| panic!("no failed conn_number in {}", report.to_text()));
    assert_eq!(
        c.message,
        "max_connections is 10, less than the 18 connections the dump (threads + 2) opens"
    );
    assert_eq!(
        c.extra,
        format!("address of db instance - 127.0.0.1:{}", up.port)
    );
}
