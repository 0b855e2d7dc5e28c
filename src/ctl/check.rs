//! `dmctl check-task`: offline validation of task files, or DM's precheck on the master.
//!
//! Called by [`super::dispatch`]. Files are always validated locally first; an invalid file is
//! reported as `file:line:col: [code=N] msg` (an unreadable one with DM's `error in get file
//! content`; online inside DM's `{"result": false, "msg": …}`) and never sent to the master.
//! Online, the master
//! answers as DM v8 does: `pre-check is passed. `, or DM's check result JSON (items with
//! `"state": "fail"` / `"warn"`, at most `-e` failures and `-w` warnings listed, the summary
//! counting all) after `fail to check synchronization configuration with type`, printed
//! unquoted. `--start-time` prechecks each source at the position of that time (the task's
//! `meta` is not needed then, as in DM).

use std::path::PathBuf;

use super::master::{self, FAIL, OK, Target};
use crate::config::{self, Kind};

/// Arguments of `check-task`.
#[derive(Debug, clap::Args)]
pub struct CheckTaskArgs {
    /// Validate the files here, with no master: DM's config checks, one line per error.
    #[arg(long)]
    pub offline: bool,
    /// Most errors the master's precheck lists (the summary counts them all).
    #[arg(
        short = 'e',
        long = "error",
        default_value_t = 10,
        value_name = "count"
    )]
    pub error_count: i64,
    /// Most warnings the master's precheck lists (the summary counts them all).
    #[arg(short = 'w', long = "warn", default_value_t = 10, value_name = "count")]
    pub warn_count: i64,
    /// Precheck as if the task started at this time: 'YYYY-MM-DD HH:MM:SS' (the upstream's
    /// time zone), `T` for the space, or with an offset ('…+08:00'); incremental tasks.
    #[arg(long = "start-time", value_name = "time")]
    pub start_time: Option<String>,
    /// Task files (source files are recognised and checked as such).
    #[arg(required = true, value_name = "CONFIG-FILE")]
    pub files: Vec<PathBuf>,
}

/// DM's text when a file sets `is-sharding` and `shard-mode` against each other.
pub const SHARDING_CONFLICT: &str = "The behaviour of `is-sharding` and `shard-mode` is conflicting. `is-sharding` is deprecated, please use `shard-mode` only.";

/// DM dmctl's check (start-task and check-task) of a task file's text: `is-sharding` written
/// (at the start of a line) as false with a `shard-mode`, or `shard-mode` written empty with
/// `is-sharding: true`. A file that is not YAML is left to the config checks.
pub fn sharding_conflict(text: &str) -> bool {
    let written = |k: &str| text.lines().any(|l| l.starts_with(k));
    let Ok(v) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return false;
    };
    let is_sharding = match v.get("is-sharding") {
        Some(serde_norway::Value::Bool(b)) => *b,
        Some(serde_norway::Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y")
        }
        _ => false,
    };
    let shard_mode = v.get("shard-mode").and_then(|m| m.as_str()).unwrap_or("");
    (written("is-sharding") && !is_sharding && !shard_mode.is_empty())
        || (written("shard-mode") && shard_mode.is_empty() && is_sharding)
}

/// Validates one file locally. Ok carries a one-line summary; Err the error line.
fn check_file(path: &std::path::Path, start_time: bool) -> Result<(String, Vec<String>), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: error in get file content: {e}", path.display()))?;
    let kind = config::detect_kind(&bytes);
    let load_task = if start_time {
        config::load_task_file_for_start_time
    } else {
        config::load_task_file
    };
    match kind {
        Kind::Source => config::load_source_file(path)
            .map(|l| (format!("source {:?}", l.config.source_id), l.warnings))
            .map_err(|e| e.to_string()),
        Kind::Task => load_task(path)
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
    if args.offline
        && let Some(t) = &args.start_time
        && let Err(e) = crate::master::start_time::parse(t)
    {
        println!("{e}");
        return FAIL;
    }
    for f in &args.files {
        if let Ok(text) = std::fs::read_to_string(f)
            && sharding_conflict(&text)
        {
            println!("{SHARDING_CONFLICT}");
            ok = false;
            continue;
        }
        match check_file(f, args.start_time.is_some()) {
            Ok((summary, warnings)) => {
                if args.offline {
                    println!("{}: ok: {summary}", f.display());
                    for w in warnings {
                        println!("{}: warning: {w}", f.display());
                    }
                }
                valid.push(f.clone());
            }
            Err(line) if args.offline => {
                ok = false;
                println!("{line}");
            }
            Err(line) => {
                // Online, DM's answer for a task that does not load: result false and why
                // (here with the file, line and column, found before anything is sent).
                ok = false;
                let resp = crate::pb::CheckTaskResponse {
                    result: false,
                    msg: line,
                };
                println!("{}", super::jsonpb::print_response(&resp));
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
            start_time: args.start_time.clone().unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::sharding_conflict;

    #[test]
    fn is_sharding_against_shard_mode() {
        let cases = [
            ("is-sharding: false\nshard-mode: \"pessimistic\"\n", true),
            ("is-sharding: true\nshard-mode: \"\"\n", true),
            ("is-sharding: true\nshard-mode: optimistic\n", false),
            ("is-sharding: true\n", false),
            ("shard-mode: pessimistic\n", false),
            ("is-sharding: false\n", false),
            // only keys at the start of a line count, as in DM
            ("x:\n  is-sharding: false\nshard-mode: pessimistic\n", false),
            ("not: [yaml\n", false),
        ];
        for (text, want) in cases {
            assert_eq!(sharding_conflict(text), want, "{text}");
        }
    }
}
