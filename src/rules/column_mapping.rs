//! Column mapping (DM's `column-mappings`, tidb-tools `pkg/column-mapping`): rewrite one column
//! of every row of the matching upstream tables before it is written downstream. Built by
//! [`super::row::RowRules`] from an instance's `column-mapping-rules`; used by the sync unit on
//! every row change and by the load unit on every dumped row. Pure: no I/O, never panics.
//!
//! Semantics, as DM's:
//! - A rule matches by `schema-pattern` / `table-pattern` (wildcards as in routes,
//!   [`super::pattern`]); a rule without `table-pattern` is a schema rule. For a table, the
//!   matching table rules decide when there are any, else the matching schema rules; more than
//!   one rule at the deciding level is an error (DM: "matches 2 table column mapping rules
//!   which should be one"). Patterns and names compare lower-cased unless the task is
//!   `case-sensitive`. Two rules with the same patterns are refused when the rules are built.
//! - The value changed is the one in `target-column` (DM reads `source-column` only for its
//!   position; the value rewritten is the target's). A table without that column is an error.
//! - `add prefix` / `add suffix` (one argument): the string value gets the argument before /
//!   after it. A value that is not a string (NULL included) is an error.
//! - `partition id` (arguments: instance id, schema prefix, table prefix, optional separator):
//!   the integer value becomes `instance_id << 59 | schema_id << 52 | table_id << 44 | value`
//!   with DM's default bit sizes (4 bits instance id, 7 bits schema id, 8 bits table id, 44 bits
//!   value; the sign bit stays 0). An empty argument leaves its part out, and the parts that
//!   follow move up into the freed bits, exactly as DM shifts them. The schema (table) id is the
//!   number after `prefix + separator` in the schema (table) name, 0 when the name is the prefix
//!   itself; a name without that prefix, or a suffix that is not a number that fits, is an error.
//!   The original value must be in `0 ..= 2^44 − 1` (DM's "id must less than 17592186044416,
//!   greater than or equal to 0"); a string value holding an integer is mapped as text.
//!   Unsigned integers are read as DM does (`int64(v)`), so a value ≥ 2^63 is out of range.

use super::RulesError;
use super::pattern::{Pattern, compile_rule, fold};
use crate::config::task::ColumnMappingRule;
use crate::dml::Value;

/// Bits of the instance id in a partition id (DM's `instanceIDBitSize`).
pub const INSTANCE_ID_BITS: u32 = 4;
/// Bits of the schema id (DM's `schemaIDBitSize`).
pub const SCHEMA_ID_BITS: u32 = 7;
/// Bits of the table id (DM's `tableIDBitSize`).
pub const TABLE_ID_BITS: u32 = 8;
/// Original values must be below this (DM's `maxOriginID`, 2^44).
pub const MAX_ORIGIN_ID: i64 = 1 << (64 - INSTANCE_ID_BITS - SCHEMA_ID_BITS - TABLE_ID_BITS - 1);

/// The expressions DM's column mapping knows.
pub const EXPRESSIONS: &[&str] = &["partition id", "add prefix", "add suffix"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Prefix(String),
    Suffix(String),
    PartitionId {
        instance: String,
        schema_prefix: String,
        table_prefix: String,
        sep: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    schema: Pattern,
    table: Option<Pattern>,
    target_column: String,
    op: Op,
}

/// The compiled column-mapping rules of one instance.
#[derive(Debug, Clone, Default)]
pub struct ColumnMapping {
    entries: Vec<Entry>,
    case_sensitive: bool,
}

/// DM's `Rule.Valid()` plus the instance id's range (DM finds a bad instance id only when the
/// first row arrives; here it is a config error): the reason a rule cannot be used, if any.
pub fn check_rule(rule: &ColumnMappingRule) -> Result<(), String> {
    if !EXPRESSIONS.contains(&rule.expression.as_str()) {
        return Err(format!(
            "expression {:?} not found (supported: {})",
            rule.expression,
            EXPRESSIONS.join(", ")
        ));
    }
    if rule.target_column.is_empty() {
        return Err("rule need to be applied a target column (target-column is empty)".into());
    }
    match rule.expression.as_str() {
        "add prefix" | "add suffix" if rule.arguments.len() != 1 => Err(format!(
            "arguments {:?} for {} not valid: exactly one argument (the {}) is needed",
            rule.arguments,
            rule.expression,
            if rule.expression == "add prefix" {
                "prefix"
            } else {
                "suffix"
            }
        )),
        "partition id" => {
            if !matches!(rule.arguments.len(), 3 | 4) {
                return Err(format!(
                    "arguments {:?} for partition id not valid: give instance id, schema prefix, table prefix and optionally a separator",
                    rule.arguments
                ));
            }
            let inst = &rule.arguments[0];
            if !inst.is_empty() {
                parse_uint_bits(inst, INSTANCE_ID_BITS).ok_or_else(|| {
                    format!(
                        "instance id {inst:?} not valid: it must be an integer in 0..={}",
                        (1u32 << INSTANCE_ID_BITS) - 1
                    )
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Go's `strconv.ParseUint(s, 10, bits)`.
fn parse_uint_bits(s: &str, bits: u32) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: u64 = s.parse().ok()?;
    (v < (1u64 << bits)).then_some(v)
}

/// The mapping one table gets: which column and how (see [`ColumnMapping::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMapping {
    /// The rule's name.
    pub rule: String,
    /// Index of the target column in the row.
    pub target: usize,
    op: ResolvedOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ResolvedOp {
    Prefix(Vec<u8>),
    Suffix(Vec<u8>),
    /// The instance, schema and table parts, already shifted into place.
    PartitionId(i64),
}

impl ColumnMapping {
    /// Compiles named rules (in the instance's `column-mapping-rules` order).
    pub fn new<'a>(
        rules: impl IntoIterator<Item = (&'a str, &'a ColumnMappingRule)>,
        case_sensitive: bool,
    ) -> Result<Self, RulesError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (name, r) in rules {
            check_rule(r).map_err(|reason| RulesError::Invalid {
                kind: "column mapping",
                rule: name.to_string(),
                reason,
            })?;
            let (schema, table) = compile_rule(
                "column mapping",
                name,
                &r.schema_pattern,
                &r.table_pattern,
                case_sensitive,
            )?;
            if let Some(other) = entries.iter().find(|e| {
                e.schema == schema
                    && e.table.as_ref().map(Pattern::as_str) == table.as_ref().map(Pattern::as_str)
            }) {
                return Err(RulesError::Duplicate {
                    kind: "column mapping",
                    rule: name.to_string(),
                    other: other.name.clone(),
                });
            }
            let arg = |i: usize| r.arguments.get(i).cloned().unwrap_or_default();
            let op = match r.expression.as_str() {
                "add prefix" => Op::Prefix(arg(0)),
                "add suffix" => Op::Suffix(arg(0)),
                _ => Op::PartitionId {
                    instance: arg(0),
                    schema_prefix: arg(1),
                    table_prefix: arg(2),
                    sep: arg(3),
                },
            };
            entries.push(Entry {
                name: name.to_string(),
                schema,
                table,
                target_column: r.target_column.clone(),
                op,
            });
        }
        Ok(ColumnMapping {
            entries,
            case_sensitive,
        })
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The rules that decide `schema.table` (table rules first, else schema rules).
    fn deciding(&self, schema: &str, table: &str) -> (Vec<&Entry>, bool) {
        let s = fold(schema, self.case_sensitive);
        let t = fold(table, self.case_sensitive);
        let matching = self.entries.iter().filter(|e| e.schema.matches(&s));
        let (schema_rules, table_rules): (Vec<&Entry>, Vec<&Entry>) =
            matching.partition(|e| e.table.is_none());
        let table_rules: Vec<&Entry> = table_rules
            .into_iter()
            .filter(|e| e.table.as_ref().is_some_and(|p| p.matches(&t)))
            .collect();
        if table.is_empty() || table_rules.is_empty() {
            (schema_rules, false)
        } else {
            (table_rules, true)
        }
    }

    /// Does any rule match upstream `schema.table`?
    pub fn applies(&self, schema: &str, table: &str) -> bool {
        !self.deciding(schema, table).0.is_empty()
    }

    /// The mapping for upstream `schema.table` with these columns (in row order): `None` when
    /// no rule matches. Errors: several rules match, the target column is missing, or the
    /// partition id cannot be computed from the names (DM's errors, at the same moment DM
    /// finds them: the first row of the table).
    pub fn resolve(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Option<TableMapping>, RulesError> {
        let (rules, table_level) = self.deciding(schema, table);
        let rule = match rules.as_slice() {
            [] => return Ok(None),
            [r] => *r,
            [a, ..] => {
                return Err(RulesError::Mapping {
                    rule: a.name.clone(),
                    schema: schema.to_string(),
                    table: table.to_string(),
                    reason: format!(
                        "`{schema}`.`{table}` matches {} {} column mapping rules ({}) which should be one",
                        rules.len(),
                        if table_level { "table" } else { "schema" },
                        rules
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        };
        let err = |reason: String| RulesError::Mapping {
            rule: rule.name.clone(),
            schema: schema.to_string(),
            table: table.to_string(),
            reason,
        };
        let target = columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&rule.target_column))
            .ok_or_else(|| {
                err(format!(
                    "target column {:?} not found in the table's columns ({})",
                    rule.target_column,
                    columns.join(", ")
                ))
            })?;
        let op = match &rule.op {
            Op::Prefix(p) => ResolvedOp::Prefix(p.clone().into_bytes()),
            Op::Suffix(p) => ResolvedOp::Suffix(p.clone().into_bytes()),
            Op::PartitionId {
                instance,
                schema_prefix,
                table_prefix,
                sep,
            } => {
                let s = fold(schema, self.case_sensitive);
                let t = fold(table, self.case_sensitive);
                ResolvedOp::PartitionId(
                    partition_base(instance, schema_prefix, table_prefix, sep, &s, &t)
                        .map_err(err)?,
                )
            }
        };
        Ok(Some(TableMapping {
            rule: rule.name.clone(),
            target,
            op,
        }))
    }
}

/// DM's `computePartitionID`: the instance, schema and table parts OR-ed together.
fn partition_base(
    instance: &str,
    schema_prefix: &str,
    table_prefix: &str,
    sep: &str,
    schema: &str,
    table: &str,
) -> Result<i64, String> {
    let mut shift: u32 = 63;
    let mut base: i64 = 0;
    if !instance.is_empty() {
        shift -= INSTANCE_ID_BITS;
        let id = parse_uint_bits(instance, INSTANCE_ID_BITS)
            .ok_or_else(|| format!("instance id {instance:?} is not an integer in 0..=15"))?;
        base |= (id << shift) as i64;
    }
    if !schema_prefix.is_empty() {
        shift -= SCHEMA_ID_BITS;
        base |= compute_id(schema, schema_prefix, sep, SCHEMA_ID_BITS, shift, "schema")?;
    }
    if !table_prefix.is_empty() {
        shift -= TABLE_ID_BITS;
        base |= compute_id(table, table_prefix, sep, TABLE_ID_BITS, shift, "table")?;
    }
    Ok(base)
}

fn compute_id(
    name: &str,
    prefix: &str,
    sep: &str,
    bits: u32,
    shift: u32,
    what: &str,
) -> Result<i64, String> {
    if name == prefix {
        return Ok(0);
    }
    let full = format!("{prefix}{sep}");
    let Some(suffix) = name.strip_prefix(full.as_str()).filter(|s| !s.is_empty()) else {
        return Err(format!(
            "{full:?} is not the prefix of the {what} name {name:?}"
        ));
    };
    let id = parse_uint_bits(suffix, bits).ok_or_else(|| {
        format!(
            "the suffix {suffix:?} of the {what} name {name:?} is not an integer in 0..={}",
            (1u64 << bits) - 1
        )
    })?;
    Ok((id << shift) as i64)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Missing => "missing (not in the row image)".into(),
        other => other.to_sql(),
    }
}

impl TableMapping {
    /// Rewrites the target column of `row` in place. Errors (DM's "mapping row data … for table
    /// …" cause) name the rule and the value.
    pub fn apply(&self, schema: &str, table: &str, row: &mut [Value]) -> Result<(), RulesError> {
        let err = |reason: String| RulesError::Mapping {
            rule: self.rule.clone(),
            schema: schema.to_string(),
            table: table.to_string(),
            reason,
        };
        let Some(v) = row.get_mut(self.target) else {
            return Err(err(format!(
                "the row has {} values, the target column is number {}",
                row.len(),
                self.target + 1
            )));
        };
        match &self.op {
            ResolvedOp::Prefix(p) | ResolvedOp::Suffix(p) => {
                let Value::Bytes(b) = v else {
                    return Err(err(format!(
                        "column {} value is not a string but {}",
                        self.target + 1,
                        describe(v)
                    )));
                };
                if matches!(self.op, ResolvedOp::Prefix(_)) {
                    let mut out = Vec::with_capacity(p.len() + b.len());
                    out.extend_from_slice(p);
                    out.extend_from_slice(b);
                    *b = out;
                } else {
                    b.extend_from_slice(p);
                }
                Ok(())
            }
            ResolvedOp::PartitionId(base) => {
                let (orig, kind) = match v {
                    Value::Int(i) => (*i, 0),
                    // DM: int64(uint64) — values ≥ 2^63 turn negative and are refused below.
                    Value::UInt(u) => (*u as i64, 1),
                    Value::Bytes(b) => match std::str::from_utf8(b).ok().and_then(go_parse_int) {
                        Some(i) => (i, 2),
                        None => {
                            return Err(err(format!(
                                "column {} value is not int, but {}",
                                self.target + 1,
                                describe(v)
                            )));
                        }
                    },
                    Value::Decimal(s) => match go_parse_int(s) {
                        Some(i) => (i, 3),
                        None => {
                            return Err(err(format!(
                                "column {} value is not int, but {s}",
                                self.target + 1
                            )));
                        }
                    },
                    other => {
                        return Err(err(format!(
                            "column {} value {} is not an integer",
                            self.target + 1,
                            describe(other)
                        )));
                    }
                };
                if !(0..MAX_ORIGIN_ID).contains(&orig) {
                    return Err(err(format!(
                        "id must less than {MAX_ORIGIN_ID}, greater than or equal to 0, but got {orig}"
                    )));
                }
                let id = base | orig;
                *v = match kind {
                    0 => Value::Int(id),
                    1 => Value::UInt(id as u64),
                    2 => Value::Bytes(id.to_string().into_bytes()),
                    _ => Value::Decimal(id.to_string()),
                };
                Ok(())
            }
        }
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits, nothing else.
fn go_parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        schema: &str,
        table: &str,
        target: &str,
        expr: &str,
        args: &[&str],
    ) -> ColumnMappingRule {
        ColumnMappingRule {
            schema_pattern: schema.into(),
            table_pattern: table.into(),
            source_column: target.into(),
            target_column: target.into(),
            expression: expr.into(),
            arguments: args.iter().map(|s| s.to_string()).collect(),
            create_table_query: String::new(),
        }
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn map_one(
        r: &ColumnMappingRule,
        schema: &str,
        table: &str,
        v: Value,
    ) -> Result<Value, String> {
        let m = ColumnMapping::new([("r", r)], false).map_err(|e| e.to_string())?;
        let t = m
            .resolve(schema, table, &cols(&["id", "c"]))
            .map_err(|e| e.to_string())?
            .ok_or("no rule matched")?;
        let mut row = vec![Value::Int(0), v];
        t.apply(schema, table, &mut row)
            .map_err(|e| e.to_string())?;
        Ok(row.swap_remove(1))
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn partition_id_table() {
        let i = |n: i64| Value::Int(n);
        let cases: &[(&[&str], &str, &str, Value, Result<Value, &str>)] = &[
            // instance 1, schema 2, table 3: 1<<59 | 2<<52 | 3<<44 | v
            (
                &["1", "s", "t", "_"],
                "s_2",
                "t_3",
                i(5),
                Ok(i((1 << 59) | (2 << 52) | (3 << 44) | 5)),
            ),
            // separator omitted (3 arguments) = ""
            (
                &["1", "s", "t"],
                "s2",
                "t3",
                i(5),
                Ok(i((1 << 59) | (2 << 52) | (3 << 44) | 5)),
            ),
            // name equal to the prefix: id 0
            (&["2", "s", "t", "_"], "s", "t", i(9), Ok(i((2 << 59) | 9))),
            // no instance id: schema id moves up to bit 56, table id to bit 48
            (
                &["", "s", "t", "_"],
                "s_1",
                "t_1",
                i(1),
                Ok(i((1 << 56) | (1 << 48) | 1)),
            ),
            // only a table id: bits 55..62
            (&["", "", "t", "_"], "anything", "t_7", i(0), Ok(i(7 << 55))),
            // only an instance id
            (&["15", "", "", ""], "x", "y", i(1), Ok(i((15 << 59) | 1))),
            // nothing at all: the value as it is
            (&["", "", ""], "x", "y", i(42), Ok(i(42))),
            // the largest original value
            (
                &["1", "s", "t", "_"],
                "s_127",
                "t_255",
                i(MAX_ORIGIN_ID - 1),
                Ok(i((1 << 59)
                    | (127 << 52)
                    | (255 << 44)
                    | (MAX_ORIGIN_ID - 1))),
            ),
            // unsigned and string values keep their kind
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::UInt(3),
                Ok(Value::UInt((1 << 59) | 3)),
            ),
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::Bytes(b"3".to_vec()),
                Ok(Value::Bytes(((1i64 << 59) | 3).to_string().into_bytes())),
            ),
            // overflow of the original value
            (
                &["1", "s", "t", "_"],
                "s_1",
                "t_1",
                i(MAX_ORIGIN_ID),
                Err("id must less than 17592186044416"),
            ),
            (
                &["1", "s", "t", "_"],
                "s_1",
                "t_1",
                i(-1),
                Err("greater than or equal to 0, but got -1"),
            ),
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::UInt(u64::MAX),
                Err("but got -1"),
            ),
            // names that do not fit
            (
                &["1", "s", "t", "_"],
                "s_128",
                "t_1",
                i(1),
                Err("is not an integer in 0..=127"),
            ),
            (
                &["1", "s", "t", "_"],
                "s_1",
                "t_256",
                i(1),
                Err("is not an integer in 0..=255"),
            ),
            (
                &["1", "s", "t", "_"],
                "x_1",
                "t_1",
                i(1),
                Err("\"s_\" is not the prefix"),
            ),
            (
                &["1", "s", "t", "_"],
                "s_",
                "t_1",
                i(1),
                Err("is not the prefix"),
            ),
            (
                &["1", "s", "t", "_"],
                "s_a",
                "t_1",
                i(1),
                Err("is not an integer"),
            ),
            // values that are not integers
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::Null,
                Err("is not an integer"),
            ),
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::Bytes(b"x1".to_vec()),
                Err("value is not int"),
            ),
            (
                &["1", "", "", ""],
                "x",
                "y",
                Value::double(1.0),
                Err("is not an integer"),
            ),
        ];
        for (args, schema, table, v, want) in cases {
            let r = rule("*", "", "c", "partition id", args);
            let got = map_one(&r, schema, table, v.clone());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{args:?} {schema}.{table} {v:?}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{args:?} {schema}.{table}: {g}"),
                _ => panic!("{args:?} {schema}.{table} {v:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn prefix_and_suffix_table() {
        let b = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        let cases: &[(&str, &str, Value, Result<Value, &str>)] = &[
            ("add prefix", "p_", b("abc"), Ok(b("p_abc"))),
            ("add suffix", "_s", b("abc"), Ok(b("abc_s"))),
            ("add prefix", "", b("abc"), Ok(b("abc"))),
            ("add prefix", "x", b(""), Ok(b("x"))),
            ("add suffix", "ü", b("a"), Ok(b("aü"))),
            (
                "add prefix",
                "p",
                Value::Int(1),
                Err("is not a string but 1"),
            ),
            (
                "add suffix",
                "p",
                Value::Null,
                Err("is not a string but NULL"),
            ),
        ];
        for (expr, arg, v, want) in cases {
            let r = rule("db", "t*", "c", expr, &[arg]);
            let got = map_one(&r, "db", "t1", v.clone());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{expr} {arg}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{expr} {arg}: {g}"),
                _ => panic!("{expr} {arg} {v:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn rule_checks_table() {
        let cases: &[(ColumnMappingRule, Option<&str>)] = &[
            (rule("s", "t", "c", "partition id", &["1", "s", "t"]), None),
            (
                rule("s", "t", "c", "partition id", &["1", "s", "t", "_"]),
                None,
            ),
            (rule("s", "t", "c", "add prefix", &["x"]), None),
            (
                rule("s", "t", "c", "partition id", &["1", "s"]),
                Some("arguments"),
            ),
            (
                rule("s", "t", "c", "partition id", &["1", "s", "t", "_", "x"]),
                Some("arguments"),
            ),
            (
                rule("s", "t", "c", "partition id", &["16", "s", "t"]),
                Some("instance id \"16\""),
            ),
            (
                rule("s", "t", "c", "partition id", &["a", "s", "t"]),
                Some("instance id"),
            ),
            (
                rule("s", "t", "c", "add prefix", &[]),
                Some("exactly one argument"),
            ),
            (
                rule("s", "t", "c", "add suffix", &["a", "b"]),
                Some("exactly one argument"),
            ),
            (
                rule("s", "t", "", "add prefix", &["a"]),
                Some("target column"),
            ),
            (rule("s", "t", "c", "Add Prefix", &["a"]), Some("not found")),
            (rule("s", "t", "c", "upper", &["a"]), Some("not found")),
        ];
        for (r, want) in cases {
            match (check_rule(r), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{r:?}: {e}"),
                (got, _) => panic!("{r:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn rule_selection() {
        let schema_rule = rule("shard_*", "", "c", "add prefix", &["S"]);
        let table_rule = rule("shard_*", "orders_*", "c", "add prefix", &["T"]);
        let other_table = rule("shard_1", "orders_?", "c", "add prefix", &["U"]);
        let m =
            ColumnMapping::new([("s", &schema_rule), ("t", &table_rule)], false).expect("builds");
        let c = cols(&["id", "c"]);
        let pick =
            |m: &ColumnMapping, s: &str, t: &str| m.resolve(s, t, &c).map(|x| x.map(|x| x.rule));
        assert_eq!(
            pick(&m, "shard_1", "orders_1").ok().flatten().as_deref(),
            Some("t")
        );
        assert_eq!(
            pick(&m, "SHARD_1", "Orders_1").ok().flatten().as_deref(),
            Some("t")
        );
        assert_eq!(
            pick(&m, "shard_1", "items").ok().flatten().as_deref(),
            Some("s")
        );
        assert_eq!(pick(&m, "other", "orders_1").ok().flatten(), None);
        assert!(m.applies("shard_2", "x"));
        assert!(!m.applies("other", "x"));
        // Two table rules match: DM's error.
        let m2 =
            ColumnMapping::new([("t", &table_rule), ("u", &other_table)], false).expect("builds");
        let e = pick(&m2, "shard_1", "orders_1").unwrap_err().to_string();
        assert!(e.contains("matches 2 table column mapping rules"), "{e}");
        // Case-sensitive tasks compare exactly.
        let m3 = ColumnMapping::new([("t", &table_rule)], true).expect("builds");
        assert!(!m3.applies("SHARD_1", "orders_1"));
        // Same patterns twice: refused at build time.
        let dup = ColumnMapping::new([("a", &table_rule), ("b", &table_rule)], false);
        assert!(matches!(dup, Err(RulesError::Duplicate { .. })));
        // A missing target column.
        let miss = rule("db", "t", "nope", "add prefix", &["x"]);
        let m4 = ColumnMapping::new([("m", &miss)], false).expect("builds");
        let e = m4.resolve("db", "t", &c).unwrap_err().to_string();
        assert!(e.contains("target column \"nope\" not found"), "{e}");
        // A bad pattern.
        let bad = rule("a*b", "", "c", "add prefix", &["x"]);
        assert!(matches!(
            ColumnMapping::new([("bad", &bad)], false),
            Err(RulesError::Pattern { .. })
        ));
    }
}
