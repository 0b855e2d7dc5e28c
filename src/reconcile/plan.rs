//! The planner: a pure function from desired state (the directory) and live state (the
//! master) to a [`Plan`] — which master operations bring each task to its file, and what that
//! does to its checkpoint.
//!
//! Called by the engine's `plan`, `apply` and watch loop, and by tests. Which change needs
//! which transition is decided by [`classify`] (from [`crate::config::changes`], shared with
//! the master's update-task) over the changed field paths of
//! [`super::diff::compare`]; `transitions.md` beside this file documents it, and a unit test
//! keeps the two in agreement. Every task of the directory or the master gets one
//! [`TaskPlan`] (no-ops included), in name order. Sources ([`plan_sources`]): a new one is
//! created; a changed one ([`source_changes`]) is start-relay / stop-relay when only
//! `enable-relay` changed, else operate-source update — a plan error while tasks use it (DM
//! refuses the update then).
//!
//! This module does no I/O, never talks to the master, never puts a plaintext password in a
//! plan (task YAML in steps is sealed, the diff is masked), and never plans a stop or a reset
//! that the policy (`protect`, `allow-reset`) forbids: such a change is `refused` instead.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::{self, generic_path, path_under};
use super::model::{
    ChangeClass, CheckpointFate, DesiredStage, DesiredState, DesiredTask, FileError, LiveState,
    LiveSubtask, LiveTask, PLAN_SCHEMA_VERSION, Plan, Step, TaskPlan,
};
pub use crate::config::changes::{FIELD_CLASSES, class_name, classify};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;

/// Changes after which a table newly let through gets no back-fill of its existing rows.
const BACKFILL_FIELDS: &[&str] = &[
    "routes",
    "filters",
    "block-allow-list",
    "expression-filter",
    "mysql-instances[].route-rules",
    "mysql-instances[].filter-rules",
    "mysql-instances[].block-allow-list",
    "mysql-instances[].expression-filters",
];

/// The settings only the Dump and Load units read.
const UNIT_FIELDS: &[&str] = &["mysql-instances[].mydumper", "mysql-instances[].loader"];

/// Where a live subtask is, as far as mydumper / loader settings matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The Dump unit runs (or is paused): a restart dumps again.
    Dumping,
    /// The Load unit runs or is next: a restart continues from the loader checkpoint.
    Loading,
    /// Sync, or a finished load (`full` done): the settings no longer matter.
    Past,
    /// The worker does not say.
    Unknown,
}

fn phase_of(s: &LiveSubtask) -> Phase {
    match (s.unit.as_str(), s.stage.as_str()) {
        // A finished dump hands over to the load.
        ("Dump", "Finished") => Phase::Loading,
        ("Dump", _) => Phase::Dumping,
        ("Load", "Finished") | ("Sync", _) => Phase::Past,
        ("Load", _) => Phase::Loading,
        _ => Phase::Unknown,
    }
}

/// `s1` / `s1 and s2` / `s1, s2 and s3`, with the verb agreeing.
fn sources_are(list: &[&str]) -> String {
    match list {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => String::new(),
    }
}

/// `desired` with each instance's mydumper and loader settings taken from `live` (same
/// source-id): an update-task must not carry changes the master's update-task refuses.
fn with_live_unit_settings(desired: &TaskConfig, live: &TaskConfig) -> TaskConfig {
    let mut c = desired.clone();
    for inst in c.mysql_instances.iter_mut().flatten() {
        if let Some(l) = live.instances().find(|l| l.source_id == inst.source_id) {
            inst.mydumper = l.mydumper.clone();
            inst.loader = l.loader.clone();
        }
    }
    c
}

fn under_any(path: &str, patterns: &[&str]) -> bool {
    let g = generic_path(path);
    patterns.iter().any(|p| path_under(&g, p))
}

fn is_instance_entry(path: &str) -> bool {
    generic_path(path) == "mysql-instances[]"
}

/// A step as a person would type it (`stop-task -s mariadb-02`).
pub fn step_label(s: &Step) -> String {
    let with = |cmd: &str, sources: &[String]| {
        if sources.is_empty() {
            cmd.to_string()
        } else {
            format!("{cmd} -s {}", sources.join(","))
        }
    };
    match s {
        Step::CreateSource { source, .. } => format!("operate-source create {source}"),
        Step::UpdateSource { source, .. } => format!("operate-source update {source}"),
        Step::StartRelay { source } => format!("start-relay -s {source}"),
        Step::StopRelay { source } => format!("stop-relay -s {source}"),
        Step::StartTask {
            sources,
            remove_meta,
            ..
        } => {
            let base = with("start-task", sources);
            if *remove_meta {
                format!("{base} --remove-meta")
            } else {
                base
            }
        }
        Step::StopTask { sources, .. } => with("stop-task", sources),
        Step::PauseTask { sources, .. } => with("pause-task", sources),
        Step::ResumeTask { sources, .. } => with("resume-task", sources),
        Step::UpdateTask { .. } => "update-task".to_string(),
    }
}

fn sources_of(c: &TaskConfig) -> Vec<String> {
    c.instances().map(|i| i.source_id.clone()).collect()
}

fn blank(task: &str, live: &LiveState, file: Option<std::path::PathBuf>) -> TaskPlan {
    TaskPlan {
        task: task.to_string(),
        class: ChangeClass::None,
        steps: Vec::new(),
        fields: Vec::new(),
        summary: String::new(),
        checkpoint: CheckpointFate::Kept,
        warnings: Vec::new(),
        refused: None,
        ignored: Vec::new(),
        diff: String::new(),
        live_digest: live.task_digest(task),
        file,
        phase: live
            .tasks
            .get(task)
            .map(|t| t.subtasks.iter().map(LiveSubtask::phase).collect())
            .unwrap_or_default(),
    }
}

fn summarize(tp: &mut TaskPlan) {
    if !tp.summary.is_empty() {
        return;
    }
    let class = class_name(tp.class);
    tp.summary = if let Some(r) = &tp.refused {
        format!("{class}: refused: {r}")
    } else if tp.steps.is_empty() {
        if tp.fields.is_empty() {
            "no changes".to_string()
        } else {
            format!("no steps needed for {}", tp.fields.join(", "))
        }
    } else {
        let steps: Vec<String> = tp.steps.iter().map(step_label).collect();
        let why = if tp.fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", tp.fields.join(", "))
        };
        format!("{class}: {}{why}", steps.join(" → "))
    };
}

/// Sources among `needed` that neither the master nor the directory has.
fn missing_sources(needed: &[String], desired: &DesiredState, live: &LiveState) -> Vec<String> {
    needed
        .iter()
        .filter(|s| !live.sources.contains(*s) && !desired.sources.contains_key(*s))
        .cloned()
        .collect()
}

fn missing_message(missing: &[String]) -> String {
    format!(
        "source {} is neither on the master nor in the directory: add its source file to the directory (or create it with `operate-source create`)",
        missing.join(", ")
    )
}

/// Whether `new` is `old` under another name (a rename): equal once the name, and the loader
/// directory's `.<name>` suffix that follows it, are put back.
fn same_but_name(new: &TaskConfig, old: &TaskConfig) -> bool {
    let mut c = new.clone();
    let (ns, os) = (format!(".{}", new.name), format!(".{}", old.name));
    c.name = old.name.clone();
    for inst in c.mysql_instances.iter_mut().flatten() {
        if let Some(l) = inst.loader.as_mut()
            && let Some(base) = l.dir.strip_suffix(&ns)
        {
            l.dir = format!("{base}{os}");
        }
    }
    diff::config_paths(&c, old).0.is_empty()
}

/// The desired config with its instances in the live config's order (update-task refuses a
/// different source list, order included; DM itself does not depend on the order).
fn aligned(desired: &TaskConfig, live: &TaskConfig) -> TaskConfig {
    let order = sources_of(live);
    let mut c = desired.clone();
    c.mysql_instances.sort_by_key(|i| {
        i.as_ref()
            .and_then(|i| order.iter().position(|s| *s == i.source_id))
            .unwrap_or(usize::MAX)
    });
    c
}

fn start_warning(c: &TaskConfig) -> String {
    if c.task_mode == "incremental" {
        format!(
            "an incremental task starts at its `meta` unless the downstream's `{}` schema already holds a checkpoint for task {:?} (left by an earlier task of that name): then it resumes there",
            c.meta_schema, c.name
        )
    } else {
        format!(
            "task-mode {} dumps and loads the selected tables first, unless the downstream's `{}` schema already holds a checkpoint for task {:?}: then it resumes there",
            c.task_mode, c.meta_schema, c.name
        )
    }
}

fn plan_create(
    d: &DesiredTask,
    desired: &DesiredState,
    live: &LiveState,
    renamed_from: &[String],
) -> TaskPlan {
    let mut tp = blank(&d.name, live, Some(d.file.clone()));
    tp.class = ChangeClass::Create;
    tp.checkpoint = CheckpointFate::New;
    tp.diff = diff::unified(Some(&d.config), None);
    tp.warnings.push(start_warning(&d.config));
    for old in renamed_from {
        tp.warnings.push(format!(
            "this looks like task {old:?} renamed (same config under a new name): DM keys checkpoints by task name, so {:?} does not continue from {old:?}'s checkpoint",
            d.name
        ));
    }
    let missing = missing_sources(&sources_of(&d.config), desired, live);
    if !missing.is_empty() {
        tp.refused = Some(missing_message(&missing));
        tp.checkpoint = CheckpointFate::Kept;
    } else {
        tp.steps.push(Step::StartTask {
            task: d.name.clone(),
            sources: Vec::new(),
            remove_meta: false,
            yaml: d.config.to_yaml_sealed(),
        });
        if desired.policy.stage_for(&d.name) == DesiredStage::Paused {
            tp.steps.push(Step::PauseTask {
                task: d.name.clone(),
                sources: Vec::new(),
            });
            tp.fields.push("stage: paused (reconcile.yaml)".into());
        }
    }
    summarize(&mut tp);
    tp
}

fn plan_delete(
    l: &LiveTask,
    desired: &DesiredState,
    live: &LiveState,
    renamed_to: &[String],
    dir_unreadable: bool,
) -> TaskPlan {
    let mut tp = blank(&l.name, live, None);
    tp.diff = diff::unified(None, l.config.as_ref());
    for new in renamed_to {
        tp.warnings.push(format!(
            "task {new:?} in the directory has the same config: if this is a rename, {:?}'s checkpoint is not carried over (DM keys checkpoints by task name)",
            l.name
        ));
    }
    let policy = &desired.policy;
    if dir_unreadable {
        tp.summary =
            "not deleted: the directory gave no task at all and has errors (see the errors)".into();
    } else if !policy.prune {
        tp.summary = "not in the directory; prune is off".into();
    } else if policy.is_protected(&l.name) {
        tp.summary =
            "not in the directory; protected in reconcile.yaml, so it is not stopped".into();
    } else {
        tp.class = ChangeClass::Delete;
        tp.checkpoint = CheckpointFate::Left;
        tp.fields.push("not in the directory (prune: true)".into());
        tp.steps.push(Step::StopTask {
            task: l.name.clone(),
            sources: Vec::new(),
        });
        tp.warnings.push(
            "stop-task removes the task from the master; its checkpoint tables stay in the downstream, so a later task of the same name resumes from them".into(),
        );
    }
    summarize(&mut tp);
    tp
}

fn plan_update(
    d: &DesiredTask,
    l: &LiveTask,
    desired: &DesiredState,
    live: &LiveState,
) -> TaskPlan {
    let name = d.name.as_str();
    let policy = &desired.policy;
    let mut tp = blank(name, live, Some(d.file.clone()));
    let Some(lc) = &l.config else {
        tp.refused = Some(format!(
            "the master's config of this task could not be read: {}",
            l.config_error.as_deref().unwrap_or("no reason given")
        ));
        summarize(&mut tp);
        return tp;
    };
    tp.diff = diff::unified(Some(&d.config), Some(lc));
    let fd = diff::compare(&d.config, l);
    tp.ignored = fd.ignored.clone();

    // Sources: what the master runs (its subtasks; its config when it reports none).
    let want_sources = sources_of(&d.config);
    let config_sources = sources_of(lc);
    let sub_sources: Vec<String> = l.subtasks.iter().map(|s| s.source.clone()).collect();
    let active = if sub_sources.is_empty() {
        config_sources.clone()
    } else {
        sub_sources.clone()
    };
    let added: Vec<String> = want_sources
        .iter()
        .filter(|s| !active.contains(s))
        .cloned()
        .collect();
    let mut gone_all: Vec<String> = Vec::new();
    for s in config_sources.iter().chain(&sub_sources) {
        if !want_sources.contains(s) && !gone_all.contains(s) {
            gone_all.push(s.clone());
        }
    }
    let gone: Vec<String> = gone_all
        .iter()
        .filter(|s| active.contains(s))
        .cloned()
        .collect();
    for s in gone_all.iter().filter(|s| !gone.contains(s)) {
        tp.warnings.push(format!(
            "source {s} is no longer in the task file and has no subtask on the master, but the master's stored config still lists it"
        ));
    }

    // Fields and their class.
    let mut fields: Vec<String> = fd
        .changed
        .iter()
        .filter(|p| !is_instance_entry(p))
        .cloned()
        .collect();
    if fd.password_changed {
        fields.push("target-database.password".into());
    }
    // mydumper / loader settings once every subtask is past the load change nothing (DM reads
    // them only in the Dump and Load units): no restart for them.
    let phases: Vec<(&str, Phase)> = l
        .subtasks
        .iter()
        .map(|s| (s.source.as_str(), phase_of(s)))
        .collect();
    let incremental = d.config.task_mode == "incremental";
    let past_load =
        !incremental && !phases.is_empty() && phases.iter().all(|(_, p)| *p == Phase::Past);
    let mut moot_fields: Vec<String> = Vec::new();
    if past_load {
        let (moot, rest): (Vec<String>, Vec<String>) =
            fields.into_iter().partition(|f| under_any(f, UNIT_FIELDS));
        fields = rest;
        for f in &moot {
            tp.ignored.push(format!(
                "{f}: the dump and load are over (every subtask is in Sync or Finished), so it changes nothing; the master keeps its old value until a restart"
            ));
        }
        moot_fields = moot;
    }
    let field_class = fields
        .iter()
        .map(|f| classify(f))
        .max()
        .unwrap_or(ChangeClass::None);
    let mut class = field_class;
    for s in &added {
        fields.push(format!("mysql-instances[{s}]"));
        class = class.max(ChangeClass::AddSource);
    }
    for s in &gone {
        fields.push(format!("mysql-instances[{s}]"));
        class = class.max(ChangeClass::RemoveSource);
    }

    // Stage: the remaining subtasks against the policy.
    let remaining: Vec<&LiveSubtask> = l
        .subtasks
        .iter()
        .filter(|s| !gone.contains(&s.source))
        .collect();
    let error = remaining
        .iter()
        .find_map(|s| s.error.as_ref().map(|e| (s.source.clone(), e.clone())));
    let any_paused = remaining.iter().any(|s| s.stage == "Paused");
    let any_running = remaining.iter().any(|s| s.stage == "Running");
    let all_paused = !remaining.is_empty() && remaining.iter().all(|s| s.stage == "Paused");
    let want = policy.stage_for(name);
    let mut resume_needed = false;
    let mut pause_needed = false;
    let mut heal_blocked = false;
    match want {
        DesiredStage::Running => {
            if let Some((src, e)) = &error {
                if policy.self_heal {
                    resume_needed = true;
                    tp.warnings.push(format!(
                        "paused by an error on {src}: {e}; self-heal resumes it (it pauses again if the cause is still there)"
                    ));
                } else {
                    heal_blocked = true;
                    tp.warnings.push(format!(
                        "paused by an error on {src}: {e}; self-heal is off, so it is left paused (resume-task by hand once the cause is fixed)"
                    ));
                }
            } else if any_paused {
                resume_needed = true;
            }
        }
        DesiredStage::Paused => pause_needed = any_running,
    }
    if resume_needed {
        fields.push("stage: Paused → Running".into());
        class = class.max(ChangeClass::Stage);
    }
    if pause_needed {
        fields.push("stage: Running → Paused".into());
        class = class.max(ChangeClass::Stage);
    }
    let stay_paused = want == DesiredStage::Paused || (heal_blocked && !any_running);
    tp.class = class;
    tp.fields = fields;

    // Warnings the user cannot see otherwise.
    let meta_changed = tp
        .fields
        .iter()
        .any(|f| path_under(&generic_path(f), "mysql-instances[].meta"));
    if meta_changed {
        tp.warnings.push(if class == ChangeClass::Reset {
            "the reset honours the new `meta` (the checkpoint is removed first)".into()
        } else {
            "`meta` changed, but DM ignores `meta` while a checkpoint exists for this task: the new start point is not used unless the task is reset".into()
        });
    }
    if class != ChangeClass::Reset
        && d.config.task_mode != "full"
        && tp.fields.iter().any(|f| under_any(f, BACKFILL_FIELDS))
    {
        tp.warnings.push(
            "a table newly allowed by this block-allow-list / filter / route change gets only the changes made from now on, not the rows it already holds (no back-fill): copy them yourself or reset the task".into(),
        );
    }
    let mut phase_note: Option<String> = None;
    if tp.fields.iter().any(|f| under_any(f, UNIT_FIELDS)) {
        let of = |want: Phase| -> Vec<&str> {
            phases
                .iter()
                .filter(|(_, p)| *p == want)
                .map(|(s, _)| *s)
                .collect()
        };
        let (dumping, loading, past) = (of(Phase::Dumping), of(Phase::Loading), of(Phase::Past));
        if incremental {
            tp.warnings.push(
                "mydumper/loader settings only matter while a task dumps or loads; this task is incremental, so the change has no effect (the restart only brings the master's copy up to date)".into(),
            );
        } else if dumping.is_empty() && loading.is_empty() {
            tp.warnings.push(
                "mydumper/loader settings only take effect while the task is still dumping or loading; a task already in Sync is not affected".into(),
            );
        } else {
            let mut notes = Vec::new();
            if !dumping.is_empty() {
                notes.push(format!(
                    "{} dumping: the dump phase starts again with the new settings",
                    sources_are(&dumping)
                ));
            }
            if !loading.is_empty() {
                notes.push(format!(
                    "{} loading: the load continues from the loader checkpoint with the new settings (rows already loaded stay)",
                    sources_are(&loading)
                ));
            }
            if !past.is_empty() {
                notes.push(format!(
                    "{} past the load: the new settings do not affect it",
                    sources_are(&past)
                ));
            }
            tp.warnings.extend(notes.iter().cloned());
            phase_note = Some(notes.join("; "));
        }
    }

    // Policy gates: protect, allow-reset, sources that exist.
    let stops = matches!(
        class,
        ChangeClass::RemoveSource | ChangeClass::Restart | ChangeClass::Reset
    );
    let reset_fields: Vec<&String> = tp
        .fields
        .iter()
        .filter(|f| classify(f) == ChangeClass::Reset)
        .collect();
    let starts: Vec<String> = match class {
        ChangeClass::Restart | ChangeClass::Reset => want_sources.clone(),
        _ => added.clone(),
    };
    let missing = missing_sources(&starts, desired, live);
    let lock = l.subtasks.iter().find_map(|s| s.lock.clone());
    if stops
        && !policy.force
        && let Some(lock) = &lock
    {
        tp.refused = Some(format!(
            "the task waits on the shard DDL lock {lock}: {} would stop it in the middle of the lock; resolve the lock first (show-ddl-locks, unlock-ddl-lock) or run with --force",
            class_name(class)
        ));
    } else if stops && policy.is_protected(name) {
        tp.refused = Some(format!(
            "the task is protected in reconcile.yaml: it is never stopped or reset, but {} needs {} (stop-task)",
            tp.fields.join(", "),
            class_name(class)
        ));
    } else if class == ChangeClass::Reset && !policy.allow_reset {
        let list: Vec<&str> = reset_fields.iter().map(|s| s.as_str()).collect();
        tp.refused = Some(format!(
            "{} needs a reset (stop-task, then start-task --remove-meta), which loses the checkpoint; set allow-reset: true in reconcile.yaml to allow it",
            list.join(", ")
        ));
    } else if !missing.is_empty() {
        tp.refused = Some(missing_message(&missing));
    }
    if tp.refused.is_some() {
        summarize(&mut tp);
        return tp;
    }

    // Steps.
    let task = name.to_string();
    let all = Vec::<String>::new;
    match class {
        ChangeClass::Restart | ChangeClass::Reset => {
            let reset = class == ChangeClass::Reset;
            tp.steps.push(Step::StopTask {
                task: task.clone(),
                sources: all(),
            });
            tp.steps.push(Step::StartTask {
                task: task.clone(),
                sources: all(),
                remove_meta: reset,
                yaml: d.config.to_yaml_sealed(),
            });
            if want == DesiredStage::Paused {
                tp.steps.push(Step::PauseTask {
                    task: task.clone(),
                    sources: all(),
                });
            }
            if reset {
                tp.checkpoint = CheckpointFate::Lost;
                tp.warnings.push(if d.config.task_mode == "incremental" {
                    "the checkpoint is removed: replication starts again from each instance's `meta`; changes between `meta` and now are replayed, changes before `meta` are not".into()
                } else {
                    format!(
                        "the checkpoint is removed: task-mode {} dumps and loads every selected table again",
                        d.config.task_mode
                    )
                });
            }
        }
        _ => {
            if !gone.is_empty() {
                tp.steps.push(Step::StopTask {
                    task: task.clone(),
                    sources: gone.clone(),
                });
            }
            if !added.is_empty() {
                tp.steps.push(Step::StartTask {
                    task: task.clone(),
                    sources: added.clone(),
                    remove_meta: false,
                    yaml: d.config.to_yaml_sealed(),
                });
            }
            if field_class == ChangeClass::Online {
                // update-task needs every subtask paused (DM's 40052), the new ones included.
                if !all_paused || !added.is_empty() {
                    tp.steps.push(Step::PauseTask {
                        task: task.clone(),
                        sources: all(),
                    });
                }
                let cfg = if added.is_empty() && gone.is_empty() {
                    aligned(&d.config, lc)
                } else {
                    d.config.clone()
                };
                let cfg = if moot_fields.is_empty() {
                    cfg
                } else {
                    with_live_unit_settings(&cfg, lc)
                };
                tp.steps.push(Step::UpdateTask {
                    task: task.clone(),
                    yaml: cfg.to_yaml_sealed(),
                });
                if !stay_paused {
                    tp.steps.push(Step::ResumeTask {
                        task: task.clone(),
                        sources: all(),
                    });
                }
            } else if want == DesiredStage::Paused && (pause_needed || !added.is_empty()) {
                tp.steps.push(Step::PauseTask {
                    task: task.clone(),
                    sources: all(),
                });
            } else if resume_needed {
                tp.steps.push(Step::ResumeTask {
                    task: task.clone(),
                    sources: all(),
                });
            }
        }
    }
    if tp.steps.is_empty() && tp.fields.is_empty() && !moot_fields.is_empty() {
        tp.summary = format!(
            "no steps needed: {} changes nothing once the dump and load are over",
            moot_fields.join(", ")
        );
    }
    summarize(&mut tp);
    if let Some(note) = phase_note
        && !tp.steps.is_empty()
    {
        tp.summary.push_str(&format!("; {note}"));
    }
    tp
}

/// What differs between a source file and the master's copy, `key: old → new` in key order
/// (passwords compared by the master: `from.password: changed`).
pub fn source_changes(
    desired: &SourceConfig,
    live: &SourceConfig,
    password_matches: Option<bool>,
) -> Vec<String> {
    fn flat(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flat(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let blank = |c: &SourceConfig| {
        let mut c = c.clone();
        c.from.password = String::new();
        let mut out = BTreeMap::new();
        flat("", &serde_json::to_value(&c).unwrap_or_default(), &mut out);
        out
    };
    let (d, l) = (blank(desired), blank(live));
    let mut changes = Vec::new();
    for k in d.keys().chain(l.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (l.get(k), d.get(k));
        if a != b {
            changes.push(format!(
                "{k}: {} → {}",
                a.map(String::as_str).unwrap_or("(none)"),
                b.map(String::as_str).unwrap_or("(none)")
            ));
        }
    }
    if password_matches == Some(false) {
        changes.push("from.password: changed".into());
    }
    changes
}

/// The source steps: create the new ones; for a changed one, start-relay / stop-relay when
/// only `enable-relay` changed, else operate-source update — which DM refuses while tasks use
/// the source, so that is a plan error naming them.
fn plan_sources(desired: &DesiredState, live: &LiveState) -> (Vec<Step>, Vec<FileError>) {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for (id, s) in &desired.sources {
        if !live.sources.contains(id) {
            steps.push(Step::CreateSource {
                source: id.clone(),
                yaml: s.config.to_yaml_sealed(),
            });
            continue;
        }
        let Some(ls) = live.source_configs.get(id) else {
            continue;
        };
        let Some(lc) = &ls.config else {
            errors.push(FileError {
                file: s.file.clone(),
                message: format!(
                    "source {id}: the master's copy cannot be read ({}): not compared",
                    ls.error.clone().unwrap_or_default()
                ),
            });
            continue;
        };
        let changes = source_changes(&s.config, lc, ls.password_matches);
        if changes.is_empty() {
            continue;
        }
        if changes.len() == 1 && changes[0].starts_with("enable-relay: ") {
            steps.push(if s.config.enable_relay {
                Step::StartRelay { source: id.clone() }
            } else {
                Step::StopRelay { source: id.clone() }
            });
            continue;
        }
        let users: Vec<String> = live
            .tasks
            .values()
            .filter(|t| {
                t.config
                    .as_ref()
                    .is_some_and(|c| c.instances().any(|i| &i.source_id == id))
                    || t.subtasks.iter().any(|st| &st.source == id)
            })
            .map(|t| t.name.clone())
            .collect();
        if users.is_empty() {
            steps.push(Step::UpdateSource {
                source: id.clone(),
                yaml: s.config.to_yaml_sealed(),
                changes,
            });
        } else {
            errors.push(FileError {
                file: s.file.clone(),
                message: format!(
                    "source {id} changed ({}): operate-source update is refused while tasks use the source ({}): stop them first (or move them out of the directory), then plan again",
                    changes.join("; "),
                    users.join(", ")
                ),
            });
        }
    }
    (steps, errors)
}

/// Plans every task of the directory or the master, in name order (pure, deterministic).
pub fn plan(desired: &DesiredState, live: &LiveState) -> Plan {
    let (sources, source_errors) = plan_sources(desired, live);

    // Renames: a created task equal to a deleted one but for its name.
    let created: Vec<&DesiredTask> = desired
        .tasks
        .values()
        .filter(|t| !live.tasks.contains_key(&t.name))
        .collect();
    let deleted: Vec<&LiveTask> = live
        .tasks
        .values()
        .filter(|t| !desired.tasks.contains_key(&t.name) && !desired.broken_names.contains(&t.name))
        .collect();
    let mut renames: Vec<(String, String)> = Vec::new();
    for c in &created {
        for d in &deleted {
            if let Some(old) = &d.config
                && same_but_name(&c.config, old)
            {
                renames.push((d.name.clone(), c.name.clone()));
            }
        }
    }
    let dir_unreadable = desired.tasks.is_empty() && !desired.errors.is_empty();

    let names: BTreeSet<&String> = desired.tasks.keys().chain(live.tasks.keys()).collect();
    let mut tasks = Vec::new();
    for name in names {
        let tp = match (desired.tasks.get(name), live.tasks.get(name)) {
            (Some(d), None) => {
                let from: Vec<String> = renames
                    .iter()
                    .filter(|(_, n)| n == name)
                    .map(|(o, _)| o.clone())
                    .collect();
                plan_create(d, desired, live, &from)
            }
            (Some(d), Some(l)) => plan_update(d, l, desired, live),
            (None, Some(_)) if desired.broken_names.contains(name) => {
                let mut tp = blank(name, live, None);
                tp.summary = "its file does not load (see the errors): left as it is".into();
                tp
            }
            (None, Some(l)) => {
                let to: Vec<String> = renames
                    .iter()
                    .filter(|(o, _)| o == name)
                    .map(|(_, n)| n.clone())
                    .collect();
                plan_delete(l, desired, live, &to, dir_unreadable)
            }
            (None, None) => continue,
        };
        tasks.push(tp);
    }

    let mut errors = desired.errors.clone();
    errors.extend(source_errors);
    Plan {
        version: PLAN_SCHEMA_VERSION,
        dir: desired.dir.clone(),
        sources,
        tasks,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::config::parse_task;
    use crate::reconcile::model::{DesiredSource, FileError, Policy, TaskPolicy};

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
    const THIRD: &str = "  - source-id: mariadb-03
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";
    const SECOND: &str = "  - source-id: mariadb-02
    block-allow-list: shop-only
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";

    fn cfg(text: &str) -> TaskConfig {
        match parse_task(text.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    fn with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        BASE.replace(from, to)
    }

    type Sub = (&'static str, &'static str, Option<&'static str>);
    const RUNNING: &[Sub] = &[
        ("mariadb-01", "Running", None),
        ("mariadb-02", "Running", None),
    ];
    const PAUSED: &[Sub] = &[
        ("mariadb-01", "Paused", None),
        ("mariadb-02", "Paused", None),
    ];
    const ERRORED: &[Sub] = &[
        (
            "mariadb-01",
            "Paused",
            Some("Error 1146: Table 'shop.x' doesn't exist"),
        ),
        ("mariadb-02", "Running", None),
    ];

    /// The planner over the live state as `live::fetch` returns it: the master, which holds
    /// "secret" for every task, has compared each desired task's password by value.
    fn plan(desired: &DesiredState, live: &LiveState) -> Plan {
        let mut live = live.clone();
        for (name, t) in live.tasks.iter_mut() {
            if t.password_fingerprint.is_some()
                && let Some(d) = desired.tasks.get(name)
            {
                let plain = d
                    .config
                    .target_database
                    .as_ref()
                    .map(|db| db.plain_password());
                t.password_matches = Some(plain.as_deref() == Some("secret"));
            }
        }
        super::plan(desired, &live)
    }

    fn live_task(name: &str, text: &str, subs: &[Sub]) -> LiveTask {
        LiveTask {
            name: name.into(),
            // As get-config shows it: password masked, fingerprint beside it; the master
            // holds "secret" (its answer to the comparison is filled in by `plan` below).
            config: Some(cfg(&text.replace("password: secret", "password: '******'"))),
            config_error: None,
            password_fingerprint: Some("hmac-sha256:a1b2".into()),
            password_matches: None,
            subtasks: subs
                .iter()
                .map(|(s, st, e)| LiveSubtask {
                    source: s.to_string(),
                    stage: st.to_string(),
                    error: e.map(str::to_string),
                    unit: String::new(),
                    progress: None,
                    lock: None,
                })
                .collect(),
        }
    }

    fn pol(
        prune: bool,
        self_heal: bool,
        allow_reset: bool,
        e: &[(&str, Option<DesiredStage>, bool)],
    ) -> Policy {
        Policy {
            prune,
            self_heal,
            allow_reset,
            force: false,
            max_lag_before_stop: None,
            tasks: e
                .iter()
                .map(|(p, s, x)| TaskPolicy {
                    pattern: p.to_string(),
                    stage: *s,
                    protect: *x,
                })
                .collect(),
        }
    }

    fn state(tasks: &[String], policy: Policy) -> DesiredState {
        let mut s = DesiredState {
            dir: PathBuf::from("tasks"),
            policy,
            ..Default::default()
        };
        for t in tasks {
            let c = cfg(t);
            s.tasks.insert(
                c.name.clone(),
                DesiredTask {
                    name: c.name.clone(),
                    file: PathBuf::from(format!("tasks/{}.yaml", c.name)),
                    config: c,
                },
            );
        }
        s
    }

    fn live_state(tasks: Vec<LiveTask>) -> LiveState {
        LiveState {
            tasks: tasks.into_iter().map(|t| (t.name.clone(), t)).collect(),
            sources: ["mariadb-01", "mariadb-02", "mariadb-03"]
                .into_iter()
                .map(String::from)
                .collect(),
            source_configs: BTreeMap::new(),
        }
    }

    struct Case {
        what: &'static str,
        desired: Option<String>,
        live: Option<(String, &'static [Sub])>,
        policy: Policy,
        class: ChangeClass,
        steps: &'static [&'static str],
        checkpoint: CheckpointFate,
        refused: Option<&'static str>,
        warn: &'static [&'static str],
    }

    const PAUSE: Option<DesiredStage> = Some(DesiredStage::Paused);

    fn cases() -> Vec<Case> {
        use ChangeClass as C;
        use CheckpointFate as F;
        let base = || Some(BASE.to_string());
        let running = || Some((BASE.to_string(), RUNNING));
        let d = Policy::default;
        let ba = || Some(with("do-dbs: [shop]", "do-dbs: [shop, shop2]"));
        vec![
            Case {
                what: "create",
                desired: base(),
                live: None,
                policy: d(),
                class: C::Create,
                steps: &["start-task"],
                checkpoint: F::New,
                refused: None,
                warn: &["starts at its `meta`"],
            },
            Case {
                what: "create paused",
                desired: base(),
                live: None,
                policy: pol(false, true, false, &[("sh*", PAUSE, false)]),
                class: C::Create,
                steps: &["start-task", "pause-task"],
                checkpoint: F::New,
                refused: None,
                warn: &[],
            },
            Case {
                what: "create needing an unknown source",
                desired: Some(with("mariadb-02", "mariadb-09")),
                live: None,
                policy: d(),
                class: C::Create,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some("source mariadb-09 is neither on the master nor in the directory"),
                warn: &[],
            },
            Case {
                what: "no-op",
                desired: base(),
                live: running(),
                policy: d(),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "no-op, deprecated key",
                desired: Some(with(
                    "task-mode: incremental\n",
                    "task-mode: incremental\nremove-meta: true\nenable-heartbeat: true\n",
                )),
                live: running(),
                policy: d(),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "online while running",
                desired: ba(),
                live: running(),
                policy: d(),
                class: C::Online,
                steps: &["pause-task", "update-task", "resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &["no back-fill"],
            },
            Case {
                what: "online while paused by hand (policy: running)",
                desired: ba(),
                live: Some((BASE.to_string(), PAUSED)),
                policy: d(),
                class: C::Online,
                steps: &["update-task", "resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "online, paused and stays paused",
                desired: ba(),
                live: Some((BASE.to_string(), PAUSED)),
                policy: pol(false, true, false, &[("shop", PAUSE, false)]),
                class: C::Online,
                steps: &["update-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "online, runs but should be paused",
                desired: ba(),
                live: running(),
                policy: pol(false, true, false, &[("shop", PAUSE, false)]),
                class: C::Online,
                steps: &["pause-task", "update-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "restart on worker-count",
                desired: Some(with(
                    SECOND,
                    &format!("{SECOND}    syncer: {{worker-count: 8}}\n"),
                )),
                live: running(),
                policy: d(),
                class: C::Restart,
                steps: &["stop-task", "start-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "restart on password change",
                desired: Some(with("password: secret", "password: n3w")),
                live: running(),
                policy: d(),
                class: C::Restart,
                steps: &["stop-task", "start-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "restart, paused again",
                desired: Some(with("user: root", "user: dm")),
                live: Some((BASE.to_string(), PAUSED)),
                policy: pol(false, true, false, &[("shop", PAUSE, false)]),
                class: C::Restart,
                steps: &["stop-task", "start-task", "pause-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "restart on a loader change (incremental)",
                desired: Some(with(
                    SECOND,
                    &format!("{SECOND}    loader: {{pool-size: 4}}\n"),
                )),
                live: running(),
                policy: d(),
                class: C::Restart,
                steps: &["stop-task", "start-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &["this task is incremental"],
            },
            Case {
                what: "reset refused",
                desired: Some(with("port: 4000", "port: 4001")),
                live: running(),
                policy: d(),
                class: C::Reset,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some(
                    "target-database.port needs a reset (stop-task, then start-task --remove-meta), which loses the checkpoint; set allow-reset: true in reconcile.yaml",
                ),
                warn: &[],
            },
            Case {
                what: "reset allowed",
                desired: Some(with("port: 4000", "port: 4001")),
                live: running(),
                policy: pol(false, true, true, &[]),
                class: C::Reset,
                steps: &["stop-task", "start-task --remove-meta"],
                checkpoint: F::Lost,
                refused: None,
                warn: &[
                    "checkpoint is removed: replication starts again from each instance's `meta`",
                ],
            },
            Case {
                what: "protected: restart refused",
                desired: Some(with("user: root", "user: dm")),
                live: running(),
                policy: pol(false, true, true, &[("shop", None, true)]),
                class: C::Restart,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some("protected"),
                warn: &[],
            },
            Case {
                what: "protected: reset refused even with allow-reset",
                desired: Some(with(
                    "task-mode: incremental\n",
                    "task-mode: incremental\nmeta-schema: other\n",
                )),
                live: running(),
                policy: pol(false, true, true, &[("*", None, true)]),
                class: C::Reset,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some("never stopped or reset"),
                warn: &[],
            },
            Case {
                what: "protected: online still applies",
                desired: ba(),
                live: running(),
                policy: pol(false, true, false, &[("shop", None, true)]),
                class: C::Online,
                steps: &["pause-task", "update-task", "resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "add-source",
                desired: Some(format!("{BASE}{THIRD}")),
                live: running(),
                policy: d(),
                class: C::AddSource,
                steps: &["start-task -s mariadb-03"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "add-source + online",
                desired: Some(format!(
                    "{}{THIRD}",
                    with("do-dbs: [shop]", "do-dbs: [shop, shop2]")
                )),
                live: running(),
                policy: d(),
                class: C::AddSource,
                steps: &[
                    "start-task -s mariadb-03",
                    "pause-task",
                    "update-task",
                    "resume-task",
                ],
                checkpoint: F::Kept,
                refused: None,
                warn: &["no back-fill"],
            },
            Case {
                what: "add-source to a task that stays paused",
                desired: Some(format!("{BASE}{THIRD}")),
                live: Some((BASE.to_string(), PAUSED)),
                policy: pol(false, true, false, &[("shop", PAUSE, false)]),
                class: C::AddSource,
                steps: &["start-task -s mariadb-03", "pause-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "online on an error-paused task, self-heal on",
                desired: ba(),
                live: Some((BASE.to_string(), ERRORED)),
                policy: d(),
                class: C::Online,
                steps: &["pause-task", "update-task", "resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &["doesn't exist"],
            },
            Case {
                what: "add-source needing an unknown source",
                desired: Some(format!(
                    "{BASE}{}",
                    THIRD.replace("mariadb-03", "mariadb-09")
                )),
                live: running(),
                policy: d(),
                class: C::AddSource,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some("mariadb-09"),
                warn: &[],
            },
            Case {
                what: "remove-source",
                desired: Some(with(SECOND, "")),
                live: running(),
                policy: d(),
                class: C::RemoveSource,
                steps: &["stop-task -s mariadb-02"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "remove-source refused when protected",
                desired: Some(with(SECOND, "")),
                live: running(),
                policy: pol(false, true, false, &[("shop", None, true)]),
                class: C::RemoveSource,
                steps: &[],
                checkpoint: F::Kept,
                refused: Some("protected"),
                warn: &[],
            },
            Case {
                what: "stage: pause",
                desired: base(),
                live: running(),
                policy: pol(false, true, false, &[("shop", PAUSE, false)]),
                class: C::Stage,
                steps: &["pause-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "stage: resume",
                desired: base(),
                live: Some((BASE.to_string(), PAUSED)),
                policy: d(),
                class: C::Stage,
                steps: &["resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "error-paused, self-heal on",
                desired: base(),
                live: Some((BASE.to_string(), ERRORED)),
                policy: d(),
                class: C::Stage,
                steps: &["resume-task"],
                checkpoint: F::Kept,
                refused: None,
                warn: &["Table 'shop.x' doesn't exist", "self-heal resumes it"],
            },
            Case {
                what: "error-paused, self-heal off",
                desired: base(),
                live: Some((BASE.to_string(), ERRORED)),
                policy: pol(false, false, false, &[]),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &["Table 'shop.x' doesn't exist", "self-heal is off"],
            },
            Case {
                what: "meta change on a live task",
                desired: Some(with(
                    "binlog-pos: 4}\n  - source-id: mariadb-02",
                    "binlog-pos: 999}\n  - source-id: mariadb-02",
                )),
                live: running(),
                policy: d(),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &["DM ignores `meta` while a checkpoint exists"],
            },
            Case {
                what: "delete without prune",
                desired: None,
                live: running(),
                policy: d(),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
            Case {
                what: "delete with prune",
                desired: None,
                live: running(),
                policy: pol(true, true, false, &[]),
                class: C::Delete,
                steps: &["stop-task"],
                checkpoint: F::Left,
                refused: None,
                warn: &["checkpoint tables stay"],
            },
            Case {
                what: "protected delete",
                desired: None,
                live: running(),
                policy: pol(true, true, false, &[("shop", None, true)]),
                class: C::None,
                steps: &[],
                checkpoint: F::Kept,
                refused: None,
                warn: &[],
            },
        ]
    }

    #[test]
    fn transitions_table() {
        for c in cases() {
            let desired = state(c.desired.as_slice(), c.policy.clone());
            let live = live_state(
                c.live
                    .iter()
                    .map(|(t, subs)| live_task("shop", t, subs))
                    .collect(),
            );
            let p = plan(&desired, &live);
            assert_eq!(p.tasks.len(), 1, "{}", c.what);
            let t = &p.tasks[0];
            assert_eq!(t.task, "shop", "{}", c.what);
            assert_eq!(t.class, c.class, "{}: {t:#?}", c.what);
            let steps: Vec<String> = t.steps.iter().map(step_label).collect();
            assert_eq!(steps, c.steps, "{}: {t:#?}", c.what);
            assert_eq!(t.checkpoint, c.checkpoint, "{}", c.what);
            match (c.refused, &t.refused) {
                (None, None) => {}
                (Some(want), Some(got)) => assert!(got.contains(want), "{}: {got}", c.what),
                (want, got) => panic!("{}: refused {got:?}, want {want:?}", c.what),
            }
            for w in c.warn {
                assert!(
                    t.warnings.iter().any(|x| x.contains(w)),
                    "{}: no warning with {w:?} in {:?}",
                    c.what,
                    t.warnings
                );
            }
            assert!(!t.summary.is_empty(), "{}", c.what);
            assert_eq!(t.live_digest, live.task_digest("shop"), "{}", c.what);
            assert!(
                !serde_json::to_string(t)
                    .unwrap_or_default()
                    .contains("secret"),
                "{}",
                c.what
            );
        }
    }

    const FULL: &str = "name: shop
task-mode: full
target-database: {host: 127.0.0.1, port: 4000, user: root, password: secret}
block-allow-list:
  shop-only: {do-dbs: [shop]}
mysql-instances:
  - source-id: mariadb-01
    block-allow-list: shop-only
  - source-id: mariadb-02
    block-allow-list: shop-only
";

    /// (source, stage, unit, progress)
    type Phased = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    );

    fn phased_task(text: &str, subs: &[Phased]) -> LiveTask {
        let mut t = live_task("shop", text, &[]);
        t.subtasks = subs
            .iter()
            .map(|(s, st, u, p)| LiveSubtask {
                source: s.to_string(),
                stage: st.to_string(),
                error: None,
                unit: u.to_string(),
                progress: p.map(str::to_string),
                lock: None,
            })
            .collect();
        t
    }

    /// A task waiting on a shard DDL lock is not stopped by a restart unless `--force`; the
    /// lock shows in its phase.
    #[test]
    fn a_task_waiting_on_a_shard_lock_is_not_restarted_without_force() {
        let threads = FULL.replace(
            "  - source-id: mariadb-01\n",
            "  - source-id: mariadb-01\n    mydumper: {threads: 8}\n",
        );
        let mut live = phased_task(
            FULL,
            &[
                ("mariadb-01", "Running", "Load", Some("42.10 %")),
                ("mariadb-02", "Running", "Load", Some("10.00 %")),
            ],
        );
        live.subtasks[0].lock = Some("shop-`shop`.`t`".into());
        for (force, refused) in [(false, true), (true, false)] {
            let policy = Policy {
                force,
                ..Policy::default()
            };
            let desired = state(std::slice::from_ref(&threads), policy);
            let p = plan(&desired, &live_state(vec![live.clone()]));
            let t = &p.tasks[0];
            assert_eq!(t.class, ChangeClass::Restart, "{t:#?}");
            assert_eq!(t.refused.is_some(), refused, "force {force}: {t:#?}");
            if refused {
                let why = t.refused.as_deref().unwrap_or("");
                assert!(
                    why.contains("waits on the shard DDL lock shop-`shop`.`t`")
                        && why.contains("--force"),
                    "{why}"
                );
            } else {
                let steps: Vec<String> = t.steps.iter().map(step_label).collect();
                assert_eq!(steps, ["stop-task", "start-task"], "{t:#?}");
            }
        }
        assert_eq!(
            live.subtasks[0].phase(),
            "mariadb-01: Load 42.10 % waiting on lock shop-`shop`.`t`"
        );
    }

    /// full / all tasks by phase: a finished full task is in sync; mydumper / loader changes
    /// restart while a source dumps or loads (saying which phase starts again or continues),
    /// and change nothing once every source is past the load; `phase` shows unit and progress.
    #[test]
    fn full_and_all_tasks_by_phase() {
        use ChangeClass as C;
        let all = FULL.replace("task-mode: full", "task-mode: all");
        let pool = |text: &str| {
            text.replace(
                "  - source-id: mariadb-02\n",
                "  - source-id: mariadb-02\n    loader: {pool-size: 4}\n",
            )
        };
        let threads = |text: &str| {
            text.replace(
                "  - source-id: mariadb-01\n",
                "  - source-id: mariadb-01\n    mydumper: {threads: 8}\n",
            )
        };
        let routes = |text: &str| text.replace("do-dbs: [shop]", "do-dbs: [shop, shop2]");
        const FINISHED: &[Phased] = &[
            ("mariadb-01", "Finished", "Load", Some("100.00 %")),
            ("mariadb-02", "Finished", "Load", Some("100.00 %")),
        ];
        const LOADING: &[Phased] = &[
            ("mariadb-01", "Running", "Load", Some("42.10 %")),
            ("mariadb-02", "Running", "Dump", Some("10.00 %")),
        ];
        const SYNCING: &[Phased] = &[
            ("mariadb-01", "Running", "Sync", Some("synced")),
            ("mariadb-02", "Running", "Sync", None),
        ];
        const HALF: &[Phased] = &[
            ("mariadb-01", "Running", "Sync", None),
            ("mariadb-02", "Paused", "Load", Some("5.00 %")),
        ];
        struct Case {
            what: &'static str,
            desired: String,
            live: (String, &'static [Phased]),
            class: ChangeClass,
            steps: &'static [&'static str],
            summary: &'static str,
            warn: &'static [&'static str],
            ignored: &'static [&'static str],
            phase: &'static [&'static str],
        }
        let cases = vec![
            Case {
                what: "finished full task: in sync",
                desired: FULL.into(),
                live: (FULL.into(), FINISHED),
                class: C::None,
                steps: &[],
                summary: "no changes",
                warn: &[],
                ignored: &[],
                phase: &[
                    "mariadb-01: Load Finished 100.00 %",
                    "mariadb-02: Load Finished 100.00 %",
                ],
            },
            Case {
                what: "finished full task, loader change: nothing to do",
                desired: pool(FULL),
                live: (FULL.into(), FINISHED),
                class: C::None,
                steps: &[],
                summary: "no steps needed: mysql-instances[mariadb-02].loader.pool-size changes nothing once the dump and load are over",
                warn: &[],
                ignored: &[
                    "mysql-instances[mariadb-02].loader.pool-size: the dump and load are over",
                ],
                phase: &[],
            },
            Case {
                what: "loader change while one loads and one dumps",
                desired: pool(FULL),
                live: (FULL.into(), LOADING),
                class: C::Restart,
                steps: &["stop-task", "start-task"],
                summary: "restart: stop-task → start-task (mysql-instances[mariadb-02].loader.pool-size); mariadb-02 is dumping: the dump phase starts again with the new settings; mariadb-01 is loading: the load continues from the loader checkpoint",
                warn: &[
                    "mariadb-01 is loading: the load continues from the loader checkpoint with the new settings",
                ],
                ignored: &[],
                phase: &["mariadb-01: Load 42.10 %", "mariadb-02: Dump 10.00 %"],
            },
            Case {
                what: "mydumper change in all mode while one syncs and one is paused in the load",
                desired: threads(&all),
                live: (all.clone(), HALF),
                class: C::Restart,
                steps: &["stop-task", "start-task"],
                summary: "mariadb-02 is loading: the load continues from the loader checkpoint",
                warn: &["mariadb-01 is past the load: the new settings do not affect it"],
                ignored: &[],
                phase: &["mariadb-01: Sync", "mariadb-02: Load Paused 5.00 %"],
            },
            Case {
                what: "all mode in sync, loader change: nothing to do",
                desired: pool(&all),
                live: (all.clone(), SYNCING),
                class: C::None,
                steps: &[],
                summary: "no steps needed",
                warn: &[],
                ignored: &["loader.pool-size: the dump and load are over"],
                phase: &["mariadb-01: Sync synced", "mariadb-02: Sync"],
            },
            Case {
                what: "all mode in sync, loader and route change: online, loader kept out",
                desired: routes(&pool(&all)),
                live: (all.clone(), SYNCING),
                class: C::Online,
                steps: &["pause-task", "update-task", "resume-task"],
                summary: "online: pause-task → update-task → resume-task",
                warn: &["no back-fill"],
                ignored: &["loader.pool-size"],
                phase: &[],
            },
        ];
        for c in cases {
            let desired = state(std::slice::from_ref(&c.desired), Policy::default());
            let live = live_state(vec![phased_task(&c.live.0, c.live.1)]);
            let p = plan(&desired, &live);
            let t = &p.tasks[0];
            assert_eq!(t.class, c.class, "{}: {t:#?}", c.what);
            let steps: Vec<String> = t.steps.iter().map(step_label).collect();
            assert_eq!(steps, c.steps, "{}: {t:#?}", c.what);
            assert!(t.summary.contains(c.summary), "{}: {}", c.what, t.summary);
            for w in c.warn {
                assert!(
                    t.warnings.iter().any(|x| x.contains(w)),
                    "{}: no warning with {w:?} in {:?}",
                    c.what,
                    t.warnings
                );
            }
            for i in c.ignored {
                assert!(
                    t.ignored.iter().any(|x| x.contains(i)),
                    "{}: nothing ignored with {i:?} in {:?}",
                    c.what,
                    t.ignored
                );
            }
            if !c.phase.is_empty() {
                assert_eq!(t.phase, c.phase, "{}", c.what);
            }
            // the update-task carries the live loader settings (the master refuses others)
            for s in &t.steps {
                if let Step::UpdateTask { yaml, .. } = s {
                    let sent = cfg(yaml);
                    let pool_sizes: Vec<i64> = sent
                        .instances()
                        .filter_map(|i| i.loader.as_ref().map(|l| l.pool_size))
                        .collect();
                    assert!(
                        pool_sizes.iter().all(|p| *p == 16),
                        "{}: {pool_sizes:?}",
                        c.what
                    );
                    assert!(
                        crate::config::changes::non_updatable_changes(&cfg(&c.live.0), &sent)
                            .is_empty(),
                        "{}",
                        c.what
                    );
                }
            }
        }
    }

    #[test]
    fn fields_summary_and_ignored_say_why() {
        let live = live_state(vec![live_task("shop", BASE, RUNNING)]);
        let ba = with("do-dbs: [shop]", "do-dbs: [shop, shop2]");
        let t = &plan(&state(&[ba], Policy::default()), &live).tasks[0];
        assert_eq!(t.fields, ["block-allow-list.shop-only.do-dbs"]);
        assert_eq!(
            t.summary,
            "online: pause-task → update-task → resume-task (block-allow-list.shop-only.do-dbs)"
        );
        assert!(t.diff.contains("+    - shop2"), "{}", t.diff);
        assert_eq!(t.file, Some(PathBuf::from("tasks/shop.yaml")));

        let wc = with(
            SECOND,
            &format!("{SECOND}    syncer: {{worker-count: 8}}\n"),
        );
        let t = &plan(&state(&[wc], Policy::default()), &live).tasks[0];
        assert_eq!(
            t.fields,
            ["mysql-instances[mariadb-02].syncer.worker-count"]
        );

        let pw = with("password: secret", "password: n3w");
        let t = &plan(&state(&[pw], Policy::default()), &live).tasks[0];
        assert_eq!(t.fields, ["target-database.password"]);
        assert!(!t.diff.contains("n3w"));

        let dep = with(
            "task-mode: incremental\n",
            "task-mode: incremental\nansi-quotes: true\n",
        );
        let t = &plan(&state(&[dep], Policy::default()), &live).tasks[0];
        assert_eq!(t.summary, "no changes");
        assert_eq!(t.ignored, ["ansi-quotes: deprecated, DM ignores it"]);

        let live = live_state(vec![live_task("shop", BASE, PAUSED)]);
        let t = &plan(&state(&[BASE.to_string()], Policy::default()), &live).tasks[0];
        assert_eq!(t.fields, ["stage: Paused → Running"]);
    }

    #[test]
    fn encrypted_password_is_the_same_password() {
        let enc = crate::password::encrypt("secret").unwrap_or_default();
        let text = with("password: secret", &format!("password: '{enc}'"));
        let live = live_state(vec![live_task("shop", BASE, RUNNING)]);
        let t = &plan(&state(&[text], Policy::default()), &live).tasks[0];
        assert_eq!(t.class, ChangeClass::None);
        assert!(t.steps.is_empty());
        assert!(t.fields.is_empty());
    }

    #[test]
    fn steps_carry_sealed_yaml_that_loads_back() {
        let live = live_state(vec![]);
        let p = plan(&state(&[BASE.to_string()], Policy::default()), &live);
        let Step::StartTask { yaml, task, .. } = &p.tasks[0].steps[0] else {
            panic!("{:?}", p.tasks[0].steps);
        };
        assert_eq!(task, "shop");
        assert!(!yaml.contains("secret"));
        let back = cfg(yaml);
        assert_eq!(
            back.target_database.map(|d| d.plain_password()),
            Some("secret".into())
        );
    }

    #[test]
    fn update_keeps_the_live_instance_order() {
        let swapped = with(
            "  - source-id: mariadb-01\n    block-allow-list: shop-only\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n",
            "",
        )
        .replace(SECOND, "")
            + "  - source-id: mariadb-02\n    block-allow-list: shop-only\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n"
            + "  - source-id: mariadb-01\n    block-allow-list: shop-only\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n";
        let swapped = swapped.replace("do-dbs: [shop]", "do-dbs: [shop, x]");
        let live = live_state(vec![live_task("shop", BASE, RUNNING)]);
        let t = &plan(&state(&[swapped], Policy::default()), &live).tasks[0];
        assert_eq!(t.class, ChangeClass::Online);
        let Some(Step::UpdateTask { yaml, .. }) = t.steps.get(1) else {
            panic!("{:?}", t.steps);
        };
        let order: Vec<String> = cfg(yaml).instances().map(|i| i.source_id.clone()).collect();
        assert_eq!(order, ["mariadb-01", "mariadb-02"]);
        assert!(t.ignored.iter().any(|i| i.contains("order")));
    }

    #[test]
    fn sources_from_the_directory_are_created_first() {
        let text = with("mariadb-02", "mariadb-07");
        let mut desired = state(&[text], Policy::default());
        let src = crate::config::parse_source(
            b"source-id: mariadb-07\nfrom: {host: 127.0.0.1, port: 3306, user: root, password: pw}\n",
        )
        .map(|l| l.config);
        let Ok(src) = src else { panic!("{src:?}") };
        desired.sources.insert(
            "mariadb-07".into(),
            DesiredSource {
                id: "mariadb-07".into(),
                file: PathBuf::from("tasks/s7.yaml"),
                config: src,
            },
        );
        let p = plan(&desired, &live_state(vec![]));
        assert_eq!(p.sources.len(), 1);
        assert!(
            matches!(&p.sources[0], Step::CreateSource { source, yaml } if source == "mariadb-07" && !yaml.contains("pw\n"))
        );
        assert_eq!(p.tasks[0].steps.len(), 1);
        assert!(p.tasks[0].refused.is_none());
        assert!(p.has_changes());
    }

    #[test]
    fn broken_file_names_are_never_deleted() {
        let mut desired = state(&[], pol(true, true, true, &[]));
        desired.broken_names.insert("shop".into());
        desired.errors.push(FileError {
            file: PathBuf::from("tasks/shop.yaml"),
            message: "tasks/shop.yaml:2:12: [code=20020] bad".into(),
        });
        let live = live_state(vec![
            live_task("shop", BASE, RUNNING),
            live_task("other", &BASE.replace("name: shop", "name: other"), RUNNING),
        ]);
        let p = plan(&desired, &live);
        assert_eq!(p.errors, desired.errors);
        assert!(p.has_errors());
        let names: Vec<&str> = p.tasks.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(names, ["other", "shop"]);
        for t in &p.tasks {
            assert!(t.steps.is_empty(), "{t:?}");
            assert_eq!(t.class, ChangeClass::None);
        }
        assert!(p.tasks[1].summary.contains("does not load"));
        // With one good task in the directory, "other" is pruned but "shop" still is not.
        let mut desired = desired;
        let keep = state(
            &[BASE.replace("name: shop", "name: keep")],
            Policy::default(),
        );
        desired.tasks = keep.tasks;
        let p = plan(&desired, &live);
        let by: BTreeMap<&str, &TaskPlan> = p.tasks.iter().map(|t| (t.task.as_str(), t)).collect();
        assert_eq!(by["other"].class, ChangeClass::Delete);
        assert_eq!(by["shop"].class, ChangeClass::None);
        assert!(by["shop"].steps.is_empty());
        assert_eq!(by["keep"].class, ChangeClass::Create);
    }

    #[test]
    fn rename_warns_on_both_sides() {
        let desired = state(
            &[BASE.replace("name: shop", "name: shop2")],
            pol(true, true, false, &[]),
        );
        let live = live_state(vec![live_task("shop", BASE, RUNNING)]);
        let p = plan(&desired, &live);
        assert_eq!(p.tasks.len(), 2);
        let (old, new) = (&p.tasks[0], &p.tasks[1]);
        assert_eq!(
            (old.task.as_str(), old.class),
            ("shop", ChangeClass::Delete)
        );
        assert_eq!(
            (new.task.as_str(), new.class),
            ("shop2", ChangeClass::Create)
        );
        assert!(
            new.warnings.iter().any(|w| w.contains("renamed")),
            "{:?}",
            new.warnings
        );
        assert!(
            old.warnings.iter().any(|w| w.contains("rename")),
            "{:?}",
            old.warnings
        );
        // A different config under a new name is not a rename.
        let desired = state(
            &[BASE
                .replace("name: shop", "name: shop2")
                .replace("do-dbs: [shop]", "do-dbs: [x]")],
            pol(true, true, false, &[]),
        );
        let p = plan(&desired, &live);
        assert!(
            p.tasks
                .iter()
                .all(|t| t.warnings.iter().all(|w| !w.contains("rename")))
        );
    }

    #[test]
    fn unreadable_live_config_is_refused() {
        let desired = state(&[BASE.to_string()], Policy::default());
        let mut l = live_task("shop", BASE, RUNNING);
        l.config = None;
        l.config_error = Some("task shop does not load: boom".into());
        let p = plan(&desired, &live_state(vec![l]));
        let t = &p.tasks[0];
        assert!(t.steps.is_empty());
        assert!(
            t.refused.as_deref().is_some_and(|r| r.contains("boom")),
            "{t:?}"
        );
    }

    #[test]
    fn empty_directory_deletes_nothing() {
        let mut desired = state(&[], pol(true, true, false, &[]));
        desired.errors.push(FileError {
            file: PathBuf::from("tasks"),
            message: "tasks: no task or source files".into(),
        });
        let p = plan(
            &desired,
            &live_state(vec![live_task("shop", BASE, RUNNING)]),
        );
        assert!(p.tasks[0].steps.is_empty());
        assert!(!p.has_changes());
    }

    #[test]
    fn plans_are_deterministic_and_in_name_order() {
        let desired = state(
            &[
                BASE.replace("name: shop", "name: zeta"),
                BASE.replace("name: shop", "name: alpha"),
            ],
            Policy::default(),
        );
        let live = live_state(vec![live_task(
            "mid",
            &BASE.replace("name: shop", "name: mid"),
            RUNNING,
        )]);
        // Sealed passwords use a random IV: everything else is equal run to run.
        let unseal = |mut p: Plan| {
            for t in &mut p.tasks {
                for s in &mut t.steps {
                    if let Step::StartTask { yaml, .. } | Step::UpdateTask { yaml, .. } = s {
                        *yaml = cfg(yaml).to_yaml_masked();
                    }
                }
            }
            p
        };
        let a = unseal(plan(&desired, &live));
        let b = unseal(plan(&desired, &live));
        assert!(a == b, "two plans of the same state differ");
        let names: Vec<&str> = a.tasks.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert_eq!(a.version, PLAN_SCHEMA_VERSION);
    }

    fn doc_rows() -> Vec<(String, ChangeClass)> {
        let doc = include_str!("transitions.md");
        let start = doc.find("<!-- field-classes:begin -->").unwrap_or(0);
        let end = doc.find("<!-- field-classes:end -->").unwrap_or(0);
        assert!(start < end, "transitions.md lost its field-classes markers");
        let mut rows = Vec::new();
        for line in doc[start..end].lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[1].starts_with('`') {
                continue;
            }
            let field = cells[1].trim_matches('`').to_string();
            let class = match cells[2] {
                "none" => ChangeClass::None,
                "stage" => ChangeClass::Stage,
                "online" => ChangeClass::Online,
                "add-source" => ChangeClass::AddSource,
                "remove-source" => ChangeClass::RemoveSource,
                "restart" => ChangeClass::Restart,
                "reset" => ChangeClass::Reset,
                other => panic!("transitions.md: unknown class {other:?} for {field}"),
            };
            rows.push((field, class));
        }
        rows
    }

    #[test]
    fn transitions_doc_agrees_with_classify() {
        let rows = doc_rows();
        assert!(rows.len() > 30, "{rows:?}");
        for (field, class) in &rows {
            let concrete = field.replace("[]", "[mariadb-01]");
            assert_eq!(
                classify(&concrete),
                *class,
                "transitions.md says {field} is {}",
                class_name(*class)
            );
        }
        let listed: BTreeSet<&str> = rows.iter().map(|(f, _)| f.as_str()).collect();
        for (p, _) in FIELD_CLASSES {
            assert!(
                listed.contains(p),
                "{p} is in FIELD_CLASSES but not in transitions.md"
            );
        }
        for p in diff::IGNORED_FIELDS {
            assert!(
                listed.contains(p),
                "{p} is ignored by diff but not in transitions.md"
            );
        }
    }

    fn source(extra: &str) -> crate::config::source::SourceConfig {
        let y = format!(
            "source-id: mariadb-01\nfrom: {{host: 127.0.0.1, port: 3306, user: root, password: pw}}\n{extra}"
        );
        match crate::config::parse_source(y.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    /// (what, desired extra lines, live extra lines, password matches, tasks use it,
    /// expected step label or error fragment)
    #[test]
    fn changed_source_files_are_planned_by_what_changed() {
        type Case<'a> = (&'a str, &'a str, &'a str, Option<bool>, bool, &'a str);
        let cases: &[Case] = &[
            ("same", "", "", Some(true), true, ""),
            (
                "relay on",
                "enable-relay: true\n",
                "",
                Some(true),
                true,
                "start-relay -s mariadb-01",
            ),
            (
                "relay off",
                "",
                "enable-relay: true\n",
                Some(true),
                true,
                "stop-relay -s mariadb-01",
            ),
            (
                "purge, unused",
                "purge: {interval: 60}\n",
                "",
                Some(true),
                false,
                "operate-source update mariadb-01",
            ),
            (
                "purge, used",
                "purge: {interval: 60}\n",
                "",
                Some(true),
                true,
                "error: purge.interval: 3600 → 60",
            ),
            (
                "password, unused",
                "",
                "",
                Some(false),
                false,
                "operate-source update mariadb-01",
            ),
            (
                "password, used",
                "",
                "",
                Some(false),
                true,
                "error: from.password: changed",
            ),
            (
                "relay and more",
                "enable-relay: true\nrelay-dir: /r\n",
                "",
                Some(true),
                false,
                "operate-source update mariadb-01",
            ),
        ];
        for &(what, d, l, pw, used, want) in cases {
            let mut desired = DesiredState::default();
            desired.sources.insert(
                "mariadb-01".into(),
                DesiredSource {
                    id: "mariadb-01".into(),
                    file: PathBuf::from("sources/mariadb-01.yaml"),
                    config: source(d),
                },
            );
            let tasks = if used {
                vec![live_task("shop", BASE, RUNNING)]
            } else {
                vec![]
            };
            let mut live_s = live_state(tasks);
            live_s.source_configs.insert(
                "mariadb-01".into(),
                crate::reconcile::model::LiveSource {
                    config: Some(source(l)),
                    error: None,
                    password_matches: pw,
                },
            );
            let (steps, errors) = plan_sources(&desired, &live_s);
            match want {
                "" => assert!(
                    steps.is_empty() && errors.is_empty(),
                    "{what}: {steps:?} {errors:?}"
                ),
                w if w.starts_with("error: ") => {
                    assert!(steps.is_empty(), "{what}");
                    assert_eq!(errors.len(), 1, "{what}");
                    let m = &errors[0].message;
                    assert!(
                        m.contains(&w["error: ".len()..])
                            && m.contains("refused while tasks use the source (shop)"),
                        "{what}: {m}"
                    );
                }
                w => {
                    assert!(errors.is_empty(), "{what}: {errors:?}");
                    assert_eq!(
                        steps.iter().map(step_label).collect::<Vec<_>>(),
                        vec![w],
                        "{what}"
                    );
                }
            }
        }
    }

    #[test]
    fn source_changes_name_each_key_and_never_a_password() {
        let mut desired = source("enable-relay: true\npurge: {expires: 3}\n");
        desired.from.port = 3307;
        desired.from.password = "other".into();
        let c = source_changes(&desired, &source(""), Some(false));
        assert!(c.contains(&"from.port: 3306 → 3307".to_string()), "{c:?}");
        assert!(
            c.contains(&"enable-relay: false → true".to_string()),
            "{c:?}"
        );
        assert!(c.contains(&"purge.expires: 0 → 3".to_string()), "{c:?}");
        assert!(
            c.iter().all(|x| !x.contains("other") && !x.contains("pw")),
            "{c:?}"
        );
        assert_eq!(c.last().map(String::as_str), Some("from.password: changed"));
    }
}
