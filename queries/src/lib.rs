//! Borderflow's SQL layer: one DataFusion dialect for standing views and
//! ad-hoc queries.
//!
//! Standing views: SQL text enters [`StandingViews::create_view`]; DataFusion
//! parses, plans and optimises it; [`lower`] turns the plan into what
//! differential dataflow maintains (or refuses it, naming the construct and
//! its place in the SQL); [`render`] builds the dataflow over rows in a
//! compact encoding ([`row`]). Table changes enter as Arrow record batches;
//! each view's changes leave as record batches with `_diff` and `_time`, and
//! its contents as a snapshot batch.
//!
//! Ad-hoc SQL: [`History`], a DataFusion session over the Parquet the engine
//! wrote to the object store.

pub use history::{History, QueryError};
pub use lower::{LowerError, Plan};
pub use views::{StandingViews, ViewError};

mod history;
pub mod lower;
pub mod render;
pub mod row;
pub mod slt;
mod views;
