//! DM's own dmctl expectations, ported from pingcap/tiflow `dm/tests/dmctl_basic` (run.sh and
//! check_list/*.sh) and the argument and usage parts of `dm/tests/dmctl_command/run.sh`, with
//! DM's commands, expected strings and counts unchanged (written as they stand in the shell
//! scripts, quotes and all; see `common/dmctl_dm.rs` for how they are run and counted). Each
//! test is named after DM's shell function. They run against one real dm-master shared by the
//! tests of this file (none of them changes its state); the `DM_MASTER_ADDR` and `:PORT` checks
//! of dmctl_command run against a master, a worker and a task on real MariaDB.
//!
//! Variables of DM's scripts: `$MASTER_PORT` is the shared master's free port (DM's is 8261,
//! which its texts name), `$SOURCE_ID1` / `$SOURCE_ID2` are DM's source names,
//! `$MYSQL1_CONF` a source file.
//!
//! Not ported here:
//! - dmctl_command case 1 (`dmctl --help` is 43 lines): the count is DM's command list; dm-rs
//!   has more commands (DM v1's, the reconciler's `plan` / `apply` / `reconcile`, ...), so the
//!   root help is checked for cobra's form instead (`root_help_has_cobras_form`).
//! - dmctl_command's `validation ...` expectations (run_validator_cmd,
//!   run_validation_start_stop_cmd, run_validator_cmd_error, query_status_disable_validator):
//!   dm-rs has no data validator.
//! - dmctl_command check_privilege and check_task_lightning: they check TiDB's privileges and
//!   `max_connections` for Lightning (TiDB-only).
//! - operate_source.sh, transfer_source.sh, config.sh, the check-task results of
//!   check_task.sh, `start-task --start-time` and source-wide pause/resume/stop: ported with
//!   those commands (operate-source `-w`, transfer-source, the `config` family, check-task
//!   limits, `--start-time`), not with the argument layer.

mod common;
#[path = "common/dmctl_dm.rs"]
mod dmctl_dm;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::cluster::{Master, WorkerProc, dmctl, ok, source_yaml};
use common::sql::master_pos;
use dmctl_dm::Dm;

/// The dm-master the tests of this file share, with DM's script variables.
struct Shared {
    _dir: tempfile::TempDir,
    master: Master,
    dm: Dm,
}

fn shared() -> Arc<Shared> {
    static SHARED: Mutex<Weak<Shared>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let dir = tempfile::tempdir().unwrap();
    let master = Master::start(dir.path(), false);
    let port = master.addr.rsplit_once(':').unwrap().1.to_string();
    let source = dir.path().join("source1.yaml");
    std::fs::write(&source, source_yaml("mysql-replica-01", 3306)).unwrap();
    let dm = Dm::new()
        .var("MASTER_PORT", &port)
        .var("SOURCE_ID1", "mysql-replica-01")
        .var("SOURCE_ID2", "mysql-replica-02")
        .var("MYSQL1_CONF", &source.display().to_string());
    let s = Arc::new(Shared {
        _dir: dir,
        master,
        dm,
    });
    *slot = Arc::downgrade(&s);
    s
}

const ADDR: &str = r#""127.0.0.1:$MASTER_PORT""#;

// ---- run.sh: dmctl before the master has started ----

#[test]
fn start_dmctl_when_master_have_not_started() {
    // $MASTER_PORT: a free port nothing listens on (DM's text names its own, 8261).
    let port = common::free_port().to_string();
    let dm = Dm::new().var("MASTER_PORT", &port);
    dm.run_dm_ctl(
        ADDR,
        r#""any command""#,
        &[
            (r#""can't connect to 127.0.0.1:$MASTER_PORT""#, 1),
            (r#""Please check your network connection\.""#, 1),
        ],
    );
    dm.run_dm_ctl_cmd_mode(
        ADDR,
        r#""any command""#,
        &[
            (r#""unknown command \"any\" for \"dmctl\"""#, 1),
            (r#""Run 'dmctl --help' for usage\.""#, 1),
        ],
    );
}

// ---- check_list/check_task.sh (argument checks) ----

#[test]
fn check_task_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""check-task""#,
        &[(
            r#""check-task <config-file> \[--error count\] \[--warn count\] \[flags\]""#,
            1,
        )],
    );
}

#[test]
fn check_task_wrong_config_file() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""check-task not_exists_config_file""#,
        &[(r#""error in get file content""#, 1)],
    );
}

// ---- check_list/pause_relay.sh, resume_relay.sh ----

#[test]
fn pause_relay_wrong_arg_and_without_worker() {
    let s = shared();
    // pause_relay_wrong_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""pause-relay wrong_arg""#,
        &[(r#""pause-relay <-s source ...> \[flags\]""#, 1)],
    );
    // pause_relay_without_worker
    s.dm.run_dm_ctl(
        ADDR,
        r#""pause-relay""#,
        &[(r#""must specify at least one source""#, 1)],
    );
}

#[test]
fn resume_relay_wrong_arg_and_wihout_worker() {
    let s = shared();
    // resume_relay_wrong_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""resume-relay wrong_arg""#,
        &[(r#""resume-relay <-s source ...> \[flags\]""#, 1)],
    );
    // resume_relay_wihout_worker
    s.dm.run_dm_ctl(
        ADDR,
        r#""resume-relay""#,
        &[(r#""must specify at least one source""#, 1)],
    );
}

// ---- check_list/pause_task.sh, resume_task.sh, stop_task.sh ----

#[test]
fn pause_task_wrong_arg() {
    let s = shared();
    let usage = r#""pause-task \[-s source ...\] \[task-name | task-file\] \[flags\]""#;
    s.dm.run_dm_ctl(ADDR, r#""pause-task""#, &[(usage, 1)]);
    s.dm.run_dm_ctl(ADDR, r#""pause-task -s a -s b""#, &[(usage, 1)]);
}

#[test]
fn resume_task_wrong_arg() {
    let s = shared();
    let usage = r#""resume-task \[-s source ...\] \[task-name | task-file\] \[flags\]""#;
    s.dm.run_dm_ctl(ADDR, r#""resume-task""#, &[(usage, 1)]);
    s.dm.run_dm_ctl(ADDR, r#""resume-task -s a -s b""#, &[(usage, 1)]);
}

#[test]
fn stop_task_wrong_arg() {
    let s = shared();
    let usage = r#""stop-task \[-s source ...\] \[task-name | task-file\] \[flags\]""#;
    s.dm.run_dm_ctl(ADDR, r#""stop-task""#, &[(usage, 1)]);
    s.dm.run_dm_ctl(ADDR, r#""stop-task -s a -s b""#, &[(usage, 1)]);
}

// ---- check_list/query_status.sh ----

#[test]
fn query_status_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""query-status wrong_args_count more_than_one""#,
        &[(
            r#""query-status \[-s source ...\] \[task-name | task-file\]""#,
            1,
        )],
    );
}

#[test]
fn query_status_wrong_params() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""query-status -s source-x task-y""#,
        &[(r#""sources \[source-x\] haven't been added""#, 1)],
    );
}

// ---- check_list/start_task.sh ----

#[test]
fn start_task_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""start-task""#,
        &[(
            r#""start-task \[-s source ...\] \[--remove-meta\] <config-file> \[flags\]""#,
            1,
        )],
    );
}

#[test]
fn start_task_wrong_config_file() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""start-task not_exists_config_file""#,
        &[(r#""error in get file content""#, 1)],
    );
}

// ---- check_list/show_ddl_locks.sh ----

#[test]
fn show_ddl_locks_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""shard-ddl-lock a b""#,
        &[(r#""dmctl shard-ddl-lock \[task\]""#, 1)],
    );
    s.dm.run_dm_ctl(
        ADDR,
        r#""show-ddl-locks a b""#,
        &[(
            r#""show-ddl-locks \[-s source ...\] \[task-name | task-file\] \[flags\]""#,
            1,
        )],
    );
}

// ---- check_list/update_relay.sh ----

#[test]
fn update_relay_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-relay""#,
        &[(
            r#""update-relay \[-s source ...\] <config-file> \[flags\]""#,
            1,
        )],
    );
}

#[test]
fn update_relay_wrong_config_file() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-relay not_exists_config_file""#,
        &[(r#""error in get file content""#, 1)],
    );
}

#[test]
fn update_relay_should_specify_one_dm_worker() {
    let s = shared();
    // update_relay_should_specify_one_dm_worker $MYSQL1_CONF
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-relay $MYSQL1_CONF""#,
        &[(r#""must specify one source (\`-s\` \/ \`--source\`)""#, 1)],
    );
}

// ---- check_list/update_task.sh ----

#[test]
fn update_task_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-task""#,
        &[(
            r#""update-task \[-s source ...\] <config-file> \[flags\]""#,
            1,
        )],
    );
}

#[test]
fn update_task_wrong_config_file() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-task not_exists_config_file""#,
        &[(r#""error in get file content""#, 1)],
    );
}

// ---- check_list/update_master_config.sh ----

#[test]
fn update_master_config_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-master-config""#,
        &[(r#""update-master-config <config-file> \[flags\]""#, 1)],
    );
}

#[test]
fn update_master_config_wrong_config_file() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""update-master-config not_exists_config_file""#,
        &[(r#""error in get file content""#, 1)],
    );
}

// ---- check_list/purge_relay.sh ----

#[test]
fn purge_relay_wrong_arg() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""purge-relay wrong_arg""#,
        &[(
            r#""purge-relay <-s source> <-f filename> \[--sub-dir directory\] \[flags\]""#,
            1,
        )],
    );
}

#[test]
fn purge_relay_without_worker() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""purge-relay""#,
        &[(
            r#""must specify at least one source (\`-s\` \/ \`--source\`)""#,
            1,
        )],
    );
}

#[test]
fn purge_relay_filename_with_multi_workers() {
    let s = shared();
    s.dm.run_dm_ctl(
        ADDR,
        r#""purge-relay --filename bin-000001 -s $SOURCE_ID1 -s $SOURCE_ID2""#,
        &[(
            r#""for --filename, can only specify one source per time""#,
            1,
        )],
    );
}

// ---- check_list/start_relay.sh, stop_relay.sh ----

#[test]
fn start_relay_empty_arg_and_wrong_arg() {
    let s = shared();
    // start_relay_empty_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""start-relay""#,
        &[(r#""start-relay <-s source-id>""#, 1)],
    );
    // start_relay_wrong_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""start-relay wrong_arg""#,
        &[(r#""must specify one source (\`-s\` \/ \`--source\`)""#, 1)],
    );
}

#[test]
fn stop_relay_empty_arg_and_wrong_arg() {
    let s = shared();
    // stop_relay_empty_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""stop-relay""#,
        &[(r#""stop-relay <-s source-id>""#, 1)],
    );
    // stop_relay_wrong_arg
    s.dm.run_dm_ctl(
        ADDR,
        r#""stop-relay wrong_arg""#,
        &[(r#""must specify one source (\`-s\` \/ \`--source\`)""#, 1)],
    );
}

// ---- check_list/dmctl.sh: master addresses ----

#[test]
fn dmctl_multiple_addrs() {
    let s = shared();
    s.dm.run_dm_ctl(
        r#""127.0.0.1:$MASTER_PORT,127.0.0.1:1234""#,
        r#""list-member""#,
        &[(r#""\"result\": true""#, 1)],
    );
}

#[test]
fn dmctl_unwrap_schema() {
    let s = shared();
    s.dm.run_dm_ctl(
        r#""http://127.0.0.1:1234,127.0.0.1:4322,https://127.0.0.1:$MASTER_PORT""#,
        r#""list-member""#,
        &[(r#""\"result\": true""#, 1)],
    );
}

#[test]
fn dmctl_wrong_addrs() {
    let s = shared();
    s.dm.run_dm_ctl(
        r#""https://127.0.0.1:1234,127.0.0.2:1234""#,
        r#""list-member""#,
        &[(
            r#""can't connect to https:\/\/127.0.0.1:1234,127.0.0.2:1234""#,
            1,
        )],
    );
}

#[test]
fn dmctl_no_addr() {
    let s = shared();
    s.dm.run_dm_ctl_cmd_mode(
        r#""""#,
        r#""list-member""#,
        &[(r#""master-addr not provided""#, 1)],
    );
}

// ---- dmctl_command/run.sh: help and usage ----

/// `echo $help_msg | grep -q "P"`: the output with its blanks collapsed contains P.
fn echo_grep_q(output: &str, pattern: &str) -> bool {
    let flat = output.split_whitespace().collect::<Vec<_>>().join(" ");
    dmctl_dm::count_o(&flat, pattern) > 0
}

#[test]
fn dmctl_command_help_and_usage() {
    let s = shared();
    // case 2: `dmctl --master-addr=:$MASTER_PORT start-task` prints start-task's usage
    let r =
        s.dm.dmctl_args(&["--master-addr=:$MASTER_PORT", "start-task"]);
    assert_ne!(r.code, 0, "exit code should be not zero");
    assert!(
        echo_grep_q(&r.output, "dmctl start-task"),
        "dmctl case 2 help failed: {}",
        r.output
    );
    // case 3: an unknown command before start-task
    let r =
        s.dm.dmctl_args(&["--master-addr=:$MASTER_PORT", "xxxx", "start-task"]);
    assert_ne!(r.code, 0, "exit code should be not zero");
    assert!(r.output.lines().count() >= 1, "dmctl case 3 help failed");
    assert!(
        echo_grep_q(&r.output, "unknown command \"xxxx\" for \"dmctl\""),
        "dmctl case 3 help failed: {}",
        r.output
    );
    // case 4: `dmctl start-task --help` has one Usage: line
    let r = s.dm.dmctl_args(&["start-task", "--help"]);
    let n = r.output.lines().filter(|l| l.contains("Usage:")).count();
    assert_eq!(n, 1, "dmctl case 4 help failed: {}", r.output);
}

/// Not DM's expectation (its is a line count of DM's own command list, see the module doc):
/// the root help has cobra's parts.
#[test]
fn root_help_has_cobras_form() {
    let r = Dm::new().dmctl_args(&["--help"]);
    assert_eq!(r.code, 0);
    for part in [
        "\nUsage:\n  dmctl [flags]\n  dmctl [command]\n\nAvailable Commands:\n",
        "\n  help ",
        "\n\nFlags:\n",
        "\n  -h, --help ",
        "Use \"dmctl [command] --help\" for more information about a command.",
    ] {
        assert!(r.output.contains(part), "{part:?} missing:\n{}", r.output);
    }
}

// ---- dmctl_command/run.sh: files DM refuses before anything runs ----

/// DM's dmctl_command conf file `name` (tests/data/dm_dmctl_command), edited as DM's script
/// edits it (`edit`), written to a temp file whose path is returned.
fn dmctl_command_conf(
    dir: &std::path::Path,
    name: &str,
    edit: impl Fn(String) -> String,
) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/dm_dmctl_command")
            .join(name),
    )
    .unwrap();
    let path = dir.join(format!("wrong-{name}"));
    std::fs::write(&path, edit(text)).unwrap();
    path.display().to_string()
}

/// `check wrong backoff-max`, `check wrong do-tables`, `check wrong chunk-filesize`.
#[test]
fn dmctl_command_wrong_backoff_max_do_tables_and_chunk_filesize() {
    let s = shared();
    let dir = tempfile::tempdir().unwrap();
    // sed -i "s/backoff-max: 5m/backoff-max: 0.1s/g" wrong-source.yaml
    let source = dmctl_command_conf(dir.path(), "source1.yaml", |t| {
        t.replace("backoff-max: 5m", "backoff-max: 0.1s")
    });
    s.dm.clone().var("WRONG_SOURCE", &source).run_dm_ctl(
        ADDR,
        r#""operate-source create $WRONG_SOURCE""#,
        &[
            (r#""\"result\": false""#, 1),
            (r#""Please increase \`backoff-max\`""#, 1),
        ],
    );
    // sed -i "/do-dbs:/a\    do-tables:\n    - db-name: \"dmctl_command\"" wrong-dm-task.yaml
    // sed -i "/do-dbs:/d" wrong-dm-task.yaml
    // echo "ignore-checking-items: [\"all\"]" >> wrong-dm-task.yaml
    let task = dmctl_command_conf(dir.path(), "dm-task.yaml", |t| {
        let mut out = String::new();
        for line in t.lines() {
            if line.contains("do-dbs:") {
                out.push_str("    do-tables:\n    - db-name: \"dmctl_command\"\n");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("ignore-checking-items: [\"all\"]\n");
        out
    });
    s.dm.clone().var("WRONG_TASK", &task).run_dm_ctl(
        ADDR,
        r#""start-task $WRONG_TASK""#,
        &[(r#""Table string cannot be empty""#, 1)],
    );
    // sed -i "s/chunk-filesize: 64/chunk-filesize: 6qwe4/g" wrong-dm-task.yaml
    let task = dmctl_command_conf(dir.path(), "dm-task.yaml", |t| {
        t.replace("chunk-filesize: 64", "chunk-filesize: 6qwe4")
    });
    s.dm.clone().var("WRONG_TASK", &task).run_dm_ctl(
        ADDR,
        r#""start-task $WRONG_TASK""#,
        &[(r#""invalid \`chunk-filesize\` 6qwe4""#, 1)],
    );
}

// ---- dm-rs: the interactive shell reading stdin (DM's run_dm_ctl relies on it) ----

#[test]
fn interactive_shell_runs_each_line_and_survives_errors() {
    let s = shared();
    let addr = s.master.addr.clone();
    let input = "query-status\n\n  list-member --worker\nno-such-command\nget-config task 'unterminated\npause-task\nhelp\nexit\nquery-status\n";
    let r = run_stdin(&["--master-addr", &addr], input);
    assert_eq!(r.code, 0, "{}", r.output);
    let c = |p: &str| dmctl_dm::count(&r.output, p);
    assert_eq!(
        c(r#""tasks": \[\]"#),
        1,
        "one query-status before exit:\n{}",
        r.output
    );
    assert_eq!(c(r#""worker": {"#), 1, "list-member ran:\n{}", r.output);
    assert_eq!(c(r#"unknown command "no-such-command" for "dmctl""#), 1);
    assert_eq!(c("unterminated ' quote"), 1);
    assert_eq!(c(r"dmctl pause-task \[-s source ...\]"), 1);
    assert_eq!(c("Available Commands:"), 1, "help printed the root help");
    // a line's own --master-addr wins over the session's
    let r = run_stdin(
        &["-master-addr", &addr],
        "query-status --master-addr 127.0.0.1:1\n",
    );
    assert_eq!(r.code, 0);
    assert_eq!(
        dmctl_dm::count(&r.output, "can't connect to 127.0.0.1:1, RawCause"),
        1,
        "{}",
        r.output
    );
    // `-master-addr=` empty and no DM_MASTER_ADDR: DM's complaint, no shell
    let r = run_stdin(&["-master-addr="], "list-member\n");
    assert_eq!(r.code, 1);
    assert_eq!(
        dmctl_dm::count(&r.output, "master-addr not provided"),
        1,
        "{}",
        r.output
    );
}

fn run_stdin(args: &[&str], input: &str) -> dmctl_dm::Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(args)
        .env_remove("DM_MASTER_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmctl");
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let o = child.wait_with_output().expect("wait dmctl");
    dmctl_dm::Run {
        cmd: args.join(" "),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        code: o.status.code().unwrap_or(-1),
    }
}

// ---- dmctl_command/run.sh: DM_MASTER_ADDR and `--master-addr=:PORT` with a running task ----

#[test]
fn dmctl_command_master_addr_env_and_empty_host() {
    let pair = common::shared_pair(81);
    let (up, down) = (&pair.up, &pair.down);
    common::sql::exec(&up.url(), &["CREATE DATABASE dmctl_command"]);
    let (file, pos) = master_pos(&up.url());
    let work = tempfile::tempdir().unwrap();
    let master = Master::start(work.path(), false);
    let addr = master.addr.clone();
    let _w1 = WorkerProc::start(work.path(), "worker1", &addr);
    let src = work.path().join("source1.yaml");
    std::fs::write(&src, source_yaml("mysql-replica-01", up.port)).unwrap();
    common::cluster::create_source_bound(&addr, &src);
    let task = work.path().join("dm-task.yaml");
    std::fs::write(
        &task,
        format!(
            "name: test\ntask-mode: incremental\n\
target-database: {{host: 127.0.0.1, port: {}, user: root, password: ''}}\n\
mysql-instances:\n\
  - {{source-id: mysql-replica-01, block-allow-list: ba, meta: {{binlog-name: {file}, binlog-pos: {pos}}}}}\n\
block-allow-list:\n  ba: {{do-dbs: [dmctl_command]}}\n",
            down.port
        ),
    )
    .unwrap();
    ok(
        &dmctl(&addr, &["start-task", &task.display().to_string()]),
        "start-task",
    );
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let dm = Dm::new().var("MASTER_PORT", &port);
    // query status with command mode: `dmctl --master-addr=:$MASTER_PORT query-status`;
    // `grep -r Running query-status.log | wc -l` must be 1 (retried here until the task runs)
    let t = Instant::now();
    loop {
        let r = dm.dmctl_args(&["--master-addr=:$MASTER_PORT", "query-status"]);
        let running = r.output.lines().filter(|l| l.contains("Running")).count();
        if running == 1 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "query status failed with command: {running} task\n{}",
            r.output
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // use DM_MASTER_ADDR env
    let dm = dm.env("DM_MASTER_ADDR", &format!("127.0.0.1:{port}"));
    dm.run_dm_ctl_with_retry(
        r#""""#,
        r#""query-status test""#,
        10,
        &[(r#""worker1""#, 1)],
    );
}
