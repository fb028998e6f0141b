//! Borderflow's SQL: one DataFusion dialect for standing views, maintained
//! incrementally in differential dataflow, and for ad-hoc queries.
//!
//! Data in: the tables' changes, as Arrow record batches inserted into,
//! retracted from or upserted into [`StandingViews`], and committed at a time.
//! Data out: each view's changes as record batches with `_diff` and `_time`
//! (its changelog, or pushed to subscribers at every commit), and its
//! contents as a snapshot batch or a DataFusion table that follows the view.
//! A view is SQL text: DataFusion parses, plans and optimises it, and the
//! plan is lowered to what differential dataflow maintains, or refused with
//! the construct and its place in the SQL.
//!
//! - [`plan`]: the lowering from DataFusion's optimised `LogicalPlan` to the
//!   [`Plan`] standing views run, and the refusals;
//! - [`render`]: a [`Plan`] as differential dataflow operators;
//! - `views.rs`: [`StandingViews`], tables and views, commits, snapshots and
//!   subscriptions;
//! - `workers.rs`: the views' dataflows on the process's timely workers,
//!   exchanging rows by key and sharing arrangements between views;
//! - [`standard`]: the standard queries, their views in `queries/sql/*.sql`;
//! - [`udf`]: the plate functions, registered in every DataFusion session;
//! - `history.rs`: [`History`], ad-hoc SQL over the Parquet the engine wrote
//!   to the object store, in a session of [`analyst_session_config`];
//! - [`row`]: the compact row encoding kept inside the dataflow.

pub use history::{History, QueryError, analyst_session_config};
pub use plan::{LowerError, Plan, TemporalOp};
pub use views::{StandingViews, ViewError};

mod history;
pub mod udf;
pub mod plan;
pub mod render;
pub mod row;
pub mod standard;
mod views;
mod workers;
