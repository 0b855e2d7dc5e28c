//! Schema/table name patterns as DM's `table-rule-selector` reads them: `*` matches zero or more
//! characters and must be the last character, `?` matches exactly one, `[a-z]` / `[!abc]` match one
//! character from (or outside) a set; everything else matches itself. Matching works on bytes, as
//! DM's trie does. Used by routes, binlog filters and the non-regexp block-allow-list entries.
//! Pure: it never lowercases by itself (callers decide case sensitivity, [`fold`] and
//! [`compile_rule`] take it as an argument) and never panics on input.

/// `s` as rules match it: lower-cased unless the task is case-sensitive.
pub fn fold(s: &str, case_sensitive: bool) -> String {
    if case_sensitive {
        s.to_string()
    } else {
        s.to_lowercase()
    }
}

/// A rule's schema pattern and its table pattern (`None` when empty), folded with [`fold`];
/// a bad pattern is [`super::RulesError::Pattern`] naming the rule's kind and name.
pub fn compile_rule(
    kind: &'static str,
    rule: &str,
    schema: &str,
    table: &str,
    case_sensitive: bool,
) -> Result<(Pattern, Option<Pattern>), super::RulesError> {
    let compile = |p: &str| {
        Pattern::new(&fold(p, case_sensitive)).map_err(|reason| super::RulesError::Pattern {
            kind,
            rule: rule.to_string(),
            pattern: p.to_string(),
            reason,
        })
    };
    let s = compile(schema)?;
    let t = if table.is_empty() {
        None
    } else {
        Some(compile(table)?)
    };
    Ok((s, t))
}

/// One compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    toks: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    One,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

impl Pattern {
    /// Compiles `pattern`; the error text says what is wrong (e.g. `*` not last).
    pub fn new(pattern: &str) -> Result<Self, String> {
        let b = pattern.as_bytes();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if matches!(toks.last(), Some(Tok::Star)) {
                return Err("`*` must be the last character of a wildcard pattern".into());
            }
            match b[i] {
                b'*' => toks.push(Tok::Star),
                b'?' => toks.push(Tok::One),
                b'[' => match b[i..].iter().position(|&c| c == b']') {
                    None => toks.push(Tok::Lit(b'[')),
                    Some(close) => {
                        let body = &b[i + 1..i + close];
                        let (negated, body) = match body.split_first() {
                            Some((b'!', rest)) => (true, rest),
                            _ => (false, body),
                        };
                        let mut ranges = Vec::new();
                        let mut j = 0;
                        while j < body.len() {
                            if j + 2 < body.len() && body[j + 1] == b'-' {
                                ranges.push((body[j], body[j + 2]));
                                j += 3;
                            } else {
                                ranges.push((body[j], body[j]));
                                j += 1;
                            }
                        }
                        if negated && ranges.is_empty() {
                            // DM reads `[!]` as the literal `!`.
                            toks.push(Tok::Lit(b'!'));
                        } else {
                            toks.push(Tok::Set { negated, ranges });
                        }
                        i += close;
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Pattern {
            source: pattern.to_string(),
            toks,
        })
    }

    /// The pattern text as written in the rule.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Does the whole of `name` match?
    pub fn matches(&self, name: &str) -> bool {
        let s = name.as_bytes();
        let mut i = 0;
        for tok in &self.toks {
            let c = match tok {
                Tok::Star => return true,
                _ => match s.get(i) {
                    Some(&c) => c,
                    None => return false,
                },
            };
            let ok = match tok {
                Tok::Lit(l) => *l == c,
                Tok::One | Tok::Star => true,
                Tok::Set { negated, ranges } => {
                    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                }
            };
            if !ok {
                return false;
            }
            i += 1;
        }
        i == s.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("test_*", "test_", true),
            ("test_*", "test_01", true),
            ("test_*", "test", false),
            ("test_*", "xtest_1", false),
            ("t?", "t1", true),
            ("t?", "t", false),
            ("t?", "t12", false),
            ("t??*", "t12", true),
            ("t??*", "t1", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc", "ab", false),
            ("t[0-9]", "t5", true),
            ("t[0-9]", "ta", false),
            ("t[!0-9]", "ta", true),
            ("t[!0-9]", "t5", false),
            ("t[abc]x", "tbx", true),
            ("t[abc]x", "tdx", false),
            ("t[a-c-e]", "t-", true),
            ("t[a-ce]", "te", true),
            ("t[!]", "t!", true),
            ("t[", "t[", true),
            ("[", "[", true),
            ("?", "", false),
            ("", "", true),
            ("", "a", false),
            ("a.b", "a.b", true),
            ("a.b", "axb", false),
        ];
        for &(p, s, want) in cases {
            let pat = Pattern::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(pat.matches(s), want, "pattern {p:?} on {s:?}");
        }
    }

    #[test]
    fn star_must_be_last() {
        for p in ["a*b", "**", "*a", "t_*_x"] {
            assert!(Pattern::new(p).is_err(), "{p} should be rejected");
        }
        for p in ["a*", "*", "a?*", "[*]"] {
            assert!(Pattern::new(p).is_ok(), "{p} should be accepted");
        }
    }
}
