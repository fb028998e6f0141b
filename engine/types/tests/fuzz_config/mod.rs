//! How many cases this crate's fuzz targets run, from one place.

use proptest::test_runner::{Config, RngSeed};

/// `default_cases` cases from a fixed seed (every run tries the same
/// inputs), or, when `BORDERFLOW_FUZZ_CASES` is set, that many from a
/// fresh seed. Failures are not persisted: a failing input found once is
/// kept as a named regression test beside its target.
pub fn config(default_cases: u32) -> Config {
    match std::env::var("BORDERFLOW_FUZZ_CASES").ok().and_then(|n| n.parse().ok()) {
        Some(cases) => Config { cases, failure_persistence: None, ..Config::default() },
        None => Config { cases: default_cases, rng_seed: RngSeed::Fixed(0xB0_4D3F), failure_persistence: None, ..Config::default() },
    }
}
