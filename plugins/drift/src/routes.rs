//! The plugin's routes (under `/api/v1/drift`, listed in the manifest):
//! one handler per route and the typed answer of each. Every answer is a
//! deterministic function of the history and the state, except the
//! creation times the host's clock stamps (A/B tests, pins, retraining
//! requests).

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::{Context, Expect, PluginError, RouteRequest, RouteResponse, Timestamp};
use serde::{Deserialize, Serialize};

use crate::abtest::{self, AbResults, AbTestBody, AbTestCreated, AbTestView, Created};
use crate::analysis::{self, DriftReport, ErrorsReport, Level, Overall, Performance, RetrainDecision, WindowSpan};
use crate::check::{self, DriftBrief, PinnedReference, days_us, reference_key};
use crate::config::Config;
use crate::json::Entries;
use crate::online::{AdwinSummary, ModelState, OnlineMetrics};
use crate::retrain::{self, RetrainRequest};
use crate::service::{self, HealthReport, ServiceCounts};
use crate::weights::{self, WeightsReport};
use crate::window;

/// A model's entry in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelSummary {
    /// The model type.
    pub kind: String,
    /// Predictions seen.
    pub predictions: u64,
    /// Outcomes seen.
    pub outcomes: u64,
    /// Outcomes without a pending prediction.
    pub unmatched_outcomes: u64,
    /// Predictions waiting for an outcome.
    pub pending: u64,
    /// Predictions not kept (`max_pending`).
    pub pending_dropped: u64,
    /// Event time of the newest prediction (RFC 3339).
    pub newest_prediction: Option<Timestamp>,
    /// All-time metrics.
    pub online: OnlineMetrics,
    /// All-time metrics per version (`(none)` without one).
    pub versions: Entries<OnlineMetrics>,
    /// The ADWIN detector.
    pub adwin: AdwinSummary,
}

/// `GET /summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// The workspace.
    pub workspace: String,
    /// Every model.
    pub models: BTreeMap<String, ModelSummary>,
}

/// A period of a route answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Period {
    /// Start (RFC 3339; null out of range).
    pub from: Option<Timestamp>,
    /// End (RFC 3339; null out of range).
    pub until: Option<Timestamp>,
}

impl Period {
    fn of(from: i64, until: i64) -> Self {
        Self { from: Timestamp::from_micros(from), until: Timestamp::from_micros(until) }
    }
}

/// `GET /models/{model}/performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PerformanceAnswer {
    /// The window's performance.
    #[serde(flatten)]
    pub performance: Performance,
    /// The model.
    pub model: String,
    /// The window.
    pub window: Period,
    /// All-time metrics.
    pub online_all_time: OnlineMetrics,
}

/// `GET /models/{model}/errors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorsAnswer {
    /// The window's errors.
    #[serde(flatten)]
    pub errors: ErrorsReport,
    /// The model.
    pub model: String,
}

/// `GET /models/{model}/retrain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainAnswer {
    /// The decision.
    #[serde(flatten)]
    pub decision: RetrainDecision,
    /// The model.
    pub model: String,
    /// The drift check's severity.
    pub drift_severity: Level,
    /// The drift check's recommendation.
    pub recommendation: String,
}

/// The drift check in a retraining request's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceDrift {
    /// The drift check in brief.
    #[serde(flatten)]
    pub brief: DriftBrief,
    /// Its reference window.
    pub reference: analysis::ReferenceSpan,
    /// Its current window.
    pub current: WindowSpan,
}

/// The evidence a retraining request records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// The decision.
    #[serde(flatten)]
    pub decision: RetrainDecision,
    /// The drift check.
    pub drift: EvidenceDrift,
    /// The current window's overall performance.
    pub current_window: Overall,
    /// All-time metrics.
    pub online_all_time: OnlineMetrics,
}

impl Evidence {
    /// The evidence of a drift check of a model.
    pub fn of(c: crate::check::Check, st: &crate::online::ModelState) -> Evidence {
        Evidence {
            drift: EvidenceDrift {
                brief: DriftBrief::of(&c.drift),
                reference: c.drift.reference,
                current: c.drift.current,
            },
            decision: c.decision,
            current_window: c.performance.overall,
            online_all_time: st.totals.metrics(),
        }
    }
}

/// `POST /models/{model}/retrain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerAnswer {
    /// Whether this call recorded it (false: today's was already recorded).
    pub created: bool,
    /// The request.
    pub request: RetrainRequest,
}

/// `GET /retrain/requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestsAnswer {
    /// Newest first.
    pub requests: Vec<RetrainRequest>,
}

/// `GET /models/{model}/weights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeightsAnswer {
    /// The weights.
    #[serde(flatten)]
    pub weights: WeightsReport,
    /// The model.
    pub model: String,
    /// The window.
    pub window: Period,
}

/// The sliding reference window's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sliding {
    /// `reference_days`.
    pub reference_days: f64,
    /// `current_days`.
    pub current_days: f64,
}

/// `GET /models/{model}/reference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceAnswer {
    /// The model.
    pub model: String,
    /// The pinned period (null: the sliding window).
    pub pinned: Option<PinnedReference>,
    /// The sliding window.
    pub sliding: Sliding,
}

/// `PUT /models/{model}/reference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PinAnswer {
    /// The model.
    pub model: String,
    /// The pinned period.
    pub pinned: PinnedReference,
}

/// `DELETE /models/{model}/reference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnpinAnswer {
    /// The model.
    pub model: String,
    /// Whether a period was pinned.
    pub unpinned: bool,
}

/// The body of `POST /models/{model}/retrain` (optional: no body is `{}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrainBody {
    /// Why the caller asks (at most 2000 characters).
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub reason: Option<String>,
}

/// The body of `PUT /models/{model}/reference`: the period to pin.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// Start (inclusive, RFC 3339); must be before `until`.
    pub from: Timestamp,
    /// End (exclusive, RFC 3339).
    pub until: Timestamp,
}

/// `GET /ab_tests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AbTestsAnswer {
    /// Every test, in id order.
    pub tests: Vec<AbTestView>,
}

/// `GET /ab_tests/{test}/assign`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    /// The test.
    pub test: String,
    /// The unit.
    pub unit: String,
    /// The arm's index.
    pub arm: usize,
    /// The arm's version.
    pub version: String,
    /// The unit's hash as a fraction in [0, 1).
    pub fraction: f64,
    /// The test's split.
    pub split: Vec<f64>,
}

/// `GET /services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServicesAnswer {
    /// Every monitored service.
    pub services: BTreeMap<String, ServiceCounts>,
}

fn ok<T: Serialize>(answer: &T) -> Result<RouteResponse, PluginError> {
    Ok(RouteResponse::ok(serde_json::to_value(answer)?))
}

/// A query parameter as a number of days in (0, 36500] (errors name it).
fn days_param(req: &RouteRequest, name: &str, default: f64) -> Result<f64, PluginError> {
    let d = req.query_f64(name, default, 0.0, 36_500.0)?;
    if d <= 0.0 {
        return Err(PluginError::invalid(name, "must be a positive number of days"));
    }
    Ok(d)
}

/// A query parameter as an RFC 3339 time (µs).
fn time_param(req: &RouteRequest, name: &str) -> Result<Option<i64>, PluginError> {
    match req.query_str(name) {
        None => Ok(None),
        Some(s) => Timestamp::parse(name, s).map(|t| Some(t.as_micros())).map_err(PluginError::from),
    }
}

/// The route's window: `from`/`until`, by default the last
/// `performance_days` up to the model's newest prediction.
fn window_range(cfg: &Config, req: &RouteRequest, st: &ModelState) -> Result<(i64, i64), PluginError> {
    let until = time_param(req, "until")?.unwrap_or(st.newest_us.saturating_add(1));
    let from = time_param(req, "from")?.unwrap_or(until - days_us(cfg.performance_days));
    if from >= until {
        return Err(PluginError::invalid("from", "must be before `until`"));
    }
    Ok((from, until))
}

/// Answers a request to one of the plugin's routes.
pub fn handle(cfg: &Config, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
    let version = req.query_str("version");
    match (req.method.as_str(), req.route.as_str()) {
        ("GET", "/summary") => ok(&summary(ctx)?),
        ("GET", "/models/{model}/performance") => {
            let model = req.param("model")?;
            let st = check::model(ctx, model)?;
            let (from, until) = window_range(cfg, req, &st)?;
            let w = window::load(ctx, model, &[(from, until)], version)?;
            ok(&PerformanceAnswer {
                performance: analysis::performance(&w[0]),
                model: model.to_string(),
                window: Period::of(from, until),
                online_all_time: st.totals.metrics(),
            })
        }
        ("GET", "/models/{model}/drift") => {
            let model = req.param("model")?;
            let st = check::model(ctx, model)?;
            let rd = days_param(req, "reference_days", cfg.reference_days)?;
            let cd = days_param(req, "current_days", cfg.current_days)?;
            let use_pinned = match req.query_str("reference") {
                None | Some("pinned") => true,
                Some("window") => false,
                Some(other) => {
                    return Err(PluginError::invalid("reference", format!("{other:?} is not `pinned` or `window`")));
                }
            };
            let drift: DriftReport = check::run(cfg, ctx, model, &st, rd, cd, version, use_pinned)?.drift;
            ok(&drift)
        }
        ("GET", "/models/{model}/errors") => {
            let model = req.param("model")?;
            let st = check::model(ctx, model)?;
            let (from, until) = window_range(cfg, req, &st)?;
            let w = window::load(ctx, model, &[(from, until)], version)?;
            ok(&ErrorsAnswer { errors: analysis::errors(cfg, &w[0]), model: model.to_string() })
        }
        ("GET", "/models/{model}/retrain") => {
            let model = req.param("model")?;
            let st = check::model(ctx, model)?;
            let c = check::run(cfg, ctx, model, &st, cfg.reference_days, cfg.current_days, None, true)?;
            ok(&RetrainAnswer {
                decision: c.decision,
                model: model.to_string(),
                drift_severity: c.drift.severity,
                recommendation: c.drift.recommendation,
            })
        }
        ("POST", "/models/{model}/retrain") => trigger_retrain(cfg, ctx, req),
        ("GET", "/retrain/requests") => {
            let limit = req.query_usize("limit", 100, 1000)?;
            ok(&RequestsAnswer { requests: retrain::list(ctx, req.query_str("model"), limit)? })
        }
        ("GET", "/models/{model}/weights") => {
            let model = req.param("model")?;
            let st = check::model(ctx, model)?;
            let (from, until) = window_range(cfg, req, &st)?;
            let w = window::load(ctx, model, &[(from, until)], version)?;
            ok(&WeightsAnswer {
                weights: weights::weights(cfg, &w[0]),
                model: model.to_string(),
                window: Period::of(from, until),
            })
        }
        ("GET", "/models/{model}/reference") => {
            let model = req.param("model")?;
            check::model(ctx, model)?;
            ok(&ReferenceAnswer {
                model: model.to_string(),
                pinned: check::pinned(ctx, model)?,
                sliding: Sliding { reference_days: cfg.reference_days, current_days: cfg.current_days },
            })
        }
        ("PUT", "/models/{model}/reference") => {
            let model = req.param("model")?;
            let body: PinBody = req.body_as()?;
            ok(&PinAnswer { model: model.to_string(), pinned: pin_reference(cfg, ctx, model, body)? })
        }
        ("DELETE", "/models/{model}/reference") => {
            let model = req.param("model")?;
            let existed = match ctx.get_state(&reference_key(model))? {
                Some(s) => {
                    ctx.delete_state(&reference_key(model), Expect::Version(s.version))?;
                    true
                }
                None => false,
            };
            ok(&UnpinAnswer { model: model.to_string(), unpinned: existed })
        }
        ("POST", "/ab_tests") => {
            let now = ctx.now().as_micros();
            let t = abtest::AbTest::from_body(cfg, req.body_as::<AbTestBody>()?, now)?;
            let (created, t) = abtest::create(ctx, &t)?;
            let answer: AbTestCreated = t.view(now, Created(created));
            ok(&answer)
        }
        ("GET", "/ab_tests") => {
            let now = ctx.now().as_micros();
            ok(&AbTestsAnswer { tests: abtest::list(ctx)?.iter().map(|t| t.describe(now)).collect() })
        }
        ("GET", "/ab_tests/{test}") => {
            let t = abtest::load(ctx, req.param("test")?)?;
            let results: AbResults = abtest::results(cfg, ctx, &t)?;
            ok(&results)
        }
        ("GET", "/ab_tests/{test}/assign") => {
            let t = abtest::load(ctx, req.param("test")?)?;
            let unit = req
                .query_str("unit")
                .filter(|u| !u.is_empty())
                .ok_or_else(|| PluginError::invalid("unit", "is required: the unit id to assign"))?;
            let arm = t.assign(unit);
            ok(&Assignment {
                test: t.id.clone(),
                unit: unit.to_string(),
                arm,
                version: t.versions[arm].clone(),
                fraction: abtest::unit_fraction(&t.id, unit),
                split: t.split.clone(),
            })
        }
        ("GET", "/services") => {
            let services = service::list(ctx)?.into_iter().map(|(k, s)| (k, s.counts())).collect();
            ok(&ServicesAnswer { services })
        }
        ("GET", "/services/{service}/health") => {
            let name = req.param("service")?;
            let st: service::ServiceState = match ctx.get_state(&service::key(name))? {
                Some(s) => serde_json::from_value(s.value)?,
                None => return Err(PluginError::not_found(format!("no samples for service {name:?}"))),
            };
            let until = time_param(req, "until")?.unwrap_or(st.newest_us.saturating_add(1));
            let from = time_param(req, "from")?.unwrap_or(until - (cfg.service_hours * 3.6e9).round() as i64);
            if from >= until {
                return Err(PluginError::invalid("from", "must be before `until`"));
            }
            let health: HealthReport = service::health(cfg, ctx, name, from, until)?;
            ok(&health)
        }
        _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
    }
}

fn summary(ctx: &mut dyn Context) -> Result<Summary, PluginError> {
    let mut models = BTreeMap::new();
    for (name, st) in check::models(ctx)? {
        let versions = st
            .versions
            .iter()
            .map(|(v, t)| (if v.is_empty() { "(none)".to_string() } else { v.clone() }, t.metrics()))
            .collect();
        models.insert(
            name,
            ModelSummary {
                kind: st.kind.clone(),
                predictions: st.predictions,
                outcomes: st.outcomes,
                unmatched_outcomes: st.unmatched,
                pending: st.pending,
                pending_dropped: st.pending_dropped,
                newest_prediction: Timestamp::from_micros(st.newest_us),
                online: st.totals.metrics(),
                versions,
                adwin: AdwinSummary {
                    error_increases: st.error_increases,
                    error_decreases: st.error_decreases,
                    window: st.adwin.width(),
                    mean_abs_error: st.adwin.mean(),
                },
            },
        );
    }
    Ok(Summary { workspace: ctx.workspace().to_string(), models })
}

fn trigger_retrain(cfg: &Config, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
    let model = req.param("model")?;
    // No body is an empty one.
    let body: RetrainBody = if req.body.is_null() { RetrainBody::default() } else { req.body_as()? };
    if body.reason.as_ref().is_some_and(|r| r.chars().count() > 2000) {
        return Err(PluginError::invalid("reason", "must be a string of at most 2000 characters"));
    }
    let reason = body.reason;
    let st = check::model(ctx, model)?;
    let c = check::run(cfg, ctx, model, &st, cfg.reference_days, cfg.current_days, None, true)?;
    let should_retrain = c.decision.should_retrain;
    let evidence = Evidence::of(c, &st);
    let (created, request) = retrain::trigger(ctx, model, reason, should_retrain, &evidence)?;
    ok(&TriggerAnswer { created, request })
}

fn pin_reference(
    cfg: &Config,
    ctx: &mut dyn Context,
    model: &str,
    body: PinBody,
) -> Result<PinnedReference, PluginError> {
    let (from, until) = (body.from.as_micros(), body.until.as_micros());
    if from >= until {
        return Err(PluginError::invalid("from", "must be before `until`"));
    }
    check::model(ctx, model)?;
    let w = window::load(ctx, model, &[(from, until)], None)?;
    if w[0].n < cfg.min_samples {
        return Err(PluginError::invalid(
            "from",
            format!(
                "the period holds {} predictions of model {model:?}, fewer than min_samples = {}",
                w[0].n, cfg.min_samples
            ),
        ));
    }
    let doc = PinnedReference {
        model: model.to_string(),
        from_us: from,
        until_us: until,
        from: Timestamp::from_micros(from),
        until: Timestamp::from_micros(until),
        predictions: w[0].n,
        pinned_at: ctx.now().to_rfc3339(),
    };
    ctx.put_state(&reference_key(model), serde_json::to_value(&doc)?, Expect::Any)?;
    Ok(doc)
}
