//! The hand-written standing view agrees with a plain count over its input,
//! whatever the number of workers, and its changelog is consistent: replaying
//! it in time order never leaves a negative row, and each key has one count.

use std::collections::BTreeMap;
use std::sync::Arc;

use borderflow_engine::passage_counts::{final_counts, replay_passage_counts};
use borderflow_engine::{Direction, PassageKey, PlateRead, Point, Runtime};

/// Reads spread over posts, cameras, directions and a day, from a simple
/// linear congruential generator (deterministic, no dependency).
fn reads(n: u64) -> Vec<PlateRead> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let posts = ["otaci", "mohyliv-podilskyi", "criva", "mamalyha"];
    let mut reads: Vec<PlateRead> = (0..n)
        .map(|i| {
            let post = posts[(next() % 4) as usize];
            let direction = if next() % 2 == 0 { Direction::Entry } else { Direction::Exit };
            let point = if next() % 2 == 0 { Point::Arrival } else { Point::Departure };
            let lane = (next() % 3 + 1) as u16;
            PlateRead {
                read_id: format!("{i:026}"),
                post_id: post.into(),
                camera_id: format!("{post}-{direction}-{point}-{lane}"),
                country: "MD".into(),
                lane,
                direction,
                point,
                captured_at_ms: 1_764_201_600_000 + (next() % 86_400_000) as i64,
                plate_text: format!("ABC{:03}", i % 1000),
                plate_norm: format!("ABC{:03}", i % 1000),
                plate_country: Some("MD".into()),
                confidence: 0.9,
                frames: 5,
                bbox: None,
                crop_uri: None,
            }
        })
        .collect();
    reads.sort_by_key(|r| r.captured_at_ms);
    reads
}

fn plain_count(reads: &[PlateRead]) -> BTreeMap<PassageKey, i64> {
    let mut counts = BTreeMap::new();
    for r in reads {
        let key = PassageKey { post_id: r.post_id.clone(), direction: r.direction, point: r.point };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[test]
fn view_equals_a_plain_count_on_one_and_several_workers() {
    let input = Arc::new(reads(5_000));
    let expected = plain_count(&input);
    assert_eq!(expected.len(), 16, "all post/direction/point keys are present");
    for workers in [1, 3] {
        let changes = replay_passage_counts(&Runtime::with_workers(workers), Arc::clone(&input), 60_000)
            .expect("dataflow runs");
        assert_eq!(final_counts(&changes), expected, "{workers} workers");
    }
}

#[test]
fn changelog_replays_consistently_in_time_order() {
    let input = Arc::new(reads(2_000));
    let changes = replay_passage_counts(&Runtime::with_workers(2), Arc::clone(&input), 3_600_000)
        .expect("dataflow runs");
    let mut rows: BTreeMap<(PassageKey, i64), i64> = BTreeMap::new();
    let mut times: Vec<u64> = changes.iter().map(|c| c.time_ms).collect();
    times.dedup();
    assert!(times.len() > 12, "an hourly tick over a day gives many versions, got {}", times.len());
    for time in times {
        for change in changes.iter().filter(|c| c.time_ms == time) {
            *rows.entry((change.key.clone(), change.passages)).or_default() += change.diff;
        }
        rows.retain(|_, m| *m != 0);
        assert!(rows.values().all(|m| *m == 1), "at {time}: {rows:?}");
        let keys: Vec<&PassageKey> = rows.keys().map(|(k, _)| k).collect();
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "one count per key at {time}");
        // At every version the counts equal a plain count of the reads ingested so far.
        let so_far: Vec<PlateRead> =
            input.iter().filter(|r| (r.captured_at_ms as u64).div_ceil(3_600_000) * 3_600_000 <= time).cloned().collect();
        let at_time: BTreeMap<PassageKey, i64> = rows.keys().map(|(k, n)| (k.clone(), *n)).collect();
        assert_eq!(at_time, plain_count(&so_far), "at {time}");
    }
}
