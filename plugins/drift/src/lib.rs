//! The `drift` plugin: monitors ML models (seed 004).
//!
//! * **Online** ([`online`]): every prediction is kept (bounded) until its
//!   outcome arrives; each outcome gets its error (`actual − predicted`) and
//!   error % and feeds all-time totals per model and per
//!   `payload.model_version`, and ADWIN on the absolute error, which raises an
//!   `online_error_increase` alert when the error grows.
//! * **Windows** ([`window`]): the routes and jobs read history in pages:
//!   predictions by event time, joined with their first outcomes. Windows
//!   are relative to the model's newest prediction event time, never the wall
//!   clock, so every answer is a deterministic function of the history.
//! * **Statistics** ([`analysis`]): performance (MAE, RMSE, R², MAPE), feature /
//!   concept / prediction drift with Benjamini–Hochberg adjusted p-values and
//!   documented severity thresholds, error distribution and systematic errors
//!   per segment (Holm adjusted), the retraining decision. All from
//!   `learnloop-stats`.
//!
//! * **A/B tests** ([`abtest`]): versions of a model compared on the same
//!   period, deterministic unit assignment, SRM check, winner.
//! * **Retraining requests** ([`retrain`]): recorded with their evidence,
//!   once per model and day. **Feature weights** ([`weights`]).
//! * **Service monitoring** ([`service`]): latency/error/memory samples per
//!   endpoint, p50/p95/p99 per window, slow endpoints, leaks, health score.
//!
//! Routes (under `/api/v1/drift`) are listed in the manifest and README.
//! Jobs: `daily` (drift check, performance, alerts, service health) and
//! `weekly` (learning report with A/B conclusions).

#![deny(missing_docs)]

pub mod abtest;
pub mod analysis;
pub mod config;
pub mod online;
pub mod retrain;
pub mod service;
pub mod weights;
pub mod window;

use learnloop_plugin_api::core::{RecordType, Role};
use learnloop_plugin_api::{
    AlertDraft, Context, Event, InsightDraft, JobSpec, KindSpec, Manifest, Plugin, PluginError, Record, RouteRequest,
    RouteResponse, RouteSpec, Severity, Timestamp, ValidationError, abi, parse_config,
};
use serde_json::{Map, Value, json};

pub use config::Config;
use online::ModelState;

const DAY_US: f64 = 86_400_000_000.0;

/// The plugin.
#[derive(Debug, Default)]
pub struct DriftPlugin {
    config: Config,
}

fn route(method: &str, path: &str, summary: &str, response: Value) -> RouteSpec {
    RouteSpec {
        method: method.into(),
        path: path.into(),
        summary: summary.into(),
        role: Role::Reader,
        request_schema: Value::Null,
        response_schema: response,
    }
}

fn write_route(method: &str, path: &str, summary: &str, request: Value) -> RouteSpec {
    RouteSpec { role: Role::Writer, request_schema: request, ..route(method, path, summary, json!({"type": "object"})) }
}

/// A pinned reference period of a model (state `reference/<model>`).
fn reference_key(model: &str) -> String {
    format!("reference/{model}")
}

fn body_time(body: &Value, name: &str) -> Result<i64, PluginError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(Timestamp::parse(name, s).map_err(PluginError::from)?.as_micros()),
        _ => Err(PluginError::invalid(name, "is required: an RFC 3339 time")),
    }
}

fn ts_json(us: i64) -> Value {
    Timestamp::from_micros(us).map(|t| json!(t.to_rfc3339())).unwrap_or(Value::Null)
}

fn days_us(d: f64) -> i64 {
    (d * DAY_US).round() as i64
}

/// A query parameter as a number of days (errors name it).
fn days_param(req: &RouteRequest, name: &str, default: f64) -> Result<f64, PluginError> {
    match req.query.get(name) {
        None => Ok(default),
        Some(s) => match s.parse::<f64>() {
            Ok(d) if d.is_finite() && d > 0.0 && d <= 36_500.0 => Ok(d),
            _ => Err(PluginError::invalid(name, format!("{s:?} is not a number of days in (0, 36500]"))),
        },
    }
}

fn time_param(req: &RouteRequest, name: &str) -> Result<Option<i64>, PluginError> {
    match req.query.get(name) {
        None => Ok(None),
        Some(s) => Timestamp::parse(name, s).map(|t| Some(t.as_micros())).map_err(PluginError::from),
    }
}

impl DriftPlugin {
    fn model(&self, ctx: &mut dyn Context, model: &str) -> Result<ModelState, PluginError> {
        online::load_model(ctx, model)?
            .ok_or_else(|| PluginError::not_found(format!("no predictions for model {model:?}")))
    }

    /// Reference and current windows ending at the model's newest prediction.
    fn drift_windows(st: &ModelState, reference_days: f64, current_days: f64) -> [(i64, i64); 2] {
        let end = st.newest_us.saturating_add(1);
        let cur_from = end - days_us(current_days);
        [(cur_from - days_us(reference_days), cur_from), (cur_from, end)]
    }

    /// The model's pinned reference period, if any.
    fn pinned(ctx: &mut dyn Context, model: &str) -> Result<Option<(i64, i64)>, PluginError> {
        Ok(ctx
            .get_state(&reference_key(model))?
            .and_then(|s| Some((s.value["from_us"].as_i64()?, s.value["until_us"].as_i64()?))))
    }

    /// The drift check: the pinned reference set when the model has one
    /// (and `use_pinned`), else the sliding reference window.
    #[allow(clippy::too_many_arguments)]
    fn drift_check(
        &self,
        ctx: &mut dyn Context,
        model: &str,
        st: &ModelState,
        reference_days: f64,
        current_days: f64,
        version: Option<&str>,
        use_pinned: bool,
    ) -> Result<(Value, Value, Value), PluginError> {
        let ranges = Self::drift_windows(st, reference_days, current_days);
        let pinned = if use_pinned { Self::pinned(ctx, model)? } else { None };
        let (r, c) = match pinned {
            None => {
                let mut w = window::load(ctx, model, &ranges, version)?;
                let c = w.pop().unwrap_or_default();
                (w.pop().unwrap_or_default(), c)
            }
            Some(p) => {
                let r = window::load(ctx, model, &[p], version)?.pop().unwrap_or_default();
                (r, window::load(ctx, model, &ranges[1..], version)?.pop().unwrap_or_default())
            }
        };
        let mut drift = analysis::drift(&self.config, model, &r, &c);
        let perf = analysis::performance(&c);
        let decision = analysis::retrain(&self.config, &r, &c, &drift);
        drift["reference"]["pinned"] = json!(pinned.is_some());
        drift["reference"]["from"] = ts_json(drift["reference"]["from_us"].as_i64().unwrap_or(0));
        drift["reference"]["until"] = ts_json(drift["reference"]["until_us"].as_i64().unwrap_or(0));
        Ok((drift, perf, decision))
    }

    fn pin_reference(&self, ctx: &mut dyn Context, model: &str, body: &Value) -> Result<Value, PluginError> {
        if !body.is_object() {
            return Err(PluginError::invalid("body", "must be a JSON object with `from` and `until`"));
        }
        if let Some(k) = body.as_object().and_then(|o| o.keys().find(|k| *k != "from" && *k != "until")) {
            return Err(PluginError::invalid(k.as_str(), "unknown field (expected from, until)"));
        }
        let (from, until) = (body_time(body, "from")?, body_time(body, "until")?);
        if from >= until {
            return Err(PluginError::invalid("from", "must be before `until`"));
        }
        self.model(ctx, model)?;
        let w = window::load(ctx, model, &[(from, until)], None)?;
        if w[0].n < self.config.min_samples {
            return Err(PluginError::invalid(
                "from",
                format!(
                    "the period holds {} predictions of model {model:?}, fewer than min_samples = {}",
                    w[0].n, self.config.min_samples
                ),
            ));
        }
        let doc = json!({"model": model, "from_us": from, "until_us": until, "from": ts_json(from), "until": ts_json(until),
                         "predictions": w[0].n, "pinned_at": ctx.now().to_rfc3339()});
        ctx.put_state(&reference_key(model), doc.clone(), learnloop_plugin_api::Expect::Any)?;
        Ok(doc)
    }

    fn window_range(&self, req: &RouteRequest, st: &ModelState) -> Result<(i64, i64), PluginError> {
        let until = time_param(req, "until")?.unwrap_or(st.newest_us.saturating_add(1));
        let from = time_param(req, "from")?.unwrap_or(until - days_us(self.config.performance_days));
        if from >= until {
            return Err(PluginError::invalid("from", "must be before `until`"));
        }
        Ok((from, until))
    }

    fn models(&self, ctx: &mut dyn Context) -> Result<Vec<(String, ModelState)>, PluginError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = ctx.scan_state("model/", after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (k, s) in page {
                out.push((k.trim_start_matches("model/").to_string(), serde_json::from_value(s.value)?));
            }
        }
        Ok(out)
    }

    fn summary(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let mut models = Map::new();
        for (name, st) in self.models(ctx)? {
            let versions: Map<String, Value> = st
                .versions
                .iter()
                .map(|(v, t)| (if v.is_empty() { "(none)".to_string() } else { v.clone() }, t.metrics()))
                .collect();
            models.insert(
                name,
                json!({
                    "kind": st.kind, "predictions": st.predictions, "outcomes": st.outcomes,
                    "unmatched_outcomes": st.unmatched, "pending": st.pending, "pending_dropped": st.pending_dropped,
                    "newest_prediction": Timestamp::from_micros(st.newest_us).map(|t| t.to_rfc3339()),
                    "online": st.totals.metrics(), "versions": versions,
                    "adwin": {"error_increases": st.error_increases, "error_decreases": st.error_decreases,
                              "window": st.adwin.width(), "mean_abs_error": st.adwin.mean()},
                }),
            );
        }
        Ok(json!({"workspace": ctx.workspace(), "models": models}))
    }

    fn alert(
        ctx: &mut dyn Context,
        severity: &str,
        kind: &str,
        model: &str,
        message: String,
        data: Value,
    ) -> Result<(), PluginError> {
        let severity = match severity {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            _ => Severity::Low,
        };
        ctx.emit_alert(AlertDraft {
            severity,
            kind: kind.into(),
            subject: model.into(),
            message,
            dedup_key: format!("{kind}/{model}"),
            data,
        })
    }

    fn daily(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let cfg = self.config.clone();
        let mut models = Map::new();
        let (mut flagged, mut alerts, mut retrain, mut predictions, mut outcomes) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for (name, st) in self.models(ctx)? {
            predictions += st.predictions;
            outcomes += st.outcomes;
            let (drift, perf, decision) =
                self.drift_check(ctx, &name, &st, cfg.reference_days, cfg.current_days, None, true)?;
            let fd = &drift["feature_drift"];
            let fs = fd["severity"].as_str().unwrap_or("none");
            if fs != "none" {
                alerts += 1;
                Self::alert(
                    ctx,
                    fs,
                    "feature_drift",
                    &name,
                    format!(
                        "Feature drift ({fs}) in model {name} on {}. {}",
                        fd["affected_features"],
                        drift["recommendation"].as_str().unwrap_or("")
                    ),
                    json!({"affected_features": fd["affected_features"], "severity": fs}),
                )?;
            }
            let cd = &drift["concept_drift"];
            let cs = cd["severity"].as_str().unwrap_or("none");
            if cd["degraded"] == true {
                alerts += 1;
                Self::alert(
                    ctx,
                    cs,
                    "concept_drift",
                    &name,
                    format!(
                        "Concept drift ({cs}) in model {name}: absolute error changed by {:.1}% between the reference and current windows.",
                        cd["test"]["performance_change_pct"].as_f64().unwrap_or(0.0)
                    ),
                    cd["test"].clone(),
                )?;
            }
            let ps = drift["prediction_drift"]["severity"].as_str().unwrap_or("none");
            if ps != "none" {
                alerts += 1;
                Self::alert(
                    ctx,
                    ps,
                    "prediction_drift",
                    &name,
                    format!(
                        "Prediction drift ({ps}) in model {name}: mean shift {}.",
                        drift["prediction_drift"]["test"]["mean_shift"]
                    ),
                    drift["prediction_drift"]["test"].clone(),
                )?;
            }
            if decision["should_retrain"] == true {
                retrain += 1;
                alerts += 1;
                Self::alert(
                    ctx,
                    "high",
                    "retrain_recommended",
                    &name,
                    format!(
                        "Retrain model {name}: {}.",
                        decision["reasons"].as_array().map_or(String::new(), |r| r
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join("; "))
                    ),
                    decision.clone(),
                )?;
            }
            if drift["drifted"] == true {
                flagged += 1;
            }
            // Each feature's test in brief (raw and BH-adjusted p, PSI): why it was or was not flagged.
            let feature_tests: Map<String, Value> = fd["tests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Some((
                        t["name"].as_str()?.to_string(),
                        json!({"p_value": t["p_value"], "q_value": t["q_value"], "psi": t["psi"]}),
                    ))
                })
                .collect();
            models.insert(name, json!({
                "severity": drift["severity"], "feature_drift": fs, "affected_features": fd["affected_features"],
                "feature_tests": feature_tests,
                "concept_drift": cs, "concept_degraded": cd["degraded"], "prediction_drift": ps,
                "current_window": perf["overall"], "should_retrain": decision["should_retrain"], "reasons": decision["reasons"],
                "retrain_blocked_by": decision["blocked_by"],
                "recommendation": drift["recommendation"],
            }));
        }
        let mut services = Map::new();
        for (name, st) in service::list(ctx)? {
            let until = st.newest_us.saturating_add(1);
            let h = service::health(&cfg, ctx, &name, until - (cfg.service_hours * 3.6e9).round() as i64, until)?;
            for s in h["slow_endpoints"].as_array().cloned().unwrap_or_default() {
                let ep = s["endpoint"].as_str().unwrap_or("");
                alerts += 1;
                Self::alert(
                    ctx,
                    "medium",
                    "slow_endpoint",
                    &format!("{name} {ep}"),
                    s["suggestion"].as_str().unwrap_or("").to_string(),
                    s.clone(),
                )?;
            }
            if h["memory"]["leak_suspected"] == true {
                alerts += 1;
                Self::alert(
                    ctx,
                    "high",
                    "memory_leak",
                    &name,
                    format!(
                        "Service {name}: memory grew by {:.0} MB over {:.1} h (threshold {} MB): possible leak.",
                        h["memory"]["fitted_growth_mb"].as_f64().unwrap_or(0.0),
                        h["memory"]["span_hours"].as_f64().unwrap_or(0.0),
                        cfg.memory_leak_mb
                    ),
                    h["memory"].clone(),
                )?;
            }
            if h["error_rate"].as_f64().unwrap_or(0.0) > cfg.max_error_rate {
                alerts += 1;
                Self::alert(
                    ctx,
                    "high",
                    "service_error_rate",
                    &name,
                    format!(
                        "Service {name}: error rate {:.1}% is above {:.1}%.",
                        100.0 * h["error_rate"].as_f64().unwrap_or(0.0),
                        100.0 * cfg.max_error_rate
                    ),
                    json!({"error_rate": h["error_rate"], "samples": h["samples"]}),
                )?;
            }
            services.insert(name, json!({"health": h["health"], "error_rate": h["error_rate"], "slow_endpoints": h["slow_endpoints"].as_array().map_or(0, Vec::len),
                                         "leak_suspected": h["memory"]["leak_suspected"]}));
        }
        let n = models.len();
        ctx.emit_insight(InsightDraft {
            kind: "daily_drift_check".into(),
            title: format!("drift: {flagged} of {n} models drifted, {retrain} should be retrained"),
            detail: String::new(),
            confidence: 1.0,
            impact: 0.0,
            data: json!({"models": models}),
        })?;
        Ok(json!({
            "job": "daily: drift check (reference vs current window), current-window performance, alerts",
            "subjects": n,
            "totals": {"models": n, "drifted": flagged, "should_retrain": retrain, "alerts_raised": alerts,
                       "predictions": predictions, "outcomes": outcomes, "services": services.len()},
            "models": models,
            "services": services,
        }))
    }

    fn weekly(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let cfg = self.config.clone();
        let mut models = Map::new();
        let mut retrain = 0u64;
        for (name, st) in self.models(ctx)? {
            let (drift, perf, decision) =
                self.drift_check(ctx, &name, &st, cfg.reference_days, cfg.current_days, None, true)?;
            let ranges = Self::drift_windows(&st, cfg.reference_days, cfg.current_days);
            let w = window::load(ctx, &name, &ranges[1..], None)?;
            let errs = analysis::errors(&cfg, &w[0]);
            retrain += u64::from(decision["should_retrain"] == true);
            let report = json!({
                "performance": perf, "online_all_time": st.totals.metrics(),
                "error_distribution": errs["distribution"],
                "systematic_errors": errs["systematic_errors"]["systematic"],
                "drift": {"severity": drift["severity"], "feature_drift": drift["feature_drift"]["severity"],
                          "affected_features": drift["feature_drift"]["affected_features"],
                          "concept_drift": drift["concept_drift"]["severity"], "prediction_drift": drift["prediction_drift"]["severity"],
                          "recommendation": drift["recommendation"]},
                "retrain": {"should_retrain": decision["should_retrain"], "reasons": decision["reasons"]},
            });
            ctx.emit_insight(InsightDraft {
                kind: "learning_report".into(),
                title: format!(
                    "model {name}: MAE {} WAPE {} MAPE {} over the last {} days, drift {}, retrain {}",
                    perf["overall"]["mae"],
                    perf["overall"]["wape"],
                    perf["overall"]["mape"],
                    cfg.current_days,
                    drift["severity"].as_str().unwrap_or("none"),
                    decision["should_retrain"]
                ),
                detail: drift["recommendation"].as_str().unwrap_or("").to_string(),
                confidence: 1.0,
                impact: 0.0,
                data: report.clone(),
            })?;
            models.insert(name, report);
        }
        let mut ab = Map::new();
        for t in abtest::list(ctx)? {
            let r = abtest::results(&cfg, ctx, &t)?;
            let n: u64 = r["arms"].as_array().map_or(0, |a| a.iter().filter_map(|x| x["n"].as_u64()).sum());
            ctx.emit_insight(InsightDraft {
                kind: "ab_test_conclusion".into(),
                title: format!("A/B test {} of model {}: {}", t.id, t.model, r["winner"].as_str().map_or("no winner yet".into(), |w| format!("version {w} wins"))),
                detail: r["conclusion"].as_str().unwrap_or("").to_string(),
                confidence: t.confidence,
                impact: 0.0,
                data: json!({"test": t.id, "winner": r["winner"], "matched_outcomes": n, "sample_ratio_mismatch": r["sample_ratio_mismatch"]["mismatch"]}),
            })?;
            ab.insert(
                t.id.clone(),
                json!({"model": t.model, "status": r["status"], "winner": r["winner"], "conclusion": r["conclusion"],
                                           "arms": r["arms"], "sample_ratio_mismatch": r["sample_ratio_mismatch"]}),
            );
        }
        Ok(json!({
            "job": "weekly: learning report (performance, error analysis, drift, systematic errors, retraining, A/B conclusions)",
            "subjects": models.len(),
            "totals": {"models": models.len(), "should_retrain": retrain, "ab_tests": ab.len(),
                       "ab_winners": ab.values().filter(|v| !v["winner"].is_null()).count()},
            "models": models,
            "ab_tests": ab,
        }))
    }
}

impl Plugin for DriftPlugin {
    fn manifest(&self) -> Manifest {
        let obj = json!({"type": "object"});
        Manifest {
            name: "drift".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Monitors ML models: online error and ADWIN per model, performance (MAE, RMSE, R², MAPE) per model/version/window, feature/concept/prediction drift (KS, chi-square, PSI, Wasserstein, Welch t-test, BH-adjusted), error analysis with systematic segments, retraining decisions.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {"model_version": {"type": ["string", "number"]}}}),
                    description: "a model's prediction: subject = model id, kind = model type, value (or label) = the prediction, features = numeric and categorical inputs".into(),
                },
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![service::KIND.into()],
                    payload_schema: json!({"type": "object", "required": ["endpoint"], "properties": {
                        "endpoint": {"type": "string"}, "error": {"type": "boolean"}, "status_code": {"type": "integer"}, "memory_mb": {"type": "number"}}}),
                    description: "a monitored service's sample: subject = service, kind = service_sample, value = latency in ms, payload.endpoint, error/status_code, memory_mb".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: obj.clone(),
                    description: "the actual value (or label) of a prediction".into(),
                },
            ],
            routes: vec![
                route("GET", "/summary", "Every model's online counters, all-time error metrics per version and ADWIN state", obj.clone()),
                route("GET", "/models/{model}/performance", "MAE, RMSE, R², MAPE, n in a window (query: from, until, version; default the last performance_days)", obj.clone()),
                route("GET", "/models/{model}/drift", "Feature, concept and prediction drift: reference vs current window (query: reference_days, current_days, version)", obj.clone()),
                route("GET", "/models/{model}/errors", "Error distribution and systematic errors per segment (query: from, until, version)", obj.clone()),
                route("GET", "/models/{model}/retrain", "Whether to retrain, with the reasons", obj.clone()),
                write_route("POST", "/models/{model}/retrain", "Record a retraining request with its evidence, at most one per model and UTC day (a repeat returns the first, created: false)",
                    json!({"type": "object", "properties": {"reason": {"type": "string"}}})),
                route("GET", "/retrain/requests", "Recorded retraining requests, newest first (query: model, limit <= 1000, default 100)", obj.clone()),
                route("GET", "/models/{model}/weights", "Feature weights: correlation of each numeric feature with the actual and with the error, and their trend over time buckets (query: from, until, version)", obj.clone()),
                route("GET", "/models/{model}/reference", "The model's pinned reference period for feature drift (null when it uses the sliding window)", obj.clone()),
                write_route("PUT", "/models/{model}/reference", "Pin a reference period for the model's drift checks (body: from, until)",
                    json!({"type": "object", "required": ["from", "until"], "properties": {"from": {"type": "string"}, "until": {"type": "string"}}})),
                write_route("DELETE", "/models/{model}/reference", "Unpin: back to the sliding reference window", Value::Null),
                write_route("POST", "/ab_tests", "Create an A/B test of model versions (body: id, model, versions, split, duration_days, start, confidence)",
                    json!({"type": "object", "required": ["id", "model", "versions"], "properties": {
                        "id": {"type": "string"}, "model": {"type": "string"}, "versions": {"type": "array", "items": {"type": ["string", "number"]}},
                        "split": {"type": ["array", "number"]}, "duration_days": {"type": "number"}, "start": {"type": "string"}, "confidence": {"type": "number"}}})),
                route("GET", "/ab_tests", "Every A/B test with its status", obj.clone()),
                route("GET", "/ab_tests/{test}", "An A/B test's results: per-arm MAE, RMSE, MAPE, n; Welch t-tests; sample-ratio mismatch; the winner or why there is none yet", obj.clone()),
                route("GET", "/ab_tests/{test}/assign", "The arm (model version) of a unit id, deterministic (query: unit)", obj.clone()),
                route("GET", "/services", "Monitored services (service_sample records) with their counters", obj.clone()),
                route("GET", "/services/{service}/health", "A service's latency p50/p95/p99 per endpoint and per window, slow endpoints, error rate, memory growth, health score 0-100 (query: from, until)", obj.clone()),
            ],
            jobs: vec![
                JobSpec {
                    name: "daily".into(),
                    schedule: "0 0 1 * * *".into(),
                    description: "Drift check of every model, current-window performance, alerts (feature/concept/prediction drift, retraining); health of every monitored service, alerts (slow endpoints, memory leak, error rate).".into(),
                },
                JobSpec {
                    name: "weekly".into(),
                    schedule: "0 30 1 * * Mon".into(),
                    description: "Learning report per model: performance, error analysis, drift, systematic errors, retraining recommendation; A/B test conclusions.".into(),
                },
            ],
            config: Config::keys(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        if section.get("mape_threshold").is_some() {
            return Err(PluginError::invalid(
                "[drift] mape_threshold",
                "is no longer used: retraining compares each model's current error with its own reference error by a one-sided test (see retrain_min_error_increase); remove the key",
            ));
        }
        let config: Config = parse_config("drift", section)?;
        config.check()?;
        self.config = config;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) if p.kind == service::KIND => service::validate(p),
            Record::Prediction(p) if p.value.is_none() && p.label.is_none() => Err(ValidationError::new(
                "value",
                "is required: the model's predicted value (or `label` for a classifier)",
            )),
            Record::Prediction(p) => {
                match p.payload.get("model_version") {
                    None | Some(Value::String(_)) | Some(Value::Number(_)) => {}
                    Some(_) => {
                        return Err(ValidationError::new("payload.model_version", "must be a string or a number"));
                    }
                }
                for (k, v) in &p.features {
                    if matches!(v, Value::Array(_) | Value::Object(_)) {
                        return Err(ValidationError::new(
                            format!("features.{k}"),
                            "must be a number, string or boolean",
                        ));
                    }
                }
                Ok(())
            }
            Record::Outcome(o) if o.value.is_none() && o.label.is_none() => {
                Err(ValidationError::new("value", "is required: the actual value (or `label` for a classifier)"))
            }
            _ => Ok(()),
        }
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        online::absorb(&self.config, ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "daily" => self.daily(ctx),
            "weekly" => self.weekly(ctx),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let cfg = &self.config;
        let version = req.query.get("version").map(String::as_str);
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/summary") => Ok(RouteResponse::ok(self.summary(ctx)?)),
            ("GET", "/models/{model}/performance") => {
                let model = req.param("model")?;
                let st = self.model(ctx, model)?;
                let (from, until) = self.window_range(req, &st)?;
                let w = window::load(ctx, model, &[(from, until)], version)?;
                let mut body = analysis::performance(&w[0]);
                body["model"] = json!(model);
                body["window"] = json!({"from": Timestamp::from_micros(from).map(|t| t.to_rfc3339()), "until": Timestamp::from_micros(until).map(|t| t.to_rfc3339())});
                body["online_all_time"] = st.totals.metrics();
                Ok(RouteResponse::ok(body))
            }
            ("GET", "/models/{model}/drift") => {
                let model = req.param("model")?;
                let st = self.model(ctx, model)?;
                let rd = days_param(req, "reference_days", cfg.reference_days)?;
                let cd = days_param(req, "current_days", cfg.current_days)?;
                let use_pinned = match req.query.get("reference").map(String::as_str) {
                    None | Some("pinned") => true,
                    Some("window") => false,
                    Some(other) => {
                        return Err(PluginError::invalid(
                            "reference",
                            format!("{other:?} is not `pinned` or `window`"),
                        ));
                    }
                };
                let (drift, _, _) = self.drift_check(ctx, model, &st, rd, cd, version, use_pinned)?;
                Ok(RouteResponse::ok(drift))
            }
            ("GET", "/models/{model}/errors") => {
                let model = req.param("model")?;
                let st = self.model(ctx, model)?;
                let (from, until) = self.window_range(req, &st)?;
                let w = window::load(ctx, model, &[(from, until)], version)?;
                let mut body = analysis::errors(cfg, &w[0]);
                body["model"] = json!(model);
                Ok(RouteResponse::ok(body))
            }
            ("GET", "/models/{model}/retrain") => {
                let model = req.param("model")?;
                let st = self.model(ctx, model)?;
                let (drift, _perf, mut body) =
                    self.drift_check(ctx, model, &st, cfg.reference_days, cfg.current_days, None, true)?;
                body["model"] = json!(model);
                body["drift_severity"] = drift["severity"].clone();
                body["recommendation"] = drift["recommendation"].clone();
                Ok(RouteResponse::ok(body))
            }
            ("POST", "/models/{model}/retrain") => {
                let model = req.param("model")?;
                let reason = match req.body.get("reason") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.len() <= 2000 => Some(s.clone()),
                    Some(_) => {
                        return Err(PluginError::invalid("reason", "must be a string of at most 2000 characters"));
                    }
                };
                if !(req.body.is_null() || req.body.is_object()) {
                    return Err(PluginError::invalid("body", "must be a JSON object (or empty)"));
                }
                let st = self.model(ctx, model)?;
                let (drift, perf, mut evidence) =
                    self.drift_check(ctx, model, &st, cfg.reference_days, cfg.current_days, None, true)?;
                evidence["drift"] = json!({"severity": drift["severity"], "feature_drift": drift["feature_drift"]["severity"],
                    "affected_features": drift["feature_drift"]["affected_features"], "concept_drift": drift["concept_drift"]["severity"],
                    "prediction_drift": drift["prediction_drift"]["severity"], "recommendation": drift["recommendation"],
                    "reference": drift["reference"], "current": drift["current"]});
                evidence["current_window"] = perf["overall"].clone();
                evidence["online_all_time"] = st.totals.metrics();
                let (created, request) = retrain::trigger(ctx, model, reason, evidence)?;
                Ok(RouteResponse::ok(json!({"created": created, "request": request})))
            }
            ("GET", "/retrain/requests") => {
                let limit =
                    match req.query.get("limit") {
                        None => 100,
                        Some(s) => s.parse::<usize>().ok().filter(|l| (1..=1000).contains(l)).ok_or_else(|| {
                            PluginError::invalid("limit", format!("{s:?} is not an integer in 1..=1000"))
                        })?,
                    };
                let requests = retrain::list(ctx, req.query.get("model").map(String::as_str), limit)?;
                Ok(RouteResponse::ok(json!({"requests": requests})))
            }
            ("GET", "/models/{model}/weights") => {
                let model = req.param("model")?;
                let st = self.model(ctx, model)?;
                let (from, until) = self.window_range(req, &st)?;
                let w = window::load(ctx, model, &[(from, until)], version)?;
                let mut body = weights::weights(cfg, &w[0]);
                body["model"] = json!(model);
                body["window"] = json!({"from": ts_json(from), "until": ts_json(until)});
                Ok(RouteResponse::ok(body))
            }
            ("GET", "/models/{model}/reference") => {
                let model = req.param("model")?;
                self.model(ctx, model)?;
                let pinned = ctx.get_state(&reference_key(model))?.map(|s| s.value);
                Ok(RouteResponse::ok(json!({"model": model, "pinned": pinned,
                    "sliding": {"reference_days": cfg.reference_days, "current_days": cfg.current_days}})))
            }
            ("PUT", "/models/{model}/reference") => {
                let model = req.param("model")?;
                Ok(RouteResponse::ok(json!({"model": model, "pinned": self.pin_reference(ctx, model, &req.body)?})))
            }
            ("DELETE", "/models/{model}/reference") => {
                let model = req.param("model")?;
                let existed = match ctx.get_state(&reference_key(model))? {
                    Some(s) => {
                        ctx.delete_state(&reference_key(model), learnloop_plugin_api::Expect::Version(s.version))?;
                        true
                    }
                    None => false,
                };
                Ok(RouteResponse::ok(json!({"model": model, "unpinned": existed})))
            }
            ("POST", "/ab_tests") => {
                let now = ctx.now().as_micros();
                let t = abtest::AbTest::from_body(cfg, &req.body, now)?;
                let (created, t) = abtest::create(ctx, &t)?;
                let mut body = t.describe(now);
                body["created"] = json!(created);
                Ok(RouteResponse::ok(body))
            }
            ("GET", "/ab_tests") => {
                let now = ctx.now().as_micros();
                let tests: Vec<Value> = abtest::list(ctx)?.iter().map(|t| t.describe(now)).collect();
                Ok(RouteResponse::ok(json!({"tests": tests})))
            }
            ("GET", "/ab_tests/{test}") => {
                let t = abtest::load(ctx, req.param("test")?)?;
                Ok(RouteResponse::ok(abtest::results(cfg, ctx, &t)?))
            }
            ("GET", "/ab_tests/{test}/assign") => {
                let t = abtest::load(ctx, req.param("test")?)?;
                let unit = req
                    .query
                    .get("unit")
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| PluginError::invalid("unit", "is required: the unit id to assign"))?;
                let arm = t.assign(unit);
                Ok(RouteResponse::ok(json!({"test": t.id, "unit": unit, "arm": arm, "version": t.versions[arm],
                    "fraction": abtest::unit_fraction(&t.id, unit), "split": t.split})))
            }
            ("GET", "/services") => {
                let services: Map<String, Value> = service::list(ctx)?
                    .into_iter()
                    .map(|(k, s)| {
                        (
                            k,
                            json!({"samples": s.samples, "errors": s.errors,
                        "oldest_sample": ts_json(s.oldest_us), "newest_sample": ts_json(s.newest_us)}),
                        )
                    })
                    .collect();
                Ok(RouteResponse::ok(json!({"services": services})))
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
                Ok(RouteResponse::ok(service::health(cfg, ctx, name, from, until)?))
            }
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }
}

learnloop_plugin_api::export_plugin!(DriftPlugin, DriftPlugin::default);
