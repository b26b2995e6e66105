//! The learning cycle and the analysis routes: feedback analysis (success
//! and failure patterns, accuracy metrics, improvement opportunities),
//! learning metrics, historical outcomes, parameter rollback.

use std::collections::BTreeMap;

use learnloop_plugin_api::{
    Context, EventQuery, ImprovementDraft, InsightDraft, Order, PluginError, RouteRequest, Score, ScoreRequest,
    ScoreWindow, Timestamp,
};
use serde_json::{Value, json};

use crate::report::{
    Accuracy, Analysis, Backtest, CalibrationTrend, CandidateSummary, CycleReport, FailurePattern, Insight,
    InsightsDoc, LearningDoc, LevelSummary, Losses, Metrics, Opportunity, Optimal, PredictionError, SuccessBacktest,
    SuccessPattern, SuccessRateTarget, ThreeMonths, Totals,
};

use crate::answers::OutcomesPage;
use crate::model::{self, Params, ParamsVersions, SuccessModel};
use crate::record::{Agg, Rec, RecView, Stats};
use crate::table::{Fields, Row, Table};
use crate::{CostPlugin, get_doc, put_doc, ts};
use learnloop_plugin_api::helpers::time_json;

/// The recommendations (in id order) whose event time `keep` accepts, as
/// compact rows. Documents are read a page at a time and each is dropped
/// once its row is made; every document must be readable, kept or not.
pub fn load_table(ctx: &mut dyn Context, keep: impl Fn(i64) -> bool) -> Result<Table, PluginError> {
    let mut table = Table::default();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state_raw("rec/", after.as_deref(), 5000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in &page {
            let v = RecView::of_text(k, &s.json)?;
            if keep(v.t) {
                push_view(&mut table, &v);
            }
        }
    }
    Ok(table)
}

fn push_view(table: &mut Table, v: &RecView<'_>) {
    let f = Fields {
        t: v.t,
        kind: &v.kind,
        region: &v.region,
        resource_type: &v.resource_type,
        risk: &v.risk,
        predicted: v.predicted,
        actual: v.actual,
        success: v.exec.map(|e| e.success),
    };
    table.push(f, v.factors.iter().map(|(k, x)| (k.as_ref(), *x)));
}

/// The recommendations with the given ids (those that exist), in the
/// ids' order, as compact rows; read a batch of documents at a time.
fn load_ids(ctx: &mut dyn Context, ids: &Ids) -> Result<Table, PluginError> {
    let mut table = Table::default();
    let mut keys = Vec::with_capacity(1000);
    let mut ids = ids.iter().peekable();
    while ids.peek().is_some() {
        keys.clear();
        keys.extend(ids.by_ref().take(1000).map(|id| format!("rec/{id}")));
        for (key, s) in keys.iter().zip(ctx.get_states(&keys)?) {
            if let Some(s) = s {
                push_view(&mut table, &RecView::of(key, &s.value)?);
            }
        }
    }
    Ok(table)
}

/// The distinct prediction ids of the outcomes the store recorded at or
/// after `since`, in byte order.
fn outcome_ids_since(ctx: &mut dyn Context, since: Timestamp) -> Result<Ids, PluginError> {
    let mut ids = Ids::default();
    let mut after = None;
    loop {
        let page = ctx.outcomes(&EventQuery { order: Order::Ingestion, after, limit: 10_000, ..Default::default() })?;
        for o in page.items.iter().filter(|o| o.ingested_at >= since) {
            ids.push(o.record.prediction_id.as_str())?;
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    ids.sort_dedup();
    Ok(ids)
}

/// Strings kept in one buffer (a million ids are a few megabytes, not a
/// million allocations), listed by their spans in it.
#[derive(Debug, Default)]
struct Ids {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl Ids {
    fn push(&mut self, id: &str) -> Result<(), PluginError> {
        self.text.push_str(id);
        let end = u32::try_from(self.text.len())
            .map_err(|_| PluginError::internal("the prediction ids to score exceed 4 GiB"))?;
        self.spans.push((end - id.len() as u32, end));
        Ok(())
    }

    fn get(&self, (from, to): (u32, u32)) -> &str {
        &self.text[from as usize..to as usize]
    }

    /// Sorts the ids in byte order (as `BTreeSet<String>` would) and drops repeats.
    fn sort_dedup(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_unstable_by(|a, b| self.get(*a).cmp(self.get(*b)));
        spans.dedup_by(|a, b| self.get(*a) == self.get(*b));
        self.spans = spans;
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        self.spans.iter().map(|s| self.get(*s))
    }
}

/// The parameters in force (merged from the host's applied documents of
/// every target) and the version of each.
pub fn serving(ctx: &mut dyn Context) -> Result<(Params, ParamsVersions), PluginError> {
    let mut p = Params::default();
    let mut versions = ParamsVersions::default();
    for t in model::TARGETS {
        let a = learnloop_plugin_api::improve::applied(ctx, t)?;
        p.merge(t, a.as_ref().map(|a| &a.params))
            .map_err(|e| PluginError::internal(format!("applied {t} parameters are unreadable: {e}")))?;
        versions.set(t, a.map_or(0, |a| a.version));
    }
    Ok((p, versions))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The event time (µs) from which the newest `holdout_fraction` of the
/// recommendations with an outcome start (`None`: too few to hold out).
fn holdout_from(all: &[Row], fraction: f64) -> Option<i64> {
    let mut t: Vec<i64> = all.iter().filter(|s| s.has_outcome()).map(|s| s.t).collect();
    t.sort_unstable();
    let k = ((t.len() as f64) * (1.0 - fraction)).round() as usize;
    (k > 0 && k < t.len()).then(|| t[k])
}

/// One learning cycle: fit new parameter sets on everything but the newest
/// outcomes, measure them against the parameters in force on those held-out
/// outcomes, propose each changed set to the host's improvement lifecycle
/// (which backtests it through [`score`] and applies it by policy), and
/// record insights. Deterministic given the history: the report carries no
/// wall-clock time.
pub fn cycle(plugin: &CostPlugin, ctx: &mut dyn Context) -> Result<Value, PluginError> {
    let cfg = plugin.config();
    let table = load_table(ctx, |_| true)?;
    let all = table.rows();
    let (current, versions) = serving(ctx)?;
    let cut = holdout_from(all, cfg.holdout_fraction);
    let (train, holdout): (Vec<&Row>, Vec<&Row>) = all.iter().partition(|s| cut.is_none_or(|c| s.t < c));
    let candidate = model::fit_rows(&table, &train, cfg, &current);

    let mut backtest = BTreeMap::new();
    let mut proposed = Vec::new();
    for target in model::TARGETS {
        let (metric, lc, lb) = model::losses(target, &candidate, &current, &table, &holdout);
        let (c, b) = (mean(&lc), mean(&lb));
        backtest.insert(
            target.to_string(),
            Backtest {
                metric: metric.into(),
                candidate: c,
                in_force: b,
                n: lc.len(),
                version_in_force: versions.get(target),
            },
        );
        if candidate.part(target) == current.part(target) {
            continue;
        }
        ctx.propose_improvement(ImprovementDraft {
            target: target.into(),
            params: candidate.part(target),
            evidence: json!({
                "holdout_from": cut.map_or(Value::Null, ts), "holdout_outcomes": lc.len(), "learned_from": train.len(),
                "candidate": c, "in_force": b,
            }),
            metric: metric.into(),
            expected_gain: match (c, b) {
                (Some(c), Some(b)) => b - c,
                _ => 0.0,
            },
        })?;
        proposed.push(target.to_string());
    }
    let raw_err = model::holdout_error(&Params::default(), &table, &holdout).map(|x| x.0);
    let cand_err = model::holdout_error(&candidate, &table, &holdout).map(|x| x.1);
    let served_err = model::holdout_error(&current, &table, &holdout).map(|x| x.1);
    let success_backtest =
        success_backtest(&candidate.success_model, &current.success_model, versions.risk_levels, &table, &holdout);
    let trend = calibration_trend(&table, all, cfg.shrinkage);
    let improvement_over_baseline = match (raw_err, cand_err) {
        (Some(r), Some(c)) if r > 0.0 => Some((r - c) / r),
        _ => None,
    };

    // Insights.
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let (mut learning, lexpect) = get_doc::<LearningDoc>(ctx, "learning")?;
    let cycles = learning.cycles + 1;
    let as_of = time_json(stats.newest).as_str().map(str::to_string);
    let insight = |insight_type: &str, kind: Option<&str>, title, detail, confidence, impact, action| Insight {
        insight_type: insight_type.into(),
        recommendation_type: kind.map(str::to_string),
        title,
        detail,
        confidence,
        impact,
        actionable_recommendations: vec![action],
        insight_id: String::new(),
        cycle: cycles,
        as_of: as_of.clone(),
    };
    let mut insights = Vec::new();
    for (key, s) in candidate.calibration.iter().filter(|(k, _)| !k.contains('|')) {
        if s.n < cfg.min_group_size || s.mean.abs() < 0.05 {
            continue;
        }
        let f = s.mean.exp();
        insights.push(insight(
            "prediction_bias",
            Some(key),
            format!("{key}: realised savings are {:.0}% of predicted", f * 100.0),
            format!("Over {} measured outcomes the geometric mean of actual / predicted savings is {f:.3}; assess calibrates predictions by type, region and resource type.", s.n),
            s.n as f64 / (s.n as f64 + cfg.shrinkage),
            (1.0 - f).abs(),
            format!("Scale {key} savings estimates by {f:.2} (POST /assess does, once the calibration is applied)"),
        ));
    }
    for (key, r) in &candidate.risk {
        if key.contains('|') || r.risk_level == "low" {
            continue;
        }
        let agg = stats.by_type.get(key).cloned().unwrap_or_default();
        let causes = top_issues(&agg, 3);
        insights.push(insight(
            "failure_pattern",
            Some(key),
            format!("{key}: {:.0}% of executions fail (risk {})", r.failure_rate * 100.0, r.risk_level),
            format!(
                "{} executions; most common issues: {}",
                r.n,
                if causes.is_empty() { "none recorded".to_string() } else { causes.join(", ") }
            ),
            r.n as f64 / (r.n as f64 + cfg.shrinkage),
            r.failure_rate,
            format!("Treat {key} as {} risk; review the failure causes before executing", r.risk_level),
        ));
    }
    let corr = model::factor_correlations(&table, all.iter());
    if let Some(best) = corr
        .iter()
        .filter(|(_, (r, n))| *r > 0.1 && *n as u64 >= cfg.min_group_size)
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
    {
        insights.push(insight(
            "success_pattern",
            None,
            format!("scoring factor {} predicts success (r = {:.2})", best.0, best.1.0),
            format!("Correlation with execution success over {} executions; its scoring weight moves up.", best.1.1),
            1.0 - 1.0 / (1.0 + best.1.1 as f64 / 30.0),
            best.1.0,
            format!("Weight {} more when ranking recommendations", best.0),
        ));
    }
    let (old_ins, iexpect) = get_doc::<InsightsDoc>(ctx, "insights")?;
    for (i, ins) in insights.iter_mut().enumerate() {
        ins.insight_id = format!("cycle{cycles}-{i}");
    }
    for ins in &insights {
        ctx.emit_insight(InsightDraft {
            kind: ins.insight_type.clone(),
            title: ins.title.clone(),
            detail: ins.detail.clone(),
            confidence: ins.confidence.clamp(0.0, 1.0),
            impact: ins.impact,
            data: serde_json::to_value(ins)?,
        })?;
    }
    let found = insights.len();
    put_doc(ctx, "insights", &InsightsDoc { total: old_ins.total + found as u64, items: insights }, iexpect)?;

    let measured = all.iter().filter(|s| s.log_ratio().is_some()).count();
    let report = CycleReport {
        cycle: cycles,
        recommendations: all.len(),
        outcomes_tracked: stats.all.executed.max(stats.all.measured),
        measured,
        success_rate: stats.all.success_rate(),
        holdout_from: cut.and_then(|c| time_json(c).as_str().map(str::to_string)),
        learned_from: train.len(),
        held_out: holdout.len(),
        backtest,
        raw_error: raw_err,
        calibrated_error: cand_err,
        served_error: served_err,
        success_backtest: Some(success_backtest),
        calibrated_error_trend: Some(trend),
        improvement_over_baseline,
        proposed,
        calibration_groups: candidate.calibration.len(),
        interval: candidate.interval.clone(),
        risk_levels: candidate
            .risk
            .iter()
            .filter(|(k, _)| !k.contains('|'))
            .map(|(k, r)| (k.clone(), r.risk_level.clone()))
            .collect(),
        scoring_weights: candidate.weights.clone(),
        insights: found,
        as_of,
        subjects: stats.by_type.len(),
        totals: Totals { predictions: stats.all.recs, outcomes: stats.all.executed.max(stats.all.measured) },
    };
    learning.cycles = cycles;
    learning.last_cycle = Some(report.clone());
    learning.improvement_over_baseline = improvement_over_baseline;
    put_doc(ctx, "learning", &learning, lexpect)?;
    Ok(serde_json::to_value(&report)?)
}

/// The success model's held-out backtest: Brier score and log loss of the
/// candidate, of the model in force (the base rate when none is) and of
/// the base rate of the candidate's training outcomes.
fn success_backtest(
    candidate: &SuccessModel,
    in_force: &SuccessModel,
    version: u64,
    table: &Table,
    holdout: &[&Row],
) -> SuccessBacktest {
    let base = candidate.base_rate();
    let (cb, cl) = model::success_losses(candidate, base, table, holdout);
    let (ib, il) = model::success_losses(in_force, base, table, holdout);
    let (bb, bl) = model::success_losses(&SuccessModel::default(), base, table, holdout);
    let beats = match (mean(&cb), mean(&bb), mean(&cl), mean(&bl)) {
        (Some(c), Some(b), Some(cl), Some(bl)) => Some(c < b && cl < bl),
        _ => None,
    };
    SuccessBacktest {
        n: cb.len(),
        base_rate: base,
        brier: Losses { candidate: mean(&cb), in_force: mean(&ib), base_rate: mean(&bb) },
        log_loss: Losses { candidate: mean(&cl), in_force: mean(&il), base_rate: mean(&bl) },
        candidate_beats_base_rate: beats,
        version_in_force: version,
        in_force: if in_force.is_empty() { "base_rate" } else { "success_model" }.into(),
        candidate: CandidateSummary {
            levels: candidate
                .levels
                .iter()
                .map(|l| LevelSummary { level: l.level.clone(), shrinkage: l.shrinkage, groups: l.counts.len() })
                .collect(),
            factors: candidate.factors.clone(),
            ridge: candidate.ridge,
            cross_validation: candidate.cv.clone(),
        },
        version_in_force_now: None,
    }
}

/// The seed's promise: the calibrated error 30 % lower after three months.
pub const PROMISED_IMPROVEMENT: f64 = 0.30;

/// Month-by-month calibrated error ([`model::monthly_errors`]) and whether
/// the error three months after the first month fell by
/// [`PROMISED_IMPROVEMENT`].
fn calibration_trend(table: &Table, all: &[Row], shrinkage: f64) -> CalibrationTrend {
    let rows: Vec<&Row> = all.iter().collect();
    let months = model::monthly_errors(table, &rows, shrinkage);
    let index = |m: &str| -> Option<i64> {
        let (y, mo) = m.split_once('-')?;
        Some(y.parse::<i64>().ok()? * 12 + mo.parse::<i64>().ok()?)
    };
    let three = months.first().and_then(|first| {
        let target = index(&first.month)? + 3;
        let later = months.iter().find(|m| index(&m.month) == Some(target))?;
        let gain = (first.calibrated_error - later.calibrated_error) / first.calibrated_error;
        Some(ThreeMonths {
            from: Some(first.month.clone()),
            to: Some(later.month.clone()),
            error_from: Some(first.calibrated_error),
            error_to: Some(later.calibrated_error),
            improvement: Some(gain),
            promised: PROMISED_IMPROVEMENT,
            achieved: Some(gain >= PROMISED_IMPROVEMENT),
            reason: None,
        })
    });
    CalibrationTrend {
        three_month_improvement: three.unwrap_or_else(|| ThreeMonths {
            promised: PROMISED_IMPROVEMENT,
            reason: Some("fewer than four calendar months of measured savings".into()),
            ..Default::default()
        }),
        months,
    }
}

/// Scores a proposed parameter set against a baseline for the host's
/// improvement lifecycle: on the held-out recommendations the proposal
/// names (`evidence.holdout_from`), or on those whose outcomes the store
/// recorded since `since` (monitoring).
pub fn score(ctx: &mut dyn Context, request: &ScoreRequest) -> Result<Score, PluginError> {
    let target = request.target.as_str();
    if !model::TARGETS.contains(&target) {
        return Err(PluginError::invalid(
            "target",
            format!("the cost plugin has no parameter set {target:?} (it has {})", model::TARGETS.join(", ")),
        ));
    }
    let mut cand = Params::default();
    cand.merge(target, Some(&request.candidate)).map_err(|e| PluginError::invalid("candidate", e.to_string()))?;
    let mut base = Params::default();
    base.merge(target, request.baseline.as_ref()).map_err(|e| PluginError::invalid("baseline", e.to_string()))?;
    let table = match &request.window {
        ScoreWindow::HeldOut => {
            let from: Option<Timestamp> = serde_json::from_value(request.evidence["holdout_from"].clone())
                .map_err(|e| PluginError::invalid("evidence.holdout_from", e.to_string()))?;
            match from {
                None => Table::default(),
                Some(from) => load_table(ctx, |t| t >= from.as_micros())?,
            }
        }
        ScoreWindow::Since { since } => {
            let ids = outcome_ids_since(ctx, *since)?;
            load_ids(ctx, &ids)?
        }
    };
    let refs: Vec<&Row> = table.rows().iter().collect();
    let (metric, lc, mut lb) = model::losses(target, &cand, &base, &table, &refs);
    let mut against = if request.baseline.is_some() { "in_force" } else { "default" };
    if target == model::RISK {
        // A success model must beat the base rate, whatever is in force:
        // the baseline is the better of the two.
        let rate = cand.success_model.base_rate();
        let (lr, _) = model::success_losses(&SuccessModel::default(), rate, &table, &refs);
        if mean(&lr) < mean(&lb) || base.success_model.is_empty() {
            lb = lr;
            against = "base_rate";
        }
    }
    let confidence =
        learnloop_stats::paired_improvement_confidence(&lb, &lc).map_err(|e| PluginError::internal(e.to_string()))?;
    Ok(Score {
        metric: metric.into(),
        higher_is_better: false,
        candidate: mean(&lc).unwrap_or(0.0),
        baseline: mean(&lb).unwrap_or(0.0),
        n: lc.len() as u64,
        confidence,
        detail: json!({"recommendations": refs.len(), "baseline": against}),
    })
}

fn top_issues(a: &Agg, n: usize) -> Vec<String> {
    let mut v: Vec<(&String, &i64)> = a.failure_issues.iter().collect();
    v.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    v.into_iter().take(n).map(|(k, c)| format!("{k} ({c})")).collect()
}

/// `GET /accuracy`.
pub fn accuracy(ctx: &mut dyn Context, kind: Option<&str>) -> Result<Accuracy, PluginError> {
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let agg = match kind {
        Some(k) => stats
            .by_type
            .get(k)
            .cloned()
            .ok_or_else(|| PluginError::not_found(format!("no recommendations of type {k:?}")))?,
        None => stats.all.clone(),
    };
    let learning = get_doc::<LearningDoc>(ctx, "learning")?.0;
    let last = learning.last_cycle.as_ref();
    Ok(Accuracy {
        agg: agg.summary(),
        recommendation_type: kind.map(str::to_string),
        improvement_over_baseline: learning.improvement_over_baseline,
        calibrated_error_on_holdout: last.and_then(|l| l.calibrated_error),
        raw_error_on_holdout: last.and_then(|l| l.raw_error),
    })
}

/// The seed's target for the prediction error of savings (< 15 %).
pub const TARGET_PREDICTION_ERROR: f64 = 0.15;
/// The seed's target for the execution success rate (> 95 %).
pub const TARGET_SUCCESS_RATE: f64 = 0.95;

/// `GET /metrics`.
pub fn metrics(ctx: &mut dyn Context) -> Result<Metrics, PluginError> {
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let learning = get_doc::<LearningDoc>(ctx, "learning")?.0;
    let (_, versions) = serving(ctx)?;
    let a = &stats.all;
    let active = versions.applied();
    let last = learning.last_cycle.as_ref();
    // What /assess serves: the candidate if it was applied after the last
    // cycle, else what was in force during it (raw when nothing was).
    let applied_since = last
        .and_then(|l| l.backtest.get(model::CALIBRATION))
        .is_some_and(|cal| versions.calibration != cal.version_in_force);
    let served = last.and_then(|l| if applied_since { l.calibrated_error } else { l.served_error });
    let raw = last.and_then(|l| l.raw_error);
    let below = |x: Option<f64>, t: f64| x.map(|x| x < t);
    let success_model = last.and_then(|l| l.success_backtest.clone()).map(|mut m| {
        m.version_in_force_now = Some(versions.risk_levels);
        m
    });
    Ok(Metrics {
        prediction_error: PredictionError {
            target: TARGET_PREDICTION_ERROR,
            raw,
            raw_meets_target: below(raw, TARGET_PREDICTION_ERROR),
            served,
            served_meets_target: below(served, TARGET_PREDICTION_ERROR),
            served_version: versions.calibration,
            candidate: last.and_then(|l| l.calibrated_error),
            measured_on: "the held-out newest outcomes of the last learning cycle",
        },
        success_rate_target: SuccessRateTarget {
            target: TARGET_SUCCESS_RATE,
            success_rate: a.success_rate(),
            meets_target: a.success_rate().map(|r| r > TARGET_SUCCESS_RATE),
        },
        calibrated_error_trend: last.and_then(|l| l.calibrated_error_trend.clone()),
        success_model,
        total_outcomes_tracked: a.executed.max(a.measured),
        total_recommendations: a.recs,
        success_rate: a.success_rate(),
        avg_savings_accuracy: (a.n_accuracy > 0).then(|| a.sum_accuracy / a.n_accuracy as f64),
        avg_prediction_error: (a.n_error > 0).then(|| a.sum_error / a.n_error as f64),
        improvement_over_baseline: learning.improvement_over_baseline,
        learning_cycles_completed: learning.cycles,
        last_learning_cycle: last.and_then(|l| l.as_of.clone()),
        last_cycle: learning.last_cycle.clone(),
        active_improvements: active,
        params_versions: versions,
        newest_event_time: time_json(stats.newest).as_str().map(str::to_string),
    })
}

/// `GET /outcomes`.
pub fn outcomes(ctx: &mut dyn Context, req: &RouteRequest) -> Result<OutcomesPage, PluginError> {
    let limit = req.query_usize("limit", 100, 1000)?;
    let success = req.query_bool("success")?;
    let measured = req.query_bool("measured")?;
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
                items.push(r.view(&k["rec/".len()..]));
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
    Ok(OutcomesPage { outcomes: items, next })
}

fn pattern_groups<'a>(map: &'a BTreeMap<String, Agg>, kind: &str) -> Vec<(&'a str, &'a Agg)> {
    map.iter().filter_map(|(k, a)| k.split_once('|').filter(|(t, _)| *t == kind).map(|(_, v)| (v, a))).collect()
}

/// `GET /analysis`: success and failure patterns per type, accuracy,
/// improvement opportunities, insights.
pub fn analysis(plugin: &CostPlugin, ctx: &mut dyn Context, only: Option<&str>) -> Result<Analysis, PluginError> {
    let cfg = plugin.config();
    let stats = get_doc::<Stats>(ctx, "stats")?.0;
    let (params, versions) = serving(ctx)?;
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
        let mut optimal = BTreeMap::new();
        for (dim, map) in [
            ("region", &stats.by_type_region),
            ("resource_type", &stats.by_type_resource),
            ("risk_level", &stats.by_type_risk),
        ] {
            let groups: Vec<(&str, &Agg)> =
                pattern_groups(map, kind).into_iter().filter(|(_, a)| a.executed >= min).collect();
            let mut best: Option<(&str, f64)> = None;
            for (v, a) in &groups {
                let r = a.success_rate().unwrap_or(0.0);
                if r >= rate + 0.05 {
                    chars.push(format!("{dim} {v}: {:.0}% success ({} executions)", r * 100.0, a.executed));
                }
                if r <= rate - 0.05 {
                    risk_factors.push(format!(
                        "{dim} {v}: {:.0}% failure ({} executions)",
                        (1.0 - r) * 100.0,
                        a.executed
                    ));
                }
                if best.is_none_or(|(_, b)| r > b) {
                    best = Some((v, r));
                }
            }
            if let Some((v, r)) = best {
                optimal.insert(dim.to_string(), Optimal { value: v.to_string(), success_rate: r });
            }
        }
        let causes = top_issues(agg, 5);
        let accuracy = (agg.n_accuracy >= min).then(|| agg.sum_accuracy / agg.n_accuracy as f64);
        let best_practices = optimal.iter().map(|(d, o)| format!("prefer {d} {} for {kind}", o.value)).collect();
        success_patterns.push(SuccessPattern {
            recommendation_type: kind.clone(),
            success_rate: rate,
            executions: agg.executed,
            common_characteristics: chars,
            optimal_conditions: optimal,
            best_practices,
        });
        let avoidance_strategies = agg
            .failure_issues
            .keys()
            .take(3)
            .map(|i| format!("check for \"{i}\" before executing {kind}"))
            .chain(risk_factors.iter().take(2).map(|r| format!("require review where {r}")))
            .collect();
        failure_patterns.push(FailurePattern {
            recommendation_type: kind.clone(),
            failure_rate: 1.0 - rate,
            failures: agg.executed - agg.succeeded,
            common_causes: causes,
            risk_factors,
            avoidance_strategies,
            learned_risk_level: params.risk.get(kind).map(|r| r.risk_level.clone()),
        });
        if let Some(acc) = accuracy.filter(|a| (a - 1.0).abs() >= 0.05) {
            opportunities.push(Opportunity {
                opportunity_id: format!("prediction:{kind}"),
                area: "prediction",
                recommendation_type: Some(kind.clone()),
                current_performance: agg.summary().avg_prediction_error,
                potential_improvement: Some((1.0 - acc).abs()),
                suggested_actions: vec![format!("realised savings average {:.0}% of predicted: calibrate {kind} predictions (applied by the learning cycle's calibration)", acc * 100.0)],
                estimated_impact: if (1.0 - acc).abs() > 0.2 { "high" } else { "medium" },
            });
        }
        if 1.0 - rate > cfg.risk_medium_max_failure && agg.executed >= min {
            opportunities.push(Opportunity {
                opportunity_id: format!("risk:{kind}"),
                area: "risk_assessment",
                recommendation_type: Some(kind.clone()),
                current_performance: Some(rate),
                potential_improvement: Some(1.0 - rate),
                suggested_actions: vec![
                    "raise the stated risk level".into(),
                    "address the most common failure causes".into(),
                ],
                estimated_impact: "high",
            });
        }
    }
    if !params.weights.is_empty() {
        opportunities.push(Opportunity {
            opportunity_id: "scoring:weights".into(),
            area: "scoring",
            recommendation_type: None,
            current_performance: stats.all.success_rate(),
            potential_improvement: None,
            suggested_actions: vec![format!("rank with the learned scoring weights {:?}", params.weights)],
            estimated_impact: "medium",
        });
    }
    let insights = ctx.get_state("insights")?.map(|s| serde_json::from_value::<InsightsDoc>(s.value)).transpose()?;
    Ok(Analysis {
        success_patterns,
        failure_patterns,
        accuracy: accuracy(ctx, only)?,
        improvement_opportunities: opportunities,
        insights: insights.map(|d| d.items),
        params_versions: versions,
    })
}
