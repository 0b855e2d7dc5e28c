//! The real dmctl binary: version banner, encrypt/decrypt, DM's single-dash flags, help, and
//! `check-task --offline` agreeing with the config model over the whole DM corpus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dmctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(args)
        .env_remove("DM_MASTER_ADDR")
        .output()
        .expect("run dmctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn version_banner_has_dm_fields() {
    let o = dmctl(&["-V"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let keys: Vec<&str> = out.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "Release Version",
            "Git Commit Hash",
            "Git Branch",
            "UTC Build Time",
            "Rust Version"
        ]
    );
    assert!(out.contains("rustc 1."), "{out}");
}

#[test]
fn encrypt_differs_each_run_and_decrypts_back() {
    let a = stdout(&dmctl(&["-encrypt", "123456"])).trim().to_string();
    let b = stdout(&dmctl(&["--encrypt", "123456"])).trim().to_string();
    let c = stdout(&dmctl(&["encrypt", "123456"])).trim().to_string();
    assert!(!a.is_empty() && a != b && b != c && a != c);
    for cipher in [&a, &b, &c] {
        assert_eq!(stdout(&dmctl(&["-decrypt", cipher])).trim(), "123456");
        assert_eq!(stdout(&dmctl(&["decrypt", cipher])).trim(), "123456");
    }
    assert_eq!(
        stdout(&dmctl(&["decrypt", "Up8156jArvIPymkVC+5LxkAT6rek"])).trim(),
        "1234"
    );
}

#[test]
fn corrupt_ciphertext_fails_with_dm_code() {
    let o = dmctl(&["decrypt", "%%%not-base64"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[code=11050]"), "{}", stderr(&o));
    let o = dmctl(&["-decrypt", "YWJj"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[code=11047]"));
}

#[test]
fn help_lists_commands_and_explains_one() {
    let o = dmctl(&["help"]);
    assert!(o.status.success());
    for cmd in ["encrypt", "decrypt", "check-task"] {
        assert!(stdout(&o).contains(cmd), "{}", stdout(&o));
    }
    let o = dmctl(&["help", "check-task"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--offline"));
    let o = dmctl(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
}

fn corpus(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/dm-corpus")
        .join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn check_task_offline_accepts_the_valid_corpus() {
    let mut files = corpus("tasks-valid");
    files.extend(corpus("sources-valid"));
    let args: Vec<String> = ["-master-addr", "127.0.0.1:1", "check-task", "--offline"]
        .iter()
        .map(|s| s.to_string())
        .chain(files.iter().map(|p| p.display().to_string()))
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.contains(": ok: ")).count(),
        files.len()
    );
}

#[test]
fn check_task_offline_rejects_each_invalid_file_with_its_code() {
    for f in corpus("invalid") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let want = name.split('-').next().unwrap();
        let o = dmctl(&["check-task", "--offline", &f.display().to_string()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {out}");
        assert!(lines[0].starts_with(&f.display().to_string()), "{out}");
        assert!(
            lines[0].contains(&format!("[code={want}]")),
            "{name}: {out}"
        );
        let lib = dm_rs::config::load_task_file(&f).unwrap_err().to_string();
        assert_eq!(lines[0], lib);
    }
}

#[test]
fn check_task_against_an_unreachable_master_fails_clearly() {
    let task = corpus("tasks-valid").into_iter().next().unwrap();
    let o = dmctl(&[
        "--master-addr",
        "127.0.0.1:1",
        "check-task",
        &task.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("can't connect to 127.0.0.1:1, RawCause: "),
        "{}",
        stderr(&o)
    );
    let o = dmctl(&["check-task", &task.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--master-addr"), "{}", stderr(&o));
}

/// An address nothing listens on: every master call must fail to connect.
const NOWHERE: &str = "127.0.0.1:1";

fn dmctl_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(args)
        .env_remove("DM_MASTER_ADDR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dmctl");
    // dmctl may end before it reads (no master): a closed pipe is not the test's failure
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().expect("wait dmctl")
}

fn first_valid_task() -> String {
    corpus("tasks-valid")
        .into_iter()
        .next()
        .unwrap()
        .display()
        .to_string()
}

fn first_valid_source() -> String {
    corpus("sources-valid")
        .into_iter()
        .next()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_cluster_command_reports_an_unreachable_master() {
    let task = first_valid_task();
    let source = first_valid_source();
    let commands: Vec<Vec<&str>> = vec![
        vec!["operate-source", "create", &source],
        vec!["operate-source", "show"],
        vec!["operate-source", "stop", "mysql-replica-01"],
        vec!["start-task", &task],
        vec!["start-task", "-s", "s1,s2", "--remove-meta", &task],
        vec!["pause-task", "test"],
        vec!["resume-task", "-s", "s1", "test"],
        vec!["stop-task", &task],
        vec!["pause-task", "-s", "s1"],
        vec!["update-task", &task],
        vec!["query-status"],
        vec!["query-status", "-s", "s1", "test", "--more"],
        vec!["query-status", "test", "--watch"],
        vec!["query-status", "-watch", "-s", "s1", "test"],
        vec!["get-config", "task", "test"],
        vec!["list-member", "--worker", "-n", "w1"],
        vec!["offline-member", "--type", "worker", "--name", "w1"],
        vec!["offline-member", "--master", "--name", "m1"],
        vec!["check-task", &task],
        vec!["refresh-worker-tasks"],
    ];
    // DM's words for a master that does not answer
    let dm = format!(
        "Error: [code=48001:class=dmctl:scope=internal:level=high], Message: can't connect to {NOWHERE}, RawCause: "
    );
    // the commands that read the whole cluster connect through the reconciler's client
    let reconciler = format!("can not connect to master {NOWHERE}: ");
    let read_all: Vec<Vec<&str>> = vec![
        vec!["config", "export", "-d", "/nonexistent/dmrs-export"],
        vec![
            "generate-task-config",
            "--from-master",
            "-o",
            "/nonexistent/dmrs-export",
        ],
    ];
    for (cmd, want) in commands
        .into_iter()
        .map(|c| (c, &dm))
        .chain(read_all.into_iter().map(|c| (c, &reconciler)))
    {
        let mut args = vec!["-master-addr", NOWHERE, "--rpc-timeout", "5s"];
        args.extend(cmd.iter().copied());
        let o = dmctl(&args);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want.as_str()),
            "{cmd:?}: {}",
            stderr(&o)
        );
        if want == &dm {
            assert!(
                stderr(&o).contains(", Workaround: Please check your network connection."),
                "{cmd:?}: {}",
                stderr(&o)
            );
        }
        assert_eq!(stdout(&o), "", "{cmd:?}");
    }
}

#[test]
fn invalid_files_are_rejected_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let bad_source = dir.path().join("source.yaml");
    std::fs::write(&bad_source, "source-id: \"\"\nfrom:\n  host: 127.0.0.1\n").unwrap();
    let bad_task = corpus("invalid")
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("20023")
        })
        .unwrap();
    let bad_task = bad_task.display().to_string();
    let bad_source = bad_source.display().to_string();
    let missing = dir.path().join("missing.yaml").display().to_string();
    let bad_master = dir.path().join("dm-master.toml");
    std::fs::write(&bad_master, "name = \"m\"\nlog-level = \"loud\"\n").unwrap();
    let bad_master = bad_master.display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["update-master-config", &bad_master],
            &bad_master,
            "2:13: log-level: \"loud\" is not a log level",
        ),
        (vec!["start-task", &bad_task], &bad_task, "[code=20023]"),
        (vec!["update-task", &bad_task], &bad_task, "[code=20023]"),
        (
            vec!["operate-source", "create", &bad_source],
            &bad_source,
            "[code=",
        ),
        (
            vec!["operate-source", "update", &bad_source],
            &bad_source,
            "[code=",
        ),
        (
            vec!["start-task", &missing],
            &missing,
            "error in get file content",
        ),
        (
            vec!["update-task", &missing],
            &missing,
            "error in get file content",
        ),
        (
            vec!["operate-source", "create", &missing],
            &missing,
            "[code=20018]",
        ),
    ];
    for (cmd, file, code) in cases {
        let mut args = vec!["--master-addr", NOWHERE];
        args.extend(cmd.iter().copied());
        let o = dmctl(&args);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}");
        // On stderr, or (operate-source, as DM answers) in the JSON answer's `msg`.
        let err = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
        assert!(
            err.lines().any(|l| {
                let l = l.trim().trim_start_matches("\"msg\": \"");
                l.starts_with(&format!("{file}:")) && l.contains(code)
            }),
            "{cmd:?}: {err}"
        );
        assert!(
            !err.contains("can't connect"),
            "{cmd:?} called the master: {err}"
        );
    }
    let lib = dm_rs::config::load_task_file(Path::new(&bad_task))
        .unwrap_err()
        .to_string();
    let o = dmctl(&["--master-addr", NOWHERE, "start-task", &bad_task]);
    assert_eq!(stderr(&o).trim_end(), lib);
}

#[test]
fn usage_errors_exit_2() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["operate-source", "start", "x.yaml"],
        vec!["operate-source", "create"],
        vec!["operate-source"],
        vec!["get-config", "subtask", "t"],
        vec!["get-config", "task"],
        vec!["query-status", "a", "b"],
        vec!["start-task"],
        vec!["pause-task", "-s", "a", "-s", "b"],
        vec!["pause-task"],
        vec!["offline-member", "--name", "w1"],
        vec!["offline-member", "--master", "--worker", "--name", "w1"],
        vec!["offline-member", "--type", "worker"],
        vec!["offline-member", "--type", "tidb", "--name", "x"],
        vec!["list-member", "extra"],
        vec!["query-status", "--rpc-timeout", "soon"],
        vec!["query-status", "--watch"],
        vec!["query-status", "-s", "s1", "--watch"],
        vec!["query-status", "t", "--watch", "--interval", "1ms"],
        vec!["query-status", "t", "--watch", "--interval", "soon"],
        vec!["query-status", "t", "--interval", "1s"],
    ];
    for cmd in cases {
        let mut args = vec!["--master-addr", NOWHERE];
        args.extend(cmd.iter().copied());
        let o = dmctl(&args);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stdout(&o));
        assert!(!stderr(&o).contains("can't connect"), "{cmd:?}");
    }
}

#[test]
fn query_status_help_documents_watch() {
    let o = dmctl(&["query-status", "--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("--watch"), "{out}");
    assert!(out.contains("progress bar per source"), "{out}");
    assert!(out.contains("--interval string"), "{out}");
}

#[test]
fn help_shows_dm_usage_lines() {
    let cases = [
        (
            "operate-source",
            "operate-source <operate-type> [config-file ...]",
        ),
        (
            "start-task",
            "start-task [-s source ...] [--remove-meta] <config-file>",
        ),
        (
            "pause-task",
            "pause-task [-s source ...] [task-name | task-file]",
        ),
        (
            "resume-task",
            "resume-task [-s source ...] [task-name | task-file]",
        ),
        (
            "stop-task",
            "stop-task [-s source ...] [task-name | task-file]",
        ),
        ("update-task", "update-task [-s source ...] <config-file>"),
        (
            "query-status",
            "query-status [-s source ...] [task-name | task-file] [--more] [--watch [--interval DURATION]]",
        ),
        (
            "get-config",
            "get-config <task | master | worker | source> <name> [--file filename]",
        ),
        (
            "list-member",
            "list-member [--leader] [--master] [--worker] [--name master-name/worker-name ...]",
        ),
        ("offline-member", "offline-member <--master/--worker"),
        (
            "check-task",
            "check-task <config-file> [--error count] [--warn count]",
        ),
        (
            "handle-error",
            "handle-error <task-name | task-file> [-s source ...] [-b binlog-pos] <skip/replace/revert> [replace-sql1;replace-sql2;]",
        ),
        ("binlog", "Usage:\n  dmctl binlog [command]"),
        (
            "sql-skip",
            "sql-skip <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name>",
        ),
        (
            "sql-replace",
            "sql-replace <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name> <sql1;sql2;>",
        ),
        (
            "sql-inject",
            "sql-inject <-w worker> <task-name> <sql1;sql2;>",
        ),
        (
            "show-ddl-locks",
            "show-ddl-locks [-s source ...] [task-name | task-file]",
        ),
        (
            "unlock-ddl-lock",
            "unlock-ddl-lock <lock-ID> [-o owner] [-f]",
        ),
        ("shard-ddl-lock", "dmctl shard-ddl-lock [task] [flags]"),
        (
            "break-ddl-lock",
            "break-ddl-lock <-w worker ...> <task-name> [--remove-id ID] [--exec] [--skip]",
        ),
        (
            "start-relay",
            "start-relay <-s source-id> [worker-name ...]",
        ),
        ("stop-relay", "stop-relay <-s source-id> [worker-name ...]"),
        ("pause-relay", "pause-relay <-s source ...>"),
        ("query-error", "query-error [-s source ...] [task-name]"),
        ("switch-relay-master", "switch-relay-master <-s source ...>"),
        ("update-relay", "update-relay [-s source ...] <config-file>"),
        (
            "migrate-relay",
            "migrate-relay <source | worker> <binlogName> <binlogPos>",
        ),
        ("resume-relay", "resume-relay <-s source ...>"),
        (
            "purge-relay",
            "purge-relay <-s source> <-f filename> [--sub-dir directory]",
        ),
        ("binlog-schema", "Usage:\n  dmctl binlog-schema [command]"),
        (
            "operate-schema",
            "operate-schema <get|set|remove> <-s source ...> <task-name | task-file> <-d database> <-t table> [schema-file] [--flush] [--sync]",
        ),
        (
            "refresh-worker-tasks",
            "Usage:\n  dmctl refresh-worker-tasks [flags]",
        ),
        ("update-master-config", "update-master-config <config-file>"),
        (
            "generate-task-config",
            "generate-task-config --from-master [task-name ...] -o DIR",
        ),
        (
            "config",
            "Usage:\n  dmctl config <command> [flags]\n  dmctl config [command]",
        ),
        ("encrypt", "Usage:\n  dmctl encrypt <plain-text> [flags]"),
        ("decrypt", "Usage:\n  dmctl decrypt <cipher-text> [flags]"),
        (
            "transfer-source",
            "transfer-source <source-id> <worker-id> [flags]",
        ),
        (
            "plan",
            "plan <DIR> [--out FILE] [--detailed-exitcode] [--output text|json]",
        ),
        (
            "apply",
            "apply <DIR | PLANFILE> [--yes] [--output text|json] [--timeout 60s]",
        ),
        (
            "reconcile",
            "reconcile <DIR> [--interval 30s] [--admin-addr 127.0.0.1:PORT] [--debounce 500ms]",
        ),
    ];
    let all = stdout(&dmctl(&["--help"]));
    for (cmd, usage) in cases {
        assert!(all.contains(cmd), "{cmd} missing from --help");
        for args in [vec!["help", cmd], vec![cmd, "--help"]] {
            let o = dmctl(&args);
            assert!(o.status.success(), "{args:?}");
            assert!(stdout(&o).contains(usage), "{args:?}: {}", stdout(&o));
        }
    }
}

/// DM connects before its shell starts: an unreachable master ends dmctl with DM's error and
/// nothing read is run (the shell itself is tested against a real master in dm_dmctl_basic).
#[test]
fn interactive_mode_needs_a_master_that_answers() {
    let o = dmctl_stdin(&["--master-addr", NOWHERE], "query-status\nhelp\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "Error: [code=48001:class=dmctl:scope=internal:level=high], Message: can't connect to {NOWHERE}, RawCause: Connection refused (os error 111), Workaround: Please check your network connection."
        )
    );
    assert_eq!(stdout(&o), "");
}

/// Argument errors of binlog-schema and operate-schema are caught before any call.
#[test]
fn schema_commands_refuse_bad_arguments_before_calling_the_master() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["binlog-schema", "list", "t", "db", "tb"],
            "must specify at least one source",
        ),
        (
            &["binlog-schema", "update", "t", "db", "tb", "-s", "s1"],
            "must specify exactly one of a schema file, --from-source and --from-target",
        ),
        (
            &[
                "operate-schema",
                "set",
                "t",
                "-s",
                "s1",
                "-d",
                "db",
                "-t",
                "tb",
            ],
            "must specify schema file for 'set' operation",
        ),
        (
            &["operate-schema", "get", "t", "-d", "db", "-t", "tb"],
            "must specify at least one source",
        ),
        (
            &["operate-schema", "get", "t", "-s", "s1", "-d", "db"],
            "must specify both --database and --table",
        ),
        (
            &["operate-schema", "drop", "t", "-s", "s1"],
            "invalid op 'drop'",
        ),
        (
            &[
                "operate-schema",
                "get",
                "t",
                "-s",
                "s1",
                "-d",
                "db",
                "-t",
                "tb",
                "--sync",
            ],
            "`sync` is only used for 'set' operation",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["--master-addr", NOWHERE];
        a.extend_from_slice(args);
        let o = dmctl(&a);
        assert!(!o.status.success(), "{args:?}");
        assert!(
            stdout(&o).contains(want),
            "{args:?}: {} {}",
            stdout(&o),
            stderr(&o)
        );
    }
    // --from-source with a file is refused by the parser.
    let o = dmctl(&[
        "--master-addr",
        NOWHERE,
        "binlog-schema",
        "update",
        "t",
        "db",
        "tb",
        "f.sql",
        "--from-source",
        "-s",
        "s1",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}
