//! The published JSON Schema: generated from the plan types, and used to validate plans with
//! every violation reported at its key path and `file:line:col`.

use std::sync::OnceLock;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Layer, did_you_mean, key_path};
use crate::loader::LoadedValue;
use crate::plan::Plan;

/// The schema as a JSON value. `Option` fields are not nullable: `timeout: ~` is a mistake.
pub fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::schema_for!(Plan);
        let mut value = serde_json::to_value(schema).expect("a schema always serializes");
        drop_null(&mut value);
        value
    })
}

/// The schema as pretty JSON, byte for byte what `schemas/plan.schema.json` holds.
pub fn schema_json() -> String {
    let mut text =
        serde_json::to_string_pretty(schema_value()).expect("a schema always serializes");
    text.push('\n');
    text
}

/// schemars writes `Option<T>` as "T or null"; in a plan an absent key already means "none",
/// and an explicit `~` is almost always a mistake worth reporting.
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = map.get("anyOf") {
                let kept: Vec<Value> = branches
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if kept.len() == 1 && branches.len() == 2 {
                    map.remove("anyOf");
                    if let Value::Object(only) = &kept[0] {
                        for (k, v) in only {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            for child in map.values_mut() {
                drop_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(schema_value()).expect("the generated schema compiles")
    })
}

/// Every schema violation in the plan, each placed at its key path and position.
pub fn check(loaded: &LoadedValue) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for error in validator().iter_errors(&loaded.value) {
        explain(loaded, &error, &mut diagnostics);
    }
    diagnostics.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
    diagnostics.dedup_by(|a, b| a.message == b.message && a.location == b.location);
    diagnostics
}

fn explain(loaded: &LoadedValue, error: &ValidationError<'_>, out: &mut Vec<Diagnostic>) {
    let pointer = error.instance_path().as_str().to_owned();
    let instance = error.instance();
    let path = key_path(&pointer);
    let at = |d: Diagnostic, location| loaded.place(d.path(path.clone()), location);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_keys(&pointer);
            for key in unexpected {
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                let mut d = Diagnostic::error(Layer::Schema, format!("unknown key `{key}`"));
                if let Some(close) = did_you_mean(key, known.iter().map(String::as_str)) {
                    d = d.help(format!("did you mean `{close}`?"));
                } else if !known.is_empty() {
                    d = d.help(format!("expected one of {}", list(&known)));
                }
                out.push(at(d, loaded.locate_key(&child)));
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(at(
                Diagnostic::error(Layer::Schema, format!("missing required key `{name}`")),
                loaded.locate(&pointer),
            ));
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            explain_choice(loaded, &pointer, instance, context, out);
        }
        ValidationErrorKind::Type { .. } if unitless_time(&pointer, instance).is_some() => {
            // `timeout: 90` is a YAML number: say which unit it needs, not "expected a string".
            if let Some(error) = unitless_time(&pointer, instance) {
                let mut d = Diagnostic::error(Layer::Schema, error.message);
                if let Some(hint) = error.hint {
                    d = d.help(hint);
                }
                out.push(at(d, loaded.locate(&pointer)));
            }
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_name(&t.to_string()),
                TypeKind::Multiple(set) => {
                    let names: Vec<String> =
                        set.iter().map(|t| type_name(&t.to_string())).collect();
                    names.join(" or ")
                }
            };
            out.push(at(
                Diagnostic::error(
                    Layer::Schema,
                    format!("expected {expected}, found {}", describe(instance)),
                ),
                loaded.locate(&pointer),
            ));
        }
        ValidationErrorKind::Pattern { pattern } => {
            let text = instance.as_str().unwrap_or_default();
            let (message, hint) = pattern_message(text, pattern);
            let mut d = Diagnostic::error(Layer::Schema, message);
            if let Some(hint) = hint {
                d = d.help(hint);
            }
            out.push(at(d, loaded.locate(&pointer)));
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map(str::to_owned).unwrap_or(v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let mut d = Diagnostic::error(
                Layer::Schema,
                format!("{} is not one of {}", describe(instance), list(&names)),
            );
            if let Some(close) = instance
                .as_str()
                .and_then(|s| did_you_mean(s, names.iter().map(String::as_str)))
            {
                d = d.help(format!("did you mean `{close}`?"));
            }
            out.push(at(d, loaded.locate(&pointer)));
        }
        ValidationErrorKind::Minimum { limit } => out.push(at(
            Diagnostic::error(
                Layer::Schema,
                format!(
                    "{} is too small: the minimum is {limit}",
                    describe(instance)
                ),
            ),
            loaded.locate(&pointer),
        )),
        ValidationErrorKind::Maximum { limit } => out.push(at(
            Diagnostic::error(
                Layer::Schema,
                format!(
                    "{} is too large: the maximum is {limit}",
                    describe(instance)
                ),
            ),
            loaded.locate(&pointer),
        )),
        ValidationErrorKind::MinItems { limit } => out.push(at(
            Diagnostic::error(
                Layer::Schema,
                format!(
                    "needs at least {limit} item{}",
                    if *limit == 1 { "" } else { "s" }
                ),
            ),
            loaded.locate(&pointer),
        )),
        ValidationErrorKind::MaxLength { limit } => out.push(at(
            Diagnostic::error(Layer::Schema, format!("is longer than {limit} characters")),
            loaded.locate(&pointer),
        )),
        _ => out.push(at(
            Diagnostic::error(Layer::Schema, lower_first(&error.to_string())),
            loaded.locate(&pointer),
        )),
    }
}

/// A `oneOf` is how schemars writes our externally tagged enums (`postgres: {…}`,
/// `env: NAME`, `expect: matches_backup`). The raw error says only "not valid under any of
/// the schemas"; the useful errors are in the branch whose kind key the user wrote.
fn explain_choice(
    loaded: &LoadedValue,
    pointer: &str,
    instance: &Value,
    context: &[Vec<ValidationError<'static>>],
    out: &mut Vec<Diagnostic>,
) {
    let branches = branches_at(pointer);
    let kinds: Vec<String> = branches.iter().flat_map(|b| b.kinds.clone()).collect();
    let path = key_path(pointer);
    let what = section_noun(pointer);
    if let Value::Object(map) = instance {
        let present: Vec<&String> = map.keys().filter(|k| kinds.contains(k)).collect();
        if present.len() > 1 {
            let names: Vec<String> = present.iter().map(|k| format!("`{k}`")).collect();
            out.push(
                loaded.place(
                    Diagnostic::error(
                        Layer::Schema,
                        format!("{what} has more than one kind: {}", names.join(" and ")),
                    )
                    .path(path)
                    .help(format!("a {what} has exactly one kind key")),
                    loaded.locate(pointer),
                ),
            );
            return;
        }
        if let Some(kind) = present.first()
            && let Some(index) = branches.iter().position(|b| b.kinds.contains(kind))
            && let Some(errors) = context.get(index)
        {
            for error in errors {
                explain(loaded, error, out);
            }
            return;
        }
        let unknown: Vec<&String> = map.keys().collect();
        let mut d = match unknown.first() {
            Some(key) => {
                let mut d =
                    Diagnostic::error(Layer::Schema, format!("unknown {what} kind `{key}`"));
                if let Some(close) = did_you_mean(key, kinds.iter().map(String::as_str)) {
                    d = d.help(format!("did you mean `{close}`?"));
                }
                d
            }
            None => Diagnostic::error(Layer::Schema, format!("{what} is empty")),
        };
        if d.help.is_none() {
            d = d.help(format!("expected one of {}", list(&kinds)));
        }
        let location = match unknown.first() {
            Some(key) => loaded.locate_key(&format!("{pointer}/{key}")),
            None => loaded.locate(pointer),
        };
        out.push(loaded.place(d.path(path), location));
        return;
    }
    // A plain value: either one of the unit kinds (`matches_backup`) or a wrong type.
    let mut d = Diagnostic::error(
        Layer::Schema,
        format!("{} is not a valid {what}", describe(instance)),
    );
    if !kinds.is_empty() {
        d = d.help(format!("expected one of {}", list(&kinds)));
    }
    if let Some(close) = instance
        .as_str()
        .and_then(|s| did_you_mean(s, kinds.iter().map(String::as_str)))
    {
        d = d.help(format!("did you mean `{close}`?"));
    }
    if branches.iter().all(|b| b.kinds.is_empty()) {
        // Not a tagged enum (e.g. `Keep`): fall back to the branch descriptions.
        let described = branches
            .iter()
            .filter_map(|b| b.description.clone())
            .collect::<Vec<_>>();
        if !described.is_empty() {
            d = d.help(format!("expected {}", described.join(" or ")));
        }
    }
    out.push(loaded.place(d.path(path), loaded.locate(pointer)));
}

/// The noun users know the thing at `pointer` by.
fn section_noun(pointer: &str) -> &'static str {
    let segments: Vec<&str> = pointer.split('/').collect();
    match segments.get(1).copied() {
        Some("sources") => "source",
        Some("storage") => "storage",
        Some("secrets") => "secret",
        _ if pointer.ends_with("/expect") => "expectation",
        _ => "value",
    }
}

struct Branch {
    kinds: Vec<String>,
    description: Option<String>,
}

/// The alternatives the schema allows at an instance location.
fn branches_at(pointer: &str) -> Vec<Branch> {
    let Some(node) = schema_node_for(pointer) else {
        return Vec::new();
    };
    let alternatives = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    alternatives
        .iter()
        .map(|branch| {
            let branch = resolve(branch);
            let mut kinds = Vec::new();
            if let Some(required) = branch.get("required").and_then(Value::as_array) {
                kinds.extend(
                    required
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned)),
                );
            }
            if let Some(options) = branch.get("enum").and_then(Value::as_array) {
                kinds.extend(options.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            }
            if let Some(constant) = branch.get("const").and_then(Value::as_str) {
                kinds.push(constant.to_owned());
            }
            let description = branch.get("type").and_then(Value::as_str).map(|t| match t {
                "integer" => "a number".to_owned(),
                other => type_name(other),
            });
            let description = description.or_else(|| {
                branch
                    .get("const")
                    .map(|c| format!("`{}`", c.as_str().unwrap_or_default()))
            });
            // For `Keep` the const branch is a value, not a kind key.
            if branch.get("type").is_none()
                && branch.get("const").is_some()
                && branch.get("required").is_none()
            {
                return Branch {
                    kinds: Vec::new(),
                    description,
                };
            }
            Branch { kinds, description }
        })
        .collect()
}

fn resolve(node: &Value) -> &Value {
    let mut node = node;
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                match schema_value().pointer(pointer) {
                    Some(target) => node = target,
                    None => break,
                }
            }
            None => break,
        }
    }
    node
}

/// Walks the schema along an instance pointer, following `$ref`, `properties`, `items`,
/// `additionalProperties` and the branch of a `oneOf` that has the key.
fn schema_node_for(pointer: &str) -> Option<&'static Value> {
    let mut node = resolve(schema_value());
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        node = resolve(node);
        let next = node
            .get("properties")
            .and_then(|p| p.get(&segment))
            .or_else(|| {
                node.get("items")
                    .filter(|_| segment.parse::<usize>().is_ok())
            })
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| {
                node.get("oneOf")
                    .or_else(|| node.get("anyOf"))
                    .and_then(Value::as_array)
                    .and_then(|branches| {
                        branches.iter().find_map(|b| {
                            resolve(b).get("properties").and_then(|p| p.get(&segment))
                        })
                    })
            })?;
        node = next;
    }
    Some(resolve(node))
}

/// The keys allowed in the object at `pointer`, for "did you mean".
fn known_keys(pointer: &str) -> Vec<String> {
    let Some(node) = schema_node_for(pointer) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if keys.is_empty() {
        for branch in node
            .get("oneOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = resolve(branch).get("properties").and_then(Value::as_object) {
                keys.extend(p.keys().cloned());
            }
        }
    }
    keys
}

/// A number written where the schema wants a duration or calendar span, explained as one.
fn unitless_time(pointer: &str, instance: &Value) -> Option<crate::duration::ParseError> {
    let Value::Number(number) = instance else {
        return None;
    };
    let pattern = schema_node_for(pointer)?.get("pattern")?.as_str()?;
    crate::duration::explain_pattern(&number.to_string(), pattern)
}

/// The message for a string that does not match `pattern`, and a hint when one is known.
fn pattern_message(text: &str, pattern: &str) -> (String, Option<String>) {
    if let Some(error) = crate::duration::explain_pattern(text, pattern) {
        return (error.message, error.hint);
    }
    let message = if pattern == r"^[a-z0-9][a-z0-9_-]*$" {
        format!("`{text}` is not a valid name: use lowercase letters, digits, `-` and `_`")
    } else if pattern == r"^[A-Za-z0-9][A-Za-z0-9_.-]*$" {
        format!("`{text}` is not a valid step id: use letters, digits, `.`, `-` and `_`")
    } else {
        format!("`{text}` does not match the pattern `{pattern}`")
    };
    (message, None)
}

fn type_name(t: &str) -> String {
    match t {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "string" => "a string".into(),
        "integer" => "an integer".into(),
        "number" => "a number".into(),
        "boolean" => "true or false".into(),
        "null" => "nothing".into(),
        other => other.into(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("`{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    /// The committed file is what editors and `planrun validate` read; `planrun schema`
    /// printing it is checked through the binary in tests/schema.rs.
    #[test]
    fn committed_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/plan.schema.json");
        let committed = std::fs::read_to_string(path).unwrap();
        let generated = super::schema_json();
        assert!(
            committed == generated,
            "schemas/plan.schema.json is out of date: run `cargo run -- schema > schemas/plan.schema.json`"
        );
    }
}
