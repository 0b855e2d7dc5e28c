//! start-task and check-task refuse what dm-rs cannot run, even with
//! `ignore-checking-items: ["all"]`: both go through `dm_rs::master::precheck`, whose report
//! then fails (start-task answers with it, check-task returns `result: false`). No server is
//! needed: with every item ignored nothing is dialled.

use dm_rs::config::{self, SourceConfig, TaskConfig};
use dm_rs::master::precheck;

const TASK: &str = "name: t
task-mode: incremental
ignore-checking-items: [all]
target-database: {host: 127.0.0.1, port: 1, user: root, password: ''}
mysql-instances:
  - source-id: s1
    meta: {binlog-gtid: 0-1-1}
";

fn task(extra: &str) -> TaskConfig {
    match config::parse_task(format!("{TASK}{extra}").as_bytes()) {
        Ok(l) => l.config,
        Err(e) => panic!("the task must still parse: {e}"),
    }
}

fn source(extra: &str) -> (String, SourceConfig) {
    let y = format!("source-id: s1\nfrom: {{host: 127.0.0.1, port: 1, user: root{extra}}}\n");
    match config::parse_source(y.as_bytes()) {
        Ok(l) => ("s1".to_string(), l.config),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn ignore_all_with_nothing_refused_skips_the_precheck() {
    assert!(precheck(&task(""), &[source("")]).await.is_none());
    // Optimistic shard DDL runs (it was refused before it was coordinated).
    assert!(
        precheck(&task("shard-mode: optimistic\n"), &[source("")])
            .await
            .is_none()
    );
}

#[tokio::test]
async fn unsupported_keys_fail_the_precheck_even_when_all_items_are_ignored() {
    for (extra, key, line) in [
        ("online-ddl: true\n", "online-ddl", 8),
        ("online-ddl-scheme: pt\n", "online-ddl", 8),
    ] {
        let report = match precheck(&task(extra), &[source("")]).await {
            Some(r) => r,
            None => panic!("{key}: precheck skipped"),
        };
        assert!(!report.passed(), "{key}");
        let msg = &report.items[0].message;
        assert!(
            msg.starts_with(&format!("line {line} column 1: [code=20900]"))
                && msg.contains(key)
                && msg.contains("not supported by dm-rs yet"),
            "{key}: {msg}"
        );
        assert_eq!(report.items[0].name, "config");
        let json = report.to_dm_json(10, 10);
        assert!(json.contains("\"passed\": false"), "{json}");
    }
}

#[tokio::test]
async fn an_unreadable_tls_file_of_a_source_fails_the_precheck() {
    let (id, src) = source(", security: {ssl-ca: /nonexistent/dm-rs/ca.pem}");
    let report = match precheck(&task(""), &[(id, src)]).await {
        Some(r) => r,
        None => panic!("precheck skipped"),
    };
    assert!(!report.passed());
    let item = &report.items[0];
    assert!(
        item.message.contains("from.security.ssl-ca")
            && item.message.contains("/nonexistent/dm-rs/ca.pem"),
        "{}",
        item.message
    );
    assert_eq!(item.extra, "source s1");
}

#[tokio::test]
async fn cert_allowed_cn_of_a_source_fails_the_precheck() {
    let (id, src) = source(", security: {cert-allowed-cn: [dm]}");
    let report = match precheck(&task(""), &[(id, src)]).await {
        Some(r) => r,
        None => panic!("precheck skipped"),
    };
    assert!(!report.passed());
    assert!(
        report.items[0]
            .message
            .contains("from.security.cert-allowed-cn is not supported"),
        "{}",
        report.items[0].message
    );
}

#[tokio::test]
async fn column_mappings_and_expression_filters_are_not_refused() {
    let extra = "column-mappings:
  cm: {schema-pattern: db, table-pattern: t, source-column: id, target-column: id, expression: partition id, arguments: ['1', '', 't']}
expression-filter:
  ef: {schema: db, table: t, insert-value-expr: 'c > 1'}
";
    let text = format!("{TASK}{extra}").replace(
        "    meta:",
        "    column-mapping-rules: [cm]\n    expression-filters: [ef]\n    meta:",
    );
    let t = match config::parse_task(text.as_bytes()) {
        Ok(l) => l.config,
        Err(e) => panic!("{e}"),
    };
    assert!(precheck(&t, &[source("")]).await.is_none());
}

#[test]
fn an_unknown_function_in_an_expression_filter_is_a_config_error() {
    let extra = "expression-filter:
  ef: {schema: db, table: t, insert-value-expr: 'frob(c) > 1'}
";
    let text =
        format!("{TASK}{extra}").replace("    meta:", "    expression-filters: [ef]\n    meta:");
    let e = match config::parse_task(text.as_bytes()) {
        Ok(_) => panic!("an unknown function must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("[code=20041]") && e.contains("ef") && e.contains("unknown function FROB"),
        "{e}"
    );
}
