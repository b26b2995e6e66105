//! Online per-agent (and per agent × recommendation type) counters and the
//! trust scores computed from them.
//!
//! Formulas (each dimension in `[0, 1]`):
//! * **outcome value** `y` of an evaluation: approved = 1, partial = 0.5,
//!   rejected = 0 (an outcome without a label uses `success`; `pending`
//!   outcomes are counted but do not enter any score).
//! * **accuracy** = posterior mean of the approval probability,
//!   Beta(prior_alpha plus s·d, prior_beta plus f·d), where `s`/`f` sum `y`/`1−y`
//!   over evaluations and `d` is the inactivity decay below. The credible interval at
//!   `credible_level` comes from `learnloop_stats::beta_posterior`.
//! * **consistency** = 1 − 2·σ(quality), σ the population standard deviation of
//!   the evaluations' quality (`quality` in `[0, 1]`, else `y`); 0.5 with fewer
//!   than 2 evaluations. An agent whose results swing widely is less predictable.
//! * **timeliness** = mean of 0.5^(latency / timeliness_half_life_hours), the
//!   latency being the outcome's event time minus its recommendation's; 0.5
//!   when no latency is known.
//! * **reliability** = evaluations that reached a final status / recommendations
//!   made (capped at 1): how often the agent's work was delivered and judged.
//! * **confidence factor** = n / (n + confidence_k), n = s·d + f·d (effective
//!   evaluations), so five samples count for less than five hundred.
//! * **overall** = (w_a·accuracy + w_c·consistency + w_t·timeliness +
//!   w_r·reliability) × confidence factor.
//! * **inactivity decay** d = 0.5^(max(0, idle_days − inactivity_grace_days) /
//!   inactivity_half_life_days), idle_days measured from the agent's last event
//!   to the newest event of the workspace (never the wall clock): the evidence
//!   of a long-silent agent fades, its interval widens again.
//! * **learning-rate view** (the seed's update): each dimension keeps
//!   v ← v + learning_rate·(signal − v) from 0.5, with signals y, 1 − |quality −
//!   y|, the latency score and 1 (a final evaluation arrived).
//! * **trend** (improving / stable / declining / insufficient_data) is the
//!   state of a sequential change test ([`ChangeTest`]), updated online
//!   with every final evaluation, not a fixed gap between two EWMAs.
//!   - *Reference.* The agent's history since the test last (re)started,
//!     less its newest 10 blocks of `decline_window` evaluations (so a
//!     change is not absorbed into what it is compared with before it can
//!     be detected), recomputed when a block completes. Below
//!     `decline_min_history` evaluations nothing is monitored
//!     (insufficient_data). Each evaluation of type t is expected to score
//!     e_t, the reference's (agent, t) rate shrunk towards the reference's
//!     overall rate (a Beta(prior_alpha, prior_beta) posterior mean) with
//!     `decline_shrinkage` pseudo-evaluations, so a change of the type mix
//!     is not mistaken for a change of quality (the risk adjustment of
//!     Steiner et al.'s risk-adjusted CUSUM, 2000).
//!   - *Statistic.* Two one-sided Bernoulli CUSUMs of log-likelihood
//!     ratios: the in-control rate e_t against the alternative whose odds
//!     are r = `decline_odds_ratio` times e_t's (a decline; 1/r: an
//!     improvement). One evaluation adds y·ln r − ln(1 − e_t + r·e_t)
//!     ([`cusum_increments`]; partial outcomes, y = 0.5, the mean of both);
//!     S = max(0, S + increment). The default r = 0.3 is a drop of about
//!     0.3 from 0.8 (0.8 → 0.55, 0.9 → 0.73, 0.7 → 0.41); the CUSUM detects
//!     other sizes too, a smaller drop more slowly.
//!   - *Threshold.* An alarm when S ≥ h, h from the in-control average run
//!     length `decline_arl0` by Siegmund's approximation
//!     ([`cusum_threshold`], solved at the in-control rate with the
//!     shortest run length, so no agent's run length is much shorter than
//!     `decline_arl0`; within 10% in the simulation of `tests/decline.rs`).
//!     Once S ≥ h the alarm is recorded, the trend becomes
//!     declining (improving) and the test restarts: its reference is the
//!     agent's evaluations from then on, and the trend returns to stable
//!     when that reference reaches `decline_min_history` evaluations again
//!     and monitoring resumes.
//!   - *Multiplicity.* Each agent's false alarms arrive at a rate of about
//!     one per `decline_arl0` evaluations (the CUSUM's run length is
//!     roughly geometric), so A agents watched for N evaluations each raise
//!     a false alarm with probability ≤ A·N/`decline_arl0` (a union bound
//!     over agents and evaluations: family-wise, stronger than a
//!     Benjamini–Hochberg false-discovery rate over the agents of one run,
//!     and independent of how often `trust_recalculation` runs). Default
//!     5·10⁶: ten agents × 10,000 evaluations ≤ 2%. Estimating e_t from a
//!     finite reference adds false alarms beyond that bound; the test
//!     `tests/decline.rs` measures the total.
//!   - *Alerting.* `trust_recalculation` raises a `trust_declining` alert
//!     for every agent with a decline alarm since its previous run (the
//!     alarm counts are kept in its snapshot). The state is a function of
//!     the history alone, so `learnloop replay` rebuilds it exactly. The
//!     fast (α = 0.2) and slow (α = 0.05) EWMAs of `y` are still reported
//!     (`ewma`) but decide nothing.

use learnloop_plugin_api::{PluginError, Timestamp};
use learnloop_stats::{Ewma, beta_posterior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Config;

/// Microseconds per day.
pub const DAY: f64 = 86_400_000_000.0;
/// Microseconds per hour.
pub const HOUR: f64 = 3_600_000_000.0;

/// A time in µs (negative: the epoch) as a [`Timestamp`], for history queries.
pub(crate) fn timestamp(us: i64) -> Result<Timestamp, PluginError> {
    Timestamp::from_micros(us.max(0)).ok_or_else(|| PluginError::internal(format!("time {us} µs is out of range")))
}

/// Counters of one agent, or one agent × type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Recommendations made.
    pub recommendations: u64,
    /// Outcomes with a final status (approved, partial, rejected).
    pub evaluated: u64,
    /// Outcomes still `pending`.
    pub pending: u64,
    /// Approved.
    pub approved: u64,
    /// Partially approved.
    pub partial: u64,
    /// Rejected.
    pub rejected: u64,
    /// Σy.
    pub s: f64,
    /// Σ(1−y).
    pub f: f64,
    /// Σquality.
    pub q_sum: f64,
    /// Σquality².
    pub q_sq: f64,
    /// Σ latency score.
    pub timely_sum: f64,
    /// Evaluations with a known latency.
    pub timely_n: u64,
    /// Σ latency in hours.
    pub latency_hours_sum: f64,
    /// Σ stated confidence of evaluated recommendations.
    pub confidence_sum: f64,
    /// Evaluated recommendations that stated a confidence.
    pub confidence_n: u64,
    /// Event time (µs) of the last event.
    pub last_time: i64,
}

impl Counts {
    /// Adds one final evaluation.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &mut self,
        label: &str,
        y: f64,
        quality: f64,
        latency_hours: Option<f64>,
        confidence: Option<f64>,
        cfg: &Config,
        t: i64,
    ) {
        self.evaluated += 1;
        match label {
            "approved" => self.approved += 1,
            "partial" => self.partial += 1,
            _ => self.rejected += 1,
        }
        self.s += y;
        self.f += 1.0 - y;
        self.q_sum += quality;
        self.q_sq += quality * quality;
        if let Some(h) = latency_hours {
            self.timely_sum += latency_score(h, cfg);
            self.timely_n += 1;
            self.latency_hours_sum += h;
        }
        if let Some(c) = confidence {
            self.confidence_sum += c;
            self.confidence_n += 1;
        }
        self.last_time = self.last_time.max(t);
    }

    /// The trust scores of these counters as seen at `newest` (µs).
    pub fn score(&self, cfg: &Config, newest: i64) -> Score {
        let idle_days = ((newest - self.last_time) as f64 / DAY).max(0.0);
        let decay = if idle_days > cfg.inactivity_grace_days {
            0.5f64.powf((idle_days - cfg.inactivity_grace_days) / cfg.inactivity_half_life_days)
        } else {
            1.0
        };
        let (s, f) = (self.s * decay, self.f * decay);
        let post = beta_posterior(0, 0, cfg.prior_alpha + s, cfg.prior_beta + f, cfg.credible_level)
            .expect("config validated: positive priors, level in (0, 1)");
        let n = self.evaluated as f64;
        let consistency = if self.evaluated >= 2 {
            let m = self.q_sum / n;
            let var = (self.q_sq / n - m * m).max(0.0);
            (1.0 - 2.0 * var.sqrt()).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let timeliness = if self.timely_n > 0 { self.timely_sum / self.timely_n as f64 } else { 0.5 };
        let reliability = if self.recommendations > 0 {
            (self.evaluated as f64 / self.recommendations as f64).min(1.0)
        } else if self.evaluated > 0 {
            1.0
        } else {
            0.0
        };
        let n_eff = s + f;
        let confidence_factor = n_eff / (n_eff + cfg.confidence_k);
        let w = &cfg.weights;
        let weighted = w.accuracy * post.mean
            + w.consistency * consistency
            + w.timeliness * timeliness
            + w.reliability * reliability;
        Score {
            overall: weighted * confidence_factor,
            accuracy: post.mean,
            consistency,
            timeliness,
            reliability,
            confidence_factor,
            lower: post.lower,
            upper: post.upper,
            alpha: post.alpha,
            beta: post.beta,
            effective_samples: n_eff,
            decay,
            idle_days,
        }
    }

    /// Approval rate (approved / evaluated), partial counted as half.
    pub fn approval_rate(&self) -> Option<f64> {
        (self.evaluated > 0).then(|| self.s / self.evaluated as f64)
    }

    /// The counters as routes show them, with derived averages.
    pub fn stats(&self) -> CountStats {
        CountStats {
            recommendations: self.recommendations,
            evaluated: self.evaluated,
            pending: self.pending,
            approved: self.approved,
            partial: self.partial,
            rejected: self.rejected,
            approval_rate: self.approval_rate(),
            avg_quality_score: (self.evaluated > 0).then(|| 100.0 * self.q_sum / self.evaluated as f64),
            avg_latency_hours: (self.timely_n > 0).then(|| self.latency_hours_sum / self.timely_n as f64),
            avg_confidence: (self.confidence_n > 0).then(|| self.confidence_sum / self.confidence_n as f64),
        }
    }
}

/// The counters of an agent or agent × type as routes show them (`stats`, `by_type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CountStats {
    /// Recommendations made.
    pub recommendations: u64,
    /// Outcomes with a final status.
    pub evaluated: u64,
    /// Outcomes still `pending`.
    pub pending: u64,
    /// Approved.
    pub approved: u64,
    /// Partially approved.
    pub partial: u64,
    /// Rejected.
    pub rejected: u64,
    /// Approved / evaluated, partial counted as half (`null`: none evaluated).
    pub approval_rate: Option<f64>,
    /// Mean quality on the 0–100 scale.
    pub avg_quality_score: Option<f64>,
    /// Mean evaluation latency in hours, over evaluations with a known latency.
    pub avg_latency_hours: Option<f64>,
    /// Mean stated confidence of evaluated recommendations.
    pub avg_confidence: Option<f64>,
}

/// 0.5^(latency / half-life): 1 for an instant evaluation.
pub fn latency_score(hours: f64, cfg: &Config) -> f64 {
    0.5f64.powf(hours.max(0.0) / cfg.timeliness_half_life_hours)
}

/// Trust scores of one agent or agent × type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Weighted dimensions × confidence factor.
    pub overall: f64,
    /// Posterior mean approval.
    pub accuracy: f64,
    /// 1 − 2σ(quality).
    pub consistency: f64,
    /// Mean latency score.
    pub timeliness: f64,
    /// Final evaluations / recommendations.
    pub reliability: f64,
    /// n / (n + k).
    pub confidence_factor: f64,
    /// Lower end of the credible interval of the approval probability.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Posterior α.
    pub alpha: f64,
    /// Posterior β.
    pub beta: f64,
    /// Evaluations after inactivity decay.
    pub effective_samples: f64,
    /// Inactivity decay applied to the evidence.
    pub decay: f64,
    /// Days since the last event, relative to the workspace's newest event.
    pub idle_days: f64,
}

impl Score {
    /// The scores as routes show them, with the interval at `level` spelled out.
    pub fn answer(&self, level: f64) -> TrustScores {
        TrustScores {
            overall_trust_score: self.overall,
            accuracy_score: self.accuracy,
            consistency_score: self.consistency,
            timeliness_score: self.timeliness,
            reliability_score: self.reliability,
            confidence_factor: self.confidence_factor,
            bayesian: Bayesian {
                alpha: self.alpha,
                beta: self.beta,
                mean: self.accuracy,
                credible_interval: [self.lower, self.upper],
                level,
                uncertainty: self.upper - self.lower,
                effective_samples: self.effective_samples,
                inactivity_decay: self.decay,
                idle_days: self.idle_days,
            },
        }
    }
}

/// The trust scores of an agent or agent × type as routes show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrustScores {
    /// Weighted dimensions × confidence factor.
    pub overall_trust_score: f64,
    /// Posterior mean approval.
    pub accuracy_score: f64,
    /// 1 − 2σ(quality).
    pub consistency_score: f64,
    /// Mean latency score.
    pub timeliness_score: f64,
    /// Final evaluations / recommendations.
    pub reliability_score: f64,
    /// n / (n + k).
    pub confidence_factor: f64,
    /// The Beta posterior of the approval probability.
    pub bayesian: Bayesian,
}

/// The Beta posterior behind a trust score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bayesian {
    /// Posterior α.
    pub alpha: f64,
    /// Posterior β.
    pub beta: f64,
    /// Posterior mean.
    pub mean: f64,
    /// Credible interval at `level`.
    pub credible_interval: [f64; 2],
    /// Credibility level.
    pub level: f64,
    /// Width of the interval.
    pub uncertainty: f64,
    /// Evaluations after inactivity decay.
    pub effective_samples: f64,
    /// Inactivity decay applied to the evidence.
    pub inactivity_decay: f64,
    /// Days since the last event, relative to the workspace's newest event.
    pub idle_days: f64,
}

/// The seed's learning-rate scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LearningRate {
    /// Accuracy.
    pub accuracy: f64,
    /// Consistency.
    pub consistency: f64,
    /// Timeliness.
    pub timeliness: f64,
    /// Reliability.
    pub reliability: f64,
}

impl Default for LearningRate {
    fn default() -> Self {
        Self { accuracy: 0.5, consistency: 0.5, timeliness: 0.5, reliability: 0.5 }
    }
}

impl LearningRate {
    fn update(v: &mut f64, lr: f64, signal: f64) {
        *v = (*v + lr * (signal - *v)).clamp(0.0, 1.0);
    }
}

/// The state document of one agent: `agent/<agent id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDoc {
    /// Agent display name (payload `agent_name`), last seen.
    pub name: Option<String>,
    /// All types.
    pub all: Counts,
    /// Per recommendation type.
    pub types: BTreeMap<String, Counts>,
    /// The seed's learning-rate update.
    pub learning_rate: LearningRate,
    /// Fast EWMA of y (trend).
    pub fast: Ewma,
    /// Slow EWMA of y (trend).
    pub slow: Ewma,
    /// The change test behind the trend.
    #[serde(default)]
    pub change: ChangeTest,
}

impl Default for AgentDoc {
    fn default() -> Self {
        Self {
            name: None,
            all: Counts::default(),
            types: BTreeMap::new(),
            learning_rate: LearningRate::default(),
            fast: Ewma::new(0.2).expect("valid alpha"),
            slow: Ewma::new(0.05).expect("valid alpha"),
            change: ChangeTest::default(),
        }
    }
}

impl AgentDoc {
    /// One final evaluation of a recommendation of type `kind`.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &mut self,
        kind: &str,
        label: &str,
        y: f64,
        quality: f64,
        latency_hours: Option<f64>,
        confidence: Option<f64>,
        cfg: &Config,
        t: i64,
    ) {
        self.all.evaluate(label, y, quality, latency_hours, confidence, cfg, t);
        self.types.entry(kind.to_string()).or_default().evaluate(label, y, quality, latency_hours, confidence, cfg, t);
        let lr = cfg.learning_rate;
        LearningRate::update(&mut self.learning_rate.accuracy, lr, y);
        LearningRate::update(&mut self.learning_rate.consistency, lr, 1.0 - (quality - y).abs());
        if let Some(h) = latency_hours {
            LearningRate::update(&mut self.learning_rate.timeliness, lr, latency_score(h, cfg));
        }
        LearningRate::update(&mut self.learning_rate.reliability, lr, 1.0);
        let _ = self.fast.update(y);
        let _ = self.slow.update(y);
        self.change.add(kind, y, &self.types, self.all.evaluated, cfg);
    }

    /// improving / stable / declining / insufficient_data: the state of the
    /// agent's change test ([`ChangeTest`]).
    pub fn trend(&self) -> &'static str {
        match self.change.status.as_deref() {
            Some("declining") => "declining",
            Some("improving") => "improving",
            Some(_) => "stable",
            None => "insufficient_data",
        }
    }
}

/// The threshold h of the change test's CUSUMs for an in-control average
/// run length of `arl0` evaluations and the alternative odds ratio `r`
/// (< 1: decline; the improvement side uses 1/r and is symmetric).
///
/// Siegmund's approximation for a CUSUM of log-likelihood ratios (whose
/// in-control moment generating function equals 1 at θ = 1):
/// ARL0 ≈ (e^{h+ρ} − h − ρ − 1) / K, K = KL(p0 ‖ p1) the in-control drift
/// and ρ the overshoot correction, taken as 1.166·σ (σ the standard
/// deviation of one increment at p0). K and σ depend on the in-control rate
/// p0; h is solved at the p0 in [0.02, 0.98] with the shortest run length
/// (the largest K·e^{−ρ}), so no agent's in-control run length is much
/// shorter than `arl0`: `tests/decline.rs` simulates it at ARL0 = 2,000
/// (1,834 at rate 0.5, the worst case, up to 5,328 at rate 0.95).
pub fn cusum_threshold(arl0: f64, r: f64) -> f64 {
    thread_local! {
        // The last (ARL0, r, h): the threshold is asked for at every evaluation.
        static LAST: std::cell::Cell<(f64, f64, f64)> = const { std::cell::Cell::new((f64::NAN, f64::NAN, 0.0)) };
    }
    let (a0, r0, h0) = LAST.get();
    if a0 == arl0 && r0 == r {
        return h0;
    }
    let h = solve_threshold(arl0, r);
    LAST.set((arl0, r, h));
    h
}

fn solve_threshold(arl0: f64, r: f64) -> f64 {
    let r = if r > 1.0 { 1.0 / r } else { r };
    let mut worst = (0.0f64, 0.0f64);
    for i in 1..=48 {
        let p0 = 0.02 * i as f64;
        let (a, b) = cusum_increments(p0, r);
        let k = -(p0 * a + (1.0 - p0) * b);
        let sigma = p0.sqrt() * (1.0 - p0).sqrt() * (b - a).abs();
        let rho = 1.166 * sigma;
        if k * (-rho).exp() > worst.0 * (-worst.1).exp() {
            worst = (k, rho);
        }
    }
    let (k, rho) = worst;
    // Fixed point of e^{h+ρ} = ARL0·K + h + ρ + 1 (converges in a few steps).
    let mut h = (arl0 * k).max(1.0).ln();
    for _ in 0..50 {
        h = (arl0 * k + h + 1.0).ln();
    }
    (h - rho).max(0.5)
}

/// The log-likelihood-ratio increments of one evaluation expected to be
/// approved with probability `e`, against the alternative whose odds are `r`
/// times its odds: (approved, rejected). A partial evaluation (y = 0.5)
/// takes the mean of the two.
pub fn cusum_increments(e: f64, r: f64) -> (f64, f64) {
    let d = (1.0 - e + r * e).ln();
    (r.ln() - d, -d)
}

/// One one-sided CUSUM: the statistic and the stretch since it was last 0
/// (the estimated change point is where that stretch starts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cusum {
    /// The statistic S = max(0, S + log-likelihood ratio).
    pub s: f64,
    /// Evaluations since S was last 0.
    pub n: u64,
    /// Σy over them.
    pub sy: f64,
    /// Σ expected y over them.
    pub se: f64,
}

impl Cusum {
    /// Adds one outcome value `y` expected at `e`, against the alternative
    /// of odds ratio `r`.
    pub fn update(&mut self, y: f64, e: f64, r: f64) {
        let (a, b) = cusum_increments(e, r);
        let x = y * a + (1.0 - y) * b;
        if self.s + x <= 0.0 {
            *self = Cusum::default();
        } else {
            self.s += x;
            self.n += 1;
            self.sy += y;
            self.se += e;
        }
    }
}

/// One alarm of the change test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alarm {
    /// The agent's final evaluations when it was raised.
    pub at_evaluation: u64,
    /// The CUSUM statistic then (≥ the threshold).
    pub statistic: f64,
    /// Evaluations since the estimated change point (the CUSUM's last 0).
    pub evaluations_since_change: u64,
    /// Mean outcome value over them.
    pub observed_rate: f64,
    /// What the agent's history predicted for them (type-adjusted).
    pub expected_rate: f64,
}

/// The sequential change test behind an agent's trend (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeTest {
    /// Evaluations in the current, incomplete block.
    pub n: u64,
    /// The current block per type: evaluations, Σy.
    pub block: BTreeMap<String, (u64, f64)>,
    /// The newest completed blocks (newest last, at most [`LAG_BLOCKS`]):
    /// held out of the reference.
    pub recent: Vec<BTreeMap<String, (u64, f64)>>,
    /// Per type, the agent's counters when the test last restarted (after
    /// an alarm): evaluations before it are no part of the reference.
    pub base: BTreeMap<String, (u64, f64)>,
    /// Per type, the in-control approval rate (the reference's, shrunk).
    pub expect: BTreeMap<String, f64>,
    /// The reference's overall rate (a type it never saw); `None` while the
    /// reference is shorter than `decline_min_history` (nothing monitored).
    pub expect_all: Option<f64>,
    /// Evaluations in the reference.
    pub reference: u64,
    /// Evaluations monitored since the last restart.
    pub monitored: u64,
    /// The decline CUSUM.
    pub down: Cusum,
    /// The improvement CUSUM.
    pub up: Cusum,
    /// Decline alarms so far.
    pub declines: u64,
    /// Improvement alarms so far.
    pub improvements: u64,
    /// The newest decline alarm.
    pub last_decline: Option<Alarm>,
    /// The newest improvement alarm.
    pub last_improvement: Option<Alarm>,
    /// declining / improving (the last alarm's, until the test monitors
    /// again), stable, or `None` before the first monitored evaluation.
    pub status: Option<String>,
}

/// Completed blocks held out of the reference: the reference is the agent's
/// history before its newest `LAG_BLOCKS × decline_window` evaluations, so
/// a change is not absorbed into what it is compared with before it can be
/// detected.
pub const LAG_BLOCKS: usize = 10;

impl ChangeTest {
    /// Adds one evaluation of type `kind` with value `y`; `types` are the
    /// agent's counters per type *including* it; `evaluated` its final
    /// evaluations including it.
    pub fn add(&mut self, kind: &str, y: f64, types: &BTreeMap<String, Counts>, evaluated: u64, cfg: &Config) {
        if let Some(all) = self.expect_all {
            let e = self.expect.get(kind).copied().unwrap_or(all);
            let r = cfg.decline_odds_ratio;
            self.down.update(y, e, r);
            self.up.update(y, e, 1.0 / r);
            self.monitored += 1;
            let h = cfg.decline_threshold();
            let alarm = if self.down.s >= h {
                self.declines += 1;
                Some(("declining", self.down.clone()))
            } else if self.up.s >= h {
                self.improvements += 1;
                Some(("improving", self.up.clone()))
            } else {
                None
            };
            if let Some((direction, c)) = alarm {
                let details = Some(Alarm {
                    at_evaluation: evaluated,
                    statistic: c.s,
                    evaluations_since_change: c.n,
                    observed_rate: c.sy / c.n.max(1) as f64,
                    expected_rate: c.se / c.n.max(1) as f64,
                });
                if direction == "declining" {
                    self.last_decline = details;
                } else {
                    self.last_improvement = details;
                }
                self.restart(types);
                self.status = Some(direction.into());
                return;
            }
        }
        self.n += 1;
        let b = self.block.entry(kind.to_string()).or_insert((0, 0.0));
        b.0 += 1;
        b.1 += y;
        if self.n < cfg.decline_window {
            return;
        }
        self.n = 0;
        self.recent.push(std::mem::take(&mut self.block));
        if self.recent.len() > LAG_BLOCKS {
            self.recent.remove(0);
        }
        self.reference_update(types, cfg);
    }

    /// Forgets the reference and the statistics after an alarm: the agent
    /// is compared with its new level once that has `decline_min_history`
    /// evaluations (plus the lag).
    fn restart(&mut self, types: &BTreeMap<String, Counts>) {
        self.base = types.iter().map(|(t, c)| (t.clone(), (c.evaluated, c.s))).collect();
        self.n = 0;
        self.block.clear();
        self.recent.clear();
        self.expect.clear();
        self.expect_all = None;
        self.reference = 0;
        self.monitored = 0;
        self.down = Cusum::default();
        self.up = Cusum::default();
    }

    /// The in-control rates from the reference: the agent's evaluations
    /// since the last restart, less the held-out newest blocks.
    fn reference_update(&mut self, types: &BTreeMap<String, Counts>, cfg: &Config) {
        let mut held: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for blk in &self.recent {
            for (t, (k, sy)) in blk {
                let h = held.entry(t.as_str()).or_insert((0, 0.0));
                h.0 += k;
                h.1 += sy;
            }
        }
        let refs: BTreeMap<&str, (u64, f64)> = types
            .iter()
            .map(|(t, c)| {
                let (bn, bs) = self.base.get(t).copied().unwrap_or((0, 0.0));
                let (hn, hs) = held.get(t.as_str()).copied().unwrap_or((0, 0.0));
                (t.as_str(), (c.evaluated.saturating_sub(bn + hn), (c.s - bs - hs).max(0.0)))
            })
            .collect();
        let (ref_n, ref_s) = refs.values().fold((0u64, 0.0), |a, r| (a.0 + r.0, a.1 + r.1));
        self.reference = ref_n;
        if ref_n < cfg.decline_min_history {
            return;
        }
        let overall = (cfg.prior_alpha + ref_s) / (cfg.prior_alpha + cfg.prior_beta + ref_n as f64);
        let m = cfg.decline_shrinkage;
        self.expect = refs
            .iter()
            .filter(|(_, r)| r.0 > 0)
            .map(|(t, (n, s))| (t.to_string(), ((s + m * overall) / (*n as f64 + m)).clamp(1e-3, 1.0 - 1e-3)))
            .collect();
        if self.expect_all.is_none() {
            // Monitoring (re)starts: the agent is stable at its reference.
            self.status = Some("stable".into());
        }
        self.expect_all = Some(overall.clamp(1e-3, 1.0 - 1e-3));
    }
}

/// weak / moderate / strong / very_strong from a rate in `[0, 1]`.
pub fn strength(rate: f64) -> &'static str {
    if rate >= 0.9 {
        "very_strong"
    } else if rate >= 0.8 {
        "strong"
    } else if rate >= 0.7 {
        "moderate"
    } else {
        "weak"
    }
}
