//! Field-by-field comparison of a desired task config with the live one (the walk itself,
//! [`config_paths`], and the list of ignored fields live in [`crate::config::changes`]).
//!
//! Called by the planner ([`super::plan`]) and by the engine's `diff` command. Both configs are
//! already normalised by the foundation's config model (defaults filled, unit configs inlined,
//! deprecated aliases folded), so the comparison walks their JSON form: objects key by key,
//! `mysql-instances` matched by `source-id` (not by index), every other array compared whole.
//! Fields DM ignores go to `ignored`, never to `changed`. The password is compared only through
//! the master's answer (it compares by value; see [`super::live`]). Pure: no I/O, and it never returns or prints a password.

use super::model::LiveTask;
pub use crate::config::changes::{
    IGNORED_FIELDS, config_paths, generic_path, is_ignored_field, path_under,
};
use crate::config::task::TaskConfig;

/// What differs between a desired config and the live task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldDiff {
    /// Changed fields, as paths (`block-allow-list.shop-only.do-dbs`,
    /// `mysql-instances[mariadb-01].syncer.worker-count`; an instance only on one side is
    /// `mysql-instances[<source-id>]`).
    pub changed: Vec<String>,
    /// Differences that need nothing (deprecated keys DM ignores, password not comparable,
    /// order of `mysql-instances`).
    pub ignored: Vec<String>,
    /// The target password differs by value.
    pub password_changed: bool,
}

/// Compares the desired config with the live task's (normalised both). A live task without a
/// readable config gives an empty diff (the planner refuses such a task anyway).
pub fn compare(desired: &TaskConfig, live: &LiveTask) -> FieldDiff {
    let Some(lc) = &live.config else {
        return FieldDiff::default();
    };
    let (changed, mut ignored) = config_paths(desired, lc);
    // The master compared the desired password with the stored one (live::fetch sent it).
    let password_changed = match live.password_matches {
        Some(same) => !same,
        None => {
            ignored.push(
                "target-database.password: the master did not compare it, so it was not compared"
                    .to_string(),
            );
            false
        }
    };
    FieldDiff {
        changed,
        ignored,
        password_changed,
    }
}

/// Unified YAML diff live → desired of the masked normalised configs (never a password);
/// empty when both render the same. A missing side diffs against nothing.
pub fn unified(desired: Option<&TaskConfig>, live: Option<&TaskConfig>) -> String {
    let d = desired.map(TaskConfig::to_yaml_masked).unwrap_or_default();
    let l = live.map(TaskConfig::to_yaml_masked).unwrap_or_default();
    similar::TextDiff::from_lines(&l, &d)
        .unified_diff()
        .header("live", "desired")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_task;

    const BASE: &str = "name: shop
task-mode: incremental
target-database: {host: 127.0.0.1, port: 4000, user: root, password: secret}
block-allow-list:
  shop-only: {do-dbs: [shop]}
mysql-instances:
  - source-id: mariadb-01
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
  - source-id: mariadb-02
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";

    fn cfg(text: &str) -> TaskConfig {
        match parse_task(text.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    /// A live task as fetched: `matches` is the master's answer to the password comparison.
    fn live(text: &str, matches: Option<bool>) -> LiveTask {
        LiveTask {
            name: "shop".into(),
            config: Some(cfg(text)),
            config_error: None,
            password_fingerprint: matches.map(|_| "hmac-sha256:00".to_string()),
            password_matches: matches,
            subtasks: Vec::new(),
        }
    }

    #[test]
    fn field_paths() {
        /// (what, replace this, by this, changed, ignored)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            ("same", "", "", &[], &[]),
            (
                "ba list",
                "do-dbs: [shop]",
                "do-dbs: [shop, shop2]",
                &["block-allow-list.shop-only.do-dbs"],
                &[],
            ),
            (
                "port",
                "port: 4000",
                "port: 4001",
                &["target-database.port"],
                &[],
            ),
            (
                "worker-count on one instance",
                "  - source-id: mariadb-02\n",
                "  - source-id: mariadb-02\n    syncer: {worker-count: 8}\n",
                &["mysql-instances[mariadb-02].syncer.worker-count"],
                &[],
            ),
            (
                "deprecated ansi-quotes",
                "task-mode: incremental\n",
                "task-mode: incremental\nansi-quotes: true\n",
                &[],
                &["ansi-quotes: deprecated, DM ignores it"],
            ),
            (
                "heartbeat is reset by the loader: no diff at all",
                "task-mode: incremental\n",
                "task-mode: incremental\nenable-heartbeat: true\n",
                &[],
                &[],
            ),
            (
                "deprecated syncer key",
                "  - source-id: mariadb-02\n",
                "  - source-id: mariadb-02\n    syncer: {max-retry: 7}\n",
                &[],
                &["mysql-instances[mariadb-02].syncer.max-retry: deprecated, DM ignores it"],
            ),
            (
                "instance removed",
                "  - source-id: mariadb-02\n    block-allow-list: shop-only\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n",
                "",
                &["mysql-instances[mariadb-02]"],
                &[],
            ),
        ];
        for (what, from, to, changed, ignored) in cases {
            let desired = cfg(&BASE.replace(from, to));
            let d = compare(&desired, &live(BASE, Some(true)));
            assert_eq!(d.changed, *changed, "{what}");
            assert_eq!(d.ignored, *ignored, "{what}");
            assert!(!d.password_changed, "{what}");
        }
    }

    #[test]
    fn instances_are_matched_by_source_id() {
        let swapped = "name: shop
task-mode: incremental
target-database: {host: 127.0.0.1, port: 4000, user: root, password: secret}
block-allow-list:
  shop-only: {do-dbs: [shop]}
mysql-instances:
  - source-id: mariadb-02
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
  - source-id: mariadb-01
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";
        let d = compare(&cfg(swapped), &live(BASE, Some(true)));
        assert!(d.changed.is_empty(), "{:?}", d.changed);
        assert_eq!(d.ignored.len(), 1);
        assert!(d.ignored[0].contains("order"));
    }

    #[test]
    fn password_by_the_masters_answer() {
        let encrypted = crate::password::encrypt("secret").unwrap();
        let spelled = BASE.replace("password: secret", &format!("password: '{encrypted}'"));
        // (desired file, does the master hold "secret" and answer?, changed, ignored)
        let cases = [
            (BASE.to_string(), true, false, 0),
            (spelled, true, false, 0),
            (BASE.replace("secret", "other"), true, true, 0),
            (BASE.to_string(), false, false, 1),
        ];
        for (text, asked, changed, ignored) in cases {
            let desired = cfg(&text);
            // What the master answers: the desired password (as live::fetch sends it, sealed)
            // compared by value with the stored "secret".
            let sent = desired
                .target_database
                .as_ref()
                .map(|d| crate::password::encrypt(&d.plain_password()).unwrap())
                .unwrap();
            let answer = asked.then(|| crate::password::same_password(&sent, "secret"));
            // The live side always shows the mask, as get-config prints it.
            let l = live(
                &BASE.replace("password: secret", "password: '******'"),
                answer,
            );
            let d = compare(&desired, &l);
            assert_eq!(d.password_changed, changed, "{text}");
            assert!(d.changed.is_empty());
            assert_eq!(d.ignored.len(), ignored);
        }
    }

    #[test]
    fn unified_diff_masks_passwords() {
        let desired = cfg(&BASE.replace("do-dbs: [shop]", "do-dbs: [shop, shop2]"));
        let l = cfg(&BASE.replace("secret", "old-secret"));
        let u = unified(Some(&desired), Some(&l));
        assert!(u.starts_with("--- live\n+++ desired\n"), "{u}");
        assert!(u.contains("+    - shop2"), "{u}");
        assert!(!u.contains("secret"), "{u}");
        assert_eq!(unified(Some(&desired), Some(&desired)), "");
        let created = unified(Some(&desired), None);
        assert!(created.contains("+name: shop"), "{created}");
    }
}
