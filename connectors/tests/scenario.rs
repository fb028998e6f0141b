//! The scenario generator: determinism, consistency with the crossings'
//! reference data, the traffic model, the noise and the planted anomalies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Instant;

use borderflow_connectors::scenario::{
    AnomalyKind, FRAME_HEIGHT, FRAME_WIDTH, Passage, ReadNoise, ReadOutcome, Scenario,
    ScenarioConfig, Stage, generate, local_day_start_ms, local_hour,
};
use borderflow_types::crossings::{camera_id, distance_km, find_crossing, find_post};
use borderflow_types::plate_grammar::{matching_formats, plate_country};
use borderflow_types::{CROSSINGS, PlateRead, plate_norm};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One default day, generated once for the tests that only read it.
fn one_day() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(|| generate(&ScenarioConfig::default()))
}

/// Three default days.
fn three_days() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(|| {
        generate(&ScenarioConfig {
            days: 3,
            seed: 7,
            ..ScenarioConfig::default()
        })
    })
}

fn reads_by_id(scenario: &Scenario) -> HashMap<&str, &PlateRead> {
    scenario
        .reads
        .iter()
        .map(|r| (r.read_id.as_str(), r))
        .collect()
}

fn passages_by_id(scenario: &Scenario) -> HashMap<&str, &Passage> {
    scenario
        .passages
        .iter()
        .map(|p| (p.passage_id.as_str(), p))
        .collect()
}

fn differing_chars(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

#[test]
fn the_same_seed_gives_identical_output() {
    let config = ScenarioConfig {
        days: 2,
        ..ScenarioConfig::default()
    };
    let a = generate(&config);
    let b = generate(&config);
    assert_eq!(a.reads_batch(), b.reads_batch());
    assert_eq!(a.passages_batch(), b.passages_batch());
    assert_eq!(a.anomalies_batch(), b.anomalies_batch());
    assert_eq!(a.watchlist_batch(), b.watchlist_batch());
    assert_eq!(a, b);
}

#[test]
fn a_different_seed_gives_different_output() {
    let a = one_day();
    let b = generate(&ScenarioConfig {
        seed: 2,
        ..ScenarioConfig::default()
    });
    assert_ne!(a.reads_batch(), b.reads_batch());
    assert_ne!(a.passages_batch(), b.passages_batch());
    let plates_a: HashSet<&str> = a.passages.iter().map(|p| p.plate.as_str()).collect();
    let shared = b
        .passages
        .iter()
        .filter(|p| plates_a.contains(p.plate.as_str()))
        .count();
    assert!(
        shared < b.passages.len() / 10,
        "{shared} of {} plates shared",
        b.passages.len()
    );
}

#[test]
fn reads_are_sorted_by_time_then_read_id() {
    let reads = &three_days().reads;
    assert!(!reads.is_empty());
    for pair in reads.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            (a.captured_at_ms, &a.read_id) < (b.captured_at_ms, &b.read_id),
            "{} at {} before {} at {}",
            a.read_id,
            a.captured_at_ms,
            b.read_id,
            b.captured_at_ms
        );
    }
}

#[test]
fn every_read_agrees_with_the_crossings_reference_data() {
    let scenario = one_day();
    let mut ids = HashSet::new();
    for read in &scenario.reads {
        let post =
            find_post(&read.post_id).unwrap_or_else(|| panic!("unknown post {}", read.post_id));
        assert_eq!(read.country, post.country, "{read:?}");
        assert!(
            (1..=post.lanes).contains(&read.lane),
            "lane {} at {}",
            read.lane,
            post.id
        );
        assert_eq!(
            read.camera_id,
            camera_id(post.id, read.direction, read.point, read.lane)
        );
        assert_eq!(read.plate_norm, plate_norm(&read.plate_text));
        assert_eq!(
            read.plate_country.as_deref(),
            plate_country(&read.plate_norm, Some(post.country))
        );
        assert!(
            (0.5..=1.0).contains(&read.confidence),
            "confidence {}",
            read.confidence
        );
        assert!((3..=20).contains(&read.frames), "frames {}", read.frames);
        let b = read.bbox.expect("every read has a plate box");
        assert!(b.x >= 0.0 && b.y >= 0.0 && b.w > 0.0 && b.h > 0.0);
        assert!(
            b.x + b.w <= FRAME_WIDTH && b.y + b.h <= FRAME_HEIGHT,
            "{b:?}"
        );
        assert!(read.crop_uri.is_none());
        let ulid: ulid::Ulid = read.read_id.parse().expect("read_id is a ULID");
        assert_eq!(ulid.timestamp_ms() as i64, read.captured_at_ms);
        assert!(
            ids.insert(read.read_id.as_str()),
            "duplicate read_id {}",
            read.read_id
        );
    }
}

#[test]
fn each_read_belongs_to_its_passage_stage() {
    let scenario = one_day();
    let reads = reads_by_id(scenario);
    let mut emitted = 0;
    for passage in &scenario.passages {
        let crossing = find_crossing(&passage.crossing).expect("known crossing");
        let from = find_post(&passage.from_post).expect("known post");
        let to = find_post(&passage.to_post).expect("known post");
        assert_eq!(crossing.peer_of(from.id).map(|p| p.id), Some(to.id));
        assert_eq!(
            (from.country, to.country),
            (passage.from_country.as_str(), passage.to_country.as_str())
        );
        assert_ne!(passage.from_country, passage.to_country);
        for stage in Stage::ALL {
            let outcome = passage.outcome(stage);
            match passage.read_id(stage) {
                Some(id) => {
                    emitted += 1;
                    assert!(matches!(outcome, ReadOutcome::Read | ReadOutcome::Misread));
                    let read = reads[id];
                    assert_eq!(read.post_id, passage.post_at(stage));
                    assert_eq!(
                        (read.direction, read.point),
                        (stage.direction(), stage.point())
                    );
                    assert_eq!(read.captured_at_ms, passage.scheduled_ms(stage));
                    let lane = if stage.direction() == borderflow_types::Direction::Exit {
                        passage.exit_lane
                    } else {
                        passage.entry_lane
                    };
                    assert_eq!(read.lane, lane, "a vehicle keeps its lane within a post");
                    assert_eq!(
                        read.plate_norm == passage.plate,
                        outcome == ReadOutcome::Read
                    );
                }
                None => assert!(matches!(
                    outcome,
                    ReadOutcome::Missed | ReadOutcome::NotSeen
                )),
            }
        }
    }
    assert_eq!(
        emitted,
        scenario.reads.len(),
        "every read belongs to exactly one passage stage"
    );
}

#[test]
fn passage_times_are_ordered_and_plausible() {
    let scenario = three_days();
    for p in &scenario.passages {
        assert!(p.exit_arrival_ms < p.exit_departure_ms, "{p:?}");
        assert!(p.exit_departure_ms < p.entry_arrival_ms, "{p:?}");
        assert!(p.entry_arrival_ms < p.entry_departure_ms, "{p:?}");
        let crossing = find_crossing(&p.crossing).expect("known crossing");
        let transit_min = (p.entry_arrival_ms - p.exit_departure_ms) as f64 / 60_000.0;
        let typical = crossing.transit_minutes as f64;
        assert!(
            (0.5 * typical..=3.0 * typical).contains(&transit_min),
            "transit {transit_min:.1} min at {} (typical {typical})",
            p.crossing
        );
        let dwells = [
            p.exit_departure_ms - p.exit_arrival_ms,
            p.entry_departure_ms - p.entry_arrival_ms,
        ];
        for dwell in dwells {
            let minutes = dwell as f64 / 60_000.0;
            match p.planted {
                Some(AnomalyKind::LongDwell) => assert!((3.0..=8.0 * 60.0).contains(&minutes)),
                _ => assert!(
                    (3.0..=90.0).contains(&minutes),
                    "dwell {minutes:.1} min in {p:?}"
                ),
            }
        }
    }
    // The median ordinary dwell is about 20 minutes.
    let mut dwells: Vec<i64> = scenario
        .passages
        .iter()
        .filter(|p| p.planted.is_none())
        .map(|p| p.exit_departure_ms - p.exit_arrival_ms)
        .collect();
    dwells.sort_unstable();
    let median_min = dwells[dwells.len() / 2] as f64 / 60_000.0;
    assert!(
        (16.0..=26.0).contains(&median_min),
        "median dwell {median_min:.1} min"
    );
}

#[test]
fn noise_rates_match_the_configuration() {
    let scenario = three_days();
    let reads = reads_by_id(scenario);
    let (mut expected, mut missed, mut emitted, mut wrong) = (0usize, 0usize, 0usize, 0usize);
    for p in scenario.passages.iter().filter(|p| p.planted.is_none()) {
        for stage in Stage::ALL {
            expected += 1;
            match p.read_id(stage) {
                None => missed += 1,
                Some(id) => {
                    emitted += 1;
                    let read = reads[id];
                    if read.plate_norm != p.plate {
                        wrong += 1;
                        assert_eq!(
                            differing_chars(&read.plate_norm, &p.plate),
                            1,
                            "noise changes one character"
                        );
                    }
                }
            }
        }
    }
    let miss_rate = missed as f64 / expected as f64;
    let wrong_rate = wrong as f64 / emitted as f64;
    let noise = ReadNoise::default();
    assert!(
        expected > 60_000,
        "{expected} expected reads over three days"
    );
    assert!(
        (miss_rate - noise.miss_rate).abs() < 0.2 * noise.miss_rate,
        "miss rate {miss_rate:.4}"
    );
    assert!(
        (wrong_rate - noise.wrong_char_rate).abs() < 0.15 * noise.wrong_char_rate,
        "wrong character rate {wrong_rate:.4}"
    );
}

#[test]
fn other_noise_rates_are_honoured_and_zero_noise_is_clean() {
    let noisy = generate(&ScenarioConfig {
        crossings: vec![&CROSSINGS[1]],
        noise: ReadNoise {
            miss_rate: 0.10,
            wrong_char_rate: 0.25,
        },
        ..ScenarioConfig::default()
    });
    let ordinary: Vec<&Passage> = noisy
        .passages
        .iter()
        .filter(|p| p.planted.is_none())
        .collect();
    let stages = (ordinary.len() * 4) as f64;
    let missed = ordinary
        .iter()
        .flat_map(|p| p.outcomes)
        .filter(|o| *o == ReadOutcome::Missed)
        .count();
    let wrong = ordinary
        .iter()
        .flat_map(|p| p.outcomes)
        .filter(|o| *o == ReadOutcome::Misread)
        .count();
    let miss_rate = missed as f64 / stages;
    let wrong_rate = wrong as f64 / (stages - missed as f64);
    assert!(
        (0.085..0.115).contains(&miss_rate),
        "miss rate {miss_rate:.3}"
    );
    assert!(
        (0.22..0.28).contains(&wrong_rate),
        "wrong character rate {wrong_rate:.3}"
    );

    let clean = generate(&ScenarioConfig {
        noise: ReadNoise {
            miss_rate: 0.0,
            wrong_char_rate: 0.0,
        },
        ..ScenarioConfig::default()
    });
    for p in clean.passages.iter().filter(|p| p.planted.is_none()) {
        assert_eq!(p.outcomes, [ReadOutcome::Read; 4], "{p:?}");
    }
}

#[test]
fn every_anomaly_kind_is_planted_with_evidence_in_the_reads() {
    let scenario = three_days();
    let reads = reads_by_id(scenario);
    let passages = passages_by_id(scenario);
    for kind in AnomalyKind::ALL {
        let planted = scenario
            .anomalies
            .iter()
            .filter(|a| a.kind == kind && a.planted)
            .count();
        assert!(planted >= 3, "{planted} planted {kind} in three days");
    }
    for anomaly in &scenario.anomalies {
        assert!(!anomaly.read_ids.is_empty(), "{anomaly:?}");
        assert!(!anomaly.description.is_empty());
        let evidence: Vec<&PlateRead> = anomaly
            .read_ids
            .iter()
            .map(|id| {
                *reads
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("evidence {id} not in reads"))
            })
            .collect();
        for read in &evidence {
            assert!(anomaly.post_ids.contains(&read.post_id), "{anomaly:?}");
            assert!((anomaly.first_seen_ms..=anomaly.last_seen_ms).contains(&read.captured_at_ms));
        }
        for id in &anomaly.passage_ids {
            let passage = passages
                .get(id.as_str())
                .unwrap_or_else(|| panic!("passage {id} unknown"));
            assert_eq!(passage.plate, anomaly.plate);
            if anomaly.planted {
                assert_eq!(passage.planted, Some(anomaly.kind));
            }
        }
        match anomaly.kind {
            AnomalyKind::Watchlisted => {
                let entry = scenario
                    .watchlist
                    .iter()
                    .find(|w| w.plate == anomaly.plate)
                    .expect("on the watchlist");
                assert!(evidence.iter().all(|r| entry.is_valid_at(r.captured_at_ms)));
                assert!(evidence.iter().all(|r| r.plate_norm == anomaly.plate));
            }
            AnomalyKind::EntryWithoutExit => {
                let passage = passages[anomaly.passage_ids[0].as_str()];
                assert!(evidence.iter().all(|r| r.post_id == passage.to_post));
                assert!(passage.read_id(Stage::ExitArrival).is_none());
                assert!(passage.read_id(Stage::ExitDeparture).is_none());
                if anomaly.planted {
                    let seen_leaving = scenario
                        .reads_for_post(&passage.from_post)
                        .any(|r| r.plate_norm == anomaly.plate);
                    assert!(
                        !seen_leaving,
                        "{} was read at {}",
                        anomaly.plate, passage.from_post
                    );
                }
            }
            AnomalyKind::LongDwell => {
                assert_eq!(evidence.len(), 2);
                assert_eq!(evidence[0].post_id, evidence[1].post_id);
                let hours = (evidence[1].captured_at_ms - evidence[0].captured_at_ms) as f64
                    / HOUR_MS as f64;
                assert!((4.0..=8.0).contains(&hours), "dwell {hours:.2} h");
            }
            AnomalyKind::Misread => {
                assert_eq!(evidence.len(), 2);
                let (departed, arrived) = (evidence[0], evidence[1]);
                assert_eq!(departed.point, borderflow_types::Point::Departure);
                assert_eq!(arrived.point, borderflow_types::Point::Arrival);
                assert_ne!(departed.country, arrived.country);
                assert!(differing_chars(&departed.plate_norm, &arrived.plate_norm) >= 2);
                if anomaly.planted {
                    assert_eq!(departed.plate_norm, anomaly.plate);
                }
            }
            AnomalyKind::FrequentCrosser => {
                let mut starts: Vec<i64> = anomaly
                    .passage_ids
                    .iter()
                    .map(|id| passages[id.as_str()].exit_arrival_ms)
                    .collect();
                starts.sort_unstable();
                assert!(starts.len() > 6);
                assert!(
                    starts[6] - starts[0] < DAY_MS,
                    "seven crossings within 24 h"
                );
            }
            AnomalyKind::ClonedPlate => {}
        }
    }
}

fn assert_cloned_plates_are_too_fast(scenario: &Scenario) {
    let reads = reads_by_id(scenario);
    let cloned: Vec<_> = scenario
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::ClonedPlate)
        .collect();
    assert!(!cloned.is_empty());
    for anomaly in cloned {
        assert_eq!(anomaly.read_ids.len(), 2);
        let (a, b) = (
            reads[anomaly.read_ids[0].as_str()],
            reads[anomaly.read_ids[1].as_str()],
        );
        assert_eq!(a.plate_norm, anomaly.plate);
        assert_eq!(b.plate_norm, anomaly.plate);
        let km = distance_km(
            find_post(&a.post_id).expect("post"),
            find_post(&b.post_id).expect("post"),
        );
        let hours = (b.captured_at_ms - a.captured_at_ms).abs() as f64 / HOUR_MS as f64;
        let kmh = km / hours;
        assert!(
            kmh > 200.0,
            "{} at {kmh:.0} km/h ({km:.1} km)",
            anomaly.plate
        );
        let vehicles: HashSet<&str> = scenario
            .passages
            .iter()
            .filter(|p| p.plate == anomaly.plate)
            .map(|p| p.vehicle_id.as_str())
            .collect();
        assert_eq!(vehicles.len(), 2, "a cloned plate is two vehicles");
    }
}

#[test]
fn cloned_plates_imply_impossible_speeds() {
    let scenario = three_days();
    assert_cloned_plates_are_too_fast(scenario);
    // Between crossings the posts are far apart.
    let reads = reads_by_id(scenario);
    for anomaly in scenario
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::ClonedPlate)
    {
        let (a, b) = (
            reads[anomaly.read_ids[0].as_str()],
            reads[anomaly.read_ids[1].as_str()],
        );
        let km = distance_km(
            find_post(&a.post_id).expect("post"),
            find_post(&b.post_id).expect("post"),
        );
        assert!(km > 50.0, "{km:.1} km");
    }
}

#[test]
fn a_single_crossing_still_gets_every_anomaly_kind() {
    let scenario = generate(&ScenarioConfig {
        crossings: vec![&CROSSINGS[0]],
        traffic_scale: 0.2,
        ..ScenarioConfig::default()
    });
    for kind in AnomalyKind::ALL {
        assert!(
            scenario
                .anomalies
                .iter()
                .any(|a| a.kind == kind && a.planted),
            "no {kind}"
        );
    }
    assert_cloned_plates_are_too_fast(&scenario);
    assert!(
        scenario
            .reads
            .iter()
            .all(|r| r.post_id == "criva" || r.post_id == "mamalyha")
    );
}

#[test]
fn only_cloned_plates_share_a_plate_between_vehicles() {
    let scenario = three_days();
    let mut vehicles_of: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for p in &scenario.passages {
        vehicles_of
            .entry(p.plate.as_str())
            .or_default()
            .insert(p.vehicle_id.as_str());
    }
    let cloned: HashSet<&str> = scenario
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::ClonedPlate)
        .map(|a| a.plate.as_str())
        .collect();
    for (plate, vehicles) in vehicles_of {
        assert_eq!(
            vehicles.len() > 1,
            cloned.contains(plate),
            "{plate}: {vehicles:?}"
        );
    }
    for w in &scenario.watchlist {
        assert!(
            matching_formats(&w.plate).next().is_some(),
            "watchlist plate {} fits no format",
            w.plate
        );
    }
}

#[test]
fn true_plates_fit_their_countrys_grammar_and_the_mix_is_realistic() {
    let scenario = three_days();
    let mut country_of: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &scenario.passages {
        assert!(
            matching_formats(&p.plate).any(|f| f.country == p.plate_country),
            "{} fits no {} format",
            p.plate,
            p.plate_country
        );
        country_of.insert(p.vehicle_id.as_str(), p.plate_country.as_str());
    }
    let total = country_of.len() as f64;
    let share = |c: &str| country_of.values().filter(|v| **v == c).count() as f64 / total;
    let eu: f64 = ["RO", "PL", "BG", "DE", "LT"]
        .iter()
        .map(|c| share(c))
        .sum();
    assert!((0.41..0.49).contains(&share("MD")), "MD {:.3}", share("MD"));
    assert!((0.36..0.44).contains(&share("UA")), "UA {:.3}", share("UA"));
    assert!((0.12..0.18).contains(&eu), "EU {eu:.3}");
    // Moldova: mostly the 2015 standard, some older district plates.
    let md: Vec<&str> = scenario
        .passages
        .iter()
        .filter(|p| p.plate_country == "MD")
        .map(|p| p.plate.as_str())
        .collect();
    let district = md
        .iter()
        .filter(|n| n.len() == 7 && n.as_bytes()[3].is_ascii_alphabetic())
        .count();
    assert!(
        district > 0 && district < md.len() / 4,
        "{district} district plates of {}",
        md.len()
    );
}

#[test]
fn vehicles_come_back_and_never_travel_impossibly_fast() {
    let scenario = three_days();
    let mut by_vehicle: BTreeMap<&str, Vec<&Passage>> = BTreeMap::new();
    for p in scenario
        .passages
        .iter()
        .filter(|p| p.planted != Some(AnomalyKind::ClonedPlate))
    {
        by_vehicle.entry(p.vehicle_id.as_str()).or_default().push(p);
    }
    let mut returns = 0;
    let mut other_crossing = 0;
    for passages in by_vehicle.values() {
        for pair in passages.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            returns += 1;
            assert_eq!(
                a.to_country, b.from_country,
                "a vehicle leaves the country it entered"
            );
            let from = find_post(&a.to_post).expect("post");
            let to = find_post(&b.from_post).expect("post");
            let hours = (b.exit_arrival_ms - a.entry_departure_ms) as f64 / HOUR_MS as f64;
            assert!(hours > 0.0);
            if from.id != to.id {
                other_crossing += 1;
                assert!(distance_km(from, to) / hours < 60.0, "{} too fast", a.plate);
            }
        }
    }
    let share = returns as f64 / scenario.passages.len() as f64;
    // Vehicles abroad since before the start come back too, but have no
    // earlier passage here; so about a fifth of passages follow one.
    assert!((0.12..0.45).contains(&share), "return trips {share:.3}");
    assert!(
        other_crossing > 0,
        "some vehicles come back through another crossing"
    );
    assert!(
        other_crossing * 5 < returns,
        "{other_crossing} of {returns} through another crossing"
    );
}

#[test]
fn volume_per_day_follows_the_crossings_and_the_scale() {
    let scenario = one_day();
    let ordinary = scenario
        .passages
        .iter()
        .filter(|p| p.planted.is_none())
        .count() as f64;
    let expected: f64 = CROSSINGS
        .iter()
        .map(|c| 2.0 * c.vehicles_per_day as f64)
        .sum();
    assert!(
        (ordinary / expected - 1.0).abs() < 0.05,
        "{ordinary} passages, expected about {expected}"
    );
    let reads = scenario.reads.len() as f64;
    assert!(
        (reads / (4.0 * expected) - 1.0).abs() < 0.06,
        "{reads} reads"
    );
    for crossing in CROSSINGS {
        for from in [&crossing.md, &crossing.ua] {
            let n = scenario
                .passages
                .iter()
                .filter(|p| p.planted.is_none() && p.from_post == from.id)
                .count() as f64;
            let want = crossing.vehicles_per_day as f64;
            assert!(
                (n - want).abs() < 5.0 * want.sqrt(),
                "{n} from {} (want {want})",
                from.id
            );
        }
    }
    let half = generate(&ScenarioConfig {
        traffic_scale: 0.5,
        ..ScenarioConfig::default()
    });
    let half_ordinary = half.passages.iter().filter(|p| p.planted.is_none()).count() as f64;
    assert!(
        (half_ordinary / (expected / 2.0) - 1.0).abs() < 0.06,
        "{half_ordinary} at scale 0.5"
    );
}

#[test]
fn traffic_peaks_by_day_and_is_quiet_at_night() {
    let scenario = three_days();
    let mut per_hour = [0usize; 24];
    for p in scenario.passages.iter().filter(|p| p.planted.is_none()) {
        per_hour[local_hour(p.exit_arrival_ms) as usize] += 1;
    }
    let day: f64 = per_hour[8..18].iter().sum::<usize>() as f64 / 10.0;
    let night: f64 = per_hour[0..5].iter().sum::<usize>() as f64 / 5.0;
    assert!(
        day > 3.0 * night,
        "per hour: day {day:.0}, night {night:.0}"
    );
}

#[test]
fn days_are_local_days_at_the_border() {
    let winter = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let summer = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).expect("date");
    let utc_midnight = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("time")
            .and_utc()
            .timestamp_millis()
    };
    assert_eq!(
        local_day_start_ms(winter),
        utc_midnight(winter) - 2 * HOUR_MS
    );
    assert_eq!(
        local_day_start_ms(summer),
        utc_midnight(summer) - 3 * HOUR_MS
    );
    assert_eq!(local_hour(local_day_start_ms(winter)), 0);
    assert_eq!(local_hour(local_day_start_ms(summer) + 13 * HOUR_MS), 13);

    let scenario = one_day();
    let start = local_day_start_ms(winter);
    let first = scenario.passages.first().expect("traffic").exit_arrival_ms;
    let last = scenario.passages.last().expect("traffic").exit_arrival_ms;
    assert!(first >= start && last < start + DAY_MS);
}

#[test]
fn ground_truth_batches_have_a_row_per_item() {
    let scenario = one_day();
    let passages = scenario.passages_batch();
    assert_eq!(passages.num_rows(), scenario.passages.len());
    for column in [
        "passage_id",
        "plate",
        "exit_arrival_at",
        "entry_departure_at",
        "read_ids",
        "missed",
        "misread",
    ] {
        assert!(
            passages.column_by_name(column).is_some(),
            "passages lack {column}"
        );
    }
    let anomalies = scenario.anomalies_batch();
    assert_eq!(anomalies.num_rows(), scenario.anomalies.len());
    for column in [
        "kind",
        "plate",
        "post_ids",
        "read_ids",
        "description",
        "planted",
    ] {
        assert!(
            anomalies.column_by_name(column).is_some(),
            "anomalies lack {column}"
        );
    }
    let watchlist = scenario.watchlist_batch();
    assert_eq!(watchlist.num_rows(), scenario.watchlist.len());
    for column in ["plate", "reason", "severity", "valid_from", "valid_to"] {
        assert!(
            watchlist.column_by_name(column).is_some(),
            "watchlist lacks {column}"
        );
    }
    let reads =
        borderflow_types::reads_from_batch(&scenario.reads_batch()).expect("reads round-trip");
    assert_eq!(reads, scenario.reads);
}

#[test]
fn the_watchlist_has_hits_decoys_and_an_expired_entry() {
    let scenario = one_day();
    let seen: HashSet<&str> = scenario.passages.iter().map(|p| p.plate.as_str()).collect();
    let hits: HashSet<&str> = scenario
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::Watchlisted)
        .map(|a| a.plate.as_str())
        .collect();
    let decoys = scenario
        .watchlist
        .iter()
        .filter(|w| !seen.contains(w.plate.as_str()))
        .count();
    assert!(decoys >= 3, "{decoys} decoys");
    let expired: Vec<_> = scenario
        .watchlist
        .iter()
        .filter(|w| seen.contains(w.plate.as_str()) && !hits.contains(w.plate.as_str()))
        .collect();
    assert_eq!(expired.len(), 1);
    for p in scenario
        .passages
        .iter()
        .filter(|p| p.plate == expired[0].plate)
    {
        assert!(!expired[0].is_valid_at(p.exit_arrival_ms));
    }
    assert!(
        scenario
            .watchlist
            .iter()
            .all(|w| (1..=3).contains(&w.severity))
    );
}

#[test]
fn reads_for_post_partitions_the_reads() {
    let scenario = one_day();
    let mut total = 0;
    for post in borderflow_types::crossings::all_posts() {
        let reads: Vec<_> = scenario.reads_for_post(post.id).collect();
        assert!(reads.iter().all(|r| r.post_id == post.id));
        assert!(
            reads
                .windows(2)
                .all(|w| w[0].captured_at_ms <= w[1].captured_at_ms)
        );
        assert!(!reads.is_empty(), "no reads at {}", post.id);
        total += reads.len();
    }
    assert_eq!(total, scenario.reads.len());
    assert_eq!(scenario.reads_for_post("nowhere").count(), 0);
}

#[test]
fn empty_configurations_give_empty_scenarios() {
    let no_days = generate(&ScenarioConfig {
        days: 0,
        ..ScenarioConfig::default()
    });
    assert!(
        no_days.reads.is_empty() && no_days.passages.is_empty() && no_days.anomalies.is_empty()
    );
    let no_crossings = generate(&ScenarioConfig {
        crossings: vec![],
        ..ScenarioConfig::default()
    });
    assert!(no_crossings.reads.is_empty() && no_crossings.anomalies.is_empty());
    let no_traffic = generate(&ScenarioConfig {
        traffic_scale: 0.0,
        ..ScenarioConfig::default()
    });
    // Only planted passages and the one passage of the expired watchlist entry.
    let ordinary = no_traffic
        .passages
        .iter()
        .filter(|p| p.planted.is_none())
        .count();
    assert_eq!(ordinary, 1);
    for kind in AnomalyKind::ALL {
        assert!(
            no_traffic.anomalies.iter().any(|a| a.kind == kind),
            "no {kind} without traffic"
        );
    }
}

#[test]
fn one_day_generates_quickly() {
    let started = Instant::now();
    let scenario = generate(&ScenarioConfig::default());
    let elapsed = started.elapsed();
    eprintln!(
        "one day, all crossings: {} passages, {} reads, {} anomalies in {elapsed:?}",
        scenario.passages.len(),
        scenario.reads.len(),
        scenario.anomalies.len()
    );
    // Well under a second in a debug build on a quiet machine; the bound is
    // for a loaded CI runner and catches order-of-magnitude regressions.
    assert!(elapsed.as_secs_f64() < 10.0, "took {elapsed:?}");
}
