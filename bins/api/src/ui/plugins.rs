//! The plugin pages: Drift, Trust, Cost, Persona. Every number is a plugin
//! route's answer ([`super::plugin_call`]), the same JSON
//! `GET /api/v1/<plugin>/...` returns.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use learnloop_core::Timestamp;
use serde_json::{Value, json};

use super::html::{Html, num};
use super::pages::{kv_list, link, short_json};
use super::{Ctx, UiError, UiState, page, plugin_call, svg};
use crate::ui_w;

type Page = Result<Response, UiError>;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn error_box(h: &mut Html, what: &str, e: &crate::ApiError) {
    ui_w!(h, "<p class=\"flash bad\">{}: {}</p>", what, e.detail);
}

fn sev_badge(h: &mut Html, sev: &str) {
    let sev = if sev.is_empty() { "none" } else { sev };
    ui_w!(h, "<span class=\"badge {}\">{}</span>", sev, sev);
}

/// `/ui/drift`: models with their latest severity; one model in detail.
pub async fn drift(State(st): State<UiState>, ctx: Ctx) -> Page {
    let mut h = Html::new();
    let summary = plugin_call(&st, &ctx, "drift", "GET", "/summary", &[], Value::Null).await?;
    // The latest severity per model: the newest daily drift check's report.
    let checks = crate::routes::findings::insights(
        State(st.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[("plugin", "drift"), ("kind", "daily_drift_check"), ("limit", "1")])),
    )
    .await?
    .0
    .insights;
    let latest = checks.first();
    let models: Vec<String> = summary["models"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    h.lit("<section><h2>Models</h2><table id=\"models\"><thead><tr><th>model</th><th>kind</th><th class=\"n\">predictions</th><th class=\"n\">outcomes</th><th class=\"n\">MAE (all time)</th><th>latest severity</th><th>retrain?</th></tr></thead><tbody>");
    for m in &models {
        let sm = &summary["models"][m];
        let check = latest.map(|i| &i.data["models"][m]).filter(|v| !v.is_null());
        ui_w!(
            h,
            "<tr data-model=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>",
            m,
            link(&ctx, "/ui/drift", &[("model", m)]),
            m,
            s(&sm["kind"]),
            s(&sm["predictions"]),
            s(&sm["outcomes"]),
            num(f(&sm["online"]["mae"]), 4)
        );
        match check {
            Some(c) => sev_badge(&mut h, &s(&c["severity"])),
            None => h.lit("not checked yet"),
        }
        h.lit("</td><td>");
        match check.map(|c| c["should_retrain"].as_bool()) {
            Some(Some(true)) => h.lit("<strong>yes</strong>"),
            Some(Some(false)) => h.lit("no"),
            _ => h.lit("—"),
        }
        h.lit("</td></tr>");
    }
    h.lit("</tbody></table>");
    if let Some(i) = latest {
        ui_w!(h, "<p class=\"hint\">Severity and retraining from the drift check of {}.</p>", i.created_at);
    }
    h.lit("</section>");
    let model = if ctx.q("model").is_empty() {
        models.first().cloned().unwrap_or_default()
    } else {
        ctx.q("model").to_string()
    };
    if !model.is_empty() {
        model_detail(&st, &ctx, &model, &summary["models"][&model], &mut h).await;
    }
    ab_tests(&st, &ctx, &mut h).await;
    Ok(page(&st, &ctx, "Drift", h).await)
}

async fn model_detail(st: &UiState, ctx: &Ctx, model: &str, summary: &Value, h: &mut Html) {
    let enc = form_urlencoded::byte_serialize(model.as_bytes()).collect::<String>();
    ui_w!(h, "<section id=\"model-detail\" data-model=\"{}\"><h2>Model {}</h2>", model, model);
    // Error over time: the performance route over the eight weeks up to the newest prediction.
    let newest = summary["newest_prediction"].as_str().and_then(|t| Timestamp::parse("t", t).ok());
    if let Some(end) = newest {
        let week = 7 * 86_400_000_000i64;
        let end = end.add_micros(1);
        let mut mae = Vec::new();
        let mut rmse = Vec::new();
        let mut mape = Vec::new();
        let mut labels = Vec::new();
        for i in (0..8).rev() {
            let (from, until) = (end.add_micros(-(i + 1) * week), end.add_micros(-i * week));
            let (fs, us) = (from.to_rfc3339(), until.to_rfc3339());
            let Ok(p) = plugin_call(
                st,
                ctx,
                "drift",
                "GET",
                &format!("/models/{enc}/performance"),
                &[("from", &fs), ("until", &us)],
                Value::Null,
            )
            .await
            else {
                continue;
            };
            let o = &p["overall"];
            if o["n"].as_u64().unwrap_or(0) == 0 {
                continue;
            }
            let x = (8 - i) as f64;
            labels.push((x, us.chars().take(10).collect::<String>()));
            mae.push((x, f(&o["mae"])));
            rmse.push((x, f(&o["rmse"])));
            if o["mape"].is_number() {
                mape.push((x, f(&o["mape"])));
            }
        }
        if mae.is_empty() {
            h.lit("<p class=\"empty\">No matched outcomes in the eight weeks up to the newest prediction.</p>");
        } else {
            h.lit("<h3>Error per week</h3>");
            h.push(&svg::lines(
                "MAE and RMSE per week (up to the newest prediction)",
                &[("MAE".to_string(), "s1", mae), ("RMSE".to_string(), "s2", rmse)],
                &labels,
            ));
            if !mape.is_empty() {
                h.push(&svg::lines("MAPE % per week", &[("MAPE %".to_string(), "s3", mape)], &labels));
            }
            h.lit("<p class=\"hint\">Each point: <code>GET /api/v1/drift/models/MODEL/performance?from=&amp;until=</code> for the week ending that day.</p>");
        }
    }
    // Feature, concept and prediction drift, live.
    match plugin_call(st, ctx, "drift", "GET", &format!("/models/{enc}/drift"), &[], Value::Null).await {
        Ok(d) => {
            h.lit("<h3>Drift now</h3><p>Overall ");
            sev_badge(h, &s(&d["severity"]));
            ui_w!(
                h,
                " — reference {} to {} ({} predictions) vs current ({} predictions). {}</p>",
                s(&d["reference"]["from"]),
                s(&d["reference"]["until"]),
                s(&d["reference"]["predictions"]),
                s(&d["current"]["predictions"]),
                s(&d["recommendation"])
            );
            h.lit("<table id=\"feature-drift\"><thead><tr><th>feature</th><th>test</th><th class=\"n\">statistic</th><th class=\"n\">p-value</th><th class=\"n\">BH q-value</th><th>drifted</th><th>severity</th><th class=\"n\">PSI</th><th>reference → current</th></tr></thead><tbody>");
            let tests = d["feature_drift"]["tests"].as_array().cloned().unwrap_or_default();
            for t in &tests {
                ui_w!(
                    h,
                    "<tr><td class=\"feature\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>",
                    s(&t["name"]),
                    s(&t["test"]),
                    num(f(&t["statistic"]), 4),
                    format!("{:.3e}", f(&t["p_value"])),
                    format!("{:.3e}", f(&t["q_value"])),
                    if t["drifted"].as_bool() == Some(true) { "yes" } else { "no" }
                );
                sev_badge(h, &s(&t["severity"]));
                ui_w!(h, "</td><td class=\"n\">{}</td><td>", num(f(&t["psi"]), 3));
                if t["mean_reference"].is_number() {
                    ui_w!(h, "mean {} → {}", num(f(&t["mean_reference"]), 3), num(f(&t["mean_current"]), 3));
                } else if t["proportions"].is_object() {
                    ui_w!(h, "{} categories", s(&t["categories"]));
                }
                h.lit("</td></tr>");
            }
            h.lit("</tbody></table>");
            // The distribution of a chosen categorical feature (the test carries its shares).
            let chosen = ctx.q("feature");
            let cat = tests
                .iter()
                .filter(|t| t["proportions"].is_object())
                .find(|t| chosen.is_empty() || t["name"] == chosen)
                .or_else(|| tests.iter().find(|t| t["proportions"].is_object()));
            if let Some(t) = cat {
                let bins: Vec<(String, f64, f64)> = t["proportions"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), f(&v["reference"]), f(&v["current"]))).collect())
                    .unwrap_or_default();
                ui_w!(h, "<h3>Feature {}: reference vs current shares</h3>", s(&t["name"]));
                h.push(&svg::overlay(&format!("{}: reference vs current", s(&t["name"])), &bins));
            }
            h.lit("<table><thead><tr><th>check</th><th>test</th><th class=\"n\">statistic</th><th class=\"n\">p-value</th><th>severity</th><th>detail</th></tr></thead><tbody>");
            for (name, key) in [("concept drift", "concept_drift"), ("prediction drift", "prediction_drift")] {
                let t = &d[key]["test"];
                ui_w!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>",
                    name,
                    s(&t["test"]),
                    num(f(&t["statistic"]), 4),
                    format!("{:.3e}", f(&t["p_value"]))
                );
                sev_badge(h, &s(&d[key]["severity"]));
                h.lit("</td><td>");
                if t["performance_change_pct"].is_number() {
                    ui_w!(
                        h,
                        "MAE {} → {} ({}%)",
                        num(f(&t["mae_reference"]), 3),
                        num(f(&t["mae_current"]), 3),
                        num(f(&t["performance_change_pct"]), 1)
                    );
                } else if t["mean_shift"].is_number() {
                    ui_w!(h, "mean shift {}", num(f(&t["mean_shift"]), 3));
                }
                h.lit("</td></tr>");
            }
            h.lit("</tbody></table>");
        }
        Err(e) => error_box(h, "drift", &e),
    }
    // The retraining decision and requests.
    match plugin_call(st, ctx, "drift", "GET", &format!("/models/{enc}/retrain"), &[], Value::Null).await {
        Ok(r) => {
            ui_w!(
                h,
                "<h3>Retraining</h3><p id=\"retrain\">Should retrain: <strong>{}</strong>. {}</p>",
                if r["should_retrain"].as_bool() == Some(true) { "yes" } else { "no" },
                s(&r["blocked_by"])
            );
            if let Some(reasons) = r["reasons"].as_array().filter(|a| !a.is_empty()) {
                h.lit("<ul>");
                for x in reasons {
                    ui_w!(h, "<li>{}</li>", short_json(x));
                }
                h.lit("</ul>");
            }
        }
        Err(e) => error_box(h, "retraining decision", &e),
    }
    if let Ok(r) = plugin_call(st, ctx, "drift", "GET", "/retrain/requests", &[("model", model)], Value::Null).await {
        let reqs = r["requests"].as_array().cloned().unwrap_or_default();
        ui_w!(h, "<p>{} retraining request(s) recorded.</p>", reqs.len());
        for q in reqs.iter().take(10) {
            kv_list(h, q);
        }
    }
    h.lit("</section>");
}

async fn ab_tests(st: &UiState, ctx: &Ctx, h: &mut Html) {
    let Ok(list) = plugin_call(st, ctx, "drift", "GET", "/ab_tests", &[], Value::Null).await else { return };
    let tests = list["tests"].as_array().cloned().unwrap_or_default();
    h.lit("<section><h2>A/B tests</h2>");
    if tests.is_empty() {
        h.lit("<p class=\"empty\">No A/B tests defined.</p>");
    }
    for t in &tests {
        let id = s(&t["id"]);
        let enc = form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        ui_w!(h, "<h3>{} <span class=\"hint\">{} · {}</span></h3>", id, s(&t["model"]), s(&t["status"]));
        match plugin_call(st, ctx, "drift", "GET", &format!("/ab_tests/{enc}"), &[], Value::Null).await {
            Ok(r) => {
                h.lit("<table><thead><tr><th>version</th><th class=\"n\">split</th><th class=\"n\">predictions</th><th class=\"n\">n</th><th class=\"n\">MAE</th><th class=\"n\">RMSE</th><th class=\"n\">MAPE %</th></tr></thead><tbody>");
                for a in r["arms"].as_array().cloned().unwrap_or_default() {
                    ui_w!(
                        h,
                        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                        s(&a["version"]),
                        num(f(&a["split"]), 2),
                        s(&a["predictions"]),
                        s(&a["n"]),
                        num(f(&a["mae"]), 4),
                        num(f(&a["rmse"]), 4),
                        num(f(&a["mape"]), 2)
                    );
                }
                ui_w!(
                    h,
                    "</tbody></table><p>Winner: <strong class=\"winner\">{}</strong>. {}</p>",
                    if r["winner"].is_null() { "none yet".to_string() } else { s(&r["winner"]) },
                    s(&r["conclusion"])
                );
            }
            Err(e) => error_box(h, "A/B test", &e),
        }
    }
    h.lit("</section>");
}

/// `/ui/trust`: the leaderboard with credible intervals, one agent per type,
/// patterns and rules.
pub async fn trust(State(st): State<UiState>, ctx: Ctx) -> Page {
    let mut h = Html::new();
    let agents = plugin_call(&st, &ctx, "trust", "GET", "/agents", &[], Value::Null).await?;
    let list = agents["agents"].as_array().cloned().unwrap_or_default();
    let rows: Vec<(String, f64, f64, f64)> = list
        .iter()
        .map(|a| {
            let ci = &a["bayesian"]["credible_interval"];
            (s(&a["agent_id"]), f(&a["bayesian"]["mean"]), f(&ci[0]), f(&ci[1]))
        })
        .collect();
    h.lit("<section><h2>Leaderboard</h2>");
    if rows.is_empty() {
        h.lit("<p class=\"empty\">No agents yet.</p>");
    } else {
        h.push(&svg::intervals(
            "approval probability per agent: posterior mean and 95% credible interval",
            &rows,
            None,
        ));
    }
    h.lit("<table id=\"agents\"><thead><tr><th>#</th><th>agent</th><th class=\"n\">trust</th><th class=\"n\">approval (posterior)</th><th>95% interval</th><th class=\"n\">evaluated</th><th>trend</th><th>strength</th></tr></thead><tbody>");
    for (i, a) in list.iter().enumerate() {
        let id = s(&a["agent_id"]);
        let ci = &a["bayesian"]["credible_interval"];
        ui_w!(
            h,
            "<tr data-agent=\"{}\"><td>{}</td><td class=\"agent\"><a href=\"{}\">{}</a></td><td class=\"n trust\">{}</td><td class=\"n\">{}</td><td>[{}, {}]</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            id,
            i + 1,
            link(&ctx, "/ui/trust", &[("agent", &id)]),
            id,
            num(f(&a["overall_trust_score"]), 4),
            num(f(&a["bayesian"]["mean"]), 3),
            num(f(&ci[0]), 3),
            num(f(&ci[1]), 3),
            s(&a["stats"]["evaluated"]),
            s(&a["trend"]),
            s(&a["recommendation_strength"])
        );
    }
    h.lit("</tbody></table></section>");
    let agent = if ctx.q("agent").is_empty() {
        list.first().map(|a| s(&a["agent_id"])).unwrap_or_default()
    } else {
        ctx.q("agent").to_string()
    };
    if !agent.is_empty() {
        let enc = form_urlencoded::byte_serialize(agent.as_bytes()).collect::<String>();
        ui_w!(h, "<section id=\"agent-detail\"><h2>Agent {} by recommendation type</h2>", agent);
        match plugin_call(&st, &ctx, "trust", "GET", &format!("/agents/{enc}"), &[], Value::Null).await {
            Ok(p) => {
                let by: Vec<(String, f64, f64, f64)> = p["by_type"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let ci = &v["bayesian"]["credible_interval"];
                                (k.clone(), f(&v["bayesian"]["mean"]), f(&ci[0]), f(&ci[1]))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if !by.is_empty() {
                    h.push(&svg::intervals("approval per recommendation type", &by, None));
                }
                h.lit("<table><thead><tr><th>type</th><th class=\"n\">trust</th><th class=\"n\">approval</th><th class=\"n\">evaluated</th></tr></thead><tbody>");
                if let Some(m) = p["by_type"].as_object() {
                    for (k, v) in m {
                        ui_w!(
                            h,
                            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                            k,
                            num(f(&v["overall_trust_score"]), 3),
                            num(f(&v["bayesian"]["mean"]), 3),
                            s(&v["stats"]["evaluated"])
                        );
                    }
                }
                h.lit("</tbody></table>");
                for (name, key) in [("Strengths", "strengths"), ("Weaknesses", "weaknesses")] {
                    let items = p[key].as_array().cloned().unwrap_or_default();
                    ui_w!(h, "<p><strong>{}:</strong> ", name);
                    if items.is_empty() {
                        h.lit("none");
                    }
                    for (i, it) in items.iter().enumerate() {
                        ui_w!(
                            h,
                            "{}{} ({})",
                            if i > 0 { ", " } else { "" },
                            s(&it["recommendation_type"]),
                            num(f(&it["approval"]), 2)
                        );
                    }
                    h.lit("</p>");
                }
            }
            Err(e) => error_box(&mut h, "agent", &e),
        }
        h.lit("</section>");
    }
    // Patterns and rules.
    h.lit("<section><h2>Patterns</h2>");
    match plugin_call(&st, &ctx, "trust", "GET", "/patterns", &[], Value::Null).await {
        Ok(p) => {
            let pats = p["patterns"].as_array().cloned().unwrap_or_default();
            if pats.is_empty() {
                h.lit("<p class=\"empty\">No patterns discovered in the latest window.</p>");
            }
            h.lit("<table id=\"patterns\"><tbody>");
            for x in &pats {
                h.lit("<tr><td>");
                kv_list(&mut h, x);
                h.lit("</td></tr>");
            }
            h.lit("</tbody></table>");
        }
        Err(e) => error_box(&mut h, "patterns", &e),
    }
    h.lit("</section><section><h2>Rules</h2>");
    match plugin_call(&st, &ctx, "trust", "GET", "/rules", &[], Value::Null).await {
        Ok(r) => {
            ui_w!(h, "<p>Routing rules in force: version {}.</p>", s(&r["rules_version"]));
            for (name, key) in [("In force", "in_force"), ("Suggested", "rules")] {
                let items = r[key].as_array().cloned().unwrap_or_default();
                ui_w!(h, "<h3>{} ({})</h3>", name, items.len());
                for x in &items {
                    kv_list(&mut h, x);
                }
            }
        }
        Err(e) => error_box(&mut h, "rules", &e),
    }
    h.lit("</section>");
    // Routing decisions: the `route_decision` insights `POST /route` records.
    let decisions = crate::routes::findings::insights(
        State(st.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[("plugin", "trust"), ("kind", "route_decision"), ("limit", "20")])),
    )
    .await?
    .0
    .insights;
    ui_w!(h, "<section><h2>Routing decisions <span class=\"count\">{}</span></h2>", decisions.len());
    if decisions.is_empty() {
        h.lit("<p class=\"empty\">No routing decisions yet (<code>POST /api/v1/trust/route</code> records one per call).</p>");
    } else {
        h.lit("<table id=\"routing\"><thead><tr><th>when</th><th>type</th><th>strategy</th><th>pick</th><th class=\"n\">its probability</th></tr></thead><tbody>");
        for d in &decisions {
            ui_w!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                d.created_at,
                s(&d.data["recommendation_type"]),
                s(&d.data["strategy"]),
                s(&d.data["pick"]),
                num(d.confidence, 3)
            );
        }
        h.lit("</tbody></table>");
    }
    h.lit("</section>");
    Ok(page(&st, &ctx, "Trust", h).await)
}

/// `/ui/cost`: predicted vs realised, calibration, success, and the assess form.
pub async fn cost(State(st): State<UiState>, ctx: Ctx) -> Page {
    let h = cost_body(&st, &ctx, None).await?;
    Ok(page(&st, &ctx, "Cost", h).await)
}

/// `POST /ui/cost/assess`: `POST /api/v1/cost/assess` with the form's fields.
pub async fn assess(State(st): State<UiState>, ctx: Ctx, body: Bytes) -> Page {
    let form = ctx.form(&body)?;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut b = json!({
        "recommendation_type": get("recommendation_type"),
        "resource_type": get("resource_type"),
        "region": get("region"),
        "similar_cases": 5,
    });
    match get("predicted_savings").trim().parse::<f64>() {
        Ok(x) => b["predicted_savings"] = json!(x),
        Err(_) => b["predicted_savings"] = json!(get("predicted_savings")),
    }
    let risk = get("risk_level");
    if !risk.is_empty() {
        b["risk_level"] = json!(risk);
    }
    let answer = plugin_call(&st, &ctx, "cost", "POST", "/assess", &[], b).await;
    let h = cost_body(&st, &ctx, Some((form, answer))).await?;
    Ok(page(&st, &ctx, "Cost", h).await)
}

type Assessed = (std::collections::BTreeMap<String, String>, Result<Value, crate::ApiError>);

async fn cost_body(st: &UiState, ctx: &Ctx, assessed: Option<Assessed>) -> Result<Html, UiError> {
    let mut h = Html::new();
    let acc = plugin_call(st, ctx, "cost", "GET", "/accuracy", &[], Value::Null).await?;
    h.lit("<section class=\"cards\">");
    for (id, label, v, digits) in [
        ("cost-recommendations", "recommendations", &acc["recommendations"], 0),
        ("cost-success-rate", "success rate", &acc["success_rate"], 3),
        ("cost-roi-accuracy", "ROI accuracy (Σ actual / Σ predicted)", &acc["roi_accuracy"], 3),
        ("cost-holdout-error", "held-out error, calibrated", &acc["calibrated_error_on_holdout"], 3),
        ("cost-raw-error", "held-out error, raw", &acc["raw_error_on_holdout"], 3),
    ] {
        ui_w!(h, "<div class=\"card\"><span class=\"big\" id=\"{}\">{}</span> {}</div>", id, num(f(v), digits), label);
    }
    h.lit("</section>");
    // Predicted vs realised.
    let outs =
        plugin_call(st, ctx, "cost", "GET", "/outcomes", &[("measured", "true"), ("limit", "1000")], Value::Null)
            .await?;
    let points: Vec<(f64, f64, String)> = outs["outcomes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["actual_savings"].is_number())
                .map(|o| (f(&o["predicted_savings"]), f(&o["actual_savings"]), s(&o["recommendation_id"])))
                .collect()
        })
        .unwrap_or_default();
    ui_w!(
        h,
        "<section><h2>Predicted vs realised savings <span class=\"count\" id=\"scatter-count\">{}</span></h2>",
        points.len()
    );
    h.push(&svg::scatter_identity("predicted vs realised savings", "predicted", "realised", &points));
    h.lit("<p class=\"hint\">On the line: realised exactly as predicted; below it: less than predicted. The first 1000 measured outcomes.</p></section>");
    // Calibration per type and region (the parameters in force).
    let params = plugin_call(st, ctx, "cost", "GET", "/params", &[], Value::Null).await?;
    let cal = &params["params"]["calibration"];
    h.lit("<section><h2>Calibration in force</h2>");
    ui_w!(
        h,
        "<p>Version {}; shrinkage {}; overall mean log(actual / predicted) {} over {} outcomes (factor {}).</p>",
        s(&params["versions"]["calibration"]),
        s(&cal["shrinkage"]),
        num(f(&cal["global"]["mean"]), 3),
        s(&cal["global"]["n"]),
        num(f(&cal["global"]["mean"]).exp(), 3)
    );
    let groups: Vec<(String, &Value)> = cal["calibration"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.matches('|').count() <= 1).map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default();
    if !groups.is_empty() {
        h.lit("<table id=\"calibration\"><thead><tr><th>type | region</th><th class=\"n\">outcomes</th><th class=\"n\">mean log ratio</th><th class=\"n\">factor (raw)</th></tr></thead><tbody>");
        for (k, v) in &groups {
            ui_w!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                k,
                s(&v["n"]),
                num(f(&v["mean"]), 3),
                num(f(&v["mean"]).exp(), 3)
            );
        }
        h.lit("</tbody></table><p class=\"hint\">The factor an estimate uses is shrunk toward the broader group (see the assess form for one with its interval).</p>");
    }
    h.lit("</section>");
    // Success per type and per region.
    for by in ["type", "region"] {
        if let Ok(r) = plugin_call(st, ctx, "cost", "GET", "/success-rates", &[("by", by)], Value::Null).await {
            ui_w!(
                h,
                "<section><h2>Success and accuracy by {}</h2><table><thead><tr><th>{}</th><th class=\"n\">recommendations</th><th class=\"n\">success rate</th><th class=\"n\">savings accuracy</th><th class=\"n\">ROI accuracy</th></tr></thead><tbody>",
                by,
                by
            );
            if let Some(m) = r["groups"].as_object() {
                for (k, g) in m {
                    ui_w!(
                        h,
                        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                        k,
                        s(&g["recommendations"]),
                        num(f(&g["success_rate"]), 3),
                        num(f(&g["avg_savings_accuracy"]), 3),
                        num(f(&g["roi_accuracy"]), 3)
                    );
                }
            }
            h.lit("</tbody></table></section>");
        }
    }
    // The assess form and its answer.
    let (form, answer) = match assessed {
        Some((f, a)) => (f, Some(a)),
        None => (Default::default(), None),
    };
    let get = |k: &str, d: &str| form.get(k).cloned().unwrap_or_else(|| d.to_string());
    ui_w!(
        h,
        "<section><h2>Assess a recommendation</h2><form method=\"post\" action=\"/ui/cost/assess{}\" class=\"filters\" id=\"assess\">",
        ctx.wsq()
    );
    h.push(&ctx.csrf_field());
    for (name, label, default) in [
        ("recommendation_type", "type", "rightsizing"),
        ("resource_type", "resource type", "ec2"),
        ("region", "region", "us-east-1"),
        ("predicted_savings", "predicted savings", "800"),
        ("risk_level", "risk level (optional)", ""),
    ] {
        ui_w!(h, "<label>{} <input type=\"text\" name=\"{}\" value=\"{}\"></label>", label, name, get(name, default));
    }
    h.lit("<button type=\"submit\">Assess</button></form>");
    match answer {
        Some(Ok(a)) => {
            ui_w!(
                h,
                "<p id=\"assessment\">Calibrated savings <strong>{}</strong> (factor {}, {}% interval {} – {}), probability of success {}, expected {}; risk {} → {}; basis {} with {} outcome(s).</p>",
                num(f(&a["calibrated_savings"]), 2),
                num(f(&a["calibration_factor"]), 3),
                num(f(&a["interval"]["level"]) * 100.0, 0),
                num(f(&a["interval"]["lower"]), 2),
                num(f(&a["interval"]["upper"]), 2),
                num(f(&a["probability_of_success"]), 3),
                num(f(&a["expected_monthly_savings"]), 2),
                s(&a["stated_risk_level"]),
                s(&a["updated_risk_level"]),
                s(&a["basis"]),
                s(&a["evidence"])
            );
            h.lit("<table><thead><tr><th>similar case</th><th class=\"n\">similarity</th><th>success</th><th class=\"n\">predicted</th><th class=\"n\">realised</th></tr></thead><tbody>");
            for c in a["similar_cases"].as_array().cloned().unwrap_or_default() {
                ui_w!(
                    h,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    s(&c["recommendation_id"]),
                    num(f(&c["similarity_score"]), 4),
                    s(&c["outcome"]["success"]),
                    num(f(&c["outcome"]["predicted_savings"]), 2),
                    num(f(&c["outcome"]["actual_savings"]), 2)
                );
            }
            h.lit("</tbody></table>");
        }
        Some(Err(e)) => error_box(&mut h, "assess", &e),
        None => {}
    }
    h.lit("</section>");
    Ok(h)
}

/// `/ui/persona`: users, one user's facets, goals, preferences and preferred models.
pub async fn persona(State(st): State<UiState>, ctx: Ctx) -> Page {
    let mut h = Html::new();
    let users = plugin_call(&st, &ctx, "persona", "GET", "/users", &[], Value::Null).await?;
    let stats = plugin_call(&st, &ctx, "persona", "GET", "/stats", &[], Value::Null).await?;
    let list = users["users"].as_array().cloned().unwrap_or_default();
    ui_w!(
        h,
        "<section class=\"cards\"><div class=\"card\"><span class=\"big\" id=\"persona-users\">{}</span> users</div><div class=\"card\"><span class=\"big\">{}</span> interactions</div><div class=\"card\"><span class=\"big\" id=\"persona-accuracy\">{}</span> held-out preference accuracy (target {})</div></section>",
        s(&stats["users"]),
        s(&stats["interactions"]),
        num(f(&stats["preference_accuracy"]), 4),
        s(&stats["accuracy_target"])
    );
    h.lit("<section><h2>Users</h2><table id=\"users\"><thead><tr><th>user</th><th class=\"n\">interactions</th><th class=\"n\">feedback</th><th>newest event</th></tr></thead><tbody>");
    for u in &list {
        let id = s(&u["user_id"]);
        ui_w!(
            h,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            link(&ctx, "/ui/persona", &[("user", &id)]),
            id,
            s(&u["interaction_count"]),
            s(&u["feedback_count"]),
            s(&u["newest_event_time"])
        );
    }
    h.lit("</tbody></table></section>");
    let user = if ctx.q("user").is_empty() {
        list.first().map(|u| s(&u["user_id"])).unwrap_or_default()
    } else {
        ctx.q("user").to_string()
    };
    if !user.is_empty() {
        let enc = form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>();
        ui_w!(h, "<section id=\"user-detail\"><h2>User {}</h2>", user);
        match plugin_call(&st, &ctx, "persona", "GET", &format!("/users/{enc}"), &[], Value::Null).await {
            Ok(u) => {
                h.lit("<h3>Facets</h3>");
                let rows: Vec<(String, f64, f64, f64)> = u["facets"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), f(v), f(v), f(v))).collect())
                    .unwrap_or_default();
                if !rows.is_empty() {
                    h.push(&svg::intervals("facets (0 to 1)", &rows, Some(0.5)));
                }
                for (name, key) in [
                    ("Goals", "goals"),
                    ("Preferences", "preferences"),
                    ("Superseded preferences", "superseded_preferences"),
                ] {
                    let items = u[key].as_array().cloned().unwrap_or_default();
                    ui_w!(h, "<h3>{} ({})</h3>", name, items.len());
                    if items.is_empty() {
                        continue;
                    }
                    h.lit("<table><thead><tr><th>content</th><th class=\"n\">confidence</th><th>valid from</th><th>valid to</th><th>source</th></tr></thead><tbody>");
                    for g in &items {
                        ui_w!(
                            h,
                            "<tr><td>{}{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            if g["avoid"].as_bool() == Some(true) { "avoid: " } else { "" },
                            s(&g["content"]),
                            num(f(&g["current_confidence"]), 3),
                            s(&g["valid_from"]),
                            if g["valid_to"].is_null() { "—".to_string() } else { s(&g["valid_to"]) },
                            s(&g["source"])
                        );
                    }
                    h.lit("</tbody></table>");
                }
            }
            Err(e) => error_box(&mut h, "user", &e),
        }
        match plugin_call(&st, &ctx, "persona", "GET", &format!("/users/{enc}/preferences"), &[], Value::Null).await {
            Ok(p) => {
                ui_w!(
                    h,
                    "<h3>Preferred model per task</h3><p>Held-out accuracy {} ({} of {} scored).</p>",
                    num(f(&p["preference_accuracy"]), 4),
                    s(&p["held_out"]["correct"]),
                    s(&p["held_out"]["scored"])
                );
                h.lit("<table id=\"preferred-models\"><thead><tr><th>task</th><th>preferred model</th><th class=\"n\">score</th><th>all scores</th></tr></thead><tbody>");
                if let Some(m) = p["preferred_models"].as_object() {
                    for (task, v) in m {
                        ui_w!(
                            h,
                            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>",
                            task,
                            s(&v["preferred_model"]),
                            num(f(&v["score"]), 3)
                        );
                        if let Some(e) = v["ema"].as_object() {
                            for (model, sc) in e {
                                ui_w!(h, "{} {} ", model, num(f(sc), 3));
                            }
                        }
                        h.lit("</td></tr>");
                    }
                }
                h.lit("</tbody></table>");
            }
            Err(e) => error_box(&mut h, "preferences", &e),
        }
        h.lit("</section>");
    }
    Ok(page(&st, &ctx, "Persona", h).await)
}
