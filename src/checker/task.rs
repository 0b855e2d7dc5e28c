//! What the precheck needs to know about a task, per source: which items its task mode asks for
//! (DM: `full` skips the binlog items and the replication privilege, `incremental` the dump
//! items), how its dump keeps the snapshot consistent (the mydumper `extra-args`'
//! `--consistency`, which decides between RELOAD and LOCK TABLES), how many connections the dump
//! and the load open, which tables it migrates (the instance's block-allow-list, also for
//! `binlog_db`), and the meta position `meta_position` checks.
//!
//! Built by [`super::live`] from a canonical [`TaskConfig`] and evaluated by [`super::items`].
//! Pure: no I/O, never fails — a setting it cannot read falls back to DM's default.

use crate::config::task::{MySqlInstance, TaskConfig};
use crate::rules::TableRules;

use super::items::names;

/// dumpling's `--consistency`: how the dump makes its connections see one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// The default: `flush` on MySQL and MariaDB.
    Auto,
    /// `FLUSH TABLES WITH READ LOCK` (or MariaDB's backup stage lock): needs RELOAD.
    Flush,
    /// `LOCK TABLES … READ` over the dumped tables: needs LOCK TABLES on them.
    Lock,
    /// TiDB only.
    Snapshot,
    /// No lock at all (the snapshot may trail the recorded position; sync's safe mode covers it).
    None,
}

impl Consistency {
    /// The value of `--consistency` in a mydumper `extra-args` string (`--consistency lock`,
    /// `--consistency=none`; `--no-locks` means none, as DM maps it). Absent or unknown → auto.
    pub fn from_extra_args(extra_args: &str) -> Consistency {
        let words = split_args(extra_args);
        let mut out = Consistency::Auto;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let value = if let Some(v) = w.strip_prefix("--consistency=") {
                Some(v.to_string())
            } else if w == "--consistency" {
                i += 1;
                words.get(i).cloned()
            } else if w == "--no-locks" {
                Some("none".to_string())
            } else {
                None
            };
            if let Some(v) = value {
                out = match v.to_ascii_lowercase().as_str() {
                    "flush" => Consistency::Flush,
                    "lock" => Consistency::Lock,
                    "snapshot" => Consistency::Snapshot,
                    "none" => Consistency::None,
                    _ => Consistency::Auto,
                };
            }
            i += 1;
        }
        out
    }

    /// The privileges beside SELECT that this consistency needs on MariaDB/MySQL.
    pub fn lock_privilege(self) -> Option<&'static str> {
        match self {
            Consistency::Auto | Consistency::Flush => Some("RELOAD"),
            Consistency::Lock => Some("LOCK TABLES"),
            Consistency::Snapshot | Consistency::None => None,
        }
    }
}

/// `-t N` / `--threads N` / `--threads=N` in `extra-args` (overrides `threads`).
fn threads_from_extra_args(extra_args: &str) -> Option<i64> {
    let words = split_args(extra_args);
    let mut out = None;
    for (i, w) in words.iter().enumerate() {
        let v = if let Some(v) = w.strip_prefix("--threads=") {
            Some(v.to_string())
        } else if w == "-t" || w == "--threads" {
            words.get(i + 1).cloned()
        } else {
            None
        };
        if let Some(n) = v.and_then(|v| v.parse::<i64>().ok()) {
            out = Some(n);
        }
    }
    out
}

/// DM's split of `extra-args`: one pair of surrounding quotes trimmed, then whitespace.
fn split_args(extra_args: &str) -> Vec<String> {
    let s = extra_args.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(s);
    s.split_whitespace().map(str::to_string).collect()
}

/// The dump's part of one source's precheck.
#[derive(Debug, Clone)]
pub struct DumpPlan {
    pub consistency: Consistency,
    /// Dump connections (`threads`, or `-t` in extra-args); the dump opens two more.
    pub threads: u64,
    /// The instance's rules: which upstream tables the dump takes. `None` when they could not
    /// be built (then every non-system table counts).
    pub rules: Option<TableRules>,
}

/// One source's precheck: the items to run and what they need.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// DM item names, in report order.
    pub items: Vec<&'static str>,
    /// Set when the task mode dumps (`full`, `all`) and the task is known.
    pub dump: Option<DumpPlan>,
    /// The instance's rules, for `binlog_db` (the databases it migrates).
    pub rules: Option<TableRules>,
    /// The `meta` position `meta_position` checks (incremental, `binlog-name` set).
    pub meta: Option<(String, u64)>,
    /// The task's `case-sensitive` (`binlog_db` compares names with it).
    pub case_sensitive: bool,
}

fn dumps(task_mode: &str) -> bool {
    !task_mode.trim().eq_ignore_ascii_case("incremental")
}

fn syncs(task_mode: &str) -> bool {
    !task_mode.trim().eq_ignore_ascii_case("full")
}

/// Which source items a task mode needs, without knowing the task (no table or connection
/// items: they need the task's dump settings).
pub fn source_items(task_mode: &str) -> Vec<&'static str> {
    let mut v = vec![names::VERSION];
    if dumps(task_mode) {
        v.push(names::DUMP_PRIVILEGE);
    }
    if syncs(task_mode) {
        v.extend([
            names::SERVER_ID,
            names::BINLOG_ENABLE,
            names::BINLOG_FORMAT,
            names::BINLOG_ROW_IMAGE,
            names::BINLOG_ROW_METADATA,
            names::REPLICATION_PRIVILEGE,
        ]);
    }
    v
}

fn is_ignored(ignore: &[String], name: &str) -> bool {
    ignore.iter().any(|i| i == "all" || i == name)
}

impl SourcePlan {
    /// The items of a task mode without the task itself (`check_source`'s plan).
    pub fn for_mode(task_mode: &str, ignore: &[String]) -> SourcePlan {
        SourcePlan {
            items: source_items(task_mode)
                .into_iter()
                .filter(|n| !is_ignored(ignore, n))
                .collect(),
            dump: None,
            rules: None,
            meta: None,
            case_sensitive: false,
        }
    }

    /// The plan for `source_id` of a canonical task: for `full`/`all` also `table_schema`
    /// (tables without a primary or unique key) and `conn_number` (the dump's connections), and
    /// the dump privileges measured against the instance's tables and consistency.
    ///
    /// With a sync unit also `binlog_db` (after the replication privilege), and for an
    /// incremental task whose meta names a binlog file `meta_position` (after `version`), as
    /// DM orders them.
    pub fn for_task(task: &TaskConfig, source_id: &str) -> SourcePlan {
        let ignore = &task.ignore_checking_items;
        let mut plan = SourcePlan::for_mode(&task.task_mode, ignore);
        plan.case_sensitive = task.case_sensitive;
        let inst = task.instances().find(|i| i.source_id == source_id);
        if syncs(&task.task_mode) && !is_ignored(ignore, names::BINLOG_DB) {
            plan.items.push(names::BINLOG_DB);
            plan.rules = TableRules::new(task, source_id).ok();
        }
        if !dumps(&task.task_mode) {
            if let Some(m) = inst.and_then(|i| i.meta.as_ref())
                && !m.binlog_name.is_empty()
                && m.binlog_name != crate::config::task::START_TIME_BINLOG_NAME
                && !is_ignored(ignore, names::META_POSITION)
            {
                plan.meta = Some((m.binlog_name.clone(), u64::from(m.binlog_pos.max(4))));
                let at = plan.items.len().min(1);
                plan.items.insert(at, names::META_POSITION);
            }
            return plan;
        }
        let (consistency, threads) = dump_settings(inst);
        plan.dump = Some(DumpPlan {
            consistency,
            threads,
            rules: TableRules::new(task, source_id).ok(),
        });
        // After dump_privilege, as DM lists them.
        let at = plan
            .items
            .iter()
            .position(|n| *n == names::DUMP_PRIVILEGE)
            .map_or(plan.items.len().min(1), |p| p + 1);
        let extra: Vec<&'static str> = [names::TABLE_SCHEMA, names::CONN_NUMBER]
            .into_iter()
            .filter(|n| !is_ignored(ignore, n))
            .collect();
        plan.items.splice(at..at, extra);
        plan
    }
}

fn dump_settings(inst: Option<&MySqlInstance>) -> (Consistency, u64) {
    let Some(m) = inst.and_then(|i| i.mydumper.as_ref()) else {
        return (Consistency::Auto, DEFAULT_THREADS);
    };
    let threads = threads_from_extra_args(&m.extra_args)
        .unwrap_or(m.threads)
        .try_into()
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_THREADS);
    (Consistency::from_extra_args(&m.extra_args), threads)
}

/// DM's default mydumper `threads`.
const DEFAULT_THREADS: u64 = 4;

/// DM's default loader `pool-size`.
const DEFAULT_POOL_SIZE: u64 = 16;

/// The connections the load units of a task open downstream: Σ(pool-size + 1) over its
/// instances (DM's `LoaderConnNumberChecker`: the pool plus the checkpoint connection). `None`
/// when the task mode does not load.
pub fn load_connections(task: &TaskConfig) -> Option<u64> {
    if !dumps(&task.task_mode) {
        return None;
    }
    Some(
        task.instances()
            .map(|i| {
                i.loader
                    .as_ref()
                    .and_then(|l| u64::try_from(l.pool_size).ok())
                    .filter(|p| *p > 0)
                    .unwrap_or(DEFAULT_POOL_SIZE)
                    + 1
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_task;

    #[test]
    fn consistency_from_extra_args() {
        let cases = [
            ("", Consistency::Auto),
            ("--consistency lock", Consistency::Lock),
            ("--consistency=none", Consistency::None),
            ("\"--consistency flush -t 8\"", Consistency::Flush),
            ("--no-locks", Consistency::None),
            ("--consistency snapshot", Consistency::Snapshot),
            ("--consistency", Consistency::Auto),
            ("--consistency weird", Consistency::Auto),
            ("-B shop --consistency LOCK", Consistency::Lock),
        ];
        for (args, want) in cases {
            assert_eq!(Consistency::from_extra_args(args), want, "{args}");
        }
        assert_eq!(Consistency::Auto.lock_privilege(), Some("RELOAD"));
        assert_eq!(Consistency::Lock.lock_privilege(), Some("LOCK TABLES"));
        assert_eq!(Consistency::None.lock_privilege(), None);
    }

    /// A task of `mode`; with `units`, s1 uses the named mydumper `d` and loader `l` of
    /// [`UNITS`]; s2 always sets `loader-thread: 2`.
    fn task(mode: &str, ignore: &str, units: bool) -> TaskConfig {
        let meta = if mode == "incremental" {
            "    meta: {binlog-gtid: 0-1-1}\n"
        } else {
            ""
        };
        let (globals, named) = if units {
            (
                UNITS,
                "    mydumper-config-name: d\n    loader-config-name: l\n",
            )
        } else {
            ("", "")
        };
        let text = format!(
            "name: t\ntask-mode: {mode}\ntarget-database: {{host: 127.0.0.1, port: 3306, user: root, password: ''}}\n{ignore}{globals}mysql-instances:\n  - source-id: s1\n{named}{meta}  - source-id: s2\n    loader-thread: 2\n{meta}"
        );
        match parse_task(text.as_bytes()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    const UNITS: &str = "mydumpers:\n  d: {threads: 8, extra-args: \"--consistency lock\"}\nloaders:\n  l: {pool-size: 4}\n";

    #[test]
    fn plan_per_task_mode() {
        // (mode, ignore, source, items, consistency, threads)
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            &'static [&'static str],
            Option<(Consistency, u64)>,
        );
        let cases: Vec<Case> = vec![
            (
                "full",
                "",
                "s1",
                &["version", "dump_privilege", "table_schema", "conn_number"],
                Some((Consistency::Lock, 8)),
            ),
            (
                "full",
                "",
                "s2",
                &["version", "dump_privilege", "table_schema", "conn_number"],
                Some((Consistency::Auto, 4)),
            ),
            (
                "all",
                "ignore-checking-items: [conn_number, binlog_row_metadata]\n",
                "s1",
                &[
                    "version",
                    "dump_privilege",
                    "table_schema",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "replication_privilege",
                    "binlog_db",
                ],
                Some((Consistency::Lock, 8)),
            ),
            (
                "all",
                "ignore-checking-items: [dump_privilege]\n",
                "s1",
                &[
                    "version",
                    "table_schema",
                    "conn_number",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "replication_privilege",
                    "binlog_db",
                ],
                Some((Consistency::Lock, 8)),
            ),
            (
                "incremental",
                "",
                "s1",
                &[
                    "version",
                    "server_id",
                    "binlog_enable",
                    "binlog_format",
                    "binlog_row_image",
                    "binlog_row_metadata",
                    "replication_privilege",
                    "binlog_db",
                ],
                None,
            ),
        ];
        for (mode, ignore, source, items, dump) in cases {
            let t = task(mode, ignore, mode != "incremental");
            let p = SourcePlan::for_task(&t, source);
            assert_eq!(p.items, items, "{mode} {ignore} {source}");
            let got = p.dump.as_ref().map(|d| (d.consistency, d.threads));
            assert_eq!(got, dump, "{mode} {source}");
            if let Some(d) = &p.dump {
                assert!(d.rules.is_some());
            }
        }
    }

    #[test]
    fn meta_position_for_an_incremental_meta_with_a_file() {
        let text = "name: t\ntask-mode: incremental\ntarget-database: {host: h, port: 1, user: u, password: ''}\nmysql-instances:\n  - source-id: s1\n    meta: {binlog-name: bin.000002, binlog-pos: 120}\n  - source-id: s2\n    meta: {binlog-gtid: 0-1-1}\n";
        let t = parse_task(text.as_bytes()).unwrap().config;
        let p = SourcePlan::for_task(&t, "s1");
        assert_eq!(p.items[..2], ["version", "meta_position"]);
        assert_eq!(p.meta, Some(("bin.000002".to_string(), 120)));
        assert!(p.rules.is_some());
        let p = SourcePlan::for_task(&t, "s2");
        assert!(!p.items.contains(&"meta_position") && p.meta.is_none());
        let started = crate::config::parse_task_for_start_time(text.as_bytes())
            .unwrap()
            .config;
        let p = SourcePlan::for_task(&started, "s1");
        assert!(
            p.meta.is_none(),
            "the start-time placeholder is not a position"
        );
    }

    #[test]
    fn load_connections_sum_pool_sizes() {
        // s1: named loader pool-size 4 → 5; s2: loader-thread 2 → 3
        assert_eq!(load_connections(&task("full", "", true)), Some(8));
        assert_eq!(load_connections(&task("all", "", true)), Some(8));
        // defaults: 16 + 1 for s1 (s2 keeps loader-thread 2)
        assert_eq!(load_connections(&task("all", "", false)), Some(17 + 3));
        assert_eq!(load_connections(&task("incremental", "", false)), None);
        assert_eq!(threads_from_extra_args("-t 3"), Some(3));
        assert_eq!(threads_from_extra_args("--threads=5 -B x"), Some(5));
        assert_eq!(threads_from_extra_args("--threads x"), None);
    }
}
