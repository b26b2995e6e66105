//! A tiny deterministic random generator (SplitMix64) for simulations,
//! sample data and randomised decisions such as Thompson sampling.
//!
//! Everything learnloop learns must replay identically (static and dynamic
//! plugin builds are compared, `replay` rebuilds state), so randomness is
//! always seeded and always this one algorithm; it lives here once so every
//! crate draws the same streams from the same seeds.

/// SplitMix64 (Steele, Lea & Flood 2014). The field is the state: `SplitMix64(seed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1): 53 random bits offset by half an
    /// ulp, so `ln()` of it is always finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// One standard normal (Box–Muller; the second variate is discarded, so
    /// one call consumes exactly two uniforms).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `n` normals with mean `mean` and standard deviation `sd`.
    pub fn normals(&mut self, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        (0..n).map(|_| mean + sd * self.normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_stream_and_ranges() {
        // Reference values of SplitMix64 from seed 0.
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(42);
        for _ in 0..10_000 {
            let u = r.uniform();
            assert!(u > 0.0 && u < 1.0);
            assert!(r.normal().is_finite());
        }
    }
}
