//! The `[persona]` config section: every key optional, unknown keys are
//! errors naming them.

use std::collections::BTreeMap;

use learnloop_plugin_api::{ConfigKey, PluginError};
use serde::{Deserialize, Serialize};

/// The `[persona]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The persona facets, each a score in `[0, 1]`.
    pub facets: Vec<String>,
    /// Every facet's starting value.
    pub initial_facet: f64,
    /// The rule-based step per signal (the seed's +0.02).
    pub facet_delta: f64,
    /// Which facet a selected hypothesis id nudges (the seed: h1 → concise, h2/h3 → step_by_step).
    pub selection_facets: BTreeMap<String, String>,
    /// Largest facet change one LLM analysis may make (larger answers are malformed).
    pub max_llm_delta: f64,
    /// Ask the LLM (when configured) to hypothesize and to enrich the rule
    /// analysis of interactions (the `enrich` job).
    pub use_llm: bool,
    /// Interactions in batches of more than this are analysed by rules only
    /// and not queued for LLM enrichment (a bulk import or a replay does not
    /// fill the queue).
    pub llm_max_batch: usize,
    /// Most interactions waiting for LLM enrichment in a workspace; an
    /// interaction arriving while the queue is full keeps its rule analysis
    /// and is counted as dropped.
    pub llm_queue_cap: usize,
    /// Most queued interactions the `enrich` job asks the LLM about in one
    /// run (per workspace); the rest wait for the next run.
    pub enrich_per_run: usize,
    /// Keep training data (hypothesis selections, persona updates).
    pub training_data: bool,
    /// Default minimum confidence of `GET /training/dataset`.
    pub min_training_confidence: f64,
    /// EMA learning rate of the per-task model preference.
    pub learning_rate: f64,
    /// Share of feedback held out from learning to measure preference accuracy.
    pub holdout_fraction: f64,
    /// Hours added to UTC event times for time-of-day patterns.
    pub utc_offset_hours: f64,
    /// Half-life of memory confidence in days (relative to the user's newest
    /// event); 0 = no decay.
    pub memory_half_life_days: f64,
    /// Memories whose (decayed) confidence falls below this are not used for
    /// hypotheses, and the `memory_decay` job expires them.
    pub min_memory_confidence: f64,
    /// History memories used as context for hypotheses.
    pub context_history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            facets: ["concise", "step_by_step", "code_first", "formal"].map(String::from).to_vec(),
            initial_facet: 0.5,
            facet_delta: 0.02,
            selection_facets: [("h1", "concise"), ("h2", "step_by_step"), ("h3", "step_by_step")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            max_llm_delta: 0.1,
            use_llm: true,
            llm_max_batch: 16,
            llm_queue_cap: 1000,
            enrich_per_run: 20,
            training_data: true,
            min_training_confidence: 0.7,
            learning_rate: 0.1,
            holdout_fraction: 0.2,
            utc_offset_hours: 0.0,
            memory_half_life_days: 0.0,
            min_memory_confidence: 0.1,
            context_history: 5,
        }
    }
}

impl Config {
    /// Cross-field checks; errors name the key.
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |k: &str, m: String| Err(PluginError::invalid(format!("[persona] {k}"), m));
        if self.facets.is_empty() || self.facets.len() > 32 {
            return bad("facets", "needs 1 to 32 facet names".into());
        }
        for f in &self.facets {
            if f.is_empty()
                || f.len() > 64
                || !f.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return bad("facets", format!("{f:?} is not a facet name (a-z, 0-9, _; at most 64)"));
            }
        }
        for (h, f) in &self.selection_facets {
            if !self.facets.contains(f) {
                return bad(
                    &format!("selection_facets.{h}"),
                    format!("{f:?} is not one of the facets {:?}", self.facets),
                );
            }
        }
        for (k, v) in [
            ("initial_facet", self.initial_facet),
            ("min_training_confidence", self.min_training_confidence),
            ("min_memory_confidence", self.min_memory_confidence),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(k, "must lie in [0, 1]".into());
            }
        }
        for (k, v) in [
            ("facet_delta", self.facet_delta),
            ("max_llm_delta", self.max_llm_delta),
            ("learning_rate", self.learning_rate),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(k, "must lie in (0, 1]".into());
            }
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return bad("holdout_fraction", "must lie in [0, 1)".into());
        }
        if !(-14.0..=14.0).contains(&self.utc_offset_hours) {
            return bad("utc_offset_hours", "must lie in [-14, 14]".into());
        }
        if !(self.memory_half_life_days.is_finite() && self.memory_half_life_days >= 0.0) {
            return bad("memory_half_life_days", "must be a finite number ≥ 0 (0 = no decay)".into());
        }
        if !(1..=100_000).contains(&self.llm_queue_cap) {
            return bad("llm_queue_cap", "must lie in [1, 100000]".into());
        }
        if !(1..=10_000).contains(&self.enrich_per_run) {
            return bad("enrich_per_run", "must lie in [1, 10000]".into());
        }
        if self.context_history > 100 {
            return bad("context_history", "must be at most 100".into());
        }
        Ok(())
    }

    /// The manifest's config keys with their defaults.
    pub fn keys() -> Vec<ConfigKey> {
        let d = serde_json::to_value(Config::default()).expect("serializable");
        let docs: [(&str, &str); 17] = [
            ("facets", "persona facets, each a score in [0, 1]"),
            ("initial_facet", "every facet's starting value"),
            ("facet_delta", "rule-based facet step per signal (the seed's +0.02)"),
            ("selection_facets", "facet nudged by the selected hypothesis id (h1 → concise, h2/h3 → step_by_step)"),
            ("max_llm_delta", "largest facet change one LLM analysis may make; larger answers count as malformed"),
            ("use_llm", "use [llm] (when configured) for hypotheses and to enrich interaction analyses (enrich job)"),
            (
                "llm_max_batch",
                "interactions in batches of more than this are analysed by rules only, not queued for LLM enrichment",
            ),
            (
                "llm_queue_cap",
                "most interactions waiting for LLM enrichment per workspace; more are left to rules and counted as dropped",
            ),
            ("enrich_per_run", "most queued interactions the enrich job asks the LLM about per run"),
            ("training_data", "collect training data (hypothesis selections, persona updates)"),
            ("min_training_confidence", "default minimum confidence of GET /training/dataset"),
            ("learning_rate", "EMA learning rate of the per-task model preference"),
            ("holdout_fraction", "share of feedback held out from learning to measure preference accuracy"),
            ("utc_offset_hours", "hours added to UTC event times for time-of-day patterns"),
            ("memory_half_life_days", "half-life of memory confidence in days; 0 = no decay"),
            (
                "min_memory_confidence",
                "memories below this (decayed) confidence are not used and are expired by memory_decay",
            ),
            ("context_history", "history memories used as context for hypotheses"),
        ];
        docs.iter().map(|(k, doc)| ConfigKey { key: (*k).into(), default: d[*k].clone(), doc: (*doc).into() }).collect()
    }
}
