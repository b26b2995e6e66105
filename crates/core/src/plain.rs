//! Deserialisation errors in plain words.
//!
//! serde describes a mismatch in Rust terms: `invalid type: map, expected
//! f64`, `unknown variant `x`, expected one of ...`, `struct RawRecord`. A
//! user sent JSON (or TOML, or CSV), so every place that turns a serde error
//! into a message for people passes it through [`serde_message`], which
//! says the same in JSON's terms: `expected a number, got an object`. The
//! field is named separately by the caller (serde_path_to_error gives the
//! path), so the message itself never needs the Rust type.

use serde::de::DeserializeOwned;

use crate::ValidationError;

/// Rewrites a serde error message (serde_json's, toml's, or any
/// deserializer's built on serde's standard errors) in plain words. A
/// message it does not recognise is returned as it is, minus any
/// `at line L column C` suffix for data (not syntax) errors.
pub fn serde_message(message: &str) -> String {
    let (body, position) = split_position(message);
    if let Some(rest) = body.strip_prefix("invalid type: ").or_else(|| body.strip_prefix("invalid value: "))
        && let Some((got, expected)) = split_got_expected(rest)
    {
        return format!("expected {}, got {}", expected_words(expected), got_words(got));
    }
    if let Some(rest) = body.strip_prefix("invalid length ")
        && let Some((n, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}, got {n} items", expected_words(expected));
    }
    if let Some(rest) = body.strip_prefix("unknown field ") {
        let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let known = names_list(expected.strip_prefix("expected ").unwrap_or(""));
        let name = unquote(name);
        return if known.is_empty() {
            format!("unknown field \"{name}\" (no fields are accepted here)")
        } else {
            format!("unknown field \"{name}\"; the fields are {known}")
        };
    }
    if let Some(rest) = body.strip_prefix("unknown variant ") {
        let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let known = names_list(expected.strip_prefix("expected ").unwrap_or(""));
        return format!("\"{}\" is not one of {known}", unquote(name));
    }
    if let Some(name) = body.strip_prefix("missing field ") {
        return format!("field \"{}\" is required", unquote(name));
    }
    if let Some(name) = body.strip_prefix("duplicate field ") {
        return format!("field \"{}\" appears twice", unquote(name));
    }
    // Syntax errors ("expected value", "EOF while parsing ...") are plain
    // already; their position helps, so it stays.
    match position {
        Some(p) if is_syntax(body) => format!("not valid JSON: {body} ({p})"),
        _ => body.to_string(),
    }
}

/// Deserialises `value` into `T`, or says which field is wrong and why in
/// plain words (the field is the path inside `value`, e.g. `items[2].id`,
/// prefixed by `field` when that is not empty).
pub fn from_json_value<T: DeserializeOwned>(field: &str, value: serde_json::Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let full = match (field.is_empty(), path.is_empty()) {
            (_, true) => field.to_string(),
            (true, false) => path,
            (false, false) => format!("{field}.{path}"),
        };
        let message = e.into_inner().to_string();
        // A missing field is named as the field itself: `region: is required`.
        if let Some(name) = message.strip_prefix("missing field ").map(unquote) {
            let field = if full.is_empty() { name.to_string() } else { format!("{full}.{name}") };
            return ValidationError::new(field, "is required");
        }
        ValidationError::new(full, serde_message(&message))
    })
}

/// Splits `... at line L column C` into the message and `line L, column C`.
fn split_position(message: &str) -> (&str, Option<String>) {
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        if let Some((line, column)) = tail.split_once(" column ")
            && line.chars().all(|c| c.is_ascii_digit())
            && column.chars().all(|c| c.is_ascii_digit())
        {
            return (&message[..at], Some(format!("line {line}, column {column}")));
        }
    }
    (message, None)
}

fn is_syntax(body: &str) -> bool {
    [
        "expected ",
        "EOF while parsing",
        "trailing ",
        "key must be",
        "control character",
        "invalid escape",
        "invalid number",
        "lone leading surrogate",
        "recursion limit",
    ]
    .iter()
    .any(|p| body.starts_with(p))
}

/// `string "a, b", expected f64` — the unexpected value may itself contain
/// `, expected `, so split at the last one.
fn split_got_expected(rest: &str) -> Option<(&str, &str)> {
    let at = rest.rfind(", expected ")?;
    Some((&rest[..at], &rest[at + ", expected ".len()..]))
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('`')
}

/// `` `a`, `b` or `c` `` / `` one of `a`, `b` `` → `a, b, c`.
fn names_list(s: &str) -> String {
    let s = s.strip_prefix("one of ").unwrap_or(s);
    let names: Vec<&str> =
        s.split(',').flat_map(|part| part.split(" or ")).map(unquote).filter(|n| !n.is_empty()).collect();
    names.join(", ")
}

/// serde's `Unexpected` display (`map`, `integer `3``, `string "x"`, ...)
/// in JSON's words.
fn got_words(got: &str) -> String {
    let got = got.trim();
    let inner = |prefix: &str| got.strip_prefix(prefix).map(unquote);
    if let Some(b) = inner("boolean ") {
        return b.to_string();
    }
    if let Some(n) = inner("integer ").or_else(|| inner("floating point ")) {
        return format!("the number {n}");
    }
    if let Some(s) = got.strip_prefix("string ") {
        return format!("the string {s}");
    }
    if let Some(c) = inner("character ") {
        return format!("the string \"{c}\"");
    }
    match got {
        "map" => "an object".into(),
        "sequence" => "an array".into(),
        "null" | "unit value" | "unit" | "Option value" => "null".into(),
        "byte array" => "bytes".into(),
        "enum" | "unit variant" | "newtype variant" | "tuple variant" | "struct variant" => "a variant".into(),
        "newtype struct" => "a value".into(),
        other => other.to_string(),
    }
}

/// serde's `Expected` display (`f64`, `a string`, `struct RawRecord`, ...)
/// in JSON's words; a Rust type name never gets through.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "f64" | "f32" | "a number" | "a float" => return "a number".into(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => return "a whole number ≥ 0".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "an integer" => return "a whole number".into(),
        "a string" | "a borrowed string" | "string" | "a str" => return "a string".into(),
        "a boolean" | "bool" => return "true or false".into(),
        "a sequence" | "sequence" => return "an array".into(),
        "a map" | "map" => return "an object".into(),
        "unit" | "null" => return "null".into(),
        "a character" | "char" => return "a single character".into(),
        "path string" | "a path" => return "a path (a string)".into(),
        _ => {}
    }
    if e.starts_with("struct ") || e.starts_with("a map") {
        return "an object".into();
    }
    if let Some(n) = e.strip_prefix("a tuple of size ").or_else(|| e.strip_prefix("tuple of ")) {
        return format!("an array of {} items", n.trim_end_matches(" elements"));
    }
    if let Some(rest) = e.strip_prefix("one of ") {
        return format!("one of {}", names_list(rest));
    }
    if e.starts_with("enum ") || e.starts_with("variant identifier") || e.starts_with("field identifier") {
        return "a known name".into();
    }
    // Already words ("a valid RFC 3339 time", "a non-empty string", ...).
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_mismatches_are_in_json_words() {
        assert_eq!(
            serde_message("invalid type: map, expected f64 at line 1 column 11"),
            "expected a number, got an object"
        );
        assert_eq!(
            serde_message("invalid type: string \"x\", expected f64"),
            "expected a number, got the string \"x\""
        );
        assert_eq!(
            serde_message("invalid type: integer `3`, expected a string"),
            "expected a string, got the number 3"
        );
        assert_eq!(
            serde_message("invalid type: floating point `1.5`, expected u64"),
            "expected a whole number ≥ 0, got the number 1.5"
        );
        assert_eq!(serde_message("invalid type: boolean `true`, expected a sequence"), "expected an array, got true");
        assert_eq!(
            serde_message("invalid type: sequence, expected struct RawRecord"),
            "expected an object, got an array"
        );
        assert_eq!(serde_message("invalid type: null, expected a boolean"), "expected true or false, got null");
        assert_eq!(
            serde_message("invalid value: integer `-1`, expected usize"),
            "expected a whole number ≥ 0, got the number -1"
        );
    }

    #[test]
    fn names_are_listed_without_backticks() {
        assert_eq!(
            serde_message("unknown field `vaule`, expected one of `value`, `confidence`"),
            "unknown field \"vaule\"; the fields are value, confidence"
        );
        assert_eq!(serde_message("unknown field `x`, expected `a` or `b`"), "unknown field \"x\"; the fields are a, b");
        assert_eq!(
            serde_message("unknown field `x`, there are no fields"),
            "unknown field \"x\" (no fields are accepted here)"
        );
        assert_eq!(
            serde_message("unknown variant `hi`, expected one of `low`, `high`"),
            "\"hi\" is not one of low, high"
        );
        assert_eq!(serde_message("missing field `id`"), "field \"id\" is required");
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        assert_eq!(
            serde_message("expected value at line 1 column 5"),
            "not valid JSON: expected value (line 1, column 5)"
        );
        assert_eq!(serde_message("something else entirely"), "something else entirely");
    }

    #[test]
    fn from_json_value_names_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            n: f64,
            items: Vec<u32>,
        }
        let e = from_json_value::<Body>("body", serde_json::json!({"n": {}, "items": []})).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("body.n", "expected a number, got an object"));
        let e = from_json_value::<Body>("body", serde_json::json!({"n": 1})).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("body.items", "is required"));
        let e = from_json_value::<Body>("", serde_json::json!({"n": 1, "items": [1, "x"]})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("items[1]", "expected a whole number ≥ 0, got the string \"x\"")
        );
    }
}
