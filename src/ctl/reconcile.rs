//! dmctl's declarative commands: `plan DIR`, `apply DIR|PLANFILE`, `reconcile DIR`.
//!
//! Called by [`super::dispatch`]. They parse flags, call the reconciler
//! ([`crate::reconcile`]) and print its text or JSON; exit codes follow Terraform: `plan`
//! 0 = no changes (or changes without `--detailed-exitcode`), 2 = changes with
//! `--detailed-exitcode`, 1 = error (master unreachable, invalid file); `apply` 0 = everything
//! applied, 1 = any failure, refusal or invalid file (the valid tasks are still applied). They
//! read the live state before any step, so an unreachable master changes nothing; they never
//! print a password (plans carry sealed YAML only) and never exit the process themselves.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::master::{FAIL, OK, Target, USAGE};
use crate::reconcile::apply::{self, ApplyOptions};
use crate::reconcile::live::{self, MasterConn};
use crate::reconcile::output::{self, Style};
use crate::reconcile::watch::{self, WatchOptions};
use crate::reconcile::{desired, plan};

/// `plan` exit code with `--detailed-exitcode` when the plan has changes.
pub const CHANGES: u8 = 2;

/// The question `apply DIR` asks on a terminal.
pub const CONFIRM_PROMPT: &str = "Apply these changes? Only 'yes' will be accepted: ";

/// `plan DIR [--out FILE] [--detailed-exitcode] [--output text|json]`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The directory of task and source files (and reconcile.yaml).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Save the plan (versioned JSON) to FILE, for `apply FILE`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes (0 none, 1 error).
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,
    /// Output format.
    #[arg(long = "output", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Show the unchanged tasks too.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Plan a stop (restart, reset, removed source) even for a task waiting on a shard DDL lock.
    #[arg(long = "force")]
    pub force: bool,
}

/// `apply DIR|PLANFILE [--yes] [--output text|json] [--timeout 60s]`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A directory (plan, then apply) or a plan file saved by `plan --out`.
    #[arg(value_name = "DIR|PLANFILE")]
    pub target: PathBuf,
    /// Apply without asking for confirmation.
    #[arg(long = "yes", visible_alias = "auto-approve")]
    pub yes: bool,
    /// Output format.
    #[arg(long = "output", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// How long each step may take to reach its stage, a Go duration.
    #[arg(long = "timeout", value_name = "DURATION", default_value = "60s")]
    pub timeout: String,
    /// Show the unchanged tasks too.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Stop (restart, reset, removed source) even a task waiting on a shard DDL lock.
    #[arg(long = "force")]
    pub force: bool,
}

/// `reconcile DIR [--interval 30s] [--admin-addr 127.0.0.1:PORT] [--debounce 500ms]`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The directory of task and source files (and reconcile.yaml).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Resync period (catches drift), a Go duration.
    #[arg(long = "interval", value_name = "DURATION", default_value = "30s")]
    pub interval: String,
    /// Serve GET /metrics and GET /healthz on this address.
    #[arg(long = "admin-addr", value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,
    /// Quiet time after a file change before a round, a Go duration.
    #[arg(long = "debounce", value_name = "DURATION", default_value = "500ms")]
    pub debounce: String,
    /// How long each step may take to reach its stage, a Go duration.
    #[arg(long = "timeout", value_name = "DURATION", default_value = "60s")]
    pub timeout: String,
}

/// Parses a Go duration flag; zero is allowed only where `allow_zero`.
pub fn duration_flag(flag: &str, v: &str, allow_zero: bool) -> Result<Duration, String> {
    match crate::config::source::parse_go_duration(v) {
        Some(d) if allow_zero || !d.is_zero() => Ok(d),
        _ => Err(format!(
            "invalid --{flag} {v:?}: want a Go duration such as 30s, 500ms or 1m"
        )),
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
    t.require_addr()
}

fn check_dir(dir: &Path) -> Result<(), u8> {
    if dir.is_dir() {
        Ok(())
    } else {
        eprintln!("{}: not a directory of task files", dir.display());
        Err(FAIL)
    }
}

fn style(verbose: bool) -> Style {
    Style {
        color: std::io::stdout().is_terminal(),
        verbose,
    }
}

/// The exit code of `plan`.
pub fn plan_exit_code(has_errors: bool, has_changes: bool, detailed: bool) -> u8 {
    if has_errors {
        FAIL
    } else if detailed && has_changes {
        CHANGES
    } else {
        OK
    }
}

/// Runs `plan`.
pub fn run_plan(a: &PlanArgs, t: &Target) -> u8 {
    let addr = match addr_of(t) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if let Err(c) = check_dir(&a.dir) {
        return c;
    }
    let mut desired = desired::load_dir(&a.dir);
    desired.policy.force = a.force;
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    let passwords = live::desired_passwords(&desired);
    let fetched = match rt.block_on(async {
        let conn = MasterConn::connect(&addr, t.timeout).await?;
        live::fetch_with(&conn, &passwords).await
    }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return FAIL;
        }
    };
    for s in &fetched.unreachable_sources {
        eprintln!(
            "warning: the worker of source {s} did not answer query-status: its tasks are not in this plan's live state"
        );
    }
    let p = plan::plan(&desired, &fetched.state);
    if let Some(out) = &a.out
        && let Err(e) = super::master::write_private(out, output::plan_json(&p).as_bytes())
    {
        eprintln!("can not save the plan to {}: {e}", out.display());
        return FAIL;
    }
    if a.output == "json" {
        // The printed document also says how many master calls the live state took.
        let mut doc: serde_json::Value =
            serde_json::from_str(&output::plan_json(&p)).unwrap_or_default();
        if let Some(o) = doc.as_object_mut() {
            o.insert(
                "live_stats".into(),
                serde_json::json!({
                    "status_calls": fetched.stats.status_calls,
                    "source_calls": fetched.stats.source_calls,
                    "config_calls": fetched.stats.config_calls,
                }),
            );
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", output::plan_text(&p, style(a.verbose)));
        if let Some(out) = &a.out {
            println!(
                "\nSaved the plan to: {}\nTo apply exactly this plan: dmctl --master-addr {addr} apply {}",
                out.display(),
                out.display()
            );
        }
    }
    plan_exit_code(p.has_errors(), p.has_changes(), a.detailed_exitcode)
}

/// Asks for confirmation on the terminal; true only for "yes".
fn confirm() -> bool {
    print!("\n{CONFIRM_PROMPT}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => line.trim() == "yes",
        Err(_) => false,
    }
}

/// Runs `apply`.
pub fn run_apply(a: &ApplyArgs, t: &Target) -> u8 {
    let addr = match addr_of(t) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let step_timeout = match duration_flag("timeout", &a.timeout, false) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return USAGE;
        }
    };
    let mut opts = ApplyOptions {
        step_timeout,
        rpc_timeout: t.timeout,
        ..Default::default()
    };
    let json = a.output == "json";
    let st = style(a.verbose);
    let rt = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    if a.target.is_file() {
        let text = match std::fs::read_to_string(&a.target) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: can not read the plan: {e}", a.target.display());
                return FAIL;
            }
        };
        let p = match output::parse_saved_plan(&text) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", a.target.display());
                return FAIL;
            }
        };
        let report = rt.block_on(apply::apply_saved(&p, &addr, &opts));
        if json {
            println!("{}", output::apply_json(&report, Some(&p)));
        } else {
            print!("{}", output::apply_text(&report, st));
        }
        return if report.success() { OK } else { FAIL };
    }
    if let Err(c) = check_dir(&a.target) {
        return c;
    }
    let interactive = std::io::stdin().is_terminal();
    if !a.yes && !interactive {
        eprintln!(
            "apply {}: stdin is not a terminal, so the plan cannot be confirmed: pass --yes to apply without confirmation",
            a.target.display()
        );
        return FAIL;
    }
    let mut desired = desired::load_dir(&a.target);
    desired.policy.force = a.force;
    opts.max_lag = desired.policy.max_lag_before_stop;
    let passwords = live::desired_passwords(&desired);
    let conn_live = rt.block_on(async {
        let conn = MasterConn::connect(&addr, t.timeout).await?;
        let f = live::fetch_with(&conn, &passwords).await?;
        Ok::<_, live::LiveError>((conn, f))
    });
    let (conn, fetched) = match conn_live {
        Ok(x) => x,
        Err(e) => {
            if json {
                let report = apply::ApplyReport {
                    error: Some(e.to_string()),
                    errors: desired.errors.clone(),
                    ..Default::default()
                };
                println!("{}", output::apply_json(&report, None));
            } else {
                eprintln!("{e}");
                eprintln!("Nothing was applied.");
            }
            return FAIL;
        }
    };
    let p = plan::plan(&desired, &fetched.state);
    if !json {
        print!("{}", output::plan_text(&p, st));
    }
    if p.has_changes() && !a.yes && !confirm() {
        println!("Apply cancelled.");
        return FAIL;
    }
    let report = rt.block_on(apply::apply_with(&conn, &p, &opts));
    if json {
        println!("{}", output::apply_json(&report, Some(&p)));
    } else if p.has_changes() || !report.success() {
        println!();
        print!("{}", output::apply_text(&report, st));
    }
    if report.success() { OK } else { FAIL }
}

/// Runs `reconcile` until SIGINT/SIGTERM.
pub fn run_reconcile(a: &ReconcileArgs, t: &Target) -> u8 {
    let addr = match addr_of(t) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if let Err(c) = check_dir(&a.dir) {
        return c;
    }
    let parsed = (|| {
        Ok::<_, String>(WatchOptions {
            interval: duration_flag("interval", &a.interval, false)?,
            debounce: duration_flag("debounce", &a.debounce, true)?,
            step_timeout: duration_flag("timeout", &a.timeout, false)?,
            admin_addr: a.admin_addr.clone(),
            rpc_timeout: t.timeout.min(Duration::from_secs(60)),
        })
    })();
    let opts = match parsed {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return USAGE;
        }
    };
    crate::logging::init("info");
    match watch::run(&a.dir, &addr, opts) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("{e}");
            FAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let raw = std::iter::once("dmctl")
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect();
        Cli::try_parse_from(crate::ctl::args::normalize(raw)).map_err(|e| e.to_string())
    }

    #[test]
    fn plan_flags_parse_with_one_dash_or_two() {
        let cases: &[(&[&str], Option<&str>, bool, &str)] = &[
            (&["plan", "dir"], None, false, "text"),
            (
                &["plan", "dir", "-out", "p.json"],
                Some("p.json"),
                false,
                "text",
            ),
            (
                &["plan", "dir", "--out=p.json", "--detailed-exitcode"],
                Some("p.json"),
                true,
                "text",
            ),
            (
                &["plan", "-detailed-exitcode", "-output", "json", "dir"],
                None,
                true,
                "json",
            ),
            (
                &["--master-addr", "x:1", "plan", "dir", "--output", "json"],
                None,
                false,
                "json",
            ),
        ];
        for (args, out, detailed, output) in cases {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Some(Command::Plan(p)) = cli.command else {
                panic!("{args:?}: not plan")
            };
            assert_eq!(p.dir, PathBuf::from("dir"), "{args:?}");
            assert_eq!(p.out.as_deref(), out.map(Path::new), "{args:?}");
            assert_eq!(p.detailed_exitcode, *detailed, "{args:?}");
            assert_eq!(p.output, *output, "{args:?}");
        }
        assert!(parse(&["plan", "dir", "--output", "yaml"]).is_err());
        assert!(parse(&["plan"]).is_err());
    }

    #[test]
    fn apply_and_reconcile_flags_parse() {
        let cli = parse(&[
            "apply",
            "p.json",
            "--yes",
            "--timeout",
            "5s",
            "-output",
            "json",
        ])
        .unwrap();
        let Some(Command::Apply(a)) = cli.command else {
            panic!("not apply")
        };
        assert!(a.yes);
        assert_eq!(a.timeout, "5s");
        assert_eq!(a.output, "json");
        let cli = parse(&["apply", "dir", "--auto-approve"]).unwrap();
        let Some(Command::Apply(a)) = cli.command else {
            panic!("not apply")
        };
        assert!(a.yes);
        assert_eq!(a.timeout, "60s");
        let cli = parse(&[
            "reconcile",
            "dir",
            "--interval",
            "10s",
            "--admin-addr",
            "127.0.0.1:9",
            "-debounce",
            "100ms",
        ])
        .unwrap();
        let Some(Command::Reconcile(r)) = cli.command else {
            panic!("not reconcile")
        };
        assert_eq!(r.interval, "10s");
        assert_eq!(r.debounce, "100ms");
        assert_eq!(r.admin_addr.as_deref(), Some("127.0.0.1:9"));
    }

    #[test]
    fn durations_and_exit_codes() {
        let cases = [
            ("30s", false, Ok(Duration::from_secs(30))),
            ("500ms", false, Ok(Duration::from_millis(500))),
            ("0s", true, Ok(Duration::ZERO)),
            ("0s", false, Err(())),
            ("soon", false, Err(())),
        ];
        for (v, zero, want) in cases {
            assert_eq!(duration_flag("x", v, zero).map_err(|_| ()), want, "{v}");
        }
        let codes = [
            (false, false, false, OK),
            (false, true, false, OK),
            (false, true, true, CHANGES),
            (false, false, true, OK),
            (true, true, true, FAIL),
            (true, false, false, FAIL),
        ];
        for (errors, changes, detailed, want) in codes {
            assert_eq!(plan_exit_code(errors, changes, detailed), want);
        }
    }
}
