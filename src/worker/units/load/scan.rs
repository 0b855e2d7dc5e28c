//! The statement scanner of the load unit: finds where each SQL statement of a dump file
//! ends, over raw bytes, without copying or allocating.
//!
//! A statement ends at a `;` outside quotes and comments. Quotes are `'…'`, `"…"` (a backslash
//! escapes the next byte, a doubled quote reads as two quoted runs) and `` `…` `` (identifiers:
//! no backslash escapes, a doubled backquote is the escape, as MySQL reads them). Comments are
//! `/* … */`, `-- ` up to the end of the line (two dashes then a space, tab or line break, as
//! MySQL requires) and `#` up to the end of the line. The scanner also says whether a statement
//! had any code outside comments and whether one of its comments is executable (`/*!…*/`,
//! `/*M!…*/`), so the loader can run `/*!40101 SET NAMES binary*/;` on its session and skip
//! plain comments.
//!
//! The state survives between calls, so a reader feeds each byte once however the file is cut
//! into buffers. Inside quotes and comments the scanner jumps with `memchr` (most of a dump's
//! bytes are string values); elsewhere it looks at one byte at a time.

/// Where the scanner stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Normal,
    /// Inside a quoted run opened by the byte.
    Quote(u8),
    /// After a backslash inside a `'` or `"` run.
    Escape(u8),
    /// After a `/` (a comment may start).
    Slash,
    /// Right after `/*` (an executable comment starts with `!` or `M!`).
    BlockStart,
    Block,
    /// After a `*` inside a block comment.
    BlockStar,
    /// After one `-`.
    Dash,
    /// After `--` (a comment if whitespace follows).
    Dash2,
    /// Inside a `--` or `#` comment, up to the line end.
    Line,
}

/// What the statement just ended had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// Some byte outside comments and whitespace (the statement is not only comments).
    pub code: bool,
    /// An executable comment (`/*!…*/`, `/*M!…*/`).
    pub exec_comment: bool,
}

/// The scanner (see the module doc).
#[derive(Debug, Clone)]
pub struct Scanner {
    st: St,
    flags: Flags,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            st: St::Normal,
            flags: Flags::default(),
        }
    }
}

/// How a file may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Nothing but whitespace and comments after the last statement.
    Clean,
    /// Inside a quoted string or identifier.
    InQuote,
    /// Inside a `/* */` comment.
    InComment,
    /// Code without its terminating `;`.
    Unterminated,
}

impl Scanner {
    /// Scans `buf[from..]`; returns the index just past the `;` ending the current statement
    /// (then [`Scanner::take_flags`] gives its flags and the scanner is ready for the next one),
    /// or `None` when every byte was consumed without one.
    pub fn feed(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        let n = buf.len();
        while i < n {
            match self.st {
                St::Normal => {
                    // Plain code: one byte at a time (numbers, commas, parentheses).
                    while i < n {
                        let b = buf[i];
                        i += 1;
                        match b {
                            b';' => {
                                return Some(i);
                            }
                            b'\'' | b'"' | b'`' => {
                                self.flags.code = true;
                                self.st = St::Quote(b);
                                break;
                            }
                            b'/' => {
                                self.st = St::Slash;
                                break;
                            }
                            b'-' => {
                                self.st = St::Dash;
                                break;
                            }
                            b'#' => {
                                self.st = St::Line;
                                break;
                            }
                            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {}
                            _ => self.flags.code = true,
                        }
                    }
                }
                St::Quote(q) => {
                    let hit = if q == b'`' {
                        memchr::memchr(q, &buf[i..])
                    } else {
                        memchr::memchr2(q, b'\\', &buf[i..])
                    };
                    match hit {
                        None => i = n,
                        Some(k) => {
                            let b = buf[i + k];
                            i += k + 1;
                            self.st = if b == b'\\' {
                                St::Escape(q)
                            } else {
                                St::Normal
                            };
                        }
                    }
                }
                St::Escape(q) => {
                    i += 1;
                    self.st = St::Quote(q);
                }
                St::Slash => {
                    if buf[i] == b'*' {
                        i += 1;
                        self.st = St::BlockStart;
                    } else {
                        // The slash was code (a division); look at this byte again.
                        self.flags.code = true;
                        self.st = St::Normal;
                    }
                }
                St::BlockStart => {
                    if buf[i] == b'!' || buf[i] == b'M' {
                        self.flags.exec_comment = true;
                    }
                    self.st = St::Block;
                }
                St::Block => match memchr::memchr(b'*', &buf[i..]) {
                    None => i = n,
                    Some(k) => {
                        i += k + 1;
                        self.st = St::BlockStar;
                    }
                },
                St::BlockStar => {
                    let b = buf[i];
                    i += 1;
                    self.st = match b {
                        b'/' => St::Normal,
                        b'*' => St::BlockStar,
                        _ => St::Block,
                    };
                }
                St::Dash => {
                    if buf[i] == b'-' {
                        i += 1;
                        self.st = St::Dash2;
                    } else {
                        self.flags.code = true;
                        self.st = St::Normal;
                    }
                }
                St::Dash2 => {
                    if matches!(buf[i], b' ' | b'\t' | b'\n' | b'\r') {
                        self.st = St::Line;
                    } else {
                        // `--x`: two minus signs.
                        self.flags.code = true;
                        self.st = St::Normal;
                    }
                }
                St::Line => match memchr::memchr(b'\n', &buf[i..]) {
                    None => i = n,
                    Some(k) => {
                        i += k + 1;
                        self.st = St::Normal;
                    }
                },
            }
        }
        None
    }

    /// The flags of the statement that just ended; resets them for the next.
    pub fn take_flags(&mut self) -> Flags {
        self.st = St::Normal;
        std::mem::take(&mut self.flags)
    }

    /// How the input ends if no byte follows.
    pub fn ending(&self) -> Ending {
        match self.st {
            St::Quote(_) | St::Escape(_) => Ending::InQuote,
            St::BlockStart | St::Block | St::BlockStar => Ending::InComment,
            St::Slash | St::Dash | St::Dash2 => Ending::Unterminated,
            St::Normal | St::Line if self.flags.code => Ending::Unterminated,
            St::Normal | St::Line => Ending::Clean,
        }
    }
}

/// A statement of [`split_all`]: its text (trimmed, without `;`), the offset just past its
/// `;`, its flags.
pub type Split<'a> = (&'a [u8], usize, Flags);

/// Splits a whole text into statements (without their `;`), with each one's end offset (just
/// past its `;`) and flags, and how the text ends. For schema files and tests; data files go
/// through [`super::reader::StmtReader`].
pub fn split_all(text: &[u8]) -> (Vec<Split<'_>>, Ending) {
    let mut sc = Scanner::default();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(end) = sc.feed(text, start) {
        let flags = sc.take_flags();
        out.push((trim(&text[start..end - 1]), end, flags));
        start = end;
    }
    (out, sc.ending())
}

/// `s` without leading and trailing ASCII whitespace.
pub fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let z = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |p| p + 1);
    &s[a..z.max(a)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (Vec<(String, usize, bool, bool)>, Ending) {
        let (v, e) = split_all(text.as_bytes());
        (
            v.into_iter()
                .map(|(s, end, f)| {
                    (
                        String::from_utf8_lossy(s).into_owned(),
                        end,
                        f.code,
                        f.exec_comment,
                    )
                })
                .collect(),
            e,
        )
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        type Case = (&'static str, Vec<(&'static str, bool, bool)>, Ending);
        let cases: Vec<Case> = vec![
            ("", vec![], Ending::Clean),
            ("  \n", vec![], Ending::Clean),
            (
                "a;b;",
                vec![("a", true, false), ("b", true, false)],
                Ending::Clean,
            ),
            (
                "INSERT INTO t VALUES ('a;b');\n",
                vec![("INSERT INTO t VALUES ('a;b')", true, false)],
                Ending::Clean,
            ),
            // Backslash escapes in single and double quotes.
            (
                r"X ('it\'s;', 'c:\\');",
                vec![(r"X ('it\'s;', 'c:\\')", true, false)],
                Ending::Clean,
            ),
            (
                r#"X ("say \"hi;\"");"#,
                vec![(r#"X ("say \"hi;\"")"#, true, false)],
                Ending::Clean,
            ),
            // Doubled quotes.
            (
                "X ('a'';b');",
                vec![("X ('a'';b')", true, false)],
                Ending::Clean,
            ),
            (
                "X (\"a\"\";b\");",
                vec![("X (\"a\"\";b\")", true, false)],
                Ending::Clean,
            ),
            // Backquotes: a backslash is an ordinary byte, `` is the escape.
            (
                "INSERT INTO `a\\` VALUES (1);",
                vec![("INSERT INTO `a\\` VALUES (1)", true, false)],
                Ending::Clean,
            ),
            (
                "INSERT INTO `a``;b` VALUES (1);",
                vec![("INSERT INTO `a``;b` VALUES (1)", true, false)],
                Ending::Clean,
            ),
            // Other quotes inside quotes.
            (
                "X ('\"`;');",
                vec![("X ('\"`;')", true, false)],
                Ending::Clean,
            ),
            // Comments.
            (
                "/*!40101 SET NAMES binary*/;\nINSERT 1;",
                vec![
                    ("/*!40101 SET NAMES binary*/", false, true),
                    ("INSERT 1", true, false),
                ],
                Ending::Clean,
            ),
            (
                "/*M!100000 SET x=1*/;",
                vec![("/*M!100000 SET x=1*/", false, true)],
                Ending::Clean,
            ),
            (
                "/* plain ; comment */;",
                vec![("/* plain ; comment */", false, false)],
                Ending::Clean,
            ),
            ("/**/;", vec![("/**/", false, false)], Ending::Clean),
            (
                "/* a **/ x;",
                vec![("/* a **/ x", true, false)],
                Ending::Clean,
            ),
            (
                "-- c;omment\nx;",
                vec![("-- c;omment\nx", true, false)],
                Ending::Clean,
            ),
            (
                "# c;omment\nx;",
                vec![("# c;omment\nx", true, false)],
                Ending::Clean,
            ),
            (
                "SELECT 1--1;",
                vec![("SELECT 1--1", true, false)],
                Ending::Clean,
            ),
            (
                "SELECT 4/2;",
                vec![("SELECT 4/2", true, false)],
                Ending::Clean,
            ),
            (
                "SELECT 1-2;",
                vec![("SELECT 1-2", true, false)],
                Ending::Clean,
            ),
            (
                "x;\n-- trailing comment",
                vec![("x", true, false)],
                Ending::Clean,
            ),
            (
                "x;\n/* trailing */\n",
                vec![("x", true, false)],
                Ending::Clean,
            ),
            // Bad endings.
            (
                "x;\nINSERT INTO t VALUES (1)",
                vec![("x", true, false)],
                Ending::Unterminated,
            ),
            ("INSERT INTO t VALUES ('abc", vec![], Ending::InQuote),
            ("INSERT INTO t VALUES ('abc\\", vec![], Ending::InQuote),
            ("x;/* open", vec![("x", true, false)], Ending::InComment),
            ("x;-", vec![("x", true, false)], Ending::Unterminated),
        ];
        for (text, want, ending) in cases {
            let (got, e) = split(text);
            let got: Vec<(String, bool, bool)> =
                got.into_iter().map(|(s, _, c, x)| (s, c, x)).collect();
            let want: Vec<(String, bool, bool)> = want
                .into_iter()
                .map(|(s, c, x)| (s.to_string(), c, x))
                .collect();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(e, ending, "{text:?}");
        }
    }

    #[test]
    fn end_offsets_point_past_the_semicolon() {
        let (v, _) = split("ab;\ncd;\n");
        let ends: Vec<usize> = v.iter().map(|x| x.1).collect();
        assert_eq!(ends, vec![3, 7]);
    }

    #[test]
    fn any_cut_of_the_input_gives_the_same_statements() {
        let text = "/*!40101 SET NAMES binary*/;\nINSERT INTO `t``x` VALUES (1,'a;\\'b',\"c\\\\\"),(2,'--',NULL);\n-- note;\n# x;\n/* y; */INSERT INTO t VALUES (3,'*/;');\n";
        let whole: Vec<(usize, Flags)> = {
            let (v, _) = split_all(text.as_bytes());
            v.into_iter().map(|(_, e, f)| (e, f)).collect()
        };
        let b = text.as_bytes();
        for cut_a in 0..b.len() {
            for step in [1usize, 3, 7] {
                // Feed [0..cut_a], then the rest in pieces of `step` bytes.
                let mut sc = Scanner::default();
                let mut got = Vec::new();
                let mut pos = 0;
                let mut limit = cut_a;
                loop {
                    while let Some(e) = sc.feed(&b[..limit], pos) {
                        got.push((e, sc.take_flags()));
                        pos = e;
                    }
                    pos = limit;
                    if limit == b.len() {
                        break;
                    }
                    limit = (limit + step).min(b.len());
                }
                assert_eq!(got, whole, "cut at {cut_a}, step {step}");
                assert_eq!(sc.ending(), Ending::Clean);
            }
        }
    }

    #[test]
    fn trim_strips_ascii_whitespace() {
        assert_eq!(trim(b"  a b \n"), b"a b");
        assert_eq!(trim(b" \n "), b"");
        assert_eq!(trim(b""), b"");
    }
}
