//! The learning cycle and the analysis routes: feedback analysis (success
//! and failure patterns, accuracy metrics, improvement opportunities),
//! learning metrics, historical outcomes, parameter rollback.

use std::collections::BTreeMap;

use learnloop_plugin_api::{Context, Expect, ImprovementDraft, InsightDraft, PluginError, RouteRequest, RouteResponse};
use serde_json::{Value, json};

use crate::model::{self, Params, Sample};
use crate::record::{Agg, Rec, Stats};
use crate::{CostPlugin, current_params, get_doc, get_value, put_doc, ts};

/// Every recommendation document, in id order.
pub fn load_recs(ctx: &mut dyn Context) -> Result<Vec<(String, Rec)>, PluginError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("rec/", after.as_deref(), 5000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            out.push((k["rec/".len()..].to_string(), serde_json::from_value(s.value)?));
        }
    }
    Ok(out)
}

fn samples(recs: &[(String, Rec)]) -> Vec<Sample<'_>> {
    recs.iter()
        .map(|(_, r)| Sample {
            t: r.t,
            kind: &r.kind,
            region: &r.region,
            resource_type: &r.resource_type,
            predicted: r.predicted,
            actual: r.actual,
            success: r.exec.as_ref().map(|e| e.success),
            factors: &r.factors,
        })
        .collect()
}

/// One learning cycle: fit, backtest, propose, apply (with `auto_apply`),
/// insights. Deterministic given the history: the report carries no
/// wall-clock time.
pub fn cycle(plugin: &CostPlugin, ctx: &mut dyn Context) -> Result<Value, PluginError> {
    let cfg = plugin.config();
    let recs = load_recs(ctx)?;
    let all = samples(&recs);
    let (current, current_expect) = get_doc::<Params>(ctx, "params/current")?;
    let new = model::fit(&all, cfg, &current);

    // Backtest on the newest measured outcomes: a set fitted without them
    // against the raw predictions and the currently applied set.
    let mut measured: Vec<&Sample<'_>> = all.iter().filter(|s| s.log_ratio().is_some()).collect();
    measured.sort_by_key(|s| s.t);
    let cut = ((measured.len() as f64) * (1.0 - cfg.holdout_fraction)).round() as usize;
    let (older, holdout) = measured.split_at(cut.min(measured.len()));
    let older_owned: Vec<Sample<'_>> = older.iter().map(|s| (*s).clone()).collect();
    let trial = model::fit(&older_owned, cfg, &current);
    let bt_new = model::holdout_error(&trial, holdout);
    let bt_cur = model::holdout_error(&current, holdout);
    let (raw_err, new_err, n_holdout) = bt_new.unwrap_or((f64::NAN, f64::NAN, 0));
    let cur_err = bt_cur.map(|b| b.1);
    let improvement_over_baseline = (raw_err > 0.0).then(|| (raw_err - new_err) / raw_err).filter(|x| x.is_finite());
    let better = match (bt_new, cur_err) {
        (Some((_, n, _)), Some(c)) => n <= c + 1e-12,
        (Some(_), None) => true,
        (None, _) => !all.is_empty(),
    };

    let evidence = json!({
        "holdout_outcomes": n_holdout, "raw_error": finite(raw_err), "new_error": finite(new_err), "current_error": cur_err,
        "current_version": current.version,
    });
    let gain = match cur_err {
        Some(c) if new_err.is_finite() => c - new_err,
        _ => 0.0,
    };
    ctx.propose_improvement(ImprovementDraft {
        target: "calibration".into(),
        params: json!({"shrinkage": new.shrinkage, "global": new.global, "calibration": new.calibration, "interval": new.interval}),
        evidence: evidence.clone(),
        metric: "savings_prediction_error".into(),
        expected_gain: if gain.is_finite() { gain } else { 0.0 },
    })?;
    ctx.propose_improvement(ImprovementDraft {
        target: "risk_levels".into(),
        params: json!({"success_global": new.success_global, "success": new.success, "risk": new.risk}),
        evidence: json!({"executions": new.success_global.n}),
        metric: "execution_failure_rate".into(),
        expected_gain: 0.0,
    })?;
    let corr = model::factor_correlations(&all);
    if !new.weights.is_empty() && new.weights != current.weights {
        ctx.propose_improvement(ImprovementDraft {
            target: "scoring_weights".into(),
            params: json!({"weights": new.weights}),
            evidence: json!({"factor_success_correlation": corr.iter().map(|(k, (r, n))| (k.clone(), json!({"r": r, "n": n}))).collect::<serde_json::Map<_, _>>(), "previous": current.weights}),
            metric: "success_rate".into(),
            expected_gain: 0.0,
        })?;
    }

    let applied = cfg.auto_apply && better;
    let mut version = current.version;
    if applied {
        version += 1;
        let mut p = new.clone();
        p.version = version;
        put_doc(ctx, "params/current", &p, current_expect)?;
        ctx.put_state(&format!("params/v{version:08}"), serde_json::to_value(&p)?, Expect::Any)?;
    }

    // Insights.
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let mut insights = Vec::new();
    for (key, s) in new.calibration.iter().filter(|(k, _)| !k.contains('|')) {
        if (s.n as u64) < cfg.min_group_size || s.mean.abs() < 0.05 {
            continue;
        }
        let f = s.mean.exp();
        insights.push(json!({
            "insight_type": "prediction_bias", "recommendation_type": key,
            "title": format!("{key}: realised savings are {:.0}% of predicted", f * 100.0),
            "detail": format!("Over {} measured outcomes the geometric mean of actual / predicted savings is {f:.3}; assess calibrates predictions by type, region and resource type.", s.n),
            "confidence": s.n as f64 / (s.n as f64 + cfg.shrinkage), "impact": (1.0 - f).abs(),
            "actionable_recommendations": [format!("Scale {key} savings estimates by {f:.2} (applied by POST /assess)")],
        }));
    }
    for (key, r) in &new.risk {
        if key.contains('|') || r.risk_level == "low" {
            continue;
        }
        let agg = stats.by_type.get(key).cloned().unwrap_or_default();
        let causes = top_issues(&agg, 3);
        insights.push(json!({
            "insight_type": "failure_pattern", "recommendation_type": key,
            "title": format!("{key}: {:.0}% of executions fail (risk {})", r.failure_rate * 100.0, r.risk_level),
            "detail": format!("{} executions; most common issues: {}", r.n, if causes.is_empty() { "none recorded".to_string() } else { causes.join(", ") }),
            "confidence": r.n as f64 / (r.n as f64 + cfg.shrinkage), "impact": r.failure_rate,
            "actionable_recommendations": [format!("Treat {key} as {} risk; review the failure causes before executing", r.risk_level)],
        }));
    }
    if let Some(best) = corr.iter().filter(|(_, (r, n))| *r > 0.1 && *n as u64 >= cfg.min_group_size).max_by(|a, b| a.1.0.total_cmp(&b.1.0)) {
        insights.push(json!({
            "insight_type": "success_pattern", "recommendation_type": null,
            "title": format!("scoring factor {} predicts success (r = {:.2})", best.0, best.1.0),
            "detail": format!("Correlation with execution success over {} executions; its scoring weight moves up.", best.1.1),
            "confidence": 1.0 - 1.0 / (1.0 + best.1.1 as f64 / 30.0), "impact": best.1.0,
            "actionable_recommendations": [format!("Weight {} more when ranking recommendations", best.0)],
        }));
    }
    let (mut learning, lexpect) = get_doc::<Value>(ctx, "learning")?;
    if learning.is_null() {
        learning = json!({});
    }
    let cycles = learning["cycles"].as_u64().unwrap_or(0) + 1;
    let (old_ins, iexpect) = get_doc::<Value>(ctx, "insights")?;
    let total = old_ins["total"].as_u64().unwrap_or(0);
    for (i, ins) in insights.iter_mut().enumerate() {
        ins["insight_id"] = json!(format!("cycle{cycles}-{i}"));
        ins["cycle"] = json!(cycles);
        ins["as_of"] = ts(stats.newest);
    }
    for ins in &insights {
        ctx.emit_insight(InsightDraft {
            kind: ins["insight_type"].as_str().unwrap_or("insight").to_string(),
            title: ins["title"].as_str().unwrap_or("").to_string(),
            detail: ins["detail"].as_str().unwrap_or("").to_string(),
            confidence: ins["confidence"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0),
            impact: ins["impact"].as_f64().unwrap_or(0.0),
            data: ins.clone(),
        })?;
    }
    put_doc(ctx, "insights", &json!({"total": total + insights.len() as u64, "items": insights}), iexpect)?;

    let report = json!({
        "cycle": cycles,
        "recommendations": recs.len(),
        "outcomes_tracked": stats.all.executed.max(stats.all.measured),
        "measured": measured.len(),
        "success_rate": stats.all.success_rate(),
        "backtest": evidence,
        "improvement_over_baseline": improvement_over_baseline,
        "applied": applied,
        "params_version": version,
        "calibration_groups": new.calibration.len(),
        "interval": new.interval,
        "risk_levels": new.risk.iter().filter(|(k, _)| !k.contains('|')).map(|(k, r)| (k.clone(), json!(r.risk_level))).collect::<serde_json::Map<_, _>>(),
        "scoring_weights": new.weights,
        "insights": insights.len(),
        "as_of": ts(stats.newest),
        "subjects": stats.by_type.len(),
        "totals": {"predictions": stats.all.recs, "outcomes": stats.all.executed.max(stats.all.measured)},
    });
    learning["cycles"] = json!(cycles);
    learning["last_cycle"] = report.clone();
    learning["improvement_over_baseline"] = json!(improvement_over_baseline);
    put_doc(ctx, "learning", &learning, lexpect)?;
    Ok(report)
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn top_issues(a: &Agg, n: usize) -> Vec<String> {
    let mut v: Vec<(&String, &i64)> = a.failure_issues.iter().collect();
    v.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    v.into_iter().take(n).map(|(k, c)| format!("{k} ({c})")).collect()
}

/// `GET /accuracy`.
pub fn accuracy(ctx: &mut dyn Context, kind: Option<&str>) -> Result<Value, PluginError> {
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let agg = match kind {
        Some(k) => stats.by_type.get(k).cloned().ok_or_else(|| PluginError::not_found(format!("no recommendations of type {k:?}")))?,
        None => stats.all.clone(),
    };
    let learning = get_value(ctx, "learning")?;
    let mut v = agg.to_json();
    v["recommendation_type"] = json!(kind);
    v["improvement_over_baseline"] = learning["improvement_over_baseline"].clone();
    v["calibrated_error"] = learning["last_cycle"]["backtest"]["new_error"].clone();
    v["raw_error_on_holdout"] = learning["last_cycle"]["backtest"]["raw_error"].clone();
    Ok(v)
}

/// `GET /metrics`.
pub fn metrics(ctx: &mut dyn Context) -> Result<Value, PluginError> {
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let learning = get_value(ctx, "learning")?;
    let params = current_params(ctx)?;
    let a = &stats.all;
    let active = [!params.calibration.is_empty(), !params.risk.is_empty(), !params.weights.is_empty()].iter().filter(|x| **x).count();
    Ok(json!({
        "total_outcomes_tracked": a.executed.max(a.measured),
        "total_recommendations": a.recs,
        "success_rate": a.success_rate(),
        "avg_savings_accuracy": (a.n_accuracy > 0).then(|| a.sum_accuracy / a.n_accuracy as f64),
        "avg_prediction_error": (a.n_error > 0).then(|| a.sum_error / a.n_error as f64),
        "improvement_over_baseline": learning["improvement_over_baseline"],
        "learning_cycles_completed": learning["cycles"].as_u64().unwrap_or(0),
        "last_learning_cycle": learning["last_cycle"]["as_of"],
        "last_cycle": learning["last_cycle"],
        "active_improvements": active,
        "params_version": params.version,
        "newest_event_time": ts(stats.newest),
    }))
}

/// `POST /params/rollback`.
pub fn rollback(ctx: &mut dyn Context) -> Result<Value, PluginError> {
    let (cur, expect) = get_doc::<Params>(ctx, "params/current")?;
    if cur.version <= 1 {
        return Err(PluginError::invalid("version", format!("version {} has no earlier version to roll back to", cur.version)));
    }
    let prev = ctx
        .get_state(&format!("params/v{:08}", cur.version - 1))?
        .ok_or_else(|| PluginError::not_found(format!("parameter set version {} is not kept", cur.version - 1)))?;
    let p: Params = serde_json::from_value(prev.value)?;
    put_doc(ctx, "params/current", &p, expect)?;
    ctx.delete_state(&format!("params/v{:08}", cur.version), Expect::Any)?;
    Ok(json!({"rolled_back_from": cur.version, "params_version": p.version}))
}

/// `GET /outcomes`.
pub fn outcomes(ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
    let limit = match req.query.get("limit") {
        None => 100,
        Some(s) => s.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| PluginError::invalid("limit", "expected an integer in 1..=1000"))?,
    };
    let success = crate::q_bool(req, "success")?;
    let measured = crate::q_bool(req, "measured")?;
    let want = |r: &Rec| {
        req.query.get("type").is_none_or(|t| *t == r.kind)
            && req.query.get("resource_type").is_none_or(|t| *t == r.resource_type)
            && req.query.get("region").is_none_or(|t| *t == r.region)
            && success.is_none_or(|s| r.exec.as_ref().is_some_and(|e| e.success == s))
            && measured.is_none_or(|m| r.actual.is_some() == m)
            && (r.exec.is_some() || r.actual.is_some())
    };
    let mut after = req.query.get("after").map(|a| format!("rec/{a}"));
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut next = None;
    'outer: loop {
        let page = ctx.scan_state("rec/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            scanned += 1;
            let r: Rec = serde_json::from_value(s.value)?;
            if want(&r) {
                items.push(r.to_json(&k["rec/".len()..]));
                if items.len() == limit {
                    next = Some(k["rec/".len()..].to_string());
                    break 'outer;
                }
            }
            if scanned >= 100_000 {
                // Bounded work per request: hand out a cursor.
                next = Some(k["rec/".len()..].to_string());
                break 'outer;
            }
        }
    }
    Ok(RouteResponse::ok(json!({"outcomes": items, "next": next})))
}

fn pattern_groups<'a>(map: &'a BTreeMap<String, Agg>, kind: &str) -> Vec<(&'a str, &'a Agg)> {
    map.iter().filter_map(|(k, a)| k.split_once('|').filter(|(t, _)| *t == kind).map(|(_, v)| (v, a))).collect()
}

/// `GET /analysis`: success and failure patterns per type, accuracy,
/// improvement opportunities, insights.
pub fn analysis(plugin: &CostPlugin, ctx: &mut dyn Context, only: Option<&str>) -> Result<Value, PluginError> {
    let cfg = plugin.config();
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let params = current_params(ctx)?;
    let min = cfg.min_group_size as i64;
    let mut success_patterns = Vec::new();
    let mut failure_patterns = Vec::new();
    let mut opportunities = Vec::new();
    for (kind, agg) in &stats.by_type {
        if only.is_some_and(|o| o != kind) {
            continue;
        }
        let Some(rate) = agg.success_rate() else { continue };
        let mut chars = Vec::new();
        let mut risk_factors = Vec::new();
        let mut optimal = serde_json::Map::new();
        for (dim, map) in [("region", &stats.by_type_region), ("resource_type", &stats.by_type_resource), ("risk_level", &stats.by_type_risk)] {
            let groups: Vec<(&str, &Agg)> = pattern_groups(map, kind).into_iter().filter(|(_, a)| a.executed >= min).collect();
            let mut best: Option<(&str, f64)> = None;
            for (v, a) in &groups {
                let r = a.success_rate().unwrap_or(0.0);
                if r >= rate + 0.05 {
                    chars.push(format!("{dim} {v}: {:.0}% success ({} executions)", r * 100.0, a.executed));
                }
                if r <= rate - 0.05 {
                    risk_factors.push(format!("{dim} {v}: {:.0}% failure ({} executions)", (1.0 - r) * 100.0, a.executed));
                }
                if best.is_none_or(|(_, b)| r > b) {
                    best = Some((v, r));
                }
            }
            if let Some((v, r)) = best {
                optimal.insert(dim.into(), json!({"value": v, "success_rate": r}));
            }
        }
        let causes = top_issues(agg, 5);
        let cal = params.calibration.get(kind);
        success_patterns.push(json!({
            "recommendation_type": kind, "success_rate": rate, "executions": agg.executed,
            "common_characteristics": chars, "optimal_conditions": optimal,
            "best_practices": optimal.iter().map(|(d, v)| format!("prefer {d} {} for {kind}", v["value"].as_str().unwrap_or(""))).collect::<Vec<_>>(),
        }));
        failure_patterns.push(json!({
            "recommendation_type": kind, "failure_rate": 1.0 - rate, "failures": agg.executed - agg.succeeded,
            "common_causes": causes, "risk_factors": risk_factors,
            "avoidance_strategies": agg.failure_issues.keys().take(3).map(|i| format!("check for \"{i}\" before executing {kind}")).chain(risk_factors.iter().take(2).map(|r| format!("require review where {r}"))).collect::<Vec<_>>(),
            "learned_risk_level": params.risk.get(kind).map(|r| r.risk_level.clone()),
        }));
        if let Some(c) = cal.filter(|c| c.n as i64 >= min && c.mean.abs() >= 0.05) {
            opportunities.push(json!({
                "opportunity_id": format!("prediction:{kind}"), "area": "prediction", "recommendation_type": kind,
                "current_performance": agg.to_json()["avg_prediction_error"], "potential_improvement": (1.0 - c.mean.exp()).abs(),
                "suggested_actions": [format!("scale predicted savings by {:.2}", c.mean.exp())],
                "estimated_impact": if c.mean.abs() > 0.2 { "high" } else { "medium" },
            }));
        }
        if 1.0 - rate > cfg.risk_medium_max_failure && agg.executed >= min {
            opportunities.push(json!({
                "opportunity_id": format!("risk:{kind}"), "area": "risk_assessment", "recommendation_type": kind,
                "current_performance": rate, "potential_improvement": 1.0 - rate,
                "suggested_actions": ["raise the stated risk level", "address the most common failure causes"],
                "estimated_impact": "high",
            }));
        }
    }
    if !params.weights.is_empty() {
        opportunities.push(json!({
            "opportunity_id": "scoring:weights", "area": "scoring", "recommendation_type": null,
            "current_performance": stats.all.success_rate(), "potential_improvement": Value::Null,
            "suggested_actions": [format!("rank with the learned scoring weights {:?}", params.weights)],
            "estimated_impact": "medium",
        }));
    }
    let insights = get_value(ctx, "insights")?;
    Ok(json!({
        "success_patterns": success_patterns,
        "failure_patterns": failure_patterns,
        "accuracy": accuracy(ctx, only)?,
        "improvement_opportunities": opportunities,
        "insights": insights["items"],
        "params_version": params.version,
    }))
}
