//! The catalog commands tools browse with (DBeaver, JDBC, ADBC's
//! `get_objects`): catalogs, schemas, tables with their columns, table
//! types, the server's `SqlInfo`, the SQL types (`XdbcTypeInfo`), and the
//! engine tables' primary and foreign keys. arrow-flight's builders do the
//! filtering (`LIKE` patterns, table types) and the sorting the protocol
//! asks for; this module only says what there is.
//!
//! There is one catalog, named after the post, with one schema, `public`
//! ([`super::session`]); engine tables and the Parquet history are
//! `TABLE`s, standing views' snapshots are `VIEW`s.

use std::sync::{Arc, OnceLock};

use arrow::array::{Int32Array, RecordBatch, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, Nullable,
    Searchable, SqlInfo, SqlSupportedTransaction, XdbcDataType, XdbcDatetimeSubcode,
};

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

/// The primary keys of the engine's tables, in key order. Each holds by
/// construction: a read's `read_id` is unique (reads are deduplicated by
/// it), a post's id is unique among the posts that exchange data, and
/// `post_routes` has one row per ordered pair of posts.
pub const PRIMARY_KEYS: &[(&str, &[&str])] = &[("posts", &["post_id"]), ("post_routes", &["from_post", "to_post"]), ("reads", &["read_id"])];

/// Foreign keys of the engine's tables: (table, column, referenced table,
/// its key column). Every route runs between two posts of `posts`.
pub const FOREIGN_KEYS: &[(&str, &str, &str, &str)] = &[("post_routes", "from_post", "posts", "post_id"), ("post_routes", "to_post", "posts", "post_id")];

/// Whether a command's optional catalog and schema name this session's.
fn ours(catalog: &str, asked_catalog: Option<&str>, asked_schema: Option<&str>) -> bool {
    asked_catalog.is_none_or(|c| c == catalog) && asked_schema.is_none_or(|s| s == SCHEMA)
}

/// `CommandGetPrimaryKeys`: the key columns of one table, in key order.
/// (arrow-flight has no builder for the key commands; the columns are the
/// Flight SQL protocol's.)
pub fn get_primary_keys(command: CommandGetPrimaryKeys, catalog: &str, session: &Session) -> Result<RecordBatch, String> {
    let mut columns: Vec<&str> = Vec::new();
    if ours(catalog, command.catalog.as_deref(), command.db_schema.as_deref())
        && session.tables.iter().any(|(name, _, _)| *name == command.table)
        && let Some((_, key)) = PRIMARY_KEYS.iter().find(|(table, _)| *table == command.table)
    {
        columns.extend(key.iter());
    }
    let n = columns.len();
    let schema = Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]);
    let key_name = format!("{}_pkey", command.table);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec![catalog; n])),
            Arc::new(StringArray::from(vec![SCHEMA; n])),
            Arc::new(StringArray::from(vec![command.table.as_str(); n])),
            Arc::new(StringArray::from(columns)),
            Arc::new(StringArray::from(vec![key_name.as_str(); n])),
            Arc::new(Int32Array::from_iter_values(1..=n as i32)),
        ],
    )
    .map_err(|e| format!("GetPrimaryKeys: {e}"))
}

/// Which foreign keys a key command asks for.
pub enum KeysOf<'a> {
    /// Those referencing this table (`GetExportedKeys`).
    Exported(&'a str),
    /// This table's own (`GetImportedKeys`).
    Imported(&'a str),
    /// Those of the second table referencing the first (`GetCrossReference`).
    Between(&'a str, &'a str),
}

/// `GetExportedKeys`, `GetImportedKeys` and `GetCrossReference`: the
/// foreign keys asked for, in the protocol's columns and order. Nothing is
/// updated or deleted through SQL here, so both rules are NO ACTION (3).
pub fn get_foreign_keys(asked: KeysOf<'_>, catalog: &str, session: &Session) -> Result<RecordBatch, String> {
    let present = |table: &str| session.tables.iter().any(|(name, _, _)| name == table);
    let keys: Vec<&(&str, &str, &str, &str)> = FOREIGN_KEYS
        .iter()
        .filter(|(table, _, referenced, _)| present(table) && present(referenced))
        .filter(|(table, _, referenced, _)| match asked {
            KeysOf::Exported(pk) => *referenced == pk,
            KeysOf::Imported(fk) => *table == fk,
            KeysOf::Between(pk, fk) => *referenced == pk && *table == fk,
        })
        .collect();
    let n = keys.len();
    let text = |nullable: bool, name: &str| Field::new(name, DataType::Utf8, nullable);
    let schema = Schema::new(vec![
        text(true, "pk_catalog_name"),
        text(true, "pk_db_schema_name"),
        text(false, "pk_table_name"),
        text(false, "pk_column_name"),
        text(true, "fk_catalog_name"),
        text(true, "fk_db_schema_name"),
        text(false, "fk_table_name"),
        text(false, "fk_column_name"),
        Field::new("key_sequence", DataType::Int32, false),
        text(true, "fk_key_name"),
        text(true, "pk_key_name"),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]);
    let column = |f: fn(&(&str, &str, &str, &str)) -> String| -> arrow::array::ArrayRef { Arc::new(StringArray::from_iter_values(keys.iter().map(|k| f(k)))) };
    let constant = |value: &str| -> arrow::array::ArrayRef { Arc::new(StringArray::from(vec![value; n])) };
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            constant(catalog),
            constant(SCHEMA),
            column(|k| k.2.to_string()),
            column(|k| k.3.to_string()),
            constant(catalog),
            constant(SCHEMA),
            column(|k| k.0.to_string()),
            column(|k| k.1.to_string()),
            Arc::new(Int32Array::from(vec![1; n])),
            column(|k| format!("{}_{}_fkey", k.0, k.1)),
            column(|k| format!("{}_pkey", k.2)),
            Arc::new(UInt8Array::from(vec![3u8; n])),
            Arc::new(UInt8Array::from(vec![3u8; n])),
        ],
    )
    .map_err(|e| format!("foreign keys: {e}"))
}

/// The SQL types the dialect (DataFusion's) accepts in `CAST` and
/// parameters, for `CommandGetXdbcTypeInfo`.
pub fn xdbc_type_info() -> &'static XdbcTypeInfoData {
    static INFO: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut types = XdbcTypeInfoDataBuilder::new();
        let number = |name: &str, data_type: XdbcDataType, size: i32| XdbcTypeInfo {
            type_name: name.to_string(),
            data_type,
            column_size: Some(size),
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Basic,
            unsigned_attribute: Some(false),
            fixed_prec_scale: false,
            sql_data_type: data_type,
            num_prec_radix: Some(if matches!(data_type, XdbcDataType::XdbcReal | XdbcDataType::XdbcDouble) { 2 } else { 10 }),
            ..XdbcTypeInfo::default()
        };
        let dated = |name: &str, data_type: XdbcDataType, subcode: XdbcDatetimeSubcode| XdbcTypeInfo {
            type_name: name.to_string(),
            data_type,
            literal_prefix: Some(format!("{name} '")),
            literal_suffix: Some("'".to_string()),
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Basic,
            sql_data_type: XdbcDataType::XdbcDatetime,
            datetime_subcode: Some(subcode),
            ..XdbcTypeInfo::default()
        };
        types.append(XdbcTypeInfo { column_size: Some(1), ..number("BOOLEAN", XdbcDataType::XdbcBit, 1) });
        types.append(number("TINYINT", XdbcDataType::XdbcTinyint, 3));
        types.append(number("SMALLINT", XdbcDataType::XdbcSmallint, 5));
        types.append(number("INTEGER", XdbcDataType::XdbcInteger, 10));
        types.append(number("BIGINT", XdbcDataType::XdbcBigint, 19));
        types.append(number("REAL", XdbcDataType::XdbcReal, 24));
        types.append(number("DOUBLE", XdbcDataType::XdbcDouble, 53));
        types.append(XdbcTypeInfo {
            create_params: Some(vec!["precision".to_string(), "scale".to_string()]),
            fixed_prec_scale: true,
            minimum_scale: Some(0),
            maximum_scale: Some(38),
            ..number("DECIMAL", XdbcDataType::XdbcDecimal, 38)
        });
        types.append(XdbcTypeInfo {
            type_name: "VARCHAR".to_string(),
            data_type: XdbcDataType::XdbcVarchar,
            literal_prefix: Some("'".to_string()),
            literal_suffix: Some("'".to_string()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: true,
            searchable: Searchable::Full,
            sql_data_type: XdbcDataType::XdbcVarchar,
            ..XdbcTypeInfo::default()
        });
        types.append(XdbcTypeInfo {
            type_name: "BYTEA".to_string(),
            data_type: XdbcDataType::XdbcVarbinary,
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Basic,
            sql_data_type: XdbcDataType::XdbcVarbinary,
            ..XdbcTypeInfo::default()
        });
        // XDBC_SUBCODE_DATE is the protocol's alias of XDBC_SUBCODE_YEAR (1).
        types.append(dated("DATE", XdbcDataType::XdbcDate, XdbcDatetimeSubcode::XdbcSubcodeYear));
        types.append(dated("TIME", XdbcDataType::XdbcTime, XdbcDatetimeSubcode::XdbcSubcodeTime));
        types.append(dated("TIMESTAMP", XdbcDataType::XdbcTimestamp, XdbcDatetimeSubcode::XdbcSubcodeTimestamp));
        types.append(XdbcTypeInfo {
            type_name: "INTERVAL".to_string(),
            data_type: XdbcDataType::XdbcInterval,
            literal_prefix: Some("INTERVAL '".to_string()),
            literal_suffix: Some("'".to_string()),
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Basic,
            sql_data_type: XdbcDataType::XdbcInterval,
            ..XdbcTypeInfo::default()
        });
        types.build().expect("the server's XDBC type infos build")
    })
}

/// `CommandGetXdbcTypeInfo`: every type, or the one asked for.
pub fn get_xdbc_type_info(command: CommandGetXdbcTypeInfo) -> Result<RecordBatch, String> {
    command.into_builder(xdbc_type_info()).build().map_err(|e| format!("GetXdbcTypeInfo: {e}"))
}
