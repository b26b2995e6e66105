//! Streaming change detectors: ADWIN, Page–Hinkley and CUSUM.
//!
//! Online plugins see one value at a time (an error per scored prediction, a
//! latency per request) and must say "the mean just moved" without keeping
//! the whole history. Each detector here is a small state machine whose state
//! serialises with serde, so a plugin can persist it between runs and resume
//! exactly where it stopped. Non-finite values are refused rather than
//! silently poisoning the running sums.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatsError};

/// Direction of a detected change in the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeDirection {
    /// The mean went up.
    Increase,
    /// The mean went down.
    Decrease,
}

/// Largest |value| the detectors accept. Their running sums of squares (and
/// cumulative sums over long streams) must stay finite; beyond ~1e154 a
/// single square overflows and the state would turn into inf − inf = NaN.
pub const MAX_STREAM_MAGNITUDE: f64 = 1e150;

fn check_value(function: &'static str, x: f64) -> Result<()> {
    if !x.is_finite() {
        return Err(StatsError::NonFinite { function, input: "x", index: 0, value: x });
    }
    if x.abs() > MAX_STREAM_MAGNITUDE {
        return Err(invalid(function, "x", x, "streaming detectors accept |x| <= 1e150 (MAX_STREAM_MAGNITUDE)"));
    }
    Ok(())
}

fn invalid(function: &'static str, param: &'static str, value: f64, reason: &'static str) -> StatsError {
    StatsError::InvalidParameter { function, param, value, reason }
}

// ---------------------------------------------------------------------------
// ADWIN

/// Parameters of [`Adwin`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdwinConfig {
    /// Confidence of the cut test; smaller means fewer false alarms and later
    /// detections. Default 0.002 (Bifet & Gavaldà's choice).
    pub delta: f64,
    /// Buckets kept per size class before two are merged (the paper's M).
    /// More buckets give finer cut points at more memory. Default 5.
    pub max_buckets: usize,
    /// Check for a cut every `clock` values (the check is O(log W)). Default 32.
    pub clock: u64,
    /// Neither side of a cut may hold fewer values than this. Default 5.
    pub min_window: u64,
    /// No checks before the window holds this many values. Default 10.
    pub grace_period: u64,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        AdwinConfig { delta: 0.002, max_buckets: 5, clock: 32, min_window: 5, grace_period: 10 }
    }
}

/// One exponential-histogram bucket: `2^level` values summarised by their
/// total and their sum of squared deviations from their own mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    total: f64,
    m2: f64,
}

/// ADWIN (ADaptive WINdowing, Bifet & Gavaldà 2007): keeps a window whose
/// length adapts, dropping its oldest part whenever two sub-windows have
/// means that differ by more than a Hoeffding/Bernstein-style bound allows.
/// Memory and time per value are O(M·log W) through an exponential histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    config: AdwinConfig,
    /// rows[k] holds buckets of 2^k values, oldest first; higher rows are older.
    rows: Vec<VecDeque<Bucket>>,
    width: u64,
    total: f64,
    /// Sum of squared deviations from the window mean.
    m2: f64,
    ticks: u64,
    detections: u64,
}

impl Adwin {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// `delta` not in (0, 1), `max_buckets` < 2, `clock` or `min_window` 0.
    pub fn new(config: AdwinConfig) -> Result<Self> {
        const FN: &str = "Adwin::new";
        if !(config.delta > 0.0 && config.delta < 1.0) {
            return Err(invalid(FN, "delta", config.delta, "must lie in (0, 1)"));
        }
        if config.max_buckets < 2 {
            return Err(invalid(FN, "max_buckets", config.max_buckets as f64, "must be at least 2"));
        }
        if config.clock == 0 {
            return Err(invalid(FN, "clock", 0.0, "must be at least 1"));
        }
        if config.min_window == 0 {
            return Err(invalid(FN, "min_window", 0.0, "must be at least 1"));
        }
        Ok(Adwin { config, rows: Vec::new(), width: 0, total: 0.0, m2: 0.0, ticks: 0, detections: 0 })
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Mean of the current window (`None` while empty).
    pub fn mean(&self) -> Option<f64> {
        (self.width > 0).then(|| self.total / self.width as f64)
    }

    /// Population variance of the current window (`None` while empty).
    pub fn variance(&self) -> Option<f64> {
        (self.width > 0).then(|| self.m2 / self.width as f64)
    }

    /// How many changes have been detected since creation.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Adds a value; returns the direction of the change if one was detected
    /// (the window has then already been shrunk to the post-change part).
    ///
    /// # Errors
    /// A non-finite value, or |x| > [`MAX_STREAM_MAGNITUDE`] (the state is left unchanged).
    pub fn update(&mut self, x: f64) -> Result<Option<ChangeDirection>> {
        check_value("Adwin::update", x)?;
        if self.width > 0 {
            let d = x - self.total / self.width as f64;
            self.m2 += d * d * self.width as f64 / (self.width + 1) as f64;
        }
        self.width += 1;
        self.total += x;
        if self.rows.is_empty() {
            self.rows.push(VecDeque::new());
        }
        self.rows[0].push_back(Bucket { total: x, m2: 0.0 });
        self.compress();
        self.ticks += 1;
        if self.ticks.is_multiple_of(self.config.clock) && self.width > self.config.grace_period {
            let change = self.detect();
            if change.is_some() {
                self.detections += 1;
            }
            return Ok(change);
        }
        Ok(None)
    }

    /// Merges the two oldest buckets of any row that has grown past M.
    fn compress(&mut self) {
        let mut level = 0;
        while level < self.rows.len() {
            if self.rows[level].len() <= self.config.max_buckets {
                break;
            }
            let (Some(a), Some(b)) = (self.rows[level].pop_front(), self.rows[level].pop_front()) else {
                break;
            };
            let n = (1u64 << level) as f64;
            let d = a.total / n - b.total / n;
            let merged = Bucket { total: a.total + b.total, m2: a.m2 + b.m2 + n * n / (2.0 * n) * d * d };
            if level + 1 == self.rows.len() {
                self.rows.push(VecDeque::new());
            }
            // the merged values are newer than everything already in the next row
            self.rows[level + 1].push_back(merged);
            level += 1;
        }
    }

    /// Looks for a cut point; drops the oldest bucket while one exists.
    fn detect(&mut self) -> Option<ChangeDirection> {
        let mut found = None;
        while let Some(direction) = self.find_cut() {
            found.get_or_insert(direction);
            if !self.drop_oldest() {
                break;
            }
        }
        found
    }

    fn find_cut(&self) -> Option<ChangeDirection> {
        let n = self.width as f64;
        let variance = self.m2 / n;
        let ln_term = (2.0 * n.ln().max(1.0) / self.config.delta).ln();
        let min_w = self.config.min_window as f64;
        let (mut n0, mut s0) = (0.0, 0.0);
        for level in (0..self.rows.len()).rev() {
            let size = (1u64 << level) as f64;
            for b in &self.rows[level] {
                n0 += size;
                s0 += b.total;
                let n1 = n - n0;
                if n1 < min_w {
                    return None;
                }
                if n0 < min_w {
                    continue;
                }
                let (mu0, mu1) = (s0 / n0, (self.total - s0) / n1);
                let m = 1.0 / (1.0 / n0 + 1.0 / n1);
                let eps = (2.0 / m * variance * ln_term).sqrt() + 2.0 / (3.0 * m) * ln_term;
                if (mu0 - mu1).abs() > eps {
                    return Some(if mu1 > mu0 { ChangeDirection::Increase } else { ChangeDirection::Decrease });
                }
            }
        }
        None
    }

    /// Removes the oldest bucket from the window; false if nothing is left to drop.
    fn drop_oldest(&mut self) -> bool {
        while let Some(last) = self.rows.last() {
            if last.is_empty() {
                self.rows.pop();
            } else {
                break;
            }
        }
        let level = match self.rows.len() {
            0 => return false,
            l => l - 1,
        };
        let Some(b) = self.rows[level].pop_front() else {
            return false;
        };
        let c = (1u64 << level) as f64;
        let n = self.width as f64;
        let rest = n - c;
        if rest <= 0.0 {
            self.width = 0;
            self.total = 0.0;
            self.m2 = 0.0;
            self.rows.clear();
            return false;
        }
        let rest_mean = (self.total - b.total) / rest;
        let d = b.total / c - rest_mean;
        self.m2 = (self.m2 - b.m2 - c * rest / n * d * d).max(0.0);
        self.total -= b.total;
        self.width -= 1u64 << level;
        true
    }
}

// ---------------------------------------------------------------------------
// Page–Hinkley

/// Parameters of [`PageHinkley`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageHinkleyConfig {
    /// Magnitude of change tolerated without alarm (in data units). Default 0.005.
    pub delta: f64,
    /// Alarm threshold λ on the cumulative deviation (in data units). Default 50.
    pub threshold: f64,
    /// Forgetting factor applied to the cumulative sums, in (0, 1]. Default 0.9999.
    pub alpha: f64,
    /// No alarm before this many values since the last reset. Default 30.
    pub min_instances: u64,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        PageHinkleyConfig { delta: 0.005, threshold: 50.0, alpha: 0.9999, min_instances: 30 }
    }
}

/// Two-sided Page–Hinkley test: cumulative deviations from the running mean,
/// with an alarm when they rise (or fall) more than λ above their extreme.
/// The state resets after each alarm so the next change can be caught.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    config: PageHinkleyConfig,
    n: u64,
    mean: f64,
    sum_up: f64,
    min_up: f64,
    sum_down: f64,
    max_down: f64,
    detections: u64,
}

impl PageHinkley {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// Negative or non-finite `delta`, non-positive `threshold`, `alpha` outside (0, 1].
    pub fn new(config: PageHinkleyConfig) -> Result<Self> {
        const FN: &str = "PageHinkley::new";
        if !(config.delta >= 0.0 && config.delta.is_finite()) {
            return Err(invalid(FN, "delta", config.delta, "must be finite and non-negative"));
        }
        if !(config.threshold > 0.0 && config.threshold.is_finite()) {
            return Err(invalid(FN, "threshold", config.threshold, "must be finite and positive"));
        }
        if !(config.alpha > 0.0 && config.alpha <= 1.0) {
            return Err(invalid(FN, "alpha", config.alpha, "must lie in (0, 1]"));
        }
        let mut ph = PageHinkley {
            config,
            n: 0,
            mean: 0.0,
            sum_up: 0.0,
            min_up: 0.0,
            sum_down: 0.0,
            max_down: 0.0,
            detections: 0,
        };
        ph.reset();
        Ok(ph)
    }

    fn reset(&mut self) {
        self.n = 0;
        self.mean = 0.0;
        self.sum_up = 0.0;
        self.min_up = 0.0;
        self.sum_down = 0.0;
        self.max_down = 0.0;
    }

    /// How many changes have been detected since creation.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Values seen since the last reset.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Adds a value; returns the direction of a detected change.
    ///
    /// # Errors
    /// A non-finite value, or |x| > [`MAX_STREAM_MAGNITUDE`] (the state is left unchanged).
    pub fn update(&mut self, x: f64) -> Result<Option<ChangeDirection>> {
        check_value("PageHinkley::update", x)?;
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        let a = self.config.alpha;
        self.sum_up = a * self.sum_up + (x - self.mean - self.config.delta);
        self.min_up = self.min_up.min(self.sum_up);
        self.sum_down = a * self.sum_down + (x - self.mean + self.config.delta);
        self.max_down = self.max_down.max(self.sum_down);
        if self.n < self.config.min_instances {
            return Ok(None);
        }
        let change = if self.sum_up - self.min_up > self.config.threshold {
            Some(ChangeDirection::Increase)
        } else if self.max_down - self.sum_down > self.config.threshold {
            Some(ChangeDirection::Decrease)
        } else {
            None
        };
        if change.is_some() {
            self.detections += 1;
            self.reset();
        }
        Ok(change)
    }
}

// ---------------------------------------------------------------------------
// CUSUM

/// Parameters of [`Cusum`]. `k` and `h` are in units of the in-control
/// standard deviation, the usual way to tune a CUSUM chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CusumConfig {
    /// In-control mean; `None` estimates it from the first `warmup` values.
    pub target: Option<f64>,
    /// In-control standard deviation; `None` estimates it from the warm-up.
    pub sigma: Option<f64>,
    /// Values used to estimate what `target`/`sigma` leave open. Default 30.
    pub warmup: u64,
    /// Slack (allowance) k in σ: shifts below k·σ are ignored. Default 0.5
    /// (tuned to detect a 1σ shift fastest).
    pub k: f64,
    /// Decision interval h in σ. Default 5 (in-control ARL ≈ 465).
    pub h: f64,
}

impl Default for CusumConfig {
    fn default() -> Self {
        CusumConfig { target: None, sigma: None, warmup: 30, k: 0.5, h: 5.0 }
    }
}

/// Two-sided tabular CUSUM (Page 1954) on standardised values:
/// S⁺ = max(0, S⁺ + z − k), S⁻ = max(0, S⁻ − z − k), alarm when either exceeds h.
/// Both sums restart from 0 after an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    config: CusumConfig,
    warm_n: u64,
    warm_mean: f64,
    warm_m2: f64,
    target: Option<f64>,
    sigma: Option<f64>,
    s_hi: f64,
    s_lo: f64,
    detections: u64,
}

impl Cusum {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// Non-finite `target`, non-positive `sigma`, `k` < 0, `h` ≤ 0, or a
    /// warm-up shorter than 2 when `sigma` must be estimated.
    pub fn new(config: CusumConfig) -> Result<Self> {
        const FN: &str = "Cusum::new";
        if let Some(t) = config.target
            && !t.is_finite()
        {
            return Err(invalid(FN, "target", t, "must be finite"));
        }
        if let Some(s) = config.sigma
            && !(s > 0.0 && s.is_finite())
        {
            return Err(invalid(FN, "sigma", s, "must be finite and positive"));
        }
        if !(config.k >= 0.0 && config.k.is_finite()) {
            return Err(invalid(FN, "k", config.k, "must be finite and non-negative"));
        }
        if !(config.h > 0.0 && config.h.is_finite()) {
            return Err(invalid(FN, "h", config.h, "must be finite and positive"));
        }
        if config.sigma.is_none() && config.warmup < 2 {
            return Err(invalid(FN, "warmup", config.warmup as f64, "estimating sigma needs at least 2 values"));
        }
        if config.target.is_none() && config.warmup < 1 {
            return Err(invalid(FN, "warmup", 0.0, "estimating the target needs at least 1 value"));
        }
        Ok(Cusum {
            config,
            warm_n: 0,
            warm_mean: 0.0,
            warm_m2: 0.0,
            target: config.target,
            sigma: config.sigma,
            s_hi: 0.0,
            s_lo: 0.0,
            detections: 0,
        })
    }

    /// The in-control mean and σ in use, once known (after the warm-up).
    pub fn reference(&self) -> Option<(f64, f64)> {
        Some((self.target?, self.sigma?))
    }

    /// Current upper and lower cumulative sums (in σ units).
    pub fn sums(&self) -> (f64, f64) {
        (self.s_hi, self.s_lo)
    }

    /// How many changes have been detected since creation.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Adds a value; returns the direction of a detected change. Values that
    /// go into the warm-up never raise an alarm.
    ///
    /// A warm-up with zero spread gives σ = ε·max(1, |mean|): any later
    /// deviation from a constant stream is then a change.
    ///
    /// # Errors
    /// A non-finite value, or |x| > [`MAX_STREAM_MAGNITUDE`] (the state is left unchanged).
    pub fn update(&mut self, x: f64) -> Result<Option<ChangeDirection>> {
        check_value("Cusum::update", x)?;
        if self.target.is_none() || self.sigma.is_none() {
            self.warm_n += 1;
            let d = x - self.warm_mean;
            self.warm_mean += d / self.warm_n as f64;
            self.warm_m2 += d * (x - self.warm_mean);
            if self.warm_n >= self.config.warmup {
                if self.target.is_none() {
                    self.target = Some(self.warm_mean);
                }
                if self.sigma.is_none() {
                    let sd = (self.warm_m2 / (self.warm_n - 1) as f64).sqrt();
                    let floor = f64::EPSILON * self.warm_mean.abs().max(1.0);
                    self.sigma = Some(sd.max(floor));
                }
            }
            return Ok(None);
        }
        let (Some(mu), Some(sigma)) = (self.target, self.sigma) else {
            return Ok(None);
        };
        let z = (x - mu) / sigma;
        self.s_hi = (self.s_hi + z - self.config.k).max(0.0);
        self.s_lo = (self.s_lo - z - self.config.k).max(0.0);
        let change = if self.s_hi > self.config.h {
            Some(ChangeDirection::Increase)
        } else if self.s_lo > self.config.h {
            Some(ChangeDirection::Decrease)
        } else {
            None
        };
        if change.is_some() {
            self.detections += 1;
            self.s_hi = 0.0;
            self.s_lo = 0.0;
        }
        Ok(change)
    }
}
