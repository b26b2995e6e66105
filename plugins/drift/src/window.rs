//! Windows of history, read through the context in pages and kept columnar.
//!
//! A row is a prediction whose event time falls in the window; its actual
//! is the value of its first outcome (outcomes are read from the window's
//! start onwards, so an outcome stamped before its prediction's window is
//! not seen). Memory is O(rows × features) for the windows asked for, never
//! the whole history.

use std::collections::{BTreeMap, HashMap};

use learnloop_plugin_api::{Context, EventQuery, Order, PluginError, Timestamp};
use serde_json::Value;

/// Missing categorical value.
pub const NONE: u32 = u32::MAX;

/// One feature's values, aligned with the window's rows.
#[derive(Debug, Default)]
pub struct Column {
    /// Numeric values (NaN where the row had none or a non-number); empty when never numeric.
    pub nums: Vec<f64>,
    /// Category codes ([`NONE`] where absent); empty when never categorical.
    pub cats: Vec<u32>,
    /// Category names by code.
    pub dict: Vec<String>,
    index: HashMap<String, u32>,
    /// Rows with a number.
    pub n_num: usize,
    /// Rows with a category.
    pub n_cat: usize,
}

impl Column {
    fn set(&mut self, row: usize, v: &Value) {
        match v {
            Value::Number(n) => {
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    if self.nums.len() < row {
                        self.nums.resize(row, f64::NAN);
                    }
                    self.nums.push(x);
                    self.n_num += 1;
                }
            }
            Value::String(_) | Value::Bool(_) => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let next = self.dict.len() as u32;
                let code = *self.index.entry(s.clone()).or_insert_with(|| next);
                if code == next {
                    self.dict.push(s);
                }
                if self.cats.len() < row {
                    self.cats.resize(row, NONE);
                }
                self.cats.push(code);
                self.n_cat += 1;
            }
            _ => {}
        }
    }

    fn finish(&mut self, n: usize) {
        if !self.nums.is_empty() {
            self.nums.resize(n, f64::NAN);
        }
        if !self.cats.is_empty() {
            self.cats.resize(n, NONE);
        }
    }

    /// Whether the feature is numeric (numbers only), categorical (strings/booleans only) or mixed.
    pub fn kind(&self) -> &'static str {
        match (self.n_num > 0, self.n_cat > 0) {
            (true, false) => "numeric",
            (false, true) => "categorical",
            (true, true) => "mixed",
            (false, false) => "empty",
        }
    }

    /// Finite numeric values.
    pub fn values(&self) -> Vec<f64> {
        self.nums.iter().copied().filter(|x| x.is_finite()).collect()
    }

    /// Counts per category name.
    pub fn counts(&self) -> BTreeMap<&str, u64> {
        let mut c = vec![0u64; self.dict.len()];
        for &code in &self.cats {
            if code != NONE {
                c[code as usize] += 1;
            }
        }
        self.dict.iter().map(String::as_str).zip(c).collect()
    }
}

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
    /// Version code per row.
    pub version: Vec<u32>,
    /// Version names by code (`""` when the payload had none).
    pub versions: Vec<String>,
    /// Features by name.
    pub features: BTreeMap<String, Column>,
    pred_label: Vec<Option<String>>,
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
}

/// Reads `ranges` (each `[from, until)` in µs, ascending and not
/// overlapping) of `model`'s predictions and joins their first outcomes.
/// `version` keeps only predictions of that `payload.model_version`.
pub fn load(
    ctx: &mut dyn Context,
    model: &str,
    ranges: &[(i64, i64)],
    version: Option<&str>,
) -> Result<Vec<Window>, PluginError> {
    let mut windows: Vec<Window> =
        ranges.iter().map(|&(from, until)| Window { from, until, ..Default::default() }).collect();
    let (Some(start), Some(end)) = (ranges.iter().map(|r| r.0).min(), ranges.iter().map(|r| r.1).max()) else {
        return Ok(windows);
    };
    let ts = |us: i64| Timestamp::from_micros(us).ok_or_else(|| PluginError::invalid("from", "time out of range"));
    let mut ids: HashMap<String, (u32, u32)> = HashMap::new();
    let mut version_index: Vec<HashMap<String, u32>> = vec![HashMap::new(); windows.len()];
    let mut q = EventQuery {
        subject: Some(model.to_string()),
        from: Some(ts(start)?),
        until: Some(ts(end)?),
        order: Order::EventTime,
        limit: EventQuery::MAX_LIMIT,
        ..Default::default()
    };
    loop {
        let page = ctx.predictions(&q)?;
        for p in &page.items {
            let r = &p.record;
            if r.kind == crate::service::KIND {
                continue;
            }
            let t = r.event_time.map(|t| t.as_micros()).unwrap_or(0);
            let Some(wi) = ranges.iter().position(|&(f, u)| t >= f && t < u) else { continue };
            let ver = crate::online::version_of(&r.payload);
            if version.is_some_and(|v| v != ver) {
                continue;
            }
            let w = &mut windows[wi];
            let row = w.n;
            w.n += 1;
            w.times.push(t);
            w.pred.push(r.value.unwrap_or(f64::NAN));
            w.actual.push(f64::NAN);
            w.label_hit.push(-1);
            w.pred_label.push(if r.value.is_none() { r.label.clone() } else { None });
            let vi = &mut version_index[wi];
            let next = w.versions.len() as u32;
            let code = *vi.entry(ver.clone()).or_insert(next);
            if code == next {
                w.versions.push(ver);
            }
            w.version.push(code);
            for (k, v) in &r.features {
                if let Some(col) = w.features.get_mut(k.as_str()) {
                    col.set(row, v);
                } else {
                    let mut col = Column::default();
                    col.set(row, v);
                    w.features.insert(k.clone(), col);
                }
            }
            ids.insert(r.id.as_str().to_string(), (wi as u32, row as u32));
        }
        match page.next {
            Some(c) => {
                // Also raise `from` to the cursor's time: with both a `from`
                // and a cursor, SQLite seeks to `from` and filters every
                // earlier page's rows again (quadratic in the window).
                q.from = Some(ts(c.time.max(start))?);
                q.after = Some(c);
            }
            None => break,
        }
    }
    for w in &mut windows {
        let n = w.n;
        for col in w.features.values_mut() {
            col.finish(n);
        }
    }
    if ids.is_empty() {
        return Ok(windows);
    }
    let mut q = EventQuery {
        subject: Some(model.to_string()),
        from: Some(ts(start)?),
        order: Order::Ingestion,
        limit: EventQuery::MAX_LIMIT,
        ..Default::default()
    };
    loop {
        let page = ctx.outcomes(&q)?;
        for o in &page.items {
            let Some(&(wi, row)) = ids.get(o.record.prediction_id.as_str()) else { continue };
            let w = &mut windows[wi as usize];
            let row = row as usize;
            if w.actual[row].is_finite() || w.label_hit[row] >= 0 {
                continue; // first outcome wins
            }
            if let Some(v) = o.record.value {
                w.actual[row] = v;
            } else if let (Some(pl), Some(al)) = (&w.pred_label[row], &o.record.label) {
                w.label_hit[row] = i8::from(pl == al);
            }
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    Ok(windows)
}
