//! DM v1's master commands with the real binaries: `refresh-worker-tasks` (one line per
//! worker, empty when the worker runs what the master expects, the error when it does not
//! answer), and dm-master's `--config` file with `update-master-config` (a log level applied
//! online, a data-dir change named as needing a restart, no config file to update).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{Master, Proc, WorkerProc, dmctl, ok, source_yaml, wait_port};
use common::sql::{exec, master_pos};

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stage of each worker list-member shows, by name.
fn worker_stages(addr: &str) -> Vec<(String, String)> {
    let j = dmctl(addr, &["list-member", "--worker"]).json();
    j["members"][0]["worker"]["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap_or("").to_string(),
                w["stage"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn refresh_lines(addr: &str) -> (serde_json::Value, Vec<(String, String)>) {
    let out = dmctl(addr, &["refresh-worker-tasks"]);
    ok(&out, "refresh-worker-tasks");
    let j = out.json();
    let lines = j["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|w| {
            (
                w["worker"].as_str().unwrap_or("").to_string(),
                w["msg"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    (j, lines)
}

#[test]
fn refresh_worker_tasks_gives_one_empty_line_per_worker_running_what_it_should() {
    let pair = common::shared_pair(61);
    let (up, down) = (&pair.up, &pair.down);
    exec(
        &up.url(),
        &["CREATE DATABASE rwt_a", "CREATE DATABASE rwt_b"],
    );
    let (file, pos) = master_pos(&up.url());
    let work = tempfile::tempdir().unwrap();
    let master = Master::start(work.path(), false);
    let addr = master.addr.clone();
    let _w1 = WorkerProc::start(work.path(), "w1", &addr);
    let _w2 = WorkerProc::start(work.path(), "w2", &addr);
    wait_until("both workers online", 30, || {
        worker_stages(&addr)
            .iter()
            .filter(|(_, s)| s == "free")
            .count()
            == 2
    });
    for id in ["s1", "s2"] {
        let f = work.path().join(format!("{id}.yaml"));
        std::fs::write(&f, source_yaml(id, up.port)).unwrap();
        ok(
            &dmctl(
                &addr,
                &["operate-source", "create", &f.display().to_string()],
            ),
            "operate-source create",
        );
    }
    wait_until("both sources bound", 30, || {
        worker_stages(&addr).iter().all(|(_, s)| s == "bound")
    });
    let task = work.path().join("task.yaml");
    std::fs::write(
        &task,
        format!(
            "name: rwt\ntask-mode: incremental\n\
target-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n\
mysql-instances:\n\
  - {{source-id: s1, block-allow-list: a, meta: {{binlog-name: {file}, binlog-pos: {pos}}}}}\n\
  - {{source-id: s2, block-allow-list: b, meta: {{binlog-name: {file}, binlog-pos: {pos}}}}}\n\
block-allow-list:\n  a: {{do-dbs: [rwt_a]}}\n  b: {{do-dbs: [rwt_b]}}\n",
            down.port
        ),
    )
    .unwrap();
    ok(
        &dmctl(&addr, &["start-task", &task.display().to_string()]),
        "start-task",
    );

    let (j, lines) = refresh_lines(&addr);
    assert_eq!(j["result"], true, "{j:#}");
    assert_eq!(
        lines,
        vec![
            ("w1".to_string(), String::new()),
            ("w2".to_string(), String::new())
        ],
        "{j:#}"
    );
    // The master logs the task → workers map it rebuilt from the workers' answers.
    let log = master.proc.log_text();
    assert!(
        log.contains("workers of each task") && log.contains("\"rwt\": {\"w1\", \"w2\"}"),
        "{log}"
    );
}

#[test]
fn refresh_worker_tasks_names_the_error_of_a_worker_that_does_not_answer() {
    let work = tempfile::tempdir().unwrap();
    let master = Master::start(work.path(), false);
    let addr = master.addr.clone();
    let _w1 = WorkerProc::start(work.path(), "w1", &addr);
    let mut w2 = WorkerProc::start(work.path(), "w2", &addr);
    wait_until("both workers online", 30, || {
        worker_stages(&addr)
            .iter()
            .filter(|(_, s)| s == "free")
            .count()
            == 2
    });
    // Free workers (no source bound) are fine.
    let (_, lines) = refresh_lines(&addr);
    assert_eq!(
        lines,
        vec![("w1".into(), String::new()), ("w2".into(), String::new())]
    );
    w2.proc.stop();
    let (j, lines) = refresh_lines(&addr);
    assert_eq!(j["result"], true, "{j:#}");
    assert_eq!(lines[0], ("w1".to_string(), String::new()), "{j:#}");
    assert_eq!(lines[1].0, "w2");
    assert!(lines[1].1.starts_with("dm-worker w2"), "{j:#}");
}

/// Starts dm-master with `args`, its log in `dir`, and waits for `addr`.
fn start_master(dir: &Path, args: &[String], addr: &str) -> Proc {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let p = Proc::spawn(
        env!("CARGO_BIN_EXE_dm-master"),
        args,
        dir.join(format!("master-{n}.log")),
        "dm-master",
    );
    wait_port(addr, Duration::from_secs(20));
    p
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

#[test]
fn dm_master_reads_its_config_file_and_a_flag_wins_over_it() {
    let work = tempfile::tempdir().unwrap();
    let (file_addr, flag_addr) = (free_addr(), free_addr());
    let data = work.path().join("data-from-file");
    let log = work.path().join("master.log");
    let cfg = work.path().join("dm-master.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"from-file\"\nmaster-addr = \"{file_addr}\"\ndata-dir = \"{}\"\nlog-level = \"info\"\nlog-file = \"{}\"\npush-interval = \"500ms\"\n",
            data.display(),
            log.display()
        ),
    )
    .unwrap();
    let _m = start_master(
        work.path(),
        &[
            "--config".into(),
            cfg.display().to_string(),
            "--master-addr".into(),
            flag_addr.clone(),
        ],
        &flag_addr,
    );
    let out = dmctl(&flag_addr, &["get-config", "master", "from-file"]);
    ok(&out, "get-config master");
    assert!(
        out.stdout
            .contains(&format!("master-addr = \\\"{flag_addr}\\\"")),
        "{}",
        out.stdout
    );
    assert!(std::net::TcpStream::connect(&file_addr).is_err());
    assert!(data.is_dir(), "data-dir from the file");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("dm-master listening") && text.contains("push_interval: 500ms"),
        "{text}"
    );
}

#[test]
fn dm_master_refuses_a_bad_config_file_naming_its_line() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("dm-master.toml");
    std::fs::write(
        &cfg,
        "name = \"m\"\nlog-levl = \"debug\"\nworker-offline-after = \"8s\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-master"))
        .args(["--config", &cfg.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "dm-master: {}:2:1: unknown key \"log-levl\" (did you mean \"log-level\"?)",
            cfg.display()
        )
    );
}

fn master_toml(name: &str, addr: &str, data: &Path, level: &str) -> String {
    format!(
        "name = \"{name}\"\nmaster-addr = \"{addr}\"\ndata-dir = \"{}\"\nlog-level = \"{level}\"\n",
        data.display()
    )
}

/// A master started with `--config` (and its own worker).
fn master_with_config(work: &Path, text: &str, addr: &str) -> (Proc, std::path::PathBuf) {
    let cfg = work.join("dm-master.toml");
    std::fs::write(&cfg, text).unwrap();
    let p = start_master(
        work,
        &[
            "--config".into(),
            cfg.display().to_string(),
            "--with-worker".into(),
        ],
        addr,
    );
    (p, cfg)
}

const DEBUG_LINE: &str = "refresh-worker-tasks: the worker's report";

#[test]
fn update_master_config_applies_a_log_level_change_online() {
    let work = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let data = work.path().join("data");
    let (master, cfg) =
        master_with_config(work.path(), &master_toml("m1", &addr, &data, "info"), &addr);
    ok(&dmctl(&addr, &["refresh-worker-tasks"]), "refresh");
    assert!(!master.log_text().contains(DEBUG_LINE), "debug before");

    let new = work.path().join("new.toml");
    let text = master_toml("m1", &addr, &data, "debug");
    std::fs::write(&new, &text).unwrap();
    let out = dmctl(&addr, &["update-master-config", &new.display().to_string()]);
    ok(&out, "update-master-config");
    let j = out.json();
    assert_eq!(j["result"], true, "{j:#}");
    assert_eq!(j["msg"], "log-level: changed from info to debug (applied)");
    assert_eq!(
        j["workers"][0]["sourceStatus"]["worker"], "worker-local",
        "{j:#}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text,
        "file rewritten"
    );

    // The same command now logs its debug line: the level changed without a restart.
    ok(&dmctl(&addr, &["refresh-worker-tasks"]), "refresh");
    wait_until("a debug line in the master log", 10, || {
        master.log_text().contains(DEBUG_LINE)
    });
}

#[test]
fn update_master_config_names_a_data_dir_change_as_needing_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let (old_dir, new_dir) = (work.path().join("old"), work.path().join("new"));
    let (mut master, cfg) = master_with_config(
        work.path(),
        &master_toml("m1", &addr, &old_dir, "info"),
        &addr,
    );
    let new = work.path().join("new.toml");
    std::fs::write(&new, master_toml("m1", &addr, &new_dir, "info")).unwrap();
    let out = dmctl(&addr, &["update-master-config", &new.display().to_string()]);
    ok(&out, "update-master-config");
    assert_eq!(
        out.json()["msg"],
        format!(
            "data-dir: changed from {} to {}; takes effect after a restart",
            old_dir.display(),
            new_dir.display()
        )
    );
    // Still running on the old directory …
    ok(&dmctl(&addr, &["list-member"]), "list-member");
    assert!(!new_dir.exists());
    // … and on the new one after a restart with the same --config.
    master.stop();
    let _m = start_master(
        work.path(),
        &["--config".into(), cfg.display().to_string()],
        &addr,
    );
    assert!(new_dir.is_dir());
}

#[test]
fn update_master_config_without_a_config_file_says_there_is_none() {
    let work = tempfile::tempdir().unwrap();
    let master = Master::start(work.path(), false);
    let new = work.path().join("new.toml");
    std::fs::write(&new, "log-level = \"debug\"\n").unwrap();
    let out = dmctl(
        &master.addr,
        &["update-master-config", &new.display().to_string()],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["result"], false);
    assert!(
        j["msg"]
            .as_str()
            .unwrap()
            .contains("there is no config file to update"),
        "{j:#}"
    );
}
