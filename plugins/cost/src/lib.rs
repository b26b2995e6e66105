//! The `cost` plugin: learns from cost-saving recommendations and their
//! executed outcomes (seed 000) how far to trust predicted savings, which
//! recommendations succeed, and which factors predict success — and serves
//! that back at decision time (`POST /assess`).
//!
//! Records:
//! * a **prediction** is a recommendation: `id` = recommendation id,
//!   `subject` = resource id, `kind` = recommendation type, `value` =
//!   predicted monthly savings (required, ≥ 0), `confidence` in `[0, 1]`,
//!   numeric `features` = its scoring factors, and `payload` with
//!   `resource_type` and `region` (grouped under `unknown` when absent) and
//!   `risk_level` (`low`/`medium`/`high`, default `medium`) — these three
//!   may also come as string `features` (as CSV imports deliver them);
//! * an **outcome** is an execution result and/or a savings measurement:
//!   `success` (the execution succeeded) with `payload.execution_id`,
//!   `execution_duration_seconds`, `issues_encountered` (strings),
//!   `post_execution_metrics` (object); and/or `value` = the actual monthly
//!   savings measured over `payload.measurement_window_days` (default
//!   `measurement_window_days` of the config). Either may come first and
//!   both may come in one record; a later report replaces an earlier one.
//!
//! State (reproducible from history by `learnloop replay`):
//! * `rec/<id>` — each recommendation with its execution and savings
//!   ([`record::Rec`]);
//! * `stats` — online aggregates by type, region, resource type and pairs
//!   ([`record::Stats`]);
//! * `learning` and `insights` — the last cycles.
//!
//! What it serves (calibration, success model and risk levels, scoring
//! weights) is in force
//! only through the host's improvement lifecycle: the learning cycle
//! proposes parameter sets, [`Plugin::score`] backtests them, the host
//! applies them (`__applied/<target>`), and every answer names the versions
//! it used.
//!
//! Learning is in [`model`] and [`learn`] (over the compact rows of
//! [`table`]), the vector index in [`index`]. Route answers are the types
//! of [`answers`] and [`report`]; the manifest's route schemas are made from
//! them (and from [`Proposal`], the body of the assess and similar routes).

#![deny(missing_docs)]

pub mod answers;
pub mod index;
pub mod learn;
pub mod model;
pub mod record;
pub mod report;
pub mod table;

use std::collections::BTreeMap;

use learnloop_plugin_api::core::{RecordType, Role};
use learnloop_plugin_api::{
    ConfigKey, Context, Event, Expect, JobSpec, KindSpec, Manifest, Plugin, PluginError, QueryParam, Record,
    RouteRequest, RouteResponse, RouteSpec, Schemas, Score, ScoreRequest, Timestamp, ValidationError, abi,
    parse_config,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use answers::{
    Assessment, GroupBy, InsightsAnswer, Interval, OutcomesPage, ParamsAnswer, ProbabilityBasis, RecommendationAnswer,
    SimilarCase, SimilarCases, SimilarToRecommendation, SuccessRates,
};
use model::Params;
use record::{AggJson, Exec, Rec, Stats};

/// The `[cost]` config section. Every key is optional; an unknown key is an
/// error naming it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Default window (days) over which actual savings are measured.
    pub measurement_window_days: f64,
    /// Nominal coverage of the savings prediction interval.
    pub interval_level: f64,
    /// Pseudo-count k pulling a thin group's calibration and risk level
    /// toward its broader group (the success model chooses its own
    /// pseudo-counts by cross-validation).
    pub shrinkage: f64,
    /// Newest fraction (by event time) of recommendations with outcomes held
    /// out: candidates are learned without them and backtested on them.
    pub holdout_fraction: f64,
    /// Executions a group needs before patterns, risk levels and weights use it.
    pub min_group_size: u64,
    /// Failure rate up to which a type × resource type is low risk.
    pub risk_low_max_failure: f64,
    /// Failure rate up to which it is medium risk (above: high).
    pub risk_medium_max_failure: f64,
    /// How far each cycle moves scoring weights toward the learned target.
    pub weight_learning_rate: f64,
    /// Similar cases returned by `POST /assess`.
    pub similar_cases: usize,
    /// Outcomes the vector index sync reads per call at most.
    pub index_sync_budget: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            measurement_window_days: 30.0,
            interval_level: 0.9,
            shrinkage: 10.0,
            holdout_fraction: 0.2,
            min_group_size: 10,
            risk_low_max_failure: 0.10,
            risk_medium_max_failure: 0.25,
            weight_learning_rate: 0.5,
            similar_cases: 5,
            index_sync_budget: 200_000,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), PluginError> {
        let bad = |k: &str, m: &str| Err(PluginError::invalid(format!("[cost] {k}"), m.to_string()));
        if !(self.measurement_window_days.is_finite()
            && self.measurement_window_days >= 1.0
            && self.measurement_window_days <= 366.0)
        {
            return bad("measurement_window_days", "must lie in [1, 366]");
        }
        for (k, v) in [
            ("interval_level", self.interval_level),
            ("holdout_fraction", self.holdout_fraction),
            ("weight_learning_rate", self.weight_learning_rate),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return bad(k, "must lie in (0, 1)");
            }
        }
        if !(self.shrinkage.is_finite() && self.shrinkage >= 0.0) {
            return bad("shrinkage", "must be a finite number ≥ 0");
        }
        if !(0.0..1.0).contains(&self.risk_low_max_failure)
            || !(self.risk_low_max_failure..1.0).contains(&self.risk_medium_max_failure)
        {
            return bad("risk_medium_max_failure", "need 0 ≤ risk_low_max_failure ≤ risk_medium_max_failure < 1");
        }
        if self.similar_cases > 100 {
            return bad("similar_cases", "must be at most 100");
        }
        if self.index_sync_budget == 0 {
            return bad("index_sync_budget", "must be at least 1");
        }
        Ok(())
    }

    fn config_keys() -> Vec<ConfigKey> {
        let d = serde_json::to_value(Config::default()).expect("serializable");
        let docs: [(&str, &str); 10] = [
            ("measurement_window_days", "default window (days) over which actual savings are measured"),
            ("interval_level", "nominal coverage of the conformal savings interval"),
            (
                "shrinkage",
                "pseudo-count pulling a thin group's calibration and risk level toward its broader group (the success model chooses its own by cross-validation)",
            ),
            (
                "holdout_fraction",
                "newest fraction of outcomes held out: candidates are learned without them and backtested on them",
            ),
            ("min_group_size", "executions a group needs before patterns, risk levels and weights use it"),
            ("risk_low_max_failure", "failure rate up to which a type × resource type is low risk"),
            ("risk_medium_max_failure", "failure rate up to which it is medium risk (above: high)"),
            ("weight_learning_rate", "how far each cycle moves scoring weights toward the learned target"),
            ("similar_cases", "similar past cases returned by POST /assess"),
            ("index_sync_budget", "outcomes the vector index sync reads per call at most"),
        ];
        ConfigKey::documented(&d, &docs)
    }
}

/// The plugin.
#[derive(Debug, Default)]
pub struct CostPlugin {
    config: Config,
}

impl CostPlugin {
    /// The active config.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

pub(crate) use learnloop_plugin_api::helpers::time_json as ts;

/// The client's event time (µs), or 0 when the store stamped the ingestion
/// time because the client sent none: state must be reproducible from
/// history on any machine at any time, so no wall-clock time enters it.
fn client_time(event_time: Option<Timestamp>, ingested_at: Timestamp) -> i64 {
    learnloop_plugin_api::helpers::client_time(event_time, ingested_at).unwrap_or(0)
}

pub(crate) use learnloop_plugin_api::state::{get_doc, put_doc};

pub(crate) fn get_rec(ctx: &mut dyn Context, id: &str) -> Result<Option<Rec>, PluginError> {
    Ok(match ctx.get_state(&format!("rec/{id}"))? {
        Some(s) => Some(serde_json::from_value(s.value)?),
        None => None,
    })
}

const RISKS: [&str; 3] = ["low", "medium", "high"];

/// A context field of a recommendation: from the payload, else from the
/// features (where CSV imports put every column).
fn context_field<'a>(p: &'a learnloop_plugin_api::Prediction, field: &str) -> Option<&'a Value> {
    p.payload.get(field).or_else(|| p.features.get(field))
}

/// A context string: absent is allowed (the plugin then groups the
/// recommendation under `unknown`), present must be a short non-empty string.
fn opt_str(p: &learnloop_plugin_api::Prediction, field: &str) -> Result<(), ValidationError> {
    match context_field(p, field) {
        None => Ok(()),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => Ok(()),
        Some(_) => {
            Err(ValidationError::new(format!("payload.{field}"), "must be a non-empty string of at most 128 bytes"))
        }
    }
}

fn factors_of(features: &serde_json::Map<String, Value>) -> BTreeMap<String, f64> {
    features.iter().filter_map(|(k, v)| v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x))).collect()
}

/// Exact-match filters for similar-case search from query parameters.
fn case_filter(req: &RouteRequest) -> Result<Value, PluginError> {
    let mut f = serde_json::Map::new();
    for (q, field) in [
        ("type", "recommendation_type"),
        ("resource_type", "resource_type"),
        ("region", "region"),
        ("risk_level", "risk_level"),
    ] {
        if let Some(v) = req.query.get(q) {
            f.insert(field.into(), json!(v));
        }
    }
    if let Some(b) = req.query_bool("success")? {
        f.insert("success".into(), json!(b));
    }
    Ok(Value::Object(f))
}

/// A recommendation described in a request body (`POST /assess` and
/// `POST /similar`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Recommendation type (not empty).
    #[schemars(length(min = 1))]
    pub recommendation_type: String,
    /// Resource type (not empty).
    #[schemars(length(min = 1))]
    pub resource_type: String,
    /// Region (not empty).
    #[schemars(length(min = 1))]
    pub region: String,
    /// Predicted monthly savings (≥ 0).
    #[schemars(range(min = 0))]
    pub predicted_savings: f64,
    /// Stated risk level: low, medium or high.
    #[serde(default = "medium")]
    #[schemars(extend("enum" = ["low", "medium", "high"]))]
    pub risk_level: String,
    /// Stated confidence in [0, 1].
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    pub confidence: Option<f64>,
    /// Scoring factors (finite numbers) by name.
    #[serde(default)]
    pub scoring_factors: BTreeMap<String, f64>,
    /// Resource id (context only).
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Similar cases `POST /assess` returns (default `similar_cases` of the
    /// config; 0 = none; at most 100). `POST /similar` takes `limit` instead.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub similar_cases: Option<usize>,
}

fn medium() -> String {
    "medium".into()
}

impl Proposal {
    fn parse(req: &RouteRequest) -> Result<Proposal, PluginError> {
        let p: Proposal = req.body_as()?;
        for (k, v) in [
            ("recommendation_type", &p.recommendation_type),
            ("resource_type", &p.resource_type),
            ("region", &p.region),
        ] {
            if v.trim().is_empty() {
                return Err(PluginError::invalid(k, "must not be empty"));
            }
        }
        if !(p.predicted_savings.is_finite() && p.predicted_savings >= 0.0) {
            return Err(PluginError::invalid("predicted_savings", "must be a finite number ≥ 0"));
        }
        if !RISKS.contains(&p.risk_level.as_str()) {
            return Err(PluginError::invalid("risk_level", "expected low, medium or high"));
        }
        if p.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
            return Err(PluginError::invalid("confidence", "must lie in [0, 1]"));
        }
        if let Some((k, _)) = p.scoring_factors.iter().find(|(_, v)| !v.is_finite()) {
            return Err(PluginError::invalid(format!("scoring_factors.{k}"), "must be finite"));
        }
        if p.similar_cases.is_some_and(|n| n > 100) {
            return Err(PluginError::invalid("similar_cases", "must be at most 100"));
        }
        Ok(p)
    }

    fn text(&self) -> String {
        record::embed_text(
            &self.recommendation_type,
            &self.resource_type,
            &self.region,
            &self.risk_level,
            self.predicted_savings,
        )
    }
}

impl CostPlugin {
    /// Decision-time assessment of a recommendation.
    pub fn assess(&self, ctx: &mut dyn Context, p: &Proposal) -> Result<Assessment, PluginError> {
        let (params, versions) = learn::serving(ctx)?;
        let e = params.estimate(&p.recommendation_type, &p.region, &p.resource_type, p.predicted_savings);
        let learned = params.risk_level(&p.recommendation_type, &p.resource_type);
        let limit = p.similar_cases.unwrap_or(self.config.similar_cases);
        let (similar, similar_error) = if limit == 0 {
            (Some(Vec::new()), None)
        } else {
            match self.similar_for(ctx, &p.text(), limit, json!({}), None) {
                Ok(v) => (Some(v), None),
                Err(PluginError::Unavailable { message }) => (None, Some(message)),
                Err(other) => return Err(other),
            }
        };
        let original_score = params_default_score(&p.scoring_factors);
        // The learned success model when one is in force, else the base rate.
        let (probability, probability_basis) = match params.success_probability(
            &p.recommendation_type,
            &p.region,
            &p.resource_type,
            &p.risk_level,
            &p.scoring_factors,
        ) {
            Some(q) => (q, ProbabilityBasis::SuccessModel),
            None => {
                let all = get_doc::<Stats>(ctx, "stats")?.0.all;
                ((all.succeeded as f64 + 1.0) / (all.executed as f64 + 2.0), ProbabilityBasis::BaseRate)
            }
        };
        Ok(Assessment {
            recommendation_type: p.recommendation_type.clone(),
            resource_type: p.resource_type.clone(),
            region: p.region.clone(),
            resource_id: p.resource_id.clone(),
            predicted_savings: p.predicted_savings,
            calibrated_savings: e.calibrated_savings,
            calibration_factor: e.calibration_factor,
            interval: e.interval.map(|(lower, upper)| Interval { lower, upper, level: params.interval.level }),
            probability_of_success: probability,
            probability_of_success_basis: probability_basis,
            expected_monthly_savings: probability * e.calibrated_savings,
            stated_risk_level: p.risk_level.clone(),
            updated_risk_level: learned.map_or(p.risk_level.clone(), |r| r.risk_level.clone()),
            learned_failure_rate: learned.map(|r| r.failure_rate),
            stated_confidence: p.confidence,
            original_score,
            adjusted_score: params.score(&p.scoring_factors),
            scoring_weights: params.weights.clone(),
            basis: e.basis,
            evidence: e.evidence,
            params_versions: versions,
            similar_cases: similar,
            similar_cases_unavailable: similar_error,
        })
    }

    fn similar_for(
        &self,
        ctx: &mut dyn Context,
        text: &str,
        limit: usize,
        filter: Value,
        exclude: Option<&str>,
    ) -> Result<Vec<SimilarCase>, PluginError> {
        index::sync(ctx, self.config.index_sync_budget)?;
        index::similar(ctx, text, limit, filter, exclude)
    }
}

/// The score under equal weights (what the recommender used before learning).
fn params_default_score(factors: &BTreeMap<String, f64>) -> Option<f64> {
    Params::default().score(factors)
}

/// The routes, their query parameters and the schemas of their bodies and
/// answers (collected in `s`). The handler parses its own query parameters;
/// these declarations say the same (the host refuses anything else).
fn routes(s: &mut Schemas) -> Vec<RouteSpec> {
    let get = RouteSpec::get;
    let post = |role, name: &str, path: &str, summary: &str| RouteSpec::with_method("POST", role, name, path, summary);
    let filters = |limit: QueryParam| {
        vec![
            limit,
            QueryParam::string("type", "only cases of this recommendation type"),
            QueryParam::string("resource_type", "only cases of this resource type"),
            QueryParam::string("region", "only cases in this region"),
            QueryParam::string("risk_level", "only cases of this stated risk level"),
            QueryParam::boolean("success", "only cases whose execution succeeded (true) or failed (false)"),
        ]
    };
    let similar_limit = || QueryParam::integer("limit", "similar cases to return (default 10)", 1, 100);
    let one_type = |what: &str| vec![QueryParam::string("type", what)];
    vec![
        post(Role::Reader, "assess", "/assess", "Decision time: calibrated savings with a conformal interval, probability of success, updated risk level, adjusted score and the most similar past cases for a new recommendation")
            .body(s.input::<Proposal>())
            .answers(s.output::<Assessment>()),
        get("get_recommendation", "/recommendations/{id}", "A recommendation with its execution and predicted vs actual savings (savings accuracy = actual / predicted, execution metrics)")
            .answers(s.output::<RecommendationAnswer>()),
        get("similar_to_recommendation", "/recommendations/{id}/similar", "Past cases most similar to a recorded recommendation")
            .query(filters(similar_limit()))
            .answers(s.output::<SimilarToRecommendation>()),
        post(Role::Reader, "similar", "/similar", "Past cases most similar to a recommendation given in the body")
            .query(filters(similar_limit()))
            .body(s.input::<Proposal>())
            .answers(s.output::<SimilarCases>()),
        get("list_outcomes", "/outcomes", "Historical outcomes, oldest recommendation id first")
            .query(vec![
                QueryParam::string("type", "only recommendations of this type"),
                QueryParam::string("resource_type", "only recommendations of this resource type"),
                QueryParam::string("region", "only recommendations in this region"),
                QueryParam::boolean("success", "only executions that succeeded (true) or failed (false)"),
                QueryParam::boolean("measured", "only recommendations with (true) or without (false) measured savings"),
                QueryParam::integer("limit", "outcomes per page (default 100)", 1, 1000),
                QueryParam::string("after", "the previous page's next"),
            ])
            .answers(s.output::<OutcomesPage>()),
        get("get_success_rates", "/success-rates", "Success rate and accuracy per recommendation type, region or resource type")
            .query(vec![QueryParam::one_of("by", "the grouping (default type)", &["type", "region", "resource_type"])])
            .answers(s.output::<SuccessRates>()),
        get("get_accuracy", "/accuracy", "Accuracy metrics: prediction error, success rate, ROI accuracy, time to savings, improvement over baseline")
            .query(one_type("only this recommendation type (404 when there is none of it)"))
            .answers(s.output::<report::Accuracy>()),
        get("get_analysis", "/analysis", "Feedback analysis: success and failure patterns per type, accuracy metrics, improvement opportunities, insights")
            .query(one_type("only this recommendation type"))
            .answers(s.output::<report::Analysis>()),
        get("list_insights", "/insights", "Insights of the latest learning cycle")
            .query(vec![QueryParam::integer("limit", "insights to return (default 10)", 1, 100)])
            .answers(s.output::<InsightsAnswer>()),
        get("get_metrics", "/metrics", "Learning metrics: outcomes tracked, success rate, average accuracy, improvement over baseline, cycles, last cycle, active improvements")
            .answers(s.output::<report::Metrics>()),
        get("get_params", "/params", "The parameter sets in force (calibration, risk_levels, scoring_weights) and their versions under the improvement lifecycle")
            .answers(s.output::<ParamsAnswer>()),
        post(Role::Writer, "sync_index", "/index/sync", "Bring the vector index up to date with the store (learnloop reindex calls this after clearing the index)")
            .answers(s.output::<index::SyncReport>()),
    ]
}

impl Plugin for CostPlugin {
    fn manifest(&self) -> Manifest {
        let mut s = Schemas::new();
        let routes = routes(&mut s);
        Manifest {
            name: "cost".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns from cost-saving recommendations and their executed outcomes (seed 000): predicted vs actual savings, success and failure patterns, calibrated savings with conformal intervals, success probability, risk levels, scoring weights, and similar past cases from the knowledge store.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {
                        "resource_type": {"type": "string"}, "region": {"type": "string"}, "risk_level": {"enum": RISKS}}}),
                    description: "a recommendation: kind = recommendation type (rightsizing, spot_instances, …), subject = resource id, value = predicted monthly savings, confidence, numeric features = scoring factors".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {
                        "execution_id": {"type": "string"}, "execution_duration_seconds": {"type": "number", "minimum": 0},
                        "issues_encountered": {"type": "array", "items": {"type": "string"}}, "post_execution_metrics": {"type": "object"},
                        "measurement_window_days": {"type": "number", "minimum": 1, "maximum": 366}}}),
                    description: "its execution (success + payload) and/or the actual monthly savings (value) measured over a window".into(),
                },
            ],
            routes,
            jobs: vec![JobSpec {
                name: "learning_cycle".into(),
                schedule: "0 0 3 * * *".into(),
                trigger: None,
                description: "Daily learning cycle: fit calibration with intervals, success probabilities and risk levels, and scoring weights on all but the newest outcomes; propose each changed set to the improvement lifecycle (backtested on the newest outcomes, applied by policy); insights".into(),
            }],
            config: Config::config_keys(),
            schemas: s.into_definitions(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let c: Config = parse_config("cost", section)?;
        c.check()?;
        self.config = c;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) => {
                let savings = p
                    .value
                    .ok_or_else(|| ValidationError::new("value", "is required: the predicted monthly savings"))?;
                if !(savings.is_finite() && savings >= 0.0) {
                    return Err(ValidationError::new(
                        "value",
                        format!("predicted savings must be a finite number ≥ 0, got {savings}"),
                    ));
                }
                if p.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
                    return Err(ValidationError::new("confidence", "must lie in [0, 1]"));
                }
                if !(p.payload.is_null() || p.payload.is_object()) {
                    return Err(ValidationError::new("payload", "must be an object with resource_type and region"));
                }
                opt_str(p, "resource_type")?;
                opt_str(p, "region")?;
                if let Some(r) = context_field(p, "risk_level")
                    && !r.as_str().is_some_and(|r| RISKS.contains(&r))
                {
                    return Err(ValidationError::new("payload.risk_level", "expected low, medium or high"));
                }
            }
            Record::Outcome(o) => {
                if o.success.is_none() && o.value.is_none() {
                    return Err(ValidationError::new(
                        "success",
                        "an outcome needs success (the execution) and/or value (the actual monthly savings)",
                    ));
                }
                if o.value.is_some_and(|v| !v.is_finite()) {
                    return Err(ValidationError::new("value", "actual savings must be finite"));
                }
                let p = &o.payload;
                if !(p.is_null() || p.is_object()) {
                    return Err(ValidationError::new("payload", "must be an object"));
                }
                if let Some(issues) = p.get("issues_encountered")
                    && !issues.as_array().is_some_and(|a| a.iter().all(|v| v.is_string()))
                {
                    return Err(ValidationError::new("payload.issues_encountered", "must be a list of strings"));
                }
                if let Some(d) = p.get("execution_duration_seconds")
                    && !d.as_f64().is_some_and(|d| d.is_finite() && d >= 0.0)
                {
                    return Err(ValidationError::new("payload.execution_duration_seconds", "must be a number ≥ 0"));
                }
                if let Some(w) = p.get("measurement_window_days")
                    && !w.as_f64().is_some_and(|w| (1.0..=366.0).contains(&w))
                {
                    return Err(ValidationError::new(
                        "payload.measurement_window_days",
                        "must be a number in [1, 366]",
                    ));
                }
                if let Some(m) = p.get("post_execution_metrics")
                    && !m.is_object()
                {
                    return Err(ValidationError::new("payload.post_execution_metrics", "must be an object"));
                }
                if let Some(x) = p.get("execution_id")
                    && !x.is_string()
                {
                    return Err(ValidationError::new("payload.execution_id", "must be a string"));
                }
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        let (mut stats, stats_expect) = get_doc::<Stats>(ctx, "stats")?;
        // Documents touched by this batch, written once at the end.
        let mut recs: BTreeMap<String, (Rec, Expect)> = BTreeMap::new();
        for e in events {
            match e {
                Event::Prediction(sp) => {
                    let p = &sp.record;
                    let t = client_time(p.event_time, sp.ingested_at);
                    stats.newest = stats.newest.max(t);
                    let rec = Rec {
                        t,
                        kind: p.kind.clone(),
                        resource_id: p.subject.clone(),
                        resource_type: context_field(p, "resource_type")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown")
                            .to_string(),
                        region: context_field(p, "region").and_then(Value::as_str).unwrap_or("unknown").to_string(),
                        risk: context_field(p, "risk_level").and_then(Value::as_str).unwrap_or("medium").to_string(),
                        predicted: p.value.unwrap_or(0.0),
                        confidence: p.confidence,
                        factors: factors_of(&p.features),
                        exec: None,
                        actual: None,
                        actual_t: None,
                        window_days: None,
                    };
                    stats.apply(&rec, 1);
                    recs.insert(p.id.as_str().to_string(), (rec, Expect::Absent));
                }
                Event::Outcome(so) => {
                    let o = &so.record;
                    let t = client_time(o.event_time, so.ingested_at);
                    stats.newest = stats.newest.max(t);
                    let id = o.prediction_id.as_str().to_string();
                    if !recs.contains_key(&id) {
                        let Some(s) = ctx.get_state(&format!("rec/{id}"))? else { continue };
                        recs.insert(id.clone(), (serde_json::from_value(s.value)?, Expect::Version(s.version)));
                    }
                    let rec = &mut recs.get_mut(&id).expect("loaded").0;
                    stats.apply(rec, -1);
                    if let Some(ok) = o.success {
                        let pl = &o.payload;
                        rec.exec = Some(Exec {
                            outcome_id: o.id.as_str().to_string(),
                            execution_id: pl["execution_id"].as_str().map(str::to_string),
                            success: ok,
                            duration_seconds: pl["execution_duration_seconds"].as_f64(),
                            issues: pl["issues_encountered"]
                                .as_array()
                                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                                .unwrap_or_default(),
                            metrics: pl.get("post_execution_metrics").cloned().unwrap_or(Value::Null),
                            t,
                        });
                    }
                    if let Some(v) = o.value {
                        rec.actual = Some(v);
                        rec.actual_t = Some(t);
                        rec.window_days = Some(
                            o.payload["measurement_window_days"]
                                .as_f64()
                                .unwrap_or(self.config.measurement_window_days),
                        );
                    }
                    stats.apply(rec, 1);
                }
            }
        }
        for (id, (rec, expect)) in recs {
            put_doc(ctx, &format!("rec/{id}"), &rec, expect)?;
        }
        put_doc(ctx, "stats", &stats, stats_expect)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "learning_cycle" => learn::cycle(self, ctx),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn score(&self, ctx: &mut dyn Context, request: &ScoreRequest) -> Result<Score, PluginError> {
        learn::score(ctx, request)
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        match (req.method.as_str(), req.route.as_str()) {
            ("POST", "/assess") => {
                let p = Proposal::parse(req)?;
                answer(&self.assess(ctx, &p)?)
            }
            ("GET", "/recommendations/{id}") => {
                let id = req.param("id")?;
                let rec =
                    get_rec(ctx, id)?.ok_or_else(|| PluginError::not_found(format!("no recommendation {id:?}")))?;
                let (params, versions) = learn::serving(ctx)?;
                let e = params.estimate(&rec.kind, &rec.region, &rec.resource_type, rec.predicted);
                answer(&RecommendationAnswer {
                    recommendation: rec.view(id),
                    calibrated_savings: e.calibrated_savings,
                    params_versions: versions,
                })
            }
            ("GET", "/recommendations/{id}/similar") => {
                let id = req.param("id")?.to_string();
                let limit = req.query_usize("limit", 10, 100)?;
                let rec =
                    get_rec(ctx, &id)?.ok_or_else(|| PluginError::not_found(format!("no recommendation {id:?}")))?;
                let cases = self.similar_for(ctx, &rec.embed_text(), limit, case_filter(req)?, Some(&id))?;
                answer(&SimilarToRecommendation { recommendation_id: id, similar_cases: cases })
            }
            ("POST", "/similar") => {
                let p = Proposal::parse(req)?;
                if p.similar_cases.is_some() {
                    return Err(PluginError::invalid(
                        "similar_cases",
                        "is for POST /assess; POST /similar takes the query parameter limit",
                    ));
                }
                let limit = req.query_usize("limit", 10, 100)?;
                let cases = self.similar_for(ctx, &p.text(), limit, case_filter(req)?, None)?;
                answer(&SimilarCases { similar_cases: cases })
            }
            ("GET", "/outcomes") => answer(&learn::outcomes(ctx, req)?),
            ("GET", "/success-rates") => {
                let stats = get_doc::<Stats>(ctx, "stats")?.0;
                let (by, map) = match req.query_str("by").unwrap_or("type") {
                    "type" => (GroupBy::Type, &stats.by_type),
                    "region" => (GroupBy::Region, &stats.by_region),
                    "resource_type" => (GroupBy::ResourceType, &stats.by_resource_type),
                    other => {
                        return Err(PluginError::invalid(
                            "by",
                            format!("{other:?}: expected type, region or resource_type"),
                        ));
                    }
                };
                let groups: BTreeMap<String, AggJson> = map.iter().map(|(k, a)| (k.clone(), a.summary())).collect();
                answer(&SuccessRates { by, groups, overall: stats.all.summary() })
            }
            ("GET", "/accuracy") => answer(&learn::accuracy(ctx, req.query_str("type"))?),
            ("GET", "/analysis") => answer(&learn::analysis(self, ctx, req.query_str("type"))?),
            ("GET", "/insights") => {
                let limit = req.query_usize("limit", 10, 100)?;
                let mut doc = get_doc::<report::InsightsDoc>(ctx, "insights")?.0;
                doc.items.truncate(limit);
                answer(&InsightsAnswer { insights: doc.items })
            }
            ("GET", "/metrics") => answer(&learn::metrics(ctx)?),
            ("GET", "/params") => {
                let (p, versions) = learn::serving(ctx)?;
                answer(&ParamsAnswer { versions, params: p.sets() })
            }
            ("POST", "/index/sync") => {
                let mut total = index::SyncReport::default();
                loop {
                    let r = index::sync(ctx, self.config.index_sync_budget)?;
                    if total.outcomes == 0 {
                        total.from_seq = r.from_seq;
                    }
                    total.to_seq = r.to_seq;
                    total.outcomes += r.outcomes;
                    total.cases += r.cases;
                    total.insights += r.insights;
                    if !r.more {
                        break;
                    }
                }
                answer(&total)
            }
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }
}

/// A 200 answer with `body` as its JSON.
fn answer<T: Serialize>(body: &T) -> Result<RouteResponse, PluginError> {
    Ok(RouteResponse::ok(serde_json::to_value(body)?))
}

learnloop_plugin_api::export_plugin!(CostPlugin, CostPlugin::default);
