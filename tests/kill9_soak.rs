//! Exactness under repeated crashes: `sysbench oltp_write_only` plus a writer on a table without
//! a key run against the upstream while dm-worker is killed with SIGKILL 20 times (and
//! dm-master every 3rd time), in each of 5 repetitions; after each repetition every table's
//! `CHECKSUM TABLE` and row count downstream equal the upstream's (no row lost or doubled). The
//! worker's logs must show that crashes hit work in flight (a restart with an exit point past
//! the checkpoint) at least once. Real binaries, real MariaDB, real sysbench.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::MariaDb;
use common::check::{checksum, count, subtask, wait_synced};
use common::cluster::{Master, WorkerProc, dmctl, write_source};
use common::sql::{exec, master_pos, rt};
use mysql_async::prelude::*;

const TABLES: usize = 2;
const ROUNDS: usize = 20;
const REPETITIONS: usize = 5;

fn sysbench(port: u16, cmd: &str, extra: &[&str]) -> Command {
    let mut c = Command::new("sysbench");
    c.arg("oltp_write_only")
        .arg("--db-driver=mysql")
        .arg("--mysql-host=127.0.0.1")
        .arg(format!("--mysql-port={port}"))
        .arg("--mysql-user=root")
        .arg("--mysql-password=")
        .arg("--mysql-db=sb")
        .arg(format!("--tables={TABLES}"))
        .arg("--table-size=500")
        .args(extra)
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits until the task's syncerBinlog differs from `last` (the worker applied something).
fn wait_progress(addr: &str, task: &str, last: &str) -> String {
    let t = Instant::now();
    loop {
        let st = subtask(addr, task);
        let pos = st["sync"]["syncerBinlog"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if st["stage"] == "Running" && !pos.is_empty() && pos != last {
            return pos;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no progress: {st:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn twenty_kill9_rounds_under_sysbench_leave_every_table_equal_five_times() {
    let (up, down) = MariaDb::pair(31);
    let (u, d) = (up.url(), down.url());
    let dir = tempfile::tempdir().unwrap();
    let (file, pos) = master_pos(&u);
    let source = write_source(dir.path(), "mariadb-01", up.port);
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        format!(
            "name: soak\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: sb\n    syncer-config-name: s\n\
block-allow-list:\n  sb:\n    do-dbs: [sb]\n\
syncers:\n  s:\n    worker-count: 8\n    batch: 50\n",
            down.port
        ),
    )
    .unwrap();
    let mut master = Master::start(dir.path(), false);
    let addr = master.addr.clone();
    let mut worker = WorkerProc::start(dir.path(), "worker-a", &addr);
    let out = dmctl(
        &addr,
        &["operate-source", "create", &source.display().to_string()],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = dmctl(&addr, &["start-task", &task.display().to_string()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    exec(
        &u,
        &[
            "CREATE DATABASE sb",
            "CREATE TABLE sb.k (v INT, note VARCHAR(32))",
        ],
    );
    let prep = sysbench(up.port, "prepare", &[])
        .output()
        .expect("sysbench is needed (apt-get install -y sysbench)");
    assert!(
        prep.status.success(),
        "sysbench prepare: {}",
        String::from_utf8_lossy(&prep.stderr)
    );
    wait_synced(&addr, "soak", &u);

    let mut keyless_rows = 0u64;
    let mut logs = String::new();
    for rep in 0..REPETITIONS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut bench = sysbench(up.port, "run", &["--threads=2", "--time=600", "--rate=0"])
            .spawn()
            .expect("start sysbench run");
        let keyless = {
            let (u, stop) = (u.clone(), stop.clone());
            std::thread::spawn(move || {
                rt().block_on(async {
                    let mut c = mysql_async::Conn::from_url(&u).await.unwrap();
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        // Single rows, multi-row events and rows inside larger transactions.
                        let sql = match n % 3 {
                            0 => format!("INSERT INTO sb.k VALUES ({n}, 'one')"),
                            1 => format!("INSERT INTO sb.k VALUES ({n}, 'a'), ({n}, 'b'), ({n}, 'c')"),
                            _ => format!(
                                "BEGIN; INSERT INTO sb.k VALUES ({n}, 'x'); UPDATE sb.k SET note = 'y' WHERE v = {m} AND note = 'x'; DELETE FROM sb.k WHERE v = {d} AND note = 'one'; COMMIT",
                                m = n.saturating_sub(3),
                                d = n.saturating_sub(6)
                            ),
                        };
                        c.query_drop(sql).await.unwrap();
                    }
                    c.disconnect().await.unwrap();
                    n
                })
            })
        };
        let mut last = String::new();
        for round in 0..ROUNDS {
            last = wait_progress(&addr, "soak", &last);
            logs.push_str(&worker.proc.log_text());
            worker.proc.kill9();
            if round % 3 == 2 {
                master.proc.kill9();
                master = Master::start_at(dir.path(), &addr, false);
            }
            worker = WorkerProc::start_at(dir.path(), "worker-a", &worker.addr.clone(), &addr);
        }
        stop.store(true, Ordering::SeqCst);
        keyless_rows += keyless.join().unwrap();
        unsafe {
            libc::kill(bench.id() as i32, libc::SIGTERM);
        }
        let _ = bench.wait();
        let st = wait_synced(&addr, "soak", &u);
        assert_eq!(st["stage"], "Running", "repetition {rep}: {st:#}");
        let mut tables: Vec<String> = (1..=TABLES).map(|i| format!("sb.sbtest{i}")).collect();
        tables.push("sb.k".into());
        for t in &tables {
            assert_eq!(
                count(&d, t),
                count(&u, t),
                "repetition {rep}: {t} row count (lost or doubled rows)"
            );
            assert_eq!(
                checksum(&d, t),
                checksum(&u, t),
                "repetition {rep}: {t} checksum"
            );
        }
    }
    logs.push_str(&worker.proc.log_text());
    assert!(keyless_rows > 0);
    assert!(
        logs.contains("exit_safe=Some"),
        "no crash ever hit work in flight (no restart had an exit point past its checkpoint)"
    );
}
