//! Evaluation of a bound [`Expr`] over one row, with MySQL's rules:
//! - NULL propagates through operators and functions; `AND`/`OR`/`XOR`/`NOT` are three-valued;
//!   `<=>` is NULL-safe; `IN` without a match but with a NULL in the list is NULL.
//! - Comparison: two strings compare byte-wise (DM evaluates with TiDB's binary collation, so
//!   `'a' = 'A'` is FALSE); two integers exactly; a DECIMAL with an integer or DECIMAL exactly;
//!   a string with a number, or anything with a DOUBLE, as DOUBLE; a DATE/DATETIME/TIMESTAMP or
//!   TIME with a string as temporal values when the string reads as one.
//! - Arithmetic: integers stay integers (overflow is an error, as MySQL's "BIGINT value is out of
//!   range"), DECIMALs are exact, strings become DOUBLE; `/` gives a DECIMAL with 4 more digits;
//!   division or modulo by zero is NULL.
//! - ENUM and SET values arrive as member index / bit mask (the binlog does not carry member
//!   names): they act as numbers, and comparing one with a string is an [`EvalError`] saying so.
//! - Temporal "now" functions read the system clock in UTC (the downstream session's time zone).

use std::cmp::Ordering;

use super::dec::Dec;
use super::{BinOp, Expr, Func, IsWhat, JsonStep, UnOp, V};
use crate::dml::Value;

/// Why a row could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}

/// A DATE, DATETIME or TIMESTAMP value (TIMESTAMPs in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
    /// A DATE (no time part); ignored by comparisons.
    pub date_only: bool,
}

impl DateTime {
    fn key(&self) -> (u16, u8, u8, u8, u8, u8, u32) {
        (
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros,
        )
    }

    fn text(&self) -> String {
        if self.date_only {
            return format!("{:04}-{:02}-{:02}", self.year, self.month, self.day);
        }
        let mut s = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.micros != 0 {
            s.push_str(&format!(".{:06}", self.micros));
        }
        s
    }

    fn is_zero(&self) -> bool {
        self.key() == (0, 0, 0, 0, 0, 0, 0)
    }

    fn from_unix(secs: u64, micros: u32) -> DateTime {
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        DateTime {
            year: y.clamp(0, 9999) as u16,
            month: m as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            micros,
            date_only: false,
        }
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn micros_of(frac: &[u8]) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    let mut f: Vec<u8> = frac.iter().copied().take(6).collect();
    while f.len() < 6 {
        f.push(b'0');
    }
    digits(&f)
}

/// `YYYY-MM-DD`, `YYYY-MM-DD hh:mm:ss[.ffffff]` (or `T` between), as MySQL reads a string in a
/// temporal comparison. Anything else is `None`.
pub fn parse_datetime(s: &[u8]) -> Option<DateTime> {
    let s = s.trim_ascii();
    let (date, time) = match s.iter().position(|&c| c == b' ' || c == b'T') {
        Some(p) => (&s[..p], Some(s[p + 1..].trim_ascii())),
        None => (s, None),
    };
    let mut parts = date.split(|&c| c == b'-');
    let y = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let d = digits(parts.next()?)?;
    if parts.next().is_some() || y > 9999 || m > 12 || d > 31 {
        return None;
    }
    let mut dt = DateTime {
        year: y as u16,
        month: m as u8,
        day: d as u8,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
        date_only: time.is_none(),
    };
    if let Some(t) = time {
        let (hms, frac) = match t.iter().position(|&c| c == b'.') {
            Some(p) => (&t[..p], &t[p + 1..]),
            None => (t, &[][..]),
        };
        let mut p = hms.split(|&c| c == b':');
        let h = digits(p.next()?)?;
        let mi = p.next().map_or(Some(0), digits)?;
        let se = p.next().map_or(Some(0), digits)?;
        if p.next().is_some() || h > 23 || mi > 59 || se > 59 {
            return None;
        }
        dt.hour = h as u8;
        dt.minute = mi as u8;
        dt.second = se as u8;
        dt.micros = micros_of(frac)?;
    }
    Some(dt)
}

/// `[-]h:mm:ss[.ffffff]` or `[-]hh:mm` → signed microseconds.
pub fn parse_time(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let (hms, frac) = match s.iter().position(|&c| c == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[][..]),
    };
    let mut p = hms.split(|&c| c == b':');
    let h = i64::from(digits(p.next()?)?);
    let m = i64::from(digits(p.next()?)?);
    let sec = p.next().map_or(Some(0), digits)?;
    if p.next().is_some() || m > 59 || sec > 59 {
        return None;
    }
    let us = ((h * 60 + m) * 60 + i64::from(sec)) * 1_000_000 + i64::from(micros_of(frac)?);
    Some(if neg { -us } else { us })
}

fn time_text(us: i64) -> String {
    let neg = us < 0;
    let a = us.unsigned_abs();
    let (secs, micros) = (a / 1_000_000, a % 1_000_000);
    let mut s = format!(
        "{}{:02}:{:02}:{:02}",
        if neg { "-" } else { "" },
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    if micros != 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    s
}

/// A row value as the evaluator sees it.
pub fn from_value(v: &Value) -> V {
    match v {
        Value::Null | Value::Missing => V::Null,
        Value::Int(i) => V::Int(*i),
        Value::UInt(u) => V::UInt(*u),
        Value::Float(bits) => V::Float(f64::from(f32::from_bits(*bits))),
        Value::Double(bits) => V::Float(f64::from_bits(*bits)),
        Value::Decimal(s) => match Dec::parse(s) {
            Some(d) => V::Dec(d),
            None => V::Float(s.trim().parse().unwrap_or(0.0)),
        },
        Value::Bytes(b) => V::Str(b.clone()),
        Value::Date { year, month, day } => V::Dt(DateTime {
            year: *year,
            month: *month,
            day: *day,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            date_only: true,
        }),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => V::Dt(DateTime {
            year: *year,
            month: *month,
            day: *day,
            hour: *hour,
            minute: *minute,
            second: *second,
            micros: *micros,
            date_only: false,
        }),
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
        } => {
            let us = ((i64::from(*hours) * 60 + i64::from(*minute)) * 60 + i64::from(*second))
                * 1_000_000
                + i64::from(*micros);
            V::Time(if *negative { -us } else { us })
        }
        Value::Timestamp { secs, micros } => {
            if *secs == 0 && *micros == 0 {
                V::Dt(DateTime {
                    year: 0,
                    month: 0,
                    day: 0,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    micros: 0,
                    date_only: false,
                })
            } else {
                V::Dt(DateTime::from_unix(*secs, *micros))
            }
        }
        Value::Year(y) => V::Int(i64::from(*y)),
        Value::Enum(i) => V::Enum(*i),
        Value::Set(m) => V::Set(*m),
        Value::Bit(b) => V::UInt(*b),
    }
}

/// A numeric view of a value.
#[derive(Debug, Clone, Copy)]
enum Num {
    I(i64),
    U(u64),
    D(Dec),
    F(f64),
}

impl Num {
    fn f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::U(u) => u as f64,
            Num::D(d) => d.to_f64(),
            Num::F(f) => f,
        }
    }

    fn dec(self) -> Option<Dec> {
        match self {
            Num::I(i) => Some(Dec::from_i128(i.into())),
            Num::U(u) => Some(Dec::from_i128(u.into())),
            Num::D(d) => Some(d),
            Num::F(_) => None,
        }
    }

    fn int(self) -> Option<i128> {
        match self {
            Num::I(i) => Some(i.into()),
            Num::U(u) => Some(u.into()),
            _ => None,
        }
    }
}

/// MySQL's string → DOUBLE: the longest numeric prefix (after spaces), else 0.
fn str_to_f64(s: &[u8]) -> f64 {
    let s = s.trim_ascii_start();
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut has_digits = i > int_start;
    if s.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        let mut j = frac_start;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > frac_start || has_digits {
            has_digits = has_digits || j > frac_start;
            i = j;
        }
    }
    if !has_digits {
        return 0.0;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_start = j;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    std::str::from_utf8(&s[..i])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

fn bin_to_u64(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .take(8)
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn dt_number(d: &DateTime) -> Num {
    let date = i64::from(d.year) * 10_000 + i64::from(d.month) * 100 + i64::from(d.day);
    if d.date_only {
        return Num::I(date);
    }
    let n = date * 1_000_000
        + i64::from(d.hour) * 10_000
        + i64::from(d.minute) * 100
        + i64::from(d.second);
    if d.micros == 0 {
        Num::I(n)
    } else {
        Num::D(Dec {
            m: i128::from(n) * 1_000_000 + i128::from(d.micros),
            s: 6,
        })
    }
}

fn time_number(us: i64) -> Num {
    let neg = us < 0;
    let a = us.unsigned_abs();
    let secs = a / 1_000_000;
    let n = (secs / 3600 * 10_000 + secs % 3600 / 60 * 100 + secs % 60) as i128;
    let micros = (a % 1_000_000) as i128;
    let m = n * 1_000_000 + micros;
    let m = if neg { -m } else { m };
    if micros == 0 {
        Num::I((m / 1_000_000) as i64)
    } else {
        Num::D(Dec { m, s: 6 })
    }
}

/// The numeric view; `None` for NULL.
fn num(v: &V) -> Option<Num> {
    Some(match v {
        V::Null => return None,
        V::Int(i) => Num::I(*i),
        V::UInt(u) => Num::U(*u),
        V::Dec(d) => Num::D(*d),
        V::Float(f) => Num::F(*f),
        V::Str(s) => Num::F(str_to_f64(s)),
        V::Bin(b) => Num::U(bin_to_u64(b)),
        V::Dt(d) => dt_number(d),
        V::Time(t) => time_number(*t),
        V::Enum(i) => Num::U(u64::from(*i)),
        V::Set(m) => Num::U(*m),
    })
}

fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// The string view; `None` for NULL.
fn text(v: &V) -> Result<Option<Vec<u8>>, EvalError> {
    Ok(Some(match v {
        V::Null => return Ok(None),
        V::Str(s) | V::Bin(s) => s.clone(),
        V::Int(i) => i.to_string().into_bytes(),
        V::UInt(u) => u.to_string().into_bytes(),
        V::Dec(d) => d.to_string().into_bytes(),
        V::Float(f) => float_text(*f).into_bytes(),
        V::Dt(d) => d.text().into_bytes(),
        V::Time(t) => time_text(*t).into_bytes(),
        V::Enum(_) | V::Set(_) => return fail(ENUM_AS_STRING),
    }))
}

const ENUM_AS_STRING: &str = "an ENUM or SET column is used as a string, but the binlog carries only the member's index (ENUM) or bit mask (SET), not its name: compare with the index or mask instead (e.g. c_enum = 2)";

/// MySQL's truth value: NULL is unknown, numbers are true when non-zero, strings as DOUBLE.
pub fn truth(v: &V) -> Option<bool> {
    match v {
        V::Null => None,
        V::Dt(d) => Some(!d.is_zero()),
        other => num(other).map(|n| match n {
            Num::I(i) => i != 0,
            Num::U(u) => u != 0,
            Num::D(d) => !d.is_zero(),
            Num::F(f) => f != 0.0,
        }),
    }
}

fn bool_v(b: Option<bool>) -> V {
    match b {
        None => V::Null,
        Some(true) => V::Int(1),
        Some(false) => V::Int(0),
    }
}

/// Compares two values as MySQL does; `None` when either is NULL.
pub fn compare(a: &V, b: &V) -> Result<Option<Ordering>, EvalError> {
    use V::*;
    Ok(Some(match (a, b) {
        (Null, _) | (_, Null) => return Ok(None),
        (Str(x) | Bin(x), Str(y) | Bin(y)) => x.as_slice().cmp(y.as_slice()),
        (Dt(x), Dt(y)) => x.key().cmp(&y.key()),
        (Dt(x), Str(s)) => match parse_datetime(s) {
            Some(y) => x.key().cmp(&y.key()),
            None => x.text().as_bytes().cmp(s.as_slice()),
        },
        (Str(_), Dt(_)) => return Ok(compare(b, a)?.map(Ordering::reverse)),
        (Time(x), Time(y)) => x.cmp(y),
        (Time(x), Str(s)) => match parse_time(s) {
            Some(y) => x.cmp(&y),
            None => time_text(*x).as_bytes().cmp(s.as_slice()),
        },
        (Str(_), Time(_)) => return Ok(compare(b, a)?.map(Ordering::reverse)),
        (Enum(_) | Set(_), Str(_)) | (Str(_), Enum(_) | Set(_)) => return fail(ENUM_AS_STRING),
        _ => {
            let (Some(x), Some(y)) = (num(a), num(b)) else {
                return Ok(None);
            };
            let as_double = matches!(x, Num::F(_))
                || matches!(y, Num::F(_))
                || matches!(a, Str(_))
                || matches!(b, Str(_));
            if as_double {
                match x.f64().partial_cmp(&y.f64()) {
                    Some(o) => o,
                    None => return Ok(None),
                }
            } else if let (Some(i), Some(j)) = (x.int(), y.int()) {
                i.cmp(&j)
            } else {
                match (x.dec(), y.dec()) {
                    (Some(d), Some(e)) => d.cmp_dec(e),
                    _ => x.f64().total_cmp(&y.f64()),
                }
            }
        }
    }))
}

/// Is `v` exactly the integer 1? That is DM's test for "the filter matched" (`GetInt64() == 1`):
/// comparisons and logical operators give 1 for TRUE; other truthy values (2, 0.5, 'x') do not
/// match, as in DM.
pub fn is_one(v: &V) -> bool {
    matches!(v, V::Int(1) | V::UInt(1))
}

/// Evaluates a bound expression over `row` (the evaluator's view of each column,
/// [`from_value`]).
pub fn eval(e: &Expr, row: &[V]) -> Result<V, EvalError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Col { name, idx } => match idx.and_then(|i| row.get(i)) {
            Some(v) => Ok(v.clone()),
            None => fail(format!("column {name:?} is not in the row")),
        },
        Expr::Unary(op, x) => {
            let v = eval(x, row)?;
            match op {
                UnOp::Not => Ok(bool_v(truth(&v).map(|b| !b))),
                UnOp::Neg => match num(&v) {
                    None => Ok(V::Null),
                    Some(Num::I(i)) => match i.checked_neg() {
                        Some(n) => Ok(V::Int(n)),
                        None => Ok(V::Dec(Dec::from_i128(-i128::from(i)))),
                    },
                    Some(Num::U(u)) => {
                        let n = -i128::from(u);
                        Ok(i64::try_from(n).map_or(V::Dec(Dec::from_i128(n)), V::Int))
                    }
                    Some(Num::D(d)) => Ok(d.checked_neg().map_or(V::Float(-d.to_f64()), V::Dec)),
                    Some(Num::F(f)) => Ok(V::Float(-f)),
                },
                UnOp::BitNot => Ok(match to_u64(&v) {
                    None => V::Null,
                    Some(u) => V::UInt(!u),
                }),
            }
        }
        Expr::Bin(op, a, b) => binary(*op, a, b, row),
        Expr::Is { e, what, neg } => {
            let v = eval(e, row)?;
            let t = truth(&v);
            let r = match what {
                IsWhat::Null => t.is_none(),
                IsWhat::True => t == Some(true),
                IsWhat::False => t == Some(false),
            };
            Ok(bool_v(Some(r != *neg)))
        }
        Expr::In { e, list, neg } => {
            let v = eval(e, row)?;
            if matches!(v, V::Null) {
                return Ok(V::Null);
            }
            let mut saw_null = false;
            for item in list {
                let w = eval(item, row)?;
                match compare(&v, &w)? {
                    Some(Ordering::Equal) => return Ok(bool_v(Some(!*neg))),
                    None => saw_null = true,
                    Some(_) => {}
                }
            }
            Ok(if saw_null {
                V::Null
            } else {
                bool_v(Some(*neg))
            })
        }
        Expr::Between { e, lo, hi, neg } => {
            let v = eval(e, row)?;
            let ge = compare(&v, &eval(lo, row)?)?.map(|o| o != Ordering::Less);
            let le = compare(&v, &eval(hi, row)?)?.map(|o| o != Ordering::Greater);
            let r = and3(ge, le);
            Ok(bool_v(if *neg { r.map(|b| !b) } else { r }))
        }
        Expr::Like {
            e,
            pat,
            escape,
            neg,
        } => {
            let (Some(s), Some(p)) = (text(&eval(e, row)?)?, text(&eval(pat, row)?)?) else {
                return Ok(V::Null);
            };
            let m = like(&s, &p, *escape);
            Ok(bool_v(Some(m != *neg)))
        }
        Expr::Regexp { e, pat, neg } => {
            let (Some(s), Some(p)) = (text(&eval(e, row)?)?, text(&eval(pat, row)?)?) else {
                return Ok(V::Null);
            };
            let re = regex::bytes::Regex::new(&String::from_utf8_lossy(&p))
                .map_err(|err| EvalError(format!("bad regular expression: {err}")))?;
            Ok(bool_v(Some(re.is_match(&s) != *neg)))
        }
        Expr::Func(f, args) => func(*f, args, row),
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let op = match operand {
                Some(o) => Some(eval(o, row)?),
                None => None,
            };
            for (w, t) in whens {
                let wv = eval(w, row)?;
                let hit = match &op {
                    Some(o) => compare(o, &wv)? == Some(Ordering::Equal),
                    None => truth(&wv) == Some(true),
                };
                if hit {
                    return eval(t, row);
                }
            }
            match otherwise {
                Some(o) => eval(o, row),
                None => Ok(V::Null),
            }
        }
        Expr::Json { e, path, unquote } => {
            let Some(doc) = text(&eval(e, row)?)? else {
                return Ok(V::Null);
            };
            let Ok(mut j) = serde_json::from_slice::<serde_json::Value>(&doc) else {
                return fail("the value is not valid JSON");
            };
            for step in path {
                let next = match step {
                    JsonStep::Key(k) => j.get_mut(k.as_str()).map(std::mem::take),
                    JsonStep::Index(i) => j.get_mut(*i).map(std::mem::take),
                };
                match next {
                    Some(n) => j = n,
                    None => return Ok(V::Null),
                }
            }
            Ok(match j {
                serde_json::Value::String(s) => V::Str(s.into_bytes()),
                serde_json::Value::Number(n) if !*unquote => {
                    if let Some(i) = n.as_i64() {
                        V::Int(i)
                    } else if let Some(u) = n.as_u64() {
                        V::UInt(u)
                    } else {
                        V::Float(n.as_f64().unwrap_or(0.0))
                    }
                }
                serde_json::Value::Bool(b) if !*unquote => V::Int(i64::from(b)),
                other => V::Str(other.to_string().into_bytes()),
            })
        }
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn to_u64(v: &V) -> Option<u64> {
    Some(match num(v)? {
        Num::I(i) => i as u64,
        Num::U(u) => u,
        Num::D(d) => d.round(0).map_or(0, |r| r.m) as u64,
        Num::F(f) => f.round() as i64 as u64,
    })
}

fn binary(op: BinOp, a: &Expr, b: &Expr, row: &[V]) -> Result<V, EvalError> {
    match op {
        BinOp::And => {
            let x = truth(&eval(a, row)?);
            if x == Some(false) {
                return Ok(V::Int(0));
            }
            Ok(bool_v(and3(x, truth(&eval(b, row)?))))
        }
        BinOp::Or => {
            let x = truth(&eval(a, row)?);
            if x == Some(true) {
                return Ok(V::Int(1));
            }
            let y = truth(&eval(b, row)?);
            Ok(bool_v(match (x, y) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }))
        }
        BinOp::Xor => {
            let (x, y) = (truth(&eval(a, row)?), truth(&eval(b, row)?));
            Ok(bool_v(x.zip(y).map(|(x, y)| x != y)))
        }
        _ => {
            let x = eval(a, row)?;
            let y = eval(b, row)?;
            binary_values(op, &x, &y)
        }
    }
}

fn binary_values(op: BinOp, x: &V, y: &V) -> Result<V, EvalError> {
    let cmp =
        |f: fn(Ordering) -> bool| -> Result<V, EvalError> { Ok(bool_v(compare(x, y)?.map(f))) };
    match op {
        BinOp::Eq => cmp(|o| o == Ordering::Equal),
        BinOp::Ne => cmp(|o| o != Ordering::Equal),
        BinOp::Lt => cmp(|o| o == Ordering::Less),
        BinOp::Le => cmp(|o| o != Ordering::Greater),
        BinOp::Gt => cmp(|o| o == Ordering::Greater),
        BinOp::Ge => cmp(|o| o != Ordering::Less),
        BinOp::NullSafeEq => Ok(V::Int(match (x, y) {
            (V::Null, V::Null) => 1,
            (V::Null, _) | (_, V::Null) => 0,
            _ => i64::from(compare(x, y)? == Some(Ordering::Equal)),
        })),
        BinOp::BitOr | BinOp::BitAnd | BinOp::BitXor | BinOp::Shl | BinOp::Shr => {
            let (Some(p), Some(q)) = (to_u64(x), to_u64(y)) else {
                return Ok(V::Null);
            };
            Ok(V::UInt(match op {
                BinOp::BitOr => p | q,
                BinOp::BitAnd => p & q,
                BinOp::BitXor => p ^ q,
                BinOp::Shl => p.checked_shl(q.min(64) as u32).unwrap_or(0),
                _ => p.checked_shr(q.min(64) as u32).unwrap_or(0),
            }))
        }
        _ => arith(op, x, y),
    }
}

fn int_result(n: i128, what: &str) -> Result<V, EvalError> {
    if let Ok(i) = i64::try_from(n) {
        Ok(V::Int(i))
    } else if let Ok(u) = u64::try_from(n) {
        Ok(V::UInt(u))
    } else {
        fail(format!("BIGINT value is out of range in {what}"))
    }
}

/// An integer operation's result as MySQL types it: UNSIGNED when an operand is (an error when
/// negative), else signed (an error outside the BIGINT range).
fn typed_int_result(n: i128, unsigned: bool, what: &str) -> Result<V, EvalError> {
    let out = if unsigned {
        u64::try_from(n).ok().map(V::UInt)
    } else {
        i64::try_from(n).ok().map(V::Int)
    };
    match out {
        Some(v) => Ok(v),
        None => fail(format!(
            "BIGINT{} value is out of range in {what}",
            if unsigned { " UNSIGNED" } else { "" }
        )),
    }
}

fn arith(op: BinOp, x: &V, y: &V) -> Result<V, EvalError> {
    let (Some(p), Some(q)) = (num(x), num(y)) else {
        return Ok(V::Null);
    };
    let float = matches!(p, Num::F(_))
        || matches!(q, Num::F(_))
        || matches!(x, V::Str(_))
        || matches!(y, V::Str(_));
    let sym = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::IntDiv => "DIV",
        _ => "%",
    };
    if op == BinOp::IntDiv {
        // Integer division of the exact (or DOUBLE) quotient, truncated.
        if let (Some(i), Some(j)) = (p.int(), q.int()) {
            return if j == 0 {
                Ok(V::Null)
            } else {
                int_result(i / j, "DIV")
            };
        }
        let d = q.f64();
        if d == 0.0 {
            return Ok(V::Null);
        }
        let r = (p.f64() / d).trunc();
        return int_result(r as i128, "DIV");
    }
    if !float && let (Some(i), Some(j)) = (p.int(), q.int()) {
        let unsigned = matches!(p, Num::U(_)) || matches!(q, Num::U(_));
        return match op {
            BinOp::Add => typed_int_result(i + j, unsigned, "+"),
            BinOp::Sub => typed_int_result(i - j, unsigned, "-"),
            BinOp::Mul => match i.checked_mul(j) {
                Some(n) => typed_int_result(n, unsigned, "*"),
                None => fail("BIGINT value is out of range in *"),
            },
            BinOp::Mod => {
                if j == 0 {
                    Ok(V::Null)
                } else {
                    typed_int_result(i % j, unsigned && i >= 0, "%")
                }
            }
            _ => {
                if j == 0 {
                    return Ok(V::Null);
                }
                Ok(Dec::from_i128(i)
                    .checked_div(Dec::from_i128(j))
                    .map_or(V::Float(i as f64 / j as f64), V::Dec))
            }
        };
    }
    if !float && let (Some(d), Some(e)) = (p.dec(), q.dec()) {
        if matches!(op, BinOp::Div | BinOp::Mod) && e.is_zero() {
            return Ok(V::Null);
        }
        let r = match op {
            BinOp::Add => d.checked_add(e),
            BinOp::Sub => d.checked_sub(e),
            BinOp::Mul => d.checked_mul(e),
            BinOp::Div => d.checked_div(e),
            _ => d.checked_rem(e),
        };
        if let Some(r) = r {
            return Ok(V::Dec(r));
        }
    }
    let (f, g) = (p.f64(), q.f64());
    let r = match op {
        BinOp::Add => f + g,
        BinOp::Sub => f - g,
        BinOp::Mul => f * g,
        BinOp::Div | BinOp::Mod if g == 0.0 => return Ok(V::Null),
        BinOp::Div => f / g,
        _ => f % g,
    };
    if !r.is_finite() {
        return fail(format!("DOUBLE value is out of range in {sym}"));
    }
    Ok(V::Float(r))
}

/// SQL LIKE on bytes: `%` any run, `_` one character (a UTF-8 sequence), `escape` quotes the
/// next pattern byte.
pub fn like(s: &[u8], p: &[u8], escape: u8) -> bool {
    // Iterative matcher with backtracking to the last `%`.
    let char_len = |b: &[u8], i: usize| -> usize {
        let c = b[i];
        let n = if c < 0x80 {
            1
        } else if c >= 0xF0 {
            4
        } else if c >= 0xE0 {
            3
        } else if c >= 0xC0 {
            2
        } else {
            1
        };
        n.min(b.len() - i)
    };
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'%' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'_' => {
                    si += char_len(s, si);
                    pi += 1;
                    continue;
                }
                c => {
                    let (lit, step) = if c == escape && pi + 1 < p.len() {
                        (p[pi + 1], 2)
                    } else {
                        (c, 1)
                    };
                    if s[si] == lit {
                        si += 1;
                        pi += step;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                let next = ss + char_len(s, ss);
                star = Some((sp, next));
                pi = sp + 1;
                si = next;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'%')
}

fn now() -> DateTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    DateTime::from_unix(d.as_secs(), 0)
}

/// A temporal view of a value: a DATE/DATETIME, or a string that reads as one.
fn as_dt(v: &V) -> Option<DateTime> {
    match v {
        V::Dt(d) => Some(*d),
        V::Str(s) => parse_datetime(s),
        V::Int(_) | V::UInt(_) => {
            let n = match num(v)? {
                Num::I(i) => i,
                Num::U(u) => i64::try_from(u).ok()?,
                _ => return None,
            };
            let s = n.to_string();
            let b = s.as_bytes();
            match b.len() {
                8 => parse_datetime(format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]).as_bytes()),
                14 => parse_datetime(
                    format!(
                        "{}-{}-{} {}:{}:{}",
                        &s[..4],
                        &s[4..6],
                        &s[6..8],
                        &s[8..10],
                        &s[10..12],
                        &s[12..]
                    )
                    .as_bytes(),
                ),
                _ => None,
            }
        }
        _ => None,
    }
}

fn chars_of(b: &[u8]) -> Vec<&[u8]> {
    let s = String::from_utf8_lossy(b);
    if matches!(s, std::borrow::Cow::Borrowed(_)) {
        let mut out = Vec::new();
        let mut i = 0;
        for c in s.chars() {
            let n = c.len_utf8();
            out.push(&b[i..i + n]);
            i += n;
        }
        out
    } else {
        b.chunks(1).collect()
    }
}

fn int_arg(v: &V) -> Option<i64> {
    match num(v)? {
        Num::I(i) => Some(i),
        Num::U(u) => Some(i64::try_from(u).unwrap_or(i64::MAX)),
        Num::D(d) => Some(
            d.round(0)
                .map_or(0, |r| r.m.clamp(i64::MIN.into(), i64::MAX.into()) as i64),
        ),
        Num::F(f) => Some(f.round() as i64),
    }
}

fn func(f: Func, args: &[Expr], row: &[V]) -> Result<V, EvalError> {
    // Lazily evaluated functions first.
    match f {
        Func::If => {
            let c = truth(&eval(&args[0], row)?);
            return eval(&args[if c == Some(true) { 1 } else { 2 }], row);
        }
        Func::IfNull | Func::Coalesce => {
            for a in args {
                let v = eval(a, row)?;
                if !matches!(v, V::Null) {
                    return Ok(v);
                }
            }
            return Ok(V::Null);
        }
        Func::Now => return Ok(V::Dt(now())),
        Func::CurDate => {
            let mut d = now();
            d.hour = 0;
            d.minute = 0;
            d.second = 0;
            d.date_only = true;
            return Ok(V::Dt(d));
        }
        _ => {}
    }
    let vals = args
        .iter()
        .map(|a| eval(a, row))
        .collect::<Result<Vec<V>, _>>()?;
    let v0 = &vals[0];
    let null_in = vals.iter().any(|v| matches!(v, V::Null));
    match f {
        Func::IsNull => return Ok(bool_v(Some(matches!(v0, V::Null)))),
        Func::NullIf => {
            return Ok(if compare(v0, &vals[1])? == Some(Ordering::Equal) {
                V::Null
            } else {
                v0.clone()
            });
        }
        Func::ConcatWs => {
            let Some(sep) = text(v0)? else {
                return Ok(V::Null);
            };
            let mut out = Vec::new();
            let mut first = true;
            for v in &vals[1..] {
                if let Some(t) = text(v)? {
                    if !first {
                        out.extend_from_slice(&sep);
                    }
                    out.extend_from_slice(&t);
                    first = false;
                }
            }
            return Ok(V::Str(out));
        }
        _ => {}
    }
    if null_in {
        return Ok(V::Null);
    }
    let s0 = || -> Result<Vec<u8>, EvalError> { Ok(text(v0)?.unwrap_or_default()) };
    Ok(match f {
        Func::Length => V::Int(s0()?.len() as i64),
        Func::CharLength => V::Int(chars_of(&s0()?).len() as i64),
        Func::Lower => V::Str(String::from_utf8_lossy(&s0()?).to_lowercase().into_bytes()),
        Func::Upper => V::Str(String::from_utf8_lossy(&s0()?).to_uppercase().into_bytes()),
        Func::Reverse => {
            let s = s0()?;
            V::Str(chars_of(&s).into_iter().rev().flatten().copied().collect())
        }
        Func::Trim => V::Str(s0()?.trim_ascii().to_vec()),
        Func::Ltrim => V::Str(s0()?.trim_ascii_start().to_vec()),
        Func::Rtrim => V::Str(s0()?.trim_ascii_end().to_vec()),
        Func::Concat => {
            let mut out = Vec::new();
            for v in &vals {
                out.extend_from_slice(&text(v)?.unwrap_or_default());
            }
            V::Str(out)
        }
        Func::Substring | Func::Left | Func::Right => {
            let s = s0()?;
            let cs = chars_of(&s);
            let n = cs.len() as i64;
            let (start, len) = match f {
                Func::Left => (0, int_arg(&vals[1]).unwrap_or(0).max(0)),
                Func::Right => {
                    let k = int_arg(&vals[1]).unwrap_or(0).clamp(0, n);
                    (n - k, k)
                }
                _ => {
                    let pos = int_arg(&vals[1]).unwrap_or(0);
                    let len = match vals.get(2) {
                        Some(l) => int_arg(l).unwrap_or(0),
                        None => i64::MAX,
                    };
                    // MySQL: position 1 is the first character, negative counts from the end, 0
                    // gives the empty string.
                    let start = if pos > 0 {
                        pos - 1
                    } else if pos < 0 && -pos <= n {
                        n + pos
                    } else {
                        return Ok(V::Str(Vec::new()));
                    };
                    (start, len.max(0))
                }
            };
            let start = start.clamp(0, n) as usize;
            let end = (start as i64).saturating_add(len).clamp(0, n) as usize;
            V::Str(
                cs[start..end]
                    .iter()
                    .flat_map(|c| c.iter().copied())
                    .collect(),
            )
        }
        Func::Replace => {
            let (s, from, to) = (
                s0()?,
                text(&vals[1])?.unwrap_or_default(),
                text(&vals[2])?.unwrap_or_default(),
            );
            if from.is_empty() {
                V::Str(s)
            } else {
                let mut out = Vec::new();
                let mut i = 0;
                while i < s.len() {
                    if s[i..].starts_with(&from) {
                        out.extend_from_slice(&to);
                        i += from.len();
                    } else {
                        out.push(s[i]);
                        i += 1;
                    }
                }
                V::Str(out)
            }
        }
        Func::Instr => {
            let (s, sub) = (s0()?, text(&vals[1])?.unwrap_or_default());
            let pos = if sub.is_empty() {
                Some(0)
            } else {
                s.windows(sub.len()).position(|w| w == sub.as_slice())
            };
            match pos {
                Some(byte) => V::Int(chars_of(&s[..byte]).len() as i64 + 1),
                None => V::Int(0),
            }
        }
        Func::Abs => match num(v0) {
            Some(Num::I(i)) => match i.checked_abs() {
                Some(a) => V::Int(a),
                None => V::UInt(i.unsigned_abs()),
            },
            Some(Num::U(u)) => V::UInt(u),
            Some(Num::D(d)) => d.abs().map_or(V::Float(d.to_f64().abs()), V::Dec),
            Some(Num::F(f)) => V::Float(f.abs()),
            None => V::Null,
        },
        Func::Sign => V::Int(match num(v0) {
            Some(Num::I(i)) => i.signum(),
            Some(Num::U(u)) => i64::from(u > 0),
            Some(Num::D(d)) => d.m.signum() as i64,
            Some(Num::F(f)) => {
                if f > 0.0 {
                    1
                } else if f < 0.0 {
                    -1
                } else {
                    0
                }
            }
            None => 0,
        }),
        Func::Round | Func::Truncate => {
            let d = vals.get(1).and_then(int_arg).unwrap_or(0);
            match num(v0) {
                Some(Num::F(x)) => {
                    let p = 10f64.powi(d.clamp(-308, 308) as i32);
                    let r = if f == Func::Round {
                        (x * p).round() / p
                    } else {
                        (x * p).trunc() / p
                    };
                    V::Float(r)
                }
                Some(n) => {
                    let Some(dec) = n.dec() else {
                        return Ok(V::Null);
                    };
                    let r = if f == Func::Round {
                        dec.round(d)
                    } else {
                        truncate_dec(dec, d)
                    };
                    match (r, n) {
                        (Some(r), Num::I(_) | Num::U(_)) if r.s == 0 => int_result(r.m, "ROUND")?,
                        (Some(r), _) => V::Dec(r),
                        (None, _) => V::Float(n.f64()),
                    }
                }
                None => V::Null,
            }
        }
        Func::Floor | Func::Ceil => match num(v0) {
            Some(Num::F(x)) => V::Float(if f == Func::Floor {
                x.floor()
            } else {
                x.ceil()
            }),
            Some(n) => match n.dec() {
                Some(d) => int_result(d.floor_ceil(f == Func::Ceil), "FLOOR")?,
                None => V::Null,
            },
            None => V::Null,
        },
        Func::Mod => arith(BinOp::Mod, v0, &vals[1])?,
        Func::Greatest | Func::Least => {
            let mut best = v0.clone();
            for v in &vals[1..] {
                let o = compare(v, &best)?;
                let better = if f == Func::Greatest {
                    o == Some(Ordering::Greater)
                } else {
                    o == Some(Ordering::Less)
                };
                if better {
                    best = v.clone();
                }
            }
            best
        }
        Func::Year | Func::Month | Func::Day | Func::Date => match as_dt(v0) {
            Some(d) => match f {
                Func::Year => V::Int(i64::from(d.year)),
                Func::Month => V::Int(i64::from(d.month)),
                Func::Day => V::Int(i64::from(d.day)),
                _ => V::Dt(DateTime {
                    hour: 0,
                    minute: 0,
                    second: 0,
                    micros: 0,
                    date_only: true,
                    ..d
                }),
            },
            None => V::Null,
        },
        Func::Hour | Func::Minute | Func::Second => {
            let secs = match v0 {
                V::Time(t) => Some(t.unsigned_abs() / 1_000_000),
                V::Str(s) => parse_time(s)
                    .map(|t| t.unsigned_abs() / 1_000_000)
                    .or_else(|| {
                        parse_datetime(s).map(|d| {
                            u64::from(d.hour) * 3600
                                + u64::from(d.minute) * 60
                                + u64::from(d.second)
                        })
                    }),
                other => as_dt(other).map(|d| {
                    u64::from(d.hour) * 3600 + u64::from(d.minute) * 60 + u64::from(d.second)
                }),
            };
            match secs {
                Some(s) => V::Int(match f {
                    Func::Hour => s / 3600,
                    Func::Minute => s % 3600 / 60,
                    _ => s % 60,
                } as i64),
                None => V::Null,
            }
        }
        Func::If
        | Func::IfNull
        | Func::Coalesce
        | Func::Now
        | Func::CurDate
        | Func::IsNull
        | Func::NullIf
        | Func::ConcatWs => V::Null,
    })
}

fn truncate_dec(d: Dec, digits: i64) -> Option<Dec> {
    let digits = digits.clamp(-38, 30);
    if digits >= d.s as i64 {
        return Some(d);
    }
    let drop = (d.s as i64 - digits) as u32;
    let p = 10i128.checked_pow(drop)?;
    let q = d.m / p;
    if digits >= 0 {
        Some(Dec {
            m: q,
            s: digits as u32,
        })
    } else {
        Some(Dec {
            m: q.checked_mul(10i128.checked_pow((-digits) as u32)?)?,
            s: 0,
        })
    }
}
