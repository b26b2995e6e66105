//! A/B tests of model versions: creation, deterministic assignment of a unit
//! to an arm, results per arm, the sample-ratio-mismatch check and the
//! winner.
//!
//! A test is a state document `ab/<test>` ([`AbTest`]): the model, two or
//! more versions (`payload.model_version` of its predictions), the traffic
//! split and the period `[start, end)` of prediction event times. The
//! results are a function of the history in that period, read like every
//! other window ([`crate::window`]), so they can be asked for at any time.
//!
//! * **Assignment**: FNV-1a (64-bit) of `"<test>\0<unit>"` finished with
//!   MurmurHash3's `fmix64`, its top 53 bits
//!   as a fraction u in [0, 1), the arm whose cumulative split first exceeds
//!   u. Stable across processes, platforms and releases; independent of
//!   other tests (the test id is hashed too).
//! * **Per arm**: predictions, matched outcomes, MAE, RMSE, MAPE.
//! * **Sample-ratio mismatch**: χ² goodness of fit of the predictions per
//!   arm against the split (`learnloop_stats::chisquare`); p < `srm_p_value`
//!   means the assignment or the logging is broken and no winner is named.
//! * **Winner**: the arm with the lowest MAE, if every arm has at least
//!   `ab_min_samples` matched outcomes and its Welch t-test on absolute
//!   errors against each other arm, Holm-adjusted over those comparisons, is
//!   at most 1 − confidence. Otherwise "no winner yet", with the reason.

use std::borrow::Cow;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::schemars::{Schema, SchemaGenerator};
use learnloop_plugin_api::{Context, Expect, PluginError, Timestamp};
use learnloop_stats::{Alternative, chisquare, holm, mean, ttest_ind};
use serde::{Deserialize, Serialize};

use crate::analysis::{Metrics, metrics};
use crate::config::Config;
use crate::json::opt_nan;
use crate::window;

const DAY_US: f64 = 86_400_000_000.0;

/// One A/B test as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbTest {
    /// Test id (the key).
    pub id: String,
    /// The model whose versions are compared.
    pub model: String,
    /// Versions (arms), in the order given.
    pub versions: Vec<String>,
    /// Traffic share per arm, summing to 1.
    pub split: Vec<f64>,
    /// Start of the test period (µs, prediction event time).
    pub start_us: i64,
    /// End of the test period (µs, exclusive).
    pub end_us: i64,
    /// Confidence needed for a winner.
    pub confidence: f64,
    /// When it was created (the host's clock).
    pub created_us: i64,
}

/// State key of a test.
pub fn key(id: &str) -> String {
    format!("ab/{id}")
}

/// Where a test is in its period, by the host's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "AbTestStatus")]
pub enum Status {
    /// Before its start.
    Scheduled,
    /// Within its period.
    Running,
    /// After its end.
    Finished,
}

/// An A/B test's definition as answered: `created` is when the test was
/// created, except in the answer to its creation, where it says whether
/// this call created it.
///
/// The schemas name the two `AbTestView` and `AbTestCreated`: `AbTest`
/// and the schema name of `C` ([`CreatedAt`] or [`Created`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "AbTest{C}")]
pub struct AbTestView<C = CreatedAt> {
    /// Test id.
    pub id: String,
    /// The model.
    pub model: String,
    /// Versions (arms).
    pub versions: Vec<String>,
    /// Traffic share per arm.
    pub split: Vec<f64>,
    /// Start of the period (RFC 3339; null out of range).
    pub start: Option<Timestamp>,
    /// End of the period (RFC 3339; null out of range).
    pub end: Option<Timestamp>,
    /// Confidence needed for a winner.
    pub confidence: f64,
    /// When the test was created (RFC 3339); in the answer to its
    /// creation, whether this call created it (false: a retry of an
    /// identical definition).
    pub created: C,
    /// Where the test is in its period.
    pub status: Status,
}

/// The answer to `POST /ab_tests`: the definition, and whether this call
/// created it.
pub type AbTestCreated = AbTestView<Created>;

/// `created` of a listed test: when it was created (RFC 3339, the host's
/// clock; null out of range).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreatedAt(pub Option<Timestamp>);

/// `created` in the answer to a test's creation: whether this call
/// created it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Created(pub bool);

// `CreatedAt` and `Created` are inlined where they are used; their schema
// names only complete the name of the `AbTestView` they are used in.
impl JsonSchema for CreatedAt {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "View".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Option<Timestamp>>::json_schema(generator)
    }
}

impl JsonSchema for Created {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Created".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        bool::json_schema(generator)
    }
}

/// The body of `POST /ab_tests`. Checked further by [`AbTest::from_body`]
/// (errors name the field).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbTestBody {
    /// Test id: a non-empty string of at most 200 bytes without `/`.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[^/]*$"))]
    pub id: String,
    /// The model whose versions are compared (its predictions' `subject`):
    /// a non-empty string of at most 200 bytes without `/`.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[^/]*$"))]
    pub model: String,
    /// 2 to 20 distinct model versions (`payload.model_version`), the arms.
    #[schemars(length(min = 2, max = 20))]
    pub versions: Vec<VersionName>,
    /// Traffic share per arm (positive, summing to 1), or the first arm's
    /// share in (0, 1) with the rest split evenly; default: even.
    #[serde(default)]
    pub split: Option<Split>,
    /// Length of the test period in days, in (0, 3650]; default 14.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 3650))]
    pub duration_days: Option<f64>,
    /// Start of the test period (RFC 3339, prediction event time);
    /// default: now.
    #[serde(default)]
    pub start: Option<Timestamp>,
    /// Confidence a winner needs, in (0.5, 1); default `ab_confidence`.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0.5, "exclusiveMaximum" = 1))]
    pub confidence: Option<f64>,
}

/// A model version as a create request names it: a string, or a number
/// (written as JSON writes it: `2` is the version `"2"`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "must be a non-empty string or a number")]
pub enum VersionName {
    /// A version name (non-empty).
    Text(String),
    /// A version number.
    Number(serde_json::Number),
}

/// The traffic split of a create request.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "must be an array of shares summing to 1, or the first arm's share")]
pub enum Split {
    /// One share per version, each positive, summing to 1.
    Shares(Vec<f64>),
    /// The first arm's share, in (0, 1); the others split the rest evenly
    /// (the seed's `traffic_split`).
    First(f64),
}

/// One arm's results: [`Metrics`] of its matched outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Arm {
    /// Metrics of the arm's matched numeric outcomes.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// The arm's version.
    pub version: String,
    /// Its traffic share.
    pub split: f64,
    /// Its predictions in the period.
    pub predictions: u64,
}

/// The sample-ratio-mismatch check: χ² goodness of fit of the arms' sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SampleRatio {
    /// The test.
    pub test: String,
    /// Why it did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// χ² statistic.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub statistic: Option<f64>,
    /// Its p-value.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub p_value: Option<f64>,
    /// Degrees of freedom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dof: Option<usize>,
    /// Expected predictions per arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<f64>>,
    /// Observed predictions per arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Vec<u64>>,
    /// `srm_p_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// p-value below the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<bool>,
}

/// The best arm against one other arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comparison {
    /// The best arm's version and the other's.
    pub versions: Vec<String>,
    /// The test.
    pub test: String,
    /// Their MAEs.
    pub mae: Vec<f64>,
    /// Relative MAE difference, % (null when the other's MAE is 0).
    pub mae_difference_pct: Option<f64>,
    /// Welch's t statistic (null when undefined).
    pub statistic: Option<f64>,
    /// Its degrees of freedom (null when undefined).
    pub df: Option<f64>,
    /// Its p-value.
    #[serde(deserialize_with = "crate::json::nan")]
    #[schemars(with = "Option<f64>")]
    pub p_value: f64,
    /// Holm-adjusted over the comparisons.
    #[serde(deserialize_with = "crate::json::nan")]
    #[schemars(with = "Option<f64>")]
    pub p_adjusted: f64,
    /// At most 1 − confidence.
    pub significant: bool,
}

/// A test's results (the `ab_tests/{test}` route's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AbResults {
    /// The definition.
    #[serde(flatten)]
    pub test: AbTestView,
    /// Per arm.
    pub arms: Vec<Arm>,
    /// Predictions of the model in the period with another version.
    pub other_versions_predictions: u64,
    /// The sample-ratio-mismatch check.
    pub sample_ratio_mismatch: SampleRatio,
    /// The best arm against each other.
    pub comparisons: Vec<Comparison>,
    /// The winning version, if any.
    pub winner: Option<String>,
    /// Why (or why not), in words.
    pub conclusion: String,
    /// The rule, in words.
    pub rule: String,
}

impl AbTest {
    /// Checks a parsed create request; errors name the field.
    pub fn from_body(cfg: &Config, body: AbTestBody, now_us: i64) -> Result<Self, PluginError> {
        let text = |k: &str, s: String| -> Result<String, PluginError> {
            if !s.trim().is_empty() && s.len() <= 200 && !s.contains('/') {
                Ok(s)
            } else {
                Err(PluginError::invalid(k, "is required: a non-empty string of at most 200 characters without '/'"))
            }
        };
        let id = text("id", body.id)?;
        let model = text("model", body.model)?;
        let versions: Vec<String> = body
            .versions
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                VersionName::Text(s) if !s.is_empty() => Ok(s),
                VersionName::Number(n) => Ok(n.to_string()),
                VersionName::Text(_) => {
                    Err(PluginError::invalid(format!("versions[{i}]"), "must be a non-empty string or a number"))
                }
            })
            .collect::<Result<_, _>>()?;
        if versions.len() < 2 || versions.len() > 20 {
            return Err(PluginError::invalid("versions", "must name 2 to 20 model versions"));
        }
        for (i, v) in versions.iter().enumerate() {
            if versions[..i].contains(v) {
                return Err(PluginError::invalid(format!("versions[{i}]"), format!("{v:?} is listed twice")));
            }
        }
        let split: Vec<f64> = match body.split {
            None => vec![1.0 / versions.len() as f64; versions.len()],
            Some(Split::First(a)) => {
                if !(a > 0.0 && a < 1.0) {
                    return Err(PluginError::invalid("split", "a single number is the first arm's share, in (0, 1)"));
                }
                let rest = (1.0 - a) / (versions.len() - 1) as f64;
                std::iter::once(a).chain(std::iter::repeat_n(rest, versions.len() - 1)).collect()
            }
            Some(Split::Shares(s)) => {
                if s.len() != versions.len() {
                    return Err(PluginError::invalid(
                        "split",
                        format!("must have one share per version ({})", versions.len()),
                    ));
                }
                if let Some(i) = s.iter().position(|x| !(x.is_finite() && *x > 0.0)) {
                    return Err(PluginError::invalid(format!("split[{i}]"), "must be a positive number"));
                }
                let total: f64 = s.iter().sum();
                if (total - 1.0).abs() > 1e-6 {
                    return Err(PluginError::invalid("split", format!("shares must sum to 1 (they sum to {total})")));
                }
                s.iter().map(|x| x / total).collect()
            }
        };
        let duration = match body.duration_days {
            None => 14.0,
            Some(d) if d > 0.0 && d <= 3650.0 => d,
            Some(_) => return Err(PluginError::invalid("duration_days", "must be a number of days in (0, 3650]")),
        };
        let start_us = body.start.map_or(now_us, Timestamp::as_micros);
        let confidence = match body.confidence {
            None => cfg.ab_confidence,
            Some(c) if c > 0.5 && c < 1.0 => c,
            Some(_) => return Err(PluginError::invalid("confidence", "must be in (0.5, 1)")),
        };
        let end_us = start_us.saturating_add((duration * DAY_US).round() as i64);
        Ok(Self { id, model, versions, split, start_us, end_us, confidence, created_us: now_us })
    }

    /// The arm index of a unit id (deterministic, see the module doc).
    pub fn assign(&self, unit: &str) -> usize {
        let u = unit_fraction(&self.id, unit);
        let mut acc = 0.0;
        for (i, s) in self.split.iter().enumerate() {
            acc += s;
            if u < acc {
                return i;
            }
        }
        self.split.len() - 1
    }

    /// The test's definition as answered, at `now_us` (the host's clock).
    pub fn describe(&self, now_us: i64) -> AbTestView {
        self.view(now_us, CreatedAt(Timestamp::from_micros(self.created_us)))
    }

    /// The test's definition with `created` as given.
    pub fn view<C>(&self, now_us: i64, created: C) -> AbTestView<C> {
        let status = if now_us >= self.end_us {
            Status::Finished
        } else if now_us < self.start_us {
            Status::Scheduled
        } else {
            Status::Running
        };
        AbTestView {
            id: self.id.clone(),
            model: self.model.clone(),
            versions: self.versions.clone(),
            split: self.split.clone(),
            start: Timestamp::from_micros(self.start_us),
            end: Timestamp::from_micros(self.end_us),
            confidence: self.confidence,
            created,
            status,
        }
    }
}

/// FNV-1a 64 of `test \0 unit`, finished with `fmix64`, as a fraction in [0, 1).
pub fn unit_fraction(test: &str, unit: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in test.bytes().chain(std::iter::once(0u8)).chain(unit.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's last bytes barely reach the top bits: finish with MurmurHash3's
    // fmix64 so that every input bit affects every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Creates a test; an existing id is a conflict unless the definition is identical (idempotent retry).
pub fn create(ctx: &mut dyn Context, test: &AbTest) -> Result<(bool, AbTest), PluginError> {
    let k = key(&test.id);
    if let Some(s) = ctx.get_state(&k)? {
        let old: AbTest = serde_json::from_value(s.value)?;
        let same = AbTest { created_us: old.created_us, start_us: old.start_us, end_us: old.end_us, ..test.clone() };
        if same == old {
            return Ok((false, old));
        }
        return Err(PluginError::invalid(
            "id",
            format!("A/B test {:?} already exists with another definition", test.id),
        ));
    }
    ctx.put_state(&k, serde_json::to_value(test)?, Expect::Absent)?;
    Ok((true, test.clone()))
}

/// Reads a test.
pub fn load(ctx: &mut dyn Context, id: &str) -> Result<AbTest, PluginError> {
    match ctx.get_state(&key(id))? {
        Some(s) => Ok(serde_json::from_value(s.value)?),
        None => Err(PluginError::not_found(format!("no A/B test {id:?}"))),
    }
}

/// Every test, in id order.
pub fn list(ctx: &mut dyn Context) -> Result<Vec<AbTest>, PluginError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("ab/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, s) in page {
            out.push(serde_json::from_value(s.value)?);
        }
    }
    Ok(out)
}

/// The results of a test from the history of its period.
pub fn results(cfg: &Config, ctx: &mut dyn Context, t: &AbTest) -> Result<AbResults, PluginError> {
    let w = window::load(ctx, &t.model, &[(t.start_us, t.end_us)], None)?.pop().unwrap_or_default();
    let k = t.versions.len();
    let mut preds = vec![0u64; k];
    let mut actual: Vec<Vec<f64>> = vec![Vec::new(); k];
    let mut pred: Vec<Vec<f64>> = vec![Vec::new(); k];
    let arm_of: Vec<Option<usize>> = w.versions.iter().map(|v| t.versions.iter().position(|x| x == v)).collect();
    let mut other = 0u64;
    for i in 0..w.n {
        let Some(a) = arm_of[w.version[i] as usize] else {
            other += 1;
            continue;
        };
        preds[a] += 1;
        if w.pred[i].is_finite() && w.actual[i].is_finite() {
            actual[a].push(w.actual[i]);
            pred[a].push(w.pred[i]);
        }
    }
    let abs: Vec<Vec<f64>> =
        (0..k).map(|a| actual[a].iter().zip(&pred[a]).map(|(y, p)| (y - p).abs()).collect()).collect();
    let mae: Vec<f64> = abs.iter().map(|e| mean(e).unwrap_or(f64::NAN)).collect();
    let arms: Vec<Arm> = (0..k)
        .map(|a| Arm {
            metrics: metrics(&actual[a], &pred[a]),
            version: t.versions[a].clone(),
            split: t.split[a],
            predictions: preds[a],
        })
        .collect();

    // Sample-ratio mismatch: predictions per arm against the split.
    let total: u64 = preds.iter().sum();
    let srm_skipped = |why: String| SampleRatio {
        test: "chisquare goodness of fit".into(),
        skipped: Some(why),
        statistic: None,
        p_value: None,
        dof: None,
        expected: None,
        observed: None,
        threshold: None,
        mismatch: None,
    };
    let srm = if (total as usize) < cfg.ab_min_samples {
        srm_skipped(format!("fewer than ab_min_samples = {} predictions in the test", cfg.ab_min_samples))
    } else {
        let obs: Vec<f64> = preds.iter().map(|&n| n as f64).collect();
        let exp: Vec<f64> = t.split.iter().map(|s| s * total as f64).collect();
        match chisquare(&obs, &exp) {
            Ok(c) => SampleRatio {
                test: "chisquare goodness of fit".into(),
                skipped: None,
                statistic: Some(c.statistic),
                p_value: Some(c.pvalue),
                dof: Some(c.dof),
                expected: Some(exp),
                observed: Some(preds.clone()),
                threshold: Some(cfg.srm_p_value),
                mismatch: Some(c.pvalue < cfg.srm_p_value),
            },
            Err(e) => srm_skipped(e.to_string()),
        }
    };

    // Winner: the lowest MAE, significantly better than every other arm.
    let alpha = 1.0 - t.confidence;
    let mut comparisons = Vec::new();
    let mut winner: Option<usize> = None;
    let reason: String;
    if let Some(a) = (0..k).find(|&a| abs[a].len() < cfg.ab_min_samples) {
        reason = format!(
            "no winner yet: version {:?} has {} matched outcomes, fewer than ab_min_samples = {}",
            t.versions[a],
            abs[a].len(),
            cfg.ab_min_samples
        );
    } else {
        let best = (0..k).min_by(|&a, &b| mae[a].total_cmp(&mae[b])).unwrap_or(0);
        let mut ps = Vec::new();
        for b in (0..k).filter(|&b| b != best) {
            let r = ttest_ind(&abs[best], &abs[b], false, Alternative::TwoSided);
            let (stat, p, df) = match &r {
                Ok(t) => (t.statistic, t.pvalue, t.df),
                // Identical constant errors in both arms: no evidence of a difference.
                Err(_) => (f64::NAN, 1.0, f64::NAN),
            };
            ps.push(p);
            comparisons.push(Comparison {
                versions: vec![t.versions[best].clone(), t.versions[b].clone()],
                test: "ttest_ind (Welch) on |error|".into(),
                mae: vec![mae[best], mae[b]],
                mae_difference_pct: (mae[b] > 0.0).then(|| 100.0 * (mae[best] - mae[b]) / mae[b]),
                statistic: stat.is_finite().then_some(stat),
                df: df.is_finite().then_some(df),
                p_value: p,
                p_adjusted: p,
                significant: false,
            });
        }
        let adj = holm(&ps).unwrap_or_else(|_| ps.clone());
        for (c, q) in comparisons.iter_mut().zip(&adj) {
            c.p_adjusted = *q;
            c.significant = *q <= alpha;
        }
        let all = adj.iter().all(|q| *q <= alpha);
        if srm.mismatch == Some(true) {
            reason = format!(
                "no winner: sample-ratio mismatch (chi-square p = {:.3e} < {}): the arms' sizes do not match the split, so the comparison is not trustworthy",
                srm.p_value.filter(|p| p.is_finite()).unwrap_or(0.0),
                cfg.srm_p_value
            );
        } else if all {
            winner = Some(best);
            reason = format!(
                "version {:?} has the lowest MAE ({:.4}) and beats every other version at confidence {} (Holm-adjusted Welch t-tests)",
                t.versions[best], mae[best], t.confidence
            );
        } else {
            reason = format!(
                "no winner yet: version {:?} has the lowest MAE ({:.4}) but the difference is not significant at confidence {}",
                t.versions[best], mae[best], t.confidence
            );
        }
    }
    Ok(AbResults {
        test: t.describe(ctx.now().as_micros()),
        arms,
        other_versions_predictions: other,
        sample_ratio_mismatch: srm,
        comparisons,
        winner: winner.map(|a| t.versions[a].clone()),
        conclusion: reason,
        rule: "winner = the lowest-MAE version when every arm has >= ab_min_samples matched outcomes, no sample-ratio mismatch, and every Holm-adjusted Welch p-value against it is <= 1 - confidence".into(),
    })
}

/// State key of the winner last announced for a test.
fn announced_key(id: &str) -> String {
    format!("abtest-concluded/{id}")
}

/// Emits `experiment.concluded` when a test has a winner it has not
/// announced yet (once per test and winner, so a deploy pipeline can
/// promote it); returns whether it did.
pub fn announce(ctx: &mut dyn Context, r: &AbResults) -> Result<bool, PluginError> {
    let Some(winner) = &r.winner else { return Ok(false) };
    let t = &r.test;
    let k = announced_key(&t.id);
    let previous = ctx.get_state(&k)?;
    if previous.as_ref().and_then(|s| s.value.as_str().map(str::to_string)).as_deref() == Some(winner.as_str()) {
        return Ok(false);
    }
    let expect = previous.map_or(Expect::Absent, |s| Expect::Version(s.version));
    ctx.put_state(&k, serde_json::Value::String(winner.clone()), expect)?;
    let arms: Vec<serde_json::Value> = r
        .arms
        .iter()
        .map(|a| serde_json::json!({"version": a.version, "predictions": a.predictions, "metrics": a.metrics}))
        .collect();
    ctx.emit_notification(learnloop_plugin_api::NotificationDraft {
        event: "experiment.concluded".into(),
        severity: learnloop_plugin_api::Severity::Medium,
        subject: t.model.clone(),
        summary: format!("A/B test {} of model {}: version {winner} wins. {}", t.id, t.model, r.conclusion),
        dedup_key: format!("abtest/{}", t.id),
        link: format!("/api/v1/drift/ab_tests/{}?workspace={}", t.id, ctx.workspace()),
        data: serde_json::json!({
            "test": t.id,
            "model": t.model,
            "winner": winner,
            "arms": arms,
            "comparisons": r.comparisons,
            "sample_ratio_mismatch": r.sample_ratio_mismatch,
            "conclusion": r.conclusion,
        }),
    })?;
    Ok(true)
}
