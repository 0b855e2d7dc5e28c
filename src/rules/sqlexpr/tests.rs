use super::eval::{eval, from_value, is_one};
use super::*;
use crate::dml::Value;

fn cols() -> Vec<String> {
    [
        "id", "c", "name", "price", "ratio", "d", "dt", "t", "n", "js", "e", "bits", "ts", "y",
        "neg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn row() -> Vec<Value> {
    vec![
        Value::Int(7),
        Value::Int(4),
        Value::Bytes(b"Alice".to_vec()),
        Value::Decimal("12.50".into()),
        Value::double(0.5),
        Value::Date {
            year: 2021,
            month: 3,
            day: 9,
        },
        Value::DateTime {
            year: 2021,
            month: 1,
            day: 1,
            hour: 12,
            minute: 34,
            second: 56,
            micros: 789_000,
        },
        Value::Time {
            negative: true,
            hours: 838,
            minute: 58,
            second: 50,
            micros: 123_450,
        },
        Value::Null,
        Value::Bytes(br#"{"id": 2, "tags": ["a", "b"], "name": "x"}"#.to_vec()),
        Value::Enum(2),
        Value::Bit(15),
        Value::Timestamp {
            secs: 1_609_459_200,
            micros: 0,
        },
        Value::Year(2021),
        Value::Int(-3),
    ]
}

/// Evaluates `src` over [`row`]: `Ok(Some(1|0))`, `Ok(None)` for NULL, or the rendered value.
fn run(src: &str) -> Result<V, String> {
    let e = parse(src).map_err(|e| format!("parse: {e}"))?;
    let b = e.bind(&cols()).map_err(|c| format!("unknown column {c}"))?;
    let r: Vec<V> = row().iter().map(from_value).collect();
    eval(&b, &r).map_err(|e| format!("eval: {e}"))
}

const T: V = V::Int(1);
const F: V = V::Int(0);
const N: V = V::Null;

#[test]
fn boolean_results_table() {
    let cases: &[(&str, V)] = &[
        // comparisons
        ("c = 4", T),
        ("c <> 4", F),
        ("c != 5", T),
        ("c < 5 AND c <= 4 AND c > 3 AND c >= 4", T),
        ("c % 2 = 0", T),
        ("id % 2 = 0", F),
        ("c = '4'", T),
        ("c = '4abc'", T),
        ("c = ' 4'", T),
        ("'abc' = 0", T),
        ("name = 'Alice'", T),
        ("name = 'alice'", F),
        ("name > 'Al'", T),
        ("name < 'B'", T),
        ("price = 12.5", T),
        ("price > 12", T),
        ("price >= 12.50", T),
        ("price = '12.5'", T),
        ("ratio = 0.5", T),
        ("ratio < 1", T),
        ("0.1 + 0.2 = 0.3", T),
        ("1 = 1.0", T),
        ("18446744073709551615 > 0", T),
        ("-9223372036854775808 < 0", T),
        // NULL semantics
        ("n = 1", N),
        ("n <> 1", N),
        ("n = NULL", N),
        ("n <=> NULL", T),
        ("c <=> NULL", F),
        ("c <=> 4", T),
        ("n IS NULL", T),
        ("n IS NOT NULL", F),
        ("c IS NOT NULL", T),
        ("NOT n", N),
        ("n AND 0", F),
        ("n AND 1", N),
        ("n OR 1", T),
        ("n OR 0", N),
        ("n XOR 1", N),
        ("1 XOR 1", F),
        ("1 XOR 0", T),
        ("TRUE AND NOT FALSE", T),
        ("c = 4 && id = 7", T),
        ("c = 5 || id = 7", T),
        ("!(c = 4)", F),
        ("c IS TRUE", T),
        ("0 IS FALSE", T),
        ("n IS UNKNOWN", T),
        ("n IS NOT TRUE", T),
        // IN / BETWEEN
        ("c IN (1, 2, 4)", T),
        ("c IN (1, 2)", F),
        ("c NOT IN (1, 2)", T),
        ("c IN (1, NULL)", N),
        ("c IN (4, NULL)", T),
        ("c NOT IN (1, NULL)", N),
        ("n IN (1)", N),
        ("name IN ('Bob', 'Alice')", T),
        ("c BETWEEN 1 AND 4", T),
        ("c BETWEEN 5 AND 9", F),
        ("c NOT BETWEEN 5 AND 9", T),
        ("c BETWEEN n AND 9", N),
        ("c BETWEEN n AND 3", F),
        ("price BETWEEN 12 AND 13", T),
        // LIKE / REGEXP
        ("name LIKE 'A%'", T),
        ("name LIKE 'a%'", F),
        ("name LIKE '_lice'", T),
        ("name LIKE '%ic%'", T),
        ("name LIKE 'Al'", F),
        ("name NOT LIKE 'B%'", T),
        ("'50%' LIKE '50\\%'", T),
        ("'50x' LIKE '50\\%'", F),
        ("'a_c' LIKE 'a|_c' ESCAPE '|'", T),
        ("'abc' LIKE 'a|_c' ESCAPE '|'", F),
        ("n LIKE 'x'", N),
        ("c LIKE '4'", T),
        ("'Müller' LIKE 'M_ller'", T),
        ("'' LIKE '%'", T),
        ("'abcabc' LIKE '%abc'", T),
        ("name REGEXP '^A.*e$'", T),
        ("name NOT RLIKE '^B'", T),
        // arithmetic
        ("c + 1 = 5", T),
        ("c - 10 = -6", T),
        ("c * 3 = 12", T),
        ("c / 8 = 0.5", T),
        ("7 / 2 = 3.5", T),
        ("1 / 3 = 0.3333", T),
        ("7 DIV 2 = 3", T),
        ("-7 DIV 2 = -3", T),
        ("7 MOD 3 = 1", T),
        ("-7 % 3 = -1", T),
        ("c / 0 IS NULL", T),
        ("c % 0 IS NULL", T),
        ("c DIV 0 IS NULL", T),
        ("n + 1 IS NULL", T),
        ("'3' + 1 = 4", T),
        ("price * 2 = 25", T),
        ("ratio * 4 = 2", T),
        ("- c = -4", T),
        ("-neg = 3", T),
        ("2 + 3 * 4 = 14", T),
        ("(2 + 3) * 4 = 20", T),
        ("c*c + id*id = 65", T),
        ("5 & 3 = 1", T),
        ("5 | 3 = 7", T),
        ("5 ^ 3 = 6", T),
        ("1 << 4 = 16", T),
        ("bits = b'1111'", T),
        ("bits = 0xF", T),
        ("bits = 15", T),
        ("X'41' = 'A'", T),
        ("0x41 = 'A'", T),
        // functions
        ("LENGTH(name) = 5", T),
        ("LENGTH('Müller') = 7", T),
        ("CHAR_LENGTH('Müller') = 6", T),
        ("LOWER(name) = 'alice'", T),
        ("UPPER(name) = 'ALICE'", T),
        ("lcase('AB') = 'ab'", T),
        ("CONCAT(name, '-', c) = 'Alice-4'", T),
        ("CONCAT(name, n) IS NULL", T),
        ("CONCAT_WS(',', 'a', n, 'b') = 'a,b'", T),
        ("SUBSTRING(name, 2) = 'lice'", T),
        ("SUBSTRING(name, 2, 3) = 'lic'", T),
        ("SUBSTRING(name, -3) = 'ice'", T),
        ("SUBSTRING(name, 0) = ''", T),
        ("SUBSTRING(name FROM 2 FOR 2) = 'li'", T),
        ("SUBSTR('Müller', 2, 1) = 'ü'", T),
        ("LEFT(name, 2) = 'Al'", T),
        ("RIGHT(name, 2) = 'ce'", T),
        ("TRIM('  x ') = 'x'", T),
        ("REPLACE(name, 'l', 'L') = 'ALice'", T),
        ("INSTR(name, 'ice') = 3", T),
        ("REVERSE('abc') = 'cba'", T),
        ("ABS(neg) = 3", T),
        ("ABS(-1.5) = 1.5", T),
        ("ROUND(2.5) = 3", T),
        ("ROUND(-2.5) = -3", T),
        ("ROUND(1.2345, 2) = 1.23", T),
        ("ROUND(price) = 13", T),
        ("ROUND(ratio) = 1", T),
        ("TRUNCATE(1.29, 1) = 1.2", T),
        ("FLOOR(-1.5) = -2", T),
        ("CEIL(1.2) = 2", T),
        ("CEILING(price) = 13", T),
        ("MOD(c, 3) = 1", T),
        ("SIGN(neg) = -1", T),
        ("IFNULL(n, 5) = 5", T),
        ("IFNULL(c, 5) = 4", T),
        ("COALESCE(n, n, 'z') = 'z'", T),
        ("COALESCE(n) IS NULL", T),
        ("IF(c > 3, 'big', 'small') = 'big'", T),
        ("IF(n, 1, 2) = 2", T),
        ("NULLIF(c, 4) IS NULL", T),
        ("ISNULL(n)", T),
        ("GREATEST(1, c, 3) = 4", T),
        ("LEAST(5, c, 9) = 4", T),
        // temporal
        ("YEAR(d) = 2021", T),
        ("MONTH(d) = 3", T),
        ("DAY(d) = 9", T),
        ("DAYOFMONTH(d) = 9", T),
        ("YEAR('2020-02-29') = 2020", T),
        ("YEAR(n) IS NULL", T),
        ("d = '2021-03-09'", T),
        ("d = '2021-03-09 00:00:00'", T),
        ("d > '2021-03-01'", T),
        ("d < '2021-12-01'", T),
        ("d BETWEEN '2021-01-01' AND '2021-12-31'", T),
        ("dt = '2021-01-01 12:34:56.789'", T),
        ("dt > '2021-01-01'", T),
        ("dt < '2021-01-01 12:34:57'", T),
        ("DATE(dt) = '2021-01-01'", T),
        ("HOUR(dt) = 12 AND MINUTE(dt) = 34 AND SECOND(dt) = 56", T),
        ("t = '-838:58:50.12345'", T),
        ("t < '00:00:00'", T),
        ("HOUR(t) = 838", T),
        ("ts = '2021-01-01 00:00:00'", T),
        ("ts < NOW()", T),
        ("dt < CURRENT_TIMESTAMP", T),
        ("d < CURDATE()", T),
        ("y = '2021'", T),
        ("y = 2021", T),
        ("d = 20210309", T),
        // enum as number, json
        ("e = 2", T),
        ("e + 0 = 2", T),
        ("js->'$.id' = 2", T),
        ("js->\"$.id\" = 2", T),
        ("js->>'$.name' = 'x'", T),
        ("js->'$.tags[1]' = 'b'", T),
        ("js->'$.missing' IS NULL", T),
        // case, quoting, comments
        ("CASE WHEN c > 3 THEN 1 ELSE 0 END", T),
        ("CASE c WHEN 1 THEN 'a' WHEN 4 THEN 'd' END = 'd'", T),
        ("CASE c WHEN 1 THEN 'a' END IS NULL", T),
        ("`c` = 4", T),
        ("t1.c = 4", T),
        ("`T1`.`C` = 4", T),
        ("C = 4", T),
        ("name = _utf8mb4'Alice'", T),
        ("name = \"Alice\"", T),
        ("'It''s' = 'It\\'s'", T),
        ("'a' 'b' = 'ab'", T),
        ("c = 4 /* comment */", T),
        ("c = 4 -- trailing", T),
        ("'Müller…' != 'Müller…'", F),
        ("1e1 = 10", T),
        ("1.5e0 = 1.5", T),
    ];
    let mut failures = Vec::new();
    for (src, want) in cases {
        match run(src) {
            Ok(got) if &got == want => {}
            Ok(got) => failures.push(format!("{src}: got {got:?}, want {want:?}")),
            Err(e) => failures.push(format!("{src}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn value_results_table() {
    let cases: &[(&str, V)] = &[
        ("1 + 2", V::Int(3)),
        ("7 / 2", V::Dec(dec::Dec { m: 35, s: 1 })),
        ("c", V::Int(4)),
        ("name", V::Str(b"Alice".to_vec())),
        ("1.5 + 1", V::Dec(dec::Dec { m: 25, s: 1 })),
        ("ratio + 1", V::Float(1.5)),
        ("'2' * '3'", V::Float(6.0)),
        ("18446744073709551614 + 1", V::UInt(u64::MAX)),
        ("-c", V::Int(-4)),
        ("CONCAT('a', 1.50)", V::Str(b"a1.5".to_vec())),
        ("CONCAT('a', 1.0E0)", V::Str(b"a1".to_vec())),
        ("c > 1", V::Int(1)),
        ("NULL", V::Null),
    ];
    for (src, want) in cases {
        assert_eq!(run(src).as_ref(), Ok(want), "{src}");
    }
}

#[test]
fn is_one_is_dms_match_rule() {
    // DM skips a row when the expression's value is the integer 1 (`GetInt64() == 1`).
    let cases: &[(&str, bool)] = &[
        ("c = 4", true),
        ("c = 5", false),
        ("n = 1", false),
        ("1", true),
        ("2", false),
        ("c - 3", true),
        ("0.5 + 0.5", false),
        ("'1'", false),
        ("TRUE", true),
    ];
    for (src, want) in cases {
        let v = run(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(is_one(&v), *want, "{src} → {v:?}");
    }
}

#[test]
fn eval_errors_table() {
    let cases: &[(&str, &str)] = &[
        ("e = 'b'", "ENUM or SET"),
        ("CONCAT(e, 'x')", "ENUM or SET"),
        ("9223372036854775807 * 2", "BIGINT value is out of range"),
        ("9223372036854775807 + 1", "BIGINT value is out of range"),
        (
            "18446744073709551615 + 1",
            "BIGINT UNSIGNED value is out of range",
        ),
        ("-9223372036854775807 - 10 - 9223372036854775807", "BIGINT"),
        ("name->'$.x'", "not valid JSON"),
    ];
    for (src, want) in cases {
        match run(src) {
            Err(e) => assert!(e.contains(want), "{src}: {e}"),
            Ok(v) => panic!("{src}: expected an error, got {v:?}"),
        }
    }
}

#[test]
fn parse_errors_table() {
    let cases: &[(&str, &str)] = &[
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("(a = 1", "expected `)`"),
        ("a = 1)", "unexpected text"),
        ("a = 'x", "unterminated string"),
        ("a = ", "expected an expression"),
        ("FOO(a) = 1", "unknown function FOO"),
        ("no_such_fn() = 1", "unknown function NO_SUCH_FN"),
        ("LENGTH() = 1", "takes 1 argument"),
        ("IF(a, b) = 1", "takes 3 argument"),
        ("SUBSTRING(a) = 'x'", "takes 2 to 3"),
        ("a IS 5", "after IS"),
        ("a BETWEEN 1", "expected AND"),
        ("a IN 1", "expected `(`"),
        ("CASE END", "unexpected keyword"),
        ("CASE a END", "at least one WHEN"),
        ("a LIKE 'x' ESCAPE 'ab'", "ESCAPE"),
        ("(a, b) = (1, 2)", "row constructors"),
        ("a REGEXP '('", "bad regular expression"),
        ("a->'x' = 1", "unsupported JSON path"),
        ("1->'$.a'", "needs a column"),
        ("a = 1 AND", "expected an expression"),
        ("`a = 1", "unterminated quoted identifier"),
        ("a @ 1", "unexpected character"),
        ("x'4' = 1", "even number"),
        ("12abc = 1", "bad number"),
        ("SELECT 1", "unexpected keyword"),
        ("/* open", "unterminated comment"),
    ];
    for (src, want) in cases {
        match parse(src) {
            Err(e) => assert!(e.to_string().contains(want), "{src:?}: {e}"),
            Ok(x) => panic!("{src:?}: expected a parse error, got {x:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
    assert!(parse(&deep).unwrap_err().msg.contains("nested too deeply"));
    let nots = format!("{}1", "NOT ".repeat(5000));
    assert!(parse(&nots).is_err());
    let negs = format!("{}1", "- ".repeat(5000));
    assert!(parse(&negs).is_err());
    let chain = vec!["c = 1"; 1000].join(" OR ");
    assert!(parse(&chain).unwrap_err().msg.contains("nested too deeply"));
    let long = vec!["1"; 5000].join("+");
    assert!(parse(&long).unwrap_err().msg.contains("too long"));
    let ok = vec!["c = 1"; 100].join(" OR ");
    assert!(parse(&ok).is_ok());
}

#[test]
fn columns_and_binding() {
    let e = parse("a + `B` > c AND LOWER(t.d) IN (e, 'x')").expect("parses");
    assert_eq!(e.columns(), vec!["a", "B", "c", "d", "e"]);
    let cols: Vec<String> = ["A", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(e.bind(&cols).unwrap_err(), "e");
    let cols: Vec<String> = ["A", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(e.bind(&cols).is_ok());
}

#[test]
fn like_matcher_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("abc", "a%", true),
        ("abc", "%c", true),
        ("abc", "%b%", true),
        ("abc", "a_c", true),
        ("abc", "a__c", false),
        ("abc", "%%%", true),
        ("", "", true),
        ("", "_", false),
        ("aaa", "%aa", true),
        ("ab", "%a", false),
        ("a%b", "a\\%b", true),
        ("axb", "a\\%b", false),
        ("mississippi", "m%iss%ppi", true),
        ("mississippi", "m%iss%ppx", false),
    ];
    for &(s, p, want) in cases {
        assert_eq!(
            eval::like(s.as_bytes(), p.as_bytes(), b'\\'),
            want,
            "{s} LIKE {p}"
        );
    }
}

#[test]
fn temporal_parsing() {
    assert!(eval::parse_datetime(b"2021-01-01").is_some());
    assert!(eval::parse_datetime(b"2021-01-01T10:00:00").is_some());
    assert!(eval::parse_datetime(b"2021-13-01").is_none());
    assert!(eval::parse_datetime(b"hello").is_none());
    assert!(eval::parse_datetime(b"2021-01-01 12:34:56.5678+08:00").is_none());
    assert_eq!(eval::parse_time(b"-01:00:00"), Some(-3_600_000_000));
    assert_eq!(eval::parse_time(b"838:59:59"), Some(3_020_399_000_000));
    assert_eq!(eval::parse_time(b"10:70:00"), None);
}
