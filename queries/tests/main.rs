//! The integration tests of this crate, in one test binary (`--test queries`):
//! one link and one build of the code they share instead of one per file.
//! A file's tests are named after it, e.g. `cargo test --workspace --test queries errors::`.

mod common;
mod slt_runner;

mod errors;
mod incremental;
mod randomised;
mod slt;
mod time;
