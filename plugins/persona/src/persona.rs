//! A user's persona as the plugin stores it: facets, goal and preference
//! memories (with validity intervals: a contradicting preference supersedes
//! the older one, which is kept), the last interactions, and the feedback
//! learner (per-task model preference by EMA, time-of-day usage, task
//! transitions for next-activity prediction, held-out accuracy).

use std::collections::{BTreeMap, VecDeque};

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::Timestamp;
use serde::{Deserialize, Serialize};

use crate::answers::MemoryAnswer;
use crate::config::Config;

/// Microseconds per hour and day.
pub const HOUR: i64 = 3_600_000_000;
/// Microseconds per day.
pub const DAY: i64 = 24 * HOUR;

/// What a memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MemoryType {
    /// Something the user wants to achieve.
    Goal,
    /// A technology or way the user prefers (or avoids).
    Preference,
    /// One interaction.
    History,
}

impl MemoryType {
    /// Parses `GOAL`, `PREFERENCE`, `HISTORY` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GOAL" => Some(Self::Goal),
            "PREFERENCE" => Some(Self::Preference),
            "HISTORY" => Some(Self::History),
            _ => None,
        }
    }
}

/// One memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// `<interaction id>:<g|p|h><n>`.
    pub id: String,
    /// GOAL, PREFERENCE or HISTORY.
    #[serde(rename = "type")]
    pub mtype: MemoryType,
    /// The text ("build a REST API", "Prefers: Docker").
    pub content: String,
    /// How sure, in `[0, 1]` (before decay).
    pub confidence: f64,
    /// Search tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Preferences: the item (Docker) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// … its contradiction category (containers) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// … and whether it is an avoidance.
    #[serde(default)]
    pub avoid: bool,
    /// Valid from (µs, the interaction's time).
    pub valid_from: i64,
    /// Valid until (µs) once superseded or expired.
    #[serde(default)]
    pub valid_to: Option<i64>,
    /// The memory that superseded it.
    #[serde(default)]
    pub superseded_by: Option<String>,
    /// `rules` or `llm`.
    pub source: String,
    /// The interaction it came from.
    pub interaction_id: String,
}

impl Memory {
    /// A new active memory; tags are the content's words (3+ letters).
    pub fn new(
        id: String,
        mtype: MemoryType,
        content: String,
        confidence: f64,
        t: i64,
        source: &str,
        interaction: &str,
    ) -> Self {
        let mut tags: Vec<String> = crate::rules::tokens(&content).into_iter().filter(|w| w.len() >= 3).collect();
        tags.dedup();
        Memory {
            id,
            mtype,
            content,
            confidence,
            tags,
            item: None,
            category: None,
            avoid: false,
            valid_from: t,
            valid_to: None,
            superseded_by: None,
            source: source.into(),
            interaction_id: interaction.into(),
        }
    }

    /// Confidence after decay at time `now` (µs).
    pub fn decayed(&self, now: i64, half_life_days: f64) -> f64 {
        if half_life_days <= 0.0 {
            return self.confidence;
        }
        let age = (now - self.valid_from).max(0) as f64 / DAY as f64;
        self.confidence * 0.5f64.powf(age / half_life_days)
    }

    /// The memory as routes show it: times as RFC 3339, the decayed
    /// confidence at `now` beside the stored one.
    pub fn answer(&self, now: i64, cfg: &Config) -> MemoryAnswer {
        MemoryAnswer {
            id: self.id.clone(),
            mtype: self.mtype,
            content: self.content.clone(),
            confidence: self.confidence,
            tags: self.tags.clone(),
            item: self.item.clone(),
            category: self.category.clone(),
            avoid: self.avoid,
            valid_from: known_time(self.valid_from),
            valid_to: self.valid_to.and_then(known_time),
            superseded_by: self.superseded_by.clone(),
            source: self.source.clone(),
            interaction_id: self.interaction_id.clone(),
            current_confidence: round4(self.decayed(now, cfg.memory_half_life_days)),
            active: self.valid_to.is_none(),
            match_score: None,
        }
    }
}

/// A time in µs as answers show it (RFC 3339), or `None` (`null`) for 0:
/// the plugin's "no time known" (a user whose events came without client
/// times), and for a time out of range.
pub fn known_time(us: i64) -> Option<Timestamp> {
    if us == 0 { None } else { Timestamp::from_micros(us) }
}

/// Rounds to 4 decimals (for reports).
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// One recent interaction kept as context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    /// Interaction id.
    pub id: String,
    /// "User requested: build api | Selected: h1".
    pub content: String,
}

/// The feedback learner of one user (seed 003's preference tracker).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// task type → model → EMA of the feedback score (starts at 0.5).
    pub ema: BTreeMap<String, BTreeMap<String, f64>>,
    /// task type → model → feedback count used for learning.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Feedback used for learning / held out.
    pub learned: u64,
    /// Held-out feedback scored.
    pub held_out: u64,
    /// Held-out feedback predicted correctly.
    pub held_out_correct: u64,
    /// Held-out feedback with no preference learned yet for its task (not scored).
    pub held_out_unscored: u64,
    /// Scored held-out feedback tallied per task type → model → [negative,
    /// positive]: what the best achievable predictor on the same events
    /// would have answered (see [`UserDoc::accuracy_ceiling`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held_out_tally: BTreeMap<String, BTreeMap<String, [u64; 2]>>,
    /// Sum of scores (for the average satisfaction).
    pub score_sum: f64,
    /// Ratings given (1–5).
    pub ratings: u64,
    /// Thumbs up / down.
    pub thumbs_up: u64,
    /// Thumbs down.
    pub thumbs_down: u64,
    /// Sum of response lengths of rated responses, and how many had one.
    pub length_sum: f64,
    /// Responses with a length.
    pub length_n: u64,
}

/// A user's persona document, `user/<id>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserDoc {
    /// Facet scores.
    pub facets: BTreeMap<String, f64>,
    /// Interactions executed.
    pub interaction_count: u64,
    /// Goal and preference memories, active and superseded, oldest first.
    pub memories: Vec<Memory>,
    /// The last interactions (most recent last), at most `context_history`.
    pub recent: VecDeque<Recent>,
    /// The feedback learner.
    pub feedback: Feedback,
    /// time-of-day bucket → task type → count.
    pub time_of_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// previous task type → next task type → count.
    pub transitions: BTreeMap<String, BTreeMap<String, u64>>,
    /// The last task type seen.
    pub last_task: Option<String>,
    /// Newest event time (µs): the user's clock.
    pub newest: i64,
    /// First event time (µs).
    pub first: i64,
    /// Interactions whose rule analysis the LLM refined (the `enrich` job).
    pub analysed_by_llm: u64,
    /// Interactions analysed by rules only (including those still waiting
    /// for LLM enrichment); an enriched one moves to `analysed_by_llm`.
    pub analysed_by_rules: u64,
    /// Interactions queued for LLM enrichment (the `enrich` job).
    #[serde(default)]
    pub llm_pending: u64,
    /// When the `enrich` job last applied an LLM analysis to this user (µs,
    /// wall clock; 0 = never). The one wall-clock time in the plugin's
    /// state: enrichment happens outside replay (see the README).
    #[serde(default)]
    pub last_enriched_at: i64,
}

impl UserDoc {
    /// A new user with every configured facet at `initial_facet`.
    pub fn new(cfg: &Config) -> Self {
        Self { facets: cfg.facets.iter().map(|f| (f.clone(), cfg.initial_facet)).collect(), ..Default::default() }
    }

    /// Adds facets configured after the user was created.
    pub fn ensure_facets(&mut self, cfg: &Config) {
        for f in &cfg.facets {
            self.facets.entry(f.clone()).or_insert(cfg.initial_facet);
        }
    }

    /// Advances the user's clock with a client event time, if any; returns
    /// the time to stamp the event with (its own, else the user's newest).
    pub fn saw(&mut self, t: Option<i64>) -> i64 {
        let Some(t) = t else { return self.newest };
        if self.first == 0 || t < self.first {
            self.first = t;
        }
        self.newest = self.newest.max(t);
        t
    }

    /// Active memories of a type, most recent first, with decay applied and
    /// those below `min_memory_confidence` left out.
    pub fn active(&self, mtype: MemoryType, cfg: &Config) -> Vec<&Memory> {
        let mut v: Vec<&Memory> = self
            .memories
            .iter()
            .filter(|m| m.mtype == mtype && m.valid_to.is_none())
            .filter(|m| m.decayed(self.newest, cfg.memory_half_life_days) >= cfg.min_memory_confidence)
            .collect();
        v.reverse();
        v
    }

    /// Adds a goal; the same goal again only raises its confidence.
    pub fn add_goal(
        &mut self,
        content: &str,
        confidence: f64,
        id: String,
        t: i64,
        source: &str,
        interaction: &str,
    ) -> Option<String> {
        let key = content.trim().to_lowercase();
        if let Some(m) = self
            .memories
            .iter_mut()
            .find(|m| m.mtype == MemoryType::Goal && m.valid_to.is_none() && m.content.to_lowercase() == key)
        {
            m.confidence = m.confidence.max(confidence);
            return None;
        }
        self.memories.push(Memory::new(
            id.clone(),
            MemoryType::Goal,
            content.trim().to_string(),
            confidence,
            t,
            source,
            interaction,
        ));
        Some(id)
    }

    /// Adds a preference. A newer preference that contradicts an active one
    /// — the same item with the opposite polarity, or another preferred item
    /// of the same category — supersedes it: the old memory gets
    /// `valid_to` = `t` and `superseded_by`, and stays. The same preference
    /// again only raises its confidence. Returns the new memory's id and the
    /// ids it superseded.
    #[allow(clippy::too_many_arguments)]
    pub fn add_preference(
        &mut self,
        item: &str,
        category: &str,
        avoid: bool,
        confidence: f64,
        id: String,
        t: i64,
        source: &str,
        interaction: &str,
    ) -> Option<(String, Vec<String>)> {
        let same = |m: &Memory| {
            m.mtype == MemoryType::Preference
                && m.valid_to.is_none()
                && m.item.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(item))
        };
        if let Some(m) = self.memories.iter_mut().find(|m| same(m) && m.avoid == avoid) {
            m.confidence = m.confidence.max(confidence);
            return None;
        }
        let mut superseded = Vec::new();
        for m in self.memories.iter_mut() {
            if m.mtype != MemoryType::Preference || m.valid_to.is_some() {
                continue;
            }
            let same_item = m.item.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(item));
            let rival = !avoid && !m.avoid && !same_item && m.category.as_deref() == Some(category);
            if (same_item && m.avoid != avoid) || rival {
                m.valid_to = Some(t);
                m.superseded_by = Some(id.clone());
                superseded.push(m.id.clone());
            }
        }
        let content = if avoid { format!("Avoids: {item}") } else { format!("Prefers: {item}") };
        let mut m = Memory::new(id.clone(), MemoryType::Preference, content, confidence, t, source, interaction);
        m.tags = vec![category.to_string(), item.to_lowercase()];
        m.tags.dedup();
        m.item = Some(item.to_string());
        m.category = Some(category.to_string());
        m.avoid = avoid;
        self.memories.push(m);
        Some((id, superseded))
    }

    /// Whether an active preference newer than `t` (an interaction's time)
    /// contradicts a preference for `item` stated at `t`: the same item with
    /// the other polarity, or a rival of the same category. A late analysis
    /// of an older interaction must not supersede what the user said since.
    pub fn contradicted_since(&self, item: &str, category: &str, avoid: bool, t: i64) -> bool {
        self.memories.iter().any(|m| {
            if m.mtype != MemoryType::Preference || m.valid_to.is_some() || m.valid_from <= t {
                return false;
            }
            let same_item = m.item.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(item));
            let rival = !avoid && !m.avoid && !same_item && m.category.as_deref() == Some(category);
            (same_item && m.avoid != avoid) || rival
        })
    }

    /// Applies facet deltas (clamped to `[0, 1]`); returns the old facets.
    pub fn apply_deltas(&mut self, deltas: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
        let old = self.facets.clone();
        for (f, d) in deltas {
            if let Some(v) = self.facets.get_mut(f) {
                *v = round4((*v + d).clamp(0.0, 1.0));
            }
        }
        old
    }

    /// Records a task type used at client time `t` (time-of-day, when
    /// known, and transitions).
    pub fn used_task(&mut self, task: &str, t: Option<i64>, cfg: &Config) {
        if let Some(t) = t {
            let bucket = time_bucket(t, cfg.utc_offset_hours);
            *self.time_of_day.entry(bucket.into()).or_default().entry(task.into()).or_default() += 1;
        }
        if let Some(prev) = self.last_task.replace(task.to_string()) {
            *self.transitions.entry(prev).or_default().entry(task.into()).or_default() += 1;
        }
    }

    /// The preferred model for a task type: the highest EMA (ties: the
    /// model with more feedback, then by name).
    pub fn preferred_model(&self, task: &str) -> Option<(String, f64)> {
        let ema = self.feedback.ema.get(task)?;
        let counts = self.feedback.counts.get(task);
        ema.iter()
            .max_by(|a, b| {
                a.1.total_cmp(b.1)
                    .then_with(|| {
                        let n = |m: &str| counts.and_then(|c| c.get(m)).copied().unwrap_or(0);
                        n(a.0).cmp(&n(b.0))
                    })
                    .then_with(|| b.0.cmp(a.0))
            })
            .map(|(m, s)| (m.clone(), *s))
    }

    /// Learns from one feedback score in `[0, 1]`, or scores it as held out.
    #[allow(clippy::too_many_arguments)]
    pub fn feedback(&mut self, task: &str, model: &str, score: f64, held_out: bool, cfg: &Config) {
        let f = &mut self.feedback;
        f.score_sum += score;
        if held_out {
            // Predict before looking: positive iff the model is the one the
            // user prefers for this task.
            match self.preferred_model(task) {
                Some((best, _)) => {
                    let predicted = best == model;
                    let actual = score > 0.5;
                    let f = &mut self.feedback;
                    f.held_out += 1;
                    if predicted == actual {
                        f.held_out_correct += 1;
                    }
                    f.held_out_tally.entry(task.into()).or_default().entry(model.into()).or_default()
                        [usize::from(actual)] += 1;
                }
                None => self.feedback.held_out_unscored += 1,
            }
            return;
        }
        let f = &mut self.feedback;
        f.learned += 1;
        let e = f.ema.entry(task.into()).or_default().entry(model.into()).or_insert(0.5);
        *e = round4(*e + cfg.learning_rate * (score - *e));
        *f.counts.entry(task.into()).or_default().entry(model.into()).or_default() += 1;
    }

    /// Feedback received: learned from, held out and scored, held out unscored.
    pub fn feedback_count(&self) -> u64 {
        self.feedback.learned + self.feedback.held_out + self.feedback.held_out_unscored
    }

    /// Held-out accuracy, when any was scored.
    pub fn accuracy(&self) -> Option<f64> {
        (self.feedback.held_out > 0).then(|| self.feedback.held_out_correct as f64 / self.feedback.held_out as f64)
    }

    /// The best accuracy any predictor of the same kind (liked or not, from
    /// the task type and the model) could have reached on the same scored
    /// held-out events: one that knew, for each (task, model), whether the
    /// user liked it more often than not in those very events. When users
    /// like a non-preferred model now and then, no predictor reaches 100 %;
    /// this is the ceiling the accuracy is to be read against.
    pub fn accuracy_ceiling(&self) -> Option<f64> {
        let (best, n) = ceiling_counts(&self.feedback.held_out_tally);
        (n > 0).then(|| best as f64 / n as f64)
    }

    /// The most likely next task type: from the last task's transitions;
    /// else the usual task of the time-of-day bucket of `at`; else the most
    /// used task. Returns (task, probability, basis).
    pub fn next_activity(&self, at: i64, cfg: &Config) -> Option<(String, f64, &'static str)> {
        let top = |m: &BTreeMap<String, u64>| {
            let total: u64 = m.values().sum();
            m.iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(k, n)| (k.clone(), *n as f64 / total.max(1) as f64))
        };
        if let Some(m) = self.last_task.as_ref().and_then(|l| self.transitions.get(l))
            && let Some((t, p)) = top(m)
        {
            return Some((t, round4(p), "transition"));
        }
        if let Some((t, p)) = self.time_of_day.get(time_bucket(at, cfg.utc_offset_hours)).and_then(top) {
            return Some((t, round4(p), "time_of_day"));
        }
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        for m in self.time_of_day.values() {
            for (k, n) in m {
                *all.entry(k.clone()).or_default() += n;
            }
        }
        top(&all).map(|(t, p)| (t, round4(p), "overall"))
    }
}

/// The seed's time-of-day buckets: morning 05–12, afternoon 12–17, evening
/// 17–21, night 21–05 (local = UTC + offset).
pub fn time_bucket(t: i64, offset_hours: f64) -> &'static str {
    let hours = t as f64 / HOUR as f64 + offset_hours;
    let h = hours.rem_euclid(24.0);
    match h {
        h if (5.0..12.0).contains(&h) => "morning",
        h if (12.0..17.0).contains(&h) => "afternoon",
        h if (17.0..21.0).contains(&h) => "evening",
        _ => "night",
    }
}

/// (events the best predictor gets right, events) over a held-out tally:
/// per (task, model), the majority answer is the best any predictor of a
/// (task, model) → liked rule can give.
pub fn ceiling_counts(tally: &BTreeMap<String, BTreeMap<String, [u64; 2]>>) -> (u64, u64) {
    tally.values().flat_map(|m| m.values()).fold((0, 0), |(best, n), [neg, pos]| (best + neg.max(pos), n + neg + pos))
}

/// Whether a feedback record is held out: a stable hash of its id below
/// `fraction` (FNV-1a, so the same record is always in the same set).
pub fn held_out(id: &str, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Finalise (splitmix) so sequential ids spread evenly.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// Ranks memories against a text query: the share of query words found in
/// the memory's content or tags (0 when none), ties by confidence.
pub fn search_score(m: &Memory, query_tokens: &[String]) -> f64 {
    if query_tokens.is_empty() {
        return 1.0;
    }
    let content = m.content.to_lowercase();
    let hits = query_tokens.iter().filter(|q| content.contains(q.as_str()) || m.tags.iter().any(|t| t == *q)).count();
    hits as f64 / query_tokens.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradicting_preference_supersedes_and_keeps_the_old_one() {
        let cfg = Config::default();
        let mut u = UserDoc::new(&cfg);
        u.add_preference("Docker", "containers", false, 0.7, "a:p0".into(), 10, "rules", "a").unwrap();
        let (_, sup) = u.add_preference("Podman", "containers", false, 0.8, "b:p0".into(), 20, "rules", "b").unwrap();
        assert_eq!(sup, vec!["a:p0".to_string()]);
        let old = &u.memories[0];
        assert_eq!((old.valid_from, old.valid_to, old.superseded_by.as_deref()), (10, Some(20), Some("b:p0")));
        assert_eq!(
            u.active(MemoryType::Preference, &cfg).iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            ["Prefers: Podman"]
        );
        // Avoiding what one prefers supersedes it too; a non-rival category does not.
        u.add_preference("Rust", "language", false, 0.7, "c:p0".into(), 30, "rules", "c").unwrap();
        let (_, sup) = u.add_preference("Podman", "containers", true, 0.7, "d:p0".into(), 40, "rules", "d").unwrap();
        assert_eq!(sup, vec!["b:p0".to_string()]);
        assert_eq!(u.memories.len(), 4);
        assert!(
            u.add_preference("Rust", "language", false, 0.9, "e:p0".into(), 50, "rules", "e").is_none(),
            "repeat only raises confidence"
        );
        assert_eq!(u.memories[2].confidence, 0.9);
    }

    #[test]
    fn buckets_decay_and_holdout() {
        let t0 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        assert_eq!(time_bucket(t0 + 9 * HOUR, 0.0), "morning");
        assert_eq!(time_bucket(t0 + 13 * HOUR, 0.0), "afternoon");
        assert_eq!(time_bucket(t0 + 18 * HOUR, 0.0), "evening");
        assert_eq!(time_bucket(t0 + 23 * HOUR, 0.0), "night");
        assert_eq!(time_bucket(t0 + 23 * HOUR, 8.0), "morning");
        let m = Memory::new("x".into(), MemoryType::Goal, "g".into(), 0.8, t0, "rules", "i");
        assert!((m.decayed(t0 + 10 * DAY, 10.0) - 0.4).abs() < 1e-12);
        assert_eq!(m.decayed(t0 + 10 * DAY, 0.0), 0.8);
        let n = (0..10_000).filter(|i| held_out(&format!("fb-{i}"), 0.2)).count();
        assert!((1800..2200).contains(&n), "{n}");
    }
}
