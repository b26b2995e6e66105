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
//!   verdict of a change test, not of a fixed threshold ([`ChangeTest`]). The
//!   agent's final evaluations are grouped in consecutive blocks of
//!   `decline_window`; the newest 10 blocks are kept per type. When a block
//!   completes, the windows of its newest 1, 2, 3, 5, 7 and 10 blocks
//!   ([`WINDOWS`]) are each compared with the agent's *reference*, its history
//!   before the oldest kept block (at least `decline_min_history`
//!   evaluations, else nothing is tested): each evaluation of type t in the
//!   window is expected to score e_t, the reference's (agent, t) rate shrunk
//!   towards the reference's overall rate with `decline_shrinkage`
//!   pseudo-evaluations, so a change of the type mix is not mistaken for a
//!   change of quality. Under "no change" the window's Σy has mean Σ k_t·e_t
//!   and, besides the binomial spread, the uncertainty of the reference's
//!   estimates (variance Σ_t k_t²·e_t(1 − e_t)/(n_t + m + 1)); the exact lower
//!   and upper tails of the beta-binomial with that mean and variance
//!   ([`window_test`]; a normal approximation is far too light-tailed for an
//!   agent approved 90% of the time) are the window's p-values. A short window
//!   sees a sharp drop early, a long one a smaller drop; the block's one-sided
//!   p-values are (windows looked at) × the smallest over the windows
//!   (Bonferroni). Every block is tested once: `trust_recalculation` takes,
//!   per agent, the smallest p of the blocks completed since its previous run
//!   times their number (Bonferroni), applies Benjamini–Hochberg over the
//!   agents at `decline_fdr` (one family per direction), and only the
//!   rejections become declining (alerted) or improving; the others are
//!   stable. The fast (α = 0.2) and slow (α = 0.05) EWMAs of `y` are still
//!   reported (`ewma`) but decide nothing.

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
        self.change.add(kind, y, &self.types, &self.all, cfg);
    }

    /// improving / stable / declining / insufficient_data: the verdict of the
    /// last `trust_recalculation` on the agent's completed blocks.
    pub fn trend(&self) -> &'static str {
        match self.change.status.as_deref() {
            Some("declining") => "declining",
            Some("improving") => "improving",
            Some(_) => "stable",
            None => "insufficient_data",
        }
    }
}

/// One window of the change test: `sy` = Σy over `n` evaluations whose
/// expectations sum to `se`, `sd_est` the standard deviation of that sum's
/// estimation error. Under "no change" Σy is beta-binomial with mean se and
/// the estimate's spread: BetaBinomial(n, ē·c, (1 − ē)·c), ē = se / n, c =
/// ē(1 − ē)/v − 1 with v = (sd_est / n)² the variance of ē. Returns
/// (P(S ≤ ⌊Σy⌋), P(S ≥ ⌈Σy⌉), z) with z the normal score (reported only).
pub fn window_test(sy: f64, n: u64, se: f64, sd_est: f64) -> (f64, f64, f64) {
    let nf = n as f64;
    let e = (se / nf).clamp(1e-6, 1.0 - 1e-6);
    let v = (sd_est / nf).powi(2).max(1e-12);
    let c = (e * (1.0 - e) / v - 1.0).clamp(2.0, 1e7);
    let (a, b) = (e * c, (1.0 - e) * c);
    let lo = (sy + 1e-9).floor() as u64;
    let hi = (sy - 1e-9).ceil().max(0.0) as u64;
    let var = nf * e * (1.0 - e) * (1.0 + (nf - 1.0) / (c + 1.0));
    let z = (sy - se) / var.sqrt().max(1e-12);
    // Only a tail beyond two standard deviations can be significant at the
    // levels used; closer in, the p-value is reported as 1 (conservative)
    // and the exact sum is skipped.
    let p_dec = if z < -2.0 { learnloop_stats::beta_binomial_cdf(lo, n, a, b).unwrap_or(1.0) } else { 1.0 };
    let p_imp = if z > 2.0 && hi > 0 { learnloop_stats::beta_binomial_sf(hi - 1, n, a, b).unwrap_or(1.0) } else { 1.0 };
    (p_dec, p_imp, z)
}

/// The windows of the change test, in blocks (newest first).
pub const WINDOWS: [usize; 6] = [1, 2, 3, 5, 7, 10];

/// The block change test of one agent's approvals (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeTest {
    /// Evaluations in the current, incomplete block.
    pub n: u64,
    /// The current block per type: evaluations, Σy.
    pub block: BTreeMap<String, (u64, f64)>,
    /// The newest completed blocks (newest last, at most the longest window).
    pub recent: Vec<BTreeMap<String, (u64, f64)>>,
    /// Completed blocks that were tested.
    pub blocks: u64,
    /// Completed blocks not yet looked at by `trust_recalculation`.
    pub untested: u64,
    /// Smallest decline p-value among them (Bonferroni over the windows).
    pub min_p_decline: f64,
    /// Smallest improvement p-value among them.
    pub min_p_improve: f64,
    /// Normal score of the newest block against the reference (reported only).
    pub last_z: Option<f64>,
    /// The last verdict: declining / improving / stable (`None`: never tested).
    pub status: Option<String>,
    /// Benjamini–Hochberg-adjusted p-value behind the last verdict.
    pub adjusted_p: Option<f64>,
}

impl Default for ChangeTest {
    fn default() -> Self {
        Self {
            n: 0,
            block: BTreeMap::new(),
            recent: Vec::new(),
            blocks: 0,
            untested: 0,
            min_p_decline: 1.0,
            min_p_improve: 1.0,
            last_z: None,
            status: None,
            adjusted_p: None,
        }
    }
}

impl ChangeTest {
    /// Adds one evaluation of type `kind` with value `y`; `types` and `all`
    /// are the agent's counters *including* it.
    pub fn add(&mut self, kind: &str, y: f64, types: &BTreeMap<String, Counts>, all: &Counts, cfg: &Config) {
        self.n += 1;
        let b = self.block.entry(kind.to_string()).or_insert((0, 0.0));
        b.0 += 1;
        b.1 += y;
        if self.n < cfg.decline_window {
            return;
        }
        self.n = 0;
        self.recent.push(std::mem::take(&mut self.block));
        if self.recent.len() > WINDOWS[WINDOWS.len() - 1] {
            self.recent.remove(0);
        }
        // The reference: the agent's history before the oldest retained block.
        let mut held: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for blk in &self.recent {
            for (t, (k, sy)) in blk {
                let h = held.entry(t.as_str()).or_insert((0, 0.0));
                h.0 += k;
                h.1 += sy;
            }
        }
        let (held_n, held_s) = held.values().fold((0u64, 0.0), |a, h| (a.0 + h.0, a.1 + h.1));
        let ref_n = all.evaluated.saturating_sub(held_n);
        if ref_n < cfg.decline_min_history {
            return;
        }
        let ref_s = (all.s - held_s).max(0.0);
        let overall = (cfg.prior_alpha + ref_s) / (cfg.prior_alpha + cfg.prior_beta + ref_n as f64);
        let m = cfg.decline_shrinkage;
        let expect = |t: &str| -> (f64, f64) {
            let (hn, hs) = held.get(t).copied().unwrap_or((0, 0.0));
            let (n_t, s_t) =
                types.get(t).map_or((0.0, 0.0), |c| ((c.evaluated.saturating_sub(hn)) as f64, (c.s - hs).max(0.0)));
            let e = ((s_t + m * overall) / (n_t + m)).clamp(1e-6, 1.0 - 1e-6);
            (e, e * (1.0 - e) / (n_t + m + 1.0))
        };
        // The newest 1, 2, 3, 5, 7 and 10 blocks (Bonferroni over the
        // windows): a short window sees a sharp drop, a long one a smaller one.
        let (mut pd, mut pi, mut looked) = (1.0f64, 1.0f64, 0.0f64);
        let mut win: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for (i, blk) in self.recent.iter().rev().enumerate() {
            for (t, (k, sy)) in blk {
                let w = win.entry(t.as_str()).or_insert((0, 0.0));
                w.0 += k;
                w.1 += sy;
            }
            if !WINDOWS.contains(&(i + 1)) {
                continue;
            }
            let (mut sy, mut n, mut se, mut est) = (0.0, 0u64, 0.0, 0.0);
            for (t, (k, s_t)) in &win {
                let (e, v) = expect(t);
                sy += s_t;
                n += k;
                se += *k as f64 * e;
                est += (*k as f64).powi(2) * v;
            }
            let (p_dec, p_imp, z) = window_test(sy, n, se, est.sqrt());
            if i == 0 {
                self.last_z = Some(z);
            }
            looked += 1.0;
            pd = pd.min(p_dec);
            pi = pi.min(p_imp);
        }
        self.untested += 1;
        self.blocks += 1;
        self.min_p_decline = self.min_p_decline.min((looked * pd).min(1.0));
        self.min_p_improve = self.min_p_improve.min((looked * pi).min(1.0));
    }

    /// The p-values of the blocks completed since the last verdict
    /// (Bonferroni over them): (decline, improvement), `None` when none.
    pub fn pending(&self) -> Option<(f64, f64)> {
        (self.untested > 0).then(|| {
            let k = self.untested as f64;
            ((k * self.min_p_decline).min(1.0), (k * self.min_p_improve).min(1.0))
        })
    }

    /// Records a verdict and marks the pending blocks tested.
    pub fn decide(&mut self, status: &str, adjusted_p: f64) {
        self.status = Some(status.to_string());
        self.adjusted_p = Some(adjusted_p);
        self.untested = 0;
        self.min_p_decline = 1.0;
        self.min_p_improve = 1.0;
    }
}

/// Benjamini–Hochberg over agents: which of `p` (agent, decline p, improvement
/// p) are declining / improving at false-discovery rate `q`, with each
/// agent's adjusted p-value of its verdict. Agents are tested in one family
/// per direction.
pub fn verdicts(p: &[(String, f64, f64)], q: f64) -> Vec<(String, &'static str, f64)> {
    let dec: Vec<f64> = p.iter().map(|x| x.1).collect();
    let imp: Vec<f64> = p.iter().map(|x| x.2).collect();
    let adj_d = learnloop_stats::benjamini_hochberg(&dec).unwrap_or_else(|_| vec![1.0; p.len()]);
    let adj_i = learnloop_stats::benjamini_hochberg(&imp).unwrap_or_else(|_| vec![1.0; p.len()]);
    p.iter()
        .enumerate()
        .map(|(i, (id, _, _))| {
            if adj_d[i] <= q {
                (id.clone(), "declining", adj_d[i])
            } else if adj_i[i] <= q {
                (id.clone(), "improving", adj_i[i])
            } else {
                (id.clone(), "stable", adj_d[i].min(adj_i[i]))
            }
        })
        .collect()
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
