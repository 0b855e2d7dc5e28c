//! Which fields of a task config a change touches, and what each change needs.
//!
//! [`config_paths`] compares two normalised task configs field by field (their JSON form:
//! objects key by key, `mysql-instances` matched by `source-id`, other arrays whole; the
//! password left out) and [`classify`] maps each changed path to a [`ChangeClass`] through
//! [`FIELD_CLASSES`]. Both the master (update-task's rule, [`non_updatable_changes`]) and the
//! reconciler's planner use them from here, so the two cannot disagree;
//! `src/reconcile/transitions.md` documents the table and a unit test of the planner keeps them
//! in agreement. Pure: no I/O, and it never returns or prints a password.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::task::TaskConfig;

/// What a change does to a task (the transitions document's classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeClass {
    /// Nothing to do.
    None,
    /// pause-task / resume-task to match the desired stage (or self-heal).
    Stage,
    /// pause → update-task → resume (or update-task alone on a task that stays paused).
    Online,
    /// start-task -s NEW.
    AddSource,
    /// stop-task -s GONE.
    RemoveSource,
    /// stop-task → start-task, checkpoint kept.
    Restart,
    /// stop-task → start-task --remove-meta, checkpoint lost.
    Reset,
    /// A new task: start-task.
    Create,
    /// A task no longer in the directory: stop-task (prune only).
    Delete,
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

/// Field patterns and the class a change there needs (`mysql-instances[]` is any instance).
/// A pattern covers the field and everything below it; the longest matching pattern wins; the
/// pattern `mysql-instances[]` itself (a whole entry added or removed) matches only exactly.
/// Fields in [`IGNORED_FIELDS`] need nothing; any other field needs a restart (the safe
/// default: stop and start keep the checkpoint and apply every setting).
pub const FIELD_CLASSES: &[(&str, ChangeClass)] = &[
    // What update-task applies (the master's `non_updatable_changes` allows exactly these).
    ("routes", ChangeClass::Online),
    ("filters", ChangeClass::Online),
    ("column-mappings", ChangeClass::Online),
    ("block-allow-list", ChangeClass::Online),
    ("expression-filter", ChangeClass::Online),
    ("mysql-instances[].route-rules", ChangeClass::Online),
    ("mysql-instances[].filter-rules", ChangeClass::Online),
    (
        "mysql-instances[].column-mapping-rules",
        ChangeClass::Online,
    ),
    ("mysql-instances[].block-allow-list", ChangeClass::Online),
    ("mysql-instances[].expression-filters", ChangeClass::Online),
    // Read when a subtask starts: stop + start, checkpoint kept.
    ("case-sensitive", ChangeClass::Restart),
    ("online-ddl", ChangeClass::Restart),
    ("shadow-table-rules", ChangeClass::Restart),
    ("trash-table-rules", ChangeClass::Restart),
    ("ignore-checking-items", ChangeClass::Restart),
    ("clean-dump-file", ChangeClass::Restart),
    ("tidb", ChangeClass::Restart),
    ("target-database", ChangeClass::Restart),
    ("target-database.user", ChangeClass::Restart),
    ("target-database.password", ChangeClass::Restart),
    ("target-database.session", ChangeClass::Restart),
    ("target-database.security", ChangeClass::Restart),
    ("mysql-instances[].syncer", ChangeClass::Restart),
    ("mysql-instances[].loader", ChangeClass::Restart),
    ("mysql-instances[].mydumper", ChangeClass::Restart),
    // Where the checkpoint lives or what it means: stop + start --remove-meta.
    ("task-mode", ChangeClass::Reset),
    ("meta-schema", ChangeClass::Reset),
    ("target-database.host", ChangeClass::Reset),
    ("target-database.port", ChangeClass::Reset),
    ("is-sharding", ChangeClass::Reset),
    ("shard-mode", ChangeClass::Reset),
    // An instance added or removed (the planner tells which from the source lists).
    ("mysql-instances[]", ChangeClass::AddSource),
    // The start point: DM ignores it while a checkpoint exists (warned, no step).
    ("mysql-instances[].meta", ChangeClass::None),
];

/// The class a single changed field path needs (`mysql-instances[<source-id>].…` or the
/// generic `mysql-instances[].…`). Unknown fields need a restart.
pub fn classify(path: &str) -> ChangeClass {
    if is_ignored_field(path) {
        return ChangeClass::None;
    }
    let g = generic_path(path);
    FIELD_CLASSES
        .iter()
        .filter(|(p, _)| {
            if p.ends_with("[]") {
                g == *p
            } else {
                path_under(&g, p)
            }
        })
        .max_by_key(|(p, _)| p.len())
        .map(|(_, c)| *c)
        .unwrap_or(ChangeClass::Restart)
}

/// The kebab-case name of a class, as the plan's JSON spells it.
pub fn class_name(c: ChangeClass) -> &'static str {
    match c {
        ChangeClass::None => "none",
        ChangeClass::Stage => "stage",
        ChangeClass::Online => "online",
        ChangeClass::AddSource => "add-source",
        ChangeClass::RemoveSource => "remove-source",
        ChangeClass::Restart => "restart",
        ChangeClass::Reset => "reset",
        ChangeClass::Create => "create",
        ChangeClass::Delete => "delete",
    }
}

/// The fields a new task config changes that update-task cannot apply, as readable paths
/// (e.g. `syncers.*.worker-count (mysql-instance "s1")`). The same field-by-field diff and the
/// same classification as the reconciler's planner (`src/reconcile/transitions.md`): only the
/// "online" fields (routes, filters, column-mappings, block-allow-list, expression-filter and
/// the instances' rule lists — what DM's Syncer.Update rebuilds) may change; deprecated keys DM
/// ignores are ignored here too. Passwords compare by value.
pub fn non_updatable_changes(old: &TaskConfig, new: &TaskConfig) -> Vec<String> {
    let (changed, _ignored) = config_paths(new, old);
    let mut out: Vec<String> = changed
        .into_iter()
        .filter(|p| classify(p) != ChangeClass::Online)
        .map(|p| {
            // mysql-instances[SRC].syncer.x → syncers.*.x, as the user wrote it.
            for (unit, global) in [
                ("syncer", "syncers"),
                ("loader", "loaders"),
                ("mydumper", "mydumpers"),
            ] {
                if let Some(rest) = p.strip_prefix("mysql-instances[")
                    && let Some((src, tail)) = rest.split_once(']')
                    && let Some(field) = tail.strip_prefix(&format!(".{unit}."))
                {
                    return format!("{global}.*.{field} (mysql-instance \"{src}\")");
                }
            }
            p
        })
        .collect();
    let plain = |c: &TaskConfig| c.target_database.as_ref().map(|d| d.plain_password());
    if plain(old) != plain(new) {
        out.push("target-database.password".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_fields() {
        use ChangeClass as C;
        let cases = [
            ("block-allow-list.shop-only.do-dbs", C::Online),
            ("routes.r1.target-schema", C::Online),
            ("mysql-instances[mariadb-01].route-rules", C::Online),
            (
                "mysql-instances[mariadb-01].syncer.worker-count",
                C::Restart,
            ),
            ("mysql-instances[mariadb-01].syncer.max-retry", C::None),
            ("mysql-instances[mariadb-01].meta.binlog-pos", C::None),
            ("mysql-instances[mariadb-01]", C::AddSource),
            ("mysql-instances[mariadb-01].some-new-key", C::Restart),
            ("target-database.port", C::Reset),
            ("target-database.session.sql_mode", C::Restart),
            ("target-database.password", C::Restart),
            ("task-mode", C::Reset),
            ("timezone", C::None),
            ("a-field-from-the-future", C::Restart),
        ];
        for (p, want) in cases {
            assert_eq!(classify(p), want, "{p}");
        }
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
    fn task(extra: &str) -> TaskConfig {
        let y = format!(
            "name: t\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: 3306, user: root, password: ''}}\n\
             mysql-instances:\n  - source-id: s1\n    meta: {{binlog-name: b.000001, binlog-pos: 4}}\n    block-allow-list: ba\n    syncer-config-name: g\n\
             block-allow-list:\n  ba: {{do-dbs: [shop]}}\n{extra}"
        );
        crate::config::parse_task(y.as_bytes()).unwrap().config
    }

    #[test]
    fn update_task_allows_rules_and_names_other_fields() {
        let old = task("syncers:\n  g: {worker-count: 16}\n");
        let mut new_ba = old.clone();
        new_ba
            .block_allow_list
            .get_mut("ba")
            .unwrap()
            .do_dbs
            .push("crm".into());
        assert!(non_updatable_changes(&old, &new_ba).is_empty());
        let wc = task("syncers:\n  g: {worker-count: 4}\n");
        let bad = non_updatable_changes(&old, &wc);
        assert_eq!(
            bad,
            vec!["syncers.*.worker-count (mysql-instance \"s1\")".to_string()]
        );
        let mut sealed = old.clone();
        sealed.target_database.as_mut().unwrap().password = crate::password::encrypt("").unwrap();
        assert!(
            non_updatable_changes(&old, &sealed).is_empty(),
            "same password, sealed"
        );
        sealed.target_database.as_mut().unwrap().password = crate::password::encrypt("x").unwrap();
        assert_eq!(
            non_updatable_changes(&old, &sealed),
            vec!["target-database.password".to_string()]
        );
        let mut port = old.clone();
        port.target_database.as_mut().unwrap().port = 3307;
        assert_eq!(
            non_updatable_changes(&old, &port),
            vec!["target-database.port".to_string()]
        );
    }
}
