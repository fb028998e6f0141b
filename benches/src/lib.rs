//! Benchmarks for Borderflow (see the `[[bench]]` targets).
