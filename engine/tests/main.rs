//! The integration tests of this crate, in one test binary (`--test engine`):
//! one link and one build of the code they share instead of one per file.
//! A file's tests are named after it, e.g. `cargo test --workspace --test engine passage_counts::`.

mod wal_store;

mod passage_counts;
mod wal;
mod wal_fuzz;
