//! YAML parsing: text to a JSON value plus the line and column of every node, in one pass.
//!
//! serde-saphyr is used because serde_yaml is deprecated upstream and the libyaml-based forks
//! silently accept duplicate keys; saphyr rejects them, bounds alias expansion, and gives
//! every node's location through `Spanned`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A parsed document: the value and, for each JSON pointer, where its node starts.
#[derive(Debug)]
pub struct Document {
    pub value: serde_json::Value,
    pub spans: HashMap<String, (usize, usize)>,
}

/// A YAML syntax problem with its position.
#[derive(Debug)]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Plans are small; these limits keep a hostile file ("billion laughs") from using more than
/// a few megabytes or more than a few milliseconds.
const MAX_EVENTS: usize = 200_000;
const MAX_REPLAYED_EVENTS: usize = 20_000;
/// The loader already stops reading here; this guards callers that hand over bytes directly.
const MAX_BYTES: usize = crate::trusted_file::PLAN_LIMIT as usize;

pub fn parse(bytes: &[u8]) -> Result<Document, YamlError> {
    if bytes.len() > MAX_BYTES {
        return Err(YamlError {
            message: format!(
                "the file is {} bytes; plans are limited to {MAX_BYTES}",
                bytes.len()
            ),
            line: 1,
            column: 1,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        YamlError {
            message: format!(
                "the file is not valid UTF-8 (byte 0x{:02x} at offset {}); save it as UTF-8",
                bytes[error.valid_up_to()],
                error.valid_up_to()
            ),
            line,
            column,
        }
    })?;
    if text
        .trim()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(YamlError {
            message: "the plan is empty: it needs at least `version` and `name`".into(),
            line: 1,
            column: 1,
        });
    }
    if let Some((index, line)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with([' ', '\t']) && l.trim_start_matches(' ').starts_with('\t'))
    {
        let column = line.find('\t').unwrap_or(0) + 1;
        return Err(YamlError {
            message: "a tab is used for indentation; YAML allows only spaces".into(),
            line: index + 1,
            column,
        });
    }

    let mut options = serde_saphyr::Options::default();
    // YAML 1.1 typing would turn `NO` into false and `0755` into 755; plans mean the text.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.with_snippet = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = MAX_EVENTS;
    budget.max_aliases = 1_000;
    options.budget = Some(budget);

    let root: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| {
            let (line, column) = error
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((1, 1));
            YamlError {
                message: clean_message(&error.without_snippet().to_string()),
                line: line.max(1),
                column: column.max(1),
            }
        })?;
    let mut spans = HashMap::new();
    let value =
        root_to_json(root, String::new(), &mut spans).map_err(|(message, line, column)| {
            YamlError {
                message,
                line,
                column,
            }
        })?;
    Ok(Document { value, spans })
}

/// saphyr's messages carry their own position suffix; ours is printed in front instead.
fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let trimmed = match first.find(" at line ") {
        Some(at) => &first[..at],
        None => first,
    };
    let trimmed = trimmed.trim();
    if let Some(rest) = trimmed.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`: a key may appear only once in a mapping");
    }
    if trimmed.contains("alias") && trimmed.contains("limit") || trimmed.contains("budget") {
        return format!(
            "the file expands aliases beyond planrun's limits ({trimmed}); plans never need this many, so this looks like an alias bomb"
        );
    }
    trimmed.to_string()
}

/// Any YAML node, with its children's locations.
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

fn position(node: &Spanned<Node>) -> (usize, usize) {
    (
        node.referenced.line() as usize,
        node.referenced.column() as usize,
    )
}

type ConvertError = (String, usize, usize);

fn root_to_json(
    node: Spanned<Node>,
    pointer: String,
    spans: &mut HashMap<String, (usize, usize)>,
) -> Result<serde_json::Value, ConvertError> {
    let (line, column) = position(&node);
    spans.insert(pointer.clone(), (line.max(1), column.max(1)));
    Ok(match node.value {
        Node::Null => serde_json::Value::Null,
        Node::Bool(b) => b.into(),
        Node::Int(i) => i.into(),
        Node::UInt(u) => u.into(),
        Node::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(f.to_string())),
        Node::Str(s) => s.into(),
        Node::Seq(items) => serde_json::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| root_to_json(item, format!("{pointer}/{i}"), spans))
                .collect::<Result<_, _>>()?,
        ),
        Node::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (key, value) in entries {
                let (key_line, key_column) = position(&key);
                let name = match key.value {
                    Node::Str(s) => s,
                    Node::Int(i) => i.to_string(),
                    Node::UInt(u) => u.to_string(),
                    Node::Bool(b) => b.to_string(),
                    Node::Float(f) => f.to_string(),
                    Node::Null => "null".into(),
                    Node::Seq(_) | Node::Map(_) => {
                        return Err((
                            "a mapping key must be a plain value, not a list or mapping".into(),
                            key_line,
                            key_column,
                        ));
                    }
                };
                let child = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                // The key's own position is what editors should jump to for "unknown key".
                spans.insert(format!("{child}#key"), (key_line.max(1), key_column.max(1)));
                let converted = root_to_json(value, child, spans)?;
                map.insert(name, converted);
            }
            serde_json::Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_positions_of_nested_nodes() {
        let doc = parse(b"version: 1\nsteps:\n  - id: a\n    timeout: 10x\n").unwrap();
        assert_eq!(doc.spans["/steps/0/timeout"], (4, 14));
        assert_eq!(doc.spans["/steps/0/timeout#key"], (4, 5));
        assert_eq!(doc.value["steps"][0]["timeout"], "10x");
    }

    #[test]
    fn keeps_yaml_11_lookalikes_as_text() {
        let doc = parse(b"a: NO\nb: 0755\nc: 1_000\n").unwrap();
        assert_eq!(doc.value["a"], "NO");
        assert_eq!(doc.value["b"], "0755");
        assert_eq!(doc.value["c"], "1_000");
    }

    #[test]
    fn refuses_duplicate_keys() {
        let error = parse(b"a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.message.contains("uplicate"), "{}", error.message);
    }
}
