//! The integration tests of this crate, in one test binary (`--test types`):
//! one link and one build of the code they share instead of one per file.
//! A file's tests are named after it, e.g. `cargo test --workspace --test types config_errors::`.

mod fuzz_config;

mod config_errors;
mod config_fuzz;
mod plate_fuzz;
mod read_batch;
