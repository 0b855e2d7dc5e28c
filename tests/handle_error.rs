//! Getting a task past a DDL the downstream rejects, with the real binaries and real MariaDB:
//! the paused task's error names where it failed and the commands that unblock it; DM v2's
//! `handle-error` and tiflow's `binlog` skip / replace (by the current error or `-b`), DM v1's
//! `sql-skip` by end position and by pattern (set before the DDL arrives) and `sql-inject`; the
//! data matches after each. The tests of this file share one MariaDB pair (each its own
//! database, task and cluster).

mod common;

use std::path::Path;

use common::check::{contents, query_rows, wait_stage, wait_synced};
use common::cluster::{Cluster, CtlOut, dmctl, ok};
use common::sql::{exec, master_pos};

/// An incremental task replicating database `db` from the upstream's current position.
fn task_file(dir: &Path, name: &str, db: &str, up: &str, down_port: u16) -> String {
    let (file, pos) = master_pos(up);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {down_port}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: only\n\
block-allow-list:\n  only:\n    do-dbs: [{db}]\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Starts task `db` on database `db` with rows (1,1), (2,2) synced, gives the downstream an
/// extra row (100, 1), then adds a unique key on `v` upstream: the downstream rejects it
/// (duplicate 1) and the task pauses. Returns the cluster and the paused subtask's status.
fn paused_on_a_rejected_ddl(p: &common::SharedPair, dir: &Path, db: &str) -> (Cluster, String) {
    let (u, d) = (p.up.url(), p.down.url());
    let c = Cluster::start(p.up.port, &[]);
    let task = task_file(dir, db, db, &u, p.down.port);
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    wait_stage(&c.addr, db, "Running");
    exec(
        &u,
        &[
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"),
            format!("INSERT INTO {db}.t VALUES (1, 1), (2, 2)"),
        ],
    );
    wait_synced(&c.addr, db, &u);
    exec(&d, &[format!("INSERT INTO {db}.t VALUES (100, 1)")]);
    exec(&u, &[format!("ALTER TABLE {db}.t ADD UNIQUE KEY uk (v)")]);
    let st = wait_stage(&c.addr, db, "Paused");
    (c, st.to_string())
}

/// The `-b` value the error's workaround names (`binlog skip TASK -b FILE:POS`).
fn start_pos(status: &str, task: &str) -> String {
    let re = regex::Regex::new(&format!(r"binlog skip {task} -b ([^ `\\]+)")).unwrap();
    re.captures(status)
        .unwrap_or_else(|| panic!("no position in the workaround: {status}"))[1]
        .to_string()
}

/// The error's end position as `file:pos` (DM v1's `failedBinlogPosition`).
fn end_pos(status: &str) -> String {
    let re = regex::Regex::new(r"endLocation: \[position: \(([^,]+), (\d+)\)\]").unwrap();
    let c = re
        .captures(status)
        .unwrap_or_else(|| panic!("no endLocation: {status}"));
    format!("{}:{}", &c[1], &c[2])
}

fn has_index(url: &str, db: &str, index: &str) -> bool {
    !query_rows(
        url,
        &format!(
            "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't' AND INDEX_NAME = '{index}'"
        ),
    )
    .unwrap()
    .is_empty()
}

/// More rows upstream, synced; then the downstream (without its extra row 100) equals the
/// upstream.
fn rows_match_after_more_writes(c: &Cluster, p: &common::SharedPair, db: &str) {
    let (u, d) = (p.up.url(), p.down.url());
    exec(
        &u,
        &[
            format!("INSERT INTO {db}.t VALUES (3, 3), (4, 4)"),
            format!("UPDATE {db}.t SET v = 20 WHERE id = 2"),
            format!("DELETE FROM {db}.t WHERE id = 1"),
        ],
    );
    wait_synced(&c.addr, db, &u);
    exec(&d, &[format!("DELETE FROM {db}.t WHERE id = 100")]);
    let table = format!("{db}.t");
    assert_eq!(contents(&d, &table), contents(&u, &table), "{table}");
}

fn fails_with(out: &CtlOut, text: &str, what: &str) {
    assert_ne!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(text),
        "{what}: {text:?} not in {}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn binlog_skip_of_the_current_error_resumes_the_task() {
    let p = common::shared_pair(43);
    let dir = tempfile::tempdir().unwrap();
    let (c, st) = paused_on_a_rejected_ddl(&p, dir.path(), "he_skip");
    assert!(
        st.contains("1062") && st.contains("startLocation: [position: ("),
        "the error names the failing event: {st}"
    );
    let pos = start_pos(&st, "he_skip");
    assert!(
        st.contains(&format!("handle-error he_skip -b {pos} skip"))
            && st.contains("binlog replace he_skip"),
        "the workaround names the commands: {st}"
    );
    // DM v1's query-error shows the same error with the failing DDL and its (end) position.
    let qe = dmctl(&c.addr, &["query-error", "he_skip"]).json();
    let e = &qe["workers"][0]["subTaskError"][0];
    assert_eq!(e["name"], "he_skip", "{qe:#}");
    assert_eq!(e["stage"], "Paused", "{qe:#}");
    let sync = &e["sync"]["errors"][0];
    assert!(
        sync["errorSQL"]
            .as_str()
            .unwrap_or("")
            .contains("ADD UNIQUE")
            && sync["failedBinlogPosition"]
                .as_str()
                .unwrap_or("")
                .starts_with("(")
            && sync["msg"]
                .as_str()
                .unwrap_or("")
                .contains("execute DDL failed"),
        "{qe:#}"
    );
    let list = dmctl(&c.addr, &["binlog", "list", "he_skip"]);
    ok(&list, "binlog list");
    assert_eq!(list.json()["sources"][0]["msg"], "[]", "{}", list.stdout);

    ok(
        &dmctl(&c.addr, &["binlog", "skip", "he_skip"]),
        "binlog skip",
    );
    wait_stage(&c.addr, "he_skip", "Running");
    rows_match_after_more_writes(&c, &p, "he_skip");
    assert!(
        !has_index(&p.down.url(), "he_skip", "uk"),
        "the skipped DDL did not run"
    );

    // Nothing left to handle, and DM's argument errors.
    fails_with(
        &dmctl(&c.addr, &["binlog", "skip", "he_skip"]),
        "source 'mariadb-01' has no error",
        "a second skip",
    );
    fails_with(
        &dmctl(&c.addr, &["binlog", "revert", "he_skip", "-b", &pos]),
        "36065",
        "revert without an operator",
    );
    fails_with(
        &dmctl(
            &c.addr,
            &["handle-error", "he_skip", "-b", "mysql-bin|1111", "skip"],
        ),
        "invalid --binlog-pos",
        "a bad position",
    );
    fails_with(
        &dmctl(&c.addr, &["handle-error", "wrong-task", "skip"]),
        "task wrong-task has no source or not exist",
        "an unknown task",
    );
    fails_with(
        &dmctl(
            &c.addr,
            &["handle-error", "he_skip", "-s", "wrong-source", "skip"],
        ),
        "source wrong-source not found",
        "an unknown source",
    );
    let usage = dmctl(&c.addr, &["handle-error", "he_skip", "jump"]);
    assert_eq!(usage.code, 2, "{}", usage.stdout);
    assert!(usage.stdout.contains("invalid operation 'jump'"));
    ok(&dmctl(&c.addr, &["stop-task", "he_skip"]), "stop-task");
}

#[test]
fn handle_error_replace_runs_the_corrected_statement() {
    let p = common::shared_pair(43);
    let dir = tempfile::tempdir().unwrap();
    let (c, st) = paused_on_a_rejected_ddl(&p, dir.path(), "he_rep");
    let pos = start_pos(&st, "he_rep");
    let out = dmctl(
        &c.addr,
        &[
            "handle-error",
            "he_rep",
            "-b",
            &pos,
            "replace",
            "ALTER TABLE he_rep.t ADD KEY k (v);",
        ],
    );
    ok(&out, "handle-error replace");
    let j = out.json();
    assert_eq!(j["sources"][0]["source"], "mariadb-01", "{j:#}");
    assert_eq!(j["sources"][0]["worker"], "worker-a", "{j:#}");
    wait_stage(&c.addr, "he_rep", "Running");
    rows_match_after_more_writes(&c, &p, "he_rep");
    let d = p.down.url();
    assert!(has_index(&d, "he_rep", "k"), "the replacement ran");
    assert!(!has_index(&d, "he_rep", "uk"), "the original did not");
    ok(&dmctl(&c.addr, &["stop-task", "he_rep"]), "stop-task");
}

#[test]
fn sql_skip_by_end_position_and_by_a_pattern_set_in_advance() {
    let p = common::shared_pair(43);
    let dir = tempfile::tempdir().unwrap();
    let (c, st) = paused_on_a_rejected_ddl(&p, dir.path(), "he_v1");
    let out = dmctl(
        &c.addr,
        &["sql-skip", "-w", "worker-a", "-b", &end_pos(&st), "he_v1"],
    );
    ok(&out, "sql-skip -b");
    assert_eq!(out.json()["workers"][0]["result"], true, "{}", out.stdout);
    wait_stage(&c.addr, "he_v1", "Running");

    // The next rejected DDL is skipped by pattern before it arrives: the task never pauses.
    fails_with(
        &dmctl(&c.addr, &["sql-skip", "-w", "worker-a", "he_v1"]),
        "must specify one of --binlog-pos and --sql-pattern",
        "sql-skip without a key",
    );
    ok(
        &dmctl(
            &c.addr,
            &[
                "sql-skip",
                "-w",
                "worker-a",
                "-s",
                "~(?i)ADD UNIQUE KEY `?uk2",
                "he_v1",
            ],
        ),
        "sql-skip -s",
    );
    exec(&p.up.url(), &["ALTER TABLE he_v1.t ADD UNIQUE KEY uk2 (v)"]);
    rows_match_after_more_writes(&c, &p, "he_v1");
    assert!(!has_index(&p.down.url(), "he_v1", "uk2"));
    ok(&dmctl(&c.addr, &["stop-task", "he_v1"]), "stop-task");
}

#[test]
fn sql_inject_runs_a_statement_at_the_next_transaction() {
    let p = common::shared_pair(43);
    let (u, d) = (p.up.url(), p.down.url());
    let c = Cluster::start(p.up.port, &[]);
    let dir = tempfile::tempdir().unwrap();
    let task = task_file(dir.path(), "he_inj", "he_inj", &u, p.down.port);
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    wait_stage(&c.addr, "he_inj", "Running");
    exec(
        &u,
        &[
            "CREATE DATABASE he_inj",
            "CREATE TABLE he_inj.t (id INT PRIMARY KEY, v INT)",
            "INSERT INTO he_inj.t VALUES (1, 1)",
        ],
    );
    wait_synced(&c.addr, "he_inj", &u);
    fails_with(
        &dmctl(
            &c.addr,
            &[
                "sql-inject",
                "-w",
                "worker-a",
                "he_inj",
                "DELETE FROM he_inj.t",
            ],
        ),
        "only support inject DDL currently",
        "a DML injection",
    );
    ok(
        &dmctl(
            &c.addr,
            &[
                "sql-inject",
                "-w",
                "worker-a",
                "he_inj",
                "ALTER TABLE he_inj.t ADD COLUMN note VARCHAR(10) DEFAULT 'inj'",
            ],
        ),
        "sql-inject",
    );
    exec(&u, &["INSERT INTO he_inj.t VALUES (2, 2)"]);
    wait_synced(&c.addr, "he_inj", &u);
    let s = |v: &str| Some(format!("'{v}'"));
    assert_eq!(
        contents(&d, "he_inj.t"),
        Some(vec![
            vec![s("1"), s("1"), s("inj")],
            vec![s("2"), s("2"), s("inj")],
        ]),
        "the injected column exists downstream, the rows arrived"
    );
    ok(&dmctl(&c.addr, &["stop-task", "he_inj"]), "stop-task");
}
