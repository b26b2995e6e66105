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
//! Routes (under `/api/v1/drift`): `GET /summary`, `GET /models/{model}/performance`,
//! `GET /models/{model}/drift`, `GET /models/{model}/errors`, `GET /models/{model}/retrain`.
//! Jobs: `daily` (drift check, performance, alerts) and `weekly` (learning report).

#![deny(missing_docs)]

pub mod analysis;
pub mod config;
pub mod online;
pub mod window;

use learnloop_plugin_api::core::RecordType;
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
        writes: false,
        request_schema: Value::Null,
        response_schema: response,
    }
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
        online::load_model(ctx, model)?.ok_or_else(|| PluginError::not_found(format!("no predictions for model {model:?}")))
    }

    /// Reference and current windows ending at the model's newest prediction.
    fn drift_windows(st: &ModelState, reference_days: f64, current_days: f64) -> [(i64, i64); 2] {
        let end = st.newest_us.saturating_add(1);
        let cur_from = end - days_us(current_days);
        [(cur_from - days_us(reference_days), cur_from), (cur_from, end)]
    }

    fn drift_check(
        &self,
        ctx: &mut dyn Context,
        model: &str,
        st: &ModelState,
        reference_days: f64,
        current_days: f64,
        version: Option<&str>,
    ) -> Result<(Value, Value), PluginError> {
        let ranges = Self::drift_windows(st, reference_days, current_days);
        let w = window::load(ctx, model, &ranges, version)?;
        let drift = analysis::drift(&self.config, model, &w[0], &w[1]);
        let perf = analysis::performance(&w[1]);
        Ok((drift, perf))
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

    fn alert(ctx: &mut dyn Context, severity: &str, kind: &str, model: &str, message: String, data: Value) -> Result<(), PluginError> {
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
            let (drift, perf) = self.drift_check(ctx, &name, &st, cfg.reference_days, cfg.current_days, None)?;
            let decision = analysis::retrain(&cfg, &drift, &perf);
            let fd = &drift["feature_drift"];
            let fs = fd["severity"].as_str().unwrap_or("none");
            if fs != "none" {
                alerts += 1;
                Self::alert(ctx, fs, "feature_drift", &name,
                    format!("Feature drift ({fs}) in model {name} on {}. {}", fd["affected_features"], drift["recommendation"].as_str().unwrap_or("")),
                    json!({"affected_features": fd["affected_features"], "severity": fs}))?;
            }
            let cd = &drift["concept_drift"];
            let cs = cd["severity"].as_str().unwrap_or("none");
            if cd["degraded"] == true {
                alerts += 1;
                Self::alert(ctx, cs, "concept_drift", &name,
                    format!("Concept drift ({cs}) in model {name}: absolute error changed by {:.1}% between the reference and current windows.",
                        cd["test"]["performance_change_pct"].as_f64().unwrap_or(0.0)),
                    cd["test"].clone())?;
            }
            let ps = drift["prediction_drift"]["severity"].as_str().unwrap_or("none");
            if ps != "none" {
                alerts += 1;
                Self::alert(ctx, ps, "prediction_drift", &name,
                    format!("Prediction drift ({ps}) in model {name}: mean shift {}.", drift["prediction_drift"]["test"]["mean_shift"]),
                    drift["prediction_drift"]["test"].clone())?;
            }
            if decision["should_retrain"] == true {
                retrain += 1;
                alerts += 1;
                Self::alert(ctx, "high", "retrain_recommended", &name,
                    format!("Retrain model {name}: {}.", decision["reasons"].as_array().map_or(String::new(), |r| r.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))),
                    decision.clone())?;
            }
            if drift["drifted"] == true {
                flagged += 1;
            }
            models.insert(name, json!({
                "severity": drift["severity"], "feature_drift": fs, "affected_features": fd["affected_features"],
                "concept_drift": cs, "prediction_drift": ps,
                "current_window": perf["overall"], "should_retrain": decision["should_retrain"], "reasons": decision["reasons"],
                "recommendation": drift["recommendation"],
            }));
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
                       "predictions": predictions, "outcomes": outcomes},
            "models": models,
        }))
    }

    fn weekly(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let cfg = self.config.clone();
        let mut models = Map::new();
        let mut retrain = 0u64;
        for (name, st) in self.models(ctx)? {
            let (drift, perf) = self.drift_check(ctx, &name, &st, cfg.reference_days, cfg.current_days, None)?;
            let decision = analysis::retrain(&cfg, &drift, &perf);
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
                    "model {name}: MAE {} MAPE {} over the last {} days, drift {}, retrain {}",
                    perf["overall"]["mae"], perf["overall"]["mape"], cfg.current_days, drift["severity"].as_str().unwrap_or("none"),
                    decision["should_retrain"]
                ),
                detail: drift["recommendation"].as_str().unwrap_or("").to_string(),
                confidence: 1.0,
                impact: 0.0,
                data: report.clone(),
            })?;
            models.insert(name, report);
        }
        Ok(json!({
            "job": "weekly: learning report (performance, error analysis, drift, systematic errors, retraining)",
            "subjects": models.len(),
            "totals": {"models": models.len(), "should_retrain": retrain},
            "models": models,
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
            ],
            jobs: vec![
                JobSpec {
                    name: "daily".into(),
                    schedule: "0 0 1 * * *".into(),
                    description: "Drift check of every model, current-window performance, alerts (feature/concept/prediction drift, retraining).".into(),
                },
                JobSpec {
                    name: "weekly".into(),
                    schedule: "0 30 1 * * Mon".into(),
                    description: "Learning report per model: performance, error analysis, drift, systematic errors, retraining recommendation.".into(),
                },
            ],
            config: Config::keys(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let config: Config = parse_config("drift", section)?;
        config.check()?;
        self.config = config;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) if p.value.is_none() && p.label.is_none() => Err(ValidationError::new(
                "value",
                "is required: the model's predicted value (or `label` for a classifier)",
            )),
            Record::Prediction(p) => {
                match p.payload.get("model_version") {
                    None | Some(Value::String(_)) | Some(Value::Number(_)) => {}
                    Some(_) => return Err(ValidationError::new("payload.model_version", "must be a string or a number")),
                }
                for (k, v) in &p.features {
                    if matches!(v, Value::Array(_) | Value::Object(_)) {
                        return Err(ValidationError::new(format!("features.{k}"), "must be a number, string or boolean"));
                    }
                }
                Ok(())
            }
            Record::Outcome(o) if o.value.is_none() && o.label.is_none() => Err(ValidationError::new(
                "value",
                "is required: the actual value (or `label` for a classifier)",
            )),
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
                let (drift, _) = self.drift_check(ctx, model, &st, rd, cd, version)?;
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
                let (drift, perf) = self.drift_check(ctx, model, &st, cfg.reference_days, cfg.current_days, None)?;
                let mut body = analysis::retrain(cfg, &drift, &perf);
                body["model"] = json!(model);
                body["drift_severity"] = drift["severity"].clone();
                body["recommendation"] = drift["recommendation"].clone();
                Ok(RouteResponse::ok(body))
            }
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }
}

learnloop_plugin_api::export_plugin!(DriftPlugin, DriftPlugin::default);
