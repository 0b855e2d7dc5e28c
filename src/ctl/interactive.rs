//! dmctl's interactive mode: `dmctl --master-addr X` (or `DM_MASTER_ADDR`) with no command;
//! [`super::run`] first checks that the master answers, as DM does.
//!
//! On a terminal it shows DM's `» ` prompt (rustyline, history in `~/.dmctl_history` when that
//! file can be used); otherwise it reads commands from stdin, one per line, so scripts and tests
//! can drive it (DM's own tests do: `echo "query-status" | dmctl -master-addr=X`). Each line is split like a shell would (quotes, backslashes) and run as a dmctl
//! command line with the session's master address. `exit`, `quit` or end of input leave; an
//! error in one line never ends the session. Called by [`super::run`]; never exits the process.

use std::io::{BufRead, IsTerminal};

/// Splitting a line failed: a quote was left open or the line ends in a lone backslash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated {0} quote")]
    OpenQuote(char),
    #[error("line ends with an escape character")]
    TrailingEscape,
}

/// Splits a command line into words as a POSIX shell does for quoting: `'...'` is literal,
/// `"..."` allows `\"` and `\\`, a backslash outside quotes escapes the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::OpenQuote('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(SplitError::OpenQuote('"')),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::OpenQuote('"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(SplitError::TrailingEscape),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// What one input line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Blank line: nothing to do.
    Empty,
    /// `exit` or `quit`.
    Leave,
    /// A command's words (without the program name).
    Run(Vec<String>),
    /// The line could not be split.
    Bad(SplitError),
}

/// Classifies one input line.
pub fn parse_line(line: &str) -> Line {
    match split_words(line) {
        Err(e) => Line::Bad(e),
        Ok(w) if w.is_empty() => Line::Empty,
        Ok(w) if w.len() == 1 && (w[0] == "exit" || w[0] == "quit") => Line::Leave,
        Ok(w) => Line::Run(w),
    }
}

/// Runs the session; `run_line` executes one command's words. Returns the exit code (0).
pub fn run(mut run_line: impl FnMut(Vec<String>)) -> u8 {
    let mut handle = |line: &str| -> bool {
        match parse_line(line) {
            Line::Empty => true,
            Line::Leave => false,
            Line::Bad(e) => {
                eprintln!("{e}");
                true
            }
            Line::Run(words) => {
                run_line(words);
                true
            }
        }
    };
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !handle(&line) {
                break;
            }
        }
        return 0;
    }
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("can not start the interactive shell: {e}");
            return 1;
        }
    };
    let history = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| std::path::PathBuf::from(h).join(".dmctl_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    loop {
        match editor.readline("» ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !handle(&line) {
                    break;
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("{e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_a_shell() {
        let ok: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("query-status", &["query-status"]),
            (
                "  query-status   -s  s1 t ",
                &["query-status", "-s", "s1", "t"],
            ),
            ("start-task 'my task.yaml'", &["start-task", "my task.yaml"]),
            (
                r#"get-config task "a \"b\" c""#,
                &["get-config", "task", r#"a "b" c"#],
            ),
            (r#"x a\ b"#, &["x", "a b"]),
            (r#"x "" ''"#, &["x", "", ""]),
            (r#"x "a\nb""#, &["x", r"a\nb"]),
            ("x a'b c'd", &["x", "ab cd"]),
        ];
        for (line, want) in ok {
            assert_eq!(split_words(line).unwrap(), *want, "{line:?}");
        }
        let bad = [
            ("x 'open", SplitError::OpenQuote('\'')),
            ("x \"open", SplitError::OpenQuote('"')),
            ("x \\", SplitError::TrailingEscape),
        ];
        for (line, want) in bad {
            assert_eq!(split_words(line), Err(want), "{line:?}");
        }
    }

    #[test]
    fn exit_and_quit_leave_everything_else_runs() {
        let cases = [
            ("exit", Line::Leave),
            (" quit ", Line::Leave),
            ("", Line::Empty),
            ("exit now", Line::Run(vec!["exit".into(), "now".into()])),
            ("help", Line::Run(vec!["help".into()])),
            ("'", Line::Bad(SplitError::OpenQuote('\''))),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), want, "{line:?}");
        }
    }
}
