//! Fuzzing what an analyst's Flight SQL client sends: the commands (prost
//! `Any` messages, as random bytes and as real commands damaged), the SQL
//! (random text, and statements from a small grammar of SELECT, COPY,
//! CREATE, INSERT, DELETE, DROP, SET and transaction fragments, cut,
//! spliced and commented at random) and bound parameter values. Nothing
//! may panic; every statement that would write (a file, a table, a view, a
//! setting) is refused before it runs, and after every case the session
//! has the same tables and settings and no file was written.
//!
//! Why proptest and not cargo-fuzz or AFL: both need a nightly compiler or
//! their own toolchain, which the project's machines and CI do not have.
//! proptest runs on stable as an ordinary `cargo test`, from a fixed seed
//! by default, shrinks a failure to a small input, and takes more cases
//! from `BORDERFLOW_FUZZ_CASES` for long runs (see `fuzz_config`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, Any, Command, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, ProstMessageExt, TicketStatementQuery,
};
use borderflow_connectors::flight_sql::session::{self, Limits, Session, analyst_frame, write_kind};
use borderflow_types::{Direction, ExchangeKeys, PlateRead, pre_arrival_records, reads_to_batch};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use prost::Message;

#[path = "../../engine/types/tests/fuzz_config/mod.rs"]
mod fuzz_config;
#[path = "../../engine/types/tests/sample_reads/mod.rs"]
mod sample_reads;

use sample_reads::sample_read;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"))
}

/// Where a `COPY … TO` of the grammar would write: it must stay empty.
fn copy_target() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

/// A session like an analyst's: the post's catalog, `reads` and
/// `pre_arrival` tables, the plate functions.
fn session() -> Session {
    let config = SessionConfig::new().with_default_catalog_and_schema("otaci", session::SCHEMA);
    let ctx = SessionContext::new_with_config(config);
    let keys = ExchangeKeys::single(b"a key both services share");
    borderflow_queries::udf::register(&ctx, Arc::new(keys.clone()));
    let reads: Vec<PlateRead> = (0..6).map(|i| sample_read(i, "otaci", if i % 2 == 0 { Direction::Exit } else { Direction::Entry })).collect();
    for (name, batch) in [("reads", reads_to_batch(&reads)), ("pre_arrival", pre_arrival_records(&reads, &keys))] {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("table");
        ctx.register_table(name, Arc::new(table)).expect("register");
    }
    // `watchlist` is there but withheld from the role: naming it is refused.
    Session { ctx, tables: Vec::new(), role: "analyst".into(), withheld: vec!["watchlist".into()] }
}

/// What a statement could change: every table's name and the settings.
fn state_of(ctx: &SessionContext) -> (Vec<String>, String) {
    let mut tables = Vec::new();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else { continue };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else { continue };
            tables.extend(schema.table_names().into_iter().map(|t| format!("{catalog_name}.{schema_name}.{t}")));
        }
    }
    tables.sort();
    (tables, format!("{:?}", ctx.state().config_options()))
}

const LIMITS: Limits = Limits { memory_bytes: 64 << 20, timeout: Duration::from_secs(10) };

/// Plans and runs `sql` as an analyst's query; checks what it may do.
fn check_sql(sql: &str) -> Result<(), TestCaseError> {
    let session = session();
    let before = state_of(&session.ctx);
    let writes = starts_with_write(sql);
    let (planned, ran) = runtime().block_on(async {
        let planned = analyst_frame(&session, sql).await.map(|frame| write_kind(frame.logical_plan()));
        let ran = match &planned {
            Ok(None) => Some(session::run(&session, sql, None, LIMITS).await),
            _ => None,
        };
        (planned, ran)
    });
    match &planned {
        Ok(kind) => {
            prop_assert!(kind.is_none(), "a plan that writes ({kind:?}) was let through: {sql:?}");
            prop_assert!(!writes, "a statement that writes was planned: {sql:?}");
        }
        Err(error) => prop_assert!(!error.trim().is_empty(), "an error in words for {sql:?}"),
    }
    if let Some(Err(error)) = &ran {
        prop_assert!(!error.trim().is_empty());
    }
    prop_assert_eq!(state_of(&session.ctx), before, "the session changed: {:?}", sql);
    let written: Vec<PathBuf> = std::fs::read_dir(copy_target()).expect("copy target").flatten().map(|e| e.path()).collect();
    prop_assert!(written.is_empty(), "{sql:?} wrote {written:?}");
    Ok(())
}

const WRITE_KEYWORDS: &[&str] = &[
    "COPY", "CREATE", "INSERT", "DELETE", "UPDATE", "DROP", "TRUNCATE", "ALTER", "SET", "RESET", "PREPARE", "EXECUTE", "DEALLOCATE", "BEGIN",
    "START", "COMMIT", "ROLLBACK", "ANALYZE", "MERGE", "REPLACE", "USE", "ATTACH", "LOAD", "INSTALL",
];

/// Whether the statement's first word (past comments) is one that writes.
fn starts_with_write(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest.trim_start_matches('(').chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    WRITE_KEYWORDS.iter().any(|w| w.eq_ignore_ascii_case(&word))
}

const COLUMNS: &[&str] = &[
    "*", "plate_norm", "lane, count(*) AS passages", "read_id, captured_at", "plate_norm(plate_text)", "plate_hmac(plate_text)",
    "plate_fuzzy(plate_norm)", "max(captured_at)", "count(DISTINCT plate_norm)", "lane + 1", "CAST(lane AS VARCHAR)", "now()", "'x'", "1 / 0",
    "$1", "avg(confidence)", "row_number() OVER (PARTITION BY lane ORDER BY captured_at)",
];
const TABLES: &[&str] = &[
    "reads", "pre_arrival", "nowhere", "otaci.public.reads", "reads r JOIN pre_arrival p ON r.read_id = p.read_id", "(SELECT * FROM reads) s",
    "reads, reads r2", "information_schema.tables", "read_parquet('/etc/passwd')", "'/etc/passwd'",
];
const FILTERS: &[&str] = &[
    "", "WHERE lane > 1", "WHERE plate_norm LIKE 'A%'", "WHERE captured_at > now() - INTERVAL '30 days'", "WHERE read_id IN (SELECT read_id FROM pre_arrival)",
    "WHERE lane = $1",
];
const TAILS: &[&str] = &["", "GROUP BY lane", "ORDER BY 1", "LIMIT 2", "GROUP BY lane HAVING count(*) > 1", "ORDER BY captured_at DESC LIMIT 1 OFFSET 1"];

fn select() -> impl Strategy<Value = String> + Clone {
    let pick = |list: &'static [&'static str]| proptest::sample::select(list);
    (pick(COLUMNS), pick(TABLES), pick(FILTERS), pick(TAILS)).prop_map(|(columns, table, filter, tail)| format!("SELECT {columns} FROM {table} {filter} {tail}"))
}

const WRITES: &[&str] = &[
    "COPY ({select}) TO '{path}/out.parquet'", "COPY reads TO '{path}/reads.csv' STORED AS CSV", "COPY reads TO '{path}/dir/' STORED AS PARQUET",
    "COPY (VALUES (1)) TO '{path}/v.json'", "CREATE TABLE t AS {select}", "CREATE TABLE t (a INT)", "CREATE OR REPLACE TABLE reads AS {select}",
    "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{path}/t.csv'", "CREATE VIEW v AS {select}", "CREATE OR REPLACE VIEW reads AS {select}",
    "CREATE SCHEMA s", "CREATE DATABASE d", "CREATE FUNCTION f(INT) RETURNS INT RETURN 1", "INSERT INTO reads {select}", "INSERT INTO t VALUES (1)",
    "INSERT INTO pre_arrival (variant) VALUES (1)", "DELETE FROM reads", "DELETE FROM reads WHERE lane = 1", "UPDATE reads SET lane = 2",
    "TRUNCATE reads", "DROP TABLE reads", "DROP VIEW reads", "DROP TABLE IF EXISTS t", "DROP SCHEMA public CASCADE", "ALTER TABLE reads ADD COLUMN x INT",
    "SET datafusion.execution.batch_size = 1", "SET datafusion.execution.time_zone = '+05:00'", "SET TIME ZONE 'UTC'",
    "RESET datafusion.execution.batch_size", "PREPARE p AS {select}", "EXECUTE p", "DEALLOCATE p", "BEGIN", "START TRANSACTION", "COMMIT",
    "ROLLBACK", "ANALYZE TABLE reads",
];
const READS: &[&str] = &[
    "{select}", "EXPLAIN {select}", "EXPLAIN ANALYZE {select}", "WITH c AS ({select}) SELECT * FROM c", "{select} UNION ALL {select}",
    "SHOW TABLES", "SHOW ALL", "DESCRIBE reads", "VALUES (1, 'a')", "EXPLAIN {write}", "EXPLAIN ANALYZE {write}", "WITH c AS ({select}) {write}",
    "SELECT * FROM ({write})",
];

fn statement() -> impl Strategy<Value = String> {
    let path = copy_target().display().to_string();
    let write = (proptest::sample::select(WRITES), select()).prop_map(move |(template, select)| template.replace("{select}", &select).replace("{path}", &path));
    let read = (proptest::sample::select(READS), select(), select(), write.clone())
        .prop_map(|(template, a, b, write)| template.replacen("{select}", &a, 1).replacen("{select}", &b, 1).replace("{write}", &write));
    prop_oneof![2 => write, 2 => read]
}

/// One way of mangling a statement.
#[derive(Clone, Debug)]
enum Mangle {
    Insert(Index, String),
    Delete(Index, Index),
    Duplicate(Index, Index),
    Case(bool),
    Append(String),
}

const FRAGMENTS: &[&str] = &[
    ";", "; ", "--", "-- x\n", "/*", "*/", "/* c */", "'", "\"", "(", ")", " ", ",", "\u{0}", "é", "COPY", "CREATE", "INSERT", "SET", "SELECT",
    "DROP", "TO", "AS", "FROM", "*", "$1", "$99999999999", "1e999", "E'\\x'", "::", "[", "]",
];

fn mangle() -> impl Strategy<Value = Mangle> {
    let fragment = prop_oneof![4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string), 1 => any::<char>().prop_map(String::from)];
    prop_oneof![
        3 => (any::<Index>(), fragment).prop_map(|(at, text)| Mangle::Insert(at, text)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mangle::Delete(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mangle::Duplicate(a, b)),
        1 => any::<bool>().prop_map(Mangle::Case),
        1 => statement().prop_map(|s| Mangle::Append(format!("; {s}"))),
    ]
}

fn apply(sql: &str, mangle: &Mangle) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let span = |a: &Index, b: &Index| {
        let (a, b) = (a.index(chars.len() + 1), b.index(chars.len() + 1));
        (a.min(b), a.max(b))
    };
    match mangle {
        Mangle::Insert(at, text) => {
            let at = at.index(chars.len() + 1);
            chars[..at].iter().collect::<String>() + text + &chars[at..].iter().collect::<String>()
        }
        Mangle::Delete(a, b) => {
            let (a, b) = span(a, b);
            chars[..a].iter().chain(&chars[b..]).collect()
        }
        Mangle::Duplicate(a, b) => {
            let (a, b) = span(a, b);
            chars[..b].iter().chain(&chars[a..]).collect()
        }
        Mangle::Case(upper) => if *upper { sql.to_uppercase() } else { sql.to_lowercase() },
        Mangle::Append(more) => format!("{sql}{more}"),
    }
}

fn sql() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => statement(),
        3 => (statement(), proptest::collection::vec(mangle(), 1..3)).prop_map(|(sql, mangles)| mangles.iter().fold(sql, |sql, m| apply(&sql, m))),
        1 => proptest::collection::vec(any::<char>(), 0..60).prop_map(String::from_iter),
    ]
}

/// A command a Flight SQL client may send, encoded as it travels.
fn command_bytes() -> impl Strategy<Value = Vec<u8>> {
    let real = sql().prop_map(|query| {
        vec![
            CommandStatementQuery { query: query.clone(), transaction_id: None }.as_any().encode_to_vec(),
            CommandPreparedStatementQuery { prepared_statement_handle: query.clone().into_bytes().into() }.as_any().encode_to_vec(),
            ActionCreatePreparedStatementRequest { query, transaction_id: None }.as_any().encode_to_vec(),
            CommandGetTables { catalog: Some("otaci".into()), table_name_filter_pattern: Some("%".into()), include_schema: true, ..Default::default() }
                .as_any()
                .encode_to_vec(),
            TicketStatementQuery { statement_handle: b"01J0000".to_vec().into() }.as_any().encode_to_vec(),
        ]
    });
    let damaged = (real, any::<Index>(), proptest::collection::vec((any::<Index>(), any::<u8>()), 0..6), any::<Index>()).prop_map(
        |(commands, which, flips, cut)| {
            let mut bytes = commands[which.index(commands.len())].clone();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len() / 2));
            bytes
        },
    );
    prop_oneof![3 => damaged, 1 => proptest::collection::vec(any::<u8>(), 0..120)]
}

/// A parameter value of some type, as a one-row column.
fn parameter_value() -> impl Strategy<Value = ArrayRef> {
    prop_oneof![
        any::<i64>().prop_map(|v| Arc::new(Int64Array::from(vec![v])) as ArrayRef),
        any::<f64>().prop_map(|v| Arc::new(Float64Array::from(vec![v])) as ArrayRef),
        any::<bool>().prop_map(|v| Arc::new(BooleanArray::from(vec![v])) as ArrayRef),
        proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| Arc::new(StringArray::from(vec![String::from_iter(c)])) as ArrayRef),
        any::<i64>().prop_map(|v| Arc::new(TimestampMillisecondArray::from(vec![v])) as ArrayRef),
        Just(Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef),
    ]
}

fn parameter_type() -> impl Strategy<Value = DataType> {
    proptest::sample::select(vec![
        DataType::Null,
        DataType::Int64,
        DataType::UInt16,
        DataType::Float32,
        DataType::Utf8,
        DataType::Boolean,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        DataType::Decimal128(10, 2),
    ])
}

proptest! {
    #![proptest_config(fuzz_config::config(1000))]

    #[test]
    fn analysts_sql_never_writes(sql in sql()) {
        check_sql(&sql)?;
    }

    #[test]
    fn commands_decode_or_are_refused(bytes in command_bytes()) {
        // What the Flight SQL server does with a descriptor's command, a
        // ticket or an action's body.
        if let Ok(any) = Any::decode(bytes.as_slice()) {
            if let Ok(Command::CommandStatementQuery(query)) = Command::try_from(any.clone()) {
                check_sql(&query.query)?;
            }
            let _ = any.unpack::<ActionCreatePreparedStatementRequest>();
            let _ = any.unpack::<ActionClosePreparedStatementRequest>();
            let _ = any.unpack::<TicketStatementQuery>();
        }
    }

    #[test]
    fn bound_parameters_are_cast_or_refused(values in proptest::collection::vec(parameter_value(), 0..4), types in proptest::collection::vec(parameter_type(), 0..4)) {
        let fields: Vec<Field> = values.iter().enumerate().map(|(i, v)| Field::new(format!("${}", i + 1), v.data_type().clone(), true)).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), values);
        let parameters = Schema::new(types.into_iter().enumerate().map(|(i, t)| Field::new(format!("${}", i + 1), t, true)).collect::<Vec<_>>());
        if let Ok(batch) = batch {
            match session::bind(&batch, &parameters) {
                Ok(bound) => prop_assert_eq!(bound.len(), parameters.fields().len()),
                Err(error) => prop_assert!(error.starts_with("bound parameter"), "{}", error),
            }
        }
    }
}

#[test]
fn every_kind_of_write_in_the_grammar_is_refused() {
    let path = copy_target().display().to_string();
    for template in WRITES {
        let sql = template.replace("{select}", "SELECT * FROM reads").replace("{path}", &path);
        check_sql(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let refused = runtime().block_on(analyst_frame(&session(), &sql));
        assert!(refused.is_err(), "{sql} was planned");
    }
}
