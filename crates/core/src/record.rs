//! Predictions and outcomes: what enters learnloop, and the checks at the door.
//!
//! Input arrives as a [`RawRecord`] (a JSON line, a CSV row, one item of an
//! HTTP batch) whose fields are all optional, and leaves as a validated
//! [`Record`] or a [`ValidationError`] naming the field. Keeping the raw form
//! separate lets every entry point share one set of rules and lets errors say
//! "`confidence` must be between 0 and 1" instead of a parser's column number.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::limits::*;
use crate::{PluginName, RecordId, Timestamp, ValidationError, WorkspaceId};

/// Whether a record is a prediction or an outcome (the `type` field of JSONL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// Something predicted or recommended.
    Prediction,
    /// What really happened afterwards.
    Outcome,
}

impl RecordType {
    /// The wire name, `prediction` or `outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Prediction => "prediction",
            RecordType::Outcome => "outcome",
        }
    }

    fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "prediction" => Ok(RecordType::Prediction),
            "outcome" => Ok(RecordType::Outcome),
            other => Err(ValidationError::new(
                "type",
                format!("{other:?} is not a record type; expected \"prediction\" or \"outcome\""),
            )),
        }
    }
}

/// Something that was predicted or recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Prediction {
    /// Client-chosen id, unique in the workspace; makes ingestion idempotent.
    pub id: RecordId,
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin that owns and learns from this prediction.
    pub plugin: PluginName,
    /// What the prediction is about: an agent id, a model id, a user id, a resource.
    pub subject: String,
    /// Its kind: a recommendation type, a task type, a model type.
    pub kind: String,
    /// The predicted number, if the prediction is numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The predicted label, if the prediction is categorical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The predictor's own confidence, in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Scalar features or context (numbers, strings, booleans).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub features: Map<String, Value>,
    /// A plugin-specific JSON object, validated by the owning plugin.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
    /// When it was predicted; `None` until the store fills in the ingestion time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Timestamp>,
}

/// What really happened to a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    /// Client-chosen id, unique in the workspace. A prediction may have several outcomes.
    pub id: RecordId,
    /// The tenant; must be the prediction's.
    pub workspace: WorkspaceId,
    /// The owning plugin; must be the prediction's.
    pub plugin: PluginName,
    /// The prediction this outcome resolves.
    pub prediction_id: RecordId,
    /// The observed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The observed label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether the predicted thing succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// A quality judgement in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
    /// Free-text feedback from whoever judged the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// A plugin-specific JSON object, validated by the owning plugin.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
    /// When it happened; `None` until the store fills in the ingestion time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Timestamp>,
}

/// A validated prediction or outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// A prediction.
    Prediction(Prediction),
    /// An outcome.
    Outcome(Outcome),
}

/// SHA-256 of a record's content without its event time.
///
/// Two submissions with the same id are the same record when their hashes are
/// equal and their event times agree (a missing event time agrees with any).
/// Leaving the time out is what makes a retry of a record sent without an
/// event time a duplicate rather than a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

/// The fields of a prediction that its content hash covers (all but event time).
#[derive(Serialize)]
struct PredictionContent<'a> {
    id: &'a RecordId,
    workspace: &'a WorkspaceId,
    plugin: &'a PluginName,
    subject: &'a str,
    kind: &'a str,
    value: Option<f64>,
    label: Option<&'a str>,
    confidence: Option<f64>,
    features: &'a Map<String, Value>,
    payload: &'a Value,
}

/// The fields of an outcome that its content hash covers (all but event time).
#[derive(Serialize)]
struct OutcomeContent<'a> {
    id: &'a RecordId,
    workspace: &'a WorkspaceId,
    plugin: &'a PluginName,
    prediction_id: &'a RecordId,
    value: Option<f64>,
    label: Option<&'a str>,
    success: Option<bool>,
    quality: Option<f64>,
    feedback: Option<&'a str>,
    payload: &'a Value,
}

fn hash_of<T: Serialize>(tag: &[u8], content: &T) -> ContentHash {
    let mut h = Sha256::new();
    h.update(tag);
    // Serialising plain data into a Vec cannot fail; maps are sorted (serde_json
    // without `preserve_order`), so equal content always gives equal bytes.
    h.update(serde_json::to_vec(content).expect("records serialise"));
    ContentHash(h.finalize().into())
}

impl Prediction {
    /// The content hash used for idempotency checks.
    pub fn content_hash(&self) -> ContentHash {
        hash_of(
            b"prediction\0",
            &PredictionContent {
                id: &self.id,
                workspace: &self.workspace,
                plugin: &self.plugin,
                subject: &self.subject,
                kind: &self.kind,
                value: self.value,
                label: self.label.as_deref(),
                confidence: self.confidence,
                features: &self.features,
                payload: &self.payload,
            },
        )
    }
}

impl Outcome {
    /// The content hash used for idempotency checks.
    pub fn content_hash(&self) -> ContentHash {
        hash_of(
            b"outcome\0",
            &OutcomeContent {
                id: &self.id,
                workspace: &self.workspace,
                plugin: &self.plugin,
                prediction_id: &self.prediction_id,
                value: self.value,
                label: self.label.as_deref(),
                success: self.success,
                quality: self.quality,
                feedback: self.feedback.as_deref(),
                payload: &self.payload,
            },
        )
    }
}

impl Record {
    /// Prediction or outcome.
    pub fn record_type(&self) -> RecordType {
        match self {
            Record::Prediction(_) => RecordType::Prediction,
            Record::Outcome(_) => RecordType::Outcome,
        }
    }
    /// The record's id.
    pub fn id(&self) -> &RecordId {
        match self {
            Record::Prediction(p) => &p.id,
            Record::Outcome(o) => &o.id,
        }
    }
    /// The record's workspace.
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Record::Prediction(p) => &p.workspace,
            Record::Outcome(o) => &o.workspace,
        }
    }
    /// The owning plugin.
    pub fn plugin(&self) -> &PluginName {
        match self {
            Record::Prediction(p) => &p.plugin,
            Record::Outcome(o) => &o.plugin,
        }
    }
    /// The event time as submitted.
    pub fn event_time(&self) -> Option<Timestamp> {
        match self {
            Record::Prediction(p) => p.event_time,
            Record::Outcome(o) => o.event_time,
        }
    }
    /// The content hash used for idempotency checks.
    pub fn content_hash(&self) -> ContentHash {
        match self {
            Record::Prediction(p) => p.content_hash(),
            Record::Outcome(o) => o.content_hash(),
        }
    }
}

/// Input as it arrives, before validation: every field optional, unknown
/// fields rejected (a misspelt `confidnece` is an error, not silently dropped).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Record")]
pub struct RawRecord {
    /// `prediction` or `outcome`.
    #[serde(rename = "type")]
    #[schemars(with = "Option<RecordType>")]
    pub record_type: Option<String>,
    /// Record id.
    pub id: Option<String>,
    /// Workspace id; the defaults may supply it.
    pub workspace: Option<String>,
    /// Plugin name.
    pub plugin: Option<String>,
    /// Prediction subject.
    pub subject: Option<String>,
    /// Prediction kind.
    pub kind: Option<String>,
    /// Predicted or observed number.
    pub value: Option<f64>,
    /// Predicted or observed label.
    pub label: Option<String>,
    /// Prediction confidence.
    pub confidence: Option<f64>,
    /// Prediction features.
    #[serde(default, deserialize_with = "crate::json::unique_map")]
    pub features: Option<Map<String, Value>>,
    /// Plugin-specific payload.
    #[serde(default, deserialize_with = "crate::json::unique_value")]
    pub payload: Option<Value>,
    /// RFC 3339 event time.
    #[schemars(with = "Option<crate::Timestamp>")]
    pub event_time: Option<String>,
    /// The prediction an outcome resolves.
    pub prediction_id: Option<String>,
    /// Outcome success.
    pub success: Option<bool>,
    /// Outcome quality.
    pub quality: Option<f64>,
    /// Outcome feedback.
    pub feedback: Option<String>,
}

/// Values an entry point supplies for fields a record leaves out.
#[derive(Debug, Clone, Default)]
pub struct RecordDefaults {
    /// Workspace for records without one.
    pub workspace: Option<WorkspaceId>,
    /// Type for records without one (an HTTP route that only takes outcomes, a CSV of predictions).
    pub record_type: Option<RecordType>,
}

/// Parses one JSON object into a validated record.
///
/// Errors name the field, also for type errors and non-finite numbers that a
/// JSON parser would otherwise report by column only.
pub fn parse_json_record(text: &str, defaults: &RecordDefaults) -> Result<Record, ValidationError> {
    if text.len() > MAX_LINE_BYTES {
        return Err(ValidationError::new(
            "",
            format!("record is {} bytes; at most {MAX_LINE_BYTES} are allowed", text.len()),
        ));
    }
    // The fast path parses without path tracking; only a failure is parsed
    // again to find the field to name.
    if let Ok(raw) = serde_json::from_str::<RawRecord>(text) {
        return raw.validate(defaults);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: RawRecord = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| ValidationError::new("", format!("trailing data after the record ({e})")))?;
    raw.validate(defaults)
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ValidationError {
    let path = e.path().to_string();
    let field = if path == "." { String::new() } else { path };
    let inner = e.into_inner();
    let msg = inner.to_string();
    // A repeated key (serde's own `duplicate field` for a record's fields,
    // `crate::json`'s for keys inside `payload` and `features`) is named as
    // the field, with its path.
    if let Some(rest) = msg.strip_prefix("duplicate field `")
        && let Some(end) = rest.rfind('`')
    {
        let key = &rest[..end];
        let field = if field.is_empty() { key.to_string() } else { format!("{field}.{key}") };
        return ValidationError::new(field, crate::json::DUPLICATE_KEY_MESSAGE);
    }
    // serde_json reports `NaN`/`Infinity` tokens as a bare syntax error; say
    // what the user actually did wrong.
    let message = if inner.is_syntax() && msg.starts_with("expected value") {
        format!("is not valid JSON here ({msg}); note that NaN and Infinity are not accepted, numbers must be finite")
    } else if msg.contains("number out of range") {
        format!("number is out of range ({msg}); numbers must be finite")
    } else {
        crate::plain::serde_message(&msg)
    };
    ValidationError::new(field, message)
}

fn require(field: &str, v: Option<String>) -> Result<String, ValidationError> {
    v.ok_or_else(|| ValidationError::new(field, "is required"))
}

fn finite(field: &str, v: Option<f64>) -> Result<Option<f64>, ValidationError> {
    match v {
        Some(x) if !x.is_finite() => Err(ValidationError::new(field, format!("must be a finite number, got {x}"))),
        other => Ok(other),
    }
}

fn unit_interval(field: &str, v: Option<f64>) -> Result<Option<f64>, ValidationError> {
    match finite(field, v)? {
        Some(x) if !(0.0..=1.0).contains(&x) => {
            Err(ValidationError::new(field, format!("must be between 0 and 1, got {x}")))
        }
        other => Ok(other),
    }
}

/// Checks free text: bounded length and no control characters (tab, newline
/// and carriage return are allowed where `multiline`). NUL is refused
/// everywhere because PostgreSQL cannot store it.
fn text(field: &str, s: String, max: usize, multiline: bool) -> Result<String, ValidationError> {
    if s.len() > max {
        return Err(ValidationError::new(field, format!("is {} bytes long; at most {max} are allowed", s.len())));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r'))) {
        return Err(ValidationError::new(field, format!("contains the control character {c:?}")));
    }
    Ok(s)
}

fn name(field: &str, v: Option<String>) -> Result<String, ValidationError> {
    let s = text(field, require(field, v)?, MAX_NAME_LEN, false)?;
    if s.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be blank"));
    }
    Ok(s)
}

fn features(v: Option<Map<String, Value>>) -> Result<Map<String, Value>, ValidationError> {
    let Some(map) = v else { return Ok(Map::new()) };
    if map.len() > MAX_FEATURES {
        return Err(ValidationError::new(
            "features",
            format!("has {} entries; at most {MAX_FEATURES} are allowed", map.len()),
        ));
    }
    for (k, v) in &map {
        let field = format!("features.{k}");
        if k.is_empty() || k.len() > MAX_FEATURE_NAME_LEN {
            return Err(ValidationError::new(
                field,
                format!("feature names must be 1 to {MAX_FEATURE_NAME_LEN} bytes long"),
            ));
        }
        text(&field, k.clone(), MAX_FEATURE_NAME_LEN, false)?;
        match v {
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
            Value::String(s) => {
                text(&field, s.clone(), MAX_LABEL_LEN, false)?;
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(ValidationError::new(
                    field,
                    "must be a number, a string, a boolean or null; put nested data in `payload`",
                ));
            }
        }
    }
    Ok(map)
}

fn payload(v: Option<Value>) -> Result<Value, ValidationError> {
    let v = match v {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ValidationError::new("payload", "must be a JSON object")),
    };
    fn walk(v: &Value, path: &mut String, depth: usize) -> Result<(), ValidationError> {
        if depth > MAX_PAYLOAD_DEPTH {
            return Err(ValidationError::new(
                path.as_str(),
                format!("is nested more than {MAX_PAYLOAD_DEPTH} levels deep"),
            ));
        }
        match v {
            Value::String(s) if s.contains('\0') => {
                Err(ValidationError::new(path.as_str(), "contains a NUL character"))
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, depth + 1)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    if k.contains('\0') {
                        return Err(ValidationError::new(path.as_str(), "has a key with a NUL character"));
                    }
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    walk(item, path, depth + 1)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(&v, &mut "payload".to_owned(), 0)?;
    let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_PAYLOAD_BYTES {
        return Err(ValidationError::new(
            "payload",
            format!("is {size} bytes as JSON; at most {MAX_PAYLOAD_BYTES} are allowed"),
        ));
    }
    Ok(v)
}

fn not_for(field: &str, present: bool, rt: RecordType) -> Result<(), ValidationError> {
    if present {
        let other = match rt {
            RecordType::Prediction => "outcomes",
            RecordType::Outcome => "predictions",
        };
        return Err(ValidationError::new(field, format!("belongs to {other}; a {} cannot have it", rt.as_str())));
    }
    Ok(())
}

impl RawRecord {
    /// Validates the record, filling gaps from `defaults`.
    pub fn validate(self, defaults: &RecordDefaults) -> Result<Record, ValidationError> {
        let rt = match self.record_type.as_deref() {
            Some(s) => RecordType::parse(s)?,
            None => defaults
                .record_type
                .ok_or_else(|| ValidationError::new("type", "is required (\"prediction\" or \"outcome\")"))?,
        };
        if let (Some(want), true) = (defaults.record_type, self.record_type.is_some())
            && want != rt
        {
            return Err(ValidationError::new(
                "type",
                format!("is {:?} but only {:?} records are accepted here", rt.as_str(), want.as_str()),
            ));
        }
        let id = RecordId::parse("id", &require("id", self.id)?)?;
        let workspace = match self.workspace {
            Some(w) => WorkspaceId::parse("workspace", &w)?,
            None => defaults.workspace.clone().ok_or_else(|| ValidationError::new("workspace", "is required"))?,
        };
        let plugin = PluginName::parse("plugin", &require("plugin", self.plugin)?)?;
        let value = finite("value", self.value)?;
        let label = self.label.map(|l| text("label", l, MAX_LABEL_LEN, true)).transpose()?;
        let payload = payload(self.payload)?;
        let event_time = self.event_time.map(|t| Timestamp::parse("event_time", &t)).transpose()?;
        match rt {
            RecordType::Prediction => {
                not_for("prediction_id", self.prediction_id.is_some(), rt)?;
                not_for("success", self.success.is_some(), rt)?;
                not_for("quality", self.quality.is_some(), rt)?;
                not_for("feedback", self.feedback.is_some(), rt)?;
                Ok(Record::Prediction(Prediction {
                    id,
                    workspace,
                    plugin,
                    subject: name("subject", self.subject)?,
                    kind: name("kind", self.kind)?,
                    value,
                    label,
                    confidence: unit_interval("confidence", self.confidence)?,
                    features: features(self.features)?,
                    payload,
                    event_time,
                }))
            }
            RecordType::Outcome => {
                not_for("subject", self.subject.is_some(), rt)?;
                not_for("kind", self.kind.is_some(), rt)?;
                not_for("confidence", self.confidence.is_some(), rt)?;
                not_for("features", self.features.is_some(), rt)?;
                let prediction_id = RecordId::parse("prediction_id", &require("prediction_id", self.prediction_id)?)?;
                Ok(Record::Outcome(Outcome {
                    id,
                    workspace,
                    plugin,
                    prediction_id,
                    value,
                    label,
                    success: self.success,
                    quality: unit_interval("quality", self.quality)?,
                    feedback: self.feedback.map(|f| text("feedback", f, MAX_FEEDBACK_LEN, true)).transpose()?,
                    payload,
                    event_time,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RecordDefaults {
        RecordDefaults::default()
    }

    /// Parses `line`; `expected` is `Ok(())` or the field and a fragment of the message.
    fn check(line: &str, expected: Result<(), (&str, &str)>) {
        let got = parse_json_record(line, &defaults());
        match (got, expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err((field, msg))) => {
                assert_eq!(e.field, field, "wrong field for {line}: {e}");
                assert!(e.message.contains(msg), "{e} lacks {msg:?} for {line}");
            }
            (Ok(r), Err(want)) => panic!("accepted {r:?}, expected {want:?}"),
            (Err(e), Ok(())) => panic!("rejected {line}: {e}"),
        }
    }

    const P: &str =
        r#""type":"prediction","id":"p1","workspace":"w","plugin":"drift","subject":"m1","kind":"regression""#;
    const O: &str = r#""type":"outcome","id":"o1","workspace":"w","plugin":"drift","prediction_id":"p1""#;

    #[test]
    fn accepts_valid_records() {
        check(&format!("{{{P}}}"), Ok(()));
        check(
            &format!(
                r#"{{{P},"value":1.5,"confidence":0.9,"features":{{"age":3,"region":"eu","ok":true,"x":null}},"payload":{{"a":[1,{{"b":2}}]}},"event_time":"2026-01-01T00:00:00Z"}}"#
            ),
            Ok(()),
        );
        check(&format!(r#"{{{O},"value":2,"success":true,"quality":1,"feedback":"fine\nthanks"}}"#), Ok(()));
    }

    #[test]
    fn names_the_field() {
        check(r#"{"type":"prediction"}"#, Err(("id", "is required")));
        check(r#"{"type":"guess","id":"x"}"#, Err(("type", "expected \"prediction\"")));
        check(&format!(r#"{{{P},"value":NaN}}"#), Err(("value", "finite")));
        check(&format!(r#"{{{P},"value":1e999}}"#), Err(("value", "finite")));
        check(&format!(r#"{{{P},"value":"high"}}"#), Err(("value", "expected a number, got the string \"high\"")));
        check(&format!(r#"{{{P},"confidence":1.5}}"#), Err(("confidence", "between 0 and 1")));
        check(&format!(r#"{{{P},"confidnece":0.5}}"#), Err(("confidnece", "unknown field")));
        check(&format!(r#"{{{P},"features":{{"f":[1]}}}}"#), Err(("features.f", "nested data")));
        check(&format!(r#"{{{P},"payload":[1]}}"#), Err(("payload", "JSON object")));
        check(&format!(r#"{{{P},"payload":{{"a":"x\u0000"}}}}"#), Err(("payload.a", "NUL")));
        check(&format!(r#"{{{P},"event_time":"soon"}}"#), Err(("event_time", "RFC 3339")));
        check(&format!(r#"{{{P},"success":true}}"#), Err(("success", "belongs to outcomes")));
        check(&format!(r#"{{{O},"kind":"x"}}"#), Err(("kind", "belongs to predictions")));
        check(&format!(r#"{{{O},"quality":-0.1}}"#), Err(("quality", "between 0 and 1")));
        check(r#"{"type":"outcome","id":"o","workspace":"w","plugin":"drift"}"#, Err(("prediction_id", "is required")));
        check(
            r#"{"type":"prediction","id":"p1","workspace":"w","plugin":"drift","subject":"a\u0001","kind":"k"}"#,
            Err(("subject", "control")),
        );
        check(&format!(r#"{{{P}}} x"#), Err(("", "trailing")));
        let big = format!(r#"{{{P},"payload":{{"a":"{}"}}}}"#, "x".repeat(70_000));
        check(&big, Err(("payload", "at most 65536")));
    }

    #[test]
    fn refuses_repeated_keys_naming_them() {
        check(&format!(r#"{{{P},"id":"p2"}}"#), Err(("id", "more than once")));
        check(&format!(r#"{{{P},"plugin":"cost"}}"#), Err(("plugin", "more than once")));
        check(
            &format!(r#"{{{P},"payload":{{"region":"eu","region":"us"}}}}"#),
            Err(("payload.region", "more than once")),
        );
        check(&format!(r#"{{{P},"payload":{{"a":[{{"b":1,"b":1}}]}}}}"#), Err(("payload.a[0].b", "more than once")));
        check(&format!(r#"{{{P},"features":{{"f":1,"g":2,"f":1}}}}"#), Err(("features.f", "more than once")));
        // The same key in different objects is fine.
        check(&format!(r#"{{{P},"features":{{"region":1}},"payload":{{"region":"eu","x":{{"region":1}}}}}}"#), Ok(()));
    }

    #[test]
    fn defaults_fill_gaps_and_restrict_type() {
        let d = RecordDefaults {
            workspace: Some(WorkspaceId::parse("", "team").unwrap()),
            record_type: Some(RecordType::Outcome),
        };
        let r = parse_json_record(r#"{"id":"o","plugin":"cost","prediction_id":"p"}"#, &d).unwrap();
        assert_eq!(r.workspace().as_str(), "team");
        assert_eq!(r.record_type(), RecordType::Outcome);
        let e = parse_json_record(&format!("{{{P}}}"), &d).unwrap_err();
        assert_eq!(e.field, "type");
    }

    #[test]
    fn hash_ignores_event_time_and_nothing_else() {
        let a = parse_json_record(&format!(r#"{{{P},"value":1}}"#), &defaults()).unwrap();
        let b = parse_json_record(&format!(r#"{{{P},"value":1,"event_time":"2026-01-01T00:00:00Z"}}"#), &defaults())
            .unwrap();
        let c = parse_json_record(&format!(r#"{{{P},"value":1.0000001}}"#), &defaults()).unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
        // Key order in the input does not matter.
        let d = parse_json_record(
            r#"{"kind":"regression","subject":"m1","plugin":"drift","workspace":"w","id":"p1","type":"prediction","value":1}"#,
            &defaults(),
        )
        .unwrap();
        assert_eq!(a.content_hash(), d.content_hash());
    }

    #[test]
    fn records_round_trip_through_json() {
        let r = parse_json_record(
            &format!(r#"{{{P},"value":1.25,"features":{{"a":1}},"event_time":"2026-01-01T00:00:00Z"}}"#),
            &defaults(),
        )
        .unwrap();
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(parse_json_record(&line, &defaults()).unwrap(), r);
    }
}
