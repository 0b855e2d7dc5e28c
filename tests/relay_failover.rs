//! An upstream failover behind a virtual address, with the real binaries: the source's address
//! is a loopback proxy in front of a primary that a GTID replica follows; the test moves the
//! proxy to the replica. With the relay: pause-relay → switch-relay-master → resume-relay gives
//! a new relay sub-directory and the task goes on. Without it: the task follows by GTID. In
//! both, no row is lost or doubled (a table without a key included).

mod common;

use std::time::Duration;

use common::MariaDb;
use common::check::{query_rows, rows, wait_for};
use common::cluster::{Master, WorkerProc, dmctl, ok};
use common::proxy::Proxy;
use common::sql::{exec, master_pos};

fn gtid_binlog_pos(url: &str) -> String {
    rows(url, "SELECT @@global.gtid_binlog_pos")[0][0]
        .clone()
        .unwrap_or_default()
}

/// A primary, its GTID replica (log_slave_updates), a downstream, and a proxy on the primary.
struct Failover {
    primary: MariaDb,
    replica: MariaDb,
    down: MariaDb,
    proxy: Proxy,
    dir: tempfile::TempDir,
    master: Master,
    worker: WorkerProc,
    addr: String,
}

impl Failover {
    fn start(server_base: u32, relay: bool) -> Failover {
        let (primary, replica, down) = std::thread::scope(|s| {
            let p = s.spawn(|| MariaDb::upstream(server_base));
            let r = s.spawn(|| {
                MariaDb::start_with_args(
                    server_base + 1,
                    true,
                    &["log_slave_updates=1".to_string()],
                )
            });
            let d = s.spawn(MariaDb::downstream);
            (p.join().unwrap(), r.join().unwrap(), d.join().unwrap())
        });
        exec(
            &replica.url(),
            &[
                format!(
                    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos",
                    primary.port
                ),
                "START SLAVE".to_string(),
            ],
        );
        let proxy = Proxy::start(primary.port);
        let dir = tempfile::tempdir().unwrap();
        let master = Master::start(dir.path(), false);
        let worker = WorkerProc::start(dir.path(), "worker-f", &master.addr);
        let addr = master.addr.clone();
        let f = dir.path().join("source.yaml");
        std::fs::write(
            &f,
            format!(
                "source-id: vip\nenable-gtid: true\nenable-relay: {relay}\nrelay-dir: {}\nfrom:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n",
                dir.path().join("relay").display(),
                proxy.port
            ),
        )
        .unwrap();
        common::cluster::create_source_bound(&addr, &f);
        Failover {
            primary,
            replica,
            down,
            proxy,
            dir,
            master,
            worker,
            addr,
        }
    }

    fn relay_status(&self) -> serde_json::Value {
        let j = dmctl(&self.addr, &["query-status", "-s", "vip"]).json();
        j["sources"][0]["sourceStatus"]["relayStatus"].clone()
    }

    fn wait_replica_caught_up(&self) {
        wait_for("the replica caught up", Duration::from_secs(30), || {
            let (p, r) = (
                gtid_binlog_pos(&self.primary.url()),
                gtid_binlog_pos(&self.replica.url()),
            );
            (p == r).then_some(()).ok_or(format!("{p} vs {r}"))
        });
    }

    /// `start_task_flushing_every(1)`.
    fn start_task(&self) {
        self.start_task_flushing_every(1);
    }

    /// Creates `fo.t` (key) and `fo.k` (no key) upstream, then starts the incremental task
    /// `fo` from the primary's position (file and offset only), its checkpoint flushed every
    /// `flush` seconds.
    fn start_task_flushing_every(&self, flush: u32) {
        exec(
            &self.primary.url(),
            &[
                "CREATE DATABASE fo",
                "CREATE TABLE fo.t (id INT PRIMARY KEY, v INT)",
                "CREATE TABLE fo.k (id INT, v INT)",
            ],
        );
        exec(
            &self.down.url(),
            &[
                "CREATE DATABASE fo",
                "CREATE TABLE fo.t (id INT PRIMARY KEY, v INT)",
                "CREATE TABLE fo.k (id INT, v INT)",
            ],
        );
        self.wait_replica_caught_up();
        let (file, pos) = master_pos(&self.primary.url());
        let path = self.dir.path().join("fo.yaml");
        std::fs::write(
            &path,
            format!(
                "name: fo\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: vip\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: bal\n    syncer-config-name: quick\n\
block-allow-list:\n  bal:\n    do-dbs: [fo]\n\
syncers:\n  quick:\n    checkpoint-flush-interval: {flush}\n",
                self.down.port
            ),
        )
        .unwrap();
        ok(
            &dmctl(&self.addr, &["start-task", &path.display().to_string()]),
            "start-task",
        );
    }

    fn write(&self, url: &str, from: u32, n: u32) {
        let mut stmts = Vec::new();
        for i in from..from + n {
            stmts.push(format!("INSERT INTO fo.t VALUES ({i}, {i})"));
            stmts.push(format!("INSERT INTO fo.k VALUES ({i}, {i})"));
            if i % 5 == 0 {
                stmts.push(format!("UPDATE fo.k SET v = v + 1000 WHERE id = {i}"));
            }
        }
        exec(url, &stmts);
    }

    /// Waits until both tables downstream equal `url`'s (sorted, every row once).
    fn wait_equal(&self, url: &str) {
        for t in ["fo.t", "fo.k"] {
            let q = format!("SELECT id, v FROM {t} ORDER BY id, v");
            let want = rows(url, &q);
            wait_for(
                &format!("{t} downstream equals the upstream"),
                Duration::from_secs(60),
                || {
                    let got = query_rows(&self.down.url(), &q).map_err(|e| e.to_string())?;
                    (got == want).then_some(()).ok_or(format!(
                        "{} rows vs {}",
                        got.len(),
                        want.len()
                    ))
                },
            );
        }
    }

    fn subtask(&self) -> serde_json::Value {
        let j = dmctl(&self.addr, &["query-status", "fo"]).json();
        j["sources"][0]["subTaskStatus"][0].clone()
    }

    /// Stops the worker and starts it again (same name and address) with `DMRS_FAILPOINTS=fp`.
    fn restart_worker_with_failpoint(&mut self, fp: &str) {
        let (addr, join) = (self.worker.addr.clone(), self.worker.join.clone());
        self.worker.proc.stop();
        self.worker = WorkerProc::start_env(
            self.dir.path(),
            "worker-f",
            &addr,
            &join,
            &[("DMRS_FAILPOINTS", fp)],
        );
    }

    /// The failover: the replica has everything, the proxy moves to it, it stops replicating.
    fn fail_over(&self) {
        self.wait_replica_caught_up();
        self.proxy.retarget(self.replica.port);
        exec(&self.replica.url(), &["STOP SLAVE"]);
    }
}

impl Drop for Failover {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = [
                ("worker", self.worker.proc.log_text()),
                ("master", self.master.proc.log_text()),
            ];
            common::cluster::report_logs(&mut self.dir, &logs, 50);
        }
    }
}

#[test]
fn a_failover_with_the_relay_goes_on_in_a_new_sub_directory() {
    let f = Failover::start(81, true);
    wait_for("the relay running", Duration::from_secs(30), || {
        let r = f.relay_status();
        (r["stage"] == "Running").then_some(()).ok_or(r.to_string())
    });
    f.start_task();
    f.write(&f.primary.url(), 0, 50);
    f.wait_equal(&f.primary.url());
    assert_eq!(f.subtask()["sync"]["binlogType"], "local");
    // switch-relay-master needs a paused relay.
    let o = dmctl(&f.addr, &["switch-relay-master", "-s", "vip"]).json();
    assert_eq!(o["result"], false, "{o:#}");
    assert!(
        o["workers"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("40039"),
        "{o:#}"
    );
    ok(
        &dmctl(&f.addr, &["pause-relay", "-s", "vip"]),
        "pause-relay",
    );
    wait_for("the relay paused", Duration::from_secs(30), || {
        let r = f.relay_status();
        (r["stage"] == "Paused").then_some(()).ok_or(r.to_string())
    });
    f.fail_over();
    ok(
        &dmctl(&f.addr, &["switch-relay-master", "-s", "vip"]),
        "switch-relay-master",
    );
    ok(
        &dmctl(&f.addr, &["resume-relay", "-s", "vip"]),
        "resume-relay",
    );
    f.write(&f.replica.url(), 50, 50);
    f.wait_equal(&f.replica.url());
    wait_for("a new relay sub-directory", Duration::from_secs(30), || {
        let r = f.relay_status();
        (r["relaySubDir"] == format!("0-{}.000002", 82) && r["stage"] == "Running")
            .then_some(())
            .ok_or(r.to_string())
    });
    let index = std::fs::read_to_string(
        f.dir
            .path()
            .join("relay")
            .join("worker-f")
            .join("server-uuid.index"),
    )
    .unwrap();
    assert_eq!(index, "0-81.000001\n0-82.000002\n");
    assert_eq!(f.subtask()["stage"], "Running");
    ok(&dmctl(&f.addr, &["stop-task", "fo"]), "stop-task");
}

#[test]
fn a_failover_without_the_relay_follows_by_gtid() {
    let f = Failover::start(91, false);
    f.start_task();
    f.write(&f.primary.url(), 0, 50);
    f.wait_equal(&f.primary.url());
    assert_eq!(f.subtask()["sync"]["binlogType"], "remote");
    f.fail_over();
    f.write(&f.replica.url(), 50, 50);
    f.wait_equal(&f.replica.url());
    assert_eq!(f.subtask()["stage"], "Running");
    ok(&dmctl(&f.addr, &["stop-task", "fo"]), "stop-task");
}

/// The meta names a file and offset only, and the worker dies (abort at `sync-after-ddl`)
/// on the first event after it, so its checkpoint is still the first one. The source fails
/// over and a new worker begins again at that checkpoint: its GTID set, found at the start,
/// is what lets the task continue on the replica, whose files and offsets differ.
#[test]
fn a_worker_dead_before_its_first_flush_follows_a_failover_by_the_start_gtid() {
    let mut f = Failover::start(95, false);
    f.restart_worker_with_failpoint("sync-after-ddl");
    let dir = f.dir.path().to_path_buf();
    f.start_task();
    exec(
        &f.primary.url(),
        &["CREATE TABLE fo.x (id INT PRIMARY KEY)"],
    );
    wait_for(
        "the worker aborted after the DDL",
        Duration::from_secs(30),
        || {
            f.worker
                .proc
                .exited()
                .then_some(())
                .ok_or("running".to_string())
        },
    );
    f.write(&f.primary.url(), 0, 50);
    f.fail_over();
    f.write(&f.replica.url(), 50, 50);
    f.worker.restart(&dir);
    f.wait_equal(&f.replica.url());
    assert_eq!(f.subtask()["stage"], "Running");
    ok(&dmctl(&f.addr, &["stop-task", "fo"]), "stop-task");
}

/// The worker dies (abort at `sync-before-save`) after its apply queues committed rows past
/// the global checkpoint, the source fails over, and a new worker resumes at the global
/// point on the replica by GTID. The queues' GTID marks say which keyless events are
/// downstream already (their positions name the old server): none is lost or doubled.
#[test]
fn rows_applied_past_the_checkpoint_are_not_doubled_after_a_failover() {
    let mut f = Failover::start(97, false);
    f.restart_worker_with_failpoint("sync-before-save");
    let dir = f.dir.path().to_path_buf();
    f.start_task();
    f.write(&f.primary.url(), 0, 50);
    wait_for(
        "the worker aborted before saving",
        Duration::from_secs(30),
        || {
            f.worker
                .proc
                .exited()
                .then_some(())
                .ok_or("running".to_string())
        },
    );
    let applied = rows(&f.down.url(), "SELECT COUNT(*) FROM fo.k")[0][0].clone();
    assert_ne!(
        applied.as_deref(),
        Some("0"),
        "the queues committed rows before the abort"
    );
    f.fail_over();
    f.write(&f.replica.url(), 50, 50);
    f.worker.restart(&dir);
    f.wait_equal(&f.replica.url());
    assert_eq!(f.subtask()["stage"], "Running");
    ok(&dmctl(&f.addr, &["stop-task", "fo"]), "stop-task");
}
