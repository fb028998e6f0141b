//! Time in standing views: temporal filters with `now()` that retract rows
//! as they age, late reads that correct every affected view, and the ways a
//! view's results leave the engine (subscriptions, snapshot tables).

use crate::common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use common::rows;
use borderflow_queries::StandingViews;

const HOUR: i64 = 3_600_000;
/// 2026-11-28T00:00:00Z in milliseconds.
const DAY: i64 = 1_795_824_000_000;

fn reads_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Int64, false),
        Field::new("post_id", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("plate", DataType::Utf8, false),
        Field::new("captured_at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]))
}

/// (read_id, post, direction, plate, captured_at ms)
fn reads(rows: &[(i64, &str, &str, &str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        reads_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.4)).with_timezone("UTC")),
        ],
    )
    .expect("batch")
}


async fn assert_matches_batch(views: &StandingViews, names: &[&str], step: &str) {
    for name in names {
        let incremental = views.snapshot(name).expect("snapshot");
        let batch = views.batch_answer(name).await.expect("DataFusion answers");
        assert_eq!(rows(&incremental), rows(&batch), "view {name} at {step} (now = {})", views.now());
    }
}

const TEMPORAL: &[(&str, &str)] = &[
    ("last_hour", "SELECT read_id, plate FROM reads WHERE captured_at > now() - INTERVAL '1 hour'"),
    (
        "last_hour_per_post",
        "SELECT post_id, count(*) AS n FROM reads WHERE captured_at >= now() - INTERVAL '1 hour' AND direction = 'entry' GROUP BY post_id",
    ),
    ("not_yet", "SELECT read_id FROM reads WHERE now() < captured_at + INTERVAL '30 minutes' AND now() >= captured_at"),
    (
        "recent_repeat",
        "SELECT a.plate, a.read_id AS first, b.read_id AS second FROM reads a JOIN reads b \
         ON a.plate = b.plate AND a.read_id < b.read_id \
         WHERE b.captured_at BETWEEN a.captured_at AND a.captured_at + INTERVAL '2 hours' \
         AND a.captured_at > now() - INTERVAL '3 hours'",
    ),
];

#[tokio::test]
async fn temporal_filters_follow_now_and_retract_rows_as_they_age() {
    let mut views = StandingViews::with_workers(2).expect("workers");
    views.register_table("reads", reads_schema()).expect("table");
    for (name, sql) in TEMPORAL {
        views.create_view(name, sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let names: Vec<&str> = TEMPORAL.iter().map(|(n, _)| *n).collect();
    let minute = 60_000;
    // Reads over three hours, a few each ten minutes, committed as they come.
    let mut id = 0;
    for step in 0..18 {
        let now = DAY + step * 10 * minute;
        let batch: Vec<(i64, &str, &str, &str, i64)> = (0..3)
            .map(|k| {
                id += 1;
                let plate = ["ABC123", "XYZ987", "KLM555", "AA1234BB"][(id as usize * 7 + k) % 4];
                let post = if k == 1 { "otaci" } else { "criva" };
                (id, post, if id % 3 == 0 { "exit" } else { "entry" }, plate, now - (k as i64) * minute)
            })
            .collect();
        views.insert("reads", &reads(&batch)).expect("insert");
        views.commit_at(now as u64);
        assert_matches_batch(&views, &names, &format!("step {step}")).await;
    }
    let before = views.snapshot("last_hour").expect("snapshot").num_rows();
    assert!(before > 0);
    // No input changes, only time passes: rows age out by themselves.
    let last = views.now() as i64;
    for (k, later) in [5 * minute, 31 * minute, 59 * minute, HOUR + 1, 4 * HOUR].into_iter().enumerate() {
        views.commit_at((last + later) as u64);
        assert_matches_batch(&views, &names, &format!("{k}: {later} ms later")).await;
    }
    assert_eq!(views.snapshot("last_hour").expect("snapshot").num_rows(), 0, "everything aged out");
    let changes = views.changes("last_hour").expect("changes");
    let diffs = changes.column_by_name("_diff").expect("_diff").as_any().downcast_ref::<Int64Array>().expect("i64");
    assert_eq!(diffs.iter().flatten().sum::<i64>(), 0, "every insertion was retracted");
    assert!(diffs.iter().flatten().filter(|d| *d < 0).count() >= before, "retractions came from time alone");
}

const LATE: &[(&str, &str)] = &[
    (
        "hourly",
        "SELECT post_id, date_trunc('hour', captured_at) AS hour, count(*) AS n FROM reads GROUP BY post_id, date_trunc('hour', captured_at)",
    ),
    (
        "crossings",
        "SELECT x.plate, x.read_id AS exit_read, e.read_id AS entry_read FROM reads x JOIN reads e ON x.plate = e.plate \
         WHERE x.direction = 'exit' AND e.direction = 'entry' AND x.post_id = 'criva' AND e.post_id = 'mamalyha' \
         AND e.captured_at BETWEEN x.captured_at AND x.captured_at + INTERVAL '2 hours'",
    ),
    (
        "first_seen",
        "SELECT plate, read_id, post_id FROM (SELECT plate, read_id, post_id, row_number() OVER (PARTITION BY plate ORDER BY captured_at, read_id) AS k FROM reads) WHERE k = 1",
    ),
];

/// A read that arrives an hour late (its `captured_at` an hour before the
/// time it is committed at) retracts and replaces every result it changes.
#[tokio::test]
async fn a_late_read_corrects_every_affected_view() {
    let mut views = StandingViews::new();
    views.register_table("reads", reads_schema()).expect("table");
    for (name, sql) in LATE {
        views.create_view(name, sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let names: Vec<&str> = LATE.iter().map(|(n, _)| *n).collect();
    let t = DAY + 10 * HOUR;
    views
        .insert(
            "reads",
            &reads(&[
                (1, "criva", "exit", "ABC123", t),
                (2, "mamalyha", "entry", "XYZ987", t + 20 * 60_000),
                (3, "criva", "entry", "KLM555", t + 5 * 60_000),
            ]),
        )
        .expect("insert");
    views.commit_at((t + 30 * 60_000) as u64);
    assert_matches_batch(&views, &names, "before the late read").await;
    let before = views.commit_at((t + 2 * HOUR) as u64);
    assert!(views.snapshot("crossings").expect("snapshot").num_rows() == 0);

    // The entry of ABC123 at Mamalyha, captured at t + 40 min, reaches the
    // engine at t + 1h40 and is committed at t + 2h.
    views.insert("reads", &reads(&[(4, "mamalyha", "entry", "ABC123", t + 40 * 60_000), (5, "criva", "exit", "XYZ987", t - HOUR)])).expect("insert");
    let at = views.commit_at((t + 2 * HOUR + 1) as u64);
    assert!(at > before);
    assert_matches_batch(&views, &names, "after the late reads").await;

    // What changed at that commit: the corrections, each with its time.
    let changed = |name: &str| {
        let changes = views.changes(name).expect("changes");
        let times = changes.column_by_name("_time").expect("_time");
        let times = times.as_any().downcast_ref::<arrow::array::UInt64Array>().expect("u64");
        let keep: arrow::array::BooleanArray = times.iter().map(|t| Some(t == Some(at))).collect();
        rows(&arrow::compute::filter_record_batch(&changes, &keep).expect("filter"))
    };
    let hour = |h: i64| (DAY + h * HOUR).to_string();
    // Mamalyha's 10:00 hour had one read and now has two; Criva gains a 09:00 hour.
    assert_eq!(
        changed("hourly"),
        vec![
            format!("criva|{}|1|1|{at}", hour(9)),
            format!("mamalyha|{}|1|-1|{at}", hour(10)),
            format!("mamalyha|{}|2|1|{at}", hour(10)),
        ]
    );
    // Both late reads complete a crossing: ABC123's late entry, and XYZ987's
    // exit an hour before its (already known) entry.
    assert_eq!(changed("crossings"), vec![format!("ABC123|1|4|1|{at}"), format!("XYZ987|5|2|1|{at}")]);
    // XYZ987 was first seen at Mamalyha (read 2); the late exit at Criva came first.
    assert_eq!(changed("first_seen"), vec![format!("XYZ987|2|mamalyha|-1|{at}"), format!("XYZ987|5|criva|1|{at}")]);
}

#[tokio::test]
async fn subscribers_get_each_commits_changes_and_snapshot_tables_follow_the_view() {
    let mut views = StandingViews::with_workers(2).expect("workers");
    views.register_table("reads", reads_schema()).expect("table");
    views.create_view("per_post", "SELECT post_id, count(*) AS n FROM reads GROUP BY post_id").await.expect("view");
    let subscription = views.subscribe("per_post").expect("subscribe");
    // Ad-hoc SQL joins the live snapshot with another table.
    let ctx = datafusion::prelude::SessionContext::new();
    views.register_snapshots(&ctx).expect("register");
    let posts = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("post_id", DataType::Utf8, false), Field::new("country", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["criva", "otaci", "mamalyha"])), Arc::new(StringArray::from(vec!["MD", "MD", "UA"]))],
    )
    .expect("batch");
    ctx.register_batch("posts", posts).expect("posts");
    let per_country = "SELECT p.country, sum(v.n) AS n FROM per_post v JOIN posts p USING (post_id) GROUP BY p.country ORDER BY p.country";

    views.insert("reads", &reads(&[(1, "criva", "exit", "A", DAY), (2, "otaci", "exit", "B", DAY), (3, "mamalyha", "entry", "A", DAY)])).expect("insert");
    let first = views.commit();
    views.insert("reads", &reads(&[(4, "criva", "exit", "C", DAY)])).expect("insert");
    views.retract("reads", &reads(&[(3, "mamalyha", "entry", "A", DAY)])).expect("retract");
    let second = views.commit();
    let _ = views.commit(); // changes nothing: nothing is sent

    let received: Vec<RecordBatch> = subscription.try_iter().collect();
    assert_eq!(received.len(), 2);
    assert_eq!(rows(&received[0]), vec![format!("criva|1|1|{first}"), format!("mamalyha|1|1|{first}"), format!("otaci|1|1|{first}")]);
    assert_eq!(rows(&received[1]), vec![format!("criva|1|-1|{second}"), format!("criva|2|1|{second}"), format!("mamalyha|1|-1|{second}")]);

    let answer = ctx.sql(per_country).await.expect("plan").collect().await.expect("run");
    let answer = arrow::compute::concat_batches(&answer[0].schema(), &answer).expect("concat");
    assert_eq!(rows(&answer), vec!["MD|3"]);
    // The engine's own ad-hoc entry point sees tables and views together.
    let joined = views.query("SELECT v.post_id, v.n, count(r.read_id) AS reads FROM per_post v JOIN reads r USING (post_id) GROUP BY v.post_id, v.n").await.expect("query");
    assert_eq!(rows(&joined), vec!["criva|2|2", "otaci|1|1"]);
}
