//! `borderflow sql "SELECT …"`: ad-hoc SQL from the command line, over a
//! post's data directory or against a `borderflow serve` (Flight SQL).
//!
//! Locally ([`query_local`]) the tables are what the engine wrote: `reads`
//! (the Parquet history under `reads/`, partitioned by post and date), each
//! view's snapshot (`views/<view>/snapshot.parquet`) under the view's name,
//! and each view's changelog (`views/<view>/changes/`) as `<view>_changes`,
//! with the plate functions. Against a server ([`query_server`]) the server
//! decides (see [`borderflow_connectors::flight_sql`]). Results print as a table, CSV, JSON
//! (an array of objects) or Parquet ([`write_result`]).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use crate::engine::PostConfig;

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
    // The tables are registered by file:// URL, which must be absolute.
    let root = std::path::absolute(root).map_err(|e| format!("data directory {}: {e}", root.display()))?;
    let root = root.as_path();
    if !root.is_dir() {
        return Err(format!("data directory {}: not a folder", root.display()));
    }
    let ctx = SessionContext::new_with_config(borderflow_queries::analyst_session_config());
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
    // A local user's tool: it may write (COPY TO a file), and says so first.
    let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| format!("{e}\n  in: {sql}"))?;
    if let Some(kind) = borderflow_connectors::flight_sql::session::write_kind(&plan) {
        eprintln!("note: this statement writes, as the local user: {kind}");
    }
    let frame = ctx.execute_logical_plan(plan).await.map_err(|e| format!("{e}\n  in: {sql}"))?;
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

/// `borderflow sql`: runs one query against a post's files or its server.
#[allow(clippy::too_many_arguments)]
pub fn command(
    sql: &str,
    data: Option<&Path>,
    config: Option<&Path>,
    server: Option<&str>,
    token: Option<String>,
    ca: Option<&Path>,
    format: Format,
    output: Option<&Path>,
) -> Result<(), String> {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    let batches = match server {
        Some(url) => {
            let token = token.or_else(|| std::env::var("BORDERFLOW_TOKEN").ok());
            tokio.block_on(query_server(url, token.as_deref(), ca, sql))?
        }
        None => {
            let post = config.map(|c| PostConfig::from_file(c).map_err(|e| e.to_string())).transpose()?;
            let keys = match post.as_ref().and_then(|p| p.peer.as_ref()).and_then(|p| p.hmac_keys.as_ref()) {
                Some(path) => crate::engine::config::read_exchange_keys(path).map_err(|e| e.to_string())?,
                None => crate::engine::demo_exchange_keys(),
            };
            let root = match (data, &post) {
                (Some(data), _) => data.to_path_buf(),
                (None, Some(post)) => {
                    let url = url::Url::parse(&post.storage.url).map_err(|e| format!("storage.url: {e}"))?;
                    url.to_file_path().map_err(|()| format!("storage.url `{}` is not a local folder; query it through `serve`", post.storage.url))?
                }
                (None, None) => return Err("say what to query: --data DIR, --config post.toml or --server URL".into()),
            };
            tokio.block_on(query_local(&root, sql, keys))?
        }
    };
    match output {
        Some(path) => {
            let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            write_result(&batches, format, &mut file)
        }
        None => write_result(&batches, format, &mut std::io::stdout().lock()),
    }
}
