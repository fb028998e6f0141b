//! The catalog commands tools browse with (DBeaver, JDBC, ADBC's
//! `get_objects`): catalogs, schemas, tables with their columns, table
//! types, and the server's `SqlInfo`. arrow-flight's builders do the
//! filtering (`LIKE` patterns, table types) and the sorting the protocol
//! asks for; this module only says what there is.
//!
//! There is one catalog, named after the post, with one schema, `public`
//! ([`super::session`]); engine tables and the Parquet history are
//! `TABLE`s, standing views' snapshots are `VIEW`s.

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, SqlInfo, SqlSupportedTransaction};

use super::session::{SCHEMA, Session, TABLE_TYPES};

/// What the server says about itself (`CommandGetSqlInfo`).
pub fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "Borderflow");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        // The Arrow columnar format version (Schema.fbs MetadataVersion V5).
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        // Analysts read; the engine alone writes.
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        info.append(SqlInfo::SqlDdlCatalog, false);
        info.append(SqlInfo::SqlDdlSchema, false);
        info.append(SqlInfo::SqlDdlTable, false);
        info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        info.append(SqlInfo::SqlAllTablesAreSelectable, true);
        info.append(SqlInfo::SqlTransactionsSupported, false);
        info.build().expect("the server's SqlInfo values build")
    })
}

/// `CommandGetSqlInfo`: the infos asked for (all when none are named).
pub fn get_sql_info(command: CommandGetSqlInfo) -> Result<RecordBatch, String> {
    command.into_builder(sql_info()).build().map_err(|e| format!("GetSqlInfo: {e}"))
}

/// `CommandGetCatalogs`: the post's catalog.
pub fn get_catalogs(command: CommandGetCatalogs, catalog: &str) -> Result<RecordBatch, String> {
    let mut builder = command.into_builder();
    builder.append(catalog);
    builder.build().map_err(|e| format!("GetCatalogs: {e}"))
}

/// `CommandGetDbSchemas`: its one schema, if the filters let it through.
pub fn get_db_schemas(command: CommandGetDbSchemas, catalog: &str) -> Result<RecordBatch, String> {
    let mut builder = command.into_builder();
    builder.append(catalog, SCHEMA);
    builder.build().map_err(|e| format!("GetDbSchemas: {e}"))
}

/// `CommandGetTables`: every table of the session the filters let
/// through, with its Arrow schema if `include_schema`.
pub fn get_tables(command: CommandGetTables, catalog: &str, session: &Session) -> Result<RecordBatch, String> {
    let mut builder = command.into_builder();
    for (name, kind, schema) in &session.tables {
        builder.append(catalog, SCHEMA, name, kind.as_str(), schema).map_err(|e| format!("GetTables: table `{name}`: {e}"))?;
    }
    builder.build().map_err(|e| format!("GetTables: {e}"))
}

/// `CommandGetTableTypes`.
pub fn get_table_types(command: CommandGetTableTypes) -> Result<RecordBatch, String> {
    let mut builder = command.into_builder();
    for kind in TABLE_TYPES {
        builder.append(kind.as_str());
    }
    builder.build().map_err(|e| format!("GetTableTypes: {e}"))
}
