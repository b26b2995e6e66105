//! Columnar reads of predictions: what a job that scans millions of rows
//! (a drift check, a calibration) needs, without a `Prediction` per row.
//!
//! A store answers an [`EventQuery`](crate::history::EventQuery) plus a
//! [`ColumnSpec`] with one [`PredictionColumns`] page: each field a vector
//! aligned by row, features decoded once into numeric or category-coded
//! columns straight from their stored JSON text (no JSON tree per row), and
//! optionally each prediction's first outcome joined in by the store.
//! [`ColumnBuilder`] is the one place rows become columns, shared by every
//! store backend and by the reference path built from stored records.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::history::{Cursor, StoredPrediction};
use crate::{Outcome, ValidationError};

/// Code of an absent value in a [`TextColumn`] or [`ValueColumn::cats`].
pub const NONE: u32 = u32::MAX;

/// What a columnar read returns besides the rows' fixed fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnSpec {
    /// Top-level payload fields to return as text columns (a string as
    /// itself, a number as its JSON text, anything else absent).
    pub payload: Vec<String>,
    /// Join each prediction's first outcome (lowest store sequence) into
    /// `outcome_value` / `outcome_label`.
    pub first_outcome: bool,
}

impl ColumnSpec {
    /// The most rows one columnar page holds.
    pub const MAX_ROWS: usize = 100_000;
}

/// Strings coded by first appearance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextColumn {
    /// Code per row ([`NONE`] where absent).
    pub codes: Vec<u32>,
    /// Strings by code.
    pub dict: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl TextColumn {
    fn code(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.index.get(s) {
            return c;
        }
        let c = self.dict.len() as u32;
        self.dict.push(s.to_string());
        self.index.insert(s.to_string(), c);
        c
    }

    fn push(&mut self, s: Option<&str>) {
        let c = s.map_or(NONE, |s| self.code(s));
        self.codes.push(c);
    }

    /// The string of row `row`, if any.
    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes.get(row) {
            Some(&c) if c != NONE => Some(&self.dict[c as usize]),
            _ => None,
        }
    }
}

/// One feature's values, aligned with the page's rows. A feature holds
/// numbers, categories (strings; booleans as `"true"`/`"false"`) or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueColumn {
    /// Numbers (NaN where the row had none); empty when no row had one.
    #[serde(with = "nan_as_null")]
    pub nums: Vec<f64>,
    /// Category codes ([`NONE`] where absent); empty when no row had one.
    pub cats: Vec<u32>,
    /// Category names by code.
    pub dict: Vec<String>,
    /// Rows with a number.
    pub n_num: usize,
    /// Rows with a category.
    pub n_cat: usize,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl ValueColumn {
    fn set_num(&mut self, row: usize, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.nums.resize(row, f64::NAN);
        self.nums.push(x);
        self.n_num += 1;
    }

    fn code(&mut self, s: &str) -> u32 {
        match self.index.get(s) {
            Some(&c) => c,
            None => {
                let c = self.dict.len() as u32;
                self.dict.push(s.to_string());
                self.index.insert(s.to_string(), c);
                c
            }
        }
    }

    fn set_cat(&mut self, row: usize, s: &str) {
        let code = self.code(s);
        self.set_code(row, code);
    }

    fn set_code(&mut self, row: usize, code: u32) {
        self.cats.resize(row, NONE);
        self.cats.push(code);
        self.n_cat += 1;
    }

    /// Appends rows `keep` of `page` (another page's column of the same
    /// feature) as rows `base..` of this one, re-coding its categories.
    /// Call [`ValueColumn::finish`] once every row is in.
    pub fn append_rows(&mut self, page: &ValueColumn, keep: &[usize], base: usize) {
        if !page.nums.is_empty() {
            for (j, &i) in keep.iter().enumerate() {
                self.set_num(base + j, page.nums[i]);
            }
        }
        if !page.cats.is_empty() {
            let codes: Vec<u32> = page.dict.iter().map(|s| self.code(s)).collect();
            for (j, &i) in keep.iter().enumerate() {
                let code = page.cats[i];
                if code != NONE {
                    self.set_code(base + j, codes[code as usize]);
                }
            }
        }
    }

    /// Pads the column to `n` rows.
    pub fn finish(&mut self, n: usize) {
        if !self.nums.is_empty() {
            self.nums.resize(n, f64::NAN);
        }
        if !self.cats.is_empty() {
            self.cats.resize(n, NONE);
        }
    }

    /// Whether the feature is numeric (numbers only), categorical
    /// (strings/booleans only), mixed, or empty.
    pub fn kind(&self) -> &'static str {
        match (self.n_num > 0, self.n_cat > 0) {
            (true, false) => "numeric",
            (false, true) => "categorical",
            (true, true) => "mixed",
            (false, false) => "empty",
        }
    }

    /// The numbers, without the rows that had none.
    pub fn values(&self) -> Vec<f64> {
        self.nums.iter().copied().filter(|x| x.is_finite()).collect()
    }

    /// Rows per category name.
    pub fn counts(&self) -> BTreeMap<&str, u64> {
        let mut c = vec![0u64; self.dict.len()];
        for &code in &self.cats {
            if code != NONE {
                c[code as usize] += 1;
            }
        }
        self.dict.iter().map(String::as_str).zip(c).collect()
    }

    /// The category of row `row`, if any.
    pub fn cat(&self, row: usize) -> Option<&str> {
        match self.cats.get(row) {
            Some(&c) if c != NONE => Some(&self.dict[c as usize]),
            _ => None,
        }
    }
}

/// One page of predictions as columns, in the query's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictionColumns {
    /// Rows in this page.
    pub n: usize,
    /// Store sequence per row.
    pub seq: Vec<i64>,
    /// Event time per row (µs).
    pub event_time: Vec<i64>,
    /// Kind per row.
    pub kind: TextColumn,
    /// Predicted number (NaN where none).
    #[serde(with = "nan_as_null")]
    pub value: Vec<f64>,
    /// Predicted label.
    pub label: TextColumn,
    /// Features by name.
    pub features: BTreeMap<String, ValueColumn>,
    /// The payload fields the spec asked for, by name.
    pub payload: BTreeMap<String, TextColumn>,
    /// The first outcome's number (NaN where none, or not asked for).
    #[serde(with = "nan_as_null")]
    pub outcome_value: Vec<f64>,
    /// The first outcome's label.
    pub outcome_label: TextColumn,
    /// Cursor for the next page; `None` when this was the last.
    pub next: Option<Cursor>,
}

/// One stored row as a backend reads it, JSON fields still as text.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRow<'a> {
    /// Store sequence.
    pub seq: i64,
    /// Event time (µs).
    pub event_time: i64,
    /// Kind.
    pub kind: &'a str,
    /// Predicted number.
    pub value: Option<f64>,
    /// Predicted label.
    pub label: Option<&'a str>,
    /// Features as stored (a JSON object), if any.
    pub features: Option<&'a str>,
    /// Payload as stored (JSON), if any.
    pub payload: Option<&'a str>,
    /// First outcome's number.
    pub outcome_value: Option<f64>,
    /// First outcome's label.
    pub outcome_label: Option<&'a str>,
}

/// Turns rows into a [`PredictionColumns`] page.
#[derive(Debug)]
pub struct ColumnBuilder {
    cols: PredictionColumns,
    /// The payload fields asked for, each with its column, and whether the
    /// current row had it.
    payload: Vec<(String, TextColumn)>,
    seen: Vec<bool>,
    /// Feature columns in order of first appearance, and their positions.
    feats: Vec<(String, ValueColumn)>,
    feat_index: HashMap<String, usize>,
    /// The column of the previous row's i-th key: rows usually list the
    /// same keys in the same order, so most lookups are one comparison.
    order: Vec<usize>,
}

impl ColumnBuilder {
    /// An empty page for `spec`.
    pub fn new(spec: &ColumnSpec) -> Self {
        Self {
            cols: PredictionColumns::default(),
            payload: spec.payload.iter().map(|f| (f.clone(), TextColumn::default())).collect(),
            seen: vec![false; spec.payload.len()],
            feats: Vec::new(),
            feat_index: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.cols.n
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.cols.n == 0
    }

    /// Adds a row read from a store. Errors name the row's seq when its
    /// stored JSON does not decode.
    pub fn push_raw(&mut self, r: RawRow<'_>) -> Result<(), ValidationError> {
        let row = self.cols.n;
        if let Some(text) = r.features {
            let mut de = serde_json::Deserializer::from_str(text);
            FeatureSeed { b: self, row, key_index: 0 }
                .deserialize(&mut de)
                .and_then(|()| de.end())
                .map_err(|e| ValidationError::new("features", format!("stored row {}: {e}", r.seq)))?;
        }
        if !self.payload.is_empty() {
            self.seen.fill(false);
            if let Some(text) = r.payload {
                let mut de = serde_json::Deserializer::from_str(text);
                PayloadSeed { fields: &mut self.payload, seen: &mut self.seen }
                    .deserialize(&mut de)
                    .map_err(|e| ValidationError::new("payload", format!("stored row {}: {e}", r.seq)))?;
            }
            for ((_, col), seen) in self.payload.iter_mut().zip(&self.seen) {
                if !seen {
                    col.push(None);
                }
            }
        }
        let c = &mut self.cols;
        c.seq.push(r.seq);
        c.event_time.push(r.event_time);
        c.kind.push(Some(r.kind));
        c.value.push(r.value.unwrap_or(f64::NAN));
        c.label.push(r.label);
        c.outcome_value.push(r.outcome_value.unwrap_or(f64::NAN));
        c.outcome_label.push(r.outcome_label);
        c.n += 1;
        Ok(())
    }

    /// Adds a stored prediction and its first outcome: the reference path,
    /// which every backend's columnar read must agree with.
    pub fn push_stored(
        &mut self,
        p: &StoredPrediction,
        first_outcome: Option<&Outcome>,
    ) -> Result<(), ValidationError> {
        let features = serde_json::to_string(&p.record.features).expect("a JSON map serializes");
        let payload = (!p.record.payload.is_null()).then(|| p.record.payload.to_string());
        self.push_raw(RawRow {
            seq: p.seq,
            event_time: p.record.event_time.map_or(0, |t| t.as_micros()),
            kind: &p.record.kind,
            value: p.record.value,
            label: p.record.label.as_deref(),
            features: Some(&features),
            payload: payload.as_deref(),
            outcome_value: first_outcome.and_then(|o| o.value),
            outcome_label: first_outcome.and_then(|o| o.label.as_deref()),
        })
    }

    /// The page, with `next` as its continuation.
    pub fn finish(mut self, next: Option<Cursor>) -> PredictionColumns {
        let n = self.cols.n;
        for (name, mut col) in self.feats {
            col.finish(n);
            self.cols.features.insert(name, col);
        }
        self.cols.payload.extend(self.payload);
        self.cols.next = next;
        self.cols
    }

    fn column(&mut self, key_index: usize, key: &str) -> &mut ValueColumn {
        let hit = self.order.get(key_index).copied().filter(|&i| self.feats[i].0 == key);
        let i = match hit {
            Some(i) => i,
            None => {
                let i = match self.feat_index.get(key) {
                    Some(&i) => i,
                    None => {
                        self.feats.push((key.to_string(), ValueColumn::default()));
                        self.feat_index.insert(key.to_string(), self.feats.len() - 1);
                        self.feats.len() - 1
                    }
                };
                if key_index < self.order.len() {
                    self.order[key_index] = i;
                } else {
                    self.order.push(i);
                }
                i
            }
        };
        &mut self.feats[i].1
    }
}

/// Decodes a features object straight into the builder's columns.
struct FeatureSeed<'b> {
    b: &'b mut ColumnBuilder,
    row: usize,
    key_index: usize,
}

impl<'de> DeserializeSeed<'de> for FeatureSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FeatureSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of features")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // `null`: no features
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = key.as_str();
            let row = self.row;
            let col = self.b.column(self.key_index, key);
            self.key_index += 1;
            map.next_value_seed(ScalarSeed { col, row })?;
        }
        Ok(())
    }
}

/// A map key, borrowed when it has no escapes.
enum KeyStr<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl KeyStr<'_> {
    fn as_str(&self) -> &str {
        match self {
            KeyStr::Borrowed(s) => s,
            KeyStr::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr::Borrowed(s))
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr::Owned(s.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// One feature value into its column: numbers and categories kept, null
/// skipped (stored features are validated scalars; anything else is an
/// error naming the row).
struct ScalarSeed<'c> {
    col: &'c mut ValueColumn,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a feature value")
    }
    fn visit_f64<E>(self, x: f64) -> Result<(), E> {
        self.col.set_num(self.row, x);
        Ok(())
    }
    fn visit_i64<E>(self, x: i64) -> Result<(), E> {
        self.col.set_num(self.row, x as f64);
        Ok(())
    }
    fn visit_u64<E>(self, x: u64) -> Result<(), E> {
        self.col.set_num(self.row, x as f64);
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.col.set_cat(self.row, s);
        Ok(())
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.col.set_cat(self.row, if b { "true" } else { "false" });
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Picks the asked-for top-level fields out of a payload straight into
/// their columns, as text; marks in `seen` which the row had.
struct PayloadSeed<'f> {
    fields: &'f mut [(String, TextColumn)],
    seen: &'f mut [bool],
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON payload")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            match self.fields.iter().position(|(f, _)| f.as_str() == key.as_str()) {
                Some(i) if !self.seen[i] => {
                    self.seen[i] = map.next_value_seed(TextSeed { col: &mut self.fields[i].1 })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    // A stored payload is an object or null (records are validated so).
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// One payload field into its text column: a string as itself, a number as
/// serde_json prints it; anything else is not pushed (`false`).
struct TextSeed<'c> {
    col: &'c mut TextColumn,
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload field")
    }
    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        self.col.push(Some(s));
        Ok(true)
    }
    fn visit_u64<E: serde::de::Error>(self, x: u64) -> Result<bool, E> {
        self.visit_str(&x.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, x: i64) -> Result<bool, E> {
        self.visit_str(&x.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<bool, E> {
        match serde_json::Number::from_f64(x) {
            Some(n) => self.visit_str(&n.to_string()),
            None => Ok(false),
        }
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// `Vec<f64>` with NaN (absent) as JSON `null`, so pages cross the JSON
/// plugin protocol unchanged.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Deserialize::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(seq: i64, features: &'a str, payload: Option<&'a str>) -> RawRow<'a> {
        RawRow {
            seq,
            event_time: seq * 10,
            kind: "regression",
            value: Some(seq as f64),
            features: Some(features),
            payload,
            ..Default::default()
        }
    }

    #[test]
    fn features_become_aligned_columns() {
        let spec = ColumnSpec { payload: vec!["model_version".into()], first_outcome: false };
        let mut b = ColumnBuilder::new(&spec);
        b.push_raw(raw(1, r#"{"x":1.5,"c":"eu","flag":true}"#, Some(r#"{"model_version":"v2","other":[1,{"a":2}]}"#)))
            .unwrap();
        b.push_raw(raw(2, r#"{"c":"us","x":-2}"#, Some(r#"{"model_version":3}"#))).unwrap();
        b.push_raw(raw(3, r#"{"y":7,"c":"eu","x\u0041":1}"#, None)).unwrap();
        let c = b.finish(None);
        assert_eq!(c.n, 3);
        let x = &c.features["x"];
        assert_eq!(x.nums[..2], [1.5, -2.0]);
        assert!(x.nums[2].is_nan());
        assert!(x.cats.is_empty());
        let cat = &c.features["c"];
        assert_eq!((cat.cat(0), cat.cat(1), cat.cat(2)), (Some("eu"), Some("us"), Some("eu")));
        assert_eq!(cat.dict, ["eu", "us"]);
        assert_eq!(c.features["flag"].cats, [0, NONE, NONE]);
        assert_eq!(c.features["flag"].dict, ["true"]);
        assert_eq!(c.features["y"].nums[2], 7.0);
        assert_eq!(c.features["xA"].n_num, 1, "escaped keys decode");
        let v = &c.payload["model_version"];
        assert_eq!((v.get(0), v.get(1), v.get(2)), (Some("v2"), Some("3"), None));
        assert_eq!(c.seq, [1, 2, 3]);
        assert_eq!(c.event_time, [10, 20, 30]);
    }

    #[test]
    fn undecodable_stored_json_names_the_row() {
        let mut b = ColumnBuilder::new(&ColumnSpec::default());
        let e = b.push_raw(raw(42, r#"{"x":1"#, None)).unwrap_err();
        assert_eq!(e.field, "features");
        assert!(e.message.contains("stored row 42"), "{e}");
    }

    #[test]
    fn pages_cross_json_with_absent_numbers() {
        let mut b = ColumnBuilder::new(&ColumnSpec::default());
        b.push_raw(raw(1, r#"{"x":1}"#, None)).unwrap();
        b.push_raw(raw(2, r#"{"z":"a"}"#, None)).unwrap();
        let c = b.finish(Some(Cursor { time: 20, seq: 2 }));
        let back: PredictionColumns = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back.features["x"].nums[0], 1.0);
        assert!(back.features["x"].nums[1].is_nan());
        assert!(back.outcome_value.iter().all(|v| v.is_nan()));
        assert_eq!(back.next, c.next);
        assert_eq!(back.features["z"].cat(1), Some("a"));
    }
}
