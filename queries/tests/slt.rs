//! The sqllogictest suite under `tests/slt/`, run incrementally through the
//! runner in `slt_runner/`: every query is checked against its expected rows
//! and kept as a standing view that must equal DataFusion's batch answer
//! after every later statement. Each file declares how many of its queries
//! the engine refuses (`# refused-queries: N`).
//!
//! With `SLT_COMPLETE=1` in the environment, each file's expected rows are
//! rewritten with DataFusion's batch answer instead of being checked
//! (`SLT_COMPLETE=1 cargo test --workspace --test queries slt::`, then
//! review the diff), as DataFusion's own `--complete` does.

use std::path::PathBuf;

use crate::slt_runner as slt;

/// Whether `SLT_COMPLETE=1` asks for the files' expected rows to be rewritten.
fn completing() -> bool {
    std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1")
}

async fn run(file: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt").join(file);
    if completing() {
        let changed = slt::complete_file(&path).await.unwrap_or_else(|e| panic!("{e}"));
        println!("{file}: {changed} queries' expected rows rewritten");
        return;
    }
    let report = slt::run_file(&path).await.unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    assert!(report.declared_refused.is_some(), "{file} declares no `# refused-queries: N`");
    assert!(report.is_success(), "{report}");
}

macro_rules! slt_files {
    ($($name:ident => $file:literal,)*) => {$(
        #[tokio::test]
        async fn $name() {
            run($file).await;
        }
    )*};
}

slt_files! {
    windows => "windows.slt",
    interval_joins => "interval_joins.slt",
    temporal => "temporal.slt",
    expressions => "expressions.slt",
    strings => "strings.slt",
    time => "time.slt",
    joins => "joins.slt",
    subqueries => "subqueries.slt",
    aggregates => "aggregates.slt",
    set_operations => "set_operations.slt",
    border_crossings => "border_crossings.slt",
    catalog => "catalog.slt",
    refusals => "refusals.slt",
}

/// The runner itself: a wrong expected row, a statement that fails, and a
/// refusal whose message does not match are failures; refusals are counted
/// apart and checked against the file's declaration.
#[tokio::test]
async fn the_runner_reports_failures_and_refusals() {
    let script = "\
# refused-queries: 1

statement ok
CREATE TABLE t (k VARCHAR NOT NULL, v INT)

statement count 3
INSERT INTO t VALUES ('a', 1), ('a', 2), ('b', NULL)

query TI
SELECT k, sum(v) FROM t GROUP BY k
----
a 3
b 7

statement error non-nullable
INSERT INTO t VALUES (NULL, 1)

statement ok
INSERT INTO t VALUES (NULL, 1)

query error LIMIT
SELECT k FROM t LIMIT 1

query error something else
SELECT k FROM t LIMIT 2

query T
SELECT DISTINCT k FROM t
----
b
a
";
    let report = slt::run_script("inline.slt", script).await.expect("parses");
    assert_eq!((report.passed, report.failed, report.refused), (1, 3, 1), "{report}");
    assert!(!report.is_success());
    let messages: Vec<&str> = report.failures.iter().map(|f| f.message.as_str()).collect();
    assert!(messages[0].contains("- b 7") && messages[0].contains("+ b NULL"), "{}", messages[0]);
    assert!(messages[1].contains("non-nullable"), "{}", messages[1]);
    assert!(messages[2].contains("does not match"), "{}", messages[2]);
    assert_eq!(report.failures[0].location, "inline.slt:9");
}
