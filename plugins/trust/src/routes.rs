//! The read routes (`GET /agents`, `/trusted`, `/patterns`, `/rules`,
//! `/learning/status`, `/stats`, ...): state documents in, typed answers
//! ([`crate::answers`]) out. `POST /route` lives in [`crate::route`].

use std::collections::BTreeMap;

use learnloop_plugin_api::{Context, EventQuery, Order, PluginError, RouteRequest, RouteResponse, StoredPrediction};
use serde::Serialize;

use crate::answers::{
    AgentProfile, AgentSummary, AgentsAnswer, BoostAnswer, ChangeTestSummary, EvaluationAnswer, EwmaSummary,
    LearningStatus, PatternsAnswer, RecommendationAnswer, RecommendationsPage, RulesAnswer, SeenTotals, StatsAnswer,
    StatsTotals, SuggestedRule, Targets, TrustedAnswer, TypeStrength, TypeTrust,
};
use crate::jobs::{LearningDoc, PatternsDoc};
use crate::online::{Meta, load_agent, load_agents, outcome_label};
use crate::score::{AgentDoc, Counts, strength};
use crate::{Config, TrustPlugin, get_doc, rules, time};

/// The pattern categories, as `GET /patterns?category=` accepts them.
pub(crate) const CATEGORIES: [&str; 5] =
    ["high_confidence", "consensus", "expert_opinion", "failure_avoidance", "success_indicator"];

/// A 200 answer with `body` as its JSON.
pub(crate) fn answer<T: Serialize>(body: &T) -> Result<RouteResponse, PluginError> {
    Ok(RouteResponse::ok(serde_json::to_value(body)?))
}

/// Answers every route but `POST /route`; `cfg` carries the weights in force
/// (version `weights_version`).
pub(crate) fn handle(
    plugin: &TrustPlugin,
    ctx: &mut dyn Context,
    req: &RouteRequest,
    cfg: &Config,
    weights_version: u64,
) -> Result<RouteResponse, PluginError> {
    match (req.method.as_str(), req.route.as_str()) {
        ("GET", "/agents") => {
            let meta = Meta::load(ctx)?;
            let agents = load_agents(ctx)?;
            let mut list: Vec<AgentSummary> = agents.iter().map(|(id, a)| summary(cfg, id, a, meta.newest)).collect();
            sort_by_trust(&mut list);
            answer(&AgentsAnswer {
                agents: list,
                as_of: time(meta.newest),
                weights: cfg.weights.clone(),
                weights_version,
            })
        }
        ("GET", "/agents/{agent}") => {
            let id = req.param("agent")?;
            let meta = Meta::load(ctx)?;
            let a = load_agent(ctx, id)?.ok_or_else(|| PluginError::not_found(format!("no agent {id:?}")))?;
            answer(&profile(cfg, id, &a, meta.newest, weights_version))
        }
        ("GET", "/agents/{agent}/recommendations") => {
            let id = req.param("agent")?.to_string();
            recommendations(ctx, req, &id)
        }
        ("GET", "/recommendations/{id}") => {
            let raw = req.param("id")?;
            let id = learnloop_plugin_api::core::RecordId::parse("id", raw)
                .map_err(|e| PluginError::invalid(e.field, e.message))?;
            let page = ctx.predictions(&EventQuery { id: Some(id), limit: 1, ..Default::default() })?;
            let p = page.items.first().ok_or_else(|| PluginError::not_found(format!("no recommendation {raw:?}")))?;
            answer(&recommendation(ctx, p)?)
        }
        ("GET", "/agents/{agent}/boost") => {
            let id = req.param("agent")?;
            let kind = req.query_str("type").ok_or_else(|| PluginError::invalid("type", "is required"))?;
            let meta = Meta::load(ctx)?;
            let a = load_agent(ctx, id)?.unwrap_or_default();
            let c = a.types.get(kind).cloned().unwrap_or_default();
            let s = c.score(cfg, meta.newest);
            // Boost: how far the posterior approval is from a coin flip,
            // shrunk by the confidence factor: in [−0.5, 0.5].
            let boost = (s.accuracy - 0.5) * s.confidence_factor;
            answer(&BoostAnswer {
                agent_id: id.to_string(),
                recommendation_type: kind.to_string(),
                boost,
                trust: s.answer(cfg.credible_level),
            })
        }
        ("GET", "/trusted") => {
            let threshold = req.query_f64("threshold", cfg.trusted_threshold, 0.0, 1.0)?;
            let meta = Meta::load(ctx)?;
            let agents = load_agents(ctx)?;
            let mut list: Vec<AgentSummary> = agents
                .iter()
                .map(|(id, a)| summary(cfg, id, a, meta.newest))
                .filter(|v| v.trust.overall_trust_score >= threshold)
                .collect();
            sort_by_trust(&mut list);
            answer(&TrustedAnswer { threshold, agents: list, weights_version })
        }
        ("GET", "/patterns") => {
            let p = get_doc::<PatternsDoc>(ctx, "patterns")?.0;
            let mut list = p.patterns;
            if let Some(c) = req.query_str("category") {
                if !CATEGORIES.contains(&c) {
                    return Err(PluginError::invalid("category", format!("expected one of {}", CATEGORIES.join(", "))));
                }
                list.retain(|x| x.category == c);
            }
            answer(&PatternsAnswer { patterns: list, accuracy: p.accuracy, coverage: p.coverage, window: p.window })
        }
        ("GET", "/rules") => suggested_rules(ctx, req),
        ("GET", "/learning/status") => answer(&learning_status(plugin, ctx)?),
        ("GET", "/stats") => {
            let meta = Meta::load(ctx)?;
            let agents = load_agents(ctx)?;
            let mut types: BTreeMap<String, Counts> = BTreeMap::new();
            for a in agents.values() {
                for (k, c) in &a.types {
                    let t = types.entry(k.clone()).or_default();
                    t.recommendations += c.recommendations;
                    t.evaluated += c.evaluated;
                    t.pending += c.pending;
                    t.approved += c.approved;
                    t.partial += c.partial;
                    t.rejected += c.rejected;
                    t.s += c.s;
                    t.f += c.f;
                    t.q_sum += c.q_sum;
                }
            }
            let trusted =
                agents.values().filter(|a| a.all.score(cfg, meta.newest).overall >= cfg.trusted_threshold).count();
            answer(&StatsAnswer {
                agents: agents.len(),
                trusted_agents: trusted,
                totals: StatsTotals {
                    recommendations: meta.recommendations,
                    evaluated: meta.evaluated,
                    approval_rate: meta.approval_rate(),
                },
                by_type: types.iter().map(|(k, c)| (k.clone(), c.stats())).collect(),
                learning: learning_status(plugin, ctx)?,
                weights: cfg.weights.clone(),
                weights_version,
            })
        }
        _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
    }
}

/// Most trusted first, ties by agent id.
fn sort_by_trust(list: &mut [AgentSummary]) {
    list.sort_by(|a, b| {
        b.trust.overall_trust_score.total_cmp(&a.trust.overall_trust_score).then_with(|| a.agent_id.cmp(&b.agent_id))
    });
}

/// What `GET /agents` says about one agent.
fn summary(cfg: &Config, id: &str, a: &AgentDoc, newest: i64) -> AgentSummary {
    let s = a.all.score(cfg, newest);
    AgentSummary {
        trust: s.answer(cfg.credible_level),
        agent_id: id.to_string(),
        agent_name: a.name.clone(),
        trend: a.trend().to_string(),
        change_test: ChangeTestSummary {
            monitored: a.change.expect_all.is_some(),
            monitored_evaluations: a.change.monitored,
            reference_evaluations: a.change.reference,
            reference_rate: a.change.expect_all,
            decline_statistic: a.change.down.s,
            improvement_statistic: a.change.up.s,
            threshold: cfg.decline_threshold(),
            declines: a.change.declines,
            improvements: a.change.improvements,
            last_decline: a.change.last_decline.clone(),
            window: cfg.decline_window,
        },
        ewma: EwmaSummary { fast: a.fast.value(), slow: a.slow.value() },
        recommendation_strength: strength(s.accuracy).to_string(),
        approval_rate: a.all.approval_rate(),
        stats: a.all.stats(),
        last_event_time: time(a.all.last_time),
    }
}

/// `GET /agents/{agent}`.
fn profile(cfg: &Config, id: &str, a: &AgentDoc, newest: i64, weights_version: u64) -> AgentProfile {
    let base = a.all.score(cfg, newest).accuracy;
    let mut by_type = BTreeMap::new();
    let (mut strengths, mut weaknesses) = (Vec::new(), Vec::new());
    for (kind, c) in &a.types {
        let s = c.score(cfg, newest);
        if c.evaluated >= 5 {
            let row = || TypeStrength {
                recommendation_type: kind.clone(),
                approval: s.accuracy,
                credible_interval: [s.lower, s.upper],
                evaluated: c.evaluated,
            };
            if s.accuracy >= base + 0.05 {
                strengths.push(row());
            } else if s.accuracy <= base - 0.05 {
                weaknesses.push(row());
            }
        }
        by_type.insert(kind.clone(), TypeTrust { trust: s.answer(cfg.credible_level), stats: c.stats() });
    }
    AgentProfile {
        summary: summary(cfg, id, a, newest),
        learning_rate_scores: a.learning_rate.clone(),
        by_type,
        strengths,
        weaknesses,
        weights_version,
    }
}

/// `GET /agents/{agent}/recommendations`: oldest first by event time;
/// `next` continues with `after`.
fn recommendations(ctx: &mut dyn Context, req: &RouteRequest, agent: &str) -> Result<RouteResponse, PluginError> {
    let limit = req.query_usize("limit", 50, 1000)?;
    let after = match req.query_str("after") {
        None => None,
        Some(s) => {
            Some(s.parse().map_err(|_| PluginError::invalid("after", "not a cursor this route handed out (`next`)"))?)
        }
    };
    let q = EventQuery {
        subject: Some(agent.to_string()),
        kind: req.query_str("type").map(str::to_string),
        order: Order::EventTime,
        limit,
        after,
        ..Default::default()
    };
    let page = ctx.predictions(&q)?;
    let mut items = Vec::new();
    for p in &page.items {
        items.push(recommendation(ctx, p)?);
    }
    answer(&RecommendationsPage {
        agent_id: agent.to_string(),
        recommendations: items,
        next: page.next.map(|c| c.to_string()),
    })
}

/// A recommendation with every evaluation it received (oldest first).
fn recommendation(ctx: &mut dyn Context, p: &StoredPrediction) -> Result<RecommendationAnswer, PluginError> {
    let outs = ctx.outcomes(&EventQuery {
        prediction_id: Some(p.record.id.clone()),
        limit: EventQuery::MAX_LIMIT,
        ..Default::default()
    })?;
    let r = &p.record;
    let status = outs
        .items
        .last()
        .map(|o| outcome_label(o.record.label.as_deref(), o.record.success, o.record.quality))
        .unwrap_or("pending");
    Ok(RecommendationAnswer {
        recommendation_id: r.id.to_string(),
        agent_id: r.subject.clone(),
        agent_name: r.payload.get("agent_name").cloned(),
        recommendation_type: r.kind.clone(),
        confidence: r.confidence,
        label: r.label.clone(),
        payload: r.payload.clone(),
        event_time: r.event_time.map(|t| t.to_rfc3339()),
        status: status.to_string(),
        outcomes: outs
            .items
            .iter()
            .map(|o| EvaluationAnswer {
                outcome_id: o.record.id.to_string(),
                status: o.record.label.clone(),
                success: o.record.success,
                quality: o.record.quality,
                overall_quality_score: o.record.quality.map(|q| q * 100.0),
                feedback: o.record.feedback.clone(),
                payload: o.record.payload.clone(),
                event_time: o.record.event_time.map(|t| t.to_rfc3339()),
            })
            .collect(),
    })
}

/// `GET /rules`: decision rules suggested from the patterns, and the routing
/// rules in force.
fn suggested_rules(ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
    let p = get_doc::<PatternsDoc>(ctx, "patterns")?.0;
    let kind = req.query_str("type");
    let mut list = Vec::new();
    for pat in &p.patterns {
        let pt = pat.recommendation_type.as_deref();
        if kind.is_some() && pt.is_some() && pt != kind {
            continue;
        }
        let agent = pat.agent.as_deref().unwrap_or("");
        let (action, text) = match pat.category.as_str() {
            "success_indicator" => ("prefer", format!("route {} recommendations to {agent}", pt.unwrap_or("these"))),
            "failure_avoidance" => {
                ("avoid", format!("do not route {} recommendations to {agent}", pt.unwrap_or("these")))
            }
            "expert_opinion" => ("boost", format!("weight {agent}'s recommendations up: an expert across types")),
            "consensus" if pat.predicts == "approved" => {
                ("require_consensus", "seek agreement of several agents for critical decisions".to_string())
            }
            "high_confidence" if pat.predicts == "approved" => {
                ("trust_confidence", "high stated confidence is a reliable signal".to_string())
            }
            "consensus" | "high_confidence" => {
                ("distrust_signal", format!("{} does not predict approval here", pat.category))
            }
            _ => continue,
        };
        list.push(SuggestedRule {
            action: action.to_string(),
            rule: text,
            agent: pat.agent.clone(),
            recommendation_type: pat.recommendation_type.clone(),
            confidence: pat.confidence,
            strength: pat.strength.clone(),
            success_rate: pat.success_rate,
            frequency: pat.frequency,
            pattern: pat.id.clone(),
        });
    }
    list.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.pattern.cmp(&b.pattern)));
    let (in_force, rules_version) = rules::in_force(ctx)?;
    let applied: Vec<rules::Rule> =
        in_force.rules.into_iter().filter(|r| kind.is_none_or(|k| r.recommendation_type == k)).collect();
    answer(&RulesAnswer {
        recommendation_type: kind.map(str::to_string),
        rules: list,
        in_force: applied,
        rules_version,
    })
}

/// `GET /learning/status`.
pub(crate) fn learning_status(plugin: &TrustPlugin, ctx: &mut dyn Context) -> Result<LearningStatus, PluginError> {
    let cfg = plugin.config();
    let meta = Meta::load(ctx)?;
    let learning = get_doc::<LearningDoc>(ctx, "learning")?.0;
    let new = meta.evaluated.saturating_sub(learning.evaluated_at_last_cycle);
    let patterns = get_doc::<PatternsDoc>(ctx, "patterns")?.0;
    Ok(LearningStatus {
        should_trigger_learning_cycle: new >= cfg.learning_trigger_outcomes,
        new_evaluations_since_last_cycle: new,
        learning_trigger_outcomes: cfg.learning_trigger_outcomes,
        cycles: learning.cycles,
        last_cycle: learning.last_result,
        patterns: patterns.patterns.len(),
        model_accuracy: patterns.accuracy,
        model_coverage: patterns.coverage,
        targets: Targets::SEED,
        totals: SeenTotals { recommendations: meta.recommendations, evaluated: meta.evaluated },
        newest_event_time: time(meta.newest),
    })
}
