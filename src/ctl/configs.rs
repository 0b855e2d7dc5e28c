//! dmctl's config family and transfer-source, as DM v2+ has them.
//!
//! - `config task|source|master|worker NAME [--path FILE]` and DM's aliases `get-config TYPE
//!   NAME [--file FILE]` / `get-task-config NAME`: one `pb.Master` GetCfg each, printed as DM
//!   prints it (`{"result","msg","cfg"}`). With a file, the config is written there (0600) and
//!   `msg` says `write config to file FILE succeed`. Unknown names get DM's texts (`task not
//!   found`, `source not found`, `master not found`, `worker not found`). A task's and a
//!   source's password is `******` (the master never sends one); a master's config is its
//!   TOML, usable as `dm-master --config` (the secret key's path, never the key).
//! - `config export|import [-d DIR]` ([`super::export`]).
//! - `transfer-source SOURCE WORKER`: DM's TransferSource RPC (the master's checks:
//!   `src/master/sources.rs`).
//!
//! A wrong number of arguments prints the command's help (DM's usage), exit 2; `config` alone
//! or with an unknown word prints config's help with its `Available Commands`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::export::{self, DirArg};
use super::jsonpb;
use super::master::{FAIL, OK, Target, USAGE, write_private};
use crate::pb;

/// config's help: DM's layout (`Available Commands:`).
pub const CONFIG_HELP_TEMPLATE: &str = "{about-with-newline}\nUsage:\n  dmctl {usage}\n\nAvailable Commands:\n{subcommands}\n\nFlags:\n{options}\n\nUse \"dmctl config [command] --help\" for more information about a command.\n";

/// `config <command>`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub op: Option<ConfigOp>,
}

/// `config`'s commands (DM's words).
#[derive(Debug, clap::Subcommand)]
pub enum ConfigOp {
    /// manage or show task configs
    #[command(override_usage = "config task [task-name] [flags]")]
    Task(NameArgs),
    /// manage or show source config
    #[command(override_usage = "config source [source-name] [flags]")]
    Source(NameArgs),
    /// manage or show master configs
    #[command(override_usage = "config master [master-name] [flags]")]
    Master(NameArgs),
    /// manage or show worker configs
    #[command(override_usage = "config worker [worker-name] [flags]")]
    Worker(NameArgs),
    /// Export the configurations of sources and tasks (passwords as ${ENV} references).
    #[command(override_usage = "config export [-d directory]")]
    Export(DirArg),
    /// Import the configurations of sources and tasks: creates the sources, starts the tasks.
    #[command(override_usage = "config import [-d directory]")]
    Import(DirArg),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// `config task|source|master|worker NAME [--path FILE]`.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The task, source, master or worker name.
    #[arg(value_name = "name")]
    pub names: Vec<String>,
    /// Write the configuration to this file (0600) instead of printing it.
    #[arg(
        short = 'p',
        long = "path",
        visible_alias = "file",
        value_name = "filename"
    )]
    pub path: Option<PathBuf>,
}

/// `get-config <task | master | worker | source> <name> [--file filename]` (and
/// `get-task-config <name>`).
#[derive(Debug, clap::Args)]
pub struct GetConfigArgs {
    /// The config type (task, master, worker or source), then the name.
    #[arg(value_name = "type name")]
    pub args: Vec<String>,
    /// Write the configuration to this file (0600) instead of printing it.
    #[arg(short = 'f', long = "file", value_name = "filename")]
    pub file: Option<PathBuf>,
}

/// `transfer-source <source-id> <worker-id>`.
#[derive(Debug, clap::Args)]
pub struct TransferSourceArgs {
    /// The source, then the free worker to move it to.
    #[arg(value_name = "source-id worker-id")]
    pub args: Vec<String>,
}

/// The help of a (sub)command, by its path of names.
pub fn help_of(path: &[&str]) -> String {
    let mut cmd = super::Cli::command();
    for p in path {
        match cmd.find_subcommand(p) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    cmd.render_help().to_string()
}

/// Prints a command's help as DM's usage on a wrong command line; the exit code.
fn usage(path: &[&str]) -> u8 {
    println!("{}", help_of(path));
    USAGE
}

/// The `pb.CfgType` of a get-config type word.
pub fn cfg_type(word: &str) -> Option<pb::CfgType> {
    match word {
        "task" => Some(pb::CfgType::TaskType),
        "master" => Some(pb::CfgType::MasterType),
        "worker" => Some(pb::CfgType::WorkerType),
        "source" => Some(pb::CfgType::SourceType),
        _ => None,
    }
}

/// Runs `config`.
pub fn config(a: &ConfigArgs, t: &Target) -> u8 {
    let (tp, word, n) = match &a.op {
        None | Some(ConfigOp::Other(_)) => return usage(&["config"]),
        Some(ConfigOp::Export(d)) => return export::run_export(d, t),
        Some(ConfigOp::Import(d)) => return export::run_import(&d.dir, t),
        Some(ConfigOp::Task(n)) => (pb::CfgType::TaskType, "task", n),
        Some(ConfigOp::Source(n)) => (pb::CfgType::SourceType, "source", n),
        Some(ConfigOp::Master(n)) => (pb::CfgType::MasterType, "master", n),
        Some(ConfigOp::Worker(n)) => (pb::CfgType::WorkerType, "worker", n),
    };
    match n.names.as_slice() {
        [name] => show(tp, name, n.path.as_deref(), t),
        _ => usage(&["config", word]),
    }
}

/// Runs `get-config` (`task_alias`: called as `get-task-config`, whose one argument is a task).
pub fn get_config(a: &GetConfigArgs, task_alias: bool, t: &Target) -> u8 {
    let mut args = a.args.clone();
    if task_alias {
        args.insert(0, "task".into());
    }
    let [kind, name] = args.as_slice() else {
        return usage(&["get-config"]);
    };
    let Some(tp) = cfg_type(kind) else {
        println!("invalid config type '{kind}'");
        return USAGE;
    };
    show(tp, name, a.file.as_deref(), t)
}

/// One GetCfg, printed (or written to `file`) as DM does.
pub fn show(tp: pb::CfgType, name: &str, file: Option<&Path>, t: &Target) -> u8 {
    let req = pb::GetCfgRequest {
        r#type: tp as i32,
        name: name.to_string(),
        dmrs_compare_password: None,
    };
    let mut resp = match t.call(|mut c| async move { c.get_cfg(req).await }) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if resp.result
        && let Some(path) = file
    {
        if let Err(e) = write_private(path, resp.cfg.as_bytes()) {
            println!("can not write config to file {}: {e}", path.display());
            return FAIL;
        }
        resp.msg = format!("write config to file {} succeed", path.display());
        resp.cfg.clear();
    }
    println!("{}", jsonpb::print_response(&resp));
    if resp.result { OK } else { FAIL }
}

/// Runs `transfer-source`.
pub fn transfer_source(a: &TransferSourceArgs, t: &Target) -> u8 {
    let [source, worker] = a.args.as_slice() else {
        return usage(&["transfer-source"]);
    };
    let req = pb::TransferSourceRequest {
        source: source.clone(),
        worker: worker.clone(),
    };
    match t.call(|mut c| async move { c.transfer_source(req).await }) {
        Ok(resp) => {
            println!("{}", jsonpb::print_response(&resp));
            if resp.result { OK } else { FAIL }
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_words_map_to_dm_enums() {
        let cfgs = [
            ("task", Some(pb::CfgType::TaskType)),
            ("master", Some(pb::CfgType::MasterType)),
            ("worker", Some(pb::CfgType::WorkerType)),
            ("source", Some(pb::CfgType::SourceType)),
            ("subtask", None),
        ];
        for (w, want) in cfgs {
            assert_eq!(cfg_type(w), want, "{w}");
        }
    }

    #[test]
    fn help_is_dm_shaped() {
        let config = help_of(&["config"]);
        assert!(config.contains("Available Commands:"), "{config}");
        for (word, about) in [
            ("task", "manage or show task configs"),
            ("source", "manage or show source config"),
            ("master", "manage or show master configs"),
            ("worker", "manage or show worker configs"),
            ("export", "Export the configurations of sources and tasks"),
            ("import", "Import the configurations of sources and tasks"),
        ] {
            assert!(
                config
                    .lines()
                    .any(|l| l.trim_start().starts_with(word) && l.contains(about)),
                "{word}: {config}"
            );
        }
        assert!(help_of(&["get-config"]).contains(
            "get-config <task | master | worker | source> <name> [--file filename] [flags]"
        ));
        assert!(help_of(&["transfer-source"]).contains("transfer-source <source-id> <worker-id>"));
    }
}
