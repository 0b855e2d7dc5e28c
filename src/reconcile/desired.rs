//! Desired state: the task directory, read into a [`DesiredState`].
//!
//! Called by the reconciler's engine (plan, apply, watch) at every pass. It walks the directory
//! (recursively, sorted, hidden entries such as `.git` skipped, symlinked directories followed
//! once), loads every `*.yaml`/`*.yml` through the foundation's config model (task or source
//! told apart by content), and reads `reconcile.yaml` at the root as the [`Policy`].
//!
//! A bad file never stops the others: it becomes a [`FileError`], and the task name it may
//! define goes into `broken_names` so that the planner never deletes that task because its file
//! is broken. This module only reads files: it never talks to the master and never prints a
//! password.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::model::{
    DesiredSource, DesiredStage, DesiredState, DesiredTask, FileError, Policy, TaskPolicy,
};
use crate::config::yaml::PosIndex;
use crate::config::{self, Kind};

/// The policy file's names (at the directory's root only).
pub const POLICY_FILES: &[&str] = &["reconcile.yaml", "reconcile.yml"];

/// How deep the walk goes before it gives up (a guard against pathological trees).
const MAX_DEPTH: usize = 32;

fn file_error(file: &Path, message: impl Into<String>) -> FileError {
    FileError {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('.'))
}

/// Collects the YAML files under `dir` (sorted, hidden entries skipped, each real directory
/// visited once even when symlinks point back into the tree).
fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut BTreeSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<FileError>,
) {
    let real = match std::fs::canonicalize(dir) {
        Ok(r) => r,
        Err(e) => {
            errors.push(file_error(dir, format!("{}: {e}", dir.display())));
            return;
        }
    };
    if !seen.insert(real) {
        return; // a symlink loop or a second link to a directory already read
    }
    if depth > MAX_DEPTH {
        errors.push(file_error(
            dir,
            format!(
                "{}: nested more than {MAX_DEPTH} directories deep; not read",
                dir.display()
            ),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(file_error(dir, format!("{}: {e}", dir.display())));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) if !is_hidden(&e.file_name()) => paths.push(e.path()),
            Ok(_) => {}
            Err(e) => errors.push(file_error(dir, format!("{}: {e}", dir.display()))),
        }
    }
    paths.sort();
    for p in paths {
        // `metadata` follows symlinks: a link to a file is read, a link to a directory is walked
        // (once, see `seen`), a dangling link is reported.
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, depth + 1, seen, files, errors),
            Ok(m) if m.is_file() && is_yaml(&p) => files.push(p),
            Ok(_) => {}
            Err(e) if is_yaml(&p) => errors.push(file_error(&p, format!("{}: {e}", p.display()))),
            Err(_) => {}
        }
    }
}

/// The task name a file declares, read without parsing it (for a file that fails to load):
/// a top-level `name:` line.
fn scan_name(text: &str) -> Option<String> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("name:") else {
            continue;
        };
        let mut v = rest.trim();
        if let Some(i) = v.find(" #") {
            v = v[..i].trim();
        }
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    None
}

/// Loads every `*.yaml`/`*.yml` under `dir` (recursively) and `reconcile.yaml` at its root.
pub fn load_dir(dir: &Path) -> DesiredState {
    let mut state = DesiredState {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            state.errors.push(file_error(
                dir,
                format!("{}: not a directory", dir.display()),
            ));
            return state;
        }
        Err(e) => {
            state.errors.push(file_error(
                dir,
                format!("{}: cannot read the task directory: {e}", dir.display()),
            ));
            return state;
        }
    }

    let mut files = Vec::new();
    walk(dir, 0, &mut BTreeSet::new(), &mut files, &mut state.errors);

    let policy_paths: Vec<PathBuf> = POLICY_FILES.iter().map(|n| dir.join(n)).collect();
    let present: Vec<&PathBuf> = policy_paths.iter().filter(|p| files.contains(p)).collect();
    match present.as_slice() {
        [] => {}
        [one] => match load_policy(one) {
            Ok(p) => state.policy = p,
            Err(e) => state.errors.push(e),
        },
        [first, second, ..] => state.errors.push(file_error(
            second,
            format!(
                "{} and {} are both policy files; keep one (the safe defaults are used until then)",
                first.display(),
                second.display()
            ),
        )),
    }
    files.retain(|f| !policy_paths.contains(f));

    if files.is_empty() {
        state.errors.push(file_error(
            dir,
            format!(
                "{}: no task or source files (*.yaml, *.yml) in the directory; nothing is planned from an empty directory",
                dir.display()
            ),
        ));
        return state;
    }

    let mut tasks: BTreeMap<String, Vec<DesiredTask>> = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<DesiredSource>> = BTreeMap::new();
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                state
                    .errors
                    .push(file_error(&file, format!("{}: {e}", file.display())));
                continue;
            }
        };
        match config::detect_kind(&bytes) {
            Kind::Task => match config::load_task_file(&file) {
                Ok(l) => tasks
                    .entry(l.config.name.clone())
                    .or_default()
                    .push(DesiredTask {
                        name: l.config.name.clone(),
                        file,
                        config: l.config,
                    }),
                Err(e) => {
                    if let Some(name) = std::str::from_utf8(&bytes).ok().and_then(scan_name) {
                        state.broken_names.insert(name);
                    }
                    state.errors.push(file_error(&file, e.to_string()));
                }
            },
            Kind::Source => match config::load_source_file(&file) {
                Ok(l) => {
                    sources
                        .entry(l.config.source_id.clone())
                        .or_default()
                        .push(DesiredSource {
                            id: l.config.source_id.clone(),
                            file,
                            config: l.config,
                        })
                }
                Err(e) => state.errors.push(file_error(&file, e.to_string())),
            },
        }
    }

    for (name, mut defs) in tasks {
        if defs.len() == 1 {
            if let Some(t) = defs.pop() {
                state.tasks.insert(name, t);
            }
            continue;
        }
        let list: Vec<String> = defs.iter().map(|t| t.file.display().to_string()).collect();
        state.errors.push(file_error(
            &defs[0].file,
            format!(
                "task {name:?} is defined by more than one file: {}; neither is planned until one is removed or renamed",
                list.join(" and ")
            ),
        ));
        state.broken_names.insert(name);
    }
    for (id, mut defs) in sources {
        if defs.len() == 1 {
            if let Some(s) = defs.pop() {
                state.sources.insert(id, s);
            }
            continue;
        }
        let list: Vec<String> = defs.iter().map(|s| s.file.display().to_string()).collect();
        state.errors.push(file_error(
            &defs[0].file,
            format!(
                "source {id:?} is defined by more than one file: {}; neither is used until one is removed",
                list.join(" and ")
            ),
        ));
    }
    state
}

fn at(file: &Path, ix: &PosIndex, path: &str, msg: impl std::fmt::Display) -> FileError {
    let loc = match ix.best(path) {
        Some(p) => format!("{}:{}:{}", file.display(), p.line, p.col),
        None => file.display().to_string(),
    };
    file_error(file, format!("{loc}: {msg}"))
}

fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

fn bool_at(file: &Path, ix: &PosIndex, path: &str, v: &Value) -> Result<bool, FileError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(at(
            file,
            ix,
            path,
            format!("{path} must be true or false (got {})", key_str(v)),
        )),
    }
}

/// Parses `reconcile.yaml`: `prune` (false), `self-heal` (true), `allow-reset` (false) and
/// `tasks: [{name, stage, protect}]`. Unknown keys and bad values are refused with the file,
/// line and column.
pub fn load_policy(path: &Path) -> Result<Policy, FileError> {
    let bytes =
        std::fs::read(path).map_err(|e| file_error(path, format!("{}: {e}", path.display())))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        file_error(
            path,
            format!("{}: the policy file is not valid UTF-8", path.display()),
        )
    })?;
    parse_policy(path, text)
}

/// [`load_policy`] on a file's text (`file` only names it in errors).
pub fn parse_policy(file: &Path, text: &str) -> Result<Policy, FileError> {
    let ix = PosIndex::build(text);
    let mut policy = Policy::default();
    if config::yaml::is_blank(text) {
        return Ok(policy);
    }
    let root: Value = serde_norway::from_str(text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!("{}:{}:{}", file.display(), l.line(), l.column()))
            .unwrap_or_else(|| file.display().to_string());
        file_error(file, format!("{loc}: not valid YAML: {e}"))
    })?;
    let Value::Mapping(top) = root else {
        return Err(at(
            file,
            &ix,
            "",
            "the policy file must be a mapping (prune, self-heal, allow-reset, tasks)",
        ));
    };
    for (k, v) in &top {
        let key = key_str(k);
        match key.as_str() {
            "prune" => policy.prune = bool_at(file, &ix, "prune", v)?,
            "self-heal" => policy.self_heal = bool_at(file, &ix, "self-heal", v)?,
            "allow-reset" => policy.allow_reset = bool_at(file, &ix, "allow-reset", v)?,
            "tasks" => policy.tasks = parse_task_policies(file, &ix, v)?,
            "max-lag-before-stop" => {
                let d = match v {
                    Value::String(s) => config::source::parse_go_duration(s),
                    _ => None,
                };
                policy.max_lag_before_stop = Some(d.ok_or_else(|| {
                    at(
                        file,
                        &ix,
                        &key,
                        format!(
                            "max-lag-before-stop must be a Go duration such as 30s (got {})",
                            key_str(v)
                        ),
                    )
                })?);
            }
            _ => {
                return Err(at(
                    file,
                    &ix,
                    &key,
                    format!(
                        "unknown key {key:?} (the policy file knows prune, self-heal, allow-reset, max-lag-before-stop, tasks)"
                    ),
                ));
            }
        }
    }
    Ok(policy)
}

fn parse_task_policies(
    file: &Path,
    ix: &PosIndex,
    v: &Value,
) -> Result<Vec<TaskPolicy>, FileError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s,
        _ => {
            return Err(at(
                file,
                ix,
                "tasks",
                "tasks must be a list of {name, stage, protect} entries",
            ));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("tasks[{i}]");
        let Value::Mapping(m) = item else {
            return Err(at(
                file,
                ix,
                &p,
                format!("{p} must be a mapping with name, stage, protect"),
            ));
        };
        let mut pattern = None;
        let mut stage = None;
        let mut protect = false;
        for (k, v) in m {
            let key = key_str(k);
            let kp = format!("{p}.{key}");
            match key.as_str() {
                "name" => match v {
                    Value::String(s) if !s.is_empty() => pattern = Some(s.clone()),
                    _ => {
                        return Err(at(
                            file,
                            ix,
                            &kp,
                            format!("{kp} must be a task name or a glob (* and ?)"),
                        ));
                    }
                },
                "stage" => {
                    stage = Some(match v {
                        Value::String(s) if s == "running" => DesiredStage::Running,
                        Value::String(s) if s == "paused" => DesiredStage::Paused,
                        _ => {
                            return Err(at(
                                file,
                                ix,
                                &kp,
                                format!("{kp} must be running or paused (got {})", key_str(v)),
                            ));
                        }
                    })
                }
                "protect" => protect = bool_at(file, ix, &kp, v)?,
                _ => {
                    return Err(at(
                        file,
                        ix,
                        &kp,
                        format!("unknown key {key:?} in {p} (an entry knows name, stage, protect)"),
                    ));
                }
            }
        }
        let Some(pattern) = pattern else {
            return Err(at(
                file,
                ix,
                &p,
                format!("{p} has no name (a task name or a glob)"),
            ));
        };
        out.push(TaskPolicy {
            pattern,
            stage,
            protect,
        });
    }
    Ok(out)
}

/// Whether `name` matches `pattern`: `*` is any run of characters, `?` exactly one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Policy {
    /// The desired stage of a task: the first `tasks` entry that matches the name *and sets a
    /// stage* wins; running when none does.
    pub fn stage_for(&self, task: &str) -> DesiredStage {
        self.tasks
            .iter()
            .filter(|t| glob_match(&t.pattern, task))
            .find_map(|t| t.stage)
            .unwrap_or(DesiredStage::Running)
    }

    /// Whether the task must never be stopped or reset: the first matching entry that sets
    /// `protect: true` wins (an entry without `protect` does not set it, so it cannot
    /// unprotect a task a later entry protects).
    pub fn is_protected(&self, task: &str) -> bool {
        self.tasks
            .iter()
            .any(|t| t.protect && glob_match(&t.pattern, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "name: NAME
task-mode: incremental
target-database: {host: 127.0.0.1, port: 3306, user: root, password: ''}
mysql-instances:
  - source-id: mariadb-01
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";
    const SOURCE: &str = "source-id: ID
from: {host: 127.0.0.1, port: 3306, user: root, password: ''}
";

    fn task(name: &str) -> String {
        TASK.replace("NAME", name)
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn loads_nested_dirs_skips_hidden_and_reads_policy() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.yaml", &task("alpha"));
        write(d.path(), "team/b/beta.yml", &task("beta"));
        write(
            d.path(),
            "sources/s1.yaml",
            &SOURCE.replace("ID", "mariadb-01"),
        );
        write(d.path(), ".git/config.yaml", "garbage: [");
        write(d.path(), ".hidden/x.yaml", &task("hidden"));
        write(d.path(), "notes.txt", "not yaml");
        write(d.path(), "reconcile.yaml", "prune: true\n");
        let s = load_dir(d.path());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.tasks.keys().collect::<Vec<_>>(), ["alpha", "beta"]);
        assert_eq!(s.sources.keys().collect::<Vec<_>>(), ["mariadb-01"]);
        assert_eq!(s.tasks["beta"].file, d.path().join("team/b/beta.yml"));
        assert!(s.policy.prune);
        assert!(s.policy.self_heal);
    }

    #[test]
    fn nested_reconcile_yaml_is_a_task_file_not_the_policy() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "x/reconcile.yaml", &task("gamma"));
        let s = load_dir(d.path());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert!(s.tasks.contains_key("gamma"));
    }

    #[test]
    fn duplicate_task_names_name_both_files_and_plan_neither() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "one.yaml", &task("dup"));
        write(d.path(), "sub/two.yaml", &task("dup"));
        write(d.path(), "s1.yaml", &SOURCE.replace("ID", "src"));
        write(d.path(), "s2.yaml", &SOURCE.replace("ID", "src"));
        let s = load_dir(d.path());
        assert!(s.tasks.is_empty());
        assert!(s.sources.is_empty());
        assert!(s.broken_names.contains("dup"));
        assert_eq!(s.errors.len(), 2);
        let m = &s.errors[0].message;
        assert!(
            m.contains("one.yaml") && m.contains("two.yaml") && m.contains("\"dup\""),
            "{m}"
        );
        let m = &s.errors[1].message;
        assert!(
            m.contains("s1.yaml") && m.contains("s2.yaml") && m.contains("\"src\""),
            "{m}"
        );
    }

    #[test]
    fn broken_file_keeps_its_name_in_broken_names() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "bad.yaml",
            "name: \"orders\" # the orders task\ntask-mode: sometimes\n",
        );
        write(d.path(), "good.yaml", &task("good"));
        let s = load_dir(d.path());
        assert_eq!(s.tasks.keys().collect::<Vec<_>>(), ["good"]);
        assert!(s.broken_names.contains("orders"));
        assert_eq!(s.errors.len(), 1);
        let m = &s.errors[0].message;
        assert!(m.contains("bad.yaml:2:") && m.contains("code=20020"), "{m}");
    }

    #[test]
    fn empty_and_missing_dirs_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let s = load_dir(d.path());
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].message.contains("no task or source files"));
        let s = load_dir(&d.path().join("nope"));
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].message.contains("cannot read"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_not_followed_forever() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "sub/t.yaml", &task("looped"));
        std::os::unix::fs::symlink(d.path(), d.path().join("sub/back")).unwrap();
        let s = load_dir(d.path());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.tasks.len(), 1);
    }

    #[test]
    fn policy_values_and_errors_with_lines() {
        let f = Path::new("reconcile.yaml");
        let ok = parse_policy(
            f,
            "prune: true\nself-heal: false\nallow-reset: true\ntasks:\n  - name: 'orders-*'\n    stage: paused\n  - name: billing\n    protect: true\n",
        )
        .unwrap();
        assert!(ok.prune && !ok.self_heal && ok.allow_reset);
        assert_eq!(ok.tasks.len(), 2);
        assert_eq!(ok.max_lag_before_stop, None);
        let lag = parse_policy(f, "max-lag-before-stop: 30s\n").unwrap();
        assert_eq!(
            lag.max_lag_before_stop,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(parse_policy(f, "# nothing\n").unwrap(), Policy::default());
        let cases = [
            (
                "prune: true\nprnue: false\n",
                "reconcile.yaml:2:1:",
                "unknown key \"prnue\"",
            ),
            (
                "prune: yes please\n",
                "reconcile.yaml:1:",
                "prune must be true or false",
            ),
            (
                "tasks:\n  - name: a\n    stage: stopped\n",
                "reconcile.yaml:3:",
                "must be running or paused",
            ),
            (
                "tasks:\n  - name: a\n    protected: true\n",
                "reconcile.yaml:3:",
                "unknown key \"protected\"",
            ),
            (
                "tasks:\n  - stage: paused\n",
                "reconcile.yaml:2:",
                "has no name",
            ),
            ("tasks: 3\n", "reconcile.yaml:1:", "must be a list"),
            (
                "max-lag-before-stop: soon\n",
                "reconcile.yaml:1:",
                "max-lag-before-stop must be a Go duration",
            ),
            ("- 1\n", "reconcile.yaml", "must be a mapping"),
            ("prune: [\n", "reconcile.yaml:", "not valid YAML"),
        ];
        for (text, loc, msg) in cases {
            let e = parse_policy(f, text).unwrap_err();
            assert!(
                e.message.starts_with(loc) && e.message.contains(msg),
                "{text:?} → {}",
                e.message
            );
        }
    }

    #[test]
    fn policy_error_from_dir_keeps_safe_defaults() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "t.yaml", &task("t"));
        write(d.path(), "reconcile.yml", "prune: maybe\n");
        let s = load_dir(d.path());
        assert_eq!(s.errors.len(), 1);
        assert!(!s.policy.prune);
        assert!(s.tasks.contains_key("t"));
    }

    #[test]
    fn globs() {
        let cases = [
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders-*", "orders-eu", true),
            ("orders-*", "orders-", true),
            ("orders-*", "order", false),
            ("*-eu", "shop-eu", true),
            ("o?ders", "orders", true),
            ("o?ders", "oders", false),
            ("*", "anything", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn first_entry_that_sets_the_attribute_wins() {
        let tp = |pattern: &str, stage, protect| TaskPolicy {
            pattern: pattern.into(),
            stage,
            protect,
        };
        let p = Policy {
            tasks: vec![
                tp("orders-eu", None, true),
                tp("orders-*", Some(DesiredStage::Paused), false),
                tp("*", Some(DesiredStage::Running), false),
            ],
            ..Policy::default()
        };
        assert_eq!(p.stage_for("orders-eu"), DesiredStage::Paused);
        assert_eq!(p.stage_for("billing"), DesiredStage::Running);
        assert!(p.is_protected("orders-eu"));
        assert!(!p.is_protected("orders-us"));
        assert_eq!(Policy::default().stage_for("x"), DesiredStage::Running);
    }
}
