//! A post's tables and standing views, as the engine and the demo job build
//! them: the engine's own tables (`reads`, `read_keys`, `pre_arrival`), the
//! crossings' reference data, the watchlist, the configuration's tables,
//! the standard views (`queries/sql/`) and the configuration's views.

use std::sync::Arc;

use arrow::array::RecordBatch;
use borderflow_queries::standard::create_standard_views;
use borderflow_queries::{StandingViews, ViewError};
use borderflow_types::crossings::{post_routes_batch, posts_batch};
use borderflow_types::{
    ExchangeKeys, PlateRead, PostConfig, TableConfig, ViewConfig, plate_read_schema, pre_arrival_records, pre_arrival_schema, read_keys_batch, read_keys_schema,
    reads_to_batch,
};

use crate::{EngineError, Runtime};

/// The key the demo hashes plates with. Posts in service read theirs from
/// the file `[peer] hmac_keys` names.
pub fn demo_exchange_keys() -> ExchangeKeys {
    ExchangeKeys::single(b"borderflow demo exchange key: for simulated traffic only")
}

/// The keys a post hashes plates with: the file `[peer] hmac_keys` names,
/// else (with a warning) the demo key, which no neighbour shares.
pub fn post_exchange_keys(config: &PostConfig) -> Result<ExchangeKeys, String> {
    match config.peer.as_ref().and_then(|p| p.hmac_keys.as_ref()) {
        Some(path) => borderflow_types::config::read_exchange_keys(path).map_err(|e| e.to_string()),
        None => {
            tracing::warn!(post = %config.post.id, "no [peer] hmac_keys: plates are hashed with the demo key, which no neighbour shares");
            Ok(demo_exchange_keys())
        }
    }
}

/// What a post's views are built over, besides its reads.
pub struct PostTables<'a> {
    /// The configuration's own views, created after the standard ones.
    pub views: &'a [ViewConfig],
    /// The configuration's reference tables.
    pub tables: &'a [TableConfig],
    /// The watchlist ([`borderflow_types::watchlist_schema`]).
    pub watchlist: &'a RecordBatch,
    pub keys: &'a ExchangeKeys,
    /// Whether to create the standard views of `queries/sql/`.
    pub standard: bool,
}

/// Adds a post's `reads` (and their hashed keys) and the neighbour's exit
/// reads it was `sent` (as pre-arrival records) to the views' tables, for
/// the next commit.
pub fn feed_reads(views: &mut StandingViews, reads: &[PlateRead], sent: &[PlateRead], keys: &ExchangeKeys) -> Result<(), ViewError> {
    views.insert("reads", &reads_to_batch(reads))?;
    views.insert("read_keys", &read_keys_batch(reads, keys))?;
    views.insert("pre_arrival", &pre_arrival_records(sent, keys))?;
    Ok(())
}

/// A post's tables and standing views, before any read arrives: `reads`,
/// `read_keys` (the reads hashed for the exchange), `pre_arrival` (records
/// from the neighbour's posts), `posts` and `post_routes` (the crossings'
/// reference data), `watchlist` and the configuration's own tables; then
/// the standard views (`queries/sql/`) and the configuration's views.
pub async fn post_views(post: &PostTables<'_>, runtime: &Runtime) -> Result<StandingViews, EngineError> {
    let mut standing = StandingViews::on(runtime)?;
    standing.set_exchange_keys(post.keys.clone());
    standing.register_table("reads", plate_read_schema())?;
    standing.register_table("read_keys", read_keys_schema())?;
    standing.register_table("pre_arrival", pre_arrival_schema())?;
    for (name, batch) in [("posts", posts_batch()), ("post_routes", post_routes_batch()), ("watchlist", post.watchlist.clone())] {
        standing.register_table(name, batch.schema())?;
        standing.insert(name, &batch)?;
    }
    for table in post.tables {
        let contents = load_table(table).await?;
        standing.register_table(&table.name, contents.schema())?;
        standing.insert(&table.name, &contents)?;
    }
    if post.standard {
        create_standard_views(&mut standing).await?;
    }
    for view in post.views {
        standing.create_view(&view.name, &view.sql).await?;
    }
    Ok(standing)
}

/// A configured reference table's rows, read with DataFusion.
async fn load_table(table: &TableConfig) -> Result<RecordBatch, EngineError> {
    let failed = |e: &dyn std::fmt::Display| EngineError::Table(format!("table `{}` ({}): {e}", table.name, table.path.display()));
    let ctx = datafusion::prelude::SessionContext::new();
    let path = table.path.to_string_lossy();
    let frame = if path.ends_with(".csv") {
        ctx.read_csv(path.as_ref(), datafusion::prelude::CsvReadOptions::new()).await
    } else {
        ctx.read_parquet(path.as_ref(), datafusion::prelude::ParquetReadOptions::default()).await
    }
    .map_err(|e| failed(&e))?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| failed(&e))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| failed(&e))
}
