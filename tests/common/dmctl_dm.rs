//! DM's own way of checking dmctl, for porting tiflow's `dm/tests/dmctl_basic` and
//! `dm/tests/dmctl_command` expectations with their strings unchanged.
//!
//! DM's `_utils/run_dm_ctl WORKDIR ADDR "cmd" "pattern" COUNT ...` pipes the command into
//! dmctl's interactive mode (`echo "$cmd" | dmctl -master-addr=$ADDR`), and
//! `run_dm_ctl_cmd_mode` runs it one-shot (`dmctl $cmd --master-addr=$ADDR`, `$cmd` split on
//! blanks as an unquoted shell word is); both write stdout and stderr to one log and count each
//! pattern as `sed "s/P/P\n/g" $log | grep -c "P"` — every match put on a line of its own, then
//! the matching lines counted. [`Dm`] does the same with the real binary, [`count`] the same
//! counting with the pattern read as grep's basic regular expression ([`bre`]).
//!
//! Commands and patterns are written as they stand in DM's shell scripts, quotes included
//! (`r#""\"result\": true""#`), and read as bash reads a word ([`sh_word`]): `"…"` with `\"`,
//! `\\`, `\$`, `` \` `` and `$VAR` expanded from [`Dm::var`], `'…'` literal.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One dmctl run: its combined output and exit code.
pub struct Run {
    pub cmd: String,
    pub output: String,
    pub code: i32,
}

/// DM's test-script context: the master address and the script's variables.
#[derive(Clone, Default)]
pub struct Dm {
    pub vars: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
}

impl Dm {
    pub fn new() -> Dm {
        Dm::default()
    }

    /// Sets a shell variable the commands and patterns may name (`$MASTER_PORT`).
    pub fn var(mut self, name: &str, value: &str) -> Dm {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Sets an environment variable for dmctl (`DM_MASTER_ADDR`).
    pub fn env(mut self, name: &str, value: &str) -> Dm {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// A shell word of DM's scripts, read with this context's variables.
    pub fn word(&self, w: &str) -> String {
        sh_word(w, &self.vars)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dmctl"));
        c.env_remove("DM_MASTER_ADDR");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `run_dm_ctl`: `echo "$cmd" | dmctl -master-addr=$addr`, then each (pattern, count).
    pub fn run_dm_ctl(&self, addr: &str, cmd: &str, checks: &[(&str, usize)]) -> Run {
        let addr = self.word(addr);
        let cmd = self.word(cmd);
        let mut c = self.command();
        c.arg(format!("-master-addr={addr}"));
        let run = run_logged(c, &cmd, Some(format!("{cmd}\n")));
        self.check(&run, checks);
        run
    }

    /// `run_dm_ctl_cmd_mode`: `dmctl $cmd --master-addr=$addr` ($cmd split on blanks).
    pub fn run_dm_ctl_cmd_mode(&self, addr: &str, cmd: &str, checks: &[(&str, usize)]) -> Run {
        let addr = self.word(addr);
        let cmd = self.word(cmd);
        let mut c = self.command();
        c.args(cmd.split_whitespace());
        c.arg(format!("--master-addr={addr}"));
        let run = run_logged(c, &cmd, None);
        self.check(&run, checks);
        run
    }

    /// `run_dm_ctl_with_retry`: `echo "$cmd" | dmctl --master-addr=$addr` up to `tries` times
    /// (2 s apart) until every pattern's `grep -o` count is as expected.
    pub fn run_dm_ctl_with_retry(
        &self,
        addr: &str,
        cmd: &str,
        tries: usize,
        checks: &[(&str, usize)],
    ) -> Run {
        let addr = self.word(addr);
        let cmd = self.word(cmd);
        let mut last = None;
        for k in 0..tries {
            if k > 0 {
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            let mut c = self.command();
            c.arg(format!("--master-addr={addr}"));
            let run = run_logged(c, &cmd, Some(format!("{cmd}\n")));
            let all = checks
                .iter()
                .all(|(p, want)| count_o(&run.output, &self.word(p)) == *want);
            if all {
                return run;
            }
            last = Some(run);
        }
        let run = last.expect("at least one try");
        let got: Vec<(String, usize)> = checks
            .iter()
            .map(|(p, _)| (self.word(p), count_o(&run.output, &self.word(p))))
            .collect();
        panic!(
            "command: {cmd} after {tries} tries: counts {got:?}, expected {:?}\n{}",
            checks.iter().map(|c| c.1).collect::<Vec<_>>(),
            run.output
        );
    }

    /// Runs dmctl with exactly these arguments (a script's own `$PWD/bin/dmctl.test DEVEL …`).
    pub fn dmctl_args(&self, args: &[&str]) -> Run {
        let args: Vec<String> = args.iter().map(|a| self.word(a)).collect();
        let mut c = self.command();
        c.args(&args);
        run_logged(c, &args.join(" "), None)
    }

    /// Asserts each (pattern, count) on a run's output, failing as DM's script does.
    pub fn check(&self, run: &Run, checks: &[(&str, usize)]) {
        for (pattern, want) in checks {
            let p = self.word(pattern);
            let got = count(&run.output, &p);
            assert_eq!(
                got, *want,
                "command: {} {} count: {} != expected: {}\n{}",
                run.cmd, p, got, want, run.output
            );
        }
    }
}

/// Runs `c` with stdout and stderr into one file (so they interleave as in DM's log).
fn run_logged(mut c: Command, cmd: &str, stdin: Option<String>) -> Run {
    let log = tempfile::NamedTempFile::new().expect("dmctl log file");
    // one open file for both, so they share the write offset as `>log 2>&1` does
    let out = log.reopen().expect("reopen log");
    let err = out.try_clone().expect("clone log handle");
    c.stdout(Stdio::from(out)).stderr(Stdio::from(err));
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("spawn dmctl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // dmctl may exit before reading (no master): a broken pipe is not an error here
        let _ = pipe.write_all(input.as_bytes());
    }
    let status = child.wait().expect("wait for dmctl");
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    Run {
        cmd: cmd.to_string(),
        output,
        code: status.code().unwrap_or(-1),
    }
}

/// Reads one bash word: `"…"` (backslash before `"` `\` `$` `` ` `` and newline escapes,
/// `$NAME` / `${NAME}` expand from `vars`), `'…'` (literal), bare text (backslash escapes the
/// next character, `$NAME` expands). Panics on an unknown variable or an open quote.
pub fn sh_word(w: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = w.chars().collect();
    let mut i = 0;
    let expand = |i: &mut usize, out: &mut String| {
        // chars[*i] == '$'
        let braced = chars.get(*i + 1) == Some(&'{');
        let start = *i + if braced { 2 } else { 1 };
        let mut end = start;
        while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
            end += 1;
        }
        if end == start {
            out.push('$');
            *i += 1;
            return;
        }
        let name: String = chars[start..end].iter().collect();
        let value = vars
            .get(&name)
            .unwrap_or_else(|| panic!("${name} is not set for {w:?}"));
        out.push_str(value);
        *i = if braced { end + 1 } else { end };
    };
    while i < chars.len() {
        match chars[i] {
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => panic!("open \" in {w:?}"),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match chars.get(i + 1) {
                            Some(c @ ('"' | '\\' | '$' | '`')) => {
                                out.push(*c);
                                i += 2;
                            }
                            Some('\n') => i += 2,
                            _ => {
                                out.push('\\');
                                i += 1;
                            }
                        },
                        Some('$') => expand(&mut i, &mut out),
                        Some(c) => {
                            out.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            '\'' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => panic!("open ' in {w:?}"),
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.get(i + 1) {
                    out.push(*c);
                }
                i += 2;
            }
            '$' => expand(&mut i, &mut out),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// grep's basic regular expression (GNU) as a `regex` pattern: `\.` `\[` `\]` `\*` `\/` `\"`
/// and other escaped ordinary characters are literal, `\(` `\)` `\{` `\}` `\|` `\+` `\?` are
/// operators, bare `( ) { } + ? |` are literal, `*` is literal first, `^` / `$` anchor only
/// at the ends, `[...]` is a bracket expression.
pub fn bre(p: &str) -> regex::Regex {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let lit = |c: char, out: &mut String| out.push_str(&regex::escape(&c.to_string()));
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    lit('\\', &mut out);
                    i += 1;
                    continue;
                };
                match n {
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' => out.push(n),
                    '<' | '>' => out.push_str(r"\b"),
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(n);
                    }
                    _ => lit(n, &mut out),
                }
                i += 2;
            }
            '(' | ')' | '{' | '}' | '+' | '?' | '|' => {
                lit(c, &mut out);
                i += 1;
            }
            '*' if i == 0 || out.ends_with('(') || out == "^" => {
                lit(c, &mut out);
                i += 1;
            }
            '^' if i == 0 => {
                out.push('^');
                i += 1;
            }
            '^' => {
                lit(c, &mut out);
                i += 1;
            }
            '$' if i + 1 == chars.len() => {
                out.push('$');
                i += 1;
            }
            '$' => {
                lit(c, &mut out);
                i += 1;
            }
            '[' => {
                // bracket expression up to its closing ']' (a ']' first is literal)
                let mut j = i + 1;
                let mut set = String::from("[");
                if chars.get(j) == Some(&'^') {
                    set.push('^');
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    set.push_str(r"\]");
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    if chars[j] == '[' && chars.get(j + 1) == Some(&':') {
                        let end = (j + 2..chars.len().saturating_sub(1))
                            .find(|&k| chars[k] == ':' && chars[k + 1] == ']')
                            .expect("open [: in pattern");
                        set.extend(&chars[j..end + 2]);
                        j = end + 2;
                        continue;
                    }
                    match chars[j] {
                        '\\' | '[' | '&' | '~' => {
                            set.push('\\');
                            set.push(chars[j]);
                        }
                        ch => set.push(ch),
                    }
                    j += 1;
                }
                assert!(j < chars.len(), "open [ in pattern {p:?}");
                set.push(']');
                out.push_str(&set);
                i = j + 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    regex::Regex::new(&out).unwrap_or_else(|e| panic!("pattern {p:?} as {out:?}: {e}"))
}

/// sed's replacement text for `s/P/P\n/g`: the pattern's escapes read as sed reads a
/// replacement (`\n` a newline, `\X` the character X, `&` the match).
fn sed_replacement(p: &str, matched: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(n) => out.push(n),
                None => {}
            },
            '&' => out.push_str(matched),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// How many times DM's scripts see `pattern` in `output`:
/// `sed "s/P/P\n/g" | grep -c "P"`.
pub fn count(output: &str, pattern: &str) -> usize {
    let re = bre(pattern);
    let mut split = String::new();
    for line in output.lines() {
        let mut last = 0;
        for m in re.find_iter(line) {
            split.push_str(&line[last..m.start()]);
            split.push_str(&sed_replacement(pattern, m.as_str()));
            last = m.end();
        }
        split.push_str(&line[last..]);
        split.push('\n');
    }
    split.lines().filter(|l| re.is_match(l)).count()
}

/// `grep -o P | wc -l`: the non-overlapping matches of `pattern` in `output`, line by line.
pub fn count_o(output: &str, pattern: &str) -> usize {
    let re = bre(pattern);
    output.lines().map(|l| re.find_iter(l).count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_as_bash_reads_them() {
        let vars: BTreeMap<String, String> =
            [("SOURCE_ID1".to_string(), "mysql-replica-01".to_string())]
                .into_iter()
                .collect();
        let cases = [
            (r#""\"result\": true""#, r#""result": true"#),
            (
                r#""Please check your network connection\.""#,
                r"Please check your network connection\.",
            ),
            (
                r#""\"source\": \"$SOURCE_ID1\"""#,
                r#""source": "mysql-replica-01""#,
            ),
            (r#"'msg": "a b"'"#, r#"msg": "a b""#),
            (
                r#""must specify at least one source (\`-s\` \/ \`--source\`)""#,
                r"must specify at least one source (`-s` \/ `--source`)",
            ),
        ];
        for (w, want) in cases {
            assert_eq!(sh_word(w, &vars), want, "{w}");
        }
    }

    #[test]
    fn counting_is_seds_split_then_grep_c() {
        let out = "{\n    \"result\": true, \"result\": true\n}\n\"result\": false\n";
        assert_eq!(count(out, r#""result": true"#), 2);
        assert_eq!(count(out, r#""result": false"#), 1);
        assert_eq!(
            count(
                "Usage:\n  dmctl pause-task [-s source ...] [task-name | task-file] [flags]\n",
                r"pause-task \[-s source ...\] \[task-name | task-file\] \[flags\]"
            ),
            1
        );
        assert_eq!(
            count(
                "must specify at least one source (`-s` / `--source`)\n",
                r"must specify at least one source (`-s` \/ `--source`)"
            ),
            1
        );
        assert_eq!(count("a.b\naxb\n", r"a\.b"), 1);
        assert_eq!(count("a.b\naxb\n", "a.b"), 2);
        // as in DM's scripts: the replacement text `^x$` no longer matches `^x$`
        assert_eq!(count("x\n", "^x$"), 0);
        assert_eq!(count_o("x\n", "^x$"), 1);
        assert_eq!(
            count(
                "\"msg\": \"xx current stage is Paused, Running required\"",
                r#""msg": ".*current stage is Paused, Running required"#
            ),
            1
        );
    }
}
