//! YAML plumbing shared by the task and source models: reading a file safely, decoding with DM's
//! strictness (unknown keys are errors), YAML 1.1-style scalars as Go's yaml.v2 accepts them, and
//! a position index so that checks made after decoding can still name a line and column.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::error::{ConfigError, Pos, code};

/// Task and source files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Where each node of a YAML document starts, by path: `mysql-instances[0].route-rules[1]`.
/// Keys are indexed too, as `path#key` (the position of the key itself).
#[derive(Debug, Default, Clone)]
pub struct PosIndex {
    nodes: HashMap<String, Pos>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl PosIndex {
    /// Builds the index; a document the parser cannot read gives an empty (or partial) index.
    pub fn build(text: &str) -> PosIndex {
        let mut nodes = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut root_done = false;
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            let pos = Pos {
                line: span.start.line(),
                col: span.start.col() + 1,
            };
            let starts_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(_)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            );
            if starts_node {
                // Where does this node sit?
                let path = match stack.last_mut() {
                    None => {
                        if root_done {
                            break; // only the first document counts, as in DM
                        }
                        Some(String::new())
                    }
                    Some(Frame::Seq { path, next }) => {
                        let p = format!("{path}[{next}]");
                        *next += 1;
                        Some(p)
                    }
                    Some(Frame::Map { path, key }) => match key.take() {
                        None => {
                            // This node is a key.
                            let k = match &event {
                                Event::Scalar(v, ..) => v.to_string(),
                                _ => "?".to_string(),
                            };
                            nodes.insert(format!("{}#{}", path, k), pos);
                            *key = Some(k);
                            None
                        }
                        Some(k) => Some(join(path, &k)),
                    },
                };
                // A complex (non-scalar) key: skip its contents by giving it a throwaway path.
                let node_path = path.clone().unwrap_or_else(|| "\u{0}key".to_string());
                if let Some(p) = &path {
                    nodes.insert(p.clone(), pos);
                }
                match event {
                    Event::MappingStart(..) => stack.push(Frame::Map {
                        path: node_path,
                        key: None,
                    }),
                    Event::SequenceStart(..) => stack.push(Frame::Seq {
                        path: node_path,
                        next: 0,
                    }),
                    _ => {
                        if stack.is_empty() {
                            root_done = true;
                        }
                    }
                }
            } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
                if stack.is_empty() {
                    root_done = true;
                }
            }
        }
        PosIndex { nodes }
    }

    /// Position of the node at `path` (the value, for a mapping entry).
    pub fn node(&self, path: &str) -> Option<Pos> {
        self.nodes.get(path).copied()
    }

    /// Position of the key `key` inside the mapping at `parent`.
    pub fn key(&self, parent: &str, key: &str) -> Option<Pos> {
        self.nodes.get(&format!("{parent}#{key}")).copied()
    }

    /// The key's position if known, else the node's, else the closest known ancestor's.
    pub fn best(&self, path: &str) -> Option<Pos> {
        let (parent, last) = match path.rfind('.') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        if !last.contains('[')
            && let Some(p) = self.key(parent, last)
        {
            return Some(p);
        }
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.node(&p) {
                return Some(pos);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return None,
            }
        }
    }
}

/// The error for a file over [`MAX_FILE_BYTES`].
pub fn too_large(len: u64) -> ConfigError {
    ConfigError::new(
        code::READ_FILE,
        format!(
            "file is {len} bytes, larger than the {} MiB a config file may be",
            MAX_FILE_BYTES / (1024 * 1024)
        ),
    )
}

/// Checks size and encoding of raw file bytes and returns the text.
pub fn text_of(bytes: &[u8]) -> Result<&str, ConfigError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ConfigError::new(
            code::READ_FILE,
            format!(
                "file is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
        .at(Some(Pos { line, col: 1 }))
    })
}

/// True when the document holds nothing but comments, blank lines and document markers.
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Decodes `text` into `T` strictly; errors carry DM's code 20003 and the parser's position.
/// A document that is not a mapping is refused with a message saying what it is instead.
pub fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, ConfigError> {
    let root: serde_norway::Value = serde_norway::from_str(text).map_err(yaml_error)?;
    let kind = match &root {
        serde_norway::Value::Mapping(_) => None,
        serde_norway::Value::Null => Some("an empty document"),
        serde_norway::Value::Bool(_) => Some("a boolean"),
        serde_norway::Value::Number(_) => Some("a number"),
        serde_norway::Value::String(_) => Some("a string"),
        serde_norway::Value::Sequence(_) => Some("a sequence"),
        serde_norway::Value::Tagged(_) => Some("a tagged value"),
    };
    if let Some(kind) = kind {
        return Err(ConfigError::new(
            code::YAML,
            format!(
                "a {what} file must be a YAML mapping of keys to values, but this one is {kind}"
            ),
        )
        .at(Some(Pos { line: 1, col: 1 })));
    }
    serde_norway::from_str(text).map_err(yaml_error)
}

fn yaml_error(e: serde_norway::Error) -> ConfigError {
    let pos = e.location().map(|l| Pos {
        line: l.line(),
        col: l.column(),
    });
    let mut msg = e.to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    ConfigError::new(code::YAML, shorten_unknown_field(&msg).unwrap_or(msg)).at(pos)
}

/// serde's "unknown field `x`, expected one of `a`, `b`, …" becomes
/// `unknown key "x" in <where> (did you mean "a"?)`.
fn shorten_unknown_field(msg: &str) -> Option<String> {
    let (place, rest) = match msg.find("unknown field `") {
        Some(0) => ("", msg),
        Some(i) => (msg[..i].trim_end_matches([':', ' ']), &msg[i..]),
        None => return None,
    };
    let rest = rest.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = &rest[..end];
    let expected: Vec<&str> = rest[end..].split('`').skip(2).step_by(2).collect();
    let mut out = format!("unknown key {field:?}");
    out.push_str(if place.is_empty() {
        " at the top level"
    } else {
        " in "
    });
    out.push_str(place);
    if let Some(best) = expected
        .iter()
        .map(|k| (edit_distance(field, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min()
    {
        out.push_str(&format!(" (did you mean {:?}?)", best.1));
    } else if !expected.is_empty() {
        out.push_str(&format!("; known keys: {}", expected.join(", ")));
    }
    Some(out)
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---- lenient scalars, as Go's yaml.v2 decodes them -----------------------------------------

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// A string field: any scalar is taken as its text (yaml.v2 does the same); null is "".
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(StrVisitor)
}

/// A list of strings; a null list is empty.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    struct S(#[serde(deserialize_with = "string")] String);
    let v: Option<Vec<S>> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|s| s.0).collect())
}

struct BoolVisitor;

impl<'de> Visitor<'de> for BoolVisitor {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean (true/false)")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        // YAML 1.1 booleans, which Go's yaml.v2 (and so DM) accepts.
        match v {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
            _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// A boolean field accepting YAML 1.1's yes/no/on/off as well; null is false.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(BoolVisitor)
}

/// `null` where a mapping is expected means an empty mapping (yaml.v2 behaviour).
pub fn map_or_null<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    let v: Option<T> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_nested_nodes_and_keys() {
        let text = "name: t\nmysql-instances:\n  - source-id: a\n    route-rules: [r1, r2]\nroutes:\n  r1:\n    schema-pattern: x\n";
        let ix = PosIndex::build(text);
        assert_eq!(ix.key("", "name"), Some(Pos { line: 1, col: 1 }));
        assert_eq!(ix.node("mysql-instances[0]"), Some(Pos { line: 3, col: 5 }));
        assert_eq!(
            ix.node("mysql-instances[0].route-rules[1]"),
            Some(Pos { line: 4, col: 23 })
        );
        assert_eq!(ix.key("routes", "r1"), Some(Pos { line: 6, col: 3 }));
        assert_eq!(ix.best("routes.r1"), Some(Pos { line: 6, col: 3 }));
        assert_eq!(
            ix.best("mysql-instances[0].meta"),
            Some(Pos { line: 3, col: 5 })
        );
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let m = shorten_unknown_field(
            "mysql-instances[0]: unknown field `sourceid`, expected one of `source-id`, `meta`",
        )
        .unwrap();
        assert_eq!(
            m,
            r#"unknown key "sourceid" in mysql-instances[0] (did you mean "source-id"?)"#
        );
        let m = shorten_unknown_field(
            "unknown field `description`, expected one of `name`, `task-mode`",
        )
        .unwrap();
        assert_eq!(
            m,
            r#"unknown key "description" at the top level; known keys: name, task-mode"#
        );
    }

    #[test]
    fn broken_yaml_gives_an_empty_index_not_a_panic() {
        let ix = PosIndex::build("a: [\n  b: {");
        assert_eq!(ix.node("zzz"), None);
    }
}
