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
//! * **trend**: a fast (α = 0.2) and a slow (α = 0.05) EWMA of `y`; improving when
//!   fast − slow > trend_threshold, declining when < −trend_threshold, else
//!   stable ("insufficient_data" below 10 evaluations).

use learnloop_stats::{Ewma, beta_posterior};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::Config;

/// Microseconds per day.
pub const DAY: f64 = 86_400_000_000.0;
/// Microseconds per hour.
pub const HOUR: f64 = 3_600_000_000.0;

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
    pub fn evaluate(&mut self, label: &str, y: f64, quality: f64, latency_hours: Option<f64>, confidence: Option<f64>, cfg: &Config, t: i64) {
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
        let weighted = w.accuracy * post.mean + w.consistency * consistency + w.timeliness * timeliness + w.reliability * reliability;
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

    /// The counters as JSON, with derived averages.
    pub fn to_json(&self) -> Value {
        json!({
            "recommendations": self.recommendations,
            "evaluated": self.evaluated,
            "pending": self.pending,
            "approved": self.approved,
            "partial": self.partial,
            "rejected": self.rejected,
            "approval_rate": self.approval_rate(),
            "avg_quality_score": (self.evaluated > 0).then(|| 100.0 * self.q_sum / self.evaluated as f64),
            "avg_latency_hours": (self.timely_n > 0).then(|| self.latency_hours_sum / self.timely_n as f64),
            "avg_confidence": (self.confidence_n > 0).then(|| self.confidence_sum / self.confidence_n as f64),
        })
    }
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
    /// JSON with the interval spelled out.
    pub fn to_json(&self, level: f64) -> Value {
        json!({
            "overall_trust_score": self.overall,
            "accuracy_score": self.accuracy,
            "consistency_score": self.consistency,
            "timeliness_score": self.timeliness,
            "reliability_score": self.reliability,
            "confidence_factor": self.confidence_factor,
            "bayesian": {
                "alpha": self.alpha, "beta": self.beta, "mean": self.accuracy,
                "credible_interval": [self.lower, self.upper], "level": level,
                "uncertainty": self.upper - self.lower,
                "effective_samples": self.effective_samples,
                "inactivity_decay": self.decay, "idle_days": self.idle_days,
            },
        })
    }
}

/// The seed's learning-rate scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

impl AgentDoc {
    /// One final evaluation of a recommendation of type `kind`.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(&mut self, kind: &str, label: &str, y: f64, quality: f64, latency_hours: Option<f64>, confidence: Option<f64>, cfg: &Config, t: i64) {
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
    }

    /// improving / stable / declining / insufficient_data.
    pub fn trend(&self, cfg: &Config) -> &'static str {
        match (self.fast.value(), self.slow.value()) {
            (Some(a), Some(b)) if self.fast.count() >= 10 => {
                if a - b > cfg.trend_threshold {
                    "improving"
                } else if b - a > cfg.trend_threshold {
                    "declining"
                } else {
                    "stable"
                }
            }
            _ => "insufficient_data",
        }
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
