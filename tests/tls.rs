//! TLS to MariaDB through `DbConfig::security`: a real `mariadbd` serving TLS with certificates
//! made by the test (rcgen), users created `REQUIRE SSL` / `REQUIRE X509`, and connections made
//! the way dm-rs makes them (`DbConfig::connect`, which uses `DbConfig::mysql_opts`).

mod common;

use common::MariaDb;
use common::tls::TestCerts;
use dm_rs::config::{ConnectError, DbConfig, Security};
use mysql_async::prelude::Queryable;

fn db(server: &MariaDb, user: &str, password: &str, security: Option<Security>) -> DbConfig {
    DbConfig {
        host: "127.0.0.1".into(),
        port: server.port,
        user: user.into(),
        password: password.into(),
        security,
        ..DbConfig::default()
    }
}

async fn root_exec(server: &MariaDb, sql: &[String]) {
    let mut c = mysql_async::Conn::from_url(server.url())
        .await
        .expect("root connects without TLS");
    for s in sql {
        c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let _ = c.disconnect().await;
}

async fn ssl_cipher(db: &DbConfig) -> Result<String, ConnectError> {
    let mut c = db.connect("target-database", Vec::new()).await?;
    let row: Option<(String, String)> = c
        .query_first("SHOW STATUS LIKE 'Ssl_cipher'")
        .await
        .expect("SHOW STATUS");
    let _ = c.disconnect().await;
    Ok(row.map(|(_, v)| v).unwrap_or_default())
}

fn refused(r: Result<String, ConnectError>, what: &str) -> String {
    match r {
        Ok(cipher) => panic!("{what}: connected (cipher {cipher:?})"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn require_ssl_user_connects_with_security_and_is_refused_without() {
    let certs = TestCerts::generate();
    let server = MariaDb::downstream_tls(&certs);
    root_exec(
        &server,
        &TestCerts::create_user_sql("tls_user", "tls-pw", false),
    )
    .await;

    // (a) ssl-ca only: TLS, the server verified against our CA.
    let with_tls = db(
        &server,
        "tls_user",
        "tls-pw",
        Some(certs.security_ca_only()),
    );
    let cipher = ssl_cipher(&with_tls)
        .await
        .unwrap_or_else(|e| panic!("TLS connect: {e}\n{}", server.error_log()));
    assert!(!cipher.is_empty(), "Ssl_cipher is empty over TLS");

    // (b) no security block (or an empty one): plain TCP, which the user may not use.
    for security in [None, Some(Security::default())] {
        let msg = refused(
            ssl_cipher(&db(&server, "tls_user", "tls-pw", security)).await,
            "REQUIRE SSL user without TLS",
        );
        assert!(msg.contains("Access denied"), "{msg}");
    }

    // A server whose certificate is not from the trusted CA is refused by the client.
    let other = TestCerts::generate_named("some other CA");
    let msg = refused(
        ssl_cipher(&db(
            &server,
            "tls_user",
            "tls-pw",
            Some(other.security_ca_only()),
        ))
        .await,
        "server certificate from an untrusted CA",
    );
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
}

#[tokio::test]
async fn require_x509_user_needs_the_client_certificate() {
    let certs = TestCerts::generate();
    let server = MariaDb::upstream_tls(7, &certs);
    root_exec(
        &server,
        &TestCerts::create_user_sql("x509_user", "x-pw", true),
    )
    .await;

    let with_cert = db(
        &server,
        "x509_user",
        "x-pw",
        Some(certs.security_with_client()),
    );
    let cipher = ssl_cipher(&with_cert)
        .await
        .unwrap_or_else(|e| panic!("TLS + client certificate: {e}\n{}", server.error_log()));
    assert!(!cipher.is_empty());

    // TLS without a client certificate is not enough for REQUIRE X509.
    let msg = refused(
        ssl_cipher(&db(
            &server,
            "x509_user",
            "x-pw",
            Some(certs.security_ca_only()),
        ))
        .await,
        "REQUIRE X509 user without a client certificate",
    );
    assert!(msg.contains("Access denied"), "{msg}");
}

#[tokio::test]
async fn an_unreadable_tls_file_names_the_key_and_the_file() {
    let certs = TestCerts::generate();
    let mut security = certs.security_with_client();
    security.ssl_key = certs
        .dir
        .path()
        .join("missing-key.pem")
        .display()
        .to_string();
    // Nothing listens on the port: the file check must fail before any dialling.
    let d = DbConfig {
        host: "127.0.0.1".into(),
        port: common::free_port(),
        user: "u".into(),
        security: Some(security.clone()),
        ..DbConfig::default()
    };
    match d.connect("from", Vec::new()).await {
        Err(ConnectError::Config(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("[code=11112] from.security.ssl-key")
                    && msg.contains(&security.ssl_key),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test]
async fn the_precheck_reaches_a_require_ssl_downstream_through_security() {
    let certs = TestCerts::generate();
    let server = MariaDb::downstream_tls(&certs);
    root_exec(
        &server,
        &TestCerts::create_user_sql("tls_user", "tls-pw", false),
    )
    .await;
    let task = |security: &str| {
        let y = format!(
            "name: t\ntask-mode: incremental\ntarget-database:\n  host: 127.0.0.1\n  port: {}\n  user: tls_user\n  password: tls-pw\n{security}mysql-instances:\n  - source-id: s1\n    meta: {{binlog-gtid: 0-1-1}}\n",
            server.port
        );
        match dm_rs::config::parse_task(y.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    };
    let with_tls = task(&format!(
        "  security:\n    ssl-ca: {}\n",
        certs.ca.display()
    ));
    let report = dm_rs::master::precheck(&with_tls, &[])
        .await
        .unwrap_or_default();
    assert!(
        report.passed() && !report.items.is_empty(),
        "{}",
        report.to_dm_json(10, 10)
    );
    let report = dm_rs::master::precheck(&task(""), &[])
        .await
        .unwrap_or_default();
    assert!(
        !report.passed(),
        "plain TCP must be refused for a REQUIRE SSL user"
    );
}

/// An upstream and a downstream that require TLS of the user `dm` (password `dm-pw`).
fn tls_pair(server_id: u32) -> (TestCerts, MariaDb, MariaDb) {
    let certs = TestCerts::generate();
    let (up, down) = std::thread::scope(|s| {
        let up = s.spawn(|| MariaDb::upstream_tls(server_id, &certs));
        let down = s.spawn(|| MariaDb::downstream_tls(&certs));
        (up.join().unwrap(), down.join().unwrap())
    });
    for url in [&up.url(), &down.url()] {
        common::sql::exec(url, &TestCerts::create_user_sql("dm", "dm-pw", false));
    }
    (certs, up, down)
}

/// Writes the source file of `source_id` (user `dm` on `up` over TLS with the CA `ca`) and the
/// task file `task` into `dir`, starts a dm-master with a worker, creates the source and starts
/// the task.
fn start_over_tls(
    dir: &std::path::Path,
    source_id: &str,
    up: &MariaDb,
    ca: &str,
    task: &str,
) -> common::cluster::Master {
    use common::cluster::{Master, dmctl};

    let source = dir.join("source.yaml");
    std::fs::write(
        &source,
        format!(
            "source-id: {source_id}\nfrom:\n  host: 127.0.0.1\n  port: {}\n  user: dm\n  password: dm-pw\n  security:\n    ssl-ca: {ca}\n",
            up.port
        ),
    )
    .unwrap();
    let task_file = dir.join("task.yaml");
    std::fs::write(&task_file, task).unwrap();
    let master = Master::start(dir, true);
    for args in [
        vec!["operate-source", "create", source.to_str().unwrap()],
        vec!["start-task", task_file.to_str().unwrap()],
    ] {
        let out = dmctl(&master.addr, &args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    }
    master
}

/// A whole task over TLS: the source's and the target's users may only connect with TLS
/// (`REQUIRE SSL`), so replicated rows prove every connection of the task (precheck, binlog
/// stream, apply, checkpoint) used it.
#[test]
fn a_task_with_security_replicates_over_tls() {
    use common::check::{same_table, wait_synced};
    use common::sql::{exec, master_pos};

    let (certs, up, down) = tls_pair(41);
    let (u, d) = (up.url(), down.url());
    exec(
        &u,
        &[
            "CREATE DATABASE secure",
            "CREATE TABLE secure.t (id INT PRIMARY KEY, v VARCHAR(20))",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE secure",
            "CREATE TABLE secure.t (id INT PRIMARY KEY, v VARCHAR(20))",
        ],
    );
    let ca = certs.security_ca_only().ssl_ca;
    let dir = tempfile::tempdir().unwrap();
    let (file, pos) = master_pos(&u);
    let master = start_over_tls(
        dir.path(),
        "tls-01",
        &up,
        &ca,
        &format!(
            "name: over-tls\ntask-mode: incremental\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: dm\n  password: dm-pw\n  security:\n    ssl-ca: {ca}\n\
mysql-instances:\n  - source-id: tls-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: only\n\
block-allow-list:\n  only:\n    do-dbs: [secure]\n",
            down.port
        ),
    );
    exec(
        &u,
        &[
            "INSERT INTO secure.t VALUES (1, 'over'), (2, 'tls')",
            "UPDATE secure.t SET v = 'TLS' WHERE id = 2",
        ],
    );
    let st = wait_synced(&master.addr, "over-tls", &u);
    assert_eq!(st["stage"], "Running", "{st:#}");
    same_table(&u, &d, "secure.t", "secure.t", "over TLS");
}

/// A `full` task whose source user may only connect with TLS: the dump cannot use its narrow
/// client (plain TCP only) and reads through the driver's TLS connections instead; the rows
/// arrive whole.
#[test]
fn a_full_task_dumps_over_tls_through_the_driver() {
    use common::check::{checksum, subtask};
    use common::sql::exec;

    let (certs, up, down) = tls_pair(42);
    let (u, d) = (up.url(), down.url());
    let rows: Vec<String> = (1..=3000)
        .map(|k| format!("({k}, 'row {k}', NULL)"))
        .collect();
    exec(
        &u,
        &[
            "CREATE DATABASE securefull".to_string(),
            "CREATE TABLE securefull.t (id INT PRIMARY KEY, v VARCHAR(20), n INT)".to_string(),
            format!("INSERT INTO securefull.t VALUES {}", rows.join(",")),
        ],
    );
    let ca = certs.security_ca_only().ssl_ca;
    let dir = tempfile::tempdir().unwrap();
    let master = start_over_tls(
        dir.path(),
        "tls-02",
        &up,
        &ca,
        &format!(
            "name: full-tls\ntask-mode: full\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: dm\n  password: dm-pw\n  security:\n    ssl-ca: {ca}\n\
mysql-instances:\n  - source-id: tls-02\n    block-allow-list: only\n    mydumper-config-name: d\n    loader-config-name: l\n\
block-allow-list:\n  only:\n    do-dbs: [securefull]\n\
mydumpers:\n  d:\n    threads: 2\n    rows: 500\n\
loaders:\n  l:\n    pool-size: 2\n    dir: {}\n",
            down.port,
            dir.path().join("dumped").display()
        ),
    );
    let t = std::time::Instant::now();
    loop {
        let st = subtask(&master.addr, "full-tls");
        if st["stage"] == "Finished" {
            break;
        }
        assert!(
            st["stage"] != "Paused" && t.elapsed() < std::time::Duration::from_secs(120),
            "{st:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(checksum(&u, "securefull.t"), checksum(&d, "securefull.t"));
}
