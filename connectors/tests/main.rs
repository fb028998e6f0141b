//! The integration tests of this crate, in one test binary (`--test connectors`):
//! one link and one build of the code they share instead of one per file.
//! A file's tests are named after it, e.g. `cargo test --workspace --test connectors camera::`.

mod camera;
mod exchange_fuzz;
mod exchange_peer;
mod flight_sql_fuzz;
mod recording;
mod scenario;
