//! `borderflow sql "SELECT …"`: ad-hoc SQL from the command line, over a
//! post's data directory or against a `borderflow serve` (Flight SQL).
//!
//! Locally ([`query_local`]) the tables are what the engine wrote: `reads`
//! (the Parquet history under `reads/`, partitioned by post and date), each
//! view's snapshot (`views/<view>/snapshot.parquet`) under the view's name,
//! and each view's changelog (`views/<view>/changes/`) as `<view>_changes`,
//! with the plate functions. Against a server ([`query_server`]) the server
//! decides (see [`crate::flight_sql`]). Results print as a table, CSV, JSON
//! (an array of objects) or Parquet ([`write_result`]).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;

/// How results are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Runs `sql` over the data directory `root` (a local folder).
pub async fn query_local(root: &Path, sql: &str, keys: borderflow_engine::ExchangeKeys) -> Result<Vec<RecordBatch>, String> {
    if !root.is_dir() {
        return Err(format!("data directory {}: not a folder", root.display()));
    }
    let config = SessionConfig::new().set_bool("datafusion.execution.listing_table_ignore_subdirectory", false);
    let ctx = SessionContext::new_with_config(config);
    borderflow_queries::udf::register(&ctx, Arc::new(keys));
    let reads = root.join("reads");
    if reads.is_dir() {
        let options = datafusion::datasource::listing::ListingOptions::new(Arc::new(datafusion::datasource::file_format::parquet::ParquetFormat::default()))
            .with_file_extension(".parquet");
        ctx.register_listing_table("reads", &format!("file://{}/", reads.display()), options, Some(borderflow_engine::plate_read_schema()), None)
            .await
            .map_err(|e| format!("{}: {e}", reads.display()))?;
    }
    if let Ok(views) = std::fs::read_dir(root.join("views")) {
        for view in views.flatten() {
            let name = view.file_name().to_string_lossy().to_string();
            let snapshot = view.path().join("snapshot.parquet");
            if snapshot.is_file() {
                ctx.register_parquet(name.as_str(), snapshot.to_string_lossy().as_ref(), ParquetReadOptions::default())
                    .await
                    .map_err(|e| format!("{}: {e}", snapshot.display()))?;
            }
            let changes = view.path().join("changes");
            if std::fs::read_dir(&changes).map(|mut d| d.next().is_some()).unwrap_or(false) {
                let table = format!("{name}_changes");
                ctx.register_parquet(table.as_str(), &format!("{}/", changes.display()), ParquetReadOptions::default())
                    .await
                    .map_err(|e| format!("{}: {e}", changes.display()))?;
            }
        }
    }
    let frame = ctx.sql(sql).await.map_err(|e| format!("{e}\n  in: {sql}"))?;
    frame.collect().await.map_err(|e| format!("{e}\n  in: {sql}"))
}

/// Runs `sql` on a Flight SQL server (`grpc://`, `http://`; `grpc+tls://`
/// or `https://` with the system's TLS roots unless `ca` is given), with a
/// bearer token.
pub async fn query_server(url: &str, token: Option<&str>, ca: Option<&Path>, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let http = url.replace("grpc+tls://", "https://").replace("grpc://", "http://");
    let mut endpoint = tonic::transport::Endpoint::from_shared(http.clone()).map_err(|e| format!("server `{url}`: {e}"))?;
    if http.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| format!("CA file {}: {e}", ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("server `{url}`: {e}"))?;
    }
    let channel = endpoint.connect().await.map_err(|e| format!("server `{url}`: {e}"))?;
    let mut client = FlightSqlServiceClient::new(channel);
    if let Some(token) = token {
        client.set_token(token.to_string());
    }
    let info = client.execute(sql.to_string(), None).await.map_err(|e| format!("server `{url}`: {e}"))?;
    let schema = info.clone().try_decode_schema().map_err(|e| format!("server `{url}`: the result's schema: {e}"))?;
    let mut batches = vec![RecordBatch::new_empty(Arc::new(schema))];
    for endpoint in info.endpoint {
        let Some(ticket) = endpoint.ticket else { continue };
        let stream = client.do_get(ticket).await.map_err(|e| format!("server `{url}`: {e}"))?;
        batches.extend(stream.try_collect::<Vec<_>>().await.map_err(|e| format!("server `{url}`: {e}"))?);
    }
    Ok(batches)
}

/// Writes the result in `format`.
pub fn write_result(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("writing the result: {e}");
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches).map_err(|e| failed(&e))?;
            writeln!(out, "{table}").map_err(|e| failed(&e))?;
        }
        Format::Csv => {
            let mut writer = arrow_csv::WriterBuilder::new().with_header(true).build(out);
            for batch in batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
        }
        Format::Json => {
            let mut writer = arrow_json::ArrayWriter::new(out);
            for batch in batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.finish().map_err(|e| failed(&e))?;
            writeln!(writer.into_inner()).map_err(|e| failed(&e))?;
        }
        Format::Parquet => {
            let Some(schema) = batches.first().map(|b| b.schema()) else { return Ok(()) };
            let mut buffer = Vec::new();
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema, None).map_err(|e| failed(&e))?;
            for batch in batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.close().map_err(|e| failed(&e))?;
            out.write_all(&buffer).map_err(|e| failed(&e))?;
        }
    }
    Ok(())
}
