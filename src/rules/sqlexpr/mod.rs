//! A small SQL expression language — what DM users write in `expression-filter` rules — parsed
//! once ([`parse`]), bound to a table's column list ([`Expr::bind`]) and evaluated over one row of
//! [`crate::dml::Value`]s ([`eval::eval`]) with MySQL's semantics (three-valued logic, numbers vs
//! strings compared as DOUBLE, temporal columns vs string constants compared as dates).
//!
//! Grammar (keywords and function names case-insensitive), loosest binding first:
//! `OR ||` · `XOR` · `AND &&` · `NOT` · comparisons `= <=> <> != < <= > >=`,
//! `IS [NOT] NULL|TRUE|FALSE|UNKNOWN`, `[NOT] IN (…)`, `[NOT] BETWEEN a AND b`,
//! `[NOT] LIKE p [ESCAPE c]`, `[NOT] REGEXP|RLIKE p` · `|` · `&` · `<< >>` · `+ -` ·
//! `* / DIV % MOD` · `^` · unary `- + ~ !` · primaries: literals (integers, decimals, `1e3`,
//! `'…'` / `"…"` strings with backslash escapes, `_charset'…'`, `0x…` / `X'…'` / `b'…'` / `0b…`,
//! `NULL`, `TRUE`, `FALSE`), columns (`c`, `` `c` ``, `t.c`), `col->'$.path'` / `col->>'$.path'`,
//! `( expr )`, `CASE [x] WHEN … THEN … [ELSE …] END`, and the functions in [`FUNCTIONS`].
//!
//! An unknown function or a wrong argument count is a parse error ([`ParseError`]), so a task
//! check catches it; an unknown column is found by [`Expr::bind`] against the table's columns.
//! Pure: no I/O, never panics on input (nesting is bounded by [`MAX_DEPTH`]).

pub mod dec;
pub mod eval;

use dec::Dec;

/// Deepest nesting of parentheses / prefix operators the parser accepts.
pub const MAX_DEPTH: usize = 48;
/// Deepest expression tree accepted (a chain `a OR b OR …` is as deep as it is long), so
/// evaluation's recursion stays small.
pub const MAX_TREE_DEPTH: usize = 128;
/// Most tokens an expression may have.
pub const MAX_TOKENS: usize = 4096;

/// A value inside the evaluator.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Int(i64),
    UInt(u64),
    Dec(Dec),
    Float(f64),
    /// A character or binary string.
    Str(Vec<u8>),
    /// A hexadecimal or bit literal: a number in numeric context, a binary string otherwise.
    Bin(Vec<u8>),
    /// DATE / DATETIME / TIMESTAMP.
    Dt(eval::DateTime),
    /// TIME, as signed microseconds.
    Time(i64),
    /// ENUM member index (names unknown).
    Enum(u16),
    /// SET bit mask (names unknown).
    Set(u64),
}

/// A function the language knows, with its argument count range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Length,
    CharLength,
    Lower,
    Upper,
    Concat,
    ConcatWs,
    Substring,
    Left,
    Right,
    Trim,
    Ltrim,
    Rtrim,
    Reverse,
    Replace,
    Instr,
    Abs,
    Round,
    Truncate,
    Floor,
    Ceil,
    Mod,
    Sign,
    IfNull,
    NullIf,
    Coalesce,
    If,
    IsNull,
    Greatest,
    Least,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    Now,
    CurDate,
}

/// Every function name accepted, with its meaning and (min, max) argument counts.
pub const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("LENGTH", Func::Length, 1, 1),
    ("OCTET_LENGTH", Func::Length, 1, 1),
    ("CHAR_LENGTH", Func::CharLength, 1, 1),
    ("CHARACTER_LENGTH", Func::CharLength, 1, 1),
    ("LOWER", Func::Lower, 1, 1),
    ("LCASE", Func::Lower, 1, 1),
    ("UPPER", Func::Upper, 1, 1),
    ("UCASE", Func::Upper, 1, 1),
    ("CONCAT", Func::Concat, 1, usize::MAX),
    ("CONCAT_WS", Func::ConcatWs, 2, usize::MAX),
    ("SUBSTRING", Func::Substring, 2, 3),
    ("SUBSTR", Func::Substring, 2, 3),
    ("MID", Func::Substring, 3, 3),
    ("LEFT", Func::Left, 2, 2),
    ("RIGHT", Func::Right, 2, 2),
    ("TRIM", Func::Trim, 1, 1),
    ("LTRIM", Func::Ltrim, 1, 1),
    ("RTRIM", Func::Rtrim, 1, 1),
    ("REVERSE", Func::Reverse, 1, 1),
    ("REPLACE", Func::Replace, 3, 3),
    ("INSTR", Func::Instr, 2, 2),
    ("ABS", Func::Abs, 1, 1),
    ("ROUND", Func::Round, 1, 2),
    ("TRUNCATE", Func::Truncate, 2, 2),
    ("FLOOR", Func::Floor, 1, 1),
    ("CEIL", Func::Ceil, 1, 1),
    ("CEILING", Func::Ceil, 1, 1),
    ("MOD", Func::Mod, 2, 2),
    ("SIGN", Func::Sign, 1, 1),
    ("IFNULL", Func::IfNull, 2, 2),
    ("NULLIF", Func::NullIf, 2, 2),
    ("COALESCE", Func::Coalesce, 1, usize::MAX),
    ("IF", Func::If, 3, 3),
    ("ISNULL", Func::IsNull, 1, 1),
    ("GREATEST", Func::Greatest, 2, usize::MAX),
    ("LEAST", Func::Least, 2, usize::MAX),
    ("YEAR", Func::Year, 1, 1),
    ("MONTH", Func::Month, 1, 1),
    ("DAY", Func::Day, 1, 1),
    ("DAYOFMONTH", Func::Day, 1, 1),
    ("HOUR", Func::Hour, 1, 1),
    ("MINUTE", Func::Minute, 1, 1),
    ("SECOND", Func::Second, 1, 1),
    ("DATE", Func::Date, 1, 1),
    ("NOW", Func::Now, 0, 1),
    ("CURRENT_TIMESTAMP", Func::Now, 0, 1),
    ("LOCALTIME", Func::Now, 0, 1),
    ("LOCALTIMESTAMP", Func::Now, 0, 1),
    ("SYSDATE", Func::Now, 0, 1),
    ("UTC_TIMESTAMP", Func::Now, 0, 1),
    ("CURDATE", Func::CurDate, 0, 0),
    ("CURRENT_DATE", Func::CurDate, 0, 0),
    ("UTC_DATE", Func::CurDate, 0, 0),
];

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    Xor,
    And,
    Eq,
    NullSafeEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
    BitXor,
}

/// `IS [NOT] …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsWhat {
    Null,
    True,
    False,
}

/// A parsed expression. Column references carry their index once bound ([`Expr::bind`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(V),
    Col {
        name: String,
        idx: Option<usize>,
    },
    Unary(UnOp, Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Is {
        e: Box<Expr>,
        what: IsWhat,
        neg: bool,
    },
    In {
        e: Box<Expr>,
        list: Vec<Expr>,
        neg: bool,
    },
    Between {
        e: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        neg: bool,
    },
    Like {
        e: Box<Expr>,
        pat: Box<Expr>,
        escape: u8,
        neg: bool,
    },
    Regexp {
        e: Box<Expr>,
        pat: Box<Expr>,
        neg: bool,
    },
    Func(Func, Vec<Expr>),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// `e->'$.path'` (`unquote`: `->>`).
    Json {
        e: Box<Expr>,
        path: Vec<JsonStep>,
        unquote: bool,
    },
}

/// One step of a JSON path (`$.key`, `$[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

/// Why an expression text does not parse: what and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} (at offset {at})")]
pub struct ParseError {
    pub msg: String,
    pub at: usize,
}

impl Expr {
    /// Every column the expression names, in order of appearance (duplicates kept).
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Col { name, .. } = e {
                out.push(name.as_str());
            }
        });
        out
    }

    /// Is the tree at most `budget` levels deep? (Recursion bounded by `budget`.)
    fn depth_within(&self, budget: usize) -> bool {
        if budget == 0 {
            return false;
        }
        let b = budget - 1;
        match self {
            Expr::Lit(_) | Expr::Col { .. } => true,
            Expr::Unary(_, e) | Expr::Is { e, .. } | Expr::Json { e, .. } => e.depth_within(b),
            Expr::Bin(_, x, y)
            | Expr::Like { e: x, pat: y, .. }
            | Expr::Regexp { e: x, pat: y, .. } => x.depth_within(b) && y.depth_within(b),
            Expr::In { e, list, .. } => e.depth_within(b) && list.iter().all(|x| x.depth_within(b)),
            Expr::Between { e, lo, hi, .. } => {
                e.depth_within(b) && lo.depth_within(b) && hi.depth_within(b)
            }
            Expr::Func(_, args) => args.iter().all(|x| x.depth_within(b)),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                operand.as_ref().is_none_or(|o| o.depth_within(b))
                    && whens
                        .iter()
                        .all(|(w, t)| w.depth_within(b) && t.depth_within(b))
                    && otherwise.as_ref().is_none_or(|o| o.depth_within(b))
            }
        }
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Lit(_) | Expr::Col { .. } => {}
            Expr::Unary(_, e) | Expr::Is { e, .. } | Expr::Json { e, .. } => e.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::In { e, list, .. } => {
                e.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Expr::Between { e, lo, hi, .. } => {
                e.walk(f);
                lo.walk(f);
                hi.walk(f);
            }
            Expr::Like { e, pat, .. } | Expr::Regexp { e, pat, .. } => {
                e.walk(f);
                pat.walk(f);
            }
            Expr::Func(_, args) => args.iter().for_each(|x| x.walk(f)),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
        }
    }

    /// A copy with every column reference resolved against `columns` (compared
    /// case-insensitively, as MySQL compares column names). `Err(name)` names the first column
    /// the table does not have.
    pub fn bind(&self, columns: &[String]) -> Result<Expr, String> {
        let mut e = self.clone();
        e.bind_mut(columns)?;
        Ok(e)
    }

    fn bind_mut(&mut self, columns: &[String]) -> Result<(), String> {
        let r = |e: &mut Box<Expr>| e.bind_mut(columns);
        match self {
            Expr::Lit(_) => Ok(()),
            Expr::Col { name, idx } => {
                match columns.iter().position(|c| c.eq_ignore_ascii_case(name)) {
                    Some(i) => {
                        *idx = Some(i);
                        Ok(())
                    }
                    None => Err(name.clone()),
                }
            }
            Expr::Unary(_, e) | Expr::Is { e, .. } | Expr::Json { e, .. } => r(e),
            Expr::Bin(_, a, b) => {
                r(a)?;
                r(b)
            }
            Expr::In { e, list, .. } => {
                r(e)?;
                list.iter_mut().try_for_each(|x| x.bind_mut(columns))
            }
            Expr::Between { e, lo, hi, .. } => {
                r(e)?;
                r(lo)?;
                r(hi)
            }
            Expr::Like { e, pat, .. } | Expr::Regexp { e, pat, .. } => {
                r(e)?;
                r(pat)
            }
            Expr::Func(_, args) => args.iter_mut().try_for_each(|x| x.bind_mut(columns)),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    r(o)?;
                }
                for (w, t) in whens {
                    w.bind_mut(columns)?;
                    t.bind_mut(columns)?;
                }
                if let Some(o) = otherwise {
                    r(o)?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (keyword, function or column name), as written.
    Word(String),
    /// A backquoted identifier.
    Quoted(String),
    Str(Vec<u8>),
    Num(V),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "<=>", "->>", "<=", ">=", "<>", "!=", "<<", ">>", "||", "&&", "->", ":=", "=", "<", ">", "+",
    "-", "*", "/", "%", "(", ")", ",", "!", "~", "^", "|", "&", ".",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |msg: &str, at: usize| ParseError {
        msg: msg.to_string(),
        at,
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Comments: `-- `, `#`, `/* */`.
        if (c == b'-'
            && b.get(i + 1) == Some(&b'-')
            && b.get(i + 2).is_none_or(|x| x.is_ascii_whitespace()))
            || c == b'#'
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match src[i + 2..].find("*/") {
                Some(end) => {
                    i += 2 + end + 2;
                    continue;
                }
                None => return Err(err("unterminated comment", i)),
            }
        }
        if c == b'\'' || c == b'"' {
            let (s, next) = read_string(b, i).ok_or_else(|| err("unterminated string", start))?;
            out.push((Tok::Str(s), start));
            i = next;
            continue;
        }
        if c == b'`' {
            let mut name = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(err("unterminated quoted identifier", start)),
                    Some(b'`') if b.get(i + 1) == Some(&b'`') => {
                        name.push(b'`');
                        i += 2;
                    }
                    Some(b'`') => {
                        i += 1;
                        break;
                    }
                    Some(&x) => {
                        name.push(x);
                        i += 1;
                    }
                }
            }
            out.push((
                Tok::Quoted(String::from_utf8_lossy(&name).into_owned()),
                start,
            ));
            continue;
        }
        // x'..' / b'..' literals.
        if matches!(c, b'x' | b'X' | b'b' | b'B') && b.get(i + 1) == Some(&b'\'') {
            let end = src[i + 2..]
                .find('\'')
                .ok_or_else(|| err("unterminated literal", start))?;
            let body = &src[i + 2..i + 2 + end];
            let v = if matches!(c, b'x' | b'X') {
                if !body.len().is_multiple_of(2) {
                    return Err(err(
                        "a X'…' literal needs an even number of hex digits",
                        start,
                    ));
                }
                hex_bytes(body)
            } else {
                bit_bytes(body)
            }
            .ok_or_else(|| err("bad hexadecimal or bit literal", start))?;
            out.push((Tok::Num(V::Bin(v)), start));
            i += 2 + end + 1;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, next) = read_number(src, i).ok_or_else(|| err("bad number", start))?;
            out.push((tok, start));
            i = next;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$' || b[j] >= 0x80)
            {
                j += 1;
            }
            let word = &src[i..j];
            // A charset introducer: `_utf8mb4'…'`, `_binary"…"`.
            if word.starts_with('_') && matches!(b.get(j), Some(b'\'' | b'"')) {
                let (s, next) = read_string(b, j).ok_or_else(|| err("unterminated string", j))?;
                out.push((Tok::Str(s), start));
                i = next;
                continue;
            }
            out.push((Tok::Word(word.to_string()), start));
            i = j;
            continue;
        }
        match OPS.iter().find(|op| src[i..].starts_with(**op)) {
            Some(op) => {
                out.push((Tok::Op(op), start));
                i += op.len();
            }
            None => return Err(err(&format!("unexpected character {:?}", c as char), start)),
        }
    }
    Ok(out)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    };
    (0..s.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(s.get(k..k + 2)?, 16).ok())
        .collect()
}

fn bit_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.bytes().all(|c| c == b'0' || c == b'1') {
        return None;
    }
    let pad = (8 - s.len() % 8) % 8;
    let bits: Vec<u8> = std::iter::repeat_n(b'0', pad).chain(s.bytes()).collect();
    Some(
        bits.chunks(8)
            .map(|ch| ch.iter().fold(0u8, |acc, &c| (acc << 1) | (c - b'0')))
            .collect(),
    )
}

/// Reads a quoted string starting at `b[i]` (the quote): backslash escapes as MySQL reads them
/// and a doubled quote for the quote. Returns the bytes and the index after the closing quote.
pub(crate) fn read_string(b: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    let q = *b.get(i)?;
    let mut out = Vec::new();
    let mut j = i + 1;
    loop {
        let c = *b.get(j)?;
        if c == b'\\' {
            let n = *b.get(j + 1)?;
            if n == b'%' || n == b'_' {
                // MySQL keeps `\%` and `\_` as two characters (LIKE reads them as escapes).
                out.push(b'\\');
            }
            out.push(match n {
                b'0' => 0,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'Z' => 26,
                other => other,
            });
            j += 2;
        } else if c == q {
            if b.get(j + 1) == Some(&q) {
                out.push(q);
                j += 2;
            } else {
                return Some((out, j + 1));
            }
        } else {
            out.push(c);
            j += 1;
        }
    }
}

fn read_number(src: &str, i: usize) -> Option<(Tok, usize)> {
    let b = src.as_bytes();
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'b')) {
        let hex = b[i + 1] == b'x';
        let mut j = i + 2;
        while j < b.len()
            && (if hex {
                b[j].is_ascii_hexdigit()
            } else {
                b[j] == b'0' || b[j] == b'1'
            })
        {
            j += 1;
        }
        let body = &src[i + 2..j];
        let glued = b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !body.is_empty() && !glued {
            let v = if hex {
                hex_bytes(body)?
            } else {
                bit_bytes(body)?
            };
            return Some((Tok::Num(V::Bin(v)), j));
        }
    }
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    let mut is_dec = false;
    if b.get(j) == Some(&b'.') {
        is_dec = true;
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    let mut is_float = false;
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if b.get(k).is_some_and(u8::is_ascii_digit) {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
            is_float = true;
        }
    }
    if b.get(j)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return None;
    }
    let text = &src[i..j];
    let v = if is_float {
        V::Float(text.parse().ok()?)
    } else if is_dec {
        V::Dec(Dec::parse(text)?)
    } else if let Ok(n) = text.parse::<i64>() {
        V::Int(n)
    } else if let Ok(n) = text.parse::<u64>() {
        V::UInt(n)
    } else {
        V::Dec(Dec::parse(text)?)
    };
    Some((Tok::Num(v), j))
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parses one expression; the whole text must be consumed.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    if toks.len() > MAX_TOKENS {
        return Err(ParseError {
            msg: format!("expression too long (more than {MAX_TOKENS} tokens)"),
            at: 0,
        });
    }
    if toks.is_empty() {
        return Err(ParseError {
            msg: "empty expression".into(),
            at: 0,
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        len: src.len(),
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(p.err("unexpected text after the expression"));
    }
    if !e.depth_within(MAX_TREE_DEPTH) {
        return Err(ParseError {
            msg: format!(
                "expression nested too deeply (more than {MAX_TREE_DEPTH} levels; use IN (…) instead of long OR chains)"
            ),
            at: 0,
        });
    }
    Ok(e)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    len: usize,
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl Parser {
    fn err(&self, msg: &str) -> ParseError {
        let (what, at) = match self.toks.get(self.pos) {
            Some((t, at)) => (format!(" near {}", describe(t)), *at),
            None => (" at the end".to_string(), self.len),
        };
        ParseError {
            msg: format!("{msg}{what}"),
            at,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|(t, _)| t)
    }

    fn is_kw_at(&self, k: usize, kw: &str) -> bool {
        matches!(self.peek_at(k), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.err(&format!("expected `{op}`")))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {kw}")))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = self.or();
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.xor()?;
        while self.eat_kw("OR") || self.eat_op("||") {
            let r = self.xor()?;
            l = Expr::Bin(BinOp::Or, bx(l), bx(r));
        }
        Ok(l)
    }

    fn xor(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        while self.eat_kw("XOR") {
            let r = self.and()?;
            l = Expr::Bin(BinOp::Xor, bx(l), bx(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.not()?;
        while self.eat_kw("AND") || self.eat_op("&&") {
            let r = self.not()?;
            l = Expr::Bin(BinOp::And, bx(l), bx(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_kw("NOT") {
            self.enter()?;
            let e = self.not();
            self.depth -= 1;
            return Ok(Expr::Unary(UnOp::Not, bx(e?)));
        }
        self.predicate()
    }

    /// Comparisons and the predicates (IS, IN, BETWEEN, LIKE, REGEXP), left-associative.
    fn predicate(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.bitor()?;
        loop {
            let cmp = [
                ("<=>", BinOp::NullSafeEq),
                ("=", BinOp::Eq),
                ("<>", BinOp::Ne),
                ("!=", BinOp::Ne),
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ]
            .into_iter()
            .find(|(op, _)| self.is_op(op));
            if let Some((_, op)) = cmp {
                self.pos += 1;
                let r = self.bitor()?;
                l = Expr::Bin(op, bx(l), bx(r));
                continue;
            }
            if self.eat_kw("IS") {
                let neg = self.eat_kw("NOT");
                let what = if self.eat_kw("NULL") || self.eat_kw("UNKNOWN") {
                    IsWhat::Null
                } else if self.eat_kw("TRUE") {
                    IsWhat::True
                } else if self.eat_kw("FALSE") {
                    IsWhat::False
                } else {
                    return Err(self.err("expected NULL, TRUE, FALSE or UNKNOWN after IS"));
                };
                l = Expr::Is {
                    e: bx(l),
                    what,
                    neg,
                };
                continue;
            }
            let neg = self.is_kw("NOT")
                && ["IN", "BETWEEN", "LIKE", "REGEXP", "RLIKE"]
                    .iter()
                    .any(|k| self.is_kw_at(1, k));
            if neg {
                self.pos += 1;
            }
            if self.eat_kw("IN") {
                self.expect_op("(")?;
                let mut list = vec![self.expr()?];
                while self.eat_op(",") {
                    list.push(self.expr()?);
                }
                self.expect_op(")")?;
                l = Expr::In {
                    e: bx(l),
                    list,
                    neg,
                };
            } else if self.eat_kw("BETWEEN") {
                let lo = self.bitor()?;
                self.expect_kw("AND")?;
                let hi = self.bitor()?;
                l = Expr::Between {
                    e: bx(l),
                    lo: bx(lo),
                    hi: bx(hi),
                    neg,
                };
            } else if self.eat_kw("LIKE") {
                let pat = self.bitor()?;
                let mut escape = b'\\';
                if self.eat_kw("ESCAPE") {
                    match self.peek() {
                        Some(Tok::Str(s)) if s.len() == 1 => {
                            escape = s[0];
                            self.pos += 1;
                        }
                        _ => return Err(self.err("ESCAPE needs a one-character string")),
                    }
                }
                l = Expr::Like {
                    e: bx(l),
                    pat: bx(pat),
                    escape,
                    neg,
                };
            } else if self.eat_kw("REGEXP") || self.eat_kw("RLIKE") {
                let pat = self.bitor()?;
                if let Expr::Lit(V::Str(p)) = &pat {
                    let text = String::from_utf8_lossy(p);
                    if let Err(e) = regex::bytes::Regex::new(&text) {
                        return Err(self.err(&format!("bad regular expression {text:?}: {e}")));
                    }
                }
                l = Expr::Regexp {
                    e: bx(l),
                    pat: bx(pat),
                    neg,
                };
            } else {
                if neg {
                    self.pos -= 1;
                }
                return Ok(l);
            }
        }
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        kws: &[(&str, BinOp)],
        next: fn(&mut Parser) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let mut l = next(self)?;
        loop {
            let op = ops
                .iter()
                .find(|(o, _)| self.is_op(o))
                .or_else(|| kws.iter().find(|(k, _)| self.is_kw(k)));
            let Some(&(_, op)) = op else {
                return Ok(l);
            };
            self.pos += 1;
            let r = next(self)?;
            l = Expr::Bin(op, bx(l), bx(r));
        }
    }

    fn bitor(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(&[("|", BinOp::BitOr)], &[], Parser::bitand)
    }

    fn bitand(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(&[("&", BinOp::BitAnd)], &[], Parser::shift)
    }

    fn shift(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(
            &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
            &[],
            Parser::additive,
        )
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[],
            Parser::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Mod)],
            &[("DIV", BinOp::IntDiv), ("MOD", BinOp::Mod)],
            Parser::bitxor,
        )
    }

    fn bitxor(&mut self) -> Result<Expr, ParseError> {
        self.binary_level(&[("^", BinOp::BitXor)], &[], Parser::unary)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let op = if self.eat_op("-") {
            Some(UnOp::Neg)
        } else if self.eat_op("+") {
            None
        } else if self.eat_op("~") {
            Some(UnOp::BitNot)
        } else if self.eat_op("!") {
            Some(UnOp::Not)
        } else {
            return self.postfix();
        };
        self.enter()?;
        let e = self.unary();
        self.depth -= 1;
        let e = e?;
        Ok(match op {
            // Fold `-<number>` into the literal, so `-9223372036854775808` stays an integer.
            Some(UnOp::Neg) => match e {
                Expr::Lit(V::Int(n)) if n != i64::MIN => Expr::Lit(V::Int(-n)),
                Expr::Lit(V::UInt(n)) if n == 1u64 << 63 => Expr::Lit(V::Int(i64::MIN)),
                Expr::Lit(V::Dec(d)) if d.checked_neg().is_some() => {
                    Expr::Lit(V::Dec(d.checked_neg().unwrap_or(d)))
                }
                e => Expr::Unary(UnOp::Neg, bx(e)),
            },
            Some(op) => Expr::Unary(op, bx(e)),
            None => e,
        })
    }

    /// A primary, then any `->` / `->>` JSON extractions.
    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            let unquote = if self.eat_op("->>") {
                true
            } else if self.eat_op("->") {
                false
            } else {
                return Ok(e);
            };
            if !matches!(e, Expr::Col { .. }) {
                return Err(self.err("`->` needs a column on its left"));
            }
            let path = match self.peek() {
                Some(Tok::Str(s)) => {
                    let text = String::from_utf8_lossy(s).into_owned();
                    parse_json_path(&text).ok_or_else(|| {
                        self.err(&format!(
                            "unsupported JSON path {text:?} (use $.key and $[n])"
                        ))
                    })?
                }
                _ => return Err(self.err("expected a JSON path string")),
            };
            self.pos += 1;
            e = Expr::Json {
                e: bx(e),
                path,
                unquote,
            };
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err("expected an expression"));
        };
        match tok {
            Tok::Num(v) => {
                self.pos += 1;
                Ok(Expr::Lit(v))
            }
            Tok::Str(s) => {
                self.pos += 1;
                // Adjacent strings concatenate: 'a' 'b' is 'ab'.
                let mut s = s;
                while let Some(Tok::Str(more)) = self.peek() {
                    s.extend_from_slice(more);
                    self.pos += 1;
                }
                Ok(Expr::Lit(V::Str(s)))
            }
            Tok::Op("(") => {
                self.pos += 1;
                let e = self.expr()?;
                if self.is_op(",") {
                    return Err(self.err("row constructors are not supported"));
                }
                self.expect_op(")")?;
                Ok(e)
            }
            Tok::Quoted(name) => {
                self.pos += 1;
                self.column(name)
            }
            Tok::Word(w) => {
                let up = w.to_ascii_uppercase();
                match up.as_str() {
                    "NULL" => {
                        self.pos += 1;
                        return Ok(Expr::Lit(V::Null));
                    }
                    "TRUE" => {
                        self.pos += 1;
                        return Ok(Expr::Lit(V::Int(1)));
                    }
                    "FALSE" => {
                        self.pos += 1;
                        return Ok(Expr::Lit(V::Int(0)));
                    }
                    "CASE" => {
                        self.pos += 1;
                        return self.case();
                    }
                    "INTERVAL" | "SELECT" | "EXISTS" | "AND" | "OR" | "XOR" | "IS" | "IN"
                    | "BETWEEN" | "LIKE" | "WHEN" | "THEN" | "ELSE" | "END" | "DIV" | "MOD"
                        if up != "MOD" || !matches!(self.peek_at(1), Some(Tok::Op("("))) =>
                    {
                        return Err(self.err("unexpected keyword"));
                    }
                    _ => {}
                }
                self.pos += 1;
                if self.is_op("(") {
                    return self.call(&w);
                }
                // CURRENT_TIMESTAMP / CURRENT_DATE and friends without parentheses.
                if let Some(&(_, f, 0, _)) = FUNCTIONS
                    .iter()
                    .find(|(n, _, _, _)| n.eq_ignore_ascii_case(&w))
                    .filter(|(n, ..)| {
                        n.starts_with("CURRENT_") || n.starts_with("LOCAL") || n.starts_with("UTC_")
                    })
                {
                    return Ok(Expr::Func(f, Vec::new()));
                }
                self.column(w)
            }
            Tok::Op(_) => Err(self.err("expected an expression")),
        }
    }

    /// `name`, or `qualifier.name` (the qualifier is ignored: there is one table).
    fn column(&mut self, name: String) -> Result<Expr, ParseError> {
        let mut name = name;
        while self.eat_op(".") {
            match self.peek().cloned() {
                Some(Tok::Word(n)) | Some(Tok::Quoted(n)) => {
                    self.pos += 1;
                    name = n;
                }
                _ => return Err(self.err("expected a column name after `.`")),
            }
        }
        Ok(Expr::Col { name, idx: None })
    }

    fn call(&mut self, name: &str) -> Result<Expr, ParseError> {
        let Some(&(_, f, min, max)) = FUNCTIONS
            .iter()
            .find(|(n, _, _, _)| n.eq_ignore_ascii_case(name))
        else {
            self.pos -= 1;
            return Err(self.err(&format!("unknown function {}", name.to_ascii_uppercase())));
        };
        self.expect_op("(")?;
        let mut args = Vec::new();
        if !self.eat_op(")") {
            loop {
                args.push(self.expr()?);
                if f == Func::Substring && args.len() == 1 && self.eat_kw("FROM") {
                    args.push(self.expr()?);
                    if self.eat_kw("FOR") {
                        args.push(self.expr()?);
                    }
                    self.expect_op(")")?;
                    break;
                }
                if self.eat_op(")") {
                    break;
                }
                self.expect_op(",")?;
            }
        }
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            self.pos -= 1;
            return Err(self.err(&format!(
                "function {} takes {want} argument(s), got {}",
                name.to_ascii_uppercase(),
                args.len()
            )));
        }
        Ok(Expr::Func(f, args))
    }

    fn case(&mut self) -> Result<Expr, ParseError> {
        let operand = if self.is_kw("WHEN") {
            None
        } else {
            Some(bx(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let w = self.expr()?;
            self.expect_kw("THEN")?;
            let t = self.expr()?;
            whens.push((w, t));
        }
        if whens.is_empty() {
            return Err(self.err("CASE needs at least one WHEN"));
        }
        let otherwise = if self.eat_kw("ELSE") {
            Some(bx(self.expr()?))
        } else {
            None
        };
        self.expect_kw("END")?;
        Ok(Expr::Case {
            operand,
            whens,
            otherwise,
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("{w:?}"),
        Tok::Quoted(w) => format!("`{w}`"),
        Tok::Str(s) => format!("'{}'", String::from_utf8_lossy(s)),
        Tok::Num(v) => format!("{v:?}"),
        Tok::Op(o) => format!("`{o}`"),
    }
}

/// `$`, `$.a.b`, `$."a b"`, `$[0]`, `$.a[2].b`.
fn parse_json_path(p: &str) -> Option<Vec<JsonStep>> {
    let b = p.trim().as_bytes();
    if b.first() != Some(&b'$') {
        return None;
    }
    let mut i = 1;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let end = i + 1 + b[i + 1..].iter().position(|&c| c == b'"')?;
                    out.push(JsonStep::Key(
                        String::from_utf8_lossy(&b[i + 1..end]).into_owned(),
                    ));
                    i = end + 1;
                } else {
                    let start = i;
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric()
                            || b[i] == b'_'
                            || b[i] == b'$'
                            || b[i] >= 0x80)
                    {
                        i += 1;
                    }
                    if start == i {
                        return None;
                    }
                    out.push(JsonStep::Key(
                        String::from_utf8_lossy(&b[start..i]).into_owned(),
                    ));
                }
            }
            b'[' => {
                let end = i + b[i..].iter().position(|&c| c == b']')?;
                let n: usize = std::str::from_utf8(&b[i + 1..end])
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                out.push(JsonStep::Index(n));
                i = end + 1;
            }
            b' ' => i += 1,
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
