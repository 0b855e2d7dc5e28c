//! Task files written by dmctl, with the real binaries and MariaDB: `generate-task-config` from a
//! description (the file passes `check-task --offline`, holds no clear password, and runs: a row
//! is copied and another replicated), `generate-task-config --from-master` (then `plan DIR`
//! shows no changes), and `config export` / `config import` onto a fresh master.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::check::contents;
use common::cluster::{CtlOut, Master, dmctl, ok, source_yaml};
use common::sql::{exec, master_pos};

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `dmctl --master-addr ADDR args...` with extra environment variables.
fn dmctl_env(addr: &str, args: &[&str], env: &[(&str, &str)]) -> CtlOut {
    let out = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .arg("--master-addr")
        .arg(addr)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run dmctl");
    CtlOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// A master with its own worker and the source `s1` on the upstream at `port`.
fn master_with_source(dir: &Path, port: u16) -> Master {
    let master = Master::start(dir, true);
    let f = dir.join("s1.yaml");
    std::fs::write(&f, source_yaml("s1", port)).unwrap();
    ok(
        &dmctl(
            &master.addr,
            &["operate-source", "create", &f.display().to_string()],
        ),
        "operate-source create",
    );
    master
}

fn stages(addr: &str, task: &str) -> Vec<String> {
    let out = dmctl(addr, &["query-status", task]);
    if out.code != 0 {
        return vec![];
    }
    let j = out.json();
    j["sources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s["subTaskStatus"].as_array().cloned().unwrap_or_default())
        .map(|st| st["stage"].as_str().unwrap_or("").to_string())
        .collect()
}

fn rows(url: &str, table: &str) -> usize {
    contents(url, table).map(|r| r.len()).unwrap_or(0)
}

/// An incremental task file starting at the upstream's current position.
fn incremental_task(name: &str, db: &str, up: &str, down_port: u16) -> String {
    let (file, pos) = master_pos(up);
    format!(
        "name: {name}\ntask-mode: incremental\n\
target-database: {{host: 127.0.0.1, port: {down_port}, user: root, password: ''}}\n\
mysql-instances:\n  - {{source-id: s1, block-allow-list: b, meta: {{binlog-name: {file}, binlog-pos: {pos}}}}}\n\
block-allow-list:\n  b: {{do-dbs: [{db}]}}\n"
    )
}

#[test]
fn a_generated_task_passes_the_offline_check_and_replicates() {
    let pair = common::shared_pair(71);
    let (up, down) = (pair.up.url(), pair.down.url());
    exec(
        &up,
        &[
            "CREATE DATABASE gen",
            "CREATE TABLE gen.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO gen.t VALUES (1, 'copied')",
        ],
    );
    // The target user has a password: the file must hold it encrypted.
    exec(
        &down,
        &[
            "CREATE USER 'gen'@'127.0.0.1' IDENTIFIED BY 'gen-s3cret'",
            "GRANT ALL PRIVILEGES ON *.* TO 'gen'@'127.0.0.1'",
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let master = master_with_source(work.path(), pair.up.port);
    let file = work.path().join("gen.yaml");
    let f = file.display().to_string();
    let target = format!("127.0.0.1:{}", pair.down.port);
    let out = dmctl(
        &master.addr,
        &[
            "generate-task-config",
            "--name",
            "gen",
            "-s",
            "s1",
            "--target",
            &target,
            "--target-user",
            "gen",
            "--target-password",
            "gen-s3cret",
            "--pattern",
            "gen.*",
            "-o",
            &f,
        ],
    );
    ok(&out, "generate-task-config");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("gen-s3cret"), "clear password:\n{text}");
    let check = dmctl(&master.addr, &["check-task", "--offline", &f]);
    ok(&check, "check-task --offline");
    assert!(
        check.stdout.contains(": ok: task \"gen\""),
        "{}",
        check.stdout
    );

    ok(&dmctl(&master.addr, &["start-task", &f]), "start-task");
    wait_until("the existing row is copied", 60, || {
        rows(&down, "gen.t") == 1
    });
    exec(&up, &["INSERT INTO gen.t VALUES (2, 'replicated')"]);
    wait_until("the new row is replicated", 60, || {
        contents(&down, "gen.t") == contents(&up, "gen.t")
    });
}

#[test]
fn a_cluster_exported_from_the_master_plans_no_changes() {
    let pair = common::shared_pair(71);
    let up = pair.up.url();
    exec(&up, &["CREATE DATABASE exp_a", "CREATE DATABASE exp_b"]);
    let work = tempfile::tempdir().unwrap();
    let master = master_with_source(work.path(), pair.up.port);
    let addr = master.addr.clone();
    for (name, db) in [("exp-a", "exp_a"), ("exp-b", "exp_b")] {
        let f = work.path().join(format!("{name}.yaml"));
        std::fs::write(&f, incremental_task(name, db, &up, pair.down.port)).unwrap();
        ok(
            &dmctl(&addr, &["start-task", &f.display().to_string()]),
            "start-task",
        );
    }
    ok(&dmctl(&addr, &["pause-task", "exp-b"]), "pause-task");

    let dir = work.path().join("exported");
    let d = dir.display().to_string();
    let out = dmctl(&addr, &["generate-task-config", "--from-master", "-o", &d]);
    ok(&out, "generate-task-config --from-master");
    for var in [
        "DM_SOURCE_S1_PASSWORD",
        "DM_TASK_EXP_A_PASSWORD",
        "DM_TASK_EXP_B_PASSWORD",
    ] {
        assert!(out.stdout.contains(var), "{var} not named:\n{}", out.stdout);
    }
    for f in [
        "sources/s1.yaml",
        "tasks/exp-a.yaml",
        "tasks/exp-b.yaml",
        "reconcile.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!text.contains("******"), "{f}:\n{text}");
    }
    let env = [
        ("DM_SOURCE_S1_PASSWORD", ""),
        ("DM_TASK_EXP_A_PASSWORD", ""),
        ("DM_TASK_EXP_B_PASSWORD", ""),
    ];
    let plan = dmctl_env(&addr, &["plan", &d, "--detailed-exitcode"], &env);
    assert_eq!(
        plan.code, 0,
        "changes planned:\n{}{}",
        plan.stdout, plan.stderr
    );
    assert_eq!(stages(&addr, "exp-b"), vec!["Paused"]);
}

#[test]
fn config_export_then_import_moves_the_cluster_to_a_fresh_master() {
    let pair = common::shared_pair(71);
    let (up, down) = (pair.up.url(), pair.down.url());
    exec(
        &up,
        &[
            "CREATE DATABASE cfg",
            "CREATE TABLE cfg.t (id INT PRIMARY KEY, v INT)",
        ],
    );
    exec(
        &down,
        &[
            "CREATE DATABASE cfg",
            "CREATE TABLE cfg.t (id INT PRIMARY KEY, v INT)",
        ],
    );
    let old_work = tempfile::tempdir().unwrap();
    let mut old = master_with_source(old_work.path(), pair.up.port);
    let f = old_work.path().join("cfg.yaml");
    std::fs::write(&f, incremental_task("cfg", "cfg", &up, pair.down.port)).unwrap();
    ok(
        &dmctl(&old.addr, &["start-task", &f.display().to_string()]),
        "start-task",
    );
    exec(&up, &["INSERT INTO cfg.t VALUES (1, 1)"]);
    wait_until("row 1 on the old master", 60, || rows(&down, "cfg.t") == 1);

    let dir = old_work.path().join("configs");
    let d = dir.display().to_string();
    let out = dmctl(&old.addr, &["config", "export", "-d", &d]);
    ok(&out, "config export");
    assert!(
        out.stdout
            .contains(&format!("export configs to directory `{d}` succeed")),
        "{}",
        out.stdout
    );
    ok(&dmctl(&old.addr, &["stop-task", "cfg"]), "stop-task");
    old.proc.stop();

    let new_work = tempfile::tempdir().unwrap();
    let new = Master::start(new_work.path(), true);
    let env = [("DM_SOURCE_S1_PASSWORD", ""), ("DM_TASK_CFG_PASSWORD", "")];
    let out = dmctl_env(&new.addr, &["config", "import", "-d", &d], &env);
    ok(&out, "config import");
    assert_eq!(
        out.stdout,
        format!(
            "start creating sources\nstart creating tasks\nimport configs from directory `{d}` succeed\n"
        )
    );
    assert_eq!(stages(&new.addr, "cfg"), vec!["Running"]);
    // The task goes on from its checkpoint on the new master.
    exec(&up, &["INSERT INTO cfg.t VALUES (2, 2)"]);
    wait_until("row 2 through the new master", 60, || {
        contents(&down, "cfg.t") == contents(&up, "cfg.t")
    });
    let plan = dmctl_env(&new.addr, &["plan", &d, "--detailed-exitcode"], &env);
    assert_eq!(
        plan.code, 0,
        "changes planned:\n{}{}",
        plan.stdout, plan.stderr
    );
}
