//! Column mappings and expression filters with the real binaries and real MariaDB, incremental
//! task: the downstream rows are exactly the ones DM leaves — mapped values written, filtered
//! rows not — and the precheck names an expression-filter column the upstream table lacks.
//! The tests of this file share one MariaDB pair (each its own database, task and cluster).

mod common;

use std::path::Path;

use common::check::{contents, wait_stage, wait_synced};
use common::cluster::{Cluster, dmctl, ok};
use common::sql::{exec, master_pos};

/// A task replicating database `db` from the upstream's current position, with `rules`
/// (column-mappings / expression-filter sections) and the instance lines `inst`.
fn task_file(
    dir: &Path,
    name: &str,
    db: &str,
    up: &str,
    down_port: u16,
    inst: &str,
    rules: &str,
) -> String {
    let (file, pos) = master_pos(up);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\ntask-mode: incremental\nmeta-schema: dm_meta\n\
target-database:\n  host: 127.0.0.1\n  port: {down_port}\n  user: root\n  password: ''\n\
mysql-instances:\n  - source-id: mariadb-01\n    meta:\n      binlog-name: {file}\n      binlog-pos: {pos}\n    block-allow-list: only\n{inst}\
block-allow-list:\n  only:\n    do-dbs: [{db}]\n{rules}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The first column of `q`'s rows, as the text protocol renders them (`'…'`).
fn first_column(url: &str, q: &str) -> Vec<String> {
    common::check::rows(url, q)
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// A column value as the text protocol renders it (`'…'`).
fn s(v: &str) -> Option<String> {
    Some(format!("'{v}'"))
}

#[test]
fn mapped_values_are_written_and_filtered_rows_are_not() {
    let p = common::shared_pair(41);
    let (u, d) = (p.up.url(), p.down.url());
    let c = Cluster::start(p.up.port, &[]);
    let dir = tempfile::tempdir().unwrap();
    let task = task_file(
        dir.path(),
        "rows",
        "shard_1",
        &u,
        p.down.port,
        "    column-mapping-rules: [pid, prefix]\n    expression-filters: [even_c, big_new_c, keep]\n",
        r#"column-mappings:
  pid:
    schema-pattern: "shard_*"
    table-pattern: "t_*"
    source-column: id
    target-column: id
    expression: "partition id"
    arguments: ["1", "shard", "t", "_"]
  prefix:
    schema-pattern: "shard_*"
    table-pattern: "names"
    source-column: name
    target-column: name
    expression: "add prefix"
    arguments: ["up:"]
expression-filter:
  even_c:
    schema: shard_1
    table: t_2
    insert-value-expr: "c % 2 = 0"
  big_new_c:
    schema: shard_1
    table: t_2
    update-new-value-expr: "c > 100"
  keep:
    schema: shard_1
    table: names
    delete-value-expr: "name = 'up:keep'"
"#,
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    wait_stage(&c.addr, "rows", "Running");
    exec(
        &u,
        &[
            "CREATE DATABASE shard_1",
            "CREATE TABLE shard_1.t_2 (id BIGINT PRIMARY KEY, c INT, note VARCHAR(20))",
            "INSERT INTO shard_1.t_2 VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c'), (4, NULL, 'd')",
            // new c > 100: skipped, the downstream keeps c = 1
            "UPDATE shard_1.t_2 SET c = 200 WHERE id = 1",
            // applied, to the mapped key
            "UPDATE shard_1.t_2 SET c = 5, note = 'cc' WHERE id = 3",
            "DELETE FROM shard_1.t_2 WHERE id = 4",
            "CREATE TABLE shard_1.names (id INT PRIMARY KEY, name VARCHAR(50))",
            "INSERT INTO shard_1.names VALUES (1, 'keep'), (2, 'go'), (3, 'x')",
            // the filter sees the mapped value 'up:keep': row 1's delete is skipped
            "DELETE FROM shard_1.names WHERE id IN (1, 2)",
            "UPDATE shard_1.names SET name = 'y' WHERE id = 3",
        ],
    );
    wait_synced(&c.addr, "rows", &u);
    // DM's partition id: instance 1 << 59 | schema id 1 << 52 | table id 2 << 44 | id.
    let base: i64 = (1 << 59) | (1 << 52) | (2 << 44);
    assert_eq!(
        contents(&d, "shard_1.t_2"),
        Some(vec![
            vec![s(&(base | 1).to_string()), s("1"), s("a")],
            vec![s(&(base | 3).to_string()), s("5"), s("cc")],
        ]),
        "row 2 (even c) filtered, row 1's update filtered, row 3 updated, row 4 deleted"
    );
    assert_eq!(
        contents(&d, "shard_1.names"),
        Some(vec![vec![s("1"), s("up:keep")], vec![s("3"), s("up:y")],]),
        "names prefixed; the delete of 'keep' filtered"
    );
    // The upstream is untouched by all this.
    assert_eq!(
        contents(&u, "shard_1.t_2").map(|r| r.len()),
        Some(3),
        "upstream rows"
    );
    ok(&dmctl(&c.addr, &["stop-task", "rows"]), "stop-task");
}

#[test]
fn a_partition_id_overflow_pauses_the_task_with_dms_error() {
    let p = common::shared_pair(41);
    let (u, d) = (p.up.url(), p.down.url());
    let c = Cluster::start(p.up.port, &[]);
    let dir = tempfile::tempdir().unwrap();
    let task = task_file(
        dir.path(),
        "overflow",
        "shard_9",
        &u,
        p.down.port,
        "    column-mapping-rules: [pid]\n",
        r#"column-mappings:
  pid: {schema-pattern: "shard_*", table-pattern: "t_*", source-column: id, target-column: id, expression: "partition id", arguments: ["1", "shard", "t", "_"]}
"#,
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    wait_stage(&c.addr, "overflow", "Running");
    exec(
        &u,
        &[
            "CREATE DATABASE shard_9",
            "CREATE TABLE shard_9.t_1 (id BIGINT PRIMARY KEY, v INT)",
            "INSERT INTO shard_9.t_1 VALUES (17592186044416, 1)",
        ],
    );
    let st = wait_stage(&c.addr, "overflow", "Paused");
    let text = st.to_string();
    assert!(
        text.contains("36033") && text.contains("id must less than 17592186044416"),
        "{st:#}"
    );
    assert_eq!(contents(&d, "shard_9.t_1"), Some(vec![]), "nothing written");
    ok(&dmctl(&c.addr, &["stop-task", "overflow"]), "stop-task");
}

#[test]
fn check_task_names_an_expression_filter_column_the_table_lacks() {
    let p = common::shared_pair(41);
    let u = p.up.url();
    let c = Cluster::start(p.up.port, &[]);
    exec(
        &u,
        &[
            "CREATE DATABASE IF NOT EXISTS chk",
            "CREATE TABLE IF NOT EXISTS chk.t (id INT PRIMARY KEY, c INT)",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let task = task_file(
        dir.path(),
        "chk",
        "chk",
        &u,
        p.down.port,
        "    expression-filters: [typo]\n",
        "expression-filter:\n  typo: {schema: chk, table: t, insert-value-expr: \"cc > 1\"}\n",
    );
    let out = dmctl(&c.addr, &["check-task", &task]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("expression_filter")
            && out.stdout.contains("unknown column(s) cc of `chk`.`t`"),
        "{}",
        out.stdout
    );
}

#[test]
fn incompatible_ddl_changes_skip_drops_added_indexes_and_narrowing_modifies() {
    // DM v8's filter events for ALTER TABLE: a rule on `incompatible ddl changes` skips
    // ALTER TABLE … DROP COLUMN, … ADD INDEX and a narrowing MODIFY (DM's `drop column` /
    // `modify constraint` / `value range decrease`), while ADD COLUMN and a widening MODIFY
    // ("alter table") are applied; rows written after the skipped DDLs still arrive (the
    // downstream keeps the column, nullable).
    let p = common::shared_pair(41);
    let (u, d) = (p.up.url(), p.down.url());
    let c = Cluster::start(p.up.port, &[]);
    let dir = tempfile::tempdir().unwrap();
    let task = task_file(
        dir.path(),
        "ddlfilter",
        "ddl_f",
        &u,
        p.down.port,
        "    filter-rules: [no-incompatible]\n",
        "filters:\n  no-incompatible:\n    schema-pattern: ddl_f\n    table-pattern: \"*\"\n    events: [\"incompatible ddl changes\"]\n    action: Ignore\n",
    );
    ok(&dmctl(&c.addr, &["start-task", &task]), "start-task");
    wait_stage(&c.addr, "ddlfilter", "Running");
    exec(
        &u,
        &[
            "CREATE DATABASE ddl_f",
            "CREATE TABLE ddl_f.t (id INT PRIMARY KEY, a INT, b INT)",
            "INSERT INTO ddl_f.t VALUES (1, 10, 100)",
            "ALTER TABLE ddl_f.t ADD COLUMN c INT",
            "ALTER TABLE ddl_f.t DROP COLUMN b",
            "ALTER TABLE ddl_f.t ADD INDEX ia (a)",
            // int → smallint: DM's "value range decrease" (skipped); int → bigint: "alter table"
            "ALTER TABLE ddl_f.t MODIFY a SMALLINT",
            "ALTER TABLE ddl_f.t MODIFY c BIGINT",
            "INSERT INTO ddl_f.t (id, a, c) VALUES (2, 20, 2)",
        ],
    );
    wait_synced(&c.addr, "ddlfilter", &u);
    let cols = |url: &str| {
        first_column(
            url,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ddl_f' AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
        )
    };
    assert_eq!(cols(&u), vec!["'id'", "'a'", "'c'"]);
    assert_eq!(
        cols(&d),
        vec!["'id'", "'a'", "'b'", "'c'"],
        "ADD COLUMN applied; DROP COLUMN skipped"
    );
    let indexes = |url: &str| {
        first_column(
            url,
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'ddl_f' AND TABLE_NAME = 't' AND INDEX_NAME = 'ia'",
        )
    };
    assert_eq!(indexes(&u), vec!["'1'"]);
    assert_eq!(indexes(&d), vec!["'0'"], "ADD INDEX skipped");
    let types = |url: &str| {
        first_column(
            url,
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ddl_f' AND TABLE_NAME = 't' AND COLUMN_NAME IN ('a', 'c') ORDER BY COLUMN_NAME",
        )
    };
    assert_eq!(types(&u), vec!["'smallint'", "'bigint'"]);
    assert_eq!(
        types(&d),
        vec!["'int'", "'bigint'"],
        "the narrowing MODIFY skipped, the widening one applied"
    );
    assert_eq!(
        contents(&d, "ddl_f.t"),
        Some(vec![
            vec![s("1"), s("10"), s("100"), None],
            vec![s("2"), s("20"), None, s("2")],
        ])
    );
    ok(&dmctl(&c.addr, &["stop-task", "ddlfilter"]), "stop-task");
}
