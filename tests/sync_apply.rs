//! The applier end to end, with the real binaries and MariaDB: a downstream table without a
//! key (its upstream has a PK) under bursts of multi-row UPDATEs and DELETEs changes exactly
//! the rows they matched; rows larger than the apply byte bound, and transactions far over the
//! downstream's max_allowed_packet, replicate equal; outside safe mode a duplicate key pauses
//! the task with DM's error instead of overwriting the row; and rows whose only downstream key
//! is a NULL unique key stay exact across a kill -9 (no duplicates from the replay).
//!
//! The tests share one upstream/downstream MariaDB pair (each test has its own task, source,
//! meta schema and database), and each runs its own dm-master with an embedded worker.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::check::{query_rows, subtask};
use common::cluster::{Master, dmctl};
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

/// The pair the running tests share; started by the first, stopped when the last ends.
fn pair() -> Arc<common::SharedPair> {
    common::shared_pair(31)
}

/// Rows of a query as text (NULL as None).
fn rows(url: &str, q: &str) -> Vec<Vec<Option<String>>> {
    query_rows(url, q).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Polls `cond` every 200 ms until it gives Some, or panics after `secs` with `what` and the
/// last state it saw.
fn wait_for<T>(what: &str, secs: u64, mut cond: impl FnMut() -> Result<T, String>) -> T {
    let t = Instant::now();
    loop {
        match cond() {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    t.elapsed() < Duration::from_secs(secs),
                    "{what} (after {secs} s): {last}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the task has applied everything the upstream wrote so far.
fn wait_synced(addr: &str, task: &str, up: &str) {
    wait_for(&format!("task {task} catches up"), 90, || {
        let (f, p) = master_pos(up);
        let st = subtask(addr, task);
        assert_ne!(st["stage"], "Paused", "task {task} paused: {st:#}");
        let want = format!("({f}, {p})");
        if st["stage"] == "Running"
            && st["sync"]["syncerBinlog"] == want
            && st["sync"]["masterBinlog"] == want
        {
            Ok(())
        } else {
            Err(format!("want {want}: {st:#}"))
        }
    })
}

fn ok(out: &common::cluster::CtlOut) {
    assert_eq!(out.code, 0, "dmctl: {}\n{}", out.stdout, out.stderr);
}

/// A source and an incremental task `name` on database `db` from the current upstream
/// position, with a one-second checkpoint flush (so the first-start safe mode lasts 2 s) and
/// safe mode off, and `workers` apply queues.
fn start_task(dir: &Path, addr: &str, p: &common::SharedPair, name: &str, db: &str, workers: u32) {
    let source = dir.join("source.yaml");
    std::fs::write(
        &source,
        format!(
            "source-id: src-{name}\nfrom: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n",
            p.up.port
        ),
    )
    .unwrap();
    ok(&dmctl(
        addr,
        &["operate-source", "create", &source.display().to_string()],
    ));
    let (file, pos) = master_pos(&p.up.url());
    let task = dir.join("task.yaml");
    std::fs::write(
        &task,
        format!(
            "name: {name}\ntask-mode: incremental\nmeta-schema: meta_{name}\n\
target-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n\
mysql-instances:\n  - source-id: src-{name}\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: only\n    syncer-config-name: s\n\
block-allow-list:\n  only: {{do-dbs: [{db}]}}\n\
syncers:\n  s: {{worker-count: {workers}, batch: 100, checkpoint-flush-interval: 1, safe-mode: false}}\n",
            p.down.port
        ),
    )
    .unwrap();
    ok(&dmctl(addr, &["start-task", &task.display().to_string()]));
}

/// Runs statements in one session (so BEGIN … COMMIT spans them).
fn session(url: &str, sqls: &[String]) {
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        for s in sqls {
            c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        c.disconnect().await.unwrap();
    })
}

#[test]
fn keyless_downstream_of_a_keyed_upstream_changes_exactly_the_matched_rows() {
    let p = pair();
    let (u, d) = (p.up.url(), p.down.url());
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), true);
    // Upstream table (with a PK) and its rows exist before the task's start position; the
    // downstream copy has no key at all and one extra row of its own.
    let seed: Vec<String> = (1..=300)
        .map(|i| format!("({i}, {}, 'v{i}')", i % 10))
        .collect();
    let seed = seed.join(",");
    exec(
        &u,
        &[
            "CREATE DATABASE ka".to_string(),
            "CREATE TABLE ka.t (id INT PRIMARY KEY, g INT, v VARCHAR(64))".to_string(),
            format!("INSERT INTO ka.t VALUES {seed}"),
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE ka".to_string(),
            "CREATE TABLE ka.t (id INT, g INT, v VARCHAR(64))".to_string(),
            format!("INSERT INTO ka.t VALUES {seed}"),
            // Same id and group as an upstream row, but not that row.
            "INSERT INTO ka.t VALUES (5, 5, 'downstream only')".to_string(),
        ],
    );
    start_task(dir.path(), &master.addr, &p, "keyless", "ka", 4);

    // Bursts of multi-row UPDATEs and DELETEs (and a few INSERTs) in transactions.
    for round in 0..12 {
        let g = round % 10;
        session(
            &u,
            &[
                "BEGIN".into(),
                format!("UPDATE ka.t SET v = CONCAT(v, '+{round}') WHERE g = {g}"),
                format!(
                    "UPDATE ka.t SET g = g + 1 WHERE id BETWEEN {} AND {}",
                    round * 20,
                    round * 20 + 15
                ),
                format!("DELETE FROM ka.t WHERE g = {} AND id % 3 = 0", (g + 5) % 10),
                format!(
                    "INSERT INTO ka.t VALUES ({}, {g}, 'new{round}'), ({}, {g}, 'new{round}')",
                    1000 + 2 * round,
                    1001 + 2 * round
                ),
                "COMMIT".into(),
            ],
        );
        session(
            &u,
            &["UPDATE ka.t SET v = CONCAT('x', v) WHERE g = 5".to_string()],
        );
    }
    session(
        &u,
        &["UPDATE ka.t SET id = id + 10000 WHERE id < 40".into()],
    );
    wait_synced(&master.addr, "keyless", &u);

    let q = "SELECT id, g, v FROM ka.t ORDER BY id, g, v";
    let mut want = rows(&u, q);
    want.push(vec![
        Some("5".into()),
        Some("5".into()),
        Some("'downstream only'".into()),
    ]);
    let got = rows(&d, q);
    // Compare as text with the same quoting.
    let norm = |v: Vec<Vec<Option<String>>>| -> Vec<Vec<Option<String>>> {
        v.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.map(|s| s.trim_matches('\'').to_string()))
                    .collect()
            })
            .collect()
    };
    let (mut want, mut got) = (norm(want), norm(got));
    want.sort();
    got.sort();
    assert_eq!(got.len(), want.len(), "row count (duplicates or lost rows)");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "downstream differs at sorted row {i}: {:?}, want {:?}",
            got[i], want[i]
        );
    }
    drop(master);
}

#[test]
fn rows_larger_than_the_apply_byte_bound_replicate_equal() {
    let p = pair();
    let (u, d) = (p.up.url(), p.down.url());
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), true);
    for url in [&u, &d] {
        exec(
            url,
            &[
                "CREATE DATABASE kb",
                "CREATE TABLE kb.t (id INT PRIMARY KEY, b LONGBLOB)",
            ],
        );
    }
    // One queue, so every row lands in the same transaction unless it is cut by bytes.
    start_task(dir.path(), &master.addr, &p, "bigrows", "kb", 1);
    // One row of 3 MiB (6 MiB of SQL: over the default 4 MiB bound), then a transaction
    // of 24 rows of 1 MiB (48 MiB of SQL together: far over the downstream's 16 MiB
    // max_allowed_packet if gathered into one transaction string), then an update of the
    // big row.
    session(
        &u,
        &["INSERT INTO kb.t VALUES (1, REPEAT('a', 3 << 20))".into()],
    );
    let mut txn = vec!["BEGIN".to_string()];
    for i in 0..24 {
        txn.push(format!(
            "INSERT INTO kb.t VALUES ({}, REPEAT(CHAR({}), 1 << 20))",
            10 + i,
            65 + i
        ));
    }
    txn.push("COMMIT".into());
    session(&u, &txn);
    session(
        &u,
        &["UPDATE kb.t SET b = REPEAT('z', 3 << 20) WHERE id = 1".into()],
    );
    wait_synced(&master.addr, "bigrows", &u);
    let q = "SELECT id, LENGTH(b), MD5(b) FROM kb.t ORDER BY id";
    let want = rows(&u, q);
    assert_eq!(want.len(), 25);
    assert_eq!(rows(&d, q), want);
    drop(master);
}

#[test]
fn a_duplicate_key_outside_safe_mode_pauses_with_1062_until_fixed() {
    let p = pair();
    let (u, d) = (p.up.url(), p.down.url());
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), true);
    for url in [&u, &d] {
        exec(
            url,
            &[
                "CREATE DATABASE kc",
                "CREATE TABLE kc.t (id INT PRIMARY KEY, v VARCHAR(20))",
                "CREATE TABLE kc.tick (id INT PRIMARY KEY AUTO_INCREMENT, x INT)",
            ],
        );
    }
    start_task(dir.path(), &master.addr, &p, "dupkey", "kc", 4);
    // The first start runs in safe mode for 2 × checkpoint-flush-interval; the unit notices
    // its end on the next event, so keep writing until it says so.
    wait_for("safe mode ends", 60, || {
        exec(&u, &["INSERT INTO kc.tick (x) VALUES (1)"]);
        if master.proc.log_text().contains("safe mode ends") {
            Ok(())
        } else {
            Err("no \"safe mode ends\" in the log yet".into())
        }
    });
    wait_synced(&master.addr, "dupkey", &u);

    exec(&d, &["INSERT INTO kc.t VALUES (7, 'downstream')"]);
    exec(&u, &["INSERT INTO kc.t VALUES (7, 'upstream')"]);
    let st = wait_for("the task pauses", 60, || {
        let st = subtask(&master.addr, "dupkey");
        if st["stage"] == "Paused" {
            Ok(st)
        } else {
            Err(format!("{st:#}"))
        }
    });
    let err = &st["result"]["errors"][0];
    assert_eq!(err["ErrCode"], 10006, "{st:#}");
    assert!(
        err["RawCause"].as_str().unwrap_or("").contains("1062"),
        "{st:#}"
    );
    assert!(
        err["Workaround"]
            .as_str()
            .unwrap_or("")
            .contains("resume-task"),
        "{st:#}"
    );
    // Not overwritten.
    assert_eq!(
        rows(&d, "SELECT v FROM kc.t WHERE id = 7"),
        vec![vec![Some("'downstream'".to_string())]]
    );

    exec(&d, &["DELETE FROM kc.t WHERE id = 7"]);
    ok(&dmctl(&master.addr, &["resume-task", "dupkey"]));
    wait_for("the task runs again", 60, || {
        let st = subtask(&master.addr, "dupkey");
        if st["stage"] == "Running" {
            Ok(())
        } else {
            Err(format!("{st:#}"))
        }
    });
    wait_synced(&master.addr, "dupkey", &u);
    for q in [
        "SELECT id, v FROM kc.t ORDER BY id",
        "SELECT id, x FROM kc.tick ORDER BY id",
    ] {
        assert_eq!(rows(&d, q), rows(&u, q), "{q}");
    }
    drop(master);
}

/// The row count of a table.
fn count(url: &str, table: &str) -> u64 {
    rows(url, &format!("SELECT COUNT(*) FROM {table}"))
        .first()
        .and_then(|r| r.first())
        .cloned()
        .flatten()
        .and_then(|c| c.trim_matches('\'').parse().ok())
        .unwrap_or(0)
}

#[test]
fn rows_with_a_null_unique_key_stay_exact_across_a_kill_9() {
    let p = pair();
    let (u, d) = (p.up.url(), p.down.url());
    let dir = tempfile::tempdir().unwrap();
    let mut master = Master::start(dir.path(), true);
    let addr = master.addr.clone();
    // Upstream has a PK; downstream only a nullable UNIQUE key, so a row whose `u` is NULL
    // cannot be identified there and must take the keyless path (exact by queue position).
    exec(
        &u,
        &[
            "CREATE DATABASE kd",
            "CREATE TABLE kd.t (id INT PRIMARY KEY, u INT NULL UNIQUE, v VARCHAR(32))",
        ],
    );
    exec(
        &d,
        &[
            "CREATE DATABASE kd",
            "CREATE TABLE kd.t (id INT NULL, u INT NULL, v VARCHAR(32), UNIQUE KEY uk (u))",
        ],
    );
    start_task(dir.path(), &addr, &p, "nulluk", "kd", 4);
    let q = "SELECT id, u, v FROM kd.t ORDER BY id, u, v";
    // Each round: a burst, a kill -9 once part of it is downstream, a restart. The crash must
    // land between a queue commit and the next global checkpoint at least once (the restart
    // then logs a safe-mode exit point); rounds repeat until it has, at most five.
    let mut hit = false;
    for round in 0..5i64 {
        // A checkpoint first, so the restart resumes from it rather than from the meta.
        exec(
            &u,
            &[format!(
                "INSERT INTO kd.t VALUES ({}, NULL, 'seed')",
                -1 - round
            )],
        );
        wait_synced(&addr, "nulluk", &u);
        let before = count(&d, "kd.t");
        let burst = {
            let u = u.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let (a, b) = (round * 1000 + 2 * i, round * 1000 + 2 * i + 1);
                    session(
                        &u,
                        &[
                            "BEGIN".into(),
                            format!(
                                "INSERT INTO kd.t VALUES ({a}, NULL, 'n{a}'), ({b}, {b}, 'k{b}')"
                            ),
                            format!(
                                "UPDATE kd.t SET v = CONCAT(v, '+') WHERE id IN ({}, {})",
                                a - 40,
                                b - 40
                            ),
                            "COMMIT".into(),
                        ],
                    );
                }
            })
        };
        wait_for("part of the burst is downstream", 60, || {
            let n = count(&d, "kd.t");
            if n >= before + 60 {
                Ok(())
            } else {
                Err(format!("{n} rows"))
            }
        });
        master.proc.kill9();
        master = Master::start_at(dir.path(), &addr, true);
        burst.join().unwrap();
        wait_synced(&addr, "nulluk", &u);
        let log = master.proc.log_text();
        let resumed = log
            .lines()
            .find(|l| l.contains("resuming from the checkpoint"))
            .unwrap_or_else(|| panic!("round {round}: no resume from the checkpoint:\n{log}"))
            .to_string();
        let (want, got) = (rows(&u, q), rows(&d, q));
        assert_eq!(
            got.len(),
            want.len(),
            "round {round}: duplicates or lost rows"
        );
        assert_eq!(got, want, "round {round}");
        if resumed.contains("Some(") {
            hit = true;
            break;
        }
    }
    assert!(
        hit,
        "no crash landed inside the safe-mode window in five rounds"
    );
    drop(master);
}
