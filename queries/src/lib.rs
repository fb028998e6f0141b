//! Borderflow's SQL layer: one DataFusion dialect for standing views and
//! ad-hoc queries.
//!
//! Standing views: SQL text enters [`StandingViews::create_view`]; DataFusion
//! parses, plans and optimises it; [`lower`] turns the plan into what
//! differential dataflow maintains (or refuses it, naming the construct and
//! its place in the SQL); [`render`] builds the dataflow over rows in a
//! compact encoding ([`row`]), run by timely workers that exchange rows by
//! key and share arrangements between views. Table changes enter as Arrow
//! record batches; each view's changes leave as record batches with `_diff`
//! and `_time` (its changelog, or pushed to subscribers at every commit), and
//! its contents as a snapshot batch or a DataFusion table that follows the
//! view.
//!
//! Ad-hoc SQL: [`History`], a DataFusion session over the Parquet the engine
//! wrote to the object store.

pub use history::{History, QueryError};
pub use lower::{LowerError, Plan, TemporalOp};
pub use views::{StandingViews, ViewError};

mod history;
pub mod udf;
pub mod lower;
pub mod render;
pub mod row;
pub mod slt;
pub mod standard;
mod views;
mod workers;
