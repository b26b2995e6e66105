//! JSON in which every key appears once per object.
//!
//! RFC 8259 leaves a repeated key (`{"id":"a","id":"b"}`) to the parser, and
//! serde_json's `Value` keeps the last one silently. learnloop refuses such
//! input instead, naming the key: a record whose `plugin` or
//! `payload.region` says two things was not meant to be stored as either.
//! The check is part of building the value (a map insert that finds the key
//! already there), so it costs one parse, not two.
//!
//! [`parse_value`] parses a whole text (an HTTP body) and lists every
//! repeated key with its path, so a batch can refuse only the items that
//! have one; [`unique_value`] and [`unique_map`] are `deserialize_with`
//! functions that fail on the first repeated key, for fields of a derived
//! `Deserialize` (a record's `payload` and `features`).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// The message every entry point gives for a repeated key (the key itself
/// is named as the field).
pub const DUPLICATE_KEY_MESSAGE: &str = "appears more than once in the same object; each key may appear only once";

/// A key that appeared more than once in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// When the text is an array: the index of the item that holds the key.
    pub item: Option<usize>,
    /// The key's path inside the item (or inside the whole value when
    /// `item` is `None`), as fields are named elsewhere: `payload.region`,
    /// `payload.steps[2].name`.
    pub path: String,
}

/// One step of a path, innermost last.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn path_string(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parses `text` as JSON, listing every key that appears more than once in
/// its object (the value keeps the first occurrence). A top-level array's
/// duplicates carry the index of their item.
///
/// Errors are serde_json's own (malformed JSON, trailing characters).
pub fn parse_value(text: &[u8]) -> Result<(Value, Vec<DuplicateKey>), serde_json::Error> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Seed { found: &mut found }.deserialize(&mut de)?;
    de.end()?;
    let top_array = value.is_array();
    let duplicates = found
        .into_iter()
        .map(|mut segments| {
            // Segments were collected innermost first.
            segments.reverse();
            match (top_array, segments.first()) {
                (true, Some(Segment::Index(i))) => DuplicateKey { item: Some(*i), path: path_string(&segments[1..]) },
                _ => DuplicateKey { item: None, path: path_string(&segments) },
            }
        })
        .collect();
    Ok((value, duplicates))
}

/// `deserialize_with` for an optional JSON value (`null` is `None`) that
/// fails on a repeated key with `duplicate field `PATH``, PATH relative to
/// the field (so a caller that knows the field's path can name the key).
pub fn unique_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let mut found = Vec::new();
    let value = Seed { found: &mut found }.deserialize(d)?;
    if let Some(mut first) = found.into_iter().next() {
        first.reverse();
        return Err(de::Error::custom(format_args!("duplicate field `{}`", path_string(&first))));
    }
    Ok((!value.is_null()).then_some(value))
}

/// `deserialize_with` for an optional JSON object, like [`unique_value`];
/// anything else than an object or `null` fails as a derived
/// `Option<Map<String, Value>>` would.
pub fn unique_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    match unique_value(d)? {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => {
            <Option<Map<String, Value>> as serde::Deserialize>::deserialize(other).map_err(de::Error::custom)
        }
    }
}

/// Builds a `Value` as serde_json's own visitor does, recording the path of
/// each repeated key (innermost segment first, so that each level only
/// appends its own segment on the way out).
struct Seed<'a> {
    found: &'a mut Vec<Vec<Segment>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite number; `Null` is what its
        // own visitor gives for one from other deserializers.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Seed { found: self.found }.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let before = self.found.len();
            let Some(item) = seq.next_element_seed(Seed { found: &mut *self.found })? else { break };
            for f in &mut self.found[before..] {
                f.push(Segment::Index(items.len()));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let before = self.found.len();
            let value = access.next_value_seed(Seed { found: &mut *self.found })?;
            for f in &mut self.found[before..] {
                f.push(Segment::Key(key.clone()));
            }
            match map.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(value);
                }
                Entry::Occupied(e) => self.found.push(vec![Segment::Key(e.key().clone())]),
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dups(text: &str) -> Vec<(Option<usize>, String)> {
        parse_value(text.as_bytes()).unwrap().1.into_iter().map(|d| (d.item, d.path)).collect()
    }

    #[test]
    fn a_value_without_repeats_parses_as_serde_json_does() {
        for text in [
            r#"{"a":1,"b":[1,2.5,-3,{"c":null}],"d":{"e":"x","f":true},"g":18446744073709551615}"#,
            "[]",
            "[{},{}]",
            "\"s\"",
            "1e3",
        ] {
            let (v, d) = parse_value(text.as_bytes()).unwrap();
            assert_eq!(v, serde_json::from_str::<Value>(text).unwrap(), "{text}");
            assert!(d.is_empty(), "{text}");
        }
    }

    #[test]
    fn repeated_keys_are_named_with_their_path() {
        assert_eq!(dups(r#"{"id":"a","id":"b"}"#), [(None, "id".to_string())]);
        assert_eq!(dups(r#"{"payload":{"region":"a","region":"b"}}"#), [(None, "payload.region".to_string())]);
        assert_eq!(
            dups(r#"{"payload":{"steps":[{"n":1},{"n":1,"n":2}]}}"#),
            [(None, "payload.steps[1].n".to_string())]
        );
        // The same key in different objects is not a repeat.
        assert!(dups(r#"{"a":{"x":1},"b":{"x":1},"x":1}"#).is_empty());
    }

    #[test]
    fn a_batch_names_the_item() {
        let d = dups(r#"[{"id":"a"},{"id":"b","plugin":"x","plugin":"y"},{"features":{"f":1,"f":2}}]"#);
        assert_eq!(d, [(Some(1), "plugin".to_string()), (Some(2), "features.f".to_string())]);
    }

    #[test]
    fn the_first_occurrence_is_kept_and_malformed_json_still_fails() {
        let (v, _) = parse_value(br#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(v["a"], 1);
        assert!(parse_value(br#"{"a":1"#).is_err());
        assert!(parse_value(br#"{"a":1} x"#).is_err());
    }

    #[derive(serde::Deserialize, Debug)]
    struct Holder {
        #[serde(default, deserialize_with = "unique_value")]
        payload: Option<Value>,
        #[serde(default, deserialize_with = "unique_map")]
        features: Option<Map<String, Value>>,
    }

    #[test]
    fn the_field_functions_fail_on_the_first_repeat() {
        let e = serde_json::from_str::<Holder>(r#"{"payload":{"a":{"b":1,"b":2}}}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate field `a.b`"), "{e}");
        let e = serde_json::from_str::<Holder>(r#"{"features":{"f":1,"f":1}}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate field `f`"), "{e}");
        let h = serde_json::from_str::<Holder>(r#"{"payload":null,"features":null}"#).unwrap();
        assert!(h.payload.is_none() && h.features.is_none());
        let h = serde_json::from_str::<Holder>(r#"{}"#).unwrap();
        assert!(h.payload.is_none() && h.features.is_none());
        let e = serde_json::from_str::<Holder>(r#"{"features":5}"#).unwrap_err();
        assert!(e.to_string().contains("expected a map"), "{e}");
    }
}
