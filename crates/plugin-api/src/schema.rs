//! JSON Schemas of a plugin's request and answer types, made from the Rust
//! types themselves (`#[derive(schemars::JsonSchema)]`), so the OpenAPI
//! document cannot drift from what a route really takes and answers.
//!
//! A plugin makes one [`Schemas`] while it builds its manifest, asks it for
//! each route's body ([`Schemas::input`]) and answer ([`Schemas::output`]),
//! and stores [`Schemas::into_definitions`] in [`crate::Manifest::schemas`].
//! Route schemas refer to named types as `#/$defs/Name`; the host lists
//! them in the document under `components/schemas`.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

/// Collects the schemas of one plugin's types.
pub struct Schemas {
    /// Answers: what `Serialize` writes (a field skipped when empty is not
    /// required).
    output: SchemaGenerator,
    /// Bodies: what `Deserialize` reads (a field with a default is not
    /// required).
    input: SchemaGenerator,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            output: SchemaSettings::draft2020_12().for_serialize().into_generator(),
            input: SchemaSettings::draft2020_12().for_deserialize().into_generator(),
        }
    }
}

impl Schemas {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of an answer of type `T` (a `$ref` for a named type).
    pub fn output<T: JsonSchema>(&mut self) -> Value {
        self.output.subschema_for::<T>().to_value()
    }

    /// The schema of a request body of type `T`.
    pub fn input<T: JsonSchema>(&mut self) -> Value {
        self.input.subschema_for::<T>().to_value()
    }

    /// Every named type the schemas handed out refer to. A type used both
    /// as a body and as an answer whose two schemas differ is listed twice:
    /// as `Name` (the answer) and `NameInput` (the body), and references
    /// to the body's are renamed.
    pub fn into_definitions(mut self) -> BTreeMap<String, Value> {
        let mut defs: BTreeMap<String, Value> = self.output.take_definitions(true).into_iter().collect();
        for (name, schema) in self.input.take_definitions(true) {
            match defs.get(&name) {
                Some(existing) if *existing != schema => {
                    defs.insert(format!("{name}Input"), schema);
                }
                _ => {
                    defs.insert(name, schema);
                }
            }
        }
        defs
    }
}

/// The definitions a schema refers to (`#/$defs/Name`), transitively.
pub fn referenced<'a>(schema: &'a Value, defs: &'a BTreeMap<String, Value>, out: &mut Vec<&'a str>) {
    match schema {
        Value::Object(m) => {
            if let Some(name) = m.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/"))
                && let Some((key, def)) = defs.get_key_value(name)
                && !out.contains(&key.as_str())
            {
                out.push(key.as_str());
                referenced(def, defs, out);
            }
            for v in m.values() {
                referenced(v, defs, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| referenced(v, defs, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, JsonSchema)]
    struct Inner {
        x: f64,
    }

    /// An answer.
    #[derive(serde::Serialize, JsonSchema)]
    struct Answer {
        /// The items.
        items: Vec<Inner>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    #[test]
    fn answers_refer_to_named_definitions() {
        let mut s = Schemas::new();
        let r = s.output::<Answer>();
        assert_eq!(r, serde_json::json!({"$ref": "#/$defs/Answer"}));
        let defs = s.into_definitions();
        let a = &defs["Answer"];
        assert_eq!(a["required"], serde_json::json!(["items"]), "{a}");
        assert_eq!(a["properties"]["items"]["items"]["$ref"], "#/$defs/Inner");
        assert_eq!(a["description"], "An answer.");
        let mut names = Vec::new();
        referenced(&r, &defs, &mut names);
        assert_eq!(names, ["Answer", "Inner"]);
    }
}
