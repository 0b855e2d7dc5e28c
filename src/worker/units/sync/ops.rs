//! Getting past a failing statement: the operators of DM v2's `handle-error` / tiflow's `binlog`
//! (skip, replace, revert, inject, list) and DM v1's `sql-skip` / `sql-replace` / `sql-inject`,
//! held per subtask in the worker's memory (as in DM) and consumed by the Sync unit.
//!
//! Keys, as DM matches them:
//! - v2 / tiflow (`-b file:pos`, or the current error): the **start** position of the event
//!   (its end position minus its size) — the `startLocation` a DDL error reports;
//! - v1 `-b` (`sql-skip -b`): the event's **end** position (`failedBinlogPosition`);
//! - v1 `-s` (`--sql-pattern`): a DDL statement after routing, `~regexp` or the exact text;
//! - v1 `sql-inject`: the next transaction boundary or DDL.
//!
//! One operator per key (a new one replaces it, with a warning); an operator is used once and
//! removed when it matches. Skip: the event's DDLs do not run downstream. Replace: its
//! statements run instead. Inject: its statements run before the event (v2 / tiflow) or at
//! the next boundary (v1). The Sync unit records where its last DDL failed
//! ([`ErrorOps::set_error`]); `handle-error` without `-b` acts on that position.
//!
//! Pure logic (a mutex around maps): table-tested below; the unit and the worker call it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::binlog::Position;

/// DM's error codes of this module.
pub mod codes {
    /// `ErrSyncerOperatorNotExist`: revert of an operator that is not there.
    pub const OPERATOR_NOT_EXIST: i32 = 36065;
    /// `ErrSyncerReplaceInvalidSQL` (v2: only DDLs may replace).
    pub const REPLACE_NOT_DDL: i32 = 36064;
    /// `ErrVerifyHandleErrorArgs`.
    pub const BAD_ARGS: i32 = 11118;
}

/// What to do at the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Skip,
    Replace(Vec<String>),
    Inject(Vec<String>),
}

/// Where an operator applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The event that starts here (v2, tiflow).
    Start(Position),
    /// The event that ends here (v1 `-b`).
    End(Position),
    /// A DDL matching this pattern (v1 `-s`): `~regexp` or the exact statement.
    Pattern(String),
    /// The next transaction boundary or DDL (v1 `sql-inject`).
    Next,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Start(p) => write!(f, "{}:{}", p.file, p.pos),
            Key::End(p) => write!(f, "{}:{} (end)", p.file, p.pos),
            Key::Pattern(s) => write!(f, "pattern {s}"),
            Key::Next => write!(f, "the next event"),
        }
    }
}

/// Where the last DDL failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAt {
    pub start: Position,
    pub end: Position,
    /// The statement as the upstream wrote it.
    pub sql: String,
}

/// A request, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Set(Option<Key>, Action),
    Revert(Option<Key>),
    List(Option<Key>),
}

/// A refused request: DM's code (0: a plain message) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "[code={}] {}", self.code, self.message)
        }
    }
}

fn refused(code: i32, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

/// `file:pos` (DM's `--binlog-pos`), e.g. `mysql-bin.000001:2022`.
pub fn parse_pos(s: &str) -> Result<Position, String> {
    let (file, pos) = s
        .rsplit_once(':')
        .ok_or_else(|| "the format should be filename:pos".to_string())?;
    let pos: u64 = pos
        .trim()
        .parse()
        .map_err(|_| "the format should be filename:pos".to_string())?;
    if file.trim().is_empty() {
        return Err("the format should be filename:pos".into());
    }
    Ok(Position {
        file: file.trim().to_string(),
        pos,
    })
}

/// Whether a replace / inject statement is a DDL (DM allows only DDLs there).
pub fn is_ddl(stmt: &str) -> bool {
    let first = stmt
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE"
    )
}

/// Whether `stmt` matches a v1 pattern: `~re` a regular expression, else the exact statement.
pub fn pattern_matches(pattern: &str, stmt: &str) -> bool {
    match pattern.strip_prefix('~') {
        Some(re) => regex::Regex::new(re).is_ok_and(|r| r.is_match(stmt)),
        None => pattern.trim() == stmt.trim(),
    }
}

/// The statements of a replace or inject, split as DM splits them (`;` outside quotes), with
/// each one trimmed and empty ones dropped.
pub fn split_sqls(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for c in a.chars() {
            if escaped {
                escaped = false;
                cur.push(c);
                continue;
            }
            match (quote, c) {
                (Some(_), '\\') => {
                    escaped = true;
                    cur.push(c);
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    cur.push(c);
                }
                (None, '\'' | '"' | '`') => {
                    quote = Some(c);
                    cur.push(c);
                }
                (None, ';') => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            }
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
    }
    out
}

#[derive(Debug, Default)]
struct Inner {
    ops: BTreeMap<Key, Action>,
    error: Option<ErrorAt>,
}

/// A subtask's operators and its last DDL error (shared by the unit's runs and the worker).
#[derive(Debug, Default)]
pub struct ErrorOps {
    inner: Mutex<Inner>,
}

impl ErrorOps {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Sync unit's last DDL failed here.
    pub fn set_error(&self, e: ErrorAt) {
        self.lock().error = Some(e);
    }

    /// The event at `start` went through (ran, skipped or replaced): no error there any more.
    pub fn passed(&self, start: &Position) {
        let mut g = self.lock();
        if g.error.as_ref().is_some_and(|e| &e.start <= start) {
            g.error = None;
        }
    }

    pub fn error(&self) -> Option<ErrorAt> {
        self.lock().error.clone()
    }

    /// Carries out a request; `Ok(msg)` (empty, or the list's JSON), or DM's refusal.
    /// `source` names the subtask's source in messages.
    pub fn handle(&self, req: Request, source: &str) -> Result<String, Refused> {
        let mut g = self.lock();
        let current = |g: &Inner| -> Result<Key, Refused> {
            g.error
                .as_ref()
                .map(|e| Key::Start(e.start.clone()))
                .ok_or_else(|| refused(0, format!("source '{source}' has no error")))
        };
        match req {
            Request::Set(key, action) => {
                if let Action::Replace(sqls) | Action::Inject(sqls) = &action
                    && sqls.is_empty()
                {
                    return Err(refused(
                        codes::BAD_ARGS,
                        "must specify the replace-sqls for replace operation",
                    ));
                }
                let key = match key {
                    Some(k) => k,
                    None => current(&g)?,
                };
                if let Some(old) = g.ops.insert(key.clone(), action) {
                    tracing::warn!(key = %key, old = ?old, "an error operator replaced the one at the same key");
                }
                Ok(String::new())
            }
            Request::Revert(key) => {
                let key = match key {
                    Some(k) => k,
                    None => current(&g)?,
                };
                match g.ops.remove(&key) {
                    Some(_) => Ok(String::new()),
                    None => Err(refused(
                        codes::OPERATOR_NOT_EXIST,
                        format!("error operator not exist, position: {key}"),
                    )),
                }
            }
            Request::List(key) => {
                let from = match key {
                    Some(Key::Start(p)) => Some(p),
                    _ => None,
                };
                let items: Vec<serde_json::Value> = g
                    .ops
                    .iter()
                    .filter(|(k, _)| match (&from, k) {
                        (Some(f), Key::Start(p)) => p >= f,
                        (Some(_), _) => false,
                        (None, _) => true,
                    })
                    .map(|(k, a)| {
                        let (op, sqls) = match a {
                            Action::Skip => ("skip", Vec::new()),
                            Action::Replace(s) => ("replace", s.clone()),
                            Action::Inject(s) => ("inject", s.clone()),
                        };
                        serde_json::json!({ "op": op, "position": k.to_string(), "sqls": sqls })
                    })
                    .collect();
                Ok(serde_json::Value::Array(items).to_string())
            }
        }
    }

    /// The operator for the DDL event from `start` to `end` whose statements (after routing)
    /// are `stmts`, removed (used once). Inject operators at `start` come first.
    pub fn take_for(&self, start: &Position, end: &Position, stmts: &[String]) -> Option<Action> {
        let mut g = self.lock();
        for key in [Key::Start(start.clone()), Key::End(end.clone())] {
            if let Some(a) = g.ops.remove(&key) {
                return Some(a);
            }
        }
        let hit = g.ops.keys().find_map(|k| match k {
            Key::Pattern(p) if stmts.iter().any(|s| pattern_matches(p, s)) => Some(k.clone()),
            _ => None,
        })?;
        g.ops.remove(&hit)
    }

    /// The statements of a v1 `sql-inject` waiting for the next boundary, removed.
    pub fn take_next(&self) -> Option<Vec<String>> {
        match self.lock().ops.remove(&Key::Next) {
            Some(Action::Inject(s)) | Some(Action::Replace(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether an operator waits for the next boundary (cheap check on the hot path).
    pub fn has_next(&self) -> bool {
        self.lock().ops.contains_key(&Key::Next)
    }

    /// Drops operators keyed before `pos` (the stream has passed them: DM's outdated ops).
    pub fn drop_before(&self, pos: &Position) {
        self.lock().ops.retain(|k, _| match k {
            Key::Start(p) | Key::End(p) => p >= pos,
            _ => true,
        });
    }

    pub fn len(&self) -> usize {
        self.lock().ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(file: &str, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
        }
    }

    #[test]
    fn binlog_positions_parse_as_dm_writes_them() {
        let cases: &[(&str, Option<(&str, u64)>)] = &[
            ("mysql-bin.000001:2022", Some(("mysql-bin.000001", 2022))),
            (
                "mysql-bin|000001.000003:3270",
                Some(("mysql-bin|000001.000003", 3270)),
            ),
            ("mysql-bin.000000:00000", Some(("mysql-bin.000000", 0))),
            ("mysql-bin|1111", None),
            ("mysql-bin.000001:", None),
            (":4", None),
            ("mysql-bin.000001:x", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_pos(s).ok(), want.map(|(f, n)| p(f, n)), "{s}");
        }
    }

    #[test]
    fn patterns_are_regexps_with_a_tilde_else_exact() {
        let cases = [
            (
                "~(?i)ADD\\s+UNIQUE",
                "ALTER TABLE `d`.`t` ADD UNIQUE (`c`)",
                true,
            ),
            ("~^DROP", "ALTER TABLE t DROP c", false),
            (
                "ALTER TABLE `d`.`t` DROP COLUMN `c`",
                "ALTER TABLE `d`.`t` DROP COLUMN `c`",
                true,
            ),
            (
                "ALTER TABLE `d`.`t` DROP COLUMN `c`",
                "ALTER TABLE `d`.`t` DROP COLUMN `x`",
                false,
            ),
            ("~(unclosed", "anything", false),
        ];
        for (pat, stmt, want) in cases {
            assert_eq!(pattern_matches(pat, stmt), want, "{pat} / {stmt}");
        }
    }

    #[test]
    fn replace_statements_split_on_semicolons_outside_quotes() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["ALTER TABLE a ADD c INT; ALTER TABLE a ADD UNIQUE(c);"],
                &["ALTER TABLE a ADD c INT", "ALTER TABLE a ADD UNIQUE(c)"],
            ),
            (
                &["ALTER TABLE a ADD c INT", "ALTER TABLE b ADD d INT"],
                &["ALTER TABLE a ADD c INT", "ALTER TABLE b ADD d INT"],
            ),
            (
                &["ALTER TABLE a COMMENT 'x;y'; SELECT 1"],
                &["ALTER TABLE a COMMENT 'x;y'", "SELECT 1"],
            ),
            (&["  ;; "], &[]),
        ];
        for (args, want) in cases {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(split_sqls(&args), *want, "{args:?}");
        }
    }

    #[test]
    fn operators_follow_dms_rules() {
        let ops = ErrorOps::default();
        // No error yet: an operator without a position is refused with DM's message.
        let e = ops
            .handle(Request::Set(None, Action::Skip), "s1")
            .unwrap_err();
        assert_eq!(e.to_string(), "source 's1' has no error");
        // The unit records an error; skip without -b takes its start position.
        ops.set_error(ErrorAt {
            start: p("b.000001", 100),
            end: p("b.000001", 180),
            sql: "ALTER TABLE t ADD UNIQUE (c)".into(),
        });
        assert_eq!(
            ops.handle(Request::Set(None, Action::Skip), "s1"),
            Ok(String::new())
        );
        // Revert without an operator there: 36065.
        let e = ops
            .handle(Request::Revert(Some(Key::Start(p("b.000001", 5)))), "s1")
            .unwrap_err();
        assert_eq!(e.code, 36065);
        assert_eq!(e.message, "error operator not exist, position: b.000001:5");
        // Replace needs statements.
        let e = ops
            .handle(Request::Set(None, Action::Replace(vec![])), "s1")
            .unwrap_err();
        assert_eq!(e.code, 11118);
        // The skip is found by its start position, once.
        assert_eq!(
            ops.take_for(&p("b.000001", 100), &p("b.000001", 180), &[]),
            Some(Action::Skip)
        );
        assert_eq!(
            ops.take_for(&p("b.000001", 100), &p("b.000001", 180), &[]),
            None
        );
        // The event went through: no current error any more.
        ops.passed(&p("b.000001", 100));
        assert_eq!(ops.error(), None);
        assert!(ops.handle(Request::Revert(None), "s1").is_err());
    }

    #[test]
    fn v1_keys_match_by_end_position_and_pattern() {
        let ops = ErrorOps::default();
        let sqls = vec!["ALTER TABLE `d`.`t` ADD KEY (c)".to_string()];
        ops.handle(
            Request::Set(
                Some(Key::End(p("b.000002", 300))),
                Action::Replace(sqls.clone()),
            ),
            "s1",
        )
        .unwrap();
        ops.handle(
            Request::Set(Some(Key::Pattern("~ADD UNIQUE".into())), Action::Skip),
            "s1",
        )
        .unwrap();
        // Not this event (different end, no pattern match).
        assert_eq!(
            ops.take_for(
                &p("b.000002", 10),
                &p("b.000002", 90),
                &["ALTER TABLE x ADD c INT".into()]
            ),
            None
        );
        assert_eq!(
            ops.take_for(&p("b.000002", 200), &p("b.000002", 300), &[]),
            Some(Action::Replace(sqls))
        );
        assert_eq!(
            ops.take_for(
                &p("b.000003", 4),
                &p("b.000003", 80),
                &["ALTER TABLE `d`.`t` ADD UNIQUE (`c`)".into()]
            ),
            Some(Action::Skip)
        );
        assert!(ops.is_empty());
        // sql-inject waits for the next boundary.
        ops.handle(
            Request::Set(
                Some(Key::Next),
                Action::Inject(vec!["ALTER TABLE d.t ADD e INT".into()]),
            ),
            "s1",
        )
        .unwrap();
        assert!(ops.has_next());
        assert_eq!(
            ops.take_next(),
            Some(vec!["ALTER TABLE d.t ADD e INT".to_string()])
        );
        assert!(!ops.has_next());
    }

    #[test]
    fn list_shows_operators_at_or_after_a_position_and_old_ones_go() {
        let ops = ErrorOps::default();
        for (pos, a) in [
            (10, Action::Skip),
            (
                20,
                Action::Replace(vec!["ALTER TABLE d.t ADD c INT".into()]),
            ),
            (30, Action::Inject(vec!["ALTER TABLE d.t ADD e INT".into()])),
        ] {
            ops.handle(Request::Set(Some(Key::Start(p("b.1", pos))), a), "s1")
                .unwrap();
        }
        let all: serde_json::Value =
            serde_json::from_str(&ops.handle(Request::List(None), "s1").unwrap()).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 3);
        let from: serde_json::Value = serde_json::from_str(
            &ops.handle(Request::List(Some(Key::Start(p("b.1", 20)))), "s1")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(from[0]["op"], "replace");
        assert_eq!(from[0]["position"], "b.1:20");
        assert_eq!(from[1]["sqls"][0], "ALTER TABLE d.t ADD e INT");
        ops.drop_before(&p("b.1", 25));
        assert_eq!(ops.len(), 1);
    }
}
