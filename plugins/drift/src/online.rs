//! The online update: per-model counters, the online error of every outcome
//! and ADWIN on the absolute error.
//!
//! State documents:
//! * `model/<model>` — [`ModelState`]: counts, all-time error totals (all
//!   versions and per `payload.model_version`), the newest prediction event
//!   time (the "now" of the model's windows) and the ADWIN detector.
//! * `pending/<model>/<prediction id>` — [`Pending`]: a prediction's value
//!   (or label) and version, kept until its first outcome arrives, then
//!   deleted. At most `max_pending` per model; beyond that new predictions
//!   are not kept (`pending_dropped`) and their outcomes count as unmatched.
//!   A prediction's second and later outcomes are unmatched too.
//!
//! Error convention everywhere: `error = actual − predicted`;
//! `error % = 100 · |error| / |actual|` (undefined, and skipped, when the
//! actual is 0).

use std::collections::{BTreeMap, HashMap};

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::{AlertDraft, Context, Event, Expect, PluginError, Record, Severity, ValidationError};
use learnloop_stats::{Adwin, AdwinConfig, ChangeDirection, MAX_STREAM_MAGNITUDE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;

/// Running error totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Matched numeric outcomes.
    pub n: u64,
    /// Σ|error|.
    pub sum_abs: f64,
    /// Σ error².
    pub sum_sq: f64,
    /// Σ actual.
    pub sum_y: f64,
    /// Σ actual².
    pub sum_y2: f64,
    /// Σ error % over non-zero actuals.
    pub sum_pct: f64,
    /// Outcomes in `sum_pct`.
    pub n_pct: u64,
    /// Zero actuals (skipped by MAPE).
    pub zero_actuals: u64,
    /// Matched label outcomes.
    pub labels: u64,
    /// Label outcomes equal to the predicted label.
    pub labels_correct: u64,
}

impl Totals {
    fn add(&mut self, predicted: f64, actual: f64) {
        let e = actual - predicted;
        self.n += 1;
        self.sum_abs += e.abs();
        self.sum_sq += e * e;
        self.sum_y += actual;
        self.sum_y2 += actual * actual;
        if actual == 0.0 {
            self.zero_actuals += 1;
        } else {
            self.sum_pct += 100.0 * e.abs() / actual.abs();
            self.n_pct += 1;
        }
    }

    /// MAE, RMSE, R², MAPE, accuracy from the totals (null where undefined).
    pub fn metrics(&self) -> OnlineMetrics {
        let n = self.n as f64;
        let (mae, rmse, r2) = if self.n > 0 {
            let sst = self.sum_y2 - self.sum_y * self.sum_y / n;
            let r2 = (self.n >= 2 && sst > 1e-12 * self.sum_y2.max(1.0)).then(|| 1.0 - self.sum_sq / sst);
            (Some(self.sum_abs / n), Some((self.sum_sq / n).sqrt()), r2)
        } else {
            (None, None, None)
        };
        let mape = (self.n_pct > 0).then(|| self.sum_pct / self.n_pct as f64);
        let accuracy = (self.labels > 0).then(|| self.labels_correct as f64 / self.labels as f64);
        OnlineMetrics {
            n: self.n,
            mae,
            rmse,
            r2,
            mape,
            mape_skipped_zero_actuals: self.zero_actuals,
            labels: self.labels,
            accuracy,
        }
    }
}

/// All-time error metrics of a model (or of one of its versions), from
/// its [`Totals`]; `null` where undefined (no outcome yet, R² of a
/// constant actual).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OnlineMetrics {
    /// Matched numeric outcomes.
    pub n: u64,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Root mean squared error.
    pub rmse: Option<f64>,
    /// Coefficient of determination.
    pub r2: Option<f64>,
    /// Mean absolute percentage error over non-zero actuals.
    pub mape: Option<f64>,
    /// Outcomes whose actual was 0 (left out of the MAPE).
    pub mape_skipped_zero_actuals: u64,
    /// Matched label outcomes.
    pub labels: u64,
    /// Share of label outcomes equal to the predicted label.
    pub accuracy: Option<f64>,
}

/// The ADWIN detector's state in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdwinSummary {
    /// Detections of an increasing error.
    pub error_increases: u64,
    /// Detections of a decreasing error.
    pub error_decreases: u64,
    /// Width of the detector's window.
    pub window: u64,
    /// Mean absolute error in the window (null when empty).
    pub mean_abs_error: Option<f64>,
}

/// The data of an `online_error_increase` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorIncrease {
    /// The model.
    pub model: String,
    /// ADWIN detections of an increasing error so far.
    pub detections: u64,
    /// Matched numeric outcomes before this one.
    pub outcomes_matched: u64,
    /// Width of the detector's window.
    pub window_width: u64,
    /// Mean absolute error in the window.
    pub window_mean_abs_error: Option<f64>,
}

/// Everything kept online about one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    /// The model type (the predictions' `kind`, the first seen).
    pub kind: String,
    /// Predictions seen.
    pub predictions: u64,
    /// Outcomes seen.
    pub outcomes: u64,
    /// Outcomes without a pending prediction (second outcome, or dropped).
    pub unmatched: u64,
    /// Predictions waiting for an outcome.
    pub pending: u64,
    /// Predictions not kept because `max_pending` was reached.
    pub pending_dropped: u64,
    /// Newest prediction event time (µs): the end of the model's current window.
    pub newest_us: i64,
    /// Oldest prediction event time (µs).
    pub oldest_us: i64,
    /// All-time totals.
    pub totals: Totals,
    /// All-time totals per `payload.model_version` (`""` when absent).
    pub versions: BTreeMap<String, Totals>,
    /// ADWIN on the absolute error.
    pub adwin: Adwin,
    /// ADWIN detections of an increasing error.
    pub error_increases: u64,
    /// ADWIN detections of a decreasing error.
    pub error_decreases: u64,
}

impl ModelState {
    fn new(kind: &str, config: &Config) -> Result<Self, PluginError> {
        let adwin = Adwin::new(AdwinConfig { delta: config.adwin_delta, ..Default::default() })
            .map_err(|e| PluginError::internal(e.to_string()))?;
        Ok(Self {
            kind: kind.to_string(),
            predictions: 0,
            outcomes: 0,
            unmatched: 0,
            pending: 0,
            pending_dropped: 0,
            newest_us: i64::MIN,
            oldest_us: i64::MAX,
            totals: Totals::default(),
            versions: BTreeMap::new(),
            adwin,
            error_increases: 0,
            error_decreases: 0,
        })
    }
}

/// A prediction waiting for its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Predicted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<f64>,
    /// Predicted label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<String>,
    /// Model version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ver: String,
}

/// Checks a record before it is stored; errors name the field. A model's
/// prediction needs a value or a label, a `payload.model_version` that is a
/// string or a number and scalar features; a service sample is checked by
/// [`crate::service::validate`]; an outcome needs a value or a label.
pub fn validate(record: &Record) -> Result<(), ValidationError> {
    match record {
        Record::Prediction(p) if p.kind == crate::service::KIND => crate::service::validate(p),
        Record::Prediction(p) if p.value.is_none() && p.label.is_none() => {
            Err(ValidationError::new("value", "is required: the model's predicted value (or `label` for a classifier)"))
        }
        Record::Prediction(p) => {
            match p.payload.get("model_version") {
                None | Some(Value::String(_)) | Some(Value::Number(_)) => {}
                Some(_) => {
                    return Err(ValidationError::new("payload.model_version", "must be a string or a number"));
                }
            }
            for (k, v) in &p.features {
                if matches!(v, Value::Array(_) | Value::Object(_)) {
                    return Err(ValidationError::new(format!("features.{k}"), "must be a number, string or boolean"));
                }
            }
            Ok(())
        }
        Record::Outcome(o) if o.value.is_none() && o.label.is_none() => {
            Err(ValidationError::new("value", "is required: the actual value (or `label` for a classifier)"))
        }
        _ => Ok(()),
    }
}

/// The model version of a prediction payload (`model_version`, string or number).
pub fn version_of(payload: &Value) -> String {
    match payload.get("model_version") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// State key of a model document.
pub fn model_key(model: &str) -> String {
    format!("model/{model}")
}

fn pending_key(model: &str, id: &str) -> String {
    format!("pending/{model}/{id}")
}

/// Reads a model's state (None when the model has no predictions).
pub fn load_model(ctx: &mut dyn Context, model: &str) -> Result<Option<ModelState>, PluginError> {
    match ctx.get_state(&model_key(model))? {
        Some(s) => Ok(Some(serde_json::from_value(s.value)?)),
        None => Ok(None),
    }
}

/// Absorbs a batch.
pub fn absorb(config: &Config, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
    // Models in first-seen order of the batch are irrelevant: each model's
    // events are processed in store order, and models are independent.
    let mut by_model: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    let mut by_service: BTreeMap<&str, Vec<&learnloop_plugin_api::Prediction>> = BTreeMap::new();
    for e in events {
        let subject = match e {
            // Service samples are not model predictions (see `service`); outcomes of them are ignored.
            Event::Prediction(p) if p.record.kind == crate::service::KIND => {
                by_service.entry(p.record.subject.as_str()).or_default().push(&p.record);
                continue;
            }
            Event::Outcome(o) if o.kind == crate::service::KIND => continue,
            Event::Prediction(p) => p.record.subject.as_str(),
            Event::Outcome(o) => o.subject.as_str(),
        };
        by_model.entry(subject).or_default().push(e);
    }
    for (service, samples) in by_service {
        crate::service::absorb(ctx, service, &samples)?;
    }
    for (model, events) in by_model {
        let key = model_key(model);
        let (mut st, expect) = match ctx.get_state(&key)? {
            Some(s) => (serde_json::from_value::<ModelState>(s.value)?, Expect::Version(s.version)),
            None => {
                let kind = match events[0] {
                    Event::Prediction(p) => p.record.kind.as_str(),
                    Event::Outcome(o) => o.kind.as_str(),
                };
                (ModelState::new(kind, config)?, Expect::Absent)
            }
        };
        // Pending documents of predictions from earlier batches that this
        // batch's outcomes resolve, read at once (one round trip on a
        // networked store instead of one per outcome).
        let in_batch: std::collections::HashSet<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Prediction(p) => Some(p.record.id.as_str()),
                Event::Outcome(_) => None,
            })
            .collect();
        let earlier: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Outcome(o) if !in_batch.contains(o.record.prediction_id.as_str()) => {
                    Some(pending_key(model, o.record.prediction_id.as_str())).filter(|k| k.len() <= 512)
                }
                _ => None,
            })
            .collect();
        let mut prefetched: HashMap<String, learnloop_plugin_api::State> = HashMap::new();
        for (k, s) in earlier.iter().zip(ctx.get_states(&earlier)?) {
            if let Some(s) = s {
                prefetched.insert(k.clone(), s);
            }
        }
        // Pending predictions of this batch not yet written (most outcomes of
        // a batch resolve predictions of the same batch).
        let mut fresh: HashMap<&str, Pending> = HashMap::new();
        let mut fresh_order: Vec<&str> = Vec::new();
        for e in events {
            match e {
                Event::Prediction(p) => {
                    st.predictions += 1;
                    let t = p.record.event_time.map(|t| t.as_micros()).unwrap_or(0);
                    st.newest_us = st.newest_us.max(t);
                    st.oldest_us = st.oldest_us.min(t);
                    if st.pending >= config.max_pending || pending_key(model, p.record.id.as_str()).len() > 512 {
                        st.pending_dropped += 1;
                        continue;
                    }
                    st.pending += 1;
                    let id = p.record.id.as_str();
                    fresh_order.push(id);
                    fresh.insert(
                        id,
                        Pending { v: p.record.value, l: p.record.label.clone(), ver: version_of(&p.record.payload) },
                    );
                }
                Event::Outcome(o) => {
                    st.outcomes += 1;
                    let id = o.record.prediction_id.as_str();
                    let pending = match fresh.remove(id) {
                        Some(p) => Some(p),
                        None => {
                            let k = pending_key(model, id);
                            if k.len() > 512 {
                                None
                            } else {
                                let doc = match prefetched.remove(&k) {
                                    Some(s) => Some(s),
                                    None if in_batch.contains(id) => ctx.get_state(&k)?,
                                    None => None,
                                };
                                match doc {
                                    Some(s) => {
                                        ctx.delete_state(&k, Expect::Version(s.version))?;
                                        Some(serde_json::from_value::<Pending>(s.value)?)
                                    }
                                    None => None,
                                }
                            }
                        }
                    };
                    let Some(p) = pending else {
                        st.unmatched += 1;
                        continue;
                    };
                    st.pending -= 1;
                    match (p.v, o.record.value, &p.l, &o.record.label) {
                        (Some(pred), Some(actual), _, _) => {
                            st.totals.add(pred, actual);
                            st.versions.entry(p.ver.clone()).or_default().add(pred, actual);
                            let abs = (actual - pred).abs();
                            if abs <= MAX_STREAM_MAGNITUDE {
                                let before = st.totals.n;
                                match st.adwin.update(abs).map_err(|e| PluginError::internal(e.to_string()))? {
                                    Some(ChangeDirection::Increase) => {
                                        st.error_increases += 1;
                                        ctx.emit_alert(AlertDraft {
                                            severity: Severity::High,
                                            kind: "online_error_increase".into(),
                                            subject: model.to_string(),
                                            message: format!(
                                                "ADWIN detected an increase of model {model}'s absolute error after {before} matched outcomes; check the drift and retrain routes."
                                            ),
                                            dedup_key: format!("online_error_increase/{model}"),
                                            data: serde_json::to_value(ErrorIncrease {
                                                model: model.to_string(),
                                                detections: st.error_increases,
                                                outcomes_matched: before,
                                                window_width: st.adwin.width(),
                                                window_mean_abs_error: st.adwin.mean(),
                                            })?,
                                        })?;
                                    }
                                    Some(ChangeDirection::Decrease) => st.error_decreases += 1,
                                    None => {}
                                }
                            }
                        }
                        (_, _, Some(pl), Some(al)) => {
                            for t in [&mut st.totals, st.versions.entry(p.ver.clone()).or_default()] {
                                t.labels += 1;
                                t.labels_correct += u64::from(pl == al);
                            }
                        }
                        _ => st.unmatched += 1,
                    }
                }
            }
        }
        for id in fresh_order {
            if let Some(p) = fresh.remove(id) {
                ctx.put_state(&pending_key(model, id), serde_json::to_value(&p)?, Expect::Any)?;
            }
        }
        ctx.put_state(&key, serde_json::to_value(&st)?, expect)?;
    }
    Ok(())
}
