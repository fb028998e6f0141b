//! The sqllogictest suite under `tests/slt/`, run incrementally through the
//! same runner as `borderflow slt`: every query is checked against its
//! expected rows and kept as a standing view that must equal DataFusion's
//! batch answer after every later statement. Each file declares how many of
//! its queries the engine refuses (`# refused-queries: N`).

use std::path::PathBuf;

use borderflow_queries::slt;

async fn run(file: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt").join(file);
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

// windows.slt and temporal.slt join the list when window functions and
// temporal filters (with `StandingViews::commit_at`) are maintained.
slt_files! {
    expressions => "expressions.slt",
    time => "time.slt",
    joins => "joins.slt",
    subqueries => "subqueries.slt",
    aggregates => "aggregates.slt",
    set_operations => "set_operations.slt",
    border_crossings => "border_crossings.slt",
    refusals => "refusals.slt",
}
