//! Ad-hoc SQL over what the engine wrote: Parquet folders in the object store,
//! registered as DataFusion tables. One dialect with the standing views.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use url::Url;

/// The settings of an analyst's ad-hoc session (the CLI, Flight SQL, the
/// embedded API): the catalog is queryable
/// (`SHOW TABLES`, `SHOW COLUMNS FROM t`, `information_schema.tables` and
/// `.columns`), and a table's Parquet folder is listed with its nested
/// folders, as reads are partitioned into them (post, date).
pub fn analyst_session_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.execution.listing_table_ignore_subdirectory", false)
}

/// A failed query, with the SQL that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("registering table `{table}` at {location}: {message}")]
    Register { table: String, location: String, message: String },
    #[error("query failed: {message}\n  in: {sql}")]
    Sql { sql: String, message: String },
}

/// A DataFusion session over the engine's Parquet history.
pub struct History {
    ctx: SessionContext,
}

impl History {
    /// A session that reads the object store `store`, whose root is `root_url`.
    pub fn new(root_url: &Url, store: Arc<dyn ObjectStore>) -> Self {
        let ctx = SessionContext::new_with_config(analyst_session_config());
        let store_url = format!("{}://{}", root_url.scheme(), root_url.host_str().unwrap_or(""));
        if let Ok(store_url) = ObjectStoreUrl::parse(&store_url) {
            ctx.register_object_store(store_url.as_ref(), store);
        }
        History { ctx }
    }

    /// Registers every Parquet file under `folder_url` (recursively) as `table`.
    /// With `schema`, an empty or missing folder is an empty table.
    pub async fn register_parquet(
        &self,
        table: &str,
        folder_url: &str,
        schema: Option<SchemaRef>,
    ) -> Result<(), QueryError> {
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet");
        self.ctx
            .register_listing_table(table, folder_url, options, schema, None)
            .await
            .map_err(|e| QueryError::Register {
                table: table.to_string(),
                location: folder_url.to_string(),
                message: e.to_string(),
            })
    }

    /// Runs one SQL statement and collects its result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let failed = |e: datafusion::error::DataFusionError| QueryError::Sql {
            sql: sql.to_string(),
            message: e.to_string(),
        };
        let frame = self.ctx.sql(sql).await.map_err(failed)?;
        frame.collect().await.map_err(failed)
    }

    /// The DataFusion session, for registering more tables or functions.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}
