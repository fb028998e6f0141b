//! Planted anomalies and the watchlist (see the module documentation of
//! `scenario` for what each kind looks like).

use borderflow_types::CrossingInfo;
use borderflow_types::crossings::{PostInfo, distance_km};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::capture::new_ulid;
use super::ground_truth::{Anomaly, AnomalyKind, Stage, WatchlistEntry};
use super::plates::{self, TruePlate};
use super::traffic::{self, DAY_MS, DwellOverride, HOUR_MS, MINUTE_MS};
use super::{Builder, CLEAN, StagePlan};

/// Watchlist reasons with their severity (1 low, 2 medium, 3 high).
const REASONS: &[(&str, u8)] = &[
    ("stolen vehicle (Interpol SMV database)", 3),
    ("vehicle of a wanted person", 3),
    ("intelligence: cigarette smuggling", 2),
    ("intelligence: fuel and excise goods", 2),
    ("customs debt unpaid", 1),
    ("temporary import period exceeded", 1),
];

/// Decoy watchlist plates per day that never appear in the traffic.
const DECOYS_PER_DAY: usize = 4;

pub(super) fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn post_label(post: &PostInfo) -> String {
    format!("{} ({})", post.name, post.country)
}

/// Number of positions where two equally long keys differ (the length
/// difference counts as differences).
pub(super) fn chars_differ(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

impl Builder<'_> {
    fn random_crossing(&mut self) -> &'static CrossingInfo {
        let crossings = &self.config.crossings;
        crossings[self.rng.random_range(0..crossings.len())]
    }

    /// A random direction across `crossing`: whether it is MD → UA, and the
    /// post left and the post reached.
    fn random_direction(
        &mut self,
        crossing: &'static CrossingInfo,
    ) -> (bool, &'static PostInfo, &'static PostInfo) {
        let md_to_ua = self.rng.random_bool(0.5);
        if md_to_ua {
            (true, &crossing.md, &crossing.ua)
        } else {
            (false, &crossing.ua, &crossing.md)
        }
    }

    /// A random instant between `from_h` and `to_h` hours into the day.
    fn random_time(&mut self, day_start: i64, from_h: i64, to_h: i64) -> i64 {
        day_start + self.rng.random_range(from_h * HOUR_MS..to_h * HOUR_MS)
    }

    fn local_vehicle(&mut self, crossing: &CrossingInfo) -> usize {
        let country = if self.rng.random_bool(0.5) {
            "MD"
        } else {
            "UA"
        };
        self.new_vehicle(country, crossing.id)
    }

    fn any_vehicle(&mut self, crossing: &CrossingInfo) -> usize {
        let country = plates::registration_country(&mut self.rng);
        self.new_vehicle(country, crossing.id)
    }

    /// Read index of `stage` of passage `p`; planted stages are never missed.
    fn read_at(&self, p: usize, stage: Stage) -> usize {
        self.passage_reads[p][stage.index()].expect("planted reads are exempt from noise")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &mut self,
        kind: AnomalyKind,
        planted: bool,
        plate: String,
        post_ids: Vec<String>,
        evidence: &[usize],
        passages: &[usize],
        description: String,
    ) {
        let times = evidence.iter().map(|&r| self.reads[r].captured_at_ms);
        let first_seen_ms = times.clone().min().unwrap_or(0);
        let last_seen_ms = times.max().unwrap_or(0);
        let mut post_ids = post_ids;
        post_ids.dedup();
        let anomaly = Anomaly {
            anomaly_id: new_ulid(&mut self.rng, first_seen_ms),
            kind,
            planted,
            plate,
            post_ids,
            read_ids: evidence
                .iter()
                .map(|&r| self.reads[r].read_id.clone())
                .collect(),
            passage_ids: passages
                .iter()
                .map(|&p| self.passages[p].passage_id.clone())
                .collect(),
            first_seen_ms,
            last_seen_ms,
            description,
        };
        self.anomalies.push(anomaly);
    }

    /// Plants each day's anomalies and builds the watchlist.
    pub(super) fn plant_anomalies(&mut self) {
        if self.config.crossings.is_empty() {
            return;
        }
        for day in 0..self.config.days {
            let day_start = self.day_start_ms(day);
            let counts = [
                (AnomalyKind::ClonedPlate, self.rng.random_range(1..=2)),
                (AnomalyKind::Watchlisted, self.rng.random_range(2..=3)),
                (AnomalyKind::EntryWithoutExit, self.rng.random_range(1..=2)),
                (AnomalyKind::LongDwell, self.rng.random_range(1..=2)),
                (AnomalyKind::Misread, self.rng.random_range(1..=2)),
                (AnomalyKind::FrequentCrosser, 1),
            ];
            for (kind, count) in counts {
                for _ in 0..count {
                    match kind {
                        AnomalyKind::ClonedPlate => self.plant_cloned_plate(day_start),
                        AnomalyKind::Watchlisted => self.plant_watchlisted(day_start),
                        AnomalyKind::EntryWithoutExit => self.plant_entry_without_exit(day_start),
                        AnomalyKind::LongDwell => self.plant_long_dwell(day_start),
                        AnomalyKind::Misread => self.plant_misread(day_start),
                        AnomalyKind::FrequentCrosser => self.plant_frequent_crosser(day_start),
                    }
                }
            }
            self.add_decoys(day_start);
            if day == 0 {
                self.add_expired_entry(day_start);
            }
        }
    }

    fn plant_cloned_plate(&mut self, day_start: i64) {
        let kind = AnomalyKind::ClonedPlate;
        let first = self.random_crossing();
        let others: Vec<&'static CrossingInfo> = self
            .config
            .crossings
            .iter()
            .copied()
            .filter(|c| c.id != first.id)
            .collect();
        let original = self.any_vehicle(first);
        let a_md_to_ua = self.rng.random_bool(0.5);
        let (a_from, a_to) = if a_md_to_ua {
            (&first.md, &first.ua)
        } else {
            (&first.ua, &first.md)
        };
        let start = self.random_time(day_start, 6, 20);
        let s = traffic::schedule(
            &mut self.rng,
            first,
            a_from,
            a_to,
            start,
            DwellOverride::default(),
        );
        let a = self.add_passage(original, first, a_md_to_ua, s, CLEAN, Some(kind));

        // The clone: at another crossing if there is one, else across the bridge.
        let (second, b_md_to_ua) = match others.choose(&mut self.rng) {
            Some(&c) => (c, self.rng.random_bool(0.5)),
            None => (first, !a_md_to_ua),
        };
        let b_from = if b_md_to_ua { &second.md } else { &second.ua };
        let b_to = if b_md_to_ua { &second.ua } else { &second.md };
        let km = distance_km(a_from, b_from);
        let kmh: f64 = self.rng.random_range(300.0..900.0);
        let gap_ms = ((km / kmh * HOUR_MS as f64) as i64).max(1);
        let b_start = s.exit_departure_ms + gap_ms;
        let clone_plate: TruePlate = self.vehicles[original].plate.clone();
        let clone = self.add_vehicle(clone_plate);
        let sb = traffic::schedule(
            &mut self.rng,
            second,
            b_from,
            b_to,
            b_start,
            DwellOverride::default(),
        );
        let b = self.add_passage(clone, second, b_md_to_ua, sb, CLEAN, Some(kind));

        let evidence = [
            self.read_at(a, Stage::ExitDeparture),
            self.read_at(b, Stage::ExitArrival),
        ];
        let plate = self.vehicles[original].plate.norm.clone();
        let minutes = gap_ms as f64 / MINUTE_MS as f64;
        let description = format!(
            "plate {plate} left {} at {} and {:.1} min later arrived at {}, {:.0} km away: \
             {:.0} km/h. Two vehicles carry this plate.",
            post_label(a_from),
            utc(s.exit_departure_ms),
            minutes,
            post_label(b_from),
            km,
            km / (gap_ms as f64 / HOUR_MS as f64),
        );
        self.record(
            kind,
            true,
            plate,
            vec![a_from.id.to_string(), b_from.id.to_string()],
            &evidence,
            &[a, b],
            description,
        );
    }

    fn plant_watchlisted(&mut self, day_start: i64) {
        let kind = AnomalyKind::Watchlisted;
        let crossing = self.random_crossing();
        let vehicle = self.any_vehicle(crossing);
        let (md_to_ua, from, to) = self.random_direction(crossing);
        let start = self.random_time(day_start, 1, 22);
        let s = traffic::schedule(
            &mut self.rng,
            crossing,
            from,
            to,
            start,
            DwellOverride::default(),
        );
        let p = self.add_passage(vehicle, crossing, md_to_ua, s, CLEAN, Some(kind));

        let (reason, severity) = *REASONS.choose(&mut self.rng).expect("reasons are listed");
        let plate = self.vehicles[vehicle].plate.norm.clone();
        let valid_from_ms = day_start - self.rng.random_range(1..120) * DAY_MS;
        let valid_to_ms = day_start + self.rng.random_range(30..365) * DAY_MS;
        self.watchlist.push(WatchlistEntry {
            plate: plate.clone(),
            reason: reason.to_string(),
            severity,
            valid_from_ms,
            valid_to_ms,
        });
        let evidence: Vec<usize> = Stage::ALL.iter().map(|&st| self.read_at(p, st)).collect();
        let description = format!(
            "plate {plate} is on the watchlist ({reason}, severity {severity}) and crossed from {} \
             to {} at {}",
            post_label(from),
            post_label(to),
            utc(s.exit_arrival_ms),
        );
        self.record(
            kind,
            true,
            plate,
            vec![from.id.to_string(), to.id.to_string()],
            &evidence,
            &[p],
            description,
        );
    }

    fn plant_entry_without_exit(&mut self, day_start: i64) {
        let kind = AnomalyKind::EntryWithoutExit;
        let crossing = self.random_crossing();
        let vehicle = self.any_vehicle(crossing);
        let (md_to_ua, from, to) = self.random_direction(crossing);
        let start = self.random_time(day_start, 0, 23);
        let s = traffic::schedule(
            &mut self.rng,
            crossing,
            from,
            to,
            start,
            DwellOverride::default(),
        );
        let plan = [
            StagePlan::NotSeen,
            StagePlan::NotSeen,
            StagePlan::Clean,
            StagePlan::Clean,
        ];
        let p = self.add_passage(vehicle, crossing, md_to_ua, s, plan, Some(kind));
        let evidence = [
            self.read_at(p, Stage::EntryArrival),
            self.read_at(p, Stage::EntryDeparture),
        ];
        let plate = self.vehicles[vehicle].plate.norm.clone();
        let description = format!(
            "plate {plate} arrived at {} at {} entering {}, but no camera of {} saw it leave {}: \
             it came from nowhere",
            post_label(to),
            utc(s.entry_arrival_ms),
            to.country,
            post_label(from),
            from.country,
        );
        self.record(
            kind,
            true,
            plate,
            vec![to.id.to_string(), from.id.to_string()],
            &evidence,
            &[p],
            description,
        );
    }

    fn plant_long_dwell(&mut self, day_start: i64) {
        let kind = AnomalyKind::LongDwell;
        let crossing = self.random_crossing();
        let vehicle = self.any_vehicle(crossing);
        let (md_to_ua, from, to) = self.random_direction(crossing);
        let start = self.random_time(day_start, 5, 19);
        let dwell_ms = self.rng.random_range(4 * HOUR_MS..8 * HOUR_MS);
        let at_exit = self.rng.random_bool(0.5);
        let dwell = if at_exit {
            DwellOverride {
                exit_ms: Some(dwell_ms),
                entry_ms: None,
            }
        } else {
            DwellOverride {
                exit_ms: None,
                entry_ms: Some(dwell_ms),
            }
        };
        let s = traffic::schedule(&mut self.rng, crossing, from, to, start, dwell);
        let p = self.add_passage(vehicle, crossing, md_to_ua, s, CLEAN, Some(kind));
        let (post, arrival, departure) = if at_exit {
            (from, Stage::ExitArrival, Stage::ExitDeparture)
        } else {
            (to, Stage::EntryArrival, Stage::EntryDeparture)
        };
        let evidence = [self.read_at(p, arrival), self.read_at(p, departure)];
        let plate = self.vehicles[vehicle].plate.norm.clone();
        let description = format!(
            "plate {plate} spent {:.1} h in the control zone of {} ({} {}): arrived {}, left {}",
            dwell_ms as f64 / HOUR_MS as f64,
            post_label(post),
            arrival.direction(),
            if at_exit {
                "towards the bridge"
            } else {
                "into the country"
            },
            utc(self.passages[p].scheduled_ms(arrival)),
            utc(self.passages[p].scheduled_ms(departure)),
        );
        self.record(
            kind,
            true,
            plate,
            vec![post.id.to_string()],
            &evidence,
            &[p],
            description,
        );
    }

    fn plant_misread(&mut self, day_start: i64) {
        let kind = AnomalyKind::Misread;
        let crossing = self.random_crossing();
        let vehicle = self.any_vehicle(crossing);
        let (md_to_ua, from, to) = self.random_direction(crossing);
        let start = self.random_time(day_start, 1, 22);
        let s = traffic::schedule(
            &mut self.rng,
            crossing,
            from,
            to,
            start,
            DwellOverride::default(),
        );
        let wrong = self.rng.random_range(2..=3);
        let plan = [
            StagePlan::Clean,
            StagePlan::Clean,
            StagePlan::Wrong(wrong),
            StagePlan::Clean,
        ];
        let p = self.add_passage(vehicle, crossing, md_to_ua, s, plan, Some(kind));
        let departed = self.read_at(p, Stage::ExitDeparture);
        let arrived = self.read_at(p, Stage::EntryArrival);
        let plate = self.vehicles[vehicle].plate.norm.clone();
        let description = format!(
            "plate {plate} left {} read as `{}` but arrived at {} read as `{}` ({} characters differ); \
             the departure read at {} is `{}` again",
            post_label(from),
            self.reads[departed].plate_text,
            post_label(to),
            self.reads[arrived].plate_text,
            chars_differ(
                &self.reads[departed].plate_norm,
                &self.reads[arrived].plate_norm
            ),
            to.name,
            self.reads[self.read_at(p, Stage::EntryDeparture)].plate_text,
        );
        self.record(
            kind,
            true,
            plate,
            vec![from.id.to_string(), to.id.to_string()],
            &[departed, arrived],
            &[p],
            description,
        );
    }

    fn plant_frequent_crosser(&mut self, day_start: i64) {
        let kind = AnomalyKind::FrequentCrosser;
        let crossing = self.random_crossing();
        let vehicle = self.local_vehicle(crossing);
        let crossings = self.rng.random_range(7..=9);
        let mut md_to_ua = self.rng.random_bool(0.5);
        let mut start = self.random_time(day_start, 5, 8);
        let mut passages = Vec::new();
        let mut evidence = Vec::new();
        for _ in 0..crossings {
            let (from, to) = if md_to_ua {
                (&crossing.md, &crossing.ua)
            } else {
                (&crossing.ua, &crossing.md)
            };
            // Regulars with local permits go through quickly: 5–25 min a post.
            let dwell = DwellOverride {
                exit_ms: Some(self.rng.random_range(5 * MINUTE_MS..25 * MINUTE_MS)),
                entry_ms: Some(self.rng.random_range(5 * MINUTE_MS..25 * MINUTE_MS)),
            };
            let s = traffic::schedule(&mut self.rng, crossing, from, to, start, dwell);
            let p = self.add_passage(vehicle, crossing, md_to_ua, s, CLEAN, Some(kind));
            evidence.extend(Stage::ALL.iter().map(|&st| self.read_at(p, st)));
            passages.push(p);
            start = s.entry_departure_ms + self.rng.random_range(10 * MINUTE_MS..40 * MINUTE_MS);
            md_to_ua = !md_to_ua;
        }
        let plate = self.vehicles[vehicle].plate.norm.clone();
        let first = self.passages[passages[0]].exit_arrival_ms;
        let last = self.passages[*passages.last().expect("at least seven")].entry_departure_ms;
        let description = format!(
            "plate {plate} crossed {crossings} times at {} between {} and {} (more than 6 in 24 h)",
            crossing.id,
            utc(first),
            utc(last),
        );
        self.record(
            kind,
            true,
            plate,
            vec![crossing.md.id.to_string(), crossing.ua.id.to_string()],
            &evidence,
            &passages,
            description,
        );
    }

    /// Watchlist plates that never appear in the traffic.
    fn add_decoys(&mut self, day_start: i64) {
        for _ in 0..DECOYS_PER_DAY {
            let crossing = self.random_crossing();
            let country = plates::registration_country(&mut self.rng);
            let plate = self.plates.fresh(&mut self.rng, country, crossing.id);
            let (reason, severity) = *REASONS.choose(&mut self.rng).expect("reasons are listed");
            let valid_from_ms = day_start - self.rng.random_range(1..400) * DAY_MS;
            let valid_to_ms = day_start + self.rng.random_range(1..365) * DAY_MS;
            self.watchlist.push(WatchlistEntry {
                plate: plate.norm,
                reason: reason.to_string(),
                severity,
                valid_from_ms,
                valid_to_ms,
            });
        }
    }

    /// A watchlist entry that expired before its plate crosses: not a hit.
    /// The passage is ordinary traffic (with noise).
    fn add_expired_entry(&mut self, day_start: i64) {
        let crossing = self.random_crossing();
        let vehicle = self.any_vehicle(crossing);
        let (md_to_ua, from, to) = self.random_direction(crossing);
        let start = self.random_time(day_start, 6, 20);
        let s = traffic::schedule(
            &mut self.rng,
            crossing,
            from,
            to,
            start,
            DwellOverride::default(),
        );
        self.add_passage(vehicle, crossing, md_to_ua, s, super::NOISE, None);
        let valid_to_ms = day_start - self.rng.random_range(2..60) * DAY_MS;
        self.watchlist.push(WatchlistEntry {
            plate: self.vehicles[vehicle].plate.norm.clone(),
            reason: "stolen vehicle (recovered, entry expired)".to_string(),
            severity: 3,
            valid_from_ms: valid_to_ms - 180 * DAY_MS,
            valid_to_ms,
        });
    }
}
