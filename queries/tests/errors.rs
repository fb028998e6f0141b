//! A row a view cannot evaluate is left out of it, counted and logged; the
//! rows committed with it are not lost, and the view keeps running.

use crate::common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use borderflow_queries::StandingViews;
use common::rows;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, false)]))
}

fn batch(rows: &[(i64, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .expect("batch")
}

#[tokio::test]
async fn a_row_that_fails_to_evaluate_costs_only_itself() {
    for workers in [1, 2] {
        let mut views = StandingViews::with_workers(workers).expect("views");
        views.register_table("t", schema()).expect("table");
        // DataFusion's CAST of a string that is not a number fails.
        views.create_view("parsed", "SELECT id, CAST(s AS BIGINT) AS n FROM t").await.expect("view");
        views.create_view("total", "SELECT count(*) AS rows, sum(CAST(s AS BIGINT)) AS total FROM t").await.expect("view");
        // One bad row in the middle of a chunk of good ones.
        views.insert("t", &batch(&[(1, "10"), (2, "20"), (3, "x3"), (4, "40"), (5, "50")])).expect("insert");
        views.commit();
        assert_eq!(rows(&views.snapshot("parsed").expect("snapshot")), ["1|10", "2|20", "4|40", "5|50"], "{workers} workers");
        assert_eq!(rows(&views.snapshot("total").expect("snapshot")), ["4|120"], "{workers} workers");
        assert_eq!(views.errors("parsed").expect("errors"), 1);
        assert_eq!(views.errors("total").expect("errors"), 1);
        // The views keep running: later rows arrive, and so does the
        // retraction of a row that did evaluate.
        views.insert("t", &batch(&[(6, "60")])).expect("insert");
        views.retract("t", &batch(&[(1, "10")])).expect("retract");
        views.commit();
        assert_eq!(rows(&views.snapshot("parsed").expect("snapshot")), ["2|20", "4|40", "5|50", "6|60"]);
        assert_eq!(rows(&views.snapshot("total").expect("snapshot")), ["4|170"]);
        assert_eq!(views.errors("parsed").expect("errors"), 1, "good rows count no error");
        assert!(views.errors("nonexistent").is_err());
    }
}

/// Without a copy of the tables' contents (a backfill's setting), views are
/// maintained as before, while what needs the copy is refused, saying why.
#[tokio::test]
async fn without_table_contents_views_run_and_retractions_are_refused() {
    let mut views = StandingViews::with_workers(2).expect("views");
    views.register_table("t", schema()).expect("table");
    views.keep_table_contents(false);
    views.create_view("long", "SELECT id, s FROM t WHERE length(s) > 1").await.expect("view");
    views.create_view("per_s", "SELECT s, count(*) AS n FROM t GROUP BY s").await.expect("view");
    views.insert("t", &batch(&[(1, "ab"), (2, "c"), (3, "ab")])).expect("insert");
    views.commit();
    assert_eq!(rows(&views.snapshot("long").expect("snapshot")), ["1|ab", "3|ab"]);
    assert_eq!(rows(&views.snapshot("per_s").expect("snapshot")), ["ab|2", "c|1"]);
    let refused = views.retract("t", &batch(&[(1, "ab")])).expect_err("a retraction is refused");
    assert!(refused.to_string().contains("table `t`") && refused.to_string().contains("not kept"), "{refused}");
    assert!(views.table("t").is_err());
    // The refused retraction changed nothing.
    views.insert("t", &batch(&[(4, "de")])).expect("insert");
    views.commit();
    assert_eq!(rows(&views.snapshot("long").expect("snapshot")), ["1|ab", "3|ab", "4|de"]);
}
