//! Routing at decision time: `POST /route`.
//!
//! Body ([`RouteBody`]; unknown fields are refused): `{"recommendation_type":
//! "...", "candidates": ["agent", ...], "strategy": "thompson" | "greedy"
//! (default `routing_strategy`), "seed": u64 (optional)}`.
//!
//! Each candidate's approval probability for the type has a Beta posterior
//! from its (agent, type) counters, **shrunk towards the agent's rate on its
//! other types**: Beta(prior_alpha + m'·r + s, prior_beta + m'·(1 − r) + f),
//! where s/f are the type's (inactivity-decayed) successes/failures, r the
//! agent's approval rate on its other types and m' = m·n/(m + n) (n the
//! agent's evaluations of other types, so an agent known only on this type —
//! or not at all — keeps the plain prior). The shrinkage strength m is
//! estimated from the candidates' own cells by the method of moments: τ² =
//! mean over (agent, type) cells with ≥ 5 evaluations of (rate − r)² −
//! rate(1 − rate)/n, and m = mean r(1 − r) / τ² − 1, clamped to [1, 5]
//! (types that hardly differ → strong shrinkage; specialists → weak; the cap
//! because a noisy τ² near 0 would otherwise hide a specialist). The answer
//! reports m as `shrinkage_strength`.
//!
//! * **greedy** ranks by the *lower* end of the credible interval and picks
//!   the first: an agent outranks another only when the evidence supports it,
//!   so a new agent with 3 good outcomes (Beta(4, 1): mean 0.8, lower ≈ 0.40)
//!   does not outrank an established one with 240 of 300 approved (lower ≈
//!   0.75) — it does once its own interval lies high enough.
//! * **thompson** (bounded exploration): with probability 1 − ε it picks the
//!   *leader*, the candidate with the highest posterior mean; with
//!   probability ε = routing_explore_k / (routing_explore_k + n) — n the
//!   leader's effective evaluations of the type, so exploration decays with
//!   evidence — it picks the argmax of one draw from each posterior
//!   (Thompson sampling). The *ranking* it returns is greedy's (lower end of
//!   the interval). The random generator is SplitMix64 seeded with `seed` if
//!   given, else with the FNV-1a hash of the request body's JSON text with
//!   object keys sorted (the same in every build, whatever serde_json's key
//!   order), so the
//!   same request always gets the same answer and different requests explore.
//!   Selection probabilities are ε·P(argmax of a draw) + (1 − ε)·[leader],
//!   P estimated from `routing_samples` draws of the same generator; greedy's
//!   are 1 for the pick and 0 otherwise.
//!
//! Every decision is logged as an insight of kind `route_decision` with the
//! candidates, the pick, the strategy, the seed and the selection
//! probabilities (the propensities off-policy evaluation needs).

use learnloop_plugin_api::{Context, InsightDraft, PluginError, RouteRequest, RouteResponse};
use schemars::JsonSchema;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::online::{Meta, load_agent};
use crate::routes::answer;
use crate::score::{AgentDoc, Counts};
use crate::{Config, TrustPlugin};

/// Selection probability per candidate, in candidate order (a JSON object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probabilities(pub Vec<(String, f64)>);

impl Serialize for Probabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl JsonSchema for Probabilities {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Probabilities".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Selection probability per candidate agent id (an object in candidate order).",
            "type": "object",
            "additionalProperties": generator.subschema_for::<f64>(),
        })
    }
}

impl<'de> Deserialize<'de> for Probabilities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probabilities;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of agent ids to probabilities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probabilities, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    out.push((k, v));
                }
                Ok(Probabilities(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A routing strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Bounded Thompson sampling: the leader, or with probability ε the
    /// argmax of one posterior draw per candidate.
    Thompson,
    /// The candidate with the highest lower end of its credible interval.
    Greedy,
}

impl Strategy {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Thompson => "thompson",
            Strategy::Greedy => "greedy",
        }
    }
}

/// The body of `POST /route`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// The recommendation type to route (not empty).
    #[schemars(length(min = 1))]
    pub recommendation_type: String,
    /// The candidate agent ids: 1 to 1000, distinct, none empty.
    #[schemars(length(min = 1, max = 1000))]
    pub candidates: Vec<String>,
    /// The strategy (default `routing_strategy` of the config).
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// Seed of the random generator (default: a hash of the body, so the
    /// same request gets the same answer).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// One candidate in the ranking of `POST /route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RankedCandidate {
    /// 1 for the first.
    pub rank: usize,
    /// The agent.
    pub agent_id: String,
    /// Posterior mean approval on the type (shrunk).
    pub approval_mean: f64,
    /// Its credible interval.
    pub credible_interval: [f64; 2],
    /// Width of the interval.
    pub uncertainty: f64,
    /// Final evaluations of the type.
    pub evaluated: u64,
    /// Posterior (α, β).
    pub posterior: [f64; 2],
    /// The agent's overall trust.
    pub overall_trust_score: f64,
    /// Probability that the strategy picks it.
    pub selection_probability: f64,
    /// Thompson: its draw in the decisive sample (`null` for greedy).
    pub sample: Option<f64>,
}

/// The answer of `POST /route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteAnswer {
    /// The recommendation type routed.
    pub recommendation_type: String,
    /// The strategy used.
    pub strategy: Strategy,
    /// The generator's seed.
    pub seed: u64,
    /// The chosen agent.
    pub pick: String,
    /// Selection probability per candidate (the propensities).
    pub selection_probabilities: Probabilities,
    /// Candidates by the lower end of their interval.
    pub ranking: Vec<RankedCandidate>,
    /// Credibility level of the intervals.
    pub credible_level: f64,
    /// Strength m of the shrinkage towards the agent's other types.
    pub shrinkage_strength: f64,
    /// Thompson: probability of exploring (`null` for greedy).
    pub exploration_probability: Option<f64>,
    /// Version of the trust weights in force.
    pub weights_version: u64,
    /// Version of the routing rules in force.
    pub rules_version: u64,
    /// Candidates an `avoid` rule left out.
    pub excluded_by_rules: Vec<String>,
    /// Candidates a `prefer` rule marks.
    pub preferred_by_rules: Vec<String>,
}

/// The data of a `route_decision` insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    /// The recommendation type routed.
    pub recommendation_type: String,
    /// The strategy used.
    pub strategy: Strategy,
    /// The generator's seed.
    pub seed: u64,
    /// The chosen agent.
    pub pick: String,
    /// Selection probability per candidate.
    pub selection_probabilities: Probabilities,
}

/// The shared seeded generator (`learnloop_stats::SplitMix64`) plus the
/// Gamma/Beta draws Thompson sampling needs.
pub struct Rng(learnloop_stats::SplitMix64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(learnloop_stats::SplitMix64(seed))
    }
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.uniform()
    }
    fn normal(&mut self) -> f64 {
        self.0.normal()
    }
    /// Gamma(shape, 1) by Marsaglia–Tsang (boosted for shape < 1).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    /// Beta(a, b).
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y > 0.0 { x / (x + y) } else { 0.5 }
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Answers `POST /route`.
pub fn route(plugin: &TrustPlugin, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
    let (cfg, weights_version) = plugin.effective(ctx)?;
    let cfg = &cfg;
    let body: RouteBody = req.body_as()?;
    let kind = body.recommendation_type.as_str();
    if kind.is_empty() {
        return Err(PluginError::invalid("recommendation_type", "must not be empty"));
    }
    if body.candidates.is_empty() || body.candidates.len() > 1000 {
        return Err(PluginError::invalid("candidates", "must hold 1 to 1000 agent ids"));
    }
    let mut ids: Vec<String> = Vec::new();
    for s in &body.candidates {
        if s.is_empty() {
            return Err(PluginError::invalid("candidates", "every candidate must be a non-empty string"));
        }
        if ids.contains(s) {
            return Err(PluginError::invalid("candidates", format!("{s:?} is listed twice")));
        }
        ids.push(s.clone());
    }
    // The routing rules in force leave out the agents they say to avoid for
    // this type, unless that would leave nobody.
    let (rules, rules_version) = crate::rules::in_force(ctx)?;
    let avoided: Vec<String> = ids.iter().filter(|a| rules.action(a, kind) == Some("avoid")).cloned().collect();
    let excluded = if avoided.len() < ids.len() { avoided } else { Vec::new() };
    ids.retain(|a| !excluded.contains(a));
    let preferred: Vec<String> = ids.iter().filter(|a| rules.action(a, kind) == Some("prefer")).cloned().collect();
    let strategy =
        body.strategy.unwrap_or(if cfg.routing_strategy == "greedy" { Strategy::Greedy } else { Strategy::Thompson });
    // Unseeded: the hash of the body as sent (keys sorted).
    let seed = body.seed.unwrap_or_else(|| fnv1a(canonical_json(&req.body).as_bytes()));
    let newest = Meta::load(ctx)?.newest;
    let mut docs = Vec::new();
    for id in &ids {
        docs.push(load_agent(ctx, id)?.unwrap_or_default());
    }
    let m = shrinkage_strength(&docs, cfg);
    let mut rows = Vec::new();
    for (id, doc) in ids.iter().zip(&docs) {
        let c = doc.types.get(kind).cloned().unwrap_or_else(Counts::default);
        let (alpha, beta) = shrunk(doc, &c, m, cfg, newest);
        let post = learnloop_stats::beta_posterior(0, 0, alpha, beta, cfg.credible_level)
            .map_err(|e| PluginError::internal(e.to_string()))?;
        let n_type = c.score(cfg, newest).effective_samples;
        let overall = doc.all.score(cfg, newest).overall;
        rows.push((id.clone(), post, c.evaluated, overall, n_type));
    }
    let n = rows.len();
    let mut rng = Rng::new(seed);
    let mut explore = None;
    let (pick, probs, samples) = if strategy == Strategy::Greedy {
        let best = (0..n)
            .max_by(|&a, &b| rows[a].1.lower.total_cmp(&rows[b].1.lower).then(rows[b].0.cmp(&rows[a].0)))
            .expect("non-empty");
        let mut p = vec![0.0; n];
        p[best] = 1.0;
        (best, p, None)
    } else {
        let leader = (0..n)
            .max_by(|&a, &b| rows[a].1.mean.total_cmp(&rows[b].1.mean).then(rows[b].0.cmp(&rows[a].0)))
            .expect("non-empty");
        let k = cfg.routing_explore_k;
        let eps = if k > 0.0 { k / (k + rows[leader].4) } else { 0.0 };
        explore = Some(eps);
        let draw = |rng: &mut Rng| -> Vec<f64> { rows.iter().map(|r| rng.beta(r.1.alpha, r.1.beta)).collect() };
        let argmax = |d: &[f64]| (0..n).max_by(|&a, &b| d[a].total_cmp(&d[b]).then(b.cmp(&a))).expect("non-empty");
        let explores = rng.uniform() < eps;
        let first = draw(&mut rng);
        let pick = if explores { argmax(&first) } else { leader };
        let mut wins = vec![0u64; n];
        for _ in 0..cfg.routing_samples {
            wins[argmax(&draw(&mut rng))] += 1;
        }
        let p = wins
            .iter()
            .enumerate()
            .map(|(i, w)| eps * *w as f64 / cfg.routing_samples as f64 + if i == leader { 1.0 - eps } else { 0.0 })
            .collect();
        (pick, p, Some(first))
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| rows[b].1.lower.total_cmp(&rows[a].1.lower).then(rows[a].0.cmp(&rows[b].0)));
    let ranking: Vec<RankedCandidate> = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let (id, s, evaluated, overall, _) = &rows[i];
            RankedCandidate {
                rank: rank + 1,
                agent_id: id.clone(),
                approval_mean: s.mean,
                credible_interval: [s.lower, s.upper],
                uncertainty: s.upper - s.lower,
                evaluated: *evaluated,
                posterior: [s.alpha, s.beta],
                overall_trust_score: *overall,
                selection_probability: probs[i],
                sample: samples.as_ref().map(|d| d[i]),
            }
        })
        .collect();
    let probabilities = Probabilities(rows.iter().zip(&probs).map(|(r, p)| (r.0.clone(), *p)).collect());
    let pick_id = rows[pick].0.clone();
    ctx.emit_insight(InsightDraft {
        kind: "route_decision".into(),
        title: format!("trust: routed {kind} to {pick_id} ({})", strategy.as_str()),
        detail: "selection probabilities are the propensities for off-policy evaluation".into(),
        confidence: probs[pick],
        impact: 0.0,
        data: serde_json::to_value(RouteDecision {
            recommendation_type: kind.to_string(),
            strategy,
            seed,
            pick: pick_id.clone(),
            selection_probabilities: probabilities.clone(),
        })?,
    })?;
    answer(&RouteAnswer {
        recommendation_type: kind.to_string(),
        strategy,
        seed,
        pick: pick_id,
        selection_probabilities: probabilities,
        ranking,
        credible_level: cfg.credible_level,
        shrinkage_strength: m,
        exploration_probability: explore,
        weights_version,
        rules_version,
        excluded_by_rules: excluded,
        preferred_by_rules: preferred,
    })
}

/// The largest shrinkage strength: the moment estimate of τ² is noisy with
/// few cells, and over-shrinking hides a type specialist.
pub const MAX_SHRINKAGE: f64 = 5.0;

/// The method-of-moments shrinkage strength of (agent, type) rates towards
/// each agent's rate on its other types, from `docs` (see the module docs).
pub fn shrinkage_strength(docs: &[AgentDoc], cfg: &Config) -> f64 {
    let (mut tau2, mut var, mut cells) = (0.0, 0.0, 0usize);
    for d in docs {
        for c in d.types.values().filter(|c| c.evaluated >= 5) {
            let n_o = (d.all.s + d.all.f) - (c.s + c.f);
            if n_o < 5.0 {
                continue;
            }
            let r = (cfg.prior_alpha + d.all.s - c.s) / (cfg.prior_alpha + cfg.prior_beta + n_o);
            let n = c.s + c.f;
            let rate = c.s / n;
            tau2 += (rate - r).powi(2) - rate * (1.0 - rate) / n;
            var += r * (1.0 - r);
            cells += 1;
        }
    }
    if cells == 0 {
        return 1.0;
    }
    let (tau2, var) = (tau2 / cells as f64, var / cells as f64);
    if tau2 <= 1e-9 { MAX_SHRINKAGE } else { (var / tau2 - 1.0).clamp(1.0, MAX_SHRINKAGE) }
}

/// The posterior (α, β) of `doc`'s approval on the type with counters `c`,
/// shrunk towards its rate on its other types with strength `m`.
pub fn shrunk(doc: &AgentDoc, c: &Counts, m: f64, cfg: &Config, newest: i64) -> (f64, f64) {
    let t = c.score(cfg, newest);
    let all = doc.all.score(cfg, newest);
    let s_o = (all.alpha - cfg.prior_alpha - (t.alpha - cfg.prior_alpha)).max(0.0);
    let f_o = (all.beta - cfg.prior_beta - (t.beta - cfg.prior_beta)).max(0.0);
    let n_o = s_o + f_o;
    let r = (cfg.prior_alpha + s_o) / (cfg.prior_alpha + cfg.prior_beta + n_o);
    let m_eff = if n_o > 0.0 { m * n_o / (m + n_o) } else { 0.0 };
    (t.alpha + m_eff * r, t.beta + m_eff * (1.0 - r))
}

/// JSON text with every object's keys in sorted order: the same text for the
/// same value in every build (serde_json keeps insertion order only when a
/// dependency turns on its `preserve_order` feature).
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical_json(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_insertion_order() {
        let mut a = serde_json::Map::new();
        a.insert("zeta".into(), serde_json::json!([1, {"b": 2, "a": "x"}]));
        a.insert("alpha".into(), Value::Null);
        let mut b = serde_json::Map::new();
        b.insert("alpha".into(), Value::Null);
        b.insert("zeta".into(), serde_json::json!([1, {"a": "x", "b": 2}]));
        let (a, b) = (Value::Object(a), Value::Object(b));
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"alpha":null,"zeta":[1,{"a":"x","b":2}]}"#);
    }
}
