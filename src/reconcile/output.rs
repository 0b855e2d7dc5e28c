//! Rendering of plans and apply reports: readable text (ANSI colour only when asked, i.e. when
//! stdout is a terminal) and versioned JSON.
//!
//! Called by dmctl `plan`/`apply` and by the reconcile loop's logs. Pure string building: it
//! never does I/O, and never prints a step's YAML (a plan carries sealed YAML only, and the
//! text output shows the masked diff instead), so no password can reach the terminal.

use serde::Serialize;

use super::apply::{ApplyReport, Outcome, TaskResult};
use super::model::{ChangeClass, CheckpointFate, PLAN_SCHEMA_VERSION, Plan, Step, TaskPlan};

/// `format_version` of the JSON documents.
pub const FORMAT_VERSION: &str = "1";

/// How text is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
    /// Show the unchanged tasks too.
    pub verbose: bool,
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The symbol of a change class and its ANSI colour.
pub fn symbol(class: ChangeClass) -> (&'static str, &'static str) {
    match class {
        ChangeClass::None => ("=", "2"),
        ChangeClass::Stage => (">", "36"),
        ChangeClass::Online | ChangeClass::AddSource | ChangeClass::RemoveSource => ("~", "33"),
        ChangeClass::Restart => ("-/+", "35"),
        ChangeClass::Reset => ("!", "1;31"),
        ChangeClass::Create => ("+", "32"),
        ChangeClass::Delete => ("-", "31"),
    }
}

fn class_word(class: ChangeClass) -> &'static str {
    match class {
        ChangeClass::None => "no change",
        ChangeClass::Stage => "stage",
        ChangeClass::Online => "update online",
        ChangeClass::AddSource => "add source",
        ChangeClass::RemoveSource => "remove source",
        ChangeClass::Restart => "restart",
        ChangeClass::Reset => "reset",
        ChangeClass::Create => "create",
        ChangeClass::Delete => "delete",
    }
}

fn fate_word(f: CheckpointFate) -> &'static str {
    match f {
        CheckpointFate::Kept => "kept",
        CheckpointFate::Lost => "LOST (the task starts again from its meta)",
        CheckpointFate::New => "new",
        CheckpointFate::Left => "left in the downstream meta tables",
    }
}

fn sources_flag(sources: &[String]) -> String {
    if sources.is_empty() {
        String::new()
    } else {
        format!(" -s {}", sources.join(","))
    }
}

/// A step as the dmctl command line it stands for (never its YAML).
pub fn describe(step: &Step) -> String {
    match step {
        Step::CreateSource { source, .. } => format!("operate-source create {source}"),
        Step::UpdateSource { source, .. } => format!("operate-source update {source}"),
        Step::StartRelay { source } => format!("start-relay -s {source}"),
        Step::StopRelay { source } => format!("stop-relay -s {source}"),
        Step::StartTask {
            task,
            sources,
            remove_meta,
            ..
        } => format!(
            "start-task{}{} {task}",
            if *remove_meta { " --remove-meta" } else { "" },
            sources_flag(sources)
        ),
        Step::StopTask { task, sources } => format!("stop-task{} {task}", sources_flag(sources)),
        Step::PauseTask { task, sources } => format!("pause-task{} {task}", sources_flag(sources)),
        Step::ResumeTask { task, sources } => {
            format!("resume-task{} {task}", sources_flag(sources))
        }
        Step::UpdateTask { task, .. } => format!("update-task {task}"),
    }
}

/// Counts of a plan, as in the final line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    pub sources: usize,
    pub create: usize,
    pub online: usize,
    pub stage: usize,
    pub restart: usize,
    pub reset: usize,
    pub delete: usize,
    pub refused: usize,
    pub unchanged: usize,
}

pub fn counts(plan: &Plan) -> PlanCounts {
    let mut c = PlanCounts {
        sources: plan.sources.len(),
        ..Default::default()
    };
    for t in &plan.tasks {
        if t.refused.is_some() {
            c.refused += 1;
            continue;
        }
        if t.steps.is_empty() {
            c.unchanged += 1;
            continue;
        }
        match t.class {
            ChangeClass::None => c.unchanged += 1,
            ChangeClass::Stage => c.stage += 1,
            ChangeClass::Online | ChangeClass::AddSource | ChangeClass::RemoveSource => {
                c.online += 1
            }
            ChangeClass::Restart => c.restart += 1,
            ChangeClass::Reset => c.reset += 1,
            ChangeClass::Create => c.create += 1,
            ChangeClass::Delete => c.delete += 1,
        }
    }
    c
}

/// Terraform-like last line of a plan.
pub fn summary_line(c: &PlanCounts) -> String {
    let mut s = String::from("Plan: ");
    if c.sources > 0 {
        s.push_str(&format!("{} source(s) to create, ", c.sources));
    }
    s.push_str(&format!(
        "{} to create, {} to update online, {} to restart, {} to reset, {} to delete",
        c.create, c.online, c.restart, c.reset, c.delete
    ));
    if c.stage > 0 {
        s.push_str(&format!(", {} to pause/resume", c.stage));
    }
    s.push_str(&format!(
        "; {} refused; {} unchanged.",
        c.refused, c.unchanged
    ));
    s
}

fn render_task(out: &mut String, t: &TaskPlan, style: Style) {
    let class = if t.refused.is_some() {
        ("x", "1;31")
    } else {
        symbol(t.class)
    };
    let head = format!(
        "{} task {} ({})",
        class.0,
        t.task,
        if t.refused.is_some() {
            "refused"
        } else {
            class_word(t.class)
        }
    );
    out.push_str(&paint(style, class.1, &head));
    if let Some(f) = &t.file {
        out.push_str(&format!("  {}", f.display()));
    }
    if !t.phase.is_empty() {
        out.push_str(&format!("  [{}]", t.phase.join(", ")));
    }
    out.push('\n');
    if !t.summary.is_empty() {
        out.push_str(&format!("    {}\n", t.summary));
    }
    if let Some(why) = &t.refused {
        out.push_str(&format!("    {} {why}\n", paint(style, "1;31", "refused:")));
    }
    if !t.fields.is_empty() {
        out.push_str(&format!("    changed: {}\n", t.fields.join(", ")));
    }
    if !t.steps.is_empty() {
        out.push_str("    steps:\n");
        for (i, s) in t.steps.iter().enumerate() {
            out.push_str(&format!("      {}. {}\n", i + 1, describe(s)));
        }
        out.push_str(&format!("    checkpoint: {}\n", fate_word(t.checkpoint)));
    }
    for w in &t.warnings {
        out.push_str(&format!("    {} {w}\n", paint(style, "33", "warning:")));
    }
    for i in &t.ignored {
        out.push_str(&format!("    ignored: {i}\n"));
    }
    if !t.diff.trim().is_empty() {
        for line in t.diff.lines() {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                ""
            };
            let l = if code.is_empty() {
                line.to_string()
            } else {
                paint(style, code, line)
            };
            out.push_str(&format!("      {l}\n"));
        }
    }
}

/// The plan as text.
pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for e in &plan.errors {
        out.push_str(&format!(
            "{} {}: {}\n",
            paint(style, "1;31", "error:"),
            e.file.display(),
            e.message
        ));
    }
    for s in &plan.sources {
        match s {
            Step::CreateSource { source, .. } => {
                out.push_str(&paint(style, "32", &format!("+ source {source} (create)")));
                out.push_str(&format!("\n    steps:\n      1. {}\n", describe(s)));
            }
            Step::UpdateSource {
                source, changes, ..
            } => {
                out.push_str(&paint(style, "33", &format!("~ source {source} (update)")));
                out.push('\n');
                for c in changes {
                    out.push_str(&format!("    {c}\n"));
                }
                out.push_str(&format!(
                    "    the source's worker restarts with it (no task uses it)\n    steps:\n      1. {}\n",
                    describe(s)
                ));
            }
            Step::StartRelay { source } | Step::StopRelay { source } => {
                let on = matches!(s, Step::StartRelay { .. });
                out.push_str(&paint(
                    style,
                    "33",
                    &format!(
                        "~ source {source} (relay {})",
                        if on { "on" } else { "off" }
                    ),
                ));
                out.push_str(&format!(
                    "\n    enable-relay: {} → {on}\n    the source's tasks keep running; they read {} from their next restart\n    steps:\n      1. {}\n",
                    !on,
                    if on { "the relay log" } else { "the upstream" },
                    describe(s)
                ));
            }
            _ => {}
        }
    }
    for t in &plan.tasks {
        let noop = t.refused.is_none() && t.steps.is_empty();
        if noop && !style.verbose {
            // Unchanged but dumping or loading: one line with where it is.
            if t.phase
                .iter()
                .any(|p| p.contains(" Dump") || p.contains(" Load"))
            {
                let head = format!(
                    "{} task {} (no change)  [{}]",
                    symbol(t.class).0,
                    t.task,
                    t.phase.join(", ")
                );
                out.push_str(&paint(style, symbol(t.class).1, &head));
                out.push('\n');
            }
            continue;
        }
        render_task(&mut out, t, style);
    }
    let c = counts(plan);
    if !plan.has_changes() && c.refused == 0 {
        out.push_str("No changes. The cluster matches the directory.\n");
    }
    out.push_str(&summary_line(&c));
    out.push('\n');
    out
}

#[derive(Serialize)]
struct PlanDoc<'a> {
    format_version: &'static str,
    plan: &'a Plan,
    summary: PlanCounts,
    has_changes: bool,
}

/// The plan as versioned JSON (`--output json`, `plan -out FILE`).
pub fn plan_json(plan: &Plan) -> String {
    let doc = PlanDoc {
        format_version: FORMAT_VERSION,
        plan,
        summary: counts(plan),
        has_changes: plan.has_changes(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Reads a saved plan: the versioned document of [`plan_json`], or a bare [`Plan`].
pub fn parse_saved_plan(text: &str) -> Result<Plan, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a saved plan (JSON): {e}"))?;
    let plan_value = match v.get("format_version") {
        Some(fv) => {
            if fv.as_str() != Some(FORMAT_VERSION) {
                return Err(format!(
                    "saved plan has format_version {fv}; this dmctl reads {FORMAT_VERSION:?}"
                ));
            }
            v.get("plan")
                .cloned()
                .ok_or_else(|| "saved plan has no \"plan\" field".to_string())?
        }
        None => v,
    };
    let plan: Plan =
        serde_json::from_value(plan_value).map_err(|e| format!("not a saved plan: {e}"))?;
    if plan.version != PLAN_SCHEMA_VERSION {
        return Err(format!(
            "saved plan has version {}; this dmctl reads version {PLAN_SCHEMA_VERSION}",
            plan.version
        ));
    }
    Ok(plan)
}

fn outcome_word(o: Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Ok => ("applied", "32"),
        Outcome::Unchanged => ("unchanged", "2"),
        Outcome::Failed => ("FAILED", "1;31"),
        Outcome::Refused => ("refused", "1;31"),
        Outcome::Skipped => ("skipped", "33"),
    }
}

fn render_result(out: &mut String, t: &TaskResult, style: Style) {
    let (word, code) = outcome_word(t.outcome);
    out.push_str(&paint(
        style,
        code,
        &format!("{} task {}: {word}", symbol(t.class).0, t.task),
    ));
    out.push('\n');
    for s in &t.steps {
        let mark = if s.ok {
            paint(style, "32", "ok  ")
        } else {
            paint(style, "1;31", "FAIL")
        };
        out.push_str(&format!("    {mark} {}", s.step));
        if let Some(m) = &s.message {
            out.push_str(&format!(": {m}"));
        }
        out.push('\n');
    }
    if let Some(m) = &t.message {
        out.push_str(&format!("    {m}\n"));
    }
}

/// One line of counts for an apply.
pub fn apply_summary_line(r: &ApplyReport) -> String {
    format!(
        "Apply: {} applied, {} failed, {} refused, {} skipped, {} unchanged{}.",
        r.count(Outcome::Ok),
        r.count(Outcome::Failed),
        r.count(Outcome::Refused),
        r.count(Outcome::Skipped),
        r.count(Outcome::Unchanged),
        if r.errors.is_empty() {
            String::new()
        } else {
            format!("; {} invalid file(s)", r.errors.len())
        }
    )
}

/// The apply report as text.
pub fn apply_text(r: &ApplyReport, style: Style) -> String {
    let mut out = String::new();
    if let Some(e) = &r.error {
        out.push_str(&format!(
            "{} {e}\nNothing was applied.\n",
            paint(style, "1;31", "error:")
        ));
        return out;
    }
    for e in &r.errors {
        out.push_str(&format!(
            "{} {}: {}\n",
            paint(style, "1;31", "error:"),
            e.file.display(),
            e.message
        ));
    }
    for s in &r.sources {
        let (word, code) = outcome_word(s.outcome);
        out.push_str(&paint(
            style,
            code,
            &format!("+ source {}: {word}", s.source),
        ));
        if let Some(m) = &s.message {
            out.push_str(&format!(": {m}"));
        }
        out.push('\n');
    }
    for t in &r.tasks {
        if t.outcome == Outcome::Unchanged && !style.verbose {
            continue;
        }
        render_result(&mut out, t, style);
    }
    out.push_str(&apply_summary_line(r));
    out.push('\n');
    out
}

#[derive(Serialize)]
struct ApplyDoc<'a> {
    format_version: &'static str,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a Plan>,
    report: &'a ApplyReport,
}

/// The apply report (and the plan it ran, when there is one) as versioned JSON.
pub fn apply_json(r: &ApplyReport, plan: Option<&Plan>) -> String {
    let doc = ApplyDoc {
        format_version: FORMAT_VERSION,
        success: r.success(),
        plan,
        report: r,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::apply::StepResult;
    use crate::reconcile::model::FileError;

    fn tp(name: &str, class: ChangeClass, steps: Vec<Step>, refused: Option<&str>) -> TaskPlan {
        TaskPlan {
            task: name.into(),
            class,
            steps,
            fields: vec!["block-allow-list.ba.do-dbs".into()],
            summary: format!("summary of {name}"),
            checkpoint: CheckpointFate::Kept,
            warnings: vec!["no back-fill".into()],
            refused: refused.map(str::to_string),
            ignored: vec![],
            diff: "--- live\n+++ desired\n-  do-dbs: [a]\n+  do-dbs: [a, b]\n".into(),
            live_digest: "d".into(),
            file: Some(format!("tasks/{name}.yaml").into()),
            phase: Vec::new(),
        }
    }

    const SECRET_YAML: &str = "target-database:\n  password: SECRET-CIPHER\n";

    fn sample() -> Plan {
        let start = |t: &str, rm: bool| Step::StartTask {
            task: t.into(),
            sources: vec![],
            remove_meta: rm,
            yaml: SECRET_YAML.into(),
        };
        let stop = |t: &str| Step::StopTask {
            task: t.into(),
            sources: vec![],
        };
        Plan {
            version: PLAN_SCHEMA_VERSION,
            dir: "tasks".into(),
            sources: vec![Step::CreateSource {
                source: "s1".into(),
                yaml: SECRET_YAML.into(),
            }],
            tasks: vec![
                tp(
                    "a-new",
                    ChangeClass::Create,
                    vec![start("a-new", false)],
                    None,
                ),
                tp(
                    "b-online",
                    ChangeClass::Online,
                    vec![
                        Step::PauseTask {
                            task: "b-online".into(),
                            sources: vec![],
                        },
                        Step::UpdateTask {
                            task: "b-online".into(),
                            yaml: SECRET_YAML.into(),
                        },
                        Step::ResumeTask {
                            task: "b-online".into(),
                            sources: vec![],
                        },
                    ],
                    None,
                ),
                tp(
                    "c-restart",
                    ChangeClass::Restart,
                    vec![stop("c-restart"), start("c-restart", false)],
                    None,
                ),
                tp(
                    "d-reset",
                    ChangeClass::Reset,
                    vec![],
                    Some("allow-reset is off"),
                ),
                tp("e-same", ChangeClass::None, vec![], None),
                tp(
                    "f-paused",
                    ChangeClass::Stage,
                    vec![Step::PauseTask {
                        task: "f-paused".into(),
                        sources: vec!["s1".into(), "s2".into()],
                    }],
                    None,
                ),
            ],
            errors: vec![FileError {
                file: "tasks/bad.yaml".into(),
                message: "tasks/bad.yaml:3:1: [code=20003] unknown key".into(),
            }],
        }
    }

    #[test]
    fn steps_read_as_dmctl_commands() {
        let cases = [
            (
                Step::StartTask {
                    task: "t".into(),
                    sources: vec!["s1".into(), "s2".into()],
                    remove_meta: true,
                    yaml: SECRET_YAML.into(),
                },
                "start-task --remove-meta -s s1,s2 t",
            ),
            (
                Step::StopTask {
                    task: "t".into(),
                    sources: vec![],
                },
                "stop-task t",
            ),
            (
                Step::ResumeTask {
                    task: "t".into(),
                    sources: vec!["s9".into()],
                },
                "resume-task -s s9 t",
            ),
            (
                Step::UpdateTask {
                    task: "t".into(),
                    yaml: SECRET_YAML.into(),
                },
                "update-task t",
            ),
            (
                Step::CreateSource {
                    source: "s1".into(),
                    yaml: SECRET_YAML.into(),
                },
                "operate-source create s1",
            ),
        ];
        for (step, want) in cases {
            assert_eq!(describe(&step), want);
        }
    }

    #[test]
    fn plan_text_shows_each_task_unit_and_progress() {
        let mut restart = tp(
            "orders",
            ChangeClass::Restart,
            vec![Step::StopTask {
                task: "orders".into(),
                sources: vec![],
            }],
            None,
        );
        restart.phase = vec!["s1: Load 42.10 %".into(), "s2: Sync".into()];
        let mut loading = tp("bulk", ChangeClass::None, vec![], None);
        loading.phase = vec!["s1: Dump 10.00 %".into()];
        let mut syncing = tp("quiet", ChangeClass::None, vec![], None);
        syncing.phase = vec!["s1: Sync synced".into()];
        let plan = Plan {
            version: PLAN_SCHEMA_VERSION,
            dir: "tasks".into(),
            sources: vec![],
            tasks: vec![loading, restart, syncing],
            errors: vec![],
        };
        let text = plan_text(&plan, Style::default());
        assert!(
            text.contains(
                "-/+ task orders (restart)  tasks/orders.yaml  [s1: Load 42.10 %, s2: Sync]\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("= task bulk (no change)  [s1: Dump 10.00 %]\n"),
            "{text}"
        );
        assert!(!text.contains("quiet"), "{text}");
        let verbose = plan_text(
            &plan,
            Style {
                color: false,
                verbose: true,
            },
        );
        assert!(verbose.contains("[s1: Sync synced]"), "{verbose}");
    }

    #[test]
    fn plan_text_lists_changes_and_counts_like_terraform() {
        let text = plan_text(&sample(), Style::default());
        for want in [
            "error: tasks/bad.yaml: tasks/bad.yaml:3:1: [code=20003] unknown key",
            "+ source s1 (create)",
            "+ task a-new (create)  tasks/a-new.yaml",
            "~ task b-online (update online)",
            "      1. pause-task b-online\n      2. update-task b-online\n      3. resume-task b-online\n",
            "-/+ task c-restart (restart)",
            "x task d-reset (refused)",
            "    refused: allow-reset is off",
            "> task f-paused (stage)",
            "pause-task -s s1,s2 f-paused",
            "    checkpoint: kept",
            "    warning: no back-fill",
            "      +  do-dbs: [a, b]",
            "Plan: 1 source(s) to create, 1 to create, 1 to update online, 1 to restart, 0 to reset, 0 to delete, 1 to pause/resume; 1 refused; 1 unchanged.",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("e-same"), "no-ops hidden:\n{text}");
        assert!(!text.contains("SECRET"), "no YAML in text:\n{text}");
        assert!(!text.contains('\x1b'), "no colour unless asked");
        let verbose = plan_text(
            &sample(),
            Style {
                color: true,
                verbose: true,
            },
        );
        assert!(verbose.contains("= task e-same (no change)"), "{verbose}");
        assert!(
            verbose.contains("\x1b[32m+ task a-new (create)\x1b[0m"),
            "{verbose}"
        );
    }

    #[test]
    fn an_empty_plan_says_no_changes() {
        let plan = Plan {
            version: PLAN_SCHEMA_VERSION,
            dir: "d".into(),
            sources: vec![],
            tasks: vec![tp("same", ChangeClass::None, vec![], None)],
            errors: vec![],
        };
        let text = plan_text(&plan, Style::default());
        assert_eq!(
            text,
            "No changes. The cluster matches the directory.\nPlan: 0 to create, 0 to update online, 0 to restart, 0 to reset, 0 to delete; 0 refused; 1 unchanged.\n"
        );
    }

    #[test]
    fn plan_json_is_versioned_and_reads_back() {
        let plan = sample();
        let text = plan_json(&plan);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format_version"], "1");
        assert_eq!(v["has_changes"], true);
        assert_eq!(v["summary"]["refused"], 1);
        assert_eq!(v["plan"]["tasks"][1]["steps"][1]["op"], "update-task");
        assert_eq!(parse_saved_plan(&text), Ok(plan.clone()));
        let bare = serde_json::to_string(&plan).unwrap();
        assert_eq!(parse_saved_plan(&bare), Ok(plan));
        let cases = [
            ("not json", "not a saved plan (JSON)"),
            (
                "{\"format_version\": \"2\", \"plan\": {}}",
                "format_version",
            ),
            ("{\"format_version\": \"1\"}", "no \"plan\""),
            ("{\"version\": 1}", "not a saved plan"),
        ];
        for (input, want) in cases {
            let e = parse_saved_plan(input).unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn apply_text_reports_each_task() {
        let r = ApplyReport {
            error: None,
            sources: vec![],
            tasks: vec![
                TaskResult {
                    task: "b".into(),
                    class: ChangeClass::Online,
                    outcome: Outcome::Failed,
                    message: Some("update-task failed: no; resumed on the previous config".into()),
                    steps: vec![
                        StepResult {
                            step: "pause-task b".into(),
                            ok: true,
                            message: None,
                        },
                        StepResult {
                            step: "update-task b".into(),
                            ok: false,
                            message: Some("no".into()),
                        },
                    ],
                },
                TaskResult {
                    task: "a".into(),
                    class: ChangeClass::Create,
                    outcome: Outcome::Ok,
                    message: None,
                    steps: vec![],
                },
            ],
            errors: vec![],
        };
        let text = apply_text(&r, Style::default());
        for want in [
            "~ task b: FAILED\n    ok   pause-task b\n    FAIL update-task b: no\n    update-task failed: no; resumed on the previous config\n",
            "+ task a: applied\n",
            "Apply: 1 applied, 1 failed, 0 refused, 0 skipped, 0 unchanged.",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let down = ApplyReport {
            error: Some("can not connect to master x: refused".into()),
            ..Default::default()
        };
        assert_eq!(
            apply_text(&down, Style::default()),
            "error: can not connect to master x: refused\nNothing was applied.\n"
        );
        let v: serde_json::Value = serde_json::from_str(&apply_json(&r, None)).unwrap();
        assert_eq!(v["format_version"], "1");
        assert_eq!(v["success"], false);
        assert_eq!(v["report"]["tasks"][0]["outcome"], "failed");
    }
}
