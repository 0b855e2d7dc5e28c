//! The live cluster as a directory of files, and back: `generate-task-config --from-master
//! [task...] -o DIR` and DM v5.4's `config export -d DIR` write the master's sources and tasks
//! (`DIR/sources/<id>.yaml`, `DIR/tasks/<name>.yaml`, DM's layout, which `plan` / `apply` /
//! `reconcile DIR` read; `reconcile.yaml` names the paused tasks); `config import -d DIR`
//! creates the sources and starts the tasks of such a directory.
//!
//! Passwords are never written: each becomes a `${ENV}` reference ([`env_name`]:
//! `DM_SOURCE_<ID>_PASSWORD`, `DM_TASK_<NAME>_PASSWORD`) and the command prints the variables
//! to set. With them set to the real passwords, `dmctl plan DIR` right after the export shows
//! no changes. [`build`] is pure and table-tested; the rest reads the master (the reconciler's
//! [`crate::reconcile::live`]) or calls it (import: operate-source create, start-task, as DM
//! does, with the sealed configs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::generate::GenerateArgs;
use super::master::{FAIL, OK, Target, USAGE};
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
use crate::pb;
use crate::reconcile::live::{self, MasterConn};
use crate::reconcile::model::{DesiredStage, FileError};

/// DM's default directory of `config export` / `config import`.
pub const DEFAULT_DIR: &str = "configs";
/// DM's sub-directory of source files.
pub const SOURCES_DIR: &str = "sources";
/// DM's sub-directory of task files.
pub const TASKS_DIR: &str = "tasks";

/// `-d/--dir` (DM also takes `-p/--path`).
#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The configs directory.
    #[arg(short = 'd', long = "dir", visible_short_alias = 'p', visible_alias = "path", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// A variable the user sets before using the exported files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    /// What it stands for: `task t1: target-database.password (root@127.0.0.1:4000)`.
    pub what: String,
}

/// What an export writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// (path relative to the directory, content), sources first, then tasks, then the policy.
    pub files: Vec<(PathBuf, String)>,
    pub vars: Vec<EnvVar>,
}

/// A task to export: its stored config (passwords masked) and whether it is paused.
#[derive(Debug, Clone)]
pub struct LiveTaskConfig {
    pub config: TaskConfig,
    pub paused: bool,
}

/// `DM_<KIND>_<NAME>_PASSWORD` with the name upper-cased and every character outside
/// `A-Z 0-9 _` made `_`; a name already `taken` gets `_2`, `_3`, … before `_PASSWORD`.
pub fn env_name(kind: &str, name: &str, taken: &BTreeSet<String>) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .collect();
    let base = format!("DM_{kind}_{clean}");
    let mut n = 1;
    loop {
        let cand = if n == 1 {
            format!("{base}_PASSWORD")
        } else {
            format!("{base}_{n}_PASSWORD")
        };
        if !taken.contains(&cand) {
            return cand;
        }
        n += 1;
    }
}

/// A file name for a task or source name: `/`, `\` and a leading `.` become `_`.
pub fn file_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, '_');
    }
    format!("{s}.yaml")
}

fn masked_key(sec: &Option<crate::config::Security>) -> bool {
    sec.as_ref()
        .is_some_and(|s| s.ssl_key_bytes == crate::password::MASK)
}

const HEADER: &str = "# Exported by dmctl from the master; the password is an ${ENV} reference (see the variables dmctl printed).\n";

/// The files of an export: each source and task with its password as a `${ENV}` reference,
/// and `reconcile.yaml` naming the paused tasks (unless `has_policy`: the directory has one
/// already). Errors name what cannot be exported (a private key the master masks).
pub fn build(
    sources: &BTreeMap<String, SourceConfig>,
    tasks: &BTreeMap<String, LiveTaskConfig>,
    has_policy: bool,
) -> Result<Exported, Vec<String>> {
    let mut out = Exported::default();
    let mut taken = BTreeSet::new();
    let mut errors = Vec::new();
    for (id, cfg) in sources {
        if masked_key(&cfg.from.security) {
            errors.push(format!(
                "source {id}: from.security.ssl-key-bytes is masked by the master and cannot be exported; write that source file by hand (or use ssl-key with a file)"
            ));
            continue;
        }
        let var = env_name("SOURCE", id, &taken);
        taken.insert(var.clone());
        let mut c = cfg.clone();
        c.from.password = format!("${{{var}}}");
        match serde_norway::to_string(&c) {
            Ok(y) => out.files.push((
                Path::new(SOURCES_DIR).join(file_name(id)),
                format!("{HEADER}{y}"),
            )),
            Err(e) => errors.push(format!("source {id}: {e}")),
        }
        out.vars.push(EnvVar {
            name: var,
            what: format!(
                "source {id}: from.password ({}@{}:{})",
                cfg.from.user, cfg.from.host, cfg.from.port
            ),
        });
    }
    let mut paused = Vec::new();
    for (name, t) in tasks {
        let mut c = t.config.clone();
        let Some(db) = c.target_database.as_mut() else {
            errors.push(format!("task {name}: it has no target-database"));
            continue;
        };
        if masked_key(&db.security) {
            errors.push(format!(
                "task {name}: target-database.security.ssl-key-bytes is masked by the master and cannot be exported; write that task file by hand (or use ssl-key with a file)"
            ));
            continue;
        }
        let var = env_name("TASK", name, &taken);
        taken.insert(var.clone());
        out.vars.push(EnvVar {
            name: var.clone(),
            what: format!(
                "task {name}: target-database.password ({}@{}:{})",
                db.user, db.host, db.port
            ),
        });
        db.password = format!("${{{var}}}");
        match serde_norway::to_string(&c) {
            Ok(y) => out.files.push((
                Path::new(TASKS_DIR).join(file_name(name)),
                format!("{HEADER}{y}"),
            )),
            Err(e) => errors.push(format!("task {name}: {e}")),
        }
        if t.paused {
            paused.push(name.clone());
        }
    }
    if !paused.is_empty() && !has_policy {
        let mut p = String::from(
            "# Written by dmctl's export: these tasks were paused on the master.\ntasks:\n",
        );
        for n in &paused {
            p.push_str(&format!("  - name: {n:?}\n    stage: paused\n"));
        }
        out.files.push((PathBuf::from("reconcile.yaml"), p));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("can not start the async runtime: {e}");
            FAIL
        })
}

fn addr_of(t: &Target) -> Result<String, u8> {
    t.addr.clone().ok_or_else(|| {
        eprintln!("this command needs the master's address: use --master-addr host:port");
        FAIL
    })
}

/// Reads the master's tasks (`only`, or all) and the sources they use (all sources when
/// `only` is empty).
async fn read_master(
    conn: &MasterConn,
    only: &[String],
) -> Result<
    (
        BTreeMap<String, SourceConfig>,
        BTreeMap<String, LiveTaskConfig>,
    ),
    String,
> {
    let fetched = live::fetch_with(conn, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    for s in &fetched.unreachable_sources {
        eprintln!(
            "warning: the worker of source {s} did not answer query-status: its tasks are not exported"
        );
    }
    let mut tasks = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, t) in &fetched.state.tasks {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        match &t.config {
            Some(c) => {
                let paused =
                    !t.subtasks.is_empty() && t.subtasks.iter().all(|s| s.stage == "Paused");
                tasks.insert(
                    name.clone(),
                    LiveTaskConfig {
                        config: c.clone(),
                        paused,
                    },
                );
            }
            None => errors.push(format!(
                "task {name}: {}",
                t.config_error.as_deref().unwrap_or("no config")
            )),
        }
    }
    for n in only {
        if !fetched.state.tasks.contains_key(n) {
            errors.push(format!("task {n} not found on the master"));
        }
    }
    let wanted: BTreeSet<String> = if only.is_empty() {
        fetched.state.sources.clone()
    } else {
        tasks
            .values()
            .flat_map(|t| t.config.instances().map(|i| i.source_id.clone()))
            .collect()
    };
    let mut sources = BTreeMap::new();
    for id in wanted {
        let req = pb::GetCfgRequest {
            r#type: pb::CfgType::SourceType as i32,
            name: id.clone(),
            dmrs_compare_password: None,
        };
        let r = conn
            .call("get-config", |mut c| async move { c.get_cfg(req).await })
            .await
            .map_err(|e| e.to_string())?;
        if !r.result {
            errors.push(format!("source {id}: {}", r.msg));
            continue;
        }
        match crate::config::parse_source(r.cfg.as_bytes()) {
            Ok(l) => {
                sources.insert(id, l.config);
            }
            Err(e) => errors.push(format!("source {id}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok((sources, tasks))
    } else {
        Err(errors.join("\n"))
    }
}

/// Writes the files under `dir` (directories 0700, files 0600), prints each.
fn write_files(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), String> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(parent)
                .map_err(|e| format!("can not create directory {}: {e}", parent.display()))?;
        }
        super::master::write_private(&path, text.as_bytes())
            .map_err(|e| format!("can not write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Exports to `dir`; Ok(the variables to set).
fn export(dir: &Path, only: &[String], t: &Target) -> Result<Vec<EnvVar>, String> {
    let addr = addr_of(t).map_err(|_| String::new())?;
    let rt = runtime().map_err(|_| String::new())?;
    let (sources, tasks) = rt.block_on(async {
        let conn = MasterConn::connect(&addr, t.timeout)
            .await
            .map_err(|e| e.to_string())?;
        read_master(&conn, only).await
    })?;
    let has_policy = crate::reconcile::desired::POLICY_FILES
        .iter()
        .any(|f| dir.join(f).exists());
    let ex = build(&sources, &tasks, has_policy).map_err(|e| e.join("\n"))?;
    let paused: Vec<&String> = tasks
        .iter()
        .filter(|(_, t)| t.paused)
        .map(|(n, _)| n)
        .collect();
    if has_policy && !paused.is_empty() {
        eprintln!(
            "warning: {} has a reconcile.yaml already (left as it is): these tasks are paused on the master, give them `stage: paused` there: {}",
            dir.display(),
            paused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    write_files(dir, &ex.files)?;
    Ok(ex.vars)
}

fn print_vars(dir: &Path, vars: &[EnvVar]) {
    if vars.is_empty() {
        return;
    }
    println!(
        "\nNo password is written: set these environment variables to the passwords before `dmctl plan {d}` or `dmctl config import -d {d}`:",
        d = dir.display()
    );
    let w = vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in vars {
        println!("  {:w$}  {}", v.name, v.what);
    }
}

/// `generate-task-config --from-master [task...] -o DIR`.
pub fn from_master(a: &GenerateArgs, t: &Target) -> u8 {
    let Some(dir) = &a.out else {
        eprintln!("generate-task-config --from-master writes a directory: give it with -o DIR");
        return USAGE;
    };
    match export(dir, &a.tasks, t) {
        Ok(vars) => {
            print_vars(dir, &vars);
            OK
        }
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            FAIL
        }
    }
}

/// `config export [-d DIR]`.
pub fn run_export(d: &DirArg, t: &Target) -> u8 {
    match export(&d.dir, &[], t) {
        Ok(vars) => {
            println!("export configs to directory `{}` succeed", d.dir.display());
            print_vars(&d.dir, &vars);
            OK
        }
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            FAIL
        }
    }
}

/// DM's test for a create that found the source or task there already.
fn already_exists(msg: &str) -> bool {
    msg.contains("already exist")
}

/// `config import -d DIR`: every file is loaded first (`${ENV}` resolved here; nothing is sent
/// when one fails), then each source is created and each task started (paused when
/// reconcile.yaml says so), skipping those the master has already, as DM does.
pub fn run_import(dir: &Path, t: &Target) -> u8 {
    if !dir.is_dir() {
        eprintln!("config directory `{}` not exists", dir.display());
        return FAIL;
    }
    let desired = crate::reconcile::desired::load_dir(dir);
    if !desired.errors.is_empty() {
        for FileError { message, .. } in &desired.errors {
            eprintln!("{message}");
        }
        eprintln!("nothing imported: fix the files above first");
        return FAIL;
    }
    if !desired.sources.is_empty() {
        println!("start creating sources");
    }
    for (id, s) in &desired.sources {
        let req = pb::OperateSourceRequest {
            op: pb::SourceOp::StartSource as i32,
            config: vec![s.config.to_yaml_sealed()],
            source_id: vec![],
            worker_name: String::new(),
        };
        match t.call(|mut c| async move { c.operate_source(req).await }) {
            Ok(r) if r.result || already_exists(&r.msg) => {
                if !r.result {
                    println!("source {id} exists already");
                }
            }
            Ok(r) => {
                println!("{}", super::jsonpb::print_response(&r));
                eprintln!("fail to create sources");
                return FAIL;
            }
            Err(code) => return code,
        }
    }
    if !desired.tasks.is_empty() {
        println!("start creating tasks");
    }
    for (name, task) in &desired.tasks {
        let paused = desired.policy.stage_for(name) == DesiredStage::Paused;
        let req = pb::StartTaskRequest {
            task: task.config.to_yaml_sealed(),
            sources: vec![],
            remove_meta: false,
            start_time: String::new(),
            dmrs_start_paused: paused,
        };
        match t.call(|mut c| async move { c.start_task(req).await }) {
            Ok(r) if r.result || already_exists(&r.msg) => {
                if !r.result {
                    println!("task {name} exists already");
                }
            }
            Ok(r) => {
                super::master::print_with_check_msg(&r, &r.check_result, r.result, |x, m| {
                    x.check_result = m
                });
                eprintln!("fail to create tasks");
                return FAIL;
            }
            Err(code) => return code,
        }
    }
    println!("import configs from directory `{}` succeed", dir.display());
    OK
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str =
        "source-id: s1\nfrom: {host: 10.0.0.1, port: 3306, user: dm, password: '******'}\n";
    const TASK: &str = "name: orders\ntask-mode: all\ntarget-database: {host: 10.0.0.9, port: 4000, user: root, password: '******'}\nmysql-instances:\n  - source-id: s1\n";

    fn src(text: &str) -> SourceConfig {
        crate::config::parse_source(text.as_bytes()).unwrap().config
    }

    fn task(text: &str, paused: bool) -> LiveTaskConfig {
        LiveTaskConfig {
            config: crate::config::parse_task(text.as_bytes()).unwrap().config,
            paused,
        }
    }

    #[test]
    fn env_names_are_upper_case_identifiers_and_unique() {
        let mut taken = BTreeSet::new();
        let cases = [
            (
                "SOURCE",
                "mysql-replica-01",
                "DM_SOURCE_MYSQL_REPLICA_01_PASSWORD",
            ),
            ("TASK", "orders", "DM_TASK_ORDERS_PASSWORD"),
            ("TASK", "Orders", "DM_TASK_ORDERS_2_PASSWORD"),
            ("TASK", "orders", "DM_TASK_ORDERS_3_PASSWORD"),
            ("TASK", "shop.v2 é", "DM_TASK_SHOP_V2___PASSWORD"),
        ];
        for (kind, name, want) in cases {
            let got = env_name(kind, name, &taken);
            assert_eq!(got, want, "{name}");
            assert!(crate::password::env_reference(&format!("${{{got}}}")).is_some());
            taken.insert(got);
        }
    }

    #[test]
    fn file_names_stay_in_their_directory() {
        let cases = [
            ("orders", "orders.yaml"),
            ("a/b", "a_b.yaml"),
            ("..", "_...yaml"),
            (".hidden", "_.hidden.yaml"),
        ];
        for (n, want) in cases {
            assert_eq!(file_name(n), want, "{n}");
        }
    }

    #[test]
    fn an_export_holds_env_references_and_loads_back_equal() {
        let sources = BTreeMap::from([("s1".to_string(), src(SOURCE))]);
        let tasks = BTreeMap::from([
            ("orders".to_string(), task(TASK, false)),
            (
                "paused".to_string(),
                task(&TASK.replace("name: orders", "name: paused"), true),
            ),
        ]);
        let ex = build(&sources, &tasks, false).unwrap();
        let names: Vec<String> = ex
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "sources/s1.yaml",
                "tasks/orders.yaml",
                "tasks/paused.yaml",
                "reconcile.yaml"
            ]
        );
        assert_eq!(
            ex.vars,
            vec![
                EnvVar {
                    name: "DM_SOURCE_S1_PASSWORD".into(),
                    what: "source s1: from.password (dm@10.0.0.1:3306)".into()
                },
                EnvVar {
                    name: "DM_TASK_ORDERS_PASSWORD".into(),
                    what: "task orders: target-database.password (root@10.0.0.9:4000)".into()
                },
                EnvVar {
                    name: "DM_TASK_PAUSED_PASSWORD".into(),
                    what: "task paused: target-database.password (root@10.0.0.9:4000)".into()
                },
            ]
        );
        for (_, text) in &ex.files {
            assert!(!text.contains("******"), "{text}");
        }
        assert!(
            ex.files[0].1.contains("password: ${DM_SOURCE_S1_PASSWORD}"),
            "{}",
            ex.files[0].1
        );
        // With the variables set, each file loads to the config it came from (the password
        // aside, which the master compares).
        let loaded = crate::config::parse_task(
            ex.files[1]
                .1
                .replace("${DM_TASK_ORDERS_PASSWORD}", "'******'")
                .as_bytes(),
        )
        .unwrap()
        .config;
        assert_eq!(loaded, tasks["orders"].config);
        let policy =
            crate::reconcile::desired::parse_policy(Path::new("reconcile.yaml"), &ex.files[3].1)
                .unwrap();
        assert_eq!(policy.stage_for("paused"), DesiredStage::Paused);
        assert_eq!(policy.stage_for("orders"), DesiredStage::Running);
        // A directory with its own policy keeps it.
        let ex = build(&sources, &tasks, true).unwrap();
        assert_eq!(ex.files.len(), 3);
    }

    #[test]
    fn a_masked_private_key_cannot_be_exported() {
        let text = "source-id: s1\nfrom: {host: h, port: 3306, user: u, password: '******', security: {ssl-ca-bytes: CA, ssl-key-bytes: '******', ssl-cert-bytes: CERT}}\n";
        let sources = BTreeMap::from([("s1".to_string(), src(text))]);
        let e = build(&sources, &BTreeMap::new(), false).unwrap_err();
        assert!(
            e[0].starts_with("source s1: from.security.ssl-key-bytes is masked"),
            "{e:?}"
        );
    }
}
