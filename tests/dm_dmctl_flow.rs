//! DM's own dmctl expectations for source, relay and task operations on a live cluster,
//! ported from pingcap/tiflow `dm/tests/dmctl_basic/run.sh` (its `run` function) and
//! `check_list/{operate_source,start_relay,stop_relay,pause_relay,resume_relay,query_status,
//! show_ddl_locks,pause_task,resume_task,purge_relay}.sh`, with DM's commands, expected strings
//! and counts unchanged (see `common/dmctl_dm.rs` for how they are run and counted). Each test
//! follows one stretch of DM's script in DM's order, on its own cluster: a dm-master, workers
//! `worker1` / `worker2`, two real upstream MariaDB servers (`mysql-replica-01`,
//! `mysql-replica-02`) and a downstream.
//!
//! Differences from DM's script, each for a reason:
//! - DM's source files name DM's test ports and passwords (`source2.yaml` holds a ciphertext
//!   made with DM's test key); here they name this run's servers, user root, no password.
//! - Where DM kills a worker and at once expects the master to call it offline (DM's worker
//!   revokes its etcd lease on SIGTERM), the test first waits until `list-member` says
//!   `offline`, then runs DM's command unchanged.
//! - The task and the check-task stretches, transfer-source, the `config` family and the
//!   source-wide task operations of the same script are ported with those features (the
//!   check-task and the config tests).

mod common;
#[path = "common/dmctl_dm.rs"]
mod dmctl_dm;

use std::path::PathBuf;
use std::time::Duration;

use common::MariaDb;
use common::check::wait_for;
use common::cluster::{Master, WorkerProc, dmctl, report_logs};
use dmctl_dm::Dm;

const ADDR: &str = r#""127.0.0.1:$MASTER_PORT""#;

/// DM's dmctl_basic cluster: master, two upstreams, a downstream; workers started on demand.
struct Flow {
    dir: tempfile::TempDir,
    up1: MariaDb,
    up2: MariaDb,
    down: MariaDb,
    master: Master,
    workers: Vec<WorkerProc>,
    dm: Dm,
}

impl Flow {
    fn start(base: u32) -> Flow {
        let (up1, up2, down) = std::thread::scope(|s| {
            let a = s.spawn(|| MariaDb::upstream(base));
            let b = s.spawn(|| MariaDb::upstream(base + 1));
            let d = s.spawn(MariaDb::downstream);
            (a.join().unwrap(), b.join().unwrap(), d.join().unwrap())
        });
        let dir = tempfile::tempdir().unwrap();
        let master = Master::start(dir.path(), false);
        let port = master.addr.rsplit_once(':').unwrap().1.to_string();
        for (name, id, up, gtid) in [
            ("source1.yaml", "mysql-replica-01", &up1, false),
            ("source2.yaml", "mysql-replica-02", &up2, true),
        ] {
            let relay = dir.path().join(format!("relay-{id}"));
            std::fs::write(
                dir.path().join(name),
                format!(
                    "source-id: {id}\nenable-gtid: {gtid}\nrelay-dir: {}\nrelay-binlog-name: ''\nrelay-binlog-gtid: ''\nenable-relay: false\nfrom:\n  host: 127.0.0.1\n  user: root\n  password: ''\n  port: {}\n",
                    relay.display(),
                    up.port
                ),
            )
            .unwrap();
        }
        let dm = Dm::new()
            .var("MASTER_PORT", &port)
            .var("SOURCE_ID1", "mysql-replica-01")
            .var("SOURCE_ID2", "mysql-replica-02")
            .var("WORK_DIR", &dir.path().display().to_string());
        Flow {
            dir,
            up1,
            up2,
            down,
            master,
            workers: Vec::new(),
            dm,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `run_dm_worker $WORK_DIR/workerN ...` + `check_rpc_alive`.
    fn run_worker(&mut self, name: &str) {
        let dir = self.path();
        let w = WorkerProc::start(&dir, name, &self.master.addr);
        self.workers.retain(|x| x.name != name);
        self.workers.push(w);
        wait_member(&self.master.addr, name, &["free", "bound"]);
    }

    /// `kill_process workerN` + `check_port_offline`, then (see the module doc) until the
    /// master has it offline.
    fn kill_worker(&mut self, name: &str) {
        if let Some(w) = self.workers.iter_mut().find(|w| w.name == name) {
            w.proc.stop();
        }
        wait_member(&self.master.addr, name, &["offline"]);
    }

    /// DM's `dmctl_operate_source OP FILE SOURCE_ID`.
    fn operate_source(&self, op: &str, file: &str, source_id: &str) {
        self.dm.run_dm_ctl(
            ADDR,
            &format!("\"operate-source {op} $WORK_DIR/{file}\""),
            &[
                (r#""\"result\": true""#, 2),
                (&format!("\"\\\"source\\\": \\\"{source_id}\\\"\""), 1),
            ],
        );
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs = vec![("master", self.master.proc.log_text())];
            for w in &self.workers {
                logs.push(("worker", w.proc.log_text()));
            }
            report_logs(&mut self.dir, &logs, 40);
        }
    }
}

/// Waits until `list-member --worker` shows `name` in one of `stages`.
fn wait_member(addr: &str, name: &str, stages: &[&str]) {
    wait_for(
        &format!("worker {name} {stages:?}"),
        Duration::from_secs(30),
        || {
            let out = dmctl(addr, &["list-member", "--worker", "--name", name]);
            let j: serde_json::Value =
                serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
            let stage = j["members"][0]["worker"]["workers"][0]["stage"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            stages
                .contains(&stage.as_str())
                .then_some(())
                .ok_or(format!("stage {stage:?}"))
        },
    );
}

/// run.sh: sources created before any worker, `operate-source stop` without reaching the
/// upstream, `operate-source show` with and without a free worker, then check_list's relay
/// commands on an offline and an online worker, pause/resume-relay and query-status with no
/// task.
#[test]
fn sources_and_relay_follow_dms_script() {
    let mut f = Flow::start(131);
    let dm = f.dm.clone();
    // operate mysql config to worker
    f.operate_source("create", "source1.yaml", "mysql-replica-01");
    f.operate_source("create", "source2.yaml", "mysql-replica-02");
    // test stop source will not check connectivity to upstream
    std::fs::copy(
        f.path().join("source1.yaml"),
        f.path().join("source1-wrong.yaml"),
    )
    .unwrap();
    dm.run_dm_ctl(
        ADDR,
        r#""operate-source stop $WORK_DIR/source1-wrong.yaml $SOURCE_ID2""#,
        &[(r#""\"result\": true""#, 3)],
    );
    // ensure source1 is bound to worker1
    f.operate_source("create", "source1.yaml", "mysql-replica-01");
    f.run_worker("worker1");
    f.operate_source("create", "source2.yaml", "mysql-replica-02");
    dm.run_dm_ctl(
        ADDR,
        r#""operate-source show""#,
        &[
            (r#""\"result\": true""#, 3),
            (
                r#"'msg": "source is added but there is no free worker to bound"'"#,
                1,
            ),
            (r#"'"worker": "worker1"'"#, 1),
        ],
    );
    f.run_worker("worker2");
    dm.run_dm_ctl_with_retry(
        ADDR,
        r#""operate-source show""#,
        10,
        &[
            (r#""\"result\": true""#, 3),
            (r#"'"worker": "worker1"'"#, 1),
            (r#"'"worker": "worker2"'"#, 1),
        ],
    );
    dm.run_dm_ctl(
        ADDR,
        r#""operate-source show -s $SOURCE_ID1""#,
        &[
            (r#""\"result\": true""#, 2),
            (r#"'"worker": "worker1"'"#, 1),
        ],
    );

    // test for start relay
    f.kill_worker("worker2");
    // stop_relay_on_offline_worker
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID2 worker2""#,
        &[
            (r#""\"result\": true""#, 2),
            (
                r#""\"msg\": \"source relay is operated but the bound worker is offline\"""#,
                1,
            ),
            (r#""\"source\": \"$SOURCE_ID2\"""#, 1),
            (r#""\"worker\": \"worker2\"""#, 1),
        ],
    );
    // start_relay_on_offline_worker
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID2 worker2""#,
        &[
            (r#""\"result\": true""#, 2),
            (
                r#""\"msg\": \"source relay is operated but the bound worker is offline\"""#,
                1,
            ),
            (r#""\"source\": \"$SOURCE_ID2\"""#, 1),
            (r#""\"worker\": \"worker2\"""#, 1),
        ],
    );
    f.run_worker("worker2");
    // start_relay_success
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID1 worker1""#,
        &[
            (r#""\"result\": true""#, 2),
            (r#""\"source\": \"$SOURCE_ID1\"""#, 1),
            (r#""\"worker\": \"worker1\"""#, 1),
        ],
    );
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID2 worker2""#,
        &[
            (r#""\"result\": true""#, 2),
            (r#""\"source\": \"$SOURCE_ID2\"""#, 1),
            (r#""\"worker\": \"worker2\"""#, 1),
        ],
    );
    // start_relay_diff_worker_fail
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID1 worker2""#,
        &[(
            r#""these workers \[worker2\] have bound for another sources \[$SOURCE_ID2\] respectively""#,
            1,
        )],
    );
    // start_relay_without_worker_name_fail
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID1""#,
        &[(r#""can't \`start-relay\` without worker name now""#, 1)],
    );
    // stop_relay_without_worker_name_fail
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID1""#,
        &[(r#""can't \`stop-relay\` without worker name now""#, 1)],
    );
    // pause_relay_success
    dm.run_dm_ctl(
        ADDR,
        r#""pause-relay -s $SOURCE_ID1 -s $SOURCE_ID2""#,
        &[
            (r#""\"result\": true""#, 3),
            (r#""\"source\": \"$SOURCE_ID1\"""#, 1),
            (r#""\"source\": \"$SOURCE_ID2\"""#, 1),
        ],
    );
    // query_status_stopped_relay
    dm.run_dm_ctl_with_retry(
        ADDR,
        r#""query-status -s $SOURCE_ID1,$SOURCE_ID2""#,
        10,
        &[
            (r#""\"result\": true""#, 3),
            (r#""\"stage\": \"Paused\"""#, 2),
        ],
    );
    // resume_relay_success
    dm.run_dm_ctl(
        ADDR,
        r#""resume-relay -s $SOURCE_ID1 -s $SOURCE_ID2""#,
        &[
            (r#""\"result\": true""#, 3),
            (r#""\"source\": \"$SOURCE_ID1\"""#, 1),
            (r#""\"source\": \"$SOURCE_ID2\"""#, 1),
        ],
    );
    // query_status_with_no_tasks
    dm.run_dm_ctl(
        ADDR,
        r#""query-status -s $SOURCE_ID1,$SOURCE_ID2""#,
        &[
            (r#""\"result\": true""#, 3),
            (r#""\"msg\": \"no sub task started\"""#, 2),
        ],
    );
    // stop_relay_fail
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID1 worker2""#,
        &[(
            r#""these workers \[worker2\] have started relay for another sources \[$SOURCE_ID2\] respectively""#,
            1,
        )],
    );
    // stop_relay_success
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID1 worker1""#,
        &[(r#""\"result\": true""#, 2)],
    );
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID2 worker2""#,
        &[(r#""\"result\": true""#, 2)],
    );
    // start_relay_without_worker_name_success
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID1""#,
        &[(r#""\"result\": true""#, 1)],
    );
    // start_relay_with_worker_name_fail
    dm.run_dm_ctl(
        ADDR,
        r#""start-relay -s $SOURCE_ID1 worker1""#,
        &[(r#""can't \`start-relay\` with worker name now""#, 1)],
    );
    // stop_relay_with_worker_name_fail
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID1 worker1""#,
        &[(r#""can't \`stop-relay\` with worker name now""#, 1)],
    );
    // stop_relay_with_worker_name_success
    dm.run_dm_ctl(
        ADDR,
        r#""stop-relay -s $SOURCE_ID1""#,
        &[(r#""\"result\": true""#, 1)],
    );
    let _ = (&f.up1, &f.up2, &f.down);
}
