//! The tracked schema of a table: tiflow's `binlog-schema list|update|delete` and DM v2's
//! `operate-schema get|set|remove` — one `pb.Master` OperateSchema RPC, carried out by each
//! named source's worker on its **paused** subtask
//! ([`crate::worker::units::sync::schema_ops`]).
//!
//! `binlog-schema update` takes the schema from a `CREATE TABLE` file, or `--from-source`
//! (the upstream's table now) or `--from-target` (the downstream table it is routed to);
//! `--sync` (default true, as tiflow) also tells the master the table's new schema in
//! optimistic shard mode — the way out of a conflict, followed by `binlog skip`.

use super::jsonpb::{self};
use super::master::{FAIL, OK, SourceFlag, Target, USAGE, task_name_from_arg};
use crate::pb;

/// `binlog-schema <list|update|delete> <task-name> <database> <table> [schema-file] [-s source ...]`.
#[derive(Debug, clap::Args)]
pub struct BinlogSchemaArgs {
    #[command(subcommand)]
    pub op: BinlogSchemaOp,
}

#[derive(Debug, clap::Subcommand)]
pub enum BinlogSchemaOp {
    /// Shows the tracked schema of a table (a paused task's).
    #[command(override_usage = "binlog-schema list <task-name> <database> <table> [-s source ...]")]
    List(SchemaTable),
    /// Sets the tracked schema of a table from a CREATE TABLE file, the source or the target.
    #[command(
        override_usage = "binlog-schema update <task-name> <database> <table> [schema-file] [--flush] [--sync] [--from-source | --from-target] [-s source ...]"
    )]
    Update(SchemaUpdate),
    /// Deletes the tracked schema of a table (read from the upstream when next needed).
    #[command(
        override_usage = "binlog-schema delete <task-name> <database> <table> [-s source ...]"
    )]
    Delete(SchemaTable),
}

#[derive(Debug, clap::Args)]
pub struct SchemaTable {
    #[command(flatten)]
    pub source: SourceFlag,
    /// A task name, or a task file to take the name from.
    #[arg(value_name = "task-name")]
    pub task: String,
    /// The upstream database.
    #[arg(value_name = "database")]
    pub database: String,
    /// The upstream table.
    #[arg(value_name = "table")]
    pub table: String,
}

#[derive(Debug, clap::Args)]
pub struct SchemaUpdate {
    #[command(flatten)]
    pub table: SchemaTable,
    /// A file holding the table's CREATE TABLE statement.
    #[arg(value_name = "schema-file")]
    pub file: Option<String>,
    /// Write the schema to the checkpoint (always done: a paused task keeps its tracker there).
    #[arg(long = "flush", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub flush: bool,
    /// Optimistic shard mode: also tell the master the table's new schema.
    #[arg(long = "sync", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sync: bool,
    /// Take the schema from the upstream table as it is now.
    #[arg(long = "from-source", conflicts_with_all = ["from_target", "file"])]
    pub from_source: bool,
    /// Take the schema from the downstream table the table is routed to.
    #[arg(long = "from-target", conflicts_with = "file")]
    pub from_target: bool,
}

/// `operate-schema <get|set|remove> <-s source ...> <task-name | task-file> <-d database> <-t table> [schema-file] [--flush] [--sync]`.
#[derive(Debug, clap::Args)]
pub struct OperateSchemaArgs {
    #[command(flatten)]
    pub source: SourceFlag,
    /// The upstream database.
    #[arg(short = 'd', long = "database", value_name = "database")]
    pub database: Option<String>,
    /// The upstream table.
    #[arg(short = 't', long = "table", value_name = "table")]
    pub table: Option<String>,
    /// Write the schema to the checkpoint (always done).
    #[arg(long = "flush", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub flush: bool,
    /// Optimistic shard mode: also tell the master the table's new schema (set only).
    #[arg(long = "sync", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sync: bool,
    /// get | set | remove, the task, then (set) the schema file.
    #[arg(value_name = "ARGS", num_args = 0..)]
    pub args: Vec<String>,
}

fn send(t: &Target, req: pb::OperateSchemaRequest) -> u8 {
    match t.call(|mut c| async move { c.operate_schema(req).await }) {
        Ok(r) => {
            println!("{}", jsonpb::print_response(&r));
            if r.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

fn read_file(path: &str) -> Result<String, u8> {
    std::fs::read_to_string(path).map_err(|e| {
        println!("cannot read the schema file {path}: {e}");
        FAIL
    })
}

/// Runs `binlog-schema list|update|delete`.
pub fn binlog_schema(a: &BinlogSchemaArgs, t: &Target) -> u8 {
    let (op, tbl) = match &a.op {
        BinlogSchemaOp::List(x) => (pb::SchemaOp::ListSchema, x),
        BinlogSchemaOp::Delete(x) => (pb::SchemaOp::RemoveSchema, x),
        BinlogSchemaOp::Update(u) => (pb::SchemaOp::SetSchema, &u.table),
    };
    if tbl.source.sources.is_empty() {
        println!("must specify at least one source");
        return USAGE;
    }
    let mut req = pb::OperateSchemaRequest {
        op: op as i32,
        task: task_name_from_arg(&tbl.task),
        sources: tbl.source.sources.clone(),
        database: tbl.database.clone(),
        table: tbl.table.clone(),
        flush: true,
        ..Default::default()
    };
    if let BinlogSchemaOp::Update(u) = &a.op {
        match (&u.file, u.from_source, u.from_target) {
            (Some(f), false, false) => match read_file(f) {
                Ok(s) => req.schema = s,
                Err(code) => return code,
            },
            (None, true, false) => req.from_source = true,
            (None, false, true) => req.from_target = true,
            _ => {
                println!(
                    "must specify exactly one of a schema file, --from-source and --from-target"
                );
                return USAGE;
            }
        }
        req.flush = u.flush;
        req.sync = u.sync;
    }
    send(t, req)
}

/// Runs `operate-schema get|set|remove` (DM v2).
pub fn operate_schema(a: &OperateSchemaArgs, t: &Target) -> u8 {
    const USAGE_LINE: &str = "Usage: operate-schema <get|set|remove> <-s source ...> <task-name | task-file> <-d database> <-t table> [schema-file] [--flush] [--sync]";
    let (op, task, rest) = match a.args.as_slice() {
        [op, task, rest @ ..] => (op.as_str(), task, rest),
        _ => {
            println!("{USAGE_LINE}");
            return USAGE;
        }
    };
    let op = match op {
        "get" => pb::SchemaOp::GetSchema,
        "set" => pb::SchemaOp::SetSchema,
        "remove" => pb::SchemaOp::RemoveSchema,
        other => {
            println!("invalid op '{other}'");
            return USAGE;
        }
    };
    if a.source.sources.is_empty() {
        println!("must specify at least one source");
        return USAGE;
    }
    let (Some(db), Some(tb)) = (&a.database, &a.table) else {
        println!("must specify both --database and --table");
        return USAGE;
    };
    let mut req = pb::OperateSchemaRequest {
        op: op as i32,
        task: task_name_from_arg(task),
        sources: a.source.sources.clone(),
        database: db.clone(),
        table: tb.clone(),
        flush: a.flush,
        sync: a.sync,
        ..Default::default()
    };
    match (op, rest) {
        (pb::SchemaOp::SetSchema, [file]) => match read_file(file) {
            Ok(s) => req.schema = s,
            Err(code) => return code,
        },
        (pb::SchemaOp::SetSchema, _) => {
            println!("must specify schema file for 'set' operation");
            return USAGE;
        }
        (_, []) => {}
        _ => {
            println!("{USAGE_LINE}");
            return USAGE;
        }
    }
    if a.sync && op != pb::SchemaOp::SetSchema {
        println!("`sync` is only used for 'set' operation");
        return USAGE;
    }
    send(t, req)
}
