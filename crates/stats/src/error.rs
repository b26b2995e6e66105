//! The one error type of the crate.
//!
//! Every statistic here has inputs for which it is undefined (too few values, a
//! constant sample, a NaN). SciPy answers those with NaN, an exception or a
//! warning depending on the function; learnloop's plugins need one predictable
//! answer they can match on and report, so each undefined case maps to a variant
//! that names the function, the offending argument and what was wrong with it.

use serde::Serialize;

/// Why a statistic could not be computed.
///
/// `function` is the public function that refused (e.g. `"ks_2samp"`), `input`
/// the argument it refused (e.g. `"x"`), so a message identifies the call
/// without a backtrace.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The sample has fewer values than the statistic needs (e.g. a variance
    /// with `ddof = 1` needs two, Shapiro–Wilk needs three).
    #[error("{function}: `{input}` needs at least {needed} values, got {got}")]
    TooFewSamples {
        /// The public function that refused.
        function: &'static str,
        /// The argument that was too short.
        input: &'static str,
        /// The minimum length the statistic needs.
        needed: usize,
        /// The length that was passed.
        got: usize,
    },

    /// The sample contains NaN or an infinity. Statistics of such samples are
    /// either NaN or meaningless, so they are refused up front.
    #[error("{function}: `{input}` contains a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// The public function that refused.
        function: &'static str,
        /// The argument holding the value.
        input: &'static str,
        /// Position of the first non-finite value.
        index: usize,
        /// The value itself (NaN, inf or -inf).
        value: f64,
    },

    /// The statistic divides by the spread of the sample and the sample has
    /// none (all values equal, up to rounding), e.g. skewness, a correlation,
    /// R² or Shapiro–Wilk of a constant sample.
    #[error("{function}: `{input}` is constant, so {what} is undefined")]
    ConstantInput {
        /// The public function that refused.
        function: &'static str,
        /// The constant argument.
        input: &'static str,
        /// Which quantity is undefined because of it.
        what: &'static str,
    },

    /// Two arguments that must pair up element by element have different lengths.
    #[error("{function}: `{left}` has {left_len} values but `{right}` has {right_len}")]
    LengthMismatch {
        /// The public function that refused.
        function: &'static str,
        /// Name of the first argument.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Name of the second argument.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },

    /// A scalar parameter is outside its domain (e.g. `alpha` not in (0, 1),
    /// a percentile outside [0, 100], a negative count).
    #[error("{function}: parameter `{param}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The public function that refused.
        function: &'static str,
        /// The parameter's name.
        param: &'static str,
        /// The value that was passed.
        value: f64,
        /// What the parameter must satisfy.
        reason: &'static str,
    },

    /// An input that must be sorted ascending (the `*_sorted` fast paths) is not.
    #[error("{function}: `{input}` must be sorted ascending but index {index} is smaller than index {prev}", prev = .index - 1)]
    NotSorted {
        /// The public function that refused.
        function: &'static str,
        /// The unsorted argument.
        input: &'static str,
        /// First index whose value is smaller than its predecessor.
        index: usize,
    },

    /// The inputs are valid but the statistic still has no value for them,
    /// e.g. every actual value is 0 so MAPE has no terms, or a contingency
    /// table has an empty row so an expected frequency is 0.
    #[error("{function}: {reason}")]
    Undefined {
        /// The public function that refused.
        function: &'static str,
        /// Why there is no value.
        reason: &'static str,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Refuses a sample with a NaN or an infinity, naming the first one.
pub(crate) fn check_finite(function: &'static str, input: &'static str, x: &[f64]) -> Result<()> {
    // A non-short-circuiting fold vectorises (this runs on every call, over
    // up to millions of values); locating the culprit only happens on the
    // rare error path.
    if x.iter().fold(true, |ok, v| ok & v.is_finite()) {
        return Ok(());
    }
    let index = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(StatsError::NonFinite { function, input, index, value: x[index] })
}

/// Refuses a sample shorter than `needed`.
pub(crate) fn check_len(function: &'static str, input: &'static str, x: &[f64], needed: usize) -> Result<()> {
    if x.len() < needed {
        return Err(StatsError::TooFewSamples { function, input, needed, got: x.len() });
    }
    Ok(())
}

/// Length and finiteness in one call, the usual preamble.
pub(crate) fn check_sample(function: &'static str, input: &'static str, x: &[f64], needed: usize) -> Result<()> {
    check_len(function, input, x, needed)?;
    check_finite(function, input, x)
}

/// Refuses two paired samples of different lengths.
pub(crate) fn check_paired(
    function: &'static str,
    left: &'static str,
    x: &[f64],
    right: &'static str,
    y: &[f64],
) -> Result<()> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch { function, left, left_len: x.len(), right, right_len: y.len() });
    }
    Ok(())
}

/// Refuses an input that is not sorted ascending.
pub(crate) fn check_sorted(function: &'static str, input: &'static str, x: &[f64]) -> Result<()> {
    if x.len() < 2 {
        return Ok(());
    }
    // Branch-free fold first (vectorises), position only on failure.
    if x[..x.len() - 1].iter().zip(&x[1..]).fold(true, |ok, (a, b)| ok & (a <= b)) {
        return Ok(());
    }
    match x.windows(2).position(|w| w[1] < w[0]) {
        None => Ok(()),
        Some(i) => Err(StatsError::NotSorted { function, input, index: i + 1 }),
    }
}
