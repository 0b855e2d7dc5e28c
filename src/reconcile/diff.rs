//! Field-by-field comparison of a desired task config with the live one.
//!
//! Called by the planner ([`super::plan`]) and by the engine's `diff` command. Both configs are
//! already normalised by the foundation's config model (defaults filled, unit configs inlined,
//! deprecated aliases folded), so the comparison walks their JSON form: objects key by key,
//! `mysql-instances` matched by `source-id` (not by index), every other array compared whole.
//! Fields DM ignores go to `ignored`, never to `changed`. The password is compared only through
//! the master's salted fingerprint. Pure: no I/O, and it never returns or prints a password.

use serde_json::Value;

use super::model::{LiveTask, fingerprint_matches};
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

/// Fields DM reads but ignores (deprecated), as path patterns: `mysql-instances[]` stands for
/// any instance. A difference there is reported in `ignored`.
pub const IGNORED_FIELDS: &[&str] = &[
    "enable-heartbeat",
    "heartbeat-update-interval",
    "heartbeat-report-interval",
    "timezone",
    "ansi-quotes",
    "remove-meta",
    "online-ddl-scheme",
    "black-white-list",
    "target-database.max-allowed-packet",
    "mysql-instances[].black-white-list",
    "mysql-instances[].syncer.max-retry",
    "mysql-instances[].syncer.disable-detect",
    "mysql-instances[].syncer.enable-ansi-quotes",
];

/// `mysql-instances[<source-id>].rest` → `mysql-instances[].rest` (the pattern form).
pub fn generic_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("mysql-instances[")
        && let Some((_, tail)) = rest.split_once(']')
    {
        return format!("mysql-instances[]{tail}");
    }
    path.to_string()
}

/// Whether `path` is `pattern` or lies below it (`a.b` is below `a`; `a[x]` is below `a`).
pub fn path_under(path: &str, pattern: &str) -> bool {
    path == pattern
        || path
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Whether a changed field is one DM ignores.
pub fn is_ignored_field(path: &str) -> bool {
    let g = generic_path(path);
    IGNORED_FIELDS.iter().any(|p| path_under(&g, p))
}

fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => walk(l, r, &p, out),
                    (None, None) => {}
                    _ => out.push(p),
                }
            }
        }
        _ => {
            if a != b {
                out.push(path.to_string());
            }
        }
    }
}

fn instances(v: &mut Value) -> Vec<(String, Value)> {
    let Some(Value::Array(list)) = v.as_object_mut().and_then(|o| o.remove("mysql-instances"))
    else {
        return Vec::new();
    };
    list.into_iter()
        .enumerate()
        .map(|(i, inst)| {
            let id = inst
                .get("source-id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{i}"));
            (id, inst)
        })
        .collect()
}

fn drop_password(v: &mut Value) {
    if let Some(db) = v.get_mut("target-database").and_then(Value::as_object_mut) {
        db.remove("password");
    }
}

/// The paths at which two normalised configs differ (password left out), split into changed
/// and ignored, plus a note when the instances' order differs.
pub fn config_paths(desired: &TaskConfig, live: &TaskConfig) -> (Vec<String>, Vec<String>) {
    let (Ok(mut d), Ok(mut l)) = (serde_json::to_value(desired), serde_json::to_value(live)) else {
        return (vec!["(the configs cannot be compared)".into()], Vec::new());
    };
    drop_password(&mut d);
    drop_password(&mut l);
    let di = instances(&mut d);
    let li = instances(&mut l);
    let mut raw = Vec::new();
    walk(&l, &d, "", &mut raw);
    for (id, dv) in &di {
        let p = format!("mysql-instances[{id}]");
        match li.iter().find(|(lid, _)| lid == id) {
            Some((_, lv)) => walk(lv, dv, &p, &mut raw),
            None => raw.push(p),
        }
    }
    for (id, _) in &li {
        if !di.iter().any(|(did, _)| did == id) {
            raw.push(format!("mysql-instances[{id}]"));
        }
    }
    let mut ignored = Vec::new();
    let common_d: Vec<&String> = di
        .iter()
        .map(|(id, _)| id)
        .filter(|id| li.iter().any(|(l, _)| l == *id))
        .collect();
    let common_l: Vec<&String> = li
        .iter()
        .map(|(id, _)| id)
        .filter(|id| di.iter().any(|(d, _)| d == *id))
        .collect();
    if common_d != common_l {
        ignored.push("mysql-instances: order differs (DM does not depend on it)".to_string());
    }
    let mut changed = Vec::new();
    for p in raw {
        if is_ignored_field(&p) {
            ignored.push(format!("{p}: deprecated, DM ignores it"));
        } else {
            changed.push(p);
        }
    }
    (changed, ignored)
}

/// Compares the desired config with the live task's (normalised both). A live task without a
/// readable config gives an empty diff (the planner refuses such a task anyway).
pub fn compare(desired: &TaskConfig, live: &LiveTask) -> FieldDiff {
    let Some(lc) = &live.config else {
        return FieldDiff::default();
    };
    let (changed, mut ignored) = config_paths(desired, lc);
    let plain = desired
        .target_database
        .as_ref()
        .map(|d| d.plain_password())
        .unwrap_or_default();
    let password_changed = match &live.password_fingerprint {
        Some(fp) => !fingerprint_matches(fp, &plain),
        None => {
            ignored.push(
                "target-database.password: the master gave no fingerprint, so it was not compared"
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
    use crate::reconcile::model::fingerprint;

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

    fn live(text: &str, password: Option<&str>) -> LiveTask {
        LiveTask {
            name: "shop".into(),
            config: Some(cfg(text)),
            config_error: None,
            password_fingerprint: password.map(|p| fingerprint("0011", p)),
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
            let d = compare(&desired, &live(BASE, Some("secret")));
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
        let d = compare(&cfg(swapped), &live(BASE, Some("secret")));
        assert!(d.changed.is_empty(), "{:?}", d.changed);
        assert_eq!(d.ignored.len(), 1);
        assert!(d.ignored[0].contains("order"));
    }

    #[test]
    fn password_by_fingerprint() {
        let encrypted = crate::password::encrypt("secret").unwrap();
        let spelled = BASE.replace("password: secret", &format!("password: '{encrypted}'"));
        let cases = [
            (BASE.to_string(), Some("secret"), false, 0),
            (spelled, Some("secret"), false, 0),
            (BASE.replace("secret", "other"), Some("secret"), true, 0),
            (BASE.to_string(), None, false, 1),
        ];
        for (text, fp, changed, ignored) in cases {
            // The live side always shows the mask, as get-config prints it.
            let l = live(&BASE.replace("password: secret", "password: '******'"), fp);
            let d = compare(&cfg(&text), &l);
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

    #[test]
    fn generic_paths_and_prefixes() {
        assert_eq!(
            generic_path("mysql-instances[a.b].syncer.batch"),
            "mysql-instances[].syncer.batch"
        );
        assert_eq!(generic_path("routes.r1"), "routes.r1");
        assert!(path_under("routes.r1.target-schema", "routes"));
        assert!(path_under("routes", "routes"));
        assert!(!path_under("routes2", "routes"));
        assert!(path_under("mysql-instances[]", "mysql-instances"));
    }
}
