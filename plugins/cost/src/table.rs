//! What learning reads of the recommendations, as compact owned rows: one
//! [`Row`] per recommendation (event time, predicted and actual savings,
//! execution success, a group code and its scoring factors), with every
//! string — recommendation type, region, resource type, scoring factor
//! names and the hierarchy keys of [`crate::model::keys`] — interned once
//! into one small [`Dict`]. The documents they come from are dropped as
//! soon as their row is made, so a learning cycle over a million
//! recommendations holds tens of bytes per recommendation, not the
//! documents.

use std::collections::HashMap;

use crate::model::{keys, success_keys};

/// Strings interned to small codes (`u32`), each stored once.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    names: Vec<Box<str>>,
    codes: HashMap<Box<str>, u32>,
}

impl Dict {
    /// The code of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(c) = self.codes.get(s) {
            return *c;
        }
        let c = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct strings");
        self.names.push(s.into());
        self.codes.insert(s.into(), c);
        c
    }

    /// The string of `code`.
    pub fn name(&self, code: u32) -> &str {
        &self.names[code as usize]
    }

    /// Distinct strings (codes are `0..len`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is interned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One distinct recommendation type × region × resource type × stated
/// risk, with the codes of the keys learning groups it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Recommendation type.
    pub kind: u32,
    /// Region.
    pub region: u32,
    /// Resource type.
    pub resource_type: u32,
    /// Stated risk level.
    pub risk: u32,
    /// The success-model keys of [`crate::model::success_keys`].
    pub success_keys: [u32; 4],
    /// The hierarchy keys `type`, `type|region`, `type|region|resource_type`.
    pub keys: [u32; 3],
    /// The risk key `type|resource_type`.
    pub type_resource: u32,
}

/// One recommendation as learning sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Event time (µs).
    pub t: i64,
    /// Predicted monthly savings.
    pub predicted: f64,
    /// Realised monthly savings, if measured.
    pub actual: Option<f64>,
    /// Index of its [`Group`] in the table.
    pub group: u32,
    /// Execution success, if executed.
    pub success: Option<bool>,
    /// Where its scoring factors lie in the table's factor list.
    factors: std::ops::Range<u32>,
}

impl Row {
    /// log(actual / predicted), when both are positive.
    pub fn log_ratio(&self) -> Option<f64> {
        match self.actual {
            Some(a) if a > 0.0 && self.predicted > 0.0 => Some((a / self.predicted).ln()),
            _ => None,
        }
    }

    /// Whether an outcome (execution or measurement) is known.
    pub fn has_outcome(&self) -> bool {
        self.success.is_some() || self.actual.is_some()
    }
}

/// The fields of one recommendation that learning reads, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// Event time (µs).
    pub t: i64,
    /// Recommendation type.
    pub kind: &'a str,
    /// Region.
    pub region: &'a str,
    /// Resource type.
    pub resource_type: &'a str,
    /// Stated risk level.
    pub risk: &'a str,
    /// Predicted monthly savings.
    pub predicted: f64,
    /// Realised monthly savings, if measured.
    pub actual: Option<f64>,
    /// Execution success, if executed.
    pub success: Option<bool>,
}

/// Compact rows of many recommendations, in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Table {
    dict: Dict,
    groups: Vec<Group>,
    group_codes: HashMap<(u32, u32, u32, u32), u32>,
    rows: Vec<Row>,
    factors: Vec<(u32, f64)>,
}

impl Table {
    /// Adds a recommendation; `factors` must come in name order without
    /// repeats (as a `BTreeMap` yields them).
    pub fn push<'f>(&mut self, f: Fields<'_>, factors: impl IntoIterator<Item = (&'f str, f64)>) {
        let group = self.group_of(f.kind, f.region, f.resource_type, f.risk);
        let start = self.factors.len();
        for (name, x) in factors {
            let code = self.dict.intern(name);
            self.factors.push((code, x));
        }
        let span = |n: usize| u32::try_from(n).expect("fewer than 2^32 scoring factors in one table");
        self.rows.push(Row {
            t: f.t,
            predicted: f.predicted,
            actual: f.actual,
            group,
            success: f.success,
            factors: span(start)..span(self.factors.len()),
        });
    }

    fn group_of(&mut self, kind: &str, region: &str, resource_type: &str, risk: &str) -> u32 {
        let codes =
            (self.dict.intern(kind), self.dict.intern(region), self.dict.intern(resource_type), self.dict.intern(risk));
        if let Some(g) = self.group_codes.get(&codes) {
            return *g;
        }
        let [k1, k2, k3] = keys(kind, region, resource_type);
        let success_keys = success_keys(kind, region, resource_type, risk).map(|k| self.dict.intern(&k));
        let group = Group {
            kind: codes.0,
            region: codes.1,
            resource_type: codes.2,
            risk: codes.3,
            success_keys,
            keys: [self.dict.intern(&k1), self.dict.intern(&k2), self.dict.intern(&k3)],
            type_resource: self.dict.intern(&format!("{kind}|{resource_type}")),
        };
        let g = u32::try_from(self.groups.len()).expect("fewer than 2^32 groups");
        self.groups.push(group);
        self.group_codes.insert(codes, g);
        g
    }

    /// The interned strings.
    pub fn dict(&self) -> &Dict {
        &self.dict
    }

    /// Every distinct type × region × resource type.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of a row.
    pub fn group(&self, row: &Row) -> &Group {
        &self.groups[row.group as usize]
    }

    /// The rows, in the order they were added.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// A row's scoring factors: (name code, value) in name order.
    pub fn factors(&self, row: &Row) -> &[(u32, f64)] {
        &self.factors[row.factors.start as usize..row.factors.end as usize]
    }
}
