//! `dmctl check-task`: offline validation of task files, or DM's precheck on the master.
//!
//! Called by [`super::dispatch`]. Files are always validated locally first; an invalid file is
//! reported as `file:line:col: [code=N] msg` (an unreadable one with DM's `error in get file
//! content`) and never sent to the master.

use std::path::PathBuf;

use super::master::{self, FAIL, OK, Target};
use crate::config::{self, Kind};

/// Arguments of `check-task`.
#[derive(Debug, clap::Args)]
pub struct CheckTaskArgs {
    /// Validate the files here, with no master: DM's config checks, one line per error.
    #[arg(long)]
    pub offline: bool,
    /// Most errors the master's precheck reports (online mode).
    #[arg(
        short = 'e',
        long = "error",
        default_value_t = 10,
        value_name = "count"
    )]
    pub error_count: i64,
    /// Most warnings the master's precheck reports (online mode).
    #[arg(long = "warn", default_value_t = 10, value_name = "count")]
    pub warn_count: i64,
    /// Task files (source files are recognised and checked as such).
    #[arg(required = true, value_name = "CONFIG-FILE")]
    pub files: Vec<PathBuf>,
}

/// Validates one file locally. Ok carries a one-line summary; Err the error line.
fn check_file(path: &std::path::Path) -> Result<(String, Vec<String>), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: error in get file content: {e}", path.display()))?;
    let kind = config::detect_kind(&bytes);
    match kind {
        Kind::Source => config::load_source_file(path)
            .map(|l| (format!("source {:?}", l.config.source_id), l.warnings))
            .map_err(|e| e.to_string()),
        Kind::Task => config::load_task_file(path)
            .map(|l| {
                let sources: Vec<&str> =
                    l.config.instances().map(|i| i.source_id.as_str()).collect();
                (
                    format!(
                        "task {:?} ({}, sources: {})",
                        l.config.name,
                        l.config.task_mode,
                        sources.join(", ")
                    ),
                    l.warnings,
                )
            })
            .map_err(|e| e.to_string()),
    }
}

/// Runs `check-task`. Offline: exit 0 when every file is valid, 1 otherwise. Online: the
/// master's answer for each file, exit 0 when every one passed.
pub fn run(args: &CheckTaskArgs, target: &Target) -> u8 {
    let mut ok = true;
    let mut valid = Vec::new();
    for f in &args.files {
        match check_file(f) {
            Ok((summary, warnings)) => {
                if args.offline {
                    println!("{}: ok: {summary}", f.display());
                    for w in warnings {
                        println!("{}: warning: {w}", f.display());
                    }
                }
                valid.push(f.clone());
            }
            Err(line) => {
                ok = false;
                println!("{line}");
            }
        }
    }
    if args.offline || !ok {
        return if ok { OK } else { FAIL };
    }
    if target.addr.is_none() {
        eprintln!(
            "check-task needs --master-addr for the master's precheck, or --offline to validate the files only"
        );
        return FAIL;
    }
    let mut all_passed = true;
    for f in valid {
        let task = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                println!("{}: {e}", f.display());
                all_passed = false;
                continue;
            }
        };
        let req = crate::pb::CheckTaskRequest {
            task,
            err_cnt: args.error_count,
            warn_cnt: args.warn_count,
            start_time: String::new(),
        };
        match target.call(|mut c| async move { c.check_task(req).await }) {
            Ok(resp) => {
                let code =
                    master::print_with_check_msg(&resp, &resp.msg, resp.result, |r, m| r.msg = m);
                all_passed &= code == OK;
            }
            Err(code) => return code,
        }
    }
    if all_passed { OK } else { FAIL }
}
