//! The `trust` plugin: learns how far to trust each agent of a swarm from how
//! its recommendations were judged (seed 001), and routes decisions to the
//! agents most likely to be right.
//!
//! Records:
//! * a **prediction** is an agent's recommendation: `subject` = agent id,
//!   `kind` = recommendation type, `confidence`, `label` (a short text of the
//!   action) and `payload` with `agent_name`, `workflow_id`, `correlation_id`,
//!   `content`, `reasoning`, `evidence`;
//! * an **outcome** is its evaluation: `label` approved / rejected / partial /
//!   pending (anything else is rejected), `success`, `quality` in `[0, 1]` (the
//!   seed's overall quality 0–100 is `quality × 100`; routes report
//!   `avg_quality_score` on the 0–100 scale), `feedback`, and `payload` with the
//!   per-dimension quality scores (`{"quality_scores": {"accuracy": 90, ...}}`).
//!
//! State (all reproducible from history by `learnloop replay`):
//! * `agent/<agent>` — counters per agent and per agent × type, the seed's
//!   learning-rate scores, the trend EWMAs and the change test (reference
//!   blocks, CUSUMs, alarms: the trend) ([`score::AgentDoc`]);
//! * `open/<prediction id>` — the client event time and confidence of a
//!   recommendation until its final evaluation arrives (for timeliness);
//!   `cleanup` prunes those older than `retention_days`;
//! * `meta` — the newest event time of the workspace (the plugin's clock: it
//!   never reads the wall clock, and ignores ingestion times: an event sent
//!   without `event_time` has no time for timeliness or inactivity) and totals;
//! * `patterns`, `learning`, `trust_snapshot` — written by the jobs.
//!
//! Trust formulas are documented in [`score`], pattern discovery in
//! [`patterns`], routing in [`route`].
//!
//! Code map: [`config`] (the `[trust]` section), [`online`] (the update as
//! events arrive), [`routes`] and [`route`] (the routes; their answers are
//! the types of [`answers`] and [`route::RouteAnswer`], the body of
//! `POST /route` is [`route::RouteBody`], and the manifest's route schemas
//! are made from these types), [`jobs`] (the scheduled jobs, their reports
//! and the documents they write), [`weights`] and [`rules`] (what the
//! improvement lifecycle learns and scores). This file wires them into the
//! [`Plugin`] trait.
#![deny(missing_docs)]

pub mod answers;
pub mod config;
pub mod jobs;
pub mod online;
pub mod patterns;
pub mod route;
pub mod routes;
pub mod rules;
pub mod score;
pub mod weights;

use learnloop_plugin_api::core::{RecordType, Role};
use learnloop_plugin_api::{
    Context, Event, JobSpec, KindSpec, Manifest, Plugin, PluginError, QueryParam, Record, RouteRequest, RouteResponse,
    RouteSpec, Schemas, ValidationError, abi, parse_config,
};

use answers::{
    AgentProfile, AgentsAnswer, BoostAnswer, LearningStatus, PatternsAnswer, RecommendationAnswer, RecommendationsPage,
    RulesAnswer, StatsAnswer, TrustedAnswer,
};
use serde_json::{Value, json};

pub use config::{Config, Weights};
pub use online::{Meta, load_agents};

pub(crate) use learnloop_plugin_api::state::{get_doc, put_doc};

/// An RFC 3339 time for a time in µs, `None` when out of range (the
/// answers' and documents' times).
pub(crate) fn time(us: i64) -> Option<String> {
    learnloop_plugin_api::helpers::time_json(us).as_str().map(str::to_string)
}

/// The plugin.
#[derive(Debug, Default)]
pub struct TrustPlugin {
    config: Config,
}

impl TrustPlugin {
    /// The active config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The config with the trust weights in force (the improvement
    /// lifecycle's applied `weights`, else the configured ones) and their
    /// version (0: the configured weights).
    pub fn effective(&self, ctx: &mut dyn Context) -> Result<(Config, u64), PluginError> {
        let mut cfg = self.config.clone();
        match learnloop_plugin_api::applied(ctx, weights::TARGET)? {
            Some(a) => {
                cfg.weights = weights::from_params(Some(&a.params), &self.config)?;
                Ok((cfg, a.version))
            }
            None => Ok((cfg, 0)),
        }
    }
}

/// The routes, their query parameters and the schemas of their bodies and
/// answers (collected in `s`). The handlers parse their own query
/// parameters; these declarations say the same (the host refuses anything
/// else).
fn routes(s: &mut Schemas) -> Vec<RouteSpec> {
    let get = RouteSpec::get;
    vec![
        get("list_agents", "/agents", "Trust scores and stats of every agent, most trusted first")
            .answers(s.output::<AgentsAnswer>()),
        get("get_agent", "/agents/{agent}", "An agent's profile: trust, Beta posterior, trend, strengths and weaknesses by recommendation type")
            .answers(s.output::<AgentProfile>()),
        get("list_agent_recommendations", "/agents/{agent}/recommendations", "An agent's recommendations with their evaluations, oldest first")
            .query(vec![
                QueryParam::string("type", "only recommendations of this type"),
                QueryParam::integer("limit", "recommendations per page (default 50)", 1, 1000),
                QueryParam::string("after", "the previous page's next"),
            ])
            .answers(s.output::<RecommendationsPage>()),
        get("get_recommendation", "/recommendations/{id}", "One recommendation with its evaluations and current status")
            .answers(s.output::<RecommendationAnswer>()),
        get("get_boost", "/agents/{agent}/boost", "Decision boost for an agent and recommendation type")
            .query(vec![QueryParam::string("type", "the recommendation type").required()])
            .answers(s.output::<BoostAnswer>()),
        get("list_trusted", "/trusted", "Agents whose overall trust is at least the threshold")
            .query(vec![QueryParam::number("threshold", "least overall trust (default trusted_threshold)", 0.0, 1.0)])
            .answers(s.output::<TrustedAnswer>()),
        RouteSpec::with_method("POST", Role::Writer, "route", "/route", "Rank candidate agents for a recommendation type and pick one (Thompson sampling or greedy); logs selection probabilities as an insight")
            .body(s.input::<route::RouteBody>())
            .answers(s.output::<route::RouteAnswer>()),
        get("list_patterns", "/patterns", "Discovered patterns")
            .query(vec![QueryParam::one_of("category", "only patterns of this category", &routes::CATEGORIES)])
            .answers(s.output::<PatternsAnswer>()),
        get("list_rules", "/rules", "Decision rules suggested from the patterns, and the routing rules in force")
            .query(vec![QueryParam::string("type", "only rules about this recommendation type (and rules about none)")])
            .answers(s.output::<RulesAnswer>()),
        get("get_learning_status", "/learning/status", "should_trigger_learning_cycle, the last cycle and model accuracy/coverage")
            .answers(s.output::<LearningStatus>()),
        get("get_stats", "/stats", "Statistics of the whole learning system")
            .answers(s.output::<StatsAnswer>()),
    ]
}

impl Plugin for TrustPlugin {
    fn manifest(&self) -> Manifest {
        let mut s = Schemas::new();
        let job = JobSpec::new;
        Manifest {
            name: "trust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns how far to trust each agent of a swarm from how its recommendations were judged (seed 001): trust scores (accuracy, consistency, timeliness, reliability, Beta posteriors with credible intervals, trend), agent profiles, pattern discovery and Thompson-sampling routing.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {
                        "agent_name": {"type": "string"}, "workflow_id": {"type": "string"}, "correlation_id": {"type": "string"},
                        "content": {}, "reasoning": {"type": "string"}, "evidence": {}}}),
                    description: "an agent's recommendation: subject = agent id, kind = recommendation type, confidence in [0, 1]".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {"quality_scores": {"type": "object"}}}),
                    description: "its evaluation: label approved/rejected/partial/pending, success, quality in [0, 1] (= overall quality 0–100 / 100), feedback".into(),
                },
            ],
            routes: routes(&mut s),
            jobs: vec![
                job("meta_learning", "0 0 2 * * *", "Daily learning cycle: pattern discovery over the lookback window, model accuracy and coverage, key insights; also run as soon as GET /learning/status says should_trigger_learning_cycle (learning_trigger_outcomes new evaluations)")
                    .triggered_by("/learning/status", "should_trigger_learning_cycle"),
                job("trust_recalculation", "0 0 */6 * * *", "Every 6 h: recompute every agent's trust (inactivity decay included), record a snapshot, alert on declining agents"),
                job("pattern_refresh", "0 0 1 * * *", "Daily: re-validate patterns and prune those below min_pattern_confidence"),
                job("cleanup", "0 0 3 * * SUN", "Weekly: forget in-flight state of recommendations older than retention_days (never deletes events)"),
            ],
            config: Config::config_keys(),
            schemas: s.into_definitions(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let c: Config = parse_config("trust", section)?;
        c.check()?;
        self.config = c;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Outcome(o) => {
                if let Some(label) = &o.label
                    && !["approved", "rejected", "partial", "pending"].contains(&label.as_str())
                {
                    return Err(ValidationError::new(
                        "label",
                        format!("{label:?} is not a status; expected approved, rejected, partial or pending"),
                    ));
                }
                if let Some(q) = o.quality
                    && !(0.0..=1.0).contains(&q)
                {
                    return Err(ValidationError::new(
                        "quality",
                        "must lie in [0, 1] (overall quality 0–100 divided by 100)",
                    ));
                }
            }
            Record::Prediction(p) => {
                if let Some(c) = p.confidence
                    && !(0.0..=1.0).contains(&c)
                {
                    return Err(ValidationError::new("confidence", "must lie in [0, 1]"));
                }
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        online::on_events(&self.config, ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        jobs::run(self, ctx, job)
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        if (req.method.as_str(), req.route.as_str()) == ("POST", "/route") {
            return route::route(self, ctx, req);
        }
        let (cfg, weights_version) = self.effective(ctx)?;
        routes::handle(self, ctx, req, &cfg, weights_version)
    }

    fn score(
        &self,
        ctx: &mut dyn Context,
        request: &learnloop_plugin_api::ScoreRequest,
    ) -> Result<learnloop_plugin_api::Score, PluginError> {
        match request.target.as_str() {
            weights::TARGET => {
                let newest = Meta::load(ctx)?.newest;
                weights::score(ctx, &self.config, request, newest)
            }
            rules::TARGET => {
                let newest = Meta::load(ctx)?.newest;
                rules::score(ctx, &self.config, request, newest)
            }
            other => Err(PluginError::invalid("target", format!("the trust plugin has no parameter set {other:?}"))),
        }
    }
}

learnloop_plugin_api::export_plugin!(TrustPlugin, TrustPlugin::default);
