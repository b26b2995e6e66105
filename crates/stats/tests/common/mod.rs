//! Seeded data for the integration tests.
//!
//! Detector and coverage tests need reproducible random streams; a few lines
//! of splitmix64 + Box–Muller avoid a `rand` dependency and make every run
//! see the same numbers.

#![allow(dead_code)]

/// The shared seeded generator (SplitMix64), under the name the tests use.
pub use learnloop_stats::SplitMix64 as Rng;
