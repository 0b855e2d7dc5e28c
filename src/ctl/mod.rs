//! dmctl: DM's command-line client. `src/bin/dmctl.rs` hands the raw arguments to [`run`].
//!
//! DM-compatible surface: `-V`, `-encrypt`/`-decrypt` and `-master-addr` with one dash or two
//! (DM's `argsNeedAdjust`), the `encrypt`/`decrypt` subcommands, `help [command]`, the seed's
//! `-w` accepted wherever DM v2 takes `-s` (except in DM v1's `sql-*` commands, where `-w` is the
//! worker and `-s` the SQL pattern), the cluster commands of [`master`] (each one
//! `pb.Master` RPC, printed as DM prints it, see [`jsonpb`]; `query-status TASK --watch` follows
//! a task's progress, see [`watch`]), `check-task`, and the interactive
//! shell ([`interactive`]) when only `--master-addr` is given, and the declarative `plan`,
//! `apply` and `reconcile` of [`reconcile`] (a directory of task files is the desired state),
//! and getting past a failing statement with [`errors`] (`handle-error`, `binlog`, `sql-skip`,
//! `sql-replace`, `sql-inject`), DM v1's `refresh-worker-tasks` and `update-master-config`
//! ([`v1`]), and task files written for the user: `generate-task-config` from a description
//! ([`generate`]) or from the live cluster, `config export` / `config import` ([`export`]);
//! DM v2+'s `config task|source|master|worker`, `get-config` / `get-task-config` and
//! `transfer-source` ([`configs`]); `encrypt` through the master's key ([`secret`]).
//! Commands print results on stdout and return the exit code (0 result true, 1 result false / unreachable / bad file, 2 usage);
//! they never print a password and never exit the process themselves.
//!
//! The argument layer is DM's (cobra's): `help`, `--help` and wrong arguments print DM's usage
//! block with DM's `Use:` line ([`usage`]; a command's `override_usage` is its DM `Use:`
//! string), unknown commands and flags get DM's texts, and `--master-addr` takes DM's forms —
//! a comma-separated list tried address by address, `http://`/`https://` prefixes, `:port`,
//! `DM_MASTER_ADDR` when empty or absent ([`client`]): none gives `--master-addr not
//! provided`, no master answering `can't connect to …`. The interactive shell connects before
//! it starts, as DM's does, and then reads lines from the terminal or from stdin.

pub mod args;
pub mod check;
pub mod client;
pub mod configs;
pub mod errors;
pub mod export;
pub mod generate;
pub mod interactive;
pub mod jsonpb;
pub mod master;
pub mod reconcile;
pub mod relay;
pub mod schema;
pub mod secret;
pub mod usage;
pub mod v1;
pub mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The RPC timeout when `--rpc-timeout` is not given (DM's default).
pub const DEFAULT_RPC_TIMEOUT: &str = "10m";

/// DM control.
#[derive(Debug, Parser)]
#[command(
    name = "dmctl",
    about = "DM control: manages dm-rs (TiDB Data Migration) clusters, tasks and sources",
    disable_version_flag = true,
    after_help = "Flags may be written with one dash or two (-master-addr or --master-addr).\nWith --master-addr (or DM_MASTER_ADDR) and no command, dmctl opens an interactive shell;\nit reads commands from stdin when stdin is not a terminal."
)]
pub struct Cli {
    /// Print version information and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    /// Master API server address, this parameter is required when interacting with the
    /// dm-master: host:port, or a comma-separated list (the first that answers is used);
    /// default: $DM_MASTER_ADDR.
    #[arg(long = "master-addr", global = true)]
    pub master_addr: Option<String>,
    /// RPC timeout for each call to the master, a Go duration (e.g. 10m, 30s). Default 10m.
    #[arg(long = "rpc-timeout", global = true, value_name = "DURATION")]
    pub rpc_timeout: Option<String>,
    /// Encrypt a plaintext password and exit (same as `dmctl encrypt`: through the master
    /// when a master address is given).
    #[arg(long = "encrypt", value_name = "PLAIN-TEXT")]
    pub encrypt: Option<String>,
    /// Decrypt a DM ciphertext and exit (same as `dmctl decrypt`).
    #[arg(long = "decrypt", value_name = "CIPHER-TEXT")]
    pub decrypt: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `dmctl help check-task`.
const CHECK_TASK_HELP: &str = "Checks the configuration file of the task.

The file is validated here first (DM's checks and error codes); then dm-master runs DM's precheck \
against the upstreams and the downstream and answers as DM v8 does: `pre-check is passed. `, or \
`fail to check synchronization configuration with type: ...` with the items that warn (\"state\": \
\"warn\") or fail (\"state\": \"fail\"). -e/--error and -w/--warn limit how many of each are listed \
(10); the summary counts them all. With --start-time the precheck runs at the position that time \
resolves to on each source (incremental tasks; the task's meta may be left out). --offline validates \
the files only.

Where dm-rs differs from DM: a file that does not load is refused before anything is sent, naming its \
line and column; settings dm-rs cannot run (online DDL, a continuous validator, the TiDB Lightning \
load modes, ...) fail the precheck as the `config` item, even with ignore-checking-items: [\"all\"], \
never accepted and ignored; a table with a foreign key is a table_schema warning (its cascades are not \
in the binlog).";

/// `dmctl help start-task`.
const START_TASK_HELP: &str = "Starts a task as defined in the configuration file.

DM's precheck runs first; its message is the answer's checkResult (`pre-check is passed. `, the \
warnings, or why the task was not started). --remove-meta clears the task's checkpoints first. \
--start-time 'YYYY-MM-DD HH:MM:SS' (the upstream's local time; `T` for the space, or an offset such as \
+08:00) starts an incremental task at the first event group written at or after that time on each \
source, as DM does; the task's meta and any checkpoint are not used, and get-config shows the position \
as the instance's meta.

Where dm-rs differs from DM: the master resolves --start-time once, from the upstream's binlog event \
headers, before the precheck (which then checks that position); it is refused for full and all tasks \
(DM accepts it there, where only an all task's sync unit would use it, after the dump). --paused \
(dm-rs) creates the subtasks Paused.";

/// dmctl's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encrypts plain text to cipher text (DM's password format).
    ///
    /// With a master address (--master-addr, DM_MASTER_ADDR, the interactive shell's) the
    /// master encrypts with its --secret-key-path key, as in DM v7+; a master without one uses
    /// DM's built-in key (dm-rs keeps DM v1-v6's ciphertexts working, where DM v7+ answers
    /// "secret key not initialized"). Without a master address dmctl encrypts locally with
    /// DM's built-in key (DM v1-v6, `dmctl -encrypt`).
    #[command(override_usage = "encrypt <plain-text>")]
    Encrypt {
        /// The plaintext password.
        plain_text: String,
    },
    /// Decrypts cipher text to plain text.
    ///
    /// Locally, with DM's built-in key (DM v1-v6's ciphertexts, and dmctl's own without a
    /// master). A master never decrypts for a client, so a ciphertext made with a master's
    /// --secret-key-path cannot be read back here (DM v7+ has no decrypt at all).
    #[command(override_usage = "decrypt <cipher-text>")]
    Decrypt {
        /// A DM ciphertext, e.g. from `dmctl encrypt`.
        cipher_text: String,
    },
    /// Checks the configuration file of the task: offline (no master) or the master's precheck.
    #[command(
        name = "check-task",
        override_usage = "check-task <config-file> [--error count] [--warn count]",
        long_about = CHECK_TASK_HELP
    )]
    CheckTask(check::CheckTaskArgs),
    /// `create`/`update`/`stop`/`show` upstream MySQL/MariaDB source.
    ///
    /// `create FILE -w WORKER` binds the new source to that worker (DM v2+): refused, nothing
    /// created, when the worker does not exist or is not free (bound or offline). `show` and
    /// `stop` also take `-s SOURCE`; `stop` takes source IDs in place of files.
    #[command(
        name = "operate-source",
        override_usage = "operate-source <operate-type> [config-file ...] [-w worker] [--print-sample-config] [flags]"
    )]
    OperateSource(master::OperateSourceArgs),
    /// Starts a task as defined in the configuration file.
    #[command(
        name = "start-task",
        override_usage = "start-task [-s source ...] [--remove-meta] <config-file>",
        long_about = START_TASK_HELP
    )]
    StartTask(master::StartTaskArgs),
    /// Pauses a specified running task or all (sub)tasks bound to a source.
    #[command(
        name = "pause-task",
        override_usage = "pause-task [-s source ...] [task-name | task-file]"
    )]
    PauseTask(master::OperateTaskArgs),
    /// Resumes a specified paused task or all (sub)tasks bound to a source.
    #[command(
        name = "resume-task",
        override_usage = "resume-task [-s source ...] [task-name | task-file]"
    )]
    ResumeTask(master::OperateTaskArgs),
    /// Stops a specified task or all (sub)tasks bound to a source.
    #[command(
        name = "stop-task",
        override_usage = "stop-task [-s source ...] [task-name | task-file]"
    )]
    StopTask(master::OperateTaskArgs),
    /// Updates a task's configuration (validated here, then sent to the master).
    ///
    /// Only Paused tasks are updated (40052 otherwise). dm-rs applies the fields a running task
    /// can change (routes, filters, column-mappings, block-allow-list, expression-filter) and
    /// refuses any other changed field by name, where DM would silently ignore it.
    #[command(
        name = "update-task",
        override_usage = "update-task [-s source ...] <config-file>"
    )]
    UpdateTask(master::UpdateTaskArgs),
    /// Queries task status.
    #[command(
        name = "query-status",
        override_usage = "query-status [-s source ...] [task-name | task-file] [--more] [--watch [--interval DURATION]]"
    )]
    QueryStatus(master::QueryStatusArgs),
    /// Gets the configuration (DM's alias of `config TYPE NAME`; also `get-task-config NAME`).
    #[command(
        name = "get-config",
        override_usage = "get-config <task | master | worker | source> <name> [--file filename] [flags]"
    )]
    GetConfig(configs::GetConfigArgs),
    /// Gets a task's configuration (DM's alias: `get-config task NAME`).
    #[command(
        name = "get-task-config",
        hide = true,
        override_usage = "get-config <task | master | worker | source> <name> [--file filename] [flags]"
    )]
    GetTaskConfig(configs::GetConfigArgs),
    /// Transfers a upstream MySQL/MariaDB source to a free worker.
    ///
    /// DM's checks: the source and the worker must exist, the worker must be free (46006
    /// otherwise; to the worker the source is bound to, nothing happens). The source's tasks
    /// move with it: running ones must be in the Sync unit (46019); they pause on the current
    /// worker, then run on the new one from their checkpoint.
    #[command(
        name = "transfer-source",
        override_usage = "transfer-source <source-id> <worker-id> [flags]"
    )]
    TransferSource(configs::TransferSourceArgs),
    /// Lists member information.
    #[command(
        name = "list-member",
        override_usage = "list-member [--leader] [--master] [--worker] [--name master-name/worker-name ...]"
    )]
    ListMember(master::ListMemberArgs),
    /// Offlines member which has been closed.
    #[command(
        name = "offline-member",
        override_usage = "offline-member <--master/--worker | --type master|worker> <--name master-name/worker-name>"
    )]
    OfflineMember(master::OfflineMemberArgs),
    /// `skip`/`replace`/`revert` the current error event or a specific binlog position (binlog-pos) event.
    #[command(
        name = "handle-error",
        override_usage = "handle-error <task-name | task-file> [-s source ...] [-b binlog-pos] <skip/replace/revert> [replace-sql1;replace-sql2;]"
    )]
    HandleError(errors::HandleErrorArgs),
    /// Manages or shows the binlog operations of a task: skip, replace, revert, inject, list.
    #[command(
        name = "binlog",
        override_usage = "binlog <command> <task-name> [-b binlog-pos] [-s source ...]"
    )]
    Binlog(errors::BinlogArgs),
    /// Manages the tracked schema of a table of a paused task: list, update, delete.
    #[command(
        name = "binlog-schema",
        override_usage = "binlog-schema <command> <task-name> <database> <table> [schema-file] [-s source ...]"
    )]
    BinlogSchema(schema::BinlogSchemaArgs),
    /// `get`/`set`/`remove` the schema of an upstream table (DM v2).
    #[command(
        name = "operate-schema",
        override_usage = "operate-schema <get|set|remove> <-s source ...> <task-name | task-file> <-d database> <-t table> [schema-file] [--flush] [--sync]"
    )]
    OperateSchema(schema::OperateSchemaArgs),
    /// Skips a binlog event by its end position or a DDL by pattern (DM v1).
    #[command(
        name = "sql-skip",
        override_usage = "sql-skip <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name>"
    )]
    SqlSkip(errors::SqlOpArgs),
    /// Replaces a binlog event by its end position or a DDL by pattern with statements (DM v1).
    #[command(
        name = "sql-replace",
        override_usage = "sql-replace <-w worker> [-b binlog-pos] [-s sql-pattern] [--sharding] <task-name> <sql1;sql2;>"
    )]
    SqlReplace(errors::SqlOpArgs),
    /// Injects DDL statements at the next transaction boundary or DDL (DM v1).
    #[command(
        name = "sql-inject",
        override_usage = "sql-inject <-w worker> <task-name> <sql1;sql2;>"
    )]
    SqlInject(errors::SqlOpArgs),
    /// Shows un-resolved DDL locks.
    #[command(
        name = "show-ddl-locks",
        override_usage = "show-ddl-locks [-s source ...] [task-name | task-file]"
    )]
    ShowDdlLocks(errors::ShowDdlLocksArgs),
    /// Unlocks a DDL lock forcefully.
    #[command(
        name = "unlock-ddl-lock",
        override_usage = "unlock-ddl-lock <lock-ID> [-o owner] [-f]"
    )]
    UnlockDdlLock(errors::UnlockDdlLockArgs),
    /// Shows the shard DDL locks of a task, or unlocks one (`shard-ddl-lock unlock <lock-id>`).
    #[command(name = "shard-ddl-lock", override_usage = "shard-ddl-lock [task]")]
    ShardDdlLock(errors::ShardDdlLockArgs),
    /// Forcefully breaks a DDL lock on the workers: run or skip its DDLs there, or remove it (DM v1).
    #[command(
        name = "break-ddl-lock",
        override_usage = "break-ddl-lock <-w worker ...> <task-name> [--remove-id ID] [--exec] [--skip]"
    )]
    BreakDdlLock(errors::BreakDdlLockArgs),
    /// Starts the relay log of a source on its worker (DM v2).
    #[command(
        name = "start-relay",
        override_usage = "start-relay <-s source-id> [worker-name ...]"
    )]
    StartRelay(relay::StartStopRelayArgs),
    /// Stops the relay log of a source (DM v2); its files stay.
    #[command(
        name = "stop-relay",
        override_usage = "stop-relay <-s source-id> [worker-name ...]"
    )]
    StopRelay(relay::StartStopRelayArgs),
    /// Pauses the relay log of sources (its readers wait at its end).
    #[command(name = "pause-relay", override_usage = "pause-relay <-s source ...>")]
    PauseRelay(relay::PauseResumeRelayArgs),
    /// Resumes the relay log of sources.
    #[command(name = "resume-relay", override_usage = "resume-relay <-s source ...>")]
    ResumeRelay(relay::PauseResumeRelayArgs),
    /// Moves the relay of paused, GTID sources to their upstream's new server (DM v1).
    #[command(
        name = "switch-relay-master",
        override_usage = "switch-relay-master <-s source ...>"
    )]
    SwitchRelayMaster(relay::SwitchRelayMasterArgs),
    /// Changes the relay settings of a source from a source file (DM v1).
    #[command(
        name = "update-relay",
        override_usage = "update-relay [-s source ...] <config-file>"
    )]
    UpdateRelay(relay::UpdateRelayArgs),
    /// Pauses the relay and has it go on from a position in a new sub-directory (DM v1).
    #[command(
        name = "migrate-relay",
        override_usage = "migrate-relay <source | worker> <binlogName> <binlogPos>"
    )]
    MigrateRelay(relay::MigrateRelayArgs),
    /// Purges relay log files a task no longer needs.
    #[command(
        name = "purge-relay",
        override_usage = "purge-relay <-s source> <-f filename> [--sub-dir directory]"
    )]
    PurgeRelay(relay::PurgeRelayArgs),
    /// Queries the errors of tasks (DM v1; the same data as query-status).
    #[command(
        name = "query-error",
        override_usage = "query-error [-s source ...] [task-name]"
    )]
    QueryError(v1::QueryErrorArgs),
    /// Makes the master push every worker its desired state now and report each worker (DM v1).
    #[command(name = "refresh-worker-tasks", override_usage = "refresh-worker-tasks")]
    RefreshWorkerTasks(v1::RefreshWorkerTasksArgs),
    /// Rewrites the master's config file and applies it; what needs a restart is named (DM v1).
    #[command(
        name = "update-master-config",
        override_usage = "update-master-config <config-file>"
    )]
    UpdateMasterConfig(v1::UpdateMasterConfigArgs),
    /// Writes a complete task file from a short description, or the live cluster's tasks and
    /// sources as a directory (--from-master).
    #[command(
        name = "generate-task-config",
        override_usage = "generate-task-config --name NAME -s SOURCE ... --target HOST:PORT [--target-user USER] [--target-password PASSWORD|${ENV}] <--databases db1,db2 | --pattern db.table ...> [--route-to db.table] [--task-mode all|full|incremental] [--meta [SOURCE=]FILE:POS|GTID] [-o FILE]\n       generate-task-config --from-master [task-name ...] -o DIR"
    )]
    GenerateTaskConfig(generate::GenerateArgs),
    /// manage config operations: a task's, source's, master's or worker's config (to a file
    /// with --path), the sources and tasks exported to a directory or imported (DM v5.4).
    #[command(
        name = "config",
        override_usage = "config <command> [flags]",
        help_template = configs::CONFIG_HELP_TEMPLATE,
        disable_help_subcommand = true
    )]
    Config(configs::ConfigArgs),
    /// Shows what `apply` would change to make the cluster match a directory of task files.
    ///
    /// dm-rs's own command (DM has no declarative reconciler): the directory's task and source
    /// files are the desired state; nothing is changed.
    #[command(
        name = "plan",
        override_usage = "plan <DIR> [--out FILE] [--detailed-exitcode] [--output text|json]"
    )]
    Plan(reconcile::PlanArgs),
    /// Makes the cluster match a directory (plan, confirm, apply) or applies a saved plan.
    ///
    /// dm-rs's own command (DM has no declarative reconciler); a saved plan is refused when the
    /// cluster changed since it was made.
    #[command(
        name = "apply",
        override_usage = "apply <DIR | PLANFILE> [--yes] [--output text|json] [--timeout 60s]"
    )]
    Apply(reconcile::ApplyArgs),
    /// Keeps the cluster matching a directory: watches it, resyncs every interval.
    ///
    /// dm-rs's own command (DM has no declarative reconciler).
    #[command(
        name = "reconcile",
        override_usage = "reconcile <DIR> [--interval 30s] [--admin-addr 127.0.0.1:PORT] [--debounce 500ms]"
    )]
    Reconcile(reconcile::ReconcileArgs),
}

/// Runs dmctl with the process arguments (program name first).
pub fn run(raw: Vec<String>) -> ExitCode {
    let cli = match parse(raw) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    if cli.command.is_none()
        && !cli.version
        && cli.encrypt.is_none()
        && cli.decrypt.is_none()
        && (cli.master_addr.is_some() || env_master_addr().is_some())
    {
        // DM connects before the shell starts: no master, no shell.
        let target = match target(&cli, None) {
            Ok(master::Target { addr: None, .. }) => {
                eprintln!("Error: {}", client::NO_MASTER_ADDR);
                return ExitCode::from(master::FAIL);
            }
            Ok(t) => t,
            Err(code) => return ExitCode::from(code),
        };
        // a list, URL or `:port` was dialled by `target`; a plain host:port is dialled here
        let shown = master_addr_text(&cli, None).unwrap_or_default();
        if target.addr.as_deref() == Some(shown.as_str())
            && let Err(e) = client::resolve(&shown, true)
        {
            eprintln!("Error: {e}");
            return ExitCode::from(master::FAIL);
        }
        let code = interactive::run(|words| {
            let argv = std::iter::once("dmctl".to_string()).chain(words).collect();
            let _ = run_line(argv, &target);
        });
        return ExitCode::from(code);
    }
    ExitCode::from(dispatch(cli, None))
}

/// Normalises and parses a command line; on error (or `--help`) prints DM's text for it
/// ([`usage::report_clap_error`]) and returns the exit code.
fn parse(raw: Vec<String>) -> Result<Cli, u8> {
    let args = args::normalize(raw);
    Cli::try_parse_from(&args).map_err(|e| usage::report_clap_error(&e, &args))
}

/// `DM_MASTER_ADDR` when set and not empty.
fn env_master_addr() -> Option<String> {
    std::env::var("DM_MASTER_ADDR")
        .ok()
        .filter(|a| !a.is_empty())
}

/// The master address text in effect: the command line's `--master-addr` when not empty,
/// else the session's, else `DM_MASTER_ADDR`.
fn master_addr_text(cli: &Cli, session: Option<&master::Target>) -> Option<String> {
    cli.master_addr
        .clone()
        .filter(|a| !a.is_empty())
        .or_else(|| session.and_then(|s| s.addr.clone()))
        .or_else(env_master_addr)
}

/// Runs one line of the interactive shell (program name first) against the session's master.
fn run_line(argv: Vec<String>, session: &master::Target) -> u8 {
    match parse(argv) {
        Ok(cli)
            if cli.command.is_none()
                && !cli.version
                && cli.encrypt.is_none()
                && cli.decrypt.is_none() =>
        {
            usage::out(&usage::help(&[]));
            master::OK
        }
        Ok(cli) => dispatch(cli, Some(session)),
        Err(code) => code,
    }
}

/// The master to talk to: the command line's `--master-addr`/`--rpc-timeout`, else the
/// session's, else `DM_MASTER_ADDR`. A list of addresses (or a URL) is resolved here to the
/// first address that answers ([`client::resolve`]); none answering is DM's `can't connect`.
fn target(cli: &Cli, session: Option<&master::Target>) -> Result<master::Target, u8> {
    let timeout = match (&cli.rpc_timeout, session) {
        (Some(t), _) => parse_timeout(t)?,
        (None, Some(s)) => s.timeout,
        (None, None) => parse_timeout(DEFAULT_RPC_TIMEOUT)?,
    };
    let addr = match master_addr_text(cli, session) {
        None => None,
        Some(raw) => match client::resolve(&raw, false) {
            Ok(a) => Some(a),
            Err(e @ client::ResolveError::Invalid { .. }) => {
                eprintln!("Error: {e}");
                return Err(master::USAGE);
            }
            Err(e) => {
                eprintln!("Error: {e}");
                return Err(master::FAIL);
            }
        },
    };
    Ok(master::Target { addr, timeout })
}

fn parse_timeout(t: &str) -> Result<Duration, u8> {
    match crate::config::source::parse_go_duration(t) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => {
            eprintln!("invalid --rpc-timeout {t:?}: want a Go duration such as 10m or 30s");
            Err(master::USAGE)
        }
    }
}

/// Runs a parsed command line and returns its exit code.
fn dispatch(cli: Cli, session: Option<&master::Target>) -> u8 {
    if cli.version {
        println!("{}", crate::version::banner());
        return master::OK;
    }
    if let Some(cipher) = &cli.decrypt {
        return secret::decrypt(cipher);
    }
    let t = match target(&cli, session) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if let Some(plain) = &cli.encrypt {
        return secret::encrypt(plain, &t);
    }
    match cli.command {
        Some(Command::Encrypt { plain_text }) => secret::encrypt(&plain_text, &t),
        Some(Command::Decrypt { cipher_text }) => secret::decrypt(&cipher_text),
        Some(Command::CheckTask(a)) => check::run(&a, &t),
        Some(Command::OperateSource(a)) => master::operate_source(&a, &t),
        Some(Command::StartTask(a)) => master::start_task(&a, &t),
        Some(Command::PauseTask(a)) => master::operate_task(crate::pb::TaskOp::Pause, &a, &t),
        Some(Command::ResumeTask(a)) => master::operate_task(crate::pb::TaskOp::Resume, &a, &t),
        Some(Command::StopTask(a)) => master::operate_task(crate::pb::TaskOp::Stop, &a, &t),
        Some(Command::UpdateTask(a)) => master::update_task(&a, &t),
        Some(Command::QueryStatus(a)) => master::query_status(&a, &t),
        Some(Command::GetConfig(a)) => configs::get_config(&a, false, &t),
        Some(Command::GetTaskConfig(a)) => configs::get_config(&a, true, &t),
        Some(Command::TransferSource(a)) => configs::transfer_source(&a, &t),
        Some(Command::ListMember(a)) => master::list_member(&a, &t),
        Some(Command::OfflineMember(a)) => master::offline_member(&a, &t),
        Some(Command::ShowDdlLocks(a)) => errors::show_ddl_locks(&a, &t),
        Some(Command::UnlockDdlLock(a)) => errors::unlock_ddl_lock(&a, &t),
        Some(Command::ShardDdlLock(a)) => errors::shard_ddl_lock(&a, &t),
        Some(Command::BreakDdlLock(a)) => errors::break_ddl_lock(&a, &t),
        Some(Command::HandleError(a)) => errors::handle_error(&a, &t),
        Some(Command::Binlog(a)) => errors::binlog(&a, &t),
        Some(Command::BinlogSchema(a)) => schema::binlog_schema(&a, &t),
        Some(Command::StartRelay(a)) => relay::start_stop(true, &a, &t),
        Some(Command::StopRelay(a)) => relay::start_stop(false, &a, &t),
        Some(Command::PauseRelay(a)) => relay::pause_resume(true, &a, &t),
        Some(Command::ResumeRelay(a)) => relay::pause_resume(false, &a, &t),
        Some(Command::PurgeRelay(a)) => relay::purge(&a, &t),
        Some(Command::SwitchRelayMaster(a)) => relay::switch_master(&a, &t),
        Some(Command::UpdateRelay(a)) => relay::update_relay(&a, &t),
        Some(Command::MigrateRelay(a)) => relay::migrate_relay(&a, &t),
        Some(Command::OperateSchema(a)) => schema::operate_schema(&a, &t),
        Some(Command::SqlSkip(a)) => errors::sql_op(errors::SqlOp::Skip, &a, &t),
        Some(Command::SqlReplace(a)) => errors::sql_op(errors::SqlOp::Replace, &a, &t),
        Some(Command::SqlInject(a)) => errors::sql_op(errors::SqlOp::Inject, &a, &t),
        Some(Command::QueryError(a)) => v1::query_error(&a, &t),
        Some(Command::RefreshWorkerTasks(a)) => v1::refresh_worker_tasks(&a, &t),
        Some(Command::UpdateMasterConfig(a)) => v1::update_master_config(&a, &t),
        Some(Command::GenerateTaskConfig(a)) => generate::run(&a, &t),
        Some(Command::Config(a)) => configs::config(&a, &t),
        Some(Command::Plan(a)) => reconcile::run_plan(&a, &t),
        Some(Command::Apply(a)) => reconcile::run_apply(&a, &t),
        Some(Command::Reconcile(a)) => reconcile::run_reconcile(&a, &t),
        None => {
            usage::out(&usage::help(&[]));
            master::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_has_a_dm_style_usage_line() {
        let cli = super::Cli::command();
        let missing: Vec<&str> = cli
            .get_subcommands()
            .filter(|c| c.get_overridden_usage().is_none())
            .map(|c| c.get_name())
            .collect();
        assert!(missing.is_empty(), "no override_usage: {missing:?}");
    }
}
