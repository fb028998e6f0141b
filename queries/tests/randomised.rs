//! Randomised oracle test: random tables and random sequences of inserts,
//! retractions and clock advances, for a family of query templates (joins,
//! group-bys, windows, temporal filters, subqueries, scalar subqueries).
//! After every step each view's incremental contents equal DataFusion's
//! batch answer at the same `now()`. Sequences come from seeded generators
//! (the seed is in every failure message); a failing sequence is shrunk by
//! dropping steps while it still fails, so the report shows a short
//! reproduction. (Hand-rolled rather than proptest: proptest's dependencies
//! change the features of crates that arrow and DataFusion share, which
//! would build both twice on a fresh machine, for `make run` and for `make
//! test`.)

use crate::common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use common::rows;
use borderflow_queries::StandingViews;

/// 2026-11-28T08:00:00Z in milliseconds.
const BASE: i64 = 1_795_852_800_000;
const MINUTE: i64 = 60_000;

fn a_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("g", DataType::Utf8, false),
        Field::new("v", DataType::Int64, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]))
}

fn b_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("w", DataType::Int64, true)]))
}

const TEMPLATES: &[(&str, &str)] = &[
    ("join_residual", "SELECT a.k, a.v, b.w FROM a JOIN b ON a.k = b.k AND a.v < b.w"),
    ("left_join", "SELECT a.g, a.k, b.w FROM a LEFT JOIN b ON a.k = b.k"),
    ("self_interval_join", "SELECT x.k, x.t, y.t AS later FROM a x JOIN a y ON x.k = y.k WHERE y.t > x.t AND y.t <= x.t + INTERVAL '10 minutes'"),
    (
        "group_having",
        "SELECT g, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, count(DISTINCT k) AS keys, avg(v) AS mean FROM a GROUP BY g HAVING count(*) > 1",
    ),
    ("global", "SELECT count(*) AS n, sum(v) AS s FROM a"),
    ("join_group", "SELECT b.w, count(*) AS n FROM a JOIN b ON a.k = b.k GROUP BY b.w"),
    (
        "windows",
        "SELECT g, k, v, t, row_number() OVER (PARTITION BY g ORDER BY t, k, v) AS rn, rank() OVER (PARTITION BY g ORDER BY v) AS r, \
         lag(v) OVER (PARTITION BY g ORDER BY t, k, v) AS prev FROM a",
    ),
    ("top2", "SELECT * FROM (SELECT k, g, v, dense_rank() OVER (PARTITION BY k ORDER BY v DESC) AS d FROM a) WHERE d <= 2"),
    ("recent", "SELECT k, g, v FROM a WHERE t > now() - INTERVAL '10 minutes'"),
    ("recent_per_group", "SELECT g, count(*) AS n FROM a WHERE t + INTERVAL '5 minutes' >= now() AND t <= now() GROUP BY g"),
    ("semi", "SELECT k, g FROM a WHERE k IN (SELECT k FROM b WHERE w > 0)"),
    ("anti", "SELECT k, v FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k)"),
    ("interval_join", "SELECT x.k, y.k AS later FROM a x JOIN a y ON y.t BETWEEN x.t AND x.t + INTERVAL '5 minutes' AND x.g <> y.g"),
    ("interval_anti", "SELECT k, g FROM a x WHERE NOT EXISTS (SELECT 1 FROM a y WHERE y.t > x.t AND y.t <= x.t + INTERVAL '3 minutes')"),
    ("distinct_union", "SELECT DISTINCT k FROM a UNION ALL SELECT k FROM b WHERE w IS NULL"),
    ("scalar_subquery", "SELECT k, v FROM a WHERE v >= (SELECT max(v) - 2 FROM a)"),
    ("scalar_in_select", "SELECT k, g, v - (SELECT min(w) FROM b) AS d, (SELECT count(*) FROM b) AS n FROM a"),
];

#[derive(Clone, Debug)]
enum Step {
    InsertA(Vec<(i64, usize, Option<i64>, i64)>),
    InsertB(Vec<(i64, Option<i64>)>),
    /// Retract the rows of `a` at these positions (modulo its size).
    RetractA(Vec<usize>),
    RetractB(Vec<usize>),
    /// Commit with the clock this many minutes later.
    Advance(i64),
}

/// A small seeded generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn a_row(rng: &mut Rng) -> (i64, usize, Option<i64>, i64) {
    (rng.range(0, 5), rng.below(3) as usize, rng.chance(85).then(|| rng.range(-3, 6)), rng.range(0, 40))
}

fn steps(seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB0D3);
    let count = rng.range(3, 12) as usize;
    (0..count)
        .map(|_| match rng.below(10) {
            0..=2 => Step::InsertA((0..rng.range(1, 6)).map(|_| a_row(&mut rng)).collect()),
            3..=4 => Step::InsertB((0..rng.range(1, 4)).map(|_| (rng.range(0, 5), rng.chance(80).then(|| rng.range(-2, 6)))).collect()),
            5..=6 => Step::RetractA((0..rng.range(1, 4)).map(|_| rng.below(1 << 20) as usize).collect()),
            7 => Step::RetractB((0..rng.range(1, 3)).map(|_| rng.below(1 << 20) as usize).collect()),
            _ => Step::Advance(rng.range(1, 12)),
        })
        .collect()
}

fn a_batch(rows: &[(i64, usize, Option<i64>, i64)]) -> RecordBatch {
    let groups = ["criva", "otaci", "tudora"];
    RecordBatch::try_new(
        a_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| groups[r.1]))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| BASE + r.3 * MINUTE)).with_timezone("UTC")),
        ],
    )
    .expect("batch")
}

fn b_batch(rows: &[(i64, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        b_schema(),
        vec![Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))), Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1)))],
    )
    .expect("batch")
}


/// Runs the steps; the first disagreement, if any, as a message.
fn run(workers: usize, steps: &[Step]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("tokio");
    runtime.block_on(async {
        let mut views = StandingViews::with_workers(workers).expect("workers");
        views.register_table("a", a_schema()).expect("a");
        views.register_table("b", b_schema()).expect("b");
        views.commit_at((BASE + 20 * MINUTE) as u64);
        for (name, sql) in TEMPLATES {
            views.create_view(name, sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut a: Vec<(i64, usize, Option<i64>, i64)> = Vec::new();
        let mut b: Vec<(i64, Option<i64>)> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let mut now = views.now() as i64 + 1;
            match step {
                Step::InsertA(rows) => {
                    views.insert("a", &a_batch(rows)).expect("insert");
                    a.extend(rows);
                }
                Step::InsertB(rows) => {
                    views.insert("b", &b_batch(rows)).expect("insert");
                    b.extend(rows);
                }
                Step::RetractA(positions) => {
                    let gone: Vec<_> = positions.iter().filter_map(|&p| (!a.is_empty()).then(|| a.swap_remove(p % a.len()))).collect();
                    views.retract("a", &a_batch(&gone)).expect("retract");
                }
                Step::RetractB(positions) => {
                    let gone: Vec<_> = positions.iter().filter_map(|&p| (!b.is_empty()).then(|| b.swap_remove(p % b.len()))).collect();
                    views.retract("b", &b_batch(&gone)).expect("retract");
                }
                Step::Advance(minutes) => now += minutes * MINUTE,
            }
            views.commit_at(now as u64);
            for (name, _) in TEMPLATES {
                let incremental = rows(&views.snapshot(name).expect("snapshot"));
                let batch = rows(&views.batch_answer(name).await.expect("batch"));
                if incremental != batch {
                    return Err(format!(
                        "view {name} after step {i} ({step:?}) on {workers} workers:\n incremental {incremental:?}\n batch       {batch:?}"
                    ));
                }
            }
        }
        Ok(())
    })
}

/// Drops steps from a failing sequence while it keeps failing.
fn shrink(workers: usize, mut steps: Vec<Step>) -> (Vec<Step>, String) {
    let mut failure = run(workers, &steps).expect_err("the sequence fails");
    let mut i = 0;
    while i < steps.len() {
        let mut shorter = steps.clone();
        shorter.remove(i);
        match run(workers, &shorter) {
            Err(message) => {
                steps = shorter;
                failure = message;
            }
            Ok(()) => i += 1,
        }
    }
    (steps, failure)
}

#[test]
fn incremental_equals_batch_after_every_step() {
    let cases = std::env::var("BORDERFLOW_RANDOM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12u64);
    for seed in 0..cases {
        let workers = 1 + (seed % 2) as usize;
        let sequence = steps(seed);
        if run(workers, &sequence).is_err() {
            let (minimal, failure) = shrink(workers, sequence);
            panic!("seed {seed}: {failure}\nshortest failing sequence: {minimal:#?}");
        }
    }
}
