//! The standard views (`queries/sql/`) on simulated border traffic with
//! realistic read noise: scored against the scenario's ground truth, checked
//! against DataFusion's batch answer as the day goes on, and kept up to date
//! when the watchlist changes while the engine runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt8Array};
use borderflow::connectors::scenario::{self, ReadNoise, Scenario, ScenarioConfig};
use borderflow::engine::{
    Direction, ExchangeKeys, PlateRead, conform_watchlist, read_keys_batch, reads_to_batch,
    watchlist_schema,
};
use borderflow::engine::{PostTables, demo_exchange_keys, feed_reads, post_views};
use borderflow::queries::StandingViews;
use borderflow::queries::row::sorted_rows;
use borderflow::connectors::scenario::scoring::{column_values, score_flags, score_matches};

/// A commit per hour of traffic, as the demo commits (the views' cost is
/// mostly per commit in the unoptimised test build).
const TICK_MS: i64 = 3_600_000;

/// A day at every crossing with read noise, at a tenth of the usual traffic
/// (the planted anomalies are all there; the views' speed is the limit).
fn day(seed: u64) -> Scenario {
    scenario::generate(&ScenarioConfig {
        seed,
        traffic_scale: 0.1,
        noise: ReadNoise { miss_rate: 0.01, wrong_char_rate: 0.02 },
        ..ScenarioConfig::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// Every post of every crossing in one engine, as the demo runs them.
fn views_over(scenario: &Scenario, keys: &ExchangeKeys, workers: usize) -> StandingViews {
    let watchlist = conform_watchlist(&scenario.watchlist_batch(), "scenario").expect("scenario watchlist conforms");
    let post = PostTables { views: &[], tables: &[], watchlist: &watchlist, keys, standard: true };
    runtime().block_on(post_views(&post, &borderflow::engine::Runtime::with_workers(workers))).expect("standard views are created")
}

/// Feeds one tick: reads, their keys, and exit reads as pre-arrival records.
fn feed(views: &mut StandingViews, reads: &[PlateRead], keys: &ExchangeKeys) {
    let exits: Vec<PlateRead> = reads.iter().filter(|r| r.direction == Direction::Exit).cloned().collect();
    feed_reads(views, reads, &exits, keys).unwrap();
}

fn assert_views_equal_batch(views: &StandingViews, when: &str) {
    let rt = runtime();
    for name in views.view_names() {
        let incremental = sorted_rows(&views.snapshot(&name).unwrap()).unwrap();
        let batch = sorted_rows(&rt.block_on(views.batch_answer(&name)).unwrap()).unwrap();
        if incremental != batch {
            let only_incremental: Vec<_> = incremental.iter().filter(|r| !batch.contains(r)).take(5).collect();
            let only_batch: Vec<_> = batch.iter().filter(|r| !incremental.contains(r)).take(5).collect();
            panic!("{when}: view {name} differs from DataFusion's batch answer\n  only incremental: {only_incremental:#?}\n  only batch: {only_batch:#?}");
        }
    }
}

#[test]
fn a_noisy_day_is_flagged_with_precision_and_every_planted_anomaly_found() {
    let scenario = day(11);
    let keys = demo_exchange_keys();
    let mut views = views_over(&scenario, &keys, 2);
    let mut start = 0;
    let mut checks = 0;
    let started = Instant::now();
    while start < scenario.reads.len() {
        let tick = scenario.reads[start].captured_at_ms.div_euclid(TICK_MS);
        let end = start + scenario.reads[start..].iter().take_while(|r| r.captured_at_ms.div_euclid(TICK_MS) == tick).count();
        feed(&mut views, &scenario.reads[start..end], &keys);
        views.commit_at(((tick + 1) * TICK_MS) as u64);
        start = end;
        if tick % 2 == 0 {
            eprintln!("{start} reads in {:?}", started.elapsed());
        }
        // Incremental equals batch part-way through the day, not only at its end.
        if checks < 1 && start > scenario.reads.len() / 2 {
            let t = Instant::now();
            assert_views_equal_batch(&views, &format!("after {start} reads"));
            eprintln!("batch check {:?}", t.elapsed());
            checks += 1;
        }
    }
    assert_views_equal_batch(&views, "at the end of the day");

    let flags = views.snapshot("risk_flags").unwrap();
    let scores = score_flags(&flags, &scenario);
    for score in &scores {
        println!("{score}");
    }
    let matches = score_matches(&views.snapshot("cross_border_matches").unwrap(), &scenario);
    println!("cross_border_matches: {matches}");
    for score in &scores {
        assert!(score.planted > 0, "the scenario plants every kind of anomaly: {score}");
        assert_eq!(score.planted_found, score.planted, "every planted anomaly is flagged by its rule: {score}");
        assert!(score.precision() >= 0.95, "precision of {}: {score}", score.rule);
    }
    assert!(matches.match_rate() >= 0.97, "{matches}");
    assert!(matches.false_match_rate() <= 0.01, "{matches}");
    let dwell = views.snapshot("dwell_times").unwrap();
    assert!(dwell.num_rows() as f64 >= 0.9 * 2.0 * scenario.passages.len() as f64, "about two post passages per crossing: {}", dwell.num_rows());

    // Corrections: retracting reads (a camera's reads found to be wrong)
    // retracts what rested on them; every view still equals batch.
    let wrong: Vec<PlateRead> = scenario.reads.iter().step_by(97).cloned().collect();
    views.retract("reads", &reads_to_batch(&wrong)).unwrap();
    views.retract("read_keys", &read_keys_batch(&wrong, &keys)).unwrap();
    views.commit();
    assert_views_equal_batch(&views, "after retracting reads");
}

fn watch(plate: &str, severity: u8, valid_to_ms: Option<i64>) -> RecordBatch {
    RecordBatch::try_new(
        watchlist_schema(),
        vec![
            Arc::new(StringArray::from(vec![plate])),
            Arc::new(StringArray::from(vec!["test: reported stolen"])),
            Arc::new(UInt8Array::from(vec![severity])),
            Arc::new(TimestampMillisecondArray::from(vec![None::<i64>]).with_timezone("UTC")),
            Arc::new(TimestampMillisecondArray::from(vec![valid_to_ms]).with_timezone("UTC")),
        ],
    )
    .unwrap()
}

/// The watchlist rows of a changes batch: (plate, severity, diff, time).
fn watchlist_changes(batch: &RecordBatch) -> Vec<(String, i64, i64, u64)> {
    let rules = column_values(batch, "rule");
    let plates = column_values(batch, "plate_norm");
    let severity = batch.column_by_name("severity").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().clone();
    let diff = batch.column_by_name("_diff").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().clone();
    let time = batch.column_by_name("_time").unwrap().as_any().downcast_ref::<arrow::array::UInt64Array>().unwrap().clone();
    (0..batch.num_rows())
        .filter(|&i| rules[i] == "watchlist_hit")
        .map(|i| (plates[i].clone(), severity.value(i), diff.value(i), time.value(i)))
        .collect()
}

#[test]
fn a_watchlist_upsert_while_running_changes_risk_flags_within_a_second() {
    // Half a day of traffic at one crossing, then the engine is "running".
    let mut scenario = scenario::generate(&ScenarioConfig {
        seed: 5,
        traffic_scale: 0.3,
        crossings: vec![&borderflow::engine::CROSSINGS[0]],
        ..ScenarioConfig::default()
    });
    scenario.watchlist.clear();
    let keys = demo_exchange_keys();
    let mut views = views_over(&scenario, &keys, 1);
    let until = scenario.reads[0].captured_at_ms + 12 * 3_600_000;
    let reads: Vec<PlateRead> = scenario.reads.iter().filter(|r| r.captured_at_ms < until).cloned().collect();
    feed(&mut views, &reads, &keys);
    let now = views.commit_at(until as u64);
    let plate = reads.iter().find(|r| r.direction == Direction::Entry).unwrap().plate_norm.clone();
    let seen = reads.iter().filter(|r| r.plate_norm == plate).count() as i64;
    let flags = views.subscribe("risk_flags").unwrap();

    // Add, change, then end an entry; each time the engine commits on its
    // next tick (200 ms later) and the change must arrive within a second.
    let steps: [(u8, Option<i64>, &[(i64, i64)]); 3] = [
        (3, None, &[(3, 1)]),
        (1, None, &[(3, -1), (1, 1)]),
        (1, Some(reads[0].captured_at_ms), &[(1, -1)]),
    ];
    let mut at = now;
    for (severity, valid_to, expected) in steps {
        let started = Instant::now();
        views.upsert("watchlist", &["plate"], &conform_watchlist(&watch(&plate, severity, valid_to), "API").unwrap()).unwrap();
        let upserted_at = at;
        at = views.commit_at(at + 200);
        let batch = flags.recv_timeout(Duration::from_secs(5)).expect("risk_flags changes after a watchlist upsert");
        let elapsed = started.elapsed();
        let mut changes = watchlist_changes(&batch);
        changes.sort();
        let mut want: Vec<(String, i64, i64, u64)> = expected
            .iter()
            .flat_map(|&(severity, diff)| std::iter::repeat_n((plate.clone(), severity, diff, at), seen as usize))
            .collect();
        want.sort();
        assert_eq!(changes, want, "one flag per read of {plate} ({seen} reads)");
        assert!(at - upserted_at <= 1_000, "visible at engine time {at}, upserted at {upserted_at}");
        assert!(elapsed < Duration::from_secs(1), "took {elapsed:?} of processing time");
    }
}
