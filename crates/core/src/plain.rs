//! serde's error messages in plain words.
//!
//! serde_json says `invalid type: string "high", expected f64 at line 1
//! column 82`: a Rust type name and a position in text the user may never
//! have seen (the API re-serialises bodies). [`plain_json_message`] says
//! `invalid type: expected a number, got the string "high"` instead; the
//! caller names the field.

/// Rewrites a serde / serde_json error message for people: Rust type names
/// become what a JSON user would call them, and the `at line L column C`
/// suffix goes. Messages it does not recognise are returned without the
/// position only.
pub fn plain_json_message(message: &str) -> String {
    let message = strip_position(message);
    for (prefix, label) in [("invalid type: ", "invalid type"), ("invalid value: ", "invalid value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return format!("{label}: expected {}, got {}", expected_words(expected), got_words(got));
            }
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            let expected = tail.trim_start_matches(", ").trim_start_matches("expected ").replace('`', "");
            return if expected.is_empty() {
                format!("unknown field {field:?}")
            } else {
                format!("unknown field {field:?}; expected {expected}")
            };
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return format!("missing field {:?}", rest.trim_end_matches('`'));
    }
    message.to_string()
}

fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

/// `f64` → `a number`, `a sequence` → `an array`, ...
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    let words = match e {
        "f64" | "f32" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number ≥ 0",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "a boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "a string or null" | "String" | "char" | "a character" => "a string",
        "a sequence" | "a vec" | "a tuple" => "an array",
        "a map" | "a JSON object" => "a JSON object",
        "unit" | "()" => "null",
        _ if e.starts_with("struct ") || e.starts_with("a map") => "a JSON object",
        _ if e.starts_with("a sequence") || e.starts_with("an array") => "an array",
        _ if e.starts_with("variant identifier") || e.starts_with("one of ") => return e.replace('`', ""),
        _ => return e.replace('`', ""),
    };
    words.to_string()
}

/// `string "high"` → `the string "high"`, `integer `5`` → `the number 5`, `map` → `a JSON object`.
fn got_words(got: &str) -> String {
    let g = got.trim();
    let unquote = |s: &str| s.trim_matches('`').to_string();
    if let Some(s) = g.strip_prefix("string ") {
        return format!("the string {s}");
    }
    for prefix in ["integer ", "floating point "] {
        if let Some(n) = g.strip_prefix(prefix) {
            return format!("the number {}", unquote(n));
        }
    }
    if let Some(b) = g.strip_prefix("boolean ") {
        return unquote(b);
    }
    match g {
        "map" => "a JSON object".into(),
        "sequence" => "an array".into(),
        "null" | "unit value" => "null".into(),
        other => other.replace('`', ""),
    }
}

#[cfg(test)]
mod tests {
    use super::plain_json_message as p;

    #[test]
    fn rust_type_names_become_plain_words() {
        assert_eq!(p("invalid type: string \"high\", expected f64 at line 1 column 82"), "invalid type: expected a number, got the string \"high\"");
        assert_eq!(p("invalid type: integer `5`, expected a string at line 1 column 7"), "invalid type: expected a string, got the number 5");
        assert_eq!(p("invalid type: map, expected a sequence"), "invalid type: expected an array, got a JSON object");
        assert_eq!(p("invalid type: sequence, expected struct Proposal"), "invalid type: expected a JSON object, got an array");
        assert_eq!(p("invalid value: integer `-1`, expected usize"), "invalid value: expected a whole number ≥ 0, got the number -1");
        assert_eq!(p("invalid type: boolean `true`, expected u32"), "invalid type: expected a whole number ≥ 0, got true");
        assert_eq!(p("unknown field `vaule`, expected one of `id`, `value`"), "unknown field \"vaule\"; expected one of id, value");
        assert_eq!(p("missing field `region`"), "missing field \"region\"");
        assert_eq!(p("EOF while parsing a value at line 1 column 0"), "EOF while parsing a value");
        for m in ["invalid type: floating point `1.5`, expected i64", "invalid type: null, expected a boolean"] {
            let out = p(m);
            assert!(!out.contains("i64") && !out.contains('`'), "{out}");
        }
    }
}
