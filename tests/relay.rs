//! The relay log with the real binaries: a source with `enable-relay: true` keeps its binlog
//! on the worker and the tasks read it (`binlogType: local`); the upstream then serves its
//! binlog once however many tasks there are; pause-relay holds the tasks at the relay's end
//! and resume-relay lets them go on; purge-relay is refused while a task needs a file; a
//! worker killed while the relay writes under load resumes with the data equal. The tests
//! share one upstream and one downstream (each its own databases and cluster).

mod common;

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use common::MariaDb;
use common::check::{count, query_rows, rows, wait_for};
use common::cluster::{Master, WorkerProc, dmctl, ok};
use common::sql::{exec, master_pos};

struct Servers {
    up: MariaDb,
    down: MariaDb,
}

/// The tests run one at a time: the first measures the upstream's global Bytes_sent.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

fn servers() -> Arc<Servers> {
    static S: Mutex<Weak<Servers>> = Mutex::new(Weak::new());
    let mut slot = S.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let (up, down) = MariaDb::pair(71);
    let s = Arc::new(Servers { up, down });
    *slot = Arc::downgrade(&s);
    s
}

/// A master and one worker, the source `relay-src` bound to it with the relay on.
struct RelayCluster {
    dir: tempfile::TempDir,
    master: Master,
    worker: WorkerProc,
    addr: String,
}

impl RelayCluster {
    fn start(s: &Servers, relay: bool) -> RelayCluster {
        Self::start_with(s, relay, "")
    }

    /// [`RelayCluster::start`] with more source-file lines (`extra`).
    fn start_with(s: &Servers, relay: bool, extra: &str) -> RelayCluster {
        let dir = tempfile::tempdir().unwrap();
        let master = Master::start(dir.path(), false);
        let worker = WorkerProc::start(dir.path(), "worker-r", &master.addr);
        let addr = master.addr.clone();
        let f = dir.path().join("source.yaml");
        std::fs::write(
            &f,
            format!(
                "source-id: relay-src\nenable-relay: {relay}\nrelay-dir: {}\nfrom:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n{extra}",
                dir.path().join("relay").display(),
                s.up.port
            ),
        )
        .unwrap();
        common::cluster::create_source_bound(&addr, &f);
        RelayCluster {
            dir,
            master,
            worker,
            addr,
        }
    }

    /// The relay's status (query-status of the source).
    fn relay_status(&self) -> serde_json::Value {
        let j = dmctl(&self.addr, &["query-status", "-s", "relay-src"]).json();
        j["sources"][0]["sourceStatus"]["relayStatus"].clone()
    }

    /// Waits until the relay has everything the upstream has.
    fn wait_relay_caught_up(&self, s: &Servers) {
        wait_for("the relay caught up", Duration::from_secs(30), || {
            let (f, p) = master_pos(&s.up.url());
            let r = self.relay_status();
            (r["relayBinlog"] == format!("({f}, {p})") && r["stage"] == "Running")
                .then_some(())
                .ok_or(r.to_string())
        });
    }

    /// Writes and starts an incremental task `name` from the upstream's current position,
    /// routing database `db` to `<name>_db` downstream.
    fn start_task(&self, s: &Servers, name: &str, db: &str) {
        let (file, pos) = master_pos(&s.up.url());
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {name}\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: relay-src\n    meta: {{binlog-name: {file}, binlog-pos: {pos}}}\n    block-allow-list: bal\n    route-rules: [r]\n    syncer-config-name: quick\n\
block-allow-list:\n  bal:\n    do-dbs: [{db}]\n\
syncers:\n  quick:\n    checkpoint-flush-interval: 1\n\
routes:\n  r:\n    schema-pattern: {db}\n    target-schema: {name}_{db}\n",
                s.down.port
            ),
        )
        .unwrap();
        ok(
            &dmctl(&self.addr, &["start-task", &path.display().to_string()]),
            "start-task",
        );
    }

    fn sync_status(&self, task: &str) -> serde_json::Value {
        let j = dmctl(&self.addr, &["query-status", task]).json();
        j["sources"][0]["subTaskStatus"][0].clone()
    }
}

impl Drop for RelayCluster {
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

/// Waits until `<task>_<db>.t` downstream equals `<db>.t` upstream.
fn wait_equal(s: &Servers, task: &str, db: &str) {
    let up = rows(&s.up.url(), &format!("SELECT * FROM {db}.t ORDER BY id"));
    let q = format!("SELECT * FROM {task}_{db}.t ORDER BY id");
    wait_for(
        &format!("{task}: the downstream table equals the upstream"),
        Duration::from_secs(60),
        || {
            let got = query_rows(&s.down.url(), &q).map_err(|e| e.to_string())?;
            (got == up)
                .then_some(())
                .ok_or(format!("{} rows vs {}", got.len(), up.len()))
        },
    );
}

/// Waits until `table` downstream has `n` rows.
fn wait_rows(s: &Servers, table: &str, n: u64) {
    wait_for(
        &format!("{n} rows in {table}"),
        Duration::from_secs(60),
        || {
            let got = count(&s.down.url(), table);
            (got == n).then_some(()).ok_or(got.to_string())
        },
    );
}

fn bytes_sent(url: &str) -> u64 {
    rows(url, "SHOW GLOBAL STATUS LIKE 'Bytes_sent'")[0][1]
        .as_deref()
        .unwrap_or("'0'")
        .trim_matches('\'')
        .parse()
        .unwrap_or(0)
}

/// Creates `db`.t upstream and the three tasks' copies downstream.
fn create(s: &Servers, db: &str, tasks: &[&str]) {
    exec(
        &s.up.url(),
        &[
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200))"),
        ],
    );
    for t in tasks {
        exec(
            &s.down.url(),
            &[
                format!("CREATE DATABASE {t}_{db}"),
                format!("CREATE TABLE {t}_{db}.t (id INT PRIMARY KEY, v VARCHAR(200))"),
            ],
        );
    }
}

/// `n` rows of about 200 bytes in transactions of 10.
fn write_rows(s: &Servers, db: &str, from: u32, n: u32) {
    let mut stmts = Vec::new();
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(10) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i}, REPEAT(CHAR(97 + {i} % 26), 190))"))
            .collect();
        stmts.push(format!("INSERT INTO {db}.t VALUES {}", values.join(", ")));
    }
    exec(&s.up.url(), &stmts);
}

#[test]
fn three_tasks_read_the_relay_and_the_upstream_sends_its_binlog_once() {
    let _serial = serial();
    let s = servers();
    let tasks = ["ra", "rb", "rc"];
    // With the relay: three tasks, one binlog stream.
    let c = RelayCluster::start(&s, true);
    create(&s, "rl1", &tasks);
    c.wait_relay_caught_up(&s);
    for t in tasks {
        c.start_task(&s, t, "rl1");
    }
    for t in tasks {
        wait_for(
            &format!("{t} reads the relay"),
            Duration::from_secs(30),
            || {
                let st = c.sync_status(t);
                (st["stage"] == "Running" && st["sync"]["binlogType"] == "local")
                    .then_some(())
                    .ok_or(st.to_string())
            },
        );
    }
    let before = bytes_sent(&s.up.url());
    write_rows(&s, "rl1", 0, 2000);
    // Counted downstream (reading the upstream table would add to its Bytes_sent).
    for t in tasks {
        wait_rows(&s, &format!("{t}_rl1.t"), 2000);
    }
    let with_relay = bytes_sent(&s.up.url()) - before;
    for t in tasks {
        wait_equal(&s, t, "rl1");
    }
    let relay_dir = c.dir.path().join("relay").join("worker-r");
    let index = std::fs::read_to_string(relay_dir.join("server-uuid.index")).unwrap();
    let sub = index.lines().last().unwrap().to_string();
    assert!(sub.ends_with(".000001"), "{index}");
    let meta = std::fs::read_to_string(relay_dir.join(&sub).join("relay.meta")).unwrap();
    assert!(
        meta.contains("binlog-name = \"") && meta.contains("binlog-pos = "),
        "{meta}"
    );
    for t in tasks {
        ok(&dmctl(&c.addr, &["stop-task", t]), "stop-task");
    }
    drop(c);

    // Without the relay: the same three tasks and rows, three binlog streams.
    let tasks2 = ["rd", "re", "rf"];
    let c = RelayCluster::start(&s, false);
    create(&s, "rl2", &tasks2);
    for t in tasks2 {
        c.start_task(&s, t, "rl2");
    }
    for t in tasks2 {
        wait_for(
            &format!("{t} reads the upstream"),
            Duration::from_secs(30),
            || {
                let st = c.sync_status(t);
                (st["stage"] == "Running" && st["sync"]["binlogType"] == "remote")
                    .then_some(())
                    .ok_or(st.to_string())
            },
        );
    }
    let before = bytes_sent(&s.up.url());
    write_rows(&s, "rl2", 0, 2000);
    for t in tasks2 {
        wait_rows(&s, &format!("{t}_rl2.t"), 2000);
    }
    let without = bytes_sent(&s.up.url()) - before;
    for t in tasks2 {
        wait_equal(&s, t, "rl2");
    }
    eprintln!(
        "upstream Bytes_sent for 2000 rows and 3 tasks: relay {with_relay}, no relay {without}"
    );
    assert!(
        with_relay * 2 < without,
        "the upstream sent {with_relay} bytes with the relay and {without} without"
    );
    for t in tasks2 {
        ok(&dmctl(&c.addr, &["stop-task", t]), "stop-task");
    }
}

#[test]
fn pause_relay_holds_the_tasks_at_its_end_and_resume_relay_lets_them_go_on() {
    let _serial = serial();
    let s = servers();
    let c = RelayCluster::start(&s, true);
    create(&s, "rl3", &["rp"]);
    c.wait_relay_caught_up(&s);
    c.start_task(&s, "rp", "rl3");
    write_rows(&s, "rl3", 0, 50);
    wait_equal(&s, "rp", "rl3");
    let o = dmctl(&c.addr, &["pause-relay", "-s", "relay-src"]).json();
    assert_eq!(o["op"], "PauseRelay", "{o:#}");
    assert_eq!(o["result"], true, "{o:#}");
    assert_eq!(o["sources"][0]["source"], "relay-src", "{o:#}");
    wait_for("the relay paused", Duration::from_secs(30), || {
        let r = c.relay_status();
        (r["stage"] == "Paused").then_some(()).ok_or(r.to_string())
    });
    let held = c.relay_status()["relayBinlog"].clone();
    write_rows(&s, "rl3", 50, 50);
    // The task reads only what the relay holds: it stays at the relay's end.
    wait_for(
        "the task at the relay's end",
        Duration::from_secs(30),
        || {
            let st = c.sync_status("rp");
            (st["sync"]["syncerBinlog"] == held)
                .then_some(())
                .ok_or(format!("{st} vs {held}"))
        },
    );
    assert_eq!(count(&s.down.url(), "rp_rl3.t"), 50);
    // DM's task summary says the relay is not running under a running task.
    let summary = dmctl(&c.addr, &["query-status"]).stdout;
    assert!(summary.contains("Relay status is Paused"), "{summary}");
    let o = dmctl(&c.addr, &["resume-relay", "-s", "relay-src"]).json();
    assert_eq!(o["op"], "ResumeRelay", "{o:#}");
    wait_equal(&s, "rp", "rl3");
    assert_eq!(c.sync_status("rp")["sync"]["binlogType"], "local");
    ok(&dmctl(&c.addr, &["stop-task", "rp"]), "stop-task");
}

#[test]
fn purge_relay_is_refused_while_a_task_needs_the_file_then_purges() {
    let _serial = serial();
    let s = servers();
    let c = RelayCluster::start(&s, true);
    create(&s, "rl4", &["rq"]);
    c.wait_relay_caught_up(&s);
    c.start_task(&s, "rq", "rl4");
    write_rows(&s, "rl4", 0, 20);
    wait_equal(&s, "rq", "rl4");
    let first = master_pos(&s.up.url()).0;
    exec(&s.up.url(), &["FLUSH BINARY LOGS"]);
    let second = master_pos(&s.up.url()).0;
    assert_ne!(first, second);
    c.wait_relay_caught_up(&s);
    let relay_dir = |c: &RelayCluster| {
        let root = c.dir.path().join("relay").join("worker-r");
        let index = std::fs::read_to_string(root.join("server-uuid.index")).unwrap();
        root.join(index.lines().last().unwrap())
    };
    assert!(relay_dir(&c).join(&first).exists());
    // The task still reads `first` until it gets past the rotate: stop it there by pausing.
    ok(&dmctl(&c.addr, &["pause-task", "rq"]), "pause-task");
    let o = dmctl(&c.addr, &["purge-relay", "-s", "relay-src", "-f", &second]);
    let j: serde_json::Value = serde_json::from_str(
        o.stdout
            .lines()
            .skip_while(|l| !l.starts_with('{'))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    assert_eq!(j["result"], false, "{j:#}");
    assert!(
        j["sources"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("30037"),
        "{j:#}"
    );
    assert!(relay_dir(&c).join(&first).exists(), "nothing was removed");
    ok(&dmctl(&c.addr, &["resume-task", "rq"]), "resume-task");
    // The task moves into the second file, then the first may go.
    write_rows(&s, "rl4", 20, 10);
    wait_equal(&s, "rq", "rl4");
    wait_for(
        "the task past the first file",
        Duration::from_secs(30),
        || {
            let st = c.sync_status("rq");
            st["sync"]["syncerBinlog"]
                .as_str()
                .is_some_and(|b| b.contains(&second))
                .then_some(())
                .ok_or(st.to_string())
        },
    );
    let o = dmctl(&c.addr, &["purge-relay", "-s", "relay-src", "-f", &second]);
    assert!(o.stdout.contains("\"result\": true"), "{}", o.stdout);
    assert!(
        !relay_dir(&c).join(&first).exists(),
        "the first file was purged"
    );
    assert!(relay_dir(&c).join(&second).exists());
    ok(&dmctl(&c.addr, &["stop-task", "rq"]), "stop-task");
}

#[test]
fn a_worker_killed_while_the_relay_writes_under_load_resumes_with_the_data_equal() {
    let _serial = serial();
    let s = servers();
    let mut c = RelayCluster::start(&s, true);
    create(&s, "rl5", &["rk"]);
    c.wait_relay_caught_up(&s);
    c.start_task(&s, "rk", "rl5");
    let up = s.up.url();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let values: Vec<String> = (0..25)
                    .map(|k| format!("({}, REPEAT('x', 150))", i * 25 + k))
                    .collect();
                exec(
                    &up,
                    &[
                        format!("INSERT INTO rl5.t VALUES {}", values.join(", ")),
                        format!("UPDATE rl5.t SET v = 'u{i}' WHERE id = {}", i * 25),
                    ],
                );
                i += 1;
            }
            i
        })
    };
    // Kill -9 while the relay writes.
    wait_for("some rows relayed", Duration::from_secs(30), || {
        let n = count(&s.down.url(), "rk_rl5.t");
        (n > 200).then_some(()).ok_or(n.to_string())
    });
    c.worker.proc.kill9();
    let (name, addr, join) = (
        c.worker.name.clone(),
        c.worker.addr.clone(),
        c.worker.join.clone(),
    );
    c.worker = WorkerProc::start_at(c.dir.path(), &name, &addr, &join);
    // Back, reading the relay again, while the writes go on.
    wait_for(
        "the task running on the relay again",
        Duration::from_secs(60),
        || {
            let st = c.sync_status("rk");
            (st["stage"] == "Running" && st["sync"]["binlogType"] == "local")
                .then_some(())
                .ok_or(st.to_string())
        },
    );
    let before = count(&s.down.url(), "rk_rl5.t");
    wait_for(
        "rows keep arriving after the restart",
        Duration::from_secs(30),
        || {
            let n = count(&s.down.url(), "rk_rl5.t");
            (n > before + 100)
                .then_some(())
                .ok_or(format!("{n} <= {before} + 100"))
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = writer.join().unwrap();
    assert!(batches > 0);
    wait_equal(&s, "rk", "rl5");
    c.wait_relay_caught_up(&s);
    ok(&dmctl(&c.addr, &["stop-task", "rk"]), "stop-task");
}

#[test]
fn the_background_purge_removes_the_files_no_task_reads() {
    let _serial = serial();
    let s = servers();
    // remain-space far above any disk: the purge runs every second on "low space".
    let c = RelayCluster::start_with(
        &s,
        true,
        "purge:\n  interval: 1\n  expires: 0\n  remain-space: 100000000\n",
    );
    create(&s, "rl6", &["rg"]);
    c.wait_relay_caught_up(&s);
    c.start_task(&s, "rg", "rl6");
    let first = master_pos(&s.up.url()).0;
    exec(&s.up.url(), &["FLUSH BINARY LOGS"]);
    let second = master_pos(&s.up.url()).0;
    write_rows(&s, "rl6", 0, 20);
    wait_equal(&s, "rg", "rl6");
    let root = c.dir.path().join("relay").join("worker-r");
    let index = std::fs::read_to_string(root.join("server-uuid.index")).unwrap();
    let sub = root.join(index.lines().last().unwrap());
    wait_for(
        "the first relay file purged",
        Duration::from_secs(30),
        || {
            (!sub.join(&first).exists())
                .then_some(())
                .ok_or(format!("{first} still there"))
        },
    );
    assert!(sub.join(&second).exists(), "the file being read stays");
    assert!(
        c.worker
            .proc
            .log_text()
            .contains("relay log purged in the background")
    );
    ok(&dmctl(&c.addr, &["stop-task", "rg"]), "stop-task");
}

#[test]
fn update_relay_restarts_the_relay_with_new_settings_and_migrate_relay_starts_a_new_sub_directory()
{
    let _serial = serial();
    let s = servers();
    let c = RelayCluster::start(&s, true);
    create(&s, "rl7", &["ru"]);
    c.wait_relay_caught_up(&s);
    c.start_task(&s, "ru", "rl7");
    write_rows(&s, "rl7", 0, 20);
    wait_equal(&s, "ru", "rl7");
    // update-relay: another relay-dir (and purge settings); the task keeps its place.
    let new_dir = c.dir.path().join("relay2");
    let f = c.dir.path().join("relay2.yaml");
    std::fs::write(
        &f,
        format!(
            "source-id: relay-src\nrelay-dir: {}\npurge: {{interval: 7200}}\nfrom:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\n",
            new_dir.display(),
            s.up.port
        ),
    )
    .unwrap();
    let o = dmctl(
        &c.addr,
        &["update-relay", "-s", "relay-src", &f.display().to_string()],
    );
    assert!(
        o.stdout.contains("\"result\": true"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    let cfg = dmctl(&c.addr, &["get-config", "source", "relay-src"]).stdout;
    assert!(
        cfg.contains("relay2") && cfg.contains("interval: 7200"),
        "{cfg}"
    );
    wait_for(
        "the relay in the new directory",
        Duration::from_secs(30),
        || {
            let idx = new_dir.join("worker-r").join("server-uuid.index");
            idx.exists().then_some(()).ok_or("no index yet".into())
        },
    );
    write_rows(&s, "rl7", 20, 20);
    wait_equal(&s, "ru", "rl7");
    c.wait_relay_caught_up(&s);
    wait_for(
        "the task back on the relay",
        Duration::from_secs(30),
        || {
            let st = c.sync_status("ru");
            (st["stage"] == "Running" && st["sync"]["binlogType"] == "local")
                .then_some(())
                .ok_or(st.to_string())
        },
    );
    // migrate-relay: paused, then a new sub-directory from the position asked for.
    let (file, pos) = master_pos(&s.up.url());
    let o = dmctl(
        &c.addr,
        &["migrate-relay", "relay-src", &file, &pos.to_string()],
    );
    assert!(
        o.stdout.contains("\"result\": true"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    wait_for("the relay paused", Duration::from_secs(30), || {
        let r = c.relay_status();
        (r["stage"] == "Paused").then_some(()).ok_or(r.to_string())
    });
    ok(
        &dmctl(&c.addr, &["resume-relay", "-s", "relay-src"]),
        "resume-relay",
    );
    wait_for("a second sub-directory", Duration::from_secs(30), || {
        let r = c.relay_status();
        (r["relaySubDir"]
            .as_str()
            .is_some_and(|d| d.ends_with(".000002"))
            && r["stage"] == "Running")
            .then_some(())
            .ok_or(r.to_string())
    });
    write_rows(&s, "rl7", 40, 20);
    wait_equal(&s, "ru", "rl7");
    ok(&dmctl(&c.addr, &["stop-task", "ru"]), "stop-task");
}

/// Without the relay each task reads the upstream itself: with `server-id` in the source file
/// (as DM's files have it), the second task must not register as the same replica (a second
/// stream under one id ends the first); both tasks replicate every row and stay Running.
#[test]
fn two_tasks_of_a_source_with_a_server_id_both_replicate_without_the_relay() {
    let _serial = serial();
    let s = servers();
    let tasks = ["sa", "sb"];
    let c = RelayCluster::start_with(&s, false, "server-id: 424242\n");
    create(&s, "sid", &tasks);
    for t in tasks {
        c.start_task(&s, t, "sid");
    }
    for t in tasks {
        wait_for(&format!("{t} runs"), Duration::from_secs(30), || {
            let st = c.sync_status(t);
            (st["stage"] == "Running" && st["sync"]["binlogType"] == "remote")
                .then_some(())
                .ok_or(st.to_string())
        });
    }
    write_rows(&s, "sid", 0, 300);
    for t in tasks {
        wait_equal(&s, t, "sid");
    }
    let ids = rows(&s.up.url(), "SHOW SLAVE HOSTS");
    assert_eq!(ids.len(), 2, "two replica registrations: {ids:?}");
    assert!(
        ids.iter()
            .any(|r| r[0].as_deref().map(|v| v.trim_matches('\'')) == Some("424242")),
        "one reads as the source's server-id: {ids:?}"
    );
    for t in tasks {
        assert_eq!(c.sync_status(t)["stage"], "Running");
        ok(&dmctl(&c.addr, &["stop-task", t]), "stop-task");
    }
}
