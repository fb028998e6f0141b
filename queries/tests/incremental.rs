//! The oracle test of standing views: after every step of a randomised
//! sequence of inserts and retractions, each view's incrementally maintained
//! contents equal what DataFusion computes in batch over the current tables.
//! Queries outside the subset are refused, naming the construct and place.

use crate::common;

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use common::rows;
use borderflow_queries::{LowerError, StandingViews, ViewError};

fn reads_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Int64, false),
        Field::new("post_id", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("plate", DataType::Utf8, true),
        Field::new("dwell_s", DataType::Float64, true),
    ]))
}

fn watchlist_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("plate", DataType::Utf8, false),
        Field::new("severity", DataType::Int64, false),
    ]))
}


struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn reads_batch(ids: &[i64], rng_seed: u64) -> RecordBatch {
    let posts = ["otaci", "criva", "mamalyha"];
    let plates = ["ABC123", "XYZ987", "AA1234BB", "KLM555", "OOO000"];
    let mut rng = Lcg(rng_seed);
    let _ = &mut rng;
    let pick = |id: i64, n: usize| (id as u64).wrapping_mul(2_654_435_761) as usize % n;
    RecordBatch::try_new(
        reads_schema(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| posts[pick(i, 3)]))),
            Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| if i % 2 == 0 { "entry" } else { "exit" }))),
            Arc::new(StringArray::from_iter(ids.iter().map(|&i| (i % 11 != 0).then(|| plates[pick(i / 3, 5)])))),
            Arc::new(Float64Array::from_iter(ids.iter().map(|&i| (i % 7 != 0).then_some((i % 97) as f64 * 13.5)))),
        ],
    )
    .expect("batch")
}

const VIEWS: &[(&str, &str)] = &[
    ("filtered", "SELECT read_id, upper(post_id) AS post, dwell_s / 60 AS dwell_min FROM reads WHERE dwell_s > 300 AND direction = 'entry'"),
    ("case_coalesce", "SELECT read_id, CASE WHEN dwell_s > 600 THEN 'long' ELSE 'short' END AS kind, coalesce(plate, '?') AS plate FROM reads"),
    ("per_post", "SELECT post_id, direction, count(*) AS n, sum(dwell_s) AS total, min(dwell_s) AS lo, max(dwell_s) AS hi, avg(dwell_s) AS mean FROM reads GROUP BY post_id, direction"),
    ("having", "SELECT plate, count(*) AS n FROM reads WHERE plate IS NOT NULL GROUP BY plate HAVING count(*) > 2"),
    ("distinct_plates", "SELECT DISTINCT post_id, plate FROM reads"),
    ("count_distinct", "SELECT post_id, count(DISTINCT plate) AS plates FROM reads GROUP BY post_id"),
    ("global", "SELECT count(*) AS n, sum(dwell_s) AS total FROM reads"),
    ("watch_hits", "SELECT r.read_id, r.plate, w.severity FROM reads r JOIN watchlist w ON r.plate = w.plate WHERE w.severity >= 2"),
    ("residual_join", "SELECT a.read_id AS first, b.read_id AS second FROM reads a JOIN reads b ON a.plate = b.plate AND a.read_id < b.read_id AND b.post_id <> a.post_id"),
    ("left_join", "SELECT r.read_id, w.severity FROM reads r LEFT JOIN watchlist w ON r.plate = w.plate"),
    ("semi", "SELECT read_id FROM reads WHERE plate IN (SELECT plate FROM watchlist)"),
    ("anti", "SELECT read_id FROM reads r WHERE NOT EXISTS (SELECT 1 FROM watchlist w WHERE w.plate = r.plate)"),
    ("union_all", "SELECT plate FROM reads WHERE direction = 'entry' UNION ALL SELECT plate FROM watchlist"),
    ("create_view", "CREATE VIEW long_dwell AS SELECT post_id, plate, dwell_s FROM reads WHERE dwell_s > 1000"),
    ("row_number", "SELECT read_id, post_id, row_number() OVER (PARTITION BY post_id ORDER BY read_id) AS rn FROM reads"),
    (
        "top_dwell",
        "SELECT * FROM (SELECT read_id, post_id, dwell_s, rank() OVER (PARTITION BY post_id ORDER BY dwell_s DESC NULLS LAST) AS r FROM reads) WHERE r <= 3",
    ),
    (
        "lag_lead",
        "SELECT read_id, plate, lag(read_id) OVER (PARTITION BY plate ORDER BY read_id) AS prev, \
         lead(post_id, 1, 'none') OVER (PARTITION BY plate ORDER BY read_id) AS next_post FROM reads",
    ),
    ("running_sum", "SELECT read_id, sum(dwell_s) OVER (PARTITION BY direction ORDER BY read_id) AS running FROM reads"),
    ("global_rank", "SELECT read_id, dense_rank() OVER (ORDER BY post_id) AS post_rank FROM reads"),
    ("two_views_same_join", "SELECT r.read_id, w.plate FROM reads r JOIN watchlist w ON r.plate = w.plate"),
];

async fn check_all(views: &StandingViews, step: &str) {
    for (name, _) in VIEWS {
        let incremental = views.snapshot(name).expect("snapshot");
        let batch = views.batch_answer(name).await.expect("DataFusion answers");
        assert_eq!(rows(&incremental), rows(&batch), "view {name} after {step}");
    }
}

#[tokio::test]
async fn views_equal_datafusion_after_every_change() {
    views_equal_datafusion_on(1).await;
}

/// The same on two timely workers, which exchange rows by key.
#[tokio::test]
async fn views_equal_datafusion_on_two_workers() {
    views_equal_datafusion_on(2).await;
}

/// Without in-memory changelogs (as a long-running engine keeps its views)
/// the contents stay right and subscribers still get every change.
#[tokio::test]
async fn views_without_kept_changelogs_stay_right() {
    let mut views = StandingViews::with_workers(2).expect("workers start");
    views.keep_changelogs(false);
    views.register_table("reads", reads_schema()).expect("table");
    views.register_table("watchlist", watchlist_schema()).expect("table");
    for (name, sql) in VIEWS {
        views.create_view(name, sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let changes = views.subscribe("per_post").expect("subscribe");
    views.insert("reads", &reads_batch(&(0..60).collect::<Vec<_>>(), 3)).expect("insert");
    views.commit();
    views.retract("reads", &reads_batch(&(10..30).collect::<Vec<_>>(), 3)).expect("retract");
    views.commit();
    check_all(&views, "without changelogs").await;
    let err = views.changes("per_post").expect_err("changelogs are not kept");
    assert!(err.to_string().contains("subscribe"), "{err}");
    let received: usize = changes.try_iter().map(|b| b.num_rows()).sum();
    assert!(received > 0, "subscribers get the changes");
}

async fn views_equal_datafusion_on(workers: usize) {
    let mut views = StandingViews::with_workers(workers).expect("workers start");
    assert_eq!(views.workers(), workers);
    views.register_table("reads", reads_schema()).expect("table");
    views.register_table("watchlist", watchlist_schema()).expect("table");
    // Some data before the views exist: they must start from it.
    views.insert("reads", &reads_batch(&(0..40).collect::<Vec<_>>(), 1)).expect("insert");
    for (name, sql) in VIEWS {
        views.create_view(name, sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    check_all(&views, "creation").await;

    let watch = RecordBatch::try_new(
        watchlist_schema(),
        vec![Arc::new(StringArray::from(vec!["ABC123", "OOO000"])), Arc::new(Int64Array::from(vec![3, 1]))],
    )
    .expect("batch");
    views.insert("watchlist", &watch).expect("insert");
    views.commit();
    check_all(&views, "watchlist insert").await;

    let mut rng = Lcg(7);
    let mut live: Vec<i64> = (0..40).collect();
    let mut next_id = 40;
    for step in 0..12 {
        let inserts: Vec<i64> = (0..rng.next(25) as i64 + 1).map(|k| next_id + k).collect();
        next_id += inserts.len() as i64;
        views.insert("reads", &reads_batch(&inserts, step)).expect("insert");
        live.extend(&inserts);
        let mut retracts = Vec::new();
        for _ in 0..rng.next(12) {
            if live.is_empty() {
                break;
            }
            retracts.push(live.swap_remove(rng.next(live.len() as u64) as usize));
        }
        views.retract("reads", &reads_batch(&retracts, step)).expect("retract");
        if step == 6 {
            views.retract("watchlist", &watch.slice(1, 1)).expect("retract");
        }
        views.commit();
        check_all(&views, &format!("step {step}")).await;
    }

    // Retract everything: every view returns to DataFusion's answer over empty tables.
    views.retract("reads", &reads_batch(&live, 0)).expect("retract all");
    views.commit();
    check_all(&views, "emptying").await;
    assert_eq!(views.snapshot("global").expect("snapshot").num_rows(), 1, "a global aggregate keeps its one row");

    // The changelog sums to the snapshot.
    let changes = views.changes("per_post").expect("changes");
    assert!(changes.num_rows() > 0);
    assert_eq!(changes.schema().fields().iter().rev().take(2).map(|f| f.name().as_str()).collect::<Vec<_>>(), ["_time", "_diff"]);
}

#[tokio::test]
async fn unsupported_queries_are_refused_naming_construct_and_place() {
    let mut views = StandingViews::new();
    views.register_table("reads", reads_schema()).expect("table");
    views.register_table("watchlist", watchlist_schema()).expect("table");
    let cases = [
        ("SELECT read_id FROM reads ORDER BY read_id\nLIMIT 5", "LIMIT", "LIMIT"),
        ("SELECT read_id,\n  now() AS seen FROM reads", "now()", "now"),
        ("SELECT read_id FROM reads WHERE dwell_s > 3\n  OR now() > TIMESTAMP '2026-01-01T00:00:00Z'", "now()", "now"),
        ("SELECT r.read_id FROM reads r FULL OUTER JOIN watchlist w ON r.plate = w.plate", "FULL", "FULL"),
    ];
    for (sql, construct, keyword) in cases {
        // Line and column (1-based) of the keyword in the SQL text.
        let line = sql.lines().position(|l| l.contains(keyword)).expect("keyword") + 1;
        let column = sql.lines().nth(line - 1).and_then(|l| l.find(keyword)).expect("keyword") + 1;
        let place = (line, column);
        match views.create_view("v", sql).await {
            Err(ViewError::Refused { source: LowerError::Unsupported { construct: named, position }, .. }) => {
                assert!(named.contains(construct), "{sql}: named {named}");
                assert_eq!(position, Some(place), "{sql}");
            }
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
    // A mistake in the SQL itself is DataFusion's error, with the view named.
    let error = views.create_view("bad", "SELECT nope FROM reads").await.expect_err("unknown column");
    assert!(error.to_string().contains("bad") && error.to_string().contains("nope"), "{error}");
}
