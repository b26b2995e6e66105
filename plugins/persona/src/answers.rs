//! The bodies of the persona routes, as types: a misspelt field is a
//! compile error, and the snapshot tests (`tests/snapshots.rs`) show any
//! change of shape. Field order is the order of the JSON objects the routes
//! have always answered (it shows when serde_json keeps insertion order).
//! Times are RFC 3339 strings, or `null` when unknown
//! ([`crate::persona::known_time`]).

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::Timestamp;
use serde::{Deserialize, Serialize};

use crate::online::{InteractionPayload, PersonaUpdate};
use crate::persona::MemoryType;
use crate::rules::Hypothesis;

/// What the hypothesizer and the LLM know about a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct PersonaContext {
    /// Facet scores.
    pub persona_facets: BTreeMap<String, f64>,
    /// Interactions executed.
    pub interaction_count: u64,
    /// Up to 5 active goals, most recent first.
    pub recent_goals: Vec<String>,
    /// Up to 10 active preferences, most recent first.
    pub preferences: Vec<String>,
    /// The last interactions, most recent first.
    pub recent_history: Vec<String>,
}

/// The prediction to send to execute a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecuteRecord {
    /// Always `prediction`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Always `persona`.
    pub plugin: String,
    /// The user.
    pub subject: String,
    /// Always `interaction`.
    pub kind: String,
    /// The chosen hypothesis (`h1` to be replaced by the client's choice).
    pub label: String,
    /// What was offered.
    pub payload: InteractionPayload,
}

/// How to execute a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecuteHint {
    /// For people.
    pub note: String,
    /// The record to send.
    pub record: ExecuteRecord,
}

/// `POST /hypothesize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HypothesizeAnswer {
    /// The user.
    pub user_id: String,
    /// The input.
    pub input_text: String,
    /// Three hypotheses, most likely first.
    pub hypotheses: Vec<Hypothesis>,
    /// `llm` or `rules`.
    pub source: String,
    /// What became of the LLM (used, disabled, no_answer, ...).
    pub llm: String,
    /// What was known about the user.
    pub context: PersonaContext,
    /// How to execute one.
    pub execute: ExecuteHint,
}

/// One user in `GET /users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserSummary {
    /// The user.
    pub user_id: String,
    /// Interactions executed.
    pub interaction_count: u64,
    /// Feedback received (learned from, held out and scored, held out unscored).
    pub feedback_count: u64,
    /// The user's newest event time.
    pub newest_event_time: Option<Timestamp>,
}

/// `GET /users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsersAnswer {
    /// Every user, in id order.
    pub users: Vec<UserSummary>,
}

/// A memory as routes show it: times as RFC 3339, the decayed confidence
/// beside the stored one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryAnswer {
    /// `<interaction id>:<g|p|h><n>`.
    pub id: String,
    /// GOAL, PREFERENCE or HISTORY.
    #[serde(rename = "type")]
    pub mtype: MemoryType,
    /// The text.
    pub content: String,
    /// Stored confidence (before decay).
    pub confidence: f64,
    /// Search tags.
    pub tags: Vec<String>,
    /// Preferences: the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Preferences: its contradiction category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Preferences: an avoidance.
    pub avoid: bool,
    /// Valid from.
    pub valid_from: Option<Timestamp>,
    /// Valid until, once superseded or expired.
    pub valid_to: Option<Timestamp>,
    /// The memory that superseded it.
    pub superseded_by: Option<String>,
    /// `rules` or `llm`.
    pub source: String,
    /// The interaction it came from.
    pub interaction_id: String,
    /// Confidence after decay at the user's newest event.
    pub current_confidence: f64,
    /// Not superseded or expired.
    pub active: bool,
    /// Memory search: how well it matches the query.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_score: Option<f64>,
}

/// One recent interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecentAnswer {
    /// The interaction.
    pub interaction_id: String,
    /// What was asked and chosen.
    pub content: String,
}

/// Interactions analysed by the LLM and by rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalysedBy {
    /// By rules, refined by the LLM.
    pub llm: u64,
    /// By rules alone (including those in `llm_pending`).
    pub rules: u64,
}

/// `GET /users/{user}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonaAnswer {
    /// The user.
    pub user_id: String,
    /// Facet scores.
    pub facets: BTreeMap<String, f64>,
    /// Interactions executed.
    pub interaction_count: u64,
    /// Active goals, most recent first.
    pub goals: Vec<MemoryAnswer>,
    /// Active preferences, most recent first.
    pub preferences: Vec<MemoryAnswer>,
    /// Preferences superseded or expired.
    pub superseded_preferences: Vec<MemoryAnswer>,
    /// The last interactions, most recent first.
    pub recent_history: Vec<RecentAnswer>,
    /// How interactions were analysed.
    pub analysed_by: AnalysedBy,
    /// Which analysis the persona reflects: `rules` (the rules' alone) or
    /// `rules+llm` (the rules', refined by the LLM for `analysed_by.llm`
    /// interactions). Reads never wait for the LLM.
    pub analysis: String,
    /// Interactions analysed by rules and waiting for LLM enrichment (the
    /// `enrich` job): the persona changes again once they are enriched.
    pub llm_pending: u64,
    /// When the LLM last refined this persona (the `enrich` job), or null.
    pub last_enriched_at: Option<Timestamp>,
    /// Feedback received.
    pub feedback_count: u64,
    /// The user's first event time.
    pub first_event_time: Option<Timestamp>,
    /// The user's newest event time.
    pub newest_event_time: Option<Timestamp>,
}

/// `GET /users/{user}/memories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoriesAnswer {
    /// The user.
    pub user_id: String,
    /// The best matches, up to `limit`.
    pub memories: Vec<MemoryAnswer>,
    /// Matches in all.
    pub total: usize,
    /// `text` or `text+embeddings`.
    pub ranking: String,
}

/// `GET /users/{user}/updates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpdatesAnswer {
    /// The user.
    pub user_id: String,
    /// The persona-update log, newest first, times as RFC 3339.
    pub updates: Vec<PersonaUpdate<Option<Timestamp>>>,
}

/// The preferred model of a user for one task type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelPreference {
    /// The model with the highest EMA.
    pub preferred_model: String,
    /// Its EMA.
    pub score: f64,
    /// Every model's EMA.
    pub ema: BTreeMap<String, f64>,
    /// Feedback learned from, per model.
    pub feedback: Option<BTreeMap<String, u64>>,
}

/// Usage in one time-of-day bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimeOfDayUsage {
    /// Task uses in the bucket.
    pub total: u64,
    /// The most used task.
    pub usual_task: Option<String>,
    /// Its share.
    pub share: Option<f64>,
    /// Uses per task.
    pub tasks: BTreeMap<String, u64>,
}

/// The most likely next task type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NextActivity {
    /// The task type.
    pub task_type: String,
    /// How likely.
    pub probability: f64,
    /// transition, time_of_day or overall.
    pub basis: String,
}

/// The held-out feedback of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeldOut {
    /// Scored.
    pub scored: u64,
    /// Predicted right.
    pub correct: u64,
    /// Held out before any preference was learned for its task.
    pub unscored: u64,
    /// `holdout_fraction`.
    pub fraction: f64,
}

/// The feedback a user gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackSummary {
    /// Feedback received.
    pub total: u64,
    /// Of it, learned from.
    pub learned_from: u64,
    /// Thumbs up.
    pub thumbs_up: u64,
    /// Thumbs down.
    pub thumbs_down: u64,
    /// Star ratings.
    pub ratings: u64,
    /// Mean feedback score in `[0, 1]`.
    pub average_score: Option<f64>,
    /// Mean length of the rated responses.
    pub average_response_length: Option<f64>,
}

/// `GET /users/{user}/preferences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreferencesAnswer {
    /// The user.
    pub user_id: String,
    /// Per task type.
    pub preferred_models: BTreeMap<String, ModelPreference>,
    /// Per time-of-day bucket.
    pub time_of_day: BTreeMap<String, TimeOfDayUsage>,
    /// At the user's newest event.
    pub next_activity: Option<NextActivity>,
    /// Held-out accuracy.
    pub preference_accuracy: Option<f64>,
    /// The best accuracy any predictor could reach on the same events.
    pub accuracy_ceiling: Option<f64>,
    /// Held-out counts.
    pub held_out: HeldOut,
    /// Feedback counts.
    pub feedback: FeedbackSummary,
    /// `learning_rate` of the EMA.
    pub learning_rate: f64,
}

/// `GET /users/{user}/next-activity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NextActivityAnswer {
    /// The user.
    pub user_id: String,
    /// The time asked about.
    pub at: Option<Timestamp>,
    /// Its time-of-day bucket.
    pub time_of_day: String,
    /// The last task type seen.
    pub last_task: Option<String>,
    /// The most likely next task type.
    pub next_activity: Option<NextActivity>,
}

/// `GET /training/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingStats {
    /// `training_data`.
    pub enabled: bool,
    /// Hypothesis-selection records.
    pub hypotheses_count: u64,
    /// Persona-update records.
    pub persona_updates_count: u64,
    /// Of them, undone interactions.
    pub negative_updates: u64,
    /// `min_training_confidence`.
    pub min_confidence_for_training: f64,
}

/// A page of training records as JSON (named `<record>Page` in the
/// schemas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct RecordsPage<T> {
    /// The records.
    pub records: Vec<T>,
    /// The cursor of the next page (`after`), `null` on the last.
    pub next: Option<String>,
}

/// A page of training records as JSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonlPage {
    /// Always `jsonl`.
    pub format: String,
    /// One record per line.
    pub jsonl: String,
    /// Records on the page.
    pub count: usize,
    /// The cursor of the next page.
    pub next: Option<String>,
}

/// A page of training records in the `format` asked for (named
/// `<record>Export` in the schemas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "{T}Export")]
pub enum TrainingPage<T> {
    /// `format=json` (the default).
    Json(RecordsPage<T>),
    /// `format=jsonl`.
    Jsonl(JsonlPage),
}

/// One chat message of a fine-tuning sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    /// system, user or assistant.
    pub role: String,
    /// The text.
    pub content: String,
}

/// One fine-tuning sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatSample {
    /// system, user, assistant.
    pub messages: Vec<ChatMessage>,
}

/// `GET /training/dataset` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatasetPage {
    /// The samples.
    pub samples: Vec<ChatSample>,
    /// The cursor of the next page.
    pub next: Option<String>,
    /// The least selected confidence included.
    pub min_confidence: f64,
    /// Records looked at on the page.
    pub considered: usize,
}

/// `GET /training/dataset` as JSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatasetJsonlPage {
    /// The samples as JSON lines.
    #[serde(flatten)]
    pub page: JsonlPage,
    /// The least selected confidence included.
    pub min_confidence: f64,
    /// Records looked at on the page.
    pub considered: usize,
}

/// `GET /training/dataset` in the `format` asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DatasetAnswer {
    /// `format=json` (the default).
    Json(DatasetPage),
    /// `format=jsonl`.
    Jsonl(DatasetJsonlPage),
}

/// Training record counts in `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingCounts {
    /// Hypothesis-selection records.
    pub hypotheses_count: u64,
    /// Persona-update records.
    pub persona_updates_count: u64,
}

/// `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatsAnswer {
    /// Users seen.
    pub users: u64,
    /// Interactions executed.
    pub interactions: u64,
    /// Responses recorded.
    pub responses: u64,
    /// Feedback received.
    pub feedback: u64,
    /// Interactions whose rule analysis the LLM refined.
    pub analysed_by_llm: u64,
    /// Interactions left to the rules' analysis, by why the LLM was not
    /// used (`disabled`, `skipped_batch`, `queue_full`, `no_answer`,
    /// `malformed`, `undone`); those still queued are `llm_pending`.
    pub analysed_by_rules: BTreeMap<String, u64>,
    /// Interactions queued for LLM enrichment (the `enrich` job).
    pub llm_pending: u64,
    /// Interactions never queued because the queue was full
    /// (`llm_queue_cap`).
    pub llm_dropped: u64,
    /// Held-out preference accuracy over all users.
    pub preference_accuracy: Option<f64>,
    /// Its ceiling.
    pub accuracy_ceiling: Option<f64>,
    /// Accuracy / ceiling.
    pub accuracy_of_ceiling: Option<f64>,
    /// Held-out feedback scored.
    pub held_out_scored: u64,
    /// The seed's target (0.9).
    pub accuracy_target: f64,
    /// Training records.
    pub training: TrainingCounts,
}
