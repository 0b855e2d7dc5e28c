//! DM's own dmctl expectations for sources, source-wide task operations, transfer-source, the
//! config family and dm-master's `--secret-key-path`, ported from pingcap/tiflow (HEAD):
//! `dm/tests/dmctl_basic/check_list/{operate_source,transfer_source,config}.sh`, `run.sh`
//! (the source set-up, `test_operate_task_bound_to_a_source`, the transfers, the encrypt
//! checks) and `dm/tests/dmctl_command/run.sh` (operate-source `-w`, the encrypted source
//! password). Real binaries, real MariaDB (one pair shared by both tests).
//!
//! How the checks run: DM's `run_dm_ctl WORKDIR ADDR "cmd" "pattern" COUNT ...` pipes the
//! command into dmctl's interactive mode and counts the occurrences of each pattern (a grep
//! basic regex) in stdout + stderr. Here dmctl runs one-shot with the same arguments
//! (`dmctl --master-addr ADDR cmd...`; dmctl reading commands from a non-tty stdin is another
//! change) and [`run_dm_ctl`] counts the same patterns, kept as DM writes them, the same way.
//!
//! What differs from DM's set-up: MariaDB instead of MySQL/TiDB; both sources read the same
//! upstream; the tasks are DM's `foo-task` / `bar-task` / `baz-task` with the downstream's port
//! and `task-mode: incremental` from the upstream's current position (DM's `all` dumps nothing
//! there either: `do-dbs` names a database that does not exist); worker3 (a free worker) and
//! the master's default name `dm-master` (DM: `master1`); DM's source files set `server-id`,
//! which dm-rs uses for every task of the source, so two tasks of one source would share a
//! replica id (DM picks a random one when the upstream refuses a duplicate; dm-rs does not
//! yet): the files here leave it out, and dm-rs picks one per task.
//!
//! Not ported, by name, with the reason:
//! - config.sh `diff_get_config`'s `diff` of each file against DM's `conf/get_*.{yaml,toml}`:
//!   DM's files list DM's keys (etcd, TiDB session, validators, …); dm-rs writes its own keys.
//!   What the diff is for is checked instead: the files are loaded again (operate-source
//!   create, start-task, dm-master --config) and give the same cluster.
//! - run.sh `encrypt` on a master without `--secret-key-path` → `secret key not initialized`:
//!   deliberately not DM v7 — dm-rs keeps DM v1–v6's built-in key when no key file is given
//!   (the seed's `dmctl -encrypt`, DM v1–v6 ciphertexts keep working); see `dmctl help encrypt`.
//! - dmctl_command `operate-source create source1-encrypted-pass.yaml` → `"result": false` /
//!   `Access denied for user` on a master *without* a key: that ciphertext is DM's
//!   built-in-key one, which dm-rs without a key reads (same reason as above). The same
//!   command and patterns are checked against a master *with* a key, where dm-rs reads it as
//!   DM v7 does (with the wrong key) and refuses the source as DM does, after connecting.
//! - run.sh `operate-source show` right after the source files: DM's files set `relay-dir`
//!   with `sed`; dm-rs's relay dir is the worker's (not needed for these checks).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::check::wait_for;
use common::cluster::{Master, Proc, WorkerProc, wait_port};
use common::sql::{exec, master_pos};
use common::{MariaDb, free_port, shared_pair};

const SOURCE_ID1: &str = "mysql-replica-01";
const SOURCE_ID2: &str = "mysql-replica-02";

/// Counts the non-overlapping occurrences of a grep basic regex in `text` as DM's
/// `run_dm_ctl` does (`sed "s/P/P\n/g" | grep -c P`): `.` is any character but a newline,
/// `\c` the character `c`, everything else itself (DM's patterns use nothing more).
fn bre_count(text: &str, pattern: &str) -> usize {
    #[derive(Clone, Copy)]
    enum Tok {
        Lit(char),
        Any,
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '\\' => Tok::Lit(it.next().expect("pattern ends with a backslash")),
            '.' => Tok::Any,
            '*' | '^' | '$' => panic!("{pattern:?}: not needed by the ported patterns"),
            c => Tok::Lit(c),
        });
    }
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| {
        toks.iter()
            .enumerate()
            .all(|(k, t)| match (t, chars.get(i + k)) {
                (_, None) => false,
                (Tok::Any, Some(c)) => *c != '\n',
                (Tok::Lit(l), Some(c)) => l == c,
            })
    };
    let (mut i, mut n) = (0, 0);
    while i < chars.len() {
        if !toks.is_empty() && at(i) {
            n += 1;
            i += toks.len();
        } else {
            i += 1;
        }
    }
    n
}

/// dmctl one-shot with DM's command line (split on white space); stdout and stderr together.
fn ctl(addr: &str, cmd: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .arg("--master-addr")
        .arg(addr)
        .args(cmd.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .expect("run dmctl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The counts of `checks` in `out` that differ: (pattern, got, want).
fn mismatches<'a>(out: &str, checks: &[(&'a str, usize)]) -> Vec<(&'a str, usize, usize)> {
    checks
        .iter()
        .map(|(p, want)| (*p, bre_count(out, p), *want))
        .filter(|(_, got, want)| got != want)
        .collect()
}

/// DM's `run_dm_ctl ADDR "cmd" "pattern" COUNT ...`.
fn run_dm_ctl(addr: &str, cmd: &str, checks: &[(&str, usize)]) -> String {
    let out = ctl(addr, cmd);
    let bad = mismatches(&out, checks);
    assert!(
        bad.is_empty(),
        "{cmd}: (pattern, got, expected) {bad:?}\n{out}"
    );
    out
}

/// DM's `run_dm_ctl_with_retry` (here: until the counts hold, 30 s at most).
fn run_dm_ctl_with_retry(addr: &str, cmd: &str, checks: &[(&str, usize)]) -> String {
    let t = Instant::now();
    loop {
        let out = ctl(addr, cmd);
        let bad = mismatches(&out, checks);
        if bad.is_empty() {
            return out;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{cmd}: (pattern, got, expected) {bad:?}\n{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// DM's `dmctl_operate_source create FILE SOURCE-ID`.
fn dmctl_operate_source(addr: &str, file: &Path, source_id: &str) {
    run_dm_ctl(
        addr,
        &format!("operate-source create {}", file.display()),
        &[
            (r#""result": true"#, 2),
            (&format!(r#""source": "{source_id}""#), 1),
        ],
    );
}

/// DM's `conf/source{1,2}.yaml` without `server-id` (see the module doc) and filters.
fn source_yaml(id: &str, port: u16, user: &str, password: &str) -> String {
    format!(
        "source-id: {id}\nenable-gtid: false\nrelay-binlog-name: ''\nrelay-binlog-gtid: ''\nenable-relay: false\nfrom:\n  host: 127.0.0.1\n  user: {user}\n  password: '{password}'\n  port: {port}\n"
    )
}

/// DM's `conf/{foo,bar,baz}-task.yaml` with the downstream's port and incremental meta.
fn dm_task(name: &str, sources: &[&str], down: u16, file: &str, pos: u64) -> String {
    let mut t = format!(
        "name: {name}\ntask-mode: incremental\nshard-mode: pessimistic\n\ntarget-database:\n  host: \"127.0.0.1\"\n  port: {down}\n  user: \"root\"\n  password: \"\"\n\nmysql-instances:\n"
    );
    for s in sources {
        t.push_str(&format!(
            "  - source-id: \"{s}\"\n    block-allow-list:  \"instance\"\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n"
        ));
    }
    t.push_str("\nblock-allow-list:\n  instance:\n    do-dbs: [\"dmctl_command_dummy\"]\n");
    t
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Logs of the processes a test started, shown when it fails.
struct Logs(Vec<PathBuf>);

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.0 {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("---- {} (last lines) ----", p.display());
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// run.sh `test_operate_task_bound_to_a_source`, word for word.
fn test_operate_task_bound_to_a_source(addr: &str, conf: &Path) {
    let f = |n: &str| conf.join(n).display().to_string();
    let t = r#""result": true"#;
    let paused = r#""stage": "Paused""#;
    let running = r#""stage": "Running""#;
    let stage = r#""stage": "#;
    let q1 = "query-status -s mysql-replica-01";
    let q2 = "query-status -s mysql-replica-02";
    // both foo-task and bar-task have 2 sources
    run_dm_ctl(
        addr,
        &format!("start-task {}", f("foo-task.yaml")),
        &[(t, 3)],
    );
    run_dm_ctl(
        addr,
        &format!("start-task {}", f("bar-task.yaml")),
        &[(t, 3)],
    );

    run_dm_ctl(addr, "pause-task -s xxx", &[("haven't been added", 1)]);
    run_dm_ctl(addr, "resume-task -s xxx", &[("haven't been added", 1)]);
    run_dm_ctl(addr, "stop-task -s xxx", &[("haven't been added", 1)]);

    // batch pause mysql-replica-01
    run_dm_ctl(addr, "pause-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(paused, 2)]);
    run_dm_ctl(addr, q2, &[(running, 2)]);
    // batch pause mysql-replica-02
    run_dm_ctl(addr, "pause-task -s mysql-replica-02", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(paused, 2)]);
    run_dm_ctl(addr, q2, &[(paused, 2)]);

    // batch resume mysql-replica-01
    run_dm_ctl(addr, "resume-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(running, 2)]);
    run_dm_ctl(addr, q2, &[(paused, 2)]);
    // batch resume mysql-replica-02
    run_dm_ctl(addr, "resume-task -s mysql-replica-02", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(running, 2)]);
    run_dm_ctl(addr, q2, &[(running, 2)]);
    // stop
    run_dm_ctl(addr, "stop-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(stage, 0)]);
    run_dm_ctl(addr, q2, &[(running, 2)]);
    run_dm_ctl(addr, "stop-task -s mysql-replica-02", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(stage, 0)]);
    run_dm_ctl(addr, q2, &[(stage, 0)]);

    // bar-task has 2 sources, baz-task has 1 sources
    run_dm_ctl(
        addr,
        &format!("start-task {}", f("bar-task.yaml")),
        &[(t, 3)],
    );
    run_dm_ctl(
        addr,
        &format!("start-task {}", f("baz-task.yaml")),
        &[(t, 2)],
    );

    // batch pause mysql-replica-01
    run_dm_ctl(addr, "pause-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(paused, 2)]);
    run_dm_ctl(addr, q2, &[(running, 1)]);
    // batch pause mysql-replica-02
    run_dm_ctl(addr, "pause-task -s mysql-replica-02", &[(t, 3)]);
    run_dm_ctl(addr, q1, &[(paused, 2)]);
    run_dm_ctl(addr, q2, &[(paused, 1)]);

    // batch resume mysql-replica-01
    run_dm_ctl(addr, "resume-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(running, 2)]);
    run_dm_ctl(addr, q2, &[(paused, 1)]);
    // batch resume mysql-replica-02
    run_dm_ctl(addr, "resume-task -s mysql-replica-02", &[(t, 3)]);
    run_dm_ctl(addr, q1, &[(running, 2)]);
    run_dm_ctl(addr, q2, &[(running, 1)]);
    // stop
    run_dm_ctl(addr, "stop-task -s mysql-replica-01", &[(t, 5)]);
    run_dm_ctl(addr, q1, &[(stage, 0)]);
    run_dm_ctl(addr, q2, &[(running, 1)]);
    run_dm_ctl(addr, "stop-task -s mysql-replica-02", &[(t, 3)]);
    run_dm_ctl(addr, q1, &[(stage, 0)]);
    run_dm_ctl(addr, q2, &[(stage, 0)]);
}

#[test]
fn sources_source_wide_task_operations_transfer_and_config() {
    let pair = shared_pair(81);
    let (up, down) = (&pair.up, &pair.down);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let conf = work.join("conf");
    std::fs::create_dir(&conf).unwrap();
    let mut master = Master::start(work, false);
    let addr = master.addr.clone();
    let mut logs = Logs(vec![master.proc.log.clone()]);
    let (file, pos) = master_pos(&up.url());
    for (name, sources) in [
        ("foo-task", &[SOURCE_ID1, SOURCE_ID2][..]),
        ("bar-task", &[SOURCE_ID1, SOURCE_ID2][..]),
        ("baz-task", &[SOURCE_ID1][..]),
        ("test", &[SOURCE_ID1, SOURCE_ID2][..]),
    ] {
        write(
            &conf,
            &format!("{name}.yaml"),
            &dm_task(name, sources, down.port, &file, pos),
        );
    }
    let source1 = write(
        work,
        "source1.yaml",
        &source_yaml(SOURCE_ID1, up.port, "root", ""),
    );
    let source2 = write(
        work,
        "source2.yaml",
        &source_yaml(SOURCE_ID2, up.port, "root", ""),
    );

    // ---- usage_and_arg_test: operate_source.sh, transfer_source.sh ----
    run_dm_ctl(
        &addr,
        "operate-source",
        &[(
            r"operate-source <operate-type> \[config-file ...\] \[-w worker\] \[--print-sample-config\] \[flags\]",
            1,
        )],
    );
    run_dm_ctl(
        &addr,
        "operate-source create not_exists_config_file",
        &[("error in get file content", 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source invalid {}", source1.display()),
        &[("invalid operate", 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source stop {}", source1.display()),
        &[("source config with ID mysql-replica-01 not exists", 1)],
    );
    let usage = "transfer-source <source-id> <worker-id>";
    run_dm_ctl(&addr, "transfer-source", &[(usage, 1)]);
    run_dm_ctl(&addr, "transfer-source source-id", &[(usage, 1)]);
    run_dm_ctl(
        &addr,
        "transfer-source source-id worker-id another-worker",
        &[(usage, 1)],
    );
    // dm-rs: the sample DM's -p prints loads as a source file.
    let sample = ctl(&addr, "operate-source --print-sample-config");
    dm_rs::config::parse_source(sample.as_bytes()).expect("the sample source config loads");

    // ---- run.sh: sources without workers ----
    dmctl_operate_source(&addr, &source1, SOURCE_ID1);
    dmctl_operate_source(&addr, &source2, SOURCE_ID2);
    // stop source does not check connectivity to the upstream (a file and an ID)
    run_dm_ctl(
        &addr,
        &format!("operate-source stop {} {SOURCE_ID2}", source1.display()),
        &[(r#""result": true"#, 3)],
    );

    // ---- dmctl_command/run.sh: operate-source create -w ----
    // (DM's run.sh creates source1 and then starts worker1; with -w the binding is explicit.)
    let w1 = WorkerProc::start(work, "worker1", &addr);
    logs.0.push(w1.proc.log.clone());
    run_dm_ctl_with_retry(
        &addr,
        "list-member --name worker1",
        &[(r#""stage": "free""#, 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source create {} -w worker1", source1.display()),
        &[
            (r#""result": true"#, 2),
            (r#""source": "mysql-replica-01""#, 1),
        ],
    );
    run_dm_ctl_with_retry(
        &addr,
        "list-member --name worker1",
        &[
            (r#""stage": "bound""#, 1),
            (r#""source": "mysql-replica-01""#, 1),
        ],
    );
    run_dm_ctl(
        &addr,
        &format!(
            "operate-source create {} -w wrong-worker",
            source2.display()
        ),
        &[(r#""result": false"#, 1), ("not exists", 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source create {} -w worker1", source2.display()),
        &[(r#""result": false"#, 1), ("not free", 1)],
    );
    // dm-rs: -w only binds at create.
    let out = ctl(
        &addr,
        &format!("operate-source stop {SOURCE_ID1} -w worker1"),
    );
    assert!(out.contains("applies only to create"), "{out}");

    // ---- run.sh: the second source waits for a worker ----
    dmctl_operate_source(&addr, &source2, SOURCE_ID2);
    run_dm_ctl(
        &addr,
        "operate-source show",
        &[
            (r#""result": true"#, 3),
            (
                r#"msg": "source is added but there is no free worker to bound""#,
                1,
            ),
            (r#""worker": "worker1""#, 1),
        ],
    );
    let w2 = WorkerProc::start(work, "worker2", &addr);
    logs.0.push(w2.proc.log.clone());
    run_dm_ctl_with_retry(
        &addr,
        "operate-source show",
        &[
            (r#""result": true"#, 3),
            (r#""worker": "worker1""#, 1),
            (r#""worker": "worker2""#, 1),
        ],
    );
    run_dm_ctl(
        &addr,
        "operate-source show -s mysql-replica-01",
        &[(r#""result": true"#, 2), (r#""worker": "worker1""#, 1)],
    );

    test_operate_task_bound_to_a_source(&addr, &conf);

    // ---- run.sh: transfer-source ----
    run_dm_ctl(
        &addr,
        "transfer-source mysql-replica-01 worker1",
        &[(r#""result": true"#, 1)],
    ); // transfer to self
    run_dm_ctl(
        &addr,
        "transfer-source mysql-replica-01 worker2",
        &[("invalid stage transformation for dm-worker worker2", 1)],
    );
    // dm-rs beyond DM's script: DM's other checks, and a running task moving with its source.
    run_dm_ctl(
        &addr,
        "transfer-source mysql-replica-01 nosuch",
        &[("dm-worker with name nosuch not exists", 1)],
    );
    run_dm_ctl(
        &addr,
        "transfer-source nosuch worker1",
        &[("source config with ID nosuch not exists", 1)],
    );
    let w3 = WorkerProc::start(work, "worker3", &addr);
    logs.0.push(w3.proc.log.clone());
    run_dm_ctl_with_retry(
        &addr,
        "list-member --name worker3",
        &[(r#""stage": "free""#, 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("start-task {}", conf.join("baz-task.yaml").display()),
        &[(r#""result": true"#, 2)],
    );
    run_dm_ctl(
        &addr,
        "transfer-source mysql-replica-01 worker3",
        &[(r#""result": true"#, 1)],
    );
    run_dm_ctl_with_retry(
        &addr,
        "query-status baz-task",
        &[(r#""worker": "worker3""#, 1), (r#""stage": "Running""#, 1)],
    );
    run_dm_ctl(
        &addr,
        "list-member --worker",
        &[(r#""stage": "free""#, 1), (r#""stage": "bound""#, 2)],
    );
    // …and back; worker3 is free again.
    run_dm_ctl(
        &addr,
        "transfer-source mysql-replica-01 worker1",
        &[(r#""result": true"#, 1)],
    );
    run_dm_ctl_with_retry(
        &addr,
        "query-status baz-task",
        &[(r#""worker": "worker1""#, 1), (r#""stage": "Running""#, 1)],
    );
    run_dm_ctl(&addr, "stop-task baz-task", &[(r#""result": true"#, 2)]);

    // ---- config.sh: config_wrong_arg ----
    run_dm_ctl(&addr, "config", &[("Available Commands", 1)]);
    run_dm_ctl(&addr, "config hihi haha", &[("Available Commands", 1)]);
    run_dm_ctl(&addr, "config task haha", &[("task not found", 1)]);
    run_dm_ctl(&addr, "config master haha", &[("master not found", 1)]);
    run_dm_ctl(&addr, "config worker haha", &[("worker not found", 1)]);
    run_dm_ctl(&addr, "config source haha", &[("source not found", 1)]);
    // test alias
    let get_usage =
        r"get-config <task | master | worker | source> <name> \[--file filename\] \[flags\]";
    run_dm_ctl(&addr, "get-config haha", &[(get_usage, 1)]);
    run_dm_ctl(
        &addr,
        "get-config haha hihi",
        &[("invalid config type 'haha'", 1)],
    );
    run_dm_ctl(&addr, "get-config master haha", &[("master not found", 1)]);
    run_dm_ctl(&addr, "get-config worker haha", &[("worker not found", 1)]);
    run_dm_ctl(&addr, "get-config source haha", &[("source not found", 1)]);
    run_dm_ctl(&addr, "get-config task haha", &[("task not found", 1)]);
    run_dm_ctl(&addr, "get-task-config haha", &[("task not found", 1)]);
    run_dm_ctl(&addr, "get-task-config haha hihi", &[(get_usage, 1)]);

    // ---- config.sh: config_to_file ----
    run_dm_ctl(
        &addr,
        &format!("start-task {}", conf.join("test.yaml").display()),
        &[(r#""result": true"#, 3)],
    );
    let get_task = work.join("get_task.yaml");
    let get_source1 = work.join("get_source1.yaml");
    let get_source2 = work.join("get_source2.yaml");
    let master_conf = work.join("dm-master.toml");
    let worker1_conf = work.join("dm-worker1.toml");
    let t = r#""result": true"#;
    run_dm_ctl(
        &addr,
        &format!("config task test --path {}", get_task.display()),
        &[(t, 1)],
    );
    run_dm_ctl(
        &addr,
        &format!("config master dm-master --path {}", master_conf.display()),
        &[(t, 1)],
    );
    run_dm_ctl_with_retry(
        &addr,
        &format!("config worker worker1 --path {}", worker1_conf.display()),
        &[(t, 1)],
    );
    run_dm_ctl(
        &addr,
        &format!(
            "config source mysql-replica-01 --path {}",
            get_source1.display()
        ),
        &[(t, 1)],
    );
    run_dm_ctl(
        &addr,
        &format!(
            "config source mysql-replica-02 --path {}",
            get_source2.display()
        ),
        &[(t, 1)],
    );
    // What DM's diff checks, in dm-rs's terms: no password, the files are private and whole.
    for f in [&get_task, &get_source1, &get_source2] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.contains("password: '******'"),
            "{}: {text}",
            f.display()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let wtext = std::fs::read_to_string(&worker1_conf).unwrap();
    assert!(wtext.contains("name = \"worker1\"\n"), "{wtext}");
    let mtext = std::fs::read_to_string(&master_conf).unwrap();
    assert!(
        mtext.contains(&format!("master-addr = \"{addr}\"\n")),
        "{mtext}"
    );
    let sed = |f: &Path, to: &str| {
        let text = std::fs::read_to_string(f).unwrap();
        std::fs::write(
            f,
            text.replace("password: '******'", &format!("password: '{to}'")),
        )
        .unwrap();
    };
    sed(&get_task, "");
    sed(&get_source1, "");
    sed(&get_source2, "");

    // stop task
    run_dm_ctl(&addr, "stop-task test", &[(t, 3)]);
    // restart source with get config
    run_dm_ctl(
        &addr,
        "operate-source stop mysql-replica-01",
        &[(t, 2), (r#""msg": """#, 2)],
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source create {}", get_source1.display()),
        &[(t, 2)],
    );
    run_dm_ctl(&addr, "operate-source stop mysql-replica-02", &[(t, 2)]);
    run_dm_ctl(
        &addr,
        &format!("operate-source create {}", get_source2.display()),
        &[(t, 2)],
    );
    run_dm_ctl_with_retry(&addr, "operate-source show", &[(r#""worker": "worker"#, 2)]);
    // start task with get config
    run_dm_ctl(
        &addr,
        &format!("start-task {}", get_task.display()),
        &[(t, 3)],
    );

    // restart master with get config
    master.proc.stop();
    let log = work.join("master-from-get-config.log");
    master.proc = Proc::spawn(
        env!("CARGO_BIN_EXE_dm-master"),
        &["--config".to_string(), master_conf.display().to_string()],
        log.clone(),
        "dm-master",
    );
    logs.0.push(log);
    wait_port(&addr, Duration::from_secs(20));
    run_dm_ctl_with_retry(&addr, "query-status test", &[(r#""stage": "Running""#, 2)]);
    run_dm_ctl(
        &addr,
        &format!(
            "config master dm-master --path {}",
            work.join("again.toml").display()
        ),
        &[(t, 1)],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("again.toml")).unwrap(),
        mtext,
        "the master started from its get-config file has the same config"
    );
    // restart worker with get config (DM kills both workers; one is enough to show the file
    // starts a worker that takes its source back)
    let mut w1 = w1;
    w1.proc.stop();
    run_dm_ctl_with_retry(&addr, "list-member --worker", &[("offline", 1)]);
    let log = work.join("worker1-from-get-config.log");
    let w1_again = Proc::spawn(
        env!("CARGO_BIN_EXE_dm-worker"),
        &["--config".to_string(), worker1_conf.display().to_string()],
        log.clone(),
        "dm-worker",
    );
    logs.0.push(log);
    run_dm_ctl_with_retry(&addr, "list-member --worker", &[("bound", 2)]);
    run_dm_ctl_with_retry(&addr, "query-status test", &[(r#""stage": "Running""#, 2)]);
    run_dm_ctl(&addr, "stop-task test", &[(t, 3)]);
    drop((w1, w1_again, w2, w3));
}

/// DM's test key file (`dm/tests/dmctl_basic/conf/key.txt`).
const DM_KEY_FILE: &str = "1111111111111111111111111111111111111111111111111111111111111111\n";
/// "123456" encrypted with DM's test key (AES-256-CFB, IV 00..0f; made with OpenSSL).
const CIPHER_123456_TEST_KEY: &str = "AAECAwQFBgcICQoLDA0OD0AQW9FzvGo=";

/// A dm-master on a fresh port with extra flags; None when it exits within 2 s (its log).
fn master_with(work: &Path, data: &str, addr: &str, extra: &[String]) -> Result<Proc, String> {
    let mut args = vec![
        "--master-addr".to_string(),
        addr.to_string(),
        "--data-dir".to_string(),
        work.join(data).display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let log = work.join(format!("master-{data}-{n}.log"));
    let mut p = Proc::spawn(env!("CARGO_BIN_EXE_dm-master"), &args, log, "dm-master");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if p.exited() {
            return Err(p.log_text());
        }
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "dm-master on {addr} neither listens nor exits: {}",
        p.log_text()
    );
}

#[test]
fn secret_key_path_seals_passwords_with_the_clusters_key() {
    let pair = shared_pair(81);
    let (up, down): (&MariaDb, &MariaDb) = (&pair.up, &pair.down);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let key = write(work, "key.txt", DM_KEY_FILE);
    let key_flag = vec!["--secret-key-path".to_string(), key.display().to_string()];
    let addr = format!("127.0.0.1:{}", free_port());
    let mut logs = Logs(vec![]);

    // A key file that is not one: the master does not start.
    let bad = write(work, "bad-key.txt", "not hex\n");
    let e = master_with(
        work,
        "bad",
        &addr,
        &["--secret-key-path".into(), bad.display().to_string()],
    )
    .err()
    .expect("a bad key file stops the master");
    assert!(
        e.contains("[code=20067] invalid secret key path or content"),
        "{e}"
    );

    let mut m = master_with(work, "keyed", &addr, &key_flag).expect("master with a key");
    logs.0.push(m.log.clone());
    let w = WorkerProc::start(work, "worker-k", &addr);
    logs.0.push(w.proc.log.clone());

    // run.sh: `encrypt abc` through the master: DM's length (base64 of 16 + 1 + 3 bytes),
    // made with the cluster's key (DM's built-in key does not read it; dmctl cannot).
    let out = ctl(&addr, "encrypt abc");
    let val = out.lines().next().unwrap_or_default().to_string();
    assert_eq!(val.len(), 28, "ciphertext length is not right: {out}");
    assert_eq!(
        dm_rs::password::decrypt_with(Some(&[0x11; 32]), &val).unwrap(),
        "abc"
    );
    assert_ne!(
        dm_rs::password::decrypt_with(None, &val).ok().as_deref(),
        Some("abc")
    );
    let local = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(["decrypt", &val])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&local.stdout).trim(), "abc");

    // A source whose password is a ciphertext of the key file (as DM v7 makes it): the master
    // (precheck) and the worker (binlog) both read it with the cluster's key.
    exec(
        &up.url(),
        &[
            "CREATE USER IF NOT EXISTS 'dmenc'@'127.0.0.1' IDENTIFIED BY '123456'",
            "CREATE USER IF NOT EXISTS 'dmenc'@'localhost' IDENTIFIED BY '123456'",
            "GRANT ALL PRIVILEGES ON *.* TO 'dmenc'@'127.0.0.1'",
            "GRANT ALL PRIVILEGES ON *.* TO 'dmenc'@'localhost'",
            "CREATE DATABASE IF NOT EXISTS enc_db",
            "CREATE TABLE IF NOT EXISTS enc_db.t (id INT PRIMARY KEY, v VARCHAR(20))",
        ],
    );
    exec(
        &down.url(),
        &[
            "CREATE DATABASE IF NOT EXISTS enc_db",
            "CREATE TABLE IF NOT EXISTS enc_db.t (id INT PRIMARY KEY, v VARCHAR(20))",
        ],
    );
    let (file, pos) = master_pos(&up.url());
    let source = write(
        work,
        "source-enc.yaml",
        &source_yaml("enc-src", up.port, "dmenc", CIPHER_123456_TEST_KEY),
    );
    dmctl_operate_source(&addr, &source, "enc-src");
    run_dm_ctl_with_retry(
        &addr,
        "operate-source show -s enc-src",
        &[(r#""worker": "worker-k""#, 1)],
    );
    let task = write(
        work,
        "enc-task.yaml",
        &format!(
            "name: enc-task\ntask-mode: incremental\ntarget-database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: ''\nmysql-instances:\n  - source-id: enc-src\n    block-allow-list: b\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\nblock-allow-list:\n  b:\n    do-dbs: [enc_db]\n",
            down.port
        ),
    );
    run_dm_ctl(
        &addr,
        &format!("start-task {}", task.display()),
        &[(r#""result": true"#, 2)],
    );
    exec(
        &up.url(),
        &["INSERT INTO enc_db.t VALUES (1, 'a'), (2, 'b')"],
    );
    wait_for(
        "rows under the key-sealed password",
        Duration::from_secs(30),
        || match common::check::count(&down.url(), "enc_db.t") {
            2 => Ok(()),
            n => Err(format!("{n} rows")),
        },
    );
    // A dmctl without the key seals with DM's built-in key (config import, the reconciler do
    // too): the keyed master still reads it. DM v1–v6's own built-in ciphertext (random IV) is
    // read with the cluster's key, as DM v7 does — the wrong key: dmctl_command/run.sh's
    // "without set secret-key-path, we cannot use encrypted password", the other way round.
    let local = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(["encrypt", "123456"])
        .output()
        .unwrap();
    let local = String::from_utf8_lossy(&local.stdout).trim().to_string();
    let f = write(
        work,
        "enc-local.yaml",
        &source_yaml("enc-local", up.port, "dmenc", &local),
    );
    dmctl_operate_source(&addr, &f, "enc-local");
    let t = std::fs::read_to_string(&task)
        .unwrap()
        .replace("enc-src", "enc-local")
        .replace("name: enc-task", "name: enc-local");
    let t = write(work, "enc-local-task.yaml", &t);
    run_dm_ctl(
        &addr,
        &format!("check-task {}", t.display()),
        &[(r#""result": true"#, 1)],
    );
    run_dm_ctl(
        &addr,
        "operate-source stop enc-local",
        &[(r#""result": true"#, 2)],
    );
    // dmctl_command's `operate-source create $cur/conf/source1-encrypted-pass.yaml` →
    // `"result": false`, `Access denied for user`: the master connects to the upstream
    // before it adds a source, and the DM v1–v6 ciphertext read with this cluster's key is
    // not the password.
    let f = write(
        work,
        "enc-dm6.yaml",
        &source_yaml(
            "enc-dm6",
            up.port,
            "dmenc",
            "/Q7B9DizNLLTTfiZHv9WoEAKamfpIUs=",
        ),
    );
    run_dm_ctl(
        &addr,
        &format!("operate-source create {}", f.display()),
        &[(r#""result": false"#, 1), ("Access denied for user", 1)],
    );
    let out = run_dm_ctl(
        &addr,
        "operate-source show",
        &[(r#""source": "enc-src""#, 1)],
    );
    assert!(
        !out.contains("enc-dm6"),
        "a refused source is not stored: {out}"
    );

    // Never shown: get-config masks it, and the master's config names the key's file only.
    let out = run_dm_ctl(&addr, "config source enc-src", &[(r#""result": true"#, 1)]);
    assert!(out.contains("password: '******'"), "{out}");
    assert!(
        !out.contains(CIPHER_123456_TEST_KEY) && !out.contains("123456"),
        "{out}"
    );
    let out = run_dm_ctl(
        &addr,
        "get-config master dm-master",
        &[(r#""result": true"#, 1)],
    );
    assert!(
        out.contains(&format!("secret-key-path = \\\"{}\\\"", key.display())),
        "{out}"
    );
    assert!(!out.contains("1111111111"), "{out}");

    // The store is sealed with the key: without it the master does not start…
    m.stop();
    let e = master_with(work, "keyed", &addr, &[])
        .err()
        .expect("the store refuses a master without its key");
    assert!(
        e.contains("sealed with a secret key") && e.contains("without --secret-key-path"),
        "{e}"
    );
    // …with it, everything goes on.
    let m = master_with(work, "keyed", &addr, &key_flag).expect("master with its key again");
    logs.0.push(m.log.clone());
    run_dm_ctl_with_retry(
        &addr,
        "query-status enc-task",
        &[(r#""stage": "Running""#, 1)],
    );
    exec(&up.url(), &["INSERT INTO enc_db.t VALUES (3, 'c')"]);
    wait_for(
        "rows after the restart",
        Duration::from_secs(30),
        || match common::check::count(&down.url(), "enc_db.t") {
            3 => Ok(()),
            n => Err(format!("{n} rows")),
        },
    );
    run_dm_ctl(&addr, "stop-task enc-task", &[(r#""result": true"#, 2)]);
    run_dm_ctl(
        &addr,
        "operate-source stop enc-src",
        &[(r#""result": true"#, 2)],
    );
    drop(w);
    drop(m);

    // A master without a key (dm-rs's deliberate difference to DM v7, see the module doc):
    // encrypt answers with DM's built-in key, which dmctl reads back locally.
    let plain_addr = format!("127.0.0.1:{}", free_port());
    let m2 = master_with(work, "plain", &plain_addr, &[]).expect("master without a key");
    logs.0.push(m2.log.clone());
    let out = ctl(&plain_addr, "encrypt a");
    let val = out.lines().next().unwrap_or_default().to_string();
    let back = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(["decrypt", &val])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&back.stdout).trim(), "a", "{out}");
    // The seed's v1 flag, no master: local, DM's built-in key.
    let v1 = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(["-encrypt", "123456"])
        .output()
        .unwrap();
    let v1 = String::from_utf8_lossy(&v1.stdout).trim().to_string();
    assert_eq!(dm_rs::password::decrypt_with(None, &v1).unwrap(), "123456");
}
