//! Windows of history, read through the context in pages and kept columnar.
//!
//! A row is a prediction whose event time falls in the window; its actual
//! is the value of its first outcome (the first the store accepted for
//! it). Memory is O(rows × features) for the windows asked for, never the
//! whole history.

use std::collections::{BTreeMap, HashMap};

use learnloop_plugin_api::{
    ColumnSpec, Context, EventQuery, Order, PluginError, PredictionColumns, Timestamp, ValueColumn,
};

/// Missing categorical value.
pub const NONE: u32 = learnloop_plugin_api::core::columns::NONE;

/// One feature's values, aligned with the window's rows.
pub type Column = ValueColumn;

/// Rows of one window.
#[derive(Debug, Default)]
pub struct Window {
    /// Start (inclusive), µs.
    pub from: i64,
    /// End (exclusive), µs.
    pub until: i64,
    /// Rows.
    pub n: usize,
    /// Prediction event time per row (µs), ascending.
    pub times: Vec<i64>,
    /// Predicted value (NaN for label predictions).
    pub pred: Vec<f64>,
    /// Actual value of the first outcome (NaN when none yet, or a label).
    pub actual: Vec<f64>,
    /// Label outcome matched the predicted label: 1 yes, 0 no, -1 no label outcome.
    pub label_hit: Vec<i8>,
    /// Predicted label code per row ([`NONE`] for numeric predictions).
    pub pred_label: Vec<u32>,
    /// Predicted labels by code.
    pub labels: Vec<String>,
    /// Version code per row.
    pub version: Vec<u32>,
    /// Version names by code (`""` when the payload had none).
    pub versions: Vec<String>,
    /// Features by name.
    pub features: BTreeMap<String, Column>,
}

impl Window {
    /// Rows with a numeric prediction and a numeric actual.
    pub fn matched(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n).filter(|&i| self.pred[i].is_finite() && self.actual[i].is_finite())
    }

    /// Signed errors (actual − predicted) of matched rows, in row order.
    pub fn errors(&self) -> Vec<f64> {
        self.matched().map(|i| self.actual[i] - self.pred[i]).collect()
    }

    /// Numeric predicted values.
    pub fn predicted(&self) -> Vec<f64> {
        self.pred.iter().copied().filter(|x| x.is_finite()).collect()
    }

    /// Rows with a predicted label and a label outcome: 1.0 when it was
    /// missed, 0.0 when it was right (the classifier's per-row error), in row order.
    pub fn label_misses(&self) -> Vec<f64> {
        self.label_hit.iter().filter(|h| **h >= 0).map(|h| f64::from(1 - *h)).collect()
    }

    /// Count of each predicted label.
    pub fn predicted_label_counts(&self) -> BTreeMap<&str, u64> {
        let mut c = vec![0u64; self.labels.len()];
        for &code in &self.pred_label {
            if code != NONE {
                c[code as usize] += 1;
            }
        }
        self.labels.iter().map(String::as_str).zip(c).collect()
    }

    /// Whether this window's model is a classifier: more rows predict a
    /// label than a number.
    pub fn is_classifier(&self) -> bool {
        let labels = self.pred_label.iter().filter(|c| **c != NONE).count();
        labels > self.n - labels
    }
}

/// Reads `ranges` (each `[from, until)` in µs, ascending and not
/// overlapping) of `model`'s predictions, with each one's first outcome
/// (the first the store accepted for it), through the columnar read: the
/// store decodes features straight into columns and joins the outcomes.
/// `version` keeps only predictions of that `payload.model_version`.
pub fn load(
    ctx: &mut dyn Context,
    model: &str,
    ranges: &[(i64, i64)],
    version: Option<&str>,
) -> Result<Vec<Window>, PluginError> {
    let ts = |us: i64| Timestamp::from_micros(us).ok_or_else(|| PluginError::invalid("from", "time out of range"));
    let spec = ColumnSpec { payload: vec![VERSION_FIELD.to_string()], first_outcome: true };
    let mut windows = Vec::with_capacity(ranges.len());
    for &(from, until) in ranges {
        let mut w = Window { from, until, ..Default::default() };
        let mut version_index: HashMap<String, u32> = HashMap::new();
        let mut label_index: HashMap<String, u32> = HashMap::new();
        let mut q = EventQuery {
            subject: Some(model.to_string()),
            from: Some(ts(from)?),
            until: Some(ts(until)?),
            order: Order::EventTime,
            limit: ColumnSpec::MAX_ROWS,
            ..Default::default()
        };
        loop {
            let page = ctx.prediction_columns(&q, &spec)?;
            w.append(&page, version, &mut version_index, &mut label_index);
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        let n = w.n;
        for col in w.features.values_mut() {
            col.finish(n);
        }
        windows.push(w);
    }
    Ok(windows)
}

/// The payload field naming a prediction's model version.
const VERSION_FIELD: &str = "model_version";

impl Window {
    /// Appends a page's rows (service samples and other versions skipped).
    fn append(
        &mut self,
        page: &PredictionColumns,
        version: Option<&str>,
        version_index: &mut HashMap<String, u32>,
        label_index: &mut HashMap<String, u32>,
    ) {
        let versions = page.payload.get(VERSION_FIELD);
        let service = page.kind.dict.iter().position(|k| k == crate::service::KIND).map(|c| c as u32);
        let keep: Vec<usize> = (0..page.n)
            .filter(|&i| Some(page.kind.codes[i]) != service)
            .filter(|&i| version.is_none_or(|v| versions.and_then(|c| c.get(i)).unwrap_or("") == v))
            .collect();
        let base = self.n;
        for &i in &keep {
            self.times.push(page.event_time[i]);
            let pred = page.value[i];
            self.pred.push(pred);
            let pred_label = if pred.is_nan() { page.label.get(i) } else { None };
            self.pred_label.push(match pred_label {
                None => NONE,
                Some(l) => match label_index.get(l) {
                    Some(&c) => c,
                    None => {
                        let c = self.labels.len() as u32;
                        self.labels.push(l.to_string());
                        label_index.insert(l.to_string(), c);
                        c
                    }
                },
            });
            let actual = page.outcome_value[i];
            self.actual.push(actual);
            self.label_hit.push(match (actual.is_nan(), pred_label, page.outcome_label.get(i)) {
                (true, Some(pl), Some(al)) => i8::from(pl == al),
                _ => -1,
            });
            let ver = versions.and_then(|c| c.get(i)).unwrap_or("");
            let code = match version_index.get(ver) {
                Some(&c) => c,
                None => {
                    let c = self.versions.len() as u32;
                    self.versions.push(ver.to_string());
                    version_index.insert(ver.to_string(), c);
                    c
                }
            };
            self.version.push(code);
        }
        for (name, pcol) in &page.features {
            let col = self.features.entry(name.clone()).or_default();
            col.append_rows(pcol, &keep, base);
        }
        self.n += keep.len();
    }
}
