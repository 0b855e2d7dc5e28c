//! dmctl's help, usage and argument-error texts as DM prints them (cobra's templates), made
//! from the clap definitions of [`super::Cli`].
//!
//! A command's usage is DM's `Use:` string (the clap `override_usage`) in cobra's block:
//!
//! ```text
//! Usage:
//!   dmctl pause-task [-s source ...] [task-name | task-file] [flags]
//!
//! Flags:
//!       --batch-size int   … (default 5)
//!   -h, --help             help for pause-task
//!
//! Global Flags:
//!       --master-addr string   …
//! ```
//!
//! printed on stdout when a command's arguments are wrong, followed by DM's
//! `Error: please check output to see error` ([`usage_error`]); `dmctl help CMD` and
//! `CMD --help` print the command's description above the same block (plus an `Arguments:`
//! section naming the positionals, which cobra does not have). Clap's parse errors become DM's
//! texts ([`report_clap_error`]): `unknown command "x" for "dmctl"` with `Run 'dmctl --help'
//! for usage.`, `unknown flag: --x`, `flag needs an argument: --x`, and the usage block for a
//! wrong number of arguments. Called by [`super::run`] and by the commands' own argument
//! checks; never exits the process.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use super::master::{OK, USAGE};

/// What a command line names: the command path (`["shard-ddl-lock", "unlock"]`), or a help
/// topic (`dmctl help <path>`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub path: Vec<String>,
    pub help_topic: bool,
}

/// The clap definition of dmctl.
fn root() -> Command {
    <super::Cli as clap::CommandFactory>::command()
}

/// Whether `arg` (a flag of `cmd` or a global one of `root`) takes a value in the next word.
fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn find_flag<'a>(cmds: &[&'a Command], word: &str) -> Option<&'a Arg> {
    let (long, short) = if let Some(l) = word.strip_prefix("--") {
        (Some(l.split('=').next().unwrap_or(l)), None)
    } else {
        (None, word.strip_prefix('-').and_then(|s| s.chars().next()))
    };
    cmds.iter().flat_map(|c| c.get_arguments()).find(|a| {
        long.is_some_and(|l| {
            a.get_long() == Some(l) || a.get_all_aliases().is_some_and(|v| v.contains(&l))
        }) || short.is_some_and(|s| {
            a.get_short() == Some(s) || a.get_all_short_aliases().is_some_and(|v| v.contains(&s))
        })
    })
}

/// The command path a (normalised) command line names; the program name comes first.
pub fn named(args: &[String]) -> Named {
    let root = root();
    let mut cur = &root;
    let mut out = Named::default();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            let attached = a.contains('=') || (!a.starts_with("--") && a.chars().count() > 2);
            let value_next = !attached && find_flag(&[cur, &root], a).is_some_and(takes_value);
            i += if value_next { 2 } else { 1 };
            continue;
        }
        if out.path.is_empty() && !out.help_topic && a == "help" {
            out.help_topic = true;
            i += 1;
            continue;
        }
        match cur.find_subcommand(a) {
            Some(sub) => {
                out.path.push(sub.get_name().to_string());
                cur = sub;
            }
            None if out.help_topic => {
                out.path.push(a.clone());
                break;
            }
            None => break,
        }
        i += 1;
    }
    out
}

/// The subcommand at `path`, if every word names one.
fn lookup<'a>(root: &'a Command, path: &[String]) -> Option<&'a Command> {
    let mut cur = root;
    for w in path {
        cur = cur.find_subcommand(w)?;
    }
    Some(cur)
}

/// pflag's type word for a flag's value (`string`, `strings`, `int`), empty for a switch.
fn varname(arg: &Arg) -> &'static str {
    if !takes_value(arg) {
        return "";
    }
    let t = arg.get_value_parser().type_id();
    let int = [
        std::any::TypeId::of::<i64>(),
        std::any::TypeId::of::<u64>(),
        std::any::TypeId::of::<i32>(),
        std::any::TypeId::of::<u32>(),
        std::any::TypeId::of::<usize>(),
        std::any::TypeId::of::<u16>(),
    ];
    let is_int = int.iter().any(|i| t == *i);
    match (matches!(arg.get_action(), ArgAction::Append), is_int) {
        (true, true) => "ints",
        (true, false) => "strings",
        (false, true) => "int",
        (false, false) => "string",
    }
}

/// One flag line's left part (`  -s, --source strings`) and its text.
fn flag_line(arg: &Arg) -> (String, String) {
    let mut left = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("  -{s}, --{l}"),
        (None, Some(l)) => format!("      --{l}"),
        (Some(s), None) => format!("  -{s}"),
        (None, None) => format!("      {}", arg.get_id()),
    };
    let v = varname(arg);
    if !v.is_empty() {
        left.push(' ');
        left.push_str(v);
    }
    let mut text = arg
        .get_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string();
    if !text.is_empty() {
        text.push('.');
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().to_string())
        .collect();
    if takes_value(arg) && !defaults.is_empty() && defaults.iter().any(|d| !d.is_empty()) {
        let d = defaults.join(",");
        if v == "string" {
            text.push_str(&format!(" (default {d:?})"));
        } else {
            text.push_str(&format!(" (default {d})"));
        }
    }
    (left, text)
}

/// pflag's flag table: lines sorted by name, texts aligned three spaces after the widest.
fn flag_table(lines: &mut [(String, String, String)]) -> String {
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let width = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(_, left, text)| format!("{left:<width$}   {text}").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn sort_key(arg: &Arg) -> String {
    arg.get_long()
        .map(str::to_string)
        .or_else(|| arg.get_short().map(|c| c.to_string()))
        .unwrap_or_else(|| arg.get_id().to_string())
}

fn visible_flags(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_positional() && !a.is_hide_set() && a.get_id() != "help" && !a.is_global_set()
    })
}

/// `dmctl a b` for a path.
fn command_path(path: &[String]) -> String {
    std::iter::once("dmctl".to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the command does something by itself (cobra's `Runnable`): a leaf, or a parent
/// whose subcommand is optional.
fn runnable(cmd: &Command) -> bool {
    !cmd.has_subcommands() || !cmd.is_subcommand_required_set()
}

/// DM's `Use:` line(s) for `cmd` at `path`: `dmctl <use> [flags]`.
fn use_lines(cmd: &Command, path: &[String]) -> Vec<String> {
    let parent = command_path(&path[..path.len().saturating_sub(1)]);
    let usage = cmd
        .get_overridden_usage()
        .map(|u| u.to_string())
        .unwrap_or_else(|| path.join(" "));
    let full = path.join(" ");
    // a nested command's Use may already name its parents (`binlog skip <task-name> ...`)
    let mut lines: Vec<String> = usage
        .lines()
        .map(|l| {
            let l = l.trim();
            if path.len() > 1 && l.starts_with(&full) {
                format!("dmctl {l}")
            } else {
                format!("{parent} {l}")
            }
        })
        .collect();
    if let Some(first) = lines.first_mut()
        && !first.contains("[flags]")
    {
        first.push_str(" [flags]");
    }
    lines
}

/// Cobra's `Available Commands:` table.
fn command_table(cmd: &Command, with_help: bool) -> String {
    let mut rows: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| {
            (
                c.get_name().to_string(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    if with_help {
        rows.push(("help".into(), "Gets help about any command".into()));
    }
    rows.sort();
    let pad = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(11);
    rows.iter()
        .map(|(n, a)| format!("  {n:<pad$} {a}").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cobra's usage block for the command at `path` (empty: the root).
fn usage_block(root: &Command, cmd: &Command, path: &[String]) -> String {
    let name = command_path(path);
    let mut s = String::from("Usage:");
    if path.is_empty() {
        s.push_str("\n  dmctl [flags]");
    } else if runnable(cmd) {
        for l in use_lines(cmd, path) {
            s.push_str("\n  ");
            s.push_str(&l);
        }
    }
    if cmd.has_subcommands() {
        s.push_str(&format!("\n  {name} [command]"));
    }
    if cmd.has_subcommands() {
        s.push_str("\n\nAvailable Commands:\n");
        s.push_str(&command_table(cmd, path.is_empty()));
    }
    let leaf = path.last().map(String::as_str).unwrap_or("dmctl");
    let mut local: Vec<(String, String, String)> = visible_flags(cmd)
        .map(|a| {
            let (l, t) = flag_line(a);
            (sort_key(a), l, t)
        })
        .collect();
    local.push((
        "help".into(),
        "  -h, --help".into(),
        format!("help for {leaf}"),
    ));
    let mut global: Vec<(String, String, String)> = root
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
        .map(|a| {
            let (l, t) = flag_line(a);
            (sort_key(a), l, t)
        })
        .collect();
    if path.is_empty() {
        local.append(&mut global);
    }
    s.push_str("\n\nFlags:\n");
    s.push_str(&flag_table(&mut local));
    if !global.is_empty() {
        s.push_str("\n\nGlobal Flags:\n");
        s.push_str(&flag_table(&mut global));
    }
    if cmd.has_subcommands() {
        s.push_str(&format!(
            "\n\nUse \"{name} [command] --help\" for more information about a command."
        ));
    }
    s
}

/// The positionals of `cmd` with their descriptions (dm-rs's addition to cobra's help).
fn arguments_block(cmd: &Command) -> Option<String> {
    let rows: Vec<(String, String)> = cmd
        .get_arguments()
        .filter(|a| a.is_positional() && !a.is_hide_set())
        .filter_map(|a| {
            let help = a.get_long_help().or(a.get_help())?.to_string();
            let name = a
                .get_value_names()
                .map(|v| {
                    v.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| a.get_id().to_string());
            Some((format!("  {name}"), help.replace('\n', " ")))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    Some(format!(
        "Arguments:\n{}",
        rows.iter()
            .map(|(n, h)| format!("{n:<width$}   {h}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// DM's usage text for the command at `path` (cobra's `UsageString`).
pub fn usage(path: &[String]) -> String {
    let root = root();
    match lookup(&root, path) {
        Some(cmd) => usage_block(&root, cmd, path),
        None => usage_block(&root, &root, &[]),
    }
}

/// DM's help text for the command at `path`: its description, then its usage.
pub fn help(path: &[String]) -> String {
    let root = root();
    let Some(cmd) = lookup(&root, path) else {
        return usage_block(&root, &root, &[]);
    };
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut s = String::new();
    if !about.trim().is_empty() {
        s.push_str(about.trim_end());
        s.push_str("\n\n");
    }
    let block = usage_block(&root, cmd, path);
    match (path.is_empty(), arguments_block(cmd)) {
        (false, Some(args)) => {
            // after the Usage lines, before Flags
            match block.find("\n\n") {
                Some(at) => {
                    s.push_str(&block[..at]);
                    s.push_str("\n\n");
                    s.push_str(&args);
                    s.push_str(&block[at..]);
                }
                None => s.push_str(&block),
            }
        }
        _ => s.push_str(&block),
    }
    if path.is_empty()
        && let Some(after) = root.get_after_help()
        && let Some(at) = s.rfind("\n\nUse \"")
    {
        // dm-rs's notes on the root, before cobra's closing line
        s.insert_str(at, &format!("\n\n{}", after.to_string().trim_end()));
    }
    s
}

/// Prints the usage of the command at `path` as DM does when its arguments are wrong: the
/// usage block on stdout, `Error: please check output to see error` on stderr. Returns
/// [`USAGE`].
pub fn usage_error(path: &[&str]) -> u8 {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    out(&usage(&path));
    eprintln!("Error: please check output to see error");
    USAGE
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Clap's own message, first paragraph, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let end = ["\n\nUsage:", "\n\nFor more information", "\nUsage:"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    text[..end].trim_end().to_string()
}

/// Prints text and a newline on stdout; a closed stdout (`dmctl help | head`) is not an error.
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{text}");
}

/// DM's answer to `help` with a word that names no command, with the root usage.
fn unknown_help_topic(path: &[String]) -> u8 {
    let topic: Vec<String> = path.iter().map(|w| format!("`{w}`")).collect();
    out(&format!("Unknown help topic [{}]", topic.join(" ")));
    out(&usage(&[]));
    USAGE
}

/// Levenshtein distance (cobra's `ld`, case-insensitive).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The commands under `path` cobra would suggest for `word`: at most two edits away, or
/// starting with it.
pub fn suggestions(word: &str, path: &[String]) -> Vec<String> {
    let root = root();
    let Some(cmd) = lookup(&root, path) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .filter(|n| distance(word, n) <= 2 || n.to_lowercase().starts_with(&word.to_lowercase()))
        .collect();
    if path.is_empty() && (distance(word, "help") <= 2 || "help".starts_with(&word.to_lowercase()))
    {
        names.push("help".into());
    }
    names
}

/// DM's (cobra's) unknown command error, with its suggestions, on stderr.
fn unknown_command(word: &str, path: &[String]) {
    let parent = command_path(path);
    let mut msg = format!("Error: unknown command {word:?} for {parent:?}");
    let s = suggestions(word, path);
    if !s.is_empty() {
        msg.push_str("\n\nDid you mean this?\n");
        for n in s {
            msg.push_str(&format!("\t{n}\n"));
        }
    }
    eprintln!("{msg}");
    eprintln!("Run '{parent} --help' for usage.");
}

/// Prints a clap parse error of the (normalised) command line `args` as DM prints the
/// corresponding cobra/pflag error, and returns the exit code (help: [`OK`]).
pub fn report_clap_error(e: &clap::Error, args: &[String]) -> u8 {
    let named = named(args);
    let path = &named.path;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            if named.help_topic && lookup(&root(), path).is_none() {
                return unknown_help_topic(path);
            }
            out(&help(path));
            OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            out(&help(path));
            USAGE
        }
        ErrorKind::InvalidSubcommand => {
            if named.help_topic {
                return unknown_help_topic(path);
            }
            let word = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            unknown_command(&word, path);
            USAGE
        }
        ErrorKind::UnknownArgument => {
            let arg = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            if let Some(long) = arg.strip_prefix("--") {
                eprintln!(
                    "Error: unknown flag: --{}",
                    long.split('=').next().unwrap_or(long)
                );
            } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                let c = short.chars().next().unwrap_or('-');
                eprintln!("Error: unknown shorthand flag: '{c}' in {arg}");
            } else if path.is_empty() {
                // a stray word before any command: DM's unknown command
                unknown_command(&arg, path);
            } else {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                return usage_error(&p);
            }
            USAGE
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooManyValues
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues
            if !path.is_empty() =>
        {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            usage_error(&p)
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            let flag = arg.split_whitespace().next().unwrap_or(&arg).to_string();
            let value = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                eprintln!("Error: flag needs an argument: {flag}");
                return USAGE;
            }
            // pflag's form: invalid argument "x" for "-e, --error" flag: why
            let root = root();
            let cmd = lookup(&root, path).unwrap_or(&root);
            let shown = match find_flag(&[cmd, &root], &flag) {
                Some(a) if flag.starts_with('-') => flag_line(a)
                    .0
                    .split_whitespace()
                    .take_while(|w| w.starts_with('-'))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => flag.clone(),
            };
            let why = match e.kind() {
                ErrorKind::ValueValidation => std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| clap_message(e)),
                _ => match e.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(v)) => {
                        format!("must be one of {}", v.join(", "))
                    }
                    _ => clap_message(e),
                },
            };
            if shown.starts_with('-') {
                eprintln!("Error: invalid argument {value:?} for {shown:?} flag: {why}");
            } else {
                eprintln!("Error: invalid argument {value:?} for {shown}: {why}");
            }
            USAGE
        }
        _ => {
            eprintln!("Error: {}", clap_message(e));
            USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_path_skips_flags_and_their_values() {
        let cases: &[(&[&str], &[&str], bool)] = &[
            (
                &["dmctl", "pause-task", "-s", "a", "t"],
                &["pause-task"],
                false,
            ),
            (
                &[
                    "dmctl",
                    "--master-addr",
                    "x:1",
                    "shard-ddl-lock",
                    "unlock",
                    "id",
                ],
                &["shard-ddl-lock", "unlock"],
                false,
            ),
            (
                &["dmctl", "--rpc-timeout=5s", "query-status"],
                &["query-status"],
                false,
            ),
            (&["dmctl", "help", "start-task"], &["start-task"], true),
            (&["dmctl", "help", "nosuch"], &["nosuch"], true),
            (&["dmctl", "nosuch", "start-task"], &[], false),
            (&["dmctl"], &[], false),
        ];
        for (args, path, topic) in cases {
            let n = named(&v(args));
            assert_eq!(n.path, v(path), "{args:?}");
            assert_eq!(n.help_topic, *topic, "{args:?}");
        }
    }

    #[test]
    fn usage_is_cobras_block_with_dms_use_line() {
        let u = usage(&v(&["pause-task"]));
        assert!(
            u.starts_with(
                "Usage:\n  dmctl pause-task [-s source ...] [task-name | task-file] [flags]\n\nFlags:\n"
            ),
            "{u}"
        );
        assert!(u.contains("\n  -h, --help "), "{u}");
        assert!(u.contains("help for pause-task"), "{u}");
        assert!(u.contains("--batch-size int"), "{u}");
        assert!(u.contains("(default 5)"), "{u}");
        assert!(u.contains("  -s, --source strings   "), "{u}");
        assert!(
            u.contains("\n\nGlobal Flags:\n      --master-addr string"),
            "{u}"
        );
        // a parent with an optional subcommand shows both forms and its subcommands
        let u = usage(&v(&["shard-ddl-lock"]));
        assert!(
            u.contains("\n  dmctl shard-ddl-lock [task] [flags]\n"),
            "{u}"
        );
        assert!(u.contains("\n  dmctl shard-ddl-lock [command]\n"), "{u}");
        assert!(u.contains("Available Commands:\n  unlock "), "{u}");
        assert!(u.ends_with(
            "Use \"dmctl shard-ddl-lock [command] --help\" for more information about a command."
        ));
        let u = usage(&v(&["binlog", "skip"]));
        assert!(
            u.starts_with("Usage:\n  dmctl binlog skip <task-name> "),
            "{u}"
        );
        let u = usage(&v(&["shard-ddl-lock", "unlock"]));
        assert!(
            u.starts_with("Usage:\n  dmctl shard-ddl-lock unlock <lock-id>"),
            "{u}"
        );
    }

    #[test]
    fn flag_texts_line_up_three_spaces_after_the_widest() {
        let u = usage(&v(&["purge-relay"]));
        let flags: Vec<&str> = u
            .split("Flags:\n")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .collect();
        let cols: Vec<usize> = flags
            .iter()
            .map(|l| {
                let start = l.len() - l.trim_start().len();
                let gap = l[start..].find("   ").unwrap() + start;
                gap + l[gap..].len() - l[gap..].trim_start().len()
            })
            .collect();
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{flags:#?}");
    }

    #[test]
    fn unknown_commands_get_cobras_suggestions() {
        let s = suggestions("stat-task", &[]);
        assert!(s.contains(&"start-task".to_string()) && s.contains(&"stop-task".to_string()));
        assert!(!s.contains(&"update-task".to_string()), "{s:?}");
        assert_eq!(suggestions("any", &[]), Vec::<String>::new());
        let mut s = suggestions("query", &[]);
        s.sort();
        assert_eq!(s, ["query-error", "query-status"]);
        assert_eq!(suggestions("hepl", &[]), ["help"]);
    }

    #[test]
    fn root_help_lists_every_command_and_help() {
        let h = help(&[]);
        assert!(
            h.contains("\nUsage:\n  dmctl [flags]\n  dmctl [command]\n"),
            "{h}"
        );
        for c in root().get_subcommands().filter(|c| !c.is_hide_set()) {
            assert!(
                h.contains(&format!("\n  {} ", c.get_name())),
                "{}",
                c.get_name()
            );
        }
        assert!(
            h.contains("\n  help        Gets help about any command") || h.contains("\n  help ")
        );
        assert!(h.contains("Use \"dmctl [command] --help\" for more information about a command."));
    }
}
