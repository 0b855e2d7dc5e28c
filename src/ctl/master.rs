//! dmctl's cluster commands: each validates its input locally, sends one DM `pb.Master` RPC
//! (or, for batch task operations, a few) and prints the answer as DM does.
//!
//! Called by [`super::dispatch`] for one command line (from the process arguments or from a line
//! of the interactive shell). Returns an exit code ([`OK`], [`FAIL`], [`USAGE`]); never exits the
//! process, never prints a password (the master masks them; this code prints what it gets), and
//! never contacts the master when a local file is invalid.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{self, ClientError};
use super::jsonpb::{self, J, ToJson};
use crate::config;
use crate::pb;

/// Exit code: the master answered with `result: true`.
pub const OK: u8 = 0;
/// Exit code: `result: false`, master unreachable, or a local file error.
pub const FAIL: u8 = 1;
/// Exit code: the command line itself is wrong.
pub const USAGE: u8 = 2;

/// Where and how long to talk to the master.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: Option<String>,
    pub timeout: Duration,
}

impl Target {
    /// Runs one RPC; an error is printed on stderr and becomes `Err(FAIL)`.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, u8>
    where
        F: FnOnce(pb::master_client::MasterClient<tonic::transport::Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let addr = self.require_addr()?;
        client::call(&addr, self.timeout, f).map_err(|e: ClientError| {
            print_client_error(&e);
            FAIL
        })
    }

    /// The master's address, or DM's `--master-addr not provided` on stderr and `Err(FAIL)`.
    pub fn require_addr(&self) -> Result<String, u8> {
        self.addr.clone().ok_or_else(|| {
            eprintln!("Error: {}", client::NO_MASTER_ADDR);
            FAIL
        })
    }
}

/// Prints a failed call as DM does (`Error: ` and the error; an unreachable master in DM's
/// `can't connect to` form).
pub fn print_client_error(e: &ClientError) {
    eprintln!("Error: {e}");
}

/// DM's header of a precheck failure message, printed unescaped inside the JSON as DM does.
const CHECK_MSG_HEADER: &str = crate::checker::CHECK_TASK_MSG_HEADER;

/// Prints a response and turns its `result` into the exit code.
fn print_result<T: ToJson>(resp: &T, result: bool) -> u8 {
    println!("{}", jsonpb::print_response(resp));
    if result { OK } else { FAIL }
}

/// Prints a response whose `msg` may hold a precheck report: like DM's
/// `PrettyPrintResponseWithCheckTask`, the report is inserted raw so it stays readable.
pub fn print_with_check_msg<T: ToJson + Clone>(
    resp: &T,
    msg: &str,
    result: bool,
    set_msg: impl Fn(&mut T, String),
) -> u8 {
    println!("{}", render_with_check_msg(resp, msg, set_msg));
    if result { OK } else { FAIL }
}

/// The text [`print_with_check_msg`] prints.
fn render_with_check_msg<T: ToJson + Clone>(
    resp: &T,
    msg: &str,
    set_msg: impl Fn(&mut T, String),
) -> String {
    if !msg.contains(CHECK_MSG_HEADER) {
        return jsonpb::print_response(resp);
    }
    const PLACEHOLDER: &str = "PLACEHOLDER";
    let mut copy = resp.clone();
    set_msg(&mut copy, PLACEHOLDER.to_string());
    jsonpb::print_response(&copy)
        .replacen(PLACEHOLDER, msg, 1)
        .replacen("detail: {", "   \tdetail: {", 1)
}

/// Reads a file as text for sending; an error is printed in DM's words
/// (`FILE: error in get file content: …`).
pub fn read_text(path: &Path) -> Result<String, u8> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("{}: error in get file content: {e}", path.display());
        FAIL
    })
}

/// Reads a task file (DM's `error in get file content` when it cannot be read), validates
/// it locally and returns its raw contents.
fn task_file_contents(path: &Path) -> Result<String, u8> {
    let text = read_text(path)?;
    if let Err(e) = config::load_task_file(path) {
        eprintln!("{e}");
        return Err(FAIL);
    }
    Ok(text)
}

/// DM's `GetTaskNameFromArgOrFile`: an argument ending in `.yaml`/`.yml` that names a readable
/// task file stands for the task's name; anything else is the name itself.
pub fn task_name_from_arg(arg: &str) -> String {
    if !(arg.ends_with(".yaml") || arg.ends_with(".yml")) {
        return arg.to_string();
    }
    let path = Path::new(arg);
    if let Ok(l) = config::load_task_file(path) {
        return l.config.name;
    }
    // an invalid task file may still carry its name
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_norway::from_slice::<serde_norway::Value>(&b).ok())
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| arg.to_string())
}

/// `-s/--source` as DM takes it: repeatable, comma-separated.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceFlag {
    /// MySQL/MariaDB source IDs (repeat or separate with commas).
    #[arg(
        short = 's',
        long = "source",
        value_delimiter = ',',
        value_name = "SOURCE"
    )]
    pub sources: Vec<String>,
}

/// `operate-source <operate-type> [config-file ...] [-w worker] [--print-sample-config]`.
#[derive(Debug, clap::Args)]
pub struct OperateSourceArgs {
    /// One of create, update, stop, show.
    #[arg(value_name = "operate-type")]
    pub op: Option<String>,
    /// Source configuration files (for stop, a source ID is accepted too).
    #[arg(value_name = "config-file")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub source: SourceFlag,
    /// create: bind the new source to this worker, which must exist and be free (DM v2+);
    /// refused otherwise, nothing created.
    #[arg(short = 'w', long = "worker", value_name = "worker")]
    pub worker: Option<String>,
    /// Print a sample source config file and exit.
    #[arg(short = 'p', long = "print-sample-config")]
    pub print_sample_config: bool,
}

/// `operate-source --print-sample-config`: a source file with the keys most set.
pub const SAMPLE_SOURCE_CONFIG: &str = include_str!("sample-source.yaml");

/// The `pb.SourceOp` of an operate-source type word.
pub fn source_op(word: &str) -> Option<pb::SourceOp> {
    match word {
        "create" => Some(pb::SourceOp::StartSource),
        "update" => Some(pb::SourceOp::UpdateSource),
        "stop" => Some(pb::SourceOp::StopSource),
        "show" => Some(pb::SourceOp::ShowSource),
        _ => None,
    }
}

/// Runs `operate-source`.
pub fn operate_source(a: &OperateSourceArgs, t: &Target) -> u8 {
    if a.print_sample_config {
        print!("{SAMPLE_SOURCE_CONFIG}");
        return OK;
    }
    let Some(word) = a.op.as_deref() else {
        println!("{}", super::configs::help_of(&["operate-source"]));
        return USAGE;
    };
    let Some(op) = source_op(word) else {
        println!("invalid operate '{word}' on worker");
        return USAGE;
    };
    let needs_input = matches!(op, pb::SourceOp::StartSource | pb::SourceOp::UpdateSource);
    if (needs_input && a.files.is_empty())
        || (op == pb::SourceOp::StopSource && a.files.is_empty() && a.source.sources.is_empty())
    {
        println!("operate-source create/update/stop should specify config-file(s)");
        return USAGE;
    }
    let worker = a.worker.clone().unwrap_or_default();
    if !worker.is_empty() {
        if op != pb::SourceOp::StartSource {
            println!("operate-source {word}: -w (the worker to bind) applies only to create");
            return USAGE;
        }
        if a.files.len() > 1 {
            println!("operate-source create can't create multiple sources when specify worker");
            return USAGE;
        }
    }
    let mut configs = Vec::new();
    let mut source_ids = a.source.sources.clone();
    for f in &a.files {
        let path = Path::new(f);
        if op == pb::SourceOp::StopSource && !path.is_file() {
            source_ids.push(f.clone());
            continue;
        }
        // DM's order: the file's content first (DM's `error in get file content`), then its
        // checks.
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "{}: [code=20018] error in get file content: {e}",
                    path.display()
                );
                return FAIL;
            }
        };
        if let Err(e) = config::load_source_file(path) {
            // DM's answer for a source file the master refuses: result false and why (here
            // with file:line:col and DM's code, found before anything is sent).
            let resp = pb::OperateSourceResponse {
                result: false,
                msg: e.to_string(),
                sources: Vec::new(),
            };
            println!("{}", super::jsonpb::print_response(&resp));
            return FAIL;
        }
        configs.push(text);
    }
    let req = pb::OperateSourceRequest {
        op: op as i32,
        config: configs,
        source_id: source_ids,
        worker_name: worker,
    };
    match t.call(|mut c| async move { c.operate_source(req).await }) {
        Ok(resp) => print_result(&resp, resp.result),
        Err(code) => code,
    }
}

/// `start-task [-s source ...] [--remove-meta] <config-file>`.
#[derive(Debug, clap::Args)]
pub struct StartTaskArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// Whether to remove the task's meta data (checkpoints, shard DDL state) first.
    #[arg(long = "remove-meta")]
    pub remove_meta: bool,
    /// dm-rs: create the subtasks Paused (no connection until `resume-task`).
    #[arg(long = "paused")]
    pub paused: bool,
    /// Start binlog replication at the first event group at or after this time:
    /// 'YYYY-MM-DD HH:MM:SS' (the upstream's time zone), `T` for the space, or with an offset
    /// ('…+08:00'); incremental tasks; the task's `meta` and checkpoint are not used.
    #[arg(long = "start-time", value_name = "time")]
    pub start_time: Option<String>,
    /// The task configuration file.
    #[arg(value_name = "config-file")]
    pub file: PathBuf,
}

/// Runs `start-task`.
pub fn start_task(a: &StartTaskArgs, t: &Target) -> u8 {
    if let Ok(text) = std::fs::read_to_string(&a.file)
        && super::check::sharding_conflict(&text)
    {
        println!("{}", super::check::SHARDING_CONFLICT);
        return FAIL;
    }
    let task = if a.start_time.is_some() {
        match config::load_task_file_for_start_time(&a.file) {
            Ok(_) => read_text(&a.file),
            Err(e) => {
                eprintln!("{e}");
                Err(FAIL)
            }
        }
    } else {
        task_file_contents(&a.file)
    };
    let task = match task {
        Ok(text) => text,
        Err(code) => return code,
    };
    let req = pb::StartTaskRequest {
        task,
        sources: a.source.sources.clone(),
        remove_meta: a.remove_meta,
        start_time: a.start_time.clone().unwrap_or_default(),
        dmrs_start_paused: a.paused,
    };
    match t.call(|mut c| async move { c.start_task(req).await }) {
        Ok(resp) => print_with_check_msg(&resp, &resp.check_result, resp.result, |r, m| {
            r.check_result = m
        }),
        Err(code) => code,
    }
}

/// `update-task [-s source ...] <config-file>`.
#[derive(Debug, clap::Args)]
pub struct UpdateTaskArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The task configuration file.
    #[arg(value_name = "config-file")]
    pub file: PathBuf,
}

/// Runs `update-task`.
pub fn update_task(a: &UpdateTaskArgs, t: &Target) -> u8 {
    let task = match task_file_contents(&a.file) {
        Ok(text) => text,
        Err(code) => return code,
    };
    let req = pb::UpdateTaskRequest {
        task,
        sources: a.source.sources.clone(),
    };
    match t.call(|mut c| async move { c.update_task(req).await }) {
        Ok(resp) => print_with_check_msg(&resp, &resp.msg, resp.result, |r, m| r.msg = m),
        Err(code) => code,
    }
}

/// `pause-task | resume-task | stop-task [-s source ...] [task-name | task-file]`.
#[derive(Debug, clap::Args)]
pub struct OperateTaskArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// With only `-s` and no task: how many subtasks of the source to operate at a time.
    #[arg(long = "batch-size", default_value_t = 5)]
    pub batch_size: usize,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name | task-file")]
    pub task: Option<String>,
}

/// Runs pause-task, resume-task or stop-task.
pub fn operate_task(op: pb::TaskOp, a: &OperateTaskArgs, t: &Target) -> u8 {
    let Some(task) = &a.task else {
        return operate_source_tasks(op, a, t);
    };
    let req = pb::OperateTaskRequest {
        op: op as i32,
        name: task_name_from_arg(task),
        sources: a.source.sources.clone(),
    };
    match t.call(|mut c| async move { c.operate_task(req).await }) {
        Ok(resp) => print_result(&resp, resp.result),
        Err(code) => code,
    }
}

/// The dmctl command of a task operation.
fn task_command(op: pb::TaskOp) -> &'static str {
    match op {
        pb::TaskOp::Pause => "pause-task",
        pb::TaskOp::Resume => "resume-task",
        _ => "stop-task",
    }
}

/// A `CommonWorkerResponse` as Go's `encoding/json` prints it (the generated `omitempty` tags).
fn worker_response_go(r: &pb::CommonWorkerResponse) -> J {
    let mut f = Vec::new();
    if r.result {
        f.push(("result", J::Bool(true)));
    }
    for (k, v) in [
        ("msg", &r.msg),
        ("source", &r.source),
        ("worker", &r.worker),
    ] {
        if !v.is_empty() {
            f.push((k, J::s(v)));
        }
    }
    J::Obj(f)
}

/// DM's batch form: every subtask bound to one source, printed as
/// `{"result","msg","tasks":[{"task","op","result","msg","sources"}]}`.
fn operate_source_tasks(op: pb::TaskOp, a: &OperateTaskArgs, t: &Target) -> u8 {
    let source = match a.source.sources.as_slice() {
        [one] => one.clone(),
        [] => {
            println!("must give one source-name when task-name/task-conf is not specified");
            return super::usage::usage_error(&[task_command(op)]);
        }
        _ => {
            println!("can give only one source-name when task-name/task-conf is not specified");
            return super::usage::usage_error(&[task_command(op)]);
        }
    };
    let req = pb::QueryStatusListRequest {
        name: String::new(),
        sources: vec![source.clone()],
    };
    let status = match t.call(|mut c| async move { c.query_status(req).await }) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let subtasks: Vec<String> = match status.sources.first() {
        Some(s) if status.result => s.sub_task_status.iter().map(|s| s.name.clone()).collect(),
        _ => {
            let out = J::Obj(vec![
                ("result", J::Bool(false)),
                ("msg", J::s(&status.msg)),
                ("tasks", J::Arr(vec![])),
            ]);
            println!("{}", jsonpb::go_json(&out));
            return FAIL;
        }
    };
    let mut results: Vec<(String, J)> = Vec::new();
    let mut all_ok = true;
    for name in subtasks {
        let req = pb::OperateTaskRequest {
            op: op as i32,
            name: name.clone(),
            sources: vec![source.clone()],
        };
        let addr = t.addr.clone().unwrap_or_default();
        let (result, msg, sources) = match client::call(&addr, t.timeout, |mut c| async move {
            c.operate_task(req).await
        }) {
            Ok(r) => (
                r.result,
                r.msg,
                J::Arr(r.sources.iter().map(worker_response_go).collect()),
            ),
            Err(e) => (false, e.to_string(), J::Null),
        };
        all_ok &= result;
        results.push((
            name.clone(),
            J::Obj(vec![
                ("task", J::s(&name)),
                ("op", J::s(op.as_str_name())),
                ("result", J::Bool(result)),
                ("msg", J::s(&msg)),
                ("sources", sources),
            ]),
        ));
    }
    results.sort_by(|x, y| x.0.cmp(&y.0));
    let out = J::Obj(vec![
        ("result", J::Bool(true)),
        ("msg", J::s("")),
        (
            "tasks",
            J::Arr(results.into_iter().map(|(_, j)| j).collect()),
        ),
    ]);
    println!("{}", jsonpb::go_json(&out));
    if all_ok { OK } else { FAIL }
}

/// `query-status [-s source ...] [task-name | task-file] [--more]`.
#[derive(Debug, clap::Args)]
pub struct QueryStatusArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// Print the full status even when the summary would do.
    #[arg(long)]
    pub more: bool,
    /// Follow one task: a progress bar per source (unit, stage, percent, speed) refreshed
    /// every `--interval` on a terminal, one plain line per source per change otherwise, until the
    /// task is Finished or Stopped (exit 0), paused by an error (exit 1), or Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// How often `--watch` reads the status, a Go duration (at least 10ms).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        requires = "watch"
    )]
    pub interval: String,
    /// A task name, or a task file to take the name from (empty: every task).
    #[arg(value_name = "task-name | task-file")]
    pub task: Option<String>,
}

/// Runs `query-status`.
pub fn query_status(a: &QueryStatusArgs, t: &Target) -> u8 {
    let name = a
        .task
        .as_deref()
        .map(task_name_from_arg)
        .unwrap_or_default();
    if a.watch {
        if name.is_empty() {
            eprintln!(
                "query-status --watch follows one task: give its name (query-status TASK --watch)"
            );
            return USAGE;
        }
        let interval = match super::reconcile::duration_flag("interval", &a.interval, false) {
            Ok(d) if d >= super::watch::MIN_INTERVAL => d,
            Ok(_) => {
                eprintln!("invalid --interval {:?}: at least 10ms", a.interval);
                return USAGE;
            }
            Err(e) => {
                eprintln!("{e}");
                return USAGE;
            }
        };
        return super::watch::run(&name, &a.source.sources, interval, t);
    }
    let req = pb::QueryStatusListRequest {
        name: name.clone(),
        sources: a.source.sources.clone(),
    };
    let resp = match t.call(|mut c| async move { c.query_status(req).await }) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if resp.result
        && name.is_empty()
        && a.source.sources.is_empty()
        && !a.more
        && let Some(summary) = summarize(&resp)
    {
        println!("{}", jsonpb::go_json(&summary));
        return OK;
    }
    print_result(&resp, resp.result)
}

/// DM's task status word for one task, from its subtasks (see `wrapTaskResult`).
#[derive(Debug, Default)]
struct TaskSummary {
    status: String,
    sources: Vec<String>,
}

fn has_errors(r: &Option<pb::ProcessResult>) -> bool {
    r.as_ref().is_some_and(|r| !r.errors.is_empty())
}

fn stage_name(v: i32) -> String {
    pb::Stage::try_from(v)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| v.to_string())
}

/// The summary `{"result","msg","tasks":[{"taskName","taskStatus","sources"}]}`, or `None` when
/// some source answered `result: false` (DM then prints the full response). Tasks are sorted
/// by name (DM's order is Go map order, i.e. random).
pub fn summarize(resp: &pb::QueryStatusListResponse) -> Option<J> {
    const ERR: &str = "Error";
    if !resp.result || resp.sources.iter().any(|s| !s.result) {
        return None;
    }
    let mut tasks: std::collections::BTreeMap<String, TaskSummary> = Default::default();
    for src in &resp.sources {
        let source_id = src
            .source_status
            .as_ref()
            .map(|s| s.source.clone())
            .unwrap_or_default();
        let relay = src
            .source_status
            .as_ref()
            .and_then(|s| s.relay_status.as_ref());
        for st in &src.sub_task_status {
            let entry = tasks.entry(st.name.clone()).or_default();
            entry.sources.push(source_id.clone());
            let paused = pb::Stage::Paused as i32;
            let stopped = pb::Stage::Stopped as i32;
            let running = pb::Stage::Running as i32;
            let sub_stage = stage_name(st.stage);
            if entry.status.starts_with(ERR) {
                continue;
            }
            if st.stage == paused && has_errors(&st.result) {
                entry.status = format!("{ERR} - Some error occurred in subtask");
            } else if st.unit == pb::UnitType::Sync as i32
                && st.stage == running
                && let Some(r) = relay
                && (r.stage == paused || r.stage == stopped)
            {
                let relay_stage = if has_errors(&r.result) {
                    ERR.to_string()
                } else {
                    stage_name(r.stage)
                };
                entry.status = format!("{ERR} - Relay status is {relay_stage}");
            } else if entry.status == "Paused" {
            } else if entry.status.is_empty() || st.stage == paused {
                entry.status = sub_stage;
            } else if entry.status != sub_stage {
                entry.status = "Running".to_string();
            }
        }
    }
    let list = tasks
        .into_iter()
        .map(|(name, mut s)| {
            if s.status.starts_with(ERR) {
                s.status = format!(
                    "{}. Please run `query-status {name}` to get more details.",
                    s.status
                );
            }
            // encoding/json with `omitempty` on every field
            let mut f = Vec::new();
            if !name.is_empty() {
                f.push(("taskName", J::s(&name)));
            }
            if !s.status.is_empty() {
                f.push(("taskStatus", J::s(&s.status)));
            }
            if !s.sources.is_empty() {
                f.push(("sources", J::strs(&s.sources)));
            }
            J::Obj(f)
        })
        .collect();
    Some(J::Obj(vec![
        ("result", J::Bool(resp.result)),
        ("msg", J::s(&resp.msg)),
        ("tasks", J::Arr(list)),
    ]))
}

/// Writes a file readable by its owner only (it may hold a masked or encrypted password).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// `list-member [--leader] [--master] [--worker] [--name master-name/worker-name ...]`.
#[derive(Debug, clap::Args)]
pub struct ListMemberArgs {
    /// Only list the leader.
    #[arg(short = 'l', long)]
    pub leader: bool,
    /// Only list masters.
    #[arg(short = 'm', long)]
    pub master: bool,
    /// Only list workers.
    #[arg(short = 'w', long)]
    pub worker: bool,
    /// Only these member names (repeat or separate with commas).
    #[arg(short = 'n', long = "name", value_delimiter = ',', value_name = "NAME")]
    pub names: Vec<String>,
}

/// Runs `list-member`.
pub fn list_member(a: &ListMemberArgs, t: &Target) -> u8 {
    let req = pb::ListMemberRequest {
        leader: a.leader,
        master: a.master,
        worker: a.worker,
        names: a.names.clone(),
    };
    match t.call(|mut c| async move { c.list_member(req).await }) {
        Ok(resp) => print_result(&resp, resp.result),
        Err(code) => code,
    }
}

/// `offline-member <--master/--worker | --type master|worker> <--name name>`.
#[derive(Debug, clap::Args)]
pub struct OfflineMemberArgs {
    /// The member's type: master or worker.
    #[arg(long = "type", value_parser = ["master", "worker"])]
    pub kind: Option<String>,
    /// Offline a master (same as --type master).
    #[arg(short = 'm', long)]
    pub master: bool,
    /// Offline a worker (same as --type worker).
    #[arg(short = 'w', long)]
    pub worker: bool,
    /// The member's name.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
}

/// The member type an offline-member command line names, or DM's complaint.
pub fn offline_type(a: &OfflineMemberArgs) -> Result<&'static str, &'static str> {
    let mut kinds = Vec::new();
    if a.master || a.kind.as_deref() == Some("master") {
        kinds.push("master");
    }
    if a.worker || a.kind.as_deref() == Some("worker") {
        kinds.push("worker");
    }
    match kinds.as_slice() {
        [one] => Ok(one),
        _ => Err("should specify either --master or --worker"),
    }
}

/// Runs `offline-member`.
pub fn offline_member(a: &OfflineMemberArgs, t: &Target) -> u8 {
    let kind = match offline_type(a) {
        Ok(k) => k,
        Err(why) => {
            println!("get offline type failed: {why}");
            return USAGE;
        }
    };
    let Some(name) = a.name.clone().filter(|n| !n.is_empty()) else {
        println!("a member name must be specified");
        return USAGE;
    };
    let req = pb::OfflineMemberRequest {
        r#type: kind.to_string(),
        name,
    };
    match t.call(|mut c| async move { c.offline_member(req).await }) {
        Ok(resp) if !resp.result => {
            println!("offline member failed:\n{}", resp.msg);
            FAIL
        }
        Ok(resp) => print_result(&resp, resp.result),
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, stage: pb::Stage, unit: pb::UnitType, err: bool) -> pb::SubTaskStatus {
        pb::SubTaskStatus {
            name: name.into(),
            stage: stage as i32,
            unit: unit as i32,
            result: err.then(|| pb::ProcessResult {
                is_canceled: false,
                errors: vec![pb::ProcessError::default()],
                detail: vec![],
            }),
            unresolved_ddl_lock_id: String::new(),
            status: None,
        }
    }

    fn source(
        id: &str,
        relay: Option<pb::Stage>,
        subs: Vec<pb::SubTaskStatus>,
    ) -> pb::QueryStatusResponse {
        pb::QueryStatusResponse {
            result: true,
            msg: String::new(),
            source_status: Some(pb::SourceStatus {
                source: id.into(),
                worker: "w".into(),
                result: None,
                relay_status: relay.map(|s| pb::RelayStatus {
                    stage: s as i32,
                    ..Default::default()
                }),
            }),
            sub_task_status: subs,
        }
    }

    fn status_of(sources: Vec<pb::QueryStatusResponse>) -> Vec<(String, String)> {
        let resp = pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources,
        };
        let Some(J::Obj(top)) = summarize(&resp) else {
            panic!("no summary")
        };
        let J::Arr(tasks) = &top[2].1 else { panic!() };
        tasks
            .iter()
            .map(|t| {
                let J::Obj(f) = t else { panic!() };
                let (J::Str(n), J::Str(s)) = (&f[0].1, &f[1].1) else {
                    panic!()
                };
                (n.clone(), s.clone())
            })
            .collect()
    }

    #[test]
    fn summary_task_status_follows_dm_rules() {
        use pb::Stage::*;
        use pb::UnitType::*;
        let err_msg = |t: &str, what: &str| {
            format!("Error - {what}. Please run `query-status {t}` to get more details.")
        };
        let cases: Vec<(Vec<pb::QueryStatusResponse>, &str, String)> = vec![
            (
                vec![
                    source("a", None, vec![sub("t", Running, Sync, false)]),
                    source("b", None, vec![sub("t", Running, Sync, false)]),
                ],
                "t",
                "Running".into(),
            ),
            (
                vec![
                    source("a", None, vec![sub("t", Running, Sync, false)]),
                    source("b", None, vec![sub("t", Paused, Sync, true)]),
                ],
                "t",
                err_msg("t", "Some error occurred in subtask"),
            ),
            (
                vec![
                    source("a", None, vec![sub("t", Paused, Sync, false)]),
                    source("b", None, vec![sub("t", Running, Sync, false)]),
                ],
                "t",
                "Paused".into(),
            ),
            (
                vec![
                    source("a", None, vec![sub("t", Running, Load, false)]),
                    source("b", None, vec![sub("t", Paused, Sync, false)]),
                ],
                "t",
                "Paused".into(),
            ),
            (
                vec![
                    source("a", None, vec![sub("t", Finished, Load, false)]),
                    source("b", None, vec![sub("t", Finished, Load, false)]),
                ],
                "t",
                "Finished".into(),
            ),
            (
                vec![
                    source("a", None, vec![sub("t", New, Dump, false)]),
                    source("b", None, vec![sub("t", Finished, Load, false)]),
                ],
                "t",
                "Running".into(),
            ),
            (
                vec![source(
                    "a",
                    Some(Paused),
                    vec![sub("t", Running, Sync, false)],
                )],
                "t",
                err_msg("t", "Relay status is Paused"),
            ),
            (
                vec![source(
                    "a",
                    Some(Stopped),
                    vec![sub("t", Running, Sync, false)],
                )],
                "t",
                err_msg("t", "Relay status is Stopped"),
            ),
            (
                vec![source(
                    "a",
                    Some(Paused),
                    vec![sub("t", Running, Load, false)],
                )],
                "t",
                "Running".into(),
            ),
        ];
        for (i, (sources, task, want)) in cases.into_iter().enumerate() {
            let got = status_of(sources);
            assert_eq!(got, vec![(task.to_string(), want)], "case {i}");
        }
    }

    #[test]
    fn summary_lists_tasks_by_name_with_their_sources() {
        use pb::Stage::*;
        use pb::UnitType::*;
        let resp = pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: vec![
                source(
                    "s1",
                    None,
                    vec![
                        sub("zeta", Running, Sync, false),
                        sub("alpha", Paused, Sync, false),
                    ],
                ),
                source("s2", None, vec![sub("zeta", Running, Sync, false)]),
            ],
        };
        let want = r#"{
    "result": true,
    "msg": "",
    "tasks": [
        {
            "taskName": "alpha",
            "taskStatus": "Paused",
            "sources": [
                "s1"
            ]
        },
        {
            "taskName": "zeta",
            "taskStatus": "Running",
            "sources": [
                "s1",
                "s2"
            ]
        }
    ]
}"#;
        let got = summarize(&resp).map(|j| jsonpb::go_json(&j));
        assert_eq!(got.as_deref(), Some(want));
        let empty = pb::QueryStatusListResponse {
            result: true,
            ..Default::default()
        };
        let got = summarize(&empty).map(|j| jsonpb::go_json(&j));
        assert_eq!(
            got.as_deref(),
            Some("{\n    \"result\": true,\n    \"msg\": \"\",\n    \"tasks\": []\n}")
        );
    }

    #[test]
    fn summary_gives_way_when_a_source_failed() {
        let mut failed = source("s1", None, vec![]);
        failed.result = false;
        let resp = pb::QueryStatusListResponse {
            result: true,
            msg: String::new(),
            sources: vec![failed],
        };
        assert!(summarize(&resp).is_none());
    }

    #[test]
    fn precheck_reports_are_printed_raw_like_dm() {
        let set = |r: &mut pb::CheckTaskResponse, m: String| r.msg = m;
        let plain = pb::CheckTaskResponse {
            result: true,
            msg: "pre-check is passed. ".into(),
        };
        assert_eq!(
            render_with_check_msg(&plain, &plain.msg, set),
            "{\n    \"result\": true,\n    \"msg\": \"pre-check is passed. \"\n}"
        );
        let report = format!("{CHECK_MSG_HEADER} [\"x\"]:\ndetail: {{\n  \"a\": 1\n}}");
        let failed = pb::CheckTaskResponse {
            result: false,
            msg: report.clone(),
        };
        assert_eq!(
            render_with_check_msg(&failed, &failed.msg, set),
            format!(
                "{{\n    \"result\": false,\n    \"msg\": \"{CHECK_MSG_HEADER} [\"x\"]:\n   \tdetail: {{\n  \"a\": 1\n}}\"\n}}"
            )
        );
    }

    #[test]
    fn type_words_map_to_dm_enums() {
        let ops = [
            ("create", Some(pb::SourceOp::StartSource)),
            ("update", Some(pb::SourceOp::UpdateSource)),
            ("stop", Some(pb::SourceOp::StopSource)),
            ("show", Some(pb::SourceOp::ShowSource)),
            ("start", None),
        ];
        for (w, want) in ops {
            assert_eq!(source_op(w), want, "{w}");
        }
    }

    #[test]
    fn the_sample_source_config_loads() {
        let l = crate::config::parse_source(SAMPLE_SOURCE_CONFIG.as_bytes()).unwrap();
        assert_eq!(l.config.source_id, "mysql-replica-01");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn offline_type_needs_exactly_one_kind() {
        let a = |kind: Option<&str>, master: bool, worker: bool| OfflineMemberArgs {
            kind: kind.map(str::to_string),
            master,
            worker,
            name: Some("x".into()),
        };
        let cases = [
            (a(Some("worker"), false, false), Ok("worker")),
            (a(Some("master"), false, false), Ok("master")),
            (a(None, true, false), Ok("master")),
            (a(None, false, true), Ok("worker")),
            (a(Some("worker"), false, true), Ok("worker")),
            (a(None, true, true), Err(())),
            (a(None, false, false), Err(())),
            (a(Some("master"), false, true), Err(())),
        ];
        for (args, want) in cases {
            assert_eq!(offline_type(&args).map_err(|_| ()), want, "{args:?}");
        }
    }

    #[test]
    fn task_name_comes_from_a_yaml_file_when_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("orders.yaml");
        std::fs::write(&good, "name: from-file\ntask-mode: all\n").unwrap();
        let cases = [
            ("plain-name".to_string(), "plain-name".to_string()),
            (good.display().to_string(), "from-file".to_string()),
            ("missing.yaml".to_string(), "missing.yaml".to_string()),
        ];
        for (arg, want) in cases {
            assert_eq!(task_name_from_arg(&arg), want);
        }
    }
}
