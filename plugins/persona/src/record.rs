//! What the persona plugin's records mean and which it accepts: an
//! interaction's hypotheses, a response's model and length, a feedback's
//! score. Every rejection names the field.

use learnloop_plugin_api::ValidationError;
use learnloop_plugin_api::core::Record;
use serde_json::Value;

use crate::INTERACTION;
use crate::rules::Hypothesis;

/// Validates a string field of a payload.
pub(crate) fn payload_str<'a>(
    payload: &'a Value,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, ValidationError> {
    match payload.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => Ok(Some(s)),
        _ => Err(ValidationError::new(
            format!("payload.{field}"),
            format!("expected a non-empty string of at most {max} characters"),
        )),
    }
}

/// The hypotheses of an interaction payload (validated before storing).
pub(crate) fn parse_hypotheses(payload: &Value) -> Result<Vec<Hypothesis>, ValidationError> {
    let Some(list) = payload.get("hypotheses").and_then(Value::as_array) else {
        return Err(ValidationError::new(
            "payload.hypotheses",
            "expected an array of {id, text, confidence} (the hypotheses offered)",
        ));
    };
    if list.is_empty() || list.len() > 10 {
        return Err(ValidationError::new("payload.hypotheses", "expected 1 to 10 hypotheses"));
    }
    let mut out: Vec<Hypothesis> = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let id = h.get("id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 32);
        let Some(id) = id else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].id"),
                "expected a non-empty string of at most 32 bytes",
            ));
        };
        if out.iter().any(|o| o.id == id) {
            return Err(ValidationError::new(format!("payload.hypotheses[{i}].id"), format!("{id:?} appears twice")));
        }
        let text = h.get("text").and_then(Value::as_str).filter(|s| !s.trim().is_empty() && s.chars().count() <= 500);
        let Some(text) = text else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].text"),
                "expected a non-empty string of at most 500 characters",
            ));
        };
        let c = h.get("confidence").and_then(Value::as_f64).filter(|c| (0.0..=1.0).contains(c));
        let Some(c) = c else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].confidence"),
                "expected a number in [0, 1]",
            ));
        };
        out.push(Hypothesis { id: id.into(), text: text.into(), confidence: c });
    }
    Ok(out)
}

/// The feedback score in `[0, 1]` of an outcome (validated before storing).
pub(crate) fn feedback_score(
    label: Option<&str>,
    value: Option<f64>,
    success: Option<bool>,
    quality: Option<f64>,
) -> Result<f64, ValidationError> {
    match label {
        Some("thumbs_up") | Some("thumbs_down") => {
            let up = label == Some("thumbs_up");
            if success.is_some_and(|s| s != up) {
                return Err(ValidationError::new(
                    "success",
                    format!("contradicts label {:?}", label.unwrap_or_default()),
                ));
            }
            Ok(if up { 1.0 } else { 0.0 })
        }
        Some("rating") => match value {
            Some(v) if (1.0..=5.0).contains(&v) && v.fract() == 0.0 => Ok((v - 1.0) / 4.0),
            _ => Err(ValidationError::new("value", "a rating needs value = 1, 2, 3, 4 or 5 stars")),
        },
        Some(other) => Err(ValidationError::new(
            "label",
            format!("{other:?} is not feedback; expected thumbs_up, thumbs_down or rating"),
        )),
        None => match (success, quality) {
            (_, Some(q)) if (0.0..=1.0).contains(&q) => Ok(q),
            (_, Some(_)) => Err(ValidationError::new("quality", "must lie in [0, 1]")),
            (Some(s), None) => Ok(if s { 1.0 } else { 0.0 }),
            (None, None) => Err(ValidationError::new(
                "label",
                "feedback needs label thumbs_up / thumbs_down / rating (with value 1–5), success or quality",
            )),
        },
    }
}

/// Accepts or refuses a record before it is stored.
pub(crate) fn validate(record: &Record) -> Result<(), ValidationError> {
    match record {
        Record::Prediction(p) => {
            if p.subject.is_empty() || p.subject.len() > 128 {
                return Err(ValidationError::new("subject", "the user id: 1 to 128 bytes"));
            }
            if let Some(c) = p.confidence
                && !(0.0..=1.0).contains(&c)
            {
                return Err(ValidationError::new("confidence", "must lie in [0, 1]"));
            }
            if p.kind == INTERACTION {
                payload_str(&p.payload, "input_text", 2000, true)?;
                payload_str(&p.payload, "task_type", 64, false)?;
                let hyps = parse_hypotheses(&p.payload)?;
                let Some(sel) = &p.label else {
                    return Err(ValidationError::new(
                        "label",
                        "the id of the chosen hypothesis (h1, h2, ...) is required",
                    ));
                };
                if !hyps.iter().any(|h| &h.id == sel) {
                    return Err(ValidationError::new("label", format!("{sel:?} is not one of the hypotheses' ids")));
                }
            } else {
                if p.kind.len() > 64 {
                    return Err(ValidationError::new("kind", "the task type: at most 64 bytes"));
                }
                payload_str(&p.payload, "model", 128, false)?;
                if let Some(l) = &p.label
                    && l.len() > 128
                {
                    return Err(ValidationError::new("label", "the model: at most 128 bytes"));
                }
                match p.payload.get("response_length") {
                    None | Some(Value::Null) => {}
                    Some(v) if v.as_f64().is_some_and(|x| x >= 0.0) => {}
                    _ => return Err(ValidationError::new("payload.response_length", "expected a number ≥ 0")),
                }
            }
        }
        Record::Outcome(o) => {
            feedback_score(o.label.as_deref(), o.value, o.success, o.quality)?;
        }
    }
    Ok(())
}
