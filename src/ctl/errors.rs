//! Getting a task past a failing statement: DM v2's `handle-error`, tiflow's `binlog`
//! (skip / replace / revert / inject / list) and DM v1's `sql-skip`, `sql-replace`,
//! `sql-inject` — all one `pb.Master` HandleError RPC (v1's pattern and end-position keys ride
//! on dm-rs's extension fields), carried out by the Sync unit of each source's worker
//! ([`crate::worker::units::sync::ops`]).
//!
//! Positions: v2 and `binlog` take the **start** of the event (`-b file:pos`, the
//! `startLocation` a DDL error shows; without `-b` the current error), v1's `-b` its **end**
//! (`failedBinlogPosition`). v1's `-s` is `--sql-pattern` (`~regexp` or the exact statement
//! after routing), and its `-w` names a worker (or a source).

use super::jsonpb::{self, J, ToJson};
use super::master::{FAIL, OK, SourceFlag, Target, USAGE, task_name_from_arg};
use crate::pb;
use crate::worker::units::sync::ops;

/// `handle-error <task-name | task-file> [-s source ...] [-b binlog-pos] <skip/replace/revert> [replace-sql1;replace-sql2;]`.
#[derive(Debug, clap::Args)]
pub struct HandleErrorArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The start position of the event to handle (`mysql-bin.000001:2022`); default: the
    /// current error's.
    #[arg(short = 'b', long = "binlog-pos", value_name = "binlog-pos")]
    pub binlog_pos: Option<String>,
    /// task-name | task-file, then skip | replace | revert, then the replace SQLs.
    #[arg(value_name = "ARGS", num_args = 0..)]
    pub args: Vec<String>,
}

/// `binlog <skip|replace|revert|inject|list> <task-name> [sqls ...] [-b binlog-pos] [-s source ...]`.
#[derive(Debug, clap::Args)]
pub struct BinlogArgs {
    #[command(subcommand)]
    pub op: BinlogOp,
}

#[derive(Debug, clap::Subcommand)]
pub enum BinlogOp {
    /// Skips the current error event or the event at a binlog position.
    #[command(override_usage = "binlog skip <task-name> [-b binlog-pos] [-s source ...]")]
    Skip(BinlogTask),
    /// Replaces the current error event or the event at a binlog position with statements.
    #[command(
        override_usage = "binlog replace <task-name> <replace-sql1> <replace-sql2>... [-b binlog-pos] [-s source ...]"
    )]
    Replace(BinlogSqls),
    /// Removes an operator set at the current error or a binlog position.
    #[command(override_usage = "binlog revert <task-name> [-b binlog-pos] [-s source ...]")]
    Revert(BinlogTask),
    /// Injects statements before the current error event or the event at a binlog position.
    #[command(
        override_usage = "binlog inject <task-name> <inject-sql1> <inject-sql2>... [-b binlog-pos] [-s source ...]"
    )]
    Inject(BinlogSqls),
    /// Lists the operators at or after a binlog position.
    #[command(override_usage = "binlog list <task-name> [-b binlog-pos] [-s source ...]")]
    List(BinlogTask),
}

#[derive(Debug, clap::Args)]
pub struct BinlogTask {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The start position of the event (`mysql-bin.000001:2022`).
    #[arg(short = 'b', long = "binlog-pos", value_name = "binlog-pos")]
    pub binlog_pos: Option<String>,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name")]
    pub task: String,
}

#[derive(Debug, clap::Args)]
pub struct BinlogSqls {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The start position of the event (`mysql-bin.000001:2022`).
    #[arg(short = 'b', long = "binlog-pos", value_name = "binlog-pos")]
    pub binlog_pos: Option<String>,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name")]
    pub task: String,
    /// The statements (each argument may hold several, separated by `;`).
    #[arg(value_name = "sql", num_args = 1.., required = true)]
    pub sqls: Vec<String>,
}

/// DM v1's `sql-skip` / `sql-replace` / `sql-inject` flags (`-w` worker, `-s` SQL pattern).
#[derive(Debug, clap::Args)]
pub struct SqlOpArgs {
    /// The worker (DM v1) or source whose subtask to operate; exactly one.
    #[arg(long = "worker", value_delimiter = ',', value_name = "worker")]
    pub workers: Vec<String>,
    /// The end position of the event (`mysql-bin.000001:3270`), as `query-status` shows
    /// `failedBinlogPosition`.
    #[arg(short = 'b', long = "binlog-pos", value_name = "binlog-pos")]
    pub binlog_pos: Option<String>,
    /// A DDL pattern: `~regexp`, or the exact statement (after routing).
    #[arg(long = "sql-pattern", value_name = "sql-pattern")]
    pub sql_pattern: Option<String>,
    /// Apply to the shard DDL lock's owner (needs shard DDL coordination).
    #[arg(long = "sharding")]
    pub sharding: bool,
    /// The task name, then (sql-replace, sql-inject) the statements.
    #[arg(value_name = "ARGS", num_args = 0..)]
    pub args: Vec<String>,
}

fn bad_pos(pos: &str, what: &str, e: &str) -> u8 {
    println!("[code=11118] invalid --binlog-pos {pos} in {what} operation: {e}");
    FAIL
}

fn send(t: &Target, req: pb::HandleErrorRequest) -> Result<pb::HandleErrorResponse, u8> {
    t.call(|mut c| async move { c.handle_error(req).await })
}

/// DM v1's answer shape (`HandleSQLsResponse`, `BreakWorkerDDLLockResponse`):
/// `{result, msg, workers: [...]}`.
fn print_v1(r: &pb::HandleErrorResponse) -> u8 {
    let v1 = J::Obj(vec![
        ("result", J::Bool(r.result)),
        ("msg", J::s(&r.msg)),
        (
            "workers",
            J::Arr(r.sources.iter().map(|s| s.to_json()).collect()),
        ),
    ]);
    println!("{}", jsonpb::jsonpb(&v1));
    if r.result { OK } else { FAIL }
}

fn print(resp: &pb::HandleErrorResponse) -> u8 {
    println!("{}", jsonpb::print_response(resp));
    if resp.result { OK } else { FAIL }
}

/// Runs `handle-error`.
pub fn handle_error(a: &HandleErrorArgs, t: &Target) -> u8 {
    let (task, op, sqls) = match a.args.as_slice() {
        [task, op, sqls @ ..] => (task, op.as_str(), sqls),
        _ => {
            println!(
                "Usage: handle-error <task-name | task-file> [-s source ...] [-b binlog-pos] <skip/replace/revert> [replace-sql1;replace-sql2;]"
            );
            return USAGE;
        }
    };
    let op = match op {
        "skip" => pb::ErrorOp::Skip,
        "replace" => pb::ErrorOp::Replace,
        "revert" => pb::ErrorOp::Revert,
        other => {
            println!("invalid operation '{other}', please use `skip`, `replace` or `revert`");
            return USAGE;
        }
    };
    if op != pb::ErrorOp::Replace && !sqls.is_empty() {
        println!("replace-sqls can not be used for 'skip/revert' operation");
        return USAGE;
    }
    if op == pb::ErrorOp::Replace && ops::split_sqls(sqls).is_empty() {
        println!("must specify the replace-sqls for replace operation");
        return USAGE;
    }
    let pos = a.binlog_pos.clone().unwrap_or_default();
    if !pos.is_empty()
        && let Err(e) = ops::parse_pos(&pos)
    {
        return bad_pos(&pos, "handle-error", &e);
    }
    let req = pb::HandleErrorRequest {
        op: op as i32,
        task: task_name_from_arg(task),
        sources: a.source.sources.clone(),
        binlog_pos: pos,
        sqls: sqls.to_vec(),
        ..Default::default()
    };
    match send(t, req) {
        Ok(r) => print(&r),
        Err(code) => code,
    }
}

/// Runs `binlog skip|replace|revert|inject|list`.
pub fn binlog(a: &BinlogArgs, t: &Target) -> u8 {
    let (op, task, sources, pos, sqls) = match &a.op {
        BinlogOp::Skip(b) => (pb::ErrorOp::Skip, &b.task, &b.source, &b.binlog_pos, None),
        BinlogOp::Revert(b) => (pb::ErrorOp::Revert, &b.task, &b.source, &b.binlog_pos, None),
        BinlogOp::List(b) => (pb::ErrorOp::List, &b.task, &b.source, &b.binlog_pos, None),
        BinlogOp::Replace(b) => (
            pb::ErrorOp::Replace,
            &b.task,
            &b.source,
            &b.binlog_pos,
            Some(&b.sqls),
        ),
        BinlogOp::Inject(b) => (
            pb::ErrorOp::Inject,
            &b.task,
            &b.source,
            &b.binlog_pos,
            Some(&b.sqls),
        ),
    };
    let pos = pos.clone().unwrap_or_default();
    if !pos.is_empty()
        && let Err(e) = ops::parse_pos(&pos)
    {
        return bad_pos(&pos, "binlog", &e);
    }
    let req = pb::HandleErrorRequest {
        op: op as i32,
        task: task_name_from_arg(task),
        sources: sources.sources.clone(),
        binlog_pos: pos,
        sqls: sqls.cloned().unwrap_or_default(),
        ..Default::default()
    };
    match send(t, req) {
        Ok(r) => print(&r),
        Err(code) => code,
    }
}

/// Which v1 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlOp {
    Skip,
    Replace,
    Inject,
}

/// The source a v1 `-w` value means: a worker's bound source, or a source ID as it is.
pub(crate) fn source_of_worker(t: &Target, w: &str) -> Result<String, u8> {
    let req = pb::ListMemberRequest {
        leader: false,
        master: false,
        worker: true,
        names: vec![],
    };
    let resp = t.call(|mut c| async move { c.list_member(req).await })?;
    for m in &resp.members {
        if let Some(pb::members::Member::Worker(ws)) = &m.member {
            for wi in &ws.workers {
                if wi.name == w && !wi.source.is_empty() {
                    return Ok(wi.source.clone());
                }
            }
        }
    }
    Ok(w.to_string())
}

/// Runs `sql-skip`, `sql-replace` or `sql-inject` (DM v1).
pub fn sql_op(kind: SqlOp, a: &SqlOpArgs, t: &Target) -> u8 {
    let usage = match kind {
        SqlOp::Skip => {
            "sql-skip <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name>"
        }
        SqlOp::Replace => {
            "sql-replace <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name> <sql1;sql2;>"
        }
        SqlOp::Inject => "sql-inject <-w worker> <task-name> <sql1;sql2;>",
    };
    let (task, sqls) = match (kind, a.args.as_slice()) {
        (SqlOp::Skip, [task]) => (task, Vec::new()),
        (SqlOp::Replace | SqlOp::Inject, [task, sqls @ ..]) if !sqls.is_empty() => {
            (task, ops::split_sqls(sqls))
        }
        _ => {
            println!("Usage: {usage}");
            return USAGE;
        }
    };
    if kind == SqlOp::Inject {
        if a.workers.len() != 1 {
            println!("want only one worker, but got {:?}", a.workers);
            return USAGE;
        }
        if let Some(bad) = sqls.iter().find(|s| !ops::is_ddl(s)) {
            println!("only support inject DDL currently, but got '{bad}'");
            return FAIL;
        }
    } else {
        let pos = a.binlog_pos.as_deref().unwrap_or("");
        let pat = a.sql_pattern.as_deref().unwrap_or("");
        let msg = match (pos.is_empty(), pat.is_empty(), a.sharding) {
            (false, false, _) => {
                Some("cannot specify both --binlog-pos and --sql-pattern in sql operation")
            }
            (true, true, _) => {
                Some("must specify one of --binlog-pos and --sql-pattern in sql operation")
            }
            (false, _, true) => {
                Some("cannot specify --binlog-pos with --sharding in sql operation")
            }
            _ => None,
        };
        if let Some(m) = msg {
            println!("[code=11017] {m}");
            return FAIL;
        }
        if !pos.is_empty()
            && let Err(e) = ops::parse_pos(pos)
        {
            println!("[code=11017] invalid --binlog-pos {pos} in sql operation: {e}");
            return FAIL;
        }
        if a.sharding {
            if !a.workers.is_empty() {
                println!(
                    "--sharding operator always takes effect on DDL lock's owner, specified workers {:?} arguments will be ignored",
                    a.workers
                );
            }
            let req = pb::HandleErrorRequest {
                op: if kind == SqlOp::Skip {
                    pb::ErrorOp::Skip
                } else {
                    pb::ErrorOp::Replace
                } as i32,
                task: task_name_from_arg(task),
                sqls,
                dmrs_sql_pattern: pat.to_string(),
                dmrs_sharding: true,
                ..Default::default()
            };
            return match send(t, req) {
                Ok(r) => print_v1(&r),
                Err(code) => code,
            };
        }
        if a.workers.len() != 1 {
            println!("should only specify one worker, but got {:?}", a.workers);
            return USAGE;
        }
    }
    let source = match source_of_worker(t, &a.workers[0]) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let op = match kind {
        SqlOp::Skip => pb::ErrorOp::Skip,
        SqlOp::Replace => pb::ErrorOp::Replace,
        SqlOp::Inject => pb::ErrorOp::Inject,
    };
    let req = pb::HandleErrorRequest {
        op: op as i32,
        task: task_name_from_arg(task),
        sources: vec![source],
        binlog_pos: a.binlog_pos.clone().unwrap_or_default(),
        sqls,
        dmrs_sql_pattern: a.sql_pattern.clone().unwrap_or_default(),
        dmrs_end_position: true,
        ..Default::default()
    };
    match send(t, req) {
        Ok(r) => print_v1(&r),
        Err(code) => code,
    }
}

/// `show-ddl-locks [-s source ...] [task-name | task-file]`.
#[derive(Debug, clap::Args)]
pub struct ShowDdlLocksArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name | task-file")]
    pub task: Option<String>,
}

/// `unlock-ddl-lock <lock-ID> [-o owner] [-f]`.
#[derive(Debug, clap::Args)]
pub struct UnlockDdlLockArgs {
    /// The source to run the DDLs instead of the lock's owner.
    #[arg(short = 'o', long = "owner", value_name = "owner")]
    pub owner: Option<String>,
    /// Remove the lock even if the owner fails (accepted; dm-rs removes it once every waiting
    /// source has carried out its operation).
    #[arg(short = 'f', long = "force-remove")]
    pub force: bool,
    /// The lock's ID, as show-ddl-locks prints it.
    #[arg(value_name = "lock-ID")]
    pub id: String,
}

/// tiflow's `shard-ddl-lock [task]` / `shard-ddl-lock unlock <lock-ID> [-o owner] [-f]`.
#[derive(Debug, clap::Args)]
pub struct ShardDdlLockArgs {
    #[command(subcommand)]
    pub unlock: Option<ShardDdlLockCmd>,
    #[command(flatten)]
    pub source: SourceFlag,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name | task-file")]
    pub task: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ShardDdlLockCmd {
    /// Unlocks a pessimistic shard DDL lock by hand.
    #[command(override_usage = "shard-ddl-lock unlock <lock-id> [-o owner] [-f]")]
    Unlock(UnlockDdlLockArgs),
}

impl ToJson for pb::DdlLock {
    fn to_json(&self) -> J {
        let strs = |v: &[String]| J::Arr(v.iter().map(|s| J::s(s)).collect());
        J::Obj(vec![
            ("ID", J::s(&self.id)),
            ("task", J::s(&self.task)),
            ("mode", J::s(&self.mode)),
            ("owner", J::s(&self.owner)),
            ("DDLs", strs(&self.dd_ls)),
            ("synced", strs(&self.synced)),
            ("unsynced", strs(&self.unsynced)),
        ])
    }
}

impl ToJson for pb::ShowDdlLocksResponse {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("result", J::Bool(self.result)),
            ("msg", J::s(&self.msg)),
            (
                "locks",
                J::Arr(self.locks.iter().map(|l| l.to_json()).collect()),
            ),
        ])
    }
}

/// Runs `show-ddl-locks`.
pub fn show_ddl_locks(a: &ShowDdlLocksArgs, t: &Target) -> u8 {
    let req = pb::ShowDdlLocksRequest {
        task: a
            .task
            .as_deref()
            .map(task_name_from_arg)
            .unwrap_or_default(),
        sources: a.source.sources.clone(),
    };
    match t.call(|mut c| async move { c.show_ddl_locks(req).await }) {
        Ok(r) => {
            println!("{}", jsonpb::print_response(&r));
            if r.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

/// Runs `unlock-ddl-lock`.
pub fn unlock_ddl_lock(a: &UnlockDdlLockArgs, t: &Target) -> u8 {
    let req = pb::UnlockDdlLockRequest {
        id: a.id.clone(),
        replace_owner: a.owner.clone().unwrap_or_default(),
        force_remove: a.force,
    };
    match t.call(|mut c| async move { c.unlock_ddl_lock(req).await }) {
        Ok(r) => {
            println!("{}", jsonpb::print_response(&r));
            if r.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

/// Runs `shard-ddl-lock`.
pub fn shard_ddl_lock(a: &ShardDdlLockArgs, t: &Target) -> u8 {
    match &a.unlock {
        Some(ShardDdlLockCmd::Unlock(u)) => unlock_ddl_lock(u, t),
        None => show_ddl_locks(
            &ShowDdlLocksArgs {
                source: a.source.clone(),
                task: a.task.clone(),
            },
            t,
        ),
    }
}

/// DM v1's `break-ddl-lock <-w worker ...> <task-name> [--remove-id ID] [--exec] [--skip]`.
#[derive(Debug, clap::Args)]
pub struct BreakDdlLockArgs {
    /// The workers (or sources) whose waiting lock to break.
    #[arg(long = "worker", value_delimiter = ',', value_name = "worker")]
    pub workers: Vec<String>,
    /// Sources whose waiting lock to break (the seed's `-s NAME ... TASK` form).
    #[arg(long = "source", value_delimiter = ',', value_name = "source")]
    pub sources: Vec<String>,
    /// Remove this lock ID from the master.
    #[arg(long = "remove-id", value_name = "ID")]
    pub remove_id: Option<String>,
    /// Run the waiting DDLs on these workers.
    #[arg(long = "exec")]
    pub exec: bool,
    /// Skip the waiting DDLs on these workers.
    #[arg(long = "skip")]
    pub skip: bool,
    /// The task name.
    #[arg(value_name = "task-name")]
    pub task: String,
}

/// Runs `break-ddl-lock`.
pub fn break_ddl_lock(a: &BreakDdlLockArgs, t: &Target) -> u8 {
    if a.exec && a.skip {
        println!("`exec` and `skip` can not specify both at the same time");
        return USAGE;
    }
    if !a.exec && !a.skip && a.remove_id.is_none() {
        println!("`remove-id`, `exec`, `skip` must specify at least one");
        return USAGE;
    }
    if (a.exec || a.skip) && a.workers.is_empty() && a.sources.is_empty() {
        println!("must specify at least one worker (-w) or source (-s)");
        return USAGE;
    }
    let mut sources = a.sources.clone();
    for w in &a.workers {
        match source_of_worker(t, w) {
            Ok(s) => sources.push(s),
            Err(code) => return code,
        }
    }
    let req = pb::HandleErrorRequest {
        task: task_name_from_arg(&a.task),
        sources,
        dmrs_break_lock: if a.exec {
            "exec".into()
        } else if a.skip {
            "skip".into()
        } else {
            String::new()
        },
        dmrs_remove_lock_id: a.remove_id.clone().unwrap_or_default(),
        ..Default::default()
    };
    match send(t, req) {
        Ok(r) => print_v1(&r),
        Err(code) => code,
    }
}
