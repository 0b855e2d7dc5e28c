//! Precheck: what `dmctl check-task` and `start-task` run (through dm-master) before a task may
//! start — DM's `checker` package, for MariaDB/MySQL upstreams and a MySQL-compatible downstream.
//!
//! - [`check_source`] / [`check_source_for_task`] — one upstream: version, server_id, binlog
//!   on/format/row image, our `binlog_row_metadata`, replication privileges (modes that sync);
//!   for modes that dump (`full`, `all`) DM's `dump_privilege` (SELECT on every dumped table,
//!   RELOAD or LOCK TABLES by the mydumper `--consistency`), `table_schema` (tables without a
//!   primary or unique key, or with a foreign key: a warning) and `conn_number`
//!   (`max_connections` ≥ threads + 2); for modes that sync DM's `binlog_db`, and for an
//!   incremental task whose meta names a file `meta_position`.
//!   Which items run depends on the task mode and `ignore-checking-items` ([`task`]).
//! - [`check_target`] / [`check_target_for_task`] — the downstream: reachable, the meta schema
//!   can be created, the user holds DM's `target_privilege` set (a warning when not on `*.*`),
//!   and for modes that load `conn_number` (`max_connections` ≥ Σ(pool-size + 1)).
//! - [`CheckReport`] — the items, DM's summary counts, DM's result JSON and a text form.
//!
//! Submodules: `grants` parses `SHOW GRANTS` and tells which needed privileges it lacks, `task`
//! says what a task needs checked, `items` turns observed values into items (pure), `live`
//! talks to the servers. Called by dm-master. A check never panics and never returns an
//! error: anything that goes wrong (even an unreachable server) is a failed item in the report.
//! It never changes the upstream; on the downstream it only creates the meta schema.

pub mod grants;
pub mod items;
mod live;
pub mod task;

pub use items::names;
pub use live::{
    FilterColumns, check_expression_filters, check_shard_tables, check_source,
    check_source_for_task, check_target, check_target_for_task,
};

use serde::Serialize;

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Success,
    Warning,
    Failure,
}

impl CheckState {
    /// DM's JSON spelling: `success`, `warn`, `fail`.
    pub fn as_dm_str(self) -> &'static str {
        match self {
            CheckState::Success => "success",
            CheckState::Warning => "warn",
            CheckState::Failure => "fail",
        }
    }
}

/// One checked item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// DM's item name, e.g. `binlog_enable` (see [`names`]).
    pub name: String,
    pub desc: String,
    pub state: CheckState,
    /// What is wrong (empty on success); DM's `errorMsg`.
    pub message: String,
    /// How to fix it: the exact statement or my.cnf line.
    pub instruction: String,
    /// e.g. `address of db instance - 127.0.0.1:3306`.
    pub extra: String,
}

/// The items of one or more checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub items: Vec<CheckItem>,
}

/// DM's `checker.Error`: one problem of an item.
#[derive(Serialize)]
struct DmError<'a> {
    severity: &'static str,
    short_error: &'a str,
}

/// DM's `checker.Result` (tiflow HEAD): `errors`, `instruction` and `extra` are left out when
/// empty, as Go's `omitempty` does.
#[derive(Serialize)]
struct DmResult<'a> {
    id: usize,
    name: &'a str,
    desc: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<DmError<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    instruction: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    extra: &'a str,
}

/// The head of DM's precheck messages (`checker.CheckTaskMsgHeader`); dmctl prints a message
/// that holds it with its detail JSON unquoted.
pub const CHECK_TASK_MSG_HEADER: &str = "fail to check synchronization configuration with type";
/// DM's message when every item passed (`checker.CheckTaskSuccess`).
pub const CHECK_TASK_SUCCESS: &str = "pre-check is passed. ";
/// DM's `ErrTaskCheckSyncConfigError`.
pub const CHECK_FAILED_CODE: u32 = 26005;

#[derive(Serialize)]
struct DmSummary {
    passed: bool,
    total: usize,
    successful: usize,
    failed: usize,
    warning: usize,
}

#[derive(Serialize)]
struct DmResults<'a> {
    results: Vec<DmResult<'a>>,
    summary: DmSummary,
}

impl CheckReport {
    /// True when no item failed (warnings pass, as in DM).
    pub fn passed(&self) -> bool {
        !self.items.iter().any(|i| i.state == CheckState::Failure)
    }

    /// `(total, successful, failed, warning)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |s| self.items.iter().filter(|i| i.state == s).count();
        (
            self.items.len(),
            count(CheckState::Success),
            count(CheckState::Failure),
            count(CheckState::Warning),
        )
    }

    /// Appends another report's items (e.g. each source's, then the target's).
    pub fn merge(&mut self, other: CheckReport) {
        self.items.extend(other.items);
    }

    /// DM's check result JSON, as dm-master puts it after `detail:` in check-task/start-task
    /// messages: `{"results":[…],"summary":{"passed","total","successful","failed","warning"}}`.
    ///
    /// As DM does: successful items are left out of `results`, at most `err_cnt` failures and
    /// `warn_cnt` warnings are listed (in item order), `id` is the item's index among all items,
    /// and the summary counts every item. Formatted like Go's `json.MarshalIndent(v, "\t", "\t")`
    /// (with Go's escaping of `<`, `>` and `&`).
    pub fn to_dm_json(&self, err_cnt: usize, warn_cnt: usize) -> String {
        let (total, successful, failed, warning) = self.counts();
        let (mut err_left, mut warn_left) = (err_cnt, warn_cnt);
        let mut results = Vec::new();
        for (id, item) in self.items.iter().enumerate() {
            let left = match item.state {
                CheckState::Success => continue,
                CheckState::Failure => &mut err_left,
                CheckState::Warning => &mut warn_left,
            };
            if *left == 0 {
                continue;
            }
            *left -= 1;
            let errors = if item.message.is_empty() {
                Vec::new()
            } else {
                vec![DmError {
                    severity: item.state.as_dm_str(),
                    short_error: &item.message,
                }]
            };
            results.push(DmResult {
                id,
                name: &item.name,
                desc: &item.desc,
                state: item.state.as_dm_str(),
                errors,
                instruction: &item.instruction,
                extra: &item.extra,
            });
        }
        let value = DmResults {
            results,
            summary: DmSummary {
                passed: failed == 0,
                total,
                successful,
                failed,
                warning,
            },
        };
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        if let Err(e) = value.serialize(&mut ser) {
            return format!("marshal error {e}");
        }
        let text = String::from_utf8_lossy(&out);
        go_escape(&text).replace('\n', "\n\t")
    }

    /// DM's precheck message (`CheckSyncConfig` as dm-master words it): `Ok("pre-check is
    /// passed. ")` when every item succeeded; `Ok` with [`CHECK_TASK_MSG_HEADER`]`: no errors but
    /// some warnings` and the detail JSON ([`CheckReport::to_dm_json`]) when some only warn;
    /// `Err` with `[code=26005]`, the header, `check was failed, please see detail` and the
    /// detail JSON when one failed. At most `err_cnt` failures and `warn_cnt` warnings are
    /// listed; the summary counts them all.
    pub fn to_dm_message(&self, err_cnt: usize, warn_cnt: usize) -> Result<String, String> {
        let (total, successful, failed, _) = self.counts();
        if successful == total {
            return Ok(CHECK_TASK_SUCCESS.to_string());
        }
        let detail = self.to_dm_json(err_cnt, warn_cnt);
        if failed == 0 {
            Ok(format!(
                "{CHECK_TASK_MSG_HEADER}: no errors but some warnings\n detail: {detail}"
            ))
        } else {
            Err(format!(
                "[code={CHECK_FAILED_CODE}] {CHECK_TASK_MSG_HEADER}: check was failed, please see detail\n detail: {detail}"
            ))
        }
    }

    /// One line per item that did not succeed, with what is wrong and how to fix it; empty when
    /// every item succeeded.
    pub fn to_text(&self) -> String {
        let mut lines = Vec::new();
        for item in &self.items {
            let tag = match item.state {
                CheckState::Success => continue,
                CheckState::Warning => "warning",
                CheckState::Failure => "failure",
            };
            let mut line = format!("[{tag}] {}", item.name);
            if !item.extra.is_empty() {
                line.push_str(&format!(" ({})", item.extra));
            }
            line.push_str(&format!(": {}", item.message));
            if !item.instruction.is_empty() {
                line.push_str(&format!(" — fix: {}", item.instruction));
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}

/// Go's encoding/json escapes these even inside strings; serde_json does not.
fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, state: CheckState) -> CheckItem {
        CheckItem {
            name: name.into(),
            desc: format!("check {name}"),
            state,
            message: if state == CheckState::Success {
                String::new()
            } else {
                format!("{name} is wrong")
            },
            instruction: if state == CheckState::Success {
                String::new()
            } else {
                format!("fix {name}")
            },
            extra: "address of db instance - 127.0.0.1:3306".into(),
        }
    }

    fn report(states: &[CheckState]) -> CheckReport {
        CheckReport {
            items: states
                .iter()
                .enumerate()
                .map(|(i, s)| item(&format!("i{i}"), *s))
                .collect(),
        }
    }

    use CheckState::{Failure as F, Success as S, Warning as W};

    #[test]
    fn counts_and_passed() {
        type Counts = (usize, usize, usize, usize);
        let cases: Vec<(&[CheckState], Counts, bool)> = vec![
            (&[], (0, 0, 0, 0), true),
            (&[S, S], (2, 2, 0, 0), true),
            (&[S, W], (2, 1, 0, 1), true),
            (&[F, W, S], (3, 1, 1, 1), false),
        ];
        for (states, counts, passed) in cases {
            let r = report(states);
            assert_eq!(r.counts(), counts, "{states:?}");
            assert_eq!(r.passed(), passed, "{states:?}");
        }
    }

    #[test]
    fn merge_appends() {
        let mut a = report(&[S]);
        a.merge(report(&[F, W]));
        assert_eq!(a.counts(), (3, 1, 1, 1));
        assert_eq!(a.items[1].state, F);
    }

    #[test]
    fn dm_json_lists_limited_non_success_items() {
        // (states, err_cnt, warn_cnt, ids listed)
        let cases: Vec<(&[CheckState], usize, usize, Vec<u64>)> = vec![
            (&[S, S], 10, 10, vec![]),
            (&[S, F, W, F, W], 10, 10, vec![1, 2, 3, 4]),
            (&[S, F, W, F, W], 1, 10, vec![1, 2, 4]),
            (&[S, F, W, F, W], 10, 0, vec![1, 3]),
            (&[F, F, F], 0, 0, vec![]),
        ];
        for (states, e, w, ids) in cases {
            let r = report(states);
            let json = r.to_dm_json(e, w);
            let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
            let got: Vec<u64> = v["results"]
                .as_array()
                .expect("results array")
                .iter()
                .map(|x| x["id"].as_u64().expect("id"))
                .collect();
            assert_eq!(got, ids, "{states:?} {e} {w}");
            let (total, succ, failed, warn) = r.counts();
            assert_eq!(v["summary"]["total"], total);
            assert_eq!(v["summary"]["successful"], succ);
            assert_eq!(v["summary"]["failed"], failed);
            assert_eq!(v["summary"]["warning"], warn);
            assert_eq!(v["summary"]["passed"], r.passed());
        }
    }

    #[test]
    fn dm_json_shape_matches_go_marshal_indent() {
        let mut r = report(&[S, F]);
        r.items[1].name = "binlog_format".into();
        r.items[1].message = "a<b&c>d".into();
        let json = r.to_dm_json(10, 10);
        let want = "{\n\t\t\"results\": [\n\t\t\t{\n\t\t\t\t\"id\": 1,\n\t\t\t\t\"name\": \"binlog_format\",\n\t\t\t\t\"desc\": \"check i1\",\n\t\t\t\t\"state\": \"fail\",\n\t\t\t\t\"errors\": [\n\t\t\t\t\t{\n\t\t\t\t\t\t\"severity\": \"fail\",\n\t\t\t\t\t\t\"short_error\": \"a\\u003cb\\u0026c\\u003ed\"\n\t\t\t\t\t}\n\t\t\t\t],\n\t\t\t\t\"instruction\": \"fix i1\",\n\t\t\t\t\"extra\": \"address of db instance - 127.0.0.1:3306\"\n\t\t\t}\n\t\t],\n\t\t\"summary\": {\n\t\t\t\"passed\": false,\n\t\t\t\"total\": 2,\n\t\t\t\"successful\": 1,\n\t\t\t\"failed\": 1,\n\t\t\t\"warning\": 0\n\t\t}\n\t}";
        assert_eq!(json, want);
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(v["results"][0]["errors"][0]["short_error"], "a<b&c>d");
    }

    #[test]
    fn dm_messages_per_outcome() {
        assert_eq!(
            report(&[S, S]).to_dm_message(10, 10),
            Ok(CHECK_TASK_SUCCESS.into())
        );
        let warn = report(&[S, W])
            .to_dm_message(10, 10)
            .expect("warnings pass");
        assert!(
            warn.starts_with(
                "fail to check synchronization configuration with type: no errors but some warnings\n detail: {"
            ),
            "{warn}"
        );
        assert!(warn.contains("\"state\": \"warn\""), "{warn}");
        let fail = report(&[F, W])
            .to_dm_message(0, 10)
            .expect_err("a failure fails");
        assert!(
            fail.starts_with("[code=26005] fail to check synchronization configuration with type: check was failed, please see detail\n detail: {"),
            "{fail}"
        );
        assert!(
            !fail.contains("\"state\": \"fail\""),
            "-e 0 lists none: {fail}"
        );
        assert!(fail.contains("\"failed\": 1"), "{fail}");
    }

    #[test]
    fn text_lists_non_success_with_instruction() {
        let r = report(&[S, W, F]);
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            vec![
                "[warning] i1 (address of db instance - 127.0.0.1:3306): i1 is wrong — fix: fix i1",
                "[failure] i2 (address of db instance - 127.0.0.1:3306): i2 is wrong — fix: fix i2",
            ]
        );
        assert_eq!(report(&[S, S]).to_text(), "");
    }
}
